//! One training step, written once over a [`Backend`]: the batch (samples, then their explicit
//! neighbors, in one buffer and one forward pass), every loss term, the adversarial neighbors, the
//! optimizer update and what the step reports.
//!
//! # Order of work
//! 1. forward over the samples and their graph neighbors;
//! 2. the task's loss `L(y, f(x))` on the samples (softmax cross-entropy for multiclass; see
//!    [`Task`]), each weighted by its sample weight if any, the graph term over the (sample,
//!    neighbor) pairs, each pair's weight times its center's sample weight;
//! 3. with adversarial regularization: backward of `L` (parameter gradients and `∇ₓ`), the
//!    adversarial neighbors from `∇ₓ`, a forward over them, and one backward of the regularizers
//!    (`m_g · L_graph + m_a · L_adv`) through both passes — two backward passes, NSL's Keras wrapper
//!    does three; without: one backward of `L + m_g · L_graph`. With Madry's, TRADES' or MART's
//!    objective: the neighbors from the objective's inner maximization (its own gradients, in
//!    inference mode), a forward over them, and one backward of the whole objective (plus the graph
//!    and VAT terms) through both passes;
//! 4. the optimizer update.

use super::backend::{Backend, Outputs};
use super::optim::Optimizer;
use super::record::{self, AdversarialExample};
use crate::loss::{
    distill_loss, mart_terms, output_input_gradient, task_adversarial_loss, task_input_gradient, trades_kl,
    DistillConfig, Task,
};
use crate::model::Model;
use crate::neighbors::{extend_row, NeighborBatch, NeighborTable};
use crate::regularize::{
    gaussian_start, gen_adv_neighbor, graph_loss, graph_loss_in_batch, pairwise_distance, pgd_from,
    virtual_adv_direction, AdvObjective, AdvRegConfig, GraphRegConfig, VatConfig,
};
use crate::tensor::{to_array2, to_tensor};
use candle_core::{DType, Device, Result, Tensor};
use ndarray::{Array2, ArrayView2};

/// What a step needs from the trainer: the model (for PGD's and VAT's extra gradients), the
/// regularizers and the unlabeled centers.
pub(super) struct StepSetup<'a> {
    pub model: &'a dyn Model,
    pub graph: Option<(&'a NeighborTable, &'a GraphRegConfig)>,
    pub adversarial: Option<&'a AdvRegConfig>,
    pub vat: Option<&'a VatConfig>,
    /// Unlabeled centers: their features, their neighbors (with graph regularization), and the
    /// weight of the entropy term on their predictions.
    pub unlabeled: Option<Unlabeled<'a>>,
    pub seed: u64,
    /// The supervised loss.
    pub task: Task,
    /// Distillation from a teacher's probabilities, on every center that has them.
    pub distill: Option<Distill<'a>>,
}

/// The teacher of a [`StepSetup`]: its probabilities of the training samples and of the unlabeled
/// centers, row for row.
#[derive(Clone, Copy)]
pub(super) struct Distill<'a> {
    pub config: &'a DistillConfig,
    pub train: ArrayView2<'a, f32>,
    pub unlabeled: Option<ArrayView2<'a, f32>>,
}

/// The unlabeled centers of a [`StepSetup`].
#[derive(Clone, Copy)]
pub(super) struct Unlabeled<'a> {
    pub features: ArrayView2<'a, f32>,
    /// Their ids (for `in-batch` graph pairs).
    pub ids: &'a [String],
    pub table: Option<&'a NeighborTable>,
    pub entropy: f64,
}

/// Where a step is in the run.
pub(super) struct StepContext<'d> {
    pub epoch: usize,
    pub batch: usize,
    /// Keep this step's adversarial neighbors.
    pub recording: bool,
    pub ids: &'d [String],
    /// All training targets (see [`crate::eval::task_targets`]).
    pub labels: &'d Tensor,
    /// All training samples' weights, if any.
    pub weights: Option<&'d [f32]>,
    /// This step's multipliers (the configured ones, or their schedules' values).
    pub multipliers: Multipliers,
    /// The augmentation of the centers and the samples' item shape (`None` when off).
    pub augment: Option<(&'d crate::augment::AugmentConfig, &'d [usize])>,
}

