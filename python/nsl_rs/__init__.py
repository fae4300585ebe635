"""nsl_rs: Neural Structured Learning in Rust, from Python.

Training: ``NSLClassifier`` and ``NSLRegressor``, scikit-learn-style estimators that train what
``nsl train`` trains (the same library call, the same weights for the same settings and seed),
with NSL's graph, adversarial and virtual adversarial regularization, unlabeled centers,
schedules and sample weights; ``read_samples`` reads the files ``nsl`` reads.

NSL's graph tools on nsl's Rust core: ``build_graph`` (NSL's ``build_graph``: every pair of
embeddings with cosine similarity >= threshold, exact or with LSH), ``read_graph`` /
``write_graph`` (Parquet or NSL's TSV), ``pack_nbrs`` (NSL's ``pack_nbrs``, written as Parquet)
and ``graph_stats``; ``embed`` (``nsl embed``: a trained model's hidden layer or logits for every
sample, the embeddings of NSL's "synthesized graph" recipe, for ``build_graph``).

Embeddings are numpy arrays (a C-contiguous ``float32`` array is read in place, without a copy);
graphs are ``pyarrow.Table`` s with the columns ``source`` (string), ``target`` (string) and
``weight`` (float32). Errors raise ``NslError`` subclasses carrying nsl's message:
``NslValueError`` (also a ``ValueError``) for bad arguments, ``NslFileError`` (also an ``OSError``)
when a file cannot be read or written.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any, Iterable, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

if TYPE_CHECKING:  # pyarrow is imported on first use (see _inputs.pyarrow)
    import pyarrow as pa

__all__ = [
    "NSLClassifier",
    "NSLRegressor",
    "Samples",
    "read_samples",
    "embed",
    "NslError",
    "NslValueError",
    "NslFileError",
    "NslTypeError",
    "build_graph",
    "read_graph",
    "write_graph",
    "pack_nbrs",
    "graph_stats",
]


from ._errors import NslError, NslFileError, NslTypeError, NslValueError

# candle runs its element-wise ops on a pool of its own, sized when the first op runs, whose
# workers spin after every op; nsl's kernels bring their own threads (``threads=``), so candle's
# pool keeps one thread unless CANDLE_NUM_THREADS says otherwise — what ``nsl train`` does. Without
# it, NSL's tutorial CNN at threads=1 took 1.25x the CLI's CPU time (docs/benchmarks.md).
os.environ.setdefault("CANDLE_NUM_THREADS", "1")

# After the exception classes: the native module raises them (looked up in this module).
from . import _native  # noqa: E402
from ._estimator import NSLClassifier, NSLRegressor  # noqa: E402
from . import _inputs  # noqa: E402
from ._inputs import arrow as _arrow, pyarrow as _pyarrow  # noqa: E402

PathLike = Union[str, "os.PathLike[str]"]
Edge = Tuple[str, str, float]
EdgesLike = Union["pa.Table", Iterable[Edge]]

_KINDS = ("explicit", "similarity", "adversarial")


def _table(ids: Any, sources: np.ndarray, targets: np.ndarray, weights: np.ndarray) -> pa.Table:
    pa = _pyarrow()
    ids = ids if isinstance(ids, pa.Array) else pa.array(ids, type=pa.string())
    return pa.table(
        {
            "source": ids.take(pa.array(sources)),
            "target": ids.take(pa.array(targets)),
            "weight": pa.array(weights, type=pa.float32()),
        }
    )


def build_graph(
    embeddings: Any,
    ids: Optional[Sequence[str]] = None,
    threshold: float = 0.8,
    lsh_splits: int = 0,
    lsh_rounds: int = 1,
    seed: int = 0,
    top_k: Optional[int] = None,
) -> pa.Table:
    """Builds NSL's similarity graph of ``embeddings`` (one row per sample).

    Every ordered pair of distinct rows whose cosine similarity is at least ``threshold`` becomes
    an edge in both directions, weighted by the similarity, as NSL's ``build_graph`` does (rows of
    zeros get no edges). ``lsh_splits > 0`` buckets the rows by ``lsh_splits`` random hyperplanes
    (``lsh_rounds`` times, seeded by ``seed``) and compares only pairs in a common bucket, as NSL's
    LSH mode. ``top_k`` keeps each row's ``top_k`` most similar neighbors (above the threshold).

    Args:
        embeddings: a 2-D array-like of numbers, ``N x d``. A C-contiguous ``float32`` numpy array
            is used in place; anything else is converted to ``float32`` first.
        ids: the ``N`` sample ids (distinct); default ``"0"`` .. ``"N-1"``.
        threshold: the least cosine similarity of an edge, in ``[-1, 1]`` (NSL's default 0.8).
        lsh_splits: hyperplanes per LSH round (0: exact, every pair).
        lsh_rounds: LSH rounds (at least 1).
        seed: seed of the LSH hyperplanes.
        top_k: keep at most this many neighbors per row (default: all above the threshold).

    Returns:
        A ``pyarrow.Table`` with columns ``source``, ``target`` (strings) and ``weight``
        (float32), sorted by source row then target row: the edges ``nsl build-graph`` writes.

    Raises:
        NslValueError: a bad option, an id count that is not ``N``, a duplicate id, a value that
            is not finite (naming row and column), an empty or 0-column input.
    """
    array = np.asarray(embeddings, dtype=np.float32)
    if array.ndim != 2:
        raise NslValueError(f"embeddings must be a 2-D array (rows x dimensions), got {array.ndim} dimensions")
    id_list = None if ids is None else [str(i) for i in ids]
    sources, targets, weights = _native.build_edges(
        array, float(threshold), int(lsh_splits), int(lsh_rounds), int(seed), top_k, id_list
    )
    pa = _pyarrow()
    if id_list is None:
        names = pa.array(np.arange(array.shape[0]).astype(str), type=pa.string())
    else:
        names = pa.array(id_list, type=pa.string())
    return _table(names, sources, targets, weights)


class Samples(NamedTuple):
    """Samples read from a file: ``ids`` (strings), ``X`` (float32 ``n × d``, or ``n × c × h ×
    w`` for images), ``y`` (class
    labels: the class names when the file has them, else the integer labels; None without
    labels), ``class_names`` and ``item_shape`` (e.g. ``[1, 28, 28]``)."""

    ids: List[str]
    X: np.ndarray
    y: Optional[np.ndarray]
    class_names: Optional[List[str]]
    item_shape: List[int]


def read_samples(path: PathLike, labels: Optional[PathLike] = None) -> Samples:
    """Reads samples as ``nsl`` reads them: Parquet, CSV, IDX (gzipped or not) or LINQS
    ``.content`` (Cora's papers), recognized by content.

    Args:
        path: the samples file.
        labels: for an IDX images file, the IDX labels file (MNIST's ``*-labels-idx1-ubyte.gz``).

    Returns:
        ``Samples(ids, X, y, class_names, item_shape)``; ``X`` is the float32 matrix nsl trains on
        (MNIST's pixels scaled to [0, 1]).

    Raises:
        NslFileError: the file cannot be read.
        NslError: malformed content (naming the file and the row or line).
    """
    ids, x, y, names, shape = _native.read_samples_arrays(
        os.fspath(path), None if labels is None else os.fspath(labels)
    )
    return Samples(ids, x.reshape((x.shape[0], *shape)), _with_names(y, names), names, list(shape))


def _with_names(y: Optional[np.ndarray], names: Optional[List[str]]) -> Optional[np.ndarray]:
    if y is not None and names is not None:
        return np.asarray(names, dtype=object)[y].astype(str)
    return y


def embed(run: Any, samples: Any, layer: str = "logits", ids: Optional[Sequence[str]] = None) -> Samples:
    """``nsl embed``: the values of one layer of a trained model for every sample.

    These are the embeddings of NSL's "synthesized graph" recipe: embed every sample with a
    model trained on the few labels, ``build_graph`` on the embeddings, train with graph
    regularization. The values are those ``nsl embed`` writes for the same run and samples, bit
    for bit (the same library call, in batches of 1,024, in evaluation mode: no dropout).

    Args:
        run: a run directory (written by ``nsl train`` or an estimator's ``save``), or a fitted
            ``NSLClassifier`` / ``NSLRegressor``.
        samples: a samples file (Parquet, CSV, IDX, ``.npy``/``.npz``, CIFAR, …), read as ``nsl
            embed --samples`` reads it: with the run's recorded columns (``columns.json``),
            labels mapped onto the run's classes; or the features themselves, an array-like
            ``n × d`` (or ``n × c × h × w`` images), a pandas DataFrame or pyarrow table (its
            ``id`` column gives the ids).
        layer: ``hidden0``, ``hidden1``, … (an MLP's hidden layers, after the activation),
            ``dense0``, … (a CNN's dense layers), or ``logits`` (the default).
        ids: the ids of array rows (default: those of the table's ``id`` column, else ``"0"`` ..
            ``"n-1"``). Not with a file, whose ids are its own.

    Returns:
        ``Samples(ids, X, y, class_names, item_shape)``, the table ``nsl embed`` writes: ``X``
        the embeddings, float32 ``n × width``; ``y`` the file's labels (class names when the run
        has them) or None; ``item_shape`` ``[width]``. ``build_graph(e.X, ids=e.ids)`` builds the
        graph ``nsl build-graph`` builds on ``nsl embed``'s output.

    The work runs with the GIL released.

    Raises:
        NslValueError: an unknown layer (the message lists the model's layers), samples whose
            width is not the model's, bad ids.
        NslFileError: the run or the samples file cannot be read.
        NslError: a malformed run or samples file (naming it).

    Example::

        e = nsl_rs.embed("runs/base", "pool.parquet", layer="hidden0")
        graph = nsl_rs.build_graph(e.X, ids=e.ids, threshold=0.9)
    """
    from ._estimator import _NSLBase

    if not isinstance(layer, str):
        raise NslValueError(f"layer: expected a layer name (str), got {type(layer).__name__}")
    native_layer = None if layer == "logits" else layer
    if isinstance(samples, (str, os.PathLike)):
        if ids is not None:
            raise NslValueError("ids: a samples file has its own ids (pass ids only with an array)")
        if isinstance(run, (str, os.PathLike)):
            (row_ids, x, y, names, shape), notes = _native.embed_file(
                os.fspath(run), os.fspath(samples), native_layer
            )
            if notes:
                import warnings

                for note in notes:
                    warnings.warn(note, stacklevel=2)
            return Samples(row_ids, x, _with_names(y, names), names, list(shape))
        read = read_samples(samples)
        row_ids, x, y, names = read.ids, read.X, read.y, read.class_names
    else:
        f = _inputs.frame(samples, ids, "samples")
        row_ids = f.ids if f.ids is not None else _inputs.default_ids(f.x.shape[0])
        x, y, names = f.x, None, None
    if isinstance(run, _NSLBase):
        values = run.embed(x, layer=layer)
    elif isinstance(run, (str, os.PathLike)):
        values = _native.Run.load(os.fspath(run)).embed(_inputs.rows(_inputs.features(x, "samples")), native_layer)
    else:
        raise NslTypeError(
            f"run: expected a run directory or a fitted NSLClassifier/NSLRegressor, got {type(run).__name__}"
        )
    return Samples(list(row_ids), values, y, names, [int(values.shape[1])])


def read_graph(path: PathLike) -> pa.Table:
    """Reads a graph file written by nsl, NSL or pyarrow: Parquet or NSL's TSV, by content; a
    LINQS ``.cites`` file (by name, gzip allowed) as ``nsl convert --cites`` reads it (undirected,
    weight 1).

    A directory is read as the Parquet parts of a distributed job, merged. Returns a
    ``pyarrow.Table`` with ``source``, ``target``, ``weight`` (float32) and ``kind`` (``explicit``,
    ``similarity`` or ``adversarial``; TSV edges are ``explicit``), in the file's order. Nodes
    without edges are not in the table.

    Raises:
        NslFileError: the file cannot be opened or read.
        NslError: the content is malformed (the message names the file and row or line).
    """
    name = os.fspath(path)
    if name.endswith(".cites") or name.endswith(".cites.gz"):
        ids, sources, targets, weights, kinds = _native.read_cites(name)
    else:
        ids, sources, targets, weights, kinds = _native.read_graph(name)
    table = _table(ids, sources, targets, weights)
    pa = _pyarrow()
    return table.append_column("kind", pa.array(kinds, type=pa.string()))


def _edge_columns(edges: EdgesLike, kind: str) -> Tuple[list, list, np.ndarray, list]:
    if _arrow(edges, "Table"):
        missing = [c for c in ("source", "target", "weight") if c not in edges.column_names]
        if missing:
            raise NslValueError(f"the table has no column {', '.join(missing)}: expected source, target, weight")
        sources = [str(s) for s in edges.column("source").to_pylist()]
        targets = [str(t) for t in edges.column("target").to_pylist()]
        weights = edges.column("weight").to_numpy().astype(np.float32, copy=False)
        kinds = edges.column("kind").to_pylist() if "kind" in edges.column_names else [kind]
    else:
        rows = list(edges)
        if any(len(r) != 3 for r in rows):
            raise NslValueError("edges must be (source, target, weight) triples or a pyarrow.Table")
        sources = [str(r[0]) for r in rows]
        targets = [str(r[1]) for r in rows]
        weights = np.array([r[2] for r in rows], dtype=np.float32)
        kinds = [kind]
    return sources, targets, np.ascontiguousarray(weights, dtype=np.float32), kinds


def write_graph(edges: EdgesLike, path: PathLike, kind: str = "similarity") -> None:
    """Writes a graph as Parquet (``.parquet``) or NSL's TSV (any other extension), atomically.

    Args:
        edges: a ``pyarrow.Table`` with ``source``, ``target``, ``weight`` (and optionally
            ``kind``) columns, such as ``build_graph`` or ``read_graph`` return, or an iterable of
            ``(source, target, weight)`` triples. A repeated edge keeps the larger weight (NSL's rule).
        path: the output file.
        kind: the edge kind stored in Parquet when the table has no ``kind`` column:
            ``similarity`` (default, as ``build_graph``'s edges), ``explicit`` or ``adversarial``.

    Raises:
        NslValueError: a negative or non-finite weight, an unknown kind, a table without the columns.
        NslFileError: the file cannot be written (nothing is left behind).
    """
    if kind not in _KINDS:
        raise NslValueError(f"unknown edge kind `{kind}`: expected explicit, similarity or adversarial")
    sources, targets, weights, kinds = _edge_columns(edges, kind)
    _native.write_graph(sources, targets, weights, kinds, os.fspath(path))


def pack_nbrs(
    samples_path: PathLike,
    graph_path: PathLike,
    output_path: PathLike,
    max_neighbors: Optional[int] = None,
    pool: Optional[PathLike] = None,
    add_undirected_edges: bool = False,
) -> dict:
    """NSL's ``pack_nbrs``: each sample with the features and weights of its best neighbors.

    Writes a Parquet table (the same as ``nsl pack-nbrs``): one row per sample of ``samples_path``
    in order (``id``, ``features``, ``label`` if labeled, ``NL_num_nbrs``) and for each neighbor
    ``j`` the columns ``NL_nbr_{j}_id``, ``NL_nbr_{j}_features`` and ``NL_nbr_{j}_weight`` (padding:
    zeros, weight 0). Neighbors come from ``samples_path`` or ``pool`` (unlabeled samples), highest
    weight first.

    Args:
        samples_path: the labeled samples (Parquet, CSV, IDX, LINQS ``.content``).
        graph_path: the graph (Parquet or NSL TSV).
        output_path: the packed Parquet table (written atomically).
        max_neighbors: neighbors per sample (default: all, as NSL's ``pack_nbrs``).
        pool: unlabeled samples that may serve as neighbors.
        add_undirected_edges: add every edge's reverse first (NSL's ``add_undirected_edges``).

    Returns:
        ``{"samples", "samples_with_neighbors", "pairs", "unknown_targets"}``: rows written, rows
        with at least one neighbor, neighbor pairs written, edges to ids in neither file (skipped).

    Raises:
        NslValueError: ``max_neighbors < 0``.
        NslFileError: an input cannot be read or the output written.
        NslError: malformed input (features of different widths, a bad graph file).
    """
    if max_neighbors is not None and max_neighbors < 0:
        raise NslValueError(f"invalid max_neighbors {max_neighbors}: expected a count >= 0")
    limit = 2**63 - 1 if max_neighbors is None else int(max_neighbors)
    samples, with_neighbors, pairs, unknown = _native.pack_nbrs(
        os.fspath(samples_path),
        os.fspath(graph_path),
        os.fspath(output_path),
        limit,
        None if pool is None else os.fspath(pool),
        bool(add_undirected_edges),
    )
    return {
        "samples": samples,
        "samples_with_neighbors": with_neighbors,
        "pairs": pairs,
        "unknown_targets": unknown,
    }


def graph_stats(graph: Union[PathLike, EdgesLike], samples: Optional[PathLike] = None) -> dict:
    """nsl's graph statistics (``nsl graph stats --json``) of a graph file or table, as a dict.

    Keys: ``nodes``, ``edges`` (directed), ``links`` (undirected), ``symmetric``,
    ``edges_by_kind``, ``self_loops``, ``out_degree`` and ``weight`` (min/median/mean/max),
    ``degree_histogram``, ``components``, ``largest_component``, and with ``samples`` (a samples
    file) ``samples``: coverage and homophily of the samples. A table has only the nodes its edges
    name; a file keeps isolated nodes.

    Raises:
        NslFileError: a file cannot be read.
        NslValueError: a bad table.
    """
    samples_arg = None if samples is None else os.fspath(samples)
    if isinstance(graph, (str, os.PathLike)):
        text = _native.graph_stats_json(path=os.fspath(graph), samples=samples_arg)
    else:
        text = _native.graph_stats_json(edges=_edge_columns(graph, "similarity"), samples=samples_arg)
    return json.loads(text)
