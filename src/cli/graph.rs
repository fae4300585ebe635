//! `nsl graph stats|export|propagate|hops|grand`: analyse a neighbor graph, write it in another
//! format, smooth features over it, expand it to r-hop neighbors, or train a GRAND teacher on it.

use super::progress::with_spinner;
use super::ColumnArgs;
use anyhow::{Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use nsl::data;
use nsl::graph::ExportFormat;
use nsl::graph::{self};
use nsl::graph::{graph_stats, SampleInfo};
use nsl::neighbors::{propagate_with_report, PropagateConfig, PropagateMode};
use serde::Serialize;
use std::path::PathBuf;

pub use super::grand::GrandArgs;

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
    /// Train GRAND (graph random neural network, Feng et al. 2020) on the graph's few labeled nodes
    /// and write every node's class probabilities as `nsl predict` does: a teacher for
    /// `nsl train --distill teacher=FILE`.
    Grand(GrandArgs),
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
#[command(after_help = "Examples:\n  nsl graph export cora_graph.parquet --output cora.graphml\n  \
    nsl graph export cora_graph.parquet --output cora.json --samples cora.parquet --node-columns label")]
pub struct ExportArgs {
    /// The graph: Parquet or NSL TSV (recognized by content).
    graph: PathBuf,
    /// Output format: parquet, tsv, graphml, dot, json or csv. Default: the output's extension
    /// (`.parquet`/`.pq`, `.tsv`, `.graphml`, `.dot`/`.gv`, `.json`, `.csv`).
    #[arg(long, value_name = "FORMAT")]
    format: Option<ExportFormat>,
    /// A samples table (Parquet or CSV, joined on its `id` column) whose `--node-columns` become node
    /// attributes (graphml, json, dot): labels or splits to colour by in Gephi or networkx.
    #[arg(long, value_name = "FILE", requires = "node_columns")]
    samples: Option<PathBuf>,
    /// With `--samples`: the columns attached to the nodes, comma-separated (e.g. `label,split`);
    /// written as strings, none for a node that is not in the table.
    #[arg(long, value_delimiter = ',', value_name = "NAMES", requires = "samples")]
    node_columns: Vec<String>,
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
    /// Personalized PageRank (APPNP): K steps of `Z ← (1−α)·Â·Z + α·X` from `Z = X`; the input's width.
    Appnp,
    /// The mean of `Â^k·X` for k = 0…K (S²GC / GRAND's mixed order); the input's width.
    Mixed,
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
    /// K, the power of Â or the number of steps (1 to 64). Default: 10 with `--mode appnp`, 16 with
    /// `--mode mixed`, 2 otherwise.
    #[arg(long, value_name = "K")]
    hops: Option<usize>,
    /// Which features to write.
    #[arg(long, value_enum, default_value_t = Mode::Sgc)]
    mode: Mode,
    /// With `--mode appnp`: α, the share of each paper's own features kept at every step (0 to 1).
    #[arg(long, value_name = "ALPHA", default_value_t = PropagateConfig::default().alpha)]
    alpha: f64,
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
        GraphCommand::Export(args) => export_graph(args),
        GraphCommand::Grand(args) => super::grand::run(args),
    }
}

/// `nsl graph export`.
fn export_graph(args: &ExportArgs) -> Result<()> {
    let format = match (args.format, ExportFormat::from_path(&args.output)) {
        (Some(format), _) | (None, Some(format)) => format,
        (None, None) => anyhow::bail!(
            "--output {}: no export format in its extension; name a .graphml, .json, .dot, .csv, .tsv or .parquet \
             file, or give --format",
            args.output.display()
        ),
    };
    let mut inputs = vec![("the graph", args.graph.as_path())];
    inputs.extend(args.samples.as_deref().map(|p| ("--samples", p)));
    nsl::io::check_paths(&[("--output", &args.output)], &inputs)?;
    let g = with_spinner("reading graph", || graph::read_graph(&args.graph))?;
    let nodes = match &args.samples {
        Some(samples) => node_attributes(samples, &args.node_columns, g.ids())?,
        None => Vec::new(),
    };
    with_spinner("writing", || graph::export_with_nodes(&g, format, &args.output, &nodes))?;
    let (edges, undirected) = graph::written_edges(&g, format);
    let kind = if undirected { "undirected edges (each link once)" } else { "directed edges" };
    let attributes = match nodes.is_empty() {
        true => String::new(),
        false => format!(" with node attributes {}", args.node_columns.join(", ")),
    };
    errln!("wrote {} nodes, {edges} {kind}{attributes} as {format} → {}", g.node_count(), args.output.display());
    Ok(())
}

