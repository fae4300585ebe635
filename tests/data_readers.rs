//! The dataset readers, writer and splitter on good input: bundled real data and small fixtures.

use arrow::array::{ArrayRef, Float32Array, Float64Array, Int32Array, Int64Array, ListArray, StringArray};
use arrow::datatypes::{DataType, Float64Type, Schema};
use arrow::record_batch::RecordBatch;
use ndarray::{array, Array2};
use nsl::data::{self, read_content, read_csv, read_parquet_samples, write_samples, Dataset, SampleColumns};
use nsl::data::{read_idx, IdxOptions};
use nsl::data::{split, split_indices, SplitConfig, SplitMethod};
use std::path::{Path, PathBuf};
use std::sync::Arc;

mod common;
use common::{gzip, idx_bytes};

fn bundled(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets").join(rel)
}

fn write_parquet(path: &Path, columns: Vec<(&str, ArrayRef)>) {
    let batch = RecordBatch::try_from_iter(columns).unwrap();
    let mut writer =
        ::parquet::arrow::ArrowWriter::try_new(std::fs::File::create(path).unwrap(), batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

fn tiny_dataset() -> Dataset {
    Dataset::new(
        vec!["a".into(), "b".into(), "c".into()],
        array![[0.0, 0.25, -1.5, 3.0], [1e-8, 2.0, 7.0, -0.0], [4.0, 5.0, 6.0, 1e30]],
        vec![1, 2, 2],
        Some(vec![1, 0, 1]),
        Some(vec!["neg".into(), "pos".into()]),
    )
    .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Real data

#[test]
fn bundled_mnist_train() {
    let ds = read_idx(
        &bundled("mnist/train-images-idx3-ubyte.gz"),
        Some(&bundled("mnist/train-labels-idx1-ubyte.gz")),
        &IdxOptions::default(),
    )
    .unwrap();
    assert_eq!((ds.len(), ds.dim()), (10_000, 784));
    assert_eq!(ds.item_shape(), [1, 28, 28]);
    assert_eq!(ds.num_classes(), Some(10));
    assert_eq!(ds.class_names(), None);
    assert_eq!(ds.ids()[9_999], "9999");
    let max = ds.features().iter().copied().fold(f32::MIN, f32::max);
    let min = ds.features().iter().copied().fold(f32::MAX, f32::min);
    assert_eq!((min, max), (0.0, 1.0));
    // python3: l = gzip.open('train-labels-idx1-ubyte.gz').read(); list(l[8:18])
    assert_eq!(&ds.labels().unwrap()[..10], [9, 9, 1, 2, 1, 3, 9, 5, 8, 9]);
    // python3: b = gzip.open('train-images-idx3-ubyte.gz').read(); sum(b[16:16+784]) == 32465
    let sum0: f32 = ds.row(0).sum();
    assert!((sum0 - 32465.0 / 255.0).abs() < 1e-3, "{sum0}");
    // python3: b[16 + 784*3 + 14*28 + 14] == 132  (image 3, pixel row 14, column 14)
    assert_eq!(ds.row(3)[14 * 28 + 14], 132.0 / 255.0);
    // python3: Counter(l[8:])[5] == 863
    assert_eq!(ds.labels().unwrap().iter().filter(|&&l| l == 5).count(), 863);
}

#[test]
fn bundled_mnist_unscaled_and_through_the_dispatcher() {
    let raw = read_idx(&bundled("mnist/t10k-images-idx3-ubyte.gz"), None, &IdxOptions { scale: false }).unwrap();
    assert_eq!((raw.len(), raw.dim()), (10_000, 784));
    assert_eq!(raw.features().iter().copied().fold(0.0, f32::max), 255.0);
    assert_eq!(raw.labels(), None);
    let sniffed = data::read_samples(&bundled("mnist/t10k-images-idx3-ubyte.gz"), &SampleColumns::default()).unwrap();
    assert_eq!(sniffed.item_shape(), [1, 28, 28]);
    assert_eq!(sniffed.row(17).to_vec(), raw.row(17).iter().map(|v| v / 255.0).collect::<Vec<_>>());
}

#[test]
fn bundled_cora_content() {
    let ds = read_content(&bundled("cora/cora.content.gz")).unwrap();
    assert_eq!((ds.len(), ds.dim()), (2_708, 1_433));
    assert_eq!(ds.item_shape(), [1_433]);
    let names: Vec<String> = (0..7).map(|c| format!("class_{c}")).collect();
    assert_eq!(ds.class_names(), Some(&names[..]));
    assert_eq!((ds.ids()[0].as_str(), ds.ids()[2_707].as_str()), ("0", "2707"));
    // python3: rows[0] = '0', 9 words, 'class_3'; Counter of labels: class_3 818, class_6 180.
    assert_eq!(ds.row(0).sum(), 9.0);
    let labels = ds.labels().unwrap();
    assert_eq!(labels[0], 3);
    assert_eq!(labels.iter().filter(|&&l| l == 3).count(), 818);
    assert_eq!(labels.iter().filter(|&&l| l == 6).count(), 180);
    assert!(ds.features().iter().all(|&v| v == 0.0 || v == 1.0));
    let sniffed = data::read_samples(&bundled("cora/cora.content.gz"), &SampleColumns::default()).unwrap();
    assert_eq!(sniffed, ds);
}

#[test]
fn cora_nsl_uniform_split_matches_python() {
    let ds = read_content(&bundled("cora/cora.content.gz")).unwrap();
    let cfg = SplitConfig { method: SplitMethod::NslUniform, ..SplitConfig::default() };
    let (train, test) = split_indices(&ds, &cfg).unwrap();
    // python3: random.seed(1); train = [i for i in range(2708) if random.uniform(0, 1) <= 0.8]
    //          len(train) == 2155, train[:10] == [0, 2, 3, 4, 5, 6, 7, 8, 9, 11]
    assert_eq!(train.len(), 2_155);
    assert_eq!(&train[..10], [0, 2, 3, 4, 5, 6, 7, 8, 9, 11]);
    assert_eq!(test.len(), 2_708 - 2_155);
}

// ---------------------------------------------------------------------------------------------
// IDX fixtures

#[test]
fn idx_float_vectors_keep_their_width() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vectors.idx");
    let values = [1.5f32, -2.0, 0.25, 8.0, 0.0, -0.5];
    let data: Vec<u8> = values.iter().flat_map(|v| v.to_be_bytes()).collect();
    std::fs::write(&path, gzip(&idx_bytes(0x0D, &[2, 3], &data))).unwrap();
    let labels = dir.path().join("labels.idx");
    std::fs::write(&labels, idx_bytes(0x0C, &[2], &[0, 0, 0, 7, 0, 0, 1, 0])).unwrap();
    let ds = read_idx(&path, Some(&labels), &IdxOptions::default()).unwrap();
    assert_eq!(ds.item_shape(), [3]);
    assert_eq!(ds.features(), array![[1.5, -2.0, 0.25], [8.0, 0.0, -0.5]]);
    assert_eq!(ds.labels(), Some(&[7, 256][..]));
}

#[test]
fn idx_signed_types_and_3d_items() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cube.idx");
    // One item of 2 × 1 × 2 i8 values: scaling applies only to u8.
    std::fs::write(&path, idx_bytes(0x09, &[1, 2, 1, 2], &[0xFF, 0x80, 0x7F, 0x00])).unwrap();
    let ds = read_idx(&path, None, &IdxOptions::default()).unwrap();
    assert_eq!(ds.item_shape(), [2, 1, 2]);
    assert_eq!(ds.row(0).to_vec(), vec![-1.0, -128.0, 127.0, 0.0]);
}

// ---------------------------------------------------------------------------------------------
// LINQS fixtures

#[test]
fn linqs_content_with_spaces_and_sorted_class_names() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.content");
    std::fs::write(&path, "p7\t1\t0\t0.5\tTheory\r\n\np2 0  1 2 Case_Based\np9\t0\t0\t0\tNeural_Networks\n").unwrap();
    let ds = read_content(&path).unwrap();
    assert_eq!(ds.ids(), ["p7", "p2", "p9"]);
    assert_eq!(ds.features(), array![[1.0, 0.0, 0.5], [0.0, 1.0, 2.0], [0.0, 0.0, 0.0]]);
    assert_eq!(ds.class_names().unwrap(), ["Case_Based", "Neural_Networks", "Theory"]);
    assert_eq!(ds.labels(), Some(&[2, 0, 1][..]));
}

