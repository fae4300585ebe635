//! Square Attack, L∞ and L2 (Andriushchenko, Croce, Flammarion & Hein, "Square Attack: a
//! query-efficient black-box adversarial attack via random search", ECCV 2020), as AutoAttack
//! runs it (`SquareAttack.attack_single_run` in fra31/auto-attack, `autoattack/square.py`, with
//! `resc_schedule=False`): a random search on the margin loss that reads only the logits.
//!
//! # Algorithm, L∞ (per sample, input `[c, h, w]`)
//! ```text
//! x̂ = clip(x + ε·v)       v: one random sign per (channel, column), the same down each column
//! for i in 0..n_queries (while margin(x̂) > 0):
//!     p = p_init / 2^j    j = 0, 1, …, 9 after iterations 10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000
//!     s = max(round(√(p·h·w)), 1)
//!     a random s×s window at (r, q), r ~ ⌊U·(h − s + 1)⌋, q ~ ⌊U·(w − s + 1)⌋, one sign per channel σ_c
//!     x' = clip(Proj_ε(x̂ + 2ε·σ on the window))        (the window moves to the other face of the box)
//!     keep x' if margin(x') < margin(x̂) or x' is misclassified
//! ```
//!
//! # Algorithm, L2
//! ```text
//! η(s)  = the s×s block +R(⌊s/2⌋, s) over −R(s − ⌊s/2⌋, s), unit norm, transposed with probability ½
//!         R(a, b): nested rectangles around the centre of an a×b block, the k-th adding 1/(k + 1)²
//!         (the paper's meta_pseudo_gaussian_pert, the reference's eta)
//! x̂ = clip(x + ε·δ₀/‖δ₀‖₂)  δ₀: a grid of ⌊h/5⌋-wide tiles, each η(⌊h/5⌋) with one sign per channel
//! for i in 0..n_queries (while margin(x̂) > 0):
//!     s = max(round(√(p·h·w)), 3), made odd;  δ = x̂ − x;  two random s×s windows W₁, W₂
//!     for each channel c:  u_c = η(s)·σ_c + δ_c[W₁]/‖δ_c[W₁]‖₂
//!                          δ_c[W₁] = u_c/‖u_c‖₂ · √(max(ε² − ‖δ‖₂², 0)/c + ‖δ[W₁ ∪ W₂]‖₂²)
//!     δ[W₂] = 0 (then W₁ as above);  x' = clip(x + ε·δ/‖δ‖₂)
//!     keep x' as for L∞
//! ```
//! `margin(z) = z_y − max_{i≠y} zᵢ`; a sample is broken when it becomes ≤ 0 (the caller checks
//! the arg-max). One query (one forward pass) per iteration and sample, plus one for the start.
//!
//! # Differences from the reference
//! - The reference draws one window (two for L2), one `η` orientation and one sign vector per
//!   iteration for the whole batch; here every sample draws its own (as the authors' original
//!   NumPy code does), from its own random stream, so a sample's attack does not depend on the
//!   batch it is in.
//! - The window's corner is drawn from all `h − s + 1` positions; the reference's
//!   `random_int(0, h - s)` draws from `[0, h − s)`, so once windows are one pixel wide the last
//!   row and column never change (on a 28 × 28 digit, 55 of 784 pixels; on a 20-feature row, the
//!   last feature, which made Square miss the exact answer on the linear test model).
//! - Inputs that are not images (an MLP's feature rows, a `bow` model's pooled embeddings) are
//!   `[1, 1, d]`: the stripes become one sign per feature, and a window is a run of
//!   `max(round(p·d), 1)` consecutive features (L2: `max(round(p·d), 3)`, odd; `η` splits the run
//!   into a positive left and a negative right half; the start tiles are `⌊d/5⌋` long). A
//!   non-square image's window is at most `min(h, w)` wide; the L2 start tiles of an image
//!   smaller than 5 pixels are 1 pixel (the reference divides by zero there).

