//! LINQS `.content` files (Cora, Citeseer, PubMed-Diabetes in the LINQS layout): one sample per line,
//! `<id> <f1> … <fd> <label>`, separated by tabs or spaces, gzipped or not.
//!
//! The companion `.cites` file holds the citation links; it is a graph and is read by
//! `graph::linqs`.

use super::{index_class_names, read_file, DataError, Dataset};
use crate::io::Location;
use ndarray::Array2;
use std::collections::HashMap;
use std::path::Path;

/// Reads a LINQS `.content` file into a [`Dataset`].
///
/// - Each non-blank line is `<id>\t<f1>\t…\t<fd>\t<label>` (any run of spaces or tabs separates
///   columns; a trailing `\r` is ignored). The first line fixes the number of columns.
/// - The item shape is `[d]`; features are parsed as `f32`.
/// - Labels are strings. The class names are the distinct labels **sorted by their bytes** (Python's
///   `sorted()` order), and each row's label is its class name's index: Cora's `Case_Based = 0,
///   Genetic_Algorithms = 1, Neural_Networks = 2, Probabilistic_Methods = 3, Reinforcement_Learning = 4,
///   Rule_Learning = 5, Theory = 6`, as in NSL's `preprocess_cora_dataset.py`.
/// - Rows keep the file's order.
///
/// # Errors
/// [`DataError`] naming the file and the line (1-based) and column: an empty file, a truncated gzip
/// stream, invalid UTF-8, fewer than 3 columns, a line with a different number of columns than the
/// first (found and expected), a feature that is not a number or not finite, and a duplicate id (with
/// the line where it first appeared).
///
/// # Example
/// ```no_run
/// let cora = nsl::data::read_content(std::path::Path::new("datasets/cora/cora.content.gz"))?;
/// assert_eq!((cora.len(), cora.dim()), (2708, 1433));
/// # Ok::<(), nsl::DataError>(())
/// ```
pub fn read_content(path: &Path) -> Result<Dataset, DataError> {
    let bytes = read_file(path)?;
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count() + 1;
        DataError::invalid(path, Location::Line(line), format!("not valid UTF-8: {e}"))
    })?;

    let mut ids: Vec<&str> = Vec::new();
    let mut labels: Vec<&str> = Vec::new();
    let mut values: Vec<f32> = Vec::new();
    let mut first_line_of: HashMap<&str, usize> = HashMap::new();
    // (line number, number of columns) of the first sample line.
    let mut first: Option<(usize, usize)> = None;
    // Reused for every line: the columns of the current line.
    let mut columns: Vec<&str> = Vec::new();

    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        columns.clear();
        columns.extend(line.split_ascii_whitespace());
        if columns.is_empty() {
            continue;
        }
        let (first_line, width) = *first.get_or_insert((line_no, columns.len()));
        if width < 3 {
            return Err(DataError::invalid(
                path,
                Location::Line(line_no),
                format!("found {width} columns, expected at least 3: <id> <features…> <label>"),
            ));
        }
        if columns.len() != width {
            return Err(DataError::invalid(
                path,
                Location::Line(line_no),
                format!("found {} columns, expected {width} like line {first_line}", columns.len()),
            ));
        }
        let id = columns[0];
        if let Some(previous) = first_line_of.insert(id, line_no) {
            return Err(DataError::invalid(
                path,
                Location::Line(line_no),
                format!("duplicate id `{id}` (first on line {previous})"),
            ));
        }
        for (k, field) in columns[1..width - 1].iter().enumerate() {
            let column = || Location::LineColumn(line_no, (k + 2).to_string());
            let value: f32 = field
                .parse()
                .map_err(|_| DataError::invalid(path, column(), format!("feature `{field}` is not a number")))?;
            if !value.is_finite() {
                return Err(DataError::invalid(path, column(), format!("feature `{field}` is not finite")));
            }
            values.push(value);
        }
        ids.push(id);
        labels.push(columns[width - 1]);
    }

    let Some((_, width)) = first else {
        return Err(DataError::invalid(path, Location::File, "file is empty (no sample lines)"));
    };
    let d = width - 2;
    let n = ids.len();
    let features =
        Array2::from_shape_vec((n, d), values).map_err(|e| DataError::invalid(path, Location::File, e.to_string()))?;
    let (class_names, label_indices) = index_class_names(&labels);
    let ids = ids.into_iter().map(str::to_owned).collect();
    Dataset::new(ids, features, vec![d], Some(label_indices), Some(class_names)).map_err(|e| e.in_file(path))
}
