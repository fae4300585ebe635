//! `nsl_rs._native`: the Rust half of the `nsl_rs` Python package.
//!
//! The public functions live in `nsl_rs/__init__.py`, which checks and converts the Python
//! arguments (pyarrow tables, path-likes) and calls these. Embeddings come in as a numpy
//! `float32` array viewed in place (`PyReadonlyArray2::as_array`, no copy; nsl copies only a view
//! that is not row-major); edges go out as numpy arrays of row indices into an id list plus
//! weights, which the Python side turns into a `pyarrow.Table` with `take` (no Python string per
//! edge). Errors become the exception classes defined in `nsl_rs/__init__.py`: `NslValueError`
//! (also a `ValueError`) for bad arguments, `NslFileError` (also an `OSError`) when a file cannot
//! be read or written, `NslError` (the base, also a `RuntimeError`) for the rest, each carrying
//! nsl's message.

use nsl::build::BuildError;
use nsl::data::{self, DataError, SampleColumns};
use nsl::graph::{graph_stats, GraphError, SampleInfo};
use nsl::neighbors::{pack_neighbors, NeighborTable};
use nsl::{BuildConfig, EdgeKind, GraphBuilder, NeighborGraph};
use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyType;
use std::path::PathBuf;

mod run;

/// Which of the package's exception classes an error maps to.
#[derive(Clone, Copy)]
pub(crate) enum Class {
    /// A bad argument: `NslValueError`.
    Value,
    /// A file that cannot be opened, read or written: `NslFileError`.
    File,
    /// Anything else (a malformed file, an encoding failure): `NslError`.
    Other,
}

/// A `PyErr` of the package's exception class `class` carrying `message`.
pub(crate) fn raise(py: Python<'_>, class: Class, message: String) -> PyErr {
    let name = match class {
        Class::Value => "NslValueError",
        Class::File => "NslFileError",
        Class::Other => "NslError",
    };
    let ty =
        py.import("nsl_rs").and_then(|m| m.getattr(name)).and_then(|t| t.cast_into::<PyType>().map_err(PyErr::from));
    match ty {
        Ok(ty) => PyErr::from_type(ty, message),
        // The package is being imported without its Python half: still raise, as a ValueError.
        Err(_) => PyValueError::new_err(message),
    }
}

fn build_err(py: Python<'_>, e: BuildError) -> PyErr {
    let class = match e {
        BuildError::ThreadPool { .. } => Class::Other,
        _ => Class::Value,
    };
    raise(py, class, e.to_string())
}

fn graph_err(py: Python<'_>, e: GraphError) -> PyErr {
    let class = match e {
        GraphError::Io { .. } => Class::File,
        GraphError::BadWeight { .. } => Class::Value,
        _ => Class::Other,
    };
    raise(py, class, e.to_string())
}

fn data_err(py: Python<'_>, e: DataError) -> PyErr {
    let class = match e {
        DataError::Io { .. } => Class::File,
        _ => Class::Other,
    };
    raise(py, class, e.to_string())
}

/// Edges as `(node ids, source rows, target rows, weights, kind names)`: the Python side makes the
/// table with `ids.take(rows)`.
type EdgeArrays<'py> =
    (Vec<String>, Bound<'py, PyArray1<u32>>, Bound<'py, PyArray1<u32>>, Bound<'py, PyArray1<f32>>, Vec<&'static str>);

/// Builds the similarity graph of `embeddings` (one row per sample); returns the edges as row
/// indices `(source, target, weight)`, sorted by source then target row.
#[pyfunction]
#[pyo3(signature = (embeddings, threshold, lsh_splits, lsh_rounds, seed, top_k, ids=None))]
#[allow(clippy::type_complexity, clippy::too_many_arguments)]
fn build_edges<'py>(
    py: Python<'py>,
    embeddings: PyReadonlyArray2<'py, f32>,
    threshold: f64,
    lsh_splits: u32,
    lsh_rounds: u32,
    seed: u64,
    top_k: Option<usize>,
    ids: Option<Vec<String>>,
) -> PyResult<(Bound<'py, PyArray1<u32>>, Bound<'py, PyArray1<u32>>, Bound<'py, PyArray1<f32>>)> {
    let config = BuildConfig { threshold, lsh_splits, lsh_rounds, seed, top_k, ..Default::default() };
    let view = embeddings.as_array();
    let builder = GraphBuilder::new(config);
    // The ids are checked (count, duplicates) as `GraphBuilder::build` does, without making the
    // NeighborGraph: the table is made from row indices.
    if let Some(ids) = &ids {
        if ids.len() != view.nrows() {
            return Err(build_err(py, BuildError::IdCount { ids: ids.len(), rows: view.nrows() }));
        }
        let mut seen = std::collections::HashMap::with_capacity(ids.len());
        for (row, id) in ids.iter().enumerate() {
            if let Some(first) = seen.insert(id.as_str(), row) {
                return Err(build_err(py, BuildError::DuplicateId { id: id.clone(), first, second: row }));
            }
        }
    }
    // The view borrows the numpy buffer, which the read-only borrow keeps alive and unchanged;
    // ArrayView2 is Send, so the build runs without the GIL.
    let result = py.detach(|| builder.build_edges(view));
    let (edges, _report) = result.map_err(|e| build_err(py, e))?;
    let mut sources = Vec::with_capacity(edges.len());
    let mut targets = Vec::with_capacity(edges.len());
    let mut weights = Vec::with_capacity(edges.len());
    for e in &edges {
        sources.push(e.source);
        targets.push(e.target);
        weights.push(e.weight);
    }
    Ok((sources.into_pyarray(py), targets.into_pyarray(py), weights.into_pyarray(py)))
}

