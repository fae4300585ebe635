//! NSL's `pack_nbrs` (`neural_structured_learning/tools/pack_nbrs.py`) on TFRecord files: every
//! labeled example with the features of its graph neighbors copied in.

use super::framing::Compression;
use super::samples::{example_id, read_examples};
use super::{write_records, Example, Feature, TfRecordError};
use crate::graph::{packed, NeighborGraph};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Options of [`pack_nbrs`], with NSL's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackConfig {
    /// Merge at most this many neighbors into each seed. Default `None`: all of them (NSL's
    /// `max_nbrs=None`).
    pub max_neighbors: Option<usize>,
    /// Make the graph symmetric first: each edge is also added in reverse, and where both
    /// directions exist both get the larger weight (NSL's `add_undirected_edges`). Default `false`.
    pub add_undirected_edges: bool,
    /// The id feature of every example (its `bytes_list[0]`). Default `id`.
    pub id_feature: String,
    /// Compression of the output. Default [`Compression::None`].
    pub compression: Compression,
}

impl Default for PackConfig {
    fn default() -> Self {
        PackConfig {
            max_neighbors: None,
            add_undirected_edges: false,
            id_feature: "id".into(),
            compression: Compression::None,
        }
    }
}

/// What [`pack_nbrs`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct PackReport {
    /// Labeled examples read, and records written (one per distinct labeled id).
    pub seeds: usize,
    /// Distinct unlabeled examples read.
    pub unlabeled: usize,
    /// Records (labeled or unlabeled) that repeated an earlier id of the same input and replaced it.
    pub duplicate_ids: u64,
    /// Out-edges of seeds skipped because no example has the target id (NSL logs a warning each).
    pub unknown_targets: u64,
    /// Neighbors merged, over all seeds.
    pub pairs: usize,
    /// `out_degrees[k]`: seeds with `k` neighbors merged (NSL logs this histogram).
    pub out_degrees: Vec<usize>,
}

/// Examples keyed by id with Python-dict semantics: a repeated id replaces the example in place.
#[derive(Default)]
struct ById {
    examples: Vec<Example>,
    index: HashMap<String, usize>,
    duplicates: u64,
}

fn read_by_id(paths: &[PathBuf], id_feature: &str) -> Result<ById, TfRecordError> {
    let mut out = ById::default();
    for item in read_examples(paths) {
        let (file, record, example) = item?;
        let path = &paths[file];
        let id = example_id(&example, id_feature, path, record)?.ok_or_else(|| TfRecordError::Invalid {
            path: path.clone(),
            record,
            message: format!("no id feature `{id_feature}`"),
        })?;
        match out.index.get(&id) {
            Some(&i) => {
                out.examples[i] = example;
                out.duplicates += 1;
            }
            None => {
                out.index.insert(id, out.examples.len());
                out.examples.push(example);
            }
        }
    }
    Ok(out)
}

/// NSL's merge of one seed with its neighbors (`_join_examples.merge_examples`): a copy of `seed`,
/// then `NL_num_nbrs` (int64) = the number of neighbors, then for neighbor `j` (in the given order)
/// `NL_nbr_<j>_weight` (float) = its edge weight and every feature `f` of the neighbor copied as
/// `NL_nbr_<j>_<f>`.
///
/// NSL's protobuf calls are followed to the letter where names collide: the count and the weights
/// are *appended* to an existing list of the same type (a seed that was packed before gets a second
/// value) and replace a list of another type; a neighbor's own feature named `weight` replaces the
/// edge weight.
pub fn merge_neighbors(seed: &Example, neighbors: &[(&Example, f32)]) -> Example {
    fn append<T>(
        slot: &mut Feature,
        value: T,
        wrap: fn(Vec<T>) -> Feature,
        get: fn(&mut Feature) -> Option<&mut Vec<T>>,
    ) {
        match get(slot) {
            Some(list) => list.push(value),
            None => *slot = wrap(vec![value]),
        }
    }
    let mut merged = seed.clone();
    append(
        merged.features.entry(packed::NUM_NEIGHBORS.to_string()).or_default(),
        neighbors.len() as i64,
        Feature::Int64,
        |f| if let Feature::Int64(v) = f { Some(v) } else { None },
    );
    for (j, (neighbor, weight)) in neighbors.iter().enumerate() {
        let prefix = packed::neighbor_prefix(j);
        append(merged.features.entry(format!("{prefix}weight")).or_default(), *weight, Feature::Float, |f| {
            if let Feature::Float(v) = f {
                Some(v)
            } else {
                None
            }
        });
        for (name, value) in &neighbor.features {
            merged.features.insert(format!("{prefix}{name}"), value.clone());
        }
    }
    merged
}

