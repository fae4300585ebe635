#!/usr/bin/env bash
# Python's overhead over the CLI (issue 24): the Cora recipe, the few-labels recipe, MNIST
# adversarial on a small MLP (2 epochs) and NSL's adversarial tutorial (its CNN, 5 epochs), each through `nsl train` and through nsl_rs's estimator in a fresh Python process,
# interleaved (the order alternates), REPEATS times; prints the machine's load before and after
# (the machine is shared: rely on the ratios) and scripts/python_overhead.py's table.
#
#   scripts/python_overhead.sh [NSL_BIN] [REPEATS] [RUNS]
#
# NSL_BIN defaults to target/release/nsl, REPEATS to 5, RUNS to cora,few,mnist,tutorial. PYTHON (default
# python3) must have nsl_rs installed (cd python && maturin develop --release).
set -euo pipefail
cd "$(dirname "$0")/.."
nsl=${1:-target/release/nsl} repeats=${2:-5} runs=${3:-cora,few,mnist,tutorial}
python=${PYTHON:-python3}
echo "$(date -u '+%F %T') UTC, $(lscpu | grep 'Model name' | sed 's/ \+/ /g'), $(nproc) cores"
echo "before: $(uptime)"
"$python" scripts/python_overhead.py "$nsl" --repeats "$repeats" --runs "$runs"
echo "after:  $(uptime)"
