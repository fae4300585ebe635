//! Descriptive statistics of a [`NeighborGraph`]: size, degrees, weights, components, and how it
//! covers a set of samples (with labels: its homophily).
//!
//! ```
//! use nsl::graph::{graph_stats, EdgeKind, NeighborGraph};
//! let mut g = NeighborGraph::new();
//! g.add_edge("a", "b", 1.0, EdgeKind::Explicit).unwrap();
//! g.add_edge("c", "d", 0.5, EdgeKind::Similarity).unwrap();
//! g.make_undirected();
//! let s = graph_stats(&g, None);
//! assert_eq!((s.nodes, s.edges, s.links, s.components, s.largest_component), (4, 4, 2, 2, 2));
//! ```

use super::{EdgeKind, NeighborGraph};
use petgraph::unionfind::UnionFind;
use std::collections::HashMap;
use std::fmt;

/// The samples a graph is meant for, to measure coverage and homophily without depending on
/// [`crate::Dataset`] (pass `dataset.ids()` and `dataset.labels()`).
#[derive(Debug, Clone, Copy)]
pub struct SampleInfo<'a> {
    /// Sample ids.
    pub ids: &'a [String],
    /// `labels[i]` is the label of `ids[i]`, if the samples are labeled.
    pub labels: Option<&'a [u32]>,
}

/// Minimum, median, mean and maximum of a list of numbers. The median of an even count is the
/// mean of the two middle values.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Summary {
    /// Smallest value.
    pub min: f64,
    /// Middle value (mean of the two middle values for an even count).
    pub median: f64,
    /// Arithmetic mean `Σx / n`.
    pub mean: f64,
    /// Largest value.
    pub max: f64,
}

impl Summary {
    /// The summary of `values` (`None` when empty). Sorts `values` in place.
    pub fn of(values: &mut [f64]) -> Option<Summary> {
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let n = values.len();
        let median = if n % 2 == 1 { values[n / 2] } else { (values[n / 2 - 1] + values[n / 2]) / 2.0 };
        Some(Summary { min: values[0], median, mean: values.iter().sum::<f64>() / n as f64, max: values[n - 1] })
    }
}

/// Directed edge counts by [`EdgeKind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct KindCounts {
    /// Edges of kind [`EdgeKind::Explicit`].
    pub explicit: usize,
    /// Edges of kind [`EdgeKind::Similarity`].
    pub similarity: usize,
    /// Edges of kind [`EdgeKind::Adversarial`].
    pub adversarial: usize,
}

/// One bar of the out-degree histogram: the number of nodes whose out-degree `d` satisfies
/// `min ≤ d ≤ max`. Buckets are 0, 1, 2–3, 4–7, …, `2^(b−1)`–`2^b − 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct DegreeBucket {
    /// Smallest out-degree in the bucket.
    pub min: usize,
    /// Largest out-degree in the bucket.
    pub max: usize,
    /// Nodes in the bucket.
    pub nodes: usize,
}

/// Edge homophily: among the directed edges that are not self-loops and whose two ends are labeled
/// samples, the share joining two samples of the same label,
/// `h = #{(s→t) : label(s) = label(t)} / #{(s→t) : s ≠ t, both labeled}`.
/// On a symmetric graph this equals the share of same-label links.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Homophily {
    /// Edges counted (the denominator).
    pub edges: usize,
    /// Of those, edges joining the same label (the numerator).
    pub same_label: usize,
    /// `same_label / edges`, or `None` when no edge qualifies.
    pub ratio: Option<f64>,
}

/// How the graph covers a set of samples ([`SampleInfo`]).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct SampleStats {
    /// Distinct sample ids.
    pub samples: usize,
    /// Samples that have no edge at all, in or out (including samples absent from the graph):
    /// graph regularization cannot help them.
    pub isolated_samples: usize,
    /// Graph nodes that are not samples (neighbors without features: NSL drops such edges).
    pub non_sample_nodes: usize,
    /// Edge homophily, when the samples are labeled.
    pub homophily: Option<Homophily>,
}

