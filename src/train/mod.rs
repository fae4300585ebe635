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
mod denormal;
mod history;
mod loss;
mod optim;
mod record;

pub use checkpoint::{load_checkpoint, save_checkpoint, Checkpoint, CheckpointError, CheckpointMeta};
pub use history::{EpochRecord, History};
pub use loss::cross_entropy;
use optim::Optimizer;
pub use optim::OptimizerConfig;
pub use record::{AdversarialExample, AdversarialRecord};

use crate::data::Dataset;
use crate::model::{Mlp, Model, Tape};
use crate::neighbors::{NeighborBatch, NeighborTable};
use crate::regularize::{gen_adv_neighbor, graph_loss, pairwise_distance, AdvLoss, AdvRegConfig, GraphRegConfig};
use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Result, Tensor, Var};
use candle_nn::VarMap;
use ndarray::{Array2, ArrayView2};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::sync::Mutex;
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
pub type Progress<'a> = &'a mut (dyn FnMut(usize, usize, usize) + Send);

/// Trains a model with optional graph regularization.
pub struct Trainer<'a> {
    model: &'a dyn Model,
    vars: &'a VarMap,
    config: TrainConfig,
    graph: Option<(&'a NeighborTable, &'a GraphRegConfig)>,
    adversarial: Option<&'a AdvRegConfig>,
    record: Option<(usize, Mutex<AdversarialRecord>)>,
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
        self.record = Some((every.max(1), Mutex::new(AdversarialRecord::default())));
        self
    }

    /// The adversarial neighbors recorded so far (see [`Trainer::record_adversarial`]).
    pub fn take_record(&self) -> AdversarialRecord {
        self.record
            .as_ref()
            .map(|(_, r)| std::mem::take(&mut *r.lock().unwrap_or_else(|e| e.into_inner())))
            .unwrap_or_default()
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
        // Run on a rayon worker, so that a product split over the pool uses its threads and no
        // more: called from outside the pool, the caller would be a thread too many, competing
        // with the workers that spin on after a parallel product.
        rayon::scope(|_| {
            let _flush = denormal::FlushDenormals::new();
            self.fit_on_pool(train, validation, progress)
        })
    }

    fn fit_on_pool(&self, train: &Dataset, validation: Option<&Dataset>, progress: Progress) -> Result<History> {
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
        let layer = self.graph.and_then(|(_, c)| c.layer.as_deref());
        let mut fused = match self.model.as_mlp().filter(|m| m.fused()) {
            Some(mlp) => Some(FusedNet::new(mlp, layer, &optimizer)?),
            None => None,
        };
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
                let step = match &mut fused {
                    Some(net) => self.step_fused(net, rows, features, &labels, &mut optimizer, &context)?,
                    None => self.step(rows, features, &labels, &mut optimizer, &context)?,
                };
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

    /// A batch's inputs in one buffer: the samples' rows, then their explicit neighbors' rows (one
    /// forward pass, one large product per layer instead of two small ones).
    fn batch_input(&self, rows: &[usize], features: ArrayView2<f32>) -> Result<BatchInput<'a>> {
        let d = features.ncols();
        let mut buffer = Vec::with_capacity(rows.len() * d * 2);
        for &r in rows {
            crate::neighbors::extend_row(&mut buffer, features.row(r));
        }
        let neighbors = match self.graph {
            Some((table, config)) if config.multiplier > 0.0 => {
                Some((table.append_batch(rows, &mut buffer, &self.device)?, config)).filter(|(b, _)| b.pairs() > 0)
            }
            _ => None,
        };
        let rows = buffer.len() / d.max(1);
        Ok(BatchInput { buffer, rows, neighbors })
    }

    /// The graph regularizer over `outputs` (the batch's `n` samples, then their neighbors):
    /// `multiplier · L_graph` and the value of `L_graph`.
    fn graph_term(&self, outputs: &Tensor, n: usize, input: &BatchInput) -> Result<Option<(Tensor, f64)>> {
        let Some((batch, config)) = &input.neighbors else { return Ok(None) };
        let (s, t) = (outputs.narrow(0, 0, n)?, outputs.narrow(0, n, batch.pairs())?);
        let g = graph_loss(&s, &t, batch, config)?;
        let value = g.to_dtype(DType::F32)?.to_scalar::<f32>()? as f64;
        Ok(Some(((g * config.multiplier)?, value)))
    }

    /// The seed of a batch's adversarial generation (random starts of PGD).
    fn adversarial_seed(&self, context: &StepContext) -> u64 {
        self.config.seed ^ ((context.epoch as u64) << 32) ^ context.batch as u64
    }

    fn step(
        &self,
        rows: &[usize],
        features: ArrayView2<f32>,
        labels: &Tensor,
        optimizer: &mut Optimizer,
        context: &StepContext,
    ) -> Result<Step> {
        let y = batch_labels(labels, rows)?;
        let layer = self.graph.and_then(|(_, c)| c.layer.as_deref());
        let (n, d) = (rows.len(), features.ncols());
        let mut input = self.batch_input(rows, features)?;
        let all = Tensor::from_vec(std::mem::take(&mut input.buffer), (input.rows, d), &self.device)?;
        let x = all.narrow(0, 0, n)?;
        // With adversarial regularization the samples are a variable, so that one backward gives ∇ₓ.
        let x_var = match self.adversarial {
            Some(_) => Some(Var::from_tensor(&x)?),
            None => None,
        };
        let model_input = match &x_var {
            Some(v) if input.rows > n => Tensor::cat(&[v.as_tensor(), &all.narrow(0, n, input.rows - n)?], 0)?,
            Some(v) => v.as_tensor().clone(),
            None => all,
        };
        let (all_logits, all_hidden) = self.model.forward_with(&model_input, true, layer)?;
        let logits = all_logits.narrow(0, 0, n)?;
        let supervised = cross_entropy(&logits, &y)?;
        let graph = self.graph_term(all_hidden.as_ref().unwrap_or(&all_logits), n, &input)?;
        let graph_value = graph.as_ref().map_or(0.0, |g| g.1);
        let mut regularizers = graph.map(|g| g.0);
        let mut adversarial_value = 0.0;
        match (self.adversarial, &x_var) {
            (Some(config), Some(x_var)) => {
                let mut grads = supervised.backward()?;
                let gx = grads.remove(x_var.as_tensor()).map(|g| to_array(&g)).transpose()?;
                let x_nd = to_array(&x)?;
                let x_adv =
                    gen_adv_neighbor(x_nd.view(), gx, &config.neighbor, self.adversarial_seed(context), |xt| {
                        input_gradient(self.model, xt, &y, true)
                    })?;
                let adv_logits = self.model.forward_t(&from_array(&x_adv, &self.device)?, true)?;
                let adv_loss = adversarial_loss(config, &logits, &adv_logits, &y)?;
                adversarial_value = adv_loss.to_dtype(DType::F32)?.to_scalar::<f32>()? as f64;
                let extra = add_term(regularizers.take(), (adv_loss * config.multiplier)?)?;
                optimizer.accumulate(&mut grads, &extra.backward()?)?;
                optimizer.step(&grads)?;
                regularizers = Some(extra);
                if context.recording {
                    self.remember(rows, context, x_nd.view(), x_adv.view(), &logits, &adv_logits, labels, config)?;
                }
            }
            _ => optimizer.step(&add_term(regularizers.clone(), supervised.clone())?.backward()?)?,
        }
        Step::new(&logits, &y, &supervised, regularizers.as_ref(), graph_value, adversarial_value)
    }

    /// [`Trainer::step`] for a built-in MLP: the network's own forward and backward passes
    /// ([`Mlp::forward_tape`](crate::model::Mlp)), candle only for the losses over its outputs.
    fn step_fused(
        &self,
        net: &mut FusedNet,
        rows: &[usize],
        features: ArrayView2<f32>,
        labels: &Tensor,
        optimizer: &mut Optimizer,
        context: &StepContext,
    ) -> Result<Step> {
        let y = batch_labels(labels, rows)?;
        let (n, d) = (rows.len(), features.ncols());
        let mut input = self.batch_input(rows, features)?;
        let tape = net.mlp.forward_tape(std::mem::take(&mut input.buffer), input.rows, true)?;
        let classes = tape.logits().len() / input.rows.max(1);
        let all_logits = Var::from_slice(tape.logits(), (input.rows, classes), &self.device)?;
        let hidden = match net.hidden {
            Some(i) => Some((
                i,
                Var::from_slice(tape.hidden(i), (input.rows, tape.hidden(i).len() / input.rows), &self.device)?,
            )),
            None => None,
        };
        let logits = all_logits.narrow(0, 0, n)?;
        let supervised = cross_entropy(&logits, &y)?;
        let graph = self.graph_term(hidden.as_ref().map_or(all_logits.as_tensor(), |h| h.1.as_tensor()), n, &input)?;
        let graph_value = graph.as_ref().map_or(0.0, |g| g.1);
        let mut regularizers = graph.map(|g| g.0);
        let mut adversarial_value = 0.0;
        net.stale = true;
        match self.adversarial {
            Some(config) => {
                let gx = net.backprop(&tape, &supervised.backward()?, &all_logits, None, true)?;
                let x_nd = ArrayView2::from_shape((n, d), &tape.input()[..n * d])
                    .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
                let gx = gx.map(|mut g| {
                    g.truncate(n * d);
                    to_shape(g, (n, d))
                });
                let x_adv =
                    gen_adv_neighbor(x_nd, gx.transpose()?, &config.neighbor, self.adversarial_seed(context), |xt| {
                        input_gradient(self.model, xt, &y, true)
                    })?;
                let x_adv = match x_adv.is_standard_layout() {
                    true => x_adv.into_raw_vec_and_offset().0,
                    false => x_adv.iter().copied().collect(),
                };
                let adv_tape = net.mlp.forward_tape(x_adv, n, true)?;
                let adv_logits = Var::from_slice(adv_tape.logits(), (n, classes), &self.device)?;
                let adv_loss = adversarial_loss(config, &logits, adv_logits.as_tensor(), &y)?;
                adversarial_value = adv_loss.to_dtype(DType::F32)?.to_scalar::<f32>()? as f64;
                let extra = add_term(regularizers.take(), (adv_loss * config.multiplier)?)?;
                let grads = extra.backward()?;
                net.backprop(&tape, &grads, &all_logits, hidden.as_ref(), false)?;
                net.backprop(&adv_tape, &grads, &adv_logits, None, false)?;
                regularizers = Some(extra);
                if context.recording {
                    let x_adv = ArrayView2::from_shape((n, d), adv_tape.input())
                        .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
                    self.remember(rows, context, x_nd, x_adv, &logits, adv_logits.as_tensor(), labels, config)?;
                }
            }
            _ => {
                let grads = add_term(regularizers.clone(), supervised.clone())?.backward()?;
                net.backprop(&tape, &grads, &all_logits, hidden.as_ref(), false)?;
            }
        }
        if net.stale {
            candle_core::bail!("no gradient reached the model's parameters");
        }
        optimizer.step_slices(net.slots.iter().copied().zip(net.grads.iter().map(Vec::as_slice)))?;
        Step::new(&logits, &y, &supervised, regularizers.as_ref(), graph_value, adversarial_value)
    }

    #[allow(clippy::too_many_arguments)]
    fn remember(
        &self,
        rows: &[usize],
        context: &StepContext,
        x: ArrayView2<f32>,
        x_adv: ArrayView2<f32>,
        logits: &Tensor,
        adv_logits: &Tensor,
        labels: &Tensor,
        config: &AdvRegConfig,
    ) -> Result<()> {
        let Some((_, record)) = &self.record else { return Ok(()) };
        let predicted: Vec<u32> = logits.argmax(1)?.to_vec1()?;
        let predicted_adv: Vec<u32> = adv_logits.argmax(1)?.to_vec1()?;
        let all_labels: Vec<u32> = labels.to_vec1()?;
        let mut record =
            record.lock().map_err(|_| candle_core::Error::Msg("adversarial record lock poisoned".into()))?;
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

/// A batch's inputs (see [`Trainer::batch_input`]).
struct BatchInput<'g> {
    /// `[rows, d]` row-major: the samples, then their neighbors.
    buffer: Vec<f32>,
    rows: usize,
    neighbors: Option<(NeighborBatch, &'g GraphRegConfig)>,
}

/// A built-in MLP trained through its own passes, with its gradient buffers and where each
/// parameter sits among the optimizer's variables.
struct FusedNet<'m> {
    mlp: &'m Mlp,
    /// The regularized hidden layer, if the graph regularizer names one.
    hidden: Option<usize>,
    grads: Vec<Vec<f32>>,
    /// Whether `grads` still holds the previous step's values (the next backward writes over them).
    stale: bool,
    slots: Vec<usize>,
}

