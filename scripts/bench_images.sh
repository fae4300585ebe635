#!/usr/bin/env bash
# Issue 27 benchmark: a folder of 10,000 PNGs (the MNIST test digits, scripts/mnist_png.py) to a
# samples table — `nsl convert --images` against Pillow + numpy + pyarrow doing the same
# (scripts/images_to_parquet_pillow.py, 2 worker processes) — whole process wall time and peak memory
# (/usr/bin/time), REPS interleaved repetitions each (the machine is shared: `uptime` before and after).
# Prints the "images" section of docs/benchmarks.md:
#
#   scripts/bench_images.sh [REPS=5] | scripts/bench_section.py images
set -euo pipefail
cd "$(dirname "$0")/.."
reps=${1:-5}
py=${PYTHON:-/tmp/pyvenv/bin/python}
nsl=${NSL:-target/release/nsl}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
m=datasets/mnist
"$py" scripts/mnist_png.py $m/t10k-images-idx3-ubyte.gz $m/t10k-labels-idx1-ubyte.gz "$work/png" >/dev/null
up_before=$(uptime)
run() { # name command… → appends "name seconds peak_kib" to $work/times
  local name=$1; shift
  /usr/bin/time -f "%e %M" -o "$work/t" "$@" >/dev/null 2>&1
  echo "$name $(cat "$work/t")" >>"$work/times"
}
sync
for _ in $(seq "$reps"); do
  run nsl $nsl convert --quiet --images "$work/png" --samples "$work/nsl.parquet"
  run pillow "$py" scripts/images_to_parquet_pillow.py "$work/png" "$work/py.parquet" --workers 2
done
up_after=$(uptime)
# The two tables hold the same values (the reference sorts and scales as nsl does).
"$py" - "$work" <<'PY'
import sys, numpy as np, pyarrow.parquet as pq
a, b = (pq.read_table(f"{sys.argv[1]}/{n}.parquet") for n in ("nsl", "py"))
assert a.column("id").to_pylist() == b.column("id").to_pylist()
fa, fb = (np.stack(t.column("features").to_numpy(zero_copy_only=False)) for t in (a, b))
assert np.array_equal(fa.view(np.uint32), fb.view(np.uint32)), "features differ"
PY
python3 - "$work/times" "$reps" "$up_before" "$up_after" <<'PY'
import statistics, subprocess, sys, datetime
rows = [l.split() for l in open(sys.argv[1])]
t = {n: [float(s) for m, s, _ in rows if m == n] for n in ("nsl", "pillow")}
mem = {n: max(int(k) for m, _, k in rows if m == n) / 1024 for n in ("nsl", "pillow")}
cpu = subprocess.run("lscpu | grep 'Model name'", shell=True, capture_output=True, text=True).stdout.split(":", 1)[1].strip()
med = {n: statistics.median(v) for n, v in t.items()}
print(f"""## 10,000 PNGs to a samples table (issue 27, helper images, {datetime.date.today()})

`scripts/bench_images.sh {sys.argv[2]} | scripts/bench_section.py images` — the 10,000 MNIST test digits as 8-bit
gray PNGs in one folder per class (`scripts/mnist_png.py`), converted to a Parquet samples table (ids, [1, 28, 28]
features / 255, labels, class names; zstd), whole process (`/usr/bin/time`), {sys.argv[2]} interleaved repetitions.
Reference: Pillow + numpy + pyarrow doing the same (`scripts/images_to_parquet_pillow.py`, 2 worker processes);
both tables hold the same ids and features bit for bit (checked). {cpu}, 2 cores, shared with other work:
`uptime` before: `{sys.argv[3].strip()}`; after: `{sys.argv[4].strip()}`.

| | median s | runs (s) | peak RSS |
|---|---|---|---|
| `nsl convert --images` | {med['nsl']:.2f} | {', '.join(f'{v:.2f}' for v in t['nsl'])} | {mem['nsl']:.0f} MiB |
| Pillow + numpy + pyarrow (2 processes) | {med['pillow']:.2f} | {', '.join(f'{v:.2f}' for v in t['pillow'])} | {mem['pillow']:.0f} MiB (parent) |

nsl is **{med['pillow'] / med['nsl']:.1f}×** faster (medians).""")
PY
