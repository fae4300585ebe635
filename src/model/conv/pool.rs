//! Max-pooling: the argmax kernel and its gradient scatter, and the stand-alone max-pool op of
//! [`fast_max_pool2d`](super::fast_max_pool2d).
//!
//! [`pool_argmax`] records each window's argmax (one byte per output) and [`unpool_argmax`] sends
//! the gradient back there, for [`MaxPoolOp`] on NCHW planes; [`pool_blocks`] and [`unpool_blocks`]
//! do the same for the pool fused after a convolution, whose output comes in window-major order
//! (each window's elements in separate contiguous blocks, so the loops are elementwise). Both
//! pick the same maximum of a window and send its gradient to the same element.

use super::dims::MAX_POOL;
use super::mask::{keep_if, through_relu};
use crate::kernels::{cpu_slice, simd, with_slice};
use candle_core::{bail, CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use rayon::prelude::*;
use std::sync::OnceLock;

/// Whether `v` replaces `best` as a window's maximum: larger, or the first NaN. Non-short-circuit
/// `|` and `&` keep it free of branches, which random data would mispredict.
#[inline(always)]
pub(super) fn better(v: f32, best: f32) -> bool {
    (v > best) | (v.is_nan() & !best.is_nan())
}

/// Max-pools one plane (`ow` wide) with `s × s` windows into `out` (`pw` wide), recording in `arg`
/// each maximum's offset `p·s + q` within its window: the first maximum in row-major order, a NaN
/// winning over numbers (as documented on [`fast_max_pool2d`](super::fast_max_pool2d)).
pub(super) fn pool_argmax(plane: &[f32], ow: usize, s: usize, out: &mut [f32], arg: &mut [u8], pw: usize) {
    simd(|| {
        for (i, (out_row, arg_row)) in out.chunks_exact_mut(pw).zip(arg.chunks_exact_mut(pw)).enumerate() {
            let top = &plane[i * s * ow..];
            if s == 2 {
                // The common case, unrolled.
                let (r0, r1) = (&top[..2 * pw], &top[ow..][..2 * pw]);
                for (((out, arg), a), b) in
                    out_row.iter_mut().zip(arg_row).zip(r0.chunks_exact(2)).zip(r1.chunks_exact(2))
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
                        // Offsets are below MAX_POOL² = 256 (checked in ConvDims::new and MaxPoolOp::dims).
                        at = if m { (p * s + q) as u8 } else { at };
                    }
                }
                (*out, *arg) = (best, at);
            }
        }
    })
}

/// The gradient of [`pool_argmax`] for one plane: writes into `plane` (`ow` wide, the plane that
/// was pooled with `s × s` windows) each window's gradient `dy` where the forward found its
/// maximum (`arg`), and 0 elsewhere (and on the rows and columns no window covers). With `relu`,
/// `dy` is first masked by `y > 0`, `y` being the pooled output: the gradient of a ReLU applied
/// after the pool (or before it: they commute).
///
/// Each value of `plane` is written once. Selects on the recorded offset instead of a zero fill
/// then a scatter: sequential stores, no branches.
#[inline]
pub(super) fn unpool_argmax(dy: &[f32], y: &[f32], relu: bool, arg: &[u8], s: usize, plane: &mut [f32], ow: usize) {
    simd(|| {
        let pw = ow / s;
        let ph = dy.len() / pw.max(1);
        for (row_index, row) in plane.chunks_exact_mut(ow).enumerate() {
            let (i, p) = (row_index / s, row_index % s);
            let (windows, rest) = row.split_at_mut(pw * s);
            rest.fill(0.0);
            if i >= ph {
                windows.fill(0.0);
                continue;
            }
            let (dy, y, arg) = (&dy[i * pw..][..pw], &y[i * pw..][..pw], &arg[i * pw..][..pw]);
            // Offsets are p·s + q < MAX_POOL² = 256 (checked in ConvDims::new and MaxPoolOp::dims).
            let first = (p * s) as u8;
            let grads = dy.iter().zip(y).map(|(g, y)| if relu { through_relu(*g, *y) } else { *g });
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
    })
}

/// The max-pool fused after a convolution, on one plane of its output in window-major order (see
/// `ConvDims::n`): `plane` holds `pool²` blocks of `out.len()` values, block `q` the `q`-th element
/// of every window. Writes each window's maximum into `out` and its offset `q` into `arg`: the
/// first maximum in row-major order, a NaN winning over numbers, as [`pool_argmax`] does.
pub(super) fn pool_blocks(plane: &[f32], out: &mut [f32], arg: &mut [u8]) {
    pulp::Arch::new().dispatch(PoolBlocks { plane, out, arg })
}

/// Lanes of [`PoolBlocks`]' 2×2 loop (one AVX-512 register of f32).
const LANES: usize = 16;

/// [`pool_blocks`] as a `WithSimd` struct rather than a closure for `kernels::simd` (a closure this
/// size is not inlined into pulp's function compiled for the CPU's widest vectors, and ran with
/// SSE2).
struct PoolBlocks<'a> {
    plane: &'a [f32],
    out: &'a mut [f32],
    arg: &'a mut [u8],
}

