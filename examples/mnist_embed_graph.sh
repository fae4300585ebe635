#!/usr/bin/env bash
# 100 labeled MNIST digits and a graph you build yourself (issue 27 point 5; NSL's "synthesized
# graph" recipe, end to end with the nsl command line).
#
#   examples/mnist_embed_graph.sh [SEEDS=5]
#
# The bundled 10,000 MNIST training digits: for each seed, 100 labeled (10 per class, chosen by the
# seed), 500 more as the validation set for early stopping, and all 9,900 non-labeled digits (the
# 500 included, their labels never read) as unlabeled centers; the 10,000 MNIST test digits for the
# figures. Three models per seed, the same MLP and settings (RECIPE below) each time:
#
#   no graph    the MLP trained on the 100 labels alone;
#   pixel graph graph-regularized training with the unlabeled centers on a kNN graph of the raw
#               pixels (`nsl build-graph` on the 10,000 digits, once);
#   embeddings  the same on a kNN graph of the no-graph model's hidden layer: `nsl embed` the 10,000
#               digits with that model, `nsl build-graph` on the embeddings.
#
# Prints the graphs' quality (edge homophily: the share of edges joining digits of one label, from
# `nsl graph stats --json`, which reads the labels; training never does) and one row per model:
# test accuracy per seed, mean ± sample sd. Environment: NSL (binary; default target/release/nsl),
# OUT (work directory; default a new temporary one), THREADS (default 1). Needs jq.
set -euo pipefail

SEEDS=${1:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
NSL=${NSL:-$ROOT/target/release/nsl}
OUT=${OUT:-$(mktemp -d -t mnist_embed_graph.XXXXXX)}
THREADS=${THREADS:-1}
MNIST=$ROOT/datasets/mnist

# The model and its training, the same for all three; the graph runs add the graph loss: five
# unlabeled centers per labeled digit in each batch, positives among the batch's centers from the
# two-hop graph, the neighbor-contrastive distance on the last hidden layer (the few-labels recipe's
# graph loss, docs/guide.md "Few labels"). These settings and the embedded layer were chosen on
# seed 0's 500 validation digits (docs/guide.md, "A graph from 100 labels").
# MODEL, GRAPH_LAYER (the graph loss's layer) and EMBED_LAYER (the layer the embedding graph is
# built on) may be set from the environment, e.g. for a CNN (docs/guide.md has its figures):
#   MODEL="--model cnn:16,32,dense=64 --epochs 100 --batch-size 100 --early-stopping patience=30" \
#   GRAPH_LAYER=dense0 EMBED_LAYER=dense0 examples/mnist_embed_graph.sh 3
MODEL=${MODEL:-"--model mlp:256,128 --dropout 0.5 --epochs 300 --batch-size 100 --early-stopping patience=50"}
GRAPH_LAYER=${GRAPH_LAYER:-hidden1}
EMBED_LAYER=${EMBED_LAYER:-hidden0}
GRAPH_REG="--unlabeled-ratio 5 --graph-reg multiplier=3,neighbors=100,hops=2,distance=contrastive,layer=$GRAPH_LAYER,in-batch=true"
# A kNN graph: each digit's 10 most similar digits by cosine (edges both ways, so degrees vary).
KNN="--top-k 10 --threshold 0"

[[ -x $NSL ]] || (cd "$ROOT" && cargo build --release --quiet)
START=$SECONDS
mkdir -p "$OUT"
echo "work directory: $OUT; $(date -u '+%Y-%m-%d %H:%M UTC'); $(lscpu | sed -n 's/^Model name: *//p'); $MODEL" >&2
q() { "$NSL" "$@" --quiet >/dev/null; } # a step whose report we do not need

# 1. The digits as samples tables (ids are row numbers "0".."9999").
q convert --idx-images "$MNIST/train-images-idx3-ubyte.gz" --idx-labels "$MNIST/train-labels-idx1-ubyte.gz" \
    --samples "$OUT/digits.parquet"
q convert --idx-images "$MNIST/t10k-images-idx3-ubyte.gz" --idx-labels "$MNIST/t10k-labels-idx1-ubyte.gz" \
    --samples "$OUT/test.parquet"

# 2. The graph on raw pixels, once for every seed.
# shellcheck disable=SC2086 # the settings are words
q build-graph --input "$OUT/digits.parquet" $KNN --threads "$THREADS" --output "$OUT/pixels.graph.parquet"

# The labels in row order, for choosing 10 per class (IDX: an 8-byte header, then a byte per label).
gzip -dc "$MNIST/train-labels-idx1-ubyte.gz" | tail -c +9 | od -An -v -tu1 -w1 | tr -d ' ' >"$OUT/labels.txt"

homophily() { "$NSL" graph stats "$1" --samples "$OUT/digits.parquet" --json | jq -r '.samples.homophily.ratio * 100' | xargs printf '%.1f\n'; }
accuracy() { jq -r '.test_accuracy * 100' "$1" | xargs printf '%.1f\n'; }
stats() { # accuracies (percent) on stdin -> "a, b, c (mean ± sd)"
    awk '{v[NR]=$1; s+=$1} END {m=s/NR; for(i=1;i<=NR;i++){d+=(v[i]-m)^2; out=out (i>1?", ":"") v[i]}
         sd=(NR>1)?sqrt(d/(NR-1)):0; printf "%s (%.1f ± %.1f)", out, m, sd}'
}

