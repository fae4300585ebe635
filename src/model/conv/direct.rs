//! A direct kernel for a convolution of one input channel to a channels-last output (the first
//! convolution of a CNN on grey images), fused with the ReLU and the pool like the GEMM path.
//!
//! Why: with one input channel the im2col matrix has only `K = KH·KW` columns (9 for NSL's CNN),
//! far too few for a GEMM: its microkernels fill 9 of 16 lanes and spend their time loading and
//! storing the product, which then goes through a separate pool pass; and the input gradient's GEMM
//! multiplies the pooled gradient's zeros (3 of every 4 values for a pool of 2), then transposes and
//! scatters the columns back. Here:
//! - **forward:** each output position's `O` channels are `Σ_(i,j) x[y+i, x+j] · w[:, i, j]`,
//!   vectors of 16 channels accumulated tap by tap (`mul_add`, in tap order), the pool window's
//!   positions computed together (a pool of 2: four independent chains; other pools one position
//!   at a time) and maximized in registers, the argmax kept per channel;
//! - **input gradient:** a pool window's gradient goes to one position per channel (its argmax), so
//!   the window's patch of the input (`(pool + KH − 1) × (pool + KW − 1)` values, 4×4 for NSL's
//!   CNN) is `Σ_o g[o] · w[o] shifted to the argmax of channel o`: one vector FMA per channel from a
//!   table of the shifted filters, then the patch is added to the input gradient;
//! - **weight gradient:** `∂w[:, i, j] += g_q · x[y_q + i, x_q + j]` over the window's positions `q`,
//!   `g_q` the window's gradient vector masked to the channels whose argmax is `q`.
//!
//! The kernels run inside pulp's dispatch (see `ForwardRun`), compiled for AVX-512 or AVX2 with
//! FMA where the CPU has them; on a CPU without FMA `mul_add` is computed in software (correct,
//! slow).
//!
//! The sums run in another order than the GEMM's (the same values up to rounding), fixed for a
//! given thread count: images are split into one contiguous run per thread and the per-thread
//! weight gradients added in thread order.

use super::dims::{Channels, ConvDims};
use super::mask::through_relu;
use super::pool::better;
use rayon::prelude::*;

/// Channels per vector (one AVX-512 register of f32).
const L: usize = 16;

/// The largest input patch of one pool window handled here, in values (4 vectors): larger
/// kernels and pools go through the GEMMs.
const MAX_PATCH: usize = 4 * L;

/// Whether the direct kernel computes this convolution: one input channel, a channels-last output,
/// and a pool window's input patch of at most [`MAX_PATCH`] values.
pub(super) fn applies(d: &ConvDims) -> bool {
    d.c == 1 && d.output == Channels::Last && patch_dims(d).0 * patch_dims(d).1 <= MAX_PATCH
}

/// Rows and columns of the input patch a pool window reads.
fn patch_dims(d: &ConvDims) -> (usize, usize) {
    (d.pool + d.kh - 1, d.pool + d.kw - 1)
}

/// The gradient w.r.t. the op's output `dy` (`[B, PH, PW, O]`), the mask of the fused ReLU (the
/// op's output, if a ReLU was fused) and each window's argmax (if pooled), as the backward gets them.
#[derive(Clone, Copy)]
pub(super) struct Grad<'a> {
    pub(super) dy: &'a [f32],
    pub(super) relu_out: Option<&'a [f32]>,
    pub(super) argmax: Option<&'a [u8]>,
}

/// The weights `[O, KH·KW]` as vectors of channels: `[⌈O/L⌉, KH·KW, L]`, 0 past the last channel.
fn channel_vectors(w: &[f32], d: &ConvDims) -> Vec<f32> {
    let taps = d.kh * d.kw;
    let mut out = vec![0f32; d.o.div_ceil(L) * taps * L];
    for (o, filter) in w.chunks_exact(taps).enumerate() {
        for (t, v) in filter.iter().enumerate() {
            out[((o / L) * taps + t) * L + o % L] = *v;
        }
    }
    out
}

/// The images `0..b` cut into one contiguous run per thread: `(images per run)`.
fn per_run(d: &ConvDims) -> usize {
    d.b.div_ceil(rayon::current_num_threads().max(1)).max(1)
}

