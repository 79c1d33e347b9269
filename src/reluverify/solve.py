"""Solve a Pyomo model with a solver chosen by name; every solver quirk lives here.

``solve(model, "highs" | "cbc" | "gurobi", time_limit=..., threads=..., mip_gap=...)`` returns a
:class:`~reluverify.results.SolveResult` with a status from a small fixed set. A solution (if any)
is loaded into the model's variables.

:class:`HighsArrayModel` is the Pyomo-free path to HiGHS: the network's MILP as arrays
(:func:`reluverify.formulation.network_arrays`) in one ``passModel`` call, with the same options and
the same status mapping as ``solve(..., "highs")`` (issue #5: the Pyomo hand-off cost 120-150x a
direct highspy build; see benchmarks/results/handoff.md).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pyomo.environ as pyo

from .errors import LicenseLimitError, ModelError, SolveError, SolverNotAvailableError, UnknownSolverError
from .results import SolveResult, Status
from .tolerances import (
    CAREFUL_BIG_M, HIGHS_CONFIRM_MIP_FEASIBILITY_TOLERANCE, HIGHS_CONFIRM_PRESOLVE, HIGHS_POLISH_MIP_FEASIBILITY_TOLERANCE,
    MIP_INTEGRALITY_TOLERANCE, PRIMAL_FEASIBILITY_TOLERANCE,
)

SOLVERS = ("highs", "cbc", "gurobi")
DEFAULT_SOLVER = "highs"

INSTALL_HINTS = {
    "highs": "pip install highspy  (HiGHS is reluverify's default solver and a core dependency)",
    "cbc": "pip install 'reluverify[cbc]'  (installs cbcbox, which puts a `cbc` binary beside Python)",
    "gurobi": "pip install 'reluverify[gurobi]'  (gurobipy; its pip licence is size-limited)",
}

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
PROOF_EMPHASIS = {
    "highs": {"mip_heuristic_run_rins": False, "mip_heuristic_run_rens": False, "presolve": HIGHS_CONFIRM_PRESOLVE,
              "mip_feasibility_tolerance": HIGHS_CONFIRM_MIP_FEASIBILITY_TOLERANCE},
    "gurobi": {"MIPFocus": 3},
    "cbc": {},
}

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


def _time_left(time_limit, t0) -> float | None:
    return None if time_limit is None else float(time_limit) - (time.perf_counter() - t0)


# Gurobi's pip package comes with a restricted licence for models up to this size.
GUROBI_LIMITED_MAX_VARIABLES = 2000
GUROBI_LIMITED_MAX_CONSTRAINTS = 2000


def _check_name(solver: str) -> str:
    if not isinstance(solver, str) or solver.lower() not in SOLVERS:
        raise UnknownSolverError(f"unknown solver {solver!r}; choose one of {', '.join(SOLVERS)}")
    return solver.lower()


def cbc_executable() -> str | None:
    """The CBC binary: on PATH, or installed by cbcbox beside this Python interpreter."""
    found = shutil.which("cbc")
    if found:
        return found
    beside = os.path.join(os.path.dirname(sys.executable), "cbc")
    return beside if os.path.exists(beside) else None


def _contrib(name: str):
    from pyomo.contrib.solver.common.factory import SolverFactory

    return SolverFactory._cls[name]()


_SOLVER_MODULES = {"highs": "highspy", "gurobi": "gurobipy"}


def _probe(solver: str) -> tuple:
    """``(available, licence_limited, problem)`` for a solver name; ``problem`` says why an
    installed solver cannot be used (its import fails with something other than ImportError, or
    Pyomo finds it unusable, e.g. without a licence), ``None`` when it is usable or not installed."""
    if solver == "cbc":
        return cbc_executable() is not None, False, None
    import importlib

    try:
        importlib.import_module(_SOLVER_MODULES[solver])
    except ImportError:
        return False, False, None  # not installed
    except Exception as exc:  # installed, but broken: say so, with the error
        return False, False, f"importing {_SOLVER_MODULES[solver]} fails: {type(exc).__name__}: {exc}"
    try:
        avail = _contrib("highs" if solver == "highs" else "gurobi_direct").available()
    except Exception as exc:
        return False, False, f"Pyomo's interface to it fails: {type(exc).__name__}: {exc}"
    if not avail:
        return False, False, f"Pyomo reports it unusable ({avail})"
    return True, solver == "gurobi" and "Limited" in str(avail), None


def _availability(solver: str):
    """``(available, licence_limited)`` for a solver name."""
    return _probe(solver)[:2]


def available_solvers() -> dict:
    """``{name: bool}`` for every known solver."""
    return {name: _availability(name)[0] for name in SOLVERS}


def solver_problem(solver: str) -> str | None:
    """Why an installed solver cannot be used here, or ``None`` (usable, or not installed)."""
    return _probe(_check_name(solver))[2]


def _not_available(solver: str) -> SolverNotAvailableError:
    problem = solver_problem(solver)
    if problem:
        return SolverNotAvailableError(f"solver {solver!r} is installed but cannot be used: {problem}; "
                                       f"reinstall it ({INSTALL_HINTS[solver]}) or pick another solver")
    return SolverNotAvailableError(f"solver {solver!r} is not installed; {INSTALL_HINTS[solver]}")


def require_solver(solver: str) -> str:
    """Normalise and check a solver name; raise a typed error if it cannot be used."""
    solver = _check_name(solver)
    if not _availability(solver)[0]:
        raise _not_available(solver)
    return solver


def model_size(model) -> dict:
    """Free (unfixed) variables, binaries and active constraints of a Pyomo model."""
    n_vars = n_bin = 0
    for v in model.component_data_objects(pyo.Var, descend_into=True):
        if not v.fixed:
            n_vars += 1
            n_bin += v.is_binary()
    n_cons = sum(1 for _ in model.component_data_objects(pyo.Constraint, active=True, descend_into=True))
    return {"variables": n_vars, "binaries": n_bin, "constraints": n_cons}


def _licence_error(size: dict) -> LicenseLimitError:
    return LicenseLimitError(
        f"this model has {size['variables']} variables and {size['constraints']} constraints, more than "
        f"Gurobi's size-limited pip licence allows ({GUROBI_LIMITED_MAX_VARIABLES} variables, "
        f"{GUROBI_LIMITED_MAX_CONSTRAINTS} constraints); use solver='highs' (or 'cbc'), or install a full "
        "Gurobi licence"
    )


def _map_contrib_status(tc, has_solution: bool) -> Status:
    from pyomo.contrib.solver.common.results import TerminationCondition as TC

    if tc == TC.convergenceCriteriaSatisfied:
        return Status.OPTIMAL
    if tc == TC.provenInfeasible:
        return Status.INFEASIBLE
    # TC.locallyInfeasible (a local solver found no point near where it looked) proves nothing:
    # it falls through to ERROR, like every other status that is neither a proof nor a limit
    if tc == TC.unbounded:
        return Status.UNBOUNDED
    if tc == TC.infeasibleOrUnbounded:
        return Status.INFEASIBLE_OR_UNBOUNDED
    if tc in (TC.maxTimeLimit, TC.iterationLimit, TC.interrupted, TC.objectiveLimit, TC.minStepLength):
        return Status.TIME_LIMIT
    if tc == TC.emptyModel:
        return Status.OPTIMAL
    return Status.ERROR


def _solver_instance(model, name):
    """HiGHS's Pyomo interface is persistent: kept on the model, a re-solve after a small change
    (another goal row, another objective) only sends the change. Measured on the seed network's
    L-inf verification MILPs: 0.012 s per re-solve instead of 0.15 s for a fresh hand-off."""
    if name != "highs":
        return _contrib(name)
    cache = model.__dict__.setdefault("_reluverify_solvers", {})
    if name not in cache:
        cache[name] = _contrib(name)
    return cache[name]


def _solve_contrib(model, name, time_limit, threads, mip_gap, tee, options):
    from pyomo.contrib.solver.common.results import SolutionStatus

    opt = _solver_instance(model, name)
    solver_options = dict(options or {})
    if name == "highs":
        solver_options = {**HIGHS_OPTIONS, **solver_options}
        if time_limit is None:  # the persistent interface keeps the last solve's limit
            solver_options.setdefault("time_limit", float("inf"))
    else:
        solver_options.setdefault("IntFeasTol", MIP_INTEGRALITY_TOLERANCE)
        solver_options.setdefault("FeasibilityTol", PRIMAL_FEASIBILITY_TOLERANCE)
    config = dict(
        tee=tee,
        load_solutions=False,
        raise_exception_on_nonoptimal_result=False,
        solver_options=solver_options,
    )
    if time_limit is not None:
        config["time_limit"] = float(time_limit)
    if threads is not None:
        config["threads"] = int(threads)
    if mip_gap is not None:
        config["rel_gap"] = float(mip_gap)
    def found(r):
        return r.solution_status in (SolutionStatus.feasible, SolutionStatus.optimal)

    t0 = time.perf_counter()
    res = opt.solve(model, **config)
    note, loaded = "", False
    confirm = highs_confirm_options(solver_options) if name == "highs" else None
    if confirm is not None and _map_contrib_status(res.termination_condition, False) in _HIGHS_NO_POINT:
        # an "infeasible" from HiGHS counts only when a run at its default tolerance agrees
        left = _time_left(time_limit, t0)
        if left is not None and left <= 0.01:
            return (Status.TIME_LIMIT, False, None, None,
                    f"{res.termination_condition}; no time left to confirm the infeasibility")
        res = opt.solve(model, **{**config, "solver_options": confirm, **({} if left is None else {"time_limit": left})})
        polished = None
        if found(res):  # the first run was wrong; look for a more accurate point than this one
            res.solution_loader.load_vars()  # kept if the next run finds nothing
            loaded = True
            left = _time_left(time_limit, t0)
            if left is None or left > 0.01:
                again = opt.solve(model, **{**config, "solver_options": highs_polish_options(solver_options),
                                            **({} if left is None else {"time_limit": left})})
                # taken if it has a point, unless it timed out where the confirming run did not
                polished = found(again) and (_map_contrib_status(again.termination_condition, True) == Status.OPTIMAL
                                             or _map_contrib_status(res.termination_condition, True) != Status.OPTIMAL)
                if polished:
                    res, loaded = again, False
        note = _confirm_note(solver_options, confirm, _map_contrib_status(res.termination_condition, False), polished)
    has_solution = found(res)
    if has_solution and not loaded:
        res.solution_loader.load_vars()
    status = _map_contrib_status(res.termination_condition, has_solution)
    if status == Status.OPTIMAL and not has_solution and model_size(model)["variables"] > 0:
        status = Status.ERROR
    return status, has_solution, res.incumbent_objective, res.objective_bound, str(res.termination_condition) + note


def _solve_cbc(model, time_limit, threads, mip_gap, tee, options):
    from pyomo.opt import SolverStatus, TerminationCondition as TC

    exe = cbc_executable()
    opt = pyo.SolverFactory("cbc", executable=exe)
    opt.options["integerTolerance"] = MIP_INTEGRALITY_TOLERANCE
    opt.options["primalTolerance"] = PRIMAL_FEASIBILITY_TOLERANCE
    if time_limit is not None:
        opt.options["sec"] = float(time_limit)
    if threads is not None:
        opt.options["threads"] = int(threads)
    if mip_gap is not None:
        opt.options["ratioGap"] = float(mip_gap)
    for key, val in (options or {}).items():
        opt.options[key] = val
    res = opt.solve(model, load_solutions=False, tee=tee)
    tc = res.solver.termination_condition
    n_solutions = len(res.solution) if hasattr(res, "solution") else 0
    has_solution = n_solutions > 0 and tc not in (TC.infeasible, TC.unbounded, TC.infeasibleOrUnbounded)
    if has_solution:
        model.solutions.load_from(res)
    if tc == TC.optimal:
        status = Status.OPTIMAL
    elif tc == TC.infeasible:
        status = Status.INFEASIBLE
    elif tc == TC.unbounded:
        status = Status.UNBOUNDED
    elif tc == TC.infeasibleOrUnbounded:
        status = Status.INFEASIBLE_OR_UNBOUNDED
    elif tc in (TC.maxTimeLimit, TC.maxIterations, TC.maxEvaluations, TC.intermediateNonInteger) or (
        res.solver.status == SolverStatus.aborted
    ):
        status = Status.TIME_LIMIT
    else:
        status = Status.ERROR
    objective = bound = None
    objs = list(model.component_data_objects(pyo.Objective, active=True))
    if objs:
        minimize = objs[0].sense == pyo.minimize
        lb, ub = res.problem.lower_bound, res.problem.upper_bound
        objective, bound = (ub, lb) if minimize else (lb, ub)
        objective = _finite_or_none(objective) if has_solution else None
        bound = _finite_or_none(bound)
    return status, has_solution, objective, bound, f"{res.solver.status}/{tc}"


def _finite_or_none(v):
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return v if abs(v) < float("inf") else None


def solve(
    model,
    solver: str = DEFAULT_SOLVER,
    *,
    time_limit: float | None = None,
    threads: int | None = None,
    mip_gap: float | None = None,
    tee: bool = False,
    options: dict | None = None,
    emphasis: str | None = None,
) -> SolveResult:
    """Solve ``model`` (a Pyomo model with one active objective) with ``solver``.

    Statuses: ``optimal`` and ``infeasible`` are proofs (up to the solver's tolerances, which we
    set tight, see :mod:`reluverify.tolerances`; a HiGHS ``infeasible`` only after a second run at a
    looser tolerance agrees, see :func:`highs_confirm_options`); ``time_limit`` may carry an incumbent;
    ``emphasis="proof"`` tunes the solver for proving (infeasibility, or optimality of a known
    incumbent) rather than for finding solutions;
    ``error`` means the run gave nothing usable. Raises :class:`UnknownSolverError`,
    :class:`SolverNotAvailableError` or :class:`LicenseLimitError` before solving.
    """
    solver = _check_name(solver)
    if time_limit is not None and not (float(time_limit) > 0):
        raise SolveError(f"time_limit must be positive (seconds), got {time_limit}")
    available, limited = _availability(solver)
    if not available:
        raise _not_available(solver)
    size = model_size(model)
    if solver == "gurobi" and limited and (
        size["variables"] > GUROBI_LIMITED_MAX_VARIABLES or size["constraints"] > GUROBI_LIMITED_MAX_CONSTRAINTS
    ):
        raise _licence_error(size)
    if emphasis == "proof":
        options = {**PROOF_EMPHASIS[solver], **(options or {})}
    elif emphasis is not None:
        raise SolveError(f"emphasis must be None or 'proof', got {emphasis!r}")
    objectives = list(model.component_data_objects(pyo.Objective, active=True, descend_into=True))
    if len(objectives) > 1:
        names = ", ".join(o.name for o in objectives[:5]) + (", ..." if len(objectives) > 5 else "")
        raise ModelError(f"the model has {len(objectives)} active objectives ({names}); a solve needs at most one: "
                         "deactivate the others (obj.deactivate()) or delete them")
    # a model without an objective is a feasibility question: a zero objective for this solve
    # only, so that the user's model is left as it was (they may add their own and solve again)
    feasibility = None
    if not objectives:
        feasibility = "_reluverify_feasibility_objective"
        while model.component(feasibility) is not None:
            feasibility += "_"
        model.add_component(feasibility, pyo.Objective(expr=0.0))
    from pyomo.common.errors import InvalidExpressionError
    from pyomo.contrib.solver.common.util import IncompatibleModelError

    t0 = time.perf_counter()
    try:
        if solver == "cbc":
            status, has_sol, obj, bound, msg = _solve_cbc(model, time_limit, threads, mip_gap, tee, options)
        else:
            name = "highs" if solver == "highs" else "gurobi_direct"
            status, has_sol, obj, bound, msg = _solve_contrib(model, name, time_limit, threads, mip_gap, tee, options)
    except (KeyboardInterrupt, LicenseLimitError):
        raise
    except (IncompatibleModelError, InvalidExpressionError) as exc:  # the model, not the solver
        raise ModelError(f"{solver} cannot solve this model: {exc}; reluverify's solvers take mixed-integer "
                         "linear models only (linear objective and constraints, continuous and integer variables)"
                         ) from exc
    except Exception as exc:  # a crashed or killed solver is an honest "error", never a verdict
        text = f"{type(exc).__name__}: {exc}"
        if solver == "gurobi" and ("size-limited" in text or "10010" in text):
            raise _licence_error(size) from exc
        return SolveResult(Status.ERROR, solver, time.perf_counter() - t0, message=text, size=size)
    finally:
        if feasibility is not None:
            model.del_component(feasibility)
    wall = time.perf_counter() - t0
    return SolveResult(status, solver, wall, has_sol, _finite_or_none(obj), _finite_or_none(bound), msg, size)


# ---------------------------------------------------------------------------------------------
# HiGHS from arrays (no Pyomo)


def _highs_status(model_status, highspy) -> Status:
    """A HiGHS model status as a :class:`Status`, exactly as the Pyomo HiGHS interface maps it
    (through its termination conditions) for :func:`solve`."""
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


class HighsArrayModel:
    """A MILP given as :class:`~reluverify.formulation.MilpArrays`, handed to HiGHS in one
    ``passModel`` call; re-solvable after changing the objective or adding rows/columns.

    The same options as :func:`solve` with ``"highs"``: reluverify's tolerances
    (:mod:`reluverify.tolerances`), ``PROOF_EMPHASIS`` with ``emphasis="proof"``, ``threads``,
    and ``options`` (any HiGHS option, e.g. ``{"mip_rel_gap": 1e-4}``) over those. The objective is
    0 until :meth:`set_objective`. ``highs`` is the ``highspy.Highs`` instance, for anything else.
    """

    def __init__(self, arrays, *, threads: int | None = None, emphasis: str | None = None,
                 options: dict | None = None, tee: bool = False):
        import highspy

        if emphasis == "proof":
            options = {**PROOF_EMPHASIS["highs"], **(options or {})}
        elif emphasis is not None:
            raise SolveError(f"emphasis must be None or 'proof', got {emphasis!r}")
        self._hs = highspy
        self.arrays = arrays
        h = highspy.Highs()
        h.setOptionValue("output_flag", bool(tee))
        settings = {
            **HIGHS_OPTIONS,
            **({"threads": int(threads)} if threads is not None else {}),
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
        """Run HiGHS. Returns ``(SolveResult, column values or None)``; statuses as :func:`solve`
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


