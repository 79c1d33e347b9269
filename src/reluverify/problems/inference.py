"""Inference as an MILP: fix the input, solve, read the outputs, compare with the forward pass."""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo

from ..solvers import DEFAULT_SOLVER
from ..tolerances import DEFAULT_TIME_LIMIT
from ..bounds import compute_bounds
from ..check import compare_outputs
from ..domain import Box
from ..formulation import add_network
from ..model import Network
from ..results import InferenceResult, Status
from ..solvers import solve
from ..threads import limit_blas
from .dispatch import by_model


def build_inference_model(network: Network, x, domain: Box | None = None, bound_method="interval"):
    """A Pyomo model whose network block has its inputs fixed to ``x``.

    ``domain`` is the input set the bounds (and so the big-M constants) are computed over. By default
    it is the point ``x`` itself, so every neuron is stable and the model is an LP; pass a wider box
    (e.g. ``Box.uniform(784)``) to exercise the full MILP with its binaries.
    """
    x = network.as_point(x)
    if domain is None:
        domain = Box.point(x)
    domain.check_size(network.n_inputs)
    from ..errors import InputError

    if not domain.contains(x):
        raise InputError("the input lies outside the domain given for the bounds; widen the domain")
    bounds = compute_bounds(network, domain, bound_method)
    model = pyo.ConcreteModel(name=f"inference-{network.name}")
    net = add_network(model, network, bounds)
    for v, val in zip(net.inputs, x):
        v.fix(float(val))
    model.objective = pyo.Objective(expr=0.0)
    return model, net


@limit_blas
@by_model
def infer(
    network: Network,
    x,
    solver: str = DEFAULT_SOLVER,
    *,
    domain: Box | None = None,
    bound_method="interval",
    time_limit: float | None = DEFAULT_TIME_LIMIT,
    threads: int | None = None,
    **solve_options,
) -> InferenceResult:
    """Evaluate ``network`` at ``x`` by solving its MILP with ``solver``.

    The outputs are read from the solver's solution and compared with the float64 forward pass;
    ``matches`` says whether they agree within :data:`reluverify.tolerances.INFERENCE_TOLERANCE`.
    """
    from ..solvers import solver_options  # CBC builds that need their bound propagation off

    x = network.as_point(x)
    model, net = build_inference_model(network, x, domain, bound_method)
    extra = solver_options(solver)
    if extra:
        solve_options["options"] = {**extra, **(solve_options.get("options") or {})}
    sres = solve(model, solver, time_limit=time_limit, threads=threads, **solve_options)
    try:
        outputs = net.output_values() if sres.has_solution else None
    except ValueError:  # a solution file without some values (seen with CBC): no outputs, not a crash
        outputs = None
    reference, err, ok = compare_outputs(network, x, outputs)
    ok = ok and sres.status == Status.OPTIMAL
    return InferenceResult(
        status=sres.status,
        outputs=outputs,
        reference=reference,
        max_abs_error=err,
        matches=ok,
        predicted_class=int(np.argmax(outputs)) if outputs is not None else None,
        solve=sres,
        n_binaries=net.n_binaries,
        bounds_summary=net.bounds.summary(),
    )
