"""Import Keras 3 models (Sequential or functional chains) as a :class:`~reluverify.Network`.

Only :func:`from_keras` is public. Keras (and with it TensorFlow) is imported inside the
function, never at module import time.

How a model is translated
-------------------------
The layers are walked in order while one *open* affine map ``x -> W x + b`` is kept:

* ``Dense`` composes its affine map into the open map (if the open map already holds a Dense,
  that one is first closed as a separate ``"linear"`` layer, so every Dense becomes a layer);
* elementwise affine maps (``Rescaling``, ``Normalization``, ``BatchNormalization`` in
  inference mode) are composed into the open map as well, which folds them into the preceding
  Dense when no activation lies in between, and otherwise into the following Dense;
* a ReLU (``Dense(activation="relu")``, ``ReLU()``, ``Activation("relu")``) closes the open map
  as a ``"relu"`` layer; the map left open at the end becomes the final ``"linear"`` layer;
* ``Flatten``/``Reshape`` only relabel the row-major flattened vector (a channels-first
  ``Flatten`` becomes a permutation, folded like the elementwise maps);
* ``Dropout``-like layers are the identity at inference and are skipped;
* a softmax at the very end is dropped (reluverify reasons about logits) and noted.

Convolutional layers (``Conv1D``/``Conv2D``, ``MaxPooling1D/2D``, ``AveragePooling1D/2D``,
``ZeroPadding1D/2D``, ``GlobalAveragePooling1D/2D``) become :class:`~reluverify.model.layers.Conv2D`
and :class:`~reluverify.model.layers.MaxPool2D` layers, which work channels-first: a 1-D layer is a
2-D one of height 1, and a channels-last tensor ``(H, W, C)`` is laid out internally as
``(C, H, W)``. The first convolution reading a channels-last tensor in Keras's own order reads it
as one channel of shape ``(H, W * C)`` (kernel ``(kh, kw * C)``, stride ``(sh, sw * C)``: the same
products, no permutation layer); a pooling or padding reading one gets an identity convolution of
that form first. ``Flatten`` after a channels-last tensor is the permutation to Keras's
``(H, W, C)`` order, folded into the next Dense. A ``BatchNormalization`` right after a
convolution is folded into its kernel and bias (after a ReLU it becomes a 1x1 convolution),
``ZeroPadding`` becomes the next convolution's padding, average pooling a convolution.

Two corner cases are kept exact by emitting an extra layer, recorded in ``Network.notes``: an
elementwise affine map that no Dense can absorb (it sits between a ReLU and another ReLU, or
after the last ReLU at the end of the model) becomes a diagonal layer, and a ReLU acting directly
on the network input becomes an identity layer with ReLU activation. A ReLU right after another
ReLU is idempotent and is skipped.
"""

from __future__ import annotations

import os
import sys

import numpy as np

from ..errors import MissingDependencyError, ModelFileError, NetworkError, UnsupportedLayerError
from ..model import Network
from ..model.layers import Conv2D, Dense, MaxPool2D

__all__ = ["from_keras"]

SUPPORTED_LAYERS = (
    "InputLayer; Dense (activation 'relu', 'linear' or None; 'softmax' only on the last layer); "
    "ReLU (plain max(x, 0): max_value=None, negative_slope=0, threshold=0); "
    "Activation('relu' | 'linear', or 'softmax' as the last layer); Softmax (last layer only); "
    "Flatten; Reshape; Rescaling; Normalization; BatchNormalization (inference mode); "
    "Conv1D/Conv2D (padding valid/same, strides, dilation 1, groups 1, activation relu/linear); "
    "MaxPooling1D/2D; AveragePooling1D/2D (valid padding); ZeroPadding1D/2D; "
    "GlobalAveragePooling1D/2D; "
    "Dropout, SpatialDropout1D/2D/3D, GaussianNoise, GaussianDropout, AlphaDropout, "
    "ActivityRegularization, Identity (skipped: no-ops at inference); "
    "nested Sequential/functional models that are themselves chains of these"
)

_NOOP_CLASS_NAMES = (
    "Dropout",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "SpatialDropout3D",
    "GaussianNoise",
    "GaussianDropout",
    "AlphaDropout",
    "ActivityRegularization",
    "Identity",
)


# --------------------------------------------------------------------------- helpers
def _import_keras():
    try:
        import keras  # noqa: PLC0415  (deliberately lazy)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingDependencyError(
            "reluverify.io.from_keras needs Keras 3: `pip install 'reluverify[keras]'` (tensorflow-cpu); "
            f"importing it failed: {exc}"
        ) from exc
    major = int(str(getattr(keras, "__version__", "0")).split(".")[0] or 0)
    if major < 3:  # pragma: no cover - depends on the environment
        raise MissingDependencyError(
            f"reluverify.io.from_keras needs Keras 3, found keras {keras.__version__}; "
            "upgrade with `pip install -U keras` (or tensorflow>=2.16)"
        )
    return keras


