//! Adversarial neighbors (`nsl.configs.AdvNeighborConfig`, `nsl.lib.gen_adv_neighbor`): the
//! neighbor of `x` is `x + δ`, a small perturbation along the gradient of the loss.
//!
//! # Formula
//! With `x⁰` the input, `g = ∇ₓL(xᵗ)` (non-finite entries set to 0), `m` the feature mask, `α` the
//! step size, `ε` the PGD radius and `[lo, hi]` the clip range, each of the `T` steps is
//!
//! ```text
//! d    = argmax_{‖u‖ₚ ≤ 1} ⟨m ⊙ g, u⟩      (L∞: sign; L2: g/‖g‖₂; L1: sign on the largest |gᵢ|, ties split)
//! δ    = Proj_{‖·‖ₚ ≤ ε}(α·d + xᵗ − x⁰)      (no projection without ε)
//! xᵗ⁺¹ = clip(x⁰ + δ, lo, hi)
//! ```
//!
//! `T = 1` is FGSM. With `random_init`, `x⁰` first moves to a uniform random point of the ε-ball (α-ball
//! without ε). Unlike NSL, the L1 projection is implemented (Duchi et al. 2008), so L1 PGD works.
//!
//! Everything here works on rows of a `[B, d]` matrix, one example per row.

use crate::config::{named, ConfigError};
use ndarray::{Array2, ArrayView2, Axis, Zip};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp1, Gamma, StandardNormal};
use serde::{Deserialize, Serialize};

/// The norm of the perturbation (`nsl.configs.NormType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum NormType {
    /// Sum of absolute values.
    L1,
    /// Euclidean norm (NSL's default).
    #[default]
    L2,
    /// Largest absolute value (`infinity`).
    #[serde(alias = "inf")]
    Infinity,
}

impl NormType {
    /// Every name [`FromStr`](std::str::FromStr) accepts.
    pub(crate) const NAMES: &'static [(&'static str, NormType)] = &[
        ("l1", NormType::L1),
        ("l2", NormType::L2),
        ("inf", NormType::Infinity),
        ("infinity", NormType::Infinity),
        ("linf", NormType::Infinity),
    ];
}

/// Parses `l1`, `l2`, `inf` (or `infinity`, `linf`).
impl std::str::FromStr for NormType {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        named("norm", Self::NAMES, s)
    }
}

/// How adversarial neighbors are generated. `Default` is NSL's: step 0.001, L2, FGSM (1 iteration),
/// no ε, no clipping, no random start, no mask.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdvNeighborConfig {
    /// Step size `α` of each step. Default 0.001 (NSL); NSL's MNIST tutorial uses 0.2.
    pub step_size: f64,
    /// Norm of the step direction (and of the ε-ball). Default L2.
    pub grad_norm: NormType,
    /// Lower bound of the perturbed features (e.g. 0 for pixels). Default none.
    pub clip_min: Option<f32>,
    /// Upper bound of the perturbed features (e.g. 1 for pixels). Default none.
    pub clip_max: Option<f32>,
    /// Number of gradient steps; 1 is FGSM. Default 1.
    pub pgd_iterations: usize,
    /// Radius `ε` of the ball around the input that the perturbation is projected onto. Default none.
    pub pgd_epsilon: Option<f64>,
    /// Start from a uniformly random point of the ball. Default false.
    pub random_init: bool,
    /// Per-feature mask in `[0, 1]` multiplied into the gradient (0 = never perturbed), one value per
    /// feature. Default none (all 1).
    pub feature_mask: Option<Vec<f32>>,
}

impl Default for AdvNeighborConfig {
    fn default() -> Self {
        AdvNeighborConfig {
            step_size: 0.001,
            grad_norm: NormType::L2,
            clip_min: None,
            clip_max: None,
            pgd_iterations: 1,
            pgd_epsilon: None,
            random_init: false,
            feature_mask: None,
        }
    }
}

