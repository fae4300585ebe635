//! Regression tests of issue 15 ("Nothing lost, nothing crashes"): one test per defect listed under
//! "Why", named after it, run through the `nsl` binary as a user would. The fuzz suite is
//! `tests/fuzz_readers.rs`, the kill suite `tests/kill.rs`; the guarantees are in
//! `docs/reliability.md`.

use arrow::array::{Array, ArrayRef, Int64Array, ListArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Float32Type, Schema};
use parquet::file::properties::WriterProperties;
use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::{fails, fails_with, names, nsl, ok, s};
use std::sync::Arc;

fn data(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets").join(rel).to_string_lossy().into_owned()
}

/// A directory with `samples.parquet`: 8 labeled samples of 2 features, classes `x` and `y`.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("samples.csv");
        let mut text = String::from("id,f1,f2,label\n");
        for i in 0..8 {
            text.push_str(&format!("s{i},{},{},{}\n", i % 3, i % 2, if i % 2 == 0 { "x" } else { "y" }));
        }
        std::fs::write(&csv, text).unwrap();
        ok(&["convert", "--csv", s(&csv), "--samples", s(&dir.path().join("samples.parquet"))]);
        Fixture { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn samples(&self) -> PathBuf {
        self.path("samples.parquet")
    }

    /// Trains a small run into `name` and returns its path.
    fn run(&self, name: &str, seed: &str) -> PathBuf {
        let out = self.path(name);
        ok(&[
            "train",
            "--samples",
            s(&self.samples()),
            "--model",
            "mlp:4",
            "--epochs",
            "1",
            "--seed",
            seed,
            "--out",
            s(&out),
        ]);
        out
    }
}

/// A Parquet samples table with the given ids, list features and labels.
fn write_table(path: &Path, ids: &[&str], features: Vec<Option<Vec<Option<f32>>>>, labels: &[i64]) {
    let list = ListArray::from_iter_primitive::<Float32Type, _, _>(features);
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("features", list.data_type().clone(), true),
        Field::new("label", DataType::Int64, false),
    ]));
    let columns: Vec<ArrayRef> =
        vec![Arc::new(StringArray::from(ids.to_vec())), Arc::new(list), Arc::new(Int64Array::from(labels.to_vec()))];
    let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
    nsl::io::write_parquet(path, schema, WriterProperties::builder(), [Ok(batch)]).unwrap();
}

// ---- Crashes ----------------------------------------------------------------------------------

#[test]
fn predict_class_names_shorter_than_classes_is_an_error() {
    let f = Fixture::new();
    let run = f.run("run", "1");
    let meta_path = run.join("model.json");
    let mut meta: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta_path).unwrap()).unwrap();
    assert_eq!(meta["classes"], 2);
    meta["class_names"] = serde_json::json!(["x"]);
    std::fs::write(&meta_path, serde_json::to_vec(&meta).unwrap()).unwrap();
    let err = fails(&["predict", "--run", s(&run), "--samples", s(&f.samples())]);
    assert!(err.contains("model.json") && err.contains("1 class names for 2 classes"), "{err}");
}

#[test]
fn generate_embeddings_n_times_dim_overflowing_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("e.parquet");
    let err = fails(&["generate-embeddings", "--n", "1099511627776", "--dim", "1099511627776", "--output", s(&out)]);
    assert!(err.contains("--n 1099511627776") && err.contains("--dim") && err.contains("memory"), "{err}");
    assert!(names(dir.path()).is_empty());
}

#[test]
fn generate_embeddings_n_beyond_memory_is_an_error_not_an_abort() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("e.parquet");
    let err = fails(&["generate-embeddings", "--n", "1000000000000", "--output", s(&out)]);
    assert!(err.contains("--n 1000000000000") && err.contains("available"), "{err}");
}