def _functional_class(keras):
    try:
        from keras.src.models.functional import Functional  # noqa: PLC0415

        return Functional
    except ImportError:  # pragma: no cover - private path moved
        return None


def _describe(op) -> str:
    return f"{type(op).__name__} layer {getattr(op, 'name', '?')!r}"


def _unsupported(op, reason: str) -> UnsupportedLayerError:
    return UnsupportedLayerError(
        f"{_describe(op)} is not supported: {reason}. Supported layers: {SUPPORTED_LAYERS}."
    )


def _to_numpy(value) -> np.ndarray:
    if value is None:
        return None
    try:
        return np.asarray(value, dtype=np.float64)
    except Exception:  # backend tensors without __array__
        import keras  # noqa: PLC0415

        return np.asarray(keras.ops.convert_to_numpy(value), dtype=np.float64)


def _exact_type(op, cls) -> bool:
    """``op`` is exactly ``cls`` (subclasses may override ``call`` and are treated as custom)."""
    return cls is not None and type(op) is cls


def _load(keras, path) -> object:
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ModelFileError(
            f"Keras model file {path!r} does not exist; check the path, or pass the keras.Model "
            "object itself to from_keras"
        )
    if os.path.isdir(path):
        raise ModelFileError(
            f"{path!r} is a directory (a TensorFlow SavedModel?); Keras 3 cannot load those. Save "
            "the model with model.save('model.keras') (or .h5) and pass that file"
        )
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as exc:
        raise ModelFileError(
            f"could not load Keras model file {path!r} ({type(exc).__name__}: {exc}); from_keras "
            "reads .keras (Keras 3) and .h5 (legacy HDF5) files written by model.save(...); re-save "
            "the model in one of these formats, or pass the keras.Model object itself"
        ) from exc


# --------------------------------------------------------------------------- graph walking
def _model_kind(keras, model) -> str | None:
    """'sequential', 'functional', or None for models whose structure cannot be read."""
    functional = _functional_class(keras)
    if isinstance(model, keras.Sequential) and type(model).call is keras.Sequential.call:
        return "sequential"
    if functional is not None and isinstance(model, functional) and type(model).call is functional.call:
        if isinstance(model, keras.Sequential):  # a Sequential subclass with its own call
            return None
        return "functional"
    return None


def _readable_kind(keras, model) -> str:
    """Like :func:`_model_kind`, but raise UnsupportedLayerError for unreadable models."""
    kind = _model_kind(keras, model)
    if kind is None:
        raise UnsupportedLayerError(
            f"model {getattr(model, 'name', '?')!r} of class {type(model).__name__} is a subclassed "
            "keras.Model (or overrides call), whose computation cannot be read layer by layer; "
            "rebuild it as a keras.Sequential or a functional keras.Model(inputs, outputs). "
            f"Supported layers: {SUPPORTED_LAYERS}."
        )
    return kind


def _chain(keras, model) -> list:
    """The operations of ``model`` from input to output, nested models expanded.

    Returns a list of ``(operation, call_kwargs)``; raises UnsupportedLayerError when the model
    is not a single-input single-output chain.
    """
    kind = _readable_kind(keras, model)
    out = []
    if kind == "sequential":
        for layer in model.layers:
            if isinstance(layer, keras.Model):
                out.extend(_chain(keras, layer))
            else:
                out.append((layer, {}))
        return out

    inputs, outputs = list(model.inputs), list(model.outputs)
    if len(inputs) != 1 or len(outputs) != 1:
        raise UnsupportedLayerError(
            f"functional model {model.name!r} has {len(inputs)} inputs and {len(outputs)} outputs; "
            "only single-input single-output chains of layers are supported. "
            f"Supported layers: {SUPPORTED_LAYERS}."
        )
    reversed_ops = []
    tensor = outputs[0]
    for _ in range(100000):
        history = getattr(tensor, "_keras_history", None)
        if history is None:  # pragma: no cover - not a symbolic tensor
            raise UnsupportedLayerError(f"cannot trace the graph of functional model {model.name!r}")
        op, node_index, _tensor_index = history
        node = op._inbound_nodes[node_index]
        if node.is_input:
            break
        parents = list(node.input_tensors)
        if len(parents) != 1 or len(node.outputs) != 1:
            raise UnsupportedLayerError(
                f"{_describe(op)} in model {model.name!r} takes {len(parents)} input tensor(s) and "
                f"returns {len(node.outputs)}: the model is not a simple chain (branches, skip "
                "connections, merges or multiple inputs/outputs are not supported). "
                f"Supported layers: {SUPPORTED_LAYERS}."
            )
        reversed_ops.append((op, dict(node.arguments.kwargs)))
        tensor = parents[0]
    for op, kwargs in reversed(reversed_ops):
        if isinstance(op, keras.Model):
            out.extend(_chain(keras, op))
        else:
            out.append((op, kwargs))
    return out


