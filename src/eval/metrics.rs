//! The metrics of each [`Task`], from a model's outputs (logits, or values for regression) and
//! the true targets.
//!
//! | task | metrics | primary (early stopping) |
//! |---|---|---|
//! | multiclass | accuracy (arg-max), macro-F1 | accuracy |
//! | binary | accuracy at p = 0.5 (logit > 0), ROC-AUC, macro-F1 | ROC-AUC |
//! | multilabel | macro-F1, micro-F1, subset accuracy (every label right), at p = 0.5 | macro-F1 |
//! | regression | MSE, MAE, RMSE, over every target value | MSE (lower is better) |
//!
//! - **F1** of a class is `2·TP / (2·TP + FP + FN)`; the macro average is taken over the classes
//!   that occur in the targets or the predictions (scikit-learn's `labels` default for multiclass),
//!   so a class that is never predicted but present counts as 0, and one absent from both is left
//!   out. Micro-F1 pools the counts of every label.
//! - **ROC-AUC** is the Mann–Whitney statistic: the share of (positive, negative) pairs ranked in
//!   the right order, ties counting ½ (average ranks), as scikit-learn's `roc_auc_score`. It is
//!   undefined (absent) when the targets hold one class only.

use crate::loss::Task;
use ndarray::{ArrayView2, Axis};
use serde::{Deserialize, Serialize};

/// A task's metrics; the ones that do not apply to the task are `None` (and absent from JSON).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Share of samples predicted right (multiclass, binary).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<f64>,
    /// Mean F1 over the classes (multiclass, binary) or labels (multilabel).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub macro_f1: Option<f64>,
    /// F1 of the pooled label counts (multilabel).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub micro_f1: Option<f64>,
    /// Share of samples with every label right (multilabel).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subset_accuracy: Option<f64>,
    /// Area under the ROC curve (binary; absent with one class only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roc_auc: Option<f64>,
    /// Mean squared error (regression).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mse: Option<f64>,
    /// Mean absolute error (regression).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mae: Option<f64>,
    /// Root mean squared error (regression).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rmse: Option<f64>,
}

/// One metric, to watch (early stopping) or report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Metric {
    /// [`Metrics::accuracy`].
    Accuracy,
    /// [`Metrics::macro_f1`].
    MacroF1,
    /// [`Metrics::micro_f1`].
    MicroF1,
    /// [`Metrics::subset_accuracy`].
    SubsetAccuracy,
    /// [`Metrics::roc_auc`].
    RocAuc,
    /// [`Metrics::mse`] (lower is better).
    Mse,
    /// [`Metrics::mae`] (lower is better).
    Mae,
    /// [`Metrics::rmse`] (lower is better).
    Rmse,
}

impl Metric {
    /// The names [`Metric::from_str`](std::str::FromStr) accepts, with their metrics.
    pub const NAMES: &'static [(&'static str, Metric)] = &[
        ("accuracy", Metric::Accuracy),
        ("macro-f1", Metric::MacroF1),
        ("micro-f1", Metric::MicroF1),
        ("subset-accuracy", Metric::SubsetAccuracy),
        ("roc-auc", Metric::RocAuc),
        ("auc", Metric::RocAuc),
        ("mse", Metric::Mse),
        ("mae", Metric::Mae),
        ("rmse", Metric::Rmse),
    ];

    /// The metric early stopping watches by default: accuracy (multiclass), ROC-AUC (binary),
    /// macro-F1 (multilabel), MSE (regression).
    pub fn primary(task: Task) -> Metric {
        match task {
            Task::Binary => Metric::RocAuc,
            Task::Multilabel => Metric::MacroF1,
            Task::Regression(_) => Metric::Mse,
            _ => Metric::Accuracy,
        }
    }

    /// Whether larger values are better (false for the errors).
    pub fn higher_is_better(self) -> bool {
        !matches!(self, Metric::Mse | Metric::Mae | Metric::Rmse)
    }

    /// The metric's name, as [`Metric::from_str`](std::str::FromStr) reads it.
    pub fn name(self) -> &'static str {
        Metric::NAMES.iter().find(|(_, m)| *m == self).map_or("accuracy", |(n, _)| n)
    }
}

