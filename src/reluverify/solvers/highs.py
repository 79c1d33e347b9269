"""HiGHS (``highspy``), reluverify's default solver: through Pyomo's persistent HiGHS interface
and, without Pyomo, from arrays (:class:`HighsArrayModel`).

:class:`HighsArrayModel` is the Pyomo-free path to HiGHS: the network's MILP as arrays
(:func:`reluverify.formulation.network_arrays`) in one ``passModel`` call, with the same options and
the same status mapping as ``solve(..., "highs")`` (issue #5: the Pyomo hand-off cost 120-150x a
direct highspy build; see benchmarks/results/handoff.md). On both paths a HiGHS "infeasible" is
reported only after a confirming run agrees (:func:`highs_confirm_options`).
"""

from __future__ import annotations

import time

import numpy as np

from ..errors import SolveError
from ..results import SolveResult, Status
from ..tolerances import (
    HIGHS_CONFIRM_MIP_FEASIBILITY_TOLERANCE, HIGHS_CONFIRM_PRESOLVE, HIGHS_POLISH_MIP_FEASIBILITY_TOLERANCE,
    MIP_INTEGRALITY_TOLERANCE, PRIMAL_FEASIBILITY_TOLERANCE,
)
from .base import Backend, _finite_or_none, _found, _map_contrib_status, _time_left

# Solver options for MILPs whose job is a proof: of infeasibility (verification), or of the
# optimality of an incumbent we already hold (minimal distortion after the attack). Primal
# heuristics mostly burn time there. Measured on the seed network: L-inf 0.05 verification of one
# image, HiGHS spent 8 of 10 s in RINS/RENS sub-MIPs before proving infeasibility, 2.2 s without
# them; minimal L1 distortion of three images, 20 / 52 / 40 s with them, 8 / 20 / 20 s without.
# HiGHS's presolve on these dense models triggers root restarts that cost seconds each: with it off,
# eight hard seed-network verification instances (L-inf 0.03/0.05) took 7.8 s instead of 18 s, and
# three minimal-L1 instances 8.6 s instead of 11 s. A proof needs a trustworthy "infeasible" more
# than an accurate point, so HiGHS runs it at the tolerance that confirms infeasibility elsewhere
# (HIGHS_CONFIRM_MIP_FEASIBILITY_TOLERANCE, 1e-6, with presolve off: no false "infeasible" in
# 31,200 feasible MILPs, docs/solvers.md), in one run instead of a 1e-9 run plus a confirming one.
PROOF_EMPHASIS = {"mip_heuristic_run_rins": False, "mip_heuristic_run_rens": False, "presolve": HIGHS_CONFIRM_PRESOLVE,
                  "mip_feasibility_tolerance": HIGHS_CONFIRM_MIP_FEASIBILITY_TOLERANCE}

# HiGHS options set on every solve, on both paths (``emphasis`` and ``options`` override them). The
# Pyomo HiGHS interface is persistent (one highspy object per model, see _solver_instance) and keeps
# an option from one solve to the next, so every option a solve here may change gets its value on
# every solve (else a proof-emphasis solve would leave presolve off for the next one).
HIGHS_OPTIONS = {
    "mip_feasibility_tolerance": MIP_INTEGRALITY_TOLERANCE,
    "primal_feasibility_tolerance": PRIMAL_FEASIBILITY_TOLERANCE,
    "presolve": "choose",
    "mip_heuristic_run_rins": True,
    "mip_heuristic_run_rens": True,
}

_HIGHS_NO_POINT = (Status.INFEASIBLE, Status.INFEASIBLE_OR_UNBOUNDED)


