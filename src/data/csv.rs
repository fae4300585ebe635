//! CSV samples tables (gzipped or not): a header row, then one sample per line.

use super::{index_class_names, read_file, DataError, Dataset, SampleColumns};
use crate::io::Location;
use ndarray::Array2;
use std::collections::HashMap;
use std::path::Path;

/// Where the features of a CSV row come from.
enum FeatureSource {
    /// One column holding all values, separated by spaces, `;` or `,` (optionally in `[ ]`).
    Packed(usize),
    /// One value per column, in this order.
    Columns(Vec<usize>),
}

/// Reads a CSV samples table.
///
/// - The first row is the header (required). Fields are comma-separated (tab-separated when the
///   file name ends in `.tsv` or `.tsv.gz`), may be quoted, and are trimmed of surrounding spaces.
/// - **id** (`columns.id`, required unless `columns.row_ids`: then the row numbers): any text, unique.
/// - **features**: with `columns.features` empty, the column `features` if present (packed, see
///   below), else every column other than the id and label, in header order. A single named
///   column is *packed*: it holds all of a row's values separated by spaces, `;` or `,`, optionally
///   inside `[ ]` (so `"0.1 0.2"`, `0.1;0.2` and `"[0.1, 0.2]"` all work); every row must hold the
///   same number of values. Several named columns hold one value each. Values are `f32`.
/// - **label** (`columns.label`, optional): if every label is an integer, they are the labels
///   (each ≥ 0) and there are no class names; otherwise labels are strings and the class names are
///   the distinct labels sorted by their bytes.
/// - The item shape is `[d]`.
///
/// # Errors
/// [`DataError`] naming the file and the 1-based line (the header is line 1) and column: an empty
/// file, a missing column (with the columns present), a row with a different number of fields than
/// the header, a value that is not a number or not finite, packed features of different lengths
/// (found and expected), an empty id or label, a negative label, a duplicate id (with the line where
/// it first appeared), and invalid UTF-8.
pub fn read_csv(path: &Path, columns: &SampleColumns) -> Result<Dataset, DataError> {
    read_csv_as(path, columns, true)
}

/// [`read_csv`]; with `class_labels` false the label column is left out (neither labels nor a
/// feature): it holds another task's targets (multilabel lists, regression values), read by
/// [`super::attach_targets`].
pub(super) fn read_csv_as(path: &Path, columns: &SampleColumns, class_labels: bool) -> Result<Dataset, DataError> {
    let bytes = read_file(path)?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(DataError::invalid(path, Location::File, "file is empty (expected a header row)"));
    }
    let name = path.file_name().map(|n| n.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
    let delimiter = if name.ends_with(".tsv") || name.ends_with(".tsv.gz") { b'\t' } else { b',' };
    let mut reader =
        ::csv::ReaderBuilder::new().delimiter(delimiter).trim(::csv::Trim::All).from_reader(bytes.as_slice());
    let header = reader.headers().map_err(|e| csv_error(path, None, e))?.clone();
    let present = || header.iter().map(|h| format!("`{h}`")).collect::<Vec<_>>().join(", ");
    let find = |name: &str| header.iter().position(|h| h == name);
    let require = |name: &str| {
        find(name).ok_or_else(|| {
            DataError::invalid(
                path,
                Location::Line(1),
                format!("no column `{name}` in the header; columns present: {}", present()),
            )
        })
    };

    // Without an id column (and `row_ids`), ids are the row numbers.
    let id_col = match find(&columns.id) {
        None if columns.row_ids => None,
        _ => Some(require(&columns.id)?),
    };
    let label_col = find(&columns.label);
    let excluded = |c: usize| columns.exclude.iter().any(|name| *name == header[c]);
    let source = match columns.features.as_slice() {
        [] => match find("features") {
            Some(col) => FeatureSource::Packed(col),
            None => {
                let cols: Vec<usize> =
                    (0..header.len()).filter(|&c| Some(c) != id_col && Some(c) != label_col && !excluded(c)).collect();
                if cols.is_empty() {
                    return Err(DataError::invalid(
                        path,
                        Location::Line(1),
                        format!("no feature columns besides the id and label; columns present: {}", present()),
                    ));
                }
                FeatureSource::Columns(cols)
            }
        },
        [name] => FeatureSource::Packed(require(name)?),
        names => FeatureSource::Columns(names.iter().map(|n| require(n)).collect::<Result<_, _>>()?),
    };
    let mut width = match &source {
        FeatureSource::Columns(cols) => Some(cols.len()),
        FeatureSource::Packed(_) => None,
    };

    let mut ids: Vec<String> = Vec::new();
    let mut first_line_of: HashMap<String, usize> = HashMap::new();
    let mut values: Vec<f32> = Vec::new();
    let mut labels: Vec<String> = Vec::new();
    let mut lines: Vec<usize> = Vec::new();
    let mut record = ::csv::StringRecord::new();
    while reader.read_record(&mut record).map_err(|e| csv_error(path, Some(&header), e))? {
        let line = record.position().map_or(0, |p| p.line() as usize);
        let at = |col: usize| Location::LineColumn(line, header[col].to_owned());
        let row = ids.len().to_string();
        let id = match id_col {
            Some(id_col) => &record[id_col],
            None => row.as_str(),
        };
        if let Some(id_col) = id_col {
            if id.is_empty() {
                return Err(DataError::invalid(path, at(id_col), "empty id"));
            }
            if let Some(first) = first_line_of.insert(id.to_owned(), line) {
                return Err(DataError::invalid(
                    path,
                    at(id_col),
                    format!("duplicate id `{id}` (first on line {first})"),
                ));
            }
        }
        match &source {
            FeatureSource::Columns(cols) => {
                for &col in cols {
                    values.push(parse_value(path, &record[col], || at(col))?);
                }
            }
            FeatureSource::Packed(col) => {
                let field = record[*col].trim_start_matches('[').trim_end_matches(']');
                let before = values.len();
                for (k, token) in field
                    .split(|c: char| c.is_whitespace() || c == ';' || c == ',')
                    .filter(|t| !t.is_empty())
                    .enumerate()
                {
                    let location = || Location::LineColumn(line, format!("{}[{k}]", &header[*col]));
                    values.push(parse_value(path, token, location)?);
                }
                let found = values.len() - before;
                match width {
                    _ if found == 0 => return Err(DataError::invalid(path, at(*col), "no feature values")),
                    None => width = Some(found),
                    Some(expected) if expected != found => {
                        return Err(DataError::invalid(
                            path,
                            at(*col),
                            format!("found {found} feature values, expected {expected} like the first row"),
                        ))
                    }
                    Some(_) => {}
                }
            }
        }
        if let Some(col) = label_col.filter(|_| class_labels) {
            if record[col].is_empty() {
                return Err(DataError::invalid(path, at(col), "empty label"));
            }
            labels.push(record[col].to_owned());
        }
        ids.push(id.to_owned());
        lines.push(line);
    }

    let n = ids.len();
    let d = width.unwrap_or(0);
    let features =
        Array2::from_shape_vec((n, d), values).map_err(|e| DataError::invalid(path, Location::File, e.to_string()))?;
    let (labels, class_names) = match label_col.filter(|_| class_labels) {
        None => (None, None),
        Some(col) => {
            let (indices, names) = index_labels(path, &header[col], &labels, &lines)?;
            (Some(indices), names)
        }
    };
    Dataset::new(ids, features, vec![d], labels, class_names).map_err(|e| e.in_file(path))
}

