"""Cross-solver agreement: HiGHS, CBC, Gurobi and SCIP give the same verdicts and (within tolerance) the
same optimal distances on random tiny instances, and agree with the brute-force oracle.

Each instance is a random network of tests/test_soundness_differential.py (styles normal,
quantised, sparse and rescaled, with a decision boundary moved into the box) with one input, asked

* ``minimal_distortion`` (L1 or L-inf, alternately; no gradient attack, so the MILP decides):
  same verdict on every solver, certified radii (``lower_bound``) never above the exact value and,
  where the solver proved its optimum, within ``BOUND_TOL`` of each other; witness distances within
  1 % of each other;
* ``verify_robustness`` at ``0.8 r`` and ``1.25 r`` (``r`` the exact minimal distortion; no attack,
  interval bounds, so MILPs decide): the same verdict on every solver, and the oracle's.

Gurobi runs where the model fits its licence (a :class:`LicenseLimitError` is counted, not failed).
The default suite runs a sample (``RELUVERIFY_CROSS_SOLVER_FAST``, 25); the slow suite
``RELUVERIFY_CROSS_SOLVER_CASES`` (200) instances. Disagreements found this way are regression tests
in tests/test_near_boundary.py (thin-slab networks: HiGHS's presolve said infeasible, the others
found the counterexample).
"""

from __future__ import annotations

import math
import os
from collections import Counter

import numpy as np
import pytest

import oracle
from reluverify import LicenseLimitError
from reluverify.problems import minimal_distortion, verify_robustness
from reluverify.results import Verdict
from reluverify.solvers import available_solvers
from test_soundness_differential import Disagreement, ask_oracle, check_witness_here, random_network, shift_boundary

SOLVERS = [s for s in ("highs", "cbc", "gurobi", "scip") if available_solvers()[s]]
FAST = int(os.environ.get("RELUVERIFY_CROSS_SOLVER_FAST", "25"))
SLOW = int(os.environ.get("RELUVERIFY_CROSS_SOLVER_CASES", "200"))
BOUND_TOL = 1e-4  # relative to max(1, r): CBC reports its bound with 12 significant digits and a default gap
STYLES = ("normal", "quantised", "sparse", "scaled")


def instance(i: int):
    rng = np.random.default_rng(900_000 + i)
    sizes = [int(rng.integers(1, 6))] + [int(rng.integers(1, 7)) for _ in range(int(rng.integers(1, 3)))]
    sizes.append(int(rng.integers(2, 5)))
    net = random_network(rng, sizes, STYLES[i % len(STYLES)])
    x = rng.random(net.n_inputs)
    return shift_boundary(rng, net, x), x


def _run(solver, fn):
    try:
        return fn(solver)
    except LicenseLimitError:
        return None