def highs_confirm_options(options: dict) -> dict | None:
    """The options of the run that must confirm a HiGHS "infeasible" before it is reported:
    ``options`` (those of the first run) with ``mip_feasibility_tolerance`` raised to
    :data:`~reluverify.tolerances.HIGHS_CONFIRM_MIP_FEASIBILITY_TOLERANCE` and presolve off; ``None``
    when the first run already ran so. At the 1e-9 we solve with, HiGHS 1.16 called about 1 in 40
    to 1 in 15 feasible MILPs of random networks with fixed inputs infeasible; at 1e-6 with presolve
    off none of 31,200 (see :mod:`reluverify.tolerances`, docs/solvers.md)."""
    tol = float(options.get("mip_feasibility_tolerance", HIGHS_CONFIRM_MIP_FEASIBILITY_TOLERANCE))
    if tol >= HIGHS_CONFIRM_MIP_FEASIBILITY_TOLERANCE and options.get("presolve") == HIGHS_CONFIRM_PRESOLVE:
        return None
    return {**options, "mip_feasibility_tolerance": max(tol, HIGHS_CONFIRM_MIP_FEASIBILITY_TOLERANCE),
            "presolve": HIGHS_CONFIRM_PRESOLVE}


def highs_polish_options(options: dict) -> dict:
    """The options of the run that looks for a more accurate point after the confirming run found
    one (the first run's "infeasible" was wrong): ``options`` at
    :data:`~reluverify.tolerances.HIGHS_POLISH_MIP_FEASIBILITY_TOLERANCE` with presolve off."""
    return {**options, "mip_feasibility_tolerance": HIGHS_POLISH_MIP_FEASIBILITY_TOLERANCE,
            "presolve": HIGHS_CONFIRM_PRESOLVE}

def _confirm_note(options: dict, confirm: dict, status: Status, polished: bool | None = None) -> str:
    what = "confirmed" if status in _HIGHS_NO_POINT else f"not confirmed ({status})"
    note = (f"; infeasible at mip_feasibility_tolerance {options['mip_feasibility_tolerance']:g}, {what} by a "
            f"run at {confirm['mip_feasibility_tolerance']:g} with presolve {confirm['presolve']}")
    if polished is not None:
        note += (f"; the point is from a run at {HIGHS_POLISH_MIP_FEASIBILITY_TOLERANCE:g}" if polished else
                 f"; a run at {HIGHS_POLISH_MIP_FEASIBILITY_TOLERANCE:g} gave no better one, the point is from the "
                 "confirming run")
    return note



class HighsBackend(Backend):
    """HiGHS: the Pyomo path (persistent interface, an "infeasible" confirmed by a second run) and
    the array path (:class:`HighsArrayModel`)."""

    name = "highs"
    install_hint = "pip install highspy  (HiGHS is reluverify's default solver and a core dependency)"
    module = "highspy"
    contrib_name = "highs"
    persistent = True
    proof_emphasis = PROOF_EMPHASIS

    @property
    def array_model(self):
        return HighsArrayModel

    @property
    def lp_session(self):
        return HighsLpSession

    def tolerance_options(self) -> dict:
        return {"mip_feasibility_tolerance": MIP_INTEGRALITY_TOLERANCE,
                "primal_feasibility_tolerance": PRIMAL_FEASIBILITY_TOLERANCE}

    def default_options(self) -> dict:
        return dict(HIGHS_OPTIONS)

    def contrib_options(self, options, time_limit) -> dict:
        solver_options = {**HIGHS_OPTIONS, **dict(options or {})}
        if time_limit is None:  # the persistent interface keeps the last solve's limit
            solver_options.setdefault("time_limit", float("inf"))
        return solver_options

    def second_opinion(self, opt, model, config, solver_options, res, time_limit, t0) -> tuple:
        """An "infeasible" from the first run is confirmed (see :func:`highs_confirm_options`);
        a point the confirming run finds is refined (:func:`highs_polish_options`)."""
        note, loaded = "", False
        confirm = highs_confirm_options(solver_options)
        if confirm is not None and _map_contrib_status(res.termination_condition, False) in _HIGHS_NO_POINT:
            # an "infeasible" from HiGHS counts only when a run at its default tolerance agrees
            left = _time_left(time_limit, t0)
            if left is not None and left <= 0.01:
                return res, False, "", (Status.TIME_LIMIT, False, None, None,
                                        f"{res.termination_condition}; no time left to confirm the infeasibility")
            res = opt.solve(model, **{**config, "solver_options": confirm, **({} if left is None else {"time_limit": left})})
            polished = None
            if _found(res):  # the first run was wrong; look for a more accurate point than this one
                res.solution_loader.load_vars()  # kept if the next run finds nothing
                loaded = True
                left = _time_left(time_limit, t0)
                if left is None or left > 0.01:
                    again = opt.solve(model, **{**config, "solver_options": highs_polish_options(solver_options),
                                                **({} if left is None else {"time_limit": left})})
                    # taken if it has a point, unless it timed out where the confirming run did not
                    polished = _found(again) and (_map_contrib_status(again.termination_condition, True) == Status.OPTIMAL
                                                 or _map_contrib_status(res.termination_condition, True) != Status.OPTIMAL)
                    if polished:
                        res, loaded = again, False
            note = _confirm_note(solver_options, confirm, _map_contrib_status(res.termination_condition, False), polished)
        return res, loaded, note, None


