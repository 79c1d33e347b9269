"""A fast attack on tree ensembles: greedy threshold crossing.

From the input, each step tries every single move that sends the current point to the other side of
one test on its current paths (a value set to the node's left limit ``L``, or to the float64 just
above it), inside the input set's hull, and keeps the move with the best gain in the wrong class's
score margin per unit of added distance. Once the class changes, moved values are put back (or
halfway back) while the class stays changed. The result is only a candidate: the caller checks it.
"""

from __future__ import annotations

import numpy as np

from ..model.trees import TreeEnsemble


def _margin(ens: TreeEnsemble, S: np.ndarray, c: int, target: int | None) -> np.ndarray:
    if target is not None:
        others = np.delete(S, target, axis=1)
        return S[:, target] - others.max(axis=1)
    return np.delete(S, c, axis=1).max(axis=1) - S[:, c]


def _moves(ens: TreeEnsemble, x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple:
    """The single moves from ``x`` (module docstring), without repeats, and their scores.

    Returns ``(F, V, S)``: per move the feature, its new value and the ensemble's scores after it
    (float64 sums, for ranking only: every point the attack returns is checked by the caller). A
    move on feature ``f`` changes only the trees whose current path tests ``f``; only those are
    routed again (all trees at once, :meth:`TreeEnsemble._flat`)."""
    roots, feature, limit, left, right, value, depth = ens._flat
    T = roots.size
    node = roots.copy()
    path = np.empty((depth, T), dtype=np.int64)
    for d in range(depth):  # the current path in every tree (a leaf repeats itself)
        path[d] = node
        node = np.where(x[feature[node]] <= limit[node], left[node], right[node])
    leaf0 = node
    tree_of = np.broadcast_to(np.arange(T), path.shape).ravel()
    nodes = path.ravel()
    inner = left[nodes] != nodes
    nodes, tree_of = nodes[inner], tree_of[inner]
    f_all, L_all = feature[nodes], limit[nodes]
    v_all = np.where(x[f_all] <= L_all, np.nextafter(L_all, np.inf), L_all)
    keep = (lo[f_all] <= v_all) & (v_all <= hi[f_all])
    if not keep.any():
        return np.zeros(0, np.int64), np.zeros(0), np.zeros((0, ens.n_outputs))
    pairs = np.unique(np.stack([f_all[keep].astype(np.float64), v_all[keep]], axis=1), axis=0)
    F, V = pairs[:, 0].astype(np.int64), pairs[:, 1]
    # the trees whose path tests each feature, grouped by feature
    ft = np.unique(np.stack([f_all, tree_of], axis=1), axis=0)
    first = np.searchsorted(ft[:, 0], F, side="left")
    count = np.searchsorted(ft[:, 0], F, side="right") - first
    move = np.repeat(np.arange(F.size), count)
    pos = np.repeat(first - np.cumsum(count) + count, count) + np.arange(count.sum())
    trees = ft[pos, 1]
    fm, vm = F[move], V[move]
    node = roots[trees]
    for _ in range(depth):
        fn = feature[node]
        xv = np.where(fn == fm, vm, x[fn])
        node = np.where(xv <= limit[node], left[node], right[node])
    S = np.repeat(ens.forward(x)[None, :], F.size, axis=0)
    np.add.at(S, move, ens.weight * (value[node] - value[leaf0[trees]]))
    return F, V, S


def greedy_attack(ens: TreeEnsemble, x0: np.ndarray, c: int, inputs, distance, *, target: int | None = None,
                  max_steps: int = 200) -> np.ndarray | None:
    """A point of ``inputs`` (an input set) near ``x0`` that ``ens`` does not classify as ``c``
    (classifies as ``target``), by greedy threshold crossing; ``distance(X)``: the norm to
    minimise (rows). None when the search stalls."""
    hull = inputs.hull()
    lo, hi = hull.lower, hull.upper

    def changed(X):
        k = ens.classes_of(ens.forward(X))
        return (k == target) if target is not None else (k != c)

    x = x0.copy()
    for _ in range(max_steps):
        if changed(x[None])[0]:
            return _shrink(ens, x0, x, changed, inputs, distance)
        F, V, S = _moves(ens, x, lo, hi)
        if not F.size:
            return None
        X = np.repeat(x[None], F.size, axis=0)
        X[np.arange(F.size), F] = V
        ok = np.array([inputs.contains(r) for r in X]) if not inputs.is_box else np.ones(F.size, bool)
        if not ok.any():
            return None
        X, S = X[ok], S[ok]
        s_x = ens.forward(x)
        cur = _margin(ens, s_x[None], c, target)[0]
        gain = _margin(ens, S, c, target) - cur
        added = distance(X) - distance(x[None])[0]
        score = gain / (np.maximum(added, 0.0) + 1e-3)  # not a tolerance: free moves rank first
        best = int(np.argmax(score))
        if gain[best] <= 0 and not np.any(gain > 0):
            # no single move helps: take the one that changes the most scores (a plateau)
            best = int(np.argmax(np.abs(S - s_x[None]).sum(axis=1)))
            if np.array_equal(X[best], x):
                return None
        x = X[best]
    return None


def _shrink(ens, x0, x, changed, inputs, distance) -> np.ndarray:
    """Move values back towards ``x0`` while the class stays changed (largest changes first)."""
    x = x.copy()
    for _ in range(3):
        improved = False
        for f in np.argsort(-np.abs(x - x0)).tolist():
            if x[f] == x0[f]:
                continue
            for v in (x0[f], 0.5 * (x0[f] + x[f])):
                y = x.copy()
                y[f] = v
                if changed(y[None])[0] and inputs.contains(y) and distance(y[None])[0] <= distance(x[None])[0]:
                    x, improved = y, True
                    break
        if not improved:
            break
    return x
