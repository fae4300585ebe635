#!/usr/bin/env bash
# Cora's words as token lists (issue 12): the `bow` model on `nsl convert --tokens` (each paper's word
# indices, a list<int64> column) against the dense MLP on the 1,433 word flags, side by side in one run:
# accuracy (mean over seeds) and steady epoch time, without and with graph regularization. NSL's tutorial
# set-up (the split and settings of scripts/bench_cora.sh): 80/20 split (Python random.seed(1)), dropout 0.5,
# 100 epochs, batch 128, Adam, `--threads 1`, test papers as unlabeled neighbors. Writes the "bow" section of
# docs/benchmarks.md.
#
#   scripts/bench_bow.sh [SEEDS=3] [BOW=bow:50] [GRAPH_REG=multiplier=0.1,neighbors=1,distance=l2]
#
# The figures in docs (settings chosen on validation data, see docs/guide.md):
#   BOW_TRAIN="--dropout 0.5 --epochs 100" BOW_GRAPH=bow:50,50,combiner=sqrtn,bag-activation=relu \
#     BOW_GRAPH_TRAIN="--dropout 0.25 --epochs 60" scripts/bench_bow.sh 10 bow:50,50,combiner=sum,bag-activation=relu
#
# BOW_TRAIN (default "--dropout 0.5 --epochs 100", the dense model's) sets the `bow` model's dropout and
# epochs, e.g. BOW_TRAIN="--dropout 0.3 --epochs 60": each model with its own settings. BOW_GRAPH and
# BOW_GRAPH_TRAIN (default BOW and BOW_TRAIN) give the graph-regularized runs their own `bow` model and
# settings, when each condition's settings were chosen on its own.
#
# BOW_VALIDATE=1 measures on validation data instead, to choose settings without the test papers: the
# training papers are split 90/10 (`nsl split --method shuffle --seed 2 --train 0.9`), the models train on
# the 90 % and are scored on the 10 %, with the other papers (validation and test) as unlabeled neighbors.
# Prints the table and leaves docs/benchmarks.md alone (needs Python's pyarrow for the id table).
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=${1:-3}
bow=${2:-bow:50}
reg=${3:-multiplier=0.1,neighbors=1,distance=l2}
cargo build --release -q
nsl=${CARGO_TARGET_DIR:-target}/release/nsl
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
content=datasets/cora/cora.content.gz
cites=datasets/cora/cora.cites.gz
$nsl convert --content $content --cites $cites --samples "$work/dense.parquet" --graph "$work/graph.parquet" >/dev/null
$nsl convert --content $content --tokens --samples "$work/tokens.parquet" >/dev/null
for kind in dense tokens; do
  $nsl split "$work/$kind.parquet" --method nsl --seed 1 --train 0.8 \
    --out-train "$work/$kind-train.parquet" --out-test "$work/$kind-test.parquet" >/dev/null
done
validate=${BOW_VALIDATE:-0}
if [ "$validate" = 1 ]; then
  # Train on 90 % of the training papers, score the other 10 %; every other paper is a neighbor.
  for kind in dense tokens; do
    $nsl split "$work/$kind-train.parquet" --method shuffle --seed 2 --train 0.9 \
      --out-train "$work/$kind-fit.parquet" --out-test "$work/$kind-val.parquet" >/dev/null
  done
  python3 - "$work" <<'PY'
import sys, pyarrow.parquet as pq
work = sys.argv[1]
fit = set(pq.read_table(f"{work}/dense-fit.parquet").column("id").to_pylist())
with open(f"{work}/fit.tsv", "w") as f:
    for i in pq.read_table(f"{work}/dense.parquet").column("id").to_pylist():
        f.write(f"{i}\t{'train' if i in fit else 'test'}\n")
PY
  for kind in dense tokens; do
    $nsl split "$work/$kind.parquet" --split-table "$work/fit.tsv" \
      --out-train "$work/$kind-unused.parquet" --out-test "$work/$kind-pool.parquet" >/dev/null
    mv "$work/$kind-fit.parquet" "$work/$kind-train.parquet"
    mv "$work/$kind-val.parquet" "$work/$kind-test.parquet"
  done
fi

