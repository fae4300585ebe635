//! Train/test splits of a [`Dataset`].
//!
//! Two methods:
//! - [`SplitMethod::Shuffle`]: a seeded ChaCha8 shuffle; the first `round(n · f)` rows go to train
//!   (per class with `stratify`).
//! - [`SplitMethod::NslUniform`]: NSL's Cora preprocessing (`preprocess_cora_dataset.py`), reproduced
//!   bit for bit: Python's `random.seed(seed)`, then each row in input order goes to train iff
//!   `random.uniform(0, 1) <= f`. The train share is only about `f`.
//!
//! Both keep the input order within each part.
//!
//! A split can also be given by a table of `id<TAB>split` lines ([`split_by_table`]), such as
//! Planetoid's standard split of Cora (`datasets/cora/cora.planetoid_split.tsv`): train,
//! validation, test and other parts.

mod pyrandom;
mod table;

pub use table::{split_by_table, TablePart, TableSplit};

use super::{DataError, Dataset};
use pyrandom::PyRandom;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// How rows are assigned to train and test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SplitMethod {
    /// Seeded shuffle, then the first `round(n · train_fraction)` rows (per class when stratified) go
    /// to train. The default.
    #[default]
    Shuffle,
    /// NSL's Cora split: Python's `random.seed(seed)`, then row `i` goes to train iff
    /// `random.uniform(0, 1) <= train_fraction`, in input order. Not stratified.
    NslUniform,
}

/// Options of [`split`] and [`split_indices`].
#[derive(Debug, Clone, PartialEq)]
pub struct SplitConfig {
    /// Share of rows that go to train, in (0, 1]. Default 0.8 (NSL's `train_percentage`).
    pub train_fraction: f64,
    /// Seed of the random assignment. Default 1 (NSL's Cora preprocessing uses `random.seed(1)`).
    pub seed: u64,
    /// With [`SplitMethod::Shuffle`]: keep each label's share in both parts (needs labels).
    /// Not available with [`SplitMethod::NslUniform`]. Default false.
    pub stratify: bool,
    /// How rows are assigned. Default [`SplitMethod::Shuffle`].
    pub method: SplitMethod,
}

impl Default for SplitConfig {
    fn default() -> Self {
        SplitConfig { train_fraction: 0.8, seed: 1, stratify: false, method: SplitMethod::Shuffle }
    }
}

