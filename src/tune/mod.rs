//! A seeded search over a recipe's settings, scored on the validation samples alone: successive
//! halving over the epochs, then several seeds per finalist.
//!
//! # The schedule
//! Successive halving (Jamieson & Talwalkar 2016), the building block of Hyperband (Li et al.,
//! "Hyperband: A Novel Bandit-Based Approach to Hyperparameter Optimization", JMLR 18(185), 2018)
//! and ASHA (Li et al., "A System for Massively Parallel Hyperparameter Tuning", MLSys 2020),
//! with the resource being training epochs. With the rate `η` (default 3), `K` halvings and the
//! base recipe's epochs `R`:
//!
//! - rung `k = 0…K` trains `n_k = ⌊n₀/η^k⌋` trials for `r_k = ⌊R/η^(K−k)⌋` epochs each;
//! - the `n₀` trials of rung 0 (trials 1…n₀) are settings drawn from the [`SearchSpace`]
//!   (seeded); rung `k+1` takes the `n_{k+1}` best of rung `k` and trains each again from
//!   scratch, `η` times longer;
//! - the `n_K` trials of the last rung (full `R` epochs) are the finalists, and so is the base
//!   recipe as given (trial 0, nothing drawn), trained on the last rung only: each is trained
//!   with `finalist_seeds − 1` more seeds, and the winner has the best mean score over its seeds,
//!   ties to the earlier trial. So the search never chooses a recipe that scores below the base
//!   on the validation samples, over the same seeds: it keeps the base unless a drawn trial beats
//!   it.
//!
//! A training's score is its best validation accuracy over its epochs (or the mean of its
//! [`TuneConfig::score_epochs`] best), with early stopping on the validation samples inside each
//! training (the recipe's patience, or [`TuneConfig::patience`]). The test samples are never read.
//!
//! How this differs from Hyperband and ASHA: one bracket, synchronous (a rung ends before the
//! next starts, so the result does not depend on timing), and promoted trials train again from
//! the start rather than continuing (a recipe's schedules, such as a cosine learning rate, depend
//! on its epochs; with a constant rate the first epochs repeat exactly, so this costs at most
//! `1/(η−1)` of the plan more). The finalists' extra seeds are an addition: with few labels the
//! validation accuracy of one seed varies by a point or more. The base recipe among the
//! finalists is an addition too: with a few hundred validation samples the best of many draws is
//! partly luck, and a drawn recipe must beat the one the user gave over the same seeds.
//!
//! # The budget
//! A budget is a number of epochs ([`Plan::for_budget`]): the plan takes the most halvings
//! (at most [`TuneConfig::max_halvings`]) that fit, then as many trials as fit. The same space,
//! seed, base recipe and budget give the same plan, the same draws and — training being
//! deterministic for a given thread count — the same scores and the same chosen settings. A
//! wall-clock budget becomes a budget of epochs once ([`Tuner::calibrate`], [`Calibration::plan`]):
//! the base recipe is timed, and the plan that fits is stated with its budget of epochs, which
//! reproduces it on any machine.
//!
//! # Example
//! ```
//! use nsl::data::Dataset;
//! use nsl::graph::{EdgeKind, NeighborGraph};
//! use nsl::run::RunSpec;
//! use nsl::tune::{Distribution, Plan, SearchSpace, TuneConfig, TuneHooks, Tuner, Value};
//!
//! let ids: Vec<String> = (0..8).map(|i| format!("s{i}")).collect();
//! let x = ndarray::Array2::from_shape_fn((8, 2), |(i, j)| if (i % 2 == 0) == (j == 0) { 1.0 } else { 0.1 * i as f32 });
//! let labels = Some((0..8).map(|i| i % 2).collect());
//! let samples = Dataset::new(ids, x, vec![2], labels, None).unwrap();
//! let mut base = RunSpec::default();
//! base.samples = Some(samples.clone().into());
//! base.validation = Some(samples.into());
//! base.model = "mlp:4".parse().unwrap();
//! base.train.epochs = 9;
//!
//! // The trials' runs: the base with the drawn learning rate written in.
//! let make = |settings: &Vec<(String, Value)>| {
//!     let mut spec = base.clone();
//!     for (key, value) in settings {
//!         match (key.as_str(), value) {
//!             ("learning_rate", Value::Float(lr)) => spec.train.optimizer = spec.train.optimizer.with_learning_rate(*lr),
//!             _ => return Err(format!("unknown key {key}")),
//!         }
//!     }
//!     Ok(spec)
//! };
//! let space = SearchSpace::new([("learning_rate".to_string(), Distribution::LogUniform([1e-3, 1e-1]))])?;
//! let config = TuneConfig { finalist_seeds: 2, ..TuneConfig::default() };
//! let mut tuner = Tuner::new(space, config.clone(), make)?;
//! // 9 epochs, η = 3: rungs of 1, 3 and 9 epochs; 9·1 + 3·3 + 1·9 + 1·9 + 2·9 (the base, trial 0,
//! // on the last rung with both seeds) = 54 epochs.
//! let plan = Plan::for_budget(54, tuner.max_epochs(), &config)?;
//! assert_eq!(plan.rungs.iter().map(|r| (r.trials, r.epochs)).collect::<Vec<_>>(), [(9, 1), (3, 3), (1, 9)]);
//! let outcome = tuner.run(&plan, TuneHooks::default());
//! assert_eq!(outcome.trials.len(), 9 + 3 + 1 + 1 + 2);
//! let best = outcome.best.unwrap();
//! assert_eq!(best.scores.len(), 2);
//! assert!(best.finished);
//! // The winner's mean is never below the base recipe's.
//! assert!(best.mean >= best.base_mean.unwrap());
//! # Ok::<(), nsl::tune::TuneError>(())
//! ```

mod config;
mod error;
mod output;
mod plan;
mod search;
mod space;

pub use config::TuneConfig;
pub use error::TuneError;
pub use output::{write_plot, write_trials};
pub use plan::{Plan, Rung};
pub use search::{
    describe, Best, Calibration, MakeSpec, TrialRecord, TrialStatus, TuneHooks, TuneOutcome, TuneProgress, Tuner,
};
pub use space::{Assignment, Distribution, SearchSpace, Value};
