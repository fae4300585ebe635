//! Locality-sensitive hashing by random hyperplanes, with NSL's semantics.
//!
//! Each round draws a fresh `lsh_splits × d` matrix `H` with entries uniform in `[-1, 1)` (NSL
//! draws the same distribution; these are not Gaussian hyperplanes). A row `e` falls into the
//! bucket whose bit `i` is set iff `H_i · e > 0`, so there are at most `2^lsh_splits` buckets, and
//! only rows sharing a bucket are compared. The hyperplanes come from ChaCha8 seeded with the
//! build's seed on stream `round + 1`, so a round's buckets depend on the seed and the round only:
//! not on the thread count, nor on the shard.
//!
//! A code bit is a pure function of the row and the hyperplane: the `f32` projection (by GEMM)
//! decides the sign only when it is farther from 0 than twice a proven bound on its rounding
//! error; otherwise the `f64` product of the same `f32` values decides. So the code of a row does
//! not depend on which other rows are hashed with it, and a distributed job that hashes rows in
//! arbitrary partitions ([`lsh_codes`]) puts every row in the bucket `nsl build-graph` puts it in.
//!
//! With centering, the hashed vector is `x − μ` (computed in `f32`), `μ` the mean of the input
//! rows ([`column_mean`], an exactly rounded sum so that any partitioning of the rows gives the
//! same mean); the cosine weights are still those of the input rows.

use super::kernel::{gram, margin};
use super::pairs::Buckets;
use super::prepare::{dot64, Prepared};
use super::BuildError;
use ndarray::{s, Array2, ArrayView2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

/// Rows hashed per GEMM call (fixed, so results never depend on the thread count).
const CHUNK: usize = 4096;

/// The hyperplanes of `round`: `splits × d`, uniform in `[-1, 1)`.
pub(crate) fn hyperplanes(seed: u64, round: u32, splits: u32, d: usize) -> Array2<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(u64::from(round) + 1);
    Array2::from_shape_simple_fn((splits as usize, d), || rng.random_range(-1.0f32..1.0))
}

/// The vectors that are hashed: the unit rows, or the centered input rows `x − μ`.
pub(crate) enum Hashed {
    /// The unit rows (no centering).
    Unit,
    /// `x − μ` of every kept row, in `f32`.
    Centered(Array2<f32>),
}

impl Hashed {
    /// The hashed vectors of `prep`'s kept rows: its unit rows, or `x − center`.
    pub(crate) fn new(prep: &Prepared<'_>, center: Option<&[f32]>) -> Hashed {
        match center {
            None => Hashed::Unit,
            Some(mu) => {
                let d = prep.dim();
                let mut out = Array2::<f32>::zeros((prep.len(), d));
                out.axis_iter_mut(ndarray::Axis(0)).into_par_iter().enumerate().for_each(|(a, mut row)| {
                    for ((o, &x), &m) in row.iter_mut().zip(prep.row_slice(a)).zip(mu) {
                        *o = x - m;
                    }
                });
                Hashed::Centered(out)
            }
        }
    }

    fn view<'x>(&'x self, prep: &'x Prepared<'_>) -> ArrayView2<'x, f32> {
        match self {
            Hashed::Unit => prep.unit.view(),
            Hashed::Centered(c) => c.view(),
        }
    }
}

/// The bucket code of every row of `rows`: bit `i` set iff `H_i · e > 0`, decided exactly (see
/// the module documentation), so each row's code depends on that row alone.
pub(crate) fn codes(rows: ArrayView2<'_, f32>, planes: &Array2<f32>) -> Vec<u64> {
    let splits = planes.nrows();
    let d = planes.ncols();
    let n = rows.nrows();
    // |fl32(h·e) − h·e| ≤ margin(d)·‖h‖·‖e‖ for any summation order; decide in f32 beyond twice that.
    let err = margin(d);
    let plane_norms: Vec<f64> =
        planes.outer_iter().map(|h| h.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>().sqrt()).collect();
    let mut codes = vec![0u64; n];
    codes.par_chunks_mut(CHUNK).enumerate().for_each(|(c, out)| {
        let start = c * CHUNK;
        let block = rows.slice(s![start..start + out.len(), ..]);
        let mut proj = vec![0.0f32; out.len() * splits];
        gram(block, planes.view(), &mut proj);
        let mut row_buf: Vec<f32> = Vec::with_capacity(d);
        for (r, (code, p)) in out.iter_mut().zip(proj.chunks_exact(splits.max(1))).enumerate() {
            let row = block.row(r);
            row_buf.clear();
            row_buf.extend(row.iter().copied());
            let norm = dot64(&row_buf, &row_buf).sqrt();
            let mut bits = 0u64;
            for (i, &v) in p.iter().enumerate() {
                let bound = 2.0 * err * plane_norms[i] * norm;
                let positive = if f64::from(v).abs() > bound {
                    v > 0.0
                } else {
                    let h = planes.row(i);
                    dot64(&row_buf, h.as_slice().unwrap_or(&[])) > 0.0
                };
                if positive {
                    bits |= 1 << i;
                }
            }
            *code = bits;
        }
    });
    codes
}

