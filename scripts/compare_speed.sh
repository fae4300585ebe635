#!/usr/bin/env bash
# Is a new nsl binary as fast as an old one? Trains the same runs with both, interleaved (old, new,
# old, new, …) so that a shared machine's drift hits both alike, and prints each run's steady epoch
# time (`nsl train --json`'s steady_epoch_seconds) per binary: the median over ROUNDS and every value.
#
#   nsl_recipe  NSL's Cora tutorial: mlp:50,50, dropout 0.5, batch 128, multiplier 0.1, 1 neighbor, 30 epochs
#   mnist_adv   MNIST MLP 256,128 with NSL's adversarial regularization (FGSM, L∞ step 0.2), 3 epochs
#   packed      the Cora recipe from a packed Parquet table, streamed, 30 epochs
#
#   scripts/compare_speed.sh OLD_NSL NEW_NSL [ROUNDS=3]
set -euo pipefail
cd "$(dirname "$0")/.."
old=$1 new=$2 rounds=${3:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
$new convert --content datasets/cora/cora.content.gz --cites datasets/cora/cora.cites.gz \
  --samples "$work/cora.parquet" --graph "$work/g.parquet" >/dev/null
$new split "$work/cora.parquet" --method nsl --seed 1 --train 0.8 \
  --out-train "$work/train.parquet" --out-test "$work/test.parquet" >/dev/null
$new convert --idx-images datasets/mnist/train-images-idx3-ubyte.gz \
  --idx-labels datasets/mnist/train-labels-idx1-ubyte.gz --samples "$work/mnist.parquet" >/dev/null
$new pack-nbrs --samples "$work/train.parquet" --pool "$work/test.parquet" --graph "$work/g.parquet" \
  --max-neighbors 1 --output "$work/packed.parquet" >/dev/null
runs=(
  "nsl_recipe|--samples $work/train.parquet --pool $work/test.parquet --graph $work/g.parquet --graph-reg multiplier=0.1,neighbors=1 --batch-size 128 --epochs 30"
  "mnist_adv|--samples $work/mnist.parquet --model mlp:256,128 --dropout 0 --epochs 3 --adv-reg multiplier=0.2,step-size=0.2,norm=inf"
  "packed|--packed $work/packed.parquet --graph-reg multiplier=0.1,neighbors=1 --batch-size 128 --epochs 30"
)
for entry in "${runs[@]}"; do
  name=${entry%%|*}
  flags=${entry#*|}
  : >"$work/old.txt"
  : >"$work/new.txt"
  for _ in $(seq "$rounds"); do
    for side in old new; do
      bin=$old; [ "$side" = new ] && bin=$new
      # shellcheck disable=SC2086 # the flags are words
      "$bin" train $flags --threads 1 --json --out "$work/run" 2>/dev/null |
        python3 -c "import json,sys; print(json.load(sys.stdin)['steady_epoch_seconds'])" >>"$work/$side.txt"
    done
  done
  python3 - "$name" "$work/old.txt" "$work/new.txt" <<'PY'
import statistics, sys
name, old, new = sys.argv[1], [float(x) for x in open(sys.argv[2])], [float(x) for x in open(sys.argv[3])]
mo, mn = statistics.median(old), statistics.median(new)
print(f"{name}: steady epoch old {mo:.4f} s, new {mn:.4f} s ({(mn / mo - 1) * 100:+.1f} %); "
      f"old {' '.join(f'{x:.4f}' for x in old)}; new {' '.join(f'{x:.4f}' for x in new)}")
PY
done