def _input_shape(model) -> tuple:
    try:
        inputs = list(model.inputs)
    except (AttributeError, ValueError) as exc:
        raise NetworkError(
            f"Keras model {getattr(model, 'name', '?')!r} has no defined input shape yet; build it "
            "first (model.build((None, n_features)), or start it with keras.Input(shape=...))"
        ) from exc
    if len(inputs) != 1:
        raise UnsupportedLayerError(
            f"model {model.name!r} has {len(inputs)} inputs; only single-input single-output "
            f"chains of layers are supported. Supported layers: {SUPPORTED_LAYERS}."
        )
    shape = tuple(inputs[0].shape)[1:]
    if any(d is None for d in shape):
        raise NetworkError(
            f"Keras model {model.name!r} has an input of shape {tuple(inputs[0].shape)} with unknown "
            "dimensions besides the batch dimension; give keras.Input a fully known shape"
        )
    return tuple(int(d) for d in shape)


# --------------------------------------------------------------------------- conversion
class _Builder:
    """Accumulates layers while keeping one open affine map (see the module docstring)."""

    def __init__(self, input_shape: tuple):
        self.shape = tuple(input_shape)
        self.layers: list = []
        self.notes: list = []
        self.W = None  # open affine map; None means identity
        self.b = None
        self.dense = None  # name of the Dense inside the open map, if any
        self.pending: list = []  # elementwise layers in the open map not yet absorbed by a Dense
        # convolutions: ``grid`` (C, H, W) when the flat vector is channels-first while ``shape`` is
        # Keras's channels-last shape; ``conv`` an open convolution (Conv2D arguments), with
        # ``conv_label``; ``conv_pad_only`` when it is a zero padding only (the next conv absorbs it)
        self.grid = None
        self.conv = None
        self.conv_label = ""
        self.conv_pad_only = False
        self.keras_first = False  # the Keras tensor is channels-first: its order is the grid's
        self.one_d = False  # the Keras tensor is (L, C) (kept here as (1, L, C))

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    # ---- composing affine maps into the open one
    def elementwise(self, scale: np.ndarray, shift: np.ndarray, label: str) -> None:
        self.close_conv("linear")
        if self.W is None:
            self.W, self.b = np.diag(scale), shift.copy()
        else:
            self.W = scale[:, None] * self.W
            self.b = scale * self.b + shift
        if self.dense is not None:
            self.notes.append(f"folded {label} into the preceding Dense {self.dense!r}")
        else:
            self.pending.append(label)

    def permute(self, index: np.ndarray) -> None:
        self.close_conv("linear")
        if self.W is None:
            self.W, self.b = np.eye(self.size)[index], np.zeros(self.size)
        else:
            self.W, self.b = self.W[index], self.b[index]

    def dense_map(self, weight: np.ndarray, bias: np.ndarray, name: str) -> None:
        self.close_conv("linear")
        if self.dense is not None:
            self.close("linear")
        if self.W is None:
            self.W, self.b = weight, bias
        else:
            self.W, self.b = weight @ self.W, weight @ self.b + bias
        for label in self.pending:
            self.notes.append(f"folded {label} into the following Dense {name!r}")
        self.pending = []
        self.dense = name

    # ---- convolutions
    def close_conv(self, activation: str) -> None:
        """Close the open convolution as a layer (a pure zero padding as a linear identity conv)."""
        if self.conv is None:
            return
        self.layers.append(Conv2D(activation=activation, **self.conv))
        self.conv = None
        self.conv_pad_only = False

    def _close_dense_for_conv(self, label: str) -> tuple | None:
        """Before a convolution: an open elementwise map with one scale per channel is returned as
        ``(scale per channel, shift (flat))`` to fold into it; any other open map is closed as a
        linear layer (None)."""
        if self.W is None:
            return None
        W = self.W
        if W.shape[0] == W.shape[1] and not np.count_nonzero(W - np.diag(np.diag(W))) and self.grid is None:
            c = self.shape[-1] if len(self.shape) > 1 else 1
            scale = np.diag(W).reshape(-1, c)
            if np.all(scale == scale[:1]):
                shift = self.b.copy()
                if self.pending:
                    what = "input normalisation " if not self.layers else ""
                    self.notes.append(f"folded {what}{', '.join(self.pending)} into the following {label}")
                self.W = self.b = self.dense = None
                self.pending = []
                return scale[0], shift
        self.close("linear")
        self.notes.append(f"kept the map before {label} as a separate linear layer")
        return None

    def open_conv(self, kernel: np.ndarray, bias, stride: tuple, pads: tuple, label: str) -> None:
        """Open a convolution with a Keras kernel ``(kh, kw, C_in, C_out)`` on the current tensor
        (channels-last ``shape`` (H, W, C), laid out as ``grid`` or in Keras's order), zero ``pads``
        (top, left, bottom, right)."""
        kh, kw, c, co = kernel.shape
        if self.conv is not None and self.conv_pad_only:  # a zero padding just before: take it over
            extra = self.conv["pads"]
            pads = tuple(int(p) + int(q) for p, q in zip(pads, extra))
            self.grid = tuple(self.conv["input_shape"])
            self.shape = (self.grid[1], self.grid[2], self.grid[0])
            self.conv = None
            self.conv_pad_only = False
            self.notes.append(f"folded the zero padding before {label} into it")
        self.close_conv("linear")
        fold = self._close_dense_for_conv(label)
        h, w = self.shape[0], self.shape[1]
        if self.grid is not None or c == 1:  # channels-first layout (or one channel: the same order)
            K = kernel.transpose(3, 2, 0, 1)
            geometry = dict(input_shape=(c, h, w), stride=stride, pads=pads)
        else:  # Keras's (H, W, C) order read as one channel (H, W * C)
            K = kernel.transpose(3, 0, 1, 2).reshape(co, 1, kh, kw * c)
            geometry = dict(input_shape=(1, h, w * c), stride=(stride[0], stride[1] * c),
                            pads=(pads[0], pads[1] * c, pads[2], pads[3] * c))
        out_h = (h + pads[0] + pads[2] - kh) // stride[0] + 1
        out_w = (w + pads[1] + pads[3] - kw) // stride[1] + 1
        bias_full = np.repeat(np.zeros(co) if bias is None else np.asarray(bias, np.float64).reshape(-1), out_h * out_w)
        if fold is not None:
            scale, shift = fold
            original = K
            if self.grid is not None or c == 1:
                K = K * scale[None, :, None, None]
            else:
                K = K * np.tile(scale, kw)[None, None, None, :]
            if np.any(shift):
                bias_full = bias_full + Conv2D(original, None, activation="linear", **geometry).preactivation(shift)
        self.conv = dict(kernel=K, bias=bias_full, **geometry)
        self.conv_label = label
        self.grid = (co, out_h, out_w)
        self.shape = (out_h, out_w, co)

    def to_grid(self, label: str) -> tuple:
        """Make the current channels-last tensor channels-first (an identity convolution reading
        Keras's order when it has several channels); returns the grid (C, H, W)."""
        if self.grid is None:
            if len(self.shape) != 3:
                raise ValueError(f"expects a (height, width, channels) tensor, got shape {self.shape}")
            c = self.shape[2]
            if c > 1 or self.W is not None:
                self.open_conv(np.eye(c).reshape(1, 1, c, c), None, (1, 1), (0, 0, 0, 0), label)
                self.notes.append(f"laid out the tensor before {label} channels-first with an identity convolution")
            else:
                self.grid = (1, self.shape[0], self.shape[1])
        return self.grid

    def conv_scale_shift(self, scale: np.ndarray, shift: np.ndarray, label: str) -> None:
        """A per-channel affine map on the grid: folded into the open convolution, else a 1x1 one."""
        if self.conv is not None and not self.conv_pad_only:
            co = self.conv["kernel"].shape[0]
            positions = self.conv["bias"].size // co
            self.conv["kernel"] = self.conv["kernel"] * scale[:, None, None, None]
            self.conv["bias"] = self.conv["bias"] * np.repeat(scale, positions) + np.repeat(shift, positions)
            self.notes.append(f"folded {label} into {self.conv_label}")
            return
        c = scale.size
        self.open_conv(np.diag(scale).reshape(1, 1, c, c), shift, (1, 1), (0, 0, 0, 0), label)

    def zero_pad(self, pads: tuple, label: str) -> None:
        c, h, w = self.to_grid(label)
        self.close_conv("linear")
        self.conv = dict(kernel=np.eye(c).reshape(c, c, 1, 1), bias=None, input_shape=(c, h, w), stride=(1, 1),
                         pads=pads)
        self.conv_label = label
        self.conv_pad_only = True
        oh, ow = h + pads[0] + pads[2], w + pads[1] + pads[3]
        self.grid = (c, oh, ow)
        self.shape = (oh, ow, c)

    def max_pool(self, kernel: tuple, stride: tuple, pads: tuple, label: str) -> None:
        c, h, w = self.to_grid(label)
        self.close_conv("linear")
        if self.W is not None:
            self.close("linear")
        layer = MaxPool2D(kernel, (c, h, w), stride, pads)
        self.layers.append(layer)
        self.grid = layer.output_shape
        self.shape = (self.grid[1], self.grid[2], c)

    def flatten_grid(self) -> None:
        """The grid as Keras's channels-last order (a permutation folded into the next Dense)."""
        if self.grid is None:
            return
        c, h, w = self.grid
        self.close_conv("linear")
        if c > 1 and not self.keras_first:
            self.permute(np.arange(c * h * w).reshape(c, h, w).transpose(1, 2, 0).reshape(-1))
            self.notes.append("Keras's channels-last element order: a permutation folded into the next layer")
        self.grid = None

    # ---- activations / closing
    def close(self, activation: str) -> None:
        if self.conv is not None:
            self.close_conv(activation)
            return
        if self.W is None:
            self.W, self.b = np.eye(self.size), np.zeros(self.size)
        if self.pending:
            self.notes.append(
                f"kept {', '.join(self.pending)} as a separate diagonal {activation} layer: no Dense "
                "could absorb it without crossing a ReLU"
            )
        self.layers.append(Dense(self.W, self.b, activation))
        self.W = self.b = self.dense = None
        self.pending = []

    def relu(self, label: str) -> None:
        if self.conv is not None:
            self.close_conv("relu")
            return
        if self.W is None:
            if len(self.layers) >= 2 and isinstance(self.layers[-1], MaxPool2D):
                before = self.layers[-2]
                if before.nonnegative:
                    self.notes.append(f"skipped {label}: the pooling before it reads a ReLU's outputs")
                    return
                if isinstance(before, (Dense, Conv2D)) and before.activation == "linear":
                    from dataclasses import replace

                    self.layers[-2] = replace(before, activation="relu")
                    self.notes.append(f"moved {label} before the max pooling (relu(max z) = max relu(z))")
                    return
            if self.layers and self.layers[-1].nonnegative:  # relu(x) = x on a ReLU's output
                self.notes.append(f"skipped {label}: it follows another ReLU (relu(relu(x)) = relu(x))")
                return
            self.notes.append(
                f"inserted an identity layer with ReLU activation for {label}, which acts directly "
                "on the network input"
            )
        self.close("relu")

    def finish(self) -> list:
        if self.conv is not None:
            self.close_conv("linear")
        if self.grid is not None:  # the output in Keras's order
            self.flatten_grid()
            if self.W is not None:
                self.close("linear")
            return self.layers
        if self.W is not None or not self.layers:
            if self.W is None:
                self.notes.append("the model has no Dense layer; the network is a single identity layer")
            self.close("linear")
        return self.layers


