//! The evaluation attacks (issue 23): APGD-CE/DLR/T, FAB-T and Square find exactly the robust
//! accuracy of linear models (whose minimal adversarial perturbation is known in closed form), AutoAttack's
//! cumulative accuracy, seeds, the settings refused before any work, and `nsl evaluate --attack`.

mod common;

use candle_core::{Device, Tensor};
use common::{fails, nsl, ok};
use ndarray::Array2;
use nsl::eval::{run_attacks, AttackError, EvalAttack, EvalAttackConfig, RobustnessReport};
use nsl::loss::Task;
use nsl::regularize::NormType;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::Path;

/// A linear classifier `z = W x + b` on `d` features and `k` classes, with seeded weights.
struct Linear {
    w: Array2<f32>,
    b: Vec<f32>,
    module: candle_nn::Linear,
}

fn linear(d: usize, k: usize, seed: u64) -> Linear {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let w = Array2::from_shape_fn((k, d), |_| rng.random::<f32>() * 2.0 - 1.0);
    let b: Vec<f32> = (0..k).map(|_| rng.random::<f32>() * 0.2 - 0.1).collect();
    let module = candle_nn::Linear::new(
        Tensor::from_slice(w.as_slice().unwrap(), (k, d), &Device::Cpu).unwrap(),
        Some(Tensor::from_slice(&b, k, &Device::Cpu).unwrap()),
    );
    Linear { w, b, module }
}

impl Linear {
    fn logits(&self, x: &[f32]) -> Vec<f32> {
        self.w
            .rows()
            .into_iter()
            .zip(&self.b)
            .map(|(r, b)| r.iter().zip(x).map(|(a, v)| a * v).sum::<f32>() + b)
            .collect()
    }

    /// The exact minimal distance of `x` (class `y`) to another class's region, in `norm`:
    /// `min_{j≠y} (z_y − z_j) / ‖w_y − w_j‖_q` with `q` the dual norm (1 for L∞, 2 for L2).
    fn distance(&self, x: &[f32], y: usize, norm: NormType) -> f64 {
        let z = self.logits(x);
        (0..self.b.len())
            .filter(|&j| j != y)
            .map(|j| {
                let diff: Vec<f64> =
                    self.w.row(y).iter().zip(self.w.row(j)).map(|(a, b)| f64::from(*a) - f64::from(*b)).collect();
                let q = match norm {
                    NormType::L2 => diff.iter().map(|v| v * v).sum::<f64>().sqrt(),
                    _ => diff.iter().map(|v| v.abs()).sum(),
                };
                (f64::from(z[y]) - f64::from(z[j])) / q
            })
            .fold(f64::INFINITY, f64::min)
    }
}

/// Points labeled with the model's own class, whose exact distance is not within 5 % of `eps`
/// (so that float rounding cannot decide them), and the exact robust accuracy at `eps`.
fn fixture(model: &Linear, n: usize, d: usize, eps: f64, norm: NormType, seed: u64) -> (Array2<f32>, Vec<u32>, f64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut rows, mut labels, mut robust) = (Vec::new(), Vec::new(), 0);
    while labels.len() < n {
        let x: Vec<f32> = (0..d).map(|_| rng.random::<f32>() * 2.0 - 1.0).collect();
        let z = model.logits(&x);
        let y = (0..z.len()).fold(0, |best, j| if z[j] > z[best] { j } else { best });
        let dist = model.distance(&x, y, norm);
        if (dist - eps).abs() < 0.05 * eps {
            continue;
        }
        robust += usize::from(dist > eps);
        rows.extend(x);
        labels.push(y as u32);
    }
    (Array2::from_shape_vec((n, d), rows).unwrap(), labels, robust as f64 / n as f64)
}

fn attack(
    model: &Linear,
    x: &Array2<f32>,
    y: &[u32],
    attacks: &[EvalAttack],
    config: &EvalAttackConfig,
) -> RobustnessReport {
    run_attacks(&model.module, x.view(), y, [1, 1, x.ncols()], attacks, config, None).unwrap()
}

