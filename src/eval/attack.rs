//! Robustness evaluation: FGSM and PGD attacks, white-box (crafted on the evaluated model) or
//! transferred (crafted on another model, as NSL's MNIST tutorial does), and sweeps over ε.

use crate::data::Dataset;
use crate::loss::input_gradient;
use crate::model::Model;
use crate::regularize::{gen_adv_neighbor, AdvNeighborConfig, NormType};
use crate::tensor::to_tensor;
use candle_core::{Device, Result, Tensor};
use ndarray::{s, Array2, ArrayView2};
use serde::{Deserialize, Serialize};

/// The attack.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "lowercase")]
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
/// evaluation mode), `[n, d]`.
///
/// # Errors
/// A candle error, or a message if `data` has no labels.
pub fn adversarial_examples(
    source: &dyn Model,
    data: &Dataset,
    config: &AttackConfig,
    batch_size: usize,
) -> Result<Array2<f32>> {
    let Some(labels) = data.labels() else { candle_core::bail!("attacks need labeled samples") };
    let neighbor = config.neighbor_config();
    let mut out = Array2::zeros((data.len(), data.dim()));
    let batch_size = batch_size.max(1);
    for start in (0..data.len()).step_by(batch_size) {
        let end = (start + batch_size).min(data.len());
        let x = rows(data, start, end);
        let y = Tensor::from_slice(&labels[start..end], end - start, &Device::Cpu)?;
        let adv = gen_adv_neighbor(x.view(), None, &neighbor, config.seed ^ start as u64, |xt| {
            input_gradient(source, xt, &y, false)
        })?;
        out.slice_mut(s![start..end, ..]).assign(&adv);
    }
    Ok(out)
}

/// The arg-max class of `model` (in evaluation mode) for each row of `x`, in batches.
///
/// # Errors
/// A candle error of the forward pass.
pub fn predicted_classes(model: &dyn Model, x: ArrayView2<f32>, batch_size: usize) -> Result<Vec<u32>> {
    let mut out = Vec::with_capacity(x.nrows());
    let batch_size = batch_size.max(1);
    for start in (0..x.nrows()).step_by(batch_size) {
        let end = (start + batch_size).min(x.nrows());
        let batch = to_tensor(x.slice(s![start..end, ..]))?;
        out.extend(model.forward_t(&batch, false)?.argmax(1)?.to_vec1::<u32>()?);
    }
    Ok(out)
}

/// Accuracy of `model` on the (already perturbed) features `x` with `data`'s labels.
///
/// # Errors
/// A candle error, or a message if `data` has no labels.
pub fn accuracy_on(model: &dyn Model, x: &Array2<f32>, data: &Dataset, batch_size: usize) -> Result<f64> {
    let Some(labels) = data.labels() else { candle_core::bail!("accuracy needs labeled samples") };
    let predicted = predicted_classes(model, x.view(), batch_size)?;
    let correct = predicted.iter().zip(labels).filter(|(p, l)| p == l).count();
    Ok(correct as f64 / data.len().max(1) as f64)
}

/// Robust accuracy of `target` at each ε of `epsilons`, the perturbations crafted on `source`
/// (`source = target` for white-box). Returns `(ε, accuracy)` pairs in the given order.
///
/// # Errors
/// As [`adversarial_examples`].
pub fn robustness_sweep(
    target: &dyn Model,
    source: &dyn Model,
    data: &Dataset,
    base: &AttackConfig,
    epsilons: &[f64],
    batch_size: usize,
) -> Result<Vec<(f64, f64)>> {
    epsilons
        .iter()
        .map(|&epsilon| {
            let config = AttackConfig { epsilon, ..*base };
            let x = adversarial_examples(source, data, &config, batch_size)?;
            Ok((epsilon, accuracy_on(target, &x, data, batch_size)?))
        })
        .collect()
}
