//! Cora from the library: read the bundled LINQS files, look at the citation graph, store it.
//!
//! Run with `cargo run --release --example cora_graph`.

use nsl::data::read_content;
use nsl::graph::{graph_stats, SampleInfo};
use nsl::graph::{read_cites, UnknownIds};
use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/cora");
    let papers = read_content(&data.join("cora.content.gz"))?;
    let known = |id: &str| papers.position(id).is_some();
    let (graph, _report) = read_cites(&data.join("cora.cites.gz"), &known, UnknownIds::Error)?;

    let stats = graph_stats(&graph, Some(&SampleInfo { ids: papers.ids(), labels: papers.labels() }));
    println!("{stats}");

    // The three best neighbors of paper 0 (highest weight first).
    for (neighbor, edge) in graph.top_k("0", 3) {
        println!("0 -> {neighbor} (weight {}, {})", edge.weight, edge.kind);
    }

    let out = std::env::temp_dir().join("cora_graph.parquet");
    nsl::graph::write_graph(&graph, &out)?;
    println!("wrote {}", out.display());
    Ok(())
}