/// With two classes the cross-entropy and the margin are monotone in the one logit difference, which
/// is linear: APGD-CE and FAB-T (L∞ and L2) and Square (L∞) reach the closest boundary exactly.
/// Square L2 keeps its candidates on the ε-sphere and searches their direction at random: it never
/// breaks a robust point and breaks most of the others.
#[test]
fn apgd_ce_and_square_find_the_exact_robust_accuracy_of_a_binary_linear_model() {
    let d = 20;
    let model = linear(d, 2, 7);
    for norm in [NormType::Infinity, NormType::L2] {
        let eps = if norm == NormType::L2 { 0.4 } else { 0.1 };
        let (x, y, exact) = fixture(&model, 200, d, eps, norm, 11);
        assert!(exact > 0.2 && exact < 0.8, "{norm:?}: the fixture should mix robust and broken points ({exact})");
        let config = EvalAttackConfig { norm, epsilon: eps, queries: 1000, ..Default::default() };
        for a in [EvalAttack::ApgdCe, EvalAttack::FabT, EvalAttack::Square] {
            let report = attack(&model, &x, &y, &[a], &config);
            assert_eq!(report.clean_accuracy, 1.0);
            if a == EvalAttack::Square && norm == NormType::L2 {
                let r = report.robust_accuracy;
                assert!(r >= exact && r < 1.0 - (1.0 - exact) / 2.0, "square L2: {r} vs exact {exact}");
            } else {
                assert_eq!(report.robust_accuracy, exact, "{a} {norm:?}");
            }
        }
    }
}

/// With ten classes, the targeted DLR loss towards class `j` is monotone in `z_j − z_y`, linear: one
/// APGD-T run per other class (9 targets) reaches the closest boundary, and so does FAB-T (whose
/// projection onto the linearized boundary with class `j` is then exact), so APGD-T, FAB-T and
/// AutoAttack give the exact robust accuracy. No attack can do better than exact (APGD-CE, APGD-DLR and Square
/// may do worse: the cross-entropy is convex in the input, the margin's best class changes).
#[test]
fn apgd_t_and_autoattack_find_the_exact_robust_accuracy_of_a_linear_model() {
    let (d, k) = (20, 10);
    let model = linear(d, k, 7);
    for norm in [NormType::Infinity, NormType::L2] {
        let eps = if norm == NormType::L2 { 0.15 } else { 0.03 };
        let (x, y, exact) = fixture(&model, 200, d, eps, norm, 11);
        assert!(exact > 0.2 && exact < 0.8, "{norm:?}: the fixture should mix robust and broken points ({exact})");
        let config = EvalAttackConfig { norm, epsilon: eps, queries: 500, ..Default::default() };
        assert_eq!(attack(&model, &x, &y, &[EvalAttack::ApgdT], &config).robust_accuracy, exact, "apgd-t {norm:?}");
        let fab = attack(&model, &x, &y, &[EvalAttack::FabT], &config);
        assert_eq!(fab.robust_accuracy, exact, "fab-t {norm:?}");
        // FAB's points are misclassified and within ε, never closer than the exact distance.
        for (i, o) in fab.outcomes.iter().enumerate() {
            if let Some(found) = o.perturbation_norm {
                let row = x.row(i).to_vec();
                assert!(
                    found <= eps * (1.0 + 1e-5) && found >= model.distance(&row, y[i] as usize, norm) * (1.0 - 1e-4)
                );
                assert_ne!(o.adversarial_prediction, Some(y[i]));
            }
        }
        assert_eq!(attack(&model, &x, &y, &EvalAttack::STANDARD, &config).robust_accuracy, exact, "{norm:?}");
        for a in [EvalAttack::ApgdCe, EvalAttack::ApgdDlr, EvalAttack::Square] {
            let report = attack(&model, &x, &y, &[a], &config);
            assert!(report.robust_accuracy >= exact, "{a} {norm:?}: {} < exact {exact}", report.robust_accuracy);
            assert!(report.robust_accuracy <= exact + 0.05, "{a} {norm:?}: {} ≫ exact {exact}", report.robust_accuracy);
        }
    }
}