#[test]
fn train_model_mlp_2000000000_is_an_error_not_an_abort() {
    let f = Fixture::new();
    let out = f.path("run");
    let err = fails(&["train", "--samples", s(&f.samples()), "--model", "mlp:2000000000", "--out", s(&out)]);
    assert!(err.contains("--model") && err.contains("2000000000"), "{err}");
    // Within the width limit but not within memory: the parameter count is checked.
    let err = fails(&["train", "--samples", s(&f.samples()), "--model", "mlp:16000000,16000000", "--out", s(&out)]);
    assert!(err.contains("parameters") && err.contains("available"), "{err}");
    assert!(!out.exists());
}

#[test]
fn model_json_hidden_1000000000_is_an_error_not_an_abort() {
    let f = Fixture::new();
    let run = f.run("run", "1");
    let meta_path = run.join("model.json");
    let mut meta: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta_path).unwrap()).unwrap();
    meta["spec"]["hidden"] = serde_json::json!([1_000_000_000usize]);
    std::fs::write(&meta_path, serde_json::to_vec(&meta).unwrap()).unwrap();
    let err = fails(&["evaluate", "--run", s(&run), "--samples", s(&f.samples())]);
    assert!(err.contains("model.json") && err.contains("1000000000"), "{err}");
}

#[test]
fn pack_nbrs_max_neighbors_100000_on_40_rows_grows_with_the_neighbors_that_exist() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("s.csv");
    let mut text = String::from("id,f1,f2,label\n");
    let mut tsv = String::new();
    for i in 0..40 {
        text.push_str(&format!("n{i},{i},1,{}\n", i % 2));
        tsv.push_str(&format!("n{i}\tn{}\t1\n", (i + 1) % 40));
        tsv.push_str(&format!("n{i}\tn{}\t0.5\n", (i + 2) % 40));
    }
    std::fs::write(&csv, text).unwrap();
    let graph = dir.path().join("g.tsv");
    std::fs::write(&graph, tsv).unwrap();
    let out = dir.path().join("packed.parquet");
    let start = std::time::Instant::now();
    ok(&["pack-nbrs", "--samples", s(&csv), "--graph", s(&graph), "--max-neighbors", "100000", "--output", s(&out)]);
    assert!(start.elapsed().as_secs() < 20, "took {:?}", start.elapsed());
    let file = std::fs::File::open(&out).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    // id, features, label, NL_num_nbrs and 3 columns for each of the 2 neighbors that exist.
    assert_eq!(reader.schema().fields().len(), 4 + 2 * 3);
    assert!(std::fs::metadata(&out).unwrap().len() < 1 << 20);
}

#[test]
fn graph_stats_dev_zero_stops_at_the_line_limit() {
    let start = std::time::Instant::now();
    let err = fails(&["graph", "stats", "/dev/zero"]);
    assert!(err.contains("/dev/zero") && err.contains("line 1") && err.contains("longer than"), "{err}");
    assert!(start.elapsed().as_secs() < 30);
}

// ---- Data lost or outputs out of step ---------------------------------------------------------

#[test]
fn train_saves_the_run_directory_as_a_whole() {
    // The kill itself is in tests/kill.rs; here: a second run replaces the first one whole, and
    // nothing but the run is left in the parent directory.
    let f = Fixture::new();
    let run = f.run("run", "1");
    let old = std::fs::read(run.join("model.safetensors")).unwrap();
    // A stale temporary file of an interrupted write goes with the old run.
    std::fs::write(run.join(".model.json.Ab12Cd.tmp"), "stale").unwrap();
    f.run("run", "2");
    assert_ne!(std::fs::read(run.join("model.safetensors")).unwrap(), old);
    assert_eq!(
        names(&run),
        [
            "columns.json",
            "curves.svg",
            "history.csv",
            "history.json",
            "model.json",
            "model.safetensors",
            "summary.json"
        ]
    );
    assert!(names(f.dir.path()).iter().all(|n| !n.starts_with('.')), "{:?}", names(f.dir.path()));
    ok(&["evaluate", "--run", s(&run), "--samples", s(&f.samples())]);
}

#[test]
fn train_out_naming_a_directory_with_other_files_is_refused_before_training() {
    let f = Fixture::new();
    let err = fails(&["train", "--samples", s(&f.samples()), "--out", s(f.dir.path())]);
    assert!(err.contains("samples.parquet") && err.contains("not a run"), "{err}");
    assert!(f.samples().is_file());
}

