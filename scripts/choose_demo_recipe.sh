#!/usr/bin/env bash
# How `nsl demo`'s robust recipe was chosen (src/cli/demo.rs, ROBUST_RECIPE): the demo's MLP trained on 9,000 of
# the bundled training digits with each candidate, attacked with AutoAttack (L∞ ε 0.2, clipped to [0, 1]) on the
# 1,000 held out (`nsl split --train 0.9 --seed 1 --stratify`); the test digits are never read. Prints, for each
# candidate, the training time, the clean and the AutoAttack accuracy on the held-out digits.
#
#   scripts/choose_demo_recipe.sh
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-2} cargo build --release -q
nsl=$PWD/target/release/nsl
m=$PWD/datasets/mnist
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
$nsl convert --idx-images $m/train-images-idx3-ubyte.gz --idx-labels $m/train-labels-idx1-ubyte.gz --samples train.parquet >/dev/null
$nsl split train.parquet --train 0.9 --seed 1 --stratify --out-train tr.parquet --out-test va.parquet >/dev/null
run() {
  local name=$1 epochs=$2 adv=$3 start
  start=$(date +%s)
  $nsl train --samples tr.parquet --model mlp:256,128 --dropout 0 --batch-size 32 --threads 1 --epochs "$epochs" \
    --adv-reg "$adv" --out "r_$name" >/dev/null 2>&1
  local seconds=$(( $(date +%s) - start ))
  $nsl evaluate --run "r_$name" --samples va.parquet --attack autoattack --epsilon 0.2 --clip 0:1 --json 2>/dev/null >"$name.json"
  python3 -c "import json,sys; d=json.load(open('$name.json')); print(f'| $name | $epochs | {d[\"accuracy\"]*100:.1f} % | {d[\"robust_accuracy\"][0]*100:.1f} % | ${seconds} s |')"
}
echo "| candidate | epochs | clean (validation) | AutoAttack ε 0.2 (validation) | training |"
echo "|---|---|---|---|---|"
common="epsilon=0.2,step-size=0.05,pgd-iterations=10,norm=inf,clip=0:1"
run trades6 5 "objective=trades,multiplier=6,$common,epsilon-warmup=1"
run trades2 5 "objective=trades,multiplier=2,$common,epsilon-warmup=1"
run madry 5 "objective=madry,multiplier=1,$common,epsilon-warmup=1,random-init=true"
run trades6_10 10 "objective=trades,multiplier=6,$common,epsilon-warmup=2"
