import numpy as np
import pytest

from reluverify import Box, InputError, Network, compute_bounds, interval_bounds
from reluverify.bounds import ACTIVE, INACTIVE, UNSTABLE


@pytest.mark.parametrize("sizes", [[3, 5, 2], [10, 16, 16, 4], [784, 48, 27, 10], [6, 30, 30, 30, 3]])
@pytest.mark.parametrize("seed", [0, 1])
def test_sampled_activations_lie_inside_interval_bounds(sizes, seed):
    net = Network.random(sizes, seed=seed)
    rng = np.random.default_rng(seed)
    centre = rng.random(sizes[0])
    for domain in (Box.uniform(sizes[0]), Box.linf_ball(centre, 0.05, Box.uniform(sizes[0]))):
        bounds = interval_bounds(net, domain)
        pts = domain.sample(500, seed=seed)
        _, pre = net.forward(pts, return_all=True)
        for k, z in enumerate(pre):
            assert np.all(z >= bounds.lower[k]) and np.all(z <= bounds.upper[k]), f"layer {k} escapes its bounds"
        assert bounds.contains(pts)
        assert all(np.all(lo <= hi) for lo, hi in zip(bounds.lower, bounds.upper))


def test_bounds_are_asymmetric_and_exact_for_first_layer():
    # one neuron a = 2 x0 - x1 + 0.5 on [0,1]^2: exact range [-0.5, 2.5]
    net = Network.from_arrays([np.array([[2.0, -1.0]])], [np.array([0.5])], ["relu"])
    b = interval_bounds(net, Box.uniform(2))
    assert b.lower[0][0] == pytest.approx(-0.5, abs=1e-8) and b.lower[0][0] <= -0.5
    assert b.upper[0][0] == pytest.approx(2.5, abs=1e-8) and b.upper[0][0] >= 2.5
    assert b.phases(0)[0] == UNSTABLE


def test_phase_classification():
    W = np.array([[1.0, 1.0], [-1.0, -1.0], [1.0, -1.0]])
    net = Network.from_arrays([W, np.ones((1, 3))], [np.array([0.1, -0.1, 0.0]), np.zeros(1)])
    b = interval_bounds(net, Box.uniform(2))
    assert list(b.phases(0)) == [ACTIVE, INACTIVE, UNSTABLE]
    assert b.unstable_counts() == [1, 0]
    assert list(b.phases(1)) == [ACTIVE]  # a linear layer has no phase
    assert "1 of 3 ReLUs unstable" in b.summary()


def test_point_domain_makes_everything_stable():
    net = Network.random([20, 30, 30, 5], seed=4)
    x = np.random.default_rng(0).random(20)
    b = interval_bounds(net, Box.point(x))
    _, pre = net.forward(x, return_all=True)
    assert b.n_unstable <= sum(int(np.sum(np.abs(z) < 1e-8)) for z in pre[:-1])
    for z, lo, hi in zip(pre, b.lower, b.upper):
        assert np.all(hi - lo < 1e-6)


def test_smaller_domain_gives_tighter_bounds():
    net = Network.random([8, 20, 20, 3], seed=5)
    x = np.full(8, 0.5)
    wide = interval_bounds(net, Box.uniform(8))
    narrow = interval_bounds(net, Box.linf_ball(x, 0.01, Box.uniform(8)))
    for k in range(3):
        assert np.all(narrow.lower[k] >= wide.lower[k]) and np.all(narrow.upper[k] <= wide.upper[k])
    assert narrow.n_unstable <= wide.n_unstable


def test_strategy_lookup_errors():
    net = Network.random([3, 2])
    with pytest.raises(InputError, match="unknown bound method"):
        compute_bounds(net, Box.uniform(3), "magic")
    with pytest.raises(InputError, match="3 inputs"):
        compute_bounds(net, Box.uniform(4))


def test_box_validation():
    with pytest.raises(InputError, match="finite"):
        Box(np.zeros(2), np.array([1.0, np.inf]))
    with pytest.raises(InputError, match="exceeds"):
        Box(np.ones(2), np.zeros(2))
    with pytest.raises(InputError, match="eps must be"):
        Box.linf_ball(np.zeros(2), 0.0)
    with pytest.raises(InputError, match="eps must be"):
        Box.linf_ball(np.zeros(2), -0.1)
    with pytest.raises(InputError, match="NaN"):
        Box(np.array([np.nan]), np.array([1.0]))
    ball = Box.linf_ball(np.array([0.0, 0.5, 1.0]), 0.1, Box.uniform(3))
    np.testing.assert_allclose(ball.lower, [0.0, 0.4, 0.9])
    np.testing.assert_allclose(ball.upper, [0.1, 0.6, 1.0])
