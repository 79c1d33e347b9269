"""Adversarial problems against an independent brute-force oracle (tests/oracle.py).

The oracle enumerates activation patterns of tiny networks and solves one LP per pattern, so its
answers are exact; the library must agree with it: minimal distortions within tolerance (and
``lower_bound`` never above the truth), robustness verdicts never ``robust`` when a counterexample
exists, maximal confidences never above the truth and ``objective_bound`` never below it.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import oracle
from conftest import ALL_SOLVERS
from reluverify import Box, InputError, Network, UnknownSolverError
from reluverify.check import check_witness, class_gap, distances, target_gap
from reluverify.domain import Perturbation
from reluverify.problems import AdversarialModel, max_confidence, minimal_distortion, verify_robustness
from reluverify.results import Status, Verdict
from reluverify.tolerances import DEFAULT_MARGIN

N_CLASSES = 3


def tiny_case(seed, n_range=(3, 7)):
    """A random [n, h1, h2, 3] ReLU network (3..6 each) and a point of [0, 1]^n."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(*n_range))
    h1, h2 = (int(v) for v in rng.integers(3, 7, size=2))
    net = Network.random([n, h1, h2, N_CLASSES], seed=seed)
    return net, rng.random(n), rng


def assert_witness(net, res, c, lo, hi, target=None, margin=0.0):
    """``res.x_adv`` lies in ``[lo, hi]``, is really misclassified (float64 forward pass) and the
    reported numbers are recomputed from it."""
    x_adv = res.x_adv
    assert x_adv is not None and np.all(np.isfinite(x_adv))
    assert np.all(x_adv >= lo) and np.all(x_adv <= hi), "witness outside its domain"
    logits = net.forward(x_adv)
    np.testing.assert_array_equal(res.adv_logits, logits)
    if target is None:
        assert class_gap(logits, c) > 0 and class_gap(logits, c) >= margin, "witness is not misclassified"
        assert int(np.argmax(logits)) != c
    else:
        assert target_gap(logits, target) > 0 and target_gap(logits, target) >= margin, "target does not win"
        assert int(np.argmax(logits)) == target
    assert res.adversarial_class == int(np.argmax(logits))
    assert res.distances == distances(x_adv, res.x)


def perturbation_box(x, pert):
    """The allowed box of a perturbation, computed here (not by the library)."""
    lo, hi = np.zeros(x.size), np.ones(x.size)
    if pert is None:
        return lo, hi
    if pert.linf_cap is not None:
        lo, hi = np.maximum(lo, x - pert.linf_cap), np.minimum(hi, x + pert.linf_cap)
    if pert.mask is not None:
        lo, hi = np.where(pert.mask, lo, x), np.where(pert.mask, hi, x)
    return lo, hi


# --------------------------------------------------------------------------- the oracle itself
def test_oracle_is_never_beaten_by_samples():
    """No sampled point beats the oracle's answers, and the points it returns reach them."""
    for seed in range(4):
        net, x, rng = tiny_case(seed)
        c = int(np.argmax(net.forward(x)))
        samples = rng.random((20000, x.size))
        out = net.forward(samples)
        wrong = np.argmax(out, axis=1) != c
        for norm, ord_ in (("l1", 1), ("linf", np.inf)):
            ans = oracle.min_distortion(net, x, c, norm)
            if wrong.any():
                assert ans.feasible
                assert ans.value <= np.linalg.norm(samples[wrong] - x, ord=ord_, axis=1).min() + 1e-12
            if ans.feasible:
                assert class_gap(net.forward(ans.x), c) >= -1e-7
                assert abs(np.linalg.norm(ans.x - x, ord=ord_) - ans.value) <= 1e-9
        lo, hi = oracle.linf_ball(x, 0.2)
        gap = oracle.max_gap(net, c, lo, hi)
        ball = lo + rng.random((20000, x.size)) * (hi - lo)
        ob = net.forward(ball)
        assert gap.value >= (np.max(np.delete(ob, c, axis=1), axis=1) - ob[:, c]).max() - 1e-12
        t = int(np.argsort(-net.forward(x))[1])
        best = oracle.max_logit(net, x, t, budget=1.0)
        near = samples[np.abs(samples - x).sum(axis=1) <= 1.0]
        on = net.forward(near)
        wins = np.argmax(on, axis=1) == t
        if wins.any():
            assert best.feasible and best.value >= on[wins, t].max() - 1e-12


