#!/usr/bin/env python3
"""Writes the TFRecord fixtures of tests/tfrecord.rs with TensorFlow and NSL themselves.

Run with the Python of NSL's environment (bash ../shared/baselines/setup.sh makes /tmp/tfvenv):

    /tmp/tfvenv/bin/python scripts/make_tfrecord_fixtures.py [tests/fixtures/tfrecord]

Every file is written by tf.io.TFRecordWriter (records serialized by protobuf's
tf.train.Example.SerializeToString), by NSL's pack_nbrs or by NSL's build_graph, so the Rust
tests check nsl against bytes TensorFlow wrote, without needing TensorFlow.
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf  # noqa: E402
from neural_structured_learning.tools import build_graph, pack_nbrs  # noqa: E402

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "tfrecord")
os.makedirs(OUT, exist_ok=True)


def b(*values):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=list(values)))


def f(*values):
    return tf.train.Feature(float_list=tf.train.FloatList(value=list(values)))


def i(*values):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=list(values)))


def example(**features):
    return tf.train.Example(features=tf.train.Features(feature=features))


def write(name, examples, compression=None):
    path = os.path.join(OUT, name)
    options = tf.io.TFRecordOptions(compression_type=compression) if compression else None
    with tf.io.TFRecordWriter(path, options) as w:
        for ex in examples:
            w.write(ex.SerializeToString())
    return path


# 1. One Example per list type and edge case (see tests/tfrecord.rs for the values expected).
basic = [
    example(id=b(b"floats"), values=f(1.5, -2.25, 0.0, 3.4028234663852886e38, float("inf"), -0.0)),
    example(id=b(b"int64s"), values=i(0, 1, -1, 2**62, -(2**63), 300)),
    example(id=b(b"bytes"), values=b(b"", b"a", b"\xff\x00", "π".encode())),
    example(id=b(b"empty"), values=f(), other=i(), none=tf.train.Feature()),
    example(id=b("ünïcödé".encode()), words=i(*([0, 1, 1, 0] * 8)), label=i(3), weight=f(0.1), name=b(b"x", b"y")),
]
write("basic.tfrecord", basic)
write("basic.tfrecord.gz", basic, "GZIP")

# 2. NSL pack_nbrs on a 5-node graph: seeds A, B, C (B twice: the last one wins, in place),
#    unlabeled D, E; an edge to an unknown id, a duplicate edge, a weight tie, a self-loop.
labeled = [
    example(id=b(b"A"), words=i(1, 0, 0), label=i(0)),
    example(id=b(b"B"), words=i(0, 1, 0), label=i(1)),
    example(id=b(b"C"), words=i(0, 0, 1), label=i(2), extra=f(0.5, 0.25)),
    example(id=b(b"B"), words=i(0, 1, 1), label=i(2)),
]
unlabeled = [
    example(id=b(b"D"), words=i(1, 1, 0)),
    example(id=b(b"E"), words=i(1, 1, 1)),
]
lab = write("labeled.tfr", labeled)
unl = write("unlabeled.tfr", unlabeled)
graph = os.path.join(OUT, "graph.tsv")
with open(graph, "w") as g:
    g.write(
        "A\tB\t0.5\n"
        "A\tC\t0.5\n"
        "A\tD\t0.9\n"
        "A\tzzz\t0.7\n"
        "A\tB\t0.4\n"
        "B\tE\t0.3\n"
        "C\tA\t1.0\n"
        "C\tC\t0.1\n"
        "D\tA\t0.2\n"
        "E\tC\t0.6\n"
    )
pack_nbrs(lab, unl, graph, os.path.join(OUT, "packed_all.tfr"))
pack_nbrs(lab, unl, graph, os.path.join(OUT, "packed_k2_undirected.tfr"), add_undirected_edges=True, max_nbrs=2)
pack_nbrs(lab, "", graph, os.path.join(OUT, "packed_k1_labeled_only.tfr"), max_nbrs=1)

# 3. NSL build_graph on a few embeddings (a record without the embedding is skipped). A record
#    without the id is not included: NSL means to skip it too, but its error message calls
#    ShortDebugString(), which the upb protobuf runtime lacks, and build_graph crashes.
emb = [
    example(id=b(b"e0"), embedding=f(1.0, 0.0, 0.0)),
    example(id=b(b"e1"), embedding=f(0.9, 0.1, 0.0)),
    example(id=b(b"e2"), embedding=f(0.0, 1.0, 0.0)),
    example(id=b(b"e3"), embedding=f(0.1, 0.9, 0.2)),
    example(id=b(b"e4"), embedding=f(0.6, 0.6, 0.0)),
    example(id=b(b"no_embedding"), other=f(1.0)),
]
e = write("embeddings.tfr", emb)
build_graph([e], os.path.join(OUT, "embeddings_graph.tsv"), similarity_threshold=0.7, lsh_splits=0)

for name in sorted(os.listdir(OUT)):
    print(f"{os.path.getsize(os.path.join(OUT, name)):6d}  {name}")
print("tensorflow", tf.__version__)
