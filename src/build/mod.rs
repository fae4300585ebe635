//! Neighbor graphs from embeddings: NSL's `build_graph`, exact or by LSH, multi-threaded.
//!
//! Two samples are linked when the cosine similarity of their embeddings reaches the threshold
//! (inclusive), in both directions, without self-edges, with the similarity as the edge weight
//! ([`EdgeKind::Similarity`]). This is NSL's rule, so a user moving from NSL gets the same graph.
//!
//! ```
//! use ndarray::array;
//! use nsl::build::{BuildConfig, GraphBuilder};
//!
//! let ids: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
//! let emb = array![[1.0f32, 0.0], [4.0, 3.0], [0.0, 1.0]];
//! let builder = GraphBuilder::new(BuildConfig { threshold: 0.8, ..BuildConfig::default() });
//! let (graph, report) = builder.build(&ids, emb.view()).unwrap();
//! // cos(a, b) = 4/5 = 0.8 (kept: the threshold is inclusive), cos(b, c) = 0.6, cos(a, c) = 0.
//! assert_eq!(report.edges, 1);
//! assert_eq!(graph.weight("b", "a"), Some(0.8));
//! ```
//!
//! # How it is computed
//! Every row is divided by its norm in `f64` (as NSL does) and stored as `f32`. Pairs are compared
//! block by block, each block a Gram matrix `A·Bᵀ` of up to 512 × 512 unit rows by a GEMM, then
//! scanned for values at or above the threshold; only the upper triangle of blocks is computed, so
//! each pair once. An `f32` value decides a pair only when it is farther from the threshold than
//! a proven bound on its rounding error; pairs within that margin, and the weight of every edge,
//! use the exact `f64` cosine `x·y / sqrt(‖x‖²‖y‖²)` of the input rows. So the edge set is the
//! one of an exact `f64` computation, whatever the GEMM kernel or thread count.
//!
//! With `lsh_splits > 0` rows are first hashed into buckets by the signs of random hyperplanes
//! (see `lsh`), and only rows sharing a bucket are compared (blocked the same way); the graph is
//! the union over `lsh_rounds` rounds; with `center`, the mean row is subtracted before hashing
//! (the report's `largest_bucket` shows whether the hashing split the data). A row's bucket depends
//! on that row, the seed and the round alone, so a distributed job ([`distributed`],
//! `scripts/spark/`) builds the same graph from any partitioning of the rows. With `top_k`, each node keeps its `K` best neighbors and the
//! result is made symmetric (union of both directions).
//!
//! # Differences from NSL
//! - A zero vector has no cosine: it is skipped (no edges; counted in the report) where NSL
//!   floors its norm at 1e-6 and gives it similarity 0 with everything. Likewise a vector with a
//!   norm below 1e-6 is normalized exactly here, where NSL divides it by 1e-6.
//! - NaN or infinite values, and repeated ids, are errors (NSL keeps the last of repeated ids).
//! - Edge weights of a [`NeighborGraph`] are never negative: with a negative threshold, or top-k
//!   without a threshold, an edge of negative cosine gets weight 0 (counted in the report).
//! - NSL's LSH draws its hyperplanes from numpy's generator, so an LSH graph here has NSL's
//!   statistics (same bucket rule and hyperplane distribution) but not NSL's exact edges.
//!
//! # Memory
//! The input and its normalized copy (`2 · N · d · 4` bytes), then the edges: 12 bytes per
//! undirected link while searching, 24 more while they are sorted into both directions (36 per
//! link at the peak), then 12 per directed edge for the result (mapped to input rows in place).
//! [`GraphBuilder::build`] adds the [`NeighborGraph`] (petgraph's `GraphMap`, roughly 50 bytes
//! per directed edge, plus a copy of every id); [`GraphBuilder::write`] (what `nsl build-graph`
//! runs) does not: it writes the file from the 12-byte edges, the ids borrowed and packed once,
//! through a streaming Parquet writer that holds one row group (2²⁰ rows). Never `N²`. With LSH,
//! `8 · N · (lsh_rounds − 1)` bytes more for the bucket codes of past rounds, and `16 · N` for one
//! round's buckets. Measured: 1M × 64 (20.5 M directed edges) 1.1 GiB peak with `write`, 2.1 GiB
//! with `build`; 10M × 64 (89 M links) 9.9 GiB with `write` (`docs/benchmarks.md`).
//!
//! # Sharding
//! With `shard = Some((i, n))` only the edges whose source row is in the `i`-th of `n` contiguous
//! row ranges are produced, in source order, so the `n` shards' edge lists, concatenated, are the
//! unsharded list (and [`NeighborGraph::merge`] of the shard graphs the unsharded graph). In
//! threshold mode (exact or LSH) a shard compares only pairs that touch its rows, so the work is
//! split too. With `top_k` a shard still computes every node's list (an edge `a → b` exists when
//! `a` is among `b`'s best, which depends on all of `b`'s pairs): sharding then splits the output,
//! not the work.

