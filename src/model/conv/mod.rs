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
//! A convolution of one input channel to a channels-last output (a CNN's first layer on grey
//! images) skips the GEMMs: with `K = KH·KW` (9) columns they run far from peak, and the input
//! gradient's would multiply the pooled gradient's zeros. `direct` computes it by vector FMAs over
//! the output channels, the pool window's positions together (see its module docs); the same
//! values up to summation order.
//!
//! # Channels-last inside a CNN
//! `Cnn` keeps its activations channels-last (`[B, H, W, C]`, see `Channels`) from the first
//! convolution's output to the last one's, then permutes back to `[B, C, H, W]` for the flatten
//! (the dense weights, and so checkpoints, keep candle's order). With a channels-last input the
//! im2col matrix is `[G·N, K]`, its columns ordered `(i, j, c)`: each row is `KH` runs of `KW·C`
//! contiguous values (96 for NSL's second convolution, against runs of 5 values channels-first),
//! col2im adds back along the same runs, and a channels-last output is the product
//! `col[G·N, K] × wᵀ[K, O]` itself, so the fused pool is a maximum over rows of `O` channels. The
//! weights are reordered to `[O, KH, KW, C]` for the products on each call (and the weight
//! gradient back), a few thousand values.
//!
//! # Limits
//! Stride 1, no padding, no dilation, one group, NCHW layout for the public layers (channels-last
//! only through the crate's CNN, channels-first → channels-last or channels-last → channels-last);
//! a pool window (fused or not) is at most 16×16. The fast path runs for f32 tensors on the CPU
//! device; anything else (another dtype or device) falls back to candle's own `conv2d`, `relu` and
//! `max_pool2d` (permuted to and from channels-last where asked), so a model using these layers
//! still works everywhere. Non-contiguous inputs are made contiguous first (a no-op for the
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
//! gradient scatter (shared by the fused pool and [`fast_max_pool2d`]); `direct` the kernel of a
//! one-channel convolution; `mask` the branch-free gradient
//! masks both `backward` and `pool` use; `op` the candle custom op gluing them together; `layout`
//! the permutation of a CNN's last channels-last activation back to channels-first (a transpose
//! per image instead of candle's element-by-element strided copy).

mod backward;
mod dims;
mod direct;
mod forward;
mod layout;
mod mask;
mod op;
mod pool;

use candle_core::{bail, DType, Module, Result, Tensor};
use candle_nn::VarBuilder;
pub(crate) use dims::Channels;
use dims::MAX_POOL;
pub(crate) use layout::channels_first;
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
        self.apply(xs, true, 1, Channels::First, Channels::First)
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
        self.apply(xs, true, size, Channels::First, Channels::First)
    }

    /// [`FastConv2d::forward_relu_pool`] (`pool` 1: [`FastConv2d::forward_relu`]) from an `input`
    /// to an `output` layout: a CNN keeps its activations channels-last between convolutions (see
    /// [`Channels`]). A channels-last input needs a channels-last output.
    ///
    /// # Errors
    /// As [`FastConv2d::forward_relu_pool`], or for a channels-last input to a channels-first output.
    pub(crate) fn forward_relu_pool_as(
        &self,
        xs: &Tensor,
        pool: usize,
        input: Channels,
        output: Channels,
    ) -> Result<Tensor> {
        if pool == 0 || pool > MAX_POOL {
            bail!("fast_conv2d: pool size {pool} must be between 1 and {MAX_POOL}");
        }
        if (input, output) == (Channels::Last, Channels::First) {
            bail!("fast_conv2d: a channels-last input gives a channels-last output");
        }
        self.apply(xs, true, pool, input, output)
    }

    fn apply(&self, xs: &Tensor, relu: bool, pool: usize, input: Channels, output: Channels) -> Result<Tensor> {
        let fast = xs.device().is_cpu()
            && xs.dtype() == DType::F32
            && self.weight.dtype() == DType::F32
            && self.bias.as_ref().is_none_or(|b| b.dtype() == DType::F32);
        if !fast {
            // candle's layers, in NCHW.
            let xs = match input {
                Channels::First => xs.clone(),
                Channels::Last => xs.permute((0, 3, 1, 2))?,
            };
            let mut ys = xs.conv2d(&self.weight, 0, 1, 1, 1)?;
            if let Some(bias) = &self.bias {
                ys = ys.broadcast_add(&bias.reshape((1, bias.dim(0)?, 1, 1))?)?;
            }
            if relu {
                ys = ys.relu()?;
            }
            if pool > 1 {
                ys = ys.max_pool2d(pool)?;
            }
            return match output {
                Channels::First => Ok(ys),
                Channels::Last => ys.permute((0, 2, 3, 1))?.contiguous(),
            };
        }
        // The op reads raw slices, so it needs contiguous operands (a no-op for layer outputs).
        let xs = xs.contiguous()?;
        let weight = self.weight.contiguous()?;
        let op = ConvOp::new(relu, pool, input, output);
        match &self.bias {
            None => xs.apply_op2(&weight, op),
            Some(bias) => xs.apply_op3(&weight, &bias.contiguous()?, op),
        }
    }
}

