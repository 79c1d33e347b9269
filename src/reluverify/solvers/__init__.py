"""Solver backends behind one registry; every solver quirk lives in this package.

``solve(model, "highs" | "cbc" | "gurobi" | "scip" | "pyomo:NAME", time_limit=..., threads=...,
mip_gap=...)`` returns a :class:`~reluverify.results.SolveResult` with a status from a small fixed
set. A solution (if any) is loaded into the model's variables.

Each backend is one module (``highs.py``, ``cbc.py``, ``gurobi.py``, ``scip.py``; any other
solver Pyomo knows through ``pyomo_generic.py`` as ``"pyomo:NAME"``) with a :class:`Backend`
subclass; adding one is a new module plus a line in :data:`_BUILTIN` (or :func:`register` at run
time). See docs/solvers.md.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import pyomo.environ as pyo

from ..errors import LicenseLimitError, ModelError, SolveError, SolverNotAvailableError, UnknownSolverError
from ..results import SolveResult, Status
from .base import Backend, _finite_or_none, model_size
from .cbc import CbcBackend
from .gurobi import GurobiBackend
from .highs import HighsArrayModel, HighsBackend, highs_confirm_options, highs_polish_options  # noqa: F401
from .scip import ScipBackend

DEFAULT_SOLVER = "highs"
GENERIC_PREFIX = "pyomo:"

# the registry: name -> backend, in the order `reluverify solvers` lists them
_REGISTRY: dict = {}
_GENERIC: dict = {}  # "pyomo:NAME" backends, made on first use


class _Names(Sequence):
    """The names of the registered backends (a live, read-only view: :func:`register` adds to it)."""

    def __getitem__(self, i):
        return tuple(_REGISTRY)[i]

    def __len__(self) -> int:
        return len(_REGISTRY)

    def __eq__(self, other) -> bool:
        return tuple(self) == tuple(other) if isinstance(other, Sequence) else NotImplemented

    def __hash__(self):
        return hash(tuple(self))

    def __repr__(self) -> str:
        return repr(tuple(self))


SOLVERS = _Names()


def register(backend: Backend, *, replace: bool = False) -> Backend:
    """Add ``backend`` (a :class:`Backend` instance) under ``backend.name``; with ``replace`` an
    existing one of that name is replaced. Returns the backend."""
    if not isinstance(backend, Backend):
        raise TypeError(f"register() takes a reluverify.solvers.Backend instance, got {type(backend).__name__}")
    name = backend.name
    if not isinstance(name, str) or not name or name != name.lower() or name.startswith(GENERIC_PREFIX):
        raise ValueError(f"a backend needs a lower-case name not starting with {GENERIC_PREFIX!r}, got {name!r}")
    if name in _REGISTRY and not replace:
        raise ValueError(f"a solver backend named {name!r} is already registered (pass replace=True)")
    _REGISTRY[name] = backend
    return backend


def unregister(name: str) -> None:
    """Remove the backend ``name`` (tests register toy backends and remove them again)."""
    _REGISTRY.pop(name, None)


def _check_name(solver: str) -> str:
    """The normalised name of a known solver; :class:`UnknownSolverError` otherwise."""
    if isinstance(solver, str):
        low = solver.lower()
        if low in _REGISTRY:
            return low
        if low.startswith(GENERIC_PREFIX) and len(solver) > len(GENERIC_PREFIX):
            return GENERIC_PREFIX + solver[len(GENERIC_PREFIX):]  # Pyomo's names are case-sensitive
    raise UnknownSolverError(f"unknown solver {solver!r}; choose one of {', '.join(_REGISTRY)}, or "
                             f"'{GENERIC_PREFIX}NAME' for another solver Pyomo knows (e.g. '{GENERIC_PREFIX}glpk')")


def get_backend(name: str) -> Backend:
    """The backend of a solver name (:class:`UnknownSolverError` for an unknown one)."""
    name = _check_name(name)
    if name.startswith(GENERIC_PREFIX):
        if name not in _GENERIC:
            from .pyomo_generic import PyomoGenericBackend

            _GENERIC[name] = PyomoGenericBackend(name[len(GENERIC_PREFIX):])
        return _GENERIC[name]
    return _REGISTRY[name]


def _contrib_backend(contrib_name: str) -> Backend | None:
    """The registered backend that goes through Pyomo's contrib interface ``contrib_name``."""
    return next((b for b in _REGISTRY.values() if b.contrib_name == contrib_name), None)


def _probe(solver: str) -> tuple:
    """``(available, licence_limited, problem)`` for a solver name (see :meth:`Backend.probe`)."""
    return get_backend(solver).probe()


def _availability(solver: str):
    """``(available, licence_limited)`` for a solver name."""
    return _probe(solver)[:2]


