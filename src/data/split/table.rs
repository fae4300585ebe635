//! Splits given by a table of `id<TAB>split` lines, such as Planetoid's standard split of Cora.

use crate::data::{read_file, DataError, Dataset};
use crate::io::Location;
use std::collections::HashMap;
use std::fmt;
use std::path::Path;

/// A part of a [`TableSplit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TablePart {
    /// Labeled training samples (`train`).
    Train,
    /// Validation samples, for model selection (`val`, `valid` or `validation`).
    Validation,
    /// Test samples (`test`).
    Test,
    /// Everything else (`other`, `unlabeled` or `unlabelled`), and the samples the table omits.
    Other,
}

impl TablePart {
    /// The names a table may use for each part (matched ignoring ASCII case).
    pub const NAMES: [(&'static str, TablePart); 8] = [
        ("train", TablePart::Train),
        ("val", TablePart::Validation),
        ("valid", TablePart::Validation),
        ("validation", TablePart::Validation),
        ("test", TablePart::Test),
        ("other", TablePart::Other),
        ("unlabeled", TablePart::Other),
        ("unlabelled", TablePart::Other),
    ];

    /// Parses a split name of [`TablePart::NAMES`], ignoring ASCII case.
    pub fn parse(name: &str) -> Option<TablePart> {
        TablePart::NAMES.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|&(_, p)| p)
    }

    /// The canonical name: `train`, `validation`, `test` or `other`.
    pub fn as_str(self) -> &'static str {
        match self {
            TablePart::Train => "train",
            TablePart::Validation => "validation",
            TablePart::Test => "test",
            TablePart::Other => "other",
        }
    }
}

impl fmt::Display for TablePart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The rows of each part of a [`split_by_table`], each list in increasing order (the input's
/// order); together they hold every row exactly once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableSplit {
    /// Rows whose id the table marks `train`.
    pub train: Vec<usize>,
    /// Rows marked `val`/`validation`.
    pub validation: Vec<usize>,
    /// Rows marked `test`.
    pub test: Vec<usize>,
    /// Rows marked `other`/`unlabeled`, and the rows whose id is not in the table.
    pub other: Vec<usize>,
    /// How many of `other` the table does not name at all.
    pub not_in_table: usize,
    /// How many `other` lines of the table name an id that is not among the samples: skipped,
    /// since those rows would not be used anyway (Planetoid's tables list every node, and
    /// unlabeled nodes are often dropped before).
    pub skipped_other: usize,
}

impl TableSplit {
    /// The rows of one part.
    pub fn rows(&self, part: TablePart) -> &[usize] {
        match part {
            TablePart::Train => &self.train,
            TablePart::Validation => &self.validation,
            TablePart::Test => &self.test,
            TablePart::Other => &self.other,
        }
    }

    /// Every row that is not `train` (validation, test and other), in increasing order: the pool
    /// of unlabeled centers for semi-supervised training. Their labels stay in the data; it is the
    /// trainer that must not use them.
    pub fn unlabeled(&self) -> Vec<usize> {
        let mut rows: Vec<usize> = self.validation.iter().chain(&self.test).chain(&self.other).copied().collect();
        rows.sort_unstable();
        rows
    }
}

