//! The Parquet samples table: one row per sample.
//!
//! What [`write_samples`] writes (and what pyarrow/pandas read as is):
//!
//! | column | type | |
//! |---|---|---|
//! | `id` | `utf8` | unique |
//! | `features` | `fixed_size_list<float32>[d]` | the flattened item, row-major |
//! | `label` | `int64` | only when the dataset has labels |
//!
//! with the file key/value metadata `nsl.format_version = 1`, `nsl.item_shape` (e.g. `1,28,28`) and,
//! when known, `nsl.class_names` (a JSON list of strings indexed by label).
//!
//! [`read_samples`] reads that layout and more general tables (see its documentation): ids may be
//! integers, features may be a `list`/`large_list`/`fixed_size_list` of `float32`/`float64` under any
//! name (`features`, `embedding`, …) or several scalar numeric columns, and labels may be strings.

use super::layout::{token_ids, FeatureGroup, FeatureKind, FeatureLayout, FEATURE_LAYOUT_KEY, MAX_VOCAB, PAD};
use super::{index_class_names, DataError, Dataset, SampleColumns};
use crate::io::{write_parquet, Location};
use arrow::array::{Array, ArrayRef, AsArray, FixedSizeListArray, Float32Array, Int64Array, ListArray, StringArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Float32Type, Float64Type, Int64Type, Schema};
use arrow::record_batch::RecordBatch;
use ndarray::{s, Array2};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;
use std::collections::HashMap;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

/// Metadata key of the format version written by [`write_samples`].
pub const FORMAT_VERSION_KEY: &str = "nsl.format_version";
/// Metadata key of the item shape, comma-separated sizes such as `1,28,28`.
pub const ITEM_SHAPE_KEY: &str = "nsl.item_shape";
/// Metadata key of the class names, a JSON list of strings indexed by label.
pub const CLASS_NAMES_KEY: &str = "nsl.class_names";

/// Rows per record batch when writing: bounds the extra memory of the Arrow copy.
const WRITE_BATCH_ROWS: usize = 16_384;

/// One part of a table's features.
#[derive(Debug)]
enum FeatureSource {
    /// One float list column (`list`, `large_list` or `fixed_size_list` of `float32`/`float64`):
    /// a dense group of the list's (fixed) length.
    List(String),
    /// Several scalar numeric columns, one value each, in this order: one dense group.
    Scalars(Vec<String>),
    /// An integer list column (`list`, `large_list` or `fixed_size_list` of an integer type):
    /// token ids of variable length, a token group.
    Tokens(String),
}

impl FeatureSource {
    fn columns(&self) -> Vec<&str> {
        match self {
            FeatureSource::List(name) | FeatureSource::Tokens(name) => vec![name],
            FeatureSource::Scalars(names) => names.iter().map(String::as_str).collect(),
        }
    }
}

/// What one [`FeatureSource`] gathers batch by batch.
enum PartData {
    /// Row-major values and the width, once known.
    Dense { values: Vec<f32>, width: Option<usize> },
    /// Each row's ids, concatenated, and where each row starts (`n + 1` offsets).
    Tokens { ids: Vec<u32>, offsets: Vec<usize> },
}

/// Reads a Parquet samples table.
///
/// Columns are chosen by `columns` ([`SampleColumns`]):
/// - **id** (required): `utf8`, `large_utf8` or any integer type (converted to its decimal string);
/// - **features**: with `columns.features` empty, the groups of the file's `nsl.feature_layout`
///   when it has one, else the column `features` if present, else every scalar numeric column other
///   than the id and label (in table order), else — when there is none — the table's only list
///   column. Named columns may be (see docs/formats.md, "Feature columns"):
///   - scalar numeric columns (any integer or float type): gathered, in the given order, into one
///     dense group placed where the first of them is named;
///   - float lists (`list`/`large_list`/`fixed_size_list` of `float32`/`float64`): a dense group
///     each; every row must have the same length;
///   - integer lists (`list`/`large_list`/`fixed_size_list` of an integer type): token ids of
///     variable length, a [`FeatureKind::Tokens`] group of `max_len` = the longest list (or the
///     file's `nsl.feature_layout` when it is longer) and `vocab` = `columns.vocab`, else the
///     layout's, else the largest id + 1.
///
///   Values are stored as `f32`. A table with only one dense group gets the default layout
///   ([`FeatureLayout::dense`]), exactly as before token groups existed;
/// - **label** (optional, absent column = no labels): an integer type (each ≥ 0, stored as `u32`) or
///   strings (class names sorted by their bytes, as for LINQS, or the order of `nsl.class_names`
///   when the file has it).
///
/// The item shape is `nsl.item_shape` from the file metadata when present and the table has one
/// dense group (its product must equal the feature width), else `[d]`; integer labels take their
/// class names from `nsl.class_names`.
///
/// # Errors
/// [`DataError`] naming the file and the row (0-based) and column: an empty or unreadable file, a
/// missing required column (with the columns present), a column of the wrong type (found and
/// expected types), a null, feature lists of different lengths (found and expected), a NaN or
/// infinite feature, a negative token id or one past the vocabulary, a negative label, bad `nsl.*`
/// metadata, and duplicate ids.
pub fn read_samples(path: &Path, columns: &SampleColumns) -> Result<Dataset, DataError> {
    read_samples_as(path, columns, true)
}

