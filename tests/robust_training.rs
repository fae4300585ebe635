//! Training for robustness (issue 23, point 3): the `madry`, `trades` and `mart` objectives of
//! `--adv-reg`, the ε warm-up, recorded neighbors with each objective, and resuming a warm-up.

mod common;

use candle_core::{Device, Tensor};
use common::{fails, ok};
use nsl::data::Dataset;
use nsl::loss::{output_input_gradient, trades_kl, Task};
use nsl::model::{build_model, ModelSpec};
use nsl::regularize::{gaussian_start, pgd_from, AdvNeighborConfig, AdvObjective, AdvRegConfig, NormType};
use nsl::train::{StateError, TrainConfig, TrainState, Trainer};
use rand::{Rng, SeedableRng};
use std::path::Path;

/// `n` samples of three noisy classes in `[0, 1]^6`: class `c` is bright in features `2c` and `2c + 1`.
fn classes(n: usize, seed: u64) -> Dataset {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let labels: Vec<u32> = (0..n).map(|i| (i % 3) as u32).collect();
    let features = ndarray::Array2::from_shape_fn((n, 6), |(i, j)| {
        let bright = j / 2 == labels[i] as usize;
        (if bright { 0.7 } else { 0.2 } + rng.random_range(-0.2..0.2f32)).clamp(0.0, 1.0)
    });
    Dataset::new((0..n).map(|i| format!("s{i}")).collect(), features, vec![6], Some(labels), None).unwrap()
}

/// The TRADES inner maximization raises `KL(p ‖ q)` well above its value at the small random start
/// (where it is almost 0), and stays in the ε-ball and the clip range.
#[test]
fn trades_inner_maximization_increases_the_kl() {
    let data = classes(24, 1);
    let spec: ModelSpec = "mlp:16".parse::<ModelSpec>().unwrap().with_dropout(0.0);
    let (model, _vars) = build_model(&spec, &[6], 3, 3, &Device::Cpu).unwrap();
    let x = data.features();
    let forward = |a: ndarray::ArrayView2<f32>| {
        let t = Tensor::from_slice(a.as_standard_layout().as_slice().unwrap(), a.dim(), &Device::Cpu).unwrap();
        model.forward_encoded(&t, false, None).unwrap().0
    };
    let clean = forward(x).detach();
    let kl_at = |a: ndarray::ArrayView2<f32>| {
        trades_kl(Task::Multiclass, &clean, &forward(a), None).unwrap().to_scalar::<f32>().unwrap()
    };
    let config = AdvNeighborConfig {
        step_size: 0.05,
        grad_norm: NormType::Infinity,
        pgd_iterations: 10,
        pgd_epsilon: Some(0.2),
        clip_min: Some(0.0),
        clip_max: Some(1.0),
        ..Default::default()
    };
    let start = gaussian_start(x, 0.001, &config, 7);
    assert!(start.iter().zip(x.iter()).any(|(s, v)| s != v), "the start moves");
    let at_start = kl_at(start.view());
    let x_adv = pgd_from(x, start, None, &config, |xt| {
        output_input_gradient(model.as_ref(), xt, false, |out| trades_kl(Task::Multiclass, &clean, out, None))
    })
    .unwrap();
    let after = kl_at(x_adv.view());
    assert!(after > 100.0 * at_start.max(1e-9) && after > 1e-3, "KL at the start {at_start}, after PGD {after}");
    for (a, v) in x_adv.iter().zip(x.iter()) {
        assert!((a - v).abs() <= 0.2 + 1e-6 && (0.0..=1.0).contains(a), "{a} from {v}");
    }
}