/// AutoAttack's cumulative accuracy is at most each attack's alone, and each stage's at most the
/// one before; on a nonlinear model (a random MLP) where the attacks differ.
#[test]
fn autoattack_is_at_most_each_attack_alone() {
    let spec: nsl::model::ModelSpec = "mlp:32".parse().unwrap();
    let (model, _) = nsl::model::build_model(&spec, &[16], 10, 3, &Device::Cpu).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let x = Array2::from_shape_fn((150, 16), |_| rng.random::<f32>());
    let clean = nsl::eval::predicted_classes(model.as_ref(), x.view(), 64).unwrap();
    let config =
        EvalAttackConfig { epsilon: 0.05, clip: Some((0.0, 1.0)), queries: 300, iterations: 30, ..Default::default() };
    let run = |attacks: &[EvalAttack]| {
        run_attacks(model.as_ref(), x.view(), &clean, [1, 1, 16], attacks, &config, None).unwrap()
    };
    let all = run(&EvalAttack::STANDARD);
    assert_eq!(all.stages.len(), 4);
    let mut previous = all.clean_accuracy;
    for (stage, &a) in all.stages.iter().zip(&EvalAttack::STANDARD) {
        assert!(stage.robust_accuracy <= previous);
        previous = stage.robust_accuracy;
        let alone = run(&[a]);
        assert!(
            all.robust_accuracy <= alone.robust_accuracy,
            "{a}: {} > {}",
            all.robust_accuracy,
            alone.robust_accuracy
        );
    }
    assert!(all.robust_accuracy < all.clean_accuracy, "the attacks should break some points");
    // Every broken sample is misclassified at its adversarial point, within ε and the clip range.
    for (i, o) in all.outcomes.iter().enumerate() {
        if let Some(p) = o.adversarial_prediction {
            assert_ne!(p, clean[i]);
            assert!(o.perturbation_norm.unwrap() <= 0.05 + 1e-6);
            assert!(all.adversarial.row(i).iter().all(|v| (0.0..=1.0).contains(v)));
        }
    }
}

/// Each sample draws from its own random stream: the same seed gives the same outcomes whatever
/// the batch size.
#[test]
fn seeds_reproduce_whatever_the_batch_size() {
    let model = linear(20, 10, 7);
    let (x, y, _) = fixture(&model, 100, 20, 0.03, NormType::Infinity, 3);
    let base = EvalAttackConfig { epsilon: 0.03, queries: 200, iterations: 20, seed: 9, ..Default::default() };
    let a = attack(&model, &x, &y, &EvalAttack::STANDARD, &EvalAttackConfig { batch_size: 100, ..base.clone() });
    let b = attack(&model, &x, &y, &EvalAttack::STANDARD, &EvalAttackConfig { batch_size: 7, ..base });
    assert_eq!(a.outcomes, b.outcomes);
    assert_eq!(a.adversarial, b.adversarial);
    // L2 (Square's pseudo-Gaussian windows, FAB-T's L2 projections).
    let (x2, y2, _) = fixture(&model, 100, 20, 0.15, NormType::L2, 3);
    let base = EvalAttackConfig {
        norm: NormType::L2,
        epsilon: 0.15,
        queries: 200,
        iterations: 20,
        seed: 9,
        ..Default::default()
    };
    // Square reads only logits: bit for bit. The gradient attacks step along g/‖g‖₂, which carries
    // the batched kernels' rounding (it differs in the last bits with the batch size, unlike L∞'s
    // sign): the same points are broken, at the same distance up to rounding.
    for at in [EvalAttack::ApgdCe, EvalAttack::ApgdT, EvalAttack::FabT, EvalAttack::Square] {
        let a = attack(&model, &x2, &y2, &[at], &EvalAttackConfig { batch_size: 100, ..base.clone() });
        let b = attack(&model, &x2, &y2, &[at], &EvalAttackConfig { batch_size: 7, ..base.clone() });
        if at == EvalAttack::Square {
            assert_eq!(a.outcomes, b.outcomes);
            assert_eq!(a.adversarial, b.adversarial);
        }
        for (p, q) in a.outcomes.iter().zip(&b.outcomes) {
            assert_eq!(p.broken_by, q.broken_by, "{at}");
            assert_eq!(p.adversarial_prediction, q.adversarial_prediction, "{at}");
            if let (Some(u), Some(v)) = (p.perturbation_norm, q.perturbation_norm) {
                assert!((u - v).abs() < 1e-3, "{at}: {u} vs {v}");
            }
        }
    }
    // On a nonlinear model where the random choices matter: the same seed gives the same points, a
    // different seed changes Square's.
    let spec: nsl::model::ModelSpec = "mlp:32".parse().unwrap();
    let (mlp, _) = nsl::model::build_model(&spec, &[16], 10, 3, &Device::Cpu).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let x = Array2::from_shape_fn((60, 16), |_| rng.random::<f32>());
    let clean = nsl::eval::predicted_classes(mlp.as_ref(), x.view(), 64).unwrap();
    let l2 = EvalAttackConfig {
        norm: NormType::L2,
        epsilon: 0.3,
        clip: Some((0.0, 1.0)),
        queries: 200,
        iterations: 20,
        seed: 9,
        ..Default::default()
    };
    let run = |attacks: &[EvalAttack], config: EvalAttackConfig| {
        run_attacks(mlp.as_ref(), x.view(), &clean, [1, 1, 16], attacks, &config, None).unwrap()
    };
    let a = run(&EvalAttack::STANDARD, l2.clone());
    let b = run(&EvalAttack::STANDARD, l2.clone());
    assert_eq!(a.outcomes, b.outcomes);
    assert_eq!(a.adversarial, b.adversarial);
    let square = run(&[EvalAttack::Square], l2.clone());
    let other = run(&[EvalAttack::Square], EvalAttackConfig { seed: 10, ..l2 });
    assert!(square.robust_accuracy < square.clean_accuracy, "Square L2 should break some points");
    assert_ne!(square.adversarial, other.adversarial);
}