impl AdvNeighborConfig {
    /// The config with the step size and ε (and so the random start's radius) multiplied by
    /// `factor`: the ε warm-up of [`AdvRegConfig::epsilon_warmup`](super::AdvRegConfig).
    pub fn scaled(&self, factor: f64) -> AdvNeighborConfig {
        AdvNeighborConfig {
            step_size: self.step_size * factor,
            pgd_epsilon: self.pgd_epsilon.map(|e| e * factor),
            ..self.clone()
        }
    }

    /// Checks the values against the feature width `d`.
    ///
    /// # Errors
    /// [`ConfigError::InvalidValue`] naming the field: a negative or non-finite step or ε, 0
    /// iterations, `clip_min > clip_max`, a mask of the wrong length or with values outside `[0, 1]`.
    pub fn validate(&self, d: usize) -> Result<(), ConfigError> {
        let finite = "a finite number ≥ 0";
        if !(self.step_size.is_finite() && self.step_size >= 0.0) {
            return Err(ConfigError::invalid("adversarial step_size", self.step_size, finite));
        }
        if self.pgd_iterations == 0 {
            return Err(ConfigError::invalid("adversarial pgd_iterations", 0, "at least 1 (1 = FGSM)"));
        }
        if let Some(eps) = self.pgd_epsilon {
            if !(eps.is_finite() && eps >= 0.0) {
                return Err(ConfigError::invalid("adversarial pgd_epsilon", eps, finite));
            }
        }
        if let (Some(lo), Some(hi)) = (self.clip_min, self.clip_max) {
            if lo > hi {
                return Err(ConfigError::invalid("adversarial clip_min:clip_max", format!("{lo}:{hi}"), "MIN ≤ MAX"));
            }
        }
        if let Some(mask) = &self.feature_mask {
            if mask.len() != d {
                return Err(ConfigError::invalid(
                    "adversarial feature_mask",
                    format!("{} values", mask.len()),
                    format!("one value per feature ({d})"),
                ));
            }
            if let Some(v) = mask.iter().find(|v| !(0.0..=1.0).contains(*v)) {
                return Err(ConfigError::invalid("adversarial feature_mask", v, "values in [0, 1]"));
            }
        }
        Ok(())
    }
}

/// Per row, the unit-norm direction that maximizes `⟨g, u⟩` (`nsl.lib.maximize_within_unit_norm`):
/// The sign of `v`, 0 at 0 (unlike [`f32::signum`], which gives ±1 there): the L∞ steepest-ascent
/// direction, which leaves a coordinate with no gradient where it is.
pub(crate) fn sign(v: f32) -> f32 {
    if v > 0.0 {
        1.0
    } else if v < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// L∞ `sign(g)`; L2 `g / max(‖g‖₂, 1e-6)`; L1 `sign(gᵢ)/k` on the `k` coordinates where `|gᵢ|` is largest,
/// 0 elsewhere.
pub fn maximize_within_unit_norm(g: ArrayView2<f32>, norm: NormType) -> Array2<f32> {
    let mut out = g.to_owned();
    for mut row in out.rows_mut() {
        match norm {
            NormType::Infinity => row.mapv_inplace(sign),
            NormType::L2 => {
                let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-6);
                row.mapv_inplace(|v| v / norm);
            }
            NormType::L1 => {
                let max = row.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                let ties = row.iter().filter(|v| v.abs() == max).count().max(1) as f32;
                row.mapv_inplace(|v| if v.abs() == max && max > 0.0 { v.signum() / ties } else { 0.0 });
            }
        }
    }
    out
}

