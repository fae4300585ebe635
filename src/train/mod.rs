//! The trainer: mini-batch training of any [`Model`] with a supervised loss plus the configured
//! regularizers, per-epoch history, and checkpoints.
//!
//! # Formula
//! Per batch `B` with labels `y`: `L = CE(y, f(x_B)) + m_g · L_graph + m_a · L_adv` where `CE` is the
//! mean softmax cross-entropy (Keras' `SparseCategoricalCrossentropy(from_logits=True)`), `L_graph` the
//! graph loss over the batch's (sample, neighbor) pairs ([`graph_loss`]) and `L_adv` the loss on the
//! batch's adversarial neighbors ([`AdvRegConfig`]): explicit and adversarial edges in one step.
//!
//! With adversarial regularization a step costs two forward and two backward passes: the backward of
//! `CE` gives both `∇ₓ CE` (for the neighbors) and its parameter gradients, and one more backward
//! through the regularizers adds theirs (NSL's Keras wrapper does three).

mod checkpoint;
mod history;
mod optim;
mod record;

pub use checkpoint::{load_checkpoint, save_checkpoint, Checkpoint, CheckpointError, CheckpointMeta};
pub use history::{EpochRecord, History};
use optim::Optimizer;
pub use optim::OptimizerConfig;
pub use record::{AdversarialExample, AdversarialRecord};

use crate::data::Dataset;
use crate::model::Model;
use crate::neighbors::NeighborTable;
use crate::regularize::{gen_adv_neighbor, graph_loss, pairwise_distance, AdvLoss, AdvRegConfig, GraphRegConfig};
use candle_core::{DType, Device, Result, Tensor, Var};
use candle_nn::VarMap;
use ndarray::{Array2, ArrayView2};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::time::Instant;

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
    adversarial: Option<&'a AdvRegConfig>,
    record: Option<(usize, RefCell<AdversarialRecord>)>,
    device: Device,
}

/// The trainable variables of `vars`, sorted by name so that the update order (and so every float)
/// is the same on every run.
fn sorted_vars(vars: &VarMap) -> Result<Vec<Var>> {
    let data = vars.data().lock().map_err(|_| candle_core::Error::Msg("variable map lock poisoned".into()))?;
    let mut named: Vec<(&String, &Var)> = data.iter().collect();
    named.sort_by(|a, b| a.0.cmp(b.0));
    Ok(named.into_iter().map(|(_, v)| v.clone()).collect())
}

impl<'a> Trainer<'a> {
    /// A trainer for `model`, whose trainable variables are `vars`.
    pub fn new(model: &'a dyn Model, vars: &'a VarMap, config: TrainConfig) -> Self {
        Trainer { model, vars, config, graph: None, adversarial: None, record: None, device: Device::Cpu }
    }

    /// Adds adversarial regularization: every batch also trains on its adversarial neighbors.
    pub fn with_adversarial(mut self, config: &'a AdvRegConfig) -> Self {
        self.adversarial = Some(config);
        self
    }

    /// Records the adversarial neighbors generated in every `every`-th epoch (and the last), to be
    /// taken with [`Trainer::take_record`] and written as a neighbor graph.
    pub fn record_adversarial(mut self, every: usize) -> Self {
        self.record = Some((every.max(1), RefCell::new(AdversarialRecord::default())));
        self
    }

