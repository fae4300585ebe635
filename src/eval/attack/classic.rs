//! FGSM and PGD (NSL's attacks, built on [`gen_adv_neighbor`]), white-box or transferred, and
//! sweeps over ε. They follow the gradient of the task's loss (cross-entropy, sigmoid
//! cross-entropy, MSE/Huber) and report the task's metrics under attack
//! ([`robustness_sweep_task`]).

use crate::data::Dataset;
use crate::eval::metrics::{weighted_task_metrics, Metrics, Truth};
use crate::eval::task_targets;
use crate::loss::{task_input_gradient, Task};
use crate::model::Model;
use crate::regularize::{gen_adv_neighbor, AdvNeighborConfig, NormType};
use crate::tensor::{to_array2, to_tensor};
use candle_core::Result;
use ndarray::{s, Array2, ArrayView2};
use serde::{Deserialize, Serialize};

/// The attack.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "lowercase")]
#[non_exhaustive]
pub enum Attack {
    /// One step of size ε (Goodfellow et al. 2015).
    Fgsm,
    /// `steps` steps of size `step_size`, projected onto the ε-ball (Madry et al. 2018).
    Pgd {
        /// Number of steps (e.g. 40).
        steps: usize,
        /// Size of each step (e.g. 0.01).
        step_size: f64,
        /// Start from a random point of the ε-ball.
        random_init: bool,
    },
}

/// An attack at one strength.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AttackConfig {
    /// FGSM or PGD.
    pub attack: Attack,
    /// Norm of the perturbation.
    pub norm: NormType,
    /// Radius ε of the perturbation.
    pub epsilon: f64,
    /// Bounds of valid inputs (e.g. `(0, 1)` for pixels), applied after every step.
    pub clip: Option<(f32, f32)>,
    /// Seed of a random start.
    pub seed: u64,
}

impl AttackConfig {
    /// The adversarial-neighbor settings that carry out this attack.
    pub fn neighbor_config(&self) -> AdvNeighborConfig {
        let (step_size, pgd_iterations, random_init) = match self.attack {
            Attack::Fgsm => (self.epsilon, 1, false),
            Attack::Pgd { steps, step_size, random_init } => (step_size, steps.max(1), random_init),
        };
        AdvNeighborConfig {
            step_size,
            grad_norm: self.norm,
            clip_min: self.clip.map(|c| c.0),
            clip_max: self.clip.map(|c| c.1),
            pgd_iterations,
            pgd_epsilon: Some(self.epsilon),
            random_init,
            feature_mask: None,
        }
    }
}

fn rows(data: &Dataset, start: usize, end: usize) -> Array2<f32> {
    data.features().slice(s![start..end, ..]).to_owned()
}

/// The adversarial versions of the samples in `data` (labels needed), crafted on `source` (in
/// evaluation mode) along the cross-entropy's gradient, `[n, encoded width]`:
/// [`task_adversarial_inputs`] for [`Task::Multiclass`]. For a model without an encoder (MLP, CNN)
/// these are perturbed rows.
///
/// # Errors
/// A candle error, or a message if `data` has no labels.
pub fn adversarial_examples(
    source: &dyn Model,
    data: &Dataset,
    config: &AttackConfig,
    batch_size: usize,
) -> Result<Array2<f32>> {
    if data.labels().is_none() {
        candle_core::bail!("attacks need labeled samples");
    }
    task_adversarial_inputs(source, data, Task::Multiclass, config, batch_size)
}

/// The adversarial versions of the samples' **encoded inputs** ([`Model::encode`] of `source`:
/// the rows themselves for models without an encoder, the pooled embeddings and dense groups for
/// `bow`; token ids are never perturbed), crafted on `source` in evaluation mode along the
/// gradient of `task`'s loss against `data`'s targets (unweighted), `[n, encoded width]`. The
/// clip bounds, if any, apply to the encoded values.
///
/// # Errors
/// A candle error, or a message if `data` has no targets for `task`.
pub fn task_adversarial_inputs(
    source: &dyn Model,
    data: &Dataset,
    task: Task,
    config: &AttackConfig,
    batch_size: usize,
) -> Result<Array2<f32>> {
    let targets = task_targets(data, task)?;
    let neighbor = config.neighbor_config();
    let mut out: Option<Array2<f32>> = None;
    let batch_size = batch_size.max(1);
    for start in (0..data.len()).step_by(batch_size) {
        let end = (start + batch_size).min(data.len());
        let encoded = to_array2(&source.encode(&to_tensor(rows(data, start, end).view())?, false)?)?;
        let y = targets.narrow(0, start, end - start)?;
        let adv = gen_adv_neighbor(encoded.view(), None, &neighbor, config.seed ^ start as u64, |xt| {
            task_input_gradient(source, xt, task, &y, None, false)
        })?;
        out.get_or_insert_with(|| Array2::zeros((data.len(), adv.ncols()))).slice_mut(s![start..end, ..]).assign(&adv);
    }
    Ok(out.unwrap_or_else(|| Array2::zeros((0, data.dim()))))
}