/// Square L2 and FAB-T only count points that are misclassified and within ε (L2) and the box.
#[test]
fn square_l2_and_fab_t_points_are_within_epsilon_and_misclassified() {
    let spec: nsl::model::ModelSpec = "cnn:4,4".parse().unwrap();
    let (cnn, _) = nsl::model::build_model(&spec, &[1, 8, 8], 10, 1, &Device::Cpu).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let images = Array2::from_shape_fn((40, 64), |_| rng.random::<f32>());
    let labels = nsl::eval::predicted_classes(cnn.as_ref(), images.view(), 40).unwrap();
    for attack in [EvalAttack::Square, EvalAttack::FabT] {
        let config = EvalAttackConfig {
            norm: NormType::L2,
            epsilon: 0.5,
            clip: Some((0.0, 1.0)),
            iterations: 20,
            queries: 200,
            ..Default::default()
        };
        let report = run_attacks(cnn.as_ref(), images.view(), &labels, [1, 8, 8], &[attack], &config, None).unwrap();
        assert!(report.robust_accuracy < 1.0, "{attack}: an untrained CNN is not robust at L2 ε 0.5");
        let adv = nsl::eval::predicted_classes(cnn.as_ref(), report.adversarial.view(), 40).unwrap();
        for (i, o) in report.outcomes.iter().enumerate() {
            let delta: f64 = report
                .adversarial
                .row(i)
                .iter()
                .zip(images.row(i))
                .map(|(a, b)| f64::from(a - b).powi(2))
                .sum::<f64>()
                .sqrt();
            assert!(report.adversarial.row(i).iter().all(|v| (0.0..=1.0).contains(v)));
            match o.broken_by {
                Some(_) => {
                    assert_ne!(adv[i], labels[i], "{attack}: sample {i} counted broken but classified correctly");
                    assert!(delta <= 0.5 * (1.0 + 1e-5), "{attack}: {delta}");
                    assert!((o.perturbation_norm.unwrap() - delta).abs() < 1e-5);
                }
                None => assert_eq!(delta, 0.0),
            }
        }
    }
}

