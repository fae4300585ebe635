#!/usr/bin/env python3
"""The Spark jobs against the single-machine nsl, in local[2] on 20k rows (run by .ci/run).

    PATH=target/release:$PATH python3 scripts/spark/tests/test_spark.py [-v]

Needs java, pyspark and the release `nsl` on PATH (or $NSL_BIN). Each job runs in its own process
with a time bound (NSL_SPARK_TIMEOUT seconds, default 420): a hung job fails its test.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

HERE = os.path.dirname(os.path.abspath(__file__))
JOBS = os.path.dirname(HERE)
sys.path.insert(0, JOBS)
import nsl_spark  # noqa: E402

ROWS = int(os.environ.get("NSL_SPARK_ROWS", "20000"))
TIMEOUT = float(os.environ.get("NSL_SPARK_TIMEOUT", "420"))
MASTER = "local[2]"


def nsl(*args):
    r = subprocess.run([nsl_spark.nsl_binary(), *map(str, args)], capture_output=True, text=True, timeout=TIMEOUT)
    if r.returncode != 0:
        raise AssertionError(f"nsl {' '.join(map(str, args))} failed:\n{r.stderr}")
    return r.stdout


def job(script, *args):
    t = time.time()
    r = subprocess.run([sys.executable, os.path.join(JOBS, script), "--master", MASTER, *map(str, args)],
                       capture_output=True, text=True, timeout=TIMEOUT)
    if r.returncode != 0:
        raise AssertionError(f"{script} failed (exit {r.returncode}):\n{r.stdout}\n{r.stderr[-4000:]}")
    print(f"\n  {script} {' '.join(map(str, args[:1]))}...: {time.time() - t:.1f} s\n  " +
          r.stdout.strip().replace("\n", "\n  "), file=sys.stderr)
    return r.stdout


def edges(path):
    t = ds.dataset(path, format="parquet").to_table(columns=["source", "target", "weight", "kind"])
    rows = list(zip(t["source"].to_pylist(), t["target"].to_pylist(), t["weight"].to_pylist(),
                    [str(k) for k in t["kind"].to_pylist()]))
    return sorted(rows)


class SparkJobs(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="nsl-spark-test-")
        cls.emb = os.path.join(cls.dir, "emb.parquet")
        nsl("generate-embeddings", "--n", ROWS, "--dim", 64, "--seed", 1, "--output", cls.emb)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def assertSameGraph(self, single, parts):
        want, got = edges(single), edges(parts)
        self.assertGreater(len(want), ROWS, "the test graph should have edges")
        self.assertEqual(len(got), len(want), "directed edge count")
        missing = sorted(set(want) - set(got))[:3]
        extra = sorted(set(got) - set(want))[:3]
        self.assertEqual(got, want, f"missing {missing}, extra {extra}")
        # nsl reads the directory of parts as one graph.
        self.assertIn(f"directed edges   {len(want):,}", nsl("graph", "stats", parts))

    def test_lsh_equals_build_graph(self):
        # Centred hashing, and a bucket bound small enough that the largest buckets are split into chunks.
        flags = ["--threshold", 0.9, "--lsh-splits", 7, "--lsh-rounds", 3, "--seed", 5, "--center"]
        single = nsl("build-graph", "--input", self.emb, "--output", self.path("lsh.parquet"), *flags)
        out = job("build_graph.py", "--input", self.emb, "--output", self.path("lsh_parts"), "--bucket-bound", 150,
                  *flags)
        self.assertIn("bucket(s) split into chunks", out)
        self.assertSameGraph(self.path("lsh.parquet"), self.path("lsh_parts"))
        # The same bucket-size report on both sides.
        report = lambda text: re.search(r"pairs compared: (\d+) over \d+ round\(s\), largest bucket (\d+) rows", text).groups()
        self.assertEqual(report(out), report(single))

    def test_exact_equals_build_graph(self):
        nsl("build-graph", "--input", self.emb, "--output", self.path("exact.parquet"), "--threshold", 0.9)
        job("build_graph.py", "--input", self.emb, "--output", self.path("exact_parts"), "--threshold", 0.9,
            "--exact", "--blocks", 3)
        self.assertSameGraph(self.path("exact.parquet"), self.path("exact_parts"))

    def test_pack_equals_pack_nbrs(self):
        t = pq.read_table(self.emb)
        cut = ROWS * 3 // 4
        samples, pool = self.path("samples.parquet"), self.path("pool.parquet")
        pq.write_table(t.slice(0, cut), samples)
        pq.write_table(t.slice(cut).drop(["label"]), pool)
        graph = self.path("pack_graph.parquet")
        nsl("build-graph", "--input", self.emb, "--output", graph, "--threshold", 0.85, "--lsh-splits", 6,
            "--lsh-rounds", 2)
        single = self.path("packed.parquet")
        nsl("pack-nbrs", "--samples", samples, "--pool", pool, "--graph", graph, "--max-neighbors", 4,
            "--output", single)
        job("pack_nbrs.py", "--samples", samples, "--pool", pool, "--graph", graph, "--max-neighbors", 4,
            "--output", self.path("packed_parts"))
        want = pq.read_table(single)
        got = ds.dataset(self.path("packed_parts"), format="parquet").to_table()
        self.assertEqual(got.column_names, want.column_names)
        self.assertEqual(got.num_rows, want.num_rows)
        self.assertGreater(pa.compute.sum(want["NL_num_nbrs"]).as_py(), cut, "samples should have neighbors")
        by_id = {r["id"]: r for r in got.to_pylist()}
        for r in want.to_pylist():
            self.assertEqual(by_id.get(r["id"]), r, f"packed row of `{r['id']}`")
        # `nsl train --packed` streams the job's parts (list<float> features, Spark's part names and
        # _SUCCESS): in sorted part order with a buffer holding every row, the model is the one
        # trained on nsl's own packed file with its rows put in the parts' order.
        parts = sorted(f for f in os.listdir(self.path("packed_parts")) if f.endswith(".parquet"))
        order = [i for f in parts for i in pq.read_table(os.path.join(self.path("packed_parts"), f))["id"].to_pylist()]
        position = {i: k for k, i in enumerate(want["id"].to_pylist())}
        reordered = self.path("packed_in_part_order.parquet")
        pq.write_table(want.take([position[i] for i in order]), reordered)
        flags = ["--graph-reg", "multiplier=0.1,neighbors=3", "--model", "mlp:16", "--epochs", 2, "--threads", 1,
                 "--shuffle-buffer", ROWS]
        nsl("train", "--packed", self.path("packed_parts"), "--keep-part-order", *flags, "--out", self.path("run_parts"))
        nsl("train", "--packed", reordered, *flags, "--out", self.path("run_file"))
        with open(self.path("run_parts/model.safetensors"), "rb") as a, open(self.path("run_file/model.safetensors"), "rb") as b:
            self.assertTrue(a.read() == b.read(), "training on the job's parts differs from training on nsl's file")


class Worker(unittest.TestCase):
    """`nsl worker` without Spark: its errors reach the caller."""

    def test_bad_rows_fail_the_task_with_nsl_message(self):
        batch = pa.record_batch({"id": ["a", "b"], "embedding": [[1.0, 2.0], [float("nan"), 0.0]]})
        with self.assertRaisesRegex(RuntimeError, "not finite"):
            list(nsl_spark.run_worker(["lsh-keys", "--splits", "4", "--rounds", "2"], iter([batch])))

    def test_keys_are_one_per_round(self):
        batch = pa.record_batch({"id": ["a", "b", "z"], "embedding": [[1.0, 2.0], [-3.0, 0.5], [0.0, 0.0]]})
        out = pa.Table.from_batches(list(nsl_spark.run_worker(["lsh-keys", "--splits", "5", "--rounds", "3"],
                                                              iter([batch]))))
        self.assertEqual(out.num_rows, 6, "zero vector skipped")
        self.assertEqual(out["round"].to_pylist(), [0, 1, 2, 0, 1, 2])
        for codes, r, code in zip(out["codes"].to_pylist(), out["round"].to_pylist(), out["code"].to_pylist()):
            self.assertEqual(codes[r], code)


class Defaults(unittest.TestCase):
    """Issue 22: the job picks the embedding column exactly as `nsl build-graph` does (no Spark)."""

    def test_embedding_column_default_is_the_clis(self):
        import build_graph
        pick = build_graph.embedding_column
        self.assertEqual(pick([("id", False), ("features", True), ("embedding", True)]), "embedding")
        self.assertEqual(pick([("id", False), ("features", True)]), "features")
        self.assertEqual(pick([("id", True), ("vec", True), ("label", False)]), "vec")
        self.assertEqual(pick([("id", False), ("embedding", True)], chosen="features"), "features")
        with self.assertRaisesRegex(SystemExit, "columns present: id, a, b"):
            pick([("id", False), ("a", True), ("b", True)])


if __name__ == "__main__":
    unittest.main()
