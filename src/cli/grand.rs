//! `nsl graph grand`: a GRAND teacher ([`nsl::grand`]) trained on a graph's labeled nodes, its
//! probabilities for every node written as `nsl predict` writes them.

use super::progress::{with_spinner, TrainBar};
use super::{set_threads, ColumnArgs};
use anyhow::{Context, Result};
use clap::Args;
use nsl::grand::{Grand, GrandConfig, GrandReport};
use nsl::graph;
use serde::Serialize;
use std::path::PathBuf;

/// Flags of `nsl graph grand`.
#[derive(Args, Debug)]
#[command(
    after_help = "Each epoch draws --views DropNode views of the L1-normalized features (each node's row zeroed with\n\
    probability --dropnode), propagates each as 1/(K+1)·Σ_k Â^k·X (K = --order, Â = D^-1/2 (A + I) D^-1/2, as\n\
    `nsl graph propagate --mode mixed`), and trains Linear(hidden) → ReLU → Linear(classes), with dropout\n\
    before each, on the mean cross-entropy of the labeled nodes plus λ times the consistency of the views with\n\
    their sharpened mean over all nodes. At evaluation no node is dropped and the features are scaled by\n\
    1 − δ. Early stopping on the validation nodes keeps the weights of the lowest validation loss. The\n\
    defaults are the official Cora settings; the official Citeseer run is --input-dropout 0 --hidden-dropout\n\
    0.2 --order 2 --views 2 --temperature 0.3 --lambda 0.7. No batch normalization (the official Pubmed run\n\
    uses it).\n\n\
    Example:\n  nsl graph grand g.parquet --samples all.parquet --train tr.parquet --validation va.parquet \\\n    \
    --test te.parquet --ensemble 5 --output grand.csv\n  \
    nsl train --config student.toml --distill teacher=grand.csv …"
)]
pub struct GrandArgs {
    /// The graph: Parquet or NSL TSV (recognized by content).
    graph: PathBuf,
    /// Every node, with its features (labels ignored); the output has one row per sample.
    #[arg(long, value_name = "FILE")]
    samples: PathBuf,
    /// The labeled training nodes: their ids (found in --samples) and labels.
    #[arg(long, value_name = "FILE")]
    train: PathBuf,
    /// The validation nodes (ids and labels): scored after every epoch, for early stopping.
    #[arg(long, value_name = "FILE")]
    validation: PathBuf,
    /// Test nodes (ids and labels), scored once at the end. Default: none.
    #[arg(long, value_name = "FILE")]
    test: Option<PathBuf>,
    #[command(flatten)]
    columns: ColumnArgs,
    /// Output CSV `id,prediction,p_<class>…` (`nsl predict`'s format), written atomically.
    #[arg(long, value_name = "FILE")]
    output: PathBuf,
    /// Seed of the first model (weights, DropNode and dropout masks).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Train N models, seeds SEED … SEED+N−1, and write the mean of their probabilities.
    #[arg(long, value_name = "N", default_value_t = 1)]
    ensemble: usize,
    /// Units of the hidden layer.
    #[arg(long, value_name = "UNITS", default_value_t = GrandConfig::default().hidden)]
    hidden: usize,
    /// Dropout rate on the propagated features (the MLP's input), in [0, 1).
    #[arg(long, value_name = "RATE", default_value_t = GrandConfig::default().input_dropout)]
    input_dropout: f32,
    /// Dropout rate after the hidden layer, in [0, 1).
    #[arg(long, value_name = "RATE", default_value_t = GrandConfig::default().hidden_dropout)]
    hidden_dropout: f32,
    /// DropNode rate δ: the probability that a node's features are zeroed in a view, in [0, 1).
    #[arg(long, value_name = "RATE", default_value_t = GrandConfig::default().dropnode)]
    dropnode: f32,
    /// K, the highest power of Â in the propagation (1 to 64).
    #[arg(long, value_name = "K", default_value_t = GrandConfig::default().order)]
    order: usize,
    /// S, the DropNode views per training step (at least 1).
    #[arg(long, value_name = "S", default_value_t = GrandConfig::default().views)]
    views: usize,
    /// T, the sharpening temperature of the consistency target (> 0).
    #[arg(long, value_name = "T", default_value_t = GrandConfig::default().temperature)]
    temperature: f64,
    /// λ, the weight of the consistency loss (≥ 0).
    #[arg(long, value_name = "LAMBDA", default_value_t = GrandConfig::default().lambda)]
    lambda: f64,
    /// Adam's learning rate.
    #[arg(long, value_name = "LR", default_value_t = GrandConfig::default().learning_rate)]
    learning_rate: f64,
    /// L2 weight decay added to every gradient (PyTorch's Adam weight_decay).
    #[arg(long, value_name = "WD", default_value_t = GrandConfig::default().weight_decay)]
    weight_decay: f64,
    /// Epochs without a new best validation loss or accuracy (a tie with the best accuracy counts as
    /// new, as in the official code) before training stops.
    #[arg(long, value_name = "EPOCHS", default_value_t = GrandConfig::default().patience)]
    patience: usize,
    /// The most epochs (full-batch steps).
    #[arg(long, value_name = "EPOCHS", default_value_t = GrandConfig::default().max_epochs)]
    max_epochs: usize,
    /// CPU threads. Default: all cores.
    #[arg(long)]
    threads: Option<usize>,
    /// Print the summary as JSON on standard output.
    #[arg(long)]
    json: bool,
}

