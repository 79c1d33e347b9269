"""The ONNX importer on convolutional networks (issue #15): random architectures against
onnxruntime's forward pass (to 1e-6 of the output scale with dyadic weights and inputs, where
float32 products are exact; to 1e-5 with Gaussian weights), folded input normalisation,
BatchNormalization folding, Conv1D, hostile Conv nodes (typed errors naming the node), and ERAN's
convSmall when the shared files exist.

onnxruntime has no float64 Conv, and onnx's reference evaluator disagrees with onnxruntime (and
with reluverify) on convolutions with unequal strides or kernels (seen with onnx 1.17), so
onnxruntime is the reference here.
"""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="onnx is not installed; the ONNX importer needs it")
pytest.importorskip("onnxruntime", reason="onnxruntime is not installed; the ONNX tests compare with it")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import reluverify as rv  # noqa: E402
from reluverify.errors import InputError, UnsupportedLayerError  # noqa: E402
from reluverify.io.onnx import onnxruntime_forward  # noqa: E402
from reluverify.model.layers import Conv2D, Dense, MaxPool2D  # noqa: E402

from conftest import BENCHMARKS, needs_benchmarks  # noqa: E402

ERAN = BENCHMARKS / "eran"
CONV_SMALL = ERAN / "convSmallRELU__Point.onnx"
MNIST_CSV = ERAN / "mnist_test.csv"


class G:
    """Nodes and initializers of a small ONNX model in float32 or float64."""

    def __init__(self, rng, dtype=np.float32, dyadic=False):
        self.rng, self.dtype, self.dyadic = rng, dtype, dyadic
        self.nodes, self.inits, self.n = [], [], 0

    def const(self, value) -> str:
        self.n += 1
        name = f"c{self.n}"
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=self.dtype), name))
        return name

    def const_int(self, value) -> str:
        self.n += 1
        name = f"c{self.n}"
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=np.int64), name))
        return name

    def rand(self, *shape, scale=1.0) -> str:
        if self.dyadic:  # multiples of 1/8: float32 products and short sums are exact
            return self.const(np.round(8 * scale * self.rng.normal(size=shape)) / 8)
        return self.const(scale * self.rng.normal(size=shape))

    def node(self, op, inputs, name=None, **attrs) -> str:
        self.n += 1
        out = f"t{self.n}"
        self.nodes.append(helper.make_node(op, list(inputs), [out], name=name or f"{op.lower()}_{self.n}", **attrs))
        return out

    def model(self, in_shape, out):
        t = TensorProto.FLOAT if self.dtype == np.float32 else TensorProto.DOUBLE
        self.nodes[-1].output[0] = "y"
        graph = helper.make_graph(self.nodes, "g", [helper.make_tensor_value_info("x", t, list(in_shape))],
                                  [helper.make_tensor_value_info("y", t, None)], initializer=self.inits)
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        m.ir_version = 8
        return m


def output_shape(model, in_shape) -> tuple:
    """The output shape of ``model`` for one input (run by onnxruntime)."""
    import onnxruntime as ort

    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": np.zeros(in_shape, dtype=np.float32)})[0].shape


