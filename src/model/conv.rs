//! A fast CPU path for convolutional networks: [`FastConv2d`] (a 'valid', stride-1 2-D
//! convolution, optionally fused with the ReLU and the max-pool that follow it) and
//! [`fast_max_pool2d`], candle custom ops with a hand-written backward.
//!
//! candle 0.11's CPU `conv2d` is quick forward but slow backward (NSL's MNIST CNN spends ~60 of
//! its ~75 ms per batch of 32 in the convolution gradients), and its `max_pool2d` backward is
//! wrong (see [`fast_max_pool2d`]). Here every product is im2col + an f32 GEMM (the `gemm` crate,
//! which candle's own matmul uses).
//!
//! # Formulas
//! For an input `x: [B, C, H, W]`, weights `w: [O, C, KH, KW]` and bias `b: [O]`, with
//! `OH = H − KH + 1`, `OW = W − KW + 1`, `N = OH·OW` and `K = C·KH·KW`, per group of `G` images
//! (`G = 1` unless an image has few output positions, so that each GEMM stays wide):
//!
//! ```text
//! col[(c,i,j), (n,y,x)] = x[n, c, y+i, x+j]                 im2col, [K, G·N]
//! y[n, o, :] = (w[O, K] × col)[o, n·N ..] + b[o]            forward: one GEMM per group
//! ∂w = Σ_groups ∂y' × colᵀ    with ∂y'[o, (n,y,x)] = ∂y[n, o, y, x]
//! ∂x = col2im(wᵀ × ∂y')       col2im: the scatter-add transposing im2col
//! ∂b[o] = Σ_{n,y,x} ∂y[n, o, y, x]
//! ```
//! With a fused ReLU ([`FastConv2d::forward_relu`]) `y ← max(y, 0)`, and the incoming gradient is
//! first masked by `y > 0`, as TensorFlow's `ReluGrad` does. With a fused pool
//! ([`FastConv2d::forward_relu_pool`]) the output is each window's maximum, and the gradient goes
//! back to the window's first maximum (its offset is kept from the forward, one byte per output).
//!
//! # Limits
//! Stride 1, no padding, no dilation, one group, NCHW layout; a fused pool window is at most
//! 16×16. The fast path runs for f32 tensors on the CPU device; anything else (another dtype or
//! device) falls back to candle's own `conv2d`, `relu` and `max_pool2d`, so a model using these
//! layers still works everywhere. Non-contiguous inputs are made contiguous first (a no-op for the
//! usual layer outputs). Second derivatives are not supported (the backward is not itself
//! differentiable).
//!
//! # Threads and memory
//! Groups of images run in parallel on the rayon pool (`RAYON_NUM_THREADS`); when there are fewer
//! groups than threads, the GEMMs split their work instead. With one thread everything runs on it.
//! Group sizes follow the thread count, and every sum runs in a fixed order, so results are the
//! same from run to run for a given thread count (not across thread counts).
//! The im2col matrices and other per-group temporaries live in per-thread scratch buffers reused
//! across calls (at most a few hundred KiB per thread for NSL's CNN): a fresh buffer of that size
//! is `mmap`ed and page-faulted in on every call, which costs as much as the arithmetic.

use super::kernels::{cpu_slice, sgemm, transpose, with_slice, Mat};
use candle_core::{bail, CpuStorage, CustomOp1, CustomOp2, CustomOp3, DType, Layout, Module, Result, Shape, Tensor};
use candle_nn::VarBuilder;
use rayon::prelude::*;
use std::sync::OnceLock;

/// A 2-D convolution, stride 1, no padding ('valid'), as a candle custom op with a fast CPU
/// backward. Weights `[out, in, kh, kw]`, bias `[out]`; input `[B, in, H, W]`, output
/// `[B, out, H−kh+1, W−kw+1]`.
///
/// `y[n, o, y, x] = b[o] + Σ_{c,i,j} w[o, c, i, j] · x[n, c, y+i, x+j]` (a cross-correlation, as
/// in candle, TensorFlow and PyTorch).
///
/// It computes the same function as `candle_nn::Conv2d` with the default config and is built from
/// the same variable names (`weight`, `bias`, see [`fast_conv2d`]), so checkpoints are
/// interchangeable. Gradients flow to the input, the weights and the bias. See the
/// [module docs](self) for the formulas and limits.
///
/// ```
/// use candle_core::{Device, Module, Tensor};
/// use nsl::model::FastConv2d;
/// // y = x[i][j] − x[i+1][j+1] + 10 on x = [[1, 2, 3], [4, 5, 6], [7, 8, 9]]: 6 everywhere.
/// let dev = Device::Cpu;
/// let w = Tensor::new(&[1f32, 0.0, 0.0, -1.0], &dev)?.reshape((1, 1, 2, 2))?;
/// let conv = FastConv2d::new(w, Some(Tensor::new(&[10f32], &dev)?))?;
/// let x = Tensor::arange(1f32, 10.0, &dev)?.reshape((1, 1, 3, 3))?;
/// assert_eq!(conv.forward(&x)?.flatten_all()?.to_vec1::<f32>()?, [6.0; 4]);
/// # Ok::<(), candle_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct FastConv2d {
    weight: Tensor,
    bias: Option<Tensor>,
}

