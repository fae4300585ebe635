//! `nsl train`: train a model, optionally graph-regularized, and save the run.

use super::progress::{spinner, TrainBar};
use super::{flag, from_text, run_error, set_pair, set_threads, ColumnArgs};
use anyhow::{bail, Context, Result};
use clap::{Args, Parser, ValueEnum};
use nsl::augment::AugmentConfig;
use nsl::eval::Metric;
use nsl::loss::{ClassWeights, Task};
use nsl::model::ModelSpec;
use nsl::regularize::{AdvRegConfig, GraphRegConfig, VatConfig};
use nsl::run::{DistillSpec, FitHooks, FittedRun, GraphInput, Input, Packed, RunSpec};
use nsl::train::{
    LrSchedule, MultiplierSchedule, MultiplierSchedules, OptimizerConfig, TrainConfig, TrainState, UnlabeledConfig,
};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Flags of `nsl train`.
#[derive(Args, Debug)]
#[command(after_help = "Example (NSL's Cora tutorial):\n  \
    nsl train --samples train.parquet --pool test.parquet --graph cora_graph.parquet --model mlp:50,50 --dropout 0.5 \\\n    \
    --graph-reg multiplier=0.1,neighbors=1,distance=l2 --epochs 100 --batch-size 128 --test test.parquet --out runs/cora")]
pub struct TrainArgs {
    /// TOML file with any of the settings below but the column names and `--json` (e.g. `samples =
    /// "train.parquet"`, `epochs = 100`, `graph_reg = "multiplier=0.1,neighbors=2"`, `strict = true`);
    /// unknown keys are errors. Flags given on the command line win.
    #[arg(long, value_name = "FILE", help_heading = "Inputs")]
    config: Option<PathBuf>,
    #[command(flatten)]
    columns: ColumnArgs,
    #[command(flatten)]
    settings: TrainSettings,
    /// Print the summary as JSON on standard output.
    #[arg(long, help_heading = "Output")]
    json: bool,
    /// Continue the interrupted run whose `--out` was RUN from its last completed epoch (the state
    /// in `RUN.partial/`), with the settings it started with: other settings may be given only
    /// with the same values (`--config` not at all). Ends with the weights of an uninterrupted run.
    #[arg(long, value_name = "RUN", help_heading = "Output")]
    resume: Option<PathBuf>,
}