/// The regularizers' multipliers of a step: the graph's (scaling every edge type's), the
/// adversarial and the virtual adversarial one; and the ε warm-up's factor of the adversarial step
/// size and radius ([`AdvRegConfig::epsilon_factor`], 1 without warm-up).
#[derive(Clone, Copy)]
pub(super) struct Multipliers {
    pub graph: f64,
    pub adversarial: f64,
    pub vat: f64,
    pub epsilon: f64,
}

/// A batch's inputs: the samples' rows, then their explicit neighbors' rows (one forward pass, one
/// large product per layer instead of two small ones).
struct BatchInput<'g> {
    /// `[rows, d]` row-major.
    buffer: Vec<f32>,
    rows: usize,
    neighbors: Option<(NeighborBatch, &'g GraphRegConfig)>,
    /// With `in-batch` graph pairs: each pair's neighbor as a position among the centers (the
    /// neighbors' outputs are the centers' own; no neighbor rows in `buffer`).
    positives: Option<Tensor>,
}

/// What a step reports.
pub(super) struct Step {
    pub loss: f64,
    pub supervised: f64,
    pub graph: f64,
    pub adversarial: f64,
    pub correct: f64,
    /// The model's number of outputs.
    pub classes: usize,
    /// The batch's outputs (detached), for the epoch's training metrics.
    pub outputs: Tensor,
    /// The adversarial neighbors kept (see [`StepContext::recording`]).
    pub recorded: Vec<AdversarialExample>,
    /// Unscaled virtual-adversarial and entropy losses (0 without them).
    pub vat: f64,
    pub entropy: f64,
}

