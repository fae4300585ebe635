//! Feature groups (issue 12, items 1, 2 and 6): several feature columns, token-id lists, the `bow`
//! model, perturbations of the encoded input, and `bow` on Cora's words through the CLI.

use arrow::array::{
    ArrayRef, FixedSizeListArray, Float32Array, Int32Array, Int64Array, LargeListArray, ListArray, StringArray,
};
use arrow::datatypes::{DataType, Field, Int32Type, Int64Type};
use arrow::record_batch::RecordBatch;
use candle_core::Device;
use nsl::data::{read_parquet_samples, write_samples, Dataset, FeatureKind, SampleColumns, PAD};
use nsl::model::{build_model, ModelSpec};
use nsl::regularize::AdvRegConfig;
use nsl::train::{TrainConfig, Trainer};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

fn write_table(path: &Path, columns: Vec<(&str, ArrayRef)>) {
    let batch = RecordBatch::try_from_iter(columns).unwrap();
    let mut writer =
        ::parquet::arrow::ArrowWriter::try_new(std::fs::File::create(path).unwrap(), batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

fn ids(n: usize) -> ArrayRef {
    Arc::new(StringArray::from_iter_values((0..n).map(|i| format!("s{i}"))))
}

fn int_lists(rows: Vec<Option<Vec<Option<i64>>>>) -> ArrayRef {
    Arc::new(ListArray::from_iter_primitive::<Int64Type, _, _>(rows))
}

/// Three samples with every kind of feature column: scalars `a` (int) and `b` (float), a fixed
/// float list `emb` (2 values), token lists `words` (`list<int32>`) and `tags` (`large_list<int64>`).
fn every_kind(path: &Path) {
    let emb = Float32Array::from(vec![0.5, 1.5, 2.5, 3.5, 4.5, 5.5]);
    let item = Arc::new(Field::new("item", DataType::Float32, true));
    let emb = FixedSizeListArray::try_new(item, 2, Arc::new(emb), None).unwrap();
    let words = ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
        Some(vec![Some(3), Some(1)]),
        Some(vec![]),
        Some(vec![Some(0), Some(0), Some(4)]),
    ]);
    let tags = LargeListArray::from_iter_primitive::<Int64Type, _, _>(vec![
        Some(vec![Some(1)]),
        Some(vec![Some(0)]),
        Some(vec![]),
    ]);
    write_table(
        path,
        vec![
            ("id", ids(3)),
            ("a", Arc::new(Int32Array::from(vec![1, 2, 3])) as ArrayRef),
            ("emb", Arc::new(emb) as ArrayRef),
            ("words", Arc::new(words) as ArrayRef),
            ("b", Arc::new(Float32Array::from(vec![-1.0, 0.25, 8.0])) as ArrayRef),
            ("tags", Arc::new(tags) as ArrayRef),
            ("label", Arc::new(Int64Array::from(vec![0, 1, 0])) as ArrayRef),
        ],
    );
}

fn columns(names: &str) -> SampleColumns {
    SampleColumns { features: names.split(',').map(str::to_owned).collect(), ..SampleColumns::default() }
}

#[test]
fn reads_every_column_kind_into_groups() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kinds.parquet");
    every_kind(&path);
    let data = read_parquet_samples(&path, &columns("a,emb,words,b,tags")).unwrap();
    let groups: Vec<(&str, FeatureKind)> = data.layout().groups().iter().map(|g| (g.name.as_str(), g.kind)).collect();
    assert_eq!(
        groups,
        [
            // The scalars `a` and `b` gather into one dense group where `a` is named.
            ("features", FeatureKind::Dense { width: 2 }),
            ("emb", FeatureKind::Dense { width: 2 }),
            ("words", FeatureKind::Tokens { max_len: 3, vocab: 5 }),
            ("tags", FeatureKind::Tokens { max_len: 1, vocab: 2 }),
        ]
    );
    assert_eq!(data.item_shape(), [8]);
    let p = PAD;
    assert_eq!(
        data.features(),
        ndarray::array![
            [1.0, -1.0, 0.5, 1.5, 3.0, 1.0, p, 1.0],
            [2.0, 0.25, 2.5, 3.5, p, p, p, 0.0],
            [3.0, 8.0, 4.5, 5.5, 0.0, 0.0, 4.0, p],
        ]
    );
    // --vocab-size widens every token group's vocabulary.
    let wide = read_parquet_samples(&path, &SampleColumns { vocab: Some(100), ..columns("words") }).unwrap();
    assert_eq!(wide.layout().groups()[0].kind, FeatureKind::Tokens { max_len: 3, vocab: 100 });
    // A lone token column is found without naming it.
    let only = dir.path().join("only.parquet");
    write_table(&only, vec![("id", ids(1)), ("words", int_lists(vec![Some(vec![Some(2)])]))]);
    assert_eq!(read_parquet_samples(&only, &SampleColumns::default()).unwrap().features(), ndarray::array![[2.0]]);
}