#[test]
fn split_full_disk_on_out_test_leaves_out_train_untouched() {
    let f = Fixture::new();
    let train = f.path("train.parquet");
    std::fs::write(&train, "old train").unwrap();
    // /dev/full: every write fails with ENOSPC, as on a full disk.
    let err = fails(&["split", s(&f.samples()), "--out-train", s(&train), "--out-test", "/dev/full"]);
    assert!(err.contains("No space left"), "{err}");
    assert_eq!(std::fs::read(&train).unwrap(), b"old train");
    assert_eq!(names(f.dir.path()), ["samples.csv", "samples.parquet", "train.parquet"]);
}

#[test]
fn convert_content_cites_failure_pairs_no_new_graph_with_old_samples() {
    let dir = tempfile::tempdir().unwrap();
    let samples = dir.path().join("cora.parquet");
    std::fs::write(&samples, "old samples").unwrap();
    let err = fails(&[
        "convert",
        "--content",
        &data("cora/cora.content.gz"),
        "--cites",
        &data("cora/cora.cites.gz"),
        "--samples",
        s(&samples),
        "--graph",
        "/dev/full",
    ]);
    assert!(err.contains("--graph") && err.contains("No space left"), "{err}");
    assert_eq!(std::fs::read(&samples).unwrap(), b"old samples");
    assert_eq!(names(dir.path()), ["cora.parquet"]);
    // And the other way round: a graph that cannot be written keeps the old graph too.
    let graph = dir.path().join("graph.tsv");
    std::fs::write(&graph, "old graph").unwrap();
    fails(&[
        "convert",
        "--content",
        &data("cora/cora.content.gz"),
        "--cites",
        &data("cora/cora.cites.gz"),
        "--samples",
        "/dev/full",
        "--graph",
        s(&graph),
    ]);
    assert_eq!(std::fs::read(&graph).unwrap(), b"old graph");
}

#[test]
fn split_out_train_and_out_test_naming_one_file_is_a_usage_error() {
    let f = Fixture::new();
    let a = f.path("a.parquet");
    let err = fails_with(2, &["split", s(&f.samples()), "--out-train", s(&a), "--out-test", s(&a)]);
    assert!(err.contains("--out-train and --out-test name the same file"), "{err}");
    assert!(!a.exists());
    // Through another spelling of the path, too.
    let alias = f.dir.path().join(".").join("a.parquet");
    fails_with(2, &["split", s(&f.samples()), "--out-train", s(&a), "--out-test", s(&alias)]);
    // And an output naming the input.
    let err = fails_with(2, &["split", s(&f.samples()), "--out-train", s(&f.samples()), "--out-test", s(&a)]);
    assert!(err.contains("same file"), "{err}");
}

#[test]
fn record_adversarial_nodes_naming_the_samples_input_is_a_usage_error() {
    let f = Fixture::new();
    // `x.parquet`'s node table is `x.nodes.parquet`: make that the samples input.
    let samples = f.path("x.nodes.parquet");
    std::fs::copy(f.samples(), &samples).unwrap();
    let before = std::fs::read(&samples).unwrap();
    let err = fails_with(
        2,
        &[
            "train",
            "--samples",
            s(&samples),
            "--adv-reg",
            "multiplier=0.2",
            "--record-adversarial",
            s(&f.path("x.parquet")),
            "--epochs",
            "1",
            "--out",
            s(&f.path("run")),
        ],
    );
    assert!(err.contains("--samples") && err.contains("x.nodes.parquet"), "{err}");
    assert_eq!(std::fs::read(&samples).unwrap(), before);
}

#[test]
fn record_adversarial_graph_and_nodes_are_written_together() {
    let f = Fixture::new();
    let record = f.path("adv.parquet");
    ok(&[
        "train",
        "--samples",
        s(&f.samples()),
        "--adv-reg",
        "multiplier=0.2",
        "--record-adversarial",
        s(&record),
        "--epochs",
        "1",
        "--out",
        s(&f.path("run")),
    ]);
    assert!(record.is_file() && f.path("adv.nodes.parquet").is_file());
    ok(&["graph", "stats", s(&record)]);
    assert!(names(f.dir.path()).iter().all(|n| !n.starts_with('.')), "{:?}", names(f.dir.path()));
}