/// The row indices of the train and test parts, each in increasing order; together they hold every
/// row exactly once.
///
/// - `Shuffle`: the rows are shuffled with `ChaCha8Rng::seed_from_u64(seed)` and the first
///   `round(n · f)` go to train. With `stratify`, each class `c` of `n_c` rows sends `k_c` rows to
///   train, where the `k_c` are `n_c · f` rounded so that `Σ k_c = round(n · f)` (largest remainders
///   first, ties to the smaller label); each class is shuffled on its own, in label order, with one
///   generator.
/// - `NslUniform`: row `i` goes to train iff the `i`-th `random.uniform(0, 1)` of Python's
///   generator seeded with `seed` is `<= f`.
///
/// # Errors
/// [`DataError::Dataset`] if `train_fraction` is not in (0, 1], if `stratify` is set and the dataset
/// has no labels, or if `stratify` is combined with `NslUniform`.
///
/// # Example
/// ```
/// use nsl::data::{split_indices, SplitConfig, SplitMethod};
/// use nsl::Dataset;
/// let ds = Dataset::new((0..5).map(|i| i.to_string()).collect(), ndarray::Array2::zeros((5, 1)), vec![1], None, None)?;
/// let cfg = SplitConfig { method: SplitMethod::NslUniform, ..SplitConfig::default() };
/// // Python: random.seed(1); [random.uniform(0, 1) <= 0.8 for _ in range(5)] == [True, False, True, True, True]
/// assert_eq!(split_indices(&ds, &cfg)?, (vec![0, 2, 3, 4], vec![1]));
/// # Ok::<(), nsl::DataError>(())
/// ```
pub fn split_indices(ds: &Dataset, cfg: &SplitConfig) -> Result<(Vec<usize>, Vec<usize>), DataError> {
    let f = cfg.train_fraction;
    if !(f > 0.0 && f <= 1.0) {
        return Err(DataError::Dataset(format!("train fraction must be in (0, 1], got {f}")));
    }
    let n = ds.len();
    let mut in_train = vec![false; n];
    match (cfg.method, cfg.stratify) {
        (SplitMethod::NslUniform, true) => {
            return Err(DataError::Dataset(
                "stratified splits need the shuffle method; NSL's uniform split is not stratified".into(),
            ))
        }
        (SplitMethod::NslUniform, false) => {
            let mut rng = PyRandom::new(cfg.seed);
            for slot in &mut in_train {
                *slot = rng.uniform(0.0, 1.0) <= f;
            }
        }
        (SplitMethod::Shuffle, false) => {
            let mut rows: Vec<usize> = (0..n).collect();
            rows.shuffle(&mut ChaCha8Rng::seed_from_u64(cfg.seed));
            for &row in &rows[..round_share(n, f)] {
                in_train[row] = true;
            }
        }
        (SplitMethod::Shuffle, true) => {
            let labels = ds
                .labels()
                .ok_or_else(|| DataError::Dataset("a stratified split needs labels; the data has none".into()))?;
            let classes = labels.iter().max().map_or(0, |&m| m as usize + 1);
            let mut members: Vec<Vec<usize>> = vec![Vec::new(); classes];
            for (row, &label) in labels.iter().enumerate() {
                members[label as usize].push(row);
            }
            let sizes: Vec<usize> = members.iter().map(Vec::len).collect();
            let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
            for (rows, take) in members.iter_mut().zip(class_shares(&sizes, f)) {
                rows.shuffle(&mut rng);
                for &row in &rows[..take] {
                    in_train[row] = true;
                }
            }
        }
    }
    let (train, test): (Vec<usize>, Vec<usize>) = (0..n).partition(|&row| in_train[row]);
    Ok((train, test))
}

/// Splits a dataset into `(train, test)` with [`split_indices`]; rows keep their input order.
///
/// # Errors
/// As [`split_indices`].
pub fn split(ds: &Dataset, cfg: &SplitConfig) -> Result<(Dataset, Dataset), DataError> {
    let (train, test) = split_indices(ds, cfg)?;
    Ok((ds.select(&train)?, ds.select(&test)?))
}

/// `round(n · f)`, halves away from zero, at most `n`.
fn round_share(n: usize, f: f64) -> usize {
    ((n as f64 * f).round() as usize).min(n)
}

/// Per-class train sizes: `floor(n_c · f)` each, plus one for the classes with the largest
/// fractional parts (ties to the smaller class index) until the total is `round(Σ n_c · f)`.
fn class_shares(sizes: &[usize], f: f64) -> Vec<usize> {
    let total: usize = sizes.iter().sum();
    let exact: Vec<f64> = sizes.iter().map(|&s| s as f64 * f).collect();
    let mut shares: Vec<usize> = exact.iter().zip(sizes).map(|(&e, &s)| (e.floor() as usize).min(s)).collect();
    let missing = round_share(total, f).saturating_sub(shares.iter().sum());
    let mut order: Vec<usize> = (0..sizes.len()).filter(|&c| shares[c] < sizes[c]).collect();
    // Stable sort: equal remainders keep the smaller class first.
    order.sort_by(|&a, &b| (exact[b] - exact[b].floor()).total_cmp(&(exact[a] - exact[a].floor())));
    for &c in order.iter().take(missing) {
        shares[c] += 1;
    }
    shares
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_shares_round_to_the_overall_total() {
        // 3 classes of 5 at f = 0.5: exact 2.5 each, total round(7.5) = 8 → two classes get 3.
        assert_eq!(class_shares(&[5, 5, 5], 0.5), vec![3, 3, 2]);
        // Exact 0.7, 2.1, 2.8 (total 5.6 → 6): floors 0, 2, 2; the remainders .8 and .7 win.
        assert_eq!(class_shares(&[1, 3, 4], 0.7), vec![1, 2, 3]);
        assert_eq!(class_shares(&[4, 0, 6], 1.0), vec![4, 0, 6]);
    }
}
