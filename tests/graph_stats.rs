//! Graph statistics on a hand-computed fixture and on Cora (reference values from networkx), and
//! the normalized Laplacian spectrum (feature `linalg`) on graphs with known spectra.

use nsl::graph::{graph_stats, DegreeBucket, GraphStats, Homophily, KindCounts, SampleInfo, SampleStats, Summary};
use nsl::graph::{read_cites, UnknownIds};
use nsl::graph::{EdgeKind, NeighborGraph};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Nodes a, b, c, d, e, f (f isolated) and 5 edges:
/// a→b 1 explicit, b→a 1 explicit, b→c 0.5 similarity, c→c 2 explicit (self-loop), d→e 0.25 adversarial.
fn fixture_graph() -> NeighborGraph {
    let mut g = NeighborGraph::new();
    g.add_edge("a", "b", 1.0, EdgeKind::Explicit).unwrap();
    g.add_edge("b", "a", 1.0, EdgeKind::Explicit).unwrap();
    g.add_edge("b", "c", 0.5, EdgeKind::Similarity).unwrap();
    g.add_edge("c", "c", 2.0, EdgeKind::Explicit).unwrap();
    g.add_edge("d", "e", 0.25, EdgeKind::Adversarial).unwrap();
    g.add_node("f");
    g
}

/// Samples a, b, c, d, x, f with labels 0, 0, 1, 1, 2, 0 (x is not in the graph, e is not a sample).
fn fixture_samples() -> (Vec<String>, Vec<u32>) {
    (["a", "b", "c", "d", "x", "f"].map(String::from).to_vec(), vec![0, 0, 1, 1, 2, 0])
}

/// The statistics of [`fixture_graph`] with [`fixture_samples`], by hand:
/// - links {a,b}, {b,c}, {c,c}, {d,e} = 4;
/// - out-degrees a 1, b 2, c 1, d 1, e 0, f 0 → sorted 0 0 1 1 1 2: median (1+1)/2 = 1, mean 5/6;
///   histogram 0: e, f; 1: a, c, d; 2–3: b;
/// - weights 0.25 0.5 1 1 2: median 1, mean 4.75/5 = 0.95;
/// - components {a,b,c}, {d,e}, {f};
/// - isolated samples x (absent), f (no edge); non-sample nodes e;
/// - homophily over a→b (0,0), b→a (0,0), b→c (0,1); c→c is a self-loop and d→e has an unlabeled
///   end: 2 of 3.
fn fixture_expected() -> GraphStats {
    GraphStats {
        nodes: 6,
        edges: 5,
        links: 4,
        symmetric: false,
        edges_by_kind: KindCounts { explicit: 3, similarity: 1, adversarial: 1 },
        self_loops: 1,
        out_degree: Some(Summary { min: 0.0, median: 1.0, mean: 5.0 / 6.0, max: 2.0 }),
        degree_histogram: vec![
            DegreeBucket { min: 0, max: 0, nodes: 2 },
            DegreeBucket { min: 1, max: 1, nodes: 3 },
            DegreeBucket { min: 2, max: 3, nodes: 1 },
        ],
        weight: Some(Summary { min: 0.25, median: 1.0, mean: 0.95, max: 2.0 }),
        components: 3,
        largest_component: 3,
        samples: Some(SampleStats {
            samples: 6,
            isolated_samples: 2,
            non_sample_nodes: 1,
            homophily: Some(Homophily { edges: 3, same_label: 2, ratio: Some(2.0 / 3.0) }),
        }),
        spectrum: None,
    }
}

#[test]
fn fixture_statistics() {
    let (ids, labels) = fixture_samples();
    let stats = graph_stats(&fixture_graph(), Some(&SampleInfo { ids: &ids, labels: Some(&labels) }));
    assert_eq!(stats, fixture_expected());
}

#[test]
fn fixture_without_labels_or_samples() {
    let (ids, _) = fixture_samples();
    let stats = graph_stats(&fixture_graph(), Some(&SampleInfo { ids: &ids, labels: None }));
    let samples = stats.samples.unwrap();
    assert_eq!((samples.isolated_samples, samples.non_sample_nodes), (2, 1));
    assert!(samples.homophily.is_none());
    assert!(graph_stats(&fixture_graph(), None).samples.is_none());
}

