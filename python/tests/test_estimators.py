"""Tests of nsl_rs's estimators (NSLClassifier, NSLRegressor): the CLI's weights bit for bit,
scikit-learn's checks and tools, bad input, zero copy, progress and Ctrl-C, save/load, examples.

The CLI comparisons need the `nsl` binary ($NSL_BIN, else target/release/nsl); they are skipped
without one.
"""

import json
import os
import pickle
import signal
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import nsl_rs
from _cli import ROOT, nsl, nsl_bin
from nsl_rs import NSLClassifier, NSLRegressor, NslValueError

CORA = ROOT / "datasets/cora"
MNIST = ROOT / "datasets/mnist"


def blobs(n=120, seed=0, classes=3, d=4):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 3, (classes, d))
    y = rng.integers(0, classes, n)
    x = (centers[y] + rng.normal(0, 0.5, (n, d))).astype(np.float32)
    return x, y


def safetensors(run):
    return (Path(run) / "model.safetensors").read_bytes()


# ---------------------------------------------------------------------------------------------
# The same weights as the CLI


@pytest.fixture(scope="module")
def cora_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cora")
    nsl("convert", "--content", CORA / "cora.content.gz", "--cites", CORA / "cora.cites.gz",
        "--samples", d / "cora.parquet", "--graph", d / "g.parquet")
    nsl("split", d / "cora.parquet", "--method", "nsl", "--seed", 1, "--train", 0.8,
        "--out-train", d / "train.parquet", "--out-test", d / "test.parquet")
    nsl("split", d / "cora.parquet", "--split-table", CORA / "cora.planetoid_split.tsv",
        "--out-train", d / "tr.parquet", "--out-test", d / "te.parquet", "--out-unlabeled", d / "un.parquet")
    return d


def test_cora_recipe_same_weights_as_cli(cora_files, tmp_path):
    d = cora_files
    nsl("train", "--samples", d / "train.parquet", "--pool", d / "test.parquet", "--graph", d / "g.parquet",
        "--graph-reg", "multiplier=0.1,neighbors=1", "--epochs", 5, "--seed", 3, "--threads", 1, "--out", tmp_path / "cli")
    train, pool = nsl_rs.read_samples(d / "train.parquet"), nsl_rs.read_samples(d / "test.parquet")
    est = NSLClassifier(graph_reg="multiplier=0.1,neighbors=1", epochs=5, seed=3, threads=1, verbose=False)
    est.fit(train.X, train.y, ids=train.ids, graph=d / "g.parquet", pool=(pool.X, pool.ids))
    est.save(tmp_path / "py")
    est.save(tmp_path / "py")  # a run directory is replaced
    assert safetensors(tmp_path / "py") == safetensors(tmp_path / "cli")
    # The graph as a table (read_graph) gives the same weights as the file.
    table = nsl_rs.read_graph(d / "g.parquet")
    again = NSLClassifier(graph_reg={"multiplier": 0.1, "neighbors": 1}, epochs=5, seed=3, threads=1, verbose=False)
    again.fit(train.X, train.y, ids=train.ids, graph=table, pool=(pool.X, pool.ids))
    again.save(tmp_path / "py2")
    assert safetensors(tmp_path / "py2") == safetensors(tmp_path / "cli")


def test_few_labels_recipe_same_weights_as_cli(cora_files, tmp_path):
    d = cora_files
    recipe = ROOT / "examples/recipes/few_labels_kl.toml"
    nsl("train", "--config", recipe, "--samples", d / "tr.parquet", "--unlabeled", d / "un.parquet",
        "--graph", d / "g.parquet", "--epochs", 20, "--seed", 2, "--threads", 1, "--out", tmp_path / "cli")
    settings = tomllib.loads(recipe.read_text())
    settings.update(epochs=20, seed=2, threads=1)
    tr, un = nsl_rs.read_samples(d / "tr.parquet"), nsl_rs.read_samples(d / "un.parquet")
    est = NSLClassifier(**settings, verbose=False)
    est.fit(tr.X, tr.y, ids=tr.ids, graph=d / "g.parquet", unlabeled=(un.X, un.ids))
    est.save(tmp_path / "py")
    assert safetensors(tmp_path / "py") == safetensors(tmp_path / "cli")


