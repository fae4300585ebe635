//! [`Grand`]: the inputs of a GRAND run checked and prepared once, and [`Grand::fit`], one seed's
//! training with early stopping.

use super::views::{consistency, dropnode_mask, inference_features, view};
use super::{GrandConfig, GrandError};
use crate::config::seed_streams;
use crate::data::Dataset;
use crate::graph::hops::NormalizedAdjacency;
use crate::graph::NeighborGraph;
use crate::model::{glorot_init, Dropout};
use crate::neighbors::{adjacency_over, row_normalize_l1};
use crate::tensor::{to_array2, to_tensor};
use crate::train::{Optimizer, OptimizerConfig};
use candle_core::{DType, Device, Tensor, Var, D};
use candle_nn::{Module, VarBuilder, VarMap};
use ndarray::{Array2, ArrayView2};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// Rows of the samples with their class indices.
#[derive(Debug, Clone)]
struct Labeled {
    rows: Vec<u32>,
    labels: Vec<u32>,
}

/// A GRAND problem: the row-normalized features of every node, `Â`, the labeled training nodes,
/// the scored validation (and test) nodes and the classes, checked once for any number of seeds.
#[derive(Debug)]
pub struct Grand {
    config: GrandConfig,
    /// `X`, rows L1-normalized.
    x: Array2<f32>,
    adjacency: NormalizedAdjacency,
    /// `1/(K+1)·Σ_k Â^k·(1 − δ)·X`, what the model reads at evaluation.
    inference: Array2<f32>,
    class_names: Vec<String>,
    train: Labeled,
    validation: Labeled,
    test: Option<Labeled>,
}

/// One epoch's figures, for progress reports.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct GrandEpoch {
    /// The epoch, from 1.
    pub epoch: usize,
    /// [`GrandConfig::max_epochs`].
    pub max_epochs: usize,
    /// The training loss (cross-entropy + `λ`·consistency).
    pub loss: f64,
    /// The validation loss (mean cross-entropy).
    pub validation_loss: f64,
    /// The validation accuracy.
    pub validation_accuracy: f64,
}

/// What one seed's run did (serializable for `--json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct GrandReport {
    /// The seed (weights, DropNode masks, dropout masks).
    pub seed: u64,
    /// The kept model's validation accuracy.
    pub validation_accuracy: f64,
    /// The kept model's validation loss.
    pub validation_loss: f64,
    /// The kept model's test accuracy, when test nodes were given.
    pub test_accuracy: Option<f64>,
    /// Epochs run.
    pub epochs: usize,
    /// The epoch whose weights were kept (the lowest validation loss), from 1.
    pub kept_epoch: usize,
    /// Wall-clock seconds of the training.
    pub seconds: f64,
    /// `seconds / epochs`.
    pub epoch_seconds: f64,
}

/// One seed's result: every node's class probabilities (rows in the samples' order) and the report.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct GrandFit {
    /// `n × C` probabilities of the kept model.
    pub probabilities: Array2<f32>,
    /// What the run did.
    pub report: GrandReport,
}

impl Grand {
    /// Checks the inputs and prepares `X` and `Â`: `samples` holds every node (features; labels
    /// ignored), `train` the labeled nodes by id with their labels, `validation` and `test` the
    /// scored nodes. The classes are the training nodes' class names (their labels' indices when
    /// they have none); validation and test labels are matched to them by name.
    ///
    /// # Errors
    /// [`GrandError::InvalidConfig`], [`GrandError::UnknownNode`] (an id not among the samples),
    /// [`GrandError::NoLabels`], [`GrandError::Empty`], [`GrandError::UnknownClass`],
    /// [`GrandError::Propagate`] (token-id features, or more rows than 32-bit indices address).
    pub fn new(
        samples: &Dataset,
        graph: &NeighborGraph,
        train: &Dataset,
        validation: &Dataset,
        test: Option<&Dataset>,
        config: GrandConfig,
    ) -> Result<Grand, GrandError> {
        config.validate()?;
        let adjacency = adjacency_over(samples, graph)?;
        let class_names: Vec<String> = match (train.class_names(), train.labels()) {
            (_, None) => return Err(GrandError::NoLabels { set: "train" }),
            (Some(names), Some(_)) => names.to_vec(),
            (None, Some(labels)) => {
                let classes = labels.iter().max().map_or(0, |&m| m as usize + 1);
                (0..classes).map(|c| c.to_string()).collect()
            }
        };
        let labeled = |set: &'static str, ds: &Dataset| -> Result<Labeled, GrandError> {
            if ds.is_empty() {
                return Err(GrandError::Empty { set });
            }
            let Some(labels) = ds.labels() else { return Err(GrandError::NoLabels { set }) };
            let rows: Vec<Option<usize>> = ds.ids().iter().map(|id| samples.position(id)).collect();
            if let Some(at) = rows.iter().position(Option::is_none) {
                let count = rows.iter().filter(|r| r.is_none()).count();
                return Err(GrandError::UnknownNode { set, id: ds.ids()[at].clone(), count });
            }
            let unknown = |label: String| GrandError::UnknownClass { set, label, classes: class_names.join(", ") };
            let labels = labels
                .iter()
                .map(|&l| match ds.class_names() {
                    // Matched by name: another file may order (or hold) its classes differently.
                    Some(names) => {
                        let name = names.get(l as usize).cloned().unwrap_or_else(|| l.to_string());
                        class_names.iter().position(|c| *c == name).map(|c| c as u32).ok_or_else(|| unknown(name))
                    }
                    None if (l as usize) < class_names.len() => Ok(l),
                    None => Err(unknown(l.to_string())),
                })
                .collect::<Result<Vec<u32>, GrandError>>()?;
            Ok(Labeled { rows: rows.into_iter().flatten().map(|r| r as u32).collect(), labels })
        };
        let train = labeled("train", train)?;
        let validation = labeled("validation", validation)?;
        let test = test.map(|t| labeled("test", t)).transpose()?;

