"""CBC through Pyomo's classic ``cbc`` shell interface (the binary from ``cbcbox``, or on PATH)."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys

import pyomo.environ as pyo

from ..results import Status
from ..tolerances import MIP_INTEGRALITY_TOLERANCE, PRIMAL_FEASIBILITY_TOLERANCE
from .base import Backend, _finite_or_none


def cbc_executable() -> str | None:
    """The CBC binary: on PATH, or installed by cbcbox beside this Python interpreter."""
    found = shutil.which("cbc")
    if found:
        return found
    beside = os.path.join(os.path.dirname(sys.executable), "cbc")
    return beside if os.path.exists(beside) else None


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


class CbcBackend(Backend):
    """CBC: a model file handed to the ``cbc`` binary by Pyomo; its bound propagation off where the
    build has it (:func:`_cbc_options`)."""

    name = "cbc"
    install_hint = "pip install 'reluverify[cbc]'  (installs cbcbox, which puts a `cbc` binary beside Python)"

    def probe(self) -> tuple:
        return cbc_executable() is not None, False, None

    def tolerance_options(self) -> dict:
        return {"integerTolerance": MIP_INTEGRALITY_TOLERANCE, "primalTolerance": PRIMAL_FEASIBILITY_TOLERANCE}

    def careful_options(self, big_m_value: float = 0.0) -> dict | None:
        return dict(_cbc_options(cbc_executable())) or None

    def solve_model(self, model, time_limit, threads, mip_gap, tee, options) -> tuple:
        return _solve_cbc(model, time_limit, threads, mip_gap, tee, options)