// ---------------------------------------------------------------------------------------------
// Parquet

#[test]
fn parquet_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.parquet");
    let ds = tiny_dataset();
    write_samples(&ds, &path).unwrap();
    assert_eq!(read_parquet_samples(&path, &SampleColumns::default()).unwrap(), ds);
    assert_eq!(data::read_samples(&path, &SampleColumns::default()).unwrap(), ds);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers, ["tiny.parquet"]);
}

#[test]
fn parquet_round_trip_without_labels_over_several_batches() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.parquet");
    let n = 40_000;
    let features = Array2::from_shape_fn((n, 3), |(i, j)| (i * 3 + j) as f32 * 0.5);
    let ds = Dataset::new((0..n).map(|i| format!("s{i}")).collect(), features, vec![3], None, None).unwrap();
    write_samples(&ds, &path).unwrap();
    let back = read_parquet_samples(&path, &SampleColumns::default()).unwrap();
    assert_eq!(back, ds);
    assert_eq!(back.row(39_999).to_vec(), vec![59_998.5, 59_999.0, 59_999.5]);
}

#[test]
fn parquet_empty_dataset_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.parquet");
    let ds = Dataset::new(vec![], Array2::zeros((0, 4)), vec![2, 2], Some(vec![]), Some(vec!["x".into()])).unwrap();
    write_samples(&ds, &path).unwrap();
    assert_eq!(read_parquet_samples(&path, &SampleColumns::default()).unwrap(), ds);
}

