"""The MILP as arrays, for backends without an array path of their own: the same interface as
:class:`reluverify.solvers.highs.HighsArrayModel` (``add_column``, ``add_rows``, ``set_objective``,
``set_col_bounds``, ``solve``), built into a Pyomo model at each solve and handed to the backend by
name through :func:`reluverify.solvers.solve` (its options, status mapping and trust quirks)."""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo
from pyomo.core.expr.numeric_expr import LinearExpression

from ..errors import SolveError


class PyomoArrayModel:
    """``arrays`` (:class:`~reluverify.formulation.MilpArrays`) plus added columns and rows, solved
    with ``solver`` through Pyomo. ``options``/``emphasis``/``threads`` as for :func:`solve`."""

    def __init__(self, arrays, solver: str, *, threads: int | None = None, emphasis: str | None = None,
                 options: dict | None = None, tee: bool = False, mip_gap: float | None = None):
        self.arrays = arrays
        self.mip_gap = mip_gap
        self.solver, self.threads, self.emphasis, self.options, self.tee = solver, threads, emphasis, options, tee
        self.col_lower = list(np.asarray(arrays.col_lower, dtype=np.float64))
        self.col_upper = list(np.asarray(arrays.col_upper, dtype=np.float64))
        self.integral = list(np.asarray(arrays.integrality, dtype=bool))
        self.rows: list = []  # (lower, upper, cols, values) added after the network's rows
        self.costs: dict = {}
        self.sense = "min"
        self.offset = 0.0

    @property
    def n_cols(self) -> int:
        return len(self.col_lower)

    @property
    def n_rows(self) -> int:
        return self.arrays.n_rows + len(self.rows)

    def size(self) -> dict:
        return {"variables": self.n_cols, "binaries": int(sum(self.integral)), "constraints": self.n_rows}

    def add_column(self, lower: float, upper: float, cost: float = 0.0, integral: bool = False) -> int:
        self.col_lower.append(float(lower))
        self.col_upper.append(float(upper))
        self.integral.append(bool(integral))
        col = self.n_cols - 1
        if cost:
            self.costs[col] = float(cost)
        return col

    def add_rows(self, lower, upper, rows) -> None:
        if isinstance(rows, np.ndarray):
            dense = np.atleast_2d(rows)
            rows = [(np.flatnonzero(r), r[np.flatnonzero(r)]) for r in dense]
        rows = list(rows)
        lower = np.broadcast_to(np.asarray(lower, dtype=np.float64), (len(rows),))
        upper = np.broadcast_to(np.asarray(upper, dtype=np.float64), (len(rows),))
        for lo, hi, (cols, vals) in zip(lower, upper, rows):
            cols = np.atleast_1d(np.asarray(cols, dtype=np.int64))
            vals = np.atleast_1d(np.asarray(vals, dtype=np.float64))
            if cols.size and (cols.min() < 0 or cols.max() >= self.n_cols):
                raise SolveError(f"column index out of range 0..{self.n_cols - 1}")
            self.rows.append((float(lo), float(hi), cols.tolist(), vals.tolist()))

    def set_objective(self, costs, sense: str = "min", offset: float = 0.0) -> None:
        if sense not in ("min", "max", "minimize", "maximize"):
            raise SolveError(f"sense must be 'min' or 'max', got {sense!r}")
        if isinstance(costs, dict):
            self.costs = {int(k): float(v) for k, v in costs.items()}
        else:
            dense = np.asarray(costs, dtype=np.float64).ravel()
            self.costs = {int(j): float(dense[j]) for j in np.flatnonzero(dense)}
        self.sense, self.offset = ("max" if sense.startswith("max") else "min"), float(offset)

    def set_col_bounds(self, cols, lower, upper) -> None:
        cols = np.atleast_1d(np.asarray(cols, dtype=np.int64))
        lower = np.broadcast_to(np.asarray(lower, dtype=np.float64), cols.shape)
        upper = np.broadcast_to(np.asarray(upper, dtype=np.float64), cols.shape)
        for c, lo, hi in zip(cols.tolist(), lower.tolist(), upper.tolist()):
            self.col_lower[c], self.col_upper[c] = lo, hi

    def _build(self):
        a = self.arrays
        m = pyo.ConcreteModel()
        n = self.n_cols
        m.x = pyo.Var(range(n))
        xs = [m.x[j] for j in range(n)]
        for j, v in enumerate(xs):
            lo, hi = self.col_lower[j], self.col_upper[j]
            if self.integral[j]:
                v.domain = pyo.Binary if (lo >= 0 and hi <= 1) else pyo.Integers
            v.setlb(lo if np.isfinite(lo) else None)
            v.setub(hi if np.isfinite(hi) else None)
            if lo == hi:
                v.fix(lo)
        rows = []
        start, index, value = a.a_start.tolist(), a.a_index.tolist(), a.a_value.tolist()
        for r in range(a.n_rows):
            s, e = start[r], start[r + 1]
            rows.append((a.row_lower[r], a.row_upper[r], index[s:e], value[s:e]))
        rows += self.rows

        def rule(_m, r):
            lo, hi, cols, vals = rows[r]
            expr = LinearExpression(constant=0.0, linear_coefs=list(vals), linear_vars=[xs[c] for c in cols])
            return (lo if np.isfinite(lo) else None, expr, hi if np.isfinite(hi) else None)

        m.rows = pyo.Constraint(range(len(rows)), rule=rule)
        cols = sorted(self.costs)
        used = {c for _lo, _hi, cs, _vs in rows for c in cs} | set(cols)
        self._unused = [j for j in range(n) if j not in used]  # written to no file: no value comes back
        m.obj = pyo.Objective(expr=LinearExpression(constant=self.offset, linear_coefs=[self.costs[c] for c in cols],
                                                    linear_vars=[xs[c] for c in cols]),
                              sense=pyo.maximize if self.sense == "max" else pyo.minimize)
        return m, xs

    def solve(self, time_limit: float | None = None):
        """``(SolveResult, column values or None)``, statuses as :func:`reluverify.solvers.solve` gives them."""
        from . import solve

        m, xs = self._build()
        res = solve(m, self.solver, time_limit=time_limit, threads=self.threads, emphasis=self.emphasis,
                    options=self.options, tee=self.tee, mip_gap=self.mip_gap)
        values = None
        if res.has_solution:
            values = np.array([np.nan if v.value is None else float(v.value) for v in xs], dtype=np.float64)
            for j in self._unused:  # in no row and not in the objective: any value within its bounds
                if np.isnan(values[j]):
                    values[j] = float(np.clip(0.0, self.col_lower[j], self.col_upper[j]))
            if not np.all(np.isfinite(values)):  # a solution file without some values: no point
                values = None
        return res, values
