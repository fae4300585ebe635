//! TFRecord framing, the `tf.train.Example` codec, and NSL's `pack_nbrs` / `build_graph` inputs,
//! checked against files TensorFlow and NSL wrote (`tests/fixtures/tfrecord`, made by
//! `scripts/make_tfrecord_fixtures.py`; see the README there).

use nsl::build::{BuildConfig, GraphBuilder};
use nsl::data::SampleColumns;
use nsl::graph::{read_graph, EdgeKind, NeighborGraph};
use nsl::tfrecord::{
    is_tfrecord, pack_nbrs, read_embeddings, read_examples, read_packed, read_samples, write_samples, Compression,
    Example, Feature, FeatureType, PackConfig, RecordReader, RecordWriter, TfRecordError, WriteOptions,
};
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tfrecord").join(name)
}

fn examples(path: &Path) -> Vec<Example> {
    read_examples(&[path.to_path_buf()]).map(|r| r.unwrap().2).collect()
}

fn bytes(v: &[&[u8]]) -> Feature {
    Feature::Bytes(v.iter().map(|b| b.to_vec()).collect())
}

/// What `make_tfrecord_fixtures.py` put in `basic.tfrecord`.
fn expected_basic() -> Vec<Example> {
    let ex = |features: Vec<(&str, Feature)>| Example {
        features: features.into_iter().map(|(k, v)| (k.to_string(), v)).collect::<BTreeMap<_, _>>(),
    };
    vec![
        ex(vec![
            ("id", bytes(&[b"floats"])),
            ("values", Feature::Float(vec![1.5, -2.25, 0.0, f32::MAX, f32::INFINITY, -0.0])),
        ]),
        ex(vec![("id", bytes(&[b"int64s"])), ("values", Feature::Int64(vec![0, 1, -1, 1 << 62, i64::MIN, 300]))]),
        ex(vec![("id", bytes(&[b"bytes"])), ("values", bytes(&[b"", b"a", b"\xff\x00", "π".as_bytes()]))]),
        ex(vec![
            ("id", bytes(&[b"empty"])),
            ("values", Feature::Float(vec![])),
            ("other", Feature::Int64(vec![])),
            ("none", Feature::Unset),
        ]),
        ex(vec![
            ("id", bytes(&["ünïcödé".as_bytes()])),
            ("words", Feature::Int64([0, 1, 1, 0].repeat(8))),
            ("label", Feature::Int64(vec![3])),
            ("weight", Feature::Float(vec![0.1])),
            ("name", bytes(&[b"x", b"y"])),
        ]),
    ]
}

#[test]
fn tensorflow_examples_decode_to_their_values() {
    let got = examples(&fixture("basic.tfrecord"));
    let want = expected_basic();
    assert_eq!(got, want);
    // -0.0 == 0.0 for PartialEq: check the sign bit survived.
    let Some(Feature::Float(v)) = got[0].get("values") else { panic!("not floats") };
    assert!(v[5].is_sign_negative() && v[2].is_sign_positive());
}

#[test]
fn gzip_tfrecord_reads_the_same() {
    assert_eq!(examples(&fixture("basic.tfrecord.gz")), expected_basic());
}

#[test]
fn encoding_then_decoding_tensorflow_records_is_the_identity() {
    for bytes in RecordReader::open(fixture("basic.tfrecord")).unwrap() {
        let bytes = bytes.unwrap();
        let ex = Example::decode(&bytes).unwrap();
        let again = ex.encode();
        assert_eq!(Example::decode(&again).unwrap(), ex);
        // Same size as TensorFlow's encoding: same packing, only the map order may differ.
        assert_eq!(again.len(), bytes.len());
    }
}

fn copy_fixture(dir: &Path, name: &str) -> (PathBuf, Vec<u8>) {
    let bytes = std::fs::read(fixture(name)).unwrap();
    (dir.join(name), bytes)
}

/// Byte offsets where each record of a plain TFRecord file starts.
fn record_starts(bytes: &[u8]) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        starts.push(at);
        let len = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()) as usize;
        at += 12 + len + 4;
    }
    starts
}

