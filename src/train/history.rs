//! [`History`]: per-epoch training metrics, saved as JSON and CSV.

use crate::eval::Metrics;
use serde::{Deserialize, Serialize};

/// Metrics of one epoch (means over the epoch's training batches, in training mode).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Total loss (supervised + scaled regularizers).
    pub loss: f64,
    /// Supervised cross-entropy.
    pub supervised_loss: f64,
    /// Unscaled graph loss (0 without graph regularization).
    pub graph_loss: f64,
    /// Unscaled adversarial loss (0 without adversarial regularization).
    #[serde(default)]
    pub adversarial_loss: f64,
    /// Unscaled virtual adversarial loss (0 without it).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub vat_loss: f64,
    /// Entropy of the predictions on unlabeled centers (0 without the entropy term).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub entropy_loss: f64,
    /// Training accuracy (binary: logit > 0 is class 1; multilabel: every label right;
    /// regression: 0).
    pub accuracy: f64,
    /// Accuracy on the validation samples, if any were given (absent for regression).
    pub validation_accuracy: Option<f64>,
    /// Wall time of the epoch.
    pub seconds: f64,
    /// The task's metrics on the epoch's training batches (outputs in training mode, before each
    /// batch's update, as Keras reports them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Metrics>,
    /// The task's metrics on the validation samples, if any were given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_metrics: Option<Metrics>,
}

/// Every epoch's record, in order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// The records.
    pub epochs: Vec<EpochRecord>,
    /// With early stopping: the epoch whose weights were kept (the best value of the watched
    /// validation metric).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_epoch: Option<usize>,
}

impl History {
    /// The history as CSV, one line per epoch, with a header.
    pub fn to_csv(&self) -> String {
        let mut out = String::from(
            "epoch,loss,supervised_loss,graph_loss,adversarial_loss,accuracy,validation_accuracy,seconds\n",
        );
        for e in &self.epochs {
            let val = e.validation_accuracy.map(|v| format!("{v:.6}")).unwrap_or_default();
            out.push_str(&format!(
                "{},{:.6},{:.6},{:.6},{:.6},{:.6},{val},{:.4}\n",
                e.epoch, e.loss, e.supervised_loss, e.graph_loss, e.adversarial_loss, e.accuracy, e.seconds
            ));
        }
        out
    }

    /// Median wall time of the epochs after the first (the steady epoch time).
    pub fn steady_epoch_seconds(&self) -> Option<f64> {
        let mut times: Vec<f64> = self.epochs.iter().skip(1).map(|e| e.seconds).collect();
        if times.is_empty() {
            return self.epochs.first().map(|e| e.seconds);
        }
        times.sort_by(f64::total_cmp);
        Some(times[times.len() / 2])
    }
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}
