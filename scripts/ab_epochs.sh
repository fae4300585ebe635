#!/usr/bin/env bash
# A/B of two nsl binaries on the training paths, interleaved so that both see the same machine:
# MNIST MLP 256-128 with NSL's adversarial regularization (5 epochs, the demo's model; the built-in
# tape backend) and NSL's Cora graph-regularization tutorial (100 epochs). Prints the user CPU seconds
# of each run (steadier than wall time on a busy machine) and the steady epoch time it reports.
#
#   scripts/ab_epochs.sh OLD_NSL NEW_NSL [REPS=3]
#
# e.g. git worktree add /tmp/old ce59ca6 && (cd /tmp/old && cargo build --release) &&
#      scripts/ab_epochs.sh /tmp/old/target/release/nsl target/release/nsl
set -euo pipefail
cd "$(dirname "$0")/.."
old=$1 new=$2 reps=${3:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
$new convert --idx-images datasets/mnist/train-images-idx3-ubyte.gz \
  --idx-labels datasets/mnist/train-labels-idx1-ubyte.gz --samples "$work/mnist.parquet" >/dev/null
$new convert --content datasets/cora/cora.content.gz --cites datasets/cora/cora.cites.gz \
  --samples "$work/cora.parquet" --graph "$work/graph.parquet" >/dev/null
$new split "$work/cora.parquet" --method nsl --seed 1 --train 0.8 \
  --out-train "$work/train.parquet" --out-test "$work/test.parquet" >/dev/null
run() { # BINARY OUT ARGS… → "user_seconds steady_epoch"
  local bin=$1 out=$2; shift 2
  /usr/bin/time -o "$work/time" -f "%U" "$bin" train "$@" --threads 1 --json --out "$work/$out" > "$work/out.json" 2>/dev/null
  python3 -c "import json; print('$(tail -n 1 "$work/time")', round(json.load(open('$work/out.json'))['steady_epoch_seconds'], 4))"
}
echo "rep binary mnist_adv_user_s mnist_adv_epoch_s cora_graph_user_s cora_graph_epoch_s"
for rep in $(seq 1 "$reps"); do
  for side in old new; do
    bin=$old; [ "$side" = new ] && bin=$new
    m=$(run "$bin" m --samples "$work/mnist.parquet" --model mlp:256,128 --dropout 0 --epochs 5 --batch-size 32 \
          --adv-reg multiplier=0.2,step-size=0.2,norm=inf)
    c=$(run "$bin" c --samples "$work/train.parquet" --pool "$work/test.parquet" --graph "$work/graph.parquet" \
          --model mlp:50,50 --dropout 0.5 --graph-reg multiplier=0.1,neighbors=1,distance=l2 --epochs 100 --batch-size 128)
    echo "$rep $side $m $c"
  done
done
