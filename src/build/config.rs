//! [`BuildConfig`]: every option of a graph build, with NSL's defaults, and its validation.

use super::BuildError;

/// The options of a graph build. `Default` gives NSL's `GraphBuilderConfig` defaults.
///
/// ```
/// use nsl::build::BuildConfig;
/// let config = BuildConfig { threshold: 0.9, lsh_splits: 7, lsh_rounds: 11, ..BuildConfig::default() };
/// assert!(config.validate().is_ok());
/// assert!(BuildConfig { top_k: Some(0), ..config }.validate().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BuildConfig {
    /// Minimum cosine similarity of an edge, **inclusive** (`cos(a, b) ≥ threshold`), in `[-1, 1]`.
    /// Default 0.8 (NSL's `similarity_threshold`).
    pub threshold: f64,
    /// Number of random hyperplanes of locality-sensitive hashing; 0 (the default, as in NSL)
    /// compares every pair exactly. At most 63. NSL's rule of thumb is
    /// `lsh_splits ≥ ceil(log2(N / 1000))`.
    pub lsh_splits: u32,
    /// Number of LSH rounds, each with fresh hyperplanes; the graph is the union of the rounds.
    /// Ignored when `lsh_splits` is 0. Default 1, the default of NSL's `GraphBuilderConfig` (NSL's
    /// deprecated `build_graph` function and its command line default to 2).
    pub lsh_rounds: u32,
    /// Subtract the mean of the input rows before hashing (LSH only; the weights are still the
    /// cosines of the input rows). Embeddings that are not centred (non-negative pixels, ReLU
    /// outputs) all lie in one orthant, so random hyperplanes through the origin put most rows in a
    /// few huge buckets (NSL issue #72: one bucket, a 3-day build); centring spreads them. The mean
    /// is computed exactly (see [`ColumnSums`](super::distributed::ColumnSums)), so a distributed
    /// job gets the same one. Default `false` (NSL's behavior).
    pub center: bool,
    /// Keep only each node's `K` most similar neighbors (among those at or above the threshold;
    /// use `threshold = -1` for a plain k-nearest-neighbor graph). The result is made symmetric:
    /// `a — b` is an edge iff `b` is among `a`'s `K` best or `a` among `b`'s, so degrees can
    /// exceed `K`. Ties in similarity go to the earlier row. Default `None` (threshold only, as in
    /// NSL); `Some(0)` is an error.
    pub top_k: Option<usize>,
    /// Seed of the LSH hyperplanes (ChaCha8) and of the recall sample. Default 0. The same seed
    /// gives the same graph on any number of threads.
    pub seed: u64,
    /// `Some((i, n))` builds only shard `i` of `n` (`0 ≤ i < n`): the edges whose **source** row
    /// lies in the `i`-th of `n` contiguous, equal row ranges, `[i·N/n, (i+1)·N/n)`. Edges come out
    /// sorted by source row, so the shards' edge lists, concatenated in shard order, are exactly
    /// the unsharded edge list. Default `None` (the whole graph).
    pub shard: Option<(usize, usize)>,
    /// Worker threads; `None` (the default) uses rayon's global pool (`RAYON_NUM_THREADS` or one
    /// per core). `Some(0)` is an error.
    pub threads: Option<usize>,
    /// Estimate the recall of the built graph against exact search on this many randomly chosen
    /// source nodes (seeded by `seed`). Default `None` (no estimate); `Some(0)` is an error.
    pub recall_sample: Option<usize>,
}

impl Default for BuildConfig {
    fn default() -> Self {
        BuildConfig {
            threshold: 0.8,
            lsh_splits: 0,
            lsh_rounds: 1,
            center: false,
            top_k: None,
            seed: 0,
            shard: None,
            threads: None,
            recall_sample: None,
        }
    }
}

/// The largest accepted `lsh_splits`: bucket codes are bit masks in a `u64`.
pub const MAX_LSH_SPLITS: u32 = 63;

