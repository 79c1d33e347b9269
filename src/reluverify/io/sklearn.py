"""scikit-learn trees and tree ensembles as :class:`~reluverify.model.trees.TreeEnsemble` objects.

Supported: ``DecisionTreeClassifier``/``Regressor``, ``RandomForestClassifier``/``Regressor``,
``ExtraTreesClassifier``/``Regressor``, ``GradientBoostingClassifier`` (binary and multi-class, on
``decision_function`` scores), ``GradientBoostingRegressor`` and ``HistGradientBoostingClassifier``/
``Regressor`` (numerical splits; regressors with the identity link). scikit-learn is imported only to
read the model's class (by name: the model object carries its own arrays).

Threshold semantics ``"sklearn"``: every estimator here casts its input to float32 and compares
``x <= threshold`` with float64 thresholds (:func:`reluverify.model.trees.left_limit`). Scores:

* a decision tree classifier: the leaf's class weights as stored (``predict`` takes their argmax);
* forests: each tree's leaf weights normalised to sum 1 (its ``predict_proba``), averaged;
* gradient boosting: ``init + sum(learning_rate * leaf)``, stage by stage (``decision_function``);
  binary models have the outputs ``[0, score]`` and class 1 wins a tie (``predict``: ``score >= 0``).

Histogram gradient boosting has its own semantics: inputs stay float64 and a node sends ``x`` left iff
``x <= num_threshold`` (``"float64"``); scores are ``baseline + sum(leaf)`` in float64, iteration by
iteration; binary models predict class 1 iff the score is ``> 0`` (class 0 wins a tie). Categorical
splits and non-identity regression links (poisson, gamma) raise ``UnsupportedLayerError``; missing-value
routing does not matter (inputs are finite).
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError, UnsupportedLayerError
from ..model.trees import ClassIndex, Tree, TreeEnsemble, left_limit

SUPPORTED = ("DecisionTreeClassifier", "DecisionTreeRegressor", "RandomForestClassifier", "RandomForestRegressor",
             "ExtraTreesClassifier", "ExtraTreesRegressor", "GradientBoostingClassifier",
             "GradientBoostingRegressor", "HistGradientBoostingClassifier", "HistGradientBoostingRegressor")


def _tree(sk_tree, values: np.ndarray) -> Tree:
    """A :class:`Tree` from a fitted ``sklearn.tree._tree.Tree`` and per-node output values."""
    t = sk_tree
    left = np.asarray(t.children_left, dtype=np.int64)
    right = np.asarray(t.children_right, dtype=np.int64)
    inner = left >= 0
    feature = np.where(inner, np.asarray(t.feature, dtype=np.int64), -1)
    threshold = np.where(inner, np.asarray(t.threshold, dtype=np.float64), np.nan)
    limit = np.where(inner, left_limit(np.where(inner, threshold, 0.0), "sklearn"), np.nan)
    return Tree(feature, limit, threshold, np.where(inner, left, -1), np.where(inner, right, -1),
                np.asarray(values, dtype=np.float64))


def _check_single_output(est, name: str) -> None:
    if getattr(est, "n_outputs_", 1) != 1:
        raise UnsupportedLayerError(f"{name} has {est.n_outputs_} outputs (multi-output); reluverify's tree "
                                    "ensembles take single-output models: fit one model per output")


def _classes_reference(model):
    return ClassIndex(model)  # picklable: the ensemble travels to worker processes


def from_sklearn(model, *, name: str | None = None) -> TreeEnsemble:
    """Import a fitted scikit-learn tree model (see the module docstring for the list)."""
    kind = type(model).__name__
    if kind not in SUPPORTED:
        raise UnsupportedLayerError(f"{kind} is not a supported scikit-learn tree model; supported: "
                                    f"{', '.join(SUPPORTED)}")
    if not hasattr(model, "n_features_in_"):
        raise InputError(f"the {kind} is not fitted; call fit() first")
    n = int(model.n_features_in_)
    _check_single_output(model, kind)
    name = name or kind
    if kind.startswith("HistGradientBoosting"):
        return _hist_boosting(model, kind, n, name)
    if kind.startswith("DecisionTree"):
        t = model.tree_
        if kind == "DecisionTreeClassifier":
            values = np.asarray(t.value[:, 0, :], dtype=np.float64)  # predict: argmax of these
            return TreeEnsemble((_tree(t, values),), n, values.shape[1], "sum", link="normalised",
                                semantics="sklearn", name=name, framework="sklearn",
                                reference=_classes_reference(model))
        return TreeEnsemble((_tree(t, t.value[:, 0, :1]),), n, 1, "sum", semantics="sklearn", task="regressor",
                            name=name, framework="sklearn", reference=model.predict)
    if kind in ("RandomForestClassifier", "ExtraTreesClassifier"):
        trees = []
        for est in model.estimators_:
            v = np.asarray(est.tree_.value[:, 0, :], dtype=np.float64)
            norm = v.sum(axis=1, keepdims=True)
            norm[norm == 0.0] = 1.0
            trees.append(_tree(est.tree_, v / norm))  # each tree's predict_proba
        return TreeEnsemble(tuple(trees), n, int(model.n_classes_), "average", link="normalised",
                            semantics="sklearn", name=name, framework="sklearn",
                            reference=_classes_reference(model))
    if kind in ("RandomForestRegressor", "ExtraTreesRegressor"):
        trees = tuple(_tree(est.tree_, est.tree_.value[:, 0, :1]) for est in model.estimators_)
        return TreeEnsemble(trees, n, 1, "average", semantics="sklearn", task="regressor", name=name,
                            framework="sklearn", reference=model.predict)
    # gradient boosting
    if getattr(model, "init_", None) not in ("zero", None) and not hasattr(model.init_, "predict"):
        raise UnsupportedLayerError(f"{kind} has an init estimator reluverify cannot read")
    est = model.estimators_  # (n_stages, K')
    lr = float(model.learning_rate)
    base = np.asarray(model._raw_predict_init(np.zeros((1, n), dtype=np.float32))[0], dtype=np.float64)
    classifier = kind == "GradientBoostingClassifier"
    binary = classifier and est.shape[1] == 1
    K = 2 if binary else est.shape[1]
    trees = []
    for stage in range(est.shape[0]):
        for k in range(est.shape[1]):
            t = est[stage, k].tree_
            v = np.zeros((t.node_count, K))
            v[:, 1 if binary else k] = lr * np.asarray(t.value[:, 0, 0], dtype=np.float64)
            trees.append(_tree(t, v))
    base_score = np.array([0.0, base[0]]) if binary else base
    if classifier:
        return TreeEnsemble(tuple(trees), n, K, "sum", base_score, link="sigmoid" if binary else "softmax",
                            semantics="sklearn", tie="high" if binary else "low", name=name, framework="sklearn",
                            reference=_classes_reference(model))
    return TreeEnsemble(tuple(trees), n, 1, "sum", base_score, semantics="sklearn", task="regressor", name=name,
                        framework="sklearn", reference=model.predict)


def _hist_tree(nodes, K: int, column: int) -> Tree:
    """A :class:`Tree` from a ``TreePredictor``'s node records (scores in ``column`` of ``K``)."""
    leaf = np.asarray(nodes["is_leaf"], dtype=bool)
    feature = np.where(leaf, -1, np.asarray(nodes["feature_idx"], dtype=np.int64))
    threshold = np.where(leaf, np.nan, np.asarray(nodes["num_threshold"], dtype=np.float64))
    limit = np.where(leaf, np.nan, left_limit(np.where(leaf, 0.0, threshold), "float64"))
    value = np.zeros((leaf.size, K))
    value[:, column] = np.where(leaf, np.asarray(nodes["value"], dtype=np.float64), 0.0)
    return Tree(feature, limit, threshold, np.where(leaf, -1, np.asarray(nodes["left"], dtype=np.int64)),
                np.where(leaf, -1, np.asarray(nodes["right"], dtype=np.int64)), value)


