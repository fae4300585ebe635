//! The trials table (Parquet) and its plot (SVG), both written atomically.

use super::{Distribution, SearchSpace, TuneError, TuneOutcome, Value};
use arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray, UInt32Array, UInt64Array,
};
use arrow::datatypes::{DataType, Field, Schema};
use parquet::file::properties::WriterProperties;
use plotters::prelude::*;
use std::path::Path;
use std::sync::Arc;

/// Writes the trials of `outcome` as a Parquet table at `path`, atomically: one row per training
/// (trial × rung, and a finalist's extra seeds), columns `trial` (0 the base recipe), `base`
/// (true for the base recipe's rows), `rung`, `epochs` (its budget), `seed`, `status` (`done |
/// failed | stopped`), `score` (the mean of the `score_epochs` best validation accuracies; null
/// unless done), `best_accuracy` (the best one), `best_epoch`, `epochs_run`, `seconds`, `error`,
/// then one column per key of `space` (null for the base recipe's rows)
/// named by the key: `float64` for `uniform` and `log_uniform`, `int64` for `int`, `utf8` for
/// `choice` (the value as written in a `key=value` list).
///
/// # Errors
/// [`TuneError::Write`] naming the file.
pub fn write_trials(outcome: &TuneOutcome, space: &SearchSpace, path: &Path) -> Result<(), TuneError> {
    let rows = &outcome.trials;
    let u32s = |f: &dyn Fn(&super::TrialRecord) -> Option<usize>| -> ArrayRef {
        Arc::new(rows.iter().map(|r| f(r).map(|v| v as u32)).collect::<UInt32Array>())
    };
    let mut fields = vec![
        Field::new("trial", DataType::UInt32, false),
        Field::new("base", DataType::Boolean, false),
        Field::new("rung", DataType::UInt32, false),
        Field::new("epochs", DataType::UInt32, false),
        Field::new("seed", DataType::UInt64, false),
        Field::new("status", DataType::Utf8, false),
        Field::new("score", DataType::Float64, true),
        Field::new("best_accuracy", DataType::Float64, true),
        Field::new("best_epoch", DataType::UInt32, true),
        Field::new("epochs_run", DataType::UInt32, false),
        Field::new("seconds", DataType::Float64, false),
        Field::new("error", DataType::Utf8, true),
    ];
    let mut columns: Vec<ArrayRef> = vec![
        u32s(&|r| Some(r.trial)),
        Arc::new(rows.iter().map(|r| Some(r.trial == 0)).collect::<BooleanArray>()),
        u32s(&|r| Some(r.rung)),
        u32s(&|r| Some(r.epochs)),
        Arc::new(rows.iter().map(|r| r.seed).collect::<UInt64Array>()),
        Arc::new(rows.iter().map(|r| Some(r.status.name())).collect::<StringArray>()),
        Arc::new(rows.iter().map(|r| r.score).collect::<Float64Array>()),
        Arc::new(rows.iter().map(|r| r.best_accuracy).collect::<Float64Array>()),
        u32s(&|r| r.best_epoch),
        u32s(&|r| Some(r.epochs_run)),
        Arc::new(rows.iter().map(|r| r.seconds).collect::<Float64Array>()),
        Arc::new(rows.iter().map(|r| r.error.as_deref()).collect::<StringArray>()),
    ];
    for (key, distribution) in space.iter() {
        let value = |r: &super::TrialRecord| r.settings.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
        let (kind, column): (DataType, ArrayRef) = match distribution {
            Distribution::LogUniform(_) | Distribution::Uniform(_) => (
                DataType::Float64,
                Arc::new(
                    rows.iter()
                        .map(|r| match value(r) {
                            Some(Value::Float(x)) => Some(x),
                            Some(Value::Int(i)) => Some(i as f64),
                            _ => None,
                        })
                        .collect::<Float64Array>(),
                ),
            ),
            Distribution::Int(_) => (
                DataType::Int64,
                Arc::new(
                    rows.iter()
                        .map(|r| match value(r) {
                            Some(Value::Int(i)) => Some(i),
                            _ => None,
                        })
                        .collect::<Int64Array>(),
                ),
            ),
            Distribution::Choice(_) => (
                DataType::Utf8,
                Arc::new(rows.iter().map(|r| value(r).map(|v| v.to_string())).collect::<StringArray>()),
            ),
        };
        fields.push(Field::new(key, kind, true));
        columns.push(column);
    }
    let schema = Arc::new(Schema::new(fields));
    let write = || -> Result<(), Box<dyn std::error::Error>> {
        let batch = RecordBatch::try_new(schema.clone(), columns)?;
        crate::io::write_parquet(path, schema.clone(), WriterProperties::builder(), [Ok(batch)])?;
        Ok(())
    };
    write().map_err(|e| TuneError::Write(format!("{}: {e}", path.display())))
}

