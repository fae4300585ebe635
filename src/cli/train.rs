//! `nsl train`: train a model, optionally graph-regularized, and save the run.

use super::progress::with_spinner;
use super::{from_text, set_threads, ColumnArgs};
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use nsl::data::Dataset;
use nsl::eval::evaluate;
use nsl::graph;
use nsl::model::{build_model, ModelSpec};
use nsl::neighbors::NeighborTable;
use nsl::regularize::{AdvRegConfig, GraphRegConfig, VatConfig};
use nsl::report::training_curves_svg;
use nsl::train::AdversarialRecord;
use nsl::train::{save_checkpoint, CheckpointMeta, OptimizerConfig, TrainConfig, Trainer, UnlabeledConfig};
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
        /// The samples are NSL-packed TFRecord records (`pack_nbrs` output): the neighbors packed in
        /// each record (`NL_num_nbrs`, `NL_nbr_<j>_weight`, `NL_nbr_<j>_<feature>`) are the graph and
        /// the pool, in place of `--graph` and `--pool`. Needs `--graph-reg`.
        #[arg(long, num_args = 0, default_missing_value = "true")]
        packed: Option<bool>,
        /// Extra samples that may serve as neighbors but are not trained on with their labels (NSL's Cora
        /// tutorial uses the test papers).
        #[arg(long, value_name = "FILE")]
        pool: Option<PathBuf>,
        /// Neighbor graph (Parquet or NSL TSV) for graph regularization.
        #[arg(long, value_name = "FILE")]
        graph: Option<PathBuf>,
        /// Graph regularization, as `key=value` pairs: `multiplier` (default 0.01), `neighbors` (max per
        /// sample, default 1), `distance` (l1 | l2 | cosine | kl | jsd, default l2), `transform` (none |
        /// softmax | sigmoid, default none), `reduction` (sum_by_nonzero_weights | sum | mean |
        /// sum_over_batch_size, default sum_by_nonzero_weights), `sum-over-axis` (default -1, as NSL's
        /// tutorials; `none` for elementwise), `layer` (a hidden layer name, default the logits),
        /// `stop-gradient` (true | false, default false). Needs `--graph`.
        #[arg(long, value_name = "KEY=VALUE,…", value_parser = GraphRegConfig::from_kv)]
        #[serde(deserialize_with = "from_text")]
        graph_reg: Option<GraphRegConfig>,
        /// Adversarial regularization, as `key=value` pairs: `multiplier` (default 0.2), `step-size`
        /// (default 0.001; NSL's MNIST tutorial: 0.2), `norm` (l1 | l2 | inf, default l2),
        /// `pgd-iterations` (default 1 = FGSM), `epsilon` (PGD ball radius, default none), `clip`
        /// (MIN:MAX bounds of the perturbed features, e.g. 0:1 for pixels, default none), `random-init`
        /// (default false), `loss` (supervised = NSL's form, default; or a distance l1 | l2 | kl | jsd |
        /// cosine between the sample's and the neighbor's outputs: the neighbor is still crafted from
        /// the labels' loss gradient, only the loss term compares outputs). Combines with `--graph-reg`.
        #[arg(long, value_name = "KEY=VALUE,…", value_parser = AdvRegConfig::from_kv)]
        #[serde(deserialize_with = "from_text")]
        adv_reg: Option<AdvRegConfig>,
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
        /// Stop when the `--validation` accuracy has not improved for N epochs and keep the best
        /// epoch's weights: `patience=N` (or just `N`). Default: off.
        #[arg(long, value_name = "patience=N", value_parser = parse_patience)]
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
        /// Model: `mlp:UNITS,…`, `cnn[:FILTERS,…]` or `bow[:EMBED,UNITS,…]` (token-id lists: embeddings
        /// mean-pooled per list, then dense layers; `bow` = `bow:50`). Default `mlp:50,50`.
        #[arg(long, value_name = "SPEC", value_parser = ModelSpec::from_str)]
        #[serde(deserialize_with = "from_text")]
        model: Option<ModelSpec>,
        /// Dropout rate after hidden/dense layers, in training only. Default 0.5 for mlp, 0 for cnn.
        #[arg(long, value_name = "RATE")]
        dropout: Option<f32>,
        /// Passes over the training samples. Default 10.
        #[arg(long)]
        epochs: Option<usize>,
        /// Samples per batch. Default 32 (Keras' default).
        #[arg(long)]
        batch_size: Option<usize>,
        /// Optimizer. Default adam.
        #[arg(long, value_name = "NAME")]
        optimizer: Option<OptimizerName>,
        /// Learning rate. Default 0.001 for adam, 0.01 for sgd (Keras' defaults).
        #[arg(long, value_name = "LR")]
        learning_rate: Option<f64>,
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

