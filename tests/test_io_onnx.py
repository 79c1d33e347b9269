"""Tests of the ONNX importer :func:`reluverify.io.from_onnx` and :func:`onnxruntime_forward`.

Every supported construct is built as a tiny model with ``onnx.helper`` and the imported
network's float64 forward pass is compared with onnxruntime (float32) on random inputs. The
VNN-COMP 2022 ACAS Xu and MNIST-FC networks in ``../shared`` are checked the same way when that
folder exists.
"""

from __future__ import annotations

import gzip
import importlib.util
import os
import pathlib
import re
import subprocess
import sys
import zlib

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="onnx is not installed; the ONNX importer needs it")
pytest.importorskip("onnxruntime", reason="onnxruntime is not installed; the ONNX tests compare with it")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

_SRC = pathlib.Path(__file__).resolve().parents[1] / "src"
if importlib.util.find_spec("reluverify") is None:  # running from a checkout that is not installed
    sys.path.insert(0, str(_SRC))

from reluverify.errors import (  # noqa: E402
    MissingDependencyError,
    ModelFileError,
    NetworkError,
    UnsupportedLayerError,
)
from reluverify.io import from_onnx, onnxruntime_forward  # noqa: E402
from reluverify.model import Network  # noqa: E402

from conftest import BENCHMARKS, needs_benchmarks  # noqa: E402

SHARED = BENCHMARKS / "vnncomp2022"
ACAS_FILES = sorted((SHARED / "acasxu/onnx").glob("*.onnx.gz")) if SHARED.exists() else []
MNIST_FILES = sorted((SHARED / "mnist_fc/onnx").glob("*.onnx.gz")) if SHARED.exists() else []
needs_shared = needs_benchmarks("vnncomp2022")
N_POINTS = 50
TOL = 1e-5  # relative to the largest output magnitude (float32 onnxruntime vs float64 reluverify)


# --------------------------------------------------------------------------- model builders
class G:
    """A small helper that collects nodes and initializers and builds an ONNX model."""

    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)
        self.nodes: list = []
        self.inits: list = []

    def const(self, name: str, value) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def rand(self, name: str, *shape, scale: float = 1.0) -> str:
        return self.const(name, (scale * self.rng.normal(size=shape)).astype(np.float32))

    def node(self, op: str, inputs, output: str, name: str | None = None, **attrs) -> str:
        self.nodes.append(helper.make_node(op, list(inputs), [output], name=name or output, **attrs))
        return output

    def model(self, in_shape, out: str = "y", in_name: str = "x", opset: int = 13, outputs=None):
        inputs = [helper.make_tensor_value_info(in_name, TensorProto.FLOAT, list(in_shape))]
        outs = [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in (outputs or [out])]
        graph = helper.make_graph(self.nodes, "test-graph", inputs, outs, initializer=self.inits)
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        m.ir_version = 8  # readable by every onnxruntime >= 1.14
        return m


def _check(model, *, low=-1.0, high=1.0, seed=1, n=N_POINTS) -> Network:
    """Import ``model`` and compare its forward pass with onnxruntime on ``n`` random inputs."""
    net = from_onnx(model)
    rng = np.random.default_rng(seed)
    x = rng.uniform(low, high, size=(n, net.n_inputs)).astype(np.float32).astype(np.float64)
    ours = net.forward(x)
    ref = onnxruntime_forward(model, x)
    assert ours.shape == ref.shape
    scale = max(1.0, float(np.max(np.abs(ref))))
    assert np.max(np.abs(ours - ref)) <= TOL * scale, np.max(np.abs(ours - ref))
    assert np.std(ref) > 1e-3  # the outputs actually vary (no accidental constant network)
    return net


def _mlp_tail(g: G, x: str, n_in: int, hidden: int = 7, n_out: int = 3) -> str:
    """Append Gemm -> Relu -> Gemm (output "y") to ``x`` of shape (1, n_in)."""
    h = g.node("Gemm", [x, g.rand("tw1", hidden, n_in), g.rand("tb1", hidden)], "th", transB=1)
    r = g.node("Relu", [h], "tr")
    return g.node("Gemm", [r, g.rand("tw2", n_out, hidden), g.rand("tb2", n_out)], "y", transB=1)


