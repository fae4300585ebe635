#!/usr/bin/env bash
# Few labels on a Planetoid graph (issue 26): today's recipe beside the same recipe distilled from a
# graph-aware teacher (GLNN), both reading the words alone at inference.
#
#   scripts/few_labels_distill.sh DATASET [SEEDS=10]      # DATASET: cora, citeseer or a directory
#
# Converts datasets/DATASET/, splits it by DATASET.planetoid_split.tsv (train / validation / test;
# every non-train paper unlabeled), and builds the teacher. DATASET may also be a directory holding
# one graph in the LINQS files NAME.content.gz and NAME.cites.gz with a split table NAME.split.tsv
# (scripts/synthetic_citation.py writes one); its recipes and GRAND settings are Cora's unless
# TEACHER_RECIPE, RECIPE and GRAND_FLAGS name others.
#
# The teacher (TEACHER=grand, the default): GRAND (`nsl graph grand`, Feng et al. 2020: DropNode views,
# mixed-order propagation, consistency regularization) on the raw words and the graph, the official
# settings of the dataset (Cora's for a directory) with at most 1000 epochs, or GRAND_FLAGS; seeds 0 …
# TEACHER_SEEDS-1, the teacher file the mean of their probabilities (`--ensemble`). About 8–10 minutes
# per seed on one thread: 5 seeds take 45 minutes (TEACHER_SEEDS=1 is within a seed's spread of it,
# docs/guide.md, "A GRAND teacher").
#
# TEACHER=ppr: a teacher in a minute —
#   1. `nsl graph propagate --mode appnp` (personalized PageRank, K 10, α 0.1, rows L1-normalized)
#   2. `nsl train --config examples/recipes/few_labels_teacher_DATASET.toml` on the train papers'
#      propagated features, the other papers as unlabeled centers (entropy minimization), seeds
#      0 … TEACHER_SEEDS-1
#   3. the teacher file: the mean of those seeds' probabilities on every paper, `nsl predict --run …
#      --run …` (an ensemble at the teacher costs nothing at inference)
#
# Then, for seeds 0 … SEEDS-1:
#
#   few_labels   examples/recipes/few_labels.toml (Graph-MLP's training)
#   distilled    the student recipe + --distill teacher=…: examples/recipes/few_labels_distill_DATASET_grand.toml
#                if there is one for a GRAND teacher (Citeseer), else few_labels_distill_DATASET.toml
#
# The students' recipes and the PPR teacher's were chosen by `nsl tune` on the validation papers
# (docs/guide.md, "Distillation from a graph-aware teacher", "A GRAND teacher"); GRAND's settings are
# its authors'. With TUNE=1 the script runs the searches again (seed 0; the PPR teacher's,
# TEACHER_BUDGET, default 6000 epochs; the student's, STUDENT_BUDGET, default 12000 epochs; spaces
# scripts/few_labels_teacher_space.toml and scripts/few_labels_student_space.toml) and uses the recipes
# it finds (written to OUT) in place of the committed ones.
#
# Prints the teacher's accuracies (each seed's, and their mean's: `nsl evaluate` with every run) and one row per recipe: validation and test accuracy (mean ±
# sample sd), steady epoch seconds (seed 0) and the peak RSS of seed 0's run (/usr/bin/time).
# The validation accuracy is that of the epoch each run keeps (early stopping's best epoch).
# Environment: NSL (binary; default target/release/nsl), OUT (work directory; default a new
# temporary one), THREADS (default 1), TEACHER_RECIPE and RECIPE (the teacher's and the student's
# recipes), TEACHER_SEEDS (default 5), TEACHER_HOPS (default 10), TEACHER_ALPHA (default 0.1),
# MULTIPLIER (overrides the student recipe's), TUNE, TEACHER (grand, the default, or ppr), GRAND_FLAGS
# (the flags of `nsl graph grand`; default the official settings of the dataset). Needs jq.
set -euo pipefail