#[test]
fn objectives_parse_with_their_defaults_and_refuse_what_makes_no_sense() {
    let madry = AdvRegConfig::from_kv("objective=madry,epsilon=0.3,step-size=0.01,pgd-iterations=40").unwrap();
    assert_eq!((madry.objective, madry.multiplier, madry.neighbor.random_init), (AdvObjective::Madry, 1.0, true));
    let trades = AdvRegConfig::from_kv("objective=trades,epsilon=0.3,epsilon-warmup=2").unwrap();
    assert_eq!((trades.multiplier, trades.neighbor.random_init, trades.epsilon_warmup), (6.0, false, 2));
    let mart = AdvRegConfig::from_kv("objective=mart,multiplier=5,epsilon=0.3,random-init=true").unwrap();
    assert_eq!((mart.multiplier, mart.neighbor.random_init), (5.0, true));
    assert_eq!(AdvRegConfig::from_kv("").unwrap().objective, AdvObjective::Nsl);
    // The run's config keeps the objective and the warm-up; NSL's form writes neither.
    let json = serde_json::to_value(&trades).unwrap();
    assert_eq!((json["objective"].as_str(), json["epsilon_warmup"].as_u64()), (Some("trades"), Some(2)));
    let plain = serde_json::to_value(AdvRegConfig::default()).unwrap();
    assert!(plain.get("objective").is_none() && plain.get("epsilon_warmup").is_none());
    let back: AdvRegConfig = serde_json::from_value(json).unwrap();
    assert_eq!(back, trades);
    // Errors.
    let err = AdvRegConfig::from_kv("objective=fgsm").unwrap_err().to_string();
    assert_eq!(err, "invalid value `fgsm` for `objective` in --adv-reg: expected nsl, madry, trades or mart");
    let err = AdvRegConfig::from_kv("objective=trades,loss=kl").unwrap_err().to_string();
    assert!(err.contains("no `loss` with objective=trades"), "{err}");
    let err = AdvRegConfig::from_kv("objective=madry").unwrap().validate(6).unwrap_err().to_string();
    assert!(err.contains("objective=madry") && err.contains("epsilon"), "{err}");
    let regression = "regression".parse::<Task>().unwrap();
    let err = regression.check_adv_objective(trades.objective).unwrap_err().to_string();
    assert!(err.contains("objective=trades") && err.contains("regression"), "{err}");
    assert!(Task::Binary.check_adv_objective(trades.objective).is_ok());
    let err = Task::Binary.check_adv_objective(mart.objective).unwrap_err().to_string();
    assert!(err.contains("a multiclass task"), "{err}");
    assert!(regression.check_adv_objective(madry.objective).is_ok());
    // The warm-up's factor: (s + 1)/(W·b) for the first W·b steps, then 1.
    assert_eq!(trades.epsilon_factor(0, 5), 0.1);
    assert_eq!(trades.epsilon_factor(4, 5), 0.5);
    assert_eq!(trades.epsilon_factor(9, 5), 1.0);
    assert_eq!(madry.epsilon_factor(0, 5), 1.0);
}

/// Every objective trains on both backends (the MLP's tape and candle's autograd), with sample
/// weights; the recorded neighbors stay in the ε-ball (smaller during the warm-up).
#[test]
fn each_objective_trains_on_both_backends_with_weights_and_records_its_neighbors() {
    let mut data = classes(48, 2);
    let weights: Vec<f32> = (0..48).map(|i| if i % 4 == 0 { 0.0 } else { 1.5 }).collect();
    data = data.with_weights(weights).unwrap();
    for objective in ["madry", "trades", "mart"] {
        for spec in ["mlp:16", "mlp:16,tanh"] {
            let adv = AdvRegConfig::from_kv(&format!(
                "objective={objective},epsilon=0.1,step-size=0.04,pgd-iterations=3,norm=inf,clip=0:1,epsilon-warmup=1"
            ))
            .unwrap();
            let spec: ModelSpec = spec.parse::<ModelSpec>().unwrap().with_dropout(0.0);
            let (model, vars) = build_model(&spec, &[6], 3, 5, &Device::Cpu).unwrap();
            let config = TrainConfig { epochs: 3, batch_size: 12, seed: 1, ..Default::default() };
            let mut trainer = Trainer::new(model.as_ref(), &vars, config).with_adversarial(&adv).record_adversarial(1);
            let history = trainer.fit(&data, None).unwrap();
            let record = trainer.take_record();
            assert_eq!(record.examples.len(), 48 * 3, "{objective} {spec}");
            for e in &record.examples {
                assert!(e.perturbation_norm <= 0.1 + 1e-5, "{objective}: {}", e.perturbation_norm);
                assert!(e.features.iter().all(|v| (0.0..=1.0).contains(v)));
            }
            // The first epoch ramps ε up: its first batch (12 records) moves at most ε/4.
            let first = record.examples.iter().take(12).map(|e| e.perturbation_norm).fold(0.0, f32::max);
            let last = record.examples.iter().filter(|e| e.epoch == 3).map(|e| e.perturbation_norm).fold(0.0, f32::max);
            assert!(first <= 0.025 + 1e-5 && last > 0.05, "{objective}: {first} then {last}");
            assert!(history.epochs.iter().all(|e| e.loss.is_finite() && e.adversarial_loss > 0.0));
        }
    }
}

