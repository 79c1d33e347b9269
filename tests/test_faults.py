"""Faults: a solver that crashes, is killed, or hits its time limit gives ``unknown`` with whatever
bounds are known: never an exception that loses the run, never a wrong verdict.

Each fault of ``FAULTS`` is injected into the real solve path (the Pyomo interface raising, the
CBC process SIGKILLed before or in the middle of its run, HiGHS's ``run`` raising inside Pyomo and
inside the LP bounds, a time limit) and the three questions are asked on instances whose answers
are known: a tiny random network checked by the oracle (tests/oracle.py), and the hard robust
instance of tests/test_adversarial.py (HiGHS proves it in seconds; no witness exists). The chaos
tests inject random crashes, time limits and weakened bounds into individual solves of random
oracle-checked questions (tests/test_soundness_differential.py's checks: no wrong verdict, no
unsound bound).
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import os
import stat
from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, given, seed, settings

import oracle
from reluverify import Network
from reluverify.problems import max_confidence, minimal_distortion, verify_robustness
from reluverify.results import SolveResult, Status, Verdict
from reluverify.solvers import available_solvers
from reluverify.solvers.highs import HighsArrayModel
from reluverify.tolerances import DEFAULT_MARGIN
from test_adversarial import HARD_CAP, _hard_robust_instance
from test_soundness_differential import cases, check_case

solve_module = importlib.import_module("reluverify.solvers.base")  # the Pyomo contrib path (HiGHS, Gurobi)
cbc_module = importlib.import_module("reluverify.solvers.cbc")
AVAILABLE = available_solvers()
CHAOS_CASES = int(os.environ.get("RELUVERIFY_CHAOS_CASES", "120"))


# --------------------------------------------------------------------------- fault injectors
def _raise_in_contrib(monkeypatch, solver_name, exc):
    real = solve_module._solve_contrib

    def broken(model, name, *args, **kwargs):
        if name == solver_name:
            raise exc
        return real(model, name, *args, **kwargs)

    monkeypatch.setattr(solve_module, "_solve_contrib", broken)


def crash_highs(monkeypatch, tmp_path):
    """HiGHS crashes, through Pyomo and through the array path the engine uses."""
    _raise_in_contrib(monkeypatch, "highs", RuntimeError("simulated HiGHS crash"))
    from reluverify.solvers.highs import HighsArrayModel

    def broken(self, *args, **kwargs):
        raise RuntimeError("simulated HiGHS crash")

    monkeypatch.setattr(HighsArrayModel, "_run", broken)
    return "highs"


def crash_gurobi(monkeypatch, tmp_path):
    try:
        from gurobipy import GurobiError

        exc = GurobiError(10001, "simulated: out of memory")
    except ImportError:
        exc = RuntimeError("simulated Gurobi crash")
    _raise_in_contrib(monkeypatch, "gurobi_direct", exc)
    return "gurobi"


def crash_cbc(monkeypatch, tmp_path):
    def broken(*args, **kwargs):
        raise RuntimeError("simulated CBC crash")

    monkeypatch.setattr(cbc_module, "_solve_cbc", broken)
    return "cbc"


def cbc_disk_full(monkeypatch, tmp_path):
    """Writing the model file for CBC fails (OSError inside Pyomo's solve)."""
    class Full:
        options = {}

        def solve(self, *args, **kwargs):
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(cbc_module.pyo, "SolverFactory", lambda *a, **k: Full())
    return "cbc"


def _cbc_wrapper(monkeypatch, tmp_path, body: str):
    real = cbc_module.cbc_executable()
    script = tmp_path / "cbc"
    script.write_text(f"#!/bin/sh\nREAL='{real}'\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr(cbc_module, "cbc_executable", lambda: str(script))
    return "cbc"


def cbc_killed_at_start(monkeypatch, tmp_path):
    """The CBC process receives SIGKILL before it reads the model."""
    return _cbc_wrapper(monkeypatch, tmp_path, "kill -9 $$")


def cbc_killed_mid_run(monkeypatch, tmp_path):
    """The real CBC runs and is SIGKILLed after 0.4 s (solves of the hard instance take 0.2-1.6 s)."""
    return _cbc_wrapper(monkeypatch, tmp_path,
                        '"$REAL" "$@" &\npid=$!\nsleep 0.4\nkill -9 $pid 2>/dev/null\nwait $pid\nexit $?')


def highs_run_raises(monkeypatch, tmp_path):
    """``highspy.Highs.run`` raises: inside Pyomo's HiGHS interface and inside the LP bounds."""
    import highspy

    def broken(self, *args, **kwargs):
        raise RuntimeError("simulated: HiGHS run aborted")

    monkeypatch.setattr(highspy.Highs, "run", broken)
    return "highs"


def highs_interrupted(monkeypatch, tmp_path):
    """HiGHS stops with a non-proof status (``kInterrupt``) and no solution."""
    import highspy

    real_run, real_status = highspy.Highs.run, highspy.Highs.getModelStatus

    def run(self, *args, **kwargs):
        return highspy.HighsStatus.kWarning

    monkeypatch.setattr(highspy.Highs, "run", run)
    monkeypatch.setattr(highspy.Highs, "getModelStatus", lambda self: highspy.HighsModelStatus.kInterrupt)
    assert real_run and real_status
    return "highs"


FAULTS = {
    "crash-highs": crash_highs,
    "crash-gurobi": crash_gurobi,
    "crash-cbc": crash_cbc,
    "cbc-disk-full": cbc_disk_full,
    "cbc-killed-at-start": cbc_killed_at_start,
    "cbc-killed-mid-run": cbc_killed_mid_run,
    "highs-run-raises": highs_run_raises,
    "highs-interrupted": highs_interrupted,
}


def _needs(solver):
    if not AVAILABLE[solver]:
        pytest.skip(f"{solver} is not installed")


# --------------------------------------------------------------------------- instances with known answers
def tiny_instance():
    """A random 4-6-5-3 network whose minimal L-inf distortion is finite (oracle)."""
    for s in range(100):
        rng = np.random.default_rng(8000 + s)
        net = Network.random([4, 6, 5, 3], seed=8000 + s)
        x = rng.random(4)
        c = int(np.argmax(net.forward(x)))
        r = oracle.min_distortion(net, x, c, "linf")
        reach = [j for j in range(3) if j != c and oracle.max_logit(net, x, j, budget=1.0).feasible]
        if r.feasible and 0.05 < r.value < 0.5 and reach:
            # the oracle uses highspy too: its answers are computed here, before any fault
            exact = oracle.max_logit(net, x, reach[0], budget=1.0, margin=DEFAULT_MARGIN)
            return net, x, c, r.value, reach[0], exact
    raise AssertionError("no instance")  # pragma: no cover


TINY = tiny_instance()


def check_faulty_answers(solver, hard, stats, methods=("interval",)):
    """Ask every question under the fault: no exception, no wrong verdict, sound bounds."""
    net, x, c, r, t, exact = TINY  # t: a class that can win within the budget (by the margin: exact)
    for bm in methods:
        # robust at 0.8 r, not robust at 1.25 r: a broken solver must give unknown (or, for the
        # larger radius, a re-checked witness could only come from the solver, and there is none)
        for eps, truth_robust in ((0.8 * r, True), (1.25 * r, False)):
            res = verify_robustness(net, x, eps, solver=solver, attack=False, bound_method=bm, time_limit=30,
                                    split=False, branch=False)  # the solver's path, where the faults are
            if res.verdict == Verdict.ROBUST:  # by bounds alone, or by solves that all finished
                assert truth_robust and not any(s.status == Status.ERROR for s in res.solves), res.summary()
            assert res.verdict != Verdict.NOT_ROBUST or not truth_robust
            stats[f"verify_{res.verdict}"] += 1
        md = minimal_distortion(net, x, "linf", solver=solver, attack=False, bound_method=bm, time_limit=30,
                                split=False, branch=False)
        assert md.verdict in (Verdict.UNKNOWN, Verdict.FOUND), md.summary()
        assert md.lower_bound is not None and md.lower_bound <= r + 1e-9, md.lower_bound  # still a certified radius
        if md.verdict == Verdict.UNKNOWN:
            assert md.x_adv is None and md.distance is None
        stats[f"md_{md.verdict}"] += 1
        mc = max_confidence(net, x, t, eps=1.0, solver=solver, bound_method=bm, time_limit=30)
        if mc.verdict == Verdict.ROBUST:  # only from a solver that finished: it must be right
            assert not exact.feasible, mc.summary()
        if mc.verdict == Verdict.FOUND:
            assert exact.feasible and mc.objective <= exact.value + 1e-6
        if mc.objective_bound is not None:
            assert mc.objective_bound >= exact.value - 1e-6
        stats[f"confidence_{mc.verdict}"] += 1
    # the hard instance: robust, no witness exists; a broken solver can only give unknown
    net, x, c, t = hard
    res = verify_robustness(net, x, 0.1, solver=solver, attack=False, bound_method="interval", time_limit=60,
                            branch=False)
    assert res.verdict in (Verdict.UNKNOWN, Verdict.ROBUST) and res.x_adv is None, res.summary()
    if res.verdict == Verdict.ROBUST:
        assert not any(s.status == Status.ERROR for s in res.solves)
    stats[f"hard_verify_{res.verdict}"] += 1
    stats["killed_or_crashed_solves"] += sum(s.status == Status.ERROR for s in res.solves)
    md = minimal_distortion(net, x, "linf", solver=solver, perturbation=HARD_CAP, attack=False,
                            bound_method="interval", time_limit=60, branch=False)
    assert md.verdict in (Verdict.UNKNOWN, Verdict.ROBUST) and md.x_adv is None, md.summary()
    assert md.lower_bound is not None
    stats["killed_or_crashed_solves"] += sum(s.status == Status.ERROR for s in md.solves)


@pytest.fixture(scope="module")
def hard():
    return _hard_robust_instance()


@pytest.mark.parametrize("fault", list(FAULTS))
def test_solver_fault_gives_unknown(fault, hard, monkeypatch, tmp_path, record_property):
    solver = {"crash-gurobi": "gurobi"}.get(fault, "cbc" if "cbc" in fault else "highs")
    _needs(solver)
    solver = FAULTS[fault](monkeypatch, tmp_path)
    stats = Counter()
    methods = ("interval", "lp") if fault == "highs-run-raises" else ("interval",)
    check_faulty_answers(solver, hard, stats, methods)
    if fault != "cbc-killed-mid-run":
        # the solver never answered: nothing may be robust on the MILP's word
        assert stats["verify_robust"] <= len(methods) and stats["verify_not_robust"] == 0, stats  # bounds alone
        assert stats["md_found"] == 0 and stats["confidence_found"] == 0, stats
    assert stats["killed_or_crashed_solves"] >= 1 or fault == "highs-interrupted", stats
    record_property("faults", {"fault": fault, "stats": dict(stats)})


@pytest.mark.parametrize("solver", ["highs", "cbc", "gurobi"])
def test_time_limit_gives_unknown_with_bounds(solver, hard, record_property):
    """A time limit during the solve (0.05 s) or before it (1e-3 s) on the hard instance."""
    _needs(solver)
    net, x, c, t = hard
    for limit in (1e-3, 0.05):
        res = verify_robustness(net, x, 0.1, solver=solver, attack=False, time_limit=limit, bound_method="interval",
                                branch=False)
        assert res.verdict == Verdict.UNKNOWN and res.x_adv is None, res.summary()
        md = minimal_distortion(net, x, "linf", solver=solver, perturbation=HARD_CAP, time_limit=limit,
                                bound_method="interval", attack=False, branch=False)
        assert md.verdict == Verdict.UNKNOWN and md.x_adv is None, md.summary()
        assert md.lower_bound is not None and 0 <= md.lower_bound < math.inf
        mc = max_confidence(net, x, t, eps=5.0, perturbation=HARD_CAP, solver=solver, time_limit=limit,
                            bound_method="interval")
        # the target cannot win inside the cap (by construction): a solve that finishes despite the
        # limit (CBC checks its clock coarsely: an infeasibility proof in 0.16 s with 0.05 s asked,
        # measured on a fast machine) may answer that truthfully; nothing else is allowed
        allowed = (Verdict.UNKNOWN,) if limit < 0.01 else (Verdict.UNKNOWN, Verdict.ROBUST)
        assert mc.verdict in allowed and mc.objective is None and mc.x_adv is None, mc.summary()
    record_property("faults", {"fault": f"time-limit-{solver}", "stats": {"questions": 6}})


# --------------------------------------------------------------------------- chaos
class Chaos:
    """Wraps ``solve._solve_contrib``: each solve crashes, times out without a solution, or times
    out with its solution but a weakened (still sound) bound, at random; else it runs normally."""

    def __init__(self, real, rng):
        self.real, self.rng, self.counts = real, rng, Counter()

    def __call__(self, model, name, *args, **kwargs):
        import pyomo.environ as pyo

        u = self.rng.random()
        if u < 0.2:
            self.counts["crash"] += 1
            raise RuntimeError("chaos: solver crashed")
        if u < 0.35:
            self.counts["time_limit_empty"] += 1
            return Status.TIME_LIMIT, False, None, None, "chaos: time limit, nothing found"
        status, has_sol, obj, bound, msg = self.real(model, name, *args, **kwargs)
        if u < 0.5 and status == Status.OPTIMAL and bound is not None:
            self.counts["time_limit_weak_bound"] += 1
            objs = list(model.component_data_objects(pyo.Objective, active=True))
            minimise = not objs or objs[0].sense == pyo.minimize
            slack = 0.1 * (1.0 + abs(bound))
            return Status.TIME_LIMIT, has_sol, obj, bound - slack if minimise else bound + slack, "chaos: weak bound"
        self.counts["normal"] += 1
        return status, has_sol, obj, bound, msg


class ArrayChaos:
    """The same faults for the engine's array path: wraps ``HighsArrayModel.solve`` (a crash
    surfaces as the ``Status.ERROR`` result a crashing HiGHS gives there)."""

    def __init__(self, real, rng, counts):
        self.real, self.rng, self.counts = real, rng, counts

    def __call__(self, model, time_limit=None):
        u = self.rng.random()
        size = model.size()
        if u < 0.2:
            self.counts["crash"] += 1
            return SolveResult(Status.ERROR, "highs", 0.0, message="RuntimeError: chaos: solver crashed",
                               size=size), None
        if u < 0.35:
            self.counts["time_limit_empty"] += 1
            return SolveResult(Status.TIME_LIMIT, "highs", 0.0, message="chaos: time limit, nothing found",
                               size=size), None
        res, values = self.real(model, time_limit)
        if u < 0.5 and res.status == Status.OPTIMAL and res.bound is not None:
            self.counts["time_limit_weak_bound"] += 1
            import highspy

            _, sense = model.highs.getObjectiveSense()
            minimise = sense == highspy.ObjSense.kMinimize
            slack = 0.1 * (1.0 + abs(res.bound))
            weak = res.bound - slack if minimise else res.bound + slack
            return dataclasses.replace(res, status=Status.TIME_LIMIT, bound=weak, message="chaos: weak bound"), values
        self.counts["normal"] += 1
        return res, values


def run_chaos(n, seed_value):
    stats = Counter()
    rng = np.random.default_rng(seed_value)
    chaos = Chaos(solve_module._solve_contrib, rng)
    array_chaos = ArrayChaos(HighsArrayModel.solve, rng, chaos.counts)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(solve_module, "_solve_contrib", chaos)
        mp.setattr(HighsArrayModel, "solve", lambda model, time_limit=None: array_chaos(model, time_limit))

        @seed(seed_value)
        @settings(max_examples=n, database=None, deadline=None, suppress_health_check=list(HealthCheck))
        @given(case=cases())
        def run(case):
            check_case(case, stats)

        run()
    stats.update({f"injected_{k}": v for k, v in chaos.counts.items()})
    return stats


def test_chaos_never_gives_a_wrong_verdict(record_property):
    stats = run_chaos(CHAOS_CASES, 424242)
    record_property("faults", {"fault": "chaos", "stats": dict(stats)})
    assert stats["examples"] == CHAOS_CASES
    assert stats["injected_crash"] >= 10 and stats["injected_time_limit_weak_bound"] >= 5, stats


@pytest.mark.slow
def test_chaos_never_gives_a_wrong_verdict_slow(record_property):
    n = int(os.environ.get("RELUVERIFY_CHAOS_SLOW_CASES", "1000"))
    stats = run_chaos(n, 515151)
    record_property("faults", {"fault": "chaos-slow", "stats": dict(stats)})
    assert stats["examples"] == n
