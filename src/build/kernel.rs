//! The fast path: `f32` Gram blocks by GEMM, and the error bound that says which of their values
//! must be re-checked in `f64`.
//!
//! A block is `C = A·Bᵀ` for two sets of unit rows, one matrix product (`2·m·n·d` flops). Its
//! values are cosine similarities up to a rounding error that is bounded by [`margin`], so a
//! value below `threshold − margin` is certainly not an edge, and only values within the margin of
//! the threshold need the exact `f64` cosine.

pub(crate) use crate::kernels::transpose;
use crate::kernels::{sgemm, Mat};
use ndarray::ArrayView2;

/// Rows per block side. A `BLOCK × BLOCK` block of `f32` is 1 MiB, so the threshold scan that
/// follows the product reads it from the L2 cache; larger blocks gained nothing measurable.
pub(crate) const BLOCK: usize = 512;

/// The Gram block `c = a · bᵀ` of `a: m × d` and `b: n × d` (any strides), written row-major into
/// `c[..m·n]`, on the calling thread: the builder runs many blocks in parallel instead.
///
/// The product is the `gemm` crate's (through the crate's one GEMM wrapper, shared with the fast
/// layers), which picks AVX-512, AVX2+FMA or plain kernels at run time; on the benchmark machine
/// it ran 2.6× faster than ndarray's `dot` (matrixmultiply), see `docs/benchmarks.md`.
///
/// # Panics
/// If `a` and `b` differ in width or `c` is shorter than `m·n`.
pub fn gram(a: ArrayView2<'_, f32>, b: ArrayView2<'_, f32>, c: &mut [f32]) {
    let (m, n, d) = (a.nrows(), b.nrows(), a.ncols());
    assert_eq!(b.ncols(), d, "gram: widths differ");
    let c = &mut c[..m * n];
    // `bᵀ` is read as a d × n matrix (element (k, j) = b[j, k]) through b's own strides. With
    // d = 0 the product writes zeros.
    let product = sgemm((m, n, d), Mat::view(a), Mat::view(b.reversed_axes()), c, false, false);
    // Cannot fail: `c` holds m·n values and the views are m × d and d × n, what the product reads.
    product.expect("gram: operand shapes checked above");
}

/// A bound on `|c − cos(x, y)|` for a value `c` of [`gram`] on unit rows of dimension `d` rounded
/// to `f32`, where `cos` is the exact `f64` cosine of the inputs.
///
/// # Formula
/// With `u = 2⁻²⁴` (the `f32` unit roundoff) and `γₙ = n·u / (1 − n·u)`: rounding the unit vectors
/// to `f32` moves the dot product by at most `2u + u²`, and summing `d` products in any order (with
/// or without FMA) by at most `γ_{d+1}·(1 + u)²`. Add 1 % and `(d + 4)·2⁻⁵²` for the `f64` side.
/// For `d ≥ 2²³` the bound is useless and 2 (the whole range) is returned.
pub(crate) fn margin(d: usize) -> f64 {
    let u = f64::from(f32::EPSILON) / 2.0;
    let nu = (d as f64 + 1.0) * u;
    if nu >= 0.5 {
        return 2.0;
    }
    let gamma = nu / (1.0 - nu);
    (2.0 * u + u * u + gamma * (1.0 + u) * (1.0 + u)) * 1.01 + (d as f64 + 4.0) * f64::EPSILON
}

/// The largest `f32` not above `x`.
pub(crate) fn f32_at_most(x: f64) -> f32 {
    let f = x as f32;
    if f64::from(f) > x {
        f.next_down()
    } else {
        f
    }
}

/// The smallest `f32` not below `x`.
pub(crate) fn f32_at_least(x: f64) -> f32 {
    let f = x as f32;
    if f64::from(f) < x {
        f.next_up()
    } else {
        f
    }
}

/// Whether any value of `row` is `≥ lo`, without branching per value (so it vectorizes).
#[inline]
pub(crate) fn any_at_least(row: &[f32], lo: f32) -> bool {
    row.iter().fold(false, |acc, &v| acc | (v >= lo))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn gram_handles_strided_views_and_empty_widths() {
        let a = ndarray::Array2::from_shape_fn((70, 33), |(i, j)| (i * 3 + j) as f32 / 50.0);
        let b = ndarray::Array2::from_shape_fn((45, 33), |(i, j)| (i + 2 * j) as f32 / 40.0);
        let want = a.dot(&b.t());
        let mut c = vec![0.0; 70 * 45];
        gram(a.view(), b.view(), &mut c);
        // A transposed (column-major) copy of b, viewed back as 45 × 33.
        let bt = b.t().as_standard_layout().into_owned();
        assert!(bt.t().as_slice().is_none());
        let mut c2 = vec![0.0; 70 * 45];
        gram(a.view(), bt.t(), &mut c2);
        for (i, w) in want.iter().enumerate() {
            assert!((c[i] - w).abs() < 1e-4 && (c2[i] - w).abs() < 1e-4, "{i}: {} {} {w}", c[i], c2[i]);
        }
        let mut z = vec![f32::NAN; 4];
        gram(ndarray::Array2::<f32>::zeros((2, 0)).view(), ndarray::Array2::<f32>::zeros((2, 0)).view(), &mut z);
        assert_eq!(z, vec![0.0; 4]);
    }

    #[test]
    fn gram_is_a_times_b_transposed() {
        let a = array![[1.0f32, 2.0], [3.0, 4.0], [5.0, 6.0]];
        let b = array![[1.0f32, 0.0], [0.0, 1.0]];
        let mut c = vec![f32::NAN; 6];
        gram(a.view(), b.view(), &mut c);
        assert_eq!(c, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let mut t = vec![0.0; 6];
        transpose(&c, 3, 2, &mut t);
        assert_eq!(t, vec![1.0, 3.0, 5.0, 2.0, 4.0, 6.0]);
    }

    #[test]
    fn margin_grows_with_dimension_and_rounding_is_directed() {
        assert!(margin(128) > 128.0 * 5.9e-8 && margin(128) < 1e-5);
        assert!(margin(784) > margin(128));
        assert_eq!(margin(1 << 24), 2.0);
        let x = 0.9 - 1e-9;
        assert!(f64::from(f32_at_most(x)) <= x && f64::from(f32_at_least(x)) >= x);
        assert!(f32_at_least(x) > f32_at_most(x));
        assert_eq!(f32_at_most(0.5), 0.5);
    }

    #[test]
    fn scan_finds_values() {
        assert!(any_at_least(&[0.1, 0.9, 0.2], 0.9));
        assert!(!any_at_least(&[0.1, 0.8, f32::NAN], 0.9));
    }
}