/// NSL's `pack_nbrs`: reads the labeled (seed) and unlabeled examples of the TFRecord files
/// `labeled` and `unlabeled` and writes to `output` one record per distinct labeled id, in order of
/// first appearance, merging in its neighbors with [`merge_neighbors`].
///
/// A seed's candidate neighbors are its out-edges in `graph` (made symmetric first if
/// `config.add_undirected_edges`) whose target is a labeled or unlabeled example (a labeled one is
/// preferred when both exist); the others are skipped and counted. Candidates are sorted by
/// `(weight, id)` descending — ties go to the larger id, compared as Unicode code points like
/// Python's strings — and the first `config.max_neighbors` are kept. Self-loops are not removed,
/// examples are kept as read (a repeated id replaces the earlier example in place, as NSL's dict
/// does), and seeds without neighbors are written with `NL_num_nbrs = 0`.
///
/// Memory: all examples are held, decoded, as NSL holds them; the output is streamed.
///
/// # Errors
/// [`TfRecordError`] naming the file and the 0-based record for unreadable or invalid input (an
/// example without the id feature is an error; NSL raises an `IndexError`), and
/// [`TfRecordError::Io`] if the output cannot be written.
pub fn pack_nbrs(
    labeled: &[PathBuf],
    unlabeled: &[PathBuf],
    mut graph: NeighborGraph,
    output: &Path,
    config: &PackConfig,
) -> Result<PackReport, TfRecordError> {
    let seeds = read_by_id(labeled, &config.id_feature)?;
    let pool = read_by_id(unlabeled, &config.id_feature)?;
    if config.add_undirected_edges {
        graph.make_undirected();
    }
    let mut report = PackReport {
        seeds: seeds.examples.len(),
        unlabeled: pool.examples.len(),
        duplicate_ids: seeds.duplicates + pool.duplicates,
        ..PackReport::default()
    };
    let mut ids: Vec<&str> = vec![""; seeds.examples.len()];
    for (id, &i) in &seeds.index {
        ids[i] = id;
    }
    let lookup = |id: &str| -> Option<&Example> {
        seeds.index.get(id).map(|&i| &seeds.examples[i]).or_else(|| pool.index.get(id).map(|&i| &pool.examples[i]))
    };
    write_records(output, config.compression, |w| {
        let mut candidates: Vec<(&str, f32)> = Vec::new();
        let mut neighbors: Vec<(&Example, f32)> = Vec::new();
        for (seed, id) in seeds.examples.iter().zip(&ids) {
            candidates.clear();
            for (target, edge) in graph.neighbors(id) {
                if lookup(target).is_some() {
                    candidates.push((target, edge.weight));
                } else {
                    report.unknown_targets += 1;
                }
            }
            candidates.sort_by(|a, b| crate::graph::neighbor_order((a.0, a.1), (b.0, b.1)));
            if let Some(k) = config.max_neighbors {
                candidates.truncate(k);
            }
            neighbors.clear();
            neighbors.extend(candidates.iter().filter_map(|&(t, w)| lookup(t).map(|ex| (ex, w))));
            if report.out_degrees.len() <= neighbors.len() {
                report.out_degrees.resize(neighbors.len() + 1, 0);
            }
            report.out_degrees[neighbors.len()] += 1;
            report.pairs += neighbors.len();
            w.write_record(&merge_neighbors(seed, &neighbors).encode())?;
        }
        Ok(())
    })?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(features: &[(&str, Feature)]) -> Example {
        Example { features: features.iter().map(|(k, v)| (k.to_string(), v.clone())).collect() }
    }

    #[test]
    fn merge_follows_nsls_protobuf_calls_on_collisions() {
        // A seed packed before: NSL's `.append` adds a second count and a second weight.
        let seed = ex(&[
            ("id", Feature::Bytes(vec![b"s".to_vec()])),
            ("NL_num_nbrs", Feature::Int64(vec![1])),
            ("NL_nbr_0_weight", Feature::Float(vec![0.25])),
        ]);
        // A neighbor with its own `weight` feature: copied over the edge weight of neighbor 1.
        let a = ex(&[("id", Feature::Bytes(vec![b"a".to_vec()]))]);
        let b = ex(&[("id", Feature::Bytes(vec![b"b".to_vec()])), ("weight", Feature::Int64(vec![7]))]);
        let merged = merge_neighbors(&seed, &[(&a, 0.5), (&b, 0.75)]);
        assert_eq!(merged.get("NL_num_nbrs"), Some(&Feature::Int64(vec![1, 2])));
        assert_eq!(merged.get("NL_nbr_0_weight"), Some(&Feature::Float(vec![0.25, 0.5])));
        assert_eq!(merged.get("NL_nbr_1_weight"), Some(&Feature::Int64(vec![7])));
        assert_eq!(merged.get("NL_nbr_1_id"), Some(&Feature::Bytes(vec![b"b".to_vec()])));
        // No neighbors: only the count is added.
        let alone = merge_neighbors(&a, &[]);
        assert_eq!(alone.features.len(), 2);
        assert_eq!(alone.get("NL_num_nbrs"), Some(&Feature::Int64(vec![0])));
    }
}
