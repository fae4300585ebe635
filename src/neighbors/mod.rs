//! Neighbors for training: NSL's `pack_nbrs`, done on the fly.
//!
//! [`NeighborTable`] joins the training samples with a [`NeighborGraph`]: for each sample, up to
//! [`NeighborConfig::max_neighbors`] neighbors (highest weight first, ties to the larger id, as NSL), looked up among
//! the training samples and an optional pool of extra samples (e.g. unlabeled papers), whose features
//! are kept once instead of being copied into every record. [`NeighborTable::batch`] gathers the
//! neighbors of a batch as (sample, neighbor, weight) pairs — the form every regularizer consumes,
//! whether the neighbor came from a graph or was generated adversarially.
//!
//! [`PackedParts`] reads the other form, neighbors copied into every record ([`pack_neighbors`],
//! `scripts/spark/pack_nbrs.py`), as a stream of batches through a seeded shuffle buffer, for
//! tables larger than memory.

mod config;
mod pack;
mod packed;
mod propagate;
mod table;

pub use config::NeighborConfig;
pub use pack::pack_neighbors;
pub use packed::{PackedBatch, PackedConfig, PackedEpoch, PackedParts};
pub(crate) use propagate::{adjacency_over, mixed_order, row_normalize_l1};
pub use propagate::{
    propagate, propagate_with_report, PropagateConfig, PropagateError, PropagateMode, PropagateReport,
};
pub use table::{extend_row, NeighborBatch, NeighborReport, NeighborTable};
