"""Universal adversarial perturbations: one shared change ``delta`` applied to several images.

The course notebook's follow-up question: *is there one perturbation that fools many images at
once?* Every image ``x_k`` gets its own copy of the network's rows, whose inputs are linked to one
shared perturbation vector by ``x_k = x0_k + delta``. :func:`universal_perturbation` solves it on
the engine's array MILP (:class:`UniversalMilp`: :func:`~reluverify.formulation.stack_arrays` of
:func:`~reluverify.formulation.network_arrays` per image, the size of ``delta`` encoded by its
input set from :mod:`reluverify.sets`); :class:`UniversalModel` builds the same model as Pyomo
blocks (:func:`~reluverify.formulation.add_network`) for users who add their own constraints.

**No clipping.** ``x0_k + delta`` must itself lie in the valid box (``[0, 1]^n`` by default) for
*every* image, so each ``delta_i`` is bounded by the intersection over the images:
``max_k(lo_i - x0_ki) <= delta_i <= min_k(hi_i - x0_ki)`` (and by ``eps`` for L-inf). A pixel that
is at the lower edge in one image and at the upper edge in another cannot move at all; on MNIST,
a pixel that is black (0) in any image can only get brighter.

Two modes:

* ``"max_fooled"``: maximise the number of fooled images within the budget. One binary ``f_k``
  per image, and for each wrong class ``j`` a binary ``s_kj`` with ``sum_j s_kj >= f_k`` and
  ``out_kj - out_kc >= m - M_kj (1 - s_kj)``, ``M_kj = max(0, m + U_kcj)`` where ``U_kcj`` is a
  sound upper bound of ``out_kc - out_kj`` over that image's box. Classes (and images) that the
  bounds already rule out get no binary at all (label elimination).
* ``"all"``: one perturbation that fools every image, of minimal norm (``f_k = 1``).

Soundness follows :mod:`reluverify.problems.adversarial`: the first MILP asks only for
``out_j >= out_c - VERIFY_SLACK``, so its solver bound is a proof (``upper_bound`` on the number of
images that any allowed perturbation can fool; ``distance_lower_bound`` in mode ``"all"``) and its
infeasibility a ``robust`` verdict. The reported perturbation is snapped into its bounds and every
image is re-checked by a float64 forward pass; counts and distances are recomputed from ``delta``,
never copied from the solver. When the recount falls short of the solver's claim, the MILP is
re-solved with a larger margin a bounded number of times, else the verified count is kept and the
message says so.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pyomo.environ as pyo

from ..bounds import compute_bounds
from ..bounds.base import big_m, logit_difference_upper
from ..check import class_gap, distances, solver_proof
from ..sets.l1 import project_l1
from ..domain import Box, check_norm
from ..errors import InputError
from ..formulation import add_network, linear_expr
from ..model import Network
from ..results import ShortRepr, SolveResult, Status, Verdict
from ..solvers import _check_name
from ..solvers import DEFAULT_SOLVER
from ..tolerances import (
    BIG_M_SLACK, BUDGET_CHECK_REL_TOLERANCE, DEFAULT_MARGIN, DEFAULT_TIME_LIMIT, INTEGER_BOUND_TOLERANCE, MARGIN_GROWTH, OPTIMAL_REL_GAP,
    REPAIR_SCALES, RETRY_MARGIN_STEP, VERIFY_SLACK, WITNESS_RETRIES,
)
from .common import Clock, check_time, class_index, finite_nonnegative
from .attack import backpropagate
from ..threads import limit_blas
from .dispatch import by_model

MODES = ("max_fooled", "all")
# scalings tried to push a boundary solution just past the decision boundary (unscaled first)
_REPAIR_SCALES = (0.0,) + REPAIR_SCALES


@dataclass(repr=False)
class UniversalResult(ShortRepr):
    """The answer to :func:`universal_perturbation`.

    ``delta``, ``fooled``, ``n_fooled``, ``adv_classes``, ``adv_logits`` and ``distance`` are
    recomputed from the perturbation by a float64 forward pass of every ``x0_k + delta``.
    ``upper_bound`` (mode ``"max_fooled"``) is the proven largest number of images that any
    allowed perturbation can fool; ``distance_lower_bound`` (mode ``"all"``) the proven smallest
    norm of a perturbation that fools them all. Both hold even when the solver ran out of time.
    An image counts as fooled when some other class beats its label by at least ``margin``.
    """

    verdict: Verdict
    mode: str
    norm: str
    x: np.ndarray  # (n_images, n_inputs), the images, flattened
    labels: np.ndarray
    delta: np.ndarray | None = None
    fooled: np.ndarray | None = None
    n_fooled: int = 0
    n_images: int = 0
    adv_classes: np.ndarray | None = None
    adv_logits: np.ndarray | None = None
    distance: float | None = None
    upper_bound: int | None = None
    distance_lower_bound: float | None = None
    eps: float | None = None
    budget: float | None = None
    margin: float = DEFAULT_MARGIN
    delta_lower: np.ndarray | None = None  # the bounds each delta_i is held in (intersection box)
    delta_upper: np.ndarray | None = None
    time_s: float = 0.0
    solves: list = field(default_factory=list)
    bounds_summary: list = field(default_factory=list)
    message: str = ""

    @property
    def found(self) -> bool:
        return self.delta is not None and self.verdict == Verdict.FOUND

    @property
    def x_adv(self) -> np.ndarray | None:
        """The perturbed images ``x0_k + delta`` (inside the valid box by construction)."""
        return None if self.delta is None else self.x + self.delta[None, :]

    def summary(self) -> str:
        parts = [f"universal_perturbation ({self.mode}): {self.verdict}",
                 f"fools {self.n_fooled} of {self.n_images}"]
        if self.upper_bound is not None:
            parts.append(f"proven at most {self.upper_bound}")
        if self.distance is not None:
            parts.append(f"{self.norm} distance {self.distance:.6g}")
        if self.distance_lower_bound is not None:
            parts.append(f"proven lower bound {self.distance_lower_bound:.6g}")
        parts.append(f"{self.time_s:.2f} s")
        return ", ".join(parts)


# --------------------------------------------------------------------------- input checks
def _images(network: Network, xs) -> np.ndarray:
    try:
        arr = np.asarray(xs, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError("xs must be an array of images (n_images, n_inputs) or one image") from None
    if arr.size == 0:
        raise InputError("xs is empty; pass at least one image")
    X = network.as_input(arr)
    return X[None, :] if X.ndim == 1 else X


def _labels(network: Network, X: np.ndarray, labels) -> np.ndarray:
    if labels is None:
        return np.argmax(network.forward(X), axis=1).astype(int)
    lab = np.asarray(labels).ravel()
    if lab.size != X.shape[0]:
        raise InputError(f"got {lab.size} labels for {X.shape[0]} images; give one label per image (or None)")
    return np.array([class_index(network, v, "label") for v in lab.tolist()], dtype=int)


def _positive(value, what: str):
    if value is None:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{what} must be a positive number, got {value!r}") from None
    if not np.isfinite(v) or v <= 0:
        raise InputError(f"{what} must be a positive finite number, got {value}")
    return v


def delta_box(X: np.ndarray, valid: Box, cap: float | None = None) -> tuple:
    """Per-coordinate bounds of a shared perturbation that keeps every image of ``X`` in ``valid``.

    ``lo_i = max_k(valid.lower_i - X_ki)``, ``hi_i = min_k(valid.upper_i - X_ki)``, limited to
    ``[-cap, cap]``; then nudged inwards by ulps until ``X_ki + lo_i`` and ``X_ki + hi_i`` lie in the
    valid box in floating point too (addition is monotone, so every delta in between does as well).
    """
    lo = np.max(valid.lower[None, :] - X, axis=0)
    hi = np.min(valid.upper[None, :] - X, axis=0)
    if cap is not None:
        lo, hi = np.maximum(lo, -cap), np.minimum(hi, cap)
    for _ in range(8):
        bad = np.any(X + hi[None, :] > valid.upper[None, :], axis=0) & (hi > 0)
        if not bad.any():
            break
        hi[bad] = np.nextafter(hi[bad], -np.inf)
    for _ in range(8):
        bad = np.any(X + lo[None, :] < valid.lower[None, :], axis=0) & (lo < 0)
        if not bad.any():
            break
        lo[bad] = np.nextafter(lo[bad], np.inf)
    return np.minimum(lo, 0.0), np.maximum(hi, 0.0)


# --------------------------------------------------------------------------- the model
class UniversalModel:
    """One shared perturbation, one network copy per image, and the "fooled" indicators.

    Exposed (``.model``, ``.delta``, ``.nets``) so that users can add their own constraints.
    ``open_classes[k]`` lists the wrong classes of image ``k`` that the bounds could not rule out.
    """

    def __init__(self, network: Network, X: np.ndarray, labels: np.ndarray, d_lo: np.ndarray, d_hi: np.ndarray,
                 *, mode: str, norm: str, budget: float | None, bound_method="symbolic"):
        self.network, self.X, self.labels = network, X, labels
        self.d_lo, self.d_hi = d_lo, d_hi
        self.mode, self.norm, self.budget = mode, norm, budget
        K, n = X.shape
        m = self.model = pyo.ConcreteModel(name="universal_perturbation")
        m.delta = pyo.Var(range(n), bounds=lambda b, i: (float(d_lo[i]), float(d_hi[i])))
        self.delta = [m.delta[i] for i in range(n)]
        self.free = np.flatnonzero(d_hi > d_lo)
        for i in np.flatnonzero(d_hi <= d_lo).tolist():
            m.delta[i].fix(0.0)
        self.boxes = [Box(X[k] + d_lo, X[k] + d_hi) for k in range(K)]
        self.bounds = [compute_bounds(network, box, bound_method) for box in self.boxes]
        # label elimination: class j of image k stays open if out_j can come within the slack of out_c
        # (logit_difference_upper falls back to the output bounds for a non-linear last layer)
        self.open_classes = []
        for k in range(K):
            c = int(labels[k])
            self.open_classes.append([j for j in range(network.n_outputs) if j != c
                                      and not (logit_difference_upper(self.bounds[k], j, c) < -VERIFY_SLACK)])
        self.open_images = [k for k in range(K) if self.open_classes[k]]
        self.nets = {}
        self.s = {}
        self.f = None
        self.dist = None

    @property
    def big_m(self) -> float:
        """The largest big-M constant of the model (over every image's network copy)."""
        return max(big_m(b) for b in self.bounds)

    @property
    def decided_by_bounds(self) -> bool:
        """True when the bounds alone settle the question (no MILP needed)."""
        if self.mode == "all":
            return len(self.open_images) < len(self.labels)
        return not self.open_images

    def build(self) -> None:
        m, X = self.model, self.X
        n = X.shape[1]
        images = list(range(len(self.labels))) if self.mode == "all" else self.open_images
        for k in images:
            xk = pyo.Var(range(n))
            m.add_component(f"x{k}", xk)
            self.nets[k] = add_network(m, self.network, self.bounds[k], name=f"net{k}", inputs=xk)
            row = X[k]
            m.add_component(f"link{k}", pyo.Constraint(
                range(n), rule=lambda b, i, _x=xk, _r=row: linear_expr([1.0, -1.0], [_x[i], m.delta[i]]) == float(_r[i])))
        pairs = [(k, j) for k in images for j in self.open_classes[k]]
        m.s = pyo.Var(pairs, within=pyo.Binary)
        self.s = {p: m.s[p] for p in pairs}
        if self.mode == "max_fooled":
            m.f = pyo.Var(images, within=pyo.Binary)
            self.f = m.f
            m.pick = pyo.Constraint(images, rule=lambda b, k: sum(m.s[k, j] for j in self.open_classes[k]) >= m.f[k])
        else:
            m.pick = pyo.Constraint(images, rule=lambda b, k: sum(m.s[k, j] for j in self.open_classes[k]) >= 1)
        if self.norm == "l1" and (self.budget is not None or self.mode == "all"):
            self.dist = self._l1()
            if self.budget is not None:
                m.budget = pyo.Constraint(expr=self.dist <= float(self.budget))
        elif self.mode == "all":
            self.dist = self._linf()
        if self.mode == "max_fooled":
            m.objective = pyo.Objective(expr=sum(m.f[k] for k in images), sense=pyo.maximize)
        else:
            m.objective = pyo.Objective(expr=self.dist, sense=pyo.minimize)

    def _l1(self):
        m, lo, hi = self.model, self.d_lo, self.d_hi
        free = self.free.tolist()
        up = [i for i in free if lo[i] >= 0]
        down = [i for i in free if hi[i] <= 0]
        both = [i for i in free if lo[i] < 0 < hi[i]]
        m.abs_delta = pyo.Var(both, bounds=lambda b, i: (0.0, float(max(hi[i], -lo[i]))))
        a = m.abs_delta
        m.abs_pos = pyo.Constraint(both, rule=lambda b, i: a[i] >= m.delta[i])
        m.abs_neg = pyo.Constraint(both, rule=lambda b, i: a[i] >= -m.delta[i])
        coefs = [1.0] * len(up) + [-1.0] * len(down) + [1.0] * len(both)
        vars_ = [m.delta[i] for i in up] + [m.delta[i] for i in down] + [a[i] for i in both]
        return linear_expr(coefs, vars_)

    def _linf(self):
        m, lo, hi = self.model, self.d_lo, self.d_hi
        free = self.free.tolist()
        m.eps_linf = pyo.Var(bounds=(0.0, float(max(np.max(hi), -np.min(lo)))))
        e = m.eps_linf
        m.linf_pos = pyo.Constraint([i for i in free if hi[i] > 0], rule=lambda b, i: m.delta[i] <= e)
        m.linf_neg = pyo.Constraint([i for i in free if lo[i] < 0], rule=lambda b, i: -m.delta[i] <= e)
        return e

    # ----- the engine's array MILP (what universal_perturbation solves)
    def array_milp(self, milp_margin: float, cutoff, solver: str, threads: int | None = None) -> "UniversalMilp":
        """The same MILP as :meth:`build` + :meth:`set_margin` + :meth:`set_cutoff`, as arrays on
        ``solver``'s array model (one copy of the network's rows per image, :func:`~reluverify.formulation.stack_arrays`),
        the size of the shared perturbation encoded by its input set (:mod:`reluverify.sets`)."""
        return UniversalMilp(self, milp_margin, cutoff, solver, threads)

    def set_margin(self, milp_margin: float) -> None:
        """(Re)build the rows ``out_kj - out_kc >= milp_margin - M_kj (1 - s_kj)``."""
        m = self.model
        if m.component("gap") is not None:
            m.del_component("gap")
        rows = {}
        for (k, j), s in self.s.items():
            c = int(self.labels[k])
            out = self.nets[k].outputs
            M = max(0.0, milp_margin + logit_difference_upper(self.bounds[k], c, j)) + BIG_M_SLACK
            # out_j - out_c + M s >= milp_margin - M ... written as one linear row
            rows[k, j] = linear_expr([1.0, -1.0, -M], [out[j], out[c], s], M) >= float(milp_margin)
        m.gap = pyo.Constraint(list(rows), rule=lambda b, k, j: rows[k, j])

    def set_cutoff(self, value) -> None:
        """Ask only for answers better than a known one: ``sum f >= value`` (mode ``max_fooled``)
        or ``distance <= value`` (mode ``all``); ``None`` removes the row."""
        m = self.model
        if m.component("cutoff") is not None:
            m.del_component("cutoff")
        if value is None:
            return
        if self.mode == "max_fooled":
            m.cutoff = pyo.Constraint(expr=sum(self.f[k] for k in self.f) >= int(value))
        else:
            m.cutoff = pyo.Constraint(expr=self.dist <= float(value))

    def claimed(self) -> int:
        """How many images the solver's solution claims to fool."""
        if self.f is None:
            return len(self.labels)
        return int(sum(1 for k in self.f if self.f[k].value is not None and self.f[k].value > 0.5))

    def solution(self) -> np.ndarray:
        return np.array([0.0 if (v.value is None) else float(v.value) for v in self.delta], dtype=np.float64)


class UniversalMilp:
    """One solve of the universal-perturbation MILP on a backend's array model: columns of every
    image's network copy, the shared ``delta`` (its box ``[d_lo, d_hi]``), a binary ``s_kj`` per
    open (image, wrong class) pair and, in mode ``max_fooled``, ``f_k`` per image."""

    def __init__(self, um: UniversalModel, milp_margin: float, cutoff, solver: str, threads: int | None):
        from ..engine.milp import open_model
        from ..formulation import network_arrays, stack_arrays
        from ..sets import ball

        X, labels, mode = um.X, um.labels, um.mode
        K, n = X.shape
        images = list(range(K)) if mode == "all" else um.open_images
        arrays, offsets = stack_arrays([network_arrays(um.network, um.bounds[k]) for k in images])
        self.big_m = um.big_m
        model = self.model = open_model(arrays, solver, threads=threads, big_m_value=self.big_m)
        n_out = um.network.n_outputs
        delta = np.array([model.add_column(float(um.d_lo[i]), float(um.d_hi[i])) for i in range(n)], dtype=np.int64)
        self.delta_cols = delta
        ins = np.asarray(arrays.input_cols).reshape(len(images), n)
        outs = np.asarray(arrays.output_cols).reshape(len(images), n_out)
        # x_k = x0_k + delta: one equality row per image and value
        model.add_rows(X[images].ravel(), X[images].ravel(),
                       [([int(ins[a, i]), int(delta[i])], [1.0, -1.0]) for a in range(len(images)) for i in range(n)])
        pick_rows, pick_lo = [], []
        gap_rows, gap_lo = [], []
        self.f_cols = []
        for a, k in enumerate(images):
            c = int(labels[k])
            s_cols = [model.add_column(0.0, 1.0, integral=True) for _ in um.open_classes[k]]
            if mode == "max_fooled":
                f = model.add_column(0.0, 1.0, integral=True)
                self.f_cols.append(f)
                pick_rows.append((s_cols + [f], [1.0] * len(s_cols) + [-1.0]))  # sum_j s_kj >= f_k
                pick_lo.append(0.0)
            else:
                pick_rows.append((s_cols, [1.0] * len(s_cols)))  # sum_j s_kj >= 1
                pick_lo.append(1.0)
            for j, sc in zip(um.open_classes[k], s_cols):
                M = max(0.0, milp_margin + logit_difference_upper(um.bounds[k], c, j)) + BIG_M_SLACK
                # out_j - out_c >= milp_margin - M (1 - s_kj)
                gap_rows.append(([int(outs[a, j]), int(outs[a, c]), sc], [1.0, -1.0, -M]))
                gap_lo.append(milp_margin - M)
        model.add_rows(np.array(pick_lo), np.inf, pick_rows)
        model.add_rows(np.array(gap_lo), np.inf, gap_rows)
        size = None
        if um.norm == "l1" and (um.budget is not None or mode == "all"):
            size = ball("l1", np.zeros(n), None, valid=Box(um.d_lo, um.d_hi))
            if um.budget is not None:
                size.with_radius(float(um.budget)).encode(model, delta)
        elif mode == "all":
            size = ball("linf", np.zeros(n), None, valid=Box(um.d_lo, um.d_hi))
        dist = None
        if size is not None:
            cols, coefs, const = size.encode_distance(model, delta)
            dist = ({int(col): float(cf) for col, cf in zip(cols, coefs)}, float(const))
        if mode == "max_fooled":
            model.set_objective({f: 1.0 for f in self.f_cols}, "max")
            if cutoff is not None:
                model.add_rows(float(int(cutoff)), np.inf, [(self.f_cols, [1.0] * len(self.f_cols))])
        else:
            model.set_objective(dist[0], "min", offset=dist[1])
            if cutoff is not None:
                model.add_rows(-np.inf, float(cutoff) - dist[1], [(list(dist[0]), list(dist[0].values()))])
        self.values = None

    def solve(self, time_limit: float | None) -> SolveResult:
        sres, values = self.model.solve(time_limit=time_limit)
        self.values = values
        return sres

    def claimed(self) -> int:
        """How many images the solver's solution claims to fool."""
        if not self.f_cols:
            return -1
        return int(np.count_nonzero(np.asarray(self.values)[self.f_cols] > 0.5))

    def solution(self) -> np.ndarray:
        return np.asarray(self.values, dtype=np.float64)[self.delta_cols]


# --------------------------------------------------------------------------- checking a perturbation
class _Checker:
    """Snaps a perturbation into its allowed set and recounts the fooled images in float64."""

    def __init__(self, network, X, labels, d_lo, d_hi, norm, eps, budget, margin):
        self.network, self.X, self.labels = network, X, labels
        self.d_lo, self.d_hi = d_lo, d_hi
        self.norm, self.eps, self.budget, self.margin = norm, eps, budget, margin

    def fit(self, delta: np.ndarray) -> np.ndarray:
        d = np.clip(np.where(np.isfinite(delta), delta, 0.0), self.d_lo, self.d_hi)
        if self.norm == "l1" and self.budget is not None:
            l1 = float(np.sum(np.abs(d)))
            if l1 > self.budget:
                d = np.clip(d * (self.budget / l1), self.d_lo, self.d_hi)
                for _ in range(4):  # rounding of the scaling: shrink by a hair until it fits
                    if float(np.sum(np.abs(d))) <= self.budget:
                        break
                    d = d * (1.0 - BUDGET_CHECK_REL_TOLERANCE)
        return d

    def allowed(self, d: np.ndarray) -> str | None:
        if not np.all(np.isfinite(d)):
            return "the perturbation has NaN or infinite values"
        if np.any(d < self.d_lo) or np.any(d > self.d_hi):
            return "the perturbation leaves its box"
        dist = distances(d, np.zeros_like(d))
        if self.eps is not None and dist["linf"] > self.eps:
            return f"L-inf size {dist['linf']:.9g} exceeds eps {self.eps}"
        if self.budget is not None and self.norm == "l1" and dist["l1"] > self.budget * (1 + BUDGET_CHECK_REL_TOLERANCE):
            return f"L1 size {dist['l1']:.9g} exceeds the budget {self.budget}"
        return None

    def evaluate(self, delta: np.ndarray) -> dict:
        d = self.fit(delta)
        problem = self.allowed(d)
        Xa = self.X + d[None, :]
        logits = self.network.forward(Xa)
        gaps = np.array([class_gap(logits[k], int(self.labels[k])) for k in range(len(self.labels))])
        fooled = (gaps > 0) & (gaps >= self.margin)
        if problem is not None:
            fooled[:] = False
        return {"delta": d, "logits": logits, "gaps": gaps, "fooled": fooled, "n": int(fooled.sum()),
                "distance": distances(d, np.zeros_like(d))[self.norm], "problem": problem}

    def repair(self, delta: np.ndarray, want_all: bool) -> dict:
        """Try small outward scalings of ``delta``: boundary solutions often miss by rounding or by
        the margin. The best count wins (``max_fooled``); in mode ``all`` the smallest scaling that
        fools every image, refined by bisection so the distance grows as little as possible."""
        best, prev = None, 0.0
        for s in _REPAIR_SCALES:
            ev = self.evaluate(delta * (1.0 + s))
            if want_all:
                if ev["n"] == len(self.labels) and ev["problem"] is None:
                    a, b, best = prev, s, ev
                    for _ in range(30 if s > 0 else 0):
                        mid = 0.5 * (a + b)
                        e2 = self.evaluate(delta * (1.0 + mid))
                        if e2["n"] == len(self.labels) and e2["problem"] is None:
                            b, best = mid, e2
                        else:
                            a = mid
                    return best
                prev = s
                if best is None:
                    best = ev
            elif best is None or ev["n"] > best["n"]:
                best = ev
        return best


# --------------------------------------------------------------------------- a cheap heuristic
def _gap_gradients(network: Network, Xa: np.ndarray, labels: np.ndarray) -> tuple:
    """Per image: ``gap_k = max_{j != c_k} out_kj - out_kc`` and its gradient with respect to the input."""
    out, pre = network.forward(Xa, return_all=True)
    rows = np.arange(len(Xa))
    masked = out.copy()
    masked[rows, labels] = -np.inf
    j = np.argmax(masked, axis=1)
    gap = out[rows, j] - out[rows, labels]
    e = np.zeros_like(out)  # out_j - out_c as rows over the outputs
    e[rows, j] += 1.0
    e[rows, labels] -= 1.0
    return gap, backpropagate(network, pre, network.layers[-1].vjp(pre[-1], e))


def _attack(chk: "_Checker", lo: np.ndarray, hi: np.ndarray, l1_radius: float | None, want_all: bool,
            steps: int = 80, restarts: int | None = None, seed: int = 0) -> dict | None:
    """Projected gradient ascent on the gaps of the images not yet fooled (by ``margin`` plus a
    little), one shared ``delta`` in ``[lo, hi]`` (and the L1 ball). Proves nothing; every answer
    goes through :meth:`_Checker.evaluate` like the MILP's."""
    network, X, labels, K = chk.network, chk.X, chk.labels, len(chk.labels)
    if not network.layers[-1].affine or not np.any(hi > lo):
        return None
    rng = np.random.default_rng(seed)
    if restarts is None:
        restarts = 1 + min(K, 12) + 3
    width = float(np.max(hi - lo))
    keep = 0.05 + chk.margin  # push an image until it is fooled by this much, then leave it
    best = None
    for r in range(restarts):
        # restart 0: every image alike, from delta = 0; then one restart focused on each image
        # (the hardest one may only fall when it leads); then random starts and weights
        if r == 0:
            weights, d = np.ones(K), np.zeros_like(lo)
        elif r <= K and K > 1:
            weights, d = np.full(K, 0.25), np.zeros_like(lo)
            weights[r - 1] = 1.0
        else:
            weights, d = rng.uniform(0.2, 1.0, K), lo + rng.random(lo.size) * (hi - lo)
        if l1_radius is not None:
            d = project_l1(d, lo, hi, l1_radius)
        for it in range(steps):
            gap, G = _gap_gradients(network, X + d[None, :], labels)
            n_now = int(np.sum((gap > 0) & (gap >= chk.margin)))
            if n_now > 0 and (best is None or n_now >= best["n"]):
                ev = chk.evaluate(d)  # the authoritative count
                if ev["problem"] is None and (best is None or ev["n"] > best["n"]
                                              or (ev["n"] == best["n"] and ev["distance"] < best["distance"])):
                    best = ev
            if want_all and n_now == K:
                break
            push = (gap < keep).astype(float) * weights
            if not push.any():
                break
            norms = np.linalg.norm(G, axis=1) + 1e-12  # not a tolerance: keeps the division finite
            g = (push / norms) @ G
            frac = 1.0 - it / steps
            if l1_radius is None:
                d = np.clip(d + (0.25 * frac + 0.02) * width * np.sign(g), lo, hi)
            else:
                top = np.abs(g) >= np.quantile(np.abs(g), 0.95)
                u = np.sign(g) * top
                u /= max(1.0, float(np.sum(np.abs(u))))
                d = project_l1(d + (0.5 * frac + 0.05) * l1_radius * u, lo, hi, l1_radius)
    if best is None or best["n"] == 0:
        return None
    return best


def _heuristic(chk: "_Checker", want_all: bool) -> dict | None:
    """The gradient attack; in mode ``all`` also a bisection on the size that fools every image."""
    lo, hi, K = chk.d_lo, chk.d_hi, len(chk.labels)
    l1 = chk.budget if chk.norm == "l1" else None
    if chk.norm == "l1" and l1 is None:
        l1 = float(np.sum(np.maximum(-lo, hi)))
    first = _attack(chk, lo, hi, l1, want_all)
    if not want_all:
        return first
    if first is None or first["n"] < K:
        return None
    best = first
    a, b = 0.0, best["distance"]
    for _ in range(10):  # smallest size at which the attack still fools every image
        r = 0.5 * (a + b)
        if r <= 0:
            break
        if chk.norm == "linf":
            ev = _attack(chk, np.maximum(lo, -r), np.minimum(hi, r), None, True, steps=50, restarts=3)
        else:
            ev = _attack(chk, lo, hi, r, True, steps=50, restarts=3)
        if ev is not None and ev["n"] == K:
            if ev["distance"] < best["distance"]:
                best = ev
            b = min(r, ev["distance"])
        else:
            a = r
    return best


# --------------------------------------------------------------------------- the problem
@limit_blas
@by_model
def universal_perturbation(
    network: Network,
    xs,
    labels=None,
    *,
    eps: float | None = None,
    norm: str = "linf",
    mode: str = "max_fooled",
    linf_cap: float | None = None,
    solver: str = DEFAULT_SOLVER,
    time_limit: float | None = DEFAULT_TIME_LIMIT,
    threads: int | None = None,
    margin: float = DEFAULT_MARGIN,
    valid: Box | None = None,
    bound_method="symbolic",
    attack: bool = True,
    budget: float | None = None,
) -> UniversalResult:
    """One perturbation ``delta`` added to every image of ``xs`` that fools as many of them as
    possible (``mode="max_fooled"``) or all of them with the smallest norm (``mode="all"``).

    ``labels`` defaults to each image's predicted class; an image is fooled when another class
    beats its label by at least ``margin`` in the float64 forward pass. Size: ``eps``, the radius
    of ``delta`` in ``norm`` (``"linf"`` or ``"l1"``; required for ``max_fooled``, an optional cap
    for ``all``); ``linf_cap`` caps every value of ``delta`` besides (useful with L1).
    ``budget=B`` is the old spelling of an L1 size (then ``eps`` was the per-value cap): it still
    works, with a DeprecationWarning. ``x0_k + delta`` stays in ``valid`` (``[0, 1]^n`` by
    default) for every image, without clipping (see the module notes).

    A gradient attack runs first (``attack=False`` skips it); the MILP then only looks for better
    answers (a cutoff row), and its bound or infeasibility proves how good the answer is.

    Verdicts: ``found`` — a re-checked perturbation fools at least one image (``max_fooled``) or
    all of them (``all``); ``robust`` — the solver (or the bounds alone) proved that no allowed
    perturbation fools any image (``max_fooled``) / all images (``all``); else ``unknown``.
    """
    norm = check_norm(norm)
    if norm not in ("linf", "l1"):
        raise InputError(f"universal perturbations support the norms 'linf' and 'l1', got {norm!r}")
    if mode not in MODES:
        raise InputError(f"mode must be one of {MODES}, got {mode!r}")
    _check_name(solver)
    check_time(time_limit)
    margin = finite_nonnegative(margin, "margin")
    if budget is not None:  # the old names: budget = the L1 size, eps = the per-value cap
        warnings.warn("universal_perturbation(budget=B, eps=CAP) is now eps=B, linf_cap=CAP (eps is the size in "
                      "norm everywhere); the old names will be removed", DeprecationWarning, stacklevel=3)
        if linf_cap is not None:
            raise InputError("give the per-value cap once, as linf_cap= (with budget=, eps= was its old name)")
        eps = _positive(eps, "eps")  # the per-value cap, in the old spelling
    else:  # below, ``budget`` is the L1 size and ``eps`` the per-value bound, as the model needs them
        eps = _positive(eps, "eps")
        linf_cap = _positive(linf_cap, "linf_cap")
        if norm == "l1":
            budget, eps = eps, linf_cap
            if budget is None and mode == "max_fooled":
                raise InputError("mode='max_fooled' with norm='l1' needs eps (the L1 size of the perturbation)")
        elif linf_cap is not None:
            eps = linf_cap if eps is None else min(eps, linf_cap)
    if budget is not None:
        b = finite_nonnegative(budget, "eps" if norm == "l1" else "budget")
        if b == 0:
            raise InputError("an L1 size of 0 allows no change at all; give a positive eps")
        budget = b
    if norm == "linf" and budget is not None:
        raise InputError("for norm='linf' give the radius as eps, not as budget")
    if mode == "max_fooled" and norm == "linf" and eps is None:
        raise InputError("mode='max_fooled' with norm='linf' needs eps (the L-inf radius of the perturbation)")
    if mode == "max_fooled" and norm == "l1" and budget is None:
        raise InputError("mode='max_fooled' with norm='l1' needs eps (the L1 size of the perturbation)")

    X = _images(network, xs)
    K, n = X.shape
    labs = _labels(network, X, labels)
    valid = valid if valid is not None else Box.uniform(n)
    if not isinstance(valid, Box):
        raise InputError(f"valid must be a reluverify Box, got {type(valid).__name__}")
    valid.check_size(n)
    outside = np.flatnonzero(np.any((X < valid.lower) | (X > valid.upper), axis=1))
    if outside.size:
        raise InputError(f"image {int(outside[0])} lies outside the valid box; scale the images "
                         "(divide by 255) or pass valid=")

    clock = Clock(time_limit)
    d_lo, d_hi = delta_box(X, valid, eps)
    res = UniversalResult(verdict=Verdict.UNKNOWN, mode=mode, norm=norm, x=X, labels=labs, n_images=K,
                          eps=eps, budget=budget, margin=margin, delta_lower=d_lo, delta_upper=d_hi)
    chk = _Checker(network, X, labs, d_lo, d_hi, norm, eps, budget, margin)
    want_all = mode == "all"
    notes = []

    def fools_all(ev):
        return ev is not None and ev["problem"] is None and ev["n"] == K

    def better(a, b):  # is evaluation a a better answer than b?
        if a is None or a["problem"] is not None:
            return False
        if want_all:
            return a["n"] == K and (b is None or a["distance"] < b["distance"])
        return a["n"] > 0 and (b is None or a["n"] > b["n"])

    best, source = None, None
    zero = chk.evaluate(np.zeros(n))  # images that are already not classified as their labels
    if better(zero, best):
        best, source = zero, "delta = 0"
    if want_all and best is not None:  # every image is already misclassified: delta = 0 is optimal
        return _finish(res, best, clock, Verdict.FOUND, "every image is already not classified as its label: "
                       "delta = 0", lower_dist=0.0)
    um = UniversalModel(network, X, labs, d_lo, d_hi, mode=mode, norm=norm, budget=budget, bound_method=bound_method)
    res.bounds_summary = [b.summary() for b in um.bounds]
    if attack and not um.decided_by_bounds:
        h = _heuristic(chk, want_all)
        if better(h, best):
            best, source = h, "gradient attack"
    n_open = len(um.open_images)
    upper = n_open if mode == "max_fooled" else None  # the bounds alone prove this much
    lower_dist = None
    proven_robust = False

    if um.decided_by_bounds:
        proven_robust = True
        notes.append("decided by the bounds alone: " + (
            "no wrong class can reach the label of any image" if mode == "max_fooled" else
            f"images {[k for k in range(K) if not um.open_classes[k]]} cannot be fooled by any allowed perturbation"))
    elif mode == "max_fooled" and best is not None and best["n"] >= n_open:
        notes.append(f"no MILP needed: the bounds rule out the other {K - n_open} images" if n_open < K
                     else "no MILP needed: every image is fooled")
    else:
        claimed_first = None
        for attempt in range(WITNESS_RETRIES + 1):
            if clock.expired():
                notes.append("time limit reached" + (" before the solver could run" if attempt == 0 else ""))
                break
            # attempt 0: the proof MILP (a wrong class within VERIFY_SLACK of the label);
            # later attempts: a real margin, so that the float64 check passes
            milp_margin = -VERIFY_SLACK if attempt == 0 else margin * MARGIN_GROWTH ** (attempt - 1) + RETRY_MARGIN_STEP
            cutoff = None if best is None else (best["n"] + 1 if mode == "max_fooled" else best["distance"])
            milp = um.array_milp(milp_margin, cutoff, solver, threads)
            sres = milp.solve(None if clock.left() is None else max(clock.left(), 0.05))
            res.solves.append(sres)
            if attempt == 0:
                proof = solver_proof(sres, um.big_m)
                if proof.note:
                    notes.append(proof.note)
                if sres.status == Status.INFEASIBLE and not proof.infeasible:
                    break  # an infeasibility that proves nothing, and no point either
                if proof.infeasible:
                    if cutoff is None:
                        proven_robust = True
                    elif mode == "max_fooled":
                        upper = best["n"]  # nothing fools more images than the answer we have
                    else:
                        lower_dist = best["distance"]  # nothing smaller fools them all
                    break
                if proof.bound is not None:
                    # with a cutoff the MILP bounds only the answers better than ours: the proven
                    # bound is the better of the two
                    if mode == "max_fooled":
                        upper = min(n_open, max(0, int(math.floor(proof.bound + INTEGER_BOUND_TOLERANCE))))
                        if best is not None:
                            upper = max(upper, best["n"])
                    else:
                        lower_dist = max(0.0, proof.bound)
                        if sres.objective is not None:
                            lower_dist = min(lower_dist, float(sres.objective))
                        if best is not None:
                            lower_dist = min(lower_dist, best["distance"])
            elif sres.status == Status.INFEASIBLE:
                notes.append(f"no perturbation fools more images by margin {milp_margin:.3g}" if mode == "max_fooled"
                             else f"no smaller perturbation fools all images by margin {milp_margin:.3g}")
                break
            if not sres.has_solution or milp.values is None:
                notes.append(f"the MILP gave no solution ({sres.status})")
                break
            claimed = milp.claimed() if mode == "max_fooled" else K
            if attempt == 0:
                claimed_first = claimed
            cand = chk.repair(milp.solution(), want_all)
            if better(cand, best):
                best, source = cand, "MILP"
            if mode == "max_fooled":
                have = 0 if best is None else best["n"]
                if have >= claimed or (upper is not None and have >= upper):
                    break
                notes.append(f"the MILP's perturbation fools {cand['n']} images in the float64 check, "
                             f"not the {claimed} it claimed; re-solving with a larger margin")
            else:
                if best is not None:
                    # the proof MILP's optimum sits on the boundary; pushing it past by ``margin``
                    # (repair) can cost more than solving with the margin: then solve once more
                    if (attempt == 0 and lower_dist is not None
                            and best["distance"] - lower_dist > OPTIMAL_REL_GAP * best["distance"] + 1e-12):  # not a tolerance: a zero distance
                        continue
                    break
                notes.append("the MILP's perturbation does not fool every image in the float64 check; "
                             "re-solving with a larger margin")
        if mode == "max_fooled" and claimed_first is not None and (0 if best is None else best["n"]) < claimed_first:
            notes.append(f"kept the verified count {0 if best is None else best['n']} "
                         f"(the first MILP claimed {claimed_first})")
    if source is not None:
        notes.append(f"perturbation from the {source}")

    if mode == "max_fooled":
        n_best = 0 if best is None else best["n"]
        if upper is not None and n_best > upper:  # a verified answer beyond a "proof": the solver erred
            notes.append(f"verified count {n_best} exceeds the solver's bound {upper}; bound discarded")
            upper = n_best
        if n_best >= 1:
            verdict = Verdict.FOUND
            head = (f"fools {n_best} of {K} images (proven maximum)" if upper == n_best
                    else f"fools {n_best} of {K} images; proven at most {upper}")
        elif proven_robust or upper == 0:
            verdict = Verdict.ROBUST
            head = f"no allowed perturbation fools any of the {K} images (proof)"
        else:
            verdict = Verdict.UNKNOWN
            head = f"no verified perturbation; proven at most {upper} of {K} images can be fooled"
        res.upper_bound = upper
    else:
        if best is not None and lower_dist is not None and best["distance"] < lower_dist:
            notes.append(f"verified distance {best['distance']:.6g} below the solver's bound {lower_dist:.6g}; "
                         "bound discarded")
            lower_dist = best["distance"]
        if best is not None:
            verdict = Verdict.FOUND
            head = f"one perturbation fools all {K} images, {norm} size {best['distance']:.6g}"
            if lower_dist is not None:
                gap = best["distance"] - lower_dist
                head += (" (optimal)" if gap <= OPTIMAL_REL_GAP * max(1.0, best["distance"])
                         else f" (proven lower bound {lower_dist:.6g})")
        elif proven_robust:
            verdict = Verdict.ROBUST
            head = f"no allowed perturbation fools all {K} images (proof)"
        else:
            verdict = Verdict.UNKNOWN
            head = "no verified perturbation fools all images"
            if lower_dist is not None:
                head += f"; proven lower bound on its size {lower_dist:.6g}"
    if best is None and mode == "max_fooled":
        best_eval = zero
        best_eval = dict(best_eval, delta=None)
    else:
        best_eval = best
    return _finish(res, best_eval, clock, verdict, head + ("; " + "; ".join(notes) if notes else ""),
                   lower_dist=lower_dist)


def _finish(res: UniversalResult, ev: dict | None, clock, verdict, message, lower_dist=None) -> UniversalResult:
    """Fill a result from a checked evaluation (``ev["delta"] is None``: no perturbation to report)."""
    K = res.n_images
    if ev is not None and ev.get("delta") is not None:
        res.delta = ev["delta"]
        res.fooled = ev["fooled"].copy()
        res.n_fooled = int(ev["n"])
        res.adv_logits = ev["logits"]
        res.adv_classes = np.argmax(ev["logits"], axis=1).astype(int)
        res.distance = float(ev["distance"])
    else:
        res.fooled = np.zeros(K, dtype=bool)
        res.n_fooled = 0
    if res.mode == "all":
        res.distance_lower_bound = lower_dist
    res.verdict = verdict
    res.message = message
    res.time_s = clock.elapsed()
    return res
