//! [`Task`]: what the model's outputs mean, and the supervised loss that follows from it.
//!
//! | task | targets | outputs | loss per sample `ℓᵢ` |
//! |---|---|---|---|
//! | multiclass | a class index `yᵢ` | one logit per class | softmax cross-entropy `log Σⱼ e^zᵢⱼ − zᵢ,yᵢ` |
//! | binary | `yᵢ ∈ {0, 1}` | one logit | sigmoid cross-entropy `max(z,0) − z·y + log(1 + e^−|z|)` |
//! | multilabel | a 0/1 vector of `k` labels | `k` logits | the sigmoid cross-entropy, averaged over the `k` outputs |
//! | regression | `k` values | `k` linear outputs | mean over outputs of `(z − y)²` (MSE) or Huber's loss |
//!
//! Huber's loss with threshold `δ` is `½e²` for `|e| ≤ δ` and `δ·(|e| − ½δ)` beyond (Keras'
//! `Huber(delta=1.0)`, the default `δ`).
//!
//! # Reduction and sample weights
//! Keras' `SUM_OVER_BATCH_SIZE`: `L = Σᵢ wᵢ ℓᵢ / n` over the batch's `n` samples (`wᵢ = 1`
//! without weights), so a weight of 2 counts a sample twice and a weight of 0 drops it without
//! changing the other samples' share. NSL passes its `sample_weight_key` to the same Keras losses.
//!
//! # How it differs from NSL
//! NSL takes any Keras loss; nsl has these four. The multiclass loss without weights is the one-op
//! [`cross_entropy`], bit for bit the loss nsl always had.

use super::cross_entropy::cross_entropy;
use crate::config::{key_values, ConfigError};
use crate::regularize::AdvObjective;
use candle_core::{DType, Result, Tensor};
use std::fmt;
use std::str::FromStr;

/// The kind of prediction a model makes; see the [module docs](self) for each task's loss.
/// `Default`: [`Task::Multiclass`].
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[non_exhaustive]
pub enum Task {
    /// One class out of `k`: softmax cross-entropy, `k` outputs.
    #[default]
    Multiclass,
    /// Two classes (labels 0 and 1): one logit, sigmoid binary cross-entropy.
    Binary,
    /// Any subset of `k` labels: `k` logits, sigmoid binary cross-entropy averaged over them.
    Multilabel,
    /// Real values: linear outputs, one per target, and a regression loss.
    Regression(RegressionLoss),
}

/// The loss of [`Task::Regression`]. `Default`: [`RegressionLoss::Mse`].
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[non_exhaustive]
pub enum RegressionLoss {
    /// Mean squared error.
    #[default]
    Mse,
    /// Huber's loss: squared within `delta` of the target, linear beyond.
    Huber {
        /// The threshold `δ` (> 0). Default 1, Keras'.
        delta: f64,
    },
}

