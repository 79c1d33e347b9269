"""Tests of the Keras importer :func:`reluverify.io.from_keras`.

Every supported layer kind is checked numerically: the imported network's float64 forward pass
must match the Keras model (float32) on random inputs.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

keras = pytest.importorskip("keras", reason="Keras is not installed; the Keras importer needs it")

_SRC = pathlib.Path(__file__).resolve().parents[1] / "src"
if importlib.util.find_spec("reluverify") is None:  # running from a checkout that is not installed
    sys.path.insert(0, str(_SRC))

from reluverify.errors import ModelFileError, NetworkError, UnsupportedLayerError  # noqa: E402
from reluverify.io import from_keras  # noqa: E402
from reluverify.model import Network  # noqa: E402

L = keras.layers
N_POINTS = 200
RTOL = ATOL = 1e-4


# --------------------------------------------------------------------------- helpers
def _randomize(model, seed: int = 0):
    """Give every Dense and BatchNormalization non-trivial random parameters."""
    rng = np.random.default_rng(seed)
    for layer in _all_layers(model):
        if isinstance(layer, L.Dense):
            n_in, n_out = layer.kernel.shape
            layer.kernel.assign(rng.normal(0, 1.2 / np.sqrt(n_in), size=(n_in, n_out)).astype("float32"))
            if layer.bias is not None:
                layer.bias.assign(rng.normal(0, 0.3, size=n_out).astype("float32"))
        elif isinstance(layer, L.BatchNormalization):
            c = layer.moving_mean.shape[0]
            layer.moving_mean.assign(rng.normal(0, 0.5, size=c).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.2, 3.0, size=c).astype("float32"))
            if layer.scale:
                gamma = rng.uniform(0.5, 2.0, size=c) * rng.choice([-1.0, 1.0], size=c)
                layer.gamma.assign(gamma.astype("float32"))
            if layer.center:
                layer.beta.assign(rng.normal(0, 0.5, size=c).astype("float32"))
    return model


def _all_layers(model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)
        else:
            yield layer


def _inputs(shape, seed=1, n=N_POINTS, scale=1.0, offset=0.0):
    rng = np.random.default_rng(seed)
    return (offset + scale * rng.normal(size=(n,) + tuple(shape))).astype("float32")


def _keras_out(model, x):
    return np.asarray(keras.ops.convert_to_numpy(model(x, training=False)), dtype=np.float64)


def _assert_matches(model, net: Network, x):
    expected = _keras_out(model, x).reshape(len(x), -1)
    got = net.forward(x)
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL)
    # the outputs must actually vary (no accidental all-zero network)
    assert np.std(expected) > 1e-3


def _seq(input_shape, layers, name=None):
    model = keras.Sequential([keras.Input(shape=input_shape)] + list(layers), name=name)
    return _randomize(model)


def _adapted_norm(shape, axis=-1, invert=False, seed=3):
    norm = L.Normalization(axis=axis, invert=invert)
    rng = np.random.default_rng(seed)
    norm.adapt((2.0 + 3.0 * rng.normal(size=(64,) + tuple(shape))).astype("float32"))
    return norm


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# --------------------------------------------------------------------------- supported layers
def test_dense_activations_and_consecutive_linear_layers():
    model = _seq(
        (6,),
        [
            L.Dense(8, activation="relu", name="d_relu"),
            L.Dense(7, activation=None, name="d_none"),
            L.Dense(5, activation="linear", use_bias=False, name="d_nobias"),
            L.Dense(3, name="d_out"),
        ],
        name="mlp",
    )
    net = from_keras(model)
    assert isinstance(net, Network)
    assert net.name == "mlp"
    assert net.input_shape == (6,)
    assert net.sizes == (6, 8, 7, 5, 3)
    assert [layer.activation for layer in net.layers] == ["relu", "linear", "linear", "linear"]
    np.testing.assert_array_equal(net.layers[2].bias, np.zeros(5))
    np.testing.assert_allclose(net.layers[0].weight, np.asarray(model.layers[0].kernel).T)
    _assert_matches(model, net, _inputs((6,)))
    assert from_keras(model, name="renamed").name == "renamed"


def test_flatten_keeps_the_input_shape_and_row_major_order():
    model = _seq((4, 5), [L.Flatten(), L.Dense(9, activation="relu"), L.Dense(4)])
    net = from_keras(model)
    assert net.input_shape == (4, 5)
    assert net.sizes == (20, 9, 4)
    x = _inputs((4, 5))
    _assert_matches(model, net, x)
    np.testing.assert_allclose(net.forward(x.reshape(len(x), -1)), net.forward(x))


def test_channels_first_flatten_is_a_permutation():
    model = _seq((3, 2, 2), [L.Flatten(data_format="channels_first"), L.Dense(6, activation="relu"), L.Dense(2)])
    net = from_keras(model)
    assert net.sizes == (12, 6, 2)
    _assert_matches(model, net, _inputs((3, 2, 2)))


def test_reshape_to_a_flat_vector():
    model = _seq((2, 3, 2), [L.Reshape((12,)), L.Dense(8, activation="relu"), L.Reshape((-1,)), L.Dense(3)])
    net = from_keras(model)
    assert net.input_shape == (2, 3, 2)
    assert net.sizes == (12, 8, 3)
    _assert_matches(model, net, _inputs((2, 3, 2)))


def test_relu_and_activation_layers():
    model = _seq(
        (5,),
        [
            L.Dense(8),
            L.ReLU(name="plain_relu"),
            L.Dense(6),
            L.Activation("relu"),
            L.Dense(6, activation="linear"),
            L.Activation("linear"),
            L.Dense(3),
        ],
    )
    net = from_keras(model)
    assert [layer.activation for layer in net.layers] == ["relu", "relu", "linear", "linear"]
    _assert_matches(model, net, _inputs((5,)))


def test_inference_noop_layers_are_skipped():
    model = _seq(
        (5,),
        [
            L.Dropout(0.5, name="drop"),
            L.Dense(8, activation="relu"),
            L.GaussianNoise(0.3, name="noise"),
            L.GaussianDropout(0.2),
            L.ActivityRegularization(l1=0.1),
            L.Dense(3),
            L.Dropout(0.1),
        ],
    )
    net = from_keras(model)
    assert net.sizes == (5, 8, 3)
    assert any("'drop'" in note and "identity at inference" in note for note in net.notes)
    assert any("'noise'" in note for note in net.notes)
    _assert_matches(model, net, _inputs((5,)))


@pytest.mark.parametrize(
    "rescaling",
    [
        lambda: L.Rescaling(1.0 / 255.0, offset=-0.5, name="rescale"),
        lambda: L.Rescaling(np.array([0.5, -2.0, 3.0, 1.5], dtype="float32"), offset=0.25, name="rescale"),
    ],
    ids=["scalar", "per-feature"],
)
def test_rescaling_is_folded_into_the_next_dense(rescaling):
    model = _seq((4,), [rescaling(), L.Dense(7, activation="relu"), L.Dense(2)])
    net = from_keras(model)
    assert net.sizes == (4, 7, 2)
    assert any("'rescale'" in note and "following Dense" in note for note in net.notes)
    _assert_matches(model, net, _inputs((4,), scale=40.0, offset=100.0))


@pytest.mark.parametrize("invert", [False, True], ids=["normalize", "invert"])
def test_adapted_normalization_is_folded(invert):
    model = _seq((5,), [_adapted_norm((5,), invert=invert), L.Dense(8, activation="relu"), L.Dense(3)])
    net = from_keras(model)
    assert net.sizes == (5, 8, 3)
    _assert_matches(model, net, _inputs((5,), scale=3.0, offset=2.0))


def test_normalization_and_batchnorm_on_multidimensional_inputs():
    model = _seq(
        (3, 4),
        [
            _adapted_norm((3, 4), axis=1),  # one mean/variance per row
            L.BatchNormalization(axis=-1, name="bn_cols"),
            L.Flatten(),
            L.Dense(8, activation="relu"),
            L.Dense(2),
        ],
    )
    net = from_keras(model)
    assert net.sizes == (12, 8, 2)
    _assert_matches(model, net, _inputs((3, 4), scale=3.0, offset=2.0))


def test_batchnorm_between_dense_and_relu_is_folded_into_that_dense():
    model = _seq((6,), [L.Dense(8, name="d1"), L.BatchNormalization(name="bn"), L.ReLU(), L.Dense(3)])
    net = from_keras(model)
    assert net.sizes == (6, 8, 3)
    assert [layer.activation for layer in net.layers] == ["relu", "linear"]
    assert any("'bn'" in note and "preceding Dense 'd1'" in note for note in net.notes)
    _assert_matches(model, net, _inputs((6,)))


def test_batchnorm_after_relu_is_folded_into_the_next_dense():
    model = _seq(
        (6,),
        [L.Dense(8, activation="relu"), L.BatchNormalization(name="bn", center=False), L.Dense(3, name="d2")],
    )
    net = from_keras(model)
    assert net.sizes == (6, 8, 3)
    assert any("'bn'" in note and "following Dense 'd2'" in note for note in net.notes)
    _assert_matches(model, net, _inputs((6,)))


def test_batchnorm_at_the_end_after_a_linear_dense():
    model = _seq((6,), [L.Dense(8, activation="relu"), L.Dense(4), L.BatchNormalization(scale=False)])
    net = from_keras(model)
    assert net.sizes == (6, 8, 4)
    _assert_matches(model, net, _inputs((6,)))


def test_unfoldable_batchnorm_becomes_a_diagonal_layer():
    # BN after the last ReLU with nothing affine after it, and BN between two ReLUs.
    model = _seq(
        (6,),
        [
            L.Dense(8, activation="relu"),
            L.BatchNormalization(name="bn_mid"),
            L.ReLU(),
            L.Dense(5, activation="relu"),
            L.BatchNormalization(name="bn_end"),
        ],
    )
    net = from_keras(model)
    assert net.sizes == (6, 8, 8, 5, 5)
    assert [layer.activation for layer in net.layers] == ["relu", "relu", "relu", "linear"]
    for layer in (net.layers[1], net.layers[3]):
        np.testing.assert_array_equal(layer.weight, np.diag(np.diag(layer.weight)))
    assert sum("diagonal" in note for note in net.notes) == 2
    _assert_matches(model, net, _inputs((6,)))


def test_relu_on_the_input_inserts_an_identity_layer():
    model = _seq((4,), [L.ReLU(name="input_relu"), L.Dense(6, activation="relu"), L.Dense(2)])
    net = from_keras(model)
    assert net.sizes == (4, 4, 6, 2)
    np.testing.assert_array_equal(net.layers[0].weight, np.eye(4))
    assert net.layers[0].activation == "relu"
    assert any("identity layer" in note and "'input_relu'" in note for note in net.notes)
    _assert_matches(model, net, _inputs((4,)))


def test_relu_after_relu_is_skipped():
    model = _seq((4,), [L.Dense(6, activation="relu"), L.ReLU(name="again"), L.Activation("relu"), L.Dense(2)])
    net = from_keras(model)
    assert net.sizes == (4, 6, 2)
    assert any("'again'" in note and "follows another ReLU" in note for note in net.notes)
    _assert_matches(model, net, _inputs((4,)))


def test_functional_chain_with_nested_sequential():
    inner = keras.Sequential([L.Dense(7, activation="relu"), L.Dense(5)], name="inner")
    inp = keras.Input(shape=(2, 3))
    x = L.Flatten()(inp)
    x = L.Dense(8, name="first")(x)
    x = L.BatchNormalization()(x)
    x = L.Activation("relu")(x)
    x = inner(x)
    out = L.Dense(3, activation="softmax", name="probs")(x)
    model = _randomize(keras.Model(inp, out, name="functional_chain"))
    net = from_keras(model)
    assert net.name == "functional_chain"
    assert net.input_shape == (2, 3)
    assert net.sizes == (6, 8, 7, 5, 3)
    assert [layer.activation for layer in net.layers] == ["relu", "relu", "linear", "linear"]
    x = _inputs((2, 3))
    np.testing.assert_allclose(_softmax(net.forward(x)), _keras_out(model, x), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize(
    "tail",
    [
        lambda: [L.Dense(4, activation="softmax", name="dense_out")],
        lambda: [L.Dense(4, name="dense_out"), L.Softmax(name="sm")],
        lambda: [L.Dense(4, name="dense_out"), L.Activation("softmax", name="sm"), L.Dropout(0.2)],
    ],
    ids=["dense-softmax", "softmax-layer", "activation-softmax"],
)
def test_final_softmax_is_dropped_and_noted(tail):
    model = _seq((5,), [L.Dense(8, activation="relu")] + tail())
    net = from_keras(model)
    assert net.sizes == (5, 8, 4)
    assert net.layers[-1].activation == "linear"
    softmax_layer = "dense_out" if len(tail()) == 1 else "sm"
    assert f"dropped final softmax of layer '{softmax_layer}': reasoning about logits" in net.notes
    x = _inputs((5,))
    logits = net.forward(x)
    np.testing.assert_allclose(_softmax(logits), _keras_out(model, x), rtol=RTOL, atol=ATOL)
    # the logits are the pre-softmax values of the model, computed here by hand
    (w1, b1), (w2, b2) = [(np.asarray(d.kernel), np.asarray(d.bias)) for d in model.layers[:2]]
    expected_logits = np.maximum(x @ w1 + b1, 0.0) @ w2 + b2
    np.testing.assert_allclose(logits, expected_logits, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_model_loaded_from_a_file(tmp_path, suffix):
    if suffix == ".h5":
        pytest.importorskip("h5py", reason="saving .h5 files needs h5py")
    model = _seq(
        (3, 3),
        [L.Flatten(), L.Dense(8, activation="relu"), L.BatchNormalization(), L.Dense(4, activation="softmax")],
        name="saved_model",
    )
    path = tmp_path / f"model{suffix}"
    model.save(path)
    net = from_keras(str(path))
    assert net.name == "saved_model"
    assert net.input_shape == (3, 3)
    x = _inputs((3, 3))
    np.testing.assert_allclose(_softmax(net.forward(x)), _keras_out(model, x), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(from_keras(path).forward(x), net.forward(x))  # os.PathLike works too


# --------------------------------------------------------------------------- unsupported models
def _functional(build):
    inp = keras.Input(shape=(4,))
    return keras.Model(inp, build(inp))


def _skip_connection(inp):
    h = L.Dense(4, activation="relu", name="branch")(inp)
    return L.Add(name="skip_add")([inp, h])


def _branches(inp):
    a = L.Dense(3, name="left")(inp)
    b = L.Dense(3, name="right")(inp)
    return L.Concatenate(name="merge")([a, b])


def _multi_input():
    a, b = keras.Input(shape=(2,)), keras.Input(shape=(2,))
    return keras.Model([a, b], L.Dense(1)(L.Concatenate()([a, b])), name="two_inputs")


def _multi_output():
    inp = keras.Input(shape=(2,))
    return keras.Model(inp, [L.Dense(1)(inp), L.Dense(1)(inp)], name="two_outputs")


class _Subclassed(keras.Model):
    def __init__(self):
        super().__init__(name="subclassed")
        self.dense = L.Dense(2)

    def call(self, x):
        return self.dense(x)


def _subclassed():
    model = _Subclassed()
    model(np.zeros((1, 3), dtype="float32"))
    return model


UNSUPPORTED = {
    "conv2d-dilated": (lambda: keras.Sequential([keras.Input((6, 6, 1)), L.Conv2D(2, 2, dilation_rate=2, name="conv"),
                                                 L.Flatten(), L.Dense(2)]),
                       ["'conv'", "Conv2D", "dilation_rate"]),
    "sigmoid": (lambda: _seq((4,), [L.Dense(3, activation="sigmoid", name="sig_dense"), L.Dense(1)]),
                ["'sig_dense'", "Dense", "sigmoid"]),
    "final-sigmoid": (lambda: _seq((4,), [L.Dense(1, activation="sigmoid", name="sig_out")]),
                      ["'sig_out'", "sigmoid"]),
    "tanh": (lambda: _seq((4,), [L.Dense(3), L.Activation("tanh", name="tanh_act"), L.Dense(1)]),
             ["'tanh_act'", "Activation", "tanh"]),
    "hidden-softmax": (lambda: _seq((4,), [L.Dense(3, activation="softmax", name="hidden_sm"), L.Dense(2)]),
                       ["'hidden_sm'", "Dense", "softmax"]),
    "hidden-softmax-layer": (lambda: _seq((4,), [L.Dense(3), L.Softmax(name="sm_layer"), L.Dense(2)]),
                             ["'sm_layer'", "Softmax"]),
    "lstm": (lambda: keras.Sequential([keras.Input((5, 3)), L.LSTM(4, name="lstm_layer"), L.Dense(1)]),
             ["'lstm_layer'", "LSTM"]),
    "skip-connection": (lambda: _functional(_skip_connection), ["'skip_add'", "Add", "not a simple chain"]),
    "branches": (lambda: _functional(_branches), ["'merge'", "Concatenate", "not a simple chain"]),
    "multi-input": (_multi_input, ["'two_inputs'", "2 inputs"]),
    "multi-output": (_multi_output, ["'two_outputs'", "2 outputs"]),
    "leaky-relu-layer": (lambda: _seq((4,), [L.Dense(3), L.LeakyReLU(negative_slope=0.1, name="leaky"), L.Dense(1)]),
                         ["'leaky'", "LeakyReLU"]),
    "leaky-relu-activation": (lambda: _seq((4,), [L.Dense(3, activation="leaky_relu", name="leaky_d"), L.Dense(1)]),
                              ["'leaky_d'", "leaky_relu"]),
    "relu-negative-slope": (lambda: _seq((4,), [L.Dense(3), L.ReLU(negative_slope=0.2, name="slope"), L.Dense(1)]),
                            ["'slope'", "ReLU", "negative_slope=0.2"]),
    "relu6": (lambda: _seq((4,), [L.Dense(3), L.ReLU(max_value=6.0, name="capped"), L.Dense(1)]),
              ["'capped'", "max_value=6.0"]),
    "dense-on-2d-input": (lambda: _seq((3, 4), [L.Dense(2, name="no_flatten")]), ["'no_flatten'", "Flatten"]),
    "dropout-training": (lambda: _functional(lambda x: L.Dense(2)(L.Dropout(0.5, name="mc")(x, training=True))),
                         ["'mc'", "training=True"]),
    "raw-keras-op": (lambda: _functional(lambda x: keras.ops.tanh(L.Dense(2)(x))), ["Tanh", "raw keras operation"]),
    "subclassed-model": (_subclassed, ["'subclassed'", "_Subclassed", "Sequential"]),
}


@pytest.mark.parametrize("case", sorted(UNSUPPORTED))
def test_unsupported_layers_are_rejected_with_the_layer_named(case):
    build, fragments = UNSUPPORTED[case]
    model = build()
    with pytest.raises(UnsupportedLayerError) as info:
        from_keras(model)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    assert "Supported layers:" in message and "Dense" in message


# --------------------------------------------------------------------------- bad inputs / files
def test_missing_file_raises_model_file_error(tmp_path):
    missing = tmp_path / "nope.keras"
    with pytest.raises(ModelFileError, match="does not exist"):
        from_keras(missing)


def test_broken_file_raises_model_file_error(tmp_path):
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"this is not a keras zip archive")
    with pytest.raises(ModelFileError, match="could not load Keras model file .*model.save"):
        from_keras(str(broken))
    with pytest.raises(ModelFileError, match="directory"):
        from_keras(tmp_path)


def test_non_model_and_unbuilt_model_raise_network_error():
    with pytest.raises(NetworkError, match="keras.Model"):
        from_keras(object())
    with pytest.raises(NetworkError, match="no defined input shape"):
        from_keras(keras.Sequential([L.Dense(2)]))


def test_importing_reluverify_io_does_not_import_keras():
    code = (
        "import sys\n"
        "import reluverify.io\n"
        "from reluverify.io import from_keras\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n"
        "assert 'keras' not in sys.modules, 'keras was imported'\n"
    )
    import reluverify

    roots = {str(pathlib.Path(p).resolve().parent) for p in reluverify.__path__}
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(sorted(roots) + [env.get("PYTHONPATH", "")])
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_missing_keras_is_a_typed_error(monkeypatch):
    import builtins

    from reluverify.errors import MissingDependencyError
    from reluverify.io import keras as keras_io

    real_import = builtins.__import__

    def no_keras(name, *args, **kwargs):
        if name == "keras" or name.startswith("keras."):
            raise ImportError("No module named 'keras'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_keras)
    with pytest.raises(MissingDependencyError, match=r"pip install 'reluverify\[keras\]'"):
        keras_io._import_keras()