#[test]
fn bad_settings_are_refused_before_any_work() {
    let model = linear(4, 3, 1);
    let x = Array2::<f32>::zeros((2, 4));
    let run = |attacks: &[EvalAttack], config: EvalAttackConfig| {
        run_attacks(&model.module, x.view(), &[0, 1], [1, 1, 4], attacks, &config, None).unwrap_err()
    };
    let ce = [EvalAttack::ApgdCe];
    for eps in [0.0, -0.1, f64::NAN, f64::INFINITY] {
        assert!(matches!(run(&ce, EvalAttackConfig { epsilon: eps, ..Default::default() }), AttackError::Epsilon(_)));
    }
    let l1 = EvalAttackConfig { norm: NormType::L1, ..Default::default() };
    assert!(matches!(run(&ce, l1), AttackError::Norm { .. }));
    for a in [EvalAttack::Square, EvalAttack::FabT] {
        let l1 = EvalAttackConfig { norm: NormType::L1, ..Default::default() };
        assert!(matches!(run(&[a], l1), AttackError::Norm { attack, .. } if attack == a));
        for eps in [0.0, -1.0, f64::NAN] {
            let bad = EvalAttackConfig { norm: NormType::L2, epsilon: eps, ..Default::default() };
            assert!(matches!(run(&[a], bad), AttackError::Epsilon(_)));
        }
    }
    for (option, config) in [
        ("fab_eta", EvalAttackConfig { fab_eta: 0.9, ..Default::default() }),
        ("fab_beta", EvalAttackConfig { fab_beta: 0.0, ..Default::default() }),
        ("fab_alpha_max", EvalAttackConfig { fab_alpha_max: 1.5, ..Default::default() }),
    ] {
        let err = run(&[EvalAttack::FabT], config);
        assert!(matches!(err, AttackError::InvalidConfig { option: o, .. } if o == option), "{err}");
    }
    let err = run(&[EvalAttack::ApgdT], EvalAttackConfig::default());
    assert!(matches!(err, AttackError::TooFewClasses { classes: 3, needed: 4, .. }), "{err}");
    let zero = EvalAttackConfig { iterations: 0, ..Default::default() };
    assert!(matches!(run(&ce, zero), AttackError::InvalidConfig { option: "iterations", .. }));
    let two = linear(4, 2, 1);
    let err = run_attacks(&two.module, x.view(), &[0, 1], [1, 1, 4], &[EvalAttack::ApgdDlr], &Default::default(), None);
    assert!(matches!(err, Err(AttackError::TooFewClasses { classes: 2, needed: 3, .. })));
    // A regression model has no classes to attack.
    let data = nsl::data::Dataset::new(vec!["a".into()], Array2::zeros((1, 4)), vec![4], Some(vec![0]), None).unwrap();
    let err = nsl::eval::evaluate_attacks(
        &model.module,
        &data,
        Task::Regression(Default::default()),
        &ce,
        &Default::default(),
        None,
    );
    assert!(matches!(err, Err(AttackError::Task { .. })));
}

// ---- The command line ----

fn p(dir: &Path, name: &str) -> String {
    dir.join(name).to_str().unwrap().to_string()
}

/// A labeled CSV of `classes` classes, separable on the first features, values in [0, 1].
fn toy_csv(dir: &Path, classes: usize) -> String {
    let mut csv = String::from("id,a,b,c,label\n");
    for i in 0..60 {
        let label = i % classes;
        let a = (label as f32 + 0.5) / classes as f32 + (i as f32 * 0.37).sin() * 0.05;
        csv.push_str(&format!("n{i},{a},{},{},{label}\n", 0.5 + 0.4 * (i as f32).cos(), 1.0 - a));
    }
    let path = p(dir, &format!("toy{classes}.csv"));
    std::fs::write(&path, csv).unwrap();
    path
}

fn train(dir: &Path, csv: &str, name: &str, extra: &[&str]) -> String {
    let run = p(dir, name);
    let mut args = vec!["train", "--samples", csv, "--model", "mlp:8", "--batch-size", "8", "--out", &run];
    args.extend_from_slice(extra);
    ok(&args);
    run
}