impl FastConv2d {
    /// A convolution with the given weights `[out, in, kh, kw]` and optional bias `[out]`.
    ///
    /// # Errors
    /// If the weights are not rank 4 or the bias length differs from `out`.
    pub fn new(weight: Tensor, bias: Option<Tensor>) -> Result<Self> {
        let (out, _, _, _) = weight.dims4()?;
        if let Some(bias) = &bias {
            let len = bias.dims1()?;
            if len != out {
                bail!("fast_conv2d: bias has {len} values but the weights {:?} have {out} filters", weight.dims());
            }
        }
        Ok(FastConv2d { weight, bias })
    }

    /// The weights, `[out, in, kh, kw]`.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// The bias, `[out]`, if any.
    pub fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
    }

    /// `relu(conv(xs))` in one op: the same values and gradients as `self.forward(xs)?.relu()`
    /// (up to the gradient at exactly 0, which goes nowhere here, as in TensorFlow), without the
    /// separate ReLU node and its half-dozen full-size passes in candle's backward.
    ///
    /// # Errors
    /// As [`Module::forward`].
    pub fn forward_relu(&self, xs: &Tensor) -> Result<Tensor> {
        self.apply(xs, true, 1)
    }

    /// `max_pool(relu(conv(xs)), size)` in one op, the conv → ReLU → pool block of a CNN: the
    /// same values and gradients as [`fast_max_pool2d`]`(&self.forward_relu(xs)?, size)`, but the
    /// full-size activation before the pool never becomes a tensor (only each window's argmax is
    /// kept, one byte per output, for the backward).
    ///
    /// # Errors
    /// As [`Module::forward`], or if `size` is 0, larger than 16, or larger than the
    /// convolution's output.
    pub fn forward_relu_pool(&self, xs: &Tensor, size: usize) -> Result<Tensor> {
        if size == 0 || size > MAX_POOL {
            bail!("fast_conv2d: pool size {size} must be between 1 and {MAX_POOL}");
        }
        self.apply(xs, true, size)
    }

    fn apply(&self, xs: &Tensor, relu: bool, pool: usize) -> Result<Tensor> {
        let fast = xs.device().is_cpu()
            && xs.dtype() == DType::F32
            && self.weight.dtype() == DType::F32
            && self.bias.as_ref().is_none_or(|b| b.dtype() == DType::F32);
        if !fast {
            let mut ys = xs.conv2d(&self.weight, 0, 1, 1, 1)?;
            if let Some(bias) = &self.bias {
                ys = ys.broadcast_add(&bias.reshape((1, bias.dim(0)?, 1, 1))?)?;
            }
            if relu {
                ys = ys.relu()?;
            }
            return if pool > 1 { ys.max_pool2d(pool) } else { Ok(ys) };
        }
        // The op reads raw slices, so it needs contiguous operands (a no-op for layer outputs).
        let xs = xs.contiguous()?;
        let weight = self.weight.contiguous()?;
        let op = ConvOp { relu, pool, argmax: OnceLock::new() };
        match &self.bias {
            None => xs.apply_op2(&weight, op),
            Some(bias) => xs.apply_op3(&weight, &bias.contiguous()?, op),
        }
    }
}

impl Module for FastConv2d {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        self.apply(xs, false, 1)
    }
}

/// Builds a [`FastConv2d`] from `vb` exactly as `candle_nn::conv2d(in, out, k, Default::default(), vb)`
/// does: weights `weight` `[out, in, k, k]` (Kaiming-normal init), bias `bias` `[out]`
/// (uniform in `±1/sqrt(in)`).
///
/// # Errors
/// A candle error if a variable cannot be created or has another shape in `vb`.
pub fn fast_conv2d(in_channels: usize, out_channels: usize, kernel_size: usize, vb: VarBuilder) -> Result<FastConv2d> {
    let weight = vb.get_with_hints(
        (out_channels, in_channels, kernel_size, kernel_size),
        "weight",
        candle_nn::init::DEFAULT_KAIMING_NORMAL,
    )?;
    let bound = 1. / (in_channels as f64).sqrt();
    let bias = vb.get_with_hints(out_channels, "bias", candle_nn::Init::Uniform { lo: -bound, up: bound })?;
    FastConv2d::new(weight, Some(bias))
}

/// Max-pooling with a `size × size` window and stride `size` (no padding; trailing rows and
/// columns that do not fill a window are dropped, as in candle, Keras 'valid' and PyTorch):
/// `y[n, c, i, j] = max_{0≤p,q<size} x[n, c, i·size+p, j·size+q]` on `[B, C, H, W]`, giving
/// `[B, C, H/size, W/size]`. A NaN in a window makes its maximum NaN.
///
/// The gradient goes to the first maximum of each window in row-major order, as in TensorFlow
/// and PyTorch. candle 0.11.1's own `max_pool2d` backward is wrong: it multiplies the gradient by
/// the share of maxima in the window (1/4 for a unique maximum in 2×2) and, when `size` does not
/// divide `H` or `W` (the 11×11 → 5×5 pool of NSL's MNIST CNN), matches inputs against the wrong
/// windows, so most of the gradient is lost.
///
/// f32 CPU tensors take the fast path; others fall back to candle's `max_pool2d`, gradient error
/// included.
///
/// # Errors
/// If `xs` is not rank 4, `size` is 0, or the image is smaller than one window.
pub fn fast_max_pool2d(xs: &Tensor, size: usize) -> Result<Tensor> {
    let (_, _, h, w) = xs.dims4()?;
    if size == 0 || h < size || w < size {
        bail!("fast_max_pool2d: window {size}×{size} does not fit images of {h}×{w}");
    }
    if !xs.device().is_cpu() || xs.dtype() != DType::F32 {
        return xs.max_pool2d(size);
    }
    xs.contiguous()?.apply_op1(MaxPoolOp { size })
}

