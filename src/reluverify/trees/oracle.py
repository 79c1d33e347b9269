"""Exact answers for tiny tree ensembles by enumerating the cells of the threshold grid (for tests).

Per feature, the distinct left limits ``L_1 < ... < L_m`` cut the valid range into the exact
float64 intervals ``[lo, L_1], [next(L_1), L_2], ..., [next(L_m), hi]``; every point of a product
of intervals (a cell) reaches the same leaves, so the class is constant on it. The nearest point of
a cell to ``x0`` in L-inf or L1 is ``x0`` clipped into it; in L0, a cell needs a change in exactly the
features whose interval does not hold ``x0_f``. So the minimal distortion is a minimum over cells, and
a ball is robust iff no cell of another class comes within its radius. Cost: the product of
``m_f + 1`` over the features (keep it to a few thousand cells).
"""

from __future__ import annotations

import itertools

import numpy as np

from ..model.trees import TreeEnsemble


def cells(ens: TreeEnsemble, lower, upper):
    """Yield ``(cell_lo, cell_hi)`` for every non-empty cell inside the box."""
    lower = np.asarray(lower, np.float64)
    upper = np.asarray(upper, np.float64)
    per = []
    for f in range(ens.n_features):
        lims = sorted({float(t.limit[k]) for t in ens.trees for k in np.flatnonzero(t.feature == f)})
        edges, lo = [], lower[f]
        for L in lims:
            if lo <= min(L, upper[f]) and L >= lower[f]:
                edges.append((lo, min(L, upper[f])))
            lo = max(lo, float(np.nextafter(L, np.inf)))
            if lo > upper[f]:
                break
        if lo <= upper[f]:
            edges.append((lo, upper[f]))
        per.append(edges)
    for combo in itertools.product(*per):
        yield np.array([a for a, _ in combo]), np.array([b for _, b in combo])


def minimal_distortion(ens: TreeEnsemble, x0, c: int, norm: str, lower, upper, target=None) -> tuple:
    """``(distance, point)``: the exact smallest ``norm`` change of ``x0`` inside the box that the
    ensemble classifies other than ``c`` (as ``target``); ``(inf, None)`` when none exists."""
    x0 = np.asarray(x0, np.float64)
    best, point = np.inf, None
    for lo, hi in cells(ens, lower, upper):
        p = np.clip(x0, lo, hi)
        k = ens.predict_class(p)
        if (target is not None and k != target) or (target is None and k == c):
            continue
        d = p - x0
        dist = {"linf": np.max(np.abs(d)), "l1": np.sum(np.abs(d)), "l0": np.count_nonzero(d)}[norm]
        if dist < best:
            best, point = float(dist), p
    return best, point


def robust(ens: TreeEnsemble, x0, c: int, norm: str, eps: float, lower, upper) -> bool:
    """Whether no input within ``eps`` of ``x0`` (in the box) changes the class."""
    d, _ = minimal_distortion(ens, x0, c, norm, lower, upper)
    return not d <= eps
