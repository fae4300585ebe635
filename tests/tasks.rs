//! Issue 12, tasks and weights: each task trains and evaluates through the CLI on tables derived
//! from the bundled Cora, beats a trivial baseline by a stated margin, and `nsl evaluate`'s loss
//! and metrics equal the ones computed by hand from `nsl predict`'s output.
//!
//! Derived tables (written in each test's tempdir, CSV with a packed `features` column):
//! - binary: the largest class (`class_3`, 30% of the papers; the bundled Cora names its classes
//!   `class_0` … `class_6`) against the rest;
//! - multilabel: a paper's own class plus the classes of the papers it cites or is cited by;
//! - regression: a fixed linear function of the paper's words (seeded weights).
//!
//! Every fourth paper (in file order) is a test paper, the rest train.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

mod common;
use common::{nsl, ok};

fn cora_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/cora")
}

/// Cora's papers: ids, word vectors, class names.
struct Cora {
    ids: Vec<String>,
    words: Vec<Vec<u8>>,
    classes: Vec<String>,
    /// Undirected citation neighbors, by row.
    neighbors: Vec<Vec<usize>>,
}

fn cora() -> Cora {
    let data = nsl::data::read_content(&cora_dir().join("cora.content.gz")).unwrap();
    let names = data.class_names().unwrap().to_vec();
    let labels = data.labels().unwrap();
    let ids = data.ids().to_vec();
    let words = data.features().rows().into_iter().map(|r| r.iter().map(|&v| v as u8).collect()).collect();
    let index: HashMap<&str, usize> = ids.iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(cora_dir().join("cora.cites.gz")).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    let mut neighbors = vec![Vec::new(); ids.len()];
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        if let (Some(a), Some(b)) = (parts.next(), parts.next()) {
            if let (Some(&i), Some(&j)) = (index.get(a), index.get(b)) {
                neighbors[i].push(j);
                neighbors[j].push(i);
            }
        }
    }
    let classes = labels.iter().map(|&l| names[l as usize].clone()).collect();
    Cora { ids, words, classes, neighbors }
}

/// Writes `train.csv` and `test.csv` (`id,features,label` + an optional `weight`) into `dir`.
fn write_tables(dir: &Path, cora: &Cora, label: impl Fn(usize) -> String, weight: Option<&dyn Fn(usize) -> f32>) {
    let mut writers: Vec<csv::Writer<std::fs::File>> =
        ["train.csv", "test.csv"].iter().map(|n| csv::Writer::from_path(dir.join(n)).unwrap()).collect();
    for w in &mut writers {
        let mut header = vec!["id", "features", "label"];
        header.extend(weight.map(|_| "weight"));
        w.write_record(&header).unwrap();
    }
    for i in 0..cora.ids.len() {
        let features: Vec<&str> = cora.words[i].iter().map(|&v| if v == 1 { "1" } else { "0" }).collect();
        let mut row = vec![cora.ids[i].clone(), features.join(" "), label(i)];
        row.extend(weight.map(|w| w(i).to_string()));
        writers[usize::from(i % 4 == 0)].write_record(&row).unwrap();
    }
    for w in &mut writers {
        w.flush().unwrap();
    }
}

fn test_rows(cora: &Cora) -> Vec<usize> {
    (0..cora.ids.len()).filter(|i| i % 4 == 0).collect()
}

fn train(dir: &Path, extra: &[&str]) -> serde_json::Value {
    let (train, test, out) = (dir.join("train.csv"), dir.join("test.csv"), dir.join("run"));
    let mut args = vec![
        "train",
        "--samples",
        train.to_str().unwrap(),
        "--test",
        test.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--batch-size",
        "64",
        "--threads",
        "1",
        "--json",
    ];
    if !extra.contains(&"--epochs") {
        args.extend(["--epochs", "15"]);
    }
    args.extend_from_slice(extra);
    serde_json::from_str(&ok(&args)).unwrap()
}

fn evaluate(dir: &Path) -> serde_json::Value {
    let (run, test) = (dir.join("run"), dir.join("test.csv"));
    serde_json::from_str(&ok(&[
        "evaluate",
        "--run",
        run.to_str().unwrap(),
        "--samples",
        test.to_str().unwrap(),
        "--json",
    ]))
    .unwrap()
}

