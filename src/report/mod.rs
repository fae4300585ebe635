//! Plots: training curves and robustness curves (SVG, rendered by any browser; no font files needed),
//! and PNG grids of images with their adversarial versions ([`digit_grid_png`]).

mod digits;

pub use digits::{digit_grid_png, DigitCell};

use crate::train::History;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

/// What can go wrong while writing a plot. Both variants name the output file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// The file could not be written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The output file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The image could not be drawn or encoded.
    #[error("{}: cannot render the image: {message}", path.display())]
    Render {
        /// The output file.
        path: PathBuf,
        /// The drawing or encoding library's message.
        message: String,
    },
}

/// Writes `bytes` to `path` atomically, naming `path` in the error.
fn write_file(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    crate::io::write_bytes(path, bytes).map_err(|source| ReportError::Io { path: path.to_path_buf(), source })
}

/// A rendering error naming `path`.
fn render_error(path: &Path, error: impl std::fmt::Display) -> ReportError {
    ReportError::Render { path: path.to_path_buf(), message: error.to_string() }
}

/// Writes the training curves of `history` as an SVG: losses (total, supervised, and the graph,
/// adversarial, VAT and entropy terms a run used) on the left; on the right accuracy (training,
/// validation) and the task's other metrics (e.g. ROC-AUC for binary, macro-F1 for multilabel), or
/// for regression the errors (MSE, MAE, RMSE), against the epoch. The file is written atomically.
///
/// # Errors
/// [`ReportError::Io`] if the file cannot be written, [`ReportError::Render`] if drawing fails.
pub fn training_curves_svg(history: &History, title: &str, path: &Path) -> Result<(), ReportError> {
    training_curves_svg_with_test(history, title, None, path)
}

/// [`training_curves_svg`] with the test samples' accuracy (after the last epoch), drawn as a
/// marked point at the last epoch of the accuracy panel and named in its legend.
///
/// # Errors
/// As [`training_curves_svg`].
pub fn training_curves_svg_with_test(
    history: &History,
    title: &str,
    test_accuracy: Option<f64>,
    path: &Path,
) -> Result<(), ReportError> {
    let mut svg = String::new();
    draw(history, title, test_accuracy.filter(|a| a.is_finite()), &mut svg).map_err(|e| render_error(path, e))?;
    write_file(path, svg.as_bytes())
}

/// The panels' drawing area, the chart above and its legend below (outside the plot, so that no
/// curve is hidden).
type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

/// The points of a curve: `(epoch, value)`.
type Points = Vec<(f64, f64)>;

/// Height of the legend strip under each panel.
const LEGEND_HEIGHT: u32 = 90;

fn draw(history: &History, title: &str, test: Option<f64>, svg: &mut String) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::with_string(svg, (960, 400 + LEGEND_HEIGHT)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 18))?;
    let (left, right) = root.split_horizontally(480);
    let epochs = history.epochs.len().max(1) as f64;
    type Series = (&'static str, RGBColor, fn(&crate::train::EpochRecord) -> f64);
    let series: [Series; 6] = [
        ("total", BLUE, |e| e.loss),
        ("supervised", GREEN, |e| e.supervised_loss),
        ("graph (unscaled)", RED, |e| e.graph_loss),
        ("adversarial (unscaled)", MAGENTA, |e| e.adversarial_loss),
        ("vat (unscaled)", CYAN, |e| e.vat_loss),
        ("entropy (unscaled)", RGBColor(255, 140, 0), |e| e.entropy_loss),
    ];
    // A regularizer the run did not use is zero throughout: not drawn.
    let curves: Vec<(String, RGBColor, Points)> = series
        .iter()
        .enumerate()
        .filter(|(i, (_, _, value))| *i < 2 || history.epochs.iter().any(|e| value(e) != 0.0))
        .map(|(_, (name, color, value))| {
            (name.to_string(), *color, history.epochs.iter().map(|e| (e.epoch as f64, value(e))).collect())
        })
        .collect();
    let max_loss =
        curves.iter().flat_map(|c| c.2.iter().map(|p| p.1)).filter(|v| v.is_finite()).fold(0.0f64, f64::max).max(1e-6);
    let (plot, legend) = left.split_vertically(400 - 30);
    let mut chart = panel(&plot, "loss", epochs, max_loss * 1.05)?;
    for (_, color, points) in &curves {
        chart.draw_series(LineSeries::new(points.clone(), *color))?;
    }
    draw_legend(&legend, &curves.iter().map(|(n, c, _)| (n.clone(), *c)).collect::<Vec<_>>())?;

    draw_metrics(history, &right, epochs, test)?;
    root.present()?;
    Ok(())
}

