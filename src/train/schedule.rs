//! Schedules: the learning rate over a run ([`LrSchedule`]) and the regularization multipliers
//! over the optimizer's steps ([`MultiplierSchedule`]: NSL's `DecayConfig` plus a warm-up).
//!
//! # How the learning rate is computed
//! Before every optimizer step, with `s` the steps done so far, `b` the batches per epoch, `E` the
//! run's epochs and `W` the warm-up in epochs, the schedule gives `lr(s)` from the configured rate
//! `lr₀`:
//! - warm-up (`s < W·b`): `lr₀ · (s + 1) / (W·b)`, a linear ramp that reaches `lr₀` on the
//!   warm-up's last step (no step runs at rate 0);
//! - after it, at `τ = s / b − W` epochs (fractional: the value changes every step):
//!   - `constant`: `lr₀`;
//!   - `step,every=K,gamma=G`: `lr₀ · G^⌊τ / K⌋` (changes at epoch boundaries);
//!   - `exponential,rate=R`: `lr₀ · R^τ` (`R` per epoch);
//!   - `cosine,min=M`: `M + (lr₀ − M) · (1 + cos(π · τ / (E − W))) / 2` (Keras' `CosineDecay`
//!     with `alpha = M / lr₀`, per step, over the steps after the warm-up).
//!
//! The default, `constant` without warm-up, leaves the optimizer's rate untouched: a run is the
//! same, bit for bit, as one without a schedule.
//!
//! # How the multipliers are computed
//! NSL defines `DecayConfig` and `decay_over_time` (`lib/utils.py`) but neither its Keras nor its
//! Estimator wrappers use them; here a [`MultiplierSchedule`] scales the graph, adversarial or
//! virtual adversarial multiplier `m` at global step `t` (the optimizer's steps so far, as TF's
//! `global_step`): `m(t) = w(t) · max(d(m, t), min)` where `d` is NSL's decay (`T` = `steps`,
//! `r` = `rate`, no staircase) —
//! exponential `m · r^(t/T)`, inverse-time `m / (1 + r·t/T)`, natural-exp `m · exp(−r·t/T)` —
//! and `w(t) = min(1, t / warmup)` is the linear warm-up NSL issue #124 asks for (the regularizer
//! starts at 0 and reaches full weight after `warmup` steps; 1 without warm-up).

use crate::config::{key_values, named, ConfigError};
use serde::{Deserialize, Serialize};
use std::fmt;

/// How the learning rate decays after the warm-up (see the module docs for the formulas).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
#[non_exhaustive]
pub enum LrDecay {
    /// The configured rate throughout. The default.
    #[default]
    Constant,
    /// Multiplied by `gamma` every `every` epochs.
    Step {
        /// Epochs between two decays (≥ 1).
        every: usize,
        /// Factor per decay. Default 0.1 (PyTorch's `StepLR`).
        gamma: f64,
    },
    /// Half a cosine from the configured rate down to `min` over the run's steps after warm-up.
    Cosine {
        /// The final rate. Default 0.
        min: f64,
    },
    /// Multiplied by `rate` per epoch, continuously (every step).
    Exponential {
        /// Factor per epoch (> 0).
        rate: f64,
    },
}

/// A learning-rate schedule: a decay and a linear warm-up (see the module docs).
/// `Default`: constant, no warm-up.
///
/// # Examples
/// ```
/// use nsl::train::LrSchedule;
/// let s: LrSchedule = "step,every=10,gamma=0.5,warmup=1".parse()?;
/// // 4 batches per epoch, 30 epochs: the warm-up's first step, then epochs 11 and 21 after it.
/// assert_eq!(s.learning_rate(0.1, 0, 4, 30), 0.025);
/// assert_eq!(s.learning_rate(0.1, 4 * 11, 4, 30), 0.05);
/// assert_eq!(s.learning_rate(0.1, 4 * 21, 4, 30), 0.025);
/// # Ok::<(), nsl::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct LrSchedule {
    /// The decay after the warm-up. Default constant.
    pub decay: LrDecay,
    /// Epochs of linear warm-up. Default 0.
    pub warmup: usize,
}