    /// The adversarial neighbors recorded so far (see [`Trainer::record_adversarial`]).
    pub fn take_record(&self) -> AdversarialRecord {
        self.record.as_ref().map(|(_, r)| r.take()).unwrap_or_default()
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
        let features = train.features();
        let labels = Tensor::from_slice(labels, train.len(), &self.device)?;
        let mut optimizer = Optimizer::new(self.config.optimizer, sorted_vars(self.vars)?)?;
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
            let recording =
                self.record.as_ref().is_some_and(|(every, _)| epoch % every == 0 || epoch == self.config.epochs);
            for (b, rows) in order.chunks(self.config.batch_size).enumerate() {
                let context = StepContext { epoch, batch: b, recording, ids: train.ids() };
                let step = self.step(rows, features, &labels, &mut optimizer, &context)?;
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

    fn step(
        &self,
        rows: &[usize],
        features: ArrayView2<f32>,
        labels: &Tensor,
        optimizer: &mut Optimizer,
        context: &StepContext,
    ) -> Result<Step> {
        let index = Tensor::from_vec(rows.iter().map(|&r| r as u32).collect::<Vec<u32>>(), rows.len(), &self.device)?;
        let y = labels.index_select(&index, 0)?;
        let layer = self.graph.and_then(|(_, c)| c.layer.as_deref());
        // Samples and their neighbors go through the model in one forward pass, from one buffer:
        // one large product per layer instead of two small ones (dropout masks are per row anyway).
        let (n, d) = (rows.len(), features.ncols());
        let mut buffer = Vec::with_capacity(n * d * 2);
        for &r in rows {
            crate::neighbors::extend_row(&mut buffer, features.row(r));
        }
        let neighbors = match self.graph {
            Some((table, config)) if config.multiplier > 0.0 => {
                Some((table.append_batch(rows, &mut buffer, &self.device)?, config)).filter(|(b, _)| b.pairs() > 0)
            }
            _ => None,
        };
        let all_rows = buffer.len() / d.max(1);
        let all = Tensor::from_vec(buffer, (all_rows, d), &self.device)?;
        let x = all.narrow(0, 0, n)?;
        // With adversarial regularization the samples are a variable, so that one backward gives ∇ₓ.
        let x_var = match self.adversarial {
            Some(_) => Some(Var::from_tensor(&x)?),
            None => None,
        };
        let input = match &x_var {
            Some(v) if all_rows > n => Tensor::cat(&[v.as_tensor(), &all.narrow(0, n, all_rows - n)?], 0)?,
            Some(v) => v.as_tensor().clone(),
            None => all,
        };
        let (all_logits, all_hidden) = self.model.forward_with(&input, true, layer)?;
        let logits = all_logits.narrow(0, 0, n)?;
        let supervised = candle_nn::loss::cross_entropy(&logits, &y)?;
        let mut regularizers: Option<Tensor> = None;
        let mut graph_value = 0.0;
        if let Some((batch, config)) = &neighbors {
            let pairs = batch.pairs();
            let outputs = all_hidden.as_ref().unwrap_or(&all_logits);
            let (s, t) = (outputs.narrow(0, 0, n)?, outputs.narrow(0, n, pairs)?);
            let g = graph_loss(&s, &t, batch, config)?;
            graph_value = g.to_dtype(DType::F32)?.to_scalar::<f32>()? as f64;
            regularizers = Some((g * config.multiplier)?);
        }
        let mut adversarial_value = 0.0;
        match (self.adversarial, &x_var) {
            (Some(config), Some(x_var)) => {
                let mut grads = supervised.backward()?;
                let gx = grads.remove(x_var.as_tensor()).map(|g| to_array(&g)).transpose()?;
                let x_nd = to_array(&x)?;
                let seed = self.config.seed ^ ((context.epoch as u64) << 32) ^ context.batch as u64;
                let x_adv = gen_adv_neighbor(x_nd.view(), gx, &config.neighbor, seed, |xt| {
                    input_gradient(self.model, xt, &y, true)
                })?;
                let x_adv_t = from_array(&x_adv, &self.device)?;
                let adv_logits = self.model.forward_t(&x_adv_t, true)?;
                let adv_loss = match &config.loss {
                    AdvLoss::Supervised => candle_nn::loss::cross_entropy(&adv_logits, &y)?,
                    AdvLoss::Distance(distance) => {
                        let ones = Tensor::ones(rows.len(), DType::F32, &self.device)?;
                        pairwise_distance(&logits, &adv_logits, &ones, distance)?
                    }
                };
                adversarial_value = adv_loss.to_dtype(DType::F32)?.to_scalar::<f32>()? as f64;
                let scaled = (adv_loss * config.multiplier)?;
                let extra = match regularizers.take() {
                    Some(r) => (r + scaled)?,
                    None => scaled,
                };
                optimizer.accumulate(&mut grads, &extra.backward()?)?;
                optimizer.step(&grads)?;
                regularizers = Some(extra);
                if context.recording {
                    self.remember(rows, context, &x_nd, &x_adv, &logits, &adv_logits, labels, config)?;
                }
            }
            _ => {
                let total = match &regularizers {
                    Some(r) => (&supervised + r)?,
                    None => supervised.clone(),
                };
                optimizer.step(&total.backward()?)?;
            }
        }
        let correct = logits.argmax(1)?.eq(&y)?.to_dtype(DType::F32)?.sum_all()?.to_scalar::<f32>()? as f64;
        let supervised_value = supervised.to_dtype(DType::F32)?.to_scalar::<f32>()? as f64;
        let regularizer_value = match regularizers {
            Some(r) => r.to_dtype(DType::F32)?.to_scalar::<f32>()? as f64,
            None => 0.0,
        };
        Ok(Step {
            loss: supervised_value + regularizer_value,
            supervised: supervised_value,
            graph: graph_value,
            adversarial: adversarial_value,
            correct,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn remember(
        &self,
        rows: &[usize],
        context: &StepContext,
        x: &Array2<f32>,
        x_adv: &Array2<f32>,
        logits: &Tensor,
        adv_logits: &Tensor,
        labels: &Tensor,
        config: &AdvRegConfig,
    ) -> Result<()> {
        let Some((_, record)) = &self.record else { return Ok(()) };
        let predicted: Vec<u32> = logits.argmax(1)?.to_vec1()?;
        let predicted_adv: Vec<u32> = adv_logits.argmax(1)?.to_vec1()?;
        let all_labels: Vec<u32> = labels.to_vec1()?;
        let mut record = record.borrow_mut();
        for (i, &row) in rows.iter().enumerate() {
            let delta: Vec<f32> = x_adv.row(i).iter().zip(x.row(i)).map(|(a, b)| a - b).collect();
            record.examples.push(AdversarialExample {
                sample_id: context.ids[row].clone(),
                epoch: context.epoch,
                features: x_adv.row(i).to_vec(),
                perturbation_norm: record::norm(&delta, config.neighbor.grad_norm),
                label: all_labels[row],
                prediction: predicted[i],
                adversarial_prediction: predicted_adv[i],
            });
        }
        record.multiplier = config.multiplier as f32;
        Ok(())
    }
}

/// Where a step is in the run.
struct StepContext<'d> {
    epoch: usize,
    batch: usize,
    recording: bool,
    ids: &'d [String],
}

fn to_array(t: &Tensor) -> Result<Array2<f32>> {
    let (rows, cols) = t.dims2()?;
    Array2::from_shape_vec((rows, cols), t.flatten_all()?.to_vec1::<f32>()?)
        .map_err(|e| candle_core::Error::Msg(e.to_string()))
}

fn from_array(a: &Array2<f32>, device: &Device) -> Result<Tensor> {
    let standard = a.as_standard_layout();
    Tensor::from_slice(standard.as_slice().unwrap_or(&[]), a.dim(), device)
}

/// `∇ₓ CE(y, f(x))` at `x`: what FGSM/PGD follow.
///
/// # Errors
/// A candle error of the forward or backward pass.
pub fn input_gradient(model: &dyn Model, x: ArrayView2<f32>, y: &Tensor, train: bool) -> Result<Array2<f32>> {
    let var = Var::from_tensor(&from_array(&x.to_owned(), &Device::Cpu)?)?;
    let loss = candle_nn::loss::cross_entropy(&model.forward_t(var.as_tensor(), train)?, y)?;
    let grads = loss.backward()?;
    match grads.get(var.as_tensor()) {
        Some(g) => to_array(g),
        None => Ok(Array2::zeros(x.dim())),
    }
}

struct Step {
    loss: f64,
    supervised: f64,
    graph: f64,
    adversarial: f64,
    correct: f64,
}

#[derive(Default)]
struct EpochSums {
    loss: f64,
    supervised: f64,
    graph: f64,
    adversarial: f64,
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
