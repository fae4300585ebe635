//! Virtual adversarial regularization (`nsl.configs.VirtualAdvConfig`,
//! `nsl.lib.virtual_adv_regularizer`; Miyato et al., "Virtual Adversarial Training", 2018): the
//! neighbor of `x` is the small perturbation that changes the model's *own* output most, so it
//! needs no label and regularizes unlabeled samples as well as labeled ones.
//!
//! # Formula (NSL's)
//! ```text
//! d ← normalize(N(0, I))                                         (a random direction, seeded)
//! repeat steps:  d ← normalize(∇_r D(f(x), f(x + r)) at r = ξ·d)   (power iteration)
//! L_vat = D(stop_gradient(f(x)), f(x + ε·d))
//! ```
//! `normalize` is NSL's `normalize` per example: L2 `t / √max(Σt², 10⁻¹²)`, L∞
//! `t / max(max|t|, 10⁻⁶)`, L1 `t / max(Σ|t|, 10⁻⁶)`. `D` is the graph regularizer's distance
//! ([`pairwise_distance`](super::pairwise_distance)) with weight 1 per sample.
//!
//! # Differences from NSL
//! NSL's `virtual_adv_regularizer` is a low-level function its Keras wrappers never call; here it
//! is wired into the trainer (`Trainer::with_vat`, `nsl train --vat`), on labeled and unlabeled
//! centers. NSL's `approx_difference` default ξ = 10⁻⁶ is below f32's resolution for inputs of
//! size ~1 (the perturbed input rounds back to `x` and the direction to 0); `xi=1e-3` is a better
//! choice for f32 features. The feature mask is not supported.

use super::adv_neighbor::NormType;
use super::distance::{DistanceConfig, DistanceType, Transform};
use crate::config::{key_values, lookup, one_of, ConfigError};
use ndarray::{Array2, ArrayView2, Axis};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

/// Virtual-adversarial settings. `Default` is NSL's `VirtualAdvConfig` (step 0.001 in L2, one
/// power iteration, ξ = 10⁻⁶, NSL's `DistanceConfig`) with multiplier 1 (NSL's has none: the caller
/// scales the loss).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VatConfig {
    /// Weight of the loss. Default 1.
    pub multiplier: f64,
    /// Radius ε of the perturbation (NSL's `adv_step_size`). Default 0.001.
    pub epsilon: f64,
    /// Norm of the perturbation. Default L2.
    pub norm: NormType,
    /// Power iterations (NSL's `num_approx_steps`). Default 1.
    pub steps: usize,
    /// Finite-difference step ξ of the power iteration (NSL's `approx_difference`). Default 10⁻⁶.
    pub xi: f64,
    /// The distance between the clean and the perturbed outputs. Default NSL's `DistanceConfig`.
    pub distance: DistanceConfig,
}

impl Default for VatConfig {
    fn default() -> Self {
        VatConfig {
            multiplier: 1.0,
            epsilon: 0.001,
            norm: NormType::L2,
            steps: 1,
            xi: 1e-6,
            distance: DistanceConfig::default(),
        }
    }
}

const DISTANCES: &[(&str, DistanceType)] = &[
    ("l1", DistanceType::L1),
    ("l2", DistanceType::L2),
    ("cosine", DistanceType::Cosine),
    ("kl", DistanceType::KlDivergence),
    ("jsd", DistanceType::JensenShannonDivergence),
];

impl VatConfig {
    /// The keys [`from_kv`](Self::from_kv) knows.
    pub const KEYS: &'static [&'static str] = &["multiplier", "epsilon", "norm", "steps", "xi", "distance"];

    /// Parses `key=value` pairs (`nsl train --vat`, e.g. `multiplier=1,epsilon=1,xi=1e-3,distance=kl`)
    /// over the `Default`, then validates. `distance=kl` or `jsd` compares the softmax of the
    /// outputs, one distance per sample (VAT's paper); `l1`, `l2`, `cosine` the outputs themselves.
    ///
    /// ```
    /// let vat = nsl::regularize::VatConfig::from_kv("epsilon=2,steps=2,distance=kl").unwrap();
    /// assert_eq!((vat.epsilon, vat.steps, vat.xi), (2.0, 2, 1e-6));
    /// assert!(nsl::regularize::VatConfig::from_kv("steps=0").is_err());
    /// ```
    ///
    /// # Errors
    /// [`ConfigError`] naming the pair.
    pub fn from_kv(spec: &str) -> Result<Self, ConfigError> {
        let mut config = VatConfig::default();
        for kv in key_values("--vat", spec) {
            let kv = kv?;
            match kv.key.as_str() {
                "multiplier" => config.multiplier = kv.parse("a number")?,
                "epsilon" | "step-size" => config.epsilon = kv.parse("a number")?,
                "norm" => config.norm = kv.named(NormType::NAMES)?,
                "steps" | "num-approx-steps" => config.steps = kv.parse("a number of steps ≥ 1")?,
                "xi" | "approx-difference" => config.xi = kv.parse("a number")?,
                "distance" => {
                    let Some(distance) = lookup(DISTANCES, kv.value) else {
                        return Err(kv.invalid(one_of(DISTANCES)));
                    };
                    let transform = match distance {
                        DistanceType::KlDivergence | DistanceType::JensenShannonDivergence => Transform::Softmax,
                        _ => Transform::None,
                    };
                    config.distance =
                        DistanceConfig { distance, transform, sum_over_axis: Some(-1), ..Default::default() };
                }
                _ => return Err(kv.unknown(Self::KEYS)),
            }
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks the values.
    ///
    /// # Errors
    /// [`ConfigError::InvalidValue`] naming the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (name, v) in [("vat multiplier", self.multiplier), ("vat epsilon", self.epsilon), ("vat xi", self.xi)] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(ConfigError::invalid(name, v, "a finite number ≥ 0"));
            }
        }
        if self.steps == 0 {
            return Err(ConfigError::invalid("vat steps", 0, "at least 1"));
        }
        Ok(())
    }
}

