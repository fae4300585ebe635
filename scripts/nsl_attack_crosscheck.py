#!/usr/bin/env python3
"""Cross-checks `nsl evaluate --attack fgsm` against NSL's own attack code on the same models.

Loads nsl runs (`nsl train --out DIR`, models `cnn` or `mlp:256,128`) into the Keras networks of NSL's
baseline script (`../shared/baselines/nsl_mnist_adv.py`), then perturbs the official MNIST test set
with NSL's `AdversarialRegularization.perturb_on_batch` (FGSM, step 0.2, L∞, batches of 32, clipped to
[0, 1], as NSL's tutorial does) crafted on each run in turn, and prints every run's accuracy on every
perturbed set. `nsl evaluate --run B --attack-from A --attack fgsm --epsilon 0.2 --clip 0:1` must print
the same accuracies (the perturbation is a sign, so only float rounding at exact zeros could differ).

Needs NSL's Python environment (`../shared/baselines/setup.sh`):

  /tmp/tfvenv/bin/python scripts/nsl_attack_crosscheck.py RUN_DIR [RUN_DIR ...]
  /tmp/tfvenv/bin/python scripts/nsl_attack_crosscheck.py RUN_DIR ... --nsl-weights FILE.npz

`--nsl-weights` adds models trained by NSL's script (a `.npz` of `model.get_weights()` of its base
network, then of its adversarially-regularized one).
"""
import argparse
import json
import os
import struct
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
BASELINES = os.environ.get(
    "NSL_BASELINES",
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "baselines"))
sys.path.insert(0, BASELINES)

import numpy as np  # pylint: disable=g-import-not-at-top
import tensorflow as tf  # pylint: disable=g-import-not-at-top
import neural_structured_learning as nsl  # pylint: disable=g-import-not-at-top
import common  # pylint: disable=g-import-not-at-top
import nsl_mnist_adv  # pylint: disable=g-import-not-at-top


def read_safetensors(path):
  """The tensors of a safetensors file, as float32 numpy arrays by name."""
  with open(path, "rb") as f:
    raw = f.read()
  n, = struct.unpack("<Q", raw[:8])
  header = json.loads(raw[8:8 + n])
  out = {}
  for name, v in header.items():
    if name == "__metadata__":
      continue
    if v["dtype"] != "F32":
      raise ValueError(f"{path}: tensor {name} is {v['dtype']}, expected F32")
    start, end = v["data_offsets"]
    out[name] = np.frombuffer(raw[8 + n + start:8 + n + end], dtype=np.float32).reshape(v["shape"])
  return out


def keras_model(run):
  """NSL's Keras network for an nsl run, with the run's weights."""
  spec = json.load(open(os.path.join(run, "model.json")))["spec"]
  w = read_safetensors(os.path.join(run, "model.safetensors"))
  hp = nsl_mnist_adv.HParams()
  dense = []
  if spec["type"] == "cnn":
    if spec["filters"] != hp.conv_filters or spec["dense"] != hp.num_fc_units:
      raise ValueError(f"{run}: not NSL's tutorial CNN: {spec}")
    model = nsl_mnist_adv.build_cnn(hp)
    convs = [l for l in model.layers if isinstance(l, tf.keras.layers.Conv2D)]
    for i, layer in enumerate(convs):  # nsl [O, C, kh, kw] -> Keras [kh, kw, C, O]
      layer.set_weights([w[f"conv{i}.weight"].transpose(2, 3, 1, 0), w[f"conv{i}.bias"]])
    # nsl flattens [C, H, W], Keras [H, W, C]: reorder the first dense layer's rows.
    c = hp.conv_filters[-1]
    first = w["dense0.weight"]
    hw = int(round((first.shape[0] // c) ** 0.5))
    first = first.reshape(c, hw, hw, -1).transpose(1, 2, 0, 3).reshape(first.shape[0], -1)
    dense = [(first, w["dense0.bias"])] + [(w[f"dense{i}.weight"], w[f"dense{i}.bias"])
                                           for i in range(1, len(spec["dense"]))]
  elif spec["type"] == "mlp":
    if spec["hidden"] != [256, 128]:
      raise ValueError(f"{run}: not NSL's baseline MLP 256-128: {spec}")
    model = nsl_mnist_adv.build_mlp(hp)
    dense = [(w[f"hidden{i}.weight"], w[f"hidden{i}.bias"]) for i in range(2)]
  else:
    raise ValueError(f"{run}: unknown model type {spec['type']}")
  dense.append((w["logits.weight"], w["logits.bias"]))
  layers = [l for l in model.layers if isinstance(l, tf.keras.layers.Dense)]
  for layer, (kernel, bias) in zip(layers, dense):  # both [in, out]
    layer.set_weights([kernel, bias])
  return model


def main():
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("runs", nargs="+", help="nsl run directories")
  ap.add_argument("--nsl-weights", help="npz of an NSL base network's weights, then its adv-reg one's")
  ap.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
  args = ap.parse_args()

  models = {run: keras_model(run) for run in args.runs}
  if args.nsl_weights:
    z = np.load(args.nsl_weights)
    weights = [z[f"arr_{i}"] for i in range(len(z.files))]
    kind = "cnn" if weights[0].ndim == 4 else "mlp"
    build = nsl_mnist_adv.build_cnn if kind == "cnn" else nsl_mnist_adv.build_mlp
    base, adv = build(nsl_mnist_adv.HParams()), build(nsl_mnist_adv.HParams())
    k = len(base.get_weights())
    base.set_weights(weights[:k])
    adv.set_weights(weights[k:])
    models["nsl-base"], models["nsl-adv"] = base, adv

  _, (x, y) = common.load_mnist(None)
  x = (x.astype(np.float32) / 255.0)[..., None]
  y = y.astype(np.int64)

  def accuracy(model, images):
    return float(np.mean(np.argmax(model.predict(images, batch_size=1000, verbose=0), 1) == y))

  config = nsl.configs.make_adv_reg_config(multiplier=0.2, adv_step_size=0.2, adv_grad_norm="infinity")
  loss = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
  result = {"clean": {name: accuracy(m, x) for name, m in models.items()}, "crafted_on": {}}
  for source_name, source in models.items():
    reference = nsl.keras.AdversarialRegularization(source, label_keys=["label"], adv_config=config)
    reference.compile(optimizer="adam", loss=loss)
    perturbed = []
    for i in range(0, len(x), 32):
      batch = reference.perturb_on_batch({"image": tf.constant(x[i:i + 32]), "label": tf.constant(y[i:i + 32])})
      perturbed.append(tf.clip_by_value(batch["image"], 0.0, 1.0).numpy())
    perturbed = np.concatenate(perturbed)
    result["crafted_on"][source_name] = {name: accuracy(m, perturbed) for name, m in models.items()}

  if args.json:
    print(json.dumps(result))
    return
  names = list(models)
  print("FGSM ε 0.2 L∞ (NSL's perturb_on_batch, clipped to [0, 1]): accuracy of each model (columns)\n")
  print("| crafted on | " + " | ".join(names) + " |")
  print("|---|" + "---|" * len(names))
  print("| (clean) | " + " | ".join(f"{result['clean'][n]:.4f}" for n in names) + " |")
  for source in names:
    print(f"| {source} | " + " | ".join(f"{result['crafted_on'][source][n]:.4f}" for n in names) + " |")


if __name__ == "__main__":
  main()
