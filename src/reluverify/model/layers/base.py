"""The layer interface: what every layer kind owns, and what the rest of reluverify may ask of it.

A :class:`~reluverify.model.Network` is a chain of layer objects. Every layer ``k`` is

    ``z_k = L_k(h_{k-1})``  (its *pre-activation*: an affine map of its input, ``n_pre`` values)
    ``h_k = σ_k(z_k)``      (its *output*, ``n_out`` values: a fixed piecewise-linear function)

and the rest of the library reaches a layer only through the methods below: the bound strategies
(:mod:`reluverify.bounds`) keep per-layer bounds ``l_k <= z_k <= u_k`` on pre-activations and
walk the layers through them, the MILP formulation (:mod:`reluverify.formulation`) assembles the
rows each layer writes, the attacks and ReLU branching ask for gradients and split choices. Nothing
outside ``model/layers/`` switches on a layer kind or an activation name; a new kind is one new
module (a subclass of :class:`Layer`, registered with :func:`reluverify.model.layers.register`)
plus the importer lines that produce it. :class:`~reluverify.model.layers.dense.Dense` (a dense
affine map followed by ReLU or the identity) is the reference implementation;
:class:`~reluverify.model.layers.elementwise.ElementwiseLayer` is the shared base of every kind
whose ``σ`` acts elementwise (``n_pre == n_out``: dense, convolution, batch norm, average
pooling, ...): such a kind brings only its linear map and picks an
:class:`~reluverify.model.layers.elementwise.ElementwiseActivation` (ReLU, identity, or its own).

The contract
------------
Arrays are float64. "Batched" arrays carry leading axes (a batch of inputs, or of boxes ``B``);
the last axis is always the neuron axis.

Shape and properties
    ``n_in``, ``n_out``, ``n_pre`` (pre-activation size, default ``n_out``); ``n_nonlinear``
    (pre-activation entries whose phase bounds may leave undecided, e.g. ReLUs: the "unstable"
    count of :class:`~reluverify.bounds.Bounds` is over these; 0 for an affine layer); ``affine``
    (``σ`` is the identity: the layer is an affine map, so a linear function of its output is a
    linear function of its input); ``monotone`` (``h_i = σ(z_i)`` with one nondecreasing ``σ``
    per entry, ``n_pre == n_out``: the order of outputs is the order of pre-activations, so an
    attack or a class-change row may work on the pre-activations of a monotone last layer, e.g.
    a ReLU on the logits; :meth:`without_activation` gives the affine layer computing the
    pre-activations); ``nonnegative`` (every output is >= 0: a ReLU after it is the identity);
    :meth:`describe` (a short name for reprs); ``elementwise`` (False for kinds whose ``σ`` mixes
    entries, e.g. max pooling) and ``interval_exact`` (the pre-activations are copies of inputs:
    interval bounds of them cannot be tightened).

Forward (float64, exact to rounding)
    :meth:`preactivation` ``h -> z``, :meth:`activate` ``z -> h``, :meth:`vjp` (the gradient of
    ``g · h`` with respect to the layer's input at pre-activation ``z``: what attacks backpropagate).

The linear part: :meth:`linear` ``(rows=None, cols=None) -> LinearMap``
    A view of ``z = W h + b`` restricted to pre-activation entries ``rows`` and input entries
    ``cols`` (the other inputs are taken as 0: callers pass ``cols`` only when the left-out inputs
    are constant zero). ``rows`` may be 2-D ``(B, K)`` (a different selection per box; only
    :meth:`LinearMap.matrix` and ``bias`` are then used). A :class:`LinearMap` gives
    ``forward(h)``, ``backward(A)`` (``A @ W``: coefficients on ``z`` -> coefficients on ``h``,
    any leading axes), ``bias`` and ``bias_term(A)`` (``A @ b``), ``matrix()`` (the dense
    restricted matrix: used for a few rows at a time, the first layer over an L1 ball, and LP
    rows), ``interval(lo, hi)`` (sound bounds of ``z`` over a box, widened for rounding) and
    ``csr(h_ids, extra_values, extra_ids)`` (its rows as CSR over MILP columns). A convolution
    implements ``backward`` as a transposed convolution and ``interval`` with ``|kernel|``; it
    never needs a dense matrix on the hot paths (``matrix()`` of a few rows is
    ``backward`` of their unit vectors).

Bounds of the nonlinear part (from pre-activation bounds ``zl <= z <= zu``, batched or not)
    :meth:`output_range` (sound bounds of ``h``), :meth:`phases` (per pre-activation entry
    ``ACTIVE``/``INACTIVE``/``UNSTABLE``: ``UNSTABLE`` marks what needs a binary in the MILP or a
    relaxation; an affine layer is all ``ACTIVE``), :meth:`constant_zero` (per output, whether it
    is exactly 0 whatever ``z`` in the bounds: back-substitution leaves those out of its walk).

The linear relaxation: :meth:`relaxation` ``(zl, zu, keep=None, parallel=False) -> Relaxation``
    Linear bounds of ``h`` in terms of ``z`` over the bounds, used for back-substitution. ``keep``
    lists the outputs the walk carries (columns of the coefficients ``A``; the others must be
    ``constant_zero``). The relaxation object gives, for coefficients ``A`` on those outputs,
    ``lower(A) -> (D, c)`` with ``A·h >= D·z + c`` and ``upper(A) -> (D, c)`` with
    ``A·h <= D·z + c`` for every ``h = σ(z)``, ``zl <= z <= zu`` (``D`` on the pre-activation
    entries ``pre_index``, None meaning the same entries as ``keep``), and ``lower_stacked(A)``
    (the same bound, evaluated in the form the batched strategies use); ``lower(A, offset=False)``
    may skip ``c`` (returned as None) for callers that need only ``D``. A MaxPool kind returns its
    own relaxation object (``h_w >= z_i`` for the window's inputs, an upper bound from the window's
    bounds), with ``pre_index`` naming the window inputs, and ``elementwise = False``; the
    optimised bound (slopes and multipliers) then leaves the layer at its plain relaxation.
    :class:`~reluverify.model.layers.elementwise.ElementwiseRelaxation` is the elementwise form
    (per-entry lines ``a_low z + b_low <= h <= a_up z + b_up``, with the entries whose lower line
    may be any ``alpha z``, ``alpha`` in a range: the free parameters of optimised bounds).

Branching (optional; elementwise kinds)
    :meth:`branch_offset` (per pre-activation entry, what its relaxation gives away; 0 where
    splitting would not help: such entries are never split) and ``split_point`` (a split clamps
    ``zl`` up or ``zu`` down to it). The default offers no split; ReLU branching leaves kinds with
    ``n_pre != n_out`` alone.

The MILP (exact, given sound pre-activation bounds)
    :meth:`milp_plan` ``(zl, zu, last) -> MilpPlan``: which outputs get a continuous variable and
    with which bounds (``keep``, ``y_lower``, ``y_upper``; kept outputs the plan fixes to 0 in
    ``fixed_zero``; outputs not kept are the constant 0, and the last layer keeps every output)
    and which pre-activation entries get a binary (``binary``). The formulation numbers the
    columns; :meth:`milp_rows` then returns the layer's rows as :class:`RowBlock` objects (CSR over
    column ids, a constant, a sense), the same rows for the HiGHS arrays and the Pyomo block (one
    Pyomo ``Constraint`` per block, named ``{block.name}{k}`` and indexed by ``block.neurons``).
    A MaxPool kind asks for one binary per window input that the bounds cannot rule out, and
    writes its own rows. :meth:`lp_rows`: the rows of the layer's LP relaxation (for the LP bound
    strategy), in :class:`LpRows` form.

Persistence
    ``kind`` (the registry name), :meth:`state` ``-> (spec, arrays)`` and :meth:`from_state`
    (``Network.save``/``load``: ``spec`` is a short string, ``arrays`` a dict of arrays whose
    keys are the class's ``state_keys``).

Soundness: ``interval``, ``output_range``, ``relaxation`` and the LP rows must hold for every
input inside the given bounds, with float64 rounding absorbed by :func:`widen` where sums are
formed; ``milp_rows`` must describe exactly ``h = σ(L h_{k-1})`` inside them.
"""