/// `Σ_(i,j) x[y+i, x+j] · w[i, j]` for one vector of channels (`w`: `[KH·KW, L]`) at `Q` output
/// positions `(y, x)` at once (independent FMA chains), taps in order.
#[inline(always)]
fn conv_window<const Q: usize>(x: &[f32], d: &ConvDims, at: [(usize, usize); Q], w: &[f32]) -> [[f32; L]; Q] {
    let mut acc = [[0f32; L]; Q];
    let at = at.map(|(y, xx)| y * d.w + xx);
    for (i, w_row) in w.chunks_exact(d.kw * L).take(d.kh).enumerate() {
        for (j, wv) in w_row.chunks_exact(L).enumerate() {
            for (acc, at) in acc.iter_mut().zip(at) {
                let xv = x[at + i * d.w + j];
                for (a, wl) in acc.iter_mut().zip(wv) {
                    *a = xv.mul_add(*wl, *a);
                }
            }
        }
    }
    acc
}

/// `dst = relu(v + b)` (ReLU if `relu`) on the first `dst.len()` channels.
#[inline(always)]
fn finish(dst: &mut [f32], v: [f32; L], b: &[f32], relu: bool) {
    for ((dst, v), b) in dst.iter_mut().zip(v.iter()).zip(b) {
        let v = v + b;
        *dst = if relu { v.max(0.0) } else { v };
    }
}

/// The pool offsets, below MAX_POOL² = 256, narrowed to bytes.
#[inline(always)]
fn narrow(dst: &mut [u8], at: [u32; L]) {
    for (dst, a) in dst.iter_mut().zip(at.iter()) {
        *dst = *a as u8;
    }
}

/// The running maximum of a pool window per channel: `v` (the window's element `q`) replaces
/// `best` where [`better`], and `at` records `q` there (32 bits wide, so that the selects
/// vectorize with the float compares).
#[inline(always)]
fn max_into(best: &mut [f32; L], at: &mut [u32; L], v: [f32; L], q: u32) {
    for ((b, a), v) in best.iter_mut().zip(at.iter_mut()).zip(v.iter()) {
        let m = better(*v, *b);
        *b = if m { *v } else { *b };
        *a = if m { q } else { *a };
    }
}

/// The forward of a run of images `xs` into `out` and (if pooled) `arg`, whole images.
///
/// A `WithSimd` struct rather than a closure for `kernels::simd`: its `with_simd` is always inlined
/// into pulp's function compiled for the CPU's widest vectors and FMA, whereas a closure's body is
/// inlined there only if LLVM finds it cheap enough; a kernel left out runs with 4-float vectors
/// and calls `fmaf` for every `mul_add` (measured: 5× slower).
struct ForwardRun<'a> {
    xs: &'a [f32],
    out: &'a mut [f32],
    arg: &'a mut [u8],
    w: &'a [f32],
    b: &'a [f32],
    relu: bool,
    d: &'a ConvDims,
}

impl pulp::WithSimd for ForwardRun<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        let ForwardRun { xs, out, arg, w, b, relu, d } = self;
        let per_out = d.image_out();
        if (d.kh, d.kw, d.pool) == (3, 3, 2) && d.o % L == 0 {
            // NSL's first convolution: one vector of channels at a time over the whole image, its
            // nine weight vectors held in registers.
            for (ch, w) in w.chunks_exact(9 * L).enumerate() {
                let w: [[f32; L]; 9] = std::array::from_fn(|t| w[t * L..][..L].try_into().unwrap_or([0.0; L]));
                let b: [f32; L] = b[ch * L..][..L].try_into().unwrap_or([0.0; L]);
                for (x, (out, arg)) in
                    xs.chunks_exact(d.image_in()).zip(out.chunks_exact_mut(per_out).zip(arg.chunks_exact_mut(per_out)))
                {
                    forward_image_3x3_pool2(x, out, arg, &w, &b, ch * L, relu, d);
                }
            }
            return;
        }
        for (img, (x, out)) in xs.chunks_exact(d.image_in()).zip(out.chunks_exact_mut(per_out)).enumerate() {
            let arg = if d.pool > 1 { &mut arg[img * per_out..][..per_out] } else { &mut [][..] };
            forward_image(x, out, arg, w, b, relu, d);
        }
    }
}

