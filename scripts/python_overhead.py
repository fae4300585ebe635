#!/usr/bin/env python3
"""Python's overhead over the CLI: the same runs through `nsl train` and through nsl_rs's estimator.

    scripts/python_overhead.py [NSL_BIN] [--repeats N]

For each run (the Cora recipe, the few-labels recipe, MNIST adversarial on a small MLP — 2 epochs, a
quick check —, and NSL's adversarial tutorial as it is: its CNN, batch 32, 5 epochs) it times, interleaved,
`nsl train …` and a Python process that reads the same files with nsl_rs.read_samples, fits the
estimator with the same settings and saves the run (interpreter start and imports included), and
prints the medians of: wall and CPU times (user + system) of each side, the per-repetition ratios
Python / CLI (the whole Python process; and the Python process after its imports — reading the
files, fit, save: the CLI's work — over the whole CLI process; and the whole Python process but
numpy's import, which a user passing numpy arrays has paid already), numpy's and nsl_rs's imports,
and whether both wrote the same weights. nsl_rs's Python files are compiled to bytecode first, as
`pip install` does. On a loaded machine the wall times mostly measure
waiting; the interleaved ratios and the CPU times are what each side costs.
Needs the nsl_rs package installed (maturin develop --release) and target/release/nsl.
"""
import argparse
import hashlib
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PY = """
import time
t0 = time.perf_counter()
import sys, tomllib, numpy as np
tn = time.perf_counter()
import nsl_rs
t1 = time.perf_counter()
kind, out, d = sys.argv[1], sys.argv[2], sys.argv[3]
r = lambda name: nsl_rs.read_samples(f"{d}/{name}")
if kind == "cora":
    t, p = r("train.parquet"), r("test.parquet")
    est = nsl_rs.NSLClassifier(graph_reg="multiplier=0.1,neighbors=1", epochs=100, batch_size=128, seed=3, threads=1, verbose=False)
    est.fit(t.X, t.y, ids=t.ids, graph=f"{d}/g.parquet", pool=(p.X, p.ids))
elif kind == "few":
    s = tomllib.loads(open(sys.argv[4]).read()); s.update(seed=2, threads=1)
    t, u = r("tr.parquet"), r("un.parquet")
    est = nsl_rs.NSLClassifier(**s, verbose=False)
    est.fit(t.X, t.y, ids=t.ids, graph=f"{d}/g.parquet", unlabeled=(u.X, u.ids))
elif kind == "mnist":
    t = r("mnist.parquet")
    est = nsl_rs.NSLClassifier(model="mlp:256,128", dropout=0.0, epochs=2, threads=1, verbose=False,
                               adv_reg="multiplier=0.2,step-size=0.2,norm=inf")
    est.fit(t.X, t.y, ids=t.ids)
else:
    t = r("mnist.parquet")
    est = nsl_rs.NSLClassifier(model="cnn", epochs=5, batch_size=32, threads=1, verbose=False,
                               adv_reg="multiplier=0.2,step-size=0.2,norm=inf")
    est.fit(t.X, t.y, ids=t.ids)
est.save(out)
print(t1 - t0, time.perf_counter() - t1, tn - t0)
"""


def run(cmd):
    """Wall and CPU seconds (user + system of the child) of `cmd`, and its standard output."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), done.stdout


def nsl_rs_dir():
    """The installed nsl_rs package's directory (found without importing it)."""
    import importlib.util

    spec = importlib.util.find_spec("nsl_rs")
    if spec is None or spec.origin is None:
        sys.exit("nsl_rs is not installed (cd python && maturin develop --release)")
    return Path(spec.origin).parent


