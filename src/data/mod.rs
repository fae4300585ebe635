//! Samples: the in-memory [`Dataset`] and the readers and writers that fill it.
//!
//! Every reader returns the same `Dataset` (ids, a dense `f32` feature matrix with the shape of one
//! item, optional labels and class names), so everything downstream is format-agnostic:
//!
//! | format | reader |
//! |---|---|
//! | IDX (MNIST), gzipped or not | [`read_idx`] |
//! | LINQS `.content` (Cora's papers; the `.cites` links are a graph: [`read_cites`](crate::graph::read_cites)) | [`read_content`] |
//! | Parquet samples table | [`read_parquet_samples`] (and [`write_samples`]) |
//! | CSV | [`read_csv`] |
//! | numpy `.npy` / `.npz` (and [`write_npy`], [`write_npz`]) | [`read_npy`], [`read_npz`] |
//! | CIFAR-10/100 binary batches | [`read_cifar`] |
//! | folders or lists of images (PNG, JPEG, BMP, GIF, WebP) | [`read_images`] |
//!
//! [`read_samples`] picks the reader from the file's content. Splits into train/test: [`split`].

mod csv;
mod dataset;
mod idx;
mod images;
mod layout;
mod linqs;
mod npy;
mod parquet;
mod split;
mod targets;

pub use csv::read_csv;
pub use dataset::{Dataset, FeatureBuffer, Targets};
pub use idx::{read_idx, IdxOptions};
pub use images::{read_images, Channels, ImageConfig, ImageReport, ImageSource, ResizeFilter, IMAGE_EXTENSIONS};
pub use layout::{
    multi_hot_to_tokens, token_ids, FeatureGroup, FeatureKind, FeatureLayout, FEATURE_LAYOUT_KEY, MAX_VOCAB, PAD,
};
pub use linqs::read_content;
pub use npy::{read_cifar, read_npy, read_npz, write_npy, write_npz, CifarLabels, CifarOptions, NpyOptions};
pub use parquet::{
    read_samples as read_parquet_samples, write_samples, CLASS_NAMES_KEY, FORMAT_VERSION_KEY, ITEM_SHAPE_KEY,
};
// Arrow column helpers the packed-table stream (`neighbors::PackedParts`) reads with too.
pub(crate) use parquet::{
    cast_to, is_float_list, is_integer, list_spans, open_parquet, parse_class_names, parse_item_shape,
    reject_null_elements, reject_nulls,
};
pub use split::{split, split_by_table, split_indices, SplitConfig, SplitMethod, TablePart, TableSplit};
pub use targets::{
    attach_targets, attach_weights, has_column, read_multilabel, read_samples_with_targets, read_values, read_weights,
    MultiLabels, TargetKind,
};

use crate::io::{is_parquet, open_maybe_gz, Location, ParquetWriteError};
use npy::NPY_MAGIC;
use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};

/// What can go wrong while reading, validating or writing samples. Every variant that comes from a
/// file names it, and where possible the line, row or column.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// The file could not be opened, read or written (this includes a truncated gzip stream).
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file's content is malformed or invalid at `location`.
    #[error("{}{location}: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Where in the file.
        location: Location,
        /// What is wrong, naming the offending values.
        message: String,
    },
    /// A Parquet file could not be built or encoded (I/O errors are [`DataError::Io`]).
    #[error("{}: {source}", path.display())]
    Parquet {
        /// The file.
        path: PathBuf,
        /// The Arrow or Parquet error.
        #[source]
        source: ParquetWriteError,
    },
    /// In-memory data that does not form a valid dataset (no file involved).
    #[error("invalid dataset: {0}")]
    Dataset(String),
}

impl DataError {
    /// Shorthand for [`DataError::Invalid`].
    pub fn invalid(path: impl Into<PathBuf>, location: Location, message: impl Into<String>) -> Self {
        DataError::Invalid { path: path.into(), location, message: message.into() }
    }

