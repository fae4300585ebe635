//! A training run as a library API: what `nsl train`, `nsl train --resume`, `nsl demo` and the
//! Python package all call.
//!
//! A run goes through four stages, each a type:
//!
//! 1. [`RunSpec`]: what a run is: its inputs (files, or samples and a graph in memory), task,
//!    model, [`TrainConfig`](crate::train::TrainConfig), regularizers, schedules, weights, early
//!    stopping, recording. Plain data, every field public with a default.
//! 2. [`RunSpec::check`] → [`CheckedRun`]: every rule that relates settings to each other, in one
//!    place and without reading any input (the way ripgrep turns low-level arguments into
//!    high-level ones, or linfa checks its params once).
//! 3. [`CheckedRun::open`] → [`OpenRun`]: the inputs read by one reader for every format and task
//!    ([`read_for_task`]), laid out in one feature layout, the neighbor tables built, the model
//!    built after one size check ([`ModelSpec::size`](crate::model::ModelSpec::size)).
//! 4. [`OpenRun::fit`] → [`FittedRun`]: trained, with [`FitHooks`] (progress, a stop flag, epoch
//!    states for resuming); then [`FittedRun::save`] writes the run directory `nsl evaluate` reads,
//!    and [`FittedRun::predict`] / [`FittedRun::evaluate`] score more samples.
//!
//! Errors are [`RunError`]s; those about settings ([`RunError::Settings`]) name them by their
//! [`RunSpec`] field, which is also the `nsl train` flag (with `-` for `_`) and Python's keyword.
//!
//! # Example
//! ```
//! use nsl::data::Dataset;
//! use nsl::graph::{EdgeKind, NeighborGraph};
//! use nsl::regularize::GraphRegConfig;
//! use nsl::run::{FitHooks, RunSpec};
//! use std::sync::{atomic::AtomicBool, Arc};
//!
//! // Four samples in two classes, linked in pairs.
//! let ids: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
//! let x = ndarray::array![[0.0f32, 1.0], [0.1, 0.9], [1.0, 0.0], [0.9, 0.1]];
//! let samples = Dataset::new(ids, x, vec![2], Some(vec![0, 0, 1, 1]), None).unwrap();
//! let mut graph = NeighborGraph::new();
//! graph.add_edge("a", "b", 1.0, EdgeKind::Explicit).unwrap();
//! graph.add_edge("c", "d", 1.0, EdgeKind::Explicit).unwrap();
//! graph.make_undirected();
//!
//! let mut spec = RunSpec::default();
//! spec.samples = Some(samples.clone().into());
//! spec.graph = Some(graph.into());
//! spec.graph_reg = Some(GraphRegConfig { multiplier: 0.1, ..GraphRegConfig::default() });
//! spec.model = "mlp:8".parse().unwrap();
//! spec.train.epochs = 3;
//!
//! let stop = Arc::new(AtomicBool::new(false));
//! let mut batches = 0;
//! let hooks = FitHooks::default().on_progress(|_| batches += 1).stop_when(stop);
//! let fitted = spec.check().unwrap().open().unwrap().fit(hooks).unwrap();
//! assert_eq!(fitted.history().epochs.len(), 3);
//! let probabilities = fitted.predict(&samples).unwrap();
//! assert_eq!(probabilities.len(), 4);
//! let dir = tempfile::tempdir().unwrap();
//! fitted.save(&dir.path().join("run")).unwrap();
//! assert!(dir.path().join("run/model.safetensors").is_file());
//! assert_eq!(batches, 3); // one batch per epoch
//! # drop(fitted);
//! ```

mod check;
mod columns;
mod distill;
mod error;
mod fit;
mod open;
mod read;
mod save;
mod spec;

pub use check::CheckedRun;
pub use columns::{RunColumns, COLUMNS_FILE};
pub use distill::{read_teacher, DistillSpec, TeacherInput, TeacherTable};
pub use error::{Conflict, RunError};
pub use fit::{FitHooks, FittedRun, RunSummary};
pub use open::OpenRun;
pub use read::{read_for_run, read_for_task, read_samples, read_samples_for, weigh_if_present};
pub use save::{Saved, RUN_FILES};
pub use spec::{GraphInput, Input, Packed, RunSpec};