impl Module for FastConv2d {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        self.apply(xs, false, 1, Channels::First, Channels::First)
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

#[cfg(test)]
mod tests {
    use super::{fast_max_pool2d, Channels, FastConv2d};
    use candle_core::{Device, Result, Tensor, Var};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Uniform values in [-1, 1] from `seed` (distinct with probability 1: no ties in a pool).
    fn random(shape: &[usize], seed: u64) -> Result<Tensor> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let values: Vec<f32> = (0..shape.iter().product()).map(|_| rng.random_range(-1.0f32..=1.0)).collect();
        Tensor::from_vec(values, shape, &Device::Cpu)
    }

    /// `max |got − want| ≤ 1e-4 · max(1, max |want|)`.
    fn assert_close(got: &Tensor, want: &Tensor, what: &str) -> Result<()> {
        assert_eq!(got.dims(), want.dims(), "{what}: shapes differ");
        let diff = (got - want)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?;
        let scale = want.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?.max(1.0);
        assert!(diff <= 1e-4 * scale, "{what}: max difference {diff} (scale {scale})");
        Ok(())
    }

    /// NCHW → NHWC and back.
    fn to_last(t: &Tensor) -> Result<Tensor> {
        t.permute((0, 2, 3, 1))?.contiguous()
    }
    fn to_first(t: &Tensor) -> Result<Tensor> {
        t.permute((0, 3, 1, 2))?.contiguous()
    }

    /// Output (NCHW) and gradients (input in NCHW, weights, bias) of `loss = Σ y ⊙ r`,
    /// `y = pool(relu(conv(x) + b))`, through the fast op with the given layouts (`Some`), or
    /// through candle's `conv2d` and `relu` then `fast_max_pool2d` (`None`; candle's own
    /// `max_pool2d` has a wrong gradient, see `fast_max_pool2d`).
    fn run(
        [b, c, h, w, o, k]: [usize; 6],
        pool: usize,
        seed: u64,
        layouts: Option<(Channels, Channels)>,
    ) -> Result<[Tensor; 4]> {
        let x = Var::from_tensor(&random(&[b, c, h, w], seed)?)?;
        let wt = Var::from_tensor(&random(&[o, c, k, k], seed + 1)?)?;
        let bias = Var::from_tensor(&random(&[o], seed + 2)?)?;
        let ys = match layouts {
            Some((input, output)) => {
                let conv = FastConv2d::new(wt.as_tensor().clone(), Some(bias.as_tensor().clone()))?;
                let xs = if input == Channels::Last { to_last(x.as_tensor())? } else { x.as_tensor().clone() };
                let ys = conv.forward_relu_pool_as(&xs, pool, input, output)?;
                if output == Channels::Last {
                    to_first(&ys)?
                } else {
                    ys
                }
            }
            None => {
                let ys = x.as_tensor().conv2d(wt.as_tensor(), 0, 1, 1, 1)?;
                let ys = ys.broadcast_add(&bias.as_tensor().reshape((o, 1, 1))?)?.relu()?;
                if pool > 1 {
                    fast_max_pool2d(&ys, pool)?
                } else {
                    ys
                }
            }
        };
        let r = random(ys.dims(), seed + 3)?;
        let grads = (&ys * &r)?.sum_all()?.backward()?;
        let grad = |v: &Var| grads.get(v.as_tensor()).cloned().expect("every variable has a gradient");
        Ok([ys, grad(&x), grad(&wt), grad(&bias)])
    }