/// The spectrum of the symmetric normalized Laplacian (see [`super::spectral`]), added by
/// `with_spectrum` (feature `linalg`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Spectrum {
    /// The `k` smallest eigenvalues, ascending.
    pub smallest: Vec<f64>,
    /// Eigenvalues with `|λ| < 1e-8` over the whole spectrum: the number of connected components
    /// that have an edge of positive weight (isolated nodes contribute eigenvalue 1, not 0).
    pub zero_eigenvalues: usize,
    /// The smallest eigenvalue that is not zero (`|λ| ≥ 1e-8`), `None` if there is none. For a
    /// connected graph this is `λ₂`, which bounds how fast label information mixes over the graph
    /// (Cheeger: conductance `φ ≥ λ₂ / 2`).
    pub spectral_gap: Option<f64>,
}

/// Statistics of a [`NeighborGraph`], computed by [`graph_stats`]. `Display` prints a report.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct GraphStats {
    /// Nodes (including nodes without edges).
    pub nodes: usize,
    /// Directed edges (an undirected link counts twice, a self-loop once).
    pub edges: usize,
    /// Undirected links: distinct unordered pairs `{s, t}` joined by an edge in either direction,
    /// a self-loop counting as one link. For a symmetric graph,
    /// `links = (edges − self_loops) / 2 + self_loops`.
    pub links: usize,
    /// Whether every edge has its reverse with the same weight ([`NeighborGraph::is_symmetric`]).
    pub symmetric: bool,
    /// Directed edges by kind.
    pub edges_by_kind: KindCounts,
    /// Edges `a → a`.
    pub self_loops: usize,
    /// Out-degree over all nodes (`None` for an empty graph).
    pub out_degree: Option<Summary>,
    /// Out-degree histogram in log2 buckets, from bucket 0 up to the bucket of the largest degree
    /// (empty buckets in between included).
    pub degree_histogram: Vec<DegreeBucket>,
    /// Edge weights over all directed edges (`None` without edges).
    pub weight: Option<Summary>,
    /// Weakly connected components (edge direction ignored; an isolated node is a component).
    pub components: usize,
    /// Nodes in the largest component (0 for an empty graph).
    pub largest_component: usize,
    /// Coverage of the samples, when [`SampleInfo`] was given.
    pub samples: Option<SampleStats>,
    /// Laplacian spectrum, when computed (feature `linalg`).
    pub spectrum: Option<Spectrum>,
}

/// Computes [`GraphStats`] in `O(E log E + N)`; with `samples`, also [`SampleStats`].
pub fn graph_stats(graph: &NeighborGraph, samples: Option<&SampleInfo>) -> GraphStats {
    let pg = graph.petgraph();
    let n = graph.node_count();
    let mut out_degree = vec![0usize; n];
    let mut has_edge = vec![false; n];
    let mut kinds = KindCounts::default();
    let mut self_loops = 0;
    let mut links = 0;
    let mut weights = Vec::with_capacity(graph.edge_count());
    // Node ids are 0..n (NeighborGraph numbers its nodes densely).
    let mut components = UnionFind::<usize>::new(n);
    for (s, t, e) in pg.all_edges() {
        let (si, ti) = (s.0 as usize, t.0 as usize);
        out_degree[si] += 1;
        has_edge[si] = true;
        has_edge[ti] = true;
        match e.kind {
            EdgeKind::Explicit => kinds.explicit += 1,
            EdgeKind::Similarity => kinds.similarity += 1,
            EdgeKind::Adversarial => kinds.adversarial += 1,
        }
        if s == t {
            self_loops += 1;
        }
        // Count each unordered pair once: from its smaller end, or from the larger end if the
        // reverse edge does not exist.
        if s <= t || !pg.contains_edge(t, s) {
            links += 1;
        }
        weights.push(f64::from(e.weight));
        components.union(si, ti);
    }
    let mut component_size = vec![0usize; n];
    for node in 0..n {
        component_size[components.find(node)] += 1;
    }
    let mut degrees: Vec<f64> = out_degree.iter().map(|&d| d as f64).collect();
    GraphStats {
        nodes: n,
        edges: graph.edge_count(),
        links,
        symmetric: graph.is_symmetric(),
        edges_by_kind: kinds,
        self_loops,
        out_degree: Summary::of(&mut degrees),
        degree_histogram: degree_histogram(&out_degree),
        weight: Summary::of(&mut weights),
        components: component_size.iter().filter(|&&size| size > 0).count(),
        largest_component: component_size.iter().copied().max().unwrap_or(0),
        samples: samples.map(|info| sample_stats(graph, info, &has_edge)),
        spectrum: None,
    }
}

