"""The Keras importer on convolutional networks (issue #15): random small architectures of Conv1D,
Conv2D (valid/same padding, strides, channels-last and channels-first), MaxPooling1D/2D,
AveragePooling1D/2D, ZeroPadding1D/2D, BatchNormalization after a convolution (folded),
GlobalAveragePooling1D/2D, Dropout, Flatten in Keras's channels-last order, against Keras's own
forward pass (to 1e-6 of the output scale); a minimal-distortion witness on an imported CNN
confirmed by Keras; unsupported options refused naming the layer. One module: TensorFlow starts
once.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

keras = pytest.importorskip("keras", reason="Keras is not installed; the Keras importer needs it")

import reluverify as rv  # noqa: E402
from reluverify.errors import UnsupportedLayerError  # noqa: E402
from reluverify.model.layers import Conv2D, MaxPool2D  # noqa: E402
from reluverify.results import Verdict  # noqa: E402

L = keras.layers


def _randomise_batchnorm(model, rng) -> None:
    """Non-trivial BatchNormalization statistics (fresh ones are the identity)."""
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            c = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, c), rng.normal(0, 0.3, c), rng.normal(0, 0.3, c),
                               rng.uniform(0.5, 2.0, c)])


def random_keras_cnn(seed: int):
    """``(model, input_shape)``: 1-2 convolution blocks (padding, conv, BatchNormalization, ReLU,
    max/average pooling in random combinations), then Flatten or global average pooling, Dropout,
    Dense."""
    rng = np.random.default_rng(seed)
    one_d = seed % 4 == 3
    first = not one_d and seed % 5 == 4
    fmt = "channels_first" if first else "channels_last"
    c = int(rng.integers(1, 4))
    size = [int(rng.integers(6, 10))] if one_d else [int(rng.integers(6, 10)), int(rng.integers(6, 10))]
    shape = tuple([c] + size) if first else tuple(size + [c])
    Conv, MaxP, AvgP, Pad = ((L.Conv1D, L.MaxPooling1D, L.AveragePooling1D, L.ZeroPadding1D) if one_d else
                             (L.Conv2D, L.MaxPooling2D, L.AveragePooling2D, L.ZeroPadding2D))
    fmt_kw = {} if one_d else dict(data_format=fmt)
    layers = [keras.Input(shape)]
    if rng.random() < 0.3:
        layers.append(L.Rescaling(0.5, offset=-0.25))
    for _ in range(int(rng.integers(1, 3))):
        if rng.random() < 0.3:
            layers.append(Pad(1, **fmt_kw))
        k = int(rng.integers(1, 4)) if one_d else (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        act = str(rng.choice(["relu", "linear"]))
        layers.append(Conv(int(rng.integers(1, 4)), k, strides=int(rng.integers(1, 3)),
                           padding=str(rng.choice(["valid", "same"])), activation=act, **fmt_kw))
        if rng.random() < 0.4:
            layers.append(L.BatchNormalization(axis=1 if first else -1))
        if act == "linear" and rng.random() < 0.7:
            layers.append(L.ReLU())
        r = rng.random()
        if r < 0.4:
            layers.append(MaxP(2, strides=int(rng.integers(1, 3)), padding=str(rng.choice(["valid", "same"])),
                               **fmt_kw))
        elif r < 0.55:
            layers.append(AvgP(2, strides=1, **fmt_kw))
        if rng.random() < 0.3:
            layers.append(L.ReLU())
    if rng.random() < 0.25:
        layers.append((L.GlobalAveragePooling1D if one_d else L.GlobalAveragePooling2D)(**fmt_kw))
    else:
        layers.append(L.Flatten())
    layers += [L.Dropout(0.2), L.Dense(int(rng.integers(2, 5)), activation="relu"), L.Dense(3)]
    try:
        model = keras.Sequential(layers)
    except ValueError:  # a window that does not fit: draw again
        return random_keras_cnn(seed + 1000)
    _randomise_batchnorm(model, rng)
    return model, shape


@pytest.mark.parametrize("seed", range(16))
def test_random_keras_cnns_match_keras(seed):
    model, shape = random_keras_cnn(seed)
    net = rv.from_keras(model)
    assert any(isinstance(layer, Conv2D) for layer in net.layers)
    assert net.input_shape == shape
    x = np.random.default_rng(seed).uniform(-1, 1, (16,) + shape).astype(np.float32)
    ref = np.asarray(model(x, training=False), dtype=np.float64)
    out = net.forward(x.reshape(16, -1).astype(np.float64))
    assert np.max(np.abs(out - ref)) <= 1e-6 * max(1.0, np.abs(ref).max()), net.notes


def test_the_layers_it_reads_and_what_it_folds():
    rng = np.random.default_rng(0)
    model = keras.Sequential([keras.Input((7, 6, 3)), L.Rescaling(0.5, offset=0.1),
                              L.Conv2D(4, (3, 2), strides=(2, 1), padding="same"), L.BatchNormalization(), L.ReLU(),
                              L.ZeroPadding2D(((1, 0), (0, 2))), L.Conv2D(2, 2), L.MaxPooling2D(2, strides=1),
                              L.ReLU(), L.Flatten(), L.Dense(3)])
    _randomise_batchnorm(model, rng)
    net = rv.from_keras(model)
    # the Rescaling and the BatchNormalization are folded into the first conv, the padding into the
    # second, the ReLU after the pooling moves onto the second conv; one conv reads Keras's order
    assert [type(layer) for layer in net.layers[:3]] == [Conv2D, Conv2D, MaxPool2D]
    assert [layer.activation for layer in net.layers[:2]] == ["relu", "relu"]
    assert net.layers[0].input_shape == (1, 7, 18) and net.layers[1].pads == (1, 0, 0, 2)
    notes = " ".join(net.notes)
    assert "BatchNormalization" in notes and "zero padding" in notes and "moved" in notes
    x = rng.uniform(-1, 1, (10, 7, 6, 3)).astype(np.float32)
    ref = np.asarray(model(x), dtype=np.float64)
    assert np.max(np.abs(net.forward(x.reshape(10, -1)) - ref)) <= 1e-6 * max(1.0, np.abs(ref).max())


def test_a_witness_on_a_keras_cnn_is_confirmed_by_keras():
    rng = np.random.default_rng(3)
    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((5, 5, 1)), L.Conv2D(2, 2, activation="relu"), L.MaxPooling2D(2, strides=1),
                              L.Flatten(), L.Dense(3)])
    net = rv.from_keras(model)
    x = rng.random(25)
    c = int(np.argmax(net.forward(x)))
    res = rv.minimal_distortion(net, x, norm="linf", time_limit=60, reference=model)
    assert res.verdict == Verdict.FOUND, res
    for out in (net.forward(res.x_adv), np.asarray(model(res.x_adv.reshape(1, 5, 5, 1).astype(np.float32)))[0]):
        assert int(np.argmax(out)) != c
    assert res.lower_bound <= res.distance


UNSUPPORTED = {
    "dilation": (lambda: L.Conv2D(2, 2, dilation_rate=2, name="dilated"), "dilation_rate"),
    "groups": (lambda: L.Conv2D(2, 2, groups=2, name="grouped"), "groups=2"),
    "causal": (lambda: L.Conv1D(2, 2, padding="causal", name="causal"), "causal"),
    "avg-same": (lambda: L.AveragePooling2D(3, strides=1, padding="same", name="avg_same"), "padding='same'"),
    "tanh-conv": (lambda: L.Conv2D(2, 2, activation="tanh", name="tanh_conv"), "tanh"),
    "conv3d": (lambda: L.Conv3D(2, 2, name="vol"), "Conv3D is not encoded"),
    "cropping": (lambda: L.Cropping2D(1, name="crop"), "Cropping2D is not encoded"),
    "transpose": (lambda: L.Conv2DTranspose(2, 2, name="deconv"), "Conv2DTranspose is not encoded"),
    "separable": (lambda: L.SeparableConv2D(2, 2, name="sep"), "SeparableConv2D is not encoded"),
    "global-max": (lambda: L.GlobalMaxPooling2D(name="gmax"), "GlobalMaxPooling2D is not encoded"),
}


@pytest.mark.parametrize("case", sorted(UNSUPPORTED))
def test_unsupported_convolution_options_name_the_layer(case):
    make, fragment = UNSUPPORTED[case]
    layer = make()
    shape = (6, 2) if case == "causal" else (6, 6, 6, 2) if case == "conv3d" else (6, 6, 2)
    model = keras.Sequential([keras.Input(shape), layer, L.Flatten(), L.Dense(2)])
    with pytest.raises(UnsupportedLayerError) as info:
        rv.from_keras(model)
    assert layer.name in str(info.value) and fragment in str(info.value), str(info.value)
