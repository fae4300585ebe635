//! The gradient-masking check: signs, from Carlini et al.'s checklist ("On Evaluating Adversarial
//! Robustness", 2019, §5 and appendix) and AutoAttack's own checks (`checks.py`), that gradient
//! attacks under-report the attacks' success, so that the robust accuracy they give is too high.
//!
//! | warning | condition |
//! |---|---|
//! | [`GradientFreeStronger`](MaskingWarning::GradientFreeStronger) | Square (no gradients) broke more than 0.2 % of the samples after the gradient attacks (APGD-CE, APGD-T, FAB-T; AutoAttack's `check_square_sr`) |
//! | [`FgsmOverstates`](MaskingWarning::FgsmOverstates) | FGSM leaves at least 10 points more robust than the iterative attacks: single-step accuracy is no measure of robustness here (single-step training's typical masking) |
//! | [`IterativeWeaker`](MaskingWarning::IterativeWeaker) | an iterative gradient attack leaves more points robust than one FGSM step (by more than 1 point): the attack or the gradients are broken |
//! | [`ZeroGradients`](MaskingWarning::ZeroGradients) | correctly classified samples with an exactly zero input gradient (AutoAttack's `check_zero_gradients`) |
//! | [`RisesWithEpsilon`](MaskingWarning::RisesWithEpsilon) | robust accuracy rises (by more than 1 point) from one ε to a larger one |
//! | [`DoesNotFall`](MaskingWarning::DoesNotFall) | over an ε sweep spanning at least a factor 4, the largest ε leaves the accuracy within 2 points of clean, or an ε that reaches every valid input (L∞, ε ≥ max − min of `clip`) leaves more than chance + 5 points |

use super::autoattack::RobustnessReport;
use super::config::EvalAttack;
use crate::regularize::NormType;
use serde::Serialize;

/// One sign of gradient masking (see the module doc for each condition).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum MaskingWarning {
    /// The gradient-free attack broke samples the gradient attacks could not.
    GradientFreeStronger {
        /// Radius.
        epsilon: f64,
        /// Robust accuracy after the gradient attacks.
        gradient: f64,
        /// After Square.
        with_square: f64,
    },
    /// FGSM's accuracy is far above the iterative attacks'.
    FgsmOverstates {
        /// Radius.
        epsilon: f64,
        /// Accuracy under FGSM.
        fgsm: f64,
        /// Robust accuracy after the gradient attacks.
        iterative: f64,
    },
    /// An iterative attack is weaker than one FGSM step.
    IterativeWeaker {
        /// Radius.
        epsilon: f64,
        /// Accuracy under FGSM.
        fgsm: f64,
        /// Robust accuracy after the gradient attacks.
        iterative: f64,
    },
    /// Samples with a zero input gradient.
    ZeroGradients {
        /// Radius.
        epsilon: f64,
        /// How many.
        count: usize,
    },
    /// Accuracy rises as ε grows.
    RisesWithEpsilon {
        /// The smaller radius.
        from: f64,
        /// The larger radius.
        to: f64,
        /// Robust accuracy at `from`.
        accuracy_from: f64,
        /// At `to`.
        accuracy_to: f64,
    },
    /// Accuracy does not fall towards chance as ε grows.
    DoesNotFall {
        /// The largest radius.
        epsilon: f64,
        /// Robust accuracy there.
        accuracy: f64,
        /// Clean accuracy.
        clean: f64,
        /// Chance (1 / classes).
        chance: f64,
    },
}

