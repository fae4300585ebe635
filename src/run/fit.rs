//! `OpenRun::fit`: the one door into the trainer, with the hooks a front end needs.

use super::error::RunError;
use super::open::OpenRun;
use crate::data::Dataset;
use crate::eval::{evaluate_task, predict_task, Evaluation, Metrics};
use crate::loss::Task;
use crate::model::Model;
use crate::neighbors::NeighborReport;
use crate::train::{
    AdversarialRecord, BatchProgress, CheckpointMeta, EpochRecord, History, StateError, TrainData, TrainState, Trainer,
};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

type ProgressFn<'a> = Box<dyn FnMut(BatchProgress) + Send + 'a>;
type StateFn<'a> = Box<dyn FnMut(&TrainState) -> Result<(), StateError> + Send + 'a>;
type EpochFn<'a> = Box<dyn FnMut(&EpochRecord) + Send + 'a>;

/// What a front end hooks into a fit: progress, a stop flag, the epoch states for resuming, and
/// the state to resume from. `FitHooks::default()` hooks nothing.
#[derive(Default)]
pub struct FitHooks<'a> {
    progress: Option<ProgressFn<'a>>,
    stop: Option<Arc<AtomicBool>>,
    epoch_state: Option<(usize, StateFn<'a>)>,
    epoch: Option<EpochFn<'a>>,
    resume: Option<TrainState>,
}

impl<'a> FitHooks<'a> {
    /// Calls `f` after every batch (a progress bar, Python's callback).
    pub fn on_progress(mut self, f: impl FnMut(BatchProgress) + Send + 'a) -> Self {
        self.progress = Some(Box::new(f));
        self
    }

    /// Calls `f` with each epoch's record as soon as the epoch is done (a display, Python's
    /// callback; [`Trainer::on_epoch`]).
    pub fn on_epoch(mut self, f: impl FnMut(&EpochRecord) + Send + 'a) -> Self {
        self.epoch = Some(Box::new(f));
        self
    }

    /// Stops the fit after the batch during which `flag` becomes true (Ctrl-C): the fit then
    /// fails with [`TrainError::Stopped`](crate::train::TrainError::Stopped).
    pub fn stop_when(mut self, flag: Arc<AtomicBool>) -> Self {
        self.stop = Some(flag);
        self
    }

    /// Calls `f` with the run's [`TrainState`] after every `every`-th completed epoch and the
    /// last (to save it for resuming, [`TrainState::save`]); an error from `f` stops the fit. Not
    /// with `record_adversarial` (a state does not hold the record).
    pub fn on_epoch_state(
        mut self,
        every: usize,
        f: impl FnMut(&TrainState) -> Result<(), StateError> + Send + 'a,
    ) -> Self {
        self.epoch_state = Some((every, Box::new(f)));
        self
    }

    /// Continues from `state`, saved by a run of the same settings and inputs: the fit ends with
    /// the weights of an uninterrupted run, bit for bit.
    pub fn resume_from(mut self, state: TrainState) -> Self {
        self.resume = Some(state);
        self
    }
}

/// What a run reports (`RUN/summary.json`, `nsl train --json`).
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    /// The run directory.
    pub run: PathBuf,
    /// The model spec.
    pub model: String,
    /// Training samples.
    pub train_samples: usize,
    /// Epochs configured.
    pub epochs: usize,
    /// The task.
    pub task: Task,
    /// The training accuracy of the epoch whose weights the run keeps: the best epoch under early
    /// stopping ([`RunSummary::best_epoch`]), else the last.
    pub final_train_accuracy: f64,
    /// The accuracy on the test samples.
    pub test_accuracy: Option<f64>,
    /// The task's metrics on the training batches of the epoch whose weights the run keeps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub final_train_metrics: Option<Metrics>,
    /// The task's metrics on the validation samples at the epoch whose weights the run keeps (the
    /// best epoch under early stopping, else the last): the saved model's validation metrics.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub final_validation_metrics: Option<Metrics>,
    /// The task's loss on the test samples.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_loss: Option<f64>,
    /// The task's metrics on the test samples.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_metrics: Option<Metrics>,
    /// Seconds per epoch once warm ([`History::steady_epoch_seconds`]).
    pub steady_epoch_seconds: Option<f64>,
    /// With early stopping: the epoch whose weights were kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub best_epoch: Option<usize>,
    /// How the graph resolved into neighbors.
    pub graph: Option<NeighborReport>,
}

