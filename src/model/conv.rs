//! A fast CPU path for the convolutional layers: [`FastConv2d`] (a 'valid', stride-1 2-D
//! convolution) and [`fast_max_pool2d`], both candle custom ops with a hand-written backward.
//!
//! candle 0.11's CPU `conv2d` is quick forward but slow backward (a tutorial-sized MNIST CNN spends
//! ~60 of its ~75 ms per batch of 32 in the convolution gradients), so the training loop here uses
//! im2col + one f32 GEMM (the `gemm` crate, which candle's own matmul uses) for each product.
//!
//! # Formulas
//! For an input `x: [B, C, H, W]`, weights `w: [O, C, KH, KW]` and bias `b: [O]`, with
//! `OH = H − KH + 1`, `OW = W − KW + 1`, `N = OH·OW` and `K = C·KH·KW`:
//!
//! ```text
//! col[(c,i,j), (n,y,x)] = x[n, c, y+i, x+j]                   im2col, [K, B·N]
//! y[n, o, :]            = (w[O, K] × col)[o, n·N ..] + b[o]   forward, one GEMM
//! ∂w = ∂y' × colᵀ        where ∂y'[o, (n,y,x)] = ∂y[n, o, y, x]   GEMM over B·N
//! ∂x = col2im(wᵀ × ∂y')  the scatter-add transposing im2col   GEMM + scatter-add
//! ∂b[o] = Σ_{n,y,x} ∂y[n, o, y, x]
//! ```
//!
//! # Limits
//! Stride 1, no padding, no dilation, one group, NCHW layout. The fast path runs for f32 tensors
//! on the CPU device; anything else (another dtype or device) falls back to candle's own `conv2d`
//! and `max_pool2d`, so a model using these layers still works everywhere. Non-contiguous inputs
//! are made contiguous first (a no-op for the usual layer outputs).
//!
//! Work is parallelized with rayon (`RAYON_NUM_THREADS`): the GEMMs through the `gemm` crate's
//! own rayon support, im2col/col2im row by row; with one thread everything runs inline.

use candle_core::{
    bail, CpuStorage, CustomOp1, CustomOp2, CustomOp3, DType, Layout, Module, Result, Shape, Storage, Tensor,
};
use candle_nn::VarBuilder;
use rayon::prelude::*;

/// A 2-D convolution, stride 1, no padding ('valid'), as a candle custom op with a fast CPU
/// backward. Weights `[out, in, k, k]`, bias `[out]`; input `[B, in, H, W]`, output
/// `[B, out, H−k+1, W−k+1]`.
///
/// `y[n, o, y, x] = b[o] + Σ_{c,i,j} w[o, c, i, j] · x[n, c, y+i, x+j]` (a cross-correlation, as
/// in candle, TensorFlow and PyTorch).
///
/// It computes the same function as `candle_nn::Conv2d` with the default config and is built from
/// the same variable names (`weight`, `bias`), so checkpoints are interchangeable. Gradients flow
/// to the input, the weights and the bias. See the [module docs](self) for the limits.
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
}

impl Module for FastConv2d {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let fast = xs.device().is_cpu()
            && xs.dtype() == DType::F32
            && self.weight.dtype() == DType::F32
            && self.bias.as_ref().is_none_or(|b| b.dtype() == DType::F32);
        if !fast {
            let ys = xs.conv2d(&self.weight, 0, 1, 1, 1)?;
            return match &self.bias {
                None => Ok(ys),
                Some(bias) => ys.broadcast_add(&bias.reshape((1, bias.dim(0)?, 1, 1))?),
            };
        }
        // The op reads raw slices, so it needs contiguous operands (a no-op for layer outputs).
        let xs = xs.contiguous()?;
        let weight = self.weight.contiguous()?;
        match &self.bias {
            None => xs.apply_op2(&weight, ConvOp),
            Some(bias) => xs.apply_op3(&weight, &bias.contiguous()?, ConvOp),
        }
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
/// `[B, C, H/size, W/size]`.
///
/// The gradient goes to the first maximum of each window in row-major order (as in TensorFlow
/// and PyTorch; candle splits it among tied maxima). Unlike candle 0.11's `max_pool2d`, whose
/// backward upsamples with a non-integer scale, the gradient is also right when `H` or `W` is not
/// a multiple of `size` (e.g. the 11×11 → 5×5 pool of NSL's MNIST CNN).
///
/// f32 CPU tensors take the fast path; others fall back to candle's `max_pool2d`.
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
// Convolution op

/// The shapes of one convolution.
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
}

