//! Few labels (issue 11): unlabeled centers, per-edge-type multipliers, virtual adversarial
//! regularization and early stopping in the trainer.

use candle_core::Device;
use nsl::data::Dataset;
use nsl::graph::{EdgeKind, NeighborGraph};
use nsl::model::{build_model, ModelSpec};
use nsl::neighbors::NeighborTable;
use nsl::regularize::{GraphRegConfig, VatConfig};
use nsl::train::{OptimizerConfig, TrainConfig, TrainError, Trainer, UnlabeledConfig};
use rand::{Rng, SeedableRng};

/// Two noisy blobs in 8 dimensions: `n` samples with ids `{prefix}{i}`, labels 0/1.
fn blobs(n: usize, prefix: &str, seed: u64) -> Dataset {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let labels: Vec<u32> = (0..n).map(|i| (i % 2) as u32).collect();
    let features = ndarray::Array2::from_shape_fn((n, 8), |(i, j)| {
        let center = if labels[i] == 1 && j < 4 { 1.0 } else { 0.0 };
        center + rng.random_range(-0.8..0.8f32)
    });
    Dataset::new((0..n).map(|i| format!("{prefix}{i}")).collect(), features, vec![8], Some(labels), None).unwrap()
}

/// Labeled `l*` and unlabeled `u*` samples, each linked to same-label samples of both sets.
fn fixture() -> (Dataset, Dataset, NeighborGraph) {
    let (labeled, unlabeled) = (blobs(20, "l", 1), blobs(40, "u", 2));
    let mut g = NeighborGraph::new();
    for i in 0..40 {
        g.add_edge(&format!("u{i}"), &format!("u{}", (i + 2) % 40), 1.0, EdgeKind::Explicit).unwrap();
        g.add_edge(&format!("u{i}"), &format!("l{}", i % 20), 0.5, EdgeKind::Explicit).unwrap();
    }
    g.make_undirected();
    (labeled, unlabeled, g)
}

fn weights(vars: &candle_nn::VarMap) -> Vec<f32> {
    let data = vars.data().lock().unwrap();
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    names.iter().flat_map(|n| data[*n].as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap()).collect()
}

/// Trains on the fixture; `unlabeled`: with unlabeled centers (and their graph), `vat`: with VAT.
fn run(reg: &GraphRegConfig, unlabeled: bool, vat: Option<&VatConfig>) -> Vec<f32> {
    let (labeled, pool, g) = fixture();
    let spec: ModelSpec = "mlp:8".parse::<ModelSpec>().unwrap().with_dropout(0.0);
    let (model, vars) = build_model(&spec, &[8], 2, 5, &Device::Cpu).unwrap();
    let (table, _) = NeighborTable::new(&labeled, Some(&pool), &g, reg.neighbors).unwrap();
    let (utable, _) = NeighborTable::new(&pool, Some(&labeled), &g, reg.neighbors).unwrap();
    let config = TrainConfig { epochs: 3, batch_size: 8, ..Default::default() };
    let mut trainer = Trainer::new(model.as_ref(), &vars, config).with_graph(&table, reg);
    if unlabeled {
        trainer = trainer.with_unlabeled(&pool, Some(&utable), UnlabeledConfig::default());
    }
    if let Some(vat) = vat {
        trainer = trainer.with_vat(vat);
    }
    trainer.fit(&labeled, None).unwrap();
    weights(&vars)
}

#[test]
fn unlabeled_centers_train_their_edges_reproducibly() {
    let reg = GraphRegConfig { multiplier: 0.5, neighbors: 2.into(), ..GraphRegConfig::tutorial() };
    let with = run(&reg, true, None);
    assert_eq!(with, run(&reg, true, None), "same seed, same model");
    assert_ne!(with, run(&reg, false, None), "unlabeled centers change the training");
    // With every unlabeled–unlabeled and labeled–unlabeled edge switched off, the unlabeled
    // centers bring no pair at all, and the labeled centers keep only their labeled neighbors.
    let only_ll = GraphRegConfig { multiplier_lu: Some(0.0), multiplier_uu: Some(0.0), ..reg.clone() };
    let none = GraphRegConfig { multiplier: 0.0, multiplier_ll: Some(0.5), ..reg.clone() };
    assert_eq!(run(&only_ll, true, None), run(&none, true, None), "multiplier-ll alone is the same objective");
}

#[test]
fn equal_edge_multipliers_are_the_plain_multiplier() {
    let reg = GraphRegConfig { multiplier: 0.3, neighbors: 2.into(), ..GraphRegConfig::tutorial() };
    let spelled =
        GraphRegConfig { multiplier_ll: Some(0.3), multiplier_lu: Some(0.3), multiplier_uu: Some(0.3), ..reg.clone() };
    assert_eq!(run(&reg, false, None), run(&spelled, false, None));
    let louder = GraphRegConfig { multiplier_lu: Some(0.9), ..reg.clone() };
    assert_ne!(run(&reg, false, None), run(&louder, false, None));
}

