//! Writing a [`NeighborGraph`] for other tools: Parquet and TSV (which [`super::read_graph`] reads
//! back), and GraphML, DOT, JSON and CSV (write only).
//!
//! | format | layout | directed / undirected |
//! |---|---|---|
//! | [`ExportFormat::Parquet`] | the native edge table ([`super::parquet`]) | every directed edge |
//! | [`ExportFormat::Tsv`] | NSL's `source\ttarget\tweight` ([`super::tsv`]) | every directed edge |
//! | [`ExportFormat::Graphml`] | GraphML for networkx (`read_graphml`), Gephi, yEd | see below |
//! | [`ExportFormat::Dot`] | Graphviz `digraph` / `graph` | see below |
//! | [`ExportFormat::Json`] | networkx node-link JSON, edges under `edges` (networkx ≥ 3.4's key) | see below |
//! | [`ExportFormat::Csv`] | `source,target,weight,kind` with a header (RFC 4180 quoting) | every directed edge |
//!
//! **Directedness.** GraphML, DOT and JSON can say whether a graph is directed. When the graph
//! [`is_symmetric`](NeighborGraph::is_symmetric) (every edge has its reverse with the same weight,
//! as after [`NeighborGraph::make_undirected`]) they are written as *undirected* graphs with each
//! link once (`edgedefault="undirected"`, `graph { a -- b }`, `"directed": false`), so networkx
//! reports links, not directed edges: 5,278 for Cora instead of 10,556. The link is written in the
//! direction of its first-added node, with that direction's `kind`. Otherwise every directed edge
//! is written to a directed graph. These three formats also list every node, including nodes
//! without edges, which the edge lists (Parquet, TSV, CSV) cannot hold.
//!
//! **Node attributes.** [`export_with_nodes`] attaches columns of the samples (labels, splits) to
//! the nodes of GraphML (string `<key for="node">`s), JSON (fields of each node) and DOT (node
//! attributes), for Gephi or networkx; a node without a value gets none.
//!
//! Every export is atomic: on error no output file is left behind.

use super::{write_atomically, GraphError, NeighborGraph, NodeId};
use crate::io::Location;
use std::fmt;
use std::io::{self, Write};
use std::path::Path;
use std::str::FromStr;

/// A file format [`export`] can write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ExportFormat {
    /// The native Parquet edge table (`.parquet`).
    Parquet,
    /// NSL's TSV edge list (`.tsv`).
    Tsv,
    /// GraphML XML (`.graphml`).
    Graphml,
    /// Graphviz DOT (`.dot`).
    Dot,
    /// networkx node-link JSON (`.json`).
    Json,
    /// CSV edge list with a header (`.csv`).
    Csv,
}

impl ExportFormat {
    /// All formats, in a fixed order.
    pub const ALL: [ExportFormat; 6] = [
        ExportFormat::Parquet,
        ExportFormat::Tsv,
        ExportFormat::Graphml,
        ExportFormat::Dot,
        ExportFormat::Json,
        ExportFormat::Csv,
    ];

    /// The lower-case name, which is also the usual file extension: `parquet`, `tsv`, `graphml`,
    /// `dot`, `json`, `csv`.
    pub fn as_str(self) -> &'static str {
        match self {
            ExportFormat::Parquet => "parquet",
            ExportFormat::Tsv => "tsv",
            ExportFormat::Graphml => "graphml",
            ExportFormat::Dot => "dot",
            ExportFormat::Json => "json",
            ExportFormat::Csv => "csv",
        }
    }

    /// The format a file name's extension asks for (case-insensitive; `pq` and `gv` are accepted
    /// too), if any.
    pub fn from_path(path: &Path) -> Option<ExportFormat> {
        path.extension().and_then(|e| e.to_str()).and_then(|e| e.parse().ok())
    }
}

impl fmt::Display for ExportFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ExportFormat {
    type Err = GraphError;

    /// Parses a name written by [`ExportFormat::as_str`], case-insensitively; `pq` and `gv` are
    /// aliases of `parquet` and `dot`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.to_ascii_lowercase();
        let alias = match lower.as_str() {
            "pq" => "parquet",
            "gv" => "dot",
            other => other,
        };
        ExportFormat::ALL.into_iter().find(|f| f.as_str() == alias).ok_or_else(|| {
            let names: Vec<&str> = ExportFormat::ALL.iter().map(|f| f.as_str()).collect();
            GraphError::UnknownFormat { name: s.to_owned(), expected: names.join(", ") }
        })
    }
}

/// Columns attached to the nodes of an export: `(name, one value per node index)`, `None` for a
/// node without a value.
pub type NodeAttributes = [(String, Vec<Option<String>>)];

