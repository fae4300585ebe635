//! Metrics: the loss and the task's metrics of a model on labeled samples ([`evaluate_task`];
//! see [`Metrics`] for each task's), predictions, and robustness to adversarial attacks: FGSM and
//! PGD, white-box (crafted on the evaluated model) or transferred (crafted on another model, as
//! NSL's MNIST tutorial does), and sweeps over ε; APGD-CE, APGD-DLR, APGD-T, Square and
//! AutoAttack's sequence ([`run_attacks`], [`evaluate_attacks`]) with a gradient-masking check
//! ([`masking_check`]). An [`Ensemble`] of trained models is scored (and attacked) as one model.

mod attack;
mod ensemble;
mod metrics;

pub use attack::{
    accuracy_on, adversarial_examples, apgd_checkpoints, attack_layout, evaluate_attacks, masking_check, metrics_on,
    outputs_on, predicted_classes, robustness_sweep, robustness_sweep_task, run_attacks, square_p_schedule,
    sweep_attacks, task_adversarial_inputs, Attack, AttackConfig, AttackError, AttackMethod, AttackProgress,
    AttackSweep, EvalAttack, EvalAttackConfig, MaskingWarning, ProgressFn, RobustnessReport, SampleOutcome,
    StageResult,
};
pub use ensemble::Ensemble;
pub(crate) use metrics::ClassTally;
pub use metrics::{accuracy, macro_f1, roc_auc, task_metrics, weighted_task_metrics, Metric, Metrics, Truth};

use crate::data::{Dataset, Targets};
use crate::loss::Task;
use crate::model::Model;
use candle_core::{DType, Device, Result, Tensor};
use ndarray::Array2;
use serde::Serialize;

/// The result of [`evaluate`] and [`evaluate_task`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    /// Share of samples whose arg-max logit is the label (binary: logit > 0 is class 1;
    /// multilabel: subset accuracy; regression: NaN, absent from JSON). Weighted, `Σ wᵢ·[right]
    /// / Σ wᵢ`, when the samples carry weights.
    #[serde(skip_serializing_if = "is_nan")]
    pub accuracy: f64,
    /// Mean loss of the task: softmax cross-entropy for multiclass. With sample weights, the
    /// training loss's reduction, `Σ wᵢ ℓᵢ / n`.
    pub loss: f64,
    /// Whether the loss and the metrics were weighted by the samples' weights
    /// ([`Dataset::weights`]).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub weighted: bool,
    /// Number of samples.
    pub samples: usize,
    /// The task evaluated.
    pub task: Task,
    /// The task's metrics.
    pub metrics: Metrics,
}

fn is_nan(v: &f64) -> bool {
    v.is_nan()
}

fn batch_tensor(data: &Dataset, rows: std::ops::Range<usize>) -> Result<Tensor> {
    crate::tensor::to_tensor(data.features().slice_move(ndarray::s![rows, ..]))
}

/// Accuracy and loss of `model` (in evaluation mode: no dropout) on labeled `data`, in batches:
/// [`evaluate_task`] for [`Task::Multiclass`].
///
/// # Errors
/// A candle error, or a message if `data` has no labels or a label is not below the model's number
/// of outputs.
pub fn evaluate(model: &dyn Model, data: &Dataset, batch_size: usize) -> Result<Evaluation> {
    evaluate_task(model, data, Task::Multiclass, batch_size)
}

