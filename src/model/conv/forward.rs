//! The forward pass: im2col, one GEMM per group of images, then bias, ReLU and pool; and the
//! per-thread scratch buffers both passes use.

use super::dims::ConvDims;
use super::pool::pool_blocks;
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

/// The rows of an image `x: [C, H, W]` split by column phase for a pool of `s = d.pool`:
/// `xp[((c·H + r)·s + p)·WU + u] = x[c, r, u·s + p]` (0 past the row's end), `WU = ⌈W/s⌉`, so that
/// the stride-`s` reads of the window-major im2col (see [`ConvDims::n`]) become contiguous. Without
/// a pool (`s = 1`) this is `x` itself, and no copy is made.
pub(super) fn split_phases<'a>(x: &'a [f32], d: &ConvDims, buf: &'a mut Vec<f32>) -> &'a [f32] {
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
}

/// The transpose of [`im2col`] for one image: `dx[c, y+i, x+j] += gcol[(c, i, j), column of (y, x)]`,
/// into the phase-split `dxp` (see [`split_phases`]; `dx` itself without a pool).
pub(super) fn col2im(gcol: &[f32], d: &ConvDims, ld: usize, dxp: &mut [f32]) {
    let (pw, pn) = (d.pw, d.out_n());
    for_each_block(d, |row, column, dst, stride| {
        for (i, g) in gcol[row * ld + column..][..pn].chunks_exact(pw).enumerate() {
            for (a, g) in dxp[dst + i * stride..][..pw].iter_mut().zip(g) {
                *a += g;
            }
        }
    });
}

/// The inverse of [`split_phases`]: `dx[c, r, u·s + p] = dxp[((c·H + r)·s + p)·WU + u]`.
pub(super) fn merge_phases(dxp: &[f32], d: &ConvDims, dx: &mut [f32]) {
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
}

/// The im2col matrix `[K, G·N]` of a group of images `xs: [G, C, H, W]`, built in `buf` (`phases`:
/// a buffer for [`split_phases`]).
pub(super) fn group_cols<'a>(xs: &[f32], d: &ConvDims, buf: &'a mut Vec<f32>, phases: &mut Vec<f32>) -> &'a [f32] {
    let (g, ld) = (xs.len() / d.image_in(), xs.len() / d.image_in() * d.n());
    buf.resize(d.k() * ld, 0.0);
    for (i, x) in xs.chunks_exact(d.image_in()).enumerate() {
        im2col(split_phases(x, d, phases), d, &mut buf[i * d.n()..], ld);
    }
    &buf[..d.k() * g * d.n()]
}

/// Per-thread scratch buffers (im2col matrices, reordered gradients, transposes, GEMM products), kept between
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
    let argmax = map_groups(d, &mut ys, d.image_out(), |g, out, [cols, prod, phases, ..]| {
        let images = out.len() / d.image_out();
        let col = group_cols(&x[g * d.group * d.image_in()..][..images * d.image_in()], d, cols, phases);
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
                    pool_blocks(plane, out, arg);
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
