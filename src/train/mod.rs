//! The trainer: mini-batch training of any [`Model`] with a supervised loss plus the configured
//! regularizers, per-epoch history, and checkpoints.
//!
//! # Formula
//! Per batch `B` with labels `y`: `L = CE(y, f(x_B)) + m_g · L_graph + m_a · L_adv` where `CE` is the
//! mean softmax cross-entropy (Keras' `SparseCategoricalCrossentropy(from_logits=True)`), or the
//! loss of another [`Task`] ([`Trainer::with_task`]; sample weights from
//! [`Dataset::with_weights`] weigh every term, see [`Task::loss`]), `L_graph` the
//! graph loss over the batch's (sample, neighbor) pairs ([`graph_loss`](crate::regularize::graph_loss))
//! and `L_adv` the loss on the batch's adversarial neighbors ([`AdvRegConfig`]): explicit and
//! adversarial edges in one step. With Madry's, TRADES' or MART's objective
//! ([`AdvObjective`](crate::regularize::AdvObjective)) the first and last terms are that objective's
//! (Madry's and MART's have no clean term), and the history's `loss` is the objective's value.
//!
//! # How a step runs
//! One step function (`step.rs`) holds every loss term; it runs over a backend (`backend.rs`): candle's
//! autograd for any [`Model`], or the built-in [`Mlp`](crate::model::Mlp)'s own forward/backward tape,
//! several times faster for small networks. Both give the same weights (a test checks it). With
//! adversarial regularization a step costs two forward and two backward passes: the backward of `CE`
//! gives both `∇ₓ CE` (for the neighbors) and its parameter gradients, and one more backward through the
//! regularizers adds theirs (NSL's Keras wrapper does three).
//!
//! # Schedules and resuming
//! [`TrainConfig::lr_schedule`] sets the optimizer's rate before every step and
//! [`TrainConfig::multiplier_schedules`] the regularizers' multipliers (NSL's `DecayConfig`, which
//! NSL's own wrappers never apply, plus a warm-up; see [`LrSchedule`] and [`MultiplierSchedule`]);
//! the defaults change nothing, bit for bit. [`Trainer::on_epoch_state`] hands out a
//! [`TrainState`] after completed epochs and [`Trainer::resume_from`] continues from one, ending
//! with the weights of an uninterrupted run.
//!
//! # Threads
//! [`TrainConfig::threads`] runs the whole fit on a pool of its own; without it, on the caller's rayon
//! pool. Nothing process-wide is changed.

mod backend;
mod checkpoint;
mod early;
mod error;
mod history;
mod optim;
mod record;
mod schedule;
mod state;
mod step;

pub use checkpoint::{load_checkpoint, save_checkpoint, Checkpoint, CheckpointError, CheckpointMeta, FORMAT_VERSION};
pub use error::TrainError;
pub use history::{EpochRecord, History};
pub(crate) use optim::Optimizer;
pub use optim::OptimizerConfig;
pub use record::{AdversarialExample, AdversarialRecord};
pub use schedule::{DecayConfig, DecayType, LrDecay, LrSchedule, MultiplierSchedule, MultiplierSchedules};
pub use state::{StateError, TrainState};

use crate::data::Dataset;
use crate::eval::{weighted_task_metrics, ClassTally, Metric, Metrics, Truth};
use crate::loss::{DistillConfig, Task};
use crate::model::Model;
use crate::neighbors::{NeighborTable, PackedBatch, PackedConfig, PackedEpoch, PackedParts};
use crate::regularize::{AdvRegConfig, GraphRegConfig, VatConfig};
use backend::{Autograd, Backend, TapeNet};
use candle_core::{Device, Tensor, Var};
use candle_nn::VarMap;
use early::EarlyStopping;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::time::Instant;
use step::{Distill, Multipliers, Step, StepContext, StepSetup, Unlabeled};

/// How to train. `Default`: Adam (lr 0.001), 10 epochs, batch 32 (Keras' default), seed 0, shuffled,
/// on the caller's thread pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Passes over the training samples. Default 10.
    pub epochs: usize,
    /// Samples per batch (the last batch may be smaller). Default 32.
    pub batch_size: usize,
    /// Optimizer. Default Adam, learning rate 0.001.
    pub optimizer: OptimizerConfig,
    /// Seed of the shuffling (weights and dropout take theirs from the model). Default 0.
    pub seed: u64,
    /// Shuffle the samples every epoch. Default true.
    pub shuffle: bool,
    /// Train on a rayon pool of this many threads, made for the fit and dropped after it. Default
    /// `None`: the caller's pool (rayon's global pool outside one). Results depend on the thread
    /// count, not on which pool runs them. On 2 cores, 1 thread is often fastest for small models.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threads: Option<usize>,
    /// Stop when the validation accuracy has not improved for this many epochs, and keep the
    /// weights of the best epoch ([`History::best_epoch`]). Needs validation samples. Default `None`:
    /// train every epoch, keep the last weights.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub early_stopping: Option<usize>,
    /// The learning rate over the run ([`LrSchedule`], evaluated before every step). Default
    /// constant: the optimizer's rate throughout.
    #[serde(skip_serializing_if = "LrSchedule::is_constant")]
    pub lr_schedule: LrSchedule,
    /// Decay and warm-up of the graph, adversarial and virtual adversarial multipliers over the
    /// optimizer's steps ([`MultiplierSchedule`]). Default none.
    #[serde(skip_serializing_if = "MultiplierSchedules::is_none")]
    pub multiplier_schedules: MultiplierSchedules,
    /// L2 weight decay λ ≥ 0: the optimizer adds `λ·θ` to every parameter's gradient (PyTorch's
    /// `Adam(weight_decay=λ)`, as Graph-MLP trains). Default 0 (off; Keras' optimizers have none).
    #[serde(skip_serializing_if = "is_zero")]
    pub weight_decay: f64,
    /// Augmentation of the training batches' centers (image samples `[c, h, w]` only), drawn from
    /// the seed, the epoch and the batch ([`AugmentConfig`](crate::augment::AugmentConfig)), before
    /// any regularizer sees them: an adversarial neighbor starts from the augmented image. Default
    /// off.
    #[serde(skip_serializing_if = "crate::augment::AugmentConfig::is_off")]
    pub augment: crate::augment::AugmentConfig,
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 10,
            batch_size: 32,
            optimizer: OptimizerConfig::default(),
            seed: 0,
            shuffle: true,
            threads: None,
            early_stopping: None,
            lr_schedule: LrSchedule::default(),
            multiplier_schedules: MultiplierSchedules::default(),
            weight_decay: 0.0,
            augment: crate::augment::AugmentConfig::default(),
        }
    }
}

