"""What every solver backend has: the :class:`Backend` base class and the Pyomo plumbing they share.

A backend owns everything about one solver: its name and install hint, how to tell whether it is
installed (and whether its licence limits the model size), the option names that set
reluverify's tolerances (:mod:`reluverify.tolerances`), the options for proof runs
(``emphasis="proof"``) and for models with large big-M constants, how its statuses map to
:class:`~reluverify.results.Status`, and how a Pyomo model is handed to it. Nothing outside
``reluverify.solvers`` names a solver; the rest of the library asks the backend.
"""

from __future__ import annotations

import importlib
import time

import pyomo.environ as pyo

from ..errors import LicenseLimitError, SolverNotAvailableError
from ..results import Status
from ..tolerances import MIP_INTEGRALITY_TOLERANCE, PRIMAL_FEASIBILITY_TOLERANCE


class Backend:
    """One solver. Subclasses set the class attributes and implement :meth:`solve_model`.

    * ``name``: what users pass as ``solver=``; ``install_hint``: what to run when it is missing;
    * ``module``: the Python module whose import tells whether it is installed (``None``: override
      :meth:`probe`); ``contrib_name``: its name in Pyomo's ``pyomo.contrib.solver`` factory, if
      the backend goes through that interface (:func:`_solve_contrib`);
    * ``proof_emphasis``: options for MILPs whose job is a proof (of infeasibility, or of the
      optimality of an incumbent already held); ``{}`` when the defaults are right;
    * ``array_model``: a class with :class:`reluverify.solvers.highs.HighsArrayModel`'s interface
      that takes the MILP as arrays (:class:`reluverify.formulation.MilpArrays`), or ``None``:
      problems then hand the backend a Pyomo model;
    * ``lp_session``: a class with :class:`reluverify.solvers.highs.HighsLpSession`'s interface (a
      growing LP whose optimum's row duals certify bounds), or ``None``: LP bound tightening
      (:class:`reluverify.bounds.lp.LPBounds`) then cannot use this backend;
    * ``max_licensed_size``: ``(variables, constraints)`` a size-limited licence allows (checked
      before solving when :meth:`probe` says the licence is limited), or ``None``.
    """

    name: str = ""
    install_hint: str = ""
    module: str | None = None
    contrib_name: str | None = None
    proof_emphasis: dict = {}
    array_model = None
    lp_session = None
    max_licensed_size: tuple | None = None
    persistent: bool = False  # the Pyomo interface instance is kept on the model between solves

    # ---------------------------------------------------------------- availability
    def probe(self) -> tuple:
        """``(available, licence_limited, problem)``; ``problem`` says why an installed solver
        cannot be used (its import fails with something other than ImportError, or Pyomo finds it
        unusable, e.g. without a licence), ``None`` when it is usable or not installed."""
        try:
            importlib.import_module(self.module)
        except ImportError:
            return False, False, None  # not installed
        except Exception as exc:  # installed, but broken: say so, with the error
            return False, False, f"importing {self.module} fails: {type(exc).__name__}: {exc}"
        if self.contrib_name is None:
            return True, False, None
        try:
            avail = _contrib(self.contrib_name).available()
        except Exception as exc:
            return False, False, f"Pyomo's interface to it fails: {type(exc).__name__}: {exc}"
        if not avail:
            return False, False, f"Pyomo reports it unusable ({avail})"
        return True, self.licence_limited(avail), None

    def unavailable_error(self, problem: str | None) -> SolverNotAvailableError:
        """The error for a solver that cannot be used: not installed, or ``problem``."""
        if problem:
            return SolverNotAvailableError(f"solver {self.name!r} is installed but cannot be used: {problem}; "
                                           f"reinstall it ({self.install_hint}) or pick another solver")
        return SolverNotAvailableError(f"solver {self.name!r} is not installed; {self.install_hint}")

    def licence_limited(self, availability) -> bool:
        """Whether Pyomo's availability answer means a size-limited licence."""
        return False

    # ---------------------------------------------------------------- options
    def tolerance_options(self) -> dict:
        """reluverify's integrality and primal feasibility tolerances in this solver's option names."""
        return {}

    def default_options(self) -> dict:
        """Options set on every solve (``options`` and proof emphasis override them)."""
        return self.tolerance_options()

    def careful_options(self, big_m_value: float = 0.0) -> dict | None:
        """Extra options for MILPs whose answers are taken as proofs, given the model's largest
        big-M constant (:data:`~reluverify.tolerances.CAREFUL_BIG_M`); ``None`` for none."""
        return None

    # ---------------------------------------------------------------- licence
    def check_licence(self, size: dict, limited: bool) -> None:
        """Raise :class:`LicenseLimitError` before solving a model too large for the licence."""
        if limited and self.max_licensed_size is not None:
            max_vars, max_cons = self.max_licensed_size
            if size["variables"] > max_vars or size["constraints"] > max_cons:
                raise self.licence_error(size)

    def licence_error(self, size: dict) -> LicenseLimitError:
        max_vars, max_cons = self.max_licensed_size or ("?", "?")
        return LicenseLimitError(
            f"this model has {size['variables']} variables and {size['constraints']} constraints, more than "
            f"{self.name}'s size-limited licence allows ({max_vars} variables, {max_cons} constraints); use "
            "solver='highs' (or another solver), or install a full licence")

    def is_licence_failure(self, exc: Exception) -> bool:
        """Whether an exception raised while solving is the licence refusing the model's size."""
        return False

    # ---------------------------------------------------------------- solving
    def solve_model(self, model, time_limit, threads, mip_gap, tee, options) -> tuple:
        """Solve a Pyomo model with one active objective. ``options``: the caller's options with
        the proof emphasis merged in (the backend puts its :meth:`default_options` under them). Returns ``(status, has_solution, objective, bound,
        message)`` and loads the solution (if any) into the model's variables."""
        if self.contrib_name is None:
            raise NotImplementedError(f"{type(self).__name__} must implement solve_model")
        return _solve_contrib(model, self.contrib_name, time_limit, threads, mip_gap, tee, options, backend=self)

    def contrib_options(self, options, time_limit) -> dict:
        """The ``solver_options`` of a run through Pyomo's contrib interface."""
        return {**self.default_options(), **dict(options or {})}

    def map_contrib_status(self, opt, res, has_solution: bool) -> Status:
        """The status of a run through Pyomo's contrib interface (``opt`` the interface, ``res``
        its results); by default from Pyomo's termination condition (:func:`_map_contrib_status`)."""
        return _map_contrib_status(res.termination_condition, has_solution)

    def contrib_message(self, opt, res) -> str:
        return str(res.termination_condition)

    def second_opinion(self, opt, model, config, solver_options, res, time_limit, t0) -> tuple:
        """A hook after the first run through Pyomo's contrib interface: ``(res, loaded, note,
        final)``, where ``final`` (a result tuple, or ``None``) ends the solve at once. By default
        the first run stands."""
        return res, False, "", None