impl ConvDims {
    fn new(x: &[usize], w: &[usize]) -> Result<Self> {
        let ([b, c, h, wi], [o, wc, kh, kw]) = (x, w) else {
            bail!("fast_conv2d: input {x:?} and weights {w:?} must both be rank 4 ([B, C, H, W], [O, C, KH, KW])");
        };
        if c != wc {
            bail!("fast_conv2d: input {x:?} has {c} channels but the weights {w:?} expect {wc}");
        }
        if *kh == 0 || *kw == 0 || h < kh || wi < kw {
            bail!("fast_conv2d: kernel {kh}×{kw} does not fit input images of {h}×{wi} (input {x:?})");
        }
        Ok(ConvDims { b: *b, c: *c, h: *h, w: *wi, o: *o, kh: *kh, kw: *kw, oh: h - kh + 1, ow: wi - kw + 1 })
    }

    /// Output positions per image.
    fn n(&self) -> usize {
        self.oh * self.ow
    }

    /// Rows of the im2col matrix (the GEMM's inner dimension in the forward).
    fn k(&self) -> usize {
        self.c * self.kh * self.kw
    }

    /// Columns of the im2col matrix: every output position of every image.
    fn cols(&self) -> usize {
        self.b * self.n()
    }
}

/// The im2col matrix `[K, B·N]`: row `(c, i, j)`, column `(n, y, x)` holds `x[n, c, y+i, x+j]`.
fn im2col(x: &[f32], d: &ConvDims) -> Vec<f32> {
    let (n_out, cols) = (d.n(), d.cols());
    let mut col = vec![0f32; d.k() * cols];
    if cols == 0 {
        return col;
    }
    col.par_chunks_mut(cols).enumerate().for_each(|(row, dst)| {
        let (c, i, j) = (row / (d.kh * d.kw), row / d.kw % d.kh, row % d.kw);
        for n in 0..d.b {
            let plane = &x[(n * d.c + c) * d.h * d.w..][..d.h * d.w];
            let dst = &mut dst[n * n_out..][..n_out];
            for y in 0..d.oh {
                dst[y * d.ow..][..d.ow].copy_from_slice(&plane[(y + i) * d.w + j..][..d.ow]);
            }
        }
    });
    col
}

/// The transpose of [`im2col`]: `dx[n, c, y+i, x+j] += gcol[(c, i, j), (n, y, x)]`.
fn col2im(gcol: &[f32], d: &ConvDims) -> Vec<f32> {
    let (n_out, cols, plane_len) = (d.n(), d.cols(), d.h * d.w);
    let mut dx = vec![0f32; d.b * d.c * plane_len];
    if plane_len == 0 {
        return dx;
    }
    // One task per (image, channel) plane: planes are disjoint, so no two tasks write together.
    dx.par_chunks_mut(plane_len).enumerate().for_each(|(plane_idx, plane)| {
        let (n, c) = (plane_idx / d.c, plane_idx % d.c);
        for i in 0..d.kh {
            for j in 0..d.kw {
                let src = &gcol[((c * d.kh + i) * d.kw + j) * cols + n * n_out..][..n_out];
                for y in 0..d.oh {
                    let dst = &mut plane[(y + i) * d.w + j..][..d.ow];
                    for (a, g) in dst.iter_mut().zip(&src[y * d.ow..][..d.ow]) {
                        *a += g;
                    }
                }
            }
        }
    });
    dx
}

/// A strided view of a row-major or transposed matrix for [`sgemm`].
#[derive(Clone, Copy)]
struct Mat<'a> {
    data: &'a [f32],
    row_stride: usize,
    col_stride: usize,
}

/// `dst[m, n] = lhs[m, k] × rhs[k, n]`, `dst` row-major and overwritten.
fn sgemm(m: usize, n: usize, k: usize, lhs: Mat, rhs: Mat, dst: &mut [f32]) -> Result<()> {
    if m == 0 || n == 0 {
        return Ok(());
    }
    // Bounds for the unsafe call below: the last element each matrix can touch must be in range.
    let last = |mat: &Mat, rows: usize, cols: usize| (rows - 1) * mat.row_stride + (cols - 1) * mat.col_stride;
    if dst.len() < m * n || (k > 0 && (last(&lhs, m, k) >= lhs.data.len() || last(&rhs, k, n) >= rhs.data.len())) {
        bail!("fast_conv2d: internal GEMM operands too small for {m}×{k}×{n}");
    }
    let threads = rayon::current_num_threads();
    let parallelism = if threads > 1 { gemm::Parallelism::Rayon(threads) } else { gemm::Parallelism::None };
    // SAFETY: the checks above keep every index the GEMM reads (lhs, rhs) or writes (dst, m×n
    // row-major) inside its slice; `dst` is borrowed mutably, so it cannot alias lhs or rhs.
    // `read_dst = false` makes the result `1·lhs×rhs` (alpha is ignored).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            false,
            lhs.data.as_ptr(),
            lhs.col_stride as isize,
            lhs.row_stride as isize,
            rhs.data.as_ptr(),
            rhs.col_stride as isize,
            rhs.row_stride as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
    Ok(())
}