/// Adds the normalized Laplacian spectrum (`k` smallest eigenvalues, see
/// [`super::spectral::laplacian_spectrum`]) to `stats`.
///
/// # Errors
/// As [`super::spectral::laplacian_eigenvalues`]: a graph over
/// [`super::spectral::MAX_NODES`] nodes, or a LAPACK failure.
#[cfg(feature = "linalg")]
pub fn with_spectrum(mut stats: GraphStats, graph: &NeighborGraph, k: usize) -> Result<GraphStats, super::GraphError> {
    let mut all = super::spectral::laplacian_eigenvalues(graph)?;
    let zero = |l: &f64| l.abs() < super::spectral::ZERO_TOLERANCE;
    let zero_eigenvalues = all.iter().filter(|l| zero(l)).count();
    let spectral_gap = all.iter().copied().find(|l| !zero(l));
    all.truncate(k);
    stats.spectrum = Some(Spectrum { smallest: all, zero_eigenvalues, spectral_gap });
    Ok(stats)
}

/// The log2 out-degree histogram (see [`DegreeBucket`]).
fn degree_histogram(out_degree: &[usize]) -> Vec<DegreeBucket> {
    // Bucket 0 holds degree 0; bucket b ≥ 1 holds 2^(b−1) ..= 2^b − 1.
    let bucket = |d: usize| if d == 0 { 0 } else { d.ilog2() as usize + 1 };
    let Some(max) = out_degree.iter().copied().max() else { return Vec::new() };
    let mut histogram: Vec<DegreeBucket> = (0..=bucket(max))
        .map(|b| match b {
            0 => DegreeBucket { min: 0, max: 0, nodes: 0 },
            b => DegreeBucket { min: 1 << (b - 1), max: (1 << b) - 1, nodes: 0 },
        })
        .collect();
    for &d in out_degree {
        histogram[bucket(d)].nodes += 1;
    }
    histogram
}

/// Coverage and homophily of `info` in `graph`; `has_edge[node]` says whether a node has any edge.
fn sample_stats(graph: &NeighborGraph, info: &SampleInfo, has_edge: &[bool]) -> SampleStats {
    // Sample id → label (None when unlabeled); a repeated id keeps its last label.
    let mut label_of: HashMap<&str, Option<u32>> = HashMap::with_capacity(info.ids.len());
    for (i, id) in info.ids.iter().enumerate() {
        label_of.insert(id.as_str(), info.labels.and_then(|l| l.get(i).copied()));
    }
    let isolated_samples =
        label_of.keys().filter(|id| graph.node(id).is_none_or(|node| !has_edge[node.0 as usize])).count();
    let non_sample_nodes = graph.ids().iter().filter(|id| !label_of.contains_key(id.as_str())).count();
    let homophily = info.labels.map(|_| {
        // Labels per graph node, so the edge loop needs no string hashing.
        let node_label: Vec<Option<u32>> =
            graph.ids().iter().map(|id| label_of.get(id.as_str()).copied().flatten()).collect();
        let (mut edges, mut same_label) = (0, 0);
        for (s, t, _) in graph.petgraph().all_edges() {
            if s == t {
                continue;
            }
            if let (Some(a), Some(b)) = (node_label[s.0 as usize], node_label[t.0 as usize]) {
                edges += 1;
                same_label += usize::from(a == b);
            }
        }
        Homophily { edges, same_label, ratio: (edges > 0).then(|| same_label as f64 / edges as f64) }
    });
    SampleStats { samples: label_of.len(), isolated_samples, non_sample_nodes, homophily }
}

