"""The array form of the big-M MILP (network_arrays) and its HiGHS hand-off (HighsArrayModel):
the same model as the Pyomo block, the same answers, the same statuses."""

import numpy as np
import pyomo.environ as pyo
import pytest

from reluverify import Box, Network, SolveError, add_network, compute_bounds, interval_bounds, solve
from reluverify.bounds import INACTIVE, UNSTABLE
from reluverify.formulation import MilpArrays, network_arrays
from reluverify.results import Status
from reluverify.solvers import HighsArrayModel
from reluverify.zoo import seed_mlp


def _all_inactive_hidden():
    """Layer 0 is dead over [0,1]^3 (so layer 1 reads no variable at all); last layer ReLU."""
    rng = np.random.default_rng(7)
    W0 = np.abs(rng.normal(size=(4, 3)))
    return Network.from_arrays(
        [-W0, rng.normal(size=(5, 4)), rng.normal(size=(2, 5))],
        [np.full(4, -0.5), rng.normal(size=5), np.array([0.3, -50.0])],
        ["relu", "relu", "relu"],
    )


def _linear_hidden_relu_last():
    rng = np.random.default_rng(3)
    return Network.from_arrays(
        [rng.normal(size=(6, 4)), rng.normal(size=(5, 6)), rng.normal(size=(3, 5))],
        [rng.normal(size=6), rng.normal(size=5), np.array([0.1, -30.0, 0.2])],
        ["relu", "linear", "relu"],
    )


def _cases():
    for seed in range(4):
        sizes = [5, 9, 7, 3] if seed % 2 else [4, 8, 6, 6, 2]
        net = Network.random(sizes, seed=seed)
        yield f"random{seed}-box", net, interval_bounds(net, Box.uniform(sizes[0]))
        ball = Box.linf_ball(np.full(sizes[0], 0.5), 0.1, Box.uniform(sizes[0]))
        yield f"random{seed}-ball", net, interval_bounds(net, ball)
    for name, net in (("dead-layer", _all_inactive_hidden()), ("linear-hidden", _linear_hidden_relu_last())):
        yield name, net, interval_bounds(net, Box.uniform(net.n_inputs))


CASES = list(_cases())


@pytest.fixture(scope="module")
def seed_box():
    net = seed_mlp()
    return net, compute_bounds(net, Box.uniform(784), "symbolic")


def _pyomo_rows(nb, arrays: MilpArrays):
    """The block's constraints as sorted (column, coefficient) tuples with row bounds, in the
    arrays' column numbering."""
    col = {id(v): int(c) for v, c in zip(nb.inputs, arrays.input_cols)}
    for k, outs in enumerate(nb.layer_outputs):
        col.update({id(v): int(arrays.layer_cols[k][j]) for j, v in enumerate(outs) if v is not None})
        z = nb.block.component(f"z{k}")
        col.update({id(z[j]): int(arrays.binary_cols[k][j]) for j in z})
    rows = []
    for con in nb.block.component_data_objects(pyo.Constraint, active=True):
        body = con.body
        terms = tuple(sorted((col[id(v)], float(c)) for v, c in zip(body.linear_vars, body.linear_coefs)))
        const = float(body.constant)
        lo = -np.inf if con.lower is None else pyo.value(con.lower) - const
        hi = np.inf if con.upper is None else pyo.value(con.upper) - const
        rows.append((terms, lo, hi))
    return sorted(rows)


def _array_rows(a: MilpArrays):
    rows = []
    for r in range(a.n_rows):
        s, e = a.a_start[r], a.a_start[r + 1]
        terms = tuple(sorted(zip(a.a_index[s:e].tolist(), a.a_value[s:e].tolist())))
        rows.append((terms, float(a.row_lower[r]), float(a.row_upper[r])))
    return sorted(rows)


@pytest.mark.parametrize("name,net,bounds", CASES, ids=[c[0] for c in CASES])
def test_same_model_as_pyomo_block(name, net, bounds):
    a = network_arrays(net, bounds)
    m = pyo.ConcreteModel()
    nb = add_network(m, net, bounds)
    assert a.size() == nb.size()
    assert a.n_binaries == bounds.n_unstable
    # same columns: bounds and integrality of every variable
    for v, c in zip(nb.inputs, a.input_cols):
        assert (v.lb, v.ub) == (a.col_lower[c], a.col_upper[c]) and not a.integrality[c]
    for k, outs in enumerate(nb.layer_outputs):
        phase = bounds.phases(k)
        for j, v in enumerate(outs):
            c = a.layer_cols[k][j]
            if v is None:
                assert c == -1 and phase[j] == INACTIVE
            else:
                assert (v.lb, v.ub) == (a.col_lower[c], a.col_upper[c]) and not a.integrality[c]
        assert np.array_equal(a.binary_cols[k] >= 0, phase == UNSTABLE)
        assert np.all(a.integrality[a.binary_cols[k][a.binary_cols[k] >= 0]])
    assert np.array_equal(a.output_cols, a.layer_cols[-1]) and np.all(a.output_cols >= 0)
    # same rows, term for term
    assert _pyomo_rows(nb, a) == _array_rows(a)
    assert a.a_start.dtype == np.int32 and a.a_index.dtype == np.int32 and a.a_value.dtype == np.float64
    assert a.a_start[-1] == a.nnz