def _broadcast(value, full_shape: tuple, op, what: str) -> np.ndarray:
    """Broadcast a layer parameter against a batch of one input; returns it flattened."""
    arr = np.asarray(_to_numpy(value), dtype=np.float64)
    try:
        out = np.broadcast_to(arr, full_shape)
    except ValueError:
        raise _unsupported(
            op,
            f"its {what} of shape {arr.shape} does not broadcast to its input of shape "
            f"{full_shape[1:]} (batch dimension removed)",
        ) from None
    return np.array(out, dtype=np.float64).reshape(-1)


def _activation_name(keras, activation, op) -> str:
    """Name of a Dense/Activation activation: 'linear', 'relu', 'softmax', or another name."""
    if activation is None:
        return "linear"
    if isinstance(activation, keras.layers.Layer):
        if _exact_type(activation, keras.layers.ReLU):
            return "relu" if _plain_relu(activation) else "parametrised relu"
        if _exact_type(activation, keras.layers.Softmax):
            return "softmax"
        return type(activation).__name__
    name = getattr(activation, "__name__", None)
    if isinstance(name, str):
        try:
            builtin = keras.activations.get(name)
        except Exception:
            builtin = None
        if builtin is activation:
            return name
        tf = sys.modules.get("tensorflow")
        if tf is not None:
            if activation is getattr(getattr(tf, "nn", None), "relu", None):
                return "relu"
            if activation is getattr(getattr(tf, "nn", None), "softmax", None):
                return "softmax"
        return f"custom function {name!r}"
    return f"custom callable {type(activation).__name__}"


