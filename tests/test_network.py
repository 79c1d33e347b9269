import numpy as np
import pytest

from reluverify import InputError, Layer, ModelFileError, Network, NetworkError


def test_forward_matches_manual_computation():
    rng = np.random.default_rng(0)
    W1, b1 = rng.normal(size=(4, 3)), rng.normal(size=4)
    W2, b2 = rng.normal(size=(2, 4)), rng.normal(size=2)
    net = Network.from_arrays([W1, W2], [b1, b2])
    x = rng.normal(size=3)
    expected = W2 @ np.maximum(W1 @ x + b1, 0) + b2
    np.testing.assert_allclose(net.forward(x), expected, rtol=0, atol=1e-14)
    batch = rng.normal(size=(5, 3))
    out = net.forward(batch)
    assert out.shape == (5, 2)
    np.testing.assert_allclose(out[3], net.forward(batch[3]))


def test_in_out_layout_and_input_shape():
    rng = np.random.default_rng(1)
    Wk = rng.normal(size=(6, 4))  # Keras layout (n_in, n_out)
    net = Network.from_arrays([Wk], [np.zeros(4)], ["relu"], weight_layout="in_out", input_shape=(2, 3))
    assert net.sizes == (6, 4)
    img = rng.normal(size=(2, 3))
    np.testing.assert_allclose(net.forward(img), np.maximum(img.ravel() @ Wk, 0))
    assert net.forward(rng.normal(size=(7, 2, 3))).shape == (7, 4)


def test_save_load_roundtrip(tmp_path):
    net = Network.random([5, 7, 3], seed=3, input_shape=(5,), name="rt", notes=("hello",))
    path = tmp_path / "net.npz"
    net.save(path)
    back = Network.load(path)
    assert back.name == "rt" and back.notes == ("hello",) and back.input_shape == (5,)
    for a, b in zip(net.layers, back.layers):
        assert np.array_equal(a.weight, b.weight) and np.array_equal(a.bias, b.bias)
        assert a.activation == b.activation


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_weights_rejected(bad):
    W = np.ones((2, 2))
    W[0, 1] = bad
    with pytest.raises(NetworkError, match="NaN or infinite"):
        Layer(W, np.zeros(2))
    with pytest.raises(NetworkError, match="bias"):
        Layer(np.ones((2, 2)), np.array([0.0, bad]))


def test_shape_errors():
    with pytest.raises(NetworkError, match="expects 3 inputs but layer 0 produces 4"):
        Network.from_arrays([np.ones((4, 2)), np.ones((1, 3))])
    with pytest.raises(NetworkError, match="bias must have shape"):
        Layer(np.ones((2, 3)), np.ones(3))
    with pytest.raises(NetworkError, match="at least one layer"):
        Network(())
    with pytest.raises(NetworkError, match="unknown activation"):
        Layer(np.ones((2, 2)), np.zeros(2), "sigmoid")
    with pytest.raises(NetworkError, match="input_shape"):
        Network.from_arrays([np.ones((2, 6))], input_shape=(2, 2))


def test_bad_inputs():
    net = Network.random([4, 3, 2])
    with pytest.raises(InputError, match="takes 4 values"):
        net.forward(np.ones(5))
    with pytest.raises(InputError, match="NaN"):
        net.forward(np.array([0, np.nan, 0, 0]))


def test_malformed_files(tmp_path):
    with pytest.raises(ModelFileError, match="does not exist"):
        Network.load(tmp_path / "nope.npz")
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file at all")
    with pytest.raises(ModelFileError, match="could not read"):
        Network.load(garbage)
    other = tmp_path / "other.npz"
    np.savez(other, a=np.ones(3))
    with pytest.raises(ModelFileError, match="not a reluverify network"):
        Network.load(other)
    net = Network.random([3, 2])
    path = tmp_path / "net.npz"
    net.save(path)
    data = dict(np.load(path))
    data["W0"] = np.full((2, 3), np.nan)
    np.savez(tmp_path / "nan.npz", **data)
    with pytest.raises(ModelFileError, match="invalid network"):
        Network.load(tmp_path / "nan.npz")