/// The forward pass: im2col, one GEMM `[O, K] × [K, B·N]`, then reorder to `[B, O, N]` adding the bias.
fn conv_forward(x: &[f32], w: &[f32], bias: Option<&[f32]>, d: &ConvDims) -> Result<Vec<f32>> {
    let (n_out, cols, k) = (d.n(), d.cols(), d.k());
    let col = im2col(x, d);
    let mut prod = vec![0f32; d.o * cols];
    let w_mat = Mat { data: w, row_stride: k, col_stride: 1 };
    sgemm(d.o, cols, k, w_mat, Mat { data: &col, row_stride: cols, col_stride: 1 }, &mut prod)?;
    let mut ys = vec![0f32; d.b * d.o * n_out];
    if n_out > 0 {
        ys.par_chunks_mut(n_out).enumerate().for_each(|(idx, dst)| {
            let (n, o) = (idx / d.o, idx % d.o);
            let b = bias.map_or(0.0, |bias| bias[o]);
            for (y, p) in dst.iter_mut().zip(&prod[o * cols + n * n_out..][..n_out]) {
                *y = p + b;
            }
        });
    }
    Ok(ys)
}

/// Which gradients the backward pass must produce.
#[derive(Debug, Clone, Copy)]
struct Wanted {
    input: bool,
    weight: bool,
    bias: bool,
}

/// The gradients `(∂x, ∂w, ∂b)` for the output gradient `dy: [B, O, N]`; each only if wanted.
#[allow(clippy::type_complexity)]
fn conv_backward(
    x: &[f32],
    w: &[f32],
    dy: &[f32],
    d: &ConvDims,
    want: Wanted,
) -> Result<(Option<Vec<f32>>, Option<Vec<f32>>, Option<Vec<f32>>)> {
    let (n_out, cols, k) = (d.n(), d.cols(), d.k());
    // ∂y as [O, B·N], the layout of the forward GEMM's product, so both GEMMs run over all images.
    let mut dyp = vec![0f32; d.o * cols];
    if cols > 0 {
        dyp.par_chunks_mut(cols).enumerate().for_each(|(o, row)| {
            for n in 0..d.b {
                row[n * n_out..][..n_out].copy_from_slice(&dy[(n * d.o + o) * n_out..][..n_out]);
            }
        });
    }
    let dyp_mat = Mat { data: &dyp, row_stride: cols, col_stride: 1 };
    let db = want.bias.then(|| dyp.par_chunks(cols.max(1)).map(|row| row.iter().sum::<f32>()).collect::<Vec<_>>());
    let dw = if want.weight {
        let col = im2col(x, d);
        let mut dw = vec![0f32; d.o * k];
        // colᵀ: element (position, row) of the [K, B·N] matrix.
        sgemm(d.o, k, cols, dyp_mat, Mat { data: &col, row_stride: 1, col_stride: cols }, &mut dw)?;
        Some(dw)
    } else {
        None
    };
    let dx = if want.input {
        let mut gcol = vec![0f32; k * cols];
        // wᵀ: element (row, filter) of the [O, K] weights.
        sgemm(k, cols, d.o, Mat { data: w, row_stride: 1, col_stride: k }, dyp_mat, &mut gcol)?;
        Some(col2im(&gcol, d))
    } else {
        None
    };
    Ok((dx, dw, db))
}

/// The contiguous f32 data of a CPU storage.
fn cpu_slice<'a>(storage: &'a CpuStorage, layout: &Layout, what: &str) -> Result<&'a [f32]> {
    let data = storage.as_slice::<f32>()?;
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => bail!("fast_conv2d: the {what} must be contiguous (shape {:?})", layout.dims()),
    }
}

/// Runs `f` on the contiguous f32 CPU data of `t` (made contiguous first if needed).
fn with_slice<R>(t: &Tensor, what: &str, f: impl FnOnce(&[f32]) -> Result<R>) -> Result<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        Storage::Cpu(cpu) => f(cpu_slice(cpu, layout, what)?),
        _ => bail!("fast_conv2d: the {what} must be on the CPU"),
    }
}

