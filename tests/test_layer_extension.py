"""Layers are the first extension point (issue #14 item 2): a layer kind defined here, outside the
package — a dense map followed by a leaky ReLU, with its own relaxation, MILP rows and LP rows —
plugs into the forward pass, every bound strategy, the MILP (arrays and Pyomo), inference,
branch and bound, ``check_property``, ``verify_robustness`` and ``Network.save``/``load`` without
any change to a module of ``reluverify``. This is the worked example of docs/architecture.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

import reluverify as rv
from reluverify.model.layers import (
    ACTIVE,
    INACTIVE,
    UNSTABLE,
    Dense,
    ElementwiseActivation,
    ElementwiseLayer,
    ElementwiseRelaxation,
    LpRows,
    MilpPlan,
    RowBlock,
    csr_rows,
    dense_map,
    register,
)


# ------------------------------------------------------------------------------------------ the kind
class LeakyReLU(ElementwiseActivation):
    """``h = z`` for ``z >= 0``, ``h = a z`` below (``0 < a < 1``)."""

    name = "leaky_relu"
    monotone = True

    def __init__(self, slope: float):
        self.a = float(slope)

    def __call__(self, z):
        return np.where(z >= 0, z, self.a * z)

    def vjp(self, z, g):
        return g * np.where(z > 0, 1.0, self.a)

    def output_range(self, zl, zu):
        return self(zl), self(zu)

    def phases(self, zl, zu):
        out = np.full(np.shape(zl), UNSTABLE, dtype=np.int8)
        out[zl >= 0] = ACTIVE
        out[zu <= 0] = INACTIVE
        return out

    def _chord(self, l, u):
        """Slope and offset of the chord from ``(l, a l)`` to ``(u, u)``."""
        s = (u - self.a * l) / (u - l)
        return s, (self.a - s) * l

    def relaxation(self, lo, hi, parallel=False):
        a = self.a
        active, inactive = lo >= 0, hi <= 0
        unstable = ~(active | inactive)
        slope = np.where(active, 1.0, a)
        a_low, a_up, b_up = slope.copy(), slope.copy(), np.zeros_like(lo)
        if unstable.any():
            s, t = self._chord(lo[unstable], hi[unstable])
            a_up[unstable], b_up[unstable] = s, t
            # any lower line alpha z with alpha in [a, 1] lies below the function
            a_low[unstable] = s if parallel else np.where(hi[unstable] >= -lo[unstable], 1.0, a)
        return ElementwiseRelaxation(a_low, a_up, b_up, free=unstable, free_min=a, free_max=1.0)

    def branch_offset(self, lo, hi):
        unstable = (lo < 0) & (hi > 0)
        s, t = self._chord(np.where(unstable, lo, -1.0), np.where(unstable, hi, 1.0))
        return np.where(unstable, t, 0.0)  # the chord's height above the function at 0

    def milp_plan(self, lo, hi, last):
        n = np.size(lo)
        y_lo, y_hi = self.output_range(lo, hi)
        return MilpPlan(np.arange(n), np.flatnonzero(self.phases(lo, hi) == UNSTABLE), y_lo, y_hi,
                        np.array([], dtype=np.int64), self.phases(lo, hi))

    def milp_rows(self, linear_rows, lo, hi, plan, h_ids, y_ids, z_ids):
        """Exact: ``y = z`` (active), ``y = a z`` (inactive); with binary ``d`` (1: ``z >= 0``):
        ``y >= z``, ``y >= a z``, ``y <= z - (1 - a) l (1 - d)``, ``y <= a z + (1 - a) u d``."""
        a, phase = self.a, plan.detail
        blocks = []

        def rows(name, neurons, scale, extras_v, extras_i, constant, sense):
            lin = linear_rows(neurons)
            start, index, value = csr_rows(scale * lin.matrix(), h_ids, extras_v, extras_i)
            blocks.append(RowBlock(name, neurons, start, index, value, scale * lin.bias + constant, sense))

        for name, scale in (("leaky_active", 1.0), ("leaky_inactive", a)):
            nn = np.flatnonzero(phase == (ACTIVE if scale == 1.0 else INACTIVE))
            rows(name, nn, scale, [-np.ones(nn.size)], [y_ids[nn]], 0.0, "==")  # s (W h + b) - y == 0
        u_ = plan.binary
        m, l, u, y, d = u_.size, lo[u_], hi[u_], y_ids[u_], z_ids[u_]
        rows("leaky_above", u_, 1.0, [-np.ones(m)], [y], 0.0, "<=")  # z - y <= 0
        rows("leaky_above_a", u_, a, [-np.ones(m)], [y], 0.0, "<=")  # a z - y <= 0
        # z - y - (1 - a) l + (1 - a) l d >= 0
        rows("leaky_below", u_, 1.0, [-np.ones(m), (1 - a) * l], [y, d], -(1 - a) * l, ">=")
        # a z + (1 - a) u d - y >= 0
        rows("leaky_below_d", u_, a, [(1 - a) * u, -np.ones(m)], [d, y], 0.0, ">=")
        return blocks

    def lp_rows(self, linear_rows, lo, hi):
        """Rows in neuron order: ``y = s z`` for stable neurons (``s`` 1 or ``a``); ``y >= z``,
        ``y >= a z`` and the chord for unstable ones; as ``prev @ v + y`` with ``v`` the
        previous layer's outputs."""
        lin = linear_rows(np.arange(np.size(lo)))
        W, b = lin.matrix(), lin.bias
        prev, own, lower, upper = [], [], [], []
        for i in range(np.size(lo)):
            e = np.zeros(np.size(lo))
            e[i] = 1.0
            if lo[i] >= 0 or hi[i] <= 0:
                s = 1.0 if lo[i] >= 0 else self.a
                prev.append(-s * W[i]); own.append(e); lower.append(s * b[i]); upper.append(s * b[i])
                continue
            for s in (1.0, self.a):  # y - s W v >= s b
                prev.append(-s * W[i]); own.append(e); lower.append(s * b[i]); upper.append(np.inf)
            s, t = self._chord(lo[i], hi[i])  # y - s W v <= s b + t
            prev.append(-s * W[i]); own.append(e); lower.append(-np.inf); upper.append(s * b[i] + t)
        y_lo, y_hi = self.output_range(lo, hi)
        return LpRows(np.arange(np.size(lo)), y_lo, y_hi, np.array(prev), np.array(own), np.array(lower),
                      np.array(upper))


