"""The engine's MILP stage: the network's big-M rows as arrays (:func:`~reluverify.formulation.network_arrays`),
the input set's rows (:meth:`~reluverify.sets.base.InputSet.encode`), a region's rows or an
objective, handed to a solver backend: its own array model where it has one (HiGHS), else the
generic Pyomo one (:class:`~reluverify.solvers.pyomo_arrays.PyomoArrayModel`). What a run proves
is decided by the one trust rule, :func:`reluverify.check.solver_proof`."""

from __future__ import annotations

import numpy as np

from ..bounds.base import big_m
from ..formulation import network_arrays
from ..model import Network
from ..solvers import array_model, solver_options
from ..solvers.pyomo_arrays import PyomoArrayModel
from ..spec import Region


def open_model(arrays, solver: str, *, threads: int | None = None, emphasis: str | None = None,
               big_m_value: float = 0.0, options: dict | None = None, mip_gap: float | None = None):
    """A solvable model of ``arrays`` on ``solver`` (the array-model interface), with the options
    that solver needs for proofs on a model of this big-M (:func:`reluverify.solvers.solver_options`);
    ``mip_gap``: stop at this relative gap (each backend maps it to its own option)."""
    opts = {**(solver_options(solver, big_m_value) or {}), **(options or {})} or None
    cls = array_model(solver)
    if cls is not None:
        return cls(arrays, threads=threads, emphasis=emphasis, options=opts, mip_gap=mip_gap)
    return PyomoArrayModel(arrays, solver, threads=threads, emphasis=emphasis, options=opts, mip_gap=mip_gap)


def region_rows(arrays, region: Region, rhs_shift: float) -> tuple:
    """The region's rows over the MILP's columns: ``(lower, upper, [(cols, values), ...])`` for
    ``a_x x + a_y y <= b + rhs_shift``."""
    rows = []
    for i in range(region.n_rows):
        jx = np.flatnonzero(region.a_x[i])
        jy = np.flatnonzero(region.a_y[i])
        cols = np.concatenate([arrays.input_cols[jx], arrays.output_cols[jy]])
        vals = np.concatenate([region.a_x[i, jx], region.a_y[i, jy]])
        rows.append((cols.astype(np.int32), vals))
    return np.full(region.n_rows, -np.inf), region.b + rhs_shift, rows


def minimise_distance(model, ball, input_cols, cutoff: float | None = None) -> None:
    """On an array model whose inputs are the columns ``input_cols``: minimise their distance to
    ``ball``'s centre in its norm (:meth:`~reluverify.sets.ball.Ball.encode_distance`); with
    ``cutoff``, only points closer than it. Any model kind's MILP (networks, tree ensembles)."""
    cols, coefs, const = ball.encode_distance(model, input_cols)
    costs: dict = {}
    for col, coef in zip(cols, coefs):
        costs[int(col)] = costs.get(int(col), 0.0) + float(coef)
    model.set_objective(costs, "min", offset=const)
    if cutoff is not None:
        model.add_rows(-np.inf, float(cutoff) - const, [(list(costs), list(costs.values()))])


class NetworkMilp:
    """A network's MILP over ``bounds`` (valid over its input box), restricted to ``inputs`` (an
    input set, or None for the box), on ``solver``: ``.model`` has the array-model interface,
    ``.arrays`` the columns of inputs and outputs."""

    def __init__(self, network: Network, bounds, solver: str, *, inputs=None, threads: int | None = None,
                 emphasis: str | None = None, options: dict | None = None, mip_gap: float | None = None):
        self.network, self.bounds, self.solver = network, bounds, solver
        self.big_m = big_m(bounds)
        self.arrays = network_arrays(network, bounds)
        self.model = open_model(self.arrays, solver, threads=threads, emphasis=emphasis, big_m_value=self.big_m,
                                options=options, mip_gap=mip_gap)
        if inputs is not None:
            inputs.encode(self.model, self.arrays.input_cols)

    def minimise_distance(self, ball, cutoff: float | None = None) -> None:
        """Objective: the distance of the inputs to ``ball``'s centre in its norm; with ``cutoff``,
        only points closer than it (:func:`minimise_distance`)."""
        minimise_distance(self.model, ball, self.arrays.input_cols, cutoff)

    def add_region(self, region: Region, rhs_shift: float) -> None:
        lower, upper, rows = region_rows(self.arrays, region, rhs_shift)
        if rows:
            self.model.add_rows(lower, upper, rows)

    def solve(self, time_limit: float | None):
        """``(SolveResult, input point or None)``."""
        res, values = self.model.solve(time_limit=None if time_limit is None else max(time_limit, 0.1))
        x = None if values is None else np.asarray(values)[self.arrays.input_cols]
        return res, x

    def values(self, values, cols) -> np.ndarray:
        return np.asarray(values)[np.asarray(cols)]


def reachable(network: Network, bounds, region: Region, rhs_shift: float, solver: str, time_limit: float,
              threads: int | None = None, inputs=None):
    """Is ``a_x x + a_y y <= b + rhs_shift`` reachable from the region's box (and ``inputs``)?
    Returns ``(SolveResult, x or None, big-M of the model)``."""
    milp = NetworkMilp(network, bounds, solver, inputs=inputs, threads=threads, emphasis="proof")
    milp.add_region(region, rhs_shift)
    res, x = milp.solve(time_limit)
    return res, x, milp.big_m