mod config;
mod kernel;
mod lsh;
mod pairs;
mod prepare;
mod recall;
pub mod synthetic;
mod topk;

pub use config::{BuildConfig, MAX_LSH_SPLITS};
// For the CLI's `--shard` flag, benches and tests; not part of the documented API.
#[doc(hidden)]
pub use config::{parse_shard, shard_range};

/// The pieces of a build for a distributed job (`nsl worker`, `scripts/spark/`): hash rows into
/// buckets and find the pairs of one bucket, or of two blocks, exactly as [`GraphBuilder`] does,
/// so that the union of the pieces is the graph `nsl build-graph` builds.
///
/// - [`lsh_codes`](distributed::lsh_codes): every round's bucket code of each row; a row's code
///   depends on that row, the seed and the round only.
/// - [`block_pairs`](distributed::block_pairs): the pairs at or above the threshold within one
///   set of rows or between two, each decided by the exact `f64` cosine near the threshold, and
///   (LSH) only those that shared no bucket in an earlier round.
/// - [`ColumnSums`](distributed::ColumnSums): exact per-column sums, mergeable in any order, for
///   the mean that [`BuildConfig::center`] subtracts.
pub mod distributed {
    pub use super::lsh::{column_mean, lsh_codes, ColumnSums, LshCodes, SUM_BINS};
    pub use super::pairs::{block_pairs, BlockPairs};
}
#[doc(hidden)]
pub use kernel::gram;
pub use recall::RecallEstimate;

use crate::data::Dataset;
use crate::graph::{Edge, EdgeKind, EdgeTableMeta, GraphError, NeighborGraph};
use ndarray::{Array2, ArrayView2};
use pairs::{Bounds, Buckets, Pair, Sink};
use prepare::Prepared;
use rayon::prelude::*;
use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;
use topk::Candidates;

/// What can go wrong in a graph build. Every variant names the offending values.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// An option out of range.
    #[error("invalid {option} `{value}`: expected {expected}")]
    InvalidConfig {
        /// The option (a [`BuildConfig`] field).
        option: &'static str,
        /// Its value.
        value: String,
        /// What is accepted.
        expected: &'static str,
    },
    /// No embeddings at all.
    #[error("no embeddings to build a graph from (empty input)")]
    Empty,
    /// The samples hold token ids, which are not embeddings.
    #[error(
        "feature group `{group}` holds token ids, not an embedding: embed the tokens first (e.g. the pooled layer of a \
         `bow` model, see examples/text_bow.rs)"
    )]
    TokenIds {
        /// The token group.
        group: String,
    },
    /// Embeddings of dimension 0.
    #[error("the {rows} embeddings have no dimensions")]
    NoDimensions {
        /// Number of rows.
        rows: usize,
    },
    /// More rows than 32-bit row indices can address.
    #[error("{rows} embeddings: at most 4294967295 are supported")]
    TooManyRows {
        /// Number of rows.
        rows: usize,
    },
    /// Ids and embedding rows differ in number.
    #[error("{ids} ids but {rows} embedding rows")]
    IdCount {
        /// Number of ids.
        ids: usize,
        /// Number of rows.
        rows: usize,
    },
    /// The same id on two rows.
    #[error("duplicate id `{id}` in rows {first} and {second}")]
    DuplicateId {
        /// The id.
        id: String,
        /// Its first row.
        first: usize,
        /// The row that repeats it.
        second: usize,
    },
    /// A NaN or infinite embedding value.
    #[error("row {row}{}, column {column}: value {value} is not finite", id.as_ref().map(|i| format!(" (id `{i}`)")).unwrap_or_default())]
    NotFinite {
        /// The row.
        row: usize,
        /// Its id, when known.
        id: Option<String>,
        /// The column of the first bad value.
        column: usize,
        /// The value.
        value: f32,
    },
    /// The worker thread pool could not be created.
    #[error("cannot start {threads} worker threads: {message}")]
    ThreadPool {
        /// Threads asked for.
        threads: usize,
        /// rayon's message.
        message: String,
    },
    /// The edges could not be added to the graph.
    #[error(transparent)]
    Graph(#[from] GraphError),
}