/// The CNN (autograd, convolutions) with TRADES and graph regularization at once.
#[test]
fn trades_trains_a_cnn_with_graph_regularization() {
    use nsl::graph::{EdgeKind, NeighborGraph};
    use nsl::neighbors::NeighborTable;
    use nsl::regularize::GraphRegConfig;
    let n = 24;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
    let labels: Vec<u32> = (0..n).map(|i| (i % 2) as u32).collect();
    let features = ndarray::Array2::from_shape_fn((n, 400), |(i, j)| {
        let bright = (j % 20 < 10) == (labels[i] == 1);
        (if bright { 0.8 } else { 0.1 }) + rng.random_range(0.0..0.1f32)
    });
    let data =
        Dataset::new((0..n).map(|i| format!("s{i}")).collect(), features, vec![1, 20, 20], Some(labels), None).unwrap();
    let mut g = NeighborGraph::new();
    for i in 0..n {
        g.add_edge(&format!("s{i}"), &format!("s{}", (i + 2) % n), 1.0, EdgeKind::Explicit).unwrap();
    }
    let graph = GraphRegConfig { multiplier: 0.1, neighbors: 1.into(), ..Default::default() };
    let (table, _) = NeighborTable::new(&data, None, &g, 1).unwrap();
    let adv = AdvRegConfig::from_kv(
        "objective=trades,multiplier=2,epsilon=0.1,step-size=0.05,pgd-iterations=2,norm=inf,clip=0:1",
    )
    .unwrap();
    let spec: ModelSpec = "cnn:4,4,4".parse().unwrap();
    let (model, vars) = build_model(&spec, data.item_shape(), 2, 0, &Device::Cpu).unwrap();
    let config = TrainConfig { epochs: 4, batch_size: 8, ..Default::default() };
    let mut trainer = Trainer::new(model.as_ref(), &vars, config).with_graph(&table, &graph).with_adversarial(&adv);
    let history = trainer.fit(&data, None).unwrap();
    let (first, last) = (&history.epochs[0], &history.epochs[3]);
    assert!(first.graph_loss > 0.0 && first.adversarial_loss > 0.0);
    assert!(last.loss < first.loss, "{} → {}", first.loss, last.loss);
}

/// A run with an ε warm-up, interrupted and resumed, ends with the uninterrupted run's weights.
#[test]
fn a_resumed_warmup_ends_with_the_uninterrupted_weights() {
    let data = classes(30, 3);
    let adv =
        AdvRegConfig::from_kv("objective=trades,epsilon=0.1,step-size=0.03,pgd-iterations=2,norm=inf,epsilon-warmup=3")
            .unwrap();
    let run = |stop_after: Option<usize>, resume: Option<TrainState>| {
        let spec: ModelSpec = "mlp:8".parse().unwrap();
        let (model, vars) = build_model(&spec, &[6], 3, 5, &Device::Cpu).unwrap();
        let config = TrainConfig { epochs: 5, batch_size: 8, seed: 2, ..Default::default() };
        let mut last = None;
        let mut trainer = Trainer::new(model.as_ref(), &vars, config).with_adversarial(&adv).on_epoch_state(1, |s| {
            last = Some(s.clone());
            match stop_after {
                Some(e) if s.epoch() == e => Err(StateError::Invalid { path: "stop".into(), message: "".into() }),
                _ => Ok(()),
            }
        });
        if let Some(state) = resume {
            trainer = trainer.resume_from(state);
        }
        let fitted = trainer.fit(&data, None);
        drop(trainer);
        let data = vars.data().lock().unwrap();
        let mut names: Vec<&String> = data.keys().collect();
        names.sort();
        let w: Vec<f32> =
            names.iter().flat_map(|n| data[*n].as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap()).collect();
        (fitted.map(|_| w), last)
    };
    let (whole, _) = run(None, None);
    let whole = whole.unwrap();
    // Interrupted inside the warm-up (epoch 2 of 3), resumed.
    let (stopped, state) = run(Some(2), None);
    assert!(stopped.is_err());
    let (resumed, _) = run(None, state);
    assert_eq!(resumed.unwrap(), whole);
}

// ---- the command line ----

