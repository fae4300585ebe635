//! The loss terms of the adversarial-training objectives that compare a sample's prediction with
//! its adversarial neighbor's: TRADES' KL ([`trades_kl`]) and MART's boosted cross-entropy and
//! misclassification-weighted KL ([`mart_terms`]). The objectives themselves are described in
//! [`AdvObjective`](crate::regularize::AdvObjective).
//!
//! # Reduction
//! As [`Task::loss`]: one value per sample, then `Σ wᵢ ℓᵢ / n` (`wᵢ = 1` without weights), the
//! reference implementations' `(1 / batch_size) · Σ` when every weight is 1.

use super::task::{weighted_mean, Task};
use candle_core::{Result, Tensor};
use candle_nn::ops::log_softmax;

/// TRADES' robust term (Zhang et al. 2019): `KL(p ‖ q)` of the clean prediction `p` (from
/// `logits`) and the neighbor's `q` (from `adv_logits`), both `[n, outputs]`.
///
/// # Formula
/// Multiclass: `KLᵢ = Σⱼ pᵢⱼ (log pᵢⱼ − log qᵢⱼ)` with `p = softmax(z)`, `q = softmax(z′)` (the
/// reference's `KLDivLoss(log_softmax(z′), softmax(z), reduction=sum) / n`). Binary and multilabel:
/// each output is a Bernoulli probability `σ(z)`, `KLᵢ` is the mean over the outputs of
/// `p (log p − log q) + (1 − p)(log(1 − p) − log(1 − q))`. Then `Σ wᵢ KLᵢ / n`. Gradients flow
/// through both `p` and `q` (the reference's outer loss does not detach `p`; detach `logits` for
/// the inner maximization).
///
/// # Errors
/// A regression task (no probabilities to compare), shapes that differ, or a candle error.
pub fn trades_kl(task: Task, logits: &Tensor, adv_logits: &Tensor, weights: Option<&Tensor>) -> Result<Tensor> {
    if logits.dims() != adv_logits.dims() {
        candle_core::bail!(
            "trades_kl: clean outputs {:?} and adversarial outputs {:?}",
            logits.dims(),
            adv_logits.dims()
        );
    }
    let per_sample = match task {
        Task::Multiclass => {
            let (log_p, log_q) = (log_softmax(logits, 1)?, log_softmax(adv_logits, 1)?);
            (log_p.exp()? * (log_p - log_q)?)?.sum(1)?
        }
        Task::Binary | Task::Multilabel => {
            let (log_p1, log_p0) = (log_sigmoid(logits)?, log_sigmoid(&logits.neg()?)?);
            let (log_q1, log_q0) = (log_sigmoid(adv_logits)?, log_sigmoid(&adv_logits.neg()?)?);
            let one = (log_p1.exp()? * (&log_p1 - log_q1)?)?;
            let zero = (log_p0.exp()? * (&log_p0 - log_q0)?)?;
            (one + zero)?.mean(1)?
        }
        _ => candle_core::bail!("trades_kl: the {task} task has no predicted probabilities to compare"),
    };
    weighted_mean(&per_sample, weights)
}

/// MART's two terms (Wang et al. 2020) for class labels `y` (`[n]`, u32): the boosted
/// cross-entropy of the neighbors and the KL weighted by the clean misclassification, each reduced
/// to `Σ wᵢ ℓᵢ / n`. MART's loss is `bce + λ·kl`.
///
/// # Formula
/// With `p = softmax(z)`, `q = softmax(z′)` and `k* = argmax_{k≠y} qₖ` (not differentiated, the
/// reference's `new_y`):
///
/// ```text
/// bceᵢ = −log qᵢ,y − log(1.0001 − qᵢ,k*)
/// klᵢ  = (Σⱼ pᵢⱼ (log pᵢⱼ − log qᵢⱼ)) · (1 − pᵢ,y)
/// ```
///
/// The 1.0001 is the reference's, which keeps the log finite when `qₖ*` reaches 1. Gradients flow
/// through `p` in both factors of `kl`, as in the reference.
///
/// # Errors
/// Shapes that do not match, a label out of range, or a candle error.
pub fn mart_terms(
    logits: &Tensor,
    adv_logits: &Tensor,
    y: &Tensor,
    weights: Option<&Tensor>,
) -> Result<(Tensor, Tensor)> {
    let (n, classes) = adv_logits.dims2()?;
    if logits.dims() != adv_logits.dims() || y.dims() != [n] {
        candle_core::bail!(
            "mart: clean outputs {:?}, adversarial outputs {:?} and labels {:?} do not match",
            logits.dims(),
            adv_logits.dims(),
            y.dims()
        );
    }
    let labels = y.to_vec1::<u32>()?;
    if let Some(bad) = labels.iter().find(|&&c| c as usize >= classes) {
        candle_core::bail!("mart: label {bad} is out of range for {classes} classes");
    }
    let column = y.unsqueeze(1)?;
    let log_q = log_softmax(adv_logits, 1)?;
    let q = log_q.exp()?;
    // The most likely wrong class of each neighbor: the label's probability pushed below 0.
    let mut mask = vec![0f32; n * classes];
    for (i, &c) in labels.iter().enumerate() {
        mask[i * classes + c as usize] = 2.0;
    }
    let mask = Tensor::from_vec(mask, (n, classes), adv_logits.device())?;
    let wrong = (q.detach() - mask)?.argmax_keepdim(1)?;
    let q_wrong = q.gather(&wrong, 1)?.squeeze(1)?;
    let ce = log_q.gather(&column, 1)?.squeeze(1)?.neg()?;
    let bce = (ce - q_wrong.affine(-1.0, 1.0001)?.log()?)?;
    let log_p = log_softmax(logits, 1)?;
    let p = log_p.exp()?;
    let kl = (&p * (&log_p - &log_q)?)?.sum(1)?;
    let right = p.gather(&column, 1)?.squeeze(1)?;
    let weighted_kl = (kl * right.affine(-1.0, 1.0)?)?;
    Ok((weighted_mean(&bce, weights)?, weighted_mean(&weighted_kl, weights)?))
}