impl TrainConfig {
    /// Checks the values.
    ///
    /// # Errors
    /// [`ConfigError::InvalidValue`](crate::config::ConfigError) naming the field: zero epochs, batch
    /// size or threads, a learning rate that is not a finite number > 0, a negative or non-finite
    /// weight decay, or a learning-rate
    /// schedule out of range ([`LrSchedule::validate`]).
    pub fn validate(&self) -> Result<(), crate::config::ConfigError> {
        let invalid = |field: &str, value: String, expected: &str| {
            Err(crate::config::ConfigError::invalid(field, value, expected))
        };
        if self.epochs == 0 {
            return invalid("epochs", "0".into(), "at least 1");
        }
        if self.batch_size == 0 {
            return invalid("batch_size", "0".into(), "at least 1");
        }
        if self.threads == Some(0) {
            return invalid("threads", "0".into(), "at least 1");
        }
        if self.early_stopping == Some(0) {
            return invalid("early_stopping", "0".into(), "a patience of at least 1 epoch");
        }
        let lr = self.optimizer.learning_rate();
        if !(lr.is_finite() && lr > 0.0) {
            return invalid("learning_rate", lr.to_string(), "a finite number > 0");
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return invalid("weight_decay", self.weight_decay.to_string(), "a finite number ≥ 0");
        }
        self.lr_schedule.validate(lr, self.epochs)
    }
}

/// Progress reported after every batch (see [`Trainer::on_progress`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchProgress {
    /// 1-based epoch.
    pub epoch: usize,
    /// Number of epochs.
    pub epochs: usize,
    /// Batches done in this epoch.
    pub batch: usize,
    /// Batches per epoch.
    pub batches: usize,
}

type ProgressFn<'a> = Box<dyn FnMut(BatchProgress) + Send + 'a>;
type StateFn<'a> = Box<dyn FnMut(&TrainState) -> Result<(), StateError> + Send + 'a>;
type EpochFn<'a> = Box<dyn FnMut(&EpochRecord) + Send + 'a>;

/// How unlabeled samples take part as centers (see [`Trainer::with_unlabeled`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UnlabeledConfig {
    /// Unlabeled centers per labeled center in each batch (rounded up). Default 1.
    pub ratio: f64,
    /// Weight of the entropy of the predictions on unlabeled centers (entropy minimization,
    /// Grandvalet & Bengio 2005). Default 0 (off).
    pub entropy: f64,
}

impl Default for UnlabeledConfig {
    fn default() -> Self {
        UnlabeledConfig { ratio: 1.0, entropy: 0.0 }
    }
}

impl UnlabeledConfig {
    /// Checks the values.
    ///
    /// # Errors
    /// [`ConfigError::InvalidValue`](crate::config::ConfigError) for a ratio or weight that is not a finite
    /// number ≥ 0.
    pub fn validate(&self) -> Result<(), crate::config::ConfigError> {
        for (name, v) in [("unlabeled ratio", self.ratio), ("entropy weight", self.entropy)] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(crate::config::ConfigError::invalid(name, v, "a finite number ≥ 0"));
            }
        }
        Ok(())
    }
}

/// The unlabeled centers of a fit.
struct UnlabeledCenters<'a> {
    data: &'a Dataset,
    table: Option<&'a NeighborTable>,
    config: UnlabeledConfig,
}

/// Trains a model, optionally with graph and adversarial regularization (see the crate's front
/// page for a tour).
pub struct Trainer<'a> {
    model: &'a dyn Model,
    vars: &'a VarMap,
    config: TrainConfig,
    graph: Option<(&'a NeighborTable, &'a GraphRegConfig)>,
    adversarial: Option<&'a AdvRegConfig>,
    vat: Option<&'a VatConfig>,
    unlabeled: Option<UnlabeledCenters<'a>>,
    distill: Option<Distill<'a>>,
    /// Every how many epochs to record adversarial neighbors, and the record.
    record: Option<(usize, AdversarialRecord)>,
    progress: Option<ProgressFn<'a>>,
    /// Set (by another thread, a Ctrl-C handler) to stop the fit after the current batch.
    stop: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    /// Every how many epochs to hand the run's state out, and to whom.
    state_sink: Option<(usize, StateFn<'a>)>,
    epoch_sink: Option<EpochFn<'a>>,
    /// The state to continue from.
    resume: Option<TrainState>,
    task: Task,
    /// The validation metric early stopping watches (default: the task's primary one).
    monitor: Option<Metric>,
}

/// The model-side view of a dataset's feature groups, for
/// [`ModelSpec::for_inputs`](crate::model::ModelSpec::for_inputs) (`data` and `model` sit on one layer,
/// so neither names the other's types).
pub fn model_inputs(layout: &crate::data::FeatureLayout) -> Vec<crate::model::InputGroup> {
    use crate::data::FeatureKind;
    use crate::model::InputGroup;
    layout
        .groups()
        .iter()
        .map(|g| match g.kind {
            FeatureKind::Tokens { max_len, vocab } => InputGroup::Tokens { name: g.name.clone(), max_len, vocab },
            _ => InputGroup::Dense { name: g.name.clone(), width: g.kind.width() },
        })
        .collect()
}

/// The trainable variables of `vars`, sorted by name so that the update order (and so every float)
/// is the same on every run.
fn sorted_vars(vars: &VarMap) -> candle_core::Result<Vec<Var>> {
    let data = vars.data().lock().map_err(|_| candle_core::Error::Msg("variable map lock poisoned".into()))?;
    let mut named: Vec<(&String, &Var)> = data.iter().collect();
    named.sort_by(|a, b| a.0.cmp(b.0));
    Ok(named.into_iter().map(|(_, v)| v.clone()).collect())
}

impl<'a> Trainer<'a> {
    /// A trainer for `model`, whose trainable variables are `vars`.
    pub fn new(model: &'a dyn Model, vars: &'a VarMap, config: TrainConfig) -> Self {
        Trainer {
            model,
            vars,
            config,
            graph: None,
            adversarial: None,
            vat: None,
            unlabeled: None,
            distill: None,
            record: None,
            progress: None,
            stop: None,
            state_sink: None,
            epoch_sink: None,
            resume: None,
            task: Task::Multiclass,
            monitor: None,
        }
    }

    /// Trains for `task` (default [`Task::Multiclass`]): its loss in every term that uses the
    /// targets (supervised, adversarial neighbors' gradient, supervised adversarial loss), its
    /// metrics in the history, its primary metric for early stopping.
    pub fn with_task(mut self, task: Task) -> Self {
        self.task = task;
        self
    }

    /// The validation metric early stopping watches, in place of the task's primary metric
    /// ([`Metric::primary`]: accuracy, ROC-AUC, macro-F1 or MSE).
    pub fn early_stopping_metric(mut self, metric: Metric) -> Self {
        self.monitor = Some(metric);
        self
    }

