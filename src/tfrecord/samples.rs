//! Samples, embeddings and NSL-packed records read from `tf.train.Example`s, and samples written as
//! `tf.train.Example`s.

use super::framing::{Compression, RecordReader};
use super::{write_records, Example, Feature, TfRecordError};
use crate::data::{Dataset, SampleColumns};
use crate::graph::{packed, EdgeKind, NeighborGraph};
use ndarray::Array2;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The feature names tried, in order, when [`SampleColumns::features`] is empty: NSL's Cora and
/// IMDB tutorials call the features `words`; nsl's own tables call them `features`; NSL's
/// `build_graph` reads `embedding`.
pub const DEFAULT_FEATURE_NAMES: [&str; 3] = ["words", "features", "embedding"];

/// What [`read_samples`] and [`read_embeddings`] saw besides the samples they return.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct ReadReport {
    /// Records read, over all files.
    pub records: u64,
    /// Records whose id had been seen before: the later record replaced the earlier one, which
    /// keeps its position (NSL reads examples into a Python dict: the last one wins).
    pub duplicate_ids: u64,
    /// Records skipped for lack of the id feature ([`read_embeddings`] only, as NSL's
    /// `build_graph`, which logs and skips them).
    pub skipped_no_id: u64,
    /// Records skipped for lack of the embedding feature ([`read_embeddings`] only).
    pub skipped_no_embedding: u64,
    /// The feature names the values were taken from.
    pub feature_names: Vec<String>,
}

/// Every `tf.train.Example` of the TFRecord files `paths`, in order, as an iterator that reads one
/// record at a time. Each item is `(f, r, example)`: record `r` (0-based) of file `paths[f]`.
///
/// # Errors
/// Each item is an error for an unreadable file, a bad checksum, a truncated record or bytes that
/// are not an `Example`, naming the file and the 0-based record number; the iteration stops there.
pub fn read_examples(paths: &[PathBuf]) -> impl Iterator<Item = Result<(usize, u64, Example), TfRecordError>> + '_ {
    paths.iter().enumerate().flat_map(|(file, path)| {
        let reader = RecordReader::open(path);
        let (reader, first_error) = match reader {
            Ok(r) => (Some(r), None),
            Err(e) => (None, Some(Err(e))),
        };
        first_error.into_iter().chain(reader.into_iter().flatten().enumerate().map(move |(record, bytes)| {
            let record = record as u64;
            let bytes = bytes?;
            let example = Example::decode(&bytes).map_err(|source| TfRecordError::Decode {
                path: path.clone(),
                record,
                source,
            })?;
            Ok((file, record, example))
        }))
    })
}

/// The id of an example: `bytes_list[0]` as UTF-8 (NSL's rule), or `int64_list[0]` in decimal.
/// `Ok(None)` when the feature is absent.
pub(super) fn example_id(
    example: &Example,
    name: &str,
    path: &Path,
    record: u64,
) -> Result<Option<String>, TfRecordError> {
    let invalid = |message: String| TfRecordError::Invalid { path: path.to_path_buf(), record, message };
    match example.get(name) {
        None => Ok(None),
        Some(Feature::Bytes(v)) if !v.is_empty() => String::from_utf8(v[0].clone())
            .map(Some)
            .map_err(|e| invalid(format!("id feature `{name}` is not UTF-8: {e}"))),
        Some(Feature::Int64(v)) if !v.is_empty() => Ok(Some(v[0].to_string())),
        Some(f) => {
            Err(invalid(format!("id feature `{name}` is an empty {} (NSL reads the id from bytes_list[0])", f.kind())))
        }
    }
}

/// Appends the values of a numeric feature as `f32`.
fn push_values(feature: &Feature, out: &mut Vec<f32>) -> Result<(), String> {
    match feature {
        Feature::Float(v) => out.extend_from_slice(v),
        // Counts and multi-hot flags (Cora's `words`) are small integers: exact in f32.
        Feature::Int64(v) => out.extend(v.iter().map(|&x| x as f32)),
        Feature::Unset => {}
        Feature::Bytes(_) => return Err("is a bytes_list; expected a float_list or int64_list".into()),
    }
    Ok(())
}