/// The convolution as a custom op: `(x, w)` or `(x, w, b)`.
#[derive(Debug, Clone, Copy)]
struct ConvOp;

impl ConvOp {
    fn fwd(
        &self,
        x: (&CpuStorage, &Layout),
        w: (&CpuStorage, &Layout),
        b: Option<(&CpuStorage, &Layout)>,
    ) -> Result<(CpuStorage, Shape)> {
        let d = ConvDims::new(x.1.dims(), w.1.dims())?;
        let bias = match b {
            Some((s, l)) => {
                if l.dims() != [d.o] {
                    bail!("fast_conv2d: bias {:?} does not match the {} filters", l.dims(), d.o);
                }
                Some(cpu_slice(s, l, "bias")?)
            }
            None => None,
        };
        let ys = conv_forward(cpu_slice(x.0, x.1, "input")?, cpu_slice(w.0, w.1, "weights")?, bias, &d)?;
        Ok((CpuStorage::F32(ys), Shape::from((d.b, d.o, d.oh, d.ow))))
    }

    #[allow(clippy::type_complexity)]
    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        want_bias: bool,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let d = ConvDims::new(x.dims(), w.dims())?;
        if grad.dims() != [d.b, d.o, d.oh, d.ow] {
            bail!(
                "fast_conv2d: output gradient {:?} does not match the output {:?}",
                grad.dims(),
                [d.b, d.o, d.oh, d.ow]
            );
        }
        // An input that is neither a variable nor computed from one (plain data) needs no gradient.
        let want = Wanted { input: x.track_op(), weight: w.track_op(), bias: want_bias };
        let (dx, dw, db) = with_slice(x, "input", |xs| {
            with_slice(w, "weights", |ws| with_slice(grad, "output gradient", |gs| conv_backward(xs, ws, gs, &d, want)))
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

    fn bwd(&self, x: &Tensor, w: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (dx, dw, _) = ConvOp::bwd(self, x, w, false, grad)?;
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
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        ConvOp::bwd(self, x, w, b.track_op(), grad)
    }
}

// ---------------------------------------------------------------------------------------------
// Max-pool op

/// `size × size` max-pooling with stride `size`.
#[derive(Debug, Clone, Copy)]
struct MaxPoolOp {
    size: usize,
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

    /// The index within `plane` (row-major `w` wide) of the first maximum of window `(i, j)`.
    /// NaN never wins over a number (`>` is false for it), unless the whole window is NaN.
    fn argmax(&self, plane: &[f32], w: usize, i: usize, j: usize) -> usize {
        let s = self.size;
        let mut best = (i * s) * w + j * s;
        for p in 0..s {
            let row = (i * s + p) * w + j * s;
            for (q, v) in plane[row..][..s].iter().enumerate() {
                if *v > plane[best] || plane[best].is_nan() && !v.is_nan() {
                    best = row + q;
                }
            }
        }
        best
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
        ys.par_chunks_mut(oh * ow).enumerate().for_each(|(p, out)| {
            let plane = &x[p * h * w..][..h * w];
            for i in 0..oh {
                for j in 0..ow {
                    out[i * ow + j] = plane[self.argmax(plane, w, i, j)];
                }
            }
        });
        let dims = layout.dims();
        Ok((CpuStorage::F32(ys), Shape::from((dims[0], dims[1], oh, ow))))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let (planes, h, w, oh, ow) = self.dims(arg.dims())?;
        if grad.dims() != [arg.dims()[0], arg.dims()[1], oh, ow] {
            bail!("fast_max_pool2d: output gradient {:?} does not match the output of {:?}", grad.dims(), arg.dims());
        }
        let dx = with_slice(arg, "pool input", |x| {
            with_slice(grad, "pool output gradient", |g| {
                let mut dx = vec![0f32; planes * h * w];
                dx.par_chunks_mut(h * w).enumerate().for_each(|(p, dplane)| {
                    let plane = &x[p * h * w..][..h * w];
                    let g = &g[p * oh * ow..][..oh * ow];
                    for i in 0..oh {
                        for j in 0..ow {
                            dplane[self.argmax(plane, w, i, j)] += g[i * ow + j];
                        }
                    }
                });
                Ok(dx)
            })
        })?;
        Ok(Some(Tensor::from_vec(dx, arg.shape(), arg.device())?))
    }
}
