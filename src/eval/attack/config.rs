//! [`EvalAttack`], [`EvalAttackConfig`] with AutoAttack's defaults, its validation, and
//! [`AttackError`].

use crate::loss::Task;
use crate::regularize::NormType;
use serde::{Deserialize, Serialize};

/// One of the evaluation attacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum EvalAttack {
    /// APGD on the cross-entropy (Croce & Hein 2020).
    ApgdCe,
    /// APGD on the difference-of-logits-ratio loss (needs 3 classes).
    ApgdDlr,
    /// APGD on the targeted DLR loss, once per target class among the most likely ones (needs 4
    /// classes).
    ApgdT,
    /// Square Attack (Andriushchenko et al. 2020): random search on the margin, no gradients.
    Square,
    /// FAB-T, the targeted Fast Adaptive Boundary attack (Croce & Hein 2020), once per target
    /// class among the most likely ones: a point counts only within ε.
    FabT,
}

impl EvalAttack {
    /// AutoAttack's standard sequence for L∞ and L2 (`version='standard'`): APGD-CE, APGD-T,
    /// FAB-T, Square.
    pub const STANDARD: [EvalAttack; 4] = [EvalAttack::ApgdCe, EvalAttack::ApgdT, EvalAttack::FabT, EvalAttack::Square];

    /// AutoAttack's standard sequence for `norm`: [`STANDARD`](Self::STANDARD) less the attacks that
    /// do not support the norm. L∞ and L2: all four; L1: none.
    ///
    /// ```
    /// use nsl::eval::EvalAttack;
    /// use nsl::regularize::NormType;
    /// assert_eq!(EvalAttack::standard(NormType::Infinity), EvalAttack::STANDARD);
    /// assert_eq!(EvalAttack::standard(NormType::L2), EvalAttack::STANDARD);
    /// assert!(EvalAttack::standard(NormType::L1).is_empty());
    /// ```
    pub fn standard(norm: NormType) -> Vec<EvalAttack> {
        Self::STANDARD.into_iter().filter(|a| a.supports(norm)).collect()
    }

    /// The name used on the command line, in JSON and in the per-sample table (`apgd-ce`, …).
    pub fn name(self) -> &'static str {
        match self {
            EvalAttack::ApgdCe => "apgd-ce",
            EvalAttack::ApgdDlr => "apgd-dlr",
            EvalAttack::ApgdT => "apgd-t",
            EvalAttack::Square => "square",
            EvalAttack::FabT => "fab-t",
        }
    }

    /// Whether the attack follows gradients (all but Square).
    pub fn uses_gradients(self) -> bool {
        self != EvalAttack::Square
    }

    /// The fewest classes the attack's loss is defined for: 3 for DLR (it reads the third logit),
    /// 4 for targeted DLR, 2 otherwise (FAB-T's one target is the other class).
    pub fn min_classes(self) -> usize {
        match self {
            EvalAttack::ApgdDlr => 3,
            EvalAttack::ApgdT => 4,
            _ => 2,
        }
    }

    /// The norms the attack supports: L∞ and L2 for every attack.
    pub fn supports(self, norm: NormType) -> bool {
        matches!(norm, NormType::Infinity | NormType::L2)
    }
}

