#!/usr/bin/env bash
# Feature propagation + an MLP on Planetoid Cora (140 labeled papers), measured as SGC is.
#
#   scripts/planetoid_propagate.sh [SEEDS=5]
#
# Converts Cora, writes propagated features with `nsl graph propagate` (SGC K = 1, 2, 3 and SIGN
# K = 2, 3 with L1 row normalization, SGC K = 2 without, and the raw features as the baseline), splits each table
# by datasets/cora/cora.planetoid_split.tsv, and trains `nsl train` MLPs on the 140 train papers over
# a small grid (dropout, learning rate, epochs; Adam, batch 140). For each feature setting the grid
# point with the best mean accuracy on the 500 validation papers is chosen, and its accuracy on the
# 1,000 test papers is reported as mean ± sample sd over SEEDS seeds (0 … SEEDS-1).
#
# Environment: NSL (the binary; default target/release/nsl, built if missing), OUT (work directory;
# default a new temporary directory), THREADS (per run; default 1), and the grid: GRID_MODELS
# (default mlp:64), GRID_DROPOUT (0.5 0.8), GRID_LR (0.005 0.01 0.2), GRID_EPOCHS (50 100 200).
# There is no linear model (`--model mlp:` needs a hidden layer) and no weight decay in nsl's
# optimizers, both of which SGC itself uses. Needs jq and awk.
set -euo pipefail

SEEDS=${1:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
NSL=${NSL:-$ROOT/target/release/nsl}
OUT=${OUT:-$(mktemp -d -t planetoid_propagate.XXXXXX)}
THREADS=${THREADS:-1}
GRID_MODELS=${GRID_MODELS:-mlp:64}
GRID_DROPOUT=${GRID_DROPOUT:-0.5 0.8}
GRID_LR=${GRID_LR:-0.005 0.01 0.2}
GRID_EPOCHS=${GRID_EPOCHS:-50 100 200}
TABLE=$ROOT/datasets/cora/cora.planetoid_split.tsv

if [[ ! -x $NSL ]]; then
    (cd "$ROOT" && cargo build --release --quiet)
fi
mkdir -p "$OUT"
echo "work directory: $OUT" >&2

"$NSL" convert --content "$ROOT/datasets/cora/cora.content.gz" --cites "$ROOT/datasets/cora/cora.cites.gz" \
    --samples "$OUT/cora.parquet" --graph "$OUT/cora_graph.parquet" >/dev/null

# name|nsl graph propagate flags ("raw": the features as they are).
SETTINGS=(
    "raw|"
    "sgc2|--hops 2"
    "sgc1_rownorm|--hops 1 --row-normalize"
    "sgc2_rownorm|--hops 2 --row-normalize"
    "sgc3_rownorm|--hops 3 --row-normalize"
    "sign2_rownorm|--hops 2 --mode sign --row-normalize"
    "sign3_rownorm|--hops 3 --mode sign --row-normalize"
)
RESULTS=$OUT/results.tsv
printf 'setting\tmodel\tdropout\tlr\tepochs\tseed\tvalidation\ttest\n' >"$RESULTS"

for entry in "${SETTINGS[@]}"; do
    name=${entry%%|*}
    flags=${entry#*|}
    features=$OUT/cora.parquet
    if [[ -n $flags ]]; then
        features=$OUT/$name.parquet
        # shellcheck disable=SC2086 # the flags are words
        "$NSL" graph propagate "$OUT/cora_graph.parquet" --samples "$OUT/cora.parquet" $flags --output "$features" >/dev/null
    fi
    "$NSL" split "$features" --split-table "$TABLE" --out-train "$OUT/${name}_train.parquet" \
        --out-validation "$OUT/${name}_val.parquet" --out-test "$OUT/${name}_test.parquet" >/dev/null
    echo "training on $name" >&2
    for model in $GRID_MODELS; do
        for dropout in $GRID_DROPOUT; do
            for lr in $GRID_LR; do
                for epochs in $GRID_EPOCHS; do
                    for ((seed = 0; seed < SEEDS; seed++)); do
                        run=$OUT/runs/$name
                        test=$("$NSL" train --samples "$OUT/${name}_train.parquet" \
                            --validation "$OUT/${name}_val.parquet" --test "$OUT/${name}_test.parquet" \
                            --model "$model" --dropout "$dropout" --learning-rate "$lr" --epochs "$epochs" \
                            --batch-size 140 --seed "$seed" --threads "$THREADS" --out "$run" --json | jq -r .test_accuracy)
                        validation=$(jq -r '.epochs[-1].validation_accuracy' "$run/history.json")
                        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$model" "$dropout" "$lr" "$epochs" "$seed" \
                            "$validation" "$test" >>"$RESULTS"
                    done
                done
            done
        done
    done
done

# Per setting: the grid point with the best mean validation accuracy, and its test accuracy.
awk -F'\t' -v seeds="$SEEDS" '
NR == 1 { next }
{
    key = $1 "\t" $2 " dropout " $3 " lr " $4 " epochs " $5
    if (!(key in n)) { order[++keys] = key }
    n[key]++; v[key] += $7; t[key] += $8; t2[key] += $8 * $8
    all[key] = all[key] sprintf(" %.1f", 100 * $8)
}
END {
    printf "| features | chosen on validation | validation %% | test %% (mean ± sd, %d seeds) | test per seed |\n", seeds
    printf "|---|---|---|---|---|\n"
    for (i = 1; i <= keys; i++) {
        key = order[i]; split(key, parts, "\t"); s = parts[1]
        mv = v[key] / n[key]
        if (!(s in best) || mv > bestv[s]) { best[s] = key; bestv[s] = mv }
        if (!(s in seen)) { seen[s] = 1; names[++count] = s }
    }
    for (i = 1; i <= count; i++) {
        key = best[names[i]]; split(key, parts, "\t")
        m = t[key] / n[key]
        var = n[key] > 1 ? (t2[key] - n[key] * m * m) / (n[key] - 1) : 0
        if (var < 0) var = 0
        printf "| %s | %s | %.1f | %.1f ± %.1f |%s |\n", names[i], parts[2], 100 * bestv[names[i]], 100 * m, 100 * sqrt(var), all[key]
        if (i == 1 || bestv[names[i]] > overall_v) { overall_v = bestv[names[i]]; overall = names[i] " (" parts[2] ")"; overall_t = m; overall_sd = sqrt(var) }
    }
    printf "\nFeatures and settings both chosen on validation: %s, validation %.1f %%, test %.1f ± %.1f %%\n", overall, 100 * overall_v, 100 * overall_t, 100 * overall_sd
}' "$RESULTS" | tee "$OUT/table.md"
echo "all runs: $RESULTS" >&2
