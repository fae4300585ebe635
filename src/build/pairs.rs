//! The pair search: every pair of rows within a bucket (all rows in exact mode, one LSH bucket
//! otherwise), block by block, each block one GEMM followed by a threshold scan.
//!
//! A bucket's rows (compact indices, increasing) are cut into blocks of at most
//! [`BLOCK`](super::kernel::BLOCK) rows, also cut at the shard's bounds; only the upper triangle of
//! block pairs `(I, J)`, `I ≤ J`, is computed, so every pair is compared once, and a block pair is
//! skipped when neither side holds a row of the shard. The block pairs run in parallel (rayon) and
//! their results are collected in block order, so the outcome does not depend on the thread count.

use super::kernel::{any_at_least, f32_at_least, f32_at_most, gram, margin, transpose, BLOCK};
use super::prepare::{cosine, Prepared};
use super::topk::Candidates;
use super::{BuildError, Progress, RowEdge};
use ndarray::{s, ArrayView2};
use rayon::prelude::*;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Where the results of a scan go.
pub(crate) enum Sink<'a> {
    /// Collect the pairs `(a, b, weight)`, `a < b`, whose exact cosine reaches the threshold,
    /// except those that shared a bucket in an earlier LSH round (found then already).
    Pairs {
        /// The bucket codes of the earlier rounds.
        earlier: &'a History,
    },
    /// Feed each node's top-k candidate list (indexed by compact index).
    TopK {
        /// One list per kept row.
        lists: &'a [Mutex<Candidates>],
        /// Neighbors per node.
        k: usize,
        /// Twice the `f32` error bound (see [`Candidates`]).
        margin2: f32,
    },
}

/// The thresholds of a scan: `f32` values `< lo` are certainly below the threshold, values
/// `≥ hi` certainly at or above it; values in between are decided by the exact cosine.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    /// The threshold.
    pub threshold: f64,
    /// `threshold − margin`, rounded down to `f32`.
    pub lo: f32,
    /// `threshold + margin`, rounded up to `f32`.
    pub hi: f32,
}

/// A round's buckets: `members[bounds[i].clone()]` are the rows of bucket `i`, increasing.
pub(crate) struct Buckets {
    /// Rows (compact indices) of all buckets, bucket after bucket.
    pub members: Vec<u32>,
    /// Each bucket's range in `members`.
    pub bounds: Vec<Range<usize>>,
}

/// What a scan found besides its pairs.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ScanStats {
    /// Pairs whose `f32` value was computed.
    pub compared: u64,
    /// Pairs decided by the exact `f64` cosine because their `f32` value was within the margin.
    pub rechecked: u64,
    /// Pairs kept whose cosine is negative (their weight is stored as 0).
    pub negative: u64,
}

impl ScanStats {
    pub fn add(&mut self, other: &ScanStats) {
        self.compared += other.compared;
        self.rechecked += other.rechecked;
        self.negative += other.negative;
    }
}

/// A pair of compact indices `a < b` and its weight: the exact cosine rounded to `f32`, or 0 if negative.
pub(crate) type Pair = (u32, u32, f32);

/// The bucket codes of the LSH rounds run so far, node-major (`codes[node · stride + round]`) so
/// that one node's codes are adjacent in memory.
pub(crate) struct History {
    codes: Vec<u64>,
    stride: usize,
    filled: usize,
}

impl History {
    /// Room for `rounds` rounds of `n` nodes (no memory when `rounds` is 0).
    pub fn new(n: usize, rounds: usize) -> Self {
        History { codes: vec![0; n * rounds], stride: rounds, filled: 0 }
    }

    /// Records the next round's codes (ignored once full).
    pub fn push(&mut self, codes: &[u64]) {
        if self.filled < self.stride {
            for (node, &c) in codes.iter().enumerate() {
                self.codes[node * self.stride + self.filled] = c;
            }
            self.filled += 1;
        }
    }

    fn of(&self, node: u32) -> &[u64] {
        let at = node as usize * self.stride;
        &self.codes[at..at + self.filled]
    }
}

