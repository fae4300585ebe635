"""NSL's Cora tutorial: graph regularization of an MLP by the citation graph (python cora_graph_reg.py [EPOCHS])."""
import random, sys
from pathlib import Path
import numpy as np
import nsl_rs

data = Path(__file__).resolve().parents[2] / "datasets/cora"
cora = nsl_rs.read_samples(data / "cora.content.gz")
graph = nsl_rs.read_graph(data / "cora.cites.gz")  # undirected, weight 1 (nsl convert --cites)
random.seed(1)  # NSL's split: each paper goes to training with probability 0.8
train = np.array([random.uniform(0, 1) <= 0.8 for _ in cora.ids])
ids = np.array(cora.ids)
model = nsl_rs.NSLClassifier(model="mlp:50,50", dropout=0.5, batch_size=128, epochs=int(sys.argv[1]) if sys.argv[1:] else 100,
                             graph_reg={"multiplier": 0.1, "neighbors": 1, "distance": "l2"}, threads=1, verbose="lines")
# The test papers may be neighbors (pool) without their labels, as in the tutorial.
model.fit(cora.X[train], cora.y[train], ids=ids[train], graph=graph, pool=(cora.X[~train], ids[~train]))
print(f"test accuracy {model.score(cora.X[~train], cora.y[~train]):.4f}")
