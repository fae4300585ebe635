//! The attacks by name ([`AttackMethod`], the choices of `nsl evaluate --attack`) and an
//! evaluation attack run at every ε of a sweep with its masking check ([`sweep_attacks`]): what
//! `nsl evaluate` and the Python package's `evaluate` both do, without I/O.

use super::autoattack::{evaluate_attacks, RobustnessReport};
use super::config::{AttackError, EvalAttack, EvalAttackConfig};
use super::masking::{masking_check, MaskingWarning};
use super::oracle::ProgressFn;
use crate::data::Dataset;
use crate::loss::Task;
use crate::model::Model;
use crate::regularize::NormType;
use serde::Serialize;

/// An attack `nsl evaluate --attack` runs: one of NSL's attacks along the task loss's gradient
/// (FGSM, PGD: [`robustness_sweep_task`](super::robustness_sweep_task)) or an evaluation attack
/// sequence ([`sequence`](Self::sequence), run by [`sweep_attacks`]).
///
/// ```
/// use nsl::eval::{AttackMethod, EvalAttack};
/// use nsl::regularize::NormType;
/// let aa: AttackMethod = "autoattack".parse().unwrap();
/// assert_eq!(aa.sequence(NormType::Infinity), EvalAttack::STANDARD);
/// assert!("pgd".parse::<AttackMethod>().unwrap().sequence(NormType::Infinity).is_empty());
/// assert!("apgd".parse::<AttackMethod>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AttackMethod {
    /// One step of size ε (Goodfellow et al. 2015).
    Fgsm,
    /// Projected gradient descent (Madry et al. 2018).
    Pgd,
    /// APGD on the cross-entropy.
    ApgdCe,
    /// APGD on the DLR loss.
    ApgdDlr,
    /// APGD on the targeted DLR loss.
    ApgdT,
    /// FAB-T, the targeted Fast Adaptive Boundary attack.
    FabT,
    /// Square Attack.
    Square,
    /// AutoAttack's standard sequence ([`EvalAttack::standard`]).
    AutoAttack,
}

impl AttackMethod {
    /// Every method, in `nsl evaluate --help`'s order.
    pub const ALL: [AttackMethod; 8] = [
        AttackMethod::Fgsm,
        AttackMethod::Pgd,
        AttackMethod::ApgdCe,
        AttackMethod::ApgdDlr,
        AttackMethod::ApgdT,
        AttackMethod::FabT,
        AttackMethod::Square,
        AttackMethod::AutoAttack,
    ];

    /// The name `--attack` takes (`fgsm`, `apgd-ce`, `autoattack`, …).
    pub fn name(self) -> &'static str {
        match self {
            AttackMethod::Fgsm => "fgsm",
            AttackMethod::Pgd => "pgd",
            AttackMethod::ApgdCe => "apgd-ce",
            AttackMethod::ApgdDlr => "apgd-dlr",
            AttackMethod::ApgdT => "apgd-t",
            AttackMethod::FabT => "fab-t",
            AttackMethod::Square => "square",
            AttackMethod::AutoAttack => "autoattack",
        }
    }

    /// The evaluation attacks it runs at `norm`, in order: none for FGSM and PGD; AutoAttack's
    /// standard sequence for `autoattack` (at L1, which none of them supports, the whole sequence,
    /// so that [`EvalAttackConfig::validate`] names the first attack that refuses it).
    pub fn sequence(self, norm: NormType) -> Vec<EvalAttack> {
        match self {
            AttackMethod::Fgsm | AttackMethod::Pgd => Vec::new(),
            AttackMethod::ApgdCe => vec![EvalAttack::ApgdCe],
            AttackMethod::ApgdDlr => vec![EvalAttack::ApgdDlr],
            AttackMethod::ApgdT => vec![EvalAttack::ApgdT],
            AttackMethod::FabT => vec![EvalAttack::FabT],
            AttackMethod::Square => vec![EvalAttack::Square],
            AttackMethod::AutoAttack => match EvalAttack::standard(norm) {
                none if none.is_empty() => EvalAttack::STANDARD.to_vec(),
                some => some,
            },
        }
    }
}

impl std::fmt::Display for AttackMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for AttackMethod {
    type Err = AttackError;

    /// A name of [`AttackMethod::name`] (case-insensitive; `_` for `-` is accepted).
    fn from_str(text: &str) -> Result<Self, AttackError> {
        let wanted = text.trim().to_ascii_lowercase().replace('_', "-");
        Self::ALL.into_iter().find(|m| m.name() == wanted).ok_or_else(|| AttackError::InvalidConfig {
            option: "attack",
            value: text.to_string(),
            expected: "fgsm, pgd, apgd-ce, apgd-dlr, apgd-t, fab-t, square or autoattack",
        })
    }
}

/// The result of [`sweep_attacks`]: `nsl evaluate --json`'s `evaluation_attack`, `results` and
/// `masking_check`.
#[derive(Debug, Clone, Serialize)]
pub struct AttackSweep {
    /// The attacks run at each ε, in order.
    pub attacks: Vec<EvalAttack>,
    /// Their settings, with the last ε as `epsilon` (as `nsl evaluate --json` has reported them).
    pub config: EvalAttackConfig,
    /// One report per ε, in the order given.
    pub reports: Vec<RobustnessReport>,
    /// The gradient-masking check over the reports.
    pub warnings: Vec<MaskingWarning>,
}

/// [`evaluate_attacks`] with `attacks` at each of `epsilons` (the other settings from `config`),
/// then the [`masking_check`] over the results. Every ε's settings are checked before any attack
/// runs (the model's class count with the first ε, also before any attack).
///
/// # Errors
/// Everything [`EvalAttackConfig::validate`] refuses, for any ε, and what
/// [`evaluate_attacks`] refuses (a task other than multiclass, samples without labels), all
/// before any attack runs; [`AttackError::InvalidConfig`] for no ε or no attack.
pub fn sweep_attacks(
    model: &dyn Model,
    data: &Dataset,
    task: Task,
    attacks: &[EvalAttack],
    config: &EvalAttackConfig,
    epsilons: &[f64],
    progress: Option<ProgressFn>,
) -> Result<AttackSweep, AttackError> {
    let invalid = |option, value: String, expected| AttackError::InvalidConfig { option, value, expected };
    if epsilons.is_empty() {
        return Err(invalid("epsilon", "[]".into(), "at least one ε"));
    }
    if attacks.is_empty() {
        return Err(invalid("attacks", "[]".into(), "at least one attack"));
    }
    if task != Task::Multiclass {
        return Err(AttackError::Task { task });
    }
    for &epsilon in epsilons {
        // The class count is checked by `evaluate_attacks` against the model's outputs.
        EvalAttackConfig { epsilon, ..config.clone() }.validate(attacks, usize::MAX)?;
    }
    let mut reports = Vec::with_capacity(epsilons.len());
    for &epsilon in epsilons {
        let at = EvalAttackConfig { epsilon, ..config.clone() };
        reports.push(evaluate_attacks(model, data, task, attacks, &at, progress)?);
    }
    let warnings = masking_check(&reports, config.clip);
    Ok(AttackSweep {
        attacks: attacks.to_vec(),
        config: EvalAttackConfig { epsilon: epsilons[epsilons.len() - 1], ..config.clone() },
        reports,
        warnings,
    })
}