/// Integer labels as they are (each ≥ 0, no class names); otherwise strings indexed by their sorted
/// distinct values.
fn index_labels(
    path: &Path,
    column: &str,
    labels: &[String],
    lines: &[usize],
) -> Result<(Vec<u32>, Option<Vec<String>>), DataError> {
    let mut ints: Option<Vec<i64>> = labels.iter().map(|l| l.parse().ok()).collect();
    if ints.is_none() {
        // Every label a number, some not integers: a float column (a feature or a regression
        // target), not class names; whole numbers written as floats (`1.0`) are class indices.
        let floats: Option<Vec<f64>> = labels.iter().map(|l| l.parse().ok()).collect();
        if let Some(floats) = floats {
            if let Some(i) = floats.iter().position(|v| !(v.is_finite() && v.fract() == 0.0 && v.abs() < 1e18)) {
                return Err(DataError::invalid(
                    path,
                    Location::LineColumn(lines[i], column.to_owned()),
                    format!(
                        "label `{}` is not a whole number: the label column holds numbers, and class labels are \
                         integers ≥ 0 or class names (real-valued targets: --task regression)",
                        labels[i]
                    ),
                ));
            }
            ints = Some(floats.iter().map(|&v| v as i64).collect());
        }
    }
    let Some(ints) = ints else {
        let (names, indices) = index_class_names(labels);
        return Ok((indices, Some(names)));
    };
    let indices = ints
        .iter()
        .zip(lines)
        .map(|(&v, &line)| {
            u32::try_from(v).map_err(|_| {
                let why = if v < 0 { "is negative" } else { "is too large" };
                DataError::invalid(path, Location::LineColumn(line, column.to_owned()), format!("label {v} {why}"))
            })
        })
        .collect::<Result<_, _>>()?;
    Ok((indices, None))
}

/// Parses one feature value, which must be a finite `f32`.
fn parse_value(path: &Path, text: &str, location: impl Fn() -> Location) -> Result<f32, DataError> {
    let value: f32 =
        text.parse().map_err(|_| DataError::invalid(path, location(), format!("value `{text}` is not a number")))?;
    if value.is_finite() {
        Ok(value)
    } else {
        Err(DataError::invalid(path, location(), format!("value `{text}` is not finite")))
    }
}

/// A `csv` crate error with the file and, where the crate knows it, the line (and the column, by its
/// name in `header`).
fn csv_error(path: &Path, header: Option<&::csv::StringRecord>, error: ::csv::Error) -> DataError {
    let line = |pos: Option<&::csv::Position>| pos.map_or(0, |p| p.line() as usize);
    match error.kind() {
        ::csv::ErrorKind::UnequalLengths { pos, expected_len, len } => DataError::invalid(
            path,
            Location::Line(line(pos.as_ref())),
            format!("found {len} fields, expected {expected_len} like the header"),
        ),
        ::csv::ErrorKind::Utf8 { pos, err } => {
            let column =
                header.and_then(|h| h.get(err.field())).map_or_else(|| (err.field() + 1).to_string(), str::to_owned);
            DataError::invalid(path, Location::LineColumn(line(pos.as_ref()), column), "not valid UTF-8")
        }
        _ => DataError::invalid(path, Location::File, error.to_string()),
    }
}
