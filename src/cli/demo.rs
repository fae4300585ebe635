//! `nsl demo`: the main job on the bundled data, in one command.
//!
//! By default it tells the story of adversarial learning on MNIST, NSL's tutorial set-up: a base
//! model and an adversarially-regularized one (multiplier 0.2, FGSM step 0.2, L∞, batch 32, 5 epochs),
//! their accuracy on clean test digits, on digits perturbed against the base model (transfer, as in
//! NSL's tutorial) and against each model itself (white-box), and a PNG of the digits that fool the
//! base model but not the regularized one. `--graph` walks the bundled Cora citation graph through
//! the graph tools instead.

use super::progress::with_spinner;
use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use nsl::data::{self, Dataset};
use nsl::data::{read_idx, IdxOptions};
use nsl::eval::{accuracy_on, adversarial_examples, Attack, AttackConfig};
use nsl::graph::{self};
use nsl::graph::{export, ExportFormat};
use nsl::graph::{graph_stats, SampleInfo};
use nsl::graph::{read_cites, UnknownIds};
use nsl::model::{build_model, Model, ModelSpec};
use nsl::regularize::{AdvNeighborConfig, AdvRegConfig, NormType};
use nsl::report::{digit_grid_png, training_curves_svg, DigitCell};
use nsl::train::{History, TrainConfig, Trainer};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Instant;

/// Flags of `nsl demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Directory for everything the demo writes (created if missing).
    #[arg(long, default_value = "demo-out", value_name = "DIR")]
    out: PathBuf,
    /// Directory of the bundled datasets. Default: `datasets` in the current directory, else the one
    /// next to the crate's sources.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Model: `mlp:256,128` (fast), or `cnn` for NSL's tutorial CNN. MLP dropout is 0.
    #[arg(long, default_value = "mlp:256,128", value_name = "SPEC", value_parser = ModelSpec::from_str)]
    model: ModelSpec,
    /// Training epochs of each model (NSL's tutorial: 5).
    #[arg(long, default_value_t = 5)]
    epochs: usize,
    /// Seed of weights and shuffling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// CPU threads. Default: 1 for the MLP, 2 for the CNN.
    #[arg(long)]
    threads: Option<usize>,
    /// Instead: walk the bundled Cora citation graph through convert, graph stats and export.
    #[arg(long)]
    graph: bool,
}

/// The seed of the adversarially-regularized model's initial weights: independent of the base model's
/// (`seed`), the same rule as `scripts/bench_mnist.sh` (`--init-seed SEED+1000`).
fn robust_init_seed(seed: u64) -> u64 {
    seed.wrapping_add(1000)
}

/// The demo's numbers (`DIR/summary.json`).
#[derive(Serialize)]
struct Summary {
    model: String,
    epochs: usize,
    seed: u64,
    attack: AttackConfig,
    base: Scores,
    adversarial: Scores,
    seconds: f64,
}

#[derive(Serialize)]
struct Scores {
    clean: f64,
    transfer_adversarial: f64,
    white_box: f64,
    steady_epoch_seconds: f64,
}

/// Runs `nsl demo`.
pub fn run(args: &DemoArgs) -> Result<()> {
    if args.out.exists() && !args.out.is_dir() {
        bail!("--out {} exists and is not a directory: name a directory for the demo's outputs", args.out.display());
    }
    let data_dir = dataset_dir(args.data_dir.as_deref())?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("--out {}: creating the directory", args.out.display()))?;
    if args.graph {
        cora(&data_dir, &args.out)
    } else {
        mnist(args, &data_dir)
    }
}

