//! CPU building blocks shared by the fast layers: an f32 GEMM over strided views (the `gemm`
//! crate, AVX-512 where the CPU has it: ndarray's `matrixmultiply` stops at AVX2) and
//! access to a tensor's contiguous f32 data.

use candle_core::{bail, CpuStorage, Layout, Result, Storage, Tensor};

/// A strided view of a matrix for [`sgemm`]: element `(r, c)` is `data[r·row_stride + c·col_stride]`.
#[derive(Clone, Copy)]
pub(crate) struct Mat<'a> {
    data: &'a [f32],
    row_stride: usize,
    col_stride: usize,
}

impl<'a> Mat<'a> {
    /// A row-major matrix `cols` wide.
    pub(crate) fn rows(data: &'a [f32], cols: usize) -> Self {
        Mat { data, row_stride: cols, col_stride: 1 }
    }

    /// The transpose of a row-major matrix `cols` wide.
    pub(crate) fn transposed(data: &'a [f32], cols: usize) -> Self {
        Mat { data, row_stride: 1, col_stride: cols }
    }
}

/// `dst[m, n] (+)= lhs[m, k] × rhs[k, n]` with `dst` row-major: overwritten, or added to if
/// `accumulate`. `parallel` lets the GEMM split its work over the rayon threads.
pub(crate) fn sgemm(
    (m, n, k): (usize, usize, usize),
    lhs: Mat,
    rhs: Mat,
    dst: &mut [f32],
    accumulate: bool,
    parallel: bool,
) -> Result<()> {
    if m == 0 || n == 0 {
        return Ok(());
    }
    // Bounds for the unsafe call below: the last element each matrix can touch must be in range.
    let last = |mat: &Mat, rows: usize, cols: usize| (rows - 1) * mat.row_stride + (cols - 1) * mat.col_stride;
    if dst.len() < m * n || (k > 0 && (last(&lhs, m, k) >= lhs.data.len() || last(&rhs, k, n) >= rhs.data.len())) {
        bail!("internal GEMM operands too small for {m}×{k}×{n}");
    }
    let threads = rayon::current_num_threads();
    let parallelism = if parallel && threads > 1 { gemm::Parallelism::Rayon(threads) } else { gemm::Parallelism::None };
    // SAFETY: the checks above keep every index the GEMM reads (lhs, rhs, and dst if accumulating)
    // or writes (dst, m×n row-major) inside its slice; `dst` is borrowed mutably, so it cannot
    // alias lhs or rhs. The result is `alpha·dst + beta·lhs×rhs`, dst read only if `accumulate`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.col_stride as isize,
            lhs.row_stride as isize,
            rhs.data.as_ptr(),
            rhs.col_stride as isize,
            rhs.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
    Ok(())
}

/// The contiguous f32 data of a CPU storage.
pub(crate) fn cpu_slice<'a>(storage: &'a CpuStorage, layout: &Layout, what: &str) -> Result<&'a [f32]> {
    let data = storage.as_slice::<f32>()?;
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => bail!("the {what} must be contiguous (shape {:?})", layout.dims()),
    }
}

/// Runs `f` on the contiguous f32 CPU data of `t` (made contiguous first if needed).
pub(crate) fn with_slice<R>(t: &Tensor, what: &str, f: impl FnOnce(&[f32]) -> Result<R>) -> Result<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        Storage::Cpu(cpu) => f(cpu_slice(cpu, layout, what)?),
        _ => bail!("the {what} must be on the CPU"),
    }
}

/// `dst[c, r] = src[r, c]` for a row-major `src` of `rows × cols`: 8×8 tiles loaded whole into
/// a local array, so the compiler sees fixed sizes (no bounds checks, register shuffles), then
/// the edges element by element.
pub(crate) fn transpose(src: &[f32], rows: usize, cols: usize, dst: &mut [f32]) {
    const T: usize = 8;
    let (src, dst) = (&src[..rows * cols], &mut dst[..rows * cols]);
    let (rows_t, cols_t) = (rows / T * T, cols / T * T);
    for r0 in (0..rows_t).step_by(T) {
        for c0 in (0..cols_t).step_by(T) {
            let mut tile = [[0f32; T]; T];
            for (i, row) in tile.iter_mut().enumerate() {
                row.copy_from_slice(&src[(r0 + i) * cols + c0..][..T]);
            }
            for j in 0..T {
                let out: &mut [f32; T] = (&mut dst[(c0 + j) * rows + r0..][..T]).try_into().expect("T values");
                for (i, v) in out.iter_mut().enumerate() {
                    *v = tile[i][j];
                }
            }
        }
    }
    for r in 0..rows {
        let first = if r < rows_t { cols_t } else { 0 };
        for c in first..cols {
            dst[c * rows + r] = src[r * cols + c];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::transpose;

    /// Whole 8×8 tiles and ragged edges on both sides.
    #[test]
    fn transpose_with_ragged_edges() {
        for (rows, cols) in [(11, 19), (8, 16), (3, 2), (1, 9)] {
            let src: Vec<f32> = (0..rows * cols).map(|v| v as f32).collect();
            let mut dst = vec![-1.0; rows * cols];
            transpose(&src, rows, cols, &mut dst);
            for r in 0..rows {
                for c in 0..cols {
                    assert_eq!(dst[c * rows + r], src[r * cols + c], "{rows}×{cols} at ({r}, {c})");
                }
            }
        }
    }
}
