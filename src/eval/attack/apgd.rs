//! Auto-PGD (Croce & Hein, "Reliable evaluation of adversarial robustness with an ensemble of
//! diverse parameter-free attacks", ICML 2020, Algorithm 1), as AutoAttack's reference
//! implementation runs it (`APGDAttack.attack_single_run` and `APGDAttack_targeted.perturb` in
//! fra31/auto-attack, `autoattack/autopgd_base.py`).
//!
//! # Algorithm (one run, per sample)
//! ```text
//! x⁽⁰⁾ = clip(x + ε·t/‖t‖ₚ)        t ~ U[−1, 1]ᵈ (L∞; ‖t‖∞) or N(0, I) (L2)
//! η⁽⁰⁾ = 2ε                         (both norms)
//! z    = P(x⁽ᵏ⁾ + η·s(∇L(x⁽ᵏ⁾)))     s = sign (L∞) or g/(‖g‖₂ + 1e−12) (L2)
//! x⁽ᵏ⁺¹⁾ = P(x⁽ᵏ⁾ + α(z − x⁽ᵏ⁾) + (1 − α)(x⁽ᵏ⁾ − x⁽ᵏ⁻¹⁾))   α = 1 at k = 0, then 0.75
//! ```
//! `P` projects onto the ε-ball around `x` and clips to the valid range. The best point (highest
//! loss) is kept. At the checkpoints `w₀ = 0`, `w₁ = ⌊0.22 N⌋` and then every
//! `max(previous gap − ⌊0.03 N⌋, ⌊0.06 N⌋)` iterations (`p_{j+1} = p_j + max(p_j − p_{j−1} − 0.03,
//! 0.06)`: 22, 41, 57, 70, 80, 87, 93, 99 for N = 100), the step size of a sample is halved and it
//! restarts from its best point if
//! 1. the loss increased in at most ρ = 75 % of the steps since the last checkpoint, or
//! 2. the step size was not halved at the last checkpoint and the best loss has not improved
//!    since.
//!
//! As in the reference, the count of condition 1 at the first checkpoint compares the first step's
//! loss with an unwritten (zero) entry: Python's `loss_steps[-1]`.
//!
//! A sample counts as broken as soon as one iterate is misclassified (the iterate is returned).
//! Broken samples leave the batch (they no longer change anything: every sample's run is
//! independent of the others'), which saves their forward and backward passes. Each sample
//! draws its random start from its own stream (see [`EvalAttackConfig::seed`]).
//!
//! Losses (see `dlr`): APGD-CE maximizes the cross-entropy, APGD-DLR the DLR loss, APGD-T the
//! targeted DLR loss towards each of the `target_classes` most likely classes after the
//! prediction at the clean point (AutoAttack's `output.sort(dim=1)[1][:, -target_class]` for
//! `target_class` in `2..=target_classes + 1`), one run per target on the points still robust.

use super::config::{EvalAttack, EvalAttackConfig};
use super::dlr::{argmax, cross_entropy, dlr, dlr_targeted, ranked_class, Objective};
use super::oracle::{logits, loss_and_grad, sample_rng, Meter};
use crate::model::Model;
use crate::regularize::NormType;
use ndarray::{Array1, Array2, ArrayView2, Axis};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

/// The iterations at which APGD checks its step size, for `n_iter` iterations: the reference's
/// `k` sequence (`n_iter_2 = max(⌊0.22 N⌋, 1)`, then `k = max(k − max(⌊0.03 N⌋, 1),
/// max(⌊0.06 N⌋, 1))`), as 1-based iteration counts `p_j·N`.
pub fn apgd_checkpoints(n_iter: usize) -> Vec<usize> {
    let first = ((0.22 * n_iter as f64) as usize).max(1);
    let min = ((0.06 * n_iter as f64) as usize).max(1);
    let decr = ((0.03 * n_iter as f64) as usize).max(1);
    let (mut at, mut k, mut out) = (0, first, Vec::new());
    while at + k <= n_iter {
        at += k;
        out.push(at);
        k = k.saturating_sub(decr).max(min);
    }
    out
}

/// One sample's state in a run.
struct State {
    /// Position of each row in the attacked set.
    rows: Vec<usize>,
    x0: Array2<f32>,
    x_adv: Array2<f32>,
    x_old: Array2<f32>,
    x_best: Array2<f32>,
    grad: Array2<f32>,
    grad_best: Array2<f32>,
    loss_best: Vec<f32>,
    loss_last_check: Vec<f32>,
    reduced_last: Vec<bool>,
    step: Vec<f32>,
    /// The loss after each iteration, `[rows, n_iter]` (zeros where not yet written).
    loss_steps: Array2<f32>,
    y: Vec<usize>,
    target: Vec<usize>,
}