/// Rows keyed by id with Python-dict semantics: a repeated id replaces the values in place.
#[derive(Default)]
struct Rows {
    ids: Vec<String>,
    index: HashMap<String, usize>,
    values: Vec<f32>,
    labels: Vec<Option<Label>>,
    dim: Option<usize>,
    duplicates: u64,
}

#[derive(Clone, PartialEq)]
enum Label {
    Index(u32),
    Name(String),
}

impl Rows {
    fn push(
        &mut self,
        id: String,
        values: &[f32],
        label: Option<Label>,
        at: (&Path, u64),
    ) -> Result<(), TfRecordError> {
        let d = *self.dim.get_or_insert(values.len());
        if values.len() != d {
            return Err(TfRecordError::Invalid {
                path: at.0.to_path_buf(),
                record: at.1,
                message: format!("id `{id}`: {} feature values, but earlier records have {d}", values.len()),
            });
        }
        if let Some(&row) = self.index.get(&id) {
            self.values[row * d..(row + 1) * d].copy_from_slice(values);
            self.labels[row] = label;
            self.duplicates += 1;
        } else {
            self.index.insert(id.clone(), self.ids.len());
            self.ids.push(id);
            self.values.extend_from_slice(values);
            self.labels.push(label);
        }
        Ok(())
    }

    fn into_dataset(self) -> Result<Dataset, TfRecordError> {
        let n = self.ids.len();
        let d = self.dim.unwrap_or(0);
        let features = Array2::from_shape_vec((n, d), self.values)
            .map_err(|e| TfRecordError::Data(crate::data::DataError::Dataset(e.to_string())))?;
        let (labels, class_names) = match self.labels.first() {
            None | Some(None) => (None, None),
            Some(Some(Label::Index(_))) => {
                let labels = self.labels.iter().map(|l| match l {
                    Some(Label::Index(i)) => Some(*i),
                    _ => None,
                });
                (Some(labels.collect::<Option<Vec<u32>>>().unwrap_or_default()), None)
            }
            Some(Some(Label::Name(_))) => {
                let names: Vec<&str> = self
                    .labels
                    .iter()
                    .filter_map(|l| match l {
                        Some(Label::Name(s)) => Some(s.as_str()),
                        _ => None,
                    })
                    .collect();
                let mut sorted = names.clone();
                sorted.sort_unstable();
                sorted.dedup();
                let index: HashMap<&str, u32> = sorted.iter().enumerate().map(|(i, &s)| (s, i as u32)).collect();
                let labels = names.iter().map(|s| index[s]).collect();
                (Some(labels), Some(sorted.into_iter().map(str::to_owned).collect()))
            }
        };
        Ok(Dataset::new(self.ids, features, vec![d], labels, class_names)?)
    }
}

