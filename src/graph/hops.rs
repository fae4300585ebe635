//! Powers of the symmetrically normalized adjacency `Â = D^-1/2 (A + I) D^-1/2`: the r-hop
//! neighbor graph ([`NeighborGraph::multi_hop`]) and the sparse matrix that feature propagation
//! (`neighbors::propagate`) multiplies by.
//!
//! # How `Â` is built
//! `A` holds the edge weights between the chosen nodes. A graph that is not symmetric is made so
//! as [`NeighborGraph::make_undirected`] does: `A_ij = A_ji = max(w(i→j), w(j→i))` (a missing edge
//! counts as 0). Self-loops of the graph are ignored: the diagonal of `A + I` is exactly 1, as in
//! SGC (Wu et al. 2019) and GCN. `D_ii = 1 + Σ_j A_ij`, so a node without edges has `Â_ii = 1` and
//! keeps its own value under every power. `Â` is stored as CSR rows sorted by column, so every
//! product sums in a fixed order and the result does not depend on the thread count.

use super::{Edge, EdgeKind, NeighborGraph, NodeId};
use crate::config::ConfigError;
use ndarray::{ArrayView2, ArrayViewMut2, Axis};
use rayon::prelude::*;

/// The most hops [`NeighborGraph::multi_hop`] and feature propagation accept. Beyond a few hops
/// the powers of `Â` approach their stationary limit (over-smoothing: every row proportional to
/// `sqrt(D)`), so a larger value is almost certainly a typo, and SIGN-style features grow by one
/// copy of the input per hop.
pub const MAX_HOPS: usize = 64;

/// How the nodes of a graph were mapped onto the rows of a [`NormalizedAdjacency`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct AdjacencyStats {
    /// Graph nodes that are not rows (their edges are ignored).
    pub ignored_nodes: usize,
    /// Directed edges with an end outside the rows.
    pub ignored_edges: usize,
    /// Self-loops of the graph (ignored: the diagonal of `A + I` is 1).
    pub self_loops: usize,
    /// Directed edges between rows whose reverse is missing or has another weight (the matrix is
    /// symmetrized with the larger weight).
    pub asymmetric_edges: usize,
    /// Rows without any edge to another row (their row of `Â` is the identity's).
    pub isolated_rows: usize,
}

/// `Â = D^-1/2 (A + I) D^-1/2` over a chosen set of rows, in CSR form (see the module docs).
#[derive(Debug, Clone)]
pub(crate) struct NormalizedAdjacency {
    /// Row `i` holds entries `indptr[i]..indptr[i + 1]` of `indices` and `values`.
    indptr: Vec<usize>,
    /// Column of each entry, increasing within a row.
    indices: Vec<u32>,
    /// `Â_ij`.
    values: Vec<f32>,
    /// How the graph's nodes and edges were used.
    pub stats: AdjacencyStats,
}

