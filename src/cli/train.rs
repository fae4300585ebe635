//! `nsl train`: train a model, optionally graph-regularized, and save the run.

use super::progress::with_spinner;
use super::{from_text, set_threads, ColumnArgs};
use anyhow::{bail, Context, Result};
use clap::{Args, Parser, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use nsl::augment::AugmentConfig;
use nsl::data::Dataset;
use nsl::eval::{evaluate_task, Metric, Metrics};
use nsl::graph;
use nsl::loss::{ClassWeights, Task};
use nsl::model::{build_model, ModelSpec};
use nsl::neighbors::{NeighborTable, PackedConfig, PackedParts};
use nsl::regularize::{AdvRegConfig, GraphRegConfig, VatConfig};
use nsl::report::training_curves_svg;
use nsl::train::AdversarialRecord;
use nsl::train::{
    save_checkpoint, CheckpointMeta, LrSchedule, MultiplierSchedule, MultiplierSchedules, OptimizerConfig, TrainConfig,
    TrainState, Trainer, UnlabeledConfig,
};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Flags of `nsl train`.
#[derive(Args, Debug)]
#[command(after_help = "Example (NSL's Cora tutorial):\n  \
    nsl train --samples train.parquet --pool test.parquet --graph cora_graph.parquet --model mlp:50,50 --dropout 0.5 \\\n    \
    --graph-reg multiplier=0.1,neighbors=1,distance=l2 --epochs 100 --batch-size 128 --test test.parquet --out runs/cora")]
pub struct TrainArgs {
    /// TOML file with any of the settings below but the column names and `--json` (e.g. `samples =
    /// "train.parquet"`, `epochs = 100`, `graph_reg = "multiplier=0.1,neighbors=2"`, `strict = true`);
    /// unknown keys are errors. Flags given on the command line win.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(flatten)]
    settings: TrainSettings,
    #[command(flatten)]
    columns: ColumnArgs,
    /// Print the summary as JSON on standard output.
    #[arg(long)]
    json: bool,
    /// Continue the interrupted run whose `--out` was RUN from its last completed epoch (the state
    /// in `RUN.partial/`), with the settings it started with: other settings may be given only
    /// with the same values (`--config` not at all). Ends with the weights of an uninterrupted run.
    #[arg(long, value_name = "RUN")]
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
        #[arg(long, value_name = "FILE")]
        samples: Option<PathBuf>,
        /// Train on packed samples, whose records carry their neighbors, in place of `--samples`,
        /// `--graph` and `--pool`. `--packed DIR_OR_FILE`: a packed Parquet table (`nsl pack-nbrs
        /// … --output packed.parquet`, or a directory of parts such as scripts/spark/pack_nbrs.py
        /// writes), streamed every epoch through a seeded shuffle buffer (`--shuffle-buffer`), so
        /// memory holds the buffer, not the table; multiclass or binary labels only. `--packed` alone
        /// (or `--packed FILE.tfr`): the `--samples` are NSL-packed TFRecord records (`pack_nbrs`
        /// output: `NL_num_nbrs`, `NL_nbr_<j>_weight`, `NL_nbr_<j>_<feature>`), read whole; needs
        /// `--graph-reg`. Default: off.
        #[arg(long, value_name = "DIR_OR_FILE", num_args = 0..=1, default_missing_value = "true", value_parser = PackedInput::from_str)]
        #[serde(deserialize_with = "packed_setting")]
        packed: Option<PackedInput>,
        /// With `--packed DIR_OR_FILE` (Parquet): rows of the shuffle buffer. A buffer at least as
        /// large as the table gives the batches (and the model) of in-memory training with the same
        /// seed; a smaller one shuffles locally (each row leaves the buffer at a random draw after at
        /// least N rows came in). Default 10000.
        #[arg(long, value_name = "N")]
        shuffle_buffer: Option<usize>,
        /// With `--packed DIR` (Parquet parts): read the parts in sorted name order every epoch
        /// instead of a seeded order drawn anew each epoch. Default: off (seeded order).
        #[arg(long, num_args = 0, default_missing_value = "true")]
        keep_part_order: Option<bool>,
        /// Extra samples that may serve as neighbors but are not trained on with their labels (NSL's Cora
        /// tutorial uses the test papers).
        #[arg(long, value_name = "FILE")]
        pool: Option<PathBuf>,
        /// Neighbor graph (Parquet or NSL TSV) for graph regularization.
        #[arg(long, value_name = "FILE")]
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
        #[arg(long, value_name = "KEY=VALUE,…", value_parser = GraphRegConfig::from_kv)]
        #[serde(deserialize_with = "from_text")]
        graph_reg: Option<GraphRegConfig>,
        /// Adversarial regularization, as `key=value` pairs: `multiplier` (default 0.2), `step-size`
        /// (default 0.001; NSL's MNIST tutorial: 0.2), `norm` (l1 | l2 | inf, default l2),
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
        #[arg(long, value_name = "KEY=VALUE,…", value_parser = AdvRegConfig::from_kv)]
        #[serde(deserialize_with = "from_text")]
        adv_reg: Option<AdvRegConfig>,
        /// Augment the training images on the fly (item shape `[c, h, w]`, e.g. IDX digits), as
        /// `key=value` pairs: `crop=N` (pad N zeros on each side, then crop back at a random offset:
        /// a random shift by up to N pixels), `flip` (mirror left to right with probability ½; not
        /// for digits). Drawn from `--seed`, the epoch and the batch (reproducible, resumable), before
        /// `--adv-reg` crafts its neighbors. Validation and test samples are never augmented.
        /// Default: none (`none`).
        #[arg(long, value_name = "crop=N,flip", value_parser = AugmentConfig::from_kv)]
        #[serde(deserialize_with = "from_text")]
        augment: Option<AugmentConfig>,
        /// Unlabeled samples to train as centers too (Neural Graph Machines): each batch of labeled
        /// samples is joined by unlabeled ones (`--unlabeled-ratio`), the graph loss covers their
        /// edges (`multiplier-uu`, `multiplier-lu` in `--graph-reg`), `--vat` and `--entropy` act on
        /// them; their labels, if any, are never used. Also serves as `--pool` when that is not given.
        #[arg(long, value_name = "FILE")]
        unlabeled: Option<PathBuf>,
        /// With `--unlabeled`: unlabeled centers per labeled center in each batch. Default 1.
        #[arg(long, value_name = "R")]
        unlabeled_ratio: Option<f64>,
        /// With `--unlabeled`: weight of the entropy of the predictions on unlabeled centers (entropy
        /// minimization). Default 0 (off).
        #[arg(long, value_name = "W")]
        entropy: Option<f64>,
        /// Virtual adversarial regularization (needs no label; NSL's `VirtualAdvConfig`), as
        /// `key=value` pairs: `multiplier` (default 1), `epsilon` (perturbation radius, default 0.001),
        /// `norm` (l1 | l2 | inf, default l2), `steps` (power iterations, default 1), `xi` (finite
        /// difference, default 1e-6; 1e-3 suits f32 features better), `distance` (l1 | l2 | cosine |
        /// kl | jsd; default NSL's l2 on the logits). On labeled and unlabeled centers.
        #[arg(long, value_name = "KEY=VALUE,…", value_parser = VatConfig::from_kv)]
        #[serde(deserialize_with = "from_text")]
        vat: Option<VatConfig>,
        /// Stop when the `--validation` metric has not improved for N epochs and keep the best
        /// epoch's weights: `patience=N` (or just `N`), optionally `,metric=NAME` (accuracy |
        /// macro-f1 | micro-f1 | subset-accuracy | roc-auc | mse | mae | rmse; default the task's:
        /// accuracy for multiclass, roc-auc for binary, macro-f1 for multilabel, mse (lower is
        /// better) for regression). Default: off.
        #[arg(long, value_name = "patience=N[,metric=NAME]", value_parser = parse_patience)]
        #[serde(deserialize_with = "from_text")]
        early_stopping: Option<Patience>,
        /// Write the adversarial neighbors generated during training as a neighbor graph (`kind =
        /// adversarial`; Parquet or TSV by extension) plus a node table `NAME.nodes.parquet` (perturbed
        /// features, perturbation norm, predictions). Needs `--adv-reg`.
        #[arg(long, value_name = "FILE")]
        record_adversarial: Option<PathBuf>,
        /// With `--record-adversarial`: record every N-th epoch (and the last). Default 1.
        #[arg(long, value_name = "N")]
        record_every: Option<usize>,
        /// What to predict: `multiclass` (softmax cross-entropy, one output per class), `binary`
        /// (labels 0/1 or two class names; one output, sigmoid cross-entropy), `multilabel` (the
        /// label column holds a list of class names or indices per sample; sigmoid cross-entropy per
        /// label), `regression` (the label column holds a number, or a list of numbers; linear
        /// outputs, `loss=mse` or `loss=huber` with `delta=D` (default 1), e.g.
        /// `regression,loss=huber,delta=1`). Default multiclass.
        #[arg(long, value_name = "TASK", value_parser = Task::from_str)]
        #[serde(deserialize_with = "from_text")]
        task: Option<Task>,
        /// Column of per-sample weights in the training samples (Parquet or CSV; finite, ≥ 0): each
        /// sample's weight multiplies its supervised, graph (per center), adversarial and virtual
        /// adversarial loss terms, as NSL's `sample_weight_key`. Name the feature columns (or use a
        /// `features` list column) so that it is not read as a feature. `--validation` and `--test`
        /// tables that have the column are scored with weighted loss and metrics too (a warning
        /// says when one has not). Default: every weight 1.
        #[arg(long, value_name = "NAME")]
        weight_column: Option<String>,
        /// Class weights, multiplied into the sample weights (multiclass and binary only):
        /// `balanced` (n / (k · countₖ), scikit-learn's) or a file of `class<TAB>weight` lines
        /// (class by name, or index without names; classes not listed weigh 1). Default: none.
        #[arg(long, value_name = "balanced|FILE", value_parser = ClassWeights::from_str)]
        #[serde(deserialize_with = "from_text")]
        class_weights: Option<ClassWeights>,
        /// Model: `mlp:UNITS,…[,relu|tanh|sigmoid|gelu]` (the activation, default relu; others train
        /// slower), `cnn[:FILTERS,…]` or `bow[:EMBED,UNITS,…][,combiner=mean|sum|sqrtn]
        /// [,bag-activation=none|relu|tanh|sigmoid|gelu]` (token-id lists: embeddings pooled per list,
        /// default mean and no bag activation, then dense layers; `bow` = `bow:50`). Default `mlp:50,50`.
        #[arg(long, value_name = "SPEC", value_parser = ModelSpec::from_str)]
        #[serde(deserialize_with = "from_text")]
        model: Option<ModelSpec>,
        /// Dropout rate after hidden/dense layers, in training only. Default 0.5 for mlp, 0 for cnn.
        #[arg(long, value_name = "RATE")]
        dropout: Option<f32>,
        /// Passes over the training samples. Default 10.
        #[arg(long)]
        epochs: Option<usize>,
        /// Learning-rate schedule, evaluated before every step: `constant` (default),
        /// `step,every=E[,gamma=G]` (× G every E epochs, G default 0.1), `cosine[,min=M]` (Keras'
        /// CosineDecay per step down to M, default 0, over the run), `exponential,rate=R` (× R per
        /// epoch, continuously); each may add `warmup=W`: a linear ramp over the first W epochs
        /// (default 0), after which the decay starts.
        #[arg(long, value_name = "SPEC", value_parser = LrSchedule::from_str)]
        #[serde(deserialize_with = "from_text")]
        lr_schedule: Option<LrSchedule>,
        /// Schedule of the `--graph-reg` multiplier over the optimizer's steps (NSL's DecayConfig,
        /// which NSL's Keras wrappers never use, plus a warm-up), as `key=value` pairs: `steps`
        /// (NSL's decay_steps: turns the decay on), `decay` (exponential | inverse-time | natural-exp,
        /// default exponential), `rate` (default 0.96), `min` (floor, default 0), `warmup` (steps of
        /// linear ramp from 0, default 0). Default: none, the multiplier as given.
        #[arg(long, value_name = "KEY=VALUE,…", value_parser = MultiplierSchedule::from_kv)]
        #[serde(deserialize_with = "from_text")]
        graph_reg_schedule: Option<MultiplierSchedule>,
        /// Schedule of the `--adv-reg` multiplier, as `--graph-reg-schedule`. Default: none.
        #[arg(long, value_name = "KEY=VALUE,…", value_parser = MultiplierSchedule::from_kv)]
        #[serde(deserialize_with = "from_text")]
        adv_reg_schedule: Option<MultiplierSchedule>,
        /// Schedule of the `--vat` multiplier, as `--graph-reg-schedule`. Default: none.
        #[arg(long, value_name = "KEY=VALUE,…", value_parser = MultiplierSchedule::from_kv)]
        #[serde(deserialize_with = "from_text")]
        vat_schedule: Option<MultiplierSchedule>,
        /// Save the state needed to resume (`nsl train --resume`) after every N-th epoch into
        /// `OUT.partial/` (removed when the run is saved); 0 saves none. Default: after an epoch
        /// when 30 s have passed since the start or the last save (a save costs a few milliseconds
        /// of fsync, as much as a whole epoch of a small model). Not with `--record-adversarial`
        /// (whose record a state does not hold).
        #[arg(long, value_name = "N")]
        checkpoint_every: Option<usize>,
        /// Samples per batch. Default 32 (Keras' default).
        #[arg(long)]
        batch_size: Option<usize>,
        /// Optimizer. Default adam.
        #[arg(long, value_name = "NAME")]
        optimizer: Option<OptimizerName>,
        /// Learning rate. Default 0.001 for adam, 0.01 for sgd (Keras' defaults).
        #[arg(long, value_name = "LR")]
        learning_rate: Option<f64>,
        /// L2 weight decay λ ≥ 0: `λ·θ` is added to every parameter's gradient (PyTorch's
        /// `weight_decay`, as Graph-MLP trains; Keras' optimizers have none). Default 0 (off).
        #[arg(long, value_name = "LAMBDA")]
        weight_decay: Option<f64>,
        /// Seed of the weights, dropout and shuffling. Default 0.
        #[arg(long)]
        seed: Option<u64>,
        /// Seed of the initial weights and dropout masks only, when they should differ from `--seed`'s
        /// (e.g. two models compared on the same batches from independent starts, as in NSL's
        /// tutorial). Default: `--seed`.
        #[arg(long, value_name = "SEED")]
        init_seed: Option<u64>,
        /// CPU threads. Default: all cores (on 2 cores, 1 is often faster for small models).
        #[arg(long)]
        threads: Option<usize>,
        /// Labeled samples to evaluate after every epoch (shown in the history and the curves).
        #[arg(long, value_name = "FILE")]
        validation: Option<PathBuf>,
        /// Labeled samples to evaluate at the end (the accuracy `nsl evaluate` reproduces).
        #[arg(long, value_name = "FILE")]
        test: Option<PathBuf>,
        /// Fail if the graph names ids that are neither training nor pool samples (default: skip them and
        /// report the count).
        #[arg(long, num_args = 0, default_missing_value = "true")]
        strict: Option<bool>,
        /// Run directory: weights, model.json, history (JSON, CSV), curves.svg, summary.json. Default `runs/train`.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    }
}

/// `--packed`'s value.
#[derive(Clone, Debug, PartialEq)]
enum PackedInput {
    /// `--packed` alone: the `--samples` are NSL-packed TFRecord records.
    Records,
    /// `--packed PATH`: a packed Parquet table (file or directory of parts), or packed TFRecord
    /// records.
    Path(PathBuf),
}

impl FromStr for PackedInput {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "true" => Ok(PackedInput::Records),
            "" => Err("--packed: empty path".into()),
            path => Ok(PackedInput::Path(PathBuf::from(path))),
        }
    }
}