@register
@dataclass(frozen=True)
class LeakyDense(ElementwiseLayer):
    """``h = leaky_relu(W x + b)``: a new kind, its linear part a dense matrix."""

    weight: np.ndarray
    bias: np.ndarray
    slope: float = 0.1

    kind = "leaky_dense"
    state_keys = ("W", "b")

    @property
    def n_in(self):
        return self.weight.shape[1]

    @property
    def n_out(self):
        return self.weight.shape[0]

    @property
    def rule(self):
        return LeakyReLU(self.slope)

    def linear(self, rows=None, cols=None):
        return dense_map(self.weight, self.bias, rows, cols)

    def without_activation(self):
        return Dense(self.weight, self.bias, "linear")

    def state(self):
        return repr(float(self.slope)), {"W": self.weight, "b": self.bias}

    @classmethod
    def from_state(cls, spec, arrays):
        return cls(np.asarray(arrays["W"], dtype=np.float64), np.asarray(arrays["b"], dtype=np.float64), float(spec))


# ------------------------------------------------------------------------------------------ networks
def _net(seed: int, sizes=(4, 8, 7, 6, 3), slope: float = 0.1) -> rv.Network:
    """Dense ReLU -> LeakyDense -> Dense ReLU -> Dense linear."""
    rng = np.random.default_rng(seed)
    W = [rng.normal(0, 1.2 / np.sqrt(a), (b, a)) for a, b in zip(sizes[:-1], sizes[1:])]
    bs = [rng.normal(0, 0.3, b) for b in sizes[1:]]
    layers = (Dense(W[0], bs[0], "relu"), LeakyDense(W[1], bs[1], slope), Dense(W[2], bs[2], "relu"),
              Dense(W[3], bs[3], "linear"))
    return rv.Network(layers, name=f"leaky-{seed}")


def _forward_by_hand(net, x):
    h = x
    for layer in net.layers:
        z = h @ layer.weight.T + layer.bias
        if isinstance(layer, LeakyDense):
            h = np.where(z >= 0, z, layer.slope * z)
        else:
            h = np.maximum(z, 0.0) if layer.activation == "relu" else z
    return h


def test_the_kind_is_registered_and_the_network_runs_forward():
    assert rv.model.KINDS["leaky_dense"] is LeakyDense
    net = _net(0)
    x = np.random.default_rng(1).uniform(-1, 1, (50, 4))
    np.testing.assert_allclose(net.forward(x), _forward_by_hand(net, x), rtol=0, atol=1e-13)
    assert net.n_relu == 8 + 7 + 6 and "leaky_relu" in repr(net)


