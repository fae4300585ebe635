//! The target columns of the tasks other than single-label classification, and per-sample
//! weights, read from a Parquet or CSV samples table next to its features.
//!
//! | column | Parquet | CSV field |
//! |---|---|---|
//! | multilabel | a list of strings (class names) or integers (class indices); a single string or integer is a one-label list | the labels separated by `;`, spaces or `,` (quote the field), optionally in `[ ]`; `[]` is the empty set |
//! | regression | a float or integer column (one target), or a list of floats of the same length in every row (several) | one number, or numbers separated as above |
//! | weight | a float or integer column, each value finite and ≥ 0 | one number |
//!
//! Rows come in the file's order, with their ids, so that the caller can check them against the
//! samples read from the same file.

use super::{read_file, DataError, Dataset, SampleColumns, Targets};
use crate::io::{is_parquet, Location};
use arrow::array::{Array, ArrayRef, AsArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Float64Type, Int64Type};
use ndarray::Array2;
use parquet::arrow::ProjectionMask;
use std::path::Path;
use std::sync::Arc;

/// One value of a target cell.
#[derive(Debug, Clone, PartialEq)]
enum Token {
    Int(i64),
    Float(f64),
    Text(String),
}

/// A column of a table: the ids and each row's values, with each row's location for errors.
struct Cells {
    ids: Vec<String>,
    rows: Vec<Vec<Token>>,
    locations: Vec<Location>,
}

/// Multi-hot labels read by [`read_multilabel`].
#[derive(Debug, Clone, PartialEq)]
pub struct MultiLabels {
    /// The rows' ids, in file order.
    pub ids: Vec<String>,
    /// `[n, k]`: 1 where the sample has the label.
    pub multi_hot: Array2<f32>,
    /// The label names indexed by column, when the labels are strings.
    pub names: Option<Vec<String>>,
}

/// Which targets [`attach_targets`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TargetKind {
    /// A list of labels per sample ([`read_multilabel`]).
    MultiLabel,
    /// One or several real values per sample ([`read_values`]).
    Values,
}

/// Reads a Parquet or CSV samples table whose label column holds multilabel or regression targets
/// (not classes): the features as [`read_parquet_samples`](super::read_parquet_samples) /
/// [`read_csv`](super::read_csv) read them, the label column with [`attach_targets`].
///
/// # Errors
/// The readers' [`DataError`], naming the file, row (or line) and column.
pub fn read_samples_with_targets(
    path: &Path,
    columns: &SampleColumns,
    kind: TargetKind,
    names: Option<&[String]>,
) -> Result<Dataset, DataError> {
    let dataset = match is_parquet(path).map_err(|e| DataError::io(path, e))? {
        true => super::parquet::read_samples_as(path, columns, false)?,
        // CSV whose label column holds targets, not class labels (floats, lists).
        false => super::csv::read_csv_as(path, columns, false)?,
    };
    attach_targets(dataset, path, &columns.id, &columns.label, kind, names)
}

/// `dataset` (read from `path`) with the targets of column `column` in place of its labels;
/// `names`: a trained model's multilabel classes, to index string labels by.
///
/// # Errors
/// The reader's [`DataError`], or one naming the row whose id differs from the dataset's.
pub fn attach_targets(
    dataset: Dataset,
    path: &Path,
    id_column: &str,
    column: &str,
    kind: TargetKind,
    names: Option<&[String]>,
) -> Result<Dataset, DataError> {
    let (ids, targets, names) = match kind {
        TargetKind::MultiLabel => {
            let m = read_multilabel(path, id_column, column, names)?;
            (m.ids, Targets::MultiHot(m.multi_hot), m.names)
        }
        TargetKind::Values => {
            let (ids, values) = read_values(path, id_column, column)?;
            (ids, Targets::Values(values), None)
        }
    };
    check_ids(path, &dataset, &ids)?;
    dataset.with_targets(targets, names).map_err(|e| e.in_file(path))
}

