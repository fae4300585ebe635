#!/usr/bin/env bash
# Issue 27, "must show": the 10,000 bundled MNIST test digits written as a folder of PNGs (one
# subfolder per digit, scripts/mnist_png.py, Pillow) and read back with `nsl convert --images` give
# the same features and labels as `nsl convert --idx-images`, bit for bit; and so do the digits as a
# uint8 `.npy` (+ labels `.npy`), and a Parquet → `.npz` → Parquet round trip (ids included).
#
#   scripts/images_roundtrip.sh [WORK_DIR]     (PYTHON: a Python with numpy, pyarrow and Pillow;
#                                               default /tmp/pyvenv/bin/python)
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-/tmp/pyvenv/bin/python}
nsl=${NSL:-target/release/nsl}
work=${1:-$(mktemp -d)}
mkdir -p "$work"
m=datasets/mnist
rm -rf "$work/png"
"$py" scripts/mnist_png.py $m/t10k-images-idx3-ubyte.gz $m/t10k-labels-idx1-ubyte.gz "$work/png" --npy "$work/t10k.npy"
$nsl convert --quiet --idx-images $m/t10k-images-idx3-ubyte.gz --idx-labels $m/t10k-labels-idx1-ubyte.gz --samples "$work/idx.parquet"
$nsl convert --quiet --images "$work/png" --samples "$work/png.parquet"
$nsl convert --quiet --npy "$work/t10k.npy" --labels "$work/t10k.labels.npy" --samples "$work/npy.parquet"
$nsl convert --quiet --parquet "$work/idx.parquet" --samples "$work/idx.npz"
$nsl convert --quiet --npy "$work/idx.npz" --samples "$work/npz.parquet"
$nsl convert --quiet --parquet "$work/idx.parquet" --samples "$work/idx.npy" 2>/dev/null
"$py" - "$work" <<'PY'
import sys
import numpy as np
import pyarrow.parquet as pq

work = sys.argv[1]
def load(name):
    t = pq.read_table(f"{work}/{name}")
    x = np.stack(t.column("features").to_numpy(zero_copy_only=False)).astype(np.float32)
    return t.column("id").to_pylist(), x, t.column("label").to_numpy(), t.schema.metadata
ids, x, y, meta = load("idx.parquet")
assert x.shape == (10000, 784) and meta[b"nsl.item_shape"] == b"1,28,28"

# PNG folder: ids are "<digit>/<index>.png", in the order (class, index); map back to the IDX rows.
pids, px, py_, pmeta = load("png.parquet")
rows = np.array([int(i.split("/")[1][:-4]) for i in pids])
assert sorted(rows.tolist()) == list(range(10000))
assert pmeta[b"nsl.item_shape"] == b"1,28,28", pmeta
same = np.array_equal(px.view(np.uint32), x[rows].view(np.uint32))
labels = np.array_equal(py_, y[rows]) and all(i.split("/")[0] == str(l) for i, l in zip(pids, y[rows]))
print(f"PNG folder vs IDX: features bit for bit: {same}; labels (class folder = digit): {labels}")
assert same and labels

for name, what in [("npy.parquet", ".npy (uint8) + labels .npy"), ("npz.parquet", "Parquet → .npz → Parquet")]:
    nids, nx, ny, _ = load(name)
    ok = nids == ids and np.array_equal(nx.view(np.uint32), x.view(np.uint32)) and np.array_equal(ny, y)
    print(f"{what} vs IDX: ids, features (bits) and labels equal: {ok}")
    assert ok
a = np.load(f"{work}/idx.npy")
ok = a.dtype == np.float32 and a.shape == (10000, 1, 28, 28) and np.array_equal(a.reshape(10000, -1).view(np.uint32), x.view(np.uint32))
print(f"--samples idx.npy read by numpy: {a.dtype} {a.shape}, bit for bit: {ok}")
assert ok
z = np.load(f"{work}/idx.npz")
ok = sorted(z.files) == ["features", "id", "label"] and z["id"][3] == ids[3]
print(f"--samples idx.npz read by numpy (no pickle): keys {sorted(z.files)}: {ok}")
assert ok
PY