/// What `nsl graph grand` reports.
#[derive(Serialize)]
struct Summary {
    output: PathBuf,
    config: GrandConfig,
    classes: Vec<String>,
    samples: usize,
    /// One entry per seed.
    seeds: Vec<GrandReport>,
    /// The mean of the seeds' probabilities.
    ensemble: Scores,
}

#[derive(Serialize)]
struct Scores {
    validation_accuracy: f64,
    test_accuracy: Option<f64>,
}

/// Runs `nsl graph grand`.
pub fn run(args: &GrandArgs) -> Result<()> {
    if let Some(threads) = args.threads {
        set_threads(threads)?;
    }
    let config = GrandConfig {
        hidden: args.hidden,
        input_dropout: args.input_dropout,
        hidden_dropout: args.hidden_dropout,
        dropnode: args.dropnode,
        order: args.order,
        views: args.views,
        temperature: args.temperature,
        lambda: args.lambda,
        learning_rate: args.learning_rate,
        weight_decay: args.weight_decay,
        patience: args.patience,
        max_epochs: args.max_epochs,
    };
    // The settings' names are the flags' (`--order`, …).
    match config.validate() {
        Err(nsl::grand::GrandError::InvalidConfig { option, value, expected }) => {
            anyhow::bail!("--{option} {value}: expected {expected}")
        }
        other => other?,
    }
    if args.ensemble == 0 {
        anyhow::bail!("--ensemble 0: give at least 1 model");
    }
    let mut inputs = vec![
        ("the graph", args.graph.as_path()),
        ("--samples", args.samples.as_path()),
        ("--train", args.train.as_path()),
        ("--validation", args.validation.as_path()),
    ];
    inputs.extend(args.test.as_deref().map(|p| ("--test", p)));
    nsl::io::check_paths(&[("--output", &args.output)], &inputs)?;
    // Before minutes of training: the output's directory must take a file.
    nsl::io::check_writable(&args.output).with_context(|| format!("--output {}", args.output.display()))?;

    let columns = args.columns.to_columns();
    let read = |flag: &str, path: &std::path::Path| {
        with_spinner(format!("reading {flag}"), || super::convert::read_nonempty(path, &columns, "train GRAND on"))
            .with_context(|| format!("{flag} {}", path.display()))
    };
    let g = with_spinner("reading graph", || graph::read_graph(&args.graph))
        .with_context(|| format!("the graph {}", args.graph.display()))?;
    let samples = read("--samples", &args.samples)?;
    let train = read("--train", &args.train)?;
    let validation = read("--validation", &args.validation)?;
    let test = args.test.as_deref().map(|p| read("--test", p)).transpose()?;
    let grand = with_spinner(format!("propagating over {} hops", config.order), || {
        Grand::new(&samples, &g, &train, &validation, test.as_ref(), config)
    })
    .map_err(|e| match &e {
        nsl::grand::GrandError::UnknownNode { set, .. }
        | nsl::grand::GrandError::NoLabels { set }
        | nsl::grand::GrandError::Empty { set }
        | nsl::grand::GrandError::UnknownClass { set, .. } => {
            let flag = if *set == "train" {
                "--train"
            } else if *set == "validation" {
                "--validation"
            } else {
                "--test"
            };
            anyhow::Error::new(e).context(format!("{flag}: the nodes GRAND learns from or is scored on"))
        }
        _ => anyhow::Error::new(e),
    })?;

    let mut reports = Vec::with_capacity(args.ensemble);
    let mut sum: Option<ndarray::Array2<f32>> = None;
    for k in 0..args.ensemble {
        let seed = args.seed + k as u64;
        let mut bar = TrainBar::new(config.max_epochs, 1, 0, true);
        let fit = grand.fit(seed, &mut |e| {
            bar.update(e.epoch, e.max_epochs, 1, 1);
            bar.epoch_done(e.epoch, e.max_epochs, e.loss, e.validation_accuracy);
        });
        bar.finish();
        let fit = fit.with_context(|| format!("training GRAND (seed {seed})"))?;
        let r = &fit.report;
        if !args.json {
            let test = r.test_accuracy.map(|t| format!(", test {:.1}%", 100.0 * t)).unwrap_or_default();
            errln!(
                "seed {seed}: validation {:.1}%{test}; kept epoch {} of {} ({:.1} s, {:.3} s per epoch)",
                100.0 * r.validation_accuracy,
                r.kept_epoch,
                r.epochs,
                r.seconds,
                r.epoch_seconds
            );
        }
        sum = Some(match sum {
            Some(s) => s + &fit.probabilities,
            None => fit.probabilities,
        });
        reports.push(fit.report);
    }
    let Some(mut probabilities) = sum else { anyhow::bail!("--ensemble 0: give at least 1 model") };
    probabilities.mapv_inplace(|v| v / args.ensemble as f32);
    let (validation_accuracy, test_accuracy) = grand.accuracies(probabilities.view());

    let csv = teacher_csv(samples.ids(), grand.class_names(), probabilities.view())?;
    nsl::io::write_bytes(&args.output, csv.as_bytes()).with_context(|| format!("writing {}", args.output.display()))?;
    let summary = Summary {
        output: args.output.clone(),
        config,
        classes: grand.class_names().to_vec(),
        samples: samples.len(),
        seeds: reports,
        ensemble: Scores { validation_accuracy, test_accuracy },
    };
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        let test = test_accuracy.map(|t| format!(", test {:.1}%", 100.0 * t)).unwrap_or_default();
        outln!(
            "GRAND, {} model(s): validation {:.1}%{test} → {} ({} samples, {} classes)",
            args.ensemble,
            100.0 * validation_accuracy,
            args.output.display(),
            samples.len(),
            grand.class_names().len()
        );
    }
    Ok(())
}

/// `nsl predict`'s CSV for a classifier: `id,prediction,p_<class>…`, the prediction the most
/// probable class, probabilities with 6 decimals.
fn teacher_csv(ids: &[String], names: &[String], probabilities: ndarray::ArrayView2<'_, f32>) -> Result<String> {
    // csv quotes the ids and class names that need it (a comma, a quote, a line break).
    let mut writer = csv::Writer::from_writer(Vec::new());
    let header = ["id".to_string(), "prediction".to_string()].into_iter().chain(names.iter().map(|n| format!("p_{n}")));
    writer.write_record(header)?;
    for (id, p) in ids.iter().zip(probabilities.rows()) {
        let best = p.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map_or(0, |(i, _)| i);
        let row = [id.clone(), names[best].clone()].into_iter().chain(p.iter().map(|v| format!("{v:.6}")));
        writer.write_record(row)?;
    }
    Ok(String::from_utf8(writer.into_inner().map_err(|e| e.into_error())?)?)
}
