//! Recall of a built graph against exact search, on a random sample of source nodes.
//!
//! For each sampled node `q` the exact neighbors are found by comparing `q` with every row (the
//! same `f32` products and `f64` re-checks as the exact build). Recall is
//! `Σ_q |built(q) ∩ exact(q)| / Σ_q |exact(q)|`, where `exact(q)` is `q`'s exact neighbor set
//! (threshold mode) or its exact top-k list (top-k mode), and `built(q)` its counterpart in the
//! build: `q`'s edges, or `q`'s own top-k list before the lists are made symmetric.

use super::kernel::{any_at_least, gram, BLOCK};
use super::pairs::Bounds;
use super::prepare::Prepared;
use super::topk::Candidates;
use ndarray::{s, Array2};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use std::ops::Range;

/// The outcome of a recall estimate.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RecallEstimate {
    /// Number of source nodes sampled.
    pub sampled_nodes: usize,
    /// Exact neighbors of the sampled nodes (directed edges from them).
    pub exact_edges: u64,
    /// How many of those the build found.
    pub found_edges: u64,
    /// `found_edges / exact_edges`; `None` when the sampled nodes have no exact neighbor.
    pub recall: Option<f64>,
}

/// What the build produced, to compare with.
pub(crate) enum Built<'a> {
    /// Directed edges `(source, target, weight)` sorted by source then target (compact indices);
    /// every sampled node is a source of this list's shard.
    Edges(&'a [super::RowEdge]),
    /// Each node's own top-k list (compact index → neighbors).
    TopK { lists: &'a [Vec<(u32, f64)>], k: usize, margin2: f32 },
}

/// Queries answered per task (one GEMM of `QUERIES × BLOCK` per block of rows).
const QUERIES: usize = 64;

/// Samples `sample` kept rows of `shard` (compact indices) with ChaCha8 seeded by `seed` and
/// measures the recall of `built` on them.
pub(crate) fn estimate(
    prep: &Prepared<'_>,
    shard: &Range<u32>,
    sample: usize,
    seed: u64,
    bounds: Bounds,
    built: &Built<'_>,
) -> RecallEstimate {
    let len = (shard.end - shard.start) as usize;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // Stream 0 draws the sample; streams 1.. are the LSH rounds' hyperplanes.
    rng.set_stream(0);
    let mut queries: Vec<u32> =
        rand::seq::index::sample(&mut rng, len, sample.min(len)).into_iter().map(|i| shard.start + i as u32).collect();
    queries.sort_unstable();
    let counts: Vec<(u64, u64)> = queries.par_chunks(QUERIES).map(|qs| query_block(prep, qs, bounds, built)).collect();
    let (found, exact) = counts.iter().fold((0, 0), |acc, c| (acc.0 + c.0, acc.1 + c.1));
    RecallEstimate {
        sampled_nodes: queries.len(),
        exact_edges: exact,
        found_edges: found,
        recall: (exact > 0).then(|| found as f64 / exact as f64),
    }
}

/// `(found, exact)` for the queries `qs`.
fn query_block(prep: &Prepared<'_>, qs: &[u32], bounds: Bounds, built: &Built<'_>) -> (u64, u64) {
    let d = prep.dim();
    let mut qm = Array2::<f32>::zeros((qs.len(), d));
    for (mut row, &q) in qm.rows_mut().into_iter().zip(qs) {
        row.assign(&prep.unit.row(q as usize));
    }
    let k = match built {
        Built::TopK { k, .. } => *k,
        Built::Edges(_) => 1,
    };
    let mut lists: Vec<Candidates> = qs.iter().map(|_| Candidates::new(bounds.lo, k)).collect();
    let (mut found, mut exact) = (0u64, 0u64);
    let mut c = vec![0.0f32; qs.len() * BLOCK];
    for start in (0..prep.len()).step_by(BLOCK) {
        let end = (start + BLOCK).min(prep.len());
        let n = end - start;
        gram(qm.view(), prep.unit.slice(s![start..end, ..]), &mut c);
        for (r, &q) in qs.iter().enumerate() {
            let row = &c[r * n..(r + 1) * n];
            let floor = match built {
                Built::TopK { .. } => lists[r].floor(),
                Built::Edges(_) => bounds.lo,
            };
            // Whole chunks below the floor are skipped without branching per value.
            for (k, chunk) in row.chunks(64).enumerate().filter(|(_, ch)| any_at_least(ch, floor)) {
                for (l, &v) in chunk.iter().enumerate() {
                    let y = (start + k * 64 + l) as u32;
                    if v < bounds.lo || y == q {
                        continue;
                    }
                    match built {
                        Built::Edges(edges) => {
                            if v >= bounds.hi || prep.cosine(q, y) >= bounds.threshold {
                                exact += 1;
                                found +=
                                    u64::from(edges.binary_search_by(|e| (e.source, e.target).cmp(&(q, y))).is_ok());
                            }
                        }
                        Built::TopK { k, margin2, .. } => lists[r].push(v, y, *k, *margin2),
                    }
                }
            }
        }
    }
    if let Built::TopK { lists: built_lists, k, .. } = built {
        for (list, &q) in lists.into_iter().zip(qs) {
            let truth = list.finish(*k, bounds.threshold, |y| prep.cosine(q, y));
            let mine = &built_lists[q as usize];
            exact += truth.len() as u64;
            found += truth.iter().filter(|t| mine.iter().any(|m| m.0 == t.0)).count() as u64;
        }
    }
    (found, exact)
}
