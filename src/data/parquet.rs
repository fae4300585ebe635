//! Placeholder: being written.
use super::{DataError, Dataset, SampleColumns};
use std::path::Path;
/// Placeholder.
pub fn read_samples(path: &Path, columns: &SampleColumns) -> Result<Dataset, DataError> {
    let _ = columns;
    Err(DataError::invalid(path, crate::io::Location::File, "placeholder"))
}
/// Placeholder.
pub fn write_samples(dataset: &Dataset, path: &Path) -> Result<(), DataError> {
    let _ = dataset;
    Err(DataError::invalid(path, crate::io::Location::File, "placeholder"))
}
