"""Crafted near-boundary cases whose exact answers are known analytically.

What reluverify decides at the boundary (documented in docs/soundness.md):

* a counterexample must change the class **strictly** in the float64 forward pass (a tie is not a
  counterexample): ``max_j out_j - out_c > 0``, and for ``minimal_distortion``/``max_confidence``
  by ``DEFAULT_MARGIN`` (1e-4 logits);
* ``robust`` needs a proof that no allowed input brings a wrong logit within ``VERIFY_SLACK``
  (1e-6 logits) of the true one. So at ``eps = r - 1e-7`` (``r`` the exact radius) the answer can
  be ``robust`` only where the gap falls below ``-VERIFY_SLACK`` there (slope 100: ``-1e-5``), and
  the solvers' own feasibility tolerances (HiGHS up to 1e-6 on MIP rows, CBC ~1e-7) widen it,
  so ``unknown`` is allowed within 1e-7 of ``r``; at ``eps = r`` (a tie at best) it is ``unknown``;
  at ``eps = r + 1e-7`` ``not_robust`` with a witness whose float64 gap is positive, or
  ``unknown``. Never ``robust`` at or beyond ``r``, never ``not_robust`` below it, and decided at
  ``r +- 1e-3``.
* thin-slab networks (Jia & Rinard 2021): the counterexamples fill a slab of width ``2 delta / k``
  around ``x = m`` (``k`` up to 1e8, ``delta`` down to 1e-9); the float64 forward pass at ``m``
  shows one, so no solver may answer ``robust``. These found three bugs (fixed): HiGHS's presolve
  declared such MILPs infeasible (now re-solved with presolve off), ``minimal_distortion`` asked
  for the exact boundary without slack (now ``-VERIFY_SLACK`` like verification), and beyond
  big-M 1e6 no solver setting was reliable (now such proofs are not trusted: ``unknown``).
"""

from __future__ import annotations

import numpy as np
import pytest

from reluverify import Network
from reluverify.check import class_gap, target_gap
from reluverify.problems import max_confidence, minimal_distortion, verify_robustness
from reluverify.tolerances import MAX_TRUSTED_BIG_M
from reluverify.problems.prototype import class_prototype
from reluverify.problems.universal import universal_perturbation
from reluverify.results import Verdict
from reluverify.solvers import available_solvers
from reluverify.tolerances import DEFAULT_MARGIN, VERIFY_SLACK

SOLVERS = [pytest.param(s, marks=[] if available_solvers()[s] else pytest.mark.skip(reason=f"{s} not installed"))
           for s in ("highs", "cbc", "gurobi")]
X0 = np.array([0.25, 0.5])


# --------------------------------------------------------------------------- exact radii
def linear_net(slope: float, a: float = 0.75) -> Network:
    """Two classes, ``out_1 - out_0 = slope (x_1 - a)``; only ``x_1`` matters. From ``X0`` the exact
    L1 and L-inf radius is ``a - 0.25`` (0.5 for ``a = 0.75``: exact in binary)."""
    return Network.from_arrays([np.array([[0.0, 0.0], [slope, 0.0]])], [np.array([0.0, -slope * a])])


def relu_net(slope: float) -> Network:
    """``out_1 - out_0 = 2 slope relu(x_1 + x_2 - 1) - slope``: the class changes where
    ``x_1 + x_2 > 1.5``. From ``(0.25, 0.25)`` the exact L-inf radius is 0.5, the L1 radius 1.0."""
    W1 = np.array([[1.0, 1.0], [-1.0, 0.0]])
    b1 = np.array([-1.0, 0.0])
    W2 = np.array([[0.0, 0.0], [2.0 * slope, 0.0]])
    b2 = np.array([0.0, -slope])
    return Network.from_arrays([W1, W2], [b1, b2])


CRAFTED = {  # name: (network, x0, {norm: exact radius}, gap slope along the shortest path)
    "linear-slope1": (linear_net(1.0), X0, {"linf": 0.5, "l1": 0.5}, {"linf": 1.0, "l1": 1.0}),
    "linear-slope100": (linear_net(100.0), X0, {"linf": 0.5, "l1": 0.5}, {"linf": 100.0, "l1": 100.0}),
    "relu-slope1": (relu_net(1.0), np.array([0.25, 0.25]), {"linf": 0.5, "l1": 1.0}, {"linf": 4.0, "l1": 2.0}),
    "relu-slope100": (relu_net(100.0), np.array([0.25, 0.25]), {"linf": 0.5, "l1": 1.0}, {"linf": 400.0, "l1": 200.0}),
}