def test_mnist_adversarial_same_weights_as_cli(tmp_path):
    full = nsl_rs.read_samples(MNIST / "train-images-idx3-ubyte.gz", labels=MNIST / "train-labels-idx1-ubyte.gz")
    n = 3000
    x = np.ascontiguousarray(full.X[:n].reshape(n, -1))
    table = pa.table({"id": full.ids[:n], "features": list(x), "label": full.y[:n]})
    pq.write_table(table, tmp_path / "mnist.parquet")
    adv = "multiplier=0.2,step-size=0.2,norm=inf"
    nsl("train", "--samples", tmp_path / "mnist.parquet", "--model", "mlp:256,128", "--dropout", 0, "--batch-size", 32,
        "--epochs", 2, "--adv-reg", adv, "--threads", 1, "--out", tmp_path / "cli")
    est = NSLClassifier(model="mlp:256,128", dropout=0.0, batch_size=32, epochs=2, threads=1, verbose=False,
                        adv_reg={"multiplier": 0.2, "step_size": 0.2, "norm": "inf"})
    est.fit(x, full.y[:n], ids=full.ids[:n])
    est.save(tmp_path / "py")
    assert safetensors(tmp_path / "py") == safetensors(tmp_path / "cli")


def test_cli_reads_a_python_run_and_python_loads_a_cli_run(cora_files, tmp_path):
    d = cora_files
    train, test = nsl_rs.read_samples(d / "train.parquet"), nsl_rs.read_samples(d / "test.parquet")
    est = NSLClassifier(epochs=2, threads=1, verbose=False).fit(train.X, train.y)
    est.save(tmp_path / "py")
    out = subprocess.run([nsl_bin(), "evaluate", "--run", tmp_path / "py", "--samples", d / "test.parquet", "--json"],
                         check=True, capture_output=True, text=True).stdout
    assert json.loads(out)["accuracy"] == pytest.approx(est.score(test.X, test.y), abs=1e-9)
    nsl("train", "--samples", d / "train.parquet", "--epochs", 2, "--threads", 1, "--out", tmp_path / "cli")
    loaded = NSLClassifier.load(tmp_path / "cli")
    assert list(loaded.classes_) == sorted(set(train.y))
    assert loaded.n_features_in_ == 1433
    assert len(loaded.history_) == 2
    assert loaded.predict(test.X).shape == (len(test.ids),)
    again = NSLClassifier.load(tmp_path / "py")
    np.testing.assert_array_equal(again.predict_proba(test.X), est.predict_proba(test.X))


# ---------------------------------------------------------------------------------------------
# Estimator behaviour


def test_classifier_learns_blobs_and_reports_history():
    x, y = blobs()
    labels = np.array(["a", "b", "c"])[y]
    events = []
    est = NSLClassifier(model="mlp:16", epochs=30, batch_size=16, verbose=False, callback=events.append)
    est.fit(x, labels, validation=(x, labels))
    assert est.score(x, labels) > 0.9
    assert list(est.classes_) == ["a", "b", "c"]
    assert est.n_features_in_ == 4
    assert len(est.history_) == 30 and est.history_[-1]["epoch"] == 30
    assert [e["epoch"] for e in events] == list(range(1, 31))
    assert all(e["event"] == "epoch" and e["epochs"] == 30 and "validation_accuracy" in e for e in events)
    p = est.predict_proba(x)
    assert p.shape == (120, 3) and np.allclose(p.sum(axis=1), 1, atol=1e-5)


def test_binary_multilabel_and_regression():
    x, y = blobs(classes=2)
    b = NSLClassifier(model="mlp:8", epochs=30, learning_rate=0.01, task="binary", verbose=False).fit(x, y)
    assert b.predict_proba(x).shape == (120, 2) and b.score(x, y) > 0.9
    ym = np.stack([y, 1 - y, np.ones_like(y)], axis=1)
    m = NSLClassifier(model="mlp:8", epochs=30, learning_rate=0.01, verbose=False).fit(x, ym)
    assert m.predict(x).shape == (120, 3)
    assert m.score(x, ym) > 0.8
    target = x @ np.array([1.0, -2.0, 0.5, 0.0]) + 1.0
    r = NSLRegressor(model="mlp:16", epochs=60, learning_rate=0.01, verbose=False).fit(x, target)
    assert r.predict(x).shape == (120,)
    assert r.score(x, target) > 0.8
    r2 = NSLRegressor(model="mlp:16", epochs=5, loss="huber", verbose=False).fit(x, np.stack([target, -target], 1))
    assert r2.predict(x).shape == (120, 2)