/// A block: positions `range` of `members`, and whether its rows belong to the shard.
#[derive(Debug, Clone)]
struct Block {
    range: Range<usize>,
    in_shard: bool,
}

/// One block pair of the upper triangle.
#[derive(Debug, Clone)]
struct Task {
    i: Range<usize>,
    j: Range<usize>,
    diagonal: bool,
}

impl Task {
    fn size(&self) -> u64 {
        if self.diagonal {
            let m = self.i.len() as u64;
            m * m.saturating_sub(1) / 2
        } else {
            (self.i.len() * self.j.len()) as u64
        }
    }
}

/// The block pairs of all buckets that touch `shard` (a range of compact indices); with `cross`,
/// only those with one side in the shard and the other outside it.
fn plan(buckets: &Buckets, shard: &Range<u32>, cross: bool) -> Vec<Task> {
    let mut tasks = Vec::new();
    for bound in &buckets.bounds {
        let rows = &buckets.members[bound.clone()];
        if rows.len() < 2 {
            continue;
        }
        let p = rows.partition_point(|&r| r < shard.start);
        let q = rows.partition_point(|&r| r < shard.end);
        let mut blocks = Vec::new();
        for (seg, in_shard) in [(0..p, false), (p..q, true), (q..rows.len(), false)] {
            for start in seg.clone().step_by(BLOCK) {
                let end = (start + BLOCK).min(seg.end);
                blocks.push(Block { range: bound.start + start..bound.start + end, in_shard });
            }
        }
        for (x, bi) in blocks.iter().enumerate() {
            for bj in &blocks[x..] {
                let wanted = if cross { bi.in_shard != bj.in_shard } else { bi.in_shard || bj.in_shard };
                if wanted {
                    let diagonal = bi.range == bj.range;
                    tasks.push(Task { i: bi.range.clone(), j: bj.range.clone(), diagonal });
                }
            }
        }
    }
    tasks
}

/// Per-thread buffers.
#[derive(Default)]
struct Scratch {
    a: Vec<f32>,
    b: Vec<f32>,
    c: Vec<f32>,
    t: Vec<f32>,
    /// Candidate positions `(row, column)` of a block.
    cands: Vec<(u32, u32)>,
    /// Earlier-round codes of the block's rows and columns.
    codes_i: Vec<u64>,
    codes_j: Vec<u64>,
    /// Input rows and squared norms of the block's rows and columns.
    input_i: Vec<f32>,
    input_j: Vec<f32>,
    sq_i: Vec<f64>,
    sq_j: Vec<f64>,
}

/// Copies the earlier-round codes of `rows` into `out` (`rows.len() × filled`). The loads are
/// independent, so the memory system overlaps them, unlike lookups from inside the pair loop.
fn gather_codes(history: &History, rows: &[u32], out: &mut Vec<u64>) {
    out.clear();
    for &r in rows {
        out.extend_from_slice(history.of(r));
    }
}

/// Copies the input rows and squared norms of `rows` into `rows_out` and `sq_out`.
fn gather_input(prep: &Prepared<'_>, rows: &[u32], rows_out: &mut Vec<f32>, sq_out: &mut Vec<f64>) {
    rows_out.clear();
    sq_out.clear();
    for &r in rows {
        rows_out.extend_from_slice(prep.row_slice(r as usize));
        sq_out.push(prep.sq_norms[r as usize]);
    }
}

/// The unit rows `rows` as an `len × d` matrix: a view of `unit` when they are consecutive,
/// otherwise gathered into `buf`.
fn rows_view<'x>(prep: &'x Prepared<'_>, rows: &[u32], buf: &'x mut Vec<f32>) -> ArrayView2<'x, f32> {
    let d = prep.dim();
    let first = rows[0] as usize;
    // `rows` is strictly increasing, so it is consecutive iff its span equals its length.
    if rows[rows.len() - 1] as usize - first + 1 == rows.len() {
        return prep.unit.slice(s![first..first + rows.len(), ..]);
    }
    buf.clear();
    for &r in rows {
        buf.extend_from_slice(prep.unit.row(r as usize).as_slice().unwrap_or(&[]));
    }
    // `buf` holds exactly len·d values (the unit matrix is standard layout, so each row slice exists).
    ArrayView2::from_shape((rows.len(), d), &buf[..]).unwrap_or_else(|_| prep.unit.slice(s![0..0, ..]))
}

