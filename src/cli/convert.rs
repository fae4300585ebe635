//! `nsl convert`: any supported samples input → a Parquet samples table or TFRecord of
//! `tf.train.Example`s (and LINQS cites → a graph).

use super::progress::with_spinner;
use super::ColumnArgs;
use anyhow::{bail, Context, Result};
use clap::Args;
use nsl::data::{self, Dataset, IdxOptions, NpyOptions, SampleColumns};
use nsl::graph::{self, NeighborGraph};
use nsl::graph::{read_cites, CitesReport, UnknownIds};
use nsl::io::OutputSet;
use nsl::tfrecord::{self, Compression, FeatureType, WriteOptions};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Flags of `nsl convert`. Give exactly one input: `--content` (LINQS, with optional `--cites`),
/// `--idx-images` (with optional `--idx-labels`), `--csv`, `--parquet`, `--tfrecord`, `--images`
/// or `--image-list`.
#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    nsl convert --content datasets/cora/cora.content.gz --cites datasets/cora/cora.cites.gz --samples cora.parquet --graph cora_graph.parquet\n  \
    nsl convert --idx-images datasets/mnist/train-images-idx3-ubyte.gz --idx-labels datasets/mnist/train-labels-idx1-ubyte.gz --samples mnist.parquet\n  \
    nsl convert --content datasets/cora/cora.content.gz --samples cora.tfr    (NSL's Cora tutorial layout: id, words, label)\n  \
    nsl convert --tfrecord train_examples.tfr --samples train.parquet\n  \
    nsl convert --images photos/ --resize 64x64 --samples photos.parquet    (one subfolder per class)")]
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
    /// Keep byte values (IDX, uint8 arrays, CIFAR) as 0..255 instead of scaling them to [0, 1]
    /// (NSL's tutorials scale).
    #[arg(long)]
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
    /// numpy array of features, `.npy` (float32, float64 or uint8; shape `(n, …)`: items of the
    /// shape after the first axis, `(n, h, w)` → `[1, h, w]`) or `.npz` (see `--features-key`).
    /// Ids are the row numbers (an `.npz` written by nsl carries its `id` strings).
    #[arg(long, value_name = "FILE", help_heading = "Arrays")]
    npy: Option<PathBuf>,
    /// `.npy` of integer labels (1-D, one per row of `--npy`).
    #[arg(long, value_name = "FILE", requires = "npy", conflicts_with = "labels_key", help_heading = "Arrays")]
    labels: Option<PathBuf>,
    /// `.npz` input: the array of features. Default: the only array, else `features`, else `x`.
    #[arg(long, value_name = "KEY", requires = "npy", help_heading = "Arrays")]
    features_key: Option<String>,
    /// `.npz` input: the array of labels (integers). Default: `label` if the archive holds it, else unlabeled.
    #[arg(long, value_name = "KEY", requires = "npy", help_heading = "Arrays")]
    labels_key: Option<String>,
    /// Arrays: items are `(h, w, c)` (Keras' layout): stored as `[c, h, w]`, what the CNN reads.
    #[arg(long, requires = "npy", help_heading = "Arrays")]
    channels_last: bool,
    /// CIFAR-10 (`data_batch_1.bin`…, 3,073-byte records) or CIFAR-100 (`train.bin`, 3,074-byte
    /// records) binary batches, read in order into `[3, 32, 32]` items; class names from
    /// `batches.meta.txt` / `*_label_names.txt` next to them when present.
    #[arg(long, value_name = "FILE", num_args = 1.., help_heading = "Arrays")]
    cifar: Vec<PathBuf>,
    /// CIFAR-100: the fine (100) or coarse (20) labels.
    #[arg(long, value_enum, default_value_t = CifarLabelsArg::Fine, help_heading = "Arrays")]
    cifar_labels: CifarLabelsArg,
    /// Folder of images with one subfolder per class (`DIR/cat/1.png`): PNG, JPEG, BMP, GIF, WebP,
    /// recognized by content. Class names = the subfolder names, sorted; ids = the paths relative
    /// to DIR. Items `[c, h, w]`, pixels / 255 (16-bit: / 65535).
    #[arg(long, value_name = "DIR", help_heading = "Images")]
    images: Option<PathBuf>,
    /// Text file of `path,label` lines (or `path` lines: unlabeled), paths relative to the list's
    /// folder; whole-number labels are label ids, others class names (sorted). Ids = the paths as written.
    #[arg(long, value_name = "FILE", help_heading = "Images")]
    image_list: Option<PathBuf>,
    /// Images: the channels of each item: 1 (gray, Rec. 709 luma), 3 (RGB) or 4 (RGBA).
    /// Default: 1 when every image is gray, else 3 (alpha dropped).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=4), help_heading = "Images")]
    channels: Option<u8>,
    /// Images: one channel (same as `--channels 1`).
    #[arg(long, conflicts_with = "channels", help_heading = "Images")]
    grayscale: bool,
    /// Images: resize every image to WIDTHxHEIGHT (e.g. `32x32`). Default: no resizing; every image
    /// must then have the first image's size.
    #[arg(long, value_name = "WxH", value_parser = parse_size, help_heading = "Images")]
    resize: Option<(u32, u32)>,
    /// Images: the resampling filter of `--resize`.
    #[arg(long, value_enum, default_value_t = FilterArg::Triangle, requires = "resize", help_heading = "Images")]
    resize_filter: FilterArg,
    /// Images: skip (and count) files that cannot be read or decoded. Default: fail on the first, naming it.
    #[arg(long, help_heading = "Images")]
    skip_bad: bool,
    #[command(flatten)]
    columns: ColumnArgs,
    /// Output samples, written atomically: TFRecord of `tf.train.Example`s if the name ends in
    /// `.tfr`/`.tfrecord` (optionally `.gz`), with NSL's tutorial features — `id` (bytes), the
    /// values (`words` unless one `--feature-columns` name is given), `label` (int64 class index)
    /// —; a numpy array if it ends in `.npy` (float32, shape `(n, *item_shape)`: features only) or
    /// `.npz` (arrays `features`, `label` int64, `id` strings; `np.load` reads it without pickle);
    /// else a Parquet samples table.
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

/// `--cifar-labels`' choices.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum CifarLabelsArg {
    /// The 100 fine classes.
    Fine,
    /// The 20 coarse superclasses.
    Coarse,
}