impl NormalizedAdjacency {
    /// Builds `Â` over `rows` rows, graph node `n` being row `row_of[n.0]` (or no row: its edges
    /// are ignored and counted). `row_of` has one entry per graph node.
    pub(crate) fn build(graph: &NeighborGraph, row_of: &[Option<u32>], rows: usize) -> Self {
        let mut stats = AdjacencyStats {
            ignored_nodes: row_of.iter().filter(|r| r.is_none()).count(),
            ..AdjacencyStats::default()
        };
        let pet = graph.petgraph();
        // Both directions of every link, then sorted and deduplicated keeping the larger weight.
        let mut entries: Vec<(u32, u32, f32)> = Vec::with_capacity(2 * graph.edge_count());
        for (s, t, e) in pet.all_edges() {
            let (Some(i), Some(j)) = (row_of[s.0 as usize], row_of[t.0 as usize]) else {
                stats.ignored_edges += 1;
                continue;
            };
            if i == j {
                stats.self_loops += 1;
                continue;
            }
            if pet.edge_weight(t, s).is_none_or(|r| r.weight != e.weight) {
                stats.asymmetric_edges += 1;
            }
            entries.push((i, j, e.weight));
            entries.push((j, i, e.weight));
        }
        entries.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)).then(b.2.total_cmp(&a.2)));
        entries.dedup_by(|later, first| (later.0, later.1) == (first.0, first.1));

        // Degrees of A + I, in f64 so that a node of high degree loses nothing.
        let mut degree = vec![1.0f64; rows];
        let mut neighbors = vec![0usize; rows];
        for &(i, _, w) in &entries {
            degree[i as usize] += f64::from(w);
            neighbors[i as usize] += 1;
        }
        stats.isolated_rows = neighbors.iter().filter(|&&k| k == 0).count();
        let scale: Vec<f64> = degree.iter().map(|d| 1.0 / d.sqrt()).collect();

        let mut indptr = Vec::with_capacity(rows + 1);
        let mut indices = Vec::with_capacity(entries.len() + rows);
        let mut values = Vec::with_capacity(entries.len() + rows);
        indptr.push(0);
        let mut next = entries.iter().peekable();
        for i in 0..rows {
            let mut diagonal_done = false;
            while let Some(&&(_, j, w)) = next.peek().filter(|e| e.0 as usize == i) {
                if !diagonal_done && j as usize > i {
                    indices.push(i as u32);
                    values.push((scale[i] * scale[i]) as f32);
                    diagonal_done = true;
                }
                indices.push(j);
                values.push((f64::from(w) * scale[i] * scale[j as usize]) as f32);
                next.next();
            }
            if !diagonal_done {
                indices.push(i as u32);
                values.push((scale[i] * scale[i]) as f32);
            }
            indptr.push(indices.len());
        }
        NormalizedAdjacency { indptr, indices, values, stats }
    }

    /// Number of rows (and columns).
    pub(crate) fn rows(&self) -> usize {
        self.indptr.len() - 1
    }

    /// The columns and values of row `i`.
    fn row(&self, i: usize) -> (&[u32], &[f32]) {
        let range = self.indptr[i]..self.indptr[i + 1];
        (&self.indices[range.clone()], &self.values[range])
    }

    /// `out = Â · x`, rows in parallel. Both are `rows × d`; `out` is overwritten.
    pub(crate) fn multiply(&self, x: ArrayView2<'_, f32>, mut out: ArrayViewMut2<'_, f32>) {
        debug_assert!(x.nrows() == self.rows() && out.nrows() == self.rows() && x.ncols() == out.ncols());
        out.axis_iter_mut(Axis(0)).into_par_iter().enumerate().for_each(|(i, mut out_row)| {
            out_row.fill(0.0);
            let (cols, vals) = self.row(i);
            for (&j, &a) in cols.iter().zip(vals) {
                out_row.scaled_add(a, &x.row(j as usize));
            }
        });
    }
}

