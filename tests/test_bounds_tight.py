"""Tighter bound strategies: sound, never looser than interval arithmetic, never tighter than the truth."""

import numpy as np
import pyomo.environ as pyo
import pytest

from reluverify import Box, Network, add_network, compute_bounds, interval_bounds, solve
from reluverify.bounds.base import logit_difference_upper
from reluverify.domain import L1Box, linear_max, linear_min

METHODS = ["interval", "symbolic", "lp"]


def _domains(n, seed):
    rng = np.random.default_rng(seed)
    x0 = rng.random(n)
    valid = Box.uniform(n)
    return [valid, Box.linf_ball(x0, 0.1, valid), L1Box.around(x0, 0.5, valid)]


@pytest.mark.parametrize("sizes", [[4, 8, 6, 3], [6, 10, 10, 10, 2], [30, 20, 20, 4]])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_strategy_is_sound_and_never_looser_than_interval(sizes, seed):
    net = Network.random(sizes, seed=seed)
    for domain in _domains(sizes[0], seed):
        pts = domain.sample(2000, seed=seed)
        assert all(domain.contains(p, atol=1e-12) for p in pts[:50])
        ref = interval_bounds(net, domain)
        for method in METHODS:
            b = compute_bounds(net, domain, method)
            assert b.contains(pts), f"{method} bounds miss a sampled activation"
            for k in range(len(net.layers)):
                assert np.all(b.lower[k] >= ref.lower[k] - 1e-12)
                assert np.all(b.upper[k] <= ref.upper[k] + 1e-12)
            assert b.n_unstable <= ref.n_unstable
            assert b.history and b.history[-1][1] == b.n_unstable  # each strategy reports its count


def test_symbolic_is_strictly_tighter_somewhere():
    net = Network.random([20, 30, 30, 30, 5], seed=3)
    dom = Box.linf_ball(np.full(20, 0.5), 0.1, Box.uniform(20))
    a, s = interval_bounds(net, dom), compute_bounds(net, dom, "symbolic")
    gain = sum(float(np.sum((a.upper[k] - a.lower[k]) - (s.upper[k] - s.lower[k]))) for k in range(4))
    assert gain > 1e-3


def _exact_range(net, domain, k, i):
    """True min/max of neuron i of layer k over the box by MILP on the interval-bounds big-M model."""
    out = []
    for sense in (pyo.minimize, pyo.maximize):
        m = pyo.ConcreteModel()
        nb = add_network(m, net, interval_bounds(net, domain))
        prev = nb.inputs if k == 0 else nb.layer_outputs[k - 1]
        W, b = net.layers[k].weight[i], net.layers[k].bias[i]
        m.obj = pyo.Objective(expr=sum(float(W[j]) * v for j, v in enumerate(prev) if v is not None) + float(b), sense=sense)
        res = solve(m, "highs")
        assert res.status == "optimal"
        out.append(res.objective)
    return out


@pytest.mark.parametrize("seed", [0, 1])
def test_lp_bounds_never_tighter_than_the_true_range(seed):
    net = Network.random([3, 6, 6, 6, 2], seed=seed)
    dom = Box.uniform(3)
    lp = compute_bounds(net, dom, "lp")
    for k in (1, 2):
        for i in range(6):
            lo, hi = _exact_range(net, dom, k, i)
            assert lp.lower[k][i] <= lo + 1e-7
            assert lp.upper[k][i] >= hi - 1e-7


def test_lp_bound_is_certified_not_copied(monkeypatch):
    """Even with garbage duals the certificate stays a valid (if loose) bound."""
    from reluverify.bounds import lp as lpmod

    net = Network.random([5, 8, 8, 2], seed=4)
    dom = Box.uniform(5)
    honest = compute_bounds(net, dom, "lp")
    orig = lpmod._Relaxation.certified_max

    def noisy(self, c, duals):
        return orig(self, c, duals + np.random.default_rng(0).normal(0, 0.3, size=duals.shape))

    monkeypatch.setattr(lpmod._Relaxation, "certified_max", noisy)
    noisy_b = compute_bounds(net, dom, "lp")
    pts = dom.sample(3000)
    assert noisy_b.contains(pts)
    assert all(np.all(noisy_b.upper[k] >= honest.upper[k] - 1e-9) for k in range(3))


def test_l1_knapsack_is_exact_and_l1_domain_is_tighter():
    rng = np.random.default_rng(5)
    n = 7
    x0 = rng.random(n)
    dom = L1Box.around(x0, 0.8, Box.uniform(n))
    A, c = rng.normal(size=(4, n)), rng.normal(size=4)
    # the maximum over the L1 ball is attained at a vertex: x0 moved along at most 2 coordinates
    best = np.full(4, -np.inf)
    for i in range(n):
        for j in range(n):
            for si in (-1, 1):
                for sj in (-1, 1):
                    for t in np.linspace(0, 0.8, 17):
                        x = x0.copy()
                        x[i] = np.clip(x[i] + si * t, 0, 1)
                        rest = 0.8 - abs(x[i] - x0[i])
                        if j != i:
                            x[j] = np.clip(x[j] + sj * rest, 0, 1)
                        if dom.contains(x, atol=1e-12):
                            best = np.maximum(best, A @ x + c)
    mx = linear_max(A, c, dom)
    assert np.all(mx >= best - 1e-9) and np.all(mx <= best + 1e-6)
    assert np.all(linear_min(A, c, dom) <= A @ x0 + c)
    net = Network.random([n, 10, 10, 3], seed=5)
    box_only = compute_bounds(net, Box(dom.lower, dom.upper), "symbolic")
    with_l1 = compute_bounds(net, dom, "symbolic")
    assert with_l1.n_unstable <= box_only.n_unstable
    assert with_l1.contains(dom.sample(2000))


@pytest.mark.parametrize("seed", range(6))
def test_label_elimination_never_drops_a_reachable_class(seed):
    net = Network.random([3, 6, 5, 4], seed=seed)
    x0 = np.random.default_rng(seed).random(3)
    dom = Box.linf_ball(x0, 0.3, Box.uniform(3))
    c = int(np.argmax(net.forward(x0)))
    g = np.linspace(0, 1, 41)
    grid = np.stack(np.meshgrid(g, g, g), -1).reshape(-1, 3)
    pts = dom.lower + grid * (dom.upper - dom.lower)
    out = net.forward(pts)
    for method in METHODS:
        b = compute_bounds(net, dom, method)
        for j in range(4):
            if j == c:
                continue
            ub = logit_difference_upper(b, j, c)
            assert ub >= float(np.max(out[:, j] - out[:, c])) - 1e-9