        let mut x = samples.features().as_standard_layout().into_owned();
        row_normalize_l1(&mut x);
        let inference = inference_features(&adjacency, x.view(), config.dropnode, config.order);
        Ok(Grand { config, x, adjacency, inference, class_names, train, validation, test })
    }

    /// The classes, in the order of the probabilities' columns.
    pub fn class_names(&self) -> &[String] {
        &self.class_names
    }

    /// The settings.
    pub fn config(&self) -> &GrandConfig {
        &self.config
    }

    /// The validation and (when test nodes were given) test accuracies of `probabilities` (`n × C`,
    /// the samples' rows), e.g. an ensemble's mean.
    pub fn accuracies(&self, probabilities: ArrayView2<'_, f32>) -> (f64, Option<f64>) {
        (accuracy(probabilities, &self.validation), self.test.as_ref().map(|t| accuracy(probabilities, t)))
    }

    /// Trains one model from `seed` (weights, DropNode and dropout masks) until early stopping or
    /// [`GrandConfig::max_epochs`], calling `progress` after every epoch, and returns the kept
    /// model's probabilities for every node. The same seed gives the same result (at the same
    /// thread count).
    ///
    /// # Errors
    /// [`GrandError::Candle`] if a tensor operation fails.
    pub fn fit(&self, seed: u64, progress: &mut dyn FnMut(&GrandEpoch)) -> Result<GrandFit, GrandError> {
        let started = std::time::Instant::now();
        let cfg = &self.config;
        let device = Device::Cpu;
        let (n, features) = self.x.dim();
        let classes = self.class_names.len();
        let map = VarMap::new();
        let vb = VarBuilder::from_varmap(&map, DType::F32, &device);
        let hidden = candle_nn::linear(features, cfg.hidden, vb.pp("hidden"))?;
        let out = candle_nn::linear(cfg.hidden, classes, vb.pp("logits"))?;
        glorot_init(&map, seed)?;
        // In name order, as the trainer's optimizer takes them.
        let vars: Vec<Var> = {
            let data = map.data().lock().map_err(|_| candle_core::Error::Msg("variable map lock poisoned".into()))?;
            let mut named: Vec<(&String, &Var)> = data.iter().collect();
            named.sort_by(|a, b| a.0.cmp(b.0));
            named.into_iter().map(|(_, v)| v.clone()).collect()
        };
        let mut optimizer = Optimizer::new(OptimizerConfig::Adam { learning_rate: cfg.learning_rate }, vars.clone())
            .with_weight_decay(cfg.weight_decay);
        let input_dropout = Dropout::new(cfg.input_dropout, seed ^ seed_streams::INPUT_DROPOUT);
        let hidden_dropout = Dropout::new(cfg.hidden_dropout, seed ^ seed_streams::DROPOUT);
        let mut dropnode = ChaCha8Rng::seed_from_u64(seed ^ seed_streams::DROPNODE);
        let forward = |x: &Tensor, train: bool| -> candle_core::Result<Tensor> {
            let h = input_dropout.forward_t(x, train)?;
            let h = hidden.forward(&h)?.relu()?;
            let h = hidden_dropout.forward_t(&h, train)?;
            out.forward(&h)
        };
        let train_rows = Tensor::new(self.train.rows.as_slice(), &device)?;
        let train_labels = Tensor::new(self.train.labels.as_slice(), &device)?;
        let inference = to_tensor(self.inference.view())?;
        let evaluate = || -> candle_core::Result<Array2<f32>> {
            to_array2(&candle_nn::ops::log_softmax(&forward(&inference, false)?, D::Minus1)?)
        };
        let snapshot = || vars.iter().map(|v| v.as_tensor().copy()).collect::<candle_core::Result<Vec<Tensor>>>();

        let (mut loss_min, mut accuracy_max, mut kept_loss) = (f64::INFINITY, 0.0f64, f64::INFINITY);
        let (mut bad_epochs, mut kept_epoch, mut epochs) = (0usize, 0usize, 0usize);
        let mut kept = snapshot()?;
        for epoch in 1..=cfg.max_epochs {
            epochs = epoch;
            let mut cross_entropy: Option<Tensor> = None;
            let mut ps = Vec::with_capacity(cfg.views);
            for _ in 0..cfg.views {
                let keep = dropnode_mask(&mut dropnode, n, cfg.dropnode);
                let x = to_tensor(view(&self.adjacency, self.x.view(), &keep, cfg.order).view())?;
                let log_p = candle_nn::ops::log_softmax(&forward(&x, true)?, D::Minus1)?;
                let ce = candle_nn::loss::nll(&log_p.index_select(&train_rows, 0)?, &train_labels)?;
                cross_entropy = Some(match cross_entropy {
                    Some(sum) => (sum + ce)?,
                    None => ce,
                });
                ps.push(log_p.exp()?);
            }
            let Some(cross_entropy) = cross_entropy else { return Err(no_views().into()) };
            let loss = ((cross_entropy / cfg.views as f64)? + (consistency(&ps, cfg.temperature)? * cfg.lambda)?)?;
            let grads = loss.backward()?;
            optimizer.step(&grads)?;

            let log_p = evaluate()?;
            let (validation_loss, validation_accuracy) = scores(log_p.view(), &self.validation);
            if validation_loss <= loss_min || validation_accuracy >= accuracy_max {
                if validation_loss <= kept_loss {
                    kept_loss = validation_loss;
                    kept_epoch = epoch;
                    kept = snapshot()?;
                }
                loss_min = loss_min.min(validation_loss);
                accuracy_max = accuracy_max.max(validation_accuracy);
                bad_epochs = 0;
            } else {
                bad_epochs += 1;
            }
            let loss = f64::from(loss.to_scalar::<f32>()?);
            progress(&GrandEpoch { epoch, max_epochs: cfg.max_epochs, loss, validation_loss, validation_accuracy });
            if bad_epochs >= cfg.patience {
                break;
            }
        }
        for (var, value) in vars.iter().zip(&kept) {
            var.set(value)?;
        }
        let log_p = evaluate()?;
        let (validation_loss, validation_accuracy) = scores(log_p.view(), &self.validation);
        let test_accuracy = self.test.as_ref().map(|t| accuracy(log_p.view(), t));
        let probabilities = log_p.mapv(f32::exp);
        let seconds = started.elapsed().as_secs_f64();
        let report = GrandReport {
            seed,
            validation_accuracy,
            validation_loss,
            test_accuracy,
            epochs,
            kept_epoch,
            seconds,
            epoch_seconds: seconds / epochs.max(1) as f64,
        };
        Ok(GrandFit { probabilities, report })
    }
}

/// [`GrandConfig::validate`] rejects 0 views, so this is never returned.
fn no_views() -> candle_core::Error {
    candle_core::Error::Msg("GRAND: no views (views must be at least 1)".into())
}

/// The mean cross-entropy and the accuracy of log-probabilities `log_p` on `set`.
fn scores(log_p: ArrayView2<'_, f32>, set: &Labeled) -> (f64, f64) {
    let loss: f64 =
        set.rows.iter().zip(&set.labels).map(|(&r, &l)| -f64::from(log_p[[r as usize, l as usize]])).sum::<f64>();
    (loss / set.rows.len().max(1) as f64, accuracy(log_p, set))
}

/// The share of `set` whose largest value in `p` (probabilities or log-probabilities) is at its label.
fn accuracy(p: ArrayView2<'_, f32>, set: &Labeled) -> f64 {
    let correct = set
        .rows
        .iter()
        .zip(&set.labels)
        .filter(|(&r, &l)| {
            let row = p.row(r as usize);
            let best = row.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map_or(0, |(i, _)| i);
            best == l as usize
        })
        .count();
    correct as f64 / set.rows.len().max(1) as f64
}