impl Task {
    /// The names [`Task::from_str`] accepts.
    pub const NAMES: &'static [&'static str] = &["multiclass", "binary", "multilabel", "regression"];

    /// Checks that an adversarial `objective` makes sense for this task: `trades` needs outputs that
    /// are probabilities (multiclass, binary, multilabel), `mart` a multiclass task; `nsl` and
    /// `madry` train every task.
    ///
    /// # Errors
    /// [`ConfigError::InvalidValue`] naming the objective and the task.
    pub fn check_adv_objective(self, objective: AdvObjective) -> std::result::Result<(), ConfigError> {
        let ok = match objective {
            AdvObjective::Nsl | AdvObjective::Madry => true,
            AdvObjective::Trades => !matches!(self, Task::Regression(_)),
            AdvObjective::Mart => self == Task::Multiclass,
        };
        if ok {
            return Ok(());
        }
        let expected = match objective {
            AdvObjective::Trades => {
                "a multiclass, binary or multilabel task (its KL compares predicted probabilities; use \
                 objective=madry for regression)"
            }
            _ => {
                "a multiclass task (its boosted cross-entropy needs the other classes' probabilities; use \
                 objective=trades or madry)"
            }
        };
        Err(ConfigError::invalid(format!("adv-reg objective={objective} with --task"), self, expected))
    }

    /// Whether the targets are class indices (multiclass and binary).
    pub fn has_classes(&self) -> bool {
        matches!(self, Task::Multiclass | Task::Binary)
    }

    /// The number of model outputs for `width` targets: classes for multiclass, 1 for binary,
    /// labels for multilabel, values for regression.
    pub fn outputs(&self, width: usize) -> usize {
        match self {
            Task::Binary => 1,
            _ => width,
        }
    }

    /// The mean loss of `logits` (`[n, outputs]`, f32) against `targets`, each sample weighted by
    /// `weights` (`[n]`, f32) if given: `Σᵢ wᵢ ℓᵢ / n`.
    ///
    /// `targets`: for [`Task::Multiclass`] the class indices (`[n]`, u32); for the others a `[n, k]`
    /// f32 tensor (binary: `[n, 1]` of 0/1).
    ///
    /// # Errors
    /// A candle error if the shapes do not match or a class index is out of range.
    pub fn loss(&self, logits: &Tensor, targets: &Tensor, weights: Option<&Tensor>) -> Result<Tensor> {
        let per_sample = match (self, weights) {
            // Today's one-op loss, bit for bit.
            (Task::Multiclass, None) => return cross_entropy(logits, targets),
            (Task::Multiclass, Some(_)) => {
                let log_p = candle_nn::ops::log_softmax(logits, 1)?;
                log_p.gather(&targets.unsqueeze(1)?, 1)?.squeeze(1)?.neg()?
            }
            (Task::Binary | Task::Multilabel, _) => {
                check_same_shape(logits, targets)?;
                sigmoid_cross_entropy(logits, targets)?.mean(1)?
            }
            (Task::Regression(loss), _) => {
                check_same_shape(logits, targets)?;
                let e = (logits - targets)?;
                match loss {
                    RegressionLoss::Mse => e.sqr()?.mean(1)?,
                    RegressionLoss::Huber { delta } => huber(&e, *delta)?.mean(1)?,
                }
            }
        };
        weighted_mean(&per_sample, weights)
    }
}

/// `Σ wᵢ ℓᵢ / n` of per-sample losses `[n]` (training's reduction), or their mean without weights.
pub(super) fn weighted_mean(per_sample: &Tensor, weights: Option<&Tensor>) -> Result<Tensor> {
    match weights {
        None => per_sample.mean_all(),
        Some(w) => {
            let n = per_sample.dim(0)?;
            if w.dims() != [n] {
                candle_core::bail!("loss: {:?} sample weights for {n} samples", w.dims());
            }
            (per_sample * w.to_dtype(DType::F32)?)?.sum_all()? / n.max(1) as f64
        }
    }
}

/// The numerically stable sigmoid cross-entropy of logits `z` against targets `y`, elementwise:
/// `max(z, 0) − z·y + log(1 + e^−|z|)` (TensorFlow's `sigmoid_cross_entropy_with_logits`).
fn sigmoid_cross_entropy(z: &Tensor, y: &Tensor) -> Result<Tensor> {
    let soft = z.abs()?.neg()?.exp()?.affine(1.0, 1.0)?.log()?;
    (z.relu()? - (z * y)?)? + soft
}

/// Huber's loss of the errors `e`, elementwise: `½·c² + δ·(|e| − c)` with `c = min(|e|, δ)`.
fn huber(e: &Tensor, delta: f64) -> Result<Tensor> {
    let a = e.abs()?;
    let c = a.clamp(0f32, delta as f32)?;
    c.sqr()?.affine(0.5, 0.0)? + ((a - &c)? * delta)?
}

fn check_same_shape(logits: &Tensor, targets: &Tensor) -> Result<()> {
    if logits.dims() != targets.dims() || targets.dtype() != DType::F32 {
        candle_core::bail!(
            "loss: outputs {:?} and targets {:?} ({:?}) differ in shape (targets must be f32)",
            logits.dims(),
            targets.dims(),
            targets.dtype()
        );
    }
    Ok(())
}

impl fmt::Display for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Task::Multiclass => f.write_str("multiclass"),
            Task::Binary => f.write_str("binary"),
            Task::Multilabel => f.write_str("multilabel"),
            Task::Regression(RegressionLoss::Mse) => f.write_str("regression"),
            Task::Regression(RegressionLoss::Huber { delta }) => write!(f, "regression,loss=huber,delta={delta}"),
        }
    }
}

impl FromStr for Task {
    type Err = ConfigError;

