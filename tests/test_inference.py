import numpy as np
import pytest

from reluverify import Box, InputError, Network, Status, UnknownSolverError, infer
from reluverify.tolerances import INFERENCE_TOLERANCE

from conftest import ALL_SOLVERS

SHAPES = [[2, 3, 1], [10, 8, 8, 3], [20, 16, 12, 8, 5], [50, 30, 10]]


@pytest.mark.parametrize("solver", ALL_SOLVERS)
@pytest.mark.parametrize("sizes", SHAPES, ids=lambda s: "-".join(map(str, s)))
def test_milp_inference_equals_forward_pass(solver, sizes):
    net = Network.random(sizes, seed=len(sizes))
    rng = np.random.default_rng(7)
    for trial in range(3):
        x = rng.random(sizes[0])
        for domain in (None, Box.uniform(sizes[0])):  # LP (point bounds) and full big-M MILP
            res = infer(net, x, solver, domain=domain)
            assert res.status == Status.OPTIMAL
            assert res.matches, f"max error {res.max_abs_error}"
            assert res.max_abs_error <= INFERENCE_TOLERANCE
            np.testing.assert_allclose(res.outputs, net.forward(x), atol=INFERENCE_TOLERANCE, rtol=0)
            assert res.predicted_class == int(np.argmax(net.forward(x)))
            if domain is None:
                assert res.n_binaries <= 1  # all stable unless a pre-activation is ~0
        assert infer(net, x, solver, domain=Box.uniform(sizes[0])).n_binaries > 0 or sizes == [2, 3, 1]


def test_relu_on_the_output_layer():
    rng = np.random.default_rng(3)
    net = Network.from_arrays([rng.normal(size=(6, 4)), rng.normal(size=(3, 6))], activations=["relu", "relu"])
    for _ in range(5):
        x = rng.random(4)
        res = infer(net, x, domain=Box.uniform(4))
        assert res.matches and np.all(res.outputs >= -1e-9)


def test_inference_input_errors():
    net = Network.random([4, 3, 2])
    with pytest.raises(InputError, match="takes 4 values"):
        infer(net, np.ones(3))
    with pytest.raises(InputError, match="NaN"):
        infer(net, np.array([0.1, np.nan, 0.2, 0.3]))
    with pytest.raises(InputError, match="outside the domain"):
        infer(net, np.full(4, 2.0), domain=Box.uniform(4))
    with pytest.raises(UnknownSolverError):
        infer(net, np.ones(4), solver="nope")
