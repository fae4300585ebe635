//! The `nsl` command line: a thin layer that parses flags (clap) and calls the library.
//!
//! One file per subcommand, each with an `Args` struct (flags, their docs and defaults) and a
//! `run` function. Errors travel as `anyhow::Error` and are printed once, in [`main`], with their
//! whole chain; the exit status is 1 for a failed command and 2 for a usage error.
//!
//! Commands print with `outln!`/`out!` (a report on standard output) and `errln!` (a message on
//! standard error), never `println!`/`eprintln!`, which panic when the stream is a closed pipe
//! (see [`progress::print_out`]).

/// `println!` for reports: a line on standard output that never panics (see [`progress::print_out`]).
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::progress::print_out(format_args!($($arg)*), true)
    };
}

/// `print!` for reports (see [`progress::print_out`]).
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::progress::print_out(format_args!($($arg)*), false)
    };
}

/// `eprintln!` that never panics (see [`progress::print_err`]).
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::cli::progress::print_err(format_args!($($arg)*))
    };
}

mod build_graph;
mod convert;
mod demo;
mod embed;
mod evaluate;
mod generate;
mod grand;
mod graph;
mod pack;
mod progress;
mod split;
mod train;
mod tune;
mod worker;

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::fmt::Display;
use std::process::ExitCode;
use std::str::FromStr;

/// Neural Structured Learning in Rust: build neighbor graphs, train with graph and adversarial
/// regularization, and analyse graphs.
#[derive(Parser, Debug)]
#[command(name = "nsl", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// No progress bars or progress lines on standard error (warnings and results still appear).
    #[arg(long, short, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

/// The stop flag of the work a first Ctrl-C stops gracefully (`nsl train`), if any.
static GRACEFUL_STOP: std::sync::Mutex<Option<std::sync::Arc<std::sync::atomic::AtomicBool>>> =
    std::sync::Mutex::new(None);

/// Makes a first `SIGINT` set `flag` instead of ending the process (a second one ends it);
/// `None` restores the default.
pub fn stop_on_interrupt(flag: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>) {
    *GRACEFUL_STOP.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = flag;
}

/// Called on `SIGINT` (from main.rs' signal thread): sets the registered stop flag and returns
/// true, or returns false (nothing registered, or the flag already set: a second Ctrl-C) for the
/// process to end.
pub fn interrupt() -> bool {
    let guard = GRACEFUL_STOP.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    match guard.as_ref() {
        Some(flag) => !flag.swap(true, std::sync::atomic::Ordering::SeqCst),
        None => false,
    }
}

/// A command stopped by Ctrl-C after saving what it could: exit status 130, as a shell reports
/// a process ended by `SIGINT`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Interrupted(pub String);

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the main job on the bundled data: MNIST adversarial training and attacks (with `--graph`:
    /// Cora through convert, graph statistics and exports).
    Demo(demo::DemoArgs),
    /// Convert samples (IDX, LINQS, CSV, Parquet, TFRecord, folders of images) to a Parquet or TFRecord samples file, and LINQS cites to a graph.
    Convert(convert::ConvertArgs),
    /// Split a samples table into train and test parts (random, stratified, or NSL's Cora procedure).
    Split(split::SplitArgs),
    /// Train a model (MLP, CNN or bag-of-words) for classification or regression, with optional graph and
    /// adversarial regularization, and save the run.
    Train(Box<train::TrainArgs>),
    /// A saved run's loss and metrics on labeled samples (accuracy, F1, ROC-AUC, MSE…), optionally under attacks.
    Evaluate(evaluate::EvaluateArgs),
    /// A saved run's predictions for samples: class and probabilities, or predicted values (regression).
    Predict(evaluate::PredictArgs),
    /// NSL's pack_nbrs: each sample with its neighbors' features copied in (NL_nbr_*), as TFRecord or Parquet.
    PackNbrs(pack::PackArgs),
    /// Build a neighbor graph from embeddings by cosine similarity (exact or LSH).
    BuildGraph(build_graph::BuildGraphArgs),
    /// Search a recipe's settings on the validation samples (successive halving over the epochs, seeded) and write the best as a recipe.
    Tune(Box<tune::TuneArgs>),
    /// A trained run's hidden layer (or logits) for every sample: embeddings for `nsl build-graph`.
    Embed(embed::EmbedArgs),
    /// Write synthetic Gaussian-cluster embeddings (for benchmarks).
    GenerateEmbeddings(generate::GenerateArgs),
    /// Analyse and export neighbor graphs.
    #[command(subcommand)]
    Graph(graph::GraphCommand),
    /// The executors' side of scripts/spark: Arrow IPC stream on stdin → Arrow IPC stream on stdout.
    #[command(subcommand, hide = true)]
    Worker(worker::WorkerCommand),
}