    /// Adds graph regularization along the neighbors of `table` (built from the same training
    /// samples that [`Trainer::fit`] gets, with `config.neighbors`: `NeighborTable::new(…,
    /// config.neighbors)`). The neighbors per sample are the table's: the trainer does not read
    /// the number a second time from `config` (a packed table, which has no `NeighborTable`, reads
    /// `config.neighbors`' columns).
    pub fn with_graph(mut self, table: &'a NeighborTable, config: &'a GraphRegConfig) -> Self {
        self.graph = Some((table, config));
        self
    }

    /// Adds adversarial regularization: every batch also trains on its adversarial neighbors.
    pub fn with_adversarial(mut self, config: &'a AdvRegConfig) -> Self {
        self.adversarial = Some(config);
        self
    }

    /// Adds virtual adversarial regularization (needs no label): on every center, labeled or not.
    pub fn with_vat(mut self, config: &'a VatConfig) -> Self {
        self.vat = Some(config);
        self
    }

    /// Trains unlabeled samples as centers too (Neural Graph Machines): each batch of labeled
    /// samples is joined by `ceil(ratio × batch)` unlabeled ones, drawn in a seeded shuffled order
    /// that starts again when all were drawn (each epoch still covers the labeled set once). The
    /// supervised loss covers the labeled centers only; the graph loss covers every edge of both
    /// (`table`: the unlabeled samples' neighbors, built from `unlabeled` with the labeled samples as
    /// the pool; multipliers per edge type in [`GraphRegConfig`]); virtual adversarial and entropy
    /// terms cover the unlabeled centers too.
    pub fn with_unlabeled(
        mut self,
        unlabeled: &'a Dataset,
        table: Option<&'a NeighborTable>,
        config: UnlabeledConfig,
    ) -> Self {
        self.unlabeled = Some(UnlabeledCenters { data: unlabeled, table, config });
        self
    }

    /// Adds distillation from a teacher ([`distill_loss`](crate::loss::distill_loss), GLNN): every
    /// step adds `config.multiplier · L_KD` between the teacher's probabilities and the model's
    /// outputs on the batch's centers. `train` holds the teacher's probabilities `[n, classes]` of
    /// the training samples, row for row; `unlabeled` those of the unlabeled samples
    /// ([`Trainer::with_unlabeled`]), row for row (without it, unlabeled centers are not taught).
    /// Multiclass only, in memory; sample weights do not weigh this term.
    pub fn with_distill(
        mut self,
        config: &'a DistillConfig,
        train: ndarray::ArrayView2<'a, f32>,
        unlabeled: Option<ndarray::ArrayView2<'a, f32>>,
    ) -> Self {
        self.distill = Some(Distill { config, train, unlabeled });
        self
    }

    /// Records the adversarial neighbors generated in every `every`-th epoch (and the last), to be
    /// taken with [`Trainer::take_record`] and written as a neighbor graph. `every` must be at
    /// least 1 ([`Trainer::fit`] refuses 0).
    pub fn record_adversarial(mut self, every: usize) -> Self {
        self.record = Some((every, AdversarialRecord::default()));
        self
    }

    /// Calls `f` after every batch (e.g. to move a progress bar).
    pub fn on_progress(mut self, f: impl FnMut(BatchProgress) + Send + 'a) -> Self {
        self.progress = Some(Box::new(f));
        self
    }

    /// Stops the fit after the batch during which `flag` becomes true (set from another thread,
    /// e.g. a Ctrl-C handler): [`Trainer::fit`] then returns [`TrainError::Stopped`], and the
    /// weights are those of that batch (a state handed out before, [`Trainer::on_epoch_state`],
    /// resumes the run).
    pub fn stop_when(mut self, flag: std::sync::Arc<std::sync::atomic::AtomicBool>) -> Self {
        self.stop = Some(flag);
        self
    }

    /// Calls `f` with each epoch's [`EpochRecord`] (the history's new line) as soon as the epoch
    /// is done, before early stopping looks at it: what a progress display shows, without the
    /// copy of the weights a [`TrainState`] is.
    pub fn on_epoch(mut self, f: impl FnMut(&EpochRecord) + Send + 'a) -> Self {
        self.epoch_sink = Some(Box::new(f));
        self
    }

    /// Calls `f` with the run's [`TrainState`] after every `every`-th completed epoch (and the
    /// last), e.g. to save it ([`TrainState::save`]) so that an interrupted run can be resumed. An
    /// error from `f` stops the fit.
    pub fn on_epoch_state(
        mut self,
        every: usize,
        f: impl FnMut(&TrainState) -> Result<(), StateError> + Send + 'a,
    ) -> Self {
        self.state_sink = Some((every.max(1), Box::new(f)));
        self
    }

    /// Continues from `state` (saved by a run with the same configuration, regularizers, model and
    /// samples) instead of starting afresh: [`Trainer::fit`] then trains the epochs after
    /// [`TrainState::epoch`] and returns the whole run's history; its weights are those of an
    /// uninterrupted run, bit for bit. Adversarial neighbors recorded before the interruption are
    /// not in the state.
    pub fn resume_from(mut self, state: TrainState) -> Self {
        self.resume = Some(state);
        self
    }

    /// The adversarial neighbors recorded so far (see [`Trainer::record_adversarial`]).
    pub fn take_record(&mut self) -> AdversarialRecord {
        self.record.as_mut().map(|(_, r)| std::mem::take(r)).unwrap_or_default()
    }

