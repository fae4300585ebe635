//! Graph tools for few labels (issue 11): feature propagation (`nsl graph propagate`), r-hop
//! neighbor graphs (`nsl graph hops`) and splits from an `id<TAB>split` table (`nsl split
//! --split-table`), in the library and end to end.

use ndarray::{array, Array2};
use nsl::data::{self, Dataset, SampleColumns};
use nsl::data::{split_by_table, TablePart};
use nsl::graph::{self, EdgeKind, NeighborGraph};
use nsl::neighbors::{propagate, propagate_with_report, PropagateConfig, PropagateError, PropagateMode};
use std::path::{Path, PathBuf};

mod common;
use common::{fails_with, ok, s, write};

// ---- fixtures ------------------------------------------------------------------------------

/// `1/√6`, the weight of a link of the path graph in `Â`.
fn r6() -> f32 {
    1.0 / 6f32.sqrt()
}

/// Samples a, b, c (the path a - b - c) and a lone e; features `[[1, 0], [0, 1], [0, 0], [2, 4]]`.
fn path_samples() -> Dataset {
    let ids = ["a", "b", "c", "e"].map(String::from).to_vec();
    let names = Some(vec!["even".to_string(), "odd".to_string()]);
    Dataset::new(ids, array![[1.0f32, 0.0], [0.0, 1.0], [0.0, 0.0], [2.0, 4.0]], vec![2], Some(vec![0, 1, 0, 1]), names)
        .unwrap()
}

/// The path a - b - c, given in one direction only (propagation symmetrizes it).
fn path_graph() -> NeighborGraph {
    let mut g = NeighborGraph::new();
    g.add_edge("a", "b", 1.0, EdgeKind::Explicit).unwrap();
    g.add_edge("b", "c", 1.0, EdgeKind::Explicit).unwrap();
    g
}

/// `Â` of the path: degrees of `A + I` are 2, 3, 2.
fn a_hat() -> Array2<f32> {
    let r = r6();
    array![[0.5, r, 0.0], [r, 1.0 / 3.0, r], [0.0, r, 0.5]]
}

#[track_caller]
fn assert_close(actual: ndarray::ArrayView2<'_, f32>, expected: ndarray::ArrayView2<'_, f32>) {
    assert_eq!(actual.shape(), expected.shape());
    for (a, e) in actual.iter().zip(expected.iter()) {
        assert!((a - e).abs() < 1e-6, "{actual} != {expected}");
    }
}

/// The tiny samples as a CSV and the path graph as NSL TSV, in `dir`.
fn tiny_files(dir: &Path) -> (PathBuf, PathBuf) {
    let samples = write(dir, "tiny.csv", "id,f0,f1,label\na,1,0,even\nb,0,1,odd\nc,0,0,even\ne,2,4,odd\n");
    let graph = write(dir, "path.tsv", "a\tb\nb\tc\n");
    (samples, graph)
}

// ---- propagation ------------------------------------------------------------------------------

#[test]
fn sgc_matches_hand_computed_powers() {
    let ds = path_samples();
    let x = array![[1.0f32, 0.0], [0.0, 1.0], [0.0, 0.0]];
    // Â·X and Â²·X by hand; Â² = [[5/12, 5/(6√6), 1/6], [5/(6√6), 4/9, 5/(6√6)], [1/6, 5/(6√6), 5/12]].
    let q = 5.0 * r6() / 6.0;
    let a2 = array![[5.0 / 12.0, q, 1.0 / 6.0], [q, 4.0 / 9.0, q], [1.0 / 6.0, q, 5.0 / 12.0]];
    for (hops, power) in [(1, a_hat()), (2, a2)] {
        let (out, report) =
            propagate_with_report(&ds, &path_graph(), &PropagateConfig { hops, ..Default::default() }).unwrap();
        let f = out.features();
        assert_close(f.slice(ndarray::s![..3, ..]), power.dot(&x).view());
        assert_eq!(f.row(3).to_vec(), [2.0, 4.0], "a sample without edges keeps its features");
        assert_eq!(report.isolated_samples, 1);
        assert_eq!(report.asymmetric_edges, 2, "a→b and b→c have no reverse");
    }
    let out = propagate(&ds, &path_graph(), &PropagateConfig::default()).unwrap();
    assert_eq!((out.ids(), out.labels(), out.class_names()), (ds.ids(), ds.labels(), ds.class_names()));
}

