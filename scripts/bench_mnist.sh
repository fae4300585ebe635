#!/usr/bin/env bash
# MNIST adversarial regularization against NSL's tutorial figures (issue 5): for each model, base and
# adversarially-regularized runs (multiplier 0.2, FGSM step 0.2, L∞, batch 32, 5 epochs) over SEEDS
# seeds; clean accuracy, transfer-adversarial accuracy (FGSM ε 0.2 L∞ crafted on the base model,
# clipped to [0, 1]), white-box FGSM and PGD-40 (ε 0.2, step 0.01) on the regularized model, steady
# epoch times and peak memory. Writes the "mnist" section of docs/benchmarks.md.
#
# If NSL's Python environment exists (../shared/baselines/setup.sh; TFVENV, default /tmp/tfvenv), NSL's
# own script runs right after each of our seeds, so that the epoch times are compared on the same
# machine in the same run (a shared VM's speed drifts by tens of percent over an hour).
#
#   scripts/bench_mnist.sh [SEEDS=3] [MODELS="mlp cnn"]
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=${1:-3}
models=${2:-mlp cnn}
cargo build --release -q
nsl=target/release/nsl
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
m=datasets/mnist
$nsl convert --idx-images $m/train-images-idx3-ubyte.gz --idx-labels $m/train-labels-idx1-ubyte.gz --samples "$work/train.parquet" >/dev/null
$nsl convert --idx-images $m/t10k-images-idx3-ubyte.gz --idx-labels $m/t10k-labels-idx1-ubyte.gz --samples "$work/test.parquet" >/dev/null

baselines=${NSL_BASELINES:-../shared/baselines}
tfpy=${TFVENV:-/tmp/tfvenv}/bin/python
compare=0
[ -x "$tfpy" ] && [ -f "$baselines/nsl_mnist_adv.py" ] && compare=1

json() { python3 -c "import json,sys; d=json.load(open('$1')); print($2)"; }
rows=""
for model in $models; do
  case $model in
    mlp) spec=mlp:256,128; threads=1 ;;
    cnn) spec=cnn; threads=2 ;;
  esac
  for seed in $(seq 0 $((seeds - 1))); do
    common=(--samples "$work/train.parquet" --model $spec --dropout 0 --epochs 5 --batch-size 32 --seed "$seed" --threads $threads --json)
    /usr/bin/time -f "%M" -o "$work/rss_base" $nsl train "${common[@]}" --out "$work/base" > "$work/base.json"
    # Same batches, independent starting weights: NSL's script builds its two models one after the
    # other from one random stream. Sharing the start would make the transfer attack far stronger.
    /usr/bin/time -f "%M" -o "$work/rss_adv" $nsl train "${common[@]}" --init-seed $((seed + 1000)) --out "$work/adv" \
      --adv-reg multiplier=0.2,step-size=0.2,norm=inf > "$work/adv.json"
    attack=(--samples "$work/test.parquet" --attack fgsm --norm inf --epsilon 0.2 --clip 0:1 --json)
    $nsl evaluate --run "$work/base" "${attack[@]}" > "$work/e_base.json"                          # white-box = transfer source
    $nsl evaluate --run "$work/adv" "${attack[@]}" --attack-from "$work/base" > "$work/e_transfer.json"
    $nsl evaluate --run "$work/adv" "${attack[@]}" > "$work/e_white.json"
    $nsl evaluate --run "$work/adv" --samples "$work/test.parquet" --attack pgd --norm inf --epsilon 0.2 \
      --pgd-steps 40 --pgd-step-size 0.01 --clip 0:1 --json > "$work/e_pgd.json"
    row="$model $seed $(json "$work/e_base.json" "d['accuracy'], d['robust_accuracy'][0]")"
    row+=" $(json "$work/e_transfer.json" "d['accuracy'], d['robust_accuracy'][0]")"
    row+=" $(json "$work/e_white.json" "d['robust_accuracy'][0]") $(json "$work/e_pgd.json" "d['robust_accuracy'][0]")"
    row+=" $(json "$work/base.json" "d['steady_epoch_seconds']") $(json "$work/adv.json" "d['steady_epoch_seconds']")"
    row+=" $(tail -n 1 "$work/rss_base") $(tail -n 1 "$work/rss_adv")"
    if [ $compare = 1 ]; then
      "$tfpy" "$baselines/nsl_mnist_adv.py" --model "$model" --epochs 5 --seed "$seed" 2>/dev/null | grep '^{' | tail -n 1 > "$work/nsl.json"
      row+=" $(json "$work/nsl.json" "d['base']['steady_epoch_s'], d['adv_reg']['steady_epoch_s']")"
      row+=" $(json "$work/nsl.json" "d['base']['clean_acc'], d['base']['adv_acc'], d['adv_reg']['clean_acc'], d['adv_reg']['adv_acc'], d['whitebox_from_adv_model']['adv_reg_adv_acc']")"
    else
      row+=" nan nan nan nan nan nan nan"
    fi
    rows+="$(echo "$row" | tr -d '(),')"$'\n'
    echo "$row" >&2
  done