use super::config::EvalAttackConfig;
use super::dlr::margin;
use super::oracle::{logits, sample_rng, Meter};
use crate::model::Model;
use crate::regularize::NormType;
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

/// Runs Square (L∞ or L2, the config's norm) on the rows `x` with labels `y` (`index`: the
/// sample indices, for the random streams), `restarts` times on the rows not broken yet, in
/// batches. `shape` is `[c, h, w]` with `c·h·w` the row width. Returns each row's candidate with
/// margin ≤ 0, if found.
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
            meter.add(expected.saturating_sub(meter.done))?;
        }
    }
    Ok(found)
}

/// The geometry of one run: the input layout, the threat model and the valid range.
struct Geometry {
    c: usize,
    h: usize,
    w: usize,
    eps: f32,
    clip: Option<(f32, f32)>,
}

impl Geometry {
    fn clip(&self, v: f32) -> f32 {
        self.clip.map_or(v, |(lo, hi)| v.clamp(lo, hi))
    }

    /// The flat index of `(channel, line, column)`.
    fn at(&self, ch: usize, line: usize, col: usize) -> usize {
        ch * self.h * self.w + line * self.w + col
    }

    /// A random corner for a `sh × sw` window: every position in `[0, h − sh] × [0, w − sw]`.
    fn corner(&self, (sh, sw): (usize, usize), rng: &mut ChaCha8Rng) -> (usize, usize) {
        let top = ((rng.random::<f32>() * (self.h - sh + 1) as f32) as usize).min(self.h - sh);
        let left = ((rng.random::<f32>() * (self.w - sw + 1) as f32) as usize).min(self.w - sw);
        (top, left)
    }

    /// L∞ start: vertical stripes, one sign per (channel, column).
    fn init_linf(&self, row: &mut [f32], rng: &mut ChaCha8Rng) {
        for ch in 0..self.c {
            for col in 0..self.w {
                let sign = random_sign(rng);
                for line in 0..self.h {
                    let at = self.at(ch, line, col);
                    row[at] = self.clip(row[at] + self.eps * sign);
                }
            }
        }
    }

    /// L∞ candidate: a window of `p`'s size moved to the other face of the box, one sign per channel.
    fn candidate_linf(&self, cand: &mut [f32], x0: &[f32], p: f64, rng: &mut ChaCha8Rng) {
        let (sh, sw) = window(p, self.h, self.w);
        let (top, left) = self.corner((sh, sw), rng);
        for ch in 0..self.c {
            let sign = random_sign(rng);
            for line in top..top + sh {
                for col in left..left + sw {
                    let at = self.at(ch, line, col);
                    let v = (cand[at] + 2.0 * self.eps * sign).clamp(x0[at] - self.eps, x0[at] + self.eps);
                    cand[at] = self.clip(v);
                }
            }
        }
    }

    /// L2 start: a grid of tiles, each a centre-weighted perturbation (`pseudo_gaussian`) with one
    /// sign per channel, the whole rescaled to norm ε (the reference's `delta_init`).
    fn init_l2(&self, row: &mut [f32], rng: &mut ChaCha8Rng) {
        let (th, tw) = if self.h == 1 { (1, (self.w / 5).max(1)) } else { ((self.h / 5).max(1), (self.h / 5).max(1)) };
        // The reference's `sp_init = (h − 5s) // 2`, on both axes.
        let (top0, left0) = if self.h == 1 {
            (0, self.w.saturating_sub(5 * tw) / 2)
        } else {
            (self.h.saturating_sub(5 * th) / 2, self.w.saturating_sub(5 * tw) / 2)
        };
        let mut delta = vec![0.0f32; row.len()];
        let mut top = top0;
        while top + th <= self.h {
            let mut left = left0;
            while left + tw <= self.w {
                let pattern = pseudo_gaussian(th, tw, rng);
                for ch in 0..self.c {
                    let sign = random_sign(rng);
                    for i in 0..th {
                        for j in 0..tw {
                            delta[self.at(ch, top + i, left + j)] += sign * pattern[[i, j]];
                        }
                    }
                }
                left += tw;
            }
            top += th;
        }
        let norm = l2(&delta);
        for (a, d) in row.iter_mut().zip(&delta) {
            *a = self.clip(*a + d / (norm + 1e-12) * self.eps);
        }
    }

