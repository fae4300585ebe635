//! `nsl convert`: any supported samples input → a Parquet samples table or TFRecord of
//! `tf.train.Example`s (and LINQS cites → a graph).

use super::progress::with_spinner;
use super::ColumnArgs;
use anyhow::{bail, Context, Result};
use clap::Args;
use nsl::data::{self, Dataset, IdxOptions, SampleColumns};
use nsl::graph::{self, NeighborGraph};
use nsl::graph::{read_cites, CitesReport, UnknownIds};
use nsl::io::OutputSet;
use nsl::tfrecord::{self, Compression, FeatureType, WriteOptions};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Flags of `nsl convert`. Give exactly one input: `--content` (LINQS, with optional `--cites`),
/// `--idx-images` (with optional `--idx-labels`), `--csv`, `--parquet` or `--tfrecord`.
#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    nsl convert --content datasets/cora/cora.content.gz --cites datasets/cora/cora.cites.gz --samples cora.parquet --graph cora_graph.parquet\n  \
    nsl convert --idx-images datasets/mnist/train-images-idx3-ubyte.gz --idx-labels datasets/mnist/train-labels-idx1-ubyte.gz --samples mnist.parquet\n  \
    nsl convert --content datasets/cora/cora.content.gz --samples cora.tfr    (NSL's Cora tutorial layout: id, words, label)\n  \
    nsl convert --tfrecord train_examples.tfr --samples train.parquet")]
pub struct ConvertArgs {
    /// LINQS `.content` file (`<id> <features…> <label>` per line; gzipped or not).
    #[arg(long, value_name = "FILE")]
    content: Option<PathBuf>,
    /// LINQS `.cites` file (`<cited> <citing>` per line): becomes an undirected graph of weight-1 edges.
    /// Needs `--content` and `--graph`.
    #[arg(long, value_name = "FILE", requires_all = ["content", "graph"])]
    cites: Option<PathBuf>,
    /// Skip (and count) cites lines that name a paper missing from `--content`, instead of failing.
    /// Default: fail on the first such line.
    #[arg(long, requires = "cites")]
    skip_unknown: bool,
    /// IDX images file (MNIST format; gzipped or not).
    #[arg(long, value_name = "FILE")]
    idx_images: Option<PathBuf>,
    /// IDX labels file matching `--idx-images`.
    #[arg(long, value_name = "FILE", requires = "idx_images")]
    idx_labels: Option<PathBuf>,
    /// Keep IDX byte values as 0..255 instead of scaling them to [0, 1] (NSL's tutorials scale).
    #[arg(long, requires = "idx_images")]
    no_scale: bool,
    /// CSV file with a header row: an id column, feature columns, optionally a label column.
    #[arg(long, value_name = "FILE")]
    csv: Option<PathBuf>,
    /// Parquet samples table (e.g. to re-select columns or re-validate it).
    #[arg(long, value_name = "FILE")]
    parquet: Option<PathBuf>,
    /// TFRecord files of `tf.train.Example`s (gzipped or not), read in order: the id from
    /// `--id-column` (default `id`, `bytes_list[0]`), the values from `--feature-columns` (default:
    /// the first of `words`, `features`, `embedding`; float or int64 lists, concatenated), the
    /// label from `--label-column` (default `label`; an int64 class index or a bytes class name).
    /// Other features (e.g. NSL's `NL_nbr_*`) are ignored; a repeated id keeps its last record.
    #[arg(long, value_name = "FILE", num_args = 1..)]
    tfrecord: Vec<PathBuf>,
    #[command(flatten)]
    columns: ColumnArgs,
    /// Output samples, written atomically: TFRecord of `tf.train.Example`s if the name ends in
    /// `.tfr`/`.tfrecord` (optionally `.gz`), with NSL's tutorial features — `id` (bytes), the
    /// values (`words` unless one `--feature-columns` name is given), `label` (int64 class index)
    /// — else a Parquet samples table.
    #[arg(long, value_name = "FILE")]
    samples: PathBuf,
    /// TFRecord output: how the values are stored. `auto` (default) writes an int64 list when every
    /// value is an integer (Cora's multi-hot words, which NSL's tutorial parses as int64), else a
    /// float list.
    #[arg(long, value_enum, default_value_t = FeatureTypeArg::Auto)]
    feature_type: FeatureTypeArg,
    /// TFRecord output: gzip it (TensorFlow's `compression_type="GZIP"`). Default: only when the
    /// name ends in `.gz`.
    #[arg(long)]
    gzip: bool,
    /// Output graph for `--cites`: Parquet (`.parquet`) or NSL TSV (any other extension).
    #[arg(long, value_name = "FILE")]
    graph: Option<PathBuf>,
    /// Write each sample's non-zero feature columns as a list of token ids (`list<int64>` column
    /// `words`, vocabulary = the feature width; Parquet output only): Cora's words as a token list,
    /// for `nsl train --model bow`. Default: keep the dense features.
    #[arg(long)]
    tokens: bool,
    /// Print the summary as JSON on standard output.
    #[arg(long)]
    json: bool,
}

/// `--feature-type`'s choices.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum FeatureTypeArg {
    /// int64 when every value is an integer, else float.
    Auto,
    /// float_list.
    Float,
    /// int64_list (every value must be an integer).
    Int64,
}