/// [`forward_image`] for a 3×3 kernel and a pool of 2, on the channels `lo..lo + L` only (`w` their
/// nine tap vectors, `b` their bias): the same operations in the same order (so the same values),
/// but with the weights in registers for the whole image rather than reloaded for every window and
/// tap, and the loop bounds known to the compiler.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn forward_image_3x3_pool2(
    x: &[f32],
    out: &mut [f32],
    arg: &mut [u8],
    w: &[[f32; L]; 9],
    b: &[f32; L],
    lo: usize,
    relu: bool,
    d: &ConvDims,
) {
    let (o, iw) = (d.o, d.w);
    for u in 0..d.out_n() {
        let (wi, wj) = (u / d.pw, u % d.pw);
        // The window's 4×4 input patch, rows `2·wi ..`, columns `2·wj ..`.
        let top = 2 * wi * iw + 2 * wj;
        let rows: [&[f32; 4]; 4] = std::array::from_fn(|r| x[top + r * iw..][..4].try_into().unwrap_or(&[0.0; 4]));
        let mut acc = [[0f32; L]; 4];
        for i in 0..3 {
            for j in 0..3 {
                let wv = &w[i * 3 + j];
                for (q, acc) in acc.iter_mut().enumerate() {
                    let xv = rows[q / 2 + i][q % 2 + j];
                    for (a, wl) in acc.iter_mut().zip(wv) {
                        *a = xv.mul_add(*wl, *a);
                    }
                }
            }
        }
        let [v0, v1, v2, v3] = acc;
        let (mut best, mut at) = (v0, [0u32; L]);
        for (q, v) in [(1u32, v1), (2, v2), (3, v3)] {
            max_into(&mut best, &mut at, v, q);
        }
        finish(&mut out[u * o + lo..][..L], best, b, relu);
        narrow(&mut arg[u * o + lo..][..L], at);
    }
}

/// The forward of one image `x` (`[H, W]`) into `out` (`[PH, PW, O]`) and `arg` (empty without a
/// pool); `w` from [`channel_vectors`], `b` the bias padded to whole vectors.
#[inline(always)]
fn forward_image(x: &[f32], out: &mut [f32], arg: &mut [u8], w: &[f32], b: &[f32], relu: bool, d: &ConvDims) {
    let (o, s) = (d.o, d.pool);
    for u in 0..d.out_n() {
        let (wi, wj) = (u / d.pw, u % d.pw);
        for (ch, w) in w.chunks_exact(d.kh * d.kw * L).enumerate() {
            let (best, at) = if s == 2 {
                // The common case: the window's four positions at once (four independent chains).
                let [v0, v1, v2, v3] =
                    conv_window(x, d, [(0, 0), (0, 1), (1, 0), (1, 1)].map(|(p, r)| (wi * 2 + p, wj * 2 + r)), w);
                let (mut best, mut at) = (v0, [0u32; L]);
                for (q, v) in [(1u32, v1), (2, v2), (3, v3)] {
                    max_into(&mut best, &mut at, v, q);
                }
                (best, at)
            } else {
                let [mut best] = conv_window(x, d, [(wi * s, wj * s)], w);
                // Offsets q < MAX_POOL² = 256 (checked in ConvDims::new).
                let mut at = [0u32; L];
                for q in 1..s * s {
                    let [v] = conv_window(x, d, [(wi * s + q / s, wj * s + q % s)], w);
                    max_into(&mut best, &mut at, v, q as u32);
                }
                (best, at)
            };
            let lo = ch * L;
            // Bias and ReLU commute with the max (both are non-decreasing). A whole vector of
            // channels (all of them when O is a multiple of 16) with a length known here.
            if o - lo >= L {
                finish(&mut out[u * o + lo..][..L], best, &b[lo..][..L], relu);
                if s > 1 {
                    narrow(&mut arg[u * o + lo..][..L], at);
                }
            } else {
                let n = o - lo;
                finish(&mut out[u * o + lo..][..n], best, &b[lo..][..n], relu);
                if s > 1 {
                    narrow(&mut arg[u * o + lo..][..n], at);
                }
            }
        }
    }
}