#[test]
fn output_dev_null_stays_a_character_device() {
    use std::os::unix::fs::FileTypeExt;
    let f = Fixture::new();
    ok(&["generate-embeddings", "--n", "10", "--dim", "2", "--output", "/dev/null"]);
    ok(&["split", s(&f.samples()), "--out-train", "/dev/null", "--out-test", "/dev/null"]);
    assert!(std::fs::metadata("/dev/null").unwrap().file_type().is_char_device());
}

// ---- Writing where it must not ----------------------------------------------------------------

#[test]
fn planted_symlink_at_the_output_or_temp_name_is_not_followed() {
    let f = Fixture::new();
    let graph = f.path("g.tsv");
    std::fs::write(&graph, "a\tb\t1\n").unwrap();
    let victim = f.path("victim.txt");
    std::fs::write(&victim, "precious").unwrap();
    let out = f.path("out.csv");
    // The old predictable names `.out.csv.PID.tmp`, for the next pids: all links to the victim.
    let first = std::process::id();
    for pid in first..first + 200 {
        std::os::unix::fs::symlink(&victim, f.path(&format!(".out.csv.{pid}.tmp"))).unwrap();
    }
    ok(&["graph", "export", s(&graph), "--format", "csv", "--output", s(&out)]);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    // A destination that is itself a link is replaced, not written through.
    std::fs::remove_file(&out).unwrap();
    std::os::unix::fs::symlink(&victim, &out).unwrap();
    ok(&["graph", "export", s(&graph), "--format", "csv", "--output", s(&out)]);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    assert!(!std::fs::symlink_metadata(&out).unwrap().file_type().is_symlink());
}

// ---- Left behind ------------------------------------------------------------------------------

/// Starts `nsl args`, waits for a hidden temporary entry to appear in `dir`, stops the process
/// there (SIGSTOP), sends `signal` and resumes it; returns the exit status, or `None` when the
/// process finished before its temporary file could be caught.
fn signal_while_writing(dir: &Path, args: &[&str], signal: i32) -> Option<std::process::ExitStatus> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_nsl"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let start = std::time::Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return None;
        }
        if names(dir).iter().any(|n| n.starts_with('.') && n.ends_with(".tmp")) {
            // SAFETY: signals to our own child.
            unsafe { libc::kill(pid, libc::SIGSTOP) };
            if !names(dir).iter().any(|n| n.starts_with('.') && n.ends_with(".tmp")) {
                unsafe { libc::kill(pid, libc::SIGCONT) };
                child.wait().unwrap();
                return None;
            }
            unsafe {
                libc::kill(pid, signal);
                libc::kill(pid, libc::SIGCONT);
            }
            return Some(child.wait().unwrap());
        }
        assert!(start.elapsed().as_secs() < 60, "no temporary file appeared");
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
}

#[test]
fn ctrl_c_sigterm_and_panics_leave_no_hidden_tmp_files() {
    for (signal, code) in [(libc::SIGINT, 130), (libc::SIGTERM, 143)] {
        let mut caught = false;
        for n in ["300000", "1000000", "2000000"] {
            let dir = tempfile::tempdir().unwrap();
            let out = dir.path().join("e.parquet");
            let args = ["generate-embeddings", "--n", n, "--dim", "32", "--output", s(&out)];
            let Some(status) = signal_while_writing(dir.path(), &args, signal) else { continue };
            assert_eq!(status.code(), Some(code), "signal {signal}");
            assert!(names(dir.path()).is_empty(), "left behind: {:?}", names(dir.path()));
            caught = true;
            break;
        }
        assert!(caught, "the temporary file of signal {signal}'s run was never seen");
    }
    // A panic while writing: the in-process guard removes its file (tests/kill.rs has SIGKILL).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.txt");
    let caught = std::panic::catch_unwind(|| {
        let mut out = nsl::io::AtomicFile::create(&path).unwrap();
        std::io::Write::write_all(&mut out, b"partial").unwrap();
        panic!("writer failed");
    });
    assert!(caught.is_err());
    assert!(names(dir.path()).is_empty());
}

