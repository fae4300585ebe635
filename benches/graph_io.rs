//! Graph I/O benchmark: a seeded random graph of 1,000,000 directed edges written and read back
//! as Parquet and as NSL TSV. Prints Markdown table rows (best of `RUNS` runs each).
//!
//! ```text
//! cargo bench --bench graph_io
//! ```

use nsl::graph::{read_parquet_graph, read_tsv, write_parquet_graph, write_tsv, EdgeKind, NeighborGraph};
use rand::{Rng, SeedableRng};
use std::path::Path;
use std::time::{Duration, Instant};

/// Directed edges in the benchmark graph.
const EDGES: usize = 1_000_000;
/// Nodes the edges are drawn among (average out-degree 10).
const NODES: usize = 100_000;
/// Runs per measurement; the fastest is reported (the machine is shared).
const RUNS: usize = 3;
/// The seed of the graph.
const SEED: u64 = 42;

/// `EDGES` distinct random edges among `NODES` nodes with ids `paper<i>`, weights uniform in
/// `[0, 1)` and random kinds.
fn random_graph() -> NeighborGraph {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(SEED);
    let mut graph = NeighborGraph::with_capacity(NODES, EDGES);
    let ids: Vec<String> = (0..NODES).map(|i| format!("paper{i}")).collect();
    while graph.edge_count() < EDGES {
        let (s, t) = (&ids[rng.random_range(0..NODES)], &ids[rng.random_range(0..NODES)]);
        let kind = EdgeKind::ALL[rng.random_range(0..EdgeKind::ALL.len())];
        // A freshly drawn uniform f32 in [0, 1) is finite and non-negative.
        graph.add_edge(s, t, rng.random::<f32>(), kind).expect("valid weight");
    }
    graph
}

/// The fastest of `RUNS` runs of `f`.
fn best_of(mut f: impl FnMut()) -> Duration {
    (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .min()
        .unwrap_or_default()
}

fn size_mib(path: &Path) -> f64 {
    std::fs::metadata(path).map(|m| m.len() as f64 / (1024.0 * 1024.0)).unwrap_or(f64::NAN)
}

fn main() {
    if std::env::args().any(|a| a == "edge-list") {
        return edge_list();
    }
    let start = Instant::now();
    let graph = random_graph();
    eprintln!(
        "generated {} nodes, {} edges (seed {SEED}) in {:.2} s",
        graph.node_count(),
        graph.edge_count(),
        start.elapsed().as_secs_f64()
    );
    let dir = tempfile::tempdir().expect("temporary directory");
    let pq = dir.path().join("graph.parquet");
    let ts = dir.path().join("graph.tsv");

    let pq_write = best_of(|| write_parquet_graph(&graph, &pq).expect("write parquet"));
    let pq_read = best_of(|| assert_eq!(read_parquet_graph(&pq).expect("read parquet").edge_count(), EDGES));
    let tsv_write = best_of(|| write_tsv(&graph, &ts).expect("write tsv"));
    let tsv_read = best_of(|| assert_eq!(read_tsv(&ts, EdgeKind::Explicit).expect("read tsv").edge_count(), EDGES));

    println!("| format | write (s) | read (s) | file size (MiB) |");
    println!("|---|---|---|---|");
    for (name, write, read, path) in [("Parquet (zstd)", pq_write, pq_read, &pq), ("NSL TSV", tsv_write, tsv_read, &ts)]
    {
        println!("| {name} | {:.3} | {:.3} | {:.1} |", write.as_secs_f64(), read.as_secs_f64(), size_mib(path));
    }
}

/// `cargo bench --bench graph_io -- edge-list`: the write `nsl build-graph` does at 1M × 64 —
/// 20,000,000 directed edges sorted by source (20 per node, ids "0".."999999") through
/// `nsl::graph::write_edges`, without a `NeighborGraph`.
fn edge_list() {
    use nsl::graph::{write_edges, Edge, EdgeTableMeta};
    let nodes = 1_000_000u32;
    let ids: Vec<String> = (0..nodes).map(|i| i.to_string()).collect();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(SEED);
    let mut edges: Vec<(u32, u32, f32)> = Vec::with_capacity(20 * nodes as usize);
    for s in 0..nodes {
        let base = s / 50 * 50;
        let mut targets: Vec<u32> = (0..20).map(|_| (base + rng.random_range(0..50)).min(nodes - 1)).collect();
        targets.sort_unstable();
        targets.dedup();
        edges.extend(targets.into_iter().map(|t| (s, t, rng.random_range(0.9f32..1.0))));
    }
    let dir = tempfile::tempdir().expect("temporary directory");
    let meta = EdgeTableMeta { directed: false, provenance: "bench".into(), nodes: nodes as usize };
    for name in ["graph.parquet", "graph.tsv"] {
        let path = dir.path().join(name);
        let time = best_of(|| {
            let named = |i: usize| {
                let (s, t, w) = edges[i];
                (ids[s as usize].as_str(), ids[t as usize].as_str(), Edge { weight: w, kind: EdgeKind::Similarity })
            };
            write_edges(&path, &meta, edges.len(), named).expect("write");
        });
        println!("{name}: {} edges written in {:.3} s, {:.1} MiB", edges.len(), time.as_secs_f64(), size_mib(&path));
    }
}