impl LrSchedule {
    /// Whether the schedule leaves the rate as configured (constant, no warm-up).
    pub fn is_constant(&self) -> bool {
        self.decay == LrDecay::Constant && self.warmup == 0
    }

    /// The learning rate of the step that follows `step` steps, for the configured rate `base`,
    /// `batches` batches per epoch and a run of `epochs` epochs.
    pub fn learning_rate(&self, base: f64, step: u64, batches: usize, epochs: usize) -> f64 {
        let b = batches.max(1) as f64;
        let warm = self.warmup as f64 * b;
        let s = step as f64;
        if s < warm {
            return base * (s + 1.0) / warm;
        }
        let tau = (s - warm) / b;
        match self.decay {
            LrDecay::Constant => base,
            LrDecay::Step { every, gamma } => base * gamma.powf((tau / every.max(1) as f64).floor()),
            LrDecay::Exponential { rate } => base * rate.powf(tau),
            LrDecay::Cosine { min } => {
                let span = epochs.saturating_sub(self.warmup).max(1) as f64;
                let progress = (tau / span).min(1.0);
                min + (base - min) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
            }
        }
    }

    /// Checks the values against the configured rate `base` and the run's `epochs`.
    ///
    /// # Errors
    /// [`ConfigError::InvalidValue`] naming the value: `every` 0, a `gamma` or `rate` that is not
    /// a finite number > 0, a `min` that is not in `[0, base]`, or a warm-up of `epochs` or more.
    pub fn validate(&self, base: f64, epochs: usize) -> Result<(), ConfigError> {
        let field = |name: &str| format!("`{name}` in --lr-schedule");
        match self.decay {
            LrDecay::Constant => {}
            LrDecay::Step { every, gamma } => {
                if every == 0 {
                    return Err(ConfigError::invalid(field("every"), every, "at least 1 epoch"));
                }
                positive(&field("gamma"), gamma)?;
            }
            LrDecay::Exponential { rate } => positive(&field("rate"), rate)?,
            LrDecay::Cosine { min } => {
                if !(min.is_finite() && (0.0..=base).contains(&min)) {
                    return Err(ConfigError::invalid(field("min"), min, format!("a number in [0, {base}]")));
                }
            }
        }
        if self.warmup > 0 && self.warmup >= epochs {
            return Err(ConfigError::invalid(
                field("warmup"),
                self.warmup,
                format!("fewer epochs than the run's {epochs}"),
            ));
        }
        Ok(())
    }
}

fn positive(field: &str, v: f64) -> Result<(), ConfigError> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(ConfigError::invalid(field, v, "a finite number > 0"))
    }
}

const LR_KEYS: &[&str] = &["every", "gamma", "min", "rate", "warmup"];

/// Parses `KIND[,key=value…]`: `constant`, `step,every=E[,gamma=G]` (gamma default 0.1),
/// `cosine[,min=M]` (default 0), `exponential,rate=R`, each with an optional `warmup=W` (epochs,
/// default 0); `warmup=W` alone is a constant rate after a warm-up.
impl std::str::FromStr for LrSchedule {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        const FLAG: &str = "--lr-schedule";
        let s = s.trim();
        let (kind, rest) = match s.split_once(',') {
            Some((k, rest)) if !k.contains('=') => (k.trim(), rest),
            _ if !s.contains('=') => (s, ""),
            _ => ("constant", s),
        };
        #[derive(Clone, Copy, PartialEq)]
        enum Kind {
            Constant,
            Step,
            Cosine,
            Exponential,
        }
        let names = [
            ("constant", Kind::Constant),
            ("step", Kind::Step),
            ("cosine", Kind::Cosine),
            ("exponential", Kind::Exponential),
        ];
        let kind = named("--lr-schedule", &names, kind)?;
        let (mut every, mut gamma, mut min, mut rate, mut warmup) = (None, 0.1, 0.0, None, 0);
        for kv in key_values(FLAG, rest) {
            let kv = kv?;
            let allowed = match kv.key.as_str() {
                "warmup" => {
                    warmup = kv.parse("a whole number of epochs")?;
                    true
                }
                "every" => {
                    every = Some(kv.parse("a whole number of epochs ≥ 1")?);
                    kind == Kind::Step
                }
                "gamma" => {
                    gamma = kv.parse("a number > 0")?;
                    kind == Kind::Step
                }
                "min" => {
                    min = kv.parse("a number ≥ 0")?;
                    kind == Kind::Cosine
                }
                "rate" => {
                    rate = Some(kv.parse("a number > 0")?);
                    kind == Kind::Exponential
                }
                _ => return Err(kv.unknown(LR_KEYS)),
            };
            if !allowed {
                return Err(ConfigError::invalid(
                    kv.field(),
                    kv.value,
                    "no such setting for this schedule (step: every, gamma; cosine: min; exponential: rate; all: warmup)",
                ));
            }
        }
        let decay = match kind {
            Kind::Constant => LrDecay::Constant,
            Kind::Step => LrDecay::Step {
                every: every.ok_or_else(|| ConfigError::invalid("--lr-schedule step", s, "step,every=E[,gamma=G]"))?,
                gamma,
            },
            Kind::Cosine => LrDecay::Cosine { min },
            Kind::Exponential => LrDecay::Exponential {
                rate: rate.ok_or_else(|| ConfigError::invalid("--lr-schedule exponential", s, "exponential,rate=R"))?,
            },
        };
        Ok(LrSchedule { decay, warmup })
    }
}

