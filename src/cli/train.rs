//! `nsl train`: train a model, optionally graph-regularized, and save the run.

use super::progress::with_spinner;
use super::ColumnArgs;
use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use nsl::data::{self, Dataset};
use nsl::eval::evaluate;
use nsl::graph;
use nsl::model::{build_model, ModelSpec};
use nsl::neighbors::NeighborTable;
use nsl::regularize::{
    AdvLoss, AdvNeighborConfig, AdvRegConfig, DistanceConfig, DistanceType, GraphRegConfig, Reduction, Transform,
};
use nsl::report::training_curves_svg;
use nsl::train::AdversarialRecord;
use nsl::train::{save_checkpoint, set_threads, CheckpointMeta, OptimizerConfig, TrainConfig, Trainer};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Flags of `nsl train`. Every flag can also come from `--config run.toml` (same names, with `_` for
/// `-`); flags given on the command line win.
#[derive(Args, Debug)]
#[command(after_help = "Example (NSL's Cora tutorial):\n  \
    nsl train --samples train.parquet --pool test.parquet --graph cora_graph.parquet --model mlp:50,50 --dropout 0.5 \\\n    \
    --graph-reg multiplier=0.1,neighbors=1,distance=l2 --epochs 100 --batch-size 128 --test test.parquet --out runs/cora")]
pub struct TrainArgs {
    /// TOML file with any of these settings (e.g. `samples = "train.parquet"`, `epochs = 100`,
    /// `graph_reg = "multiplier=0.1,neighbors=2"`); unknown keys are errors.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
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
    #[arg(long, value_name = "KEY=VALUE,…")]
    graph_reg: Option<String>,
    /// Adversarial regularization, as `key=value` pairs: `multiplier` (default 0.2), `step-size`
    /// (default 0.001; NSL's MNIST tutorial: 0.2), `norm` (l1 | l2 | inf, default l2),
    /// `pgd-iterations` (default 1 = FGSM), `epsilon` (PGD ball radius, default none), `clip`
    /// (MIN:MAX bounds of the perturbed features, e.g. 0:1 for pixels, default none), `random-init`
    /// (default false), `loss` (supervised = NSL's form, default; or a distance l1 | l2 | kl | jsd |
    /// cosine between the sample's and the neighbor's outputs, which needs no label). Combines with
    /// `--graph-reg`.
    #[arg(long, value_name = "KEY=VALUE,…")]
    adv_reg: Option<String>,
    /// Write the adversarial neighbors generated during training as a neighbor graph (`kind =
    /// adversarial`; Parquet or TSV by extension) plus a node table `NAME.nodes.parquet` (perturbed
    /// features, perturbation norm, predictions). Needs `--adv-reg`.
    #[arg(long, value_name = "FILE")]
    record_adversarial: Option<PathBuf>,
    /// With `--record-adversarial`: record every N-th epoch (and the last). Default 1.
    #[arg(long, value_name = "N")]
    record_every: Option<usize>,
    /// Model: `mlp:UNITS,…` or `cnn[:FILTERS,…]`. Default `mlp:50,50`.
    #[arg(long, value_name = "SPEC")]
    model: Option<String>,
    /// Dropout rate after hidden/dense layers, in training only. Default 0.5 for mlp, 0 for cnn.
    #[arg(long, value_name = "RATE")]
    dropout: Option<f32>,
    /// Passes over the training samples. Default 10.
    #[arg(long)]
    epochs: Option<usize>,
    /// Samples per batch. Default 32 (Keras' default).
    #[arg(long)]
    batch_size: Option<usize>,
    /// Optimizer: adam or sgd. Default adam.
    #[arg(long, value_name = "NAME")]
    optimizer: Option<String>,
    /// Learning rate. Default 0.001 for adam, 0.01 for sgd.
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
    #[arg(long)]
    strict: bool,
    /// Run directory: weights, model.json, history (JSON, CSV), curves.svg, summary.json. Default `runs/train`.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    #[command(flatten)]
    columns: ColumnArgs,
    /// Print the summary as JSON on standard output.
    #[arg(long)]
    json: bool,
}

/// `--config` file: the same settings as the flags.
#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    samples: Option<PathBuf>,
    pool: Option<PathBuf>,
    graph: Option<PathBuf>,
    graph_reg: Option<String>,
    adv_reg: Option<String>,
    record_adversarial: Option<PathBuf>,
    record_every: Option<usize>,
    model: Option<String>,
    dropout: Option<f32>,
    epochs: Option<usize>,
    batch_size: Option<usize>,
    optimizer: Option<String>,
    learning_rate: Option<f64>,
    seed: Option<u64>,
    init_seed: Option<u64>,
    threads: Option<usize>,
    validation: Option<PathBuf>,
    test: Option<PathBuf>,
    strict: Option<bool>,
    out: Option<PathBuf>,
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

/// Parses `--graph-reg multiplier=0.1,neighbors=1,distance=l2,…` (see the flag's help).
pub fn parse_graph_reg(spec: &str) -> Result<GraphRegConfig> {
    let mut config = GraphRegConfig {
        distance: DistanceConfig { sum_over_axis: Some(-1), ..Default::default() },
        ..Default::default()
    };
    for pair in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').with_context(|| format!("`{pair}` in --graph-reg is not KEY=VALUE"))?;
        let bad = || format!("invalid value `{value}` for `{key}` in --graph-reg");
        match key.trim().replace('_', "-").as_str() {
            "multiplier" => config.multiplier = value.parse().with_context(bad)?,
            "neighbors" | "max-neighbors" => {
                let n: i64 = value.parse().with_context(bad)?;
                if n < 0 {
                    bail!("neighbors={n} in --graph-reg: the number of neighbors cannot be negative");
                }
                config.max_neighbors = n as usize;
            }
            "distance" => {
                config.distance.distance = match value {
                    "l1" => DistanceType::L1,
                    "l2" => DistanceType::L2,
                    "cosine" => DistanceType::Cosine,
                    "kl" | "kl_divergence" => DistanceType::KlDivergence,
                    "jsd" | "jensen_shannon_divergence" => DistanceType::JensenShannonDivergence,
                    _ => bail!("{} (expected l1, l2, cosine, kl or jsd)", bad()),
                }
            }
            "transform" => {
                config.distance.transform = match value {
                    "none" => Transform::None,
                    "softmax" => Transform::Softmax,
                    "sigmoid" => Transform::Sigmoid,
                    _ => bail!("{} (expected none, softmax or sigmoid)", bad()),
                }
            }
            "reduction" => {
                config.distance.reduction = match value {
                    "sum_by_nonzero_weights" => Reduction::SumByNonzeroWeights,
                    "sum" => Reduction::Sum,
                    "mean" => Reduction::Mean,
                    "sum_over_batch_size" => Reduction::SumOverBatchSize,
                    "none" => bail!("reduction=none gives no single loss; use sum"),
                    _ => bail!("{} (expected sum_by_nonzero_weights, sum, mean or sum_over_batch_size)", bad()),
                }
            }
            "sum-over-axis" => {
                config.distance.sum_over_axis = if value == "none" { None } else { Some(value.parse().with_context(bad)?) }
            }
            "layer" => config.layer = Some(value.to_string()),
            "stop-gradient" => config.stop_gradient = value.parse().with_context(bad)?,
            other => bail!(
                "unknown key `{other}` in --graph-reg (known: multiplier, neighbors, distance, transform, reduction, sum-over-axis, layer, stop-gradient)"
            ),
        }
    }
    config.validate().map_err(anyhow::Error::msg)?;
    Ok(config)
}