impl pulp::WithSimd for PoolBlocks<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        let PoolBlocks { plane, out, arg } = self;
        let pn = out.len();
        if plane.len() == 4 * pn {
            // 2×2 windows, the common case: `LANES` windows at a time, their running maxima and
            // offsets (32 bits wide, so that the selects vectorize with the float compares) in
            // registers, the offsets narrowed to bytes at the end.
            let (b0, rest) = plane.split_at(pn);
            let (b1, rest) = rest.split_at(pn);
            let (b2, b3) = rest.split_at(pn);
            let whole = pn / LANES * LANES;
            for (u, (best_out, at_out)) in
                out[..whole].chunks_exact_mut(LANES).zip(arg[..whole].chunks_exact_mut(LANES)).enumerate()
            {
                let u = u * LANES;
                let mut best: [f32; LANES] = std::array::from_fn(|l| b0[u + l]);
                let mut at = [0u32; LANES];
                for (q, block) in [(1u32, b1), (2, b2), (3, b3)] {
                    let v = &block[u..][..LANES];
                    for ((b, a), v) in best.iter_mut().zip(at.iter_mut()).zip(v) {
                        let m = better(*v, *b);
                        *b = if m { *v } else { *b };
                        *a = if m { q } else { *a };
                    }
                }
                best_out.copy_from_slice(&best);
                for (dst, a) in at_out.iter_mut().zip(at) {
                    // Offsets are below 4.
                    *dst = a as u8;
                }
            }
            for u in whole..pn {
                let (mut best, mut at) = (b0[u], 0u8);
                for (q, v) in [(1u8, b1[u]), (2, b2[u]), (3, b3[u])] {
                    let m = better(v, best);
                    best = if m { v } else { best };
                    at = if m { q } else { at };
                }
                (out[u], arg[u]) = (best, at);
            }
            return;
        }
        for (u, (best_out, at_out)) in out.iter_mut().zip(arg.iter_mut()).enumerate() {
            let (mut best, mut at) = (plane[u], 0u8);
            for (q, block) in plane.chunks_exact(pn).enumerate().skip(1) {
                let v = block[u];
                let m = better(v, best);
                best = if m { v } else { best };
                // Offsets are below MAX_POOL² = 256 (checked in ConvDims::new).
                at = if m { q as u8 } else { at };
            }
            (*best_out, *at_out) = (best, at);
        }
    }
}

/// The gradient of [`pool_blocks`]: writes into `plane` (`pool²` blocks of `dy.len()` values) each
/// window's gradient `dy` in the block where the forward found its maximum (`arg`), 0 in the
/// others. With `relu`, `dy` is first masked by `y > 0`, `y` being the pooled output, as in
/// [`unpool_argmax`].
pub(super) fn unpool_blocks(dy: &[f32], y: &[f32], relu: bool, arg: &[u8], plane: &mut [f32]) {
    pulp::Arch::new().dispatch(UnpoolBlocks { dy, y, relu, arg, plane })
}