/// The `columns` of the samples table `path` (Parquet or CSV, rows keyed by `id`), as strings, one
/// value per graph node of `ids` (none for a node the table does not have).
fn node_attributes(
    path: &std::path::Path,
    columns: &[String],
    ids: &[String],
) -> Result<Vec<(String, Vec<Option<String>>)>> {
    let mut wanted = vec!["id".to_string()];
    wanted.extend(columns.iter().cloned());
    let table = read_string_columns(path, &wanted).with_context(|| format!("--samples {}", path.display()))?;
    let row_of: std::collections::HashMap<&str, usize> =
        table[0].iter().enumerate().map(|(row, id)| (id.as_str(), row)).collect();
    Ok(columns
        .iter()
        .zip(&table[1..])
        .map(|(name, values)| {
            let per_node = ids.iter().map(|id| row_of.get(id.as_str()).map(|&row| values[row].clone())).collect();
            (name.clone(), per_node)
        })
        .collect())
}

/// The columns `names` of a Parquet or CSV table, each cell as a string (lists as Arrow prints them).
fn read_string_columns(path: &std::path::Path, names: &[String]) -> Result<Vec<Vec<String>>> {
    if nsl::io::is_parquet(path)? {
        let file = std::fs::File::open(path)?;
        let builder = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)?;
        let schema = builder.schema().clone();
        let roots = names
            .iter()
            .map(|n| schema.index_of(n).map_err(|_| anyhow::anyhow!("no column `{n}` in the table")))
            .collect::<Result<Vec<_>>>()?;
        let mask = parquet::arrow::ProjectionMask::roots(builder.parquet_schema(), roots);
        let mut out = vec![Vec::new(); names.len()];
        for batch in builder.with_projection(mask).build()? {
            let batch = batch?;
            for (name, column) in names.iter().zip(out.iter_mut()) {
                let array = batch.column_by_name(name).ok_or_else(|| anyhow::anyhow!("no column `{name}`"))?;
                let format = arrow::util::display::ArrayFormatter::try_new(array.as_ref(), &Default::default())?;
                column.extend((0..array.len()).map(|i| format.value(i).to_string()));
            }
        }
        return Ok(out);
    }
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_path(path)?;
    let header = reader.headers()?.clone();
    let index = names
        .iter()
        .map(|n| header.iter().position(|h| h == n).ok_or_else(|| anyhow::anyhow!("no column `{n}` in the header")))
        .collect::<Result<Vec<_>>>()?;
    let mut out = vec![Vec::new(); names.len()];
    for record in reader.records() {
        let record = record?;
        for (&col, column) in index.iter().zip(out.iter_mut()) {
            column.push(record.get(col).unwrap_or_default().to_string());
        }
    }
    Ok(out)
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
        Mode::Appnp => PropagateMode::Appnp,
        Mode::Mixed => PropagateMode::Mixed,
    };
    let hops = args.hops.unwrap_or_else(|| mode.default_hops());
    let config = PropagateConfig { hops, mode, row_normalize: args.row_normalize, alpha: args.alpha };
    config.validate()?;
    let g = with_spinner("reading graph", || graph::read_graph(&args.graph))?;
    let samples = with_spinner("reading samples", || {
        super::convert::read_nonempty(&args.samples, &args.columns.to_columns(), "propagate")
    })?;
    let (out, report) =
        with_spinner(format!("propagating over {hops} hops"), || propagate_with_report(&samples, &g, &config))
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
        report.mode.formula(),
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