/// Progress of the pair search, reported after every block: `done` of `total` pairs compared in
/// round `round` (0-based) of `rounds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// The current LSH round (0 in exact mode).
    pub round: u32,
    /// Number of rounds.
    pub rounds: u32,
    /// Pairs compared so far in this round.
    pub done: u64,
    /// Pairs to compare in this round.
    pub total: u64,
}

/// A directed edge between input rows, with its weight (the cosine similarity, at least 0).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RowEdge {
    /// Source row.
    pub source: u32,
    /// Target row.
    pub target: u32,
    /// Cosine similarity, rounded to `f32` (negative values are stored as 0).
    pub weight: f32,
}

/// The summary of a build (serializable for `--json`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BuildReport {
    /// `exact` or `lsh`.
    pub mode: &'static str,
    /// Source nodes: all input rows, or the shard's rows.
    pub nodes: usize,
    /// Undirected links found (a link with one end outside the shard counts once).
    pub edges: usize,
    /// Directed edges produced: both directions of each link whose source is in the shard.
    pub directed_edges: usize,
    /// `directed_edges / nodes`.
    pub mean_degree: f64,
    /// Zero vectors in the input, which get no edges.
    pub skipped_zero_vectors: usize,
    /// Edges whose (negative) cosine was stored as weight 0.
    pub negative_weights_clamped: usize,
    /// Rounds run (1 in exact mode).
    pub rounds: u32,
    /// Pairs compared with `f32` products, over all rounds (with repeats across rounds).
    pub compared_pairs: u64,
    /// Rows of the largest bucket of any round (all kept rows in exact mode): with LSH, a bucket
    /// near `N` means the hashing did not split the data (try [`BuildConfig::center`]).
    pub largest_bucket: usize,
    /// Pairs whose `f32` value was within the error margin of the threshold and were decided in `f64`.
    pub rechecked_pairs: u64,
    /// Worker threads used.
    pub threads: usize,
    /// Wall-clock seconds of the build.
    pub seconds: f64,
    /// Where the seconds went.
    pub phases: PhaseSeconds,
    /// `recall.recall`, when a recall sample was asked for.
    pub estimated_recall: Option<f64>,
    /// The recall estimate, when a recall sample was asked for.
    pub recall: Option<RecallEstimate>,
}

/// Wall-clock seconds of each phase of a build.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct PhaseSeconds {
    /// Checking and normalizing the embeddings.
    pub prepare: f64,
    /// Hashing (LSH) and the pair search, all rounds.
    pub search: f64,
    /// Top-k selection by exact similarity (threshold mode computes its weights during the search).
    pub weights: f64,
    /// The recall estimate.
    pub recall: f64,
    /// Sorting the edges by source (and, in [`GraphBuilder::build`], making the [`NeighborGraph`];
    /// in [`GraphBuilder::write`], the file's metadata; the write itself is not in the report).
    pub assemble: f64,
}

/// Builds neighbor graphs from embeddings (see the [module documentation](self)).
pub struct GraphBuilder {
    config: BuildConfig,
    progress: Option<Box<dyn Fn(Progress) + Send + Sync>>,
}

impl std::fmt::Debug for GraphBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphBuilder").field("config", &self.config).finish_non_exhaustive()
    }
}

impl GraphBuilder {
    /// A builder with the given options (checked when building).
    pub fn new(config: BuildConfig) -> Self {
        GraphBuilder { config, progress: None }
    }

    /// Calls `f` after every block of the pair search (from worker threads).
    pub fn on_progress(mut self, f: impl Fn(Progress) + Send + Sync + 'static) -> Self {
        self.progress = Some(Box::new(f));
        self
    }

    /// The options.
    pub fn config(&self) -> &BuildConfig {
        &self.config
    }

