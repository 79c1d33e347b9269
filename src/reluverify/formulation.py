"""Network + Bounds -> a Pyomo ``Block`` (explicit big-M with asymmetric per-neuron bounds).

For a ReLU neuron with pre-activation ``a = w·h + b`` and bounds ``l <= a <= u``:

* stable inactive (``u <= 0``): no variable at all, the neuron is the constant 0;
* stable active (``l >= 0``): one continuous variable ``y = a``;
* unstable (``l < 0 < u``): ``y ∈ [0, u]``, binary ``z`` and
  ``y >= a``, ``y <= a - l (1 - z)``, ``y <= u z``.

A linear (identity) layer gives ``y = a``. No variable is created for a pre-activation (it is only
an expression), which keeps the model compact: the seed network's problems fit Gurobi's
size-limited licence. Rows are built from NumPy arrays in one call per neuron, never by adding
terms one at a time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyomo.environ as pyo
from pyomo.core.expr.numeric_expr import LinearExpression

from .bounds.base import ACTIVE, INACTIVE, UNSTABLE, Bounds
from .errors import InputError
from .network import Network


def linear_expr(coefs, variables, constant: float = 0.0):
    """A Pyomo linear expression ``constant + sum(coefs[i] * variables[i])`` built in one call."""
    return LinearExpression(constant=float(constant), linear_coefs=list(coefs), linear_vars=list(variables))


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
    """
    if bounds.network is not network and bounds.network.sizes != network.sizes:
        raise InputError("these bounds were computed for a different network")
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

    last = len(network.layers) - 1
    binaries: list = []
    layer_outputs: list = []
    h_vars = xs  # variables of the previous layer that are not constant zero
    h_idx = np.arange(n_in)  # their indices in the previous layer
    for k, layer in enumerate(network.layers):
        lo, hi = bounds.lower[k], bounds.upper[k]
        phase = bounds.phases(k)
        n = layer.n_out
        W = layer.weight[:, h_idx]
        bias = layer.bias
        relu = layer.activation == "relu"
        keep = np.flatnonzero(phase != INACTIVE) if (relu and k != last) else np.arange(n)
        unstable = np.flatnonzero(phase == UNSTABLE) if relu else np.array([], dtype=int)

        def var_bounds(b, j, _lo=lo, _hi=hi, _relu=relu):
            if _relu:
                return (max(float(_lo[j]), 0.0), max(float(_hi[j]), 0.0))
            return (float(_lo[j]), float(_hi[j]))

        y = pyo.Var(keep.tolist(), bounds=var_bounds)
        blk.add_component(f"y{k}", y)
        z = pyo.Var(unstable.tolist(), within=pyo.Binary)
        blk.add_component(f"z{k}", z)

        eq, ge, le, lez = {}, {}, {}, {}
        for j in keep.tolist():
            row = W[j]
            nz = np.flatnonzero(row)
            coefs = row[nz].tolist()
            hv = [h_vars[i] for i in nz.tolist()]
            if relu and phase[j] == INACTIVE:  # only reached for the output layer: y = 0
                y[j].fix(0.0)
            elif not relu or phase[j] == ACTIVE:
                eq[j] = linear_expr(coefs + [-1.0], hv + [y[j]], bias[j]) == 0.0
            else:
                # y >= a      <=>  a - y <= 0
                ge[j] = linear_expr(coefs + [-1.0], hv + [y[j]], bias[j]) <= 0.0
                # y <= a - l (1 - z)  <=>  a - l + l z - y >= 0
                le[j] = linear_expr(coefs + [float(lo[j]), -1.0], hv + [z[j], y[j]], bias[j] - lo[j]) >= 0.0
                # y <= u z
                lez[j] = linear_expr([float(hi[j]), -1.0], [z[j], y[j]]) >= 0.0
                binaries.append(z[j])
        for cname, cons in (("affine", eq), ("relu_lower", ge), ("relu_upper", le), ("relu_upper_z", lez)):
            blk.add_component(f"{cname}{k}", pyo.Constraint(list(cons), rule=lambda b, j, _c=cons: _c[j]))

        outs = [y[j] if j in y else None for j in range(n)]
        layer_outputs.append(outs)
        h_idx = keep
        h_vars = [y[j] for j in keep.tolist()]

    outputs = layer_outputs[-1]
    return NetworkBlock(blk, network, bounds, xs, outputs, layer_outputs, binaries)
