//! Robustness to adversarial attacks.
//!
//! - **FGSM and PGD** (NSL's attacks: [`adversarial_examples`], [`robustness_sweep_task`]),
//!   white-box or transferred from another model, for every task.
//! - **The attacks the field evaluates robustness with**, for classifiers ([`EvalAttack`]):
//!   APGD-CE, APGD-DLR and APGD-T (Croce & Hein, "Reliable evaluation of adversarial robustness
//!   with an ensemble of diverse parameter-free attacks", ICML 2020), FAB-T (Croce & Hein,
//!   "Minimally distorted adversarial examples with a fast adaptive boundary attack", ICML 2020)
//!   and Square (Andriushchenko et al., "Square Attack", ECCV 2020), L∞ and L2, and
//!   **AutoAttack**'s standard sequence
//!   ([`EvalAttack::STANDARD`], run by [`run_attacks`] / [`evaluate_attacks`]): each attack on the
//!   points every earlier one left robust, a point robust only if every attack fails. They follow
//!   the reference implementation, fra31/auto-attack (`autoattack/autopgd_base.py`,
//!   `autoattack/fab_pt.py`, `autoattack/square.py`, `autoattack/autoattack.py`), detail for
//!   detail (step-size checkpoints, momentum 0.75, DLR losses, FAB's projections onto the
//!   linearized boundary within the box, Square's `p` schedule, stripes and L2 pseudo-Gaussian
//!   windows); the module docs of `apgd`, `fab` and `square` state each formula and the few
//!   deliberate differences. The standard sequence is APGD-CE, APGD-T, FAB-T, Square (5,000
//!   queries), for L∞ and L2.
//! - **The gradient-masking check** ([`masking_check`]): warnings from Carlini et al.'s checklist.
//!
//! Attacks move a model's encoded input ([`Model::encode`](crate::model::Model::encode)): the
//! rows themselves for the MLP and the CNN, the pooled embeddings (and dense groups) for `bow`,
//! whose token ids are never perturbed. Any model works, a user's candle module included (through
//! the [`Model`](crate::model::Model) trait).
//!
//! # Speed and memory
//! Samples are attacked in batches of [`EvalAttackConfig::batch_size`]: one forward (and one
//! backward) pass per step for the whole batch, which the model's kernels spread over every
//! thread of the rayon pool (`--threads`); a sample leaves its batch as soon as it is broken.
//! Memory is the inputs, a few copies of one batch, and the model's activations of one batch.
//!
//! ```
//! use candle_core::{Device, Module, Tensor};
//! use ndarray::array;
//! use nsl::eval::{run_attacks, EvalAttack, EvalAttackConfig};
//!
//! // A linear classifier on two features: class 1 iff x₁ > x₀.
//! let w = Tensor::new(&[[1.0f32, 0.0], [0.0, 1.0]], &Device::Cpu)?;
//! let model = candle_nn::Linear::new(w, None);
//! let x = array![[0.9f32, 0.1], [0.45, 0.55]];
//! let config = EvalAttackConfig { epsilon: 0.1, iterations: 10, ..Default::default() };
//! let report = run_attacks(&model, x.view(), &[0, 1], [1, 1, 2], &[EvalAttack::ApgdCe], &config, None)?;
//! // The second point is 0.05 from the boundary (at L∞ distance 0.05): broken; the first is not.
//! assert_eq!(report.clean_accuracy, 1.0);
//! assert_eq!(report.robust_accuracy, 0.5);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod apgd;
mod autoattack;
mod classic;
mod config;
mod dlr;
mod fab;
mod masking;
mod oracle;
mod square;
mod sweep;

pub use apgd::apgd_checkpoints;
pub use autoattack::{attack_layout, evaluate_attacks, run_attacks, RobustnessReport, SampleOutcome, StageResult};
pub use classic::{
    accuracy_on, adversarial_examples, metrics_on, outputs_on, predicted_classes, robustness_sweep,
    robustness_sweep_task, task_adversarial_inputs, Attack, AttackConfig,
};
pub use config::{AttackError, EvalAttack, EvalAttackConfig};
pub use masking::{masking_check, MaskingWarning};
pub use oracle::{AttackProgress, ProgressFn};
pub use square::square_p_schedule;
pub use sweep::{sweep_attacks, AttackMethod, AttackSweep};