#[test]
fn parquet_float64_list_features_and_integer_ids() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("embeddings.parquet");
    let embedding = ListArray::from_iter_primitive::<Float64Type, _, _>(vec![
        Some(vec![Some(0.5), Some(-1.0)]),
        Some(vec![Some(2.0), Some(1e-3)]),
        Some(vec![Some(0.0), Some(4.25)]),
    ]);
    write_parquet(
        &path,
        vec![
            ("id", Arc::new(Int64Array::from(vec![10, -3, 7])) as ArrayRef),
            ("embedding", Arc::new(embedding) as ArrayRef),
            ("label", Arc::new(StringArray::from(vec!["dog", "cat", "dog"])) as ArrayRef),
        ],
    );
    let named = SampleColumns { features: vec!["embedding".into()], ..SampleColumns::default() };
    let ds = read_parquet_samples(&path, &named).unwrap();
    assert_eq!(ds.ids(), ["10", "-3", "7"]);
    assert_eq!(ds.item_shape(), [2]);
    assert_eq!(ds.features(), array![[0.5, -1.0], [2.0, 1e-3], [0.0, 4.25]]);
    assert_eq!(ds.class_names().unwrap(), ["cat", "dog"]);
    assert_eq!(ds.labels(), Some(&[1, 0, 1][..]));
    // Without a `features` column or numeric scalars, the table's only list column is the features.
    assert_eq!(read_parquet_samples(&path, &SampleColumns::default()).unwrap(), ds);
}

#[test]
fn parquet_named_scalar_columns() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scalars.parquet");
    write_parquet(
        &path,
        vec![
            ("x1", Arc::new(Float32Array::from(vec![0.5, 1.5])) as ArrayRef),
            ("name", Arc::new(StringArray::from(vec!["a", "b"])) as ArrayRef),
            ("id", Arc::new(StringArray::from(vec!["r1", "r2"])) as ArrayRef),
            ("x2", Arc::new(Int32Array::from(vec![3, -4])) as ArrayRef),
            ("class", Arc::new(Int32Array::from(vec![1, 0])) as ArrayRef),
            ("x3", Arc::new(Float64Array::from(vec![0.25, 8.0])) as ArrayRef),
        ],
    );
    let columns = SampleColumns { label: "class".into(), ..SampleColumns::default() };
    let ds = read_parquet_samples(&path, &columns).unwrap();
    // Every numeric column but the id and label, in table order; the string `name` is not numeric.
    assert_eq!(ds.features(), array![[0.5, 3.0, 0.25], [1.5, -4.0, 8.0]]);
    assert_eq!(ds.labels(), Some(&[1, 0][..]));
    assert_eq!(ds.class_names(), None);
    let picked = SampleColumns { features: vec!["x3".into(), "x1".into()], ..SampleColumns::default() };
    let ds = read_parquet_samples(&path, &picked).unwrap();
    assert_eq!(ds.features(), array![[0.25, 0.5], [8.0, 1.5]]);
    assert_eq!(ds.labels(), None, "no `label` column");
}

