//! The per-sample losses the attacks maximize, and their gradients with respect to the logits.
//!
//! The gradient with respect to the input is then `Jᵀ·∂L/∂z` (one backward pass through the
//! model of `Σ zᵢ·gᵢ` with `g` held constant), which is what autograd computes through the loss:
//! writing the loss here, on the host, keeps the sort of DLR out of the candle graph and lets the
//! tests check each value and gradient by hand.
//!
//! # Formulas
//! With `z` the logits of one sample, `y` its label and `π` the classes sorted by decreasing logit:
//!
//! ```text
//! CE(z, y)         = log Σᵢ exp zᵢ − z_y
//! DLR(z, y)        = −(z_y − max_{i≠y} zᵢ) / (z_π1 − z_π3 + 1e−12)
//! DLR-T(z, y, t)   = −(z_y − z_t) / (z_π1 − (z_π3 + z_π4)/2 + 1e−12)
//! margin(z, y)     = z_y − max_{i≠y} zᵢ
//! ```
//!
//! (Croce & Hein 2020, eq. (5) and (6); AutoAttack's `dlr_loss` and `dlr_loss_targeted` in
//! `autoattack/autopgd_base.py`; the margin is Square's loss, `margin_and_loss` in
//! `autoattack/square.py`.) Ties in the sort go to the lower class index.

/// The loss an APGD run maximizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Objective {
    /// Cross-entropy.
    Ce,
    /// Difference of logits ratio.
    Dlr,
    /// Targeted DLR (the target is given per sample).
    DlrTargeted,
}

/// Class indices sorted by decreasing logit (ties: lower index first).
fn order(z: &[f32]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..z.len()).collect();
    idx.sort_by(|&a, &b| z[b].total_cmp(&z[a]).then(a.cmp(&b)));
    idx
}

/// `CE(z, y)`; writes `∂CE/∂z = softmax(z) − e_y` into `grad`.
pub(crate) fn cross_entropy(z: &[f32], y: usize, grad: &mut [f32]) -> f32 {
    let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0f64;
    for (g, &v) in grad.iter_mut().zip(z) {
        let e = f64::from(v - max).exp();
        *g = e as f32;
        sum += e;
    }
    for g in grad.iter_mut() {
        *g = (f64::from(*g) / sum) as f32;
    }
    grad[y] -= 1.0;
    (sum.ln() + f64::from(max) - f64::from(z[y])) as f32
}

/// `DLR(z, y)` (needs 3 classes); writes `∂DLR/∂z` into `grad`.
pub(crate) fn dlr(z: &[f32], y: usize, grad: &mut [f32]) -> f32 {
    let pi = order(z);
    // The best class other than y: π1, or π2 when y is π1.
    let other = if pi[0] == y { pi[1] } else { pi[0] };
    let num = f64::from(z[y]) - f64::from(z[other]);
    let den = f64::from(z[pi[0]]) - f64::from(z[pi[2]]) + 1e-12;
    grad.fill(0.0);
    // L = −num/den: ∂L = −∂num/den + num/den²·∂den.
    grad[y] -= (1.0 / den) as f32;
    grad[other] += (1.0 / den) as f32;
    grad[pi[0]] += (num / (den * den)) as f32;
    grad[pi[2]] -= (num / (den * den)) as f32;
    (-num / den) as f32
}

/// `DLR-T(z, y, t)` (needs 4 classes); writes `∂DLR-T/∂z` into `grad`.
pub(crate) fn dlr_targeted(z: &[f32], y: usize, t: usize, grad: &mut [f32]) -> f32 {
    let pi = order(z);
    let num = f64::from(z[y]) - f64::from(z[t]);
    let den = f64::from(z[pi[0]]) - 0.5 * (f64::from(z[pi[2]]) + f64::from(z[pi[3]])) + 1e-12;
    grad.fill(0.0);
    grad[y] -= (1.0 / den) as f32;
    grad[t] += (1.0 / den) as f32;
    let r = num / (den * den);
    grad[pi[0]] += r as f32;
    grad[pi[2]] -= (0.5 * r) as f32;
    grad[pi[3]] -= (0.5 * r) as f32;
    (-num / den) as f32
}

/// `margin(z, y) = z_y − max_{i≠y} zᵢ`: positive while the sample is classified correctly.
pub(crate) fn margin(z: &[f32], y: usize) -> f32 {
    let other = z.iter().enumerate().filter(|&(i, _)| i != y).map(|(_, &v)| v).fold(f32::NEG_INFINITY, f32::max);
    z[y] - other
}

/// The index of the largest logit (the first of equal ones).
pub(crate) fn argmax(z: &[f32]) -> usize {
    let mut best = 0;
    for (j, &v) in z.iter().enumerate() {
        if v > z[best] {
            best = j;
        }
    }
    best
}

