#!/usr/bin/env python3
"""Convert a Planetoid data set (the `ind.<name>.*` pickles of Yang et al. 2016, as shipped by
Kipf & Welling's GCN code) into nsl's LINQS layout (datasets/README.md):

    <out>/<name>.content.gz          <id>\t<features…>\t<label>   (ids 0..N-1, labels class_0..)
    <out>/<name>.cites.gz            <id>\t<id>   one line per undirected link, no self-loops, each once
    <out>/<name>.planetoid_split.tsv id\tsplit   (train/val/test/other)

    python scripts/planetoid_to_linqs.py DIR NAME OUT

Node numbering is the one every Planetoid loader uses (GCN's `load_data`, PyG's `Planetoid`):
the rows of `allx` first, then the test rows of `tx` placed at the positions of `test.index`.
Train = the first `len(y)` nodes, validation = the next 500, test = `test.index`, other = the rest.
Citeseer's `test.index` skips 15 positions in its range (papers with no features and no label in
the source): they are written with zero features and label class_0 (PyG's choice, the argmax of an
all-zero label row), in the split `other`, so they are never scored.

Features are written as integers when they all are (Cora, Citeseer: binary words), otherwise with
`repr` (TF-IDF values). Needs numpy and scipy (the pickles hold scipy sparse matrices).
"""
import gzip
import os
import pickle
import sys

import numpy as np
import scipy.sparse as sp


def load(directory, name, part):
    with open(os.path.join(directory, f"ind.{name}.{part}"), "rb") as f:
        return pickle.load(f, encoding="latin1")


def main():
    directory, name, out = sys.argv[1:4]
    x, y, tx, ty, allx, ally, graph = (load(directory, name, p) for p in ["x", "y", "tx", "ty", "allx", "ally", "graph"])
    with open(os.path.join(directory, f"ind.{name}.test.index")) as f:
        test_index = [int(line) for line in f if line.strip()]
    lo, hi = min(test_index), max(test_index)
    n = max(hi + 1, allx.shape[0] + tx.shape[0])
    assert allx.shape[0] == lo, (allx.shape, lo)
    features = sp.lil_matrix((n, allx.shape[1]), dtype=np.float64)
    labels = np.zeros((n, ally.shape[1]))
    features[: allx.shape[0]] = allx
    labels[: ally.shape[0]] = ally
    features[test_index] = tx
    labels[test_index] = ty
    features = features.tocsr()
    missing = sorted(set(range(lo, hi + 1)) - set(test_index))
    label_index = labels.argmax(axis=1)
    no_label = np.flatnonzero(labels.sum(axis=1) == 0)
    assert set(no_label) == set(missing), (no_label, missing)
    n_train = y.shape[0]
    assert (x != allx[:n_train]).nnz == 0 and (y == ally[:n_train]).all()

    split = ["other"] * n
    for i in range(n_train):
        split[i] = "train"
    for i in range(n_train, n_train + 500):
        split[i] = "val"
    for i in test_index:
        split[i] = "test"
    assert not any(split[i] == "test" for i in missing)

    links = set()
    self_loops = 0
    for a, neighbors in graph.items():
        for b in neighbors:
            if a == b:
                self_loops += 1
            else:
                links.add((min(a, b), max(a, b)))
    assert max(max(link) for link in links) < n

    os.makedirs(out, exist_ok=True)
    dense = features.toarray()
    integral = np.all(dense == np.round(dense))
    with gzip.GzipFile(os.path.join(out, f"{name}.content.gz"), "wb", mtime=0) as f:
        for i in range(n):
            row = dense[i]
            cells = (str(int(v)) for v in row) if integral else (repr(float(v)) if v else "0" for v in row)
            f.write(f"{i}\t{chr(9).join(cells)}\tclass_{label_index[i]}\n".encode())
    with gzip.GzipFile(os.path.join(out, f"{name}.cites.gz"), "wb", mtime=0) as f:
        for a, b in sorted(links):
            f.write(f"{a}\t{b}\n".encode())
    with open(os.path.join(out, f"{name}.planetoid_split.tsv"), "w") as f:
        f.write("id\tsplit\n")
        for i in range(n):
            f.write(f"{i}\t{split[i]}\n")

    counts = {s: split.count(s) for s in ["train", "val", "test", "other"]}
    train_per_class = np.bincount(label_index[:n_train], minlength=labels.shape[1]).tolist()
    print(
        f"{name}: {n} nodes, {features.shape[1]} features ({'integral' if integral else 'real'}), "
        f"{labels.shape[1]} classes, {len(links)} links ({self_loops} self-loops dropped), "
        f"split {counts}, train per class {train_per_class}, no features/label: {len(missing)} {missing}"
    )


if __name__ == "__main__":
    main()