@functools.lru_cache(maxsize=None)
def _cbc_options(exe) -> tuple:
    """Options for CBC builds whose bound propagation declares feasible MILPs infeasible.

    cbcbox's CBC (devel, git 146ce89) runs a 'milpbt' bound propagation before the root LP by
    default; on 32 of 410 feasible verification MILPs of tiny random networks it stopped with
    "FBBT divergence ... infeasibility proved" (so ``robust`` where a counterexample exists), and
    on 33 more its output could not be parsed (``error``); with ``boundPropLevel off`` CBC agreed
    with HiGHS and Gurobi on all of them (tests/test_cross_solver.py). Builds without the option
    (CBC 2.10) get nothing.
    """
    if not exe:
        return ()
    try:
        out = subprocess.run([exe, "-boundPropLevel??"], capture_output=True, text=True, timeout=60).stdout
    except Exception:  # pragma: no cover - a CBC that cannot even print its help fails later anyway
        return ()
    return (("boundPropLevel", "off"),) if "Match for `boundPropLevel'" in out else ()


def solver_options(solver: str, big_m_value: float = 0.0) -> dict | None:
    """Extra options for MILPs whose answers are taken as proofs (see :func:`_cbc_options` and
    :data:`~reluverify.tolerances.CAREFUL_BIG_M`); ``big_m_value`` is the model's largest big-M."""
    solver = str(solver).lower()
    if solver == "cbc":
        return dict(_cbc_options(cbc_executable())) or None
    if solver == "gurobi" and big_m_value > CAREFUL_BIG_M:
        return {"NumericFocus": 3}
    return None
