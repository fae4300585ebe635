//! CPU building blocks shared by the fast layers and the graph builder: an f32 GEMM over strided
//! views (the `gemm` crate, AVX-512 where the CPU has it: ndarray's `matrixmultiply` stops at
//! AVX2), a tiled transpose, access to a tensor's contiguous f32 data, and the switch that lets an
//! input-gradient pass skip the fast layers' parameter gradients ([`input_gradient_only`]).

use candle_core::{bail, CpuStorage, Layout, Result, Storage, Tensor};
use ndarray::ArrayView2;
use std::cell::Cell;
use std::marker::PhantomData;

thread_local! {
    /// Whether the fast layers' ops created on this thread compute their parameter gradients.
    static PARAM_GRADS: Cell<bool> = const { Cell::new(true) };
}

/// Runs `f` (a forward pass and its backward, on this thread) with the parameter gradients of the
/// fast layers (`FastConv2d`, `Dense`) turned off: their ops created inside `f` give gradients
/// only to their inputs.
///
/// Why: candle's autograd differentiates with respect to every variable a loss depends on, so the
/// input gradient a PGD step follows (`loss::task_input_gradient`) would also compute every weight
/// gradient — about a third of the backward's arithmetic — and throw it away. Use it only where
/// the parameter gradients are discarded: inside `f` they are `None`.
pub(crate) fn input_gradient_only<R>(f: impl FnOnce() -> R) -> R {
    /// Restores the previous setting even if `f` unwinds.
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            PARAM_GRADS.with(|p| p.set(self.0));
        }
    }
    let _restore = Restore(PARAM_GRADS.with(|p| p.replace(false)));
    f()
}

/// Whether an op created now should compute its parameter gradients (false inside
/// [`input_gradient_only`]).
pub(crate) fn param_grads_wanted() -> bool {
    PARAM_GRADS.with(Cell::get)
}

/// Runs `f` compiled for the CPU's widest vectors (AVX-512 or AVX2 where the CPU has them, checked
/// at run time): the crate is built for baseline x86-64, whose SSE2 vectors are 4 floats wide.
/// Floating-point results do not change (no reassociation, no fused multiply-add): only the
/// vector width of the loops the compiler vectorizes anyway. Functions `f` calls get the wider
/// vectors only if they are inlined into it (`#[inline(always)]`).
///
/// **`f` itself may not be:** pulp calls it from one branch per instruction set, and LLVM inlines a
/// closure there only if it is small, so a loop of any size in `f` can end up in a separate function
/// compiled for baseline x86-64 (SSE2) — check with `objdump` for ymm/zmm registers. A hot kernel
/// goes in a `pulp::WithSimd` struct instead (its `#[inline(always)]` `with_simd` is compiled inside
/// pulp's function; e.g. `transpose`, `conv::forward::Nhwc`, `conv::direct::ForwardRun`).
#[inline(always)]
pub(crate) fn simd<R>(f: impl FnOnce() -> R) -> R {
    pulp::Arch::new().dispatch(f)
}

/// A strided view of a matrix for [`sgemm`]: element `(r, c)` is at `r·row_stride + c·col_stride`
/// from the start of the borrowed data.
#[derive(Clone, Copy)]
pub(crate) struct Mat<'a> {
    ptr: *const f32,
    row_stride: isize,
    col_stride: isize,
    /// What the GEMM may read, checked by [`sgemm`] against the product's shape.
    extent: Extent,
    _data: PhantomData<&'a [f32]>,
}

/// The memory behind a [`Mat`].
#[derive(Clone, Copy)]
enum Extent {
    /// The `len` values of a slice, addressed with non-negative strides.
    Slice(usize),
    /// An ndarray view of `rows × cols` (any strides, which ndarray keeps valid for that shape).
    View(usize, usize),
}

impl<'a> Mat<'a> {
    /// A row-major matrix `cols` wide.
    pub(crate) fn rows(data: &'a [f32], cols: usize) -> Self {
        Mat::strided(data, cols, 1)
    }

    /// The transpose of a row-major matrix `cols` wide.
    pub(crate) fn transposed(data: &'a [f32], cols: usize) -> Self {
        Mat::strided(data, 1, cols)
    }

    /// The transpose of this view (no data moves: the strides swap).
    pub(crate) fn t(self) -> Self {
        let extent = match self.extent {
            Extent::Slice(len) => Extent::Slice(len),
            Extent::View(r, c) => Extent::View(c, r),
        };
        Mat { row_stride: self.col_stride, col_stride: self.row_stride, extent, ..self }
    }

    fn strided(data: &'a [f32], row_stride: usize, col_stride: usize) -> Self {
        Mat {
            ptr: data.as_ptr(),
            row_stride: row_stride as isize,
            col_stride: col_stride as isize,
            extent: Extent::Slice(data.len()),
            _data: PhantomData,
        }
    }

    /// An ndarray view with its own strides (possibly negative or not contiguous).
    pub(crate) fn view(a: ArrayView2<'a, f32>) -> Self {
        let [row_stride, col_stride] = [a.strides()[0], a.strides()[1]];
        Mat { ptr: a.as_ptr(), row_stride, col_stride, extent: Extent::View(a.nrows(), a.ncols()), _data: PhantomData }
    }