def random_cnn(seed: int, dyadic: bool = False, one_d: bool = False):
    """``(model, input_shape)``: 1-2 Conv layers (random kernel, stride, pads or auto_pad, bias or
    not, BatchNormalization or not), Relu, Flatten (or Transpose+Reshape), Gemm, Relu, Gemm."""
    rng = np.random.default_rng(seed)
    g = G(rng, np.float32, dyadic)
    c = int(rng.integers(1, 4))
    shape = [c, int(rng.integers(5, 10))] if one_d else [c, int(rng.integers(4, 9)), int(rng.integers(4, 9))]
    cur, cur_shape = "x", list(shape)
    dims = len(shape) - 1
    for layer in range(int(rng.integers(1, 3))):
        co = int(rng.integers(1, 4))
        k = [int(v) for v in rng.integers(1, 4, dims)]
        k = [min(kk, s) for kk, s in zip(k, cur_shape[1:])]
        strides = [int(v) for v in rng.integers(1, 3, dims)]
        attrs = dict(strides=strides, kernel_shape=k)
        mode = rng.choice(["pads", "pads", "VALID", "SAME_UPPER", "SAME_LOWER"])
        if mode == "pads":
            attrs["pads"] = [int(v) for v in rng.integers(0, 3, 2 * dims)]
        else:
            attrs["auto_pad"] = str(mode)
        ins = [cur, g.rand(co, cur_shape[0], *k, scale=0.7)] + ([g.rand(co, scale=0.2)] if rng.random() < 0.7 else [])
        cur = g.node("Conv", ins, **attrs)
        if rng.random() < 0.4 and not dyadic:  # a BatchNormalization after the convolution (folded)
            cur = g.node("BatchNormalization", [cur, g.const(rng.uniform(0.5, 1.5, co)), g.rand(co, scale=0.1),
                                                g.rand(co, scale=0.1), g.const(rng.uniform(0.5, 2.0, co))])
        cur = g.node("Relu", [cur])
        cur_shape = list(output_shape(g.model([1] + shape, cur), [1] + shape)[1:])
        g.nodes[-1].output[0] = cur
        if not one_d and rng.random() < 0.4 and min(cur_shape[1:]) >= 2:  # average pooling (a convolution)
            if rng.random() < 0.3:
                cur = g.node("GlobalAveragePool", [cur])
            else:
                k = int(rng.integers(1, 3))
                pads = [int(v) for v in rng.integers(0, 2, 4)] if k > 1 else [0, 0, 0, 0]
                cur = g.node("AveragePool", [cur], kernel_shape=[k, k], strides=[int(rng.integers(1, 3))] * 2,
                             pads=pads, count_include_pad=1)
            cur_shape = list(output_shape(g.model([1] + shape, cur), [1] + shape)[1:])
            g.nodes[-1].output[0] = cur
    n = int(np.prod(cur_shape))
    if rng.random() < 0.5 and not one_d:
        cur = g.node("Transpose", [cur], perm=[0, 2, 3, 1])
        cur = g.node("Reshape", [cur, g.const_int([1, -1])])
    else:
        cur = g.node("Flatten", [cur])
    h = int(rng.integers(3, 8))
    cur = g.node("Gemm", [cur, g.rand(h, n, scale=1 / np.sqrt(n)), g.rand(h, scale=0.1)], transB=1)
    cur = g.node("Relu", [cur])
    cur = g.node("Gemm", [cur, g.rand(3, h), g.rand(3, scale=0.1)], transB=1)
    return g.model([1] + shape, cur), tuple(shape)


def reference_forward(model, x: np.ndarray, shape) -> np.ndarray:
    """The model run by onnxruntime (float32) on raw inputs ``x`` (batch, n)."""
    return onnxruntime_forward(model, x)


@pytest.mark.parametrize("seed", range(20))
def test_random_cnns_match_onnxruntime_to_1e6_with_dyadic_weights(seed):
    model, shape = random_cnn(seed, dyadic=True, one_d=seed % 5 == 4)
    net = rv.from_onnx(model)
    assert any(isinstance(layer, Conv2D) for layer in net.layers)
    x = np.round(16 * np.random.default_rng(seed).uniform(-1, 1, (20, int(np.prod(shape))))) / 16
    ref = onnxruntime_forward(model, x)
    assert np.std(ref) > 1e-3
    assert np.max(np.abs(net.forward(x) - ref)) <= 1e-6 * max(1.0, np.max(np.abs(ref)))


@pytest.mark.parametrize("seed", range(100, 115))
def test_random_cnns_match_onnxruntime(seed):
    model, shape = random_cnn(seed, one_d=seed % 5 == 4)
    net = rv.from_onnx(model)
    x = np.random.default_rng(seed).uniform(-1, 1, (20, int(np.prod(shape)))).astype(np.float32).astype(np.float64)
    ref = onnxruntime_forward(model, x)
    assert np.std(ref) > 1e-3
    assert np.max(np.abs(net.forward(x) - ref)) <= 1e-5 * max(1.0, np.max(np.abs(ref)))


def test_one_d_convolution_becomes_a_conv2d_of_height_one():
    model, shape = random_cnn(4, one_d=True)
    net = rv.from_onnx(model)
    conv = net.layers[0]
    assert isinstance(conv, Conv2D) and conv.input_shape[1] == 1 and net.input_shape == shape