/// The edges an export of `graph` in `format` writes, and whether they are undirected links
/// (GraphML, DOT and JSON write a symmetric graph's links once; the edge lists write every
/// directed edge).
pub fn written_edges(graph: &NeighborGraph, format: ExportFormat) -> (usize, bool) {
    let undirected =
        graph.is_symmetric() && matches!(format, ExportFormat::Graphml | ExportFormat::Dot | ExportFormat::Json);
    (edges_to_write(graph, undirected).count(), undirected)
}

/// [`export`] with node attributes (GraphML, DOT and JSON only).
///
/// # Errors
/// As [`export`]; [`GraphError::Invalid`] for attributes with an edge-list format, or with
/// another number of values than the graph has nodes.
pub fn export_with_nodes(
    graph: &NeighborGraph,
    format: ExportFormat,
    path: &Path,
    nodes: &NodeAttributes,
) -> Result<(), GraphError> {
    if nodes.is_empty() {
        return export(graph, format, path);
    }
    if let Some((name, values)) = nodes.iter().find(|(_, v)| v.len() != graph.node_count()) {
        let message = format!("node attribute `{name}` has {} values for {} nodes", values.len(), graph.node_count());
        return Err(GraphError::invalid(path, Location::File, message));
    }
    match format {
        ExportFormat::Graphml => write_atomically(path, |out| write_graphml_with(graph, out, path, nodes)),
        ExportFormat::Dot => {
            write_atomically(path, |out| write_dot_with(graph, out, nodes).map_err(|e| GraphError::io(path, e)))
        }
        ExportFormat::Json => write_atomically(path, |out| write_json_with(graph, out, path, nodes)),
        other => Err(GraphError::invalid(
            path,
            Location::File,
            format!("{other} is an edge list and holds no node attributes: export as graphml, json or dot"),
        )),
    }
}

/// Writes `graph` to `path` in `format`, atomically (see the module docs for each layout).
///
/// # Errors
/// [`GraphError::Io`] if writing fails; [`GraphError::Invalid`] (TSV: tabs and line breaks, naming
/// the line) or [`GraphError::Unrepresentable`] (GraphML: characters XML 1.0 forbids) for an id
/// the format cannot hold; [`GraphError::Parquet`] if Parquet encoding fails.
/// No output file is left behind on error.
pub fn export(graph: &NeighborGraph, format: ExportFormat, path: &Path) -> Result<(), GraphError> {
    match format {
        ExportFormat::Parquet => super::parquet::write_graph(graph, path),
        ExportFormat::Tsv => super::tsv::write_tsv(graph, path),
        ExportFormat::Graphml => write_atomically(path, |out| write_graphml(graph, out, path)),
        ExportFormat::Dot => write_atomically(path, |out| write_dot(graph, out).map_err(|e| GraphError::io(path, e))),
        ExportFormat::Json => write_atomically(path, |out| write_json(graph, out, path)),
        ExportFormat::Csv => write_atomically(path, |out| write_csv(graph, out, path)),
    }
}

/// The edges to write to a format that can be undirected: every directed edge, or each link once
/// (from its lower node index, self-loops included) when the graph is symmetric.
fn edges_to_write(graph: &NeighborGraph, undirected: bool) -> impl Iterator<Item = (NodeId, NodeId, super::Edge)> + '_ {
    graph.petgraph().all_edges().filter(move |(s, t, _)| !undirected || s <= t).map(|(s, t, e)| (s, t, *e))
}

/// GraphML with `weight` (double) and `kind` (string) edge keys and a `provenance` graph key.
fn write_graphml(graph: &NeighborGraph, out: &mut impl Write, path: &Path) -> Result<(), GraphError> {
    write_graphml_with(graph, out, path, &[])
}