#[test]
fn bad_data_checksum_names_file_and_record() {
    let dir = tempfile::tempdir().unwrap();
    let (path, mut bytes) = copy_fixture(dir.path(), "basic.tfrecord");
    let starts = record_starts(&bytes);
    assert_eq!(starts.len(), 5);
    bytes[starts[2] + 14] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    let results: Vec<_> = RecordReader::open(&path).unwrap().collect();
    assert_eq!(results.len(), 3, "two good records, then the error, then nothing");
    let err = results[2].as_ref().unwrap_err();
    match err {
        TfRecordError::Checksum { record, part, offset, .. } => {
            assert_eq!((*record, *part, *offset), (2, "data", starts[2] as u64));
        }
        other => panic!("unexpected {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("basic.tfrecord") && msg.contains("record 2 (0-based)"), "{msg}");
}

#[test]
fn bad_length_checksum_names_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let (path, mut bytes) = copy_fixture(dir.path(), "basic.tfrecord");
    let starts = record_starts(&bytes);
    bytes[starts[1] + 9] ^= 0x80;
    std::fs::write(&path, &bytes).unwrap();
    let err = RecordReader::open(&path).unwrap().nth(1).unwrap().unwrap_err();
    assert!(matches!(err, TfRecordError::Checksum { record: 1, part: "length", .. }), "{err:?}");
}

#[test]
fn truncation_names_file_and_record() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = copy_fixture(dir.path(), "basic.tfrecord");
    let starts = record_starts(&bytes);
    // Cut inside the header, the data and the data checksum of record 3.
    for (cut, part) in [(starts[3] + 5, "header"), (starts[3] + 20, "data"), (starts[4] - 2, "data checksum")] {
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let results: Vec<_> = RecordReader::open(&path).unwrap().collect();
        assert_eq!(results.len(), 4);
        let err = results[3].as_ref().unwrap_err();
        assert!(
            matches!(err, TfRecordError::Truncated { record: 3, part: p, .. } if *p == part),
            "cut at {cut}: {err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains("basic.tfrecord") && msg.contains("record 3 (0-based)") && msg.contains(part), "{msg}");
    }
    // A cut exactly between records is a shorter, valid file.
    std::fs::write(&path, &bytes[..starts[3]]).unwrap();
    assert_eq!(RecordReader::open(&path).unwrap().map(Result::unwrap).count(), 3);
}

#[test]
fn truncated_gzip_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = copy_fixture(dir.path(), "basic.tfrecord.gz");
    std::fs::write(&path, &bytes[..bytes.len() - 30]).unwrap();
    let last = RecordReader::open(&path).unwrap().last().unwrap();
    let err = last.unwrap_err();
    assert!(matches!(err, TfRecordError::Read { .. } | TfRecordError::Truncated { .. }), "{err:?}");
    assert!(err.to_string().contains("basic.tfrecord.gz"), "{err}");
}

#[test]
fn garbage_record_is_a_decode_error_naming_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.tfr");
    let mut w = RecordWriter::new(Vec::new());
    w.write_record(&Example::new().encode()).unwrap();
    w.write_record(&[0x0a, 0x05, 0x01]).unwrap();
    std::fs::write(&path, w.into_inner()).unwrap();
    let err = read_examples(std::slice::from_ref(&path)).nth(1).unwrap().unwrap_err();
    assert!(matches!(err, TfRecordError::Decode { record: 1, .. }), "{err:?}");
    assert!(err.to_string().contains("bad.tfr: record 1 (0-based)"), "{err}");
}

fn random_feature(rng: &mut impl Rng) -> Feature {
    let n = rng.random_range(0..6);
    match rng.random_range(0..4) {
        0 => Feature::Unset,
        1 => Feature::Bytes((0..n).map(|_| (0..rng.random_range(0..5)).map(|_| rng.random()).collect()).collect()),
        2 => Feature::Float((0..n).map(|_| f32::from_bits(rng.random::<u32>() & 0x7f7f_ffff)).collect()),
        _ => Feature::Int64((0..n).map(|_| rng.random::<i64>() >> rng.random_range(0..64)).collect()),
    }
}

