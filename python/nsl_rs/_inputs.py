"""Turning what a Python user passes (numpy, pandas, pyarrow, lists) into what the extension reads.

Every check here raises ``NslValueError`` with a message that names the argument (``X``, ``y``,
``ids``, ``graph``, ``validation``, ...) and, where one row is at fault, the row. Checks that nsl
makes anyway (non-finite features, duplicate ids, a graph naming unknown ids) are left to nsl,
whose message the extension prefixes with the argument's name.
"""

from __future__ import annotations

import os
from typing import Any, List, NamedTuple, Optional, Sequence, Tuple

import sys

import numpy as np

from ._errors import NslTypeError, NslValueError


def pyarrow() -> Any:
    """pyarrow, imported on first use (it costs ~60 ms; training from numpy arrays never needs it)."""
    import pyarrow

    return pyarrow


def arrow(x: Any, *names: str) -> bool:
    """Whether ``x`` is one of pyarrow's ``names`` (default a Table or RecordBatch), without
    importing pyarrow: an object of pyarrow can exist only once pyarrow is imported."""
    pa = sys.modules.get("pyarrow")
    return pa is not None and isinstance(x, tuple(getattr(pa, n) for n in (names or ("Table", "RecordBatch"))))


def _is_pandas(x: Any) -> bool:
    return type(x).__module__.startswith("pandas") and hasattr(x, "columns")


def _is_pandas_series(x: Any) -> bool:
    return type(x).__module__.startswith("pandas") and hasattr(x, "to_numpy") and not hasattr(x, "columns")


def _columns(x: Any) -> Optional[List[str]]:
    if arrow(x):
        return list(x.column_names)
    if _is_pandas(x):
        return [str(c) for c in x.columns]
    return None


def _column(x: Any, name: str) -> np.ndarray:
    if arrow(x):
        return np.asarray(x.column(name).to_pylist(), dtype=object)
    return x[name].to_numpy()


def _drop(x: Any, name: str) -> Any:
    if arrow(x):
        return x.drop_columns([name]) if arrow(x, "Table") else pyarrow().Table.from_batches([x]).drop_columns([name])
    return x.drop(columns=[name])


def _table_to_numpy(table: Any, arg: str) -> np.ndarray:
    """A pyarrow table's columns as a float32 matrix: scalar numeric columns side by side, or one
    list column (``features``, as nsl's samples tables) as rows."""
    pa = pyarrow()
    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    if table.num_columns == 1 and (
        pa.types.is_list(table.schema.field(0).type)
        or pa.types.is_large_list(table.schema.field(0).type)
        or pa.types.is_fixed_size_list(table.schema.field(0).type)
    ):
        rows = table.column(0).to_pylist()
        if any(r is None for r in rows):
            row = next(i for i, r in enumerate(rows) if r is None)
            raise NslValueError(f"{arg}: row {row}: the feature list is null")
        widths = {len(r) for r in rows}
        if len(widths) > 1:
            row = next(i for i, r in enumerate(rows) if len(r) != len(rows[0]))
            raise NslValueError(f"{arg}: row {row} has {len(rows[row])} features, row 0 has {len(rows[0])}")
        return np.asarray(rows, dtype=np.float32).reshape(len(rows), -1)
    columns = []
    for name, column in zip(table.column_names, table.columns):
        t = column.type
        if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)):
            raise NslValueError(f"{arg}: column `{name}` has type {t}, not a number (features must be numeric)")
        if column.null_count:
            row = next(i for i, v in enumerate(column.to_pylist()) if v is None)
            raise NslValueError(f"{arg}: row {row}, column `{name}`: missing value (null)")
        columns.append(column.to_numpy().astype(np.float32, copy=False))
    if not columns:
        return np.zeros((table.num_rows, 0), dtype=np.float32)
    return np.ascontiguousarray(np.column_stack(columns), dtype=np.float32)