/// The targets of `data` for `task`, as the loss takes them: class indices `[n]` (u32) for
/// multiclass, `[n, 1]` 0/1 (f32) for binary, the `[n, k]` matrix for multilabel and regression.
///
/// # Errors
/// A message naming what is missing: no labels, labels other than 0/1 for binary, no multi-hot
/// targets for multilabel, no values for regression.
pub fn task_targets(data: &Dataset, task: Task) -> Result<Tensor> {
    let n = data.len();
    match (task, data.labels(), data.targets()) {
        (Task::Multiclass, Some(labels), _) => Tensor::from_slice(labels, n, &Device::Cpu),
        (Task::Binary, Some(labels), _) => {
            if let Some(row) = labels.iter().position(|&l| l > 1) {
                let names = data.class_names().map(|n| format!(" (classes: {})", n.join(", "))).unwrap_or_default();
                candle_core::bail!(
                    "binary task: sample `{}` has label {}; binary labels are 0 and 1, or two class names{names}",
                    data.ids()[row],
                    labels[row]
                );
            }
            Tensor::from_vec(labels.iter().map(|&l| l as f32).collect::<Vec<f32>>(), (n, 1), &Device::Cpu)
        }
        (Task::Multilabel, _, Some(Targets::MultiHot(m))) | (Task::Regression(_), _, Some(Targets::Values(m))) => {
            crate::tensor::to_tensor(m.view())
        }
        (task, _, _) => candle_core::bail!(
            "the samples have no targets for the {task} task ({})",
            match task {
                Task::Multilabel => "a label column of lists",
                Task::Regression(_) => "a label column of numbers",
                _ => "a label column of classes",
            }
        ),
    }
}

/// The loss and the metrics of `task` for `model` (in evaluation mode: no dropout) on `data`, in
/// batches. If `data` carries sample weights ([`Dataset::weights`], e.g. `--weight-column`), the
/// loss is weighted as in training (`Σ wᵢ ℓᵢ / n`) and every metric, accuracy included, counts
/// each sample `wᵢ` times ([`weighted_task_metrics`]); [`Evaluation::weighted`] says so.
///
/// # Errors
/// A candle error, or a message if `data` has no targets for the task, or a label or target width
/// does not fit the model's outputs.
pub fn evaluate_task(model: &dyn Model, data: &Dataset, task: Task, batch_size: usize) -> Result<Evaluation> {
    let targets = task_targets(data, task)?;
    let weights = data.weights();
    let (mut correct, mut loss_sum) = (0.0f64, 0.0f64);
    let batch_size = batch_size.max(1);
    let mut outputs: Vec<f32> = Vec::new();
    let mut width = 0;
    for start in (0..data.len()).step_by(batch_size) {
        let end = (start + batch_size).min(data.len());
        let logits = model.forward_t(&batch_tensor(data, start..end)?, false)?;
        width = logits.dim(1)?;
        let y = targets.narrow(0, start, end - start)?;
        match task {
            Task::Multiclass => {
                let labels = data.labels().unwrap_or_default();
                if let Some(&bad) = labels[start..end].iter().find(|&&l| l as usize >= width) {
                    candle_core::bail!("label {bad} is out of range for a model with {width} outputs");
                }
                correct += logits.argmax(1)?.eq(&y)?.to_dtype(DType::F32)?.sum_all()?.to_scalar::<f32>()? as f64;
            }
            _ if y.dims() != logits.dims() => {
                candle_core::bail!("the {task} task's targets are {} wide but the model has {width} outputs", y.dim(1)?)
            }
            _ => {}
        }
        let w = weights.map(|w| Tensor::from_slice(&w[start..end], end - start, &Device::Cpu)).transpose()?;
        loss_sum += task.loss(&logits, &y, w.as_ref())?.to_scalar::<f32>()? as f64 * (end - start) as f64;
        outputs.extend(logits.flatten_all()?.to_vec1::<f32>()?);
    }
    let n = data.len().max(1) as f64;
    let outputs =
        Array2::from_shape_vec((data.len(), width), outputs).map_err(|e| candle_core::Error::Msg(e.to_string()))?;
    let truth = match (data.labels(), data.targets()) {
        (_, Some(t)) => Truth::Matrix(t.matrix()),
        (Some(labels), None) => Truth::Classes(labels),
        (None, None) => Truth::Classes(&[]),
    };
    let metrics = weighted_task_metrics(task, outputs.view(), truth, weights);
    let accuracy = match task {
        Task::Multiclass if weights.is_some() => metrics.accuracy.unwrap_or(0.0),
        Task::Multiclass => correct / n,
        Task::Multilabel => metrics.subset_accuracy.unwrap_or(0.0),
        Task::Regression(_) => f64::NAN,
        _ => metrics.accuracy.unwrap_or(0.0),
    };
    Ok(Evaluation { accuracy, loss: loss_sum / n, weighted: weights.is_some(), samples: data.len(), task, metrics })
}

