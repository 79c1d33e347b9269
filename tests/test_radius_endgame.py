"""The radius search's end game (:func:`reluverify.engine.radius.radius_search`) on a simulated oracle.

The oracle knows the true radius ``R``: a witness question at ``r >= R`` finds a witness (a checked
one, at a distance between ``R`` and ``r``) in a tenth of a simulated second; a proof question at
``r < R`` costs ``K / (R - r)`` simulated seconds, so proofs near the optimum are expensive and a
question given less than that ends ``timeout``. The clock is simulated: no test waits.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from reluverify.engine.radius import radius_search
from reluverify.results import PropertyResult, PropertyVerdict

R = 0.05
K = 1e-3  # a proof 1e-4 below R costs 10 s, 2e-5 below 50 s; 1e-2 below, 0.1 s


class SimClock:
    def __init__(self, limit):
        self.limit, self.used = limit, 0.0

    def remaining(self):
        return self.limit - self.used


class Oracle:
    """``decide_at`` for a problem with true radius ``R``; records every answer for the checks."""

    def __init__(self, clock, *, near_zone=0.0, witness_at=0.5):
        self.clock, self.near_zone, self.witness_at = clock, near_zone, witness_at
        self.proven, self.witnesses, self.budgets = [], [], []

    def __call__(self, r, t):
        assert t <= self.clock.remaining() + 1e-12, "a question got more time than was left"
        self.budgets.append((r, t, self.clock.remaining()))
        if r >= R:  # a witness: checked, so at distance R at least and at most r
            cost = 0.1
            if t < cost:
                self.clock.used += t
                return PropertyResult(PropertyVerdict.TIMEOUT, time_s=t)
            self.clock.used += cost
            d = R + self.witness_at * (r - R)
            self.witnesses.append(d)
            return PropertyResult(PropertyVerdict.SAT, x=np.array([d]), method="attack", time_s=cost)
        if R - r <= self.near_zone:  # met within the proof slack, not by the margin: no proof possible
            self.clock.used += 0.1
            return PropertyResult(PropertyVerdict.UNKNOWN, time_s=0.1, stats={"near_miss": (r, np.array([r]))})
        cost = K / (R - r)
        if t < cost:
            self.clock.used += t
            return PropertyResult(PropertyVerdict.TIMEOUT, time_s=t)
        self.clock.used += cost
        self.proven.append(r)
        return PropertyResult(PropertyVerdict.UNSAT, method="split", time_s=cost)


def search(limit=60.0, endgame=True, **oracle_kw):
    clock = SimClock(limit)
    oracle = Oracle(clock, **oracle_kw)
    repair = None
    if oracle_kw.get("near_zone"):
        # the near miss scaled just beyond R: a witness (the oracle's own rule: distance >= R)
        def repair(point):
            d = max(R, float(point[0])) * (1 + 1e-6)
            oracle.witnesses.append(d)
            return np.array([d])
    out = radius_search(oracle, lambda x: float(x[0]), r_max=1.0, deadline=clock,
                        gap=lambda u: 1e-4 * u, close=lambda u: 1e-4 * max(1.0, u), repair=repair,
                        endgame=endgame)
    return out, oracle, clock


def check_sound(out, oracle):
    """The lower bound is only ever a proven radius (or 0), never above any witness distance."""
    assert out.lower == 0.0 or out.lower in oracle.proven
    assert out.lower < R <= out.upper
    assert out.upper in oracle.witnesses
    assert all(p < w for p in oracle.proven for w in oracle.witnesses)
    assert out.lower <= min(oracle.witnesses)


def test_end_game_closes_the_gap_that_bisection_leaves_open():
    out, oracle, clock = search(endgame=True)
    check_sound(out, oracle)
    assert out.upper - out.lower <= 1e-4 and out.stopped == "", out.steps
    assert clock.used <= 60.0
    # the closing proof came from one question given all the time left (bisection gives a third)
    last_r, last_t, left = oracle.budgets[-1]
    assert last_r == out.lower and last_t == left and K / (R - last_r) > left / 3

    plain, oracle2, _ = search(endgame=False)
    check_sound(plain, oracle2)
    assert plain.upper - plain.lower > 1e-4, "the oracle should be too hard for bisection alone"


def test_end_game_witness_probes_are_short():
    out, oracle, _ = search(endgame=True)
    start = next(i for i, s in enumerate(out.steps) if s[1] == str(PropertyVerdict.TIMEOUT))
    probes = oracle.budgets[start + 1:-1]
    assert probes, out.steps
    assert all(t <= 1.0 for _, t, _ in probes)


@pytest.mark.parametrize("witness_at", [0.0, 0.5, 0.9])
@pytest.mark.parametrize("limit", [0.5, 3.0, 20.0, 60.0])
def test_bounds_stay_valid_whatever_the_time(witness_at, limit):
    out, oracle, clock = search(limit=limit, witness_at=witness_at)
    check_sound(out, oracle)
    assert clock.used <= limit + 1e-9


def test_near_misses_never_raise_the_lower_bound_past_a_witness():
    # within 2e-5 of R no proof is possible (met within the slack): the search must stop there,
    # with lower below the zone and upper a repaired witness beyond R
    zone = 2e-5
    out, oracle, _ = search(near_zone=zone)
    check_sound(out, oracle)
    assert out.lower <= R - zone
    assert not any(R - zone < p for p in oracle.proven)


def test_whole_number_radii_end_game_asks_integers():
    # L0-like search: true radius 7 (integers); proofs at k < 7 cost 30 s / (7 - k)
    clock = SimClock(60.0)
    asked = []

    def decide_at(r, t):
        asked.append(r)
        if r >= 7:
            clock.used += 0.1
            return PropertyResult(PropertyVerdict.SAT, x=np.array([7.0]), time_s=0.1)
        cost = 30.0 / (7 - r)
        if t < cost:
            clock.used += t
            return PropertyResult(PropertyVerdict.TIMEOUT, time_s=t)
        clock.used += cost
        return PropertyResult(PropertyVerdict.UNSAT, time_s=cost)

    out = radius_search(decide_at, lambda x: float(x[0]), r_max=100, deadline=clock, gap=lambda u: 0.5,
                        whole=True)
    assert all(float(r).is_integer() for r in asked)
    assert out.lower <= out.upper == 7
    assert out.lower == 0 or out.lower - 1 in asked
    assert math.isfinite(out.upper)


# --------------------------------------------------------------------------- on a real network
def test_end_game_on_a_real_network_gives_a_valid_closing_proof(monkeypatch):
    """minimal_distortion on small random networks, with every proof within 2 % below the true
    radius (the exact MILP oracle's) refused to questions given less than half the time limit (as
    if those proofs were too hard): bisection then stalls, and only the end game's last question
    (all the time left, at ``upper - 1e-4``) can close the gap. Its proof must give an optimal
    answer; on every network the lower bound stays below the true radius and the example at or
    beyond it. (Where the example's margin puts it more than 1e-4 beyond the true radius no proof
    can close the gap; that question then ends unknown and the search stops.)"""
    import oracle
    import reluverify.problems.distortion as D
    from reluverify import Network, Verdict
    from reluverify.tolerances import OPTIMAL_REL_GAP

    real, limit = D.decide, 20.0
    closed = 0
    for seed in range(1000, 1040):
        rng = np.random.default_rng(seed)
        n = int(rng.integers(3, 7))
        h1, h2 = (int(v) for v in rng.integers(3, 7, size=2))
        net = Network.random([n, h1, h2, 3], seed=seed)
        x = rng.random(n)
        c = int(np.argmax(net.forward(x)))
        truth = oracle.min_distortion(net, x, c, "linf")
        if not truth.feasible or truth.value < 1e-3:
            continue
        refused, finals = [], []

        def hard_near_the_optimum(query, *, time_limit, **kw):
            res = real(query, time_limit=time_limit, **kw)
            box = query.prop.regions[0]
            r = float(np.max(np.maximum(x - box.lower, box.upper - x)))
            if res.verdict == PropertyVerdict.UNSAT and r > 0.98 * truth.value:
                if time_limit < 0.5 * limit:
                    refused.append(r)
                    return PropertyResult(PropertyVerdict.TIMEOUT, time_s=res.time_s, message="refused")
                finals.append(r)
            return res

        monkeypatch.setattr(D, "decide", hard_near_the_optimum)
        res = D.minimal_distortion(net, x, "linf", label=c, time_limit=limit)
        monkeypatch.setattr(D, "decide", real)
        where = f"seed {seed}: truth {truth.value}, got {res.summary()}"
        assert res.verdict == Verdict.FOUND, where
        assert res.lower_bound <= truth.value + 1e-7, where  # a certified radius, never above the truth
        assert res.distance >= truth.value - 1e-7, where
        assert int(np.argmax(net.forward(res.x_adv))) != c
        if refused and finals:  # bisection stalled; the end game's last question (all the time left) proved
            assert abs(res.lower_bound - finals[-1]) <= 1e-12, where  # the radius read back from the box
            assert res.distance - res.lower_bound <= OPTIMAL_REL_GAP * max(1.0, res.distance), where
            closed += 1
    assert closed >= 2, f"the end game should have closed some of these networks, closed {closed}"
