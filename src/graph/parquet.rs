//! Placeholder: being written.
use super::{GraphError, NeighborGraph};
use std::path::Path;
/// Placeholder.
pub fn read_graph(_path: &Path) -> Result<NeighborGraph, GraphError> {
    Err(GraphError::Format("todo".into()))
}
/// Placeholder.
pub fn write_graph(_g: &NeighborGraph, _path: &Path) -> Result<(), GraphError> {
    Err(GraphError::Format("todo".into()))
}
