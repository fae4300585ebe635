#!/usr/bin/env bash
# Cora graph regularization against NSL's tutorial figures (issue 4): accuracy (mean of 3 seeds),
# steady epoch time and peak memory, with NSL's set-up: 80/20 split (Python random.seed(1)), MLP [50,50],
# dropout 0.5, 100 epochs, batch 128, Adam, multiplier 0.1, 1 neighbor, L2 (sum over the last axis),
# test papers as unlabeled neighbors. Writes the "cora" section of docs/benchmarks.md.
#
# If NSL's Python environment exists (../shared/baselines/setup.sh; TFVENV, default /tmp/tfvenv), NSL's
# own script runs the same seeds right after ours (NSL's defaults: multiplier 0.1, 1 neighbor, L2), so the
# epoch times are also compared on the same machine in the same run.
#
#   scripts/bench_cora.sh [SEEDS=3] [GRAPH_REG=multiplier=0.1,neighbors=1,distance=l2]
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=${1:-3}
reg=${2:-multiplier=0.1,neighbors=1,distance=l2}
cargo build --release -q
nsl=target/release/nsl
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
$nsl convert --content datasets/cora/cora.content.gz --cites datasets/cora/cora.cites.gz \
  --samples "$work/cora.parquet" --graph "$work/graph.parquet" >/dev/null
$nsl split "$work/cora.parquet" --method nsl --seed 1 --train 0.8 \
  --out-train "$work/train.parquet" --out-test "$work/test.parquet" >/dev/null

common=(--samples "$work/train.parquet" --pool "$work/test.parquet" --model mlp:50,50 --dropout 0.5
        --epochs 100 --batch-size 128 --threads 1 --test "$work/test.parquet" --json)
rows=""
for seed in $(seq 0 $((seeds - 1))); do
  for kind in base graph; do
    extra=()
    [ "$kind" = graph ] && extra=(--graph "$work/graph.parquet" --graph-reg "$reg")
    /usr/bin/time -f "%M" -o "$work/rss" $nsl train "${common[@]}" "${extra[@]}" --seed "$seed" \
      --out "$work/run-$kind-$seed" > "$work/out.json"
    rss_kb=$(tail -n 1 "$work/rss")
    line=$(python3 -c "import json,sys; s=json.load(open('$work/out.json')); print(f\"{s['test_accuracy']:.4f} {s['steady_epoch_seconds']:.4f}\")")
    rows+="$seed $kind $line $rss_kb"$'\n'
    echo "seed $seed $kind: $line (peak RSS ${rss_kb} kB)" >&2
  done
done

baselines=${NSL_BASELINES:-../shared/baselines}
tfpy=${TFVENV:-/tmp/tfvenv}/bin/python
nsl_same_run="nan nan nan nan nan"
if [ -x "$tfpy" ] && [ -f "$baselines/nsl_cora_graphreg.py" ]; then
  echo "running NSL's script on the same seeds…" >&2
  "$tfpy" "$baselines/nsl_cora_graphreg.py" --split nsl --seeds $(seq 0 $((seeds - 1))) 2>/dev/null \
    | grep '"nsl_cora_graphreg_summary"' | tail -n 1 > "$work/nsl.json"
  nsl_same_run=$(python3 -c "import json; d=json.load(open('$work/nsl.json')); print(d['base_acc']['mean'], d['graph_reg_acc']['mean'], d['base_steady_epoch_s'], d['graph_reg_steady_epoch_s'], d['peak_rss_mb'])")
fi

python3 - "$seeds" "$reg" "$rows" "$nsl_same_run" <<'PY' | scripts/bench_section.py cora
import platform, subprocess, sys, datetime, statistics as st
seeds, reg, rows = int(sys.argv[1]), sys.argv[2], [r.split() for r in sys.argv[3].strip().splitlines()]
same = [float(x) for x in sys.argv[4].split()]
acc = {k: [float(r[2]) for r in rows if r[1] == k] for k in ("base", "graph")}
ep = {k: [float(r[3]) for r in rows if r[1] == k] for k in ("base", "graph")}
rss = {k: max(int(r[4]) for r in rows if r[1] == k) / 1024 for k in ("base", "graph")}
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
mem = round(int(open("/proc/meminfo").read().split()[1]) / 1048576)
print("## Cora: graph regularization (issue 4)\n")
print(f"`scripts/bench_cora.sh {seeds} {reg}` — {datetime.date.today()}, {cpu}, "
      f"{subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} cores, {mem} GiB, "
      "release build, `--threads 1`.\n")
print("NSL's tutorial set-up: 80/20 split (Python `random.seed(1)`, 2,155 / 553 papers), MLP [50, 50], dropout 0.5, "
      f"100 epochs, batch 128, Adam; graph regularization `{reg}` (sum over the last axis), test papers as "
      "unlabeled neighbors. NSL figures: `../shared/baselines/RESULTS.md` (TensorFlow 2.15, same machine type, "
      "mean of 3 seeds).\n")
print("| seed | base accuracy | graph-reg accuracy | gain |")
print("|---|---|---|---|")
for s in range(seeds):
    b, g = acc["base"][s], acc["graph"][s]
    print(f"| {s} | {b*100:.2f} % | {g*100:.2f} % | {(g-b)*100:+.2f} |")
mb, mg = st.mean(acc["base"]), st.mean(acc["graph"])
print(f"| **mean** | **{mb*100:.2f} %** | **{mg*100:.2f} %** | **{(mg-mb)*100:+.2f}** |\n")
print("| | nsl | NSL 1.4 (TF), RESULTS.md | NSL, this run | target |")
print("|---|---|---|---|---|")
print(f"| base accuracy (mean) | {mb*100:.2f} % | 74.2 % | {same[0]*100:.2f} % | 74.2 ± 1.5 % |")
print(f"| graph-reg accuracy (mean) | {mg*100:.2f} % | 77.0 % | {same[1]*100:.2f} % | ≥ 77.0 % |")
print(f"| steady epoch, base (median) | {st.median(ep['base']):.4f} s | 0.157 s | {same[2]:.4f} s | |")
print(f"| steady epoch, graph-reg (median) | {st.median(ep['graph']):.4f} s | 0.174 s | {same[3]:.4f} s | ≤ 0.03 s |")
print(f"| peak memory of a run (RSS) | {rss['graph']:.0f} MB | 792 MB | {same[4]:.0f} MB | ≤ 200 MB |")
print("\n\"NSL, this run\": `../shared/baselines/nsl_cora_graphreg.py --split nsl` on the same seeds, run right "
      "after ours (NSL's steady epoch is its own script's measure; `nan` when its Python environment is absent).")
PY