DATASET=${1:?usage: few_labels_distill.sh cora|citeseer|DIR [SEEDS]}
SEEDS=${2:-10}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
NSL=${NSL:-$ROOT/target/release/nsl}
OUT=${OUT:-$(mktemp -d -t few_labels_distill.XXXXXX)}
THREADS=${THREADS:-1}
case $DATASET in
    cora | citeseer)
        DATA=$ROOT/datasets/$DATASET NAME=$DATASET TABLE=$ROOT/datasets/$DATASET/$DATASET.planetoid_split.tsv
        RECIPES_OF=$DATASET ;;
    *)
        [[ -d $DATASET ]] || { echo "unknown dataset $DATASET (cora, citeseer or a directory)" >&2; exit 2; }
        DATA=$(cd "$DATASET" && pwd)
        TABLE=$(find "$DATA" -maxdepth 1 -name '*.split.tsv' | head -n 1)
        [[ -n $TABLE ]] || { echo "$DATA: no NAME.split.tsv" >&2; exit 2; }
        NAME=$(basename "$TABLE" .split.tsv)
        RECIPES_OF=cora ;;
esac
TEACHER=${TEACHER:-grand}
[[ $TEACHER == grand || $TEACHER == ppr ]] || { echo "TEACHER=$TEACHER: grand or ppr" >&2; exit 2; }
# The official settings of each dataset (the flags' defaults are Cora's), at most 1000 epochs (as measured
# in docs/guide.md, "A GRAND teacher"; the flag's default is 2000).
case $RECIPES_OF in
    citeseer) GRAND_DEFAULT="--input-dropout 0 --hidden-dropout 0.2 --order 2 --views 2 --temperature 0.3 --lambda 0.7 --max-epochs 1000" ;;
    *) GRAND_DEFAULT="--max-epochs 1000" ;;
esac
GRAND_FLAGS=${GRAND_FLAGS-$GRAND_DEFAULT}
TEACHER_SEEDS=${TEACHER_SEEDS:-5}
HOPS=${TEACHER_HOPS:-10}
ALPHA=${TEACHER_ALPHA:-0.1}
TEACHER_RECIPE=${TEACHER_RECIPE:-$ROOT/examples/recipes/few_labels_teacher_$RECIPES_OF.toml}
STUDENT=$ROOT/examples/recipes/few_labels_distill_$RECIPES_OF
[[ $TEACHER == grand && -f ${STUDENT}_grand.toml ]] && STUDENT=${STUDENT}_grand
RECIPE=${RECIPE:-$STUDENT.toml}

[[ -x $NSL ]] || (cd "$ROOT" && cargo build --release --quiet)
mkdir -p "$OUT"
echo "work directory: $OUT; $(date -u '+%Y-%m-%d %H:%M UTC'); $(lscpu | sed -n 's/^Model name: *//p')" >&2

"$NSL" convert --content "$DATA/$NAME.content.gz" --cites "$DATA/$NAME.cites.gz" \
    --samples "$OUT/all.parquet" --graph "$OUT/g.parquet" >/dev/null
"$NSL" split "$OUT/all.parquet" --split-table "$TABLE" --out-train "$OUT/tr.parquet" \
    --out-validation "$OUT/va.parquet" --out-test "$OUT/te.parquet" --out-unlabeled "$OUT/un.parquet" >/dev/null
if [[ $TEACHER == ppr ]]; then
    "$NSL" graph propagate "$OUT/g.parquet" --samples "$OUT/all.parquet" --mode appnp --hops "$HOPS" --alpha "$ALPHA" \
        --row-normalize --output "$OUT/ppr.parquet" >/dev/null
    "$NSL" split "$OUT/ppr.parquet" --split-table "$TABLE" --out-train "$OUT/ppr_tr.parquet" \
        --out-validation "$OUT/ppr_va.parquet" --out-test "$OUT/ppr_te.parquet" --out-unlabeled "$OUT/ppr_un.parquet" >/dev/null
fi
TEACHER_DATA="--samples $OUT/ppr_tr.parquet --unlabeled $OUT/ppr_un.parquet --validation $OUT/ppr_va.parquet"
if [[ ${TUNE:-0} == 1 && $TEACHER == ppr ]]; then
    # shellcheck disable=SC2086 # the flags are words
    "$NSL" tune --config "$TEACHER_RECIPE" --space "$ROOT/scripts/few_labels_teacher_space.toml" $TEACHER_DATA \
        --seed 0 --budget-epochs "${TEACHER_BUDGET:-6000}" --out-recipe "$OUT/teacher.toml" -q >&2
    TEACHER_RECIPE=$OUT/teacher.toml
fi

