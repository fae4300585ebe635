#!/usr/bin/env bash
# The robust recipe's training epoch (issue 23, point 5), in one run on one machine and one thread count:
#   (a) OpenBLAS's best f32 GEMM rate (numpy `a @ b` in $TORCHVENV, OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE unset
#       for that command only), measured before and after the training runs, the better one kept;
#   (b) one epoch of `nsl train` with L∞ PGD-k adversarial training on the bundled MNIST's 10k training digits,
#       tutorial CNN (`cnn`);
#   (c) the same recipe in PyTorch (CPU, torch.set_num_threads(THREADS)), a plain PGD-k loop
#       (scripts/bench_robust_epoch.py torch);
#   (d) the recipe's GEMM FLOPs (counted pass by pass, scripts/bench_robust_epoch.py flops) and the share of the
#       GEMM floor (FLOPs / best GEMM rate) each side reaches.
# Each side trains EPOCHS epochs; its best epoch counts (the first pays for warm-up). Prints a Markdown report.
#
#   scripts/bench_robust_epoch.sh [K=10] [EPSILON=0.3] [STEP=0.04] [BATCH=32] [THREADS=2] [EPOCHS=2]
#
# OBJECTIVE=nsl (default: clean + MULTIPLIER × adversarial loss, `--adv-reg multiplier=…`), madry (the
# adversarial loss only; nsl's `objective=madry`) or trades (CE + MULTIPLIER × KL(f(x) ‖ f(x′)), the inner PGD on
# that KL from x + 0.001·N(0, I): nsl's `objective=trades` without random-init, as in
# examples/recipes/robust_mnist.toml). MULTIPLIER defaults to 1 (the recipe: OBJECTIVE=trades MULTIPLIER=3,
# BATCH=64, DENSE=256). DENSE=U widens the CNN's dense layer (default 64, the tutorial CNN; nsl's
# `--model cnn:32,64,64,dense=U`). NSL=path/to/nsl times that binary instead of building target/release/nsl.
set -euo pipefail
cd "$(dirname "$0")/.."
k=${1:-10}
eps=${2:-0.3}
step=${3:-0.04}
batch=${4:-32}
threads=${5:-2}
epochs=${6:-2}
objective=${OBJECTIVE:-nsl}
multiplier=${MULTIPLIER:-1}
dense=${DENSE:-64}
model=cnn
[ "$dense" = 64 ] || model="cnn:32,64,64,dense=$dense"
py=${TORCHVENV:-/tmp/torchvenv}/bin/python
bench=scripts/bench_robust_epoch.py
m=datasets/mnist

if [ -n "${NSL:-}" ]; then
  nsl=$NSL # a binary built beforehand (e.g. while cargo's build lock is held elsewhere)
else
  CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-2} cargo build --release -q
  nsl=target/release/nsl
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
$nsl convert --idx-images $m/train-images-idx3-ubyte.gz --idx-labels $m/train-labels-idx1-ubyte.gz \
  --samples "$work/train.parquet" >/dev/null
samples=$("$py" -c "import pyarrow.parquet as pq; print(pq.read_metadata('$work/train.parquet').num_rows)")

adv="multiplier=$multiplier,norm=inf,pgd-iterations=$k,epsilon=$eps,step-size=$step,clip=0:1"
[ "$objective" = trades ] || adv="$adv,random-init=true"
[ "$objective" = nsl ] || adv="objective=$objective,$adv"
gemm() { env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=$threads "$py" $bench gemm; }

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
gemm > "$work/gemm1.json"
nsl_cmd=($nsl train --samples "$work/train.parquet" --model "$model" --epochs "$epochs" --batch-size "$batch"
  --threads "$threads" --seed 0 --adv-reg "$adv" --out "$work/run" --json)
"${nsl_cmd[@]}" > "$work/nsl.json"
"$py" $bench torch --images $m/train-images-idx3-ubyte.gz --labels $m/train-labels-idx1-ubyte.gz \
  --samples "$samples" --threads "$threads" --epochs "$epochs" --batch-size "$batch" --pgd-iterations "$k" \
  --epsilon "$eps" --step-size "$step" --multiplier "$multiplier" --objective "$objective" --dense "$dense" > "$work/torch.json"
gemm > "$work/gemm2.json"
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
"$py" $bench flops --flop-samples "$samples" --batch-size "$batch" --pgd-iterations "$k" --objective "$objective" \
  --dense "$dense" > "$work/flops.json"

"$py" - "$work" "$load_before" "$load_after" "${nsl_cmd[*]/$work/WORK}" <<'PY'
import json, sys, datetime, platform, subprocess
work, load_before, load_after, cmd = sys.argv[1:5]
rd = lambda f: json.load(open(f"{work}/{f}"))
g1, g2, torch, flops, summary = rd("gemm1.json"), rd("gemm2.json"), rd("torch.json"), rd("flops.json"), rd("nsl.json")
history = rd("run/history.json")["epochs"]
nsl_epochs = [e["seconds"] for e in history]
rate = max(g1["gflops"], g2["gflops"]) * 1e9
floor = flops["epoch"] / rate
nsl_best, torch_best = min(nsl_epochs), torch["best_epoch_seconds"]
cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
model = next((l.split(":", 1)[1].strip() for l in cpu.splitlines() if l.startswith("Model name")), "?")
print(f"- **When:** {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; load average before / after: "
      f"{load_before} / {load_after}")
print(f"- **Machine:** {model}, {subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} cores; "
      f"PyTorch {torch['torch']} ({torch['threads']} threads); numpy's OpenBLAS {g1['blas'].get('version', '?')} "
      f"({g1['blas'].get('architecture', '?')} kernels, {g1['blas'].get('num_threads', '?')} threads)")
print(f"- **nsl:** `{cmd}`")
print(f"- **Recipe FLOPs:** {flops['epoch'] / 1e12:.3f} TFLOP per epoch ({flops['per_image'] / 1e6:.1f} MFLOP per "
      f"image: forward {flops['forward_per_image'] / 1e6:.2f}, PGD step {flops['pgd_step_per_image'] / 1e6:.2f}, "
      f"training pass {flops['train_pass_per_image'] / 1e6:.2f})")
print(f"- **GEMM:** best OpenBLAS f32 rate {g1['gflops']:.0f} GFLOP/s before, {g2['gflops']:.0f} after; floor = "
      f"FLOPs / {rate / 1e9:.0f} GFLOP/s = {floor:.2f} s\n")
print("| side | epochs (s) | best epoch (s) | GFLOP/s | share of the GEMM floor | adversarial train accuracy, last epoch |")
print("|---|---|---|---|---|---|")
row = lambda name, eps, best, acc: print(
    f"| {name} | {' / '.join(f'{e:.2f}' for e in eps)} | {best:.2f} | {flops['epoch'] / best / 1e9:.0f} | "
    f"{floor / best:.0%} | {acc} |")
row("nsl", nsl_epochs, nsl_best, f"{summary['final_train_accuracy']:.3f} (clean batches)")
row("PyTorch", torch["epoch_seconds"], torch_best, f"{torch['last_epoch_adv_train_accuracy']:.3f}")
print(f"\nnsl's epoch is **{torch_best / nsl_best:.2f}×** faster than PyTorch's and at **{floor / nsl_best:.0%}** of "
      f"the GEMM floor.")
PY