@pytest.mark.parametrize("pads", [[0, 0, 0, 0], [1, 2, 0, 1]])
@pytest.mark.parametrize("per_channel", [False, True])
def test_mean_std_are_folded_into_the_first_convolution(pads, per_channel):
    """``from_onnx(model, mean, std)`` takes raw inputs: its forward equals the model on
    ``(x - mean) / std``, also at the zero-padded border (per-entry bias)."""
    rng = np.random.default_rng(3)
    g = G(rng)
    c = g.node("Conv", ["x", g.rand(3, 2, 3, 3), g.rand(3)], pads=pads)
    c = g.node("Relu", [c])
    f = g.node("Flatten", [c])
    n = int(np.prod(output_shape(g.model([1, 2, 5, 5], f), [1, 2, 5, 5])))
    g.nodes[-1].output[0] = f
    g.node("Gemm", [f, g.rand(4, n, scale=0.3), g.rand(4)], transB=1)
    model = g.model([1, 2, 5, 5], "y")
    mean, std = (np.array([0.2, 0.6]), np.array([0.5, 0.25])) if per_channel else (0.1307, 0.3081)
    net = rv.from_onnx(model, mean=mean, std=std)
    assert isinstance(net.layers[0], Conv2D) and len(net.layers) == 2
    assert any("(x - mean) / std" in note for note in net.notes)
    x = rng.random((6, 50))
    m = np.broadcast_to(np.reshape(mean, (-1, 1, 1)) if per_channel else mean, (2, 5, 5)).reshape(-1)
    s = np.broadcast_to(np.reshape(std, (-1, 1, 1)) if per_channel else std, (2, 5, 5)).reshape(-1)
    ref = reference_forward(model, (x - m) / s, (2, 5, 5))
    np.testing.assert_allclose(net.forward(x), ref, rtol=0, atol=1e-5 * np.abs(ref).max())


def test_mean_std_errors_and_dense_models():
    g = G(np.random.default_rng(0))
    g.node("Gemm", ["x", g.rand(3, 4)], transB=1)
    model = g.model([1, 4], "y")
    net = rv.from_onnx(model, mean=0.5, std=2.0)
    x = np.random.default_rng(1).random((3, 4))
    np.testing.assert_allclose(net.forward(x), rv.from_onnx(model).forward((x - 0.5) / 2.0), atol=1e-12)
    np.testing.assert_allclose(net.forward(x), onnxruntime_forward(model, (x - 0.5) / 2.0), atol=1e-5)
    with pytest.raises(InputError, match="std"):
        rv.from_onnx(model, std=0.0)
    with pytest.raises(InputError, match="does not fit"):
        rv.from_onnx(model, mean=np.zeros(3))


def test_batchnorm_and_bias_add_after_conv_are_folded_into_it():
    rng = np.random.default_rng(5)
    g = G(rng)
    c = g.node("Conv", ["x", g.rand(2, 1, 2, 2)], pads=[1, 1, 1, 1])
    c = g.node("Add", [c, g.rand(1, 2, 1, 1)])
    c = g.node("BatchNormalization", [c, g.const([1.5, 0.5]), g.rand(2), g.rand(2), g.const([0.7, 2.0])])
    c = g.node("Relu", [c])
    f = g.node("Flatten", [c])
    g.node("Gemm", [f, g.rand(3, 50, scale=0.2)], transB=1)
    model = g.model([1, 1, 4, 4], "y")
    net = rv.from_onnx(model)
    assert [type(layer) for layer in net.layers] == [Conv2D, Dense]
    x = rng.random((5, 16))
    np.testing.assert_allclose(net.forward(x), reference_forward(model, x, (1, 4, 4)), atol=1e-5)


def test_conv_then_gemm_without_relu_is_unrolled_and_noted():
    rng = np.random.default_rng(6)
    g = G(rng)
    c = g.node("Conv", ["x", g.rand(2, 1, 2, 2)])
    f = g.node("Flatten", [c])
    g.node("Gemm", [f, g.rand(3, 18)], transB=1)
    model = g.model([1, 1, 4, 4], "y")
    net = rv.from_onnx(model)
    assert len(net.layers) == 1 and any("unrolled" in note for note in net.notes)
    x = rng.random((4, 16))
    np.testing.assert_allclose(net.forward(x), reference_forward(model, x, (1, 4, 4)), atol=1e-5)