// ---------------------------------------------------------------------------------------------
// Convolution kernels

/// A GEMM below this many output columns runs far from peak, so images with fewer output
/// positions are grouped (e.g. 3×3 outputs: 15 images per GEMM).
const MIN_GEMM_COLS: usize = 128;

/// The largest pool window fused into a convolution: offsets within a window fit in a byte.
const MAX_POOL: usize = 16;

/// The shapes of one convolution (and of the max-pool fused after it), and how the batch is grouped.
#[derive(Debug, Clone, Copy)]
struct ConvDims {
    b: usize,
    c: usize,
    h: usize,
    w: usize,
    o: usize,
    kh: usize,
    kw: usize,
    oh: usize,
    ow: usize,
    /// Pool window (1: no pooling) and the pooled height and width.
    pool: usize,
    ph: usize,
    pw: usize,
    /// Images per group (one GEMM each).
    group: usize,
}

impl ConvDims {
    fn new(x: &[usize], w: &[usize], pool: usize) -> Result<Self> {
        let ([b, c, h, wi], [o, wc, kh, kw]) = (x, w) else {
            bail!("fast_conv2d: input {x:?} and weights {w:?} must both be rank 4 ([B, C, H, W], [O, C, KH, KW])");
        };
        if c != wc {
            bail!("fast_conv2d: input {x:?} has {c} channels but the weights {w:?} expect {wc}");
        }
        if *kh == 0 || *kw == 0 || h < kh || wi < kw {
            bail!("fast_conv2d: kernel {kh}×{kw} does not fit input images of {h}×{wi} (input {x:?})");
        }
        let (oh, ow) = (h - kh + 1, wi - kw + 1);
        if pool == 0 || pool > MAX_POOL || oh < pool || ow < pool {
            bail!("fast_conv2d: pool window {pool}×{pool} does not fit the convolution's {oh}×{ow} output");
        }
        // As few groups as keep each GEMM at least MIN_GEMM_COLS wide, rounded up to a multiple of
        // the thread count, then images spread evenly over them (e.g. 32 images of 3×3 outputs on
        // 2 threads: 4 groups of 8 rather than 15 + 15 + 2).
        let threads = rayon::current_num_threads().max(1);
        let mut groups = b.div_ceil(MIN_GEMM_COLS.div_ceil(oh * ow)).max(1);
        if groups >= threads {
            groups = groups.div_ceil(threads) * threads;
        }
        let group = b.div_ceil(groups).max(1);
        let (b, c, h, w, o, kh, kw) = (*b, *c, *h, *wi, *o, *kh, *kw);
        Ok(ConvDims { b, c, h, w, o, kh, kw, oh, ow, pool, ph: oh / pool, pw: ow / pool, group })
    }

    /// Convolution output positions per image.
    fn n(&self) -> usize {
        self.oh * self.ow
    }

    /// Op output positions per image (after the pool, if any).
    fn out_n(&self) -> usize {
        self.ph * self.pw
    }

    /// Rows of the im2col matrix (the GEMM's inner dimension in the forward).
    fn k(&self) -> usize {
        self.c * self.kh * self.kw
    }

    /// Values of one input image.
    fn image_in(&self) -> usize {
        self.c * self.h * self.w
    }

    /// Values of one op output image, `[O, PH, PW]`.
    fn image_out(&self) -> usize {
        self.o * self.out_n()
    }

    /// The op's output shape.
    fn out_shape(&self) -> [usize; 4] {
        [self.b, self.o, self.ph, self.pw]
    }

    /// Number of groups of images.
    fn groups(&self) -> usize {
        self.b.div_ceil(self.group)
    }

    /// Images in group `g` (the last one may be smaller).
    fn images(&self, g: usize) -> usize {
        self.group.min(self.b - g * self.group)
    }

    /// Whether groups run in parallel (single-threaded GEMMs), or one after the other with
    /// multi-threaded GEMMs (when there are fewer groups than threads).
    fn parallel_groups(&self) -> bool {
        self.groups() >= rayon::current_num_threads()
    }
}