def check_instance(i: int, stats: Counter) -> None:
    net, x = instance(i)
    c = int(np.argmax(net.forward(x)))
    norm = ("l1", "linf")[i % 2]
    lo, hi = np.zeros(x.size), np.ones(x.size)
    truth = ask_oracle(oracle.min_distortion, net, x, c, norm)

    # minimal distortion
    md = {s: _run(s, lambda s: minimal_distortion(net, x, norm, solver=s, attack=False, bound_method="interval",
                                                  time_limit=60)) for s in SOLVERS}
    stats["licence_skipped"] += sum(r is None for r in md.values())
    md = {s: r for s, r in md.items() if r is not None}
    where = f"instance {i} ({net!r}, {norm}): oracle {truth.value}; " + "; ".join(
        f"{s}: {r.verdict} d={r.distance} lb={r.lower_bound}" for s, r in md.items())
    verdicts = {r.verdict for r in md.values()}
    if len(verdicts) != 1:
        raise Disagreement(f"minimal distortion verdicts differ: {where}")
    (verdict,) = verdicts
    tol = BOUND_TOL * max(1.0, truth.value if truth.feasible else 1.0)
    for s, r in md.items():
        if r.lower_bound > truth.value + 1e-6 * max(1.0, truth.value if truth.feasible else 1.0):
            raise Disagreement(f"{s}: certified radius above the exact value: {where}")
        if verdict == Verdict.FOUND:
            check_witness_here(net, r, c, lo, hi, margin=0.0)
    if verdict == Verdict.FOUND:
        # solvers that proved their optimum ("optimal") agree on the certified radius; CBC often
        # reports no dual bound, and its radius then comes from bounds alone (sound, looser)
        tight = {s: r.lower_bound for s, r in md.items() if r.message.startswith("optimal")}
        for s in md:
            stats[f"md_tight_{s}"] += s in tight
        if tight and max(tight.values()) - min(tight.values()) > tol:
            raise Disagreement(f"proven optimal radii differ by more than {tol}: {where}")
        if tight and min(tight.values()) < truth.value - tol:
            stats["md_tight_below_exact"] += 1  # sound, but not the exact optimum
        ds = [r.distance for r in md.values()]
        if max(ds) - min(ds) > 1e-2 * max(ds) + 1e-6:
            raise Disagreement(f"witness distances differ by more than 1 %: {where}")
        stats["md_found"] += 1
    elif verdict == Verdict.ROBUST and truth.feasible:
        raise Disagreement(f"wrong robust: {where}")
    stats[f"md_{verdict}"] += verdict != Verdict.FOUND

    # verification on both sides of the exact radius (in the L-inf norm: interval bounds, MILPs)
    r_inf = ask_oracle(oracle.min_distortion, net, x, c, "linf").value
    for factor in (0.8, 1.25):
        eps = r_inf * factor if math.isfinite(r_inf) and r_inf > 0 else 0.3 * factor
        vlo, vhi = np.maximum(lo, x - eps), np.minimum(hi, x + eps)
        gap = ask_oracle(oracle.max_gap, net, c, vlo, vhi).value
        got = {s: _run(s, lambda s: verify_robustness(net, x, eps, solver=s, attack=False, bound_method="interval",
                                                      time_limit=60)) for s in SOLVERS}
        stats["licence_skipped"] += sum(r is None for r in got.values())
        got = {s: r for s, r in got.items() if r is not None}
        where = f"instance {i} eps {eps}: oracle gap {gap}; " + ", ".join(f"{s}: {r.verdict}" for s, r in got.items())
        if len({r.verdict for r in got.values()}) != 1:
            raise Disagreement(f"verification verdicts differ: {where}")
        verdict = next(iter(got.values())).verdict
        if (verdict == Verdict.ROBUST and gap > 0) or (verdict == Verdict.NOT_ROBUST and gap < 0):
            raise Disagreement(f"verdict contradicts the oracle: {where}")
        for r in got.values():
            if r.verdict == Verdict.NOT_ROBUST:
                check_witness_here(net, r, c, vlo, vhi)
        stats[f"verify_{verdict}"] += 1
        stats["milp_solves"] += sum(len(r.solves) for r in got.values())
    stats["instances"] += 1


def run(indices) -> Counter:
    stats = Counter()
    for i in indices:
        check_instance(i, stats)
    stats["solvers"] = len(SOLVERS)
    stats["disagreements"] = 0
    return stats


needs_two = pytest.mark.skipif(len(SOLVERS) < 2, reason="fewer than two solvers installed")


@needs_two
def test_solvers_agree_sample(record_property):
    stats = run(range(FAST))
    record_property("cross_solver", dict(stats))
    assert stats["instances"] == FAST
    assert stats["md_found"] >= FAST // 4, stats
    assert stats["verify_robust"] >= FAST // 4 and stats["verify_not_robust"] >= FAST // 4, stats


@needs_two
@pytest.mark.slow
def test_solvers_agree_all(record_property):
    stats = run(range(FAST, FAST + SLOW))
    record_property("cross_solver", dict(stats))
    assert stats["instances"] == SLOW
