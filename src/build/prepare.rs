//! Input checks and L2 normalization: the `f32` unit vectors the fast products run on, and the
//! exact `f64` cosine that decides every borderline pair and gives every edge its weight.

use super::BuildError;
use ndarray::{Array2, Axis};
use rayon::prelude::*;

/// The embeddings ready for comparison. Rows that are zero vectors are left out: `rows` maps the
/// compact index of a kept row (used everywhere inside the builder) to its input row.
pub(crate) struct Prepared<'a> {
    /// The input, row-major `n × d`, for the exact `f64` similarities.
    pub input: &'a [f32],
    /// Compact index → input row, increasing.
    pub rows: Vec<u32>,
    /// `valid × d`: the kept rows divided by their norm in `f64`, then rounded to `f32`.
    pub unit: Array2<f32>,
    /// `‖x‖²` of each kept row, computed by [`dot64`] (compact index).
    pub sq_norms: Vec<f64>,
    /// Number of input rows that are zero vectors (skipped).
    pub zero_rows: usize,
}

/// Dot product in `f64` of two `f32` slices, with a fixed summation order (four interleaved
/// partial sums, added as `(s0 + s1) + (s2 + s3)`) so that it is deterministic and fast. Each
/// product of two `f32` values is exact in `f64`.
#[inline]
pub(crate) fn dot64(a: &[f32], b: &[f32]) -> f64 {
    let mut s = [0.0f64; 4];
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..4 {
            s[k] += f64::from(x[k]) * f64::from(y[k]);
        }
    }
    for (k, (x, y)) in ra.iter().zip(rb).enumerate() {
        s[k] += f64::from(*x) * f64::from(*y);
    }
    (s[0] + s[1]) + (s[2] + s[3])
}

/// The cosine of input rows `x` and `y` with squared norms `sx = dot64(x, x)`, `sy = dot64(y, y)`:
/// `dot64(x, y) / sqrt(sx · sy)`, clamped to `[-1, 1]` (see [`Prepared::cosine`]).
#[inline]
pub(crate) fn cosine(x: &[f32], sx: f64, y: &[f32], sy: f64) -> f64 {
    (dot64(x, y) / (sx * sy).sqrt()).clamp(-1.0, 1.0)
}

impl<'a> Prepared<'a> {
    /// Checks the embeddings (`input`: `n × d`, row-major) and normalizes them. `ids` (if given)
    /// name the rows in errors.
    ///
    /// # Errors
    /// [`BuildError::Empty`] for no rows, [`BuildError::NoDimensions`] for zero columns,
    /// [`BuildError::NotFinite`] naming the first row (and its id and column) with NaN or ±∞.
    pub fn new(input: &'a [f32], n: usize, d: usize, ids: Option<&[String]>) -> Result<Self, BuildError> {
        debug_assert_eq!(input.len(), n * d);
        if n == 0 {
            return Err(BuildError::Empty);
        }
        if d == 0 {
            return Err(BuildError::NoDimensions { rows: n });
        }
        if n > u32::MAX as usize {
            return Err(BuildError::TooManyRows { rows: n });
        }
        let sq: Vec<f64> = input.par_chunks_exact(d).map(|x| dot64(x, x)).collect();
        // A NaN or infinity makes the squared norm non-finite; find the first such row, then its column.
        if let Some(row) = sq.iter().position(|s| !s.is_finite()) {
            let values = &input[row * d..(row + 1) * d];
            // Finite f32 values cannot overflow the f64 sum (|x| ≤ 3.4e38, so x² ≤ 1.2e77), so some
            // value of this row is NaN or infinite.
            let column = values.iter().position(|v| !v.is_finite()).unwrap_or(0);
            return Err(BuildError::NotFinite {
                row,
                id: ids.and_then(|ids| ids.get(row)).cloned(),
                column,
                value: values[column],
            });
        }
        let rows: Vec<u32> = (0..n).filter(|&r| sq[r] > 0.0).map(|r| r as u32).collect();
        let zero_rows = n - rows.len();
        let sq_norms: Vec<f64> = rows.iter().map(|&r| sq[r as usize]).collect();
        let mut unit = Array2::<f32>::zeros((rows.len(), d));
        unit.axis_iter_mut(Axis(0)).into_par_iter().zip(rows.par_iter().zip(sq_norms.par_iter())).for_each(
            |(mut out, (&r, &s))| {
                let norm = s.sqrt();
                let r = r as usize;
                for (o, &x) in out.iter_mut().zip(&input[r * d..(r + 1) * d]) {
                    *o = (f64::from(x) / norm) as f32;
                }
            },
        );
        Ok(Prepared { input, rows, unit, sq_norms, zero_rows })
    }

    /// Number of kept (non-zero) rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Dimension of the embeddings.
    pub fn dim(&self) -> usize {
        self.unit.ncols()
    }

    /// The exact cosine similarity of kept rows `a` and `b` (compact indices), in `f64`:
    /// `x·y / sqrt(‖x‖² ‖y‖²)` with every sum by [`dot64`], clamped to `[-1, 1]`. A row compared
    /// with itself or with a positive multiple of itself by a power of two gives exactly 1.
    #[inline]
    pub fn cosine(&self, a: u32, b: u32) -> f64 {
        let (a, b) = (a as usize, b as usize);
        cosine(self.row_slice(a), self.sq_norms[a], self.row_slice(b), self.sq_norms[b])
    }

    /// The input row of compact index `a`.
    #[inline]
    pub fn row_slice(&self, a: usize) -> &[f32] {
        let d = self.dim();
        let r = self.rows[a] as usize;
        &self.input[r * d..(r + 1) * d]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn skips_zero_rows_and_normalizes() {
        let x = array![[3.0f32, 4.0], [0.0, 0.0], [0.0, 2.0]];
        let p = Prepared::new(x.as_slice().unwrap(), x.nrows(), x.ncols(), None).unwrap();
        assert_eq!(p.rows, vec![0, 2]);
        assert_eq!(p.zero_rows, 1);
        assert_eq!(p.unit.row(0).to_vec(), vec![0.6, 0.8]);
        assert_eq!(p.cosine(0, 1), 0.8);
        assert_eq!(p.cosine(0, 0), 1.0);
    }

    #[test]
    fn names_the_non_finite_value() {
        let x = array![[1.0f32, 2.0], [1.0, f32::INFINITY]];
        let ids = vec!["a".to_string(), "b".to_string()];
        match Prepared::new(x.as_slice().unwrap(), 2, 2, Some(&ids)) {
            Err(BuildError::NotFinite { row: 1, id: Some(id), column: 1, .. }) => assert_eq!(id, "b"),
            Err(e) => panic!("wrong error {e}"),
            Ok(_) => panic!("accepted infinity"),
        }
    }

    #[test]
    fn self_similarity_is_exactly_one() {
        let x = array![[0.1f32, 0.7, -0.3, 1e-3, 5.0], [0.2, 1.4, -0.6, 2e-3, 10.0]];
        let p = Prepared::new(x.as_slice().unwrap(), x.nrows(), x.ncols(), None).unwrap();
        assert_eq!(p.cosine(0, 0), 1.0);
        assert_eq!(p.cosine(0, 1), 1.0);
    }
}