/// [`read_samples`]; with `class_labels` false the label column is left out (neither labels nor a
/// feature): it holds another task's targets, read by [`super::attach_targets`].
pub(super) fn read_samples_as(path: &Path, columns: &SampleColumns, class_labels: bool) -> Result<Dataset, DataError> {
    let builder = open_parquet(path)?;
    let schema = builder.schema().clone();
    let metadata = schema.metadata();

    // Without an id column (and `row_ids`), ids are the row numbers.
    let has_ids = !columns.row_ids || schema.field_with_name(&columns.id).is_ok();
    if has_ids {
        let id = require_column(path, &schema, &columns.id)?;
        check_type(path, id, is_key_type, "utf8, large_utf8 or an integer type")?;
    }
    let label = schema.field_with_name(&columns.label).ok().filter(|_| class_labels);
    if let Some(label) = label {
        check_type(path, label, is_key_type, "an integer type or utf8/large_utf8")?;
    }
    let stored_layout = metadata.get(FEATURE_LAYOUT_KEY).map(|v| parse_layout(path, v)).transpose()?;
    let sources = feature_sources(path, &schema, columns, stored_layout.as_ref())?;
    let item_shape = metadata.get(ITEM_SHAPE_KEY).map(|v| parse_item_shape(path, v)).transpose()?;
    let class_names = metadata.get(CLASS_NAMES_KEY).map(|v| parse_class_names(path, v)).transpose()?;

    let mut needed: Vec<&str> = if has_ids { vec![&columns.id] } else { Vec::new() };
    needed.extend(sources.iter().flat_map(FeatureSource::columns));
    if label.is_some() {
        needed.push(&columns.label);
    }
    let roots: Vec<usize> = schema
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| needed.contains(&f.name().as_str()))
        .map(|(i, _)| i)
        .collect();
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
    let reader = builder
        .with_projection(mask)
        .build()
        .map_err(|e| DataError::invalid(path, Location::File, format!("cannot read the table: {e}")))?;

    let mut parts: Vec<PartData> = sources
        .iter()
        .map(|source| match source {
            FeatureSource::Scalars(names) => PartData::Dense { values: Vec::new(), width: Some(names.len()) },
            FeatureSource::List(name) => PartData::Dense {
                values: Vec::new(),
                width: match schema.field_with_name(name).map(|f| f.data_type().clone()) {
                    Ok(DataType::FixedSizeList(_, size)) => usize::try_from(size).ok(),
                    _ => None,
                },
            },
            FeatureSource::Tokens(_) => PartData::Tokens { ids: Vec::new(), offsets: vec![0] },
        })
        .collect();
    let mut table = Collected::default();
    for batch in reader {
        let batch = batch.map_err(|e| {
            DataError::invalid(path, Location::Row(table.ids.len()), format!("cannot read the table: {e}"))
        })?;
        let row0 = table.ids.len();
        if has_ids {
            append_ids(path, row0, &columns.id, column(path, &batch, &columns.id)?, &mut table.ids)?;
        } else {
            table.ids.extend((row0..row0 + batch.num_rows()).map(|r| r.to_string()));
        }
        for (source, part) in sources.iter().zip(parts.iter_mut()) {
            match (source, part) {
                (FeatureSource::List(name), PartData::Dense { values, width }) => {
                    append_list(path, row0, name, column(path, &batch, name)?, width, values)?
                }
                (FeatureSource::Scalars(names), PartData::Dense { values, .. }) => {
                    let arrays = names.iter().map(|n| column(path, &batch, n)).collect::<Result<Vec<_>, _>>()?;
                    append_scalars(path, row0, names, &arrays, values)?
                }
                (FeatureSource::Tokens(name), PartData::Tokens { ids, offsets }) => {
                    append_tokens(path, row0, name, column(path, &batch, name)?, ids, offsets)?
                }
                _ => return Err(DataError::invalid(path, Location::File, "internal: feature part mismatch")),
            }
        }
        if label.is_some() {
            append_labels(path, row0, &columns.label, column(path, &batch, &columns.label)?, &mut table)?;
        }
    }

    let n = table.ids.len();
    let (features, item_shape, layout) = match (sources.as_slice(), parts.as_mut_slice()) {
        // One dense group: the layout every table had before token groups, read as before.
        ([FeatureSource::List(_) | FeatureSource::Scalars(_)], [PartData::Dense { values, width }]) => {
            let d = width.or_else(|| item_shape.as_ref().map(|s| s.iter().product())).unwrap_or(0);
            let item_shape = item_shape.unwrap_or_else(|| vec![d]);
            if item_shape.iter().product::<usize>() != d {
                return Err(DataError::invalid(
                    path,
                    Location::File,
                    format!("metadata {ITEM_SHAPE_KEY} {item_shape:?} does not hold the {d} feature values per row"),
                ));
            }
            let features = Array2::from_shape_vec((n, d), std::mem::take(values))
                .map_err(|e| DataError::invalid(path, Location::File, e.to_string()))?;
            (features, item_shape, None)
        }
        _ => {
            let (features, layout) = assemble(path, &sources, &parts, n, columns.vocab, stored_layout.as_ref())?;
            let d = features.ncols();
            (features, vec![d], Some(layout))
        }
    };
    let (labels, class_names) = match label {
        None => (None, None),
        Some(field) if is_integer(field.data_type()) => (Some(table.labels), class_names),
        Some(_) => {
            let (names, indices) = match class_names {
                Some(names) => {
                    let indices = index_by_names(path, &columns.label, &table.label_strings, &names)?;
                    (names, indices)
                }
                None => index_class_names(&table.label_strings),
            };
            (Some(indices), Some(names))
        }
    };
    let dataset = Dataset::new(table.ids, features, item_shape, labels, class_names).map_err(|e| e.in_file(path))?;
    match layout {
        Some(layout) => dataset.with_layout(layout).map_err(|e| e.in_file(path)),
        None => Ok(dataset),
    }
}