    /// Builds the graph of `embeddings` (`N × d`, one row per sample) whose rows are named by `ids`.
    ///
    /// The graph holds the source rows (all rows, or the shard's) as nodes in row order, including
    /// rows without edges, then the edges sorted by source and target row.
    ///
    /// # Errors
    /// [`BuildError::IdCount`], [`BuildError::DuplicateId`], and those of [`GraphBuilder::build_edges`].
    pub fn build(
        &self,
        ids: &[String],
        embeddings: ArrayView2<'_, f32>,
    ) -> Result<(NeighborGraph, BuildReport), BuildError> {
        let start = Instant::now();
        check_ids(ids, embeddings.nrows())?;
        let (edges, mut report) = self.edges_named(embeddings, Some(ids))?;
        let assemble = Instant::now();
        let graph = self.graph_of(ids, &edges);
        report.phases.assemble += assemble.elapsed().as_secs_f64();
        report.seconds = start.elapsed().as_secs_f64();
        Ok((graph, report))
    }

    /// Builds the graph of `embeddings` named by `ids` and writes it to `path` (Parquet or TSV by
    /// the extension, as [`crate::graph::write_graph`]), atomically, without making a
    /// [`NeighborGraph`]: the file is the one `write_graph` writes for the graph of
    /// [`GraphBuilder::build`], byte for byte (same edges, weights, order and metadata), at a
    /// fraction of the time and memory (the edges stay 12-byte row triples; each id is borrowed
    /// from `ids`, never copied per edge). The report's `seconds` cover the build, not the write.
    ///
    /// # Errors
    /// Those of [`GraphBuilder::build`], and [`BuildError::Graph`] when the file cannot be
    /// written (naming it; nothing is left at `path` then).
    pub fn write(
        &self,
        ids: &[String],
        embeddings: ArrayView2<'_, f32>,
        path: &Path,
    ) -> Result<BuildReport, BuildError> {
        let start = Instant::now();
        check_ids(ids, embeddings.nrows())?;
        let (edges, mut report) = self.edges_named(embeddings, Some(ids))?;
        let assemble = Instant::now();
        let meta = self.meta_of(ids.len(), &edges);
        report.phases.assemble += assemble.elapsed().as_secs_f64();
        report.seconds = start.elapsed().as_secs_f64();
        // The ids packed into one buffer: an edge's target is a random row, and one cache miss
        // into a compact table is cheaper than two (the `String`, then its bytes) per edge.
        let mut packed = String::with_capacity(ids.iter().map(String::len).sum());
        let mut ends = Vec::with_capacity(ids.len() + 1);
        ends.push(0);
        for id in ids {
            packed.push_str(id);
            ends.push(packed.len());
        }
        let name = |row: u32| &packed[ends[row as usize]..ends[row as usize + 1]];
        let similarity = |weight| Edge { weight, kind: EdgeKind::Similarity };
        let named = |i: usize| {
            let e = &edges[i];
            (name(e.source), name(e.target), similarity(e.weight))
        };
        // The write builds and encodes row groups in parallel: on the configured threads too.
        self.in_pool(|| crate::graph::write_edges(path, &meta, edges.len(), named))??;
        Ok(report)
    }

    /// [`GraphBuilder::build`] on a [`Dataset`] (its ids and features).
    ///
    /// # Errors
    /// As [`GraphBuilder::build`], and [`BuildError::TokenIds`] for a dataset with a token group.
    pub fn build_dataset(&self, dataset: &Dataset) -> Result<(NeighborGraph, BuildReport), BuildError> {
        if let Some(group) = dataset.layout().first_token_group() {
            return Err(BuildError::TokenIds { group: group.to_owned() });
        }
        self.build(dataset.ids(), dataset.features())
    }

    /// [`GraphBuilder::write`] on a [`Dataset`] (its ids and features).
    ///
    /// # Errors
    /// As [`GraphBuilder::write`], and [`BuildError::TokenIds`] for a dataset with a token group.
    pub fn write_dataset(&self, dataset: &Dataset, path: &Path) -> Result<BuildReport, BuildError> {
        if let Some(group) = dataset.layout().first_token_group() {
            return Err(BuildError::TokenIds { group: group.to_owned() });
        }
        self.write(dataset.ids(), dataset.features(), path)
    }