def test_seed_network_sizes_match(seed_box):
    net, bounds = seed_box
    a = network_arrays(net, bounds)
    m = pyo.ConcreteModel()
    nb = add_network(m, net, bounds)
    assert a.size() == nb.size()
    assert a.n_binaries == bounds.n_unstable > 0


def _check_inference(net, bounds, points, layers=True):
    a = network_arrays(net, bounds)
    hm = HighsArrayModel(a)
    for x in points:
        hm.set_col_bounds(a.input_cols, x, x)
        res, values = hm.solve()
        assert res.status == Status.OPTIMAL, res
        _, pre = net.forward(x, return_all=True)
        ref = net.forward(x)
        assert np.max(np.abs(values[a.output_cols] - ref)) <= 1e-6
        if layers:
            for k, cols in enumerate(a.layer_cols[:-1]):
                post = np.maximum(pre[k], 0.0) if net.layers[k].activation == "relu" else pre[k]
                got = np.where(cols >= 0, values[np.maximum(cols, 0)], 0.0)
                assert np.max(np.abs(got - post)) <= 1e-6


@pytest.mark.parametrize("name,net,bounds", CASES, ids=[c[0] for c in CASES])
def test_inference_matches_forward(name, net, bounds):
    # interior points: HiGHS 1.16's presolve with reluverify's 1e-9 tolerances has declared a
    # feasible corner (random0-box, x = 0) infeasible, on the Pyomo path as well
    lo, hi = bounds.domain.lower, bounds.domain.upper
    points = lo + np.random.default_rng(1).uniform(0.01, 0.99, size=(25, lo.size)) * (hi - lo)
    _check_inference(net, bounds, points)


def test_inference_matches_forward_seed_network(seed_box):
    net, bounds = seed_box
    from reluverify.datasets import load_mnist

    xs = load_mnist().x_test[:4].reshape(4, -1)
    rng = np.random.default_rng(0)
    _check_inference(net, bounds, np.vstack([xs, rng.random((2, 784))]))


def _pyomo_optimum(net, bounds, c, sense):
    m = pyo.ConcreteModel()
    nb = add_network(m, net, bounds)
    m.obj = pyo.Objective(expr=sum(float(ci) * v for ci, v in zip(c, nb.outputs)), sense=sense)
    res = solve(m, "highs", mip_gap=0.0)
    assert res.status == Status.OPTIMAL
    return res.objective


def _close(a, b):
    return abs(a - b) <= 1e-6 * max(1.0, abs(a), abs(b))


@pytest.mark.parametrize("name,net,bounds", CASES[:6] + CASES[-2:], ids=[c[0] for c in CASES[:6] + CASES[-2:]])
def test_optimum_matches_pyomo_path(name, net, bounds):
    a = network_arrays(net, bounds)
    hm = HighsArrayModel(a, options={"mip_rel_gap": 0.0})
    rng = np.random.default_rng(5)
    for _ in range(2):
        c = rng.normal(size=net.n_outputs)
        for sense, pyo_sense in (("min", pyo.minimize), ("max", pyo.maximize)):
            hm.set_objective({int(col): float(ci) for col, ci in zip(a.output_cols, c)}, sense)
            res, values = hm.solve()
            assert res.status == Status.OPTIMAL and res.has_solution
            assert _close(res.objective, _pyomo_optimum(net, bounds, c, pyo_sense))
            # the reported objective is that of the solver's point, which the network reproduces
            x = values[a.input_cols]
            assert bounds.domain.contains(x, atol=1e-9)
            assert abs(float(c @ net.forward(x)) - res.objective) <= 1e-5 * max(1.0, abs(res.objective))


def test_optimum_matches_pyomo_path_seed_network():
    net = seed_mlp()
    from reluverify.datasets import load_mnist

    x0 = load_mnist().x_test[0].ravel()
    bounds = compute_bounds(net, Box.linf_ball(x0, 0.01, Box.uniform(784)), "symbolic")
    a = network_arrays(net, bounds)
    assert a.n_binaries > 0
    c = np.zeros(net.n_outputs)
    c[[0, 1]] = [1.0, -1.0]
    hm = HighsArrayModel(a, emphasis="proof", options={"mip_rel_gap": 0.0})
    dense = np.zeros(a.n_cols)
    dense[a.output_cols] = c
    for sense, pyo_sense in (("max", pyo.maximize), ("min", pyo.minimize)):
        hm.set_objective(dense, sense)
        res, _ = hm.solve(time_limit=60)
        assert res.status == Status.OPTIMAL
        assert _close(res.objective, _pyomo_optimum(net, bounds, c, pyo_sense))


