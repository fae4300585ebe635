//! `RunError`: what can go wrong between a [`RunSpec`](super::RunSpec) and a saved run.

use crate::config::ConfigError;
use crate::data::DataError;
use crate::graph::GraphError;
use crate::io::{MemoryLimitError, PathConflict};
use crate::loss::WeightsError;
use crate::report::ReportError;
use crate::tfrecord::TfRecordError;
use crate::train::{CheckpointError, StateError, TrainError};
use std::fmt;

/// The settings a [`Conflict`] may name, as [`RunSpec`](super::RunSpec)'s fields (and the `nsl
/// train` flags and `--config` keys, with `-` for `_`). Longest first, so that a name is never
/// read as the start of a longer one.
const SETTINGS: [&str; 25] = [
    "record_adversarial",
    "graph_reg_schedule",
    "adv_reg_schedule",
    "keep_part_order",
    "early_stopping",
    "shuffle_buffer",
    "class_weights",
    "weight_column",
    "record_every",
    "vat_schedule",
    "validation",
    "graph_reg",
    "unlabeled",
    "adv_reg",
    "distill",
    "dropout",
    "samples",
    "packed",
    "strict",
    "epochs",
    "model",
    "graph",
    "pool",
    "task",
    "vat",
];

/// Settings that do not go together (or a value out of range), in one sentence naming them.
///
/// The sentence names each setting as `@name` (a [`RunSpec`](super::RunSpec) field); [`Display`]
/// writes the plain field name (what Python's keyword arguments are called), and
/// [`Conflict::describe`] lets a front end write its own spelling (`nsl train`'s `--name`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict(String);

impl Conflict {
    /// A conflict described by `text`, whose settings are written `@name`.
    pub(crate) fn new(text: impl Into<String>) -> Self {
        Conflict(text.into())
    }

    /// The sentence, each `@name` written as `spell(name)`.
    pub fn describe(&self, spell: impl Fn(&str) -> String) -> String {
        let mut out = String::with_capacity(self.0.len());
        let mut rest = self.0.as_str();
        while let Some(at) = rest.find('@') {
            out.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            match SETTINGS.iter().find(|s| after.starts_with(*s)) {
                Some(name) => {
                    out.push_str(&spell(name));
                    rest = &after[name.len()..];
                }
                None => {
                    out.push('@');
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        out
    }
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe(|name| name.to_string()))
    }
}

/// Why a run could not be checked, opened, fitted or saved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    // --- the settings (RunSpec::check) ---
    /// Settings that do not go together.
    #[error("{0}")]
    Settings(Conflict),
    /// A setting out of range.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// An output that names an input, or two outputs one file.
    #[error(transparent)]
    Paths(#[from] PathConflict),

    // --- the inputs (CheckedRun::open) ---
    /// Samples that cannot be read or do not fit the run, naming the file and the row.
    #[error(transparent)]
    Data(#[from] DataError),
    /// TFRecord samples that cannot be read.
    #[error(transparent)]
    TfRecord(#[from] TfRecordError),
    /// A graph that cannot be read.
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// Class weights that do not fit the labels.
    #[error(transparent)]
    ClassWeights(#[from] WeightsError),
    /// A model (or batch) too large for the memory.
    #[error(transparent)]
    Memory(#[from] MemoryLimitError),
    /// Inputs that do not fit each other (an empty training set, unknown graph nodes with
    /// `strict`, …), naming the file.
    #[error("{0}")]
    Input(String),
    /// A candle error: a model that cannot be built for the samples, samples that do not fit it.
    #[error(transparent)]
    Model(#[from] candle_core::Error),

    // --- training and saving ---
    /// Training failed, or was stopped.
    #[error(transparent)]
    Train(#[from] TrainError),
    /// A training state that cannot be saved or loaded.
    #[error(transparent)]
    State(#[from] StateError),
    /// The checkpoint could not be written.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The curves could not be drawn.
    #[error(transparent)]
    Report(#[from] ReportError),
    /// A file of the run could not be written.
    #[error("{what}")]
    Io {
        /// What was being done, naming the file.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// An error with what was being done when it happened.
    #[error("{context}")]
    Context {
        /// What was being done.
        context: String,
        /// The cause.
        #[source]
        source: Box<RunError>,
    },
}

impl RunError {
    /// A [`RunError::Settings`] from a sentence naming settings as `@name`.
    pub(crate) fn settings(text: impl Into<String>) -> Self {
        RunError::Settings(Conflict::new(text))
    }

    /// A [`RunError::Io`].
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        RunError::Io { what: what.into(), source }
    }
}

/// `.context(…)` for results whose error becomes a [`RunError`].
pub(crate) trait Context<T> {
    /// The error wrapped with `context()`.
    fn context_with(self, context: impl FnOnce() -> String) -> Result<T, RunError>;
}

impl<T, E: Into<RunError>> Context<T> for Result<T, E> {
    fn context_with(self, context: impl FnOnce() -> String) -> Result<T, RunError> {
        self.map_err(|e| RunError::Context { context: context(), source: Box::new(e.into()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_conflict_names_settings_in_the_front_end_s_spelling() {
        let c = Conflict::new("@record_every 0: give ≥ 1; @record_adversarial needs @adv_reg, user@host");
        assert_eq!(c.to_string(), "record_every 0: give ≥ 1; record_adversarial needs adv_reg, user@host");
        let flags = c.describe(|n| format!("--{}", n.replace('_', "-")));
        assert_eq!(flags, "--record-every 0: give ≥ 1; --record-adversarial needs --adv-reg, user@host");
    }
}