/// The format versions of `nsl.format_version` this nsl reads.
const FORMAT_VERSIONS: [&str; 1] = ["1"];

/// Opens a Parquet table of samples (or of their targets, weights or neighbors): the one place
/// every such reader starts, so each refuses the same files. The file must be non-empty Parquet,
/// and its `nsl.format_version`, when present (files from pyarrow or Spark have none), must be
/// one this nsl reads: a later version may store the same columns with another meaning.
///
/// # Errors
/// [`DataError`] naming the file: unreadable, empty, not Parquet, or another format version.
pub(crate) fn open_parquet(path: &Path) -> Result<ParquetRecordBatchReaderBuilder<File>, DataError> {
    let file = File::open(path).map_err(|e| DataError::io(path, e))?;
    if file.metadata().map_err(|e| DataError::io(path, e))?.len() == 0 {
        return Err(DataError::invalid(path, Location::File, "file is empty (expected a Parquet file)"));
    }
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| DataError::invalid(path, Location::File, format!("not a readable Parquet file: {e}")))?;
    if let Some(version) = builder.schema().metadata().get(FORMAT_VERSION_KEY) {
        if !FORMAT_VERSIONS.contains(&version.trim()) {
            return Err(DataError::invalid(
                path,
                Location::File,
                format!(
                    "metadata {FORMAT_VERSION_KEY} `{version}` is not supported (this nsl reads version {}): the \
                     file was written by a later nsl",
                    FORMAT_VERSIONS.join(", ")
                ),
            ));
        }
    }
    Ok(builder)
}

/// Puts the parts side by side into one row-major matrix (token groups padded with [`PAD`]) and
/// their layout, checking every token id against its group's vocabulary.
fn assemble(
    path: &Path,
    sources: &[FeatureSource],
    parts: &[PartData],
    n: usize,
    vocab: Option<usize>,
    stored: Option<&FeatureLayout>,
) -> Result<(Array2<f32>, FeatureLayout), DataError> {
    let mut groups = Vec::with_capacity(parts.len());
    for (source, part) in sources.iter().zip(parts) {
        let name = match source {
            FeatureSource::List(name) | FeatureSource::Tokens(name) => name.clone(),
            FeatureSource::Scalars(_) => "features".to_owned(),
        };
        let kind = match part {
            PartData::Dense { width, .. } => FeatureKind::Dense { width: width.unwrap_or(0) },
            PartData::Tokens { ids, offsets } => {
                let stored =
                    stored.and_then(|l| l.groups().iter().find(|g| g.name == name)).and_then(|g| match g.kind {
                        FeatureKind::Tokens { max_len, vocab } => Some((max_len, vocab)),
                        FeatureKind::Dense { .. } => None,
                    });
                let longest = offsets.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
                // An all-empty column still takes one (padding) column, so the group exists.
                let max_len = longest.max(stored.map_or(0, |s| s.0)).max(1);
                let largest = ids.iter().copied().max().map_or(0, |m| m as usize + 1);
                let vocab = vocab.or(stored.map(|s| s.1)).unwrap_or(largest).max(1);
                if vocab > MAX_VOCAB {
                    return Err(DataError::invalid(
                        path,
                        Location::Column(name),
                        format!(
                            "vocabulary size {vocab} is more than {MAX_VOCAB}: token ids are stored as f32, exact \
                             only below 2^24"
                        ),
                    ));
                }
                if let Some(at) = ids.iter().position(|&id| id as usize >= vocab) {
                    let row = offsets.partition_point(|&o| o <= at) - 1;
                    return Err(DataError::invalid(
                        path,
                        Location::RowColumn(row, format!("{name}[{}]", at - offsets[row])),
                        format!("token id {} is past the vocabulary of {vocab} ids (0..{vocab})", ids[at]),
                    ));
                }
                FeatureKind::Tokens { max_len, vocab }
            }
        };
        groups.push(FeatureGroup { name, kind });
    }
    let layout = FeatureLayout::new(groups).map_err(|e| e.in_file(path))?;
    let d = layout.width();
    let mut features = Array2::from_elem((n, d), PAD);
    for ((offset, group), part) in layout.offsets().zip(parts) {
        let w = group.kind.width();
        match part {
            PartData::Dense { values, .. } => {
                for (row, chunk) in values.chunks_exact(w.max(1)).enumerate().take(n) {
                    features.slice_mut(s![row, offset..offset + w]).iter_mut().zip(chunk).for_each(|(x, &v)| *x = v);
                }
            }
            PartData::Tokens { ids, offsets } => {
                for row in 0..n {
                    let cell = &ids[offsets[row]..offsets[row + 1]];
                    features
                        .slice_mut(s![row, offset..offset + cell.len()])
                        .iter_mut()
                        .zip(cell)
                        .for_each(|(x, &v)| *x = v as f32);
                }
            }
        }
    }
    Ok((features, layout))
}

