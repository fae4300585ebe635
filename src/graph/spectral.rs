//! The spectrum of a graph's symmetric normalized Laplacian (feature `linalg`, LAPACK through
//! `ndarray-linalg`).
//!
//! # Formula
//! For the undirected version of the graph, with weighted adjacency
//! `A_ij = max(w(i→j), w(j→i))` (`A_ii = w(i→i)` for a self-loop) and degrees `d_i = Σ_j A_ij`:
//!
//! ```text
//! L = I − D^{-1/2} A D^{-1/2},   L_ij = δ_ij − A_ij / sqrt(d_i d_j)
//! ```
//!
//! For a node without edges (`d_i = 0`) the convention `D^{-1/2}_ii = 0` gives a row of zeros in
//! `D^{-1/2} A D^{-1/2}`, so `L_ii = 1` and each isolated node contributes an eigenvalue **1**
//! (networkx's `normalized_laplacian_matrix` puts 0 there instead). The eigenvalues lie in `[0, 2]`;
//! the multiplicity of 0 is the number of connected components that have an edge of positive
//! weight (edges of weight 0 connect nothing here).
//!
//! The matrix is dense and LAPACK's symmetric eigensolver costs `O(n³)`, so graphs are limited to
//! [`MAX_NODES`] nodes. Measured on a busy 2-core machine: Cora (2,708 nodes) takes 45–60 s; at the
//! limit expect `(5000/2708)³ ≈ 6×` that, and 200 MB for the matrix.

use super::{GraphError, NeighborGraph};
use ndarray::Array2;
use ndarray_linalg::{EigValsh, UPLO};

/// The largest graph (in nodes) whose spectrum is computed: the dense `n × n` matrix costs
/// `8n²` bytes and `O(n³)` time.
pub const MAX_NODES: usize = 5_000;

/// Eigenvalues with `|λ|` below this count as zero.
pub const ZERO_TOLERANCE: f64 = 1e-8;

/// The symmetric normalized Laplacian `L = I − D^{-1/2} A D^{-1/2}` of the undirected version of
/// `graph` (see the module docs), rows and columns in node order.
///
/// # Errors
/// [`GraphError::TooLarge`] if the graph has more than [`MAX_NODES`] nodes.
pub fn normalized_laplacian(graph: &NeighborGraph) -> Result<Array2<f64>, GraphError> {
    let n = graph.node_count();
    if n > MAX_NODES {
        return Err(GraphError::TooLarge { what: "the Laplacian spectrum", nodes: n, max: MAX_NODES });
    }
    let mut a = Array2::<f64>::zeros((n, n));
    for (s, t, e) in graph.petgraph().all_edges() {
        let (i, j, w) = (s.0 as usize, t.0 as usize, f64::from(e.weight));
        // Undirected: the larger weight of the two directions.
        a[[i, j]] = a[[i, j]].max(w);
        a[[j, i]] = a[[j, i]].max(w);
    }
    let inv_sqrt_degree: Vec<f64> =
        a.rows().into_iter().map(|row| row.sum()).map(|d| if d > 0.0 { 1.0 / d.sqrt() } else { 0.0 }).collect();
    let mut laplacian = a;
    for ((i, j), x) in laplacian.indexed_iter_mut() {
        let identity = if i == j { 1.0 } else { 0.0 };
        *x = identity - *x * inv_sqrt_degree[i] * inv_sqrt_degree[j];
    }
    Ok(laplacian)
}

/// All eigenvalues of the [`normalized_laplacian`], ascending.
///
/// # Errors
/// [`GraphError::TooLarge`] if the graph has more than [`MAX_NODES`] nodes, [`GraphError::Linalg`]
/// if LAPACK fails.
pub fn laplacian_eigenvalues(graph: &NeighborGraph) -> Result<Vec<f64>, GraphError> {
    let laplacian = normalized_laplacian(graph)?;
    if laplacian.is_empty() {
        return Ok(Vec::new());
    }
    // `eigvalsh` (LAPACK `syev`) returns the eigenvalues of a symmetric matrix in ascending order.
    let values = laplacian
        .eigvalsh(UPLO::Lower)
        .map_err(|e| GraphError::Linalg { what: "eigenvalues of the normalized Laplacian", message: e.to_string() })?;
    Ok(values.to_vec())
}

/// The `k` smallest eigenvalues of the symmetric normalized Laplacian (all of them when the graph
/// has fewer than `k` nodes), ascending. See the module docs for the matrix and the conventions.
///
/// # Examples
/// ```
/// use nsl::graph::{spectral, EdgeKind, NeighborGraph};
/// // A single link a - b: L = [[1, -1], [-1, 1]], eigenvalues 0 and 2.
/// let mut g = NeighborGraph::new();
/// g.add_edge("a", "b", 3.0, EdgeKind::Explicit).unwrap();
/// let l = spectral::laplacian_spectrum(&g, 5).unwrap();
/// assert!(l[0].abs() < 1e-12 && (l[1] - 2.0).abs() < 1e-12);
/// ```
///
/// # Errors
/// [`GraphError::TooLarge`] if the graph has more than [`MAX_NODES`] nodes, [`GraphError::Linalg`]
/// if LAPACK fails.
pub fn laplacian_spectrum(graph: &NeighborGraph, k: usize) -> Result<Vec<f64>, GraphError> {
    let mut values = laplacian_eigenvalues(graph)?;
    values.truncate(k);
    Ok(values)
}