# --------------------------------------------------------------------------- supported constructs
@pytest.mark.parametrize("trans_a", [0, 1])
@pytest.mark.parametrize("trans_b", [0, 1])
@pytest.mark.parametrize("alpha,beta", [(1.0, 1.0), (0.7, -1.3)])
@pytest.mark.parametrize("bias", ["vector", "row", "none"])
def test_gemm_attributes(trans_a, trans_b, alpha, beta, bias):
    g = G(seed=trans_a + 2 * trans_b)
    n_in, n_out = 6, 4
    # with transA the variable operand A must be (K, M): feed a (n_in, 1) input (no batch dim)
    in_shape = [n_in, 1] if trans_a else ["batch", n_in]
    w = g.rand("w", *((n_out, n_in) if trans_b else (n_in, n_out)))
    inputs = ["x", w]
    if bias == "vector":
        inputs.append(g.rand("c", n_out))
    elif bias == "row":
        inputs.append(g.rand("c", 1, n_out))
    h = g.node("Gemm", inputs, "h", name="gemm0", alpha=alpha, beta=beta, transA=trans_a, transB=trans_b)
    r = g.node("Relu", [h], "r")
    g.node("Gemm", [r, g.rand("w2", 3, n_out), g.rand("b2", 3)], "y", transB=1)
    net = _check(g.model(in_shape))
    assert net.sizes == (n_in, n_out, 3)
    assert net.input_shape == ((n_in, 1) if trans_a else (n_in,))
    assert [layer.activation for layer in net.layers] == ["relu", "linear"]


def test_gemm_with_the_input_as_second_operand():
    g = G(seed=5)
    h = g.node("Gemm", [g.rand("a", 5, 4), "x", g.rand("c", 5, 1)], "h", transB=1, alpha=0.5)  # (5,4)@(4,1)
    r = g.node("Relu", [h], "r")
    g.node("Gemm", [g.rand("a2", 2, 5), r], "y")  # (2,5)@(5,1)
    net = _check(g.model([1, 4]))
    assert net.sizes == (4, 5, 2)


def test_matmul_add_stack_and_input_shape():
    g = G()
    h = g.node("MatMul", ["x", g.rand("w1", 4, 6)], "h")
    h = g.node("Add", [h, g.rand("b1", 6)], "hb")
    r = g.node("Relu", [h], "r")
    h2 = g.node("MatMul", [r, g.rand("w2", 6, 3)], "h2")
    g.node("Add", [g.rand("b2", 3), h2], "y")  # constant first
    net = _check(g.model(["N", 4]))
    assert net.sizes == (4, 6, 3) and net.input_shape == (4,)
    assert net.notes == ()
    np.testing.assert_allclose(net.layers[0].weight, numpy_helper.to_array(g.inits[0]).T)


def test_matmul_variants_vector_input_and_constant_on_the_left():
    g = G(seed=2)
    # input (1, 4, 1): A(6,4) @ x -> (1, 6, 1); then a 1-D input chain via Reshape
    h = g.node("MatMul", [g.rand("a", 6, 4), "x"], "h")
    h = g.node("Add", [h, g.rand("b", 6, 1)], "hb")
    r = g.node("Relu", [h], "r")
    v = g.node("Reshape", [r, g.const("s", np.array([6], dtype=np.int64))], "v")  # 1-D (6,)
    h2 = g.node("MatMul", [v, g.rand("w2", 6, 5)], "h2")  # vector @ matrix -> (5,)
    r2 = g.node("Relu", [h2], "r2")
    h3 = g.node("MatMul", [g.rand("a3", 2, 5, 5), r2], "h3")  # batched matrix @ vector -> (2, 5)
    g.node("MatMul", [h3, g.rand("w4", 5)], "y")  # matrix @ vector -> (2,)
    net = _check(g.model([1, 4, 1]))
    assert net.sizes == (4, 6, 5, 2)
    assert net.input_shape == (4, 1)
    assert any("composed" in note for note in net.notes)