/// What [`read_samples`] gathers batch by batch besides the features.
#[derive(Default)]
struct Collected {
    ids: Vec<String>,
    /// Integer labels, when the label column is an integer column.
    labels: Vec<u32>,
    /// String labels, when the label column holds strings; indexed once all are read.
    label_strings: Vec<String>,
}

/// Writes a dataset as a Parquet samples table (layout in the [module docs](self)), zstd-compressed,
/// atomically: `path` is replaced only once the file is complete ([`crate::io::write_parquet`]).
///
/// # Errors
/// [`DataError::Io`] naming `path` if the file cannot be written, [`DataError::Parquet`] if
/// encoding fails (nothing is left behind then), or [`DataError::Dataset`] if the item is too wide
/// for Arrow (more than `i32::MAX` values).
pub fn write_samples(dataset: &Dataset, path: &Path) -> Result<(), DataError> {
    let layout = dataset.layout();
    let plain = !layout.has_tokens() && layout.groups().len() == 1;
    // The columns of the features: `features` alone for the default layout, else one per group.
    let mut groups: Vec<(usize, FeatureGroup)> = if plain {
        vec![(0, FeatureGroup { name: "features".into(), kind: FeatureKind::Dense { width: dataset.dim() } })]
    } else {
        layout.offsets().map(|(o, g)| (o, g.clone())).collect()
    };
    let item = Arc::new(Field::new("item", DataType::Float32, false));
    let token = Arc::new(Field::new("item", DataType::Int64, false));
    let mut fields = vec![Field::new("id", DataType::Utf8, false)];
    for (_, group) in &groups {
        if group.name == "id" || group.name == "label" {
            return Err(DataError::Dataset(format!(
                "feature group `{}` would collide with the {} column",
                group.name, group.name
            )));
        }
        fields.push(match group.kind {
            FeatureKind::Dense { width } => {
                let size = i32::try_from(width).map_err(|_| {
                    DataError::Dataset(format!("{width} features per row do not fit a Parquet fixed_size_list"))
                })?;
                Field::new(&group.name, DataType::FixedSizeList(item.clone(), size), false)
            }
            FeatureKind::Tokens { .. } => Field::new(&group.name, DataType::List(token.clone()), false),
        });
    }
    if dataset.labels().is_some() {
        fields.push(Field::new("label", DataType::Int64, false));
    }
    let shape = dataset.item_shape().iter().map(usize::to_string).collect::<Vec<_>>().join(",");
    let mut metadata = vec![
        KeyValue::new(FORMAT_VERSION_KEY.to_owned(), "1".to_owned()),
        KeyValue::new(ITEM_SHAPE_KEY.to_owned(), shape),
    ];
    if let Some(names) = dataset.class_names() {
        let json = serde_json::to_string(names).map_err(|e| DataError::Dataset(e.to_string()))?;
        metadata.push(KeyValue::new(CLASS_NAMES_KEY.to_owned(), json));
    }
    if !plain {
        let json = serde_json::to_string(layout).map_err(|e| DataError::Dataset(e.to_string()))?;
        metadata.push(KeyValue::new(FEATURE_LAYOUT_KEY.to_owned(), json));
    }
    // The same pairs go into the Arrow schema too: pyarrow shows a file's `schema.metadata` from the
    // embedded Arrow schema when there is one, and the file key/value metadata otherwise.
    let schema_metadata: HashMap<String, String> =
        metadata.iter().map(|kv| (kv.key.clone(), kv.value.clone().unwrap_or_default())).collect();
    let schema = Arc::new(Schema::new_with_metadata(fields, schema_metadata));
    let options = WriterProperties::builder()
        // Ids are unique: a dictionary would only add a page.
        .set_column_dictionary_enabled(ColumnPath::from("id"), false)
        .set_key_value_metadata(Some(metadata));

    let features = dataset.features();
    let groups = std::mem::take(&mut groups);
    let batches = (0..dataset.len()).step_by(WRITE_BATCH_ROWS).map(|start| {
        let end = (start + WRITE_BATCH_ROWS).min(dataset.len());
        let ids: ArrayRef = Arc::new(StringArray::from_iter_values(&dataset.ids()[start..end]));
        let mut arrays = vec![ids];
        for (offset, group) in &groups {
            let w = group.kind.width();
            let block = features.slice(s![start..end, *offset..*offset + w]);
            arrays.push(match group.kind {
                FeatureKind::Dense { .. } => {
                    let values = Float32Array::from_iter_values(block.iter().copied());
                    // `w` fits an i32: checked when the fields were built.
                    Arc::new(FixedSizeListArray::try_new(item.clone(), w as i32, Arc::new(values), None)?)
                }
                FeatureKind::Tokens { .. } => {
                    let mut offsets = vec![0i32];
                    let mut values = Vec::new();
                    for row in block.rows() {
                        values.extend(token_ids(row.iter().copied()).map(i64::from));
                        offsets.push(i32::try_from(values.len()).map_err(|_| {
                            arrow::error::ArrowError::ComputeError("token lists too long for one batch".into())
                        })?);
                    }
                    let offsets = arrow::buffer::OffsetBuffer::new(offsets.into());
                    Arc::new(ListArray::try_new(token.clone(), offsets, Arc::new(Int64Array::from(values)), None)?)
                }
            });
        }
        if let Some(labels) = dataset.labels() {
            arrays.push(Arc::new(Int64Array::from_iter_values(labels[start..end].iter().map(|&l| i64::from(l)))));
        }
        RecordBatch::try_new(schema.clone(), arrays)
    });
    write_parquet(path, schema.clone(), options, batches).map_err(|e| DataError::parquet_write(path, e))
}