/// A chart over epochs `1..=epochs` and values `0..top`, with whole-epoch ticks only and room for
/// the last tick's label.
fn panel<'a, 'b>(
    area: &'a Area<'b>,
    caption: &str,
    epochs: f64,
    top: f64,
) -> Result<ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>, Box<dyn std::error::Error>> {
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 14))
        .margin(10)
        .margin_right(25)
        .x_label_area_size(30)
        .y_label_area_size(50)
        .build_cartesian_2d(1.0..epochs.max(2.0), 0.0..top)?;
    let whole = |x: &f64| match x.fract() == 0.0 {
        true => format!("{}", *x as i64),
        false => String::new(),
    };
    chart.configure_mesh().x_desc("epoch").x_labels((epochs as usize).clamp(2, 10)).x_label_formatter(&whole).draw()?;
    Ok(chart)
}

/// The legend of a panel, in the strip under it: two columns of a coloured line and a name.
fn draw_legend(area: &Area<'_>, entries: &[(String, RGBColor)]) -> Result<(), Box<dyn std::error::Error>> {
    let rows = entries.len().div_ceil(2).max(1);
    let row_height = ((LEGEND_HEIGHT as usize + 20) / (rows + 1)).clamp(12, 20) as i32;
    for (i, (name, color)) in entries.iter().enumerate() {
        let (x, y) = (60 + 210 * (i / rows) as i32, 8 + row_height * (i % rows) as i32);
        area.draw(&PathElement::new(vec![(x, y + 6), (x + 20, y + 6)], color.stroke_width(2)))?;
        area.draw(&Text::new(name.clone(), (x + 26, y), ("sans-serif", 12)))?;
    }
    Ok(())
}

/// One curve of the metrics panel: its legend and its points.
type Curve = (String, Vec<(f64, f64)>);

/// The metrics panel's curves: training and validation accuracy, then, for each of the task's
/// other metrics ([`History::metric_columns`]), its training and validation values.
fn metric_curves(history: &History) -> Vec<Curve> {
    let mut curves: Vec<Curve> = Vec::new();
    let mut push = |name: String, points: Vec<(f64, f64)>| {
        if !points.is_empty() {
            curves.push((name, points));
        }
    };
    let metrics = history.metric_columns();
    // Regression has no accuracy: its panel shows the errors only.
    let regression = metrics.iter().any(|m| !m.higher_is_better());
    if !regression {
        push("training".into(), history.epochs.iter().map(|e| (e.epoch as f64, e.accuracy)).collect());
        push(
            "validation".into(),
            history.epochs.iter().filter_map(|e| e.validation_accuracy.map(|v| (e.epoch as f64, v))).collect(),
        );
    }
    for m in metrics {
        let series = |pick: fn(&crate::train::EpochRecord) -> Option<&crate::eval::Metrics>| -> Vec<(f64, f64)> {
            history.epochs.iter().filter_map(|e| pick(e).and_then(|x| x.get(m)).map(|v| (e.epoch as f64, v))).collect()
        };
        push(format!("{} (training)", m.name()), series(|e| e.metrics.as_ref()));
        push(format!("{} (validation)", m.name()), series(|e| e.validation_metrics.as_ref()));
    }
    curves
}

