//! Training: reproducibility, graph regularization's effect, checkpoints, bad input.

use candle_core::Device;
use nsl::data::Dataset;
use nsl::eval::evaluate;
use nsl::graph::{EdgeKind, NeighborGraph};
use nsl::model::{build_model, ModelSpec};
use nsl::neighbors::NeighborTable;
use nsl::regularize::{DistanceConfig, GraphRegConfig};
use nsl::train::{load_checkpoint, save_checkpoint, CheckpointMeta, TrainConfig, Trainer};
use rand::{Rng, SeedableRng};

/// Two noisy Gaussian blobs in 8 dimensions, 60 samples, ids `s0…s59`, labels 0/1.
fn blobs() -> Dataset {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let n = 60;
    let labels: Vec<u32> = (0..n).map(|i| (i % 2) as u32).collect();
    let features = ndarray::Array2::from_shape_fn((n, 8), |(i, j)| {
        let center = if labels[i] == 1 && j < 4 { 1.0 } else { 0.0 };
        center + rng.random_range(-0.8..0.8f32)
    });
    Dataset::new((0..n).map(|i| format!("s{i}")).collect(), features, vec![8], Some(labels), None).unwrap()
}

/// Each sample linked to the next two samples of the same label.
fn same_label_graph(data: &Dataset) -> NeighborGraph {
    let mut g = NeighborGraph::new();
    let n = data.len();
    for i in 0..n {
        for step in [2, 4] {
            g.add_edge(&data.ids()[i], &data.ids()[(i + step) % n], 1.0, EdgeKind::Explicit).unwrap();
        }
    }
    g.make_undirected();
    g
}

fn config() -> TrainConfig {
    TrainConfig { epochs: 5, batch_size: 16, ..Default::default() }
}

fn weights(vars: &candle_nn::VarMap) -> Vec<f32> {
    let data = vars.data().lock().unwrap();
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    names.iter().flat_map(|n| data[*n].as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap()).collect()
}

fn train(seed: u64, graph: Option<(&NeighborTable, &GraphRegConfig)>) -> (Vec<f32>, f64) {
    train_epochs(seed, graph, 5)
}

fn train_epochs(seed: u64, graph: Option<(&NeighborTable, &GraphRegConfig)>, epochs: usize) -> (Vec<f32>, f64) {
    let data = blobs();
    let spec: ModelSpec = "mlp:16".parse::<ModelSpec>().unwrap().with_dropout(0.2);
    let (model, vars) = build_model(&spec, data.item_shape(), 2, seed, &Device::Cpu).unwrap();
    let mut trainer = Trainer::new(model.as_ref(), &vars, TrainConfig { seed, epochs, ..config() });
    if let Some((table, reg)) = graph {
        trainer = trainer.with_graph(table, reg);
    }
    let history = trainer.fit(&data, None).unwrap();
    assert_eq!(history.epochs.len(), epochs);
    (weights(&vars), evaluate(model.as_ref(), &data, 64).unwrap().accuracy)
}

#[test]
fn same_seed_same_model() {
    let (a, acc_a) = train(11, None);
    let (b, acc_b) = train(11, None);
    let (c, _) = train(12, None);
    assert_eq!(a, b);
    assert_eq!(acc_a, acc_b);
    assert_ne!(a, c);
}

#[test]
fn graph_regularization_changes_the_weights() {
    let data = blobs();
    let g = same_label_graph(&data);
    let reg = GraphRegConfig {
        multiplier: 0.5,
        neighbors: 2.into(),
        distance: DistanceConfig { sum_over_axis: Some(-1), ..Default::default() },
        ..Default::default()
    };
    let (table, report) = NeighborTable::new(&data, None, &g, 2).unwrap();
    assert_eq!(report.samples_with_neighbors, 60);
    let (plain, _) = train(5, None);
    let (regularized, _) = train(5, Some((&table, &reg)));
    assert_ne!(plain, regularized, "graph regularization had no effect on the weights");
    // A multiplier of 0 is the plain run, bit for bit.
    let off = GraphRegConfig { multiplier: 0.0, ..reg.clone() };
    let (zero, _) = train(5, Some((&table, &off)));
    assert_eq!(plain, zero);
}