    /// `multiclass`, `binary`, `multilabel` or `regression`, the last optionally followed by
    /// `,loss=mse|huber` and `,delta=D` (Huber's threshold, default 1), e.g.
    /// `regression,loss=huber,delta=0.5`.
    fn from_str(s: &str) -> std::result::Result<Self, ConfigError> {
        let (name, rest) = s.split_once(',').unwrap_or((s, ""));
        let task = match name.trim() {
            "multiclass" => Task::Multiclass,
            "binary" => Task::Binary,
            "multilabel" | "multi-label" => Task::Multilabel,
            "regression" => {
                let (mut huber, mut delta) = (false, None);
                for kv in key_values("--task regression", rest) {
                    let kv = kv?;
                    match kv.key.as_str() {
                        "loss" => huber = kv.named(&[("mse", false), ("huber", true)])?,
                        "delta" => {
                            let d: f64 = kv.parse("a finite number > 0")?;
                            if !(d.is_finite() && d > 0.0) {
                                return Err(kv.invalid("a finite number > 0"));
                            }
                            delta = Some(d);
                        }
                        _ => return Err(kv.unknown(&["loss", "delta"])),
                    }
                }
                match (huber, delta) {
                    (true, d) => Task::Regression(RegressionLoss::Huber { delta: d.unwrap_or(1.0) }),
                    (false, None) => Task::Regression(RegressionLoss::Mse),
                    (false, Some(d)) => {
                        return Err(ConfigError::invalid("`delta` in --task regression", d, "loss=huber with it"))
                    }
                }
            }
            other => return Err(ConfigError::invalid("--task", other, Task::NAMES.join(" | "))),
        };
        if !rest.trim().is_empty() && !matches!(task, Task::Regression(_)) {
            return Err(ConfigError::invalid("--task", s, format!("no options after `{name}`")));
        }
        Ok(task)
    }
}

impl serde::Serialize for Task {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Task {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// A `[n, 1]` column.
    fn t2<const N: usize>(v: &[[f32; 1]; N]) -> Tensor {
        Tensor::new(v, &Device::Cpu).unwrap()
    }

    fn value(t: Tensor) -> f32 {
        t.to_scalar::<f32>().unwrap()
    }

    /// Binary cross-entropy on a 4-sample batch with logits 0, 2, −1, 3 and labels 1, 0, 0, 1:
    /// `ℓ = ln 2, 2 + ln(1+e⁻²), ln(1+e⁻¹), ln(1+e⁻³)`.
    #[test]
    fn binary_cross_entropy_by_hand() {
        let z = t2(&[[0.0], [2.0], [-1.0], [3.0]]);
        let y = t2(&[[1.0], [0.0], [0.0], [1.0]]);
        let l = [2f32.ln(), 2.0 + (1.0 + (-2f32).exp()).ln(), (1.0 + (-1f32).exp()).ln(), (1.0 + (-3f32).exp()).ln()];
        let mean = value(Task::Binary.loss(&z, &y, None).unwrap());
        assert!((mean - l.iter().sum::<f32>() / 4.0).abs() < 1e-6, "{mean}");
        // Weights 1, 2, 0, 1: (ℓ₀ + 2ℓ₁ + ℓ₃) / 4 (SUM_OVER_BATCH_SIZE).
        let w = Tensor::new(&[1f32, 2.0, 0.0, 1.0], &Device::Cpu).unwrap();
        let weighted = value(Task::Binary.loss(&z, &y, Some(&w)).unwrap());
        assert!((weighted - (l[0] + 2.0 * l[1] + l[3]) / 4.0).abs() < 1e-6, "{weighted}");
        // Stable for large logits: ℓ(z = 100, y = 0) = 100, no overflow.
        let big = value(Task::Binary.loss(&t2(&[[100.0]]), &t2(&[[0.0]]), None).unwrap());
        assert!((big - 100.0).abs() < 1e-4, "{big}");
    }