    /// Channels-first → channels-last and channels-last → channels-last convolutions (with the
    /// fused ReLU, with and without a pool) give candle's outputs and gradients, on shapes that
    /// include NSL's three convolutions, odd outputs a pool of 2 does not cover, a pool of 3,
    /// kernels of 1 and 5, several images per GEMM and one image alone, on 1 and 2 threads.
    #[test]
    fn channels_last_matches_candle() -> Result<()> {
        let cases = [
            ([4, 1, 28, 28, 32, 3], 2),
            ([3, 32, 13, 13, 64, 3], 2),
            ([5, 64, 5, 5, 64, 3], 1),
            ([1, 3, 10, 9, 8, 3], 3),
            ([5, 8, 7, 9, 3, 5], 2),
            ([2, 3, 6, 5, 4, 1], 1),
            ([1, 5, 9, 11, 16, 2], 1),
            // One input channel: the direct kernel (`direct`), with channel counts that are not
            // whole vectors, pools of 1, 2 and 3, input patches of 1 to 4 vectors, and (the
            // last) a patch too large for it, through the GEMMs.
            ([3, 1, 12, 11, 20, 3], 2),
            ([2, 1, 9, 10, 7, 3], 3),
            ([3, 1, 8, 7, 33, 2], 1),
            ([2, 1, 10, 11, 5, 5], 2),
            ([2, 1, 20, 19, 4, 7], 2),
            ([1, 1, 20, 20, 4, 9], 2),
        ];
        let layouts = [(Channels::First, Channels::Last), (Channels::Last, Channels::Last)];
        for threads in [1, 2] {
            let pool =
                rayon::ThreadPoolBuilder::new().num_threads(threads).build().map_err(candle_core::Error::wrap)?;
            pool.install(|| -> Result<()> {
                for (i, (shape, p)) in cases.iter().enumerate() {
                    let seed = 900 + 10 * i as u64;
                    let want = run(*shape, *p, seed, None)?;
                    for layout in layouts {
                        let got = run(*shape, *p, seed, Some(layout))?;
                        for (name, (g, w)) in ["output", "∂x", "∂w", "∂b"].iter().zip(got.iter().zip(&want)) {
                            assert_close(g, w, &format!("{name} of {shape:?} pool {p} {layout:?}, {threads} threads"))?;
                        }
                    }
                }
                Ok(())
            })?;
        }
        Ok(())
    }

