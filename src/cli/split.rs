//! `nsl split`: a samples table → train and test tables (random, or by an `id<TAB>split` table).

use super::progress::with_spinner;
use super::ColumnArgs;
use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use nsl::data::{self, Dataset};
use nsl::data::{split, split_by_table, SplitConfig, SplitMethod, TableSplit};
use serde::Serialize;
use std::path::{Path, PathBuf};

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
    after_help = "Examples:\n  nsl split cora.parquet --train 0.8 --seed 1 --out-train train.parquet --out-test test.parquet --stratify\n  \
    nsl split cora.parquet --split-table datasets/cora/cora.planetoid_split.tsv --out-train train.parquet \\\n    \
    --out-validation val.parquet --out-test test.parquet --out-unlabeled unlabeled.parquet"
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
    /// Take the parts from a table of `id<TAB>split` lines instead (split: train, val/validation,
    /// test, other/unlabeled; an `id<TAB>split` header line is skipped; gzipped or not), e.g.
    /// Planetoid's `datasets/cora/cora.planetoid_split.tsv`. Samples the table omits go to `other`;
    /// `other` lines naming ids that are not samples are skipped and counted (train, validation and
    /// test ids must be samples).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["train", "seed", "stratify", "method"])]
    split_table: Option<PathBuf>,
    /// Output Parquet table of the train part (written atomically).
    #[arg(long, value_name = "FILE")]
    out_train: PathBuf,
    /// Output Parquet table of the test part (written atomically). Optional with `--split-table`
    /// (the test rows are then not written).
    #[arg(long, value_name = "FILE", required_unless_present = "split_table")]
    out_test: Option<PathBuf>,
    /// With `--split-table`: output Parquet table of the validation part (not written otherwise).
    #[arg(long, value_name = "FILE", requires = "split_table")]
    out_validation: Option<PathBuf>,
    /// With `--split-table`: output Parquet table of every sample that is not `train` (validation,
    /// test and other, labels kept): the pool of unlabeled centers or neighbors for `nsl train`.
    #[arg(long, value_name = "FILE", requires = "split_table")]
    out_unlabeled: Option<PathBuf>,
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

/// What `nsl split --split-table` reports.
#[derive(Serialize)]
struct TableSummary {
    train: usize,
    validation: usize,
    test: usize,
    /// Rows marked other/unlabeled plus the rows the table omits.
    other: usize,
    /// Rows the table omits (counted in `other`).
    not_in_table: usize,
    /// `other` lines of the table naming ids that are not samples (skipped).
    skipped_other: usize,
    /// Rows that are not train (written with `--out-unlabeled`).
    unlabeled: usize,
    out_train: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    out_test: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    out_validation: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    out_unlabeled: Option<PathBuf>,
}

/// Runs `nsl split`.
pub fn run(args: &SplitArgs) -> Result<()> {
    let mut outputs: Vec<(&str, &Path)> = vec![("--out-train", &args.out_train)];
    outputs.extend(args.out_test.as_deref().map(|p| ("--out-test", p)));
    outputs.extend(args.out_validation.as_deref().map(|p| ("--out-validation", p)));
    outputs.extend(args.out_unlabeled.as_deref().map(|p| ("--out-unlabeled", p)));
    let mut inputs: Vec<(&str, &Path)> = vec![("input", &args.input)];
    inputs.extend(args.split_table.as_deref().map(|p| ("--split-table", p)));
    nsl::io::check_paths(&outputs, &inputs)?;
    let dataset = with_spinner("reading samples", || {
        super::convert::read_nonempty(&args.input, &args.columns.to_columns(), "split")
    })?;
    if let Some(table) = &args.split_table {
        let parts = split_by_table(&dataset, table)?;
        return write_table_split(args, &dataset, &parts);
    }
    let method = match args.method {
        Method::Shuffle => SplitMethod::Shuffle,
        Method::Nsl => SplitMethod::NslUniform,
    };
    let config = SplitConfig { train_fraction: args.train, seed: args.seed, stratify: args.stratify, method };
    // clap requires it without --split-table.
    let out_test = args.out_test.clone().context("--out-test: required without --split-table")?;
    let (train, test) = split(&dataset, &config).with_context(|| format!("splitting {}", args.input.display()))?;
    // Both parts become visible together, or neither (nsl::io::OutputSet).
    with_spinner("writing", || -> Result<()> {
        let mut outputs = nsl::io::OutputSet::new();
        data::write_samples(&train, &outputs.add(&args.out_train)?)?;
        data::write_samples(&test, &outputs.add(&out_test)?)?;
        Ok(outputs.commit()?)
    })?;
    let summary = Summary { train: train.len(), test: test.len(), out_train: args.out_train.clone(), out_test };
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        outln!("train: {} rows → {}", summary.train, summary.out_train.display());
        outln!("test:  {} rows → {}", summary.test, summary.out_test.display());
    }
    Ok(())
}

/// Writes and reports the parts of `nsl split --split-table`.
fn write_table_split(args: &SplitArgs, dataset: &Dataset, parts: &TableSplit) -> Result<()> {
    let unlabeled = parts.unlabeled();
    // Every part becomes visible together, or none (nsl::io::OutputSet).
    with_spinner("writing", || -> Result<()> {
        let mut outputs = nsl::io::OutputSet::new();
        data::write_samples(&dataset.select(&parts.train)?, &outputs.add(&args.out_train)?)?;
        if let Some(path) = &args.out_test {
            data::write_samples(&dataset.select(&parts.test)?, &outputs.add(path)?)?;
        }
        if let Some(path) = &args.out_validation {
            data::write_samples(&dataset.select(&parts.validation)?, &outputs.add(path)?)?;
        }
        if let Some(path) = &args.out_unlabeled {
            data::write_samples(&dataset.select(&unlabeled)?, &outputs.add(path)?)?;
        }
        Ok(outputs.commit()?)
    })?;
    let summary = TableSummary {
        train: parts.train.len(),
        validation: parts.validation.len(),
        test: parts.test.len(),
        other: parts.other.len(),
        not_in_table: parts.not_in_table,
        skipped_other: parts.skipped_other,
        unlabeled: unlabeled.len(),
        out_train: args.out_train.clone(),
        out_test: args.out_test.clone(),
        out_validation: args.out_validation.clone(),
        out_unlabeled: args.out_unlabeled.clone(),
    };
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&summary)?);
        return Ok(());
    }
    let target =
        |path: &Option<PathBuf>| path.as_ref().map_or("not written".to_string(), |p| format!("→ {}", p.display()));
    outln!("train:      {} rows → {}", summary.train, summary.out_train.display());
    outln!("validation: {} rows {}", summary.validation, target(&summary.out_validation));
    outln!("test:       {} rows {}", summary.test, target(&summary.out_test));
    outln!("other:      {} rows ({} not in the table)", summary.other, summary.not_in_table);
    if summary.skipped_other > 0 {
        outln!("skipped:    {} `other` lines of the table name ids that are not samples", summary.skipped_other);
    }
    outln!("unlabeled (all but train): {} rows {}", summary.unlabeled, target(&summary.out_unlabeled));
    Ok(())
}