impl NeighborGraph {
    /// The r-hop neighbor graph: edge `i → j` (for `i ≠ j`) weighs `Σ_{h=1..hops} (Â^h)_ij`, with
    /// `Â = D^-1/2 (A + I) D^-1/2` the symmetrically normalized adjacency with self-loops (SGC's;
    /// edge weights are `A`'s entries, a graph that is not symmetric is symmetrized with the larger
    /// weight of the two directions, and the graph's own self-loops are ignored). Each node keeps
    /// its `top_k` heaviest edges, ties in weight going to the larger id as in
    /// [`NeighborGraph::top_k`] (NSL's order); pass `usize::MAX` to keep them all. Every node of
    /// `self` is a node of the result, in the same order; edges are [`EdgeKind::Explicit`].
    ///
    /// The sum is symmetric, but keeping the `top_k` of each row may not be: call
    /// [`NeighborGraph::make_undirected`] on the result for a symmetric graph.
    ///
    /// # Arguments
    /// - `hops`: `R`, the largest power, in `1..=`[`MAX_HOPS`]. With `R = 1` the weights are `Â`'s.
    /// - `top_k`: edges kept per node, at least 1.
    ///
    /// # Errors
    /// [`ConfigError::InvalidValue`] if `hops` or `top_k` is out of range.
    ///
    /// # Complexity
    /// Each row is expanded on its own (rows in parallel, in `f64`), in time proportional to the
    /// edges within `R − 1` hops of it, with two dense scratch vectors of `node_count` per thread.
    ///
    /// # Example
    /// ```
    /// use nsl::graph::{EdgeKind, NeighborGraph};
    /// // The path a - b - c: degrees of A + I are 2, 3, 2, so Â_ab = 1/√6 and (Â²)_ac = 1/6.
    /// let mut g = NeighborGraph::new();
    /// g.add_edge("a", "b", 1.0, EdgeKind::Explicit)?;
    /// g.add_edge("b", "c", 1.0, EdgeKind::Explicit)?;
    /// g.make_undirected();
    /// let two = g.multi_hop(2, 10)?;
    /// assert!((two.weight("a", "c").unwrap() - 1.0 / 6.0).abs() < 1e-6);
    /// // Â_ab + (Â²)_ab = 1/√6 + (1/2 + 1/3)/√6 = 11 / (6√6).
    /// assert!((two.weight("a", "b").unwrap() - 11.0 / (6.0 * 6f32.sqrt())).abs() < 1e-6);
    /// assert_eq!(two.weight("a", "a"), None); // self-loops are left out
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn multi_hop(&self, hops: usize, top_k: usize) -> Result<NeighborGraph, ConfigError> {
        if !(1..=MAX_HOPS).contains(&hops) {
            return Err(ConfigError::invalid("hops", hops, format!("an integer in 1..={MAX_HOPS}")));
        }
        if top_k == 0 {
            return Err(ConfigError::invalid("top-k", top_k, "a positive integer"));
        }
        let n = self.node_count();
        let row_of: Vec<Option<u32>> = (0..n).map(|i| Some(i as u32)).collect();
        let adjacency = NormalizedAdjacency::build(self, &row_of, n);
        let ids = self.ids();
        let lists: Vec<Vec<(u32, f32)>> = (0..n)
            .into_par_iter()
            .map_init(
                || Scratch::new(n),
                |scratch, i| {
                    let mut row = scratch.expand(&adjacency, i, hops);
                    row.sort_by(|a, b| super::neighbor_order((&ids[a.0 as usize], a.1), (&ids[b.0 as usize], b.1)));
                    row.truncate(top_k);
                    row
                },
            )
            .collect();
        let edges: usize = lists.iter().map(Vec::len).sum();
        let mut out = NeighborGraph::with_capacity(n, edges);
        for id in ids {
            out.add_node(id);
        }
        for (i, list) in lists.into_iter().enumerate() {
            for (j, w) in list {
                out.add_edge_ids(NodeId(i as u32), NodeId(j), Edge { weight: w, kind: EdgeKind::Explicit });
            }
        }
        let base = self.provenance();
        let step =
            format!("multi_hop(hops={hops}, top_k={top_k}): sum of the first {hops} powers of D^-1/2 (A+I) D^-1/2");
        out.set_provenance(if base.is_empty() { step } else { format!("{base}; {step}") });
        Ok(out)
    }
}

/// Dense scratch vectors for expanding one row of `Σ Â^h`, reused across the rows of a thread.
struct Scratch {
    /// The current power's row, `e_i^T Â^h`.
    current: Vec<f64>,
    /// The next power's row.
    next: Vec<f64>,
    /// The running sum over powers.
    sum: Vec<f64>,
    /// Columns that are non-zero in `current`, `next` and `sum`.
    current_cols: Vec<u32>,
    next_cols: Vec<u32>,
    sum_cols: Vec<u32>,
    /// Whether a column is already listed in `next_cols` / `sum_cols`.
    in_next: Vec<bool>,
    in_sum: Vec<bool>,
}

