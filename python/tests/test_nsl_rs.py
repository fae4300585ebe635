"""Tests of the nsl_rs Python package (run with `python3 -m pytest python/tests`).

The CLI comparisons need the `nsl` binary: $NSL_BIN, else target/release/nsl or target/debug/nsl
of this repository; they are skipped without one. The MNIST-10k timing (not an assertion) prints
nsl_rs.build_graph's time next to the CLI's build phase (best of $NSL_RS_TIMING_RUNS runs, default
3); run with `-s` to see it.
"""

import gzip
import json
import math
import os
import subprocess
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import nsl_rs
from _cli import ROOT, nsl_bin

def edges(table):
    return list(zip(table.column("source").to_pylist(), table.column("target").to_pylist(),
                    table.column("weight").to_pylist()))


# a=(1,0), b=(0.96,0.28) (|b|=1, cos(a,b)=0.96), c=(0,1) (cos(b,c)=0.28, cos(a,c)=0).
TINY = np.array([[1.0, 0.0], [0.96, 0.28], [0.0, 1.0]], dtype=np.float32)


def test_build_graph_tiny_exact_edges_and_weights():
    table = nsl_rs.build_graph(TINY, ids=["a", "b", "c"], threshold=0.9)
    assert table.column_names == ["source", "target", "weight"]
    assert table.schema.field("weight").type == pa.float32()
    assert edges(table) == [("a", "b", pytest.approx(0.96, abs=1e-6)), ("b", "a", pytest.approx(0.96, abs=1e-6))]


def test_build_graph_default_ids_threshold_zero_and_top_k():
    table = nsl_rs.build_graph(TINY, threshold=0.0)
    got = [(s, t, round(w, 5)) for s, t, w in edges(table)]
    assert got == [("0", "1", 0.96), ("0", "2", 0.0), ("1", "0", 0.96), ("1", "2", 0.28), ("2", "0", 0.0), ("2", "1", 0.28)]
    # top_k=1: each row's best neighbor, then symmetrized (as the CLI's --top-k).
    top = {(s, t) for s, t, _ in edges(nsl_rs.build_graph(TINY, threshold=-1.0, top_k=1))}
    assert ("0", "1") in top and ("2", "1") in top and ("1", "0") in top


def test_build_graph_accepts_non_contiguous_and_float64():
    big = np.asfortranarray(TINY.astype(np.float64))
    assert edges(nsl_rs.build_graph(big, threshold=0.9)) == edges(nsl_rs.build_graph(TINY, threshold=0.9))
    wide = np.zeros((3, 4), dtype=np.float32)
    wide[:, ::2] = TINY
    view = wide[:, ::2]  # a strided view (= TINY), not C-contiguous
    assert not view.flags["C_CONTIGUOUS"]
    assert edges(nsl_rs.build_graph(view, threshold=0.9)) == edges(nsl_rs.build_graph(TINY, threshold=0.9))


def test_errors_carry_nsl_messages():
    with pytest.raises(ValueError, match=r"invalid threshold `2`"):
        nsl_rs.build_graph(TINY, threshold=2.0)
    with pytest.raises(nsl_rs.NslValueError, match=r"duplicate id `a` in rows 0 and 1"):
        nsl_rs.build_graph(TINY, ids=["a", "a", "c"])
    with pytest.raises(nsl_rs.NslValueError, match=r"2 ids but 3 embedding rows"):
        nsl_rs.build_graph(TINY, ids=["a", "b"])
    bad = TINY.copy()
    bad[1, 1] = np.nan
    with pytest.raises(nsl_rs.NslError, match=r"row 1.*column 1.*not finite"):
        nsl_rs.build_graph(bad)
    with pytest.raises(ValueError, match="2-D"):
        nsl_rs.build_graph(np.zeros(3, dtype=np.float32))
    with pytest.raises(OSError, match="no-such-file.parquet"):
        nsl_rs.read_graph("/nonexistent/no-such-file.parquet")
    with pytest.raises(nsl_rs.NslValueError, match="weight -1 is not a finite non-negative number"):
        nsl_rs.write_graph([("a", "b", -1.0)], "/tmp/never-written.tsv")