/// Forward: the op's output `[B, PH, PW, O]` and, if pooled, each window's argmax offset per
/// channel (one byte per output value, as the GEMM path records it).
pub(super) fn forward(x: &[f32], w: &[f32], bias: Option<&[f32]>, relu: bool, d: &ConvDims) -> (Vec<f32>, Vec<u8>) {
    let (o, s) = (d.o, d.pool);
    let wv = channel_vectors(w, d);
    let mut b = vec![0f32; o.div_ceil(L) * L];
    if let Some(bias) = bias {
        b[..o].copy_from_slice(bias);
    }
    let mut ys = vec![0f32; d.b * d.image_out()];
    let mut args = vec![0u8; if s > 1 { ys.len() } else { 0 }];
    if ys.is_empty() {
        return (ys, args);
    }
    let run = per_run(d);
    let per_out = d.image_out();
    let kernel = |xs: &[f32], out: &mut [f32], arg: &mut [u8]| {
        pulp::Arch::new().dispatch(ForwardRun { xs, out, arg, w: &wv, b: &b, relu, d })
    };
    if s > 1 {
        ys.par_chunks_mut(run * per_out)
            .zip(args.par_chunks_mut(run * per_out))
            .enumerate()
            .for_each(|(r, (out, arg))| kernel(&x[r * run * d.image_in()..], out, arg));
    } else {
        ys.par_chunks_mut(run * per_out)
            .enumerate()
            .for_each(|(r, out)| kernel(&x[r * run * d.image_in()..], out, &mut []));
    }
    (ys, args)
}

/// The filters shifted to each position of a pool window's input patch: entry `(q, o)` is a
/// `[P]` vector (`P` = the patch's values rounded up to whole vectors) with `w[o, i, j]` at patch
/// row `q / pool + i`, column `q % pool + j`, 0 elsewhere.
fn shifted_filters(w: &[f32], d: &ConvDims, p: usize) -> Vec<f32> {
    let (s, taps) = (d.pool, d.kh * d.kw);
    let pc = patch_dims(d).1;
    let mut out = vec![0f32; s * s * d.o * p];
    for q in 0..s * s {
        for (o, filter) in w.chunks_exact(taps).enumerate() {
            let dst = &mut out[(q * d.o + o) * p..][..p];
            for (t, v) in filter.iter().enumerate() {
                dst[(q / s + t / d.kw) * pc + q % s + t % d.kw] = *v;
            }
        }
    }
    out
}

/// The input gradient `[B, H, W]` (one channel).
pub(super) fn input_grad(w: &[f32], g: Grad, d: &ConvDims) -> Vec<f32> {
    let (pr, pc) = patch_dims(d);
    let chunks = (pr * pc).div_ceil(L);
    let table = shifted_filters(w, d, chunks * L);
    let mut dx = vec![0f32; d.b * d.image_in()];
    let run = per_run(d);
    dx.par_chunks_mut(run * d.image_in()).enumerate().for_each(|(r, dx)| {
        pulp::Arch::new().dispatch(InputGradRun { table: &table, g, d, first: r * run, dx, chunks })
    });
    dx
}

/// [`input_grad_run`] with patches of `chunks` vectors, as a `WithSimd` struct (see [`ForwardRun`]).
struct InputGradRun<'a> {
    table: &'a [f32],
    g: Grad<'a>,
    d: &'a ConvDims,
    first: usize,
    dx: &'a mut [f32],
    chunks: usize,
}

impl pulp::WithSimd for InputGradRun<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        let InputGradRun { table, g, d, first, dx, chunks } = self;
        match chunks {
            1 => input_grad_run::<1>(table, g, d, first, dx),
            2 => input_grad_run::<2>(table, g, d, first, dx),
            3 => input_grad_run::<3>(table, g, d, first, dx),
            _ => input_grad_run::<4>(table, g, d, first, dx),
        }
    }
}