#[test]
fn learns_the_blobs() {
    let (_, accuracy) = train_epochs(1, None, 40);
    assert!(accuracy > 0.8, "accuracy {accuracy}");
}

#[test]
fn checkpoint_round_trip_and_mismatch() {
    let data = blobs();
    let spec: ModelSpec = "mlp:16".parse().unwrap();
    let (model, vars) = build_model(&spec, data.item_shape(), 2, 0, &Device::Cpu).unwrap();
    Trainer::new(model.as_ref(), &vars, config()).fit(&data, None).unwrap();
    let before = evaluate(model.as_ref(), &data, 64).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let meta = CheckpointMeta {
        format_version: 1,
        spec: spec.clone(),
        item_shape: vec![8],
        classes: 2,
        class_names: None,
        task: Default::default(),
        seed: 0,
        training: serde_json::Value::Null,
    };
    save_checkpoint(dir.path(), &meta, &vars).unwrap();
    let loaded = load_checkpoint(dir.path()).unwrap();
    assert_eq!(evaluate(loaded.model.as_ref(), &data, 64).unwrap(), before);

    // model.json now describes another model: loading must say so, not panic.
    let other = CheckpointMeta { spec: "mlp:16,16".parse().unwrap(), ..meta.clone() };
    std::fs::write(dir.path().join("model.json"), serde_json::to_vec(&other).unwrap()).unwrap();
    let err = load_checkpoint(dir.path()).err().expect("mismatched checkpoint loaded").to_string();
    assert!(err.contains("model.safetensors") && err.contains("another model"), "{err}");
    let wider = CheckpointMeta { item_shape: vec![9], ..meta };
    std::fs::write(dir.path().join("model.json"), serde_json::to_vec(&wider).unwrap()).unwrap();
    let err = load_checkpoint(dir.path()).err().expect("mismatched checkpoint loaded").to_string();
    assert!(err.contains("does not fit"), "{err}");
}

#[test]
fn bad_training_input_is_an_error() {
    let data = blobs();
    let spec: ModelSpec = "mlp:4".parse().unwrap();
    let (model, vars) = build_model(&spec, data.item_shape(), 2, 0, &Device::Cpu).unwrap();
    let mut trainer = Trainer::new(model.as_ref(), &vars, config());
    let empty = data.select(&[]).unwrap();
    assert!(trainer.fit(&empty, None).unwrap_err().to_string().contains("empty"));
    let unlabeled = Dataset::new(data.ids().to_vec(), data.features().to_owned(), vec![8], None, None).unwrap();
    assert!(trainer.fit(&unlabeled, None).unwrap_err().to_string().contains("no labels"));
    // Labels beyond the model's outputs.
    let three =
        Dataset::new(data.ids().to_vec(), data.features().to_owned(), vec![8], Some(vec![2; 60]), None).unwrap();
    assert!(evaluate(model.as_ref(), &three, 8).unwrap_err().to_string().contains("out of range"));
    assert!(trainer.fit(&three, None).is_err());
}