/// `nsl predict`'s CSV: the header and the rows.
fn predict(dir: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let (run, test, out) = (dir.join("run"), dir.join("test.csv"), dir.join("predictions.csv"));
    ok(&[
        "predict",
        "--run",
        run.to_str().unwrap(),
        "--samples",
        test.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ]);
    let mut reader = csv::Reader::from_path(&out).unwrap();
    let header = reader.headers().unwrap().iter().map(str::to_owned).collect();
    let rows = reader.records().map(|r| r.unwrap().iter().map(str::to_owned).collect()).collect();
    (header, rows)
}

fn f(v: &serde_json::Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or_else(|| panic!("no `{key}` in {v}"))
}

/// Binary "class_3 vs rest": beats the majority class (70% of the test papers) by 10
/// points of accuracy, ROC-AUC ≥ 0.85; `nsl evaluate`'s loss and accuracy equal the mean binary
/// cross-entropy and the 0.5-threshold accuracy of `nsl predict`'s probabilities.
#[test]
fn binary_one_class_against_the_rest() {
    let cora = cora();
    let dir = tempfile::tempdir().unwrap();
    let positive = |i: usize| cora.classes[i] == "class_3";
    write_tables(dir.path(), &cora, |i| if positive(i) { "nn".into() } else { "other".into() }, None);
    let summary = train(dir.path(), &["--task", "binary"]);
    assert_eq!(summary["task"], "binary");
    let test = test_rows(&cora);
    let y: Vec<bool> = test.iter().map(|&i| !positive(i)).collect();
    // Class names sort as `nn` < `other`: label 1 is `other`.
    let majority = y.iter().filter(|&&b| b).count().max(y.iter().filter(|&&b| !b).count()) as f64 / y.len() as f64;
    let e = evaluate(dir.path());
    assert_eq!(e["task"], "binary");
    let (accuracy, auc) = (f(&e, "accuracy"), f(&e, "roc_auc"));
    eprintln!("binary: accuracy {accuracy:.4} (majority {majority:.4}), ROC-AUC {auc:.4}, loss {:.4}", f(&e, "loss"));
    assert!(accuracy >= majority + 0.10, "accuracy {accuracy} vs majority {majority}");
    assert!(auc >= 0.85, "auc {auc}");
    assert!((f(&summary["test_metrics"], "roc_auc") - auc).abs() < 1e-9);

    let (header, rows) = predict(dir.path());
    assert_eq!(header, ["id", "prediction", "p_other"]);
    let p: Vec<f64> = rows.iter().map(|r| r[2].parse().unwrap()).collect();
    // Probabilities are printed with 6 decimals (and saturate in f32 beyond |z| ≈ 16), so the
    // confident samples' losses are clamped at −ln(1e−6): a 2% tolerance.
    let bce =
        p.iter().zip(&y).map(|(&p, &y)| -(if y { p } else { 1.0 - p }).max(1e-6).ln()).sum::<f64>() / p.len() as f64;
    let loss = f(&e, "loss");
    assert!((bce - loss).abs() < 0.02 * loss, "BCE from predictions {bce} vs {loss}");
    let right = p.iter().zip(&y).filter(|(&p, &y)| (p > 0.5) == y).count() as f64 / y.len() as f64;
    assert!((right - accuracy).abs() < 1e-9);
    // The ROC-AUC by pair counting (ties ½) from the predicted probabilities.
    let (pos, neg): (Vec<f64>, Vec<f64>) = (
        p.iter().zip(&y).filter(|t| *t.1).map(|t| *t.0).collect(),
        p.iter().zip(&y).filter(|t| !*t.1).map(|t| *t.0).collect(),
    );
    let pairs: f64 = pos
        .iter()
        .map(|a| {
            neg.iter()
                .map(|b| {
                    if a > b {
                        1.0
                    } else if a == b {
                        0.5
                    } else {
                        0.0
                    }
                })
                .sum::<f64>()
        })
        .sum();
    let auc_by_hand = pairs / (pos.len() * neg.len()) as f64;
    // Probabilities are printed with 6 decimals: near-ties may differ from the logits' order.
    assert!((auc_by_hand - auc).abs() < 2e-3, "{auc_by_hand} vs {auc}");
}