/// Declares a struct of `Option` fields, and its method `or`, which fills the fields left unset
/// from another value: one list of fields serves the flags, the `--config` file and their merge.
macro_rules! settings {
    ($(#[$meta:meta])* $vis:vis struct $name:ident { $($(#[$field_meta:meta])* $field:ident: Option<$ty:ty>,)* }) => {
        $(#[$meta])*
        $vis struct $name { $($(#[$field_meta])* $field: Option<$ty>,)* }

        impl $name {
            /// `self`, with the settings it leaves unset taken from `under`.
            fn or(self, under: Self) -> Self {
                $name { $($field: self.$field.or(under.$field),)* }
            }

            /// The flags `self` sets to another value than `saved` has (`--name NEW` vs `OLD`).
            fn conflicts(&self, saved: &Self) -> Vec<String> {
                let mut out = Vec::new();
                $(
                    if let Some(new) = &self.$field {
                        let old = saved.$field.as_ref().map(|v| format!("{v:?}"));
                        if old.as_deref() != Some(format!("{new:?}").as_str()) {
                            out.push(format!(
                                "--{} {new:?} (the run has {})",
                                stringify!($field).replace('_', "-"),
                                old.unwrap_or_else(|| "it unset".into())
                            ));
                        }
                    }
                )*
                out
            }
        }
    };
}

settings! {
    /// The settings of `nsl train`, from the flags or from the `--config` file (same names, with `_`
    /// for `-`). Unset means the default written in each doc.
    #[derive(Args, Deserialize, Default, Clone, Debug)]
    #[group(skip)]
    #[serde(default, deny_unknown_fields)]
    struct TrainSettings {
        /// Labeled training samples (Parquet, CSV, IDX, LINQS or TFRecord of `tf.train.Example`s).
        #[arg(help_heading = "Inputs", long, value_name = "FILE")]
        samples: Option<PathBuf>,
        /// Train on packed samples, whose records carry their neighbors, in place of `--samples`,
        /// `--graph` and `--pool`. `--packed DIR_OR_FILE`: a packed Parquet table (`nsl pack-nbrs
        /// … --output packed.parquet`, or a directory of parts such as scripts/spark/pack_nbrs.py
        /// writes), streamed every epoch through a seeded shuffle buffer (`--shuffle-buffer`), so
        /// memory holds the buffer, not the table; multiclass or binary labels only. `--packed` alone
        /// (or `--packed FILE.tfr`): the `--samples` are NSL-packed TFRecord records (`pack_nbrs`
        /// output: `NL_num_nbrs`, `NL_nbr_<j>_weight`, `NL_nbr_<j>_<feature>`), read whole; needs
        /// `--graph-reg`. Default: off.
        #[arg(help_heading = "Inputs", long, value_name = "DIR_OR_FILE", num_args = 0..=1, default_missing_value = "true", value_parser = parse_packed)]
        #[serde(deserialize_with = "packed_setting")]
        packed: Option<Packed>,
        /// With `--packed DIR_OR_FILE` (Parquet): rows of the shuffle buffer. A buffer at least as
        /// large as the table gives the batches (and the model) of in-memory training with the same
        /// seed; a smaller one shuffles locally (each row leaves the buffer at a random draw after at
        /// least N rows came in). Default 10000.
        #[arg(help_heading = "Inputs", long, value_name = "N")]
        shuffle_buffer: Option<usize>,
        /// With `--packed DIR` (Parquet parts): read the parts in sorted name order every epoch
        /// instead of a seeded order drawn anew each epoch. Default: off (seeded order).
        #[arg(help_heading = "Inputs", long, num_args = 0, default_missing_value = "true")]
        keep_part_order: Option<bool>,
        /// Extra samples that may serve as neighbors but are not trained on with their labels (NSL's Cora
        /// tutorial uses the test papers).
        #[arg(help_heading = "Inputs", long, value_name = "FILE")]
        pool: Option<PathBuf>,
        /// Neighbor graph (Parquet or NSL TSV) for graph regularization.
        #[arg(help_heading = "Graph regularization", long, value_name = "FILE")]
        graph: Option<PathBuf>,
        /// Graph regularization, as `key=value` pairs: `multiplier` (default 0.01; sets the three
        /// below), `multiplier-ll` | `multiplier-lu` | `multiplier-uu` (per edge type between labeled
        /// and `--unlabeled` centers, default `multiplier`), `neighbors` (max per sample, default 1),
        /// `hops` (neighbors from the R-hop neighborhood weighted by powers of the normalized adjacency,
        /// default 1), `distance` (l1 | l2 | cosine | kl | jsd | contrastive, default l2; contrastive is
        /// Graph-MLP's loss: pull neighbors, push the batch's other centers), `temperature` (its τ,
        /// default 0.5), `in-batch` (true: a center's neighbors are the batch's centers among them,
        /// Graph-MLP's positives; default false), `transform` (none | softmax | sigmoid, default none),
        /// `reduction` (sum_by_nonzero_weights | sum | mean | sum_over_batch_size, default
        /// sum_by_nonzero_weights), `sum-over-axis` (default -1, as NSL's tutorials; `none` for
        /// elementwise), `layer` (a hidden layer name, default the logits), `stop-gradient` (true |
        /// false, default false). Needs `--graph` (or `--packed`).
        #[arg(help_heading = "Graph regularization", long, value_name = "KEY=VALUE,…", value_parser = GraphRegConfig::from_kv)]
        #[serde(deserialize_with = "from_text")]
        graph_reg: Option<GraphRegConfig>,
        /// Adversarial regularization, as `key=value` pairs: `multiplier` (default 0.2), `step-size`
        /// (default 0.001; NSL's MNIST tutorial: 0.2), `norm` (l1 | l2 | inf, default l2, NSL's;
        /// `nsl evaluate --norm` attacks in L∞ by default, the robustness benchmarks' norm),
        /// `pgd-iterations` (default 1 = FGSM), `epsilon` (PGD ball radius, default none), `clip`
        /// (MIN:MAX bounds of the perturbed features, e.g. 0:1 for pixels, default none), `random-init`
        /// (default false), `loss` (supervised = NSL's form, default; or a distance l1 | l2 | kl | jsd |
        /// cosine between the sample's and the neighbor's outputs: the neighbor is still crafted from
        /// the labels' loss gradient, only the loss term compares outputs), `objective` (nsl = NSL's
        /// L(x) + m·L(x_adv), default; madry = m·L(x_adv) alone, PGD from a random start (default m 1:
        /// with no clean term m only scales the loss); trades = CE(x) + m·KL(f(x) ‖ f(x′)), x′ maximizing
        /// that KL from x + 0.001·N(0, I) (m = β, default 6); mart = boosted CE(x′) + m·KL·(1 − p_y(x))
        /// (m = λ, default 6); madry, trades and mart need `epsilon` and run their inner PGD in inference
        /// mode), `epsilon-warmup` (epochs over which ε and the step size ramp linearly from 0, default 0).
        /// Combines with `--graph-reg`. Robust MNIST: `--config examples/recipes/robust_mnist.toml`.
        #[arg(help_heading = "Adversarial regularization", long, value_name = "KEY=VALUE,…", value_parser = AdvRegConfig::from_kv)]
        #[serde(deserialize_with = "from_text")]
        adv_reg: Option<AdvRegConfig>,
        /// Augment the training images on the fly (item shape `[c, h, w]`, e.g. IDX digits), as
        /// `key=value` pairs: `crop=N` (pad N zeros on each side, then crop back at a random offset:
        /// a random shift by up to N pixels), `flip` (mirror left to right with probability ½; not
        /// for digits). Drawn from `--seed`, the epoch and the batch (reproducible, resumable), before
        /// `--adv-reg` crafts its neighbors. Validation and test samples are never augmented.
        /// Default: none (`none`).
        #[arg(help_heading = "Training", long, value_name = "crop=N,flip", value_parser = AugmentConfig::from_kv)]
        #[serde(deserialize_with = "from_text")]
        augment: Option<AugmentConfig>,
        /// Unlabeled samples to train as centers too (Neural Graph Machines): each batch of labeled
        /// samples is joined by unlabeled ones (`--unlabeled-ratio`), the graph loss covers their
        /// edges (`multiplier-uu`, `multiplier-lu` in `--graph-reg`), `--vat` and `--entropy` act on
        /// them; their labels, if any, are never used. Also serves as `--pool` when that is not given.
        #[arg(help_heading = "Graph regularization", long, value_name = "FILE")]
        unlabeled: Option<PathBuf>,
        /// With `--unlabeled`: unlabeled centers per labeled center in each batch. Default 1.
        #[arg(help_heading = "Graph regularization", long, value_name = "R")]
        unlabeled_ratio: Option<f64>,
        /// With `--unlabeled`: weight of the entropy of the predictions on unlabeled centers (entropy
        /// minimization). Default 0 (off).
        #[arg(help_heading = "Graph regularization", long, value_name = "W")]
        entropy: Option<f64>,
        /// Virtual adversarial regularization (needs no label; NSL's `VirtualAdvConfig`), as
        /// `key=value` pairs: `multiplier` (default 1), `epsilon` (perturbation radius, default 0.001),
        /// `norm` (l1 | l2 | inf, default l2,
        /// NSL's; `nsl evaluate --norm` attacks in L∞ by default, the robustness benchmarks' norm), `steps` (power iterations, default 1), `xi` (finite
        /// difference, default 1e-6; 1e-3 suits f32 features better), `distance` (l1 | l2 | cosine |
        /// kl | jsd; default NSL's l2 on the logits). On labeled and unlabeled centers.
        #[arg(help_heading = "Adversarial regularization", long, value_name = "KEY=VALUE,…", value_parser = VatConfig::from_kv)]
        #[serde(deserialize_with = "from_text")]
        vat: Option<VatConfig>,
        /// Distillation from a graph-aware teacher (GLNN, Zhang et al. 2022), as `key=value` pairs:
        /// `teacher=FILE` (required: `nsl predict`'s CSV of a teacher run, every `p_<class>` column;
        /// or any samples table whose features are class probabilities, e.g. Parquet; matched to the
        /// training and `--unlabeled` samples by id, each row divided by its sum; the file name
        /// cannot hold a comma), `multiplier` (default 1), `temperature` (T > 0, default 1). Adds
        /// `multiplier · T² · mean KL(teacher^{1/T} ‖ softmax(logits / T))` over the batch's
        /// labeled and unlabeled centers; the model still reads the features alone. Multiclass only.
        /// Default: none. With `--config`, each pair given wins over the recipe's `distill` and the
        /// others are kept (`--distill teacher=mine.csv` keeps the recipe's multiplier).
        #[arg(help_heading = "Graph regularization", long, value_name = "teacher=FILE,…", value_parser = DistillPairs::from_str)]
        #[serde(deserialize_with = "from_text")]
        distill: Option<DistillPairs>,
        /// Stop when the `--validation` metric has not improved for N epochs and keep the best
        /// epoch's weights: `patience=N` (or just `N`), optionally `,metric=NAME` (accuracy |
        /// macro-f1 | micro-f1 | subset-accuracy | roc-auc | mse | mae | rmse; default the task's:
        /// accuracy for multiclass, roc-auc for binary, macro-f1 for multilabel, mse (lower is
        /// better) for regression). Default: off.
        #[arg(help_heading = "Training", long, value_name = "patience=N[,metric=NAME]", value_parser = parse_patience)]
        #[serde(deserialize_with = "from_text")]
        early_stopping: Option<Patience>,
        /// Write the adversarial neighbors generated during training as a neighbor graph (`kind =
        /// adversarial`; Parquet or TSV by extension) plus a node table `NAME.nodes.parquet` (perturbed
        /// features, perturbation norm, predictions). Needs `--adv-reg`.
        #[arg(help_heading = "Adversarial regularization", long, value_name = "FILE")]
        record_adversarial: Option<PathBuf>,
        /// With `--record-adversarial`: record every N-th epoch (and the last). Default 1.
        #[arg(help_heading = "Adversarial regularization", long, value_name = "N")]
        record_every: Option<usize>,
        /// What to predict: `multiclass` (softmax cross-entropy, one output per class), `binary`
        /// (labels 0/1 or two class names; one output, sigmoid cross-entropy), `multilabel` (the
        /// label column holds a list of class names or indices per sample; sigmoid cross-entropy per
        /// label), `regression` (the label column holds a number, or a list of numbers; linear
        /// outputs, `loss=mse` or `loss=huber` with `delta=D` (default 1), e.g.
        /// `regression,loss=huber,delta=1`). Default multiclass.
        #[arg(help_heading = "Task and weights", long, value_name = "TASK", value_parser = Task::from_str)]
        #[serde(deserialize_with = "from_text")]
        task: Option<Task>,
        /// Column of per-sample weights in the training samples (Parquet or CSV; finite, ≥ 0): each
        /// sample's weight multiplies its supervised, graph (per center), adversarial and virtual
        /// adversarial loss terms, as NSL's `sample_weight_key`. Name the feature columns (or use a
        /// `features` list column) so that it is not read as a feature. `--validation` and `--test`
        /// tables that have the column are scored with weighted loss and metrics too (a warning
        /// says when one has not). Default: every weight 1.
        #[arg(help_heading = "Task and weights", long, value_name = "NAME")]
        weight_column: Option<String>,
        /// Class weights, multiplied into the sample weights (multiclass and binary only):
        /// `balanced` (n / (k · countₖ), scikit-learn's) or a file of `class<TAB>weight` lines
        /// (class by name, or index without names; classes not listed weigh 1). Default: none.
        #[arg(help_heading = "Task and weights", long, value_name = "balanced|FILE", value_parser = ClassWeights::from_str)]
        #[serde(deserialize_with = "from_text")]
        class_weights: Option<ClassWeights>,
        /// Model: `mlp:UNITS,…[,relu|tanh|sigmoid|gelu]` (the activation, default relu; others train
        /// slower), `cnn[:FILTERS,…][,dense=UNITS+…]` (3×3 convolutions, 2×2 pools; default
        /// `cnn:32,64,64,dense=64`, NSL's tutorial CNN) or `bow[:EMBED,UNITS,…][,combiner=mean|sum|sqrtn]
        /// [,bag-activation=none|relu|tanh|sigmoid|gelu]` (token-id lists: embeddings pooled per list,
        /// default mean and no bag activation, then dense layers; `bow` = `bow:50`). Default `mlp:50,50`.
        #[arg(help_heading = "Model", long, value_name = "SPEC", value_parser = ModelSpec::from_str)]
        #[serde(deserialize_with = "from_text")]
        model: Option<ModelSpec>,
        /// Dropout rate after hidden/dense layers, in training only. Default 0.5 for mlp, 0 for cnn.
        #[arg(help_heading = "Model", long, value_name = "RATE")]
        dropout: Option<f32>,
        /// Passes over the training samples. Default 10.
        #[arg(help_heading = "Training", long)]
        epochs: Option<usize>,
        /// Learning-rate schedule, evaluated before every step: `constant` (default),
        /// `step,every=E[,gamma=G]` (× G every E epochs, G default 0.1), `cosine[,min=M]` (Keras'
        /// CosineDecay per step down to M, default 0, over the run), `exponential,rate=R` (× R per
        /// epoch, continuously); each may add `warmup=W`: a linear ramp over the first W epochs
        /// (default 0), after which the decay starts.
        #[arg(help_heading = "Training", long, value_name = "SPEC", value_parser = LrSchedule::from_str)]
        #[serde(deserialize_with = "from_text")]
        lr_schedule: Option<LrSchedule>,
        /// Schedule of the `--graph-reg` multiplier over the optimizer's steps (NSL's DecayConfig,
        /// which NSL's Keras wrappers never use, plus a warm-up), as `key=value` pairs: `steps`
        /// (NSL's decay_steps: turns the decay on), `decay` (exponential | inverse-time | natural-exp,
        /// default exponential), `rate` (default 0.96), `min` (floor, default 0), `warmup` (steps of
        /// linear ramp from 0, default 0). Default: none, the multiplier as given.
        #[arg(help_heading = "Graph regularization", long, value_name = "KEY=VALUE,…", value_parser = MultiplierSchedule::from_kv)]
        #[serde(deserialize_with = "from_text")]
        graph_reg_schedule: Option<MultiplierSchedule>,
        /// Schedule of the `--adv-reg` multiplier, as `--graph-reg-schedule`. Default: none.
        #[arg(help_heading = "Adversarial regularization", long, value_name = "KEY=VALUE,…", value_parser = MultiplierSchedule::from_kv)]
        #[serde(deserialize_with = "from_text")]
        adv_reg_schedule: Option<MultiplierSchedule>,
        /// Schedule of the `--vat` multiplier, as `--graph-reg-schedule`. Default: none.
        #[arg(help_heading = "Adversarial regularization", long, value_name = "KEY=VALUE,…", value_parser = MultiplierSchedule::from_kv)]
        #[serde(deserialize_with = "from_text")]
        vat_schedule: Option<MultiplierSchedule>,
        /// Save the state needed to resume (`nsl train --resume`) after every N-th epoch into
        /// `OUT.partial/` (removed when the run is saved); 0 saves none. Default: after an epoch
        /// when 30 s have passed since the start or the last save (a save costs a few milliseconds
        /// of fsync, as much as a whole epoch of a small model). Not with `--record-adversarial`
        /// (whose record a state does not hold).
        #[arg(help_heading = "Output", long, value_name = "N")]
        checkpoint_every: Option<usize>,
        /// Samples per batch. Default 32 (Keras' default).
        #[arg(help_heading = "Training", long)]
        batch_size: Option<usize>,
        /// Optimizer. Default adam.
        #[arg(help_heading = "Training", long, value_name = "NAME")]
        optimizer: Option<OptimizerName>,
        /// Learning rate. Default 0.001 for adam, 0.01 for sgd (Keras' defaults).
        #[arg(help_heading = "Training", long, value_name = "LR")]
        learning_rate: Option<f64>,
        /// L2 weight decay λ ≥ 0: `λ·θ` is added to every parameter's gradient (PyTorch's
        /// `weight_decay`, as Graph-MLP trains; Keras' optimizers have none). Default 0 (off).
        #[arg(help_heading = "Training", long, value_name = "LAMBDA")]
        weight_decay: Option<f64>,
        /// Seed of the weights, dropout and shuffling. Default 0.
        #[arg(help_heading = "Training", long)]
        seed: Option<u64>,
        /// Seed of the initial weights and dropout masks only, when they should differ from `--seed`'s
        /// (e.g. two models compared on the same batches from independent starts, as in NSL's
        /// tutorial). Default: `--seed`.
        #[arg(help_heading = "Training", long, value_name = "SEED")]
        init_seed: Option<u64>,
        /// CPU threads. Default: all cores (on 2 cores, 1 is often faster for small models).
        #[arg(help_heading = "Training", long)]
        threads: Option<usize>,
        /// Labeled samples to evaluate after every epoch (shown in the history and the curves).
        #[arg(help_heading = "Inputs", long, value_name = "FILE")]
        validation: Option<PathBuf>,
        /// Labeled samples to evaluate at the end (the accuracy `nsl evaluate` reproduces).
        #[arg(help_heading = "Inputs", long, value_name = "FILE")]
        test: Option<PathBuf>,
        /// Fail if the graph names ids that are neither training nor pool samples (default: skip them and
        /// report the count).
        #[arg(help_heading = "Graph regularization", long, num_args = 0, default_missing_value = "true")]
        strict: Option<bool>,
        /// Run directory: weights, model.json, columns.json (the input columns `evaluate` and `predict`
        /// reuse), history (JSON, CSV), curves.svg, summary.json. Default `runs/train`. An earlier run there is
        /// replaced when this one is saved, as Keras' `model.save` (`overwrite=True`), with a warning when
        /// training starts; a directory holding other files is refused.
        #[arg(help_heading = "Output", long, value_name = "DIR")]
        out: Option<PathBuf>,
    }
}

/// `--packed`'s value: alone (`true`), the `--samples` are NSL-packed TFRecord records;
/// `--packed PATH`, a packed Parquet table (file or directory of parts) or packed records.
fn parse_packed(s: &str) -> std::result::Result<Packed, String> {
    match s {
        "true" => Ok(Packed::Records),
        "" => Err("--packed: empty path".into()),
        path => Ok(Packed::Path(PathBuf::from(path))),
    }
}

/// `packed` in a `--config` file: `true` (the samples are packed TFRecord records), `false`, or
/// a path.
fn packed_setting<'de, D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Option<Packed>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Value {
        Flag(bool),
        Path(PathBuf),
    }
    Ok(match Option::<Value>::deserialize(deserializer)? {
        None | Some(Value::Flag(false)) => None,
        Some(Value::Flag(true)) => Some(Packed::Records),
        Some(Value::Path(p)) => Some(Packed::Path(p)),
    })
}

/// `--early-stopping`'s value: the patience and the watched metric, if named.
#[derive(Clone, Copy, Debug)]
struct Patience(usize, Option<Metric>);

impl FromStr for Patience {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let bad = || format!("invalid value `{s}` for --early-stopping: expected patience=N[,metric=NAME] with N ≥ 1");
        let (mut patience, mut metric) = (None, None);
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part.split_once('=').unwrap_or(("patience", part));
            match key.trim() {
                "metric" => metric = Some(value.parse::<Metric>().map_err(|e| format!("--early-stopping: {e}"))?),
                "patience" => patience = Some(value.trim().parse::<usize>().ok().filter(|&n| n > 0).ok_or_else(bad)?),
                _ => return Err(bad()),
            }
        }
        Ok(Patience(patience.ok_or_else(bad)?, metric))
    }
}

fn parse_patience(s: &str) -> std::result::Result<Patience, String> {
    s.parse()
}

/// `--optimizer`'s choices.
#[derive(ValueEnum, Deserialize, Clone, Copy, Debug)]
#[serde(rename_all = "lowercase")]
enum OptimizerName {
    // Adam, with Keras' defaults.
    Adam,
    // Plain stochastic gradient descent.
    Sgd,
}

impl From<OptimizerName> for OptimizerConfig {
    fn from(name: OptimizerName) -> Self {
        match name {
            OptimizerName::Adam => OptimizerConfig::adam(),
            OptimizerName::Sgd => OptimizerConfig::sgd(),
        }
    }
}

/// `--distill`'s `key=value` pairs as written, each checked as [`DistillSpec::from_kv`] checks
/// them; the teacher may come from the `--config` file's `distill` ([`DistillPairs::over`]).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct DistillPairs(String);

impl FromStr for DistillPairs {
    type Err = nsl::ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let has_teacher = s.split(',').any(|p| p.split('=').next().is_some_and(|k| k.trim() == "teacher"));
        // Checked with a stand-in teacher when none is given: the recipe's completes it.
        if has_teacher {
            DistillSpec::from_kv(s)?;
        } else {
            DistillSpec::from_kv(&format!("teacher=-,{s}"))?;
        }
        Ok(DistillPairs(s.trim().to_string()))
    }
}

