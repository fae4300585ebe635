//! Regularizers: the loss terms that tie a sample's output to its neighbors' outputs.
//!
//! [`distance`] holds NSL's `DistanceConfig` and `pairwise_distance_wrapper`: the distance between a
//! sample's output and each neighbor's, weighted by the edge weight and reduced to one number. The same
//! code serves explicit, similarity and adversarial neighbors.

pub mod adv_reg;
pub mod adversarial;
pub mod distance;
pub mod graph;

pub use adv_reg::{AdvLoss, AdvRegConfig};
pub use adversarial::{gen_adv_neighbor, AdvNeighborConfig, NormType};
pub use distance::{pairwise_distance, DistanceConfig, DistanceType, Reduction, Transform};
pub use graph::{graph_loss, GraphRegConfig};
