"""The solver registry (issue #14, the third extension point): a backend is one module plus a
registry line; SCIP and the generic Pyomo backend; statuses that are never proofs."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import numpy as np
import pyomo.environ as pyo
import pytest

import reluverify as rv
from reluverify.errors import SolverNotAvailableError, UnknownSolverError
from reluverify.results import Status, Verdict
from reluverify.solvers import Backend, available_solvers, get_backend, register, require_solver, unregister
from reluverify.tolerances import MIP_INTEGRALITY_TOLERANCE, PRIMAL_FEASIBILITY_TOLERANCE

SRC = Path(__file__).resolve().parents[1] / "src" / "reluverify"
HAS_SCIP = available_solvers().get("scip", False)


class ToyBackend(Backend):
    """HiGHS under another name, through Pyomo's contrib interface: all a backend needs to say."""

    name = "toy"
    install_hint = "the toy backend is defined in tests/test_solver_backends.py"
    module = "highspy"
    contrib_name = "highs"

    def __init__(self):
        self.calls = 0

    def tolerance_options(self) -> dict:
        return {"mip_feasibility_tolerance": MIP_INTEGRALITY_TOLERANCE,
                "primal_feasibility_tolerance": PRIMAL_FEASIBILITY_TOLERANCE}

    def contrib_options(self, options, time_limit) -> dict:
        opts = super().contrib_options(options, time_limit)
        opts.setdefault("presolve", "off")  # a different setting than the highs backend's
        return opts

    def solve_model(self, model, time_limit, threads, mip_gap, tee, options) -> tuple:
        self.calls += 1
        return super().solve_model(model, time_limit, threads, mip_gap, tee, options)


@pytest.fixture
def toy():
    backend = register(ToyBackend())
    try:
        yield backend
    finally:
        unregister("toy")


def _max_output_model(sizes, seed):
    net = rv.Network.random(sizes, seed=seed)
    m = pyo.ConcreteModel()
    nb = rv.add_network(m, net, rv.interval_bounds(net, rv.Box.uniform(sizes[0])))
    m.obj = pyo.Objective(expr=nb.outputs[0], sense=pyo.maximize)
    return m, nb, net


# --------------------------------------------------------------------------- the extension point
def test_a_registered_backend_solves_through_rv_solve(toy):
    assert "toy" in rv.SOLVERS and available_solvers()["toy"] and require_solver("TOY") == "toy"
    m, nb, net = _max_output_model([5, 10, 8, 2], seed=3)
    res = rv.solve(m, solver="toy", time_limit=60)
    assert res.status == Status.OPTIMAL and res.solver == "toy" and toy.calls == 1
    assert abs(net.forward(nb.input_values())[0] - res.objective) < 1e-5
    ref = rv.solve(m, "highs", time_limit=60)
    assert abs(ref.objective - res.objective) < 1e-6
    m.too_high = pyo.Constraint(expr=nb.outputs[0] >= res.objective + 1.0)
    assert rv.solve(m, "toy", time_limit=60).status == Status.INFEASIBLE


def test_a_registered_backend_answers_a_public_question(toy):
    """verify_robustness on the toy backend: the MILP runs there and gives HiGHS's verdict (an L1
    ball: not a box, so no branching or splitting decides it before the MILP)."""
    from reluverify.problems import minimal_distortion, verify_robustness

    net = rv.Network.random([20, 12, 8, 3], seed=101)  # 20 inputs: more than input splitting takes
    x = np.random.default_rng(1).random(20)
    md = minimal_distortion(net, x, "l1", solver="highs", time_limit=60)
    assert md.verdict == Verdict.FOUND and md.lower_bound > 0.02, md.summary()
    eps = 0.9 * md.lower_bound  # robust, and close enough to the boundary that bounds alone do not say so
    ref = verify_robustness(net, x, eps, "l1", solver="highs", attack=False, time_limit=60)
    res = verify_robustness(net, x, eps, "l1", solver="toy", attack=False, time_limit=60)
    assert ref.verdict == Verdict.ROBUST and res.verdict == Verdict.ROBUST, (ref.summary(), res.summary())
    assert toy.calls > 0  # the proof came from the toy backend's MILPs
    bad = verify_robustness(net, x, 1.5 * md.distance, "l1", solver="toy", attack=False, time_limit=60)
    assert bad.verdict == Verdict.NOT_ROBUST