/// `packed` in a `--config` file: `true` (the samples are packed TFRecord records), `false`, or
/// a path.
fn packed_setting<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<Option<PackedInput>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Value {
        Flag(bool),
        Path(PathBuf),
    }
    Ok(match Option::<Value>::deserialize(deserializer)? {
        None | Some(Value::Flag(false)) => None,
        Some(Value::Flag(true)) => Some(PackedInput::Records),
        Some(Value::Path(p)) => Some(PackedInput::Path(p)),
    })
}

/// A one-row stand-in for a streamed packed table where the run needs the training samples'
/// shape: width, item shape, class names, number of classes (its label is the table's largest).
fn packed_header(parts: &PackedParts) -> Result<Dataset> {
    let features = ndarray::Array2::zeros((1, parts.dim()));
    let label = parts.max_label().unwrap_or(0);
    let names = parts.class_names().map(<[String]>::to_vec);
    Ok(Dataset::new(vec!["-".into()], features, parts.item_shape().to_vec(), Some(vec![label]), names)?)
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

/// What `nsl train` reports (also `RUN/summary.json`).
#[derive(Serialize)]
struct Summary {
    run: PathBuf,
    model: String,
    train_samples: usize,
    epochs: usize,
    task: Task,
    final_train_accuracy: f64,
    test_accuracy: Option<f64>,
    /// The task's metrics on the last epoch's training batches.
    #[serde(skip_serializing_if = "Option::is_none")]
    final_train_metrics: Option<Metrics>,
    /// The task's metrics on the last epoch's validation samples.
    #[serde(skip_serializing_if = "Option::is_none")]
    final_validation_metrics: Option<Metrics>,
    /// The task's loss and metrics on `--test`.
    #[serde(skip_serializing_if = "Option::is_none")]
    test_loss: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    test_metrics: Option<Metrics>,
    steady_epoch_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    best_epoch: Option<usize>,
    graph: Option<nsl::neighbors::NeighborReport>,
}

/// Reads pool or unlabeled samples: their labels are never used, and for a task without classes
/// the label column (floats, lists) is left out rather than read as class labels.
fn read(path: &Path, columns: &ColumnArgs, task: Task) -> Result<Dataset> {
    with_spinner(format!("reading {}", path.display()), || {
        super::convert::read_samples_for(path, &columns.to_columns(), task.has_classes())
    })
}

/// The run's samples in one feature layout. Dense rows must have the training rows' width. Token
/// groups are as wide as each file's longest list, so files read apart (a text split into
/// training, validation and test files) are laid out in the merge of their layouts
/// ([`nsl::data::FeatureLayout::merge`]): the widest list and the largest vocabulary of all the
/// run's files, the layout the same rows have in one table.
fn one_layout(train: Dataset, others: [(&str, Option<Dataset>); 4]) -> Result<(Dataset, [Option<Dataset>; 4])> {
    if !train.layout().has_tokens() {
        for (name, other) in &others {
            if let Some(d) = other.as_ref().filter(|d| d.dim() != train.dim()) {
                bail!("{name} samples have {} features but the training samples have {}", d.dim(), train.dim());
            }
        }
        return Ok((train, others.map(|(_, d)| d)));
    }
    let mut layout = train.layout().clone();
    for (name, other) in &others {
        if let Some(d) = other {
            layout = layout
                .merge(d.layout())
                .with_context(|| format!("{name} samples do not fit the training samples' feature groups"))?;
        }
    }
    let train = train.conform(&layout)?;
    let mut conformed = [None, None, None, None];
    for (slot, (name, other)) in conformed.iter_mut().zip(others) {
        *slot = other
            .map(|d| d.conform(&layout))
            .transpose()
            .with_context(|| format!("{name} samples do not fit the run's feature groups"))?;
    }
    Ok((train, conformed))
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
    train(args, args.settings.clone().or(file), command, None)
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
    let settings = saved.settings.clone().or(file);
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
        true => Some(TrainState::load(&state_path)?),
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
    // `--packed PATH`: a packed Parquet table to stream, or packed TFRecord records (as `--samples
    // PATH --packed`).
    let (samples_path, packed, stream_path) = match (settings.packed.clone(), settings.samples) {
        (Some(PackedInput::Path(p)), Some(s)) => bail!(
            "--packed {} and --samples {}: give the packed samples once (--packed DIR_OR_FILE, or --samples FILE.tfr --packed)",
            p.display(),
            s.display()
        ),
        (Some(PackedInput::Path(p)), None) if !p.is_dir() && nsl::tfrecord::is_tfrecord(&p) => (p, true, None),
        (Some(PackedInput::Path(p)), None) => (p.clone(), false, Some(p)),
        (packed, Some(s)) => (s, packed.is_some(), None),
        (_, None) => bail!("--samples is required (or `samples` in --config), or --packed DIR_OR_FILE"),
    };
    if stream_path.is_none() && (settings.shuffle_buffer.is_some() || settings.keep_part_order.is_some()) {
        bail!("--shuffle-buffer and --keep-part-order apply to --packed DIR_OR_FILE (a packed Parquet table)");
    }
    let stream_config = PackedConfig {
        buffer: settings.shuffle_buffer.unwrap_or(PackedConfig::default().buffer),
        shuffle_parts: !settings.keep_part_order.unwrap_or(false),
    };
    stream_config.validate()?;
    let (pool_path, graph_path) = (settings.pool, settings.graph);
    let (graph_reg, adv_reg) = (settings.graph_reg, settings.adv_reg);
    let record_path = settings.record_adversarial;
    let record_every = settings.record_every.unwrap_or(1);
    if record_every == 0 {
        bail!("--record-every 0: give a number of epochs ≥ 1 (1 records every epoch)");
    }
    if record_path.is_some() && adv_reg.is_none() {
        bail!("--record-adversarial needs --adv-reg");
    }
    let task = settings.task.unwrap_or_default();
    if record_path.is_some() && !task.has_classes() {
        bail!("--record-adversarial records classes: it needs --task multiclass or binary, not {task}");
    }
    if settings.class_weights.is_some() && !task.has_classes() {
        bail!("--class-weights applies to --task multiclass or binary, not {task} (use --weight-column)");
    }
    let mut spec = settings.model.unwrap_or_default();
    if let Some(dropout) = settings.dropout {
        if !(0.0..1.0).contains(&dropout) {
            bail!("--dropout {dropout} must be in [0, 1)");
        }
        spec = spec.with_dropout(dropout);
    }
    let mut optimizer = settings.optimizer.map_or_else(OptimizerConfig::default, OptimizerConfig::from);
    if let Some(learning_rate) = settings.learning_rate {
        optimizer = optimizer.with_learning_rate(learning_rate);
    }
    let defaults = TrainConfig::default();
    let seed = settings.seed.unwrap_or(defaults.seed);
    let init_seed = settings.init_seed.unwrap_or(seed);
    let config = TrainConfig {
        epochs: settings.epochs.unwrap_or(defaults.epochs),
        batch_size: settings.batch_size.unwrap_or(defaults.batch_size),
        optimizer,
        seed,
        early_stopping: settings.early_stopping.map(|p| p.0),
        lr_schedule: settings.lr_schedule.unwrap_or_default(),
        weight_decay: settings.weight_decay.unwrap_or(defaults.weight_decay),
        augment: settings.augment.unwrap_or_default(),
        multiplier_schedules: MultiplierSchedules {
            graph: settings.graph_reg_schedule.unwrap_or_default(),
            adversarial: settings.adv_reg_schedule.unwrap_or_default(),
            vat: settings.vat_schedule.unwrap_or_default(),
        },
        ..defaults
    };
    config.validate()?;
    for (flag, set, needs, given) in [
        ("--graph-reg-schedule", settings.graph_reg_schedule.is_some(), "--graph-reg", graph_reg.is_some()),
        ("--adv-reg-schedule", settings.adv_reg_schedule.is_some(), "--adv-reg", adv_reg.is_some()),
        ("--vat-schedule", settings.vat_schedule.is_some(), "--vat", settings.vat.is_some()),
    ] {
        if set && !given {
            bail!("{flag} needs {needs} (the multiplier it schedules)");
        }
    }
    // Every how many epochs a state is saved, and whether by the clock (the default).
    let (checkpoint_every, by_clock) = match (settings.checkpoint_every, &record_path) {
        (Some(n), Some(_)) if n > 0 => {
            bail!("--checkpoint-every {n} cannot go with --record-adversarial: a saved state does not hold the record")
        }
        (_, Some(_)) => (0, false),
        (Some(n), None) => (n, false),
        (None, None) => (1, true),
    };
    if config.early_stopping.is_some() && settings.validation.is_none() {
        bail!("--early-stopping needs --validation (the samples whose accuracy it watches)");
    }
    let unlabeled_path = settings.unlabeled;
    let unlabeled_config = UnlabeledConfig {
        ratio: settings.unlabeled_ratio.unwrap_or(UnlabeledConfig::default().ratio),
        entropy: settings.entropy.unwrap_or(UnlabeledConfig::default().entropy),
    };
    unlabeled_config.validate()?;
    let vat = settings.vat;
    let strict = settings.strict.unwrap_or(false);
    let out = settings.out.unwrap_or_else(|| PathBuf::from("runs/train"));
    let (validation_path, test_path) = (settings.validation, settings.test);
    let inputs: Vec<(&str, &Path)> = [
        (if stream_path.is_some() { "--packed" } else { "--samples" }, Some(samples_path.as_path())),
        ("--pool", pool_path.as_deref()),
        ("--unlabeled", unlabeled_path.as_deref()),
        ("--graph", graph_path.as_deref()),
        ("--validation", validation_path.as_deref()),
        ("--test", test_path.as_deref()),
    ]
    .into_iter()
    .filter_map(|(flag, path)| path.map(|p| (flag, p)))
    .collect();
    let record_inside = check_run_outputs(&out, record_path.as_deref(), &inputs)?;

    // Either packed form (a streamed Parquet table, or TFRecord records read whole) brings its own
    // neighbors and class labels; a streamed one has no sample weights (so no class weights).
    let form = if stream_path.is_some() { "table" } else { "records" };
    if stream_path.is_some()
        && (!task.has_classes() || settings.weight_column.is_some() || settings.class_weights.is_some())
    {
        bail!(
            "--packed tables carry class labels only: --task {task}, --weight-column and --class-weights need \
             Parquet or CSV samples"
        );
    }
    if packed && (!task.has_classes() || settings.weight_column.is_some()) {
        bail!(
            "--packed records carry class labels only: --task {task} and --weight-column need Parquet or CSV samples"
        );
    }
    if (packed || stream_path.is_some()) && (pool_path.is_some() || graph_path.is_some() || unlabeled_path.is_some()) {
        bail!("--packed takes the graph and the pool from the {form}: drop --graph, --pool and --unlabeled");
    }
    if packed && graph_reg.is_none() {
        bail!("--packed needs --graph-reg (e.g. --graph-reg multiplier=0.1,neighbors=1)");
    }
    let stream = match &stream_path {
        Some(path) => Some(with_spinner(format!("opening {}", path.display()), || PackedParts::open(path))?),
        None => None,
    };
    let (mut train, packed_pool, packed_graph) = if let Some(parts) = &stream {
        (packed_header(parts)?, None, None)
    } else if packed {
        let p = with_spinner(format!("reading {}", samples_path.display()), || {
            nsl::tfrecord::read_packed(std::slice::from_ref(&samples_path), &args.columns.to_columns())
        })?;
        (p.samples, p.pool, Some(p.graph))
    } else {
        (super::evaluate::read_for_task(&samples_path, &args.columns, task, None)?, None, None)
    };
    let Some(width) = train.target_width() else {
        bail!(
            "{}: the training samples have no class labels (a label column of lists or floats needs --task multilabel or regression)",
            samples_path.display()
        )
    };
    if train.is_empty() {
        bail!("{}: the training set is empty", samples_path.display());
    }
    let classes = task.outputs(width);
    if let Some(column) = &settings.weight_column {
        let columns = args.columns.to_columns();
        train =
            with_spinner("reading weights", || nsl::data::attach_weights(train, &samples_path, &columns.id, column))?;
    }
    if let (Some(class_weights), Some(labels)) = (&settings.class_weights, train.labels()) {
        let per_class = class_weights.per_class(labels, width, train.class_names())?;
        let base = train.weights().map_or_else(|| vec![1.0; train.len()], <[f32]>::to_vec);
        let weights = labels.iter().zip(base).map(|(&l, w)| w * per_class[l as usize]).collect();
        train = train.with_weights(weights)?;
    }
    let names = train.class_names().map(<[String]>::to_vec);
    let unlabeled = unlabeled_path.as_deref().map(|p| read(p, &args.columns, task)).transpose()?;
    let pool = match (&pool_path, &unlabeled) {
        (Some(p), _) => Some(read(p, &args.columns, task)?),
        (None, Some(u)) => Some(u.clone()),
        (None, None) => packed_pool,
    };
    let labeled = |path: &Path| -> Result<Dataset> {
        let samples = super::evaluate::read_for_task(path, &args.columns, task, names.as_deref())?;
        super::evaluate::weigh_if_present(samples, path, &args.columns, settings.weight_column.as_deref())
    };
    let validation = validation_path.as_deref().map(labeled).transpose()?;
    let test = test_path.as_deref().map(labeled).transpose()?;
    let (train, [pool, unlabeled, validation, test]) = one_layout(
        train,
        [("--pool", pool), ("--unlabeled", unlabeled), ("--validation", validation), ("--test", test)],
    )?;
    let spec = spec.for_inputs(&nsl::train::model_inputs(train.layout()))?;
    if let Some(adv) = &adv_reg {
        // Perturbations move the model's encoded input (pooled embeddings for token groups).
        let width = match &spec {
            ModelSpec::Bow(bow) => bow.encoded_width(),
            _ => train.dim(),
        };
        adv.validate(width)?;
        task.check_adv_objective(adv.objective)?;
    }
    check_model_memory(&spec, train.item_shape(), classes, config.batch_size)?;
    config.augment.check_shape(train.item_shape()).context("--augment")?;
    let (model, vars) = build_model(&spec, train.item_shape(), classes, init_seed, &candle_core::Device::Cpu)?;
    let graph_source = graph_path.clone().or_else(|| packed.then(|| samples_path.clone()));
    let table = match (&graph_source, &graph_reg) {
        (Some(path), Some(reg)) => {
            let g = match packed_graph {
                Some(g) => g,
                None => with_spinner("reading graph", || graph::read_graph(path))?,
            };
            let g = with_spinner("r-hop neighbors", || reg.neighbor_graph(&g))?;
            let (table, report) = NeighborTable::new(&train, pool.as_ref(), &g, reg.max_neighbors)?;
            let utable = match &unlabeled {
                Some(u) => Some(NeighborTable::new(u, Some(&train), &g, reg.max_neighbors)?.0),
                None => None,
            };
            if report.unknown_nodes > 0 {
                let message = format!(
                    "{}: {} graph nodes are neither training nor pool samples ({} edges from training samples skipped)",
                    path.display(),
                    report.unknown_nodes,
                    report.unknown_targets
                );
                if strict {
                    bail!("{message}");
                }
                errln!("warning: {message}");
            }
            Some((table, report, utable))
        }
        // A streamed packed table brings its neighbors batch by batch.
        (None, Some(_)) if stream.is_some() => None,
        (None, Some(_)) => bail!("--graph-reg needs --graph"),
        (Some(_), None) => bail!("--graph needs --graph-reg (e.g. --graph-reg multiplier=0.1,neighbors=1)"),
        (None, None) => None,
    };

    let mut trainer = Trainer::new(model.as_ref(), &vars, config.clone()).with_task(task);
    if let Some(metric) = settings.early_stopping.and_then(|p| p.1) {
        trainer = trainer.early_stopping_metric(metric);
    }
    if let (Some((table, _, _)), Some(reg)) = (&table, &graph_reg) {
        trainer = trainer.with_graph(table, reg);
    }
    if let Some(u) = &unlabeled {
        trainer = trainer.with_unlabeled(u, table.as_ref().and_then(|t| t.2.as_ref()), unlabeled_config.clone());
    }
    if let Some(vat) = &vat {
        trainer = trainer.with_vat(vat);
    }
    if let Some(adv) = &adv_reg {
        trainer = trainer.with_adversarial(adv);
        if record_path.is_some() {
            trainer = trainer.record_adversarial(record_every);
        }
    }
    // The state to resume from lives beside the run (`OUT.partial/`): the staged run directory is
    // removed when the process dies, the state must survive a kill.
    let partial = match (&command, checkpoint_every) {
        (Some(command), 1..) => {
            let partial = partial_dir(&out)?;
            if resume.is_none() {
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
            }
            Some(partial)
        }
        _ => None,
    };
    if let Some(dir) = &partial {
        let path = dir.join(STATE_FILE);
        let mut last = std::time::Instant::now();
        let epochs = config.epochs;
        trainer = trainer.on_epoch_state(checkpoint_every, move |state| {
            // The last epoch's state is always saved: if the save of the run fails, `--resume`
            // saves it from there without training again.
            if by_clock && last.elapsed() < CHECKPOINT_INTERVAL && state.epoch() < epochs {
                return Ok(());
            }
            state.save(&path)?;
            last = std::time::Instant::now();
            Ok(())
        });
    }
    let resumed_epochs = resume.as_ref().map_or(0, |(_, s)| s.epoch());
    if let Some((_, state)) = resume {
        trainer = trainer.resume_from(state);
    }
    let train_len = stream.as_ref().map_or(train.len(), PackedParts::rows);
    let batches = train_len.div_ceil(config.batch_size);
    let bar = ProgressBar::new((config.epochs * batches) as u64);
    bar.set_position((resumed_epochs * batches) as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} epoch {msg} ({elapsed}, eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let progress_bar = bar.clone();
    trainer = trainer.on_progress(move |p| {
        progress_bar.set_message(format!("{}/{}", p.epoch, p.epochs));
        progress_bar.inc(1);
    });
    let fitted = match &stream {
        Some(parts) => trainer.fit_packed(parts, &stream_config, graph_reg.as_ref(), validation.as_ref()),
        None => trainer.fit(&train, validation.as_ref()),
    };
    let history = match fitted {
        Ok(history) => history,
        Err(e) => {
            // Nothing to resume from yet: leave no `OUT.partial/` behind.
            if let Some(dir) = partial.as_ref().filter(|d| !d.join(STATE_FILE).exists()) {
                let _ = std::fs::remove_dir_all(dir);
            }
            return Err(e.into());
        }
    };
    bar.finish_and_clear();
    let test_evaluation = test.as_ref().map(|t| evaluate_task(model.as_ref(), t, task, 1024)).transpose()?;
    let test_accuracy = test_evaluation.as_ref().map(|e| e.accuracy).filter(|a| !a.is_nan());

    let summary = Summary {
        run: out.clone(),
        model: spec.to_string(),
        train_samples: train_len,
        epochs: config.epochs,
        task,
        final_train_metrics: history.epochs.last().and_then(|e| e.metrics.clone()),
        final_validation_metrics: history.epochs.last().and_then(|e| e.validation_metrics.clone()),
        test_loss: test_evaluation.as_ref().map(|e| e.loss),
        test_metrics: test_evaluation.map(|e| e.metrics),
        final_train_accuracy: history.epochs.last().map_or(0.0, |e| e.accuracy),
        test_accuracy,
        steady_epoch_seconds: history.steady_epoch_seconds(),
        graph: table.as_ref().map(|(_, r, _)| r.clone()),
        best_epoch: history.best_epoch,
    };
    let mut setup = serde_json::json!({ "config": config, "graph_reg": graph_reg, "adv_reg": adv_reg, "vat": vat, "unlabeled": unlabeled_path.as_ref().map(|p| serde_json::json!({ "samples": p, "config": unlabeled_config })), "samples": samples_path, "graph": graph_path });
    if let (Some(_), Some(map)) = (&stream, setup.as_object_mut()) {
        map.insert("stream".into(), serde_json::json!(stream_config));
    }
    let meta = CheckpointMeta::new(spec.clone(), train.item_shape().to_vec(), classes, names, init_seed, setup)
        .with_task(task);
    // The run is written whole into a hidden sibling of `out`, which then replaces `out` in one
    // step (nsl::io::StagedDir): a failure or a kill leaves the old run or the new one, never new
    // weights beside an old model.json. The adversarial record (graph + nodes) commits as a set.
    // The save is one step for the user: if it fails, say where the trained state is (a run that
    // saves states keeps it in OUT.partial/, and `--resume` saves it without training again).
    let mut save = || -> Result<_> {
        if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let staged = nsl::io::StagedDir::create(&out).with_context(|| format!("--out {}", out.display()))?;
        let run = staged.path();
        save_checkpoint(run, &meta, &vars).with_context(|| format!("writing the run {}", out.display()))?;
        for (name, bytes) in [
            ("history.json", serde_json::to_vec_pretty(&history)?),
            ("history.csv", history.to_csv().into_bytes()),
            ("summary.json", serde_json::to_vec_pretty(&summary)?),
        ] {
            nsl::io::write_bytes(&run.join(name), &bytes)
                .with_context(|| format!("writing {}", out.join(name).display()))?;
        }
        training_curves_svg(&history, &format!("nsl train {spec}"), &run.join("curves.svg"))
            .with_context(|| format!("writing {}", out.join("curves.svg").display()))?;
        let record = match &record_path {
            Some(path) => {
                let record = trainer.take_record();
                let mut outputs = nsl::io::OutputSet::new();
                let nodes = AdversarialRecord::nodes_path(path);
                if record_inside {
                    // Inside the run directory: written into the staged run, committed with it.
                    let name = path.file_name().context("--record-adversarial names no file")?;
                    with_spinner("writing adversarial neighbors", || record.write(&run.join(name)))?;
                } else {
                    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
                    }
                    let graph_out =
                        outputs.add(path).with_context(|| format!("--record-adversarial {}", path.display()))?;
                    let nodes_out =
                        outputs.add(&nodes).with_context(|| format!("--record-adversarial {}", nodes.display()))?;
                    with_spinner("writing adversarial neighbors", || record.write(&graph_out))?;
                    if AdversarialRecord::nodes_path(&graph_out) != nodes_out {
                        std::fs::rename(AdversarialRecord::nodes_path(&graph_out), &nodes_out)
                            .with_context(|| format!("writing {}", nodes.display()))?;
                    }
                }
                Some((outputs, record.examples.len(), path.clone(), nodes))
            }
            None => None,
        };
        staged.commit().with_context(|| format!("saving the run {}", out.display()))?;
        Ok(record)
    };
    let record = save().map_err(|e| explain_failed_save(e, partial.as_deref(), &out))?;
    if let Some(dir) = &partial {
        // The run is saved: its state has served.
        if let Err(e) = std::fs::remove_dir_all(dir) {
            errln!("warning: could not remove {}: {e}", dir.display());
        }
    }
    if let Some((outputs, examples, path, nodes)) = record {
        outputs.commit()?;
        errln!("recorded {examples} adversarial neighbors → {} and {}", path.display(), nodes.display());
    }

    if args.json {
        outln!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        if let Some((_, r, _)) = &table {
            outln!(
                "neighbors: {} of {} training samples have neighbors ({} pairs, {} distinct neighbor samples)",
                r.samples_with_neighbors,
                train_len,
                r.pairs,
                r.distinct_neighbors
            );
        }
        outln!(
            "trained {spec} for {} epochs on {} samples: train accuracy {:.4}, steady epoch {:.4} s",
            config.epochs,
            train_len,
            summary.final_train_accuracy,
            summary.steady_epoch_seconds.unwrap_or(0.0)
        );
        if let Some(acc) = test_accuracy {
            outln!("test accuracy: {acc:.4}");
        }
        if let (Task::Binary | Task::Multilabel | Task::Regression(_), Some(m)) = (task, &summary.test_metrics) {
            outln!("test {task} metrics: {}", serde_json::to_string(m)?);
        }
        outln!("run saved to {} (model.safetensors, model.json, history.csv, curves.svg)", out.display());
    }
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

/// The files a run directory holds; an existing `--out` directory is replaced only if it holds
/// nothing else (it may be a user's directory, not a run).
const RUN_FILES: [&str; 6] =
    ["model.safetensors", "model.json", "history.json", "history.csv", "summary.json", "curves.svg"];

/// Checks `--out` before training (so that a long run does not fail at the end): it must be a
/// directory or not exist, and an existing one may hold only a run's files; the adversarial
/// record must not overwrite an input. Returns whether the record goes inside the run directory.
fn check_run_outputs(out: &Path, record: Option<&Path>, inputs: &[(&str, &Path)]) -> Result<bool> {
    if out.exists() && !out.is_dir() {
        bail!(
            "--out {} is a file; a run is saved as a directory (model.json, model.safetensors, …): name a directory",
            out.display()
        );
    }
    let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let mut allowed: Vec<String> = RUN_FILES.iter().map(|s| s.to_string()).collect();
    let mut inside = false;
    if let Some(record) = record {
        let nodes = AdversarialRecord::nodes_path(record);
        nsl::io::check_paths(
            &[("--record-adversarial", record), ("--record-adversarial's nodes table", &nodes)],
            inputs,
        )?;
        let parent = record.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        inside = canonical(parent) == canonical(out);
        if inside {
            for p in [record, nodes.as_path()] {
                allowed.extend(p.file_name().map(|n| n.to_string_lossy().into_owned()));
            }
        }
    }
    // A run directory that cannot be replaced whole (read-only) fails now, not after training.
    nsl::io::check_replaceable(out).with_context(|| format!("--out {}", out.display()))?;
    if out.is_dir() {
        let entries = std::fs::read_dir(out).with_context(|| format!("reading --out {}", out.display()))?;
        let mut others = Vec::new();
        for entry in entries {
            let name = entry.with_context(|| format!("reading --out {}", out.display()))?.file_name();
            let name = name.to_string_lossy().into_owned();
            // Stale temporary files of an interrupted nsl write go with the old run.
            let stale_temp = name.starts_with('.') && name.ends_with(".tmp");
            if !allowed.contains(&name) && !stale_temp {
                others.push(name);
            }
        }
        if !others.is_empty() {
            others.sort();
            others.truncate(5);
            bail!(
                "--out {} holds files that are not a run's ({}): a run directory is replaced as a whole, so name a new or run directory",
                out.display(),
                others.join(", ")
            );
        }
    }
    Ok(inside)
}

/// The widest layer `model.json` accepts (so that a run that trains can be loaded).
const MAX_WIDTH: u128 = 1 << 24;

/// Checks the model's size before building it: every width at most [`MAX_WIDTH`], and the
/// weights, gradients and optimizer state (4 × parameters × 4 bytes) plus a batch's activations
/// within the available memory. Convolutions are bounded by the dense part's input at full image
/// size (an upper bound).
fn check_model_memory(spec: &ModelSpec, item_shape: &[usize], classes: usize, batch_size: usize) -> Result<()> {
    let (input, layers, flag): (u128, Vec<usize>, &str) = match spec {
        ModelSpec::Mlp(mlp) => {
            (item_shape.iter().map(|&d| d as u128).product(), mlp.hidden.clone(), "hidden layer units")
        }
        ModelSpec::Cnn(cnn) => {
            let pixels: u128 = item_shape.iter().rev().take(2).map(|&d| d as u128).product();
            let channels = item_shape.len().checked_sub(3).and_then(|i| item_shape.get(i)).map_or(1, |&c| c as u128);
            let mut width = channels;
            let mut parameters = 0u128;
            for &f in &cnn.filters {
                if f as u128 > MAX_WIDTH {
                    bail!("--model: {f} filters is more than the {MAX_WIDTH} a layer may have");
                }
                parameters = parameters
                    .saturating_add((f as u128).saturating_mul(width).saturating_mul((cnn.kernel as u128).pow(2)));
                width = f as u128;
            }
            nsl::io::check_memory(format!("--model {spec}: the convolutions' weights and state"), parameters, 16)?;
            nsl::io::check_memory(
                format!("--model {spec}: a batch's convolution activations (--batch-size {batch_size})"),
                (batch_size as u128)
                    .saturating_mul(pixels)
                    .saturating_mul(cnn.filters.iter().map(|&f| f as u128).sum::<u128>()),
                12,
            )?;
            (width.saturating_mul(pixels), cnn.dense.clone(), "dense layer units")
        }
        ModelSpec::Bow(bow) => {
            let mut tables = 0u128;
            for group in &bow.inputs {
                if let nsl::model::InputGroup::Tokens { vocab, .. } = group {
                    tables = tables.saturating_add((*vocab as u128).saturating_mul(bow.embed as u128));
                }
            }
            nsl::io::check_memory(format!("--model {spec}: the embedding tables and their state"), tables, 16)?;
            (bow.encoded_width() as u128, bow.hidden.clone(), "hidden layer units")
        }
        other => bail!("--model {other}: no size check for this kind of model"),
    };
    let mut parameters = 0u128;
    let mut activations = 0u128;
    let mut width = input;
    for &units in layers.iter().chain(std::iter::once(&classes)) {
        if units as u128 > MAX_WIDTH {
            bail!("--model {spec}: {flag} {units} is more than the {MAX_WIDTH} a layer may have");
        }
        parameters = parameters.saturating_add(width.saturating_mul(units as u128).saturating_add(units as u128));
        activations = activations.saturating_add((batch_size as u128).saturating_mul(units as u128));
        width = units as u128;
    }
    nsl::io::check_memory(
        format!("--model {spec}: {parameters} parameters (weights, gradients and Adam's two moments, f32)"),
        parameters,
        16,
    )?;
    nsl::io::check_memory(
        format!("--model {spec}: a batch's activations (--batch-size {batch_size})"),
        activations,
        12,
    )?;
    Ok(())
}