#[test]
fn vat_changes_the_weights_and_is_seeded() {
    let reg = GraphRegConfig { multiplier: 0.0, neighbors: 1.into(), ..GraphRegConfig::tutorial() };
    let vat = VatConfig { epsilon: 0.5, xi: 1e-3, ..VatConfig::from_kv("distance=kl").unwrap() };
    let with = run(&reg, true, Some(&vat));
    assert_eq!(with, run(&reg, true, Some(&vat)));
    assert_ne!(with, run(&reg, true, None));
}

#[test]
fn early_stopping_keeps_the_best_epoch() {
    let (labeled, _, _) = fixture();
    let validation = blobs(30, "v", 9);
    let spec: ModelSpec = "mlp:8".parse::<ModelSpec>().unwrap().with_dropout(0.0);
    let (model, vars) = build_model(&spec, &[8], 2, 5, &Device::Cpu).unwrap();
    let config = TrainConfig { epochs: 40, batch_size: 8, early_stopping: Some(3), ..Default::default() };
    let history = Trainer::new(model.as_ref(), &vars, config).fit(&labeled, Some(&validation)).unwrap();
    let best = history.best_epoch.expect("a best epoch");
    let accuracies: Vec<f64> = history.epochs.iter().map(|e| e.validation_accuracy.unwrap()).collect();
    let max = accuracies.iter().copied().fold(0.0, f64::max);
    assert_eq!(accuracies[best - 1], max, "the kept epoch has the best validation accuracy");
    assert_eq!(accuracies.iter().position(|&a| a == max), Some(best - 1), "the first best one");
    // Stopped at most 3 epochs after the best (or ran them all).
    assert!(history.epochs.len() <= best + 3, "{} epochs, best {best}", history.epochs.len());
    let kept = nsl::evaluate(model.as_ref(), &validation, 64).unwrap().accuracy;
    assert_eq!(kept, max, "the model holds the best epoch's weights");

    let (model, vars) = build_model(&spec, &[8], 2, 5, &Device::Cpu).unwrap();
    let config = TrainConfig { early_stopping: Some(3), ..Default::default() };
    let err = Trainer::new(model.as_ref(), &vars, config).fit(&labeled, None).unwrap_err();
    assert!(matches!(err, TrainError::Config(_)), "{err}");
    assert!(err.to_string().contains("validation"), "{err}");
}

/// Issue 24: the neighbors per sample are stated once, in `GraphRegConfig::neighbors`, and the
/// table built with it carries them; the trainer reads the number from the table only (it used to
/// compare it with the config's and refuse a mismatch). A table of 3 neighbors trains the same
/// weights whatever another config says, and other weights than a table of 1.
#[test]
fn the_neighbors_per_sample_are_the_tables() {
    let (labeled, pool, g) = fixture();
    let train = |table_neighbors: usize, reg: &GraphRegConfig| {
        let spec: ModelSpec = "mlp:8".parse::<ModelSpec>().unwrap().with_dropout(0.0);
        let (model, vars) = build_model(&spec, &[8], 2, 5, &Device::Cpu).unwrap();
        let (table, _) = NeighborTable::new(&labeled, Some(&pool), &g, table_neighbors).unwrap();
        assert_eq!(table.config().max_neighbors, table_neighbors);
        let config = TrainConfig { epochs: 2, batch_size: 8, ..Default::default() };
        Trainer::new(model.as_ref(), &vars, config).with_graph(&table, reg).fit(&labeled, None).unwrap();
        weights(&vars)
    };
    let three = GraphRegConfig { multiplier: 0.5, neighbors: 3.into(), ..GraphRegConfig::tutorial() };
    let one = GraphRegConfig { neighbors: 1.into(), ..three.clone() };
    assert_eq!(train(3, &three), train(3, &one));
    assert_ne!(train(3, &three), train(1, &one));
}

/// The recipe file trains end to end on Planetoid Cora through the CLI (1 epoch here), its
/// settings under the command line's.
#[test]
fn the_few_labels_recipe_runs() {
    let nsl = env!("CARGO_BIN_EXE_nsl");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(nsl).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let cora = root.join("datasets/cora");
    run(&[
        "convert",
        "--content",
        &cora.join("cora.content.gz").to_string_lossy(),
        "--cites",
        &cora.join("cora.cites.gz").to_string_lossy(),
        "--samples",
        &p("cora.parquet"),
        "--graph",
        &p("g.parquet"),
    ]);
    let table = cora.join("cora.planetoid_split.tsv");
    run(&["split", &p("cora.parquet"), "--split-table", &table.to_string_lossy(), "--out-train", &p("tr.parquet")]
        .into_iter()
        .chain(["--out-test", &p("te.parquet"), "--out-unlabeled", &p("un.parquet")])
        .collect::<Vec<_>>());
    let recipe = root.join("examples/recipes/few_labels.toml");
    let out = run(&[
        "train",
        "--config",
        &recipe.to_string_lossy(),
        "--samples",
        &p("tr.parquet"),
        "--unlabeled",
        &p("un.parquet"),
        "--graph",
        &p("g.parquet"),
        "--epochs",
        "1",
        "--test",
        &p("te.parquet"),
        "--out",
        &p("run"),
        "--json",
    ]);
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary["epochs"], 1, "the flag wins over the file's 400");
    assert_eq!(summary["train_samples"], 140);
    let model: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("run/model.json")).unwrap()).unwrap();
    let reg = &model["training"]["graph_reg"];
    assert_eq!((reg["hops"].as_u64(), reg["max_neighbors"].as_u64()), (Some(2), Some(100)), "{reg}");
    assert_eq!(reg["in_batch"].as_bool(), Some(true), "{reg}");
    assert_eq!(reg["contrastive"].as_f64(), Some(0.5), "{reg}");
    assert!(model["training"]["unlabeled"]["samples"].is_string());
}

