//! `nsl demo`: the main job on the bundled data, in one command.
//!
//! By default it tells the story of adversarial robustness on MNIST, honestly: three models trained
//! on the same batches (batch 32, 5 epochs) — a base model, NSL's tutorial recipe (multiplier 0.2,
//! one FGSM step of 0.2, L∞) and the robust recipe (Madry's PGD adversarial training: 10 steps at
//! ε = 0.2 inside training) — and their accuracy on the clean test digits, under FGSM (white-box,
//! and crafted on the base model as NSL's tutorial does) and under AutoAttack's standard sequence
//! (APGD-CE, APGD-T, FAB-T, Square; on the first `--autoattack-samples` test digits, 1,000 by default, to
//! stay within the demo's time), with the masking check; and a PNG of digits that NSL's recipe
//! keeps under FGSM but loses under AutoAttack. `--graph` walks the bundled Cora citation graph
//! through the graph tools instead.

use super::progress::with_spinner;
use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use nsl::data::{self, Dataset};
use nsl::data::{read_idx, IdxOptions};
use nsl::eval::{accuracy_on, adversarial_examples, Attack, AttackConfig};
use nsl::eval::{evaluate_attacks, masking_check, AttackProgress, EvalAttack, EvalAttackConfig, RobustnessReport};
use nsl::graph::{self};
use nsl::graph::{export, ExportFormat};
use nsl::graph::{graph_stats, SampleInfo};
use nsl::graph::{read_cites, UnknownIds};
use nsl::loss::Task;
use nsl::model::ModelSpec;
use nsl::regularize::{AdvRegConfig, NormType};
use nsl::report::{digit_grid_png, training_curves_svg, DigitCell};
use nsl::run::{FitHooks, FittedRun, Input, RunSpec};
use nsl::train::TrainConfig;
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
    /// Test digits AutoAttack runs on (the first ones of the test set); clean and FGSM accuracy
    /// use all 10,000.
    #[arg(long, default_value_t = 1000, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    autoattack_samples: u64,
    /// CPU threads. Default: 1 for the MLP, 2 for the CNN.
    #[arg(long)]
    threads: Option<usize>,
    /// Instead: walk the bundled Cora citation graph through convert, graph stats and export.
    #[arg(long)]
    graph: bool,
}

/// The seed of the adversarially-regularized models' initial weights: independent of the base model's
/// (`seed`), the same rule as `scripts/bench_mnist.sh` (`--init-seed SEED+1000`).
fn robust_init_seed(seed: u64) -> u64 {
    seed.wrapping_add(1000)
}

/// The demo's attack radius: NSL's tutorial's ε = 0.2 (L∞, pixels in [0, 1]).
const EPSILON: f64 = 0.2;

/// NSL's MNIST tutorial recipe: multiplier 0.2, one FGSM step of 0.2, L∞.
const NSL_RECIPE: &str = "multiplier=0.2,step-size=0.2,norm=inf";

/// The robust recipe at the demo's ε: Madry et al.'s PGD adversarial training (the loss on the
/// adversarial point only), 10 steps of 0.05 from a random start, clipped to valid pixels, ε warming
/// up over the first epoch. Chosen for the demo's MLP on a validation tenth of the training digits
/// (AutoAttack at ε 0.2, 5 epochs: Madry 44.6 % with clean 92.0 %; TRADES β 6: 35.0 % / 87.9 %;
/// TRADES β 2: 36.7 % / 90.5 %; `scripts/choose_demo_recipe.sh`); for the CNN,
/// `examples/recipes/robust_mnist.toml` (TRADES).
const ROBUST_RECIPE: &str = "objective=madry,multiplier=1,epsilon=0.2,step-size=0.05,pgd-iterations=10,norm=inf,\
                             clip=0:1,random-init=true,epsilon-warmup=1";