/// A trained run: the model, its history and what the test samples say, ready to
/// [`save`](FittedRun::save), evaluate more samples or predict.
pub struct FittedRun {
    pub(crate) open: OpenRun,
    pub(crate) history: History,
    pub(crate) record: Option<AdversarialRecord>,
    pub(crate) test: Option<Evaluation>,
    pub(crate) meta: CheckpointMeta,
}

impl OpenRun {
    /// Trains the model: in memory or from a streamed packed table, with every regularizer the
    /// spec names, `hooks` hooked in; then evaluates the test samples.
    ///
    /// # Errors
    /// [`RunError::Train`] (a candle error, a bad row of a streamed table, a state that does not
    /// fit, [`TrainError::Stopped`](crate::train::TrainError::Stopped)), [`RunError::Settings`] for
    /// epoch states asked with `record_adversarial`.
    pub fn fit(self, hooks: FitHooks<'_>) -> Result<FittedRun, RunError> {
        let s = &self.checked.spec;
        if hooks.epoch_state.is_some() && s.record_adversarial.is_some() {
            return Err(RunError::settings(
                "@record_adversarial: the run cannot hand out training states (a state does not hold the record)",
            ));
        }
        let mut trainer = Trainer::new(self.model.as_ref(), &self.vars, s.train.clone()).with_task(s.task);
        if let Some(metric) = s.early_stopping_metric {
            trainer = trainer.early_stopping_metric(metric);
        }
        if let (Some(tables), Some(reg)) = (&self.tables, &s.graph_reg) {
            trainer = trainer.with_graph(&tables.train, reg);
        }
        if let Some(u) = &self.unlabeled {
            let table = self.tables.as_ref().and_then(|t| t.unlabeled.as_ref());
            trainer = trainer.with_unlabeled(u, table, s.unlabeled_config.clone());
        }
        if let Some(vat) = &s.vat {
            trainer = trainer.with_vat(vat);
        }
        if let (Some(d), Some((train, unlabeled))) = (&s.distill, &self.distill) {
            trainer = trainer.with_distill(&d.config, train.view(), unlabeled.as_ref().map(|u| u.view()));
        }
        if let Some(adv) = &s.adv_reg {
            trainer = trainer.with_adversarial(adv);
            if s.record_adversarial.is_some() {
                trainer = trainer.record_adversarial(s.record_every);
            }
        }
        if let Some(f) = hooks.progress {
            trainer = trainer.on_progress(f);
        }
        if let Some(flag) = hooks.stop {
            trainer = trainer.stop_when(flag);
        }
        if let Some((every, f)) = hooks.epoch_state {
            trainer = trainer.on_epoch_state(every, f);
        }
        if let Some(f) = hooks.epoch {
            trainer = trainer.on_epoch(f);
        }
        if let Some(state) = hooks.resume {
            trainer = trainer.resume_from(state);
        }
        let data = match (&self.stream, self.checked.stream()) {
            (Some(parts), Some(config)) => TrainData::Packed { parts, config, graph: s.graph_reg.as_ref() },
            _ => TrainData::Memory(&self.train),
        };
        let history = trainer.fit(data, self.validation.as_ref())?;
        let record = s.record_adversarial.is_some().then(|| trainer.take_record());
        drop(trainer);
        let test = self.test.as_ref().map(|t| evaluate_task(self.model.as_ref(), t, s.task, 1024)).transpose()?;
        let meta = self.checkpoint_meta();
        Ok(FittedRun { open: self, history, record, test, meta })
    }

