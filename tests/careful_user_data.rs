//! Issue 22, inputs: what a careful user still hit with data nsl had not been tested on. Each test
//! is named after the bullet and failed before the fix.

use arrow::array::{ArrayRef, Int64Array, ListArray, StringArray};
use arrow::datatypes::Int64Type;
use arrow::record_batch::RecordBatch;
use nsl::data::{read_parquet_samples, token_ids, SampleColumns};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

fn nsl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nsl")).args(args).output().expect("nsl runs")
}

fn ok(args: &[&str]) -> String {
    let out = nsl(args);
    assert!(out.status.success(), "nsl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Runs nsl expecting a clear failure (exit 1, no panic); returns stderr.
fn fails(args: &[&str]) -> String {
    let out = nsl(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "nsl {args:?} should fail with exit 1: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

fn cora(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/cora").join(name)
}

/// A Parquet table as pyarrow writes it: no nsl metadata, token lists as `list<int64>` (each
/// file's own longest list and largest id), integer labels.
fn write_plain(path: &Path, ids: &[String], words: &[Vec<i64>], labels: Option<&[i64]>) {
    let lists: ArrayRef = Arc::new(ListArray::from_iter_primitive::<Int64Type, _, _>(
        words.iter().map(|w| Some(w.iter().map(|&v| Some(v)).collect::<Vec<_>>())),
    ));
    let mut columns: Vec<(&str, ArrayRef)> =
        vec![("id", Arc::new(StringArray::from_iter_values(ids)) as ArrayRef), ("words", lists)];
    if let Some(labels) = labels {
        columns.push(("label", Arc::new(Int64Array::from(labels.to_vec())) as ArrayRef));
    }
    let batch = RecordBatch::try_from_iter(columns).unwrap();
    let mut writer =
        ::parquet::arrow::ArrowWriter::try_new(std::fs::File::create(path).unwrap(), batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

/// `from` (an nsl samples table with a token group `words`) rewritten as [`write_plain`] does.
fn rewrite_plain(from: &Path, to: &Path) -> usize {
    let data = read_parquet_samples(from, &SampleColumns::default()).unwrap();
    let words: Vec<Vec<i64>> =
        data.features().rows().into_iter().map(|r| token_ids(r.iter().copied()).map(i64::from).collect()).collect();
    let labels: Option<Vec<i64>> = data.labels().map(|l| l.iter().map(|&v| i64::from(v)).collect());
    write_plain(to, data.ids(), &words, labels.as_deref());
    words.iter().map(Vec::len).max().unwrap_or(0)
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap()
}

/// Issue 22, "token lists in separate files": Cora's words split by Planetoid's table into train,
/// validation, test and unlabeled files, each written as pyarrow would (its own longest list and
/// largest id, no nsl metadata), train and evaluate with `bow` — without and with graph
/// regularization — exactly as the same rows split by `nsl split` from one table: same weights
/// (byte for byte), same validation and test accuracy. Before, training failed with
/// "--validation samples have N features but the training samples have M".
#[test]
fn token_lists_in_separate_files_train_and_evaluate_like_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    ok(&[
        "convert",
        "--content",
        cora("cora.content.gz").to_str().unwrap(),
        "--cites",
        cora("cora.cites.gz").to_str().unwrap(),
        "--tokens",
        "--samples",
        &p("cora.parquet"),
        "--graph",
        &p("graph.parquet"),
    ]);
    ok(&[
        "split",
        &p("cora.parquet"),
        "--split-table",
        cora("cora.planetoid_split.tsv").to_str().unwrap(),
        "--out-train",
        &p("one-train.parquet"),
        "--out-validation",
        &p("one-val.parquet"),
        "--out-test",
        &p("one-test.parquet"),
        "--out-unlabeled",
        &p("one-pool.parquet"),
    ]);
    let mut longest = Vec::new();
    for part in ["train", "val", "test", "pool"] {
        longest.push(rewrite_plain(
            Path::new(&p(&format!("one-{part}.parquet"))),
            Path::new(&p(&format!("{part}.parquet"))),
        ));
    }
    // The premise: the files' longest lists differ (so do their widths as read on their own).
    assert!(longest.windows(2).any(|w| w[0] != w[1]), "{longest:?}");

    let p_graph = p("graph.parquet");
    for (name, graph) in [("plain", false), ("graph", true)] {
        let train = |prefix: &str, out: &str| {
            let files = |part: &str| p(&format!("{prefix}{part}.parquet"));
            let (train, val, test, pool) = (files("train"), files("val"), files("test"), files("pool"));
            let mut args = vec![
                "train",
                "--samples",
                &train,
                "--validation",
                &val,
                "--test",
                &test,
                "--model",
                "bow:16",
                "--epochs",
                "15",
                "--seed",
                "3",
                "--threads",
                "1",
                "--json",
                "--out",
                out,
            ];
            if graph {
                args.extend(["--graph", &p_graph, "--pool", &pool, "--graph-reg", "multiplier=0.5,neighbors=2"]);
            }
            json(&ok(&args))
        };
        let (one_run, parts_run) = (p(&format!("one-{name}")), p(&format!("parts-{name}")));
        let one = train("one-", &one_run);
        let parts = train("", &parts_run);
        for key in ["test_accuracy", "final_train_accuracy", "final_validation_metrics", "test_metrics"] {
            assert_eq!(one[key], parts[key], "{name}: {key}: {one} vs {parts}");
        }
        let weights = |run: &str| std::fs::read(Path::new(run).join("model.safetensors")).unwrap();
        assert_eq!(weights(&one_run), weights(&parts_run), "{name}: the weights differ");
        // Evaluation reads each file in the run's layout: the plain test file (shorter lists
        // than the run's widest) and the one-table test file give the trained accuracy.
        for test in [p("test.parquet"), p("one-test.parquet")] {
            let eval = json(&ok(&["evaluate", "--run", &parts_run, "--samples", &test, "--json"]));
            assert_eq!(eval["accuracy"], parts["test_accuracy"], "{name}: {test}");
        }
    }
}

/// Samples `s0…` with token lists and labels.
fn tiny(path: &Path, words: &[Vec<i64>], labels: &[i64]) {
    let ids: Vec<String> = (0..words.len()).map(|i| format!("s{i}")).collect();
    write_plain(path, &ids, words, Some(labels));
}

/// Issue 22, "token lists in separate files", later files: `predict` on a file whose lists are
/// longer than any the model was trained on reads them whole (the model is widened, its weights
/// kept): with the mean combiner a list repeated twice has the same mean, so the probabilities
/// equal those of the single lists. An id past the model's vocabulary is an error naming the
/// file, the row, the sample and the id.
#[test]
fn token_lists_longer_than_the_model_and_unknown_ids() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    let words: Vec<Vec<i64>> = vec![vec![0, 1], vec![2], vec![3, 4], vec![5], vec![1, 2], vec![4]];
    tiny(Path::new(&p("train.parquet")), &words, &[0, 1, 0, 1, 0, 1]);
    ok(&[
        "train",
        "--samples",
        &p("train.parquet"),
        "--model",
        "bow:4,combiner=mean",
        "--epochs",
        "3",
        "--seed",
        "1",
        "--threads",
        "1",
        "--out",
        &p("run"),
    ]);
    let once: Vec<Vec<i64>> = vec![vec![0, 1], vec![3, 5]];
    let twice: Vec<Vec<i64>> = once.iter().map(|w| w.iter().chain(w).copied().collect()).collect();
    tiny(Path::new(&p("once.parquet")), &once, &[0, 1]);
    tiny(Path::new(&p("twice.parquet")), &twice, &[0, 1]);
    let a = ok(&["predict", "--run", &p("run"), "--samples", &p("once.parquet")]);
    let b = ok(&["predict", "--run", &p("run"), "--samples", &p("twice.parquet")]);
    assert_eq!(a, b);
    assert_eq!(a.lines().count(), 3, "{a}");
    // The run itself is unchanged: its model.json still records the trained width.
    let meta = json(&std::fs::read_to_string(p("run/model.json")).unwrap());
    assert_eq!(meta["spec"]["inputs"][0]["max_len"], 2, "{meta}");

    // pack-nbrs reads samples and pool of other widths the same way (the merge of their layouts).
    std::fs::write(p("g.tsv"), "s0\ts1\t1\ns1\ts0\t1\n").unwrap();
    ok(&[
        "pack-nbrs",
        "--samples",
        &p("twice.parquet"),
        "--pool",
        &p("train.parquet"),
        "--graph",
        &p("g.tsv"),
        "--output",
        &p("packed.parquet"),
    ]);

    tiny(Path::new(&p("unknown.parquet")), &[vec![1], vec![2, 6]], &[0, 1]);
    let e = fails(&["evaluate", "--run", &p("run"), "--samples", &p("unknown.parquet")]);
    assert!(e.contains("unknown.parquet"), "{e}");
    assert!(e.contains("row 1 (id `s1`), token group `words`[1]: token id 6 is past the vocabulary of 6 ids"), "{e}");
}

/// Issue 22, "`nsl split --split-table` refuses a table naming ids absent from the samples even
/// when their split is `other`": such lines are skipped and counted; a train, validation or test id
/// that is not a sample is still refused.
#[test]
fn split_table_skips_other_ids_absent_from_the_samples() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    std::fs::write(p("s.csv"), "id,x,label\na,1,0\nb,2,1\nc,3,0\n").unwrap();
    std::fs::write(p("split.tsv"), "a\ttrain\nb\ttest\nc\tother\ngone1\tother\ngone2\tunlabeled\n").unwrap();
    let split = |table: &str| -> Vec<String> {
        [
            "split",
            &p("s.csv"),
            "--split-table",
            table,
            "--out-train",
            &p("train.parquet"),
            "--out-test",
            &p("test.parquet"),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let args = split(&p("split.tsv"));
    let mut with_json: Vec<&str> = args.iter().map(String::as_str).collect();
    with_json.push("--json");
    let summary = json(&ok(&with_json));
    assert_eq!((summary["train"].as_u64(), summary["test"].as_u64()), (Some(1), Some(1)), "{summary}");
    assert_eq!((summary["other"].as_u64(), summary["skipped_other"].as_u64()), (Some(1), Some(2)), "{summary}");
    let text = ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(text.contains("skipped:    2 `other` lines"), "{text}");
    std::fs::write(p("bad.tsv"), "a\ttrain\ngone\ttest\n").unwrap();
    let e = fails(&split(&p("bad.tsv")).iter().map(String::as_str).collect::<Vec<_>>());
    assert!(e.contains("line 2, column 1: id `gone` is not among the 3 samples (its split is test"), "{e}");
}

/// A valid nsl samples table (dense features, labels) with its metadata key/values edited.
fn with_metadata(from: &Path, to: &Path, edit: &[(&str, &str)]) {
    let file = std::fs::File::open(from).unwrap();
    let reader = ::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    let mut metadata: HashMap<String, String> =
        reader.schema().metadata().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    for (k, v) in edit {
        metadata.insert((*k).to_owned(), (*v).to_owned());
    }
    let schema = Arc::new(reader.schema().as_ref().clone().with_metadata(metadata.clone()));
    let batches: Vec<RecordBatch> = reader.build().unwrap().map(Result::unwrap).collect();
    let kv: Vec<_> =
        metadata.iter().map(|(k, v)| ::parquet::file::metadata::KeyValue::new(k.clone(), v.clone())).collect();
    let props = ::parquet::file::properties::WriterProperties::builder().set_key_value_metadata(Some(kv)).build();
    let mut writer =
        ::parquet::arrow::ArrowWriter::try_new(std::fs::File::create(to).unwrap(), schema.clone(), Some(props))
            .unwrap();
    for b in &batches {
        writer.write(&b.clone().with_schema(schema.clone()).unwrap()).unwrap();
    }
    writer.close().unwrap();
}

/// Issue 22, "`nsl.format_version` 99 in a samples file's metadata (every subcommand)": one check
/// in the Parquet reader refuses it, naming the file and the version.
#[test]
fn format_version_99_is_refused_by_every_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    std::fs::write(p("s.csv"), "id,x,y,label\na,1,0,0\nb,0,1,1\nc,1,1,0\nd,0,0,1\n").unwrap();
    ok(&["convert", "--csv", &p("s.csv"), "--samples", &p("v1.parquet")]);
    with_metadata(Path::new(&p("v1.parquet")), Path::new(&p("v99.parquet")), &[("nsl.format_version", "99")]);
    std::fs::write(p("g.tsv"), "a\tb\t1\nb\ta\t1\n").unwrap();
    ok(&["train", "--samples", &p("v1.parquet"), "--epochs", "1", "--out", &p("run")]);
    let v99 = p("v99.parquet");
    let commands: Vec<Vec<&str>> = vec![
        vec!["convert", "--parquet", &v99, "--samples", "OUT.parquet"],
        vec!["split", &v99, "--out-train", "OUT.parquet", "--out-test", "OUT2.parquet"],
        vec!["train", "--samples", &v99, "--epochs", "1", "--out", "OUT"],
        vec!["evaluate", "--run", "RUN", "--samples", &v99],
        vec!["predict", "--run", "RUN", "--samples", &v99],
        vec!["graph", "stats", "G", "--samples", &v99],
        vec!["pack-nbrs", "--samples", &v99, "--graph", "G", "--output", "OUT.parquet"],
        vec!["build-graph", "--input", &v99, "--output", "OUT.tsv"],
    ];
    let (out, out2, run, g) = (p("out.parquet"), p("out2.parquet"), p("run"), p("g.tsv"));
    let out_dir = p("out-run");
    for args in commands {
        let args: Vec<&str> = args
            .iter()
            .map(|a| match *a {
                "OUT.parquet" => out.as_str(),
                "OUT2.parquet" => out2.as_str(),
                "OUT.tsv" => out.as_str(),
                "OUT" => out_dir.as_str(),
                "RUN" => run.as_str(),
                "G" => g.as_str(),
                other => other,
            })
            .collect();
        let e = fails(&args);
        assert!(e.contains("v99.parquet") && e.contains("nsl.format_version `99` is not supported"), "{args:?}: {e}");
        assert!(!Path::new(&out).exists() && !Path::new(&out_dir).exists(), "{args:?} wrote an output");
    }
}

/// Issue 22, "0-row inputs to `split`, `pack-nbrs`, `graph stats --samples`": each is an error
/// naming the file, not an empty output or an empty statistic.
#[test]
fn zero_row_inputs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    std::fs::write(p("empty.csv"), "id,x,label\n").unwrap();
    std::fs::write(p("g.tsv"), "a\tb\t1\n").unwrap();
    let (empty, g, out, out2) = (p("empty.csv"), p("g.tsv"), p("out.parquet"), p("out2.parquet"));
    for args in [
        vec!["split", &empty, "--out-train", &out, "--out-test", &out2],
        vec!["pack-nbrs", "--samples", &empty, "--graph", &g, "--output", &out],
        vec!["graph", "stats", &g, "--samples", &empty],
    ] {
        let e = fails(&args);
        assert!(e.contains("empty.csv: the table has no samples (0 rows)"), "{args:?}: {e}");
        assert!(!Path::new(&out).exists() && !Path::new(&out2).exists(), "{args:?}");
    }
}

/// Issue 22, "a 0-byte `.gz` read as an empty graph": a `.gz` name promises gzip, so an empty (or
/// plain) file under it is refused, naming the file; an empty plain TSV is still an empty graph.
#[test]
fn zero_byte_gz_is_not_an_empty_graph() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    std::fs::write(p("g.tsv.gz"), b"").unwrap();
    let e = fails(&["graph", "stats", &p("g.tsv.gz")]);
    assert!(e.contains("g.tsv.gz") && e.contains("named `.gz` but not gzip-compressed (it is empty"), "{e}");
    std::fs::write(p("plain.tsv.gz"), b"a\tb\t1\n").unwrap();
    let e = fails(&["graph", "stats", &p("plain.tsv.gz")]);
    assert!(e.contains("it starts with the bytes [61, 09, 62, 09]"), "{e}");
    assert!(nsl::graph::read_graph(Path::new(&p("plain.tsv.gz"))).is_err());
    std::fs::write(p("empty.tsv"), b"").unwrap();
    assert_eq!(nsl::graph::read_graph(Path::new(&p("empty.tsv"))).unwrap().edge_count(), 0);
}

/// Issue 22, "`convert --label-column` naming a float column (20 classes)": numbers that are not
/// whole are refused, naming the column and line; whole numbers written as floats are classes.
#[test]
fn float_label_column_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    std::fs::write(p("s.csv"), "id,x,score,label\na,1,0.5,0\nb,2,1.0,1\nc,3,2.25,0\n").unwrap();
    let e = fails(&["convert", "--csv", &p("s.csv"), "--label-column", "score", "--samples", &p("out.parquet")]);
    assert!(e.contains("s.csv: line 2, column score: label `0.5` is not a whole number"), "{e}");
    assert!(!Path::new(&p("out.parquet")).exists());
    std::fs::write(p("whole.csv"), "id,x,label\na,1,0.0\nb,2,2.0\nc,3,1\n").unwrap();
    let summary = json(&ok(&["convert", "--csv", &p("whole.csv"), "--samples", &p("whole.parquet"), "--json"]));
    assert_eq!(summary["classes"], 3, "{summary}");
    let data = read_parquet_samples(Path::new(&p("whole.parquet")), &SampleColumns::default()).unwrap();
    assert_eq!((data.labels(), data.class_names()), (Some(&[0, 2, 1][..]), None));
    // A regression run's float label column is its targets, in the training file and in the pool
    // and unlabeled files (whose labels are never read as classes).
    std::fs::write(p("r.csv"), "id,x,y,label\na,1,0,0.5\nb,0,1,1.5\nc,1,1,2.5\nd,0,0,0.25\n").unwrap();
    std::fs::write(p("g.tsv"), "a\tb\t1\nb\ta\t1\nc\td\t1\n").unwrap();
    let r = p("r.csv");
    ok(&["train", "--task", "regression", "--samples", &r, "--unlabeled", &r, "--pool", &r, "--graph", &p("g.tsv")]
        .into_iter()
        .chain(["--graph-reg", "multiplier=0.1,neighbors=1", "--epochs", "1", "--out", &p("run")])
        .collect::<Vec<_>>());
    // Predictions need no targets: a file whose float targets are not valid (NaN) is predicted.
    std::fs::write(p("nan.csv"), "id,x,y,label\na,1,0,0.5\nb,0,1,NaN\n").unwrap();
    let predicted = ok(&["predict", "--run", &p("run"), "--samples", &p("nan.csv")]);
    assert_eq!(predicted.lines().count(), 3, "{predicted}");
}

/// Issue 22, "`nsl split /dev/zero` buffers 2 GiB before failing": what is read before a format is
/// recognized is bounded. `/dev/zero` has the IDX-looking magic `00 00 00 00`: its header is
/// checked before the rest is read, so it fails at byte 0 (before, the whole memory was read
/// first). A text file whose first line is longer than 64 MiB fails at the limit, naming line 1.
#[test]
fn split_dev_zero_fails_at_its_header() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    if Path::new("/dev/zero").exists() {
        let e = fails(&["split", "/dev/zero", "--out-train", &p("a.parquet"), "--out-test", &p("b.parquet")]);
        assert!(e.contains("/dev/zero: byte 0: wrong magic number 0x00000000"), "{e}");
    }
    let long = p("long.csv");
    let mut text = b"id,x\n".to_vec();
    text.resize(text.len() + (65 << 20), b'1');
    std::fs::write(&long, &text).unwrap();
    let e = nsl::data::read_samples(Path::new(&long), &SampleColumns::default()).unwrap_err().to_string();
    assert!(e.contains("line 2: line longer than the limit of 67108864 bytes"), "{e}");
    std::fs::write(p("nul.csv"), b"id,x\na,1\0\n").unwrap();
    let e = nsl::data::read_samples(Path::new(&p("nul.csv")), &SampleColumns::default()).unwrap_err().to_string();
    assert!(e.contains("byte 8: NUL byte"), "{e}");
}