#[test]
fn adversarial_training_changes_weights_and_is_recorded() {
    use nsl::regularize::{AdvNeighborConfig, AdvRegConfig, NormType};
    let data = blobs();
    let adv = AdvRegConfig {
        multiplier: 0.5,
        neighbor: AdvNeighborConfig { step_size: 0.1, grad_norm: NormType::Infinity, ..Default::default() },
        ..Default::default()
    };
    let spec: ModelSpec = "mlp:16".parse().unwrap();
    let run = |adversarial: bool| {
        let (model, vars) = build_model(&spec, data.item_shape(), 2, 9, &Device::Cpu).unwrap();
        let mut trainer = Trainer::new(model.as_ref(), &vars, config());
        if adversarial {
            trainer = trainer.with_adversarial(&adv).record_adversarial(2);
        }
        let history = trainer.fit(&data, None).unwrap();
        (weights(&vars), history, trainer.take_record())
    };
    let (plain, plain_history, _) = run(false);
    let (regularized, history, record) = run(true);
    assert_ne!(plain, regularized);
    assert!(plain_history.epochs.iter().all(|e| e.adversarial_loss == 0.0));
    assert!(history.epochs.iter().all(|e| e.adversarial_loss > 0.0));
    // Epochs 2, 4 and the last (5), 60 samples each; every perturbation is an L∞ step of 0.1.
    assert_eq!(record.examples.len(), 180);
    // Every FGSM step has L∞ norm 0.1, except where dropout silenced every hidden unit (zero gradient).
    let full = record.examples.iter().filter(|e| (e.perturbation_norm - 0.1).abs() < 1e-5).count();
    let none = record.examples.iter().filter(|e| e.perturbation_norm == 0.0).count();
    assert_eq!(full + none, 180);
    assert!(full > 150, "only {full} full steps");
    let g = record.to_graph().unwrap();
    assert_eq!(g.edge_count(), 180);
    assert!(g.edges().all(|(_, t, e)| t.contains("~adv") && e.kind == EdgeKind::Adversarial && e.weight == 0.5));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("adv.parquet");
    record.write(&path).unwrap();
    assert_eq!(nsl::graph::read_graph(&path).unwrap().edge_count(), 180);
    assert!(dir.path().join("adv.nodes.parquet").is_file());
}

#[test]
fn input_gradient_matches_finite_differences() {
    let data = blobs();
    let spec: ModelSpec = "mlp:6".parse::<ModelSpec>().unwrap().with_dropout(0.0);
    let (model, _vars) = build_model(&spec, data.item_shape(), 2, 4, &Device::Cpu).unwrap();
    let x = data.features().slice(ndarray::s![0..3, ..]).to_owned();
    let y = candle_core::Tensor::new(&[0u32, 1, 0], &Device::Cpu).unwrap();
    let grad = nsl::loss::input_gradient(model.as_ref(), x.view(), &y, false).unwrap();
    let loss_at = |x: &ndarray::Array2<f32>| -> f64 {
        let t = candle_core::Tensor::from_slice(x.as_slice().unwrap(), x.dim(), &Device::Cpu).unwrap();
        let logits = model.forward_t(&t, false).unwrap();
        candle_nn::loss::cross_entropy(&logits, &y).unwrap().to_scalar::<f32>().unwrap() as f64
    };
    for (i, j) in [(0, 0), (1, 3), (2, 7)] {
        let h = 1e-2f32;
        let (mut plus, mut minus) = (x.clone(), x.clone());
        plus[[i, j]] += h;
        minus[[i, j]] -= h;
        let numeric = (loss_at(&plus) - loss_at(&minus)) / (2.0 * h as f64);
        assert!((numeric - grad[[i, j]] as f64).abs() < 1e-3, "({i},{j}): {numeric} vs {}", grad[[i, j]]);
    }
}

/// Hides that a model is the built-in MLP, so the trainer takes candle's autograd path.
struct Autograd<'a>(&'a dyn nsl::model::Model);

impl nsl::model::Model for Autograd<'_> {
    fn forward_t(&self, xs: &candle_core::Tensor, train: bool) -> candle_core::Result<candle_core::Tensor> {
        self.0.forward_t(xs, train)
    }

    fn forward_with(
        &self,
        xs: &candle_core::Tensor,
        train: bool,
        layer: Option<&str>,
    ) -> candle_core::Result<(candle_core::Tensor, Option<candle_core::Tensor>)> {
        self.0.forward_with(xs, train, layer)
    }
}

