//! The citation graph of a LINQS dataset (Cora, Citeseer, PubMed): the `.cites` file.
//!
//! Each line is `<cited paper id> <citing paper id>`, separated by whitespace (LINQS uses a tab).
//! A citation is read as an **undirected** explicit link of weight 1.0, stored as both directed edges,
//! as NSL's Cora preprocessing does (`read_tsv_graph` then `add_undirected_edges`). On the bundled
//! `datasets/cora/cora.cites.gz` that gives 5,278 links, 10,556 directed edges and 2,708 nodes.
//!
//! Blank lines are skipped. A self-citation (`a a`) is kept as one self-loop edge (`a → a`), as NSL
//! keeps it, and counted in [`CitesReport::self_loops`]. A link given twice (in either direction) is
//! stored once and counted in [`CitesReport::duplicate_links`].

use super::{Edge, EdgeKind, GraphError, NeighborGraph};
use crate::io::{open_maybe_gz, read_line_limited, Location, MAX_LINE_BYTES};
use std::io;
use std::path::Path;

/// What to do with a line naming a paper that is not among the known samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnknownIds {
    /// Fail with an error naming the line, the column and the id (the default).
    #[default]
    Error,
    /// Skip the line and count it in [`CitesReport::skipped_unknown`] (e.g. Citeseer, whose
    /// `.cites` names papers missing from its `.content`).
    Skip,
}

/// What [`read_cites`] found, beyond the graph itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct CitesReport {
    /// Distinct undirected links read (a self-loop counts as one link).
    pub links: usize,
    /// Lines skipped because they name an unknown paper ([`UnknownIds::Skip`]).
    pub skipped_unknown: usize,
    /// Lines repeating a link already read, in either direction.
    pub duplicate_links: usize,
    /// Lines citing the same paper on both sides (kept as one self-loop edge each).
    pub self_loops: usize,
}

/// Reads a LINQS `.cites` file (gzip allowed) into an undirected explicit graph of weight 1.0 (see
/// the module docs). `known(id)` says whether a paper id is one of the samples.
///
/// The provenance of the graph is `LINQS cites <path>`.
///
/// # Errors
/// [`GraphError::Io`] if the file cannot be read (a truncated gzip stream included), and
/// [`GraphError::Invalid`] naming the 1-based line for a line that does not have exactly two
/// columns, and the line, column and id for an unknown paper under [`UnknownIds::Error`].
pub fn read_cites(
    path: &Path,
    known: &dyn Fn(&str) -> bool,
    unknown: UnknownIds,
) -> Result<(NeighborGraph, CitesReport), GraphError> {
    let mut reader = open_maybe_gz(path).map_err(|e| GraphError::io(path, e))?;
    let mut graph = NeighborGraph::new();
    let mut report = CitesReport::default();
    let link = Edge { weight: 1.0, kind: EdgeKind::Explicit };
    // One buffer for the whole file: no allocation per line.
    let mut buf = Vec::with_capacity(64);
    let mut line_no = 0usize;
    loop {
        buf.clear();
        let read = read_line_limited(&mut reader, &mut buf, MAX_LINE_BYTES).map_err(|e| {
            GraphError::io(path, io::Error::new(e.kind(), format!("reading line {}: {e}", line_no + 1)))
        })?;
        if read == 0 {
            break;
        }
        line_no += 1;
        let line = std::str::from_utf8(&buf)
            .map_err(|e| GraphError::invalid(path, Location::Line(line_no), format!("not valid UTF-8: {e}")))?;
        let mut columns = line.split_whitespace();
        let (cited, citing) = match (columns.next(), columns.next(), columns.next()) {
            (None, ..) => continue,
            (Some(cited), Some(citing), None) => (cited, citing),
            _ => {
                let found = line.split_whitespace().count();
                return Err(GraphError::invalid(
                    path,
                    Location::Line(line_no),
                    format!("expected 2 whitespace-separated columns `<cited> <citing>`, found {found}"),
                ));
            }
        };
        if let Some((column, id)) = [(1, cited), (2, citing)].into_iter().find(|(_, id)| !known(id)) {
            match unknown {
                UnknownIds::Skip => {
                    report.skipped_unknown += 1;
                    continue;
                }
                UnknownIds::Error => {
                    return Err(GraphError::invalid(
                        path,
                        Location::LineColumn(line_no, column.to_string()),
                        format!("unknown paper id `{id}` (not among the samples)"),
                    ))
                }
            }
        }
        let (a, b) = (graph.add_node(cited), graph.add_node(citing));
        let new = graph.add_edge_ids(a, b, link);
        if a == b {
            report.self_loops += 1;
        } else {
            graph.add_edge_ids(b, a, link);
        }
        if new {
            report.links += 1;
        } else {
            report.duplicate_links += 1;
        }
    }
    graph.set_provenance(format!("LINQS cites {}", path.display()));
    Ok((graph, report))
}