/// [`unpool_blocks`] as a `WithSimd` struct (see [`PoolBlocks`]).
struct UnpoolBlocks<'a> {
    dy: &'a [f32],
    y: &'a [f32],
    relu: bool,
    arg: &'a [u8],
    plane: &'a mut [f32],
}

impl pulp::WithSimd for UnpoolBlocks<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        let UnpoolBlocks { dy, y, relu, arg, plane } = self;
        let pn = dy.len();
        for (q, block) in plane.chunks_exact_mut(pn).enumerate() {
            let q = q as u8;
            for (((v, g), y), a) in block.iter_mut().zip(dy).zip(y).zip(arg) {
                let g = if relu { through_relu(*g, *y) } else { *g };
                *v = keep_if(g, *a == q);
            }
        }
    }
}

/// `size × size` max-pooling with stride `size` on [`pool_argmax`] and [`unpool_argmax`]. One
/// instance serves one call (forward, then backward).
#[derive(Debug)]
pub(super) struct MaxPoolOp {
    size: usize,
    /// Set by the forward: each window's argmax offset, for the backward.
    argmax: OnceLock<Vec<u8>>,
}

impl MaxPoolOp {
    /// A `size × size` max-pool (`size` is checked by the op against `MAX_POOL` and the input).
    pub(super) fn new(size: usize) -> Self {
        MaxPoolOp { size, argmax: OnceLock::new() }
    }

    /// `(planes = B·C, h, w, oh, ow)` for an input of shape `dims`.
    fn dims(&self, dims: &[usize]) -> Result<(usize, usize, usize, usize, usize)> {
        let [b, c, h, w] = dims else { bail!("fast_max_pool2d: input {dims:?} must be rank 4") };
        if self.size == 0 || self.size > MAX_POOL {
            bail!("fast_max_pool2d: pool size {} must be between 1 and {MAX_POOL}", self.size);
        }
        if *h < self.size || *w < self.size {
            bail!("fast_max_pool2d: window {0}×{0} does not fit images of {h}×{w}", self.size);
        }
        Ok((b * c, *h, *w, h / self.size, w / self.size))
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
        let mut argmax = vec![0u8; ys.len()];
        ys.par_chunks_mut(oh * ow)
            .zip(argmax.par_chunks_mut(oh * ow))
            .zip(x.par_chunks(h * w))
            .with_min_len(16)
            .for_each(|((out, arg), plane)| pool_argmax(plane, w, self.size, out, arg, ow));
        if self.argmax.set(argmax).is_err() {
            bail!("fast_max_pool2d: the op's forward ran twice");
        }
        let dims = layout.dims();
        Ok((CpuStorage::F32(ys), Shape::from((dims[0], dims[1], oh, ow))))
    }

    fn bwd(&self, arg: &Tensor, res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let (planes, h, w, oh, ow) = self.dims(arg.dims())?;
        if grad.dims() != res.dims() || res.dims() != [arg.dims()[0], arg.dims()[1], oh, ow] {
            bail!("fast_max_pool2d: output gradient {:?} does not match the output of {:?}", grad.dims(), arg.dims());
        }
        let Some(argmax) = self.argmax.get() else {
            bail!("fast_max_pool2d: backward before forward");
        };
        if argmax.len() != planes * oh * ow {
            bail!("fast_max_pool2d: {} recorded maxima for an output of {:?}", argmax.len(), res.dims());
        }
        let dx = with_slice(res, "pool output", |y| {
            with_slice(grad, "pool output gradient", |g| {
                let mut dx = vec![0f32; planes * h * w];
                dx.par_chunks_mut(h * w)
                    .zip(g.par_chunks(oh * ow))
                    .zip(y.par_chunks(oh * ow))
                    .zip(argmax.par_chunks(oh * ow))
                    .with_min_len(16)
                    .for_each(|(((dplane, g), y), a)| unpool_argmax(g, y, false, a, self.size, dplane, w));
                Ok(dx)
            })
        })?;
        Ok(Some(Tensor::from_vec(dx, arg.shape(), arg.device())?))
    }
}