/// Projects each row onto the ball `‖δ‖ₚ ≤ radius` (`nsl.lib.project_to_ball`): L∞ clips each value;
/// L2 scales by `min(1, radius/‖δ‖₂)`; L1 uses the exact Euclidean projection onto the L1 ball
/// (sort-based, Duchi et al. 2008), which NSL leaves unimplemented.
pub fn project_to_ball(delta: &mut Array2<f32>, radius: f32, norm: NormType) {
    for mut row in delta.rows_mut() {
        match norm {
            NormType::Infinity => row.mapv_inplace(|v| v.clamp(-radius, radius)),
            NormType::L2 => {
                let n = row.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-6);
                if n > radius {
                    row.mapv_inplace(|v| v * radius / n);
                }
            }
            NormType::L1 => {
                let l1: f32 = row.iter().map(|v| v.abs()).sum();
                if l1 <= radius {
                    continue;
                }
                // θ such that Σ max(|vᵢ| − θ, 0) = radius.
                let mut mags: Vec<f32> = row.iter().map(|v| v.abs()).collect();
                mags.sort_by(|a, b| b.total_cmp(a));
                let (mut cumulative, mut theta) = (0.0f32, 0.0f32);
                for (i, &m) in mags.iter().enumerate() {
                    cumulative += m;
                    let t = (cumulative - radius) / (i + 1) as f32;
                    if m > t {
                        theta = t;
                    } else {
                        break;
                    }
                }
                row.mapv_inplace(|v| v.signum() * (v.abs() - theta).max(0.0));
            }
        }
    }
}

/// `[rows, d]` points drawn uniformly from the ball of `radius` (`nsl.lib.random_in_norm_ball`): L∞
/// `U(−r, r)` per value; L2 Gaussian directions with a `χ²(2)` extra term; L1 Laplace draws with an
/// `Exp(1)` extra term (Barthe et al. 2005).
pub fn random_in_norm_ball(rows: usize, d: usize, radius: f32, norm: NormType, rng: &mut impl Rng) -> Array2<f32> {
    let mut out = Array2::zeros((rows, d));
    for mut row in out.rows_mut() {
        match norm {
            NormType::Infinity => row.mapv_inplace(|_| rng.random_range(-radius..=radius)),
            NormType::L2 => {
                row.mapv_inplace(|_| StandardNormal.sample(rng));
                // Gamma(shape 1, scale 2) is χ²(2).
                let extra: f32 = Gamma::new(1.0f32, 2.0).map(|g| g.sample(rng)).unwrap_or(0.0);
                let scale = radius / (row.iter().map(|v| v * v).sum::<f32>() + extra).sqrt().max(1e-12);
                row.mapv_inplace(|v| v * scale);
            }
            NormType::L1 => {
                row.mapv_inplace(|_| {
                    let (a, b): (f32, f32) = (Exp1.sample(rng), Exp1.sample(rng));
                    a - b
                });
                let extra: f32 = Exp1.sample(rng);
                let scale = radius / (row.iter().map(|v| v.abs()).sum::<f32>() + extra).max(1e-12);
                row.mapv_inplace(|v| v * scale);
            }
        }
    }
    out
}

/// Generates adversarial neighbors of the rows of `x` (`nsl.lib.gen_adv_neighbor`).
///
/// `gradient(x)` returns `∇ₓL` at `x` (same shape); `first_gradient`, when given and `random_init` is
/// off, is the gradient at `x` already computed by the training step (NSL reuses it for the first
/// step). `seed` drives the random start. The result is a constant (no gradient flows through it).
///
/// # Errors
/// Whatever `gradient` returns.
pub fn gen_adv_neighbor<E>(
    x: ArrayView2<f32>,
    first_gradient: Option<Array2<f32>>,
    config: &AdvNeighborConfig,
    seed: u64,
    gradient: impl FnMut(ArrayView2<f32>) -> Result<Array2<f32>, E>,
) -> Result<Array2<f32>, E> {
    if config.random_init {
        let radius = config.pgd_epsilon.unwrap_or(config.step_size) as f32;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut start = &x + &random_in_norm_ball(x.nrows(), x.ncols(), radius, config.grad_norm, &mut rng);
        clip(&mut start, config);
        return pgd_from(x, start, None, config, gradient);
    }
    pgd_from(x, x.to_owned(), first_gradient, config, gradient)
}

/// `x + σ·N(0, I)` clipped to the config's range, one draw per value from `seed`: the small random
/// start of TRADES' and MART's inner maximization (their reference code uses `σ = 0.001`; at `x`
/// itself TRADES' KL has a zero gradient).
pub fn gaussian_start(x: ArrayView2<f32>, sigma: f32, config: &AdvNeighborConfig, seed: u64) -> Array2<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut start = x.mapv(|v| {
        let z: f32 = StandardNormal.sample(&mut rng);
        v + sigma * z
    });
    clip(&mut start, config);
    start
}

