"""Every problem on a CNN with a max-pooling layer (issue #15): a small ONNX model (Conv, Relu,
MaxPool, Flatten, Gemm; dyadic weights, so float32 and float64 agree closely) imported with
``from_onnx``; minimal distortion (L1, L-inf, L0), max confidence, universal perturbation, class
prototype, verify_robustness and check_property run on it, and every witness is re-checked here by
the float64 forward pass and by onnxruntime (the source model), and against sampling where a
verdict claims that nothing exists.
"""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="onnx is not installed; the ONNX importer needs it")
pytest.importorskip("onnxruntime", reason="onnxruntime is not installed; the witnesses are re-checked with it")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import reluverify as rv  # noqa: E402
from reluverify.check import distances  # noqa: E402
from reluverify.io.onnx import onnxruntime_forward  # noqa: E402
from reluverify.model.layers import Conv2D, Dense, MaxPool2D  # noqa: E402
from reluverify.results import Verdict  # noqa: E402

SHAPE = (1, 5, 5)
N = 25


def _model(seed: int = 4):
    """1x5x5 -> Conv 2x2x2 (pad 0) -> Relu -> MaxPool 2x2 stride 1 -> Flatten -> Gemm 3."""
    rng = np.random.default_rng(seed)

    def dyadic(*shape, scale=1.0):
        return (np.round(8 * scale * rng.normal(size=shape)) / 8).astype(np.float32)

    inits = [numpy_helper.from_array(dyadic(2, 1, 2, 2, scale=0.8), "k"),
             numpy_helper.from_array(dyadic(2, scale=0.2), "kb"),
             numpy_helper.from_array(dyadic(3, 18, scale=0.5), "w"),
             numpy_helper.from_array(dyadic(3, scale=0.2), "wb")]
    nodes = [helper.make_node("Conv", ["x", "k", "kb"], ["c"], name="conv"),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("MaxPool", ["r"], ["p"], name="pool", kernel_shape=[2, 2], strides=[1, 1]),
             helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
             helper.make_node("Gemm", ["f", "w", "wb"], ["y"], name="gemm", transB=1)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, *SHAPE])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializer=inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m


@pytest.fixture(scope="module")
def setup():
    model = _model()
    net = rv.from_onnx(model)
    assert [type(layer) for layer in net.layers] == [Conv2D, MaxPool2D, Dense]
    assert len(set(np.argmax(net.forward(np.round(16 * np.random.default_rng(0).random((4, N))) / 16), axis=1))) > 1
    ref = lambda x: onnxruntime_forward(model, x)  # noqa: E731
    rng = np.random.default_rng(0)
    X = np.round(16 * rng.random((4, N))) / 16
    assert np.max(np.abs(net.forward(X) - ref(X))) < 1e-5
    return net, ref, X


def _check_witness(net, ref, x_adv, cls, other=True):
    """The witness's class in the float64 forward pass and in onnxruntime: not ``cls`` (or ``cls``
    with ``other=False``)."""
    for out in (net.forward(x_adv), ref(x_adv[None])[0]):
        assert (int(np.argmax(out)) != cls) if other else (int(np.argmax(out)) == cls), out


@pytest.mark.parametrize("norm", ["linf", "l1", "l0"])
def test_minimal_distortion(setup, norm):
    net, ref, X = setup
    x = X[0]
    c = int(np.argmax(net.forward(x)))
    res = rv.minimal_distortion(net, x, norm=norm, time_limit=60, reference=ref)
    assert res.verdict == Verdict.FOUND, res
    _check_witness(net, ref, res.x_adv, c)
    assert np.all(res.x_adv >= 0) and np.all(res.x_adv <= 1)
    assert res.distance == distances(res.x_adv, x)[norm]
    assert res.lower_bound is not None and res.lower_bound <= res.distance
    if norm != "l0":  # no class change strictly inside the certified radius (sampled)
        rng = np.random.default_rng(1)
        r = 0.999 * res.lower_bound
        if norm == "linf":
            pts = np.clip(x + rng.uniform(-r, r, (4000, N)), 0, 1)
        else:
            d = rng.laplace(size=(4000, N))
            pts = np.clip(x + d / np.abs(d).sum(axis=1, keepdims=True) * r * rng.random((4000, 1)), 0, 1)
        assert np.all(np.argmax(net.forward(pts), axis=1) == c)


