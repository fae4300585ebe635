//! Distillation from a graph-aware teacher into a model that reads features alone (GLNN: Zhang,
//! Liu, Sun, Shah, "Graph-less Neural Networks: Teaching Old MLPs New Tricks via Distillation",
//! ICLR 2022).
//!
//! # Formula
//! For the batch's `n` centers `i` (labeled **and** unlabeled), the teacher's class probabilities
//! `pᵢ`, the student's logits `zᵢ` and the temperature `T`:
//!
//! `qᵢ = pᵢ^{1/T} / Σ_c pᵢc^{1/T}` (the teacher softened or sharpened; `q = p` at `T = 1`),
//! `sᵢ = softmax(zᵢ / T)`,
//!
//! `L_KD = T² · (1/n) Σᵢ KL(qᵢ ‖ sᵢ) = T² · (1/n) Σᵢ Σ_c qᵢc (log qᵢc − log sᵢc)`,
//!
//! with `0 · log 0 = 0`, and the training objective `L = L_sup(y, f(x_L)) + multiplier · L_KD` (plus
//! any other term). The gradient with respect to the logits is `∂L_KD/∂zᵢ = (T/n)(sᵢ − qᵢ)`: the
//! `T²` factor (Hinton, Vinyals, Dean 2015) keeps its size from shrinking as `T` grows.
//!
//! # How it differs from GLNN
//! GLNN trains on `λ·CE + (1 − λ)·KL` over every node, full batch, with a GraphSAGE teacher trained on
//! the same split. Here the KL term is added to the other terms with its own multiplier (`λ = 1 /
//! (1 + multiplier)` up to the learning rate), over the centers of each mini-batch (the labeled
//! samples and the unlabeled ones drawn with them), so it combines with graph regularization (e.g.
//! Graph-MLP's contrastive term); the teacher is any table of probabilities (a model on propagated
//! features, label propagation, …), and the temperature softens the teacher's probabilities, as
//! it would its logits.

use crate::config::{ConfigError, KeyValue};
use candle_core::{DType, Result, Tensor};
use serde::{Deserialize, Serialize};

/// Settings of the distillation term. `Default`: multiplier 1, temperature 1 (GLNN's plain KL).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DistillConfig {
    /// Weight of `L_KD` in the total loss, ≥ 0. Default 1.
    pub multiplier: f64,
    /// The temperature `T > 0` (see the module docs). Default 1.
    pub temperature: f64,
}

impl Default for DistillConfig {
    fn default() -> Self {
        DistillConfig { multiplier: 1.0, temperature: 1.0 }
    }
}

