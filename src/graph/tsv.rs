//! NSL's tab-separated graph format: one directed edge per line, `source\ttarget[\tweight]`.
//!
//! This is the format of NSL's `read_tsv_graph` / `write_tsv_graph` (`tools/graph_utils.py`) and of
//! the graphs written by `build_graph`. Reading follows NSL:
//! - the weight is optional and defaults to 1.0; columns after the third are ignored;
//! - an edge given twice keeps the larger weight (NSL's `add_edge`);
//!
//! and is more forgiving or stricter where NSL crashes or accepts garbage:
//! - blank (or whitespace-only) lines and lines starting with `#` are skipped (NSL raises an
//!   `IndexError` on a blank line and would read `#…` as an id);
//! - a trailing `\r` is removed (files written on Windows);
//! - a line with one column, an empty id, a weight that is not a number, or a weight that is
//!   negative, NaN or infinite is a [`GraphError::Invalid`] naming the 1-based line and column;
//! - gzip input is decompressed transparently; a truncated gzip stream is a [`GraphError::Io`]
//!   naming the file and the line where the data stopped.
//!
//! An empty file (or one with only comments) is an empty graph, not an error: NSL reads it the same way,
//! and `build_graph` writes one when no pair reaches the similarity threshold.
//!
//! Writing differs from NSL in one deliberate way: NSL prints weights with `'%f'` (6 decimals), which
//! turns `0.1234567` into `0.123457` and `1e-7` into `0.000000`. [`write_tsv`] prints the shortest
//! decimal that reads back as the same `f32` (Rust's `{}` for `f32`, e.g. `1`, `0.1`, `1e-7`), so a
//! TSV round trip is exact. NSL's `float()` reads every such number.

use super::{write_atomically, Edge, EdgeKind, GraphError, NeighborGraph};
use crate::io::{open_maybe_gz, read_line_limited, Location, MAX_LINE_BYTES};
use std::io::{self, Write};
use std::path::Path;

/// Reads an NSL TSV graph (see the module docs for the exact rules). Every edge gets `kind`.
///
/// The provenance of the returned graph is `NSL TSV <path>`. Nodes are the ids that occur in some
/// edge, in order of first appearance.
///
/// # Errors
/// [`GraphError::Io`] if the file cannot be opened or read (including a truncated gzip stream), and
/// [`GraphError::Invalid`] with the line and column for a malformed line.
pub fn read_tsv(path: &Path, kind: EdgeKind) -> Result<NeighborGraph, GraphError> {
    let mut reader = open_maybe_gz(path).map_err(|e| GraphError::io(path, e))?;
    let mut graph = NeighborGraph::new();
    // One buffer for the whole file: no allocation per line.
    let mut buf = Vec::with_capacity(256);
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
        let line = std::str::from_utf8(strip_line_end(&buf))
            .map_err(|e| GraphError::invalid(path, Location::Line(line_no), format!("not valid UTF-8: {e}")))?;
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let at = |column: usize| Location::LineColumn(line_no, column.to_string());
        let mut columns = line.split('\t');
        // `split` yields at least one item, possibly empty.
        let source = columns.next().unwrap_or_default();
        let Some(target) = columns.next() else {
            return Err(GraphError::invalid(
                path,
                Location::Line(line_no),
                format!("expected `source<TAB>target[<TAB>weight]`, found one column: {line:?}"),
            ));
        };
        if source.is_empty() {
            return Err(GraphError::invalid(path, at(1), "empty source id"));
        }
        if target.is_empty() {
            return Err(GraphError::invalid(path, at(2), "empty target id"));
        }
        let weight = match columns.next() {
            None => 1.0,
            Some(text) => parse_weight(text).map_err(|message| GraphError::invalid(path, at(3), message))?,
        };
        graph.add_edge(source, target, weight, kind).map_err(|e| e.at(path, at(3)))?;
    }
    graph.set_provenance(format!("NSL TSV {}", path.display()));
    Ok(graph)
}

/// Removes the line terminator: `\n`, and a `\r` before it.
fn strip_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Parses a weight column (surrounding spaces allowed, as Python's `float`), requiring a finite
/// number `w ≥ 0`. The error message quotes the text.
pub(crate) fn parse_weight(text: &str) -> Result<f32, String> {
    let weight: f32 = text.trim().parse().map_err(|_| format!("weight `{text}` is not a number"))?;
    if weight.is_finite() && weight >= 0.0 {
        Ok(weight)
    } else {
        Err(format!("weight `{text}` is not a finite non-negative number"))
    }
}

/// Writes every directed edge as `source\ttarget\tweight`, atomically, in edge insertion order.
///
/// Weights are printed exactly (shortest round-tripping `f32` decimal), not with NSL's six decimals;
/// see the module docs. Nodes without edges cannot be represented and are not written.
///
/// # Errors
/// [`GraphError::Invalid`] (naming the output line) for an id that TSV cannot hold: an empty id, an
/// id containing a tab, `\n` or `\r`, or a source id starting with `#` (it would read back as a
/// comment). Nothing is written then. [`GraphError::Io`] if writing fails; no file is left behind.
pub fn write_tsv(graph: &NeighborGraph, path: &Path) -> Result<(), GraphError> {
    write_tsv_edges(path, graph.edges())
}

/// [`write_tsv`] of a sequence of edges, without a [`NeighborGraph`]: one line per edge, in the
/// order given (the errors are those of [`write_tsv`]).
pub(crate) fn write_tsv_edges<'a, I>(path: &Path, edges: I) -> Result<(), GraphError>
where
    I: IntoIterator<Item = (&'a str, &'a str, Edge)>,
{
    write_atomically(path, |out| {
        for (line, (source, target, edge)) in edges.into_iter().enumerate() {
            for (column, id) in [(1, source), (2, target)] {
                if let Some(problem) = tsv_id_problem(id, column == 1) {
                    return Err(GraphError::invalid(
                        path,
                        Location::LineColumn(line + 1, column.to_string()),
                        format!("cannot write id {id:?} to TSV: {problem}"),
                    ));
                }
            }
            writeln!(out, "{source}\t{target}\t{}", edge.weight).map_err(|e| GraphError::io(path, e))?;
        }
        Ok(())
    })
}

/// Why `id` cannot be written to a TSV line, if it cannot.
fn tsv_id_problem(id: &str, is_source: bool) -> Option<&'static str> {
    if id.is_empty() {
        Some("empty id")
    } else if id.contains(['\t', '\n', '\r']) {
        Some("it contains a tab or a line break")
    } else if is_source && id.starts_with('#') {
        Some("a line starting with `#` is a comment")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_parse_strictly() {
        assert_eq!(parse_weight(" 0.5 "), Ok(0.5));
        assert_eq!(parse_weight("1e-7"), Ok(1e-7));
        for bad in ["abc", "", "-1", "nan", "NaN", "inf", "1e40"] {
            assert!(parse_weight(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn line_ends_are_stripped() {
        assert_eq!(strip_line_end(b"a\tb\r\n"), b"a\tb");
        assert_eq!(strip_line_end(b"a\tb"), b"a\tb");
    }

    #[test]
    fn ids_that_tsv_cannot_hold() {
        assert!(tsv_id_problem("a b", true).is_none());
        assert!(tsv_id_problem("#a", false).is_none());
        assert!(tsv_id_problem("#a", true).is_some());
        assert!(tsv_id_problem("a\tb", false).is_some());
        assert!(tsv_id_problem("", false).is_some());
    }
}
