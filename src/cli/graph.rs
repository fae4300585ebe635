//! `nsl graph stats|export`: analyse a neighbor graph, or write it in another format.

use super::progress::with_spinner;
use super::ColumnArgs;
use anyhow::Result;
use clap::{Args, Subcommand};
use nsl::data;
use nsl::graph::{self};
use nsl::graph::{export, ExportFormat};
use nsl::graph::{graph_stats, SampleInfo};
use std::path::PathBuf;

/// `nsl graph …` subcommands.
#[derive(Subcommand, Debug)]
pub enum GraphCommand {
    /// Nodes, edges by kind, degrees, components, self-loops, weights; with `--samples`, isolated
    /// samples and (with labels) the edge homophily.
    Stats(StatsArgs),
    /// Write the graph as Parquet, NSL TSV, GraphML (networkx), DOT (Graphviz), JSON (node-link) or CSV.
    Export(ExportArgs),
}

/// Flags of `nsl graph stats`.
#[derive(Args, Debug)]
#[command(after_help = "Example:\n  nsl graph stats cora_graph.parquet --samples cora.parquet --json")]
pub struct StatsArgs {
    /// The graph: Parquet or NSL TSV (recognized by content).
    graph: PathBuf,
    /// Samples table (any supported format) whose ids and labels the graph refers to.
    #[arg(long, value_name = "FILE")]
    samples: Option<PathBuf>,
    #[command(flatten)]
    columns: ColumnArgs,
    /// Also compute the K smallest eigenvalues of the normalized Laplacian (graphs up to a few
    /// thousand nodes). Default: off.
    #[cfg(feature = "linalg")]
    #[arg(long, value_name = "K")]
    spectrum: Option<usize>,
    /// Print the statistics as JSON on standard output.
    #[arg(long)]
    json: bool,
}

/// Flags of `nsl graph export`.
#[derive(Args, Debug)]
#[command(after_help = "Example:\n  nsl graph export cora_graph.parquet --format graphml --output cora.graphml")]
pub struct ExportArgs {
    /// The graph: Parquet or NSL TSV (recognized by content).
    graph: PathBuf,
    /// Output format: parquet, tsv, graphml, dot, json or csv.
    #[arg(long, value_name = "FORMAT")]
    format: ExportFormat,
    /// Output file (written atomically).
    #[arg(long, value_name = "FILE")]
    output: PathBuf,
}

/// Runs a `nsl graph` subcommand.
pub fn run(cmd: &GraphCommand) -> Result<()> {
    match cmd {
        GraphCommand::Stats(args) => stats(args),
        GraphCommand::Export(args) => {
            let g = with_spinner("reading graph", || graph::read_graph(&args.graph))?;
            with_spinner("writing", || export(&g, args.format, &args.output))?;
            eprintln!(
                "wrote {} nodes, {} edges as {} → {}",
                g.node_count(),
                g.edge_count(),
                args.format,
                args.output.display()
            );
            Ok(())
        }
    }
}

fn stats(args: &StatsArgs) -> Result<()> {
    let g = with_spinner("reading graph", || graph::read_graph(&args.graph))?;
    let samples = match &args.samples {
        Some(path) => Some(with_spinner("reading samples", || data::read_samples(path, &args.columns.to_columns()))?),
        None => None,
    };
    let info = samples.as_ref().map(|d| SampleInfo { ids: d.ids(), labels: d.labels() });
    #[allow(unused_mut)]
    let mut stats = with_spinner("computing statistics", || graph_stats(&g, info.as_ref()));
    #[cfg(feature = "linalg")]
    if let Some(k) = args.spectrum {
        stats = with_spinner("computing the Laplacian spectrum", || nsl::graph::with_spectrum(stats, &g, k))?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&stats)?);
    } else {
        print!("{stats}");
    }
    Ok(())
}