/// `dataset` (read from `path`) with the per-sample weights of column `column`.
///
/// # Errors
/// [`read_weights`]' errors, or one naming the row whose id differs from the dataset's.
pub fn attach_weights(dataset: Dataset, path: &Path, id_column: &str, column: &str) -> Result<Dataset, DataError> {
    let (ids, weights) = read_weights(path, id_column, column)?;
    check_ids(path, &dataset, &ids)?;
    dataset.with_weights(weights).map_err(|e| e.in_file(path))
}

/// Whether the Parquet or CSV/TSV table `path` has a column named `column` (for an optional
/// column, such as the weights of a test table).
///
/// # Errors
/// The file cannot be read, or is neither a readable Parquet file nor a CSV with a header line.
pub fn has_column(path: &Path, column: &str) -> Result<bool, DataError> {
    if is_parquet(path).map_err(|e| DataError::io(path, e))? {
        let builder = super::parquet::open_parquet(path)?;
        return Ok(builder.schema().index_of(column).is_ok());
    }
    let bytes = read_file(path)?;
    let mut reader =
        ::csv::ReaderBuilder::new().delimiter(csv_delimiter(path)).trim(::csv::Trim::All).from_reader(bytes.as_slice());
    let header = reader.headers().map_err(|e| DataError::invalid(path, Location::Line(1), e.to_string()))?;
    Ok(header.iter().any(|h| h == column))
}