    /// Trains on `train` for the configured epochs; after each epoch, evaluates on `validation` if
    /// given. Returns every epoch's metrics.
    ///
    /// `train` is samples in memory (`&Dataset`: they must have the task's targets: labels for
    /// multiclass and binary, [`Targets`](crate::data::Targets) for multilabel and regression;
    /// their [`weights`](Dataset::weights), if any, weigh every loss term), or a packed table
    /// streamed from disk ([`TrainData::Packed`]). The same step runs on the batches of either.
    ///
    /// # Errors
    /// [`TrainError`]: an invalid configuration, empty or unlabeled samples, targets missing for
    /// the task, a label the model has no output for (or outputs that do not match the task's
    /// targets), a neighbor table built for another number of neighbors than the graph
    /// regularizer's, a candle error of the passes; with a packed table, [`TrainError::Data`] for
    /// a bad row (naming its file, row and column) and [`TrainError::Config`] for the settings
    /// [`TrainData::Packed`] refuses.
    pub fn fit<'t>(
        &mut self,
        train: impl Into<TrainData<'t>>,
        validation: Option<&Dataset>,
    ) -> Result<History, TrainError> {
        let source = train.into();
        if let TrainData::Packed { config, graph, .. } = source {
            self.check_packed(config, graph)?;
        }
        self.fit_source(source, validation)
    }

    /// The settings a packed table refuses (see [`TrainData::Packed`]).
    fn check_packed(&self, stream: &PackedConfig, graph: Option<&GraphRegConfig>) -> Result<(), TrainError> {
        stream.validate()?;
        let invalid = |field: &str, value: String, expected: &str| -> Result<_, TrainError> {
            Err(crate::config::ConfigError::invalid(field, value, expected).into())
        };
        if self.graph.is_some() {
            return invalid("graph", "a neighbor table".into(), "none: a packed table brings its neighbors");
        }
        if self.unlabeled.is_some() {
            return invalid("unlabeled samples", "given".into(), "none with a packed table");
        }
        if self.distill.is_some() {
            return invalid("distill", "a teacher".into(), "none with a packed table (samples in memory)");
        }
        if !self.task.has_classes() {
            return invalid("task", self.task.to_string(), "multiclass or binary with a packed table (labels only)");
        }
        if let Some(g) = graph {
            if g.hops != 1 {
                return invalid("hops", g.hops.to_string(), "1 with a packed table (its neighbors were packed)");
            }
            let [ll, lu, _] = g.edge_multipliers();
            if ll != lu {
                return invalid(
                    "multiplier-lu",
                    lu.to_string(),
                    "the same as multiplier-ll with a packed table (it does not say which neighbors are labeled)",
                );
            }
        }
        Ok(())
    }

    /// [`Trainer::fit`]: checks, then the fit on its thread pool.
    fn fit_source(&mut self, source: TrainData, validation: Option<&Dataset>) -> Result<History, TrainError> {
        self.config.validate()?;
        if self.config.early_stopping.is_some() && validation.is_none() {
            return Err(
                crate::config::ConfigError::invalid("early_stopping", "set", "validation samples to watch").into()
            );
        }
        if let Some(u) = &self.unlabeled {
            u.config.validate()?;
            if u.data.dim() != source.dim() {
                return Err(crate::config::ConfigError::invalid(
                    "unlabeled samples",
                    format!("{} features", u.data.dim()),
                    format!("{} features, as the training samples", source.dim()),
                )
                .into());
            }
        }
        if let Some(vat) = self.vat {
            vat.validate()?;
        }
        let graph = match &source {
            TrainData::Memory(_) => self.graph.map(|(_, config)| config),
            TrainData::Packed { graph, .. } => *graph,
        };
        if let Some(graph) = graph {
            graph.validate()?;
        }
        if let Some((0, _)) = &self.record {
            return Err(crate::config::ConfigError::invalid("record_adversarial every", 0, "at least 1 epoch").into());
        }
        if let Some(adversarial) = self.adversarial {
            self.task.check_adv_objective(adversarial.objective)?;
        }
        match self.config.threads {
            Some(threads) => {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .map_err(|e| TrainError::ThreadPool(e.to_string()))?;
                pool.install(|| self.fit_here(source, validation))
            }
            // Run on a rayon worker, so that a product split over the pool uses its threads and no
            // more: called from outside the pool, the caller would be a thread too many, competing
            // with the workers that spin on after a parallel product.
            None => rayon::scope(|_| self.fit_here(source, validation)),
        }
    }

    /// [`Trainer::fit`] on the current thread's pool: picks the backend.
    fn fit_here(&mut self, source: TrainData, validation: Option<&Dataset>) -> Result<History, TrainError> {
        let train = match source {
            TrainData::Memory(train) => train,
            TrainData::Packed { parts, .. } => return self.fit_packed_here(parts, source, validation),
        };
        if self.task.has_classes() && train.labels().is_none() {
            return Err(TrainError::NoLabels);
        }
        if train.is_empty() {
            return Err(TrainError::Empty);
        }
        if self.task != Task::Multiclass && self.unlabeled.as_ref().is_some_and(|u| u.config.entropy > 0.0) {
            return Err(crate::config::ConfigError::invalid(
                "entropy weight",
                "> 0",
                format!("0 for the {} task (the entropy term is of softmax outputs)", self.task),
            )
            .into());
        }
        self.check_distill(train)?;
        let labels = match crate::eval::task_targets(train, self.task) {
            Ok(t) => t,
            Err(e) => return Err(TrainError::Targets(e.to_string())),
        };
        let max_label = train.labels().and_then(|l| l.iter().max().copied()).unwrap_or(0);
        if self.task != Task::Multiclass {
            // The model's outputs against the targets' width, before a step fails on the shapes.
            // (Evaluation mode: no dropout mask is drawn, the multiclass path is left untouched.)
            let width = labels.dims().get(1).copied().unwrap_or(0);
            let first = crate::tensor::to_tensor(train.features().slice(ndarray::s![0..1, ..]))?;
            let outputs = self.model.forward_t(&first, false)?.dim(1)?;
            if outputs != self.task.outputs(width) {
                return Err(TrainError::OutputWidth {
                    task: self.task.to_string(),
                    targets: width,
                    expected: self.task.outputs(width),
                    outputs,
                });
            }
        }
        let (vars, optimizer) = self.optimizer(source)?;
        self.run(source, Some(&labels), max_label, validation, optimizer, vars)
    }

    /// [`Trainer::fit_here`] for a packed table: its checks (the batches' labels are checked as
    /// they come).
    fn fit_packed_here(
        &mut self,
        parts: &PackedParts,
        source: TrainData,
        validation: Option<&Dataset>,
    ) -> Result<History, TrainError> {
        if !parts.has_labels() {
            return Err(TrainError::NoLabels);
        }
        if parts.rows() == 0 {
            return Err(TrainError::Empty);
        }
        if self.task != Task::Multiclass {
            // Binary: one output (checked on a row of zeros, in evaluation mode: no dropout drawn).
            let zeros = Tensor::zeros((1, parts.dim()), candle_core::DType::F32, &Device::Cpu)?;
            let outputs = self.model.forward_t(&zeros, false)?.dim(1)?;
            if outputs != self.task.outputs(1) {
                return Err(TrainError::OutputWidth {
                    task: self.task.to_string(),
                    targets: 1,
                    expected: self.task.outputs(1),
                    outputs,
                });
            }
        }
        let (vars, optimizer) = self.optimizer(source)?;
        self.run(source, None, parts.max_label().unwrap_or(0), validation, optimizer, vars)
    }

    /// The teacher's tables against the samples and the model's outputs.
    fn check_distill(&self, train: &Dataset) -> Result<(), TrainError> {
        let Some(d) = &self.distill else { return Ok(()) };
        d.config.validate()?;
        let invalid = |field: &str, value: String, expected: String| -> Result<(), TrainError> {
            Err(crate::config::ConfigError::invalid(field, value, expected).into())
        };
        if self.task != Task::Multiclass {
            return invalid("distill", format!("with the {} task", self.task), "the multiclass task".into());
        }
        if d.train.nrows() != train.len() {
            let rows = d.train.nrows();
            return invalid(
                "distill teacher",
                format!("{rows} rows"),
                format!("{} (the training samples)", train.len()),
            );
        }
        let unlabeled = self.unlabeled.as_ref().map_or(0, |u| u.data.len());
        if let Some(u) = d.unlabeled.filter(|u| u.nrows() != unlabeled) {
            let rows = u.nrows();
            return invalid(
                "distill teacher",
                format!("{rows} unlabeled rows"),
                format!("{unlabeled} (the unlabeled samples)"),
            );
        }
        // Evaluation mode: no dropout mask is drawn, the run's random streams are left untouched.
        let first = crate::tensor::to_tensor(train.features().slice(ndarray::s![0..1, ..]))?;
        let outputs = self.model.forward_t(&first, false)?.dim(1)?;
        if d.train.ncols() != outputs || d.unlabeled.is_some_and(|u| u.ncols() != outputs) {
            return invalid(
                "distill teacher",
                format!("{} classes", d.train.ncols()),
                format!("{outputs} (the model's outputs)"),
            );
        }
        Ok(())
    }

    /// The trainable variables and the optimizer, both restored from the state to resume from, if
    /// any (checked against this run first).
    fn optimizer(&self, source: TrainData) -> Result<(Vec<Var>, Optimizer), TrainError> {
        let vars = sorted_vars(self.vars)?;
        let mut optimizer =
            Optimizer::new(self.config.optimizer, vars.clone()).with_weight_decay(self.config.weight_decay);
        if let Some(state) = &self.resume {
            state.check(&self.config, &self.setup(source), &named_shapes(self.vars)?)?;
            for (var, values) in vars.iter().zip(&state.weights) {
                var.set(&Tensor::from_slice(values, var.shape(), &Device::Cpu)?)?;
            }
            optimizer.restore(state.meta.optimizer_steps, state.moments.clone())?;
        }
        Ok((vars, optimizer))
    }

    /// Picks the backend and trains.
    fn run(
        &mut self,
        source: TrainData,
        labels: Option<&Tensor>,
        max_label: u32,
        validation: Option<&Dataset>,
        mut optimizer: Optimizer,
        vars: Vec<Var>,
    ) -> Result<History, TrainError> {
        let layer = self.graph_config(source).and_then(|c| c.layer.as_deref());
        let tape = match self.model.as_mlp() {
            Some(mlp) => TapeNet::new(mlp, layer, &optimizer)?,
            None => None,
        };
        match tape {
            Some(mut net) => self.epochs(&mut net, source, labels, max_label, validation, &mut optimizer),
            None => {
                let mut autograd = Autograd::new(self.model, layer, source.dim(), vars);
                self.epochs(&mut autograd, source, labels, max_label, validation, &mut optimizer)
            }
        }
    }

    /// The graph regularizer's settings: [`Trainer::with_graph`]'s, or a packed table's.
    fn graph_config<'s>(&self, source: TrainData<'s>) -> Option<&'s GraphRegConfig>
    where
        'a: 's,
    {
        match source {
            TrainData::Memory(_) => self.graph.map(|(_, c)| c),
            TrainData::Packed { graph, .. } => graph,
        }
    }

    fn epochs<B: Backend>(
        &mut self,
        backend: &mut B,
        source: TrainData,
        labels: Option<&Tensor>,
        max_label: u32,
        validation: Option<&Dataset>,
        optimizer: &mut Optimizer,
    ) -> Result<History, TrainError> {
        let unlabeled = self.unlabeled.as_ref().filter(|u| !u.data.is_empty()).map(|u| Unlabeled {
            features: u.data.features(),
            ids: u.data.ids(),
            table: u.table,
            entropy: u.config.entropy,
        });
        let setup = StepSetup {
            model: self.model,
            graph: self.graph,
            adversarial: self.adversarial,
            vat: self.vat,
            unlabeled,
            seed: self.config.seed,
            task: self.task,
            distill: self.distill,
        };
        let mut early =
            EarlyStopping::new(self.config.early_stopping, self.monitor.unwrap_or(Metric::primary(self.task)));
        let ratio = self.unlabeled.as_ref().map_or(0.0, |u| u.config.ratio);
        let mut draw = UnlabeledDraw::new(unlabeled.map_or(0, |u| u.features.nrows()), self.config.seed);
        let (epochs, batch_size) = (self.config.epochs, self.config.batch_size);
        let mut rng = ChaCha8Rng::seed_from_u64(self.config.seed);
        // In memory: the order of the rows, shuffled every epoch. Packed: the shuffle buffer's slot
        // permutation (sized at the end of the first epoch), shuffled the same way.
        let mut order: Vec<usize> = match source {
            TrainData::Memory(train) => (0..train.len()).collect(),
            TrainData::Packed { .. } => Vec::new(),
        };
        let batches = source.len().div_ceil(batch_size);
        let graph_config = self.graph_config(source);
        let positions: Vec<usize> = match source {
            TrainData::Memory(_) => Vec::new(),
            TrainData::Packed { .. } => (0..batch_size).collect(),
        };
        let mut history = History::default();
        let mut first = 1;
        if let Some(state) = self.resume.take() {
            if let TrainData::Packed { config, .. } = source {
                // A permutation of the buffer's slots (empty before the first epoch's end).
                let saved = state.meta.order.len();
                if saved > config.buffer {
                    return Err(TrainError::State(StateError::Mismatch {
                        setting: "the shuffle buffer".into(),
                        saved: format!("{saved} slots"),
                        current: format!("{} rows", config.buffer),
                    }));
                }
                order = (0..saved).collect();
            }
            first = self.restore(&state, &mut rng, &mut order, &mut draw, &mut early)?;
            history = state.meta.history;
        }
        let base_lr = self.config.optimizer.learning_rate();
        let (lr_schedule, schedules) = (self.config.lr_schedule, self.config.multiplier_schedules);
        let initial = Multipliers {
            graph: graph_config.map_or(0.0, GraphRegConfig::max_multiplier),
            adversarial: self.adversarial.map_or(0.0, |c| c.multiplier),
            vat: self.vat.map_or(0.0, |c| c.multiplier),
            epsilon: 1.0,
        };
        for epoch in first..=epochs {
            let started = Instant::now();
            if self.config.shuffle && matches!(source, TrainData::Memory(_)) {
                order.shuffle(&mut rng);
            }
            let mut sums = EpochSums::default();
            let mut outputs: Vec<(Vec<usize>, Tensor)> = Vec::with_capacity(batches);
            // A streamed epoch keeps counts, not outputs (multiclass: the only task it trains).
            let mut tally = ClassTally::default();
            let recording = self.record.as_ref().is_some_and(|(every, _)| epoch % every == 0 || epoch == epochs);
            let mut epoch_batches = match source {
                TrainData::Memory(train) => {
                    EpochBatches::Memory { train, labels, max_label, chunks: order.chunks(batch_size) }
                }
                TrainData::Packed { parts, config, .. } => {
                    let shuffle = self.config.shuffle.then_some((&mut order, &mut rng));
                    let neighbors = graph_config.map_or(0, |c| c.neighbors.max_neighbors);
                    let stream = parts.epoch(config, neighbors, self.config.seed, epoch, shuffle);
                    EpochBatches::Packed {
                        stream: Box::new(stream),
                        task: self.task,
                        positions: &positions,
                        current: None,
                    }
                }
            };
            let mut b = 0;
            while let Some(batch) = epoch_batches.next_batch(batch_size)? {
                let Batch { rows, samples: train, labels, max_label, neighbors } = batch;
                // A streamed batch brings its neighbors: a step setup of its own, as long as the batch.
                let batch_setup = neighbors.map(|table| StepSetup {
                    graph: graph_config.map(|c| (table, c)),
                    model: setup.model,
                    adversarial: setup.adversarial,
                    vat: setup.vat,
                    unlabeled: None, // refused with a packed table
                    seed: setup.seed,
                    task: setup.task,
                    distill: None, // refused with a packed table
                });
                let features = train.features();
                // The global step: the optimizer's updates so far.
                let t = optimizer.steps();
                if !lr_schedule.is_constant() {
                    optimizer.set_learning_rate(lr_schedule.learning_rate(base_lr, t, batches, epochs));
                }
                let multipliers = Multipliers {
                    graph: schedules.graph.multiplier(initial.graph, t),
                    adversarial: schedules.adversarial.multiplier(initial.adversarial, t),
                    vat: schedules.vat.multiplier(initial.vat, t),
                    epsilon: self.adversarial.map_or(1.0, |c| c.epsilon_factor(t, batches)),
                };
                let augment = Some((&self.config.augment, train.item_shape())).filter(|(a, _)| !a.is_off());
                if let Some((a, shape)) = augment {
                    a.check_shape(shape)?;
                }
                let context = StepContext {
                    epoch,
                    batch: b,
                    recording,
                    ids: train.ids(),
                    labels,
                    weights: train.weights(),
                    multipliers,
                    augment,
                };
                let urows = draw.next((ratio * rows.len() as f64).ceil() as usize);
                let step = match &batch_setup {
                    Some(p) => p.step(backend, rows, &urows, features, optimizer, &context)?,
                    None => setup.step(backend, rows, &urows, features, optimizer, &context)?,
                };
                // The other tasks' output width was checked before the first step (`fit_here`).
                if self.task == Task::Multiclass && max_label as usize >= step.classes {
                    return Err(TrainError::LabelOutOfRange { label: max_label, classes: step.classes });
                }
                sums.add(&step, rows.len());
                match (source, train.labels()) {
                    (TrainData::Memory(_), _) => outputs.push((rows.to_vec(), step.outputs)),
                    // (A packed table has no sample weights: each row counts once.)
                    (TrainData::Packed { .. }, Some(y)) if self.task == Task::Multiclass => {
                        tally.add(&step.outputs.argmax(1)?.to_vec1::<u32>()?, y, &vec![1.0; y.len()]);
                    }
                    (TrainData::Packed { .. }, _) => {}
                }
                if let (Some((_, record)), Some(adv)) = (self.record.as_mut(), self.adversarial) {
                    record.examples.extend(step.recorded);
                    record.multiplier = adv.multiplier as f32;
                }
                if let Some(progress) = self.progress.as_mut() {
                    progress(BatchProgress { epoch, epochs, batch: b + 1, batches });
                }
                if self.stop.as_ref().is_some_and(|s| s.load(std::sync::atomic::Ordering::Relaxed)) {
                    return Err(TrainError::Stopped { epoch, batch: b + 1 });
                }
                b += 1;
            }
            let evaluation = match validation {
                Some(v) => Some(crate::eval::evaluate_task(self.model, v, self.task, 1024)?),
                None => None,
            };
            let validation_accuracy = evaluation.as_ref().map(|e| e.accuracy).filter(|a| !a.is_nan());
            drop(epoch_batches);
            let mut record = sums.record(epoch, started.elapsed().as_secs_f64(), validation_accuracy);
            match source {
                TrainData::Memory(train) => {
                    let metrics = train_metrics(self.task, train, &outputs)?;
                    // With sample weights, the accuracy column is the weighted one too.
                    if let (Some(_), Some(accuracy)) = (train.weights(), metrics.accuracy) {
                        record.accuracy = accuracy;
                    }
                    record.metrics = Some(metrics);
                }
                TrainData::Packed { .. } if self.task == Task::Multiclass => record.metrics = Some(tally.metrics()),
                TrainData::Packed { .. } => {}
            }
            record.validation_metrics = evaluation.as_ref().map(|e| e.metrics.clone());
            history.epochs.push(record);
            if let (Some(sink), Some(record)) = (self.epoch_sink.as_mut(), history.epochs.last()) {
                sink(record);
            }
            let stop = early.observe(evaluation.as_ref(), epoch, self.vars)?;
            if let Some(every) = self.state_sink.as_ref().map(|(every, _)| *every) {
                if !stop && (epoch % every == 0 || epoch == epochs) {
                    let saved = RunPosition { epoch, rng: &rng, order: &order, draw: &draw, early: &early };
                    let state = self.state(source, &history, optimizer, saved)?;
                    if let Some((_, sink)) = self.state_sink.as_mut() {
                        sink(&state)?;
                    }
                }
            }
            if stop {
                break;
            }
        }
        early.restore_best(self.vars, &mut history)?;
        Ok(history)
    }

    /// What a saved state is compared on, besides the [`TrainConfig`]: the regularizers, the
    /// unlabeled centers and the sample counts.
    fn setup(&self, source: TrainData) -> serde_json::Value {
        let graph_pairs = match source {
            TrainData::Memory(_) => self.graph.map(|(t, _)| t.max_neighbors()),
            TrainData::Packed { graph, .. } => graph.map(|c| c.neighbors.max_neighbors),
        };
        let mut setup = serde_json::json!({
            "train_samples": source.len(),
            "features": source.dim(),
            "graph": self.graph_config(source),
            "graph_pairs": graph_pairs,
            "adversarial": self.adversarial,
            "vat": self.vat,
            "unlabeled": self.unlabeled.as_ref().map(|u| serde_json::json!({ "samples": u.data.len(), "config": u.config })),
            "recording": self.record.as_ref().map(|(every, _)| every),
            "task": self.task.to_string(),
            "monitor": self.monitor.map(|m| format!("{m:?}")),
            "sample_weights": match source {
                TrainData::Memory(train) => train.weights().is_some(),
                TrainData::Packed { .. } => false,
            },
        });
        if let (TrainData::Packed { parts, config, .. }, Some(map)) = (source, setup.as_object_mut()) {
            map.insert("packed".into(), serde_json::json!({ "files": parts.files().len(), "stream": config }));
        }
        // Only when set: the states of runs without a teacher stay as they were.
        if let (Some(d), Some(map)) = (&self.distill, setup.as_object_mut()) {
            map.insert("distill".into(), serde_json::json!({ "config": d.config, "unlabeled": d.unlabeled.is_some() }));
        }
        setup
    }

    /// The run's state after `at.epoch`.
    fn state(
        &self,
        source: TrainData,
        history: &History,
        optimizer: &Optimizer,
        at: RunPosition,
    ) -> Result<TrainState, TrainError> {
        let values = |t: &Tensor| t.flatten_all().and_then(|t| t.to_vec1::<f32>());
        let vars = sorted_vars(self.vars)?;
        let weights = vars.iter().map(|v| values(v.as_tensor())).collect::<Result<Vec<_>, _>>()?;
        let best_weights = match &at.early.best {
            Some((_, _, w)) => Some(w.iter().map(values).collect::<Result<Vec<_>, _>>()?),
            None => None,
        };
        let meta = state::StateMeta {
            format_version: 1,
            epoch: at.epoch,
            config: self.config.clone(),
            setup: self.setup(source),
            history: history.clone(),
            variables: named_shapes(self.vars)?,
            optimizer_steps: optimizer.steps(),
            best: at.early.best.as_ref().map(|(a, e, _)| (*a, *e)),
            since_best: at.early.since_best,
            order: at.order.to_vec(),
            order_rng: at.rng.get_word_pos().to_string(),
            unlabeled: (!at.draw.order.is_empty())
                .then(|| (at.draw.order.clone(), at.draw.next, at.draw.rng.get_word_pos().to_string())),
            model_rng: self.model.rng_positions()?.iter().map(u128::to_string).collect(),
        };
        Ok(TrainState { meta, weights, moments: optimizer.moments().to_vec(), best_weights })
    }

    /// Puts the random streams and early stopping where `state` left them; returns the first epoch
    /// to train. (The weights and the optimizer were restored in [`Trainer::fit_here`].)
    fn restore(
        &self,
        state: &TrainState,
        rng: &mut ChaCha8Rng,
        order: &mut Vec<usize>,
        draw: &mut UnlabeledDraw,
        early: &mut EarlyStopping,
    ) -> Result<usize, TrainError> {
        let bad = |what: &str| {
            TrainError::State(StateError::Mismatch {
                setting: what.to_string(),
                saved: "a state that does not fit".into(),
                current: "this run".into(),
            })
        };
        let m = &state.meta;
        let position = |s: &str| s.parse::<u128>().map_err(|_| bad("a random stream's position"));
        let mut sorted = m.order.clone();
        sorted.sort_unstable();
        if sorted != (0..order.len()).collect::<Vec<_>>() {
            return Err(bad("the batch order"));
        }
        *order = m.order.clone();
        rng.set_word_pos(position(&m.order_rng)?);
        match &m.unlabeled {
            Some((o, next, pos)) if o.len() == draw.order.len() && *next <= o.len() => {
                draw.order = o.clone();
                draw.next = *next;
                draw.rng.set_word_pos(position(pos)?);
            }
            None if draw.order.is_empty() => {}
            _ => return Err(bad("the unlabeled centers' draw")),
        }
        let positions = m.model_rng.iter().map(|p| position(p)).collect::<Result<Vec<_>, _>>()?;
        self.model.set_rng_positions(&positions)?;
        if let (Some((accuracy, epoch)), Some(weights)) = (m.best, &state.best_weights) {
            let vars = sorted_vars(self.vars)?;
            let tensors = vars
                .iter()
                .zip(weights)
                .map(|(v, w)| Tensor::from_slice(w, v.shape(), &Device::Cpu))
                .collect::<Result<Vec<_>, _>>()?;
            early.best = Some((accuracy, epoch, tensors));
        }
        early.since_best = m.since_best;
        Ok(m.epoch + 1)
    }
}