/// The model's outputs (logits, or values for regression) for encoded inputs `x` (see
/// [`task_adversarial_inputs`]; the rows themselves for a model without an encoder), in evaluation
/// mode and in batches, `[n, outputs]`.
///
/// # Errors
/// A candle error of the forward pass (e.g. `x` is not the model's encoded width).
pub fn outputs_on(model: &dyn Model, x: ArrayView2<f32>, batch_size: usize) -> Result<Array2<f32>> {
    let mut values = Vec::new();
    let mut width = 0;
    let batch_size = batch_size.max(1);
    for start in (0..x.nrows()).step_by(batch_size) {
        let end = (start + batch_size).min(x.nrows());
        let out = model.forward_encoded(&to_tensor(x.slice(s![start..end, ..]))?, false, None)?.0;
        width = out.dim(1)?;
        values.extend(out.flatten_all()?.to_vec1::<f32>()?);
    }
    Array2::from_shape_vec((x.nrows(), width), values).map_err(|e| candle_core::Error::Msg(e.to_string()))
}

/// The arg-max class of `model` (in evaluation mode) for each encoded input of `x` (the rows
/// themselves for a model without an encoder), in batches.
///
/// # Errors
/// A candle error of the forward pass.
pub fn predicted_classes(model: &dyn Model, x: ArrayView2<f32>, batch_size: usize) -> Result<Vec<u32>> {
    Ok(crate::eval::metrics::argmax_rows(outputs_on(model, x, batch_size)?.view()))
}

/// Accuracy of `model` on the (already perturbed) encoded inputs `x` with `data`'s labels
/// (unweighted).
///
/// # Errors
/// A candle error, or a message if `data` has no labels.
pub fn accuracy_on(model: &dyn Model, x: &Array2<f32>, data: &Dataset, batch_size: usize) -> Result<f64> {
    let Some(labels) = data.labels() else { candle_core::bail!("accuracy needs labeled samples") };
    let predicted = predicted_classes(model, x.view(), batch_size)?;
    let correct = predicted.iter().zip(labels).filter(|(p, l)| p == l).count();
    Ok(correct as f64 / data.len().max(1) as f64)
}

/// `task`'s metrics of `model` on the (already perturbed) encoded inputs `x` against `data`'s
/// targets, weighted by `data`'s sample weights if it has any ([`weighted_task_metrics`]).
///
/// # Errors
/// A candle error of the forward pass.
pub fn metrics_on(
    model: &dyn Model,
    x: &Array2<f32>,
    data: &Dataset,
    task: Task,
    batch_size: usize,
) -> Result<Metrics> {
    let outputs = outputs_on(model, x.view(), batch_size)?;
    let truth = match (data.labels(), data.targets()) {
        (_, Some(t)) => Truth::Matrix(t.matrix()),
        (Some(labels), None) => Truth::Classes(labels),
        (None, None) => Truth::Classes(&[]),
    };
    Ok(weighted_task_metrics(task, outputs.view(), truth, data.weights()))
}

/// Robust accuracy of `target` at each ε of `epsilons`, the perturbations crafted on `source`
/// (`source = target` for white-box). Returns `(ε, accuracy)` pairs in the given order: the
/// multiclass case of [`robustness_sweep_task`], unweighted.
///
/// # Errors
/// As [`adversarial_examples`], and a transfer attack (`source` another model) when either
/// model has an encoder (each perturbs its own embeddings).
pub fn robustness_sweep(
    target: &dyn Model,
    source: &dyn Model,
    data: &Dataset,
    base: &AttackConfig,
    epsilons: &[f64],
    batch_size: usize,
) -> Result<Vec<(f64, f64)>> {
    check_transfer(target, source)?;
    epsilons
        .iter()
        .map(|&epsilon| {
            let config = AttackConfig { epsilon, ..*base };
            let x = adversarial_examples(source, data, &config, batch_size)?;
            Ok((epsilon, accuracy_on(target, &x, data, batch_size)?))
        })
        .collect()
}

/// `task`'s metrics of `target` under attack at each ε of `epsilons` (the perturbations crafted
/// on `source` along `task`'s loss, `source = target` for white-box), weighted by `data`'s
/// sample weights if any: `(ε, metrics)` pairs in the given order.
///
/// # Errors
/// As [`task_adversarial_inputs`], and a transfer attack when either model has an encoder: a
/// `bow` model's perturbations live in its own embedding space, which another model does not read.
pub fn robustness_sweep_task(
    target: &dyn Model,
    source: &dyn Model,
    data: &Dataset,
    task: Task,
    base: &AttackConfig,
    epsilons: &[f64],
    batch_size: usize,
) -> Result<Vec<(f64, Metrics)>> {
    check_transfer(target, source)?;
    epsilons
        .iter()
        .map(|&epsilon| {
            let config = AttackConfig { epsilon, ..*base };
            let x = task_adversarial_inputs(source, data, task, &config, batch_size)?;
            Ok((epsilon, metrics_on(target, &x, data, task, batch_size)?))
        })
        .collect()
}

/// Refuses a transfer attack between different models when either perturbs an encoding.
fn check_transfer(target: &dyn Model, source: &dyn Model) -> Result<()> {
    let same = std::ptr::addr_eq(target as *const dyn Model, source as *const dyn Model);
    if !same && (target.has_encoder() || source.has_encoder()) {
        candle_core::bail!(
            "a transfer attack needs two models that read the same inputs; a bow model is attacked in its own \
             embedding space (pooled embeddings), so attack it white-box"
        );
    }
    Ok(())
}