/// Reads samples from any file nsl reads, TFRecord of `tf.train.Example`s included (recognized by
/// its extension or its content): what every subcommand that reads samples calls.
///
/// # Errors
/// The reader's error, naming the file and the record, row or line.
pub(super) fn read_samples(path: &Path, columns: &SampleColumns) -> Result<Dataset> {
    read_samples_for(path, columns, true)
}

/// [`read_samples`] for samples whose label column is not read as class labels when
/// `class_labels` is false (pool, unlabeled or predicted samples of a regression or multilabel
/// run: the column holds floats or lists, or is absent): [`nsl::run::read_samples_for`].
///
/// # Errors
/// The reader's error, naming the file and the record, row or line.
pub(super) fn read_samples_for(path: &Path, columns: &SampleColumns, class_labels: bool) -> Result<Dataset> {
    let mut notes = Vec::new();
    let samples = nsl::run::read_samples_for(path, columns, class_labels, &mut notes);
    for note in notes {
        errln!("warning: {note}");
    }
    samples.map_err(super::run_error)
}

/// [`read_samples`] for a command that needs samples to work on (`split`, `pack-nbrs`, `graph
/// stats --samples`, `graph propagate`): a table without rows is an error naming the file and
/// `what` the command would have done, not an empty output or an empty statistic.
///
/// # Errors
/// The reader's error, or "no samples (0 rows)".
pub(super) fn read_nonempty(path: &Path, columns: &SampleColumns, what: &str) -> Result<Dataset> {
    let dataset = read_samples(path, columns)?;
    if dataset.is_empty() {
        bail!("{}: the table has no samples (0 rows): nothing to {what}", path.display());
    }
    Ok(dataset)
}

/// What `nsl convert` produced.
#[derive(Serialize)]
struct Summary {
    samples: PathBuf,
    rows: usize,
    dim: usize,
    item_shape: Vec<usize>,
    /// Token groups (`--tokens`): `(name, vocabulary, shortest list, longest list)`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    token_groups: Vec<TokenGroupSummary>,
    classes: Option<usize>,
    graph: Option<GraphSummary>,
}

/// A token group of the converted samples: its lists' lengths vary by row.
#[derive(Serialize)]
struct TokenGroupSummary {
    name: String,
    vocab: usize,
    min_len: usize,
    max_len: usize,
}

/// The token groups of `dataset` with the shortest and longest id list of each.
fn token_groups(dataset: &data::Dataset) -> Vec<TokenGroupSummary> {
    let features = dataset.features();
    dataset
        .layout()
        .offsets()
        .filter_map(|(start, group)| match group.kind {
            data::FeatureKind::Tokens { max_len, vocab } => {
                let lengths = features
                    .rows()
                    .into_iter()
                    .map(|row| data::token_ids(row.iter().skip(start).take(max_len).copied()).count());
                let (min, max) = lengths.fold((usize::MAX, 0), |(lo, hi), n| (lo.min(n), hi.max(n)));
                Some(TokenGroupSummary { name: group.name.clone(), vocab, min_len: min.min(max), max_len: max })
            }
            _ => None,
        })
        .collect()
}