/// Three classes in a CSV (features in [0, 1]).
fn csv(dir: &Path, name: &str, n: usize, seed: u64) -> String {
    let data = classes(n, seed);
    let mut text = String::from("id,f0,f1,f2,f3,f4,f5,label\n");
    for (i, row) in data.features().rows().into_iter().enumerate() {
        let values: Vec<String> = row.iter().map(|v| v.to_string()).collect();
        text.push_str(&format!("s{i},{},{}\n", values.join(","), i % 3));
    }
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

/// `nsl train --adv-reg objective=…` trains with each objective and its loss falls; the run's
/// config and `--record-adversarial` work with each.
#[test]
fn each_objective_trains_from_the_cli_and_reduces_its_loss() {
    let dir = tempfile::tempdir().unwrap();
    let samples = csv(dir.path(), "train.csv", 90, 5);
    for objective in ["nsl", "madry", "trades", "mart"] {
        let out = dir.path().join(objective);
        let record = dir.path().join(format!("{objective}_adv.parquet"));
        let spec = format!(
            "objective={objective},epsilon=0.1,step-size=0.03,pgd-iterations=3,norm=inf,clip=0:1,epsilon-warmup=2"
        );
        ok(&[
            "train",
            "--samples",
            &samples,
            "--model",
            "mlp:32",
            "--dropout",
            "0",
            "--epochs",
            "12",
            "--batch-size",
            "16",
            "--learning-rate",
            "0.01",
            "--adv-reg",
            &spec,
            "--record-adversarial",
            record.to_str().unwrap(),
            "--record-every",
            "6",
            "--out",
            out.to_str().unwrap(),
        ]);
        let history: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("history.json")).unwrap()).unwrap();
        let epochs = history["epochs"].as_array().unwrap();
        let loss = |i: usize| epochs[i]["loss"].as_f64().unwrap();
        assert!(loss(11) < 0.8 * loss(2), "{objective}: loss {} at epoch 3, {} at epoch 12", loss(2), loss(11));
        let model: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("model.json")).unwrap()).unwrap();
        let text = model.to_string();
        if objective != "nsl" {
            assert!(text.contains(&format!("\"objective\":\"{objective}\"")), "{objective}: {text}");
        }
        assert!(text.contains("\"epsilon_warmup\":2"), "{objective}: {text}");
        assert!(record.exists() && dir.path().join(format!("{objective}_adv.nodes.parquet")).exists());
    }
    // Refused before training: TRADES on a regression task.
    let err =
        fails(&["train", "--samples", &samples, "--task", "regression", "--adv-reg", "objective=trades,epsilon=0.1"]);
    assert!(err.contains("objective=trades"), "{err}");
}

/// `examples/recipes/robust_mnist.toml` parses and trains (one epoch on 40 synthetic digits: the
/// flags win over the file), and the run records TRADES with its warm-up.
#[test]
fn the_robust_mnist_recipe_trains() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let n = 40u32;
    let pixels: Vec<u8> =
        (0..n * 784).map(|i| if (i % 784) / 28 < 14 + (i / 784 % 2) * 10 { 200 } else { 10 }).collect();
    let labels: Vec<u8> = (0..n).map(|i| (i % 2) as u8).collect();
    std::fs::write(p("x.gz"), common::gzip(&common::idx_bytes(0x08, &[n, 28, 28], &pixels))).unwrap();
    std::fs::write(p("y.gz"), common::gzip(&common::idx_bytes(0x08, &[n], &labels))).unwrap();
    ok(&["convert", "--idx-images", &p("x.gz"), "--idx-labels", &p("y.gz"), "--samples", &p("s.parquet")]);
    let recipe = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/recipes/robust_mnist.toml");
    let out = ok(&[
        "train",
        "--config",
        recipe.to_str().unwrap(),
        "--samples",
        &p("s.parquet"),
        "--epochs",
        "1",
        "--out",
        &p("run"),
        "--json",
    ]);
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary["epochs"], 1, "the flag wins over the file's");
    let model: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("run/model.json")).unwrap()).unwrap();
    let adv = &model["training"]["adv_reg"];
    assert_eq!((adv["objective"].as_str(), adv["epsilon_warmup"].as_u64()), (Some("trades"), Some(2)), "{adv}");
    assert_eq!(adv["neighbor"]["pgd_epsilon"].as_f64(), Some(0.3));
    assert_eq!(adv["multiplier"].as_f64(), Some(3.0), "TRADES' β: {adv}");
    assert_eq!(model["spec"]["dense"], serde_json::json!([256]), "the recipe's wider dense layer");
}

