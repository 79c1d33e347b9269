"""Convolutional layers (issue #15): the Conv2D kind against a dense matrix written entry by entry
from the definition of a convolution (tests/oracle.py), and every part of the engine on small CNNs:
bounds, the MILP (arrays and Pyomo), inference, branching, check_property, verify_robustness,
minimal distortion, max confidence, save/load.
"""

from __future__ import annotations

import numpy as np
import pytest

import oracle
import reluverify as rv
from reluverify.errors import NetworkError
from reluverify.model.layers import UNSTABLE, Conv2D, Dense
from reluverify.model.layers import conv as conv_module


@pytest.fixture(params=["conv-shaped", "small-dense"])
def path(request, monkeypatch):
    """Both paths of a Conv2D: convolution-shaped operators (forced for every size here) and the
    dense matrix tiny layers keep."""
    if request.param == "conv-shaped":
        monkeypatch.setattr(conv_module, "DENSE_LIMIT", 0)
    return request.param


def random_conv(rng, c=None, h=None, w=None):
    """A Conv2D of random geometry (1-3 channels in and out, kernels 1-3, strides 1-2, pads 0-2)."""
    while True:
        c_in = int(rng.integers(1, 4)) if c is None else c
        hh = int(rng.integers(2, 8)) if h is None else h
        ww = int(rng.integers(2, 8)) if w is None else w
        co, kh, kw = (int(v) for v in rng.integers(1, 4, 3))
        stride = tuple(int(v) for v in rng.integers(1, 3, 2))
        pads = tuple(int(v) for v in rng.integers(0, 3, 4))
        if hh + pads[0] + pads[2] >= kh and ww + pads[1] + pads[3] >= kw:
            geo = Conv2D(np.ones((co, c_in, kh, kw)), None, (c_in, hh, ww), stride, pads).output_shape
            bias = rng.normal(size=co) if rng.random() < 0.5 else rng.normal(size=geo)  # per channel / entry
            return Conv2D(rng.normal(size=(co, c_in, kh, kw)), bias, (c_in, hh, ww), stride, pads,
                          str(rng.choice(["relu", "linear"])))


