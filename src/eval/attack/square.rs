//! Square Attack, L∞ (Andriushchenko, Croce, Flammarion & Hein, "Square Attack: a query-efficient
//! black-box adversarial attack via random search", ECCV 2020), as AutoAttack runs it
//! (`SquareAttack.attack_single_run` in fra31/auto-attack, `autoattack/square.py`, with
//! `resc_schedule=False`): a random search on the margin loss that reads only the logits.
//!
//! # Algorithm (per sample, input `[c, h, w]`)
//! ```text
//! x̂ = clip(x + ε·v)       v: one random sign per (channel, column), the same down each column
//! for i in 0..n_queries (while margin(x̂) > 0):
//!     p = p_init / 2^j    j = 0, 1, …, 9 after iterations 10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000
//!     s = max(round(√(p·h·w)), 1)
//!     a random s×s window at (r, q), r ~ ⌊U·(h − s + 1)⌋, q ~ ⌊U·(w − s + 1)⌋, one sign per channel σ_c
//!     x' = clip(Proj_ε(x̂ + 2ε·σ on the window))        (the window moves to the other face of the box)
//!     keep x' if margin(x') < margin(x̂) or x' is misclassified
//! ```
//! `margin(z) = z_y − max_{i≠y} zᵢ`; a sample is broken when it becomes ≤ 0 (the caller checks
//! the arg-max). One query (one forward pass) per iteration and sample, plus one for the start.
//!
//! # Differences from the reference
//! - The reference draws one window and one sign vector per iteration for the whole batch; here
//!   every sample draws its own (as the authors' original NumPy code does), from its own random
//!   stream, so a sample's attack does not depend on the batch it is in.
//! - The window's corner is drawn from all `h − s + 1` positions; the reference's
//!   `random_int(0, h - s)` draws from `[0, h − s)`, so once windows are one pixel wide the last
//!   row and column never change (on a 28 × 28 digit, 55 of 784 pixels; on a 20-feature row, the
//!   last feature, which made Square miss the exact answer on the linear test model).
//! - Inputs that are not images (an MLP's feature rows, a `bow` model's pooled embeddings) are
//!   `[1, 1, d]`: the stripes become one sign per feature, and a window is a run of
//!   `max(round(p·d), 1)` consecutive features (the same fraction `p` of the input a square
//!   covers). A non-square image's window is at most `min(h, w)` wide.

use super::config::EvalAttackConfig;
use super::dlr::margin;
use super::oracle::{logits, sample_rng, Meter};
use crate::model::Model;
use ndarray::{Array1, Array2, ArrayView2, Axis};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// The fraction `p` of the input a window covers at iteration `it` (Square's piecewise schedule,
/// `p_selection` without rescaling to the query budget).
pub fn square_p_schedule(p_init: f64, it: usize) -> f64 {
    let halvings = match it {
        0..=10 => 0,
        11..=50 => 1,
        51..=200 => 2,
        201..=500 => 3,
        501..=1000 => 4,
        1001..=2000 => 5,
        2001..=4000 => 6,
        4001..=6000 => 7,
        6001..=8000 => 8,
        _ => 9,
    };
    p_init / f64::from(1u32 << halvings)
}

/// The window `(rows, columns)` for fraction `p` of an `h × w` input.
fn window(p: f64, h: usize, w: usize) -> (usize, usize) {
    if h == 1 {
        return (1, ((p * w as f64).round_ties_even() as usize).clamp(1, w));
    }
    let s = ((p * (h * w) as f64).sqrt().round_ties_even() as usize).clamp(1, h.min(w));
    (s, s)
}

fn random_sign(rng: &mut ChaCha8Rng) -> f32 {
    // The reference's sign(2U − 1).
    if rng.random::<f32>() < 0.5 {
        -1.0
    } else {
        1.0
    }
}

/// Runs Square (L∞) on the rows `x` with labels `y` (`index`: the sample indices, for the random
/// streams), `restarts` times on the rows not broken yet, in batches. `shape` is `[c, h, w]` with
/// `c·h·w` the row width. Returns each row's candidate with margin ≤ 0, if found.
pub(crate) fn square(
    model: &dyn Model,
    x: ArrayView2<f32>,
    y: &[usize],
    index: &[usize],
    shape: [usize; 3],
    config: &EvalAttackConfig,
    meter: &mut Meter,
) -> candle_core::Result<Vec<Option<Array1<f32>>>> {
    let mut found: Vec<Option<Array1<f32>>> = vec![None; x.nrows()];
    for start in (0..x.nrows()).step_by(config.batch_size.max(1)) {
        let end = (start + config.batch_size).min(x.nrows());
        for restart in 0..config.restarts {
            let open: Vec<usize> = (start..end).filter(|&i| found[i].is_none()).collect();
            let before = meter.done;
            if !open.is_empty() {
                let xs = x.select(Axis(0), &open);
                let ys: Vec<usize> = open.iter().map(|&i| y[i]).collect();
                let idx: Vec<usize> = open.iter().map(|&i| index[i]).collect();
                let result = single_run(model, xs.view(), &ys, &idx, shape, config, restart as u64, meter)?;
                for (j, adv) in result.into_iter().enumerate() {
                    if adv.is_some() {
                        found[open[j]] = adv;
                    }
                }
            }
            let expected = before + ((end - start) * config.queries) as u64;
            meter.add(expected.saturating_sub(meter.done));
        }
    }
    Ok(found)
}