def test_regularizers_as_settings():
    x, y = blobs(n=60)
    ids = [f"s{i}" for i in range(60)]
    graph = [(ids[i], ids[(i + 3) % 60], 1.0) for i in range(60)]
    ux, _ = blobs(n=30, seed=1)
    est = NSLClassifier(model="mlp:8", epochs=3, verbose=False, graph_reg={"multiplier": 0.1, "neighbors": 2, "hops": 2},
                        graph_reg_schedule={"steps": 10, "warmup": 2}, adv_reg={"multiplier": 0.2, "pgd_iterations": 2,
                        "epsilon": 0.1, "clip": (-10, 10)}, vat="multiplier=0.5", entropy=0.1, unlabeled_ratio=1.0,
                        lr_schedule="cosine", class_weight="balanced", early_stopping={"patience": 2})
    est.fit(x, y, ids=ids, graph=graph, unlabeled=(ux, [f"u{i}" for i in range(30)]), validation=(x, y),
            sample_weight=np.linspace(0.5, 1.5, 60))
    assert 1 <= len(est.history_) <= 3
    assert est.history_[0]["graph_loss"] > 0 and est.history_[0]["adversarial_loss"] > 0


def test_pandas_and_pyarrow_inputs_with_id_columns():
    pd = pytest.importorskip("pandas")
    x, y = blobs(n=40)
    df = pd.DataFrame(x, columns=["a", "b", "c", "d"])
    df["id"] = [f"n{i}" for i in range(40)]
    graph = pa.table({"source": ["n0", "n1"], "target": ["n1", "n0"], "weight": pa.array([1.0, 1.0], pa.float32())})
    est = NSLClassifier(model="mlp:8", epochs=2, verbose=False, graph_reg="multiplier=0.1").fit(df, y, graph=graph)
    assert list(est.feature_names_in_) == ["a", "b", "c", "d"]
    table = pa.Table.from_pandas(df.rename(columns={"id": "paper"}), preserve_index=False)
    est2 = NSLClassifier(model="mlp:8", epochs=2, verbose=False).fit(table, y, ids="paper")
    np.testing.assert_array_equal(est2.predict(table.drop_columns(["paper"])), est2.predict(x))


def test_float32_c_contiguous_input_is_not_copied():
    x, y = blobs()
    assert x.dtype == np.float32 and x.flags.c_contiguous
    est = NSLClassifier(model="mlp:8", epochs=1, verbose=False).fit(x, y)
    assert est._run.input_pointer() == x.ctypes.data
    # Anything else is converted (a copy), and trains the same model.
    est64 = NSLClassifier(model="mlp:8", epochs=1, verbose=False).fit(x.astype(np.float64), y)
    assert est64._run.input_pointer() != x.ctypes.data
    np.testing.assert_array_equal(est.predict_proba(x), est64.predict_proba(x))


def test_images_keep_their_shape():
    rng = np.random.default_rng(0)
    x = rng.random((20, 1, 8, 8), dtype=np.float32)
    y = np.arange(20) % 2
    est = NSLClassifier(model="cnn:4", epochs=1, verbose=False).fit(x, y)
    assert est.n_features_in_ == 64
    assert est.predict(x).shape == (20,)


def test_ctrl_c_stops_training_and_leaves_the_estimator_unfitted(tmp_path):
    x, y = blobs(n=2000)

    def interrupt(event):
        if event["event"] == "batch" and event["epoch"] == 2 and event["batch"] == 3:
            os.kill(os.getpid(), signal.SIGINT)

    est = NSLClassifier(model="mlp:8", epochs=50, batch_size=8, verbose=False, callback=interrupt, callback_batches=True)
    with pytest.raises(KeyboardInterrupt):
        est.fit(x, y)
    with pytest.raises(NslValueError, match="not fitted"):
        est.predict(x)


def test_callback_errors_stop_training():
    x, y = blobs()

    def boom(event):
        raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        NSLClassifier(model="mlp:8", epochs=5, verbose=False, callback=boom).fit(x, y)


def test_default_display_prints_a_line_per_epoch(capsys):
    x, y = blobs()
    NSLClassifier(model="mlp:8", epochs=3, verbose="lines").fit(x, y)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch")]
    assert [line.split()[1] for line in lines] == ["1/3", "2/3", "3/3"]