/// The buckets of `round`: rows grouped by code, each bucket's rows increasing, buckets in code
/// order; and each row's code.
pub(crate) fn buckets(prep: &Prepared<'_>, hashed: &Hashed, seed: u64, round: u32, splits: u32) -> (Buckets, Vec<u64>) {
    let planes = hyperplanes(seed, round, splits, prep.dim());
    let codes = codes(hashed.view(prep), &planes);
    let mut keyed: Vec<(u64, u32)> = codes.iter().copied().zip(0u32..).collect();
    keyed.par_sort_unstable();
    let mut bounds = Vec::new();
    let mut start = 0;
    for i in 1..=keyed.len() {
        if i == keyed.len() || keyed[i].0 != keyed[start].0 {
            bounds.push(start..i);
            start = i;
        }
    }
    (Buckets { members: keyed.into_iter().map(|(_, r)| r).collect(), bounds }, codes)
}

/// Exact per-column sums of `f32` values: each value is `m · 2^e` with an integer `|m| < 2²⁴`,
/// added into the integer bin of its exponent, so sums of any partition of the rows, merged
/// ([`ColumnSums::merge`]), hold exactly the same bins whatever the order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnSums {
    /// Rows added.
    pub rows: u64,
    /// `dim × BINS` integer bins, column-major by column: `bins[c · BINS + e]`.
    pub bins: Vec<i64>,
}

/// Exponent bins of [`ColumnSums`]: one per biased `f32` exponent (subnormals go to bin 1).
pub const SUM_BINS: usize = 256;

impl ColumnSums {
    /// Empty sums for `dim` columns.
    pub fn new(dim: usize) -> Self {
        ColumnSums { rows: 0, bins: vec![0; dim * SUM_BINS] }
    }

    /// Number of columns.
    pub fn dim(&self) -> usize {
        self.bins.len() / SUM_BINS
    }

    /// Adds one row (its length must be [`ColumnSums::dim`]; non-finite values are ignored, as
    /// the build rejects them anyway).
    pub fn add_row(&mut self, row: &[f32]) {
        self.rows += 1;
        for (c, &x) in row.iter().enumerate() {
            if !x.is_finite() {
                continue;
            }
            let bits = x.to_bits();
            let exp = ((bits >> 23) & 0xff) as usize;
            let frac = i64::from(bits & 0x7f_ffff);
            // Normal: (2^23 + frac) · 2^(exp − 150); subnormal: frac · 2^(−149), the bin of exp = 1.
            let (m, bin) = if exp == 0 { (frac, 1) } else { (frac | (1 << 23), exp) };
            self.bins[c * SUM_BINS + bin] += if bits >> 31 == 1 { -m } else { m };
        }
    }

    /// Adds another partition's sums.
    pub fn merge(&mut self, other: &ColumnSums) {
        self.rows += other.rows;
        for (a, b) in self.bins.iter_mut().zip(&other.bins) {
            *a += b;
        }
    }

    /// The mean of each column, `f32`: a deterministic function of the bins and the row count.
    pub fn mean(&self) -> Vec<f32> {
        let n = self.rows.max(1) as f64;
        (0..self.dim())
            .map(|c| {
                let sum: f64 = self.bins[c * SUM_BINS..(c + 1) * SUM_BINS]
                    .iter()
                    .enumerate()
                    .map(|(e, &m)| m as f64 * 2f64.powi(e as i32 - 150))
                    .sum();
                (sum / n) as f32
            })
            .collect()
    }
}

/// The mean of the rows of `embeddings` (`N × d`), as [`ColumnSums::mean`]: the centre that
/// `center` hashing subtracts.
pub fn column_mean(embeddings: ArrayView2<'_, f32>) -> Vec<f32> {
    let mut sums = ColumnSums::new(embeddings.ncols());
    let mut buf = Vec::with_capacity(embeddings.ncols());
    for row in embeddings.outer_iter() {
        buf.clear();
        buf.extend(row.iter().copied());
        sums.add_row(&buf);
    }
    sums.mean()
}

