//! `nsl::build`: the graph builder against a plain O(N²) `f64` reference, LSH determinism, shards,
//! top-k and bad input (issue 3).

use ndarray::{Array2, ArrayView2};
use nsl::build::synthetic::gaussian_clusters;
use nsl::build::{BuildConfig, BuildError, GraphBuilder, RowEdge};
use nsl::graph::EdgeKind;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

// ------------------------------------------------------------------------------------ reference

/// Cosine similarity the plain way: `Σ x·y / sqrt(Σx² · Σy²)`, sequential `f64` sums.
fn cosine(x: ArrayView2<f32>, a: usize, b: usize) -> f64 {
    let (mut xy, mut xx, mut yy) = (0.0f64, 0.0f64, 0.0f64);
    for (&p, &q) in x.row(a).iter().zip(x.row(b)) {
        let (p, q) = (f64::from(p), f64::from(q));
        xy += p * q;
        xx += p * p;
        yy += q * q;
    }
    (xy / (xx * yy).sqrt()).clamp(-1.0, 1.0)
}

fn is_zero(x: ArrayView2<f32>, a: usize) -> bool {
    x.row(a).iter().all(|&v| v == 0.0)
}

/// Every directed edge `a → b` (a ≠ b, both non-zero) with cosine ≥ t, as a map to its weight.
fn brute_threshold(x: ArrayView2<f32>, t: f64) -> BTreeMap<(u32, u32), f32> {
    let n = x.nrows();
    let mut out = BTreeMap::new();
    for a in 0..n {
        for b in 0..n {
            if a != b && !is_zero(x, a) && !is_zero(x, b) {
                let s = cosine(x, a, b);
                if s >= t {
                    out.insert((a as u32, b as u32), s.max(0.0) as f32);
                }
            }
        }
    }
    out
}

/// Each node's k best (cosine ≥ t; ties to the smaller row), made symmetric.
fn brute_top_k(x: ArrayView2<f32>, k: usize, t: f64) -> BTreeMap<(u32, u32), f32> {
    let n = x.nrows();
    let mut out = BTreeMap::new();
    for a in 0..n {
        if is_zero(x, a) {
            continue;
        }
        let mut cands: Vec<(usize, f64)> =
            (0..n).filter(|&b| b != a && !is_zero(x, b)).map(|b| (b, cosine(x, a, b))).filter(|c| c.1 >= t).collect();
        cands.sort_by(|p, q| q.1.total_cmp(&p.1).then(p.0.cmp(&q.0)));
        for &(b, s) in cands.iter().take(k) {
            let w = s.max(0.0) as f32;
            out.insert((a as u32, b as u32), w);
            out.insert((b as u32, a as u32), w);
        }
    }
    out
}

fn as_map(edges: &[RowEdge]) -> BTreeMap<(u32, u32), f32> {
    let map: BTreeMap<(u32, u32), f32> = edges.iter().map(|e| ((e.source, e.target), e.weight)).collect();
    assert_eq!(map.len(), edges.len(), "repeated edges");
    map
}

fn edges(config: BuildConfig, x: ArrayView2<f32>) -> Vec<RowEdge> {
    let (e, report) = GraphBuilder::new(config).build_edges(x).unwrap();
    assert_eq!(report.directed_edges, e.len());
    // Sorted by source, then target.
    assert!(e.windows(2).all(|w| (w[0].source, w[0].target) < (w[1].source, w[1].target)));
    e
}

fn ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("n{i}")).collect()
}

// ------------------------------------------------------------------------------------ fixtures

/// 300 points in 6 tight clusters of dimension 16: many edges at every threshold.
fn clustered() -> Array2<f32> {
    gaussian_clusters(300, 16, 6, 1).0
}

/// 1,100 points (more than two 512-row blocks) of dimension 8.
fn multi_block() -> Array2<f32> {
    gaussian_clusters(1100, 8, 40, 2).0
}

/// Rows with four entries ±1 among 8: unit vectors with entries ±0.5 exactly, so every cosine is an
/// exact multiple of 0.25 and many pairs sit exactly on thresholds 0.25 and 0.5.
fn exact_ties() -> Array2<f32> {
    let mut rows = Vec::new();
    let mut code = 0u32;
    while rows.len() < 60 * 8 {
        code += 1;
        if (code & 0xff).count_ones() != 4 {
            continue;
        }
        for bit in 0..8 {
            let on = code >> bit & 1 == 1;
            let sign = if (code >> (8 + bit)) & 1 == 1 { -1.0 } else { 1.0 };
            rows.push(if on { sign } else { 0.0 });
        }
    }
    Array2::from_shape_vec((60, 8), rows).unwrap()
}

// ------------------------------------------------------------------------------------ exact mode

