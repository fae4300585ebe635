//! An ensemble of trained models as one model: the mean of their probabilities (or values).

use crate::loss::Task;
use crate::model::Model;
use candle_core::{Result, Tensor, D};

/// Several trained models read as one: [`Ensemble::forward_t`] gives the outputs whose task
/// probabilities are the **mean of the members' probabilities** (the ensemble `nsl predict --run A
/// --run B …` writes, and `nsl evaluate` scores).
///
/// # How it is computed
/// With `M` members and their logits `z_m`:
/// - multiclass: `ln p̄ = logsumexp_m(log_softmax(z_m)) − ln M`, whose softmax is `p̄ = 1/M·Σ
///   softmax(z_m)` exactly (the log-probabilities serve as logits: the arg-max, the cross-entropy
///   `−ln p̄_y` and every metric are those of `p̄`);
/// - binary and multilabel: `ln p̄ − ln(1 − p̄)` per output with `p̄ = 1/M·Σ σ(z_m)`, from `ln σ(z) =
///   min(z, 0) − ln(1 + e^{−|z|})` (no overflow for large logits);
/// - regression: the mean of the values.
///
/// Every member reads the same input; it is differentiable, so attacks craft their perturbations
/// on the ensemble itself.
///
/// # Example
/// ```
/// use candle_core::{Device, Tensor};
/// use nsl::eval::Ensemble;
/// use nsl::loss::Task;
/// use nsl::model::Model;
///
/// // Two "models" that ignore their input: logits ln(0.9, 0.1) and ln(0.5, 0.5).
/// struct Fixed(Vec<f32>);
/// impl candle_nn::Module for Fixed {
///     fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
///         Tensor::new(self.0.as_slice(), &Device::Cpu)?.unsqueeze(0)?.broadcast_as((xs.dim(0)?, 2))?.contiguous()
///     }
/// }
/// let members: Vec<Box<dyn Model>> = vec![
///     Box::new(Fixed(vec![0.9f32.ln(), 0.1f32.ln()])),
///     Box::new(Fixed(vec![0.5f32.ln(), 0.5f32.ln()])),
/// ];
/// let ensemble = Ensemble::new(members, Task::Multiclass).unwrap();
/// let x = Tensor::zeros((1, 3), candle_core::DType::F32, &Device::Cpu).unwrap();
/// let p = candle_nn::ops::softmax(&ensemble.forward_t(&x, false).unwrap(), 1).unwrap();
/// let p: Vec<f32> = p.flatten_all().unwrap().to_vec1().unwrap();
/// assert!((p[0] - 0.7).abs() < 1e-6 && (p[1] - 0.3).abs() < 1e-6);
/// ```
pub struct Ensemble {
    members: Vec<Box<dyn Model>>,
    task: Task,
}

impl Ensemble {
    /// The ensemble of `members` (at least one) for `task`.
    ///
    /// # Errors
    /// No member.
    pub fn new(members: Vec<Box<dyn Model>>, task: Task) -> Result<Self> {
        if members.is_empty() {
            candle_core::bail!("an ensemble needs at least one model");
        }
        Ok(Self { members, task })
    }

    /// The number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Always false: an ensemble has a member ([`Ensemble::new`]).
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
}

impl std::fmt::Debug for Ensemble {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ensemble").field("members", &self.members.len()).field("task", &self.task).finish()
    }
}

/// `ln(1/M · Σ_m exp(x_m))` over the first axis of `[M, …]`.
fn log_mean_exp(x: &Tensor) -> Result<Tensor> {
    let m = x.dim(0)? as f64;
    let max = x.max_keepdim(0)?;
    let sum = x.broadcast_sub(&max)?.exp()?.sum_keepdim(0)?;
    (sum.log()? + max)?.squeeze(0)? - m.ln()
}