/// The LSH bucket codes of a batch of rows, for a distributed build (see [`lsh_codes`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LshCodes {
    /// The input rows that were hashed (zero vectors are left out, as the build skips them).
    pub rows: Vec<u32>,
    /// `rows.len() × rounds` codes, row-major: `codes[k · rounds + r]` is row `rows[k]`'s bucket in round `r`.
    pub codes: Vec<u64>,
    /// Rounds.
    pub rounds: u32,
}

/// The bucket codes of every non-zero row of `embeddings` in each of `rounds` rounds of `splits`
/// hyperplanes drawn from `seed`: the codes `nsl build-graph` gives the same rows with the same
/// settings (and the same `center`), whatever other rows are hashed with them.
///
/// # Errors
/// [`BuildError::InvalidConfig`] for `splits` of 0 or above 63, or `rounds` of 0, a `center` of
/// the wrong length; those of the input checks ([`BuildError::NotFinite`], ...).
pub fn lsh_codes(
    embeddings: ArrayView2<'_, f32>,
    seed: u64,
    splits: u32,
    rounds: u32,
    center: Option<&[f32]>,
) -> Result<LshCodes, BuildError> {
    let bad = |option: &'static str, value: String, expected: &'static str| {
        Err(BuildError::InvalidConfig { option, value, expected })
    };
    if splits == 0 || splits > super::MAX_LSH_SPLITS {
        return bad("lsh_splits", splits.to_string(), "1 to 63");
    }
    if rounds == 0 {
        return bad("lsh_rounds", "0".into(), "at least 1");
    }
    let (n, d) = embeddings.dim();
    if center.is_some_and(|c| c.len() != d) {
        return bad("center", format!("{} values", center.map_or(0, <[f32]>::len)), "one value per column");
    }
    let owned = embeddings.as_standard_layout();
    let data = owned.as_slice().unwrap_or(&[]);
    let prep = Prepared::new(data, n, d, None)?;
    let hashed = Hashed::new(&prep, center);
    let mut codes = vec![0u64; prep.len() * rounds as usize];
    for round in 0..rounds {
        let planes = hyperplanes(seed, round, splits, d);
        for (k, c) in self::codes(hashed.view(&prep), &planes).into_iter().enumerate() {
            codes[k * rounds as usize + round as usize] = c;
        }
    }
    Ok(LshCodes { rows: prep.rows, codes, rounds })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn hyperplanes_are_seeded_and_fresh_per_round() {
        let a = hyperplanes(7, 0, 3, 5);
        assert_eq!(a, hyperplanes(7, 0, 3, 5));
        assert_ne!(a, hyperplanes(7, 1, 3, 5));
        assert_ne!(a, hyperplanes(8, 0, 3, 5));
        assert!(a.iter().all(|&v| (-1.0..1.0).contains(&v)));
    }

    #[test]
    fn codes_are_sign_bits() {
        let x = array![[1.0f32, 0.0], [0.0, 1.0], [-1.0, -1.0]];
        let prep = Prepared::new(x.as_slice().unwrap(), 3, 2, None).unwrap();
        let planes = array![[1.0f32, 0.0], [0.0, 1.0]];
        assert_eq!(codes(prep.unit.view(), &planes), vec![0b01, 0b10, 0b00]);
    }

    #[test]
    fn a_rows_code_does_not_depend_on_its_neighbors() {
        let (x, _) = crate::build::synthetic::gaussian_clusters(300, 24, 5, 3);
        let all = lsh_codes(x.view(), 9, 12, 3, None).unwrap();
        // Hash the rows again in pieces of odd sizes.
        let mut pieces = Vec::new();
        for (lo, hi) in [(0, 1), (1, 130), (130, 300)] {
            pieces.extend(lsh_codes(x.slice(s![lo..hi, ..]), 9, 12, 3, None).unwrap().codes);
        }
        assert_eq!(all.codes, pieces);
    }

    #[test]
    fn column_sums_are_exact_and_order_free() {
        let rows: Vec<[f32; 2]> = vec![[1e30, 1.0], [-1e30, 1e-40], [3.0, -0.5], [0.1, 7.0]];
        let mut a = ColumnSums::new(2);
        let mut b = ColumnSums::new(2);
        for r in &rows {
            a.add_row(r);
        }
        for r in rows.iter().rev() {
            let mut one = ColumnSums::new(2);
            one.add_row(r);
            b.merge(&one);
        }
        assert_eq!(a, b);
        let m = a.mean();
        assert_eq!(m[0], ((3.0f64 + f64::from(0.1f32)) / 4.0) as f32);
    }
}