def test_register_refuses_what_is_not_a_backend_or_a_taken_name(toy):
    with pytest.raises(ValueError, match="already registered"):
        register(ToyBackend())
    with pytest.raises(TypeError, match="Backend instance"):
        register(object())
    bad = ToyBackend()
    bad.name = "pyomo:x"
    with pytest.raises(ValueError, match="lower-case name"):
        register(bad)
    unregister("toy")
    assert "toy" not in rv.SOLVERS
    with pytest.raises(UnknownSolverError, match="unknown solver 'toy'"):
        rv.solve(pyo.ConcreteModel(), "toy")


def test_the_module_reluverify_solve_is_gone_and_not_shadowed():
    assert callable(rv.solve) and rv.solvers is importlib.import_module("reluverify.solvers")
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("reluverify.solve")


def test_nothing_outside_solvers_compares_with_a_solver_name():
    """One place for solver quirks: no ``solver == "highs"`` (or a backend's module) elsewhere."""
    names = "|".join(re.escape(n) for n in ("highs", "cbc", "gurobi", "scip", "gurobi_direct", "scip_direct"))
    pattern = re.compile(rf"""(==|!=)\s*["']({names})["']|["']({names})["']\s*(==|!=)|\bin\s*\(\s*["']({names})["']""")
    imports = re.compile(r"^\s*(import|from)\s+(gurobipy|pyscipopt|cbcbox|highspy)\b", re.M)
    offenders = []
    for path in SRC.rglob("*.py"):
        if "solvers" in path.relative_to(SRC).parts:
            continue
        text = path.read_text()
        offenders += [f"{path.relative_to(SRC)}: {m.group(0)}" for m in pattern.finditer(text)]
        offenders += [f"{path.relative_to(SRC)}: {m.group(0).strip()}" for m in imports.finditer(text)]
    assert not offenders, offenders


def test_lp_bounds_run_on_the_backends_lp_session(toy):
    """LP tightening asks the registry for an LP session: a backend without one is a typed error
    naming it, and the default backend's session gives bounds at least as tight as symbolic ones."""
    from reluverify.bounds import LPBounds, compute_bounds
    from reluverify.solvers import lp_session

    net = rv.Network.random([6, 12, 12, 3], seed=4)
    box = rv.Box.uniform(6, -1.0, 1.0)
    with pytest.raises(SolverNotAvailableError, match="toy"):
        lp_session("toy")
    with pytest.raises(SolverNotAvailableError, match="toy"):
        compute_bounds(net, box, LPBounds(solver="toy"))
    sym = compute_bounds(net, box, "symbolic")
    lp = compute_bounds(net, box, LPBounds(solver="highs"))
    rng = np.random.default_rng(0)
    assert lp.contains(rng.uniform(-1, 1, (500, 6)))
    for k in range(len(net.layers)):
        assert np.all(lp.lower[k] >= sym.lower[k] - 1e-12) and np.all(lp.upper[k] <= sym.upper[k] + 1e-12)
    assert sum(float(np.sum(u - l)) for l, u in zip(lp.lower, lp.upper)) < \
        sum(float(np.sum(u - l)) for l, u in zip(sym.lower, sym.upper))