impl StepSetup<'_> {
    /// The batch's input buffer: the labeled `rows`, the unlabeled `urows`, then the neighbors of
    /// both (each pair's weight scaled by its edge type's multiplier, see
    /// [`GraphRegConfig::edge_multipliers`]).
    fn batch_input(
        &self,
        rows: &[usize],
        urows: &[usize],
        features: ArrayView2<f32>,
        sample_weights: Option<&[f32]>,
        ids: &[String],
    ) -> Result<BatchInput<'_>> {
        let d = features.ncols();
        let mut buffer = Vec::with_capacity((rows.len() + urows.len()) * d * 2);
        for &r in rows {
            extend_row(&mut buffer, features.row(r));
        }
        if let Some(u) = &self.unlabeled {
            for &r in urows {
                extend_row(&mut buffer, u.features.row(r));
            }
        }
        let mut positives = None;
        let neighbors = match self.graph {
            Some((table, config)) if config.max_multiplier() > 0.0 && config.in_batch => {
                let (batch, targets) = self.in_batch_pairs(table, config, rows, urows, sample_weights, ids)?;
                positives = Some(targets);
                Some((batch, config)).filter(|(b, _)| b.pairs() > 0)
            }
            Some((table, config)) if config.max_multiplier() > 0.0 => {
                let [ll, lu, uu] = config.edge_multipliers();
                let max = config.max_multiplier();
                let factor = |m: f64| (m / max) as f32;
                let (mut index, mut weights) = (Vec::new(), Vec::new());
                // A labeled center's neighbors: among the labeled samples, or from the pool.
                table.append_pairs(rows, 0, [factor(ll), factor(lu)], &mut buffer, &mut index, &mut weights);
                // Sample weights apply to the graph term per center (unlabeled centers weigh 1).
                if let Some(sw) = sample_weights {
                    for (w, &i) in weights.iter_mut().zip(&index) {
                        *w *= sw[rows[i as usize]];
                    }
                }
                let mut slots = rows.len() * table.max_neighbors();
                if let Some(utable) = self.unlabeled.and_then(|u| u.table) {
                    // An unlabeled center's neighbors: among the unlabeled samples, or labeled ones.
                    let first = rows.len();
                    utable.append_pairs(urows, first, [factor(uu), factor(lu)], &mut buffer, &mut index, &mut weights);
                    slots += urows.len() * utable.max_neighbors();
                }
                let batch = NeighborBatch::new(index, weights, slots, &Device::Cpu)?;
                Some((batch, config)).filter(|(b, _)| b.pairs() > 0)
            }
            _ => None,
        };
        let rows = buffer.len() / d.max(1);
        Ok(BatchInput { buffer, rows, neighbors, positives })
    }

    /// `in-batch` graph pairs: each center's neighbors that are centers of this batch too (the
    /// labeled `rows` at positions `0..`, then the unlabeled `urows`), weighted as
    /// [`StepSetup::batch_input`]'s pairs; returns the pairs and each pair's neighbor position.
    fn in_batch_pairs(
        &self,
        table: &NeighborTable,
        config: &GraphRegConfig,
        rows: &[usize],
        urows: &[usize],
        sample_weights: Option<&[f32]>,
        ids: &[String],
    ) -> Result<(NeighborBatch, Tensor)> {
        let [ll, lu, uu] = config.edge_multipliers();
        let max = config.max_multiplier();
        let factor = |m: f64| (m / max) as f32;
        let n = rows.len() as u32;
        // The centers' positions by id; a labeled center wins over an unlabeled one with its id.
        let mut position: std::collections::HashMap<&str, u32> =
            rows.iter().enumerate().map(|(p, &r)| (ids[r].as_str(), p as u32)).collect();
        let unlabeled = self.unlabeled.filter(|_| !urows.is_empty());
        if let Some(u) = unlabeled {
            for (p, &r) in urows.iter().enumerate() {
                position.entry(u.ids[r].as_str()).or_insert(n + p as u32);
            }
        }
        let (mut index, mut targets, mut weights) = (Vec::new(), Vec::new(), Vec::new());
        let mut pair = |i: u32, id: &str, w: f32, [to_labeled, to_unlabeled]: [f64; 2]| {
            let Some(&j) = position.get(id).filter(|&&j| j != i) else { return };
            let w = w * factor(if j < n { to_labeled } else { to_unlabeled });
            if w != 0.0 {
                index.push(i);
                targets.push(j);
                weights.push(w);
            }
        };
        for (i, &r) in rows.iter().enumerate() {
            let sw = sample_weights.map_or(1.0, |sw| sw[r]);
            for (id, _, w) in table.neighbors(r) {
                pair(i as u32, id, w * sw, [ll, lu]);
            }
        }
        let mut slots = rows.len() * table.max_neighbors();
        if let Some(utable) = unlabeled.and_then(|u| u.table) {
            for (p, &r) in urows.iter().enumerate() {
                for (id, _, w) in utable.neighbors(r) {
                    pair(n + p as u32, id, w, [lu, uu]);
                }
            }
            slots += urows.len() * utable.max_neighbors();
        }
        let pairs = weights.len();
        let batch = NeighborBatch::new(index, weights, slots, &Device::Cpu)?;
        Ok((batch, Tensor::from_vec(targets, pairs, &Device::Cpu)?))
    }

    /// `multiplier · L_graph` over `outputs` (the batch's `n` samples, then their neighbors), and the
    /// value of `L_graph`.
    fn graph_term(
        &self,
        outputs: &Tensor,
        n: usize,
        input: &BatchInput,
        multiplier: f64,
    ) -> Result<Option<(Tensor, f64)>> {
        let Some((batch, config)) = &input.neighbors else { return Ok(None) };
        let s = outputs.narrow(0, 0, n)?;
        let g = match &input.positives {
            Some(p) => graph_loss_in_batch(&s, p, batch, config)?,
            None => graph_loss(&s, &outputs.narrow(0, n, batch.pairs())?, batch, config)?,
        };
        Ok(Some(((&g * multiplier)?, scalar(&g)?)))
    }

    /// The seed of a batch's adversarial generation (random starts of PGD).
    fn adversarial_seed(&self, context: &StepContext) -> u64 {
        self.seed ^ ((context.epoch as u64) << 32) ^ context.batch as u64
    }

    /// The adversarial neighbors of Madry's, TRADES' or MART's inner maximization (inference mode,
    /// the ε warm-up applied), row-major `[n, d]`: PGD on the task's loss from the configured start
    /// (Madry), on `KL(p ‖ ·)` from `x + 0.001·N(0, I)` (TRADES, `p` the clean prediction in
    /// inference mode, held fixed), on the cross-entropy from that start (MART). With `random-init`
    /// given, TRADES and MART start from a uniform point of the ε-ball instead.
    fn robust_neighbor(
        &self,
        config: &AdvRegConfig,
        x: ArrayView2<f32>,
        y: &Tensor,
        w: Option<&Tensor>,
        context: &StepContext,
    ) -> Result<Vec<f32>> {
        let neighbor = config.neighbor.scaled(context.multipliers.epsilon);
        let seed = self.adversarial_seed(context);
        let start = |x: ArrayView2<f32>| match neighbor.random_init {
            true => None,
            false => Some(gaussian_start(x, 0.001, &neighbor, seed)),
        };
        let labels_loss = |xt: ArrayView2<f32>| task_input_gradient(self.model, xt, self.task, y, w, false);
        let x_adv = match config.objective {
            AdvObjective::Trades => {
                let clean = self.model.forward_encoded(&to_tensor(x)?, false, None)?.0.detach();
                let kl = |xt: ArrayView2<f32>| {
                    output_input_gradient(self.model, xt, false, |out| trades_kl(self.task, &clean, out, w))
                };
                match start(x) {
                    Some(from) => pgd_from(x, from, None, &neighbor, kl)?,
                    None => gen_adv_neighbor(x, None, &neighbor, seed, kl)?,
                }
            }
            AdvObjective::Mart => match start(x) {
                Some(from) => pgd_from(x, from, None, &neighbor, labels_loss)?,
                None => gen_adv_neighbor(x, None, &neighbor, seed, labels_loss)?,
            },
            _ => gen_adv_neighbor(x, None, &neighbor, seed, labels_loss)?,
        };
        Ok(into_vec(x_adv))
    }

    /// One step on the labeled training samples `rows` and the unlabeled centers `urows`.
    pub(super) fn step<B: Backend>(
        &self,
        backend: &mut B,
        rows: &[usize],
        urows: &[usize],
        features: ArrayView2<f32>,
        optimizer: &mut Optimizer,
        context: &StepContext,
    ) -> Result<Step> {
        let y = batch_labels(context.labels, rows)?;
        let (n, d) = (rows.len(), features.ncols());
        let batch_weights: Option<Vec<f32>> = context.weights.map(|all| rows.iter().map(|&r| all[r]).collect());
        let w = batch_weights.as_ref().map(|v| Tensor::from_slice(v, n, &Device::Cpu)).transpose()?;
        let centers = n + urows.len();
        let mut input = self.batch_input(rows, urows, features, context.weights, context.ids)?;
        if let Some((augment, shape)) = context.augment {
            // The centers only, before anything reads them (neighbors stay as they are).
            // (The trainer checked the shape: the buffer holds `centers` whole items.)
            augment
                .apply(&mut input.buffer[..centers * d], shape, self.seed, context.epoch, context.batch)
                .map_err(candle_core::Error::wrap)?;
        }
        // The clean samples, kept for the adversarial neighbors (the buffer moves into the pass).
        let x = match self.adversarial {
            Some(_) => Some(to_shape(input.buffer[..n * d].to_vec(), (n, d))?),
            None => None,
        };
        let x_centers = match self.vat {
            Some(_) => Some(to_shape(input.buffer[..centers * d].to_vec(), (centers, d))?),
            None => None,
        };
        let hidden = self.graph.is_some_and(|(_, c)| c.layer.is_some());
        // ∇ₓ at the clean samples is the first PGD step of NSL's form, unless PGD starts from a random
        // point (then the first gradient is taken there) or another objective crafts the neighbor
        // itself: only then does the pass keep the input's gradient.
        let clean_gradient = x.is_some()
            && self.adversarial.is_some_and(|c| c.objective == AdvObjective::Nsl && !c.neighbor.random_init);
        let (out, pass) =
            backend.forward(std::mem::take(&mut input.buffer), input.rows, hidden, clean_gradient.then_some(n))?;
        let Outputs { logits: all_logits, hidden, encoded } = out;
        // A model with an encoder (token inputs) is perturbed in its encoded input, never in the ids.
        let (x, x_centers) = match &encoded {
            Some(e) => (
                x.map(|_| to_array2(&e.narrow(0, 0, n)?)).transpose()?,
                x_centers.map(|_| to_array2(&e.narrow(0, 0, centers)?)).transpose()?,
            ),
            None => (x, x_centers),
        };
        let logits = all_logits.narrow(0, 0, n)?;
        let supervised = self.task.loss(&logits, &y, w.as_ref())?;
        let graph =
            self.graph_term(hidden.as_ref().unwrap_or(&all_logits), centers, &input, context.multipliers.graph)?;
        let graph_value = graph.as_ref().map_or(0.0, |g| g.1);
        let mut regularizers = graph.map(|g| g.0);
        let (mut entropy_value, mut vat_value) = (0.0, 0.0);
        if let Some(d) = self.distill.filter(|d| d.config.multiplier > 0.0) {
            // The labeled centers, then the unlabeled ones (when the teacher has them): the first
            // rows of the pass.
            let classes = d.train.ncols();
            let taught = n + d.unlabeled.map_or(0, |_| urows.len());
            let mut q: Vec<f32> = Vec::with_capacity(taught * classes);
            for &r in rows {
                q.extend(d.train.row(r).iter());
            }
            if let Some(u) = d.unlabeled {
                for &r in urows {
                    q.extend(u.row(r).iter());
                }
            }
            let q = Tensor::from_vec(q, (taught, classes), &Device::Cpu)?;
            let kd = distill_loss(&all_logits.narrow(0, 0, taught)?, &q, d.config.temperature)?;
            regularizers = Some(add_term(regularizers, (kd * d.config.multiplier)?)?);
        }
        if let Some(u) = self.unlabeled.filter(|u| u.entropy > 0.0 && !urows.is_empty()) {
            let h = entropy(&all_logits.narrow(0, n, urows.len())?)?;
            entropy_value = scalar(&h)?;
            regularizers = Some(add_term(regularizers, (h * u.entropy)?)?);
        }
        let mut vat_pass = None;
        if let (Some(config), Some(xc)) = (self.vat, &x_centers) {
            let clean = all_logits.narrow(0, 0, centers)?.detach();
            // Each center's pair weighs its sample weight (unlabeled centers 1).
            let ones = match &batch_weights {
                Some(bw) => {
                    let mut cw = bw.clone();
                    cw.resize(centers, 1.0);
                    Tensor::from_vec(cw, centers, &Device::Cpu)?
                }
                None => Tensor::ones(centers, DType::F32, &Device::Cpu)?,
            };
            let seed = self.adversarial_seed(context) ^ crate::config::seed_streams::VAT_DIRECTION;
            let direction = virtual_adv_direction(xc.view(), config, seed, |probe| {
                output_input_gradient(self.model, probe, true, |out| {
                    pairwise_distance(&clean, out, &ones, &config.distance)
                })
            })?;
            let x_vat = xc + &(direction * config.epsilon as f32);
            let (vat_out, vpass) = backend.forward_perturbed(&pass, x_vat.into_raw_vec_and_offset().0, centers)?;
            let v = pairwise_distance(&clean, &vat_out.logits, &ones, &config.distance)?;
            vat_value = scalar(&v)?;
            regularizers = Some(add_term(regularizers, (v * context.multipliers.vat)?)?);
            vat_pass = Some(vpass);
        }
        let mut adversarial_value = 0.0;
        // With `--record-adversarial`: the adversarial inputs, their logits, the settings and the clean rows.
        let mut to_record = None;
        let mut objective_value = None;
        match (self.adversarial, x) {
            (Some(config), Some(x)) if config.objective == AdvObjective::Nsl => {
                let gx = backend.backward(&supervised, &[&pass], clean_gradient)?;
                let neighbor = config.neighbor.scaled(context.multipliers.epsilon);
                let x_adv = gen_adv_neighbor(x.view(), gx, &neighbor, self.adversarial_seed(context), |xt| {
                    task_input_gradient(self.model, xt, self.task, &y, w.as_ref(), true)
                })?;
                let x_adv = into_vec(x_adv);
                let kept = context.recording.then(|| x_adv.clone());
                let (adv_out, adv_pass) = backend.forward_perturbed(&pass, x_adv, n)?;
                let adv_loss = task_adversarial_loss(config, self.task, &logits, &adv_out.logits, &y, w.as_ref())?;
                adversarial_value = scalar(&adv_loss)?;
                let extra = add_term(regularizers.take(), (adv_loss * context.multipliers.adversarial)?)?;
                let mut passes = vec![&pass, &adv_pass];
                passes.extend(vat_pass.as_ref());
                backend.backward(&extra, &passes, false)?;
                regularizers = Some(extra);
                to_record = kept.map(|x_adv| (x_adv, adv_out.logits.clone(), config, x));
            }
            (Some(config), Some(x)) => {
                // Madry, TRADES, MART: the inner maximization in inference mode, then one backward of
                // the whole objective through the clean and the adversarial pass.
                let x_adv = self.robust_neighbor(config, x.view(), &y, w.as_ref(), context)?;
                let kept = context.recording.then(|| x_adv.clone());
                let (adv_out, adv_pass) = backend.forward_perturbed(&pass, x_adv, n)?;
                let m = context.multipliers.adversarial;
                let (term, value) = match config.objective {
                    AdvObjective::Madry => {
                        let adv = self.task.loss(&adv_out.logits, &y, w.as_ref())?;
                        let value = scalar(&adv)?;
                        ((adv * m)?, value)
                    }
                    AdvObjective::Trades => {
                        let kl = trades_kl(self.task, &logits, &adv_out.logits, w.as_ref())?;
                        let value = scalar(&kl)?;
                        ((&supervised + (kl * m)?)?, value)
                    }
                    _ => {
                        let (bce, kl) = mart_terms(&logits, &adv_out.logits, &y, w.as_ref())?;
                        let value = scalar(&kl)?;
                        ((bce + (kl * m)?)?, value)
                    }
                };
                adversarial_value = value;
                let total = add_term(regularizers.take(), term)?;
                let mut passes = vec![&pass, &adv_pass];
                passes.extend(vat_pass.as_ref());
                backend.backward(&total, &passes, false)?;
                objective_value = Some(scalar(&total)?);
                to_record = kept.map(|x_adv| (x_adv, adv_out.logits.clone(), config, x));
            }
            _ => {
                let mut passes = vec![&pass];
                passes.extend(vat_pass.as_ref());
                backend.backward(&add_term(regularizers.clone(), supervised.clone())?, &passes, false)?;
            }
        }
        let recorded = match to_record {
            Some((x_adv, adv_logits, config, x)) => {
                let x_adv = to_shape(x_adv, (n, x.ncols()))?;
                adversarial_records(self.task, rows, context, x.view(), x_adv.view(), &logits, &adv_logits, config)?
            }
            None => Vec::new(),
        };
        backend.update(optimizer)?;
        let correct = correct(self.task, &logits, &y)?;
        let supervised = scalar(&supervised)?;
        let regularizers = regularizers.as_ref().map(scalar).transpose()?.unwrap_or(0.0);
        Ok(Step {
            loss: objective_value.unwrap_or(supervised + regularizers),
            supervised,
            graph: graph_value,
            adversarial: adversarial_value,
            correct,
            classes: logits.dim(1)?,
            outputs: logits.detach(),
            recorded,
            vat: vat_value,
            entropy: entropy_value,
        })
    }
}

