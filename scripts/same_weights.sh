#!/usr/bin/env bash
# Do two nsl binaries train the same weights? Runs the default training paths with both and compares
# the SHA-256 of each run's model.safetensors, byte for byte:
#
#   nsl_recipe  NSL's Cora graph-regularization tutorial (80/20 split, multiplier 0.1, 1 neighbor)
#   mnist_adv   the demo's MLP with NSL's adversarial regularization (FGSM, L∞ step 0.2), 2 epochs
#   vat         Planetoid Cora, 140 labels: unlabeled centers, adversarial and virtual adversarial terms
#   kl_recipe   Planetoid Cora: examples/recipes/few_labels_kl.toml (unlabeled centers, KL, 2 hops)
#   packed      NSL's Cora recipe from a packed Parquet table (`nsl pack-nbrs`), streamed (--packed)
#   cnn_adv     a small CNN with NSL's adversarial regularization on 3,000 MNIST digits, 1 epoch
#
#   scripts/same_weights.sh OLD_NSL NEW_NSL
#
# cnn_adv differs between binaries on either side of commit 971dbea (the CNN's channels-last
# activations change the float summation order; docs/benchmarks.md, "Robust training epoch") and of
# b670039 (the direct kernel of the first convolution, likewise; "Third round").
#
# Prints one line per run (`same` or `DIFFERENT` and both hashes) and exits 1 if any differ.
# e.g. git worktree add /tmp/old 9a37c9a && (cd /tmp/old && cargo build --release --bin nsl) &&
#      scripts/same_weights.sh /tmp/old/target/release/nsl target/release/nsl
set -euo pipefail
cd "$(dirname "$0")/.."
old=$1 new=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
$new convert --content datasets/cora/cora.content.gz --cites datasets/cora/cora.cites.gz \
  --samples "$work/cora.parquet" --graph "$work/g.parquet" >/dev/null
$new split "$work/cora.parquet" --method nsl --seed 1 --train 0.8 \
  --out-train "$work/train.parquet" --out-test "$work/test.parquet" >/dev/null
$new split "$work/cora.parquet" --split-table datasets/cora/cora.planetoid_split.tsv \
  --out-train "$work/tr.parquet" --out-test "$work/te.parquet" --out-unlabeled "$work/un.parquet" >/dev/null
$new convert --idx-images datasets/mnist/train-images-idx3-ubyte.gz \
  --idx-labels datasets/mnist/train-labels-idx1-ubyte.gz --samples "$work/mnist.parquet" >/dev/null
$new pack-nbrs --samples "$work/train.parquet" --pool "$work/test.parquet" --graph "$work/g.parquet" \
  --max-neighbors 1 --output "$work/packed.parquet" >/dev/null
$new split "$work/mnist.parquet" --train 0.05 --seed 1 \
  --out-train "$work/mnist_small.parquet" --out-test "$work/mnist_rest.parquet" >/dev/null
runs=(
  "nsl_recipe|--samples $work/train.parquet --pool $work/test.parquet --graph $work/g.parquet --graph-reg multiplier=0.1,neighbors=1 --epochs 30 --seed 3"
  "mnist_adv|--samples $work/mnist.parquet --model mlp:256,128 --dropout 0 --batch-size 32 --epochs 2 --adv-reg multiplier=0.2,step-size=0.2,norm=inf"
  "vat|--samples $work/tr.parquet --unlabeled $work/un.parquet --model mlp:32 --adv-reg multiplier=0.2 --vat multiplier=1 --epochs 20 --seed 1"
  "kl_recipe|--config examples/recipes/few_labels_kl.toml --samples $work/tr.parquet --unlabeled $work/un.parquet --graph $work/g.parquet --epochs 20 --seed 2"
  "packed|--packed $work/packed.parquet --graph-reg multiplier=0.1,neighbors=1 --epochs 10 --seed 3"
  "cnn_adv|--samples $work/mnist_small.parquet --model cnn:8,16 --epochs 1 --adv-reg multiplier=0.2,step-size=0.2,norm=inf"
)
status=0
for entry in "${runs[@]}"; do
  name=${entry%%|*}
  flags=${entry#*|}
  for side in old new; do
    bin=$old; [ "$side" = new ] && bin=$new
    # shellcheck disable=SC2086 # the flags are words
    "$bin" train $flags --threads 1 --out "$work/$name-$side" >/dev/null 2>&1
  done
  a=$(sha256sum "$work/$name-old/model.safetensors" | cut -c1-16)
  b=$(sha256sum "$work/$name-new/model.safetensors" | cut -c1-16)
  if [ "$a" = "$b" ]; then echo "$name same $a"; else echo "$name DIFFERENT $a $b"; status=1; fi
done
exit $status