/// Writes the plot of `outcome` as an SVG at `path`, atomically: each trial's validation score
/// against its epochs (log scale) through the rungs it reached, seed by seed for the finalists;
/// trials cut at a rung in grey, finalists in blue, the base recipe in black, the chosen one in
/// red.
///
/// # Errors
/// [`TuneError::Write`] naming the file.
pub fn write_plot(outcome: &TuneOutcome, title: &str, path: &Path) -> Result<(), TuneError> {
    let mut svg = String::new();
    draw(outcome, title, &mut svg)
        .map_err(|e| TuneError::Write(format!("{}: cannot draw the plot: {e}", path.display())))?;
    crate::io::write_bytes(path, svg.as_bytes()).map_err(|e| TuneError::Write(format!("{}: {e}", path.display())))
}

fn draw(outcome: &TuneOutcome, title: &str, svg: &mut String) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::with_string(svg, (800, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let scored: Vec<&super::TrialRecord> = outcome.trials.iter().filter(|r| r.score.is_some()).collect();
    let low = scored.iter().filter_map(|r| r.score).fold(1.0f64, f64::min);
    let low = ((low * 20.0).floor() / 20.0).clamp(0.0, 0.95);
    let most = outcome.plan.max_epochs.max(2) as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 16))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(55)
        .build_cartesian_2d((1.0..most * 1.2).log_scale(), low..1.0)?;
    chart.configure_mesh().x_desc("epochs (budget of the rung)").y_desc("validation score").draw()?;
    let last = outcome.plan.rungs.len().saturating_sub(1);
    let chosen = outcome.best.as_ref().map(|b| b.trial);
    let mut trials: Vec<usize> = scored.iter().map(|r| r.trial).collect();
    trials.sort_unstable();
    trials.dedup();
    for trial in trials {
        let finalist = scored.iter().any(|r| r.trial == trial && r.rung == last);
        let color = match (Some(trial) == chosen, trial == 0, finalist) {
            (true, _, _) => RED,
            (false, true, _) => BLACK,
            (false, false, true) => BLUE,
            (false, false, false) => RGBColor(160, 160, 160),
        };
        let mut line: Vec<(f64, f64)> = Vec::new();
        for rung in 0..=last {
            // The first seed's score on each rung makes the line; the other seeds are points.
            let mut rows = scored.iter().filter(|r| r.trial == trial && r.rung == rung);
            if let Some((first, score)) = rows.next().and_then(|r| r.score.map(|s| (r, s))) {
                line.push((first.epochs.max(1) as f64, score));
            }
            let others: Vec<(f64, f64)> = rows.filter_map(|r| r.score.map(|s| (r.epochs.max(1) as f64, s))).collect();
            chart.draw_series(others.into_iter().map(|p| Circle::new(p, 3, color)))?;
        }
        chart.draw_series(line.iter().map(|&p| Circle::new(p, 2, color.filled())))?;
        chart.draw_series(LineSeries::new(line, color.stroke_width(if Some(trial) == chosen { 2 } else { 1 })))?;
    }
    root.present()?;
    Ok(())
}
