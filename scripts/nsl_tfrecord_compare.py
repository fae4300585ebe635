#!/usr/bin/env python3
"""NSL's build_graph and pack_nbrs against nsl's, on the same TFRecord files (issue 14).

Run with the Python of NSL's environment (bash ../shared/baselines/setup.sh makes /tmp/tfvenv),
after `cargo build --release`:

    /tmp/tfvenv/bin/python scripts/nsl_tfrecord_compare.py [--nsl target/release/nsl]
        [--out DIR] [--skip-mnist] [--threshold 0.9] [--max-nbrs 5] [--train-epochs 100]

1. Cora as NSL's tutorial prepares it (preprocess_cora_dataset.py: random.seed(1), a paper is in
   train iff uniform(0, 1) <= 0.8; `id` bytes, `words` int64 x 1433, `label` int64 in sorted
   class order; the other papers are the unlabeled pool; cora.cites as a TSV graph). NSL's
   pack_nbrs and `nsl pack-nbrs` pack the train papers with add_undirected_edges, with max_nbrs=K
   and with NSL's keep-all default; the outputs are parsed with TensorFlow and compared record by
   record, feature by feature (same ids in the same order, same feature names, equal values).
2. MNIST-10k (datasets/mnist training images, pixel/255, L2-normalized, float32; `id`,
   `embedding`) as TFRecord: NSL's build_graph and `nsl build-graph`, exact (lsh_splits=0), at
   --threshold; the undirected edge sets are compared and the largest weight difference printed
   (NSL prints weights with 6 decimals).
3. NSL's Cora tutorial model (GraphRegularization over the tutorial's MLP, from
   ../shared/baselines/nsl_cora_graphreg.py) trained on the nsl-packed and on the NSL-packed
   records with the same seed; --train-epochs 0 skips it.

Prints one JSON line per comparison and exits 1 if any output differs.
"""
import argparse
import gzip
import json
import os
import random
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import neural_structured_learning as nsl_tf  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BASELINES = os.path.join(REPO, "..", "shared", "baselines")


def feature(kind, values):
    if kind == "b":
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))
    if kind == "f":
        return tf.train.Feature(float_list=tf.train.FloatList(value=values))
    return tf.train.Feature(int64_list=tf.train.Int64List(value=values))


def write_tfrecord(path, examples):
    with tf.io.TFRecordWriter(path) as w:
        for feats in examples:
            w.write(tf.train.Example(features=tf.train.Features(feature=feats)).SerializeToString())


def read_tfrecord(path):
    out = []
    for raw in tf.data.TFRecordDataset([path]):
        ex = tf.train.Example.FromString(raw.numpy())
        out.append({k: v for k, v in ex.features.feature.items()})
    return out


def value_list(f):
    kind = f.WhichOneof("kind")
    if kind is None:
        return (None, [])
    vals = list(getattr(f, kind).value)
    if kind == "float_list":  # compare bit patterns: -0.0 != 0.0, NaN == NaN
        vals = np.asarray(vals, dtype=np.float32).view(np.uint32).tolist()
    return (kind, vals)


def compare_examples(ours, theirs):
    """Record-by-record, feature-by-feature comparison; returns (differences, features compared)."""
    diffs, compared = [], 0
    if len(ours) != len(theirs):
        diffs.append("record count %d vs NSL %d" % (len(ours), len(theirs)))
    for r, (a, b) in enumerate(zip(ours, theirs)):
        if set(a) != set(b):
            diffs.append("record %d: feature names differ: only nsl %s, only NSL %s"
                         % (r, sorted(set(a) - set(b))[:5], sorted(set(b) - set(a))[:5]))
            continue
        for name in b:
            compared += 1
            if value_list(a[name]) != value_list(b[name]):
                diffs.append("record %d, feature %s differs" % (r, name))
    return diffs, compared


def run(cmd):
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    secs = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit("%s failed (%d):\n%s" % (" ".join(cmd), p.returncode, p.stderr))
    return secs, p.stdout


def timed(fn, *a, **kw):
    t0 = time.perf_counter()
    fn(*a, **kw)
    return time.perf_counter() - t0


