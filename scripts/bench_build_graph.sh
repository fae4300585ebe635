#!/usr/bin/env bash
# Benchmark of `nsl build-graph` (issues 3 and 13); figures go to docs/benchmarks.md ("Graph
# building", "Issue 13").
#
#   scripts/bench_build_graph.sh [CASE ...]
#
# One run prints issue 13's three figures:
#   1. nsl exact against the OpenBLAS f32 GEMM rate: the bench target's `mnist` case (exact,
#      threshold 0.9) as N²·d / search seconds, against numpy's (OpenBLAS) best f32 matmul rate
#      measured right after it (needs python3 with numpy; skipped otherwise);
#   2. the CLI end to end on 1,000,000 x 64 (generate-embeddings + build-graph, Parquet in and out,
#      LSH CLI_LSH, default 10x18) against its own search phase (target: at most 1.3x);
#   3. the CLI's peak RSS on 10,000,000 x 64 (LSH TEN_M_LSH, default 14x12; 5 GB of input data,
#      several minutes; SKIP_10M=1 skips it).
# CASE ... are bench-target cases (default: gemm mnist; also synth100k-exact synth100k-lsh
# synth1m), each in its own process under /usr/bin/time -v so its peak RSS is its own.
# Environment: OUT (results directory, default target/bench_build_graph), DATA (generated inputs,
# default $OUT), LSH_100K / LSH_1M (bench LSH settings, e.g. "7x11,8x10"), CLI_LSH, TEN_M_LSH,
# SKIP_1M, SKIP_10M, SPARK_ROWS (also run scripts/spark/build_graph.py in local[2] on that many rows),
# RAYON_NUM_THREADS.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-target/bench_build_graph}
data_dir=${DATA:-$out}
mkdir -p "$out" "$data_dir"
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (apt-get install -y time)" >&2; exit 1; }

cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)
[ -n "$cpu" ] || cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)
simd=$(grep -q -w avx512f /proc/cpuinfo && echo avx512f || (grep -q -w avx2 /proc/cpuinfo && echo avx2 || echo no-avx2))
echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(nproc) cores, $cpu, $simd," \
  "$(free -g | awk '/Mem:/{print $2}') GiB, load $(cut -d' ' -f1-3 /proc/loadavg)" | tee "$out/machine.txt"

bin=$(CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1} cargo bench --bench build_graph --no-run --message-format=json 2>/dev/null |
  sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | grep '/build_graph-' | tail -1)
[ -x "$bin" ] || { echo "could not build the bench target" >&2; exit 1; }

peak() { sed -n 's/.*Maximum resident set size (kbytes): \([0-9]*\).*/\1/p' "$1" | awk '{printf "%.0f MiB", $1/1024}'; }

cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=(gemm mnist)
for c in "${cases[@]}"; do
  /usr/bin/time -v "$bin" "$c" >"$out/$c.jsonl" 2>"$out/$c.err"
  echo "## $c  (peak RSS $(peak "$out/$c.err"), wall $(sed -n 's/.*Elapsed (wall clock) time.*: //p' "$out/$c.err"))"
  cat "$out/$c.jsonl"
done

# 1. nsl exact against OpenBLAS: the mnist case's search phase as GFLOP/s-equivalent (N²·d flops:
# each of the N(N−1)/2 pairs once, 2d flops each), and numpy's best f32 matmul in the same run.
if [ -s "$out/mnist.jsonl" ] && python3 -c 'import numpy' 2>/dev/null; then
  python3 - "$out/mnist.jsonl" <<'PY'
import json, sys, time
import numpy as np
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
r = min(rows, key=lambda r: r["threshold"])
n, d, search = r["n"], r["d"], r["phases"]["search"]
nsl = n * n * d / search / 1e9
best, shape = 0.0, None
rng = np.random.default_rng(0)
for m in (1024, 2048, 4096):
    a = rng.random((m, m), dtype=np.float32)
    b = np.ascontiguousarray(a.T)
    a @ b
    for _ in range(3):
        t = time.perf_counter(); a @ b; dt = time.perf_counter() - t
        if 2 * m ** 3 / dt / 1e9 > best:
            best, shape = 2 * m ** 3 / dt / 1e9, m
blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
print(f"exact {n} x {d} (threshold {r['threshold']}): search {search:.3f} s = {nsl:.1f} GFLOP/s-equivalent, "
      f"{100 * nsl / best:.0f} % of {blas.get('name')} {blas.get('version')}'s best f32 GEMM "
      f"({best:.1f} GFLOP/s at {shape}^3, numpy, same run)")