/// The field `name`, or an error naming it and listing the columns present.
fn require_column<'a>(path: &Path, schema: &'a Schema, name: &str) -> Result<&'a Field, DataError> {
    schema.field_with_name(name).map_err(|_| {
        DataError::invalid(
            path,
            Location::Column(name.to_owned()),
            format!("missing required column; columns present: {}", column_list(schema)),
        )
    })
}

/// The columns of `schema` as `name (type), …`.
fn column_list(schema: &Schema) -> String {
    schema.fields().iter().map(|f| format!("{} ({})", f.name(), f.data_type())).collect::<Vec<_>>().join(", ")
}

/// Checks a field's type with `accept`, naming the column, the found and the expected types.
fn check_type(path: &Path, field: &Field, accept: fn(&DataType) -> bool, expected: &str) -> Result<(), DataError> {
    if accept(field.data_type()) {
        Ok(())
    } else {
        Err(wrong_type(path, field, expected))
    }
}

fn wrong_type(path: &Path, field: &Field, expected: &str) -> DataError {
    DataError::invalid(
        path,
        Location::Column(field.name().clone()),
        format!("has type {}, expected {expected}", field.data_type()),
    )
}

pub(crate) fn is_integer(t: &DataType) -> bool {
    use DataType::*;
    matches!(t, Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64)
}

fn is_string(t: &DataType) -> bool {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        // pandas categoricals arrive as dictionaries of strings.
        DataType::Dictionary(key, value) => is_integer(key) && matches!(**value, DataType::Utf8 | DataType::LargeUtf8),
        _ => false,
    }
}

/// Ids and labels: strings or integers.
fn is_key_type(t: &DataType) -> bool {
    is_string(t) || is_integer(t)
}

fn is_scalar_numeric(t: &DataType) -> bool {
    is_integer(t) || matches!(t, DataType::Float16 | DataType::Float32 | DataType::Float64)
}

pub(crate) fn is_float_list(t: &DataType) -> bool {
    match t {
        DataType::List(item) | DataType::LargeList(item) | DataType::FixedSizeList(item, _) => {
            matches!(item.data_type(), DataType::Float32 | DataType::Float64)
        }
        _ => false,
    }
}

const LIST_TYPES: &str = "list, large_list or fixed_size_list of float32/float64";
const SCALAR_TYPES: &str = "an integer or float type";

fn is_int_list(t: &DataType) -> bool {
    match t {
        DataType::List(item) | DataType::LargeList(item) | DataType::FixedSizeList(item, _) => {
            is_integer(item.data_type())
        }
        _ => false,
    }
}

const TOKEN_TYPES: &str = "list, large_list or fixed_size_list of an integer type (token ids)";