    /// The edges of the graph of `embeddings`, between row indices, sorted by source then target:
    /// [`GraphBuilder::build`] without ids and without the [`NeighborGraph`].
    ///
    /// # Errors
    /// [`BuildError::InvalidConfig`] for a bad option, [`BuildError::Empty`],
    /// [`BuildError::NoDimensions`], [`BuildError::NotFinite`] (naming row and column), and
    /// [`BuildError::ThreadPool`].
    pub fn build_edges(&self, embeddings: ArrayView2<'_, f32>) -> Result<(Vec<RowEdge>, BuildReport), BuildError> {
        self.edges_named(embeddings, None)
    }

    fn edges_named(
        &self,
        embeddings: ArrayView2<'_, f32>,
        ids: Option<&[String]>,
    ) -> Result<(Vec<RowEdge>, BuildReport), BuildError> {
        self.config.validate()?;
        let (n, d) = embeddings.dim();
        // The kernels want row-major rows; copy only if the caller's view is not.
        let owned: Array2<f32>;
        let data: &[f32] = match embeddings.as_slice() {
            Some(s) => s,
            None => {
                owned = Array2::from_shape_vec((n, d), embeddings.iter().copied().collect())
                    .map_err(|_| BuildError::NoDimensions { rows: n })?;
                owned.as_slice().unwrap_or(&[])
            }
        };
        self.in_pool(|| self.run(data, n, d, ids))?
    }

    /// Runs `f` in the configured thread pool (`threads`), or in rayon's global pool.
    fn in_pool<R: Send>(&self, f: impl FnOnce() -> R + Send) -> Result<R, BuildError> {
        match self.config.threads {
            Some(threads) => {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .map_err(|e| BuildError::ThreadPool { threads, message: e.to_string() })?;
                Ok(pool.install(f))
            }
            None => Ok(f()),
        }
    }

