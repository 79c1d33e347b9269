import numpy as np
import pyomo.environ as pyo
import pytest

from reluverify import (
    Box, LicenseLimitError, Network, SolveError, SolverNotAvailableError, Status, UnknownSolverError,
    add_network, interval_bounds, solve,
)
import importlib

solve_module = importlib.import_module("reluverify.solve")  # the module, not the function

from conftest import ALL_SOLVERS

GUROBI_LIMITED_MAX_VARIABLES = solve_module.GUROBI_LIMITED_MAX_VARIABLES
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
    monkeypatch.setattr(solve_module, "cbc_executable", lambda: None)
    m, _, _ = _max_output_model([3, 4, 1], seed=0)
    with pytest.raises(SolverNotAvailableError, match=r"pip install 'reluverify\[cbc\]'"):
        solve(m, "cbc")
    with pytest.raises(SolverNotAvailableError, match="cbc"):
        require_solver("cbc")


def test_crashing_solver_is_an_error_status_not_an_exception(monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("solver process died")

    monkeypatch.setattr(solve_module, "_solve_contrib", boom)
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
