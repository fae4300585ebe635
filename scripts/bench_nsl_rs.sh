#!/usr/bin/env bash
# issue 14: `nsl_rs.build_graph` from numpy, the CLI's build phase and NSL's own build_graph on the same
# MNIST-10k embeddings (pixels/255), exact, threshold 0.9, in one run. Needs the release nsl
# (`cargo build --release`), the installed package (`pip install ./python`) and, for NSL's side, NSL's
# Python environment (../shared/baselines/setup.sh → /tmp/tfvenv, or TFVENV); NSL is skipped without it.
#
#   scripts/bench_nsl_rs.sh [THRESHOLD=0.9]
set -euo pipefail
cd "$(dirname "$0")/.."
threshold=${1:-0.9}
nsl=target/release/nsl
venv=${TFVENV:-/tmp/tfvenv}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
images=datasets/mnist/train-images-idx3-ubyte.gz
$nsl convert --idx-images "$images" --samples "$work/mnist.parquet" >/dev/null
$nsl convert --idx-images "$images" --samples "$work/mnist.tfr" >/dev/null

python3 - "$work/mnist.parquet" "$threshold" <<'PY'
import sys, time
import numpy as np, pyarrow.parquet as pq, nsl_rs
table = pq.read_table(sys.argv[1])
x = np.ascontiguousarray(np.stack(table.column("features").to_numpy(zero_copy_only=False)).astype(np.float32))
ids = [str(i) for i in table.column("id").to_pylist()]
best = None
for _ in range(3):
    t = time.perf_counter(); g = nsl_rs.build_graph(x, ids=ids, threshold=float(sys.argv[2])); dt = time.perf_counter() - t
    best = dt if best is None else min(best, dt)
print(f"nsl_rs.build_graph (numpy in, pyarrow.Table out): {g.num_rows} directed edges, best of 3 {best:.3f} s")
PY

best=""
for _ in 1 2 3; do
  s=$($nsl build-graph --input "$work/mnist.parquet" --embedding-column features --threshold "$threshold" \
        --output "$work/g.parquet" --json 2>/dev/null | python3 -c "import json,sys; print(json.load(sys.stdin)['build']['seconds'])")
  best=$(python3 -c "print(min(x for x in [$s${best:+, $best}]))")
done
edges=$($nsl build-graph --input "$work/mnist.parquet" --embedding-column features --threshold "$threshold" \
          --output "$work/g.parquet" --json 2>/dev/null | python3 -c "import json,sys; print(json.load(sys.stdin)['build']['directed_edges'])")
echo "nsl build-graph (CLI), build phase: $edges directed edges, best of 3 $best s"

if [ -x "$venv/bin/python" ]; then
  start=$(date +%s.%N)
  TF_CPP_MIN_LOG_LEVEL=3 "$venv/bin/python" -m neural_structured_learning.tools.build_graph \
    --similarity_threshold "$threshold" --embedding_feature_name words --id_feature_name id \
    "$work/mnist.tfr" "$work/nsl.tsv" >/dev/null 2>&1
  end=$(date +%s.%N)
  echo "NSL build_graph (TFRecord in, TSV out), end to end: $(wc -l < "$work/nsl.tsv") directed edges, $(python3 -c "print(round($end - $start, 1))") s"
else
  echo "NSL build_graph: skipped ($venv/bin/python not found; ../shared/baselines/setup.sh makes it)"
fi