/// Assigns every sample to a part by a table of `id<TAB>split` lines (a file gzipped or not).
///
/// - `split` is one of [`TablePart::NAMES`]: `train`, `val`/`valid`/`validation`, `test`,
///   `other`/`unlabeled`/`unlabelled` (ASCII case ignored). Spaces around either field are ignored.
/// - A first line `id<TAB>split` is a header and skipped; blank lines and lines starting with `#`
///   are skipped.
/// - Samples whose id the table does not name go to `other` and are counted in
///   [`TableSplit::not_in_table`].
/// - An `other` line whose id is not among the samples is skipped and counted in
///   [`TableSplit::skipped_other`]: only the ids that would be used (train, validation, test)
///   must be samples.
///
/// # Errors
/// [`DataError::Invalid`] naming the file and the 1-based line: a line that is not two
/// tab-separated fields, an unknown split name, a train, validation or test id that is not among
/// the samples, or an id listed twice (with the line of its first occurrence). [`DataError::Io`] if the file cannot be
/// read; an invalid UTF-8 table is reported with its line.
///
/// # Example
/// ```no_run
/// use nsl::data::{read_content, split_by_table};
/// use std::path::Path;
/// let cora = read_content(Path::new("datasets/cora/cora.content.gz"))?;
/// let parts = split_by_table(&cora, Path::new("datasets/cora/cora.planetoid_split.tsv"))?;
/// assert_eq!((parts.train.len(), parts.validation.len(), parts.test.len()), (140, 500, 1000));
/// # Ok::<(), nsl::DataError>(())
/// ```
pub fn split_by_table(samples: &Dataset, path: &Path) -> Result<TableSplit, DataError> {
    let bytes = read_file(path)?;
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count() + 1;
        DataError::invalid(path, Location::Line(line), format!("not valid UTF-8: {e}"))
    })?;
    let mut part_of: Vec<Option<TablePart>> = vec![None; samples.len()];
    // The line each row was named on, to report duplicates.
    let mut seen: HashMap<usize, usize> = HashMap::new();
    // The same for the skipped `other` ids that are not among the samples.
    let mut seen_absent: HashMap<&str, usize> = HashMap::new();
    let mut skipped_other = 0;
    let mut first_data_line = true;
    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').map(str::trim).collect();
        let header = std::mem::replace(&mut first_data_line, false);
        let [id, name] = fields[..] else {
            return Err(DataError::invalid(
                path,
                Location::Line(line_no),
                format!("expected `id<TAB>split`, found {} tab-separated fields", fields.len()),
            ));
        };
        if header && id.eq_ignore_ascii_case("id") && name.eq_ignore_ascii_case("split") {
            continue;
        }
        let Some(part) = TablePart::parse(name) else {
            return Err(DataError::invalid(
                path,
                Location::LineColumn(line_no, "2".into()),
                format!(
                    "unknown split `{name}` for id `{id}` (expected train, val, validation, test, other or unlabeled)"
                ),
            ));
        };
        let Some(row) = samples.position(id) else {
            if part == TablePart::Other {
                if let Some(first) = seen_absent.insert(id, line_no) {
                    return Err(DataError::invalid(
                        path,
                        Location::LineColumn(line_no, "1".into()),
                        format!("id `{id}` is listed twice (first on line {first})"),
                    ));
                }
                skipped_other += 1;
                continue;
            }
            return Err(DataError::invalid(
                path,
                Location::LineColumn(line_no, "1".into()),
                format!(
                    "id `{id}` is not among the {} samples (its split is {part}; only `other` ids may be absent)",
                    samples.len()
                ),
            ));
        };
        if let Some(first) = seen.insert(row, line_no) {
            return Err(DataError::invalid(
                path,
                Location::LineColumn(line_no, "1".into()),
                format!("id `{id}` is listed twice (first on line {first})"),
            ));
        }
        part_of[row] = Some(part);
    }
    let mut split = TableSplit { skipped_other, ..TableSplit::default() };
    for (row, part) in part_of.into_iter().enumerate() {
        let part = part.unwrap_or_else(|| {
            split.not_in_table += 1;
            TablePart::Other
        });
        match part {
            TablePart::Train => split.train.push(row),
            TablePart::Validation => split.validation.push(row),
            TablePart::Test => split.test.push(row),
            TablePart::Other => split.other.push(row),
        }
    }
    Ok(split)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    fn five() -> Dataset {
        let ids = ["p0", "p1", "p2", "p3", "p4"].map(String::from).to_vec();
        Dataset::new(ids, Array2::zeros((5, 1)), vec![1], Some(vec![0, 1, 0, 1, 0]), None).unwrap()
    }

    fn table(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("split.tsv");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn assigns_parts_and_counts_missing_ids() {
        let (_dir, path) = table("id\tsplit\np3\ttest\n\n# a comment\np0\tTrain\r\np1\tval\np4\tunlabeled\n");
        let s = split_by_table(&five(), &path).unwrap();
        assert_eq!(s.train, [0]);
        assert_eq!(s.validation, [1]);
        assert_eq!(s.test, [3]);
        assert_eq!(s.other, [2, 4]);
        assert_eq!(s.not_in_table, 1);
        assert_eq!(s.unlabeled(), [1, 2, 3, 4]);
        assert_eq!(s.rows(TablePart::Test), [3]);
        assert_eq!(s.skipped_other, 0);
    }

    /// Issue 22: a Planetoid-style table names every node; nodes dropped from the samples are
    /// fine when their split is `other`, and counted.
    #[test]
    fn split_table_skips_other_ids_absent_from_the_samples() {
        let (_dir, path) = table("p0\ttrain\np1\ttest\nq7\tother\nq8\tunlabeled\np2\tother\n");
        let s = split_by_table(&five(), &path).unwrap();
        assert_eq!((s.train.as_slice(), s.test.as_slice(), s.other.as_slice()), (&[0][..], &[1][..], &[2, 3, 4][..]));
        assert_eq!((s.skipped_other, s.not_in_table), (2, 2));
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let cases = [
            ("p0\ttrain\np1\tholdout\n", "line 2, column 2: unknown split `holdout`"),
            ("p0\ttrain\n\np9\ttest\n", "line 3, column 1: id `p9` is not among the 5 samples (its split is test;"),
            ("p9\tother\np9\tunlabeled\n", "line 2, column 1: id `p9` is listed twice (first on line 1)"),
            ("p0\ttrain\np1\ttest\np0\ttest\n", "line 3, column 1: id `p0` is listed twice (first on line 1)"),
            ("p0 train\n", "line 1: expected `id<TAB>split`, found 1 tab-separated fields"),
        ];
        for (text, message) in cases {
            let (_dir, path) = table(text);
            let e = split_by_table(&five(), &path).unwrap_err().to_string();
            assert!(e.starts_with(&path.display().to_string()), "{e}");
            assert!(e.contains(message), "{e} should contain {message}");
        }
    }
}