def test_oracle_backends_agree():
    pytest.importorskip("scipy")
    for seed in range(3):
        net, x, _ = tiny_case(seed)
        c = int(np.argmax(net.forward(x)))
        lo, hi = oracle.linf_ball(x, 0.2)

        def answers():
            return [oracle.min_distortion(net, x, c, "l1").value, oracle.min_distortion(net, x, c, "linf").value,
                    oracle.max_gap(net, c, lo, hi).value]

        mine = answers()
        try:
            oracle.BACKEND = "scipy"
            other = answers()
        finally:
            oracle.BACKEND = "highs"
        for a, b in zip(mine, other):
            assert (math.isinf(a) and a == b) or abs(a - b) <= 1e-7, (mine, other)


# --------------------------------------------------------------------------- minimal distortion
@pytest.mark.parametrize("targeted", [False, True], ids=["untargeted", "targeted"])
@pytest.mark.parametrize("norm", ["l1", "linf"])
def test_minimal_distortion_matches_oracle(norm, targeted):
    counts = {Verdict.FOUND: 0, Verdict.ROBUST: 0}
    slow_cases = []
    base = {"l1": 0, "linf": 1000}[norm] + (500 if targeted else 0)
    for seed in range(base, base + 16):
        net, x, rng = tiny_case(seed)
        logits = net.forward(x)
        c = int(np.argmax(logits))
        # targeted: mostly the runner-up class (often reachable), sometimes the last one
        t = int(np.argsort(-logits)[1 if seed % 3 else 2]) if targeted else None
        pert = None
        if seed % 3 == 2:  # extra limits: an L-inf cap or a mask, often making it impossible
            if seed % 2:
                pert = Perturbation(linf_cap=float(rng.uniform(0.02, 0.3)))
            else:
                mask = np.zeros(x.size, dtype=bool)
                mask[rng.choice(x.size, 1 + seed % 2, replace=False)] = True
                pert = Perturbation(mask=mask)
        lo, hi = perturbation_box(x, pert)
        truth = oracle.min_distortion(net, x, c, norm, target=t, lo=lo, hi=hi)
        res = minimal_distortion(net, x, norm, target=t, perturbation=pert, time_limit=60)
        where = f"seed {seed}: oracle {truth.value}, got {res.summary()}"
        if truth.feasible:
            assert res.verdict == Verdict.FOUND, where
            assert res.lower_bound <= truth.value + 1e-6, where
            assert res.distance >= truth.value - 1e-6, where
            # the witness must beat class c by DEFAULT_MARGIN: it is the boundary optimum pushed a hair
            # out (<= 1 %), or the optimum with that margin, which is further out where the gap grows slowly
            if res.distance > truth.value * (1 + 1e-2) + 1e-3:
                with_margin = oracle.min_distortion(net, x, c, norm, target=t, lo=lo, hi=hi, margin=DEFAULT_MARGIN)
                assert res.distance <= with_margin.value * (1 + 1e-2) + 1e-6, f"{where}; with margin {with_margin.value}"
                slow_cases.append(seed)
            assert res.distance == distances(res.x_adv, x)[norm]
            assert_witness(net, res, c, lo, hi, t, DEFAULT_MARGIN)
        else:
            assert res.verdict == Verdict.ROBUST, where
            assert res.x_adv is None and res.lower_bound == math.inf
        counts[res.verdict] += 1
    assert counts[Verdict.FOUND] >= 4 and counts[Verdict.ROBUST] >= 1, counts
    assert len(slow_cases) <= 2, slow_cases  # the exception stays an exception


L0_CASES = [  # (seed, targeted, masked)
    (2000, False, False), (2001, False, False), (2002, False, False), (2003, True, False),
    (2004, True, False), (2005, False, True), (2006, True, True), (2007, False, False),
]