/// `dst.copy_from_slice(src)` for the short rows of im2col (e.g. 11 values), without a call to
/// `memcpy` per row: 8-value blocks have a constant size, which the compiler turns into vector
/// moves; the tail is one more block overlapping the previous one.
#[inline(always)]
fn copy_row(dst: &mut [f32], src: &[f32]) {
    let n = dst.len().min(src.len());
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

/// Writes the im2col matrix of one image `x: [C, H, W]` into `col` (rows `ld` apart): row
/// `(c, i, j)`, column `(y, x)` gets `x[c, y+i, x+j]`.
fn im2col(x: &[f32], d: &ConvDims, col: &mut [f32], ld: usize) {
    let plane_len = d.h * d.w;
    for row in 0..d.k() {
        let (c, i, j) = (row / (d.kh * d.kw), row / d.kw % d.kh, row % d.kw);
        let plane = &x[c * plane_len..][..plane_len];
        let dst = &mut col[row * ld..][..d.n()];
        for (y, dst) in dst.chunks_exact_mut(d.ow).enumerate() {
            copy_row(dst, &plane[(y + i) * d.w + j..][..d.ow]);
        }
    }
}

/// The transpose of [`im2col`] for one image: `dx[c, y+i, x+j] += gcol[(c, i, j), (y, x)]`.
fn col2im(gcol: &[f32], d: &ConvDims, ld: usize, dx: &mut [f32]) {
    let plane_len = d.h * d.w;
    for row in 0..d.k() {
        let (c, i, j) = (row / (d.kh * d.kw), row / d.kw % d.kh, row % d.kw);
        let plane = &mut dx[c * plane_len..][..plane_len];
        for (y, src) in gcol[row * ld..][..d.n()].chunks_exact(d.ow).enumerate() {
            for (a, g) in plane[(y + i) * d.w + j..][..d.ow].iter_mut().zip(src) {
                *a += g;
            }
        }
    }
}

/// The im2col matrix `[K, G·N]` of a group of images `xs: [G, C, H, W]`, built in `buf`.
fn group_cols<'a>(xs: &[f32], d: &ConvDims, buf: &'a mut Vec<f32>) -> &'a [f32] {
    let (g, ld) = (xs.len() / d.image_in(), xs.len() / d.image_in() * d.n());
    buf.resize(d.k() * ld, 0.0);
    for (i, x) in xs.chunks_exact(d.image_in()).enumerate() {
        im2col(x, d, &mut buf[i * d.n()..], ld);
    }
    &buf[..d.k() * g * d.n()]
}

/// Per-thread scratch buffers (im2col matrices, reordered gradients, transposes, GEMM products), kept between
/// calls: a fresh buffer of this size would be `mmap`ed and page-faulted in on every call, which
/// costs as much as the arithmetic here.
type Scratch = [Vec<f32>; 4];

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::default();
}

/// Runs `f` with this thread's scratch buffers, or with fresh ones if they are in use (a rayon
/// thread waiting inside a GEMM may start another group's task).
fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut scratch) => f(&mut scratch),
        Err(_) => f(&mut Scratch::default()),
    })
}

/// `g` if `keep`, else 0, as a bit mask so that loops vectorize (a branch on data would be
/// mispredicted half the time).
#[inline(always)]
fn keep_if(g: f32, keep: bool) -> f32 {
    f32::from_bits(g.to_bits() & 0u32.wrapping_sub(u32::from(keep)))
}

/// `g` where the ReLU output `y` is positive, else 0: ReLU's gradient.
#[inline(always)]
fn relu_grad(g: f32, y: f32) -> f32 {
    keep_if(g, y > 0.0)
}

/// Whether `v` replaces `best` as a window's maximum: larger, or the first NaN. Non-short-circuit
/// `|` and `&` keep it free of branches, which random data would mispredict.
#[inline(always)]
fn better(v: f32, best: f32) -> bool {
    (v > best) | (v.is_nan() & !best.is_nan())
}

/// Max-pools one plane (`ow` wide) with `s × s` windows into `out` (`pw` wide), recording in `arg`
/// each maximum's offset `p·s + q` within its window: the first maximum in row-major order, a NaN
/// winning over numbers (as [`fast_max_pool2d`]).
fn pool_argmax(plane: &[f32], ow: usize, s: usize, out: &mut [f32], arg: &mut [u8], pw: usize) {
    for (i, (out_row, arg_row)) in out.chunks_exact_mut(pw).zip(arg.chunks_exact_mut(pw)).enumerate() {
        let top = &plane[i * s * ow..];
        if s == 2 {
            // The common case, unrolled.
            let (r0, r1) = (&top[..2 * pw], &top[ow..][..2 * pw]);
            for (((out, arg), a), b) in out_row.iter_mut().zip(arg_row).zip(r0.chunks_exact(2)).zip(r1.chunks_exact(2))
            {
                let (mut best, mut at) = (a[0], 0u8);
                for (k, v) in [(1u8, a[1]), (2, b[0]), (3, b[1])] {
                    let m = better(v, best);
                    best = if m { v } else { best };
                    at = if m { k } else { at };
                }
                (*out, *arg) = (best, at);
            }
            continue;
        }
        for (j, (out, arg)) in out_row.iter_mut().zip(arg_row).enumerate() {
            let (mut best, mut at) = (top[j * s], 0u8);
            for p in 0..s {
                for (q, &v) in top[p * ow + j * s..][..s].iter().enumerate() {
                    let m = better(v, best);
                    best = if m { v } else { best };
                    // Offsets are below MAX_POOL² = 256 (checked in ConvDims::new).
                    at = if m { (p * s + q) as u8 } else { at };
                }
            }
            (*out, *arg) = (best, at);
        }
    }
}

/// The gradient arriving at one call of the op, and what is needed to carry it back through the
/// fused ReLU and pool to the convolution's output.
#[derive(Clone, Copy)]
enum OutGrad<'a> {
    /// The op output is the convolution (`relu_out`: the output, if a ReLU was fused).
    Dense { dy: &'a [f32], relu_out: Option<&'a [f32]> },
    /// The op output is pooled: `out` is that output, `argmax` each window's offset.
    Pooled { dy: &'a [f32], out: &'a [f32], argmax: &'a [u8], relu: bool },
}