impl Scratch {
    fn new(n: usize) -> Self {
        Scratch {
            current: vec![0.0; n],
            next: vec![0.0; n],
            sum: vec![0.0; n],
            current_cols: Vec::new(),
            next_cols: Vec::new(),
            sum_cols: Vec::new(),
            in_next: vec![false; n],
            in_sum: vec![false; n],
        }
    }

    /// The off-diagonal non-zeros of row `i` of `Σ_{h=1..hops} Â^h`, as `(column, weight)` in
    /// increasing column order; the scratch is left zeroed.
    fn expand(&mut self, a: &NormalizedAdjacency, i: usize, hops: usize) -> Vec<(u32, f32)> {
        self.current[i] = 1.0;
        self.current_cols.push(i as u32);
        for _ in 0..hops {
            for &j in &self.current_cols {
                let v = self.current[j as usize];
                let (cols, vals) = a.row(j as usize);
                for (&k, &w) in cols.iter().zip(vals) {
                    if !self.in_next[k as usize] {
                        self.in_next[k as usize] = true;
                        self.next_cols.push(k);
                    }
                    self.next[k as usize] += v * f64::from(w);
                }
            }
            for &j in &self.current_cols {
                self.current[j as usize] = 0.0;
            }
            self.current_cols.clear();
            // Sorted columns make every sum below run in the same order on every thread.
            self.next_cols.sort_unstable();
            for &k in &self.next_cols {
                let k = k as usize;
                if !self.in_sum[k] {
                    self.in_sum[k] = true;
                    self.sum_cols.push(k as u32);
                }
                self.sum[k] += self.next[k];
                self.current[k] = self.next[k];
                self.next[k] = 0.0;
                self.in_next[k] = false;
            }
            std::mem::swap(&mut self.current_cols, &mut self.next_cols);
        }
        for &j in &self.current_cols {
            self.current[j as usize] = 0.0;
        }
        self.current_cols.clear();
        self.sum_cols.sort_unstable();
        let mut row = Vec::with_capacity(self.sum_cols.len());
        for &k in &self.sum_cols {
            let w = std::mem::take(&mut self.sum[k as usize]);
            self.in_sum[k as usize] = false;
            if k as usize != i && w > 0.0 {
                row.push((k, w as f32));
            }
        }
        self.sum_cols.clear();
        row
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array2};

    /// Same shape and every value within `tol`.
    fn close(a: ndarray::ArrayView2<'_, f32>, b: ndarray::ArrayView2<'_, f32>, tol: f32) -> bool {
        a.shape() == b.shape() && a.iter().zip(b.iter()).all(|(x, y)| (x - y).abs() <= tol)
    }

    /// The undirected path a - b - c, weight 1.
    fn path() -> NeighborGraph {
        let mut g = NeighborGraph::new();
        g.add_edge("a", "b", 1.0, EdgeKind::Explicit).unwrap();
        g.add_edge("b", "c", 1.0, EdgeKind::Explicit).unwrap();
        g.make_undirected();
        g
    }

    fn dense(a: &NormalizedAdjacency) -> Array2<f32> {
        let mut m = Array2::zeros((a.rows(), a.rows()));
        for i in 0..a.rows() {
            let (cols, vals) = a.row(i);
            for (&j, &v) in cols.iter().zip(vals) {
                m[[i, j as usize]] = v;
            }
        }
        m
    }

    #[test]
    fn normalized_path_matches_hand_values() {
        let g = path();
        let a = NormalizedAdjacency::build(&g, &[Some(0), Some(1), Some(2)], 3);
        let r = 1.0 / 6f32.sqrt();
        let expected = array![[0.5, r, 0.0], [r, 1.0 / 3.0, r], [0.0, r, 0.5]];
        assert!(close(dense(&a).view(), expected.view(), 1e-6), "{}", dense(&a));
        assert_eq!(a.stats, AdjacencyStats::default());
    }