/// Reads labeled or unlabeled samples from `tf.train.Example`s in the TFRecord files `paths`
/// (plain or gzipped), in order.
///
/// - The id is `columns.id`'s `bytes_list[0]` (UTF-8), or its `int64_list[0]` in decimal.
/// - The features are the values of `columns.features`, concatenated in the given order, each a
///   `float_list` or an `int64_list` (converted to `f32`). Empty: the first of
///   [`DEFAULT_FEATURE_NAMES`] present in the first record.
/// - The label is `columns.label`'s `int64_list[0]` (a class index, as in NSL's tutorials) or its
///   `bytes_list[0]` (a class name; names are indexed in sorted order). If the first record has no
///   label, no record may have one, and the samples are unlabeled.
/// - A repeated id replaces the earlier record in place (NSL's dict semantics), counted in the
///   report. Every other feature (e.g. NSL's `NL_nbr_*`) is ignored.
///
/// # Errors
/// [`TfRecordError`] naming the file and the 0-based record: framing and decoding errors, a missing
/// id or feature, a bytes feature where numbers are expected, a width that differs from the
/// first record's, a label that is negative, too large, or present in some records only; and
/// [`TfRecordError::Data`] for values the [`Dataset`] rejects (NaN, infinity).
pub fn read_samples(paths: &[PathBuf], columns: &SampleColumns) -> Result<(Dataset, ReadReport), TfRecordError> {
    let mut rows = Rows::default();
    let mut report = ReadReport::default();
    let mut names: Option<Vec<String>> = (!columns.features.is_empty()).then(|| columns.features.clone());
    let mut labeled: Option<bool> = None;
    let mut values = Vec::new();
    for item in read_examples(paths) {
        let (file, record, example) = item?;
        let path = &paths[file];
        let invalid = |message: String| TfRecordError::Invalid { path: path.clone(), record, message };
        report.records += 1;
        let id = example_id(&example, &columns.id, path, record)?
            .ok_or_else(|| invalid(format!("no id feature `{}`", columns.id)))?;
        let names = match &mut names {
            Some(n) => &*n,
            None => {
                let found = DEFAULT_FEATURE_NAMES.iter().find(|n| example.get(n).is_some()).ok_or_else(|| {
                    invalid(format!(
                        "none of the features {DEFAULT_FEATURE_NAMES:?} is present (the record has {:?}); name the features to read",
                        example.features.keys().collect::<Vec<_>>()
                    ))
                })?;
                &*names.insert(vec![(*found).to_string()])
            }
        };
        values.clear();
        for name in names {
            let feature = example.get(name).ok_or_else(|| invalid(format!("id `{id}`: no feature `{name}`")))?;
            push_values(feature, &mut values).map_err(|m| invalid(format!("id `{id}`: feature `{name}` {m}")))?;
        }
        let label = match example.get(&columns.label) {
            None => None,
            Some(Feature::Int64(v)) if v.len() == 1 => Some(Label::Index(
                u32::try_from(v[0])
                    .map_err(|_| invalid(format!("id `{id}`: label {} is not a class index in 0..2^32", v[0])))?,
            )),
            Some(Feature::Bytes(v)) if v.len() == 1 => Some(Label::Name(
                String::from_utf8(v[0].clone()).map_err(|e| invalid(format!("id `{id}`: label is not UTF-8: {e}")))?,
            )),
            Some(f) => {
                return Err(invalid(format!(
                    "id `{id}`: label feature `{}` is a {} of {} values; expected one int64 or bytes value",
                    columns.label,
                    f.kind(),
                    f.len()
                )))
            }
        };
        let has = label.is_some();
        if *labeled.get_or_insert(has) != has {
            return Err(invalid(format!(
                "id `{id}`: {} label `{}`, unlike the first record",
                if has { "has a" } else { "has no" },
                columns.label
            )));
        }
        if let (Some(Label::Index(_)), Some(Some(Label::Name(_))))
        | (Some(Label::Name(_)), Some(Some(Label::Index(_)))) = (&label, rows.labels.first())
        {
            return Err(invalid(format!("id `{id}`: labels mix int64 and bytes values")));
        }
        rows.push(id, &values, label, (path, record))?;
    }
    report.duplicate_ids = rows.duplicates;
    report.feature_names = names.unwrap_or_default();
    Ok((rows.into_dataset()?, report))
}

/// Reads embeddings as NSL's `build_graph` does, from the TFRecord files `paths` in order: the id
/// is `id_feature`'s `bytes_list[0]` (UTF-8; an `int64_list[0]` is taken in decimal), the embedding
/// is `embedding_feature`'s `float_list` (an `int64_list` is converted). As NSL, a record without
/// the id or the embedding feature is skipped (counted in the report), and a repeated id replaces
/// the earlier embedding. Unlike NSL (which crashes on them), an id feature with an empty list, a
/// `bytes_list` embedding and embeddings of different lengths are errors.
///
/// # Errors
/// As [`read_samples`].
pub fn read_embeddings(
    paths: &[PathBuf],
    id_feature: &str,
    embedding_feature: &str,
) -> Result<(Dataset, ReadReport), TfRecordError> {
    let mut rows = Rows::default();
    let mut report = ReadReport { feature_names: vec![embedding_feature.to_string()], ..ReadReport::default() };
    let mut values = Vec::new();
    for item in read_examples(paths) {
        let (file, record, example) = item?;
        let path = &paths[file];
        report.records += 1;
        let Some(id) = example_id(&example, id_feature, path, record)? else {
            report.skipped_no_id += 1;
            continue;
        };
        let Some(feature) = example.get(embedding_feature) else {
            report.skipped_no_embedding += 1;
            continue;
        };
        values.clear();
        push_values(feature, &mut values).map_err(|m| TfRecordError::Invalid {
            path: path.clone(),
            record,
            message: format!("id `{id}`: embedding feature `{embedding_feature}` {m}"),
        })?;
        rows.push(id, &values, None, (path, record))?;
    }
    report.duplicate_ids = rows.duplicates;
    Ok((rows.into_dataset()?, report))
}

