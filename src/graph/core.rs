//! [`NeighborGraph`]: nodes keyed by sample id, weighted and typed edges, on a petgraph `GraphMap`.

use super::GraphError;
use petgraph::graphmap::GraphMap;
use petgraph::{Directed, Direction};
use std::collections::HashMap;

/// The hasher of the graph's maps: foldhash with a fixed seed (fast on short keys, and the same on
/// every run). Iteration order never depends on it: petgraph's map keeps insertion order.
type Hasher = foldhash::fast::FixedState;

/// The petgraph map under a [`NeighborGraph`].
pub type PetGraph = GraphMap<NodeId, Edge, Directed, Hasher>;
use std::fmt;

/// A node of a [`NeighborGraph`]: an index into its id table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub u32);

/// Where an edge came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EdgeKind {
    /// Given with the data (citations, co-purchases, a TSV graph).
    Explicit,
    /// Built from embeddings by cosine similarity (`nsl build-graph`).
    Similarity,
    /// An adversarial neighbor generated during training.
    Adversarial,
}

impl EdgeKind {
    /// All kinds, in a fixed order.
    pub const ALL: [EdgeKind; 3] = [EdgeKind::Explicit, EdgeKind::Similarity, EdgeKind::Adversarial];

    /// The lower-case name used in files: `explicit`, `similarity`, `adversarial`.
    pub fn as_str(self) -> &'static str {
        match self {
            EdgeKind::Explicit => "explicit",
            EdgeKind::Similarity => "similarity",
            EdgeKind::Adversarial => "adversarial",
        }
    }

    /// Parses the name written by [`EdgeKind::as_str`].
    pub fn parse(s: &str) -> Option<EdgeKind> {
        EdgeKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for EdgeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The data on an edge.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Edge {
    /// The edge weight `w ≥ 0`, e.g. a cosine similarity; 1.0 for unweighted edges.
    pub weight: f32,
    /// Where the edge came from.
    pub kind: EdgeKind,
}

/// A directed, weighted graph whose nodes are sample ids.
///
/// An undirected graph is stored as both directions of every link, as NSL does, so that the
/// neighbors of a node are always its out-neighbors. Adding an edge that exists keeps the larger
/// weight (NSL's `add_edge`). Node and edge iteration follow insertion order, so the same input
/// gives the same output.
///
/// ```
/// use nsl::graph::{EdgeKind, NeighborGraph};
/// let mut g = NeighborGraph::new();
/// g.add_edge("a", "b", 0.5, EdgeKind::Explicit).unwrap();
/// g.add_edge("a", "b", 0.9, EdgeKind::Explicit).unwrap(); // duplicate: the larger weight stays
/// g.make_undirected();
/// assert_eq!(g.edge_count(), 2);
/// assert_eq!(g.weight("b", "a"), Some(0.9));
/// ```
#[derive(Debug, Clone, Default)]
pub struct NeighborGraph {
    graph: PetGraph,
    ids: Vec<String>,
    index: HashMap<String, NodeId, Hasher>,
    /// Free-form provenance ("how the graph was made"), stored in the Parquet metadata.
    provenance: String,
}

/// The order of a node's neighbors everywhere in nsl (top-k, packing, r-hop graphs): heavier first,
/// ties to the larger id — NSL's `pack_nbrs` order (Python's `sorted(((weight, id), …), reverse=True)`).
pub fn neighbor_order<T: Ord + ?Sized>(a: (&T, f32), b: (&T, f32)) -> std::cmp::Ordering {
    b.1.total_cmp(&a.1).then_with(|| b.0.cmp(a.0))
}

impl NeighborGraph {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty graph with room for `nodes` nodes and `edges` edges.
    pub fn with_capacity(nodes: usize, edges: usize) -> Self {
        NeighborGraph {
            graph: GraphMap::with_capacity(nodes, edges),
            ids: Vec::with_capacity(nodes),
            index: HashMap::with_capacity_and_hasher(nodes, Hasher::default()),
            provenance: String::new(),
        }
    }

    /// Adds a node (or finds the existing one) for sample `id`.
    pub fn add_node(&mut self, id: &str) -> NodeId {
        if let Some(&n) = self.index.get(id) {
            return n;
        }
        let n = NodeId(u32::try_from(self.ids.len()).expect("more than 2^32 nodes"));
        self.ids.push(id.to_owned());
        self.index.insert(id.to_owned(), n);
        self.graph.add_node(n);
        n
    }

    /// Adds the edge `source → target`; if it exists, keeps the larger weight (and that edge's kind).
    /// Returns whether the edge is new.
    ///
    /// # Errors
    /// [`GraphError::BadWeight`] if `weight` is negative, NaN or infinite.
    pub fn add_edge(&mut self, source: &str, target: &str, weight: f32, kind: EdgeKind) -> Result<bool, GraphError> {
        if !(weight.is_finite() && weight >= 0.0) {
            return Err(GraphError::BadWeight { source_id: source.to_owned(), target: target.to_owned(), weight });
        }
        let (s, t) = (self.add_node(source), self.add_node(target));
        Ok(self.add_edge_ids(s, t, Edge { weight, kind }))
    }

    /// [`NeighborGraph::add_edge`] between existing nodes, for callers that already checked the weight.
    pub(crate) fn add_edge_ids(&mut self, s: NodeId, t: NodeId, edge: Edge) -> bool {
        // One lookup for a new edge; a duplicate puts the larger weight back.
        match self.graph.add_edge(s, t, edge) {
            None => true,
            Some(old) => {
                if old.weight >= edge.weight {
                    self.graph.add_edge(s, t, old);
                }
                false
            }
        }
    }

    /// Adds the reverse of every edge (keeping the larger weight where both directions exist), so
    /// that the graph is symmetric: `w(a→b) = w(b→a) = max(w(a→b), w(b→a))`.
    pub fn make_undirected(&mut self) {
        let edges: Vec<(NodeId, NodeId, Edge)> = self.graph.all_edges().map(|(s, t, e)| (s, t, *e)).collect();
        for (s, t, e) in edges {
            self.add_edge_ids(t, s, e);
        }
    }

    /// Whether every edge has its reverse with the same weight.
    pub fn is_symmetric(&self) -> bool {
        self.graph.all_edges().all(|(s, t, e)| self.graph.edge_weight(t, s).is_some_and(|r| r.weight == e.weight))
    }

    /// Adds every node and edge of `other` (duplicates keep the larger weight).
    pub fn merge(&mut self, other: &NeighborGraph) {
        for id in &other.ids {
            self.add_node(id);
        }
        for (s, t, e) in other.graph.all_edges() {
            let (s, t) = (self.index[other.id(s)], self.index[other.id(t)]);
            self.add_edge_ids(s, t, *e);
        }
    }

    /// Number of nodes.
    pub fn node_count(&self) -> usize {
        self.ids.len()
    }

    /// Number of directed edges (an undirected link counts twice).
    pub fn edge_count(&self) -> usize {
        self.graph.edge_count()
    }

    /// The node of sample `id`.
    pub fn node(&self, id: &str) -> Option<NodeId> {
        self.index.get(id).copied()
    }

    /// The sample id of node `n`.
    ///
    /// # Panics
    /// If `n` does not belong to this graph.
    pub fn id(&self, n: NodeId) -> &str {
        &self.ids[n.0 as usize]
    }

    /// All sample ids, in node order.
    pub fn ids(&self) -> &[String] {
        &self.ids
    }

    /// The weight of `source → target`, if that edge exists.
    pub fn weight(&self, source: &str, target: &str) -> Option<f32> {
        let (s, t) = (self.node(source)?, self.node(target)?);
        self.graph.edge_weight(s, t).map(|e| e.weight)
    }

    /// The out-neighbors of `id` with their edges (empty if `id` is not in the graph).
    pub fn neighbors<'a>(&'a self, id: &str) -> impl Iterator<Item = (&'a str, Edge)> + 'a {
        let node = self.node(id);
        node.into_iter()
            .flat_map(move |n| self.graph.edges_directed(n, Direction::Outgoing).map(move |(_, t, e)| (self.id(t), *e)))
    }

    /// Out-degree of `id` (0 if `id` is not in the graph).
    pub fn degree(&self, id: &str) -> usize {
        self.node(id).map_or(0, |n| self.graph.neighbors_directed(n, Direction::Outgoing).count())
    }

    /// The `k` highest-weight out-neighbors of `id`, best first. Ties in weight go to the
    /// lexicographically larger id, as in NSL's `pack_nbrs` (which sorts `(weight, id)` descending).
    pub fn top_k(&self, id: &str, k: usize) -> Vec<(&str, Edge)> {
        let mut all: Vec<(&str, Edge)> = self.neighbors(id).collect();
        all.sort_by(|a, b| neighbor_order((a.0, a.1.weight), (b.0, b.1.weight)));
        all.truncate(k);
        all
    }

    /// A new graph keeping, for every node, only its `k` best out-edges (see [`NeighborGraph::top_k`]).
    pub fn keep_top_k(&self, k: usize) -> NeighborGraph {
        let mut out = NeighborGraph::with_capacity(self.node_count(), self.edge_count().min(self.node_count() * k));
        out.provenance = self.provenance.clone();
        for id in &self.ids {
            out.add_node(id);
        }
        for id in &self.ids {
            let s = out.index[id.as_str()];
            for (t, e) in self.top_k(id, k) {
                let t = out.index[t];
                out.add_edge_ids(s, t, e);
            }
        }
        out
    }

    /// Every edge as `(source, target, edge)`, in insertion order.
    pub fn edges(&self) -> impl Iterator<Item = (&str, &str, Edge)> + '_ {
        self.graph.all_edges().map(|(s, t, e)| (self.id(s), self.id(t), *e))
    }

    /// The underlying petgraph map, for petgraph's algorithms.
    pub fn petgraph(&self) -> &PetGraph {
        &self.graph
    }

    /// How the graph was made (free text, kept in the Parquet metadata).
    pub fn provenance(&self) -> &str {
        &self.provenance
    }

    /// Sets how the graph was made.
    pub fn set_provenance(&mut self, provenance: impl Into<String>) {
        self.provenance = provenance.into();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// a→b (1), a→c (0.5), b→c (0.5), c→c (self-loop, 2).
    fn tiny_graph() -> NeighborGraph {
        let mut g = NeighborGraph::new();
        g.add_edge("a", "b", 1.0, EdgeKind::Explicit).unwrap();
        g.add_edge("a", "c", 0.5, EdgeKind::Similarity).unwrap();
        g.add_edge("b", "c", 0.5, EdgeKind::Explicit).unwrap();
        g.add_edge("c", "c", 2.0, EdgeKind::Explicit).unwrap();
        g
    }

    #[test]
    fn duplicate_keeps_larger_weight() {
        let mut g = tiny_graph();
        assert!(!g.add_edge("a", "b", 0.25, EdgeKind::Similarity).unwrap());
        assert_eq!(g.weight("a", "b"), Some(1.0));
        assert!(!g.add_edge("a", "b", 3.0, EdgeKind::Similarity).unwrap());
        assert_eq!(g.weight("a", "b"), Some(3.0));
        assert_eq!(g.neighbors("a").find(|(t, _)| *t == "b").unwrap().1.kind, EdgeKind::Similarity);
        assert_eq!(g.edge_count(), 4);
    }

    #[test]
    fn rejects_bad_weights() {
        let mut g = NeighborGraph::new();
        for w in [-1.0, f32::NAN, f32::INFINITY] {
            assert!(matches!(g.add_edge("a", "b", w, EdgeKind::Explicit), Err(GraphError::BadWeight { .. })));
        }
        assert_eq!(g.edge_count(), 0);
    }

    #[test]
    fn undirected_is_symmetric_with_max_weight() {
        let mut g = tiny_graph();
        g.add_edge("b", "a", 4.0, EdgeKind::Explicit).unwrap();
        assert!(!g.is_symmetric());
        g.make_undirected();
        assert!(g.is_symmetric());
        assert_eq!(g.weight("a", "b"), Some(4.0));
        assert_eq!(g.weight("c", "a"), Some(0.5));
        // a-b, a-c, b-c twice each, plus the self-loop once.
        assert_eq!(g.edge_count(), 7);
    }

    #[test]
    fn top_k_orders_by_weight_then_larger_id() {
        let mut g = NeighborGraph::new();
        for (t, w) in [("x", 0.5), ("z", 0.5), ("y", 0.9), ("w", 0.1)] {
            g.add_edge("s", t, w, EdgeKind::Explicit).unwrap();
        }
        let top: Vec<&str> = g.top_k("s", 3).into_iter().map(|(t, _)| t).collect();
        assert_eq!(top, ["y", "z", "x"]);
        assert_eq!(g.degree("s"), 4);
        assert_eq!(g.keep_top_k(1).edge_count(), 1); // only s→y survives
    }

    #[test]
    fn merge_unions_edges() {
        let mut g = tiny_graph();
        let mut h = NeighborGraph::new();
        h.add_edge("a", "b", 2.0, EdgeKind::Adversarial).unwrap();
        h.add_edge("d", "a", 1.0, EdgeKind::Adversarial).unwrap();
        g.merge(&h);
        assert_eq!(g.node_count(), 4);
        assert_eq!(g.edge_count(), 5);
        assert_eq!(g.weight("a", "b"), Some(2.0));
    }
}
