//! Adversarial regularization (`nsl.configs.AdvRegConfig`, `nsl.keras.AdversarialRegularization`).
//!
//! # Formula
//! NSL's form (supervised): `L = L_sup(y, f(x)) + multiplier · L_sup(y, f(x_adv))`.
//! Distance form: `L = L_sup(y, f(x)) + multiplier · D(f(x), f(x_adv))` with a [`DistanceConfig`],
//! the graph regularizer's distance over the (sample, adversarial neighbor) pairs of weight 1.
//! In both forms `x_adv` is built by [`gen_adv_neighbor`](super::gen_adv_neighbor) from
//! `∇ₓ L_sup`, the gradient of the supervised loss on the **labels**: the distance form is not
//! label-free (not virtual adversarial training); only its loss term compares outputs instead of
//! labels.

use super::adversarial::AdvNeighborConfig;
use super::distance::{DistanceConfig, DistanceType, Transform};
use crate::config::{key_values, lookup, one_of, ConfigError};
use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// What the adversarial neighbor's output is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdvLoss {
    /// The label, with the supervised loss (NSL's form). Default.
    Supervised,
    /// The sample's own output, with a distance. The neighbor is still crafted from the labels'
    /// loss gradient; only this loss term leaves the labels out.
    Distance(DistanceConfig),
}

impl AdvLoss {
    /// The names of `loss=` in [`AdvRegConfig::from_kv`]: `supervised`, or a distance.
    const NAMES: &'static [(&'static str, Option<DistanceType>)] = &[
        ("supervised", None),
        ("l1", Some(DistanceType::L1)),
        ("l2", Some(DistanceType::L2)),
        ("cosine", Some(DistanceType::Cosine)),
        ("kl", Some(DistanceType::KlDivergence)),
        ("jsd", Some(DistanceType::JensenShannonDivergence)),
    ];

    /// The distance form with `distance` between the outputs, summed over the last axis (one
    /// distance per pair); `kl` and `jsd` compare the softmax of the logits.
    pub fn distance(distance: DistanceType) -> Self {
        let transform = match distance {
            DistanceType::KlDivergence | DistanceType::JensenShannonDivergence => Transform::Softmax,
            DistanceType::L1 | DistanceType::L2 | DistanceType::Cosine => Transform::None,
        };
        AdvLoss::Distance(DistanceConfig { distance, transform, sum_over_axis: Some(-1), ..Default::default() })
    }
}

/// Adversarial-regularization settings. `Default` is NSL's: multiplier 0.2, NSL's
/// [`AdvNeighborConfig`] defaults, the supervised form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdvRegConfig {
    /// Weight of the adversarial loss. Default 0.2.
    pub multiplier: f64,
    /// How neighbors are generated.
    pub neighbor: AdvNeighborConfig,
    /// What the loss compares. Default: the supervised loss on the label.
    pub loss: AdvLoss,
}

impl Default for AdvRegConfig {
    fn default() -> Self {
        AdvRegConfig { multiplier: 0.2, neighbor: AdvNeighborConfig::default(), loss: AdvLoss::Supervised }
    }
}

impl AdvRegConfig {
    /// The keys [`from_kv`](Self::from_kv) knows.
    pub const KEYS: &'static [&'static str] =
        &["multiplier", "step-size", "norm", "pgd-iterations", "epsilon", "clip", "random-init", "loss"];

    /// Parses `key=value` pairs (`nsl train --adv-reg`, e.g. `multiplier=0.2,step-size=0.2,norm=inf`)
    /// over [`AdvRegConfig::default`]. Pairs are separated by commas, and `_` in a key is the same
    /// as `-`. The keys:
    ///
    /// - `multiplier`: a number (default 0.2);
    /// - `step-size` or `adv-step-size`: the step size (default 0.001; NSL's MNIST tutorial: 0.2);
    /// - `norm` or `grad-norm`: `l1`, `l2`, `inf` (`infinity`, `linf`) (default `l2`);
    /// - `pgd-iterations` or `iterations`: gradient steps (default 1 = FGSM);
    /// - `epsilon` or `pgd-epsilon`: the PGD ball's radius (default none);
    /// - `clip`: `MIN:MAX` bounds of the perturbed features, either side may be empty (e.g. `0:1`
    ///   for pixels; default none);
    /// - `random-init`: `true` or `false` (default `false`);
    /// - `loss`: `supervised` (NSL's form, default), or a distance `l1`, `l2`, `cosine`, `kl`, `jsd`
    ///   between the sample's and the neighbor's outputs ([`AdvLoss::distance`]). The neighbor is
    ///   crafted from the labels' loss gradient in either case.
    ///
    /// Values that depend on the data are checked later, by [`validate`](Self::validate).
    ///
    /// ```
    /// use nsl::regularize::{AdvRegConfig, NormType};
    /// let config = AdvRegConfig::from_kv("step-size=0.2,norm=inf,clip=0:1").unwrap();
    /// assert_eq!(config.neighbor.grad_norm, NormType::Infinity);
    /// assert_eq!((config.neighbor.clip_min, config.neighbor.clip_max), (Some(0.0), Some(1.0)));
    /// assert_eq!(AdvRegConfig::from_kv("").unwrap(), AdvRegConfig::default());
    /// ```
    ///
    /// # Errors
    /// [`ConfigError`] naming the pair: not `key=value`, an unknown key, or a value that does not
    /// parse.
    pub fn from_kv(spec: &str) -> Result<Self, ConfigError> {
        let mut config = AdvRegConfig::default();
        let neighbor = &mut config.neighbor;
        for kv in key_values("--adv-reg", spec) {
            let kv = kv?;
            let number = "a number";
            match kv.key.as_str() {
                "multiplier" => config.multiplier = kv.parse(number)?,
                "step-size" | "adv-step-size" => neighbor.step_size = kv.parse(number)?,
                "norm" | "grad-norm" => neighbor.grad_norm = kv.named(super::NormType::NAMES)?,
                "pgd-iterations" | "iterations" => neighbor.pgd_iterations = kv.parse("a number of steps")?,
                "epsilon" | "pgd-epsilon" => neighbor.pgd_epsilon = Some(kv.parse(number)?),
                "clip" => {
                    let expected = "MIN:MAX (either may be empty)";
                    let (lo, hi) = kv.value.split_once(':').ok_or_else(|| kv.invalid(expected))?;
                    let bound = |side: &str| -> Result<Option<f32>, ConfigError> {
                        if side.is_empty() {
                            Ok(None)
                        } else {
                            side.parse().map(Some).map_err(|_| kv.invalid(expected))
                        }
                    };
                    neighbor.clip_min = bound(lo)?;
                    neighbor.clip_max = bound(hi)?;
                }
                "random-init" => neighbor.random_init = kv.parse("true or false")?,
                "loss" => {
                    config.loss = match lookup(AdvLoss::NAMES, kv.value) {
                        Some(None) => AdvLoss::Supervised,
                        Some(Some(distance)) => AdvLoss::distance(distance),
                        None => return Err(kv.invalid(one_of(AdvLoss::NAMES))),
                    }
                }
                _ => return Err(kv.unknown(Self::KEYS)),
            }
        }
        Ok(config)
    }

    /// Checks the values against the feature width `d`.
    ///
    /// # Errors
    /// [`ConfigError::InvalidValue`] naming the field (see also [`AdvNeighborConfig::validate`]).
    pub fn validate(&self, d: usize) -> Result<(), ConfigError> {
        if !(self.multiplier.is_finite() && self.multiplier >= 0.0) {
            return Err(ConfigError::invalid("adv-reg multiplier", self.multiplier, "a finite number ≥ 0"));
        }
        self.neighbor.validate(d)
    }
}