/// Which table columns (CSV, Parquet) or `tf.train.Example` features (TFRecord) hold ids, features and labels.
#[derive(clap::Args, Debug, Clone)]
pub struct ColumnArgs {
    /// CSV/Parquet/TFRecord: the id column or feature (strings or integers). Default `id`; a CSV or
    /// Parquet table without one gets row numbers as ids when no graph needs them (`evaluate`,
    /// `predict`: the run's recorded id column).
    #[arg(long, value_name = "NAME", help_heading = "Input columns")]
    id_column: Option<String>,
    /// CSV/Parquet/TFRecord: the feature column(s), comma-separated. Parquet: numeric scalar columns (gathered
    /// into one dense group), fixed-length float list columns (a group each) and integer list columns (token
    /// ids of variable length, for `--model bow`); CSV: numeric columns.
    /// Default (`evaluate`, `predict`: the columns the run was trained on): the groups recorded in a Parquet
    /// file's `nsl.feature_layout`, else `features` if present, else every numeric column other than the id,
    /// label and weight columns; for TFRecord, the first of `words`, `features`, `embedding`.
    #[arg(long, value_delimiter = ',', value_name = "NAMES", help_heading = "Input columns")]
    feature_columns: Vec<String>,
    /// CSV/Parquet/TFRecord: the label column or feature (integers or strings); if the file has none, samples
    /// are unlabeled. Default `label` (`evaluate`, `predict`: the run's recorded label column).
    #[arg(long, value_name = "NAME", help_heading = "Input columns")]
    label_column: Option<String>,
    /// Parquet: the vocabulary size of every token-id list column (ids must be below it). Default: the
    /// file's `nsl.feature_layout` metadata, else the largest id + 1 (`evaluate`, `predict`: the run's).
    #[arg(long, value_name = "N", help_heading = "Input columns")]
    vocab_size: Option<usize>,
}

impl ColumnArgs {
    /// The library's column selection, with the defaults for what is not given.
    pub fn to_columns(&self) -> nsl::data::SampleColumns {
        nsl::data::SampleColumns { row_ids: false, ..self.over(&nsl::run::RunColumns::default()) }
    }

    /// The columns a saved run recorded (`columns.json`), overridden by the flags given.
    pub fn over(&self, recorded: &nsl::run::RunColumns) -> nsl::data::SampleColumns {
        let mut columns = recorded.to_columns();
        columns.id = self.id_column.clone().unwrap_or(columns.id);
        columns.label = self.label_column.clone().unwrap_or(columns.label);
        if !self.feature_columns.is_empty() {
            columns.features = self.feature_columns.clone();
        }
        columns.vocab = self.vocab_size.or(columns.vocab);
        // A column named as an id or label is never a feature.
        columns.exclude.retain(|c| *c != columns.id && *c != columns.label);
        columns
    }
}

/// Reads an optional setting of a `--config` file from its text form, as its flag parses it
/// (`FromStr`), for `#[serde(deserialize_with = "from_text")]` on an `Option` field.
pub fn from_text<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: FromStr,
    T::Err: Display,
{
    let text: Option<String> = serde::Deserialize::deserialize(deserializer)?;
    text.map(|text| text.parse().map_err(serde::de::Error::custom)).transpose()
}