/// Runs every block pair of `buckets` that touches `shard` and returns the pairs found (for
/// [`Sink::Pairs`], in block order, each pair once with `a < b`, with its exact weight computed
/// while both rows are in cache) and the counts. With `cross`, only pairs with one row in `shard`
/// and the other outside it.
#[allow(clippy::too_many_arguments)]
pub(crate) fn scan(
    prep: &Prepared<'_>,
    buckets: &Buckets,
    shard: &Range<u32>,
    cross: bool,
    bounds: Bounds,
    sink: &Sink<'_>,
    progress: &(dyn Fn(Progress) + Sync),
    round: (u32, u32),
) -> (Vec<Pair>, ScanStats) {
    let tasks = plan(buckets, shard, cross);
    let total: u64 = tasks.iter().map(Task::size).sum();
    let done = AtomicU64::new(0);
    progress(Progress { round: round.0, rounds: round.1, done: 0, total });
    let results: Vec<(Vec<Pair>, ScanStats)> = tasks
        .par_iter()
        .map_init(Scratch::default, |scratch, task| {
            let out = run_task(prep, &buckets.members, task, bounds, sink, scratch);
            let now = done.fetch_add(task.size(), Ordering::Relaxed) + task.size();
            progress(Progress { round: round.0, rounds: round.1, done: now, total });
            out
        })
        .collect();
    let mut stats = ScanStats::default();
    let mut pairs = Vec::with_capacity(results.iter().map(|r| r.0.len()).sum());
    // Each task's list is freed as soon as it is copied.
    for (p, s) in results {
        pairs.extend_from_slice(&p);
        stats.add(&s);
    }
    (pairs, stats)
}