fn mnist(args: &DemoArgs, data_dir: &Path) -> Result<()> {
    let started = Instant::now();
    let spec = match args.model.clone() {
        spec @ ModelSpec::Mlp(_) => spec.with_dropout(0.0),
        other => other,
    };
    let threads = args.threads.unwrap_or(if matches!(spec, ModelSpec::Mlp(_)) { 1 } else { 2 });
    super::set_threads(threads)?;
    let mnist = data_dir.join("mnist");
    let (train, test) = with_spinner("reading MNIST", || -> Result<(Dataset, Dataset)> {
        let options = IdxOptions::default();
        Ok((
            read_idx(
                &mnist.join("train-images-idx3-ubyte.gz"),
                Some(&mnist.join("train-labels-idx1-ubyte.gz")),
                &options,
            )?,
            read_idx(
                &mnist.join("t10k-images-idx3-ubyte.gz"),
                Some(&mnist.join("t10k-labels-idx1-ubyte.gz")),
                &options,
            )?,
        ))
    })?;
    outln!(
        "MNIST: {} training and {} test digits; model {spec}, {} epochs, batch 32",
        train.len(),
        test.len(),
        args.epochs
    );

    let adv = AdvRegConfig {
        multiplier: 0.2,
        neighbor: AdvNeighborConfig { step_size: 0.2, grad_norm: NormType::Infinity, ..Default::default() },
        ..Default::default()
    };
    let config = TrainConfig { epochs: args.epochs, batch_size: 32, seed: args.seed, ..Default::default() };
    let train_one = |name: &str, adversarial: bool| -> Result<(Box<dyn Model>, History)> {
        // Same batches, independent starting weights: NSL's tutorial builds its two models one after
        // the other from one random stream. (Sharing the start makes the transfer attack far stronger.)
        let init_seed = if adversarial { robust_init_seed(args.seed) } else { args.seed };
        let (model, vars) = build_model(&spec, train.item_shape(), 10, init_seed, &candle_core::Device::Cpu)?;
        let mut trainer = Trainer::new(model.as_ref(), &vars, config.clone());
        if adversarial {
            trainer = trainer.with_adversarial(&adv);
        }
        let bar = ProgressBar::new((args.epochs * train.len().div_ceil(32)) as u64);
        bar.set_style(
            ProgressStyle::with_template(&format!("{name:>22} {{bar:30}} epoch {{msg}} ({{elapsed}}, eta {{eta}})"))
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let progress_bar = bar.clone();
        let history = trainer
            .on_progress(move |p| {
                progress_bar.set_message(format!("{}/{}", p.epoch, p.epochs));
                progress_bar.inc(1);
            })
            .fit(&train, None)?;
        bar.finish_and_clear();
        Ok((model, history))
    };
    let (base, base_history) = train_one("base model", false)?;
    let (robust, robust_history) = train_one("adversarially regularized", true)?;

    // NSL's tutorial attack: FGSM, ε = 0.2, L∞, clipped to valid pixels.
    let attack =
        AttackConfig { attack: Attack::Fgsm, norm: NormType::Infinity, epsilon: 0.2, clip: Some((0.0, 1.0)), seed: 0 };
    // Crafted on the base model, these are the base model's white-box attack and the regularized
    // model's transfer attack at once.
    let (transfer, robust_white) = with_spinner("attacking the test digits", || -> Result<_> {
        Ok((
            adversarial_examples(base.as_ref(), &test, &attack, 500)?,
            adversarial_examples(robust.as_ref(), &test, &attack, 500)?,
        ))
    })?;
    let clean = test.features().to_owned();
    let score = |model: &dyn Model, white: &ndarray::Array2<f32>, history: &History| -> Result<Scores> {
        Ok(Scores {
            clean: accuracy_on(model, &clean, &test, 1000)?,
            transfer_adversarial: accuracy_on(model, &transfer, &test, 1000)?,
            white_box: accuracy_on(model, white, &test, 1000)?,
            steady_epoch_seconds: history.steady_epoch_seconds().unwrap_or(0.0),
        })
    };
    let base_scores = score(base.as_ref(), &transfer, &base_history)?;
    let robust_scores = score(robust.as_ref(), &robust_white, &robust_history)?;

    outln!("\nAccuracy on the 10,000 test digits (FGSM ε = 0.2, L∞, clipped to [0, 1]):\n");
    outln!("| model | clean | adversarial (crafted on base) | white-box (crafted on itself) | s/epoch |");
    outln!("|---|---|---|---|---|");
    for (name, s) in [("base", &base_scores), ("adversarially regularized", &robust_scores)] {
        outln!(
            "| {name} | {:.2} % | {:.2} % | {:.2} % | {:.2} |",
            s.clean * 100.0,
            s.transfer_adversarial * 100.0,
            s.white_box * 100.0,
            s.steady_epoch_seconds
        );
    }

    // The pictures: digits perturbed against the base model that fool it but not the regularized one.
    let labels = test.labels().unwrap_or(&[]);
    let predict =
        |model: &dyn Model| -> Result<Vec<u32>> { Ok(nsl::eval::predicted_classes(model, transfer.view(), 1024)?) };
    let (base_pred, robust_pred) = (predict(base.as_ref())?, predict(robust.as_ref())?);
    let cells: Vec<DigitCell> = (0..test.len())
        .filter(|&i| base_pred[i] != labels[i] && robust_pred[i] == labels[i])
        .take(24)
        .map(|i| DigitCell {
            original: test.row(i).to_vec(),
            adversarial: transfer.row(i).to_vec(),
            tags: vec![('T', labels[i], None), ('B', base_pred[i], Some(false)), ('A', robust_pred[i], Some(true))],
        })
        .collect();
    let grid = args.out.join("adversarial_digits.png");
    digit_grid_png(&cells, 28, 6, &grid)?;
    training_curves_svg(&base_history, "base model", &args.out.join("base_curves.svg"))?;
    training_curves_svg(&robust_history, "adversarially regularized", &args.out.join("adversarial_curves.svg"))?;
    let summary = Summary {
        model: spec.to_string(),
        epochs: args.epochs,
        seed: args.seed,
        attack,
        base: base_scores,
        adversarial: robust_scores,
        seconds: started.elapsed().as_secs_f64(),
    };
    let summary_path = args.out.join("summary.json");
    nsl::io::write_bytes(&summary_path, &serde_json::to_vec_pretty(&summary)?)
        .with_context(|| format!("writing {}", summary_path.display()))?;
    outln!(
        "\n{} → each pair: the test digit and its perturbed version (crafted on the base model);\n\
         below: T = true label, B = the base model's answer (red: fooled), A = the adversarially\n\
         regularized model's answer (green: still right).",
        grid.display()
    );
    outln!("done in {:.0} s; curves and summary.json in {}", summary.seconds, args.out.display());
    Ok(())
}

fn cora(data_dir: &Path, out: &Path) -> Result<()> {
    let started = Instant::now();
    let content = data_dir.join("cora/cora.content.gz");
    let cites = data_dir.join("cora/cora.cites.gz");

    outln!("== 1. convert: the bundled Cora (LINQS) → Parquet");
    let samples = with_spinner("reading cora.content", || data::read_content(&content))?;
    let known = |id: &str| samples.position(id).is_some();
    let (mut g, report) = with_spinner("reading cora.cites", || read_cites(&cites, &known, UnknownIds::Error))?;
    g.set_provenance("nsl demo: LINQS cora.cites, undirected, weight 1");
    let samples_path = out.join("cora.parquet");
    let graph_path = out.join("cora_graph.parquet");
    // The samples and the graph become visible together, as with `nsl convert`.
    let mut outputs = nsl::io::OutputSet::new();
    data::write_samples(&samples, &outputs.add(&samples_path)?)
        .with_context(|| format!("writing {}", samples_path.display()))?;
    graph::write_graph(&g, &outputs.add(&graph_path)?).with_context(|| format!("writing {}", graph_path.display()))?;
    outputs.commit()?;
    outln!(
        "   {} papers × {} word features, {} classes → {}",
        samples.len(),
        samples.dim(),
        samples.num_classes().unwrap_or(0),
        samples_path.display()
    );
    outln!("   {} citation links → {}", report.links, graph_path.display());

    outln!("\n== 2. graph stats (read back from Parquet, with the labels)");
    let g = graph::read_graph(&graph_path)?;
    let info = SampleInfo { ids: samples.ids(), labels: samples.labels() };
    out!("{}", graph_stats(&g, Some(&info)));

    outln!("\n== 3. export");
    for (format, name) in [
        (ExportFormat::Tsv, "cora_graph.tsv"),
        (ExportFormat::Graphml, "cora.graphml"),
        (ExportFormat::Dot, "cora.dot"),
        (ExportFormat::Json, "cora.json"),
        (ExportFormat::Csv, "cora_edges.csv"),
    ] {
        let path = out.join(name);
        export(&g, format, &path)?;
        outln!("   {:<8} → {}", format.to_string(), path.display());
    }
    outln!(
        "\ndone in {:.1} s; try `nsl graph stats {} --samples {}`",
        started.elapsed().as_secs_f64(),
        graph_path.display(),
        samples_path.display()
    );
    Ok(())
}

/// Finds the bundled datasets: the given directory, `./datasets`, or the crate's own `datasets/`.
fn dataset_dir(given: Option<&Path>) -> Result<PathBuf> {
    let candidates: Vec<PathBuf> = match given {
        Some(dir) => vec![dir.to_path_buf()],
        None => vec![PathBuf::from("datasets"), Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets")],
    };
    candidates.iter().find(|d| d.join("mnist").is_dir() && d.join("cora").is_dir()).cloned().with_context(|| {
        format!("bundled datasets not found (looked for mnist/ and cora/ in {candidates:?}); pass --data-dir")
    })
}
