//! Adversarial regularization (`nsl.configs.AdvRegConfig`, `nsl.keras.AdversarialRegularization`)
//! and the adversarial-training objectives of the robustness literature ([`AdvObjective`]).
//!
//! # Formula
//! With `m` the multiplier, `ℓ` the task's loss, `p = softmax(f(x))` and `q = softmax(f(x′))`:
//!
//! | objective | loss of a batch | `x′` maximizes, from |
//! |---|---|---|
//! | `nsl` (default) | `ℓ(y, f(x)) + m·ℓ(y, f(x′))`, or `ℓ(y, f(x)) + m·D(f(x), f(x′))` | `ℓ(y, ·)`, `x` (or a uniform point of the ball with `random-init`) |
//! | `madry` (Madry et al. 2018) | `m·ℓ(y, f(x′))` — no clean term | `ℓ(y, ·)`, a uniform point of the ε-ball |
//! | `trades` (Zhang et al. 2019) | `CE(y, f(x)) + m·KL(p ‖ q)` | `KL(stop_grad(p) ‖ ·)`, `x + 0.001·N(0, I)` |
//! | `mart` (Wang et al. 2020) | `BCE(q, y) + m·KL(p ‖ q)·(1 − p_y)` | `CE(y, ·)`, `x + 0.001·N(0, I)` |
//!
//! with MART's boosted cross-entropy `BCE(q, y) = −log q_y − log(1.0001 − max_{k≠y} q_k)` (the
//! reference code's 1.0001 keeps the log finite). Each sample's term is weighted by its sample
//! weight, `Σ wᵢ ℓᵢ / n`. For `nsl` the neighbor is built by [`gen_adv_neighbor`](super::gen_adv_neighbor)
//! from `∇ₓ` of the supervised loss on the **labels**, in training mode, the first step reusing the
//! clean pass's gradient (NSL's); the distance form is not label-free (not virtual adversarial
//! training), only its loss term compares outputs instead of labels. The other three run their inner
//! maximization in inference mode (no dropout), as their reference implementations do
//! (`model.eval()`), with PGD's steps ([`pgd_from`](super::pgd_from)) projected to the ε-ball and
//! clipped.
//!
//! `madry` has no clean term, so `m` only scales the whole loss: with SGD it multiplies the
//! learning rate, with Adam it changes almost nothing; its default is 1. `trades`' `m` is the
//! paper's β (1/λ; default 6, the paper's MNIST and CIFAR-10 value), `mart`'s the paper's λ
//! (default 6, the reference code's).
//!
//! # ε warm-up
//! With `epsilon-warmup = W` epochs, the step size and ε of the step after `s` optimizer steps are
//! multiplied by `min(1, (s + 1)/(W·b))` (`b` batches per epoch): the linear ramp of the learning
//! rate's warm-up ([`LrSchedule`](crate::train::LrSchedule)), from (almost) 0 to the configured ε
//! over the first `W` epochs. It depends only on the optimizer's step count, so a resumed run ramps
//! exactly as an uninterrupted one.
//!
//! # How it differs from NSL
//! NSL has only the `nsl` objective (and no ε warm-up); TRADES, MART and Madry's training are the
//! objectives robustness papers compare against.

use super::adv_neighbor::AdvNeighborConfig;
use super::distance::{DistanceConfig, DistanceType, Transform};
use crate::config::{key_values, lookup, one_of, ConfigError};
use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// What the adversarial neighbor's output is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
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

/// What the adversarial term trains on, and how its neighbor is found (see the [module
/// docs](self) for the formulas).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum AdvObjective {
    /// NSL's adversarial regularization: the clean loss plus `m` times [`AdvLoss`] on the neighbor
    /// crafted from the labels' loss. Default.
    #[default]
    Nsl,
    /// Madry et al.'s PGD adversarial training: the task's loss on the adversarial point only, the
    /// point found by PGD on that loss from a random start in the ε-ball. Every task.
    Madry,
    /// TRADES (Zhang et al. 2019): cross-entropy on the clean point plus `β·KL(f(x) ‖ f(x′))`, `x′`
    /// maximizing that KL. Multiclass (softmax), binary and multilabel (per-output Bernoulli KL,
    /// averaged over the outputs).
    Trades,
    /// MART (Wang et al. 2020): boosted cross-entropy on `x′` plus `λ·KL(f(x) ‖ f(x′))` weighted by
    /// how wrong the clean prediction is. Multiclass.
    Mart,
}

impl AdvObjective {
    /// The names of `objective=` in [`AdvRegConfig::from_kv`].
    pub const NAMES: &'static [(&'static str, AdvObjective)] = &[
        ("nsl", AdvObjective::Nsl),
        ("madry", AdvObjective::Madry),
        ("pgd-at", AdvObjective::Madry),
        ("trades", AdvObjective::Trades),
        ("mart", AdvObjective::Mart),
    ];

    /// The multiplier when `multiplier=` is not given: NSL's 0.2, Madry's 1, TRADES' β and MART's λ 6.
    pub fn default_multiplier(self) -> f64 {
        match self {
            AdvObjective::Nsl => 0.2,
            AdvObjective::Madry => 1.0,
            AdvObjective::Trades | AdvObjective::Mart => 6.0,
        }
    }

    fn is_nsl(&self) -> bool {
        *self == AdvObjective::Nsl
    }
}

