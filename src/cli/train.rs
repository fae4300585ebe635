//! `nsl train`: train a model, optionally graph-regularized, and save the run.

use super::progress::with_spinner;
use super::{from_text, set_threads, ColumnArgs};
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use nsl::data::{self, Dataset};
use nsl::eval::evaluate;
use nsl::graph;
use nsl::model::{build_model, ModelSpec};
use nsl::neighbors::NeighborTable;
use nsl::regularize::{AdvRegConfig, GraphRegConfig};
use nsl::report::training_curves_svg;
use nsl::train::AdversarialRecord;
use nsl::train::{save_checkpoint, CheckpointMeta, OptimizerConfig, TrainConfig, Trainer};
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
        /// Labeled training samples (Parquet, CSV, IDX or LINQS).
        #[arg(long, value_name = "FILE")]
        samples: Option<PathBuf>,
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
        /// Write the adversarial neighbors generated during training as a neighbor graph (`kind =
        /// adversarial`; Parquet or TSV by extension) plus a node table `NAME.nodes.parquet` (perturbed
        /// features, perturbation norm, predictions). Needs `--adv-reg`.
        #[arg(long, value_name = "FILE")]
        record_adversarial: Option<PathBuf>,
        /// With `--record-adversarial`: record every N-th epoch (and the last). Default 1.
        #[arg(long, value_name = "N")]
        record_every: Option<usize>,
        /// Model: `mlp:UNITS,…` or `cnn[:FILTERS,…]`. Default `mlp:50,50`.
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
    graph: Option<nsl::neighbors::NeighborReport>,
}

fn read(path: &Path, columns: &ColumnArgs) -> Result<Dataset> {
    Ok(with_spinner(format!("reading {}", path.display()), || data::read_samples(path, &columns.to_columns()))?)
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
        ..defaults
    };
    config.validate()?;
    let strict = settings.strict.unwrap_or(false);
    let out = settings.out.unwrap_or_else(|| PathBuf::from("runs/train"));
    let (validation_path, test_path) = (settings.validation, settings.test);

    let train = read(&samples_path, &args.columns)?;
    let Some(classes) = train.num_classes() else {
        bail!("{}: the training samples have no labels", samples_path.display())
    };
    if train.is_empty() {
        bail!("{}: the training set is empty", samples_path.display());
    }
    let pool = pool_path.as_deref().map(|p| read(p, &args.columns)).transpose()?;
    let validation = validation_path.as_deref().map(|p| read(p, &args.columns)).transpose()?;
    let test = test_path.as_deref().map(|p| read(p, &args.columns)).transpose()?;
    for (name, other) in [("--pool", &pool), ("--validation", &validation), ("--test", &test)] {
        if let Some(d) = other {
            if d.dim() != train.dim() {
                bail!("{name} samples have {} features but the training samples have {}", d.dim(), train.dim());
            }
        }
    }

    if let Some(adv) = &adv_reg {
        adv.validate(train.dim())?;
    }
    let (model, vars) = build_model(&spec, train.item_shape(), classes, init_seed, &candle_core::Device::Cpu)?;
    let table = match (&graph_path, &graph_reg) {
        (Some(path), Some(reg)) => {
            let g = with_spinner("reading graph", || graph::read_graph(path))?;
            let (table, report) = NeighborTable::new(&train, pool.as_ref(), &g, reg.max_neighbors)?;
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
            Some((table, report))
        }
        (None, Some(_)) => bail!("--graph-reg needs --graph"),
        (Some(_), None) => bail!("--graph needs --graph-reg (e.g. --graph-reg multiplier=0.1,neighbors=1)"),
        (None, None) => None,
    };

    let mut trainer = Trainer::new(model.as_ref(), &vars, config.clone());
    if let (Some((table, _)), Some(reg)) = (&table, &graph_reg) {
        trainer = trainer.with_graph(table, reg);
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
    if let Some(path) = &record_path {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let record = trainer.take_record();
        with_spinner("writing adversarial neighbors", || record.write(path))?;
        eprintln!(
            "recorded {} adversarial neighbors → {} and {}",
            record.examples.len(),
            path.display(),
            AdversarialRecord::nodes_path(path).display()
        );
    }
    let test_accuracy = test.as_ref().map(|t| evaluate(model.as_ref(), t, 1024)).transpose()?.map(|e| e.accuracy);

    let summary = Summary {
        run: out.clone(),
        model: spec.to_string(),
        train_samples: train.len(),
        epochs: config.epochs,
        final_train_accuracy: history.epochs.last().map_or(0.0, |e| e.accuracy),
        test_accuracy,
        steady_epoch_seconds: history.steady_epoch_seconds(),
        graph: table.as_ref().map(|(_, r)| r.clone()),
    };
    let meta = CheckpointMeta::new(
        spec.clone(),
        train.item_shape().to_vec(),
        classes,
        train.class_names().map(<[String]>::to_vec),
        init_seed,
        serde_json::json!({ "config": config, "graph_reg": graph_reg, "adv_reg": adv_reg, "samples": samples_path, "graph": graph_path }),
    );
    save_checkpoint(&out, &meta, &vars)?;
    for (name, bytes) in [
        ("history.json", serde_json::to_vec_pretty(&history)?),
        ("history.csv", history.to_csv().into_bytes()),
        ("summary.json", serde_json::to_vec_pretty(&summary)?),
    ] {
        let path = out.join(name);
        nsl::io::write_bytes(&path, &bytes).with_context(|| format!("writing {}", path.display()))?;
    }
    training_curves_svg(&history, &format!("nsl train {spec}"), &out.join("curves.svg"))?;

    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        if let Some((_, r)) = &table {
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