#[test]
fn sign_concatenates_x_and_each_power() {
    let ds = path_samples();
    let cfg = PropagateConfig { hops: 3, mode: PropagateMode::Sign, ..Default::default() };
    let out = propagate(&ds, &path_graph(), &cfg).unwrap();
    assert_eq!((out.len(), out.dim(), out.item_shape()), (4, 8, &[8][..]));
    let f = out.features();
    assert_eq!(f.slice(ndarray::s![.., 0..2]), ds.features());
    for hops in 1..=3 {
        let sgc = propagate(&ds, &path_graph(), &PropagateConfig { hops, ..Default::default() }).unwrap();
        assert_close(f.slice(ndarray::s![.., 2 * hops..2 * hops + 2]), sgc.features());
    }
}

#[test]
fn propagation_config_is_validated() {
    let e = propagate(&path_samples(), &path_graph(), &PropagateConfig { hops: 0, ..Default::default() });
    let e = e.unwrap_err();
    assert!(matches!(e, PropagateError::InvalidConfig { option: "hops", .. }));
    assert_eq!(e.to_string(), "invalid hops `0`: expected an integer from 1 to 64");
}

// ---- r-hop neighbors -------------------------------------------------------------------------

#[test]
fn multi_hop_weights_are_sums_of_powers() {
    let mut g = path_graph();
    g.make_undirected();
    let h = g.multi_hop(2, usize::MAX).unwrap();
    // (Â + Â²)_ab = 1/√6 + 5/(6√6); (Â + Â²)_ac = 0 + 1/6; no self-loops.
    let ab = r6() + 5.0 * r6() / 6.0;
    for (s, t, w) in [("a", "b", ab), ("b", "a", ab), ("b", "c", ab), ("a", "c", 1.0 / 6.0), ("c", "a", 1.0 / 6.0)] {
        assert!((h.weight(s, t).unwrap() - w).abs() < 1e-6, "{s}→{t}");
    }
    assert_eq!(h.edge_count(), 6);
    assert_eq!(h.weight("b", "b"), None);
    // Top 1 of a: b (heavier than c).
    assert_eq!(g.multi_hop(2, 1).unwrap().top_k("a", 5).iter().map(|(t, _)| *t).collect::<Vec<_>>(), ["b"]);
    assert!(g.multi_hop(2, 0).is_err());
}

// ---- splits from a table ----------------------------------------------------------------------

#[test]
fn split_table_errors_name_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let ds = path_samples();
    let cases = [
        ("id\tsplit\na\ttrain\nb\tdev\n", "line 3, column 2: unknown split `dev`"),
        ("a\ttrain\nzz\ttest\n", "line 2, column 1: id `zz` is not among the 4 samples"),
        ("a\ttrain\nb\ttest\n\nb\tval\n", "line 4, column 1: id `b` is listed twice (first on line 2)"),
        ("a\ttrain\textra\n", "line 1: expected `id<TAB>split`, found 3 tab-separated fields"),
    ];
    for (i, (text, message)) in cases.into_iter().enumerate() {
        let path = write(dir.path(), &format!("bad{i}.tsv"), text);
        let e = split_by_table(&ds, &path).unwrap_err().to_string();
        assert!(e.starts_with(&format!("{}: {message}", path.display())), "{e}");
    }
    let missing = dir.path().join("missing.tsv");
    assert!(split_by_table(&ds, &missing).unwrap_err().to_string().contains("missing.tsv"));
}

#[test]
fn split_table_parts_on_planetoid_cora() {
    let cora = data::read_content(Path::new("datasets/cora/cora.content.gz")).unwrap();
    let parts = split_by_table(&cora, Path::new("datasets/cora/cora.planetoid_split.tsv")).unwrap();
    let sizes =
        [TablePart::Train, TablePart::Validation, TablePart::Test, TablePart::Other].map(|p| parts.rows(p).len());
    assert_eq!(sizes, [140, 500, 1000, 1068]);
    assert_eq!((parts.not_in_table, parts.unlabeled().len()), (0, 2568));
}

