//! The `nsl` command line on TFRecord files (issue 14): NSL's `build_graph` and `pack_nbrs` with
//! NSL's names, `convert` both ways, and `train`/`evaluate` on TFRecord samples and packed records.
//! Expected outputs are the files TensorFlow and NSL wrote in `tests/fixtures/tfrecord`.

use nsl::data::SampleColumns;
use nsl::graph::read_graph;
use nsl::tfrecord::{read_examples, read_samples, Example, Feature};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn nsl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nsl")).args(args).output().expect("nsl runs")
}

fn ok(args: &[&str]) -> (String, String) {
    let out = nsl(args);
    assert!(out.status.success(), "nsl {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    (String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

fn fails(args: &[&str]) -> String {
    let out = nsl(args);
    assert_eq!(out.status.code(), Some(1), "nsl {args:?} should fail with status 1");
    String::from_utf8(out.stderr).unwrap()
}

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tfrecord").join(name).to_string_lossy().into_owned()
}

fn cora(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/cora").join(name).to_string_lossy().into_owned()
}

fn p(dir: &Path, name: &str) -> String {
    dir.join(name).to_string_lossy().into_owned()
}

fn examples(path: &str) -> Vec<Example> {
    read_examples(&[PathBuf::from(path)]).map(|r| r.unwrap().2).collect()
}

#[test]
fn build_graph_on_tfrecord_gives_nsls_edges() {
    let dir = tempfile::tempdir().unwrap();
    let out = p(dir.path(), "g.tsv");
    // A second input without the embedding feature: its records are skipped, as NSL does.
    let (_, stderr) = ok(&[
        "build-graph",
        "--input",
        &fixture("embeddings.tfr"),
        &fixture("basic.tfrecord"),
        "--id-feature",
        "id",
        "--embedding-feature",
        "embedding",
        "--threshold",
        "0.7",
        "--output",
        &out,
    ]);
    assert!(stderr.contains("6 of 11 records without the embedding feature `embedding`"), "{stderr}");
    let ours = read_graph(Path::new(&out)).unwrap();
    let theirs = read_graph(Path::new(&fixture("embeddings_graph.tsv"))).unwrap();
    assert_eq!(ours.edge_count(), theirs.edge_count());
    for (s, t, e) in theirs.edges() {
        let w = ours.weight(s, t).unwrap_or_else(|| panic!("edge {s} → {t} missing"));
        assert!((w - e.weight).abs() <= 5e-7, "{s} → {t}: {w} vs NSL {}", e.weight);
    }
}

#[test]
fn build_graph_rejects_several_non_tfrecord_inputs_and_corrupt_records() {
    let dir = tempfile::tempdir().unwrap();
    let csv = p(dir.path(), "e.csv");
    std::fs::write(&csv, "id,a,b\nx,1,0\ny,0,1\n").unwrap();
    let err = fails(&["build-graph", "--input", &csv, &csv, "--output", &p(dir.path(), "g.tsv")]);
    assert!(err.contains("TFRecord only"), "{err}");
    let mut bytes = std::fs::read(fixture("embeddings.tfr")).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    let bad = p(dir.path(), "bad.tfr");
    std::fs::write(&bad, bytes).unwrap();
    let err = fails(&["build-graph", "--input", &bad, "--output", &p(dir.path(), "g.tsv")]);
    assert!(err.contains("bad.tfr: record 5 (0-based)") && err.contains("data checksum mismatch"), "{err}");
}

fn assert_same_records(ours: &str, theirs: &str) {
    let (a, b) = (examples(ours), examples(theirs));
    assert_eq!(a.len(), b.len());
    for (r, (x, y)) in a.iter().zip(&b).enumerate() {
        assert_eq!(x, y, "record {r}");
    }
}

#[test]
fn pack_nbrs_with_nsls_flags_writes_nsls_records() {
    let dir = tempfile::tempdir().unwrap();
    let out = p(dir.path(), "packed.tfr");
    let base = ["pack-nbrs", "--labeled", &fixture("labeled.tfr"), "--unlabeled", &fixture("unlabeled.tfr")];
    let graph = fixture("graph.tsv");
    // NSL's keep-all default.
    let (stdout, stderr) = ok(&[&base[..], &["--graph", &graph, "--output", &out]].concat());
    assert!(stdout.contains("packed 3 seeds with 6 neighbors"), "{stdout}");
    assert!(stderr.contains("1 edges of seeds lead to ids without an example"), "{stderr}");
    assert_same_records(&out, &fixture("packed_all.tfr"));
    // --max-nbrs and --add-undirected-edges, gzipped output.
    let gz = p(dir.path(), "packed.tfr.gz");
    ok(&[&base[..], &["--graph", &graph, "--output", &gz, "--max-nbrs", "2", "--add-undirected-edges"]].concat());
    assert_eq!(&std::fs::read(&gz).unwrap()[..2], &[0x1f, 0x8b]);
    assert_same_records(&gz, &fixture("packed_k2_undirected.tfr"));
    // No unlabeled examples.
    let (json, _) = ok(&[
        "pack-nbrs",
        "--labeled",
        &fixture("labeled.tfr"),
        "--graph",
        &graph,
        "--output",
        &out,
        "--max-nbrs",
        "1",
        "--json",
    ]);
    let summary: serde_json::Value = serde_json::from_str(&json).unwrap();
    // B → E only, and E is unlabeled: B has no neighbor here.
    assert_eq!(summary["out_degrees"], serde_json::json!([1, 2]));
    assert_same_records(&out, &fixture("packed_k1_labeled_only.tfr"));
}

#[test]
fn pack_nbrs_refuses_to_mix_formats() {
    let dir = tempfile::tempdir().unwrap();
    let err = fails(&[
        "pack-nbrs",
        "--labeled",
        &fixture("labeled.tfr"),
        "--graph",
        &fixture("graph.tsv"),
        "--output",
        &p(dir.path(), "out.parquet"),
    ]);
    assert!(err.contains("name the output .tfr"), "{err}");
}

#[test]
fn convert_between_tfrecord_and_parquet() {
    let dir = tempfile::tempdir().unwrap();
    let (tfr, parquet, direct) = (p(dir.path(), "cora.tfr"), p(dir.path(), "cora.parquet"), p(dir.path(), "d.parquet"));
    ok(&["convert", "--content", &cora("cora.content.gz"), "--samples", &tfr]);
    // NSL's tutorial layout: id bytes, words int64 × 1433, label int64.
    let first = examples(&tfr).remove(0);
    assert!(matches!(first.get("id"), Some(Feature::Bytes(v)) if v.len() == 1));
    assert!(matches!(first.get("words"), Some(Feature::Int64(v)) if v.len() == 1433));
    assert!(matches!(first.get("label"), Some(Feature::Int64(v)) if v.len() == 1 && (0..7).contains(&v[0])));
    ok(&["convert", "--tfrecord", &tfr, "--samples", &parquet]);
    ok(&["convert", "--content", &cora("cora.content.gz"), "--samples", &direct]);
    let columns = SampleColumns::default();
    let a = nsl::data::read_samples(Path::new(&parquet), &columns).unwrap();
    let b = nsl::data::read_samples(Path::new(&direct), &columns).unwrap();
    assert_eq!((a.ids(), a.features(), a.labels()), (b.ids(), b.features(), b.labels()));
    // And back, gzipped, as floats.
    let gz = p(dir.path(), "again.tfrecord.gz");
    ok(&["convert", "--parquet", &parquet, "--samples", &gz, "--feature-type", "float"]);
    let (c, _) = read_samples(&[PathBuf::from(&gz)], &columns).unwrap();
    assert_eq!((c.ids(), c.features()), (a.ids(), a.features()));
    assert!(matches!(examples(&gz)[0].get("words"), Some(Feature::Float(_))));
}

#[test]
fn train_on_packed_records_and_evaluate_tfrecord_samples() {
    let dir = tempfile::tempdir().unwrap();
    let run = p(dir.path(), "run");
    let (json, _) = ok(&[
        "train",
        "--samples",
        &fixture("packed_all.tfr"),
        "--packed",
        "--graph-reg",
        "multiplier=0.1,neighbors=2",
        "--model",
        "mlp:4",
        "--epochs",
        "2",
        "--threads",
        "1",
        "--out",
        &run,
        "--json",
    ]);
    let summary: serde_json::Value = serde_json::from_str(&json).unwrap();
    // A: D, C (2 of 3); B: E; C: A, C — every seed has neighbors; D and E come from the records.
    assert_eq!(summary["graph"]["samples_with_neighbors"], 3, "{summary}");
    assert_eq!(summary["graph"]["pairs"], 5, "{summary}");
    let (out, _) = ok(&["evaluate", "--run", &run, "--samples", &fixture("labeled.tfr")]);
    assert!(out.contains("accuracy"), "{out}");
    let err = fails(&[
        "train",
        "--samples",
        &fixture("packed_all.tfr"),
        "--packed",
        "--graph",
        &fixture("graph.tsv"),
        "--graph-reg",
        "multiplier=0.1",
        "--out",
        &run,
    ]);
    assert!(err.contains("drop --graph, --pool and --unlabeled"), "{err}");
}