def digest(run_dir):
    return hashlib.sha256((Path(run_dir) / "model.safetensors").read_bytes()).hexdigest()[:16]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("nsl", nargs="?", default=str(ROOT / "target/release/nsl"))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--runs", default="cora,few,mnist,tutorial",
                    help="comma-separated subset of cora, few, mnist, tutorial")
    args = ap.parse_args()
    nsl = args.nsl
    with tempfile.TemporaryDirectory() as d:
        cora, mnist = ROOT / "datasets/cora", ROOT / "datasets/mnist"
        prep = [
            [nsl, "convert", "--content", cora / "cora.content.gz", "--cites", cora / "cora.cites.gz",
             "--samples", f"{d}/cora.parquet", "--graph", f"{d}/g.parquet"],
            [nsl, "split", f"{d}/cora.parquet", "--method", "nsl", "--seed", "1", "--train", "0.8",
             "--out-train", f"{d}/train.parquet", "--out-test", f"{d}/test.parquet"],
            [nsl, "split", f"{d}/cora.parquet", "--split-table", cora / "cora.planetoid_split.tsv",
             "--out-train", f"{d}/tr.parquet", "--out-test", f"{d}/te.parquet", "--out-unlabeled", f"{d}/un.parquet"],
            [nsl, "convert", "--idx-images", mnist / "train-images-idx3-ubyte.gz",
             "--idx-labels", mnist / "train-labels-idx1-ubyte.gz", "--samples", f"{d}/mnist.parquet"],
        ]
        for cmd in prep:
            subprocess.run([str(c) for c in cmd], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        recipe = str(ROOT / "examples/recipes/few_labels_kl.toml")
        runs = {
            "cora": [f"--samples={d}/train.parquet", f"--pool={d}/test.parquet", f"--graph={d}/g.parquet",
                     "--graph-reg=multiplier=0.1,neighbors=1", "--epochs=100", "--batch-size=128", "--seed=3"],
            "few": [f"--config={recipe}", f"--samples={d}/tr.parquet", f"--unlabeled={d}/un.parquet",
                    f"--graph={d}/g.parquet", "--seed=2"],
            "mnist": [f"--samples={d}/mnist.parquet", "--model=mlp:256,128", "--dropout=0", "--epochs=2",
                      "--adv-reg=multiplier=0.2,step-size=0.2,norm=inf"],
            # NSL's adversarial tutorial as it is: its CNN (conv 32-64-64, dense 64), batch 32, 5
            # epochs, multiplier 0.2, step 0.2, L∞ (on the bundled 10,000 digits, not 60,000).
            "tutorial": [f"--samples={d}/mnist.parquet", "--model=cnn", "--epochs=5", "--batch-size=32",
                         "--adv-reg=multiplier=0.2,step-size=0.2,norm=inf"],
        }
        # The package's Python files compiled to bytecode first, as `pip install` does (an editable
        # `maturin develop` install under PYTHONDONTWRITEBYTECODE=1 would compile them in every
        # process: ~15 ms of CPU that no installed wheel pays).
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(Path(nsl_rs_dir()))], check=True)
        print(f"{'run':8} {'cli s':>7} {'py s':>7} {'ratio':>6} {'py-imp s':>8} {'ratio':>6} {'no-np':>6} "
              f"{'cli cpu':>7} {'py cpu':>7} {'ratio':>6} {'numpy':>6} {'nsl_rs':>6}  same weights")
        for name, flags in runs.items():
            if name not in args.runs.split(","):
                continue
            cli, py = [], []
            for i in range(args.repeats):
                # Alternate which goes first, so that a change of load hits both sides alike.
                pair = [
                    ("cli", [nsl, "train", *flags, "--threads=1", f"--out={d}/{name}-cli"]),
                    ("py", [sys.executable, "-c", PY, name, f"{d}/{name}-py", d, recipe]),
                ]
                for side, cmd in pair if i % 2 == 0 else pair[::-1]:
                    (cli if side == "cli" else py).append(run(cmd))
            med = statistics.median
            # Per repetition: the Python process over the CLI process (wall, CPU), and the Python
            # process after its imports (reading the files, fit, save: the CLI's work) over the CLI.
            wall = med(p[0] / c[0] for c, p in zip(cli, py))
            cpu = med(p[1] / c[1] for c, p in zip(cli, py))
            after = med(float(p[2].split()[1]) / c[0] for c, p in zip(cli, py))
            # The whole Python process but numpy's import, over the CLI: what a user who already
            # imported numpy (to make the arrays) waits for.
            no_numpy = med((p[0] - float(p[2].split()[2])) / c[0] for c, p in zip(cli, py))
            numpy_s = med(float(p[2].split()[2]) for p in py)
            nsl_s = med(float(p[2].split()[0]) - float(p[2].split()[2]) for p in py)
            same = digest(f"{d}/{name}-cli") == digest(f"{d}/{name}-py")
            print(f"{name:8} {med(c[0] for c in cli):7.2f} {med(p[0] for p in py):7.2f} {wall:6.3f} "
                  f"{med(float(p[2].split()[1]) for p in py):8.2f} {after:6.3f} {no_numpy:6.3f} "
                  f"{med(c[1] for c in cli):7.2f} {med(p[1] for p in py):7.2f} {cpu:6.3f} {numpy_s:6.3f} "
                  f"{nsl_s:6.3f}  {same}", flush=True)


if __name__ == "__main__":
    main()
