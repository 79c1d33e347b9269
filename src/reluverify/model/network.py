"""The framework-neutral network representation.

A :class:`Network` is an ordered list of layer objects (:mod:`reluverify.model.layers`): each
computes a pre-activation ``z`` (an affine map of its input) and its output ``σ(z)``. The first
kind, :class:`~reluverify.model.layers.Dense`, is ``z = W @ x + b`` (``W`` of shape
``(n_out, n_in)``, float64) followed by ``"relu"`` or ``"linear"``. Importers
(:mod:`reluverify.io`) produce networks, bound strategies (:mod:`reluverify.bounds`) and the MILP
formulation (:mod:`reluverify.formulation`) consume them, through the layers' methods only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ..errors import InputError, ModelFileError, NetworkError
from .layers import Dense, Layer, layers_from_arrays, layers_to_arrays

_FILE_FORMAT = "reluverify-network"
_FILE_VERSION = 2  # the newest file version this reluverify reads (see layers.layers_to_arrays)


@dataclass(frozen=True)
class Network:
    """A feed-forward chain of layers (:class:`~reluverify.model.layers.Layer` objects).

    ``input_shape`` is the shape a single input has in its source framework (e.g. ``(28, 28)``);
    inputs are always handled flattened (row-major), of length ``n_inputs``.
    ``notes`` records what an importer changed (a dropped softmax, folded normalisation, ...).
    ``input_normalisation`` is ``(mean, std)`` (flattened) when an importer folded ``(x - mean) / std``
    into the first layer: the source model reads normalised inputs, the network raw ones (a
    ``reference=`` PyTorch module is then run on normalised witnesses). Not part of equality.
    """

    layers: tuple
    input_shape: tuple = None
    name: str = "network"
    notes: tuple = field(default_factory=tuple)
    input_normalisation: tuple = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        layers = tuple(self.layers)
        if not layers:
            raise NetworkError("a network needs at least one layer; got an empty list of layers")
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise NetworkError(f"layer {i} is a {type(layer).__name__}, expected a reluverify.Layer")
        for i in range(1, len(layers)):
            if layers[i].n_in != layers[i - 1].n_out:
                raise NetworkError(
                    f"layer {i} expects {layers[i].n_in} inputs but layer {i - 1} produces "
                    f"{layers[i - 1].n_out} outputs; check the weight shapes (n_out, n_in)"
                )
        shape = (layers[0].n_in,) if self.input_shape is None else tuple(int(s) for s in self.input_shape)
        if int(np.prod(shape)) != layers[0].n_in:
            raise NetworkError(
                f"input_shape {shape} has {int(np.prod(shape))} entries but the first layer takes "
                f"{layers[0].n_in} inputs"
            )
        object.__setattr__(self, "layers", layers)
        object.__setattr__(self, "input_shape", shape)
        object.__setattr__(self, "notes", tuple(self.notes))

    # ----------------------------------------------------------------- construction
    @classmethod
    def from_arrays(
        cls,
        weights: Sequence[np.ndarray],
        biases: Sequence[np.ndarray] | None = None,
        activations: Sequence[str] | None = None,
        *,
        weight_layout: str = "out_in",
        **kwargs,
    ) -> "Network":
        """Build a network from weight matrices.

        ``weight_layout="out_in"`` (default) means ``W`` has shape ``(n_out, n_in)``;
        ``"in_out"`` is the Keras convention ``(n_in, n_out)``. By default every layer but the
        last is ReLU and the last is linear.
        """
        if weight_layout not in ("out_in", "in_out"):
            raise NetworkError(f"weight_layout must be 'out_in' or 'in_out', got {weight_layout!r}")
        weights = list(weights)
        if not weights:
            raise NetworkError("a network needs at least one layer; got no weight matrices")
        if biases is None:
            biases = [None] * len(weights)
        if activations is None:
            activations = ["relu"] * (len(weights) - 1) + ["linear"]
        if not (len(weights) == len(biases) == len(activations)):
            raise NetworkError(
                f"got {len(weights)} weight matrices, {len(biases)} biases and {len(activations)} "
                "activations; they must be the same number"
            )
        layers = []
        for w, b, a in zip(weights, biases, activations):
            w = np.asarray(w, dtype=np.float64)
            if weight_layout == "in_out" and w.ndim == 2:
                w = w.T
            layers.append(Dense(w, b, a))
        return cls(tuple(layers), **kwargs)

    @classmethod
    def random(
        cls, sizes: Sequence[int], seed: int = 0, scale: float = 1.0, bias_scale: float = 0.1, **kwargs
    ) -> "Network":
        """A random ReLU network with layer sizes ``sizes = [n_in, h1, ..., n_out]`` (for tests/benchmarks)."""
        rng = np.random.default_rng(seed)
        sizes = list(sizes)
        if len(sizes) < 2:
            raise NetworkError("sizes must list at least the input and the output size")
        weights = [rng.normal(0, scale / np.sqrt(a), size=(b, a)) for a, b in zip(sizes[:-1], sizes[1:])]
        biases = [rng.normal(0, bias_scale, size=b) for b in sizes[1:]]
        kwargs.setdefault("name", "random-" + "-".join(map(str, sizes)))
        return cls.from_arrays(weights, biases, **kwargs)

    # ----------------------------------------------------------------- shape
    @property
    def n_inputs(self) -> int:
        return self.layers[0].n_in

    @property
    def n_outputs(self) -> int:
        return self.layers[-1].n_out

    @property
    def sizes(self) -> tuple:
        """``(n_in, n_1, ..., n_out)``."""
        return (self.n_inputs,) + tuple(layer.n_out for layer in self.layers)

    @property
    def n_relu(self) -> int:
        """Number of units with a nonlinear activation (ReLUs): the phases bounds may leave open."""
        return sum(layer.n_nonlinear for layer in self.layers)

    def __repr__(self) -> str:
        acts = ",".join(layer.describe() for layer in self.layers)
        return f"Network(name={self.name!r}, sizes={'-'.join(map(str, self.sizes))}, activations=[{acts}])"

    # ----------------------------------------------------------------- evaluation
    def _as_array(self, x) -> np.ndarray:
        try:
            return np.asarray(x, dtype=np.float64)
        except (TypeError, ValueError) as exc:  # strings, ragged lists, objects ...
            raise InputError(
                f"the input to network {self.name!r} must be numbers (an array of {self.n_inputs} floats); "
                f"converting it failed: {exc}"
            ) from None

    def _finite(self, flat: np.ndarray) -> np.ndarray:
        if not np.all(np.isfinite(flat)):
            raise InputError("the input contains NaN or infinite values; clean it before evaluating")
        return flat

    def as_input(self, x) -> np.ndarray:
        """Validate one input or a batch and return it flattened, float64, shape (n_inputs,) or (batch, n_inputs).

        The one rule for shapes: an array with exactly ``n_inputs`` values is one input, whatever its
        shape (a 28x28 image for a 784-input network, ``(784,)``, ``(784, 1)``); it is flattened in
        row-major (C) order, the order of :attr:`input_shape` that the importers keep (Keras
        ``Flatten`` and ONNX ``Flatten``/``Reshape`` use it too). A batch-of-one array whose trailing
        shape is the input shape, ``(1, *input_shape)`` or ``(1, n_inputs)``, stays a batch of one.
        Larger arrays are batches when their trailing dimensions hold ``n_inputs`` values each.
        Anything else is an :class:`~reluverify.errors.InputError`."""
        arr = self._as_array(x)
        n = self.n_inputs
        if arr.ndim >= 2 and arr.shape[0] == 1 and arr.shape[1:] in (self.input_shape, (n,)):
            return self._finite(arr.reshape(1, n))  # a batch of one, as given
        if arr.size == n and arr.ndim >= 1:
            return self._finite(arr.reshape(n))
        if arr.ndim >= 2 and arr.shape[0] > 0 and int(np.prod(arr.shape[1:])) == n:
            return self._finite(arr.reshape(arr.shape[0], n))
        raise InputError(
            f"input of shape {arr.shape} does not fit network {self.name!r}, which takes "
            f"{n} values (shape {self.input_shape}); pass one input of that shape (or any shape with "
            f"{n} values, read in row-major order) or a batch of shape (batch, {n})"
        )

    def as_point(self, x) -> np.ndarray:
        """One input, flattened to ``(n_inputs,)`` by the rule of :meth:`as_input` (a batch of one is
        accepted too); a batch of several is an :class:`~reluverify.errors.InputError`."""
        flat = self.as_input(x)
        if flat.ndim == 2:
            if flat.shape[0] != 1:
                raise InputError(f"got a batch of {flat.shape[0]} inputs; pass one input (shape "
                                 f"{self.input_shape}, or any shape with {self.n_inputs} values) at a time")
            flat = flat[0]
        return flat

    def forward(self, x, return_all: bool = False):
        """Float64 forward pass of one input or a batch; returns the outputs (logits).

        With ``return_all=True`` also returns the list of pre-activations of every layer.
        """
        h = self.as_input(x)
        pre = []
        for layer in self.layers:
            z = layer.preactivation(h)
            pre.append(z)
            h = layer.activate(z)
        return (h, pre) if return_all else h

    __call__ = forward

    def predict_class(self, x) -> np.ndarray | int:
        out = self.forward(x)
        return int(np.argmax(out)) if out.ndim == 1 else np.argmax(out, axis=1)

    # ----------------------------------------------------------------- persistence
    def save(self, path: str | os.PathLike) -> None:
        """Save to a ``.npz`` file (weights as float64, exactly; each layer's kind and state)."""
        version, layer_arrays = layers_to_arrays(self.layers)
        arrays = {
            "format": np.array(_FILE_FORMAT),
            "version": np.array(version),
            "name": np.array(self.name),
            "input_shape": np.array(self.input_shape, dtype=np.int64),
            "notes": np.array(list(self.notes), dtype=str),
            **layer_arrays,
        }
        np.savez(path, **arrays)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Network":
        """Load a network saved by :meth:`save`; malformed files raise :class:`ModelFileError`."""
        path = os.fspath(path)
        if not os.path.exists(path):
            raise ModelFileError(f"network file {path!r} does not exist; check the path")
        try:
            with np.load(path, allow_pickle=False) as data:
                files = set(data.files)
                if "format" not in files or str(data["format"]) != _FILE_FORMAT:
                    raise ModelFileError(
                        f"{path!r} is not a reluverify network file (no 'format' entry); save networks "
                        "with Network.save or import them with reluverify.io"
                    )
                version = int(data["version"])
                if version > _FILE_VERSION:
                    raise ModelFileError(
                        f"{path!r} was written by a newer reluverify (file version {version}); upgrade"
                    )
                layers = layers_from_arrays(data, path)
                return cls(
                    tuple(layers),
                    input_shape=tuple(int(s) for s in data["input_shape"]),
                    name=str(data["name"]),
                    notes=tuple(str(n) for n in data["notes"]) if "notes" in files else (),
                )
        except ModelFileError:
            raise
        except NetworkError as exc:
            raise ModelFileError(f"{path!r} holds an invalid network: {exc}") from exc
        except Exception as exc:  # zip errors, bad pickles, truncated files ...
            raise ModelFileError(
                f"could not read network file {path!r} ({type(exc).__name__}: {exc}); is it a .npz "
                "written by Network.save?"
            ) from exc

