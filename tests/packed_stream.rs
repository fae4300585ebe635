//! `nsl train --packed DIR_OR_FILE`: packed Parquet tables streamed through a seeded shuffle
//! buffer (issue 13, item 2) train the model that in-memory `--graph` training trains, bit for bit,
//! when the buffer holds the whole table; smaller buffers are deterministic per seed; directories
//! of parts train; bad tables are clear errors.

use candle_core::Device;
use nsl::data::{read_samples, SampleColumns};
use nsl::neighbors::{NeighborTable, PackedConfig, PackedParts};
use std::path::{Path, PathBuf};

mod common;
use common::{fails, ok};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Cora as NSL's tutorial splits it: training papers, test papers (the pool), the citation graph,
/// and the training papers packed with their 3 best neighbors.
struct Cora {
    dir: tempfile::TempDir,
}

impl Cora {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/cora");
        let c = Cora { dir };
        let (all, graph) = (c.path("cora.parquet"), c.path("graph.parquet"));
        ok(&[
            "convert",
            "--content",
            s(&d.join("cora.content.gz")),
            "--cites",
            s(&d.join("cora.cites.gz")),
            "--samples",
            s(&all),
            "--graph",
            s(&graph),
        ]);
        let (train, test) = (c.path("train.parquet"), c.path("test.parquet"));
        ok(&["split", s(&all), "--method", "nsl", "--seed", "1", "--out-train", s(&train), "--out-test", s(&test)]);
        ok(&[
            "pack-nbrs",
            "--samples",
            s(&train),
            "--pool",
            s(&test),
            "--graph",
            s(&graph),
            "--max-neighbors",
            "3",
            "--output",
            s(&c.path("packed.parquet")),
        ]);
        c
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

#[test]
fn stream_in_file_order_gives_the_in_memory_neighbors() {
    let cora = Cora::new();
    let columns = SampleColumns::default();
    let train = read_samples(&cora.path("train.parquet"), &columns).unwrap();
    let pool = read_samples(&cora.path("test.parquet"), &columns).unwrap();
    let graph = nsl::graph::read_graph(&cora.path("graph.parquet")).unwrap();
    let (table, _) = NeighborTable::new(&train, Some(&pool), &graph, 2).unwrap();
    let parts = PackedParts::open(&cora.path("packed.parquet")).unwrap();
    assert_eq!((parts.rows(), parts.dim(), parts.neighbor_columns()), (train.len(), 1433, 3));
    assert_eq!(parts.class_names(), train.class_names());
    let mut epoch = parts.epoch(&PackedConfig::default(), 2, 0, 1, None);
    let mut first = 0;
    while let Some(batch) = epoch.next_batch(100).unwrap() {
        let n = batch.samples.len();
        let rows: Vec<usize> = (first..first + n).collect();
        assert_eq!(batch.samples.ids(), &train.ids()[first..first + n]);
        assert_eq!(batch.samples.features(), train.features().slice(ndarray::s![first..first + n, ..]));
        assert_eq!(batch.samples.labels().unwrap(), &train.labels().unwrap()[first..first + n]);
        let (want_x, want) = table.batch(&rows, &Device::Cpu).unwrap();
        let local: Vec<usize> = (0..n).collect();
        let (got_x, got) = batch.neighbors.batch(&local, &Device::Cpu).unwrap();
        assert_eq!(got.sample_index.to_vec1::<u32>().unwrap(), want.sample_index.to_vec1::<u32>().unwrap());
        assert_eq!(got.weights.to_vec1::<f32>().unwrap(), want.weights.to_vec1::<f32>().unwrap());
        assert_eq!(got_x.to_vec2::<f32>().unwrap(), want_x.to_vec2::<f32>().unwrap());
        assert_eq!(got.slots, want.slots);
        first += n;
    }
    assert_eq!(first, train.len());
}

/// The weights of a trained model, in name order.
fn weights(vars: &candle_nn::VarMap) -> Vec<(String, Vec<f32>)> {
    let data = vars.data().lock().unwrap();
    let mut out: Vec<(String, Vec<f32>)> =
        data.iter().map(|(k, v)| (k.clone(), v.as_tensor().flatten_all().unwrap().to_vec1().unwrap())).collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn fit_packed_equals_fit_with_graph_in_the_library() {
    use nsl::regularize::GraphRegConfig;
    use nsl::train::{TrainConfig, TrainData, Trainer};
    let cora = Cora::new();
    let columns = SampleColumns::default();
    let train = read_samples(&cora.path("train.parquet"), &columns).unwrap();
    let pool = read_samples(&cora.path("test.parquet"), &columns).unwrap();
    let graph = nsl::graph::read_graph(&cora.path("graph.parquet")).unwrap();
    let reg = GraphRegConfig::from_kv("multiplier=0.1,neighbors=2").unwrap();
    let (table, _) = NeighborTable::new(&train, Some(&pool), &graph, 2).unwrap();
    let parts = PackedParts::open(&cora.path("packed.parquet")).unwrap();
    let spec: nsl::ModelSpec = "mlp:16".parse().unwrap();
    let config = TrainConfig { epochs: 2, batch_size: 128, seed: 5, threads: Some(1), ..TrainConfig::default() };
    let (m1, v1) = nsl::build_model(&spec, &[1433], 7, 5, &Device::Cpu).unwrap();
    let h1 = Trainer::new(m1.as_ref(), &v1, config.clone()).with_graph(&table, &reg).fit(&train, None).unwrap();
    let (m2, v2) = nsl::build_model(&spec, &[1433], 7, 5, &Device::Cpu).unwrap();
    let h2 = Trainer::new(m2.as_ref(), &v2, config)
        .fit(TrainData::Packed { parts: &parts, config: &PackedConfig::default(), graph: Some(&reg) }, None)
        .unwrap();
    let (a, b) = (weights(&v1), weights(&v2));
    let differing: usize = a.iter().zip(&b).map(|(x, y)| x.1.iter().zip(&y.1).filter(|(p, q)| p != q).count()).sum();
    assert_eq!(differing, 0, "{differing} of the weights differ");
    // The streamed epoch counts its training metrics batch by batch: the in-memory epoch's values.
    for (e1, e2) in h1.epochs.iter().zip(&h2.epochs) {
        let (m1, m2) = (e1.metrics.as_ref().unwrap(), e2.metrics.as_ref().expect("packed training metrics"));
        assert_eq!((m1.accuracy, m1.macro_f1), (m2.accuracy, m2.macro_f1), "epoch {}", e1.epoch);
        assert_eq!(m2.accuracy, Some(e2.accuracy), "epoch {}", e1.epoch);
    }
}

/// The flags both runs share: graph regularization on 2 of the 3 packed neighbors (seed 0).
const COMMON: [&str; 10] = [
    "--graph-reg",
    "multiplier=0.1,neighbors=2",
    "--model",
    "mlp:32",
    "--epochs",
    "3",
    "--batch-size",
    "128",
    "--threads",
    "1",
];

fn train_run(cora: &Cora, out: &str, inputs: &[&str], extra: &[&str]) -> (Vec<u8>, serde_json::Value) {
    let run = cora.path(out);
    let mut args = vec!["train"];
    args.extend_from_slice(inputs);
    args.extend_from_slice(&COMMON);
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--out", s(&run), "--json"]);
    let summary = serde_json::from_str(&ok(&args)).unwrap();
    (std::fs::read(run.join("model.safetensors")).unwrap(), summary)
}

#[test]
fn issue_13_train_packed_equals_train_graph_byte_for_byte() {
    let cora = Cora::new();
    let (train, test, graph, packed) = (
        cora.path("train.parquet"),
        cora.path("test.parquet"),
        cora.path("graph.parquet"),
        cora.path("packed.parquet"),
    );
    let eval = ["--validation", s(&test), "--test", s(&test)];
    let (in_memory, a) =
        train_run(&cora, "memory", &["--samples", s(&train), "--pool", s(&test), "--graph", s(&graph)], &eval);
    // The default buffer (10,000 rows) holds Cora's 2,155 training papers: the in-memory order.
    let (streamed, b) = train_run(&cora, "packed", &["--packed", s(&packed)], &eval);
    assert!(in_memory == streamed, "the streamed model differs from the in-memory one");
    assert_eq!(a["test_accuracy"], b["test_accuracy"]);
    assert_eq!(b["train_samples"], 2155);
    // The run is a run: `nsl evaluate` reads it and the class names came through the table.
    let out = ok(&["evaluate", "--run", s(&cora.path("packed")), "--samples", s(&test), "--json"]);
    let evaluated: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(evaluated["accuracy"], b["test_accuracy"], "{out}");
}

#[test]
fn a_small_buffer_is_deterministic_per_seed_and_differs_across_seeds() {
    let cora = Cora::new();
    let packed = cora.path("packed.parquet");
    let inputs = ["--packed", s(&packed)];
    let (whole, _) = train_run(&cora, "whole", &inputs, &[]);
    let (a, _) = train_run(&cora, "a", &inputs, &["--shuffle-buffer", "64"]);
    let (b, _) = train_run(&cora, "b", &inputs, &["--shuffle-buffer", "64"]);
    let (c, _) = train_run(&cora, "c", &inputs, &["--shuffle-buffer", "64", "--seed", "6"]);
    assert!(a == b, "the same seed and buffer give the same model");
    assert!(a != c, "another seed gives another order");
    assert!(a != whole, "a 64-row buffer does not give the whole table's permutation");
}

/// `packed.parquet` rewritten as `parts` Parquet parts of consecutive rows in `dir`, plus the
/// files Spark leaves beside them.
fn write_parts(packed: &Path, dir: &Path, parts: usize) {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(packed).unwrap()).unwrap();
    let schema = reader.schema().clone();
    let batches: Vec<_> = reader.build().unwrap().map(Result::unwrap).collect();
    let all = arrow::compute::concat_batches(&schema, &batches).unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let per = all.num_rows().div_ceil(parts);
    for i in 0..parts {
        let start = i * per;
        let rows = per.min(all.num_rows() - start);
        let file = std::fs::File::create(dir.join(format!("part-{i:05}-x.snappy.parquet"))).unwrap();
        let mut writer = parquet::arrow::ArrowWriter::try_new(file, schema.clone(), None).unwrap();
        writer.write(&all.slice(start, rows)).unwrap();
        writer.close().unwrap();
    }
    std::fs::write(dir.join("_SUCCESS"), b"").unwrap();
    std::fs::write(dir.join(".part-00000-x.snappy.parquet.crc"), b"crc").unwrap();
}

#[test]
fn a_directory_of_parts_trains_and_in_sorted_order_equals_the_file() {
    let cora = Cora::new();
    let dir = cora.path("parts");
    write_parts(&cora.path("packed.parquet"), &dir, 3);
    let parts = PackedParts::open(&dir).unwrap();
    assert_eq!((parts.files().len(), parts.rows()), (3, 2155));
    let (file, _) = train_run(&cora, "file", &["--packed", s(&cora.path("packed.parquet"))], &[]);
    let (sorted, _) = train_run(&cora, "sorted", &["--packed", s(&dir)], &["--keep-part-order"]);
    assert!(file == sorted, "parts read in name order are the file's rows in order");
    let (shuffled, summary) = train_run(&cora, "shuffled", &["--packed", s(&dir)], &[]);
    assert_eq!(summary["train_samples"], 2155);
    assert!(shuffled != file, "a seeded part order is another row order");
}

/// Writes `batch` to `path`.
fn write_batch(path: &Path, batch: &arrow::array::RecordBatch) {
    let file = std::fs::File::create(path).unwrap();
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    writer.write(batch).unwrap();
    writer.close().unwrap();
}

/// The packed table's rows as one record batch.
fn read_all(path: &Path) -> arrow::array::RecordBatch {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(path).unwrap()).unwrap();
    let schema = reader.schema().clone();
    let batches: Vec<_> = reader.build().unwrap().map(Result::unwrap).collect();
    arrow::compute::concat_batches(&schema, &batches).unwrap()
}

