//! `nsl build-graph`: a similarity graph from embeddings (NSL's `build_graph`), exact or by LSH.

use super::progress::with_spinner;
use anyhow::{bail, Context, Result};
use nsl::build::{BuildConfig, BuildReport, GraphBuilder, Progress};
use nsl::data::{read_samples, SampleColumns};
use std::path::{Path, PathBuf};
use std::time::Instant;

const AFTER_HELP: &str = "\
Edges: a -> b and b -> a with weight cos(a, b) whenever cos(a, b) >= threshold (NSL's rule), no
self-edges. Zero vectors get no edges (a warning counts them); NaN/Inf values, repeated ids and
rows of different lengths are errors.

Memory: the embeddings as read plus their L2-normalized copy (8 x N x d bytes), and the edges,
which dominate for dense graphs: at most 36 bytes per undirected link while they are sorted, then
24 (both directions); the file is written straight from that list (no in-memory graph), one
row group at a time; never N x N. Measured: 1,000,000 x 64 embeddings with 10.2 M links peaked at
1.1 GiB; 10,000,000 x 64 with 89 M links at 9.9 GiB.

Sharding: --shard I/N writes the edges whose source row is in the I-th of N equal, contiguous row
ranges, sorted by source; the N outputs concatenated (in shard order) are the unsharded graph.";