/// Parses `--adv-reg multiplier=0.2,step-size=0.2,norm=inf,…` (see the flag's help).
pub fn parse_adv_reg(spec: &str) -> Result<AdvRegConfig> {
    let mut config = AdvRegConfig::default();
    let neighbor: &mut AdvNeighborConfig = &mut config.neighbor;
    let mut multiplier = 0.2;
    let mut loss = AdvLoss::Supervised;
    for pair in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').with_context(|| format!("`{pair}` in --adv-reg is not KEY=VALUE"))?;
        let bad = || format!("invalid value `{value}` for `{key}` in --adv-reg");
        match key.trim().replace('_', "-").as_str() {
            "multiplier" => multiplier = value.parse().with_context(bad)?,
            "step-size" | "adv-step-size" => neighbor.step_size = value.parse().with_context(bad)?,
            "norm" | "grad-norm" => neighbor.grad_norm = value.parse().map_err(anyhow::Error::msg)?,
            "pgd-iterations" | "iterations" => neighbor.pgd_iterations = value.parse().with_context(bad)?,
            "epsilon" | "pgd-epsilon" => neighbor.pgd_epsilon = Some(value.parse().with_context(bad)?),
            "clip" => {
                let (lo, hi) = value.split_once(':').with_context(|| format!("{} (expected MIN:MAX)", bad()))?;
                neighbor.clip_min = if lo.is_empty() { None } else { Some(lo.parse().with_context(bad)?) };
                neighbor.clip_max = if hi.is_empty() { None } else { Some(hi.parse().with_context(bad)?) };
            }
            "random-init" => neighbor.random_init = value.parse().with_context(bad)?,
            "loss" => {
                let distance = |d| AdvLoss::Distance(DistanceConfig { distance: d, sum_over_axis: Some(-1), ..Default::default() });
                loss = match value {
                    "supervised" => AdvLoss::Supervised,
                    "l1" => distance(DistanceType::L1),
                    "l2" => distance(DistanceType::L2),
                    "cosine" => distance(DistanceType::Cosine),
                    "kl" => AdvLoss::Distance(DistanceConfig {
                        distance: DistanceType::KlDivergence,
                        transform: Transform::Softmax,
                        sum_over_axis: Some(-1),
                        ..Default::default()
                    }),
                    "jsd" => AdvLoss::Distance(DistanceConfig {
                        distance: DistanceType::JensenShannonDivergence,
                        transform: Transform::Softmax,
                        sum_over_axis: Some(-1),
                        ..Default::default()
                    }),
                    _ => bail!("{} (expected supervised, l1, l2, cosine, kl or jsd)", bad()),
                }
            }
            other => bail!(
                "unknown key `{other}` in --adv-reg (known: multiplier, step-size, norm, pgd-iterations, epsilon, clip, random-init, loss)"
            ),
        }
    }
    config.multiplier = multiplier;
    config.loss = loss;
    Ok(config)
}

