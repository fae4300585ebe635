//! Bad graph input gives a typed error naming the file and the line, row or column; failed writes
//! leave no file behind.

use arrow::array::{ArrayRef, Float32Array, Int32Array, RecordBatch, StringArray};
use nsl::graph::{export, ExportFormat};
use nsl::graph::{read_cites, UnknownIds};
use nsl::graph::{read_tsv, write_tsv, EdgeKind, GraphError, NeighborGraph};
use parquet::arrow::ArrowWriter;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A file `name` with `content` in a fresh temporary directory (kept alive by the returned guard).
fn file(name: &str, content: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, content).unwrap();
    (dir, path)
}

fn gzip(text: &str) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(text.as_bytes()).unwrap();
    enc.finish().unwrap()
}

/// Asserts that `err` is `Invalid` and its message names `path` and contains every `parts`.
#[track_caller]
fn assert_invalid(err: GraphError, path: &Path, parts: &[&str]) {
    let message = err.to_string();
    assert!(matches!(err, GraphError::Invalid { .. }), "not Invalid: {err:?}");
    assert!(message.contains(&path.display().to_string()), "file not named: {message}");
    for part in parts {
        assert!(message.contains(part), "`{part}` missing from: {message}");
    }
}

/// The names of the files in `dir`.
fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

// ---------------------------------------------------------------- TSV

#[test]
fn empty_tsv_is_an_empty_graph() {
    let (_dir, path) = file("empty.tsv", b"");
    let g = read_tsv(&path, EdgeKind::Explicit).unwrap();
    assert_eq!((g.node_count(), g.edge_count()), (0, 0));
    let (_dir, path) = file("comments.tsv", b"# nothing here\n\n");
    assert_eq!(read_tsv(&path, EdgeKind::Explicit).unwrap().edge_count(), 0);
}

#[test]
fn truncated_gzip_tsv_names_the_file() {
    let mut text = String::new();
    for i in 0..5_000 {
        text.push_str(&format!("n{i}\tn{}\t0.5\n", i + 1));
    }
    let full = gzip(&text);
    let (_dir, path) = file("cut.tsv.gz", &full[..full.len() / 2]);
    let err = read_tsv(&path, EdgeKind::Explicit).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, GraphError::Io { .. }), "{err:?}");
    assert!(message.contains("cut.tsv.gz"), "{message}");
    assert!(message.contains("reading line"), "{message}");
}

#[test]
fn tsv_non_numeric_weight() {
    let (_dir, path) = file("w.tsv", b"a\tb\t0.5\n# comment\na\tc\tabc\n");
    let err = read_tsv(&path, EdgeKind::Explicit).unwrap_err();
    assert_invalid(err, &path, &["line 3, column 3", "`abc`", "not a number"]);
}

#[test]
fn tsv_negative_nan_and_infinite_weights() {
    for weight in ["-0.5", "nan", "NaN", "inf", "1e39"] {
        let content = format!("a\tb\nb\tc\t{weight}\n");
        let (_dir, path) = file("w.tsv", content.as_bytes());
        let err = read_tsv(&path, EdgeKind::Explicit).unwrap_err();
        assert_invalid(err, &path, &["line 2, column 3", &format!("`{weight}`"), "finite non-negative"]);
    }
}

#[test]
fn tsv_one_column_and_empty_ids() {
    let (_dir, path) = file("one.tsv", b"a\tb\nlonely\n");
    assert_invalid(read_tsv(&path, EdgeKind::Explicit).unwrap_err(), &path, &["line 2", "one column"]);
    let (_dir, path) = file("empty_id.tsv", b"a\t\t1\n");
    assert_invalid(read_tsv(&path, EdgeKind::Explicit).unwrap_err(), &path, &["line 1, column 2", "empty"]);
}

#[test]
fn tsv_invalid_utf8() {
    let (_dir, path) = file("bin.tsv", b"a\tb\n\xff\xfe\tc\n");
    assert_invalid(read_tsv(&path, EdgeKind::Explicit).unwrap_err(), &path, &["line 2", "UTF-8"]);
}

#[test]
fn missing_file_is_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.tsv");
    let err = read_tsv(&path, EdgeKind::Explicit).unwrap_err();
    assert!(matches!(err, GraphError::Io { .. }));
    assert!(err.to_string().contains("nope.tsv"));
}

// ---------------------------------------------------------------- LINQS cites