def test_lp_bounds_still_tighten_after_a_highs_run_on_two_threads():
    """HiGHS's process-wide scheduler keeps the thread count of the run that started it and refuses
    runs asking for another: LP tightening (one thread) after a two-thread MILP must still tighten
    (it once silently kept the symbolic bounds)."""
    import highspy

    from reluverify.bounds import LPBounds, compute_bounds

    highspy.Highs.resetGlobalScheduler(True)
    net = rv.Network.random([6, 12, 12, 3], seed=4)
    box = rv.Box.uniform(6, -1.0, 1.0)
    from reluverify.engine.milp import NetworkMilp

    milp = NetworkMilp(net, compute_bounds(net, box, "symbolic"), "highs", threads=2)
    milp.model.set_objective({int(milp.arrays.output_cols[0]): 1.0}, "max")
    assert milp.solve(10)[0].status == Status.OPTIMAL
    sym = compute_bounds(net, box, "symbolic")
    lp = compute_bounds(net, box, LPBounds())
    assert sum(float(np.sum(u - l)) for l, u in zip(lp.lower, lp.upper)) < \
        sum(float(np.sum(u - l)) for l, u in zip(sym.lower, sym.upper))


def test_lp_session_time_limit_is_per_lp():
    """HiGHS counts an LP's time_limit from the instance's creation: each LP of a session must
    still get its own limit (60 LPs of ~30 ms, 0.5 s each: all solved, not only the first dozen)."""
    from reluverify.solvers import lp_session

    rng = np.random.default_rng(0)
    n, m = 300, 200
    s = lp_session()
    s.add_columns(np.zeros(n), np.ones(n))
    A = rng.normal(size=(m, n))
    nz_r, nz_c = np.nonzero(A)
    s.add_rows(np.full(m, -np.inf), np.full(m, 5.0), np.searchsorted(nz_r, np.arange(m)), nz_c, A[nz_r, nz_c])
    solved = sum(s.maximise(rng.normal(size=n), 0.5) is not None for _ in range(60))
    assert solved == 60


# --------------------------------------------------------------------------- SCIP
def test_scip_statuses_are_proofs_only_when_scip_proved():
    from reluverify.solvers.scip import scip_status

    assert scip_status("optimal") == Status.OPTIMAL and scip_status("infeasible") == Status.INFEASIBLE
    for raw in ("gaplimit", "timelimit", "nodelimit", "memlimit", "userinterrupt", "sollimit", "terminate"):
        assert scip_status(raw) == Status.TIME_LIMIT, raw  # limits: maybe a point and a bound, no proof
    for raw in ("unknown", "something new"):
        assert scip_status(raw) == Status.ERROR
    assert scip_status("inforunbd") == Status.INFEASIBLE_OR_UNBOUNDED


@pytest.mark.skipif(not HAS_SCIP, reason="scip not installed")
def test_scip_gap_limit_is_not_optimal():
    m, nb, net = _max_output_model([5, 10, 8, 2], seed=3)
    loose = rv.solve(m, "scip", mip_gap=0.9, time_limit=60)
    # SCIP stops at its gap limit; Pyomo would call that optimal, reluverify does not
    assert loose.message == "scip status gaplimit" and loose.status == Status.TIME_LIMIT and loose.bound is not None
    exact = rv.solve(m, "scip", time_limit=60)
    assert exact.status == Status.OPTIMAL and exact.message == "scip status optimal"
    assert abs(net.forward(nb.input_values())[0] - exact.objective) < 1e-6


@pytest.mark.skipif(not HAS_SCIP, reason="scip not installed")
def test_scip_runs_at_the_measured_tolerance():
    from reluverify.solvers.scip import SCIP_FEASIBILITY_TOLERANCE

    assert get_backend("scip").default_options()["numerics/feastol"] == SCIP_FEASIBILITY_TOLERANCE


def test_scip_missing_is_a_typed_error_with_the_extra(monkeypatch):
    solvers = importlib.import_module("reluverify.solvers")
    monkeypatch.setattr(solvers, "_availability", lambda s: (False, False) if s == "scip" else (True, False))
    monkeypatch.setattr(get_backend("scip"), "probe", lambda: (False, False, None))
    with pytest.raises(SolverNotAvailableError, match=r"pip install 'reluverify\[scip\]'"):
        rv.solve(_max_output_model([3, 4, 1], seed=0)[0], "scip")


