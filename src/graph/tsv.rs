//! Placeholder: being written.
use super::{EdgeKind, GraphError, NeighborGraph};
use std::path::Path;
/// Placeholder.
pub fn read_tsv(_path: &Path, _kind: EdgeKind) -> Result<NeighborGraph, GraphError> {
    Err(GraphError::Format("todo".into()))
}
/// Placeholder.
pub fn write_tsv(_g: &NeighborGraph, _path: &Path) -> Result<(), GraphError> {
    Err(GraphError::Format("todo".into()))
}