#[derive(Serialize)]
struct GraphSummary {
    path: PathBuf,
    nodes: usize,
    directed_edges: usize,
    links: usize,
    skipped_unknown: usize,
    duplicate_links: usize,
    self_loops: usize,
}

/// Runs `nsl convert`.
pub fn run(args: &ConvertArgs) -> Result<()> {
    let inputs = [
        args.content.is_some(),
        args.idx_images.is_some(),
        args.csv.is_some(),
        args.parquet.is_some(),
        !args.tfrecord.is_empty(),
    ];
    if inputs.iter().filter(|&&given| given).count() != 1 {
        bail!("give exactly one input: --content, --idx-images, --csv, --parquet or --tfrecord");
    }
    let tfrecord_output = tfrecord::has_tfrecord_extension(&args.samples);
    if args.gzip && !tfrecord_output {
        bail!("--gzip applies to TFRecord output (a --samples name ending in .tfr or .tfrecord)");
    }
    if args.graph.is_some() && args.cites.is_none() {
        bail!("--graph needs --cites (only LINQS input carries a graph)");
    }
    check_paths(args)?;
    let columns = args.columns.to_columns();
    let mut dataset = with_spinner("reading samples", || read_input(args, &columns))?;
    if args.tokens {
        dataset = data::multi_hot_to_tokens(&dataset, "words").context("--tokens")?;
    }
    if tfrecord_output && dataset.layout().has_tokens() {
        bail!("TFRecord output holds dense values only: write the token lists to a Parquet --samples table");
    }
    if dataset.is_empty() {
        errln!("warning: the input has no samples: the samples table will have 0 rows");
    }
    // The samples and the graph become visible together (or not at all).
    let mut outputs = OutputSet::new();
    let samples_out = outputs.add(&args.samples).with_context(|| format!("--samples {}", args.samples.display()))?;

    let graph = match (&args.cites, &args.graph) {
        (Some(cites), Some(out)) => {
            let unknown = if args.skip_unknown { UnknownIds::Skip } else { UnknownIds::Error };
            let known = |id: &str| dataset.position(id).is_some();
            let (mut g, report) = with_spinner("reading cites", || read_cites(cites, &known, unknown))?;
            if report.skipped_unknown > 0 {
                errln!("warning: skipped {} cites lines naming unknown papers", report.skipped_unknown);
            }
            g.set_provenance(format!("nsl convert --cites {}", cites.display()));
            let graph_out = outputs.add(out).with_context(|| format!("--graph {}", out.display()))?;
            with_spinner("writing graph", || graph::write_graph(&g, &graph_out))
                .with_context(|| format!("writing --graph {}", out.display()))?;
            Some(graph_summary(out, &g, &report))
        }
        _ => None,
    };
    if tfrecord_output {
        let options = write_options(args, &columns);
        with_spinner("writing samples", || tfrecord::write_samples(&dataset, &samples_out, &options))
            .with_context(|| format!("writing --samples {}", args.samples.display()))?;
    } else {
        with_spinner("writing samples", || data::write_samples(&dataset, &samples_out))
            .with_context(|| format!("writing --samples {}", args.samples.display()))?;
    }
    outputs.commit()?;

    let summary = Summary {
        samples: args.samples.clone(),
        rows: dataset.len(),
        dim: dataset.dim(),
        item_shape: dataset.item_shape().to_vec(),
        token_groups: token_groups(&dataset),
        classes: dataset.num_classes(),
        graph,
    };
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_summary(&summary);
    }
    Ok(())
}

