"""Import ONNX models of fully connected ReLU networks as a :class:`~reluverify.Network`.

Public functions: :func:`from_onnx` (ONNX graph -> ``Network``) and :func:`onnxruntime_forward`
(run the original model with onnxruntime, used to re-check counterexamples). The ``onnx`` and
``onnxruntime`` packages are imported inside the functions, never at module import time.

How a graph is translated
-------------------------
The graph must be a single chain from its one graph input to its one graph output. The nodes are
visited in their (topological) order while the *current tensor* -- the one tensor computed from
the network input -- and its full shape are tracked. The batch dimension is evaluated at size 1,
so the imported network is exactly the model applied to one input, flattened row-major.

* Nodes whose inputs are all constants (initializers, ``Constant`` nodes, ``Shape`` of the
  current tensor, whose value is known) are evaluated once with ``onnx.reference`` and become
  constants themselves: this covers the ``Shape -> Gather -> Concat -> Reshape`` pattern of
  PyTorch exports.
* Every other node must read the current tensor exactly once, plus constants. The affine ones
  (``Gemm``, ``MatMul``, ``Add``/``Sub``/``Mul``/``Div`` with a constant, ``BatchNormalization``
  in inference mode, ``Transpose``) are composed, in float64, into one *open* affine map
  ``x -> W x + b`` acting on the flattened input of the layer being built. ``Transpose`` and
  broadcasting become row gathers of ``W`` (a permutation/selection matrix).
* Shape-only nodes (``Flatten``, ``Reshape``, ``Squeeze``, ``Unsqueeze``, ``Identity``,
  ``Dropout`` in inference mode, ``Cast`` to float) just relabel the flattened vector.
* ``Relu`` closes the open map as a ``"relu"`` layer; the map left open at the end becomes the
  final ``"linear"`` layer. A graph that ends with ``Relu`` gives a last layer with activation
  ``"relu"``. A ``Softmax`` producing the graph output is dropped (reluverify reasons about
  logits) and recorded in ``Network.notes``.

Elementwise maps before the first ``Gemm``/``MatMul`` (input normalisation such as ACAS Xu's
``Sub``) are folded into it and recorded in ``notes``, as are two weight maps composed into one
layer because no ``Relu`` lies between them, and corner cases that need an extra layer.

``Conv`` (2-D, or 1-D as a 2-D convolution of height 1; group 1, dilation 1, explicit ``pads`` or
``auto_pad``) opens a convolution instead of a dense map: a ``Relu`` closes it as a
:class:`~reluverify.model.layers.Conv2D` layer (channels-first, the ONNX order). An elementwise map
before it with one scale per channel (input normalisation, or ``mean``/``std`` given to
:func:`from_onnx`) is folded into it (the shift becomes a per-entry bias, exact with zero
padding); a ``BatchNormalization`` or bias ``Add`` after it is folded into its kernel and bias.
Other affine ops between a convolution and the next ``Relu`` unroll it into a dense map (noted).
A zero ``Pad`` right before a ``Conv`` becomes its padding (elsewhere, a gather with zero rows).
``AveragePool`` and ``GlobalAveragePool`` are convolutions with a ``1 / (kh kw)`` kernel on each
channel (refused where border windows would divide by fewer entries, or with ``ceil_mode``).
``MaxPool`` (2-D, or 1-D as height 1; explicit ``pads`` or ``auto_pad``; ``ceil_mode`` 0, dilation 1,
no ``Indices`` output) and ``GlobalMaxPool`` become a :class:`~reluverify.model.layers.MaxPool2D`
layer (an open affine map before it is closed as a linear layer). A ``Relu`` right after a pooling
whose input is a linear layer's output is moved before the pooling (``relu(max z) = max relu(z)``),
and dropped after a pooling of a ReLU's outputs (noted).

Anything else -- other reductions, other activations, a hidden ``Softmax``, branches and skip connections
(a tensor read by two nodes), several graph inputs or outputs -- raises
:class:`~reluverify.errors.UnsupportedLayerError` naming the node.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import zlib
from collections import OrderedDict, defaultdict

import numpy as np

from ..errors import (
    InputError,
    MissingDependencyError,
    ModelFileError,
    NetworkError,
    ReluVerifyError,
    UnsupportedLayerError,
)
from ..model import Network
from ..model.layers import MaxPool2D
from .chain import AffineChain

__all__ = ["from_onnx", "onnxruntime_forward"]

SUPPORTED_OPS = (
    "Gemm (any alpha/beta/transA/transB, optional C); MatMul with a constant operand; "
    "Add/Sub/Mul/Div with a constant (ONNX broadcasting); BatchNormalization (inference mode); "
    "Conv (1-D/2-D, group 1, dilation 1, explicit pads or auto_pad); Pad (constant 0); AveragePool (ceil_mode 0, no "
    "padding or count_include_pad=1) and GlobalAveragePool (as convolutions); MaxPool (1-D/2-D, ceil_mode 0, "
    "dilation 1) and GlobalMaxPool; "
    "Relu; Flatten; Reshape; Transpose; Squeeze; Unsqueeze; Identity; Dropout (inference mode); "
    "Cast to float/double; Softmax as the very last node (dropped); Constant nodes, initializers "
    "and any node computed from constants only (e.g. Shape/Gather/Concat feeding a Reshape)"
)
_GENERAL_HINT = (
    "reluverify supports Dense/Gemm/MatMul+Add/Relu stacks and Conv layers: a single chain from one "
    "input to one output, with no branches"
)
_NONLINEAR = {
    "Sigmoid", "Tanh", "LeakyRelu", "PRelu", "Elu", "Selu", "Celu", "Gelu", "Softplus", "Softsign",
    "HardSigmoid", "HardSwish", "Mish", "Exp", "Log", "Abs", "Sqrt", "Pow", "Clip", "Max", "Min",
    "ThresholdedRelu", "Sign", "Sin", "Cos", "Erf", "Reciprocal", "Round", "Floor", "Ceil",
}
_POOLING = {
    "MaxPool", "AveragePool", "GlobalMaxPool", "GlobalAveragePool", "LpPool", "GlobalLpPool",
    "MaxUnpool", "MaxRoiPool", "ReduceMax", "ReduceMin", "ReduceMean", "ReduceSum", "ArgMax",
    "ArgMin",
}
_FLOAT_CASTS = {1, 11}  # TensorProto.FLOAT, TensorProto.DOUBLE
_GZIP_MAGIC = b"\x1f\x8b"


# --------------------------------------------------------------------------- imports / loading
def _import_onnx():
    try:
        import onnx  # noqa: PLC0415  (deliberately lazy)
        import onnx.numpy_helper  # noqa: PLC0415, F401
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingDependencyError(
            "reluverify.io.from_onnx needs the onnx package: `pip install 'reluverify[onnx]'`; "
            f"importing it failed: {exc}"
        ) from exc
    return onnx


def _import_onnxruntime():
    try:
        import onnxruntime  # noqa: PLC0415  (deliberately lazy)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingDependencyError(
            "reluverify.io.onnxruntime_forward needs onnxruntime: `pip install 'reluverify[onnx]'`; "
            f"importing it failed: {exc}"
        ) from exc
    return onnxruntime


def _read_model_bytes(path: str) -> bytes:
    """The serialized model stored at ``path``, gunzipped when it is a ``.gz`` file."""
    if not os.path.exists(path):
        raise ModelFileError(f"ONNX model file {path!r} does not exist; check the path")
    if os.path.isdir(path):
        raise ModelFileError(f"{path!r} is a directory, not an .onnx or .onnx.gz file")
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise ModelFileError(f"could not read ONNX model file {path!r}: {exc}") from exc
    if path.lower().endswith(".gz") or data[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise ModelFileError(
                f"ONNX model file {path!r} is not a valid gzip file ({type(exc).__name__}: {exc}); "
                "it may be truncated -- download it again or decompress it yourself"
            ) from exc
    return data


def _parse_model(onnx, data: bytes, path: str):
    """Parse serialized bytes into a ModelProto, with ModelFileError for anything that is not one."""
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception as exc:  # google.protobuf.message.DecodeError and friends
        raise ModelFileError(
            f"{path!r} is not a readable ONNX model ({type(exc).__name__}: {exc}); from_onnx reads "
            ".onnx files (optionally gzipped) written by torch.onnx.export, tf2onnx, onnx.save ..."
        ) from exc
    if not model.HasField("graph") or len(model.graph.node) == 0 or len(model.graph.output) == 0:
        raise ModelFileError(
            f"{path!r} does not hold an ONNX model (no graph, nodes or outputs were found after "
            "parsing it); check that it is an .onnx file and not truncated"
        )
    return model


def _load(onnx, path: str):
    model = _parse_model(onnx, _read_model_bytes(path), path)
    tensors = list(model.graph.initializer)
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in tensors):
        from onnx.external_data_helper import load_external_data_for_model  # noqa: PLC0415

        try:
            load_external_data_for_model(model, os.path.dirname(os.path.abspath(path)))
        except Exception as exc:
            raise ModelFileError(
                f"could not load the external data (weights stored in separate files) of ONNX "
                f"model {path!r}: {type(exc).__name__}: {exc}"
            ) from exc
    return model


# --------------------------------------------------------------------------- descriptions/errors
def _describe(idx: int, node) -> str:
    if node.name:
        return f"{node.op_type} node {node.name!r} (#{idx})"
    return f"{node.op_type} node #{idx} (unnamed)"


def _unsupported(idx: int, node, reason: str, todo: str = "") -> UnsupportedLayerError:
    todo = f" {todo.rstrip('.')}." if todo else ""
    return UnsupportedLayerError(
        f"ONNX {_describe(idx, node)} is not supported: {reason}.{todo} {_GENERAL_HINT}. "
        f"Supported ONNX ops: {SUPPORTED_OPS}."
    )


def _reason_for(op: str) -> tuple:
    """(reason, what to do) for an op type that has no translation."""
    if op in ("ConvTranspose", "ConvInteger", "QLinearConv", "DeformConv"):
        return (
            f"{op} is not encoded (only float Conv with group 1 and dilation 1)",
            "Export the model with plain Conv nodes",
        )
    if op in _POOLING:
        return (
            f"{op} is not encoded (MaxPool, GlobalMaxPool, AveragePool and GlobalAveragePool are)",
            "Use max or average pooling, or strided convolutions, instead",
        )
    if op in _NONLINEAR:
        return (
            f"{op} is a non-linear operation; only Relu can be encoded exactly as a MILP",
            "Retrain the model with ReLU activations",
        )
    if op == "Softmax":
        return (
            "Softmax is only accepted as the very last node of the graph (where it is dropped to "
            "reason about logits), not in a hidden position",
            "Remove it or move it to the end of the model",
        )
    if op == "LogSoftmax":
        return (
            "LogSoftmax is not encoded (not even at the end: unlike Softmax it is not dropped)",
            "Remove it from the exported model; it does not change the predicted class",
        )
    return ("reluverify has no exact encoding of this op", "Re-export the model without it")


def _attrs(onnx, node) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


# --------------------------------------------------------------------------- batched matmuls
def _pad_stack(X: np.ndarray, rank: int) -> np.ndarray:
    """Insert unit axes after the stack axis so that ``X[i]`` has at least ``rank`` dims."""
    extra = rank - (X.ndim - 1)
    if extra <= 0:
        return X
    return X.reshape((X.shape[0],) + (1,) * extra + X.shape[1:])


def _matmul_var_left(X: np.ndarray, B: np.ndarray) -> np.ndarray:
    """``x @ B`` (numpy/ONNX MatMul semantics) for every tensor ``x`` of the stack ``X``."""
    row = X.ndim == 2  # each x is a vector: promote to (1, K)
    col = B.ndim == 1
    if row:
        X = X[:, None, :]
    if col:
        B = B[:, None]
    Y = np.matmul(_pad_stack(X, B.ndim), B)
    if row:
        Y = np.take(Y, 0, axis=-2)
    if col:
        Y = Y[..., 0]
    return Y


def _matmul_var_right(A: np.ndarray, X: np.ndarray) -> np.ndarray:
    """``A @ x`` (numpy/ONNX MatMul semantics) for every tensor ``x`` of the stack ``X``."""
    col = X.ndim == 2  # each x is a vector: promote to (K, 1)
    row = A.ndim == 1
    if col:
        X = X[..., None]
    if row:
        A = A[None, :]
    Y = np.matmul(A, _pad_stack(X, A.ndim))
    if row:
        Y = np.take(Y, 0, axis=-2)
    if col:
        Y = Y[..., 0]
    return Y


def _out_shape(fn, shape: tuple) -> tuple:
    return tuple(int(d) for d in fn(np.zeros((1,) + tuple(shape))).shape[1:])


# --------------------------------------------------------------------------- constants
def _constant_node_value(onnx, node) -> np.ndarray | None:
    """Value of a ``Constant`` node, or None when it uses a form that must be folded generically."""
    if len(node.attribute) != 1:
        return None
    attr = node.attribute[0]
    value = onnx.helper.get_attribute_value(attr)
    if attr.name == "value":
        return onnx.numpy_helper.to_array(value)
    if attr.name in ("value_float", "value_floats"):
        return np.asarray(value, dtype=np.float32)
    if attr.name in ("value_int", "value_ints"):
        return np.asarray(value, dtype=np.int64)
    return None


def _fold(onnx, node, values: dict, opset: int) -> list:
    """Evaluate a node whose inputs are all known with the onnx reference implementation."""
    from onnx.reference import ReferenceEvaluator  # noqa: PLC0415

    helper = onnx.helper
    feeds = {name: np.asarray(v) for name, v in values.items()}
    inputs = [
        helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
        for name, v in feeds.items()
    ]
    outputs = [helper.make_empty_tensor_value_info(o) for o in node.output if o]
    graph = helper.make_graph([node], "fold", inputs, outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(node.domain or "", opset)])
    return ReferenceEvaluator(model).run(None, feeds)


# --------------------------------------------------------------------------- conversion
def _graph_input_shape(vi) -> tuple:
    """(full shape with batch 1, input_shape without batch, has_batch) of a graph input."""
    tt = vi.type.tensor_type
    if not vi.type.HasField("tensor_type") or not tt.HasField("shape"):
        raise NetworkError(
            f"the ONNX graph input {vi.name!r} has no shape information; re-export the model with "
            "a known input shape"
        )
    dims = [int(d.dim_value) if d.HasField("dim_value") and d.dim_value > 0 else None for d in tt.shape.dim]
    has_batch = len(dims) >= 2 and dims[0] in (None, 1)
    if has_batch:
        dims[0] = 1
    if any(d is None for d in dims):
        raise NetworkError(
            f"the ONNX graph input {vi.name!r} has shape "
            f"{[d.dim_param or d.dim_value for d in tt.shape.dim]} with unknown dimensions besides "
            "the leading batch dimension; re-export the model with a fully known input shape"
        )
    full = tuple(dims)
    return full, (full[1:] if has_batch else full), has_batch


def _convert(onnx, model, name: str, mean=None, std=None) -> Network:
    graph = model.graph
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
    try:
        consts = {t.name: onnx.numpy_helper.to_array(t) for t in graph.initializer}
    except Exception as exc:
        raise ModelFileError(
            f"could not read the initializers (weights) of ONNX model {name!r}: "
            f"{type(exc).__name__}: {exc}"
        ) from exc

    nodes = list(graph.node)
    producer = {out: (i, n) for i, n in enumerate(nodes) for out in n.output if out}
    consumers = defaultdict(list)
    for i, n in enumerate(nodes):
        for inp in dict.fromkeys(x for x in n.input if x):
            consumers[inp].append((i, n))

    def who_makes(tensor: str) -> str:
        if tensor in producer:
            return _describe(*producer[tensor])
        return "a graph input"

    inputs = [vi for vi in graph.input if vi.name not in consts]
    outputs = list(graph.output)
    if len(outputs) != 1:
        listed = ", ".join(f"{o.name!r} (from {who_makes(o.name)})" for o in outputs)
        raise UnsupportedLayerError(
            f"the ONNX graph has {len(outputs)} outputs: {listed}; {_GENERAL_HINT}. Export a model "
            "with a single output tensor"
        )
    if len(inputs) != 1:
        listed = ", ".join(
            f"{vi.name!r} (read by {', '.join(_describe(*c) for c in consumers[vi.name]) or 'no node'})"
            for vi in inputs
        )
        raise UnsupportedLayerError(
            f"the ONNX graph has {len(inputs)} inputs that are not initializers: {listed or 'none'}; "
            f"{_GENERAL_HINT}. Export a model with a single input tensor"
        )
    full_shape, input_shape, has_batch = _graph_input_shape(inputs[0])
    out_name = outputs[0].name
    chain = AffineChain(full_shape)
    if mean is not None or std is not None:
        chain.normalise_input(input_shape, mean, std, "from_onnx")
    if not has_batch:
        chain.notes.append(
            f"the graph input {inputs[0].name!r} of shape {full_shape} has no batch dimension; the "
            "network takes the whole tensor"
        )
    cur = inputs[0].name

    def const_of(idx, node, k, what, required=True):
        tensor = node.input[k] if k < len(node.input) else ""
        if not tensor:
            if required:
                raise _unsupported(idx, node, f"its {what} input is missing")
            return None
        return np.asarray(consts[tensor])

    for idx, node in enumerate(nodes):
        op = node.op_type
        ins = list(node.input)
        if node.domain not in ("", "ai.onnx"):
            raise _unsupported(idx, node, f"it belongs to the custom op domain {node.domain!r}")
        if op.startswith("Random") or op in ("Multinomial", "Bernoulli"):
            raise _unsupported(idx, node, "it draws random numbers", "Remove the random op from the model")

        # ---- constants
        if op == "Constant":
            value = _constant_node_value(onnx, node)
            if value is not None:
                consts[node.output[0]] = value
                continue
        if op == "Shape" and ins and ins[0] == cur:
            a = _attrs(onnx, node)
            r = len(chain.shape)
            start, end = int(a.get("start", 0)), int(a.get("end", r))
            consts[node.output[0]] = np.array(chain.shape, dtype=np.int64)[slice(start, end)]
            continue
        var_pos = [k for k, t in enumerate(ins) if t == cur]
        unknown = [t for t in ins if t and t != cur and t not in consts]
        if not var_pos and not unknown:
            try:
                values = _fold(onnx, node, {t: consts[t] for t in dict.fromkeys(t for t in ins if t)}, opset)
            except Exception as exc:
                raise _unsupported(
                    idx, node, f"its inputs are constants, but evaluating it failed ({type(exc).__name__}: {exc})"
                ) from exc
            for out, value in zip([o for o in node.output if o], values):
                consts[out] = np.asarray(value)
            continue

        # ---- branches / non-chain structure
        if unknown:
            others = ", ".join(f"{t!r} (from {who_makes(t)})" for t in dict.fromkeys(unknown))
            if var_pos:
                reason = (
                    f"it combines the tensor {cur!r} with {others}, which also depend(s) on the "
                    "network input: the graph branches (e.g. a skip connection or an Add/Mul of two "
                    "non-constant tensors)"
                )
            else:
                reason = (
                    f"it reads {others}, which is not the output of the chain of nodes processed "
                    "so far: the graph branches"
                )
            raise _unsupported(idx, node, reason, "Export a plain feed-forward chain")
        users = [c for c in consumers[cur] if c[1].op_type != "Shape"]
        if cur == out_name or len(users) > 1:
            listed = ", ".join(_describe(*c) for c in users)
            extra = " and is the graph output" if cur == out_name else ""
            raise _unsupported(
                idx,
                node,
                f"the graph branches at the tensor {cur!r} it reads (from {who_makes(cur)}), which is "
                f"read by {len(users)} nodes ({listed}){extra}; branches, skip connections and "
                "outputs used twice are not encoded",
                "Export a plain feed-forward chain",
            )
        if len(var_pos) > 1:
            raise _unsupported(idx, node, f"it reads the non-constant tensor {cur!r} more than once")

        try:
            _apply(onnx, chain, idx, node, var_pos[0], const_of, out_name)
        except ReluVerifyError:
            raise
        except (ValueError, IndexError) as exc:
            raise NetworkError(
                f"ONNX {_describe(idx, node)} does not fit its input of shape {chain.shape} "
                f"(batch dimension at 1): {exc}; the ONNX graph looks inconsistent"
            ) from exc
        cur = node.output[0]

    if cur != out_name:
        where = "is a constant" if out_name in consts else f"comes from {who_makes(out_name)}"
        raise UnsupportedLayerError(
            f"the ONNX graph output {out_name!r} {where}, but the chain of nodes starting at the "
            f"graph input ends at tensor {cur!r}; {_GENERAL_HINT}"
        )
    layers = chain.finish()
    return Network(tuple(layers), input_shape=input_shape, name=name, notes=tuple(chain.notes))


def _apply(onnx, chain: AffineChain, idx: int, node, pos: int, const_of, out_name: str) -> None:
    """Apply one node that reads the current tensor (at input position ``pos``) to ``chain``."""
    op = node.op_type
    a = _attrs(onnx, node)
    label = _describe(idx, node)
    shape = chain.shape
    n = chain.size

    if op == "Relu":
        chain.relu(label)
    elif op in ("Identity",):
        pass
    elif op == "Dropout":
        training = const_of(idx, node, 2, "training_mode", required=False)
        if training is not None and bool(np.asarray(training).reshape(-1)[0]):
            raise _unsupported(idx, node, "it runs in training mode (training_mode=True)")
        if any(o for o in node.output[1:]):
            raise _unsupported(idx, node, "its mask output is used")
        chain.notes.append(f"skipped {label}: it is the identity at inference")
    elif op == "Cast":
        if int(a.get("to", 0)) not in _FLOAT_CASTS:
            raise _unsupported(idx, node, f"it casts to ONNX type {a.get('to')}; only float/double casts are the identity")
    elif op == "Flatten":
        r = len(shape)
        axis = int(a.get("axis", 1))
        axis = axis + r if axis < 0 else axis
        if not 0 <= axis <= r:
            raise _unsupported(idx, node, f"axis={a.get('axis')} is out of range for a tensor of rank {r}")
        chain.shape = (int(np.prod(shape[:axis], dtype=np.int64)), int(np.prod(shape[axis:], dtype=np.int64)))
    elif op == "Reshape":
        target = [int(v) for v in const_of(idx, node, 1, "shape").reshape(-1)]
        allowzero = int(a.get("allowzero", 0))
        new = []
        for i, d in enumerate(target):
            if d == 0 and not allowzero:
                if i >= len(shape):
                    raise _unsupported(idx, node, f"its target shape {target} copies a dimension its input {shape} lacks")
                d = shape[i]
            new.append(d)
        if new.count(-1) > 1:
            raise _unsupported(idx, node, f"its target shape {target} has more than one -1")
        if -1 in new:
            known = int(np.prod([d for d in new if d != -1], dtype=np.int64))
            if known <= 0 or n % known:
                raise _unsupported(idx, node, f"cannot reshape {shape} to {target}")
            new[new.index(-1)] = n // known
        if int(np.prod(new, dtype=np.int64)) != n or any(d < 0 for d in new):
            raise _unsupported(idx, node, f"cannot reshape a tensor of shape {shape} to {target}")
        chain.shape = tuple(new)
    elif op in ("Squeeze", "Unsqueeze"):
        axes = a.get("axes")
        if axes is None:
            given = const_of(idx, node, 1, "axes", required=False)
            axes = None if given is None else [int(v) for v in given.reshape(-1)]
        if op == "Squeeze":
            r = len(shape)
            if axes is None:
                axes = [i for i, d in enumerate(shape) if d == 1]
            axes = sorted({ax + r if ax < 0 else ax for ax in axes})
            if any(not 0 <= ax < r or shape[ax] != 1 for ax in axes):
                raise _unsupported(idx, node, f"it squeezes axes {axes} of a tensor of shape {shape}, not all of size 1")
            chain.shape = tuple(d for i, d in enumerate(shape) if i not in axes)
        else:
            if axes is None:
                raise _unsupported(idx, node, "it has no axes")
            r = len(shape) + len(axes)
            axes = sorted({ax + r if ax < 0 else ax for ax in axes})
            if len(axes) != len(set(axes)) or any(not 0 <= ax < r for ax in axes):
                raise _unsupported(idx, node, f"its axes {axes} are invalid for output rank {r}")
            rest = iter(shape)
            chain.shape = tuple(1 if i in axes else next(rest) for i in range(r))
    elif op == "Transpose":
        perm = a.get("perm")
        perm = list(range(len(shape)))[::-1] if perm is None else [int(p) for p in perm]
        if sorted(perm) != list(range(len(shape))):
            raise _unsupported(idx, node, f"perm={perm} is not a permutation of the {len(shape)} axes of its input")
        index = np.arange(n).reshape(shape).transpose(perm).reshape(-1)
        chain.gather(index, tuple(shape[p] for p in perm), label)
    elif op in ("Add", "Sub", "Mul", "Div"):
        if len(node.input) != 2:
            raise _unsupported(idx, node, f"it has {len(node.input)} inputs, expected 2")
        c = np.asarray(const_of(idx, node, 1 - pos, "constant"), dtype=np.float64)
        if int(a.get("broadcast", 0)) and "axis" in a and c.ndim < len(shape):  # opset < 7 broadcasting
            axis = int(a["axis"])
            c = c.reshape(c.shape + (1,) * (len(shape) - axis - c.ndim))
        out = tuple(np.broadcast_shapes(shape, c.shape))
        if out != shape:
            index = np.broadcast_to(np.arange(n).reshape(shape), out).reshape(-1)
            chain.gather(index, out, label)
        cf = np.broadcast_to(c, out).reshape(-1)
        if op == "Add":
            chain.scale_shift(None, cf, label)
        elif op == "Sub":
            chain.scale_shift(None, -cf, label) if pos == 0 else chain.scale_shift(-np.ones(cf.size), cf, label)
        elif op == "Mul":
            chain.scale_shift(cf, None, label)
        else:
            if pos == 1:
                raise _unsupported(idx, node, "it divides a constant by the network's tensor, which is not affine")
            if np.any(cf == 0):
                raise _unsupported(idx, node, "it divides by a constant that contains zeros")
            chain.scale_shift(1.0 / cf, None, label)
        chain.shape = out
    elif op == "BatchNormalization":
        if int(a.get("training_mode", 0)):
            raise _unsupported(idx, node, "it runs in training mode (training_mode=1)")
        if any(o for o in node.output[1:]):
            raise _unsupported(idx, node, "its running statistics outputs are used (training mode)")
        if pos != 0 or len(shape) < 2:
            raise _unsupported(idx, node, f"it normalises a tensor of shape {shape} (needs N x C x ...)")
        eps = float(a.get("epsilon", 1e-5))  # not a tolerance: the ONNX default
        gamma, beta, mean, var = (
            np.asarray(const_of(idx, node, k, w), dtype=np.float64).reshape(-1)
            for k, w in ((1, "scale"), (2, "bias"), (3, "mean"), (4, "var"))
        )
        pshape = (shape[1],) + (1,) * (len(shape) - 2)
        s = gamma / np.sqrt(var + eps)
        t = beta - mean * s
        chain.scale_shift(
            np.broadcast_to(s.reshape(pshape), shape).reshape(-1),
            np.broadcast_to(t.reshape(pshape), shape).reshape(-1),
            label,
        )
    elif op == "MatMul":
        if pos == 0:
            B = np.asarray(const_of(idx, node, 1, "second"), dtype=np.float64)
            fn = lambda X: _matmul_var_left(X, B)  # noqa: E731
        else:
            A = np.asarray(const_of(idx, node, 0, "first"), dtype=np.float64)
            fn = lambda X: _matmul_var_right(A, X)  # noqa: E731
        chain.linear(fn, None, _out_shape(fn, shape), label)
    elif op == "Gemm":
        if pos == 2:
            raise _unsupported(idx, node, "its C input (the bias) depends on the network input")
        if len(shape) != 2:
            raise _unsupported(idx, node, f"Gemm needs a 2-D input, got shape {shape}; add a Flatten before it")
        alpha, beta = float(a.get("alpha", 1.0)), float(a.get("beta", 1.0))
        trans_a, trans_b = int(a.get("transA", 0)), int(a.get("transB", 0))
        other = np.asarray(const_of(idx, node, 1 - pos, "A" if pos else "B"), dtype=np.float64)
        if other.ndim != 2:
            raise _unsupported(idx, node, f"its constant operand has shape {other.shape}, expected a matrix")
        if pos == 0:
            B = other.T if trans_b else other

            def fn(X):
                return alpha * np.matmul(np.swapaxes(X, 1, 2) if trans_a else X, B)
        else:
            A = other.T if trans_a else other

            def fn(X):
                return alpha * np.matmul(A, np.swapaxes(X, 1, 2) if trans_b else X)
        out = _out_shape(fn, shape)
        C = const_of(idx, node, 2, "C", required=False)
        shift = None
        if C is not None and beta != 0.0:
            shift = beta * np.broadcast_to(np.asarray(C, dtype=np.float64), out)
        chain.linear(fn, shift, out, label)
    elif op == "Conv":
        _conv(chain, idx, node, a, pos, const_of, label)
    elif op == "Pad":
        mode = a.get("mode", b"constant")
        mode = mode.decode() if isinstance(mode, bytes) else str(mode)
        if mode != "constant":
            raise _unsupported(idx, node, f"mode={mode!r} padding is not encoded (only constant zero padding)")
        if "pads" in a:  # opset < 11
            pads, value = [int(p) for p in a["pads"]], float(a.get("value", 0.0))
        else:
            pads = [int(p) for p in const_of(idx, node, 1, "pads").reshape(-1)]
            given = const_of(idx, node, 2, "constant_value", required=False)
            value = 0.0 if given is None or np.size(given) == 0 else float(np.asarray(given).reshape(-1)[0])
            axes = const_of(idx, node, 3, "axes", required=False)
            if axes is not None:  # opset 18: pads for the listed axes only
                r = len(shape)
                axes = [int(v) + r if int(v) < 0 else int(v) for v in np.asarray(axes).reshape(-1)]
                full = [0] * (2 * r)
                for k, ax in enumerate(axes):
                    full[ax], full[r + ax] = pads[k], pads[len(axes) + k]
                pads = full
        if value != 0.0:
            raise _unsupported(idx, node, f"it pads with {value}; only zero padding is encoded")
        if len(pads) != 2 * len(shape) or min(pads) < 0:
            raise _unsupported(idx, node, f"pads={pads} are invalid for a tensor of shape {shape} "
                               "(2 non-negative values per axis; cropping is not encoded)")
        chain.zero_pad(pads, label)
    elif op in ("AveragePool", "GlobalAveragePool"):
        _average_pool(chain, idx, node, a, label)
    elif op in ("MaxPool", "GlobalMaxPool"):
        _max_pool(chain, idx, node, a, label)
    elif op == "Softmax" and node.output[0] == out_name:
        chain.notes.append(f"dropped the final {label}: reasoning about logits")
    else:
        reason, todo = _reason_for(op)
        raise _unsupported(idx, node, reason, todo)


def _conv(chain: AffineChain, idx: int, node, a: dict, pos: int, const_of, label: str) -> None:
    """A ``Conv`` node (2-D, or 1-D as a 2-D convolution of height 1): groups and dilations 1,
    explicit pads or ``auto_pad``; weights and bias constant."""
    shape = chain.shape
    if pos != 0:
        raise _unsupported(idx, node, "its weights depend on the network input")
    if len(shape) not in (3, 4) or shape[0] != 1:
        raise _unsupported(idx, node, f"it convolves a tensor of shape {shape}; only N x C x L (1-D) and "
                           "N x C x H x W (2-D) convolutions with batch 1 are encoded")
    kernel = np.asarray(const_of(idx, node, 1, "weight"), dtype=np.float64)
    bias = const_of(idx, node, 2, "bias", required=False)
    dims = len(shape) - 2
    group = int(a.get("group", 1))
    if group != 1:
        raise _unsupported(idx, node, f"group={group} (a grouped or depthwise convolution) is not encoded",
                           "Export the model with group=1 convolutions")
    dil = [int(d) for d in a.get("dilations", [1] * dims)]
    if any(d != 1 for d in dil):
        raise _unsupported(idx, node, f"dilations={dil} are not encoded (only dilation 1)")
    if kernel.ndim != dims + 2 or kernel.shape[1] != shape[1]:
        raise _unsupported(idx, node, f"its weight of shape {kernel.shape} does not fit an input of shape {shape}")
    ks = [int(k) for k in a.get("kernel_shape", kernel.shape[2:])]
    if list(kernel.shape[2:]) != ks:
        raise _unsupported(idx, node, f"kernel_shape={ks} differs from its weight's shape {kernel.shape}")
    strides = [int(v) for v in a.get("strides", [1] * dims)]
    if len(strides) != dims or min(strides) <= 0:
        raise _unsupported(idx, node, f"strides={strides} are invalid for a {dims}-D convolution")
    size = list(shape[2:])
    pads = _spatial_pads(idx, node, a, size, ks, strides)
    if bias is not None:
        bias = np.asarray(bias, dtype=np.float64).reshape(-1)
        if bias.size != kernel.shape[0]:
            raise _unsupported(idx, node, f"its bias has {bias.size} values for {kernel.shape[0]} output channels")
    if dims == 1:  # (C, L) as (C, 1, L)
        kernel = kernel[:, :, None, :]
        size, ks, strides, pads = [1] + size, [1] + ks, [1] + strides, [0, pads[0], 0, pads[1]]
    out = [(n_ + pb + pe - k_) // s_ + 1 for n_, k_, s_, pb, pe in zip(size, ks, strides, pads[:2], pads[2:])]
    if min(out) <= 0:
        raise _unsupported(idx, node, f"its kernel {ks} does not fit the input {shape} padded by {pads}")
    chain.shape = (1, shape[1], size[0], size[1])
    chain.convolution(kernel, bias, tuple(strides), tuple(pads), (1, kernel.shape[0], out[0], out[1]), label)
    if dims == 1:
        chain.shape = (1, kernel.shape[0], out[1])


def _spatial_pads(idx, node, a: dict, size: list, ks: list, strides: list) -> list:
    """Explicit pads ``[begin..., end...]`` from ``pads`` or ``auto_pad`` (ONNX's rules)."""
    dims = len(size)
    auto = a.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else str(auto)
    if auto in ("NOTSET", ""):
        pads = [int(p) for p in a.get("pads", [0] * (2 * dims))]
        if len(pads) != 2 * dims or min(pads) < 0:
            raise _unsupported(idx, node, f"pads={pads} are invalid (need {2 * dims} non-negative values)")
        return pads
    if auto == "VALID":
        return [0] * (2 * dims)
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        begin, end = [], []
        for n_, k_, s_ in zip(size, ks, strides):
            total = max((-(-n_ // s_) - 1) * s_ + k_ - n_, 0)
            small = total // 2
            begin.append(small if auto == "SAME_UPPER" else total - small)
            end.append(total - begin[-1])
        return begin + end
    raise _unsupported(idx, node, f"auto_pad={auto!r} is not an ONNX padding mode")


def _average_pool(chain: AffineChain, idx: int, node, a: dict, label: str) -> None:
    """``AveragePool`` / ``GlobalAveragePool`` on N x C x H x W: a convolution whose kernel is
    ``1 / (kh kw)`` on its own channel (exact where every window's divisor is ``kh kw``)."""
    shape = chain.shape
    if len(shape) != 4 or shape[0] != 1:
        raise _unsupported(idx, node, f"it pools a tensor of shape {shape}; only N x C x H x W with batch 1 is encoded")
    c, size = shape[1], list(shape[2:])
    if node.op_type == "GlobalAveragePool":
        ks, strides, pads = size, [1, 1], [0, 0, 0, 0]
    else:
        if int(a.get("ceil_mode", 0)):
            raise _unsupported(idx, node, "ceil_mode=1 (partial windows at the border) is not encoded",
                               "Export with ceil_mode=0")
        dil = [int(d) for d in a.get("dilations", [1, 1])]
        if any(d != 1 for d in dil):
            raise _unsupported(idx, node, f"dilations={dil} are not encoded (only dilation 1)")
        ks = [int(k) for k in a.get("kernel_shape", [])]
        if len(ks) != 2 or min(ks) <= 0:
            raise _unsupported(idx, node, f"kernel_shape={ks} is invalid for a 2-D pool")
        strides = [int(v) for v in a.get("strides", [1, 1])]
        if len(strides) != 2 or min(strides) <= 0:
            raise _unsupported(idx, node, f"strides={strides} are invalid")
        pads = _spatial_pads(idx, node, a, size, ks, strides)
        if any(pads) and not int(a.get("count_include_pad", 0)):
            raise _unsupported(idx, node, f"it pads by {pads} with count_include_pad=0: border windows divide by "
                               "fewer entries, which is not a convolution", "Export without padding, or with "
                               "count_include_pad=1")
    out = [(n_ + pb + pe - k_) // s_ + 1 for n_, k_, s_, pb, pe in zip(size, ks, strides, pads[:2], pads[2:])]
    if min(out) <= 0:
        raise _unsupported(idx, node, f"its window {ks} does not fit the input {shape} padded by {pads}")
    chain.average_pool(tuple(ks), tuple(strides), tuple(pads), (1, c, out[0], out[1]), label)


def _max_pool(chain: AffineChain, idx: int, node, a: dict, label: str) -> None:
    """``MaxPool`` / ``GlobalMaxPool`` on N x C x H x W (or N x C x L, as height 1): a
    :class:`~reluverify.model.layers.MaxPool2D` (padding never wins, as in ONNX)."""
    shape = chain.shape
    if len(shape) not in (3, 4) or shape[0] != 1:
        raise _unsupported(idx, node, f"it pools a tensor of shape {shape}; only N x C x L and N x C x H x W with "
                           "batch 1 are encoded")
    if any(o for o in node.output[1:]):
        raise _unsupported(idx, node, "its Indices output is used", "Export the model without max-unpooling")
    dims = len(shape) - 2
    size = list(shape[2:])
    if node.op_type == "GlobalMaxPool":
        ks, strides, pads = size, [1] * dims, [0] * (2 * dims)
    else:
        if int(a.get("ceil_mode", 0)):
            raise _unsupported(idx, node, "ceil_mode=1 (partial windows at the border) is not encoded",
                               "Export with ceil_mode=0")
        dil = [int(d) for d in a.get("dilations", [1] * dims)]
        if any(d != 1 for d in dil):
            raise _unsupported(idx, node, f"dilations={dil} are not encoded (only dilation 1)")
        ks = [int(k) for k in a.get("kernel_shape", [])]
        if len(ks) != dims or min(ks) <= 0:
            raise _unsupported(idx, node, f"kernel_shape={ks} is invalid for a {dims}-D pool")
        strides = [int(v) for v in a.get("strides", [1] * dims)]
        if len(strides) != dims or min(strides) <= 0:
            raise _unsupported(idx, node, f"strides={strides} are invalid")
        pads = _spatial_pads(idx, node, a, size, ks, strides)
    if dims == 1:  # (C, L) as (C, 1, L)
        size, ks, strides, pads = [1] + size, [1] + ks, [1] + strides, [0, pads[0], 0, pads[1]]
    out = [(n_ + pb + pe - k_) // s_ + 1 for n_, k_, s_, pb, pe in zip(size, ks, strides, pads[:2], pads[2:])]
    if min(out) <= 0:
        raise _unsupported(idx, node, f"its window {ks} does not fit the input {shape} padded by {pads}")
    try:
        layer = MaxPool2D(tuple(ks), (shape[1], size[0], size[1]), tuple(strides), tuple(pads))
    except NetworkError as exc:
        raise _unsupported(idx, node, str(exc).rstrip(".")) from None
    chain.max_pool(layer, (1, shape[1], out[1]) if dims == 1 else (1, shape[1], out[0], out[1]), label)


def from_onnx(model, *, name: str | None = None, mean=None, std=None) -> Network:
    """Convert an ONNX model of a ReLU network (dense and convolutional layers) into a :class:`~reluverify.Network`.

    ``model`` is a path to an ``.onnx`` file (gzipped ``.onnx.gz`` files are recognised by their
    suffix or their magic bytes) or an ``onnx.ModelProto``. ``name`` overrides the network name
    (default: the file name without ``.onnx``/``.onnx.gz``, or the graph name).

    The graph is walked from its single input to its single output and its affine nodes are
    composed in float64 into :class:`~reluverify.model.layers.Dense` layers, split at every ``Relu``
    (see the module docstring for the supported ops). The network's ``input_shape`` is the graph
    input's shape without the leading batch dimension; inputs are handled flattened row-major.
    What the importer changed (folded input normalisation, a dropped final Softmax, composed
    weight maps) is listed in ``Network.notes``.

    ``mean``/``std``: the model expects inputs normalised as ``(x - mean) / std`` outside the graph
    (e.g. ERAN's MNIST networks, 0.1307/0.3081): the normalisation is folded into the first layer,
    so the network takes raw inputs ``x`` and questions (radii, boxes) are asked in that space.
    Scalars, one value per channel (the first axis after the batch) or arrays of the input's shape.

    Raises :class:`~reluverify.errors.UnsupportedLayerError` for nodes or graph structures that
    cannot be encoded (naming the node), :class:`~reluverify.errors.ModelFileError` for missing or
    unreadable files and :class:`~reluverify.errors.MissingDependencyError` when ``onnx`` is not
    installed.
    """
    onnx = _import_onnx()
    if isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        model = _load(onnx, path)
        if name is None:
            base = os.path.basename(path)
            for suffix in (".gz", ".onnx"):
                if base.lower().endswith(suffix):
                    base = base[: -len(suffix)]
            name = base
    elif not isinstance(model, onnx.ModelProto):
        raise NetworkError(
            f"from_onnx expects a path to an .onnx/.onnx.gz file or an onnx.ModelProto, got "
            f"{type(model).__module__}.{type(model).__name__}"
        )
    elif not model.HasField("graph") or len(model.graph.output) == 0:
        raise ModelFileError("the onnx.ModelProto passed to from_onnx has no graph or no output")
    if name is None:
        name = model.graph.name or "onnx-model"
    return _convert(onnx, model, str(name), mean, std)


# --------------------------------------------------------------------------- onnxruntime
_SESSION_CACHE: OrderedDict = OrderedDict()
_SESSION_CACHE_SIZE = 8
_ORT_DTYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16}


def _session(model):
    """(session, input name, input dims, input dtype, output name), cached per file/model bytes."""
    ort = _import_onnxruntime()
    if isinstance(model, (str, os.PathLike)):
        path = os.path.abspath(os.fspath(model))
        data = None
        if not os.path.exists(path):
            raise ModelFileError(f"ONNX model file {path!r} does not exist; check the path")
        st = os.stat(path)
        key = ("path", path, st.st_mtime_ns, st.st_size)
        where = repr(path)
    elif hasattr(model, "SerializeToString"):
        data = model.SerializeToString()
        key = ("bytes", hashlib.sha256(data).hexdigest())
        where = "the onnx.ModelProto"
    else:
        raise NetworkError(
            f"onnxruntime_forward expects a path or an onnx.ModelProto, got {type(model).__name__}"
        )
    if key in _SESSION_CACHE:
        _SESSION_CACHE.move_to_end(key)
        return _SESSION_CACHE[key]
    if data is None:
        data = _read_model_bytes(path)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    try:
        sess = ort.InferenceSession(data, sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ModelFileError(
            f"onnxruntime could not load {where} ({type(exc).__name__}: {exc}); check that it is a "
            "valid ONNX model"
        ) from exc
    inputs, outputs = sess.get_inputs(), sess.get_outputs()
    if len(inputs) != 1 or len(outputs) != 1:
        raise UnsupportedLayerError(
            f"{where} has {len(inputs)} inputs and {len(outputs)} outputs in onnxruntime; "
            "onnxruntime_forward needs exactly one of each"
        )
    inp = inputs[0]
    dtype = _ORT_DTYPES.get(inp.type)
    if dtype is None:
        raise UnsupportedLayerError(f"the input {inp.name!r} of {where} has type {inp.type}; expected a float tensor")
    dims = [d if isinstance(d, int) and d > 0 else None for d in inp.shape]
    entry = (sess, inp.name, dims, dtype, outputs[0].name)
    _SESSION_CACHE[key] = entry
    while len(_SESSION_CACHE) > _SESSION_CACHE_SIZE:
        _SESSION_CACHE.popitem(last=False)
    return entry


def onnxruntime_forward(model, x) -> np.ndarray:
    """Run the ONNX ``model`` (path or ``onnx.ModelProto``) with onnxruntime; return float64 outputs.

    ``x`` is one input, flattened (or of any shape with the right number of entries): it is
    reshaped to the graph input's shape with batch size 1, cast to the input's dtype (usually
    float32), and the output is returned flattened as float64, shape ``(n_outputs,)``. A 2-D
    array whose rows are flattened inputs is a batch: the result has shape ``(batch, n_outputs)``
    (one run when the model's batch dimension is symbolic, otherwise one run per row).
    Sessions are cached per file (path, modification time, size) or per model bytes.
    """
    sess, in_name, dims, dtype, out_name = _session(model)
    batchable = len(dims) >= 2 and dims[0] is None
    dims = list(dims)
    if batchable:
        dims[0] = 1
    if any(d is None for d in dims):
        raise InputError(
            f"the ONNX model's input {in_name!r} has shape {dims} with unknown dimensions besides "
            "the leading batch dimension; onnxruntime_forward cannot tell how to reshape x"
        )
    known = int(np.prod(dims, dtype=np.int64))
    arr = np.asarray(x, dtype=np.float64)

    def run(batch: np.ndarray) -> np.ndarray:
        return np.asarray(sess.run([out_name], {in_name: batch.astype(dtype)})[0], dtype=np.float64)

    if arr.ndim == 2 and arr.shape[1] == known:  # a batch of flattened inputs
        rows = arr.shape[0]
        if batchable and rows > 1:
            try:
                y = run(arr.reshape([rows] + dims[1:]))
                if y.shape[0] == rows:
                    return y.reshape(rows, -1)
            except Exception:  # the graph fixes the batch size somewhere: fall back to a loop
                pass
        return np.stack([run(row.reshape(dims)).reshape(-1) for row in arr]) if rows else np.zeros((0, 0))
    if arr.size == known:
        return run(arr.reshape(dims)).reshape(-1)
    raise InputError(
        f"input of shape {arr.shape} does not fit the ONNX model's input of shape {dims} "
        f"({known} values); pass one flattened input or a 2-D batch of flattened inputs"
    )