    /// L2 candidate (the reference's loop body): the perturbation `δ = x̂ − x` of window 1 is
    /// replaced by its own direction plus a fresh `pseudo_gaussian` (one sign per channel), scaled
    /// so that it takes window 2's mass and what is left of the budget; window 2 is emptied; the
    /// whole is rescaled to norm ε.
    fn candidate_l2(&self, cand: &mut [f32], x0: &[f32], p: f64, rng: &mut ChaCha8Rng) {
        let (sh, sw) = window_l2(p, self.h, self.w);
        let first = self.corner((sh, sw), rng);
        let second = self.corner((sh, sw), rng);
        let pattern = pseudo_gaussian(sh, sw, rng);
        let mut delta: Vec<f32> = cand.iter().zip(x0).map(|(a, b)| a - b).collect();
        let inside = |(top, left): (usize, usize), line: usize, col: usize| {
            (top..top + sh).contains(&line) && (left..left + sw).contains(&col)
        };
        let norm_image = l2(&delta);
        // ‖δ‖ on the union of both windows, every channel.
        let mut union = 0.0f32;
        for ch in 0..self.c {
            for line in 0..self.h {
                for col in 0..self.w {
                    if inside(first, line, col) || inside(second, line, col) {
                        union += delta[self.at(ch, line, col)].powi(2);
                    }
                }
            }
        }
        let budget = ((self.eps * self.eps - norm_image * norm_image).max(0.0) / self.c as f32 + union).sqrt();
        let (top, left) = first;
        let mut fresh = Array2::<f32>::zeros((sh, sw));
        let mut windows = Vec::with_capacity(self.c);
        for ch in 0..self.c {
            let sign = random_sign(rng);
            let old: Vec<f32> = (0..sh * sw).map(|k| delta[self.at(ch, top + k / sw, left + k % sw)]).collect();
            let old_norm = l2(&old);
            for (k, v) in fresh.iter_mut().enumerate() {
                *v = pattern[[k / sw, k % sw]] * sign + old[k] / (1e-12 + old_norm);
            }
            let fresh_norm = l2(fresh.as_slice().unwrap_or(&[]));
            windows.push(fresh.mapv(|v| v / (1e-12 + fresh_norm) * budget));
        }
        let (top2, left2) = second;
        for ch in 0..self.c {
            for line in top2..top2 + sh {
                for col in left2..left2 + sw {
                    delta[self.at(ch, line, col)] = 0.0;
                }
            }
            for ((i, j), &v) in windows[ch].indexed_iter() {
                delta[self.at(ch, top + i, left + j)] = v;
            }
        }
        let norm = l2(&delta);
        for ((a, &b), d) in cand.iter_mut().zip(x0).zip(&delta) {
            *a = self.clip(b + d / (norm + 1e-12) * self.eps);
        }
    }
}

fn l2(v: &[f32]) -> f32 {
    v.iter().map(|a| a * a).sum::<f32>().sqrt()
}

/// The L2 window `(rows, columns)` for fraction `p`: the reference's `s = max(round(√(p·h·w)), 3)`,
/// made odd, at most the image (flat inputs: a run of `max(round(p·d), 3)` features, odd).
fn window_l2(p: f64, h: usize, w: usize) -> (usize, usize) {
    let odd = |s: usize, max: usize| {
        let s = if s.is_multiple_of(2) { s + 1 } else { s };
        s.min(max)
    };
    if h == 1 {
        return (1, odd(((p * w as f64).round_ties_even() as usize).max(3), w));
    }
    // The reference's p · n_features / c = p·h·w.
    let s = odd(((p * (h * w) as f64).sqrt().round_ties_even() as usize).max(3), h.min(w));
    (s, s)
}

