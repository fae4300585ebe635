"""``NSLClassifier`` and ``NSLRegressor`` as real scikit-learn estimators: subclasses of
``sklearn.base.BaseEstimator`` (and ``ClassifierMixin`` / ``RegressorMixin``), so that
``isinstance(est, BaseEstimator)`` holds and ``check_estimator`` does not warn::

    from nsl_rs.sklearn import NSLClassifier

They are ``nsl_rs.NSLClassifier`` / ``nsl_rs.NSLRegressor`` in every other way (the same
parameters, training, files and pickles' content); nsl's own methods come first in their method
order, so ``get_params``, ``set_params``, the tags, ``score`` and ``__repr__`` are the same.

Importing this module imports ``sklearn.base``, which costs more than a short training run
(docs/python.md, "scikit-learn's base classes"); that is why ``import nsl_rs`` does not, and why
``nsl_rs.NSLClassifier`` implements scikit-learn's protocol without deriving from its classes.
"""

from __future__ import annotations

from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

from . import _estimator

__all__ = ["NSLClassifier", "NSLRegressor"]


class NSLClassifier(_estimator.NSLClassifier, ClassifierMixin, BaseEstimator):
    __doc__ = _estimator.NSLClassifier.__doc__


class NSLRegressor(_estimator.NSLRegressor, RegressorMixin, BaseEstimator):
    __doc__ = _estimator.NSLRegressor.__doc__