def test_l0_minimal_distortion_matches_brute_force():
    seen = set()
    for seed, targeted, masked in L0_CASES:
        net, x, rng = tiny_case(seed, n_range=(3, 6))
        logits = net.forward(x)
        c = int(np.argmax(logits))
        t = int(np.argsort(-logits)[1]) if targeted else None
        pert = None
        if masked:
            mask = np.ones(x.size, dtype=bool)
            mask[int(rng.integers(x.size))] = False
            pert = Perturbation(mask=mask)
        lo, hi = perturbation_box(x, pert)
        exact = oracle.min_l0(net, x, c, target=t, lo=lo, hi=hi)
        with_margin = oracle.min_l0(net, x, c, target=t, lo=lo, hi=hi, margin=DEFAULT_MARGIN)
        res = minimal_distortion(net, x, "l0", target=t, perturbation=pert, time_limit=60)
        where = f"seed {seed}: oracle {exact.value}/{with_margin.value}, got {res.summary()}"
        if exact.feasible:
            assert res.verdict == Verdict.FOUND, where
            assert res.lower_bound <= exact.value, where
            assert exact.value <= res.distance <= with_margin.value, where
            assert res.distance == np.count_nonzero(res.x_adv - x)
            assert_witness(net, res, c, lo, hi, t, DEFAULT_MARGIN)
            seen.add(int(exact.value))
        else:
            assert res.verdict == Verdict.ROBUST, where
            seen.add(None)
    assert len(seen) >= 2, seen  # the cases are not all alike


# --------------------------------------------------------------------------- verification
def _verify_cases():
    """(seed, eps): random radii and radii within a few percent of the exact minimal L-inf
    distortion (the hard cases near the decision boundary)."""
    cases = []
    for seed in range(3000, 3040):
        net, x, rng = tiny_case(seed)
        c = int(np.argmax(net.forward(x)))
        r = oracle.min_distortion(net, x, c, "linf").value
        if seed % 2 or not math.isfinite(r):
            eps = float(rng.choice([0.05, 0.1, 0.2, 0.35, 0.5]))
        else:
            eps = r * float(rng.choice([0.9, 0.97, 1.03, 1.1]))
        cases.append((seed, eps))
    return cases


VERIFY_CASES = _verify_cases()


def _check_verify(net, x, c, res, truth, lo, hi, where, budget=None):
    if truth.value > 1e-7:  # a counterexample exists: never robust (soundness)
        assert res.verdict != Verdict.ROBUST, where
    if truth.value > 1e-5:
        assert res.verdict == Verdict.NOT_ROBUST, where
    if truth.value < -1e-5:
        assert res.verdict == Verdict.ROBUST, where
    if res.verdict == Verdict.NOT_ROBUST:
        assert_witness(net, res, c, lo, hi)
        assert class_gap(res.adv_logits, c) <= truth.value + 1e-9, "witness beats the exact maximum"
        if budget is not None:
            assert np.abs(res.x_adv - x).sum() <= budget * (1 + 1e-12)
    else:
        assert res.x_adv is None


@pytest.mark.parametrize("attack", [True, False], ids=["attack", "milp-only"])
def test_verify_robustness_linf_matches_oracle(attack):
    verdicts = {v: 0 for v in Verdict}
    milp_decided = 0
    for seed, eps in VERIFY_CASES:
        net, x, _ = tiny_case(seed)
        c = int(np.argmax(net.forward(x)))
        lo, hi = oracle.linf_ball(x, eps)
        truth = oracle.max_gap(net, c, lo, hi)
        res = verify_robustness(net, x, eps, attack=attack, time_limit=60, **({} if attack else {"split": False, "branch": False}))
        _check_verify(net, x, c, res, truth, lo, hi, f"seed {seed} eps {eps}: oracle gap {truth.value}, {res.summary()}")
        verdicts[res.verdict] += 1
        milp_decided += bool(res.solves) and res.verdict != Verdict.UNKNOWN
    assert verdicts[Verdict.ROBUST] >= 10 and verdicts[Verdict.NOT_ROBUST] >= 10, verdicts
    assert verdicts[Verdict.UNKNOWN] <= 2, verdicts
    if not attack:
        assert milp_decided >= 15, milp_decided  # the MILP, not the bounds or the attack, decided these


