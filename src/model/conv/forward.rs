//! The forward pass: im2col, one GEMM per group of images, then bias, ReLU and pool; and the
//! per-thread scratch buffers both passes use.

use super::dims::{Channels, ConvDims};
use super::direct;
use super::pool::pool_blocks;
use crate::kernels::{sgemm, simd, Mat};
use candle_core::Result;
use rayon::prelude::*;

/// `dst.copy_from_slice(src)` for the rows of im2col (e.g. 11 values channels-first, 96 or 192
/// channels-last), without a call to `memcpy` per row: 16- and 8-value blocks have a constant size,
/// which the compiler turns into vector moves; the tail is one more block overlapping the previous
/// one. (Through `memcpy`, the channels-last im2col spent more in the calls than in the copies.)
#[inline(always)]
fn copy_row(dst: &mut [f32], src: &[f32]) {
    let n = dst.len().min(src.len());
    if n >= 16 {
        let mut k = 0;
        while k + 16 <= n {
            dst[k..k + 16].copy_from_slice(&src[k..k + 16]);
            k += 16;
        }
        if k < n {
            dst[n - 16..n].copy_from_slice(&src[n - 16..n]);
        }
        return;
    }
    if n < 8 {
        for (d, s) in dst.iter_mut().zip(src) {
            *d = *s;
        }
        return;
    }
    let mut k = 0;
    while k + 8 <= n {
        dst[k..k + 8].copy_from_slice(&src[k..k + 8]);
        k += 8;
    }
    if k < n {
        dst[n - 8..n].copy_from_slice(&src[n - 8..n]);
    }
}

/// The rows of an image `x: [C, H, W]` split by column phase for a pool of `s = d.pool`:
/// `xp[((c·H + r)·s + p)·WU + u] = x[c, r, u·s + p]` (0 past the row's end), `WU = ⌈W/s⌉`, so that
/// the stride-`s` reads of the window-major im2col (see [`ConvDims::n`]) become contiguous. Without
/// a pool (`s = 1`) this is `x` itself, and no copy is made.
pub(super) fn split_phases<'a>(x: &'a [f32], d: &ConvDims, buf: &'a mut Vec<f32>) -> &'a [f32] {
    simd(|| {
        let (s, wu) = (d.pool, d.phase_w());
        if s == 1 {
            return x;
        }
        buf.clear();
        buf.resize(d.c * d.h * s * wu, 0.0);
        for (row, dst) in x.chunks_exact(d.w).zip(buf.chunks_exact_mut(s * wu)) {
            if s == 2 {
                // The common case: even and odd columns, without index arithmetic.
                let (even, odd) = dst.split_at_mut(wu);
                for ((e, o), pair) in even.iter_mut().zip(odd.iter_mut()).zip(row.chunks_exact(2)) {
                    (*e, *o) = (pair[0], pair[1]);
                }
                if d.w % 2 == 1 {
                    even[wu - 1] = row[d.w - 1];
                }
                continue;
            }
            for (u, chunk) in row.chunks(s).enumerate() {
                for (p, v) in chunk.iter().enumerate() {
                    dst[p * wu + u] = *v;
                }
            }
        }
        buf
    })
}

/// Calls `f(row, column, source offset, source stride)` for each block of the window-major im2col
/// matrix of one image (see [`ConvDims::n`]): row `(c, i, j)`, the `PH·PW` columns from `column`
/// on (one element of every pool window), read from the phase-split image (see [`split_phases`])
/// as `PH` runs of `PW` values, the first at `source offset`, each `source stride` after the
/// previous. im2col copies along these runs, col2im adds back along them. Within a row, blocks come
/// in increasing column order.
#[inline(always)]
fn for_each_block(d: &ConvDims, mut f: impl FnMut(usize, usize, usize, usize)) {
    let (s, wu, pn) = (d.pool, d.phase_w(), d.out_n());
    for row in 0..d.k() {
        let (c, ki, kj) = (row / (d.kh * d.kw), row / d.kw % d.kh, row % d.kw);
        for (qy, qx) in (0..s).flat_map(|qy| (0..s).map(move |qx| (qy, qx))) {
            // Input row i·s + qy + ki, column u·s + t with t = qx + kj: phase t mod s, offset t div s.
            let (phase, off) = ((qx + kj) % s, (qx + kj) / s);
            f(row, (qy * s + qx) * pn, ((c * d.h + qy + ki) * s + phase) * wu + off, s * s * wu);
        }
    }
}