impl DistillPairs {
    /// These pairs over `under`'s: each pair here replaces the same key there, the others are kept.
    pub(super) fn over(self, under: Option<DistillPairs>) -> DistillPairs {
        let Some(under) = under else { return self };
        let merged = self
            .0
            .split(',')
            .filter_map(|p| p.split_once('='))
            .fold(under.0, |list, (key, value)| set_pair(&list, key.trim(), value.trim()));
        DistillPairs(merged)
    }

    /// The library's setting: needs a `teacher`.
    fn spec(&self) -> Result<DistillSpec, nsl::ConfigError> {
        DistillSpec::from_kv(&self.0)
    }
}

impl std::fmt::Display for DistillPairs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The flags over the `--config` file: a flag replaces the file's setting, except `--distill`,
/// whose pairs replace the file's one by one.
fn merged(flags: TrainSettings, file: TrainSettings) -> TrainSettings {
    let distill = match (flags.distill.clone(), file.distill.clone()) {
        (Some(given), under) => Some(given.over(under)),
        (None, under) => under,
    };
    TrainSettings { distill, ..flags.or(file) }
}

/// Runs `nsl train`.
pub fn run(args: &TrainArgs) -> Result<()> {
    if let Some(run) = &args.resume {
        return resume(args, run);
    }
    let text = match &args.config {
        Some(path) => Some(std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?),
        None => None,
    };
    let file = config_file(args.config.as_deref(), text.as_deref())?;
    let command = SavedCommand::capture(text)?;
    train(args, merged(args.settings.clone(), file), command, None)
}