    /// Whether reading this matrix as `rows × cols` stays inside its data.
    fn fits(&self, rows: usize, cols: usize) -> bool {
        if rows == 0 || cols == 0 {
            return true;
        }
        match self.extent {
            Extent::Slice(len) => {
                // Strides come from `usize`s here, so they are non-negative.
                let last = (rows - 1) * self.row_stride as usize + (cols - 1) * self.col_stride as usize;
                last < len
            }
            Extent::View(r, c) => rows <= r && cols <= c,
        }
    }
}

/// `dst[m, n] (+)= lhs[m, k] × rhs[k, n]` with `dst` row-major: overwritten, or added to if
/// `accumulate`. `parallel` lets the GEMM split its work over the rayon threads.
///
/// The crate's one call into the `gemm` crate (the fast layers and the graph builder's Gram
/// blocks both go through here).
///
/// # Errors
/// If `dst` is shorter than `m·n` or an operand is too small for its side of the product.
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
    // Bounds for the unsafe call below: every element each matrix can touch must be in range.
    if dst.len() < m * n || (k > 0 && !(lhs.fits(m, k) && rhs.fits(k, n))) {
        bail!("internal GEMM operands too small for {m}×{k}×{n}");
    }
    let threads = rayon::current_num_threads();
    let parallelism = if parallel && threads > 1 { gemm::Parallelism::Rayon(threads) } else { gemm::Parallelism::None };
    // SAFETY: the checks above keep every index the GEMM reads (lhs, rhs, and dst if accumulating)
    // or writes (dst, m×n row-major) inside its slice or view (`Mat::fits`); `dst` is borrowed
    // mutably, so it cannot alias lhs or rhs, which are borrowed for `'_` through their `Mat`s.
    // The result is `alpha·dst + beta·lhs×rhs`, dst read only if `accumulate` (else alpha is
    // unused).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            lhs.ptr,
            lhs.col_stride,
            lhs.row_stride,
            rhs.ptr,
            rhs.col_stride,
            rhs.row_stride,
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
    pulp::Arch::new().dispatch(Transpose { src, rows, cols, dst })
}

/// [`transpose`] as a `WithSimd` struct rather than a closure for [`simd`]: a closure this size is
/// not inlined into pulp's function compiled for the CPU's widest vectors, and ran with SSE2.
struct Transpose<'a> {
    src: &'a [f32],
    rows: usize,
    cols: usize,
    dst: &'a mut [f32],
}

impl pulp::WithSimd for Transpose<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        let Transpose { src, rows, cols, dst } = self;
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
}

#[cfg(test)]
mod tests {
    use super::{sgemm, transpose, Mat};
    use ndarray::{s, Array2};

    /// `[[1, 2, 3], [4, 5, 6]]`, a fixture.
    fn two_by_three() -> Array2<f32> {
        Array2::from_shape_fn((2, 3), |(i, j)| (3 * i + j + 1) as f32)
    }

    /// Slices, their transposes and ndarray views with negative strides give the same products as
    /// ndarray's `dot`; accumulating adds to the destination.
    #[test]
    fn sgemm_over_slices_and_strided_views() -> candle_core::Result<()> {
        let a = two_by_three();
        let data = a.as_slice().expect("standard layout");
        // a·aᵀ = [[14, 32], [32, 77]], from a slice and its transpose.
        let mut c = vec![f32::NAN; 4];
        sgemm((2, 2, 3), Mat::rows(data, 3), Mat::transposed(data, 3), &mut c, false, false)?;
        assert_eq!(c, [14.0, 32.0, 32.0, 77.0]);
        sgemm((2, 2, 3), Mat::rows(data, 3), Mat::transposed(data, 3), &mut c, true, false)?;
        assert_eq!(c, [28.0, 64.0, 64.0, 154.0]);
        // `t()` of a row-major view is `transposed`.
        let mut t = vec![f32::NAN; 4];
        sgemm((2, 2, 3), Mat::rows(data, 3), Mat::rows(data, 3).t(), &mut t, false, false)?;
        assert_eq!(t, [14.0, 32.0, 32.0, 77.0]);
        // Rows and columns reversed (negative strides), against ndarray.
        let flipped = a.slice(s![..;-1, ..;-1]);
        let want = flipped.dot(&a.t());
        let mut c = vec![f32::NAN; 4];
        sgemm((2, 2, 3), Mat::view(flipped), Mat::view(a.t()), &mut c, false, false)?;
        assert_eq!(c, want.as_slice().expect("standard layout"));
        Ok(())
    }

    #[test]
    fn sgemm_rejects_operands_too_small() {
        let a = two_by_three();
        let data = a.as_slice().expect("standard layout");
        let mut c = vec![0.0; 9];
        // 3 rows of a 2-row slice, a view read past its columns, a short destination.
        assert!(sgemm((3, 3, 3), Mat::rows(data, 3), Mat::rows(data, 3), &mut c, false, false).is_err());
        assert!(sgemm((2, 2, 4), Mat::view(a.view()), Mat::rows(&[0.0; 8], 2), &mut c, false, false).is_err());
        assert!(sgemm((2, 2, 3), Mat::rows(data, 3), Mat::transposed(data, 3), &mut c[..3], false, false).is_err());
    }

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
