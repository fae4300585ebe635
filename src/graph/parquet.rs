//! The native graph file: a Parquet edge table, one row per directed edge.
//!
//! Schema written by [`write_graph`]:
//!
//! | column | Arrow type | nullable | meaning |
//! |---|---|---|---|
//! | `source` | `utf8` | no | source sample id |
//! | `target` | `utf8` | no | target sample id |
//! | `weight` | `float32` | no | edge weight `w ≥ 0` |
//! | `kind` | `dictionary<int8, utf8>` | no | `explicit`, `similarity` or `adversarial` |
//!
//! File key/value metadata:
//!
//! | key | value |
//! |---|---|
//! | `nsl.format_version` | `1` |
//! | `nsl.directed` | `false` when the graph [is symmetric](NeighborGraph::is_symmetric), else `true` |
//! | `nsl.provenance` | [`NeighborGraph::provenance`] |
//! | `nsl.nodes` | the graph's node count |
//!
//! An undirected graph is still stored as both directions of every link (that is how
//! [`NeighborGraph`] holds it), so the rows are exactly the directed edges and `nsl.directed` is
//! informative. **Only nodes with at least one edge are stored**: an edge table cannot hold an
//! isolated node, so `nsl.nodes` may be larger than the number of ids read back.
//!
//! The file is zstd-compressed ([`crate::io::ZSTD_LEVEL`]), written in batches of 65,536 rows into row groups of at most
//! 1,048,576 rows, and opens as is in pyarrow, pandas (`kind` becomes a `category`) and DuckDB.
//!
//! [`read_graph`] is more lenient than the writer, so that tables made by other tools load:
//! ids may be `utf8`, `large_utf8`, `utf8_view`, `int32` or `int64`; `weight` may be `float32` or
//! `float64` (narrowed to `f32`); `kind` may be missing (every edge is then `explicit`), a dictionary
//! of strings or plain strings; other columns are ignored and nullable columns are fine as long as
//! they hold no null.

use super::{Edge, EdgeKind, GraphError, NeighborGraph};
use crate::io::{Location, ParquetStream};
use arrow::array::{
    Array, ArrayRef, AsArray, DictionaryArray, Float32Builder, Int8Array, RecordBatch, StringArray, StringBuilder,
};
use arrow::datatypes::{DataType, Field, Float32Type, Float64Type, Int32Type, Int64Type, Int8Type, Schema, SchemaRef};
use arrow::error::ArrowError;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use rayon::prelude::*;
use std::borrow::Cow;
use std::fmt::Write as _;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The value of the `nsl.format_version` metadata key written (and the only one read).
pub const FORMAT_VERSION: &str = "1";

/// Rows per record batch written: bounds the memory of the string buffers.
const WRITE_BATCH_ROWS: usize = 1 << 16;

/// Rows per row group (a row group is the unit readers can skip or read in parallel).
const ROW_GROUP_ROWS: usize = 1 << 20;

/// The Arrow schema of the written edge table.
pub fn edge_schema() -> Schema {
    Schema::new(vec![
        Field::new("source", DataType::Utf8, false),
        Field::new("target", DataType::Utf8, false),
        Field::new("weight", DataType::Float32, false),
        Field::new("kind", DataType::Dictionary(Box::new(DataType::Int8), Box::new(DataType::Utf8)), false),
    ])
}

/// Writes `graph` as a Parquet edge table (schema and metadata in the module docs), atomically:
/// its edges in insertion order through an [`EdgeTableWriter`].
///
/// # Errors
/// [`GraphError::Io`] if the file cannot be written, [`GraphError::Parquet`] if encoding fails (no
/// file is left behind then).
pub fn write_graph(graph: &NeighborGraph, path: &Path) -> Result<(), GraphError> {
    let meta = EdgeTableMeta {
        directed: !graph.is_symmetric(),
        provenance: graph.provenance().to_owned(),
        nodes: graph.node_count(),
    };
    let mut writer = EdgeTableWriter::create(path, &meta)?;
    for (source, target, edge) in graph.edges() {
        writer.push(source, target, edge)?;
    }
    writer.finish()
}

/// The file metadata of an edge table (see the module docs), for an [`EdgeTableWriter`], which
/// writes it before it has seen the edges.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EdgeTableMeta {
    /// `nsl.directed`: `false` iff every edge has its reverse with the same weight
    /// ([`NeighborGraph::is_symmetric`]).
    pub directed: bool,
    /// `nsl.provenance`: how the graph was made.
    pub provenance: String,
    /// `nsl.nodes`: the node count, isolated nodes included.
    pub nodes: usize,
}

