//! The terms of the training objective, written once and shared by the trainer's backends and by
//! evaluation: the supervised loss of the [`Task`] ([`Task::loss`]; for multiclass the one-op
//! [`cross_entropy`]), the adversarial term ([`adversarial_loss`], [`task_adversarial_loss`]) and
//! the input gradient `∇ₓ L` that FGSM/PGD follow ([`input_gradient`], [`task_input_gradient`]),
//! and the terms of TRADES and MART ([`trades_kl`], [`mart_terms`]); distillation from a teacher's
//! probabilities ([`distill_loss`], [`DistillConfig`]: GLNN).
//! The graph term is [`graph_loss`](crate::regularize::graph_loss). Per-class weights:
//! [`ClassWeights`].
//!
//! This module sits below both [`train`](crate::train) and [`eval`](crate::eval): neither imports
//! the other for a loss.

mod cross_entropy;
mod distill;
mod robust;
mod task;
mod weights;

pub use cross_entropy::cross_entropy;
pub use distill::{distill_loss, DistillConfig};
pub use robust::{mart_terms, trades_kl};
pub use task::{RegressionLoss, Task};
pub use weights::{balanced_class_weights, ClassWeights, WeightsError};

use crate::model::Model;
use crate::regularize::{pairwise_distance, AdvLoss, AdvRegConfig};
use crate::tensor::{to_array2, to_tensor};
use candle_core::{DType, Result, Tensor, Var};
use ndarray::{Array2, ArrayView2};

/// The adversarial loss of [`AdvRegConfig::loss`] (unscaled) for the samples' `logits` and their
/// adversarial neighbors' `adv_logits` (`[n, classes]` each), with labels `y` (`[n]`).
///
/// # Formula
/// [`AdvLoss::Supervised`] (NSL's form): `CE(y, f(x_adv))`. [`AdvLoss::Distance`]: the graph
/// regularizer's distance `D(f(x), f(x_adv))` over the `n` (sample, neighbor) pairs of weight 1.
///
/// # Errors
/// A candle error if the shapes do not match or a label is out of range.
pub fn adversarial_loss(config: &AdvRegConfig, logits: &Tensor, adv_logits: &Tensor, y: &Tensor) -> Result<Tensor> {
    task_adversarial_loss(config, Task::Multiclass, logits, adv_logits, y, None)
}

/// [`adversarial_loss`] for any [`Task`], each sample weighted by `weights` (`[n]`) if given:
/// [`AdvLoss::Supervised`] is the task's loss on the neighbors, `Σ wᵢ ℓᵢ(f(x_adv)) / n` (NSL's
/// `loss_fn(labels, model(adv_input), sample_weights)`); [`AdvLoss::Distance`] weights each
/// (sample, neighbor) pair by its sample's weight.
///
/// # Errors
/// A candle error if the shapes do not match or a label is out of range.
pub fn task_adversarial_loss(
    config: &AdvRegConfig,
    task: Task,
    logits: &Tensor,
    adv_logits: &Tensor,
    y: &Tensor,
    weights: Option<&Tensor>,
) -> Result<Tensor> {
    match &config.loss {
        AdvLoss::Supervised => task.loss(adv_logits, y, weights),
        AdvLoss::Distance(distance) => match weights {
            Some(w) => pairwise_distance(logits, adv_logits, w, distance),
            None => {
                let ones = Tensor::ones(y.dim(0)?, DType::F32, y.device())?;
                pairwise_distance(logits, adv_logits, &ones, distance)
            }
        },
    }
}

/// `∇ₓ CE(y, f(x))` at `x` (`[n, d]`), through candle's autograd: what FGSM/PGD follow for the
/// multiclass task ([`task_input_gradient`] for any). `train` runs the model in training mode
/// (dropout on). `x` is the model's encoded input ([`Model::encode`]: the rows themselves for models
/// without an encoder, pooled embeddings for token inputs), so token ids are never perturbed.
///
/// # Errors
/// A candle error of the forward or backward pass.
pub fn input_gradient(model: &dyn Model, x: ArrayView2<f32>, y: &Tensor, train: bool) -> Result<Array2<f32>> {
    task_input_gradient(model, x, Task::Multiclass, y, None, train)
}

/// `∇ₓ L(y, f(x))` at `x` for the [`Task`]'s loss `L` (samples weighted by `weights`, `[n]`, if
/// given, as in [`Task::loss`]): what FGSM/PGD follow for that task.
///
/// # Errors
/// A candle error of the forward or backward pass.
pub fn task_input_gradient(
    model: &dyn Model,
    x: ArrayView2<f32>,
    task: Task,
    y: &Tensor,
    weights: Option<&Tensor>,
    train: bool,
) -> Result<Array2<f32>> {
    let var = Var::from_tensor(&to_tensor(x)?)?;
    // Only ∂/∂x is kept: the fast layers skip their weight gradients.
    let grads = crate::kernels::input_gradient_only(|| {
        task.loss(&model.forward_encoded(var.as_tensor(), train, None)?.0, y, weights)?.backward()
    })?;
    match grads.get(var.as_tensor()) {
        Some(g) => to_array2(g),
        None => Ok(Array2::zeros(x.dim())),
    }
}

/// `∇ₓ L(f(x))` at `x` (`[n, d]`) for any loss `L` of the model's outputs, through candle's
/// autograd: what the virtual adversarial direction follows. `x` is the model's encoded input, as
/// for [`input_gradient`].
///
/// # Errors
/// A candle error of the forward pass, the loss or the backward pass.
pub fn output_input_gradient(
    model: &dyn Model,
    x: ArrayView2<f32>,
    train: bool,
    loss: impl FnOnce(&Tensor) -> Result<Tensor>,
) -> Result<Array2<f32>> {
    let var = Var::from_tensor(&to_tensor(x)?)?;
    let grads = crate::kernels::input_gradient_only(|| {
        loss(&model.forward_encoded(var.as_tensor(), train, None)?.0)?.backward()
    })?;
    match grads.get(var.as_tensor()) {
        Some(g) => to_array2(g),
        None => Ok(Array2::zeros(x.dim())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::regularize::DistanceConfig;
    use candle_core::Device;

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
        // Distance form: squared L2 per sample, (ln²3 + 4) / 2 (sum by non-zero weights, all weights 1).
        let distance = DistanceConfig { sum_over_axis: Some(-1), ..Default::default() };
        let label_free = value(AdvLoss::Distance(distance));
        assert!((label_free - (3f32.ln().powi(2) + 4.0) / 2.0).abs() < 1e-5, "{label_free}");
    }
}