/// Decides where the features come from (see [`read_samples`]) and checks the columns' types.
fn feature_sources(
    path: &Path,
    schema: &Schema,
    columns: &SampleColumns,
    stored: Option<&FeatureLayout>,
) -> Result<Vec<FeatureSource>, DataError> {
    let named = |names: &[String]| -> Result<Vec<FeatureSource>, DataError> {
        let mut sources = Vec::new();
        let mut scalars: Option<usize> = None;
        for name in names {
            let field = require_column(path, schema, name)?;
            let t = field.data_type();
            if is_float_list(t) {
                sources.push(FeatureSource::List(name.clone()));
            } else if is_int_list(t) {
                sources.push(FeatureSource::Tokens(name.clone()));
            } else if is_scalar_numeric(t) {
                match scalars {
                    Some(i) => match &mut sources[i] {
                        FeatureSource::Scalars(v) => v.push(name.clone()),
                        _ => return Err(DataError::invalid(path, Location::File, "internal: scalar group")),
                    },
                    None => {
                        scalars = Some(sources.len());
                        sources.push(FeatureSource::Scalars(vec![name.clone()]));
                    }
                }
            } else {
                return Err(wrong_type(path, field, &format!("{LIST_TYPES}, {TOKEN_TYPES}, or {SCALAR_TYPES}")));
            }
            if sources.iter().flat_map(FeatureSource::columns).filter(|c| c == name).count() > 1 {
                return Err(DataError::invalid(
                    path,
                    Location::Column(name.clone()),
                    "named twice as a feature column",
                ));
            }
        }
        Ok(sources)
    };
    if !columns.features.is_empty() {
        return named(&columns.features);
    }
    if let Some(layout) = stored {
        let names: Vec<String> = layout.groups().iter().map(|g| g.name.clone()).collect();
        if names.iter().all(|n| schema.field_with_name(n).is_ok()) {
            return named(&names);
        }
    }
    if schema.field_with_name("features").is_ok() {
        return named(&["features".to_owned()]);
    }
    let candidates = || {
        schema
            .fields()
            .iter()
            .filter(|f| *f.name() != columns.id && *f.name() != columns.label && !columns.exclude.contains(f.name()))
    };
    let scalars: Vec<String> =
        candidates().filter(|f| is_scalar_numeric(f.data_type())).map(|f| f.name().clone()).collect();
    if !scalars.is_empty() {
        return Ok(vec![FeatureSource::Scalars(scalars)]);
    }
    let lists: Vec<String> = candidates()
        .filter(|f| is_float_list(f.data_type()) || is_int_list(f.data_type()))
        .map(|f| f.name().clone())
        .collect();
    match lists.as_slice() {
        [_] => named(&lists),
        _ => Err(DataError::invalid(
            path,
            Location::File,
            format!(
                "no feature columns: expected a `features` column, numeric columns or a single list column (or name \
                 them with --feature-columns); columns present: {}",
                column_list(schema)
            ),
        )),
    }
}

/// Appends an integer list column's rows as token ids: checks nulls and negative ids.
fn append_tokens(
    path: &Path,
    row0: usize,
    name: &str,
    array: &ArrayRef,
    ids: &mut Vec<u32>,
    offsets: &mut Vec<usize>,
) -> Result<(), DataError> {
    reject_nulls(path, row0, name, array.as_ref())?;
    let (child, spans) = list_spans(path, name, array, TOKEN_TYPES)?;
    reject_null_elements(path, row0, name, child.as_ref(), &spans, "null token id")?;
    let values = cast_to(path, name, child.as_ref(), &DataType::Int64)?;
    let values = values.as_primitive::<Int64Type>().values();
    for (i, &(start, len)) in spans.iter().enumerate() {
        for (k, &v) in values[start..start + len].iter().enumerate() {
            // Ids past the vocabulary are reported once it is known (see `assemble`); here only
            // what cannot be an id at all.
            let id = u32::try_from(v).ok().filter(|&id| (id as usize) < MAX_VOCAB).ok_or_else(|| {
                let why = if v < 0 { "is negative".to_owned() } else { format!("is not below 2^24 = {MAX_VOCAB}") };
                DataError::invalid(
                    path,
                    Location::RowColumn(row0 + i, format!("{name}[{k}]")),
                    format!("token id {v} {why}"),
                )
            })?;
            ids.push(id);
        }
        offsets.push(ids.len());
    }
    Ok(())
}

/// Each row's `(start, length)` in a list column's child array.
pub(crate) type Spans = Vec<(usize, usize)>;

/// A null element of a list column (the row and `name[k]` named), given the child array and each
/// row's `(start, length)` in it.
pub(crate) fn reject_null_elements(
    path: &Path,
    row0: usize,
    name: &str,
    child: &dyn Array,
    spans: &[(usize, usize)],
    what: &str,
) -> Result<(), DataError> {
    if child.null_count() == 0 {
        return Ok(());
    }
    let null = spans
        .iter()
        .enumerate()
        .find_map(|(i, &(start, len))| (start..start + len).position(|c| child.is_null(c)).map(|k| (i, k)));
    match null {
        Some((i, k)) => Err(DataError::invalid(path, Location::RowColumn(row0 + i, format!("{name}[{k}]")), what)),
        None => Ok(()),
    }
}

