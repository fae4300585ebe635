//! Learning-rate and multiplier schedules (issue 12, item 5) in a whole run: a schedule changes
//! the weights, the same schedule gives the same weights, the constant default is today's run bit
//! for bit, and the schedules' values reach the optimizer and the regularizers.

use candle_core::Device;
use nsl::data::Dataset;
use nsl::graph::{EdgeKind, NeighborGraph};
use nsl::model::{build_model, ModelSpec};
use nsl::neighbors::NeighborTable;
use nsl::regularize::GraphRegConfig;
use nsl::train::{LrSchedule, MultiplierSchedule, MultiplierSchedules, OptimizerConfig, TrainConfig, Trainer};
use rand::{Rng, SeedableRng};

/// Two noisy blobs in 8 dimensions, 40 samples `s0…s39`, labels 0/1.
fn blobs() -> Dataset {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let n = 40;
    let labels: Vec<u32> = (0..n).map(|i| (i % 2) as u32).collect();
    let features = ndarray::Array2::from_shape_fn((n, 8), |(i, j)| {
        let center = if labels[i] == 1 && j < 4 { 1.0 } else { 0.0 };
        center + rng.random_range(-0.8..0.8f32)
    });
    Dataset::new((0..n).map(|i| format!("s{i}")).collect(), features, vec![8], Some(labels), None).unwrap()
}

fn graph(data: &Dataset) -> NeighborGraph {
    let mut g = NeighborGraph::new();
    for i in 0..data.len() {
        g.add_edge(&data.ids()[i], &data.ids()[(i + 2) % data.len()], 1.0, EdgeKind::Explicit).unwrap();
    }
    g.make_undirected();
    g
}

fn weights(vars: &candle_nn::VarMap) -> Vec<f32> {
    let data = vars.data().lock().unwrap();
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    names.iter().flat_map(|n| data[*n].as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap()).collect()
}

/// Trains 4 epochs of 10 batches with graph regularization and dropout; returns the weights.
fn run(config: TrainConfig, reg: &GraphRegConfig) -> Vec<f32> {
    run_with(config, reg, 0.25)
}

fn run_with(config: TrainConfig, reg: &GraphRegConfig, dropout: f32) -> Vec<f32> {
    let data = blobs();
    let spec: ModelSpec = "mlp:8".parse::<ModelSpec>().unwrap().with_dropout(dropout);
    let (model, vars) = build_model(&spec, &[8], 2, 1, &Device::Cpu).unwrap();
    let (table, _) = NeighborTable::new(&data, None, &graph(&data), reg.neighbors).unwrap();
    Trainer::new(model.as_ref(), &vars, config).with_graph(&table, reg).fit(&data, None).unwrap();
    weights(&vars)
}

fn base() -> TrainConfig {
    TrainConfig { epochs: 4, batch_size: 4, ..Default::default() }
}

fn reg() -> GraphRegConfig {
    GraphRegConfig { multiplier: 0.5, neighbors: 1.into(), ..GraphRegConfig::tutorial() }
}

#[test]
fn a_learning_rate_schedule_changes_the_run_reproducibly() {
    let plain = run(base(), &reg());
    let constant = TrainConfig { lr_schedule: "constant".parse().unwrap(), ..base() };
    assert_eq!(run(constant, &reg()), plain, "the constant schedule is the run without one, bit for bit");
    for text in ["cosine", "step,every=1,gamma=0.5", "exponential,rate=0.5", "warmup=1"] {
        let config = TrainConfig { lr_schedule: text.parse().unwrap(), ..base() };
        let a = run(config.clone(), &reg());
        assert_ne!(a, plain, "{text} changes the weights");
        assert_eq!(a, run(config, &reg()), "{text} is reproducible");
    }
}

/// SGD with a step schedule whose factor is 0 after the first epoch (γ → tiny) ends where one
/// epoch at the base rate ends: the schedule's values reach the optimizer.
#[test]
fn the_schedule_sets_the_optimizers_rate() {
    let sgd = TrainConfig { optimizer: OptimizerConfig::sgd().with_learning_rate(0.1), ..base() };
    let one_epoch = run(TrainConfig { epochs: 1, ..sgd.clone() }, &reg());
    // 1e-300 as an f32 rate is 0: every update after epoch 1 is θ − 0·g = θ.
    let frozen = TrainConfig { lr_schedule: "step,every=1,gamma=1e-300".parse().unwrap(), ..sgd };
    // Dropout draws differ after epoch 1, but updates of rate 0 leave the weights as they are.
    assert_eq!(run(frozen, &reg()), one_epoch);
}

/// A multiplier schedule that keeps the multiplier near 0 for the whole run (a warm-up much longer
/// than the run's 40 steps, from 0) trains nearly as a run without graph term; one whose decay has
/// its floor at the configured value is the constant run, bit for bit.
#[test]
fn multiplier_schedules_reach_the_graph_term() {
    let plain = run(base(), &reg());
    let off = GraphRegConfig { multiplier: 0.0, multiplier_ll: Some(0.0), ..reg() };
    // Without dropout: without graph pairs, the forward pass draws fewer dropout masks.
    let no_graph = run_with(base(), &off, 0.0);
    let warm = |text: &str| TrainConfig {
        multiplier_schedules: MultiplierSchedules {
            graph: MultiplierSchedule::from_kv(text).unwrap(),
            ..Default::default()
        },
        ..base()
    };
    let warming = run_with(warm("warmup=100000"), &reg(), 0.0);
    let full = run_with(base(), &reg(), 0.0);
    // The warm-up's multiplier is 0.5·t/100000 ≤ 2e-4 over the run's 40 steps: close to no graph
    // term at all, far from the full one.
    let dist = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    let (near, far) = (dist(&warming, &no_graph), dist(&full, &no_graph));
    assert!(near * 20.0 < far, "warm-up: {near} from the run without graph term, the full term {far}");
    assert_eq!(run(warm("steps=1,rate=0.5,min=0.5"), &reg()), plain, "floored at the multiplier: unchanged");
    let decayed = run(warm("decay=inverse-time,steps=10,rate=1"), &reg());
    assert_ne!(decayed, plain);
    assert_eq!(decayed, run(warm("decay=inverse-time,steps=10,rate=1"), &reg()));
}

#[test]
fn lr_schedule_settings_are_validated_with_the_run() {
    let config = TrainConfig { lr_schedule: "warmup=4".parse::<LrSchedule>().unwrap(), ..base() };
    let err = config.validate().unwrap_err().to_string();
    assert!(err.contains("warmup") && err.contains("fewer epochs than the run's 4"), "{err}");
}