/// Writes the window-major im2col matrix of one phase-split image `xp` (see [`split_phases`]) into
/// `col` (rows `ld` apart): row `(c, i, j)`, column of position `(y, x)` gets `x[c, y+i, x+j]`.
fn im2col(xp: &[f32], d: &ConvDims, col: &mut [f32], ld: usize) {
    simd(|| {
        let (pw, n) = (d.pw, d.n());
        for_each_block(d, |row, column, src, stride| {
            // This image's part of the row.
            let dst = &mut col[row * ld..][..n];
            for i in 0..d.ph {
                let (at, from) = (column + i * pw, src + i * stride);
                if pw < 8 && at + 8 <= n && from + 8 <= xp.len() {
                    // A short run (5 values for a 13×13 input pooled by 2) copied as one block of 8:
                    // what spills past it lands on later columns of the same row and image, which
                    // later runs overwrite (they come in increasing column order).
                    dst[at..at + 8].copy_from_slice(&xp[from..from + 8]);
                } else {
                    copy_row(&mut dst[at..at + pw], &xp[from..from + pw]);
                }
            }
        });
    })
}

/// The transpose of [`im2col`] for one image: `dx[c, y+i, x+j] += gcol[(c, i, j), column of (y, x)]`,
/// into the phase-split `dxp` (see [`split_phases`]; `dx` itself without a pool).
pub(super) fn col2im(gcol: &[f32], d: &ConvDims, ld: usize, dxp: &mut [f32]) {
    simd(|| {
        let (pw, pn) = (d.pw, d.out_n());
        for_each_block(d, |row, column, dst, stride| {
            for (i, g) in gcol[row * ld + column..][..pn].chunks_exact(pw).enumerate() {
                for (a, g) in dxp[dst + i * stride..][..pw].iter_mut().zip(g) {
                    *a += g;
                }
            }
        });
    })
}

/// The inverse of [`split_phases`]: `dx[c, r, u·s + p] = dxp[((c·H + r)·s + p)·WU + u]`.
pub(super) fn merge_phases(dxp: &[f32], d: &ConvDims, dx: &mut [f32]) {
    simd(|| {
        let (s, wu) = (d.pool, d.phase_w());
        for (row, src) in dx.chunks_exact_mut(d.w).zip(dxp.chunks_exact(s * wu)) {
            if s == 2 {
                let (even, odd) = src.split_at(wu);
                for ((pair, e), o) in row.chunks_exact_mut(2).zip(even).zip(odd) {
                    (pair[0], pair[1]) = (*e, *o);
                }
                if d.w % 2 == 1 {
                    row[d.w - 1] = even[wu - 1];
                }
                continue;
            }
            for (u, chunk) in row.chunks_mut(s).enumerate() {
                for (p, v) in chunk.iter_mut().enumerate() {
                    *v = src[p * wu + u];
                }
            }
        }
    })
}

/// The channels-last im2col of one image `x: [H, W, C]` into `col: [N, K]` (one row per output
/// position, in the window-major order of [`ConvDims::n`]; columns `(i, j, c)`):
/// `col[(y, x), (i, j, c)] = x[y+i, x+j, c]`, copied as `KH` runs of `KW·C` contiguous values.
fn im2col_nhwc(x: &[f32], d: &ConvDims, col: &mut [f32]) {
    pulp::Arch::new().dispatch(Nhwc { src: x, d, dst: col, add: false })
}

