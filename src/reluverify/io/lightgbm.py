"""LightGBM models (``LGBMClassifier``, ``LGBMRegressor``, ``Booster``) as
:class:`~reluverify.model.trees.TreeEnsemble` objects, read from ``Booster.dump_model()``.

Threshold semantics ``"lightgbm"``: ``x <= threshold`` in float64; leaf values are float64 summed
in tree order (the initial score is folded into the first trees by LightGBM). Objectives: binary
(outputs ``[0, raw score]``; ``predict`` takes the argmax of ``[1 - p, p]``), multiclass (one raw score
per class, trees ``class = index % num_tree_per_iteration``), regression. Refused with
:class:`~reluverify.errors.UnsupportedLayerError`: categorical splits (``==``), ``missing_type
Zero`` (zero_as_missing routes zeros by the default direction, not by the threshold), random-forest
mode, other objectives (ranking, multiclassova, ...).
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError, MissingDependencyError, UnsupportedLayerError
from ..model.trees import ClassIndex, Tree, TreeEnsemble, left_limit


def _booster(model):
    if hasattr(model, "booster_"):
        try:
            return model.booster_
        except Exception:  # sklearn's NotFittedError
            raise InputError(f"the {type(model).__name__} is not fitted; call fit() first") from None
    if type(model).__name__ == "Booster" and hasattr(model, "dump_model"):
        return model
    raise UnsupportedLayerError(f"{type(model).__name__} is not a LightGBM model (LGBMClassifier, LGBMRegressor "
                                "or Booster)")


def _tree(structure: dict, K: int, column: int) -> Tree:
    feature, threshold, left, right, value = [], [], [], [], []

    def visit(node) -> int:
        i = len(feature)
        feature.append(-1)
        threshold.append(np.nan)
        left.append(-1)
        right.append(-1)
        value.append(0.0)
        if "leaf_value" in node or "split_feature" not in node:
            value[i] = float(node.get("leaf_value", 0.0))
            return i
        if node.get("decision_type", "<=") != "<=":
            raise UnsupportedLayerError("the LightGBM model has categorical splits; reluverify encodes numerical "
                                        "splits only")
        if node.get("missing_type", "None") == "Zero":
            raise UnsupportedLayerError("the LightGBM model treats zeros as missing (zero_as_missing): zeros follow "
                                        "the default direction, not the threshold; refit with zero_as_missing=False")
        feature[i] = int(node["split_feature"])
        threshold[i] = float(node["threshold"])
        left[i] = visit(node["left_child"])
        right[i] = visit(node["right_child"])
        return i

    visit(structure)
    feature_a = np.array(feature, dtype=np.int64)
    thr = np.array(threshold, dtype=np.float64)
    inner = feature_a >= 0
    vals = np.zeros((len(feature), K))
    vals[~inner, column] = np.array(value)[~inner]
    return Tree(feature_a, np.where(inner, left_limit(np.where(inner, thr, 0.0), "lightgbm"), np.nan), thr,
                np.array(left, dtype=np.int64), np.array(right, dtype=np.int64), vals)


def from_lightgbm(model, *, name: str | None = None) -> TreeEnsemble:
    """Import a fitted LightGBM model (module docstring)."""
    try:
        import lightgbm  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError("reading a LightGBM model needs lightgbm: pip install 'reluverify[lightgbm]'"
                                     ) from exc
    booster = _booster(model)
    d = booster.dump_model()
    objective = str(d.get("objective", "")).split()[0] if d.get("objective") else ""
    n = int(d["max_feature_idx"]) + 1
    per = int(d.get("num_tree_per_iteration", 1))
    if objective == "binary":
        K, task, link = 2, "classifier", "sigmoid"
    elif objective in ("multiclass", "softmax"):
        K, task, link = int(d["num_class"]), "classifier", "softmax"
    elif objective in ("regression", "regression_l2", "regression_l1", "huber", "fair", "quantile", "mape", "l2",
                       "l1"):
        K, task, link = 1, "regressor", "identity"
    else:
        raise UnsupportedLayerError(f"the LightGBM objective {objective!r} is not supported (binary, multiclass, "
                                    "regression)")
    average = bool(d.get("average_output", False))
    if average:  # its raw scores did not match an average of the dumped leaves (measured): refused
        raise UnsupportedLayerError("LightGBM random-forest mode (boosting_type='rf') is not supported; use "
                                    "gbdt, or a scikit-learn random forest")
    trees = []
    for i, info in enumerate(d["tree_info"]):
        column = 1 if objective == "binary" else (i % per if K > 1 else 0)
        trees.append(_tree(info["tree_structure"], K, column))
    if not trees:
        raise InputError("the LightGBM model has no trees; fit it first")
    reference = _reference(model, booster, objective)
    return TreeEnsemble(tuple(trees), n, K, "sum", None, link=link, semantics="lightgbm",
                        task=task, name=name or type(model).__name__, framework="lightgbm", reference=reference)


def _reference(model, booster, objective: str):
    """The framework's ``predict`` as class indices (classifiers) or predictions (regressors);
    picklable (no closures), so that the ensemble travels to worker processes."""
    if hasattr(model, "classes_") and hasattr(model, "booster_"):
        return ClassIndex(model)
    if hasattr(model, "booster_"):
        return model.predict
    return _BoosterPredict(booster, objective)


class _BoosterPredict:
    """A raw ``Booster``'s predictions as class indices (classifier objectives) or values."""

    def __init__(self, booster, objective: str):
        self.booster, self.objective = booster, objective

    def __call__(self, X):
        out = np.asarray(self.booster.predict(X))
        if self.objective == "binary":
            return np.argmax(np.stack([1.0 - out, out], axis=1), axis=1)
        if out.ndim == 2:
            return np.argmax(out, axis=1)
        return out