#[test]
fn random_examples_round_trip_through_codec_and_framing() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(14);
    let dir = tempfile::tempdir().unwrap();
    let mut all = Vec::new();
    for _ in 0..300 {
        let mut ex = Example::new();
        for _ in 0..rng.random_range(0..6) {
            let name: String = (0..rng.random_range(0..4)).map(|_| rng.random_range('a'..='é')).collect();
            ex.insert(name, random_feature(&mut rng));
        }
        let bytes = ex.encode();
        assert_eq!(Example::decode(&bytes).unwrap(), ex);
        all.push((ex, bytes));
    }
    for gz in [false, true] {
        let path = dir.path().join(if gz { "r.tfr.gz" } else { "r.tfr" });
        let file = std::fs::File::create(&path).unwrap();
        if gz {
            let mut w = RecordWriter::new(flate2::write::GzEncoder::new(file, flate2::Compression::fast()));
            all.iter().for_each(|(_, b)| w.write_record(b).unwrap());
            w.into_inner().finish().unwrap();
        } else {
            let mut w = RecordWriter::new(std::io::BufWriter::new(file));
            all.iter().for_each(|(_, b)| w.write_record(b).unwrap());
        }
        let back = examples(&path);
        assert_eq!(back.len(), all.len());
        assert!(back.iter().zip(&all).all(|(a, (b, _))| a == b));
    }
}

fn pack_fixture(dir: &Path, unlabeled: bool, config: &PackConfig) -> Vec<Example> {
    let out = dir.join("packed.tfr");
    let graph = read_graph(&fixture("graph.tsv")).unwrap();
    let unl: Vec<PathBuf> = if unlabeled { vec![fixture("unlabeled.tfr")] } else { vec![] };
    let report = pack_nbrs(&[fixture("labeled.tfr")], &unl, graph, &out, config).unwrap();
    assert_eq!(report.seeds, 3);
    assert_eq!(report.duplicate_ids, 1);
    examples(&out)
}

/// Compares two lists of examples feature by feature, naming the first difference.
fn assert_same_examples(got: &[Example], want: &[Example]) {
    assert_eq!(got.len(), want.len(), "record count");
    for (r, (g, w)) in got.iter().zip(want).enumerate() {
        let names: Vec<_> = g.features.keys().collect();
        let want_names: Vec<_> = w.features.keys().collect();
        assert_eq!(names, want_names, "record {r}: feature names");
        for (name, value) in &w.features {
            assert_eq!(g.get(name), Some(value), "record {r}, feature {name}");
        }
    }
}

#[test]
fn pack_nbrs_writes_what_nsl_writes() {
    let dir = tempfile::tempdir().unwrap();
    let all = pack_fixture(dir.path(), true, &PackConfig::default());
    assert_same_examples(&all, &examples(&fixture("packed_all.tfr")));
    // The tie A→B = A→C = 0.5 goes to the larger id, the unknown `zzz` is skipped, the second B won.
    let ids = |ex: &Example, k: usize| -> Vec<Feature> {
        (0..k).map(|j| ex.get(&format!("NL_nbr_{j}_id")).unwrap().clone()).collect()
    };
    assert_eq!(ids(&all[0], 3), vec![bytes(&[b"D"]), bytes(&[b"C"]), bytes(&[b"B"])]);
    assert_eq!(all[0].get("NL_nbr_2_words"), Some(&Feature::Int64(vec![0, 1, 1])));

    let config = PackConfig { max_neighbors: Some(2), add_undirected_edges: true, ..PackConfig::default() };
    let k2 = pack_fixture(dir.path(), true, &config);
    assert_same_examples(&k2, &examples(&fixture("packed_k2_undirected.tfr")));

    let config = PackConfig { max_neighbors: Some(1), ..PackConfig::default() };
    let k1 = pack_fixture(dir.path(), false, &config);
    assert_same_examples(&k1, &examples(&fixture("packed_k1_labeled_only.tfr")));
}

#[test]
fn pack_nbrs_gzip_output_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let config = PackConfig { compression: Compression::Gzip, ..PackConfig::default() };
    let packed = pack_fixture(dir.path(), true, &config);
    let raw = std::fs::read(dir.path().join("packed.tfr")).unwrap();
    assert_eq!(&raw[..2], &[0x1f, 0x8b]);
    assert_same_examples(&packed, &examples(&fixture("packed_all.tfr")));
}