fn run_task(
    prep: &Prepared<'_>,
    members: &[u32],
    task: &Task,
    bounds: Bounds,
    sink: &Sink<'_>,
    scratch: &mut Scratch,
) -> (Vec<Pair>, ScanStats) {
    let (ri, rj) = (&members[task.i.clone()], &members[task.j.clone()]);
    let (m, n) = (ri.len(), rj.len());
    let Scratch { a, b, c, t, cands, codes_i, codes_j, input_i, input_j, sq_i, sq_j } = scratch;
    let va = rows_view(prep, ri, a);
    c.resize(m * n, 0.0);
    if task.diagonal {
        gram(va, va, c);
    } else {
        let vb = rows_view(prep, rj, b);
        gram(va, vb, c);
    }
    let mut stats = ScanStats { compared: task.size(), ..ScanStats::default() };
    let mut pairs = Vec::new();
    match sink {
        Sink::Pairs { earlier } => {
            // 1. The positions whose f32 value may reach the threshold.
            cands.clear();
            for r in 0..m {
                let row = &c[r * n..(r + 1) * n];
                let c0 = if task.diagonal { r + 1 } else { 0 };
                for (k, chunk) in row[c0..].chunks(64).enumerate() {
                    if any_at_least(chunk, bounds.lo) {
                        for (l, &v) in chunk.iter().enumerate() {
                            if v >= bounds.lo {
                                cands.push((r as u32, (c0 + k * 64 + l) as u32));
                            }
                        }
                    }
                }
            }
            if cands.is_empty() {
                return (pairs, stats);
            }
            // 2. Drop the pairs that shared a bucket in an earlier round (found then).
            if earlier.filled > 0 {
                let f = earlier.filled;
                gather_codes(earlier, ri, codes_i);
                let cj: &[u64] = if task.diagonal {
                    codes_i
                } else {
                    gather_codes(earlier, rj, codes_j);
                    codes_j
                };
                cands.retain(|&(r, col)| {
                    let (x, y) = (&codes_i[r as usize * f..][..f], &cj[col as usize * f..][..f]);
                    !x.iter().zip(y).any(|(p, q)| p == q)
                });
            }
            if cands.is_empty() {
                return (pairs, stats);
            }
            // 3. The exact cosine decides the pairs within the margin and is every edge's weight.
            // With few candidates, read their rows where they are: gathering both blocks' input
            // rows would copy far more than the candidates touch (it was an eighth of an LSH build).
            if cands.len() < m + n {
                for &(r, col) in cands.iter() {
                    let (r, col) = (r as usize, col as usize);
                    stats.rechecked += u64::from(c[r * n + col] < bounds.hi);
                    let (a, b) = (ri[r], rj[col]);
                    let cos = prep.cosine(a, b);
                    if cos >= bounds.threshold {
                        stats.negative += u64::from(cos < 0.0);
                        pairs.push((a, b, cos.max(0.0) as f32));
                    }
                }
                return (pairs, stats);
            }
            let d = prep.dim();
            gather_input(prep, ri, input_i, sq_i);
            let (xj, sj): (&[f32], &[f64]) = if task.diagonal {
                (input_i, sq_i)
            } else {
                gather_input(prep, rj, input_j, sq_j);
                (input_j, sq_j)
            };
            for &(r, col) in cands.iter() {
                let (r, col) = (r as usize, col as usize);
                stats.rechecked += u64::from(c[r * n + col] < bounds.hi);
                let cos = cosine(&input_i[r * d..(r + 1) * d], sq_i[r], &xj[col * d..(col + 1) * d], sj[col]);
                if cos >= bounds.threshold {
                    stats.negative += u64::from(cos < 0.0);
                    // Rows increase within a bucket and blocks are in order, so ri[r] < rj[col].
                    pairs.push((ri[r], rj[col], cos.max(0.0) as f32));
                }
            }
        }
        Sink::TopK { lists, k, margin2 } => {
            push_rows(c, ri, rj, task.diagonal, lists, *k, *margin2);
            if !task.diagonal {
                // The same values seen from the other side: J's rows get I's rows as candidates.
                t.resize(m * n, 0.0);
                transpose(c, m, n, t);
                push_rows(t, rj, ri, false, lists, *k, *margin2);
            }
        }
    }
    (pairs, stats)
}

/// Offers row `r` of the `rows.len() × cols.len()` block `c` to the list of `rows[r]`.
fn push_rows(c: &[f32], rows: &[u32], cols: &[u32], diagonal: bool, lists: &[Mutex<Candidates>], k: usize, m2: f32) {
    let n = cols.len();
    for (r, &x) in rows.iter().enumerate() {
        let row = &c[r * n..(r + 1) * n];
        // A poisoned lock means another worker panicked; its list is still consistent.
        let mut list = lists[x as usize].lock().unwrap_or_else(|e| e.into_inner());
        for (chunk_no, chunk) in row.chunks(64).enumerate() {
            if !any_at_least(chunk, list.floor()) {
                continue;
            }
            for (l, &v) in chunk.iter().enumerate() {
                let col = chunk_no * 64 + l;
                if !(diagonal && col == r) {
                    list.push(v, cols[col], k, m2);
                }
            }
        }
    }
}

/// What [`block_pairs`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockPairs {
    /// One edge per link, `source < target`, rows of the input, in no particular order.
    pub pairs: Vec<RowEdge>,
    /// Pairs compared with `f32` products.
    pub compared: u64,
    /// Pairs decided by the exact `f64` cosine.
    pub rechecked: u64,
}