@pytest.mark.parametrize("name", ["g.parquet", "g.tsv"])
def test_read_write_round_trip(tmp_path, name):
    table = nsl_rs.build_graph(TINY, ids=["a", "b", "c"], threshold=0.0)
    path = tmp_path / name
    nsl_rs.write_graph(table, path)
    back = nsl_rs.read_graph(path)
    assert back.column_names == ["source", "target", "weight", "kind"]
    got = [(s, t, round(w, 5)) for s, t, w in edges(back)]
    assert got == [(s, t, round(w, 5)) for s, t, w in edges(table)]
    kinds = set(back.column("kind").to_pylist())
    assert kinds == ({"similarity"} if name.endswith(".parquet") else {"explicit"})
    # triples too; a repeated edge keeps the larger weight (NSL's rule)
    nsl_rs.write_graph([("x", "y", 0.5), ("x", "y", 0.7)], tmp_path / "t.tsv")
    assert edges(nsl_rs.read_graph(tmp_path / "t.tsv")) == [("x", "y", pytest.approx(0.7))]


def test_graph_stats_of_file_and_table(tmp_path):
    table = nsl_rs.build_graph(TINY, ids=["a", "b", "c"], threshold=0.9)
    stats = nsl_rs.graph_stats(table)
    assert (stats["nodes"], stats["edges"], stats["links"], stats["symmetric"]) == (2, 2, 1, True)
    nsl_rs.write_graph(table, tmp_path / "g.parquet")
    assert nsl_rs.graph_stats(tmp_path / "g.parquet")["edges"] == 2
    # with samples: c has no edge, d is not in the graph
    write_samples(tmp_path / "s.parquet", ["a", "b", "c", "d"], [[1, 0]] * 4, [0, 0, 1, 1])
    samples = nsl_rs.graph_stats(str(tmp_path / "g.parquet"), samples=tmp_path / "s.parquet")["samples"]
    assert (samples["samples"], samples["isolated_samples"], samples["non_sample_nodes"]) == (4, 2, 0)


def write_samples(path, ids, features, labels=None):
    cols = {"id": pa.array(ids), "features": pa.array([list(map(float, f)) for f in features], type=pa.list_(pa.float32()))}
    if labels is not None:
        cols["label"] = pa.array(labels, type=pa.int64())
    pq.write_table(pa.table(cols), path)


def test_pack_nbrs_rows(tmp_path):
    write_samples(tmp_path / "train.parquet", ["a", "b"], [[1, 0], [0, 1]], [0, 1])
    write_samples(tmp_path / "pool.parquet", ["c"], [[0.5, 0.5]])
    nsl_rs.write_graph([("a", "c", 0.9), ("a", "b", 0.4), ("a", "zz", 1.0)], tmp_path / "g.tsv")
    report = nsl_rs.pack_nbrs(tmp_path / "train.parquet", tmp_path / "g.tsv", tmp_path / "out.parquet",
                              pool=tmp_path / "pool.parquet")
    assert report == {"samples": 2, "samples_with_neighbors": 1, "pairs": 2, "unknown_targets": 1}
    rows = pq.read_table(tmp_path / "out.parquet").to_pylist()
    assert [r["id"] for r in rows] == ["a", "b"]
    a, b = rows
    assert a["NL_num_nbrs"] == 2 and b["NL_num_nbrs"] == 0
    assert (a["NL_nbr_0_id"], a["NL_nbr_0_weight"], a["NL_nbr_0_features"]) == ("c", pytest.approx(0.9), [0.5, 0.5])
    assert (a["NL_nbr_1_id"], a["NL_nbr_1_weight"]) == ("b", pytest.approx(0.4))
    assert (b["NL_nbr_0_id"], b["NL_nbr_0_weight"]) == ("", 0.0)
    # max_neighbors=1 keeps the heaviest; add_undirected_edges gives b its neighbor a
    report = nsl_rs.pack_nbrs(tmp_path / "train.parquet", tmp_path / "g.tsv", tmp_path / "one.parquet",
                              max_neighbors=1, pool=tmp_path / "pool.parquet", add_undirected_edges=True)
    rows = pq.read_table(tmp_path / "one.parquet").to_pylist()
    assert [(r["id"], r["NL_nbr_0_id"]) for r in rows] == [("a", "c"), ("b", "a")]
    assert "NL_nbr_1_id" not in rows[0]
    with pytest.raises(OSError, match="missing.parquet"):
        nsl_rs.pack_nbrs(tmp_path / "missing.parquet", tmp_path / "g.tsv", tmp_path / "x.parquet")


