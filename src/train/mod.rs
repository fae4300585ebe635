//! The trainer: mini-batch training of any [`Model`] with a supervised loss plus the configured
//! regularizers, per-epoch history, and checkpoints.
//!
//! # Formula
//! Per batch `B` with labels `y`: `L = CE(y, f(x_B)) + m_g · L_graph` where `CE` is the mean
//! softmax cross-entropy (Keras' `SparseCategoricalCrossentropy(from_logits=True)`) and `L_graph` the
//! graph loss over the batch's (sample, neighbor) pairs ([`graph_loss`]).

mod checkpoint;
mod history;

pub use checkpoint::{load_checkpoint, save_checkpoint, Checkpoint, CheckpointMeta};
pub use history::{EpochRecord, History};

use crate::data::Dataset;
use crate::model::Model;
use crate::neighbors::NeighborTable;
use crate::regularize::{graph_loss, GraphRegConfig};
use candle_core::{DType, Device, Result, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarMap, SGD};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// The optimizer and its learning rate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum OptimizerConfig {
    /// Adam with Keras' defaults: β₁ 0.9, β₂ 0.999, ε 1e-7.
    Adam {
        /// Learning rate. Keras default 0.001.
        learning_rate: f64,
    },
    /// Plain stochastic gradient descent.
    Sgd {
        /// Learning rate.
        learning_rate: f64,
    },
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        OptimizerConfig::Adam { learning_rate: 0.001 }
    }
}

/// How to train. `Default`: Adam (lr 0.001), 10 epochs, batch 32 (Keras' default), seed 0, shuffled.
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
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig { epochs: 10, batch_size: 32, optimizer: OptimizerConfig::default(), seed: 0, shuffle: true }
    }
}

/// Progress reported after every batch: `(epoch, batches done in the epoch, batches per epoch)`.
pub type Progress<'a> = &'a mut dyn FnMut(usize, usize, usize);

/// Trains a model with optional graph regularization.
pub struct Trainer<'a> {
    model: &'a dyn Model,
    vars: &'a VarMap,
    config: TrainConfig,
    graph: Option<(&'a NeighborTable, &'a GraphRegConfig)>,
    device: Device,
}

enum AnyOptimizer {
    Adam(AdamW),
    Sgd(SGD),
}

impl AnyOptimizer {
    fn new(config: OptimizerConfig, vars: &VarMap) -> Result<Self> {
        // Sorted by name so that the update order (and so every float) is the same on every run.
        let mut named: Vec<(String, candle_core::Var)> = vars
            .data()
            .lock()
            .map_err(|_| candle_core::Error::Msg("variable map lock poisoned".into()))?
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let vars = named.into_iter().map(|(_, v)| v).collect();
        Ok(match config {
            OptimizerConfig::Adam { learning_rate } => AnyOptimizer::Adam(AdamW::new(
                vars,
                ParamsAdamW { lr: learning_rate, beta1: 0.9, beta2: 0.999, eps: 1e-7, weight_decay: 0.0 },
            )?),
            OptimizerConfig::Sgd { learning_rate } => AnyOptimizer::Sgd(SGD::new(vars, learning_rate)?),
        })
    }

    fn backward_step(&mut self, loss: &Tensor) -> Result<()> {
        match self {
            AnyOptimizer::Adam(o) => o.backward_step(loss),
            AnyOptimizer::Sgd(o) => o.backward_step(loss),
        }
    }
}

impl<'a> Trainer<'a> {
    /// A trainer for `model`, whose trainable variables are `vars`.
    pub fn new(model: &'a dyn Model, vars: &'a VarMap, config: TrainConfig) -> Self {
        Trainer { model, vars, config, graph: None, device: Device::Cpu }
    }

    /// Adds graph regularization along the neighbors of `table` (built from the same training
    /// samples that [`Trainer::fit`] gets).
    pub fn with_graph(mut self, table: &'a NeighborTable, config: &'a GraphRegConfig) -> Self {
        self.graph = Some((table, config));
        self
    }

