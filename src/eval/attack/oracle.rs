//! What the attacks ask of the model (logits; a per-sample loss, its gradient with respect to the
//! input), the per-sample random streams, and the progress callback.

use crate::loss::output_input_gradient;
use crate::model::Model;
use crate::tensor::{to_array2, to_tensor};
use candle_core::Tensor;
use ndarray::{Array2, ArrayView2};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::ops::ControlFlow;

/// Progress of an attack: `done` of `total` units of work of the current stage (an attack of a
/// sequence at one ε). A unit is one step (APGD iteration, Square query) for one sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AttackProgress<'a> {
    /// The running attack (`apgd-ce`, `square`, …, or `fgsm` for the masking check's reference).
    pub attack: &'a str,
    /// Radius of the attack.
    pub epsilon: f64,
    /// Units done in this stage.
    pub done: u64,
    /// Units in this stage.
    pub total: u64,
}

/// A callback the attacks report their [`AttackProgress`] to (at most once per step of a batch).
/// It returns whether to go on: `ControlFlow::Break(())` stops the attack there, and the call
/// that ran it returns [`AttackError::Stopped`](super::AttackError::Stopped) (nothing is
/// reported for the unfinished stage). `nsl evaluate` always continues (Ctrl-C ends the process);
/// Python's `evaluate` breaks on KeyboardInterrupt.
pub type ProgressFn<'a> = &'a (dyn Fn(&AttackProgress) -> ControlFlow<()> + Sync);

/// Counts units for one stage and reports them.
pub(crate) struct Meter<'a> {
    pub(crate) report: Option<ProgressFn<'a>>,
    pub(crate) attack: &'a str,
    pub(crate) epsilon: f64,
    pub(crate) done: u64,
    pub(crate) total: u64,
    /// The callback asked to stop.
    stopped: bool,
}

impl<'a> Meter<'a> {
    /// A meter of `total` units for `attack` at `epsilon`, reporting to `report`.
    pub(crate) fn new(report: Option<ProgressFn<'a>>, attack: &'a str, epsilon: f64, total: u64) -> Self {
        Meter { report, attack, epsilon, done: 0, total, stopped: false }
    }

    /// Counts `units` more and reports them.
    ///
    /// # Errors
    /// A candle error (the attacks' own error type) when the callback asks to stop; the stage's
    /// driver turns it into [`AttackError::Stopped`](super::AttackError::Stopped) with
    /// [`Meter::error`].
    pub(crate) fn add(&mut self, units: u64) -> candle_core::Result<()> {
        self.done = (self.done + units).min(self.total);
        if let Some(report) = self.report {
            let progress =
                AttackProgress { attack: self.attack, epsilon: self.epsilon, done: self.done, total: self.total };
            if report(&progress).is_break() {
                self.stopped = true;
                return Err(candle_core::Error::Msg(format!("{} stopped by its progress callback", self.attack)));
            }
        }
        Ok(())
    }

    /// The error of a stage that failed: [`AttackError::Stopped`](super::AttackError::Stopped) if
    /// the callback stopped it, else the candle error.
    pub(crate) fn error(&self, e: candle_core::Error) -> super::AttackError {
        match self.stopped {
            true => super::AttackError::Stopped { attack: self.attack.to_string(), epsilon: self.epsilon },
            false => e.into(),
        }
    }
}

/// The logits of the encoded inputs `x` (evaluation mode), `[n, classes]`.
pub(crate) fn logits(model: &dyn Model, x: ArrayView2<f32>) -> candle_core::Result<Array2<f32>> {
    to_array2(&model.forward_encoded(&to_tensor(x)?, false, None)?.0)
}

/// The logits at `x`, the per-sample loss `loss(row, z, ∂L/∂z)` (which writes its gradient with
/// respect to the logits into the last argument) and `∇ₓ` of each sample's loss, in one forward
/// and one backward pass: the backward of `Σ z ⊙ G` with `G = ∂L/∂z` held constant is `Jᵀ G`.
pub(crate) fn loss_and_grad(
    model: &dyn Model,
    x: ArrayView2<f32>,
    loss: impl Fn(usize, &[f32], &mut [f32]) -> f32,
) -> candle_core::Result<(Array2<f32>, Vec<f32>, Array2<f32>)> {
    let mut out: Option<(Array2<f32>, Vec<f32>)> = None;
    let grad = output_input_gradient(model, x, false, |z| {
        let values = to_array2(z)?;
        let mut g = Array2::<f32>::zeros(values.dim());
        let mut losses = Vec::with_capacity(values.nrows());
        for (i, (row, mut g_row)) in values.rows().into_iter().zip(g.rows_mut()).enumerate() {
            let (Some(z), Some(g)) = (row.as_slice(), g_row.as_slice_mut()) else {
                candle_core::bail!("logits are not contiguous");
            };
            losses.push(loss(i, z, g));
        }
        let weights = Tensor::from_slice(g.as_slice().unwrap_or(&[]), g.dim(), z.device())?;
        out = Some((values, losses));
        (z * weights)?.sum_all()
    })?;
    match out {
        Some((z, losses)) => Ok((z, losses, grad)),
        None => candle_core::bail!("the loss was not evaluated"),
    }
}

/// SplitMix64: spreads (attack, restart, target) over the seed space.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The random stream of sample `index` for one run (`tag` names the attack, its restart and
/// target): ChaCha8 seeded by the seed and the run, the sample as its stream number, so a sample
/// draws the same numbers whatever batch it is in.
pub(crate) fn sample_rng(seed: u64, tag: u64, index: usize) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(mix(seed ^ mix(tag)));
    rng.set_stream(index as u64);
    rng
}