/// The settings of a `--config` file (`path`, its `text`), or none.
fn config_file(path: Option<&Path>, text: Option<&str>) -> Result<TrainSettings> {
    match (path, text) {
        (Some(path), Some(text)) => toml::from_str(text).with_context(|| format!("{}: invalid config", path.display())),
        _ => Ok(TrainSettings::default()),
    }
}

/// The command line of a run, saved in `OUT.partial/command.json` so that `--resume` can run it
/// again: the arguments after `train`, the working directory they are relative to, and the
/// `--config` file's text (the file may change).
#[derive(Serialize, Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct SavedCommand {
    format_version: u32,
    cwd: PathBuf,
    args: Vec<String>,
    config: Option<String>,
}

/// Parses a saved command line.
#[derive(Parser, Debug)]
#[command(no_binary_name = true)]
struct SavedArgs {
    #[command(flatten)]
    args: TrainArgs,
}

impl SavedCommand {
    /// This process's `nsl train` command line; `None` if it cannot be recorded (an argument that
    /// is not UTF-8), and then the run saves no state.
    fn capture(config: Option<String>) -> Result<Option<SavedCommand>> {
        let mut all = std::env::args_os().skip_while(|a| a != "train");
        if all.next().is_none() {
            return Ok(None);
        }
        let Ok(args) = all.map(|a| a.into_string()).collect::<Result<Vec<String>, _>>() else {
            errln!("warning: an argument is not UTF-8: no state is saved for --resume");
            return Ok(None);
        };
        let cwd = std::env::current_dir().context("the working directory (saved for --resume)")?;
        Ok(Some(SavedCommand { format_version: 1, cwd, args, config }))
    }
}