/// The transpose of [`im2col_nhwc`] for one image: `dx[y+i, x+j, c] += gcol[(y, x), (i, j, c)]`,
/// added along the same runs.
pub(super) fn col2im_nhwc(gcol: &[f32], d: &ConvDims, dx: &mut [f32]) {
    pulp::Arch::new().dispatch(Nhwc { src: gcol, d, dst: dx, add: true })
}

/// [`im2col_nhwc`] (`add` false: `src` the image, `dst` the columns) or [`col2im_nhwc`] (`add`
/// true: `src` the columns, `dst` the image gradient), as a `WithSimd` struct rather than a closure
/// for `kernels::simd`: a closure this size is not inlined into pulp's function compiled for the
/// CPU's widest vectors, so it ran with 4-float SSE2 vectors (and im2col called `memcpy` per run).
struct Nhwc<'a> {
    src: &'a [f32],
    d: &'a ConvDims,
    dst: &'a mut [f32],
    add: bool,
}

impl pulp::WithSimd for Nhwc<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        let Nhwc { src, d, dst, add } = self;
        let (run, k) = (d.kw * d.c, d.k());
        for r in 0..d.n() {
            let (y, xx) = d.position(r);
            for i in 0..d.kh {
                let at = ((y + i) * d.w + xx) * d.c;
                let cols = r * k + i * run;
                if add {
                    for (a, g) in dst[at..at + run].iter_mut().zip(&src[cols..cols + run]) {
                        *a += g;
                    }
                } else {
                    copy_row(&mut dst[cols..cols + run], &src[at..at + run]);
                }
            }
        }
    }
}

/// The im2col matrix of a group of images `xs` (`[G, C, H, W]` or `[G, H, W, C]`), built in `buf`
/// (`phases`: a buffer for [`split_phases`]): `[K, G·N]` for a channels-first input, `[G·N, K]`
/// (columns `(i, j, c)`) for a channels-last one. [`col_kn`] reads either as `[K, G·N]`.
pub(super) fn group_cols<'a>(xs: &[f32], d: &ConvDims, buf: &'a mut Vec<f32>, phases: &mut Vec<f32>) -> &'a [f32] {
    let (g, ld) = (xs.len() / d.image_in(), xs.len() / d.image_in() * d.n());
    buf.resize(d.k() * ld, 0.0);
    for (i, x) in xs.chunks_exact(d.image_in()).enumerate() {
        match d.input {
            Channels::First => im2col(split_phases(x, d, phases), d, &mut buf[i * d.n()..], ld),
            Channels::Last => im2col_nhwc(x, d, &mut buf[i * d.n() * d.k()..][..d.n() * d.k()]),
        }
    }
    &buf[..d.k() * g * d.n()]
}

/// A group's im2col matrix (see [`group_cols`]) `width` columns wide, as a `[K, width]` view.
pub(super) fn col_kn<'a>(col: &'a [f32], d: &ConvDims, width: usize) -> Mat<'a> {
    match d.input {
        Channels::First => Mat::rows(col, width),
        Channels::Last => Mat::rows(col, d.k()).t(),
    }
}

/// The weights `[O, C, KH, KW]` as the GEMMs use them, `[O, K]` with `K` in the im2col's column
/// order: as they are for a channels-first input, reordered to `[O, KH, KW, C]` for a
/// channels-last one.
pub(super) fn gemm_weights<'a>(w: &'a [f32], d: &ConvDims) -> std::borrow::Cow<'a, [f32]> {
    if d.input == Channels::First {
        return std::borrow::Cow::Borrowed(w);
    }
    let (kk, c) = (d.kh * d.kw, d.c);
    let mut out = vec![0f32; w.len()];
    for (src, dst) in w.chunks_exact(c * kk).zip(out.chunks_exact_mut(c * kk)) {
        for (ch, plane) in src.chunks_exact(kk).enumerate() {
            for (ij, v) in plane.iter().enumerate() {
                dst[ij * c + ch] = *v;
            }
        }
    }
    std::borrow::Cow::Owned(out)
}