def features(x: Any, arg: str = "X") -> np.ndarray:
    """``x`` as a C-contiguous float32 array ``n × …`` (a matrix, or images ``n × c × h × w``);
    the same array (not a copy) when it already is one."""
    if hasattr(x, "tocsr") and hasattr(x, "nnz"):
        raise NslTypeError(
            f"{arg}: a sparse matrix; sparse input is not supported (nsl trains on dense rows: pass X.toarray())"
        )
    if arrow(x):
        array = _table_to_numpy(x, arg)
    else:
        if _is_pandas(x):
            bad = [str(c) for c, t in x.dtypes.items() if not (t.kind in "biuf")]
            if bad:
                raise NslValueError(
                    f"{arg}: column `{bad[0]}` has dtype {x.dtypes[bad[0]]}, not a number (features must be numeric)"
                )
            x = x.to_numpy(dtype=np.float32)
        try:
            array = np.asarray(x)
        except (ValueError, TypeError) as e:
            raise NslValueError(f"{arg}: not an array of numbers ({e})") from None
        if array.dtype.kind not in "biuf":
            if array.dtype.kind == "c":
                raise NslValueError(f"{arg}: Complex data not supported (dtype {array.dtype}); features are real numbers")
            try:
                array = array.astype(np.float32)
            except TypeError as e:
                raise NslTypeError(f"{arg}: dtype {array.dtype} is not numeric (features must be numbers): {e}") from None
            except ValueError as e:
                raise NslValueError(f"{arg}: dtype {array.dtype} is not numeric (features must be numbers): {e}") from None
        if array.dtype != np.float32 or not array.flags.c_contiguous:
            array = np.ascontiguousarray(array, dtype=np.float32)
    if array.ndim < 2:
        raise NslValueError(
            f"{arg}: expected a 2-D array (samples × features), got {array.ndim} dimension(s) of shape "
            f"{array.shape}. Reshape your data: X.reshape(-1, 1) for a single feature, X.reshape(1, -1) for a "
            "single sample"
        )
    if array.shape[0] == 0:
        raise NslValueError(f"{arg}: 0 sample(s) (shape={array.shape}) while a minimum of 1 is required.")
    if any(k == 0 for k in array.shape[1:]):
        raise NslValueError(f"{arg}: 0 feature(s) (shape={array.shape}) while a minimum of 1 is required.")
    return array


def item_shape(array: np.ndarray) -> List[int]:
    """The shape of one sample: ``[d]`` for a matrix, ``[c, h, w]`` for images ``n × c × h × w``."""
    return [int(k) for k in array.shape[1:]]


def rows(array: np.ndarray) -> np.ndarray:
    """The samples as rows, ``n × d``: a view of a C-contiguous array (no copy)."""
    return array.reshape(array.shape[0], -1)


class Frame(NamedTuple):
    """A samples argument, split: the feature matrix, its ids (or None) and the column of labels
    pulled out of a table (or None)."""

    x: np.ndarray
    ids: Optional[List[str]]


def frame(x: Any, ids: Any, arg: str, id_column: str = "id", tokens: bool = False) -> Frame:
    """Features and ids of a samples argument. ``ids`` is a sequence of ids, the name of a column
    of ``x`` (a DataFrame or a pyarrow table), or None: then the column ``id_column`` of a table if
    it has one."""
    columns = _columns(x)
    id_list = None
    if isinstance(ids, str):
        if columns is None or ids not in columns:
            raise NslValueError(
                f"ids: `{ids}` names no column of {arg}"
                + (f" (columns: {', '.join(columns)})" if columns else " (a numpy array has no columns)")
            )
        id_list = _id_strings(_column(x, ids), f"{arg}[{ids!r}]")
        x = _drop(x, ids)
    elif ids is None and columns is not None and id_column in columns:
        id_list = _id_strings(_column(x, id_column), f"{arg}[{id_column!r}]")
        x = _drop(x, id_column)
    elif ids is not None:
        id_list = _id_strings(ids, f"ids of {arg}" if arg != "X" else "ids")
    array = token_rows(x, arg) if tokens else features(x, arg)
    if id_list is not None and len(id_list) != array.shape[0]:
        name = f"ids of {arg}" if arg != "X" else "ids"
        raise NslValueError(f"{name}: {len(id_list)} ids for the {array.shape[0]} rows of {arg}")
    return Frame(array, id_list)


