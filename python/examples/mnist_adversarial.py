"""NSL's MNIST tutorial: adversarial regularization, then a transfer attack (python mnist_adversarial.py [EPOCHS] [SAMPLES]:
SAMPLES training and test digits, default all)."""
import sys
from pathlib import Path
import nsl_rs

mnist = Path(__file__).resolve().parents[2] / "datasets/mnist"
train = nsl_rs.read_samples(mnist / "train-images-idx3-ubyte.gz", labels=mnist / "train-labels-idx1-ubyte.gz")
test = nsl_rs.read_samples(mnist / "t10k-images-idx3-ubyte.gz", labels=mnist / "t10k-labels-idx1-ubyte.gz")
epochs, n = (int(sys.argv[1]), int(sys.argv[2])) if sys.argv[2:] else (5, len(train.ids))
common = dict(model="cnn", epochs=epochs, batch_size=32, seed=0, verbose="lines")
base = nsl_rs.NSLClassifier(**common).fit(train.X[:n], train.y[:n])
adv = nsl_rs.NSLClassifier(**common, init_seed=1000, adv_reg={"multiplier": 0.2, "step_size": 0.2, "norm": "inf"})
adv.fit(train.X[:n], train.y[:n])
for name, model in [("base", base), ("adversarial", adv)]:
    # Perturbations crafted on the base model (NSL's tutorial), clipped to valid pixels.
    r = model.evaluate(test.X[:n], test.y[:n], attack="fgsm", epsilon=[0.05, 0.1, 0.2, 0.3], clip=(0, 1), attack_from=base)
    print(name, f"clean {r['accuracy']:.4f}", "robust", " ".join(f"{a:.4f}" for a in r["robust_accuracy"]))