#[test]
fn evaluate_autoattack_json_and_per_sample_table() {
    let dir = tempfile::tempdir().unwrap();
    let csv = toy_csv(dir.path(), 4);
    let run = train(dir.path(), &csv, "run4", &["--epochs", "30"]);
    let table = p(dir.path(), "per_sample.parquet");
    let common =
        ["evaluate", "--run", &run, "--samples", &csv, "--clip", "0:1", "--iterations", "10", "--queries", "50"];
    let mut args = common.to_vec();
    args.extend(["--attack", "autoattack", "--epsilon", "0.05,0.5", "--per-sample", &table, "--json"]);
    let out: serde_json::Value = serde_json::from_str(&ok(&args)).unwrap();
    let results = out["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    let stages: Vec<&str> =
        results[0]["stages"].as_array().unwrap().iter().map(|s| s["attack"].as_str().unwrap()).collect();
    assert_eq!(stages, ["apgd-ce", "apgd-t", "fab-t", "square"]);
    let clean = out["accuracy"].as_f64().unwrap();
    assert_eq!(results[0]["clean_accuracy"].as_f64().unwrap(), clean);
    for r in results {
        let mut previous = clean;
        for s in r["stages"].as_array().unwrap() {
            let acc = s["robust_accuracy"].as_f64().unwrap();
            assert!(acc <= previous);
            previous = acc;
        }
        assert_eq!(r["robust_accuracy"].as_f64().unwrap(), previous);
    }
    assert_eq!(out["robust_accuracy"].as_array().unwrap().len(), 2);
    assert!(out["masking_check"]["passed"].is_boolean());
    // At L2 the same four attacks, each broken point within ε in L2.
    let mut l2 = common.to_vec();
    l2.extend(["--attack", "autoattack", "--norm", "l2", "--epsilon", "0.5", "--json"]);
    let output = nsl(&l2);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let out2: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let stages: Vec<&str> =
        out2["results"][0]["stages"].as_array().unwrap().iter().map(|s| s["attack"].as_str().unwrap()).collect();
    assert_eq!(stages, ["apgd-ce", "apgd-t", "fab-t", "square"]);
    let mut fab = common.to_vec();
    fab.extend(["--attack", "fab-t", "--norm", "l2", "--epsilon", "0.5", "--json"]);
    let out3: serde_json::Value = serde_json::from_str(&ok(&fab)).unwrap();
    assert_eq!(out3["results"][0]["stages"][0]["attack"], "fab-t");
    // The table: one row per sample and ε.
    let file = std::fs::File::open(&table).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap().build().unwrap();
    let batches: Vec<_> = reader.map(|b| b.unwrap()).collect();
    let names: Vec<String> = batches[0].schema().fields().iter().map(|f| f.name().clone()).collect();
    assert_eq!(
        names,
        [
            "epsilon",
            "id",
            "label",
            "clean_prediction",
            "robust",
            "broken_by",
            "adversarial_prediction",
            "perturbation_norm"
        ]
    );
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 120);
    // The text output names each stage.
    let mut args = common.to_vec();
    args.extend(["--attack", "apgd-ce", "--epsilon", "0.05"]);
    let text = ok(&args);
    assert!(text.contains("apgd-ce") && text.contains("masking check"), "{text}");
}