/// What [`Trainer::fit`] trains on: samples in memory, or a packed table streamed from disk.
#[derive(Clone, Copy, Debug)]
pub enum TrainData<'s> {
    /// The samples, in memory (with [`Trainer::with_graph`]'s neighbors, if any).
    Memory(&'s Dataset),
    /// A packed table streamed from disk ([`PackedParts`], through a shuffle buffer of
    /// `config.buffer` rows, re-read every epoch), regularized along its packed neighbors with
    /// `graph` (which must not have `hops` > 1, nor a `multiplier-lu` other than
    /// `multiplier-ll`: packed neighbors were chosen when packing, and do not say whether they are
    /// labeled). Memory holds the buffer, not the table. With a buffer of at least
    /// [`PackedParts::rows`] rows, the same seed and a table packed from the same samples, pool
    /// and graph, the model is the one [`TrainData::Memory`] with [`Trainer::with_graph`] trains,
    /// bit for bit (see [`crate::neighbors::PackedParts`]). The history's training metrics of a
    /// multiclass run (accuracy, macro-F1) are counted batch by batch; a binary run's history has
    /// loss and accuracy only (ROC-AUC would need every output of the epoch). Multiclass and
    /// binary tasks; no sample weights, no unlabeled centers, no [`Trainer::with_graph`].
    Packed {
        /// The table.
        parts: &'s PackedParts,
        /// The shuffle buffer and the order of the parts.
        config: &'s PackedConfig,
        /// Graph regularization along the packed neighbors.
        graph: Option<&'s GraphRegConfig>,
    },
}