#[test]
fn parquet_reads_item_shape_and_class_names_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("meta.parquet");
    let features = ListArray::from_iter_primitive::<Float64Type, _, _>(vec![Some(vec![Some(1.0); 4])]);
    let batch = RecordBatch::try_from_iter(vec![
        ("id", Arc::new(StringArray::from(vec!["only"])) as ArrayRef),
        ("features", Arc::new(features) as ArrayRef),
        ("label", Arc::new(Int64Array::from(vec![2])) as ArrayRef),
    ])
    .unwrap();
    let schema = Schema::new_with_metadata(
        batch.schema().fields().clone(),
        [
            ("nsl.item_shape".to_owned(), "2,2".to_owned()),
            ("nsl.class_names".to_owned(), r#"["a","b","c"]"#.to_owned()),
        ]
        .into_iter()
        .collect::<std::collections::HashMap<_, _>>(),
    );
    let batch = batch.with_schema(Arc::new(schema)).unwrap();
    let mut writer =
        ::parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    let ds = read_parquet_samples(&path, &SampleColumns::default()).unwrap();
    assert_eq!(ds.item_shape(), [2, 2]);
    assert_eq!(ds.class_names().unwrap(), ["a", "b", "c"]);
    assert_eq!(ds.labels(), Some(&[2][..]));
}

#[test]
fn parquet_writer_schema_and_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.parquet");
    write_samples(&tiny_dataset(), &path).unwrap();
    let file = std::fs::File::open(&path).unwrap();
    let builder = ::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    let schema = builder.schema();
    assert_eq!(schema.field(0).data_type(), &DataType::Utf8);
    assert!(
        matches!(schema.field(1).data_type(), DataType::FixedSizeList(item, 4) if item.data_type() == &DataType::Float32)
    );
    assert_eq!(schema.field(2).data_type(), &DataType::Int64);
    let kv: std::collections::HashMap<_, _> = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .unwrap()
        .iter()
        .map(|kv| (kv.key.clone(), kv.value.clone().unwrap_or_default()))
        .collect();
    assert_eq!(kv["nsl.format_version"], "1");
    assert_eq!(kv["nsl.item_shape"], "1,2,2");
    assert_eq!(kv["nsl.class_names"], r#"["neg","pos"]"#);
    let compression = builder.metadata().row_group(0).column(1).compression();
    assert!(matches!(compression, ::parquet::basic::Compression::ZSTD(_)), "{compression:?}");
}

// ---------------------------------------------------------------------------------------------
// CSV

#[test]
fn csv_scalar_columns_with_string_labels() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("table.csv");
    std::fs::write(&path, "x, id ,y,label\n1.5,a,-2,spam\n0, b ,3e2,ham\n").unwrap();
    let ds = read_csv(&path, &SampleColumns::default()).unwrap();
    assert_eq!(ds.ids(), ["a", "b"]);
    assert_eq!(ds.features(), array![[1.5, -2.0], [0.0, 300.0]]);
    assert_eq!(ds.class_names().unwrap(), ["ham", "spam"]);
    assert_eq!(ds.labels(), Some(&[1, 0][..]));
    assert_eq!(data::read_samples(&path, &SampleColumns::default()).unwrap(), ds);
}

#[test]
fn csv_packed_features_and_integer_labels() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("packed.csv");
    std::fs::write(&path, "id,features,label,note\n7,0.5;1;2,3,x\n8,\"[4, 5, 6]\",0,y\n9,7 8  9,1,z\n").unwrap();
    let ds = read_csv(&path, &SampleColumns::default()).unwrap();
    assert_eq!(ds.ids(), ["7", "8", "9"]);
    assert_eq!(ds.features(), array![[0.5, 1.0, 2.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]);
    assert_eq!(ds.labels(), Some(&[3, 0, 1][..]));
    assert_eq!(ds.class_names(), None);
}

#[test]
fn csv_named_columns_gzipped_tsv() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("table.tsv.gz");
    std::fs::write(&path, gzip(b"key\ta\tb\tc\nk1\t1\t2\t3\nk2\t4\t5\t6\n")).unwrap();
    let columns =
        SampleColumns { id: "key".into(), features: vec!["c".into(), "a".into()], ..SampleColumns::default() };
    let ds = read_csv(&path, &columns).unwrap();
    assert_eq!(ds.features(), array![[3.0, 1.0], [6.0, 4.0]]);
    assert_eq!(ds.labels(), None);
}