def _hostile(attrs=None, kernel=(2, 1, 3, 3), in_shape=(1, 1, 5, 5), weight_from_input=False):
    rng = np.random.default_rng(0)
    g = G(rng)
    ins = ["x", "x"] if weight_from_input else ["x", g.rand(*kernel)]
    c = g.node("Conv", ins, name="bad_conv", **(attrs or {}))
    g.node("Relu", [c])
    return g.model(list(in_shape), "y")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(attrs=dict(group=2), kernel=(2, 1, 3, 3), in_shape=(1, 2, 5, 5)), "group=2"),
        (dict(attrs=dict(dilations=[2, 2])), "dilations"),
        (dict(attrs=dict(pads=[-1, 0, 0, 0])), "pads"),
        (dict(attrs=dict(pads=[1, 1])), "pads"),
        (dict(attrs=dict(strides=[0, 1])), "strides"),
        (dict(attrs=dict(auto_pad="WRONG")), "auto_pad"),
        (dict(kernel=(2, 1, 7, 7)), "does not fit"),
        (dict(kernel=(2, 3, 3, 3)), "does not fit"),
        (dict(attrs=dict(kernel_shape=[2, 2])), "kernel_shape"),
        (dict(in_shape=(1, 1, 1, 5, 5), kernel=(2, 1, 1, 3, 3)), "shape"),
    ],
)
def test_hostile_conv_nodes_raise_typed_errors_naming_the_node(kwargs, match):
    with pytest.raises(UnsupportedLayerError, match=match) as info:
        rv.from_onnx(_hostile(**kwargs))
    assert "bad_conv" in str(info.value)


def _pool_model(op, attrs, in_shape=(1, 2, 6, 6)):
    g = G(np.random.default_rng(0))
    c = g.node("Conv", ["x", g.rand(2, in_shape[1], 3, 3)])
    c = g.node("Relu", [c])
    c = g.node(op, [c], name="the_pool", **attrs)
    f = g.node("Flatten", [c])
    try:
        n = int(np.prod(output_shape(g.model(list(in_shape), f), list(in_shape))))
    except Exception:  # a hostile pool onnxruntime refuses too: the importer must refuse it first
        n = 1
    g.nodes[-1].output[0] = f
    g.node("Gemm", [f, g.rand(3, n)], transB=1)
    return g.model(list(in_shape), "y")


@pytest.mark.parametrize("op, attrs", [
    ("AveragePool", dict(kernel_shape=[2, 2], strides=[2, 2])),
    ("AveragePool", dict(kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1], count_include_pad=1)),
    ("AveragePool", dict(kernel_shape=[2, 2], auto_pad="VALID")),
    ("GlobalAveragePool", {}),
])
def test_average_pooling_is_a_convolution(op, attrs):
    model = _pool_model(op, attrs)
    net = rv.from_onnx(model)
    assert isinstance(net.layers[0], Conv2D)  # the pool, with no Relu after it, is composed into the Gemm
    x = np.random.default_rng(1).uniform(-1, 1, (10, 72)).astype(np.float32).astype(np.float64)
    ref = onnxruntime_forward(model, x)
    assert np.max(np.abs(net.forward(x) - ref)) <= 1e-5 * max(1.0, np.abs(ref).max())


@pytest.mark.parametrize("op, attrs, match", [
    ("AveragePool", dict(kernel_shape=[2, 2], ceil_mode=1), "ceil_mode"),
    ("AveragePool", dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1]), "count_include_pad"),
    ("AveragePool", dict(kernel_shape=[2, 2], pads=[-1, 0, 0, 0], count_include_pad=1), "pads"),
    ("AveragePool", dict(kernel_shape=[9, 9]), "does not fit"),
    ("MaxPool", dict(kernel_shape=[2, 2], ceil_mode=1), "ceil_mode"),
    ("MaxPool", dict(kernel_shape=[2, 2], dilations=[2, 2]), "dilations"),
    ("MaxPool", dict(kernel_shape=[2, 2], pads=[2, 0, 0, 0]), "smaller than the window"),
    ("MaxPool", dict(kernel_shape=[2, 2, 2]), "kernel_shape"),
    ("MaxPool", dict(kernel_shape=[9, 9]), "does not fit"),
    ("LpPool", dict(kernel_shape=[2, 2]), "LpPool is not encoded"),
])
def test_hostile_pools_raise_typed_errors_naming_the_node(op, attrs, match):
    with pytest.raises(UnsupportedLayerError, match=match) as info:
        rv.from_onnx(_pool_model(op, attrs))
    assert "the_pool" in str(info.value)