#[test]
fn exact_equals_brute_force_at_several_thresholds() {
    let x = clustered();
    for t in [-0.2, 0.0, 0.5, 0.8, 0.9, 0.97] {
        let got = as_map(&edges(BuildConfig { threshold: t, ..BuildConfig::default() }, x.view()));
        let want = brute_threshold(x.view(), t);
        assert!(!want.is_empty(), "fixture has no edge at {t}");
        assert_eq!(got, want, "threshold {t}");
    }
}

#[test]
fn exact_equals_brute_force_across_blocks() {
    let x = multi_block();
    let got = as_map(&edges(BuildConfig { threshold: 0.9, ..BuildConfig::default() }, x.view()));
    let want = brute_threshold(x.view(), 0.9);
    assert!(want.len() > 1000);
    assert_eq!(got, want);
}

#[test]
fn threshold_is_inclusive_at_exact_ties() {
    let x = exact_ties();
    for t in [0.25, 0.5, 0.75] {
        let want = brute_threshold(x.view(), t);
        let on_threshold = want.keys().filter(|&&(a, b)| cosine(x.view(), a as usize, b as usize) == t).count();
        assert!(on_threshold > 0, "no pair exactly at {t}");
        let got = as_map(&edges(BuildConfig { threshold: t, ..BuildConfig::default() }, x.view()));
        assert_eq!(got, want, "threshold {t}");
    }
}

#[test]
fn duplicates_reach_threshold_one() {
    let mut x = gaussian_clusters(50, 12, 50, 3).0;
    // Row 10 repeats row 3; row 20 is row 3 doubled (same direction): both have cosine exactly 1.
    let r3 = x.row(3).to_owned();
    x.row_mut(10).assign(&r3);
    x.row_mut(20).assign(&(&r3 * 2.0));
    let got = as_map(&edges(BuildConfig { threshold: 1.0, ..BuildConfig::default() }, x.view()));
    let want: BTreeMap<(u32, u32), f32> =
        [(3, 10), (3, 20), (10, 3), (10, 20), (20, 3), (20, 10)].into_iter().map(|e| (e, 1.0)).collect();
    assert_eq!(got, want);
    assert_eq!(got, brute_threshold(x.view(), 1.0));
}

#[test]
fn graph_has_every_node_both_directions_and_similarity_edges() {
    let x = clustered();
    let names = ids(300);
    let (g, report) =
        GraphBuilder::new(BuildConfig { threshold: 0.9, ..BuildConfig::default() }).build(&names, x.view()).unwrap();
    let want = brute_threshold(x.view(), 0.9);
    assert_eq!(g.node_count(), 300);
    assert_eq!(g.ids(), &names[..]);
    assert_eq!(g.edge_count(), want.len());
    assert_eq!(report.edges * 2, want.len());
    assert!(g.is_symmetric());
    for ((a, b), w) in &want {
        assert_eq!(g.weight(&names[*a as usize], &names[*b as usize]), Some(*w));
    }
    assert!(g.edges().all(|(s, t, e)| s != t && e.kind == EdgeKind::Similarity));
    assert!((report.mean_degree - want.len() as f64 / 300.0).abs() < 1e-12);
}

#[test]
fn non_contiguous_input_gives_the_same_edges() {
    let x = clustered();
    let xt = x.t().as_standard_layout().into_owned(); // 16 × 300, row-major
    let view = xt.t(); // 300 × 16, column-major view
    assert!(view.as_slice().is_none());
    let c = BuildConfig { threshold: 0.8, ..BuildConfig::default() };
    assert_eq!(edges(c.clone(), view), edges(c, x.view()));
}

#[test]
fn zero_vectors_are_skipped_and_counted() {
    let mut x = clustered();
    x.row_mut(5).fill(0.0);
    x.row_mut(77).fill(0.0);
    // Threshold -1: every other pair is an edge, but none touches a zero vector.
    let (e, report) =
        GraphBuilder::new(BuildConfig { threshold: -1.0, ..BuildConfig::default() }).build_edges(x.view()).unwrap();
    assert_eq!(report.skipped_zero_vectors, 2);
    assert_eq!(e.len(), 298 * 297);
    assert!(e.iter().all(|e| ![5, 77].contains(&e.source) && ![5, 77].contains(&e.target)));
    // Negative cosines are stored as weight 0 and counted (once per undirected link).
    assert!(report.negative_weights_clamped > 0);
    assert_eq!(report.negative_weights_clamped * 2, e.iter().filter(|e| e.weight == 0.0).count());
}

// ------------------------------------------------------------------------------------ LSH

fn lsh(splits: u32, rounds: u32, seed: u64) -> BuildConfig {
    BuildConfig { threshold: 0.8, lsh_splits: splits, lsh_rounds: rounds, seed, ..BuildConfig::default() }
}

