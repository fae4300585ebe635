//! `RunSpec`: what a run is, before anything is checked or read.

use crate::data::{Dataset, SampleColumns};
use crate::eval::Metric;
use crate::graph::NeighborGraph;
use crate::loss::{ClassWeights, Task};
use crate::model::ModelSpec;
use crate::regularize::{AdvRegConfig, GraphRegConfig, VatConfig};
use crate::train::{TrainConfig, UnlabeledConfig};
use std::path::{Path, PathBuf};

/// Samples of a run: a file, or samples in memory.
// One value per input of a run: boxing the dataset would only add a step for every caller.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Input {
    /// A Parquet, CSV, IDX, LINQS `.content` or TFRecord file, read with
    /// [`RunSpec::columns`] ([`read_samples`](super::read_samples)).
    Path(PathBuf),
    /// Samples in memory (their weights, if any, are the samples' own: [`Dataset::with_weights`]).
    Samples(Dataset),
}

impl Input {
    /// The file, if the input is one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Input::Path(p) => Some(p),
            Input::Samples(_) => None,
        }
    }

    /// How messages name the input: its file, or `what` for samples in memory.
    pub(crate) fn name(&self, what: &str) -> String {
        match self {
            Input::Path(p) => p.display().to_string(),
            Input::Samples(_) => format!("the {what} samples (in memory)"),
        }
    }
}

impl From<Dataset> for Input {
    fn from(samples: Dataset) -> Self {
        Input::Samples(samples)
    }
}

impl From<PathBuf> for Input {
    fn from(path: PathBuf) -> Self {
        Input::Path(path)
    }
}

impl From<&Path> for Input {
    fn from(path: &Path) -> Self {
        Input::Path(path.to_path_buf())
    }
}

/// The neighbor graph of a run: a file (Parquet or NSL's TSV), or a graph in memory.
#[derive(Debug, Clone)]
pub enum GraphInput {
    /// A Parquet or TSV graph file.
    Path(PathBuf),
    /// A graph in memory.
    Graph(NeighborGraph),
}

impl GraphInput {
    /// The file, if the input is one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            GraphInput::Path(p) => Some(p),
            GraphInput::Graph(_) => None,
        }
    }
}

impl From<NeighborGraph> for GraphInput {
    fn from(graph: NeighborGraph) -> Self {
        GraphInput::Graph(graph)
    }
}

impl From<PathBuf> for GraphInput {
    fn from(path: PathBuf) -> Self {
        GraphInput::Path(path)
    }
}

/// Packed samples, whose records carry their neighbors (NSL's `pack_nbrs` output).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packed {
    /// The [`RunSpec::samples`] are NSL-packed TFRecord records (`NL_num_nbrs`,
    /// `NL_nbr_<j>_weight`, `NL_nbr_<j>_<feature>`), read whole.
    Records,
    /// A packed file in place of [`RunSpec::samples`]: a packed Parquet table (a file, or a
    /// directory of parts), streamed every epoch through a seeded shuffle buffer; or a TFRecord
    /// file of packed records (as [`Packed::Records`]).
    Path(PathBuf),
}

