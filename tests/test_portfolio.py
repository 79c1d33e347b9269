"""The MILP race (engine/portfolio.py, ``Tuning(portfolio=True)``): the worker's answers go through
the same trust rule and witness check, a failing worker changes no verdict, and verdicts agree with
the sequential engine."""

from __future__ import annotations

import numpy as np
import pytest

import reluverify as rv
from reluverify.engine.common import Clock
from reluverify.engine.portfolio import MilpRace, RaceClock
from reluverify.engine.query import Witnesses
from reluverify.problems.robustness import class_change_query
from reluverify.results import Status
from reluverify.tolerances import VERIFY_SLACK


def _query(seed=0, eps=0.15, n=6):
    net = rv.Network.random([n, 16, 16, 3], seed=seed)
    x0 = np.full(n, 0.5)
    label = int(np.argmax(net.forward(x0)))
    return net, x0, label, class_change_query(net, label, rv.ball("linf", x0, eps))


def _race(query, solver="highs", time_limit=30.0):
    jobs = [(i, r, query.bound_domain(r)) for i, r in enumerate(query.proof_regions)]
    shift = max(VERIFY_SLACK - query.proof_slack, 0.0)
    return MilpRace(query.network, jobs, query.inputs, shift, solver, time_limit)


def _wait_all(race, n, seconds=60.0):
    clock = Clock(seconds)
    for i in range(n):
        race.wait(i, clock)
    race.poll()


@pytest.mark.parametrize("eps", [0.02, 0.6])
def test_race_answers_agree_with_the_sequential_milp(eps):
    """Each region the worker answers: infeasible only where no sampled point reaches the region,
    and every point it returns for a reachable region is a checked witness or a near miss."""
    net, x0, label, q = _query(seed=3, eps=eps)
    race = _race(q)
    try:
        _wait_all(race, len(q.proof_regions))
        assert set(race.results) == set(range(len(q.proof_regions))) and not race.errors
        rng = np.random.default_rng(0)
        pts = np.clip(x0 + rng.uniform(-eps, eps, (4000, x0.size)), 0, 1)
        out = net.forward(pts)
        check = Witnesses(q)
        for i, (res, x, big) in race.results.items():
            j = [k for k in range(3) if k != label][i]
            reached = np.any(out[:, j] >= out[:, label])
            if res.status == Status.INFEASIBLE:
                assert not reached, f"region {i}: the worker called a reachable class unreachable"
            if x is not None:
                assert np.max(np.abs(x - x0)) <= eps + 1e-6
                chk = check(x, q.prop.regions[i])
                lg = net.forward(x)
                assert chk is not None or lg[j] >= lg[label] - 2 * VERIFY_SLACK
    finally:
        race.close()


def test_a_failing_worker_reports_an_error_and_the_verdict_stands():
    """A worker that cannot solve (an unknown solver name in the worker) answers nothing but its
    errors, and ends."""
    net, x0, label, q = _query(seed=5)
    race = _race(q, solver="no_such_solver")
    try:
        _wait_all(race, len(q.proof_regions), seconds=30)
        clock = Clock(20.0)
        while not race.finished and not clock.expired():
            race.wait(-1, clock)
        assert race.finished and not race.results and set(race.errors) == set(range(len(q.proof_regions)))
    finally:
        race.close()


def test_race_clock_runs_out_when_the_race_has_answered():
    net, x0, label, q = _query(seed=3, eps=0.02)
    race = _race(q)
    try:
        clock = RaceClock(Clock(60.0), lambda: race, 0, every=0.0)
        _wait_all(race, 1)
        assert 0 in race.results and clock.expired() and clock.remaining() > 0
        assert not RaceClock(Clock(60.0), lambda: race, 99, every=0.0).expired()
        assert not RaceClock(Clock(60.0), lambda: None, 0, every=0.0).expired()  # not started yet
    finally:
        race.close()


@pytest.mark.parametrize("seed", [1, 3])
def test_portfolio_verdicts_match_the_sequential_engine(seed, monkeypatch):
    """verify_robustness with and without the race: the same verdicts (the race started at once
    here, whenever branching runs), every counterexample checked."""
    from reluverify.engine import decide as decide_module

    monkeypatch.setattr(decide_module, "PORTFOLIO_DELAY_S", 0.0)
    monkeypatch.setattr(decide_module, "PORTFOLIO_MIN_S", 0.5)
    rng = np.random.default_rng(seed)
    net = rv.Network.random([30, 40, 40, 4], seed=seed)
    raced = 0
    for _ in range(4):
        x0 = rng.uniform(0.2, 0.8, 30)
        eps = float(rng.uniform(0.02, 0.15))
        a = rv.verify_robustness(net, x0, eps, "linf", time_limit=30)
        b = rv.verify_robustness(net, x0, eps, "linf", time_limit=30, tuning=rv.Tuning(portfolio=True))
        assert a.verdict == b.verdict
        raced += bool(b.stats.get("portfolio"))
        if b.verdict == rv.Verdict.NOT_ROBUST:
            lg = net.forward(b.x_adv)
            assert np.max(np.abs(b.x_adv - x0)) <= eps * (1 + 1e-12)
            assert np.max(np.delete(lg, b.original_class)) >= lg[b.original_class]
    assert raced >= 1
