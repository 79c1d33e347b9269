"""Run the soundness suites and regenerate docs/soundness.md and docs/soundness_numbers.json.

    python docs/make_soundness.py            # the default-suite parts (about 2-3 minutes on 2 cores)
    python docs/make_soundness.py --slow     # also the slow suites (5,000 differential cases ...)
    python docs/make_soundness.py --render   # no tests: rewrite soundness.md from the JSON

The suites are tests/test_soundness_differential.py, test_cross_solver.py, test_near_boundary.py,
test_hostile_inputs.py and test_faults.py. They run under pytest in this process; a small plugin
collects each test's outcome, time and the counts it records (``record_property``). A run without
``--slow`` updates the default-suite numbers and keeps the slow-suite numbers of the last
``--slow`` run. Any failed test is listed in the page as an open disagreement (and the command
exits with status 1). Environment variables of the suites (``RELUVERIFY_SOUNDNESS_CASES`` ...)
change the case counts.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib
import json
import os
import platform
import subprocess
import sys
import time
from collections import Counter, defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
JSON_PATH = os.path.join(HERE, "soundness_numbers.json")
PAGE_PATH = os.path.join(HERE, "soundness.md")
SUITES = [
    "tests/test_soundness_differential.py",
    "tests/test_cross_solver.py",
    "tests/test_near_boundary.py",
    "tests/test_hostile_inputs.py",
    "tests/test_faults.py",
]

#: Disagreements these suites found, each fixed and kept as a regression test.
FOUND_AND_FIXED = [
    {
        "what": "HiGHS declared feasible MILPs infeasible (its presolve) on thin-slab networks "
                "(counterexamples in a slab of width 2 delta / k, k >= ~3e3): `minimal_distortion` and "
                "`max_confidence`, which solve without presolve-off, answered `robust` although a float64 "
                "counterexample exists.",
        "fix": "an `infeasible` from HiGHS with presolve on is re-solved with presolve off before it is used "
               "as a proof (`AdversarialModel.solve`), unless `solve()` confirms HiGHS's infeasibilities itself, "
               "as it now does (`solve.highs_confirm_options`, from the tolerance work of "
               "tests/test_solver_tolerances.py).",
        "test": "tests/test_near_boundary.py::test_thin_slab_is_never_robust",
    },
    {
        "what": "`minimal_distortion` asked its first MILP for the exact boundary `out_j >= out_c`, so its "
                "`robust` (an infeasible MILP) had no slack against the solver's tolerances.",
        "fix": "the first MILP asks for `out_j >= out_c - VERIFY_SLACK`, as `verify_robustness` does; its "
               "optimum is still a certified radius.",
        "test": "tests/test_near_boundary.py::test_thin_slab_is_never_robust",
    },
    {
        "what": "With big-M constants of 1e7 and more, HiGHS (presolve off) and Gurobi (MIPFocus 3) still "
                "proved thin-slab MILPs infeasible.",
        "fix": "MILP proofs (infeasible, dual bounds) of models whose big-M exceeds `MAX_TRUSTED_BIG_M` = 1e6 "
               "are not trusted: `unknown` (bounds-only certificates remain).",
        "test": "tests/test_near_boundary.py::test_untrusted_big_m_gives_unknown_not_robust",
    },
    {
        "what": "cbcbox's CBC (devel, git 146ce89): its default bound propagation ('milpbt') stopped 32 of 410 "
                "feasible verification MILPs of random tiny networks with 'FBBT divergence ... infeasibility "
                "proved' (so `robust` could be wrong), and 33 more ended with an unparsable status.",
        "fix": "the MILPs of the adversarial problems pass `boundPropLevel off` to CBC builds that have the "
               "option (`adversarial.solver_options`); CBC then agreed with HiGHS and Gurobi on all of them.",
        "test": "tests/test_cross_solver.py::test_solvers_agree_sample (instance 2)",
    },
    {
        "what": "Gurobi (default settings) returned an 'optimal' minimal L-inf distortion 0.0922310 with bound = "
                "objective on a network with big-M 1.0e4, where the exact optimum is 0.0921512: a certified "
                "radius above the truth.",
        "fix": "above big-M 1e3 (`CAREFUL_BIG_M`) Gurobi runs with `NumericFocus 3`.",
        "test": "tests/test_cross_solver.py::test_solvers_agree_sample (instance 15)",
    },
    {
        "what": "CBC's bound propagation presolved a whole inference MILP away and its solution file then held no "
                "values: `infer` raised `ValueError: No value for uninitialized VarData` (an exception, not a "
                "result).",
        "fix": "`infer` passes the same CBC option, and a solution without values gives no outputs "
               "(`matches=False`), never an exception (`problems/inference.py`).",
        "test": "tests/test_soundness_differential.py::test_inference_equals_forward_pass_sample[cbc] (case 300)",
    },
    {
        "what": "A crash inside the LP bound tightening (`highspy.Highs.run` raising) escaped as an exception "
                "and lost the run.",
        "fix": "a failed bound LP keeps the neuron's symbolic bound (`bounds/lp.py`).",
        "test": "tests/test_faults.py::test_solver_fault_gives_unknown[highs-run-raises]",
    },
    {
        "what": "Non-numeric arguments raised bare `ValueError`/`TypeError`: an input of strings, eps='small', "
                "budget='lots', target='cat', margin='tiny', time_limit='soon'.",
        "fix": "typed `InputError`s naming the argument (`network.as_input`, `adversarial._class_index`, "
               "`_check_time`, eps/budget/margin validation).",
        "test": "tests/test_hostile_inputs.py (rows *-not-a-number, input-not-numbers)",
    },
    # issue #13: found by checks from outside the project
    {
        "what": "`max_confidence` answered `robust` (\"no allowed change makes class t win (solver proof)\") when "
                "its MILP, which asked for a win by `DEFAULT_MARGIN`, was infeasible, although the target could win "
                "by less (a 2-2-2 network where class 1 beats class 0 by 1e-5; `verify_robustness` found the "
                "point).",
        "fix": "the first MILP asks for the win up to `VERIFY_SLACK` only, as `verify_robustness` does; only its "
               "infeasibility is a proof; a win by less than the margin ends `unknown`.",
        "test": "tests/test_near_boundary.py::test_max_confidence_needs_the_slack_rule_for_robust, "
                "test_max_confidence_at_the_exact_radius",
    },
    {
        "what": "`universal_perturbation` and `class_prototype` took infeasibility and dual bounds as proofs on "
                "models whose big-M exceeds `MAX_TRUSTED_BIG_M`: HiGHS 'proved' thin-slab networks robust "
                "(k = 1e8) and gave the prototype's logit a bound below the true maximum.",
        "fix": "one trust rule, `check.solver_proof`, for every path that turns a solver status into a proof "
               "(minimal distortion, verification, maximal confidence, universal perturbation, prototype).",
        "test": "tests/test_near_boundary.py::test_untrusted_big_m_in_universal_and_prototype",
    },
    {
        "what": "`solve.py` mapped Pyomo's `locallyInfeasible` to `infeasible` (a proof), and reported a solver whose "
                "import raised something other than ImportError as 'not installed'.",
        "fix": "a local status proves nothing (`error`); a broken install is reported as installed but unusable, "
               "with the error (`reluverify solvers` too).",
        "test": "tests/test_solve.py::test_local_infeasibility_is_not_a_proof, "
                "test_a_solver_whose_import_breaks_is_reported_broken_not_missing",
    },
    {
        "what": "`rv.solve` added its own objective to the user's Pyomo model and turned usage errors into a status: "
                "solve, add an objective, solve again gave `error` 'Multiple active objectives'.",
        "fix": "a feasibility objective lives only for one solve; several active objectives or nonlinear terms raise "
               "`ModelError`.",
        "test": "tests/test_solve.py::test_solve_leaves_the_users_model_as_it_was, "
                "test_usage_errors_are_typed_not_statuses",
    },
    {
        "what": "`reluverify run --cex-dir` wrote one counterexample file for `prop_1_0.03` and `prop_1_0.05` (the "
                "name was cut at its first dot): the second overwrote the first. `run missing.csv` ended in a "
                "traceback and `score` scored a missing file (or the ground truth itself) as zeros.",
        "fix": "file names unique per instance row; missing or wrong files are typed errors (exit 2); one "
               "NAME / NAME.gz rule for `vnnlib` and `run`.",
        "test": "tests/test_runner_files.py",
    },
    {
        "what": "Numbers that decide soundness stood outside `tolerances.py` (an 'optimal' gap of 1e-4 in one module "
                "and 1e-6 in another, a budget check written as 1 + 1e-12 beside an unused named constant).",
        "fix": "each is a named constant with its reason; a test refuses small literals elsewhere and unused "
               "constants.",
        "test": "tests/test_tolerances.py",
    },
]


# --------------------------------------------------------------------------- collecting
class Collector:
    """A pytest plugin: per test, its outcome, duration, file, slow mark and recorded properties."""

    def __init__(self):
        self.tests = {}
        self.slow = set()

    def pytest_collection_modifyitems(self, session, config, items):
        for item in items:
            if item.get_closest_marker("slow") is not None:
                self.slow.add(item.nodeid)

    def pytest_runtest_logreport(self, report):
        t = self.tests.setdefault(report.nodeid, {"outcome": "passed", "duration": 0.0, "props": []})
        t["duration"] += report.duration
        if report.failed:
            t["outcome"] = "failed"
            t["error"] = str(report.longrepr)[-1500:]
        elif report.skipped and t["outcome"] != "failed":
            t["outcome"] = "skipped"
        if report.when == "call":
            t["props"] = list(report.user_properties)


def run_suites(slow: bool) -> Collector:
    import pytest

    os.chdir(ROOT)
    collector = Collector()
    marker = "slow or not slow" if slow else "not slow"
    args = SUITES + ["-q", "-p", "no:cacheprovider", "-m", marker, "-W", "ignore::DeprecationWarning"]
    print(f"pytest {' '.join(args)}", flush=True)
    pytest.main(args, plugins=[collector])
    return collector


def _file(nodeid: str) -> str:
    return nodeid.split("::")[0]


def summarise(col: Collector, which: str) -> dict:
    """Numbers of the tests of one kind (``default`` or ``slow``)."""
    tests = {k: v for k, v in col.tests.items() if (k in col.slow) == (which == "slow")}
    out = {
        "tests": len(tests),
        "passed": sum(t["outcome"] == "passed" for t in tests.values()),
        "failed": sorted(k for k, t in tests.items() if t["outcome"] == "failed"),
        "skipped": sum(t["outcome"] == "skipped" for t in tests.values()),
        "seconds_by_file": {},
    }
    secs = defaultdict(float)
    for k, t in tests.items():
        secs[_file(k)] += t["duration"]
    out["seconds_by_file"] = {f: round(s, 1) for f, s in sorted(secs.items())}
    out["seconds"] = round(sum(secs.values()), 1)

    diff, cross, inference = Counter(), Counter(), {}
    hostile, faults, near = {}, {}, []
    for k, t in tests.items():
        for name, value in t["props"]:
            if name == "soundness":
                diff.update({kk: vv for kk, vv in value.items() if isinstance(vv, (int, float))})
            elif name == "cross_solver":
                cross.update({kk: vv for kk, vv in value.items() if isinstance(vv, (int, float))
                              and kk not in ("solvers",)})
                cross["solvers"] = value.get("solvers", 0)
            elif name == "inference":
                for solver, st in value.items():
                    cur = inference.setdefault(solver, {"cases": 0, "mismatches": 0, "max_abs_error": 0.0,
                                                        "with_binaries": 0})
                    cur["cases"] += st.get("cases", 0)
                    cur["with_binaries"] += st.get("with_binaries", 0)
                    cur["max_abs_error"] = max(cur["max_abs_error"], st.get("max_abs_error", 0.0))
            elif name == "hostile":
                hostile[value["kind"]] = value["error"]
            elif name == "faults":
                faults[value["fault"]] = value["stats"]
            elif name == "near_boundary":
                near.append(value)
    failed_files = Counter(_file(k) for k in out["failed"])
    diff["disagreements"] = failed_files["tests/test_soundness_differential.py"]
    cross["disagreements"] = failed_files["tests/test_cross_solver.py"]
    out["differential"] = dict(diff)
    out["cross_solver"] = dict(cross)
    out["inference"] = inference
    out["hostile_kinds"] = hostile
    out["faults"] = faults
    out["near_boundary_tests"] = sum(_file(k) == "tests/test_near_boundary.py" for k in tests)
    out["near_boundary"] = near
    return out


def environment() -> dict:
    from importlib import metadata

    def version(pkg):
        try:
            return metadata.version(pkg)
        except metadata.PackageNotFoundError:
            return None

    env = {"python": platform.python_version(), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
           "highspy": version("highspy"), "pyomo": version("pyomo"), "gurobipy": version("gurobipy"),
           "cbcbox": version("cbcbox"), "hypothesis": version("hypothesis")}
    try:
        from reluverify.solvers.cbc import cbc_executable

        exe = cbc_executable()
        if exe:
            first = subprocess.run([exe, "-version"], capture_output=True, text=True, timeout=60).stdout
            env["cbc"] = next((ln.strip() for ln in first.splitlines() if ln.lower().startswith("cbc version")),
                              None)
    except Exception:  # pragma: no cover
        pass
    return env


def tolerances() -> dict:
    tol = importlib.import_module("reluverify.tolerances")
    slv = importlib.import_module("reluverify.solvers")
    return {
        "MIP_INTEGRALITY_TOLERANCE": tol.MIP_INTEGRALITY_TOLERANCE,
        "PRIMAL_FEASIBILITY_TOLERANCE": tol.PRIMAL_FEASIBILITY_TOLERANCE,
        "BOUND_REL_WIDENING": tol.BOUND_REL_WIDENING,
        "BOUND_ABS_WIDENING": tol.BOUND_ABS_WIDENING,
        "INFERENCE_TOLERANCE": tol.INFERENCE_TOLERANCE,
        "VERIFY_SLACK": tol.VERIFY_SLACK,
        "DEFAULT_MARGIN": tol.DEFAULT_MARGIN,
        "MARGIN_GROWTH": tol.MARGIN_GROWTH,
        "WITNESS_RETRIES": tol.WITNESS_RETRIES,
        "MAX_TRUSTED_BIG_M": tol.MAX_TRUSTED_BIG_M,
        "CAREFUL_BIG_M": tol.CAREFUL_BIG_M,
        "OPTIMAL_REL_GAP": tol.OPTIMAL_REL_GAP,
        "BUDGET_CHECK_REL_TOLERANCE": tol.BUDGET_CHECK_REL_TOLERANCE,
        "PROOF_EMPHASIS": {k: dict(v) for k, v in slv.PROOF_EMPHASIS.items()},
        "HIGHS_DEFAULTS": dict(getattr(slv, "HIGHS_DEFAULTS", {})),
        "HIGHS_CONFIRM": (slv.highs_confirm_options(dict(getattr(slv, "HIGHS_DEFAULTS", {})))
                          if hasattr(slv, "highs_confirm_options") else None),
    }


# --------------------------------------------------------------------------- the page
def _n(x) -> str:
    return f"{x:,}" if isinstance(x, int) else str(x)


def _suite_rows(s: dict | None, label: str) -> list:
    if not s:
        return [f"| {label} | not run yet (`python docs/make_soundness.py{' --slow' if 'slow' in label else ''}`) "
                "| | | | | |"]
    d, c = s.get("differential", {}), s.get("cross_solver", {})
    inf = s.get("inference", {})
    inf_cases = sum(v["cases"] for v in inf.values())
    inf_err = max((v["max_abs_error"] for v in inf.values()), default=0.0)
    return [f"| {label} | {_n(d.get('cases', 0))} ({_n(d.get('examples', 0))} networks) | "
            f"{_n(d.get('disagreements', 0))} | {_n(c.get('instances', 0))} | {_n(c.get('disagreements', 0))} | "
            f"{_n(inf_cases)} (max error {inf_err:.1e}) | {s.get('seconds', 0):.0f} s |"]


def render(numbers: dict) -> str:
    default, slow = numbers.get("default_suite"), numbers.get("slow_suite")
    tol = numbers["tolerances"]
    env = numbers.get("environment", {})
    hostile = (default or {}).get("hostile_kinds", {})
    faults = (default or {}).get("faults", {})
    d = (default or {}).get("differential", {})
    sd = (slow or {}).get("differential", {})
    open_failures = sorted(set((default or {}).get("failed", [])) | set((slow or {}).get("failed", [])))
    L = []
    w = L.append
    w("# How we test soundness")
    w("")
    w("<!-- generated by docs/make_soundness.py from docs/soundness_numbers.json; edit the script, not this page -->")
    w("")
    w("A verifier that says \"robust\" when it is not is worse than none: VNN-COMP docks 150 points for one wrong")
    w("answer, and Jia & Rinard (2021) built networks that MILP-based verifiers certified robust although an")
    w("adversarial example existed, by exploiting floating-point error and solver tolerances. This page says what")
    w("reluverify's answers mean, how each is checked, and how that is tested, with the numbers of the last run:")
    w("")
    w("    python docs/make_soundness.py          # default-suite parts, a few minutes")
    w("    python docs/make_soundness.py --slow   # also the slow suites")
    w("")
    w("## The numbers")
    w("")
    w("| suite | differential cases vs the oracle | disagreements | cross-solver instances | solver disagreements "
      "| inference vs forward pass | time |")
    w("|---|---|---|---|---|---|---|")
    L.extend(_suite_rows(default, "default suite"))
    L.extend(_suite_rows(slow, "slow suite (`-m slow`)"))
    w("")
    if default:
        w(f"Default suite, last run {numbers.get('default_generated', '?')}: {default['tests']} tests, "
          f"{default['passed']} passed, {len(default['failed'])} failed, {default['skipped']} skipped.")
    if slow:
        w(f"Slow suite, last run {numbers.get('slow_generated', '?')}: {slow['tests']} tests, "
          f"{slow['passed']} passed, {len(slow['failed'])} failed, {slow['skipped']} skipped.")
    w(f"Environment: {env.get('machine', '?')}; Python {env.get('python', '?')}, HiGHS (highspy) {env.get('highspy')}, "
      f"{env.get('cbc') or 'CBC'} (cbcbox {env.get('cbcbox')}), gurobipy {env.get('gurobipy')} (size-limited pip "
      f"licence), Pyomo {env.get('pyomo')}, hypothesis {env.get('hypothesis')}.")
    w("")
    if open_failures:
        w("**Open disagreements (failed tests of the last run):**")
        w("")
        for f in open_failures:
            w(f"* `{f}`")
        w("")
    else:
        w("**0 disagreements** in the last runs: no wrong `robust`, no wrong `found`/`not_robust`, no certified")
        w("bound on the wrong side of the exact value.")
        w("")
    for label, dd in (("default", d), ("slow", sd)):
        if not dd:
            continue
        w(f"Differential answers ({label} suite): minimal distortion {dd.get('md_found', 0)} found / "
          f"{dd.get('md_robust', 0)} robust / {dd.get('md_unknown', 0)} unknown (all of them cases where no "
          f"example beats the class by `DEFAULT_MARGIN`: {dd.get('md_unknown_no_margin_example', 0)}); "
          f"verification {dd.get('verify_not_robust', 0)} not robust / {dd.get('verify_robust', 0)} robust / "
          f"{dd.get('verify_unknown', 0)} unknown ({dd.get('verify_unknown_grey_zone', 0)} in the grey zone, "
          f"maximal gap within 1e-5 of 0; {dd.get('verify_unknown_avoidable', 0)} elsewhere); maximal confidence "
          f"{dd.get('confidence_found', 0)} found / {dd.get('confidence_robust', 0)} robust / "
          f"{dd.get('confidence_unknown', 0)} unknown. Oracle questions re-asked through SciPy after a highspy LP "
          f"failure: {dd.get('oracle_scipy_fallbacks', 0)}.")
        w("")
    w("## Disagreements found and fixed")
    w("")
    w("Each became a regression test.")
    w("")
    for i, item in enumerate(numbers.get("found_and_fixed", []), 1):
        w(f"{i}. {item['what']} **Fix:** {item['fix']} (`{item['test']}`)")
    w("")
    w("## The verdicts")
    w("")
    w("| verdict | meaning | where it comes from |")
    w("|---|---|---|")
    w("| `found` / `not_robust` | here is an input that does it | a witness that passed `check.check_witness` "
      "(below) |")
    w("| `robust` | no allowed input does it | bounds alone (every wrong class ruled out by sound bounds), or the "
      "solver reporting *infeasible* (with `VERIFY_SLACK`) for every remaining wrong class on a model it can be "
      "trusted with |")
    w("| `unknown` | neither could be established | time limit, solver error or crash, a witness that kept failing "
      "its check, a near-boundary point, or a model whose big-M is beyond `MAX_TRUSTED_BIG_M` |")
    w("")
    w("`lower_bound` (minimal distortion: a certified radius) and `objective_bound` (maximal confidence) are")
    w("proven bounds: from the solver's dual bound, from an infeasible MILP, or from sound bounds")
    w("(`distortion._bounds_radius`: the largest ball over which the bounds already rule a class out). They stay")
    w("true when a run times out or a solver crashes. They are exact only up to the solver's tolerances: on")
    w("thin-slab networks HiGHS (MIP feasibility tolerance 1e-7) reported optimal radii up to 2.2e-10 above the")
    w("exact optimum, so the suites compare certified radii with the oracle's within 1e-6 x max(1, r).")
    w("")
    w("## Every witness is re-checked")
    w("")
    w("Before anything is reported as found, `check_witness`:")
    w("")
    w("1. snaps the solver's point into its domain exactly (clip to the box; for L0, unchanged values are set")
    w("   back to their original value; an L1 budget overshoot by solver tolerance is scaled back onto the budget);")
    w("2. rejects it if it is not finite, has the wrong length, or lies outside the allowed set or budget;")
    w(f"3. runs the float64 forward pass and requires the class change **strictly** (ties do not count) and by")
    w(f"   the requested margin (`DEFAULT_MARGIN = {tol['DEFAULT_MARGIN']:g}` logits for examples; `verify_robustness`")
    w("   accepts any strictly positive gap);")
    w("4. when the source model is given (`reference=`: a Keras model or any callable `x -> outputs`), requires it to agree too.")
    w("")
    w("Distances, logits, probabilities and objectives in results are recomputed from the checked point, never")
    w("copied from the solver's objective (CBC was seen reporting an optimum whose loaded point was 1.0 worse). A")
    w(f"rejected witness is re-solved with a larger MILP margin (at most {tol['WITNESS_RETRIES']} times, growing")
    w(f"{tol['MARGIN_GROWTH']:g}x), otherwise the answer is `unknown`. The float64 forward pass is the arbiter, as")
    w("ONNX Runtime is in VNN-COMP: `0.1 + 0.2 > 0.3` in float64, so a network whose logits tie in real arithmetic")
    w("but not in float64 has a counterexample (a test shows it).")
    w("")
    w("## Floating point and tolerances: what is decided where")
    w("")
    w("| quantity | value | why |")
    w("|---|---|---|")
    hd = tol.get("HIGHS_DEFAULTS") or {}
    highs_mip = hd.get("mip_feasibility_tolerance", tol["MIP_INTEGRALITY_TOLERANCE"])
    w(f"| MIP integrality tolerance | Gurobi `IntFeasTol` and CBC `integerTolerance` "
      f"{tol['MIP_INTEGRALITY_TOLERANCE']:g}; HiGHS `mip_feasibility_tolerance` {highs_mip:g} (rows and "
      f"integrality alike), presolve {hd.get('presolve', 'HiGHS default')} | a big-M of M lets a ReLU output "
      "drift by M x "
      "this; tighter HiGHS settings reported feasible MILPs infeasible (docs/solvers.md) |")
    w(f"| primal feasibility tolerance | {tol['PRIMAL_FEASIBILITY_TOLERANCE']:g} "
      "(HiGHS `primal_feasibility_tolerance`, "
      "Gurobi `FeasibilityTol`, CBC `primalTolerance`) | CBC's points were still seen violating rows by ~1e-7: it "
      "then finds \"feasible\" what is not (costs verdicts, never soundness) |")
    pe = {k: ", ".join(f"`{o}={v}`" for o, v in opts.items()) or "nothing" for k, opts in tol["PROOF_EMPHASIS"].items()}
    w(f"| proof emphasis (infeasibility proofs, optimality of a known incumbent) | HiGHS {pe.get('highs')}; Gurobi "
      f"{pe.get('gurobi')}; CBC {pe.get('cbc')} | heuristics burn time when the job is a proof |")
    conf = tol.get("HIGHS_CONFIRM")
    shown = ", ".join(f"`{k}={v}`" for k, v in (conf or {}).items() if k in ("mip_feasibility_tolerance", "presolve"))
    how = f"confirmed inside `solve()` by a run with {shown}" if conf else "re-solved with presolve off"
    w(f"| a HiGHS `infeasible` | {how} before it counts as a proof | presolve and tight MIP tolerances declared "
      "feasible MILPs (thin slabs from big-M ~3e3; random networks) infeasible |")
    w("| CBC bound propagation | `boundPropLevel off` where the build has it | cbcbox's CBC 'milpbt' propagation "
      "declared feasible MILPs infeasible |")
    w(f"| Gurobi above big-M {tol['CAREFUL_BIG_M']:g} | `NumericFocus 3` | a wrong 'optimal' at big-M 1e4 |")
    w(f"| big-M beyond which MILP proofs are not trusted | {tol['MAX_TRUSTED_BIG_M']:g} | HiGHS and Gurobi proved "
      "thin-slab MILPs infeasible from 1e7 whatever the settings |")
    w(f"| bound widening | x (1 + {tol['BOUND_REL_WIDENING']:g}) + {tol['BOUND_ABS_WIDENING']:g} outward | float64 "
      "rounding of dot products is ~1e-13 relative for n = 784; widening only adds binaries |")
    w(f"| `VERIFY_SLACK` | {tol['VERIFY_SLACK']:g} logits | `robust` needs the MILP `out_j >= out_c - slack` "
      "infeasible for every wrong class j; `minimal_distortion`'s first MILP uses the same slack |")
    w(f"| `DEFAULT_MARGIN` | {tol['DEFAULT_MARGIN']:g} logits | examples (`found`) beat the class by this in float64 "
      "(robust to float32 re-evaluation) |")
    w(f"| inference agreement | {tol['INFERENCE_TOLERANCE']:g} absolute | MILP outputs vs the forward pass |")
    w("")
    w("LP bounds are certified by weak duality from the LP's row duals evaluated by us, so an inaccurate LP solve")
    w("can only loosen a bound (a test feeds deliberately corrupted duals), and a crashed bound LP keeps the")
    w("neuron's symbolic bound.")
    w("")
    w("## Near the boundary: the decision")
    w("")
    w("On hand-built networks whose exact radius `r` is known (`out_1 - out_0 = s (x_1 - 0.75)` from")
    w("`x_1 = 0.25`, `r = 0.5`, slopes 1 and 100; a ReLU network with L-inf radius 0.5 and L1 radius 1.0, gap")
    w("slopes 2 to 400), `verify_robustness` at `eps = r + d` must answer as exact arithmetic would, or")
    w("`unknown` within 1e-7 of `r`, and never the opposite verdict. What came out (all three solvers, with and")
    w("without the attack, L-inf and L1), by the exact maximal gap `slope x d` over the ball:")
    w("")
    near = [v for v in (default or {}).get("near_boundary", []) if "table" in v and "slope" in v]
    groups = defaultdict(Counter)
    for v in near:
        for off, verdict in v["table"].items():
            d = float(off)
            gap = v["slope"] * d
            if d == 0:
                key = (2, "`r` (a tie at best)", "`unknown`")
            elif abs(d) >= 1e-3:
                key = (0 if d < 0 else 4, f"`r {'-' if d < 0 else '+'} 1e-3`",
                       "`robust`" if d < 0 else "`not_robust`")
            elif gap < -tol["VERIFY_SLACK"]:
                key = (1, "`r - 1e-7`, gap below `-VERIFY_SLACK` (slopes 100-400)", "`robust`")
            elif gap < 0:
                key = (1.5, "`r - 1e-7`, gap in `[-VERIFY_SLACK, 0)` (slopes 1-4)", "`unknown`")
            else:
                key = (3, "`r + 1e-7`", "`not_robust`")
            groups[key][verdict] += 1
    if groups:
        w("| eps | exact answer | answers given |")
        w("|---|---|---|")
        for key in sorted(groups):
            got = ", ".join(f"{k} {n}" for k, n in sorted(groups[key].items()))
            w(f"| {key[1]} | {key[2]} | {got} |")
        w("")
    w("So `robust` is never given at or beyond `r`, and `not_robust` never below it. The price is a grey zone")
    w("around `r` where the answer is `unknown`: `VERIFY_SLACK / slope` wide in exact arithmetic, widened by the")
    w("solvers' feasibility tolerances (a point may overshoot an L1 budget row by ~1e-7, which is worth")
    w("`1e-7 x slope` logits). `minimal_distortion` reports a certified radius within `VERIFY_SLACK / slope`")
    w("below `r` and an example `DEFAULT_MARGIN / slope` beyond it. Logits tied at the input: the input is not")
    w("its own counterexample, its neighbour is; logits tied everywhere: `unknown` (no witness, no proof).")
    w("Thin-slab networks (Jia & Rinard style: counterexamples only in a slab of width `2 delta / k` around")
    w("`x = m`, `k` up to 1e8, `delta` down to 1e-9; `m` is a float64 counterexample): never `robust`, on any")
    w("solver, for any of the three questions.")
    w("")
    w("## Hostile and broken input")
    w("")
    w(f"{len(hostile)} kinds, one test each (`tests/test_hostile_inputs.py`), each asserting the typed error class and")
    w("that the message names the offending thing and what to do:")
    w("")
    by_error = defaultdict(list)
    for kind, err in sorted(hostile.items()):
        by_error[err].append(kind)
    for err, kinds in sorted(by_error.items()):
        w(f"* `{err}`: {', '.join(kinds)}")
    w("")
    w("## Faults")
    w("")
    w(f"{len(faults)} fault tests (`tests/test_faults.py`): the solver crashes inside its interface (HiGHS, Gurobi,")
    w("CBC), Pyomo cannot write CBC's model file (disk full), the CBC process is SIGKILLed before it starts or")
    w("0.4 s into its run, `highspy.Highs.run` raises (inside Pyomo and inside the LP bounds), HiGHS stops")
    w("interrupted, or the time limit strikes before or during a solve. Each asks all three questions on an")
    w("oracle-checked tiny instance and on a hard robust instance: never an exception, never a wrong verdict,")
    w("`unknown` with the bounds still sound. The chaos tests inject random crashes, empty time-limit results and")
    w("weakened bounds into single solves of random oracle-checked questions.")
    chaos = faults.get("chaos")
    if chaos:
        w(f"Default chaos run: {chaos.get('examples', 0)} networks, {chaos.get('injected_crash', 0)} crashes, "
          f"{chaos.get('injected_time_limit_empty', 0)} empty time limits, "
          f"{chaos.get('injected_time_limit_weak_bound', 0)} weakened bounds injected; 0 wrong answers.")
    sc = (slow or {}).get("faults", {}).get("chaos-slow")
    if sc:
        w(f"Slow chaos run: {sc.get('examples', 0)} networks, {sc.get('injected_crash', 0)} crashes, "
          f"{sc.get('injected_time_limit_empty', 0)} empty time limits, "
          f"{sc.get('injected_time_limit_weak_bound', 0)} weakened bounds injected; 0 wrong answers.")
    w("")
    w("Batch runs (`reluverify run`, `reluverify.runner`) append each finished instance's row to the results")
    w("CSV, flushed and fsynced, before the next one starts. `tests/test_verification.py::test_runner_killed_with_")
    w("sigkill_loses_only_the_instance_in_flight` starts a real `reluverify run` subprocess, SIGKILLs it while its")
    w("second (hard) instance runs, checks that the first row is on disk intact, and resumes: the finished")
    w("instance is not run again, the killed one is. A crash or malformed file in one instance is recorded as")
    w("`error` and the batch goes on (`test_runner_records_a_broken_instance_and_goes_on`).")
    w("")
    w("## How the suites work")
    w("")
    w("* **Differential** (`tests/test_soundness_differential.py`): hypothesis draws a random network (at most 12")
    w("  hidden ReLUs; weights plain, quantised to halves, sparse, rescaled up to 100x, or with duplicated neurons")
    w("  and logits; a decision boundary moved into the box), an input (interior, on a dyadic grid touching the")
    w("  box faces, or exactly on a ReLU kink) and a question. The oracle (`tests/oracle.py`) enumerates")
    w("  activation patterns and solves one LP per pattern with highspy directly, sharing nothing with the")
    w("  library but the weights and the forward pass. Minimal distortion (L1, L-inf; targeted or not; L-inf caps,")
    w("  masks, wider valid boxes): `robust` only if the oracle finds nothing, the certified radius never above the")
    w("  exact value, a witness re-checked and within 1 % of the exact value (or of the exact value with the margin).")
    w("  Verification at 0.5x to 2x the exact radius, including `r (1 +- 1e-6)` and `r` itself: never `robust`")
    w("  when the oracle's point is a float64 counterexample (or when a point comes within `VERIFY_SLACK`).")
    w("  Maximal confidence: never `robust` when the target can win by more than the margin, the logit never")
    w("  above the exact maximum, `objective_bound` never below it. The default suite draws 200 networks")
    w("  (HiGHS); the slow suite 5,000 on HiGHS (`RELUVERIFY_SOUNDNESS_CASES`) and 500 each on CBC and Gurobi")
    w("  (`RELUVERIFY_SOUNDNESS_OTHER_CASES`), with fixed seeds, so every run asks the same questions. An oracle")
    w("  LP that fails in highspy (once in 5,000 networks: status `kUnknown`) is re-asked through SciPy's HiGHS")
    w("  wrapper. Inference vs the forward pass: random networks up")
    w("  to 3 hidden layers of 16, with binaries (box domains), on HiGHS, and a sample (all in the slow suite) on")
    w("  CBC and Gurobi.")
    w("* **Cross-solver** (`tests/test_cross_solver.py`): HiGHS, CBC and Gurobi (where the model fits the licence)")
    w("  on the same instances without the gradient attack (so MILPs decide): the same verdicts, the same proven")
    w("  optimal radii within 1e-4, witness distances within 1 %, and the oracle's verdict.")
    w("* **Near boundary** (`tests/test_near_boundary.py`), **hostile input** (`tests/test_hostile_inputs.py`) and")
    w("  **faults** (`tests/test_faults.py`): above.")
    w("* Earlier oracle tests (`tests/test_adversarial.py`): 64 minimal-distortion cases, L0 against subset")
    w("  enumeration, 100 verification and 24 maximal-confidence cases, seed-network agreement of the solvers.")
    w("")
    return "\n".join(L) + "\n"


# --------------------------------------------------------------------------- main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slow", action="store_true", help="also run the slow suites")
    ap.add_argument("--render", action="store_true", help="do not run tests; rewrite the page from the JSON")
    args = ap.parse_args(argv)
    sys.path.insert(0, os.path.join(ROOT, "src"))
    numbers = {}
    if os.path.exists(JSON_PATH):
        with open(JSON_PATH) as f:
            numbers = json.load(f)
    status = 0
    if not args.render:
        t0 = time.perf_counter()
        col = run_suites(args.slow)
        now = _dt.datetime.now().isoformat(timespec="seconds")
        numbers["default_suite"] = summarise(col, "default")
        numbers["default_generated"] = now
        if args.slow:
            numbers["slow_suite"] = summarise(col, "slow")
            numbers["slow_generated"] = now
        numbers["last_command"] = "python docs/make_soundness.py" + (" --slow" if args.slow else "")
        numbers["last_wall_seconds"] = round(time.perf_counter() - t0, 1)
        numbers["environment"] = environment()
        status = 1 if any(numbers[s]["failed"] for s in ("default_suite", "slow_suite") if s in numbers and
                          (s == "default_suite" or args.slow)) else 0
    numbers["tolerances"] = tolerances()
    numbers["found_and_fixed"] = FOUND_AND_FIXED
    with open(JSON_PATH, "w") as f:
        json.dump(numbers, f, indent=1, sort_keys=True, default=str)
        f.write("\n")
    with open(PAGE_PATH, "w") as f:
        f.write(render(numbers))
    print(f"wrote {os.path.relpath(JSON_PATH, ROOT)} and {os.path.relpath(PAGE_PATH, ROOT)}")
    return status


if __name__ == "__main__":
    sys.exit(main())