#[test]
fn embeddings_give_nsls_exact_graph() {
    let (dataset, report) = read_embeddings(&[fixture("embeddings.tfr")], "id", "embedding").unwrap();
    assert_eq!((dataset.len(), report.records, report.skipped_no_embedding), (5, 6, 1));
    let config = BuildConfig { threshold: 0.7, ..BuildConfig::default() };
    let (graph, _) = GraphBuilder::new(config).build_dataset(&dataset).unwrap();
    let nsl = read_graph(&fixture("embeddings_graph.tsv")).unwrap();
    assert_eq!(graph.edge_count(), nsl.edge_count());
    for (s, t, e) in nsl.edges() {
        let w = graph.weight(s, t).unwrap_or_else(|| panic!("edge {s} → {t} missing"));
        assert!((w - e.weight).abs() <= 5e-7, "{s} → {t}: {w} vs NSL {}", e.weight);
    }
}

#[test]
fn samples_follow_nsls_dict_semantics() {
    let (samples, report) = read_samples(&[fixture("labeled.tfr")], &SampleColumns::default()).unwrap();
    assert_eq!(samples.ids(), ["A", "B", "C"]);
    assert_eq!(report.duplicate_ids, 1);
    assert_eq!(report.feature_names, ["words"]);
    assert_eq!(samples.row(1).to_vec(), vec![0.0, 1.0, 1.0]);
    assert_eq!(samples.labels(), Some(&[0, 2, 2][..]));
    // Unlabeled, in a second file: the first record decides.
    let (both, _) =
        read_samples(&[fixture("unlabeled.tfr"), fixture("unlabeled.tfr")], &SampleColumns::default()).unwrap();
    assert!(both.labels().is_none() && both.len() == 2);
    // Labeled then unlabeled: an error naming the second file's record.
    let err = read_samples(&[fixture("labeled.tfr"), fixture("unlabeled.tfr")], &SampleColumns::default()).unwrap_err();
    assert!(err.to_string().contains("unlabeled.tfr: record 0 (0-based)"), "{err}");
}

#[test]
fn packed_records_give_back_graph_and_pool() {
    let packed = read_packed(&[fixture("packed_all.tfr")], &SampleColumns::default()).unwrap();
    assert_eq!(packed.samples.ids(), ["A", "B", "C"]);
    let pool = packed.pool.unwrap();
    assert_eq!(pool.ids(), ["D", "E"]);
    assert_eq!(pool.row(1).to_vec(), vec![1.0, 1.0, 1.0]);
    let g: &NeighborGraph = &packed.graph;
    assert_eq!(g.weight("A", "D"), Some(0.9));
    assert_eq!(g.weight("C", "C"), Some(0.1));
    assert_eq!(g.edge_count(), 6);
    assert!(g.edges().all(|(_, _, e)| e.kind == EdgeKind::Explicit));
}

#[test]
fn samples_write_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let (samples, _) = read_samples(&[fixture("labeled.tfr")], &SampleColumns::default()).unwrap();
    for (ft, gz) in [(FeatureType::Auto, false), (FeatureType::Float, true)] {
        let path = dir.path().join("out.bin");
        let options = WriteOptions {
            feature_type: ft,
            compression: if gz { Compression::Gzip } else { Compression::None },
            ..WriteOptions::default()
        };
        assert_eq!(write_samples(&samples, &path, &options).unwrap(), 3);
        assert!(is_tfrecord(&path), "sniffed by content");
        let first = examples(&path).remove(0);
        let want =
            if ft == FeatureType::Auto { Feature::Int64(vec![1, 0, 0]) } else { Feature::Float(vec![1.0, 0.0, 0.0]) };
        assert_eq!(first.get("words"), Some(&want));
        let (back, _) = read_samples(&[path], &SampleColumns::default()).unwrap();
        assert_eq!(back, samples);
    }
    let not = dir.path().join("x.csv");
    std::fs::write(&not, "id,a\n1,2\n").unwrap();
    assert!(!is_tfrecord(&not));
    assert!(is_tfrecord(Path::new("missing.tfrecord.gz")), "by extension");
}
