#!/usr/bin/env bash
# `nsl tune` on few labels (issue 26): tune the few-labels recipe on the validation split alone with a
# wall-clock budget, then compare the tuned recipe with today's fixed one on the test split over SEEDS seeds.
#
#   scripts/tune_few_labels.sh [cora|citeseer|digits|both|all] [BUDGET=10m] [SEEDS=10]
#
# cora:   Planetoid Cora (140 labeled papers, 500 validation, 1,000 test; every non-train paper
#         unlabeled), the citation graph, examples/recipes/few_labels.toml as the base recipe.
# citeseer: Planetoid Citeseer (120 labeled, 500 validation, 1,000 test; datasets/citeseer), the same
#         base recipe (set on Cora: a graph it was never tuned on).
# digits: the 10,000 bundled MNIST test-set digits (datasets/mnist/t10k-*), a seeded draw of 100 labeled,
#         500 validation and 1,000 test digits, every other digit unlabeled; a 10-nearest-neighbor graph
#         of the pixels from `nsl build-graph --threshold -1 --top-k 10` (a graph nsl was never tuned on).
#
# For each: `nsl tune --budget BUDGET --seed 0` with the built-in space (trials.parquet, trials.svg,
# tuned.toml in the work directory), then `nsl train` with the fixed recipe (as documented: no
# validation, 400 epochs) and with the tuned one (its early stopping on the validation split) for seeds
# 0 … SEEDS-1, test accuracy mean ± sample sd, steady epoch seconds and peak RSS of seed 0's run.
# Environment: NSL (binary; default target/release/nsl), OUT (work directory; default a new temporary
# one). Needs jq and /usr/bin/time.
set -euo pipefail

WHICH=${1:-both}
BUDGET=${2:-10m}
SEEDS=${3:-10}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
NSL=${NSL:-$ROOT/target/release/nsl}
OUT=${OUT:-$(mktemp -d -t tune_few_labels.XXXXXX)}
RECIPE=$ROOT/examples/recipes/few_labels.toml

[[ -x $NSL ]] || (cd "$ROOT" && cargo build --release --quiet)
mkdir -p "$OUT"
echo "work directory: $OUT; $(date -u '+%Y-%m-%d %H:%M UTC'); $(lscpu | sed -n 's/^Model name: *//p')" >&2

stats() { # accuracies (percent) on stdin -> "a, b, c (mean ± sd)"
    awk '{v[NR]=$1; s+=$1} END {m=s/NR; for(i=1;i<=NR;i++){d+=(v[i]-m)^2; out=out (i>1?", ":"") v[i]}
         sd=(NR>1)?sqrt(d/(NR-1)):0; printf "%s (%.1f ± %.1f)", out, m, sd}'
}

prepare_planetoid() { # name -> $OUT/name/{tr,va,te,un,g}.parquet
    local d=$OUT/$1 data=$ROOT/datasets/$1
    mkdir -p "$d"
    "$NSL" convert --content "$data/$1.content.gz" --cites "$data/$1.cites.gz" \
        --samples "$d/all.parquet" --graph "$d/g.parquet" >/dev/null
    "$NSL" split "$d/all.parquet" --split-table "$data/$1.planetoid_split.tsv" \
        --out-train "$d/tr.parquet" --out-validation "$d/va.parquet" --out-test "$d/te.parquet" \
        --out-unlabeled "$d/un.parquet" >/dev/null
}
prepare_cora() { prepare_planetoid cora; }
prepare_citeseer() { prepare_planetoid citeseer; }

