"""Elementwise activations and the layer base class of kinds whose nonlinearity acts entry by entry.

An :class:`ElementwiseLayer` is a linear map (the kind's own: dense matrix, convolution, ...)
followed by an :class:`ElementwiseActivation` applied to each pre-activation entry. The activation
owns everything about the nonlinearity — forward and gradient, output range, phases, its linear
relaxation (:class:`ElementwiseRelaxation`), its MILP and LP rows, its branching — once, for every
kind that uses it: :class:`ReLU` and :class:`Identity` here (the two activations of
:class:`~reluverify.model.layers.dense.Dense`; a convolution picks the same objects). A new
activation is a subclass of :class:`ElementwiseActivation` (see ``tests/test_layer_extension.py``
for a leaky ReLU written outside the package).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .base import ACTIVE, INACTIVE, UNSTABLE, Layer, LpRows, MilpPlan, RowBlock, csr_rows

_EMPTY = np.array([], dtype=np.int64)


def _lift(a: np.ndarray, A: np.ndarray) -> np.ndarray:
    """Per-entry values ``a`` (..., n) broadcast against coefficients ``A`` (..., m, n) or (..., n)."""
    return a[..., None, :] if A.ndim > a.ndim else a


def _dot(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``sum_n A[..., n] b[..., n]`` for one box (``b`` 1-D: ``A @ b``), a batch of boxes with
    several rows each (``A`` (B, m, n), ``b`` (B, n)) or one row per box (``A``, ``b`` (B, n))."""
    if b.ndim == 1:
        return A @ b
    if A.ndim > b.ndim:
        return np.einsum("bmn,bn->bm", A, b)
    return np.einsum("bn,bn->b", A, b)


@dataclass
class ElementwiseRelaxation:
    """Per entry ``a_low z + b_low <= h <= a_up z + b_up`` for ``z`` within its bounds
    (``b_low`` None means 0). Entries in ``free`` have ``b_low = 0`` and stay sound with any
    lower slope in ``[free_min, free_max]`` (the parameters optimised bounds move).

    Arrays have the bounds' shape: ``(n,)`` for one box, ``(B, n)`` for a batch of boxes."""

    a_low: np.ndarray
    a_up: np.ndarray
    b_up: np.ndarray
    b_low: np.ndarray | None = None
    free: np.ndarray | None = None
    free_min: float = 0.0
    free_max: float = 1.0
    pre_index: np.ndarray | None = None  # None: the same entries as the coefficients' columns
    elementwise = True

    def lower(self, A: np.ndarray, offset: bool = True) -> tuple:
        """``(D, c)`` with ``A·h >= D·z + c``: the lower line where ``A > 0``, the upper where
        ``A < 0`` (``c`` None with ``offset=False``, for callers that need only ``D``)."""
        pos, neg = np.maximum(A, 0.0), np.minimum(A, 0.0)
        D = pos * _lift(self.a_low, A) + neg * _lift(self.a_up, A)
        if not offset:
            return D, None
        c = _dot(neg, self.b_up)
        if self.b_low is not None:
            c = c + _dot(pos, self.b_low)
        return D, c

    def upper(self, A: np.ndarray) -> tuple:
        """``(D, c)`` with ``A·h <= D·z + c``."""
        pos, neg = np.maximum(A, 0.0), np.minimum(A, 0.0)
        D = pos * _lift(self.a_up, A) + neg * _lift(self.a_low, A)
        c = _dot(pos, self.b_up)
        if self.b_low is not None:
            c = c + _dot(neg, self.b_low)
        return D, c

    def lower_stacked(self, A: np.ndarray) -> tuple:
        """:meth:`lower` for batched coefficients ``A`` (B, m, n), with one temporary fewer
        (``A a_low + min(A, 0) (a_up - a_low)``): the form of the batched strategies."""
        neg = np.minimum(A, 0.0)
        c = _dot(neg, self.b_up)
        D = A * _lift(self.a_low, A)
        D += neg * _lift(self.a_up - self.a_low, A)  # = pos * a_low + neg * a_up
        if self.b_low is not None:
            c = c + _dot(np.maximum(A, 0.0), self.b_low)
        return D, c


