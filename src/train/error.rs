//! [`TrainError`]: why training could not run.

/// Why [`Trainer::fit`](super::Trainer::fit) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrainError {
    /// A setting is out of range.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The training samples have no labels.
    #[error("the training samples have no labels")]
    NoLabels,
    /// There are no training samples.
    #[error("the training set is empty")]
    Empty,
    /// A label has no output in the model.
    #[error("label {label} is out of range for a model with {classes} outputs")]
    LabelOutOfRange {
        /// The largest label of the training samples.
        label: u32,
        /// The model's number of outputs.
        classes: usize,
    },
    /// The training samples have no targets of the task's kind (see
    /// [`task_targets`](crate::eval::task_targets)).
    #[error("{0}")]
    Targets(String),
    /// The model's outputs do not match the task's targets (binary: 1 output; multilabel: one per
    /// label; regression: one per target).
    #[error(
        "the {task} task has {targets} target columns, so the model needs {expected} outputs, but it has {outputs}"
    )]
    OutputWidth {
        /// The task.
        task: String,
        /// The width of the targets.
        targets: usize,
        /// The outputs the task needs.
        expected: usize,
        /// The model's outputs.
        outputs: usize,
    },
    /// A row of a streamed packed table is bad ([`TrainData::Packed`](super::TrainData::Packed)).
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    /// The fit was stopped ([`Trainer::stop_when`](super::Trainer::stop_when)) after this batch.
    #[error("training stopped in epoch {epoch}, after batch {batch}")]
    Stopped {
        /// 1-based epoch.
        epoch: usize,
        /// Batches done in that epoch.
        batch: usize,
    },
    /// The thread pool could not be made.
    #[error("cannot start the training thread pool: {0}")]
    ThreadPool(String),
    /// A saved state could not be written, or does not fit this run
    /// ([`Trainer::resume_from`](super::Trainer::resume_from)).
    #[error(transparent)]
    State(#[from] super::StateError),
    /// The training batches cannot be augmented as configured ([`TrainConfig::augment`](super::TrainConfig::augment)).
    #[error(transparent)]
    Augment(#[from] crate::augment::AugmentError),
    /// A candle error of the forward or backward passes.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}