/// The links at or above `threshold` among the rows of `embeddings` (`n × d`): all pairs, or
/// with `split = Some(l)` only the pairs of a row `< l` with a row `≥ l` (two blocks), decided as
/// [`GraphBuilder`](super::GraphBuilder) decides them (an `f32` Gram block, the exact `f64`
/// cosine near the threshold and for every weight). `earlier` holds, for LSH round `r`, each
/// row's codes of rounds `0..r` (`n × r` values, row-major; empty for round 0 or exact mode): a
/// pair whose rows share a code there was found in that earlier round and is left out. Zero
/// vectors get no links.
///
/// # Errors
/// [`BuildError::InvalidConfig`] for a threshold outside `[-1, 1]`, a `split` above `n` or
/// `earlier` not a multiple of `n` long; [`BuildError::NoDimensions`], [`BuildError::NotFinite`].
pub fn block_pairs(
    embeddings: ArrayView2<'_, f32>,
    split: Option<usize>,
    earlier: &[u64],
    threshold: f64,
) -> Result<BlockPairs, BuildError> {
    let (n, d) = embeddings.dim();
    let bad = |option: &'static str, value: String, expected: &'static str| {
        Err(BuildError::InvalidConfig { option, value, expected })
    };
    if !(-1.0..=1.0).contains(&threshold) {
        return bad("threshold", threshold.to_string(), "a cosine similarity in [-1, 1]");
    }
    if split.is_some_and(|l| l > n) {
        return bad("split", format!("{split:?}"), "at most the number of rows");
    }
    if n == 0 {
        return Ok(BlockPairs { pairs: Vec::new(), compared: 0, rechecked: 0 });
    }
    if !earlier.len().is_multiple_of(n) {
        return bad("earlier", format!("{} codes for {n} rows", earlier.len()), "rows × earlier rounds codes");
    }
    let owned = embeddings.as_standard_layout();
    let prep = Prepared::new(owned.as_slice().unwrap_or(&[]), n, d, None)?;
    let rounds_before = earlier.len() / n;
    let mut history = History::new(prep.len(), rounds_before);
    for r in 0..rounds_before {
        let codes: Vec<u64> = prep.rows.iter().map(|&row| earlier[row as usize * rounds_before + r]).collect();
        history.push(&codes);
    }
    let margin = margin(d);
    let bounds = Bounds { threshold, lo: f32_at_most(threshold - margin), hi: f32_at_least(threshold + margin) };
    let len = prep.len() as u32;
    let buckets = Buckets { members: (0..len).collect(), bounds: std::iter::once(0..len as usize).collect() };
    let (shard, cross) = match split {
        Some(l) => (prep.rows.partition_point(|&r| (r as usize) < l) as u32..len, true),
        None => (0..len, false),
    };
    let sink = Sink::Pairs { earlier: &history };
    let (found, stats) = scan(&prep, &buckets, &shard, cross, bounds, &sink, &|_| {}, (0, 1));
    let pairs = found
        .into_iter()
        .map(|(a, b, weight)| RowEdge { source: prep.rows[a as usize], target: prep.rows[b as usize], weight })
        .collect();
    Ok(BlockPairs { pairs, compared: stats.compared, rechecked: stats.rechecked })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_covers_each_pair_once_and_respects_the_shard() {
        // 2·BLOCK + 3 rows in one bucket, shard in the middle.
        let n = 2 * BLOCK + 3;
        let buckets = Buckets { members: (0..n as u32).collect(), bounds: std::iter::once(0..n).collect() };
        let mut seen = vec![0u8; n * n];
        let shard = 100..(BLOCK as u32 + 50);
        for t in plan(&buckets, &shard, false) {
            for i in t.i.clone() {
                for j in t.j.clone() {
                    if !t.diagonal || j > i {
                        seen[i * n + j] += 1;
                    }
                }
            }
        }
        for i in 0..n {
            for j in i + 1..n {
                let touches = shard.contains(&(i as u32)) || shard.contains(&(j as u32));
                assert_eq!(seen[i * n + j], u8::from(touches), "pair {i},{j}");
            }
        }
    }

    use crate::build::distributed::lsh_codes;
    use crate::build::{synthetic::gaussian_clusters, BuildConfig, GraphBuilder};
    use std::collections::{BTreeMap, HashMap};

    fn edge_set(edges: impl IntoIterator<Item = RowEdge>) -> BTreeMap<(u32, u32), u32> {
        edges.into_iter().map(|e| ((e.source.min(e.target), e.source.max(e.target)), e.weight.to_bits())).collect()
    }

    /// Rows `rows` of `x` as one matrix.
    fn gather(x: &ndarray::Array2<f32>, rows: &[u32]) -> ndarray::Array2<f32> {
        ndarray::stack(ndarray::Axis(0), &rows.iter().map(|&r| x.row(r as usize)).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn block_pairs_of_all_block_pairs_are_the_exact_graph() {
        let (mut x, _) = gaussian_clusters(700, 16, 20, 4);
        x.row_mut(5).fill(0.0);
        let config = BuildConfig { threshold: 0.9, ..BuildConfig::default() };
        let (want, _) = GraphBuilder::new(config).build_edges(x.view()).unwrap();
        // Three blocks of uneven sizes, rows interleaved (any assignment of rows to blocks works).
        let blocks: Vec<Vec<u32>> = (0..3).map(|b| (0..700).filter(|r| (r * 7 + 3) % 3 == b).collect()).collect();
        let mut got = Vec::new();
        for i in 0..3 {
            for j in i..3 {
                let rows: Vec<u32> = if i == j { blocks[i].clone() } else { [&blocks[i][..], &blocks[j][..]].concat() };
                let split = (i != j).then_some(blocks[i].len());
                let found = block_pairs(gather(&x, &rows).view(), split, &[], 0.9).unwrap();
                got.extend(found.pairs.iter().map(|e| RowEdge {
                    source: rows[e.source as usize],
                    target: rows[e.target as usize],
                    weight: e.weight,
                }));
            }
        }
        assert_eq!(got.len() * 2, want.len(), "each link once");
        assert_eq!(edge_set(got), edge_set(want));
    }

    #[test]
    fn buckets_of_lsh_codes_give_the_lsh_graph() {
        let (x, _) = gaussian_clusters(900, 12, 30, 8);
        for center in [false, true] {
            let config = BuildConfig {
                threshold: 0.85,
                lsh_splits: 4,
                lsh_rounds: 3,
                seed: 11,
                center,
                ..BuildConfig::default()
            };
            let (want, _) = GraphBuilder::new(config).build_edges(x.view()).unwrap();
            let mean = center.then(|| crate::build::distributed::column_mean(x.view()));
            // Hash in two pieces, as two partitions would.
            let mut rows = Vec::new();
            let mut codes = Vec::new();
            for (lo, hi) in [(0usize, 333usize), (333, 900)] {
                let c = lsh_codes(x.slice(ndarray::s![lo..hi, ..]), 11, 4, 3, mean.as_deref()).unwrap();
                rows.extend(c.rows.iter().map(|&r| r + lo as u32));
                codes.extend(c.codes);
            }
            let mut got = Vec::new();
            for round in 0..3usize {
                let mut buckets: HashMap<u64, Vec<usize>> = HashMap::new();
                for k in 0..rows.len() {
                    buckets.entry(codes[k * 3 + round]).or_default().push(k);
                }
                for members in buckets.values() {
                    let input: Vec<u32> = members.iter().map(|&k| rows[k]).collect();
                    let earlier: Vec<u64> =
                        members.iter().flat_map(|&k| codes[k * 3..k * 3 + round].to_vec()).collect();
                    let found = block_pairs(gather(&x, &input).view(), None, &earlier, 0.85).unwrap();
                    got.extend(found.pairs.iter().map(|e| RowEdge {
                        source: input[e.source as usize],
                        target: input[e.target as usize],
                        weight: e.weight,
                    }));
                }
            }
            assert_eq!(got.len() * 2, want.len(), "center {center}: each link in one round only");
            assert_eq!(edge_set(got), edge_set(want), "center {center}");
        }
    }
}
