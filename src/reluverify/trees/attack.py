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
        cand_f, cand_v = [], []
        for t in ens.trees:
            node = 0
            while t.feature[node] >= 0:
                f, L = int(t.feature[node]), float(t.limit[node])
                if x[f] <= L:
                    v = float(np.nextafter(L, np.inf))
                    node = int(t.left[node])
                else:
                    v = L
                    node = int(t.right[node])
                if lo[f] <= v <= hi[f]:
                    cand_f.append(f)
                    cand_v.append(v)
        if not cand_f:
            return None
        F, V = np.array(cand_f), np.array(cand_v)
        X = np.repeat(x[None], F.size, axis=0)
        X[np.arange(F.size), F] = V
        ok = np.array([inputs.contains(r) for r in X]) if not inputs.is_box else np.ones(F.size, bool)
        if not ok.any():
            return None
        X = X[ok]
        cur = _margin(ens, ens.forward(x[None]), c, target)[0]
        gain = _margin(ens, ens.forward(X), c, target) - cur
        added = distance(X) - distance(x[None])[0]
        score = gain / (np.maximum(added, 0.0) + 1e-3)  # not a tolerance: free moves rank first
        best = int(np.argmax(score))
        if gain[best] <= 0 and not np.any(gain > 0):
            # no single move helps: take the one that changes the most scores (a plateau)
            best = int(np.argmax(np.abs(ens.forward(X) - ens.forward(x[None])).sum(axis=1)))
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
