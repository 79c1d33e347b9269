import numpy as np
import pyomo.environ as pyo
import pytest

from reluverify import (
    Box, LicenseLimitError, Network, SolveError, SolverNotAvailableError, Status, UnknownSolverError,
    add_network, interval_bounds, solve,
)
import importlib

solve_module = importlib.import_module("reluverify.solvers")  # the registry (reluverify.solve is the function)
base_module = importlib.import_module("reluverify.solvers.base")
cbc_module = importlib.import_module("reluverify.solvers.cbc")

from conftest import ALL_SOLVERS

GUROBI_LIMITED_MAX_VARIABLES = importlib.import_module("reluverify.solvers.gurobi").GUROBI_LIMITED_MAX_VARIABLES
_availability = solve_module._availability
require_solver = solve_module.require_solver


def _max_output_model(sizes, seed):
    net = Network.random(sizes, seed=seed)
    m = pyo.ConcreteModel()
    nb = add_network(m, net, interval_bounds(net, Box.uniform(sizes[0])))
    m.obj = pyo.Objective(expr=nb.outputs[0], sense=pyo.maximize)
    return m, nb, net


@pytest.mark.parametrize("solver", ALL_SOLVERS)
def test_statuses_optimal_and_infeasible(solver):
    m, nb, net = _max_output_model([5, 10, 8, 2], seed=3)
    res = solve(m, solver, time_limit=60)
    assert res.status == Status.OPTIMAL and res.has_solution and res.solver == solver
    assert res.wall_time > 0
    # the reported objective is a claim; the point it loaded must reproduce it
    assert abs(net.forward(nb.input_values())[0] - res.objective) < 1e-5
    assert res.bound is None or res.bound >= res.objective - 1e-6
    # now ask for an output above its proven maximum: infeasible
    m.too_high = pyo.Constraint(expr=nb.outputs[0] >= res.objective + 1.0)
    res2 = solve(m, solver, time_limit=60)
    assert res2.status == Status.INFEASIBLE and not res2.has_solution


def test_time_limit_status():
    m, nb, net = _max_output_model([40, 80, 80, 80, 1], seed=0)
    res = solve(m, "highs", time_limit=0.05)
    assert res.status == Status.TIME_LIMIT
    # whatever incumbent it has is a real point
    if res.has_solution:
        assert abs(net.forward(nb.input_values())[0] - res.objective) < 1e-5


def test_unknown_solver_and_bad_time_limit():
    m, _, _ = _max_output_model([3, 4, 1], seed=0)
    with pytest.raises(UnknownSolverError, match="choose one of highs, cbc, gurobi"):
        solve(m, "cplex")
    with pytest.raises(UnknownSolverError):
        require_solver("glpk")
    with pytest.raises(SolveError, match="time_limit must be positive"):
        solve(m, "highs", time_limit=0)


def test_missing_solver_gives_install_hint(monkeypatch):
    monkeypatch.setattr(cbc_module, "cbc_executable", lambda: None)
    m, _, _ = _max_output_model([3, 4, 1], seed=0)
    with pytest.raises(SolverNotAvailableError, match=r"pip install 'reluverify\[cbc\]'"):
        solve(m, "cbc")
    with pytest.raises(SolverNotAvailableError, match="cbc"):
        require_solver("cbc")


def test_crashing_solver_is_an_error_status_not_an_exception(monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("solver process died")

    monkeypatch.setattr(base_module, "_solve_contrib", boom)
    m, _, _ = _max_output_model([3, 4, 1], seed=0)
    res = solve(m, "highs")
    assert res.status == Status.ERROR and not res.has_solution and "died" in res.message


@pytest.mark.skipif(not _availability("gurobi")[1], reason="needs Gurobi's size-limited pip licence")
def test_gurobi_licence_limit_is_a_clear_error():
    n = GUROBI_LIMITED_MAX_VARIABLES + 100
    net = Network.from_arrays([np.ones((1, n)) / n], [np.zeros(1)], ["linear"])
    m = pyo.ConcreteModel()
    nb = add_network(m, net, interval_bounds(net, Box.uniform(n)))
    m.obj = pyo.Objective(expr=nb.outputs[0])
    with pytest.raises(LicenseLimitError, match=r"2101 variables .* use solver='highs'"):
        solve(m, "gurobi")


# --------------------------------------------------------------------------- issue #13, items 3 and 8
def test_local_infeasibility_is_not_a_proof():
    """A local solver's "locally infeasible" proves nothing: never Status.INFEASIBLE."""
    from pyomo.contrib.solver.common.results import TerminationCondition as TC

    assert base_module._map_contrib_status(TC.locallyInfeasible, False) not in (Status.INFEASIBLE,
                                                                                 Status.INFEASIBLE_OR_UNBOUNDED)
    assert base_module._map_contrib_status(TC.provenInfeasible, False) == Status.INFEASIBLE


def test_a_solver_whose_import_breaks_is_reported_broken_not_missing(tmp_path):
    """An import that raises something other than ImportError: installed but broken, with the error."""
    import subprocess
    import sys

    (tmp_path / "highspy.py").write_text("raise RuntimeError('libhighs.so: bad ELF header')\n")
    code = ("import sys; sys.path.insert(0, %r)\n"
            "import importlib; s = importlib.import_module('reluverify.solvers')\n"
            "from reluverify import SolverNotAvailableError\n"
            "assert not s.available_solvers()['highs']\n"
            "try:\n    s.require_solver('highs')\nexcept SolverNotAvailableError as e:\n    print(e)\n") % str(tmp_path)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "installed but cannot be used" in out.stdout and "bad ELF header" in out.stdout
    assert "not installed" not in out.stdout
    cli = subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, %r); from reluverify.cli import main; "
                          "sys.exit(main(['solvers']))" % str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert "broken" in cli.stdout and "bad ELF header" in cli.stdout, cli.stdout


@pytest.mark.parametrize("solver", ALL_SOLVERS)
def test_solve_leaves_the_users_model_as_it_was(solver):
    """Solve without an objective (feasibility), add your own, solve again: no leftover objective."""
    m = pyo.ConcreteModel()
    m.x = pyo.Var(bounds=(0, 1))
    m.y = pyo.Var(bounds=(0, 1), within=pyo.Binary)
    m.c = pyo.Constraint(expr=m.x + m.y <= 1.5)
    names = {c.name for c in m.component_objects()}
    assert solve(m, solver).status == Status.OPTIMAL
    assert {c.name for c in m.component_objects()} == names
    m.obj = pyo.Objective(expr=m.x + m.y, sense=pyo.maximize)
    res = solve(m, solver)
    assert res.status == Status.OPTIMAL and abs(pyo.value(m.x) + pyo.value(m.y) - 1.5) < 1e-6


@pytest.mark.parametrize("solver", ALL_SOLVERS)
def test_usage_errors_are_typed_not_statuses(solver):
    from reluverify import ModelError

    m = pyo.ConcreteModel()
    m.x = pyo.Var(bounds=(0, 1))
    m.y = pyo.Var(bounds=(0, 1))
    m.a = pyo.Objective(expr=m.x)
    m.b = pyo.Objective(expr=m.y)
    with pytest.raises(ModelError, match="2 active objectives .*deactivate"):
        solve(m, solver)
    m.b.deactivate()
    m.nl = pyo.Constraint(expr=m.x * m.y <= 0.25)
    with pytest.raises(ModelError, match="mixed-integer linear"):
        solve(m, solver)