#[test]
fn symmetric_links_formula() {
    let mut g = fixture_graph();
    g.make_undirected();
    let s = graph_stats(&g, None);
    assert!(s.symmetric);
    // a↔b, b↔c, d↔e twice each plus the self-loop once.
    assert_eq!(s.edges, 7);
    assert_eq!(s.links, (s.edges - s.self_loops) / 2 + s.self_loops);
    assert_eq!(s.links, 4);
}

#[test]
fn empty_graph_statistics() {
    let s = graph_stats(&NeighborGraph::new(), None);
    assert_eq!((s.nodes, s.edges, s.links, s.components, s.largest_component), (0, 0, 0, 0, 0));
    assert!(s.out_degree.is_none() && s.weight.is_none() && s.degree_histogram.is_empty());
    assert!(s.to_string().contains("nodes            0"));
}

#[test]
fn report_and_json() {
    let (ids, labels) = fixture_samples();
    let stats = graph_stats(&fixture_graph(), Some(&SampleInfo { ids: &ids, labels: Some(&labels) }));
    let report = stats.to_string();
    for part in [
        "nodes            6",
        "links            4",
        "explicit 3, similarity 1, adversarial 1",
        "components       3 (largest 3 nodes, 50.0%)",
        "edge homophily   0.6667 (2 of 3 labeled edges join the same label)",
        "isolated samples 2 (33.3%)",
    ] {
        assert!(report.contains(part), "`{part}` missing from:\n{report}");
    }
    let json = serde_json::to_value(&stats).unwrap();
    assert_eq!(json["edges_by_kind"]["similarity"], 1);
    assert_eq!(json["degree_histogram"][2]["max"], 3);
    assert_eq!(json["samples"]["homophily"]["same_label"], 2);
}

/// `datasets/cora/…`.
fn cora(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/cora").join(file)
}

/// The Cora graph (undirected, from `cora.cites.gz`).
fn cora_graph() -> NeighborGraph {
    read_cites(&cora("cora.cites.gz"), &|_| true, UnknownIds::Error).unwrap().0
}

/// Ids and labels of `cora.content.gz` (`class_k` → k), read independently of `nsl::data`.
fn cora_samples() -> (Vec<String>, Vec<u32>) {
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(cora("cora.content.gz")).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    text.lines()
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            (cols[0].to_owned(), cols[cols.len() - 1].strip_prefix("class_").unwrap().parse::<u32>().unwrap())
        })
        .unzip()
}

/// Reference values from networkx 3.6.1:
/// ```python
/// G = nx.Graph(); [G.add_edge(*l.split()) for l in gzip.open('cora.cites.gz', 'rt')]
/// G.number_of_nodes(), G.number_of_edges()              # 2708, 5278
/// cc = list(nx.connected_components(G)); len(cc), max(map(len, cc))   # 78, 2485
/// deg = sorted(d for _, d in G.degree())               # min 1, median 3.0, mean 3.8980797636632203, max 168
/// Counter(d.bit_length() for d in deg)                 # {1: 485, 2: 1136, 3: 883, 4: 157, 5: 35, 6: 8, 7: 3, 8: 1}
/// sum(labels[a] == labels[b] for a, b in G.edges())    # 4275 of 5278 links
/// ```
#[test]
fn cora_statistics() {
    let g = cora_graph();
    let (ids, labels) = cora_samples();
    let s = graph_stats(&g, Some(&SampleInfo { ids: &ids, labels: Some(&labels) }));
    assert_eq!((s.nodes, s.edges, s.links, s.self_loops), (2_708, 10_556, 5_278, 0));
    assert!(s.symmetric);
    assert_eq!(s.edges_by_kind, KindCounts { explicit: 10_556, similarity: 0, adversarial: 0 });
    assert_eq!((s.components, s.largest_component), (78, 2_485));
    let d = s.out_degree.unwrap();
    assert_eq!((d.min, d.median, d.max), (1.0, 3.0, 168.0));
    assert!((d.mean - 3.898_079_763_663_220_3).abs() < 1e-12);
    let histogram: Vec<usize> = s.degree_histogram.iter().map(|b| b.nodes).collect();
    assert_eq!(histogram, [0, 485, 1_136, 883, 157, 35, 8, 3, 1]);
    let w = s.weight.unwrap();
    assert_eq!((w.min, w.max), (1.0, 1.0));
    let samples = s.samples.unwrap();
    assert_eq!((samples.samples, samples.isolated_samples, samples.non_sample_nodes), (2_708, 0, 0));
    // Directed edges: both directions of each link.
    let h = samples.homophily.unwrap();
    assert_eq!((h.edges, h.same_label), (10_556, 2 * 4_275));
    assert!((h.ratio.unwrap() - 4_275.0 / 5_278.0).abs() < 1e-12);
}

