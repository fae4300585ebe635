#!/usr/bin/env python3
"""`nsl build-graph` as a Spark job: the same graph, edge for edge and weight for weight.

    build_graph.py --input EMB.parquet|DIR --output DIR --threshold T
                   [--lsh-splits S --lsh-rounds R --seed X [--center] | --exact --blocks B]
                   [--master local[2]] [--partitions P] [--bucket-bound M]

LSH is a shuffle: `nsl worker lsh-keys` maps each row to one record per round keyed by
(round, bucket code) (the hyperplanes come from (seed, round) alone); the records are shuffled on
the key and `nsl worker lsh-bucket` compares the rows of each bucket with nsl's kernel (f32 GEMM,
exact f64 re-decision near the threshold), keeping a pair only in the first round where its two
rows share a bucket (each record carries all its rounds' codes, so no second shuffle). Buckets of
more than --bucket-bound rows are split into chunks by a hash of the id; chunk pairs are separate
tasks. Exact mode hashes rows into B blocks and runs the B(B+1)/2 block pairs.

The output is a directory of Parquet parts with nsl's graph columns (source, target, weight, kind),
both directions of every link; `nsl graph stats DIR` and nsl's readers take the directory.
Needs only PySpark and the `nsl` binary on PATH (or $NSL_BIN) on the driver and the executors.
"""

import argparse
import json
import sys
import time
import os

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nsl_spark  # noqa: E402

