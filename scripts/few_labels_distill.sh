#!/usr/bin/env bash
# Few labels on a Planetoid graph (issue 26): today's recipe beside the same recipe distilled from a
# graph-aware teacher (GLNN), both reading the words alone at inference.
#
#   scripts/few_labels_distill.sh DATASET [SEEDS=10]      # DATASET: cora or citeseer
#
# Converts datasets/DATASET/, splits it by DATASET.planetoid_split.tsv (train / validation / test;
# every non-train paper unlabeled), and builds the teacher: `nsl graph propagate` (SGC, K hops,
# row-normalized) → `nsl train` MLP [64] on the train papers (seed 0) → `nsl predict` on every paper
# (the teacher file). Then, for seeds 0 … SEEDS-1:
#
#   few_labels   examples/recipes/few_labels.toml (Graph-MLP's training)
#   distilled    the same + --distill teacher=…,multiplier=M (examples/recipes/few_labels_distill_DATASET.toml)
#
# Teacher settings and M were chosen on the validation papers (docs/guide.md, "Distillation from a
# graph-aware teacher"); they are the defaults below, per dataset. Prints the teacher's accuracies and
# one row per recipe: validation and test accuracy (mean ± sample sd), steady epoch seconds (seed 0)
# and the peak RSS of seed 0's run (/usr/bin/time). Environment: NSL (binary; default
# target/release/nsl), OUT (work directory; default a new temporary one), THREADS (default 1),
# TEACHER_HOPS, TEACHER_DROPOUT, TEACHER_WD, MULTIPLIER (override the dataset's). Needs jq.
set -euo pipefail

DATASET=${1:?usage: few_labels_distill.sh cora|citeseer [SEEDS]}
SEEDS=${2:-10}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
NSL=${NSL:-$ROOT/target/release/nsl}
OUT=${OUT:-$(mktemp -d -t few_labels_distill.XXXXXX)}
THREADS=${THREADS:-1}
case $DATASET in
    cora) hops=3 dropout=0.5 wd=0.0005 ;;
    citeseer) hops=2 dropout=0.8 wd=0.002 ;;
    *) echo "unknown dataset $DATASET (cora or citeseer)" >&2; exit 2 ;;
esac
HOPS=${TEACHER_HOPS:-$hops}
DROPOUT=${TEACHER_DROPOUT:-$dropout}
WD=${TEACHER_WD:-$wd}
RECIPE=$ROOT/examples/recipes/few_labels_distill_$DATASET.toml
MULTIPLIER=${MULTIPLIER:-$(sed -n 's/^distill = ".*multiplier=\([0-9.]*\).*"/\1/p' "$RECIPE")}
DATA=$ROOT/datasets/$DATASET
TABLE=$DATA/$DATASET.planetoid_split.tsv

[[ -x $NSL ]] || (cd "$ROOT" && cargo build --release --quiet)
mkdir -p "$OUT"
echo "work directory: $OUT; $(date -u '+%Y-%m-%d %H:%M UTC'); $(lscpu | sed -n 's/^Model name: *//p')" >&2

"$NSL" convert --content "$DATA/$DATASET.content.gz" --cites "$DATA/$DATASET.cites.gz" \
    --samples "$OUT/all.parquet" --graph "$OUT/g.parquet" >/dev/null
"$NSL" split "$OUT/all.parquet" --split-table "$TABLE" --out-train "$OUT/tr.parquet" \
    --out-validation "$OUT/va.parquet" --out-test "$OUT/te.parquet" --out-unlabeled "$OUT/un.parquet" >/dev/null
"$NSL" graph propagate "$OUT/g.parquet" --samples "$OUT/all.parquet" --hops "$HOPS" --row-normalize \
    --output "$OUT/sgc.parquet" >/dev/null
"$NSL" split "$OUT/sgc.parquet" --split-table "$TABLE" --out-train "$OUT/sgc_tr.parquet" \
    --out-validation "$OUT/sgc_va.parquet" --out-test "$OUT/sgc_te.parquet" >/dev/null
"$NSL" train --samples "$OUT/sgc_tr.parquet" --model mlp:64 --dropout "$DROPOUT" --learning-rate 0.01 \
    --weight-decay "$WD" --epochs 100 --batch-size 140 --validation "$OUT/sgc_va.parquet" --test "$OUT/sgc_te.parquet" \
    --threads "$THREADS" --seed 0 --out "$OUT/teacher" --json -q >"$OUT/teacher.json"
"$NSL" predict --run "$OUT/teacher" --samples "$OUT/sgc.parquet" --output "$OUT/teacher.csv" -q
printf 'teacher (SGC K=%s + MLP [64], dropout %s, weight decay %s, seed 0; the graph at inference): validation %s, test %s\n\n' \
    "$HOPS" "$DROPOUT" "$WD" "$(jq -r '.final_validation_metrics.accuracy * 1000 | round / 10' "$OUT/teacher.json")" \
    "$(jq -r '.test_accuracy * 1000 | round / 10' "$OUT/teacher.json")"

stats() { # accuracies (percent) on stdin -> "mean ± sd"
    awk '{v[NR]=$1; s+=$1} END {m=s/NR; for(i=1;i<=NR;i++) d+=(v[i]-m)^2; sd=(NR>1)?sqrt(d/(NR-1)):0;
         printf "%.1f ± %.1f", m, sd}'
}
DATA_FLAGS="--samples $OUT/tr.parquet --unlabeled $OUT/un.parquet --graph $OUT/g.parquet --validation $OUT/va.parquet --test $OUT/te.parquet"
RECIPES=(
    "few_labels|--config $ROOT/examples/recipes/few_labels.toml"
    "distilled (multiplier $MULTIPLIER)|--config $RECIPE --distill teacher=$OUT/teacher.csv,multiplier=$MULTIPLIER"
)
printf '| recipe | validation, seeds 0–%d | test, seeds 0–%d | test per seed | steady epoch s | peak RSS MB |\n|---|---|---|---|---|---|\n' \
    $((SEEDS - 1)) $((SEEDS - 1))
for entry in "${RECIPES[@]}"; do
    name=${entry%%|*}
    flags=${entry#*|}
    tag=${name%% *}
    : >"$OUT/$tag.val"
    : >"$OUT/$tag.test"
    for seed in $(seq 0 $((SEEDS - 1))); do
        # shellcheck disable=SC2086 # the flags are words
        /usr/bin/time -f %M -o "$OUT/$tag.$seed.rss" "$NSL" train $flags $DATA_FLAGS --threads "$THREADS" \
            --seed "$seed" --out "$OUT/run-$tag-$seed" --json -q >"$OUT/$tag.$seed.json"
        jq -r '.final_validation_metrics.accuracy * 1000 | round / 10' "$OUT/$tag.$seed.json" >>"$OUT/$tag.val"
        jq -r '.test_accuracy * 1000 | round / 10' "$OUT/$tag.$seed.json" >>"$OUT/$tag.test"
    done
    epoch=$(jq -r '.steady_epoch_seconds | . * 10000 | round / 10000' "$OUT/$tag.0.json")
    rss=$(($(cat "$OUT/$tag.0.rss") / 1024))
    printf '| %s | %s | %s | %s | %s | %s |\n' "$name" "$(stats <"$OUT/$tag.val")" "$(stats <"$OUT/$tag.test")" \
        "$(paste -sd, "$OUT/$tag.test" | sed 's/,/, /g')" "$epoch" "$rss"
done