def test_verify_robustness_l1_matches_oracle():
    verdicts = {v: 0 for v in Verdict}
    for seed in range(3100, 3120):
        net, x, rng = tiny_case(seed)
        c = int(np.argmax(net.forward(x)))
        r = oracle.min_distortion(net, x, c, "l1").value
        eps = r * float(rng.choice([0.9, 1.1])) if math.isfinite(r) else 0.5
        truth = oracle.max_gap(net, c, np.zeros(x.size), np.ones(x.size), x0=x, norm="l1", budget=eps)
        res = verify_robustness(net, x, eps, "l1", time_limit=60)
        _check_verify(net, x, c, res, truth, 0.0, 1.0, f"seed {seed} eps {eps}: oracle {truth.value}, {res.summary()}",
                      budget=eps)
        verdicts[res.verdict] += 1
    assert verdicts[Verdict.ROBUST] >= 3 and verdicts[Verdict.NOT_ROBUST] >= 3, verdicts


def _case_v2(seed):
    """The generator the two regression cases below were found with."""
    rng = np.random.default_rng(seed)
    n, h1, h2 = (int(v) for v in rng.integers(3, 7, size=3))
    return Network.random([n, h1, h2, N_CLASSES], seed=seed), rng.random(n)


@pytest.mark.parametrize("attack", [True, False], ids=["attack", "milp-only"])
def test_verify_finds_a_counterexample_below_the_default_margin(attack):
    """Regression: the best counterexample beats the class by 5e-5 < DEFAULT_MARGIN; the two
    feasibility MILPs (slack, margin) cannot return it, so this was ``unknown`` instead of
    ``not_robust``."""
    net, x = _case_v2(131)
    c = int(np.argmax(net.forward(x)))
    lo, hi = oracle.linf_ball(x, 0.35)
    truth = oracle.max_gap(net, c, lo, hi)
    assert 1e-5 < truth.value < DEFAULT_MARGIN
    res = verify_robustness(net, x, 0.35, attack=attack)
    assert res.verdict == Verdict.NOT_ROBUST, res.summary()
    assert_witness(net, res, c, lo, hi)


# --------------------------------------------------------------------------- maximal confidence
def test_max_confidence_retry_loses_almost_nothing():
    """Regression: the optimum sits on the margin row and misses it by rounding (gap 1e-4 - 1e-17);
    the retry used a 10x margin and lost 3.3e-3 of the logit."""
    net, x = _case_v2(204)
    exact = oracle.max_logit(net, x, 2, budget=1.0, margin=DEFAULT_MARGIN)
    res = max_confidence(net, x, 2, eps=1.0)
    assert res.verdict == Verdict.FOUND
    assert exact.value - 1e-5 <= res.objective <= exact.value + 1e-6, (res.objective, exact.value)
    assert res.objective_bound >= exact.value - 1e-9


def test_max_confidence_matches_oracle():
    verdicts = {v: 0 for v in Verdict}
    for seed in range(4000, 4024):
        net, x, rng = tiny_case(seed)
        logits = net.forward(x)
        c = int(np.argmax(logits))
        samples = rng.random((3000, x.size))
        cls = net.predict_class(samples)
        others = [k for k in range(N_CLASSES) if k != c and np.any(cls == k)]
        if others and seed % 4:  # a reachable target, budget around its nearest sample
            t = int(rng.choice(others))
            budget = float(np.abs(samples[cls == t] - x).sum(axis=1).min() * rng.uniform(0.9, 1.5))
        else:
            t, budget = int(np.argsort(-logits)[1]), float(rng.choice([0.3, 0.6, 1.0]))
        exact = oracle.max_logit(net, x, t, budget=budget)  # target wins by > 0
        exact_m = oracle.max_logit(net, x, t, budget=budget, margin=DEFAULT_MARGIN)  # by the margin
        res = max_confidence(net, x, t, eps=budget, time_limit=60)
        where = f"seed {seed}: oracle {exact.value}/{exact_m.value}, {res.summary()}"
        if exact_m.feasible:
            assert res.verdict == Verdict.FOUND, where
            value = float(net.forward(res.x_adv)[t])
            assert res.objective == value
            assert value <= exact.value + 1e-6, where
            assert res.objective_bound >= exact_m.value - 1e-6, where
            assert value >= exact_m.value - 1e-3, where
            assert np.abs(res.x_adv - x).sum() <= budget * (1 + 1e-12)
            assert_witness(net, res, c, 0.0, 1.0, t, DEFAULT_MARGIN)
        elif not exact.feasible:
            assert res.verdict == Verdict.ROBUST, where
            assert res.x_adv is None
        verdicts[res.verdict] += 1
    assert verdicts[Verdict.FOUND] >= 8 and verdicts[Verdict.ROBUST] >= 3, verdicts