#[test]
fn cites_unknown_paper() {
    let (_dir, path) = file("x.cites", b"1\t2\n2\t3\n99\t1\n1\t77\n");
    let known = |id: &str| ["1", "2", "3"].contains(&id);
    let err = read_cites(&path, &known, UnknownIds::Error).unwrap_err();
    assert_invalid(err, &path, &["line 3, column 1", "`99`"]);

    let (g, report) = read_cites(&path, &known, UnknownIds::Skip).unwrap();
    assert_eq!(report.skipped_unknown, 2);
    assert_eq!(report.links, 2);
    assert_eq!(g.edge_count(), 4);
    assert!(g.node("99").is_none() && g.node("77").is_none());
}

#[test]
fn cites_unknown_citing_paper_names_column_two() {
    let (_dir, path) = file("x.cites", b"1\t2\n1\t77\n");
    let err = read_cites(&path, &|id| id != "77", UnknownIds::Error).unwrap_err();
    assert_invalid(err, &path, &["line 2, column 2", "`77`"]);
}

#[test]
fn cites_wrong_column_count() {
    let (_dir, path) = file("x.cites", b"1\t2\n1\t2\t3\n");
    assert_invalid(read_cites(&path, &|_| true, UnknownIds::Error).unwrap_err(), &path, &["line 2", "found 3"]);
    let (_dir, path) = file("y.cites", b"1\t2\n\n5\n");
    assert_invalid(read_cites(&path, &|_| true, UnknownIds::Error).unwrap_err(), &path, &["line 3", "found 1"]);
}

// ---------------------------------------------------------------- Parquet

#[test]
fn empty_file_is_not_parquet() {
    let (_dir, path) = file("empty.parquet", b"");
    assert_invalid(nsl::graph::read_parquet_graph(&path).unwrap_err(), &path, &["not a readable Parquet file"]);
    let (_dir, path) = file("text.parquet", b"a\tb\t1\n");
    assert_invalid(nsl::graph::read_parquet_graph(&path).unwrap_err(), &path, &["not a readable Parquet file"]);
}

/// Writes one record batch to a Parquet file with arrow-rs.
fn table(name: &str, columns: Vec<(&str, ArrayRef)>) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    let batch = RecordBatch::try_from_iter_with_nullable(columns.into_iter().map(|(n, a)| (n, a, true))).unwrap();
    let mut writer = ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    (dir, path)
}

fn strings(values: &[Option<&str>]) -> ArrayRef {
    Arc::new(StringArray::from(values.to_vec()))
}

fn floats(values: &[Option<f32>]) -> ArrayRef {
    Arc::new(Float32Array::from(values.to_vec()))
}

#[test]
fn parquet_missing_required_column() {
    let (_dir, path) = table("m.parquet", vec![("source", strings(&[Some("a")])), ("weight", floats(&[Some(1.0)]))]);
    let err = nsl::graph::read_parquet_graph(&path).unwrap_err();
    assert_invalid(err, &path, &["column `target`", "missing", "found columns: source, weight"]);
}

#[test]
fn parquet_wrong_type() {
    let (_dir, path) = table(
        "t.parquet",
        vec![("source", strings(&[Some("a")])), ("target", strings(&[Some("b")])), ("weight", strings(&[Some("1.0")]))],
    );
    let err = nsl::graph::read_parquet_graph(&path).unwrap_err();
    assert_invalid(err, &path, &["column `weight`", "type Utf8", "expected float32 or float64"]);

    let (_dir, path) = table(
        "k.parquet",
        vec![
            ("source", strings(&[Some("a")])),
            ("target", strings(&[Some("b")])),
            ("weight", floats(&[Some(1.0)])),
            ("kind", Arc::new(Int32Array::from(vec![1])) as ArrayRef),
        ],
    );
    assert_invalid(nsl::graph::read_parquet_graph(&path).unwrap_err(), &path, &["column `kind`", "type Int32"]);
}

#[test]
fn parquet_nulls_name_row_and_column() {
    let (_dir, path) = table(
        "n.parquet",
        vec![
            ("source", strings(&[Some("a"), Some("b"), Some("c")])),
            ("target", strings(&[Some("b"), None, Some("a")])),
            ("weight", floats(&[Some(1.0), Some(1.0), Some(1.0)])),
        ],
    );
    assert_invalid(nsl::graph::read_parquet_graph(&path).unwrap_err(), &path, &["row 1, column `target`", "null"]);
}