done

python3 - "$seeds" "$models" "$rows" <<'PY' | scripts/bench_section.py "mnist-${models// /-}"
import sys, datetime, statistics as st, subprocess
seeds, models, rows = int(sys.argv[1]), sys.argv[2], [r.split() for r in sys.argv[3].strip().splitlines()]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
mem = round(int(open("/proc/meminfo").read().split()[1]) / 1048576)
nsl_ref = {"mlp": (95.2, 1.1, 96.1, 44.0, 56.0, 0.83, 1.07), "cnn": (97.9, 34.3, 98.1, 88.6, 87.6, 2.01, 4.21)}
print(f"## MNIST: adversarial regularization, {models} (issue 5)\n")
print(f"`scripts/bench_mnist.sh {seeds} \"{models}\"` — {datetime.date.today()}, {cpu}, "
      f"{subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} cores, {mem} GiB, release build.\n")
print("10k-train subset, official 10k test; 5 epochs, batch 32, Adam; adversarial regularization multiplier 0.2, "
      "FGSM step 0.2 L∞ (NSL's tutorial). Attacks: FGSM ε 0.2 L∞ clipped to [0, 1]; transfer = crafted on the base "
      "model; white-box = crafted on the regularized model itself; PGD-40 ε 0.2 step 0.01. Both models see the same "
      "batches (`--seed SEED`) from independent starting weights (the regularized one `--init-seed SEED+1000`), as "
      "NSL's two models do. Means over seeds; NSL "
      "figures (in parentheses) from `../shared/baselines/RESULTS.md`.\n")
print("| model | base clean | base transfer-adv | adv-reg clean | adv-reg transfer-adv | adv-reg white-box FGSM | adv-reg PGD-40 | epoch base / adv-reg (best of seeds) | peak RSS adv-reg |")
print("|---|---|---|---|---|---|---|---|---|")
for model in dict.fromkeys(r[0] for r in rows):
    rs = [[float(x) for x in r[2:]] for r in rows if r[0] == model]
    m = lambda i: st.mean(r[i] for r in rs) * 100
    best = lambda i: min(r[i] for r in rs)
    ref = nsl_ref.get(model, (float("nan"),) * 7)
    print(f"| {model} | {m(0):.1f} % ({ref[0]}) | {m(1):.1f} % ({ref[1]}) | {m(2):.1f} % ({ref[2]}) | {m(3):.1f} % ({ref[3]}) "
          f"| {m(4):.1f} % ({ref[4]}) | {m(5):.1f} % | {best(6):.2f} s / {best(7):.2f} s ({ref[5]} / {ref[6]}) "
          f"| {max(r[9] for r in rs)/1024:.0f} MB |")
print("\nSteady epoch (median of epochs 2–5) per seed, with NSL's own script run right after ours on the same "
      "machine (`../shared/baselines/nsl_mnist_adv.py`; `nan` when its Python environment is absent):\n")
print("| model | seed | nsl base / adv-reg | NSL same run base / adv-reg | adv-reg speed-up |")
print("|---|---|---|---|---|")
for r in rows:
    v = [float(x) for x in r[2:]]
    print(f"| {r[0]} | {r[1]} | {v[6]:.3f} s / {v[7]:.3f} s | {v[10]:.3f} s / {v[11]:.3f} s | {v[11] / v[7]:.1f}× |")
nsl_rows = [r for r in rows if r[14] != "nan"]
if nsl_rows:
    print("\nAccuracy per seed, nsl (this project) against NSL's script on the same seed in the same run (NSL's seeds fix its own "
          "weights and batches, not ours: a seed is a sample, not a pairing). Mean ± standard deviation over the seeds:\n")
    cells = [("base clean", 0, 12), ("base transfer-adv", 1, 13), ("adv-reg clean", 2, 14),
             ("adv-reg transfer-adv", 3, 15), ("adv-reg white-box FGSM", 4, 16)]
    print("| model | seed | " + " | ".join(f"{c[0]}: nsl / NSL" for c in cells) + " |")
    print("|---|---|" + "---|" * len(cells))
    for r in nsl_rows:
        v = [float(x) for x in r[2:]]
        print(f"| {r[0]} | {r[1]} | " + " | ".join(f"{v[a]*100:.1f} / {v[b]*100:.1f}" for _, a, b in cells) + " |")
    for model in dict.fromkeys(r[0] for r in nsl_rows):
        vs = [[float(x) for x in r[2:]] for r in nsl_rows if r[0] == model]
        sd = lambda xs: st.stdev(xs) * 100 if len(xs) > 1 else 0.0
        line = []
        for _, a, b in cells:
            ours, ref = [v[a] for v in vs], [v[b] for v in vs]
            line.append(f"**{st.mean(ours)*100:.1f} ± {sd(ours):.1f}** / {st.mean(ref)*100:.1f} ± {sd(ref):.1f}")
        print(f"| {model} | mean of {len(vs)} | " + " | ".join(line) + " |")
PY