fn read(path: &Path, columns: &ColumnArgs) -> Result<Dataset> {
    Ok(with_spinner(format!("reading {}", path.display()), || data::read_samples(path, &columns.to_columns()))?)
}

/// Runs `nsl train`.
pub fn run(args: &TrainArgs) -> Result<()> {
    let file: FileConfig = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            toml::from_str(&text).with_context(|| format!("{}: invalid config", path.display()))?
        }
        None => FileConfig::default(),
    };
    if let Some(threads) = args.threads.or(file.threads) {
        set_threads(threads);
    }
    let samples_path =
        args.samples.clone().or(file.samples).context("--samples is required (or `samples` in --config)")?;
    let pool_path = args.pool.clone().or(file.pool);
    let graph_path = args.graph.clone().or(file.graph);
    let graph_reg = args.graph_reg.clone().or(file.graph_reg).map(|s| parse_graph_reg(&s)).transpose()?;
    let adv_reg = args.adv_reg.clone().or(file.adv_reg).map(|s| parse_adv_reg(&s)).transpose()?;
    let record_path = args.record_adversarial.clone().or(file.record_adversarial);
    let record_every = args.record_every.or(file.record_every).unwrap_or(1);
    if record_path.is_some() && adv_reg.is_none() {
        bail!("--record-adversarial needs --adv-reg");
    }
    let model_text = args.model.clone().or(file.model).unwrap_or_else(|| "mlp:50,50".into());
    let mut spec: ModelSpec = model_text.parse().map_err(anyhow::Error::msg)?;
    if let Some(dropout) = args.dropout.or(file.dropout) {
        if !(0.0..1.0).contains(&dropout) {
            bail!("--dropout {dropout} must be in [0, 1)");
        }
        spec = spec.with_dropout(dropout);
    }
    let optimizer = match args.optimizer.clone().or(file.optimizer).as_deref().unwrap_or("adam") {
        "adam" => OptimizerConfig::Adam { learning_rate: args.learning_rate.or(file.learning_rate).unwrap_or(0.001) },
        "sgd" => OptimizerConfig::Sgd { learning_rate: args.learning_rate.or(file.learning_rate).unwrap_or(0.01) },
        other => bail!("unknown optimizer `{other}` (expected adam or sgd)"),
    };
    let seed = args.seed.or(file.seed).unwrap_or(0);
    let init_seed = args.init_seed.or(file.init_seed).unwrap_or(seed);
    let config = TrainConfig {
        epochs: args.epochs.or(file.epochs).unwrap_or(10),
        batch_size: args.batch_size.or(file.batch_size).unwrap_or(32),
        optimizer,
        seed,
        shuffle: true,
    };
    if config.epochs == 0 || config.batch_size == 0 {
        bail!("--epochs and --batch-size must be at least 1");
    }
    let strict = args.strict || file.strict.unwrap_or(false);
    let out = args.out.clone().or(file.out).unwrap_or_else(|| PathBuf::from("runs/train"));
    let validation_path = args.validation.clone().or(file.validation);
    let test_path = args.test.clone().or(file.test);

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
        adv.validate(train.dim()).map_err(anyhow::Error::msg)?;
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
    let mut progress = |epoch: usize, _batch: usize, _batches: usize| {
        bar.set_message(format!("{epoch}/{}", config.epochs));
        bar.inc(1);
    };
    let history = trainer.fit(&train, validation.as_ref(), &mut progress)?;
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
        serde_json::json!({ "config": config, "graph_reg": graph_reg, "samples": samples_path, "graph": graph_path }),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_reg_flags() {
        let c = parse_graph_reg("multiplier=0.1,neighbors=2,distance=cosine,stop-gradient=true").unwrap();
        assert_eq!(c.multiplier, 0.1);
        assert_eq!(c.max_neighbors, 2);
        assert_eq!(c.distance.distance, DistanceType::Cosine);
        assert_eq!(c.distance.sum_over_axis, Some(-1));
        assert!(c.stop_gradient);
        assert!(parse_graph_reg("multiplier=-1").is_err());
        assert!(parse_graph_reg("neighbors=-1").is_err());
        assert!(parse_graph_reg("colour=red").is_err());
    }

    #[test]
    fn adv_reg_flags() {
        let c = parse_adv_reg("multiplier=0.2,step-size=0.2,norm=inf,clip=0:1,pgd-iterations=3,epsilon=0.3").unwrap();
        assert_eq!(c.multiplier, 0.2);
        assert_eq!(c.neighbor.step_size, 0.2);
        assert_eq!(c.neighbor.grad_norm, nsl::regularize::NormType::Infinity);
        assert_eq!((c.neighbor.clip_min, c.neighbor.clip_max), (Some(0.0), Some(1.0)));
        assert_eq!(c.neighbor.pgd_iterations, 3);
        assert_eq!(c.neighbor.pgd_epsilon, Some(0.3));
        assert!(matches!(parse_adv_reg("loss=kl").unwrap().loss, AdvLoss::Distance(_)));
        assert!(parse_adv_reg("norm=l3").is_err());
        assert!(parse_adv_reg("clip=0").is_err());
    }
}