: >"$OUT/plain.acc"; : >"$OUT/pixels.acc"; : >"$OUT/embed.acc"; : >"$OUT/embed.homophily"
for seed in $(seq 0 $((SEEDS - 1))); do
    S=$OUT/seed$seed
    mkdir -p "$S"
    # 3. The seed's split: rows in the order of a multiplicative hash of (row, seed) (exact integer
    #    arithmetic, the same in every awk); the first 10 of each class are labeled, the next 500
    #    validation, the rest `other`. Unlabeled = every row not labeled (validation included).
    awk -v seed="$seed" '{ printf "%d\t%d\t%d\n", ((NR - 1) * 2654435761 + seed * 40503 + 12345) % 4294967296, NR - 1, $1 }' \
        "$OUT/labels.txt" | sort -n -k1,1 |
        awk 'BEGIN { print "id\tsplit" } { s = "other"; if (n[$3]++ < 10) s = "train"; else if (v++ < 500) s = "val"; print $2 "\t" s }' \
            >"$S/split.tsv"
    q split "$OUT/digits.parquet" --split-table "$S/split.tsv" --out-train "$S/labeled.parquet" \
        --out-validation "$S/validation.parquet" --out-test "$S/none.parquet" --out-unlabeled "$S/unlabeled.parquet"
    common=(--samples "$S/labeled.parquet" --validation "$S/validation.parquet" --test "$OUT/test.parquet"
        --threads "$THREADS" --seed "$seed" --json)

    # 4. No graph: the MLP on the 100 labels.
    # shellcheck disable=SC2086 # the settings are words
    "$NSL" train "${common[@]}" $MODEL --out "$S/plain" --quiet >"$S/plain.json"
    accuracy "$S/plain.json" >>"$OUT/plain.acc"

    # 5. The pixel graph, with the unlabeled digits as centers.
    # shellcheck disable=SC2086
    "$NSL" train "${common[@]}" $MODEL --unlabeled "$S/unlabeled.parquet" --graph "$OUT/pixels.graph.parquet" \
        $GRAPH_REG --out "$S/pixels" --quiet >"$S/pixels.json"
    accuracy "$S/pixels.json" >>"$OUT/pixels.acc"

    # 6. The graph on the no-graph model's embeddings: embed every digit, kNN on the embeddings.
    q embed --run "$S/plain" --samples "$OUT/digits.parquet" --layer "$EMBED_LAYER" --output "$S/embeddings.parquet"
    # shellcheck disable=SC2086
    q build-graph --input "$S/embeddings.parquet" $KNN --threads "$THREADS" --output "$S/embed.graph.parquet"
    homophily "$S/embed.graph.parquet" >>"$OUT/embed.homophily"
    # shellcheck disable=SC2086
    "$NSL" train "${common[@]}" $MODEL --unlabeled "$S/unlabeled.parquet" --graph "$S/embed.graph.parquet" \
        $GRAPH_REG --out "$S/embed" --quiet >"$S/embed.json"
    accuracy "$S/embed.json" >>"$OUT/embed.acc"
    echo "seed $seed: no graph $(tail -1 "$OUT/plain.acc"), pixel graph $(tail -1 "$OUT/pixels.acc"), embedding graph $(tail -1 "$OUT/embed.acc")" >&2
done

printf '\n| graph | edge homophily (%%) | test accuracy, seeds 0–%d (mean ± sd) |\n|---|---|---|\n' $((SEEDS - 1))
printf '| none (the model on 100 labels alone) | | %s |\n' "$(stats <"$OUT/plain.acc")"
printf '| kNN on raw pixels | %s | %s |\n' "$(homophily "$OUT/pixels.graph.parquet")" "$(stats <"$OUT/pixels.acc")"
printf '| kNN on the no-graph model'"'"'s `%s` | %s | %s |\n' "$EMBED_LAYER" "$(stats <"$OUT/embed.homophily")" "$(stats <"$OUT/embed.acc")"
echo "$SEEDS seed(s) in $((SECONDS - START)) s, THREADS=$THREADS" >&2