/// The mean entropy `−Σ p log p` of the softmax of `logits` (`[n, classes]`).
fn entropy(logits: &Tensor) -> Result<Tensor> {
    let log_p = candle_nn::ops::log_softmax(logits, 1)?;
    let p = log_p.exp()?;
    (p * log_p)?.sum(1)?.mean_all()?.neg()
}

/// The number of samples of the batch predicted right: arg-max = label (multiclass), logit > 0 ⇔
/// label 1 (binary), every label right (multilabel); 0 for regression.
fn correct(task: Task, logits: &Tensor, y: &Tensor) -> Result<f64> {
    match task {
        Task::Multiclass => scalar(&logits.argmax(1)?.eq(y)?.to_dtype(DType::F32)?.sum_all()?),
        Task::Binary | Task::Multilabel => {
            let wrong = logits.gt(0f32)?.to_dtype(DType::F32)?.ne(y)?.to_dtype(DType::F32)?.sum(1)?;
            scalar(&wrong.eq(0f32)?.to_dtype(DType::F32)?.sum_all()?)
        }
        _ => Ok(0.0),
    }
}

/// The classes of a batch: arg-max for multiclass, logit > 0 otherwise.
fn classes_of(task: Task, logits: &Tensor) -> Result<Vec<u32>> {
    match task {
        Task::Multiclass => logits.argmax(1)?.to_vec1(),
        _ => logits.narrow(1, 0, 1)?.squeeze(1)?.gt(0f32)?.to_dtype(DType::U32)?.to_vec1(),
    }
}