// ---------------------------------------------------------------------------------------------
// Splits

fn labelled(n: usize, classes: u32) -> Dataset {
    Dataset::new(
        (0..n).map(|i| i.to_string()).collect(),
        Array2::from_shape_fn((n, 1), |(i, _)| i as f32),
        vec![1],
        Some((0..n).map(|i| (i as u32 * 7 + 3) % classes).collect()),
        None,
    )
    .unwrap()
}

#[test]
fn shuffle_split_sizes_order_and_seed() {
    let ds = labelled(101, 3);
    let cfg = SplitConfig { train_fraction: 0.7, seed: 42, ..SplitConfig::default() };
    let (train, test) = split_indices(&ds, &cfg).unwrap();
    assert_eq!(train.len(), 71, "round(101 · 0.7) = round(70.7)");
    assert!(train.windows(2).all(|w| w[0] < w[1]) && test.windows(2).all(|w| w[0] < w[1]));
    let mut all: Vec<usize> = train.iter().chain(&test).copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..101).collect::<Vec<_>>());
    assert_eq!(split_indices(&ds, &cfg).unwrap().0, train, "same seed, same split");
    let other = split_indices(&ds, &SplitConfig { seed: 43, ..cfg.clone() }).unwrap();
    assert_ne!(other.0, train, "another seed, another split");
    let (tr, te) = split(&ds, &cfg).unwrap();
    assert_eq!(tr.ids()[0], train[0].to_string());
    assert_eq!((tr.len(), te.len()), (71, 30));
    let all_train = split_indices(&ds, &SplitConfig { train_fraction: 1.0, ..cfg }).unwrap();
    assert_eq!((all_train.0.len(), all_train.1.len()), (101, 0));
}

#[test]
fn stratified_split_keeps_class_shares() {
    // 100 rows, label = (7i + 3) mod 3 = i mod 3: classes of 34/33/33.
    let ds = labelled(100, 3);
    let cfg = SplitConfig { train_fraction: 0.5, seed: 5, stratify: true, ..SplitConfig::default() };
    let (train, _) = split_indices(&ds, &cfg).unwrap();
    let labels = ds.labels().unwrap();
    let count = |rows: &[usize], c: u32| rows.iter().filter(|&&r| labels[r] == c).count();
    let everything: Vec<usize> = (0..100).collect();
    assert_eq!((0..3).map(|c| count(&everything, c)).collect::<Vec<_>>(), [34, 33, 33]);
    // Exact shares 17, 16.5, 16.5 (total 50): floors 17, 16, 16 and one more to the first tie.
    let expected = [17, 17, 16];
    assert_eq!((0..3).map(|c| count(&train, c)).collect::<Vec<_>>(), expected);
    assert_eq!(train.len(), 50);
}

#[test]
fn nsl_uniform_split_matches_python() {
    let ds = labelled(30, 2);
    let cfg = SplitConfig { method: SplitMethod::NslUniform, ..SplitConfig::default() };
    // python3: random.seed(1); [i for i in range(30) if random.uniform(0, 1) <= 0.8]
    let expected = [0, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14, 15, 16, 19, 20, 21, 23, 24, 25, 26, 27, 28, 29];
    let (train, test) = split_indices(&ds, &cfg).unwrap();
    assert_eq!(train, expected);
    assert_eq!(test, [1, 10, 17, 18, 22]);
}

#[test]
fn split_rejects_bad_configs() {
    let ds = labelled(10, 2);
    for f in [0.0, -0.1, 1.01, f64::NAN] {
        let e = split_indices(&ds, &SplitConfig { train_fraction: f, ..SplitConfig::default() }).unwrap_err();
        assert!(e.to_string().contains("(0, 1]"), "{e}");
    }
    let unlabelled = Dataset::new(vec!["a".into()], array![[1.0]], vec![1], None, None).unwrap();
    let e = split_indices(&unlabelled, &SplitConfig { stratify: true, ..SplitConfig::default() }).unwrap_err();
    assert!(e.to_string().contains("needs labels"), "{e}");
    let nsl_strat = SplitConfig { stratify: true, method: SplitMethod::NslUniform, ..SplitConfig::default() };
    assert!(split_indices(&ds, &nsl_strat).is_err());
}