impl OutGrad<'_> {
    /// Group `g`'s gradient w.r.t. the convolution output, in GEMM layout `[O, G·N]`, in `buf`.
    fn group<'b>(&self, g: usize, d: &ConvDims, buf: &'b mut Vec<f32>) -> &'b [f32] {
        let (n, images) = (d.n(), d.images(g));
        let width = images * n;
        let range = g * d.group * d.image_out()..(g * d.group + images) * d.image_out();
        match *self {
            OutGrad::Dense { dy, relu_out } => {
                buf.resize(d.o * width, 0.0);
                for (img, dy_img) in dy[range.clone()].chunks_exact(d.image_out()).enumerate() {
                    for (o, src) in dy_img.chunks_exact(n).enumerate() {
                        let dst = &mut buf[o * width + img * n..][..n];
                        match relu_out {
                            None => dst.copy_from_slice(src),
                            Some(y) => {
                                let y = &y[range.start + img * d.image_out() + o * n..][..n];
                                for ((dst, g), y) in dst.iter_mut().zip(src).zip(y) {
                                    *dst = relu_grad(*g, *y);
                                }
                            }
                        }
                    }
                }
            }
            OutGrad::Pooled { dy, out, argmax, relu } => {
                // Each conv-output value is written once: a window's gradient where the forward
                // found its maximum, 0 elsewhere (and on the rows and columns no window covers).
                // Selects on the recorded offset instead of a zero fill then a scatter: sequential
                // stores, no branches.
                buf.resize(d.o * width, 0.0);
                let (s, pn, pw) = (d.pool, d.out_n(), d.pw);
                for (plane, dst) in (range.start / pn..range.end / pn).zip(0..) {
                    let (img, o) = (dst / d.o, dst % d.o);
                    let dst = &mut buf[o * width + img * n..][..n];
                    let at = plane * pn..(plane + 1) * pn;
                    let (dy, y, arg) = (&dy[at.clone()], &out[at.clone()], &argmax[at]);
                    for (row_index, row) in dst.chunks_exact_mut(d.ow).enumerate() {
                        let (i, p) = (row_index / s, row_index % s);
                        let (windows, rest) = row.split_at_mut(pw * s);
                        rest.fill(0.0);
                        if i >= d.ph {
                            windows.fill(0.0);
                            continue;
                        }
                        let (dy, y, arg) = (&dy[i * pw..][..pw], &y[i * pw..][..pw], &arg[i * pw..][..pw]);
                        // Offsets are p·s + q < MAX_POOL² = 256 (checked in ConvDims::new).
                        let first = (p * s) as u8;
                        let grads = dy.iter().zip(y).map(|(g, y)| if relu { relu_grad(*g, *y) } else { *g });
                        if s == 2 {
                            // The common case, unrolled.
                            for ((pair, g), a) in windows.chunks_exact_mut(2).zip(grads).zip(arg) {
                                pair[0] = keep_if(g, *a == first);
                                pair[1] = keep_if(g, *a == first + 1);
                            }
                        } else {
                            for ((window, g), a) in windows.chunks_exact_mut(s).zip(grads).zip(arg) {
                                for (q, v) in window.iter_mut().enumerate() {
                                    *v = keep_if(g, *a == first + q as u8);
                                }
                            }
                        }
                    }
                }
            }
        }
        &buf[..d.o * width]
    }

    /// `∂b[o]`: the sum of the gradient w.r.t. the convolution output over images and positions.
    fn bias(&self, d: &ConvDims) -> Vec<f32> {
        let (dy, mask) = match *self {
            OutGrad::Dense { dy, relu_out } => (dy, relu_out),
            OutGrad::Pooled { dy, out, relu, .. } => (dy, relu.then_some(out)),
        };
        let mut db = vec![0f32; d.o];
        let n = d.out_n().max(1);
        for (idx, row) in dy.chunks_exact(n).enumerate() {
            db[idx % d.o] += match mask {
                None => lane_sum(n, |i| row[i]),
                Some(y) => {
                    let y = &y[idx * n..][..n];
                    lane_sum(n, |i| relu_grad(row[i], y[i]))
                }
            };
        }
        db
    }
}

