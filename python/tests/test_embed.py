"""Tests of nsl_rs.embed and the estimators' embed (issue 27 point 4 from Python): the values
`nsl embed` writes, bit for bit, for an MLP's hidden layers, a CNN's dense layer and the logits;
ids and labels carried through; bad layers, widths and paths as typed exceptions.

The CLI comparisons need the `nsl` binary ($NSL_BIN, else target/release/nsl); they are skipped
without one.
"""


import nsl_rs
from _cli import nsl
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from nsl_rs import NSLClassifier, NslFileError, NslTypeError, NslValueError



def bits(a):
    """The float32 values' bit patterns: equal arrays of these are equal bit for bit."""
    return np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)


def cli_embed(run, samples, layer, out):
    nsl("embed", "--run", run, "--samples", samples, "--layer", layer, "--output", out)
    t = pq.read_table(out)
    return t.column("id").to_pylist(), np.stack(t.column("features").to_numpy(zero_copy_only=False)), t


@pytest.fixture(scope="module")
def mlp_run(tmp_path_factory):
    """A 2-epoch MLP (8, 4) trained by `nsl train` on 90 labeled rows of 6 features, 3 named
    classes; and 30 more rows to embed, with labels in another order of names."""
    d = tmp_path_factory.mktemp("mlp")
    rng = np.random.default_rng(7)
    centers = rng.normal(0, 3, (3, 6))
    y = rng.integers(0, 3, 120)
    x = (centers[y] + rng.normal(0, 0.5, (120, 6))).astype(np.float32)
    names = np.array(["cat", "dog", "emu"])[y]
    ids = [f"s{i:03}" for i in range(120)]
    pq.write_table(pa.table({"id": ids[:90], "features": list(x[:90]), "label": names[:90]}), d / "train.parquet")
    pq.write_table(pa.table({"id": ids[90:], "features": list(x[90:]), "label": names[90:]}), d / "pool.parquet")
    nsl("train", "--samples", d / "train.parquet", "--model", "mlp:8,4", "--epochs", 2, "--threads", 1,
        "--seed", 3, "--out", d / "run")
    return d, x[90:], ids[90:], names[90:]


@pytest.mark.parametrize("layer", ["hidden0", "hidden1", "logits"])
def test_embed_a_file_equals_the_cli_bit_for_bit(mlp_run, tmp_path, layer):
    d, x, ids, names = mlp_run
    cli_ids, cli_x, table = cli_embed(d / "run", d / "pool.parquet", layer, tmp_path / "e.parquet")
    e = nsl_rs.embed(d / "run", d / "pool.parquet", layer=layer)
    width = {"hidden0": 8, "hidden1": 4, "logits": 3}[layer]
    assert e.X.shape == (30, width) and e.X.dtype == np.float32 and e.item_shape == [width]
    assert e.ids == cli_ids == ids
    np.testing.assert_array_equal(bits(e.X), bits(cli_x))
    assert list(e.y) == list(names) and e.class_names == ["cat", "dog", "emu"]
    # The CLI's table holds class indices (names in its metadata).
    assert [e.class_names[i] for i in table.column("label").to_pylist()] == list(names)
    # The same rows as an array (ids given), through the run directory and a loaded estimator.
    a = nsl_rs.embed(str(d / "run"), x, layer=layer, ids=ids)
    np.testing.assert_array_equal(bits(a.X), bits(cli_x))
    assert a.ids == ids and a.y is None
    est = NSLClassifier.load(d / "run")
    np.testing.assert_array_equal(bits(est.embed(x, layer=layer)), bits(cli_x))
    if layer != "logits":
        assert (e.X >= 0).all()  # after the ReLU


def test_embed_a_fitted_estimator_equals_the_cli_on_its_saved_run(tmp_path):
    """An estimator fitted in Python (images through a CNN): its embed, nsl_rs.embed of it, and
    `nsl embed` of its saved run give the same bits; the default ids are row numbers."""
    rng = np.random.default_rng(1)
    x = rng.random((24, 1, 8, 10), dtype=np.float32)
    y = np.arange(24) % 3
    est = NSLClassifier(model="cnn:4", epochs=1, threads=1, verbose=False).fit(x, y)
    mine = est.embed(x, layer="dense0")
    assert mine.shape[0] == 24
    e = nsl_rs.embed(est, x, layer="dense0")
    assert e.ids == [str(i) for i in range(24)]
    np.testing.assert_array_equal(bits(e.X), bits(mine))
    est.save(tmp_path / "run")
    pq.write_table(pa.table({"id": e.ids, "features": list(x.reshape(24, -1)), "label": y}), tmp_path / "x.parquet")
    cli_ids, cli_x, _ = cli_embed(tmp_path / "run", tmp_path / "x.parquet", "dense0", tmp_path / "e.parquet")
    np.testing.assert_array_equal(bits(cli_x), bits(mine))
    f = nsl_rs.embed(tmp_path / "run", tmp_path / "x.parquet", layer="dense0")
    np.testing.assert_array_equal(bits(f.X), bits(mine))
    assert list(f.y) == list(y)
    # A fitted estimator with a samples file: the file's ids and labels.
    g = nsl_rs.embed(est, tmp_path / "x.parquet", layer="dense0")
    np.testing.assert_array_equal(bits(g.X), bits(mine))
    assert g.ids == cli_ids and list(g.y) == list(y)
    # Logits are what predict_proba's softmax is taken of.
    logits = est.embed(x)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(p / p.sum(axis=1, keepdims=True), est.predict_proba(x), rtol=1e-5, atol=1e-6)


def test_embed_errors_are_typed(mlp_run, tmp_path):
    d, x, ids, _ = mlp_run
    with pytest.raises(NslValueError, match=r"no layer `hidden7` \(layers: hidden0, hidden1"):
        nsl_rs.embed(d / "run", d / "pool.parquet", layer="hidden7")
    with pytest.raises(ValueError, match="hidden7"):
        NSLClassifier.load(d / "run").embed(x, layer="hidden7")
    with pytest.raises(NslValueError, match="X has 5 features, the model takes 6"):
        nsl_rs.embed(d / "run", x[:, :5])
    with pytest.raises(NslValueError, match="expecting 6 features"):
        NSLClassifier.load(d / "run").embed(x[:, :5])
    with pytest.raises(NslFileError, match="model.json"):
        nsl_rs.embed(tmp_path / "nothing", d / "pool.parquet")
    with pytest.raises(OSError, match="missing.parquet"):
        nsl_rs.embed(d / "run", tmp_path / "missing.parquet")
    with pytest.raises(NslValueError, match="ids"):
        nsl_rs.embed(d / "run", d / "pool.parquet", ids=ids)
    with pytest.raises(NslValueError, match="layer"):
        nsl_rs.embed(d / "run", x, layer=0)
    with pytest.raises(NslTypeError, match="run"):
        nsl_rs.embed(42, x)
    with pytest.raises(Exception, match="not fitted|fit"):
        NSLClassifier().embed(x)
