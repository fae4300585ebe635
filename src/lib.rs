//! # nsl: Neural Structured Learning in Rust
//!
//! Train neural networks on samples *and* their neighbors. Neighbors come from a given graph
//! (citations, co-purchases), from similarity of embeddings, or are generated adversarially; all
//! of them are edges of one [`NeighborGraph`](graph::NeighborGraph).
//!
//! The data flows one way:
//!
//! ```text
//! data files ─► data::Dataset ─┐
//!                              ├─► batches with neighbors ─► model + regularizers ─► trainer ─► metrics
//! graph files ─► graph::NeighborGraph ─┘
//! ```
//!
//! ```
//! use nsl::graph::{EdgeKind, NeighborGraph};
//! let mut g = NeighborGraph::new();
//! g.add_edge("paper1", "paper2", 1.0, EdgeKind::Explicit).unwrap();
//! g.make_undirected();
//! assert_eq!(g.neighbors("paper2").next().unwrap().0, "paper1");
//! ```
#![deny(missing_docs)]

pub mod build;
pub mod data;
pub mod eval;
pub mod graph;
pub mod io;
pub mod model;
pub mod neighbors;
pub mod regularize;
pub mod report;
pub mod tfrecord;
pub mod train;

pub use data::{DataError, Dataset};
pub use graph::{EdgeKind, GraphError, NeighborGraph};
