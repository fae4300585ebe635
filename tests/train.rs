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
    let history = trainer.fit(&data, None, &mut |_, _, _| {}).unwrap();
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
        max_neighbors: 2,
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
    Trainer::new(model.as_ref(), &vars, config()).fit(&data, None, &mut |_, _, _| {}).unwrap();
    let before = evaluate(model.as_ref(), &data, 64).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let meta = CheckpointMeta {
        format_version: 1,
        spec: spec.clone(),
        item_shape: vec![8],
        classes: 2,
        class_names: None,
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
    let trainer = Trainer::new(model.as_ref(), &vars, config());
    let empty = data.select(&[]).unwrap();
    assert!(trainer.fit(&empty, None, &mut |_, _, _| {}).unwrap_err().to_string().contains("empty"));
    let unlabeled = Dataset::new(data.ids().to_vec(), data.features().to_owned(), vec![8], None, None).unwrap();
    assert!(trainer.fit(&unlabeled, None, &mut |_, _, _| {}).unwrap_err().to_string().contains("no labels"));
    // Labels beyond the model's outputs.
    let three =
        Dataset::new(data.ids().to_vec(), data.features().to_owned(), vec![8], Some(vec![2; 60]), None).unwrap();
    assert!(evaluate(model.as_ref(), &three, 8).unwrap_err().to_string().contains("out of range"));
    assert!(trainer.fit(&three, None, &mut |_, _, _| {}).is_err());
}
