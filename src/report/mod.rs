//! Plots: training curves (SVG, rendered by any browser; no font files needed).

use crate::train::History;
use plotters::prelude::*;
use std::path::Path;

/// Writes the training curves of `history` as an SVG: losses (total, supervised, graph) on the left,
/// accuracies (training, validation) on the right, against the epoch. The file is written atomically.
///
/// # Errors
/// The `io::Error` of writing, or a drawing error as `io::Error`.
pub fn training_curves_svg(history: &History, title: &str, path: &Path) -> std::io::Result<()> {
    let mut svg = String::new();
    draw(history, title, &mut svg).map_err(|e| std::io::Error::other(e.to_string()))?;
    crate::io::write_bytes_atomic(path, svg.as_bytes())
}

fn draw(history: &History, title: &str, svg: &mut String) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::with_string(svg, (960, 400)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 18))?;
    let (left, right) = root.split_horizontally(480);
    let epochs = history.epochs.len().max(1) as f64;
    let max_loss = history.epochs.iter().map(|e| e.loss.max(e.supervised_loss)).fold(0.0f64, f64::max).max(1e-6);

    let mut chart = ChartBuilder::on(&left)
        .caption("loss", ("sans-serif", 14))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(45)
        .build_cartesian_2d(1.0..epochs.max(2.0), 0.0..max_loss * 1.05)?;
    chart.configure_mesh().x_desc("epoch").draw()?;
    let series: [(&str, RGBColor, fn(&crate::train::EpochRecord) -> f64); 3] = [
        ("total", BLUE, |e| e.loss),
        ("supervised", GREEN, |e| e.supervised_loss),
        ("graph (unscaled)", RED, |e| e.graph_loss),
    ];
    for (name, color, value) in series {
        chart
            .draw_series(LineSeries::new(history.epochs.iter().map(|e| (e.epoch as f64, value(e))), color))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], color));
    }
    chart.configure_series_labels().border_style(BLACK).background_style(WHITE).draw()?;

    let mut chart = ChartBuilder::on(&right)
        .caption("accuracy", ("sans-serif", 14))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(45)
        .build_cartesian_2d(1.0..epochs.max(2.0), 0.0..1.0)?;
    chart.configure_mesh().x_desc("epoch").draw()?;
    chart
        .draw_series(LineSeries::new(history.epochs.iter().map(|e| (e.epoch as f64, e.accuracy)), BLUE))?
        .label("training")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], BLUE));
    let validation: Vec<(f64, f64)> =
        history.epochs.iter().filter_map(|e| e.validation_accuracy.map(|v| (e.epoch as f64, v))).collect();
    if !validation.is_empty() {
        chart
            .draw_series(LineSeries::new(validation, MAGENTA))?
            .label("validation")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], MAGENTA));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .border_style(BLACK)
        .background_style(WHITE)
        .draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::EpochRecord;

    #[test]
    fn writes_an_svg_with_both_panels() {
        let history = History {
            epochs: (1..=3)
                .map(|epoch| EpochRecord {
                    epoch,
                    loss: 1.0 / epoch as f64,
                    supervised_loss: 0.9 / epoch as f64,
                    graph_loss: 0.1,
                    accuracy: 0.5 + 0.1 * epoch as f64,
                    validation_accuracy: Some(0.6),
                    seconds: 0.1,
                })
                .collect(),
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("curves.svg");
        training_curves_svg(&history, "test run", &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("accuracy") && svg.contains("validation") && svg.contains("<polyline"));
    }
}