PY
fi

# 2. The CLI end to end on 1M x 64 (cargo build --release builds target/release/nsl).
nsl=target/release/nsl
if [ -x "$nsl" ] && [ -z "${SKIP_1M:-}" ] && "$nsl" build-graph --help >/dev/null 2>&1; then
  data=$data_dir/synth_n1000000_d64.parquet
  [ -f "$data" ] || "$nsl" generate-embeddings --n 1000000 --dim 64 --seed 1000042 --output "$data"
  splits=${CLI_LSH:-10x18}
  /usr/bin/time -v "$nsl" build-graph --input "$data" --output "$out/graph_1m.parquet" --threshold 0.9 \
    --lsh-splits "${splits%x*}" --lsh-rounds "${splits#*x}" --recall-sample 1000 --json \
    >"$out/cli_1m.json" 2>"$out/cli_1m.err"
  echo "## cli build-graph 1M x 64 LSH $splits (peak RSS $(peak "$out/cli_1m.err"))"
  cat "$out/cli_1m.json"
  # Issue 13's target: end to end within 1.3x the search phase; and the bucket skew.
  python3 - "$out/cli_1m.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
b = r["build"]
search, total = b["phases"]["search"], r["total_seconds"]
print(f"1M LSH end to end {total:.1f} s = {total / search:.2f} x its search phase ({search:.1f} s); "
      f"read {r['read_seconds']:.1f} s, assemble {b['phases']['assemble']:.1f} s, write {r['write_seconds']:.1f} s; "
      f"largest bucket {b.get('largest_bucket', '?')} rows, {b['compared_pairs']} pairs compared")
PY
fi

# 3. 10M x 64: peak RSS of the CLI end to end (the graph is written without an in-memory graph).
if [ -x "$nsl" ] && [ -z "${SKIP_10M:-}" ]; then
  big=$data_dir/synth_n10000000_d64.parquet
  [ -f "$big" ] || "$nsl" generate-embeddings --n 10000000 --dim 64 --seed 10000042 --output "$big"
  splits=${TEN_M_LSH:-14x12}
  /usr/bin/time -v "$nsl" build-graph --input "$big" --output "$out/graph_10m.parquet" --threshold 0.9 \
    --lsh-splits "${splits%x*}" --lsh-rounds "${splits#*x}" --recall-sample 500 --json \
    >"$out/cli_10m.json" 2>"$out/cli_10m.err"
  echo "## cli build-graph 10M x 64 LSH $splits (peak RSS $(peak "$out/cli_10m.err"), wall $(sed -n 's/.*Elapsed (wall clock) time.*: //p' "$out/cli_10m.err"))"
  python3 - "$out/cli_10m.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
b = r["build"]
print(f"10M LSH: {b['edges']} links ({b['directed_edges']} directed), estimated recall {b['estimated_recall']}, "
      f"end to end {r['total_seconds']:.0f} s (read {r['read_seconds']:.0f}, search {b['phases']['search']:.0f}, "
      f"write {r['write_seconds']:.0f}); largest bucket {b['largest_bucket']} rows, {b['compared_pairs']} pairs compared")
PY
  rm -f "$out/graph_10m.parquet"
fi

# The Spark job on the same settings (SPARK_ROWS rows, local[2]), when PySpark and java are there.
if [ -n "${SPARK_ROWS:-}" ] && [ -x "$nsl" ] && python3 -c 'import pyspark' 2>/dev/null && command -v java >/dev/null; then
  sdata=$data_dir/synth_n${SPARK_ROWS}_d64.parquet
  [ -f "$sdata" ] || "$nsl" generate-embeddings --n "$SPARK_ROWS" --dim 64 --seed 1 --output "$sdata"
  rm -rf "$out/spark_graph"
  splits=${CLI_LSH:-10x18}
  echo "## spark build_graph.py ${SPARK_ROWS} x 64 LSH ${CLI_LSH:-10x18}, local[2]"
  PATH="$PWD/target/release:$PATH" python3 scripts/spark/build_graph.py --master 'local[2]' --input "$sdata" \
    --output "$out/spark_graph" --threshold 0.9 --lsh-splits "${splits%x*}" --lsh-rounds "${splits#*x}" 2>/dev/null
fi