def test_input_normalisation_sub_div_is_folded_and_noted():
    g = G()
    s = g.node("Sub", ["x", g.const("mean", np.array([[[[0.1, -0.2, 0.3, 0.0, 2.0]]]], np.float32))], "xs",
               name="norm_sub")
    d = g.node("Div", [s, g.const("std", np.array([0.5, 2.0, 1.5, 1.0, 4.0], np.float32))], "xd", name="norm_div")
    f = g.node("Flatten", [d], "xf", axis=1)
    h = g.node("MatMul", [f, g.rand("w1", 5, 8)], "h", name="first_matmul")
    h = g.node("Add", [h, g.rand("b1", 8)], "hb")
    r = g.node("Relu", [h], "r")
    h2 = g.node("MatMul", [r, g.rand("w2", 8, 3)], "h2")
    g.node("Add", [h2, g.rand("b2", 3)], "y")
    net = _check(g.model([1, 1, 1, 5]), low=-2, high=2)
    assert net.input_shape == (1, 1, 5)
    assert net.sizes == (5, 8, 3)
    (note,) = net.notes
    assert "normalisation" in note and "norm_sub" in note and "norm_div" in note and "first_matmul" in note


def test_mul_add_sub_by_constants_scalar_and_per_element():
    g = G(seed=3)
    h = g.node("Gemm", ["x", g.rand("w1", 6, 5), g.rand("b1", 6)], "h", transB=1)
    h = g.node("Mul", [h, g.const("two", np.array(2.5, np.float32))], "hm")  # scalar
    h = g.node("Add", [h, g.rand("shift", 1, 6)], "ha")  # per element
    h = g.node("Sub", [g.rand("c", 6), h], "hs")  # constant minus tensor
    r = g.node("Relu", [h], "r")
    r = g.node("Mul", [g.rand("scale", 6), r], "rm")  # per element, after a ReLU
    r = g.node("Div", [r, g.const("d", np.array([3.0], np.float32))], "rd")
    g.node("Gemm", [r, g.rand("w2", 6, 2)], "y")
    net = _check(g.model([1, 5]))
    assert net.sizes == (5, 6, 2)
    assert any("following" in note for note in net.notes)  # Mul/Div after the Relu folded forward


def test_broadcast_add_expands_the_tensor():
    g = G(seed=4)
    h = g.node("Gemm", ["x", g.rand("w1", 4, 3)], "h")  # (1, 3)
    h = g.node("Add", [h, g.rand("grid", 2, 3)], "hb")  # broadcast to (2, 3)
    r = g.node("Relu", [h], "r")
    f = g.node("Flatten", [r], "f", axis=0)  # (1, 6)
    g.node("Gemm", [f, g.rand("w2", 6, 2)], "y")
    net = _check(g.model([1, 4]))
    assert net.sizes == (4, 6, 2)


@pytest.mark.parametrize("axis", [1, 2, -1])
def test_flatten(axis):
    g = G(seed=6)
    f = g.node("Flatten", ["x"], "f", axis=axis)  # (1, 24) or (2, 12) or (6, 4)
    rows, cols = {1: (1, 24), 2: (2, 12), -1: (6, 4)}[axis]
    h = g.node("MatMul", [f, g.rand("w1", cols, 5)], "h")  # (rows, 5)
    r = g.node("Relu", [h], "r")
    f2 = g.node("Flatten", [r], "f2", axis=0)  # (1, rows * 5)
    g.node("MatMul", [f2, g.rand("w2", rows * 5, 3)], "y")
    net = _check(g.model([1, 2, 3, 4]))
    assert net.input_shape == (2, 3, 4)
    assert net.n_inputs == 24 and net.n_outputs == 3


def test_reshape_with_zero_and_minus_one_and_transpose_in_the_middle():
    g = G(seed=7)
    h = g.node("Reshape", ["x", g.const("s1", np.array([0, 3, -1], np.int64))], "h")  # (1, 3, 4)
    h = g.node("Transpose", [h], "ht", perm=[0, 2, 1])  # (1, 4, 3)
    h = g.node("Reshape", [h, g.const("s2", np.array([1, -1], np.int64))], "hf")  # (1, 12)
    _mlp_tail(g, h, 12)
    net = _check(g.model([1, 12]))
    assert net.sizes == (12, 7, 3)
    assert any("Transpose" in note for note in net.notes)


