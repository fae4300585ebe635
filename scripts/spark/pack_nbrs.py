#!/usr/bin/env python3
"""`nsl pack-nbrs` as a Spark job: the same rows, partitioned.

    pack_nbrs.py --samples S.parquet|DIR [--pool P.parquet|DIR] --graph G.parquet|DIR
                 --max-neighbors K [--add-undirected] --output DIR [--master local[2]]

Each sample gets NSL's pack_nbrs columns (NL_num_nbrs, NL_nbr_{j}_id/_features/_weight, padded to
K with "", zeros and weight 0): its K best out-edges by weight, ties to the larger id (nsl's
NeighborGraph::top_k order), among neighbors found in the samples (first) or the pool; edges to
unknown ids are skipped, as NSL does. The join runs in Spark; the top-K choice and the packing run
in `nsl worker pack`, one group of rows per sample. The output is a directory of Parquet parts,
one row per sample, in no particular order (nsl pack-nbrs keeps the samples' order); features are
list<float32> (nsl pack-nbrs writes fixed_size_list). Labels are passed through when the samples
have an integer label column.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nsl_spark  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--samples", required=True, help="labeled samples (Parquet file or directory)")
    p.add_argument("--pool", help="unlabeled samples that may serve as neighbors")
    p.add_argument("--graph", required=True, help="the graph: nsl's Parquet edge table (file or directory)")
    p.add_argument("--max-neighbors", type=int, default=5, help="neighbors per sample (5)")
    p.add_argument("--add-undirected", action="store_true",
                   help="add each edge's reverse first, keeping the larger weight (NSL's --add_undirected_edges)")
    p.add_argument("--output", required=True, help="output directory of Parquet parts (must not exist)")
    p.add_argument("--id-column", default="id")
    p.add_argument("--feature-column", default="features")
    p.add_argument("--label-column", default="label", help="copied when present (integers)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output directory")
    p.add_argument("--master", default=None)
    p.add_argument("--partitions", type=int, default=0, help="shuffle partitions (default 4 x default parallelism)")
    a = p.parse_args(argv)
    if a.max_neighbors < 0:
        p.error("--max-neighbors must be at least 0")
    return a


def output_schema(k, label):
    cols = ["id string", "features array<float>"] + (["label long"] if label else []) + ["NL_num_nbrs long"]
    for j in range(k):
        cols += [f"NL_nbr_{j}_id string", f"NL_nbr_{j}_features array<float>", f"NL_nbr_{j}_weight float"]
    return ", ".join(cols)


def main(argv=None):
    a = parse_args(argv)
    from pyspark.sql import functions as F

    start = time.time()
    spark = nsl_spark.session("nsl pack-nbrs", a.master, a.partitions)
    parts = a.partitions or 4 * spark.sparkContext.defaultParallelism
    spark.conf.set("spark.sql.shuffle.partitions", str(parts))
    raw = spark.read.parquet(a.samples)
    label = a.label_column in raw.columns
    samples = raw.select(F.col(a.id_column).cast("string").alias("id"), F.col(a.feature_column).alias("features"),
                         *([F.col(a.label_column).cast("long").alias("label")] if label else []))
    dup = samples.groupBy("id").count().where("count > 1").limit(1).collect()
    if dup:
        raise SystemExit(f"error: sample id `{dup[0]['id']}` appears {dup[0]['count']} times")
    known = samples.select("id", "features")
    if a.pool:
        pool = spark.read.parquet(a.pool).select(F.col(a.id_column).cast("string").alias("id"),
                                                 F.col(a.feature_column).alias("features"))
        # A labeled sample wins over a pool sample with the same id.
        known = known.unionByName(pool.join(samples.select("id"), "id", "left_anti"))
    edges = spark.read.parquet(a.graph).select(F.col("source").cast("string"), F.col("target").cast("string"),
                                               F.col("weight").cast("float"))
    if a.add_undirected:
        rev = edges.select(F.col("target").alias("source"), F.col("source").alias("target"), "weight")
        edges = edges.unionByName(rev).groupBy("source", "target").agg(F.max("weight").alias("weight"))
    cands = (edges.join(samples.select(F.col("id").alias("source")), "source", "left_semi")
                  .join(known.withColumnRenamed("id", "target"), "target"))
    rows = samples.select(F.col("id").alias("source"), F.lit(0).cast("byte").alias("role"), "features",
                          *(["label"] if label else []), F.lit(None).cast("string").alias("target"),
                          F.lit(None).cast("float").alias("weight"))
    cand_rows = cands.select("source", F.lit(1).cast("byte").alias("role"), "features",
                             *([F.lit(None).cast("long").alias("label")] if label else []), "target", "weight")
    args = ["pack", "--max-neighbors", a.max_neighbors] + (["--label"] if label else [])
    packed = (rows.unionByName(cand_rows).repartition(parts, "source").sortWithinPartitions("source", "role")
                  .mapInArrow(nsl_spark.worker(*args), output_schema(a.max_neighbors, label)))
    packed.write.mode("overwrite" if a.overwrite else "errorifexists").parquet(a.output)
    out = spark.read.parquet(a.output)
    stats = out.agg(F.count("*").alias("n"), F.sum(F.when(F.col("NL_num_nbrs") > 0, 1).otherwise(0)).alias("with"),
                    F.sum("NL_num_nbrs").alias("pairs")).first()
    print(f"packed {stats['n']} samples ({stats['with'] or 0} with neighbors, {stats['pairs'] or 0} pairs) "
          f"in {time.time() - start:.2f} s on {parts} partitions -> {a.output}")
    spark.stop()


if __name__ == "__main__":
    main()