def cli_build(nsl, table_path, out, *flags):
    run = subprocess.run([nsl, "build-graph", "--input", str(table_path), "--output", str(out), "--json", *flags],
                         check=True, capture_output=True, text=True, timeout=600)
    return json.loads(run.stdout)["build"]


def test_same_edges_as_cli(tmp_path):
    nsl = nsl_bin()
    rng = np.random.default_rng(7)
    x = rng.normal(size=(300, 16)).astype(np.float32) + np.repeat(rng.normal(size=(30, 16)), 10, axis=0).astype(np.float32)
    ids = [f"s{i}" for i in range(len(x))]
    pq.write_table(pa.table({"id": ids, "embedding": pa.array(list(x), type=pa.list_(pa.float32()))}), tmp_path / "e.parquet")
    for flags, kwargs in [((), {}), (("--threshold", "0.5"), {"threshold": 0.5}),
                          (("--threshold", "0.3", "--lsh-splits", "3", "--lsh-rounds", "2", "--seed", "5"),
                           {"threshold": 0.3, "lsh_splits": 3, "lsh_rounds": 2, "seed": 5})]:
        cli_build(nsl, tmp_path / "e.parquet", tmp_path / "g.parquet", *flags)
        want = edges(pq.read_table(tmp_path / "g.parquet"))
        got = edges(nsl_rs.build_graph(x, ids=ids, **kwargs))
        assert len(got) > 0 and got == want, flags


def read_idx_images(path, n):
    with gzip.open(path, "rb") as f:
        data = f.read()
    count, rows, cols = (int.from_bytes(data[i:i + 4], "big") for i in (4, 8, 12))
    return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(count, rows * cols)[:n]


def test_mnist_10k_timing_vs_cli(tmp_path):
    """MNIST-10k at threshold 0.9: same edges as the CLI; prints both times (not an assertion)."""
    images = ROOT / "datasets/mnist/train-images-idx3-ubyte.gz"
    if not images.is_file():
        pytest.skip("datasets/mnist is missing")
    nsl = nsl_bin()
    # nsl convert (pixels / 255 in f32), then the first 10k rows read back with pyarrow into numpy.
    subprocess.run([nsl, "convert", "--idx-images", str(images), "--samples", str(tmp_path / "mnist.parquet")],
                   check=True, capture_output=True, timeout=600)
    table = pq.read_table(tmp_path / "mnist.parquet").slice(0, 10_000)
    feats = table.column("features").combine_chunks()
    x = feats.flatten().to_numpy(zero_copy_only=False).reshape(len(table), -1).astype(np.float32, copy=False)
    ids = table.column("id").to_pylist()
    pq.write_table(table, tmp_path / "mnist10k.parquet")
    assert x.flags["C_CONTIGUOUS"] and x.dtype == np.float32 and x.shape == (10_000, 784)

    cli_runs, py_runs = [], []
    for _ in range(int(os.environ.get("NSL_RS_TIMING_RUNS", "3"))):
        report = cli_build(nsl, tmp_path / "mnist10k.parquet", tmp_path / "g.parquet", "--threshold", "0.9")
        cli_runs.append(report["seconds"])
        start = time.perf_counter()
        got = nsl_rs.build_graph(x, ids=ids, threshold=0.9)
        py_runs.append(time.perf_counter() - start)
    want = edges(pq.read_table(tmp_path / "g.parquet"))
    assert len(got) == report["directed_edges"] and edges(got) == want
    print(f"\nMNIST-10k t=0.9, {len(want)} edges: nsl_rs.build_graph {min(py_runs):.3f} s (runs {', '.join(f'{t:.3f}' for t in py_runs)}),"
          f" CLI build phase {min(cli_runs):.3f} s (runs {', '.join(f'{t:.3f}' for t in cli_runs)});"
          f" ratio {min(py_runs) / min(cli_runs):.2f}")
    assert math.isfinite(min(py_runs))
