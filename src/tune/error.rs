//! [`TuneError`]: what stops a search before it starts, or ends it.

use crate::run::RunError;

/// What can go wrong with a search. Errors about the space name its key; errors about the base
/// run name the setting. Every variant but [`TuneError::Write`] is raised before the first trial.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TuneError {
    /// A setting of the search itself ([`TuneConfig`](super::TuneConfig)) out of range.
    #[error("invalid tuner setting {field} = {value}: expected {expected}")]
    Config {
        /// The setting, e.g. `eta`.
        field: &'static str,
        /// The value given.
        value: String,
        /// What is accepted.
        expected: &'static str,
    },
    /// A key of the search space with an invalid distribution, or a value of its range that the
    /// recipe rejects (an unknown key is one of these: the recipe rejects every value).
    #[error("search space key `{key}`: {message}")]
    Space {
        /// The key, as written in the space (`learning_rate`, `graph_reg.multiplier`).
        key: String,
        /// What is wrong.
        message: String,
    },
    /// An empty search space.
    #[error("the search space is empty: give at least one key")]
    EmptySpace,
    /// The base recipe does not make a run (before any value of the space is written in).
    #[error("the base recipe: {0}")]
    Base(String),
    /// The base run has no validation samples: trials are scored on them alone.
    #[error("no validation samples: a search scores its trials on the validation split (give --validation)")]
    NoValidation,
    /// The base run's task has no validation accuracy to score trials with.
    #[error("task {0}: the tuner scores trials by validation accuracy (multiclass or binary tasks)")]
    Task(String),
    /// The budget does not hold one drawn trial and the base recipe of the full epochs, each with
    /// its finalist seeds.
    #[error(
        "a budget of {budget} epochs is too small for one trial: one drawn trial and the base recipe, {epochs} \
         epochs with {seeds} finalist seeds each, need {needed} epochs"
    )]
    BudgetTooSmall {
        /// The budget, in epochs.
        budget: usize,
        /// The epochs of a full trial.
        epochs: usize,
        /// The finalist seeds.
        seeds: usize,
        /// The least budget.
        needed: usize,
    },
    /// The calibration run (timing an epoch for a wall-clock budget) failed.
    #[error("timing the base recipe: {0}")]
    Calibration(#[source] RunError),
    /// The search was stopped before the calibration ended.
    #[error("stopped before the budget could be planned")]
    Stopped,
    /// Writing the trials table or the plot failed (the message names the file).
    #[error("{0}")]
    Write(String),
}

impl TuneError {
    /// A [`TuneError::Space`].
    pub(crate) fn space(key: &str, message: impl Into<String>) -> Self {
        TuneError::Space { key: key.to_string(), message: message.into() }
    }
}