LinearRows = Callable  # neurons -> the layer's LinearMap restricted to those rows


class ElementwiseActivation:
    """An elementwise nonlinearity ``h_i = σ(z_i)`` and all its rules (see the module docstring).

    Subclasses set ``name`` (the readable name a layer reports, e.g. ``"relu"``), the flags
    ``nonlinear`` (has phases that bounds may leave undecided), ``affine``, ``monotone``,
    ``nonnegative`` (see :class:`~reluverify.model.layers.base.Layer`), and implement the methods.
    Bounds ``zl``/``zu`` may be batched (leading axes)."""

    name = ""
    nonlinear = True
    affine = False
    monotone = False
    nonnegative = False
    split_point = 0.0

    def __call__(self, z: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def vjp(self, z: np.ndarray, g: np.ndarray) -> np.ndarray:  # pragma: no cover
        """Gradient of ``g · σ(z)`` with respect to ``z``."""
        raise NotImplementedError

    def output_range(self, zl, zu) -> tuple:  # pragma: no cover
        raise NotImplementedError

    def phases(self, zl, zu) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def constant_zero(self, zl, zu) -> np.ndarray:
        return np.zeros(np.shape(zl), dtype=bool)

    def relaxation(self, zl, zu, parallel: bool = False) -> ElementwiseRelaxation:  # pragma: no cover
        raise NotImplementedError

    def branch_offset(self, zl, zu) -> np.ndarray:
        return np.zeros_like(zl)

    def milp_plan(self, zl, zu, last: bool) -> MilpPlan:  # pragma: no cover
        raise NotImplementedError

    def milp_rows(self, linear_rows: LinearRows, zl, zu, plan: MilpPlan, h_ids, y_ids, z_ids) -> list:  # pragma: no cover
        """Row blocks; ``linear_rows(neurons)`` is the layer's linear map restricted to those
        pre-activation rows and to the previous layer's live outputs (whose columns are ``h_ids``)."""
        raise NotImplementedError

    def lp_rows(self, linear_rows: LinearRows, zl, zu) -> LpRows:  # pragma: no cover
        raise NotImplementedError


def affine_and_relu_rows(linear_rows: LinearRows, lo, hi, plan: MilpPlan, h_ids, y_ids, z_ids) -> list:
    """The four row blocks of a ReLU or identity layer: ``y = a`` for the neurons in
    ``plan.detail`` (``affine``), and for the neurons with a binary ``y >= a`` (``relu_lower``),
    ``y <= a - l (1 - z)`` (``relu_upper``), ``y <= u z`` (``relu_upper_z``); ``a`` is the
    pre-activation, written from the linear map's rows."""
    affine, unstable = plan.detail, plan.binary
    blocks = []
    # y = a  <=>  W h + b - y == 0
    lin = linear_rows(affine)
    blocks.append(RowBlock("affine", affine, *lin.csr(h_ids, [-np.ones(affine.size)], [y_ids[affine]]),
                           lin.bias.copy(), "=="))
    lin = linear_rows(unstable)
    n_u = unstable.size
    yu, zu, lu, uu = y_ids[unstable], z_ids[unstable], lo[unstable], hi[unstable]
    # y >= a  <=>  W h + b - y <= 0
    blocks.append(RowBlock("relu_lower", unstable, *lin.csr(h_ids, [-np.ones(n_u)], [yu]), lin.bias.copy(), "<="))
    # y <= a - l (1 - z)  <=>  W h + l z - y + (b - l) >= 0
    blocks.append(RowBlock("relu_upper", unstable, *lin.csr(h_ids, [lu, -np.ones(n_u)], [zu, yu]),
                           lin.bias - lu, ">="))
    # y <= u z  <=>  u z - y >= 0
    blocks.append(RowBlock("relu_upper_z", unstable, *csr_rows(np.zeros((n_u, 0)), h_ids[:0], [uu, -np.ones(n_u)],
                                                                [zu, yu]), np.zeros(n_u), ">="))
    return blocks


def triangle_lp_rows(linear_rows: LinearRows, keep, l, u, unstable, y_lower, y_upper) -> LpRows:
    """LP rows of kept neurons ``keep`` (bounds ``l``/``u`` aligned with it): ``y = a`` for stable
    ones; for ``unstable`` ones ``y >= a`` and the chord ``y <= u (a - l) / (u - l)`` (with the
    column bounds ``y >= 0``: the triangle relaxation of a ReLU). Rows in neuron order."""
    lin = linear_rows(keep)
    W, b = lin.matrix(), lin.bias
    m = keep.size
    count = 1 + unstable.astype(np.int64)
    first = np.cumsum(count) - count  # each neuron's first row
    R = int(count.sum())
    prev = np.empty((R, W.shape[1]))
    own = np.zeros((R, m))
    lower = np.empty(R)
    upper = np.empty(R)
    prev[first] = -W
    own[first, np.arange(m)] = 1.0
    lower[first] = b
    upper[first] = np.where(unstable, np.inf, b)  # y = a, or y >= a (that is y - W v >= b)
    if unstable.any():
        iu = np.flatnonzero(unstable)
        chord = first[iu] + 1
        s = u[iu] / (u[iu] - l[iu])
        prev[chord] = -s[:, None] * W[iu]  # y - s W v <= s (b - l)
        own[chord, iu] = 1.0
        lower[chord] = -np.inf
        upper[chord] = s * (b[iu] - l[iu])
    return LpRows(keep, y_lower, y_upper, prev, own, lower, upper)


class ReLU(ElementwiseActivation):
    """``h = max(z, 0)``: binary only where the bounds straddle 0 (big-M with the asymmetric
    bounds), CROWN's relaxation (chord above; lower slope 0 or 1 by the larger side, or the
    chord's slope with ``parallel``)."""

    name = "relu"
    monotone = True
    nonnegative = True

    def __call__(self, z):
        return np.maximum(z, 0.0)

    def vjp(self, z, g):
        return g * (z > 0)

    def output_range(self, zl, zu):
        return np.maximum(zl, 0.0), np.maximum(zu, 0.0)

    def phases(self, zl, zu):
        out = np.full(np.shape(zl), UNSTABLE, dtype=np.int8)
        out[zl >= 0] = ACTIVE
        out[zu <= 0] = INACTIVE
        return out

    def constant_zero(self, zl, zu):
        return zu <= 0

    def relaxation(self, lo, hi, parallel: bool = False) -> ElementwiseRelaxation:
        active = lo >= 0
        inactive = hi <= 0
        unstable = ~(active | inactive)
        a_low = np.where(active, 1.0, 0.0)
        a_up = np.where(active, 1.0, 0.0)
        b_up = np.zeros_like(lo)
        if unstable.any():
            l, u = lo[unstable], hi[unstable]
            slope = u / (u - l)
            a_up[unstable] = slope
            b_up[unstable] = -slope * l
            a_low[unstable] = slope if parallel else np.where(u >= -l, 1.0, 0.0)
        return ElementwiseRelaxation(a_low, a_up, b_up, free=unstable)

    def branch_offset(self, lo, hi):
        """The chord's offset ``u (-l) / (u - l)`` of unstable neurons (BaBSR's intercept)."""
        unstable = (lo < 0) & (hi > 0)
        return np.where(unstable, hi * -lo / np.where(unstable, hi - lo, 1.0), 0.0)

    def milp_plan(self, lo, hi, last: bool) -> MilpPlan:
        phase = self.phases(lo, hi)
        n = phase.size
        keep = np.arange(n) if last else np.flatnonzero(phase != INACTIVE)
        unstable = np.flatnonzero(phase == UNSTABLE)
        fixed_zero = np.flatnonzero(phase == INACTIVE) if last else _EMPTY
        affine = np.flatnonzero(phase == ACTIVE)
        return MilpPlan(keep, unstable, np.maximum(lo[keep], 0.0), np.maximum(hi[keep], 0.0), fixed_zero, affine)

    def milp_rows(self, linear_rows, lo, hi, plan, h_ids, y_ids, z_ids):
        return affine_and_relu_rows(linear_rows, lo, hi, plan, h_ids, y_ids, z_ids)

    def lp_rows(self, linear_rows, lo, hi) -> LpRows:
        keep = np.flatnonzero(hi > 0)
        l, u = lo[keep], hi[keep]
        return triangle_lp_rows(linear_rows, keep, l, u, (l < 0) & (0 < u), np.maximum(l, 0.0), np.maximum(u, 0.0))


class Identity(ElementwiseActivation):
    """``h = z`` (a linear layer): no phases, ``y = a`` rows."""

    name = "linear"
    nonlinear = False
    affine = True
    monotone = True

    def __call__(self, z):
        return z

    def vjp(self, z, g):
        return g

    def output_range(self, zl, zu):
        return zl.copy(), zu.copy()

    def phases(self, zl, zu):
        return np.full(np.shape(zl), ACTIVE, dtype=np.int8)

    def relaxation(self, lo, hi, parallel: bool = False) -> ElementwiseRelaxation:
        one = np.ones_like(lo)
        return ElementwiseRelaxation(one, one.copy(), np.zeros_like(lo), free=np.zeros(np.shape(lo), dtype=bool))

    def milp_plan(self, lo, hi, last: bool) -> MilpPlan:
        keep = np.arange(np.size(lo))
        return MilpPlan(keep, _EMPTY, np.asarray(lo, np.float64), np.asarray(hi, np.float64), _EMPTY, keep)

    def milp_rows(self, linear_rows, lo, hi, plan, h_ids, y_ids, z_ids):
        return affine_and_relu_rows(linear_rows, lo, hi, plan, h_ids, y_ids, z_ids)

    def lp_rows(self, linear_rows, lo, hi) -> LpRows:
        keep = np.arange(np.size(lo))
        return triangle_lp_rows(linear_rows, keep, lo, hi, np.zeros(keep.size, dtype=bool), lo, hi)


#: The activations of the built-in kinds, by the name a layer reports (``Dense.activation``).
ACTIVATIONS = {"relu": ReLU(), "linear": Identity()}


class ElementwiseLayer(Layer):
    """A kind whose output is ``rule(z)`` entry by entry, ``z`` its own linear map of its input.

    Subclasses implement ``n_in``, ``n_out``, :meth:`linear` (their map), the ``rule`` property
    (an :class:`ElementwiseActivation`) and persistence; everything about the nonlinearity comes
    from the rule."""

    @property
    def rule(self) -> ElementwiseActivation:  # pragma: no cover
        raise NotImplementedError

    @property
    def n_nonlinear(self) -> int:
        return self.n_out if self.rule.nonlinear else 0

    @property
    def affine(self) -> bool:
        return self.rule.affine

    @property
    def monotone(self) -> bool:
        return self.rule.monotone

    @property
    def nonnegative(self) -> bool:
        return self.rule.nonnegative

    @property
    def split_point(self) -> float:
        return self.rule.split_point

    def describe(self) -> str:
        return self.rule.name

    def activate(self, z):
        return self.rule(z)

    def vjp(self, z, g):
        return self.linear().backward(self.rule.vjp(z, g))

    def output_range(self, zl, zu):
        return self.rule.output_range(zl, zu)

    def phases(self, zl, zu):
        return self.rule.phases(zl, zu)

    def constant_zero(self, zl, zu):
        return self.rule.constant_zero(zl, zu)

    def relaxation(self, zl, zu, keep=None, parallel: bool = False):
        if keep is not None:
            zl, zu = zl[..., keep], zu[..., keep]
        return self.rule.relaxation(zl, zu, parallel)

    def branch_offset(self, zl, zu):
        return self.rule.branch_offset(zl, zu)

    def milp_plan(self, zl, zu, last: bool) -> MilpPlan:
        return self.rule.milp_plan(zl, zu, last)

    def milp_rows(self, zl, zu, plan, h_idx, h_ids, y_ids, z_ids) -> list:
        full = h_idx.size == self.n_in and np.array_equal(h_idx, np.arange(self.n_in))
        cols = None if full else h_idx
        return self.rule.milp_rows(lambda neurons: self.linear(rows=neurons, cols=cols), zl, zu, plan,
                                   h_ids, y_ids, z_ids)

    def lp_rows(self, zl, zu, prev_idx) -> LpRows:
        return self.rule.lp_rows(lambda neurons: self.linear(rows=neurons, cols=prev_idx), zl, zu)