/// [`write_graphml`] with node attributes (string keys `n0`, `n1`, … named by the attributes).
fn write_graphml_with(
    graph: &NeighborGraph,
    out: &mut impl Write,
    path: &Path,
    nodes: &NodeAttributes,
) -> Result<(), GraphError> {
    let undirected = graph.is_symmetric();
    let io_err = |e| GraphError::io(path, e);
    let xml = |id| xml_text(id, path);
    writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#).map_err(io_err)?;
    writeln!(
        out,
        r#"<graphml xmlns="http://graphml.graphdrawing.org/xmlns" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="http://graphml.graphdrawing.org/xmlns http://graphml.graphdrawing.org/xmlns/1.0/graphml.xsd">"#
    )
    .map_err(io_err)?;
    writeln!(out, r#"  <key id="provenance" for="graph" attr.name="provenance" attr.type="string"/>"#)
        .map_err(io_err)?;
    writeln!(out, r#"  <key id="weight" for="edge" attr.name="weight" attr.type="double"/>"#).map_err(io_err)?;
    writeln!(out, r#"  <key id="kind" for="edge" attr.name="kind" attr.type="string"/>"#).map_err(io_err)?;
    for (k, (name, _)) in nodes.iter().enumerate() {
        let name = xml(name)?;
        writeln!(out, r#"  <key id="n{k}" for="node" attr.name="{name}" attr.type="string"/>"#).map_err(io_err)?;
    }
    let edgedefault = if undirected { "undirected" } else { "directed" };
    writeln!(out, r#"  <graph id="G" edgedefault="{edgedefault}">"#).map_err(io_err)?;
    writeln!(out, r#"    <data key="provenance">{}</data>"#, xml(graph.provenance())?).map_err(io_err)?;
    for (i, id) in graph.ids().iter().enumerate() {
        let mut data = String::new();
        for (k, (_, values)) in nodes.iter().enumerate() {
            if let Some(value) = &values[i] {
                data.push_str(&format!(r#"<data key="n{k}">{}</data>"#, xml(value)?));
            }
        }
        match data.is_empty() {
            true => writeln!(out, r#"    <node id="{}"/>"#, xml(id)?),
            false => writeln!(out, r#"    <node id="{}">{data}</node>"#, xml(id)?),
        }
        .map_err(io_err)?;
    }
    for (s, t, e) in edges_to_write(graph, undirected) {
        writeln!(
            out,
            r#"    <edge source="{}" target="{}"><data key="weight">{}</data><data key="kind">{}</data></edge>"#,
            xml(graph.id(s))?,
            xml(graph.id(t))?,
            e.weight,
            e.kind
        )
        .map_err(io_err)?;
    }
    writeln!(out, "  </graph>\n</graphml>").map_err(io_err)?;
    Ok(())
}

/// [`xml_escape`] with the error for an id XML cannot hold.
fn xml_text<'a>(id: &'a str, path: &Path) -> Result<std::borrow::Cow<'a, str>, GraphError> {
    xml_escape(id).map_err(|c| GraphError::Unrepresentable {
        path: path.to_path_buf(),
        id: id.to_owned(),
        format: ExportFormat::Graphml,
        reason: format!("contains the character U+{:04X}, which XML 1.0 forbids", u32::from(c)),
    })
}

/// Escapes text for XML attribute values and element content: `& < > " '` as entities and tab,
/// line feed and carriage return as character references (so attribute normalization keeps them).
/// Returns the first character XML 1.0 cannot represent at all (other control characters,
/// U+FFFE, U+FFFF) as the error.
fn xml_escape(text: &str) -> Result<std::borrow::Cow<'_, str>, char> {
    let needs_work = |c: char| matches!(c, '&' | '<' | '>' | '"' | '\'') || (c as u32) < 0x20 || c > '\u{FFFD}';
    if !text.contains(needs_work) {
        return Ok(std::borrow::Cow::Borrowed(text));
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => return Err(c),
            c => out.push(c),
        }
    }
    Ok(std::borrow::Cow::Owned(out))
}

/// Graphviz DOT: `digraph`/`graph` with quoted ids and `weight`/`kind` edge attributes.
///
/// Graphviz reads `weight` as a layout hint (Graphviz 2.43 `dot -Tsvg` and `neato` accept the
/// fractional weights written here); readers such as pydot keep the exact text.
fn write_dot(graph: &NeighborGraph, out: &mut impl Write) -> io::Result<()> {
    write_dot_with(graph, out, &[])
}

/// [`write_dot`] with node attributes (`"id" [label="3", split="train"];`).
fn write_dot_with(graph: &NeighborGraph, out: &mut impl Write, nodes: &NodeAttributes) -> io::Result<()> {
    let undirected = graph.is_symmetric();
    let (keyword, arrow) = if undirected { ("graph", "--") } else { ("digraph", "->") };
    writeln!(out, "{keyword} G {{")?;
    if !graph.provenance().is_empty() {
        writeln!(out, "  comment={};", dot_quote(graph.provenance()))?;
    }
    for (i, id) in graph.ids().iter().enumerate() {
        let attributes: Vec<String> = nodes
            .iter()
            .filter_map(|(name, values)| values[i].as_ref().map(|v| format!("{}={}", dot_quote(name), dot_quote(v))))
            .collect();
        match attributes.is_empty() {
            true => writeln!(out, "  {};", dot_quote(id))?,
            false => writeln!(out, "  {} [{}];", dot_quote(id), attributes.join(", "))?,
        }
    }
    for (s, t, e) in edges_to_write(graph, undirected) {
        writeln!(
            out,
            "  {} {arrow} {} [weight={}, kind={}];",
            dot_quote(graph.id(s)),
            dot_quote(graph.id(t)),
            e.weight,
            e.kind
        )?;
    }
    writeln!(out, "}}")
}

/// A DOT quoted string: `"` and `\` are backslash-escaped, line breaks become `\n` / `\r`.
fn dot_quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// networkx node-link JSON.
#[derive(serde::Serialize)]
struct NodeLink<'a> {
    directed: bool,
    multigraph: bool,
    graph: NodeLinkGraph<'a>,
    nodes: Vec<NodeLinkNode<'a>>,
    /// networkx ≥ 3.4's key (`node_link_graph(data, edges="edges")`; the default from 3.6).
    edges: Vec<NodeLinkEdge<'a>>,
}

/// Graph attributes of [`NodeLink`].
#[derive(serde::Serialize)]
struct NodeLinkGraph<'a> {
    provenance: &'a str,
}

/// A node of [`NodeLink`].
#[derive(serde::Serialize)]
struct NodeLinkNode<'a> {
    id: &'a str,
    /// Node attributes.
    #[serde(flatten)]
    attributes: std::collections::BTreeMap<&'a str, &'a str>,
}

/// An edge of [`NodeLink`].
#[derive(serde::Serialize)]
struct NodeLinkEdge<'a> {
    source: &'a str,
    target: &'a str,
    weight: f32,
    kind: super::EdgeKind,
}

/// networkx node-link JSON (`{"directed", "multigraph", "graph", "nodes", "edges"}`).
fn write_json(graph: &NeighborGraph, out: &mut impl Write, path: &Path) -> Result<(), GraphError> {
    write_json_with(graph, out, path, &[])
}

/// [`write_json`] with node attributes (fields of each node).
fn write_json_with<'a>(
    graph: &'a NeighborGraph,
    out: &mut impl Write,
    path: &Path,
    nodes: &'a NodeAttributes,
) -> Result<(), GraphError> {
    let undirected = graph.is_symmetric();
    let node = |(i, id): (usize, &'a String)| {
        let attributes =
            nodes.iter().filter_map(|(name, values)| values[i].as_deref().map(|v| (name.as_str(), v))).collect();
        NodeLinkNode { id: id.as_str(), attributes }
    };
    let doc = NodeLink {
        directed: !undirected,
        multigraph: false,
        graph: NodeLinkGraph { provenance: graph.provenance() },
        nodes: graph.ids().iter().enumerate().map(node).collect(),
        edges: edges_to_write(graph, undirected)
            .map(|(s, t, e)| NodeLinkEdge { source: graph.id(s), target: graph.id(t), weight: e.weight, kind: e.kind })
            .collect(),
    };
    serde_json::to_writer(&mut *out, &doc).map_err(|e| GraphError::io(path, e.into()))?;
    writeln!(out).map_err(|e| GraphError::io(path, e))
}

/// CSV edge list `source,target,weight,kind`, every directed edge; weights exact (shortest `f32`).
fn write_csv(graph: &NeighborGraph, out: &mut impl Write, path: &Path) -> Result<(), GraphError> {
    let csv_err = |e: csv::Error| match e.into_kind() {
        csv::ErrorKind::Io(e) => GraphError::io(path, e),
        other => GraphError::invalid(path, Location::File, format!("{other:?}")),
    };
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record(["source", "target", "weight", "kind"]).map_err(csv_err)?;
    let mut weight = String::new();
    for (s, t, e) in graph.edges() {
        weight.clear();
        use std::fmt::Write as _;
        // Writing into a String cannot fail.
        let _ = write!(weight, "{}", e.weight);
        writer.write_record([s, t, weight.as_str(), e.kind.as_str()]).map_err(csv_err)?;
    }
    writer.flush().map_err(|e| GraphError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_names_round_trip() {
        for f in ExportFormat::ALL {
            assert_eq!(f.to_string().parse::<ExportFormat>().unwrap(), f);
        }
        assert_eq!("GraphML".parse::<ExportFormat>().unwrap(), ExportFormat::Graphml);
        assert_eq!("gv".parse::<ExportFormat>().unwrap(), ExportFormat::Dot);
        let err = "xml".parse::<ExportFormat>().unwrap_err();
        assert!(matches!(&err, GraphError::UnknownFormat { name, .. } if name == "xml"), "{err:?}");
        assert!(err.to_string().contains("graphml"), "{err}");
        assert_eq!(ExportFormat::from_path(Path::new("g.PQ")), Some(ExportFormat::Parquet));
        assert_eq!(ExportFormat::from_path(Path::new("g")), None);
    }

    #[test]
    fn xml_escaping() {
        assert_eq!(xml_escape("plain").unwrap(), "plain");
        assert_eq!(xml_escape("a<b>&\"c'\td").unwrap(), "a&lt;b&gt;&amp;&quot;c&apos;&#9;d");
        assert_eq!(xml_escape("a\u{1}b"), Err('\u{1}'));
    }

    #[test]
    fn dot_quoting() {
        assert_eq!(dot_quote(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(dot_quote("x\ny"), r#""x\ny""#);
    }
}