// ---- Accepted silently ------------------------------------------------------------------------

#[test]
fn learning_rate_nan_and_negative_are_refused() {
    let f = Fixture::new();
    for rate in ["nan", "-0.1", "0", "inf"] {
        let out = f.path("run");
        let err = nsl(&["train", "--samples", s(&f.samples()), "--learning-rate", rate, "--out", s(&out)]);
        assert!(!err.status.success() && err.status.code() != Some(101), "--learning-rate {rate} accepted");
        assert!(!out.exists(), "--learning-rate {rate} saved a run");
    }
}

#[test]
fn multipliers_out_of_range_are_refused() {
    let f = Fixture::new();
    let graph = f.path("g.tsv");
    std::fs::write(&graph, "s0\ts1\t1\n").unwrap();
    for (flag, value) in [
        ("--graph-reg", "multiplier=-1,neighbors=1"),
        ("--graph-reg", "multiplier=nan,neighbors=1"),
        ("--adv-reg", "multiplier=-1"),
        ("--adv-reg", "multiplier=inf"),
    ] {
        let out = f.path("run");
        let result = nsl(&["train", "--samples", s(&f.samples()), "--graph", s(&graph), flag, value, "--out", s(&out)]);
        assert!(!result.status.success() && result.status.code() != Some(101), "{flag} {value} accepted");
        assert!(!out.exists());
    }
}

#[test]
fn zero_row_tables_and_header_only_csv_are_refused() {
    let f = Fixture::new();
    let run = f.run("run", "1");
    let csv = f.path("empty.csv");
    std::fs::write(&csv, "id,f1,f2,label\n").unwrap();
    let empty = f.path("empty.parquet");
    let out = ok(&["convert", "--csv", s(&csv), "--samples", s(&empty)]);
    assert!(out.contains("0 rows"), "{out}");
    for samples in [&csv, &empty] {
        let err = fails(&["evaluate", "--run", s(&run), "--samples", s(samples)]);
        assert!(err.contains("no samples"), "{err}");
        let err = fails(&["predict", "--run", s(&run), "--samples", s(samples)]);
        assert!(err.contains("no samples"), "{err}");
        let err = fails(&["train", "--samples", s(samples), "--out", s(&f.path("run2"))]);
        assert!(err.contains("empty") || err.contains("no labels"), "{err}");
    }
}

#[test]
fn empty_string_ids_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("s.csv");
    std::fs::write(&csv, "id,f1,label\n,1,0\nb,2,1\n").unwrap();
    let err = fails(&["convert", "--csv", s(&csv), "--samples", s(&dir.path().join("o.parquet"))]);
    assert!(err.contains("s.csv") && err.contains("empty id"), "{err}");
    let table = dir.path().join("t.parquet");
    let features = vec![Some(vec![Some(1.0)]), Some(vec![Some(2.0)])];
    write_table(&table, &["", "b"], features, &[0, 1]);
    let err = fails(&["convert", "--parquet", s(&table), "--samples", s(&dir.path().join("o.parquet"))]);
    assert!(err.contains("t.parquet") && err.contains("empty id"), "{err}");
}

#[test]
fn format_version_99_is_refused() {
    let f = Fixture::new();
    let run = f.run("run", "1");
    let meta_path = run.join("model.json");
    let mut meta: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta_path).unwrap()).unwrap();
    meta["format_version"] = serde_json::json!(99);
    std::fs::write(&meta_path, serde_json::to_vec(&meta).unwrap()).unwrap();
    let err = fails(&["evaluate", "--run", s(&run), "--samples", s(&f.samples())]);
    assert!(err.contains("model.json") && err.contains("99"), "{err}");
}

// ---- Weak messages ----------------------------------------------------------------------------

#[test]
fn all_empty_feature_lists_name_the_file_not_candle_narrow() {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("t.parquet");
    write_table(&table, &["a", "b"], vec![Some(vec![]), Some(vec![])], &[0, 1]);
    let err = fails(&["train", "--samples", s(&table), "--out", s(&dir.path().join("run"))]);
    assert!(err.contains("t.parquet") && !err.contains("narrow"), "{err}");
}