def _plain_relu(op) -> bool:
    max_value = getattr(op, "max_value", None)
    slope = float(getattr(op, "negative_slope", 0.0) or 0.0)
    threshold = float(getattr(op, "threshold", 0.0) or 0.0)
    return max_value is None and slope == 0.0 and threshold == 0.0


def _is_noop(keras, op) -> bool:
    for cls_name in _NOOP_CLASS_NAMES:
        if _exact_type(op, getattr(keras.layers, cls_name, None)):
            return True
    if _exact_type(op, keras.layers.Activation):
        return _activation_name(keras, op.activation, op) == "linear"
    return _exact_type(op, keras.layers.InputLayer)


def _convert(keras, ops: list, input_shape: tuple) -> _Builder:
    L = keras.layers
    b = _Builder(input_shape)
    # index of the last operation that is not a pure no-op: a softmax there is "final"
    last_effective = max((i for i, (op, _kw) in enumerate(ops) if not _is_noop(keras, op)), default=-1)

    def softmax(op, i, where):
        if i != last_effective:
            raise _unsupported(
                op,
                f"{where} is only supported at the very end of the model (where it is "
                "dropped to reason about logits), not in a hidden position",
            )
        b.notes.append(f"dropped final softmax of layer {op.name!r}: reasoning about logits")

    def apply_activation(op, i, act_name, where):
        if act_name == "linear":
            return
        if act_name == "relu":
            b.relu(f"the ReLU of {type(op).__name__} {op.name!r}")
            return
        if act_name == "softmax":
            softmax(op, i, where)
            return
        raise _unsupported(
            op,
            f"activation {act_name!r} is not supported; only 'relu' and 'linear' (and a final "
            "'softmax', which is dropped) are",
        )

    for i, (op, kwargs) in enumerate(ops):
        full = (1,) + b.shape
        if kwargs.get("training") is True and (
            _exact_type(op, L.BatchNormalization)
            or any(_exact_type(op, getattr(L, c, None)) for c in _NOOP_CLASS_NAMES)
        ):
            raise _unsupported(op, "it is called with training=True, so it does not act as at inference")

        if _exact_type(op, L.InputLayer):
            continue
        if _is_noop(keras, op) and not _exact_type(op, L.Activation):
            b.notes.append(f"skipped {_describe(op)}: it is the identity at inference")
            continue

        if _exact_type(op, L.Dense):
            if len(b.shape) != 1:
                raise _unsupported(
                    op,
                    f"it receives inputs of shape {b.shape}; Keras applies Dense to the last axis "
                    "only, which reluverify does not encode; add a Flatten layer before it",
                )
            if getattr(op, "quantization_mode", None):
                raise _unsupported(op, f"it is quantized ({op.quantization_mode}); use the float model")
            kernel = _to_numpy(op.kernel)
            if kernel.ndim != 2 or kernel.shape[0] != b.size:
                raise _unsupported(op, f"its kernel has shape {kernel.shape}, expected ({b.size}, units)")
            bias = _to_numpy(op.bias) if getattr(op, "use_bias", True) and op.bias is not None else None
            if bias is None:
                bias = np.zeros(kernel.shape[1])
            b.dense_map(kernel.T.copy(), bias.reshape(-1), op.name)
            b.shape = (kernel.shape[1],)
            apply_activation(op, i, _activation_name(keras, op.activation, op), "its softmax activation")
        elif _exact_type(op, L.ReLU):
            if not _plain_relu(op):
                raise _unsupported(
                    op,
                    f"it is not the plain max(x, 0) (max_value={op.max_value}, negative_slope="
                    f"{op.negative_slope}, threshold={op.threshold})",
                )
            b.relu(_describe(op))
        elif _exact_type(op, L.Activation):
            apply_activation(op, i, _activation_name(keras, op.activation, op), "its softmax activation")
        elif _exact_type(op, L.Softmax):
            softmax(op, i, "a Softmax layer")
        elif _exact_type(op, L.Flatten):
            if b.grid is not None:
                b.flatten_grid()
                if getattr(op, "data_format", "channels_last") == "channels_first" and b.keras_first:
                    c, h, w = b.shape[2], b.shape[0], b.shape[1]
                    b.permute(np.arange(b.size).reshape(c, h, w).transpose(1, 2, 0).reshape(-1))
            elif getattr(op, "data_format", "channels_last") == "channels_first" and len(b.shape) > 1:
                r = len(b.shape)
                index = np.arange(b.size).reshape(b.shape).transpose(*range(1, r), 0).reshape(-1)
                b.permute(index)
                b.notes.append(f"channels-first {_describe(op)} became a permutation of the inputs")
            b.shape = (b.size,)
        elif _exact_type(op, L.Reshape):
            _leave_grid(b)
            try:
                new_shape = np.empty(b.size, dtype=np.int8).reshape(tuple(op.target_shape)).shape
            except ValueError:
                raise _unsupported(op, f"cannot reshape {b.shape} to {tuple(op.target_shape)}") from None
            b.shape = tuple(int(d) for d in new_shape)  # row-major: the flat vector is unchanged
        elif _exact_type(op, L.BatchNormalization) and b.grid is not None:
            rank = 2 if b.one_d else 3  # the Keras tensor's rank (batch dimension removed)
            if int(op.axis) % (rank + 1) != (1 if b.keras_first else rank):
                raise _unsupported(op, f"it normalises axis {op.axis}, not the channels of a convolution's output")
            scale, shift = _bn_params(op, b.grid[0])
            b.conv_scale_shift(scale, shift, _describe(op))
        elif _exact_type(op, L.Rescaling):
            _leave_grid(b)
            scale = np.asarray(_to_numpy(op.scale), dtype=np.float64)
            if scale.ndim > 0 and keras.config.image_data_format() == "channels_first":
                scale = scale.reshape(scale.shape + (1,) * (3 - scale.ndim))
            s = _broadcast(scale, full, op, "scale")
            t = _broadcast(op.offset, full, op, "offset")
            b.elementwise(s, t, _describe(op))
        elif _exact_type(op, L.Normalization):
            _leave_grid(b)
            if getattr(op, "mean", None) is None or getattr(op, "variance", None) is None:
                raise _unsupported(op, "it has no mean/variance yet; adapt() or build it first")
            mean = _broadcast(op.mean, full, op, "mean")
            std = np.maximum(np.sqrt(_broadcast(op.variance, full, op, "variance")), keras.config.epsilon())
            if getattr(op, "invert", False):
                b.elementwise(std, mean, _describe(op))
            else:
                b.elementwise(1.0 / std, -mean / std, _describe(op))
        elif _exact_type(op, L.BatchNormalization):
            axis = int(op.axis) % len(full)
            if axis == 0:
                raise _unsupported(op, "it normalises over the batch axis")
            channels = full[axis]
            pshape = [1] * len(full)
            pshape[axis] = channels
            scale, shift = _bn_params(op, channels)
            s = _broadcast(scale.reshape(pshape), full, op, "scale")
            t = _broadcast(shift.reshape(pshape), full, op, "shift")
            b.elementwise(s, t, _describe(op))
        elif _conv_family(keras, op):
            _conv_layer(keras, b, op, i, apply_activation)
        else:
            from_keras_layer = isinstance(op, keras.layers.Layer)
            raise _unsupported(
                op,
                "the Keras importer handles only chains of affine layers and ReLUs, not this layer class"
                if from_keras_layer
                else "it is a raw keras operation inside a functional model, not a supported layer",
            )
    return b