/// The text [`LrSchedule::from_str`](std::str::FromStr) reads back.
impl fmt::Display for LrSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.decay {
            LrDecay::Constant => write!(f, "constant")?,
            LrDecay::Step { every, gamma } => write!(f, "step,every={every},gamma={gamma}")?,
            LrDecay::Cosine { min } => write!(f, "cosine,min={min}")?,
            LrDecay::Exponential { rate } => write!(f, "exponential,rate={rate}")?,
        }
        match self.warmup {
            0 => Ok(()),
            w => write!(f, ",warmup={w}"),
        }
    }
}

/// NSL's `DecayType`: how a multiplier decays over the global step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum DecayType {
    /// `m · rate^(t/steps)` (NSL's `EXPONENTIAL_DECAY`, the default).
    #[default]
    Exponential,
    /// `m / (1 + rate · t/steps)` (NSL's `INVERSE_TIME_DECAY`).
    InverseTime,
    /// `m · exp(−rate · t/steps)` (NSL's `NATURAL_EXP_DECAY`).
    NaturalExp,
}

/// NSL's `DecayConfig`: a decay over the global step, floored at `min`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecayConfig {
    /// The kind. Default exponential (NSL's default).
    pub kind: DecayType,
    /// The decay's time unit `T`, in steps (NSL's `decay_steps`, required, ≥ 1).
    pub steps: u64,
    /// The rate (NSL's `decay_rate`). Default 0.96.
    pub rate: f64,
    /// The floor (NSL's `min_value`). Default 0.
    pub min: f64,
}

impl DecayConfig {
    /// An exponential decay over `steps` steps with NSL's defaults (rate 0.96, floor 0).
    pub fn new(steps: u64) -> Self {
        DecayConfig { kind: DecayType::Exponential, steps, rate: 0.96, min: 0.0 }
    }

    /// NSL's `decay_over_time(t, config, init)`: `init` decayed to step `t`, floored at `min`.
    pub fn value(&self, init: f64, t: u64) -> f64 {
        let x = t as f64 / self.steps.max(1) as f64;
        let decayed = match self.kind {
            DecayType::Exponential => init * self.rate.powf(x),
            DecayType::InverseTime => init / (1.0 + self.rate * x),
            DecayType::NaturalExp => init * (-self.rate * x).exp(),
        };
        decayed.max(self.min)
    }
}

/// A schedule of a regularization multiplier: an optional [`DecayConfig`] and a linear warm-up
/// over `warmup` steps (see the module docs). `Default`: neither (the multiplier as configured).
///
/// # Examples
/// ```
/// use nsl::train::MultiplierSchedule;
/// let s = MultiplierSchedule::from_kv("decay=inverse-time,steps=10,rate=1,warmup=4")?;
/// assert_eq!(s.multiplier(0.2, 0), 0.0); // the warm-up starts at 0
/// assert_eq!(s.multiplier(0.2, 2), 0.5 * 0.2 / 1.2);
/// assert_eq!(s.multiplier(0.2, 10), 0.1);
/// # Ok::<(), nsl::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct MultiplierSchedule {
    /// The decay. Default none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decay: Option<DecayConfig>,
    /// Steps of linear warm-up from 0. Default 0 (none).
    pub warmup: u64,
}