/// `ln σ(z) = min(z, 0) − ln(1 + e^{−|z|})`.
fn log_sigmoid(z: &Tensor) -> Result<Tensor> {
    z.minimum(0f32)? - (z.abs()?.neg()?.exp()? + 1.0)?.log()?
}

impl candle_nn::ModuleT for Ensemble {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        let logits = self.members.iter().map(|m| m.forward_t(xs, train)).collect::<Result<Vec<_>>>()?;
        if let [only] = logits.as_slice() {
            if matches!(self.task, Task::Regression(_)) {
                return Ok(only.clone());
            }
        }
        let z = Tensor::stack(&logits, 0)?;
        match self.task {
            Task::Regression(_) => z.mean(0),
            Task::Binary | Task::Multilabel => {
                let (p, q) = (log_mean_exp(&log_sigmoid(&z)?)?, log_mean_exp(&log_sigmoid(&z.neg()?)?)?);
                p - q
            }
            _ => log_mean_exp(&candle_nn::ops::log_softmax(&z, D::Minus1)?),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loss::RegressionLoss;
    use candle_core::Device;
    use candle_nn::ModuleT;

    /// A model whose logits are `rows`, whatever its input.
    struct Fixed(Vec<Vec<f32>>);
    impl candle_nn::Module for Fixed {
        fn forward(&self, _xs: &Tensor) -> Result<Tensor> {
            Tensor::new(self.0.clone(), &Device::Cpu)
        }
    }

    fn ensemble(task: Task, members: &[Vec<Vec<f32>>]) -> Ensemble {
        let members = members.iter().map(|m| Box::new(Fixed(m.clone())) as Box<dyn Model>).collect();
        Ensemble::new(members, task).unwrap()
    }

    fn outputs(e: &Ensemble) -> Vec<Vec<f32>> {
        ModuleT::forward_t(e, &Tensor::zeros((2, 1), candle_core::DType::F32, &Device::Cpu).unwrap(), false)
            .unwrap()
            .to_vec2()
            .unwrap()
    }

    #[test]
    fn multiclass_softmax_is_the_mean_of_the_members() {
        // Member 1: softmax of (0, ln 3) = (0.25, 0.75); member 2: (ln 4, 0) → (0.8, 0.2); mean
        // (0.525, 0.475). Second row: large logits, (1, 0) and (0, 1) → (0.5, 0.5).
        let e = ensemble(
            Task::Multiclass,
            &[vec![vec![0.0, 3f32.ln()], vec![1000.0, 0.0]], vec![vec![4f32.ln(), 0.0], vec![0.0, 1000.0]]],
        );
        let out = outputs(&e);
        let p: Vec<f32> = out[0].iter().map(|v| v.exp()).collect();
        assert!((p[0] - 0.525).abs() < 1e-6 && (p[1] - 0.475).abs() < 1e-6, "{p:?}");
        assert!(out[1].iter().all(|v| (v - 0.5f32.ln()).abs() < 1e-6), "{:?}", out[1]);
    }

    #[test]
    fn sigmoid_tasks_average_probabilities() {
        // σ⁻¹ of the mean of σ(ln 3) = 0.75 and σ(−ln 3) = 0.25 is 0; of 0.5 and σ(60) ≈ 1: ln 3.
        let e = ensemble(Task::Binary, &[vec![vec![3f32.ln()], vec![0.0]], vec![vec![-(3f32.ln())], vec![60.0]]]);
        let out = outputs(&e);
        assert!(out[0][0].abs() < 1e-6, "{out:?}");
        assert!((out[1][0] - 3f32.ln()).abs() < 1e-5, "{out:?}");
    }

    #[test]
    fn regression_averages_values() {
        let e =
            ensemble(Task::Regression(RegressionLoss::Mse), &[vec![vec![1.0], vec![2.0]], vec![vec![3.0], vec![-2.0]]]);
        assert_eq!(outputs(&e), vec![vec![2.0], vec![0.0]]);
        assert!(Ensemble::new(Vec::new(), Task::Multiclass).is_err());
    }
}