/// The child array of a list column and each row's `(start, length)` in it.
pub(crate) fn list_spans<'a>(
    path: &Path,
    name: &str,
    array: &'a ArrayRef,
    expected: &str,
) -> Result<(&'a ArrayRef, Spans), DataError> {
    Ok(match array.data_type() {
        DataType::List(_) => {
            let list = array.as_list::<i32>();
            (list.values(), list.value_offsets().windows(2).map(|w| (w[0] as usize, (w[1] - w[0]) as usize)).collect())
        }
        DataType::LargeList(_) => {
            let list = array.as_list::<i64>();
            (list.values(), list.value_offsets().windows(2).map(|w| (w[0] as usize, (w[1] - w[0]) as usize)).collect())
        }
        DataType::FixedSizeList(_, size) => {
            let list = array.as_fixed_size_list();
            (list.values(), (0..list.len()).map(|i| (list.value_offset_at(i), *size as usize)).collect())
        }
        other => {
            return Err(DataError::invalid(
                path,
                Location::Column(name.to_owned()),
                format!("has type {other}, expected {expected}"),
            ))
        }
    })
}

/// The column `name` of a batch read with a projection that includes it.
fn column<'a>(path: &Path, batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef, DataError> {
    batch
        .column_by_name(name)
        .ok_or_else(|| DataError::invalid(path, Location::Column(name.to_owned()), "column missing from a row group"))
}

/// An error if `array` has a null, naming its row.
pub(crate) fn reject_nulls(path: &Path, row0: usize, name: &str, array: &dyn Array) -> Result<(), DataError> {
    if array.null_count() == 0 {
        return Ok(());
    }
    let row = (0..array.len()).find(|&i| array.is_null(i)).unwrap_or(0);
    Err(DataError::invalid(path, Location::RowColumn(row0 + row, name.to_owned()), "null value"))
}

/// Converts `array` to `to`, reporting a failure against the column.
pub(crate) fn cast_to(path: &Path, name: &str, array: &dyn Array, to: &DataType) -> Result<ArrayRef, DataError> {
    cast(array, to).map_err(|e| DataError::invalid(path, Location::Column(name.to_owned()), e.to_string()))
}

fn append_ids(path: &Path, row0: usize, name: &str, array: &ArrayRef, ids: &mut Vec<String>) -> Result<(), DataError> {
    reject_nulls(path, row0, name, array)?;
    if is_integer(array.data_type()) {
        let ints = cast_to(path, name, array, &DataType::Int64)?;
        ids.extend(ints.as_primitive::<Int64Type>().values().iter().map(i64::to_string));
    } else {
        let strings = cast_to(path, name, array, &DataType::Utf8)?;
        ids.extend(strings.as_string::<i32>().iter().map(|s| s.unwrap_or_default().to_owned()));
    }
    Ok(())
}

/// Appends a batch's labels to `table.labels` (integers, each ≥ 0) or `table.label_strings`.
fn append_labels(
    path: &Path,
    row0: usize,
    name: &str,
    array: &ArrayRef,
    table: &mut Collected,
) -> Result<(), DataError> {
    reject_nulls(path, row0, name, array)?;
    if is_integer(array.data_type()) {
        let ints = cast_to(path, name, array, &DataType::Int64)?;
        for (i, &v) in ints.as_primitive::<Int64Type>().values().iter().enumerate() {
            let label = u32::try_from(v).map_err(|_| {
                let why = if v < 0 { "is negative" } else { "is too large" };
                DataError::invalid(path, Location::RowColumn(row0 + i, name.to_owned()), format!("label {v} {why}"))
            })?;
            table.labels.push(label);
        }
    } else {
        let strings = cast_to(path, name, array, &DataType::Utf8)?;
        table.label_strings.extend(strings.as_string::<i32>().iter().map(|s| s.unwrap_or_default().to_owned()));
    }
    Ok(())
}

/// Appends scalar columns row by row into the row-major `values`.
fn append_scalars(
    path: &Path,
    row0: usize,
    names: &[String],
    arrays: &[&ArrayRef],
    values: &mut Vec<f32>,
) -> Result<(), DataError> {
    let rows = arrays.first().map_or(0, |a| a.len());
    let d = names.len();
    let base = values.len();
    values.resize(base + rows * d, 0.0);
    for (j, (name, array)) in names.iter().zip(arrays).enumerate() {
        reject_nulls(path, row0, name, array.as_ref())?;
        let floats = cast_to(path, name, array.as_ref(), &DataType::Float64)?;
        for (i, &v) in floats.as_primitive::<Float64Type>().values().iter().enumerate() {
            let x = v as f32;
            if !x.is_finite() {
                return Err(not_finite(path, row0 + i, name.clone(), v));
            }
            values[base + i * d + j] = x;
        }
    }
    Ok(())
}