const MULTIPLIER_KEYS: &[&str] = &["decay", "steps", "rate", "min", "warmup"];

impl MultiplierSchedule {
    /// The multiplier at global step `t` for the configured multiplier `init`. Without decay and
    /// warm-up, `init` itself.
    pub fn multiplier(&self, init: f64, t: u64) -> f64 {
        let decayed = match &self.decay {
            Some(d) => d.value(init, t),
            None => init,
        };
        match self.warmup {
            0 => decayed,
            w if t >= w => decayed,
            w => decayed * (t as f64 / w as f64),
        }
    }

    /// Parses `key=value` pairs: `decay` (exponential | inverse-time | natural-exp, default
    /// exponential), `steps` (NSL's `decay_steps`; required for a decay, which is on when it is
    /// given), `rate` (default 0.96), `min` (default 0), `warmup` (steps, default 0). `flag` names
    /// the setting in errors.
    ///
    /// # Errors
    /// [`ConfigError`] naming the pair: an unknown key, a value that does not parse or is out of
    /// range (`steps` 0, `rate` or `min` negative or not finite), or decay settings without `steps`.
    pub fn parse(flag: &'static str, text: &str) -> Result<Self, ConfigError> {
        let kinds = [
            ("exponential", DecayType::Exponential),
            ("exponential_decay", DecayType::Exponential),
            ("inverse-time", DecayType::InverseTime),
            ("inverse_time_decay", DecayType::InverseTime),
            ("natural-exp", DecayType::NaturalExp),
            ("natural_exp_decay", DecayType::NaturalExp),
        ];
        let mut decay = DecayConfig::new(0);
        let (mut steps, mut decay_keys, mut warmup) = (None, Vec::new(), 0);
        for kv in key_values(flag, text) {
            let kv = kv?;
            match kv.key.as_str() {
                "decay" => decay.kind = kv.named(&kinds)?,
                "steps" => match kv.parse::<u64>("a whole number of steps ≥ 1")? {
                    0 => return Err(kv.invalid("a whole number of steps ≥ 1")),
                    n => steps = Some(n),
                },
                "rate" => decay.rate = finite_non_negative(&kv)?,
                "min" => decay.min = finite_non_negative(&kv)?,
                "warmup" => warmup = kv.parse("a whole number of steps")?,
                _ => return Err(kv.unknown(MULTIPLIER_KEYS)),
            }
            if kv.key != "steps" && kv.key != "warmup" {
                decay_keys.push(kv.field());
            }
        }
        let decay = match steps {
            Some(steps) => Some(DecayConfig { steps, ..decay }),
            None => match decay_keys.first() {
                Some(field) => {
                    return Err(ConfigError::invalid(field.clone(), text, "a decay needs `steps` (NSL's decay_steps)"))
                }
                None => None,
            },
        };
        Ok(MultiplierSchedule { decay, warmup })
    }

    /// [`MultiplierSchedule::parse`] for a flag of the command line (named `--…-schedule`).
    ///
    /// # Errors
    /// As [`MultiplierSchedule::parse`].
    pub fn from_kv(text: &str) -> Result<Self, ConfigError> {
        Self::parse("a multiplier schedule", text)
    }
}

fn finite_non_negative(kv: &crate::config::KeyValue) -> Result<f64, ConfigError> {
    let v: f64 = kv.parse("a finite number ≥ 0")?;
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err(kv.invalid("a finite number ≥ 0"))
    }
}

/// [`MultiplierSchedule::from_kv`].
impl std::str::FromStr for MultiplierSchedule {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        MultiplierSchedule::from_kv(s)
    }
}