/// The demo's numbers (`DIR/summary.json`).
#[derive(Serialize)]
struct Summary {
    model: String,
    epochs: usize,
    seed: u64,
    epsilon: f64,
    /// Test digits attacked by AutoAttack (the first ones of the test set).
    autoattack_samples: usize,
    models: Vec<Scores>,
    seconds: f64,
}

#[derive(Serialize)]
struct Scores {
    name: &'static str,
    adv_reg: Option<&'static str>,
    /// Accuracy on the 10,000 clean test digits.
    clean: f64,
    /// Accuracy under FGSM crafted on the model itself, 10,000 digits.
    fgsm: f64,
    /// Accuracy under FGSM crafted on the base model (NSL's tutorial's transfer attack), 10,000 digits.
    fgsm_transfer: f64,
    /// AutoAttack (APGD-CE, APGD-T, FAB-T, Square) on the first `autoattack_samples` digits: clean
    /// accuracy there and the robust accuracy after each attack.
    autoattack: RobustnessReport,
    masking_warnings: Vec<String>,
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

/// The recipes the demo trains: the base model, NSL's tutorial recipe, the robust recipe.
const RECIPES: [(&str, Option<&str>); 3] =
    [("base", None), ("NSL's recipe", Some(NSL_RECIPE)), ("robust recipe", Some(ROBUST_RECIPE))];

fn mnist(args: &DemoArgs, data_dir: &Path) -> Result<()> {
    let started = Instant::now();
    let spec = match args.model.clone() {
        spec @ ModelSpec::Mlp(_) => spec.with_dropout(0.0),
        other => other,
    };
    let threads = args.threads.unwrap_or(if matches!(spec, ModelSpec::Mlp(_)) { 1 } else { 2 });
    super::set_threads(threads)?;
    let (train, test) = read_mnist(&data_dir.join("mnist"))?;
    let aa_samples = usize::try_from(args.autoattack_samples).unwrap_or(usize::MAX).min(test.len());
    outln!(
        "MNIST: {} training and {} test digits; model {spec}, {} epochs, batch 32; attacks at L∞ ε = {EPSILON}",
        train.len(),
        test.len(),
        args.epochs
    );
    let trained = train_recipes(args, &spec, &train)?;
    let subset = test.select(&(0..aa_samples).collect::<Vec<_>>())?;
    let (models, white) = score_models(args, &trained, &test, &subset)?;
    print_scores(&models, test.len(), aa_samples);
    let grid = write_pictures(args, &models, &trained, &test, &subset, &white)?;
    let summary = Summary {
        model: spec.to_string(),
        epochs: args.epochs,
        seed: args.seed,
        epsilon: EPSILON,
        autoattack_samples: aa_samples,
        models,
        seconds: started.elapsed().as_secs_f64(),
    };
    let summary_path = args.out.join("summary.json");
    nsl::io::write_bytes(&summary_path, &serde_json::to_vec_pretty(&summary)?)
        .with_context(|| format!("writing {}", summary_path.display()))?;
    outln!(
        "\n{} → each pair: a test digit and NSL's recipe's AutoAttack point for it; below: T = true label,\n\
         F = NSL's recipe under FGSM (green: right), A = NSL's recipe under AutoAttack (red: fooled),\n\
         R = the robust recipe under its own AutoAttack (green: still right).",
        grid.display()
    );
    outln!("done in {:.0} s; curves and summary.json in {}", summary.seconds, args.out.display());
    Ok(())
}

/// The bundled MNIST training and test digits.
fn read_mnist(mnist: &Path) -> Result<(Dataset, Dataset)> {
    with_spinner("reading MNIST", || -> Result<(Dataset, Dataset)> {
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
    })
}

/// The three models of [`RECIPES`], trained on the same batches.
fn train_recipes(args: &DemoArgs, spec: &ModelSpec, train: &Dataset) -> Result<Vec<FittedRun>> {
    let config = TrainConfig { epochs: args.epochs, batch_size: 32, seed: args.seed, ..Default::default() };
    let train_one = |name: &str, recipe: Option<&str>| -> Result<FittedRun> {
        let spec = RunSpec {
            samples: Some(Input::Samples(train.clone())),
            model: spec.clone(),
            // Same batches, independent starting weights: NSL's tutorial builds its two models one
            // after the other from one random stream. (Sharing the start makes the transfer attack
            // far stronger.)
            init_seed: Some(if recipe.is_some() { robust_init_seed(args.seed) } else { args.seed }),
            adv_reg: recipe.map(AdvRegConfig::from_str).transpose()?,
            train: config.clone(),
            ..RunSpec::default()
        };
        let bar = ProgressBar::new((args.epochs * train.len().div_ceil(32)) as u64);
        bar.set_style(
            ProgressStyle::with_template(&format!("{name:>22} {{bar:30}} epoch {{msg}} ({{elapsed}}, eta {{eta}})"))
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let progress_bar = bar.clone();
        let hooks = FitHooks::default().on_progress(move |p| {
            progress_bar.set_message(format!("{}/{}", p.epoch, p.epochs));
            progress_bar.inc(1);
        });
        let fitted = spec.check().and_then(|c| c.open()).and_then(|o| o.fit(hooks)).map_err(super::run_error)?;
        bar.finish_and_clear();
        Ok(fitted)
    };
    RECIPES.iter().map(|&(name, recipe)| train_one(name, recipe)).collect()
}

/// Each model's clean, FGSM (white-box and from the base model) and AutoAttack (on `subset`)
/// accuracy, and the FGSM points crafted on each.
fn score_models(
    args: &DemoArgs,
    trained: &[FittedRun],
    test: &Dataset,
    subset: &Dataset,
) -> Result<(Vec<Scores>, Vec<ndarray::Array2<f32>>)> {
    // FGSM, NSL's tutorial attack: ε = 0.2, L∞, clipped to valid pixels, on all test digits.
    let fgsm = AttackConfig {
        attack: Attack::Fgsm,
        norm: NormType::Infinity,
        epsilon: EPSILON,
        clip: Some((0.0, 1.0)),
        seed: 0,
    };
    let clean = test.features().to_owned();
    let white: Vec<ndarray::Array2<f32>> = with_spinner("FGSM on the test digits", || -> Result<_> {
        trained.iter().map(|f| Ok(adversarial_examples(f.model(), test, &fgsm, 500)?)).collect()
    })?;
    // AutoAttack's standard sequence on the first digits.
    let aa = EvalAttackConfig { epsilon: EPSILON, clip: Some((0.0, 1.0)), seed: args.seed, ..Default::default() };
    let work = super::progress::WorkBar::new();
    let mut models = Vec::new();
    for (((name, recipe), fitted), own) in RECIPES.iter().zip(trained).zip(&white) {
        let (model, history) = (fitted.model(), fitted.history());
        let report = evaluate_attacks(
            model,
            subset,
            Task::Multiclass,
            &EvalAttack::STANDARD,
            &aa,
            Some(&|p: &AttackProgress| {
                work.update(&format!("AutoAttack on {name}: {}", p.attack), p.done, p.total);
                std::ops::ControlFlow::Continue(())
            }),
        )?;
        work.finish();
        let masking_warnings =
            masking_check(std::slice::from_ref(&report), aa.clip).iter().map(|w| w.to_string()).collect();
        models.push(Scores {
            name,
            adv_reg: *recipe,
            clean: accuracy_on(model, &clean, test, 1000)?,
            fgsm: accuracy_on(model, own, test, 1000)?,
            fgsm_transfer: accuracy_on(model, &white[0], test, 1000)?,
            autoattack: report,
            masking_warnings,
            steady_epoch_seconds: history.steady_epoch_seconds().unwrap_or(0.0),
        });
    }
    Ok((models, white))
}

/// The accuracy table and AutoAttack's stages.
fn print_scores(models: &[Scores], test_len: usize, aa_samples: usize) {
    outln!(
        "\nAccuracy on the MNIST test digits, L∞ ε = {EPSILON}, clipped to [0, 1] (clean and FGSM: all {}; AutoAttack: \
         the first {aa_samples}):\n",
        test_len
    );
    outln!("| model | clean | FGSM (white-box) | FGSM from base (NSL's tutorial) | AutoAttack | s/epoch |");
    outln!("|---|---|---|---|---|---|");
    for s in models {
        outln!(
            "| {} | {:.2} % | {:.2} % | {:.2} % | {:.2} % | {:.2} |",
            s.name,
            s.clean * 100.0,
            s.fgsm * 100.0,
            s.fgsm_transfer * 100.0,
            s.autoattack.robust_accuracy * 100.0,
            s.steady_epoch_seconds
        );
    }
    outln!("\nAutoAttack, step by step (robust accuracy after each attack, on the points every earlier one left):");
    for s in models {
        let stages: Vec<String> =
            s.autoattack.stages.iter().map(|st| format!("{} {:.1} %", st.attack, st.robust_accuracy * 100.0)).collect();
        outln!("  {:<14} clean {:.1} % → {}", s.name, s.autoattack.clean_accuracy * 100.0, stages.join(" → "));
        for w in &s.masking_warnings {
            outln!("  {:<14} masking check: {w}", "");
        }
    }
    let (nsl, robust) = (&models[1], &models[2]);
    outln!(
        "\nWhat FGSM accuracy means: one gradient step is a weak attack. NSL's recipe keeps {:.1} % of the digits \
         under FGSM but {:.1} % under AutoAttack;\ntraining against a multi-step attack (the robust recipe) keeps \
         {:.1} %. Report AutoAttack, not FGSM, as robustness.",
        nsl.fgsm * 100.0,
        nsl.autoattack.robust_accuracy * 100.0,
        robust.autoattack.robust_accuracy * 100.0
    );
}

/// The digit grid (returned) and each model's training curves.
fn write_pictures(
    args: &DemoArgs,
    models: &[Scores],
    trained: &[FittedRun],
    test: &Dataset,
    subset: &Dataset,
    white: &[ndarray::Array2<f32>],
) -> Result<PathBuf> {
    // The pictures: digits where NSL's recipe resists FGSM but AutoAttack breaks it; the robust
    // recipe's answer under its own AutoAttack below.
    let labels = subset.labels().unwrap_or(&[]);
    let nsl_fgsm = nsl::eval::predicted_classes(trained[1].model(), white[1].view(), 1024)?;
    let (nsl_aa, robust_aa) = (&models[1].autoattack.outcomes, &models[2].autoattack.outcomes);
    let cells: Vec<DigitCell> = (0..subset.len())
        .filter(|&i| nsl_fgsm[i] == labels[i] && nsl_aa[i].broken_by.is_some())
        .take(24)
        .map(|i| {
            let robust = robust_aa[i].adversarial_prediction.unwrap_or(robust_aa[i].clean_prediction);
            DigitCell {
                original: test.row(i).to_vec(),
                adversarial: models[1].autoattack.adversarial.row(i).to_vec(),
                tags: vec![
                    ('T', labels[i], None),
                    ('F', nsl_fgsm[i], Some(true)),
                    ('A', nsl_aa[i].adversarial_prediction.unwrap_or(labels[i]), Some(false)),
                    ('R', robust, Some(robust == labels[i])),
                ],
            }
        })
        .collect();
    let grid = args.out.join("adversarial_digits.png");
    digit_grid_png(&cells, 28, 6, &grid)?;
    for (s, fitted) in models.iter().zip(trained) {
        let history = fitted.history();
        let file = format!("{}_curves.svg", s.name.to_lowercase().replace("'s", "").replace(' ', "_"));
        training_curves_svg(history, s.name, &args.out.join(file))?;
    }
    Ok(grid)
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