/// An independent component count (breadth-first search over undirected neighbors) to check the
/// union-find in `graph_stats` on a random graph.
fn bfs_components(g: &NeighborGraph) -> (usize, usize) {
    let mut adjacency: std::collections::HashMap<&str, Vec<&str>> = std::collections::HashMap::new();
    for (s, t, _) in g.edges() {
        adjacency.entry(s).or_default().push(t);
        adjacency.entry(t).or_default().push(s);
    }
    let mut seen = std::collections::HashSet::new();
    let (mut count, mut largest) = (0, 0);
    for id in g.ids() {
        if !seen.insert(id.as_str()) {
            continue;
        }
        count += 1;
        let mut queue = std::collections::VecDeque::from([id.as_str()]);
        let mut size = 0;
        while let Some(n) = queue.pop_front() {
            size += 1;
            for &m in adjacency.get(n).into_iter().flatten() {
                if seen.insert(m) {
                    queue.push_back(m);
                }
            }
        }
        largest = largest.max(size);
    }
    (count, largest)
}

#[test]
fn components_match_breadth_first_search() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let mut g = NeighborGraph::new();
    for i in 0..400 {
        g.add_node(&format!("n{i}"));
    }
    for _ in 0..300 {
        let (s, t) = (rng.random_range(0..400), rng.random_range(0..400));
        g.add_edge(&format!("n{s}"), &format!("n{t}"), 1.0, EdgeKind::Explicit).unwrap();
    }
    let s = graph_stats(&g, None);
    assert_eq!((s.components, s.largest_component), bfs_components(&g));
    assert!(s.components > 1 && s.largest_component > 1);
}

#[cfg(feature = "linalg")]
mod spectral {
    use super::*;
    use nsl::graph::with_spectrum;
    use nsl::graph::{laplacian_spectrum, normalized_laplacian, MAX_NODES};