/// Multilabel "own class + the classes of its citation neighbors": macro-F1 beats the "every
/// label on" baseline by 0.15; micro-F1 and subset accuracy equal the ones computed from
/// `nsl predict`'s label sets.
#[test]
fn multilabel_own_and_cited_classes() {
    let cora = cora();
    let dir = tempfile::tempdir().unwrap();
    let labels = |i: usize| {
        let mut set: Vec<&str> = std::iter::once(cora.classes[i].as_str())
            .chain(cora.neighbors[i].iter().map(|&j| cora.classes[j].as_str()))
            .collect();
        set.sort_unstable();
        set.dedup();
        set
    };
    write_tables(dir.path(), &cora, |i| labels(i).join(";"), None);
    let summary = train(dir.path(), &["--task", "multilabel", "--model", "mlp:64"]);
    assert_eq!(summary["task"], "multilabel");
    let e = evaluate(dir.path());
    let test = test_rows(&cora);
    let mut names: Vec<&str> = cora.classes.iter().map(String::as_str).collect();
    names.sort_unstable();
    names.dedup();
    // Baseline: every label on. Per label, F1 = 2·pos / (pos + n).
    let baseline = names
        .iter()
        .map(|name| {
            let pos = test.iter().filter(|&&i| labels(i).contains(name)).count() as f64;
            2.0 * pos / (pos + test.len() as f64)
        })
        .sum::<f64>()
        / names.len() as f64;
    let macro_f1 = f(&e, "macro_f1");
    eprintln!(
        "multilabel: macro-F1 {macro_f1:.4} (every-label baseline {baseline:.4}), micro-F1 {:.4}, subset accuracy {:.4}",
        f(&e, "micro_f1"),
        f(&e, "subset_accuracy")
    );
    assert!(macro_f1 >= baseline + 0.15, "macro-F1 {macro_f1} vs every-label baseline {baseline}");

    let (header, rows) = predict(dir.path());
    assert_eq!(header.len(), 2 + names.len());
    let (mut tp, mut fp, mut fnn, mut exact) = (0usize, 0usize, 0usize, 0usize);
    for (row, &i) in rows.iter().zip(&test) {
        assert_eq!(row[0], cora.ids[i]);
        let predicted: Vec<&str> = row[1].split(';').filter(|s| !s.is_empty()).collect();
        let truth = labels(i);
        tp += predicted.iter().filter(|p| truth.contains(p)).count();
        fp += predicted.iter().filter(|p| !truth.contains(p)).count();
        fnn += truth.iter().filter(|t| !predicted.contains(t)).count();
        exact += usize::from(predicted == truth);
    }
    let micro = 2.0 * tp as f64 / (2 * tp + fp + fnn) as f64;
    assert!((micro - f(&e, "micro_f1")).abs() < 1e-9, "{micro} vs {}", e["micro_f1"]);
    assert!((exact as f64 / test.len() as f64 - f(&e, "subset_accuracy")).abs() < 1e-9);
}

/// Regression on `y = Σⱼ wⱼ xⱼ` (seeded weights in [−1, 1]): the test MSE is at most half the
/// mean predictor's (the targets' variance), with MSE and Huber; `nsl evaluate`'s MSE and MAE equal
/// those of `nsl predict`'s values; early stopping watches the MSE (lower is better).
#[test]
fn regression_on_a_linear_function_of_the_words() {
    let cora = cora();
    let dir = tempfile::tempdir().unwrap();
    let mut state = 12345u64;
    let w: Vec<f64> = (0..cora.words[0].len())
        .map(|_| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((state >> 33) as f64 / (1u64 << 31) as f64) * 2.0 - 1.0
        })
        .collect();
    let y: Vec<f64> = cora.words.iter().map(|x| x.iter().zip(&w).map(|(&a, b)| a as f64 * b).sum::<f64>()).collect();
    write_tables(dir.path(), &cora, |i| format!("{}", y[i]), None);
    let test = test_rows(&cora);
    let mean = test.iter().map(|&i| y[i]).sum::<f64>() / test.len() as f64;
    let variance = test.iter().map(|&i| (y[i] - mean).powi(2)).sum::<f64>() / test.len() as f64;
    let validation = dir.path().join("test.csv");
    let summary = train(
        dir.path(),
        &[
            "--task",
            "regression",
            "--learning-rate",
            "0.005",
            "--dropout",
            "0",
            "--epochs",
            "40",
            "--validation",
            validation.to_str().unwrap(),
            "--early-stopping",
            "patience=5",
        ],
    );
    assert_eq!(summary["task"], "regression");
    assert!(summary.get("test_accuracy").is_none_or(|v| v.is_null()));
    let e = evaluate(dir.path());
    let mse = f(&e, "mse");
    eprintln!("regression: MSE {mse:.4} (mean predictor {variance:.4}), MAE {:.4}", f(&e, "mae"));
    assert!(mse <= 0.5 * variance, "MSE {mse} vs the mean predictor's {variance}");
    assert!(e.get("accuracy").is_none(), "{e}");
    let (header, rows) = predict(dir.path());
    assert_eq!(header, ["id", "value"]);
    let z: Vec<f64> = rows.iter().map(|r| r[1].parse().unwrap()).collect();
    let by_hand = z.iter().zip(&test).map(|(z, &i)| (z - y[i]).powi(2)).sum::<f64>() / z.len() as f64;
    let mae = z.iter().zip(&test).map(|(z, &i)| (z - y[i]).abs()).sum::<f64>() / z.len() as f64;
    assert!((by_hand - mse).abs() < 1e-4 * mse.max(1.0), "{by_hand} vs {mse}");
    assert!((mae - f(&e, "mae")).abs() < 1e-4, "{mae} vs {}", e["mae"]);
    assert!((f(&e, "loss") - mse).abs() < 1e-3 * mse.max(1.0), "the loss is the MSE");
    // Early stopping kept the epoch of the lowest validation MSE.
    let history: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("run/history.json")).unwrap()).unwrap();
    let epochs = history["epochs"].as_array().unwrap();
    let best = history["best_epoch"].as_u64().unwrap() as usize;
    let lowest = epochs.iter().map(|r| f(&r["validation_metrics"], "mse")).fold(f64::INFINITY, f64::min);
    assert_eq!(f(&epochs[best - 1]["validation_metrics"], "mse"), lowest);
    // The summary reports the kept epoch's validation metrics, not the last epoch's.
    assert_eq!(summary["best_epoch"].as_u64(), Some(best as u64));
    assert_eq!(f(&summary["final_validation_metrics"], "mse"), lowest, "{summary}");

    // Huber's loss trains too.
    let huber = train(
        dir.path(),
        &["--task", "regression,loss=huber,delta=1", "--learning-rate", "0.005", "--dropout", "0", "--epochs", "40"],
    );
    let huber_mse = f(&huber["test_metrics"], "mse");
    eprintln!("regression, Huber δ=1: MSE {huber_mse:.4}");
    assert!(huber_mse <= 0.5 * variance, "Huber: MSE {huber_mse} vs {variance}");
}