/// `Σ f(i)` for `i < len`, in 8 interleaved partial sums so that the loop vectorizes (a single
/// running float sum cannot be reordered by the compiler).
fn lane_sum(len: usize, f: impl Fn(usize) -> f32) -> f32 {
    let mut lanes = [0f32; 8];
    let full = len / 8 * 8;
    for base in (0..full).step_by(8) {
        for (l, lane) in lanes.iter_mut().enumerate() {
            *lane += f(base + l);
        }
    }
    lanes.iter().sum::<f32>() + (full..len).map(f).sum::<f32>()
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

/// Forward: per group, `w[O, K] × col[K, G·N]`, then bias, ReLU and pool into the output. Returns
/// the output and, if pooled, each window's argmax offset (one byte per output value).
fn conv_forward(x: &[f32], w: &[f32], bias: Option<&[f32]>, relu: bool, d: &ConvDims) -> Result<(Vec<f32>, Vec<u8>)> {
    let (n, k) = (d.n(), d.k());
    let mut ys = vec![0f32; d.b * d.image_out()];
    let parallel_gemm = !d.parallel_groups();
    // Bias and ReLU commute with the max (both are non-decreasing), so they apply after the pool.
    let finish = |v: f32, o: usize| {
        let v = v + bias.map_or(0.0, |b| b[o]);
        if relu {
            v.max(0.0)
        } else {
            v
        }
    };
    let argmax = map_groups(d, &mut ys, d.image_out(), |g, out, [cols, prod, ..]| {
        let images = out.len() / d.image_out();
        let col = group_cols(&x[g * d.group * d.image_in()..][..images * d.image_in()], d, cols);
        let width = images * n;
        if d.pool == 1 && images == 1 {
            // One image, no pool: the GEMM writes the output directly.
            sgemm((d.o, n, k), Mat::rows(w, k), Mat::rows(col, n), out, false, parallel_gemm)?;
            for (o, row) in out.chunks_exact_mut(n).enumerate() {
                row.iter_mut().for_each(|v| *v = finish(*v, o));
            }
            return Ok(Vec::new());
        }
        prod.resize(d.o * width, 0.0);
        sgemm((d.o, width, k), Mat::rows(w, k), Mat::rows(col, width), prod, false, parallel_gemm)?;
        let mut arg = vec![0u8; if d.pool > 1 { out.len() } else { 0 }];
        for (img, out) in out.chunks_exact_mut(d.image_out()).enumerate() {
            for (o, out) in out.chunks_exact_mut(d.out_n()).enumerate() {
                let plane = &prod[o * width + img * n..][..n];
                if d.pool > 1 {
                    let arg = &mut arg[img * d.image_out() + o * d.out_n()..][..d.out_n()];
                    pool_argmax(plane, d.ow, d.pool, out, arg, d.pw);
                    out.iter_mut().for_each(|v| *v = finish(*v, o));
                } else {
                    out.iter_mut().zip(plane).for_each(|(v, p)| *v = finish(*p, o));
                }
            }
        }
        Ok(arg)
    })?;
    Ok((ys, argmax.concat()))
}

/// Which gradients the backward pass must produce.
#[derive(Debug, Clone, Copy)]
struct Wanted {
    input: bool,
    weight: bool,
    bias: bool,
}

/// The gradients `(∂x, ∂w, ∂b)` for the output gradient; each only if wanted.
///
/// Per group, the gradient w.r.t. the convolution output `∂y'[O, G·N]` is computed once and
/// serves both products:
/// - `∂w[O, K] += ∂y'[O, G·N] × colᵀ[G·N, K]`, one partial sum per task, added up at the end. The
///   `gemm` crate packs a transposed (column-major) right operand element by element, which cost
///   more than the multiplication, so the smaller of the two operands is transposed here, with a
///   tiled copy, and the product takes two row-major operands: `colᵀ` if `K < O` (e.g. the first
///   layer of a CNN, `K = 9`), else `∂y'ᵀ`, computing `∂wᵀ[K, O] += col × ∂y'ᵀ`, transposed at the
///   end.
/// - `∂x = col2im(wᵀ[K, O] × ∂y'[O, G·N])`.
#[allow(clippy::type_complexity)]
fn conv_backward(
    x: &[f32],
    w: &[f32],
    dy: OutGrad,
    d: &ConvDims,
    want: Wanted,
) -> Result<(Option<Vec<f32>>, Option<Vec<f32>>, Option<Vec<f32>>)> {
    let db = want.bias.then(|| dy.bias(d));
    let (n, k, o) = (d.n(), d.k(), d.o);
    let dw_len = if want.weight { k * o } else { 0 };
    let mut dx = vec![0f32; if want.input { d.b * d.image_in() } else { 0 }];
    // Each group's slice of ∂x, or None for every group if ∂x is not wanted.
    let dx_groups: Vec<Option<&mut [f32]>> = if dx.is_empty() {
        (0..d.groups()).map(|_| None).collect()
    } else {
        dx.chunks_mut(d.group * d.image_in()).map(Some).collect()
    };
    let parallel_gemm = !d.parallel_groups();
    // Whether the weight gradient is accumulated transposed, `[K, O]` (when O ≤ K).
    let transposed_dw = o <= k;
    let group_grad = |g: usize, dx: Option<&mut [f32]>, dw: &mut [f32], s: &mut Scratch| -> Result<()> {
        if !want.weight && dx.is_none() {
            return Ok(());
        }
        let [dyp, trans, col_buf, gcol] = s;
        let (images, first) = (d.images(g), g * d.group);
        let width = images * n;
        let dy_g = dy.group(g, d, dyp);
        if want.weight {
            let col = group_cols(&x[first * d.image_in()..][..images * d.image_in()], d, col_buf);
            // Transpose the smaller of the two operands (see the function's docs).
            trans.resize(width * k.min(o), 0.0);
            if transposed_dw {
                transpose(dy_g, o, width, trans);
                sgemm((k, o, width), Mat::rows(col, width), Mat::rows(trans, o), dw, true, parallel_gemm)?;
            } else {
                transpose(col, k, width, trans);
                sgemm((o, k, width), Mat::rows(dy_g, width), Mat::rows(trans, k), dw, true, parallel_gemm)?;
            }
        }
        if let Some(dx) = dx {
            gcol.resize(k * width, 0.0);
            sgemm((k, width, o), Mat::transposed(w, k), Mat::rows(dy_g, width), gcol, false, parallel_gemm)?;
            for (img, dx) in dx.chunks_exact_mut(d.image_in()).enumerate() {
                col2im(&gcol[img * n..], d, width, dx);
            }
        }
        Ok(())
    };
    let acc = if d.parallel_groups() {
        // A fixed, contiguous run of groups per thread, each summed into its own partial ∂w, and
        // the partials added in thread order: the same sums in the same order on every run (a
        // work-stealing fold would group them differently from run to run).
        let per_task = d.groups().div_ceil(rayon::current_num_threads().max(1));
        let mut groups = dx_groups.into_iter().enumerate();
        let tasks: Vec<Vec<_>> = std::iter::from_fn(|| {
            let task: Vec<_> = groups.by_ref().take(per_task).collect();
            (!task.is_empty()).then_some(task)
        })
        .collect();
        let partials = tasks
            .into_par_iter()
            .map(|task| {
                let mut acc = vec![0f32; dw_len];
                with_scratch(|s| task.into_iter().try_for_each(|(g, dx)| group_grad(g, dx, &mut acc, s)))?;
                Ok(acc)
            })
            .collect::<Result<Vec<Vec<f32>>>>()?;
        partials
            .into_iter()
            .reduce(|mut acc, p| {
                acc.iter_mut().zip(&p).for_each(|(a, b)| *a += b);
                acc
            })
            .unwrap_or_else(|| vec![0f32; dw_len])
    } else {
        let mut acc = vec![0f32; dw_len];
        with_scratch(|s| dx_groups.into_iter().enumerate().try_for_each(|(g, dx)| group_grad(g, dx, &mut acc, s)))?;
        acc
    };
    let dw = want.weight.then(|| {
        if transposed_dw {
            let mut dw = vec![0f32; dw_len];
            transpose(&acc, k, o, &mut dw);
            dw
        } else {
            acc
        }
    });
    let dx = want.input.then_some(dx);
    Ok((dx, dw, db))
}

/// The convolution as a custom op on `(x, w)` or `(x, w, b)`, optionally followed by a ReLU and a
/// `pool × pool` max-pool. One instance serves one call (forward, then backward).
#[derive(Debug)]
struct ConvOp {
    relu: bool,
    pool: usize,
    /// Set by the forward when pooling: each window's argmax offset, for the backward.
    argmax: OnceLock<Vec<u8>>,
}

impl ConvOp {
    fn fwd(
        &self,
        x: (&CpuStorage, &Layout),
        w: (&CpuStorage, &Layout),
        b: Option<(&CpuStorage, &Layout)>,
    ) -> Result<(CpuStorage, Shape)> {
        let d = ConvDims::new(x.1.dims(), w.1.dims(), self.pool)?;
        let bias = match b {
            Some((s, l)) => {
                if l.dims() != [d.o] {
                    bail!("fast_conv2d: bias {:?} does not match the {} filters", l.dims(), d.o);
                }
                Some(cpu_slice(s, l, "bias")?)
            }
            None => None,
        };
        let (xs, ws) = (cpu_slice(x.0, x.1, "input")?, cpu_slice(w.0, w.1, "weights")?);
        let (ys, argmax) = conv_forward(xs, ws, bias, self.relu, &d)?;
        if self.pool > 1 && self.argmax.set(argmax).is_err() {
            bail!("fast_conv2d: the op's forward ran twice");
        }
        Ok((CpuStorage::F32(ys), Shape::from(d.out_shape().to_vec())))
    }

    #[allow(clippy::type_complexity)]
    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        want_bias: bool,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let d = ConvDims::new(x.dims(), w.dims(), self.pool)?;
        let out = d.out_shape();
        if grad.dims() != out || res.dims() != out {
            bail!("fast_conv2d: output gradient {:?} does not match the output {out:?}", grad.dims());
        }
        // An input that is neither a variable nor computed from one (plain data) needs no gradient.
        let want = Wanted { input: x.track_op(), weight: w.track_op(), bias: want_bias };
        let (dx, dw, db) = with_slice(x, "input", |xs| {
            with_slice(w, "weights", |ws| {
                with_slice(grad, "output gradient", |dy| {
                    with_slice(res, "output", |ys| {
                        let dy = if self.pool > 1 {
                            let Some(argmax) = self.argmax.get() else {
                                bail!("fast_conv2d: backward before forward");
                            };
                            OutGrad::Pooled { dy, out: ys, argmax, relu: self.relu }
                        } else {
                            OutGrad::Dense { dy, relu_out: self.relu.then_some(ys) }
                        };
                        conv_backward(xs, ws, dy, &d, want)
                    })
                })
            })
        })?;
        let dev = x.device();
        let dx = dx.map(|v| Tensor::from_vec(v, x.shape(), dev)).transpose()?;
        let dw = dw.map(|v| Tensor::from_vec(v, w.shape(), dev)).transpose()?;
        let db = db.map(|v| Tensor::from_vec(v, d.o, dev)).transpose()?;
        Ok((dx, dw, db))
    }
}