/// One run of Square on the rows `x`.
#[allow(clippy::too_many_arguments)]
fn single_run(
    model: &dyn Model,
    x: ArrayView2<f32>,
    y: &[usize],
    index: &[usize],
    [c, h, w]: [usize; 3],
    config: &EvalAttackConfig,
    restart: u64,
    meter: &mut Meter,
) -> candle_core::Result<Vec<Option<Array1<f32>>>> {
    let n = x.nrows();
    let eps = config.epsilon as f32;
    let clip = |v: f32| config.clip.map_or(v, |(lo, hi)| v.clamp(lo, hi));
    let tag = 0x5_0000_0000 | restart;
    let mut rngs: Vec<ChaCha8Rng> = index.iter().map(|&i| sample_rng(config.seed, tag, i)).collect();
    // Vertical stripes: one sign per (channel, column).
    let mut best = x.to_owned();
    for (r, mut row) in best.rows_mut().into_iter().enumerate() {
        for ch in 0..c {
            for col in 0..w {
                let sign = random_sign(&mut rngs[r]);
                for line in 0..h {
                    let at = ch * h * w + line * w + col;
                    row[at] = clip(row[at] + eps * sign);
                }
            }
        }
    }
    let z = logits(model, best.view())?;
    let mut margins: Vec<f32> = (0..n).map(|r| margin(&z.row(r).to_vec(), y[r])).collect();
    let mut losses = margins.clone();
    let mut found: Vec<Option<Array1<f32>>> = vec![None; n];
    // The rows still to fool.
    let mut open: Vec<usize> = Vec::with_capacity(n);
    for (r, &m) in margins.iter().enumerate() {
        if m <= 0.0 {
            found[r] = Some(best.row(r).to_owned());
        } else {
            open.push(r);
        }
    }
    for it in 0..config.queries {
        if open.is_empty() {
            meter.add((n * (config.queries - it)) as u64);
            break;
        }
        let (sh, sw) = window(square_p_schedule(config.p_init, it), h, w);
        let mut candidates = Array2::<f32>::zeros((open.len(), x.ncols()));
        for (k, &r) in open.iter().enumerate() {
            let rng = &mut rngs[r];
            // Every corner in [0, h − s] (the reference's [0, h − s) never moves the last row or column).
            let top = ((rng.random::<f32>() * (h - sh + 1) as f32) as usize).min(h - sh);
            let left = ((rng.random::<f32>() * (w - sw + 1) as f32) as usize).min(w - sw);
            let mut cand = candidates.row_mut(k);
            cand.assign(&best.row(r));
            let x0 = x.row(r);
            for ch in 0..c {
                let sign = random_sign(rng);
                for line in top..top + sh {
                    for col in left..left + sw {
                        let at = ch * h * w + line * w + col;
                        let v = (cand[at] + 2.0 * eps * sign).clamp(x0[at] - eps, x0[at] + eps);
                        cand[at] = clip(v);
                    }
                }
            }
        }
        let z = logits(model, candidates.view())?;
        let mut still = Vec::with_capacity(open.len());
        for (k, &r) in open.iter().enumerate() {
            let m = margin(&z.row(k).to_vec(), y[r]);
            let improved = m < losses[r];
            if improved {
                losses[r] = m;
            }
            if improved || m <= 0.0 {
                margins[r] = m;
                best.row_mut(r).assign(&candidates.row(k));
            }
            if margins[r] <= 0.0 {
                found[r] = Some(best.row(r).to_owned());
            } else {
                still.push(r);
            }
        }
        open = still;
        meter.add(n as u64);
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p_schedule_and_windows() {
        let p: Vec<f64> =
            [0, 10, 11, 50, 51, 200, 201, 500, 501, 1000, 1001, 2000, 2001, 4000, 4001, 6000, 6001, 8000, 8001]
                .iter()
                .map(|&i| square_p_schedule(0.8, i) / 0.8)
                .collect();
        let halvings: Vec<i32> = p.iter().map(|v| -v.log2().round() as i32).collect();
        assert_eq!(halvings, vec![0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9]);
        // MNIST: √(0.8·784) = 25.04 → 25; p/16: √39.2 = 6.26 → 6.
        assert_eq!(window(0.8, 28, 28), (25, 25));
        assert_eq!(window(0.05, 28, 28), (6, 6));
        // Flat inputs: a run of p·d features.
        assert_eq!(window(0.8, 1, 10), (1, 8));
        assert_eq!(window(0.001, 1, 10), (1, 1));
    }
}