/// Where a run whose `--out` is `out` keeps the state to resume from: the sibling `OUT.partial/`.
fn partial_dir(out: &Path) -> Result<PathBuf> {
    let name = out.file_name().with_context(|| format!("--out {} names no directory", out.display()))?;
    let mut name = name.to_os_string();
    name.push(".partial");
    Ok(out.with_file_name(name))
}

const STATE_FILE: &str = "state.safetensors";
/// Without `--checkpoint-every`: the least time between two saved states.
const CHECKPOINT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);
const COMMAND_FILE: &str = "command.json";

/// `nsl train --resume RUN`: runs the saved command again from the saved state.
fn resume(args: &TrainArgs, run: &Path) -> Result<()> {
    let partial = partial_dir(run)?;
    let command_path = partial.join(COMMAND_FILE);
    if !command_path.is_file() {
        bail!(
            "--resume {}: no interrupted run to resume ({} does not exist: the run finished, saved no state \
             (--checkpoint-every 0, --record-adversarial) or never started)",
            run.display(),
            command_path.display()
        );
    }
    let text = std::fs::read(&command_path).with_context(|| format!("reading {}", command_path.display()))?;
    let command: SavedCommand = serde_json::from_slice(&text)
        .with_context(|| format!("{}: not a saved nsl command", command_path.display()))?;
    let mut saved = SavedArgs::try_parse_from(&command.args)
        .with_context(|| format!("{}: the saved command line does not parse", command_path.display()))?
        .args;
    let file = config_file(saved.config.as_deref(), command.config.as_deref())?;
    let settings = merged(saved.settings.clone(), file);
    if args.config.is_some() {
        bail!("--config cannot be given with --resume: a run resumes with the settings it started with");
    }
    let mut conflicts = args.settings.conflicts(&settings);
    let no_columns = format!("{:?}", SavedArgs::try_parse_from(Vec::<String>::new())?.args.columns);
    let columns = format!("{:?}", args.columns);
    if columns != no_columns && columns != format!("{:?}", saved.columns) {
        conflicts.push("--id-column, --feature-columns or --label-column".into());
    }
    if !conflicts.is_empty() {
        bail!(
            "--resume {}: {} differ from the interrupted run's settings: a run resumes with the settings it started \
             with (give no other flag, or the same values)",
            run.display(),
            conflicts.join(", ")
        );
    }
    let partial = std::fs::canonicalize(&partial).with_context(|| format!("--resume {}", partial.display()))?;
    std::env::set_current_dir(&command.cwd)
        .with_context(|| format!("--resume: the run's working directory {}", command.cwd.display()))?;
    let out = settings.out.clone().unwrap_or_else(|| PathBuf::from("runs/train"));
    let saved_partial = partial_dir(&out)?;
    if std::fs::canonicalize(&saved_partial).ok().as_ref() != Some(&partial) {
        bail!(
            "--resume {}: {} belongs to the run --out {} (in {}), not to this one",
            run.display(),
            command_path.display(),
            out.display(),
            command.cwd.display()
        );
    }
    let state_path = partial.join(STATE_FILE);
    let state = match state_path.is_file() {
        true => {
            let state = TrainState::load(&state_path)?;
            errln!(
                "resuming {}: epoch {} of {} was completed, continuing with epoch {}",
                run.display(),
                state.epoch(),
                state.config().epochs,
                state.epoch() + 1
            );
            Some(state)
        }
        false => {
            errln!("no completed epoch was saved: training again from the start");
            None
        }
    };
    saved.json = args.json;
    train(&saved, settings, Some(command), state.map(|s| (partial, s)))
}

