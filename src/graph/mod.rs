//! The neighbor graph: every edge a model is regularized along, explicit, built by similarity or
//! adversarial, held in one [`NeighborGraph`] on `petgraph`.
//!
//! | file format | read | write |
//! |---|---|---|
//! | Parquet (native; schema in `docs/formats.md`) | [`read_graph`] | [`write_graph`] |
//! | NSL TSV (`source\ttarget[\tweight]`) | [`read_tsv`] (or [`read_graph`]) | [`write_tsv`] (or [`write_graph`]) |
//! | LINQS `.cites` (Cora) | [`read_cites`] | |
//! | GraphML, DOT, JSON, CSV | | [`export`] |
//!
//! [`read_graph`] and [`write_graph`] pick the format from the file's content or extension.
//! Statistics (degrees, components, homophily, …): [`graph_stats`].

mod core;
mod export;
pub(crate) mod hops;
mod linqs;
pub mod packed;
mod parquet;
#[cfg(feature = "linalg")]
mod spectral;
mod stats;
mod tsv;

pub use self::core::{neighbor_order, Edge, EdgeKind, NeighborGraph, NodeId, PetGraph};
pub use self::hops::MAX_HOPS;
pub use export::{export, export_with_nodes, written_edges, ExportFormat, NodeAttributes};
pub use linqs::{read_cites, CitesReport, UnknownIds};
pub use parquet::{
    edge_schema, read_graph as read_parquet_graph, write_graph as write_parquet_graph, EdgeTableMeta, EdgeTableWriter,
    FORMAT_VERSION,
};
#[cfg(feature = "linalg")]
pub use spectral::{laplacian_eigenvalues, laplacian_spectrum, normalized_laplacian, MAX_NODES, ZERO_TOLERANCE};
#[cfg(feature = "linalg")]
pub use stats::with_spectrum;
pub use stats::{
    graph_stats, DegreeBucket, GraphStats, Homophily, KindCounts, SampleInfo, SampleStats, Spectrum, Summary,
};
pub use tsv::{read_tsv, write_tsv};

use crate::io::{Location, ParquetWriteError};
use std::path::{Path, PathBuf};

/// What can go wrong while building, reading or writing a graph.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
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
    /// A format name that is not one of [`ExportFormat::ALL`](export::ExportFormat::ALL).
    #[error("unknown graph export format `{name}` (expected one of {expected})")]
    UnknownFormat {
        /// The name given.
        name: String,
        /// The accepted names, comma-separated.
        expected: String,
    },
    /// An id that the output format cannot hold (e.g. a character XML 1.0 forbids).
    #[error("cannot write {} as {format}: id {id:?} {reason}", path.display())]
    Unrepresentable {
        /// The output file.
        path: PathBuf,
        /// The id.
        id: String,
        /// The output format.
        format: export::ExportFormat,
        /// Why, e.g. `contains the character U+0007, which XML 1.0 forbids`.
        reason: String,
    },
    /// A Parquet file could not be built or encoded (I/O errors are [`GraphError::Io`]).
    #[error("{}: {source}", path.display())]
    Parquet {
        /// The file.
        path: PathBuf,
        /// The Arrow or Parquet error.
        #[source]
        source: ParquetWriteError,
    },
    /// A graph too large for a dense computation.
    #[error("{what} is computed densely and limited to {max} nodes; this graph has {nodes}")]
    TooLarge {
        /// The computation.
        what: &'static str,
        /// The graph's node count.
        nodes: usize,
        /// The limit.
        max: usize,
    },
    /// A linear-algebra routine failed.
    #[error("{what} failed: {message}")]
    Linalg {
        /// The computation.
        what: &'static str,
        /// The routine's error.
        message: String,
    },
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

    /// [`GraphError::Io`] for an I/O error of [`crate::io::write_parquet`], else
    /// [`GraphError::Parquet`]; both name `path`.
    pub(crate) fn parquet_write(path: &Path, error: ParquetWriteError) -> Self {
        match error {
            ParquetWriteError::Io(source) => GraphError::io(path, source),
            source => GraphError::Parquet { path: path.to_path_buf(), source },
        }
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
    /// Recognizes a graph file by content first: Parquet by its `PAR1` magic bytes
    /// ([`crate::io::is_parquet`]), any other file of at least four bytes is TSV. A file that does
    /// not exist yet (an output) or is too short to tell is recognized by its extension
    /// ([`GraphFormat::from_extension`]).
    pub fn detect(path: &Path) -> GraphFormat {
        let long_enough = std::fs::metadata(path).is_ok_and(|m| m.len() >= 4);
        match crate::io::is_parquet(path) {
            Ok(true) => GraphFormat::Parquet,
            Ok(false) if long_enough => GraphFormat::Tsv,
            _ => GraphFormat::from_extension(path),
        }
    }

    /// The format a file name asks for: Parquet for the extensions
    /// [`ExportFormat::from_path`](export::ExportFormat::from_path) reads as Parquet (`.parquet`,
    /// `.pq`, any case), TSV for anything else.
    pub fn from_extension(path: &Path) -> GraphFormat {
        match export::ExportFormat::from_path(path) {
            Some(export::ExportFormat::Parquet) => GraphFormat::Parquet,
            _ => GraphFormat::Tsv,
        }
    }
}