bow_train=${BOW_TRAIN:---dropout 0.5 --epochs 100}
bow_graph=${BOW_GRAPH:-$bow}
bow_graph_train=${BOW_GRAPH_TRAIN:-$bow_train}
rows=""
for seed in $(seq 0 $((seeds - 1))); do
  for reg_kind in base graph; do
    for kind in dense tokens; do
      model=mlp:50,50
      train=(--dropout 0.5 --epochs 100)
      if [ "$kind" = tokens ] && [ "$reg_kind" = base ]; then
        model=$bow
        read -r -a train <<<"$bow_train"
      elif [ "$kind" = tokens ]; then
        model=$bow_graph
        read -r -a train <<<"$bow_graph_train"
      fi
      extra=()
      [ "$reg_kind" = graph ] && extra=(--graph "$work/graph.parquet" --graph-reg "$reg")
      pool="$work/$kind-test.parquet"
      [ "$validate" = 1 ] && pool="$work/$kind-pool.parquet"
      $nsl train --samples "$work/$kind-train.parquet" --pool "$pool" \
        --test "$work/$kind-test.parquet" --model "$model" "${train[@]}" --batch-size 128 \
        --threads 1 --seed "$seed" --json "${extra[@]}" --out "$work/run-$kind-$reg_kind-$seed" > "$work/out.json"
      line=$(python3 -c "import json; s=json.load(open('$work/out.json')); print(f\"{s['test_accuracy']:.4f} {s['steady_epoch_seconds']:.5f}\")")
      rows+="$seed $reg_kind $kind $line"$'\n'
      echo "seed $seed $reg_kind $model: $line" >&2
    done
  done
done

report() { if [ "$validate" = 1 ]; then cat; else scripts/bench_section.py bow; fi; }
python3 - "$seeds" "$reg" "$rows" "$validate" "$bow" "$bow_train" "$bow_graph" "$bow_graph_train" \
  "${BOW_TRAIN:-}" "${BOW_GRAPH:-}" "${BOW_GRAPH_TRAIN:-}" <<'PY' | report
import datetime, subprocess, sys, statistics as st
seeds, reg, rows = int(sys.argv[1]), sys.argv[2], [r.split() for r in sys.argv[3].strip().splitlines()]
validate = sys.argv[4] == "1"
models = {"base": (sys.argv[5], sys.argv[6]), "graph": (sys.argv[7], sys.argv[8])}
env_bow_train, env_bow_graph, env_bow_graph_train = sys.argv[9:12]
def pick(reg_kind, kind, col):
    return [float(r[col]) for r in rows if r[1] == reg_kind and r[2] == kind]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
cores = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
env = " ".join(f"{k}='{v}'" for k, v in (("BOW_TRAIN", env_bow_train), ("BOW_GRAPH", env_bow_graph),
                                         ("BOW_GRAPH_TRAIN", env_bow_graph_train)) if v)
print("## Cora's words as token lists: `bow` against the dense MLP (issue 12)"
      + (" — VALIDATION (90/10 of the training papers)" if validate else "") + "\n")
print(f"`{env + ' ' if env else ''}{'BOW_VALIDATE=1 ' if validate else ''}scripts/bench_bow.sh {seeds} {models['base'][0]} {reg}` — "
      f"{datetime.date.today()}, {cpu}, {cores} cores, release build, `--threads 1`, both models in the same run, alternating.\n")
print("NSL's tutorial split and settings (80/20, Python `random.seed(1)`, batch 128, Adam; graph regularization "
      f"`{reg}`, test papers as unlabeled neighbors). Dense: `mlp:50,50`, dropout 0.5, 100 epochs (NSL's), on the 1,433 "
      "word flags. Tokens: `bow` on `nsl convert --tokens` (each paper's word indices as a `list<int64>`, 18 words on "
      "average, at most 30). Accuracy: mean over the seeds (± population standard deviation); epoch: median steady "
      "epoch.\n")
print("| | dense `mlp:50,50` | tokens `bow` | bow − mlp |")
print("|---|---|---|---|")
for reg_kind, label in (("base", "no graph"), ("graph", "graph-regularized")):
    model, train = models[reg_kind]
    a_d, a_t = pick(reg_kind, "dense", 3), pick(reg_kind, "tokens", 3)
    e_d, e_t = st.median(pick(reg_kind, "dense", 4)), st.median(pick(reg_kind, "tokens", 4))
    sd = lambda a: st.pstdev(a) * 100 if len(a) > 1 else 0.0
    print(f"| **{label}**: model | `mlp:50,50` | `{model}`, `{train}` | |")
    print(f"| accuracy | {st.mean(a_d)*100:.2f} ± {sd(a_d):.2f} % | {st.mean(a_t)*100:.2f} ± {sd(a_t):.2f} % | "
          f"{(st.mean(a_t)-st.mean(a_d))*100:+.2f} points |")
    print(f"| seeds where bow ≥ mlp | | {sum(t >= d for t, d in zip(a_t, a_d))} of {len(a_t)} | |")
    print(f"| steady epoch | {e_d*1000:.2f} ms | {e_t*1000:.2f} ms | {e_t/e_d:.2f}× |")
print("\nPer seed (accuracy, no graph / graph):\n")
print("| seed | dense | tokens |")
print("|---|---|---|")
for s in range(seeds):
    cell = lambda kind: " / ".join(f"{float(r[3])*100:.2f} %" for rk in ("base", "graph") for r in rows
                                   if r[0] == str(s) and r[1] == rk and r[2] == kind)
    print(f"| {s} | {cell('dense')} | {cell('tokens')} |")
PY
