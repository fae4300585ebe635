#!/usr/bin/env python3
"""Cross-checks `nsl evaluate --attack autoattack` against torchattacks' AutoAttack on the same weights.

Loads an nsl CNN run (`nsl train --model cnn`, NSL's tutorial network: conv 32-64-64 3×3 with ReLU,
2×2 max-pools between the convolutions, dense 64, logits) into the equivalent PyTorch module, checks
that both give the same clean predictions on the first N MNIST test digits, then runs

  * `nsl evaluate --attack autoattack` on the same digits (a Parquet file of the first N rows): APGD-CE,
    APGD-T, FAB-T, Square 5,000 queries, each on the points still robust;
  * the same sequence in torchattacks with the reference's standard settings (fra31/auto-attack,
    `version='standard'`): APGD(loss='ce', steps=100), APGDT(steps=100, n_classes=10),
    FAB(multi_targeted=True, steps=100, n_classes=10), Square(n_queries=5000, resc_schedule=False),
    one restart each, seed 0, as a MultiAttack in batches of 250. (torchattacks' own
    `AutoAttack(version='standard')` leaves APGD and FAB at its 10-step defaults and rescales Square's
    schedule, a weaker evaluation: `--torchattacks-autoattack` runs it as well);

all on the same number of threads, at `--norm Linf` or `L2`, and prints each robust accuracy (they must
agree within 1 point), wall time and CPU time (user + system: on a shared machine the wall times depend
on the other load).

  /tmp/torchvenv/bin/python scripts/autoattack_crosscheck.py --run RUN --samples test.parquet \\
      [--n 1000] [--norm Linf] [--eps 0.3] [--threads 2] [--nsl target/release/nsl] [--json]

`--samples` is the MNIST test set as `nsl convert` writes it (a `features` column of 784 floats in
[0, 1], a `label` column, metadata `nsl.item_shape = 1,28,28`). `--skip-standard` leaves out the
torchattacks run (nsl alone).
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np
import pyarrow.parquet as pq
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.numpy import load_file


class NslCnn(nn.Module):
  """nsl's `Cnn` (src/model/net.rs): convolutions (valid padding) + ReLU, a max-pool after every
  convolution but the last, flatten in [C, H, W] order, dense layers + ReLU, logits."""

  def __init__(self, spec, weights, input_shape):
    super().__init__()
    c, h, w = input_shape
    self.pool = spec["pool"]
    self.convs = nn.ModuleList()
    for i, filters in enumerate(spec["filters"]):
      conv = nn.Conv2d(c, filters, spec["kernel"])
      conv.weight.data = torch.from_numpy(weights[f"conv{i}.weight"].copy())  # [O, C, kh, kw] as torch
      conv.bias.data = torch.from_numpy(weights[f"conv{i}.bias"].copy())
      self.convs.append(conv)
      c = filters
    self.dense = nn.ModuleList()
    for i in range(len(spec["dense"])):
      self.dense.append(self._linear(weights, f"dense{i}"))
    self.logits = self._linear(weights, "logits")
    if spec.get("activation", "relu") != "relu":
      raise ValueError(f"only ReLU networks are supported, the run has {spec['activation']}")

  @staticmethod
  def _linear(weights, name):
    w = weights[f"{name}.weight"]  # nsl stores [in, out]
    layer = nn.Linear(w.shape[0], w.shape[1])
    layer.weight.data = torch.from_numpy(w.T.copy())
    layer.bias.data = torch.from_numpy(weights[f"{name}.bias"].copy())
    return layer

  def forward(self, x):
    for i, conv in enumerate(self.convs):
      x = F.relu(conv(x))
      if i + 1 < len(self.convs):
        x = F.max_pool2d(x, self.pool)
    x = torch.flatten(x, 1)
    for layer in self.dense:
      x = F.relu(layer(x))
    return self.logits(x)


def children_cpu():
  """User + system CPU seconds of the finished child processes (nsl)."""
  usage = resource.getrusage(resource.RUSAGE_CHILDREN)
  return usage.ru_utime + usage.ru_stime


def load_run(run):
  meta = json.load(open(os.path.join(run, "model.json")))
  spec = meta["spec"]
  if spec["type"] != "cnn":
    raise SystemExit(f"{run}: not a cnn run ({spec['type']})")
  weights = load_file(os.path.join(run, "model.safetensors"))
  model = NslCnn(spec, weights, (1, 28, 28)).eval()
  for p in model.parameters():
    p.requires_grad_(False)
  return model


def robust_accuracy(model, adv, y):
  with torch.no_grad():
    return float((model(adv).argmax(1) == y).float().mean())


def run_torchattacks(model, x, y, norm, eps, faithful, bs=250):
  import torchattacks  # pylint: disable=import-outside-toplevel
  if faithful:
    attack = torchattacks.MultiAttack([
        torchattacks.APGD(model, norm=norm, eps=eps, steps=100, seed=0, loss="ce", n_restarts=1),
        torchattacks.APGDT(model, norm=norm, eps=eps, steps=100, seed=0, n_classes=10, n_restarts=1),
        torchattacks.FAB(model, norm=norm, eps=eps, steps=100, seed=0, multi_targeted=True, n_classes=10,
                         n_restarts=1),
        torchattacks.Square(model, norm=norm, eps=eps, seed=0, n_queries=5000, n_restarts=1, resc_schedule=False),
    ])
  else:
    attack = torchattacks.AutoAttack(model, norm=norm, eps=eps, version="standard", n_classes=10, seed=0)
  start, cpu = time.time(), time.process_time()
  adv = torch.cat([attack(x[i:i + bs], y[i:i + bs]).detach() for i in range(0, len(x), bs)])
  seconds, cpu = time.time() - start, time.process_time() - cpu
  delta = (adv - x).reshape(len(x), -1)
  size = delta.abs().max(1)[0] if norm == "Linf" else delta.norm(dim=1)
  # MultiAttack keeps a point only if it is misclassified; FAB's are checked against ε by FAB itself.
  if float(size.max()) > eps * (1 + 1e-5):
    raise SystemExit(f"torchattacks returned a perturbation larger than eps ({float(size.max())})")
  return robust_accuracy(model, adv, y), seconds, cpu


def main():
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("--run", required=True, help="nsl run directory of a cnn")
  ap.add_argument("--samples", required=True, help="MNIST test set as nsl convert writes it (Parquet)")
  ap.add_argument("--n", type=int, default=1000, help="first N digits (default 1000)")
  ap.add_argument("--norm", choices=["Linf", "L2"], default="Linf", help="threat model (default Linf)")
  ap.add_argument("--eps", type=float, default=0.3, help="radius (default 0.3)")
  ap.add_argument("--threads", type=int, default=2, help="threads for both (default 2)")
  ap.add_argument("--nsl", default="target/release/nsl", help="the nsl binary")
  ap.add_argument("--skip-standard", action="store_true", help="skip torchattacks' run of the standard sequence")
  ap.add_argument("--torchattacks-autoattack", action="store_true",
                  help="also run torchattacks' own AutoAttack(version='standard') (10-step APGD and FAB)")
  ap.add_argument("--json", action="store_true", help="print one JSON object")
  args = ap.parse_args()

  torch.set_num_threads(args.threads)
  table = pq.read_table(args.samples).slice(0, args.n)
  x = torch.from_numpy(np.stack(table.column("features").to_numpy(zero_copy_only=False)).astype(np.float32))
  x = x.reshape(-1, 1, 28, 28)
  y = torch.from_numpy(table.column("label").to_numpy().astype(np.int64))
  model = load_run(args.run)
  result = {"n": args.n, "norm": args.norm, "eps": args.eps, "threads": args.threads}

  with tempfile.TemporaryDirectory() as tmp:
    subset = os.path.join(tmp, "subset.parquet")
    pq.write_table(table, subset)
    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads))
    # Clean predictions must agree.
    with torch.no_grad():
      torch_pred = model(x).argmax(1)
    out = subprocess.run([args.nsl, "predict", "--run", args.run, "--samples", subset], env=env, check=True,
                         capture_output=True, text=True).stdout.splitlines()
    nsl_pred = np.array([int(line.split(",")[1]) for line in out[1:]])
    disagree = int((nsl_pred != torch_pred.numpy()).sum())
    result["clean_accuracy_torch"] = float((torch_pred == y).float().mean())
    result["clean_prediction_disagreements"] = disagree
    if disagree:
      print(f"warning: {disagree} clean predictions differ between nsl and the PyTorch port", file=sys.stderr)

    start, cpu = time.time(), children_cpu()
    out = subprocess.run([args.nsl, "evaluate", "--run", args.run, "--samples", subset, "--attack", "autoattack",
                          "--norm", {"Linf": "inf", "L2": "l2"}[args.norm], "--epsilon", str(args.eps), "--clip", "0:1", "--seed", "0", "--threads", str(args.threads),
                          "--json"], env=env, check=True, capture_output=True, text=True)
    result["nsl_seconds"], result["nsl_cpu_seconds"] = time.time() - start, children_cpu() - cpu
    nsl = json.loads(out.stdout)
    result["nsl_clean_accuracy"] = nsl["accuracy"]
    result["nsl_stages"] = {s["attack"]: s["robust_accuracy"] for s in nsl["results"][0]["stages"]}
    result["nsl_robust_accuracy"] = nsl["robust_accuracy"][0]
    result["nsl_masking_check"] = [w["message"] for w in nsl["masking_check"]["warnings"]]

  runs = [] if args.skip_standard else [("torchattacks_standard", True)]
  if args.torchattacks_autoattack:
    runs.append(("torchattacks_autoattack", False))
  for key, faithful in runs:
    acc, seconds, cpu = run_torchattacks(model, x, y, args.norm, args.eps, faithful)
    result[key + "_robust_accuracy"], result[key + "_seconds"], result[key + "_cpu_seconds"] = acc, seconds, cpu
    if args.json:
      print(json.dumps(result), file=sys.stderr, flush=True)

  if args.json:
    print(json.dumps(result, indent=1))
    return
  print(f"{args.n} MNIST test digits, {args.norm} ε={args.eps}, {args.threads} threads; "
        f"clean predictions that differ: {disagree}")
  print(f"nsl autoattack (APGD-CE, APGD-T, FAB-T, Square 5000): robust {result['nsl_robust_accuracy']:.4f} "
        f"(clean {result['nsl_clean_accuracy']:.4f}; stages {result['nsl_stages']}), {result['nsl_seconds']:.1f} s "
        f"wall, {result['nsl_cpu_seconds']:.1f} s CPU")
  for key, name in [("torchattacks_standard", "torchattacks APGD-CE, APGD-T, FAB-T, Square 5000 (reference settings)"),
                    ("torchattacks_autoattack", "torchattacks AutoAttack(version='standard') (10-step APGD, FAB)")]:
    if key + "_seconds" in result:
      acc, seconds, cpu = result[key + "_robust_accuracy"], result[key + "_seconds"], result[key + "_cpu_seconds"]
      agree = "agrees" if abs(acc - result["nsl_robust_accuracy"]) <= 0.01 else "DOES NOT AGREE"
      print(f"{name}: robust {acc:.4f} ({agree} within 1 point), {seconds:.1f} s wall, {cpu:.1f} s CPU "
            f"(nsl {seconds / result['nsl_seconds']:.2f}× faster in wall time, "
            f"{cpu / result['nsl_cpu_seconds']:.2f}× in CPU time)")


if __name__ == "__main__":
  main()