#[test]
fn the_contrastive_distance_pulls_neighbors_together_over_training() {
    let (labeled, pool, g) = fixture();
    let reg = GraphRegConfig::from_kv("multiplier=1,neighbors=2,distance=contrastive,layer=hidden0").unwrap();
    let train = || {
        let spec: ModelSpec = "mlp:8".parse::<ModelSpec>().unwrap().with_dropout(0.0);
        let (model, vars) = build_model(&spec, &[8], 2, 5, &Device::Cpu).unwrap();
        let (table, _) = NeighborTable::new(&labeled, Some(&pool), &g, 2).unwrap();
        let (utable, _) = NeighborTable::new(&pool, Some(&labeled), &g, 2).unwrap();
        let config = TrainConfig { epochs: 30, batch_size: 8, ..Default::default() };
        let history = Trainer::new(model.as_ref(), &vars, config)
            .with_graph(&table, &reg)
            .with_unlabeled(&pool, Some(&utable), UnlabeledConfig::default())
            .fit(&labeled, None)
            .unwrap();
        (history, weights(&vars))
    };
    let (history, w) = train();
    let (first, last) = (history.epochs[0].graph_loss, history.epochs.last().unwrap().graph_loss);
    assert!(first > 0.0 && last < 0.95 * first, "contrastive loss {first} → {last}");
    assert_eq!(w, train().1, "same seed, same model");
}

#[test]
fn in_batch_contrastive_pairs_train_without_neighbor_rows() {
    // in-batch=true: the positives are the neighbors that are centers of the same batch (Graph-MLP).
    let (labeled, pool, g) = fixture();
    let reg =
        GraphRegConfig::from_kv("multiplier=1,neighbors=4,distance=contrastive,layer=hidden0,in-batch=true").unwrap();
    let spec: ModelSpec = "mlp:8".parse::<ModelSpec>().unwrap().with_dropout(0.0);
    let (model, vars) = build_model(&spec, &[8], 2, 5, &Device::Cpu).unwrap();
    let (table, _) = NeighborTable::new(&labeled, Some(&pool), &g, 4).unwrap();
    let (utable, _) = NeighborTable::new(&pool, Some(&labeled), &g, 4).unwrap();
    // Every center in one batch: 20 labeled + 40 unlabeled (ratio 2), so every edge is in it; one
    // step per epoch, so a larger learning rate than Adam's default.
    let optimizer = OptimizerConfig::default().with_learning_rate(0.01);
    let config = TrainConfig { epochs: 30, batch_size: 20, optimizer, ..Default::default() };
    let unlabeled = UnlabeledConfig { ratio: 2.0, ..Default::default() };
    let history = Trainer::new(model.as_ref(), &vars, config)
        .with_graph(&table, &reg)
        .with_unlabeled(&pool, Some(&utable), unlabeled)
        .fit(&labeled, None)
        .unwrap();
    let (first, last) = (history.epochs[0].graph_loss, history.epochs.last().unwrap().graph_loss);
    // −log(Σ w·positives / Σ the 59 others) starts near log(59 / Σw) and falls as neighbors align.
    assert!(first > 1.0 && last < 0.95 * first, "in-batch contrastive loss {first} → {last}");
}

#[test]
fn weight_decay_shrinks_the_weights() {
    let (labeled, _, _) = fixture();
    let norm = |weight_decay: f64| {
        let spec: ModelSpec = "mlp:8".parse::<ModelSpec>().unwrap().with_dropout(0.0);
        let (model, vars) = build_model(&spec, &[8], 2, 5, &Device::Cpu).unwrap();
        let config = TrainConfig { epochs: 20, batch_size: 8, weight_decay, ..Default::default() };
        Trainer::new(model.as_ref(), &vars, config).fit(&labeled, None).unwrap();
        weights(&vars).iter().map(|w| w * w).sum::<f32>()
    };
    let (plain, decayed) = (norm(0.0), norm(1.0));
    assert!(decayed < 0.9 * plain, "‖θ‖² {plain} without decay, {decayed} with λ = 1");
    let bad = TrainConfig { weight_decay: -1.0, ..Default::default() };
    assert!(bad.validate().unwrap_err().to_string().contains("weight_decay"));
}
