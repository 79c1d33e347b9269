"""Differential soundness tests: reluverify against the brute-force oracle (tests/oracle.py) and the
float64 forward pass, on random tiny networks drawn by hypothesis.

The oracle enumerates activation patterns and solves one LP per pattern; it shares nothing with the
library but ``Network.forward`` and the weights. Each hypothesis example is one random network (at
most 12 hidden ReLUs, 1-2 hidden layers, 2-4 classes, weights of one of several *styles*: plain
Gaussian, quantised to multiples of 1/2 (ties, zero rows, parallel hyperplanes), sparse, rescaled
by up to 100, with duplicated neurons and logits), one input (interior, on a dyadic grid touching
the box faces, or on a ReLU's kink) and one question:

* ``minimal_distortion`` (L1 or L-inf, untargeted or targeted, with an L-inf cap, a mask or a wider
  valid box): ``robust`` only when the oracle finds nothing; ``lower_bound`` (a certified radius)
  never above the exact value; a found witness re-checked here and within 1 % of the exact value
  (or of the exact value with ``DEFAULT_MARGIN``, which the witness must reach);
* ``verify_robustness`` at radii from 0.5x to 2x the exact minimal distortion, including
  ``r (1 +- 1e-6)`` and ``r`` itself: never ``robust`` when the oracle's maximal gap over the ball is
  positive (the oracle's point is a real float64 counterexample), never ``not_robust`` without a
  re-checked witness; ``unknown`` is allowed and counted;
* ``max_confidence`` (a third of the examples): never ``robust`` when the target can win by more
  than ``DEFAULT_MARGIN``, the reported logit never above the exact maximum, ``objective_bound``
  never below it.

The fast set runs in the default suite; the slow set (``pytest -m slow``) runs
``$RELUVERIFY_SOUNDNESS_CASES`` examples (default 5,000) on HiGHS and
``$RELUVERIFY_SOUNDNESS_OTHER_CASES`` (500) each on CBC and Gurobi, with fixed seeds, so every run
draws the same cases. Inference (MILP with binaries vs the forward pass) is checked on 1,000
random networks here as well. Counts are recorded as the ``soundness`` user property of each test
(``docs/make_soundness.py`` sums them).
"""

from __future__ import annotations

import importlib.util
import math
import os
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

import oracle
from reluverify import Box, LicenseLimitError, Network, Status
from reluverify.check import class_gap, distances, target_gap
from reluverify.domain import Perturbation
from reluverify.problems import max_confidence, minimal_distortion, verify_robustness
from reluverify.problems.inference import infer
from reluverify.results import Verdict
from reluverify.solvers import available_solvers
from reluverify.tolerances import DEFAULT_MARGIN, INFERENCE_TOLERANCE, VERIFY_SLACK

FAST_CASES = int(os.environ.get("RELUVERIFY_SOUNDNESS_FAST_CASES", "200"))
SLOW_CASES = int(os.environ.get("RELUVERIFY_SOUNDNESS_CASES", "5000"))
INFERENCE_CASES = int(os.environ.get("RELUVERIFY_INFERENCE_CASES", "1000"))
OTHER_SOLVER_CASES = int(os.environ.get("RELUVERIFY_SOUNDNESS_OTHER_CASES", "500"))
STYLES = ("normal", "quantised", "sparse", "scaled", "duplicate")
X_STYLES = ("interior", "grid", "kink")
EPS_FACTORS = (0.5, 0.9, 0.99, 1 - 1e-6, 1.0, 1 + 1e-6, 1.01, 1.1, 2.0)
TIME_LIMIT = 60.0


class Disagreement(AssertionError):
    """reluverify contradicts the oracle (or its own witness check)."""


ORACLE_FALLBACKS = Counter()  # oracle questions re-asked through SciPy after a HiGHS LP failure