impl<'m> FusedNet<'m> {
    fn new(mlp: &'m Mlp, layer: Option<&str>, optimizer: &Optimizer) -> Result<Self> {
        let slots = mlp.parameters().iter().map(|p| optimizer.index_of(p)).collect::<Option<Vec<usize>>>();
        let Some(slots) = slots else {
            candle_core::bail!("the model's parameters are not among the trained variables")
        };
        Ok(FusedNet { mlp, hidden: mlp.hidden_index(layer)?, grads: mlp.zero_grads(), stale: true, slots })
    }

    /// Backpropagates the losses' gradients in `grads` with respect to `logits` (and a hidden
    /// layer's output) through `tape`, adding into the parameter gradients; returns `∂L/∂x` if
    /// `want_input`.
    fn backprop(
        &mut self,
        tape: &Tape,
        grads: &GradStore,
        logits: &Var,
        hidden: Option<&(usize, Var)>,
        want_input: bool,
    ) -> Result<Option<Vec<f32>>> {
        let flat = |t: &Tensor| t.flatten_all()?.to_vec1::<f32>();
        let dh = match hidden.and_then(|(i, v)| grads.get(v.as_tensor()).map(|g| (*i, g))) {
            Some((i, g)) => Some((i, flat(g)?)),
            None => None,
        };
        let dl = match grads.get(logits.as_tensor()) {
            Some(g) => flat(g)?,
            None if dh.is_some() || want_input => vec![0.0; tape.logits().len()],
            None => return Ok(None),
        };
        let dh = dh.as_ref().map(|(i, g)| (*i, g.as_slice()));
        let dx = self.mlp.backward_tape(tape, &dl, dh, &mut self.grads, !self.stale, want_input)?;
        self.stale = false;
        Ok(dx)
    }
}