# --------------------------------------------------------------------------- every status
HARD_CAP = Perturbation(linf_cap=0.1)


def _hard_robust_instance():
    """A 20-40-40-10 network and a point whose class survives every change of L-inf size <= 0.1
    (inside [0, 1]): a PGD attack's best gap (0.124) plus 0.5 was added to that class's bias. HiGHS
    proves it (verify_robustness: 7 MILPs, 2.6 s; minimal_distortion with that cap: 4-5 s untargeted,
    2-2.7 s towards class 1; L0 variants 0.4-0.7 s), interval bounds do not (symbolic bounds may,
    so the ``unknown`` tests ask for interval bounds). So no witness exists, and a 0.05 s time limit
    can only give ``unknown``."""
    base = Network.random([20, 40, 40, 10], seed=3)
    x = np.random.default_rng(0).random(20)
    weights = [layer.weight for layer in base.layers]
    biases = [layer.bias.copy() for layer in base.layers]
    c = int(np.argmax(base.forward(x)))
    biases[-1][c] += 0.625
    net = Network.from_arrays(weights, biases)
    assert c == 9 and int(np.argsort(-net.forward(x))[2]) == 1
    return net, x, c, 1  # 1: the target whose proof takes longest


@pytest.fixture(scope="module")
def hard():
    return _hard_robust_instance()


def _found_case(targeted, l0=False):
    for seed in range(5000, 5100):
        net, x, _ = tiny_case(seed, n_range=(3, 5) if l0 else (3, 7))
        logits = net.forward(x)
        c = int(np.argmax(logits))
        t = int(np.argsort(-logits)[1]) if targeted else None
        if oracle.min_distortion(net, x, c, "l1", target=t).feasible:
            return net, x, c, t
    raise AssertionError("no case found")  # pragma: no cover


def _robust_case(targeted):
    """A case where the mask (one free value) and a cap make any class change impossible."""
    for seed in range(5100, 5200):
        net, x, rng = tiny_case(seed)
        logits = net.forward(x)
        c = int(np.argmax(logits))
        t = int(np.argsort(-logits)[1]) if targeted else None
        mask = np.zeros(x.size, dtype=bool)
        mask[0] = True
        pert = Perturbation(mask=mask, linf_cap=0.2)
        lo, hi = perturbation_box(x, pert)
        if not oracle.min_distortion(net, x, c, "l1", target=t, lo=lo, hi=hi).feasible:
            return net, x, c, t, pert
    raise AssertionError("no case found")  # pragma: no cover


@pytest.mark.parametrize("targeted", [False, True], ids=["untargeted", "targeted"])
@pytest.mark.parametrize("norm", ["l1", "linf", "l0"])
def test_minimal_distortion_status_paths(norm, targeted, hard):
    # found
    net, x, c, t = _found_case(targeted, l0=norm == "l0")
    res = minimal_distortion(net, x, norm, target=t)
    assert res.verdict == Verdict.FOUND and res.found
    assert_witness(net, res, c, 0.0, 1.0, t, DEFAULT_MARGIN)
    assert res.distance == distances(res.x_adv, x)[norm] and 0 < res.lower_bound <= res.distance
    # robust
    net, x, c, t, pert = _robust_case(targeted)
    res = minimal_distortion(net, x, norm, target=t, perturbation=pert)
    assert res.verdict == Verdict.ROBUST and res.x_adv is None and res.distance is None
    assert res.lower_bound == math.inf  # proofs only: by bounds or infeasible MILPs
    assert all(s.status == Status.INFEASIBLE for s in res.solves)
    # unknown: a tiny time limit on a hard instance, with the change capped so that no witness exists
    net, x, c, hard_target = hard
    t = hard_target if targeted else None
    for limit in (1e-3, 0.05):  # 1e-3: used up before any solve; 0.05: the solver hits the limit
        res = minimal_distortion(net, x, norm, target=t, perturbation=HARD_CAP, time_limit=limit,
                                 bound_method="interval", attack=False, branch=False)  # the MILP path
        assert res.verdict == Verdict.UNKNOWN, res.summary()
        assert res.x_adv is None and res.distance is None
        assert res.lower_bound is not None and res.lower_bound < math.inf