fn edge_arrays<'py>(py: Python<'py>, graph: &NeighborGraph) -> EdgeArrays<'py> {
    let ids = graph.ids().to_vec();
    let mut sources = Vec::with_capacity(graph.edge_count());
    let mut targets = Vec::with_capacity(graph.edge_count());
    let mut weights = Vec::with_capacity(graph.edge_count());
    let mut kinds = Vec::with_capacity(graph.edge_count());
    for (s, t, e) in graph.petgraph().all_edges() {
        sources.push(s.0);
        targets.push(t.0);
        weights.push(e.weight);
        kinds.push(e.kind.as_str());
    }
    (ids, sources.into_pyarray(py), targets.into_pyarray(py), weights.into_pyarray(py), kinds)
}

/// Reads a graph file (Parquet or NSL TSV, by content; a directory of Parquet parts).
#[pyfunction]
fn read_graph(py: Python<'_>, path: PathBuf) -> PyResult<EdgeArrays<'_>> {
    let graph = py.detach(|| nsl::graph::read_graph(&path)).map_err(|e| graph_err(py, e))?;
    Ok(edge_arrays(py, &graph))
}

/// A graph of the given edges (`kinds`: one name per edge, or one for all).
fn graph_of(
    py: Python<'_>,
    sources: &[String],
    targets: &[String],
    weights: &[f32],
    kinds: &[String],
) -> PyResult<NeighborGraph> {
    if sources.len() != targets.len() || sources.len() != weights.len() {
        return Err(raise(
            py,
            Class::Value,
            format!(
                "{} sources, {} targets and {} weights: expected one of each per edge",
                sources.len(),
                targets.len(),
                weights.len()
            ),
        ));
    }
    if kinds.len() != 1 && kinds.len() != sources.len() {
        return Err(raise(py, Class::Value, format!("{} kinds for {} edges", kinds.len(), sources.len())));
    }
    let parsed = kinds
        .iter()
        .map(|k| {
            EdgeKind::parse(k).ok_or_else(|| {
                raise(
                    py,
                    Class::Value,
                    format!("unknown edge kind `{k}`: expected explicit, similarity or adversarial"),
                )
            })
        })
        .collect::<PyResult<Vec<_>>>()?;
    let mut graph = NeighborGraph::with_capacity(0, sources.len());
    for (i, ((s, t), &w)) in sources.iter().zip(targets).zip(weights).enumerate() {
        let kind = parsed[if parsed.len() == 1 { 0 } else { i }];
        graph.add_edge(s, t, w, kind).map_err(|e| graph_err(py, e))?;
    }
    Ok(graph)
}

/// Writes the edges as a graph file, Parquet or TSV by the extension of `path` (atomically).
#[pyfunction]
fn write_graph(
    py: Python<'_>,
    sources: Vec<String>,
    targets: Vec<String>,
    weights: PyReadonlyArray1<'_, f32>,
    kinds: Vec<String>,
    path: PathBuf,
) -> PyResult<()> {
    let weights = weights.as_array().to_vec();
    let graph = graph_of(py, &sources, &targets, &weights, &kinds)?;
    py.detach(|| nsl::graph::write_graph(&graph, &path)).map_err(|e| graph_err(py, e))
}

fn read_samples(py: Python<'_>, path: &std::path::Path) -> PyResult<nsl::Dataset> {
    py.detach(|| data::read_samples(path, &SampleColumns::default())).map_err(|e| data_err(py, e))
}

/// nsl's `graph_stats` of a graph file or of the given edges, as JSON.
#[pyfunction]
#[pyo3(signature = (path=None, edges=None, samples=None))]
#[allow(clippy::type_complexity)]
fn graph_stats_json(
    py: Python<'_>,
    path: Option<PathBuf>,
    edges: Option<(Vec<String>, Vec<String>, PyReadonlyArray1<'_, f32>, Vec<String>)>,
    samples: Option<PathBuf>,
) -> PyResult<String> {
    let graph = match (path, edges) {
        (Some(path), None) => py.detach(|| nsl::graph::read_graph(&path)).map_err(|e| graph_err(py, e))?,
        (None, Some((s, t, w, k))) => graph_of(py, &s, &t, &w.as_array().to_vec(), &k)?,
        _ => return Err(raise(py, Class::Value, "give a graph path or edges, not both".into())),
    };
    let samples = samples.map(|p| read_samples(py, &p)).transpose()?;
    let info = samples.as_ref().map(|d| SampleInfo { ids: d.ids(), labels: d.labels() });
    let stats = py.detach(|| graph_stats(&graph, info.as_ref()));
    serde_json::to_string(&stats).map_err(|e| raise(py, Class::Other, e.to_string()))
}

/// nsl's `pack-nbrs`: one row per sample of `samples_path` with its neighbors' features and
/// weights; returns `(samples, samples with neighbors, pairs, edges to unknown ids)`.
#[pyfunction]
#[pyo3(signature = (samples_path, graph_path, output_path, max_neighbors, pool=None, add_undirected=false))]
fn pack_nbrs(
    py: Python<'_>,
    samples_path: PathBuf,
    graph_path: PathBuf,
    output_path: PathBuf,
    max_neighbors: usize,
    pool: Option<PathBuf>,
    add_undirected: bool,
) -> PyResult<(usize, usize, usize, usize)> {
    let samples = read_samples(py, &samples_path)?;
    let pool = pool.map(|p| read_samples(py, &p)).transpose()?;
    let mut graph = py.detach(|| nsl::graph::read_graph(&graph_path)).map_err(|e| graph_err(py, e))?;
    if add_undirected {
        graph.make_undirected();
    }
    let (table, report) =
        NeighborTable::new(&samples, pool.as_ref(), &graph, max_neighbors).map_err(|e| data_err(py, e))?;
    py.detach(|| pack_neighbors(&samples, &table, &output_path)).map_err(|e| data_err(py, e))?;
    Ok((samples.len(), report.samples_with_neighbors, report.pairs, report.unknown_targets))
}

/// Samples as `(ids, features n × d, labels or None, class names or None, item shape)`.
pub(crate) type SamplesTuple<'py> =
    (Vec<String>, Bound<'py, numpy::PyArray2<f32>>, Option<Bound<'py, PyArray1<u32>>>, Option<Vec<String>>, Vec<usize>);

/// Reads samples as `nsl` reads them (Parquet, CSV, IDX, LINQS `.content`, by content); an IDX
/// images file takes its labels from `labels` (an IDX labels file).
#[pyfunction]
#[pyo3(signature = (path, labels=None))]
fn read_samples_arrays(py: Python<'_>, path: PathBuf, labels: Option<PathBuf>) -> PyResult<SamplesTuple<'_>> {
    let data = match labels {
        Some(labels) => py
            .detach(|| data::read_idx(&path, Some(&labels), &data::IdxOptions::default()))
            .map_err(|e| data_err(py, e))?,
        None => read_samples(py, &path)?,
    };
    let shape = data.item_shape().to_vec();
    let (ids, features, _, labels, names) = data.into_parts();
    Ok((ids, features.into_pyarray(py), labels.map(|l| l.into_pyarray(py)), names, shape))
}

/// Reads a LINQS `.cites` file as `nsl convert --cites` does: an undirected graph of weight-1 edges.
#[pyfunction]
fn read_cites(py: Python<'_>, path: PathBuf) -> PyResult<EdgeArrays<'_>> {
    let (graph, _) = py
        .detach(|| nsl::graph::read_cites(&path, &|_| true, nsl::graph::UnknownIds::Skip))
        .map_err(|e| graph_err(py, e))?;
    Ok(edge_arrays(py, &graph))
}

/// The native module `nsl_rs._native`.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(build_edges, m)?)?;
    m.add_function(wrap_pyfunction!(read_graph, m)?)?;
    m.add_function(wrap_pyfunction!(write_graph, m)?)?;
    m.add_function(wrap_pyfunction!(graph_stats_json, m)?)?;
    m.add_function(wrap_pyfunction!(pack_nbrs, m)?)?;
    m.add_function(wrap_pyfunction!(read_samples_arrays, m)?)?;
    m.add_function(wrap_pyfunction!(read_cites, m)?)?;
    run::register(m)?;
    Ok(())
}
