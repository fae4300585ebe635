//! Adversarial regularization (`nsl.configs.AdvRegConfig`, `nsl.keras.AdversarialRegularization`).
//!
//! # Formula
//! NSL's form (supervised): `L = L_sup(y, f(x)) + multiplier · L_sup(y, f(x_adv))`.
//! Label-free form: `L = L_sup(y, f(x)) + multiplier · D(f(x), f(x_adv))` with a [`DistanceConfig`],
//! the graph regularizer's distance over the (sample, adversarial neighbor) pairs of weight 1.
//! `x_adv` is built by [`gen_adv_neighbor`](super::gen_adv_neighbor) from `∇ₓ L_sup`.

use super::adversarial::AdvNeighborConfig;
use super::distance::DistanceConfig;
use serde::{Deserialize, Serialize};

/// What the adversarial neighbor's output is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdvLoss {
    /// The label, with the supervised loss (NSL's form). Default.
    Supervised,
    /// The sample's own output, with a distance (virtual-adversarial style; needs no label).
    Distance(DistanceConfig),
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
    /// Checks the values against the feature width `d`.
    ///
    /// # Errors
    /// A message naming the field.
    pub fn validate(&self, d: usize) -> Result<(), String> {
        if !(self.multiplier.is_finite() && self.multiplier >= 0.0) {
            return Err(format!("adversarial multiplier {} must be a finite number ≥ 0", self.multiplier));
        }
        self.neighbor.validate(d)
    }
}
