//! Fuzzing every reader with a seeded byte mutator (issue 15): valid inputs of each format —
//! Parquet samples and graphs, CSV, TSV, IDX, LINQS `.content` and `.cites`, `.npy`, `.npz`, CIFAR
//! batches, PNG images, a run's
//! `model.json` + `model.safetensors` — are mutated (bytes flipped, set, inserted, removed, runs
//! duplicated, the file truncated) and read in-process under `catch_unwind`: every reader must
//! return `Ok` or an error, never panic. A last test runs `nsl convert` on mutated inputs and
//! checks that a failed run leaves no output and no temporary file.
//!
//! The mutator is a ChaCha8 stream from a fixed seed, so a failure is reproducible: the message
//! names the format, the case number and the seed. Counts are bounded to run in seconds in release.

use nsl::data::{self, SampleColumns};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// Mutated cases per format.
const CASES: usize = 400;

/// One random mutation of `bytes` (at least one byte changes, unless the input is empty).
fn mutate(rng: &mut ChaCha8Rng, bytes: &mut Vec<u8>) {
    let rounds = rng.random_range(1..=4);
    for _ in 0..rounds {
        let len = bytes.len();
        if len == 0 {
            bytes.push(rng.random());
            continue;
        }
        let at = rng.random_range(0..len);
        match rng.random_range(0..8) {
            0 => bytes[at] ^= 1 << rng.random_range(0..8),
            1 => bytes[at] = [0x00, 0xff, 0x7f, 0x80, b',', b'\t', b'\n', b'-'][rng.random_range(0..8)],
            2 => bytes[at] = rng.random(),
            3 => {
                let n = rng.random_range(1..=16);
                let insert: Vec<u8> = (0..n).map(|_| rng.random()).collect();
                bytes.splice(at..at, insert);
            }
            4 => {
                let end = (at + rng.random_range(1..=32)).min(len);
                bytes.drain(at..end);
            }
            5 => bytes.truncate(at),
            6 => {
                let end = (at + rng.random_range(1..=64)).min(len);
                let run = bytes[at..end].to_vec();
                bytes.splice(at..at, run);
            }
            _ => {
                // A big-endian or little-endian size field set to an extreme value.
                let extreme: [u8; 4] =
                    [[0xff; 4], [0x7f, 0xff, 0xff, 0xff], [0, 0, 0, 0], [0x80, 0, 0, 0]][rng.random_range(0..4)];
                for (i, b) in extreme.iter().enumerate() {
                    if at + i < bytes.len() {
                        bytes[at + i] = *b;
                    }
                }
            }
        }
    }
}

/// Mutates `valid` `CASES` times (seeded by `seed`), writes each case to `path` and runs `read`
/// on it; fails naming the case if `read` panics.
fn fuzz(name: &str, seed: u64, valid: &[u8], path: &Path, read: &dyn Fn(&Path)) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // Panics are caught and counted; keep the default hook's output short.
    for case in 0..CASES {
        let mut bytes = valid.to_vec();
        mutate(&mut rng, &mut bytes);
        std::fs::write(path, &bytes).unwrap();
        let outcome = catch_unwind(AssertUnwindSafe(|| read(path)));
        if outcome.is_err() {
            let kept = path.with_extension(format!("panic-{case}"));
            std::fs::copy(path, &kept).unwrap();
            panic!("{name}: the reader panicked on case {case} (seed {seed}); input kept at {}", kept.display());
        }
    }
}

fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets").join(rel)
}

/// The first `lines` lines of a (gzipped) dataset file.
fn head(rel: &str, lines: usize) -> Vec<u8> {
    let text = nsl::io::read_maybe_gz(&data(rel)).unwrap();
    let text = String::from_utf8(text).unwrap();
    let mut out: String = text.lines().take(lines).collect::<Vec<_>>().join("\n");
    out.push('\n');
    out.into_bytes()
}

fn samples_csv() -> Vec<u8> {
    let mut text = String::from("id,f1,f2,f3,label\n");
    for i in 0..12 {
        text.push_str(&format!("s{i},{},{}.5,-{},{}\n", i, i % 3, i * 2, ["a", "b", "c"][i % 3]));
    }
    text.into_bytes()
}