    /// Trains on `train` (which must have labels) for the configured epochs; after each epoch,
    /// evaluates on `validation` if given. Calls `progress` after every batch.
    ///
    /// # Errors
    /// A candle error, or a message if `train` is empty, unlabeled, or has more classes than the
    /// model's output.
    pub fn fit(&self, train: &Dataset, validation: Option<&Dataset>, progress: Progress) -> Result<History> {
        let Some(labels) = train.labels() else {
            candle_core::bail!("the training samples have no labels");
        };
        if train.is_empty() {
            candle_core::bail!("the training set is empty");
        }
        if self.config.batch_size == 0 || self.config.epochs == 0 {
            candle_core::bail!("batch size and epochs must be at least 1");
        }
        let features = Tensor::from_slice(
            train.features().as_standard_layout().as_slice().unwrap_or(&[]),
            (train.len(), train.dim()),
            &self.device,
        )?;
        let labels = Tensor::from_slice(labels, train.len(), &self.device)?;
        let mut optimizer = AnyOptimizer::new(self.config.optimizer, self.vars)?;
        let mut rng = ChaCha8Rng::seed_from_u64(self.config.seed);
        let mut order: Vec<usize> = (0..train.len()).collect();
        let batches = train.len().div_ceil(self.config.batch_size);
        let mut history = History::default();
        for epoch in 1..=self.config.epochs {
            let started = Instant::now();
            if self.config.shuffle {
                order.shuffle(&mut rng);
            }
            let mut sums = EpochSums::default();
            for (b, rows) in order.chunks(self.config.batch_size).enumerate() {
                let step = self.step(rows, &features, &labels, &mut optimizer)?;
                sums.add(&step, rows.len());
                progress(epoch, b + 1, batches);
            }
            let validation_accuracy = match validation {
                Some(v) => Some(crate::eval::evaluate(self.model, v, 1024)?.accuracy),
                None => None,
            };
            history.epochs.push(sums.record(epoch, started.elapsed().as_secs_f64(), validation_accuracy));
        }
        Ok(history)
    }

    fn step(&self, rows: &[usize], features: &Tensor, labels: &Tensor, optimizer: &mut AnyOptimizer) -> Result<Step> {
        let index = Tensor::from_vec(rows.iter().map(|&r| r as u32).collect::<Vec<u32>>(), rows.len(), &self.device)?;
        let x = features.index_select(&index, 0)?;
        let y = labels.index_select(&index, 0)?;
        let layer = self.graph.and_then(|(_, c)| c.layer.as_deref());
        let (logits, hidden) = self.model.forward_with(&x, true, layer)?;
        let supervised = candle_nn::loss::cross_entropy(&logits, &y)?;
        let mut total = supervised.clone();
        let mut graph_value = 0.0;
        if let Some((table, config)) = self.graph {
            let batch = table.batch(rows, &self.device)?;
            if batch.weights.elem_count() > 0 && config.multiplier > 0.0 {
                let (nbr_logits, nbr_hidden) = self.model.forward_with(&batch.features, true, layer)?;
                let (s, t) = match (hidden, nbr_hidden) {
                    (Some(s), Some(t)) => (s, t),
                    _ => (logits.clone(), nbr_logits),
                };
                let g = graph_loss(&s, &t, &batch, config)?;
                graph_value = g.to_dtype(DType::F32)?.to_scalar::<f32>()? as f64;
                total = (total + (g * config.multiplier)?)?;
            }
        }
        optimizer.backward_step(&total)?;
        let correct = logits.argmax(1)?.eq(&y)?.to_dtype(DType::F32)?.sum_all()?.to_scalar::<f32>()? as f64;
        Ok(Step {
            loss: total.to_dtype(DType::F32)?.to_scalar::<f32>()? as f64,
            supervised: supervised.to_dtype(DType::F32)?.to_scalar::<f32>()? as f64,
            graph: graph_value,
            correct,
        })
    }
}

struct Step {
    loss: f64,
    supervised: f64,
    graph: f64,
    correct: f64,
}

#[derive(Default)]
struct EpochSums {
    loss: f64,
    supervised: f64,
    graph: f64,
    correct: f64,
    seen: usize,
}

impl EpochSums {
    fn add(&mut self, step: &Step, n: usize) {
        let w = n as f64;
        self.loss += step.loss * w;
        self.supervised += step.supervised * w;
        self.graph += step.graph * w;
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
            accuracy: self.correct / n,
            validation_accuracy,
            seconds,
        }
    }
}

/// Sets the number of CPU threads candle (and rayon) use. Call it before any tensor work: rayon's
/// global pool is created once. On 2 cores, 1 thread is often faster for small models.
pub fn set_threads(threads: usize) {
    // candle reads RAYON_NUM_THREADS at every matmul; rayon reads it when its pool starts.
    std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
    let _ = rayon::ThreadPoolBuilder::new().num_threads(threads).build_global();
}