impl<'s> From<&'s Dataset> for TrainData<'s> {
    fn from(train: &'s Dataset) -> Self {
        TrainData::Memory(train)
    }
}

impl TrainData<'_> {
    fn len(&self) -> usize {
        match self {
            TrainData::Memory(train) => train.len(),
            TrainData::Packed { parts, .. } => parts.rows(),
        }
    }

    fn dim(&self) -> usize {
        match self {
            TrainData::Memory(train) => train.dim(),
            TrainData::Packed { parts, .. } => parts.dim(),
        }
    }
}

/// One epoch's batches, in memory or streamed, through one [`EpochBatches::next_batch`].
// One value per epoch, never moved while it is read: the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
enum EpochBatches<'e> {
    /// Chunks of the shuffled row order of the samples (and their targets) in memory.
    Memory { train: &'e Dataset, labels: Option<&'e Tensor>, max_label: u32, chunks: std::slice::Chunks<'e, usize> },
    /// A packed table's stream; `current` holds the batch handed out last (and its targets).
    Packed {
        stream: Box<PackedEpoch<'e>>,
        task: Task,
        /// `0..batch_size`: a streamed batch's rows are its own samples, in order.
        positions: &'e [usize],
        current: Option<(PackedBatch, Tensor)>,
    },
}

