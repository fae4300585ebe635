//! The backward pass: the gradient w.r.t. the convolution output (through the fused ReLU and
//! pool), then the weight, input and bias gradients.

use super::dims::{Channels, ConvDims};
use super::direct;
use super::forward::{
    col2im, col2im_nhwc, gemm_weights, group_cols, merge_phases, weights_from_gemm, with_scratch, Scratch,
};
use super::mask::through_relu;
use super::pool::unpool_blocks;
use crate::kernels::{sgemm, simd, transpose, Mat};
use candle_core::Result;
use rayon::prelude::*;

/// The gradient arriving at one call of the op, and what is needed to carry it back through the
/// fused ReLU and pool to the convolution's output.
#[derive(Clone, Copy)]
pub(super) enum OutGrad<'a> {
    /// The op output is the convolution (`relu_out`: the output, if a ReLU was fused).
    Dense { dy: &'a [f32], relu_out: Option<&'a [f32]> },
    /// The op output is pooled: `out` is that output, `argmax` each window's offset.
    Pooled { dy: &'a [f32], out: &'a [f32], argmax: &'a [u8], relu: bool },
}

impl OutGrad<'_> {
    /// Group `g`'s gradient w.r.t. the convolution output, in GEMM layout (`[O, G·N]`, or
    /// `[G·N, O]` for a channels-last output), in `buf`.
    fn group<'b>(&self, g: usize, d: &ConvDims, buf: &'b mut Vec<f32>) -> &'b [f32] {
        simd(|| {
            let (n, images) = (d.n(), d.images(g));
            let width = images * n;
            let range = g * d.group * d.image_out()..(g * d.group + images) * d.image_out();
            if d.output == Channels::Last {
                // The output and the GEMM product have the same layout, image by image: `[N, O]` (the
                // pooled output `[PH·PW, O]`, pool² blocks of it before the pool).
                buf.resize(d.o * width, 0.0);
                match *self {
                    OutGrad::Dense { dy, relu_out: None } => buf.copy_from_slice(&dy[range]),
                    OutGrad::Dense { dy, relu_out: Some(y) } => {
                        for ((dst, g), y) in buf.iter_mut().zip(&dy[range.clone()]).zip(&y[range]) {
                            *dst = through_relu(*g, *y);
                        }
                    }
                    OutGrad::Pooled { dy, out, argmax, relu } => {
                        let per = d.image_out();
                        for (img, dst) in buf.chunks_exact_mut(n * d.o).enumerate() {
                            let at = range.start + img * per..range.start + (img + 1) * per;
                            unpool_blocks(&dy[at.clone()], &out[at.clone()], relu, &argmax[at], dst);
                        }
                    }
                }
                return &buf[..d.o * width];
            }
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
                                        *dst = through_relu(*g, *y);
                                    }
                                }
                            }
                        }
                    }
                }
                OutGrad::Pooled { dy, out, argmax, relu } => {
                    // Each conv-output value is written once: a window's gradient where the forward
                    // found its maximum, 0 elsewhere (see `unpool_argmax`).
                    buf.resize(d.o * width, 0.0);
                    let pn = d.out_n();
                    for (plane, dst) in (range.start / pn..range.end / pn).zip(0..) {
                        let (img, o) = (dst / d.o, dst % d.o);
                        let dst = &mut buf[o * width + img * n..][..n];
                        let at = plane * pn..(plane + 1) * pn;
                        unpool_blocks(&dy[at.clone()], &out[at.clone()], relu, &argmax[at], dst);
                    }
                }
            }
            &buf[..d.o * width]
        })
    }

    /// `∂b[o]`: the sum of the gradient w.r.t. the convolution output over images and positions.
    fn bias(&self, d: &ConvDims) -> Vec<f32> {
        simd(|| {
            let (dy, mask) = match *self {
                OutGrad::Dense { dy, relu_out } => (dy, relu_out),
                OutGrad::Pooled { dy, out, relu, .. } => (dy, relu.then_some(out)),
            };
            let mut db = vec![0f32; d.o];
            if d.output == Channels::Last {
                // Rows of `O` channels: added row by row, a vector of channels at a time.
                for (idx, row) in dy.chunks_exact(d.o).enumerate() {
                    match mask {
                        None => db.iter_mut().zip(row).for_each(|(b, g)| *b += g),
                        Some(y) => {
                            let y = &y[idx * d.o..][..d.o];
                            db.iter_mut().zip(row).zip(y).for_each(|((b, g), y)| *b += through_relu(*g, *y));
                        }
                    }
                }
                return db;
            }
            let n = d.out_n().max(1);
            for (idx, row) in dy.chunks_exact(n).enumerate() {
                db[idx % d.o] += match mask {
                    None => lane_sum(n, |i| row[i]),
                    Some(y) => {
                        let y = &y[idx * n..][..n];
                        lane_sum(n, |i| through_relu(row[i], y[i]))
                    }
                };
            }
            db
        })
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

/// Which gradients the backward pass must produce.
#[derive(Debug, Clone, Copy)]
pub(super) struct Wanted {
    pub(super) input: bool,
    pub(super) weight: bool,
    pub(super) bias: bool,
}

/// The gradients `(∂x, ∂w, ∂b)` for the output gradient; each only if wanted.
///
/// Per group, the gradient w.r.t. the convolution output `∂y'` (`[O, G·N]`, or `[G·N, O]` for a
/// channels-last output) is computed once and serves both products:
/// - `∂w[O, K] += ∂y'[O, G·N] × colᵀ[G·N, K]`, one partial sum per task, added up at the end. The
///   `gemm` crate packs a transposed (column-major) right operand element by element, which cost
///   more than the multiplication, so every product here has a row-major right operand. For a
///   channels-first output, the smaller of the two operands is transposed with a tiled copy: `colᵀ`
///   if `K < O` (e.g. the first layer of a CNN, `K = 9`), else `∂y'ᵀ`, computing
///   `∂wᵀ[K, O] += col × ∂y'ᵀ`, transposed at the end. For a channels-last output `∂y'ᵀ` is already
///   row-major: `∂wᵀ[K, O] += col[K, G·N] × ∂y'ᵀ` from a channels-first input, and
///   `∂w[O, K] += ∂y'ᵀᵀ × col[G·N, K]` from a channels-last one (a column-major left operand costs
///   nothing extra).
/// - `∂x = col2im(wᵀ[K, O] × ∂y'[O, G·N])`, or for a channels-last output
///   `col2im((∂y'ᵀ[G·N, O] × w[O, K])ᵀ)` (the transpose is a tiled copy for a channels-first input,
///   none for a channels-last one, whose col2im reads rows of `[G·N, K]`).
#[allow(clippy::type_complexity)]
pub(super) fn conv_backward(
    x: &[f32],
    w: &[f32],
    dy: OutGrad,
    d: &ConvDims,
    want: Wanted,
) -> Result<(Option<Vec<f32>>, Option<Vec<f32>>, Option<Vec<f32>>)> {
    let db = want.bias.then(|| dy.bias(d));
    if direct::applies(d) {
        let g = match dy {
            OutGrad::Dense { dy, relu_out } => direct::Grad { dy, relu_out, argmax: None },
            OutGrad::Pooled { dy, out, argmax, relu } => {
                direct::Grad { dy, relu_out: relu.then_some(out), argmax: Some(argmax) }
            }
        };
        let dx = want.input.then(|| direct::input_grad(w, g, d));
        let dw = want.weight.then(|| direct::weight_grad(x, g, d));
        return Ok((dx, dw, db));
    }
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
    let wk = gemm_weights(w, d);
    let wk: &[f32] = &wk;
    let layouts = (d.input, d.output);
    // Whether the weight gradient is accumulated transposed, `[K, O]` (see the function's docs).
    let transposed_dw = match layouts {
        (Channels::First, Channels::First) => o <= k,
        (Channels::First, Channels::Last) => true,
        (Channels::Last, _) => false,
    };
    let group_grad = |g: usize, dx: Option<&mut [f32]>, dw: &mut [f32], s: &mut Scratch| -> Result<()> {
        if !want.weight && dx.is_none() {
            return Ok(());
        }
        let [dyp, trans, col_buf, gcol, phases] = s;
        let (images, first) = (d.images(g), g * d.group);
        let width = images * n;
        let dy_g = dy.group(g, d, dyp);
        if want.weight {
            let col = group_cols(&x[first * d.image_in()..][..images * d.image_in()], d, col_buf, phases);
            match layouts {
                (Channels::First, Channels::First) => {
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
                (Channels::First, Channels::Last) => {
                    sgemm((k, o, width), Mat::rows(col, width), Mat::rows(dy_g, o), dw, true, parallel_gemm)?;
                }
                (Channels::Last, _) => {
                    sgemm((o, k, width), Mat::rows(dy_g, o).t(), Mat::rows(col, k), dw, true, parallel_gemm)?;
                }
            }
        }
        let Some(dx) = dx else { return Ok(()) };
        gcol.resize(k * width, 0.0);
        let gcol_kn: &[f32] = match layouts {
            (Channels::First, Channels::First) => {
                sgemm((k, width, o), Mat::rows(wk, k).t(), Mat::rows(dy_g, width), gcol, false, parallel_gemm)?;
                &gcol[..]
            }
            (Channels::First, Channels::Last) => {
                sgemm((width, k, o), Mat::rows(dy_g, o), Mat::rows(wk, k), gcol, false, parallel_gemm)?;
                trans.resize(k * width, 0.0);
                transpose(gcol, width, k, trans);
                &trans[..]
            }
            (Channels::Last, _) => {
                sgemm((width, k, o), Mat::rows(dy_g, o), Mat::rows(wk, k), gcol, false, parallel_gemm)?;
                for (img, dx) in dx.chunks_exact_mut(d.image_in()).enumerate() {
                    col2im_nhwc(&gcol[img * n * k..][..n * k], d, dx);
                }
                return Ok(());
            }
        };
        for (img, dx) in dx.chunks_exact_mut(d.image_in()).enumerate() {
            if d.pool == 1 {
                col2im(&gcol_kn[img * n..], d, width, dx);
            } else {
                // Added up by column phase, then interleaved (see `forward::split_phases`).
                phases.clear();
                phases.resize(d.c * d.h * d.pool * d.phase_w(), 0.0);
                col2im(&gcol_kn[img * n..], d, width, phases);
                merge_phases(phases, d, dx);
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
        let dw = if transposed_dw {
            let mut dw = vec![0f32; dw_len];
            transpose(&acc, k, o, &mut dw);
            dw
        } else {
            acc
        };
        weights_from_gemm(dw, d)
    });
    let dx = want.input.then_some(dx);
    Ok((dx, dw, db))
}