# ---------------------------------------------------------------------------------------------
# HiGHS from arrays (no Pyomo)


def _highs_status(model_status, highspy) -> Status:
    """A HiGHS model status as a :class:`Status`, exactly as the Pyomo HiGHS interface maps it
    (through its termination conditions) for :func:`reluverify.solvers.solve`."""
    MS = highspy.HighsModelStatus
    if model_status == MS.kOptimal:
        return Status.OPTIMAL
    if model_status == MS.kInfeasible:
        return Status.INFEASIBLE
    if model_status == MS.kUnbounded:
        return Status.UNBOUNDED
    if model_status == MS.kUnboundedOrInfeasible:
        return Status.INFEASIBLE_OR_UNBOUNDED
    limits = [MS.kTimeLimit, MS.kIterationLimit, MS.kObjectiveBound, MS.kObjectiveTarget]
    if hasattr(MS, "kSolutionLimit"):
        limits.append(MS.kSolutionLimit)
    if model_status in limits:
        return Status.TIME_LIMIT
    return Status.ERROR  # not set, load/model/presolve/solve/postsolve error, empty model, unknown, interrupt


class HighsLpSession:
    """A growing LP for certified bound tightening (:class:`reluverify.bounds.lp.LPBounds`): columns
    and rows are added as layers are finished, and each :meth:`maximise` changes only the
    objective (warm-started simplex). Infinite row or column bounds are given as ``np.inf``.
    The caller certifies every bound from the row duals itself (weak duality in float64); this
    class only says whether HiGHS reached an optimum and what its duals are."""

    def __init__(self):
        import highspy

        self._hs = highspy
        self.highs = highspy.Highs()
        self.highs.setOptionValue("output_flag", False)
        self.highs.setOptionValue("threads", 1)
        self._n_cols = 0

    def _inf(self, a) -> np.ndarray:
        a = _f64(a)
        inf = self._hs.kHighsInf
        return np.where(np.isfinite(a), a, np.where(a > 0, inf, -inf))

    def add_columns(self, lower, upper) -> None:
        lower, upper = self._inf(lower), self._inf(upper)
        self.highs.addVars(int(lower.size), lower, upper)
        self._n_cols += int(lower.size)

    def add_rows(self, lower, upper, starts, index, values) -> None:
        """Rows ``lower <= A v <= upper`` with ``A`` in CSR form (``starts`` has one entry per row)."""
        lower, upper = self._inf(lower), self._inf(upper)
        self.highs.addRows(int(lower.size), lower, upper, int(np.asarray(index).size), _i32(starts), _i32(index),
                           _f64(values))

    def maximise(self, costs: np.ndarray, time_limit: float | None = None) -> np.ndarray | None:
        """Maximise ``costs · v`` within ``time_limit`` seconds; the row duals at the optimum, or None
        when HiGHS ends anywhere else (or fails: the caller then keeps the bound it had, which is
        sound)."""
        h, hs = self.highs, self._hs
        n = self._n_cols
        # HiGHS's time_limit counts this instance's run time since its creation: add what it has used
        h.setOptionValue("time_limit", float("inf") if time_limit is None
                         else h.getRunTime() + max(float(time_limit), 0.01))
        h.changeColsCost(n, np.arange(n, dtype=np.int32), _f64(costs))
        h.changeObjectiveSense(hs.ObjSense.kMaximize)
        try:
            if h.run() == hs.HighsStatus.kError and h.getModelStatus() == hs.HighsModelStatus.kNotset:
                # HiGHS refuses to run when its process-wide scheduler was started (by an earlier
                # run) with another thread count than this session's 1: restart it once, as
                # HighsArrayModel does (without this, LP tightening silently gave no bound)
                hs.Highs.resetGlobalScheduler(True)
                h.run()
            if h.getModelStatus() != hs.HighsModelStatus.kOptimal:
                return None
            return np.asarray(h.getSolution().row_dual, dtype=np.float64)
        except Exception:  # a crashed LP is never a bound, and never the end of the run
            return None


