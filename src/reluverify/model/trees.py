"""Tree ensembles, framework-neutral: decision trees, random forests and boosted trees.

A :class:`TreeEnsemble` is a tuple of :class:`Tree` objects and the rule that combines their leaf
values into per-output scores:

* ``aggregation``: ``"sum"`` (boosting: ``base + sum_t v_t``), ``"average"`` (forests:
  ``base + (sum_t v_t) / T``) or ``"vote"`` (hard votes: each tree's leaf value is one-hot on its
  own argmax, summed; the importer stores the one-hot values, so it is ``"sum"`` to every consumer);
* ``base_score``: one number per output; ``link``: how the framework maps scores to probabilities
  (``"identity"``, ``"sigmoid"``, ``"softmax"``, ``"normalised"``); the class is decided on the
  scores, which every link keeps in order;
* ``score_dtype``: the float type the framework sums leaves in (XGBoost: float32), so that
  :meth:`TreeEnsemble.forward` gives its numbers bit for bit;
* ``tie``: which class wins a tie of scores, ``"low"`` (NumPy's argmax, every framework's
  multi-class rule) or ``"high"`` (scikit-learn's binary gradient boosting: class 1 when its score is
  ``>= 0``).

Binary models with one margin score ``s`` (gradient boosting, XGBoost and LightGBM binary) have two
outputs, ``[0, s]``.

**Threshold semantics.** Each framework compares an input value with a node's threshold its own way:
scikit-learn ``float32(x) <= t`` (its inputs are cast to float32, thresholds are float64), XGBoost
``float32(x) < t`` (float32 thresholds), LightGBM ``x <= t`` in float64. Every node stores the exact
float64 limit ``L`` of its left branch (:func:`left_limit`): a float64 value ``x`` goes left iff
``x <= L``, right iff ``x >= nextafter(L, +inf)``. The forward pass and every formulation use ``L``
only, so they route every float64 input exactly as the framework does.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from ..errors import InputError, ModelFileError, NetworkError

AGGREGATIONS = ("sum", "average", "vote")
SEMANTICS = ("sklearn", "xgboost", "lightgbm", "float64")
LINKS = ("identity", "sigmoid", "softmax", "normalised")
_FILE_FORMAT = "reluverify-trees"
_FILE_VERSION = 1
_SCORE_DTYPES = {"float64": np.float64, "float32": np.float32}


class ClassIndex:
    """A fitted classifier's ``predict`` as class indices (positions in its ``classes_``): the
    ``reference`` of an imported classifier. A class (not a closure) so that the ensemble pickles,
    framework model included, e.g. to the workers of :func:`reluverify.evaluate_robustness`."""

    def __init__(self, model):
        self.model = model
        self.index = {c: i for i, c in enumerate(list(model.classes_))}

    def __call__(self, X) -> np.ndarray:
        return np.array([self.index[c] for c in self.model.predict(X)], dtype=np.int64)


def left_limit(threshold, semantics: str) -> np.ndarray:
    """The largest float64 ``x`` that a node with ``threshold`` sends left, per framework (module
    docstring): ``x`` goes left iff ``x <= left_limit(t)``.

    * ``"float64"``/``"lightgbm"``: ``x <= t``;
    * ``"sklearn"``: ``float32(x) <= t``: with ``t32`` the largest float32 ``<= t``, ``x`` goes left iff
      it rounds (to nearest, ties to even) to a float32 ``<= t32``: up to the midpoint ``m`` of ``t32``
      and the next float32, ``m`` itself when it rounds down;
    * ``"xgboost"``: ``float32(x) < t32``: the same with ``t32`` one float32 step below ``t``.
    """
    t = np.asarray(threshold, dtype=np.float64)
    if semantics in ("float64", "lightgbm"):
        return t.copy()
    if semantics not in ("sklearn", "xgboost"):
        raise InputError(f"unknown threshold semantics {semantics!r}; one of {SEMANTICS}")
    with np.errstate(over="ignore"):
        t32 = t.astype(np.float32)
    if semantics == "sklearn":
        t32 = np.where(t32.astype(np.float64) > t, np.nextafter(t32, np.float32(-np.inf)), t32)
    else:  # xgboost: float32(x) < t32  <=>  float32(x) <= the float32 just below t32
        t32 = np.nextafter(t32, np.float32(-np.inf))
    up = np.nextafter(t32, np.float32(np.inf))
    m = (t32.astype(np.float64) + up.astype(np.float64)) / 2  # exact in float64
    with np.errstate(over="ignore"):
        rounds_down = m.astype(np.float32) <= t32
    out = np.where(rounds_down, m, np.nextafter(m, -np.inf))
    return np.where(np.isinf(t32), t32.astype(np.float64), out)


@dataclass(frozen=True, eq=False)
class Tree:
    """One binary tree. Arrays per node: ``feature`` (-1 at leaves), ``limit`` (the exact float64
    left limit, :func:`left_limit`; NaN at leaves), ``threshold`` (the framework's own number, kept
    for display), ``left``/``right`` (child indices, -1 at leaves) and ``value`` (``(n_nodes,
    n_outputs)``: the leaf's contribution to each output score, already scaled by any learning rate;
    rows of internal nodes are ignored). Node 0 is the root."""

    feature: np.ndarray
    limit: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray

    @property
    def n_nodes(self) -> int:
        return int(self.feature.size)

    @property
    def is_leaf(self) -> np.ndarray:
        return self.left < 0

    @property
    def leaves(self) -> np.ndarray:
        return np.flatnonzero(self.is_leaf)

    @property
    def depth(self) -> int:
        depth = np.zeros(self.n_nodes, dtype=np.int64)
        for node in range(self.n_nodes):  # children come after their parent in every framework's order
            if self.left[node] >= 0:
                depth[self.left[node]] = depth[self.right[node]] = depth[node] + 1
        return int(depth.max())

    def apply(self, X: np.ndarray) -> np.ndarray:
        """The leaf each row of ``X`` (float64) reaches."""
        node = np.zeros(X.shape[0], dtype=np.int64)
        rows = np.arange(X.shape[0])
        while True:
            f = self.feature[node]
            inner = f >= 0
            if not inner.any():
                return node
            go_left = X[rows, np.where(inner, f, 0)] <= self.limit[node]
            node = np.where(inner, np.where(go_left, self.left[node], self.right[node]), node)

    def check(self, n_features: int, n_outputs: int) -> None:
        n = self.n_nodes
        for name in ("limit", "threshold", "left", "right"):
            if getattr(self, name).shape != (n,):
                raise NetworkError(f"tree array {name} has shape {getattr(self, name).shape}, expected ({n},)")
        if self.value.shape != (n, n_outputs):
            raise NetworkError(f"tree values have shape {self.value.shape}, expected ({n}, {n_outputs})")
        inner = self.left >= 0
        if np.any((self.right >= 0) != inner) or np.any(self.feature[inner] < 0) or \
                np.any(self.feature[inner] >= n_features):
            raise NetworkError("a tree node has one child only or a feature index out of range")
        kids = np.concatenate([self.left[inner], self.right[inner]])
        if kids.size and (kids.min() <= 0 or kids.max() >= n or np.unique(kids).size != kids.size):
            raise NetworkError("a tree's child indices are out of range or shared: not a tree")
        if np.any(np.isnan(self.limit[inner])) or not np.all(np.isfinite(self.value[~inner])):
            raise NetworkError("a tree has a NaN threshold or a non-finite leaf value")


@dataclass(frozen=True, eq=False)
class TreeEnsemble:
    """A tree ensemble (see the module docstring). ``reference(X) -> classes`` (classifiers) or
    ``-> predictions`` (regressors), when set, is the source framework's own ``predict`` on a batch
    of float64 rows: every witness is checked against it. ``framework`` names the source."""

    trees: tuple
    n_features: int
    n_outputs: int
    aggregation: str = "sum"
    base_score: np.ndarray | None = None
    link: str = "identity"
    semantics: str = "float64"
    score_dtype: type = np.float64
    task: str = "classifier"
    tie: str = "low"
    name: str = "trees"
    framework: str = ""
    reference: object = field(default=None, repr=False)

    def __post_init__(self):
        if self.aggregation not in AGGREGATIONS:
            raise NetworkError(f"aggregation must be one of {AGGREGATIONS}, got {self.aggregation!r}")
        if self.link not in LINKS:
            raise NetworkError(f"link must be one of {LINKS}, got {self.link!r}")
        if self.task not in ("classifier", "regressor"):
            raise NetworkError(f"task must be 'classifier' or 'regressor', got {self.task!r}")
        if self.tie not in ("low", "high"):
            raise NetworkError(f"tie must be 'low' or 'high', got {self.tie!r}")
        if not self.trees:
            raise NetworkError("a tree ensemble needs at least one tree")
        base = np.zeros(self.n_outputs) if self.base_score is None else np.asarray(self.base_score, np.float64)
        if base.shape != (self.n_outputs,):
            raise NetworkError(f"base_score has shape {base.shape}, expected ({self.n_outputs},)")
        object.__setattr__(self, "base_score", base)
        object.__setattr__(self, "trees", tuple(self.trees))
        for t in self.trees:
            t.check(self.n_features, self.n_outputs)

    # ------------------------------------------------------------------ shape (the Network names)
    @property
    def n_inputs(self) -> int:
        return self.n_features

    @property
    def n_trees(self) -> int:
        return len(self.trees)

    @property
    def input_shape(self) -> tuple:
        return (self.n_features,)

    @property
    def weight(self) -> float:
        """The factor on each tree's leaf values: ``1/T`` for averages, else 1."""
        return 1.0 / self.n_trees if self.aggregation == "average" else 1.0

    def as_point(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64).ravel()
        if x.size != self.n_features:
            raise InputError(f"the input has {x.size} values but the model takes {self.n_features}")
        if not np.all(np.isfinite(x)):
            raise InputError("the input has NaN or infinite values")
        return x

    def describe(self) -> str:
        depth = max(t.depth for t in self.trees)
        return (f"{self.name}: {self.n_trees} trees (depth <= {depth}), {self.n_features} features, "
                f"{self.n_outputs} outputs, {self.aggregation} of leaves, {self.semantics} thresholds")

    def __repr__(self) -> str:
        return f"<TreeEnsemble {self.describe()}>"

    # ------------------------------------------------------------------ files
    def save(self, path: str | os.PathLike) -> None:
        """Save to a ``.npz`` file (no pickles): every tree's arrays (exact float64 left limits and
        leaf values), the aggregation, base score, link, threshold semantics, score type and tie rule.
        The framework ``reference`` is not saved: a loaded ensemble checks witnesses with its own
        forward pass, which routes and sums as the framework does (the module docstring); pickle the
        ensemble to keep the reference."""
        offsets = np.cumsum([0] + [t.n_nodes for t in self.trees]).astype(np.int64)
        cat = {k: np.concatenate([getattr(t, k) for t in self.trees])
               for k in ("feature", "limit", "threshold", "left", "right", "value")}
        np.savez(path, format=np.array(_FILE_FORMAT), version=np.array(_FILE_VERSION),
                 n_features=np.array(self.n_features), n_outputs=np.array(self.n_outputs),
                 aggregation=np.array(self.aggregation), base_score=self.base_score, link=np.array(self.link),
                 semantics=np.array(self.semantics), score_dtype=np.array(np.dtype(self.score_dtype).name),
                 task=np.array(self.task), tie=np.array(self.tie), name=np.array(self.name),
                 framework=np.array(self.framework), offsets=offsets,
                 feature=cat["feature"].astype(np.int64), limit=cat["limit"].astype(np.float64),
                 threshold=cat["threshold"].astype(np.float64), left=cat["left"].astype(np.int64),
                 right=cat["right"].astype(np.int64), value=cat["value"].astype(np.float64))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "TreeEnsemble":
        """Load an ensemble saved by :meth:`save` (``reference`` None); a file that is not one, or a
        malformed one, raises :class:`~reluverify.errors.ModelFileError`."""
        path = os.fspath(path)
        if not os.path.exists(path):
            raise ModelFileError(f"tree ensemble file {path!r} does not exist; check the path")
        try:
            with np.load(path, allow_pickle=False) as d:
                if "format" not in d.files or str(d["format"]) != _FILE_FORMAT:
                    raise ModelFileError(f"{path!r} is not a reluverify tree-ensemble file (no 'format' entry "
                                         f"{_FILE_FORMAT!r}); save ensembles with TreeEnsemble.save")
                if int(d["version"]) > _FILE_VERSION:
                    raise ModelFileError(f"{path!r} was written by a newer reluverify (file version "
                                         f"{int(d['version'])}); upgrade")
                dtype = str(d["score_dtype"])
                if dtype not in _SCORE_DTYPES:
                    raise ModelFileError(f"{path!r}: unknown score type {dtype!r}")
                off = d["offsets"]
                arrays = {k: d[k] for k in ("feature", "limit", "threshold", "left", "right", "value")}
                trees = tuple(Tree(*(arrays[k][a:b] for k in ("feature", "limit", "threshold", "left", "right",
                                                               "value")))
                              for a, b in zip(off[:-1], off[1:]))
                return cls(trees, int(d["n_features"]), int(d["n_outputs"]), str(d["aggregation"]),
                           np.asarray(d["base_score"], np.float64), str(d["link"]), str(d["semantics"]),
                           _SCORE_DTYPES[dtype], str(d["task"]), str(d["tie"]), str(d["name"]),
                           str(d["framework"]))
        except ModelFileError:
            raise
        except NetworkError as exc:
            raise ModelFileError(f"{path!r} holds an invalid tree ensemble: {exc}") from exc
        except Exception as exc:  # zip errors, missing entries, truncated files ...
            raise ModelFileError(f"{path!r} could not be read as a tree ensemble "
                                 f"({type(exc).__name__}: {exc})") from exc

    # ------------------------------------------------------------------ forward
    @cached_property
    def _flat(self) -> tuple:
        """Every tree's nodes in one array set (global node indices), for a forward pass over all
        trees at once: ``(roots, feature, limit, left, right, value, depth)``. A leaf routes to
        itself (feature 0, limit +inf, both children the leaf), so ``depth`` routing steps bring every
        row to its leaf in every tree."""
        offsets = np.cumsum([0] + [t.n_nodes for t in self.trees]).astype(np.int64)
        feature = np.concatenate([t.feature for t in self.trees]).astype(np.int64)
        limit = np.concatenate([t.limit for t in self.trees]).astype(np.float64)
        left = np.concatenate([np.where(t.left >= 0, t.left + o, -1) for t, o in zip(self.trees, offsets)])
        right = np.concatenate([np.where(t.right >= 0, t.right + o, -1) for t, o in zip(self.trees, offsets)])
        leaf = left < 0
        own = np.arange(feature.size, dtype=np.int64)
        feature = np.where(leaf, 0, feature)
        limit = np.where(leaf, np.inf, limit)
        left = np.where(leaf, own, left).astype(np.int64)
        right = np.where(leaf, own, right).astype(np.int64)
        value = np.concatenate([t.value for t in self.trees]).astype(np.float64)
        depth = max(t.depth for t in self.trees)
        return offsets[:-1], feature, limit, left, right, value, depth

    def _global_leaves(self, X: np.ndarray) -> np.ndarray:
        """``(n, T)`` global node indices (:attr:`_flat`) of the leaf each row reaches in each tree."""
        roots, feature, limit, left, right, _, depth = self._flat
        node = np.repeat(roots[None, :], X.shape[0], axis=0)
        rows = np.arange(X.shape[0])[:, None]
        for _ in range(depth):
            go_left = X[rows, feature[node]] <= limit[node]
            node = np.where(go_left, left[node], right[node])
        return node

    def leaves(self, X) -> np.ndarray:
        """``(n, T)``: the leaf each row reaches in each tree."""
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        return self._global_leaves(X) - self._flat[0][None, :]

    def forward(self, x) -> np.ndarray:
        """The output scores (``(n_outputs,)`` for one point, ``(n, n_outputs)`` for rows), summed
        in the framework's order and float type: tree by tree, each tree's leaf value cast to
        ``score_dtype`` and added to the running sum in that type (``np.add.accumulate``: one
        addition after the other, not the pairwise summation of ``sum``)."""
        X = np.asarray(x, dtype=np.float64)
        one = X.ndim == 1
        X = np.atleast_2d(X)
        if X.shape[0] >= 256:  # many rows: tree by tree is as fast (measured) and needs less memory
            s = self._forward_per_tree(X)
            return s[0] if one else s
        dt = self.score_dtype
        value = self._flat[5]
        T, K = self.n_trees, self.n_outputs
        s = np.empty((X.shape[0], K), dtype=dt)
        step = max(1, 2_000_000 // max(1, T * K))  # rows per chunk: bounded memory
        for a in range(0, X.shape[0], step):
            Xc = X[a:a + step]
            terms = np.empty((Xc.shape[0], T + 1, K), dtype=dt)
            if self.aggregation == "average":  # sklearn: zeros, += each tree's values, / T, + base
                terms[:, 0] = 0
            else:  # boosting: base, += each tree's (scaled) values
                terms[:, 0] = self.base_score.astype(dt)
            terms[:, 1:] = value[self._global_leaves(Xc)].astype(dt)
            s[a:a + step] = np.add.accumulate(terms, axis=1, dtype=dt)[:, -1]
        if self.aggregation == "average":
            s = s / dt(T) + self.base_score.astype(dt)
        s = s.astype(np.float64)
        return s[0] if one else s

    def _forward_per_tree(self, x) -> np.ndarray:
        """:meth:`forward` written tree by tree (the definition; used for large batches, and by the
        tests that hold the all-trees pass to it bit for bit)."""
        X = np.atleast_2d(np.asarray(x, dtype=np.float64))
        dt = self.score_dtype
        if self.aggregation == "average":
            s = np.zeros((X.shape[0], self.n_outputs), dtype=dt)
            for t in self.trees:
                s += t.value[t.apply(X)].astype(dt)
            s = s / dt(self.n_trees) + self.base_score.astype(dt)
        else:
            s = np.tile(self.base_score.astype(dt), (X.shape[0], 1))
            for t in self.trees:
                s += t.value[t.apply(X)].astype(dt)
        return s.astype(np.float64)

    def classes_of(self, scores) -> np.ndarray | int:
        """The class the scores decide (``tie`` rule)."""
        S = np.asarray(scores, dtype=np.float64)
        if self.tie == "high":
            k = S.shape[-1] - 1 - np.argmax(S[..., ::-1], axis=-1)
        else:
            k = np.argmax(S, axis=-1)
        return int(k) if np.ndim(k) == 0 else k

    def predict_class(self, x):
        """The class of one point (an int) or of rows (an array), from :meth:`forward`."""
        self._need_classes("predict_class")
        return self.classes_of(self.forward(x))

    def framework_predict(self, x):
        """The source framework's ``predict`` (class indices or predictions), or None when the
        ensemble has no reference."""
        if self.reference is None:
            return None
        X = np.atleast_2d(np.asarray(x, dtype=np.float64))
        out = np.asarray(self.reference(X))
        return out[0] if np.ndim(x) == 1 else out

    def _need_classes(self, what: str) -> None:
        if self.task != "classifier":
            raise InputError(f"{what} needs a classifier; {self.name} is a regressor (ask max_confidence "
                             "or infer for its output)")

    # ------------------------------------------------------------------ structure for formulations
    def score_rounding(self, outputs=None) -> float:
        """A bound on how far the framework's float sums of the ``outputs``' scores (default: all)
        can be from their exact sums, added up over those outputs: per output the classic bound
        ``(n - 1) u sum|terms|`` of a sum of ``n`` terms in ``score_dtype`` (unit roundoff ``u``),
        doubled, with the largest leaf of each tree as its term; plus ``16 u`` for the framework's own
        mapping of scores to classes (a softmax rounding two close scores to one probability). The
        proof slack of class-change questions adds it."""
        u = float(np.finfo(self.score_dtype).eps) / 2
        outs = range(self.n_outputs) if outputs is None else list(outputs)
        total = 16.0 * u
        n_terms, sums = self._rounding_terms
        for k in outs:
            total += 2.0 * n_terms[k] * u * sums[k]
        return total

    @cached_property
    def _rounding_terms(self) -> tuple:
        """Per output: the number of terms of its score's sum and the sum of their largest sizes
        (:meth:`score_rounding`), computed once."""
        n_terms, sums = [], []
        for k in range(self.n_outputs):
            terms = [abs(float(self.base_score[k]))]
            for t in self.trees:
                v = t.value[t.leaves, k]
                if np.any(v != 0):
                    terms.append(float(np.max(np.abs(v))) * self.weight)
            n_terms.append(len(terms))
            sums.append(sum(terms))
        return n_terms, sums

    def output_trees(self, outputs) -> list:
        """Indices of the trees whose leaves touch any of ``outputs``."""
        outs = list(outputs)
        return [i for i, t in enumerate(self.trees) if np.any(t.value[t.leaves][:, outs] != 0)]

    def reachable(self, tree: int, lower, upper) -> tuple:
        """``(leaves, nodes)`` of tree ``tree`` reachable from the box ``[lower, upper]``: the
        leaves, and the internal nodes whose test the box does not decide (``L`` inside
        ``[lower, upper)``), in node order."""
        t = self.trees[tree]
        leaves, split, stack = [], [], [0]
        while stack:
            node = stack.pop()
            f = t.feature[node]
            if f < 0:
                leaves.append(node)
                continue
            L = t.limit[node]
            if upper[f] <= L:
                stack.append(t.left[node])
            elif lower[f] > L:
                stack.append(t.right[node])
            else:
                split.append(node)
                stack.extend((t.right[node], t.left[node]))
        return np.array(sorted(leaves), dtype=np.int64), np.array(sorted(split), dtype=np.int64)

    def score_bounds(self, lower, upper, weights=None) -> tuple:
        """Sound bounds ``(lo, hi)`` on ``weights · scores`` over the box (``weights`` a vector
        over the outputs; default: each output on its own, arrays): per tree the extreme reachable
        leaf, summed, plus the base, widened by :meth:`score_rounding`."""
        lower, upper = np.asarray(lower, np.float64), np.asarray(upper, np.float64)
        w = self.weight
        roots = self._flat[0]
        leaf = self.reachable_leaves(lower, upper)
        value = self._flat[5] * w
        if weights is None:
            lo, hi = self.base_score.copy(), self.base_score.copy()
        else:
            wv = np.asarray(weights, dtype=np.float64)
            lo = hi = float(self.base_score @ wv)
            value = value @ wv
        shape = (1,) * (value.ndim - 1)
        v_lo = np.minimum.reduceat(np.where(leaf.reshape(-1, *shape), value, np.inf), roots, axis=0)
        v_hi = np.maximum.reduceat(np.where(leaf.reshape(-1, *shape), value, -np.inf), roots, axis=0)
        # summed tree by tree (the order of the definition), lo + v_0 + v_1 + ...
        lo = np.add.accumulate(np.concatenate([np.reshape(lo, (1, *np.shape(lo))), v_lo]), axis=0)[-1]
        hi = np.add.accumulate(np.concatenate([np.reshape(hi, (1, *np.shape(hi))), v_hi]), axis=0)[-1]
        if weights is not None:
            lo, hi = float(lo), float(hi)
        r = self.score_rounding(None if weights is None else np.flatnonzero(np.asarray(weights) != 0))
        return lo - r, hi + r

    def reachable_leaves(self, lower, upper) -> np.ndarray:
        """A mask over the global nodes of :attr:`_flat`: the leaves some point of the box
        ``[lower, upper]`` reaches (as :meth:`reachable`, every tree at once)."""
        roots, feature, limit, left, right, _, depth = self._flat
        own = np.arange(feature.size)
        inner = left != own
        go_left = inner & ~(lower[feature] > limit)  # some point of the box has x_f <= L
        go_right = inner & ~(upper[feature] <= limit)  # some point has x_f > L
        reach = np.zeros(feature.size, dtype=bool)
        reach[roots] = True
        for _ in range(depth):
            nxt = np.zeros_like(reach)
            nxt[roots] = True
            nxt[left[go_left & reach]] = True
            nxt[right[go_right & reach]] = True
            if np.array_equal(nxt, reach):
                break
            reach = nxt
        return reach & ~inner