/// 40 samples with a token group `words` (vocab 6) and a dense `x`: label 1 when the words hold id 5.
fn token_dataset() -> Dataset {
    use arrow::array::{ArrayRef, Float32Array, Int64Array, ListArray, StringArray};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.parquet");
    let n = 40;
    let words: Vec<Option<Vec<Option<i64>>>> =
        (0..n).map(|i| Some((0..1 + i % 3).map(|k| Some(((i * 7 + k * 5) % 6) as i64)).collect())).collect();
    let labels: Vec<i64> = words.iter().map(|w| w.as_ref().unwrap().contains(&Some(5)) as i64).collect();
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("id", Arc::new(StringArray::from_iter_values((0..n).map(|i| format!("s{i}"))))),
        ("words", Arc::new(ListArray::from_iter_primitive::<arrow::datatypes::Int64Type, _, _>(words))),
        ("x", Arc::new(Float32Array::from_iter_values((0..n).map(|i| i as f32 / 40.0)))),
        ("label", Arc::new(Int64Array::from(labels))),
    ];
    let batch = arrow::record_batch::RecordBatch::try_from_iter(columns).unwrap();
    let mut writer =
        ::parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    let columns =
        nsl::data::SampleColumns { features: vec!["words".into(), "x".into()], ..nsl::data::SampleColumns::default() };
    nsl::data::read_parquet_samples(&path, &columns).unwrap()
}

/// `bow` (perturbations of the encoded input, never the token ids) with each objective, and
/// TRADES on a binary task (per-output Bernoulli KL).
#[test]
fn objectives_train_bow_in_its_encoded_input_and_trades_trains_a_binary_task() {
    let data = token_dataset();
    let before = data.features().to_owned();
    let spec = "bow:4"
        .parse::<ModelSpec>()
        .unwrap()
        .with_dropout(0.0)
        .for_inputs(&nsl::train::model_inputs(data.layout()))
        .unwrap();
    for objective in ["madry", "trades", "mart"] {
        let (model, vars) = build_model(&spec, data.item_shape(), 2, 0, &Device::Cpu).unwrap();
        let adv = AdvRegConfig::from_kv(&format!(
            "objective={objective},epsilon=0.03,step-size=0.02,pgd-iterations=3,norm=inf"
        ))
        .unwrap();
        let config = TrainConfig { epochs: 2, batch_size: 8, ..Default::default() };
        let mut trainer = Trainer::new(model.as_ref(), &vars, config).with_adversarial(&adv).record_adversarial(1);
        trainer.fit(&data, None).unwrap();
        let record = trainer.take_record();
        for example in &record.examples {
            // The encoding (4 pooled embedding values + the dense `x`), not the id columns.
            assert_eq!(example.features.len(), 5);
            assert!(example.perturbation_norm <= 0.03 + 1e-5, "{objective}: {}", example.perturbation_norm);
        }
        assert!(record.examples.iter().any(|e| e.perturbation_norm > 0.01), "{objective} moves the encoding");
    }
    assert_eq!(data.features(), before, "the token ids are never perturbed");
    // Binary TRADES: one logit.
    let blobs = classes(30, 9);
    let labels: Vec<u32> = blobs.labels().unwrap().iter().map(|&c| (c == 0) as u32).collect();
    let binary = Dataset::new(blobs.ids().to_vec(), blobs.features().to_owned(), vec![6], Some(labels), None).unwrap();
    let (model, vars) = build_model(&"mlp:8".parse().unwrap(), &[6], 1, 0, &Device::Cpu).unwrap();
    let adv = AdvRegConfig::from_kv("objective=trades,epsilon=0.1,step-size=0.05,pgd-iterations=2,norm=inf").unwrap();
    let history = Trainer::new(model.as_ref(), &vars, TrainConfig { epochs: 3, batch_size: 10, ..Default::default() })
        .with_task(Task::Binary)
        .with_adversarial(&adv)
        .fit(&binary, None)
        .unwrap();
    assert!(history.epochs.iter().all(|e| e.adversarial_loss > 0.0 && e.adversarial_loss.is_finite()));
    // MART on the binary task is refused before training.
    let (model, vars) = build_model(&"mlp:8".parse().unwrap(), &[6], 1, 0, &Device::Cpu).unwrap();
    let mart = AdvRegConfig::from_kv("objective=mart,epsilon=0.1").unwrap();
    let err = Trainer::new(model.as_ref(), &vars, TrainConfig::default())
        .with_task(Task::Binary)
        .with_adversarial(&mart)
        .fit(&binary, None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("objective=mart") && err.contains("binary"), "{err}");
}