/// Trains with `settings` (the flags over the `--config` file) and saves the run; `command` is
/// saved for `--resume` with every state, `resume` the state to continue from and its directory.
fn train(
    args: &TrainArgs,
    settings: TrainSettings,
    command: Option<SavedCommand>,
    resume: Option<(PathBuf, TrainState)>,
) -> Result<()> {
    if let Some(threads) = settings.threads {
        set_threads(threads)?;
    }
    let out = settings.out.clone().unwrap_or_else(|| PathBuf::from("runs/train"));
    let checked = run_spec(&settings, &args.columns)?.check().map_err(run_error)?;
    let (checkpoint_every, by_clock) = checkpoint_schedule(&settings)?;
    checked.check_out(&out, &flag).map_err(run_error)?;
    if out.join("model.json").is_file() && resume.is_none() {
        errln!("warning: --out {} holds an earlier run: it is replaced when this run is saved", out.display());
    }
    let bar = spinner("opening the run");
    let open = checked.open_with(|stage| bar.set_message(stage.to_string()));
    bar.finish_and_clear();
    let mut open = open.map_err(run_error)?;
    for note in open.take_notes() {
        errln!("warning: {note}");
    }
    // The state to resume from lives beside the run (`OUT.partial/`): the staged run directory is
    // removed when the process dies, the state must survive a kill.
    let partial = match (&command, checkpoint_every) {
        (Some(command), 1..) => Some(prepare_partial(&out, command, resume.is_some())?),
        _ => None,
    };
    let batches = open.train_len().div_ceil(open.checked().spec().train.batch_size);
    let epochs = open.checked().spec().train.epochs;
    let done = resume.as_ref().map_or(0, |(_, s)| s.epoch());
    let bar = Arc::new(Mutex::new(TrainBar::new(epochs, batches, done, partial.is_some())));
    let progress = bar.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let mut hooks = FitHooks::default()
        .on_progress(move |p| lock(&progress).update(p.epoch, p.epochs, p.batch, p.batches))
        .stop_when(stop.clone());
    // The last completed epoch's state not yet saved (states are saved every 30 s): a Ctrl-C
    // saves it at once.
    let pending: Arc<Mutex<Option<TrainState>>> = Arc::default();
    if let Some(dir) = &partial {
        let schedule = (checkpoint_every, by_clock, epochs);
        hooks = save_states(hooks, dir.join(STATE_FILE), schedule, bar.clone(), pending.clone());
    }
    if let Some((_, state)) = resume {
        hooks = hooks.resume_from(state);
    }
    super::stop_on_interrupt(Some(stop.clone()));
    let fitted = open.fit(hooks);
    super::stop_on_interrupt(None);
    lock(&bar).finish();
    let fitted = match fitted {
        Ok(fitted) => fitted,
        Err(e) => return Err(failed_fit(e, stop.load(Ordering::SeqCst), partial.as_deref(), &pending, &out)),
    };
    let saved = fitted.save(&out).map_err(|e| explain_failed_save(run_error(e), partial.as_deref(), &out))?;
    if let Some(dir) = &partial {
        // The run is saved: its state has served.
        if let Err(e) = std::fs::remove_dir_all(dir) {
            errln!("warning: could not remove {}: {e}", dir.display());
        }
    }
    if let Some((examples, path, nodes)) = &saved.record {
        errln!("recorded {examples} adversarial neighbors → {} and {}", path.display(), nodes.display());
    }
    print_summary(&fitted, &out, args.json)
}