/// [`VatConfig::from_kv`].
impl std::str::FromStr for VatConfig {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        VatConfig::from_kv(s)
    }
}

/// NSL's per-example `normalize` (see the module doc); non-finite entries count as 0.
pub fn normalize_rows(mut t: Array2<f32>, norm: NormType) -> Array2<f32> {
    t.mapv_inplace(|v| if v.is_finite() { v } else { 0.0 });
    for mut row in t.axis_iter_mut(Axis(0)) {
        let scale = match norm {
            NormType::L2 => row.iter().map(|v| v * v).sum::<f32>().max(1e-12).sqrt(),
            NormType::Infinity => row.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-6),
            NormType::L1 => row.iter().map(|v| v.abs()).sum::<f32>().max(1e-6),
        };
        row.mapv_inplace(|v| v / scale);
    }
    t
}

/// The virtual adversarial direction `d` for the rows of `x` (unit norm per row), starting from
/// a seeded random direction. `grad(x + ξ·d)` must return `∇_r D(f(x), f(x + r))` at that point.
///
/// # Errors
/// Whatever `grad` returns.
pub fn virtual_adv_direction<E>(
    x: ArrayView2<f32>,
    config: &VatConfig,
    seed: u64,
    grad: impl FnMut(ArrayView2<f32>) -> Result<Array2<f32>, E>,
) -> Result<Array2<f32>, E> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let start = Array2::from_shape_fn(x.dim(), |_| rng.sample::<f32, _>(StandardNormal));
    power_iteration(x, normalize_rows(start, config.norm), config, grad)
}

/// [`virtual_adv_direction`] from a given unit direction `d`.
fn power_iteration<E>(
    x: ArrayView2<f32>,
    mut d: Array2<f32>,
    config: &VatConfig,
    mut grad: impl FnMut(ArrayView2<f32>) -> Result<Array2<f32>, E>,
) -> Result<Array2<f32>, E> {
    let xi = config.xi as f32;
    for _ in 0..config.steps {
        let probe = &x + &(&d * xi);
        d = normalize_rows(grad(probe.view())?, config.norm);
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    /// For a linear model `f(x) = x·W` and the squared L2 distance, `∇_r ‖r·W‖² = 2·r·W·Wᵀ`: the power
    /// iteration multiplies by `W·Wᵀ` = diag(9, 1) for W = diag(3, 1). From d = (1, 1)/√2: one step
    /// gives (9, 1)/√82, two steps (81, 1)/√6562.
    #[test]
    fn power_iteration_by_hand() {
        let x = array![[0.5f32, -0.25]];
        let w = array![[3.0f32, 0.0], [0.0, 1.0]];
        let grad = |probe: ArrayView2<f32>| -> Result<Array2<f32>, ()> {
            let r = &probe - &x;
            Ok(r.dot(&w).dot(&w.t()) * 2.0)
        };
        let d0 = array![[1.0f32, 1.0]] / 2f32.sqrt();
        let close = |a: &Array2<f32>, b: [f32; 2]| (a[[0, 0]] - b[0]).abs() < 1e-3 && (a[[0, 1]] - b[1]).abs() < 1e-3;
        let one = VatConfig { steps: 1, xi: 1e-2, ..Default::default() };
        let d1 = power_iteration(x.view(), d0.clone(), &one, grad).unwrap();
        assert!(close(&d1, [9.0 / 82f32.sqrt(), 1.0 / 82f32.sqrt()]), "{d1}");
        let two = VatConfig { steps: 2, ..one.clone() };
        let d2 = power_iteration(x.view(), d0, &two, grad).unwrap();
        assert!(close(&d2, [81.0 / 6562f32.sqrt(), 1.0 / 6562f32.sqrt()]), "{d2}");
    }

    #[test]
    fn normalize_as_nsl() {
        let t = array![[3.0f32, -4.0], [0.0, 0.0]];
        assert_eq!(normalize_rows(t.clone(), NormType::L2), array![[0.6, -0.8], [0.0, 0.0]]);
        assert_eq!(normalize_rows(t.clone(), NormType::Infinity), array![[0.75, -1.0], [0.0, 0.0]]);
        assert_eq!(normalize_rows(t, NormType::L1), array![[3.0 / 7.0, -4.0 / 7.0], [0.0, 0.0]]);
    }

    #[test]
    fn seeded_directions_are_unit_and_reproducible() {
        let x = Array2::<f32>::zeros((3, 5));
        let identity = |p: ArrayView2<f32>| -> Result<Array2<f32>, ()> { Ok(p.to_owned()) };
        let a = virtual_adv_direction(x.view(), &VatConfig::default(), 7, identity).unwrap();
        let b = virtual_adv_direction(x.view(), &VatConfig::default(), 7, identity).unwrap();
        assert_eq!(a, b);
        for row in a.rows() {
            assert!((row.iter().map(|v| v * v).sum::<f32>() - 1.0).abs() < 1e-4);
        }
    }
}