def test_one_input_shape_rule():
    """An array with exactly n_inputs values is one input, whatever its shape, read in row-major
    order; a (1, n) array stays a batch of one; anything else is a typed error (issue #13, item 11)."""
    from reluverify import InputError
    from reluverify.problems import verify_robustness

    flat_net = Network.random([12, 5, 3], seed=0)  # input_shape (12,), like an imported 784-input Keras model
    image_net = Network.random([12, 5, 3], seed=0, input_shape=(3, 4))  # like the seed network's (28, 28)
    x = np.random.default_rng(1).random(12)
    for net in (flat_net, image_net):
        ref = net.forward(x)
        for shape in ((12,), (3, 4), (4, 3), (12, 1), (2, 2, 3)):
            got = net.forward(x.reshape(shape))
            assert got.shape == ref.shape and np.array_equal(got, ref), shape
        assert net.forward(x.reshape(1, 12)).shape == (1, 3)  # a batch of one stays a batch
        assert net.forward(np.stack([x, x]).reshape(2, 3, 4)).shape == (2, 3)
        assert net.as_point(x.reshape(1, 12)).shape == (12,)
        for bad in (x[:11], np.zeros((5, 5))):
            with pytest.raises(InputError, match="12 values"):
                net.forward(bad)
        with pytest.raises(InputError, match="batch of 2"):
            net.as_point(np.stack([x, x]))
        # the problems take the same shapes: a 3x4 "image" for a 12-input network
        res = verify_robustness(net, x.reshape(3, 4), 0.01)
        assert np.array_equal(res.x, x)


def test_layer_is_the_interface_and_builds_dense():
    """``Layer(weight, bias, activation)`` builds the first kind (Dense); every kind is a Layer."""
    from reluverify.model import KINDS, Dense

    layer = Layer(np.ones((2, 3)), None, "relu")
    assert type(layer) is Dense and isinstance(layer, Layer) and KINDS["dense"] is Dense
    assert layer.activation == "relu" and layer.n_nonlinear == 2 and layer.monotone and layer.nonnegative
    assert not layer.affine and layer.without_activation().affine
    assert Layer(np.ones((2, 3)), None, "linear").n_nonlinear == 0


def test_files_of_dense_networks_keep_the_version_1_layout(tmp_path):
    """Dense-only networks are written exactly as before layers became objects (W{i}, b{i},
    activations, version 1), so older reluverify reads them; the kinds are listed as well."""
    net = Network.random([5, 4, 3], seed=2)
    net.save(tmp_path / "net.npz")
    with np.load(tmp_path / "net.npz") as d:
        assert int(d["version"]) == 1 and list(d["activations"]) == ["relu", "linear"]
        assert list(d["kinds"]) == ["dense", "dense"]
        assert np.array_equal(d["W1"], net.layers[1].weight) and np.array_equal(d["b0"], net.layers[0].bias)
        old = {k: d[k] for k in d.files if k != "kinds"}  # a file written before the kinds existed
    np.savez(tmp_path / "old.npz", **old)
    back = Network.load(tmp_path / "old.npz")
    assert all(np.array_equal(a.weight, b.weight) for a, b in zip(back.layers, net.layers))


def test_unknown_layer_kind_in_a_file(tmp_path):
    net = Network.random([3, 2], seed=0)
    net.save(tmp_path / "net.npz")
    data = dict(np.load(tmp_path / "net.npz"))
    data["kinds"] = np.array(["conv9d"])
    data["version"] = np.array(2)
    np.savez(tmp_path / "odd.npz", **data)
    with pytest.raises(ModelFileError, match="layer kind 'conv9d' is not registered"):
        Network.load(tmp_path / "odd.npz")
    data["version"] = np.array(3)
    np.savez(tmp_path / "newer.npz", **data)
    with pytest.raises(ModelFileError, match="newer reluverify"):
        Network.load(tmp_path / "newer.npz")


def test_register_refuses_bad_kinds():
    from reluverify.model import Dense, register

    class Nameless(Dense):
        kind = ""

    with pytest.raises(ValueError, match="lower-case name"):
        register(Nameless)

    class Clash(Dense):
        kind = "dense"

    with pytest.raises(ValueError, match="already registered"):
        register(Clash)
    assert register(Dense) is Dense  # registering a kind again is harmless
