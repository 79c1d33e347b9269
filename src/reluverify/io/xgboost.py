"""XGBoost models (``XGBClassifier``, ``XGBRegressor``, ``Booster``) as
:class:`~reluverify.model.trees.TreeEnsemble` objects, read from the model's own JSON
(``save_raw("json")``); xgboost is imported only when a Booster's JSON or ``predict`` is needed.

Threshold semantics ``"xgboost"``: ``float32(x) < split_condition`` goes left; leaf values are
float32 and XGBoost sums them in float32 after the base margin (``score_dtype=float32``), tree by tree.
Objectives: ``binary:logistic``/``binary:logitraw`` (outputs ``[0, margin]``, class 1 iff the
margin is ``> 0``), ``multi:softprob``/``multi:softmax`` (one margin per class, one tree per class
per round), ``reg:squarederror``/``reg:absoluteerror``/``reg:pseudohubererror`` (identity link).
Refused with :class:`~reluverify.errors.UnsupportedLayerError`: other objectives, the ``dart`` and
``gblinear`` boosters, categorical splits, multi-output trees.
"""

from __future__ import annotations

import json

import numpy as np

from ..errors import InputError, MissingDependencyError, UnsupportedLayerError
from ..model.trees import ClassIndex, Tree, TreeEnsemble, left_limit

BINARY = ("binary:logistic", "binary:logitraw", "binary:hinge")
MULTI = ("multi:softprob", "multi:softmax")
REGRESSION = ("reg:squarederror", "reg:absoluteerror", "reg:pseudohubererror", "reg:linear")


def _booster(model):
    if hasattr(model, "get_booster"):
        try:
            return model.get_booster()
        except Exception as exc:  # xgboost's NotFittedError
            raise InputError(f"the {type(model).__name__} is not fitted; call fit() first ({exc})") from None
    if type(model).__name__ == "Booster" and hasattr(model, "save_raw"):
        return model
    raise UnsupportedLayerError(f"{type(model).__name__} is not an XGBoost model (XGBClassifier, XGBRegressor "
                                "or Booster)")


def _floats(text) -> np.ndarray:
    if isinstance(text, (int, float)):
        return np.array([float(text)], dtype=np.float32)
    s = str(text).strip().strip("[]")
    return np.array([float(v) for v in s.split(",") if v.strip()], dtype=np.float32)


def from_xgboost(model, *, name: str | None = None) -> TreeEnsemble:
    """Import a fitted XGBoost model (module docstring)."""
    try:
        import xgboost  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError("reading an XGBoost model needs xgboost: pip install 'reluverify[xgboost]'"
                                     ) from exc
    booster = _booster(model)
    spec = json.loads(bytes(booster.save_raw("json")).decode())
    learner = spec["learner"]
    gb = learner["gradient_booster"]
    if gb["name"] != "gbtree":
        raise UnsupportedLayerError(f"the XGBoost booster {gb['name']!r} is not supported (gbtree only; dart drops "
                                    "trees at random, gblinear has no trees)")
    objective = learner["objective"]["name"]
    params = learner["learner_model_param"]
    n = int(params["num_feature"])
    if int(params.get("num_target", "1")) != 1:
        raise UnsupportedLayerError("multi-target XGBoost models are not supported; fit one model per target")
    gm = gb["model"]
    base = _floats(params["base_score"])
    if objective in BINARY:
        K, task = 2, "classifier"
        p = np.float32(base[0])
        # XGBoost turns the stored probability into a margin in float32 (measured: bit-exact margins)
        margin = -np.log(np.float32(1) / p - np.float32(1)) if objective == "binary:logistic" else p
        base_score = np.array([0.0, float(margin)])
        link = "sigmoid"
    elif objective in MULTI:
        K, task = int(params["num_class"]), "classifier"
        base_score = (np.full(K, base[0]) if base.size == 1 else base).astype(np.float64)
        link = "softmax"
    elif objective in REGRESSION:
        K, task = 1, "regressor"
        base_score = base[:1].astype(np.float64)
        link = "identity"
    else:
        raise UnsupportedLayerError(f"the XGBoost objective {objective!r} is not supported; supported: "
                                    f"{', '.join(BINARY + MULTI + REGRESSION)}")
    trees = []
    for t, group in zip(gm["trees"], gm["tree_info"]):
        if any(int(s) != 0 for s in t.get("split_type", [])):
            raise UnsupportedLayerError("the XGBoost model has categorical splits; reluverify encodes numerical "
                                        "splits only (one-hot encode the categories instead)")
        if int(t["tree_param"].get("size_leaf_vector", "1")) > 1:
            raise UnsupportedLayerError("the XGBoost model has vector leaves (multi_strategy); not supported")
        left = np.asarray(t["left_children"], dtype=np.int64)
        right = np.asarray(t["right_children"], dtype=np.int64)
        inner = left >= 0
        cond = np.asarray(t["split_conditions"], dtype=np.float32)
        feature = np.where(inner, np.asarray(t["split_indices"], dtype=np.int64), -1)
        threshold = np.where(inner, cond.astype(np.float64), np.nan)
        limit = np.where(inner, left_limit(np.where(inner, threshold, 0.0), "xgboost"), np.nan)
        value = np.zeros((left.size, K))
        value[~inner, 1 if objective in BINARY else (int(group) if K > 1 else 0)] = cond[~inner].astype(np.float64)
        trees.append(Tree(feature, limit, threshold, np.where(inner, left, -1), np.where(inner, right, -1), value))
    if not trees:
        raise InputError("the XGBoost model has no trees; fit it first")
    reference = _reference(model, booster, objective, K)
    return TreeEnsemble(tuple(trees), n, K, "sum", base_score, link=link, semantics="xgboost",
                        score_dtype=np.float32, task=task, name=name or type(model).__name__, framework="xgboost",
                        reference=reference)


def _reference(model, booster, objective: str, K: int):
    """The framework's ``predict`` as class indices (classifiers) or predictions (regressors);
    picklable (no closures), so that the ensemble travels to worker processes."""
    if hasattr(model, "classes_") and hasattr(model, "predict"):
        return ClassIndex(model)
    if hasattr(model, "get_booster"):
        return model.predict
    return _BoosterPredict(booster, objective)


class _BoosterPredict:
    """A raw ``Booster``'s predictions as class indices (classifier objectives) or values."""

    def __init__(self, booster, objective: str):
        self.booster, self.objective = booster, objective

    def __call__(self, X):
        import xgboost as xgb

        out = np.asarray(self.booster.predict(xgb.DMatrix(X)))
        objective = self.objective
        if objective in BINARY:
            return (out > (0.5 if objective == "binary:logistic" else 0.0)).astype(np.int64)
        if objective == "multi:softmax":
            return out.astype(np.int64)
        if objective in MULTI:
            return np.argmax(out, axis=1)
        return out
