//! [`GrandConfig`]: GRAND's settings, their defaults (the official Cora run) and their checks.

use super::GrandError;
use crate::graph::MAX_HOPS;
use serde::{Deserialize, Serialize};

/// GRAND's settings. The defaults are the official code's Cora run (`run_cora.sh` of THUDM/GRAND);
/// its Citeseer run is [`GrandConfig::citeseer`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GrandConfig {
    /// Units of the MLP's hidden layer. Default 32.
    pub hidden: usize,
    /// Dropout rate on the propagated features (the MLP's input), in training only, in `[0, 1)`.
    /// Default 0.5.
    pub input_dropout: f32,
    /// Dropout rate after the hidden layer, in training only, in `[0, 1)`. Default 0.5.
    pub hidden_dropout: f32,
    /// DropNode rate δ: the probability that a node's whole feature row is zeroed in a view, in
    /// `[0, 1)`. Default 0.5.
    pub dropnode: f32,
    /// `K`, the highest power of `Â` in the mixed-order mean, in `1..=`[`MAX_HOPS`]. Default 8.
    pub order: usize,
    /// `S`, the DropNode views per training step, at least 1. Default 4.
    pub views: usize,
    /// `T`, the sharpening temperature of the consistency target, > 0. Default 0.5.
    pub temperature: f64,
    /// `λ`, the weight of the consistency loss, ≥ 0. Default 1.0.
    pub lambda: f64,
    /// Adam's learning rate, > 0. Default 0.01.
    pub learning_rate: f64,
    /// L2 weight decay added to every gradient (PyTorch's `Adam(weight_decay=…)`), ≥ 0. Default 5e-4.
    pub weight_decay: f64,
    /// Epochs without a new best validation loss or accuracy (a tie with the best accuracy counts
    /// as new, as in the official code) before training stops, at least 1. Default 200.
    pub patience: usize,
    /// The most epochs (full-batch steps), at least 1. Default 2000 (the official code's default
    /// is 5000; on Cora and Citeseer patience ends most runs after 700–1,500 epochs).
    pub max_epochs: usize,
}

impl Default for GrandConfig {
    fn default() -> Self {
        GrandConfig {
            hidden: 32,
            input_dropout: 0.5,
            hidden_dropout: 0.5,
            dropnode: 0.5,
            order: 8,
            views: 4,
            temperature: 0.5,
            lambda: 1.0,
            learning_rate: 0.01,
            weight_decay: 5e-4,
            patience: 200,
            max_epochs: 2000,
        }
    }
}

impl GrandConfig {
    /// The official Citeseer run (`run_citeseer.sh`): input dropout 0, hidden dropout 0.2, order 2,
    /// 2 views, `T` 0.3, `λ` 0.7; the rest as [`GrandConfig::default`].
    pub fn citeseer() -> Self {
        GrandConfig {
            input_dropout: 0.0,
            hidden_dropout: 0.2,
            order: 2,
            views: 2,
            temperature: 0.3,
            lambda: 0.7,
            ..GrandConfig::default()
        }
    }

    /// Checks every setting.
    ///
    /// # Errors
    /// [`GrandError::InvalidConfig`] naming the first setting out of range.
    pub fn validate(&self) -> Result<(), GrandError> {
        let bad = |option: &'static str, value: String, expected: &'static str| {
            Err(GrandError::InvalidConfig { option, value, expected })
        };
        let rate = |p: f32| (0.0..1.0).contains(&p);
        if self.hidden == 0 {
            return bad("hidden", self.hidden.to_string(), "at least 1 unit");
        }
        for (option, p) in [
            ("input-dropout", self.input_dropout),
            ("hidden-dropout", self.hidden_dropout),
            ("dropnode", self.dropnode),
        ] {
            if !rate(p) {
                return bad(option, p.to_string(), "a rate in [0, 1)");
            }
        }
        if !(1..=MAX_HOPS).contains(&self.order) {
            // `MAX_HOPS`, spelled out for a `&'static str` (checked by a test).
            return bad("order", self.order.to_string(), "an integer from 1 to 64");
        }
        if self.views == 0 {
            return bad("views", self.views.to_string(), "at least 1 view");
        }
        if !(self.temperature > 0.0 && self.temperature.is_finite()) {
            return bad("temperature", self.temperature.to_string(), "a number > 0");
        }
        if !(self.lambda >= 0.0 && self.lambda.is_finite()) {
            return bad("lambda", self.lambda.to_string(), "a number ≥ 0");
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return bad("learning-rate", self.learning_rate.to_string(), "a number > 0");
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return bad("weight-decay", self.weight_decay.to_string(), "a number ≥ 0");
        }
        if self.patience == 0 {
            return bad("patience", self.patience.to_string(), "at least 1 epoch");
        }
        if self.max_epochs == 0 {
            return bad("max-epochs", self.max_epochs.to_string(), "at least 1 epoch");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_settings_are_named() {
        GrandConfig::default().validate().unwrap();
        GrandConfig::citeseer().validate().unwrap();
        let cases: [(GrandConfig, &str); 9] = [
            (GrandConfig { dropnode: 1.0, ..Default::default() }, "dropnode"),
            (GrandConfig { dropnode: -0.1, ..Default::default() }, "dropnode"),
            (GrandConfig { input_dropout: f32::NAN, ..Default::default() }, "input-dropout"),
            (GrandConfig { views: 0, ..Default::default() }, "views"),
            (GrandConfig { order: 0, ..Default::default() }, "order"),
            (GrandConfig { order: MAX_HOPS + 1, ..Default::default() }, "order"),
            (GrandConfig { temperature: 0.0, ..Default::default() }, "temperature"),
            (GrandConfig { lambda: -1.0, ..Default::default() }, "lambda"),
            (GrandConfig { patience: 0, ..Default::default() }, "patience"),
        ];
        for (config, name) in cases {
            let e = config.validate().unwrap_err();
            assert!(matches!(e, GrandError::InvalidConfig { option, .. } if option == name), "{e}");
        }
        let e = GrandConfig { order: 0, ..Default::default() }.validate().unwrap_err();
        assert!(e.to_string().ends_with(&format!("from 1 to {MAX_HOPS}")), "{e}");
    }
}
