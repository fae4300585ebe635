#!/usr/bin/env bash
# Few labels on Planetoid Cora (issue 11), every recipe side by side in one run, NSL included.
#
#   scripts/few_labels_compare.sh [SEEDS=5]
#
# Converts Cora, splits it by datasets/cora/cora.planetoid_split.tsv (140 train, 500 validation,
# 1,000 test; every non-train paper unlabeled), and trains, for seeds 0 … SEEDS-1, on the 140 labeled
# papers (test accuracy on the 1,000 test papers; inference on the words alone unless stated):
#
#   plain        MLP [50, 50], dropout 0.5, 100 epochs, batch 128 (NSL's tutorial model)
#   nsl_recipe   the same + NSL's tutorial graph regularization (pool = non-train papers)
#   kl_unlabeled examples/recipes/few_labels_kl.toml (unlabeled centers, KL on softmax)
#   few_labels   examples/recipes/few_labels.toml (Graph-MLP's training: unlabeled centers, in-batch
#                two-hop positives, the contrastive distance on the last hidden layer)
#   sgc3_mlp     `nsl graph propagate` SGC K=3 row-normalized features + MLP [64] (uses the graph at
#                inference; settings as chosen on validation by scripts/planetoid_propagate.sh)
#
# and, when a Python with TensorFlow and neural_structured_learning is given (NSL_PYTHON, e.g. the
# venv of ../shared/baselines/setup.sh; default /tmp/tfvenv/bin/python if it exists), NSL 1.4's own
# tutorial model and recipe on the same split (../shared/baselines/nsl_cora_graphreg.py --split planetoid).
#
# Prints one row per recipe: accuracies, mean ± sample sd, steady epoch seconds (seed 0) and the peak
# RSS of seed 0's run (/usr/bin/time). Environment: NSL (binary; default target/release/nsl),
# OUT (work directory; default a new temporary one), THREADS (default 1). Needs jq.
set -euo pipefail

SEEDS=${1:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
NSL=${NSL:-$ROOT/target/release/nsl}
OUT=${OUT:-$(mktemp -d -t few_labels.XXXXXX)}
THREADS=${THREADS:-1}
BASELINES=${BASELINES:-$ROOT/../shared/baselines}
if [[ -z ${NSL_PYTHON:-} && -x /tmp/tfvenv/bin/python ]]; then NSL_PYTHON=/tmp/tfvenv/bin/python; fi

[[ -x $NSL ]] || (cd "$ROOT" && cargo build --release --quiet)
mkdir -p "$OUT"
echo "work directory: $OUT; $(date -u '+%Y-%m-%d %H:%M UTC'); $(lscpu | sed -n 's/^Model name: *//p')" >&2

"$NSL" convert --content "$ROOT/datasets/cora/cora.content.gz" --cites "$ROOT/datasets/cora/cora.cites.gz" \
    --samples "$OUT/cora.parquet" --graph "$OUT/g.parquet" >/dev/null
"$NSL" split "$OUT/cora.parquet" --split-table "$ROOT/datasets/cora/cora.planetoid_split.tsv" \
    --out-train "$OUT/tr.parquet" --out-validation "$OUT/va.parquet" --out-test "$OUT/te.parquet" \
    --out-unlabeled "$OUT/un.parquet" >/dev/null
"$NSL" graph propagate "$OUT/g.parquet" --samples "$OUT/cora.parquet" --hops 3 --row-normalize \
    --output "$OUT/sgc3.parquet" >/dev/null
"$NSL" split "$OUT/sgc3.parquet" --split-table "$ROOT/datasets/cora/cora.planetoid_split.tsv" \
    --out-train "$OUT/sgc3_tr.parquet" --out-test "$OUT/sgc3_te.parquet" >/dev/null

MLP="--model mlp:50,50 --dropout 0.5 --epochs 100 --batch-size 128"
# name|flags (data paths included)
RECIPES=(
    "plain|--samples $OUT/tr.parquet $MLP"
    "nsl_recipe|--samples $OUT/tr.parquet $MLP --pool $OUT/un.parquet --graph $OUT/g.parquet --graph-reg multiplier=0.1,neighbors=1"
    "kl_unlabeled|--config $ROOT/examples/recipes/few_labels_kl.toml --samples $OUT/tr.parquet --unlabeled $OUT/un.parquet --graph $OUT/g.parquet"
    "few_labels|--config $ROOT/examples/recipes/few_labels.toml --samples $OUT/tr.parquet --unlabeled $OUT/un.parquet --graph $OUT/g.parquet"
    "sgc3_mlp|--samples $OUT/sgc3_tr.parquet --model mlp:64 --dropout 0.8 --learning-rate 0.01 --epochs 100 --batch-size 140"
)

stats() { # accuracies (percent) on stdin -> "a, b, c (mean ± sd)"
    awk '{v[NR]=$1; s+=$1} END {m=s/NR; for(i=1;i<=NR;i++){d+=(v[i]-m)^2; out=out (i>1?", ":"") v[i]}
         sd=(NR>1)?sqrt(d/(NR-1)):0; printf "%s (%.1f ± %.1f)", out, m, sd}'
}

printf '| recipe | test accuracy, seeds 0–%d (mean ± sd) | steady epoch s | peak RSS MB |\n|---|---|---|---|\n' $((SEEDS - 1))
if [[ -n ${NSL_PYTHON:-} ]] && "$NSL_PYTHON" -c 'import neural_structured_learning' 2>/dev/null; then
    seeds=$(seq 0 $((SEEDS - 1)) | tr '\n' ' ')
    # shellcheck disable=SC2086 # the seeds are words
    summary=$(cd "$BASELINES" && "$NSL_PYTHON" nsl_cora_graphreg.py --split planetoid --seeds $seeds 2>/dev/null | tail -1)
    for key in base graph_reg; do
        accs=$(jq -r ".${key}_acc.all[] * 100 | . * 10 | round / 10" <<<"$summary" | stats)
        epoch=$(jq -r ".${key}_steady_epoch_s" <<<"$summary")
        printf '| NSL 1.4 %s | %s | %s | %s (whole script) |\n' "$key" "$accs" "$epoch" "$(jq -r .peak_rss_mb <<<"$summary")"
    done
else
    echo "| NSL 1.4 | not run: set NSL_PYTHON to a Python with neural_structured_learning | | |"
fi
for entry in "${RECIPES[@]}"; do
    name=${entry%%|*}
    flags=${entry#*|}
    : >"$OUT/$name.acc"
    for seed in $(seq 0 $((SEEDS - 1))); do
        # shellcheck disable=SC2086 # the flags are words
        /usr/bin/time -f %M -o "$OUT/$name.$seed.rss" "$NSL" train $flags --test "$OUT/$( [[ $name == sgc3_mlp ]] && echo sgc3_te || echo te).parquet" \
            --threads "$THREADS" --seed "$seed" --out "$OUT/run-$name-$seed" --json >"$OUT/$name.$seed.json"
        jq -r '.test_accuracy * 1000 | round / 10' "$OUT/$name.$seed.json" >>"$OUT/$name.acc"
    done
    epoch=$(jq -r '.steady_epoch_seconds | . * 10000 | round / 10000' "$OUT/$name.0.json")
    rss=$(( $(cat "$OUT/$name.0.rss") / 1024 ))
    printf '| %s | %s | %s | %s |\n' "$name" "$(stats <"$OUT/$name.acc")" "$epoch" "$rss"
done