#[test]
fn parquet_bad_weights_name_row_and_column() {
    for bad in [-1.0, f32::NAN, f32::INFINITY] {
        let (_dir, path) = table(
            "w.parquet",
            vec![
                ("source", strings(&[Some("a"), Some("b"), Some("c")])),
                ("target", strings(&[Some("b"), Some("c"), Some("a")])),
                ("weight", floats(&[Some(1.0), Some(0.5), Some(bad)])),
            ],
        );
        let err = nsl::graph::read_parquet_graph(&path).unwrap_err();
        assert_invalid(err, &path, &["row 2, column `weight`", "c -> a", "finite non-negative"]);
    }
}

#[test]
fn parquet_unknown_kind() {
    let (_dir, path) = table(
        "k.parquet",
        vec![
            ("source", strings(&[Some("a"), Some("b")])),
            ("target", strings(&[Some("b"), Some("c")])),
            ("weight", floats(&[Some(1.0), Some(0.5)])),
            ("kind", strings(&[Some("explicit"), Some("friendship")])),
        ],
    );
    assert_invalid(
        nsl::graph::read_parquet_graph(&path).unwrap_err(),
        &path,
        &["row 1, column `kind`", "`friendship`"],
    );
}

#[test]
fn parquet_unsupported_format_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v2.parquet");
    let batch = RecordBatch::try_from_iter(vec![
        ("source", strings(&[Some("a")])),
        ("target", strings(&[Some("b")])),
        ("weight", floats(&[Some(1.0)])),
    ])
    .unwrap();
    let props = parquet::file::properties::WriterProperties::builder()
        .set_key_value_metadata(Some(vec![parquet::file::metadata::KeyValue::new(
            "nsl.format_version".to_owned(),
            "2".to_owned(),
        )]))
        .build();
    let mut writer = ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), batch.schema(), Some(props)).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    assert_invalid(nsl::graph::read_parquet_graph(&path).unwrap_err(), &path, &["nsl.format_version `2`"]);
}

// ---------------------------------------------------------------- failed writes

#[test]
fn failed_writes_leave_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut g = NeighborGraph::new();
    g.add_edge("a", "b", 1.0, EdgeKind::Explicit).unwrap();
    g.add_edge("b", "tab\there", 1.0, EdgeKind::Explicit).unwrap();
    let out = dir.path().join("g.tsv");
    let err = write_tsv(&g, &out).unwrap_err();
    assert_invalid(err, &out, &["line 2, column 2", "tab"]);
    assert!(files_in(dir.path()).is_empty(), "{:?}", files_in(dir.path()));

    let mut g = NeighborGraph::new();
    g.add_edge("a", "bell\u{7}", 1.0, EdgeKind::Explicit).unwrap();
    let out = dir.path().join("g.graphml");
    let err = export(&g, ExportFormat::Graphml, &out).unwrap_err();
    assert!(
        matches!(&err, GraphError::Unrepresentable { id, format: ExportFormat::Graphml, .. } if id == "bell\u{7}"),
        "{err:?}"
    );
    assert!(err.to_string().contains("U+0007") && err.to_string().contains("g.graphml"), "{err}");
    assert!(files_in(dir.path()).is_empty(), "{:?}", files_in(dir.path()));

    // A directory that does not exist: Io error naming the path, nothing created.
    let missing = dir.path().join("no/such/dir/g.parquet");
    let err = nsl::graph::write_parquet_graph(&g, &missing).unwrap_err();
    assert!(matches!(err, GraphError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("g.parquet"), "{err}");
    for format in ExportFormat::ALL {
        assert!(export(&g, format, &dir.path().join("no/such").join(format.as_str())).is_err());
    }
    assert!(files_in(dir.path()).is_empty(), "{:?}", files_in(dir.path()));
}

#[test]
fn failed_write_keeps_the_old_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("g.tsv");
    std::fs::write(&out, "old\tcontent\t1\n").unwrap();
    let mut g = NeighborGraph::new();
    g.add_edge("#comment-like", "b", 1.0, EdgeKind::Explicit).unwrap();
    assert_invalid(write_tsv(&g, &out).unwrap_err(), &out, &["line 1, column 1", "comment"]);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "old\tcontent\t1\n");
    assert_eq!(files_in(dir.path()), ["g.tsv"]);
}