/// The reference's `eta_rectangles(x, y)`: nested rectangles around the centre of an `x × y`
/// block, the k-th (k = 0, 1, …) adding `1/(k + 1)²`, normalized to unit L2 norm.
fn rectangles(x: usize, y: usize) -> Array2<f32> {
    let mut delta = Array2::<f32>::zeros((x, y));
    let (xc, yc) = (x / 2 + 1, y / 2 + 1);
    let (mut r, mut q) = (xc as isize - 1, yc as isize - 1);
    for k in 0..xc.max(yc) {
        let span = 2 * k as isize + 1;
        let (r0, r1) = (r.max(0) as usize, ((r + span).max(0) as usize).min(x));
        let (q0, q1) = (q.max(0) as usize, ((q + span).max(0) as usize).min(y));
        let add = 1.0 / ((k + 1) * (k + 1)) as f32;
        for i in r0..r1.max(r0) {
            for j in q0..q1.max(q0) {
                delta[[i, j]] += add;
            }
        }
        r -= 1;
        q -= 1;
    }
    let norm = l2(delta.as_slice().unwrap_or(&[]));
    if norm > 0.0 {
        delta.mapv_inplace(|v| v / norm);
    }
    delta
}

/// The reference's `eta(s)` (the paper's `meta_pseudo_gaussian_pert`): an `s × s` block whose
/// top half is `+rectangles(s/2, s)` and bottom half `−rectangles(s − s/2, s)`, unit L2 norm,
/// transposed with probability ½. A `1 × s` run (flat inputs) is split into its left and right
/// halves the same way.
fn pseudo_gaussian(sh: usize, sw: usize, rng: &mut ChaCha8Rng) -> Array2<f32> {
    let mut delta = Array2::<f32>::zeros((sh, sw));
    if sh == 1 {
        let half = sw / 2;
        let (a, b) = (rectangles(1, half), rectangles(1, sw - half));
        for j in 0..half {
            delta[[0, j]] = a[[0, j]];
        }
        for j in half..sw {
            delta[[0, j]] = -b[[0, j - half]];
        }
    } else {
        let half = sh / 2;
        let (a, b) = (rectangles(half, sw), rectangles(sh - half, sw));
        for ((i, j), v) in delta.indexed_iter_mut() {
            *v = if i < half { a[[i, j]] } else { -b[[i - half, j]] };
        }
    }
    let norm = l2(delta.as_slice().unwrap_or(&[]));
    if norm > 0.0 {
        delta.mapv_inplace(|v| v / norm);
    }
    if sh == sw && rng.random::<f32>() > 0.5 {
        delta = delta.reversed_axes().as_standard_layout().to_owned();
    }
    delta
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
    let geo = Geometry { c, h, w, eps: config.epsilon as f32, clip: config.clip };
    let l2_norm = config.norm == NormType::L2;
    let tag = if l2_norm { 0x6_0000_0000 } else { 0x5_0000_0000 } | restart;
    let mut rngs: Vec<ChaCha8Rng> = index.iter().map(|&i| sample_rng(config.seed, tag, i)).collect();
    let mut best = x.to_owned();
    for (r, mut row) in best.rows_mut().into_iter().enumerate() {
        let Some(row) = row.as_slice_mut() else { candle_core::bail!("Square's rows are not contiguous") };
        if l2_norm {
            geo.init_l2(row, &mut rngs[r]);
        } else {
            geo.init_linf(row, &mut rngs[r]);
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
            meter.add((n * (config.queries - it)) as u64)?;
            break;
        }
        let p = square_p_schedule(config.p_init, it);
        let mut candidates = Array2::<f32>::zeros((open.len(), x.ncols()));
        for (k, &r) in open.iter().enumerate() {
            let mut cand = candidates.row_mut(k);
            cand.assign(&best.row(r));
            let (Some(cand), Some(x0)) = (cand.as_slice_mut(), x.row(r).to_slice()) else {
                candle_core::bail!("Square's rows are not contiguous");
            };
            if l2_norm {
                geo.candidate_l2(cand, x0, p, &mut rngs[r]);
            } else {
                geo.candidate_linf(cand, x0, p, &mut rngs[r]);
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
        meter.add(n as u64)?;
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

    /// The nested rectangles against torchattacks' `Square.eta_rectangles(2, 5)` (a copy of the
    /// reference's): centre 1 + 1/4 + 1/9, its ring 1/4 + 1/9, the corners 1/9, over the norm.
    #[test]
    fn pseudo_gaussian_matches_the_reference() {
        let r = rectangles(2, 5);
        let expected =
            [[0.069526, 0.225959, 0.225959, 0.225959, 0.069526], [0.069526, 0.225959, 0.851691, 0.225959, 0.069526]];
        for i in 0..2 {
            for j in 0..5 {
                assert!((r[[i, j]] - expected[i][j]).abs() < 1e-5, "{r:?}");
            }
        }
        // η(5): rectangles(2, 5) over −rectangles(3, 5), unit norm, transposed half of the time.
        let mut rng = sample_rng(0, 0, 0);
        let mut transposed = 0;
        for _ in 0..20 {
            let eta = pseudo_gaussian(5, 5, &mut rng);
            assert!((l2(eta.as_slice().unwrap()) - 1.0).abs() < 1e-5);
            let eta = if eta[[0, 0]] > 0.0 && eta[[4, 0]] < 0.0 {
                eta
            } else {
                transposed += 1;
                eta.reversed_axes()
            };
            assert!((eta[[1, 2]] - 0.851691 / 2f32.sqrt()).abs() < 1e-5, "{eta:?}");
            assert!((eta[[3, 2]] + 0.789809 / 2f32.sqrt()).abs() < 1e-5, "{eta:?}");
        }
        assert!(transposed > 0 && transposed < 20);
        // A flat run of 5: + on the left 2, − on the right 3, the right half's centre the largest.
        let flat = pseudo_gaussian(1, 5, &mut rng);
        assert!(flat[[0, 0]] > 0.0 && flat[[0, 1]] > 0.0 && flat.row(0).iter().skip(2).all(|&v| v < 0.0));
        assert!(flat[[0, 3]] < flat[[0, 2]] && flat[[0, 3]] < flat[[0, 4]]);
        // L2 windows: at least 3, odd, within the image.
        assert_eq!(window_l2(0.8, 28, 28), (25, 25));
        assert_eq!(window_l2(0.05, 28, 28), (7, 7));
        assert_eq!(window_l2(0.0001, 28, 28), (3, 3));
        assert_eq!(window_l2(0.8, 1, 20), (1, 17));
    }

    /// Every L2 candidate is at distance ε from the clean point (without clipping), and within ε
    /// and the box with it.
    #[test]
    fn l2_candidates_stay_on_the_sphere() {
        let mut rng = sample_rng(3, 1, 0);
        let x0: Vec<f32> = (0..2 * 28 * 28).map(|i| (i % 7) as f32 / 7.0).collect();
        for clip in [None, Some((0.0, 1.0))] {
            let geo = Geometry { c: 2, h: 28, w: 28, eps: 1.5, clip };
            let mut cand = x0.clone();
            geo.init_l2(&mut cand, &mut rng);
            for it in 0..300 {
                geo.candidate_l2(&mut cand, &x0, square_p_schedule(0.8, it), &mut rng);
                let delta: Vec<f32> = cand.iter().zip(&x0).map(|(a, b)| a - b).collect();
                let n = l2(&delta);
                match clip {
                    None => assert!((n - 1.5).abs() < 1e-3, "{it}: {n}"),
                    Some(_) => assert!(n <= 1.5 + 1e-4 && cand.iter().all(|v| (0.0..=1.0).contains(v)), "{it}: {n}"),
                }
            }
        }
    }
}