/// `log σ(z) = −softplus(−z) = −(max(−z, 0) + log(1 + e^−|z|))`, elementwise and stable.
fn log_sigmoid(z: &Tensor) -> Result<Tensor> {
    let soft = z.abs()?.neg()?.exp()?.affine(1.0, 1.0)?.log()?;
    (z.neg()?.relu()? + soft)?.neg()
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn value(t: &Tensor) -> f64 {
        t.to_scalar::<f32>().unwrap() as f64
    }

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }

    /// Two samples, two classes: clean logits `[0, 0]` and `[ln 3, 0]` (p = ½,½ and ¾,¼), adversarial
    /// `[ln 3, 0]` and `[0, 0]` (q = ¾,¼ and ½,½).
    fn tiny() -> (Tensor, Tensor) {
        let dev = Device::Cpu;
        let l3 = 3f32.ln();
        (Tensor::new(&[[0f32, 0.0], [l3, 0.0]], &dev).unwrap(), Tensor::new(&[[l3, 0f32], [0.0, 0.0]], &dev).unwrap())
    }

    #[test]
    fn trades_kl_by_hand() {
        let (z, z_adv) = tiny();
        // KL₀ = ½ ln(½/¾) + ½ ln(½/¼) = ½ ln(4/3); KL₁ = ¾ ln(3/2) + ¼ ln(1/2).
        let kl0 = 0.5 * (4f64 / 3.0).ln();
        let kl1 = 0.75 * 1.5f64.ln() + 0.25 * 0.5f64.ln();
        close(value(&trades_kl(Task::Multiclass, &z, &z_adv, None).unwrap()), (kl0 + kl1) / 2.0);
        let w = Tensor::new(&[2f32, 0.0], &Device::Cpu).unwrap();
        close(value(&trades_kl(Task::Multiclass, &z, &z_adv, Some(&w)).unwrap()), 2.0 * kl0 / 2.0);
        // Identical outputs: 0.
        close(value(&trades_kl(Task::Multiclass, &z, &z, None).unwrap()), 0.0);
        // Binary: one logit 0 (p = ½) against ln 3 (q = ¾): ½ ln(½/¾) + ½ ln(½/¼) = ½ ln(4/3).
        let b = Tensor::new(&[[0f32]], &Device::Cpu).unwrap();
        let b_adv = Tensor::new(&[[3f32.ln()]], &Device::Cpu).unwrap();
        close(value(&trades_kl(Task::Binary, &b, &b_adv, None).unwrap()), kl0);
        let regression = Task::Regression(Default::default());
        assert!(trades_kl(regression, &b, &b_adv, None).is_err());
    }

    #[test]
    fn mart_terms_by_hand() {
        // Three classes so that the most likely wrong class matters.
        let dev = Device::Cpu;
        // q = softmax([ln 2, ln 1, ln 1]) = (½, ¼, ¼) for sample 0 (label 1: wrong max is class 0, q = ½);
        // p = softmax([0, 0, 0]) = ⅓ each.
        let z = Tensor::new(&[[0f32, 0.0, 0.0]], &dev).unwrap();
        let z_adv = Tensor::new(&[[2f32.ln(), 0.0, 0.0]], &dev).unwrap();
        let y = Tensor::new(&[1u32], &dev).unwrap();
        let (bce, kl) = mart_terms(&z, &z_adv, &y, None).unwrap();
        // bce = −ln ¼ − ln(1.0001 − ½); kl = (⅓ ln(⅓/½) + 2·⅓ ln(⅓/¼)) · (1 − ⅓).
        close(value(&bce), -(0.25f64).ln() - (1.0001f64 - 0.5).ln());
        let third = 1.0 / 3.0f64;
        let kl_expected = (third * (third / 0.5).ln() + 2.0 * third * (third / 0.25).ln()) * (1.0 - third);
        close(value(&kl), kl_expected);
        // Label 0: the wrong classes have ¼ each; the clean prediction's weight is still ⅔.
        let (bce0, _) = mart_terms(&z, &z_adv, &Tensor::new(&[0u32], &dev).unwrap(), None).unwrap();
        close(value(&bce0), -(0.5f64).ln() - (1.0001f64 - 0.25).ln());
        // A confident right clean prediction weighs its KL by 1 − p_y: p = (e⁴, 1, 1)/(e⁴ + 2).
        let sure = Tensor::new(&[[4f32, 0.0, 0.0]], &dev).unwrap();
        let (_, kl_sure) = mart_terms(&sure, &z_adv, &Tensor::new(&[0u32], &dev).unwrap(), None).unwrap();
        let e4 = 4f64.exp();
        let p = [e4 / (e4 + 2.0), 1.0 / (e4 + 2.0), 1.0 / (e4 + 2.0)];
        let q = [0.5, 0.25, 0.25];
        let kl_raw: f64 = p.iter().zip(q).map(|(p, q)| p * (p / q).ln()).sum();
        close(value(&kl_sure), kl_raw * (1.0 - p[0]));
        // Weights 3: three times the term over one sample.
        let w = Tensor::new(&[3f32], &dev).unwrap();
        let (bce_w, _) = mart_terms(&z, &z_adv, &y, Some(&w)).unwrap();
        close(value(&bce_w), 3.0 * value(&bce));
        assert!(mart_terms(&z, &z_adv, &Tensor::new(&[3u32], &dev).unwrap(), None).is_err());
    }
}