OFFSETS = (-1e-3, -1e-7, 0.0, 1e-7, 1e-3)


def expected_verdict(offset: float, slope: float) -> Verdict:
    """What verify_robustness answers at ``eps = r + offset`` with exact arithmetic and a solver
    without tolerances: the exact maximal gap over the ball is ``slope * offset``."""
    gap = slope * offset
    if gap > 0:
        return Verdict.NOT_ROBUST
    if gap < -VERIFY_SLACK:
        return Verdict.ROBUST
    return Verdict.UNKNOWN  # a tie (offset 0) or the grey zone [-VERIFY_SLACK, 0)


# the gradient attack of verify_robustness runs for L-inf only
VERIFY_CASES = [pytest.param(name, norm, attack, id=f"{name}-{norm}-{'attack' if attack else 'milp'}")
                for name in sorted(CRAFTED) for norm in ("linf", "l1") for attack in (True, False)
                if norm == "linf" or not attack]


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("name,norm,attack", VERIFY_CASES)
def test_verify_at_the_exact_radius(name, norm, attack, solver, record_property):
    """Never ``robust`` at or beyond ``r``, never ``not_robust`` below it; clear-cut radii
    (``r +- 1e-3``) decided. Within 1e-7 of ``r`` a solver may answer ``unknown`` where exact
    arithmetic would decide: its feasibility tolerance (HiGHS's MIP tolerance, up to 1e-6 in its
    confirming run; CBC's points violate rows by ~1e-7) moves the point by that much, which widens
    the grey zone by about ``tolerance x slope`` logits. Which answers came out is recorded for docs/soundness.md."""
    net, x0, radii, slopes = CRAFTED[name]
    r, slope = radii[norm], slopes[norm]
    table = {}
    for offset in OFFSETS:
        eps = r + offset
        res = verify_robustness(net, x0, eps, norm, solver=solver, attack=attack, bound_method="interval")
        want = expected_verdict(offset, slope)
        table[f"{offset:+g}"] = str(res.verdict)
        where = f"{name} {norm} eps = r {offset:+g}: {res.summary()}"
        if offset >= 0:
            assert res.verdict != Verdict.ROBUST, where
        if offset <= 0:
            assert res.verdict != Verdict.NOT_ROBUST, where
        if abs(offset) >= 1e-3:
            assert res.verdict == want, where
        elif res.verdict != want:
            assert res.verdict == Verdict.UNKNOWN, where
        if res.verdict == Verdict.NOT_ROBUST:
            lg = net.forward(res.x_adv)
            assert class_gap(lg, 0) > 0  # strictly misclassified in float64
            d = np.abs(res.x_adv - x0)
            assert (d.max() if norm == "linf" else d.sum()) <= eps * (1 + 1e-12)
        else:
            assert res.x_adv is None
    record_property("near_boundary", {"case": f"{name}/{norm}/{solver}/{'attack' if attack else 'milp'}",
                                      "slope": slope, "table": table})


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("norm", ["linf", "l1"])
@pytest.mark.parametrize("name", sorted(CRAFTED))
def test_minimal_distortion_at_the_exact_radius(name, norm, solver):
    net, x0, radii, slopes = CRAFTED[name]
    r, slope = radii[norm], slopes[norm]
    res = minimal_distortion(net, x0, norm, solver=solver, attack=False, bound_method="interval")
    assert res.verdict == Verdict.FOUND, res.summary()
    # the certified radius: never above r, and at most VERIFY_SLACK / slope below it (the MILP
    # asks for out_1 >= out_0 - VERIFY_SLACK)
    assert res.lower_bound <= r + 1e-12, res.lower_bound
    assert res.lower_bound >= r - VERIFY_SLACK / slope - 1e-4 * r, res.lower_bound
    # the witness beats class 0 by DEFAULT_MARGIN, so it lies DEFAULT_MARGIN / slope beyond r
    assert class_gap(net.forward(res.x_adv), 0) >= DEFAULT_MARGIN
    assert r + DEFAULT_MARGIN / slope * (1 - 1e-6) <= res.distance <= (r + DEFAULT_MARGIN / slope) * (1 + 1e-2)