    /// Shorthand for [`DataError::Io`].
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io { path: path.into(), source }
    }

    /// [`DataError::Io`] for an I/O error of [`crate::io::write_parquet`], else
    /// [`DataError::Parquet`]; both name `path`.
    pub(crate) fn parquet_write(path: &Path, error: ParquetWriteError) -> Self {
        match error {
            ParquetWriteError::Io(source) => DataError::io(path, source),
            source => DataError::Parquet { path: path.to_path_buf(), source },
        }
    }

    /// Attaches a file to an in-memory [`DataError::Dataset`] error; other variants are returned
    /// unchanged.
    pub fn in_file(self, path: impl Into<PathBuf>) -> Self {
        match self {
            DataError::Dataset(message) => DataError::Invalid { path: path.into(), location: Location::File, message },
            other => other,
        }
    }
}

/// Which columns of a table (Parquet or CSV) hold what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleColumns {
    /// The id column (utf8 or integer). Default `id`.
    pub id: String,
    /// The feature columns, in row order. Parquet: scalar numeric columns (gathered into one dense
    /// group), float list columns (a dense group each) and integer list columns (token ids, a token
    /// group each; see [`FeatureLayout`]); CSV: scalar numeric columns. Empty means: the file's
    /// `nsl.feature_layout` groups, else `features` if it exists, else every numeric column other
    /// than the id and label, else the only list column. Default empty.
    pub features: Vec<String>,
    /// The label column (integer or string); a missing column means no labels. Default `label`.
    pub label: String,
    /// The vocabulary size of every token group (ids must be below it). Default `None`: the
    /// file's `nsl.feature_layout`, else the largest id + 1.
    pub vocab: Option<usize>,
    /// Columns that are never features, even when `features` is empty and every numeric column
    /// is taken (a weight column). Default empty.
    pub exclude: Vec<String>,
    /// A table without the `id` column gets its row numbers (`0`, `1`, …) as ids, as IDX input
    /// does: for samples no graph refers to. Default false (the id column is required).
    pub row_ids: bool,
}

impl Default for SampleColumns {
    fn default() -> Self {
        SampleColumns {
            id: "id".into(),
            features: Vec::new(),
            label: "label".into(),
            vocab: None,
            exclude: Vec::new(),
            row_ids: false,
        }
    }
}

/// Reads samples from any supported file, recognized by content: Parquet (`PAR1` magic,
/// [`crate::io::is_parquet`]), IDX (its
/// magic number, gzipped or not; labels are not attached), LINQS `.content` (by extension
/// `.content`/`.content.gz`), else CSV. A file without a magic number is read as the format its
/// name says (`.parquet`, `idx`/`-ubyte` in the name), so that a damaged or empty file gets that
/// format's message; a file starting with NUL bytes that is none of these is refused (not read as CSV).
///
/// IDX is recognized by its first four (decompressed) bytes: `0x00 0x00`, a known type byte and 1 to
/// 4 dimensions. A text file never starts with two NUL bytes, so a CSV is not mistaken for IDX; a file
/// with an IDX magic whose size product disagrees with its length is reported by the IDX reader
/// (as truncated or with trailing bytes) rather than being parsed as CSV.
///
/// `columns` applies to Parquet and CSV; IDX and LINQS have fixed layouts.
///
/// # Errors
/// The reader's [`DataError`], naming the file and the row, line or column.
pub fn read_samples(path: &Path, columns: &SampleColumns) -> Result<Dataset, DataError> {
    read_samples_as(path, columns, true)
}

/// [`read_samples`] for samples whose label column holds no class labels: in a Parquet or CSV
/// table the column `columns.label` is left out (neither labels nor a feature), as for the pool
/// and unlabeled samples of a regression or multilabel run (whose label column holds floats or
/// lists, or nothing), and for the features of [`read_samples_with_targets`]. IDX and LINQS files
/// keep their labels.
///
/// # Errors
/// As [`read_samples`].
pub fn read_samples_without_labels(path: &Path, columns: &SampleColumns) -> Result<Dataset, DataError> {
    read_samples_as(path, columns, false)
}