    /// The whole computation, inside the chosen thread pool.
    fn run(
        &self,
        data: &[f32],
        n: usize,
        d: usize,
        ids: Option<&[String]>,
    ) -> Result<(Vec<RowEdge>, BuildReport), BuildError> {
        let start = Instant::now();
        let mut phases = PhaseSeconds::default();
        let mut lap = Instant::now();
        let mut split = |slot: &mut f64| {
            *slot += lap.elapsed().as_secs_f64();
            lap = Instant::now();
        };
        let c = &self.config;
        let prep = Prepared::new(data, n, d, ids)?;
        let center = (c.center && c.lsh_splits > 0).then(|| {
            let mut sums = lsh::ColumnSums::new(d);
            data.chunks_exact(d).for_each(|row| sums.add_row(row));
            sums.mean()
        });
        let hashed = lsh::Hashed::new(&prep, center.as_deref());
        split(&mut phases.prepare);
        let rows = c.shard_rows(n);
        // The shard's kept rows, as a range of compact indices (compact order follows row order).
        let shard = compact_range(&prep, &rows);
        let margin = kernel::margin(d);
        let bounds = Bounds {
            threshold: c.threshold,
            lo: kernel::f32_at_most(c.threshold - margin),
            hi: kernel::f32_at_least(c.threshold + margin),
        };
        let margin2 = kernel::f32_at_least(2.0 * margin);
        let no_progress = |_: Progress| {};
        let progress: &(dyn Fn(Progress) + Sync) = match &self.progress {
            Some(f) => f.as_ref(),
            None => &no_progress,
        };
        let rounds = c.rounds();
        let lists: Vec<Mutex<Candidates>> = match c.top_k {
            Some(k) => (0..prep.len()).map(|_| Mutex::new(Candidates::new(bounds.lo, k))).collect(),
            None => Vec::new(),
        };
        // Top-k lists need every pair of a node, so the search ignores the shard then.
        let all = 0..prep.len() as u32;
        let search_shard = if c.top_k.is_some() { &all } else { &shard };
        // Bucket codes of the rounds so far: a pair that shared a bucket before was found then.
        let history_rounds = if c.top_k.is_none() { rounds as usize - 1 } else { 0 };
        let mut earlier = pairs::History::new(prep.len(), history_rounds);
        let mut found: Vec<Pair> = Vec::new();
        let mut stats = pairs::ScanStats::default();
        let mut largest_bucket = 0usize;
        for round in 0..rounds {
            let (buckets, codes) = if c.lsh_splits == 0 {
                (
                    Buckets {
                        members: (0..prep.len() as u32).collect(),
                        bounds: std::iter::once(0..prep.len()).collect(),
                    },
                    Vec::new(),
                )
            } else {
                lsh::buckets(&prep, &hashed, c.seed, round, c.lsh_splits)
            };
            largest_bucket = largest_bucket.max(buckets.bounds.iter().map(|b| b.len()).max().unwrap_or(0));
            let sink = match c.top_k {
                Some(k) => Sink::TopK { lists: &lists, k, margin2 },
                None => Sink::Pairs { earlier: &earlier },
            };
            let (new, s) = pairs::scan(&prep, &buckets, search_shard, false, bounds, &sink, progress, (round, rounds));
            drop(buckets);
            stats.add(&s);
            // Grown by exactly what the round found: doubling would hold up to twice the list.
            found.reserve_exact(new.len());
            found.extend_from_slice(&new);
            drop(new);
            earlier.push(&codes);
        }
        drop(earlier);
        drop(hashed);
        split(&mut phases.search);
        // Top-k: each node's own list (kept for the recall), and their union as pairs.
        let own_lists: Vec<Vec<(u32, f64)>> = match c.top_k {
            None => Vec::new(),
            Some(k) => lists
                .into_par_iter()
                .enumerate()
                .map(|(a, l)| {
                    let l = l.into_inner().unwrap_or_else(|e| e.into_inner());
                    l.finish(k, c.threshold, |b| prep.cosine(a as u32, b))
                })
                .collect(),
        };
        if c.top_k.is_some() {
            let mut union: Vec<(u32, u32, f64)> = own_lists
                .iter()
                .enumerate()
                .flat_map(|(a, l)| l.iter().map(move |&(b, s)| ((a as u32).min(b), (a as u32).max(b), s)))
                .filter(|&(a, b, _)| shard.contains(&a) || shard.contains(&b))
                .collect();
            union.par_sort_unstable_by(|x, y| (x.0, x.1).cmp(&(y.0, y.1)));
            union.dedup_by_key(|x| (x.0, x.1));
            stats.negative = union.iter().filter(|p| p.2 < 0.0).count() as u64;
            found = union.into_iter().map(|(a, b, s)| (a, b, s.max(0.0) as f32)).collect();
        }
        split(&mut phases.weights);
        let links = found.len();
        let mut directed = directed_edges(&found, &shard);
        drop(found);
        split(&mut phases.assemble);
        let recall = c.recall_sample.map(|sample| {
            let built = match c.top_k {
                Some(k) => recall::Built::TopK { lists: &own_lists, k, margin2 },
                None => recall::Built::Edges(&directed),
            };
            recall::estimate(&prep, &shard, sample, c.seed, bounds, &built)
        });
        drop(own_lists);
        split(&mut phases.recall);
        // Compact indices to input rows, in place (a second list would double the peak).
        if prep.zero_rows > 0 {
            directed.par_iter_mut().for_each(|e| {
                e.source = prep.rows[e.source as usize];
                e.target = prep.rows[e.target as usize];
            });
        }
        split(&mut phases.assemble);
        let nodes = rows.len();
        let report = BuildReport {
            mode: if c.lsh_splits == 0 { "exact" } else { "lsh" },
            nodes,
            edges: links,
            directed_edges: directed.len(),
            mean_degree: if nodes == 0 { 0.0 } else { directed.len() as f64 / nodes as f64 },
            skipped_zero_vectors: prep.zero_rows,
            negative_weights_clamped: stats.negative as usize,
            rounds,
            compared_pairs: stats.compared,
            largest_bucket,
            rechecked_pairs: stats.rechecked,
            threads: rayon::current_num_threads(),
            seconds: start.elapsed().as_secs_f64(),
            phases,
            estimated_recall: recall.as_ref().and_then(|r| r.recall),
            recall,
        };
        Ok((directed, report))
    }