/// `--resize-filter`'s choices.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum FilterArg {
    /// Nearest neighbor.
    Nearest,
    /// Bilinear (Keras' and torchvision's default).
    Triangle,
    /// Catmull-Rom cubic.
    Catmullrom,
    /// Lanczos, window 3.
    Lanczos3,
}

/// Parses `--resize WxH`.
fn parse_size(text: &str) -> Result<(u32, u32), String> {
    let parsed = text.split_once(['x', 'X']).and_then(|(w, h)| Some((w.trim().parse().ok()?, h.trim().parse().ok()?)));
    match parsed {
        Some((w, h)) if w > 0 && h > 0 => Ok((w, h)),
        _ => Err(format!("`{text}`: expected WIDTHxHEIGHT with both at least 1, e.g. 32x32")),
    }
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
        args.images.is_some(),
        args.image_list.is_some(),
        args.npy.is_some(),
        !args.cifar.is_empty(),
    ];
    if inputs.iter().filter(|&&given| given).count() != 1 {
        bail!(
            "give exactly one input: --content, --idx-images, --csv, --parquet, --tfrecord, --images, --image-list, \
             --npy or --cifar"
        );
    }
    if args.no_scale && args.idx_images.is_none() && args.npy.is_none() && args.cifar.is_empty() {
        bail!("--no-scale applies to byte values: --idx-images, --npy (uint8) or --cifar");
    }
    let image_input = args.images.is_some() || args.image_list.is_some();
    if !image_input && (args.channels.is_some() || args.grayscale || args.resize.is_some() || args.skip_bad) {
        bail!("--channels, --grayscale, --resize and --skip-bad apply to image input (--images, --image-list)");
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
    let mut dataset =
        if image_input { read_images(args)? } else { with_spinner("reading samples", || read_input(args, &columns))? };
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
    if let Some(format) = array_output(&args.samples) {
        if dataset.layout().has_tokens() {
            bail!("a numpy array holds dense values only: write the token lists to a Parquet --samples table");
        }
        if format == "npy" {
            if dataset.labels().is_some() || dataset.ids().iter().enumerate().any(|(i, id)| *id != i.to_string()) {
                errln!(
                    "note: a .npy holds the features only (ids and labels are not written: an .npz --samples keeps \
                     them as the arrays `id` and `label`)"
                );
            }
            with_spinner("writing samples", || data::write_npy(&dataset, &samples_out))
        } else {
            with_spinner("writing samples", || data::write_npz(&dataset, &samples_out))
        }
        .with_context(|| format!("writing --samples {}", args.samples.display()))?;
    } else if tfrecord_output {
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
        ("--images", &args.images),
        ("--image-list", &args.image_list),
        ("--npy", &args.npy),
        ("--labels", &args.labels),
    ]
    .into_iter()
    .filter_map(|(flag, path)| path.as_deref().map(|p| (flag, p)))
    .chain(args.tfrecord.iter().map(|p| ("--tfrecord", p.as_path())))
    .chain(args.cifar.iter().map(|p| ("--cifar", p.as_path())))
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
    } else if let Some(npy) = &args.npy {
        let options = NpyOptions { scale: !args.no_scale, channels_last: args.channels_last };
        if is_npz(npy)? {
            data::read_npz(npy, args.features_key.as_deref(), args.labels_key.as_deref(), &options)?
        } else {
            if args.features_key.is_some() || args.labels_key.is_some() {
                bail!("--features-key and --labels-key name arrays of an .npz: {} is a .npy", npy.display());
            }
            data::read_npy(npy, args.labels.as_deref(), &options)?
        }
    } else if !args.cifar.is_empty() {
        let labels = match args.cifar_labels {
            CifarLabelsArg::Fine => data::CifarLabels::Fine,
            CifarLabelsArg::Coarse => data::CifarLabels::Coarse,
        };
        data::read_cifar(&args.cifar, &data::CifarOptions { labels, scale: !args.no_scale })?
    } else {
        bail!("no input given");
    };
    Ok(dataset)
}