/// The text [`MultiplierSchedule::from_kv`] reads back (empty for the default).
impl fmt::Display for MultiplierSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(d) = &self.decay {
            let kind = match d.kind {
                DecayType::Exponential => "exponential",
                DecayType::InverseTime => "inverse-time",
                DecayType::NaturalExp => "natural-exp",
            };
            parts.push(format!("decay={kind},steps={},rate={},min={}", d.steps, d.rate, d.min));
        }
        if self.warmup > 0 {
            parts.push(format!("warmup={}", self.warmup));
        }
        write!(f, "{}", parts.join(","))
    }
}

/// The schedules of the three regularization multipliers (see [`TrainConfig`](super::TrainConfig)).
/// `Default`: none (each multiplier as configured, every step).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct MultiplierSchedules {
    /// Of the graph multiplier ([`GraphRegConfig`](crate::regularize::GraphRegConfig)'s, all edge
    /// types alike).
    pub graph: MultiplierSchedule,
    /// Of the adversarial multiplier ([`AdvRegConfig::multiplier`](crate::regularize::AdvRegConfig)).
    pub adversarial: MultiplierSchedule,
    /// Of the virtual adversarial multiplier ([`VatConfig`](crate::regularize::VatConfig)'s).
    pub vat: MultiplierSchedule,
}