fn read_samples_as(path: &Path, columns: &SampleColumns, class_labels: bool) -> Result<Dataset, DataError> {
    // Outputs of a set whose commit a kill interrupted become whole before they are read.
    crate::io::finish_pending_commits(path).map_err(|e| DataError::io(path, e))?;
    if is_parquet(path).map_err(|e| DataError::io(path, e))? {
        return parquet::read_samples_as(path, columns, class_labels);
    }
    let mut magic = [0u8; 4];
    let len = read_prefix(path, &mut magic, true)?;
    let name = path.file_name().map(|n| n.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
    // Magic bytes first; then, for files without one, the extension names the format the user
    // meant, so that a damaged or empty file gets that format's message (not CSV's).
    // numpy arrays: `.npy` by its magic; `.npz` (a zip) by its magic or name: the features from
    // the one `--feature-columns` name (else the only array, `features` or `x`), the labels from
    // the label column's name when the archive holds it. CIFAR batches have no magic: by name.
    if len == 4 && magic == NPY_MAGIC[..4] {
        return npy::read_npy(path, None, &NpyOptions::default());
    }
    if (len == 4 && magic == *b"PK\x03\x04") || name.ends_with(".npz") {
        let features = match columns.features.as_slice() {
            [one] => Some(one.as_str()),
            _ => None,
        };
        let labels = match class_labels {
            true => npy::LabelsKey::IfPresent(&columns.label),
            false => npy::LabelsKey::Skip,
        };
        return npy::read_npz_as(path, features, labels, &NpyOptions::default());
    }
    if name.ends_with(".bin") {
        return npy::read_cifar(&[path.to_path_buf()], &CifarOptions::default());
    }
    let idx_name = name.contains("idx") || name.contains("-ubyte");
    if (len == 4 && idx::is_idx_magic(&magic)) || (len >= 2 && magic[..2] == [0, 0]) || idx_name {
        return idx::read_idx(path, None, &idx::IdxOptions::default());
    }
    if name.ends_with(".parquet") || name.ends_with(".pq") {
        return parquet::read_samples_as(path, columns, class_labels);
    }
    if name.ends_with(".content") || name.ends_with(".content.gz") {
        return linqs::read_content(path);
    }
    if magic[..len].contains(&0) {
        return Err(DataError::invalid(
            path,
            Location::File,
            format!(
                "not a samples file: it starts with the bytes {:02x?}, which are not a Parquet (`PAR1`), IDX \
                 (`00 00 TT NN`) or text (CSV) header",
                &magic[..len]
            ),
        ));
    }
    csv::read_csv_as(path, columns, class_labels)
}

/// Fills `buf` with the first bytes of `path` (decompressed when `gunzip` and the file is gzipped)
/// and returns how many were available (less than `buf.len()` only for a short file).
fn read_prefix(path: &Path, buf: &mut [u8], gunzip: bool) -> Result<usize, DataError> {
    let mut reader: Box<dyn Read> = if gunzip {
        Box::new(open_maybe_gz(path).map_err(|e| DataError::io(path, e))?)
    } else {
        Box::new(std::fs::File::open(path).map_err(|e| DataError::io(path, e))?)
    };
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(k) => filled += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            // A gzip stream too short to yield even a few bytes: let the reader that follows
            // report it with its full context.
            Err(_) => break,
        }
    }
    Ok(filled)
}