/// [`AdvRegConfig::from_kv`].
impl FromStr for AdvRegConfig {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        AdvRegConfig::from_kv(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::regularize::NormType;

    #[test]
    fn kv_keys_values_and_defaults() {
        let c = AdvRegConfig::from_kv("multiplier=0.2,step-size=0.2,norm=inf,clip=0:1,pgd-iterations=3,epsilon=0.3")
            .unwrap();
        assert_eq!(c.multiplier, 0.2);
        assert_eq!(c.neighbor.step_size, 0.2);
        assert_eq!(c.neighbor.grad_norm, NormType::Infinity);
        assert_eq!((c.neighbor.clip_min, c.neighbor.clip_max), (Some(0.0), Some(1.0)));
        assert_eq!(c.neighbor.pgd_iterations, 3);
        assert_eq!(c.neighbor.pgd_epsilon, Some(0.3));
        assert_eq!(c.loss, AdvLoss::Supervised);
        // Aliases, `_` for `-`, half-open clips.
        let c =
            AdvRegConfig::from_kv("adv_step_size=0.5,grad-norm=l1,iterations=2,pgd_epsilon=1,clip=:1,random_init=true")
                .unwrap();
        assert_eq!((c.neighbor.step_size, c.neighbor.grad_norm, c.neighbor.pgd_iterations), (0.5, NormType::L1, 2));
        assert_eq!((c.neighbor.pgd_epsilon, c.neighbor.clip_min, c.neighbor.clip_max), (Some(1.0), None, Some(1.0)));
        assert!(c.neighbor.random_init);
        // The distance forms: one distance per pair; kl and jsd on the softmax.
        let kl = DistanceConfig {
            distance: DistanceType::KlDivergence,
            transform: Transform::Softmax,
            sum_over_axis: Some(-1),
            ..Default::default()
        };
        assert_eq!(AdvRegConfig::from_kv("loss=kl").unwrap().loss, AdvLoss::Distance(kl));
        let l1 = DistanceConfig { distance: DistanceType::L1, sum_over_axis: Some(-1), ..Default::default() };
        assert_eq!(AdvRegConfig::from_kv("loss=l1").unwrap().loss, AdvLoss::Distance(l1));
        assert_eq!(AdvRegConfig::from_kv("loss=supervised").unwrap().loss, AdvLoss::Supervised);
    }

    #[test]
    fn kv_errors_name_the_key_and_value() {
        let err = |spec: &str| AdvRegConfig::from_kv(spec).unwrap_err().to_string();
        assert_eq!(err("norm=l3"), "invalid value `l3` for `norm` in --adv-reg: expected l1, l2 or inf");
        assert!(err("clip=0").contains("MIN:MAX"), "{}", err("clip=0"));
        assert!(err("clip=a:1").contains("`clip` in --adv-reg"));
        assert_eq!(
            err("loss=kl_divergence"),
            "invalid value `kl_divergence` for `loss` in --adv-reg: expected supervised, l1, l2, cosine, kl or jsd"
        );
        assert!(err("epsilon=big").contains("`epsilon` in --adv-reg"));
        assert!(err("colour=red").starts_with("unknown key `colour` in --adv-reg (known: multiplier, step-size"));
        let negative = AdvRegConfig::from_kv("multiplier=-1").unwrap();
        assert_eq!(
            negative.validate(2).unwrap_err().to_string(),
            "invalid value `-1` for adv-reg multiplier: expected a finite number ≥ 0"
        );
    }
}