/// The transpose of [`gemm_weights`], `[K, O]`, in one pass: `wt[(kk, o)] = w[o, column kk]`, each
/// row of `wt` gathered from one im2col column's weights (written in order, read `K` apart).
pub(super) fn gemm_weights_t(w: &[f32], d: &ConvDims) -> Vec<f32> {
    let (k, kk, c, o) = (d.k(), d.kh * d.kw, d.c, d.o);
    let mut wt = vec![0f32; k * o];
    for (col, dst) in wt.chunks_exact_mut(o).enumerate() {
        // The column's index in `[C, KH, KW]` order: as it is channels-first; `(i, j, c)` order
        // (col = ij·C + c) channels-last.
        let src = match d.input {
            Channels::First => col,
            Channels::Last => (col % c) * kk + col / c,
        };
        for (v, filter) in dst.iter_mut().zip(w.chunks_exact(k)) {
            *v = filter[src];
        }
    }
    wt
}

/// The inverse of [`gemm_weights`]: a weight gradient `[O, K]` in the im2col's column order back
/// to `[O, C, KH, KW]`.
pub(super) fn weights_from_gemm(dw: Vec<f32>, d: &ConvDims) -> Vec<f32> {
    if d.input == Channels::First {
        return dw;
    }
    let (kk, c) = (d.kh * d.kw, d.c);
    let mut out = vec![0f32; dw.len()];
    for (src, dst) in dw.chunks_exact(c * kk).zip(out.chunks_exact_mut(c * kk)) {
        for (ch, plane) in dst.chunks_exact_mut(kk).enumerate() {
            for (ij, v) in plane.iter_mut().enumerate() {
                *v = src[ij * c + ch];
            }
        }
    }
    out
}

/// Per-thread scratch buffers (im2col matrices, reordered gradients, GEMM products), kept between
/// calls: a fresh buffer of this size would be `mmap`ed and page-faulted in on every call, which
/// costs as much as the arithmetic here.
pub(super) type Scratch = [Vec<f32>; 5];

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::default();
}

/// Runs `f` with this thread's scratch buffers, or with fresh ones if they are in use (a rayon
/// thread waiting inside a GEMM may start another group's task).
pub(super) fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut scratch) => f(&mut scratch),
        Err(_) => f(&mut Scratch::default()),
    })
}

/// Runs `f(group index, chunk, scratch)` over `data` cut into chunks of `d.group` images of
/// `per_image` values, in parallel or one after the other (see [`ConvDims::parallel_groups`]),
/// and returns the results in group order.
fn map_groups<R: Send>(
    d: &ConvDims,
    data: &mut [f32],
    per_image: usize,
    f: impl Fn(usize, &mut [f32], &mut Scratch) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    if per_image == 0 {
        return Ok(Vec::new());
    }
    let chunk = d.group * per_image;
    if d.parallel_groups() {
        data.par_chunks_mut(chunk).enumerate().map(|(g, c)| with_scratch(|s| f(g, c, s))).collect()
    } else {
        with_scratch(|s| data.chunks_mut(chunk).enumerate().map(|(g, c)| f(g, c, s)).collect())
    }
}