def test_verify_robustness_and_check_property(setup):
    from reluverify.spec import Property, Region

    net, ref, X = setup
    x = X[1]
    c = int(np.argmax(net.forward(x)))
    rng = np.random.default_rng(2)
    for eps in (0.01, 0.3):
        res = rv.verify_robustness(net, x, eps=eps, label=c, time_limit=60)
        lo, hi = np.clip(x - eps, 0, 1), np.clip(x + eps, 0, 1)
        if res.verdict == Verdict.ROBUST:
            pts = lo + rng.random((4000, N)) * (hi - lo)
            assert np.all(np.argmax(net.forward(pts), axis=1) == c)
        else:
            assert res.verdict == Verdict.NOT_ROBUST, res
            assert np.all(res.x_adv >= lo) and np.all(res.x_adv <= hi)
            _check_witness(net, ref, res.x_adv, c)
        regions = []
        for j in range(3):
            if j != c:
                a_y = np.zeros((1, 3))
                a_y[0, c], a_y[0, j] = 1.0, -1.0
                regions.append(Region(lo, hi, np.zeros((1, N)), a_y, np.zeros(1)))
        prop = rv.check_property(net, Property(N, 3, tuple(regions)), time_limit=60)
        assert (str(prop.verdict) == "unsat") == (res.verdict == Verdict.ROBUST), (prop, res)


def test_max_confidence(setup):
    net, ref, X = setup
    x = X[2]
    c = int(np.argmax(net.forward(x)))
    t = (c + 1) % 3
    res = rv.max_confidence(net, x, t, eps=0.3, norm="linf", time_limit=60, reference=ref)
    rng = np.random.default_rng(3)
    pts = np.clip(x + rng.uniform(-0.3, 0.3, (4000, N)), 0, 1)
    y = net.forward(pts)
    wins = np.argmax(y, axis=1) == t
    if res.verdict == Verdict.ROBUST:
        assert not wins.any()
    else:
        assert res.verdict == Verdict.FOUND, res
        _check_witness(net, ref, res.x_adv, t, other=False)
        assert np.max(np.abs(res.x_adv - x)) <= 0.3 + 1e-12
        assert abs(res.objective - float(net.forward(res.x_adv)[t])) < 1e-12
        assert res.objective_bound >= res.objective - 1e-9
        if wins.any():
            assert np.max(y[wins, t]) <= res.objective_bound + 1e-6


def test_universal_perturbation(setup):
    net, ref, X = setup
    r = rv.universal_perturbation(net, X, eps=0.08, time_limit=60)
    assert r.verdict in (Verdict.FOUND, Verdict.ROBUST), r
    assert r.upper_bound >= r.n_fooled and r.solves  # (this model and eps: the MILP decides)
    labels = np.asarray(r.labels)
    if r.delta is not None:
        assert np.max(np.abs(r.delta)) <= 0.08
        adv = X + r.delta
        assert np.all(adv >= 0) and np.all(adv <= 1)
        fooled = np.argmax(net.forward(adv), axis=1) != labels
        np.testing.assert_array_equal(fooled, r.fooled)
        assert int(fooled.sum()) == r.n_fooled
        assert np.array_equal(np.argmax(ref(adv), axis=1) != labels, fooled)
    # no sampled perturbation fools more images than the proven upper bound
    rng = np.random.default_rng(4)
    D = rng.uniform(-0.08, 0.08, (2000, N))
    counts = [int(np.sum(np.argmax(net.forward(np.clip(X + d, 0, 1)), axis=1) != labels))
              for d in D if np.all((X + d >= 0) & (X + d <= 1))]
    assert max(counts, default=0) <= r.upper_bound


def test_class_prototype(setup):
    net, ref, X = setup
    x = X[3]
    for cls in range(3):
        res = rv.class_prototype(net, cls, around=x, eps=0.5, norm="linf", time_limit=60, reference=ref)
        if res.verdict == Verdict.FOUND:
            _check_witness(net, ref, res.x_adv, cls, other=False)
            assert np.max(np.abs(res.x_adv - x)) <= 0.5 + 1e-12
            assert np.all(res.x_adv >= 0) and np.all(res.x_adv <= 1)
        else:
            assert res.verdict == Verdict.ROBUST, res
            rng = np.random.default_rng(5)
            pts = np.clip(x + rng.uniform(-0.5, 0.5, (4000, N)), 0, 1)
            assert not np.any(np.argmax(net.forward(pts), axis=1) == cls)
