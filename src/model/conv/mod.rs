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
//! The im2col columns then come in window-major order (the `q`-th element of every pool window,
//! then the next `q`): the pool becomes an elementwise maximum over contiguous blocks, and output
//! positions no window reads (the last row and column of an odd-sized output pooled by 2) are left
//! out of every product (17 % of the second convolution of NSL's CNN). The input rows are first
//! split by column phase (even and odd columns for a pool of 2), so im2col still copies runs.
//!
//! Inside `kernels::input_gradient_only` (the input gradient of a PGD or VAT step) the weight and
//! bias gradients are not computed.
//!
//! # Limits
//! Stride 1, no padding, no dilation, one group, NCHW layout; a pool window (fused or not) is at
//! most 16×16. The fast path runs for f32 tensors on the CPU device; anything else (another dtype or
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
//!
//! # Code layout
//! This file holds the public layers; `dims` the shapes and the grouping of the batch; `forward`
//! im2col, the forward GEMMs and the scratch buffers; `backward` the gradient through the fused
//! ReLU and pool and the weight, input and bias gradients; `pool` the max-pool argmax and its
//! gradient scatter (shared by the fused pool and [`fast_max_pool2d`]); `op` the candle custom op
//! gluing them together.

mod backward;
mod dims;
mod forward;
mod op;
mod pool;

use candle_core::{bail, DType, Module, Result, Tensor};
use candle_nn::VarBuilder;
use dims::MAX_POOL;
use op::ConvOp;
use pool::MaxPoolOp;

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
        let op = ConvOp::new(relu, pool);
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
/// It runs the argmax and gradient-scatter kernels of the pool fused into
/// [`FastConv2d::forward_relu_pool`]: on the same values, the two give the same maxima and send
/// the gradient to the same elements.
///
/// # Errors
/// If `xs` is not rank 4, `size` is 0 or larger than 16, or the image is smaller than one window.
pub fn fast_max_pool2d(xs: &Tensor, size: usize) -> Result<Tensor> {
    let (_, _, h, w) = xs.dims4()?;
    if size == 0 || size > MAX_POOL {
        bail!("fast_max_pool2d: pool size {size} must be between 1 and {MAX_POOL}");
    }
    if h < size || w < size {
        bail!("fast_max_pool2d: window {size}×{size} does not fit images of {h}×{w}");
    }
    if !xs.device().is_cpu() || xs.dtype() != DType::F32 {
        return xs.max_pool2d(size);
    }
    xs.contiguous()?.apply_op1(MaxPoolOp::new(size))
}