/// A valid Parquet samples table (through the crate's writer).
fn samples_parquet(dir: &Path) -> Vec<u8> {
    let csv = dir.join("valid.csv");
    std::fs::write(&csv, samples_csv()).unwrap();
    let dataset = data::read_samples(&csv, &SampleColumns::default()).unwrap();
    let out = dir.join("valid.parquet");
    data::write_samples(&dataset, &out).unwrap();
    std::fs::read(out).unwrap()
}

fn read_samples(path: &Path) {
    let _ = data::read_samples(path, &SampleColumns::default());
}

#[test]
fn parquet_samples_reader_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let valid = samples_parquet(dir.path());
    let path = dir.path().join("case.parquet");
    fuzz("parquet samples", 1, &valid, &path, &|p| {
        let _ = data::read_parquet_samples(p, &SampleColumns::default());
    });
}

#[test]
fn csv_reader_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("case.csv");
    fuzz("csv", 2, &samples_csv(), &path, &read_samples);
}

#[test]
fn idx_reader_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    // 6 images of 4×4 and their labels.
    let mut images = vec![0, 0, 8, 3, 0, 0, 0, 6, 0, 0, 0, 4, 0, 0, 0, 4];
    images.extend((0..96u8).map(|i| i.wrapping_mul(37)));
    let mut labels = vec![0, 0, 8, 1, 0, 0, 0, 6];
    labels.extend([0, 1, 2, 3, 4, 5]);
    let (image_path, label_path) = (dir.path().join("images-idx3-ubyte"), dir.path().join("labels-idx1-ubyte"));
    std::fs::write(&label_path, &labels).unwrap();
    let options = data::IdxOptions::default();
    fuzz("idx images", 3, &images, &image_path, &|p| {
        let _ = data::read_idx(p, Some(&label_path), &options);
        let _ = data::read_samples(p, &SampleColumns::default());
    });
    std::fs::write(&image_path, &images).unwrap();
    fuzz("idx labels", 4, &labels, &label_path, &|p| {
        let _ = data::read_idx(&image_path, Some(p), &options);
    });
}

#[test]
fn linqs_content_and_cites_readers_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let content = head("cora/cora.content.gz", 20);
    let path = dir.path().join("case.content");
    fuzz("linqs content", 5, &content, &path, &|p| {
        let _ = data::read_content(p);
    });
    let cites = head("cora/cora.cites.gz", 60);
    let path = dir.path().join("case.cites");
    for unknown in [nsl::graph::UnknownIds::Skip, nsl::graph::UnknownIds::Error] {
        fuzz("linqs cites", 6, &cites, &path, &|p| {
            let _ = nsl::graph::read_cites(p, &|id: &str| id.len() < 4, unknown);
        });
    }
}

#[test]
fn graph_tsv_and_parquet_readers_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let mut tsv = String::new();
    for i in 0..30 {
        tsv.push_str(&format!("n{i}\tn{}\t0.{}\n", (i * 7) % 30, i % 10));
    }
    let path = dir.path().join("case.tsv");
    fuzz("graph tsv", 7, tsv.as_bytes(), &path, &|p| {
        let _ = nsl::graph::read_graph(p);
    });
    let tsv_path = dir.path().join("valid.tsv");
    std::fs::write(&tsv_path, &tsv).unwrap();
    let graph = nsl::graph::read_graph(&tsv_path).unwrap();
    let parquet_path = dir.path().join("valid.parquet");
    nsl::graph::write_graph(&graph, &parquet_path).unwrap();
    let valid = std::fs::read(&parquet_path).unwrap();
    let path = dir.path().join("case.parquet");
    fuzz("graph parquet", 8, &valid, &path, &|p| {
        let _ = nsl::graph::read_graph(p);
    });
}