/// The `T = pgd_iterations` steps of [`gen_adv_neighbor`]'s formula from `start` (a point that
/// replaces `x⁰`; the ε-ball stays centered on `x`), ignoring `random_init`. `first_gradient`, if
/// given, is the gradient at `start`.
///
/// # Errors
/// Whatever `gradient` returns.
pub fn pgd_from<E>(
    x: ArrayView2<f32>,
    start: Array2<f32>,
    first_gradient: Option<Array2<f32>>,
    config: &AdvNeighborConfig,
    mut gradient: impl FnMut(ArrayView2<f32>) -> Result<Array2<f32>, E>,
) -> Result<Array2<f32>, E> {
    let mut current = start;
    let mut first = first_gradient;
    for _ in 0..config.pgd_iterations {
        let mut g = match first.take() {
            Some(g) => g,
            None => gradient(current.view())?,
        };
        g.mapv_inplace(|v| if v.is_finite() { v } else { 0.0 });
        if let Some(mask) = &config.feature_mask {
            let mask = ndarray::ArrayView1::from(mask.as_slice());
            g *= &mask.insert_axis(Axis(0));
        }
        let direction = maximize_within_unit_norm(g.view(), config.grad_norm);
        let mut delta = &current - &x;
        Zip::from(&mut delta).and(&direction).for_each(|d, &u| *d += config.step_size as f32 * u);
        if let Some(eps) = config.pgd_epsilon {
            project_to_ball(&mut delta, eps as f32, config.grad_norm);
        }
        current = &x + &delta;
        clip(&mut current, config);
    }
    Ok(current)
}