    /// The gradient of the binary loss is `(σ(z) − y) / n`.
    #[test]
    fn binary_gradient_is_sigmoid_minus_label() {
        let z = Var::from_tensor(&t2(&[[0.0], [2.0]])).unwrap();
        let y = t2(&[[1.0], [0.0]]);
        let g = Task::Binary.loss(z.as_tensor(), &y, None).unwrap().backward().unwrap();
        let g = g.get(z.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let s = 1.0 / (1.0 + (-2f32).exp());
        assert!((g[0] - (0.5 - 1.0) / 2.0).abs() < 1e-6 && (g[1] - s / 2.0).abs() < 1e-6, "{g:?}");
    }

    /// Multilabel: the per-sample loss is the mean over the outputs.
    #[test]
    fn multilabel_averages_outputs() {
        let z = Tensor::new(&[[0f32, 0.0], [1.0, -1.0]], &Device::Cpu).unwrap();
        let y = Tensor::new(&[[1f32, 0.0], [1.0, 1.0]], &Device::Cpu).unwrap();
        let (a, b) = ((1.0 + (-1f32).exp()).ln(), 1.0 + (1.0 + (-1f32).exp()).ln());
        // Sample 0: ln 2 twice; sample 1: ln(1+e⁻¹) and 1 + ln(1+e⁻¹).
        let expected = (2f32.ln() + (a + b) / 2.0) / 2.0;
        let got = value(Task::Multilabel.loss(&z, &y, None).unwrap());
        assert!((got - expected).abs() < 1e-6, "{got} vs {expected}");
    }

    /// MSE and Huber on errors 0.5, −2, 3, 0 (δ = 1): squared 0.25, 4, 9, 0; Huber 0.125, 1.5, 2.5, 0.
    #[test]
    fn regression_losses_by_hand() {
        let z = t2(&[[1.5], [0.0], [3.0], [1.0]]);
        let y = t2(&[[1.0], [2.0], [0.0], [1.0]]);
        let mse = value(Task::Regression(RegressionLoss::Mse).loss(&z, &y, None).unwrap());
        assert!((mse - 13.25 / 4.0).abs() < 1e-6, "{mse}");
        let huber = Task::Regression(RegressionLoss::Huber { delta: 1.0 });
        assert!((value(huber.loss(&z, &y, None).unwrap()) - 4.125 / 4.0).abs() < 1e-6);
        let w = Tensor::new(&[0f32, 1.0, 1.0, 3.0], &Device::Cpu).unwrap();
        let weighted = value(Task::Regression(RegressionLoss::Mse).loss(&z, &y, Some(&w)).unwrap());
        assert!((weighted - 13.0 / 4.0).abs() < 1e-6, "{weighted}");
    }

    /// Weighted multiclass: `Σ wᵢ CEᵢ / n`; with all weights 1 it equals the one-op cross-entropy.
    #[test]
    fn weighted_multiclass() {
        let z = Tensor::new(&[[0f32, 0.0], [1.0, 2.0]], &Device::Cpu).unwrap();
        let y = Tensor::new(&[0u32, 1], &Device::Cpu).unwrap();
        let ones = Tensor::new(&[1f32, 1.0], &Device::Cpu).unwrap();
        let plain = value(Task::Multiclass.loss(&z, &y, None).unwrap());
        let weighted = value(Task::Multiclass.loss(&z, &y, Some(&ones)).unwrap());
        assert!((plain - weighted).abs() < 1e-6);
        let w = Tensor::new(&[3f32, 0.0], &Device::Cpu).unwrap();
        let got = value(Task::Multiclass.loss(&z, &y, Some(&w)).unwrap());
        assert!((got - 3.0 * 2f32.ln() / 2.0).abs() < 1e-6, "{got}");
    }

    #[test]
    fn parses_and_prints() {
        assert_eq!("multiclass".parse::<Task>().unwrap(), Task::Multiclass);
        assert_eq!("binary".parse::<Task>().unwrap(), Task::Binary);
        let huber: Task = "regression,loss=huber,delta=0.5".parse().unwrap();
        assert_eq!(huber, Task::Regression(RegressionLoss::Huber { delta: 0.5 }));
        assert_eq!(huber.to_string().parse::<Task>().unwrap(), huber);
        assert_eq!(
            "regression,loss=huber".parse::<Task>().unwrap(),
            Task::Regression(RegressionLoss::Huber { delta: 1.0 })
        );
        for bad in ["softmax", "binary,loss=mse", "regression,loss=l1", "regression,delta=0", "regression,delta=1"] {
            assert!(bad.parse::<Task>().is_err(), "{bad}");
        }
        let err = "ranking".parse::<Task>().unwrap_err().to_string();
        assert!(err.contains("multiclass | binary | multilabel | regression"), "{err}");
    }
}
