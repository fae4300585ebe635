//! FAB-T, the targeted Fast Adaptive Boundary attack (Croce & Hein, "Minimally distorted
//! adversarial examples with a fast adaptive boundary attack", ICML 2020), as AutoAttack's
//! standard version runs it (`FABAttack_PT` with `targeted=True` in fra31/auto-attack,
//! `autoattack/fab_pt.py`, `fab_base.py` and `fab_projections.py`; 100 iterations, 9 target
//! classes, α_max 0.1, η 1.05, β 0.9): a minimal-distance attack that steps towards the
//! linearized decision boundary between the label and one target class, biased towards the
//! clean point.
//!
//! # Algorithm (one run, per sample; `t` the target class, `f(x) = z_t(x) − z_y(x)`)
//! ```text
//! x⁽⁰⁾ = x    (restarts after the first: x + min(‖x_adv − x‖, ε)/2 · u/‖u‖, u ~ U[−1, 1]ᵈ (L∞) or N(0, I) (L2))
//! for k in 0..n_iter:
//!     w = ∇f(x⁽ᵏ⁾),  b = ⟨w, x⁽ᵏ⁾⟩ − f(x⁽ᵏ⁾)          the boundary, linearized: {v : ⟨w, v⟩ = b}
//!     δ₁ = Π(x⁽ᵏ⁾),  δ₂ = Π(x)                          Π(v): the smallest ‖δ‖ₚ with ⟨w, v + δ⟩ = b
//!                                                       and v + δ in the valid box
//!     α  = min(max(‖δ₁‖/(‖δ₁‖ + ‖δ₂‖), 0), α_max)       (norms at least 1e−8)
//!     x⁽ᵏ⁺¹⁾ = clip((1 − α)(x⁽ᵏ⁾ + η·δ₁) + α(x + η·δ₂))
//!     if x⁽ᵏ⁺¹⁾ is misclassified:
//!         keep it if ‖x⁽ᵏ⁺¹⁾ − x‖ₚ is the smallest so far
//!         x⁽ᵏ⁺¹⁾ = x + β(x⁽ᵏ⁺¹⁾ − x)                     (back towards the clean point)
//! ```
//! `Π` is the projection onto the hyperplane within the box (Croce & Hein 2020, §3.1): with the
//! sign of `w` chosen so that `c = ⟨w, v⟩ − b ≥ 0`, and `roomᵢ` how far coordinate `i` can move
//! in the direction that lowers `⟨w, v⟩` before it leaves the box, `δᵢ = −sign(wᵢ)·min(λ·kᵢ, roomᵢ)`
//! with `kᵢ = 1` (L∞) or `|wᵢ|` (L2) and the smallest `λ ≥ 0` for which `Σ|wᵢ|·min(λkᵢ, roomᵢ) = c`
//! (found exactly over the sorted breakpoints `roomᵢ/kᵢ`); when no `λ` reaches `c` within the box,
//! every coordinate moves to its bound (the reference's fallback). Without `clip` there is no box.
//!
//! An AutoAttack evaluation counts a sample as broken by FAB-T only when the point it returns is
//! misclassified **and** within ε (the reference's `acc_curr = max(acc_curr, res > eps)`); the
//! runs for the `target_classes` most likely classes after the prediction (the order APGD-T
//! uses) each attack the samples still robust.
//!
//! # Differences from the reference
//! - A sample whose best point is already within ε stops (the reference goes on shrinking the
//!   perturbation to its 100 iterations): the samples broken are the same, the perturbation norm
//!   reported for them can be larger than the reference's (at most ε).
//! - One forward and backward pass per iteration and sample, plus a second one for the samples
//!   whose step was misclassified (the backward step moves them): the reference runs a forward
//!   pass to classify each step and another with the backward pass.
//! - The random start of a restart draws from the sample's own stream (see
//!   [`EvalAttackConfig::seed`]).

use super::config::EvalAttackConfig;
use super::dlr::{argmax, ranked_class};
use super::oracle::{logits, loss_and_grad, sample_rng, Meter};
use crate::model::Model;
use crate::regularize::NormType;
use ndarray::{Array1, Array2, ArrayView2, Axis};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;

/// `‖v‖ₚ` for L∞ or L2.
fn norm(v: &[f32], p: NormType) -> f32 {
    match p {
        NormType::L2 => v.iter().map(|a| a * a).sum::<f32>().sqrt(),
        _ => v.iter().fold(0.0f32, |m, a| m.max(a.abs())),
    }
}

