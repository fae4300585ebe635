//! Locality-sensitive hashing by random hyperplanes, with NSL's semantics.
//!
//! Each round draws a fresh `lsh_splits × d` matrix `H` with entries uniform in `[-1, 1)` (NSL
//! draws the same distribution; these are not Gaussian hyperplanes). A row `e` falls into the
//! bucket whose bit `i` is set iff `H_i · e > 0`, so there are at most `2^lsh_splits` buckets, and
//! only rows sharing a bucket are compared. The hyperplanes come from ChaCha8 seeded with the
//! build's seed on stream `round + 1`, so a round's buckets depend on the seed and the round only:
//! not on the thread count, nor on the shard.

use super::kernel::gram;
use super::pairs::Buckets;
use super::prepare::Prepared;
use ndarray::{s, Array2};
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

/// The bucket code of every kept row: bit `i` set iff `H_i · e > 0`.
pub(crate) fn codes(prep: &Prepared<'_>, planes: &Array2<f32>) -> Vec<u64> {
    let splits = planes.nrows();
    let n = prep.len();
    let mut codes = vec![0u64; n];
    codes.par_chunks_mut(CHUNK).enumerate().for_each(|(c, out)| {
        let start = c * CHUNK;
        let rows = prep.unit.slice(s![start..start + out.len(), ..]);
        let mut proj = vec![0.0f32; out.len() * splits];
        gram(rows, planes.view(), &mut proj);
        for (code, p) in out.iter_mut().zip(proj.chunks_exact(splits.max(1))) {
            *code = p.iter().enumerate().fold(0u64, |acc, (i, &v)| if v > 0.0 { acc | (1 << i) } else { acc });
        }
    });
    codes
}

/// The buckets of `round`: rows grouped by code, each bucket's rows increasing, buckets in code
/// order; and each row's code.
pub(crate) fn buckets(prep: &Prepared<'_>, seed: u64, round: u32, splits: u32) -> (Buckets, Vec<u64>) {
    let planes = hyperplanes(seed, round, splits, prep.dim());
    let codes = codes(prep, &planes);
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
        assert_eq!(codes(&prep, &planes), vec![0b01, 0b10, 0b00]);
    }
}