# --------------------------------------------------------------------------- any Pyomo solver by name
def test_generic_names_and_errors():
    with pytest.raises(UnknownSolverError, match="pyomo:NAME"):
        require_solver("pyomo:")
    with pytest.raises(SolverNotAvailableError, match="Pyomo knows no solver named 'no_such_solver'"):
        require_solver("pyomo:no_such_solver")
    with pytest.raises(SolverNotAvailableError, match="local .*no proofs"):
        require_solver("pyomo:ipopt")
    if not get_backend("pyomo:glpk").probe()[0]:
        with pytest.raises(SolverNotAvailableError, match="Pyomo knows 'glpk' but cannot find it"):
            rv.solve(_max_output_model([3, 4, 1], seed=0)[0], "pyomo:glpk")


def test_generic_statuses_are_conservative():
    from pyomo.opt import SolverResults, SolverStatus, TerminationCondition as TC

    from reluverify.solvers.pyomo_generic import _map_status

    def results(status, tc):
        r = SolverResults()
        r.solver.status, r.solver.termination_condition = status, tc
        return r

    assert _map_status(results(SolverStatus.ok, TC.optimal)) == Status.OPTIMAL
    assert _map_status(results(SolverStatus.warning, TC.infeasible)) == Status.INFEASIBLE
    assert _map_status(results(SolverStatus.error, TC.infeasible)) == Status.ERROR  # a failed run proves nothing
    assert _map_status(results(SolverStatus.aborted, TC.optimal)) == Status.ERROR
    for tc in (TC.locallyOptimal, TC.userInterrupt, TC.maxTimeLimit, TC.feasible, TC.intermediateNonInteger):
        assert _map_status(results(SolverStatus.ok, tc)) == Status.TIME_LIMIT, tc
    for tc in (TC.unknown, TC.error, TC.other, TC.solverFailure, TC.invalidProblem):
        assert _map_status(results(SolverStatus.ok, tc)) == Status.ERROR, tc


@pytest.mark.skipif(not get_backend("pyomo:appsi_highs").probe()[0], reason="Pyomo's appsi_highs not usable")
def test_generic_backend_solves_a_network_milp():
    m, nb, net = _max_output_model([5, 10, 8, 2], seed=3)
    res = rv.solve(m, "pyomo:appsi_highs", time_limit=60)
    assert res.status == Status.OPTIMAL and res.solver == "pyomo:appsi_highs"
    assert abs(net.forward(nb.input_values())[0] - res.objective) < 1e-5
    assert abs(rv.solve(m, "highs").objective - res.objective) < 1e-6
    m.too_high = pyo.Constraint(expr=nb.outputs[0] >= res.objective + 1.0)
    assert rv.solve(m, "pyomo:appsi_highs").status != Status.OPTIMAL


def test_the_worked_example_in_docs_solvers_md_works():
    """docs/solvers.md, "Adding a backend": its module, as written (imports made absolute), registers
    and solves."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "solvers.md").read_text()
    section = text.split("### Adding a backend", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert "class ToyBackend(Backend)" in code and "registry line" in section
    code = code.replace("from ..tolerances", "from reluverify.tolerances").replace("from .base", "from reluverify.solvers.base")
    namespace: dict = {}
    exec(compile(code, "docs/solvers.md", "exec"), namespace)
    register(namespace["ToyBackend"]())
    try:
        m, nb, net = _max_output_model([4, 6, 2], seed=1)
        res = rv.solve(m, "toy", time_limit=60)
        assert res.status == Status.OPTIMAL and abs(res.objective - rv.solve(m, "highs").objective) < 1e-6
    finally:
        unregister("toy")
