//! The forward pass: im2col, one GEMM per group of images, then bias, ReLU and pool; and the
//! per-thread scratch buffers both passes use.

use super::dims::ConvDims;
use super::pool::pool_argmax;
use crate::kernels::{sgemm, Mat};
use candle_core::Result;
use rayon::prelude::*;

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

/// The im2col matrix `[K, G·N]` of a group of images `xs: [G, C, H, W]`, built in `buf`.
pub(super) fn group_cols<'a>(xs: &[f32], d: &ConvDims, buf: &'a mut Vec<f32>) -> &'a [f32] {
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
pub(super) type Scratch = [Vec<f32>; 4];

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

/// Forward: per group, `w[O, K] × col[K, G·N]`, then bias, ReLU and pool into the output. Returns
/// the output and, if pooled, each window's argmax offset (one byte per output value).
pub(super) fn conv_forward(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    relu: bool,
    d: &ConvDims,
) -> Result<(Vec<f32>, Vec<u8>)> {
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
