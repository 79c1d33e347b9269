"""Network + Bounds -> a big-M MILP: a Pyomo ``Block``, or the same model as arrays.

Each layer writes its own rows (:meth:`reluverify.model.layers.Layer.milp_plan` and
:meth:`~reluverify.model.layers.Layer.milp_rows`); this module numbers the columns and assembles
them. For a ReLU neuron (a :class:`~reluverify.model.layers.Dense` layer) with pre-activation
``a = w·h + b`` and bounds ``l <= a <= u``:

* stable inactive (``u <= 0``): no variable at all, the neuron is the constant 0;
* stable active (``l >= 0``): one continuous variable ``y = a``;
* unstable (``l < 0 < u``): ``y ∈ [0, u]``, binary ``z`` and
  ``y >= a``, ``y <= a - l (1 - z)``, ``y <= u z``.

A linear (identity) layer gives ``y = a``. No variable is created for a pre-activation (it is only
an expression), which keeps the model compact: the seed network's problems fit Gurobi's
size-limited licence.

Both forms come from one per-layer generator (the layer's ``milp_plan`` decides which neurons get a
variable and a binary, its ``milp_rows`` builds their rows as CSR blocks with NumPy), so they
cannot drift apart. :func:`add_network` turns each row into one Pyomo linear expression (for users
who embed the network in their own model, and for CBC/Gurobi); :func:`network_arrays` concatenates
the blocks into :class:`MilpArrays`, which :class:`reluverify.solvers.highs.HighsArrayModel` hands to HiGHS
in one call.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyomo.environ as pyo
from pyomo.core.expr.numeric_expr import LinearExpression

from .bounds.base import Bounds
from .errors import InputError
from .model import Network
from .model.layers.base import IDX


def linear_expr(coefs, variables, constant: float = 0.0):
    """A Pyomo linear expression ``constant + sum(coefs[i] * variables[i])`` built in one call."""
    return LinearExpression(constant=float(constant), linear_coefs=list(coefs), linear_vars=list(variables))


_IDX = IDX


def _check_bounds(network: Network, bounds: Bounds) -> None:
    if bounds.network is not network and bounds.network.sizes != network.sizes:
        raise InputError("these bounds were computed for a different network")


# ---------------------------------------------------------------------------------------------
# arrays


@dataclass
class MilpArrays:
    """The big-M MILP of a network as arrays (CSR rows), column-for-column the same model
    :func:`add_network` builds.

    Columns: the inputs (bounded by ``bounds.domain``), then per layer the post-activation
    variables of the kept neurons followed by the binaries of the unstable ones. Rows, per layer, in
    the order of the block's constraints: the affine equalities (``affine{k}``), then for the
    unstable neurons ``y >= a`` (``relu_lower{k}``), ``y <= a - l (1 - z)`` (``relu_upper{k}``) and
    ``y <= u z`` (``relu_upper_z{k}``), each in neuron order. No objective: add one with
    :meth:`reluverify.solvers.highs.HighsArrayModel.set_objective`.
    """

    col_lower: np.ndarray
    col_upper: np.ndarray
    integrality: np.ndarray  # bool, True for binaries
    a_start: np.ndarray  # (n_rows + 1,) int32
    a_index: np.ndarray  # int32
    a_value: np.ndarray  # float64
    row_lower: np.ndarray
    row_upper: np.ndarray
    input_cols: np.ndarray  # (n_inputs,) column of each input
    output_cols: np.ndarray  # (n_outputs,) column of each output (always a real column)
    layer_cols: list  # per layer, (n_out,) column of each neuron's output, -1 where it is the constant 0
    binary_cols: list  # per layer, (n_pre,) column of the pre-activation entry's binary, -1 where none

    @property
    def n_cols(self) -> int:
        return int(self.col_lower.size)

    @property
    def n_rows(self) -> int:
        return int(self.row_lower.size)

    @property
    def nnz(self) -> int:
        return int(self.a_value.size)

    @property
    def n_binaries(self) -> int:
        return int(np.count_nonzero(self.integrality))

    def size(self) -> dict:
        """Same keys as :meth:`NetworkBlock.size`."""
        return {"variables": self.n_cols, "binaries": self.n_binaries, "constraints": self.n_rows,
                "nonzeros": self.nnz}


def network_arrays(network: Network, bounds: Bounds) -> MilpArrays:
    """The MILP :func:`add_network` builds for ``network`` over ``bounds``, as :class:`MilpArrays`
    (NumPy only, one vectorised pass per layer)."""
    _check_bounds(network, bounds)
    n_in = network.n_inputs
    col_lo = [np.asarray(bounds.domain.lower, dtype=np.float64)]
    col_hi = [np.asarray(bounds.domain.upper, dtype=np.float64)]
    integ = [np.zeros(n_in, dtype=bool)]
    starts, index, value, row_lo, row_hi = [], [], [], [], []
    n_col, nnz = n_in, 0
    h_idx = np.arange(n_in)
    h_ids = np.arange(n_in, dtype=_IDX)
    layer_cols, binary_cols = [], []
    last = len(network.layers) - 1
    for k, layer in enumerate(network.layers):
        lo, hi = bounds.lower[k], bounds.upper[k]
        plan = layer.milp_plan(lo, hi, k == last)
        n = layer.n_out
        y_ids = np.full(n, -1, dtype=_IDX)
        y_ids[plan.keep] = n_col + np.arange(plan.keep.size)
        n_col += plan.keep.size
        z_ids = np.full(layer.n_pre, -1, dtype=_IDX)
        z_ids[plan.binary] = n_col + np.arange(plan.binary.size)
        n_col += plan.binary.size
        col_lo += [plan.y_lower, np.zeros(plan.binary.size)]
        col_hi += [plan.y_upper, np.ones(plan.binary.size)]
        integ += [np.zeros(plan.keep.size, dtype=bool), np.ones(plan.binary.size, dtype=bool)]
        for b in layer.milp_rows(lo, hi, plan, h_idx, h_ids, y_ids, z_ids):
            starts.append(b.start[:-1] + nnz)
            nnz += int(b.start[-1])
            index.append(b.index)
            value.append(b.value)
            lo, hi = b.row_bounds()
            row_lo.append(lo)
            row_hi.append(hi)
        layer_cols.append(y_ids)
        binary_cols.append(z_ids)
        h_idx = plan.keep
        h_ids = y_ids[plan.keep]
    starts.append(np.array([nnz]))
    cat = np.concatenate
    return MilpArrays(
        col_lower=cat(col_lo), col_upper=cat(col_hi), integrality=cat(integ),
        a_start=cat(starts).astype(_IDX), a_index=cat(index).astype(_IDX, copy=False),
        a_value=cat(value), row_lower=cat(row_lo), row_upper=cat(row_hi),
        input_cols=np.arange(n_in, dtype=_IDX), output_cols=layer_cols[-1].copy(),
        layer_cols=layer_cols, binary_cols=binary_cols,
    )


def stack_arrays(parts: list) -> tuple:
    """Several MILPs side by side, sharing no column or row (e.g. one network copy per image):
    ``(MilpArrays, column offset of each part)``. ``input_cols``/``output_cols`` of the result are
    every part's, in order; ``layer_cols``/``binary_cols`` are left empty (read them per part, plus
    its offset)."""
    if not parts:
        raise ValueError("stack_arrays: no parts")
    offsets = np.cumsum([0] + [p.n_cols for p in parts[:-1]]).astype(_IDX)
    nnz_off = np.cumsum([0] + [p.nnz for p in parts[:-1]])
    total = int(sum(p.nnz for p in parts))
    cat = np.concatenate
    return MilpArrays(
        col_lower=cat([p.col_lower for p in parts]), col_upper=cat([p.col_upper for p in parts]),
        integrality=cat([p.integrality for p in parts]),
        a_start=cat([p.a_start[:-1] + nz for p, nz in zip(parts, nnz_off)] + [np.array([total])]).astype(_IDX),
        a_index=cat([p.a_index + off for p, off in zip(parts, offsets)]).astype(_IDX, copy=False),
        a_value=cat([p.a_value for p in parts]),
        row_lower=cat([p.row_lower for p in parts]), row_upper=cat([p.row_upper for p in parts]),
        input_cols=cat([p.input_cols + off for p, off in zip(parts, offsets)]),
        output_cols=cat([p.output_cols + off for p, off in zip(parts, offsets)]),
        layer_cols=[], binary_cols=[],
    ), offsets


# ---------------------------------------------------------------------------------------------
# Pyomo block
@dataclass
class NetworkBlock:
    """Handle to a network embedded in a Pyomo model.

    ``inputs`` and ``outputs`` are lists of Pyomo variables (flattened input order, output index);
    add your own constraints and objective on them. ``layer_outputs[k][j]`` is the variable holding
    neuron ``j`` of layer ``k`` after its activation, or ``None`` for a stable-inactive ReLU (value 0).
    """

    block: pyo.Block
    network: Network
    bounds: Bounds
    inputs: list
    outputs: list
    layer_outputs: list
    binaries: list = field(default_factory=list)

    @property
    def n_binaries(self) -> int:
        return len(self.binaries)

    def output_values(self) -> np.ndarray:
        """The outputs' values in the loaded solution (float64)."""
        return np.array([pyo.value(v) for v in self.outputs], dtype=np.float64)

    def input_values(self) -> np.ndarray:
        return np.array([pyo.value(v) for v in self.inputs], dtype=np.float64)

    def size(self) -> dict:
        """Counts of what this block adds: variables, binaries, constraints, nonzeros."""
        n_vars = sum(1 for _ in self.block.component_data_objects(pyo.Var, active=True, descend_into=True))
        n_cons = 0
        nnz = 0
        for con in self.block.component_data_objects(pyo.Constraint, active=True, descend_into=True):
            n_cons += 1
            body = con.body
            nnz += len(body.linear_vars) if isinstance(body, LinearExpression) else 1
        return {"variables": n_vars, "binaries": self.n_binaries, "constraints": n_cons, "nonzeros": nnz}