impl std::fmt::Display for MaskingWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pct = |v: f64| format!("{:.1} %", 100.0 * v);
        match self {
            MaskingWarning::GradientFreeStronger { epsilon, gradient, with_square } => write!(
                f,
                "ε={epsilon}: Square (no gradients) lowered robust accuracy from {} to {} after the gradient attacks: \
                 gradients may be masked; run Square with more queries and restarts, or an adaptive attack",
                pct(*gradient),
                pct(*with_square)
            ),
            MaskingWarning::FgsmOverstates { epsilon, fgsm, iterative } => write!(
                f,
                "ε={epsilon}: FGSM leaves {} robust, the iterative attacks {}: single-step accuracy overstates \
                 robustness here (the loss is not linear around the inputs)",
                pct(*fgsm),
                pct(*iterative)
            ),
            MaskingWarning::IterativeWeaker { epsilon, fgsm, iterative } => write!(
                f,
                "ε={epsilon}: the iterative attacks leave {} robust, more than one FGSM step ({}): the attack is \
                 failing or the gradients are masked",
                pct(*iterative),
                pct(*fgsm)
            ),
            MaskingWarning::ZeroGradients { epsilon, count } => write!(
                f,
                "ε={epsilon}: {count} correctly classified samples have a zero input gradient: gradient attacks \
                 cannot move them (saturated or quantized outputs?)"
            ),
            MaskingWarning::RisesWithEpsilon { from, to, accuracy_from, accuracy_to } => write!(
                f,
                "robust accuracy rises from {} at ε={from} to {} at ε={to}: a larger ε can only help the attacker",
                pct(*accuracy_from),
                pct(*accuracy_to)
            ),
            MaskingWarning::DoesNotFall { epsilon, accuracy, clean, chance } => write!(
                f,
                "robust accuracy at ε={epsilon} is still {} (clean {}, chance {}): accuracy does not fall towards \
                 chance as ε grows",
                pct(*accuracy),
                pct(*clean),
                pct(*chance)
            ),
        }
    }
}

