#!/usr/bin/env bash
# Benchmark of `nsl build-graph` (issue 3); figures go to docs/benchmarks.md, "Graph building".
#
#   scripts/bench_build_graph.sh [CASE ...]
#
# Cases (default: all): gemm mnist synth100k-exact synth100k-lsh synth1m, run by the bench target
# benches/build_graph.rs (release profile), each in its own process under /usr/bin/time -v so its
# peak RSS is its own; then, if target/release/nsl has the commands, the CLI end to end on the
# 1,000,000 x 64 data (generate-embeddings + build-graph, Parquet in and out).
# Environment: OUT (results directory, default target/bench_build_graph), LSH_100K / LSH_1M
# (LSH settings, e.g. "7x11,8x10"), CLI_LSH (the CLI run's SPLITSxROUNDS, default 10x18),
# SPARK_ROWS (also run scripts/spark/build_graph.py in local[2] on that many rows), RAYON_NUM_THREADS.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-target/bench_build_graph}
mkdir -p "$out"
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (apt-get install -y time)" >&2; exit 1; }

echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)," \
  "$(free -g | awk '/Mem:/{print $2}') GiB, load $(cut -d' ' -f1-3 /proc/loadavg)" | tee "$out/machine.txt"

bin=$(CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1} cargo bench --bench build_graph --no-run --message-format=json 2>/dev/null |
  sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | grep '/build_graph-' | tail -1)
[ -x "$bin" ] || { echo "could not build the bench target" >&2; exit 1; }

peak() { sed -n 's/.*Maximum resident set size (kbytes): \([0-9]*\).*/\1/p' "$1" | awk '{printf "%.0f MiB", $1/1024}'; }

cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=(gemm mnist synth100k-exact synth100k-lsh synth1m)
for c in "${cases[@]}"; do
  /usr/bin/time -v "$bin" "$c" >"$out/$c.jsonl" 2>"$out/$c.err"
  echo "## $c  (peak RSS $(peak "$out/$c.err"), wall $(sed -n 's/.*Elapsed (wall clock) time.*: //p' "$out/$c.err"))"
  cat "$out/$c.jsonl"
done

# The CLI end to end, when it is wired (cargo build --release builds target/release/nsl).
nsl=target/release/nsl
if [ -x "$nsl" ] && "$nsl" build-graph --help >/dev/null 2>&1; then
  data=$out/synth_n1000000_d64.parquet
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

# The Spark job on the same settings (SPARK_ROWS rows, local[2]), when PySpark and java are there.
if [ -n "${SPARK_ROWS:-}" ] && [ -x "$nsl" ] && python3 -c 'import pyspark' 2>/dev/null && command -v java >/dev/null; then
  sdata=$out/synth_n${SPARK_ROWS}_d64.parquet
  [ -f "$sdata" ] || "$nsl" generate-embeddings --n "$SPARK_ROWS" --dim 64 --seed 1 --output "$sdata"
  rm -rf "$out/spark_graph"
  splits=${CLI_LSH:-10x18}
  echo "## spark build_graph.py ${SPARK_ROWS} x 64 LSH ${CLI_LSH:-10x18}, local[2]"
  PATH="$PWD/target/release:$PATH" python3 scripts/spark/build_graph.py --master 'local[2]' --input "$sdata" \
    --output "$out/spark_graph" --threshold 0.9 --lsh-splits "${splits%x*}" --lsh-rounds "${splits#*x}" 2>/dev/null
fi
