//! `nsl pack-nbrs`: NSL's `pack_nbrs` output (neighbors copied into every record) as Parquet.

use super::progress::with_spinner;
use super::ColumnArgs;
use anyhow::Result;
use clap::Args;
use nsl::data;
use nsl::graph;
use nsl::neighbors::{pack_neighbors, NeighborTable};
use std::path::PathBuf;

/// Flags of `nsl pack-nbrs`.
#[derive(Args, Debug)]
#[command(
    after_help = "Example:\n  nsl pack-nbrs --samples train.parquet --pool test.parquet --graph cora_graph.parquet --max-neighbors 5 --output train_packed.parquet"
)]
pub struct PackArgs {
    /// Labeled samples (the seeds): one output row each, in order.
    #[arg(long, value_name = "FILE")]
    samples: PathBuf,
    /// Unlabeled samples that may serve as neighbors.
    #[arg(long, value_name = "FILE")]
    pool: Option<PathBuf>,
    /// The neighbor graph (Parquet or NSL TSV).
    #[arg(long, value_name = "FILE")]
    graph: PathBuf,
    /// Neighbors per sample, highest weight first (ties: larger id). NSL's Cora preprocessing uses 5.
    /// The table gets as many neighbor columns as the best-connected sample has neighbors (at most N).
    #[arg(long, default_value_t = 5, value_name = "N")]
    max_neighbors: usize,
    /// Make the graph undirected first (each edge also in reverse, keeping the larger weight), as
    /// NSL's `--add_undirected_edges`. Default: off.
    #[arg(long)]
    add_undirected: bool,
    /// Output Parquet table (written atomically).
    #[arg(long, value_name = "FILE")]
    output: PathBuf,
    #[command(flatten)]
    columns: ColumnArgs,
}

/// Runs `nsl pack-nbrs`.
pub fn run(args: &PackArgs) -> Result<()> {
    let mut inputs = vec![("--samples", args.samples.as_path()), ("--graph", args.graph.as_path())];
    inputs.extend(args.pool.as_deref().map(|p| ("--pool", p)));
    nsl::io::check_paths(&[("--output", &args.output)], &inputs)?;
    let columns = args.columns.to_columns();
    let samples = with_spinner("reading samples", || data::read_samples(&args.samples, &columns))?;
    let pool =
        args.pool.as_deref().map(|p| with_spinner("reading pool", || data::read_samples(p, &columns))).transpose()?;
    let mut g = with_spinner("reading graph", || graph::read_graph(&args.graph))?;
    if args.add_undirected {
        g.make_undirected();
    }
    let (table, report) = NeighborTable::new(&samples, pool.as_ref(), &g, args.max_neighbors)?;
    with_spinner("writing", || pack_neighbors(&samples, &table, &args.output))?;
    println!(
        "packed {} samples ({} with neighbors, {} pairs; {} edges to unknown ids skipped) → {}",
        samples.len(),
        report.samples_with_neighbors,
        report.pairs,
        report.unknown_targets,
        args.output.display()
    );
    Ok(())
}
