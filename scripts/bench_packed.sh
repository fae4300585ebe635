#!/usr/bin/env bash
# Memory of `nsl train --packed DIR` (issue 13, item 2): a packed Parquet table streamed through a
# shuffle buffer holds the buffer, not the table. Figures go to docs/benchmarks.md ("Issue 13",
# "Training on packed parts").
#
#   scripts/bench_packed.sh
#
# Writes a synthetic packed table (ROWS x DIM features, K neighbors each, 10 classes, PARTS Parquet
# parts as scripts/spark/pack_nbrs.py writes them: list<float> features, part-*.parquet + _SUCCESS;
# needs python3 with numpy and pyarrow), then trains one epoch on it with each buffer of BUFFERS
# under /usr/bin/time -v and prints the peak RSS next to the table's size in memory
# (ROWS x (1 + K) x DIM float32s), which in-memory training would need at the least.
# Environment: OUT (default target/bench_packed), ROWS (default 1000000), DIM (64), K (5),
# PARTS (8), BUFFERS (default "10000 100000"), EPOCHS (1), THREADS (1), SMALL_ROWS (default
# 250000: the same run on a table of that many rows, to show the peak does not follow the table;
# 0 skips it).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-target/bench_packed}
rows=${ROWS:-1000000}
dim=${DIM:-64}
k=${K:-5}
parts=${PARTS:-8}
buffers=${BUFFERS:-"10000 100000"}
epochs=${EPOCHS:-1}
threads=${THREADS:-1}
small=${SMALL_ROWS:-250000}
mkdir -p "$out"
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (apt-get install -y time)" >&2; exit 1; }

cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)
echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(nproc) cores, $cpu, $(free -g | awk '/Mem:/{print $2}') GiB," \
  "load $(cut -d' ' -f1-3 /proc/loadavg)" | tee "$out/machine.txt"

cargo build --release --quiet
nsl=target/release/nsl

# A packed table of $1 rows in directory $2 (skipped when it exists with that many rows).
make_table() {
  python3 - "$1" "$dim" "$k" "$parts" "$2" <<'EOF'
import os, sys
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
rows, dim, k, parts, out = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
stamp = os.path.join(out, "_SUCCESS")
if os.path.exists(stamp) and open(stamp).read() == str(rows):
    sys.exit(0)
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(1)
per = -(-rows // parts)
def floats(n):
    return pa.FixedSizeListArray.from_arrays(pa.array(rng.standard_normal(n * dim, dtype=np.float32)), dim)
for p in range(parts):
    start, n = p * per, min(per, rows - p * per)
    ids = np.arange(start, start + n)
    cols = {"id": pa.array([f"s{i}" for i in ids]), "features": floats(n),
            "label": pa.array(rng.integers(0, 10, n), pa.int64()),
            "NL_num_nbrs": pa.array(rng.integers(0, k + 1, n), pa.int64())}
    for j in range(k):
        cols[f"NL_nbr_{j}_id"] = pa.array([f"s{(i * 7 + j + 1) % rows}" for i in ids])
        cols[f"NL_nbr_{j}_features"] = floats(n)
        cols[f"NL_nbr_{j}_weight"] = pa.array(rng.random(n, dtype=np.float32))
    pq.write_table(pa.table(cols), os.path.join(out, f"part-{p:05d}.parquet"), row_group_size=65536)
open(stamp, "w").write(str(rows))
EOF
}

peak() { sed -n 's/.*Maximum resident set size (kbytes): \([0-9]*\).*/\1/p' "$1" | awk '{printf "%.0f", $1/1024}'; }
wall() { sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): \(.*\)/\1/p' "$1"; }

run() { # rows dir buffer
  local log="$out/train_$1_$3.time"
  /usr/bin/time -v "$nsl" train --packed "$2" --graph-reg multiplier=0.1,neighbors="$k" --model mlp:32 \
    --epochs "$epochs" --batch-size 256 --threads "$threads" --shuffle-buffer "$3" --checkpoint-every 0 \
    --out "$out/run_$1_$3" >"$out/train_$1_$3.log" 2>"$log"
  local table=$(($1 * (1 + k) * dim * 4 / 1048576))
  printf '%9s rows  buffer %7s: peak RSS %5s MiB, %s wall for %s epoch(s); table in memory %s MiB, on disk %s\n' \
    "$1" "$3" "$(peak "$log")" "$(wall "$log")" "$epochs" "$table" "$(du -sh "$2" | cut -f1)"
}

t=$(date +%s)
make_table "$rows" "$out/packed_$rows"
echo "# wrote/kept $out/packed_$rows in $(($(date +%s) - t)) s"
for b in $buffers; do run "$rows" "$out/packed_$rows" "$b"; done
if [ "$small" -gt 0 ]; then
  make_table "$small" "$out/packed_$small"
  run "$small" "$out/packed_$small" "$(echo "$buffers" | awk '{print $1}')"
fi