# ---------------------------------------------------------------------------------------------
# shared helpers


def model_size(model) -> dict:
    """Free (unfixed) variables, binaries and active constraints of a Pyomo model."""
    n_vars = n_bin = 0
    for v in model.component_data_objects(pyo.Var, descend_into=True):
        if not v.fixed:
            n_vars += 1
            n_bin += v.is_binary()
    n_cons = sum(1 for _ in model.component_data_objects(pyo.Constraint, active=True, descend_into=True))
    return {"variables": n_vars, "binaries": n_bin, "constraints": n_cons}


def _finite_or_none(v):
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return v if abs(v) < float("inf") else None


def _time_left(time_limit, t0) -> float | None:
    return None if time_limit is None else float(time_limit) - (time.perf_counter() - t0)


def _contrib(name: str):
    from pyomo.contrib.solver.common.factory import SolverFactory

    return SolverFactory._cls[name]()


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


def _solver_instance(model, name, persistent: bool | None = None):
    """The Pyomo contrib interface ``name`` for ``model``. A persistent one (HiGHS's) is kept on
    the model, so that a re-solve after a small change (another goal row, another objective) only
    sends the change. Measured on the seed network's L-inf verification MILPs: 0.012 s per re-solve
    instead of 0.15 s for a fresh hand-off. ``persistent=None``: as the backend of that interface says."""
    if persistent is None:
        from . import _contrib_backend

        owner = _contrib_backend(name)
        persistent = owner is not None and owner.persistent
    if not persistent:
        return _contrib(name)
    cache = model.__dict__.setdefault("_reluverify_solvers", {})
    if name not in cache:
        cache[name] = _contrib(name)
    return cache[name]


def _require_linear(model) -> None:
    """Refuse a model with a nonlinear constraint or objective (for solvers that would accept one:
    reluverify's backends are MILP backends). Raises Pyomo's ``IncompatibleModelError``, which
    :func:`reluverify.solvers.solve` turns into :class:`~reluverify.errors.ModelError`."""
    from pyomo.contrib.solver.common.util import IncompatibleModelError

    for comp in (pyo.Constraint, pyo.Objective):
        for c in model.component_data_objects(comp, active=True, descend_into=True):
            degree = (c.body if comp is pyo.Constraint else c.expr).polynomial_degree()
            if degree is None or degree > 1:
                raise IncompatibleModelError(f"{c.name} is not linear")


def _found(r) -> bool:
    from pyomo.contrib.solver.common.results import SolutionStatus

    return r.solution_status in (SolutionStatus.feasible, SolutionStatus.optimal)


def _solve_contrib(model, name, time_limit, threads, mip_gap, tee, options, *, backend):
    """One solve of ``model`` through Pyomo's contrib interface ``name`` for ``backend`` (its
    options, status mapping and second opinion). Returns ``(status, has_solution, objective,
    bound, message)``; every solve through that interface passes here (fault-injection tests
    patch this function)."""
    opt = _solver_instance(model, name, backend.persistent)
    solver_options = backend.contrib_options(options, time_limit)
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

    t0 = time.perf_counter()
    res = opt.solve(model, **config)
    res, loaded, note, final = backend.second_opinion(opt, model, config, solver_options, res, time_limit, t0)
    if final is not None:
        return final
    has_solution = _found(res)
    if has_solution and not loaded:
        res.solution_loader.load_vars()
    status = backend.map_contrib_status(opt, res, has_solution)
    if status == Status.OPTIMAL and not has_solution and model_size(model)["variables"] > 0:
        status = Status.ERROR
    return status, has_solution, res.incumbent_objective, res.objective_bound, backend.contrib_message(opt, res) + note


def _default_tolerances(integrality: str, feasibility: str) -> dict:
    return {integrality: MIP_INTEGRALITY_TOLERANCE, feasibility: PRIMAL_FEASIBILITY_TOLERANCE}
