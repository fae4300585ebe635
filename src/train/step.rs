//! One training step, written once over a [`Backend`]: the batch (samples, then their explicit
//! neighbors, in one buffer and one forward pass), every loss term, the adversarial neighbors, the
//! optimizer update and what the step reports.
//!
//! # Order of work
//! 1. forward over the samples and their graph neighbors;
//! 2. `CE(y, f(x))` on the samples, the graph term over the (sample, neighbor) pairs;
//! 3. with adversarial regularization: backward of `CE` (parameter gradients and `∇ₓ`), the
//!    adversarial neighbors from `∇ₓ`, a forward over them, and one backward of the regularizers
//!    (`m_g · L_graph + m_a · L_adv`) through both passes — two backward passes, NSL's Keras wrapper
//!    does three; without: one backward of `CE + m_g · L_graph`;
//! 4. the optimizer update.

use super::backend::{Backend, Outputs};
use super::optim::Optimizer;
use super::record::{self, AdversarialExample};
use crate::loss::{adversarial_loss, cross_entropy, input_gradient};
use crate::model::Model;
use crate::neighbors::{extend_row, NeighborBatch, NeighborTable};
use crate::regularize::{gen_adv_neighbor, graph_loss, AdvRegConfig, GraphRegConfig};
use candle_core::{DType, Device, Result, Tensor};
use ndarray::{Array2, ArrayView2};

/// What a step needs from the trainer: the model (for PGD's extra gradients) and the regularizers.
pub(super) struct Plan<'a> {
    pub model: &'a dyn Model,
    pub graph: Option<(&'a NeighborTable, &'a GraphRegConfig)>,
    pub adversarial: Option<&'a AdvRegConfig>,
    pub seed: u64,
}

/// Where a step is in the run.
pub(super) struct StepContext<'d> {
    pub epoch: usize,
    pub batch: usize,
    /// Keep this step's adversarial neighbors.
    pub recording: bool,
    pub ids: &'d [String],
    /// All training labels.
    pub labels: &'d Tensor,
}

/// A batch's inputs: the samples' rows, then their explicit neighbors' rows (one forward pass, one
/// large product per layer instead of two small ones).
struct BatchInput<'g> {
    /// `[rows, d]` row-major.
    buffer: Vec<f32>,
    rows: usize,
    neighbors: Option<(NeighborBatch, &'g GraphRegConfig)>,
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
    /// The adversarial neighbors kept (see [`StepContext::recording`]).
    pub recorded: Vec<AdversarialExample>,
}