/// The labels of the batch `rows`.
fn batch_labels(labels: &Tensor, rows: &[usize]) -> Result<Tensor> {
    let index = Tensor::from_vec(rows.iter().map(|&r| r as u32).collect::<Vec<u32>>(), rows.len(), labels.device())?;
    labels.index_select(&index, 0)
}

/// `a + b`, or `b` alone.
fn add_term(a: Option<Tensor>, b: Tensor) -> Result<Tensor> {
    match a {
        Some(a) => a + b,
        None => Ok(b),
    }
}

/// The adversarial loss of [`AdvRegConfig::loss`] for the samples' `logits` and their adversarial
/// neighbors' `adv_logits`.
fn adversarial_loss(config: &AdvRegConfig, logits: &Tensor, adv_logits: &Tensor, y: &Tensor) -> Result<Tensor> {
    match &config.loss {
        AdvLoss::Supervised => cross_entropy(adv_logits, y),
        AdvLoss::Distance(distance) => {
            let ones = Tensor::ones(y.dim(0)?, DType::F32, y.device())?;
            pairwise_distance(logits, adv_logits, &ones, distance)
        }
    }
}

fn to_shape(v: Vec<f32>, shape: (usize, usize)) -> Result<Array2<f32>> {
    Array2::from_shape_vec(shape, v).map_err(|e| candle_core::Error::Msg(e.to_string()))
}