def test_save_and_load_keep_the_kind(tmp_path):
    net = _net(1)
    net.save(tmp_path / "leaky.npz")
    back = rv.Network.load(tmp_path / "leaky.npz")
    assert [type(layer) for layer in back.layers] == [type(layer) for layer in net.layers]
    assert back.layers[1].slope == net.layers[1].slope
    x = np.random.default_rng(2).uniform(-1, 1, (5, 4))
    assert np.array_equal(back.forward(x), net.forward(x))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("method", ["interval", "symbolic", "lp", "optimised"])
def test_every_bound_strategy_is_sound_on_samples(seed, method):
    net = _net(seed)
    rng = np.random.default_rng(100 + seed)
    c = rng.uniform(-0.5, 0.5, 4)
    box = rv.Box(c - 0.4, c + 0.4)
    bounds = rv.compute_bounds(net, box, method)
    pts = box.lower + rng.random((4000, 4)) * (box.upper - box.lower)
    corners = np.array(np.meshgrid(*[[lo, hi] for lo, hi in zip(box.lower, box.upper)])).reshape(4, -1).T
    assert bounds.contains(np.vstack([pts, corners]))
    assert bounds.unstable_counts()[1] <= 7  # the leaky layer reports its own phases
    if method != "interval":
        loose = rv.compute_bounds(net, box, "interval")
        for k in range(len(net.layers)):
            assert np.all(bounds.lower[k] >= loose.lower[k] - 1e-12) and np.all(bounds.upper[k] <= loose.upper[k] + 1e-12)


def test_optimised_bounds_move_the_leaky_slopes_within_their_range():
    """The relaxation's free slopes (in [a, 1]) are optimised like a ReLU's: the optimised bounds
    are at least as tight as the symbolic ones and still contain every sample."""
    net = _net(5)
    box = rv.Box(np.full(4, -0.6), np.full(4, 0.6))
    sym = rv.compute_bounds(net, box, "symbolic")
    opt = rv.compute_bounds(net, box, "optimised")
    k = 2  # after the leaky layer (inactive neurons' lower bounds are left as they are: they output 0)
    live = sym.phases(k) != INACTIVE
    assert np.all(opt.lower[k][live] >= sym.lower[k][live] - 1e-12) and np.all(opt.upper[k] <= sym.upper[k] + 1e-12)
    assert np.any(opt.lower[k][live] > sym.lower[k][live] + 1e-3)  # and they gain something
    pts = box.lower + np.random.default_rng(0).random((5000, 4)) * (box.upper - box.lower)
    assert opt.contains(pts)


@pytest.mark.parametrize("seed", range(3))
def test_milp_inference_agrees_with_the_forward_pass(seed):
    net = _net(seed)
    rng = np.random.default_rng(seed)
    for x in rng.uniform(-0.5, 0.5, (3, 4)):
        res = rv.infer(net, x, solver="highs", domain=rv.Box(np.full(4, -1.0), np.full(4, 1.0)))
        assert res.matches and res.n_binaries > 0, res
        np.testing.assert_allclose(res.outputs, net.forward(x), atol=1e-6)


def test_arrays_and_pyomo_block_are_the_same_model():
    import pyomo.environ as pyo

    from reluverify.formulation import add_network, network_arrays

    net = _net(3)
    box = rv.Box(np.full(4, -0.7), np.full(4, 0.7))
    bounds = rv.compute_bounds(net, box, "symbolic")
    arrays = network_arrays(net, bounds)
    m = pyo.ConcreteModel()
    blk = add_network(m, net, bounds)
    assert blk.size() == arrays.size()
    assert arrays.n_binaries == sum(bounds.unstable_counts()) > 0
    assert len(list(blk.block.leaky_above1.keys())) == bounds.unstable_counts()[1]


def test_milp_optimum_matches_brute_force():
    """max of output 0 over a box: the MILP's optimum is the best sampled value or above it, and a
    grid-refined search lands within a small gap of it (the rows are exact, not a relaxation)."""
    import pyomo.environ as pyo

    from reluverify.formulation import add_network

    net = _net(6, sizes=(2, 6, 5, 4, 2))
    box = rv.Box(np.full(2, -1.0), np.full(2, 1.0))
    bounds = rv.compute_bounds(net, box, "symbolic")
    m = pyo.ConcreteModel()
    blk = add_network(m, net, bounds)
    m.obj = pyo.Objective(expr=blk.outputs[0], sense=pyo.maximize)
    res = rv.solve(m, "highs", time_limit=30)
    assert res.status == "optimal"
    g = np.linspace(-1, 1, 401)
    grid = np.array(np.meshgrid(g, g)).reshape(2, -1).T
    best = net.forward(grid)[:, 0].max()
    x_milp = blk.input_values()
    assert abs(net.forward(x_milp)[0] - pyo.value(m.obj)) < 1e-6  # its point is what it claims
    assert best <= pyo.value(m.obj) + 1e-6 and pyo.value(m.obj) - best < 0.05