def test_identity_dropout_and_cast_are_skipped():
    g = G(seed=8)
    h = g.node("Identity", ["x"], "xi")
    h = g.node("Cast", [h], "xc", to=TensorProto.FLOAT)
    h = g.node("Gemm", [h, g.rand("w1", 6, 3), g.rand("b1", 6)], "h", transB=1)
    h = g.node("Dropout", [h, g.const("ratio", np.array(0.5, np.float32))], "hd", name="drop")
    r = g.node("Relu", [h], "r")
    g.node("Gemm", [r, g.rand("w2", 2, 6)], "y", transB=1)
    net = _check(g.model([1, 3]))
    assert net.sizes == (3, 6, 2)
    assert any("drop" in note and "identity" in note for note in net.notes)


def test_leading_transpose_is_a_permutation():
    g = G(seed=9)
    t = g.node("Transpose", ["x"], "t", name="to_nchw", perm=[0, 3, 1, 2])  # (1, 2, 3, 4)
    f = g.node("Flatten", [t], "f")
    _mlp_tail(g, f, 24)
    net = _check(g.model([1, 3, 4, 2]))
    assert net.input_shape == (3, 4, 2)
    assert any("to_nchw" in note for note in net.notes)


def test_transpose_after_a_relu_becomes_a_kept_layer_only_when_needed():
    g = G(seed=10)
    h = g.node("MatMul", ["x", g.rand("w1", 3, 6)], "h")  # (1, 2, 6)
    r = g.node("Relu", [h], "r")
    t = g.node("Transpose", [r], "t", perm=[0, 2, 1])  # (1, 6, 2) -- folded into the next MatMul
    f = g.node("Reshape", [t, g.const("s", np.array([1, 12], np.int64))], "f")
    g.node("MatMul", [f, g.rand("w2", 12, 3)], "y")
    net = _check(g.model([1, 2, 3]))
    assert net.sizes == (6, 12, 3)


def test_constant_nodes_and_shape_gather_concat_reshape():
    """The PyTorch export pattern x.view(x.size(0), -1) plus weights given as Constant nodes."""
    g = G(seed=11)
    shp = g.node("Shape", ["x"], "shp")
    b0 = g.node("Gather", [shp, g.const("zero", np.array(0, np.int64))], "b0", axis=0)
    b0 = g.node("Unsqueeze", [b0, g.const("ax0", np.array([0], np.int64))], "b0u")
    g.nodes.append(helper.make_node("Constant", [], ["minus1"], name="c_m1", value_ints=[-1]))
    tgt = g.node("Concat", [b0, "minus1"], "tgt", axis=0)
    f = g.node("Reshape", ["x", tgt], "f")
    w = g.rng.normal(size=(20, 6)).astype(np.float32)
    g.nodes.append(helper.make_node("Constant", [], ["w1"], name="c_w1", value=numpy_helper.from_array(w)))
    g.nodes.append(helper.make_node("Constant", [], ["b1"], name="c_b1",
                                    value_floats=[0.1, -0.2, 0.3, 0.0, 0.5, -0.4]))
    h = g.node("MatMul", [f, "w1"], "h")
    h = g.node("Add", [h, "b1"], "hb")
    r = g.node("Relu", [h], "r")
    g.node("MatMul", [r, g.rand("w2", 6, 2)], "y")
    net = _check(g.model(["batch", 4, 5]))
    assert net.input_shape == (4, 5) and net.sizes == (20, 6, 2)