impl DistillConfig {
    /// Checks the values.
    ///
    /// # Errors
    /// [`ConfigError::InvalidValue`] for a multiplier that is not a finite number ≥ 0, or a
    /// temperature that is not a finite number > 0.
    pub fn validate(&self) -> std::result::Result<(), ConfigError> {
        if !(self.multiplier.is_finite() && self.multiplier >= 0.0) {
            return Err(ConfigError::invalid("distill multiplier", self.multiplier, "a finite number ≥ 0"));
        }
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return Err(ConfigError::invalid("distill temperature", self.temperature, "a finite number > 0"));
        }
        Ok(())
    }

    /// Applies one `multiplier=` or `temperature=` pair of a `key=value` list; `Ok(false)` for
    /// another key (the caller's, e.g. `teacher=`).
    pub(crate) fn apply(&mut self, kv: &KeyValue) -> std::result::Result<bool, ConfigError> {
        match kv.key.as_str() {
            "multiplier" => self.multiplier = kv.parse("a number ≥ 0")?,
            "temperature" => self.temperature = kv.parse("a temperature > 0")?,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// `L_KD` of the module docs (unscaled by the multiplier) for the student's `logits` `[n, C]` and
/// the teacher's probabilities `teacher` `[n, C]` (rows summing to 1), at `temperature`.
///
/// # Example
/// ```
/// use candle_core::{Device, Tensor};
/// let dev = Device::Cpu;
/// // Student logits [0, 0] (s = [½, ½]), teacher [¾, ¼]: KL = ¾ ln(3/2) + ¼ ln(1/2).
/// let logits = Tensor::new(&[[0f32, 0.0]], &dev)?;
/// let teacher = Tensor::new(&[[0.75f32, 0.25]], &dev)?;
/// let kl = nsl::loss::distill_loss(&logits, &teacher, 1.0)?.to_scalar::<f32>()?;
/// assert!((kl - (0.75 * 1.5f32.ln() + 0.25 * 0.5f32.ln())).abs() < 1e-6);
/// # Ok::<(), candle_core::Error>(())
/// ```
///
/// # Errors
/// A candle error if the shapes differ.
pub fn distill_loss(logits: &Tensor, teacher: &Tensor, temperature: f64) -> Result<Tensor> {
    if logits.dims() != teacher.dims() {
        return Err(candle_core::Error::Msg(format!(
            "distillation: shape mismatch between the logits {:?} and the teacher's probabilities {:?}",
            logits.dims(),
            teacher.dims()
        )));
    }
    let teacher = teacher.to_dtype(DType::F32)?.detach();
    let q = match temperature == 1.0 {
        true => teacher,
        false => {
            let powered = teacher.powf(1.0 / temperature)?;
            powered.broadcast_div(&powered.sum_keepdim(1)?)?
        }
    };
    let log_s = candle_nn::ops::log_softmax(&(logits / temperature)?, 1)?;
    // Σ q log q is a constant; a floor on q keeps 0 · log 0 at 0.
    let log_q = q.maximum(1e-30)?.log()?;
    let kl = (&q * (log_q - log_s)?)?.sum(1)?.mean_all()?;
    kl * (temperature * temperature)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// Three centers, three classes: student logits `z` and teacher probabilities `p`
    /// (one one-hot row with zeros, one uniform, one general).
    fn three_nodes() -> (Tensor, Tensor) {
        let dev = Device::Cpu;
        let z = Tensor::new(&[[1.0f32, 0.0, 0.0], [0.0, 0.0, 0.0], [2.0, 1.0, 0.0]], &dev).unwrap();
        let p = Tensor::new(&[[1.0f32, 0.0, 0.0], [0.2, 0.3, 0.5], [0.25, 0.25, 0.5]], &dev).unwrap();
        (z, p)
    }

    /// Softmax of a row, in f64.
    fn softmax(z: &[f64]) -> Vec<f64> {
        let e: Vec<f64> = z.iter().map(|v| v.exp()).collect();
        let s: f64 = e.iter().sum();
        e.into_iter().map(|v| v / s).collect()
    }

    /// `L_KD` and `∂L_KD/∂z` by hand (f64), at temperature `t`.
    fn by_hand(t: f64) -> (f64, Vec<Vec<f64>>) {
        let z = [[1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [2.0, 1.0, 0.0]];
        let p = [[1.0, 0.0, 0.0], [0.2, 0.3, 0.5], [0.25, 0.25, 0.5]];
        let (mut loss, mut grad) = (0.0, Vec::new());
        for (zi, pi) in z.iter().zip(&p) {
            let powered: Vec<f64> = pi.iter().map(|v: &f64| v.powf(1.0 / t)).collect();
            let total: f64 = powered.iter().sum();
            let q: Vec<f64> = powered.iter().map(|v| v / total).collect();
            let s = softmax(&zi.iter().map(|v| v / t).collect::<Vec<_>>());
            loss += q.iter().zip(&s).filter(|(q, _)| **q > 0.0).map(|(q, s)| q * (q / s).ln()).sum::<f64>();
            grad.push(s.iter().zip(&q).map(|(s, q)| t / 3.0 * (s - q)).collect());
        }
        (t * t * loss / 3.0, grad)
    }

    #[test]
    fn value_and_gradient_match_hand_values() {
        for t in [1.0, 2.0, 0.5] {
            let (z, p) = three_nodes();
            let var = Var::from_tensor(&z).unwrap();
            let loss = distill_loss(var.as_tensor(), &p, t).unwrap();
            let (expected, expected_grad) = by_hand(t);
            let value = loss.to_scalar::<f32>().unwrap() as f64;
            assert!((value - expected).abs() < 1e-5, "T = {t}: {value} vs {expected}");
            let grads = loss.backward().unwrap();
            let g = grads.get(var.as_tensor()).unwrap().to_vec2::<f32>().unwrap();
            for (row, want) in g.iter().zip(&expected_grad) {
                for (a, b) in row.iter().zip(want) {
                    assert!((f64::from(*a) - b).abs() < 1e-5, "T = {t}: {g:?} vs {expected_grad:?}");
                }
            }
        }
    }

    /// At T = 1, the first node (teacher one-hot on class 0, student softmax of [1, 0, 0]) alone:
    /// KL = −log s₀ = log(e + 2) − 1.
    #[test]
    fn one_hot_teacher_is_cross_entropy() {
        let dev = Device::Cpu;
        let z = Tensor::new(&[[1.0f32, 0.0, 0.0]], &dev).unwrap();
        let p = Tensor::new(&[[1.0f32, 0.0, 0.0]], &dev).unwrap();
        let kl = distill_loss(&z, &p, 1.0).unwrap().to_scalar::<f32>().unwrap();
        assert!((kl - ((1f32.exp() + 2.0).ln() - 1.0)).abs() < 1e-6, "{kl}");
    }

    #[test]
    fn refuses_mismatched_shapes_and_bad_settings() {
        let (z, _) = three_nodes();
        let p = Tensor::new(&[[0.5f32, 0.5]], &Device::Cpu).unwrap();
        let err = distill_loss(&z, &p, 1.0).unwrap_err().to_string();
        assert!(err.contains("[3, 3]") && err.contains("[1, 2]"), "{err}");
        assert!(DistillConfig { multiplier: -1.0, ..Default::default() }.validate().is_err());
        assert!(DistillConfig { temperature: 0.0, ..Default::default() }.validate().is_err());
        assert!(DistillConfig::default().validate().is_ok());
    }
}
