//! [`TuneConfig`]: the settings of a search, with documented defaults.

use super::TuneError;

/// The settings of a search. `Default` gives the defaults written in each field's doc.
///
/// ```
/// use nsl::tune::TuneConfig;
/// assert!(TuneConfig::default().validate().is_ok());
/// assert!(TuneConfig { eta: 1, ..TuneConfig::default() }.validate().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TuneConfig {
    /// Seed of the sampled settings (ChaCha8). Default 0. The trials' own training seed is the
    /// base recipe's `seed`.
    pub seed: u64,
    /// The halving rate η: each rung keeps the best `⌊n/η⌋` trials and trains them `η` times
    /// longer. Default 3 (Li et al.'s). At least 2.
    pub eta: usize,
    /// The most halvings (rungs − 1). Default 3: rungs of `R/27`, `R/9`, `R/3` and `R` epochs,
    /// `R` the base recipe's epochs. Fewer when the budget is small or `min_epochs` is large.
    pub max_halvings: usize,
    /// The fewest epochs of the first rung. Default 1.
    pub min_epochs: usize,
    /// Seeds each finalist (a trial of the last rung) is trained with, the last rung's run
    /// included; the winner has the best mean validation score. Default 3. At least 1.
    pub finalist_seeds: usize,
    /// The score of a training: the mean of its `score_epochs` best validation accuracies (over
    /// its epochs, wherever they are). Default 1: the best epoch's, which early stopping keeps.
    /// At least 1.
    pub score_epochs: usize,
    /// Early stopping's patience inside every trial, when the base recipe sets none. Default 100.
    pub patience: usize,
    /// The most trials of the first rung. Default none (as many as the budget holds).
    pub max_trials: Option<usize>,
}

impl Default for TuneConfig {
    fn default() -> Self {
        TuneConfig {
            seed: 0,
            eta: 3,
            max_halvings: 3,
            min_epochs: 1,
            finalist_seeds: 3,
            score_epochs: 1,
            patience: 100,
            max_trials: None,
        }
    }
}

impl TuneConfig {
    /// Checks every setting.
    ///
    /// # Errors
    /// [`TuneError::Config`] naming the setting: `eta < 2`, `min_epochs`, `finalist_seeds`,
    /// `score_epochs`, `patience` or `max_trials` 0.
    pub fn validate(&self) -> Result<(), TuneError> {
        let bad = |field, value: usize, expected| Err(TuneError::Config { field, value: value.to_string(), expected });
        if self.eta < 2 {
            return bad("eta", self.eta, "at least 2");
        }
        if self.min_epochs == 0 {
            return bad("min_epochs", 0, "at least 1");
        }
        if self.finalist_seeds == 0 {
            return bad("finalist_seeds", 0, "at least 1");
        }
        if self.score_epochs == 0 {
            return bad("score_epochs", 0, "at least 1");
        }
        if self.patience == 0 {
            return bad("patience", 0, "at least 1");
        }
        if self.max_trials == Some(0) {
            return bad("max_trials", 0, "at least 1");
        }
        Ok(())
    }
}