/// The library's run from the settings of `nsl train` (flags and `--config` keys are its fields).
fn run_spec(settings: &TrainSettings, columns: &ColumnArgs) -> Result<RunSpec, nsl::ConfigError> {
    let s = settings.clone();
    let mut optimizer = s.optimizer.map_or_else(OptimizerConfig::default, OptimizerConfig::from);
    if let Some(learning_rate) = s.learning_rate {
        optimizer = optimizer.with_learning_rate(learning_rate);
    }
    let (defaults, unlabeled) = (TrainConfig::default(), UnlabeledConfig::default());
    Ok(RunSpec {
        samples: s.samples.map(Input::Path),
        packed: s.packed,
        shuffle_buffer: s.shuffle_buffer,
        keep_part_order: s.keep_part_order.unwrap_or(false),
        pool: s.pool.map(Input::Path),
        graph: s.graph.map(GraphInput::Path),
        graph_reg: s.graph_reg,
        adv_reg: s.adv_reg,
        unlabeled: s.unlabeled.map(Input::Path),
        unlabeled_config: UnlabeledConfig {
            ratio: s.unlabeled_ratio.unwrap_or(unlabeled.ratio),
            entropy: s.entropy.unwrap_or(unlabeled.entropy),
        },
        vat: s.vat,
        distill: s.distill.as_ref().map(DistillPairs::spec).transpose()?,
        early_stopping_metric: s.early_stopping.and_then(|p| p.1),
        record_adversarial: s.record_adversarial,
        record_every: s.record_every.unwrap_or(1),
        task: s.task.unwrap_or_default(),
        weight_column: s.weight_column,
        class_weights: s.class_weights,
        model: s.model.unwrap_or_default(),
        dropout: s.dropout,
        train: TrainConfig {
            epochs: s.epochs.unwrap_or(defaults.epochs),
            batch_size: s.batch_size.unwrap_or(defaults.batch_size),
            optimizer,
            seed: s.seed.unwrap_or(defaults.seed),
            early_stopping: s.early_stopping.map(|p| p.0),
            lr_schedule: s.lr_schedule.unwrap_or_default(),
            weight_decay: s.weight_decay.unwrap_or(defaults.weight_decay),
            augment: s.augment.unwrap_or_default(),
            multiplier_schedules: MultiplierSchedules {
                graph: s.graph_reg_schedule.unwrap_or_default(),
                adversarial: s.adv_reg_schedule.unwrap_or_default(),
                vat: s.vat_schedule.unwrap_or_default(),
            },
            ..defaults
        },
        init_seed: s.init_seed,
        validation: s.validation.map(Input::Path),
        test: s.test.map(Input::Path),
        strict: s.strict.unwrap_or(false),
        columns: columns.to_columns(),
    })
}

/// `hooks` saving the run's state to `path` after every `every`-th epoch (with `by_clock`: at most
/// every 30 s, keeping the others in `pending` for a Ctrl-C) and the last of `epochs`, and showing
/// each epoch's loss and accuracy on `bar`.
fn save_states<'a>(
    hooks: FitHooks<'a>,
    path: PathBuf,
    (every, by_clock, epochs): (usize, bool, usize),
    bar: Arc<Mutex<TrainBar>>,
    pending: Arc<Mutex<Option<TrainState>>>,
) -> FitHooks<'a> {
    let mut last = std::time::Instant::now();
    hooks.on_epoch_state(every, move |state| {
        if let Some(record) = state.history().epochs.last() {
            lock(&bar).epoch_done(state.epoch(), epochs, record.loss, record.accuracy);
        }
        // The last epoch's state is always saved: if the save of the run fails, `--resume`
        // saves it from there without training again.
        if by_clock && last.elapsed() < CHECKPOINT_INTERVAL && state.epoch() < epochs {
            *lock(&pending) = Some(state.clone());
            return Ok(());
        }
        state.save(&path)?;
        *lock(&pending) = None;
        last = std::time::Instant::now();
        Ok(())
    })
}

/// Locks a mutex whose holder cannot have left it inconsistent (a progress display, a state slot).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The error of a fit that failed or was stopped by Ctrl-C (`interrupted`): then the last
/// completed epoch's state not yet saved is saved at once, and the message says how to resume.
/// Without anything to resume from, no `OUT.partial/` is left behind.
fn failed_fit(
    error: nsl::run::RunError,
    interrupted: bool,
    partial: Option<&Path>,
    pending: &Mutex<Option<TrainState>>,
    out: &Path,
) -> anyhow::Error {
    let mut saved = None;
    if let (true, Some(dir), Some(state)) = (interrupted, partial, lock(pending).take()) {
        match state.save(&dir.join(STATE_FILE)) {
            Ok(()) => saved = Some(state.epoch()),
            Err(e) => errln!("warning: could not save the last completed epoch: {e}"),
        }
    }
    let resumable = partial.filter(|d| d.join(STATE_FILE).exists());
    if let (Some(dir), None) = (partial, resumable) {
        let _ = std::fs::remove_dir_all(dir);
    }
    if !interrupted {
        return run_error(error);
    }
    let message = match resumable {
        Some(dir) => {
            let epoch = match saved {
                Some(epoch) => epoch,
                None => TrainState::load(&dir.join(STATE_FILE)).map_or(0, |s| s.epoch()),
            };
            format!(
                "interrupted ({error}); epoch {epoch} is saved in {}: continue with `nsl train --resume {}`",
                dir.display(),
                out.display()
            )
        }
        None => format!("interrupted ({error}) before the first epoch ended: nothing saved to resume from"),
    };
    super::Interrupted(message).into()
}