def test_infeasible_row_gives_infeasible():
    net = Network.random([4, 8, 3], seed=2)
    bounds = interval_bounds(net, Box.uniform(4))
    a = network_arrays(net, bounds)
    hm = HighsArrayModel(a)
    hm.add_rows(5.0, np.inf, [(a.input_cols, np.ones(4))])  # sum of inputs in [0, 1]^4 >= 5
    res, values = hm.solve()
    assert res.status == Status.INFEASIBLE and values is None and not res.has_solution
    # an output pushed above its (sound) bound: infeasible too, via a dense row
    hm2 = HighsArrayModel(a)
    row = np.zeros(a.n_cols)
    row[a.output_cols[0]] = 1.0
    hm2.add_rows(bounds.upper[-1][0] + 1.0, np.inf, row[None, :])
    assert hm2.solve()[0].status == Status.INFEASIBLE


def test_time_limit_on_hard_model_is_a_status(seed_box):
    net, bounds = seed_box
    a = network_arrays(net, bounds)
    hm = HighsArrayModel(a, threads=1)
    hm.set_objective({int(a.output_cols[0]): 1.0, int(a.output_cols[1]): -1.0}, "max")
    res, values = hm.solve(time_limit=0.05)
    assert res.status in (Status.TIME_LIMIT, Status.OPTIMAL)
    assert res.solver == "highs" and res.size == a.size()
    if res.status == Status.TIME_LIMIT and res.has_solution:
        assert values is not None and res.bound is not None and res.bound >= res.objective - 1e-6


def test_unbounded_and_errors_are_statuses(monkeypatch):
    net = Network.random([3, 5, 2], seed=4)
    a = network_arrays(net, interval_bounds(net, Box.uniform(3)))
    hm = HighsArrayModel(a)
    free = hm.add_column(-np.inf, np.inf)
    hm.set_objective({free: 1.0}, "max")
    res, _ = hm.solve()
    assert res.status in (Status.UNBOUNDED, Status.INFEASIBLE_OR_UNBOUNDED)
    with pytest.raises(SolveError):
        hm.solve(time_limit=0)
    with pytest.raises(SolveError):
        hm.solve(time_limit=-1.0)
    with pytest.raises(SolveError):
        HighsArrayModel(a, emphasis="fast")

    def boom():
        raise RuntimeError("solver crashed")

    monkeypatch.setattr(hm.highs, "run", boom)
    res, values = hm.solve()
    assert res.status == Status.ERROR and values is None and "solver crashed" in res.message


def test_resolve_after_objective_rows_and_columns():
    net = Network.random([4, 10, 8, 3], seed=9)
    bounds = interval_bounds(net, Box.uniform(4))
    a = network_arrays(net, bounds)
    hm = HighsArrayModel(a, emphasis="proof", options={"mip_rel_gap": 0.0})
    o = [int(c) for c in a.output_cols]

    hm.set_objective({o[0]: 1.0}, "max", offset=2.0)
    best, _ = hm.solve()
    ref0 = _pyomo_optimum(net, bounds, np.array([1.0, 0.0, 0.0]), pyo.maximize)
    assert best.status == Status.OPTIMAL and _close(best.objective, ref0 + 2.0)

    # another objective on the same instance: every other cost is reset
    hm.set_objective({o[1]: -1.0}, "min")
    res, _ = hm.solve()
    assert _close(res.objective, _pyomo_optimum(net, bounds, np.array([0.0, -1.0, 0.0]), pyo.minimize))

    # a cap on output 0 below its maximum, then maximise it again: the cap is the new optimum
    # whenever it is reachable (output 0 is continuous over the connected box)
    cap = ref0 - 0.1
    hm.add_rows(-np.inf, cap, [(np.array([o[0]]), np.array([1.0]))])
    hm.set_objective({o[0]: 1.0}, "max")
    res, values = hm.solve()
    assert res.status == Status.OPTIMAL and _close(res.objective, cap)
    assert values[o[0]] <= cap + 1e-7

    # a new column t >= output 0, t >= output 1 (t integral), minimised: the Pyomo twin agrees
    t = hm.add_column(-100.0, 100.0, integral=True)
    assert t == a.n_cols and hm.n_cols == a.n_cols + 1
    hm.add_rows(0.0, np.inf, [(np.array([t, o[0]]), np.array([1.0, -1.0])),
                              (np.array([t, o[1]]), np.array([1.0, -1.0]))])
    hm.set_objective({t: 1.0}, "min")
    res, values = hm.solve()
    m = pyo.ConcreteModel()
    nb = add_network(m, net, bounds)
    m.t = pyo.Var(within=pyo.Integers, bounds=(-100, 100))
    m.cap = pyo.Constraint(expr=nb.outputs[0] <= cap)
    m.c0 = pyo.Constraint(expr=m.t >= nb.outputs[0])
    m.c1 = pyo.Constraint(expr=m.t >= nb.outputs[1])
    m.obj = pyo.Objective(expr=m.t)
    ref = solve(m, "highs", mip_gap=0.0)
    assert res.status == ref.status == Status.OPTIMAL and _close(res.objective, ref.objective)
    assert abs(values[t] - round(values[t])) <= 1e-9
    assert res.size["variables"] == a.n_cols + 1 and res.size["constraints"] == a.n_rows + 3