    #[test]
    fn asymmetric_graph_uses_the_larger_weight_and_ignores_self_loops() {
        let mut g = NeighborGraph::new();
        g.add_edge("a", "b", 3.0, EdgeKind::Explicit).unwrap();
        g.add_edge("b", "a", 1.0, EdgeKind::Explicit).unwrap();
        g.add_edge("a", "a", 5.0, EdgeKind::Explicit).unwrap();
        g.add_edge("c", "x", 1.0, EdgeKind::Explicit).unwrap();
        // Rows: a, b, c; x is not a row.
        let a = NormalizedAdjacency::build(&g, &[Some(0), Some(1), Some(2), None], 3);
        // A + I = [[1, 3, 0], [3, 1, 0], [0, 0, 1]], degrees 4, 4, 1.
        let expected = array![[0.25, 0.75, 0.0], [0.75, 0.25, 0.0], [0.0, 0.0, 1.0]];
        assert!(close(dense(&a).view(), expected.view(), 1e-6), "{}", dense(&a));
        assert_eq!(
            a.stats,
            AdjacencyStats { ignored_nodes: 1, ignored_edges: 1, self_loops: 1, asymmetric_edges: 2, isolated_rows: 1 }
        );
    }

    #[test]
    fn multiply_is_a_matrix_product() {
        let g = path();
        let a = NormalizedAdjacency::build(&g, &[Some(0), Some(1), Some(2)], 3);
        let x = array![[1.0f32, 2.0], [3.0, 4.0], [5.0, 6.0]];
        let mut out = Array2::zeros((3, 2));
        a.multiply(x.view(), out.view_mut());
        assert!(close(out.view(), dense(&a).dot(&x).view(), 1e-5));
    }

    #[test]
    fn multi_hop_sums_powers_and_keeps_the_top_k() {
        let g = path();
        let r6 = 6f32.sqrt();
        let one = g.multi_hop(1, 5).unwrap();
        assert_eq!(one.edge_count(), 4);
        assert!((one.weight("a", "b").unwrap() - 1.0 / r6).abs() < 1e-6);
        let two = g.multi_hop(2, 5).unwrap();
        assert_eq!(two.edge_count(), 6);
        assert!((two.weight("b", "c").unwrap() - 11.0 / (6.0 * r6)).abs() < 1e-6);
        assert!((two.weight("c", "a").unwrap() - 1.0 / 6.0).abs() < 1e-6);
        // Â³ adds (Â³)_ac = Σ_k (Â²)_ak Â_kc = 5/(6√6)·1/√6 + 1/6·1/2 = 5/36 + 3/36 = 2/9.
        let three = g.multi_hop(3, 5).unwrap();
        assert!((three.weight("a", "c").unwrap() - (1.0 / 6.0 + 2.0 / 9.0)).abs() < 1e-6);
        // b's two edges tie: the larger id (c) wins, as in `top_k`.
        let top = g.multi_hop(2, 1).unwrap();
        assert_eq!(top.neighbors("b").map(|(t, _)| t).collect::<Vec<_>>(), ["c"]);
        assert_eq!(top.neighbors("a").map(|(t, _)| t).collect::<Vec<_>>(), ["b"]);
        assert!(top.edges().all(|(_, _, e)| e.kind == EdgeKind::Explicit));
    }

    #[test]
    fn multi_hop_rejects_bad_settings() {
        let g = path();
        assert!(g.multi_hop(0, 1).unwrap_err().to_string().contains("hops"));
        assert!(g.multi_hop(MAX_HOPS + 1, 1).is_err());
        assert!(g.multi_hop(2, 0).unwrap_err().to_string().contains("top-k"));
    }
}