/// Tab for `.tsv` / `.tsv.gz`, else comma.
fn csv_delimiter(path: &Path) -> u8 {
    let name = path.file_name().map(|n| n.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
    if name.ends_with(".tsv") || name.ends_with(".tsv.gz") {
        b'\t'
    } else {
        b','
    }
}

fn check_ids(path: &Path, dataset: &Dataset, ids: &[String]) -> Result<(), DataError> {
    if ids.len() != dataset.len() {
        return Err(DataError::invalid(
            path,
            Location::File,
            format!("{} rows of targets or weights for {} samples", ids.len(), dataset.len()),
        ));
    }
    match ids.iter().zip(dataset.ids()).position(|(a, b)| a != b) {
        Some(row) => Err(DataError::invalid(
            path,
            Location::Row(row),
            format!("id `{}` where the samples have `{}`", ids[row], dataset.ids()[row]),
        )),
        None => Ok(()),
    }
}

/// Reads a multilabel column: each row a list of class names or class indices. With `names`
/// (a trained model's), string labels are indexed by them and the width is theirs; else the
/// names are the distinct labels sorted by their bytes. Integer labels are the columns themselves
/// (width: `names`' length, or one more than the largest).
///
/// # Errors
/// [`DataError`] naming the file, row (or line) and column: a missing column, a null or empty
/// cell (write `[]` for no label), a list of another type than strings or integers, a negative
/// index, a label not among `names`, mixed names and numbers.
pub fn read_multilabel(
    path: &Path,
    id_column: &str,
    column: &str,
    names: Option<&[String]>,
) -> Result<MultiLabels, DataError> {
    let cells = read_cells(path, id_column, column)?;
    let any_text = cells.rows.iter().flatten().any(|t| matches!(t, Token::Text(_)));
    let bad = |row: usize, message: String| DataError::invalid(path, cells.locations[row].clone(), message);
    let mut indices: Vec<Vec<usize>> = Vec::with_capacity(cells.rows.len());
    let names: Option<Vec<String>> = match (any_text, names) {
        (true, Some(names)) => Some(names.to_vec()),
        (true, None) => {
            let mut all: Vec<String> = Vec::new();
            for (r, row) in cells.rows.iter().enumerate() {
                for t in row {
                    match t {
                        Token::Text(s) => all.push(s.clone()),
                        other => return Err(bad(r, format!("label {other:?} among class names: use one kind"))),
                    }
                }
            }
            all.sort_unstable();
            all.dedup();
            Some(all)
        }
        (false, names) => names.map(<[String]>::to_vec),
    };
    for (r, row) in cells.rows.iter().enumerate() {
        let mut out = Vec::with_capacity(row.len());
        for t in row {
            let i = match (t, &names) {
                (Token::Text(s), Some(names)) => names
                    .iter()
                    .position(|n| n == s)
                    .ok_or_else(|| bad(r, format!("label `{s}` is not one of the classes ({})", names.join(", "))))?,
                (Token::Int(v), _) if *v >= 0 => *v as usize,
                (Token::Int(v), _) => return Err(bad(r, format!("label {v} is negative"))),
                (Token::Float(v), _) if v.fract() == 0.0 && *v >= 0.0 && *v < 1e9 => *v as usize,
                (other, _) => return Err(bad(r, format!("label {other:?} is not a class name or index"))),
            };
            out.push(i);
        }
        indices.push(out);
    }
    let width = match &names {
        Some(n) => n.len(),
        None => indices.iter().flatten().max().map_or(0, |&m| m + 1),
    };
    if let Some((r, &i)) =
        indices.iter().enumerate().find_map(|(r, row)| row.iter().find(|&&i| i >= width).map(|i| (r, i)))
    {
        return Err(bad(r, format!("label {i} is out of range for {width} classes")));
    }
    let mut multi_hot = Array2::zeros((indices.len(), width));
    for (r, row) in indices.iter().enumerate() {
        for &i in row {
            multi_hot[[r, i]] = 1.0;
        }
    }
    Ok(MultiLabels { ids: cells.ids, multi_hot, names })
}

/// Reads a column of real values: one number per row, or a list of numbers of the same length in
/// every row. Returns the ids and the `[n, k]` values.
///
/// # Errors
/// [`DataError`] naming the file, row (or line) and column: a missing column, a null or empty
/// cell, a value that is not a number or not finite (NaN), lists of different lengths.
pub fn read_values(path: &Path, id_column: &str, column: &str) -> Result<(Vec<String>, Array2<f32>), DataError> {
    let cells = read_cells(path, id_column, column)?;
    let values = numbers(path, &cells)?;
    Ok((cells.ids, values))
}

/// The numbers of `cells`, one row per cell, every row as long as the first.
fn numbers(path: &Path, cells: &Cells) -> Result<Array2<f32>, DataError> {
    let mut width = None;
    let mut values = Vec::new();
    for (r, row) in cells.rows.iter().enumerate() {
        let bad = |message: String| DataError::invalid(path, cells.locations[r].clone(), message);
        match width {
            _ if row.is_empty() => return Err(bad("no value (a regression target is required)".into())),
            None => width = Some(row.len()),
            Some(k) if k != row.len() => {
                return Err(bad(format!("found {} values, expected {k} like the first row", row.len())))
            }
            Some(_) => {}
        }
        for t in row {
            let v = match t {
                Token::Int(v) => *v as f64,
                Token::Float(v) => *v,
                Token::Text(s) => return Err(bad(format!("value `{s}` is not a number"))),
            };
            if !v.is_finite() || !(v as f32).is_finite() {
                return Err(bad(format!("value {v} is not finite")));
            }
            values.push(v as f32);
        }
    }
    Array2::from_shape_vec((cells.ids.len(), width.unwrap_or(0)), values)
        .map_err(|e| DataError::invalid(path, Location::File, e.to_string()))
}

/// Reads a column of per-sample weights: one finite number ≥ 0 per row.
///
/// # Errors
/// [`DataError`] naming the file, row (or line) and column, as [`read_values`], and for a list,
/// a negative weight.
pub fn read_weights(path: &Path, id_column: &str, column: &str) -> Result<(Vec<String>, Vec<f32>), DataError> {
    let cells = read_cells(path, id_column, column)?;
    let values = numbers(path, &cells)?;
    if values.ncols() != 1 {
        return Err(DataError::invalid(
            path,
            Location::Column(column.into()),
            "a weight column holds one number per row",
        ));
    }
    if let Some(r) = values.iter().position(|&w| w < 0.0) {
        return Err(DataError::invalid(
            path,
            cells.locations[r].clone(),
            format!("weight {} is negative (weights are ≥ 0)", values[[r, 0]]),
        ));
    }
    Ok((cells.ids, values.into_raw_vec_and_offset().0))
}

/// The cells of `column` (and the ids), from a Parquet or a CSV file.
fn read_cells(path: &Path, id_column: &str, column: &str) -> Result<Cells, DataError> {
    if is_parquet(path).map_err(|e| DataError::io(path, e))? {
        parquet_cells(path, id_column, column)
    } else {
        csv_cells(path, id_column, column)
    }
}

fn csv_cells(path: &Path, id_column: &str, column: &str) -> Result<Cells, DataError> {
    let bytes = read_file(path)?;
    let mut reader =
        ::csv::ReaderBuilder::new().delimiter(csv_delimiter(path)).trim(::csv::Trim::All).from_reader(bytes.as_slice());
    let header = reader.headers().map_err(|e| DataError::invalid(path, Location::Line(1), e.to_string()))?.clone();
    let find = |c: &str| {
        header.iter().position(|h| h == c).ok_or_else(|| {
            let present = header.iter().map(|h| format!("`{h}`")).collect::<Vec<_>>().join(", ");
            DataError::invalid(
                path,
                Location::Line(1),
                format!("no column `{c}` in the header; columns present: {present}"),
            )
        })
    };
    // A table without an id column has row numbers as ids (`SampleColumns::row_ids`).
    let (id_col, col) = (header.iter().position(|h| h == id_column), find(column)?);
    let mut cells = Cells { ids: Vec::new(), rows: Vec::new(), locations: Vec::new() };
    for record in reader.records() {
        let record = record.map_err(|e| DataError::invalid(path, Location::File, e.to_string()))?;
        let line = record.position().map_or(0, |p| p.line() as usize);
        let location = Location::LineColumn(line, column.to_owned());
        let field = &record[col];
        if field.is_empty() {
            return Err(DataError::invalid(path, location, "empty cell (write [] for an empty label list)"));
        }
        let inner = field.trim_start_matches('[').trim_end_matches(']');
        let tokens = inner
            .split(|c: char| c.is_whitespace() || c == ';' || c == ',')
            .filter(|t| !t.is_empty())
            .map(|t| {
                let t = t.trim_matches(|c| c == '"' || c == '\'');
                match (t.parse::<i64>(), t.parse::<f64>()) {
                    (Ok(i), _) => Token::Int(i),
                    (_, Ok(f)) => Token::Float(f),
                    _ => Token::Text(t.to_owned()),
                }
            })
            .collect();
        cells.ids.push(match id_col {
            Some(id_col) => record[id_col].to_owned(),
            None => cells.rows.len().to_string(),
        });
        cells.rows.push(tokens);
        cells.locations.push(location);
    }
    Ok(cells)
}

fn parquet_cells(path: &Path, id_column: &str, column: &str) -> Result<Cells, DataError> {
    let builder = super::parquet::open_parquet(path)?;
    let schema = builder.schema().clone();
    let index = |c: &str| {
        schema.index_of(c).map_err(|_| {
            let present = schema.fields().iter().map(|f| format!("`{}`", f.name())).collect::<Vec<_>>().join(", ");
            DataError::invalid(path, Location::File, format!("no column `{c}`; columns present: {present}"))
        })
    };
    // A table without an id column has row numbers as ids (`SampleColumns::row_ids`).
    let has_ids = schema.index_of(id_column).is_ok();
    let mut roots = vec![index(column)?];
    if has_ids {
        roots.push(index(id_column)?);
    }
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
    let reader = builder
        .with_projection(mask)
        .build()
        .map_err(|e| DataError::invalid(path, Location::File, format!("cannot read the table: {e}")))?;
    let mut cells = Cells { ids: Vec::new(), rows: Vec::new(), locations: Vec::new() };
    for batch in reader {
        let row0 = cells.ids.len();
        let batch = batch.map_err(|e| DataError::invalid(path, Location::Row(row0), format!("cannot read: {e}")))?;
        let get = |c: &str| {
            batch.column_by_name(c).ok_or_else(|| DataError::invalid(path, Location::Column(c.into()), "missing"))
        };
        if has_ids {
            let ids = cast(get(id_column)?, &DataType::Utf8)
                .map_err(|e| DataError::invalid(path, Location::Column(id_column.into()), e.to_string()))?;
            cells.ids.extend(ids.as_string::<i32>().iter().map(|s| s.unwrap_or_default().to_owned()));
        } else {
            cells.ids.extend((row0..row0 + batch.num_rows()).map(|r| r.to_string()));
        }
        let array = get(column)?;
        for i in 0..array.len() {
            let location = Location::RowColumn(row0 + i, column.to_owned());
            if array.is_null(i) {
                return Err(DataError::invalid(path, location, "null value"));
            }
            cells.locations.push(location);
        }
        let bad_type = |t: &DataType| {
            DataError::invalid(
                path,
                Location::Column(column.into()),
                format!("has type {t}, expected a number, a string, or a list of numbers or strings"),
            )
        };
        match array.data_type() {
            DataType::List(item) | DataType::LargeList(item) | DataType::FixedSizeList(item, _) => {
                let to = kind_of(item.data_type()).ok_or_else(|| bad_type(array.data_type()))?;
                let list = cast(array, &DataType::List(Arc::new(Field::new("item", to, true))))
                    .map_err(|e| DataError::invalid(path, Location::Column(column.into()), e.to_string()))?;
                let list = list.as_list::<i32>();
                for i in 0..list.len() {
                    let values = list.value(i);
                    if values.null_count() > 0 {
                        return Err(DataError::invalid(path, cells.locations[row0 + i].clone(), "null in the list"));
                    }
                    cells.rows.push(tokens(&values));
                }
            }
            t => {
                kind_of(t).ok_or_else(|| bad_type(t))?;
                for i in 0..array.len() {
                    cells.rows.push(tokens(&array.slice(i, 1)));
                }
            }
        }
    }
    Ok(cells)
}

/// The type a cell's values are read as: integers as `Int64`, floats as `Float64`, strings as `Utf8`.
fn kind_of(t: &DataType) -> Option<DataType> {
    use DataType::*;
    match t {
        Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64 => Some(Int64),
        Float16 | Float32 | Float64 => Some(Float64),
        Utf8 | LargeUtf8 | Utf8View | Dictionary(..) => Some(Utf8),
        _ => None,
    }
}

/// The values of a (non-null) array as tokens.
fn tokens(values: &ArrayRef) -> Vec<Token> {
    let Some(kind) = kind_of(values.data_type()) else { return Vec::new() };
    let Ok(values) = cast(values, &kind) else { return Vec::new() };
    match kind {
        DataType::Int64 => values.as_primitive::<Int64Type>().values().iter().map(|&v| Token::Int(v)).collect(),
        DataType::Float64 => values.as_primitive::<Float64Type>().values().iter().map(|&v| Token::Float(v)).collect(),
        _ => values.as_string::<i32>().iter().map(|s| Token::Text(s.unwrap_or_default().to_owned())).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn multilabel_from_csv_names_and_ints() {
        let (_d, p) = csv("id,labels\na,\"x;y\"\nb,[y]\nc,[]\n");
        let m = read_multilabel(&p, "id", "labels", None).unwrap();
        assert_eq!(m.names.as_deref(), Some(&["x".to_string(), "y".to_string()][..]));
        assert_eq!(m.multi_hot, ndarray::array![[1.0, 1.0], [0.0, 1.0], [0.0, 0.0]]);
        let (_d, p) = csv("id,labels\na,0 2\nb,1\n");
        let m = read_multilabel(&p, "id", "labels", None).unwrap();
        assert_eq!(m.multi_hot, ndarray::array![[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]);
        let (_d, p) = csv("id,labels\na,x\nb,z\n");
        let names = ["x".to_string(), "y".to_string()];
        let err = read_multilabel(&p, "id", "labels", Some(&names)).unwrap_err().to_string();
        assert!(err.contains("line 3, column labels") && err.contains("`z`"), "{err}");
        let (_d, p) = csv("id,labels\na,x\nb,\n");
        let err = read_multilabel(&p, "id", "labels", None).unwrap_err().to_string();
        assert!(err.contains("line 3") && err.contains("empty cell"), "{err}");
    }

    /// Parquet: a `list<utf8>` multilabel column (with an empty list), a float column with a NaN, a
    /// `list<bool>` column of an unknown type.
    #[test]
    fn parquet_lists_and_floats() {
        use arrow::array::{BooleanBuilder, Float64Array, ListBuilder, StringArray, StringBuilder};
        use arrow::datatypes::Schema;
        use arrow::record_batch::RecordBatch;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        let mut labels = ListBuilder::new(StringBuilder::new());
        labels.values().append_value("b");
        labels.values().append_value("a");
        labels.append(true);
        labels.append(true);
        labels.values().append_value("b");
        labels.append(true);
        let labels = labels.finish();
        let mut flags = ListBuilder::new(BooleanBuilder::new());
        for _ in 0..3 {
            flags.values().append_value(true);
            flags.append(true);
        }
        let flags = flags.finish();
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, false),
            Field::new("labels", labels.data_type().clone(), true),
            Field::new("y", DataType::Float64, false),
            Field::new("flags", flags.data_type().clone(), true),
        ]));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(vec!["x", "y", "z"])),
            Arc::new(labels),
            Arc::new(Float64Array::from(vec![1.5, f64::NAN, 2.0])),
            Arc::new(flags),
        ];
        let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
        let props = parquet::file::properties::WriterProperties::builder();
        crate::io::write_parquet(&path, schema, props, [Ok(batch)]).unwrap();
        let m = read_multilabel(&path, "id", "labels", None).unwrap();
        assert_eq!(m.ids, ["x", "y", "z"]);
        assert_eq!(m.names, Some(vec!["a".to_string(), "b".to_string()]));
        assert_eq!(m.multi_hot, ndarray::array![[1.0, 1.0], [0.0, 0.0], [0.0, 1.0]]);
        let err = read_values(&path, "id", "y").unwrap_err().to_string();
        assert!(err.contains("row 1, column `y`") && err.contains("not finite"), "{err}");
        let err = read_multilabel(&path, "id", "flags", None).unwrap_err().to_string();
        assert!(err.contains("flags") && err.contains("expected a number, a string, or a list"), "{err}");
    }

    #[test]
    fn values_reject_nan_and_ragged_lists() {
        let (_d, p) = csv("id,y\na,1.5\nb,-2\n");
        let (ids, v) = read_values(&p, "id", "y").unwrap();
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(v, ndarray::array![[1.5], [-2.0]]);
        let (_d, p) = csv("id,y\na,1\nb,NaN\n");
        let err = read_values(&p, "id", "y").unwrap_err().to_string();
        assert!(err.contains("line 3, column y") && err.contains("not finite"), "{err}");
        let (_d, p) = csv("id,y\na,\"1 2\"\nb,3\n");
        let err = read_values(&p, "id", "y").unwrap_err().to_string();
        assert!(err.contains("line 3") && err.contains("found 1 values, expected 2"), "{err}");
        let (_d, p) = csv("id,w\na,1\nb,-1\n");
        let err = read_weights(&p, "id", "w").unwrap_err().to_string();
        assert!(err.contains("line 3, column w") && err.contains("negative"), "{err}");
    }
}