/// `1234567` → `1,234,567`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `part` as a percentage of `whole` with one decimal (`0.0` when `whole` is 0).
fn percent(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

impl fmt::Display for GraphStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let direction = if self.symmetric { "symmetric (undirected)" } else { "directed" };
        writeln!(f, "nodes            {}", thousands(self.nodes))?;
        writeln!(f, "directed edges   {} ({direction})", thousands(self.edges))?;
        writeln!(f, "links            {}", thousands(self.links))?;
        let k = &self.edges_by_kind;
        writeln!(
            f,
            "edges by kind    explicit {}, similarity {}, adversarial {}",
            thousands(k.explicit),
            thousands(k.similarity),
            thousands(k.adversarial)
        )?;
        writeln!(f, "self-loops       {}", thousands(self.self_loops))?;
        if let Some(d) = &self.out_degree {
            writeln!(f, "out-degree       min {}, median {}, mean {:.2}, max {}", d.min, d.median, d.mean, d.max)?;
        }
        if !self.degree_histogram.is_empty() {
            writeln!(f, "degree histogram")?;
            for b in &self.degree_histogram {
                let range = if b.min == b.max { b.min.to_string() } else { format!("{}-{}", b.min, b.max) };
                writeln!(f, "  {range:>11}  {:>10}  {:5.1}%", thousands(b.nodes), percent(b.nodes, self.nodes))?;
            }
        }
        if let Some(w) = &self.weight {
            writeln!(
                f,
                "weight           min {:.4}, median {:.4}, mean {:.4}, max {:.4}",
                w.min, w.median, w.mean, w.max
            )?;
        }
        writeln!(
            f,
            "components       {} (largest {} nodes, {:.1}%)",
            thousands(self.components),
            thousands(self.largest_component),
            percent(self.largest_component, self.nodes)
        )?;
        if let Some(s) = &self.samples {
            writeln!(f, "samples          {}", thousands(s.samples))?;
            writeln!(
                f,
                "isolated samples {} ({:.1}%)",
                thousands(s.isolated_samples),
                percent(s.isolated_samples, s.samples)
            )?;
            writeln!(f, "non-sample nodes {}", thousands(s.non_sample_nodes))?;
            if let Some(h) = &s.homophily {
                match h.ratio {
                    Some(r) => writeln!(
                        f,
                        "edge homophily   {r:.4} ({} of {} labeled edges join the same label)",
                        thousands(h.same_label),
                        thousands(h.edges)
                    )?,
                    None => writeln!(f, "edge homophily   n/a (no edge joins two labeled samples)")?,
                }
            }
        }
        if let Some(s) = &self.spectrum {
            let smallest: Vec<String> = s.smallest.iter().map(|l| format!("{l:.4}")).collect();
            writeln!(f, "laplacian        smallest eigenvalues [{}]", smallest.join(", "))?;
            let gap = s.spectral_gap.map_or_else(|| "n/a".to_owned(), |g| format!("{g:.6}"));
            writeln!(f, "                 zero eigenvalues {}, spectral gap {gap}", s.zero_eigenvalues)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }

    #[test]
    fn histogram_buckets() {
        let h = degree_histogram(&[0, 1, 2, 3, 4, 9]);
        let got: Vec<(usize, usize, usize)> = h.iter().map(|b| (b.min, b.max, b.nodes)).collect();
        assert_eq!(got, [(0, 0, 1), (1, 1, 1), (2, 3, 2), (4, 7, 1), (8, 15, 1)]);
    }

    #[test]
    fn summary_median_even_and_odd() {
        assert_eq!(Summary::of(&mut [3.0, 1.0, 2.0]).unwrap().median, 2.0);
        let s = Summary::of(&mut [4.0, 1.0, 2.0, 3.0]).unwrap();
        assert_eq!((s.min, s.median, s.mean, s.max), (1.0, 2.5, 2.5, 4.0));
        assert!(Summary::of(&mut []).is_none());
    }
}
