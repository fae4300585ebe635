//! Issue 13, item 4: `GraphBuilder::write` (the path of `nsl build-graph`) writes the file that
//! `write_graph` writes for the graph of `GraphBuilder::build`, byte for byte, without making the
//! `NeighborGraph`: LSH and exact, with shards (directed metadata, extra target nodes), top-k,
//! zero vectors, one thread, Parquet and TSV.

use ndarray::Array2;
use nsl::build::synthetic::gaussian_clusters;
use nsl::build::{BuildConfig, BuildError, GraphBuilder};
use nsl::graph::{read_parquet_graph, write_graph, GraphError};
use std::path::Path;

/// 2,000 × 16 Gaussian clusters (40 per cluster, so every node has neighbors at 0.9), with rows
/// 7 and 1,500 zeroed (skipped by the builder but still nodes of the graph).
fn clustered() -> (Vec<String>, Array2<f32>) {
    let (mut x, _) = gaussian_clusters(2_000, 16, 50, 13);
    x.row_mut(7).fill(0.0);
    x.row_mut(1_500).fill(0.0);
    let ids = (0..x.nrows()).map(|i| format!("node-{i}")).collect();
    (ids, x)
}

/// The settings compared: exact, LSH, LSH centred over several rounds, shards of both, top-k.
fn configs() -> Vec<(&'static str, BuildConfig)> {
    let base = BuildConfig { threshold: 0.9, ..BuildConfig::default() };
    let lsh = BuildConfig { lsh_splits: 4, lsh_rounds: 3, seed: 5, ..base.clone() };
    vec![
        ("exact", base.clone()),
        ("lsh", lsh.clone()),
        ("lsh-centred", BuildConfig { center: true, ..lsh.clone() }),
        ("lsh-one-thread", BuildConfig { threads: Some(1), ..lsh.clone() }),
        ("exact-shard", BuildConfig { shard: Some((1, 3)), ..base.clone() }),
        ("lsh-shard", BuildConfig { shard: Some((2, 3)), ..lsh }),
        ("top-k", BuildConfig { threshold: 0.5, top_k: Some(3), ..base }),
    ]
}

fn bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn write_gives_the_bytes_of_build_then_write_graph() {
    let (ids, x) = clustered();
    let dir = tempfile::tempdir().unwrap();
    for (name, config) in configs() {
        let builder = GraphBuilder::new(config);
        let (graph, built) = builder.build(&ids, x.view()).unwrap();
        assert!(graph.edge_count() > 1_000, "{name}: a test needs edges ({})", graph.edge_count());
        for ext in ["parquet", "tsv"] {
            let old = dir.path().join(format!("{name}-old.{ext}"));
            let new = dir.path().join(format!("{name}-new.{ext}"));
            write_graph(&graph, &old).unwrap();
            let report = builder.write(&ids, x.view(), &new).unwrap();
            assert_eq!(bytes(&old), bytes(&new), "{name}.{ext}: files differ");
            assert_eq!((report.edges, report.directed_edges), (built.edges, built.directed_edges), "{name}");
        }
        // And the file reads back as the built graph: same edges, weights and order.
        let back = read_parquet_graph(&dir.path().join(format!("{name}-new.parquet"))).unwrap();
        let want: Vec<_> = graph.edges().collect();
        let got: Vec<_> = back.edges().collect();
        assert_eq!(got, want, "{name}: edges read back");
        assert_eq!(back.provenance(), graph.provenance());
    }
}

#[test]
fn shard_metadata_counts_the_targets_outside_the_shard() {
    let (ids, x) = clustered();
    let dir = tempfile::tempdir().unwrap();
    let builder = GraphBuilder::new(BuildConfig { threshold: 0.9, shard: Some((0, 4)), ..BuildConfig::default() });
    let path = dir.path().join("g.parquet");
    builder.write(&ids, x.view(), &path).unwrap();
    let file = std::fs::File::open(&path).unwrap();
    let reader = parquet::file::reader::SerializedFileReader::new(file).unwrap();
    let meta = parquet::file::reader::FileReader::metadata(&reader).file_metadata().clone();
    let value = |key: &str| {
        meta.key_value_metadata().unwrap().iter().find(|kv| kv.key == key).and_then(|kv| kv.value.clone()).unwrap()
    };
    // Rows 0..500 are the shard; some of their neighbors (clusters are spread over all rows) are not.
    let (graph, _) = builder.build(&ids, x.view()).unwrap();
    let outside = graph.ids().len() - 500;
    assert!(outside > 0, "the shard has no edge leaving it");
    assert_eq!(value("nsl.nodes"), graph.node_count().to_string());
    assert_eq!(value("nsl.directed"), "true");
}

#[test]
fn a_bad_output_is_an_error_naming_it_and_leaves_nothing() {
    let (ids, x) = clustered();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing-dir").join("g.parquet");
    let builder = GraphBuilder::new(BuildConfig { threshold: 0.9, ..BuildConfig::default() });
    match builder.write(&ids, x.view(), &path) {
        Err(BuildError::Graph(GraphError::Io { path: p, .. })) => assert_eq!(p, path),
        other => panic!("expected an I/O error naming the file, got {other:?}"),
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "something was written");
    // Input errors come first, as for `build`.
    let mut twice = ids.clone();
    twice[3] = twice[2].clone();
    let ok = dir.path().join("g.parquet");
    assert!(matches!(builder.write(&twice, x.view(), &ok), Err(BuildError::DuplicateId { first: 2, second: 3, .. })));
    assert!(!ok.exists());
}