/// NSL-packed training records read back: the seeds, the neighbors that are not seeds, and the
/// graph from each seed to its packed neighbors, so that nsl's trainer (which joins neighbors on the
/// fly) trains on exactly the neighbors and weights the records carry.
#[derive(Debug)]
pub struct PackedSamples {
    /// The seeds (one per record), read as [`read_samples`] reads them.
    pub samples: Dataset,
    /// Neighbors that are not among the seeds, with their features (no labels); `None` if every
    /// neighbor is a seed.
    pub pool: Option<Dataset>,
    /// `seed → NL_nbr_<j>_<id>` with weight `NL_nbr_<j>_weight`, for `j < NL_num_nbrs`.
    pub graph: NeighborGraph,
    /// What the reader saw.
    pub report: ReadReport,
}

/// Reads records written by NSL's `pack_nbrs` (or `nsl pack-nbrs`): each record is a seed plus
/// `NL_num_nbrs` neighbors whose features are under `NL_nbr_<j>_<name>` and whose edge weight is
/// `NL_nbr_<j>_weight`. Seeds are read as [`read_samples`] reads them; each neighbor needs the id
/// and feature names of `columns` under its prefix (`pack_nbrs` copies every feature, the id
/// included). A record without `NL_num_nbrs` has no neighbors. A neighbor that appears in several
/// records must carry the same features each time (the first copy is kept).
///
/// # Errors
/// As [`read_samples`], and [`TfRecordError::Invalid`] for a missing `NL_nbr_<j>_…` feature, a
/// weight that is not one non-negative finite float, or a neighbor width that differs from the
/// seeds'.
pub fn read_packed(paths: &[PathBuf], columns: &SampleColumns) -> Result<PackedSamples, TfRecordError> {
    let (samples, report) = read_samples(paths, columns)?;
    let names = report.feature_names.clone();
    let mut pool = Rows::default();
    let mut graph = NeighborGraph::new();
    let mut values = Vec::new();
    for item in read_examples(paths) {
        let (file, record, example) = item?;
        let path = &paths[file];
        let invalid = |message: String| TfRecordError::Invalid { path: path.clone(), record, message };
        let Some(seed) = example_id(&example, &columns.id, path, record)? else { continue };
        graph.add_node(&seed);
        let count = match example.get(packed::NUM_NEIGHBORS) {
            None => 0,
            Some(Feature::Int64(v)) if v.len() == 1 && v[0] >= 0 => v[0] as usize,
            Some(f) => {
                return Err(invalid(format!(
                    "NL_num_nbrs is a {} of {} values; expected one non-negative int64",
                    f.kind(),
                    f.len()
                )))
            }
        };
        for j in 0..count {
            let prefix = packed::neighbor_prefix(j);
            let id_name = format!("{prefix}{}", columns.id);
            let id = example_id(&example, &id_name, path, record)?
                .ok_or_else(|| invalid(format!("seed `{seed}`: NL_num_nbrs is {count} but `{id_name}` is missing")))?;
            let weight = match example.get(&format!("{prefix}weight")) {
                Some(Feature::Float(v)) if v.len() == 1 => v[0],
                other => {
                    return Err(invalid(format!(
                        "seed `{seed}`: `{prefix}weight` is {}; expected one float",
                        other.map_or("missing".to_string(), |f| format!("a {} of {} values", f.kind(), f.len()))
                    )))
                }
            };
            graph
                .add_edge(&seed, &id, weight, EdgeKind::Explicit)
                .map_err(|e| invalid(format!("seed `{seed}`: {e}")))?;
            if samples.position(&id).is_some() || pool.index.contains_key(&id) {
                continue;
            }
            values.clear();
            for name in &names {
                let full = format!("{prefix}{name}");
                let feature =
                    example.get(&full).ok_or_else(|| invalid(format!("seed `{seed}`: no feature `{full}`")))?;
                push_values(feature, &mut values).map_err(|m| invalid(format!("seed `{seed}`: `{full}` {m}")))?;
            }
            if values.len() != samples.dim() {
                return Err(invalid(format!(
                    "seed `{seed}`: neighbor `{id}` has {} feature values, the seeds {}",
                    values.len(),
                    samples.dim()
                )));
            }
            pool.push(id, &values, None, (path, record))?;
        }
    }
    let pool = if pool.ids.is_empty() { None } else { Some(pool.into_dataset()?) };
    Ok(PackedSamples { samples, pool, graph, report })
}

