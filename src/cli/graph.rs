//! `nsl graph stats|export|propagate|hops`: analyse a neighbor graph, write it in another format,
//! smooth features over it, or expand it to r-hop neighbors.

use super::progress::with_spinner;
use super::ColumnArgs;
use anyhow::{Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use nsl::data;
use nsl::graph::{self};
use nsl::graph::{export, ExportFormat};
use nsl::graph::{graph_stats, SampleInfo};
use nsl::neighbors::{propagate_with_report, PropagateConfig, PropagateMode};
use serde::Serialize;
use std::path::PathBuf;

/// `nsl graph …` subcommands.
#[derive(Subcommand, Debug)]
pub enum GraphCommand {
    /// Nodes, edges by kind, degrees, components, self-loops, weights; with `--samples`, isolated
    /// samples and (with labels) the edge homophily.
    Stats(StatsArgs),
    /// Write the graph as Parquet, NSL TSV, GraphML (networkx), DOT (Graphviz), JSON (node-link) or CSV.
    Export(ExportArgs),
    /// Smooth sample features over the graph: `Â^K·X` (SGC) or `[X, ÂX, …, Â^K X]` (SIGN), with
    /// `Â = D^-1/2 (A + I) D^-1/2`; writes a samples table with the same ids and labels.
    Propagate(PropagateArgs),
    /// The r-hop neighbor graph: edge weights `Σ_{h=1..R} (Â^h)_ij` (no self-loops), each node's
    /// top-K edges kept.
    Hops(HopsArgs),
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

/// `--mode` of `nsl graph propagate`.
#[derive(ValueEnum, Clone, Copy, Debug)]
enum Mode {
    /// `Â^K·X`: the same width as the input (SGC).
    Sgc,
    /// `[X, ÂX, …, Â^K X]` side by side: (K + 1) times the input's width (SIGN-style).
    Sign,
}

/// Flags of `nsl graph propagate`.
#[derive(Args, Debug)]
#[command(
    after_help = "`Â = D^-1/2 (A + I) D^-1/2` is built over the samples: edge weights are A's entries, a graph that\n\
    is not symmetric is symmetrized with the larger weight of the two directions, the graph's own self-loops\n\
    are ignored, graph nodes that are not samples are ignored (and counted), and samples without edges keep\n\
    their features.\n\n\
    Example:\n  nsl graph propagate cora_graph.parquet --samples cora.parquet --hops 2 --output cora_sgc2.parquet"
)]
pub struct PropagateArgs {
    /// The graph: Parquet or NSL TSV (recognized by content).
    graph: PathBuf,
    /// Samples whose features are propagated (any supported format).
    #[arg(long, value_name = "FILE")]
    samples: PathBuf,
    #[command(flatten)]
    columns: ColumnArgs,
    /// K, the power of Â (1 to 64).
    #[arg(long, value_name = "K", default_value_t = PropagateConfig::default().hops)]
    hops: usize,
    /// Which features to write.
    #[arg(long, value_enum, default_value_t = Mode::Sgc)]
    mode: Mode,
    /// Divide each feature row by its L1 norm before propagating (GCN's and SGC's preprocessing of
    /// bag-of-words features). Default: the features as given.
    #[arg(long)]
    row_normalize: bool,
    /// Output Parquet samples table (written atomically).
    #[arg(long, value_name = "FILE")]
    output: PathBuf,
    /// Print the summary as JSON on standard output.
    #[arg(long)]
    json: bool,
}

/// Flags of `nsl graph hops`.
#[derive(Args, Debug)]
#[command(
    after_help = "Â is built as for `nsl graph propagate`. Ties in weight go to the larger id (NSL's order). Each node keeps\n\
    its own top K, so the result may not be symmetric.\n\n\
    Example:\n  nsl graph hops cora_graph.parquet --hops 2 --top-k 10 --output cora_2hop.parquet"
)]
pub struct HopsArgs {
    /// The graph: Parquet or NSL TSV (recognized by content).
    graph: PathBuf,
    /// R, the largest power of Â summed (1 to 64).
    #[arg(long, value_name = "R", default_value_t = 2)]
    hops: usize,
    /// Edges kept per node, heaviest first. Default: all.
    #[arg(long, value_name = "K")]
    top_k: Option<usize>,
    /// Output graph: Parquet (`.parquet`) or NSL TSV (any other extension), written atomically.
    #[arg(long, value_name = "FILE")]
    output: PathBuf,
    /// Print the summary as JSON on standard output.
    #[arg(long)]
    json: bool,
}