class HighsArrayModel:
    """A MILP given as :class:`~reluverify.formulation.MilpArrays`, handed to HiGHS in one
    ``passModel`` call; re-solvable after changing the objective or adding rows/columns.

    The same options as :func:`reluverify.solvers.solve` with ``"highs"``: reluverify's tolerances
    (:mod:`reluverify.tolerances`), ``PROOF_EMPHASIS`` with ``emphasis="proof"``, ``threads``,
    and ``options`` (any HiGHS option, e.g. ``{"mip_rel_gap": 1e-4}``) over those. The objective is
    0 until :meth:`set_objective`. ``highs`` is the ``highspy.Highs`` instance, for anything else.
    """

    def __init__(self, arrays, *, threads: int | None = None, emphasis: str | None = None,
                 options: dict | None = None, tee: bool = False, mip_gap: float | None = None):
        import highspy

        if emphasis == "proof":
            options = {**PROOF_EMPHASIS, **(options or {})}
        elif emphasis is not None:
            raise SolveError(f"emphasis must be None or 'proof', got {emphasis!r}")
        self._hs = highspy
        self.arrays = arrays
        h = highspy.Highs()
        h.setOptionValue("output_flag", bool(tee))
        settings = {
            **HIGHS_OPTIONS,
            **({"threads": int(threads)} if threads is not None else {}),
            **({"mip_rel_gap": float(mip_gap)} if mip_gap is not None else {}),
            **(options or {}),
        }
        for key, val in settings.items():
            if h.setOptionValue(key, val) == highspy.HighsStatus.kError:
                raise SolveError(f"HiGHS rejected the option {key}={val!r}")
        n_col, n_row, nnz = arrays.n_cols, arrays.n_rows, arrays.nnz
        status = h.passModel(
            n_col, n_row, nnz, int(highspy.MatrixFormat.kRowwise), int(highspy.ObjSense.kMinimize), 0.0,
            np.zeros(n_col), _f64(arrays.col_lower), _f64(arrays.col_upper),
            _f64(arrays.row_lower), _f64(arrays.row_upper),
            _i32(arrays.a_start[:n_row]), _i32(arrays.a_index), _f64(arrays.a_value),
            np.asarray(arrays.integrality, dtype=np.int32),
        )
        if status == highspy.HighsStatus.kError:
            raise SolveError(f"HiGHS rejected the model ({n_col} columns, {n_row} rows, {nnz} nonzeros)")
        self.highs = h
        self._settings = settings
        self._threads = None if threads is None else int(threads)
        self._n_cols, self._n_rows, self._nnz = n_col, n_row, nnz
        self._n_int = int(np.count_nonzero(arrays.integrality))

    @property
    def n_cols(self) -> int:
        return self._n_cols

    @property
    def n_rows(self) -> int:
        return self._n_rows

    def size(self) -> dict:
        return {"variables": self._n_cols, "binaries": self._n_int, "constraints": self._n_rows,
                "nonzeros": self._nnz}

    def _check(self, status, what: str) -> None:
        if status == self._hs.HighsStatus.kError:
            raise SolveError(f"HiGHS refused to {what}")

    def _cols(self, cols) -> np.ndarray:
        cols = np.atleast_1d(np.asarray(cols, dtype=np.int64))
        if cols.size and (cols.min() < 0 or cols.max() >= self._n_cols):
            raise SolveError(f"column index out of range 0..{self._n_cols - 1}")
        return cols.astype(np.int32)

    def add_column(self, lower: float, upper: float, cost: float = 0.0, integral: bool = False) -> int:
        """Add one column (in no row yet) and return its index."""
        h = self.highs
        self._check(h.addCol(float(cost), float(lower), float(upper), 0, np.array([], dtype=np.int32),
                             np.array([], dtype=np.float64)), "add a column")
        col = self._n_cols
        self._n_cols += 1
        if integral:
            self._check(h.changeColIntegrality(col, self._hs.HighsVarType.kInteger), "make a column integral")
            self._n_int += 1
        return col

    def add_rows(self, lower, upper, rows) -> None:
        """Add rows ``lower <= sum(values * x[cols]) <= upper``. ``rows``: a list of
        ``(cols, values)`` pairs, or a dense ``(m, n_cols)`` array (its zeros are dropped);
        ``lower``/``upper``: scalars or length-``m`` arrays (``±np.inf`` for a free side)."""
        if isinstance(rows, np.ndarray):
            dense = np.atleast_2d(np.asarray(rows, dtype=np.float64))
            if dense.shape[1] != self._n_cols:
                raise SolveError(f"dense rows must have {self._n_cols} columns, got {dense.shape[1]}")
            mask = dense != 0
            start = np.zeros(dense.shape[0] + 1, dtype=np.int64)
            np.cumsum(np.count_nonzero(mask, axis=1), out=start[1:])
            index = np.nonzero(mask)[1]
            value = dense[mask]
        else:
            rows = list(rows)
            parts_i = [np.atleast_1d(np.asarray(c, dtype=np.int64)) for c, _ in rows]
            parts_v = [np.atleast_1d(np.asarray(v, dtype=np.float64)) for _, v in rows]
            if any(i.shape != v.shape for i, v in zip(parts_i, parts_v)):
                raise SolveError("each row needs as many values as columns")
            start = np.zeros(len(rows) + 1, dtype=np.int64)
            np.cumsum([i.size for i in parts_i], out=start[1:])
            index = np.concatenate(parts_i) if rows else np.array([], dtype=np.int64)
            value = np.concatenate(parts_v) if rows else np.array([], dtype=np.float64)
        m = start.size - 1
        if m == 0:
            return
        index = self._cols(index)
        lower = np.broadcast_to(np.asarray(lower, dtype=np.float64), (m,))
        upper = np.broadcast_to(np.asarray(upper, dtype=np.float64), (m,))
        self._check(self.highs.addRows(m, _f64(lower), _f64(upper), int(value.size), _i32(start[:m]), index,
                                       _f64(value)), "add rows")
        self._n_rows += m
        self._nnz += int(value.size)

    def set_objective(self, costs, sense: str = "min", offset: float = 0.0) -> None:
        """Objective ``offset + costs · x``: ``costs`` a dense length-``n_cols`` array or a
        ``{column: coefficient}`` dict; every other cost becomes 0. ``sense``: "min" or "max"."""
        if sense not in ("min", "max", "minimize", "maximize"):
            raise SolveError(f"sense must be 'min' or 'max', got {sense!r}")
        if isinstance(costs, dict):
            dense = np.zeros(self._n_cols)
            if costs:
                cols = self._cols(list(costs))
                np.add.at(dense, cols, np.asarray(list(costs.values()), dtype=np.float64))
        else:
            dense = np.asarray(costs, dtype=np.float64).ravel()
            if dense.size != self._n_cols:
                raise SolveError(f"costs must have {self._n_cols} entries, got {dense.size}")
        h, hs = self.highs, self._hs
        self._check(h.changeObjectiveSense(hs.ObjSense.kMaximize if sense.startswith("max") else hs.ObjSense.kMinimize),
                    "change the objective sense")
        self._check(h.changeObjectiveOffset(float(offset)), "change the objective offset")
        self._check(h.changeColsCost(self._n_cols, np.arange(self._n_cols, dtype=np.int32), _f64(dense)),
                    "change the costs")

    def set_col_bounds(self, cols, lower, upper) -> None:
        """Change the bounds of columns ``cols`` (scalars or arrays, broadcast)."""
        cols = self._cols(cols)
        lower = np.broadcast_to(np.asarray(lower, dtype=np.float64), cols.shape)
        upper = np.broadcast_to(np.asarray(upper, dtype=np.float64), cols.shape)
        self._check(self.highs.changeColsBounds(cols.size, cols, _f64(lower), _f64(upper)), "change column bounds")

    def _run(self, time_limit: float | None):
        hs, h = self._hs, self.highs
        h.setOptionValue("time_limit", float(time_limit) if time_limit is not None else float("inf"))
        run_status = h.run()
        model_status = h.getModelStatus()
        if (run_status == hs.HighsStatus.kError and model_status == hs.HighsModelStatus.kNotset
                and self._threads is not None):
            # HiGHS refuses to run with a `threads` option other than the thread count its
            # process-wide scheduler was started with (by any earlier run); restart it once.
            hs.Highs.resetGlobalScheduler(True)
            h.run()
            model_status = h.getModelStatus()
        return model_status

    def _run_with(self, options: dict, time_limit: float | None):
        """One run with ``options`` instead of this model's own; they are restored after."""
        h = self.highs
        changed = {k: v for k, v in options.items() if self._settings.get(k) != v}
        try:
            for key, val in changed.items():
                h.setOptionValue(key, val)
            return self._run(time_limit)
        finally:
            for key in changed:
                h.setOptionValue(key, self._settings[key])

    def _outcome(self, model_status) -> tuple:
        """``(status, column values or None, objective, bound, message)`` of the last run."""
        hs, h = self._hs, self.highs
        info = h.getInfo()
        has_solution = info.primal_solution_status == 2  # 0 none, 1 infeasible, 2 feasible
        status = _highs_status(model_status, hs)
        if status == Status.OPTIMAL and not has_solution and self._n_cols > 0:
            status = Status.ERROR
        objective = info.objective_function_value if has_solution else None
        if info.mip_node_count == -1:  # solved as an LP
            bound = objective if (status == Status.OPTIMAL and has_solution) else None
        else:
            bound = info.mip_dual_bound
        values = np.array(h.getSolution().col_value, dtype=np.float64) if has_solution else None
        return status, values, objective, bound, h.modelStatusToString(model_status)

    def solve(self, time_limit: float | None = None):
        """Run HiGHS. Returns ``(SolveResult, column values or None)``; statuses as :func:`reluverify.solvers.solve`
        gives them (a failure inside HiGHS is ``Status.ERROR``, never an exception; an
        "infeasible" is confirmed by a second run, see :func:`highs_confirm_options`, and a point
        that run finds is refined by a third, :func:`highs_polish_options`)."""
        if time_limit is not None and not (float(time_limit) > 0):
            raise SolveError(f"time_limit must be positive (seconds), got {time_limit}")
        size = self.size()
        t0 = time.perf_counter()
        note = ""
        try:
            out = self._outcome(self._run(time_limit))
            confirm = highs_confirm_options(self._settings)
            if confirm is not None and out[0] in _HIGHS_NO_POINT:
                # an "infeasible" from HiGHS counts only when a run at its default tolerance agrees
                left = _time_left(time_limit, t0)
                if left is not None and left <= 0.01:
                    return SolveResult(Status.TIME_LIMIT, "highs", time.perf_counter() - t0,
                                       message=f"{out[4]}; no time left to confirm the infeasibility", size=size), None
                out = self._outcome(self._run_with(confirm, left))
                polished = None
                if out[1] is not None:  # the first run was wrong; look for a more accurate point
                    left = _time_left(time_limit, t0)
                    if left is None or left > 0.01:
                        again = self._outcome(self._run_with(highs_polish_options(self._settings), left))
                        # taken if it has a point, unless it timed out where the confirming run did not
                        polished = again[1] is not None and (again[0] == Status.OPTIMAL or out[0] != Status.OPTIMAL)
                        if polished:
                            out = again
                note = _confirm_note(self._settings, confirm, out[0], polished)
            status, values, objective, bound, message = out
            has_solution = values is not None
            message += note
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # a crashed solver is an honest "error", never a verdict
            return SolveResult(Status.ERROR, "highs", time.perf_counter() - t0,
                               message=f"{type(exc).__name__}: {exc}", size=size), None
        wall = time.perf_counter() - t0
        return SolveResult(status, "highs", wall, has_solution, _finite_or_none(objective), _finite_or_none(bound),
                           message, size), values


def _f64(a) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float64)


def _i32(a) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.int32)