/// The right panel: accuracy (training, validation, and the test accuracy as a point at the last
/// epoch) and the task's other metrics, on `[0, 1]`, or for regression the errors (MSE, MAE, RMSE)
/// from 0 to their largest value.
fn draw_metrics(
    history: &History,
    area: &Area<'_>,
    epochs: f64,
    test: Option<f64>,
) -> Result<(), Box<dyn std::error::Error>> {
    let curves = metric_curves(history);
    let errors = history.metric_columns().iter().any(|m| !m.higher_is_better());
    let top = if errors {
        curves
            .iter()
            .flat_map(|(_, p)| p.iter().map(|q| q.1))
            .filter(|v| v.is_finite())
            .fold(0.0f64, f64::max)
            .max(1e-6)
            * 1.05
    } else {
        1.0
    };
    let caption = match (errors, curves.len() > 2) {
        (true, _) => "errors",
        (false, true) => "metrics",
        (false, false) => "accuracy",
    };
    let (plot, legend) = area.split_vertically(400 - 30);
    let mut chart = panel(&plot, caption, epochs, top)?;
    let colors = [BLUE, MAGENTA, GREEN, RED, CYAN, BLACK, RGBColor(255, 140, 0), RGBColor(128, 128, 128)];
    let mut entries = Vec::new();
    for (i, (name, points)) in curves.into_iter().enumerate() {
        let color = colors[i % colors.len()];
        chart.draw_series(LineSeries::new(points, color))?;
        entries.push((name, color));
    }
    if let (Some(accuracy), false) = (test, errors) {
        let color = RGBColor(200, 0, 0);
        let last = history.epochs.last().map_or(1.0, |e| e.epoch as f64);
        chart.draw_series(std::iter::once(Circle::new((last, accuracy), 4, color.filled())))?;
        entries.push((format!("test {accuracy:.4}"), color));
    }
    draw_legend(&legend, &entries)
}

/// Writes robustness curves (accuracy against the attack strength ε, one line per model) as an SVG.
/// Each curve is `(name, [(ε, accuracy)])`. The file is written atomically.
///
/// # Errors
/// [`ReportError::Io`] if the file cannot be written, [`ReportError::Render`] if drawing fails.
pub fn robustness_curves_svg(
    curves: &[(String, Vec<(f64, f64)>)],
    title: &str,
    path: &Path,
) -> Result<(), ReportError> {
    let mut svg = String::new();
    draw_robustness(curves, title, &mut svg).map_err(|e| render_error(path, e))?;
    write_file(path, svg.as_bytes())
}