def test_evaluate_with_attacks():
    x, y = blobs()
    est = NSLClassifier(model="mlp:16", epochs=20, verbose=False).fit(x, y)
    r = est.evaluate(x, y, attack="fgsm", epsilon=[0.0, 0.5, 5.0], norm="inf")
    assert r["samples"] == 120 and r["accuracy"] == pytest.approx(est.score(x, y))
    assert r["robust_accuracy"][0] == pytest.approx(r["accuracy"])
    assert r["robust_accuracy"][2] < r["robust_accuracy"][0]
    pgd = est.evaluate(x, y, attack="pgd", epsilon=0.5, steps=5, step_size=0.2)
    assert len(pgd["robust_accuracy"]) == 1


def test_pickle_and_clone_round_trip():
    x, y = blobs()
    est = NSLClassifier(model="mlp:8", epochs=2, verbose=False).fit(x, y)
    again = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(again.predict_proba(x), est.predict_proba(x))
    assert again.get_params() == est.get_params()


# ---------------------------------------------------------------------------------------------
# Bad input: nsl's exception classes, naming the argument and the row


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda x, y, ids: (np.where(np.arange(40)[:, None] == 7, np.nan, x), y, ids), r"X: row 7 \(id `s7`\), feature 0: value NaN is not finite"),
        (lambda x, y, ids: (np.where(np.arange(40)[:, None] == 3, np.inf, x), y, ids), r"X: row 3 .*inf is not finite"),
        (lambda x, y, ids: (x[:, 0], y, ids), r"X: expected a 2-D array"),
        (lambda x, y, ids: (x.astype(str).astype(object) + "z", y, ids), r"X: dtype object is not numeric"),
        (lambda x, y, ids: (x, y[:39], ids), r"y: 39 labels for the 40 rows of X"),
        (lambda x, y, ids: (x, np.where(np.arange(40) == 5, None, y.astype(object)), ids), r"y: row 5 \(id `s5`\): missing label"),
        (lambda x, y, ids: (x, y, ids[:39]), r"ids: 39 ids for the 40 rows of X"),
        (lambda x, y, ids: (x, y, ids[:39] + ["s0"]), r"X: duplicate id `s0` in rows 0 and 39"),
        (lambda x, y, ids: (x[:0], y[:0], []), r"X: 0 sample\(s\)"),
    ],
)
def test_bad_input_names_the_argument_and_row(change, message):
    x, y = blobs(n=40)
    ids = [f"s{i}" for i in range(40)]
    x, y, ids = change(x, y, ids)
    with pytest.raises(NslValueError, match=message):
        NSLClassifier(model="mlp:4", epochs=1, verbose=False).fit(x, y, ids=ids)


def test_bad_graph_and_settings():
    x, y = blobs(n=10)
    ids = [f"s{i}" for i in range(10)]
    est = NSLClassifier(model="mlp:4", epochs=1, verbose=False, graph_reg="multiplier=0.1")
    with pytest.raises(NslValueError, match="nobody"):
        est.fit(x, y, ids=ids, graph=[("s0", "nobody", 1.0)])
    with pytest.raises(NslValueError, match=r"graph: edge 1 .*weight -1"):
        est.fit(x, y, ids=ids, graph=[("s0", "s1", 1.0), ("s1", "s2", -1.0)])
    with pytest.raises(NslValueError, match="ids: a graph names samples by id"):
        est.fit(x, y, graph=[("s0", "s1", 1.0)])
    with pytest.raises(NslValueError, match="graph_reg"):
        NSLClassifier(graph_reg="multiplier=oops", verbose=False).fit(x, y)
    with pytest.raises(NslValueError, match="epochs"):
        NSLClassifier(epochs=0, verbose=False).fit(x, y)
    with pytest.raises(NslValueError, match="Unknown label type"):
        NSLClassifier(verbose=False).fit(x, np.linspace(0, 1, 10))
    with pytest.raises(NslValueError, match=r"validation y: row 2: label `99` is not among the classes"):
        NSLClassifier(verbose=False, epochs=1).fit(x, y, validation=(x, np.where(np.arange(10) == 2, 99, y)))


# ---------------------------------------------------------------------------------------------
# scikit-learn


sklearn = pytest.importorskip("sklearn")

# check_estimator's checks that the estimators fail, and why (the rest pass).
WEIGHTS = (
    "minibatch training: a sample of weight k is not k copies of it (the copies change the batches, the "
    "number of steps and Adam's updates), as for scikit-learn's own SGD-trained estimators"
)
CLASSIFIER_SKIPS = {"check_sample_weight_equivalence_on_dense_data": WEIGHTS}
REGRESSOR_SKIPS = {"check_sample_weight_equivalence_on_dense_data": WEIGHTS}