def test_squeeze_unsqueeze_old_and_new_opsets():
    for opset in (11, 13):
        g = G(seed=12)
        if opset >= 13:
            s = g.node("Squeeze", ["x", g.const("ax", np.array([1], np.int64))], "s")
        else:
            s = g.node("Squeeze", ["x"], "s", axes=[1])
        h = g.node("Gemm", [s, g.rand("w1", 5, 6), g.rand("b1", 6)], "h")  # (1, 6)
        if opset >= 13:
            u = g.node("Unsqueeze", [h, g.const("ax2", np.array([-1], np.int64))], "u")
        else:
            u = g.node("Unsqueeze", [h], "u", axes=[-1])
        r = g.node("Relu", [u], "r")  # (1, 6, 1)
        q = g.node("Squeeze", [r], "q")  # all unit axes: (6,)
        g.node("MatMul", [q, g.rand("w2", 6, 3)], "y")
        net = _check(g.model([1, 1, 5], opset=opset))
        assert net.sizes == (5, 6, 3)


def test_batchnormalization_is_folded():
    g = G(seed=13)
    h = g.node("Gemm", ["x", g.rand("w1", 6, 4), g.rand("b1", 6)], "h", transB=1)
    bn = g.node(
        "BatchNormalization",
        [h, g.rand("gamma", 6), g.rand("beta", 6), g.rand("mu", 6),
         g.const("var", np.linspace(0.3, 2.0, 6).astype(np.float32))],
        "bn",
        epsilon=1e-3,
    )
    r = g.node("Relu", [bn], "r")
    g.node("Gemm", [r, g.rand("w2", 2, 6)], "y", transB=1)
    net = _check(g.model([1, 4]))
    assert net.sizes == (4, 6, 2)


def test_graph_ending_with_relu_and_relu_on_the_input():
    g = G(seed=14)
    r0 = g.node("Relu", ["x"], "r0")
    h = g.node("Gemm", [r0, g.rand("w1", 5, 4)], "h", transB=1)
    g.node("Relu", [h], "y")
    net = _check(g.model([1, 4]))
    assert [layer.activation for layer in net.layers] == ["relu", "relu"]
    assert net.sizes == (4, 4, 5)
    assert any("identity layer" in note for note in net.notes)
    assert any("ends with a Relu" in note for note in net.notes)


def test_final_softmax_is_dropped():
    g = G(seed=15)
    h = g.node("Gemm", ["x", g.rand("w1", 3, 4)], "logits")
    g.node("Softmax", [h], "y", name="probs", axis=-1)
    model = g.model([1, 3])
    net = from_onnx(model)
    x = np.random.default_rng(0).uniform(-1, 1, size=(20, 3))
    z = net.forward(x)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    np.testing.assert_allclose(p / p.sum(axis=1, keepdims=True), onnxruntime_forward(model, x), atol=1e-6)
    assert any("probs" in note and "dropped" in note for note in net.notes)


def test_gzip_files_by_suffix_and_by_magic_bytes(tmp_path):
    g = G(seed=16)
    _mlp_tail(g, "x", 5)
    model = g.model([1, 5])
    data = gzip.compress(model.SerializeToString())
    for fname in ("net.onnx.gz", "disguised.onnx"):
        path = tmp_path / fname
        path.write_bytes(data)
        net = _check(path)
        assert net.name in ("net", "disguised")
        assert net.sizes == (5, 7, 3)
    plain = tmp_path / "plain.onnx"
    onnx.save(model, str(plain))
    assert from_onnx(str(plain), name="renamed").name == "renamed"
    _check(str(plain))


def test_onnxruntime_forward_single_batch_and_cache(tmp_path):
    from reluverify.io import onnx as onnx_io

    g = G(seed=17)
    _mlp_tail(g, "x", 5)
    path = tmp_path / "m.onnx"
    onnx.save(g.model(["batch", 5]), str(path))
    x = np.random.default_rng(0).normal(size=(4, 5))
    batch = onnxruntime_forward(path, x)
    assert batch.shape == (4, 3) and batch.dtype == np.float64
    for i in range(4):
        single = onnxruntime_forward(str(path), x[i])
        assert single.shape == (3,)
        np.testing.assert_allclose(single, batch[i], rtol=1e-6, atol=1e-6)
    assert onnx_io._session(path) is onnx_io._session(str(path))  # one cached session per file
    with pytest.raises(ValueError):
        onnxruntime_forward(path, np.zeros(7))


