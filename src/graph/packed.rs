//! The packed schema: the names NSL's `pack_nbrs` gives a sample's neighbors, said once for every
//! reader and writer (`nsl pack-nbrs`'s TFRecord and Parquet output, the packed readers of
//! `neighbors` and `tfrecord`, the Spark worker).
//!
//! A packed record holds the sample's own features, [`NUM_NEIGHBORS`] (how many neighbors follow)
//! and, for neighbor `j` (best first, `j` from 0), its edge weight under [`neighbor_weight`]`(j)`
//! and each of its features `f` under [`neighbor_feature`]`(j, f)`: in TFRecord every feature of
//! the neighbor, in nsl's Parquet tables its `id` and `features`.
//!
//! ```
//! use nsl::graph::packed;
//! assert_eq!(packed::NUM_NEIGHBORS, "NL_num_nbrs");
//! assert_eq!(packed::neighbor_weight(2), "NL_nbr_2_weight");
//! assert_eq!(packed::neighbor_feature(0, "features"), "NL_nbr_0_features");
//! assert_eq!(packed::neighbor_id(1), "NL_nbr_1_id");
//! ```

/// The number of neighbors of a packed sample (int64).
pub const NUM_NEIGHBORS: &str = "NL_num_nbrs";

/// What every name of neighbor `j`'s features starts with: `NL_nbr_<j>_`.
pub fn neighbor_prefix(j: usize) -> String {
    format!("NL_nbr_{j}_")
}

/// Neighbor `j`'s feature `name`: `NL_nbr_<j>_<name>`.
pub fn neighbor_feature(j: usize, name: &str) -> String {
    format!("NL_nbr_{j}_{name}")
}

/// Neighbor `j`'s edge weight: `NL_nbr_<j>_weight`.
pub fn neighbor_weight(j: usize) -> String {
    neighbor_feature(j, "weight")
}

/// Neighbor `j`'s id in nsl's Parquet tables: `NL_nbr_<j>_id`.
pub fn neighbor_id(j: usize) -> String {
    neighbor_feature(j, "id")
}

/// Neighbor `j`'s feature vector in nsl's Parquet tables: `NL_nbr_<j>_features`.
pub fn neighbor_features(j: usize) -> String {
    neighbor_feature(j, "features")
}