impl CustomOp2 for ConvOp {
    fn name(&self) -> &'static str {
        "fast-conv2d"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        self.fwd((s1, l1), (s2, l2), None)
    }

    fn bwd(&self, x: &Tensor, w: &Tensor, res: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (dx, dw, _) = ConvOp::bwd(self, x, w, false, res, grad)?;
        Ok((dx, dw))
    }
}

impl CustomOp3 for ConvOp {
    fn name(&self) -> &'static str {
        "fast-conv2d-bias"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        self.fwd((s1, l1), (s2, l2), Some((s3, l3)))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        ConvOp::bwd(self, x, w, b.track_op(), res, grad)
    }
}

// ---------------------------------------------------------------------------------------------
// Max-pool op

/// `size × size` max-pooling with stride `size`.
#[derive(Debug, Clone, Copy)]
struct MaxPoolOp {
    size: usize,
}

/// `v` if it is larger than `m` or NaN, else `m`: a max that propagates NaN, written as a select
/// so it compiles without branches (random data would mispredict them).
#[inline(always)]
fn max_nan(v: f32, m: f32) -> f32 {
    if v > m || v.is_nan() {
        v
    } else {
        m
    }
}

impl MaxPoolOp {
    /// `(planes = B·C, h, w, oh, ow)` for an input of shape `dims`.
    fn dims(&self, dims: &[usize]) -> Result<(usize, usize, usize, usize, usize)> {
        let [b, c, h, w] = dims else { bail!("fast_max_pool2d: input {dims:?} must be rank 4") };
        if self.size == 0 || *h < self.size || *w < self.size {
            bail!("fast_max_pool2d: window {0}×{0} does not fit images of {h}×{w}", self.size);
        }
        Ok((b * c, *h, *w, h / self.size, w / self.size))
    }

