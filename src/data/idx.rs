//! Placeholder: being written.
use super::{DataError, Dataset};
use std::path::Path;
/// Options of [`read_idx`].
#[derive(Debug, Clone, PartialEq)]
pub struct IdxOptions {
    /// Divide unsigned-byte values by 255 so that pixels are in [0, 1] (NSL's tutorials do). Default true.
    pub scale: bool,
}
impl Default for IdxOptions {
    fn default() -> Self {
        IdxOptions { scale: true }
    }
}
/// Placeholder.
pub fn read_idx(images: &Path, labels: Option<&Path>, options: &IdxOptions) -> Result<Dataset, DataError> {
    let _ = (labels, options);
    Err(DataError::invalid(images, crate::io::Location::File, "placeholder"))
}
