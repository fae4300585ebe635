//! Regularizers: the loss terms that tie a sample's output to its neighbors' outputs.
//!
//! [`distance`] holds NSL's `DistanceConfig` and `pairwise_distance_wrapper`: the distance between a
//! sample's output and each neighbor's, weighted by the edge weight and reduced to one number. The same
//! code serves explicit, similarity and adversarial neighbors.

pub mod distance;
pub mod graph;

pub use distance::{pairwise_distance, DistanceConfig, DistanceType, Reduction, Transform};
pub use graph::{graph_loss, GraphRegConfig};