_CONV_CLASSES = ("Conv1D", "Conv2D", "MaxPooling1D", "MaxPooling2D", "AveragePooling1D", "AveragePooling2D",
                 "ZeroPadding1D", "ZeroPadding2D", "GlobalAveragePooling1D", "GlobalAveragePooling2D")


def _conv_family(keras, op) -> bool:
    """A convolution, pooling or padding layer (exactly a Keras class; others are refused below)."""
    if any(_exact_type(op, getattr(keras.layers, n, None)) for n in _CONV_CLASSES):
        return True
    if isinstance(op, keras.layers.Layer) and any(w in type(op).__name__ for w in ("Conv", "Pooling", "Padding",
                                                                                      "Cropping", "UpSampling")):
        raise _unsupported(op, f"{type(op).__name__} is not encoded (the convolution layers read are "
                           f"{', '.join(_CONV_CLASSES)})")
    return False


def _leave_grid(b: _Builder) -> None:
    """Back to Keras's element order before a layer that works on it (Reshape, Rescaling, ...)."""
    if b.grid is not None:
        b.flatten_grid()
        if b.one_d:
            b.shape = b.shape[1:]
            b.one_d = False
        if b.keras_first:
            b.shape = (b.shape[2], b.shape[0], b.shape[1])
            b.keras_first = False