#[test]
fn evaluate_refuses_bad_attack_settings() {
    let dir = tempfile::tempdir().unwrap();
    let csv4 = toy_csv(dir.path(), 4);
    let csv2 = toy_csv(dir.path(), 2);
    let run4 = train(dir.path(), &csv4, "run4", &["--epochs", "2"]);
    let run2 = train(dir.path(), &csv2, "run2", &["--epochs", "2"]);
    let eval = |run: &str, csv: &str, extra: &[&str]| {
        let mut args = vec!["evaluate", "--run", run, "--samples", csv];
        args.extend_from_slice(extra);
        fails(&args)
    };
    let err = eval(&run4, &csv4, &["--attack", "apgd-ce", "--epsilon", "0"]);
    assert!(err.contains("epsilon 0 must be a finite number > 0"), "{err}");
    let err = eval(&run4, &csv4, &["--attack", "apgd-ce", "--norm", "l1", "--epsilon", "0.1"]);
    assert!(err.contains("does not support"), "{err}");
    let err = eval(&run4, &csv4, &["--attack", "square", "--norm", "l1", "--epsilon", "0.1"]);
    assert!(err.contains("square does not support"), "{err}");
    let err = eval(&run4, &csv4, &["--attack", "fab-t", "--norm", "l1", "--epsilon", "0.1"]);
    assert!(err.contains("fab-t does not support"), "{err}");
    let err = eval(&run4, &csv4, &["--attack", "fab-t", "--epsilon=-0.1"]);
    assert!(err.contains("must be a finite number > 0"), "{err}");
    let err = eval(&run2, &csv2, &["--attack", "apgd-dlr", "--epsilon", "0.1"]);
    assert!(err.contains("at least 3 classes"), "{err}");
    let err = eval(&run2, &csv2, &["--attack", "autoattack", "--epsilon", "0.1"]);
    assert!(err.contains("at least 4 classes"), "{err}");
    // Naming an input is a usage error (exit status 2), as for every command's outputs.
    let err = common::fails_with(
        2,
        &[
            "evaluate",
            "--run",
            &run4,
            "--samples",
            &csv4,
            "--attack",
            "autoattack",
            "--epsilon",
            "0.1",
            "--per-sample",
            &csv4,
        ],
    );
    assert!(err.contains("--per-sample") && err.contains("same file"), "{err}");
    // Issue 22: PGD without steps, or with a step ≤ 0, would report robust accuracy ≥ clean.
    let err = eval(&run4, &csv4, &["--attack", "pgd", "--pgd-steps", "0"]);
    assert!(err.contains("--pgd-steps 0"), "{err}");
    let err = eval(&run4, &csv4, &["--attack", "pgd", "--pgd-step-size", "-1"]);
    assert!(err.contains("--pgd-step-size -1"), "{err}");
    // A regression run has no classes to attack.
    let mut csv = String::from("id,a,b,label\n");
    for i in 0..20 {
        csv.push_str(&format!("r{i},{},{},{}\n", i as f32 / 20.0, 0.5, i as f32 / 10.0));
    }
    let reg_csv = p(dir.path(), "reg.csv");
    std::fs::write(&reg_csv, csv).unwrap();
    let reg = train(dir.path(), &reg_csv, "reg", &["--task", "regression", "--epochs", "2"]);
    let err = eval(&reg, &reg_csv, &["--attack", "autoattack", "--epsilon", "0.1"]);
    assert!(err.contains("regression"), "{err}");
    assert!(!dir.path().join("per_sample.parquet").exists());
}