def _id_strings(ids: Any, arg: str) -> List[str]:
    if type(ids) is list and all(type(i) is str for i in ids):
        return ids  # read_samples' ids, as they are (the common case: no copy, no per-id checks)
    if arrow(ids, "Array", "ChunkedArray"):
        ids = ids.to_pylist()
    elif _is_pandas_series(ids) or hasattr(ids, "tolist"):
        ids = ids.tolist()
    out = []
    for row, i in enumerate(ids):
        if i is None or (isinstance(i, float) and np.isnan(i)):
            raise NslValueError(f"{arg}: row {row}: missing id")
        out.append(str(i))
    return out


def default_ids(n: int, prefix: str = "") -> List[str]:
    return [f"{prefix}{i}" for i in range(n)]


def labels_1d(y: Any, arg: str = "y") -> np.ndarray:
    """``y`` as a 1-D numpy array; a column vector is raveled (with scikit-learn's warning)."""
    if arrow(y, "Array", "ChunkedArray"):
        y = np.asarray(y.to_pylist(), dtype=object)
    elif _is_pandas_series(y) or _is_pandas(y):
        y = y.to_numpy()
    y = np.asarray(y)
    return y


def missing_rows(y: np.ndarray) -> np.ndarray:
    """Rows of a 1-D label array that hold no label (None, NaN, pandas' NA)."""
    if y.dtype.kind == "f":
        return np.flatnonzero(np.isnan(y))
    if y.dtype.kind == "O":
        bad = []
        for i, v in enumerate(y):
            if v is None or (isinstance(v, float) and np.isnan(v)) or type(v).__name__ in ("NAType", "NaTType"):
                bad.append(i)
        return np.asarray(bad, dtype=np.int64)
    return np.zeros(0, dtype=np.int64)


def row_name(row: int, ids: Optional[Sequence[str]]) -> str:
    return f"row {row}" if ids is None else f"row {row} (id `{ids[row]}`)"


def sample_weights(w: Any, n: int, arg: str = "sample_weight") -> Optional[np.ndarray]:
    if w is None:
        return None
    w = np.asarray(w, dtype=np.float64)
    if w.ndim == 0:
        w = np.full(n, float(w))
    if w.ndim != 1 or w.shape[0] != n:
        raise NslValueError(f"{arg}: {w.shape} weights for {n} samples: expected one weight per sample")
    bad = np.flatnonzero(~(np.isfinite(w) & (w >= 0)))
    if bad.size:
        raise NslValueError(f"{arg}: row {bad[0]}: weight {w[bad[0]]} is not a finite number >= 0")
    if not np.any(w > 0):
        raise NslValueError(f"{arg}: every weight is zero; at least one sample must weigh more than 0")
    return np.ascontiguousarray(w, dtype=np.float32)


def graph_edges(graph: Any) -> Tuple[Optional[str], Optional[Tuple[list, list, np.ndarray]]]:
    """A graph argument as ``(path, None)`` or ``(None, (sources, targets, weights))``."""
    if graph is None:
        return None, None
    if isinstance(graph, (str, os.PathLike)):
        return os.fspath(graph), None
    if _is_pandas(graph):
        graph = pyarrow().Table.from_pandas(graph, preserve_index=False)
    if arrow(graph, "Table"):
        missing = [c for c in ("source", "target") if c not in graph.column_names]
        if missing:
            raise NslValueError(
                f"graph: the table has no column {', '.join(missing)} (columns: {', '.join(graph.column_names)}); "
                "expected source, target and optionally weight"
            )
        sources = [str(s) for s in graph.column("source").to_pylist()]
        targets = [str(t) for t in graph.column("target").to_pylist()]
        if "weight" in graph.column_names:
            weights = np.asarray(graph.column("weight").to_pylist(), dtype=np.float32)
        else:
            weights = np.ones(len(sources), dtype=np.float32)
    else:
        try:
            rows = [tuple(r) for r in graph]
        except TypeError:
            raise NslValueError(
                f"graph: a {type(graph).__name__} is not a graph (a path, a pyarrow table or DataFrame with "
                "source, target, weight columns, or (source, target, weight) triples)"
            ) from None
        for i, r in enumerate(rows):
            if len(r) not in (2, 3):
                raise NslValueError(f"graph: edge {i} has {len(r)} fields: expected (source, target[, weight])")
        sources = [str(r[0]) for r in rows]
        targets = [str(r[1]) for r in rows]
        weights = np.asarray([float(r[2]) if len(r) == 3 else 1.0 for r in rows], dtype=np.float32)
    bad = np.flatnonzero(~(np.isfinite(weights) & (weights >= 0)))
    if bad.size:
        raise NslValueError(
            f"graph: edge {bad[0]} (`{sources[bad[0]]}` -> `{targets[bad[0]]}`): weight {weights[bad[0]]} "
            "is not a finite number >= 0"
        )
    return None, (sources, targets, np.ascontiguousarray(weights))