@pytest.mark.parametrize("norm", ["linf", "l1", "l0"])
def test_verify_robustness_status_paths(norm, hard):
    found = None
    for seed in range(5200, 5300):  # a case robust at a small radius, not robust at a large one
        net, x, _ = tiny_case(seed, n_range=(3, 5))
        c = int(np.argmax(net.forward(x)))
        if norm == "l0":
            if oracle.min_l0(net, x, c).value == 2:
                found = (net, x, c, 1, 2)
        else:
            r = oracle.min_distortion(net, x, c, norm).value
            if math.isfinite(r) and r > 0.05:
                found = (net, x, c, 0.7 * r, 1.3 * r)
        if found:
            break
    net, x, c, small, large = found
    res = verify_robustness(net, x, small, norm, attack=False)
    assert res.verdict == Verdict.ROBUST and res.x_adv is None, res.summary()
    res = verify_robustness(net, x, large, norm, attack=False)
    assert res.verdict == Verdict.NOT_ROBUST, res.summary()
    assert_witness(net, res, c, 0.0, 1.0)
    assert res.distances[norm] <= large * (1 + 1e-12)
    # unknown
    net, x, _, _ = hard
    eps = {"linf": 0.1, "l1": 2.0, "l0": 6}[norm]
    for limit in (1e-3, 0.05):
        res = verify_robustness(net, x, eps, norm, perturbation=None if norm == "linf" else HARD_CAP, attack=False,
                                time_limit=limit, bound_method="interval", branch=False)  # the MILP path
        assert res.verdict == Verdict.UNKNOWN, res.summary()
        assert res.x_adv is None


def test_max_confidence_status_paths(hard):
    net, x, c, t = _found_case(True)
    res = max_confidence(net, x, t, eps=float(x.size))
    assert res.verdict == Verdict.FOUND
    assert_witness(net, res, c, 0.0, 1.0, t, DEFAULT_MARGIN)
    net, x, c, t, pert = _robust_case(True)
    res = max_confidence(net, x, t, eps=0.2, perturbation=pert)
    assert res.verdict == Verdict.ROBUST and res.x_adv is None
    net, x, _, t = hard
    for limit in (1e-3, 0.05):  # 1e-3: the time is used up before the solver runs
        res = max_confidence(net, x, t, eps=5.0, perturbation=HARD_CAP, time_limit=limit, bound_method="interval")
        assert res.verdict == Verdict.UNKNOWN and res.x_adv is None and res.objective is None, res.summary()


def test_input_already_misclassified():
    """With a label that is not the predicted class, the input itself is the answer (distance 0)."""
    net, x, c, _ = _found_case(False)
    wrong = (c + 1) % N_CLASSES
    res = minimal_distortion(net, x, "l1", label=wrong)
    assert res.verdict == Verdict.FOUND and res.distance == 0 and res.lower_bound == 0
    np.testing.assert_array_equal(res.x_adv, x)
    res = verify_robustness(net, x, 0.01, label=wrong)
    assert res.verdict == Verdict.NOT_ROBUST and res.adversarial_class != wrong


# --------------------------------------------------------------------------- witness checks
def test_check_witness_rejects_bad_points():
    net, x, c, _ = _found_case(False)
    box = Box.uniform(x.size)
    kw = dict(domain=box, original_class=c)
    bad_class = check_witness(net, x, **kw)  # x itself: still class c
    assert not bad_class.ok and "margin" in bad_class.reason
    outside = x.copy()
    outside[0] = 1.5
    chk = check_witness(net, outside, **kw)
    assert not chk.ok and "outside" in chk.reason
    nan = x.copy()
    nan[1] = np.nan
    chk = check_witness(net, nan, **kw)
    assert not chk.ok and "NaN" in chk.reason
    chk = check_witness(net, x[:1], **kw)  # a wrong-length point (would broadcast)
    assert not chk.ok and "values" in chk.reason
    # a real adversarial point passes, and fails again with a budget it breaks or a large margin
    truth = oracle.min_distortion(net, x, c, "l1", margin=1e-3)
    assert truth.feasible
    assert check_witness(net, truth.x, **kw).ok
    assert not check_witness(net, truth.x, margin=1.0, **kw).ok
    assert not check_witness(net, truth.x, extra=lambda p: "over budget", **kw).ok
    assert not check_witness(net, truth.x, domain=Box.point(x), original_class=c).ok