/// `--early-stopping`'s value.
#[derive(Clone, Copy, Debug)]
struct Patience(usize);

impl FromStr for Patience {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let n = s.strip_prefix("patience=").unwrap_or(s);
        match n.parse::<usize>() {
            Ok(n) if n > 0 => Ok(Patience(n)),
            _ => Err(format!("invalid value `{s}` for --early-stopping: expected patience=N with N ≥ 1")),
        }
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
    final_train_accuracy: f64,
    test_accuracy: Option<f64>,
    steady_epoch_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    best_epoch: Option<usize>,
    graph: Option<nsl::neighbors::NeighborReport>,
}

fn read(path: &Path, columns: &ColumnArgs) -> Result<Dataset> {
    with_spinner(format!("reading {}", path.display()), || super::convert::read_samples(path, &columns.to_columns()))
}

/// Runs `nsl train`.
pub fn run(args: &TrainArgs) -> Result<()> {
    let file: TrainSettings = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            toml::from_str(&text).with_context(|| format!("{}: invalid config", path.display()))?
        }
        None => TrainSettings::default(),
    };
    let settings = args.settings.clone().or(file);
    if let Some(threads) = settings.threads {
        set_threads(threads);
    }
    let samples_path = settings.samples.context("--samples is required (or `samples` in --config)")?;
    let (pool_path, graph_path) = (settings.pool, settings.graph);
    let (graph_reg, adv_reg) = (settings.graph_reg, settings.adv_reg);
    let record_path = settings.record_adversarial;
    let record_every = settings.record_every.unwrap_or(1);
    if record_path.is_some() && adv_reg.is_none() {
        bail!("--record-adversarial needs --adv-reg");
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
        ..defaults
    };
    config.validate()?;
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
        ("--samples", Some(samples_path.as_path())),
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

    let packed = settings.packed.unwrap_or(false);
    if packed && (pool_path.is_some() || graph_path.is_some() || unlabeled_path.is_some()) {
        bail!("--packed takes the graph and the pool from the records: drop --graph, --pool and --unlabeled");
    }
    if packed && graph_reg.is_none() {
        bail!("--packed needs --graph-reg (e.g. --graph-reg multiplier=0.1,neighbors=1)");
    }
    let (train, packed_pool, packed_graph) = if packed {
        let p = with_spinner(format!("reading {}", samples_path.display()), || {
            nsl::tfrecord::read_packed(std::slice::from_ref(&samples_path), &args.columns.to_columns())
        })?;
        (p.samples, p.pool, Some(p.graph))
    } else {
        (read(&samples_path, &args.columns)?, None, None)
    };
    let Some(classes) = train.num_classes() else {
        bail!("{}: the training samples have no labels", samples_path.display())
    };
    if train.is_empty() {
        bail!("{}: the training set is empty", samples_path.display());
    }
    let unlabeled = unlabeled_path.as_deref().map(|p| read(p, &args.columns)).transpose()?;
    let pool = match (&pool_path, &unlabeled) {
        (Some(p), _) => Some(read(p, &args.columns)?),
        (None, Some(u)) => Some(u.clone()),
        (None, None) => packed_pool,
    };
    let validation = validation_path.as_deref().map(|p| read(p, &args.columns)).transpose()?;
    let test = test_path.as_deref().map(|p| read(p, &args.columns)).transpose()?;
    for (name, other) in
        [("--pool", &pool), ("--unlabeled", &unlabeled), ("--validation", &validation), ("--test", &test)]
    {
        if let Some(d) = other {
            if d.dim() != train.dim() {
                bail!("{name} samples have {} features but the training samples have {}", d.dim(), train.dim());
            }
            if train.layout().has_tokens() {
                d.clone().with_layout(train.layout().clone()).with_context(|| {
                    format!("{name} samples do not fit the training samples' feature groups (token ids past the vocabulary?)")
                })?;
            }
        }
    }
    let spec = spec.for_inputs(&super::model_inputs(train.layout()))?;
    if let Some(adv) = &adv_reg {
        // Perturbations move the model's encoded input (pooled embeddings for token groups).
        let width = match &spec {
            ModelSpec::Bow(bow) => bow.encoded_width(),
            _ => train.dim(),
        };
        adv.validate(width)?;
    }
    check_model_memory(&spec, train.item_shape(), classes, config.batch_size)?;
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
                eprintln!("warning: {message}");
            }
            Some((table, report, utable))
        }
        (None, Some(_)) => bail!("--graph-reg needs --graph"),
        (Some(_), None) => bail!("--graph needs --graph-reg (e.g. --graph-reg multiplier=0.1,neighbors=1)"),
        (None, None) => None,
    };

    let mut trainer = Trainer::new(model.as_ref(), &vars, config.clone());
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
    let bar = ProgressBar::new((config.epochs * train.len().div_ceil(config.batch_size)) as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} epoch {msg} ({elapsed}, eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let progress_bar = bar.clone();
    trainer = trainer.on_progress(move |p| {
        progress_bar.set_message(format!("{}/{}", p.epoch, p.epochs));
        progress_bar.inc(1);
    });
    let history = trainer.fit(&train, validation.as_ref())?;
    bar.finish_and_clear();
    let test_accuracy = test.as_ref().map(|t| evaluate(model.as_ref(), t, 1024)).transpose()?.map(|e| e.accuracy);

    let summary = Summary {
        run: out.clone(),
        model: spec.to_string(),
        train_samples: train.len(),
        epochs: config.epochs,
        final_train_accuracy: history.epochs.last().map_or(0.0, |e| e.accuracy),
        test_accuracy,
        steady_epoch_seconds: history.steady_epoch_seconds(),
        graph: table.as_ref().map(|(_, r, _)| r.clone()),
        best_epoch: history.best_epoch,
    };
    let meta = CheckpointMeta::new(
        spec.clone(),
        train.item_shape().to_vec(),
        classes,
        train.class_names().map(<[String]>::to_vec),
        init_seed,
        serde_json::json!({ "config": config, "graph_reg": graph_reg, "adv_reg": adv_reg, "vat": vat, "unlabeled": unlabeled_path.as_ref().map(|p| serde_json::json!({ "samples": p, "config": unlabeled_config })), "samples": samples_path, "graph": graph_path }),
    );
    // The run is written whole into a hidden sibling of `out`, which then replaces `out` in one
    // step (nsl::io::StagedDir): a failure or a kill leaves the old run or the new one, never new
    // weights beside an old model.json. The adversarial record (graph + nodes) commits as a set.
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
    if let Some((outputs, examples, path, nodes)) = record {
        outputs.commit()?;
        eprintln!("recorded {examples} adversarial neighbors → {} and {}", path.display(), nodes.display());
    }

    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        if let Some((_, r, _)) = &table {
            println!(
                "neighbors: {} of {} training samples have neighbors ({} pairs, {} distinct neighbor samples)",
                r.samples_with_neighbors,
                train.len(),
                r.pairs,
                r.distinct_neighbors
            );
        }
        println!(
            "trained {spec} for {} epochs on {} samples: train accuracy {:.4}, steady epoch {:.4} s",
            config.epochs,
            train.len(),
            summary.final_train_accuracy,
            summary.steady_epoch_seconds.unwrap_or(0.0)
        );
        if let Some(acc) = test_accuracy {
            println!("test accuracy: {acc:.4}");
        }
        println!("run saved to {} (model.safetensors, model.json, history.csv, curves.svg)", out.display());
    }
    Ok(())
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