/// The smallest `δ` (in the `p`-norm: L∞ or L2) with `⟨w, t + δ⟩ = b` and `t + δ` within `clip`
/// (see the module doc); every coordinate at its bound when the box does not reach the hyperplane.
pub(crate) fn project_hyperplane(t: &[f32], w: &[f32], b: f32, p: NormType, clip: Option<(f32, f32)>) -> Vec<f32> {
    let c0 = w.iter().zip(t).map(|(&wi, &ti)| f64::from(wi) * f64::from(ti)).sum::<f64>() - f64::from(b);
    // Orient w so that the dot product has to fall by c ≥ 0.
    let flip = if c0 >= 0.0 { 1.0 } else { -1.0 };
    let c = c0 * flip;
    let d = t.len();
    // Per coordinate: |w|, the speed k, the room towards the bound that lowers ⟨w, ·⟩, and the
    // direction −sign(w).
    let mut items: Vec<(f64, f64, f64, usize)> = Vec::with_capacity(d);
    for i in 0..d {
        let wi = f64::from(w[i]) * flip;
        if wi == 0.0 {
            continue;
        }
        let room = match clip {
            Some((lo, _)) if wi > 0.0 => f64::from(t[i]) - f64::from(lo),
            Some((_, hi)) => f64::from(hi) - f64::from(t[i]),
            None => f64::INFINITY,
        }
        .max(0.0);
        let k = match p {
            NormType::L2 => wi.abs(),
            _ => 1.0,
        };
        items.push((room / k, wi.abs(), room, i));
    }
    let direction = |i: usize| -> f64 {
        if f64::from(w[i]) * flip > 0.0 {
            -1.0
        } else {
            1.0
        }
    };
    let mut delta = vec![0.0f32; d];
    if c <= 0.0 || items.is_empty() {
        return delta;
    }
    items.sort_by(|a, b| a.0.total_cmp(&b.0));
    let speed = |a: f64| match p {
        NormType::L2 => a,
        _ => 1.0,
    };
    // Σ|wᵢ|·min(λkᵢ, roomᵢ) = fixed + λ·slope between breakpoints.
    let mut slope: f64 = items.iter().map(|&(_, a, _, _)| a * speed(a)).sum();
    let mut fixed = 0.0f64;
    let mut lambda = None;
    for &(bp, a, room, _) in &items {
        if slope > 0.0 && fixed + bp * slope >= c {
            lambda = Some((c - fixed) / slope);
            break;
        }
        fixed += a * room;
        slope -= a * speed(a);
    }
    for &(_, a, room, i) in &items {
        let step = match lambda {
            Some(l) => (l * speed(a)).min(room),
            None => room,
        };
        delta[i] = (direction(i) * step) as f32;
    }
    delta
}

/// One sample's state in a run.
struct State {
    /// Position of each row in the attacked set.
    rows: Vec<usize>,
    x0: Array2<f32>,
    x1: Array2<f32>,
    /// The best (closest) misclassified point so far and its distance (∞: none).
    best: Array2<f32>,
    best_norm: Vec<f32>,
    y: Vec<usize>,
    target: Vec<usize>,
}

impl State {
    fn keep(&mut self, keep: &[usize]) {
        self.x0 = self.x0.select(Axis(0), keep);
        self.x1 = self.x1.select(Axis(0), keep);
        self.best = self.best.select(Axis(0), keep);
        self.best_norm = keep.iter().map(|&i| self.best_norm[i]).collect();
        self.rows = keep.iter().map(|&i| self.rows[i]).collect();
        self.y = keep.iter().map(|&i| self.y[i]).collect();
        self.target = keep.iter().map(|&i| self.target[i]).collect();
    }
}

/// `f = z_t − z_y` and `∇ₓf` at the rows `x`.
fn margin_and_grad(
    model: &dyn Model,
    x: ArrayView2<f32>,
    y: &[usize],
    t: &[usize],
) -> candle_core::Result<(Array2<f32>, Vec<f32>, Array2<f32>)> {
    loss_and_grad(model, x, |i, z, g| {
        g.fill(0.0);
        g[t[i]] += 1.0;
        g[y[i]] -= 1.0;
        z[t[i]] - z[y[i]]
    })
}

/// One sample's result: the adversarial point found and its distance from the original, or `None`.
type Found = Option<(Array1<f32>, f32)>;

