#!/usr/bin/env python3
"""A synthetic citation graph of a chosen size, in the LINQS files `nsl convert --content --cites` reads.

    scripts/synthetic_citation.py OUT_DIR [--nodes 19717] [--features 500] [--classes 3] [--edges 44324]
                                          [--homophily 0.8] [--signal 0.15] [--per-class 20] [--seed 26]

Writes OUT_DIR/synthetic.content.gz, OUT_DIR/synthetic.cites.gz and OUT_DIR/synthetic.split.tsv (a
Planetoid-style split: PER_CLASS labeled papers of each class, then 500 validation and 1,000 test papers,
the rest unlabeled; `nsl split --split-table`). The defaults are Pubmed's size (Planetoid: 19,717 papers,
44,324 undirected citations, 500 TF-IDF features, 3 classes, 60 labels, edge homophily about 0.80): a stand-in
for measuring cost at that size (issue 26) when Pubmed itself cannot be had. It is not Pubmed: accuracies on it
say nothing about Pubmed's.

How it is drawn (numpy, seeded): class sizes 21/39/40 % (Pubmed's); each class has a Dirichlet(0.3) word
distribution, every paper draws 20–79 words from `SIGNAL · class + (1 − SIGNAL) · common`, its features are
`0.05 · (1 + log count)` for the words it has (TF-IDF-like, sparse); each citation starts at a random paper and
ends, with probability HOMOPHILY, at a random paper of the same class, else at any paper (no self-loops, no
duplicates).
"""
import argparse
import gzip
import os

import numpy as np


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out_dir")
    p.add_argument("--nodes", type=int, default=19717)
    p.add_argument("--features", type=int, default=500)
    p.add_argument("--classes", type=int, default=3)
    p.add_argument("--edges", type=int, default=44324)
    p.add_argument("--homophily", type=float, default=0.8)
    p.add_argument("--signal", type=float, default=0.15)
    p.add_argument("--per-class", type=int, default=20)
    p.add_argument("--seed", type=int, default=26)
    a = p.parse_args()
    n, f, c = a.nodes, a.features, a.classes
    if not (0 <= a.homophily <= 1 and 0 <= a.signal <= 1):
        p.error("--homophily and --signal must be in [0, 1]")
    if a.edges > n * (n - 1) // 2 or a.per_class * c + 1500 > n:
        p.error("too many edges or labeled/validation/test papers for --nodes")
    rng = np.random.default_rng(a.seed)
    sizes = [0.21, 0.39, 0.40] if c == 3 else [1.0 / c] * c
    y = rng.choice(c, size=n, p=sizes)
    pref = rng.dirichlet(np.full(f, 0.3), size=c)
    common = rng.dirichlet(np.full(f, 1.0))
    os.makedirs(a.out_dir, exist_ok=True)
    with gzip.open(os.path.join(a.out_dir, "synthetic.content.gz"), "wt") as out:
        for i in range(n):
            words = rng.choice(f, size=rng.integers(20, 80), p=a.signal * pref[y[i]] + (1 - a.signal) * common)
            counts = np.bincount(words, minlength=f)
            x = np.where(counts > 0, 0.05 * (1 + np.log(np.maximum(counts, 1))), 0.0)
            out.write(f"{i}\t" + "\t".join(f"{v:.4g}" if v else "0" for v in x) + f"\t{y[i]}\n")
    by_class = [np.flatnonzero(y == k) for k in range(c)]
    edges = set()
    while len(edges) < a.edges:
        s = int(rng.integers(n))
        t = int(rng.choice(by_class[y[s]])) if rng.random() < a.homophily else int(rng.integers(n))
        if s != t:
            edges.add((min(s, t), max(s, t)))
    with gzip.open(os.path.join(a.out_dir, "synthetic.cites.gz"), "wt") as out:
        for s, t in sorted(edges):
            out.write(f"{s}\t{t}\n")
    order = rng.permutation(n)
    train = [int(i) for k in range(c) for i in order[y[order] == k][: a.per_class]]
    taken = set(train)
    rest = [int(i) for i in order if int(i) not in taken]
    split = {i: "train" for i in train}
    split.update({i: "validation" for i in rest[:500]})
    split.update({i: "test" for i in rest[500:1500]})
    with open(os.path.join(a.out_dir, "synthetic.split.tsv"), "w") as out:
        out.write("id\tsplit\n")
        for i in sorted(split):
            out.write(f"{i}\t{split[i]}\n")
    print(f"{n} papers, {len(edges)} citations, {f} features, {c} classes, {len(train)} labeled → {a.out_dir}")


if __name__ == "__main__":
    main()