/// The `k`-th most likely class (`k = 0` is the prediction), as AutoAttack picks targets:
/// `output.sort(dim=1)[1][:, -(k + 1)]`.
pub(crate) fn ranked_class(z: &[f32], k: usize) -> usize {
    order(z)[k]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Central differences of `f` at `z`, to check an analytic gradient.
    fn numeric(z: &[f32], f: impl Fn(&[f32]) -> f32) -> Vec<f32> {
        (0..z.len())
            .map(|i| {
                let (mut a, mut b) = (z.to_vec(), z.to_vec());
                a[i] += 1e-3;
                b[i] -= 1e-3;
                (f(&a) - f(&b)) / 2e-3
            })
            .collect()
    }

    fn close(a: &[f32], b: &[f32], tol: f32) {
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < tol, "{a:?} vs {b:?}");
        }
    }

    /// z = [3, 1, 0, −1], y = 0: DLR = −(3 − 1)/(3 − 0) = −2/3; ∂/∂z = [−1/3 + 2/9, 1/3, −2/9, 0].
    #[test]
    fn dlr_by_hand_correct_sample() {
        let z = [3.0f32, 1.0, 0.0, -1.0];
        let mut g = [0.0f32; 4];
        let v = dlr(&z, 0, &mut g);
        assert!((v + 2.0 / 3.0).abs() < 1e-6, "{v}");
        close(&g, &[-1.0 / 3.0 + 2.0 / 9.0, 1.0 / 3.0, -2.0 / 9.0, 0.0], 1e-6);
        close(&g, &numeric(&z, |z| dlr(z, 0, &mut [0.0; 4])), 1e-2);
    }

    /// z = [3, 1, 0, −1], y = 2 (misclassified): DLR = −(0 − 3)/3 = 1; ∂/∂z = [1/3 − 1/3, 0, −1/3 + 1/3, 0]
    /// = [0, 0, 0, 0] since y is π3 and the other class is π1.
    #[test]
    fn dlr_by_hand_misclassified_sample() {
        let z = [3.0f32, 1.0, 0.0, -1.0];
        let mut g = [0.0f32; 4];
        assert!((dlr(&z, 2, &mut g) - 1.0).abs() < 1e-6);
        close(&g, &[0.0, 0.0, 0.0, 0.0], 1e-6);
        let z = [3.0f32, 1.0, 0.5, -1.0];
        let v = dlr(&z, 1, &mut g);
        // −(1 − 3)/(3 − 0.5) = 0.8.
        assert!((v - 0.8).abs() < 1e-6, "{v}");
        close(&g, &numeric(&z, |z| dlr(z, 1, &mut [0.0; 4])), 1e-2);
    }

    /// z = [4, 2, 1, 0, −2], y = 0, t = 3: DLR-T = −(4 − 0)/(4 − (1 + 0)/2) = −8/7.
    #[test]
    fn targeted_dlr_by_hand() {
        let z = [4.0f32, 2.0, 1.0, 0.0, -2.0];
        let mut g = [0.0f32; 5];
        let v = dlr_targeted(&z, 0, 3, &mut g);
        assert!((v + 8.0 / 7.0).abs() < 1e-6, "{v}");
        // ∂/∂z0 = −1/D + N/D² = −2/7 + 4·4/49; ∂/∂z3 = 1/D − N/(2D²) = 2/7 − 8/49; ∂/∂z2 = −8/49.
        close(&g, &[-2.0 / 7.0 + 16.0 / 49.0, 0.0, -8.0 / 49.0, 2.0 / 7.0 - 8.0 / 49.0, 0.0], 1e-6);
        close(&g, &numeric(&z, |z| dlr_targeted(z, 0, 3, &mut [0.0; 5])), 1e-2);
    }

    /// CE at z = [ln 3, 0], y = 0: −ln ¾; gradient softmax − e_y = [−¼, ¼].
    #[test]
    fn cross_entropy_by_hand() {
        let z = [3f32.ln(), 0.0];
        let mut g = [0.0f32; 2];
        let v = cross_entropy(&z, 0, &mut g);
        assert!((v + 0.75f32.ln()).abs() < 1e-6, "{v}");
        close(&g, &[-0.25, 0.25], 1e-6);
    }

    #[test]
    fn margin_and_ranks() {
        let z = [0.5f32, 2.0, 2.0, -1.0];
        assert_eq!(margin(&z, 1), 0.0);
        assert_eq!(margin(&z, 0), -1.5);
        assert_eq!(argmax(&z), 1);
        assert_eq!((ranked_class(&z, 0), ranked_class(&z, 1), ranked_class(&z, 3)), (1, 2, 3));
    }
}