/// Forward: per group, `w[O, K] × col[K, G·N]` (channels-first output) or its transpose
/// `col[G·N, K] × wᵀ` (channels-last output), then bias, ReLU and pool into the output. Returns
/// the output and, if pooled, each window's argmax offset (one byte per output value).
pub(super) fn conv_forward(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    relu: bool,
    d: &ConvDims,
) -> Result<(Vec<f32>, Vec<u8>)> {
    if direct::applies(d) {
        return Ok(direct::forward(x, w, bias, relu, d));
    }
    let (n, k, o) = (d.n(), d.k(), d.o);
    let mut ys = vec![0f32; d.b * d.image_out()];
    let parallel_gemm = !d.parallel_groups();
    let last = d.output == Channels::Last;
    // A channels-last product `col[G·N, K] × wᵀ` takes `wᵀ` row-major (see `backward::conv_backward`
    // on the `gemm` crate's packing), built in one pass; a channels-first one `w[O, K]`.
    let (wk, wt) = if last {
        (std::borrow::Cow::Borrowed(&[][..]), gemm_weights_t(w, d))
    } else {
        (gemm_weights(w, d), Vec::new())
    };
    let (wk, wt): (&[f32], &[f32]) = (&wk, &wt);
    // Bias and ReLU commute with the max (both are non-decreasing), so they apply after the pool.
    let zeros = vec![0f32; if bias.is_none() { o } else { 0 }];
    let bias = bias.unwrap_or(&zeros);
    let finish = |v: f32, o: usize| {
        let v = v + bias[o];
        if relu {
            v.max(0.0)
        } else {
            v
        }
    };
    // The same on rows of `O` channels (channels-last), vectorized.
    let finish_rows = |out: &mut [f32]| {
        simd(|| {
            for row in out.chunks_exact_mut(o) {
                for (v, b) in row.iter_mut().zip(bias) {
                    let y = *v + b;
                    *v = if relu { y.max(0.0) } else { y };
                }
            }
        })
    };
    let argmax = map_groups(d, &mut ys, d.image_out(), |g, out, [cols, prod, phases, ..]| {
        let images = out.len() / d.image_out();
        let col = group_cols(&x[g * d.group * d.image_in()..][..images * d.image_in()], d, cols, phases);
        let width = images * n;
        let col = col_kn(col, d, width);
        if d.pool == 1 && (last || images == 1) {
            // No pool, and the product has the output's layout: the GEMM writes the output directly.
            if last {
                sgemm((width, o, k), col.t(), Mat::rows(wt, o), out, false, parallel_gemm)?;
                finish_rows(out);
            } else {
                sgemm((o, n, k), Mat::rows(wk, k), col, out, false, parallel_gemm)?;
                simd(|| {
                    for (o, row) in out.chunks_exact_mut(n).enumerate() {
                        row.iter_mut().for_each(|v| *v = finish(*v, o));
                    }
                });
            }
            return Ok(Vec::new());
        }
        prod.resize(o * width, 0.0);
        if last {
            sgemm((width, o, k), col.t(), Mat::rows(wt, o), prod, false, parallel_gemm)?;
        } else {
            sgemm((o, width, k), Mat::rows(wk, k), col, prod, false, parallel_gemm)?;
        }
        let mut arg = vec![0u8; if d.pool > 1 { out.len() } else { 0 }];
        for (img, out) in out.chunks_exact_mut(d.image_out()).enumerate() {
            if last {
                // Image `img`'s product `[N, O]`: pool² contiguous blocks of `[PH·PW, O]`.
                let block = &prod[img * n * o..][..n * o];
                if d.pool > 1 {
                    pool_blocks(block, out, &mut arg[img * d.image_out()..][..d.image_out()]);
                } else {
                    out.copy_from_slice(block);
                }
                finish_rows(out);
                continue;
            }
            simd(|| {
                for (o, out) in out.chunks_exact_mut(d.out_n()).enumerate() {
                    let plane = &prod[o * width + img * n..][..n];
                    if d.pool > 1 {
                        let arg = &mut arg[img * d.image_out() + o * d.out_n()..][..d.out_n()];
                        pool_blocks(plane, out, arg);
                        out.iter_mut().for_each(|v| *v = finish(*v, o));
                    } else {
                        out.iter_mut().zip(plane).for_each(|(v, p)| *v = finish(*p, o));
                    }
                }
            });
        }
        Ok(arg)
    })?;
    Ok((ys, argmax.concat()))
}