// ---- the CLI ----------------------------------------------------------------------------------

#[test]
fn cli_graph_propagate_writes_propagated_samples() {
    let dir = tempfile::tempdir().unwrap();
    let (samples, graph) = tiny_files(dir.path());
    let out = dir.path().join("sgc.parquet");
    let report: serde_json::Value = serde_json::from_str(&ok(&[
        "graph",
        "propagate",
        s(&graph),
        "--samples",
        s(&samples),
        "--hops",
        "1",
        "--output",
        s(&out),
        "--json",
    ]))
    .unwrap();
    assert_eq!((report["samples"].as_u64(), report["isolated_samples"].as_u64()), (Some(4), Some(1)));
    let read = data::read_samples(&out, &SampleColumns::default()).unwrap();
    let ds = path_samples();
    assert_eq!((read.ids(), read.labels(), read.class_names()), (ds.ids(), ds.labels(), ds.class_names()));
    let x = array![[1.0f32, 0.0], [0.0, 1.0], [0.0, 0.0]];
    assert_close(read.features().slice(ndarray::s![..3, ..]), a_hat().dot(&x).view());

    let sign = dir.path().join("sign.parquet");
    ok(&["graph", "propagate", s(&graph), "--samples", s(&samples), "--mode", "sign", "--output", s(&sign)]);
    assert_eq!(data::read_samples(&sign, &SampleColumns::default()).unwrap().dim(), 6, "default hops 2: [X, ÂX, Â²X]");

    let e = fails_with(2, &["graph", "propagate", s(&graph), "--samples", s(&samples), "--output", s(&samples)]);
    assert!(e.contains("--samples and --output name the same file"), "{e}");
    assert!(!e.contains("caused by"), "{e}");
    let e =
        fails_with(1, &["graph", "propagate", s(&graph), "--samples", s(&samples), "--hops", "0", "--output", s(&out)]);
    assert!(e.contains("invalid hops `0`"), "{e}");
}