/// Sample and class weights through the CLI: balanced class weights make a minority class (11%)
/// predicted more often (8.3% → 10.0% of the test papers when written); bad weights are errors naming the file, row and column, and nothing is
/// written.
#[test]
fn weights_through_the_cli() {
    let cora = cora();
    let dir = tempfile::tempdir().unwrap();
    // Binary "class_5" (11%) against the rest; weight column 2 for the even rows.
    let positive = |i: usize| cora.classes[i] == "class_5";
    let weight = |i: usize| if i.is_multiple_of(2) { 2.0 } else { 1.0 };
    write_tables(dir.path(), &cora, |i| u8::from(positive(i)).to_string(), Some(&weight));
    let columns = ["--feature-columns", "features"];
    let plain = train(dir.path(), &[&["--task", "binary"][..], &columns].concat());
    let (_, rows) = predict(dir.path());
    let share = |rows: &[Vec<String>]| rows.iter().filter(|r| r[1] == "1").count() as f64 / rows.len() as f64;
    let before = share(&rows);
    let weighted = train(
        dir.path(),
        &[&["--task", "binary", "--class-weights", "balanced", "--weight-column", "weight"][..], &columns].concat(),
    );
    let (_, rows) = predict(dir.path());
    let after = share(&rows);
    assert!(after > before + 0.01, "positives predicted: {before} unweighted, {after} balanced");
    assert!(f(&weighted["test_metrics"], "macro_f1") > 0.6, "{weighted}");
    assert!(plain["test_metrics"]["roc_auc"].is_number());

    // A negative weight: file, line, column; the run directory is not replaced.
    let bad = dir.path().join("bad.csv");
    let text = std::fs::read_to_string(dir.path().join("train.csv")).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines[3] = format!("{},-1", lines[3].rsplit_once(',').unwrap().0);
    std::fs::write(&bad, lines.join("\n")).unwrap();
    let out = dir.path().join("bad_run");
    let o = nsl(&[
        "train",
        "--samples",
        bad.to_str().unwrap(),
        "--task",
        "binary",
        "--weight-column",
        "weight",
        "--feature-columns",
        "features",
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("bad.csv") && err.contains("line 4, column weight") && err.contains("negative"), "{err}");
    assert!(!out.exists());

    // Class weights name an unknown class: file and line.
    let weights = dir.path().join("weights.tsv");
    std::fs::write(&weights, "0\t1\n7\t2\n").unwrap();
    let o = nsl(&[
        "train",
        "--samples",
        dir.path().join("train.csv").to_str().unwrap(),
        "--task",
        "binary",
        "--class-weights",
        weights.to_str().unwrap(),
        "--feature-columns",
        "features",
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("weights.tsv, line 2") && err.contains("`7`"), "{err}");
    // Class weights need classes.
    let o = nsl(&[
        "train",
        "--samples",
        dir.path().join("train.csv").to_str().unwrap(),
        "--task",
        "regression",
        "--class-weights",
        "balanced",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("--class-weights applies to"));
    assert!(!out.exists());
}

/// Weighted evaluation (`--weight-column`): `nsl evaluate`'s loss is `Σ wᵢ BCEᵢ / n` and its
/// accuracy and ROC-AUC count each paper `wᵢ` times (weights 0, 1, 2, 3 by row), as recomputed
/// from `nsl predict`'s probabilities; `nsl train --test` reports the same weighted values, and
/// without the flag `nsl evaluate` is unweighted (and differs).
#[test]
fn weighted_evaluation_by_hand() {
    let cora = cora();
    let dir = tempfile::tempdir().unwrap();
    let positive = |i: usize| cora.classes[i] == "class_3";
    let weight = |i: usize| ((i / 4) % 4) as f32;
    write_tables(dir.path(), &cora, |i| u8::from(positive(i)).to_string(), Some(&weight));
    let summary = train(
        dir.path(),
        &["--task", "binary", "--weight-column", "weight", "--feature-columns", "features", "--epochs", "5"],
    );
    let (run, test) = (dir.path().join("run"), dir.path().join("test.csv"));
    let eval = |weighted: bool| -> serde_json::Value {
        let mut args = vec!["evaluate", "--run", run.to_str().unwrap(), "--samples", test.to_str().unwrap()];
        args.extend(["--feature-columns", "features", "--json"]);
        if weighted {
            args.extend(["--weight-column", "weight"]);
        }
        serde_json::from_str(&ok(&args)).unwrap()
    };
    let (e, plain) = (eval(true), eval(false));
    assert_eq!(e["weighted"], true);
    assert!(plain.get("weighted").is_none(), "{plain}");

    let rows = test_rows(&cora);
    let w: Vec<f64> = rows.iter().map(|&i| f64::from(weight(i))).collect();
    let y: Vec<bool> = rows.iter().map(|&i| positive(i)).collect();
    let (header, predicted) = predict(dir.path());
    assert_eq!(header, ["id", "prediction", "p_1"]);
    let p: Vec<f64> = predicted.iter().map(|r| r[2].parse().unwrap()).collect();
    let n = p.len() as f64;
    let total: f64 = w.iter().sum();
    let bce = |p: f64, y: bool| -(if y { p } else { 1.0 - p }).max(1e-6).ln();
    let loss = p.iter().zip(&y).zip(&w).map(|((&p, &y), &w)| w * bce(p, y)).sum::<f64>() / n;
    let plain_loss = p.iter().zip(&y).map(|(&p, &y)| bce(p, y)).sum::<f64>() / n;
    let accuracy =
        p.iter().zip(&y).zip(&w).filter(|((&p, &y), _)| (p > 0.5) == y).map(|(_, &w)| w).sum::<f64>() / total;
    let (mut right, mut pairs) = (0.0, 0.0);
    for (i, (&pi, &wi)) in p.iter().zip(&w).enumerate().filter(|(i, _)| y[*i]) {
        for (_, (&pj, &wj)) in p.iter().zip(&w).enumerate().filter(|(j, _)| !y[*j] && *j != i) {
            pairs += wi * wj;
            right += wi
                * wj
                * if pi > pj {
                    1.0
                } else if pi == pj {
                    0.5
                } else {
                    0.0
                };
        }
    }
    let auc = right / pairs;
    eprintln!("weighted binary: loss {loss:.4} (unweighted {plain_loss:.4}), accuracy {accuracy:.4}, ROC-AUC {auc:.4}");
    // Probabilities are printed with 6 decimals: a 2% tolerance on the loss, 2e-3 on the AUC.
    assert!((f(&e, "loss") - loss).abs() < 0.02 * loss, "{} vs {loss}", f(&e, "loss"));
    assert!((f(&plain, "loss") - plain_loss).abs() < 0.02 * plain_loss);
    assert!((f(&e, "loss") - f(&plain, "loss")).abs() > 0.05 * plain_loss, "weights changed nothing: {e} {plain}");
    assert!((f(&e, "accuracy") - accuracy).abs() < 1e-9, "{e}");
    assert!((f(&e, "roc_auc") - auc).abs() < 2e-3, "{e} vs {auc}");
    // The run's own test figures are the weighted ones.
    assert!((f(&summary, "test_loss") - f(&e, "loss")).abs() < 1e-6, "{summary}");
    assert!((f(&summary["test_metrics"], "roc_auc") - f(&e, "roc_auc")).abs() < 1e-9);

    // FGSM along the sigmoid cross-entropy's gradient: at ε = 0 the clean (weighted) metrics, at
    // ε = 0.5 a lower ROC-AUC.
    let mut args = vec!["evaluate", "--run", run.to_str().unwrap(), "--samples", test.to_str().unwrap()];
    args.extend(["--feature-columns", "features", "--weight-column", "weight", "--json"]);
    args.extend(["--attack", "fgsm", "--epsilon", "0,0.5"]);
    let attacked: serde_json::Value = serde_json::from_str(&ok(&args)).unwrap();
    let robust = &attacked["robust_metrics"];
    assert!((f(&robust[0], "roc_auc") - f(&e, "roc_auc")).abs() < 1e-12, "{attacked}");
    assert!((f(&robust[0], "accuracy") - f(&e, "accuracy")).abs() < 1e-12, "{attacked}");
    assert!(f(&robust[1], "roc_auc") < f(&e, "roc_auc") - 0.05, "{attacked}");
    assert_eq!(attacked["robust_accuracy"].as_array().map(Vec::len), Some(2));
}

/// Bad targets: a NaN regression target and a ragged target list name the file, line and column;
/// binary refuses more than two classes.
#[test]
fn bad_targets_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.csv");
    let out = dir.path().join("run");
    let run = |text: &str, task: &str| {
        std::fs::write(&path, text).unwrap();
        let o = nsl(&[
            "train",
            "--samples",
            path.to_str().unwrap(),
            "--task",
            task,
            "--out",
            out.to_str().unwrap(),
            "--epochs",
            "1",
        ]);
        assert!(!o.status.success());
        assert!(!out.exists());
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let err = run("id,features,label\na,1 0,1.5\nb,0 1,NaN\n", "regression");
    assert!(err.contains("t.csv") && err.contains("line 3, column label") && err.contains("not finite"), "{err}");
    let err = run("id,features,label\na,1 0,1 2\nb,0 1,3\n", "regression");
    assert!(err.contains("line 3, column label") && err.contains("expected 2"), "{err}");
    let err = run("id,features,label\na,1 0,x\nb,0 1,y\nc,1 1,z\n", "binary");
    assert!(err.contains("--task binary needs two classes") && err.contains("has 3"), "{err}");
    let err = run("id,features,label\na,1 0,x\nb,0 1,\n", "multilabel");
    assert!(err.contains("line 3") && err.contains("empty"), "{err}");
}

mod library {
    use candle_core::Device;
    use nsl::data::{Dataset, Targets};
    use nsl::graph::{EdgeKind, NeighborGraph};
    use nsl::loss::Task;
    use nsl::model::build_model;
    use nsl::neighbors::NeighborTable;
    use nsl::regularize::{AdvNeighborConfig, AdvRegConfig, GraphRegConfig, NormType, VatConfig};
    use nsl::train::{TrainConfig, Trainer};
    use rand::{Rng, SeedableRng};

    /// 40 samples of 6 features, two classes; the first feature carries the class.
    fn blobs() -> Dataset {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let labels: Vec<u32> = (0..40).map(|i| (i % 2) as u32).collect();
        let x = ndarray::Array2::from_shape_fn((40, 6), |(i, j)| {
            (if j == 0 { labels[i] as f32 } else { 0.0 }) + rng.random_range(-0.5..0.5f32)
        });
        Dataset::new((0..40).map(|i| format!("s{i}")).collect(), x, vec![6], Some(labels), None).unwrap()
    }

    fn ring(data: &Dataset) -> NeighborGraph {
        let mut g = NeighborGraph::new();
        for i in 0..data.len() {
            g.add_edge(&data.ids()[i], &data.ids()[(i + 2) % data.len()], 1.0, EdgeKind::Explicit).unwrap();
        }
        g
    }

    fn weights(vars: &candle_nn::VarMap) -> Vec<f32> {
        let data = vars.data().lock().unwrap();
        let mut names: Vec<&String> = data.keys().collect();
        names.sort();
        names.iter().flat_map(|n| data[*n].as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap()).collect()
    }

    /// With sample weights, the history's training metrics count each sample as often as its
    /// weight, as the validation and test tables are scored: one batch of the whole set, no dropout,
    /// so the epoch's training outputs are the initial model's.
    #[test]
    fn training_metrics_are_weighted() {
        let data = blobs();
        let w: Vec<f32> = (0..40)
            .map(|i| {
                if i % 2 == 0 {
                    3.0
                } else if i < 20 {
                    1.0
                } else {
                    0.0
                }
            })
            .collect();
        let weighted = data.clone().with_weights(w).unwrap();
        let spec: nsl::model::ModelSpec = "mlp:8".parse::<nsl::model::ModelSpec>().unwrap().with_dropout(0.0);
        let (model, vars) = build_model(&spec, &[6], 2, 3, &Device::Cpu).unwrap();
        let x = weighted.features().to_owned();
        let expected = nsl::eval::metrics_on(model.as_ref(), &x, &weighted, Task::Multiclass, 64).unwrap();
        let unweighted = nsl::eval::metrics_on(model.as_ref(), &x, &data, Task::Multiclass, 64).unwrap();
        assert_ne!(expected.macro_f1, unweighted.macro_f1, "the weights must change the figures");
        let config = TrainConfig { epochs: 1, batch_size: 40, threads: Some(1), ..Default::default() };
        let history = Trainer::new(model.as_ref(), &vars, config).fit(&weighted, None).unwrap();
        let got = history.epochs[0].metrics.clone().unwrap();
        for (name, a, b) in
            [("accuracy", got.accuracy, expected.accuracy), ("macro_f1", got.macro_f1, expected.macro_f1)]
        {
            let (a, b) = (a.unwrap(), b.unwrap());
            assert!((a - b).abs() < 1e-12, "{name}: history {a}, weighted {b}");
        }
        assert_eq!(history.epochs[0].accuracy, got.accuracy.unwrap(), "the accuracy column is the weighted one");
    }

    /// Every sample weighing 0 zeroes every loss term — supervised, graph (per center),
    /// adversarial (supervised and distance forms) and virtual adversarial — so Adam never moves
    /// the weights, for each task. With weights 1, training moves them.
    #[test]
    fn zero_weights_reach_every_loss_term() {
        let data = blobs();
        let (table, _) = NeighborTable::new(&data, None, &ring(&data), 1).unwrap();
        let graph = GraphRegConfig { multiplier: 0.5, neighbors: 1.into(), ..Default::default() };
        let adv = AdvRegConfig {
            multiplier: 0.5,
            neighbor: AdvNeighborConfig { step_size: 0.1, grad_norm: NormType::L2, ..Default::default() },
            ..Default::default()
        };
        let adv_distance = AdvRegConfig::from_kv("multiplier=0.5,step-size=0.1,loss=l2").unwrap();
        let vat = VatConfig { epsilon: 0.1, ..Default::default() };
        let values = ndarray::Array2::from_shape_fn((40, 1), |(i, _)| data.row(i)[0] * 2.0);
        let multi = ndarray::Array2::from_shape_fn((40, 2), |(i, j)| f32::from(u8::from((i + j) % 2 == 0)));
        let cases: Vec<(Task, Dataset, usize)> = vec![
            (Task::Multiclass, data.clone(), 2),
            (Task::Binary, data.clone(), 1),
            (Task::Multilabel, data.clone().with_targets(Targets::MultiHot(multi), None).unwrap(), 2),
            (
                Task::Regression(Default::default()),
                data.clone().with_targets(Targets::Values(values), None).unwrap(),
                1,
            ),
        ];
        for (task, train, outputs) in cases {
            for adversarial in [&adv, &adv_distance] {
                let run = |w: f32| {
                    let train = train.clone().with_weights(vec![w; 40]).unwrap();
                    let spec = "mlp:8".parse().unwrap();
                    let (model, vars) = build_model(&spec, &[6], outputs, 3, &Device::Cpu).unwrap();
                    let before = weights(&vars);
                    let config = TrainConfig { epochs: 2, batch_size: 8, threads: Some(1), ..Default::default() };
                    let history = Trainer::new(model.as_ref(), &vars, config)
                        .with_task(task)
                        .with_graph(&table, &graph)
                        .with_adversarial(adversarial)
                        .with_vat(&vat)
                        .fit(&train, None)
                        .unwrap();
                    let last = history.epochs.last().unwrap().clone();
                    (before == weights(&vars), last)
                };
                let (unchanged, last) = run(0.0);
                assert!(unchanged, "{task}: weights moved with every sample weight 0 ({last:?})");
                assert_eq!((last.supervised_loss, last.graph_loss, last.adversarial_loss), (0.0, 0.0, 0.0), "{task}");
                assert_eq!(last.vat_loss, 0.0, "{task}");
                let (unchanged, last) = run(1.0);
                assert!(!unchanged && last.supervised_loss > 0.0 && last.graph_loss > 0.0, "{task}");
            }
        }
    }

    /// The binary task through the trainer: one output, labels 0/1; the training accuracy counts
    /// logit > 0 as class 1, and a model with two outputs is refused.
    #[test]
    fn binary_trains_and_checks_the_output_width() {
        let data = blobs();
        let spec = "mlp:8".parse::<nsl::model::ModelSpec>().unwrap().with_dropout(0.0);
        let (model, vars) = build_model(&spec, &[6], 1, 3, &Device::Cpu).unwrap();
        let optimizer = nsl::train::OptimizerConfig::adam().with_learning_rate(0.01);
        let config = TrainConfig { epochs: 30, batch_size: 8, threads: Some(1), optimizer, ..Default::default() };
        let h = Trainer::new(model.as_ref(), &vars, config.clone()).with_task(Task::Binary).fit(&data, None).unwrap();
        let last = h.epochs.last().unwrap();
        assert!(last.accuracy > 0.8, "{last:?}");
        assert!(last.metrics.as_ref().unwrap().roc_auc.unwrap() > 0.85, "{last:?}");
        let (model, vars) = build_model(&spec, &[6], 2, 3, &Device::Cpu).unwrap();
        let err = Trainer::new(model.as_ref(), &vars, config).with_task(Task::Binary).fit(&data, None).unwrap_err();
        assert!(err.to_string().contains("needs 1 outputs, but it has 2"), "{err}");
    }
}

/// Parquet tables: a float64 label column trains a regression and a `list<utf8>` one a multilabel
/// model (and `nsl evaluate` reads them back); as class labels, a float column stays an error.
#[test]
fn parquet_target_columns() {
    use arrow::array::{
        Array, ArrayRef, FixedSizeListArray, Float32Array, Float64Array, ListBuilder, StringArray, StringBuilder,
    };
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let n = 64;
    let x: Vec<f32> = (0..n * 2).map(|i| ((i * 37) % 11) as f32 / 10.0).collect();
    let item = Arc::new(Field::new("item", DataType::Float32, false));
    let features = FixedSizeListArray::new(item.clone(), 2, Arc::new(Float32Array::from(x.clone())), None);
    let y: Vec<f64> = (0..n).map(|i| f64::from(x[2 * i] - 2.0 * x[2 * i + 1])).collect();
    let mut labels = ListBuilder::new(StringBuilder::new());
    for i in 0..n {
        if x[2 * i] > 0.5 {
            labels.values().append_value("big");
        }
        if x[2 * i + 1] > 0.5 {
            labels.values().append_value("second");
        }
        labels.append(true);
    }
    let labels = labels.finish();
    let write = |name: &str, label: ArrayRef| {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, false),
            Field::new("features", features.data_type().clone(), false),
            Field::new("label", label.data_type().clone(), true),
        ]));
        let ids: ArrayRef = Arc::new(StringArray::from((0..n).map(|i| format!("s{i}")).collect::<Vec<_>>()));
        let batch =
            arrow::record_batch::RecordBatch::try_new(schema, vec![ids, Arc::new(features.clone()), label]).unwrap();
        let path = dir.path().join(name);
        let mut writer =
            parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), batch.schema(), None).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        path
    };
    let regression = write("reg.parquet", Arc::new(Float64Array::from(y)));
    let multilabel = write("ml.parquet", Arc::new(labels));
    for (path, task, key) in [(&regression, "regression", "mse"), (&multilabel, "multilabel", "macro_f1")] {
        let run = dir.path().join(format!("run-{task}"));
        let p = path.to_str().unwrap();
        ok(&[
            "train",
            "--samples",
            p,
            "--task",
            task,
            "--epochs",
            "2",
            "--threads",
            "1",
            "--out",
            run.to_str().unwrap(),
        ]);
        let e: serde_json::Value =
            serde_json::from_str(&ok(&["evaluate", "--run", run.to_str().unwrap(), "--samples", p, "--json"])).unwrap();
        assert_eq!(e["task"], task);
        assert!(e[key].is_number(), "{e}");
    }
    let o =
        nsl(&["train", "--samples", regression.to_str().unwrap(), "--out", dir.path().join("mc").to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("column `label`") && err.contains("Float64"), "{err}");
}