/// What a run is: its inputs, task, model, training and regularization settings. Every field is
/// public and has a default ([`RunSpec::default`]: no samples, multiclass, `mlp:50,50`, NSL's
/// defaults elsewhere); [`RunSpec::check`] checks how they go together, without reading anything.
///
/// The field names are `nsl train`'s flags and `--config` keys (with `_` for `-`).
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// Labeled training samples. Required, unless [`RunSpec::packed`] names a packed file.
    pub samples: Option<Input>,
    /// Train on packed samples (their records carry their neighbors). Default none.
    pub packed: Option<Packed>,
    /// With a packed Parquet table: rows of the shuffle buffer. Default 10,000
    /// ([`PackedConfig`](crate::neighbors::PackedConfig)).
    pub shuffle_buffer: Option<usize>,
    /// With a packed Parquet directory: read its parts in sorted name order every epoch. Default
    /// false (a seeded order drawn anew each epoch).
    pub keep_part_order: bool,
    /// Samples that may serve as neighbors but are not trained on. Default none (the unlabeled
    /// samples, if given).
    pub pool: Option<Input>,
    /// The neighbor graph for graph regularization. Default none.
    pub graph: Option<GraphInput>,
    /// Graph regularization. Default none; needs [`RunSpec::graph`] (or packed samples). Its
    /// `neighbors` ([`NeighborConfig`](crate::neighbors::NeighborConfig)) is the number of
    /// neighbors each sample keeps: the run builds the neighbor tables with it.
    pub graph_reg: Option<GraphRegConfig>,
    /// Adversarial regularization. Default none.
    pub adv_reg: Option<AdvRegConfig>,
    /// Unlabeled samples trained as centers too (Neural Graph Machines). Default none.
    pub unlabeled: Option<Input>,
    /// How unlabeled centers join the batches (ratio, entropy weight). Default
    /// [`UnlabeledConfig::default`].
    pub unlabeled_config: UnlabeledConfig,
    /// Virtual adversarial regularization. Default none.
    pub vat: Option<VatConfig>,
    /// Distillation from a teacher's class probabilities on the training and unlabeled samples
    /// (GLNN, [`distill_loss`](crate::loss::distill_loss)). Default none; multiclass, samples in
    /// memory or a plain file (not packed).
    pub distill: Option<super::DistillSpec>,
    /// The validation metric early stopping watches ([`TrainConfig::early_stopping`] sets the
    /// patience). Default the task's primary metric.
    pub early_stopping_metric: Option<Metric>,
    /// Write the adversarial neighbors generated during training as a neighbor graph here (and a
    /// node table beside it) when the run is saved. Default none; needs [`RunSpec::adv_reg`].
    pub record_adversarial: Option<PathBuf>,
    /// With [`RunSpec::record_adversarial`]: record every N-th epoch (and the last). Default 1.
    pub record_every: usize,
    /// What to predict. Default [`Task::Multiclass`].
    pub task: Task,
    /// A column of per-sample weights in the training samples (and in validation and test files
    /// that have it). Default none. Samples in memory carry their own weights.
    pub weight_column: Option<String>,
    /// Class weights, multiplied into the sample weights (multiclass and binary). Default none.
    pub class_weights: Option<ClassWeights>,
    /// The model. Default `mlp:50,50`.
    pub model: ModelSpec,
    /// Dropout rate after hidden and dense layers, in `[0, 1)`. Default the model's own (0.5 for
    /// an MLP, 0 for a CNN).
    pub dropout: Option<f32>,
    /// Epochs, batch size, optimizer, seed of the shuffling, schedules, early stopping's
    /// patience, threads. Default [`TrainConfig::default`].
    pub train: TrainConfig,
    /// Seed of the initial weights and dropout masks. Default `train.seed`.
    pub init_seed: Option<u64>,
    /// Labeled samples evaluated after every epoch. Default none.
    pub validation: Option<Input>,
    /// Labeled samples evaluated at the end. Default none.
    pub test: Option<Input>,
    /// Fail if the graph names ids that are neither training nor pool samples. Default false
    /// (they are skipped, and counted in a note).
    pub strict: bool,
    /// Which columns of the input files hold ids, features and labels. Default `id`, every
    /// feature column, `label`.
    pub columns: SampleColumns,
}

impl Default for RunSpec {
    fn default() -> Self {
        RunSpec {
            samples: None,
            packed: None,
            shuffle_buffer: None,
            keep_part_order: false,
            pool: None,
            graph: None,
            graph_reg: None,
            adv_reg: None,
            unlabeled: None,
            unlabeled_config: UnlabeledConfig::default(),
            vat: None,
            distill: None,
            early_stopping_metric: None,
            record_adversarial: None,
            record_every: 1,
            task: Task::default(),
            weight_column: None,
            class_weights: None,
            model: ModelSpec::default(),
            dropout: None,
            train: TrainConfig::default(),
            init_seed: None,
            validation: None,
            test: None,
            strict: false,
            columns: SampleColumns::default(),
        }
    }
}