#[test]
fn convert_blames_the_input_not_the_output() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("in.parquet");
    let mut bytes = b"PAR1".to_vec();
    bytes.extend([0x15u8; 64]);
    bytes.extend(b"PAR1");
    std::fs::write(&bad, bytes).unwrap();
    let out = dir.path().join("out.parquet");
    let err = fails(&["convert", "--parquet", s(&bad), "--samples", s(&out)]);
    assert!(err.contains("in.parquet") && !err.contains("out.parquet"), "{err}");
    // An output that cannot be written is named by its flag and path.
    let csv = dir.path().join("s.csv");
    std::fs::write(&csv, "id,f1,label\na,1,0\n").unwrap();
    let err = fails(&["convert", "--csv", s(&csv), "--samples", "/nonexistent-dir/out.parquet"]);
    assert!(err.contains("/nonexistent-dir/out.parquet"), "{err}");
}

#[test]
fn output_errors_name_the_path() {
    let f = Fixture::new();
    let run = f.run("run", "1");
    let missing = "/nonexistent-dir/sub/out";
    let err = fails(&["predict", "--run", s(&run), "--samples", s(&f.samples()), "--output", missing]);
    assert!(err.contains(missing), "predict: {err}");
    let err = fails(&["predict", "--run", s(&run), "--samples", s(&f.samples()), "--output", "/dev/full"]);
    assert!(err.contains("/dev/full") && err.contains("No space left"), "predict: {err}");
    let err = fails(&[
        "evaluate",
        "--run",
        s(&run),
        "--samples",
        s(&f.samples()),
        "--attack",
        "fgsm",
        "--epsilon",
        "0.1",
        "--plot",
        missing,
    ]);
    assert!(err.contains(missing), "evaluate --plot: {err}");
    // demo: an output that cannot be written is named, and its partner is not written either.
    let demo = f.path("demo");
    std::fs::create_dir_all(demo.join("cora_graph.parquet")).unwrap();
    let err = fails(&["demo", "--graph", "--out", s(&demo)]);
    assert!(err.contains("cora_graph.parquet") && err.contains("directory"), "demo: {err}");
    assert_eq!(names(&demo), ["cora_graph.parquet"]);
    // A file where train's output directory should be made.
    let file = f.path("file");
    std::fs::write(&file, "x").unwrap();
    let err = fails(&["train", "--samples", s(&f.samples()), "--out", s(&file.join("run"))]);
    assert!(err.contains(s(&file)), "train: {err}");
}

#[test]
fn evaluate_attack_from_an_incompatible_run_names_both() {
    let f = Fixture::new();
    let run = f.run("run", "1");
    // A run on 3 features.
    let csv = f.path("three.csv");
    std::fs::write(&csv, "id,f1,f2,f3,label\na,1,2,3,0\nb,3,2,1,1\n").unwrap();
    let other = f.path("other");
    ok(&["train", "--samples", s(&csv), "--model", "mlp:4", "--epochs", "1", "--out", s(&other)]);
    let err = fails(&[
        "evaluate",
        "--run",
        s(&run),
        "--samples",
        s(&f.samples()),
        "--attack",
        "fgsm",
        "--attack-from",
        s(&other),
    ]);
    assert!(err.contains("--attack-from") && err.contains("source run"), "{err}");
    assert!(err.contains("2 features") && err.contains("expects 3"), "{err}");
    assert!(!err.contains("dense layer"), "{err}");
}

#[test]
fn idx_file_with_a_bad_magic_is_reported_as_idx_not_csv() {
    let dir = tempfile::tempdir().unwrap();
    let idx = dir.path().join("train-images-idx3-ubyte");
    std::fs::write(&idx, [0x00, 0x00, 0x07, 0x03, 0, 0, 0, 1, 0xff, 0xfe]).unwrap();
    let err =
        fails(&["split", s(&idx), "--out-train", s(&dir.path().join("a")), "--out-test", s(&dir.path().join("b"))]);
    assert!(err.contains("magic") && !err.contains("UTF-8"), "{err}");
}

