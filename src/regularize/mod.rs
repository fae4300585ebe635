//! Regularizers: the loss terms that tie a sample's output to its neighbors' outputs.
//!
//! - [`pairwise_distance`] with a [`DistanceConfig`] is NSL's `pairwise_distance_wrapper`: the
//!   distance between a sample's output and each neighbor's, weighted by the edge weight and reduced
//!   to one number. The same code serves explicit, similarity and adversarial neighbors.
//! - [`graph_loss`] with a [`GraphRegConfig`]: graph regularization over a batch's (sample,
//!   neighbor) pairs; [`graph_loss_in_batch`] when the neighbors are the batch's own samples.
//! - [`gen_adv_neighbor`] with an [`AdvNeighborConfig`]: adversarial neighbors (FGSM/PGD), and
//!   [`AdvRegConfig`], the adversarial regularizer that trains on them, with NSL's objective or
//!   Madry's, TRADES' or MART's ([`AdvObjective`]); [`pgd_from`] and [`gaussian_start`] for inner
//!   maximizations that start elsewhere.
//! - [`virtual_adv_direction`] with a [`VatConfig`]: virtual adversarial neighbors, which need no
//!   label.

mod adv_neighbor;
mod adv_reg;
mod distance;
mod graph;
mod vat;

pub(crate) use adv_neighbor::sign;
pub use adv_neighbor::{gaussian_start, gen_adv_neighbor, pgd_from, AdvNeighborConfig, NormType};
pub use adv_reg::{AdvLoss, AdvObjective, AdvRegConfig};
pub use distance::{pairwise_distance, DistanceConfig, DistanceType, Reduction, Transform};
pub use graph::{graph_loss, graph_loss_in_batch, GraphRegConfig};
pub use vat::{normalize_rows, virtual_adv_direction, VatConfig};
