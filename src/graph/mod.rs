//! The neighbor graph: every edge a model is regularized along, explicit, built by similarity or
//! adversarial, held in one [`NeighborGraph`] on `petgraph`.
//!
//! | file format | read | write |
//! |---|---|---|
//! | Parquet (native; schema in `docs/formats.md`) | [`parquet::read_graph`] | [`parquet::write_graph`] |
//! | NSL TSV (`source\ttarget[\tweight]`) | [`tsv::read_tsv`] | [`tsv::write_tsv`] |
//! | LINQS `.cites` (Cora) | [`linqs::read_cites`] | |
//! | GraphML, DOT, JSON, CSV | | [`export`] |
//!
//! [`read_graph`] and [`write_graph`] pick the format from the file's content or extension.
//! Statistics (degrees, components, homophily, …) are in [`stats`].

mod core;
pub mod export;
pub(crate) mod hops;
pub mod linqs;
pub mod parquet;
#[cfg(feature = "linalg")]
pub mod spectral;
pub mod stats;
pub mod tsv;

pub use self::core::{Edge, EdgeKind, NeighborGraph, NodeId, PetGraph};
pub use self::hops::MAX_HOPS;

use crate::io::Location;
use std::path::{Path, PathBuf};

/// What can go wrong while building, reading or writing a graph.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    /// The file could not be opened, read or written.
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
    /// An edge weight that is negative, NaN or infinite.
    #[error("edge {source_id} -> {target}: weight {weight} is not a finite non-negative number")]
    BadWeight {
        /// Source id.
        source_id: String,
        /// Target id.
        target: String,
        /// The rejected weight.
        weight: f32,
    },
    /// An unknown format name or an unrecognized file.
    #[error("{0}")]
    Format(String),
}

impl GraphError {
    /// Shorthand for [`GraphError::Invalid`].
    pub fn invalid(path: impl Into<PathBuf>, location: Location, message: impl Into<String>) -> Self {
        GraphError::Invalid { path: path.into(), location, message: message.into() }
    }

    /// Shorthand for [`GraphError::Io`].
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        GraphError::Io { path: path.into(), source }
    }

    /// Gives an in-file location to a [`GraphError::BadWeight`]; other variants are returned unchanged.
    pub fn at(self, path: &Path, location: Location) -> Self {
        match self {
            e @ GraphError::BadWeight { .. } => GraphError::invalid(path, location, e.to_string()),
            other => other,
        }
    }
}

/// On-disk graph formats that can be read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphFormat {
    /// The native Parquet edge table.
    Parquet,
    /// NSL's tab-separated `source\ttarget[\tweight]`.
    Tsv,
}

impl GraphFormat {
    /// Recognizes a graph file: Parquet by its `PAR1` magic bytes, otherwise TSV. A file that does
    /// not exist yet (an output) is recognized by its extension: `.parquet`/`.pq` is Parquet, anything
    /// else TSV.
    pub fn detect(path: &Path) -> GraphFormat {
        use std::io::Read;
        let mut magic = [0u8; 4];
        if let Ok(mut f) = std::fs::File::open(path) {
            if f.read_exact(&mut magic).is_ok() {
                return if &magic == b"PAR1" { GraphFormat::Parquet } else { GraphFormat::Tsv };
            }
        }
        match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("parquet" | "pq") => GraphFormat::Parquet,
            _ => GraphFormat::Tsv,
        }
    }
}

/// Reads a graph from Parquet or TSV, whichever the file holds (see [`GraphFormat::detect`]).
///
/// # Errors
/// The reader's [`GraphError`], naming the file and the row or line.
pub fn read_graph(path: &Path) -> Result<NeighborGraph, GraphError> {
    match GraphFormat::detect(path) {
        GraphFormat::Parquet => parquet::read_graph(path),
        GraphFormat::Tsv => tsv::read_tsv(path, core::EdgeKind::Explicit),
    }
}

/// Writes a graph as Parquet or TSV, chosen by the extension (see [`GraphFormat::detect`]); the
/// write is atomic.
///
/// # Errors
/// The writer's [`GraphError`].
pub fn write_graph(graph: &NeighborGraph, path: &Path) -> Result<(), GraphError> {
    let format = match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("parquet" | "pq") => GraphFormat::Parquet,
        _ => GraphFormat::Tsv,
    };
    match format {
        GraphFormat::Parquet => parquet::write_graph(graph, path),
        GraphFormat::Tsv => tsv::write_tsv(graph, path),
    }
}