@pytest.mark.parametrize("est, skips", [
    (NSLClassifier(model="mlp:32", epochs=40, learning_rate=0.01, verbose=False, threads=1), CLASSIFIER_SKIPS),
    (NSLRegressor(model="mlp:32", epochs=40, learning_rate=0.01, verbose=False, threads=1), REGRESSOR_SKIPS),
])
def test_check_estimator(est, skips):
    from sklearn.utils.estimator_checks import check_estimator

    results = check_estimator(est, expected_failed_checks=skips, on_fail=None)
    failed = [(r["check_name"], str(r["exception"])[:300]) for r in results if r["status"] == "failed"]
    assert failed == []


def test_sklearn_subclasses_are_base_estimators(tmp_path):
    """nsl_rs.sklearn's classes derive from scikit-learn's (import nsl_rs itself does not import it)."""
    import warnings

    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone, is_classifier, is_regressor
    from sklearn.utils.estimator_checks import check_estimator

    from nsl_rs.sklearn import NSLClassifier as SkClassifier, NSLRegressor as SkRegressor

    est = SkClassifier(model="mlp:32", epochs=40, learning_rate=0.01, verbose=False, threads=1)
    assert isinstance(est, (BaseEstimator, ClassifierMixin, NSLClassifier)) and is_classifier(est)
    assert isinstance(SkRegressor(), (BaseEstimator, RegressorMixin, NSLRegressor)) and is_regressor(SkRegressor())
    assert not isinstance(NSLClassifier(), BaseEstimator)
    assert repr(est) == repr(NSLClassifier(**est.get_params())) and est.get_params() == clone(est).get_params()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = check_estimator(est, expected_failed_checks=CLASSIFIER_SKIPS, on_fail=None)
    assert [(r["check_name"], str(r["exception"])[:300]) for r in results if r["status"] == "failed"] == []
    assert not [w for w in caught if "BaseEstimator" in str(w.message)]
    x, y = blobs()
    fitted = SkClassifier(model="mlp:8", epochs=5, verbose=False, threads=1).fit(x, y)
    fitted.save(tmp_path / "run")
    again = pickle.loads(pickle.dumps(fitted))
    assert type(again) is SkClassifier and type(SkClassifier.load(tmp_path / "run")) is SkClassifier
    assert np.array_equal(again.predict_proba(x), fitted.predict_proba(x))


def test_pipeline_cross_val_score_and_grid_search():
    from sklearn.model_selection import GridSearchCV, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = blobs(n=150)
    pipe = make_pipeline(StandardScaler(), NSLClassifier(model="mlp:16", epochs=20, verbose=False))
    scores = cross_val_score(pipe, x, y, cv=3)
    assert scores.shape == (3,) and scores.mean() > 0.8
    grid = GridSearchCV(NSLClassifier(model="mlp:8", verbose=False), {"epochs": [1, 20], "learning_rate": [0.01]}, cv=3)
    grid.fit(x, y)
    assert grid.best_params_["epochs"] == 20
    assert grid.best_estimator_.n_features_in_ == 4


# ---------------------------------------------------------------------------------------------
# The examples run (small epochs: CI's time)


@pytest.mark.parametrize("script, args", [
    ("cora_graph_reg.py", ["3"]),
    ("few_labels.py", ["3"]),
    ("mnist_adversarial.py", ["1", "300"]),
])
def test_examples_run(script, args):
    out = subprocess.run([sys.executable, ROOT / "python/examples" / script, *args], check=True, capture_output=True,
                         text=True, timeout=300).stdout
    assert "accuracy" in out or "robust" in out
    lines = (ROOT / "python/examples" / script).read_text().splitlines()
    assert len(lines) <= 20


# ---------------------------------------------------------------------------------------------
# evaluate: every attack of `nsl evaluate --attack`, the CLI's figures on the same weights

ATTACKS = ["fgsm", "pgd", "apgd-ce", "apgd-dlr", "apgd-t", "fab-t", "square", "autoattack"]


@pytest.fixture(scope="module")
def attacked_run(tmp_path_factory):
    """A 5-class model on features in [0, 1] (APGD-T needs 4 classes), saved, and its samples as
    the Parquet file the CLI reads."""
    d = tmp_path_factory.mktemp("attacks")
    x, y = blobs(n=60, seed=4, classes=5, d=6)
    x = ((x - x.min()) / (x.max() - x.min())).astype(np.float32)
    ids = [f"s{i}" for i in range(len(x))]
    est = NSLClassifier(model="mlp:16", epochs=30, learning_rate=0.01, threads=1, verbose=False).fit(x, y)
    est.save(d / "run")
    pq.write_table(pa.table({"id": ids, "features": pa.array(list(x), type=pa.list_(pa.float32())),
                             "label": pa.array(y, type=pa.int64())}), d / "s.parquet")
    return est, x, y, ids, d