def _validate_inputs(inputs, n: int) -> list:
    try:
        seq = list(inputs.values()) if hasattr(inputs, "values") and callable(inputs.values) else list(inputs)
    except TypeError:
        raise InputError("inputs must be an indexed Pyomo Var or a sequence of Pyomo variables") from None
    if len(seq) != n:
        raise InputError(f"got {len(seq)} input variables but the network takes {n} inputs")
    for v in seq:
        if not (hasattr(v, "is_variable_type") and v.is_variable_type()):
            raise InputError(
                f"inputs must be Pyomo variables (got {type(v).__name__}); create a Var and link it "
                "with your own constraint if your input is an expression"
            )
    return seq


_RELATIONS = {
    "==": lambda e: e == 0.0,
    "<=": lambda e: e <= 0.0,
    ">=": lambda e: e >= 0.0,
}


def add_network(
    parent,
    network: Network,
    bounds: Bounds,
    *,
    name: str = "net",
    inputs=None,
) -> NetworkBlock:
    """Add ``network`` to the Pyomo model or block ``parent`` as ``parent.<name>``.

    ``bounds`` must have been computed for this network over the input domain the model will
    respect; the block's input variables get that domain as their bounds (the big-M constants are
    only valid inside it). Pass ``inputs`` (a sequence or indexed Var of the caller's own Pyomo
    variables) to use existing variables as the network's inputs: their bounds are then intersected
    with the domain.

    Components, per layer ``k``: ``y{k}`` (indexed by the neurons that have a variable), ``z{k}``
    (by the unstable neurons), and the constraints ``affine{k}``, ``relu_lower{k}``,
    ``relu_upper{k}``, ``relu_upper_z{k}`` (by neuron). The rows are those of
    :func:`network_arrays`, one Pyomo linear expression each.
    """
    _check_bounds(network, bounds)
    if parent.component(name) is not None:
        raise InputError(f"the model already has a component named {name!r}; pass another name=")
    blk = pyo.Block(concrete=True)
    parent.add_component(name, blk)

    n_in = network.n_inputs
    lo_in, hi_in = bounds.domain.lower, bounds.domain.upper
    if inputs is None:
        blk.inputs = pyo.Var(range(n_in), bounds=lambda b, i: (float(lo_in[i]), float(hi_in[i])))
        xs = [blk.inputs[i] for i in range(n_in)]
    else:
        xs = _validate_inputs(inputs, n_in)
        for v, lo, hi in zip(xs, lo_in, hi_in):
            v.setlb(float(lo) if v.lb is None else max(float(lo), v.lb))
            v.setub(float(hi) if v.ub is None else min(float(hi), v.ub))

    columns = list(xs)  # column id -> Pyomo variable, numbered as in network_arrays
    binaries: list = []
    layer_outputs: list = []
    h_idx = np.arange(n_in)  # neurons of the previous layer that are not constant zero
    h_ids = np.arange(n_in, dtype=_IDX)  # their column ids
    last = len(network.layers) - 1
    for k, layer in enumerate(network.layers):
        lo_k, hi_k = bounds.lower[k], bounds.upper[k]
        plan = layer.milp_plan(lo_k, hi_k, k == last)
        n = layer.n_out
        keep, unstable = plan.keep.tolist(), plan.binary.tolist()
        var_bounds = dict(zip(keep, zip(plan.y_lower.tolist(), plan.y_upper.tolist())))
        y = pyo.Var(keep, bounds=lambda b, j, _vb=var_bounds: _vb[j])
        blk.add_component(f"y{k}", y)
        z = pyo.Var(unstable, within=pyo.Binary)
        blk.add_component(f"z{k}", z)
        for j in plan.fixed_zero.tolist():
            y[j].fix(0.0)

        y_ids = np.full(n, -1, dtype=_IDX)
        y_ids[plan.keep] = len(columns) + np.arange(len(keep))
        columns += [y[j] for j in keep]
        z_ids = np.full(layer.n_pre, -1, dtype=_IDX)
        z_ids[plan.binary] = len(columns) + np.arange(len(unstable))
        columns += [z[j] for j in unstable]
        binaries += [z[j] for j in unstable]

        for rows in layer.milp_rows(lo_k, hi_k, plan, h_idx, h_ids, y_ids, z_ids):
            start, index, value = rows.start.tolist(), rows.index.tolist(), rows.value.tolist()
            relation = _RELATIONS[rows.sense]
            cons = {
                j: relation(linear_expr(value[s:e], [columns[t] for t in index[s:e]], c))
                for j, s, e, c in zip(rows.neurons.tolist(), start[:-1], start[1:], rows.constant.tolist())
            }
            blk.add_component(f"{rows.name}{k}", pyo.Constraint(list(cons), rule=lambda b, j, _c=cons: _c[j]))

        layer_outputs.append([y[j] if j in y else None for j in range(n)])
        h_idx = plan.keep
        h_ids = y_ids[plan.keep]

    outputs = layer_outputs[-1]
    return NetworkBlock(blk, network, bounds, xs, outputs, layer_outputs, binaries)