    /// A hand-computed channels-last case: `x[y, x, 0] = v = 3y + x + 1` (1…9) and
    /// `x[y, x, 1] = 10·v` on a 3×3 image; the 2×2 filter takes 0.1 × channel 1 at its top left
    /// and −1 × channel 0 at its bottom right, bias 10: `0.1·10·v(y, x) − v(y+1, x+1) + 10 =
    /// v − (v + 4) + 10 = 6` at every output. `∂(Σ y)/∂x` is 0.1 on channel 1 where a window's top
    /// left falls (rows and columns 0–1) and −1 on channel 0 where its bottom right falls (1–2).
    #[test]
    fn channels_last_by_hand() -> Result<()> {
        let dev = Device::Cpu;
        let v: Vec<f32> = (1..=9).flat_map(|v| [v as f32, 10.0 * v as f32]).collect();
        let x = Var::from_tensor(&Tensor::from_vec(v, (1, 3, 3, 2), &dev)?)?;
        // [O = 1, C = 2, 2, 2]
        let w = Tensor::new(&[0f32, 0.0, 0.0, -1.0, 0.1, 0.0, 0.0, 0.0], &dev)?.reshape((1, 2, 2, 2))?;
        let conv = FastConv2d::new(w, Some(Tensor::new(&[10f32], &dev)?))?;
        let y = conv.forward_relu_pool_as(x.as_tensor(), 1, Channels::Last, Channels::Last)?;
        assert_eq!(y.dims(), [1, 2, 2, 1]);
        for v in y.flatten_all()?.to_vec1::<f32>()? {
            assert!((v - 6.0).abs() < 1e-5, "{v}");
        }
        let grads = y.sum_all()?.backward()?;
        let dx = grads.get(x.as_tensor()).expect("∂x").flatten_all()?.to_vec1::<f32>()?;
        let mut want = vec![0f32; 18];
        for (yy, xx) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
            want[(yy * 3 + xx) * 2 + 1] += 0.1;
            want[((yy + 1) * 3 + xx + 1) * 2] -= 1.0;
        }
        for (g, w) in dx.iter().zip(&want) {
            assert!((g - w).abs() < 1e-6, "{dx:?} vs {want:?}");
        }
        // A channels-last pooled output, 2×2 windows over the 2×2 output: one value, 6.
        let pooled = conv.forward_relu_pool_as(x.as_tensor(), 2, Channels::Last, Channels::Last)?;
        assert_eq!(pooled.dims(), [1, 1, 1, 1]);
        // A channels-last input cannot give a channels-first output.
        assert!(conv.forward_relu_pool_as(x.as_tensor(), 1, Channels::Last, Channels::First).is_err());
        Ok(())
    }

    /// A hand-computed case of the direct kernel (one input channel): `x` = 1…9 on a 3×3 image;
    /// filter 0 is `x[i, j] − x[i+1, j+1]` + 10 = 6 at all four positions (a tie: the pool takes
    /// the first, (0, 0)), filter 1 `x[i, j+1]` = 2, 3, 5, 6, whose maximum is the last, (1, 1).
    /// For `Σ y`: `∂x` = +1 at (0, 0) and −1 at (1, 1) from filter 0, +1 at (1, 2) from filter 1;
    /// `∂w` the input patch under each maximum, [1, 2, 4, 5] and [5, 6, 8, 9]; `∂b` = 1.
    #[test]
    fn direct_by_hand() -> Result<()> {
        let dev = Device::Cpu;
        let x = Var::from_tensor(&Tensor::arange(1f32, 10.0, &dev)?.reshape((1, 1, 3, 3))?)?;
        let w =
            Var::from_tensor(&Tensor::new(&[1f32, 0.0, 0.0, -1.0, 0.0, 1.0, 0.0, 0.0], &dev)?.reshape((2, 1, 2, 2))?)?;
        let b = Var::from_tensor(&Tensor::new(&[10f32, 0.0], &dev)?)?;
        let conv = FastConv2d::new(w.as_tensor().clone(), Some(b.as_tensor().clone()))?;
        let y = conv.forward_relu_pool_as(x.as_tensor(), 2, Channels::First, Channels::Last)?;
        assert_eq!(y.dims(), [1, 1, 1, 2]);
        assert_eq!(y.flatten_all()?.to_vec1::<f32>()?, [6.0, 6.0]);
        let grads = y.sum_all()?.backward()?;
        let get = |v: &Var| grads.get(v.as_tensor()).expect("a gradient").flatten_all()?.to_vec1::<f32>();
        assert_eq!(get(&x)?, [1.0, 0.0, 0.0, 0.0, -1.0, 1.0, 0.0, 0.0, 0.0]);
        assert_eq!(get(&w)?, [1.0, 2.0, 4.0, 5.0, 5.0, 6.0, 8.0, 9.0]);
        assert_eq!(get(&b)?, [1.0, 1.0]);
        Ok(())
    }

    /// Other dtypes fall back to candle's layers, permuted to and from channels-last.
    #[test]
    fn channels_last_fallback() -> Result<()> {
        let x = random(&[2, 3, 7, 6], 1)?;
        let w = random(&[4, 3, 3, 3], 2)?;
        let b = random(&[4], 3)?;
        let fast = FastConv2d::new(w.clone(), Some(b.clone()))?;
        let want = fast.forward_relu_pool_as(&to_last(&x)?, 2, Channels::Last, Channels::Last)?;
        let f64s = FastConv2d::new(w.to_dtype(candle_core::DType::F64)?, Some(b.to_dtype(candle_core::DType::F64)?))?;
        let got = f64s.forward_relu_pool_as(
            &to_last(&x)?.to_dtype(candle_core::DType::F64)?,
            2,
            Channels::Last,
            Channels::Last,
        )?;
        assert_close(&got.to_dtype(candle_core::DType::F32)?, &want, "f64 fallback")?;
        Ok(())
    }
}