def _drop_seconds(results):
    return [{**r, "stages": [{k: v for k, v in s.items() if k != "seconds"} for s in r["stages"]]} for r in results]


@pytest.mark.parametrize("attack", ATTACKS)
def test_evaluate_every_attack_as_the_cli(attacked_run, attack):
    est, x, y, ids, d = attacked_run
    settings = dict(iterations=5, restarts=1, target_classes=3, queries=40, attack_batch_size=16, seed=3)
    py = est.evaluate(x, y, ids=ids, attack=attack, epsilon=[0.05, 0.2], norm="inf", clip=(0, 1), steps=4, step_size=0.05,
                      per_sample=attack not in ("fgsm", "pgd"), **{k: v for k, v in settings.items()})
    flags = ["--iterations=5", "--restarts=1", "--target-classes=3", "--queries=40", "--attack-batch-size=16",
             "--seed=3", "--pgd-steps=4", "--pgd-step-size=0.05"]
    per_sample = d / f"{attack}.parquet"
    if attack not in ("fgsm", "pgd"):
        flags.append(f"--per-sample={per_sample}")
    out = subprocess.run([nsl_bin(), "evaluate", "--run", d / "run", "--samples", d / "s.parquet", "--json",
                          f"--attack={attack}", "--epsilon=0.05,0.2", "--norm=inf", "--clip=0:1", *flags],
                         check=True, capture_output=True, text=True)
    cli = json.loads(out.stdout)
    for key in ("task", "accuracy", "loss", "samples", "epsilon", "robust_accuracy"):
        assert py[key] == cli[key], key
    if attack in ("fgsm", "pgd"):
        assert py["robust_metrics"] == cli["robust_metrics"] and py["attack"] == cli["attack"]
    else:
        assert _drop_seconds(py["results"]) == _drop_seconds(cli["results"])
        assert py["evaluation_attack"] == cli["evaluation_attack"]
        assert py["masking_check"] == cli["masking_check"]
        table = py["per_sample"]
        assert table.num_rows == 2 * len(x) and table.column("id").to_pylist()[:2] == ["s0", "s1"]
        assert table.equals(pq.read_table(per_sample).select(table.column_names).cast(table.schema))
    if attack == "autoattack":
        stages = [s["attack"] for s in py["results"][0]["stages"]]
        assert stages == ["apgd-ce", "apgd-t", "fab-t", "square"]
        assert py["robust_accuracy"][1] <= py["robust_accuracy"][0] <= py["accuracy"]


def test_evaluate_attack_errors(attacked_run):
    est, x, y, ids, d = attacked_run
    with pytest.raises(NslValueError, match="attack: invalid attack `apgd`"):
        est.evaluate(x, y, attack="apgd", epsilon=0.1)
    with pytest.raises(NslValueError, match="epsilon 0 must be"):
        est.evaluate(x, y, attack="apgd-ce", epsilon=[0.1, 0.0])
    with pytest.raises(NslValueError, match="attack_from: square is white-box"):
        est.evaluate(x, y, attack="square", epsilon=0.1, attack_from=est)
    with pytest.raises(NslValueError, match="queri"):
        est.evaluate(x, y, attack="square", epsilon=0.1, querys=3)


def _with(est, **params):
    """A copy of the fitted `est` with other (progress) parameters."""
    copy = pickle.loads(pickle.dumps(est))
    copy.set_params(**params)
    return copy


FAST = dict(iterations=5, target_classes=3, queries=40, attack_batch_size=16, seed=3, clip=(0, 1))