@pytest.mark.parametrize("seed", range(25))
def test_linear_map_is_the_convolution(seed, path):
    """forward, backward (the transposed convolution), row/column restrictions, matrix rows (1-D and
    per-box 2-D selections), CSR rows and interval bounds agree with the dense matrix."""
    rng = np.random.default_rng(seed)
    L = random_conv(rng)
    M = oracle.layer_matrix(L)
    assert M.shape == (L.n_out, L.n_in)
    h = rng.normal(size=(4, L.n_in))
    np.testing.assert_allclose(L.preactivation(h), h @ M.T + L.bias, atol=1e-12)
    np.testing.assert_allclose(L.forward(h), L.activate(h @ M.T + L.bias), atol=1e-12)
    A = rng.normal(size=(2, 3, L.n_out))
    np.testing.assert_allclose(L.linear().backward(A), A @ M, atol=1e-12)
    np.testing.assert_array_equal(L.dense_matrix(), M)
    rows = rng.choice(L.n_out, size=max(1, L.n_out // 2), replace=False)
    cols = np.sort(rng.choice(L.n_in, size=max(1, L.n_in // 2), replace=False))
    sub = L.linear(rows, cols)
    Ms = M[np.ix_(rows, cols)]
    np.testing.assert_array_equal(sub.matrix(), Ms)
    np.testing.assert_allclose(sub.forward(h[:, cols]), h[:, cols] @ Ms.T + L.bias[rows], atol=1e-12)
    np.testing.assert_allclose(sub.backward(A[..., : rows.size]), A[..., : rows.size] @ Ms, atol=1e-12)
    np.testing.assert_allclose(sub.bias_term(A[..., : rows.size]), A[..., : rows.size] @ L.bias[rows], atol=1e-12)
    per_box = rng.integers(0, L.n_out, size=(3, 2))
    np.testing.assert_array_equal(L.linear(per_box).matrix(), M[per_box])
    np.testing.assert_array_equal(L.linear(per_box).bias, L.bias[per_box])
    # CSR over MILP columns: kernel entries on the selected inputs, then one extra per row
    off = rows.size
    start, index, value = sub.csr(np.arange(off, off + cols.size), [np.full(rows.size, 7.0)], [np.arange(rows.size)])
    dense = np.zeros((rows.size, off + cols.size))
    for r in range(rows.size):
        np.add.at(dense[r], index[start[r]:start[r + 1]], value[start[r]:start[r + 1]])
    np.testing.assert_array_equal(dense[:, off:], Ms)
    np.testing.assert_array_equal(dense[np.arange(rows.size), np.arange(rows.size)], 7.0)
    # interval bounds contain every sampled pre-activation, and are tight up to the widening
    lo = rng.normal(size=L.n_in)
    hi = lo + rng.random(L.n_in)
    zl, zu = L.interval(lo, hi)
    X = lo + (hi - lo) * rng.random((300, L.n_in))
    Z = X @ M.T + L.bias
    assert np.all(Z >= zl) and np.all(Z <= zu)
    exact_lo = np.minimum(M, 0) @ hi + np.maximum(M, 0) @ lo + L.bias
    assert np.all(zl <= exact_lo + 1e-12) and np.allclose(zl, exact_lo, atol=1e-6)  # widened only slightly
    zl2, zu2 = sub.interval(lo[cols], hi[cols])
    lo0, hi0 = np.zeros(L.n_in), np.zeros(L.n_in)
    lo0[cols], hi0[cols] = lo[cols], hi[cols]
    np.testing.assert_allclose(zl2, L.interval(lo0, hi0)[0][rows], atol=0)


def test_csr_rows_leave_out_zero_kernel_entries_and_padding():
    K = np.zeros((1, 1, 3, 3))
    K[0, 0, 1, 1] = 2.0  # only the centre tap
    L = Conv2D(K, None, (1, 3, 3), 1, 1, "linear")
    start, index, value = L.linear().csr(np.arange(9), [], [])
    assert np.array_equal(np.diff(start), np.ones(9)) and np.array_equal(index, np.arange(9))
    assert np.all(value == 2.0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(kernel=np.ones((2, 3, 2, 2))), "reads 3 channels"),
        (dict(pads=(-1, 0, 0, 0)), "pads"),
        (dict(pads=(1, 2, 3)), "pads"),
        (dict(stride=0), "stride"),
        (dict(kernel=np.ones((2, 1, 9, 9))), "does not fit"),
        (dict(bias=np.ones(5)), "bias"),
        (dict(kernel=np.full((2, 1, 2, 2), np.nan)), "NaN"),
        (dict(activation="tanh"), "activation"),
        (dict(input_shape=(1, 4)), "input_shape"),
        (dict(kernel=np.ones((2, 2))), "kernel"),
    ],
)
def test_bad_geometry_raises_a_typed_error(kwargs, match):
    args = dict(kernel=np.ones((2, 1, 2, 2)), bias=np.zeros(2), input_shape=(1, 4, 4), stride=1, pads=0,
                activation="relu")
    args.update(kwargs)
    with pytest.raises(NetworkError, match=match):
        Conv2D(**args)


# ------------------------------------------------------------------------------------------ networks
def small_cnn(seed: int, classes: int = 3) -> rv.Network:
    """1x6x6 -> conv 2x3x3 pad 1 (ReLU) -> conv 3x2x2 stride 2 (ReLU) -> dense (linear)."""
    rng = np.random.default_rng(seed)
    c1 = Conv2D(rng.normal(0, 0.6, (2, 1, 3, 3)), rng.normal(0, 0.1, 2), (1, 6, 6), 1, 1, "relu")
    c2 = Conv2D(rng.normal(0, 0.5, (3, 2, 2, 2)), rng.normal(0, 0.1, 3), (2, 6, 6), 2, 0, "relu")
    d = Dense(rng.normal(0, 0.5, (classes, 27)), rng.normal(0, 0.1, classes), "linear")
    return rv.Network((c1, c2, d), input_shape=(1, 6, 6), name=f"cnn{seed}")


def dense_twin(net: rv.Network) -> rv.Network:
    """The same network with every layer as a Dense matrix (the oracle's matrices)."""
    return rv.Network(tuple(Dense(oracle.layer_matrix(L), L.bias, L.activation) for L in net.layers),
                      input_shape=net.input_shape)


def test_forward_repr_and_save_load(tmp_path):
    net = small_cnn(0)
    x = np.random.default_rng(1).random((5, 36))
    np.testing.assert_allclose(net.forward(x), dense_twin(net).forward(x), atol=1e-12)
    assert "conv2x3x3/1:relu" in repr(net) and net.n_relu == 72 + 27
    net.save(tmp_path / "cnn.npz")
    back = rv.Network.load(tmp_path / "cnn.npz")
    assert [type(layer) for layer in back.layers] == [Conv2D, Conv2D, Dense]
    assert back.layers[0].pads == (1, 1, 1, 1) and back.layers[1].stride == (2, 2)
    assert np.array_equal(back.forward(x), net.forward(x))


@pytest.mark.parametrize("method", ["interval", "symbolic", "lp", "optimised"])
def test_bounds_are_sound_and_equal_to_the_dense_twin(method, path):
    """Every strategy: sampled pre-activations inside, and the same bounds as the same network
    written with dense matrices (the strategies only see the layers' methods)."""
    net = small_cnn(1)
    rng = np.random.default_rng(2)
    x = rng.random(36)
    box = rv.Box(np.clip(x - 0.15, 0, 1), np.clip(x + 0.15, 0, 1))
    b = rv.compute_bounds(net, box, method)
    pts = box.lower + rng.random((3000, 36)) * (box.upper - box.lower)
    assert b.contains(pts)
    ref = rv.compute_bounds(dense_twin(net), box, method)
    for k in range(3):
        np.testing.assert_allclose(b.lower[k], ref.lower[k], atol=1e-7)
        np.testing.assert_allclose(b.upper[k], ref.upper[k], atol=1e-7)
    if method != "interval":
        loose = rv.compute_bounds(net, box, "interval")
        assert sum(b.unstable_counts()) <= sum(loose.unstable_counts())


def test_batch_bounds_match_the_dense_twin(path):
    from reluverify.bounds.batch import batch_bounds, batch_linear_bounds

    net = small_cnn(2)
    rng = np.random.default_rng(3)
    lo = rng.random((3, 36)) * 0.8
    hi = lo + 0.2
    L1, U1 = batch_bounds(net, lo, hi)
    L2, U2 = batch_bounds(dense_twin(net), lo, hi)
    for a, b in zip(L1 + U1, L2 + U2):
        np.testing.assert_allclose(a, b, atol=1e-7)
    a_y = np.array([[1.0, -1.0, 0.0]])
    lb1, A1 = batch_linear_bounds(net, L1, U1, lo, hi, np.zeros((1, 36)), a_y)
    lb2, _ = batch_linear_bounds(dense_twin(net), L2, U2, lo, hi, np.zeros((1, 36)), a_y)
    np.testing.assert_allclose(lb1, lb2, atol=1e-7)
    for b in range(3):
        y = net.forward(lo[b] + rng.random((500, 36)) * (hi[b] - lo[b]))
        assert np.all((y[:, 0] - y[:, 1]) >= lb1[b, 0] - 1e-12)


def test_milp_inference_arrays_and_pyomo(path):
    import pyomo.environ as pyo

    from reluverify.formulation import add_network, network_arrays

    net = small_cnn(3)
    rng = np.random.default_rng(4)
    for x in rng.random((2, 36)):
        res = rv.infer(net, x, solver="highs", domain=rv.Box.uniform(36))
        assert res.matches and res.n_binaries > 0, res
        np.testing.assert_allclose(res.outputs, net.forward(x), atol=1e-6)
    box = rv.Box(np.full(36, 0.2), np.full(36, 0.6))
    bounds = rv.compute_bounds(net, box, "symbolic")
    arrays = network_arrays(net, bounds)
    twin = network_arrays(dense_twin(net), rv.compute_bounds(dense_twin(net), box, "symbolic"))
    assert arrays.n_binaries == twin.n_binaries == sum(bounds.unstable_counts()) > 0
    m = pyo.ConcreteModel()
    blk = add_network(m, net, bounds)
    assert blk.size() == arrays.size()
    m.obj = pyo.Objective(expr=blk.outputs[0] - blk.outputs[1], sense=pyo.maximize)
    res = rv.solve(m, "highs", time_limit=60)
    assert res.status == "optimal"
    xs = blk.input_values()
    y = net.forward(xs)
    assert abs((y[0] - y[1]) - pyo.value(m.obj)) < 1e-6
    pts = box.lower + rng.random((5000, 36)) * (box.upper - box.lower)
    yy = net.forward(pts)
    assert np.max(yy[:, 0] - yy[:, 1]) <= pyo.value(m.obj) + 1e-6


def test_relu_branch_and_bound_on_a_cnn(path):
    from reluverify.engine.branch import relu_branch_and_bound, split_scores
    from reluverify.engine.common import Clock
    from reluverify.spec import Region

    net = small_cnn(4, classes=2)
    box = rv.Box(np.full(36, 0.3), np.full(36, 0.7))
    bounds = rv.compute_bounds(net, box, "symbolic")
    scores = split_scores(net, [l[None] for l in bounds.lower], [u[None] for u in bounds.upper],
                          np.array([[1.0, -1.0]]))
    assert np.all((scores[0][0] > 0) == (bounds.phases(0) == UNSTABLE))
    top = bounds.output_bounds()[1][0] - bounds.output_bounds()[0][1]
    pts = box.lower + np.random.default_rng(0).random((20000, 36)) * (box.upper - box.lower)
    y = net.forward(pts)
    true_max = float(np.max(y[:, 0] - y[:, 1]))
    b = true_max + 0.5 * (top - true_max)
    region = Region(box.lower, box.upper, np.zeros((1, 36)), np.array([[-1.0, 1.0]]), np.array([-b]))
    status, _, _ = relu_branch_and_bound(net, region, bounds.lower, bounds.upper, lambda x, r: None,
                                         Clock(60), {})
    assert status == "unsat"


def _robust(res) -> bool:
    return str(res.verdict) == "robust"


@pytest.mark.parametrize("seed", range(3))
def test_verify_robustness_and_check_property_on_a_cnn(seed):
    """Small and large radii: robust only where sampling finds no class change, witnesses are
    float64 counterexamples inside the ball; check_property answers the same question alike."""
    from reluverify.spec import Property, Region

    net = small_cnn(10 + seed)
    rng = np.random.default_rng(seed)
    x = rng.random(36)
    c = int(np.argmax(net.forward(x)))
    for eps in (0.005, 0.05, 0.3):
        res = rv.verify_robustness(net, x, eps=eps, label=c, time_limit=60)
        lo, hi = np.clip(x - eps, 0, 1), np.clip(x + eps, 0, 1)
        pts = lo + rng.random((4000, 36)) * (hi - lo)
        flips = np.argmax(net.forward(pts), axis=1) != c
        if _robust(res):
            assert not flips.any()
        else:
            assert str(res.verdict) == "not_robust", res
            adv = res.x_adv
            assert np.all(adv >= lo) and np.all(adv <= hi) and int(np.argmax(net.forward(adv))) != c
        regions = []
        for j in range(3):
            if j != c:
                a_y = np.zeros((1, 3))
                a_y[0, c], a_y[0, j] = 1.0, -1.0
                regions.append(Region(lo, hi, np.zeros((1, 36)), a_y, np.zeros(1)))
        prop = rv.check_property(net, Property(36, 3, tuple(regions)), time_limit=60)
        assert (str(prop.verdict) == "unsat") == _robust(res), (prop, res)
        if str(prop.verdict) == "sat":
            yy = net.forward(prop.x)
            assert np.max(np.delete(yy, c)) >= yy[c] - 1e-9


def test_minimal_distortion_and_max_confidence_on_a_cnn():
    net = small_cnn(22)  # a seed whose minimal distortion is quick to prove (others take 15-60 s)
    rng = np.random.default_rng(7)
    x = rng.random(36)
    c = int(np.argmax(net.forward(x)))
    md = rv.minimal_distortion(net, x, norm="linf", time_limit=60)
    assert str(md.verdict) == "found", md
    assert int(np.argmax(net.forward(md.x_adv))) != c
    assert md.lower_bound <= md.distance <= md.lower_bound * (1 + 1e-3) + 1e-6
    # no class change strictly inside the certified radius (sampled)
    r = 0.999 * md.lower_bound
    pts = np.clip(x + rng.uniform(-r, r, (4000, 36)), 0, 1)
    assert np.all(np.argmax(net.forward(pts), axis=1) == c)
    t = (c + 1) % 3
    mc = rv.max_confidence(net, x, t, eps=0.3, norm="linf", time_limit=60)
    pts = np.clip(x + rng.uniform(-0.3, 0.3, (4000, 36)), 0, 1)
    y = net.forward(pts)
    wins = np.argmax(y, axis=1) == t
    if str(mc.verdict) == "robust":
        assert not wins.any()
    else:
        assert str(mc.verdict) == "found", mc
        assert abs(mc.objective - float(net.forward(mc.x_adv)[t])) < 1e-12
        assert int(np.argmax(net.forward(mc.x_adv))) == t and np.max(np.abs(mc.x_adv - x)) <= 0.3 + 1e-12
        assert mc.objective_bound >= mc.objective - 1e-9
        if wins.any():
            assert np.max(y[wins, t]) <= mc.objective_bound + 1e-6