def ask_oracle(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` of tests/oracle.py; when one of its LPs fails in highspy (seen once in
    5,000 networks: status ``kUnknown``), the question is asked again through SciPy's HiGHS
    wrapper (``oracle.BACKEND = "scipy"``), an independent path to the same LPs."""
    try:
        return fn(*args, **kwargs)
    except RuntimeError as exc:
        if "oracle LP failed" not in str(exc) or importlib.util.find_spec("scipy") is None:
            raise
    ORACLE_FALLBACKS["scipy"] += 1
    oracle.BACKEND = "scipy"
    try:
        return fn(*args, **kwargs)
    finally:
        oracle.BACKEND = "highs"


# --------------------------------------------------------------------------- random cases
def random_network(rng: np.random.Generator, sizes, style: str) -> Network:
    """A ReLU network with layer sizes ``sizes`` whose weights follow ``style``."""
    weights, biases = [], []
    twin_logits = rng.random() < 0.3  # "duplicate": identical logits everywhere, in 30 % of networks
    for k, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        W = rng.normal(0.0, 1.0 / math.sqrt(a), size=(b, a))
        bias = rng.normal(0.0, 0.3, size=b)
        if style == "quantised":  # ties, zero rows, parallel hyperplanes
            W = rng.integers(-4, 5, size=(b, a)) * 0.5
            bias = rng.integers(-2, 3, size=b) * 0.25
        elif style == "sparse":
            W = W * (rng.random((b, a)) < 0.5)
            bias = bias * (rng.random(b) < 0.5)
        elif style == "scaled":  # big and small big-M constants
            s = 10.0 ** rng.uniform(-1.5, 2.0)
            W, bias = W * s, bias * s
        elif style == "duplicate" and b > 1 and (k < len(sizes) - 2 or twin_logits):  # identical neurons
            i, j = rng.choice(b, 2, replace=False)
            W[j], bias[j] = W[i], bias[i]
        weights.append(W)
        biases.append(bias)
    return Network.from_arrays(weights, biases)


def random_input(rng: np.random.Generator, net: Network, style: str) -> tuple:
    """``(network, x)``: ``x`` in ``[0, 1]^n``; ``kink`` moves a first-layer bias so that one ReLU's
    pre-activation at ``x`` is zero (up to rounding)."""
    n = net.n_inputs
    if style == "grid":
        return net, rng.integers(0, 5, size=n) / 4.0
    x = rng.random(n)
    if style == "kink":
        weights = [L.weight for L in net.layers]
        biases = [L.bias.copy() for L in net.layers]
        i = int(rng.integers(weights[0].shape[0]))
        biases[0][i] = -float(weights[0][i] @ x)
        net = Network.from_arrays(weights, biases)
    return net, x


def shift_boundary(rng: np.random.Generator, net: Network, x: np.ndarray) -> Network:
    """Raise one logit's bias so that it wins at a random point ``z`` of the box but not at ``x``:
    random small networks often give one class the whole box, and then every question is
    trivially robust. Tries a few ``z``; returns ``net`` unchanged if none works."""
    c = int(np.argmax(net.forward(x)))
    for _ in range(8):
        z = rng.random(net.n_inputs)
        out = net.forward(z)
        j = int(np.argmax(np.where(np.arange(out.size) == c, -np.inf, out)))
        need = float(out[c] - out[j])
        if need <= 0:
            return net  # z is already classified otherwise
        biases = [L.bias.copy() for L in net.layers]
        biases[-1][j] += need + float(rng.uniform(0.0, 0.5)) * min(need, max(1e-2, float(np.ptp(out))))
        shifted = Network.from_arrays([L.weight for L in net.layers], biases)
        if int(np.argmax(shifted.forward(x))) == c:
            return shifted
    return net


@dataclass
class Case:
    """One random network, input and question."""

    seed: int
    sizes: tuple
    style: str
    x_style: str
    norm: str
    target_pick: int | None  # None: untargeted; k: the k-th best other class
    limit: str  # "none", "cap", "mask", "valid"
    eps_factor: float
    attack: bool
    bound_method: str
    with_confidence: bool
    shift: bool = False  # move a decision boundary into the box (more reachable classes)

    def build(self):
        rng = np.random.default_rng(self.seed)
        net = random_network(rng, self.sizes, self.style)
        net, x = random_input(rng, net, self.x_style)
        if self.shift:
            net = shift_boundary(rng, net, x)
        return net, x, rng

    def __repr__(self) -> str:  # hypothesis prints this for a failing example
        return (f"Case(seed={self.seed}, sizes={self.sizes}, style={self.style!r}, x_style={self.x_style!r}, "
                f"norm={self.norm!r}, target_pick={self.target_pick}, limit={self.limit!r}, "
                f"eps_factor={self.eps_factor!r}, attack={self.attack}, bound_method={self.bound_method!r}, "
                f"with_confidence={self.with_confidence}, shift={self.shift})")


@st.composite
def cases(draw):
    n_in = draw(st.integers(1, 5))
    depth = draw(st.integers(1, 2))
    hidden = [draw(st.integers(1, 6 if depth == 2 else 12)) for _ in range(depth)]
    n_out = draw(st.integers(2, 4))
    return Case(
        seed=draw(st.integers(0, 2**32 - 1)),
        sizes=tuple([n_in] + hidden + [n_out]),
        style=draw(st.sampled_from(STYLES)),
        x_style=draw(st.sampled_from(X_STYLES)),
        norm=draw(st.sampled_from(("l1", "linf"))),
        target_pick=draw(st.one_of(st.none(), st.integers(0, n_out - 2))),
        limit=draw(st.sampled_from(("none", "none", "cap", "mask", "valid"))),
        eps_factor=draw(st.sampled_from(EPS_FACTORS)),
        attack=draw(st.booleans()),
        bound_method=draw(st.sampled_from(("symbolic", "interval"))),
        with_confidence=draw(st.integers(0, 2)) == 0,
        shift=draw(st.integers(0, 4)) > 0,
    )


def perturbation_for(case: Case, x: np.ndarray, rng: np.random.Generator):
    """``(perturbation, lo, hi)``: the library's perturbation and the allowed box computed here."""
    n = x.size
    lo, hi = np.zeros(n), np.ones(n)
    if case.limit == "cap":
        cap = float(rng.uniform(0.02, 0.4))
        return Perturbation(linf_cap=cap), np.maximum(lo, x - cap), np.minimum(hi, x + cap)
    if case.limit == "mask":
        mask = rng.random(n) < 0.6
        mask[int(rng.integers(n))] = True
        return Perturbation(mask=mask), np.where(mask, lo, x), np.where(mask, hi, x)
    if case.limit == "valid":
        lo, hi = np.full(n, -0.5), np.full(n, 1.5)
        return Perturbation(valid=Box(lo, hi)), lo, hi
    return None, lo, hi


# --------------------------------------------------------------------------- checks
def check_witness_here(net, res, c, lo, hi, target=None, margin=0.0, budget=None, x0=None):
    """Re-check a reported witness from scratch (domain, forward pass, recomputed numbers)."""
    x_adv = res.x_adv
    if x_adv is None or not np.all(np.isfinite(x_adv)):
        raise Disagreement(f"{res.verdict} without a finite witness")
    if not (np.all(x_adv >= lo) and np.all(x_adv <= hi)):
        raise Disagreement("witness outside its domain")
    if budget is not None and np.abs(x_adv - x0).sum() > budget * (1 + 1e-12):
        raise Disagreement(f"witness exceeds the L1 budget {budget}: {np.abs(x_adv - x0).sum()}")
    logits = net.forward(x_adv)
    if not np.array_equal(res.adv_logits, logits):
        raise Disagreement("reported logits are not the forward pass of the witness")
    gap = class_gap(logits, c) if target is None else target_gap(logits, target)
    if not (gap > 0 and gap >= margin):
        raise Disagreement(f"witness does not change the class by {margin} in float64 (gap {gap})")
    if res.distances != distances(x_adv, res.x):
        raise Disagreement("reported distances are not recomputed from the witness")
    return gap


def check_minimal_distortion(case, net, x, c, rng, stats, solver="highs"):
    logits = net.forward(x)
    t = None
    if case.target_pick is not None:
        others = [j for j in np.argsort(-logits, kind="stable").tolist() if j != c]
        t = others[case.target_pick]
    pert, lo, hi = perturbation_for(case, x, rng)
    box = dict(target=t, lo=lo, hi=hi)
    truth = ask_oracle(oracle.min_distortion, net, x, c, case.norm, **box)
    res = minimal_distortion(net, x, case.norm, target=t, perturbation=pert, time_limit=TIME_LIMIT,
                             attack=case.attack, bound_method=case.bound_method, solver=solver)
    stats[f"md_{res.verdict}"] += 1
    tol = 1e-6 * max(1.0, truth.value if truth.feasible else 1.0)
    where = f"oracle {truth.value}, got {res.summary()} (lower bound {res.lower_bound})"
    if res.lower_bound is None or res.lower_bound > truth.value + tol:
        raise Disagreement(f"certified radius above the exact minimal distortion: {where}")
    if res.verdict == Verdict.ROBUST and truth.feasible:
        raise Disagreement(f"wrong robust: {where}")
    if res.verdict == Verdict.FOUND:
        if not truth.feasible:
            raise Disagreement(f"found an example the oracle says cannot exist: {where}")
        check_witness_here(net, res, c, lo, hi, t, DEFAULT_MARGIN)
        if res.distance != distances(res.x_adv, x)[case.norm] or res.distance < truth.value - tol:
            raise Disagreement(f"distance below the exact optimum: {where}")
        if res.distance > truth.value * (1 + 1e-2) + 1e-3:
            # the witness must beat the class by DEFAULT_MARGIN: compare with that optimum
            with_margin = ask_oracle(oracle.min_distortion, net, x, c, case.norm, margin=DEFAULT_MARGIN, **box)
            if res.message.startswith("optimal") and res.distance > with_margin.value * (1 + 1e-2) + 1e-6:
                raise Disagreement(f"'optimal' distance far above the optimum with the margin "
                                   f"{with_margin.value}: {where}")
            stats["md_far_from_boundary_optimum"] += 1
        if res.message.startswith("optimal") and res.lower_bound < truth.value - 1e-5 * max(1.0, truth.value):
            # the MILP asks for out_j >= out_c - VERIFY_SLACK: its optimum is that oracle's value
            slack = ask_oracle(oracle.min_distortion, net, x, c, case.norm, margin=-VERIFY_SLACK, **box)
            if res.lower_bound < slack.value - 1e-5 * max(1.0, slack.value):
                stats["md_loose_optimal_bound"] += 1
    elif res.verdict == Verdict.UNKNOWN:
        if res.x_adv is not None:
            raise Disagreement("unknown with a witness attached")
        if truth.feasible:
            reach = ask_oracle(oracle.min_distortion, net, x, c, case.norm, margin=DEFAULT_MARGIN, **box)
            stats["md_unknown_no_margin_example" if not reach.feasible else "md_unknown_avoidable"] += 1
        else:
            stats["md_unknown_when_robust"] += 1
    stats["md_cases"] += 1
    return truth


def check_verify(case, net, x, c, stats, radius, solver="highs"):
    """One verify_robustness question at ``eps = eps_factor * radius`` (or a random radius)."""
    pert = Perturbation(valid=Box(np.full(x.size, -0.5), np.full(x.size, 1.5))) if case.limit == "valid" else None
    wide = case.limit == "valid"
    vlo, vhi = (np.full(x.size, -0.5), np.full(x.size, 1.5)) if wide else (np.zeros(x.size), np.ones(x.size))
    if math.isfinite(radius) and radius > 0:
        eps = radius * case.eps_factor
    else:
        eps = {0.5: 0.05, 0.9: 0.1, 0.99: 0.2, 1.0: 0.3, 1.01: 0.5}.get(case.eps_factor, 1.0)
    if case.norm == "linf":
        lo, hi = np.maximum(vlo, x - eps), np.minimum(vhi, x + eps)
        truth = ask_oracle(oracle.max_gap, net, c, lo, hi)
        budget = None
    else:
        lo, hi = vlo, vhi
        truth = ask_oracle(oracle.max_gap, net, c, vlo, vhi, x0=x, norm="l1", budget=eps)
        budget = eps
    res = verify_robustness(net, x, eps, case.norm, perturbation=pert, time_limit=TIME_LIMIT, attack=case.attack,
                            bound_method=case.bound_method, solver=solver)
    stats[f"verify_{res.verdict}"] += 1
    where = f"eps {eps!r}: oracle max gap {truth.value}, got {res.summary()}"
    # is the oracle's point a real counterexample (inside the ball exactly, float64 gap > 0)?
    real_cex = truth.feasible and truth.value > 0 and (budget is None or np.abs(truth.x - x).sum() <= budget)
    if res.verdict == Verdict.ROBUST:
        if real_cex or truth.value > 1e-9:
            raise Disagreement(f"wrong robust: {where}")
        if truth.value > -VERIFY_SLACK + 1e-9:
            raise Disagreement(f"robust although a point comes within VERIFY_SLACK of the class: {where}")
    elif res.verdict == Verdict.NOT_ROBUST:
        gap = check_witness_here(net, res, c, lo, hi, budget=budget, x0=x)
        if gap > truth.value + 1e-9:
            raise Disagreement(f"witness beats the oracle's exact maximum gap ({gap}): {where}")
    else:
        if res.x_adv is not None:
            raise Disagreement("unknown with a witness attached")
        if truth.value > 1e-5 or truth.value < -1e-5:
            stats["verify_unknown_avoidable"] += 1
        else:
            stats["verify_unknown_grey_zone"] += 1
    stats["verify_cases"] += 1
    stats["verify_counterexample_exists"] += bool(real_cex)


def check_confidence(case, net, x, c, rng, stats, solver="highs"):
    logits = net.forward(x)
    t = int(rng.choice([j for j in range(net.n_outputs) if j != c]))
    budget = float(rng.choice([0.1, 0.3, 0.6, 1.0, 2.0]))
    exact = ask_oracle(oracle.max_logit, net, x, t, budget=budget)
    exact_m = ask_oracle(oracle.max_logit, net, x, t, budget=budget, margin=DEFAULT_MARGIN)
    res = max_confidence(net, x, t, eps=budget, time_limit=TIME_LIMIT, bound_method=case.bound_method, solver=solver)
    stats[f"confidence_{res.verdict}"] += 1
    where = f"target {t} budget {budget}: oracle {exact.value}/{exact_m.value}, got {res.summary()}"
    if res.verdict == Verdict.ROBUST:
        beyond = ask_oracle(oracle.max_logit, net, x, t, budget=budget, margin=DEFAULT_MARGIN + 1e-6)
        if beyond.feasible:
            raise Disagreement(f"wrong robust: the target can win by more than the margin: {where}")
    elif res.verdict == Verdict.FOUND:
        check_witness_here(net, res, c, np.zeros(x.size), np.ones(x.size), t, DEFAULT_MARGIN, budget=budget, x0=x)
        value = float(net.forward(res.x_adv)[t])
        if res.objective != value or value > exact.value + 1e-6:
            raise Disagreement(f"objective not recomputed or above the exact maximum: {where}")
        if res.objective_bound is not None and res.objective_bound < exact_m.value - 1e-6:
            raise Disagreement(f"objective bound below the exact maximum: {where}")
    elif res.x_adv is not None:
        raise Disagreement("unknown with a witness attached")
    stats["confidence_cases"] += 1


def check_case(case: Case, stats: Counter, solver: str = "highs") -> None:
    net, x, rng = case.build()
    c = int(np.argmax(net.forward(x)))
    truth = check_minimal_distortion(case, net, x, c, rng, stats, solver)
    # the exact untargeted radius in the verification norm over the valid box sets the eps
    if case.target_pick is None and case.limit == "none":
        radius = truth.value
    else:
        vlo, vhi = (-0.5, 1.5) if case.limit == "valid" else (0.0, 1.0)
        radius = ask_oracle(oracle.min_distortion, net, x, c, case.norm, lo=np.full(x.size, vlo),
                            hi=np.full(x.size, vhi)).value
    check_verify(case, net, x, c, stats, radius, solver)
    if case.with_confidence:
        check_confidence(case, net, x, c, rng, stats, solver)
    stats["examples"] += 1
    stats[f"style_{case.style}"] += 1


def run_differential(n_examples: int, seed_value: int, solver: str = "highs") -> Counter:
    stats = Counter()
    fallbacks = ORACLE_FALLBACKS["scipy"]

    @seed(seed_value)
    @settings(max_examples=n_examples, derandomize=False, database=None, deadline=None, print_blob=True,
              suppress_health_check=list(HealthCheck))
    @given(case=cases())
    def run(case):
        check_case(case, stats, solver)

    run()
    stats["oracle_scipy_fallbacks"] = ORACLE_FALLBACKS["scipy"] - fallbacks
    return stats


def summarise(stats: Counter) -> dict:
    out = dict(stats)
    out["cases"] = stats["md_cases"] + stats["verify_cases"] + stats["confidence_cases"]
    out["disagreements"] = 0  # any disagreement fails the test before this line
    return out


def _assert_mix(stats: Counter, n: int) -> None:
    """The cases are not all alike (a generator that drifted would hide problems)."""
    assert stats["examples"] == n, stats
    assert stats["md_found"] >= n // 5 and stats["md_robust"] >= n // 50, stats
    assert stats["verify_robust"] >= n // 10 and stats["verify_not_robust"] >= n // 10, stats
    # unknowns are allowed, but not many where the answer is clear-cut
    assert stats["verify_unknown_avoidable"] <= max(2, n // 50), stats


def test_differential_fast(record_property):
    stats = run_differential(FAST_CASES, seed_value=20240607)
    record_property("soundness", summarise(stats))
    _assert_mix(stats, FAST_CASES)


@pytest.mark.slow
def test_differential_slow(record_property):
    stats = run_differential(SLOW_CASES, seed_value=7_000_007)
    record_property("soundness", summarise(stats))
    _assert_mix(stats, SLOW_CASES)


@pytest.mark.slow
@pytest.mark.parametrize("solver", ["cbc", "gurobi"])
def test_differential_slow_other_solvers(solver, record_property):
    """The same questions answered by CBC and Gurobi (HiGHS is the default solver above)."""
    if not available_solvers()[solver]:
        pytest.skip(f"{solver} is not installed")
    stats = run_differential(OTHER_SOLVER_CASES, seed_value=8_000_008, solver=solver)
    record_property("soundness", summarise(stats))
    _assert_mix(stats, OTHER_SOLVER_CASES)


# --------------------------------------------------------------------------- inference
def inference_case(i: int):
    """Network, input and domain of inference case ``i`` (2-4 layers, up to 16 neurons wide)."""
    rng = np.random.default_rng(100_000 + i)
    depth = int(rng.integers(1, 4))
    sizes = [int(rng.integers(1, 9))] + [int(rng.integers(1, 17)) for _ in range(depth)] + [int(rng.integers(1, 6))]
    style = STYLES[i % len(STYLES)]
    net = random_network(rng, sizes, style)
    net, x = random_input(rng, net, X_STYLES[(i // len(STYLES)) % len(X_STYLES)])
    n = net.n_inputs
    domain = Box.uniform(n) if i % 3 else Box(np.full(n, -1.0), np.full(n, 2.0))
    return net, x, domain


def run_inference(solver: str, indices) -> Counter:
    stats = Counter()
    worst = 0.0
    for i in indices:
        net, x, domain = inference_case(i)
        try:
            res = infer(net, x, solver, domain=domain, time_limit=TIME_LIMIT)
        except LicenseLimitError:  # pragma: no cover - tiny models fit the pip licence
            stats["licence_skipped"] += 1
            continue
        ref = net.forward(x)
        assert res.status == Status.OPTIMAL, f"case {i}: {res.status}"
        err = float(np.max(np.abs(res.outputs - ref)))
        assert err <= INFERENCE_TOLERANCE, f"case {i} ({net!r}): MILP outputs differ by {err}"
        assert res.matches and res.predicted_class == int(np.argmax(res.outputs))
        worst = max(worst, err)
        stats["cases"] += 1
        stats["with_binaries"] += res.n_binaries > 0
    stats["mismatches"] = 0
    stats["max_abs_error"] = worst
    return stats


def _solver(name):
    missing = pytest.mark.skip(reason=f"{name} not installed")
    return pytest.param(name, marks=[] if available_solvers()[name] else missing)


def test_inference_equals_forward_pass_highs(record_property):
    stats = run_inference("highs", range(INFERENCE_CASES))
    record_property("inference", {"highs": dict(stats)})
    assert stats["cases"] == INFERENCE_CASES and stats["with_binaries"] >= INFERENCE_CASES // 2, stats


@pytest.mark.parametrize("solver", [_solver("cbc"), _solver("gurobi")])
def test_inference_equals_forward_pass_sample(solver, record_property):
    stats = run_inference(solver, range(0, INFERENCE_CASES, 20))  # every 20th case
    record_property("inference", {solver: dict(stats)})
    assert stats["cases"] + stats["licence_skipped"] == len(range(0, INFERENCE_CASES, 20))


@pytest.mark.slow
@pytest.mark.parametrize("solver", [_solver("cbc"), _solver("gurobi")])
def test_inference_equals_forward_pass_all(solver, record_property):
    stats = run_inference(solver, range(INFERENCE_CASES))
    record_property("inference", {solver: dict(stats)})
    assert stats["cases"] + stats["licence_skipped"] == INFERENCE_CASES
