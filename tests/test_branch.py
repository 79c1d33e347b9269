"""ReLU branch and bound (reluverify.engine.branch): the optimised bound never exceeds the LP
over the same bounds, never exceeds the objective at sampled points of a split domain, and the
search agrees with the brute-force oracle."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
from scipy.optimize import linprog

from oracle import region_reachable
from reluverify.bounds.batch import batch_bounds, batch_linear_bounds
from reluverify.model import Network
from reluverify.bounds.optimised import optimised_bound
from reluverify.engine.branch import relu_branch_and_bound, split_scores
from reluverify.problems.common import Clock
from reluverify.problems.verification import check_property
from reluverify.spec import Property, Region


def _net(rng, sizes):
    weights = [rng.normal(0.0, 1.0 / math.sqrt(a), size=(b, a)) for a, b in zip(sizes[:-1], sizes[1:])]
    biases = [rng.normal(0.0, 0.3, size=b) for b in sizes[1:]]
    return Network.from_arrays(weights, biases)


def _small_case(seed):
    """A random 2-hidden-layer network with 3 outputs and an input box, for the oracle tests."""
    rng = np.random.default_rng(seed)
    sizes = [int(rng.integers(2, 5)), int(rng.integers(4, 9)), int(rng.integers(4, 9)), 3]
    net = _net(rng, sizes)
    lo = rng.uniform(-1, 0, sizes[0])
    hi = lo + rng.uniform(0.2, 1.5, sizes[0])
    return rng, sizes, net, lo, hi


def _split_domain(rng, net, lo, hi, n_splits):
    """Root bounds, then ``n_splits`` random unstable neurons clamped to a phase and re-bounded."""
    L, U = batch_bounds(net, lo[None], hi[None])
    for _ in range(n_splits):
        cands = [(k, j) for k in range(len(net.layers) - 1) for j in range(L[k].shape[1])
                 if L[k][0, j] < 0 < U[k][0, j]]
        if not cands:
            break
        k, j = cands[int(rng.integers(len(cands)))]
        if rng.random() < 0.5:
            L[k][0, j] = 0.0
        else:
            U[k][0, j] = 0.0
        L, U = batch_bounds(net, lo[None], hi[None], parent=(L, U), start=k + 1, unstable_only=True)
    return L, U


def _lp_min(net, L, U, lo, hi, a_x, a_y):
    """min a_x x + a_y y over the triangle relaxation with every pre-activation inside [L, U]."""
    layers = net.layers
    sizes = [lo.size] + [2 * layer.weight.shape[0] for layer in layers[:-1]] + [layers[-1].weight.shape[0]]
    n = sum(sizes)
    offs = np.cumsum([0] + sizes)
    A_eq, b_eq, A_ub, b_ub = [], [], [], []
    bounds = [(lo[i], hi[i]) for i in range(lo.size)]
    prev = (offs[0], lo.size)  # (start, length) of h_{k-1}
    for k, layer in enumerate(layers):
        m = layer.weight.shape[0]
        z0 = offs[k + 1]
        for i in range(m):  # z = W h + b
            row = np.zeros(n)
            row[z0 + i] = 1.0
            row[prev[0]:prev[0] + prev[1]] -= layer.weight[i]
            A_eq.append(row)
            b_eq.append(layer.bias[i])
        bounds += [(L[k][0, i], U[k][0, i]) for i in range(m)]
        if k == len(layers) - 1:
            break
        h0 = z0 + m
        for i in range(m):
            l, u = L[k][0, i], U[k][0, i]
            if l >= 0:
                row = np.zeros(n); row[h0 + i] = 1.0; row[z0 + i] = -1.0
                A_eq.append(row); b_eq.append(0.0)
                bounds.append((None, None))
            elif u <= 0:
                bounds.append((0.0, 0.0))
            else:
                bounds.append((0.0, None))
                row = np.zeros(n); row[z0 + i] = 1.0; row[h0 + i] = -1.0  # z - h <= 0
                A_ub.append(row); b_ub.append(0.0)
                s = u / (u - l)
                row = np.zeros(n); row[h0 + i] = 1.0; row[z0 + i] = -s  # h - s z <= -s l
                A_ub.append(row); b_ub.append(-s * l)
        prev = (h0, m)
    cost = np.zeros(n)
    cost[:lo.size] = a_x
    cost[offs[-2]:offs[-1]] = a_y
    res = linprog(cost, A_ub=np.array(A_ub) if A_ub else None, b_ub=b_ub if b_ub else None,
                  A_eq=np.array(A_eq), b_eq=b_eq, bounds=bounds, method="highs")
    if res.status == 2:  # the domain is empty
        return np.inf
    assert res.status == 0, res.message
    return res.fun


@pytest.mark.parametrize("seed", range(40))
def test_optimised_bound_is_below_the_lp_and_the_samples(seed):
    rng = np.random.default_rng(seed)
    sizes = [int(rng.integers(2, 6))] + [int(rng.integers(3, 9)) for _ in range(int(rng.integers(1, 4)))] + [3]
    net = _net(rng, sizes)
    lo = rng.uniform(-1, 0, sizes[0])
    hi = lo + rng.uniform(0.2, 2.0, sizes[0])
    L, U = _split_domain(rng, net, lo, hi, int(rng.integers(0, 4)))
    a_x = rng.normal(0, 0.3, (1, sizes[0])) * (rng.random() < 0.5)
    a_y = rng.normal(0, 1, (1, 3))
    crown, _ = batch_linear_bounds(net, L, U, lo[None], hi[None], a_x, a_y)
    opt, corner, _ = optimised_bound(net.layers, L, U, lo[None], hi[None], a_x, a_y, steps=60)
    # inactive neurons left out (as branching does with the root's): still a valid bound
    keep = [np.flatnonzero(u[0] > 0) for u in U[:-1]]
    opt_keep, _, _ = optimised_bound(net.layers, L, U, lo[None], hi[None], a_x, a_y, steps=60, keep=keep)
    # a warm start from arbitrary parameters (out of range ones are projected): still a valid bound
    start = ([rng.uniform(-0.5, 1.5, (1, k.size)) for k in keep], [rng.uniform(-1, 3, (1, k.size)) for k in keep])
    opt_warm, _, _ = optimised_bound(net.layers, L, U, lo[None], hi[None], a_x, a_y, steps=5, keep=keep,
                                     start=start)
    lp = _lp_min(net, L, U, lo, hi, a_x[0], a_y[0])
    for bound in (opt, opt_keep, opt_warm):
        assert bound[0] <= lp + 1e-7 * max(1.0, abs(lp))
    opt = np.minimum(np.minimum(opt, opt_keep), opt_warm)  # the sample check below covers all three
    assert np.all(corner >= lo) and np.all(corner <= hi)
    # every sampled input whose pre-activations lie in the domain's bounds meets the bound
    X = lo + rng.random((4000, lo.size)) * (hi - lo)
    out, pre = net.forward(X, return_all=True)
    inside = np.ones(len(X), dtype=bool)
    for k in range(len(net.layers)):
        inside &= np.all((pre[k] >= L[k][0] - 1e-12) & (pre[k] <= U[k][0] + 1e-12), axis=1)
    vals = X @ a_x[0] + out @ a_y[0]
    if inside.any():
        assert vals[inside].min() >= opt[0] - 1e-9


def test_warm_start_from_the_parent_needs_fewer_steps():
    """The parameters a domain ends with, handed to a split child, give it a better bound than a
    cold start in the same (few) steps on most cases."""
    better = 0
    for seed in range(20):
        rng = np.random.default_rng(300 + seed)
        net = _net(rng, [4, 12, 12, 3])
        lo, hi = -np.ones(4), np.ones(4)
        L, U = batch_bounds(net, lo[None], hi[None])
        keep = [np.flatnonzero(u[0] > 0) for u in U[:-1]]
        a_y = np.array([[1.0, -1.0, 0.0]])
        _, _, params = optimised_bound(net.layers, L, U, lo[None], hi[None], np.zeros((1, 4)), a_y, steps=30,
                                       keep=keep)
        # a child-like domain (one random split of the same box); branching walks the root's neurons
        L2, U2 = _split_domain(rng, net, lo, hi, 1)
        cold, _, _ = optimised_bound(net.layers, L2, U2, lo[None], hi[None], np.zeros((1, 4)), a_y, steps=3,
                                     keep=keep)
        warm, _, _ = optimised_bound(net.layers, L2, U2, lo[None], hi[None], np.zeros((1, 4)), a_y, steps=3,
                                     keep=keep, start=params)
        better += warm[0] > cold[0] + 1e-9
    print(f"warm start better on {better} of 20")
    assert better >= 8


def test_optimised_bound_refuses_to_leave_out_a_live_neuron():
    rng = np.random.default_rng(7)
    net = _net(rng, [3, 8, 3])
    lo, hi = -np.ones(3), np.ones(3)
    L, U = batch_bounds(net, lo[None], hi[None])
    live = int(np.flatnonzero(U[0][0] > 0)[0])
    keep = [np.setdiff1d(np.arange(8), [live])]
    with pytest.raises(ValueError, match="not inactive"):
        optimised_bound(net.layers, L, U, lo[None], hi[None], np.zeros((1, 3)), np.ones((1, 3)), keep=keep)


def test_batched_back_substitution_does_not_depend_on_the_batch():
    """Neurons inactive in every box of a batch are left out of the walk; boxes bounded together
    (where some of those neurons are live in another box) get the bounds they get alone."""
    rng = np.random.default_rng(11)
    net = _net(rng, [4, 16, 16, 16, 3])
    centres = rng.uniform(-1, 1, (6, 4))
    lo, hi = centres - 0.3, centres + 0.3
    L, U = batch_bounds(net, lo, hi)
    lb, _ = batch_linear_bounds(net, L, U, lo, hi, np.zeros((2, 4)), np.array([[1.0, -1, 0], [0, 1, -1]]))
    for b in range(6):
        Lb, Ub = batch_bounds(net, lo[b:b + 1], hi[b:b + 1])
        lbb, _ = batch_linear_bounds(net, Lb, Ub, lo[b:b + 1], hi[b:b + 1], np.zeros((2, 4)),
                                     np.array([[1.0, -1, 0], [0, 1, -1]]))
        for k in range(len(net.layers)):
            np.testing.assert_allclose(L[k][b], Lb[k][0], rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(U[k][b], Ub[k][0], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(lb[b], lbb[0], rtol=1e-12, atol=1e-12)
    # and some neuron is inactive in one box but not in all (so leaving out is exercised)
    assert any(np.any((U[k] <= 0).any(axis=0) & (U[k] > 0).any(axis=0)) for k in range(3))
    # the ablation switch (every neuron walked) gives the same bounds
    L2, U2 = batch_bounds(net, lo, hi, leave_out_inactive=False)
    for k in range(len(net.layers)):
        np.testing.assert_allclose(L2[k], L[k], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(U2[k], U[k], rtol=1e-12, atol=1e-12)


def test_optimisation_tightens_plain_back_substitution():
    gains = []
    for seed in range(20):
        rng = np.random.default_rng(100 + seed)
        net = _net(rng, [4, 12, 12, 3])
        lo, hi = -np.ones(4), np.ones(4)
        L, U = _split_domain(rng, net, lo, hi, 2)
        a_y = np.array([[1.0, -1.0, 0.0]])
        crown, _ = batch_linear_bounds(net, L, U, lo[None], hi[None], np.zeros((1, 4)), a_y)
        opt, _, _ = optimised_bound(net.layers, L, U, lo[None], hi[None], np.zeros((1, 4)), a_y, steps=60)
        gains.append(opt[0] - crown[0, 0])
    # never worse than the starting point (CROWN's slopes, zero multipliers) and better on most
    assert min(gains) >= -1e-9
    assert sum(g > 1e-6 for g in gains) >= 10


def test_split_scores_only_name_unstable_neurons():
    rng = np.random.default_rng(3)
    net = _net(rng, [3, 8, 8, 2])
    lo, hi = -np.ones(3), np.ones(3)
    L, U = batch_bounds(net, lo[None], hi[None])
    scores = split_scores(net, L, U, np.array([[1.0, -1.0]]))
    for k, s in enumerate(scores):
        unstable = (L[k][0] < 0) & (U[k][0] > 0)
        assert np.all(s[0][~unstable] == 0)
        assert np.all(s[0] >= 0)


@pytest.mark.parametrize("candidates,tuning", [(1, None), (3, None), (1, "off")])
@pytest.mark.parametrize("seed", range(30))
def test_branch_and_bound_agrees_with_the_oracle(seed, candidates, tuning):
    from reluverify.engine.options import DEFAULT_TUNING, Tuning

    # tuning "off": the ablation (every neuron walked, cold starts) must decide the same way
    tuning = DEFAULT_TUNING if tuning is None else Tuning(leave_out_inactive=False, warm_start=False)
    rng, sizes, net, lo, hi = _small_case(500 + seed)
    c = int(rng.integers(3))
    j = (c + 1 + int(rng.integers(2))) % 3
    a_y = np.zeros((1, 3))
    a_y[0, c], a_y[0, j] = 1.0, -1.0  # unsafe: y_j >= y_c
    region = Region(lo, hi, np.zeros((1, sizes[0])), a_y, np.zeros(1))
    L, U = batch_bounds(net, lo[None], hi[None])
    found = []

    def checker(x, reg):
        y = net.forward(x)
        if np.all(reg.a_x @ x + reg.a_y @ y <= reg.b) and np.all(x >= lo) and np.all(x <= hi):
            found.append(x)
            return x
        return None

    stats: dict = {}
    status, _, _ = relu_branch_and_bound(net, region, [l[0] for l in L], [u[0] for u in U], checker,
                                      Clock(30.0), stats, candidates=candidates, tuning=tuning)
    truth = region_reachable(net, lo, hi, region.a_x, region.a_y, region.b) is not None
    assert status in ("sat", "unsat", "unknown")
    if status == "unsat":
        assert not truth
    if status == "sat":
        assert truth and found
    # the whole pipeline with splitting off takes the MILP or this stage, and agrees
    res = check_property(net, Property(sizes[0], 3, (region,)), split=False, time_limit=30, tuning=tuning)
    assert str(res.verdict) == ("sat" if truth else "unsat")


@pytest.mark.parametrize("seed", range(20))
def test_one_tree_for_regions_sharing_a_box_agrees_with_the_oracle(seed):
    rng, sizes, net, lo, hi = _small_case(700 + seed)
    c = int(rng.integers(3))
    regions = []
    for j in [k for k in range(3) if k != c]:  # unsafe: y_j >= y_c, one region per j
        a_y = np.zeros((1, 3))
        a_y[0, c], a_y[0, j] = 1.0, -1.0
        regions.append(Region(lo, hi, np.zeros((1, sizes[0])), a_y, np.full(1, rng.uniform(-0.5, 0.5))))
    L, U = batch_bounds(net, lo[None], hi[None])

    def checker(x, reg):
        y = net.forward(x)
        return x if np.all(reg.a_x @ x + reg.a_y @ y <= reg.b) else None

    stats: dict = {}
    status, _, undecided = relu_branch_and_bound(net, regions, [l[0] for l in L], [u[0] for u in U],
                                                 checker, Clock(30.0), stats)
    truth = [region_reachable(net, lo, hi, r.a_x, r.a_y, r.b) is not None for r in regions]
    assert status in ("sat", "unsat", "unknown")
    if status == "unsat":
        assert not any(truth) and undecided == [] and stats["branch_proved_fraction"] == [1.0]
    if status == "sat":
        assert any(truth)
    if status == "unknown":  # the regions branching proved are not listed
        assert all(not truth[i] or i in undecided for i in range(len(regions)))


def test_one_tree_needs_one_box():
    rng = np.random.default_rng(1)
    net = _net(rng, [2, 4, 3])
    a = Region(np.zeros(2), np.ones(2), np.zeros((1, 2)), np.array([[1.0, -1, 0]]), np.zeros(1))
    b = Region(np.zeros(2), np.full(2, 2.0), np.zeros((1, 2)), np.array([[1.0, -1, 0]]), np.zeros(1))
    L, U = batch_bounds(net, np.zeros((1, 2)), np.full((1, 2), 2.0))
    with pytest.raises(ValueError, match="one input box"):
        relu_branch_and_bound(net, [a, b], [l[0] for l in L], [u[0] for u in U], lambda x, r: None,
                              Clock(5.0), {})
    no_rows = Region(np.zeros(2), np.full(2, 2.0), np.zeros((0, 2)), np.zeros((0, 3)), np.zeros(0))
    with pytest.raises(ValueError, match="without rows"):
        relu_branch_and_bound(net, [b, no_rows], [l[0] for l in L], [u[0] for u in U], lambda x, r: None,
                              Clock(5.0), {})


@pytest.mark.parametrize("seed", range(10))
def test_optimised_bounds_strategy_is_sound_and_tighter_than_symbolic(seed):
    from reluverify.bounds import compute_bounds
    from reluverify.domain import Box

    rng = np.random.default_rng(900 + seed)
    net = _net(rng, [5, 16, 16, 16, 3])
    lo = rng.uniform(-1, 0, 5)
    hi = lo + rng.uniform(0.5, 2.0, 5)
    sym = compute_bounds(net, Box(lo, hi), "symbolic")
    opt = compute_bounds(net, Box(lo, hi), "optimised")
    assert opt.method == "optimised"
    assert opt.n_unstable <= sym.n_unstable
    X = lo + rng.random((5000, 5)) * (hi - lo)
    X[:32] = np.where(rng.random((32, 5)) < 0.5, lo, hi)  # corners too
    _, pre = net.forward(X, return_all=True)
    for k in range(len(net.layers)):
        assert np.all(pre[k] >= opt.lower[k] - 1e-9) and np.all(pre[k] <= opt.upper[k] + 1e-9)
    # unstable neurons beyond the first layer get strictly tighter on some seeds: checked in sum
    width = lambda b: sum(float(np.sum(np.minimum(b.upper[k], 10) - np.maximum(b.lower[k], -10)))
                          for k in range(1, len(net.layers) - 1))
    assert width(opt) <= width(sym) + 1e-9


BRANCH_CASES = int(os.environ.get("RELUVERIFY_BRANCH_CASES", "400"))


@pytest.mark.slow
def test_branch_path_agrees_with_oracle_on_many_networks():
    """check_property with ReLU branching forced (no input splitting, MILP only for what branching
    leaves open) on ``$RELUVERIFY_BRANCH_CASES`` random networks and properties: never a verdict
    the brute-force oracle contradicts, and a definite verdict wherever the oracle is sure."""
    from test_verification import _check_against_oracle, _random_property

    decided_by_branch = 0
    for case in range(BRANCH_CASES):
        rng = np.random.default_rng(10_000 + case)
        n_in = int(rng.integers(2, 7))
        sizes = [n_in] + [int(rng.integers(3, 10)) for _ in range(int(rng.integers(1, 4)))] + [3]
        net = _net(rng, sizes)
        prop = _random_property(rng, n_in, 3, net)
        res, sat, unsat = _check_against_oracle(net, prop, split=False, branch=True, attack=case % 2 == 0)
        if sat:
            assert str(res.verdict) == "sat", case
        if unsat:
            assert str(res.verdict) == "unsat", case
        decided_by_branch += res.method == "branch"
    print(f"{BRANCH_CASES} cases, {decided_by_branch} decided by ReLU branching")
    assert decided_by_branch >= BRANCH_CASES // 10  # the stage is exercised, not bypassed
