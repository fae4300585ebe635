//! `nsl pack-nbrs`: NSL's `pack_nbrs` (neighbors copied into every record), on TFRecord as NSL
//! writes it, or as a Parquet table.

use super::progress::with_spinner;
use super::ColumnArgs;
use anyhow::{bail, Context, Result};
use clap::Args;
use nsl::graph;
use nsl::neighbors::{pack_neighbors, NeighborTable};
use nsl::tfrecord::{self, Compression, PackConfig};
use std::path::PathBuf;

/// Flags of `nsl pack-nbrs`.
#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    nsl pack-nbrs --labeled train.tfr --unlabeled test.tfr --graph cora.tsv --add-undirected-edges --max-nbrs 5 --output train_packed.tfr\n  \
    nsl pack-nbrs --samples train.parquet --pool test.parquet --graph cora_graph.parquet --max-neighbors 5 --output train_packed.parquet")]
pub struct PackArgs {
    /// Labeled samples (the seeds, `--labeled`): one output record each, in order. TFRecord of
    /// `tf.train.Example`s (several files may be given; a repeated id keeps its last example, in
    /// the place of its first, as NSL), or a Parquet/CSV samples table.
    #[arg(long, visible_alias = "labeled", value_name = "FILE", num_args = 1.., required = true)]
    samples: Vec<PathBuf>,
    /// Unlabeled samples that may serve as neighbors (`--unlabeled`), of the same kind.
    #[arg(long, visible_alias = "unlabeled", value_name = "FILE", num_args = 1..)]
    pool: Vec<PathBuf>,
    /// The neighbor graph (Parquet or NSL TSV).
    #[arg(long, value_name = "FILE")]
    graph: PathBuf,
    /// Neighbors per sample (`--max-nbrs`), highest weight first (ties: larger id). Default: for
    /// TFRecord all of them (NSL's `max_nbrs=None`); for Parquet 5, and the table gets as many
    /// neighbor columns as the best-connected sample has neighbors (at most N). NSL's Cora
    /// preprocessing uses 5.
    #[arg(long, visible_alias = "max-nbrs", value_name = "N")]
    max_neighbors: Option<usize>,
    /// Make the graph undirected first (`--add-undirected-edges`): each edge also in reverse,
    /// keeping the larger weight, as NSL's `--add_undirected_edges`. Default: off.
    #[arg(long, visible_alias = "add-undirected-edges")]
    add_undirected: bool,
    /// Output: TFRecord with NSL's features (`NL_num_nbrs`, `NL_nbr_<j>_weight`, every feature of
    /// neighbor `j` as `NL_nbr_<j>_<name>`) when the inputs are TFRecord or the name ends in
    /// `.tfr`/`.tfrecord`; else a Parquet table (`NL_nbr_<j>_id`, `_features`, `_weight`). Written
    /// atomically.
    #[arg(long, value_name = "FILE")]
    output: PathBuf,
    /// TFRecord output: gzip it (TensorFlow's `compression_type="GZIP"`). Default: only when the
    /// output name ends in `.gz`.
    #[arg(long)]
    gzip: bool,
    /// Print the summary as JSON on standard output.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    columns: ColumnArgs,
}