def test_fabricated_solver_witness_is_not_reported(monkeypatch):
    """A solver point that is not adversarial (here: the original input) is never reported."""
    net, x, c, t = _found_case(True)
    big = 1.5 * oracle.min_distortion(net, x, c, "linf").value
    honest = [minimal_distortion(net, x, "l1", attack=False), verify_robustness(net, x, big, attack=False),
              max_confidence(net, x, t, eps=float(x.size))]
    assert [r.verdict for r in honest] == [Verdict.FOUND, Verdict.NOT_ROBUST, Verdict.FOUND]
    monkeypatch.setattr(AdversarialModel, "point", lambda self: self.x0.copy())  # the solver "lies"
    from reluverify.engine.milp import NetworkMilp

    real_solve = NetworkMilp.solve
    monkeypatch.setattr(NetworkMilp, "solve", lambda self, t: (real_solve(self, t)[0], x.copy()))  # here too
    res = minimal_distortion(net, x, "l1", attack=False)  # no gradient attack: only MILP points
    assert res.verdict == Verdict.UNKNOWN, res.summary()
    assert res.x_adv is None and res.distance is None
    objectives = [s.objective for s in res.solves if s.objective is not None]
    assert objectives and res.distance not in objectives
    assert res.lower_bound <= honest[0].distance + 1e-9  # the bound is still the solver's proven one
    assert "rejected" in res.message
    # verification with the attack and the branching off: only the (fake) MILP points are offered
    res = verify_robustness(net, x, big, attack=False, split=False, branch=False)
    assert res.verdict == Verdict.UNKNOWN and res.x_adv is None, res.summary()
    res = max_confidence(net, x, t, eps=float(x.size))
    assert res.verdict == Verdict.UNKNOWN and res.objective is None and res.x_adv is None, res.summary()
    assert "rejected" in res.message


# --------------------------------------------------------------------------- solvers agree
@pytest.fixture(scope="module")
def mnist_seed():
    from reluverify.datasets import load_mnist
    from reluverify.zoo import seed_mlp

    return seed_mlp(), load_mnist()


_SEED_INSTANCES = [(0, 0.01), (1, 0.01), (2, 0.01),  # the easy radius (bounds may decide alone)
                   (0, 0.03), (3, 0.03), (10, 0.03)]  # MILPs decide (HiGHS: robust, not robust, robust)


def _seed_verify(net, data, i, eps, solver):
    x, y = data.x_test[i], int(data.y_test[i])
    # interval bounds leave work to the MILPs (symbolic bounds decide most of these alone)
    res = verify_robustness(net, x, eps, label=y, solver=solver, attack=False, time_limit=120, bound_method="interval",
                            branch=False)
    assert res.verdict in (Verdict.ROBUST, Verdict.NOT_ROBUST), f"image {i} eps {eps}: {res.summary()}"
    if res.verdict == Verdict.NOT_ROBUST:
        assert_witness(net, res, y, np.maximum(x.ravel() - eps, 0), np.minimum(x.ravel() + eps, 1))
    assert all(s.solver == solver for s in res.solves)
    return res


@pytest.fixture(scope="module")
def seed_highs(mnist_seed):
    net, data = mnist_seed
    return [_seed_verify(net, data, i, eps, "highs") for i, eps in _SEED_INSTANCES]


@pytest.mark.parametrize("solver", ALL_SOLVERS)
def test_solvers_agree_on_seed_network(solver, mnist_seed, seed_highs):
    net, data = mnist_seed
    got = seed_highs if solver == "highs" else [_seed_verify(net, data, i, eps, solver) for i, eps in _SEED_INSTANCES]
    assert [r.verdict for r in got] == [r.verdict for r in seed_highs]
    by_milp = {r.verdict for r in got if r.solves}
    assert by_milp == {Verdict.ROBUST, Verdict.NOT_ROBUST}  # the solver itself decided both kinds


@pytest.mark.parametrize("solver", ALL_SOLVERS)
def test_solvers_agree_on_minimal_distortion(solver):
    net, x, c, _ = _found_case(False)
    truth = oracle.min_distortion(net, x, c, "l1").value
    res = minimal_distortion(net, x, "l1", solver=solver)
    highs = minimal_distortion(net, x, "l1", solver="highs")
    assert res.verdict == highs.verdict == Verdict.FOUND
    assert abs(res.distance - highs.distance) <= 1e-4
    assert abs(res.lower_bound - truth) <= 1e-4 and res.distance >= truth - 1e-6
    assert all(s.solver == solver for s in res.solves)