    fn assert_close(got: &[f64], want: &[f64]) {
        assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-10, "{got:?} vs {want:?}");
        }
    }

    fn undirected(links: &[(&str, &str)]) -> NeighborGraph {
        let mut g = NeighborGraph::new();
        for (a, b) in links {
            g.add_edge(a, b, 1.0, EdgeKind::Explicit).unwrap();
        }
        g.make_undirected();
        g
    }

    /// The path 0-1-2-3-4: the normalized Laplacian of the path P_n has eigenvalues
    /// `1 − cos(πk/(n−1))`, k = 0..n−1 (Chung, Spectral Graph Theory, §1.2).
    #[test]
    fn path_graph() {
        let g = undirected(&[("0", "1"), ("1", "2"), ("2", "3"), ("3", "4")]);
        let want: Vec<f64> = (0..5).map(|k| 1.0 - (std::f64::consts::PI * k as f64 / 4.0).cos()).collect();
        assert_close(&laplacian_spectrum(&g, 10).unwrap(), &want);
        assert_close(&laplacian_spectrum(&g, 2).unwrap(), &want[..2]);
    }

    /// K3 has normalized Laplacian eigenvalues 0, 3/2, 3/2 (`1 + 1/(n−1)` for K_n); two disjoint
    /// triangles have each twice.
    #[test]
    fn two_triangles() {
        let g = undirected(&[("a", "b"), ("b", "c"), ("c", "a"), ("x", "y"), ("y", "z"), ("z", "x")]);
        assert_close(&laplacian_spectrum(&g, 6).unwrap(), &[0.0, 0.0, 1.5, 1.5, 1.5, 1.5]);
        let s = with_spectrum(graph_stats(&g, None), &g, 3).unwrap();
        let spectrum = s.spectrum.as_ref().unwrap();
        assert_eq!(spectrum.zero_eigenvalues, 2);
        assert_eq!(spectrum.zero_eigenvalues, s.components);
        assert!((spectrum.spectral_gap.unwrap() - 1.5).abs() < 1e-10);
        assert_eq!(spectrum.smallest.len(), 3);
        assert!(s.to_string().contains("zero eigenvalues 2, spectral gap 1.500000"));
    }

    /// Weights matter and the matrix is symmetric: a weighted path a -2- b -1- c has
    /// `L = [[1, −2/√6, 0], [−2/√6, 1, −1/√3], [0, −1/√3, 1]]`, whose eigenvalues are 0, 1, 2
    /// (a bipartite connected graph: 0 and 2; the trace 3 leaves 1).
    #[test]
    fn weighted_path_and_directed_input() {
        let mut g = NeighborGraph::new();
        // Directed input: the undirected version takes the larger weight of the two directions.
        g.add_edge("a", "b", 2.0, EdgeKind::Explicit).unwrap();
        g.add_edge("b", "a", 0.5, EdgeKind::Explicit).unwrap();
        g.add_edge("c", "b", 1.0, EdgeKind::Explicit).unwrap();
        let l = normalized_laplacian(&g).unwrap();
        assert!((l[[0, 1]] + 2.0 / 6f64.sqrt()).abs() < 1e-12);
        assert_eq!(l[[0, 1]], l[[1, 0]]);
        assert_close(&laplacian_spectrum(&g, 3).unwrap(), &[0.0, 1.0, 2.0]);
    }

    /// An isolated node contributes eigenvalue 1 (not 0) and is not a zero-eigenvalue component.
    #[test]
    fn isolated_node_convention() {
        let mut g = undirected(&[("a", "b")]);
        g.add_node("lonely");
        assert_close(&laplacian_spectrum(&g, 3).unwrap(), &[0.0, 1.0, 2.0]);
        let s = with_spectrum(graph_stats(&g, None), &g, 3).unwrap();
        assert_eq!(s.components, 2);
        assert_eq!(s.spectrum.unwrap().zero_eigenvalues, 1);
    }

    /// A seeded random graph with many components (isolated nodes, a self-loop-only node and
    /// positive weights): the zero eigenvalues are the components that have an edge.
    #[test]
    fn zero_eigenvalues_count_components() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let mut g = NeighborGraph::new();
        for i in 0..300 {
            g.add_node(&format!("n{i}"));
        }
        for _ in 0..200 {
            let (s, t) = (rng.random_range(0..300), rng.random_range(0..300));
            let w = rng.random_range(0.1f32..2.0);
            g.add_edge(&format!("n{s}"), &format!("n{t}"), w, EdgeKind::Explicit).unwrap();
        }
        g.add_edge("loop", "loop", 1.0, EdgeKind::Explicit).unwrap();
        let s = with_spectrum(graph_stats(&g, None), &g, 20).unwrap();
        let spectrum = s.spectrum.as_ref().unwrap();
        // Nodes without any edge, in or out.
        let isolated =
            g.ids().iter().filter(|id| g.degree(id) == 0 && !g.edges().any(|(_, t, _)| t == id.as_str())).count();
        assert!(isolated > 10, "{isolated}");
        assert_eq!(spectrum.zero_eigenvalues, s.components - isolated);
        assert_eq!(spectrum.smallest.len(), 20);
        assert!(spectrum.smallest.windows(2).all(|w| w[0] <= w[1]));
    }

    /// Cora: 78 components, so 78 zero eigenvalues. Slow (a dense 2,708² eigenproblem: about
    /// 45 s on a busy 2-core machine): `cargo test --features linalg --test graph_stats -- --ignored`.
    #[test]
    #[ignore = "slow: dense eigenvalues of a 2,708-node graph"]
    fn zero_eigenvalues_count_cora_components() {
        let g = cora_graph();
        let s = with_spectrum(graph_stats(&g, None), &g, 100).unwrap();
        let spectrum = s.spectrum.unwrap();
        assert_eq!(spectrum.zero_eigenvalues, 78);
        assert_eq!(spectrum.zero_eigenvalues, s.components);
        assert_eq!(spectrum.smallest.len(), 100);
        let gap = spectrum.spectral_gap.unwrap();
        assert!(gap > 1e-8 && gap < 1.0, "{gap}");
    }

    #[test]
    fn refuses_large_graphs() {
        let mut g = NeighborGraph::new();
        for i in 0..=MAX_NODES {
            g.add_node(&i.to_string());
        }
        let err = laplacian_spectrum(&g, 2).unwrap_err().to_string();
        assert!(err.contains("5000") && err.contains("5001"), "{err}");
    }
}
