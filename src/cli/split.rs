//! `nsl split`: a samples table → train and test tables.

use super::progress::with_spinner;
use super::ColumnArgs;
use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use nsl::data::{self};
use nsl::data::{split, SplitConfig, SplitMethod};
use serde::Serialize;
use std::path::PathBuf;

/// How rows are assigned to the parts.
#[derive(ValueEnum, Clone, Copy, Debug)]
enum Method {
    /// Shuffle with the seed, take the first `--train` share (per class with `--stratify`).
    Shuffle,
    /// NSL's Cora preprocessing: Python's `random.seed(SEED)`, then each row in input order goes to
    /// train iff `random.uniform(0, 1) <= TRAIN` (Python's Mersenne Twister, reproduced exactly).
    Nsl,
}

/// Flags of `nsl split`.
#[derive(Args, Debug)]
#[command(
    after_help = "Example:\n  nsl split cora.parquet --train 0.8 --seed 1 --out-train train.parquet --out-test test.parquet --stratify"
)]
pub struct SplitArgs {
    /// Samples to split: Parquet, CSV, IDX or LINQS `.content` (recognized by content).
    input: PathBuf,
    /// Share of rows that go to the train part, in (0, 1].
    #[arg(long = "train", default_value_t = 0.8, value_name = "FRACTION")]
    train: f64,
    /// Seed of the random assignment.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Keep each label's share equal in both parts (needs labels; `--method shuffle` only).
    #[arg(long)]
    stratify: bool,
    /// How rows are assigned.
    #[arg(long, value_enum, default_value_t = Method::Shuffle)]
    method: Method,
    /// Output Parquet table of the train part (written atomically).
    #[arg(long, value_name = "FILE")]
    out_train: PathBuf,
    /// Output Parquet table of the test part (written atomically).
    #[arg(long, value_name = "FILE")]
    out_test: PathBuf,
    #[command(flatten)]
    columns: ColumnArgs,
    /// Print the summary as JSON on standard output.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Summary {
    train: usize,
    test: usize,
    out_train: PathBuf,
    out_test: PathBuf,
}

/// Runs `nsl split`.
pub fn run(args: &SplitArgs) -> Result<()> {
    nsl::io::check_paths(
        &[("--out-train", &args.out_train), ("--out-test", &args.out_test)],
        &[("input", &args.input)],
    )?;
    let dataset = with_spinner("reading samples", || data::read_samples(&args.input, &args.columns.to_columns()))?;
    let method = match args.method {
        Method::Shuffle => SplitMethod::Shuffle,
        Method::Nsl => SplitMethod::NslUniform,
    };
    let config = SplitConfig { train_fraction: args.train, seed: args.seed, stratify: args.stratify, method };
    let (train, test) = split(&dataset, &config).with_context(|| format!("splitting {}", args.input.display()))?;
    // Both parts become visible together, or neither (nsl::io::OutputSet).
    with_spinner("writing", || -> Result<()> {
        let mut outputs = nsl::io::OutputSet::new();
        data::write_samples(&train, &outputs.add(&args.out_train)?)?;
        data::write_samples(&test, &outputs.add(&args.out_test)?)?;
        Ok(outputs.commit()?)
    })?;
    let summary = Summary {
        train: train.len(),
        test: test.len(),
        out_train: args.out_train.clone(),
        out_test: args.out_test.clone(),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!("train: {} rows → {}", summary.train, summary.out_train.display());
        println!("test:  {} rows → {}", summary.test, summary.out_test.display());
    }
    Ok(())
}