# --------------------------------------------------------------------------- typed errors
def test_typed_errors():
    net, x, _ = tiny_case(7000)
    n = x.size
    c = int(np.argmax(net.forward(x)))
    other = (c + 1) % N_CLASSES
    for eps in (0.0, -0.1, float("nan"), float("inf")):
        with pytest.raises(InputError, match="eps"):
            verify_robustness(net, x, eps)
    with pytest.raises(InputError, match="whole"):
        verify_robustness(net, x, 1.5, "l0")
    with pytest.raises(InputError, match="eps"):
        max_confidence(net, x, other, eps=-1.0)
    with pytest.raises(InputError, match="eps"):
        max_confidence(net, x, other, eps=float("nan"))
    with pytest.warns(DeprecationWarning, match="eps= and norm="), pytest.raises(InputError, match="eps"):
        max_confidence(net, x, other, budget=-1.0)  # the old name still works (and says the new one)
    with pytest.warns(DeprecationWarning), pytest.raises(InputError, match="once"):
        max_confidence(net, x, other, eps=0.5, budget=0.5)
    with pytest.raises(InputError, match="budget"):
        Perturbation(budget=-0.5)
    for call in (lambda: minimal_distortion(net, x, "l2"), lambda: verify_robustness(net, x, 0.1, "l7"),
                 lambda: max_confidence(net, x, other, eps=0.5, norm="l3")):
        with pytest.raises(InputError, match="unknown norm"):
            call()
    with pytest.raises(InputError, match="equals the true class"):
        minimal_distortion(net, x, target=c)
    with pytest.raises(InputError, match="equals the true class"):
        max_confidence(net, x, c, eps=0.5)
    for bad in (N_CLASSES, -1, 1.5):
        with pytest.raises(InputError, match="target"):
            minimal_distortion(net, x, target=bad)
    with pytest.raises(InputError, match="label"):
        verify_robustness(net, x, 0.1, label=N_CLASSES)
    outside = x.copy()
    outside[0] = 1.5
    for call in (lambda v: minimal_distortion(net, v), lambda v: verify_robustness(net, v, 0.1),
                 lambda v: max_confidence(net, v, other, eps=0.5)):
        with pytest.raises(InputError, match="outside its valid box"):
            call(outside)
    nan = x.copy()
    nan[0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        minimal_distortion(net, nan)
    with pytest.raises(InputError, match="NaN"):
        verify_robustness(net, nan, 0.1)
    with pytest.raises(InputError, match="takes"):
        minimal_distortion(net, np.append(x, 0.5))
    with pytest.raises(InputError, match="takes"):
        verify_robustness(net, x[:-1], 0.1)
    with pytest.raises(InputError, match="mask has"):
        minimal_distortion(net, x, perturbation=Perturbation(mask=np.ones(n + 1, dtype=bool)))
    with pytest.raises(InputError, match="mask has"):
        verify_robustness(net, x, 0.1, perturbation=Perturbation(mask=np.ones(n - 1, dtype=bool)))
    with pytest.raises(InputError, match="allows no value"):
        Perturbation(mask=np.zeros(n, dtype=bool))
    for limit in (0, -1.0, float("nan")):
        for call in (lambda: minimal_distortion(net, x, time_limit=limit),
                     lambda: verify_robustness(net, x, 0.1, time_limit=limit),
                     lambda: max_confidence(net, x, other, eps=0.5, time_limit=limit)):
            with pytest.raises(InputError, match="time_limit"):
                call()
    for call in (lambda: minimal_distortion(net, x, solver="glpk"), lambda: verify_robustness(net, x, 0.1, solver="cplex"),
                 lambda: max_confidence(net, x, other, eps=0.5, solver="nope")):
        with pytest.raises(UnknownSolverError):
            call()


def test_hard_instance_is_robust(hard):
    """The premise of the ``unknown`` tests: with time, the hard instance is proven robust."""
    net, x, c, _ = hard
    res = verify_robustness(net, x, 0.1, attack=False, time_limit=120, bound_method="interval", branch=False)
    assert res.verdict == Verdict.ROBUST and len(res.solves) >= 3, res.summary()