# --------------------------------------------------------------------------- unsupported constructs
def _unsupported_message(model) -> str:
    with pytest.raises(UnsupportedLayerError) as info:
        from_onnx(model)
    msg = str(info.value)
    assert "reluverify supports Dense/Gemm/MatMul+Add/Relu stacks" in msg
    return msg


def test_grouped_conv_is_unsupported():
    """Plain convolutions are imported (tests/test_io_onnx_conv.py); grouped ones are not."""
    g = G()
    c = g.node("Conv", ["x", g.rand("k", 2, 1, 3, 3)], "c", name="conv_1", group=2)
    f = g.node("Flatten", [c], "f")
    g.node("Gemm", [f, g.rand("w", 8, 3)], "y")
    msg = _unsupported_message(g.model([1, 2, 4, 4]))
    assert "Conv" in msg and "conv_1" in msg and "group=2" in msg


@pytest.mark.parametrize("op", ["Sigmoid", "Tanh", "Softmax"])
def test_hidden_nonlinearities_are_unsupported(op):
    g = G()
    h = g.node("Gemm", ["x", g.rand("w1", 4, 5)], "h")
    a = g.node(op, [h], "a", name=f"hidden_{op.lower()}")
    g.node("Gemm", [a, g.rand("w2", 5, 2)], "y")
    msg = _unsupported_message(g.model([1, 4]))
    assert op in msg and f"hidden_{op.lower()}" in msg


def test_skip_connection_add_is_unsupported():
    g = G()
    h = g.node("Gemm", ["x", g.rand("w1", 4, 4)], "h", name="g1")
    r = g.node("Relu", [h], "r", name="r1")
    h2 = g.node("Gemm", [r, g.rand("w2", 4, 4)], "h2", name="g2")
    g.node("Add", [r, h2], "y", name="skip_add")
    msg = _unsupported_message(g.model([1, 4]))
    assert "Add" in msg and "skip_add" in msg and "branches" in msg


def test_add_of_two_input_dependent_tensors_is_unsupported():
    g = G()
    a = g.node("Gemm", ["x", g.rand("w1", 4, 3)], "a", name="left")
    g.node("Gemm", ["x", g.rand("w2", 4, 3)], "b", name="right")
    g.node("Add", [a, "b"], "y", name="merge")
    msg = _unsupported_message(g.model([1, 4]))
    assert "Gemm" in msg and "left" in msg and "right" in msg


def test_two_outputs_are_unsupported():
    g = G()
    h = g.node("Gemm", ["x", g.rand("w1", 4, 3)], "h", name="hidden_gemm")
    r = g.node("Relu", [h], "r", name="hidden_relu")
    g.node("Gemm", [r, g.rand("w2", 3, 2)], "y", name="out_gemm")
    msg = _unsupported_message(g.model([1, 4], outputs=["y", "r"]))
    assert "2 outputs" in msg and "Relu" in msg and "hidden_relu" in msg and "out_gemm" in msg


def test_two_inputs_and_division_by_the_tensor_are_unsupported():
    g = G()
    g.node("Add", ["x", "x2"], "y", name="sum")
    model = g.model([1, 3])
    model.graph.input.append(helper.make_tensor_value_info("x2", TensorProto.FLOAT, [1, 3]))
    msg = _unsupported_message(model)
    assert "2 inputs" in msg and "sum" in msg

    g = G()
    g.node("Div", [g.const("one", np.array(1.0, np.float32)), "x"], "y", name="reciprocal")
    msg = _unsupported_message(g.model([1, 3]))
    assert "Div" in msg and "reciprocal" in msg


def test_unnamed_nodes_are_named_by_index():
    g = G()
    h = g.node("Gemm", ["x", g.rand("w1", 4, 3)], "h")
    g.nodes.append(helper.make_node("MaxPool", [h], ["y"], kernel_shape=[2]))
    msg = _unsupported_message(g.model([1, 4]))
    assert "MaxPool node #1" in msg


def test_nan_weights_raise_network_error():
    g = G()
    g.node("Gemm", ["x", g.const("w", np.array([[np.nan, 1.0]], np.float32))], "y", transB=1)
    with pytest.raises(NetworkError):
        from_onnx(g.model([1, 2]))


