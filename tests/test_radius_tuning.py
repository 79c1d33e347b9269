"""The radius search's branching tuning (``Tuning(branch_steps=, branch_share=)``, used by
:func:`reluverify.minimal_distortion` as ``RADIUS_TUNING``): fewer optimisation steps per domain and
a larger share of the time for ReLU branch and bound change how fast a question is decided, never
what is proved. Checked against the brute-force and exact-MILP oracles on small random networks."""

from __future__ import annotations

import numpy as np
import pytest

from oracle import region_reachable
from test_branch import _small_case

import reluverify.engine.branch as B
import reluverify.problems.distortion as D
from reluverify import Network, Verdict, check_property
from reluverify.bounds.batch import batch_bounds
from reluverify.engine.common import Clock
from reluverify.engine.options import Tuning
from reluverify.errors import InputError
from reluverify.spec import Property, Region
from reluverify.tolerances import OPTIMAL_REL_GAP


def _case(seed):
    rng, sizes, net, lo, hi = _small_case(500 + seed)
    c = int(rng.integers(3))
    j = (c + 1 + int(rng.integers(2))) % 3
    a_y = np.zeros((1, 3))
    a_y[0, c], a_y[0, j] = 1.0, -1.0  # unsafe: y_j >= y_c
    return sizes, net, lo, hi, Region(lo, hi, np.zeros((1, sizes[0])), a_y, np.zeros(1))


@pytest.mark.parametrize("seed", range(30))
def test_few_steps_branching_agrees_with_the_oracle(seed):
    sizes, net, lo, hi, region = _case(seed)
    L, U = batch_bounds(net, lo[None], hi[None])
    found = []

    def checker(x, reg):
        y = net.forward(x)
        if np.all(reg.a_x @ x + reg.a_y @ y <= reg.b) and np.all(x >= lo) and np.all(x <= hi):
            found.append(x)
            return x
        return None

    truth = region_reachable(net, lo, hi, region.a_x, region.a_y, region.b) is not None
    for steps in (0, 1, D.BRANCH_STEPS):
        status, _, _ = B.relu_branch_and_bound(net, region, [l[0] for l in L], [u[0] for u in U], checker,
                                               Clock(30.0), {}, opt_steps=steps)
        assert status in ("sat", "unsat", "unknown")
        if status == "unsat":
            assert not truth, steps
        if status == "sat":
            assert truth and found, steps
    res = check_property(net, Property(sizes[0], 3, (region,)), split=False, time_limit=30, tuning=D.RADIUS_TUNING)
    assert str(res.verdict) == ("sat" if truth else "unsat")


def test_decide_hands_the_tuning_to_branching(monkeypatch):
    """Every branching call gets the tuning's steps, and (one region) its share of the time left."""
    real = B.relu_branch_and_bound
    calls = []

    def spy(*args, **kw):
        calls.append((kw.get("opt_steps"), args[5].limit))
        return real(*args, **kw)

    monkeypatch.setattr(B, "relu_branch_and_bound", spy)
    limit = 20.0
    for seed in range(30):
        sizes, net, lo, hi, region = _case(seed)
        check_property(net, Property(sizes[0], 3, (region,)), split=False, attack=False, time_limit=limit,
                       tuning=Tuning(branch_steps=3, branch_share=0.9))
    assert calls, "no question reached the branching stage"
    assert all(steps == 3 for steps, _ in calls)
    assert all(0.8 * limit < budget <= 0.9 * limit for _, budget in calls)  # the default share is 0.5
    calls.clear()
    for seed in range(30):
        sizes, net, lo, hi, region = _case(seed)
        check_property(net, Property(sizes[0], 3, (region,)), split=False, attack=False, time_limit=limit)
    assert calls and all(steps is None for steps, _ in calls)  # the engine's defaults
    assert all(budget <= 0.5 * limit for _, budget in calls)


@pytest.mark.parametrize("kw", [dict(branch_steps=-1), dict(branch_steps=2.5), dict(branch_steps=True),
                                dict(branch_share=0.0), dict(branch_share=1.5), dict(branch_share="half")])
def test_bad_tuning_is_a_typed_error(kw):
    with pytest.raises(InputError):
        Tuning(**kw)


def test_minimal_distortion_uses_the_radius_tuning_and_stays_exact(monkeypatch):
    """Each radius question gets ``RADIUS_TUNING``; on small random networks the answers stay
    within the exact MILP oracle's minimal L-inf distortion (proven bound below it, example at or
    beyond it, and optimal where the result says so)."""
    import oracle

    real = D.decide
    seen = []

    def spy(query, **kw):
        seen.append(kw.get("tuning"))
        return real(query, **kw)

    monkeypatch.setattr(D, "decide", spy)
    checked = 0
    for seed in range(2000, 2012):
        rng = np.random.default_rng(seed)
        n = int(rng.integers(3, 7))
        net = Network.random([n] + [int(v) for v in rng.integers(3, 8, size=2)] + [3], seed=seed)
        x = rng.random(n)
        c = int(np.argmax(net.forward(x)))
        truth = oracle.min_distortion(net, x, c, "linf")
        if not truth.feasible or truth.value < 1e-3:
            continue
        res = D.minimal_distortion(net, x, "linf", label=c, time_limit=20)
        where = f"seed {seed}: truth {truth.value}, got {res.summary()}"
        assert res.verdict == Verdict.FOUND, where
        assert res.lower_bound <= truth.value + 1e-7, where
        assert res.distance >= truth.value - 1e-7, where
        assert int(np.argmax(net.forward(res.x_adv))) != c
        if res.message.startswith("optimal"):
            assert res.distance - truth.value <= OPTIMAL_REL_GAP * max(1.0, res.distance) + 1e-7, where
        checked += 1
    assert checked >= 5
    assert seen and all(t is D.RADIUS_TUNING for t in seen)
    assert D.RADIUS_TUNING.branch_steps == D.BRANCH_STEPS and D.RADIUS_TUNING.branch_share == D.BRANCH_SHARE