def _hist_boosting(model, kind: str, n: int, name: str) -> TreeEnsemble:
    """``HistGradientBoostingClassifier``/``Regressor`` (module docstring)."""
    predictors = getattr(model, "_predictors", None)
    base = getattr(model, "_baseline_prediction", None)
    if predictors is None or base is None:
        raise UnsupportedLayerError(f"{kind}: this scikit-learn version stores its trees in a way reluverify "
                                    "cannot read (no _predictors/_baseline_prediction)")
    if getattr(model, "is_categorical_", None) is not None and np.any(model.is_categorical_):
        raise UnsupportedLayerError(f"{kind} has categorical features; reluverify's tree ensembles take "
                                    "numerical splits only: one-hot encode the categories instead")
    classifier = kind == "HistGradientBoostingClassifier"
    if not classifier:
        link = type(getattr(getattr(model, "_loss", None), "link", None)).__name__
        if link != "IdentityLink":
            raise UnsupportedLayerError(f"{kind} with loss {model.loss!r} predicts through a {link}; reluverify "
                                        "takes regressors whose prediction is the raw score (identity link)")
    per = int(model.n_trees_per_iteration_)
    binary = classifier and per == 1
    K = 2 if binary else per
    trees = []
    for iteration in predictors:
        for k, pred in enumerate(iteration):
            nodes = pred.nodes
            if np.any(np.asarray(nodes["is_categorical"], dtype=bool)):
                raise UnsupportedLayerError(f"{kind} has categorical splits; reluverify's tree ensembles take "
                                            "numerical splits only")
            trees.append(_hist_tree(nodes, K, 1 if binary else k))
    if not trees:
        raise InputError(f"the {kind} has no trees; fit it first")
    b = np.asarray(base, dtype=np.float64).ravel()
    base_score = np.array([0.0, b[0]]) if binary else b
    if classifier:
        return TreeEnsemble(tuple(trees), n, K, "sum", base_score, link="sigmoid" if binary else "softmax",
                            semantics="float64", name=name, framework="sklearn", reference=ClassIndex(model))
    return TreeEnsemble(tuple(trees), n, 1, "sum", base_score, semantics="float64", task="regressor", name=name,
                        framework="sklearn", reference=model.predict)