def test_evaluate_reports_attack_progress_to_the_callback(attacked_run):
    est, x, y, ids, d = attacked_run
    events = []
    watched = _with(est, callback=events.append, verbose=False)
    r = watched.evaluate(x, y, attack="autoattack", epsilon=[0.05, 0.2], **FAST)
    quiet = est.evaluate(x, y, attack="autoattack", epsilon=[0.05, 0.2], **FAST)
    assert _drop_seconds(r["results"]) == _drop_seconds(quiet["results"])
    assert {e["event"] for e in events} == {"attack"}
    stages = []
    for e in events:
        if not stages or stages[-1] != (e["attack"], e["epsilon"]):
            stages.append((e["attack"], e["epsilon"]))
    # Each ε: the masking check's FGSM reference, then the sequence on the points still robust
    # (a stage with no point left has no work and no event).
    order = ["fgsm", "apgd-ce", "apgd-t", "fab-t", "square"]
    for eps in (0.05, 0.2):
        ran = [a for a, e in stages if e == eps]
        assert ran[:2] == ["fgsm", "apgd-ce"] and ran == sorted(ran, key=order.index), stages
    for stage in stages:
        done = [(e["done"], e["total"]) for e in events if (e["attack"], e["epsilon"]) == stage]
        assert [a for a, _ in done] == sorted(a for a, _ in done) and done[-1][0] == done[-1][1], (stage, done)
    events.clear()
    pgd = watched.evaluate(x, y, attack="pgd", epsilon=[0.05, 0.2], steps=3, step_size=0.05)
    assert [(e["attack"], e["epsilon"], e["done"], e["total"]) for e in events] == [
        ("pgd", 0.05, 0, 2), ("pgd", 0.05, 1, 2), ("pgd", 0.2, 1, 2), ("pgd", 0.2, 2, 2)]
    assert pgd["robust_accuracy"] == est.evaluate(x, y, attack="pgd", epsilon=[0.05, 0.2], steps=3,
                                                  step_size=0.05)["robust_accuracy"]


def test_ctrl_c_stops_evaluate_within_the_running_attack(attacked_run):
    est, x, y, ids, d = attacked_run
    events = []

    def interrupt(event):
        events.append(event)
        if event["attack"] == "apgd-ce" and event["done"] > 0:
            os.kill(os.getpid(), signal.SIGINT)

    # 2,000 iterations of APGD-CE and 5,000 Square queries: minutes if it ran on.
    watched = _with(est, callback=interrupt, verbose=False)
    with pytest.raises(KeyboardInterrupt):
        watched.evaluate(x, y, attack="autoattack", epsilon=0.2, iterations=2000, attack_batch_size=4,
                         clip=(0, 1), per_sample=True)
    # Stopped in APGD-CE: no event after the one that interrupted, no later stage.
    assert events[-1]["attack"] == "apgd-ce" and events[-1]["done"] < events[-1]["total"]
    assert [e for e in events if e["attack"] not in ("fgsm", "apgd-ce")] == []
    assert watched.evaluate(x, y)["samples"] == len(x)


def test_callback_errors_stop_evaluate(attacked_run):
    est, x, y, ids, d = attacked_run

    def boom(event):
        raise RuntimeError("stop the attack")

    with pytest.raises(RuntimeError, match="stop the attack"):
        _with(est, callback=boom, verbose=False).evaluate(x, y, attack="apgd-ce", epsilon=0.1, **FAST)


def test_evaluate_default_display_prints_each_stage(attacked_run, capsys):
    est, x, y, ids, d = attacked_run
    _with(est, verbose="lines").evaluate(x, y, attack="apgd-ce", epsilon=[0.05, 0.2], **FAST)
    lines = capsys.readouterr().out.splitlines()
    done = [line.split(":")[0] for line in lines if ": 100% (" in line]
    assert done == ["fgsm ε=0.05", "apgd-ce ε=0.05", "fgsm ε=0.2", "apgd-ce ε=0.2"], lines


# ---------------------------------------------------------------------------------------------
# Checkpoints and resume, the adversarial record


def _state_epoch(path):
    """The completed epochs a saved training state holds (its safetensors metadata)."""
    data = Path(path).read_bytes()
    header = json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")])
    return json.loads(header["__metadata__"]["nsl.train_state"])["epoch"]


def test_resume_gives_the_uninterrupted_weights(tmp_path):
    x, y = blobs(n=3000, seed=5, d=16)
    settings = dict(model="mlp:32", epochs=8, batch_size=16, seed=2, threads=1, verbose=False)
    whole = NSLClassifier(**settings).fit(x, y)
    whole.save(tmp_path / "whole")

    def stop_at_2(event):
        if event["event"] == "epoch" and event["epoch"] == 2:
            raise RuntimeError("stop")

    est = NSLClassifier(**settings, checkpoint=tmp_path / "state", callback=stop_at_2)
    with pytest.raises(RuntimeError, match="stop"):
        est.fit(x, y)
    # The trainer stops within a batch or so of the callback's error: an interrupted run.
    assert 2 <= _state_epoch(tmp_path / "state" / "state.safetensors") < 8
    est.set_params(callback=None).fit(x, y, resume=tmp_path / "state")
    assert [h["epoch"] for h in est.history_] == list(range(1, 9))
    est.save(tmp_path / "resumed")
    assert safetensors(tmp_path / "resumed") == safetensors(tmp_path / "whole")
    with pytest.raises(nsl_rs.NslError, match="resume"):
        NSLClassifier(**settings).fit(x, y, resume=tmp_path / "nothing")
    with pytest.raises(nsl_rs.NslError, match="epochs = 8, this run has 9"):
        NSLClassifier(**{**settings, "epochs": 9}).fit(x, y, resume=tmp_path / "state")


