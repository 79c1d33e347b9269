import numpy as np
import pyomo.environ as pyo
import pytest

from reluverify import Box, InputError, Network, add_network, interval_bounds, solve
from reluverify.bounds import ACTIVE, INACTIVE, UNSTABLE


def _net_with_all_phases():
    # layer 0 neurons: always active, always inactive, unstable (over [0,1]^2)
    W = np.array([[1.0, 1.0], [-1.0, -1.0], [1.0, -1.0]])
    return Network.from_arrays([W, np.array([[1.0, 2.0, 3.0]])], [np.array([0.1, -0.1, 0.0]), np.zeros(1)])


def test_stable_neurons_get_no_binary():
    net = _net_with_all_phases()
    bounds = interval_bounds(net, Box.uniform(2))
    assert list(bounds.phases(0)) == [ACTIVE, INACTIVE, UNSTABLE]
    m = pyo.ConcreteModel()
    nb = add_network(m, net, bounds)
    assert nb.n_binaries == 1
    assert list(nb.block.z0.keys()) == [2]  # only the unstable neuron has a binary
    assert nb.layer_outputs[0][1] is None  # the inactive neuron is the constant 0, no variable
    assert list(nb.block.y0.keys()) == [0, 2]
    # the active neuron is one equality row; the unstable one has three big-M rows
    assert list(nb.block.affine0.keys()) == [0]
    assert list(nb.block.relu_lower0.keys()) == [2] and list(nb.block.relu_upper0.keys()) == [2]
    size = nb.size()
    assert size["binaries"] == 1
    assert size["variables"] == 2 + 2 + 1 + 1  # inputs, y0 (2), z0 (1), output (1)


@pytest.mark.parametrize("seed", range(5))
def test_binaries_equal_unstable_count(seed):
    net = Network.random([6, 12, 10, 3], seed=seed)
    for domain in (Box.uniform(6), Box.linf_ball(np.full(6, 0.5), 0.05, Box.uniform(6))):
        bounds = interval_bounds(net, domain)
        m = pyo.ConcreteModel()
        nb = add_network(m, net, bounds)
        assert nb.n_binaries == bounds.n_unstable
        n_inactive = sum(int(np.sum(bounds.phases(k) == INACTIVE)) for k in range(2))
        assert sum(v is None for layer in nb.layer_outputs[:-1] for v in layer) == n_inactive


def test_block_embeds_in_user_model_with_own_objective():
    """Maximise output 0 over the box: the optimum must beat every sampled input and be reproduced
    by the forward pass at the solver's input point."""
    net = Network.random([4, 8, 6, 2], seed=11)
    domain = Box.uniform(4)
    m = pyo.ConcreteModel()
    m.x = pyo.Var(range(4))  # the user's own variables
    nb = add_network(m, net, interval_bounds(net, domain), inputs=m.x, name="mynet")
    assert m.mynet is nb.block
    assert all(m.x[i].lb == 0.0 and m.x[i].ub == 1.0 for i in range(4))
    m.extra = pyo.Constraint(expr=m.x[0] + m.x[1] <= 1.0)  # the user's own constraint
    m.obj = pyo.Objective(expr=nb.outputs[0], sense=pyo.maximize)
    res = solve(m, "highs")
    assert res.status == "optimal"
    xstar = nb.input_values()
    assert xstar[0] + xstar[1] <= 1.0 + 1e-7
    best = net.forward(xstar)[0]
    assert abs(best - pyo.value(nb.outputs[0])) < 1e-6
    pts = domain.sample(4000, seed=1)
    pts = pts[pts[:, 0] + pts[:, 1] <= 1.0]
    assert best >= net.forward(pts)[:, 0].max() - 1e-7


def test_two_copies_of_a_network_in_one_model():
    net = Network.random([3, 5, 2], seed=2)
    b = interval_bounds(net, Box.uniform(3))
    m = pyo.ConcreteModel()
    a1 = add_network(m, net, b, name="a")
    a2 = add_network(m, net, b, name="b")
    assert a1.block is not a2.block
    with pytest.raises(InputError, match="already has a component named 'a'"):
        add_network(m, net, b, name="a")


def test_wrong_inputs_rejected():
    net = Network.random([3, 2], seed=0)
    b = interval_bounds(net, Box.uniform(3))
    m = pyo.ConcreteModel()
    m.x = pyo.Var(range(4))
    with pytest.raises(InputError, match="4 input variables but the network takes 3"):
        add_network(m, net, b, inputs=m.x)
    with pytest.raises(InputError, match="must be Pyomo variables"):
        add_network(m, net, b, inputs=[1.0, 2.0, 3.0], name="n2")
    other = Network.random([5, 2], seed=0)
    with pytest.raises(InputError, match="different network"):
        add_network(m, other, b, name="n3")