/// Writes a Parquet edge table edge by edge, without a [`NeighborGraph`]: the same schema,
/// metadata, batches and row groups as [`write_graph`], so a graph's edges pushed in its order give
/// the same file, byte for byte. Rows are encoded in batches of 65,536 and flushed as row groups
/// of 1,048,576 rows (through [`crate::io::ParquetStream`]), so memory does not grow with the
/// number of edges. The file appears at `path` only on [`EdgeTableWriter::finish`]; dropping the
/// writer removes the temporary file.
///
/// ```
/// use nsl::graph::{read_parquet_graph, Edge, EdgeKind, EdgeTableMeta, EdgeTableWriter};
/// # let dir = tempfile::tempdir()?;
/// let path = dir.path().join("g.parquet");
/// let meta = EdgeTableMeta { directed: false, provenance: "by hand".into(), nodes: 2 };
/// let mut writer = EdgeTableWriter::create(&path, &meta)?;
/// let edge = Edge { weight: 0.5, kind: EdgeKind::Similarity };
/// writer.push("a", "b", edge)?;
/// writer.push("b", "a", edge)?;
/// writer.finish()?;
/// let graph = read_parquet_graph(&path)?;
/// assert_eq!((graph.edge_count(), graph.weight("b", "a")), (2, Some(0.5)));
/// assert_eq!(graph.provenance(), "by hand");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct EdgeTableWriter {
    stream: ParquetStream,
    path: PathBuf,
    schema: SchemaRef,
    /// The dictionary of the `kind` column: key i is `EdgeKind::ALL[i]`.
    kind_values: ArrayRef,
    /// The rows of the open batch.
    pending: Rows,
}

/// The columns of one record batch being filled.
struct Rows {
    sources: StringBuilder,
    targets: StringBuilder,
    weights: Float32Builder,
    kinds: Vec<i8>,
}

impl Rows {
    fn new() -> Self {
        Rows {
            sources: StringBuilder::with_capacity(WRITE_BATCH_ROWS, WRITE_BATCH_ROWS * 8),
            targets: StringBuilder::with_capacity(WRITE_BATCH_ROWS, WRITE_BATCH_ROWS * 8),
            weights: Float32Builder::with_capacity(WRITE_BATCH_ROWS),
            kinds: Vec::with_capacity(WRITE_BATCH_ROWS),
        }
    }

    fn push(&mut self, source: &str, target: &str, edge: Edge) {
        self.sources.append_value(source);
        self.targets.append_value(target);
        self.weights.append_value(edge.weight);
        self.kinds.push(kind_key(edge.kind));
    }

    fn len(&self) -> usize {
        self.kinds.len()
    }

    /// The batch of the rows (the builders are left empty).
    fn finish(&mut self, schema: &SchemaRef, kind_values: &ArrayRef) -> Result<RecordBatch, ArrowError> {
        let kinds = Int8Array::from(std::mem::replace(&mut self.kinds, Vec::with_capacity(WRITE_BATCH_ROWS)));
        let kind = DictionaryArray::<Int8Type>::try_new(kinds, kind_values.clone())?;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.sources.finish()),
            Arc::new(self.targets.finish()),
            Arc::new(self.weights.finish()),
            Arc::new(kind),
        ];
        RecordBatch::try_new(schema.clone(), columns)
    }
}

impl std::fmt::Debug for EdgeTableWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeTableWriter").field("path", &self.path).field("rows", &self.rows()).finish_non_exhaustive()
    }
}

impl EdgeTableWriter {
    /// Starts writing the edge table `path` with the metadata `meta`.
    ///
    /// # Errors
    /// [`GraphError::Io`] if the temporary file cannot be created, [`GraphError::Parquet`] if the
    /// encoder cannot be set up.
    pub fn create(path: &Path, meta: &EdgeTableMeta) -> Result<Self, GraphError> {
        let schema: SchemaRef = Arc::new(edge_schema());
        let metadata = vec![
            KeyValue::new("nsl.format_version".to_owned(), FORMAT_VERSION.to_owned()),
            KeyValue::new("nsl.directed".to_owned(), meta.directed.to_string()),
            KeyValue::new("nsl.provenance".to_owned(), meta.provenance.clone()),
            KeyValue::new("nsl.nodes".to_owned(), meta.nodes.to_string()),
        ];
        let options = WriterProperties::builder()
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .set_key_value_metadata(Some(metadata));
        let stream =
            ParquetStream::create(path, schema.clone(), options).map_err(|e| GraphError::parquet_write(path, e))?;
        let kind_values: ArrayRef = Arc::new(StringArray::from_iter_values(EdgeKind::ALL.iter().map(|k| k.as_str())));
        Ok(EdgeTableWriter { stream, path: path.to_path_buf(), schema, kind_values, pending: Rows::new() })
    }

