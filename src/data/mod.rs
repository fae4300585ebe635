//! Samples: the in-memory [`Dataset`] and the readers and writers that fill it.
//!
//! Every reader returns the same `Dataset` (ids, a dense `f32` feature matrix with the shape of one
//! item, optional labels and class names), so everything downstream is format-agnostic:
//!
//! | format | reader |
//! |---|---|
//! | IDX (MNIST), gzipped or not | [`idx::read_idx`] |
//! | LINQS `.content` + `.cites` (Cora) | [`linqs::read_linqs`] |
//! | Parquet samples table | [`parquet::read_samples`] (and [`parquet::write_samples`]) |
//! | CSV | [`csv::read_csv`] |
//!
//! Splits into train/test live in [`split`].

pub mod csv;
mod dataset;
pub mod idx;
pub mod linqs;
pub mod parquet;
pub mod split;

pub use dataset::Dataset;

use crate::io::Location;
use std::path::PathBuf;

/// What can go wrong while reading, validating or writing samples. Every variant that comes from a
/// file names it, and where possible the line, row or column.
#[derive(Debug, thiserror::Error)]
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
    /// The feature columns: one list column (e.g. `features` or `embedding`), or several scalar
    /// numeric columns taken in the given order. Empty means: `features` if it exists, else every
    /// numeric column other than the id and label. Default empty.
    pub features: Vec<String>,
    /// The label column (integer or string); a missing column means no labels. Default `label`.
    pub label: String,
}

impl Default for SampleColumns {
    fn default() -> Self {
        SampleColumns { id: "id".into(), features: Vec::new(), label: "label".into() }
    }
}

/// Reads samples from any supported file, recognized by content: Parquet (`PAR1` magic), IDX (its
/// magic number, gzipped or not; labels are not attached), LINQS `.content` (by extension
/// `.content`/`.content.gz`), else CSV.
///
/// # Errors
/// The reader's [`DataError`], naming the file and the row, line or column.
pub fn read_samples(path: &std::path::Path, columns: &SampleColumns) -> Result<Dataset, DataError> {
    let _ = columns;
    Err(DataError::invalid(path, Location::File, "placeholder: readers not written yet"))
}
