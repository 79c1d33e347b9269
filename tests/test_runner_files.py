"""Files of `reluverify vnnlib` / `run` / `score` (issue #13, items 5-7): one counterexample file
per instance row, missing or wrong files as one-line errors with exit status 2, and one rule for
NAME / NAME.gz in both commands."""

import gzip

import numpy as np
import pytest

from reluverify import Network
from reluverify.cli import main
from reluverify.io.vnnlib import read_result

NET = Network.random([2, 6, 2], seed=3)


def _save_onnx(net: Network, path):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits, cur = [], [], "x"
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


def _write_box_property(path, lo: float, hi: float):
    """Every input in [lo, hi]^2 is a counterexample (the output condition always holds), so the
    counterexample written for this property lies in this box."""
    lines = ["(declare-const X_0 Real)", "(declare-const X_1 Real)", "(declare-const Y_0 Real)", "(declare-const Y_1 Real)"]
    for i in range(2):
        lines += [f"(assert (>= X_{i} {lo!r}))", f"(assert (<= X_{i} {hi!r}))"]
    lines.append("(assert (<= Y_0 1e9))")
    path.write_text("\n".join(lines) + "\n")
    return path


def _gzip(path):
    gz = path.with_name(path.name + ".gz")
    gz.write_bytes(gzip.compress(path.read_bytes()))
    path.unlink()
    return gz


def _assert_cex_in_box(path, lo, hi):
    verdict, x, y = read_result(path)
    assert verdict == "sat"
    assert np.all(x >= lo - 1e-9) and np.all(x <= hi + 1e-9), (path, x)
    assert np.allclose(y, NET.forward(x), atol=1e-5)