/// What `nsl graph hops` reports.
#[derive(Serialize)]
struct HopsSummary {
    output: PathBuf,
    hops: usize,
    top_k: Option<usize>,
    nodes: usize,
    edges: usize,
    mean_degree: f64,
}

/// Runs a `nsl graph` subcommand.
pub fn run(cmd: &GraphCommand) -> Result<()> {
    match cmd {
        GraphCommand::Stats(args) => stats(args),
        GraphCommand::Propagate(args) => propagate(args),
        GraphCommand::Hops(args) => hops(args),
        GraphCommand::Export(args) => {
            nsl::io::check_paths(&[("--output", &args.output)], &[("the graph", &args.graph)])?;
            let g = with_spinner("reading graph", || graph::read_graph(&args.graph))?;
            with_spinner("writing", || export(&g, args.format, &args.output))?;
            errln!(
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
        Some(path) => Some(with_spinner("reading samples", || {
            super::convert::read_nonempty(path, &args.columns.to_columns(), "count labels of")
        })?),
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
        outln!("{}", serde_json::to_string_pretty(&stats)?);
    } else {
        out!("{stats}");
    }
    Ok(())
}

fn propagate(args: &PropagateArgs) -> Result<()> {
    nsl::io::check_paths(&[("--output", &args.output)], &[("the graph", &args.graph), ("--samples", &args.samples)])?;
    let mode = match args.mode {
        Mode::Sgc => PropagateMode::Sgc,
        Mode::Sign => PropagateMode::Sign,
    };
    let config = PropagateConfig { hops: args.hops, mode, row_normalize: args.row_normalize };
    config.validate()?;
    let g = with_spinner("reading graph", || graph::read_graph(&args.graph))?;
    let samples = with_spinner("reading samples", || {
        super::convert::read_nonempty(&args.samples, &args.columns.to_columns(), "propagate")
    })?;
    let (out, report) =
        with_spinner(format!("propagating over {} hops", args.hops), || propagate_with_report(&samples, &g, &config))
            .with_context(|| format!("propagating {} over {}", args.samples.display(), args.graph.display()))?;
    with_spinner("writing", || data::write_samples(&out, &args.output))?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    outln!(
        "{}: {} samples, {} → {} features ({} over {} hops) → {}",
        report.mode,
        report.samples,
        report.input_dim,
        report.output_dim,
        if report.mode == PropagateMode::Sgc { "Â^K·X" } else { "[X, ÂX, …, Â^K X]" },
        report.hops,
        args.output.display()
    );
    outln!("samples without edges (features kept): {}", report.isolated_samples);
    if report.ignored_nodes > 0 || report.ignored_self_loops > 0 || report.asymmetric_edges > 0 {
        outln!(
            "ignored: {} graph nodes that are not samples ({} edges), {} self-loops; {} edges without an equal \
             reverse (symmetrized with the larger weight)",
            report.ignored_nodes,
            report.ignored_edges,
            report.ignored_self_loops,
            report.asymmetric_edges
        );
    }
    Ok(())
}

fn hops(args: &HopsArgs) -> Result<()> {
    nsl::io::check_paths(&[("--output", &args.output)], &[("the graph", &args.graph)])?;
    let g = with_spinner("reading graph", || graph::read_graph(&args.graph))?;
    let top_k = args.top_k.unwrap_or(usize::MAX);
    let out = with_spinner(format!("summing {} powers", args.hops), || g.multi_hop(args.hops, top_k))?;
    with_spinner("writing", || graph::write_graph(&out, &args.output))?;
    let summary = HopsSummary {
        output: args.output.clone(),
        hops: args.hops,
        top_k: args.top_k,
        nodes: out.node_count(),
        edges: out.edge_count(),
        mean_degree: if out.node_count() == 0 { 0.0 } else { out.edge_count() as f64 / out.node_count() as f64 },
    };
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        outln!(
            "{}-hop graph: {} nodes, {} directed edges (mean out-degree {:.2}) → {}",
            summary.hops,
            summary.nodes,
            summary.edges,
            summary.mean_degree,
            summary.output.display()
        );
    }
    Ok(())
}