/// One batch: `rows` of `samples`, with the targets of all `samples` and the largest label among
/// them; a streamed batch also brings its centers' neighbors.
struct Batch<'b> {
    rows: &'b [usize],
    samples: &'b Dataset,
    labels: &'b Tensor,
    max_label: u32,
    neighbors: Option<&'b NeighborTable>,
}

impl EpochBatches<'_> {
    /// The next batch of at most `size` rows, or `None` at the end of the epoch.
    ///
    /// # Errors
    /// A bad row of a streamed table, or a streamed batch without the task's targets.
    fn next_batch(&mut self, size: usize) -> Result<Option<Batch<'_>>, TrainError> {
        match self {
            EpochBatches::Memory { train, labels, max_label, chunks } => match (chunks.next(), labels) {
                (Some(rows), Some(labels)) => {
                    Ok(Some(Batch { rows, samples: train, labels, max_label: *max_label, neighbors: None }))
                }
                _ => Ok(None),
            },
            EpochBatches::Packed { stream, task, positions, current } => {
                let Some(batch) = stream.next_batch(size)? else { return Ok(None) };
                let labels =
                    crate::eval::task_targets(&batch.samples, *task).map_err(|e| TrainError::Targets(e.to_string()))?;
                let (batch, labels) = current.insert((batch, labels));
                let max_label = batch.samples.labels().and_then(|l| l.iter().max().copied()).unwrap_or(0);
                Ok(Some(Batch {
                    rows: &positions[..batch.samples.len()],
                    samples: &batch.samples,
                    labels,
                    max_label,
                    neighbors: Some(&batch.neighbors),
                }))
            }
        }
    }
}