/// The MLP's own forward/backward passes train exactly as candle's autograd does: same weights
/// after 3 epochs with dropout, graph regularization (on the logits or a hidden layer) and
/// adversarial regularization.
#[test]
fn fused_mlp_path_matches_candle_autograd() {
    use nsl::regularize::{AdvNeighborConfig, AdvRegConfig, NormType};
    let data = blobs();
    let g = same_label_graph(&data);
    let (table, _) = NeighborTable::new(&data, None, &g, 2).unwrap();
    let adv = AdvRegConfig {
        multiplier: 0.3,
        neighbor: AdvNeighborConfig { step_size: 0.05, grad_norm: NormType::L2, ..Default::default() },
        ..Default::default()
    };
    let spec: ModelSpec = "mlp:12,6".parse::<ModelSpec>().unwrap().with_dropout(0.3);
    for (layer, adversarial) in [(None, true), (Some("hidden1"), false), (Some("hidden0"), true)] {
        let reg = GraphRegConfig {
            multiplier: 0.2,
            neighbors: 2.into(),
            layer: layer.map(String::from),
            ..Default::default()
        };
        let run = |fused: bool| {
            let (model, vars) = build_model(&spec, data.item_shape(), 2, 21, &Device::Cpu).unwrap();
            assert!(model.as_mlp().is_some());
            let plain = Autograd(model.as_ref());
            let driven: &dyn nsl::model::Model = if fused { model.as_ref() } else { &plain };
            let mut trainer =
                Trainer::new(driven, &vars, TrainConfig { epochs: 3, ..config() }).with_graph(&table, &reg);
            if adversarial {
                trainer = trainer.with_adversarial(&adv);
            }
            let history = trainer.fit(&data, None).unwrap();
            (weights(&vars), history.epochs.last().unwrap().loss)
        };
        let ((fused, fused_loss), (autograd, autograd_loss)) = (run(true), run(false));
        let worst = fused.iter().zip(&autograd).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(worst < 1e-4, "layer {layer:?}, adversarial {adversarial}: weights differ by {worst}");
        assert!((fused_loss - autograd_loss).abs() < 1e-4, "{fused_loss} vs {autograd_loss}");
        assert_ne!(fused, weights(&build_model(&spec, data.item_shape(), 2, 21, &Device::Cpu).unwrap().1));
    }
}

/// A small CNN trained with adversarial regularization on 2 threads: the convolution's backward
/// sums per-thread partial gradients, and must do so in the same order on every run.
#[test]
fn cnn_on_two_threads_same_seed_same_model() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
    let n = 128;
    let labels: Vec<u32> = (0..n).map(|i| (i % 3) as u32).collect();
    let features = ndarray::Array2::from_shape_fn((n, 400), |(i, j)| {
        (if j % 3 == labels[i] as usize { 0.5 } else { 0.0 }) + rng.random_range(0.0..0.5f32)
    });
    let data =
        Dataset::new((0..n).map(|i| format!("s{i}")).collect(), features, vec![1, 20, 20], Some(labels), None).unwrap();
    let adversarial = nsl::regularize::AdvRegConfig {
        neighbor: nsl::regularize::AdvNeighborConfig {
            step_size: 0.1,
            grad_norm: nsl::regularize::NormType::Infinity,
            ..Default::default()
        },
        ..Default::default()
    };
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    let run = || {
        pool.install(|| {
            let spec: ModelSpec = "cnn:16,32".parse().unwrap();
            let (model, vars) = build_model(&spec, data.item_shape(), 3, 4, &Device::Cpu).unwrap();
            let config = TrainConfig { epochs: 1, batch_size: 32, seed: 4, ..Default::default() };
            Trainer::new(model.as_ref(), &vars, config).with_adversarial(&adversarial).fit(&data, None).unwrap();
            weights(&vars)
        })
    };
    let first = run();
    for _ in 0..4 {
        assert_eq!(run(), first, "two runs with the same seed gave different weights");
    }
}