@pytest.mark.parametrize("seed", range(3))
def test_check_property_and_branching_decide_correctly(seed):
    """A class-change property on the leaky network: check_property (attacks, bounds, splitting or
    branching, MILP) agrees with a dense sampling of the box."""
    from reluverify.spec import Property, Region

    net = _net(seed, sizes=(2, 8, 8, 6, 3))
    rng = np.random.default_rng(seed)
    x0 = rng.uniform(-0.5, 0.5, 2)
    c = int(np.argmax(net.forward(x0)))
    for eps in (0.02, 0.5):
        lo, hi = x0 - eps, x0 + eps
        regions = []
        for j in range(3):
            if j != c:
                a_y = np.zeros((1, 3))
                a_y[0, c], a_y[0, j] = 1.0, -1.0  # out_c - out_j <= 0: class j at least as large
                regions.append(Region(lo, hi, np.zeros((1, 2)), a_y, np.zeros(1)))
        res = rv.check_property(net, Property(2, 3, tuple(regions)), time_limit=60)
        g = np.linspace(0, 1, 301)
        grid = lo + np.array(np.meshgrid(g, g)).reshape(2, -1).T * (hi - lo)
        out = net.forward(grid)
        flips = np.any(np.delete(out, c, axis=1) >= out[:, [c]], axis=1)
        if str(res.verdict) == "sat":
            y = net.forward(res.x)
            assert np.max(np.delete(y, c)) >= y[c] - 1e-9
        else:
            assert str(res.verdict) == "unsat", res
            assert not flips.any()


def test_relu_branch_and_bound_splits_leaky_neurons():
    """ReLU branching uses the layer's branch offsets and split point: it splits the leaky layer's
    neurons too and proves an unsat region."""
    from reluverify.engine.common import Clock
    from reluverify.engine.branch import relu_branch_and_bound, split_scores
    from reluverify.spec import Region

    net = _net(8, sizes=(3, 10, 10, 6, 2))
    box = rv.Box(np.full(3, -0.5), np.full(3, 0.5))
    bounds = rv.compute_bounds(net, box, "symbolic")
    scores = split_scores(net, [l[None] for l in bounds.lower], [u[None] for u in bounds.upper],
                          np.array([[1.0, -1.0]]))
    assert np.all((scores[1][0] > 0) == (bounds.phases(1) == UNSTABLE))
    top = bounds.output_bounds()[1][0] - bounds.output_bounds()[0][1]
    pts = box.lower + np.random.default_rng(0).random((20000, 3)) * (box.upper - box.lower)
    y = net.forward(pts)
    true_max = float(np.max(y[:, 0] - y[:, 1]))
    b = true_max + 0.1 * (top - true_max)  # out_0 - out_1 >= b: unreachable, but not by plain bounds
    region = Region(box.lower, box.upper, np.zeros((1, 3)), np.array([[-1.0, 1.0]]), np.array([-b]))
    stats = {}
    status, _, _ = relu_branch_and_bound(net, region, bounds.lower, bounds.upper, lambda x, r: None,
                                         Clock(60), stats)
    assert status == "unsat", stats


def test_verify_robustness_on_the_leaky_network():
    from reluverify.problems import verify_robustness

    net = _net(2, sizes=(4, 10, 8, 6, 3))
    rng = np.random.default_rng(5)
    x = rng.uniform(0.3, 0.7, 4)
    label = int(np.argmax(net.forward(x)))
    small = verify_robustness(net, x, eps=1e-4, norm="linf", label=label, time_limit=60)
    assert "not" not in str(small.verdict).lower() and "robust" in str(small.verdict).lower(), small
    big = verify_robustness(net, x, eps=0.3, norm="linf", label=label, time_limit=60)
    pts = np.clip(x + rng.uniform(-0.3, 0.3, (20000, 4)), 0, 1)
    flips = np.argmax(net.forward(pts), axis=1) != label
    if flips.any():
        assert "not" in str(big.verdict).lower(), big
    if "not" in str(big.verdict).lower():
        adv = big.x_adv
        assert np.max(np.abs(adv - x)) <= 0.3 + 1e-9 and int(np.argmax(net.forward(adv))) != label


def test_the_worked_example_in_the_docs_is_this_code():
    """docs/architecture.md shows the kind above verbatim."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    src = (root / "tests" / "test_layer_extension.py").read_text()
    code = re.search(r"^# -+ the kind\n(.*?)^# -+ networks\n", src, re.S | re.M).group(1).strip("\n")
    doc = (root / "docs" / "architecture.md").read_text()
    assert "```python\n" + code + "\n```" in doc