    /// Appends the edge `source → target` (written as given: the caller checks the weight and
    /// the ids, as a [`NeighborGraph`] does).
    ///
    /// # Errors
    /// Those of encoding a full batch ([`GraphError::Parquet`], [`GraphError::Io`]).
    pub fn push(&mut self, source: &str, target: &str, edge: Edge) -> Result<(), GraphError> {
        self.pending.push(source, target, edge);
        if self.pending.len() == WRITE_BATCH_ROWS {
            self.flush_batch()?;
        }
        Ok(())
    }

    /// Appends the edges `edge(0)`, …, `edge(count − 1)`, in that order: the file is the one
    /// [`EdgeTableWriter::push`] of each would give, but the record batches of each row group are
    /// built in parallel (rayon), for producers that can look an edge up by its index (an edge
    /// list in memory).
    ///
    /// # Errors
    /// As [`EdgeTableWriter::push`].
    pub fn push_indexed<'a, F>(&mut self, count: usize, edge: F) -> Result<(), GraphError>
    where
        F: Fn(usize) -> (&'a str, &'a str, Edge) + Sync,
    {
        // Complete the open batch first, so that batch boundaries are those of `push`.
        let head = ((WRITE_BATCH_ROWS - self.pending.len()) % WRITE_BATCH_ROWS).min(count);
        for i in 0..head {
            let (source, target, e) = edge(i);
            self.push(source, target, e)?;
        }
        let full = (count - head) / WRITE_BATCH_ROWS;
        let group = ROW_GROUP_ROWS / WRITE_BATCH_ROWS;
        for first in (0..full).step_by(group) {
            let batches: Vec<Result<RecordBatch, ArrowError>> = (first..(first + group).min(full))
                .into_par_iter()
                .map(|b| {
                    let start = head + b * WRITE_BATCH_ROWS;
                    let mut rows = Rows::new();
                    for i in start..start + WRITE_BATCH_ROWS {
                        let (source, target, e) = edge(i);
                        rows.push(source, target, e);
                    }
                    rows.finish(&self.schema, &self.kind_values)
                })
                .collect();
            for batch in batches {
                let batch = batch.map_err(|e| GraphError::parquet_write(&self.path, e.into()))?;
                self.stream.write(&batch).map_err(|e| GraphError::parquet_write(&self.path, e))?;
            }
        }
        for i in head + full * WRITE_BATCH_ROWS..count {
            let (source, target, e) = edge(i);
            self.push(source, target, e)?;
        }
        Ok(())
    }

    /// Rows pushed so far.
    pub fn rows(&self) -> u64 {
        self.stream.rows() + self.pending.len() as u64
    }

    /// Writes the pending rows, the footer and commits the file.
    ///
    /// # Errors
    /// [`GraphError::Io`] or [`GraphError::Parquet`]; no file is left behind then.
    pub fn finish(mut self) -> Result<(), GraphError> {
        if self.pending.len() > 0 {
            self.flush_batch()?;
        }
        let path = self.path;
        self.stream.finish().map_err(|e| GraphError::parquet_write(&path, e))
    }

    /// Encodes the pending rows as one record batch.
    fn flush_batch(&mut self) -> Result<(), GraphError> {
        let batch = self.pending.finish(&self.schema, &self.kind_values);
        let batch = batch.map_err(|e| GraphError::parquet_write(&self.path, e.into()))?;
        self.stream.write(&batch).map_err(|e| GraphError::parquet_write(&self.path, e))
    }
}

/// The dictionary key of `kind` in the `kind` column: its index in [`EdgeKind::ALL`].
fn kind_key(kind: EdgeKind) -> i8 {
    match kind {
        EdgeKind::Explicit => 0,
        EdgeKind::Similarity => 1,
        EdgeKind::Adversarial => 2,
    }
}