# --------------------------------------------------------------------------- files and dependencies
def test_malformed_truncated_and_missing_files(tmp_path):
    bad = tmp_path / "garbage.onnx"
    bad.write_bytes(b"\xff\xfe this is not a protobuf \x00\x01\x02" * 10)
    text = tmp_path / "text.onnx"
    text.write_text("hello, I am a text file\n")
    g = G()
    _mlp_tail(g, "x", 5)
    truncated = tmp_path / "cut.onnx.gz"
    data = gzip.compress(g.model([1, 5]).SerializeToString())
    truncated.write_bytes(data[: len(data) // 2])
    missing = tmp_path / "nowhere.onnx"
    for path in (bad, text, truncated, missing, tmp_path):
        with pytest.raises(ModelFileError) as info:
            from_onnx(path)
        assert str(path) in str(info.value)
    with pytest.raises(ModelFileError):
        onnxruntime_forward(missing, np.zeros(5))
    with pytest.raises(NetworkError):
        from_onnx(12345)


def test_missing_onnx_is_a_typed_error(monkeypatch):
    from reluverify.io import onnx as onnx_io

    monkeypatch.setitem(sys.modules, "onnx", None)  # makes `import onnx` raise ImportError
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'reluverify\[onnx\]'"):
        onnx_io.from_onnx("whatever.onnx")
    with pytest.raises(MissingDependencyError, match=r"pip install 'reluverify\[onnx\]'"):
        onnx_io.onnxruntime_forward("whatever.onnx", [0.0])


def test_importing_reluverify_does_not_import_onnx():
    code = (
        "import sys\n"
        "import reluverify, reluverify.io\n"
        "from reluverify.io import from_onnx, onnxruntime_forward\n"
        "assert 'onnx' not in sys.modules, 'onnx was imported'\n"
        "assert 'onnxruntime' not in sys.modules, 'onnxruntime was imported'\n"
    )
    import reluverify

    roots = {str(pathlib.Path(p).resolve().parent) for p in reluverify.__path__}
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(sorted(roots) + [env.get("PYTHONPATH", "")])
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


# --------------------------------------------------------------------------- shared benchmarks
ACAS_LOW = np.array([-0.328422877, -0.499999896, -0.499999896, -0.5, -0.5])
ACAS_HIGH = np.array([0.679857769, 0.499999896, 0.499999896, 0.5, 0.5])


def _compare_with_onnxruntime(path, x):
    net = from_onnx(path)
    np.testing.assert_allclose(net.forward(x), onnxruntime_forward(path, x), rtol=1e-4, atol=1e-4)
    return net


@needs_shared
def test_shared_benchmark_files_are_all_present():
    assert len(ACAS_FILES) == 45
    assert len(MNIST_FILES) == 3


@needs_shared
@pytest.mark.parametrize("path", ACAS_FILES, ids=lambda p: p.name.split(".")[0])
def test_acasxu_matches_onnxruntime(path):
    rng = np.random.default_rng(zlib.crc32(path.name.encode()))
    x = rng.uniform(ACAS_LOW, ACAS_HIGH, size=(20, 5)).astype(np.float32).astype(np.float64)
    net = _compare_with_onnxruntime(path, x)
    assert net.input_shape == (1, 1, 5)
    assert net.sizes == (5, 50, 50, 50, 50, 50, 50, 5)
    assert [layer.activation for layer in net.layers] == ["relu"] * 6 + ["linear"]
    assert net.name == path.name[: -len(".onnx.gz")]


@needs_shared
@pytest.mark.parametrize("path", MNIST_FILES, ids=lambda p: p.name.split(".")[0])
def test_mnist_fc_matches_onnxruntime(path):
    depth = int(re.search(r"256x(\d+)", path.name).group(1))
    rng = np.random.default_rng(depth)
    x = rng.uniform(0.0, 1.0, size=(20, 784)).astype(np.float32).astype(np.float64)
    net = _compare_with_onnxruntime(path, x)
    assert net.input_shape == (784, 1)
    assert net.sizes == (784,) + (256,) * depth + (10,)
    assert [layer.activation for layer in net.layers] == ["relu"] * depth + ["linear"]