/// The values of one layer of `model` for every sample, `[n, width]`, in evaluation mode (no
/// dropout), in batches: `layer` names a hidden layer (`hidden0`, `hidden1`, … of an MLP; `dense0`,
/// … of a CNN's dense layers; `logits`), `None` the logits. These are the embeddings of NSL's
/// "synthesized graph" recipe: embed every sample with a trained model, build a graph on them
/// ([`crate::build`]), train with graph regularization.
///
/// # Errors
/// A candle error, or an unknown layer (the message lists the model's layers).
///
/// # Example
/// ```
/// use nsl::data::Dataset;
/// use nsl::model::ModelSpec;
/// let x = ndarray::array![[0.0f32, 1.0], [1.0, 0.0], [0.5, 0.5]];
/// let samples = Dataset::new(vec!["a".into(), "b".into(), "c".into()], x, vec![2], None, None).unwrap();
/// let spec: ModelSpec = "mlp:4".parse().unwrap();
/// let (model, _vars) = nsl::build_model(&spec, &[2], 3, 0, &candle_core::Device::Cpu).unwrap();
/// let hidden = nsl::eval::embed(model.as_ref(), &samples, Some("hidden0"), 2).unwrap();
/// assert_eq!(hidden.dim(), (3, 4));
/// assert!(hidden.iter().all(|&v| v >= 0.0)); // after the ReLU
/// let logits = nsl::eval::embed(model.as_ref(), &samples, None, 2).unwrap();
/// assert_eq!(logits.dim(), (3, 3));
/// ```
pub fn embed(model: &dyn Model, data: &Dataset, layer: Option<&str>, batch_size: usize) -> Result<Array2<f32>> {
    let batch_size = batch_size.max(1);
    let mut values = Vec::new();
    let mut width = 0;
    for start in (0..data.len()).step_by(batch_size) {
        let end = (start + batch_size).min(data.len());
        let (logits, picked) = model.forward_with(&batch_tensor(data, start..end)?, false, layer)?;
        let out = match (layer, picked) {
            (None, _) => logits,
            (Some(_), Some(picked)) => picked,
            (Some(name), None) => candle_core::bail!("the model did not return layer `{name}`"),
        };
        let out = out.flatten_from(1)?;
        width = out.dim(1)?;
        values.extend(out.flatten_all()?.to_vec1::<f32>()?);
    }
    Array2::from_shape_vec((data.len(), width), values).map_err(|e| candle_core::Error::Msg(e.to_string()))
}

/// Class probabilities (softmax of the logits) for every sample, `[n, classes]`: [`predict_task`]
/// for [`Task::Multiclass`].
///
/// # Errors
/// A candle error.
pub fn predict(model: &dyn Model, data: &Dataset, batch_size: usize) -> Result<Vec<Vec<f32>>> {
    predict_task(model, data, Task::Multiclass, batch_size)
}

/// What `model` predicts for every sample, `[n, outputs]`: class probabilities (softmax) for
/// multiclass, the probability of each label (sigmoid of each logit) for binary and multilabel,
/// the values for regression.
///
/// # Errors
/// A candle error.
pub fn predict_task(model: &dyn Model, data: &Dataset, task: Task, batch_size: usize) -> Result<Vec<Vec<f32>>> {
    let mut out = Vec::with_capacity(data.len());
    let batch_size = batch_size.max(1);
    for start in (0..data.len()).step_by(batch_size) {
        let end = (start + batch_size).min(data.len());
        let logits = model.forward_t(&batch_tensor(data, start..end)?, false)?;
        let values = match task {
            Task::Binary | Task::Multilabel => candle_nn::ops::sigmoid(&logits)?,
            Task::Regression(_) => logits,
            _ => candle_nn::ops::softmax(&logits, 1)?,
        };
        out.extend(values.to_vec2::<f32>()?);
    }
    Ok(out)
}
