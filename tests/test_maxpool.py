"""Max pooling (issue #15): the MaxPool2D kind against a forward pass written here from the
definition (``-inf`` padding) and the oracle's windows (tests/oracle.py), its bound rules by
sampling, its MILP (one binary per window entry the bounds cannot rule out, as MIPVerify), and the
engine stages that meet it (bound strategies, ReLU branch and bound, save/load); typed errors for
bad geometry. The differential tests against the brute-force oracle are in
tests/test_conv_soundness.py.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import oracle
import reluverify as rv
from reluverify.errors import ModelFileError, NetworkError
from reluverify.model.layers import ACTIVE, INACTIVE, UNSTABLE, Conv2D, Dense, MaxPool2D
from reluverify.tolerances import DEFAULT_MARGIN


def reference_pool(h: np.ndarray, layer: MaxPool2D) -> np.ndarray:
    """Max pooling of a batch ``h`` (B, C*H*W) by explicit loops over a ``-inf``-padded tensor."""
    c, hh, ww = layer.input_shape
    kh, kw = layer.kernel
    sh, sw = layer.stride
    pt, pl, pb, pr = layer.pads
    x = np.full((h.shape[0], c, hh + pt + pb, ww + pl + pr), -np.inf)
    x[:, :, pt:pt + hh, pl:pl + ww] = h.reshape(-1, c, hh, ww)
    ho, wo = (hh + pt + pb - kh) // sh + 1, (ww + pl + pr - kw) // sw + 1
    out = np.empty((h.shape[0], c, ho, wo))
    for i, j in itertools.product(range(ho), range(wo)):
        out[:, :, i, j] = x[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw].max(axis=(2, 3))
    return out.reshape(h.shape[0], -1)


def random_pool(rng) -> MaxPool2D:
    while True:
        c, h, w = int(rng.integers(1, 4)), int(rng.integers(1, 7)), int(rng.integers(1, 7))
        kh, kw = (int(v) for v in rng.integers(1, 4, 2))
        stride = tuple(int(v) for v in rng.integers(1, 4, 2))
        pads = (int(rng.integers(0, kh)), int(rng.integers(0, kw)), int(rng.integers(0, kh)), int(rng.integers(0, kw)))
        if h + pads[0] + pads[2] >= kh and w + pads[1] + pads[3] >= kw:
            return MaxPool2D((kh, kw), (c, h, w), stride, pads)


@pytest.mark.parametrize("seed", range(20))
def test_forward_vjp_and_gather_map(seed):
    rng = np.random.default_rng(seed)
    L = random_pool(rng)
    h = rng.normal(size=(4, L.n_in))
    out = L.forward(h)
    np.testing.assert_array_equal(out, reference_pool(h, L))
    windows = oracle.max_windows(L)
    assert out.shape[1] == L.n_out == len(windows) and L.n_pre == sum(w.size for w in windows)
    np.testing.assert_array_equal(out, np.stack([h[:, w].max(axis=1) for w in windows], axis=1))
    # the gather z = G h: forward, backward (G^T), rows/cols restrictions, CSR, interval
    lin = L.linear()
    G = lin.matrix()
    assert G.shape == (L.n_pre, L.n_in) and np.all(G.sum(axis=1) == 1)
    np.testing.assert_array_equal(L.preactivation(h), h @ G.T)
    A = rng.normal(size=(2, 3, L.n_pre))
    np.testing.assert_allclose(lin.backward(A), A @ G, atol=1e-12)
    assert np.all(lin.bias == 0) and np.all(lin.bias_term(A) == 0)
    rows = np.sort(rng.choice(L.n_pre, size=max(1, L.n_pre // 2), replace=False))
    cols = np.sort(rng.choice(L.n_in, size=max(1, L.n_in // 2), replace=False))
    sub = L.linear(rows, cols)
    Gs = G[np.ix_(rows, cols)]
    np.testing.assert_array_equal(sub.matrix(), Gs)
    np.testing.assert_array_equal(sub.forward(h[:, cols]), h[:, cols] @ Gs.T)
    np.testing.assert_allclose(sub.backward(A[..., :rows.size]), A[..., :rows.size] @ Gs, atol=1e-12)
    per_box = rng.integers(0, L.n_pre, size=(3, 2))
    np.testing.assert_array_equal(L.linear(per_box).matrix(), G[per_box])
    off = rows.size
    start, index, value = sub.csr(np.arange(off, off + cols.size), [np.full(rows.size, 7.0)], [np.arange(rows.size)])
    dense = np.zeros((rows.size, off + cols.size))
    for r in range(rows.size):
        np.add.at(dense[r], index[start[r]:start[r + 1]], value[start[r]:start[r + 1]])
    np.testing.assert_array_equal(dense[:, off:], Gs)
    np.testing.assert_array_equal(dense[np.arange(rows.size), np.arange(rows.size)], 7.0)
    lo, hi = h[0], h[0] + rng.random(L.n_in)
    np.testing.assert_array_equal(np.stack(L.interval(lo, hi)), np.stack([lo @ G.T, hi @ G.T]))
    # the gradient of g . maxpool(h) (distinct values: the argmax is unique), by central differences
    x = rng.permutation(L.n_in) / L.n_in
    g = rng.normal(size=L.n_out)
    grad = L.vjp(L.preactivation(x), g)
    e = 1e-7
    fd = [(g @ L.forward(x + e * u) - g @ L.forward(x - e * u)) / (2 * e) for u in np.eye(L.n_in)]
    np.testing.assert_allclose(grad, fd, atol=1e-6)


@pytest.mark.parametrize("seed", range(10))
def test_interval_relaxation_and_phases_are_sound(seed):
    """For sampled inputs inside random bounds: outputs inside output_range, the relaxation's lower
    and upper linear bounds (all windows or a subset ``keep``, one box or a batch of boxes) hold,
    phases say the truth (an INACTIVE entry is never the only maximum, an exact window's output
    is its ACTIVE entry)."""
    rng = np.random.default_rng(100 + seed)
    L = random_pool(rng)
    B = 3
    lo = rng.normal(size=(B, L.n_in)) * rng.choice([0.1, 1.0])
    hi = lo + rng.random((B, L.n_in)) * rng.choice([0.0, 0.3, 2.0], size=(B, L.n_in))
    hi[:, ::3] = lo[:, ::3]  # some fixed entries: ties and one-survivor windows
    zl, zu = L.interval(lo, hi)
    keep = np.sort(rng.choice(L.n_out, size=max(1, L.n_out // 2), replace=False))
    for b in range(B):
        X = lo[b] + (hi[b] - lo[b]) * rng.random((200, L.n_in))
        Z = L.preactivation(X)
        Y = L.activate(Z)
        ol, ou = L.output_range(zl[b], zu[b])
        assert np.all(Y >= ol) and np.all(Y <= ou)
        ph = L.phases(zl[b], zu[b])
        win = np.repeat(np.arange(L.n_out), [w.size for w in oracle.max_windows(L)])
        for w in range(L.n_out):
            entries = np.flatnonzero(win == w)
            alive = entries[ph[entries] != INACTIVE]
            assert alive.size >= 1
            # the maximum over the surviving entries is the maximum
            np.testing.assert_array_equal(Z[:, alive].max(axis=1), Y[:, w])
            if alive.size == 1:
                assert ph[alive[0]] == ACTIVE
            else:
                assert np.all(ph[alive] == UNSTABLE)
        for sel in (None, keep):
            rel = L.relaxation(zl[b], zu[b], keep=sel)
            cols = np.arange(L.n_out) if sel is None else sel
            Aw = rng.normal(size=(4, cols.size))
            Dl, cl = rel.lower(Aw)
            Du, cu = rel.upper(Aw)
            Zs = Z[:, rel.pre_index]
            assert np.all(Y[:, cols] @ Aw.T >= Zs @ Dl.T + cl - 1e-9)
            assert np.all(Y[:, cols] @ Aw.T <= Zs @ Du.T + cu + 1e-9)
    # the batched form (as branch and bound uses it) equals the per-box one
    rel = L.relaxation(zl, zu, keep=keep)
    Aw = rng.normal(size=(B, 5, keep.size))
    D, c = rel.lower_stacked(Aw)
    for b in range(B):
        Db, cb = L.relaxation(zl[b], zu[b], keep=keep).lower(Aw[b])
        np.testing.assert_allclose(D[b], Db)
        np.testing.assert_allclose(c[b], cb)


def test_binaries_only_for_entries_the_bounds_cannot_rule_out():
    """One 1x2x4 input pooled 2x2 (stride 2): window 0 reads inputs 0, 1, 4, 5 and window 1
    reads 2, 3, 6, 7."""
    L = MaxPool2D(2, (1, 2, 4))
    lo = np.array([0.0, 1.0, 0.0, 3.0, 0.0, 0.5, 0.0, 0.0])
    hi = np.array([2.0, 1.5, 0.9, 4.0, 0.2, 2.5, 1.0, 2.0])
    # window 0: entries 1 (l=1) ... entry 4 (u=0.2 < 1) is ruled out; 0, 1, 5 survive
    # window 1: entry 3 (l=3) beats every other upper bound: exact, no binary
    zl, zu = L.interval(lo, hi)
    plan = L.milp_plan(zl, zu, last=False)
    src = L.linear().forward(np.arange(8.0)).astype(int)  # the input of each entry
    assert sorted(src[plan.binary].tolist()) == [0, 1, 5]
    ph = L.phases(zl, zu)
    assert [int(p) for p in ph] == [UNSTABLE, UNSTABLE, INACTIVE, UNSTABLE, INACTIVE, ACTIVE, INACTIVE, INACTIVE]
    np.testing.assert_array_equal(plan.y_lower, [1.0, 3.0])
    np.testing.assert_array_equal(plan.y_upper, [2.5, 4.0])
    # the MILP of this one layer: max over the box of y0 - y1 and of y1 - y0 equal the exact values
    import pyomo.environ as pyo

    net = rv.Network((L,), input_shape=(1, 2, 4))
    bounds = rv.compute_bounds(net, rv.Box(lo, hi), "symbolic")
    for sign in (1.0, -1.0):
        m = pyo.ConcreteModel()
        blk = rv.add_network(m, net, bounds)
        m.obj = pyo.Objective(expr=sign * (blk.outputs[0] - blk.outputs[1]), sense=pyo.maximize)
        assert rv.solve(m, "highs", time_limit=30).status == "optimal"
        assert blk.n_binaries == 3
        exact = 2.5 - 3.0 if sign > 0 else 4.0 - 1.0
        assert abs(pyo.value(m.obj) - exact) < 1e-7


def pool_cnn(seed: int, classes: int = 3, pool=dict(kernel=2, stride=1, pads=0)) -> rv.Network:
    """1x5x5 -> conv 2x2x2 (ReLU) -> max pool -> dense (ReLU) -> dense (linear)."""
    rng = np.random.default_rng(seed)
    c1 = Conv2D(rng.normal(0, 0.7, (2, 1, 2, 2)), rng.normal(0, 0.1, 2), (1, 5, 5), 1, 0, "relu")
    mp = MaxPool2D(input_shape=c1.output_shape, **pool)
    d1 = Dense(rng.normal(0, 0.5, (6, mp.n_out)), rng.normal(0, 0.1, 6), "relu")
    d2 = Dense(rng.normal(0, 0.6, (classes, 6)), rng.normal(0, 0.1, classes), "linear")
    return rv.Network((c1, mp, d1, d2), input_shape=(1, 5, 5), name=f"poolcnn{seed}")


@pytest.mark.parametrize("method", ["interval", "symbolic", "lp", "optimised"])
def test_bounds_on_a_pooling_cnn_are_sound(method):
    net = pool_cnn(1, pool=dict(kernel=3, stride=1, pads=1))
    rng = np.random.default_rng(2)
    x = rng.random(25)
    box = rv.Box(np.clip(x - 0.1, 0, 1), np.clip(x + 0.1, 0, 1))
    b = rv.compute_bounds(net, box, method)
    pts = box.lower + rng.random((3000, 25)) * (box.upper - box.lower)
    assert b.contains(pts)
    ref = rv.compute_bounds(net, box, "interval")
    for k in range(4):
        assert np.all(b.lower[k] >= ref.lower[k] - 1e-12) and np.all(b.upper[k] <= ref.upper[k] + 1e-12)
    # the pooling's pre-activations are copies of the conv's outputs: exact intervals
    np.testing.assert_array_equal(b.lower[1], net.layers[1].linear().forward(np.maximum(b.lower[0], 0)))


def test_milp_inference_arrays_and_pyomo_on_a_pooling_cnn():
    import pyomo.environ as pyo

    from reluverify.formulation import network_arrays

    net = pool_cnn(3)
    rng = np.random.default_rng(4)
    for x in rng.random((2, 25)):
        res = rv.infer(net, x, solver="highs", domain=rv.Box.uniform(25))
        assert res.matches, res
        np.testing.assert_allclose(res.outputs, net.forward(x), atol=1e-6)
    box = rv.Box(np.full(25, 0.2), np.full(25, 0.7))
    bounds = rv.compute_bounds(net, box, "symbolic")
    arrays = network_arrays(net, bounds)
    m = pyo.ConcreteModel()
    blk = rv.add_network(m, net, bounds)
    assert blk.size() == arrays.size() and arrays.n_binaries == sum(bounds.unstable_counts()) > 0
    assert bounds.unstable_counts()[1] > 0  # the pooling needs binaries here
    m.obj = pyo.Objective(expr=blk.outputs[0] - blk.outputs[1], sense=pyo.maximize)
    assert rv.solve(m, "highs", time_limit=60).status == "optimal"
    y = net.forward(blk.input_values())
    assert abs((y[0] - y[1]) - pyo.value(m.obj)) < 1e-6  # the MILP's optimum is a real point
    pts = box.lower + rng.random((5000, 25)) * (box.upper - box.lower)
    yy = net.forward(pts)
    assert np.max(yy[:, 0] - yy[:, 1]) <= pyo.value(m.obj) + 1e-6


def test_relu_branch_and_bound_leaves_the_pooling_alone():
    """Branching splits ReLUs only (the pooling's scores are 0), proves a true bound on the logit
    difference and never a false one (the exact maximum from the MILP)."""
    import pyomo.environ as pyo

    from reluverify.engine.branch import relu_branch_and_bound, split_scores
    from reluverify.engine.common import Clock
    from reluverify.spec import Region

    net = pool_cnn(7, classes=2)
    box = rv.Box(np.full(25, 0.45), np.full(25, 0.55))
    bounds = rv.compute_bounds(net, box, "symbolic")
    assert bounds.unstable_counts()[1] > 0
    scores = split_scores(net, [l[None] for l in bounds.lower], [u[None] for u in bounds.upper],
                          np.array([[1.0, -1.0]]))
    assert np.all(scores[1] == 0) and np.any(scores[0] > 0)
    m = pyo.ConcreteModel()
    blk = rv.add_network(m, net, bounds)
    m.obj = pyo.Objective(expr=blk.outputs[0] - blk.outputs[1], sense=pyo.maximize)
    assert rv.solve(m, "highs", time_limit=60).status == "optimal"
    true_max = pyo.value(m.obj)
    top = bounds.output_bounds()[1][0] - bounds.output_bounds()[0][1]
    for b, provable in ((true_max + 0.5 * (top - true_max), True), (true_max - 1e-3, False)):
        region = Region(box.lower, box.upper, np.zeros((1, 25)), np.array([[-1.0, 1.0]]), np.array([-b]))
        status, _, _ = relu_branch_and_bound(net, region, bounds.lower, bounds.upper, lambda x, r: None,
                                             Clock(2), {})
        assert (status == "unsat") == provable, (b, true_max, status)


def test_repr_and_save_load(tmp_path):
    net = pool_cnn(0, pool=dict(kernel=(2, 3), stride=(1, 2), pads=(1, 0, 0, 2)))
    assert "maxpool2x3/1" in repr(net) and net.layers[1].output_shape == (2, 4, 2)
    net.save(tmp_path / "pool.npz")
    back = rv.Network.load(tmp_path / "pool.npz")
    assert [type(layer) for layer in back.layers] == [Conv2D, MaxPool2D, Dense, Dense]
    p = back.layers[1]
    assert (p.kernel, p.input_shape, p.stride, p.pads) == ((2, 3), (2, 4, 4), (1, 2), (1, 0, 0, 2))
    x = np.random.default_rng(1).random((5, 25))
    assert np.array_equal(back.forward(x), net.forward(x))
    with np.load(tmp_path / "pool.npz") as d:
        data = dict(d)
    data["geometry1"] = data["geometry1"][:5]
    np.savez(tmp_path / "bad.npz", **data)
    with pytest.raises((NetworkError, ModelFileError), match="geometry"):
        rv.Network.load(tmp_path / "bad.npz")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(kernel=0), "kernel must be positive"),
        (dict(kernel=(2, 2, 2)), "kernel needs 1 or 2"),
        (dict(kernel=1.5), "must be integers"),
        (dict(kernel="2"), "must be integers"),
        (dict(stride=0), "stride must be positive"),
        (dict(stride=(1, 2, 3)), "stride needs"),
        (dict(pads=-1), "non-negative"),
        (dict(pads=(1, 2, 3)), "pads"),
        (dict(pads=2), "smaller than the window"),
        (dict(kernel=(2, 1), pads=(0, 1, 0, 0)), "smaller than the window"),
        (dict(kernel=5), "does not fit"),
        (dict(input_shape=(1, 4)), "input_shape"),
        (dict(input_shape=(0, 4, 4)), "positive sizes"),
    ],
)
def test_bad_geometry_raises_a_typed_error(kwargs, match):
    args = dict(kernel=2, input_shape=(1, 4, 4), stride=None, pads=0)
    args.update(kwargs)
    with pytest.raises(NetworkError, match=match):
        MaxPool2D(**args)


def test_network_rejects_a_pooling_of_the_wrong_size():
    conv = Conv2D(np.ones((2, 1, 2, 2)), None, (1, 4, 4), 1, 0)
    with pytest.raises(NetworkError, match="expects"):
        rv.Network((conv, MaxPool2D(2, (2, 4, 4))))


def test_a_pooling_as_the_last_layer():
    """Outputs that are window maxima (not affine, not monotone per output): minimal distortion and
    verify_robustness agree with the brute-force oracle."""
    from reluverify.problems import minimal_distortion, verify_robustness

    rng = np.random.default_rng(5)
    for _ in range(3):
        conv = Conv2D(rng.normal(0, 0.7, (3, 1, 2, 2)), rng.normal(0, 0.2, 3), (1, 3, 3), 1, 0,
                      str(rng.choice(["relu", "linear"])))
        net = rv.Network((conv, MaxPool2D(2, (3, 2, 2))), input_shape=(1, 3, 3))  # one window per channel
        x = rng.random(9)
        c = int(np.argmax(net.forward(x)))
        truth = oracle.min_distortion(net, x, c, "linf")
        res = minimal_distortion(net, x, "linf", time_limit=3)  # (near the radius the search is slow: short)
        assert res.lower_bound <= truth.value + 1e-6
        if str(res.verdict) == "found":
            assert int(np.argmax(net.forward(res.x_adv))) != c and res.distance >= truth.value - 1e-9
        else:
            assert str(res.verdict) == "robust" and not truth.feasible
        if truth.feasible:  # (a ReLU before the pooling can make two outputs tie at 0: ties are no witness)
            reach = oracle.min_distortion(net, x, c, "linf", margin=DEFAULT_MARGIN)
            if reach.feasible:
                assert str(verify_robustness(net, x, 1.5 * reach.value, "linf", time_limit=30).verdict) == "not_robust"
            assert str(verify_robustness(net, x, 0.5 * truth.value, "linf", time_limit=30).verdict) != "not_robust"