impl BuildConfig {
    /// Checks every option.
    ///
    /// # Errors
    /// [`BuildError::InvalidConfig`] naming the option and its value: a threshold outside
    /// `[-1, 1]` (or NaN), `lsh_splits > 63`, `lsh_rounds = 0` with LSH on, `top_k = Some(0)`, a
    /// shard `(i, n)` with `n = 0` or `i ≥ n`, `threads = Some(0)`, `recall_sample = Some(0)`.
    pub fn validate(&self) -> Result<(), BuildError> {
        let bad = |option: &'static str, value: String, expected: &'static str| {
            Err(BuildError::InvalidConfig { option, value, expected })
        };
        if !(-1.0..=1.0).contains(&self.threshold) {
            return bad("threshold", self.threshold.to_string(), "a cosine similarity in [-1, 1]");
        }
        if self.lsh_splits > MAX_LSH_SPLITS {
            return bad("lsh_splits", self.lsh_splits.to_string(), "at most 63");
        }
        if self.lsh_splits > 0 && self.lsh_rounds == 0 {
            return bad("lsh_rounds", "0".into(), "at least 1 when lsh_splits > 0");
        }
        if self.top_k == Some(0) {
            return bad("top_k", "0".into(), "at least 1 (or no top-k at all)");
        }
        if let Some((i, n)) = self.shard {
            if n == 0 || i >= n {
                return bad("shard", format!("{i}/{n}"), "I/N with 0 <= I < N");
            }
        }
        if self.threads == Some(0) {
            return bad("threads", "0".into(), "at least 1");
        }
        if self.recall_sample == Some(0) {
            return bad("recall_sample", "0".into(), "at least 1");
        }
        Ok(())
    }

    /// Number of LSH rounds actually run: `lsh_rounds` with LSH, 1 without (NSL 1.3.1's rule).
    pub fn rounds(&self) -> u32 {
        if self.lsh_splits > 0 {
            self.lsh_rounds
        } else {
            1
        }
    }

    /// The source rows of the configured shard for `n` rows: `[i·n/count, (i+1)·n/count)`, or
    /// `0..n` without sharding.
    pub fn shard_rows(&self, n: usize) -> std::ops::Range<usize> {
        match self.shard {
            Some((i, count)) if count > 0 => shard_range(n, i, count),
            _ => 0..n,
        }
    }
}

/// Row range of shard `i` of `count` over `n` rows: `[i·n/count, (i+1)·n/count)` (integer
/// division, computed in `u128` so it cannot overflow). The ranges of `i = 0..count` tile `0..n`.
pub fn shard_range(n: usize, i: usize, count: usize) -> std::ops::Range<usize> {
    let at = |k: usize| ((k as u128 * n as u128) / count as u128) as usize;
    at(i)..at(i + 1)
}

/// Parses a shard written `I/N` (e.g. `0/4`), as the command line takes it.
///
/// # Errors
/// [`BuildError::InvalidConfig`] if the text is not two integers `I/N` with `0 ≤ I < N`.
pub fn parse_shard(text: &str) -> Result<(usize, usize), BuildError> {
    let bad = || BuildError::InvalidConfig { option: "shard", value: text.into(), expected: "I/N with 0 <= I < N" };
    let (i, n) = text.split_once('/').ok_or_else(bad)?;
    let (i, n): (usize, usize) = (i.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
    if n == 0 || i >= n {
        return Err(bad());
    }
    Ok((i, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_nsl_defaults_and_valid() {
        let c = BuildConfig::default();
        assert_eq!((c.threshold, c.lsh_splits, c.lsh_rounds, c.top_k), (0.8, 0, 1, None));
        assert!(c.validate().is_ok());
        assert_eq!(c.rounds(), 1);
    }

    #[test]
    fn rejects_each_bad_option() {
        let d = BuildConfig::default;
        for (c, option) in [
            (BuildConfig { threshold: 1.5, ..d() }, "threshold"),
            (BuildConfig { threshold: f64::NAN, ..d() }, "threshold"),
            (BuildConfig { lsh_splits: 64, ..d() }, "lsh_splits"),
            (BuildConfig { lsh_splits: 3, lsh_rounds: 0, ..d() }, "lsh_rounds"),
            (BuildConfig { top_k: Some(0), ..d() }, "top_k"),
            (BuildConfig { shard: Some((2, 2)), ..d() }, "shard"),
            (BuildConfig { threads: Some(0), ..d() }, "threads"),
            (BuildConfig { recall_sample: Some(0), ..d() }, "recall_sample"),
        ] {
            match c.validate() {
                Err(BuildError::InvalidConfig { option: o, .. }) => assert_eq!(o, option),
                other => panic!("{option}: expected an error, got {other:?}"),
            }
        }
        // Exactly at the limits is fine.
        assert!(BuildConfig { threshold: -1.0, lsh_splits: 63, ..d() }.validate().is_ok());
    }

    #[test]
    fn shard_ranges_tile_the_rows() {
        for (n, count) in [(10, 3), (3, 5), (0, 2), (1_000_003, 7)] {
            let mut next = 0;
            for i in 0..count {
                let r = shard_range(n, i, count);
                assert_eq!(r.start, next);
                next = r.end;
            }
            assert_eq!(next, n);
        }
        assert_eq!(shard_range(10, 1, 3), 3..6);
    }

    #[test]
    fn parses_shards() {
        assert_eq!(parse_shard("1/4").unwrap(), (1, 4));
        for bad in ["4/4", "1", "a/2", "1/0", "-1/2"] {
            assert!(parse_shard(bad).is_err(), "{bad}");
        }
    }
}