# --------------------------------------------------------------------------- ties
def test_tie_at_the_input_is_not_a_counterexample_but_its_neighbour_is():
    net = linear_net(1.0, a=0.25)  # out_1 == out_0 at X0 exactly
    lg = net.forward(X0)
    assert lg[0] == lg[1] and int(np.argmax(lg)) == 0  # ties go to the first class (np.argmax)
    for label in (0, 1):
        res = verify_robustness(net, X0, 0.01, label=label, attack=False)
        assert res.verdict == Verdict.NOT_ROBUST, res.summary()
        assert class_gap(net.forward(res.x_adv), label) > 0
        assert not np.array_equal(res.x_adv, X0)  # the input itself (a tie) is not the witness
    md = minimal_distortion(net, X0, "linf", attack=False)
    assert md.verdict == Verdict.FOUND and md.lower_bound == 0.0
    assert 0 < md.distance <= DEFAULT_MARGIN * 1.01 and class_gap(net.forward(md.x_adv), 0) >= DEFAULT_MARGIN


def test_logits_tied_everywhere_are_never_a_counterexample():
    """Two identical output rows: no input makes class 1 strictly beat class 0 (the true class,
    being first among equals), yet every input ties. Neither a witness nor a proof exists: the
    answer is ``unknown`` (the tie stays within VERIFY_SLACK)."""
    w = np.array([[1.0, -2.0], [1.0, -2.0]])
    net = Network.from_arrays([w], [np.array([0.5, 0.5])])
    res = verify_robustness(net, X0, 0.3, attack=True)
    assert res.verdict == Verdict.UNKNOWN and res.x_adv is None, res.summary()
    md = minimal_distortion(net, X0, "l1")
    assert md.verdict == Verdict.UNKNOWN and md.x_adv is None and md.lower_bound == 0.0, md.summary()
    mc = max_confidence(net, X0, 1, eps=0.5)
    assert mc.verdict in (Verdict.UNKNOWN, Verdict.ROBUST) and mc.x_adv is None, mc.summary()


def test_tied_wrong_classes_do_not_confuse_the_verdict():
    """Classes 1 and 2 are identical and reach class 0 at the exact radius 0.5."""
    W = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    net = Network.from_arrays([W], [np.array([0.0, -0.75, -0.75])])
    assert verify_robustness(net, X0, 0.5 + 1e-7, attack=False).verdict == Verdict.NOT_ROBUST
    assert verify_robustness(net, X0, 0.5 - 1e-7, attack=False).verdict == Verdict.UNKNOWN
    assert verify_robustness(net, X0, 0.4, attack=False).verdict == Verdict.ROBUST
    # targeted: class 1 can never strictly beat its twin, class 2
    md = minimal_distortion(net, X0, "linf", target=1)
    assert md.verdict != Verdict.FOUND, md.summary()


def test_float64_rounding_decides_a_real_number_tie():
    """``0.1 + 0.2 > 0.3`` in float64: the forward pass, not real arithmetic, is the arbiter (as in
    VNN-COMP, where the ONNX runtime is). The input is reported as its own counterexample."""
    net = Network.from_arrays([np.array([[0.0, 0.0, 0.3], [0.1, 0.2, 0.0]])], [np.zeros(2)])
    x = np.ones(3)
    lg = net.forward(x)
    assert lg[1] - lg[0] == pytest.approx(5.55e-17, rel=0.01)  # real arithmetic: exactly 0
    res = verify_robustness(net, x, 0.01, label=0)
    assert res.verdict == Verdict.NOT_ROBUST and np.array_equal(res.x_adv, x)


# --------------------------------------------------------------------------- thin slabs
def thin_slab(k: float, delta: float, m: float = 0.625) -> Network:
    """``out_1 - out_0 = delta - k relu(x - m) - k relu(m - x)``: positive only for
    ``|x - m| < delta / k``; ``m`` itself is a counterexample by ``delta`` in float64."""
    W1 = np.array([[k], [-k]])
    b1 = np.array([-k * m, k * m])
    W2 = np.array([[0.0, 0.0], [-1.0, -1.0]])
    b2 = np.array([0.0, delta])
    return Network.from_arrays([W1, W2], [b1, b2])