impl std::fmt::Display for EvalAttack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The settings of the evaluation attacks. `Default` gives AutoAttack's standard settings
/// (`version='standard'`) at L∞ ε = 0.3 (MNIST's usual radius).
///
/// ```
/// use nsl::eval::{EvalAttack, EvalAttackConfig};
/// let config = EvalAttackConfig { epsilon: 0.2, clip: Some((0.0, 1.0)), ..Default::default() };
/// assert!(config.validate(&EvalAttack::STANDARD, 10).is_ok());
/// assert!(EvalAttackConfig { epsilon: 0.0, ..config.clone() }.validate(&[EvalAttack::ApgdCe], 10).is_err());
/// assert!(config.validate(&[EvalAttack::ApgdT], 3).is_err(), "targeted DLR needs 4 classes");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvalAttackConfig {
    /// Norm of the threat model: L∞ (the default) or L2.
    pub norm: NormType,
    /// Radius ε of the threat model, finite and > 0. Default 0.3.
    pub epsilon: f64,
    /// Bounds of valid inputs, applied to every candidate (AutoAttack always clamps to `[0, 1]`;
    /// pass `Some((0.0, 1.0))` for pixels). Default `None` (no bounds: e.g. a `bow` encoding).
    pub clip: Option<(f32, f32)>,
    /// APGD and FAB-T: iterations per run. Default 100.
    pub iterations: usize,
    /// APGD-CE, APGD-DLR: random restarts, each on the points still robust (AutoAttack's standard
    /// version: 1); APGD-T and FAB-T: restarts per target class (1; FAB's first run starts at the
    /// clean point, later ones at a random one); Square: restarts (1). Default 1.
    pub restarts: usize,
    /// APGD: the success-rate threshold ρ of the step-size schedule. Default 0.75.
    pub rho: f64,
    /// APGD-T and FAB-T: number of target classes, the most likely ones after the prediction;
    /// fewer when the model has fewer classes (`classes − 1`). Default 9.
    pub target_classes: usize,
    /// Square: queries per restart. Default 5000 (AutoAttack's standard version).
    pub queries: usize,
    /// Square: the initial fraction `p` of the input a square covers. Default 0.8.
    pub p_init: f64,
    /// FAB-T: the largest weight α of the step towards the clean point's projection. Default 0.1.
    pub fab_alpha_max: f64,
    /// FAB-T: the overshoot η of each projection step (≥ 1). Default 1.05.
    pub fab_eta: f64,
    /// FAB-T: the backward step β towards the clean point after a misclassified step. Default 0.9.
    pub fab_beta: f64,
    /// Seed of every random choice (APGD's random starts, Square's squares and signs). Each
    /// sample draws from its own stream (seed, attack, sample index, restart), so results do not
    /// depend on the batch size, the thread count or which points are still robust (at L2 the
    /// gradient attacks' steps carry the batched kernels' rounding, which can differ in the last
    /// bits with the batch size: the same points are broken, at distances equal up to rounding).
    /// Default 0.
    pub seed: u64,
    /// Samples attacked together (one forward and backward pass per step for the whole batch).
    /// Default 500.
    pub batch_size: usize,
}

impl Default for EvalAttackConfig {
    fn default() -> Self {
        EvalAttackConfig {
            norm: NormType::Infinity,
            epsilon: 0.3,
            clip: None,
            iterations: 100,
            restarts: 1,
            rho: 0.75,
            target_classes: 9,
            queries: 5000,
            p_init: 0.8,
            fab_alpha_max: 0.1,
            fab_eta: 1.05,
            fab_beta: 0.9,
            seed: 0,
            batch_size: 500,
        }
    }
}