/// Build a neighbor graph from embeddings by cosine similarity: exact (every pair, blocked GEMM on
/// all cores) or with LSH (random hyperplanes, NSL's `lsh_splits`/`lsh_rounds`).
#[derive(clap::Args, Debug)]
#[command(after_long_help = AFTER_HELP)]
pub struct BuildGraphArgs {
    /// Embeddings: TFRecord of `tf.train.Example`s as NSL's `build_graph` reads them (an `id`
    /// bytes feature and an `embedding` float feature; recognized by content or by the extension
    /// `.tfr`/`.tfrecord`, gzipped or not; several files may be given, as NSL takes them, and a
    /// repeated id keeps its last embedding), Parquet (an `embedding` or `features` list<float32>
    /// column and an `id` column), CSV, IDX, LINQS `.content`; any file `nsl` reads samples from.
    /// Required.
    #[arg(long, num_args = 1.., required = true)]
    pub input: Vec<PathBuf>,
    /// The graph to write: Parquet if the name ends in `.parquet`/`.pq`, else NSL's TSV
    /// (`source<TAB>target<TAB>weight`, both directions). Written atomically. Required.
    #[arg(long)]
    pub output: PathBuf,
    /// Minimum cosine similarity of an edge, inclusive, in [-1, 1].
    #[arg(long, visible_alias = "similarity-threshold", default_value_t = 0.8, allow_negative_numbers = true)]
    pub threshold: f64,
    /// LSH: number of random hyperplanes (at most 63); 0 compares every pair exactly. NSL's rule
    /// of thumb: ceil(log2(N / 1000)).
    #[arg(long, default_value_t = 0)]
    pub lsh_splits: u32,
    /// LSH: number of rounds, each with fresh hyperplanes (union of the rounds). The default, 1, is
    /// NSL's `GraphBuilderConfig` default (NSL's build_graph command line defaults to 2).
    #[arg(long, default_value_t = 1)]
    pub lsh_rounds: u32,
    /// LSH: subtract the mean embedding before hashing (the weights stay the cosines of the input).
    /// Non-negative or otherwise uncentred embeddings crowd a few buckets without it; watch
    /// "largest bucket" in the summary. Default: off (NSL's behavior).
    #[arg(long)]
    pub center: bool,
    /// Keep each node's K most similar neighbors among those at or above the threshold (use
    /// `--threshold -1` for a plain kNN graph); the graph is then made symmetric, so degrees can
    /// exceed K. Default: no limit.
    #[arg(long)]
    pub top_k: Option<usize>,
    /// Seed of the LSH hyperplanes and the recall sample; the same seed gives the same graph on any
    /// number of threads.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Build only shard I of N (`0 <= I < N`): the edges whose source row is in the I-th of N
    /// contiguous row ranges. Default: the whole graph.
    #[arg(long, value_name = "I/N", value_parser = parse_shard)]
    pub shard: Option<(usize, usize)>,
    /// Worker threads. Default: one per core (or RAYON_NUM_THREADS).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Estimate recall against exact search on N random source nodes and print it. Default: off.
    #[arg(long, value_name = "N")]
    pub recall_sample: Option<usize>,
    /// Column (Parquet, CSV) or feature (TFRecord; NSL's `--id_feature_name`) of the sample ids.
    #[arg(long, visible_alias = "id-feature", default_value = "id")]
    pub id_column: String,
    /// Column or feature of the embeddings (`--embedding-feature`, NSL's
    /// `--embedding_feature_name`). Default: `embedding` for TFRecord, as NSL; for Parquet
    /// `embedding` if the file has it, else `features` (what `nsl generate-embeddings` writes); for
    /// CSV, every numeric column but the id and `label`.
    #[arg(long, visible_alias = "embedding-feature")]
    pub embedding_column: Option<String>,
    /// Print the summary as one JSON object on stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

fn parse_shard(text: &str) -> Result<(usize, usize), String> {
    nsl::build::parse_shard(text).map_err(|e| e.to_string())
}

/// Runs `nsl build-graph`.
///
/// # Errors
/// A bad option, an unreadable or invalid input, a build error or an unwritable output, each with
/// its file and position.
pub fn run(args: &BuildGraphArgs) -> Result<()> {
    let start = Instant::now();
    let config = BuildConfig {
        threshold: args.threshold,
        lsh_splits: args.lsh_splits,
        lsh_rounds: args.lsh_rounds,
        center: args.center,
        top_k: args.top_k,
        seed: args.seed,
        shard: args.shard,
        threads: args.threads,
        recall_sample: args.recall_sample,
    };
    // Bad options and an output that cannot be written are reported before any work.
    config.validate()?;
    let inputs: Vec<(&str, &Path)> = args.input.iter().map(|p| ("--input", p.as_path())).collect();
    nsl::io::check_paths(&[("--output", &args.output)], &inputs)?;
    nsl::io::check_writable(&args.output).with_context(|| format!("--output {}", args.output.display()))?;
    let dataset = read_embeddings(args)?;
    let read_seconds = start.elapsed().as_secs_f64();
    // A bar on a terminal, plain lines (fraction, ETA) every 10 s otherwise; nothing with --quiet.
    let bar = std::sync::Arc::new(super::progress::WorkBar::new());
    let progress_bar = bar.clone();
    let builder = GraphBuilder::new(config).on_progress(move |p: Progress| {
        let stage = match p.rounds > 1 {
            true => format!("comparing pairs, round {}/{}", p.round + 1, p.rounds),
            false => "comparing pairs".to_string(),
        };
        progress_bar.update(&stage, p.done, p.total.max(1));
    });
    // The graph goes straight from the builder's edge list to the file (no in-memory graph).
    let build_start = Instant::now();
    let report = builder.write_dataset(&dataset, &args.output);
    bar.finish();
    // Errors name their file (the input's row and column, or the output).
    let report = report?;
    let write_seconds = (build_start.elapsed().as_secs_f64() - report.seconds).max(0.0);
    drop(dataset);
    if report.skipped_zero_vectors > 0 {
        errln!("warning: skipped {} zero vectors (cosine similarity undefined; no edges)", report.skipped_zero_vectors);
    }
    if report.negative_weights_clamped > 0 {
        errln!("warning: {} edges of negative cosine got weight 0", report.negative_weights_clamped);
    }
    let total_seconds = start.elapsed().as_secs_f64();
    if args.json {
        let summary = serde_json::json!({
            "input": if args.input.len() == 1 { serde_json::json!(args.input[0]) } else { serde_json::json!(args.input) },
            "output": args.output,
            "build": report,
            "read_seconds": read_seconds,
            "write_seconds": write_seconds,
            "total_seconds": total_seconds,
        });
        outln!("{summary}");
    } else {
        print_summary(&report, &args.output, read_seconds, write_seconds, total_seconds);
    }
    Ok(())
}

/// The embeddings of `--input`: NSL's reader for TFRecord files (all of them, in order), else the
/// samples reader of the one file.
fn read_embeddings(args: &BuildGraphArgs) -> Result<nsl::Dataset> {
    let inputs = &args.input;
    let names = inputs.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ");
    let tfrecord = inputs.iter().filter(|p| nsl::tfrecord::is_tfrecord(p)).count();
    if tfrecord > 0 {
        if tfrecord < inputs.len() {
            bail!("--input mixes TFRecord and other files ({names}); give files of one kind");
        }
        let embedding = args.embedding_column.as_deref().unwrap_or("embedding");
        let (dataset, report) = with_spinner(format!("reading {names}"), || {
            nsl::tfrecord::read_embeddings(inputs, &args.id_column, embedding)
        })
        .with_context(|| format!("reading embeddings from {names}"))?;
        // NSL logs these records and skips them; say so once.
        for (count, what) in [
            (report.skipped_no_id, format!("without the id feature `{}`", args.id_column)),
            (report.skipped_no_embedding, format!("without the embedding feature `{embedding}`")),
            (report.duplicate_ids, "repeating an earlier id (the last embedding of an id is kept)".to_string()),
        ] {
            if count > 0 {
                errln!("warning: {count} of {} records {what}", report.records);
            }
        }
        return Ok(dataset);
    }
    let [input] = inputs.as_slice() else {
        bail!("several --input files ({names}) are read for TFRecord only; merge the other files first")
    };
    let columns = SampleColumns {
        id: args.id_column.clone(),
        features: embedding_columns(input, args.embedding_column.as_deref())?,
        ..SampleColumns::default()
    };
    with_spinner(format!("reading {}", input.display()), || read_samples(input, &columns))
        .with_context(|| format!("reading embeddings from {}", input.display()))
}

/// The feature columns to ask the reader for.
fn embedding_columns(input: &Path, chosen: Option<&str>) -> Result<Vec<String>> {
    if let Some(c) = chosen {
        return Ok(vec![c.to_string()]);
    }
    let names = parquet_columns(input)?;
    Ok(["embedding", "features"]
        .iter()
        .find(|c| names.iter().any(|n| n == *c))
        .map(|c| vec![c.to_string()])
        .unwrap_or_default())
}

/// The top-level column names of a Parquet file (empty for any other file).
fn parquet_columns(input: &Path) -> Result<Vec<String>> {
    if !nsl::io::is_parquet(input).with_context(|| format!("reading {}", input.display()))? {
        return Ok(Vec::new());
    }
    let file = std::fs::File::open(input).with_context(|| format!("opening {}", input.display()))?;
    let builder = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .with_context(|| format!("reading the Parquet schema of {}", input.display()))?;
    Ok(builder.schema().fields().iter().map(|f| f.name().clone()).collect())
}

fn print_summary(r: &BuildReport, output: &Path, read: f64, write: f64, total: f64) {
    // The file is an edge list: samples without an edge are not in it, so `nsl graph stats` of
    // the output counts fewer nodes (those with edges) and a higher mean degree.
    outln!(
        "{} graph over {} samples: {} undirected edges ({} directed), mean degree {:.2} per sample; samples \
         without an edge are not in the file (`nsl graph stats {} --samples …` counts them as isolated)",
        r.mode,
        r.nodes,
        r.edges,
        r.directed_edges,
        r.mean_degree,
        output.display()
    );
    outln!(
        "pairs compared: {} over {} round(s), largest bucket {} rows ({:.1} % of the nodes), {} rechecked in f64",
        r.compared_pairs,
        r.rounds,
        r.largest_bucket,
        100.0 * r.largest_bucket as f64 / r.nodes.max(1) as f64,
        r.rechecked_pairs
    );
    if let Some(rec) = &r.recall {
        match rec.recall {
            Some(x) => outln!(
                "estimated recall {:.4} ({} of {} exact edges of {} sampled nodes)",
                x,
                rec.found_edges,
                rec.exact_edges,
                rec.sampled_nodes
            ),
            None => {
                outln!("estimated recall: undefined (the {} sampled nodes have no exact neighbor)", rec.sampled_nodes)
            }
        }
    }
    outln!(
        "time: read {read:.2} s, build {:.2} s ({} threads), write {write:.2} s, total {total:.2} s -> {}",
        r.seconds,
        r.threads,
        output.display()
    );
}