fn draw_robustness(
    curves: &[(String, Vec<(f64, f64)>)],
    title: &str,
    svg: &mut String,
) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::with_string(svg, (640, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let max_eps = curves.iter().flat_map(|(_, c)| c.iter().map(|p| p.0)).fold(0.0f64, f64::max).max(1e-6);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(35)
        .y_label_area_size(45)
        .build_cartesian_2d(0.0..max_eps * 1.02, 0.0..1.0)?;
    chart.configure_mesh().x_desc("epsilon").y_desc("accuracy").draw()?;
    let colors = [BLUE, RED, GREEN, MAGENTA, CYAN, BLACK];
    for (i, (name, points)) in curves.iter().enumerate() {
        let color = colors[i % colors.len()];
        chart
            .draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(2)))?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], color));
        chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
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
                    adversarial_loss: 0.0,
                    vat_loss: 0.0,
                    entropy_loss: 0.0,
                    accuracy: 0.5 + 0.1 * epoch as f64,
                    validation_accuracy: Some(0.6),
                    seconds: 0.1,
                    metrics: None,
                    validation_metrics: None,
                })
                .collect(),
            best_epoch: None,
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("curves.svg");
        training_curves_svg(&history, "test run", &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("accuracy") && svg.contains("validation") && svg.contains("<polyline"));
    }

    /// Issue 25: the legend below the plots, whole epochs only, no unused regularizer, the test
    /// accuracy when known, no label cut at the edge.
    #[test]
    fn curves_are_readable() {
        let history = History {
            epochs: (1..=100)
                .map(|epoch| EpochRecord {
                    epoch,
                    loss: 1.0 / epoch as f64,
                    supervised_loss: 0.9 / epoch as f64,
                    graph_loss: 0.0,
                    adversarial_loss: 0.2,
                    vat_loss: 0.0,
                    entropy_loss: 0.0,
                    accuracy: 1.0 - 0.5 / epoch as f64,
                    validation_accuracy: Some(0.6),
                    seconds: 0.1,
                    metrics: None,
                    validation_metrics: None,
                })
                .collect(),
            best_epoch: None,
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("curves.svg");
        training_curves_svg_with_test(&history, "run", Some(0.8125), &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        let texts: Vec<&str> = svg.split("</text>").filter_map(|t| t.rsplit('>').next()).map(str::trim).collect();
        assert!(texts.contains(&"adversarial (unscaled)") && !texts.contains(&"graph (unscaled)"), "{texts:?}");
        assert!(texts.contains(&"test 0.8125") && texts.contains(&"validation"), "{texts:?}");
        assert!(texts.contains(&"100") && !texts.contains(&"100.0"), "{texts:?}");
        // Every legend entry lies below both plots (y of the x axis' labels < 400).
        let y_of = |name: &str| -> f64 {
            let at = svg.find(&format!("{name}\n</text>")).unwrap();
            let tag = &svg[svg[..at].rfind("<text").unwrap()..at];
            tag.split("y=\"").nth(1).unwrap().split('"').next().unwrap().parse().unwrap()
        };
        for name in ["total", "supervised", "adversarial (unscaled)", "training", "validation", "test 0.8125"] {
            assert!(y_of(name) > 400.0, "{name} at y {}", y_of(name));
        }
        // The last x label fits in the image (960 wide).
        let at = svg.find("100\n</text>").unwrap();
        let tag = &svg[svg[..at].rfind("<text").unwrap()..at];
        let x: f64 = tag.split("x=\"").nth(1).unwrap().split('"').next().unwrap().parse().unwrap();
        assert!(x < 950.0, "{tag}");
        // Three epochs: ticks 1, 2, 3 and nothing between.
        let mut short = history.clone();
        short.epochs.truncate(3);
        training_curves_svg(&short, "run", &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        let texts: Vec<&str> = svg.split("</text>").filter_map(|t| t.rsplit('>').next()).map(str::trim).collect();
        assert!(["1", "2", "3"].iter().all(|t| texts.contains(t)), "{texts:?}");
        assert!(!texts.iter().any(|t| ["1.5", "2.5", "1.2"].contains(t)), "{texts:?}");
    }

    #[test]
    fn metrics_panel_follows_the_task() {
        use crate::eval::Metrics;
        let history = |metrics: Metrics, validation: bool| History {
            epochs: (1..=2)
                .map(|epoch| EpochRecord {
                    epoch,
                    loss: 1.0,
                    supervised_loss: 1.0,
                    graph_loss: 0.0,
                    adversarial_loss: 0.0,
                    vat_loss: 0.0,
                    entropy_loss: 0.0,
                    accuracy: 0.5,
                    validation_accuracy: validation.then_some(0.4),
                    seconds: 0.1,
                    metrics: Some(metrics.clone()),
                    validation_metrics: validation.then(|| metrics.clone()),
                })
                .collect(),
            best_epoch: None,
        };
        let names = |h: &History| metric_curves(h).into_iter().map(|(n, _)| n).collect::<Vec<_>>();
        let binary = Metrics { accuracy: Some(0.5), macro_f1: Some(0.4), roc_auc: Some(0.8), ..Default::default() };
        assert_eq!(
            names(&history(binary, true)),
            [
                "training",
                "validation",
                "macro-f1 (training)",
                "macro-f1 (validation)",
                "roc-auc (training)",
                "roc-auc (validation)"
            ]
        );
        let regression = Metrics { mse: Some(4.0), mae: Some(1.5), rmse: Some(2.0), ..Default::default() };
        let h = history(regression, false);
        assert_eq!(names(&h), ["mse (training)", "mae (training)", "rmse (training)"]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("curves.svg");
        training_curves_svg(&h, "regression", &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.contains("errors") && svg.contains("mse (training)") && !svg.contains(">accuracy<"), "{svg}");
    }

    #[test]
    fn robustness_svg_has_one_line_per_model() {
        let curves = vec![
            ("base".to_string(), vec![(0.0, 0.98), (0.1, 0.5), (0.2, 0.1)]),
            ("adv-reg".to_string(), vec![(0.0, 0.98), (0.1, 0.9), (0.2, 0.8)]),
        ];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("robust.svg");
        robustness_curves_svg(&curves, "FGSM", &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.contains("base") && svg.contains("adv-reg"));
        // One data line per model (width 2); the legend's sample lines are thinner.
        let data_lines = svg.lines().filter(|l| l.contains("<polyline") && l.contains(r#"stroke-width="2""#)).count();
        assert_eq!(data_lines, curves.len(), "{svg}");
    }
}