def _one_line_error(capsys, *words):
    err = capsys.readouterr().err
    assert err.startswith("reluverify: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for w in words:
        assert w in err, err
    return err


# --------------------------------------------------------------------------- item 5
def test_cex_files_are_unique_for_names_that_differ_after_a_dot(tmp_path):
    _save_onnx(NET, tmp_path / "mnist-net_256x2.onnx")
    _write_box_property(tmp_path / "prop_1_0.03.vnnlib", 0.0, 0.03)
    _write_box_property(tmp_path / "prop_1_0.05.vnnlib", 0.5, 0.55)
    (tmp_path / "instances.csv").write_text(
        "mnist-net_256x2.onnx,prop_1_0.03.vnnlib,20\nmnist-net_256x2.onnx,prop_1_0.05.vnnlib,20\n")
    cex = tmp_path / "cex"
    assert main(["run", str(tmp_path / "instances.csv"), "--out", str(tmp_path / "r.csv"),
                 "--cex-dir", str(cex), "--quiet"]) == 0
    assert sorted(p.name for p in cex.iterdir()) == ["mnist-net_256x2-prop_1_0.03.txt", "mnist-net_256x2-prop_1_0.05.txt"]
    _assert_cex_in_box(cex / "mnist-net_256x2-prop_1_0.03.txt", 0.0, 0.03)
    _assert_cex_in_box(cex / "mnist-net_256x2-prop_1_0.05.txt", 0.5, 0.55)


def test_cex_files_of_rows_with_the_same_names_get_the_row_number(tmp_path):
    _save_onnx(NET, tmp_path / "net.onnx")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _write_box_property(tmp_path / "a" / "prop.vnnlib", 0.0, 0.1)
    _write_box_property(tmp_path / "b" / "prop.vnnlib", 0.7, 0.8)
    (tmp_path / "instances.csv").write_text("net.onnx,a/prop.vnnlib,20\nnet.onnx,b/prop.vnnlib,20\n")
    cex = tmp_path / "cex"
    assert main(["run", str(tmp_path / "instances.csv"), "--out", str(tmp_path / "r.csv"),
                 "--cex-dir", str(cex), "--quiet"]) == 0
    assert sorted(p.name for p in cex.iterdir()) == ["net-prop-row1.txt", "net-prop-row2.txt"]
    _assert_cex_in_box(cex / "net-prop-row1.txt", 0.0, 0.1)
    _assert_cex_in_box(cex / "net-prop-row2.txt", 0.7, 0.8)


# --------------------------------------------------------------------------- item 6
def test_run_with_a_missing_instances_file_is_a_one_line_error(tmp_path, capsys):
    out = tmp_path / "results" / "r.csv"
    assert main(["run", str(tmp_path / "missing.csv"), "--out", str(out)]) == 2
    _one_line_error(capsys, "missing.csv", "does not exist")
    assert not out.parent.exists()


def test_run_refuses_an_out_file_that_is_not_a_results_file(tmp_path, capsys):
    _save_onnx(NET, tmp_path / "net.onnx")
    _write_box_property(tmp_path / "p.vnnlib", 0.0, 0.1)
    (tmp_path / "instances.csv").write_text("net.onnx,p.vnnlib,20\n")
    truth = tmp_path / "ground_truth.csv"
    text = "onnx,vnnlib,ground_truth\nnet.onnx,p.vnnlib,sat\n"
    truth.write_text(text)
    assert main(["run", str(tmp_path / "instances.csv"), "--out", str(truth), "--quiet"]) == 2
    _one_line_error(capsys, "ground_truth.csv", "not a results file")
    assert truth.read_text() == text  # not appended to


@pytest.fixture()
def scored(tmp_path):
    """A finished run (one sat instance) and its ground truth."""
    _save_onnx(NET, tmp_path / "net.onnx")
    _write_box_property(tmp_path / "p.vnnlib", 0.0, 0.1)
    (tmp_path / "instances.csv").write_text("net.onnx,p.vnnlib,20\n")
    (tmp_path / "ground_truth.csv").write_text("onnx,vnnlib,ground_truth\nnet.onnx,p.vnnlib,sat\n")
    assert main(["run", str(tmp_path / "instances.csv"), "--out", str(tmp_path / "r.csv"), "--quiet"]) == 0
    return tmp_path


def test_score_of_a_real_results_file_still_works(scored, capsys):
    assert main(["score", str(scored / "r.csv"), str(scored / "ground_truth.csv")]) == 0
    assert "| correct | 1 |" in capsys.readouterr().out


def test_score_with_a_missing_results_file_is_a_one_line_error(scored, capsys):
    assert main(["score", str(scored / "missing.csv"), str(scored / "ground_truth.csv")]) == 2
    _one_line_error(capsys, "missing.csv", "does not exist")


def test_score_with_a_missing_ground_truth_is_a_one_line_error(scored, capsys):
    assert main(["score", str(scored / "r.csv"), str(scored / "no_truth.csv")]) == 2
    _one_line_error(capsys, "no_truth.csv", "does not exist")


def test_score_of_the_ground_truth_against_itself_is_a_one_line_error(scored, capsys):
    truth = str(scored / "ground_truth.csv")
    assert main(["score", truth, truth]) == 2
    _one_line_error(capsys, "no rows in the results format")


def test_run_checks_the_ground_truth_before_running(scored, capsys):
    out = scored / "new.csv"
    assert main(["run", str(scored / "instances.csv"), "--out", str(out), "--quiet",
                 "--ground-truth", str(scored / "no_truth.csv")]) == 2
    _one_line_error(capsys, "no_truth.csv")
    assert not out.exists()


# --------------------------------------------------------------------------- item 7
@pytest.fixture()
def gz_only(tmp_path):
    """net.onnx and p.vnnlib exist only as net.onnx.gz and p.vnnlib.gz."""
    _gzip(_save_onnx(NET, tmp_path / "net.onnx"))
    _gzip(_write_box_property(tmp_path / "p.vnnlib", 0.2, 0.3))
    return tmp_path


def test_vnnlib_command_reads_the_gz_twin(gz_only):
    out = gz_only / "result.txt"
    assert main(["vnnlib", str(gz_only / "net.onnx"), str(gz_only / "p.vnnlib"), "--timeout", "20",
                 "--out", str(out)]) == 0
    _assert_cex_in_box(out, 0.2, 0.3)


def test_run_command_reads_the_gz_twin(gz_only):
    from reluverify.runner import read_results

    (gz_only / "instances.csv").write_text("net.onnx,p.vnnlib,20\n")
    cex = gz_only / "cex"
    assert main(["run", str(gz_only / "instances.csv"), "--out", str(gz_only / "r.csv"), "--cex-dir", str(cex),
                 "--quiet"]) == 0
    assert [r["verdict"] for r in read_results(gz_only / "r.csv")] == ["sat"]
    _assert_cex_in_box(cex / "net-p.txt", 0.2, 0.3)


def test_a_file_missing_with_its_gz_twin_names_both(gz_only, capsys):
    from reluverify.errors import ModelFileError
    from reluverify.runner import resolve_path

    assert resolve_path(gz_only / "net.onnx") == gz_only / "net.onnx.gz"
    with pytest.raises(ModelFileError, match=r"other\.onnx does not exist \(nor .*other\.onnx\.gz\)"):
        resolve_path(gz_only / "other.onnx")
    assert main(["vnnlib", str(gz_only / "net.onnx"), str(gz_only / "q.vnnlib"), "--timeout", "20"]) == 2
    _one_line_error(capsys, "q.vnnlib does not exist", "q.vnnlib.gz")