/// One FAB-T run on the rows `x` (labels `y`, targets `target`, `index` the sample indices for the
/// random streams). A row stops once its closest misclassified point is within `stop_at` (ε in an
/// evaluation; 0 runs every iteration, for the minimal distance). Returns each row's closest
/// misclassified point and its distance, if one was found.
#[allow(clippy::too_many_arguments)]
fn single_run(
    model: &dyn Model,
    x: ArrayView2<f32>,
    y: &[usize],
    target: &[usize],
    index: &[usize],
    config: &EvalAttackConfig,
    tag: u64,
    random_start: bool,
    stop_at: f32,
    meter: &mut Meter,
) -> candle_core::Result<Vec<Found>> {
    let n = x.nrows();
    let (p, eps, clip) = (config.norm, config.epsilon as f32, config.clip);
    let clamp = |v: f32| clip.map_or(v, |(lo, hi)| v.clamp(lo, hi));
    let (alpha_max, eta, beta) = (config.fab_alpha_max as f32, config.fab_eta as f32, config.fab_beta as f32);
    let mut x1 = x.to_owned();
    if random_start {
        for (i, mut row) in x1.rows_mut().into_iter().enumerate() {
            let mut rng = sample_rng(config.seed, tag, index[i]);
            let u: Vec<f32> = match p {
                NormType::L2 => (0..row.len()).map(|_| StandardNormal.sample(&mut rng)).collect(),
                _ => (0..row.len()).map(|_| 2.0 * rng.random::<f32>() - 1.0).collect(),
            };
            let un = norm(&u, p) + 1e-12;
            for (a, v) in row.iter_mut().zip(&u) {
                // min(res, ε)·½ with res = ∞ before any point is found.
                *a = clamp(*a + eps * 0.5 * v / un);
            }
        }
    }
    let mut s = State {
        rows: (0..n).collect(),
        x0: x.to_owned(),
        best: x.to_owned(),
        x1,
        best_norm: vec![f32::INFINITY; n],
        y: y.to_vec(),
        target: target.to_vec(),
    };
    let mut found: Vec<Option<(Array1<f32>, f32)>> = vec![None; n];
    let (mut z, mut f, mut grad) = margin_and_grad(model, s.x1.view(), &s.y, &s.target)?;
    for it in 0..=config.iterations {
        // z, f, grad are at s.x1. First: is the current point (the last step) misclassified?
        if it > 0 {
            let mut moved = Vec::new();
            for r in 0..s.rows.len() {
                let pred = z.row(r).as_slice().map_or_else(|| argmax(&z.row(r).to_vec()), argmax);
                if pred == s.y[r] {
                    continue;
                }
                let delta: Vec<f32> = s.x1.row(r).iter().zip(s.x0.row(r)).map(|(a, b)| a - b).collect();
                let dist = norm(&delta, p);
                if dist < s.best_norm[r] {
                    s.best_norm[r] = dist;
                    s.best.row_mut(r).assign(&s.x1.row(r));
                }
                // The backward step towards the clean point.
                for ((a, &b), d) in s.x1.row_mut(r).iter_mut().zip(s.x0.row(r)).zip(&delta) {
                    *a = b + beta * d;
                }
                moved.push(r);
            }
            // Samples with a point within `stop_at` are done (the caller needs no closer one).
            let done = |r: usize| s.best_norm[r] <= stop_at || it == config.iterations;
            let keep: Vec<usize> = (0..s.rows.len()).filter(|&r| !done(r)).collect();
            for r in (0..s.rows.len()).filter(|&r| done(r) && s.best_norm[r].is_finite()) {
                found[s.rows[r]] = Some((s.best.row(r).to_owned(), s.best_norm[r]));
            }
            if it == config.iterations {
                break;
            }
            let still_moved: Vec<usize> = moved.iter().filter(|&&r| !done(r)).copied().collect();
            if !still_moved.is_empty() {
                let xs = s.x1.select(Axis(0), &still_moved);
                let ys: Vec<usize> = still_moved.iter().map(|&r| s.y[r]).collect();
                let ts: Vec<usize> = still_moved.iter().map(|&r| s.target[r]).collect();
                let (_, f2, g2) = margin_and_grad(model, xs.view(), &ys, &ts)?;
                for (k, &r) in still_moved.iter().enumerate() {
                    f[r] = f2[k];
                    grad.row_mut(r).assign(&g2.row(k));
                }
            }
            if keep.len() < s.rows.len() {
                s.keep(&keep);
                grad = grad.select(Axis(0), &keep);
                f = keep.iter().map(|&r| f[r]).collect();
            }
        }
        if s.rows.is_empty() {
            meter.add((n * (config.iterations - it)) as u64)?;
            break;
        }
        // The step, rows in parallel: each row's two projections sort its coordinates, as much
        // work as the model's pass for a digit, and the rows are independent (no random draws).
        let mut next = s.x1.clone();
        let stepped = (0..s.rows.len().min(f.len()))
            .into_par_iter()
            .map(|r| -> candle_core::Result<Vec<f32>> {
                let (Some(cur), Some(x0), Some(w)) =
                    (s.x1.row(r).to_slice(), s.x0.row(r).to_slice(), grad.row(r).to_slice())
                else {
                    candle_core::bail!("FAB's state is not contiguous");
                };
                let b = w.iter().zip(cur).map(|(&a, &c)| f64::from(a) * f64::from(c)).sum::<f64>() - f64::from(f[r]);
                let d1 = project_hyperplane(cur, w, b as f32, p, clip);
                let d2 = project_hyperplane(x0, w, b as f32, p, clip);
                let a1 = norm(&d1, p).max(1e-8);
                let a2 = norm(&d2, p).max(1e-8);
                let alpha = (a1 / (a1 + a2)).clamp(0.0, alpha_max);
                Ok((0..cur.len())
                    .map(|i| clamp((cur[i] + eta * d1[i]) * (1.0 - alpha) + (x0[i] + eta * d2[i]) * alpha))
                    .collect())
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        for (r, row) in stepped.into_iter().enumerate() {
            next.row_mut(r).assign(&ndarray::ArrayView1::from(&row));
        }
        s.x1 = next;
        (z, f, grad) = margin_and_grad(model, s.x1.view(), &s.y, &s.target)?;
        meter.add(n as u64)?;
    }
    Ok(found)
}

/// Runs FAB-T on the rows `x` with labels `y` (`index`: sample indices, for the random streams):
/// for each of the `target_classes` most likely classes after the clean prediction, `restarts`
/// runs (the first without a random start), each on the rows not broken yet, in batches. Returns
/// each row's misclassified point within ε, if one was found.
#[allow(clippy::too_many_arguments)] // the rows, their labels and stream indices, and the run's settings
pub(crate) fn fab_targeted(
    model: &dyn Model,
    x: ArrayView2<f32>,
    y: &[usize],
    index: &[usize],
    config: &EvalAttackConfig,
    classes: usize,
    meter: &mut Meter,
) -> candle_core::Result<Vec<Option<Array1<f32>>>> {
    let targets = config.target_classes.min(classes.saturating_sub(1));
    let mut found: Vec<Option<Array1<f32>>> = vec![None; x.nrows()];
    for start in (0..x.nrows()).step_by(config.batch_size.max(1)) {
        let end = (start + config.batch_size).min(x.nrows());
        let batch_len = end - start;
        let ranked = logits(model, x.slice(ndarray::s![start..end, ..]))?;
        for target_rank in 1..=targets {
            for restart in 0..config.restarts {
                let open: Vec<usize> = (start..end).filter(|&i| found[i].is_none()).collect();
                let before = meter.done;
                if !open.is_empty() {
                    let xs = x.select(Axis(0), &open);
                    let ys: Vec<usize> = open.iter().map(|&i| y[i]).collect();
                    let ts: Vec<usize> =
                        open.iter().map(|&i| ranked_class(&ranked.row(i - start).to_vec(), target_rank)).collect();
                    let idx: Vec<usize> = open.iter().map(|&i| index[i]).collect();
                    let tag = 0x7_0000_0000 | (target_rank as u64) << 20 | restart as u64;
                    let eps = config.epsilon as f32;
                    let result = single_run(model, xs.view(), &ys, &ts, &idx, config, tag, restart > 0, eps, meter)?;
                    for (j, adv) in result.into_iter().enumerate() {
                        if let Some((point, distance)) = adv {
                            if distance <= eps {
                                found[open[j]] = Some(point);
                            }
                        }
                    }
                }
                let expected = before + (batch_len * config.iterations) as u64;
                meter.add(expected.saturating_sub(meter.done))?;
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Projections onto ⟨w, v⟩ = b, worked by hand.
    #[test]
    fn projections_onto_a_hyperplane() {
        // t = (0, 0), w = (1, 2), b = 3. L2: δ = b·w/‖w‖² = (0.6, 1.2). L∞: λ(1 + 2) = 3 → (1, 1).
        let d = project_hyperplane(&[0.0, 0.0], &[1.0, 2.0], 3.0, NormType::L2, None);
        assert!((d[0] - 0.6).abs() < 1e-6 && (d[1] - 1.2).abs() < 1e-6, "{d:?}");
        let d = project_hyperplane(&[0.0, 0.0], &[1.0, 2.0], 3.0, NormType::Infinity, None);
        assert!((d[0] - 1.0).abs() < 1e-6 && (d[1] - 1.0).abs() < 1e-6, "{d:?}");
        // In the box [0, 1], L2 moves both as λ·(1, 2) until the second stops at 1 (λ = 0.5,
        // ⟨w, δ⟩ = 0.5 + 2 = 2.5), then the first alone: 2 + δ₀ = 3 → (1, 1).
        let d = project_hyperplane(&[0.0, 0.0], &[1.0, 2.0], 3.0, NormType::L2, Some((0.0, 1.0)));
        assert!((d[0] - 1.0).abs() < 1e-6 && (d[1] - 1.0).abs() < 1e-6, "{d:?}");
        // L∞ in [0, 0.8]: the box cannot reach 3 (max 0.8 + 1.6 = 2.4): every coordinate at its bound.
        let d = project_hyperplane(&[0.0, 0.0], &[1.0, 2.0], 3.0, NormType::Infinity, Some((0.0, 0.8)));
        assert_eq!(d, vec![0.8, 0.8]);
        // From the other side (⟨w, t⟩ > b): t = (1, 1), w = (1, −1), b = 1: ⟨w, t⟩ = 0 < 1, so the
        // product must rise by 1: L∞ δ = (0.5, −0.5).
        let d = project_hyperplane(&[1.0, 1.0], &[1.0, -1.0], 1.0, NormType::Infinity, None);
        assert!((d[0] - 0.5).abs() < 1e-6 && (d[1] + 0.5).abs() < 1e-6, "{d:?}");
        // On the hyperplane already: no move.
        assert_eq!(project_hyperplane(&[1.0, 1.0], &[1.0, 1.0], 2.0, NormType::L2, None), vec![0.0, 0.0]);
    }

    /// On `z = x` (two classes, class 1 iff x₁ > x₀), the point (0.9, 0.1) is at L2 distance
    /// 0.8/√2 = 0.5657 and L∞ distance 0.4 from the boundary: FAB-T run to the end comes within 1 %
    /// (it approaches from the far side: torchattacks' FAB, 100 steps, gives 0.5686 and 0.4021,
    /// the point (0.4979, 0.5021)), and its point is misclassified; run with `stop_at` ε, it stops
    /// at the first point within ε.
    #[test]
    fn fab_finds_the_minimal_distance_to_a_linear_boundary() {
        use candle_core::{Device, Tensor};
        let w = Tensor::new(&[[1.0f32, 0.0], [0.0, 1.0]], &Device::Cpu).unwrap();
        let model = candle_nn::Linear::new(w, None);
        let x = ndarray::array![[0.9f32, 0.1]];
        for (norm, exact, reference) in [(NormType::L2, 0.8 / 2f32.sqrt(), 0.5686), (NormType::Infinity, 0.4, 0.4021)] {
            let config = EvalAttackConfig { norm, epsilon: 1.0, clip: Some((0.0, 1.0)), ..Default::default() };
            let mut meter = Meter::new(None, "fab-t", 1.0, 100);
            let run = |stop_at: f32, meter: &mut Meter| {
                single_run(&model, x.view(), &[0], &[1], &[0], &config, 0, false, stop_at, meter).unwrap()
            };
            let (point, distance) = run(0.0, &mut meter)[0].clone().unwrap();
            assert!(point[1] > point[0], "{norm:?}: {point:?} is not misclassified");
            assert!(distance >= exact && distance <= exact * 1.01, "{norm:?}: {distance} vs exact {exact}");
            assert!((distance - reference).abs() < 1e-4, "{norm:?}: {distance} vs the reference's {reference}");
            let delta = [point[0] - 0.9, point[1] - 0.1];
            assert!((norm_of(&delta, norm) - distance).abs() < 1e-6);
            assert_eq!(meter.done, 100);
            // The first step overshoots by η = 1.05: within ε = 1, done after one iteration.
            let (_, first) = run(1.0, &mut meter)[0].clone().unwrap();
            assert!((first - 1.05 * exact).abs() < 1e-4, "{norm:?}: {first}");
        }
    }

    fn norm_of(v: &[f32], p: NormType) -> f32 {
        norm(v, p)
    }
}