impl State {
    /// Keeps the rows at positions `keep`.
    fn keep(&mut self, keep: &[usize]) {
        let pick = |a: &Array2<f32>| a.select(Axis(0), keep);
        self.x0 = pick(&self.x0);
        self.x_adv = pick(&self.x_adv);
        self.x_old = pick(&self.x_old);
        self.x_best = pick(&self.x_best);
        self.grad = pick(&self.grad);
        self.grad_best = pick(&self.grad_best);
        self.loss_steps = pick(&self.loss_steps);
        let pick_vec = |v: &[f32]| keep.iter().map(|&i| v[i]).collect::<Vec<f32>>();
        self.loss_best = pick_vec(&self.loss_best);
        self.loss_last_check = pick_vec(&self.loss_last_check);
        self.step = pick_vec(&self.step);
        self.reduced_last = keep.iter().map(|&i| self.reduced_last[i]).collect();
        self.rows = keep.iter().map(|&i| self.rows[i]).collect();
        self.y = keep.iter().map(|&i| self.y[i]).collect();
        self.target = keep.iter().map(|&i| self.target[i]).collect();
    }
}

/// Projects `p` onto the ε-ball around `x0` (L∞: per coordinate; L2: rescaling `p − x0` to
/// `min(ε, ‖p − x0‖₂)` as the reference does) and clips it to `clip`.
fn project(p: &mut [f32], x0: &[f32], norm: NormType, eps: f32, clip: Option<(f32, f32)>) {
    match norm {
        NormType::L2 => {
            let n = p.iter().zip(x0).map(|(a, b)| (a - b) * (a - b)).sum::<f32>().sqrt();
            let scale = n.min(eps) / (n + 1e-12);
            for (a, &b) in p.iter_mut().zip(x0) {
                *a = b + (*a - b) * scale;
            }
        }
        _ => {
            for (a, &b) in p.iter_mut().zip(x0) {
                *a = a.clamp(b - eps, b + eps);
            }
        }
    }
    if let Some((lo, hi)) = clip {
        for a in p.iter_mut() {
            *a = a.clamp(lo, hi);
        }
    }
}

/// The random start `clip(x0 + ε·t/‖t‖)`.
fn random_start(x0: &mut [f32], norm: NormType, eps: f32, clip: Option<(f32, f32)>, rng: &mut impl Rng) {
    let t: Vec<f32> = match norm {
        NormType::L2 => (0..x0.len()).map(|_| StandardNormal.sample(rng)).collect(),
        _ => (0..x0.len()).map(|_| 2.0 * rng.random::<f32>() - 1.0).collect(),
    };
    let n = match norm {
        NormType::L2 => t.iter().map(|v| v * v).sum::<f32>().sqrt(),
        _ => t.iter().fold(0.0f32, |m, v| m.max(v.abs())),
    };
    for (a, v) in x0.iter_mut().zip(&t) {
        *a += eps * v / (n + 1e-12);
        if let Some((lo, hi)) = clip {
            *a = a.clamp(lo, hi);
        }
    }
}

/// What one APGD run is asked to do.
pub(crate) struct Run<'a> {
    pub(crate) model: &'a dyn Model,
    pub(crate) config: &'a EvalAttackConfig,
    pub(crate) objective: Objective,
    /// Stream tag of the run (attack, restart, target).
    pub(crate) tag: u64,
}

