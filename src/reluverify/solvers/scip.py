"""SCIP (``pyscipopt``, the ``scip`` extra) through Pyomo's ``scip_direct`` interface.

Statuses come from SCIP's own status string, not from Pyomo's termination condition (Pyomo 6.10
maps SCIP's "gaplimit" to "convergence criteria satisfied", i.e. optimal): only "optimal" and
"infeasible" are proofs; every limit ("gaplimit", "timelimit", "nodelimit", "memlimit", ...) and a
user interrupt is a time limit that may carry an incumbent and a dual bound, anything else an error.
"""

from __future__ import annotations

from ..results import Status
from ..tolerances import MIP_INTEGRALITY_TOLERANCE, PRIMAL_FEASIBILITY_TOLERANCE
from .base import Backend, _require_linear, _time_left

# SCIP has one feasibility tolerance (numerics/feastol), for rows and integrality alike: the same
# value as the other solvers' (reluverify.tolerances). Measured with tests/test_solver_tolerances.py's
# instances (feasible MILPs of random networks, inputs pinned; pyscipopt 6.3.0 / SCIP 10.0, 2-core
# machine shared with other jobs): at 1e-9 with presolve on SCIP called 2 of the 300 HARD instances
# and 3 of 1,200 fresh ones (seeds 5000-5149) infeasible; at 1e-9 with presolve off none of the 300
# HARD and 3,200 fresh ones (seeds 5000-5399), and an output forced 1e-4, 1e-5 or 1e-6 past its
# true value stayed infeasible on all 300 HARD ones. At SCIP's default 1e-6, 14 of 100 HARD
# instances accepted a point 1e-4 past the truth. (At 1e-8 with presolve on: 0 of 3,500 false,
# but points up to 1e-6 past the truth accepted on 36 of 300.) So: 1e-9, and an "infeasible" found
# with presolve counts only when a run without presolve agrees; proof runs go without presolve
# from the start (one run; not slower on the seed network's minimal-L1 MILPs, 3 images).
SCIP_FEASIBILITY_TOLERANCE = min(MIP_INTEGRALITY_TOLERANCE, PRIMAL_FEASIBILITY_TOLERANCE)
SCIP_NO_PRESOLVE = {"presolving/maxrounds": 0}

# SCIP's status strings (SCIPgetStatus, as pyscipopt's Model.getStatus() spells them) -> Status.
# "gaplimit" is *not* optimal: the run stopped at a gap (limits/gap, or mip_gap), which may be
# larger than the proof needs; its dual bound still counts (as any time-limited run's).
SCIP_STATUS = {
    "optimal": Status.OPTIMAL,
    "infeasible": Status.INFEASIBLE,
    "unbounded": Status.UNBOUNDED,
    "inforunbd": Status.INFEASIBLE_OR_UNBOUNDED,
    "timelimit": Status.TIME_LIMIT,
    "gaplimit": Status.TIME_LIMIT,
    "nodelimit": Status.TIME_LIMIT,
    "totalnodelimit": Status.TIME_LIMIT,
    "stallnodelimit": Status.TIME_LIMIT,
    "memlimit": Status.TIME_LIMIT,
    "sollimit": Status.TIME_LIMIT,
    "bestsollimit": Status.TIME_LIMIT,
    "restartlimit": Status.TIME_LIMIT,
    "primallimit": Status.TIME_LIMIT,
    "duallimit": Status.TIME_LIMIT,
    "userinterrupt": Status.TIME_LIMIT,
    "terminate": Status.TIME_LIMIT,
}


def scip_status(raw: str) -> Status:
    """A SCIP status string as a :class:`Status` (unknown strings: ``ERROR``)."""
    return SCIP_STATUS.get(str(raw), Status.ERROR)


class ScipBackend(Backend):
    """SCIP: reluverify's tolerances as ``numerics/feastol`` (SCIP checks integrality with it too);
    statuses from SCIP's status string (:data:`SCIP_STATUS`)."""

    name = "scip"
    install_hint = "pip install 'reluverify[scip]'  (pyscipopt, which bundles SCIP)"
    module = "pyscipopt"
    contrib_name = "scip_direct"
    proof_emphasis = SCIP_NO_PRESOLVE

    def probe(self) -> tuple:
        available, limited, problem = super().probe()
        if problem and "KeyError" in problem:  # a Pyomo without the SCIP interface
            import pyomo

            problem = (f"Pyomo {pyomo.__version__} has no SCIP interface (pyomo.contrib.solver's scip_direct); "
                       "upgrade it: pip install -U pyomo")
        return available, limited, problem

    def tolerance_options(self) -> dict:
        return {"numerics/feastol": SCIP_FEASIBILITY_TOLERANCE}

    def solve_model(self, model, time_limit, threads, mip_gap, tee, options) -> tuple:
        _require_linear(model)  # SCIP would solve a nonlinear model too; reluverify's answers assume a MILP
        return super().solve_model(model, time_limit, threads, mip_gap, tee, options)

    def second_opinion(self, opt, model, config, solver_options, res, time_limit, t0) -> tuple:
        """An "infeasible" found with presolve counts only when a run without presolve agrees
        (see :data:`SCIP_FEASIBILITY_TOLERANCE`); that run's answer is the one reported."""
        no_presolve = all(solver_options.get(k) == v for k, v in SCIP_NO_PRESOLVE.items())
        if self._raw_status(opt) != "infeasible" or no_presolve:
            return res, False, "", None
        left = _time_left(time_limit, t0)
        if left is not None and left <= 0.01:
            return res, False, "", (Status.TIME_LIMIT, False, None, None,
                                    "scip status infeasible; no time left to confirm it without presolve")
        res = opt.solve(model, **{**config, "solver_options": {**solver_options, **SCIP_NO_PRESOLVE},
                                  **({} if left is None else {"time_limit": left})})
        raw = self._raw_status(opt)
        what = "confirmed" if raw == "infeasible" else f"not confirmed ({raw})"
        return res, False, f"; infeasible with presolve, {what} by a run without presolve", None

    def _raw_status(self, opt) -> str:
        model = getattr(opt, "_solver_model", None)
        return "unknown" if model is None else str(model.getStatus())

    def map_contrib_status(self, opt, res, has_solution: bool) -> Status:
        return scip_status(self._raw_status(opt))

    def contrib_message(self, opt, res) -> str:
        return f"scip status {self._raw_status(opt)}"