/// Clips every value to the config's `[clip_min, clip_max]`, if any.
fn clip(a: &mut Array2<f32>, config: &AdvNeighborConfig) {
    if config.clip_min.is_some() || config.clip_max.is_some() {
        let (lo, hi) = (config.clip_min.unwrap_or(f32::NEG_INFINITY), config.clip_max.unwrap_or(f32::INFINITY));
        a.mapv_inplace(|v| v.clamp(lo, hi));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;
    use std::convert::Infallible;

    #[test]
    fn unit_directions_for_each_norm() {
        let g = array![[3.0f32, -4.0, 0.0], [1.0, -1.0, 0.5]];
        assert_eq!(maximize_within_unit_norm(g.view(), NormType::Infinity), array![[1.0, -1.0, 0.0], [1.0, -1.0, 1.0]]);
        let l2 = maximize_within_unit_norm(g.view(), NormType::L2);
        assert!((l2[[0, 0]] - 0.6).abs() < 1e-6 && (l2[[0, 1]] + 0.8).abs() < 1e-6);
        // L1: the largest |g| gets the sign; ties split evenly.
        assert_eq!(maximize_within_unit_norm(g.view(), NormType::L1), array![[0.0, -1.0, 0.0], [0.5, -0.5, 0.0]]);
        // A zero gradient stays zero in every norm.
        let zero = Array2::<f32>::zeros((1, 3));
        for norm in [NormType::L1, NormType::L2, NormType::Infinity] {
            assert_eq!(maximize_within_unit_norm(zero.view(), norm), zero);
        }
    }

    #[test]
    fn projections_onto_balls() {
        let mut d = array![[0.5f32, -2.0, 0.1]];
        project_to_ball(&mut d, 0.3, NormType::Infinity);
        assert_eq!(d, array![[0.3, -0.3, 0.1]]);
        let mut d = array![[3.0f32, 4.0]];
        project_to_ball(&mut d, 1.0, NormType::L2);
        assert!((d[[0, 0]] - 0.6).abs() < 1e-6 && (d[[0, 1]] - 0.8).abs() < 1e-6);
        let mut inside = array![[0.1f32, 0.1]];
        project_to_ball(&mut inside, 1.0, NormType::L2);
        assert_eq!(inside, array![[0.1, 0.1]]);
        // L1 ball of radius 1: (3, -1) → θ = 1 → (1, 0)... check: |3|-θ + max(|−1|−θ,0) = 1 ⇒ θ = 2 ⇒ (1, 0).
        let mut d = array![[3.0f32, -1.0]];
        project_to_ball(&mut d, 1.0, NormType::L1);
        assert_eq!(d, array![[1.0, 0.0]]);
        // (0.8, -0.6), radius 1: θ = 0.2 ⇒ (0.6, -0.4).
        let mut d = array![[0.8f32, -0.6]];
        project_to_ball(&mut d, 1.0, NormType::L1);
        assert!((d[[0, 0]] - 0.6).abs() < 1e-6 && (d[[0, 1]] + 0.4).abs() < 1e-6);
    }

    #[test]
    fn random_points_lie_in_the_ball() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for norm in [NormType::L1, NormType::L2, NormType::Infinity] {
            let p = random_in_norm_ball(50, 10, 0.5, norm, &mut rng);
            for row in p.rows() {
                let n = match norm {
                    NormType::L1 => row.iter().map(|v| v.abs()).sum::<f32>(),
                    NormType::L2 => row.iter().map(|v| v * v).sum::<f32>().sqrt(),
                    NormType::Infinity => row.iter().fold(0.0f32, |m, v| m.max(v.abs())),
                };
                assert!(n <= 0.5 + 1e-5, "{norm:?} norm {n}");
            }
        }
    }

    #[test]
    fn fgsm_step_clip_and_mask() {
        let x = array![[0.5f32, 0.9, 0.1]];
        let g = array![[1.0f32, 1.0, -1.0]];
        let config = AdvNeighborConfig {
            step_size: 0.2,
            grad_norm: NormType::Infinity,
            clip_min: Some(0.0),
            clip_max: Some(1.0),
            feature_mask: Some(vec![1.0, 1.0, 0.0]),
            ..Default::default()
        };
        let adv = gen_adv_neighbor::<Infallible>(x.view(), Some(g), &config, 0, |_| unreachable!()).unwrap();
        // 0.5 + 0.2; 0.9 + 0.2 clipped to 1; the masked feature stays.
        assert!((adv[[0, 0]] - 0.7).abs() < 1e-6);
        assert_eq!(adv[[0, 1]], 1.0);
        assert_eq!(adv[[0, 2]], 0.1);
    }

    #[test]
    fn pgd_stays_in_the_epsilon_ball_and_ignores_nan() {
        let x = array![[0.0f32, 0.0]];
        let config = AdvNeighborConfig {
            step_size: 0.1,
            grad_norm: NormType::Infinity,
            pgd_iterations: 10,
            pgd_epsilon: Some(0.25),
            ..Default::default()
        };
        let mut calls = 0;
        let adv = gen_adv_neighbor::<Infallible>(x.view(), None, &config, 0, |_| {
            calls += 1;
            Ok(array![[1.0f32, f32::NAN]])
        })
        .unwrap();
        assert_eq!(calls, 10);
        assert_eq!(adv, array![[0.25, 0.0]]);
        // Random start: still inside the ball.
        let random = AdvNeighborConfig { random_init: true, ..config };
        let adv = gen_adv_neighbor::<Infallible>(x.view(), None, &random, 3, |_| Ok(array![[0.0f32, 0.0]])).unwrap();
        assert!(adv.iter().all(|v| v.abs() <= 0.25 + 1e-6));
    }

    #[test]
    fn validation_names_the_field() {
        let err = AdvNeighborConfig { pgd_iterations: 0, ..Default::default() }.validate(2).unwrap_err();
        assert_eq!(err.to_string(), "invalid value `0` for adversarial pgd_iterations: expected at least 1 (1 = FGSM)");
        let err = AdvNeighborConfig { clip_min: Some(1.0), clip_max: Some(0.0), ..Default::default() }.validate(2);
        assert!(err.unwrap_err().to_string().contains("clip_min:clip_max"));
        assert!(AdvNeighborConfig { feature_mask: Some(vec![1.0]), ..Default::default() }.validate(2).is_err());
        assert!(AdvNeighborConfig { step_size: -1.0, ..Default::default() }.validate(2).is_err());
        assert!(AdvNeighborConfig::default().validate(2).is_ok());
    }
}