prepare_digits() { # -> $OUT/digits/{tr,va,te,un,g}.parquet
    local d=$OUT/digits
    mkdir -p "$d"
    "$NSL" convert --idx-images "$ROOT/datasets/mnist/t10k-images-idx3-ubyte.gz" \
        --idx-labels "$ROOT/datasets/mnist/t10k-labels-idx1-ubyte.gz" --samples "$d/all.parquet" >/dev/null
    # A seeded draw of the parts (the ids are the row numbers 0 … 9999).
    python3 - "$d/split.tsv" <<'PY'
import random, sys
ids = list(range(10000))
random.Random(26).shuffle(ids)
parts = [("train", 100), ("validation", 500), ("test", 1000)]
with open(sys.argv[1], "w") as f:
    at = 0
    for name, n in parts:
        for i in ids[at:at + n]:
            f.write(f"{i}\t{name}\n")
        at += n
PY
    "$NSL" split "$d/all.parquet" --split-table "$d/split.tsv" --out-train "$d/tr.parquet" \
        --out-validation "$d/va.parquet" --out-test "$d/te.parquet" --out-unlabeled "$d/un.parquet" >/dev/null
    "$NSL" build-graph --input "$d/all.parquet" --output "$d/g.parquet" --threshold -1 --top-k 10 >/dev/null
}

evaluate() { # name recipe extra-flags… : one table row
    local d=$1 name=$2 recipe=$3
    shift 3
    : >"$d/$name.acc"
    for seed in $(seq 0 $((SEEDS - 1))); do
        /usr/bin/time -f %M -o "$d/$name.$seed.rss" "$NSL" train --config "$recipe" --samples "$d/tr.parquet" \
            --unlabeled "$d/un.parquet" --graph "$d/g.parquet" --test "$d/te.parquet" "$@" --seed "$seed" \
            --out "$d/run-$name-$seed" --json >"$d/$name.$seed.json" 2>/dev/null
        jq -r '.test_accuracy * 1000 | round / 10' "$d/$name.$seed.json" >>"$d/$name.acc"
    done
    local epoch rss epochs
    epoch=$(jq -r '.steady_epoch_seconds | . * 10000 | round / 10000' "$d/$name.0.json")
    epochs=$(for s in $(seq 0 $((SEEDS - 1))); do jq -r '.best_epoch // .epochs' "$d/$name.$s.json"; done | tr '\n' ' ')
    rss=$(($(cat "$d/$name.0.rss") / 1024))
    printf '| %s | %s | %s | %s | %s |\n' "$name" "$(stats <"$d/$name.acc")" "$epoch" "$rss" "$epochs"
}

run_one() { # cora | citeseer | digits
    local d=$OUT/$1 base=(--config "$RECIPE") fixed=("$RECIPE")
    "prepare_$1"
    echo "[$1] nsl tune --budget $BUDGET; load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
    local started=$SECONDS
    /usr/bin/time -f %M -o "$d/tune.rss" "$NSL" tune "${base[@]}" --samples "$d/tr.parquet" --unlabeled "$d/un.parquet" \
        --graph "$d/g.parquet" --validation "$d/va.parquet" --budget "$BUDGET" --seed 0 \
        --out-recipe "$d/tuned.toml" --trials "$d/trials.parquet" --plot "$d/trials.svg" --json \
        >"$d/tune.json" 2>"$d/tune.log"
    echo "[$1] tuned in $((SECONDS - started)) s wall (load average $(cut -d' ' -f1-3 /proc/loadavg)), peak RSS $(($(cat "$d/tune.rss") / 1024)) MB:" \
        "$(grep -m1 '^plan:' "$d/tune.log")" >&2
    grep -m1 '^timed' "$d/tune.log" >&2 || true
    sed -n '/^# A training/,/^# Searched/p' "$d/tuned.toml" >&2
    grep -v '^#' "$d/tuned.toml" >&2
    printf '\n%s, test accuracy, seeds 0–%d:\n\n' "$1" $((SEEDS - 1))
    printf '| recipe | test accuracy (mean ± sd) | steady epoch s | peak RSS MB | epochs (best epoch) |\n|---|---|---|---|---|\n'
    evaluate "$d" fixed "${fixed[@]}"
    evaluate "$d" tuned "$d/tuned.toml" --validation "$d/va.parquet"
    echo "[$1] done; load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
}

case $WHICH in
    cora | citeseer | digits) run_one "$WHICH" ;;
    both) run_one cora; run_one digits ;;
    all) run_one citeseer; run_one cora; run_one digits ;;
    *) echo "usage: $0 [cora|citeseer|digits|both|all] [BUDGET] [SEEDS]" >&2; exit 2 ;;
esac