/// The step's adversarial neighbors as records.
#[allow(clippy::too_many_arguments)] // the step's pieces, each used once
fn adversarial_records(
    task: Task,
    rows: &[usize],
    context: &StepContext,
    x: ArrayView2<f32>,
    x_adv: ArrayView2<f32>,
    logits: &Tensor,
    adv_logits: &Tensor,
    config: &AdvRegConfig,
) -> Result<Vec<AdversarialExample>> {
    let predicted = classes_of(task, logits)?;
    let predicted_adv = classes_of(task, adv_logits)?;
    let all_labels: Vec<u32> = match context.labels.rank() {
        1 => context.labels.to_vec1()?,
        _ => context.labels.narrow(1, 0, 1)?.squeeze(1)?.to_dtype(DType::U32)?.to_vec1()?,
    };
    Ok(rows
        .iter()
        .enumerate()
        .map(|(i, &row)| {
            let delta: Vec<f32> = x_adv.row(i).iter().zip(x.row(i)).map(|(a, b)| a - b).collect();
            AdversarialExample {
                sample_id: context.ids[row].clone(),
                epoch: context.epoch,
                features: x_adv.row(i).to_vec(),
                perturbation_norm: record::norm(&delta, config.neighbor.grad_norm),
                label: all_labels[row],
                prediction: predicted[i],
                adversarial_prediction: predicted_adv[i],
            }
        })
        .collect())
}

/// An array's values, row-major.
fn into_vec(a: Array2<f32>) -> Vec<f32> {
    match a.is_standard_layout() {
        true => a.into_raw_vec_and_offset().0,
        false => a.iter().copied().collect(),
    }
}

/// A scalar tensor's value.
fn scalar(t: &Tensor) -> Result<f64> {
    Ok(t.to_dtype(DType::F32)?.to_scalar::<f32>()? as f64)
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

fn to_shape(v: Vec<f32>, shape: (usize, usize)) -> Result<Array2<f32>> {
    Array2::from_shape_vec(shape, v).map_err(|e| candle_core::Error::Msg(e.to_string()))
}