/// Runs `nsl pack-nbrs`.
pub fn run(args: &PackArgs) -> Result<()> {
    let mut paths = vec![("--graph", args.graph.as_path())];
    paths.extend(args.samples.iter().map(|p| ("--samples", p.as_path())));
    paths.extend(args.pool.iter().map(|p| ("--pool", p.as_path())));
    nsl::io::check_paths(&[("--output", &args.output)], &paths)?;
    let inputs = args.samples.iter().chain(&args.pool);
    let tfrecord_inputs = inputs.clone().filter(|p| tfrecord::is_tfrecord(p)).count();
    let all_inputs = inputs.count();
    let output_name = args.output.file_name().map(|n| n.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
    let output_tfrecord = tfrecord::has_tfrecord_extension(&args.output);
    if tfrecord_inputs > 0 && tfrecord_inputs < all_inputs {
        bail!("--labeled/--unlabeled mix TFRecord and other files; give files of one kind");
    }
    if tfrecord_inputs > 0 || output_tfrecord {
        if tfrecord_inputs == 0 {
            bail!(
                "{}: TFRecord output needs TFRecord input (convert the samples with `nsl convert` first)",
                args.output.display()
            );
        }
        if output_name.ends_with(".parquet") || output_name.ends_with(".pq") {
            bail!(
                "{}: TFRecord input is packed to TFRecord (NSL's format); name the output .tfr",
                args.output.display()
            );
        }
        return run_tfrecord(args, output_name.ends_with(".gz"));
    }
    if args.gzip {
        bail!("--gzip applies to TFRecord output only");
    }
    run_parquet(args)
}

/// NSL's `pack_nbrs` on Parquet or CSV samples, to a packed Parquet table.
fn run_parquet(args: &PackArgs) -> Result<()> {
    let ([samples_path], pool_path) = (args.samples.as_slice(), args.pool.as_slice()) else {
        bail!("several --samples files are read for TFRecord only");
    };
    if pool_path.len() > 1 {
        bail!("several --pool files are read for TFRecord only");
    }
    let max_neighbors = args.max_neighbors.unwrap_or(5);
    let columns = args.columns.to_columns();
    let samples = with_spinner("reading samples", || super::convert::read_nonempty(samples_path, &columns, "pack"))?;
    let pool = pool_path
        .first()
        .map(|p| with_spinner("reading pool", || super::convert::read_samples(p, &columns)))
        .transpose()?;
    // Token lists in two files: both in the merge of their layouts, as `nsl train` reads a run.
    let (samples, pool) = match pool {
        Some(pool) if samples.layout().has_tokens() => {
            let layout = samples.layout().merge(pool.layout()).with_context(|| {
                format!("--pool {}: its feature groups differ from the samples'", pool_path[0].display())
            })?;
            (samples.conform(&layout)?, Some(pool.conform(&layout)?))
        }
        pool => (samples, pool),
    };
    let mut g = with_spinner("reading graph", || graph::read_graph(&args.graph))?;
    if args.add_undirected {
        g.make_undirected();
    }
    let (table, report) = NeighborTable::new(&samples, pool.as_ref(), &g, max_neighbors)?;
    with_spinner("writing", || pack_neighbors(&samples, &table, &args.output))?;
    if args.json {
        outln!(
            "{}",
            serde_json::json!({
                "output": args.output, "format": "parquet", "seeds": samples.len(),
                "samples_with_neighbors": report.samples_with_neighbors, "pairs": report.pairs,
                "unknown_targets": report.unknown_targets,
            })
        );
        return Ok(());
    }
    outln!(
        "packed {} samples ({} with neighbors, {} pairs; {} edges to unknown ids skipped) → {}",
        samples.len(),
        report.samples_with_neighbors,
        report.pairs,
        report.unknown_targets,
        args.output.display()
    );
    Ok(())
}

/// NSL's `pack_nbrs` on TFRecord files.
fn run_tfrecord(args: &PackArgs, gz_name: bool) -> Result<()> {
    let g = with_spinner("reading graph", || graph::read_graph(&args.graph))?;
    let config = PackConfig {
        max_neighbors: args.max_neighbors,
        add_undirected_edges: args.add_undirected,
        id_feature: args.columns.to_columns().id,
        compression: if args.gzip || gz_name { Compression::Gzip } else { Compression::None },
    };
    let report = with_spinner("packing", || tfrecord::pack_nbrs(&args.samples, &args.pool, g, &args.output, &config))?;
    if report.unknown_targets > 0 {
        errln!("warning: {} edges of seeds lead to ids without an example (skipped, as NSL)", report.unknown_targets);
    }
    if report.duplicate_ids > 0 {
        errln!("warning: {} records repeat an earlier id (the last one is kept, as NSL)", report.duplicate_ids);
    }
    if args.json {
        let mut summary = serde_json::to_value(&report)?;
        summary["output"] = serde_json::json!(args.output);
        summary["format"] = serde_json::json!("tfrecord");
        outln!("{summary}");
        return Ok(());
    }
    let histogram: Vec<String> =
        report.out_degrees.iter().enumerate().filter(|(_, &n)| n > 0).map(|(k, n)| format!("{k}: {n}")).collect();
    outln!(
        "packed {} seeds with {} neighbors ({} unlabeled examples; seeds by neighbor count {{{}}}) → {}",
        report.seeds,
        report.pairs,
        report.unlabeled,
        histogram.join(", "),
        args.output.display()
    );
    Ok(())
}
