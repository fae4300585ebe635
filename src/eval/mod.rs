//! Metrics: accuracy and loss of a model on labeled samples, predictions, and robustness to
//! adversarial attacks: FGSM and PGD, white-box (crafted on the evaluated model) or transferred
//! (crafted on another model, as NSL's MNIST tutorial does), and sweeps over ε.

mod attack;

pub use attack::{accuracy_on, adversarial_examples, predicted_classes, robustness_sweep, Attack, AttackConfig};

use crate::data::Dataset;
use crate::model::Model;
use candle_core::{DType, Device, Result, Tensor};
use serde::Serialize;

/// The result of [`evaluate`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    /// Share of samples whose arg-max logit is the label.
    pub accuracy: f64,
    /// Mean softmax cross-entropy.
    pub loss: f64,
    /// Number of samples.
    pub samples: usize,
}

fn batch_tensor(data: &Dataset, rows: std::ops::Range<usize>) -> Result<Tensor> {
    crate::tensor::to_tensor(data.features().slice_move(ndarray::s![rows, ..]))
}

/// Accuracy and loss of `model` (in evaluation mode: no dropout) on labeled `data`, in batches.
///
/// # Errors
/// A candle error, or a message if `data` has no labels or a label is not below the model's number
/// of outputs.
pub fn evaluate(model: &dyn Model, data: &Dataset, batch_size: usize) -> Result<Evaluation> {
    let Some(labels) = data.labels() else {
        candle_core::bail!("the samples have no labels to evaluate against");
    };
    let (mut correct, mut loss_sum) = (0.0f64, 0.0f64);
    let batch_size = batch_size.max(1);
    for start in (0..data.len()).step_by(batch_size) {
        let end = (start + batch_size).min(data.len());
        let logits = model.forward_t(&batch_tensor(data, start..end)?, false)?;
        let classes = logits.dim(1)?;
        if let Some(&bad) = labels[start..end].iter().find(|&&l| l as usize >= classes) {
            candle_core::bail!("label {bad} is out of range for a model with {classes} outputs");
        }
        let y = Tensor::from_slice(&labels[start..end], end - start, &Device::Cpu)?;
        correct += logits.argmax(1)?.eq(&y)?.to_dtype(DType::F32)?.sum_all()?.to_scalar::<f32>()? as f64;
        loss_sum += crate::loss::cross_entropy(&logits, &y)?.to_scalar::<f32>()? as f64 * (end - start) as f64;
    }
    let n = data.len().max(1) as f64;
    Ok(Evaluation { accuracy: correct / n, loss: loss_sum / n, samples: data.len() })
}

/// Class probabilities (softmax of the logits) for every sample, `[n, classes]`.
///
/// # Errors
/// A candle error.
pub fn predict(model: &dyn Model, data: &Dataset, batch_size: usize) -> Result<Vec<Vec<f32>>> {
    let mut out = Vec::with_capacity(data.len());
    let batch_size = batch_size.max(1);
    for start in (0..data.len()).step_by(batch_size) {
        let end = (start + batch_size).min(data.len());
        let logits = model.forward_t(&batch_tensor(data, start..end)?, false)?;
        out.extend(candle_nn::ops::softmax(&logits, 1)?.to_vec2::<f32>()?);
    }
    Ok(out)
}