/// [`input_grad`] for the images from `first` on, into `dx` (whole images), with patches of `C`
/// vectors.
#[inline(always)]
fn input_grad_run<const C: usize>(table: &[f32], g: Grad, d: &ConvDims, first: usize, dx: &mut [f32]) {
    let (o, s) = (d.o, d.pool);
    let (pr, pc) = patch_dims(d);
    // The window's gradient and table offset per channel.
    let (mut gs, mut offs) = (vec![0f32; o], vec![0usize; o]);
    for (img, dx) in dx.chunks_exact_mut(d.image_in()).enumerate() {
        let base = (first + img) * d.image_out();
        for u in 0..d.out_n() {
            let at = base + u * o;
            window_grads(g, at, o, C * L, &mut gs, &mut offs);
            // Four partial sums over the channels, so that the FMAs do not wait on each other.
            let mut acc = [[[0f32; L]; C]; 4];
            let [a0, a1, a2, a3] = &mut acc;
            let (mut g4, mut o4) = (gs.chunks_exact(4), offs.chunks_exact(4));
            for (gv, of) in g4.by_ref().zip(o4.by_ref()) {
                add_filter(a0, table, gv[0], of[0]);
                add_filter(a1, table, gv[1], of[1]);
                add_filter(a2, table, gv[2], of[2]);
                add_filter(a3, table, gv[3], of[3]);
            }
            for (gv, of) in g4.remainder().iter().zip(o4.remainder()) {
                add_filter(a0, table, *gv, *of);
            }
            let mut patch = [[0f32; L]; C];
            for (k, v) in patch.iter_mut().enumerate() {
                for (l, v) in v.iter_mut().enumerate() {
                    *v = (a0[k][l] + a1[k][l]) + (a2[k][l] + a3[k][l]);
                }
            }
            let patch = patch.as_flattened();
            let (y, x) = ((u / d.pw) * s, (u % d.pw) * s);
            for (row, src) in patch.chunks_exact(pc).take(pr).enumerate() {
                for (a, v) in dx[(y + row) * d.w + x..][..pc].iter_mut().zip(src) {
                    *a += v;
                }
            }
        }
    }
}

/// `acc += g · table[offset..]`: one channel's filter shifted to its argmax, scaled by its gradient.
#[inline(always)]
fn add_filter<const C: usize>(acc: &mut [[f32; L]; C], table: &[f32], g: f32, offset: usize) {
    for (a, f) in acc.iter_mut().zip(table[offset..][..C * L].chunks_exact(L)) {
        for (a, f) in a.iter_mut().zip(f) {
            *a = g.mul_add(*f, *a);
        }
    }
}

/// The gradients (through the ReLU) of output values `at..at + o`, one pool window's channels,
/// into `gs`, and the offsets of their shifted filters in the table (`p` values each) into `offs`.
#[inline(always)]
fn window_grads(g: Grad, at: usize, o: usize, p: usize, gs: &mut [f32], offs: &mut [usize]) {
    let dy = &g.dy[at..][..o];
    match g.relu_out {
        Some(y) => {
            for ((dst, g), y) in gs.iter_mut().zip(dy).zip(&y[at..][..o]) {
                *dst = through_relu(*g, *y);
            }
        }
        None => gs.copy_from_slice(dy),
    }
    match g.argmax {
        Some(arg) => {
            for (ch, (dst, q)) in offs.iter_mut().zip(&arg[at..][..o]).enumerate() {
                *dst = (usize::from(*q) * o + ch) * p;
            }
        }
        None => offs.iter_mut().enumerate().for_each(|(ch, dst)| *dst = ch * p),
    }
}

/// The gradients (through the ReLU) and argmax offsets of the output values from `at` on, one
/// per lane of `gs` and `offs`.
#[inline(always)]
fn window_lanes(g: Grad, at: usize, gs: &mut [f32], offs: &mut [u32]) {
    let n = gs.len();
    let dy = &g.dy[at..][..n];
    match g.relu_out {
        Some(y) => {
            for ((dst, g), y) in gs.iter_mut().zip(dy).zip(&y[at..][..n]) {
                *dst = through_relu(*g, *y);
            }
        }
        None => gs.copy_from_slice(dy),
    }
    if let Some(arg) = g.argmax {
        for (dst, q) in offs.iter_mut().zip(&arg[at..][..n]) {
            *dst = u32::from(*q);
        }
    }
}

/// The weight gradient `[O, KH·KW]`.
pub(super) fn weight_grad(x: &[f32], g: Grad, d: &ConvDims) -> Vec<f32> {
    let (o, taps) = (d.o, d.kh * d.kw);
    let chunks = o.div_ceil(L);
    let run = per_run(d);
    let partials: Vec<Vec<f32>> = x
        .par_chunks(run * d.image_in())
        .enumerate()
        .map(|(r, xs)| {
            let mut acc = vec![0f32; chunks * taps * L];
            pulp::Arch::new().dispatch(WeightGradRun { xs, g, d, first: r * run, acc: &mut acc });
            acc
        })
        .collect();
    let mut dw = vec![0f32; o * taps];
    for acc in partials {
        for (oc, filter) in dw.chunks_exact_mut(taps).enumerate() {
            for (t, v) in filter.iter_mut().enumerate() {
                *v += acc[((oc / L) * taps + t) * L + oc % L];
            }
        }
    }
    dw
}