def test_record_adversarial_as_the_cli(tmp_path):
    x, y = blobs(n=90, seed=6)
    ids = [f"s{i}" for i in range(len(x))]
    pq.write_table(pa.table({"id": ids, "features": pa.array(list(x), type=pa.list_(pa.float32())),
                             "label": pa.array(y, type=pa.int64())}), tmp_path / "s.parquet")
    adv = "multiplier=0.2,step-size=0.05,norm=inf"
    nsl("train", "--samples", tmp_path / "s.parquet", "--model", "mlp:8", "--epochs", "2", "--threads", "1",
        "--adv-reg", adv, "--record-adversarial", tmp_path / "cli.parquet", "--out", tmp_path / "cli")
    est = NSLClassifier(model="mlp:8", epochs=2, threads=1, verbose=False, adv_reg=adv,
                        record_adversarial=str(tmp_path / "py.parquet")).fit(x, y, ids=ids)
    est.save(tmp_path / "py")
    assert safetensors(tmp_path / "py") == safetensors(tmp_path / "cli")
    cli, py = pq.read_table(tmp_path / "cli.parquet"), pq.read_table(tmp_path / "py.parquet")
    assert py.num_rows > 0 and py.equals(cli)


# ---------------------------------------------------------------------------------------------
# Bag-of-words input: token-id lists


def test_bow_token_lists_same_weights_as_cli(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 120)
    toks = [list(map(int, rng.choice(np.arange(10 * c, 10 * c + 10), size=rng.integers(1, 6), replace=False)))
            for c in y]
    ids = [f"d{i}" for i in range(len(y))]
    table = pa.table({"id": ids, "words": pa.array(toks, type=pa.list_(pa.int64())), "label": pa.array(y)})
    pq.write_table(table, tmp_path / "s.parquet")
    nsl("train", "--samples", tmp_path / "s.parquet", "--model", "bow:8", "--epochs", "3", "--threads", "1",
        "--out", tmp_path / "cli")
    est = NSLClassifier(model="bow:8", epochs=3, threads=1, verbose=False).fit(toks, y, ids=ids)
    est.save(tmp_path / "py")
    assert safetensors(tmp_path / "py") == safetensors(tmp_path / "cli")
    # The same from a pyarrow list column (ids from the `id` column) and from padded int rows.
    from_table = NSLClassifier(model="bow:8", epochs=3, threads=1, verbose=False).fit(table.select(["id", "words"]), y)
    from_table.save(tmp_path / "table")
    assert safetensors(tmp_path / "table") == safetensors(tmp_path / "cli")
    assert est.n_features_in_ == 5 and est._token_vocab == 30
    padded = np.full((len(toks), 5), -1, dtype=np.int64)
    for i, t in enumerate(toks):
        padded[i, : len(t)] = t
    np.testing.assert_array_equal(est.predict_proba(padded), est.predict_proba(toks))
    # Shorter lists are padded to the model's width; the CLI reads the Python run.
    assert est.predict([[1, 2], [25]]).shape == (2,)
    out = subprocess.run([nsl_bin(), "evaluate", "--run", tmp_path / "py", "--samples", tmp_path / "s.parquet", "--json"],
                         check=True, capture_output=True, text=True)
    assert json.loads(out.stdout)["accuracy"] == pytest.approx(est.score(toks, y))
    with pytest.raises(NslValueError, match="row 1: token id -3 is not an integer >= 0"):
        NSLClassifier(model="bow:8", epochs=1, verbose=False).fit([[1], [-3]], [0, 1])
    with pytest.raises(NslValueError, match="row 0 has 6 token ids, the model takes at most 5"):
        est.predict([[1, 2, 3, 4, 5, 6]])
    with pytest.raises(NslValueError, match="token id 30 is not below the vocabulary"):
        est.predict([[30]])