impl MultiplierSchedules {
    /// Whether every multiplier stays as configured.
    pub fn is_none(&self) -> bool {
        *self == MultiplierSchedules::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "{a} != {b}");
    }

    #[test]
    fn constant_is_the_base_rate_exactly() {
        let s = LrSchedule::default();
        assert!(s.is_constant());
        for step in [0, 1, 99, 10_000] {
            assert_eq!(s.learning_rate(0.001, step, 7, 10).to_bits(), 0.001f64.to_bits());
        }
        assert_eq!("constant".parse::<LrSchedule>().unwrap(), s);
    }

    #[test]
    fn warmup_ramps_linearly_per_step() {
        // 2 epochs of warm-up, 5 batches: steps 0..9 give lr·1/10 … lr·10/10, then the base rate.
        let s: LrSchedule = "warmup=2".parse().unwrap();
        close(s.learning_rate(0.5, 0, 5, 10), 0.05);
        close(s.learning_rate(0.5, 4, 5, 10), 0.25);
        close(s.learning_rate(0.5, 9, 5, 10), 0.5);
        close(s.learning_rate(0.5, 10, 5, 10), 0.5);
    }

    #[test]
    fn step_decay_counts_epochs_after_warmup() {
        let s: LrSchedule = "step,every=3,gamma=0.5".parse().unwrap();
        // 10 batches per epoch: epochs 1–3 at 1, 4–6 at 0.5, 7–9 at 0.25.
        close(s.learning_rate(1.0, 29, 10, 12), 1.0);
        close(s.learning_rate(1.0, 30, 10, 12), 0.5);
        close(s.learning_rate(1.0, 65, 10, 12), 0.25);
        let w: LrSchedule = "step,every=3,warmup=1".parse().unwrap(); // gamma 0.1
        close(w.learning_rate(1.0, 10 + 30, 10, 12), 0.1);
        close(w.learning_rate(1.0, 10 + 29, 10, 12), 1.0);
    }

    #[test]
    fn exponential_and_cosine() {
        let e: LrSchedule = "exponential,rate=0.5".parse().unwrap();
        // Half an epoch (2 of 4 batches): 0.5^0.5.
        close(e.learning_rate(1.0, 2, 4, 10), 0.5f64.sqrt());
        close(e.learning_rate(1.0, 8, 4, 10), 0.25);
        let c: LrSchedule = "cosine,min=0.1".parse().unwrap();
        // 4 epochs of 2 batches: τ = s/2, progress τ/4.
        close(c.learning_rate(1.0, 0, 2, 4), 1.0);
        close(c.learning_rate(1.0, 4, 2, 4), 0.55); // progress ½: 0.1 + 0.9·½
        close(c.learning_rate(1.0, 2, 2, 4), 0.1 + 0.9 * 0.5 * (1.0 + (std::f64::consts::PI / 4.0).cos()));
        close(c.learning_rate(1.0, 100, 2, 4), 0.1);
        let cw: LrSchedule = "cosine,warmup=2".parse().unwrap();
        // Warm-up 2 epochs of 2 batches, then 2 epochs of cosine: step 6 is τ 1, progress ½.
        close(cw.learning_rate(1.0, 6, 2, 4), 0.5);
    }

    #[test]
    fn lr_text_round_trips_and_errors_name_the_setting() {
        for text in ["constant", "step,every=3,gamma=0.5,warmup=1", "cosine,min=0.001", "exponential,rate=0.9"] {
            let s: LrSchedule = text.parse().unwrap();
            assert_eq!(s.to_string().parse::<LrSchedule>().unwrap(), s, "{text}");
        }
        let err = "linear".parse::<LrSchedule>().unwrap_err().to_string();
        assert_eq!(err, "invalid value `linear` for --lr-schedule: expected constant, step, cosine or exponential");
        let err = "step,gamma=0.5".parse::<LrSchedule>().unwrap_err().to_string();
        assert!(err.contains("every=E"), "{err}");
        let err = "cosine,rate=0.5".parse::<LrSchedule>().unwrap_err().to_string();
        assert!(err.contains("`rate` in --lr-schedule") && err.contains("cosine: min"), "{err}");
        let err = "exponential,rate=0".parse::<LrSchedule>().unwrap().validate(0.1, 10).unwrap_err();
        assert_eq!(err.to_string(), "invalid value `0` for `rate` in --lr-schedule: expected a finite number > 0");
        let err = "warmup=10".parse::<LrSchedule>().unwrap().validate(0.1, 10).unwrap_err();
        assert!(err.to_string().contains("fewer epochs than the run's 10"), "{err}");
        assert!("cosine,min=0.2".parse::<LrSchedule>().unwrap().validate(0.1, 10).is_err());
    }

    #[test]
    fn decay_kinds_match_nsl_decay_over_time() {
        // python3: 0.5*0.96**(25/10), 0.5/(1+0.96*25/10), 0.5*math.exp(-0.96*25/10)
        let mut d = DecayConfig::new(10);
        close(d.value(0.5, 25), 0.451_489_949_389_795_36);
        d.kind = DecayType::InverseTime;
        close(d.value(0.5, 25), 0.147_058_823_529_411_77);
        d.kind = DecayType::NaturalExp;
        close(d.value(0.5, 25), 0.045_358_976_644_706_26);
        d.min = 0.1;
        close(d.value(0.5, 25), 0.1);
        close(d.value(0.5, 0), 0.5);
    }

    #[test]
    fn multiplier_schedule_parses_and_applies_warmup_after_the_floor() {
        let s = MultiplierSchedule::from_kv("decay=natural-exp,steps=10,rate=0.96,min=0.1,warmup=4").unwrap();
        assert_eq!(s.decay, Some(DecayConfig { kind: DecayType::NaturalExp, steps: 10, rate: 0.96, min: 0.1 }));
        close(s.multiplier(0.5, 2), 0.5 * (0.5 * (-0.96 * 0.2f64).exp()));
        close(s.multiplier(0.5, 30), 0.1); // floored
        assert_eq!(MultiplierSchedule::from_kv(&s.to_string()).unwrap(), s);
        let warm = MultiplierSchedule::from_kv("warmup=100").unwrap();
        assert_eq!(warm.decay, None);
        close(warm.multiplier(0.2, 25), 0.05);
        assert_eq!(warm.multiplier(0.2, 100).to_bits(), 0.2f64.to_bits());
        assert_eq!(MultiplierSchedule::default().multiplier(0.2, 7).to_bits(), 0.2f64.to_bits());
        assert_eq!(MultiplierSchedule::from_kv("steps=5").unwrap().decay, Some(DecayConfig::new(5)));
        let err = MultiplierSchedule::from_kv("rate=0.5").unwrap_err().to_string();
        assert!(err.contains("needs `steps`"), "{err}");
        let err = MultiplierSchedule::from_kv("steps=0").unwrap_err().to_string();
        assert!(err.contains("≥ 1"), "{err}");
        let err = MultiplierSchedule::from_kv("decay=linear,steps=3").unwrap_err().to_string();
        assert!(err.contains("exponential, inverse-time or natural-exp"), "{err}");
    }
}