#[test]
fn zero_byte_parquet_gets_parquet_wording() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.parquet");
    std::fs::write(&empty, "").unwrap();
    let err =
        fails(&["split", s(&empty), "--out-train", s(&dir.path().join("a")), "--out-test", s(&dir.path().join("b"))]);
    assert!(err.contains("Parquet") && !err.contains("header row"), "{err}");
}

#[test]
fn train_out_naming_a_file_says_so() {
    let f = Fixture::new();
    let file = f.path("afile");
    std::fs::write(&file, "keep").unwrap();
    let err = fails(&["train", "--samples", s(&f.samples()), "--out", s(&file)]);
    assert!(err.contains("--out") && err.contains("is a file") && !err.contains("File exists"), "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), b"keep");
}

#[test]
fn evaluate_on_labels_of_other_names_or_out_of_range_is_aligned_or_refused() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let train = write("train.csv", "id,f1,f2,label\na,1,2,x\nb,2,3,y\nc,3,1,x\nd,0,1,y\n");
    let run = dir.path().join("run");
    ok(&["train", "--samples", s(&train), "--model", "mlp:4", "--epochs", "1", "--out", s(&run)]);
    // Only class `y`: its index is 0 in this file but 1 in the run; scored as the run's `y`.
    let only_y = write("y.csv", "id,f1,f2,label\na,1,2,y\nb,2,3,y\n");
    let json: serde_json::Value =
        serde_json::from_str(&ok(&["evaluate", "--run", s(&run), "--samples", s(&only_y), "--json"])).unwrap();
    let predicted = ok(&["predict", "--run", s(&run), "--samples", s(&only_y)]);
    let right = predicted.lines().skip(1).filter(|l| l.split(',').nth(1) == Some("y")).count();
    assert_eq!(json["accuracy"].as_f64().unwrap(), right as f64 / 2.0, "{predicted}");
    let other = write("z.csv", "id,f1,f2,label\na,1,2,y\nb,2,3,z\n");
    let err = fails(&["evaluate", "--run", s(&run), "--samples", s(&other)]);
    assert!(err.contains("`z`") && err.contains("not one of the run's classes"), "{err}");
    let numeric = write("n.csv", "id,f1,f2,label\na,1,2,0\nb,2,3,5\n");
    let unnamed = dir.path().join("unnamed");
    ok(&["train", "--samples", s(&numeric), "--model", "mlp:4", "--epochs", "1", "--out", s(&unnamed)]);
    let big = write("big.csv", "id,f1,f2,label\na,1,2,7\n");
    let err = fails(&["evaluate", "--run", s(&unnamed), "--samples", s(&big)]);
    assert!(err.contains("big.csv") && err.contains("label 7") && !err.contains("candle"), "{err}");
}

// ---- Also -------------------------------------------------------------------------------------

#[test]
fn model_safetensors_is_readable_by_others() {
    use std::os::unix::fs::PermissionsExt;
    let f = Fixture::new();
    let run = f.run("run", "1");
    // The test harness runs under the usual umask 022 (or stricter for group/others' write).
    for name in ["model.safetensors", "model.json"] {
        let mode = std::fs::metadata(run.join(name)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o444, 0o444, "{name} has mode {mode:o}");
    }
    let mode = std::fs::metadata(&run).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode & 0o555, 0o555, "the run directory has mode {mode:o}");
}

#[test]
fn predict_csv_header_quotes_class_names() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("s.csv");
    std::fs::write(&csv, "id,f1,label\na,1,\"x,1\"\nb,2,y\n").unwrap();
    let run = dir.path().join("run");
    ok(&["train", "--samples", s(&csv), "--model", "mlp:4", "--epochs", "1", "--out", s(&run)]);
    let out = ok(&["predict", "--run", s(&run), "--samples", s(&csv)]);
    let mut reader = csv::Reader::from_reader(out.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(str::to_owned).collect();
    assert_eq!(header, ["id", "prediction", "p_x,1", "p_y"]);
}