    /// Pools one plane `x` (`w` wide) into `out` (`ow` wide): each output the max of its window.
    fn pool_plane(&self, x: &[f32], w: usize, out: &mut [f32], ow: usize) {
        let s = self.size;
        for (i, out_row) in out.chunks_exact_mut(ow).enumerate() {
            let rows = &x[i * s * w..];
            if s == 2 {
                // The common case, unrolled: the two rows of each 2×2 window side by side.
                let (top, bottom) = (&rows[..2 * ow], &rows[w..][..2 * ow]);
                for ((o, a), b) in out_row.iter_mut().zip(top.chunks_exact(2)).zip(bottom.chunks_exact(2)) {
                    *o = max_nan(max_nan(a[1], a[0]), max_nan(b[1], b[0]));
                }
                continue;
            }
            for (o, window) in out_row.iter_mut().zip(rows[..ow * s].chunks_exact(s)) {
                *o = window[0];
            }
            for p in 0..s {
                let row = &rows[p * w..][..ow * s];
                for (o, window) in out_row.iter_mut().zip(row.chunks_exact(s)) {
                    *o = window.iter().fold(*o, |m, &v| max_nan(v, m));
                }
            }
        }
    }

    /// Routes the output gradient `g` of one plane to its input `dx`: each window's gradient goes
    /// to the window's first element (row-major) equal to the pooled value `y` (NaN matching NaN).
    fn unpool_plane(&self, x: &[f32], w: usize, y: &[f32], g: &[f32], ow: usize, dx: &mut [f32]) {
        let s = self.size;
        let same = |v: f32, y: f32| v == y || (v.is_nan() && y.is_nan());
        for (i, (y_row, g_row)) in y.chunks_exact(ow).zip(g.chunks_exact(ow)).enumerate() {
            let top = i * s * w;
            if s == 2 {
                // The common case, unrolled; selects in reverse order keep the first match.
                let (r0, r1) = (&x[top..][..2 * ow], &x[top + w..][..2 * ow]);
                for (j, (&y, &g)) in y_row.iter().zip(g_row).enumerate() {
                    let mut at = top + w + 2 * j + 1;
                    at = if same(r1[2 * j], y) { top + w + 2 * j } else { at };
                    at = if same(r0[2 * j + 1], y) { top + 2 * j + 1 } else { at };
                    at = if same(r0[2 * j], y) { top + 2 * j } else { at };
                    dx[at] += g;
                }
                continue;
            }
            for (j, (&y, &g)) in y_row.iter().zip(g_row).enumerate() {
                let corner = top + j * s;
                let mut best = corner;
                for p in (0..s).rev() {
                    for q in (0..s).rev() {
                        let at = corner + p * w + q;
                        best = if same(x[at], y) { at } else { best };
                    }
                }
                dx[best] += g;
            }
        }
    }
}

impl CustomOp1 for MaxPoolOp {
    fn name(&self) -> &'static str {
        "fast-max-pool2d"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (planes, h, w, oh, ow) = self.dims(layout.dims())?;
        let x = cpu_slice(storage, layout, "pool input")?;
        let mut ys = vec![0f32; planes * oh * ow];
        ys.par_chunks_mut(oh * ow)
            .zip(x.par_chunks(h * w))
            .with_min_len(16)
            .for_each(|(out, plane)| self.pool_plane(plane, w, out, ow));
        let dims = layout.dims();
        Ok((CpuStorage::F32(ys), Shape::from((dims[0], dims[1], oh, ow))))
    }

    fn bwd(&self, arg: &Tensor, res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let (planes, h, w, oh, ow) = self.dims(arg.dims())?;
        if grad.dims() != res.dims() || res.dims() != [arg.dims()[0], arg.dims()[1], oh, ow] {
            bail!("fast_max_pool2d: output gradient {:?} does not match the output of {:?}", grad.dims(), arg.dims());
        }
        let dx = with_slice(arg, "pool input", |x| {
            with_slice(res, "pool output", |y| {
                with_slice(grad, "pool output gradient", |g| {
                    let mut dx = vec![0f32; planes * h * w];
                    dx.par_chunks_mut(h * w).enumerate().with_min_len(16).for_each(|(p, dplane)| {
                        let out = p * oh * ow..(p + 1) * oh * ow;
                        self.unpool_plane(&x[p * h * w..][..h * w], w, &y[out.clone()], &g[out], ow, dplane);
                    });
                    Ok(dx)
                })
            })
        })?;
        Ok(Some(Tensor::from_vec(dx, arg.shape(), arg.device())?))
    }
}
