//! Neighbors for training: NSL's `pack_nbrs`, done on the fly.
//!
//! [`NeighborTable`] joins the training samples with a [`NeighborGraph`]: for each sample, up to
//! `max_neighbors` neighbors (highest weight first, ties to the larger id, as NSL), looked up among
//! the training samples and an optional pool of extra samples (e.g. unlabeled papers), whose features
//! are kept once instead of being copied into every record. [`NeighborTable::batch`] gathers the
//! neighbors of a batch as (sample, neighbor, weight) pairs — the form every regularizer consumes,
//! whether the neighbor came from a graph or was generated adversarially.

mod pack;
mod propagate;
mod table;

pub use pack::pack_neighbors;
pub use propagate::{
    propagate, propagate_with_report, PropagateConfig, PropagateError, PropagateMode, PropagateReport,
};
pub use table::{extend_row, NeighborBatch, NeighborReport, NeighborTable};