/// Every model: a `bow` model is attacked in its pooled embeddings (and dense group), a CNN in its
/// images (Square's squares); broken samples stay within ε and the accuracies are cumulative.
#[test]
fn autoattack_runs_on_bow_encodings_and_cnn_images() {
    use arrow::array::{ArrayRef, Float32Array, Int64Array, ListArray, StringArray};
    use arrow::datatypes::Int64Type;
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.parquet");
    let n = 40;
    let words: Vec<Option<Vec<Option<i64>>>> =
        (0..n).map(|i| Some((0..1 + i % 3).map(|k| Some(((i * 7 + k * 5) % 6) as i64)).collect())).collect();
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("id", Arc::new(StringArray::from_iter_values((0..n).map(|i| format!("n{i}"))))),
        ("words", Arc::new(ListArray::from_iter_primitive::<Int64Type, _, _>(words))),
        ("x", Arc::new(Float32Array::from_iter_values((0..n).map(|i| i as f32 / 40.0)))),
        ("label", Arc::new(Int64Array::from_iter_values((0..n).map(|i| (i % 4) as i64)))),
    ];
    let batch = arrow::record_batch::RecordBatch::try_from_iter(columns).unwrap();
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    let columns = nsl::data::SampleColumns { features: vec!["words".into(), "x".into()], ..Default::default() };
    let data = nsl::data::read_parquet_samples(&path, &columns).unwrap();
    let spec =
        "bow:4".parse::<nsl::model::ModelSpec>().unwrap().for_inputs(&nsl::train::model_inputs(data.layout())).unwrap();
    let (model, _) = nsl::model::build_model(&spec, data.item_shape(), 4, 0, &Device::Cpu).unwrap();
    let config = EvalAttackConfig { epsilon: 0.05, iterations: 10, queries: 50, ..Default::default() };
    let report =
        nsl::eval::evaluate_attacks(model.as_ref(), &data, Task::Multiclass, &EvalAttack::STANDARD, &config, None)
            .unwrap();
    assert_eq!(report.adversarial.ncols(), 5, "4 pooled embedding values and the dense x, not the token ids");
    assert!(report.robust_accuracy <= report.clean_accuracy);
    assert!(report.outcomes.iter().filter_map(|o| o.perturbation_norm).all(|v| v <= 0.05 + 1e-6));

    // A CNN on 1×8×8 images.
    let spec: nsl::model::ModelSpec = "cnn:4,4".parse().unwrap();
    let (cnn, _) = nsl::model::build_model(&spec, &[1, 8, 8], 10, 1, &Device::Cpu).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let images = Array2::from_shape_fn((30, 64), |_| rng.random::<f32>());
    let labels = nsl::eval::predicted_classes(cnn.as_ref(), images.view(), 30).unwrap();
    let ids: Vec<String> = (0..30).map(|i| format!("i{i}")).collect();
    let data = nsl::data::Dataset::new(ids, images, vec![1, 8, 8], Some(labels), None).unwrap();
    let config =
        EvalAttackConfig { epsilon: 0.1, clip: Some((0.0, 1.0)), iterations: 10, queries: 50, ..Default::default() };
    let report =
        nsl::eval::evaluate_attacks(cnn.as_ref(), &data, Task::Multiclass, &EvalAttack::STANDARD, &config, None)
            .unwrap();
    assert_eq!(report.clean_accuracy, 1.0);
    assert!(report.robust_accuracy < 1.0, "an untrained CNN is not robust at ε 0.1");
    assert!(report.adversarial.iter().all(|v| (0.0..=1.0).contains(v)));
}

/// Issue 24 (Python's `evaluate` and Ctrl-C): a progress callback that returns `Break` stops the
/// attack at that report, with `AttackError::Stopped` naming the attack and ε; one that always
/// continues gets the same report as no callback, every stage counted to its total.
#[test]
fn a_progress_callback_can_stop_the_attacks() {
    use std::ops::ControlFlow;
    use std::sync::Mutex;
    let (d, eps) = (8, 0.2);
    let model = linear(d, 3, 5);
    let (x, y, _) = fixture(&model, 40, d, eps, NormType::Infinity, 6);
    let config = EvalAttackConfig { epsilon: eps, iterations: 20, batch_size: 10, ..Default::default() };
    let attacks = [EvalAttack::ApgdCe, EvalAttack::Square];
    let seen = Mutex::new(Vec::new());
    let go_on = |p: &nsl::eval::AttackProgress| {
        seen.lock().unwrap().push((p.attack.to_string(), p.done, p.total));
        ControlFlow::Continue(())
    };
    let with = run_attacks(&model.module, x.view(), &y, [1, 1, d], &attacks, &config, Some(&go_on)).unwrap();
    assert_eq!(with.outcomes, attack(&model, &x, &y, &attacks, &config).outcomes);
    let seen = seen.into_inner().unwrap();
    for stage in ["fgsm", "apgd-ce", "square"] {
        let last = seen.iter().rfind(|s| s.0 == stage).unwrap_or_else(|| panic!("no {stage} report"));
        assert_eq!(last.1, last.2, "{stage} reported {last:?} last");
    }
    let calls = Mutex::new(0);
    let stop_at_third = |_: &nsl::eval::AttackProgress| {
        let mut n = calls.lock().unwrap();
        *n += 1;
        if *n == 3 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    };
    let err = run_attacks(&model.module, x.view(), &y, [1, 1, d], &attacks, &config, Some(&stop_at_third)).unwrap_err();
    assert!(matches!(&err, AttackError::Stopped { epsilon, .. } if *epsilon == eps), "{err}");
    assert_eq!(*calls.lock().unwrap(), 3, "no report after the stop");
}