/// The weight gradient of a run of images `xs` (from image `first` on), added to `acc`
/// (`[⌈O/L⌉, KH·KW, L]`), as a `WithSimd` struct (see [`ForwardRun`]).
struct WeightGradRun<'a> {
    xs: &'a [f32],
    g: Grad<'a>,
    d: &'a ConvDims,
    first: usize,
    acc: &'a mut [f32],
}

impl pulp::WithSimd for WeightGradRun<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        let WeightGradRun { xs, g, d, first, acc } = self;
        let (o, s, taps) = (d.o, d.pool, d.kh * d.kw);
        // [chunk · tap][L]: whole vectors, so that the FMAs below vectorize.
        let (acc, _) = acc.as_chunks_mut::<L>();
        for (img, x) in xs.chunks_exact(d.image_in()).enumerate() {
            let base = (first + img) * d.image_out();
            for u in 0..d.out_n() {
                let (wi, wj) = (u / d.pw, u % d.pw);
                for (ch, acc) in acc.chunks_exact_mut(taps).enumerate() {
                    let lo = ch * L;
                    let (mut gv, mut at) = ([0f32; L], [0u32; L]);
                    let at_out = base + u * o + lo;
                    if o - lo >= L {
                        window_lanes(g, at_out, &mut gv, &mut at);
                    } else {
                        window_lanes(g, at_out, &mut gv[..o - lo], &mut at[..o - lo]);
                    }
                    for q in 0..s * s {
                        let mut gq = [0f32; L];
                        for ((dst, v), a) in gq.iter_mut().zip(gv.iter()).zip(at.iter()) {
                            *dst = if *a == q as u32 { *v } else { 0.0 };
                        }
                        let (y, xx) = (wi * s + q / s, wj * s + q % s);
                        for (i, acc_row) in acc.chunks_exact_mut(d.kw).enumerate() {
                            let x_row = &x[(y + i) * d.w + xx..][..d.kw];
                            for (xv, a) in x_row.iter().zip(acc_row) {
                                // A local copy: the compiler cannot tell that the stores to `a`
                                // leave `x` alone, and would reload it for every lane.
                                let xv = *xv;
                                for (a, g) in a.iter_mut().zip(gq.iter()) {
                                    *a = g.mul_add(xv, *a);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{channel_vectors, forward, forward_image, Channels, ConvDims, L};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// The 3×3, pool-2 forward (whole vectors of channels: the specialized loop) gives the general
    /// loop's values and argmaxes bit for bit, on random images with ties (values on a grid of 1/4)
    /// and with and without the ReLU, on 1 and 2 threads.
    #[test]
    fn specialized_forward_is_the_general_one() -> candle_core::Result<()> {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let (b, h, w, o) = (3, 12, 11, 32);
        let x: Vec<f32> = (0..b * h * w).map(|_| rng.random_range(-4i32..=4) as f32 / 4.0).collect();
        let wt: Vec<f32> = (0..o * 9).map(|_| rng.random_range(-1.0f32..=1.0)).collect();
        let bias: Vec<f32> = (0..o).map(|_| rng.random_range(-1.0f32..=1.0)).collect();
        for threads in [1, 2] {
            let pool =
                rayon::ThreadPoolBuilder::new().num_threads(threads).build().map_err(candle_core::Error::wrap)?;
            pool.install(|| -> candle_core::Result<()> {
                let d = ConvDims::new(&[b, 1, h, w], &[o, 1, 3, 3], 2, Channels::First, Channels::Last)?;
                for relu in [false, true] {
                    let (ys, args) = forward(&x, &wt, Some(&bias), relu, &d);
                    let (wv, per_in, per_out) = (channel_vectors(&wt, &d), d.image_in(), d.image_out());
                    let (mut want, mut want_args) = (vec![0f32; ys.len()], vec![0u8; ys.len()]);
                    for img in 0..b {
                        let (out, arg) =
                            (&mut want[img * per_out..][..per_out], &mut want_args[img * per_out..][..per_out]);
                        forward_image(&x[img * per_in..][..per_in], out, arg, &wv, &bias, relu, &d);
                    }
                    assert_eq!(o % L, 0);
                    assert_eq!(
                        ys.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                        want.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
                    );
                    assert_eq!(args, want_args);
                    assert!(args.iter().any(|a| *a > 0), "the argmax is not always the first position");
                }
                Ok(())
            })?;
        }
        Ok(())
    }
}