fn not_finite(path: &Path, row: usize, column: String, value: f64) -> DataError {
    let message = if value.is_finite() {
        format!("value {value:e} is beyond the f32 range")
    } else {
        format!("value {value} is not finite")
    };
    DataError::invalid(path, Location::RowColumn(row, column), message)
}

/// Appends a list column: checks nulls and lengths, then copies the values as `f32`.
fn append_list(
    path: &Path,
    row0: usize,
    name: &str,
    array: &ArrayRef,
    width: &mut Option<usize>,
    values: &mut Vec<f32>,
) -> Result<(), DataError> {
    reject_nulls(path, row0, name, array.as_ref())?;
    let (child, spans) = list_spans(path, name, array, LIST_TYPES)?;
    for (i, &(_, len)) in spans.iter().enumerate() {
        match *width {
            None => *width = Some(len),
            Some(d) if d != len => {
                return Err(DataError::invalid(
                    path,
                    Location::RowColumn(row0 + i, name.to_owned()),
                    format!(
                        "found {len} feature values, expected {d} like the first row (a float list is one \
                         fixed-size vector; variable-length lists are token ids, list<int64>)"
                    ),
                ))
            }
            Some(_) => {}
        }
    }
    reject_null_elements(path, row0, name, child.as_ref(), &spans, "null feature value")?;
    match child.data_type() {
        DataType::Float32 => copy_spans(path, row0, name, child.as_primitive::<Float32Type>().values(), &spans, values),
        DataType::Float64 => copy_spans(path, row0, name, child.as_primitive::<Float64Type>().values(), &spans, values),
        other => Err(DataError::invalid(
            path,
            Location::Column(name.to_owned()),
            format!("has elements of type {other}, expected {LIST_TYPES}"),
        )),
    }
}

/// Copies each row's span of `source` into `values` as `f32`, rejecting non-finite values.
fn copy_spans<T: Copy + Into<f64>>(
    path: &Path,
    row0: usize,
    name: &str,
    source: &[T],
    spans: &[(usize, usize)],
    values: &mut Vec<f32>,
) -> Result<(), DataError> {
    values.reserve(spans.iter().map(|s| s.1).sum());
    for (i, &(start, len)) in spans.iter().enumerate() {
        for (k, &v) in source[start..start + len].iter().enumerate() {
            let v: f64 = v.into();
            let x = v as f32;
            if !x.is_finite() {
                return Err(not_finite(path, row0 + i, format!("{name}[{k}]"), v));
            }
            values.push(x);
        }
    }
    Ok(())
}

/// Parses `nsl.item_shape`: comma-separated positive sizes such as `1,28,28`.
pub(crate) fn parse_item_shape(path: &Path, value: &str) -> Result<Vec<usize>, DataError> {
    value.split(',').map(|s| s.trim().parse::<usize>().ok().filter(|&v| v > 0)).collect::<Option<Vec<_>>>().ok_or_else(
        || {
            DataError::invalid(
                path,
                Location::File,
                format!("metadata {ITEM_SHAPE_KEY} `{value}` is not a comma-separated list of positive sizes"),
            )
        },
    )
}

/// Parses `nsl.feature_layout`: a JSON list of groups.
fn parse_layout(path: &Path, value: &str) -> Result<FeatureLayout, DataError> {
    let layout: FeatureLayout = serde_json::from_str(value).map_err(|e| {
        DataError::invalid(path, Location::File, format!("metadata {FEATURE_LAYOUT_KEY} is not a feature layout: {e}"))
    })?;
    // Re-validated: the JSON may come from anywhere.
    FeatureLayout::new(layout.groups().to_vec()).map_err(|e| e.in_file(path))
}

/// Parses `nsl.class_names`: a JSON list of strings.
pub(crate) fn parse_class_names(path: &Path, value: &str) -> Result<Vec<String>, DataError> {
    serde_json::from_str(value).map_err(|e| {
        DataError::invalid(
            path,
            Location::File,
            format!("metadata {CLASS_NAMES_KEY} is not a JSON list of strings: {e}"),
        )
    })
}

/// Indexes string labels by a given list of class names.
fn index_by_names(path: &Path, column: &str, labels: &[String], names: &[String]) -> Result<Vec<u32>, DataError> {
    let index: HashMap<&str, u32> = names.iter().enumerate().map(|(i, n)| (n.as_str(), i as u32)).collect();
    labels
        .iter()
        .enumerate()
        .map(|(row, l)| {
            index.get(l.as_str()).copied().ok_or_else(|| {
                DataError::invalid(
                    path,
                    Location::RowColumn(row, column.to_owned()),
                    format!("label `{l}` is not among {CLASS_NAMES_KEY} {names:?}"),
                )
            })
        })
        .collect()
}