/// A `key=value,…` list with `key` set to `value` (replaced where it is, else appended).
pub fn set_pair(list: &str, key: &str, value: &str) -> String {
    let norm = |k: &str| k.trim().replace('_', "-");
    let mut pairs: Vec<String> = list.split(',').map(str::trim).filter(|p| !p.is_empty()).map(String::from).collect();
    let pair = format!("{key}={value}");
    match pairs.iter_mut().find(|p| norm(p.split('=').next().unwrap_or_default()) == norm(key)) {
        Some(p) => *p = pair,
        None => pairs.push(pair),
    }
    pairs.join(",")
}

/// A setting of the library's run as `nsl train` spells it: `record_every` → `--record-every`.
pub fn flag(name: &str) -> String {
    format!("--{}", name.replace('_', "-"))
}

/// The library's run error for the command line: settings named by their flags, and an output
/// that names an input kept as the usage error it is (exit status 2).
pub fn run_error(e: nsl::run::RunError) -> anyhow::Error {
    match e {
        nsl::run::RunError::Settings(conflict) => anyhow::anyhow!(conflict.describe(flag)),
        nsl::run::RunError::Paths(conflict) => conflict.into(),
        other => other.into(),
    }
}

/// Sets the number of CPU threads nsl's kernels (and rayon) use. Call it at start-up, before any
/// tensor work and before any other thread starts: rayon's global pool is created once, and
/// changing environment variables races with any other thread reading them.
///
/// candle's own element-wise ops get one thread unless `CANDLE_NUM_THREADS` says otherwise: its
/// pool's workers spin after every op, and on a small machine they take the cores the products
/// need (set `CANDLE_NUM_THREADS=2` with `--threads 2` to compare).
///
/// # Errors
/// `--threads 0` (rayon would take 0 for "one per core": a silent accept).
pub fn set_threads(threads: usize) -> anyhow::Result<()> {
    if threads == 0 {
        anyhow::bail!("--threads 0: give at least 1 thread (or leave --threads out for one per core)");
    }
    // candle reads RAYON_NUM_THREADS at every matmul, CANDLE_NUM_THREADS when its pool starts;
    // rayon reads RAYON_NUM_THREADS when its pool starts.
    std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
    let _ = rayon::ThreadPoolBuilder::new().num_threads(threads).build_global();
    Ok(())
}

/// Parses the command line, runs the command and turns its outcome into an exit status.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    progress::set_quiet(cli.quiet);
    let result = match &cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Convert(args) => convert::run(args),
        Command::Split(args) => split::run(args),
        Command::Train(args) => train::run(args),
        Command::Evaluate(args) => evaluate::run_evaluate(args),
        Command::Predict(args) => evaluate::run_predict(args),
        Command::PackNbrs(args) => pack::run(args),
        Command::Graph(cmd) => graph::run(cmd),
        Command::BuildGraph(args) => build_graph::run(args),
        Command::Tune(args) => tune::run(args),
        Command::Embed(args) => embed::run(args),
        Command::GenerateEmbeddings(args) => generate::run(args),
        Command::Worker(cmd) => worker::run(cmd),
    };
    // A report that could not be written (other than to a closed pipe) fails the command, after
    // its outputs are committed.
    let result = result.and_then(|()| progress::finish_stdout().context("writing the report to standard output"));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // A closed pipe (`nsl predict … | head`) is not a failure.
            if err
                .chain()
                .any(|e| e.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe))
            {
                return ExitCode::SUCCESS;
            }
            errln!("error: {err}");
            for cause in err.chain().skip(1) {
                errln!("  caused by: {cause}");
            }
            if err.is::<Interrupted>() {
                return ExitCode::from(130);
            }
            // Two outputs naming one file, or an output naming an input: a usage error.
            if err.chain().any(|e| e.is::<nsl::io::PathConflict>()) {
                return ExitCode::from(2);
            }
            ExitCode::FAILURE
        }
    }
}
