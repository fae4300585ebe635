//! GRAND, the graph random neural network (Feng et al., NeurIPS 2020, "Graph Random Neural Network
//! for Semi-Supervised Learning on Graphs"; official code THUDM/GRAND, `train_grand.py`): a
//! graph-aware teacher for distillation (`nsl graph grand`, then `nsl train --distill`).
//!
//! ```
//! use ndarray::array;
//! use nsl::graph::{EdgeKind, NeighborGraph};
//! use nsl::grand::{Grand, GrandConfig};
//! use nsl::Dataset;
//! // Two pairs of linked papers; one labeled paper per pair.
//! let ids: Vec<String> = ["a", "b", "c", "d"].map(String::from).to_vec();
//! let x = array![[1.0f32, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]];
//! let names = Some(vec!["x".to_string(), "y".to_string()]);
//! let all = Dataset::new(ids.clone(), x.clone(), vec![2], None, None)?;
//! let train = Dataset::new(vec!["a".into(), "c".into()], array![[1.0f32, 0.0], [0.0, 1.0]], vec![2], Some(vec![0, 1]), names.clone())?;
//! let validation = Dataset::new(vec!["b".into(), "d".into()], array![[0.9f32, 0.1], [0.1, 0.9]], vec![2], Some(vec![0, 1]), names)?;
//! let mut g = NeighborGraph::new();
//! g.add_edge("a", "b", 1.0, EdgeKind::Explicit)?;
//! g.add_edge("c", "d", 1.0, EdgeKind::Explicit)?;
//! g.make_undirected();
//! let config = GrandConfig { order: 2, views: 2, max_epochs: 50, ..GrandConfig::default() };
//! let grand = Grand::new(&all, &g, &train, &validation, None, config)?;
//! let fit = grand.fit(0, &mut |_| {})?;
//! assert_eq!(fit.probabilities.dim(), (4, 2));
//! assert_eq!(fit.report.validation_accuracy, 1.0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Formulas
//! Features are first divided by their L1 norm per row (`X`). Each training step (full batch over
//! all `n` nodes) draws `S` views `s`:
//! - **DropNode**: each node's whole row of `X` is zeroed with probability `δ` (mask `m_s ∈ {0,1}ⁿ`):
//!   `X̃_s = diag(m_s)·X`, not rescaled;
//! - **mixed-order propagation**: `X̄_s = 1/(K+1)·Σ_{k=0..K} Â^k·X̃_s`, `Â = D^-1/2 (A + I) D^-1/2`
//!   (the mode `mixed` of `nsl graph propagate`, computed by the same code);
//! - **MLP**: `Z_s = W₂·dropout_h(ReLU(W₁·dropout_in(X̄_s) + b₁)) + b₂`, `p_s = softmax(Z_s)`.
//!
//! The loss is `1/S·Σ_s CE(p_s, y)` over the labeled nodes, plus `λ` times the consistency
//! `1/S·Σ_s 1/n·Σ_i ‖p̂_i − p_s,i‖²` over **all** nodes, where `p̄ = 1/S·Σ_s p_s` and
//! `p̂ = sharpen(p̄)`, `p̂_c = p̄_c^{1/T} / Σ_j p̄_j^{1/T}`, held constant (no gradient through the
//! target). Adam with L2 weight decay (`g + wd·θ`, PyTorch's `Adam(weight_decay=…)`).
//!
//! After every step the model is evaluated without dropout on `X̄ = 1/(K+1)·Σ_k Â^k·(1 − δ)·X`
//! (the expectation of a view's input). Early stopping is the official code's: an epoch whose
//! validation loss is at most the lowest so far, or whose validation accuracy is at least the
//! highest so far, resets the patience counter, and the weights of the epoch with the lowest
//! validation loss are kept; training stops after `patience` epochs without such an epoch. The
//! probabilities of every node are the kept model's softmax on `X̄`.
//!
//! # Differences from the paper and the official code
//! - No batch normalization (the official code's `--use_bn`, used for Pubmed only); Pubmed's
//!   settings (batch norm, learning rate 0.2) are not reproduced.
//! - Weights are Glorot-uniform from a seeded ChaCha generator (biases 0), where the official
//!   `MLPLayer` draws weights and biases from `normal_(−1/√out, 1/√out)` (PyTorch's arguments are
//!   mean and standard deviation: a normal of mean `−1/√out`, a quirk not reproduced); Adam's ε is
//!   Keras' 1e-7 (PyTorch's 1e-8).
//! - At most [`GrandConfig::max_epochs`] epochs (default 2000; the official default is 5000).
//! - The labeled, validation and test nodes are given by id (any split), not by the Planetoid
//!   file order.
//!
//! # Cost
//! Each epoch propagates `S` dense `n × F` views over `K` powers of `Â`
//! (`S·K·(nnz(Â) + n)·F` multiply-adds, about half of the time) and runs the MLP forward and
//! backward on each (`n × F` dropout masks, two `n·F·hidden` products). Measured on one thread of
//! a busy 2-core AMD EPYC: Cora (2708 × 1433, `K` 8, `S` 4) 0.46 s per epoch, Citeseer
//! (3327 × 3703, `K` 2, `S` 2) 0.58 s; with patience 200 a run lasts about 1,000 epochs, 8 to 10
//! minutes. Memory: a few `n × F` buffers per view (16 MB each on Cora, 49 MB on Citeseer).

mod config;
mod fit;
mod views;

pub use config::GrandConfig;
pub use fit::{Grand, GrandEpoch, GrandFit, GrandReport};

/// What can go wrong in GRAND.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GrandError {
    /// A setting out of range.
    #[error("invalid {option} `{value}`: expected {expected}")]
    InvalidConfig {
        /// The setting (the flag's name without `--`).
        option: &'static str,
        /// Its value.
        value: String,
        /// What is accepted.
        expected: &'static str,
    },
    /// A node of a labeled set is not among the samples.
    #[error("the {set} node `{id}` is not among the samples ({count} of the {set} nodes are not)")]
    UnknownNode {
        /// `train`, `validation` or `test`.
        set: &'static str,
        /// The first such id.
        id: String,
        /// How many.
        count: usize,
    },
    /// A labeled set without labels.
    #[error("the {set} nodes have no labels")]
    NoLabels {
        /// `train`, `validation` or `test`.
        set: &'static str,
    },
    /// A labeled set without any node.
    #[error("no {set} nodes")]
    Empty {
        /// `train`, `validation` or `test`.
        set: &'static str,
    },
    /// A label of a scored set that the training nodes do not have.
    #[error("the {set} label `{label}` is not a class of the training nodes ({classes})")]
    UnknownClass {
        /// `validation` or `test`.
        set: &'static str,
        /// The label.
        label: String,
        /// The training classes.
        classes: String,
    },
    /// The samples cannot be propagated: token-id features, or more rows than 32-bit indices address.
    #[error(transparent)]
    Propagate(#[from] crate::neighbors::PropagateError),
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}
