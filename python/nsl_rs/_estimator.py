"""scikit-learn-style estimators over nsl's run API: ``NSLClassifier`` and ``NSLRegressor``.

Both train the model ``nsl train`` trains, through the same library call (``nsl::run``): the
settings below are the command's settings (``--graph-reg multiplier=0.1,neighbors=1`` is
``graph_reg="multiplier=0.1,neighbors=1"`` or ``graph_reg={"multiplier": 0.1, "neighbors": 1}``),
so the same data, settings and seed give the same weights, byte for byte, as the CLI.

scikit-learn is optional and imported only when used: the estimators implement its estimator
protocol (``get_params``, ``set_params``, tags) without importing it, so ``clone``, ``Pipeline``
and ``GridSearchCV`` take them and ``import nsl_rs`` stays fast.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _inputs
from ._errors import NslValueError
from ._progress import Progress

# scikit-learn is optional, and it is imported only when it is used: ``import sklearn.base`` costs
# ~1.5 s of CPU (it pulls in scipy.stats), more than a whole `nsl train` of the Cora recipe, so the
# estimators do not derive from sklearn's classes. They implement the protocol sklearn relies on
# instead: ``get_params`` / ``set_params`` as BaseEstimator defines them (the ``__init__``'s
# keywords, nested ``a__b``), ``__sklearn_tags__`` (built from sklearn's Tags on demand, which only
# sklearn calls, so sklearn is already imported then), ``__sklearn_is_fitted__`` and ``score``.
# ``clone``, ``Pipeline``, ``cross_val_score``, ``GridSearchCV`` and ``check_estimator`` work on
# that protocol (``check_estimator`` warns that the class does not inherit BaseEstimator).
_HAVE_SKLEARN = importlib.util.find_spec("sklearn") is not None


class _Base:
    """get_params / set_params as scikit-learn's BaseEstimator gives them (the __init__'s keywords)."""

    @classmethod
    def _get_param_names(cls) -> List[str]:
        sig = inspect.signature(cls.__init__)
        return sorted(p.name for p in sig.parameters.values() if p.name != "self" and p.kind != p.VAR_KEYWORD)

    def get_params(self, deep: bool = True) -> Dict[str, Any]:
        """The estimator's settings (``__init__``'s keywords); with ``deep``, also those of nested
        estimators as ``name__key``."""
        out: Dict[str, Any] = {}
        for name in self._get_param_names():
            value = getattr(self, name)
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                out.update((f"{name}__{k}", v) for k, v in value.get_params().items())
            out[name] = value
        return out

    def set_params(self, **params: Any) -> "_Base":
        """Sets settings by name (``name__key`` sets a nested estimator's); returns the estimator."""
        valid = self._get_param_names()
        nested: Dict[str, Dict[str, Any]] = {}
        for key, value in params.items():
            name, _, sub = key.partition("__")
            if name not in valid:
                raise NslValueError(
                    f"Invalid parameter {name!r} for estimator {type(self).__name__}. Valid parameters are: {valid!r}."
                )
            if sub:
                nested.setdefault(name, {})[sub] = value
            else:
                setattr(self, name, value)
        for name, sub_params in nested.items():
            getattr(self, name).set_params(**sub_params)
        return self

    def __repr__(self) -> str:
        # scikit-learn's print_changed_only: the settings that differ from their defaults.
        defaults = {p.name: p.default for p in inspect.signature(type(self).__init__).parameters.values()}
        changed = []
        for k, v in self.get_params(deep=False).items():
            d = defaults.get(k, inspect.Parameter.empty)
            same = False
            try:
                same = d is v or (type(d) is type(v) and bool(d == v))
            except Exception:  # noqa: BLE001 - arrays and the like compare elementwise
                pass
            if not same:
                changed.append(f"{k}={v!r}")
        return f"{type(self).__name__}({', '.join(changed)})"

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        from sklearn.utils import Tags, TargetTags

        return Tags(
            estimator_type=None,
            target_tags=TargetTags(required=False),
            transformer_tags=None,
            regressor_tags=None,
            classifier_tags=None,
        )


class _ClassifierMixin:
    _estimator_type = "classifier"

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        from sklearn.utils import ClassifierTags

        tags = super().__sklearn_tags__()  # type: ignore[misc]
        tags.estimator_type = "classifier"
        tags.classifier_tags = ClassifierTags()
        tags.target_tags.required = True
        return tags

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Mean accuracy (subset accuracy for multilabel), weighted by ``sample_weight``
        (scikit-learn's ``accuracy_score``)."""
        pred = self.predict(X)  # type: ignore[attr-defined]
        y = np.asarray(y)
        right = np.all(pred == y, axis=1) if y.ndim == 2 else (pred == y)
        return float(np.average(right, weights=sample_weight))


class _RegressorMixin:
    _estimator_type = "regressor"

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        from sklearn.utils import RegressorTags

        tags = super().__sklearn_tags__()  # type: ignore[misc]
        tags.estimator_type = "regressor"
        tags.regressor_tags = RegressorTags()
        tags.target_tags.required = True
        return tags

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """R² of the predictions, averaged over the targets (scikit-learn's ``r2_score``: a
        constant target scores 1 when predicted exactly, else 0)."""
        pred = np.asarray(self.predict(X), dtype=np.float64)  # type: ignore[attr-defined]
        y = np.asarray(y, dtype=np.float64)
        w = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        resid = np.average((y - pred) ** 2, axis=0, weights=w)
        total = np.average((y - np.average(y, axis=0, weights=w)) ** 2, axis=0, weights=w)
        r2 = np.where(total > 0, 1 - resid / np.where(total > 0, total, 1), np.where(resid == 0, 1.0, 0.0))
        return float(np.mean(r2))


Setting = Union[None, str, int, float, bool, Dict[str, Any]]


def _kv(value: Setting) -> Optional[str]:
    """A setting as the CLI's text: dicts become ``key=value,…`` (``_`` in keys becomes ``-``)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        parts = []
        for k, v in value.items():
            key = str(k).replace("_", "-")
            if v is None:
                continue
            if isinstance(v, bool):
                v = "true" if v else "false"
            elif isinstance(v, (tuple, list)):
                v = ":".join(str(x) for x in v)
            parts.append(f"{key}={v}")
        return ",".join(parts)
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _check_fitted(est: Any) -> None:
    if getattr(est, "_run", None) is None:
        message = (
            f"This {type(est).__name__} instance is not fitted yet. Call 'fit' with appropriate arguments "
            "before using this estimator."
        )
        if _HAVE_SKLEARN:
            from sklearn.exceptions import NotFittedError

            raise type("NslNotFittedError", (NotFittedError, NslValueError), {})(message)
        raise NslValueError(message)


def _feature_names(X: Any, ids: Any) -> Optional[List[str]]:
    """The feature columns of a DataFrame or table when they are all strings (scikit-learn's
    rule), without the id column."""
    if _inputs._is_pandas(X):
        columns = list(X.columns)
    elif _inputs.arrow(X, "Table"):
        columns = list(X.column_names)
    else:
        return None
    if not all(isinstance(c, str) for c in columns):
        return None
    id_column = ids if isinstance(ids, str) else ("id" if ids is None and "id" in columns else None)
    return [c for c in columns if c != id_column]


class _NSLBase(_Base):
    """What NSLClassifier and NSLRegressor share: the settings, fit's inputs, save/load."""

    _task_kind = "multiclass"

    # Settings of `nsl train` that are passed through as the CLI's text, by their config-file names.
    _SETTINGS = (
        "model",
        "dropout",
        "epochs",
        "batch_size",
        "optimizer",
        "learning_rate",
        "weight_decay",
        "lr_schedule",
        "graph_reg",
        "graph_reg_schedule",
        "adv_reg",
        "adv_reg_schedule",
        "vat",
        "vat_schedule",
        "unlabeled_ratio",
        "entropy",
        "early_stopping",
        "seed",
        "init_seed",
        "threads",
        "strict",
        "record_adversarial",
        "record_every",
    )

    def _settings(self) -> Dict[str, str]:
        out = {}
        for name in self._SETTINGS:
            text = _kv(getattr(self, name))
            if text is not None:
                out[name] = text
        return out

    # ----- inputs -----------------------------------------------------------------------------

    def _bow(self) -> bool:
        return str(self.model).strip().startswith("bow")

    def _samples(self, x: Any, ids: Any, arg: str, prefix: str) -> Tuple[np.ndarray, List[str], bool]:
        f = _inputs.frame(x, ids, arg, tokens=self._bow())
        given = f.ids is not None
        return f.x, (f.ids if given else _inputs.default_ids(f.x.shape[0], prefix)), given

    def _split(self, value: Any, arg: str, with_y: bool) -> Tuple[Any, Any, Any]:
        """``validation=(X, y[, ids])``, ``unlabeled=X`` or ``(X, ids)``."""
        if isinstance(value, tuple):
            if with_y and len(value) in (2, 3):
                return value[0], value[1], value[2] if len(value) == 3 else None
            if not with_y and len(value) == 2:
                return value[0], None, value[1]
            shape = "(X, y) or (X, y, ids)" if with_y else "X or (X, ids)"
            raise NslValueError(f"{arg}: a tuple of {len(value)} items; expected {shape}")
        if with_y:
            raise NslValueError(f"{arg}: expected a tuple (X, y) or (X, y, ids), got a {type(value).__name__}")
        return value, None, None

    def _fit(
        self,
        X: Any,
        y: Any,
        graph: Any,
        unlabeled: Any,
        validation: Any,
        sample_weight: Any,
        ids: Any,
        pool: Any,
        resume: Any = None,
    ) -> "_NSLBase":
        from . import _native

        self._run = None
        x, train_ids, ids_given = self._samples(X, ids, "X", "")
        n = x.shape[0]
        if y is None:
            raise NslValueError(f"y: {type(self).__name__} requires y to be passed, but the target y is None")
        targets = self._encode_fit(y, n, train_ids if ids_given else None)
        weights = _inputs.sample_weights(sample_weight, n)
        settings = self._settings()
        settings["task"] = self._task_setting()
        weights = self._weigh(targets, weights, settings)
        train = self._input(x, train_ids, targets, weights, "X")
        inputs: Dict[str, Any] = {"train": train}
        if validation is not None:
            vx, vy, vids = self._split(validation, "validation", True)
            vx, v_ids, v_given = self._samples(vx, vids, "validation", "v")
            inputs["validation"] = self._input(
                vx, v_ids, self._encode(vy, vx.shape[0], v_ids if v_given else None, "validation y"), None, "validation"
            )
        if unlabeled is not None:
            ux, _, uids = self._split(unlabeled, "unlabeled", False)
            ux, u_ids, _ = self._samples(ux, uids, "unlabeled", "u")
            inputs["unlabeled"] = self._input(ux, u_ids, None, None, "unlabeled")
        if pool is not None:
            px, _, pids = self._split(pool, "pool", False)
            px, p_ids, _ = self._samples(px, pids, "pool", "p")
            inputs["pool"] = self._input(px, p_ids, None, None, "pool")
        path, edges = _inputs.graph_edges(graph)
        if graph is not None and not ids_given:
            raise NslValueError(
                "ids: a graph names samples by id, so X needs ids (ids=[...], or an `id` column of a DataFrame or "
                "pyarrow table)"
            )
        if edges is not None and self.strict:
            known = set(train_ids)
            for name in ("pool", "unlabeled"):
                if name in inputs:
                    known.update(inputs[name]["ids"])
            for i, (s, t) in enumerate(zip(edges[0], edges[1])):
                if s not in known or t not in known:
                    missing = s if s not in known else t
                    raise NslValueError(
                        f"graph: edge {i} (`{s}` -> `{t}`): `{missing}` is not the id of a row of X, pool or "
                        "unlabeled (strict=True; strict=False skips such edges, as nsl train does)"
                    )
        progress = Progress(self.callback, self.verbose, bool(getattr(self, "callback_batches", False)))
        try:
            run = _native.fit(
                settings,
                inputs,
                path,
                edges,
                progress if progress.active else None,
                None if self.checkpoint is None else os.fspath(self.checkpoint),
                int(self.checkpoint_every),
                None if resume is None else os.fspath(resume),
            )
        finally:
            progress.close()
        self._run = run
        self.n_features_in_ = int(np.prod(x.shape[1:]))
        if self._bow():
            # The run lays every input out like the widest (`nsl::run`'s one layout): the model's width.
            meta = json.loads(run.meta_json())
            self.n_features_in_ = int(np.prod(meta["item_shape"]))
            self._token_vocab = max(int(inp["x"].max()) + 1 for inp in inputs.values())
        names = _feature_names(X, ids)
        if names is not None and len(names) == x.shape[1]:
            self.feature_names_in_ = np.asarray(names, dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        self.history_ = json.loads(run.history_json())
        return self

    def _weigh(self, targets: Dict[str, Any], weights: Optional[np.ndarray], settings: Dict[str, str]) -> Optional[np.ndarray]:
        return weights

    def _input(self, x: np.ndarray, ids: List[str], targets: Any, weights: Any, arg: str) -> Dict[str, Any]:
        d: Dict[str, Any] = {"x": _inputs.rows(x), "item_shape": _inputs.item_shape(x), "ids": ids, "arg": arg}
        if self._bow():
            d["layout"] = _inputs.token_layout(x)
        if targets is not None:
            d.update(targets)
        if weights is not None:
            d["weights"] = weights
        return d

    # ----- after fit --------------------------------------------------------------------------

    def _features(self, X: Any, ids: Any = None) -> np.ndarray:
        _check_fitted(self)
        names = _feature_names(X, ids)
        fitted = getattr(self, "feature_names_in_", None)
        if names is not None and fitted is not None and list(names) != list(fitted):
            raise NslValueError(
                "The feature names should match those that were passed during fit: "
                f"got {list(names)[:5]}…, fitted with {list(fitted)[:5]}…"
            )
        if (names is None) != (fitted is None):
            import warnings

            if names is None:
                warnings.warn(f"X does not have valid feature names, but {type(self).__name__} was fitted with feature names")
            else:
                warnings.warn(f"X has feature names, but {type(self).__name__} was fitted without feature names")
        if self._bow():
            x = _inputs.frame(X, ids, "X", tokens=True).x
            x = _inputs.token_rows(x, "X", width=self.n_features_in_)
            vocab = getattr(self, "_token_vocab", None)
            if vocab is not None and x.size and int(x.max()) >= vocab:
                row = int(np.flatnonzero(x.max(axis=1) >= vocab)[0])
                raise NslValueError(f"X: row {row}: token id {int(x[row].max())} is not below the vocabulary ({vocab})")
        else:
            x = _inputs.frame(X, ids, "X").x
        width = int(np.prod(x.shape[1:]))
        if width != self.n_features_in_:
            raise NslValueError(
                f"X has {width} features, but {type(self).__name__} is expecting {self.n_features_in_} "
                "features as input"
            )
        return x

    def _outputs(self, X: Any) -> np.ndarray:
        x = _inputs.rows(self._features(X))
        return self._run.predict(x)

    def embed(self, X: Any, layer: str = "logits", ids: Any = None) -> np.ndarray:
        """``nsl embed``: the values of one layer of the fitted model for every row of ``X``.

        Args:
            X: the samples, as ``predict`` takes them.
            layer: ``hidden0``, ``hidden1``, … (an MLP's hidden layers, after the activation),
                ``dense0``, … (a CNN's dense layers), or ``logits`` (the default).
            ids: as ``predict``'s (a table's id column is not a feature).

        Returns:
            float32 ``n × width``: the values ``nsl embed`` writes for the saved run and the same
            rows, bit for bit (evaluation mode: no dropout; computed without the GIL). For the
            rows' ids and labels with them, and samples files, see ``nsl_rs.embed``.

        Raises:
            NslValueError: an unknown layer (the message lists the model's layers), a width that
                is not the model's.
        """
        if not isinstance(layer, str):
            raise NslValueError(f"layer: expected a layer name (str), got {type(layer).__name__}")
        x = _inputs.rows(self._features(X, ids))
        return self._run.embed(x, None if layer == "logits" else layer)

    def evaluate(
        self,
        X: Any,
        y: Any,
        ids: Any = None,
        sample_weight: Any = None,
        attack: Optional[str] = None,
        epsilon: Union[None, float, Sequence[float]] = None,
        norm: Optional[str] = None,
        attack_from: Any = None,
        per_sample: bool = False,
        **attack_settings: Any,
    ) -> dict:
        """``nsl evaluate``: the task's loss and metrics on ``(X, y)``, and under ``attack``.

        Args:
            X, y: the samples and their targets (as ``fit`` takes them).
            ids: the samples' ids (they name rows in the per-sample table only).
            sample_weight: per-sample weights (weighted loss and metrics, as ``--weight-column``).
            attack: any of ``nsl evaluate --attack``: ``fgsm``, ``pgd`` (NSL's attacks along the
                task loss's gradient, any task), ``apgd-ce``, ``apgd-dlr``, ``apgd-t``, ``fab-t``,
                ``square`` or ``autoattack`` (AutoAttack's standard sequence: APGD-CE, APGD-T,
                FAB-T, Square, each on the points still robust; multiclass only). Default none.
            epsilon: the attack's strength, or a list of strengths (``--epsilon 0.1,0.2``).
            norm: ``inf`` (default), ``l2`` or ``l1`` (fgsm, pgd).
            attack_from: another fitted estimator whose model crafts the FGSM/PGD perturbations (a
                transfer attack, as NSL's MNIST tutorial); default this one (white-box).
            per_sample: with an evaluation attack (apgd…autoattack), also the ``--per-sample``
                table as ``result["per_sample"]`` (a pyarrow table: ``epsilon``, ``id``, ``label``,
                ``clean_prediction``, ``robust``, ``broken_by``, ``adversarial_prediction``,
                ``perturbation_norm``; labels and predictions are class indices into ``classes_``).
            **attack_settings: ``nsl evaluate``'s flags by name, with its defaults: PGD's
                ``steps`` (40) and ``step_size`` (0.01), ``random_start``; APGD/FAB-T's
                ``iterations`` (100), ``restarts`` (1), ``target_classes`` (9); Square's
                ``queries`` (5000); ``attack_batch_size`` (500); ``clip`` (``(0, 1)`` or
                ``"0:1"``); ``seed`` (0, of every random choice). ``pgd_steps``,
                ``pgd_step_size`` and ``random_init`` (the CLI's names) are accepted too.

        Returns:
            The dict ``nsl evaluate --json`` prints: ``task``, ``loss``, ``samples``, the task's
            metrics; with fgsm/pgd ``attack``, ``epsilon``, ``robust_accuracy`` and
            ``robust_metrics``; with an evaluation attack ``epsilon``, ``robust_accuracy`` (after
            the whole sequence), ``evaluation_attack`` (the settings), ``results`` (per ε:
            ``clean_accuracy``, ``stages`` with each attack's cumulative ``robust_accuracy``, …)
            and ``masking_check``.

        Progress: the attacks run on a thread of their own with the GIL released; ``callback``
        gets ``event="attack"`` dicts (``attack``, ``epsilon``, ``done``, ``total``: the steps
        of the current stage, for FGSM/PGD the ε done; at most every 100 ms, and each stage's
        start and end), and ``verbose`` shows them as ``fit``'s display does (a tqdm bar per
        stage, or a line per stage and every 10 s). Ctrl-C stops the attack at its next step and
        raises KeyboardInterrupt; nothing is written (the per-sample table is returned, not
        saved), and an exception in the callback stops it the same way.
        """
        x = self._features(X, ids)
        row_ids = _inputs.frame(X, ids, "X").ids if per_sample else None
        row_ids = row_ids if row_ids is not None else _inputs.default_ids(x.shape[0])
        targets = self._encode(y, x.shape[0], None, "y")
        weights = _inputs.sample_weights(sample_weight, x.shape[0])
        settings: Dict[str, str] = {}
        if attack is not None:
            settings["attack"] = str(attack)
            if epsilon is None:
                raise NslValueError("epsilon: an attack needs its strength (epsilon=0.1 or a list)")
            eps = [epsilon] if np.isscalar(epsilon) else list(epsilon)  # type: ignore[arg-type]
            settings["epsilon"] = ",".join(repr(float(e)) for e in eps)
        if norm is not None:
            settings["norm"] = str(norm)
        aliases = {"pgd_steps": "steps", "pgd_step_size": "step_size", "random_init": "random_start"}
        known = {"steps", "step_size", "random_start", "iterations", "restarts", "target_classes", "queries",
                 "attack_batch_size", "clip", "seed"}
        for key, value in attack_settings.items():
            key = aliases.get(key, key)
            if key not in known:
                raise NslValueError(f"{key}: not a setting of evaluate (expected one of {sorted(known)})")
            if isinstance(value, (tuple, list)):
                value = ":".join(str(v) for v in value)
            text = _kv(value)
            if text is not None:
                settings[key] = text
        inp = self._input(x, row_ids, targets, weights, "X")
        source = None
        if attack_from is not None:
            _check_fitted(attack_from)
            source = attack_from._run
        progress = Progress(self.callback, self.verbose, False)
        try:
            text, columns = self._run.evaluate(
                inp, settings, source, bool(per_sample), progress if progress.active else None
            )
        finally:
            progress.close()
        result = json.loads(text)
        if columns is not None:
            pa = _inputs.pyarrow()
            result["per_sample"] = pa.table(
                {
                    "epsilon": pa.array(columns["epsilon"], type=pa.float64()),
                    "id": pa.array(columns["id"], type=pa.string()),
                    "label": pa.array(columns["label"], type=pa.uint32()),
                    "clean_prediction": pa.array(columns["clean_prediction"], type=pa.uint32()),
                    "robust": pa.array(columns["robust"], type=pa.bool_()),
                    "broken_by": pa.array(columns["broken_by"], type=pa.string()),
                    "adversarial_prediction": pa.array(columns["adversarial_prediction"], type=pa.uint32()),
                    "perturbation_norm": pa.array(columns["perturbation_norm"], type=pa.float64()),
                }
            )
        return result

    def save(self, path: Union[str, "os.PathLike[str]"]) -> None:
        """Writes the run directory ``nsl train --out PATH`` writes (``model.safetensors``,
        ``model.json``, history, curves, summary), atomically: ``nsl evaluate PATH`` and
        ``nsl predict PATH`` read it, and so does ``load``."""
        _check_fitted(self)
        self._run.save(os.fspath(path), json.dumps(self._python_meta()))

    @classmethod
    def load(cls, path: Union[str, "os.PathLike[str]"]) -> "_NSLBase":
        """The fitted estimator of a run directory written by ``save`` or by ``nsl train``."""
        from . import _native

        run = _native.Run.load(os.fspath(path))
        meta = json.loads(run.meta_json())
        est = cls()
        python = meta.get("python") or {}
        params = python.get("params") or {}
        valid = set(est.get_params())
        est.set_params(**{k: v for k, v in params.items() if k in valid})
        est._run = run
        est._restore(meta, python)
        if python.get("token_vocab") is not None:
            est._token_vocab = int(python["token_vocab"])
        est.history_ = json.loads(run.history_json())
        return est

    def _python_meta(self) -> dict:
        params = {}
        for k, v in self.get_params().items():
            try:
                json.dumps(v)
                params[k] = v
            except TypeError:
                pass
        meta = {"params": params, "n_features_in": int(self.n_features_in_)}
        if getattr(self, "_token_vocab", None) is not None:
            meta["token_vocab"] = int(self._token_vocab)
        return meta

    # Pickling (scikit-learn's clone of a fitted estimator, joblib): the run directory's files.
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        run = state.pop("_run", None)
        if run is not None:
            import shutil
            import tempfile

            tmp = tempfile.mkdtemp(prefix="nsl_rs-")
            try:
                out = os.path.join(tmp, "run")
                run.save(out, json.dumps(self._python_meta()))
                files = {}
                for name in sorted(os.listdir(out)):
                    p = os.path.join(out, name)
                    if os.path.isfile(p):
                        with open(p, "rb") as fh:
                            files[name] = fh.read()
                state["_run_files"] = files
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        return state

    def __setstate__(self, state: dict) -> None:
        files = state.pop("_run_files", None)
        self.__dict__.update(state)
        self._run = None
        if files is not None:
            import shutil
            import tempfile

            from . import _native

            tmp = tempfile.mkdtemp(prefix="nsl_rs-")
            try:
                for name, data in files.items():
                    with open(os.path.join(tmp, name), "wb") as fh:
                        fh.write(data)
                self._run = _native.Run.load(tmp)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)

    def __sklearn_is_fitted__(self) -> bool:
        return getattr(self, "_run", None) is not None


_PARAMS_DOC = """
    Args:
        model: ``mlp:UNITS,…[,relu|tanh|sigmoid|gelu]``, ``cnn[:FILTERS,…]`` or ``bow[:…]``
            (``nsl train --model``). Default ``"mlp:50,50"`` (NSL's tutorials' MLP).
        dropout: dropout rate after hidden layers, in training only. Default None: 0.5 for mlp, 0 for cnn.
        epochs: passes over the training samples. Default 10.
        batch_size: samples per batch. Default 32.
        optimizer: ``adam`` or ``sgd``. Default ``adam``.
        learning_rate: default None: 0.001 for adam, 0.01 for sgd.
        weight_decay: L2 weight decay λ ≥ 0. Default 0.
        lr_schedule: ``constant``, ``step,every=E[,gamma=G]``, ``cosine[,min=M]``,
            ``exponential,rate=R`` (each may add ``warmup=W``). Default ``constant``.
        graph_reg: graph regularization (NSL's ``GraphRegularization``), as ``nsl train --graph-reg``'s
            ``key=value,…`` text or a dict: ``multiplier`` (0.01), ``neighbors`` (1), ``hops`` (1),
            ``distance`` (l2), ``transform``, ``reduction``, ``layer``, ``in_batch``, … Needs ``graph``.
            Default None (off).
        graph_reg_schedule, adv_reg_schedule, vat_schedule: schedules of the multipliers
            (``steps``, ``decay``, ``rate``, ``min``, ``warmup``). Default None.
        adv_reg: adversarial regularization (NSL's ``AdversarialRegularization``), text or dict:
            ``multiplier`` (0.2), ``step_size`` (0.001), ``norm`` (l2), ``pgd_iterations`` (1),
            ``epsilon``, ``clip`` (``(0, 1)``), ``random_init``, ``loss``, ``objective``
            (nsl | madry | trades | mart), ``epsilon_warmup``. Default None (off).
        vat: virtual adversarial regularization: ``multiplier`` (1), ``epsilon`` (0.001),
            ``norm``, ``steps``, ``xi``, ``distance``. Default None (off).
        unlabeled_ratio: with ``fit(unlabeled=…)``: unlabeled centers per labeled one. Default 1.
        entropy: with ``unlabeled``: weight of entropy minimization. Default 0.
        early_stopping: ``patience=N[,metric=NAME]``, ``N`` or a dict; needs ``validation``. Default None.
        seed: seed of the weights, dropout and shuffling. Default 0.
        init_seed: seed of the initial weights and dropout only. Default None (``seed``).
        threads: CPU threads. Default None (all cores).
        strict: fail when the graph names ids that are neither samples nor pool/unlabeled samples.
            Default True (``nsl train``'s default skips them, as NSL does: pass False for that).
        callback: called with a dict after every epoch (``event="epoch"``, ``epoch``, ``epochs``,
            ``loss``, ``accuracy``, ``validation_accuracy``, ``seconds``, …) and, with
            ``callback_batches=True``, after every batch (``event="batch"``, ``batch``,
            ``batches``); in ``evaluate``, with the attacks' progress (``event="attack"``,
            ``attack``, ``epsilon``, ``done``, ``total``). Default None.
        callback_batches: also call ``callback`` after every batch. Default False.
        verbose: the default display of ``fit`` and ``evaluate``: True shows tqdm's bar when tqdm
            is installed, else a line per epoch (and per attack stage); ``"lines"``: lines;
            False: nothing. Default True.
        record_adversarial: with ``adv_reg``: a Parquet path where ``save`` writes the adversarial
            neighbors the training generated, as a graph (``nsl train --record-adversarial``).
            Default None.
        record_every: record every N-th epoch's adversarial neighbors. Default 1.
        checkpoint: a directory where ``fit`` saves the training state after every
            ``checkpoint_every``-th epoch (``state.safetensors``, the file ``nsl train`` keeps in
            ``OUT.partial/``), so that an interrupted ``fit`` continues with ``fit(…,
            resume=checkpoint)``. Not with ``record_adversarial``. Default None (nothing written).
        checkpoint_every: epochs between two saved states. Default 1.
"""


class NSLClassifier(_ClassifierMixin, _NSLBase):
    __doc__ = (
        """A neural network classifier trained by nsl, with NSL's regularizers.

    ``fit(X, y)`` with a 1-D ``y`` (any labels: ints, strings) trains a multiclass model (softmax
    cross-entropy), or a binary one (one sigmoid output) with ``task="binary"``; a 2-D 0/1 ``y``
    (one column per label, as scikit-learn's multilabel indicator) trains a multilabel model.
    Settings are ``nsl train``'s; ``__init__`` only stores them (scikit-learn's rule) and ``fit``
    checks them.

    Attributes (after fit): ``classes_``, ``n_features_in_``, ``history_`` (one dict per epoch, as
    the run's ``history.json``), ``feature_names_in_`` (for a DataFrame or table).
"""
        + _PARAMS_DOC
        + """        task: None (multiclass for a 1-D y, multilabel for a 2-D y) or ``"binary"``.
        class_weight: None, ``"balanced"`` (n / (k·countₖ)) or a dict {class: weight}.
"""
    )

    def __init__(
        self,
        model: str = "mlp:50,50",
        dropout: Optional[float] = None,
        epochs: int = 10,
        batch_size: int = 32,
        optimizer: str = "adam",
        learning_rate: Optional[float] = None,
        weight_decay: float = 0.0,
        lr_schedule: Setting = "constant",
        graph_reg: Setting = None,
        graph_reg_schedule: Setting = None,
        adv_reg: Setting = None,
        adv_reg_schedule: Setting = None,
        vat: Setting = None,
        vat_schedule: Setting = None,
        unlabeled_ratio: float = 1.0,
        entropy: float = 0.0,
        early_stopping: Setting = None,
        seed: int = 0,
        init_seed: Optional[int] = None,
        threads: Optional[int] = None,
        strict: bool = True,
        callback: Any = None,
        callback_batches: bool = False,
        verbose: Any = True,
        record_adversarial: Optional[str] = None,
        record_every: int = 1,
        checkpoint: Optional[str] = None,
        checkpoint_every: int = 1,
        task: Optional[str] = None,
        class_weight: Union[None, str, Dict[Any, float]] = None,
    ) -> None:
        self.model = model
        self.dropout = dropout
        self.epochs = epochs
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.lr_schedule = lr_schedule
        self.graph_reg = graph_reg
        self.graph_reg_schedule = graph_reg_schedule
        self.adv_reg = adv_reg
        self.adv_reg_schedule = adv_reg_schedule
        self.vat = vat
        self.vat_schedule = vat_schedule
        self.unlabeled_ratio = unlabeled_ratio
        self.entropy = entropy
        self.early_stopping = early_stopping
        self.seed = seed
        self.init_seed = init_seed
        self.threads = threads
        self.strict = strict
        self.callback = callback
        self.callback_batches = callback_batches
        self.record_adversarial = record_adversarial
        self.record_every = record_every
        self.checkpoint = checkpoint
        self.checkpoint_every = checkpoint_every
        self.verbose = verbose
        self.task = task
        self.class_weight = class_weight

    def fit(
        self,
        X: Any,
        y: Any,
        graph: Any = None,
        unlabeled: Any = None,
        validation: Any = None,
        sample_weight: Any = None,
        ids: Any = None,
        pool: Any = None,
        resume: Any = None,
    ) -> "NSLClassifier":
        """Trains the model (what ``nsl train`` does), with the GIL released; Ctrl-C stops it
        between batches and raises KeyboardInterrupt (nothing is written, the estimator is unfitted).

        Args:
            X: features, ``n × d``: a numpy array (a C-contiguous float32 array is used in place,
                not copied), a pandas DataFrame or a pyarrow table of numeric columns (or one list
                column); an ``id`` column of a table gives the ids.
            y: labels, one per row (ints or strings; ``classes_`` are their sorted distinct
                values), or a 2-D 0/1 array (multilabel).
            graph: the neighbor graph for ``graph_reg``: a path (Parquet or NSL TSV), a pyarrow
                table or DataFrame with ``source``, ``target`` and ``weight`` columns, or
                ``(source, target, weight)`` triples. Its ids name rows of X (and of ``pool`` /
                ``unlabeled``).
            unlabeled: unlabeled samples trained as centers too (Neural Graph Machines; also the
                neighbor pool): X-like, or ``(X, ids)``.
            validation: ``(X, y)`` or ``(X, y, ids)`` evaluated after every epoch (``history_``,
                early stopping).
            sample_weight: a weight ≥ 0 per row (multiplies every loss term, NSL's
                ``sample_weight_key``).
            ids: the rows' ids: a sequence, or the name of a column of X. Needed with a graph.
            pool: samples that serve only as neighbors (NSL's Cora tutorial: the test papers):
                X-like, or ``(X, ids)``.
            resume: continue an interrupted run from its saved state: the ``checkpoint``
                directory of an earlier ``fit`` or the ``OUT.partial`` directory of ``nsl train
                --out OUT`` (or its ``state.safetensors``). The settings and inputs must be the
                run's; the weights are then those of the uninterrupted run, bit for bit.

        Raises:
            NslValueError: bad input (naming the argument and the row) or settings.
            KeyboardInterrupt: Ctrl-C.
        """
        return self._fit(X, y, graph, unlabeled, validation, sample_weight, ids, pool, resume)

    def _task_setting(self) -> str:
        if self._multilabel:
            return "multilabel"
        return "binary" if self.task == "binary" else "multiclass"

    def _encode_fit(self, y: Any, n: int, ids: Optional[List[str]]) -> Dict[str, Any]:
        y = _inputs.labels_1d(y)
        if self.task not in (None, "multiclass", "binary", "multilabel"):
            raise NslValueError(f"task: unknown task `{self.task}`: expected None, multiclass, binary or multilabel")
        if y.ndim == 2 and y.shape[1] == 1 and self.task != "multilabel":
            import warnings

            warning: Any = UserWarning
            if _HAVE_SKLEARN:
                from sklearn.exceptions import DataConversionWarning

                warning = DataConversionWarning
            warnings.warn(
                "A column-vector y was passed when a 1d array was expected. Please change the shape of y to "
                "(n_samples, ), for example using ravel().",
                warning,
                stacklevel=4,
            )
            y = y.ravel()
        self._multilabel = y.ndim == 2
        if y.ndim == 2:
            if self.task in ("binary", "multiclass"):
                raise NslValueError(f"y: a 2-D y is multilabel, but task is `{self.task}`")
            self.classes_ = np.arange(y.shape[1])
        else:
            if y.ndim != 1:
                raise NslValueError(f"y: expected a 1-D array of labels (or 2-D 0/1 for multilabel), got shape {y.shape}")
            if y.shape[0] != n:
                raise NslValueError(f"y: {y.shape[0]} labels for the {n} rows of X")
            missing = _inputs.missing_rows(y)
            if missing.size:
                raise NslValueError(f"y: {_inputs.row_name(int(missing[0]), ids)}: missing label (a classifier needs one per row)")
            if y.dtype.kind == "f" and not np.all(np.mod(y, 1) == 0):
                raise NslValueError(
                    "y: Unknown label type: continuous values (e.g. "
                    f"{y[np.flatnonzero(np.mod(y, 1) != 0)[0]]}) are not class labels; use NSLRegressor"
                )
            try:
                # With return_inverse numpy skips its masked-array check, whose first use imports
                # numpy.ma (20-45 ms: a quarter of numpy's own import) in a process that never uses it.
                self.classes_ = np.unique(y, return_inverse=True)[0]
            except TypeError as e:
                raise NslValueError(f"y: labels of different types cannot be ordered ({e})") from None
            if len(self.classes_) < 2 and self.task != "binary":
                raise NslValueError(
                    f"y: Classifier can't train when only one class is present: every label is {self.classes_[0]!r}"
                )
        return self._encode(y, n, ids, "y")

    def _encode(self, y: Any, n: int, ids: Optional[List[str]], arg: str) -> Dict[str, Any]:
        y = _inputs.labels_1d(y, arg)
        if y.ndim == 2 and y.shape[1] == 1 and not self._multilabel:
            y = y.ravel()
        if self._multilabel:
            if y.ndim != 2 or y.shape != (n, len(self.classes_)):
                raise NslValueError(f"{arg}: shape {y.shape}: expected ({n}, {len(self.classes_)}) 0/1 labels")
            m = np.ascontiguousarray(y, dtype=np.float32)
            bad = np.argwhere((m != 0) & (m != 1))
            if bad.size:
                r, c = bad[0]
                raise NslValueError(f"{arg}: {_inputs.row_name(int(r), ids)}, label {c}: {y[r, c]!r} is not 0 or 1")
            return {"multi_hot": m, "names": [str(c) for c in self.classes_]}
        if y.ndim != 1 or y.shape[0] != n:
            raise NslValueError(f"{arg}: {y.shape[0] if y.ndim else 0} labels for {n} rows")
        missing = _inputs.missing_rows(y)
        if missing.size:
            raise NslValueError(f"{arg}: {_inputs.row_name(int(missing[0]), ids)}: missing label")
        index = np.searchsorted(self.classes_, y)
        index = np.clip(index, 0, len(self.classes_) - 1)
        unknown = np.flatnonzero(self.classes_[index] != y)
        if unknown.size:
            r = int(unknown[0])
            raise NslValueError(f"{arg}: {_inputs.row_name(r, ids)}: label `{y[r]}` is not among the classes of y")
        return {"labels": index.astype(np.uint32), "names": [str(c) for c in self.classes_]}

    def _weigh(self, targets: Dict[str, Any], weights: Optional[np.ndarray], settings: Dict[str, str]) -> Optional[np.ndarray]:
        """``class_weight``: ``balanced`` is the CLI's ``--class-weights balanced``; a dict
        {class: weight} is multiplied into the sample weights (classes not named weigh 1)."""
        cw = self.class_weight
        if cw is None:
            return weights
        if isinstance(cw, str):
            if cw != "balanced":
                raise NslValueError(f"class_weight: `{cw}`: expected None, 'balanced' or a dict {{class: weight}}")
            settings["class_weights"] = "balanced"
            return weights
        if not isinstance(cw, dict) or self._multilabel:
            raise NslValueError("class_weight: expected None, 'balanced' or a dict {class: weight} (not for multilabel)")
        per_class = np.asarray([float(cw.get(c, cw.get(str(c), 1.0))) for c in self.classes_], dtype=np.float32)
        bad = np.flatnonzero(~(np.isfinite(per_class) & (per_class >= 0)))
        if bad.size:
            raise NslValueError(f"class_weight: class {self.classes_[bad[0]]!r}: weight {per_class[bad[0]]} is not >= 0")
        w = per_class[targets["labels"]]
        return w if weights is None else (weights * w).astype(np.float32)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities ``n × len(classes_)`` (softmax; for a binary model ``[1 − p, p]``;
        for multilabel each label's sigmoid)."""
        p = self._outputs(X)
        if self._task_setting() == "binary":
            p = p.reshape(-1)
            return np.column_stack([1 - p, p])
        return p

    def predict(self, X: Any) -> np.ndarray:
        """The most likely class of each row (multilabel: a 0/1 row, 1 where p ≥ 0.5)."""
        p = self.predict_proba(X)
        if self._multilabel:
            return (p >= 0.5).astype(np.int64)
        return self.classes_[np.argmax(p, axis=1)]

    def _python_meta(self) -> dict:
        meta = super()._python_meta()
        meta["classes"] = self.classes_.tolist()
        meta["multilabel"] = bool(self._multilabel)
        return meta

    def _restore(self, meta: dict, python: dict) -> None:
        self.n_features_in_ = python.get("n_features_in") or int(np.prod(meta["item_shape"]))
        self._multilabel = meta.get("task") == "multilabel"
        if self._multilabel:
            self.task = None
        elif meta.get("task") == "binary":
            self.task = "binary"
        if "classes" in python:
            self.classes_ = np.asarray(python["classes"])
        elif meta.get("class_names"):
            self.classes_ = np.asarray(meta["class_names"])
        else:
            self.classes_ = np.arange(meta.get("classes", 2))

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        tags.non_deterministic = False
        return tags


class NSLRegressor(_RegressorMixin, _NSLBase):
    __doc__ = (
        """A neural network regressor trained by nsl, with NSL's regularizers.

    ``fit(X, y)`` with a 1-D ``y`` (one target) or a 2-D ``y`` (one column per target); linear
    outputs, mean squared error or Huber loss. ``predict`` returns a 1-D array for a 1-D ``y``.
"""
        + _PARAMS_DOC
        + """        loss: ``"mse"`` (default) or ``"huber"``.
        delta: the Huber loss's δ. Default 1.0.
"""
    )

    def __init__(
        self,
        model: str = "mlp:50,50",
        dropout: Optional[float] = None,
        epochs: int = 10,
        batch_size: int = 32,
        optimizer: str = "adam",
        learning_rate: Optional[float] = None,
        weight_decay: float = 0.0,
        lr_schedule: Setting = "constant",
        graph_reg: Setting = None,
        graph_reg_schedule: Setting = None,
        adv_reg: Setting = None,
        adv_reg_schedule: Setting = None,
        vat: Setting = None,
        vat_schedule: Setting = None,
        unlabeled_ratio: float = 1.0,
        entropy: float = 0.0,
        early_stopping: Setting = None,
        seed: int = 0,
        init_seed: Optional[int] = None,
        threads: Optional[int] = None,
        strict: bool = True,
        callback: Any = None,
        callback_batches: bool = False,
        verbose: Any = True,
        record_adversarial: Optional[str] = None,
        record_every: int = 1,
        checkpoint: Optional[str] = None,
        checkpoint_every: int = 1,
        loss: str = "mse",
        delta: float = 1.0,
    ) -> None:
        self.model = model
        self.dropout = dropout
        self.epochs = epochs
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.lr_schedule = lr_schedule
        self.graph_reg = graph_reg
        self.graph_reg_schedule = graph_reg_schedule
        self.adv_reg = adv_reg
        self.adv_reg_schedule = adv_reg_schedule
        self.vat = vat
        self.vat_schedule = vat_schedule
        self.unlabeled_ratio = unlabeled_ratio
        self.entropy = entropy
        self.early_stopping = early_stopping
        self.seed = seed
        self.init_seed = init_seed
        self.threads = threads
        self.strict = strict
        self.callback = callback
        self.callback_batches = callback_batches
        self.record_adversarial = record_adversarial
        self.record_every = record_every
        self.checkpoint = checkpoint
        self.checkpoint_every = checkpoint_every
        self.verbose = verbose
        self.loss = loss
        self.delta = delta

    def fit(
        self,
        X: Any,
        y: Any,
        graph: Any = None,
        unlabeled: Any = None,
        validation: Any = None,
        sample_weight: Any = None,
        ids: Any = None,
        pool: Any = None,
        resume: Any = None,
    ) -> "NSLRegressor":
        """Trains the model; the arguments are NSLClassifier.fit's, with real-valued targets ``y``
        (1-D, or 2-D with one column per target)."""
        return self._fit(X, y, graph, unlabeled, validation, sample_weight, ids, pool, resume)

    def _task_setting(self) -> str:
        if self.loss not in ("mse", "huber"):
            raise NslValueError(f"loss: unknown loss `{self.loss}`: expected mse or huber")
        if self.loss == "huber":
            return f"regression,loss=huber,delta={_kv(float(self.delta))}"
        return "regression"

    def _encode_fit(self, y: Any, n: int, ids: Optional[List[str]]) -> Dict[str, Any]:
        y = _inputs.labels_1d(y)
        if y.ndim not in (1, 2):
            raise NslValueError(f"y: expected a 1-D array of targets (or 2-D, one column per target), got shape {y.shape}")
        self._one_target = y.ndim == 1
        self.n_outputs_ = 1 if y.ndim == 1 else y.shape[1]
        return self._encode(y, n, ids, "y")

    def _encode(self, y: Any, n: int, ids: Optional[List[str]], arg: str) -> Dict[str, Any]:
        y = _inputs.labels_1d(y, arg)
        if y.dtype.kind not in "biuf":
            try:
                y = y.astype(np.float64)
            except (TypeError, ValueError):
                raise NslValueError(f"{arg}: dtype {y.dtype} is not numeric (regression targets are numbers)") from None
        m = y.reshape(-1, 1) if y.ndim == 1 else y
        if m.shape[0] != n:
            raise NslValueError(f"{arg}: {m.shape[0]} targets for {n} rows")
        if m.shape[1] != self.n_outputs_:
            raise NslValueError(f"{arg}: {m.shape[1]} targets per row, but the model predicts {self.n_outputs_}")
        bad = np.argwhere(~np.isfinite(m))
        if bad.size:
            r, c = bad[0]
            raise NslValueError(f"{arg}: {_inputs.row_name(int(r), ids)}, target {c}: value {m[r, c]} is not finite")
        return {"values": np.ascontiguousarray(m, dtype=np.float32)}

    def predict(self, X: Any) -> np.ndarray:
        """The predicted values: 1-D for a model fitted on a 1-D y, else ``n × n_outputs_``."""
        p = self._outputs(X).astype(np.float64)
        return p[:, 0] if self._one_target else p

    def _python_meta(self) -> dict:
        meta = super()._python_meta()
        meta["one_target"] = bool(self._one_target)
        return meta

    def _restore(self, meta: dict, python: dict) -> None:
        self.n_features_in_ = python.get("n_features_in") or int(np.prod(meta["item_shape"]))
        self.n_outputs_ = int(meta.get("classes", 1))
        self._one_target = python.get("one_target", self.n_outputs_ == 1)

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.non_deterministic = False
        return tags