def prepare_cora(out):
    rows = []
    with gzip.open(os.path.join(REPO, "datasets", "cora", "cora.content.gz"), "rt") as f:
        for line in f:
            e = line.rstrip("\n").split("\t")
            rows.append((e[0], [int(w) for w in e[1:-1]], e[-1]))
    names = sorted({r[2] for r in rows})
    index = {n: i for i, n in enumerate(names)}
    random.seed(1)
    train, pool = [], []
    for r in rows:
        (train if random.uniform(0, 1) <= 0.8 else pool).append(r)

    def ex(r):
        return {"id": feature("b", [r[0].encode()]), "words": feature("i", r[1]),
                "label": feature("i", [index[r[2]]])}

    paths = {k: os.path.join(out, "cora_%s.tfr" % k) for k in ("train", "pool")}
    write_tfrecord(paths["train"], [ex(r) for r in train])
    write_tfrecord(paths["pool"], [ex(r) for r in pool])
    paths["graph"] = os.path.join(out, "cora.cites.tsv")
    with gzip.open(os.path.join(REPO, "datasets", "cora", "cora.cites.gz"), "rt") as f, \
            open(paths["graph"], "w") as g:
        for line in f:
            a = line.split()
            if len(a) >= 2:
                g.write("%s\t%s\n" % (a[0], a[1]))
    return paths, len(train), len(pool)


def compare_pack(nsl_bin, out, paths, max_nbrs):
    tag = "all" if max_nbrs is None else "k%d" % max_nbrs
    theirs_path = os.path.join(out, "cora_packed_%s_NSL.tfr" % tag)
    ours_path = os.path.join(out, "cora_packed_%s_nsl.tfr" % tag)
    nsl_s = timed(nsl_tf.tools.pack_nbrs, paths["train"], paths["pool"], paths["graph"], theirs_path,
                  add_undirected_edges=True, max_nbrs=max_nbrs)
    cmd = [nsl_bin, "pack-nbrs", "--labeled", paths["train"], "--unlabeled", paths["pool"],
           "--graph", paths["graph"], "--output", ours_path, "--add-undirected-edges"]
    if max_nbrs is not None:
        cmd += ["--max-nbrs", str(max_nbrs)]
    ours_s, _ = run(cmd)
    theirs, ours = read_tfrecord(theirs_path), read_tfrecord(ours_path)
    diffs, compared = compare_examples(ours, theirs)
    nbrs = sum(int(e["NL_num_nbrs"].int64_list.value[0]) for e in theirs)
    return {"compare": "cora_pack_nbrs", "max_nbrs": max_nbrs, "records": len(theirs),
            "neighbors_packed": nbrs, "features_compared": compared, "differences": len(diffs),
            "first_differences": diffs[:5], "nsl_pack_nbrs_s": round(nsl_s, 3),
            "nsl_rs_pack_nbrs_s": round(ours_s, 3), "paths": [ours_path, theirs_path]}


def mnist_embeddings(out):
    path = os.path.join(out, "mnist10k_embedding.tfr")
    with gzip.open(os.path.join(REPO, "datasets", "mnist", "train-images-idx3-ubyte.gz"), "rb") as f:
        raw = f.read()
    n, rows, cols = (int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(3))
    x = np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(n, rows * cols).astype(np.float64) / 255.0
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    x = x.astype(np.float32)
    write_tfrecord(path, ({"id": feature("b", [str(i).encode()]), "embedding": feature("f", v)}
                          for i, v in enumerate(x)))
    return path, n


def read_tsv_edges(path):
    edges = {}
    with open(path) as f:
        for line in f:
            s, t, w = line.rstrip("\n").split("\t")[:3]
            edges[(s, t)] = float(w)
    return edges