#[test]
fn bad_packed_tables_are_clear_errors() {
    use arrow::array::{Array, ArrayRef, AsArray, FixedSizeListArray, Float32Array};
    use arrow::datatypes::Float32Type;
    use std::sync::Arc;
    let cora = Cora::new();
    let all = read_all(&cora.path("packed.parquet"));
    let train_args = |packed: &Path, out: &str| {
        let run = cora.path(out);
        let mut args = vec!["train".to_owned(), "--packed".into(), s(packed).into()];
        args.extend(COMMON.iter().map(|a| a.to_string()));
        args.extend(["--out".into(), s(&run).into()]);
        let err = fails(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(!run.exists(), "nothing is written");
        err
    };
    // Not a packed table: the samples themselves.
    let train = cora.path("train.parquet");
    let err = train_args(&train, "r1");
    assert!(err.contains(s(&train)) && err.contains("not a packed table") && err.contains("NL_num_nbrs"), "{err}");
    // A missing column.
    let no_features = cora.path("no_features.parquet");
    write_batch(&no_features, &all.project(&[0, 2, 3, 4, 5, 6]).unwrap());
    assert_eq!(all.schema().field(1).name(), "features");
    let err = train_args(&no_features, "r2");
    assert!(err.contains(s(&no_features)) && err.contains("column `features`: missing column"), "{err}");
    // Parts whose columns differ: the second part has no labels.
    let dir = cora.path("mixed");
    std::fs::create_dir_all(&dir).unwrap();
    write_batch(&dir.join("part-0.parquet"), &all.slice(0, 1000));
    let unlabeled = all.slice(1000, all.num_rows() - 1000);
    let keep: Vec<usize> =
        (0..unlabeled.num_columns()).filter(|&i| unlabeled.schema().field(i).name() != "label").collect();
    write_batch(&dir.join("part-1.parquet"), &unlabeled.project(&keep).unwrap());
    let err = train_args(&dir, "r3");
    assert!(err.contains("part-1.parquet") && err.contains("part-0.parquet") && err.contains("`label`"), "{err}");
    // A NaN feature: named by file, row and column.
    let features = all.column(1).as_fixed_size_list();
    let mut values = features.values().as_primitive::<Float32Type>().values().to_vec();
    values[7 * 1433 + 3] = f32::NAN;
    let field = Arc::new(arrow::datatypes::Field::new("item", arrow::datatypes::DataType::Float32, false));
    let column: ArrayRef =
        Arc::new(FixedSizeListArray::try_new(field, 1433, Arc::new(Float32Array::from(values)), None).unwrap());
    let mut columns = all.columns().to_vec();
    columns[1] = column;
    let nan = cora.path("nan.parquet");
    write_batch(&nan, &arrow::array::RecordBatch::try_new(all.schema(), columns).unwrap());
    let err = train_args(&nan, "r4");
    assert!(err.contains(s(&nan)) && err.contains("row 7, column `features[3]`") && err.contains("NaN"), "{err}");
    assert!(features.len() == 2155);
    // A null inside a feature list: named by row and element.
    let values: Vec<Option<f32>> = features
        .values()
        .as_primitive::<Float32Type>()
        .values()
        .iter()
        .enumerate()
        .map(|(i, &v)| (i != 9 * 1433 + 5).then_some(v))
        .collect();
    let nullable = Arc::new(arrow::datatypes::Field::new("item", arrow::datatypes::DataType::Float32, true));
    let column: ArrayRef =
        Arc::new(FixedSizeListArray::try_new(nullable, 1433, Arc::new(Float32Array::from(values)), None).unwrap());
    let mut fields: Vec<arrow::datatypes::Field> = all.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
    fields[1] = arrow::datatypes::Field::new("features", column.data_type().clone(), false);
    let schema = Arc::new(arrow::datatypes::Schema::new_with_metadata(fields, all.schema().metadata().clone()));
    let mut columns = all.columns().to_vec();
    columns[1] = column;
    let null = cora.path("null.parquet");
    write_batch(&null, &arrow::array::RecordBatch::try_new(schema, columns).unwrap());
    let err = train_args(&null, "r5");
    assert!(err.contains(s(&null)) && err.contains("row 9, column `features[5]`: null element"), "{err}");
    // Flags that do not fit a packed table.
    let packed = cora.path("packed.parquet");
    let graph = cora.path("graph.parquet");
    let mut args = vec!["train", "--packed", s(&packed), "--graph", s(&graph)];
    args.extend_from_slice(&COMMON);
    let err = fails(&args);
    assert!(err.contains("drop --graph, --pool and --unlabeled"), "{err}");
    let err = fails(&["train", "--packed", s(&packed), "--shuffle-buffer", "0", "--out", s(&cora.path("r5"))]);
    assert!(err.contains("shuffle buffer") && err.contains("at least 1"), "{err}");
    let err = fails(&["train", "--samples", s(&train), "--shuffle-buffer", "10", "--out", s(&cora.path("r6"))]);
    assert!(err.contains("--shuffle-buffer") && err.contains("--packed DIR_OR_FILE"), "{err}");
}

#[test]
fn packed_tfrecord_records_keep_both_spellings() {
    let records = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tfrecord/packed_all.tfr");
    let dir = tempfile::tempdir().unwrap();
    let flags = ["--graph-reg", "multiplier=0.1,neighbors=2", "--model", "mlp:4", "--epochs", "2", "--threads", "1"];
    let run = |inputs: &[&str], out: &str| {
        let out = dir.path().join(out);
        let mut args = vec!["train"];
        args.extend_from_slice(inputs);
        args.extend_from_slice(&flags);
        args.extend_from_slice(&["--out", s(&out)]);
        ok(&args);
        std::fs::read(out.join("model.safetensors")).unwrap()
    };
    let old = run(&["--samples", s(&records), "--packed"], "old");
    let new = run(&["--packed", s(&records)], "new");
    assert!(old == new, "--packed FILE.tfr is --samples FILE.tfr --packed");
}

#[test]
fn a_resumed_packed_run_ends_with_the_uninterrupted_weights() {
    use nsl::regularize::{AdvRegConfig, GraphRegConfig};
    use nsl::train::{StateError, TrainConfig, TrainData, TrainState, Trainer};
    let cora = Cora::new();
    let parts = PackedParts::open(&cora.path("packed.parquet")).unwrap();
    let reg = GraphRegConfig::from_kv("multiplier=0.1,neighbors=2").unwrap();
    let adv = AdvRegConfig::from_kv("multiplier=0.2,step-size=0.05").unwrap();
    // A buffer smaller than the table: the buffer's permutation and draws must resume too.
    let stream = PackedConfig { buffer: 300, shuffle_parts: true };
    let config = TrainConfig { epochs: 3, batch_size: 256, seed: 9, threads: Some(1), ..TrainConfig::default() };
    let spec: nsl::ModelSpec = "mlp:8".parse::<nsl::ModelSpec>().unwrap().with_dropout(0.3);
    let run = |stop_after: Option<usize>, resume: Option<TrainState>| {
        let (model, vars) = nsl::build_model(&spec, &[1433], 7, 3, &Device::Cpu).unwrap();
        let mut last = None;
        let mut trainer =
            Trainer::new(model.as_ref(), &vars, config.clone()).with_adversarial(&adv).on_epoch_state(1, |state| {
                last = Some(state.clone());
                match stop_after {
                    Some(e) if state.epoch() == e => {
                        Err(StateError::Invalid { path: "interrupted".into(), message: "".into() })
                    }
                    _ => Ok(()),
                }
            });
        if let Some(state) = resume {
            trainer = trainer.resume_from(state);
        }
        let fitted = trainer.fit(TrainData::Packed { parts: &parts, config: &stream, graph: Some(&reg) }, None);
        drop(trainer);
        (fitted.map(|h| (h.epochs.len(), weights(&vars))), last)
    };
    let (whole, _) = run(None, None);
    let (epochs, whole) = whole.unwrap();
    assert_eq!(epochs, 3);
    for stop in [1, 2] {
        let (interrupted, state) = run(Some(stop), None);
        assert!(interrupted.is_err());
        let (resumed, _) = run(None, state);
        let (epochs, resumed) = resumed.unwrap();
        assert_eq!(epochs, 3, "the history covers the whole run");
        assert!(resumed == whole, "resumed after epoch {stop}");
    }
    // Another buffer does not resume this run.
    let (_, state) = run(Some(1), None);
    let (model, vars) = nsl::build_model(&spec, &[1433], 7, 3, &Device::Cpu).unwrap();
    let other = PackedConfig { buffer: 200, ..stream };
    let err = Trainer::new(model.as_ref(), &vars, config.clone())
        .with_adversarial(&adv)
        .resume_from(state.unwrap())
        .fit(TrainData::Packed { parts: &parts, config: &other, graph: Some(&reg) }, None)
        .unwrap_err();
    assert!(err.to_string().contains("packed") || err.to_string().contains("buffer"), "{err}");
}

/// The shuffle buffer's order, written out from its description (docs of `nsl::neighbors::PackedParts`):
/// fill `buffer` slots; then each arriving row draws a slot, whose row is emitted and replaced; at
/// the end, the slots in the order of the kept permutation, shuffled first.
fn reference_order(n: usize, buffer: usize, order: &mut Vec<usize>, rng: &mut rand_chacha::ChaCha8Rng) -> Vec<usize> {
    use rand::seq::SliceRandom;
    use rand::Rng;
    let (mut slots, mut out) = (Vec::new(), Vec::new());
    for row in 0..n {
        if slots.len() < buffer {
            slots.push(row);
        } else {
            let j = rng.random_range(0..buffer);
            out.push(slots[j]);
            slots[j] = row;
        }
    }
    if order.len() != slots.len() {
        *order = (0..slots.len()).collect();
    }
    order.shuffle(rng);
    out.extend(order.iter().map(|&s| slots[s]));
    out
}

#[test]
fn the_shuffle_buffer_emits_rows_as_documented() {
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    let n = 23;
    let samples = nsl::Dataset::new(
        (0..n).map(|i| format!("r{i}")).collect(),
        ndarray::Array2::from_shape_fn((n, 2), |(i, j)| (i * 2 + j) as f32),
        vec![2],
        Some((0..n as u32).map(|i| i % 3).collect()),
        None,
    )
    .unwrap();
    let (table, _) = NeighborTable::new(&samples, None, &nsl::NeighborGraph::new(), 1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("packed.parquet");
    nsl::neighbors::pack_neighbors(&samples, &table, &path).unwrap();
    let parts = PackedParts::open(&path).unwrap();
    assert_eq!((parts.rows(), parts.dim(), parts.num_classes()), (n, 2, Some(3)));
    for buffer in [1, 4, 23, 100] {
        let config = PackedConfig { buffer, shuffle_parts: true };
        let (mut rng, mut order) = (ChaCha8Rng::seed_from_u64(4), Vec::new());
        let (mut want_rng, mut want_order) = (ChaCha8Rng::seed_from_u64(4), Vec::new());
        // The in-memory trainer's order: the row order, shuffled every epoch by the same generator.
        let (mut memory_rng, mut memory) = (ChaCha8Rng::seed_from_u64(4), (0..n).collect::<Vec<usize>>());
        for epoch in 1..=3 {
            let mut got = Vec::new();
            let mut stream = parts.epoch(&config, 1, 4, epoch, Some((&mut order, &mut rng)));
            while let Some(batch) = stream.next_batch(5).unwrap() {
                assert!(batch.samples.len() == 5 || got.len() == 20, "batches of 5, then the rest");
                for (i, id) in batch.samples.ids().iter().enumerate() {
                    let row: usize = id[1..].parse().unwrap();
                    // Each row travels with its own features and label.
                    assert_eq!(batch.samples.row(i).to_vec(), vec![(row * 2) as f32, (row * 2 + 1) as f32]);
                    assert_eq!(batch.samples.labels().unwrap()[i], row as u32 % 3);
                    got.push(row);
                }
            }
            drop(stream);
            assert_eq!(
                got,
                reference_order(n, buffer, &mut want_order, &mut want_rng),
                "buffer {buffer}, epoch {epoch}"
            );
            memory.shuffle(&mut memory_rng);
            if buffer >= n {
                assert_eq!(got, memory, "a buffer holding the table gives the in-memory order (epoch {epoch})");
            } else if buffer == 1 {
                assert_eq!(got, (0..n).collect::<Vec<_>>(), "a 1-row buffer keeps the file order");
            }
        }
    }
}
