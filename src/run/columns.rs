//! `columns.json`: which columns of its input files a run was trained on, so that `nsl evaluate`,
//! `nsl predict` and `nsl embed` read new samples the same way without repeating every flag.
//!
//! Every field has a serde default, so a run directory written before this file existed (or by a
//! later nsl with more fields) still loads: a missing `columns.json` means the defaults (`id`,
//! every numeric column, `label`), as before.

use super::error::RunError;
use crate::data::SampleColumns;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The name of the file in a run directory.
pub const COLUMNS_FILE: &str = "columns.json";

/// The input columns of a run, as `nsl train` read them (the model's item shape, classes and task
/// are in `model.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunColumns {
    /// The id column. Default `id`.
    pub id: String,
    /// The feature columns (or token groups), as named; empty: the reader's default choice (the
    /// file's `nsl.feature_layout`, `features`, or every numeric column but id, label and weight).
    pub features: Vec<String>,
    /// The label column. Default `label`.
    pub label: String,
    /// The vocabulary size of token groups, if given. Default none.
    pub vocab: Option<usize>,
    /// The per-sample weight column, if any (never a feature). Default none.
    pub weight: Option<String>,
}

impl Default for RunColumns {
    fn default() -> Self {
        let columns = SampleColumns::default();
        RunColumns { id: columns.id, features: columns.features, label: columns.label, vocab: None, weight: None }
    }
}

impl RunColumns {
    /// The columns a run read with `columns` and weight column `weight`.
    pub fn new(columns: &SampleColumns, weight: Option<&str>) -> Self {
        RunColumns {
            id: columns.id.clone(),
            features: columns.features.clone(),
            label: columns.label.clone(),
            vocab: columns.vocab,
            weight: weight.map(str::to_owned),
        }
    }

    /// The reader's column selection: the weight column is excluded from the features, and a
    /// table without the id column gets row numbers (a saved run is scored without a graph).
    pub fn to_columns(&self) -> SampleColumns {
        SampleColumns {
            id: self.id.clone(),
            features: self.features.clone(),
            label: self.label.clone(),
            vocab: self.vocab,
            exclude: self.weight.iter().cloned().collect(),
            row_ids: true,
        }
    }

    /// Reads the `columns.json` of the run directory `run`; the defaults when it has none (a run
    /// saved before nsl recorded its columns).
    ///
    /// # Errors
    /// [`RunError::Io`] for a file that cannot be read, [`RunError::Input`] for one that is not
    /// a columns record.
    pub fn load(run: &Path) -> Result<Self, RunError> {
        let path = run.join(COLUMNS_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(RunColumns::default()),
            Err(e) => return Err(RunError::io(format!("reading {}", path.display()), e)),
        };
        serde_json::from_slice(&bytes).map_err(|e| RunError::Input(format!("{}: {e}", path.display())))
    }

    /// Writes the record as `columns.json` into the directory `dir`.
    pub(crate) fn write(&self, dir: &Path) -> Result<(), RunError> {
        let path = dir.join(COLUMNS_FILE);
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| RunError::io("writing JSON", e.into()))?;
        crate::io::write_bytes(&path, &bytes).map_err(|e| RunError::io(format!("writing {}", path.display()), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_without_fields_is_the_defaults() {
        let read: RunColumns = serde_json::from_str("{}").unwrap();
        assert_eq!(read, RunColumns::default());
        let read: RunColumns = serde_json::from_str(r#"{"label": "species", "weight": "w"}"#).unwrap();
        let columns = read.to_columns();
        assert_eq!((columns.label.as_str(), columns.exclude), ("species", vec!["w".to_string()]));
        assert!(columns.row_ids);
    }

    #[test]
    fn a_run_without_columns_json_reads_as_before() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(RunColumns::load(dir.path()).unwrap(), RunColumns::default());
        RunColumns::new(&SampleColumns { id: "key".into(), ..SampleColumns::default() }, Some("w"))
            .write(dir.path())
            .unwrap();
        let loaded = RunColumns::load(dir.path()).unwrap();
        assert_eq!((loaded.id.as_str(), loaded.weight.as_deref()), ("key", Some("w")));
    }
}
