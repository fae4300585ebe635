//! Early stopping: its own small strategy (burn-train's shape), out of the epoch loop.

use super::{sorted_vars, History, TrainError};
use crate::eval::{Evaluation, Metric};
use candle_core::Tensor;
use candle_nn::VarMap;

/// Watches a validation metric after every epoch, keeps the weights of the best epoch, and says
/// when `patience` epochs have passed without improvement. Without a patience it watches nothing.
pub(super) struct EarlyStopping {
    patience: Option<usize>,
    monitor: Metric,
    /// The best value, its epoch and the weights then (sorted by name).
    pub(super) best: Option<(f64, usize, Vec<Tensor>)>,
    /// Epochs since the best.
    pub(super) since_best: usize,
}

impl EarlyStopping {
    /// Stops after `patience` epochs without improvement of `monitor` (never without a patience).
    pub(super) fn new(patience: Option<usize>, monitor: Metric) -> Self {
        EarlyStopping { patience, monitor, best: None, since_best: 0 }
    }

    /// After `epoch`, whose validation `evaluation` is given (none without validation samples):
    /// keeps the weights if the watched value is the best so far; returns whether to stop.
    ///
    /// # Errors
    /// A candle error copying the weights.
    pub(super) fn observe(
        &mut self,
        evaluation: Option<&Evaluation>,
        epoch: usize,
        vars: &VarMap,
    ) -> Result<bool, TrainError> {
        // The watched value: the evaluation's own accuracy (as before tasks), or the metric.
        let watched = evaluation.and_then(|e| match self.monitor {
            Metric::Accuracy => Some(e.accuracy).filter(|a| !a.is_nan()),
            m => e.metrics.get(m),
        });
        let (Some(patience), Some(value)) = (self.patience, watched) else { return Ok(false) };
        let better = |b: f64| if self.monitor.higher_is_better() { value > b } else { value < b };
        if self.best.as_ref().is_none_or(|(b, _, _)| better(*b)) {
            let weights = sorted_vars(vars)?.iter().map(|v| v.as_tensor().copy()).collect::<Result<_, _>>()?;
            self.best = Some((value, epoch, weights));
            self.since_best = 0;
            Ok(false)
        } else {
            self.since_best += 1;
            Ok(self.since_best >= patience)
        }
    }

    /// At the end of the fit: puts the best epoch's weights back and names it in `history`.
    ///
    /// # Errors
    /// A candle error setting the weights.
    pub(super) fn restore_best(self, vars: &VarMap, history: &mut History) -> Result<(), TrainError> {
        if let Some((_, epoch, weights)) = self.best {
            for (var, saved) in sorted_vars(vars)?.iter().zip(&weights) {
                var.set(saved)?;
            }
            history.best_epoch = Some(epoch);
        }
        Ok(())
    }
}