/// How [`write_samples`] stores the features.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum FeatureType {
    /// `int64_list` when every value of the dataset is an integer (e.g. Cora's multi-hot `words`,
    /// which NSL's tutorial parses as `tf.int64`), else `float_list`. Default.
    #[default]
    Auto,
    /// Always `float_list`.
    Float,
    /// Always `int64_list`; every value must be an integer.
    Int64,
}

/// Options of [`write_samples`]: the feature names (NSL's tutorial names by default) and encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteOptions {
    /// Name of the id feature (`bytes_list`). Default `id`.
    pub id: String,
    /// Name of the feature holding the sample's values. Default `words`, as NSL's Cora tutorial.
    pub features: String,
    /// Name of the label feature (`int64_list`, the class index); not written for unlabeled
    /// samples. Default `label`.
    pub label: String,
    /// How the values are stored. Default [`FeatureType::Auto`].
    pub feature_type: FeatureType,
    /// Default [`Compression::None`].
    pub compression: Compression,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            id: "id".into(),
            features: "words".into(),
            label: "label".into(),
            feature_type: FeatureType::Auto,
            compression: Compression::None,
        }
    }
}

/// Writes one `tf.train.Example` per sample of `dataset`, in order, to the TFRecord file `path`
/// (atomically): the id as a one-value `bytes_list`, the values as one list, the label (if any)
/// as a one-value `int64_list`. Returns the number of records.
///
/// # Errors
/// [`TfRecordError::Invalid`] (record = row) for a non-integer value with [`FeatureType::Int64`],
/// and [`TfRecordError::Io`] if the file cannot be written.
pub fn write_samples(dataset: &Dataset, path: &Path, options: &WriteOptions) -> Result<u64, TfRecordError> {
    let integral = |v: f32| v.fract() == 0.0 && v.abs() < 9.2e18;
    let int64 = match options.feature_type {
        FeatureType::Float => false,
        FeatureType::Int64 => {
            if let Some((i, v)) = dataset.features().iter().enumerate().find(|(_, v)| !integral(**v)) {
                let d = dataset.dim().max(1);
                return Err(TfRecordError::Invalid {
                    path: path.to_path_buf(),
                    record: (i / d) as u64,
                    message: format!("value {v} (feature {}) is not an integer; int64 features need integers", i % d),
                });
            }
            true
        }
        FeatureType::Auto => dataset.features().iter().all(|v| integral(*v)),
    };
    write_records(path, options.compression, |w| {
        for (row, id) in dataset.ids().iter().enumerate() {
            let mut ex = Example::new();
            ex.insert(options.id.clone(), Feature::Bytes(vec![id.as_bytes().to_vec()]));
            let values = dataset.row(row);
            let feature = if int64 {
                Feature::Int64(values.iter().map(|&v| v as i64).collect())
            } else {
                Feature::Float(values.to_vec())
            };
            ex.insert(options.features.clone(), feature);
            if let Some(labels) = dataset.labels() {
                ex.insert(options.label.clone(), Feature::Int64(vec![i64::from(labels[row])]));
            }
            w.write_record(&ex.encode())?;
        }
        Ok(())
    })
}