/// Reads a Parquet edge table (see the module docs for the accepted schemas). The provenance comes
/// from the `nsl.provenance` metadata, or is `Parquet <path>` when there is none. Duplicate rows
/// keep the larger weight.
///
/// # Errors
/// - [`GraphError::Io`] if the file cannot be opened;
/// - [`GraphError::Invalid`] naming the file and
///   - nothing more if it is not a Parquet file or has an unsupported `nsl.format_version`,
///   - the column if a required column (`source`, `target`, `weight`) is missing or has a type
///     that is not accepted (the message names the type found and the types expected),
///   - the 0-based row and the column for a null, an empty id, a weight that is negative, NaN or
///     infinite, or an unknown `kind`.
pub fn read_graph(path: &Path) -> Result<NeighborGraph, GraphError> {
    let file = File::open(path).map_err(|e| GraphError::io(path, e))?;
    let not_parquet = |e: parquet::errors::ParquetError| {
        GraphError::invalid(path, Location::File, format!("not a readable Parquet file: {e}"))
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(not_parquet)?;
    let metadata = |key: &str| -> Option<String> {
        builder.metadata().file_metadata().key_value_metadata()?.iter().find(|kv| kv.key == key)?.value.clone()
    };
    if let Some(version) = metadata("nsl.format_version") {
        if version != FORMAT_VERSION {
            return Err(GraphError::invalid(
                path,
                Location::File,
                format!("unsupported nsl.format_version `{version}` (this nsl reads `{FORMAT_VERSION}`)"),
            ));
        }
    }
    let provenance = metadata("nsl.provenance").unwrap_or_else(|| format!("Parquet {}", path.display()));

    // Check the schema up front, so that a wrong type is reported before any row is read.
    let schema = builder.schema().clone();
    let mut roots = Vec::with_capacity(4);
    for name in ["source", "target", "weight"] {
        let (index, field) = schema.column_with_name(name).ok_or_else(|| {
            let found: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            GraphError::invalid(
                path,
                Location::Column(name.to_owned()),
                format!("missing required column `{name}` (found columns: {})", found.join(", ")),
            )
        })?;
        let ok = if name == "weight" { is_weight_type(field.data_type()) } else { is_id_type(field.data_type()) };
        if !ok {
            let expected = if name == "weight" { WEIGHT_TYPES } else { ID_TYPES };
            return Err(wrong_type(path, name, field.data_type(), expected));
        }
        roots.push(index);
    }
    if let Some((index, field)) = schema.column_with_name("kind") {
        if !is_kind_type(field.data_type()) {
            return Err(wrong_type(path, "kind", field.data_type(), KIND_TYPES));
        }
        roots.push(index);
    }
    // The footer's row count only sizes the graph.
    let rows = usize::try_from(builder.metadata().file_metadata().num_rows()).unwrap_or(0);
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
    let reader = builder.with_projection(mask).with_batch_size(WRITE_BATCH_ROWS).build().map_err(not_parquet)?;
    let mut graph = NeighborGraph::with_capacity(rows / 4, rows);
    let mut first_row = 0usize;
    for batch in reader {
        let batch = batch.map_err(|e| GraphError::invalid(path, Location::File, format!("cannot decode: {e}")))?;
        add_batch(&mut graph, &batch, first_row, path)?;
        first_row += batch.num_rows();
    }
    graph.set_provenance(provenance);
    Ok(graph)
}

/// Id column types accepted by [`read_graph`], for messages.
const ID_TYPES: &str = "utf8, large_utf8, utf8_view, int32 or int64";
/// Weight column types accepted by [`read_graph`], for messages.
const WEIGHT_TYPES: &str = "float32 or float64";
/// Kind column types accepted by [`read_graph`], for messages.
const KIND_TYPES: &str = "dictionary<int, utf8>, utf8 or large_utf8";

fn is_id_type(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Int32 | DataType::Int64)
}

fn is_weight_type(t: &DataType) -> bool {
    matches!(t, DataType::Float32 | DataType::Float64)
}

fn is_kind_type(t: &DataType) -> bool {
    match t {
        DataType::Dictionary(key, value) => key.is_integer() && matches!(**value, DataType::Utf8 | DataType::LargeUtf8),
        DataType::Utf8 | DataType::LargeUtf8 => true,
        _ => false,
    }
}

fn wrong_type(path: &Path, column: &str, found: &DataType, expected: &str) -> GraphError {
    GraphError::invalid(
        path,
        Location::Column(column.to_owned()),
        format!("column `{column}` has type {found}, expected {expected}"),
    )
}