FAST_GRID = [(k, d) for k in (1e3, 1e4, 1e5, 1e7, 1e8) for d in (1e-3, 1e-7, 1e-9)]
FULL_GRID = [(10.0 ** e, d) for e in np.arange(2.0, 8.5, 0.5) for d in (1e-3, 1e-5, 1e-7, 1e-9)]


def check_thin_slab(k, delta, solver, stats, m=0.625):
    x0 = np.array([0.25])
    net = thin_slab(k, delta, m)
    gap_at_m = class_gap(net.forward(np.array([m])), 0)
    assert gap_at_m > 0  # a real float64 counterexample at distance m - 0.25
    v = verify_robustness(net, x0, 0.5, solver=solver, attack=False, bound_method="interval")
    assert v.verdict != Verdict.ROBUST, f"k={k:g} delta={delta:g} {solver}: {v.summary()}"
    if v.verdict == Verdict.NOT_ROBUST:
        assert class_gap(net.forward(v.x_adv), 0) > 0
    md = minimal_distortion(net, x0, "linf", solver=solver, attack=False)
    assert md.verdict != Verdict.ROBUST, f"k={k:g} delta={delta:g} {solver}: {md.summary()}"
    # m is a counterexample at distance m - 0.25. A certified radius is exact up to the solver's
    # tolerances: HiGHS (MIP feasibility 1e-7) reported "optimal" radii up to 2.2e-10 above the
    # exact optimum here (k = 1e4, delta = 1e-7, m = 0.3); the differential tests allow 1e-6.
    assert md.lower_bound <= (m - 0.25) + 1e-9, md.lower_bound
    if md.verdict == Verdict.FOUND:
        assert class_gap(net.forward(md.x_adv), 0) >= DEFAULT_MARGIN
    if delta > DEFAULT_MARGIN:  # class 1 can win by the margin: never robust
        mc = max_confidence(net, x0, 1, eps=0.5, solver=solver)
        assert mc.verdict != Verdict.ROBUST, f"k={k:g} delta={delta:g} {solver}: {mc.summary()}"
        if mc.verdict == Verdict.FOUND:
            assert target_gap(net.forward(mc.x_adv), 1) >= DEFAULT_MARGIN
        if mc.objective_bound is not None:
            assert mc.objective_bound >= delta - 1e-9  # the true maximum of out_1 is delta
        stats[f"confidence_{mc.verdict}"] += 1
    stats[f"verify_{v.verdict}"] += 1
    stats[f"md_{md.verdict}"] += 1
    stats["cases"] += 1


@pytest.mark.parametrize("solver", SOLVERS)
def test_thin_slab_is_never_robust(solver, record_property):
    from collections import Counter

    stats = Counter()
    for k, delta in FAST_GRID:
        check_thin_slab(k, delta, solver, stats)
    record_property("near_boundary", {"case": f"thin-slab/{solver}", "stats": dict(stats)})


@pytest.mark.slow
@pytest.mark.parametrize("solver", SOLVERS)
def test_thin_slab_is_never_robust_full_grid(solver, record_property):
    from collections import Counter

    stats = Counter()
    for k, delta in FULL_GRID:
        for m in (0.3, 0.625, 0.7):
            check_thin_slab(k, delta, solver, stats, m)
    record_property("near_boundary", {"case": f"thin-slab-full/{solver}", "stats": dict(stats)})


def test_untrusted_big_m_gives_unknown_not_robust():
    """Beyond MAX_TRUSTED_BIG_M an infeasible MILP is not taken as a proof."""
    net = thin_slab(1e8, 1e-9)
    res = verify_robustness(net, np.array([0.25]), 0.5, attack=False, bound_method="interval")
    assert res.verdict in (Verdict.UNKNOWN, Verdict.NOT_ROBUST)
    if res.verdict == Verdict.UNKNOWN:
        assert "big-M" in res.message or "not decided" in res.message
    assert MAX_TRUSTED_BIG_M == 1e6
    # a robust input of the same network far from the slab is still proven robust by bounds alone
    res = verify_robustness(net, np.array([0.1]), 0.05, attack=False, bound_method="interval")
    assert res.verdict == Verdict.ROBUST and not res.solves