TOKEN_PAD = -1.0


def token_rows(x: Any, arg: str = "X", width: Optional[int] = None) -> np.ndarray:
    """Bag-of-words input (a ``bow`` model): one list of token ids (ints >= 0) per row, as a list
    of lists, a numpy object array, a pandas Series or one-column DataFrame of lists, a pyarrow
    list column (a one-column table, an Array or ChunkedArray), or a 2-D int array already padded
    with -1. Returns the rows as float32, ``n × max_len``, padded with -1 (nsl's ``PAD``) to the
    longest list, or to ``width`` (a fitted model's; a longer row is an error)."""
    if arrow(x):
        if x.num_columns != 1:
            raise NslValueError(f"{arg}: token ids come in one list column; the table has {x.num_columns} columns")
        x = x.column(0)
    if arrow(x, "Array", "ChunkedArray"):
        x = x.to_pylist()
    elif _is_pandas(x):
        if len(x.columns) != 1:
            raise NslValueError(f"{arg}: token ids come in one list column; the DataFrame has {len(x.columns)}")
        x = x.iloc[:, 0].tolist()
    elif _is_pandas_series(x):
        x = x.tolist()
    if isinstance(x, np.ndarray) and x.ndim == 2 and x.dtype.kind in "iuf":
        if x.dtype.kind == "f" and not np.all(np.isfinite(x) & (np.mod(x, 1) == 0)):
            row = int(np.flatnonzero(~np.all(np.isfinite(x) & (np.mod(x, 1) == 0), axis=1))[0])
            raise NslValueError(f"{arg}: row {row}: token ids must be whole numbers")
        lists = [[int(v) for v in r if v != TOKEN_PAD] for r in x]
    else:
        try:
            lists = [None if r is None else [v for v in r] for r in x]
        except TypeError:
            raise NslTypeError(f"{arg}: a bow model takes one list of token ids per row, got {type(x).__name__}") from None
    longest = 0
    for row, ids in enumerate(lists):
        if ids is None:
            raise NslValueError(f"{arg}: row {row}: the token list is null")
        for v in ids:
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or v < 0:
                raise NslValueError(f"{arg}: row {row}: token id {v!r} is not an integer >= 0")
        longest = max(longest, len(ids))
    cols = max(longest, 1) if width is None else width
    if width is not None and longest > width:
        row = next(i for i, ids in enumerate(lists) if len(ids) > width)
        raise NslValueError(f"{arg}: row {row} has {len(lists[row])} token ids, the model takes at most {width}")
    out = np.full((len(lists), cols), TOKEN_PAD, dtype=np.float32)
    for row, ids in enumerate(lists):
        out[row, : len(ids)] = ids
    return out


def token_layout(array: np.ndarray, name: str = "tokens") -> str:
    """The JSON feature layout of padded token rows: one token group ``name``, ``max_len`` = the
    width, ``vocab`` = the largest id + 1."""
    import json

    vocab = int(array.max()) + 1 if array.size else 1
    return json.dumps([{"name": name, "kind": {"type": "tokens", "max_len": int(array.shape[1]), "vocab": max(vocab, 1)}}])