/// An id column of one of the accepted types.
enum Ids<'a> {
    Utf8(&'a arrow::array::StringArray),
    LargeUtf8(&'a arrow::array::LargeStringArray),
    Utf8View(&'a arrow::array::StringViewArray),
    Int32(&'a arrow::array::Int32Array),
    Int64(&'a arrow::array::Int64Array),
}

impl<'a> Ids<'a> {
    /// Views `array`; its type was checked by [`is_id_type`].
    fn new(array: &'a dyn Array) -> Option<Self> {
        Some(match array.data_type() {
            DataType::Utf8 => Ids::Utf8(array.as_string_opt::<i32>()?),
            DataType::LargeUtf8 => Ids::LargeUtf8(array.as_string_opt::<i64>()?),
            DataType::Utf8View => Ids::Utf8View(array.as_string_view_opt()?),
            DataType::Int32 => Ids::Int32(array.as_primitive_opt::<Int32Type>()?),
            DataType::Int64 => Ids::Int64(array.as_primitive_opt::<Int64Type>()?),
            _ => return None,
        })
    }

    /// The id in `row` (not null); integers are formatted into `buf`.
    fn get<'b>(&'b self, row: usize, buf: &'b mut String) -> &'b str {
        let int = |buf: &'b mut String, v: i64| -> &'b str {
            buf.clear();
            // Writing into a String cannot fail.
            let _ = write!(buf, "{v}");
            buf.as_str()
        };
        match self {
            Ids::Utf8(a) => a.value(row),
            Ids::LargeUtf8(a) => a.value(row),
            Ids::Utf8View(a) => a.value(row),
            Ids::Int32(a) => int(buf, i64::from(a.value(row))),
            Ids::Int64(a) => int(buf, a.value(row)),
        }
    }
}

/// The `kind` column: per-row kinds, or all explicit when the column is absent.
enum Kinds<'a> {
    Absent,
    /// Dictionary keys (normalized) and the kind of each dictionary value (`Err` holds the unknown text).
    Dictionary(Vec<usize>, Vec<Result<EdgeKind, String>>),
    Utf8(&'a arrow::array::StringArray),
    LargeUtf8(&'a arrow::array::LargeStringArray),
}

/// Adds the rows of one record batch; `first_row` is the file row of the batch's row 0.
fn add_batch(graph: &mut NeighborGraph, batch: &RecordBatch, first_row: usize, path: &Path) -> Result<(), GraphError> {
    let column = |name: &str| -> Result<&ArrayRef, GraphError> {
        let array = batch.column_by_name(name).ok_or_else(|| {
            GraphError::invalid(path, Location::Column(name.to_owned()), format!("missing column `{name}`"))
        })?;
        if array.null_count() > 0 {
            // The first null, for the message.
            let row = (0..array.len()).find(|&i| array.is_null(i)).unwrap_or(0);
            return Err(GraphError::invalid(
                path,
                Location::RowColumn(first_row + row, name.to_owned()),
                format!("null `{name}`"),
            ));
        }
        Ok(array)
    };
    let unexpected = |name: &str, array: &ArrayRef| wrong_type(path, name, array.data_type(), "a checked type");
    let sources_array = column("source")?;
    let targets_array = column("target")?;
    let weights_array = column("weight")?;
    let sources = Ids::new(sources_array.as_ref()).ok_or_else(|| unexpected("source", sources_array))?;
    let targets = Ids::new(targets_array.as_ref()).ok_or_else(|| unexpected("target", targets_array))?;
    let weights: Cow<'_, [f64]> = match weights_array.data_type() {
        DataType::Float64 => Cow::Borrowed(weights_array.as_primitive::<Float64Type>().values()),
        DataType::Float32 => {
            Cow::Owned(weights_array.as_primitive::<Float32Type>().values().iter().map(|&w| f64::from(w)).collect())
        }
        _ => return Err(unexpected("weight", weights_array)),
    };
    let kinds = match batch.column_by_name("kind") {
        None => Kinds::Absent,
        Some(_) => {
            let array = column("kind")?;
            match array.data_type() {
                DataType::Utf8 => Kinds::Utf8(array.as_string::<i32>()),
                DataType::LargeUtf8 => Kinds::LargeUtf8(array.as_string::<i64>()),
                DataType::Dictionary(..) => {
                    let dict = array.as_any_dictionary_opt().ok_or_else(|| unexpected("kind", array))?;
                    let values = dict.values();
                    let texts: Vec<Result<EdgeKind, String>> = match values.data_type() {
                        DataType::Utf8 => values.as_string::<i32>().iter().map(parse_kind).collect(),
                        DataType::LargeUtf8 => values.as_string::<i64>().iter().map(parse_kind).collect(),
                        _ => return Err(unexpected("kind", array)),
                    };
                    Kinds::Dictionary(dict.normalized_keys(), texts)
                }
                _ => return Err(unexpected("kind", array)),
            }
        }
    };
    let (mut source_buf, mut target_buf) = (String::new(), String::new());
    for (row, &weight) in weights.iter().enumerate() {
        let at = |name: &str| Location::RowColumn(first_row + row, name.to_owned());
        let source = sources.get(row, &mut source_buf);
        let target = targets.get(row, &mut target_buf);
        for (name, id) in [("source", source), ("target", target)] {
            if id.is_empty() {
                return Err(GraphError::invalid(path, at(name), format!("empty `{name}` id")));
            }
        }
        let narrowed = weight as f32;
        if !(narrowed.is_finite() && narrowed >= 0.0) {
            return Err(GraphError::invalid(
                path,
                at("weight"),
                format!("edge {source} -> {target}: weight {weight} is not a finite non-negative float32"),
            ));
        }
        let kind = match &kinds {
            Kinds::Absent => Ok(EdgeKind::Explicit),
            Kinds::Dictionary(keys, values) => values.get(keys[row]).cloned().unwrap_or(Err(String::new())),
            Kinds::Utf8(a) => parse_kind(Some(a.value(row))),
            Kinds::LargeUtf8(a) => parse_kind(Some(a.value(row))),
        }
        .map_err(|text| {
            GraphError::invalid(
                path,
                at("kind"),
                format!("unknown edge kind `{text}` (expected explicit, similarity or adversarial)"),
            )
        })?;
        graph.add_edge(source, target, narrowed, kind).map_err(|e| e.at(path, at("weight")))?;
    }
    Ok(())
}

/// Parses a `kind` value; the error is the text itself.
fn parse_kind(text: Option<&str>) -> Result<EdgeKind, String> {
    let text = text.unwrap_or("null");
    EdgeKind::parse(text).ok_or_else(|| text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Edge `i` of a synthetic list: ids from a table of 5,000, weights and kinds varying.
    fn edge_at(ids: &[String], i: usize) -> (&str, &str, Edge) {
        let kind = EdgeKind::ALL[i % 3];
        (&ids[i / 300 % ids.len()], &ids[(i * 7919) % ids.len()], Edge { weight: (i % 1000) as f32 / 999.0, kind })
    }

    #[test]
    fn indexed_pushes_write_the_bytes_of_single_pushes() {
        let ids: Vec<String> = (0..5_000).map(|i| format!("n{i}")).collect();
        let dir = tempfile::tempdir().unwrap();
        let meta = EdgeTableMeta { directed: true, provenance: "test".into(), nodes: ids.len() };
        // Two row groups and a partial batch; the indexed writer starts after 1,000 single pushes.
        let count = ROW_GROUP_ROWS + 3 * WRITE_BATCH_ROWS + 1_234;
        let one = dir.path().join("one.parquet");
        let mut w = EdgeTableWriter::create(&one, &meta).unwrap();
        for i in 0..count {
            let (s, t, e) = edge_at(&ids, i);
            w.push(s, t, e).unwrap();
        }
        w.finish().unwrap();
        let many = dir.path().join("many.parquet");
        let mut w = EdgeTableWriter::create(&many, &meta).unwrap();
        for i in 0..1_000 {
            let (s, t, e) = edge_at(&ids, i);
            w.push(s, t, e).unwrap();
        }
        w.push_indexed(count - 1_000, |i| edge_at(&ids, i + 1_000)).unwrap();
        assert_eq!(w.rows(), count as u64);
        w.finish().unwrap();
        assert_eq!(std::fs::read(&one).unwrap(), std::fs::read(&many).unwrap());
        let graph = read_graph(&many).unwrap();
        // Pairs repeat in this list (the reader keeps the larger weight), so at most `count` edges.
        assert!(graph.edge_count() > 1_000_000 && graph.edge_count() <= count, "{}", graph.edge_count());
        let (s, t, e) = edge_at(&ids, 777_777);
        assert_eq!(graph.weight(s, t), Some(e.weight));
    }
}
