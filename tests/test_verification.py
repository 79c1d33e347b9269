"""VNN-LIB-style properties: check_property against a brute-force oracle, counterexample checks,
the `reluverify vnnlib` command, the resumable runner (including a SIGKILL mid-run) and scoring,
and verdicts on a fixed subset of the VNN-COMP 2022 benchmarks when ../shared has them."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import BENCHMARKS, needs_benchmarks
from oracle import region_reachable
from reluverify.bounds.batch import batch_bounds, batch_linear_bounds
from reluverify.check import check_counterexample, snap_float32
from reluverify.errors import InputError
from reluverify.model import Network
from reluverify.problems.verification import check_property
from reluverify.results import PropertyVerdict
from reluverify.spec import Property, Region

onnx = pytest.importorskip("onnx")

SHARED = BENCHMARKS / "vnncomp2022"
SLACK = 1e-6


def _random_property(rng, n_in, n_out, net, n_regions=None):
    """Random regions whose right-hand sides sit near what the network reaches (sampled), so that
    about half are reachable and the decisions are not trivial."""
    regions = []
    n_regions = n_regions or int(rng.integers(1, 4))
    centre = rng.uniform(-1, 1, n_in)
    w = rng.uniform(0.05, 0.6, n_in)
    xs = centre - w + rng.random((300, n_in)) * 2 * w
    ys = net.forward(xs)
    for _ in range(n_regions):
        m = int(rng.integers(1, 3))
        a_y = rng.normal(size=(m, n_out))
        a_x = rng.normal(size=(m, n_in)) * (rng.random() < 0.3)
        vals = xs @ a_x.T + ys @ a_y.T
        spread = vals.max(0) - vals.min(0) + 1e-3
        b = vals.min(0) + rng.uniform(-0.3, 0.1, m) * spread
        regions.append(Region(centre - w, centre + w, a_x, a_y, b))
    return Property(n_in, n_out, tuple(regions))


def _oracle(net, prop, shift):
    return any(region_reachable(net, r.lower, r.upper, r.a_x, r.a_y, r.b, shift) is not None for r in prop.regions)


def _check_against_oracle(net, prop, **kw):
    res = check_property(net, prop, time_limit=60, **kw)
    sat_for_sure = _oracle(net, prop, -SLACK)  # reachable with a margin
    unsat_for_sure = not _oracle(net, prop, +SLACK)  # not reachable even with slack
    if res.verdict == PropertyVerdict.SAT:
        assert not unsat_for_sure, "sat on a property the oracle proves unreachable"
        assert prop.violation(res.x, net.forward(res.x)) <= 0
    if res.verdict == PropertyVerdict.UNSAT:
        assert not sat_for_sure, "unsat although the oracle found a counterexample with a margin"
    return res, sat_for_sure, unsat_for_sure


@pytest.mark.parametrize("seed", range(24))
def test_input_splitting_agrees_with_oracle(seed):
    rng = np.random.default_rng(seed)
    net = Network.random([3, 6, 5, 2], seed=seed)
    prop = _random_property(rng, 3, 2, net)
    res, sat, unsat = _check_against_oracle(net, prop, split=True, attack=seed % 2 == 0)
    # tiny networks are always decided
    assert res.verdict in (PropertyVerdict.SAT, PropertyVerdict.UNSAT) or not (sat or unsat)
    assert res.verdict == (PropertyVerdict.SAT if sat else PropertyVerdict.UNSAT) or not (sat or unsat)


@pytest.mark.parametrize("branch", [False, True])
@pytest.mark.parametrize("seed", range(24))
def test_milp_and_branch_paths_agree_with_oracle(seed, branch):
    rng = np.random.default_rng(100 + seed)
    net = Network.random([6, 7, 5, 3], seed=100 + seed)
    prop = _random_property(rng, 6, 3, net)
    res, sat, unsat = _check_against_oracle(net, prop, split=False, branch=branch, attack=seed % 2 == 0)
    if branch is False:
        assert res.method != "branch"
    assert res.verdict in (PropertyVerdict.SAT, PropertyVerdict.UNSAT)
    if sat:
        assert res.verdict == PropertyVerdict.SAT
    if unsat:
        assert res.verdict == PropertyVerdict.UNSAT


@pytest.mark.parametrize("solver", ["cbc", "gurobi"])
def test_other_solvers_agree_with_highs(solver, available):
    if not available.get(solver):
        pytest.skip(f"{solver} is not installed here")
    for seed in range(6):
        rng = np.random.default_rng(200 + seed)
        net = Network.random([5, 6, 4, 2], seed=200 + seed)
        prop = _random_property(rng, 5, 2, net)
        a = check_property(net, prop, split=False, branch=False, solver="highs", time_limit=60, attack=False)
        b = check_property(net, prop, split=False, branch=False, solver=solver, time_limit=60, attack=False)
        assert a.verdict == b.verdict


@pytest.fixture(scope="module")
def available():
    from reluverify.solvers import available_solvers

    return available_solvers()


def test_batch_bounds_are_sound_on_sampled_points():
    rng = np.random.default_rng(0)
    net = Network.random([4, 12, 12, 12, 3], seed=3)
    lo = rng.uniform(-1, 0.5, (40, 4))
    hi = lo + rng.uniform(0.01, 0.8, (40, 4))
    lowers, uppers = batch_bounds(net, lo, hi)
    a_x, a_y = rng.normal(size=(2, 4)), rng.normal(size=(2, 3))
    lb, _ = batch_linear_bounds(net, lowers, uppers, lo, hi, a_x, a_y)
    # parent bounds (the full box's) only tighten
    big_lo, big_hi = lo.min(0), hi.max(0)
    pl, pu = batch_bounds(net, big_lo[None, :], big_hi[None, :])
    parent = ([np.repeat(a, 40, axis=0) for a in pl], [np.repeat(a, 40, axis=0) for a in pu])
    l2, u2 = batch_bounds(net, lo, hi, parent)
    for b in range(40):
        x = lo[b] + rng.random((400, 4)) * (hi[b] - lo[b])
        y, pre = net.forward(x, return_all=True)
        for k, z in enumerate(pre):
            assert np.all(z >= lowers[k][b]) and np.all(z <= uppers[k][b])
            assert np.all(z >= l2[k][b]) and np.all(z <= u2[k][b])
        assert np.all(x @ a_x.T + y @ a_y.T >= lb[b])


def test_counterexample_check_refuses_fabricated_points():
    net = Network.random([3, 5, 2], seed=1)
    lo, hi = -np.ones(3), np.ones(3)
    x = np.zeros(3)
    y = net.forward(x)
    # a property "y_0 <= y_0(x) - 1": x itself is not a counterexample
    prop = Property(3, 2, (Region(lo, hi, np.zeros((1, 3)), [[1.0, 0.0]], [y[0] - 1.0]),))
    assert not check_counterexample(net, prop, x).ok
    # outside the box
    prop2 = Property(3, 2, (Region(lo, hi, np.zeros((1, 3)), [[1.0, 0.0]], [y[0] + 1.0]),))
    assert check_counterexample(net, prop2, x).ok
    assert not check_counterexample(net, prop2, x + 5).ok
    # a reference model that disagrees (e.g. the ONNX file is not this network)
    assert not check_counterexample(net, prop2, x, reference=lambda p: net.forward(p) + 2.0).ok
    assert check_counterexample(net, prop2, x, reference=lambda p: net.forward(p) + 1e-5).ok


def test_snap_float32_stays_inside_the_box():
    rng = np.random.default_rng(0)
    lo = rng.normal(size=50)
    hi = lo + rng.random(50) * 1e-3
    x = lo + rng.random(50) * (hi - lo)
    s = snap_float32(x, lo, hi)
    assert np.all(s >= lo) and np.all(s <= hi)
    inside = (s.astype(np.float32).astype(np.float64) == s)
    assert inside.mean() > 0.9


def test_empty_regions_and_bad_arguments():
    net = Network.random([2, 3, 2], seed=0)
    empty = Region(np.ones(2), np.zeros(2), np.zeros((1, 2)), [[1.0, 0.0]], [0.0])
    assert check_property(net, Property(2, 2, (empty,))).verdict == PropertyVerdict.UNSAT
    ok = Region(np.zeros(2), np.ones(2), np.zeros((1, 2)), [[1.0, 0.0]], [0.0])
    with pytest.raises(InputError, match="time_limit"):
        check_property(net, Property(2, 2, (ok,)), time_limit=0)
    with pytest.raises(InputError, match="belongs to this network"):
        check_property(Network.random([3, 3, 2], seed=0), Property(2, 2, (ok,)))
    with pytest.raises(InputError, match="Property"):
        check_property(net, "prop.vnnlib")
    with pytest.raises(InputError, match="branch must be"):
        check_property(net, Property(2, 2, (ok,)), branch="yes")


# --------------------------------------------------------------------------- files, CLI, runner
def _save_onnx(net: Network, path: Path) -> Path:
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []
    cur = "x"
    for k, layer in enumerate(net.layers):
        inits += [numpy_helper.from_array(layer.weight.astype(np.float32), f"W{k}"),
                  numpy_helper.from_array(layer.bias.astype(np.float32), f"b{k}")]
        nodes.append(helper.make_node("Gemm", [cur, f"W{k}", f"b{k}"], [f"z{k}"], transB=1))
        cur = f"z{k}"
        if layer.activation == "relu":
            nodes.append(helper.make_node("Relu", [cur], [f"h{k}"]))
            cur = f"h{k}"
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, net.n_inputs])],
                              [helper.make_tensor_value_info(cur, TensorProto.FLOAT, [1, net.n_outputs])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _write_vnnlib(path: Path, lo, hi, rows_text: str, n_out: int) -> Path:
    lines = [f"(declare-const X_{i} Real)" for i in range(len(lo))]
    lines += [f"(declare-const Y_{j} Real)" for j in range(n_out)]
    for i, (a, b) in enumerate(zip(lo, hi)):
        lines += [f"(assert (>= X_{i} {float(a)!r}))", f"(assert (<= X_{i} {float(b)!r}))"]
    lines.append(rows_text)
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture()
def tiny_instances(tmp_path):
    """Two instances on a tiny network: one sat (y_0 can exceed its value at 0), one unsat."""
    net = Network.random([3, 8, 8, 2], seed=5)
    _save_onnx(net, tmp_path / "net.onnx")
    lo, hi = -np.ones(3), np.ones(3)
    y0 = net.forward(np.zeros(3))
    ys = net.forward(np.random.default_rng(0).uniform(-1, 1, (5000, 3)))
    _write_vnnlib(tmp_path / "sat.vnnlib", lo, hi, f"(assert (>= Y_0 {float(y0[0])!r}))", 2)
    _write_vnnlib(tmp_path / "unsat.vnnlib", lo, hi, f"(assert (>= Y_0 {float(ys[:, 0].max() + 1e3)!r}))", 2)
    (tmp_path / "instances.csv").write_text("net.onnx,sat.vnnlib,20\nnet.onnx,unsat.vnnlib,20\n")
    (tmp_path / "ground_truth.csv").write_text(
        "instance,onnx,vnnlib,ground_truth\nnet-sat,net.onnx,sat.vnnlib,sat\nnet-unsat,net.onnx,unsat.vnnlib,unsat\n")
    return tmp_path


def test_vnnlib_command_writes_a_checked_result(tiny_instances, tmp_path):
    from reluverify.cli import main
    from reluverify.io.vnnlib import read_result

    out = tmp_path / "res.txt"
    assert main(["vnnlib", str(tiny_instances / "net.onnx"), str(tiny_instances / "sat.vnnlib"),
                 "--timeout", "20", "--out", str(out)]) == 0
    verdict, x, y = read_result(out)
    assert verdict == "sat"
    net = Network.random([3, 8, 8, 2], seed=5)
    assert np.all(np.abs(x) <= 1) and net.forward(x)[0] >= net.forward(np.zeros(3))[0]
    assert np.allclose(y, net.forward(x))
    assert main(["vnnlib", str(tiny_instances / "net.onnx"), str(tiny_instances / "unsat.vnnlib"),
                 "--timeout", "20", "--out", str(out)]) == 0
    assert read_result(out)[0] == "unsat"
    # broken inputs: exit code 2 and a message
    assert main(["vnnlib", str(tmp_path / "missing.onnx"), str(tiny_instances / "sat.vnnlib"), "--timeout", "5"]) == 2


def test_runner_resumes_and_scores(tiny_instances):
    from reluverify.runner import read_results, run_instances, score

    res_csv = tiny_instances / "results.csv"
    rows = run_instances(tiny_instances / "instances.csv", res_csv, limit=1, progress=False)
    assert [r["verdict"] for r in rows] == ["sat"]
    rows = run_instances(tiny_instances / "instances.csv", res_csv, progress=False)
    assert [r["verdict"] for r in rows] == ["sat", "unsat"]  # the first was not run again
    assert len(read_results(res_csv)) == 2
    sc = score(res_csv, tiny_instances / "ground_truth.csv")
    assert (sc.correct, sc.incorrect, sc.unsolved, sc.score) == (2, 0, 0, 20)


def test_runner_records_a_broken_instance_and_goes_on(tiny_instances):
    from reluverify.runner import run_instances

    (tiny_instances / "bad.vnnlib").write_text("(declare-const X_0 Real)\n(assert (<= X_0 1)\n")
    (tiny_instances / "instances.csv").write_text("net.onnx,bad.vnnlib,5\nnet.onnx,sat.vnnlib,20\n")
    rows = run_instances(tiny_instances / "instances.csv", tiny_instances / "r.csv", progress=False)
    assert [r["verdict"] for r in rows] == ["error", "sat"]
    assert "PropertyFileError" in rows[0]["message"]


def test_runner_killed_with_sigkill_loses_only_the_instance_in_flight(tmp_path):
    """A real subprocess runs a batch whose second instance is hard; we SIGKILL it while that one
    runs, check the first row is on disk intact, then resume with a short timeout."""
    from reluverify.engine.falsify import falsify

    net = Network.random([30, 80, 80, 80, 2], seed=11)
    _save_onnx(net, tmp_path / "net.onnx")
    small = Network.random([3, 4, 2], seed=1)
    _save_onnx(small, tmp_path / "small.onnx")
    _write_vnnlib(tmp_path / "easy.vnnlib", -np.ones(3), np.ones(3), "(assert (>= Y_0 1e9))", 2)
    # hard: y_0 - y_1 well below what a gradient attack reaches, over a 30-dimensional box; the
    # MILP over loose bounds runs into its time limit (measured: > 15 s)
    box = Region(-np.ones(30), np.ones(30), np.zeros((1, 30)), [[1.0, -1.0]], [-1e9])
    x, _ = falsify(net, box)
    best = float(net.forward(x)[0] - net.forward(x)[1])
    _write_vnnlib(tmp_path / "hard.vnnlib", -np.ones(30), np.ones(30),
                  f"(assert (<= (- Y_0 Y_1) {best - 0.5 * abs(best)!r}))", 2)
    (tmp_path / "instances.csv").write_text("small.onnx,easy.vnnlib,20\nnet.onnx,hard.vnnlib,120\n")
    res_csv = tmp_path / "results.csv"
    cmd = [sys.executable, "-m", "reluverify.cli", "run", str(tmp_path / "instances.csv"), "--out", str(res_csv), "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            if res_csv.exists() and len(res_csv.read_text().strip().splitlines()) >= 2:
                break
            assert proc.poll() is None, "the runner ended before it could be killed"
            time.sleep(0.05)
        time.sleep(0.5)
        assert proc.poll() is None, "the hard instance finished too early to test the kill"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    with open(res_csv, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["onnx"], r["verdict"]) for r in rows] == [("small.onnx", "unsat")]
    # resume: the finished instance is not run again, the killed one is
    (tmp_path / "instances.csv").write_text("small.onnx,easy.vnnlib,20\nnet.onnx,hard.vnnlib,2\n")
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    with open(res_csv, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["onnx"] for r in rows] == ["small.onnx", "net.onnx"]
    assert rows[1]["verdict"] in ("timeout", "unsat", "sat", "unknown")


# --------------------------------------------------------------------------- VNN-COMP subset
CI_SUBSET = [
    ("mnist_fc", "onnx/mnist-net_256x2.onnx", "vnnlib/prop_0_0.03.vnnlib"),
    ("mnist_fc", "onnx/mnist-net_256x2.onnx", "vnnlib/prop_1_0.03.vnnlib"),
    ("mnist_fc", "onnx/mnist-net_256x2.onnx", "vnnlib/prop_4_0.03.vnnlib"),
    ("mnist_fc", "onnx/mnist-net_256x4.onnx", "vnnlib/prop_2_0.03.vnnlib"),  # decided by ReLU branching
    ("acasxu", "onnx/ACASXU_run2a_1_1_batch_2000.onnx", "vnnlib/prop_1.vnnlib"),
    ("acasxu", "onnx/ACASXU_run2a_2_7_batch_2000.onnx", "vnnlib/prop_2.vnnlib"),
    ("acasxu", "onnx/ACASXU_run2a_4_4_batch_2000.onnx", "vnnlib/prop_3.vnnlib"),
]


@needs_benchmarks("vnncomp2022")
@pytest.mark.parametrize("bench,onnx_rel,vnnlib_rel", CI_SUBSET)
def test_vnncomp_subset_matches_ground_truth(bench, onnx_rel, vnnlib_rel, tmp_path):
    from reluverify.io.vnnlib import read_result
    from reluverify.runner import run_instance

    root = SHARED / bench
    truth = {}
    with open(root / "ground_truth.csv", newline="") as fh:
        for r in csv.DictReader(fh):
            truth[(r["onnx"], r["vnnlib"])] = r["ground_truth"]
    expected = truth[(Path(onnx_rel).name, Path(vnnlib_rel).name)]
    out = tmp_path / "result.txt"
    res = run_instance(root / (onnx_rel + ".gz"), root / (vnnlib_rel + ".gz"), 60, out=out)
    assert str(res.verdict) == expected
    verdict, x, y = read_result(out)
    assert verdict == expected
    if expected == "sat":
        from reluverify.io.onnx import onnxruntime_forward
        from reluverify.io.vnnlib import read_vnnlib

        prop = read_vnnlib(root / (vnnlib_rel + ".gz"))
        y_ort = onnxruntime_forward(root / (onnx_rel + ".gz"), x)
        assert prop.violation(x, y_ort) <= 1e-4


def test_huge_big_m_is_not_a_proof(monkeypatch):
    """An infeasible MILP over bounds beyond MAX_TRUSTED_BIG_M (solvers "proved" thin slabs empty,
    tests/test_near_boundary.py) is not taken as unsat: the answer becomes unknown."""
    import reluverify.check as trust_rule

    for seed in range(100, 124):
        rng = np.random.default_rng(seed)
        net = Network.random([6, 7, 5, 3], seed=seed)
        prop = _random_property(rng, 6, 3, net)
        res = check_property(net, prop, split=False, branch=False, attack=False, time_limit=60)
        if res.verdict == PropertyVerdict.UNSAT and res.method == "milp":
            break
    else:
        pytest.fail("no instance decided by the MILP among the seeds")
    monkeypatch.setattr(trust_rule, "MAX_TRUSTED_BIG_M", 1e-3)
    res = check_property(net, prop, split=False, branch=False, attack=False, time_limit=60)
    assert res.verdict == PropertyVerdict.UNKNOWN and "not taken as a proof" in res.message


@needs_benchmarks("vnncomp2022/mnist_fc")
def test_guided_attack_finds_what_random_starts_miss():
    """256x6 prop_1_0.05 is sat; descents from random starts stall about 0.8 above the unsafe set,
    the starts at the corner that minimises the symbolic lower bound reach it."""
    from reluverify.bounds.batch import batch_bounds, batch_linear_bounds
    from reluverify.io.onnx import from_onnx
    from reluverify.io.vnnlib import read_vnnlib
    from reluverify.engine.falsify import falsify

    root = SHARED / "mnist_fc"
    net = from_onnx(root / "onnx/mnist-net_256x6.onnx.gz")
    prop = read_vnnlib(root / "vnnlib/prop_1_0.05.vnnlib.gz")
    region = prop.regions[8]
    lo, hi = region.lower[None, :], region.upper[None, :]
    lowers, uppers = batch_bounds(net, lo, hi)
    _, A = batch_linear_bounds(net, lowers, uppers, lo, hi, region.a_x, region.a_y)
    _, v_random = falsify(net, region, seed=0)
    assert v_random > 0.1
    x, v_guided = falsify(net, region, seed=0, guide=A[0, 0])
    assert v_guided <= 0
    assert np.all(x >= region.lower) and np.all(x <= region.upper)
    assert prop.violation(x, net.forward(x)) <= 0
    res = check_property(net, prop, time_limit=60)
    assert str(res.verdict) == "sat" and res.method == "attack"
    assert prop.violation(res.x, net.forward(res.x)) <= 0