/// The masking check over the results of one attack sequence at each ε of a sweep (any order),
/// with the valid input range `clip` if any.
pub fn masking_check(reports: &[RobustnessReport], clip: Option<(f32, f32)>) -> Vec<MaskingWarning> {
    let mut warnings = Vec::new();
    let mut sorted: Vec<&RobustnessReport> = reports.iter().collect();
    sorted.sort_by(|a, b| a.epsilon.total_cmp(&b.epsilon));
    for r in &sorted {
        let gradient = r.stages.iter().filter(|s| s.attack.uses_gradients()).map(|s| s.robust_accuracy).next_back();
        let square = r.stages.iter().rev().find(|s| s.attack == EvalAttack::Square);
        if let (Some(_), Some(square)) = (gradient, square) {
            let after_gradient = r
                .stages
                .iter()
                .take_while(|s| s.attack != EvalAttack::Square)
                .last()
                .map_or(r.clean_accuracy, |s| s.robust_accuracy);
            if square.robust_accuracy < after_gradient - 0.002 {
                warnings.push(MaskingWarning::GradientFreeStronger {
                    epsilon: r.epsilon,
                    gradient: after_gradient,
                    with_square: square.robust_accuracy,
                });
            }
        }
        if let Some(iterative) = gradient {
            if r.fgsm_accuracy - iterative >= 0.10 {
                warnings.push(MaskingWarning::FgsmOverstates { epsilon: r.epsilon, fgsm: r.fgsm_accuracy, iterative });
            } else if iterative > r.fgsm_accuracy + 0.01 {
                warnings.push(MaskingWarning::IterativeWeaker { epsilon: r.epsilon, fgsm: r.fgsm_accuracy, iterative });
            }
        }
        if r.zero_gradients > 0 {
            warnings.push(MaskingWarning::ZeroGradients { epsilon: r.epsilon, count: r.zero_gradients });
        }
    }
    for pair in sorted.windows(2) {
        if pair[1].robust_accuracy > pair[0].robust_accuracy + 0.01 {
            warnings.push(MaskingWarning::RisesWithEpsilon {
                from: pair[0].epsilon,
                to: pair[1].epsilon,
                accuracy_from: pair[0].robust_accuracy,
                accuracy_to: pair[1].robust_accuracy,
            });
        }
    }
    if let (Some(first), Some(last)) = (sorted.first(), sorted.last()) {
        let chance = 1.0 / last.classes.max(1) as f64;
        let spans = sorted.len() > 1 && last.epsilon >= 4.0 * first.epsilon;
        let covers =
            matches!((last.norm, clip), (NormType::Infinity, Some((lo, hi))) if last.epsilon >= f64::from(hi - lo));
        if (spans && last.robust_accuracy >= last.clean_accuracy - 0.02)
            || (covers && last.robust_accuracy > chance + 0.05)
        {
            warnings.push(MaskingWarning::DoesNotFall {
                epsilon: last.epsilon,
                accuracy: last.robust_accuracy,
                clean: last.clean_accuracy,
                chance,
            });
        }
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::attack::autoattack::StageResult;
    use ndarray::Array2;

    /// A report at `epsilon` with clean accuracy 0.98, FGSM `fgsm`, and the cumulative accuracy
    /// after APGD-CE, APGD-T and Square.
    fn report(epsilon: f64, fgsm: f64, [ce, t, square]: [f64; 3]) -> RobustnessReport {
        let stage =
            |attack, robust_accuracy| StageResult { attack, robust_accuracy, broken: 0, attacked: 0, seconds: 0.0 };
        RobustnessReport {
            epsilon,
            norm: NormType::Infinity,
            clean_accuracy: 0.98,
            stages: vec![stage(EvalAttack::ApgdCe, ce), stage(EvalAttack::ApgdT, t), stage(EvalAttack::Square, square)],
            robust_accuracy: square,
            fgsm_accuracy: fgsm,
            zero_gradients: 0,
            classes: 10,
            samples: 1000,
            outcomes: Vec::new(),
            adversarial: Array2::zeros((0, 1)),
        }
    }

    #[test]
    fn an_honest_sweep_passes() {
        let sweep = [report(0.1, 0.93, [0.92, 0.915, 0.915]), report(0.3, 0.80, [0.75, 0.74, 0.739])];
        assert_eq!(masking_check(&sweep, Some((0.0, 1.0))), vec![]);
    }

    #[test]
    fn each_sign_of_masking_is_named() {
        // NSL's recipe (issue 23): FGSM 80.8 %, APGD 32.2 %, APGD-T 28.9 %; Square then breaks 2 % more.
        let w = masking_check(&[report(0.2, 0.808, [0.322, 0.289, 0.269])], None);
        assert!(
            matches!(w[0], MaskingWarning::GradientFreeStronger { gradient, with_square, .. } if gradient == 0.289 && with_square == 0.269)
        );
        assert!(matches!(w[1], MaskingWarning::FgsmOverstates { .. }));
        assert_eq!(w.len(), 2);
        // The iterative attacks leave more robust than FGSM.
        let w = masking_check(&[report(0.2, 0.5, [0.6, 0.58, 0.58])], None);
        assert!(matches!(w[..], [MaskingWarning::IterativeWeaker { .. }]), "{w:?}");
        // Accuracy rises with ε, and stays near clean over a sweep ×6.
        let w = masking_check(&[report(0.3, 0.97, [0.97, 0.97, 0.97]), report(0.05, 0.95, [0.95, 0.95, 0.95])], None);
        assert!(
            matches!(w[..], [MaskingWarning::RisesWithEpsilon { from, to, .. }, MaskingWarning::DoesNotFall { .. }] if from == 0.05 && to == 0.3),
            "{w:?}"
        );
        // ε = 1 reaches every image in [0, 1]: anything above chance + 5 points is suspect.
        let w = masking_check(&[report(1.0, 0.2, [0.2, 0.2, 0.2])], Some((0.0, 1.0)));
        assert!(matches!(w[..], [MaskingWarning::DoesNotFall { .. }]), "{w:?}");
        assert!(w[0].to_string().contains("does not fall towards chance"));
    }

    /// With AutoAttack's full sequence, the gradient attacks' figure is the one after FAB-T (a
    /// gradient attack): Square is compared with it.
    #[test]
    fn fab_t_counts_among_the_gradient_attacks() {
        let with_fab = |fab: f64, square: f64| {
            let mut r = report(0.3, 0.9, [0.85, 0.84, square]);
            let stage =
                StageResult { attack: EvalAttack::FabT, robust_accuracy: fab, broken: 0, attacked: 0, seconds: 0.0 };
            r.stages.insert(2, stage);
            r
        };
        // FAB-T broke 1 point in 100 more, Square none: no warning.
        assert_eq!(masking_check(&[with_fab(0.83, 0.83)], None), vec![]);
        // Square broke 2 more after FAB-T.
        let w = masking_check(&[with_fab(0.83, 0.81)], None);
        assert!(
            matches!(w[..], [MaskingWarning::GradientFreeStronger { gradient, with_square, .. }] if gradient == 0.83 && with_square == 0.81),
            "{w:?}"
        );
    }
}