@pytest.mark.parametrize("op, attrs", [
    ("MaxPool", dict(kernel_shape=[2, 2], strides=[2, 2])),
    ("MaxPool", dict(kernel_shape=[2, 2])),  # ONNX's default stride is 1
    ("MaxPool", dict(kernel_shape=[3, 2], strides=[1, 2], pads=[1, 0, 2, 1])),
    ("MaxPool", dict(kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER")),
    ("MaxPool", dict(kernel_shape=[2, 3], strides=[2, 1], auto_pad="SAME_LOWER")),
    ("MaxPool", dict(kernel_shape=[2, 2], auto_pad="VALID", storage_order=1)),
    ("GlobalMaxPool", {}),
])
def test_max_pooling_matches_onnxruntime(op, attrs):
    model = _pool_model(op, attrs)
    net = rv.from_onnx(model)
    assert [type(layer) for layer in net.layers] == [Conv2D, MaxPool2D, Dense]
    x = np.random.default_rng(1).uniform(-1, 1, (10, 72)).astype(np.float32).astype(np.float64)
    ref = onnxruntime_forward(model, x)
    assert np.max(np.abs(net.forward(x) - ref)) <= 1e-5 * max(1.0, np.abs(ref).max())


def _pool_relu_model(order: str, one_d: bool = False, seed: int = 0):
    """Conv, then ``order`` (e.g. "pool relu": a Relu after the pooling), Flatten, Gemm."""
    g = G(np.random.default_rng(seed), dyadic=True)
    shape = [1, 2, 7] if one_d else [1, 2, 6, 6]
    k = [3] if one_d else [3, 3]
    c = g.node("Conv", ["x", g.rand(3, 2, *k, scale=0.5), g.rand(3, scale=0.2)])
    for op in order.split():
        if op == "pool":
            c = g.node("MaxPool", [c], kernel_shape=[2] * len(k), strides=[1] * len(k), pads=[1] * (2 * len(k)))
        elif op == "relu":
            c = g.node("Relu", [c])
    f = g.node("Flatten", [c])
    n = int(np.prod(output_shape(g.model(shape, f), shape)))
    g.nodes[-1].output[0] = f
    g.node("Gemm", [f, g.rand(3, n, scale=0.5)], transB=1)
    return g.model(shape, "y"), int(np.prod(shape))


@pytest.mark.parametrize("order, kinds, note", [
    ("relu pool", [Conv2D, MaxPool2D, Dense], None),
    ("pool relu", [Conv2D, MaxPool2D, Dense], "moved"),
    ("relu pool relu", [Conv2D, MaxPool2D, Dense], "skipped"),
    ("pool", [Conv2D, MaxPool2D, Dense], "kept the map"),
])
def test_relu_after_a_max_pooling_and_one_d_pooling(order, kinds, note):
    for one_d in (False, True):
        model, n = _pool_relu_model(order, one_d)
        net = rv.from_onnx(model)
        assert [type(layer) for layer in net.layers] == kinds, net
        assert net.layers[0].activation == ("linear" if order == "pool" else "relu")
        if one_d:
            assert net.layers[1].kernel == (1, 2) and net.layers[1].input_shape[1] == 1
        if note:
            assert any(note in t for t in net.notes), net.notes
        x = np.round(16 * np.random.default_rng(2).uniform(-1, 1, (20, n))) / 16
        ref = onnxruntime_forward(model, x)
        assert np.std(ref) > 1e-3
        assert np.max(np.abs(net.forward(x) - ref)) <= 1e-6 * max(1.0, np.abs(ref).max())


def test_max_pooling_with_its_indices_used_is_refused():
    g = G(np.random.default_rng(0))
    c = g.node("Relu", ["x"])
    g.nodes.append(helper.make_node("MaxPool", [c], ["p", "idx"], name="pool_with_indices", kernel_shape=[2, 2]))
    g.nodes.append(helper.make_node("Flatten", ["p"], ["y"]))
    with pytest.raises(UnsupportedLayerError, match="Indices") as info:
        rv.from_onnx(g.model([1, 1, 4, 4], "y"))
    assert "pool_with_indices" in str(info.value)


def test_other_convolution_ops_are_refused_by_name():
    g = G(np.random.default_rng(0))
    g.node("ConvTranspose", ["x", g.rand(1, 2, 3, 3)], name="deconv")
    with pytest.raises(UnsupportedLayerError, match="ConvTranspose.*deconv|deconv.*ConvTranspose"):
        rv.from_onnx(g.model([1, 1, 4, 4], "y"))


# --------------------------------------------------------------------------- ERAN convSmall
def mnist(n: int = 100) -> tuple:
    data = np.loadtxt(MNIST_CSV, delimiter=",", max_rows=n)
    return data[:, 1:] / 255.0, data[:, 0].astype(int)


@needs_benchmarks("eran")
def test_conv_small_matches_onnxruntime_in_pixel_space():
    net = rv.from_onnx(CONV_SMALL, mean=0.1307, std=0.3081)
    assert [type(layer) for layer in net.layers] == [Conv2D, Conv2D, Dense, Dense]
    assert net.sizes == (784, 2704, 800, 100, 10)
    x, y = mnist()
    ours = net.forward(x)
    ref = onnxruntime_forward(CONV_SMALL, (x - 0.1307) / 0.3081)
    assert np.max(np.abs(ours - ref)) <= 1e-5 * max(1.0, np.abs(ref).max())  # float32 onnxruntime
    assert np.array_equal(np.argmax(ours, axis=1), y)  # all 100 classified correctly (the README says so)


def test_witnesses_on_an_imported_cnn_are_confirmed_by_onnxruntime():
    """verify_robustness / minimal_distortion on a CNN read from ONNX, with onnxruntime as the
    reference that must confirm every witness; the witness changes onnxruntime's class too."""
    model, shape = random_cnn(7)
    net = rv.from_onnx(model)
    rng = np.random.default_rng(0)
    x = rng.random(net.n_inputs)

    def reference(z):
        return onnxruntime_forward(model, np.atleast_2d(z))

    c = int(np.argmax(net.forward(x)))
    res = rv.verify_robustness(net, x, eps=0.5, label=c, time_limit=60, reference=reference)
    assert str(res.verdict) == "not_robust", res
    assert int(np.argmax(reference(res.x_adv)[0])) != c and int(np.argmax(net.forward(res.x_adv))) != c
    assert np.max(np.abs(res.x_adv - x)) <= 0.5 + 1e-12
    small = rv.verify_robustness(net, x, eps=1e-4, label=c, time_limit=60, reference=reference)
    assert str(small.verdict) == "robust", small


def _pad_model(pads, then_conv=True, mode=None, value=None, normalise=False, seed=0):
    g = G(np.random.default_rng(seed))
    cur = "x"
    if normalise:
        cur = g.node("Sub", [cur, g.const(np.float32(0.25))])
        cur = g.node("Div", [cur, g.const(np.float32(0.5))])
    ins = [cur, g.const_int(pads)] + ([g.const(np.float32(value))] if value is not None else [])
    cur = g.node("Pad", ins, name="the_pad", **({"mode": mode} if mode else {}))
    if then_conv:
        cur = g.node("Conv", [cur, g.rand(2, 2, 3, 3), g.rand(2)])
        cur = g.node("Relu", [cur])
    f = g.node("Flatten", [cur])
    try:
        n = int(np.prod(output_shape(g.model([1, 2, 5, 5], f), [1, 2, 5, 5])))
    except Exception:
        n = 1
    g.nodes[-1].output[0] = f
    g.node("Gemm", [f, g.rand(3, n, scale=0.3)], transB=1)
    return g.model([1, 2, 5, 5], "y")


@pytest.mark.parametrize("pads, then_conv, normalise, folded", [
    ([0, 0, 1, 2, 0, 0, 2, 1], True, False, True),
    ([0, 0, 1, 1, 0, 0, 1, 1], True, True, True),
    ([0, 0, 1, 0, 0, 0, 0, 1], False, False, False),
    ([0, 1, 1, 0, 0, 0, 0, 1], False, False, False),  # pads a channel too: a gather with zero rows
])
def test_zero_pad_before_a_conv_becomes_its_padding(pads, then_conv, normalise, folded):
    model = _pad_model(pads, then_conv, normalise=normalise)
    net = rv.from_onnx(model)
    assert any("zero padding" in note for note in net.notes) == folded
    if folded:
        assert isinstance(net.layers[0], Conv2D) and sum(net.layers[0].pads) == sum(pads)
    x = np.random.default_rng(2).uniform(-1, 1, (10, 50)).astype(np.float32).astype(np.float64)
    ref = onnxruntime_forward(model, x)
    assert np.max(np.abs(net.forward(x) - ref)) <= 1e-5 * max(1.0, np.abs(ref).max())


@pytest.mark.parametrize("kwargs, match", [
    (dict(mode="reflect"), "reflect"),
    (dict(value=1.0), "only zero padding"),
    (dict(pads=[0, 0, -1, 0, 0, 0, 0, 0]), "cropping"),
    (dict(pads=[0, 0, 1, 1]), "invalid"),
])
def test_hostile_pads_raise_typed_errors_naming_the_node(kwargs, match):
    pads = kwargs.pop("pads", [0, 0, 1, 1, 0, 0, 1, 1])
    with pytest.raises(UnsupportedLayerError, match=match) as info:
        rv.from_onnx(_pad_model(pads, **kwargs))
    assert "the_pad" in str(info.value)


@pytest.mark.slow
@needs_benchmarks("eran")
def test_conv_small_verdicts_equal_those_of_its_dense_twin():
    """The same convSmall written with dense matrices (the oracle's, from the kernel's definition)
    gets the same bounds and the same verdicts: the engine sees only the layers' methods."""
    import oracle

    net = rv.from_onnx(CONV_SMALL, mean=0.1307, std=0.3081)
    twin = rv.Network(tuple(Dense(oracle.layer_matrix(L), L.bias, L.activation) for L in net.layers))
    x, y = mnist(3)
    for xi, yi in zip(x, y):
        box = rv.Box(np.clip(xi - 0.05, 0, 1), np.clip(xi + 0.05, 0, 1))
        b1, b2 = rv.compute_bounds(net, box, "symbolic"), rv.compute_bounds(twin, box, "symbolic")
        for k in range(4):
            np.testing.assert_allclose(b1.lower[k], b2.lower[k], atol=1e-7)
            np.testing.assert_allclose(b1.upper[k], b2.upper[k], atol=1e-7)
        r1 = rv.verify_robustness(net, xi, eps=0.05, label=int(yi), time_limit=60, bound_method="symbolic")
        r2 = rv.verify_robustness(twin, xi, eps=0.05, label=int(yi), time_limit=60, bound_method="symbolic")
        assert str(r1.verdict) == str(r2.verdict) != "unknown"


def test_a_dense_map_before_a_conv_stays_a_layer_of_its_own():
    """Gemm -> Reshape -> Conv: the Gemm is not elementwise, so it is kept as a linear layer
    (and a per-pixel normalisation, not one scale per channel, likewise)."""
    rng = np.random.default_rng(9)
    g = G(rng)
    cur = g.node("Gemm", ["x", g.rand(16, 6, scale=0.5), g.rand(16)], transB=1)
    cur = g.node("Reshape", [cur, g.const_int([1, 1, 4, 4])])
    cur = g.node("Conv", [cur, g.rand(2, 1, 2, 2)], pads=[1, 1, 0, 0])
    cur = g.node("Relu", [cur])
    cur = g.node("Flatten", [cur])
    g.node("Gemm", [cur, g.rand(3, 32, scale=0.3)], transB=1)
    model = g.model([1, 6], "y")
    net = rv.from_onnx(model)
    assert [type(layer) for layer in net.layers] == [Dense, Conv2D, Dense] and net.layers[0].activation == "linear"
    x = rng.uniform(-1, 1, (10, 6)).astype(np.float32).astype(np.float64)
    ref = onnxruntime_forward(model, x)
    assert np.max(np.abs(net.forward(x) - ref)) <= 1e-5 * max(1.0, np.abs(ref).max())
    g2 = G(rng)
    cur = g2.node("Conv", ["x", g2.rand(2, 1, 2, 2)])
    cur = g2.node("Relu", [cur])
    cur = g2.node("Flatten", [cur])
    g2.node("Gemm", [cur, g2.rand(3, 18)], transB=1)
    model2 = g2.model([1, 1, 4, 4], "y")
    per_pixel = np.linspace(0.5, 2.0, 16)
    net2 = rv.from_onnx(model2, std=per_pixel.reshape(1, 4, 4))
    assert [type(layer) for layer in net2.layers] == [Dense, Conv2D, Dense]
    x2 = rng.random((5, 16))
    ref2 = onnxruntime_forward(model2, x2 / per_pixel)
    assert np.max(np.abs(net2.forward(x2) - ref2)) <= 1e-5 * max(1.0, np.abs(ref2).max())