# --------------------------------------------------------------------------- the other questions
# max_confidence, universal_perturbation and class_prototype claim "robust" (the target / a wrong
# class can never win) by the same rule as verify_robustness: only from a MILP that asks for the win
# up to VERIFY_SLACK. Their witnesses must win by DEFAULT_MARGIN in float64. On the crafted networks
# the largest gap of class 1 over class 0 within radius ``r + offset`` is ``slope * offset``.
# every case on HiGHS; CBC and Gurobi (slower to start) on the L-inf cases by default, on all with -m slow
OTHER_CASES = [pytest.param(name, norm, solver, id=f"{name}-{norm}-{solver}",
                            marks=([pytest.mark.slow] if solver != "highs" and norm == "l1" else [])
                            + ([] if available_solvers()[solver] else [pytest.mark.skip(reason=f"{solver} not installed")]))
               for name in sorted(CRAFTED) for norm in ("linf", "l1") for solver in ("highs", "cbc", "gurobi")]


def check_against_the_exact_gap(res, offset, slope, where, gap_of_witness):
    """The verdict rules at ``eps = r + offset``: robust never at or beyond ``r``; a witness only
    where the exact gap reaches DEFAULT_MARGIN, and then with a float64 gap >= DEFAULT_MARGIN;
    clear-cut radii (``r +- 1e-3``) decided."""
    best_gap = slope * offset
    if offset >= 0:
        assert res.verdict != Verdict.ROBUST, where
    if best_gap < DEFAULT_MARGIN:
        assert res.verdict != Verdict.FOUND, where
    if offset == 1e-3:
        assert res.verdict == Verdict.FOUND, where
    if offset == -1e-3:
        assert res.verdict == Verdict.ROBUST, where
    if res.verdict == Verdict.FOUND:
        assert gap_of_witness(res) >= DEFAULT_MARGIN, where


@pytest.mark.parametrize("name,norm,solver", OTHER_CASES)
def test_max_confidence_at_the_exact_radius(name, norm, solver):
    net, x0, radii, slopes = CRAFTED[name]
    r, slope = radii[norm], slopes[norm]
    for offset in OFFSETS:
        res = max_confidence(net, x0, 1, eps=r + offset, norm=norm, objective="margin", solver=solver,
                             bound_method="interval")
        where = f"{name} {norm} budget = r {offset:+g}: {res.summary()} ({res.message})"
        check_against_the_exact_gap(res, offset, slope, where, lambda res: target_gap(net.forward(res.x_adv), 1))
        if res.objective_bound is not None:  # a proven bound is never below the true maximum
            assert res.objective_bound >= slope * offset - 1e-7, where
        if res.verdict == Verdict.FOUND:
            d = np.abs(res.x_adv - x0)
            assert (d.max() if norm == "linf" else d.sum()) <= (r + offset) * (1 + 1e-12), where


@pytest.mark.parametrize("name,norm,solver", OTHER_CASES)
def test_universal_perturbation_at_the_exact_radius(name, norm, solver):
    net, x0, radii, slopes = CRAFTED[name]
    r, slope = radii[norm], slopes[norm]
    for offset in OFFSETS:
        res = universal_perturbation(net, [x0], [0], eps=r + offset, norm=norm, solver=solver, bound_method="interval")
        where = f"{name} {norm} size = r {offset:+g}: {res.summary()}"
        check_against_the_exact_gap(res, offset, slope, where,
                                    lambda res: class_gap(net.forward(x0 + res.delta), 0))
        if offset >= 0 and res.upper_bound is not None:  # the image comes within VERIFY_SLACK
            assert res.upper_bound >= 1, where
    res = universal_perturbation(net, [x0], [0], norm=norm, mode="all", solver=solver, bound_method="interval")
    assert res.verdict == Verdict.FOUND, res.summary()
    assert res.distance_lower_bound is None or res.distance_lower_bound <= r + 1e-9, res.summary()
    assert class_gap(net.forward(x0 + res.delta), 0) >= DEFAULT_MARGIN