/// Usage errors: two outputs naming one file, or an output naming an input.
fn check_paths(args: &ConvertArgs) -> Result<()> {
    let mut outputs = vec![("--samples", args.samples.as_path())];
    outputs.extend(args.graph.as_deref().map(|g| ("--graph", g)));
    let inputs: Vec<(&str, &Path)> = [
        ("--content", &args.content),
        ("--cites", &args.cites),
        ("--idx-images", &args.idx_images),
        ("--idx-labels", &args.idx_labels),
        ("--csv", &args.csv),
        ("--parquet", &args.parquet),
    ]
    .into_iter()
    .filter_map(|(flag, path)| path.as_deref().map(|p| (flag, p)))
    .chain(args.tfrecord.iter().map(|p| ("--tfrecord", p.as_path())))
    .collect();
    nsl::io::check_paths(&outputs, &inputs)?;
    Ok(())
}

fn read_input(args: &ConvertArgs, columns: &SampleColumns) -> Result<Dataset> {
    let dataset = if let Some(content) = &args.content {
        data::read_content(content)?
    } else if let Some(images) = &args.idx_images {
        data::read_idx(images, args.idx_labels.as_deref(), &IdxOptions { scale: !args.no_scale })?
    } else if let Some(csv) = &args.csv {
        data::read_csv(csv, columns)?
    } else if let Some(parquet) = &args.parquet {
        data::read_parquet_samples(parquet, columns)?
    } else if !args.tfrecord.is_empty() {
        let (dataset, report) = tfrecord::read_samples(&args.tfrecord, columns)?;
        if report.duplicate_ids > 0 {
            errln!("warning: {} records repeat an earlier id (the last one is kept, as NSL)", report.duplicate_ids);
        }
        dataset
    } else {
        bail!("no input given");
    };
    Ok(dataset)
}

/// The TFRecord feature names and encoding: NSL's tutorial names unless the column flags say otherwise.
fn write_options(args: &ConvertArgs, columns: &SampleColumns) -> WriteOptions {
    let defaults = WriteOptions::default();
    let name = |name: &std::ffi::OsStr| name.to_string_lossy().to_ascii_lowercase();
    WriteOptions {
        id: columns.id.clone(),
        features: match columns.features.as_slice() {
            [one] => one.clone(),
            _ => defaults.features,
        },
        label: columns.label.clone(),
        feature_type: match args.feature_type {
            FeatureTypeArg::Auto => FeatureType::Auto,
            FeatureTypeArg::Float => FeatureType::Float,
            FeatureTypeArg::Int64 => FeatureType::Int64,
        },
        compression: if args.gzip || args.samples.file_name().is_some_and(|n| name(n).ends_with(".gz")) {
            Compression::Gzip
        } else {
            Compression::None
        },
    }
}

fn graph_summary(path: &std::path::Path, g: &NeighborGraph, report: &CitesReport) -> GraphSummary {
    GraphSummary {
        path: path.to_path_buf(),
        nodes: g.node_count(),
        directed_edges: g.edge_count(),
        links: report.links,
        skipped_unknown: report.skipped_unknown,
        duplicate_links: report.duplicate_links,
        self_loops: report.self_loops,
    }
}

fn print_summary(s: &Summary) {
    let classes = s.classes.map_or("unlabeled".to_string(), |c| format!("{c} classes"));
    match s.token_groups.as_slice() {
        [] => outln!(
            "samples: {} rows × {} features (item shape {:?}), {classes} → {}",
            s.rows,
            s.dim,
            s.item_shape,
            s.samples.display()
        ),
        groups => {
            let lists: Vec<String> = groups
                .iter()
                .map(|g| {
                    format!("`{}`: token lists of {}–{} ids (vocabulary {})", g.name, g.min_len, g.max_len, g.vocab)
                })
                .collect();
            outln!("samples: {} rows, {}, {classes} → {}", s.rows, lists.join("; "), s.samples.display())
        }
    }
    if let Some(g) = &s.graph {
        outln!(
            "graph:   {} nodes, {} undirected links ({} directed edges) → {}",
            g.nodes,
            g.links,
            g.directed_edges,
            g.path.display()
        );
        if g.duplicate_links > 0 || g.self_loops > 0 {
            outln!("         ({} duplicate links merged, {} self-loops)", g.duplicate_links, g.self_loops);
        }
    }
}