    /// The graph of `edges`: the shard's rows as nodes in row order, then the edges in order.
    fn graph_of(&self, ids: &[String], edges: &[RowEdge]) -> NeighborGraph {
        let rows = self.config.shard_rows(ids.len());
        let mut graph = NeighborGraph::with_capacity(rows.len(), edges.len());
        let mut node = vec![None; ids.len()];
        for r in rows {
            node[r] = Some(graph.add_node(&ids[r]));
        }
        for e in edges {
            let mut id_of = |r: u32| *node[r as usize].get_or_insert_with(|| graph.add_node(&ids[r as usize]));
            let (s, t) = (id_of(e.source), id_of(e.target));
            graph.add_edge_ids(s, t, Edge { weight: e.weight, kind: EdgeKind::Similarity });
        }
        graph.set_provenance(self.provenance());
        graph
    }

    /// The file metadata of the graph [`GraphBuilder::graph_of`] makes of `edges` (from `n` rows),
    /// computed from the edge list: the graph holds the shard's rows and the targets of its edges;
    /// it is symmetric iff every target lies in the shard (the builder emits both directions of
    /// every link between two rows of the shard, with one weight).
    fn meta_of(&self, n: usize, edges: &[RowEdge]) -> EdgeTableMeta {
        let rows = self.config.shard_rows(n);
        let mut outside: Vec<u32> = edges.iter().map(|e| e.target).filter(|&t| !rows.contains(&(t as usize))).collect();
        outside.par_sort_unstable();
        outside.dedup();
        EdgeTableMeta {
            directed: !outside.is_empty(),
            provenance: self.provenance(),
            nodes: rows.len() + outside.len(),
        }
    }

    /// A one-line description of the options, kept in the graph's provenance.
    fn provenance(&self) -> String {
        let c = &self.config;
        let mut p = format!("nsl build-graph: cosine >= {}", c.threshold);
        if c.lsh_splits > 0 {
            p += &format!(", lsh {} splits x {} rounds, seed {}", c.lsh_splits, c.lsh_rounds, c.seed);
            if c.center {
                p += ", centered";
            }
        }
        if let Some(k) = c.top_k {
            p += &format!(", top-{k} (symmetric)");
        }
        if let Some((i, n)) = c.shard {
            p += &format!(", shard {i}/{n}");
        }
        p
    }
}

/// Checks that there is one id per row and no id twice.
fn check_ids(ids: &[String], rows: usize) -> Result<(), BuildError> {
    if ids.len() != rows {
        return Err(BuildError::IdCount { ids: ids.len(), rows });
    }
    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(ids.len());
    for (row, id) in ids.iter().enumerate() {
        if let Some(first) = seen.insert(id, row) {
            return Err(BuildError::DuplicateId { id: id.clone(), first, second: row });
        }
    }
    Ok(())
}

/// The compact indices of the kept rows within input rows `rows`.
fn compact_range(prep: &Prepared<'_>, rows: &Range<usize>) -> Range<u32> {
    let lo = prep.rows.partition_point(|&r| (r as usize) < rows.start);
    let hi = prep.rows.partition_point(|&r| (r as usize) < rows.end);
    lo as u32..hi as u32
}

/// Both directions of every pair whose source is in `shard`, sorted by source then target
/// (compact indices): a counting sort by source, then each source's targets sorted in parallel.
fn directed_edges(pairs: &[Pair], shard: &Range<u32>) -> Vec<RowEdge> {
    let base = shard.start;
    let width = (shard.end - shard.start) as usize;
    let mut starts = vec![0usize; width + 1];
    for &(a, b, _) in pairs {
        for x in [a, b] {
            if shard.contains(&x) {
                starts[(x - base) as usize + 1] += 1;
            }
        }
    }
    for i in 0..width {
        starts[i + 1] += starts[i];
    }
    let mut out = vec![RowEdge { source: 0, target: 0, weight: 0.0 }; starts[width]];
    let mut next = starts.clone();
    for &(a, b, w) in pairs {
        for (s, t) in [(a, b), (b, a)] {
            if shard.contains(&s) {
                let slot = &mut next[(s - base) as usize];
                out[*slot] = RowEdge { source: s, target: t, weight: w };
                *slot += 1;
            }
        }
    }
    let mut segments = Vec::with_capacity(width);
    let mut rest: &mut [RowEdge] = &mut out;
    for i in 0..width {
        let (segment, tail) = rest.split_at_mut(starts[i + 1] - starts[i]);
        segments.push(segment);
        rest = tail;
    }
    segments.into_par_iter().for_each(|seg| seg.sort_unstable_by_key(|e| e.target));
    out
}