/// Whether `path` is a zip archive (`.npz`) rather than a `.npy`: by its first bytes, else its name.
fn is_npz(path: &Path) -> Result<bool> {
    use std::io::Read;
    let mut magic = [0u8; 4];
    let mut file = std::fs::File::open(path).with_context(|| format!("--npy {}", path.display()))?;
    let n = file.read(&mut magic).with_context(|| format!("--npy {}", path.display()))?;
    Ok(magic[..n] == *b"PK\x03\x04" || (n < 4 && path.extension().is_some_and(|e| e.eq_ignore_ascii_case("npz"))))
}

/// The array format `path` names by its extension, if any.
fn array_output(path: &Path) -> Option<&'static str> {
    match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
        "npy" => Some("npy"),
        "npz" => Some("npz"),
        _ => None,
    }
}

/// Reads `--images` or `--image-list` with a progress bar, and reports what was left out.
fn read_images(args: &ConvertArgs) -> Result<Dataset> {
    let source = match (&args.images, &args.image_list) {
        (Some(dir), _) => data::ImageSource::Folder(dir),
        (None, Some(list)) => data::ImageSource::List(list),
        (None, None) => bail!("no image input given"),
    };
    let config = data::ImageConfig {
        channels: match (args.grayscale, args.channels) {
            (true, _) | (false, Some(1)) => data::Channels::Gray,
            (false, Some(3)) => data::Channels::Rgb,
            (false, Some(4)) => data::Channels::Rgba,
            (false, Some(n)) => bail!("--channels {n}: give 1, 3 or 4"),
            (false, None) => data::Channels::Auto,
        },
        resize: args.resize,
        filter: match args.resize_filter {
            FilterArg::Nearest => data::ResizeFilter::Nearest,
            FilterArg::Triangle => data::ResizeFilter::Triangle,
            FilterArg::Catmullrom => data::ResizeFilter::CatmullRom,
            FilterArg::Lanczos3 => data::ResizeFilter::Lanczos3,
        },
        skip_bad: args.skip_bad,
    };
    let bar = super::progress::WorkBar::new();
    let read = data::read_images(source, &config, &|done: usize, total: usize| {
        bar.update("decoding images", done as u64, total as u64)
    });
    bar.finish();
    let (dataset, report) = read?;
    for (path, reason) in report.skipped.iter().take(10) {
        errln!("warning: skipped {}: {reason}", path.display());
    }
    if !report.skipped.is_empty() {
        errln!("warning: skipped {} images that could not be read or decoded (--skip-bad)", report.skipped.len());
    }
    if !report.ignored.is_empty() {
        errln!(
            "note: ignored {} files that are not images in a class subfolder (e.g. {})",
            report.ignored.len(),
            report.ignored[0].display()
        );
    }
    if !report.empty_classes.is_empty() {
        errln!(
            "warning: {} class folders hold no image (their labels are kept): {}",
            report.empty_classes.len(),
            report.empty_classes.join(", ")
        );
    }
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