fn to_array(t: &Tensor) -> Result<Array2<f32>> {
    to_shape(t.flatten_all()?.to_vec1::<f32>()?, t.dims2()?)
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
    let loss = cross_entropy(&model.forward_t(var.as_tensor(), train)?, y)?;
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

impl Step {
    fn new(
        logits: &Tensor,
        y: &Tensor,
        supervised: &Tensor,
        regularizers: Option<&Tensor>,
        graph: f64,
        adversarial: f64,
    ) -> Result<Self> {
        let scalar = |t: &Tensor| -> Result<f64> { Ok(t.to_dtype(DType::F32)?.to_scalar::<f32>()? as f64) };
        let correct = scalar(&logits.argmax(1)?.eq(y)?.to_dtype(DType::F32)?.sum_all()?)?;
        let supervised = scalar(supervised)?;
        let regularizers = regularizers.map(scalar).transpose()?.unwrap_or(0.0);
        Ok(Step { loss: supervised + regularizers, supervised, graph, adversarial, correct })
    }
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

/// Sets the number of CPU threads nsl's kernels (and rayon) use. Call it before any tensor work:
/// rayon's global pool is created once. On 2 cores, 1 thread is often faster for small models.
///
/// candle's own element-wise ops get one thread unless `CANDLE_NUM_THREADS` says otherwise: its
/// pool's workers spin after every op, and on a small machine they take the cores the products
/// need (set `CANDLE_NUM_THREADS=2` with `--threads 2` to compare).
pub fn set_threads(threads: usize) {
    // candle reads RAYON_NUM_THREADS at every matmul, CANDLE_NUM_THREADS when its pool starts;
    // rayon reads RAYON_NUM_THREADS when its pool starts.
    std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
    let _ = rayon::ThreadPoolBuilder::new().num_threads(threads).build_global();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::regularize::DistanceConfig;

    /// Both forms of the adversarial loss against hand-computed values: samples' logits
    /// `[[0, 0], [1, 2]]`, their adversarial neighbors' `[[ln 3, 0], [1, 0]]`, labels `[0, 1]`.
    #[test]
    fn adversarial_loss_forms() {
        let dev = Device::Cpu;
        let logits = Tensor::new(&[[0.0f32, 0.0], [1.0, 2.0]], &dev).unwrap();
        let adv_logits = Tensor::new(&[[3f32.ln(), 0.0], [1.0, 0.0]], &dev).unwrap();
        let y = Tensor::new(&[0u32, 1], &dev).unwrap();
        let value = |loss: AdvLoss| {
            let config = AdvRegConfig { loss, ..Default::default() };
            adversarial_loss(&config, &logits, &adv_logits, &y).unwrap().to_scalar::<f32>().unwrap()
        };
        // Supervised (NSL): mean cross-entropy on the neighbors, (−ln ¾ + ln(e + 1)) / 2.
        let supervised = value(AdvLoss::Supervised);
        assert!((supervised - (-(0.75f32).ln() + (1f32.exp() + 1.0).ln()) / 2.0).abs() < 1e-5, "{supervised}");
        // Label-free: squared L2 per sample, (ln²3 + 4) / 2 (sum by non-zero weights, all weights 1).
        let distance = DistanceConfig { sum_over_axis: Some(-1), ..Default::default() };
        let label_free = value(AdvLoss::Distance(distance));
        assert!((label_free - (3f32.ln().powi(2) + 4.0) / 2.0).abs() < 1e-5, "{label_free}");
    }
}
