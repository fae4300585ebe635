"""The few-labels recipe (examples/recipes/few_labels_kl.toml) on Planetoid Cora's 140 labels (python few_labels.py [EPOCHS])."""
import csv, sys, tomllib
from pathlib import Path
import numpy as np
import nsl_rs

root = Path(__file__).resolve().parents[2]
cora = nsl_rs.read_samples(root / "datasets/cora/cora.content.gz")
with open(root / "datasets/cora/cora.planetoid_split.tsv") as f:
    part = {row["id"]: row["split"] for row in csv.DictReader(f, delimiter="\t")}
split = np.array([part.get(i, "") for i in cora.ids])
ids = np.array(cora.ids)
settings = tomllib.loads((root / "examples/recipes/few_labels_kl.toml").read_text())  # nsl train's keys
settings["epochs"] = int(sys.argv[1]) if sys.argv[1:] else settings["epochs"]
tr, te = split == "train", split == "test"  # every paper but the 140 is an unlabeled center
model = nsl_rs.NSLClassifier(**settings, verbose="lines")
graph = nsl_rs.read_graph(root / "datasets/cora/cora.cites.gz")
model.fit(cora.X[tr], cora.y[tr], ids=ids[tr], graph=graph, unlabeled=(cora.X[~tr], ids[~tr]))
print(f"test accuracy {model.score(cora.X[te], cora.y[te]):.4f}")