KEYS_SCHEMA = "round int, code long, codes array<long>, id string, embedding array<float>"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--input", required=True, help="Parquet embeddings: a file or a directory of parts")
    p.add_argument("--output", required=True, help="output directory of Parquet edge parts (must not exist)")
    p.add_argument("--threshold", type=float, default=0.8, help="minimum cosine similarity, inclusive (0.8)")
    p.add_argument("--lsh-splits", type=int, default=0, help="LSH hyperplanes per round (1 to 63)")
    p.add_argument("--lsh-rounds", type=int, default=1, help="LSH rounds (1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the hyperplanes (0)")
    p.add_argument("--center", action="store_true", help="subtract the mean embedding before hashing")
    p.add_argument("--exact", action="store_true", help="compare every pair (the default without --lsh-splits)")
    p.add_argument("--blocks", type=int, default=4, help="exact: row blocks B, B(B+1)/2 tasks (4)")
    p.add_argument("--bucket-bound", type=int, default=20000,
                   help="LSH: split buckets of more rows into chunk pairs (20000)")
    p.add_argument("--id-column", default="id")
    p.add_argument("--embedding-column", default=None,
                   help="list<float> column of the embeddings (default as nsl build-graph: `embedding` if the table "
                        "has it, else `features` (what nsl generate-embeddings writes), else its only list column)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output directory")
    p.add_argument("--master", default=None, help="Spark master, e.g. local[2] (default: spark-submit's)")
    p.add_argument("--partitions", type=int, default=0, help="shuffle partitions (default 4 x default parallelism)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    a = p.parse_args(argv)
    if a.exact and a.lsh_splits:
        p.error("--exact and --lsh-splits exclude each other")
    if not 0 <= a.lsh_splits <= 63 or a.lsh_rounds < 1 or a.blocks < 1 or a.bucket_bound < 2:
        p.error("need 0 <= --lsh-splits <= 63, --lsh-rounds >= 1, --blocks >= 1, --bucket-bound >= 2")
    if not -1.0 <= a.threshold <= 1.0:
        p.error("--threshold must be in [-1, 1]")
    return a


def embedding_column(fields, chosen=None, id_column="id"):
    """The column of the embeddings, picked as `nsl build-graph` picks it: `chosen` when given, else
    `embedding` when the table has it, else `features`, else the table's only list column other than
    the id. `fields` are the table's (name, is_list) pairs, in order."""
    if chosen:
        return chosen
    names = [name for name, _ in fields]
    for default in ("embedding", "features"):
        if default in names:
            return default
    lists = [name for name, is_list in fields if is_list and name != id_column]
    if len(lists) == 1:
        return lists[0]
    raise SystemExit(f"error: no embedding column: expected `embedding`, `features` or a single list column "
                     f"(or name it with --embedding-column); columns present: {', '.join(names)}")


def replicate(df, chunk_col, count_col):
    """Each row of chunk c (of k) once per chunk pair it belongs to: (ci, cj, side) for j in 0..k."""
    from pyspark.sql import functions as F

    j = F.explode(F.sequence(F.lit(0), F.col(count_col) - 1)).alias("j")
    c = F.col(chunk_col)
    return (df.select("*", j)
              .withColumn("ci", F.least(c, F.col("j")).cast("int"))
              .withColumn("cj", F.greatest(c, F.col("j")).cast("int"))
              .withColumn("side", F.when(c > F.col("j"), 1).otherwise(0).cast("byte"))
              .drop("j", chunk_col, count_col))


def main(argv=None):
    a = parse_args(argv)
    from pyspark.sql import functions as F
    from pyspark import StorageLevel

    start = time.time()
    spark = nsl_spark.session("nsl build-graph", a.master, a.partitions)
    parts = a.partitions or 4 * spark.sparkContext.defaultParallelism
    spark.conf.set("spark.sql.shuffle.partitions", str(parts))
    raw = spark.read.parquet(a.input)
    column = embedding_column([(f.name, f.dataType.typeName() == "array") for f in raw.schema.fields],
                              a.embedding_column, a.id_column)
    rows = raw.select(F.col(a.id_column).cast("string").alias("id"), F.col(column).alias("embedding"))
    rows = rows.persist(StorageLevel.MEMORY_AND_DISK)
    counts = rows.agg(F.count("*").alias("n"), F.countDistinct("id").alias("ids")).first()
    if counts["n"] == 0:
        raise SystemExit("error: no embeddings to build a graph from (empty input)")
    if counts["ids"] != counts["n"]:
        raise SystemExit(f"error: {counts['n'] - counts['ids']} repeated ids in {a.input} (ids must be unique)")
    report = {"mode": "lsh" if a.lsh_splits else "exact", "nodes": counts["n"], "partitions": parts}

    if a.lsh_splits:
        key_args = ["lsh-keys", "--splits", a.lsh_splits, "--rounds", a.lsh_rounds, "--seed", a.seed]
        if a.center:
            sums = rows.select("embedding").mapInArrow(nsl_spark.worker("col-sums"), "rows long, bins array<long>")
            table = sums.toArrow() if hasattr(sums, "toArrow") else None
            if table is None:
                import pyarrow as pa
                table = pa.Table.from_pylist([r.asDict() for r in sums.collect()])
            mean = nsl_spark.worker_local(["col-mean"], table).decode().strip()
            key_args += ["--center", mean]
        keys = rows.mapInArrow(nsl_spark.worker(*key_args), KEYS_SCHEMA).persist(StorageLevel.MEMORY_AND_DISK)
        sizes = keys.groupBy("round", "code").count().persist()
        stats = sizes.agg(F.max("count").alias("largest"),
                          F.sum(F.col("count") * (F.col("count") - 1) / 2).alias("pairs"),
                          F.sum(F.when(F.col("count") > a.bucket_bound, 1).otherwise(0)).alias("split")).first()
        report.update(rounds=a.lsh_rounds, largest_bucket=int(stats["largest"] or 0),
                      compared_pairs=int(stats["pairs"] or 0), split_buckets=int(stats["split"] or 0))
        big = (sizes.where(F.col("count") > a.bucket_bound)
                    .select("round", "code", F.ceil(F.col("count") / a.bucket_bound).cast("int").alias("chunks")))
        keyed = (keys.join(F.broadcast(big), ["round", "code"], "left")
                     .fillna(1, ["chunks"])
                     .withColumn("chunk", F.pmod(F.xxhash64("id"), F.col("chunks")).cast("int")))
        tasks = replicate(keyed, "chunk", "chunks")
        order = ["round", "code", "ci", "cj"]
        edges = (tasks.repartition(parts, *order).sortWithinPartitions(*order)
                      .mapInArrow(nsl_spark.worker("lsh-bucket", "--threshold", repr(a.threshold)),
                                  nsl_spark.EDGE_SCHEMA))
    else:
        blocks = (rows.withColumn("block", F.pmod(F.xxhash64("id"), F.lit(a.blocks)).cast("int"))
                      .withColumn("nblocks", F.lit(a.blocks)))
        tasks = replicate(blocks, "block", "nblocks")
        n = counts["n"]
        report.update(rounds=1, largest_bucket=n, compared_pairs=n * (n - 1) // 2, blocks=a.blocks,
                      block_pairs=a.blocks * (a.blocks + 1) // 2)
        edges = (tasks.repartition(parts, "ci", "cj").sortWithinPartitions("ci", "cj")
                      .mapInArrow(nsl_spark.worker("exact-block", "--threshold", repr(a.threshold)),
                                  nsl_spark.EDGE_SCHEMA))
    edges.write.mode("overwrite" if a.overwrite else "errorifexists").parquet(a.output)
    written = spark.read.parquet(a.output).count()
    report.update(directed_edges=written, edges=written // 2,
                  mean_degree=round(written / max(report["nodes"], 1), 4), seconds=round(time.time() - start, 2))
    if a.json:
        print(json.dumps(report))
    else:
        print(f"{report['mode']} graph: {report['nodes']} nodes, {report['edges']} edges "
              f"({written} directed), mean degree {report['mean_degree']:.2f}")
        print(f"pairs compared: {report['compared_pairs']} over {report['rounds']} round(s), "
              f"largest bucket {report['largest_bucket']} rows "
              f"({100 * report['largest_bucket'] / max(report['nodes'], 1):.1f} % of the nodes)"
              + (f", {report['split_buckets']} bucket(s) split into chunks" if report.get("split_buckets") else ""))
        print(f"time: {report['seconds']:.2f} s on {parts} partitions -> {a.output}")
    spark.stop()


if __name__ == "__main__":
    main()