impl Plan<'_> {
    fn batch_input(&self, rows: &[usize], features: ArrayView2<f32>) -> Result<BatchInput<'_>> {
        let d = features.ncols();
        let mut buffer = Vec::with_capacity(rows.len() * d * 2);
        for &r in rows {
            extend_row(&mut buffer, features.row(r));
        }
        let neighbors = match self.graph {
            Some((table, config)) if config.multiplier > 0.0 => {
                Some((table.append_batch(rows, &mut buffer, &Device::Cpu)?, config)).filter(|(b, _)| b.pairs() > 0)
            }
            _ => None,
        };
        let rows = buffer.len() / d.max(1);
        Ok(BatchInput { buffer, rows, neighbors })
    }

    /// `multiplier · L_graph` over `outputs` (the batch's `n` samples, then their neighbors), and the
    /// value of `L_graph`.
    fn graph_term(&self, outputs: &Tensor, n: usize, input: &BatchInput) -> Result<Option<(Tensor, f64)>> {
        let Some((batch, config)) = &input.neighbors else { return Ok(None) };
        let (s, t) = (outputs.narrow(0, 0, n)?, outputs.narrow(0, n, batch.pairs())?);
        let g = graph_loss(&s, &t, batch, config)?;
        Ok(Some(((&g * config.multiplier)?, scalar(&g)?)))
    }

    /// The seed of a batch's adversarial generation (random starts of PGD).
    fn adversarial_seed(&self, context: &StepContext) -> u64 {
        self.seed ^ ((context.epoch as u64) << 32) ^ context.batch as u64
    }

    /// One step on the training samples `rows`.
    pub(super) fn step<B: Backend>(
        &self,
        backend: &mut B,
        rows: &[usize],
        features: ArrayView2<f32>,
        optimizer: &mut Optimizer,
        context: &StepContext,
    ) -> Result<Step> {
        let y = batch_labels(context.labels, rows)?;
        let (n, d) = (rows.len(), features.ncols());
        let mut input = self.batch_input(rows, features)?;
        // The clean samples, kept for the adversarial neighbors (the buffer moves into the pass).
        let x = match self.adversarial {
            Some(_) => Some(to_shape(input.buffer[..n * d].to_vec(), (n, d))?),
            None => None,
        };
        let hidden = self.graph.is_some_and(|(_, c)| c.layer.is_some());
        let (out, pass) =
            backend.forward(std::mem::take(&mut input.buffer), input.rows, hidden, x.as_ref().map(|_| n))?;
        let Outputs { logits: all_logits, hidden } = out;
        let logits = all_logits.narrow(0, 0, n)?;
        let supervised = cross_entropy(&logits, &y)?;
        let graph = self.graph_term(hidden.as_ref().unwrap_or(&all_logits), n, &input)?;
        let graph_value = graph.as_ref().map_or(0.0, |g| g.1);
        let mut regularizers = graph.map(|g| g.0);
        let mut adversarial_value = 0.0;
        let mut recorded = Vec::new();
        match (self.adversarial, x) {
            (Some(config), Some(x)) => {
                let gx = backend.backward(&supervised, &[&pass], true)?;
                let x_adv = gen_adv_neighbor(x.view(), gx, &config.neighbor, self.adversarial_seed(context), |xt| {
                    input_gradient(self.model, xt, &y, true)
                })?;
                let x_adv = match x_adv.is_standard_layout() {
                    true => x_adv.into_raw_vec_and_offset().0,
                    false => x_adv.iter().copied().collect(),
                };
                let kept = context.recording.then(|| x_adv.clone());
                let (adv_out, adv_pass) = backend.forward(x_adv, n, false, None)?;
                let adv_loss = adversarial_loss(config, &logits, &adv_out.logits, &y)?;
                adversarial_value = scalar(&adv_loss)?;
                let extra = add_term(regularizers.take(), (adv_loss * config.multiplier)?)?;
                backend.backward(&extra, &[&pass, &adv_pass], false)?;
                regularizers = Some(extra);
                if let Some(x_adv) = kept {
                    let x_adv = to_shape(x_adv, (n, d))?;
                    recorded = remember(rows, context, x.view(), x_adv.view(), &logits, &adv_out.logits, config)?;
                }
            }
            _ => {
                backend.backward(&add_term(regularizers.clone(), supervised.clone())?, &[&pass], false)?;
            }
        }
        backend.update(optimizer)?;
        let correct = scalar(&logits.argmax(1)?.eq(&y)?.to_dtype(DType::F32)?.sum_all()?)?;
        let supervised = scalar(&supervised)?;
        let regularizers = regularizers.as_ref().map(scalar).transpose()?.unwrap_or(0.0);
        Ok(Step {
            loss: supervised + regularizers,
            supervised,
            graph: graph_value,
            adversarial: adversarial_value,
            correct,
            classes: logits.dim(1)?,
            recorded,
        })
    }
}

/// The step's adversarial neighbors as records.
fn remember(
    rows: &[usize],
    context: &StepContext,
    x: ArrayView2<f32>,
    x_adv: ArrayView2<f32>,
    logits: &Tensor,
    adv_logits: &Tensor,
    config: &AdvRegConfig,
) -> Result<Vec<AdversarialExample>> {
    let predicted: Vec<u32> = logits.argmax(1)?.to_vec1()?;
    let predicted_adv: Vec<u32> = adv_logits.argmax(1)?.to_vec1()?;
    let all_labels: Vec<u32> = context.labels.to_vec1()?;
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