impl From<GraphFormat> for export::ExportFormat {
    fn from(format: GraphFormat) -> Self {
        match format {
            GraphFormat::Parquet => export::ExportFormat::Parquet,
            GraphFormat::Tsv => export::ExportFormat::Tsv,
        }
    }
}

/// Writes `path` atomically with `write` (see [`crate::io::AtomicFile`]): on error the temporary
/// file is removed and an existing `path` stays as it was; I/O errors of the file itself become
/// [`GraphError::Io`] naming `path`.
fn write_atomically<F>(path: &Path, write: F) -> Result<(), GraphError>
where
    F: FnOnce(&mut crate::io::AtomicFile) -> Result<(), GraphError>,
{
    let mut out = crate::io::AtomicFile::create(path).map_err(|e| GraphError::io(path, e))?;
    write(&mut out)?;
    out.commit().map_err(|e| GraphError::io(path, e))
}

/// Reads a graph from Parquet or TSV, whichever the file holds (see [`GraphFormat::detect`]). A
/// directory is read as the Parquet parts a distributed job writes (`scripts/spark/`): every
/// `*.parquet` file in it, in name order, merged into one graph.
///
/// # Errors
/// The reader's [`GraphError`], naming the file and the row or line; [`GraphError::Invalid`] for
/// a directory without `.parquet` files.
pub fn read_graph(path: &Path) -> Result<NeighborGraph, GraphError> {
    // Outputs of a set whose commit a kill interrupted become whole before they are read.
    crate::io::finish_pending_commits(path).map_err(|e| GraphError::io(path, e))?;
    if path.is_dir() {
        let mut parts: Vec<std::path::PathBuf> = std::fs::read_dir(path)
            .map_err(|e| GraphError::io(path, e))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| {
                let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                p.is_file() && !name.starts_with(['.', '_']) && name.ends_with(".parquet")
            })
            .collect();
        parts.sort();
        let Some((first, rest)) = parts.split_first() else {
            return Err(GraphError::invalid(path, crate::io::Location::File, "directory holds no .parquet parts"));
        };
        let mut graph = parquet::read_graph(first)?;
        for part in rest {
            graph.merge(&parquet::read_graph(part)?);
        }
        graph.set_provenance(format!("Parquet parts in {}", path.display()));
        return Ok(graph);
    }
    match GraphFormat::detect(path) {
        GraphFormat::Parquet => parquet::read_graph(path),
        GraphFormat::Tsv => tsv::read_tsv(path, core::EdgeKind::Explicit),
    }
}

/// Writes `count` edges, `edge(0)` to `edge(count − 1)`, as a graph file, Parquet or TSV by the
/// extension (as [`write_graph`]), atomically, without building a [`NeighborGraph`]: for producers
/// that hold their edges in a compact form (`nsl build-graph` writes millions of edges this way;
/// the Parquet batches are built in parallel, see [`EdgeTableWriter::push_indexed`]). The file is
/// the one [`write_graph`] writes for a graph with these edges in this order and the metadata
/// `meta` (which TSV does not store); the edges are written as given (no duplicate check, weights
/// as they are).
///
/// # Errors
/// As [`write_graph`]: [`GraphError::Io`], [`GraphError::Parquet`], and for TSV
/// [`GraphError::Invalid`] naming the output line of an id TSV cannot hold.
pub fn write_edges<'a, F>(path: &Path, meta: &EdgeTableMeta, count: usize, edge: F) -> Result<(), GraphError>
where
    F: Fn(usize) -> (&'a str, &'a str, Edge) + Sync,
{
    match GraphFormat::from_extension(path) {
        GraphFormat::Parquet => {
            let mut writer = EdgeTableWriter::create(path, meta)?;
            writer.push_indexed(count, edge)?;
            writer.finish()
        }
        GraphFormat::Tsv => tsv::write_tsv_edges(path, (0..count).map(edge)),
    }
}

/// Writes a graph as Parquet or TSV, chosen by the extension (see [`GraphFormat::from_extension`];
/// an existing file's content does not matter); the write is atomic.
///
/// # Errors
/// The writer's [`GraphError`].
pub fn write_graph(graph: &NeighborGraph, path: &Path) -> Result<(), GraphError> {
    export::export(graph, GraphFormat::from_extension(path).into(), path)
}