#[test]
fn lsh_is_deterministic_across_runs_and_thread_counts() {
    let x = multi_block();
    let one = edges(BuildConfig { threads: Some(1), ..lsh(3, 2, 7) }, x.view());
    let two = edges(BuildConfig { threads: Some(2), ..lsh(3, 2, 7) }, x.view());
    assert_eq!(one, two);
    // Also inside a caller's own pool (threads: None uses the current pool).
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    let three = pool.install(|| edges(lsh(3, 2, 7), x.view()));
    assert_eq!(one, three);
    assert_eq!(one, edges(lsh(3, 2, 7), x.view()));
    assert_ne!(one, edges(lsh(3, 2, 8), x.view()), "another seed should move some buckets");
}

#[test]
fn lsh_finds_a_subset_of_exact_and_more_rounds_find_more() {
    let x = multi_block();
    let exact = brute_threshold(x.view(), 0.8);
    let mut previous = 0;
    for rounds in [1, 3, 8] {
        let got = as_map(&edges(lsh(4, rounds, 1), x.view()));
        for (e, w) in &got {
            assert_eq!(exact.get(e), Some(w), "LSH edge {e:?} is not an exact edge");
        }
        assert!(got.len() >= previous);
        previous = got.len();
    }
    assert!(previous < exact.len(), "4 splits should miss some edges");
    assert!(previous as f64 > 0.9 * exact.len() as f64, "8 rounds found only {previous} of {}", exact.len());
}

#[test]
fn recall_estimate_on_every_node_is_the_true_recall() {
    let x = multi_block();
    let exact = brute_threshold(x.view(), 0.8).len();
    let (e, report) =
        GraphBuilder::new(BuildConfig { recall_sample: Some(5000), ..lsh(4, 2, 1) }).build_edges(x.view()).unwrap();
    let rec = report.recall.unwrap();
    assert_eq!(rec.sampled_nodes, 1100);
    assert_eq!(rec.exact_edges as usize, exact);
    assert_eq!(rec.found_edges as usize, e.len());
    assert_eq!(report.estimated_recall, Some(e.len() as f64 / exact as f64));
    // Exact mode on a sample: recall 1.
    let (_, report) =
        GraphBuilder::new(BuildConfig { threshold: 0.8, recall_sample: Some(50), ..BuildConfig::default() })
            .build_edges(x.view())
            .unwrap();
    assert_eq!(report.estimated_recall, Some(1.0));
    assert_eq!(report.recall.unwrap().sampled_nodes, 50);
}

// ------------------------------------------------------------------------------------ top-k

#[test]
fn top_k_equals_brute_force() {
    let x = clustered();
    for (k, t) in [(1, -1.0), (5, -1.0), (5, 0.9), (40, 0.5)] {
        let got = as_map(&edges(BuildConfig { top_k: Some(k), threshold: t, ..BuildConfig::default() }, x.view()));
        assert_eq!(got, brute_top_k(x.view(), k, t), "k {k}, threshold {t}");
    }
    let x = multi_block();
    let got = as_map(&edges(BuildConfig { top_k: Some(3), threshold: -1.0, ..BuildConfig::default() }, x.view()));
    assert_eq!(got, brute_top_k(x.view(), 3, -1.0));
}

#[test]
fn top_k_breaks_ties_by_row() {
    // Exact ties everywhere: the smaller row wins.
    let x = exact_ties();
    for k in [1, 2, 7] {
        let got = as_map(&edges(BuildConfig { top_k: Some(k), threshold: 0.0, ..BuildConfig::default() }, x.view()));
        assert_eq!(got, brute_top_k(x.view(), k, 0.0), "k {k}");
    }
}

#[test]
fn lsh_top_k_is_deterministic_and_recall_is_measured() {
    let x = multi_block();
    let c = BuildConfig { top_k: Some(4), recall_sample: Some(200), ..lsh(3, 3, 5) };
    let (a, ra) = GraphBuilder::new(BuildConfig { threads: Some(1), ..c.clone() }).build_edges(x.view()).unwrap();
    let (b, rb) = GraphBuilder::new(BuildConfig { threads: Some(2), ..c }).build_edges(x.view()).unwrap();
    assert_eq!(a, b);
    assert_eq!(ra.recall, rb.recall);
    let r = ra.estimated_recall.unwrap();
    assert!(r > 0.5 && r <= 1.0, "recall {r}");
}

// ------------------------------------------------------------------------------------ shards

