//! `nsl evaluate` and `nsl predict`: use a saved run on samples.

use super::progress::with_spinner;
use super::ColumnArgs;
use anyhow::{bail, Result};
use clap::Args;
use nsl::data;
use nsl::eval::{evaluate, predict};
use nsl::train::load_checkpoint;
use std::io::Write;
use std::path::PathBuf;

/// Flags of `nsl evaluate`.
#[derive(Args, Debug)]
#[command(after_help = "Example:\n  nsl evaluate --run runs/cora --samples test.parquet --json")]
pub struct EvaluateArgs {
    /// Run directory written by `nsl train`.
    #[arg(long, value_name = "DIR")]
    run: PathBuf,
    /// Labeled samples to evaluate on (any supported format).
    #[arg(long, value_name = "FILE")]
    samples: PathBuf,
    #[command(flatten)]
    columns: ColumnArgs,
    /// Print the result as JSON (fields `accuracy`, `loss`, `samples`).
    #[arg(long)]
    json: bool,
}

/// Flags of `nsl predict`.
#[derive(Args, Debug)]
#[command(after_help = "Example:\n  nsl predict --run runs/cora --samples test.parquet --output predictions.csv")]
pub struct PredictArgs {
    /// Run directory written by `nsl train`.
    #[arg(long, value_name = "DIR")]
    run: PathBuf,
    /// Samples to predict (labels, if any, are ignored).
    #[arg(long, value_name = "FILE")]
    samples: PathBuf,
    #[command(flatten)]
    columns: ColumnArgs,
    /// Output CSV: `id,prediction,p_<class>…` (written atomically). Default: standard output.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
}

/// Runs `nsl evaluate`.
pub fn run_evaluate(args: &EvaluateArgs) -> Result<()> {
    let checkpoint = load_checkpoint(&args.run)?;
    let samples = with_spinner("reading samples", || data::read_samples(&args.samples, &args.columns.to_columns()))?;
    check_width(&checkpoint.meta.item_shape, samples.dim(), &args.samples)?;
    let result = evaluate(checkpoint.model.as_ref(), &samples, 1024)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        println!("accuracy {:.4} ({} samples), loss {:.4}", result.accuracy, result.samples, result.loss);
    }
    Ok(())
}

/// Runs `nsl predict`.
pub fn run_predict(args: &PredictArgs) -> Result<()> {
    let checkpoint = load_checkpoint(&args.run)?;
    let samples = with_spinner("reading samples", || data::read_samples(&args.samples, &args.columns.to_columns()))?;
    check_width(&checkpoint.meta.item_shape, samples.dim(), &args.samples)?;
    let probabilities = predict(checkpoint.model.as_ref(), &samples, 1024)?;
    let names: Vec<String> = match &checkpoint.meta.class_names {
        Some(names) => names.clone(),
        None => (0..checkpoint.meta.classes).map(|c| c.to_string()).collect(),
    };
    let mut csv = format!("id,prediction,{}\n", names.iter().map(|n| format!("p_{n}")).collect::<Vec<_>>().join(","));
    for (id, p) in samples.ids().iter().zip(&probabilities) {
        let best = p.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map_or(0, |(i, _)| i);
        let row: Vec<String> = p.iter().map(|v| format!("{v:.6}")).collect();
        csv.push_str(&format!("{},{},{}\n", quote(id), quote(&names[best]), row.join(",")));
    }
    match &args.output {
        Some(path) => {
            nsl::io::write_bytes_atomic(path, csv.as_bytes())?;
            eprintln!("wrote {} predictions to {}", probabilities.len(), path.display());
        }
        None => std::io::stdout().lock().write_all(csv.as_bytes())?,
    }
    Ok(())
}

fn check_width(item_shape: &[usize], dim: usize, path: &std::path::Path) -> Result<()> {
    let expected: usize = item_shape.iter().product();
    if expected != dim {
        bail!(
            "{}: samples have {dim} features but the model expects {expected} (item shape {item_shape:?})",
            path.display()
        );
    }
    Ok(())
}

/// Quotes a CSV field when it needs it.
fn quote(field: &str) -> String {
    if field.contains([',', '"', '\n']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}
