//! The dataset readers and writer on bad input: every error names the file and where in it, and a
//! failed write leaves no file behind.

use arrow::array::{ArrayRef, Float32Array, Float64Array, Int64Array, ListArray, StringArray};
use arrow::datatypes::Float64Type;
use arrow::record_batch::RecordBatch;
use ndarray::array;
use nsl::data::{self, read_content, read_csv, read_parquet_samples, write_samples, DataError, Dataset, SampleColumns};
use nsl::data::{read_idx, IdxOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;

mod common;
use common::{gzip, idx_bytes};

/// A temporary directory with helpers to put fixture files in it.
struct Fixtures(tempfile::TempDir);

impl Fixtures {
    fn new() -> Self {
        Fixtures(tempfile::tempdir().unwrap())
    }

    fn file(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let path = self.0.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn parquet(&self, name: &str, columns: Vec<(&str, ArrayRef)>) -> PathBuf {
        let path = self.0.path().join(name);
        let batch = RecordBatch::try_from_iter(columns).unwrap();
        let file = std::fs::File::create(&path).unwrap();
        let mut writer = ::parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        path
    }
}

/// Asserts that the error message names `path` and contains every one of `parts`.
#[track_caller]
fn assert_error<T: std::fmt::Debug>(result: Result<T, DataError>, path: &Path, parts: &[&str]) {
    let message = result.expect_err("expected an error").to_string();
    assert!(message.contains(&path.display().to_string()), "no file name in: {message}");
    for part in parts {
        assert!(message.contains(part), "`{part}` missing from: {message}");
    }
}

fn id_column(ids: &[&str]) -> ArrayRef {
    Arc::new(StringArray::from(ids.to_vec()))
}

fn list_column(rows: Vec<Vec<f64>>) -> ArrayRef {
    Arc::new(ListArray::from_iter_primitive::<Float64Type, _, _>(
        rows.into_iter().map(|r| Some(r.into_iter().map(Some).collect::<Vec<_>>())),
    ))
}

fn defaults() -> SampleColumns {
    SampleColumns::default()
}

// ---------------------------------------------------------------------------------------------
// Empty files and truncated gzip

#[test]
fn empty_files() {
    let fx = Fixtures::new();
    let idx = fx.file("empty-idx3-ubyte", "");
    assert_error(read_idx(&idx, None, &IdxOptions::default()), &idx, &["empty"]);
    let content = fx.file("empty.content", "\n\n");
    assert_error(read_content(&content), &content, &["empty"]);
    let csv = fx.file("empty.csv", "");
    assert_error(read_csv(&csv, &defaults()), &csv, &["empty", "header"]);
    let pq = fx.file("empty.parquet", "");
    assert_error(read_parquet_samples(&pq, &defaults()), &pq, &["empty"]);
    // The dispatcher sees no magic and no known extension: CSV, which says the file is empty.
    assert_error(data::read_samples(&pq, &defaults()), &pq, &["empty"]);
    let gz_of_nothing = fx.file("empty.content.gz", gzip(b""));
    assert_error(read_content(&gz_of_nothing), &gz_of_nothing, &["empty"]);
}

#[test]
fn truncated_gzip() {
    let fx = Fixtures::new();
    let images: Vec<u8> = (0..60u32).map(|i| (i * 37 % 251) as u8).collect();
    let full = gzip(&idx_bytes(0x08, &[15, 2, 2], &images));
    let idx = fx.file("cut-idx3-ubyte.gz", &full[..full.len() - 12]);
    assert_error(read_idx(&idx, None, &IdxOptions::default()), &idx, &["gzip", "truncated", "after"]);
    assert_error(data::read_samples(&idx, &defaults()), &idx, &["gzip", "truncated"]);

    let text: String = (0..200).map(|i| format!("p{i}\t1\t0\tA\n")).collect();
    let full = gzip(text.as_bytes());
    let content = fx.file("cut.content.gz", &full[..full.len() / 2]);
    assert_error(read_content(&content), &content, &["gzip", "truncated"]);

    let labels_full = gzip(&idx_bytes(0x08, &[15], &[1; 15]));
    let labels = fx.file("cut-labels.gz", &labels_full[..labels_full.len() - 9]);
    let ok_images = fx.file("ok-images", idx_bytes(0x08, &[15, 2, 2], &images));
    assert_error(read_idx(&ok_images, Some(&labels), &IdxOptions::default()), &labels, &["gzip"]);
}

// ---------------------------------------------------------------------------------------------
// IDX

#[test]
fn idx_wrong_magic() {
    let fx = Fixtures::new();
    let unknown_type = fx.file("bad-type", idx_bytes(0x07, &[1, 2], &[0, 0]));
    assert_error(
        read_idx(&unknown_type, None, &IdxOptions::default()),
        &unknown_type,
        &["byte 0", "0x00000702", "expected 0x0000TTNN"],
    );
    let text = fx.file("not-idx", "hello, world\n");
    assert_error(read_idx(&text, None, &IdxOptions::default()), &text, &["wrong magic number 0x68656C6C", "expected"]);
    let short = fx.file("short", [0u8, 0]);
    assert_error(read_idx(&short, None, &IdxOptions::default()), &short, &["only 2 bytes"]);
}

#[test]
fn idx_fewer_bytes_than_the_header_says() {
    let fx = Fixtures::new();
    // 3 items of 2 × 2 u8 need 12 data bytes; the file has 10.
    let path = fx.file("short-idx3-ubyte", idx_bytes(0x08, &[3, 2, 2], &[7; 10]));
    assert_error(read_idx(&path, None, &IdxOptions::default()), &path, &["byte 16", "truncated", "12", "found 10"]);
    // The dispatcher recognizes the magic and reports the same, rather than reading it as CSV.
    assert_error(data::read_samples(&path, &defaults()), &path, &["truncated", "found 10"]);
    // 2 f64 values need 16 bytes.
    let floats = fx.file("short-f64", idx_bytes(0x0E, &[2], &[0; 15]));
    assert_error(read_idx(&floats, None, &IdxOptions::default()), &floats, &["16 data bytes", "found 15"]);
    // A header cut inside its sizes.
    let header = fx.file("cut-header", [0u8, 0, 8, 3, 0, 0, 0, 1, 0]);
    assert_error(read_idx(&header, None, &IdxOptions::default()), &header, &["3 dimensions", "only 9 bytes"]);
    // Extra bytes are wrong too.
    let long = fx.file("long-idx1", idx_bytes(0x08, &[2], &[1, 2, 3]));
    assert_error(read_idx(&long, None, &IdxOptions::default()), &long, &["trailing", "2 data bytes", "found 3"]);
}

#[test]
fn idx_images_and_labels_of_different_counts() {
    let fx = Fixtures::new();
    let images = fx.file("images", idx_bytes(0x08, &[3, 1, 2], &[0; 6]));
    let labels = fx.file("labels", idx_bytes(0x08, &[4], &[0, 1, 2, 3]));
    let result = read_idx(&images, Some(&labels), &IdxOptions::default());
    assert_error(result, &labels, &["4 labels but 3 images", &images.display().to_string()]);
}

#[test]
fn idx_bad_labels() {
    let fx = Fixtures::new();
    let images = fx.file("images", idx_bytes(0x08, &[3, 1, 2], &[0; 6]));
    let negative = fx.file("neg-labels", idx_bytes(0x09, &[3], &[1, 0xFF, 2]));
    assert_error(read_idx(&images, Some(&negative), &IdxOptions::default()), &negative, &["row 1", "-1", "negative"]);
    let half: Vec<u8> = [1.0f32, 2.0, 1.5].iter().flat_map(|v| v.to_be_bytes()).collect();
    let fractional = fx.file("float-labels", idx_bytes(0x0D, &[3], &half));
    assert_error(
        read_idx(&images, Some(&fractional), &IdxOptions::default()),
        &fractional,
        &["row 2", "1.5", "not a whole number"],
    );
    let two_d = fx.file("2d-labels", idx_bytes(0x08, &[3, 1], &[0; 3]));
    assert_error(read_idx(&images, Some(&two_d), &IdxOptions::default()), &two_d, &["1-D", "2 dimensions"]);
}

#[test]
fn idx_non_finite_floats() {
    let fx = Fixtures::new();
    let values: Vec<u8> = [1.0f32, f32::NAN].iter().flat_map(|v| v.to_be_bytes()).collect();
    let path = fx.file("nan-idx", idx_bytes(0x0D, &[1, 2], &values));
    assert_error(read_idx(&path, None, &IdxOptions::default()), &path, &["row 0", "feature 1", "not finite"]);
}

// ---------------------------------------------------------------------------------------------
// LINQS

#[test]
fn linqs_line_with_the_wrong_number_of_columns() {
    let fx = Fixtures::new();
    let path = fx.file("cols.content", "a\t1\t0\t0\tX\nb\t0\t1\t0\tY\nc\t1\t1\tX\n");
    assert_error(read_content(&path), &path, &["line 3", "found 4 columns", "expected 5", "line 1"]);
    let narrow = fx.file("narrow.content", "a\tX\n");
    assert_error(read_content(&narrow), &narrow, &["line 1", "at least 3"]);
}

#[test]
fn linqs_bad_values_and_duplicate_ids() {
    let fx = Fixtures::new();
    let word = fx.file("word.content", "a\t1\t0\tX\nb\t0\tyes\tY\n");
    assert_error(read_content(&word), &word, &["line 2, column 3", "`yes` is not a number"]);
    let nan = fx.file("nan.content", "a\t1\tNaN\tX\n");
    assert_error(read_content(&nan), &nan, &["line 1, column 3", "not finite"]);
    let inf = fx.file("inf.content", "a\t1\t0\tX\n\nb\t-inf\t0\tX\n");
    assert_error(read_content(&inf), &inf, &["line 3, column 2", "not finite"]);
    let dup = fx.file("dup.content", "a\t1\t0\tX\nb\t1\t0\tX\na\t0\t0\tY\n");
    assert_error(read_content(&dup), &dup, &["line 3", "duplicate id `a`", "first on line 1"]);
    let latin1 = fx.file("latin1.content", b"a\t1\tX\nb\t0\t\xE9\n");
    assert_error(read_content(&latin1), &latin1, &["line 2", "not valid UTF-8"]);
}

// ---------------------------------------------------------------------------------------------
// Parquet

#[test]
fn parquet_missing_required_column() {
    let fx = Fixtures::new();
    let path =
        fx.parquet("no-id.parquet", vec![("key", id_column(&["a"])), ("features", list_column(vec![vec![1.0]]))]);
    assert_error(
        read_parquet_samples(&path, &defaults()),
        &path,
        &["column `id`", "missing required column", "columns present: key (Utf8), features (List("],
    );
    let named = SampleColumns { features: vec!["embedding".into()], ..defaults() };
    let with_id = fx.parquet("no-emb.parquet", vec![("id", id_column(&["a"])), ("x", id_column(&["1"]))]);
    assert_error(read_parquet_samples(&with_id, &named), &with_id, &["column `embedding`", "columns present: id"]);
    // Nothing usable as features at all.
    assert_error(read_parquet_samples(&with_id, &defaults()), &with_id, &["no feature columns", "x (Utf8)"]);
}

#[test]
fn parquet_wrong_types() {
    let fx = Fixtures::new();
    let float_ids = fx.parquet(
        "float-id.parquet",
        vec![("id", Arc::new(Float64Array::from(vec![1.0])) as ArrayRef), ("features", list_column(vec![vec![1.0]]))],
    );
    assert_error(
        read_parquet_samples(&float_ids, &defaults()),
        &float_ids,
        &["column `id`", "has type Float64", "expected utf8, large_utf8 or an integer type"],
    );
    let text_features =
        fx.parquet("text-features.parquet", vec![("id", id_column(&["a"])), ("features", id_column(&["1 2"]))]);
    assert_error(
        read_parquet_samples(&text_features, &defaults()),
        &text_features,
        &["column `features`", "has type Utf8", "expected list, large_list or fixed_size_list of float32/float64"],
    );
    let float_labels = fx.parquet(
        "float-label.parquet",
        vec![
            ("id", id_column(&["a"])),
            ("features", list_column(vec![vec![1.0]])),
            ("label", Arc::new(Float32Array::from(vec![1.0])) as ArrayRef),
        ],
    );
    assert_error(read_parquet_samples(&float_labels, &defaults()), &float_labels, &["column `label`", "Float32"]);
    let columns = SampleColumns { features: vec!["x".into(), "name".into()], ..defaults() };
    let scalars = fx.parquet(
        "scalars.parquet",
        vec![
            ("id", id_column(&["a"])),
            ("x", Arc::new(Float32Array::from(vec![1.0])) as ArrayRef),
            ("name", id_column(&["n"])),
        ],
    );
    assert_error(read_parquet_samples(&scalars, &columns), &scalars, &["column `name`", "Utf8", "integer or float"]);
}

#[test]
fn parquet_features_of_different_lengths() {
    let fx = Fixtures::new();
    let path = fx.parquet(
        "ragged.parquet",
        vec![
            ("id", id_column(&["a", "b", "c"])),
            ("features", list_column(vec![vec![1.0, 2.0], vec![3.0, 4.0], vec![5.0]])),
        ],
    );
    assert_error(
        read_parquet_samples(&path, &defaults()),
        &path,
        &["row 2, column `features`", "found 1 feature values, expected 2"],
    );
}

#[test]
fn parquet_non_finite_features() {
    let fx = Fixtures::new();
    let nan = fx.parquet(
        "nan.parquet",
        vec![("id", id_column(&["a", "b"])), ("features", list_column(vec![vec![1.0, 2.0], vec![3.0, f64::NAN]]))],
    );
    assert_error(
        read_parquet_samples(&nan, &defaults()),
        &nan,
        &["row 1, column `features[1]`", "value NaN is not finite"],
    );
    // f64 values beyond f32's range become infinite.
    let huge = fx.parquet(
        "huge.parquet",
        vec![("id", id_column(&["a"])), ("x", Arc::new(Float64Array::from(vec![1e300])) as ArrayRef)],
    );
    assert_error(
        read_parquet_samples(&huge, &defaults()),
        &huge,
        &["row 0, column `x`", "value 1e300 is beyond the f32 range"],
    );
    let inf = fx.parquet(
        "inf.parquet",
        vec![
            ("id", id_column(&["a", "b"])),
            ("y", Arc::new(Float32Array::from(vec![0.0, f32::NEG_INFINITY])) as ArrayRef),
        ],
    );
    assert_error(read_parquet_samples(&inf, &defaults()), &inf, &["row 1, column `y`", "-inf"]);
}

#[test]
fn parquet_nulls_duplicates_and_negative_labels() {
    let fx = Fixtures::new();
    let null_id = fx.parquet(
        "null-id.parquet",
        vec![
            ("id", Arc::new(StringArray::from(vec![Some("a"), None])) as ArrayRef),
            ("features", list_column(vec![vec![1.0], vec![2.0]])),
        ],
    );
    assert_error(read_parquet_samples(&null_id, &defaults()), &null_id, &["row 1, column `id`", "null"]);
    let null_value = fx.parquet(
        "null-value.parquet",
        vec![
            ("id", id_column(&["a", "b"])),
            (
                "features",
                Arc::new(ListArray::from_iter_primitive::<Float64Type, _, _>(vec![
                    Some(vec![Some(1.0), Some(2.0)]),
                    Some(vec![None, Some(2.0)]),
                ])) as ArrayRef,
            ),
        ],
    );
    assert_error(read_parquet_samples(&null_value, &defaults()), &null_value, &["row 1, column `features[0]`", "null"]);
    let dup = fx.parquet(
        "dup.parquet",
        vec![("id", id_column(&["a", "b", "a"])), ("features", list_column(vec![vec![1.0], vec![2.0], vec![3.0]]))],
    );
    assert_error(read_parquet_samples(&dup, &defaults()), &dup, &["duplicate id `a`", "rows 0 and 2"]);
    let negative = fx.parquet(
        "neg.parquet",
        vec![
            ("id", id_column(&["a", "b"])),
            ("features", list_column(vec![vec![1.0], vec![2.0]])),
            ("label", Arc::new(Int64Array::from(vec![0, -2])) as ArrayRef),
        ],
    );
    assert_error(read_parquet_samples(&negative, &defaults()), &negative, &["row 1, column `label`", "-2", "negative"]);
}

#[test]
fn parquet_not_a_parquet_file() {
    let fx = Fixtures::new();
    let path = fx.file("fake.parquet", "id,x\na,1\n");
    assert_error(read_parquet_samples(&path, &defaults()), &path, &["not a readable Parquet file"]);
}

#[test]
fn parquet_writer_leaves_nothing_on_failure() {
    let fx = Fixtures::new();
    let ds = Dataset::new(vec!["a".into()], array![[1.0, 2.0]], vec![2], None, None).unwrap();
    // The target is an existing directory: an error naming it before anything is written.
    let target = fx.0.path().join("taken");
    std::fs::create_dir(&target).unwrap();
    assert_error(write_samples(&ds, &target), &target, &[]);
    let entries: Vec<_> = std::fs::read_dir(fx.0.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(entries, ["taken"], "a temporary file was left behind");
    assert!(std::fs::read_dir(&target).unwrap().next().is_none());
    // A missing directory: nothing can be created.
    let nowhere = fx.0.path().join("missing").join("out.parquet");
    assert_error(write_samples(&ds, &nowhere), &nowhere, &[]);
    assert!(!nowhere.exists());
}

#[test]
fn parquet_writer_keeps_an_existing_file_on_failure() {
    let fx = Fixtures::new();
    let ds = Dataset::new(vec!["a".into()], array![[1.0]], vec![1], None, None).unwrap();
    let path = fx.0.path().join("kept.parquet");
    write_samples(&ds, &path).unwrap();
    let before = std::fs::read(&path).unwrap();
    // Parquet cannot hold more than i32::MAX values per fixed_size_list: too wide to write, so
    // nothing is touched (checked before any file is created).
    let wide = Dataset::new(vec![], ndarray::Array2::zeros((0, 1usize << 31)), vec![1 << 31], None, None).unwrap();
    let error = write_samples(&wide, &path).unwrap_err();
    assert!(error.to_string().contains("fixed_size_list"), "{error}");
    assert_eq!(std::fs::read(&path).unwrap(), before);
    assert_eq!(std::fs::read_dir(fx.0.path()).unwrap().count(), 1);
}

// ---------------------------------------------------------------------------------------------
// CSV

#[test]
fn csv_bad_rows() {
    let fx = Fixtures::new();
    let fields = fx.file("fields.csv", "id,x,y\na,1,2\nb,3\n");
    assert_error(read_csv(&fields, &defaults()), &fields, &["line 3", "found 2 fields, expected 3"]);
    let word = fx.file("word.csv", "id,x,y\na,1,2\nb,3,abc\n");
    assert_error(read_csv(&word, &defaults()), &word, &["line 3, column y", "`abc` is not a number"]);
    let nan = fx.file("nan.csv", "id,x\na,nan\n");
    assert_error(read_csv(&nan, &defaults()), &nan, &["line 2, column x", "not finite"]);
    let dup = fx.file("dup.csv", "id,x\na,1\nb,2\na,3\n");
    assert_error(read_csv(&dup, &defaults()), &dup, &["line 4, column id", "duplicate id `a`", "first on line 2"]);
    let ragged = fx.file("ragged.csv", "id,features\na,1 2 3\nb,4;5\n");
    assert_error(read_csv(&ragged, &defaults()), &ragged, &["line 3, column features", "found 2", "expected 3"]);
    let packed_word = fx.file("packed.csv", "id,features\na,1 x 3\n");
    assert_error(read_csv(&packed_word, &defaults()), &packed_word, &["line 2, column features[1]", "`x`"]);
    let negative = fx.file("neg.csv", "id,x,label\na,1,0\nb,2,-1\n");
    assert_error(read_csv(&negative, &defaults()), &negative, &["line 3, column label", "-1", "negative"]);
    let no_id = fx.file("noid.csv", "key,x\na,1\n");
    assert_error(read_csv(&no_id, &defaults()), &no_id, &["line 1", "no column `id`", "columns present: `key`, `x`"]);
    let latin1 = fx.file("latin1.csv", b"id,x\n\xE9,1\n");
    assert_error(read_csv(&latin1, &defaults()), &latin1, &["line 2, column id", "not valid UTF-8"]);
}