impl EvalAttackConfig {
    /// Checks the settings for `attacks` on a model with `classes` outputs, before any work.
    ///
    /// # Errors
    /// [`AttackError::Epsilon`] for ε ≤ 0 or non-finite; [`AttackError::Norm`] for a norm an
    /// attack does not support; [`AttackError::TooFewClasses`] for DLR with fewer than 3 classes
    /// (targeted: 4); [`AttackError::InvalidConfig`] naming the option for 0 iterations, restarts,
    /// target classes, queries or batch size, ρ outside `(0, 1]`, `p_init` outside `(0, 1]`, FAB's
    /// α_max outside `[0, 1]`, η < 1 or not finite, β outside `(0, 1]`, or clip bounds that are not
    /// finite with `MIN ≤ MAX`.
    pub fn validate(&self, attacks: &[EvalAttack], classes: usize) -> Result<(), AttackError> {
        if !(self.epsilon.is_finite() && self.epsilon > 0.0) {
            return Err(AttackError::Epsilon(self.epsilon));
        }
        for &attack in attacks {
            if !attack.supports(self.norm) {
                return Err(AttackError::Norm { attack, norm: self.norm });
            }
            if classes < attack.min_classes() {
                return Err(AttackError::TooFewClasses { attack, classes, needed: attack.min_classes() });
            }
        }
        let bad = |option: &'static str, value: String, expected: &'static str| {
            Err(AttackError::InvalidConfig { option, value, expected })
        };
        for (option, value) in [
            ("iterations", self.iterations),
            ("restarts", self.restarts),
            ("target_classes", self.target_classes),
            ("queries", self.queries),
            ("batch_size", self.batch_size),
        ] {
            if value == 0 {
                return bad(option, "0".into(), "at least 1");
            }
        }
        if !(self.rho > 0.0 && self.rho <= 1.0) {
            return bad("rho", self.rho.to_string(), "a number in (0, 1]");
        }
        if !(self.p_init > 0.0 && self.p_init <= 1.0) {
            return bad("p_init", self.p_init.to_string(), "a number in (0, 1]");
        }
        if !(0.0..=1.0).contains(&self.fab_alpha_max) {
            return bad("fab_alpha_max", self.fab_alpha_max.to_string(), "a number in [0, 1]");
        }
        if !(self.fab_eta.is_finite() && self.fab_eta >= 1.0) {
            return bad("fab_eta", self.fab_eta.to_string(), "a finite number ≥ 1");
        }
        if !(self.fab_beta > 0.0 && self.fab_beta <= 1.0) {
            return bad("fab_beta", self.fab_beta.to_string(), "a number in (0, 1]");
        }
        if let Some((lo, hi)) = self.clip {
            if !(lo.is_finite() && hi.is_finite() && lo <= hi) {
                return bad("clip", format!("{lo}:{hi}"), "finite MIN:MAX with MIN ≤ MAX");
            }
        }
        Ok(())
    }
}

/// What can go wrong in an evaluation attack. Everything about the input and the settings is
/// checked before any work.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AttackError {
    /// The attacks are for classifiers (multiclass outputs, one logit per class).
    #[error("the {task} task has no classes to attack: APGD, FAB-T, Square and AutoAttack need a multiclass model")]
    Task {
        /// The model's task.
        task: Task,
    },
    /// ε ≤ 0, NaN or infinite.
    #[error("epsilon {0} must be a finite number > 0")]
    Epsilon(f64),
    /// A norm the attack is not defined for.
    #[error("{attack} does not support the {norm:?} norm (every attack: L∞ and L2)")]
    Norm {
        /// The attack.
        attack: EvalAttack,
        /// The norm asked for.
        norm: NormType,
    },
    /// DLR reads the third-largest logit (targeted: the fourth).
    #[error("{attack} needs a model with at least {needed} classes, this one has {classes}")]
    TooFewClasses {
        /// The attack.
        attack: EvalAttack,
        /// The model's classes.
        classes: usize,
        /// The fewest the attack needs.
        needed: usize,
    },
    /// An option out of range.
    #[error("invalid {option} `{value}`: expected {expected}")]
    InvalidConfig {
        /// The option (an [`EvalAttackConfig`] field).
        option: &'static str,
        /// Its value.
        value: String,
        /// What is accepted.
        expected: &'static str,
    },
    /// The inputs and labels do not fit each other or the model.
    #[error("{0}")]
    Input(String),
    /// A forward or backward pass failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// The progress callback asked to stop ([`ProgressFn`](super::ProgressFn) returned
    /// `ControlFlow::Break`): the sweep ends without a result.
    #[error("{attack} at ε={epsilon} stopped by its progress callback")]
    Stopped {
        /// The attack that was running.
        attack: String,
        /// Its ε.
        epsilon: f64,
    },
}