/// Reads a whole text file (CSV, TSV, LINQS, split tables) into memory, decompressing it when it
/// is gzipped. A gzip stream that ends early or is corrupt is reported as such, with the number of
/// bytes it yielded before failing.
///
/// What is read is bounded before the whole file is in memory: a NUL byte (no text file has one:
/// a binary file, `/dev/zero`) or a line longer than [`crate::io::MAX_LINE_BYTES`] (64 MiB) stops
/// the read with an error naming the byte or line, and so does a file larger than the available
/// memory.
///
/// # Errors
/// [`DataError::Io`] naming the file, or [`DataError::Invalid`] for a NUL byte or an overlong line.
fn read_file(path: &Path) -> Result<Vec<u8>, DataError> {
    read_bounded(path, true, crate::io::available_memory())
}

/// Reads at most `max` bytes of a (possibly gzipped) file, checking text as [`read_file`] when
/// `text`; a file with more than `max` bytes is an error.
fn read_bounded(path: &Path, text: bool, max: u64) -> Result<Vec<u8>, DataError> {
    let mut reader = open_maybe_gz(path).map_err(|e| DataError::io(path, e))?;
    let mut bytes = Vec::new();
    // Where the current line starts in `bytes`.
    let mut line_start = 0usize;
    loop {
        let chunk = match reader.fill_buf() {
            Ok(chunk) => chunk,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                // `bytes` holds what was read before the error, so its length says where it failed.
                let message = if is_gzip(path) {
                    format!("gzip stream is truncated or corrupt after {} decompressed bytes: {e}", bytes.len())
                } else {
                    format!("read failed after {} bytes: {e}", bytes.len())
                };
                return Err(DataError::io(path, std::io::Error::new(e.kind(), message)));
            }
        };
        if chunk.is_empty() {
            return Ok(bytes);
        }
        let n = chunk.len();
        if (bytes.len() + n) as u64 > max {
            let message = format!(
                "larger than the {max} bytes that can be read (the memory available, or what an IDX header \
                 announces): an endless file such as /dev/zero?"
            );
            return Err(DataError::io(path, std::io::Error::new(std::io::ErrorKind::InvalidData, message)));
        }
        if text {
            if let Some(at) = chunk.iter().position(|&b| b == 0) {
                return Err(DataError::invalid(
                    path,
                    Location::Byte((bytes.len() + at) as u64),
                    "NUL byte: this is not a text file (a binary file or a device such as /dev/zero?)",
                ));
            }
            if let Some(i) = chunk.iter().rposition(|&b| b == b'\n') {
                line_start = bytes.len() + i + 1;
            }
            if bytes.len() + n - line_start > crate::io::MAX_LINE_BYTES {
                let line = bytes.iter().filter(|&&b| b == b'\n').count() + 1;
                return Err(DataError::invalid(
                    path,
                    Location::Line(line),
                    format!("line longer than the limit of {} bytes (a binary file?)", crate::io::MAX_LINE_BYTES),
                ));
            }
        }
        bytes.extend_from_slice(chunk);
        reader.consume(n);
    }
}

/// Whether the file starts with the gzip magic bytes.
fn is_gzip(path: &Path) -> bool {
    let mut magic = [0u8; 2];
    matches!(read_prefix(path, &mut magic, false), Ok(2)) && magic == [0x1f, 0x8b]
}

/// Sorted distinct class names of `labels` and each label's index into them.
///
/// The names are sorted by their UTF-8 bytes (Rust's `str` order, which is also Python's
/// `sorted()` order for strings), so Cora's labels become `Case_Based = 0, Genetic_Algorithms = 1, …`
/// exactly as in NSL's preprocessing.
fn index_class_names<S: AsRef<str>>(labels: &[S]) -> (Vec<String>, Vec<u32>) {
    let mut names: Vec<&str> = labels.iter().map(AsRef::as_ref).collect();
    names.sort_unstable();
    names.dedup();
    let index: std::collections::HashMap<&str, u32> = names.iter().enumerate().map(|(i, &n)| (n, i as u32)).collect();
    // Every label is among `names`, which were built from the labels themselves.
    let indices = labels.iter().map(|l| index[l.as_ref()]).collect();
    (names.into_iter().map(str::to_owned).collect(), indices)
}