def compare_build(nsl_bin, out, threshold):
    emb, n = mnist_embeddings(out)
    theirs_path = os.path.join(out, "mnist10k_graph_NSL.tsv")
    ours_path = os.path.join(out, "mnist10k_graph_nsl.tsv")
    nsl_s = timed(nsl_tf.tools.build_graph, [emb], theirs_path, similarity_threshold=threshold,
                  lsh_splits=0, lsh_rounds=1)
    ours_s, stdout = run([nsl_bin, "build-graph", "--input", emb, "--output", ours_path,
                          "--threshold", str(threshold), "--json"])
    summary = json.loads(stdout.strip().splitlines()[-1])
    theirs, ours = read_tsv_edges(theirs_path), read_tsv_edges(ours_path)
    common = set(theirs) & set(ours)
    max_diff = max((abs(theirs[e] - ours[e]) for e in common), default=0.0)
    return {"compare": "mnist10k_build_graph", "n": n, "threshold": threshold,
            "nsl_directed_edges": len(theirs), "nsl_rs_directed_edges": len(ours),
            "only_nsl": len(set(theirs) - common), "only_nsl_rs": len(set(ours) - common),
            "max_weight_diff": max_diff, "nsl_build_graph_s": round(nsl_s, 3),
            "nsl_rs_build_graph_s": round(ours_s, 3),
            "nsl_rs_build_phase_s": summary.get("build", {}).get("seconds"),
            "nsl_rs_read_s": summary.get("read_seconds")}


def train_tutorial(out, packed_paths, n_train, epochs, seed=0):
    sys.path.insert(0, BASELINES)
    try:
        import nsl_cora_graphreg as tut  # pylint: disable=import-outside-toplevel
    except ImportError:
        return {"compare": "cora_train", "skipped": "no %s/nsl_cora_graphreg.py" % BASELINES}
    hp = tut.HParams()
    hp.train_epochs = epochs
    test_path = os.path.join(out, "cora_pool.tfr")  # the tutorial evaluates on the test papers
    res = {"compare": "cora_train_graph_reg", "epochs": epochs, "seed": seed}
    for who, path in packed_paths.items():
        tf.keras.backend.clear_session()
        tf.keras.utils.set_random_seed(seed)
        train = tut.make_dataset(hp, path, training=True, seed=seed)
        test = tut.make_dataset(hp, test_path)
        base = tut.make_mlp_functional_model(hp)
        cfg = nsl_tf.configs.make_graph_reg_config(
            max_neighbors=hp.num_neighbors, multiplier=hp.graph_regularization_multiplier,
            distance_type=hp.distance_type, sum_over_axis=-1)
        model = nsl_tf.keras.GraphRegularization(base, cfg)
        model.compile(optimizer="adam",
                      loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
        t0 = time.perf_counter()
        model.fit(train, epochs=epochs, verbose=0)
        acc = model.evaluate(test, verbose=0, return_dict=True)["accuracy"]
        res[who] = {"test_acc": round(float(acc), 4), "fit_s": round(time.perf_counter() - t0, 2)}
    res["n_train"] = n_train
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nsl", default=os.path.join(REPO, "target", "release", "nsl"))
    ap.add_argument("--out", default=None, help="work directory (default: a temporary one)")
    ap.add_argument("--threshold", type=float, default=0.9)
    ap.add_argument("--max-nbrs", type=int, default=5)
    ap.add_argument("--skip-mnist", action="store_true")
    ap.add_argument("--train-epochs", type=int, default=100)
    args = ap.parse_args()
    out = args.out or tempfile.mkdtemp(prefix="nsl_tfrecord_compare.")
    os.makedirs(out, exist_ok=True)
    print(json.dumps({"tensorflow": tf.__version__, "neural_structured_learning": nsl_tf.__version__,
                      "nsl": run([args.nsl, "--version"])[1].strip(), "nproc": os.cpu_count(),
                      "out": out}), flush=True)
    failed = False
    paths, n_train, n_pool = prepare_cora(out)
    packed = {}
    for k in (args.max_nbrs, None):
        res = compare_pack(args.nsl, out, paths, k)
        res.update(train=n_train, pool=n_pool)
        failed |= res["differences"] > 0
        if k == args.max_nbrs:
            packed = {"nsl_rs_packed": res["paths"][0], "nsl_packed": res["paths"][1]}
        print(json.dumps(res), flush=True)
    if not args.skip_mnist:
        res = compare_build(args.nsl, out, args.threshold)
        failed |= res["only_nsl"] + res["only_nsl_rs"] > 0 or res["max_weight_diff"] > 1e-6
        print(json.dumps(res), flush=True)
    if args.train_epochs > 0:
        print(json.dumps(train_tutorial(out, packed, n_train, args.train_epochs)), flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