    /// The checkpoint's metadata: the model, its input and outputs, and how it was trained.
    fn checkpoint_meta(&self) -> CheckpointMeta {
        let s = &self.checked.spec;
        let mut setup = serde_json::json!({
            "config": s.train,
            "graph_reg": s.graph_reg,
            "adv_reg": s.adv_reg,
            "vat": s.vat,
            "distill": s.distill.as_ref().map(|d| serde_json::json!({
                "teacher": match &d.teacher {
                    super::TeacherInput::Path(p) => Some(p),
                    super::TeacherInput::Table(_) => None,
                },
                "config": d.config,
            })),
            "unlabeled": self.unlabeled.as_ref().map(|_| serde_json::json!({
                "samples": s.unlabeled.as_ref().and_then(|u| u.path()),
                "config": s.unlabeled_config,
            })),
            "samples": self.checked.samples_path(),
            "graph": s.graph.as_ref().and_then(|g| g.path()),
        });
        if let (Some(stream), Some(map)) = (self.checked.stream(), setup.as_object_mut()) {
            map.insert("stream".into(), serde_json::json!(stream));
        }
        let names = self.train.class_names().map(<[String]>::to_vec);
        CheckpointMeta::new(
            self.spec.clone(),
            self.train.item_shape().to_vec(),
            self.outputs,
            names,
            self.checked.init_seed,
            setup,
        )
        .with_task(s.task)
    }
}

impl FittedRun {
    /// Every epoch's loss and metrics.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// The trained model.
    pub fn model(&self) -> &dyn Model {
        self.open.model.as_ref()
    }

    /// The run as it was opened (settings, samples, neighbor report, notes).
    pub fn open_run(&self) -> &OpenRun {
        &self.open
    }

    /// What `model.json` says: the model, its input and outputs, and how it was trained.
    pub fn meta(&self) -> &CheckpointMeta {
        &self.meta
    }

    /// The evaluation of the test samples, if given.
    pub fn test_evaluation(&self) -> Option<&Evaluation> {
        self.test.as_ref()
    }

    /// The adversarial neighbors recorded (with `record_adversarial`).
    pub fn record(&self) -> Option<&AdversarialRecord> {
        self.record.as_ref()
    }

    /// Loss and the task's metrics of the model on `samples` (laid out as the training samples).
    ///
    /// # Errors
    /// [`RunError::Model`] for samples that do not fit the model.
    pub fn evaluate(&self, samples: &Dataset) -> Result<Evaluation, RunError> {
        evaluate_task(self.model(), samples, self.open.checked.spec.task, 1024).map_err(RunError::Model)
    }

    /// The model's predictions for `samples`, `[n, outputs]`: class probabilities (softmax) for
    /// multiclass, each label's probability for binary and multilabel, values for regression.
    ///
    /// # Errors
    /// [`RunError::Model`] for samples that do not fit the model.
    pub fn predict(&self, samples: &Dataset) -> Result<Vec<Vec<f32>>, RunError> {
        predict_task(self.model(), samples, self.open.checked.spec.task, 1024).map_err(RunError::Model)
    }

    /// What the run reports, for the run directory `run`.
    pub fn summary(&self, run: &Path) -> RunSummary {
        let (history, s) = (&self.history, &self.open.checked.spec);
        // The epoch whose weights the run keeps (the best one under early stopping).
        let kept = history.kept();
        RunSummary {
            run: run.to_path_buf(),
            model: self.open.spec.to_string(),
            train_samples: self.open.train_len(),
            epochs: s.train.epochs,
            task: s.task,
            final_train_metrics: kept.and_then(|e| e.metrics.clone()),
            final_validation_metrics: kept.and_then(|e| e.validation_metrics.clone()),
            test_loss: self.test.as_ref().map(|e| e.loss),
            test_metrics: self.test.as_ref().map(|e| e.metrics.clone()),
            final_train_accuracy: kept.map_or(0.0, |e| e.accuracy),
            test_accuracy: self.test.as_ref().map(|e| e.accuracy).filter(|a| !a.is_nan()),
            steady_epoch_seconds: history.steady_epoch_seconds(),
            graph: self.open.neighbor_report().cloned(),
            best_epoch: history.best_epoch,
        }
    }
}