def available_solvers() -> dict:
    """``{name: bool}`` for every registered solver."""
    return {name: _availability(name)[0] for name in SOLVERS}


def solver_problem(solver: str) -> str | None:
    """Why an installed solver cannot be used here, or ``None`` (usable, or not installed)."""
    return _probe(_check_name(solver))[2]


def _not_available(solver: str) -> SolverNotAvailableError:
    return get_backend(solver).unavailable_error(solver_problem(solver))


def require_solver(solver: str) -> str:
    """Normalise and check a solver name; raise a typed error if it cannot be used."""
    solver = _check_name(solver)
    if not _availability(solver)[0]:
        raise _not_available(solver)
    return solver


def solver_options(solver: str, big_m_value: float = 0.0) -> dict | None:
    """Extra options for MILPs whose answers are taken as proofs (the backend's
    :meth:`~Backend.careful_options`, e.g. CBC's bound propagation off, Gurobi's NumericFocus
    above :data:`~reluverify.tolerances.CAREFUL_BIG_M`); ``big_m_value`` is the model's largest big-M."""
    return get_backend(solver).careful_options(big_m_value)


def array_model(solver: str):
    """The backend's array-model class (the MILP as arrays, :class:`HighsArrayModel`'s interface),
    or ``None`` when the backend takes Pyomo models only."""
    return get_backend(solver).array_model


def lp_session(solver: str = DEFAULT_SOLVER):
    """A new LP session of ``solver`` (:class:`~reluverify.solvers.highs.HighsLpSession`'s
    interface) for LP bound tightening; :class:`~reluverify.errors.SolverNotAvailableError` when the
    backend has none."""
    backend = get_backend(_check_name(solver))
    if backend.lp_session is None:
        raise SolverNotAvailableError(f"solver {backend.name!r} offers no LP session for bound tightening; "
                                      f"use LP bounds on {DEFAULT_SOLVER!r} (the default)")
    return backend.lp_session()


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
    looser tolerance agrees, see :func:`reluverify.solvers.highs.highs_confirm_options`); ``time_limit``
    may carry an incumbent; ``emphasis="proof"`` tunes the solver for proving (infeasibility, or
    optimality of a known incumbent) rather than for finding solutions;
    ``error`` means the run gave nothing usable. Raises :class:`UnknownSolverError`,
    :class:`SolverNotAvailableError` or :class:`LicenseLimitError` before solving.
    """
    solver = _check_name(solver)
    backend = get_backend(solver)
    if time_limit is not None and not (float(time_limit) > 0):
        raise SolveError(f"time_limit must be positive (seconds), got {time_limit}")
    available, limited = _availability(solver)
    if not available:
        raise _not_available(solver)
    size = model_size(model)
    backend.check_licence(size, limited)
    if emphasis == "proof":
        options = {**backend.proof_emphasis, **(options or {})}
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
        status, has_sol, obj, bound, msg = backend.solve_model(model, time_limit, threads, mip_gap, tee, options)
    except (KeyboardInterrupt, LicenseLimitError):
        raise
    except (IncompatibleModelError, InvalidExpressionError) as exc:  # the model, not the solver
        raise ModelError(f"{solver} cannot solve this model: {exc}; reluverify's solvers take mixed-integer "
                         "linear models only (linear objective and constraints, continuous and integer variables)"
                         ) from exc
    except Exception as exc:  # a crashed or killed solver is an honest "error", never a verdict
        if backend.is_licence_failure(exc):
            raise backend.licence_error(size) from exc
        return SolveResult(Status.ERROR, solver, time.perf_counter() - t0, message=f"{type(exc).__name__}: {exc}",
                           size=size)
    finally:
        if feasibility is not None:
            model.del_component(feasibility)
    wall = time.perf_counter() - t0
    return SolveResult(status, solver, wall, has_sol, _finite_or_none(obj), _finite_or_none(bound), msg, size)


# the built-in backends, one line each (a new backend: its module, and a line here)
_BUILTIN = (HighsBackend(), CbcBackend(), GurobiBackend(), ScipBackend())
for _backend in _BUILTIN:
    register(_backend)
del _backend


def __getattr__(name: str):
    # views over the registry, computed when asked (a registered backend shows up in them)
    if name == "PROOF_EMPHASIS":
        return {n: dict(b.proof_emphasis) for n, b in _REGISTRY.items()}
    if name == "INSTALL_HINTS":
        return {n: b.install_hint for n, b in _REGISTRY.items()}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Backend", "DEFAULT_SOLVER", "HighsArrayModel", "SOLVERS", "array_model", "available_solvers", "get_backend",
    "model_size", "register", "require_solver", "solve", "solver_options", "solver_problem", "unregister",
]