#[test]
fn cli_graph_propagate_appnp_and_mixed() {
    let dir = tempfile::tempdir().unwrap();
    let (samples, graph) = tiny_files(dir.path());
    let x = array![[1.0f32, 0.0], [0.0, 1.0], [0.0, 0.0]];
    let run = |mode: &str, extra: &[&str]| {
        let out = dir.path().join(format!("{mode}.parquet"));
        let mut args = vec!["graph", "propagate", s(&graph), "--samples", s(&samples), "--mode", mode, "--json"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--output", s(&out)]);
        let report: serde_json::Value = serde_json::from_str(&ok(&args)).unwrap();
        (report, data::read_samples(&out, &SampleColumns::default()).unwrap())
    };
    // One APPNP step with α = 0.5: (ÂX + X)/2; the default K is 10 and α is reported.
    let (report, appnp) = run("appnp", &["--hops", "1", "--alpha", "0.5"]);
    assert_eq!((report["hops"].as_u64(), report["alpha"].as_f64()), (Some(1), Some(0.5)));
    assert_close(appnp.features().slice(ndarray::s![..3, ..]), ((a_hat().dot(&x) + &x) * 0.5).view());
    assert_eq!(run("appnp", &[]).0["hops"].as_u64(), Some(10));
    // Mixed order, K = 1: (X + ÂX)/2, the same here; no α in the report.
    let (report, mixed) = run("mixed", &["--hops", "1"]);
    assert!(report.get("alpha").is_none(), "{report}");
    assert_close(mixed.features().slice(ndarray::s![..3, ..]), appnp.features().slice(ndarray::s![..3, ..]));
    let out = dir.path().join("bad.parquet");
    let e = fails_with(
        1,
        &[
            "graph",
            "propagate",
            s(&graph),
            "--samples",
            s(&samples),
            "--mode",
            "appnp",
            "--alpha",
            "1.5",
            "--output",
            s(&out),
        ],
    );
    assert!(e.contains("invalid alpha `1.5`: expected a number from 0 to 1"), "{e}");
    assert!(!out.exists());
}

#[test]
fn cli_graph_hops_writes_the_r_hop_graph() {
    let dir = tempfile::tempdir().unwrap();
    let (_, graph) = tiny_files(dir.path());
    let out = dir.path().join("two.tsv");
    let text = ok(&["graph", "hops", s(&graph), "--hops", "2", "--top-k", "1", "--output", s(&out)]);
    assert!(text.contains("3 nodes, 3 directed edges"), "{text}");
    let h = graph::read_graph(&out).unwrap();
    let ab = r6() + 5.0 * r6() / 6.0;
    // a and c keep b; b's two edges tie and the larger id, c, wins.
    for (s, t) in [("a", "b"), ("c", "b"), ("b", "c")] {
        assert!((h.weight(s, t).unwrap() - ab).abs() < 1e-6, "{s}→{t}");
    }
    let e = fails_with(2, &["graph", "hops", s(&graph), "--output", s(&graph)]);
    assert!(e.contains("the graph and --output name the same file"), "{e}");
}

#[test]
fn cli_split_by_table_writes_every_part() {
    let dir = tempfile::tempdir().unwrap();
    let (samples, _) = tiny_files(dir.path());
    let table = write(dir.path(), "split.tsv", "id\tsplit\na\ttrain\nb\tval\nc\ttest\n");
    let [train, val, test, unlabeled] =
        ["train", "val", "test", "unlabeled"].map(|n| dir.path().join(format!("{n}.parquet")));
    let summary: serde_json::Value = serde_json::from_str(&ok(&[
        "split",
        s(&samples),
        "--split-table",
        s(&table),
        "--out-train",
        s(&train),
        "--out-validation",
        s(&val),
        "--out-test",
        s(&test),
        "--out-unlabeled",
        s(&unlabeled),
        "--json",
    ]))
    .unwrap();
    assert_eq!(summary["not_in_table"], 1);
    assert_eq!(summary["other"], 1);
    for (path, ids) in [(&train, &["a"][..]), (&val, &["b"]), (&test, &["c"]), (&unlabeled, &["b", "c", "e"])] {
        assert_eq!(data::read_samples(path, &SampleColumns::default()).unwrap().ids(), ids, "{}", path.display());
    }
    let text =
        ok(&["split", s(&samples), "--split-table", s(&table), "--out-train", s(&train), "--out-test", s(&test)]);
    assert!(text.contains("other:      1 rows (1 not in the table)"), "{text}");
    // With a table, --out-test is optional: the test rows are then not written.
    let only = dir.path().join("only_train.parquet");
    let text = ok(&["split", s(&samples), "--split-table", s(&table), "--out-train", s(&only)]);
    assert!(text.contains("test:       1 rows not written"), "{text}");
    assert_eq!(data::read_samples(&only, &SampleColumns::default()).unwrap().ids(), ["a"]);
    // Without one, it is required.
    let e = fails_with(2, &["split", s(&samples), "--out-train", s(&train)]);
    assert!(e.contains("--out-test"), "{e}");

    let e = fails_with(
        2,
        &["split", s(&samples), "--split-table", s(&table), "--out-train", s(&train), "--out-test", s(&train)],
    );
    assert!(e.contains("--out-train and --out-test name the same file"), "{e}");
    let e = fails_with(
        2,
        &["split", s(&samples), "--split-table", s(&table), "--out-train", s(&samples), "--out-test", s(&test)],
    );
    assert!(e.contains("input and --out-train name the same file"), "{e}");
    let e = fails_with(
        2,
        &["split", s(&samples), "--out-train", s(&train), "--out-test", s(&test), "--out-unlabeled", s(&val)],
    );
    assert!(e.contains("--split-table"), "{e}");
    let bad = write(dir.path(), "bad.tsv", "a\ttrain\nq\ttest\n");
    let e = fails_with(
        1,
        &["split", s(&samples), "--split-table", s(&bad), "--out-train", s(&train), "--out-test", s(&test)],
    );
    assert!(e.contains(&format!("{}: line 2, column 1: id `q` is not among the 4 samples", bad.display())), "{e}");
}