@pytest.mark.parametrize("name,norm,solver", OTHER_CASES)
def test_class_prototype_at_the_exact_radius(name, norm, solver):
    net, x0, radii, slopes = CRAFTED[name]
    r, slope = radii[norm], slopes[norm]
    for offset in OFFSETS:
        res = class_prototype(net, 1, around=x0, eps=r + offset, norm=norm, solver=solver,
                              bound_method="interval")
        where = f"{name} {norm} budget = r {offset:+g}: {res.summary()} ({res.message})"
        check_against_the_exact_gap(res, offset, slope, where, lambda res: target_gap(net.forward(res.x_adv), 1))
        if res.objective_bound is not None:
            assert res.objective_bound >= slope * offset - 1e-7, where


def test_max_confidence_needs_the_slack_rule_for_robust():
    """Class 1 beats class 0 by 1e-5 (< DEFAULT_MARGIN) at the edge of an L-inf budget of 0.5: no
    witness with the margin exists, but "class 1 cannot win" is false. verify_robustness finds the
    point; max_confidence must not claim a proof (issue #13, item 1)."""
    net = Network.from_arrays([np.eye(2), np.array([[0.0, 0.0], [1.0, 0.0]])],
                              [np.zeros(2), np.array([0.0, -0.5 + 1e-5])])
    x = np.zeros(2)
    v = verify_robustness(net, x, 0.5, "linf", label=0)
    assert v.verdict == Verdict.NOT_ROBUST and class_gap(net.forward(v.x_adv), 0) > 0
    for solver in ("highs", "cbc", "gurobi"):
        if not available_solvers()[solver]:
            continue
        for objective in ("logit", "margin"):
            mc = max_confidence(net, x, target=1, eps=0.5, norm="linf", objective=objective, solver=solver)
            assert mc.verdict == Verdict.UNKNOWN and mc.x_adv is None, f"{solver} {objective}: {mc.summary()}"
            if mc.objective_bound is not None:
                assert mc.objective_bound >= (1e-5 if objective == "margin" else 1e-5) - 1e-9


def test_ties_in_the_other_questions_are_neither_found_nor_robust():
    """Two identical output rows: class 1 ties class 0 everywhere, never beats it."""
    w = np.array([[1.0, -2.0], [1.0, -2.0]])
    net = Network.from_arrays([w], [np.array([0.5, 0.5])])
    up = universal_perturbation(net, [X0], [0], eps=0.3)
    assert up.verdict == Verdict.UNKNOWN and up.n_fooled == 0, up.summary()
    assert up.upper_bound is None or up.upper_bound >= 1
    pr = class_prototype(net, 1)
    assert pr.verdict == Verdict.UNKNOWN and pr.x_adv is None, pr.summary()
    assert pr.objective_bound is None or pr.objective_bound >= -1e-9  # the margin reaches 0 everywhere


@pytest.mark.parametrize("k,delta,m", [(10 ** 7.5, 1e-5, 0.7), (1e8, 1e-5, 0.625), (1e8, 1e-7, 0.7), (1e8, 1e-9, 0.7)])
def test_untrusted_big_m_in_universal_and_prototype(k, delta, m):
    """Thin slabs with big-M beyond MAX_TRUSTED_BIG_M: the solver's infeasibility and bounds are no
    proofs there (HiGHS "proved" these robust, and gave the prototype's logit a bound below the true
    maximum ``delta``; issue #13, item 2)."""
    net = thin_slab(k, delta, m)
    x0 = np.array([0.25])
    assert class_gap(net.forward(np.array([m])), 0) > 0
    for mode, size in (("max_fooled", {"eps": 0.5}), ("all", {})):
        up = universal_perturbation(net, [x0], [0], mode=mode, attack=False, **size)
        assert up.verdict != Verdict.ROBUST, up.summary()
        if mode == "max_fooled":
            assert up.upper_bound is None or up.upper_bound >= 1, up.summary()
    for objective in ("margin", "logit"):
        pr = class_prototype(net, 1, attack=False, objective=objective)
        assert pr.verdict != Verdict.ROBUST, pr.summary()
        assert pr.objective_bound is None or pr.objective_bound >= delta - 1e-12, pr.summary()