impl Run<'_> {
    /// Attacks the rows `x` (labels `y`, targets `target` for the targeted loss; `index`: each
    /// row's sample index, for its random stream). Returns each row's adversarial point, if found.
    /// Reports `rows × n_iter` units to `meter` in all.
    pub(crate) fn attack(
        &self,
        x: ArrayView2<f32>,
        y: &[usize],
        target: &[usize],
        index: &[usize],
        meter: &mut Meter,
    ) -> candle_core::Result<Vec<Option<Array1<f32>>>> {
        let n = x.nrows();
        let n_iter = self.config.iterations;
        let (norm, eps, clip) = (self.config.norm, self.config.epsilon as f32, self.config.clip);
        let mut found: Vec<Option<Array1<f32>>> = vec![None; n];
        let mut x_adv = x.to_owned();
        for (i, mut row) in x_adv.rows_mut().into_iter().enumerate() {
            let mut rng = sample_rng(self.config.seed, self.tag, index[i]);
            if let Some(slice) = row.as_slice_mut() {
                random_start(slice, norm, eps, clip, &mut rng);
            }
        }
        let objective = self.objective;
        let loss_fn = |y: &[usize], t: &[usize]| {
            let (y, t) = (y.to_vec(), t.to_vec());
            move |i: usize, z: &[f32], g: &mut [f32]| match objective {
                Objective::Ce => cross_entropy(z, y[i], g),
                Objective::Dlr => dlr(z, y[i], g),
                Objective::DlrTargeted => dlr_targeted(z, y[i], t[i], g),
            }
        };
        let (z, loss, grad) = loss_and_grad(self.model, x_adv.view(), loss_fn(y, target))?;
        let mut s = State {
            rows: (0..n).collect(),
            x0: x.to_owned(),
            x_old: x_adv.clone(),
            x_best: x_adv.clone(),
            x_adv,
            grad_best: grad.clone(),
            grad,
            loss_last_check: loss.clone(),
            loss_best: loss,
            reduced_last: vec![true; n],
            step: vec![2.0 * eps; n],
            loss_steps: Array2::zeros((n, n_iter)),
            y: y.to_vec(),
            target: target.to_vec(),
        };
        // The random start already misclassified.
        let keep = self.harvest(&s, &z, &mut found);
        s.keep(&keep);

        let first = ((0.22 * n_iter as f64) as usize).max(1);
        let min_gap = ((0.06 * n_iter as f64) as usize).max(1);
        let decr = ((0.03 * n_iter as f64) as usize).max(1);
        let (mut k, mut counter) = (first, 0);
        for i in 0..n_iter {
            if s.rows.is_empty() {
                meter.add((n * (n_iter - i)) as u64)?;
                break;
            }
            let alpha = if i > 0 { 0.75f32 } else { 1.0 };
            let mut next = s.x_adv.clone();
            for r in 0..s.rows.len() {
                let x0 = s.x0.row(r);
                let (Some(x0), Some(cur), Some(old), Some(g), Some(out)) = (
                    x0.as_slice(),
                    s.x_adv.row(r).to_slice(),
                    s.x_old.row(r).to_slice(),
                    s.grad.row(r).to_slice(),
                    next.row_mut(r).into_slice(),
                ) else {
                    candle_core::bail!("APGD state is not contiguous");
                };
                let step = s.step[r];
                // z = P(x + η·s(g))
                match norm {
                    NormType::L2 => {
                        let gn = g.iter().map(|v| v * v).sum::<f32>().sqrt() + 1e-12;
                        for ((o, &c), &gv) in out.iter_mut().zip(cur).zip(g) {
                            *o = c + step * gv / gn;
                        }
                    }
                    _ => {
                        for ((o, &c), &gv) in out.iter_mut().zip(cur).zip(g) {
                            *o = c + step * crate::regularize::sign(gv);
                        }
                    }
                }
                project(out, x0, norm, eps, clip);
                // x⁽ᵏ⁺¹⁾ = P(x + α(z − x) + (1 − α)(x − x_old))
                for ((o, &c), &p) in out.iter_mut().zip(cur).zip(old) {
                    *o = c + (*o - c) * alpha + (c - p) * (1.0 - alpha);
                }
                project(out, x0, norm, eps, clip);
            }
            s.x_old = std::mem::replace(&mut s.x_adv, next);
            let (z, loss, grad) = loss_and_grad(self.model, s.x_adv.view(), loss_fn(&s.y, &s.target))?;
            s.grad = grad;
            for (r, &l) in loss.iter().enumerate() {
                s.loss_steps[[r, i]] = l;
                if l > s.loss_best[r] {
                    s.x_best.row_mut(r).assign(&s.x_adv.row(r));
                    s.grad_best.row_mut(r).assign(&s.grad.row(r));
                    s.loss_best[r] = l;
                }
            }
            counter += 1;
            if counter == k {
                for r in 0..s.rows.len() {
                    let steps = s.loss_steps.row(r);
                    // Python indexing: entry −1 is the last (still zero) one.
                    let at = |j: isize| steps[j.rem_euclid(n_iter as isize) as usize];
                    let increased =
                        (0..k as isize).filter(|&c| at(i as isize - c) > at(i as isize - c - 1)).count() as f64;
                    let oscillating = increased <= k as f64 * self.config.rho;
                    let no_improvement = !s.reduced_last[r] && s.loss_last_check[r] >= s.loss_best[r];
                    let reduce = oscillating || no_improvement;
                    s.reduced_last[r] = reduce;
                    s.loss_last_check[r] = s.loss_best[r];
                    if reduce {
                        s.step[r] /= 2.0;
                        s.x_adv.row_mut(r).assign(&s.x_best.row(r));
                        s.grad.row_mut(r).assign(&s.grad_best.row(r));
                    }
                }
                k = k.saturating_sub(decr).max(min_gap);
                counter = 0;
            }
            let keep = self.harvest(&s, &z, &mut found);
            if keep.len() < s.rows.len() {
                s.keep(&keep);
            }
            meter.add(n as u64)?;
        }
        Ok(found)
    }

    /// Records the iterates `s.x_adv` whose logits `z` are misclassified; returns the positions
    /// of the rows still correctly classified.
    fn harvest(&self, s: &State, z: &Array2<f32>, found: &mut [Option<Array1<f32>>]) -> Vec<usize> {
        let mut keep = Vec::with_capacity(s.rows.len());
        for (r, zr) in z.rows().into_iter().enumerate() {
            let pred = zr.as_slice().map_or_else(|| argmax(&zr.to_vec()), argmax);
            if pred == s.y[r] {
                keep.push(r);
            } else {
                found[s.rows[r]] = Some(s.x_adv.row(r).to_owned());
            }
        }
        keep
    }
}

