//! `nsl train --packed DIR_OR_FILE`: packed Parquet tables streamed through a seeded shuffle
//! buffer (issue 13, item 2) train the model that in-memory `--graph` training trains, bit for bit,
//! when the buffer holds the whole table; smaller buffers are deterministic per seed; directories
//! of parts train; bad tables are clear errors.

use candle_core::Device;
use nsl::data::{read_samples, SampleColumns};
use nsl::neighbors::{NeighborTable, PackedConfig, PackedParts};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn nsl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nsl")).args(args).output().expect("nsl runs")
}

fn ok(args: &[&str]) -> String {
    let out = nsl(args);
    assert!(out.status.success(), "nsl {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn fails(args: &[&str]) -> String {
    let out = nsl(args);
    assert_eq!(out.status.code(), Some(1), "nsl {args:?} should fail with status 1");
    String::from_utf8(out.stderr).unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Cora as NSL's tutorial splits it: training papers, test papers (the pool), the citation graph,
/// and the training papers packed with their 3 best neighbors.
struct Cora {
    dir: tempfile::TempDir,
}

impl Cora {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/cora");
        let c = Cora { dir };
        let (all, graph) = (c.path("cora.parquet"), c.path("graph.parquet"));
        ok(&[
            "convert",
            "--content",
            s(&d.join("cora.content.gz")),
            "--cites",
            s(&d.join("cora.cites.gz")),
            "--samples",
            s(&all),
            "--graph",
            s(&graph),
        ]);
        let (train, test) = (c.path("train.parquet"), c.path("test.parquet"));
        ok(&["split", s(&all), "--method", "nsl", "--seed", "1", "--out-train", s(&train), "--out-test", s(&test)]);
        ok(&[
            "pack-nbrs",
            "--samples",
            s(&train),
            "--pool",
            s(&test),
            "--graph",
            s(&graph),
            "--max-neighbors",
            "3",
            "--output",
            s(&c.path("packed.parquet")),
        ]);
        c
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

#[test]
fn stream_in_file_order_gives_the_in_memory_neighbors() {
    let cora = Cora::new();
    let columns = SampleColumns::default();
    let train = read_samples(&cora.path("train.parquet"), &columns).unwrap();
    let pool = read_samples(&cora.path("test.parquet"), &columns).unwrap();
    let graph = nsl::graph::read_graph(&cora.path("graph.parquet")).unwrap();
    let (table, _) = NeighborTable::new(&train, Some(&pool), &graph, 2).unwrap();
    let parts = PackedParts::open(&cora.path("packed.parquet")).unwrap();
    assert_eq!((parts.rows(), parts.dim(), parts.neighbor_columns()), (train.len(), 1433, 3));
    assert_eq!(parts.class_names(), train.class_names());
    let mut epoch = parts.epoch(&PackedConfig::default(), 2, 0, 1, None);
    let mut first = 0;
    while let Some(batch) = epoch.next_batch(100).unwrap() {
        let n = batch.samples.len();
        let rows: Vec<usize> = (first..first + n).collect();
        assert_eq!(batch.samples.ids(), &train.ids()[first..first + n]);
        assert_eq!(batch.samples.features(), train.features().slice(ndarray::s![first..first + n, ..]));
        assert_eq!(batch.samples.labels().unwrap(), &train.labels().unwrap()[first..first + n]);
        let (want_x, want) = table.batch(&rows, &Device::Cpu).unwrap();
        let local: Vec<usize> = (0..n).collect();
        let (got_x, got) = batch.neighbors.batch(&local, &Device::Cpu).unwrap();
        assert_eq!(got.sample_index.to_vec1::<u32>().unwrap(), want.sample_index.to_vec1::<u32>().unwrap());
        assert_eq!(got.weights.to_vec1::<f32>().unwrap(), want.weights.to_vec1::<f32>().unwrap());
        assert_eq!(got_x.to_vec2::<f32>().unwrap(), want_x.to_vec2::<f32>().unwrap());
        assert_eq!(got.slots, want.slots);
        first += n;
    }
    assert_eq!(first, train.len());
}

/// The weights of a trained model, in name order.
fn weights(vars: &candle_nn::VarMap) -> Vec<(String, Vec<f32>)> {
    let data = vars.data().lock().unwrap();
    let mut out: Vec<(String, Vec<f32>)> =
        data.iter().map(|(k, v)| (k.clone(), v.as_tensor().flatten_all().unwrap().to_vec1().unwrap())).collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn fit_packed_equals_fit_with_graph_in_the_library() {
    use nsl::regularize::GraphRegConfig;
    use nsl::train::{TrainConfig, Trainer};
    let cora = Cora::new();
    let columns = SampleColumns::default();
    let train = read_samples(&cora.path("train.parquet"), &columns).unwrap();
    let pool = read_samples(&cora.path("test.parquet"), &columns).unwrap();
    let graph = nsl::graph::read_graph(&cora.path("graph.parquet")).unwrap();
    let reg = GraphRegConfig::from_kv("multiplier=0.1,neighbors=2").unwrap();
    let (table, _) = NeighborTable::new(&train, Some(&pool), &graph, 2).unwrap();
    let parts = PackedParts::open(&cora.path("packed.parquet")).unwrap();
    let spec: nsl::ModelSpec = "mlp:16".parse().unwrap();
    let config = TrainConfig { shuffle: std::env::var("NOSHUF").is_err(), epochs: 2, batch_size: 128, seed: 5, threads: Some(1), ..TrainConfig::default() };
    let (m1, v1) = nsl::build_model(&spec, &[1433], 7, 5, &Device::Cpu).unwrap();
    Trainer::new(m1.as_ref(), &v1, config.clone()).with_graph(&table, &reg).fit(&train, None).unwrap();
    let (m2, v2) = nsl::build_model(&spec, &[1433], 7, 5, &Device::Cpu).unwrap();
    Trainer::new(m2.as_ref(), &v2, config).fit_packed(&parts, &PackedConfig::default(), Some(&reg), None).unwrap();
    let (a, b) = (weights(&v1), weights(&v2));
    let differing: usize = a.iter().zip(&b).map(|(x, y)| x.1.iter().zip(&y.1).filter(|(p, q)| p != q).count()).sum();
    assert_eq!(differing, 0, "{} of the weights differ", differing);
}