/// A run directory trained on the fuzz samples (built through the library, no binary needed).
fn trained_run(dir: &Path) -> PathBuf {
    let csv = dir.join("train.csv");
    std::fs::write(&csv, samples_csv()).unwrap();
    let out = dir.join("run");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_nsl"))
        .args(["train", "--samples", csv.to_str().unwrap(), "--model", "mlp:3", "--epochs", "1"])
        .args(["--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    out
}

#[test]
fn checkpoint_loader_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let run = trained_run(dir.path());
    let meta = std::fs::read(run.join("model.json")).unwrap();
    let weights = std::fs::read(run.join("model.safetensors")).unwrap();
    let load = |_: &Path| {
        let _ = nsl::train::load_checkpoint(&run);
    };
    fuzz("model.json", 9, &meta, &run.join("model.json"), &load);
    std::fs::write(run.join("model.json"), &meta).unwrap();
    fuzz("model.safetensors", 10, &weights, &run.join("model.safetensors"), &load);
}

#[test]
fn convert_on_mutated_inputs_exits_cleanly_and_leaves_no_partial_output() {
    let dir = tempfile::tempdir().unwrap();
    let valid = samples_parquet(dir.path());
    let input = dir.path().join("in.csv.parquet");
    let outdir = dir.path().join("out");
    std::fs::create_dir(&outdir).unwrap();
    let out = outdir.join("out.parquet");
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    for case in 0..40 {
        let mut bytes = if case % 2 == 0 { valid.clone() } else { samples_csv() };
        mutate(&mut rng, &mut bytes);
        std::fs::write(&input, &bytes).unwrap();
        let flag = if case % 2 == 0 { "--parquet" } else { "--csv" };
        let result = std::process::Command::new(env!("CARGO_BIN_EXE_nsl"))
            .args(["convert", flag, input.to_str().unwrap(), "--samples", out.to_str().unwrap()])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert_ne!(result.status.code(), Some(101), "case {case} panicked: {stderr}");
        let entries: Vec<_> = std::fs::read_dir(&outdir).unwrap().map(|e| e.unwrap().file_name()).collect();
        if result.status.success() {
            assert_eq!(entries.len(), 1, "case {case}: {entries:?}");
            data::read_parquet_samples(&out, &SampleColumns::default()).unwrap();
            std::fs::remove_file(&out).unwrap();
        } else {
            assert!(entries.is_empty(), "case {case} failed ({stderr}) but left {entries:?}");
        }
    }
}

/// A token-list table as pyarrow writes it (no nsl metadata): `rows` lists of ids, labels 0/1.
fn token_table(path: &Path, rows: &[Vec<i64>]) -> Vec<u8> {
    use arrow::array::{ArrayRef, Int64Array, ListArray, StringArray};
    let ids: ArrayRef = std::sync::Arc::new(StringArray::from_iter_values((0..rows.len()).map(|i| format!("t{i}"))));
    let words: ArrayRef = std::sync::Arc::new(ListArray::from_iter_primitive::<arrow::datatypes::Int64Type, _, _>(
        rows.iter().map(|r| Some(r.iter().map(|&v| Some(v)).collect::<Vec<_>>())),
    ));
    let labels: ArrayRef = std::sync::Arc::new(Int64Array::from_iter_values((0..rows.len() as i64).map(|i| i % 2)));
    let batch =
        arrow::record_batch::RecordBatch::try_from_iter([("id", ids), ("words", words), ("label", labels)]).unwrap();
    let mut writer =
        ::parquet::arrow::ArrowWriter::try_new(std::fs::File::create(path).unwrap(), batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    std::fs::read(path).unwrap()
}

/// Issue 22: token-list tables split across files. A training file and a test file with other
/// longest lists and other largest ids; each is mutated in turn and read as `nsl train` reads a
/// run's files (layouts merged, every file conformed to the merge) and as `nsl evaluate` reads a
/// later file into a trained `bow` model (widened or refused, never a panic).
#[test]
fn token_lists_split_across_files_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let train_rows: Vec<Vec<i64>> = (0..10).map(|i| (0..(i % 4) + 1).map(|k| (i * 3 + k) % 9).collect()).collect();
    let test_rows: Vec<Vec<i64>> = (0..6).map(|i| (0..(i % 6) + 1).map(|k| (i + k * 5) % 12).collect()).collect();
    let train_path = dir.path().join("train.parquet");
    let train_bytes = token_table(&train_path, &train_rows);
    let test_path = dir.path().join("test.parquet");
    let test_bytes = token_table(&test_path, &test_rows);
    let run = dir.path().join("run");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_nsl"))
        .args(["train", "--samples", train_path.to_str().unwrap(), "--model", "bow:3", "--epochs", "1"])
        .args(["--out", run.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let columns = SampleColumns::default();
    let as_a_run = |train: &Path, test: &Path| {
        let (Ok(a), Ok(b)) = (data::read_samples(train, &columns), data::read_samples(test, &columns)) else {
            return;
        };
        if let Ok(layout) = a.layout().merge(b.layout()) {
            let (a, b) = (a.conform(&layout), b.conform(&layout));
            assert!(a.is_ok() && b.is_ok(), "a merged layout holds both files");
        }
    };
    fuzz("token lists: test file", 12, &test_bytes, &test_path, &|p| {
        as_a_run(&train_path, p);
        if let (Ok(mut checkpoint), Ok(samples)) = (nsl::train::load_checkpoint(&run), data::read_samples(p, &columns))
        {
            let _ = checkpoint.fit_samples(samples);
        }
    });
    std::fs::write(&test_path, &test_bytes).unwrap();
    fuzz("token lists: training file", 13, &train_bytes, &train_path, &|p| as_a_run(p, &test_path));
}

/// Issue 22: split tables (`id<TAB>split`, Planetoid's format) mutated, against samples that lack
/// some of the table's `other` ids.
#[test]
fn split_tables_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("samples.csv");
    std::fs::write(&csv, samples_csv()).unwrap();
    let samples = data::read_samples(&csv, &SampleColumns::default()).unwrap();
    let mut table = String::from("id\tsplit\n");
    for i in 0..12 {
        table.push_str(&format!("s{i}\t{}\n", ["train", "val", "test", "other", "unlabeled"][i % 5]));
    }
    table.push_str("# dropped nodes\ns12\tother\ns13\tunlabeled\n");
    let path = dir.path().join("case.tsv");
    std::fs::write(&path, &table).unwrap();
    assert_eq!(data::split_by_table(&samples, &path).unwrap().skipped_other, 2);
    fuzz("split table", 14, table.as_bytes(), &path, &|p| {
        let _ = data::split_by_table(&samples, p);
    });
}

/// Issue 27's readers: `.npy`, `.npz` (stored members), CIFAR batches and PNG images.
#[test]
fn array_and_image_readers_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let d = data::Dataset::new(
        vec!["a".into(), "b".into()],
        ndarray::array![[0.0f32, 0.5, 1.0, 0.25], [1.0, 0.0, 0.75, 0.5]],
        vec![1, 2, 2],
        Some(vec![0, 1]),
        None,
    )
    .unwrap();
    let (npy, npz) = (dir.path().join("valid.npy"), dir.path().join("valid.npz"));
    data::write_npy(&d, &npy).unwrap();
    data::write_npz(&d, &npz).unwrap();
    fuzz("npy", 31, &std::fs::read(&npy).unwrap(), &dir.path().join("case.npy"), &read_samples);
    fuzz("npz", 32, &std::fs::read(&npz).unwrap(), &dir.path().join("case.npz"), &read_samples);
    let cifar: Vec<u8> = (0..2 * 3073).map(|i| if i % 3073 == 0 { 3 } else { (i % 251) as u8 }).collect();
    fuzz("cifar", 33, &cifar, &dir.path().join("case.bin"), &read_samples);
    let mut png = std::io::Cursor::new(Vec::new());
    let pixels: Vec<u8> = (0..64u8).map(|v| v * 4).collect();
    image::DynamicImage::ImageLuma8(image::GrayImage::from_raw(8, 8, pixels).unwrap())
        .write_to(&mut png, image::ImageFormat::Png)
        .unwrap();
    let folder = dir.path().join("images");
    std::fs::create_dir_all(folder.join("class")).unwrap();
    let read_folder = |_: &Path| {
        let _ = data::read_images(data::ImageSource::Folder(&folder), &data::ImageConfig::default(), &|_, _| {});
    };
    fuzz("png", 34, &png.into_inner(), &folder.join("class/case.png"), &read_folder);
}
