"""Any other MILP solver Pyomo knows, by name: ``solver="pyomo:glpk"``, ``"pyomo:cplex"``,
``"pyomo:appsi_highs"`` ... through Pyomo's classic ``SolverFactory``.

reluverify knows nothing about such a solver, so it is treated conservatively: its own default
tolerances (reluverify cannot name the options that would set its own; pass them in ``options``),
``time_limit`` passed as Pyomo's ``timelimit`` (``threads`` and ``mip_gap`` are not passed: give
them in ``options`` under the solver's names), and statuses mapped so that only a proven optimum or
a proven infeasibility (Pyomo's ``optimal``/``globallyOptimal`` and ``infeasible``, with a solver
status of ``ok`` or ``warning``) is a proof; local (NLP) solvers Pyomo ships, whose "optimal" and
"infeasible" are local, are refused (:data:`LOCAL_SOLVERS`). A limit is a time limit without a bound (an unknown plugin's bound
after a limit is not trusted); anything else (``locallyOptimal``, ``userInterrupt``, errors, ...)
gives no bound and, without a point, an error.
"""

from __future__ import annotations

import pyomo.environ as pyo

from ..errors import SolverNotAvailableError
from ..results import Status
from .base import Backend, _finite_or_none, _require_linear


# Pyomo solvers whose answers are local (NLP solvers, decomposition and multistart heuristics):
# their "optimal" or "infeasible" is no proof for a MILP, so they are refused as backends.
LOCAL_SOLVERS = ("ipopt", "cyipopt", "conopt", "snopt", "minos", "knitro", "loqo", "bonmin", "multistart",
                 "trustregion", "scipy.", "mpec_", "gdpopt", "mindtpy", "gurobi_direct_minlp")


def _is_local(name: str) -> bool:
    low = name.lower()
    return any(low == s or (s.endswith((".", "_")) and low.startswith(s)) or low.startswith(s + ".")
               or low.startswith(s + "_") for s in LOCAL_SOLVERS)


def _knows(name: str) -> bool:
    return name in set(pyo.SolverFactory)


def _map_status(res) -> Status:
    from pyomo.opt import SolverStatus, TerminationCondition as TC

    tc, ok = res.solver.termination_condition, res.solver.status in (SolverStatus.ok, SolverStatus.warning)
    if tc in (TC.optimal, TC.globallyOptimal) and ok:
        return Status.OPTIMAL
    if tc == TC.infeasible and ok:
        return Status.INFEASIBLE
    if tc == TC.unbounded:
        return Status.UNBOUNDED
    if tc == TC.infeasibleOrUnbounded:
        return Status.INFEASIBLE_OR_UNBOUNDED
    if tc in (TC.maxTimeLimit, TC.maxIterations, TC.maxEvaluations, TC.intermediateNonInteger, TC.userInterrupt,
              TC.resourceInterrupt, TC.feasible, TC.locallyOptimal):
        return Status.TIME_LIMIT  # no proof; a point, if any, is still a candidate for the float64 check
    return Status.ERROR


class PyomoGenericBackend(Backend):
    """``pyomo:NAME``: the solver Pyomo's ``SolverFactory(NAME)`` gives, statuses mapped conservatively."""

    def __init__(self, pyomo_name: str):
        self.pyomo_name = pyomo_name
        self.name = f"pyomo:{pyomo_name}"

    @property
    def install_hint(self) -> str:
        if not _knows(self.pyomo_name):
            return (f"Pyomo knows no solver named {self.pyomo_name!r} (pyomo.environ.SolverFactory); check the name "
                    "(e.g. 'pyomo:glpk', 'pyomo:cplex'), or use a built-in backend ('reluverify solvers' lists them)")
        return (f"Pyomo knows {self.pyomo_name!r} but cannot find it: install it so that Pyomo finds it (its "
                "executable on PATH, or its Python package), or use a built-in backend ('reluverify solvers')")

    def probe(self) -> tuple:
        if not _knows(self.pyomo_name):
            return False, False, None
        if _is_local(self.pyomo_name):
            return False, False, (f"{self.pyomo_name!r} is a local (NLP) solver: its 'optimal' and 'infeasible' are "
                                  "no proofs for a MILP; use a MILP solver")
        try:
            available = bool(pyo.SolverFactory(self.pyomo_name).available(exception_flag=False))
        except Exception as exc:
            return False, False, f"Pyomo's interface to it fails: {type(exc).__name__}: {exc}"
        return available, False, None

    def unavailable_error(self, problem: str | None):
        if problem and _is_local(self.pyomo_name):
            return SolverNotAvailableError(f"solver {self.name!r} cannot be used: {problem}")
        return super().unavailable_error(problem)

    def solve_model(self, model, time_limit, threads, mip_gap, tee, options) -> tuple:
        _require_linear(model)  # some Pyomo solvers take nonlinear models; reluverify's answers assume a MILP
        opt = pyo.SolverFactory(self.pyomo_name)
        for key, val in (options or {}).items():
            opt.options[key] = val
        kwargs = {"load_solutions": False, "tee": tee}
        if time_limit is not None:
            kwargs["timelimit"] = float(time_limit)
        res = opt.solve(model, **kwargs)
        status = _map_status(res)
        n_solutions = len(res.solution) if hasattr(res, "solution") else 0
        has_solution = n_solutions > 0 and status not in (Status.INFEASIBLE, Status.UNBOUNDED,
                                                          Status.INFEASIBLE_OR_UNBOUNDED)
        if has_solution:
            model.solutions.load_from(res)
        if status == Status.OPTIMAL and not has_solution:
            status = Status.ERROR  # an "optimum" without its point is no answer
        objective = bound = None
        objs = list(model.component_data_objects(pyo.Objective, active=True))
        if objs:
            minimize = objs[0].sense == pyo.minimize
            lb, ub = res.problem.lower_bound, res.problem.upper_bound
            objective, bound = (ub, lb) if minimize else (lb, ub)
            objective = _finite_or_none(objective) if has_solution else None
            bound = _finite_or_none(bound) if status == Status.OPTIMAL else None
            if has_solution and objective is None:
                objective = _finite_or_none(pyo.value(objs[0]))
        return status, has_solution, objective, bound, f"{self.pyomo_name}: {res.solver.status}/{res.solver.termination_condition}"
