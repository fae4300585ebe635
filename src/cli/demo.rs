//! `nsl demo`: the main job on the bundled data, end to end, in one command.
//!
//! For now it walks the bundled Cora citation graph through the foundation: LINQS → Parquet samples
//! and graph, graph statistics with the labels (homophily), and every export format.

use super::progress::with_spinner;
use anyhow::{Context, Result};
use clap::Args;
use nsl::data::{self, linqs};
use nsl::graph::export::{export, ExportFormat};
use nsl::graph::linqs::{read_cites, UnknownIds};
use nsl::graph::stats::{graph_stats, SampleInfo};
use nsl::graph::{self};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Flags of `nsl demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Directory for everything the demo writes (created if missing).
    #[arg(long, default_value = "demo-out", value_name = "DIR")]
    out: PathBuf,
    /// Directory of the bundled datasets. Default: `datasets` in the current directory, else the one
    /// next to the crate's sources.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

/// Runs `nsl demo`.
pub fn run(args: &DemoArgs) -> Result<()> {
    let started = Instant::now();
    let data_dir = dataset_dir(args.data_dir.as_deref())?;
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let content = data_dir.join("cora/cora.content.gz");
    let cites = data_dir.join("cora/cora.cites.gz");

    println!("== 1. convert: the bundled Cora (LINQS) → Parquet");
    let samples = with_spinner("reading cora.content", || linqs::read_content(&content))?;
    let known = |id: &str| samples.position(id).is_some();
    let (mut g, report) = with_spinner("reading cora.cites", || read_cites(&cites, &known, UnknownIds::Error))?;
    g.set_provenance("nsl demo: LINQS cora.cites, undirected, weight 1");
    let samples_path = args.out.join("cora.parquet");
    let graph_path = args.out.join("cora_graph.parquet");
    data::parquet::write_samples(&samples, &samples_path)?;
    graph::write_graph(&g, &graph_path)?;
    println!(
        "   {} papers × {} word features, {} classes → {}",
        samples.len(),
        samples.dim(),
        samples.num_classes().unwrap_or(0),
        samples_path.display()
    );
    println!("   {} citation links → {}", report.links, graph_path.display());

    println!("\n== 2. graph stats (read back from Parquet, with the labels)");
    let g = graph::read_graph(&graph_path)?;
    let info = SampleInfo { ids: samples.ids(), labels: samples.labels() };
    print!("{}", graph_stats(&g, Some(&info)));

    println!("\n== 3. export");
    for (format, name) in [
        (ExportFormat::Tsv, "cora_graph.tsv"),
        (ExportFormat::Graphml, "cora.graphml"),
        (ExportFormat::Dot, "cora.dot"),
        (ExportFormat::Json, "cora.json"),
        (ExportFormat::Csv, "cora_edges.csv"),
    ] {
        let path = args.out.join(name);
        export(&g, format, &path)?;
        println!("   {:<8} → {}", format.to_string(), path.display());
    }
    println!(
        "\ndone in {:.1} s; try `nsl graph stats {} --samples {}`",
        started.elapsed().as_secs_f64(),
        graph_path.display(),
        samples_path.display()
    );
    Ok(())
}

/// Finds the bundled datasets: the given directory, `./datasets`, or the crate's own `datasets/`.
fn dataset_dir(given: Option<&Path>) -> Result<PathBuf> {
    let candidates: Vec<PathBuf> = match given {
        Some(dir) => vec![dir.to_path_buf()],
        None => vec![PathBuf::from("datasets"), Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets")],
    };
    candidates.iter().find(|d| d.join("cora/cora.content.gz").is_file()).cloned().with_context(|| {
        format!("bundled datasets not found (looked for cora/cora.content.gz in {candidates:?}); pass --data-dir")
    })
}
