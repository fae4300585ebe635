//! [`History`]: per-epoch training metrics, saved as JSON and CSV.

use crate::eval::{Metric, Metrics};
use serde::{Deserialize, Serialize};

/// Metrics of one epoch (means over the epoch's training batches, in training mode).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Total loss: the supervised loss plus the scaled regularizers (with `objective=madry` or `mart`, the
    /// objective's value, whose adversarial term replaces the clean one).
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
    /// regression: 0); with sample weights, each sample counts as often as its weight.
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
    /// The record of the epoch whose weights the model holds: the best epoch under early stopping
    /// ([`History::best_epoch`]), else the last one. `None` before the first epoch.
    pub fn kept(&self) -> Option<&EpochRecord> {
        self.best_epoch.and_then(|b| self.epochs.iter().find(|e| e.epoch == b)).or_else(|| self.epochs.last())
    }

    /// The history as CSV, one line per epoch, with a header: `epoch, loss, supervised_loss,
    /// graph_loss, adversarial_loss, accuracy, validation_accuracy`, then, for each of the task's
    /// metrics other than accuracy that some epoch has ([`History::metric_columns`], e.g. `roc_auc`
    /// for binary, `mse` for regression), its training value and its validation value
    /// (`macro_f1,validation_macro_f1,…`), and last `seconds`. A value an epoch lacks is an empty
    /// cell.
    pub fn to_csv(&self) -> String {
        let metrics = self.metric_columns();
        let mut out =
            String::from("epoch,loss,supervised_loss,graph_loss,adversarial_loss,accuracy,validation_accuracy");
        for m in &metrics {
            let name = m.name().replace('-', "_");
            out.push_str(&format!(",{name},validation_{name}"));
        }
        out.push_str(",seconds\n");
        let cell = |v: Option<f64>| v.map(|v| format!("{v:.6}")).unwrap_or_default();
        for e in &self.epochs {
            out.push_str(&format!(
                "{},{:.6},{:.6},{:.6},{:.6},{:.6},{}",
                e.epoch,
                e.loss,
                e.supervised_loss,
                e.graph_loss,
                e.adversarial_loss,
                e.accuracy,
                cell(e.validation_accuracy),
            ));
            for &m in &metrics {
                let train = e.metrics.as_ref().and_then(|x| x.get(m));
                let validation = e.validation_metrics.as_ref().and_then(|x| x.get(m));
                out.push_str(&format!(",{},{}", cell(train), cell(validation)));
            }
            out.push_str(&format!(",{:.4}\n", e.seconds));
        }
        out
    }

    /// The task's metrics other than accuracy that at least one epoch has (training or
    /// validation), in [`Metric::NAMES`] order: the extra columns of [`History::to_csv`] and the
    /// curves of the metrics panel.
    pub fn metric_columns(&self) -> Vec<Metric> {
        let mut seen: Vec<Metric> = Vec::new();
        for (_, m) in Metric::NAMES {
            let present = self
                .epochs
                .iter()
                .any(|e| [&e.metrics, &e.validation_metrics].into_iter().flatten().any(|x| x.get(*m).is_some()));
            if *m != Metric::Accuracy && present && !seen.contains(m) {
                seen.push(*m);
            }
        }
        seen
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

#[cfg(test)]
mod tests {
    use super::*;

    fn record(epoch: usize, metrics: Option<Metrics>, validation_metrics: Option<Metrics>) -> EpochRecord {
        EpochRecord {
            epoch,
            loss: 0.5,
            supervised_loss: 0.5,
            graph_loss: 0.0,
            adversarial_loss: 0.0,
            vat_loss: 0.0,
            entropy_loss: 0.0,
            accuracy: 0.75,
            validation_accuracy: None,
            seconds: 0.25,
            metrics,
            validation_metrics,
        }
    }

    #[test]
    fn csv_has_the_tasks_metrics_for_training_and_validation() {
        let binary =
            |auc: f64| Metrics { accuracy: Some(0.75), macro_f1: Some(0.5), roc_auc: Some(auc), ..Default::default() };
        // Epoch 2's validation set had one class: no ROC-AUC, an empty cell.
        let mut second = binary(0.25);
        second.roc_auc = None;
        let history = History {
            epochs: vec![record(1, Some(binary(0.8)), Some(binary(0.9))), record(2, Some(binary(0.85)), Some(second))],
            best_epoch: None,
        };
        assert_eq!(history.metric_columns(), [Metric::MacroF1, Metric::RocAuc]);
        assert_eq!(
            history.to_csv(),
            "epoch,loss,supervised_loss,graph_loss,adversarial_loss,accuracy,validation_accuracy,\
             macro_f1,validation_macro_f1,roc_auc,validation_roc_auc,seconds\n\
             1,0.500000,0.500000,0.000000,0.000000,0.750000,,0.500000,0.500000,0.800000,0.900000,0.2500\n\
             2,0.500000,0.500000,0.000000,0.000000,0.750000,,0.500000,0.500000,0.850000,,0.2500\n"
        );
        // Regression: the errors, no validation set.
        let mse = Metrics { mse: Some(2.0), mae: Some(1.0), rmse: Some(2f64.sqrt()), ..Default::default() };
        let history = History { epochs: vec![record(1, Some(mse), None)], best_epoch: None };
        let csv = history.to_csv();
        assert!(
            csv.ends_with(
                ",validation_accuracy,mse,validation_mse,mae,validation_mae,rmse,validation_rmse,seconds\n\
                 1,0.500000,0.500000,0.000000,0.000000,0.750000,,2.000000,,1.000000,,1.414214,,0.2500\n"
            ),
            "{csv}"
        );
        // Without metrics (a history from before tasks): the eight columns only.
        let old = History { epochs: vec![record(1, None, None)], best_epoch: None };
        assert_eq!(old.to_csv().lines().next().map(|h| h.split(',').count()), Some(8));
    }
}