/// Runs `attack` (an APGD variant) on the rows `x` with labels `y` (`index`: sample indices, for
/// the random streams): restarts (and targets) each on the rows not broken yet, in batches.
/// Returns each row's adversarial point, if one was found.
#[allow(clippy::too_many_arguments)] // the rows, their labels and stream indices, and the run's settings
pub(crate) fn apgd(
    model: &dyn Model,
    attack: EvalAttack,
    x: ArrayView2<f32>,
    y: &[usize],
    index: &[usize],
    config: &EvalAttackConfig,
    classes: usize,
    meter: &mut Meter,
) -> candle_core::Result<Vec<Option<Array1<f32>>>> {
    let objective = match attack {
        EvalAttack::ApgdDlr => Objective::Dlr,
        EvalAttack::ApgdT => Objective::DlrTargeted,
        _ => Objective::Ce,
    };
    let targets = match attack {
        EvalAttack::ApgdT => config.target_classes.min(classes.saturating_sub(1)),
        _ => 1,
    };
    let mut found: Vec<Option<Array1<f32>>> = vec![None; x.nrows()];
    for start in (0..x.nrows()).step_by(config.batch_size.max(1)) {
        let end = (start + config.batch_size).min(x.nrows());
        let batch_len = end - start;
        // The clean logits rank the target classes.
        let ranked = match attack {
            EvalAttack::ApgdT => Some(logits(model, x.slice(ndarray::s![start..end, ..]))?),
            _ => None,
        };
        for target_rank in 1..=targets {
            for restart in 0..config.restarts {
                let open: Vec<usize> = (start..end).filter(|&i| found[i].is_none()).collect();
                if open.is_empty() {
                    meter.add((batch_len * config.iterations) as u64)?;
                    continue;
                }
                let xs = x.select(Axis(0), &open);
                let ys: Vec<usize> = open.iter().map(|&i| y[i]).collect();
                let ts: Vec<usize> = match &ranked {
                    Some(z) => open.iter().map(|&i| ranked_class(&z.row(i - start).to_vec(), target_rank)).collect(),
                    None => vec![0; open.len()],
                };
                let idx: Vec<usize> = open.iter().map(|&i| index[i]).collect();
                let tag = (attack as u64) << 40 | (target_rank as u64) << 20 | restart as u64;
                let run = Run { model, config, objective, tag };
                let before = meter.done;
                let result = run.attack(xs.view(), &ys, &ts, &idx, meter)?;
                // Account for the rows that were already broken before this run.
                let expected = before + (batch_len * config.iterations) as u64;
                meter.add(expected.saturating_sub(meter.done))?;
                for (j, adv) in result.into_iter().enumerate() {
                    if adv.is_some() {
                        found[open[j]] = adv;
                    }
                }
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// p₀ = 0, p₁ = 0.22, p_{j+1} = p_j + max(p_j − p_{j−1} − 0.03, 0.06), times N = 100.
    #[test]
    fn checkpoints_of_100_iterations() {
        assert_eq!(apgd_checkpoints(100), vec![22, 41, 57, 70, 80, 87, 93, 99]);
        // N = 10: ⌊2.2⌋ = 2, gaps max(2 − 1, 1) = 1.
        assert_eq!(apgd_checkpoints(10), vec![2, 3, 4, 5, 6, 7, 8, 9, 10]);
    }

    #[test]
    fn l2_projection_rescales_to_epsilon() {
        let mut p = [3.0f32, 4.0];
        project(&mut p, &[0.0, 0.0], NormType::L2, 1.0, None);
        assert!((p[0] - 0.6).abs() < 1e-6 && (p[1] - 0.8).abs() < 1e-6, "{p:?}");
        let mut p = [0.5f32, -0.9];
        project(&mut p, &[0.2, 0.2], NormType::Infinity, 0.25, Some((0.0, 1.0)));
        assert_eq!(p, [0.45, 0.0]);
    }
}
