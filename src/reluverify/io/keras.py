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
from ..model.layers import Dense

__all__ = ["from_keras"]

SUPPORTED_LAYERS = (
    "InputLayer; Dense (activation 'relu', 'linear' or None; 'softmax' only on the last layer); "
    "ReLU (plain max(x, 0): max_value=None, negative_slope=0, threshold=0); "
    "Activation('relu' | 'linear', or 'softmax' as the last layer); Softmax (last layer only); "
    "Flatten; Reshape; Rescaling; Normalization; BatchNormalization (inference mode); "
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

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    # ---- composing affine maps into the open one
    def elementwise(self, scale: np.ndarray, shift: np.ndarray, label: str) -> None:
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
        if self.W is None:
            self.W, self.b = np.eye(self.size)[index], np.zeros(self.size)
        else:
            self.W, self.b = self.W[index], self.b[index]

    def dense_map(self, weight: np.ndarray, bias: np.ndarray, name: str) -> None:
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

    # ---- activations / closing
    def close(self, activation: str) -> None:
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
        if self.W is None:
            if self.layers and self.layers[-1].nonnegative:  # relu(x) = x on a ReLU's output
                self.notes.append(f"skipped {label}: it follows another ReLU (relu(relu(x)) = relu(x))")
                return
            self.notes.append(
                f"inserted an identity layer with ReLU activation for {label}, which acts directly "
                "on the network input"
            )
        self.close("relu")

    def finish(self) -> list:
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
            if getattr(op, "data_format", "channels_last") == "channels_first" and len(b.shape) > 1:
                r = len(b.shape)
                index = np.arange(b.size).reshape(b.shape).transpose(*range(1, r), 0).reshape(-1)
                b.permute(index)
                b.notes.append(f"channels-first {_describe(op)} became a permutation of the inputs")
            b.shape = (b.size,)
        elif _exact_type(op, L.Reshape):
            try:
                new_shape = np.empty(b.size, dtype=np.int8).reshape(tuple(op.target_shape)).shape
            except ValueError:
                raise _unsupported(op, f"cannot reshape {b.shape} to {tuple(op.target_shape)}") from None
            b.shape = tuple(int(d) for d in new_shape)  # row-major: the flat vector is unchanged
        elif _exact_type(op, L.Rescaling):
            scale = np.asarray(_to_numpy(op.scale), dtype=np.float64)
            if scale.ndim > 0 and keras.config.image_data_format() == "channels_first":
                scale = scale.reshape(scale.shape + (1,) * (3 - scale.ndim))
            s = _broadcast(scale, full, op, "scale")
            t = _broadcast(op.offset, full, op, "offset")
            b.elementwise(s, t, _describe(op))
        elif _exact_type(op, L.Normalization):
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
            shift = beta - mean * scale
            s = _broadcast(scale.reshape(pshape), full, op, "scale")
            t = _broadcast(shift.reshape(pshape), full, op, "shift")
            b.elementwise(s, t, _describe(op))
        else:
            from_keras_layer = isinstance(op, keras.layers.Layer)
            if from_keras_layer and any(w in type(op).__name__ for w in ("Conv", "Pooling", "Padding")):
                raise _unsupported(
                    op,
                    "the Keras importer does not read convolution, pooling or padding layers yet; export "
                    "the model to ONNX (e.g. with tf2onnx) and use reluverify.from_onnx, which does",
                )
            raise _unsupported(
                op,
                "the Keras importer handles only chains of affine layers and ReLUs, not this layer class"
                if from_keras_layer
                else "it is a raw keras operation inside a functional model, not a supported layer",
            )
    return b


def from_keras(model, name: str | None = None) -> Network:
    """Convert a Keras 3 model into a :class:`~reluverify.Network`.

    ``model`` is a ``keras.Sequential``, a functional ``keras.Model`` that is a single chain of
    layers, or a path to a ``.keras``/``.h5`` file (loaded with ``keras.models.load_model``).
    ``name`` overrides the network name (default: the model's name).

    Supported layers: Dense (ReLU/linear activation), ReLU, Activation('relu'|'linear'), Flatten,
    Reshape, Rescaling, Normalization and BatchNormalization (folded into the neighbouring Dense),
    Dropout-like layers (skipped), and a final softmax (dropped, recorded in ``notes``).
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