#[test]
fn groups_round_trip_through_write_samples() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kinds.parquet");
    every_kind(&path);
    let data = read_parquet_samples(&path, &columns("a,emb,words,b,tags")).unwrap();
    let out = dir.path().join("out.parquet");
    write_samples(&data, &out).unwrap();
    // The layout comes back from the metadata, without naming the columns.
    let back = read_parquet_samples(&out, &SampleColumns::default()).unwrap();
    assert_eq!(back, data);
    // Token groups are stored as list<int64> of the ids only (no padding).
    let file = std::fs::File::open(&out).unwrap();
    let reader = ::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    let schema = reader.schema().clone();
    assert!(
        matches!(schema.field_with_name("words").unwrap().data_type(), DataType::List(f) if f.data_type() == &DataType::Int64)
    );
    let batch = reader.build().unwrap().next().unwrap().unwrap();
    let words = batch.column_by_name("words").unwrap().as_any().downcast_ref::<ListArray>().unwrap();
    assert_eq!(words.value_offsets(), [0, 2, 2, 5]);
    // A split keeps the layout (what `nsl split` writes).
    assert_eq!(data.select(&[2]).unwrap().layout(), data.layout());
}

fn nsl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nsl")).args(args).output().expect("nsl runs")
}

/// `nsl convert` of a bad table: exit 1, the message names the column and row, nothing written.
fn refused(columns: Vec<(&str, ArrayRef)>, extra: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("bad.parquet");
    write_table(&input, columns);
    let out = dir.path().join("out.parquet");
    let mut args = vec!["convert", "--parquet", input.to_str().unwrap(), "--samples", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    let result = nsl(&args);
    assert_eq!(result.status.code(), Some(1), "should fail: {args:?}");
    assert!(!out.exists(), "nothing is written");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file is left");
    String::from_utf8(result.stderr).unwrap()
}

#[test]
fn bad_feature_columns_name_column_and_row_and_write_nothing() {
    // Ragged float lists where a fixed size is needed.
    let ragged = Arc::new(ListArray::from_iter_primitive::<arrow::datatypes::Float32Type, _, _>(vec![
        Some(vec![Some(1.0), Some(2.0)]),
        Some(vec![Some(1.0)]),
    ])) as ArrayRef;
    let e = refused(vec![("id", ids(2)), ("emb", ragged)], &["--feature-columns", "emb"]);
    assert!(e.contains("row 1, column `emb`: found 1 feature values, expected 2"), "{e}");
    assert!(e.contains("variable-length lists are token ids, list<int64>"), "{e}");
    // A token id past the vocabulary given by --vocab-size.
    let words = int_lists(vec![Some(vec![Some(1)]), Some(vec![Some(0), Some(7)])]);
    let e = refused(vec![("id", ids(2)), ("words", words)], &["--feature-columns", "words", "--vocab-size", "5"]);
    assert!(e.contains("row 1, column `words[1]`: token id 7 is past the vocabulary of 5 ids"), "{e}");
    // A negative id.
    let words = int_lists(vec![Some(vec![Some(-2)])]);
    let e = refused(vec![("id", ids(1)), ("words", words)], &["--feature-columns", "words"]);
    assert!(e.contains("row 0, column `words[0]`: token id -2 is negative"), "{e}");
    // A null list, and a null id inside a list.
    let words = int_lists(vec![Some(vec![Some(1)]), None]);
    let e = refused(vec![("id", ids(2)), ("words", words)], &["--feature-columns", "words"]);
    assert!(e.contains("row 1, column `words`: null value"), "{e}");
    let words = int_lists(vec![Some(vec![Some(1), None])]);
    let e = refused(vec![("id", ids(1)), ("words", words)], &["--feature-columns", "words"]);
    assert!(e.contains("row 0, column `words[1]`: null token id"), "{e}");
    // An id that an f32 cannot hold exactly.
    let words = int_lists(vec![Some(vec![Some(1 << 24)])]);
    let e = refused(vec![("id", ids(1)), ("words", words)], &["--feature-columns", "words"]);
    assert!(e.contains("row 0, column `words[0]`: token id 16777216 is not below 2^24"), "{e}");
}

/// 40 samples, a token group `words` (vocab 6, max_len 3) and a dense group `x` (width 1): label 1
/// when the words include id 5.
fn token_dataset() -> Dataset {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.parquet");
    let n = 40;
    let words: Vec<Option<Vec<Option<i64>>>> =
        (0..n).map(|i| Some((0..1 + i % 3).map(|k| Some(((i * 7 + k * 5) % 6) as i64)).collect())).collect();
    let labels: Vec<i64> = words.iter().map(|w| w.as_ref().unwrap().contains(&Some(5)) as i64).collect();
    write_table(
        &path,
        vec![
            ("id", ids(n)),
            ("words", int_lists(words)),
            ("x", Arc::new(Float32Array::from_iter_values((0..n).map(|i| i as f32 / 40.0))) as ArrayRef),
            ("label", Arc::new(Int64Array::from(labels)) as ArrayRef),
        ],
    );
    read_parquet_samples(&path, &columns("words,x")).unwrap()
}

#[test]
fn adversarial_neighbors_move_the_encoded_input_by_epsilon_not_the_ids() {
    let data = token_dataset();
    let before = data.features().to_owned();
    // No dropout: a row whose encoding is all dropped has no gradient, hence no perturbation.
    let spec = "bow:4"
        .parse::<ModelSpec>()
        .unwrap()
        .with_dropout(0.0)
        .for_inputs(&nsl::train::model_inputs(data.layout()))
        .unwrap();
    let (model, vars) = build_model(&spec, data.item_shape(), 2, 0, &Device::Cpu).unwrap();
    for (pgd, eps) in [("", 0.05), (",pgd_iterations=3,pgd_epsilon=0.03", 0.03)] {
        let adv: AdvRegConfig = format!("multiplier=0.2,step_size=0.05{pgd}").parse().unwrap();
        let mut trainer =
            Trainer::new(model.as_ref(), &vars, TrainConfig { epochs: 2, batch_size: 8, ..Default::default() })
                .with_adversarial(&adv)
                .record_adversarial(1);
        trainer.fit(&data, None).unwrap();
        let record = trainer.take_record();
        assert!(!record.examples.is_empty());
        for example in &record.examples {
            // Perturbed: the encoding (4 pooled embedding values + the dense `x`), not the 4 id columns.
            assert_eq!(example.features.len(), 5);
            assert!((example.perturbation_norm - eps as f32).abs() < 1e-4, "{} vs {eps}", example.perturbation_norm);
        }
    }
    assert_eq!(data.features(), before, "the token ids are never perturbed");
}

#[test]
fn dense_models_refuse_token_groups() {
    let data = token_dataset();
    let e = ModelSpec::default().for_inputs(&nsl::train::model_inputs(data.layout())).unwrap_err().to_string();
    assert!(e.contains("feature group `words` holds token ids") && e.contains("--model bow"), "{e}");
}

#[test]
fn bow_trains_on_cora_words_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    let content = Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/cora/cora.content.gz");
    let ok = |args: &[&str]| {
        let out = nsl(args);
        assert!(out.status.success(), "nsl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let cites = content.with_file_name("cora.cites.gz");
    ok(&[
        "convert",
        "--content",
        content.to_str().unwrap(),
        "--cites",
        cites.to_str().unwrap(),
        "--tokens",
        "--samples",
        &p("cora.parquet"),
        "--graph",
        &p("graph.parquet"),
    ]);
    ok(&[
        "split",
        &p("cora.parquet"),
        "--method",
        "nsl",
        "--seed",
        "1",
        "--train",
        "0.8",
        "--out-train",
        &p("train.parquet"),
        "--out-test",
        &p("test.parquet"),
    ]);
    // Token ids are not embeddings: build-graph and propagate refuse them, writing nothing.
    for args in [
        vec!["build-graph", "--input", &p("train.parquet"), "--output", &p("built.tsv")],
        vec![
            "graph",
            "propagate",
            &p("graph.parquet"),
            "--samples",
            &p("train.parquet"),
            "--output",
            &p("smooth.parquet"),
        ],
    ] {
        let out = nsl(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("feature group `words` holds token ids"), "{args:?}");
    }
    assert!(!Path::new(&p("built.tsv")).exists() && !Path::new(&p("smooth.parquet")).exists());
    // The MLP refuses token ids and points at bow.
    let refused = nsl(&["train", "--samples", &p("train.parquet"), "--model", "mlp:50,50", "--out", &p("run-mlp")]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("use --model bow"));
    let summary = ok(&[
        "train",
        "--samples",
        &p("train.parquet"),
        "--test",
        &p("test.parquet"),
        "--model",
        "bow:50",
        "--epochs",
        "100",
        "--seed",
        "0",
        "--threads",
        "1",
        "--json",
        "--out",
        &p("run"),
    ]);
    let summary: serde_json::Value = serde_json::from_str(&summary).unwrap();
    let accuracy = summary["test_accuracy"].as_f64().unwrap();
    // Measured 73.8 % (seed 0); the dense MLP gets 73.6 % on this split and seed.
    assert!(accuracy > 0.70, "test accuracy {accuracy}");
    // The run's model.json records the token group, so evaluation rebuilds the same model.
    let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(p("run/model.json")).unwrap()).unwrap();
    let group = &meta["spec"]["inputs"][0];
    assert_eq!((group["type"].as_str(), group["vocab"].as_u64()), (Some("tokens"), Some(1433)), "{meta}");
    let eval = ok(&["evaluate", "--run", &p("run"), "--samples", &p("test.parquet"), "--json"]);
    assert!(eval.contains("accuracy"), "{eval}");

    // A sqrtn bag with a bias and ReLU: its checkpoint (with `bag0.bias`) reloads, and a white-box
    // FGSM perturbs the pooled embeddings: at ε = 0 the clean accuracy, at ε = 0.2 less.
    let json = |text: String| -> serde_json::Value { serde_json::from_str(&text).unwrap() };
    let bagged = "bow:16,8,combiner=sqrtn,bag-activation=relu";
    let train_bagged = |out: &str, seed: &str| {
        json(ok(&[
            "train",
            "--samples",
            &p("train.parquet"),
            "--test",
            &p("test.parquet"),
            "--model",
            bagged,
            "--epochs",
            "20",
            "--seed",
            seed,
            "--threads",
            "1",
            "--json",
            "--out",
            &p(out),
        ]))
    };
    let summary = train_bagged("run-bag", "0");
    let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(p("run-bag/model.json")).unwrap()).unwrap();
    assert_eq!(
        (meta["spec"]["combiner"].as_str(), meta["spec"]["bag_activation"].as_str()),
        (Some("sqrtn"), Some("relu"))
    );
    let attacked = json(ok(&[
        "evaluate",
        "--run",
        &p("run-bag"),
        "--samples",
        &p("test.parquet"),
        "--attack",
        "fgsm",
        "--epsilon",
        "0,0.2",
        "--json",
    ]));
    let clean = attacked["accuracy"].as_f64().unwrap();
    assert!((clean - summary["test_accuracy"].as_f64().unwrap()).abs() < 1e-9, "{attacked} {summary}");
    let robust: Vec<f64> =
        attacked["robust_accuracy"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    assert_eq!(robust[0], clean, "{attacked}");
    assert!(robust[1] < clean - 0.05, "{attacked}");
    // A transfer attack between bow models is refused: each perturbs its own embeddings.
    train_bagged("run-bag2", "1");
    let out = nsl(&[
        "evaluate",
        "--run",
        &p("run-bag"),
        "--samples",
        &p("test.parquet"),
        "--attack",
        "fgsm",
        "--attack-from",
        &p("run-bag2"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("attack it white-box"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