# The teacher: TEACHER_SEEDS runs on the propagated features, their probabilities averaged per paper
# (`nsl predict` with every run); or GRAND's TEACHER_SEEDS models, averaged by `--ensemble`.
: >"$OUT/teacher.val"
: >"$OUT/teacher.test"
RUNS=()
if [[ $TEACHER == grand ]]; then
    # shellcheck disable=SC2086 # the flags are words
    "$NSL" graph grand "$OUT/g.parquet" --samples "$OUT/all.parquet" --train "$OUT/tr.parquet" \
        --validation "$OUT/va.parquet" --test "$OUT/te.parquet" --seed 0 --ensemble "$TEACHER_SEEDS" $GRAND_FLAGS \
        --threads "$THREADS" --output "$OUT/teacher.csv" --json -q >"$OUT/grand.json"
    jq -r '.seeds[].validation_accuracy * 1000 | round / 10' "$OUT/grand.json" >>"$OUT/teacher.val"
    jq -r '.seeds[].test_accuracy * 1000 | round / 10' "$OUT/grand.json" >>"$OUT/teacher.test"
else
    for seed in $(seq 0 $((TEACHER_SEEDS - 1))); do
        # shellcheck disable=SC2086 # the flags are words
        "$NSL" train --config "$TEACHER_RECIPE" $TEACHER_DATA --test "$OUT/ppr_te.parquet" --threads "$THREADS" \
            --seed "$seed" --out "$OUT/teacher-$seed" --json -q >"$OUT/teacher.$seed.json"
        jq -r '.final_validation_metrics.accuracy * 1000 | round / 10' "$OUT/teacher.$seed.json" >>"$OUT/teacher.val"
        jq -r '.test_accuracy * 1000 | round / 10' "$OUT/teacher.$seed.json" >>"$OUT/teacher.test"
        RUNS+=(--run "$OUT/teacher-$seed")
    done
    "$NSL" predict "${RUNS[@]}" --samples "$OUT/ppr.parquet" --output "$OUT/teacher.csv" -q
    # The teacher file's own accuracy: `nsl evaluate` scores the same ensemble.
    ensemble_accuracy() { "$NSL" evaluate "${RUNS[@]}" --samples "$1" --json | jq -r '.accuracy * 1000 | round / 10'; }
    TEACHER_FILE="validation $(ensemble_accuracy "$OUT/ppr_va.parquet"), test $(ensemble_accuracy "$OUT/ppr_te.parquet")"
fi
if [[ ${TUNE:-0} == 1 ]]; then
    # The student's search starts from the committed recipe, with this run's teacher file in it.
    "$NSL" tune --config "$RECIPE" --distill "teacher=$OUT/teacher.csv" \
        --space "$ROOT/scripts/few_labels_student_space.toml" \
        --samples "$OUT/tr.parquet" --unlabeled "$OUT/un.parquet" --graph "$OUT/g.parquet" --validation "$OUT/va.parquet" \
        --seed 0 --budget-epochs "${STUDENT_BUDGET:-12000}" --out-recipe "$OUT/student.toml" -q >&2
    RECIPE=$OUT/student.toml
fi
MULTIPLIER=${MULTIPLIER:-$(sed -n 's/^distill = ".*multiplier=\([0-9.e+-]*\).*"/\1/p' "$RECIPE")}
stats() { # accuracies (percent) on stdin -> "mean ± sd"
    awk '{v[NR]=$1; s+=$1} END {m=s/NR; for(i=1;i<=NR;i++) d+=(v[i]-m)^2; sd=(NR>1)?sqrt(d/(NR-1)):0;
         printf "%.1f ± %.1f", m, sd}'
}
if [[ $TEACHER == grand ]]; then
    printf 'teacher (GRAND%s, %d seeds; the graph at inference): validation %s, test %s (single seeds); their mean: validation %s, test %s\n\n' \
        "${GRAND_FLAGS:+ $GRAND_FLAGS}" "$TEACHER_SEEDS" "$(stats <"$OUT/teacher.val")" "$(stats <"$OUT/teacher.test")" \
        "$(jq -r '.ensemble.validation_accuracy * 1000 | round / 10' "$OUT/grand.json")" \
        "$(jq -r '.ensemble.test_accuracy * 1000 | round / 10' "$OUT/grand.json")"
else
    printf 'teacher (APPNP K=%s, α %s + %s, %d seeds; the graph at inference): validation %s, test %s (single seeds); their mean, which the student learns: %s\n\n' \
        "$HOPS" "$ALPHA" "$(basename "$TEACHER_RECIPE")" "$TEACHER_SEEDS" "$(stats <"$OUT/teacher.val")" "$(stats <"$OUT/teacher.test")" "$TEACHER_FILE"
fi
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
