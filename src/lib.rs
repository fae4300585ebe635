//! # nsl: Neural Structured Learning in Rust
//!
//! Train neural networks on samples *and* their neighbors. Neighbors come from a given graph
//! (citations, co-purchases), from similarity of embeddings, or are generated adversarially; all
//! of them are edges of one [`NeighborGraph`]. A regularization loss keeps the model's output for
//! a sample close to its output for each neighbor.
//!
//! The data flows one way:
//!
//! ```text
//! data files ─► Dataset ─────────────┐
//!                                    ├─► NeighborTable (batches of sample–neighbor pairs)
//! graph files / embeddings ─► NeighborGraph ─┘      │
//!                                                   ▼
//!                model (Mlp, Cnn, any candle module) + regularizers ─► Trainer ─► History, evaluate
//! ```
//!
//! # A tour
//!
//! **1. A neighbor graph from embeddings** (NSL's `build_graph`: every pair with cosine similarity
//! ≥ the threshold, exact or with LSH):
//!
//! ```
//! use nsl::{BuildConfig, GraphBuilder};
//! let ids: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
//! let embeddings = ndarray::array![[1.0f32, 0.0], [0.96, 0.28], [0.0, 1.0]];
//! let config = BuildConfig { threshold: 0.9, ..Default::default() };
//! let (graph, _report) = GraphBuilder::new(config).build(&ids, embeddings.view())?;
//! assert_eq!(graph.neighbors("a").map(|(id, _)| id).collect::<Vec<_>>(), ["b"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! **2. Train with graph regularization** (NSL's `GraphRegularization`): a built-in MLP, the
//! neighbors of each training sample from the graph, and the graph loss added to the supervised one.
//!
//! ```
//! use nsl::{build_model, Dataset, EdgeKind, GraphRegConfig, NeighborGraph, NeighborTable, TrainConfig, Trainer};
//! # let ids: Vec<String> = (0..8).map(|i| format!("s{i}")).collect();
//! # let x = ndarray::Array2::from_shape_fn((8, 2), |(i, j)| if (i % 2 == 0) == (j == 0) { 1.0 } else { 0.1 });
//! # let labels = Some((0..8).map(|i| (i % 2) as u32).collect());
//! let data = Dataset::new(ids, x, vec![2], labels, None)?;
//! let mut graph = NeighborGraph::new();
//! graph.add_edge("s0", "s2", 1.0, EdgeKind::Explicit)?;
//!
//! let (model, vars) = build_model(&"mlp:16".parse()?, data.item_shape(), 2, 0, &candle_core::Device::Cpu)?;
//! let reg = GraphRegConfig { multiplier: 0.1, ..Default::default() };
//! let (neighbors, _) = NeighborTable::new(&data, None, &graph, reg.neighbors)?;
//! let history = Trainer::new(model.as_ref(), &vars, TrainConfig { epochs: 3, ..Default::default() })
//!     .with_graph(&neighbors, &reg)
//!     .fit(&data, None)?;
//! assert_eq!(history.epochs.len(), 3);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! **3. Your own Candle model, adversarially regularized** (NSL's `AdversarialRegularization`):
//! any `candle_nn::Module` (or `ModuleT`) is a [`Model`]; every batch also trains on its
//! adversarial neighbors `x + δ` (FGSM here, PGD with `pgd_iterations`).
//!
//! ```
//! use candle_core::{DType, Device, Module, Tensor};
//! use candle_nn::{linear, Linear, VarBuilder, VarMap};
//! use nsl::{AdvRegConfig, TrainConfig, Trainer};
//!
//! struct Net(Linear, Linear);
//! impl Module for Net {
//!     fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
//!         self.1.forward(&self.0.forward(x)?.relu()?)
//!     }
//! }
//! # let ids: Vec<String> = (0..8).map(|i| format!("s{i}")).collect();
//! # let x = ndarray::Array2::from_shape_fn((8, 2), |(i, j)| if (i % 2 == 0) == (j == 0) { 1.0 } else { 0.1 });
//! # let data = nsl::Dataset::new(ids, x, vec![2], Some((0..8).map(|i| (i % 2) as u32).collect()), None)?;
//! let vars = VarMap::new();
//! let vb = VarBuilder::from_varmap(&vars, DType::F32, &Device::Cpu);
//! let net = Net(linear(2, 8, vb.pp("l1"))?, linear(8, 2, vb.pp("l2"))?);
//! let adversarial = AdvRegConfig::default(); // NSL's: multiplier 0.2, step 0.001, L2
//! Trainer::new(&net, &vars, TrainConfig::default()).with_adversarial(&adversarial).fit(&data, None)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Then: [`evaluate`] a model, attack it ([`eval::robustness_sweep`]), save it
//! ([`train::save_checkpoint`]), or look at the graph ([`graph::graph_stats`], [`graph::export`]).
//! The `nsl` command line (feature `cli`, on by default) runs all of this on files; library users
//! can turn it off (`default-features = false`) and build without clap, anyhow, indicatif and toml.
//!
//! # Modules
//!
//! | module | holds |
//! |---|---|
//! | [`data`] | [`Dataset`], readers (IDX, LINQS, Parquet, CSV), the samples writer, splits |
//! | [`augment`] | on-the-fly image augmentation of training batches (random shift, flip) |
//! | [`graph`] | [`NeighborGraph`], graph files (Parquet, NSL TSV, LINQS cites), exports, statistics |
//! | [`build`] | graphs from embeddings ([`GraphBuilder`]) |
//! | [`neighbors`] | [`NeighborTable`]: each sample's neighbors as feature rows; NSL's `pack_nbrs` |
//! | [`model`] | [`Model`], the built-in [`Mlp`](model::Mlp) and [`Cnn`](model::Cnn), [`ModelSpec`] |
//! | [`regularize`] | distances, the graph loss, adversarial neighbors and their configs |
//! | [`loss`] | the objective's terms: cross-entropy, the adversarial term, the input gradient |
//! | [`train`] | [`Trainer`], [`TrainConfig`], history, checkpoints |
//! | [`eval`] | accuracy, predictions, FGSM/PGD attacks and sweeps |
//! | [`report`] | training and robustness curves, digit grids |
//! | [`io`] | atomic output files, gzip input, error locations |
//!
//! `docs/architecture.md` gives the direction of every dependency between them.
#![deny(missing_docs)]

pub mod augment;
pub mod build;
mod config;
pub mod data;
pub mod eval;
pub mod grand;
pub mod graph;
pub mod io;
mod kernels;
pub mod loss;
pub mod model;
pub mod neighbors;
pub mod regularize;
pub mod report;
pub mod run;
mod tensor;
pub mod tfrecord;
pub mod train;
pub mod tune;

pub use build::{BuildConfig, BuildError, GraphBuilder};
pub use config::ConfigError;
pub use data::{DataError, Dataset};
pub use eval::evaluate;
pub use graph::{EdgeKind, GraphError, NeighborGraph};
pub use model::{build_model, Model, ModelSpec};
pub use neighbors::NeighborTable;
pub use regularize::{AdvRegConfig, GraphRegConfig};
pub use train::{TrainConfig, TrainError, Trainer};