def _bn_params(op, channels: int) -> tuple:
    def param(v, default, what):
        if v is None:
            return np.full(channels, default, dtype=np.float64)
        arr = _to_numpy(v).reshape(-1)
        if arr.shape != (channels,):
            raise _unsupported(op, f"its {what} has {arr.size} entries, expected {channels}")
        return arr

    gamma = param(op.gamma if op.scale else None, 1.0, "gamma")
    beta = param(op.beta if op.center else None, 0.0, "beta")
    mean = param(op.moving_mean, 0.0, "moving mean")
    var = param(op.moving_variance, 1.0, "moving variance")
    scale = gamma / np.sqrt(var + float(op.epsilon))
    return scale, beta - mean * scale


def _same_pads(size: int, k: int, s: int) -> tuple:
    """Keras/TensorFlow 'same' padding of one axis: ``(before, after)``, the larger part after."""
    total = max((-(-size // s) - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def _conv_layer(keras, b: _Builder, op, i: int, apply_activation) -> None:
    """One Keras convolution, pooling or padding layer (see the module docstring)."""
    name = type(op).__name__
    one_d = name.endswith("1D")
    fmt = getattr(op, "data_format", None) or keras.config.image_data_format()
    first = fmt == "channels_first"
    rank = 2 if one_d else 3
    label = _describe(op)
    # the current tensor as (H, W, C) channels-last (1-D: H = 1), laid out in grid or Keras order
    if b.grid is None:
        if len(b.shape) != rank:
            raise _unsupported(op, f"it receives inputs of shape {b.shape}; expected a {rank}-D tensor "
                               f"(batch dimension removed)")
        shape = b.shape
        if first:  # Keras's order is channels-first: the grid order itself
            c, sp = shape[0], shape[1:]
            sp = (1,) + sp if one_d else sp
            b.close_conv("linear")
            if b.W is not None:
                b.close("linear")
            b.grid = (c, sp[0], sp[1])
            b.shape = (sp[0], sp[1], c)
            b.keras_first, b.one_d = True, one_d
        else:
            b.shape = ((1,) + shape) if one_d else shape
            b.keras_first, b.one_d = False, one_d
    elif b.keras_first != first or b.one_d != one_d:
        raise _unsupported(op, "it mixes data formats or 1-D and 2-D layers with the layers before it")
    h, w, c = b.shape

    def pair(v):
        v = tuple(int(x) for x in (v if isinstance(v, (tuple, list)) else (v,)))
        return ((1,) + v) if one_d else (v * 2 if len(v) == 1 else v)

    def pads_for(padding, ks, strides):
        if padding == "valid":
            return (0, 0, 0, 0)
        if padding == "same":
            (t, bo), (le, r) = _same_pads(h, ks[0], strides[0]), _same_pads(w, ks[1], strides[1])
            return (t, le, bo, r)
        raise _unsupported(op, f"padding={padding!r} is not encoded (only 'valid' and 'same')")

    if name in ("Conv1D", "Conv2D"):
        if int(getattr(op, "groups", 1)) != 1:
            raise _unsupported(op, f"groups={op.groups} (a grouped convolution) is not encoded")
        if any(int(d) != 1 for d in np.atleast_1d(op.dilation_rate)):
            raise _unsupported(op, f"dilation_rate={op.dilation_rate} is not encoded (only 1)")
        if getattr(op, "quantization_mode", None):
            raise _unsupported(op, f"it is quantized ({op.quantization_mode}); use the float model")
        kernel = _to_numpy(op.kernel)
        if one_d:
            kernel = kernel[None]
        ks, strides = kernel.shape[:2], pair(op.strides)
        pads = pads_for(op.padding, ks, strides)
        if min((h + pads[0] + pads[2] - ks[0]) // strides[0], (w + pads[1] + pads[3] - ks[1]) // strides[1]) < 0:
            raise _unsupported(op, f"its kernel {ks} does not fit its input")
        bias = _to_numpy(op.bias) if getattr(op, "use_bias", True) and op.bias is not None else None
        b.open_conv(kernel, bias, strides, pads, label)
        apply_activation(op, i, _activation_name(keras, op.activation, op), "its softmax activation")
    elif name.startswith("ZeroPadding"):
        p = np.asarray(op.padding, dtype=np.int64).reshape(-1)
        pads = (0, int(p[0]), 0, int(p[1])) if one_d else (int(p[0]), int(p[2]), int(p[1]), int(p[3]))
        b.zero_pad(pads, label)
    elif name.startswith("MaxPooling") or name.startswith("AveragePooling"):
        ks, strides = pair(op.pool_size), pair(op.strides if op.strides is not None else op.pool_size)
        pads = pads_for(op.padding, ks, strides)
        if name.startswith("MaxPooling"):
            b.max_pool(ks, strides, pads, label)
        else:
            if any(pads):
                raise _unsupported(op, "padding='same' with partial windows at the border (they average fewer "
                                   "entries, not a convolution) is not encoded; use padding='valid'")
            cc, _, _ = b.to_grid(label)
            k = np.zeros((ks[0], ks[1], cc, cc))
            k[:, :, np.arange(cc), np.arange(cc)] = 1.0 / (ks[0] * ks[1])
            b.open_conv(k, None, strides, pads, label)
    else:  # GlobalAveragePooling
        if getattr(op, "keepdims", False):
            raise _unsupported(op, "keepdims=True is not encoded")
        cc, gh, gw = b.to_grid(label)
        k = np.zeros((gh, gw, cc, cc))
        k[:, :, np.arange(cc), np.arange(cc)] = 1.0 / (gh * gw)
        b.open_conv(k, None, (1, 1), (0, 0, 0, 0), label)
        b.grid = None  # C values: Keras's (C,) order
        b.shape = (cc,)
        b.keras_first = b.one_d = False


def from_keras(model, name: str | None = None) -> Network:
    """Convert a Keras 3 model into a :class:`~reluverify.Network`.

    ``model`` is a ``keras.Sequential``, a functional ``keras.Model`` that is a single chain of
    layers, or a path to a ``.keras``/``.h5`` file (loaded with ``keras.models.load_model``).
    ``name`` overrides the network name (default: the model's name).

    Supported layers: Dense (ReLU/linear activation), ReLU, Activation('relu'|'linear'), Flatten,
    Reshape, Rescaling, Normalization and BatchNormalization (folded into the neighbouring Dense or
    convolution), Conv1D/Conv2D, MaxPooling1D/2D, AveragePooling1D/2D, ZeroPadding1D/2D,
    GlobalAveragePooling1D/2D (channels-last or channels-first), Dropout-like layers (skipped),
    and a final softmax (dropped, recorded in ``notes``).
    Anything else raises :class:`~reluverify.errors.UnsupportedLayerError` naming the layer;
    a missing or unreadable file raises :class:`~reluverify.errors.ModelFileError`.
    """
    keras = _import_keras()
    if isinstance(model, (str, bytes, os.PathLike)):
        model = _load(keras, os.fsdecode(model))
    if not isinstance(model, keras.Model):
        raise NetworkError(
            f"from_keras expects a keras.Model or a path to a .keras/.h5 file, got "
            f"{type(model).__module__}.{type(model).__name__}; tf_keras (Keras 2) models must be "
            "saved and re-loaded with Keras 3"
        )
    _readable_kind(keras, model)
    input_shape = _input_shape(model)
    ops = _chain(keras, model)
    builder = _convert(keras, ops, input_shape)
    layers = builder.finish()
    if len(builder.shape) != 1:
        builder.notes.append(f"the model's output of shape {builder.shape} is flattened row-major")
    return Network(
        tuple(layers),
        input_shape=input_shape,
        name=str(name if name is not None else model.name),
        notes=tuple(builder.notes),
    )