fn check_shards(config: BuildConfig, x: ArrayView2<f32>, names: &[String]) {
    let whole = edges(config.clone(), x);
    assert!(!whole.is_empty());
    let (graph, _) = GraphBuilder::new(config.clone()).build(names, x).unwrap();
    for count in [1, 3, 4] {
        let mut concat = Vec::new();
        let mut merged = nsl::NeighborGraph::new();
        for i in 0..count {
            let c = BuildConfig { shard: Some((i, count)), ..config.clone() };
            let part = edges(c.clone(), x);
            let rows = nsl::build::shard_range(x.nrows(), i, count);
            assert!(part.iter().all(|e| rows.contains(&(e.source as usize))));
            concat.extend(part);
            merged.merge(&GraphBuilder::new(c).build(names, x).unwrap().0);
        }
        assert_eq!(concat, whole, "{count} shards of {config:?}");
        let sorted = |g: &nsl::NeighborGraph| {
            let mut e: Vec<(String, String, u32)> =
                g.edges().map(|(s, t, e)| (s.to_string(), t.to_string(), e.weight.to_bits())).collect();
            e.sort();
            e
        };
        assert_eq!(sorted(&merged), sorted(&graph));
        assert_eq!(merged.node_count(), graph.node_count());
    }
}

#[test]
fn shards_concatenate_to_the_whole_graph() {
    let x = multi_block();
    let names = ids(x.nrows());
    check_shards(BuildConfig { threshold: 0.85, ..BuildConfig::default() }, x.view(), &names);
    check_shards(lsh(3, 2, 4), x.view(), &names);
    check_shards(BuildConfig { top_k: Some(3), threshold: -1.0, ..BuildConfig::default() }, x.view(), &names);
    check_shards(BuildConfig { top_k: Some(2), ..lsh(3, 2, 4) }, x.view(), &names);
}

// ------------------------------------------------------------------------------------ progress

#[test]
fn progress_reaches_the_total() {
    let x = multi_block();
    let last = Arc::new(AtomicU64::new(0));
    let total = Arc::new(AtomicU64::new(0));
    let (l, t) = (last.clone(), total.clone());
    let builder = GraphBuilder::new(BuildConfig { threshold: 0.9, ..BuildConfig::default() }).on_progress(move |p| {
        l.fetch_max(p.done, Ordering::Relaxed);
        t.store(p.total, Ordering::Relaxed);
    });
    builder.build_edges(x.view()).unwrap();
    assert_eq!(total.load(Ordering::Relaxed), 1100 * 1099 / 2);
    assert_eq!(last.load(Ordering::Relaxed), 1100 * 1099 / 2);
}

// ------------------------------------------------------------------------------------ bad input

#[test]
fn bad_input_is_a_typed_error() {
    let x = clustered();
    let names = ids(300);
    let build = |c: BuildConfig, names: &[String], x: ArrayView2<f32>| GraphBuilder::new(c).build(names, x).map(|_| ());
    let d = BuildConfig::default;

    let mut bad = x.clone();
    bad[[42, 3]] = f32::NAN;
    match build(d(), &names, bad.view()) {
        Err(e @ BuildError::NotFinite { row: 42, column: 3, .. }) => assert!(e.to_string().contains("`n42`"), "{e}"),
        other => panic!("NaN: {other:?}"),
    }
    bad[[42, 3]] = f32::NEG_INFINITY;
    assert!(matches!(build(d(), &names, bad.view()), Err(BuildError::NotFinite { row: 42, .. })));

    let mut dup = names.clone();
    dup[200] = "n7".into();
    match build(d(), &dup, x.view()) {
        Err(BuildError::DuplicateId { id, first: 7, second: 200 }) => assert_eq!(id, "n7"),
        other => panic!("duplicate: {other:?}"),
    }
    assert!(matches!(build(d(), &names[..299], x.view()), Err(BuildError::IdCount { ids: 299, rows: 300 })));
    assert!(matches!(build(d(), &[], Array2::<f32>::zeros((0, 4)).view()), Err(BuildError::Empty)));
    assert!(matches!(
        build(d(), &names[..2], Array2::<f32>::zeros((2, 0)).view()),
        Err(BuildError::NoDimensions { .. })
    ));
    for (c, option) in [
        (BuildConfig { threshold: 1.01, ..d() }, "threshold"),
        (BuildConfig { threshold: -1.5, ..d() }, "threshold"),
        (BuildConfig { lsh_splits: 64, ..d() }, "lsh_splits"),
        (BuildConfig { top_k: Some(0), ..d() }, "top_k"),
        (BuildConfig { shard: Some((3, 3)), ..d() }, "shard"),
        (BuildConfig { threads: Some(0), ..d() }, "threads"),
    ] {
        match build(c, &names, x.view()) {
            Err(e @ BuildError::InvalidConfig { .. }) => assert!(e.to_string().contains(option), "{e}"),
            other => panic!("{option}: {other:?}"),
        }
    }
}

#[test]
fn all_zero_input_gives_isolated_nodes() {
    let x = Array2::<f32>::zeros((4, 3));
    let (g, report) = GraphBuilder::new(BuildConfig::default()).build(&ids(4), x.view()).unwrap();
    assert_eq!((g.node_count(), g.edge_count(), report.skipped_zero_vectors), (4, 0, 4));
}