impl std::str::FromStr for Metric {
    type Err = crate::config::ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim().replace('_', "-");
        Metric::NAMES.iter().find(|(n, _)| *n == s).map(|(_, m)| *m).ok_or_else(|| {
            crate::config::ConfigError::InvalidValue {
                field: "metric".into(),
                value: s.clone(),
                expected: Metric::NAMES.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(" | "),
            }
        })
    }
}

impl Metrics {
    /// The value of `metric`, if computed.
    pub fn get(&self, metric: Metric) -> Option<f64> {
        match metric {
            Metric::Accuracy => self.accuracy,
            Metric::MacroF1 => self.macro_f1,
            Metric::MicroF1 => self.micro_f1,
            Metric::SubsetAccuracy => self.subset_accuracy,
            Metric::RocAuc => self.roc_auc,
            Metric::Mse => self.mse,
            Metric::Mae => self.mae,
            Metric::Rmse => self.rmse,
        }
    }
}

/// The true targets of [`task_metrics`].
#[derive(Debug, Clone, Copy)]
pub enum Truth<'a> {
    /// Class indices (multiclass; binary: 0 or 1).
    Classes(&'a [u32]),
    /// `[n, k]` multi-hot labels or values.
    Matrix(ArrayView2<'a, f32>),
}

/// The metrics of `task` for the model's `outputs` (`[n, outputs]`: logits, or values for
/// regression) against `truth`. A `truth` of the wrong kind for the task gives no metric.
pub fn task_metrics(task: Task, outputs: ArrayView2<f32>, truth: Truth) -> Metrics {
    weighted_task_metrics(task, outputs, truth, None)
}

/// [`task_metrics`] with each sample counted `weights[i]` times (scikit-learn's `sample_weight`):
/// accuracies are `Σ wᵢ·[right] / Σ wᵢ`; F1 uses weighted TP/FP/FN counts; ROC-AUC weighs each
/// (positive, negative) pair by `w_p·w_n`; MSE and MAE are `Σ wᵢ·eᵢ / (k·Σ wᵢ)` over the `k`
/// values of each sample, RMSE the root of that MSE. `None` (or `n` weights of 1) gives the
/// unweighted metrics; weights summing to 0 leave every metric undefined (absent).
pub fn weighted_task_metrics(task: Task, outputs: ArrayView2<f32>, truth: Truth, weights: Option<&[f32]>) -> Metrics {
    let n = outputs.nrows();
    let w: Vec<f64> = match weights {
        Some(w) if w.len() == n => w.iter().map(|&v| f64::from(v)).collect(),
        _ => vec![1.0; n],
    };
    let total: f64 = w.iter().sum();
    let mut m = Metrics::default();
    if total <= 0.0 {
        return m;
    }
    match (task, truth) {
        (Task::Binary, Truth::Classes(y)) => {
            let scores: Vec<f32> = outputs.column(0).to_vec();
            let predicted: Vec<u32> = scores.iter().map(|&z| u32::from(z > 0.0)).collect();
            let tally = ClassTally::of(&predicted, y, &w);
            (m.accuracy, m.macro_f1) = (Some(tally.accuracy()), Some(tally.macro_f1()));
            let positive: Vec<bool> = y.iter().map(|&c| c == 1).collect();
            m.roc_auc = weighted_roc_auc(&scores, &positive, &w);
        }
        (Task::Multilabel, Truth::Matrix(y)) => {
            let k = y.ncols();
            let (mut tp, mut fp, mut fnn) = (vec![0f64; k], vec![0f64; k], vec![0f64; k]);
            let mut exact = 0f64;
            for ((z, t), &wi) in outputs.axis_iter(Axis(0)).zip(y.axis_iter(Axis(0))).zip(&w) {
                let mut all = true;
                for j in 0..k {
                    let (p, a) = (z[j] > 0.0, t[j] > 0.5);
                    tp[j] += if p && a { wi } else { 0.0 };
                    fp[j] += if p && !a { wi } else { 0.0 };
                    fnn[j] += if !p && a { wi } else { 0.0 };
                    all &= p == a;
                }
                exact += if all { wi } else { 0.0 };
            }
            m.macro_f1 = Some(mean_f1(&tp, &fp, &fnn));
            let (t, f, g) = (tp.iter().sum::<f64>(), fp.iter().sum::<f64>(), fnn.iter().sum::<f64>());
            m.micro_f1 = Some(if 2.0 * t + f + g == 0.0 { 1.0 } else { 2.0 * t / (2.0 * t + f + g) });
            m.subset_accuracy = Some(exact / total);
        }
        (Task::Regression(_), Truth::Matrix(y)) => {
            let count = total * y.ncols().max(1) as f64;
            let (mut se, mut ae) = (0.0f64, 0.0f64);
            for ((z, t), &wi) in outputs.axis_iter(Axis(0)).zip(y.axis_iter(Axis(0))).zip(&w) {
                for (zj, tj) in z.iter().zip(t.iter()) {
                    let e = f64::from(*zj) - f64::from(*tj);
                    se += wi * e * e;
                    ae += wi * e.abs();
                }
            }
            m.mse = Some(se / count);
            m.mae = Some(ae / count);
            m.rmse = Some((se / count).sqrt());
        }
        (Task::Multiclass, Truth::Classes(y)) => {
            let predicted = argmax_rows(outputs);
            m = ClassTally::of(&predicted, y, &w).metrics();
        }
        _ => {}
    }
    m
}

/// The arg-max of each row (the first on ties, as candle's `argmax`).
pub(crate) fn argmax_rows(outputs: ArrayView2<f32>) -> Vec<u32> {
    outputs
        .axis_iter(Axis(0))
        .map(|row| {
            let mut best = 0;
            for (j, &v) in row.iter().enumerate() {
                if v > row[best] {
                    best = j;
                }
            }
            best as u32
        })
        .collect()
}

/// Share of `predicted` equal to `y`.
pub fn accuracy(predicted: &[u32], y: &[u32]) -> f64 {
    ClassTally::of(predicted, y, &vec![1.0; y.len()]).accuracy()
}

/// Mean F1 over the classes that occur in `y` or `predicted` (a class that occurs in neither has
/// no F1, so `classes`, the number of outputs, does not change the value).
pub fn macro_f1(predicted: &[u32], y: &[u32], _classes: usize) -> f64 {
    ClassTally::of(predicted, y, &vec![1.0; y.len()]).macro_f1()
}

/// Running weighted counts of predicted against true classes — right answers, and each class's
/// TP/FP/FN — from which accuracy (`Σ wᵢ·[right] / Σ wᵢ`, 0 when the weights sum to 0) and
/// macro-F1 (over the classes that occur in `y` or `predicted`, with any weight; 1 if none)
/// follow. Batches can be added one after another (a streamed epoch's training metrics keep
/// these counts, not the outputs); the values are those of the batches joined, bit for bit.
#[derive(Debug, Clone, Default)]
pub(crate) struct ClassTally {
    tp: Vec<f64>,
    fp: Vec<f64>,
    fnn: Vec<f64>,
    seen: Vec<bool>,
    right: f64,
    total: f64,
}

impl ClassTally {
    /// The counts of one set of predictions.
    fn of(predicted: &[u32], y: &[u32], w: &[f64]) -> Self {
        let mut tally = ClassTally::default();
        tally.add(predicted, y, w);
        tally
    }

    /// Adds `predicted` against `y`, sample `i` weighing `w[i]`.
    pub(crate) fn add(&mut self, predicted: &[u32], y: &[u32], w: &[f64]) {
        let k = 1 + predicted.iter().chain(y).copied().max().unwrap_or(0) as usize;
        if k > self.seen.len() {
            for v in [&mut self.tp, &mut self.fp, &mut self.fnn] {
                v.resize(k, 0.0);
            }
            self.seen.resize(k, false);
        }
        for ((&p, &t), &wi) in predicted.iter().zip(y).zip(w) {
            self.seen[p as usize] = true;
            self.seen[t as usize] = true;
            if p == t {
                self.tp[p as usize] += wi;
                self.right += wi;
            } else {
                self.fp[p as usize] += wi;
                self.fnn[t as usize] += wi;
            }
        }
        self.total += w.iter().take(y.len()).sum::<f64>();
    }

    /// Weighted share of right answers.
    pub(crate) fn accuracy(&self) -> f64 {
        if self.total > 0.0 {
            self.right / self.total
        } else {
            0.0
        }
    }

    /// Mean `2TP / (2TP + FP + FN)` over the seen classes.
    pub(crate) fn macro_f1(&self) -> f64 {
        let scores: Vec<f64> = (0..self.seen.len())
            .filter(|&c| self.seen[c])
            .map(|c| {
                let d = 2.0 * self.tp[c] + self.fp[c] + self.fnn[c];
                if d > 0.0 {
                    2.0 * self.tp[c] / d
                } else {
                    0.0
                }
            })
            .collect();
        if scores.is_empty() {
            1.0
        } else {
            scores.iter().sum::<f64>() / scores.len() as f64
        }
    }

    /// The multiclass (and binary, but for ROC-AUC) metrics of the counts.
    pub(crate) fn metrics(&self) -> Metrics {
        Metrics { accuracy: Some(self.accuracy()), macro_f1: Some(self.macro_f1()), ..Default::default() }
    }
}

/// Mean `2TP / (2TP + FP + FN)` over the labels with `TP + FP + FN > 0` (1 if there is none).
fn mean_f1(tp: &[f64], fp: &[f64], fnn: &[f64]) -> f64 {
    let scores: Vec<f64> = (0..tp.len())
        .filter(|&c| tp[c] + fp[c] + fnn[c] > 0.0)
        .map(|c| 2.0 * tp[c] / (2.0 * tp[c] + fp[c] + fnn[c]))
        .collect();
    if scores.is_empty() {
        1.0
    } else {
        scores.iter().sum::<f64>() / scores.len() as f64
    }
}

/// ROC-AUC of `scores` for the `positive` samples: `(Σ ranks of positives − P(P+1)/2) / (P·N)`,
/// tied scores sharing their average rank. `None` if either class is absent.
pub fn roc_auc(scores: &[f32], positive: &[bool]) -> Option<f64> {
    weighted_roc_auc(scores, positive, &vec![1.0; scores.len()])
}

/// ROC-AUC with each (positive p, negative q) pair weighted `w_p·w_q`: the weighted share of pairs
/// in the right order, ties counting ½; with unit weights [`roc_auc`]'s Mann–Whitney statistic.
/// `None` if either class has no weight.
fn weighted_roc_auc(scores: &[f32], positive: &[bool], w: &[f64]) -> Option<f64> {
    let (mut wp, mut wn) = (0.0f64, 0.0f64);
    for (&p, &wi) in positive.iter().zip(w) {
        if p {
            wp += wi;
        } else {
            wn += wi;
        }
    }
    if wp <= 0.0 || wn <= 0.0 {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    // Walk the tie groups upwards: a group's positives beat the negatives below it and tie with
    // the group's own negatives.
    let (mut below, mut right) = (0.0f64, 0.0f64);
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let (mut gp, mut gn) = (0.0f64, 0.0f64);
        for &s in &order[i..=j] {
            if positive[s] {
                gp += w[s];
            } else {
                gn += w[s];
            }
        }
        right += gp * (below + gn / 2.0);
        below += gn;
        i = j + 1;
    }
    Some(right / (wp * wn))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    /// Scores 0.1, 0.4, 0.35, 0.8 with labels 0, 0, 1, 1: scikit-learn's `roc_auc_score` example,
    /// 0.75. With ties (0.5, 0.5, 0.5, 0.9 and labels 0, 1, 0, 1): positive ranks 2 and 4 → (6 − 3)
    /// / 4 = 0.75.
    #[test]
    fn auc_by_hand_with_ties() {
        assert_eq!(roc_auc(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]), Some(0.75));
        assert_eq!(roc_auc(&[0.5, 0.5, 0.5, 0.9], &[false, true, false, true]), Some(0.75));
        assert_eq!(roc_auc(&[0.5, 0.5], &[false, true]), Some(0.5));
        assert_eq!(roc_auc(&[0.5, 0.7], &[true, true]), None);
    }

    /// y = 0 0 1 1 2, predicted 0 0 0 1 1: class 2 is never predicted (F1 0); F1 = 0.8, 0.5, 0 →
    /// macro 13/30.
    #[test]
    fn macro_f1_with_a_class_never_predicted() {
        let f1 = macro_f1(&[0, 0, 0, 1, 1], &[0, 0, 1, 1, 2], 3);
        assert!((f1 - 1.3 / 3.0).abs() < 1e-12, "{f1}");
        // A class in neither is left out: 4 classes, the same value.
        assert!((macro_f1(&[0, 0, 0, 1, 1], &[0, 0, 1, 1, 2], 4) - f1).abs() < 1e-12);
    }

    #[test]
    fn multilabel_and_regression_metrics() {
        // Predictions (logit > 0): [1,0], [1,1], [0,0]; truth [1,0], [0,1], [0,1].
        let z = array![[2.0f32, -1.0], [0.5, 0.5], [-1.0, -2.0]];
        let y = array![[1.0f32, 0.0], [0.0, 1.0], [0.0, 1.0]];
        let m = task_metrics(Task::Multilabel, z.view(), Truth::Matrix(y.view()));
        // Label 0: TP 1, FP 1 → 2/3; label 1: TP 1, FN 1 → 2/3. Micro: TP 2, FP 1, FN 1 → 2/3.
        assert!((m.macro_f1.unwrap() - 2.0 / 3.0).abs() < 1e-12);
        assert!((m.micro_f1.unwrap() - 2.0 / 3.0).abs() < 1e-12);
        assert!((m.subset_accuracy.unwrap() - 1.0 / 3.0).abs() < 1e-12);
        let z = array![[1.5f32], [0.0], [3.0], [1.0]];
        let y = array![[1.0f32], [2.0], [0.0], [1.0]];
        let m = task_metrics(Task::Regression(Default::default()), z.view(), Truth::Matrix(y.view()));
        assert!((m.mse.unwrap() - 13.25 / 4.0).abs() < 1e-12);
        assert!((m.mae.unwrap() - 5.5 / 4.0).abs() < 1e-12);
        assert!((m.rmse.unwrap() - (13.25f64 / 4.0).sqrt()).abs() < 1e-12);
        assert_eq!(m.accuracy, None);
    }

    /// Weighted metrics by hand. Multiclass y = 0 0 1 1 2, predicted 0 0 0 1 1, weights 1 2 3 1 1
    /// (total 8): right weight 1 + 2 + 1 = 4 → accuracy 0.5. Class 0: TP 3, FP 3 → 6/9;
    /// class 1: TP 1, FP 1, FN 3 → 2/6; class 2: FN 1 → 0; macro (2/3 + 1/3 + 0) / 3 = 1/3.
    #[test]
    fn weighted_metrics_by_hand() {
        let z = array![[1.0f32, 0.0, 0.0], [1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 1.0, 0.0]];
        let w = [1.0f32, 2.0, 3.0, 1.0, 1.0];
        let m = weighted_task_metrics(Task::Multiclass, z.view(), Truth::Classes(&[0, 0, 1, 1, 2]), Some(&w));
        assert_eq!(m.accuracy, Some(0.5));
        assert!((m.macro_f1.unwrap() - 1.0 / 3.0).abs() < 1e-12, "{m:?}");
        // Unit weights give the unweighted metrics.
        let ones = [1.0f32; 5];
        assert_eq!(
            weighted_task_metrics(Task::Multiclass, z.view(), Truth::Classes(&[0, 0, 1, 1, 2]), Some(&ones)),
            task_metrics(Task::Multiclass, z.view(), Truth::Classes(&[0, 0, 1, 1, 2]))
        );
        // Binary: scores −1, 2, 0.5, −0.2 with labels 0 1 0 1, weights 1 1 3 2. Pairs (p, n):
        // (2, −1) right 1·1, (2, 0.5) right 1·3, (−0.2, −1) right 2·1, (−0.2, 0.5) wrong 2·3:
        // AUC = (1 + 3 + 2) / (3 · 4) = 0.5. Accuracy: rows 0 and 1 right → 2/7.
        let z = array![[-1.0f32], [2.0], [0.5], [-0.2]];
        let m =
            weighted_task_metrics(Task::Binary, z.view(), Truth::Classes(&[0, 1, 0, 1]), Some(&[1.0, 1.0, 3.0, 2.0]));
        assert_eq!(m.roc_auc, Some(0.5));
        assert!((m.accuracy.unwrap() - 2.0 / 7.0).abs() < 1e-12);
        // A tie between a positive (weight 2) and a negative (weight 3) counts half: 3 / 6.
        assert_eq!(weighted_roc_auc(&[0.5, 0.5], &[true, false], &[2.0, 3.0]), Some(0.5));
        // Regression, errors 0.5, −2, 3, 0 with weights 2, 1, 1, 0: MSE (0.5 + 4 + 9) / 4,
        // MAE (1 + 2 + 3) / 4.
        let z = array![[1.5f32], [0.0], [3.0], [1.0]];
        let y = array![[1.0f32], [2.0], [0.0], [1.0]];
        let m = weighted_task_metrics(
            Task::Regression(Default::default()),
            z.view(),
            Truth::Matrix(y.view()),
            Some(&[2.0, 1.0, 1.0, 0.0]),
        );
        assert!((m.mse.unwrap() - 13.5 / 4.0).abs() < 1e-12, "{m:?}");
        assert!((m.mae.unwrap() - 1.5).abs() < 1e-12);
        // Multilabel: rows [1,0]→[1,0] (w 3), [1,1]→[0,1] (w 1): label 0 TP 3 FP 1 → 6/7,
        // label 1 TP 1 → 1; subset accuracy 3/4.
        let z = array![[2.0f32, -1.0], [0.5, 0.5]];
        let y = array![[1.0f32, 0.0], [0.0, 1.0]];
        let m = weighted_task_metrics(Task::Multilabel, z.view(), Truth::Matrix(y.view()), Some(&[3.0, 1.0]));
        assert!((m.macro_f1.unwrap() - (6.0 / 7.0 + 1.0) / 2.0).abs() < 1e-12);
        assert!((m.subset_accuracy.unwrap() - 0.75).abs() < 1e-12);
        // Weights summing to zero: nothing defined.
        assert_eq!(
            weighted_task_metrics(Task::Binary, z.view(), Truth::Classes(&[0, 1]), Some(&[0.0, 0.0])),
            Metrics::default()
        );
    }

    #[test]
    fn binary_metrics() {
        let z = array![[-1.0f32], [2.0], [0.5], [-0.2]];
        let m = task_metrics(Task::Binary, z.view(), Truth::Classes(&[0, 1, 0, 1]));
        assert_eq!(m.accuracy, Some(0.5));
        // Positives score 2 and −0.2, negatives −1 and 0.5: right pairs (2,−1), (2,0.5), (−0.2,−1) = 3/4.
        assert_eq!(m.roc_auc, Some(0.75));
        assert_eq!("auc".parse::<Metric>().unwrap(), Metric::RocAuc);
        assert_eq!(Metric::primary(Task::Binary), Metric::RocAuc);
        assert!(!Metric::Mse.higher_is_better());
    }
}