impl std::fmt::Display for AdvObjective {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = Self::NAMES.iter().find(|(_, o)| o == self).map_or("nsl", |(n, _)| n);
        f.write_str(name)
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
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
    /// What the loss compares (the `nsl` objective only). Default: the supervised loss on the label.
    pub loss: AdvLoss,
    /// The training objective. Default [`AdvObjective::Nsl`].
    #[serde(skip_serializing_if = "AdvObjective::is_nsl")]
    pub objective: AdvObjective,
    /// Epochs over which ε and the step size ramp up linearly from 0 (see the [module
    /// docs](self)). Default 0 (none).
    #[serde(skip_serializing_if = "is_zero")]
    pub epsilon_warmup: usize,
}

impl Default for AdvRegConfig {
    fn default() -> Self {
        AdvRegConfig {
            multiplier: 0.2,
            neighbor: AdvNeighborConfig::default(),
            loss: AdvLoss::Supervised,
            objective: AdvObjective::Nsl,
            epsilon_warmup: 0,
        }
    }
}

impl AdvRegConfig {
    /// The keys [`from_kv`](Self::from_kv) knows.
    pub const KEYS: &'static [&'static str] = &[
        "multiplier",
        "step-size",
        "norm",
        "pgd-iterations",
        "epsilon",
        "clip",
        "random-init",
        "loss",
        "objective",
        "epsilon-warmup",
    ];

    /// The ε warm-up's factor of the step after `step` optimizer steps, with `batches` batches per
    /// epoch: `min(1, (step + 1)/(W·batches))`, 1 without warm-up.
    pub fn epsilon_factor(&self, step: u64, batches: usize) -> f64 {
        let warm = (self.epsilon_warmup * batches.max(1)) as f64;
        match step as f64 + 1.0 {
            s if s < warm => s / warm,
            _ => 1.0,
        }
    }

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
    ///   crafted from the labels' loss gradient in either case. `objective=nsl` only;
    /// - `objective`: `nsl` (default), `madry` (or `pgd-at`), `trades`, `mart` ([`AdvObjective`];
    ///   the formulas are in the [module docs](self)). Without `multiplier`, the objective's
    ///   default ([`AdvObjective::default_multiplier`]: 0.2, 1, 6, 6); `madry` turns `random-init`
    ///   on unless it is given; `madry`, `trades` and `mart` need `epsilon`;
    /// - `epsilon-warmup`: epochs over which ε and the step size ramp up linearly from 0
    ///   (default 0, none).
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
        let (mut multiplier, mut random_init, mut loss) = (None, None, None);
        let neighbor = &mut config.neighbor;
        for kv in key_values("--adv-reg", spec) {
            let kv = kv?;
            let number = "a number";
            match kv.key.as_str() {
                "multiplier" => multiplier = Some(kv.parse(number)?),
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
                "random-init" => random_init = Some(kv.parse("true or false")?),
                "objective" => config.objective = kv.named(AdvObjective::NAMES)?,
                "epsilon-warmup" => config.epsilon_warmup = kv.parse("a whole number of epochs")?,
                "loss" => {
                    loss = Some(kv.field());
                    config.loss = match lookup(AdvLoss::NAMES, kv.value) {
                        Some(None) => AdvLoss::Supervised,
                        Some(Some(distance)) => AdvLoss::distance(distance),
                        None => return Err(kv.invalid(one_of(AdvLoss::NAMES))),
                    }
                }
                _ => return Err(kv.unknown(Self::KEYS)),
            }
        }
        let objective = config.objective;
        if let (Some(field), false) = (loss, objective.is_nsl()) {
            return Err(ConfigError::invalid(field, spec, format!("no `loss` with objective={objective} (nsl only)")));
        }
        config.multiplier = multiplier.unwrap_or(objective.default_multiplier());
        config.neighbor.random_init = random_init.unwrap_or(objective == AdvObjective::Madry);
        Ok(config)
    }

    /// Checks the values against the feature width `d`.
    ///
    /// # Errors
    /// [`ConfigError::InvalidValue`] naming the field (see also [`AdvNeighborConfig::validate`]); an
    /// objective other than `nsl` without ε, or with a distance [`AdvLoss`].
    pub fn validate(&self, d: usize) -> Result<(), ConfigError> {
        if !(self.multiplier.is_finite() && self.multiplier >= 0.0) {
            return Err(ConfigError::invalid("adv-reg multiplier", self.multiplier, "a finite number ≥ 0"));
        }
        let objective = self.objective;
        if !objective.is_nsl() {
            if self.neighbor.pgd_epsilon.is_none() {
                return Err(ConfigError::invalid(
                    format!("adv-reg objective={objective}"),
                    "no epsilon",
                    "an `epsilon` (the radius of the ball its inner maximization searches)",
                ));
            }
            if self.loss != AdvLoss::Supervised {
                return Err(ConfigError::invalid(
                    "adv-reg loss",
                    "a distance",
                    format!("none with objective={objective}"),
                ));
            }
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