/// Where the epoch loop is, for [`Trainer::state`].
struct RunPosition<'r> {
    epoch: usize,
    rng: &'r ChaCha8Rng,
    order: &'r [usize],
    draw: &'r UnlabeledDraw,
    early: &'r EarlyStopping,
}

/// The trainable variables' names and shapes, in name order.
fn named_shapes(vars: &VarMap) -> candle_core::Result<Vec<(String, Vec<usize>)>> {
    let data = vars.data().lock().map_err(|_| candle_core::Error::Msg("variable map lock poisoned".into()))?;
    let mut named: Vec<(String, Vec<usize>)> = data.iter().map(|(k, v)| (k.clone(), v.dims().to_vec())).collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(named)
}

/// The task's metrics of an epoch's training outputs (in training mode, as Keras reports them),
/// each batch's outputs with its rows; weighted by the samples' weights when they have any, as the
/// validation and test tables are scored.
fn train_metrics(task: Task, train: &Dataset, batches: &[(Vec<usize>, Tensor)]) -> candle_core::Result<Metrics> {
    let rows: Vec<usize> = batches.iter().flat_map(|(r, _)| r.iter().copied()).collect();
    let width = batches.first().map_or(Ok(0), |(_, t)| t.dim(1))?;
    let mut values = Vec::with_capacity(rows.len() * width);
    for (_, t) in batches {
        values.extend(t.flatten_all()?.to_vec1::<f32>()?);
    }
    let outputs = ndarray::Array2::from_shape_vec((rows.len(), width), values)
        .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
    let labels: Vec<u32>;
    let matrix;
    let truth = match (train.labels(), train.targets()) {
        (_, Some(t)) => {
            matrix = t.matrix().select(ndarray::Axis(0), &rows);
            Truth::Matrix(matrix.view())
        }
        (Some(all), None) => {
            labels = rows.iter().map(|&r| all[r]).collect();
            Truth::Classes(&labels)
        }
        (None, None) => Truth::Classes(&[]),
    };
    let weights: Option<Vec<f32>> = train.weights().map(|w| rows.iter().map(|&r| w[r]).collect());
    Ok(weighted_task_metrics(task, outputs.view(), truth, weights.as_deref()))
}

/// The unlabeled centers' order: a seeded shuffle, drawn from in turn and shuffled again when all
/// were drawn.
struct UnlabeledDraw {
    order: Vec<usize>,
    next: usize,
    rng: ChaCha8Rng,
}

impl UnlabeledDraw {
    fn new(n: usize, seed: u64) -> Self {
        // A stream of its own: the labeled batches' order is the same with or without unlabeled centers.
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ crate::config::seed_streams::UNLABELED_DRAW);
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut rng);
        UnlabeledDraw { order, next: 0, rng }
    }

    /// The next `k` rows (fewer only if there are fewer than `k` unlabeled samples).
    fn next(&mut self, k: usize) -> Vec<usize> {
        let k = k.min(self.order.len());
        let mut out = Vec::with_capacity(k);
        while out.len() < k {
            if self.next == self.order.len() {
                self.order.shuffle(&mut self.rng);
                self.next = 0;
            }
            out.push(self.order[self.next]);
            self.next += 1;
        }
        out
    }
}

#[derive(Default)]
struct EpochSums {
    loss: f64,
    supervised: f64,
    graph: f64,
    adversarial: f64,
    vat: f64,
    entropy: f64,
    correct: f64,
    seen: usize,
}

impl EpochSums {
    fn add(&mut self, step: &Step, n: usize) {
        let w = n as f64;
        self.loss += step.loss * w;
        self.supervised += step.supervised * w;
        self.graph += step.graph * w;
        self.adversarial += step.adversarial * w;
        self.vat += step.vat * w;
        self.entropy += step.entropy * w;
        self.correct += step.correct;
        self.seen += n;
    }

    fn record(&self, epoch: usize, seconds: f64, validation_accuracy: Option<f64>) -> EpochRecord {
        let n = self.seen.max(1) as f64;
        EpochRecord {
            epoch,
            loss: self.loss / n,
            supervised_loss: self.supervised / n,
            graph_loss: self.graph / n,
            adversarial_loss: self.adversarial / n,
            vat_loss: self.vat / n,
            entropy_loss: self.entropy / n,
            accuracy: self.correct / n,
            validation_accuracy,
            seconds,
            metrics: None,
            validation_metrics: None,
        }
    }
}