from __future__ import annotations

from abc import ABCMeta
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ...tolerances import BOUND_ABS_WIDENING, BOUND_REL_WIDENING

ACTIVE, INACTIVE, UNSTABLE = 1, -1, 0

IDX = np.int32  # MILP column ids


def widen(lower: np.ndarray, upper: np.ndarray, magnitude: np.ndarray) -> tuple:
    """Widen ``[lower, upper]`` outward by the rounding slack for values of size ``magnitude``."""
    slack = BOUND_REL_WIDENING * magnitude + BOUND_ABS_WIDENING
    return lower - slack, upper + slack


class _LayerMeta(ABCMeta):
    """Calling :class:`Layer` itself builds the first kind, :class:`~.dense.Dense`:
    ``Layer(weight, bias, activation)`` is the constructor reluverify has always had."""

    def __call__(cls, *args, **kwargs):
        if cls is Layer:
            from .dense import Dense

            return Dense(*args, **kwargs)
        return super().__call__(*args, **kwargs)


class Layer(metaclass=_LayerMeta):
    """One layer of a :class:`~reluverify.model.Network` (see the module docstring for the contract).

    ``Layer(weight, bias, activation)`` builds a :class:`~reluverify.model.layers.dense.Dense`;
    ``isinstance(x, Layer)`` holds for every layer kind."""

    kind: ClassVar[str] = ""
    state_keys: ClassVar[tuple] = ()
    split_point: ClassVar[float] = 0.0

    # ------------------------------------------------------------------ shape and properties
    @property
    def n_in(self) -> int:  # pragma: no cover - every kind defines it
        raise NotImplementedError

    @property
    def n_out(self) -> int:  # pragma: no cover
        raise NotImplementedError

    @property
    def n_pre(self) -> int:
        return self.n_out

    @property
    def n_nonlinear(self) -> int:
        return 0

    affine: ClassVar[bool] = False
    monotone: ClassVar[bool] = False
    nonnegative: ClassVar[bool] = False
    #: ``σ`` acts entry by entry (``n_pre == n_out``) and :meth:`relaxation` is elementwise (the
    #: optimised bound moves its slopes); False for a max pooling
    elementwise: ClassVar[bool] = True
    #: the pre-activations are copies of input entries (a max pooling's windows): their interval
    #: bounds are exact, so bound strategies neither back-substitute nor LP-tighten them
    interval_exact: ClassVar[bool] = False

    def describe(self) -> str:
        return self.kind

    def without_activation(self) -> "Layer":
        """An affine layer computing this layer's pre-activations (for a ``monotone`` last layer:
        class order and class-change rows are the same on them)."""
        raise NotImplementedError(f"layer kind {self.kind!r} offers no affine version of itself")

    # ------------------------------------------------------------------ forward
    def preactivation(self, h: np.ndarray) -> np.ndarray:
        return self.linear().forward(h)

    def activate(self, z: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def forward(self, h: np.ndarray) -> np.ndarray:
        return self.activate(self.preactivation(h))

    def vjp(self, z: np.ndarray, g: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    # ------------------------------------------------------------------ linear part
    def linear(self, rows=None, cols=None):  # pragma: no cover
        raise NotImplementedError

    def interval(self, lo: np.ndarray, hi: np.ndarray) -> tuple:
        return self.linear().interval(lo, hi)

    # ------------------------------------------------------------------ nonlinear part
    def output_range(self, zl: np.ndarray, zu: np.ndarray) -> tuple:  # pragma: no cover
        raise NotImplementedError

    def phases(self, zl: np.ndarray, zu: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def constant_zero(self, zl: np.ndarray, zu: np.ndarray) -> np.ndarray:
        return np.zeros(np.shape(zl)[:-1] + (self.n_out,), dtype=bool)

    def relaxation(self, zl: np.ndarray, zu: np.ndarray, keep=None, parallel: bool = False):  # pragma: no cover
        raise NotImplementedError

    def branch_offset(self, zl: np.ndarray, zu: np.ndarray) -> np.ndarray:
        return np.zeros_like(zl)

    # ------------------------------------------------------------------ MILP and LP
    def milp_plan(self, zl: np.ndarray, zu: np.ndarray, last: bool) -> "MilpPlan":  # pragma: no cover
        raise NotImplementedError

    def milp_rows(self, zl, zu, plan: "MilpPlan", h_idx, h_ids, y_ids, z_ids) -> list:  # pragma: no cover
        raise NotImplementedError

    def lp_rows(self, zl: np.ndarray, zu: np.ndarray, prev_idx: np.ndarray) -> "LpRows":  # pragma: no cover
        raise NotImplementedError

    # ------------------------------------------------------------------ persistence
    def state(self) -> tuple:  # pragma: no cover
        raise NotImplementedError

    @classmethod
    def from_state(cls, spec: str, arrays: dict) -> "Layer":  # pragma: no cover
        raise NotImplementedError


class LinearMap:
    """The interface of :meth:`Layer.linear` (documentation; kinds return their own classes).

    ``forward(h)``: ``W h + b`` for the selected rows, ``h`` holding the selected inputs (last
    axis); ``backward(A)``: ``A @ W`` (``A`` with any leading axes, its last axis over the
    selected rows); ``bias``: ``b`` of the selected rows; ``bias_term(A)``: ``A @ b``;
    ``matrix()``: the dense selected matrix; ``interval(lo, hi)``: sound, widened bounds of
    ``W h + b`` over ``lo <= h <= hi``; ``csr(h_ids, extra_values, extra_ids)``: CSR rows (see
    :func:`csr_rows`)."""


@dataclass
class MilpPlan:
    """Which outputs of a layer get a MILP variable, and which pre-activation entries a binary."""

    keep: np.ndarray  # outputs with a continuous variable, ascending
    binary: np.ndarray  # pre-activation entries with a binary, ascending
    y_lower: np.ndarray  # bounds of the kept outputs' variables, aligned with keep
    y_upper: np.ndarray
    fixed_zero: np.ndarray  # kept outputs that are the constant 0 (no row; Pyomo fixes them)
    detail: object = None  # the kind's own data for milp_rows


@dataclass
class RowBlock:
    """Rows ``sum(value * column) + constant  (sense)  0``, one per entry of ``neurons`` (CSR)."""

    name: str  # the Pyomo component's prefix (affine, relu_lower, ...), unique within a layer
    neurons: np.ndarray
    start: np.ndarray  # (len(neurons) + 1,) offsets into index/value
    index: np.ndarray  # column ids, in the caller's numbering
    value: np.ndarray
    constant: np.ndarray
    sense: str  # "==", "<=" or ">="

    def row_bounds(self) -> tuple:
        """``(lower, upper)`` of ``sum(value * column)``."""
        rhs = -self.constant
        inf = np.full(rhs.shape, np.inf)
        if self.sense == "==":
            return rhs, rhs.copy()
        if self.sense == "<=":
            return -inf, rhs
        return rhs, inf


@dataclass
class LpRows:
    """A layer's LP relaxation: columns for the outputs ``keep`` (bounds ``y_lower``/``y_upper``)
    and rows ``lower <= prev @ v_prev + own @ y <= upper`` (``prev`` over the previous layer's
    kept outputs, ``own`` over this layer's kept outputs; infinite sides are absent)."""

    keep: np.ndarray
    y_lower: np.ndarray
    y_upper: np.ndarray
    prev: np.ndarray  # (rows, len(prev_idx))
    own: np.ndarray  # (rows, len(keep))
    lower: np.ndarray
    upper: np.ndarray


def csr_rows(W: np.ndarray, h_ids: np.ndarray, extra_values: list, extra_ids: list) -> tuple:
    """CSR rows ``(start, index, value)``: the nonzeros of each row of the dense ``W`` (columns
    ``h_ids``), then one entry per extra (``extra_values[t][i]`` on column ``extra_ids[t][i]`` for
    row ``i``), kept even if zero.

    Laid out as an ``(m, n_h + extras)`` table and flattened, so a dense ``W`` (the usual case for
    trained weights) costs two copies and no index arithmetic."""
    m, n_h = W.shape
    width = n_h + len(extra_values)
    value = np.empty((m, width), dtype=np.float64)
    index = np.empty((m, width), dtype=IDX)
    value[:, :n_h] = W
    index[:, :n_h] = h_ids
    for t, (vals, ids) in enumerate(zip(extra_values, extra_ids)):
        value[:, n_h + t] = vals
        index[:, n_h + t] = ids
    start = np.empty(m + 1, dtype=np.int64)
    start[0] = 0
    mask = W != 0
    if mask.all():
        np.cumsum(np.full(m, width, dtype=np.int64), out=start[1:])
        return start, index.ravel(), value.ravel()
    keep = np.ones((m, width), dtype=bool)
    keep[:, :n_h] = mask
    np.cumsum(np.count_nonzero(keep, axis=1), out=start[1:])
    return start, index[keep], value[keep]