/// Every how many epochs a state is saved for `--resume`, and whether by the clock (the default).
fn checkpoint_schedule(settings: &TrainSettings) -> Result<(usize, bool)> {
    Ok(match (settings.checkpoint_every, &settings.record_adversarial) {
        (Some(n), Some(_)) if n > 0 => {
            bail!("--checkpoint-every {n} cannot go with --record-adversarial: a saved state does not hold the record")
        }
        (_, Some(_)) => (0, false),
        (Some(n), None) => (n, false),
        (None, None) => (1, true),
    })
}

/// `OUT.partial/` of a run that saves states, with the command that resumes it (written once, when
/// the run starts; a resumed run finds both there).
fn prepare_partial(out: &Path, command: &SavedCommand, resuming: bool) -> Result<PathBuf> {
    let partial = partial_dir(out)?;
    if resuming {
        return Ok(partial);
    }
    std::fs::create_dir_all(&partial).with_context(|| format!("creating {}", partial.display()))?;
    // A state of an earlier run of this --out must not pair with this command.
    match std::fs::remove_file(partial.join(STATE_FILE)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("removing {}", partial.join(STATE_FILE).display()))
        }
        _ => {}
    }
    let json = serde_json::to_vec_pretty(command)?;
    nsl::io::write_bytes(&partial.join(COMMAND_FILE), &json)
        .with_context(|| format!("writing {}", partial.join(COMMAND_FILE).display()))?;
    Ok(partial)
}

/// Prints what the run reports: as JSON (`--json`) or as lines.
fn print_summary(fitted: &FittedRun, out: &Path, json: bool) -> Result<()> {
    let summary = fitted.summary(out);
    if json {
        outln!("{}", serde_json::to_string_pretty(&summary)?);
        return Ok(());
    }
    if let Some(r) = &summary.graph {
        outln!(
            "neighbors: {} of {} training samples have neighbors ({} pairs, {} distinct neighbor samples)",
            r.samples_with_neighbors,
            summary.train_samples,
            r.pairs,
            r.distinct_neighbors
        );
    }
    // Early stopping may end the run before its configured epochs.
    let ran = fitted.history().epochs.len();
    let epochs = match ran < summary.epochs {
        true => format!("{ran} of {} epochs (stopped early)", summary.epochs),
        false => format!("{ran} epochs"),
    };
    outln!(
        "trained {} for {epochs} on {} samples: train accuracy {:.4}, steady epoch {:.4} s",
        summary.model,
        summary.train_samples,
        summary.final_train_accuracy,
        summary.steady_epoch_seconds.unwrap_or(0.0)
    );
    if let Some(acc) = summary.final_validation_metrics.as_ref().and_then(|m| m.accuracy) {
        match summary.best_epoch {
            Some(best) => outln!("validation accuracy: {acc:.4} (early stopping kept epoch {best})"),
            None => outln!("validation accuracy: {acc:.4}"),
        }
    }
    if let Some(acc) = summary.test_accuracy {
        outln!("test accuracy: {acc:.4}");
    }
    let task = summary.task;
    if let (Task::Binary | Task::Multilabel | Task::Regression(_), Some(m)) = (task, &summary.test_metrics) {
        outln!("test {task} metrics: {}", serde_json::to_string(m)?);
    }
    outln!("run saved to {} (model.safetensors, model.json, history.csv, curves.svg)", out.display());
    Ok(())
}

/// The error of a failed save, with what became of the trained state: kept in `OUT.partial/` (when
/// the run saves states: the last epoch's state is always saved, so `--resume` saves the run
/// without training again unless it stopped early), or lost.
fn explain_failed_save(e: anyhow::Error, partial: Option<&Path>, out: &Path) -> anyhow::Error {
    match partial.filter(|d| d.join(STATE_FILE).is_file()) {
        Some(dir) => e.context(format!(
            "the run was trained but not saved; its state is kept in {}: once the cause is fixed, \
             `nsl train --resume {}` saves it from the last saved epoch, the last one unless training \
             stopped early (or remove {} to discard it)",
            dir.display(),
            out.display(),
            dir.display()
        )),
        None => e.context(format!("the run was trained but not saved to {} (no state was kept)", out.display())),
    }
}

/// The data files of a recipe given on the command line (`nsl tune`'s flags): they win over the
/// recipe's own keys, as `nsl train`'s flags win over its `--config` file.
#[derive(Debug, Clone, Default)]
pub(super) struct RecipeInputs {
    pub samples: Option<PathBuf>,
    pub unlabeled: Option<PathBuf>,
    pub graph: Option<PathBuf>,
    pub validation: Option<PathBuf>,
    pub pool: Option<PathBuf>,
}

/// The run a recipe describes (the TOML table of a `--config` file), parsed as `nsl train
/// --config` parses it, with `inputs` over the recipe's keys: how `nsl tune` makes its trials.
/// The error is the parser's message (an unknown key, a value a setting rejects).
pub(super) fn recipe_spec(
    recipe: &toml::Table,
    inputs: &RecipeInputs,
    columns: &ColumnArgs,
) -> std::result::Result<RunSpec, String> {
    let file: TrainSettings = toml::Value::Table(recipe.clone()).try_into().map_err(|e: toml::de::Error| {
        // The parser's message ends with a newline and may start with a position in a file
        // the recipe never was: keep its first lines only.
        e.message().trim().to_string()
    })?;
    let flags = TrainSettings {
        samples: inputs.samples.clone(),
        unlabeled: inputs.unlabeled.clone(),
        graph: inputs.graph.clone(),
        validation: inputs.validation.clone(),
        pool: inputs.pool.clone(),
        ..TrainSettings::default()
    };
    run_spec(&merged(flags, file), columns).map_err(|e| e.to_string())
}
