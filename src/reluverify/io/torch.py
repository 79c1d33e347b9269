"""Import PyTorch ``nn.Sequential`` models as a :class:`~reluverify.Network`.

Public functions: :func:`from_torch` (a module or a ``.pt``/``.pth`` file -> ``Network``),
:func:`torch_forward` (run the original module on flattened inputs: the reference that re-checks
witnesses) and :func:`load_torch` (the module in a ``.pt``/``.pth`` file: a whole pickled module or
a TorchScript module). torch is
imported inside the functions, never at module import time.

How a model is translated
-------------------------
The model is an ``nn.Sequential`` (nested ones are flattened in order; a scripted
``torch.jit.script`` Sequential reads the same) or one supported module. Its modules are applied,
in order, to one input of shape ``(1, *input_shape)`` by the affine chain builder that the ONNX
importer uses too (:class:`reluverify.io.chain.AffineChain`), so both importers fold and close
layers the same way:

* ``Linear`` (on the last axis, as in PyTorch) is composed into the open affine map; ``Conv2d``
  (stride, zero padding given as an int, a pair, ``'valid'`` or ``'same'``; bias) opens a
  convolution, kept as a :class:`~reluverify.model.layers.Conv2D` (never unrolled unless an affine
  module follows it before any ``ReLU``);
* 1-D modules work on ``(C, L)`` tensors and become the same layer kinds as 2-D ones of height 1,
  as in the Keras (``Conv1D``) and ONNX importers: ``Conv1d`` a ``Conv2D`` with a ``(1, k)``
  kernel, ``MaxPool1d``/``AvgPool1d``/``AdaptiveAvgPool1d`` the poolings below with ``(1, k)``
  windows; the tensor after them is ``(C, L)`` again (what ``Flatten`` reads);
* ``BatchNorm1d``/``BatchNorm2d`` in eval mode are ``x * s + t`` per channel, folded into the
  preceding ``Linear``/``Conv1d``/``Conv2d`` (or into the next one, after a ``ReLU``);
* ``AvgPool2d`` (and ``AdaptiveAvgPool2d`` where the output size divides the input's) is a
  convolution with a ``1 / divisor`` kernel per channel: exact where every window divides by the
  same number (no ``ceil_mode`` partial windows; padding only with ``count_include_pad=True`` or a
  ``divisor_override``);
* ``MaxPool2d`` becomes a :class:`~reluverify.model.layers.MaxPool2D` layer (dilation 1, no partial
  ``ceil_mode`` windows; padding never wins, as in PyTorch);
* ``ReLU`` closes the open map as a ReLU layer; ``Flatten``/``Unflatten`` relabel the tensor
  (row-major, PyTorch's channels-first order); ``Dropout`` (eval mode) and ``Identity`` are no-ops;
  a ``Softmax`` as the very last module is dropped (reluverify reasons about logits);
* ``mean``/``std`` given to :func:`from_torch` (an input normalisation the model expects outside
  it) start the chain as ``(x - mean) / std``, folded into the first layer as in the ONNX importer
  (:meth:`~reluverify.io.chain.AffineChain.normalise_input`).

Anything else (other activations, custom modules with their own ``forward``, grouped or dilated
convolutions, padding modes other than zeros, modules in training mode where that changes their
output, forward hooks) raises :class:`~reluverify.errors.UnsupportedLayerError` naming the module.
After the translation, the network's float64 forward pass is compared with the module's own forward
pass (a float64 copy) on a few random inputs; a disagreement is a :class:`NetworkError`.
"""

from __future__ import annotations

import copy
import os
import warnings
import zipfile

import numpy as np

from ..errors import InputError, MissingDependencyError, ModelFileError, NetworkError, UnsupportedLayerError
from ..model import Network
from ..model.layers import MaxPool2D
from ..tolerances import INFERENCE_TOLERANCE
from .chain import AffineChain

__all__ = ["from_torch", "load_torch", "torch_forward"]

SUPPORTED_MODULES = (
    "nn.Sequential (nested ones are flattened) of Linear; Conv1d/Conv2d (groups 1, dilation 1, padding_mode "
    "'zeros', padding int/tuple/'valid'/'same'); ReLU; MaxPool1d/MaxPool2d (dilation 1); AvgPool1d/AvgPool2d; "
    "AdaptiveAvgPool1d/AdaptiveAvgPool2d (output size dividing the input's); Flatten; Unflatten; "
    "BatchNorm1d/BatchNorm2d (eval mode, running statistics); "
    "Dropout/Dropout1d/Dropout2d/AlphaDropout (eval mode) and Identity (no-ops); Softmax as the last module "
    "(dropped)"
)
_OTHER_ROUTE = ("Other models: export them with torch.onnx.export and use rv.from_onnx, or rebuild them as an "
                "nn.Sequential")
_DROPOUTS = ("Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout")
_KNOWN = ("Sequential", "Linear", "Conv1d", "Conv2d", "ReLU", "MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d",
          "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "Flatten", "Unflatten", "BatchNorm1d", "BatchNorm2d", "Identity",
          "Softmax") + _DROPOUTS
_NONLINEAR = ("ReLU6", "LeakyReLU", "PReLU", "RReLU", "ELU", "SELU", "CELU", "GELU", "SiLU", "Mish", "Sigmoid",
              "Tanh", "Softplus", "Softsign", "Hardtanh", "Hardsigmoid", "Hardswish", "Tanhshrink", "Softshrink",
              "Hardshrink", "LogSigmoid", "Threshold", "GLU", "LogSoftmax", "Softmin", "Softmax2d")
_CHECK_POINTS = 4  # random inputs on which the imported network must reproduce the module


# --------------------------------------------------------------------------- torch itself
def _import_torch():
    try:
        import torch  # noqa: PLC0415  (deliberately lazy)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingDependencyError(
            "reluverify's PyTorch importer needs torch: `pip install 'reluverify[torch]'` (for a CPU-only torch, "
            "first `pip install torch --index-url https://download.pytorch.org/whl/cpu`); importing it failed: "
            f"{exc}"
        ) from exc
    return torch


def is_torch_module(obj) -> bool:
    """Whether ``obj`` is a ``torch.nn.Module`` (TorchScript modules included), without importing torch:
    a module can only exist once torch has been imported."""
    import sys

    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.nn.Module)


# --------------------------------------------------------------------------- the modules
def _kind(torch, m) -> str:
    """The name of the ``torch.nn`` class whose computation ``m`` performs, or its own class name.

    A scripted module reports the class it was scripted from (``original_name``); a subclass of a
    supported class counts as that class only when it keeps its ``forward``."""
    if isinstance(m, torch.jit.ScriptModule):
        return str(getattr(m, "original_name", type(m).__name__))
    cls = type(m)
    for name in _KNOWN:
        base = getattr(torch.nn, name, None)
        if base is not None and isinstance(m, base) and cls.forward is base.forward:
            return name
    return cls.__name__


def _walk(torch, module, prefix: str = ""):
    """``(label, kind, module)`` of every module the input passes through, nested Sequentials flattened."""
    kind = _kind(torch, module)
    if kind == "Sequential":
        for name, child in module.named_children():
            yield from _walk(torch, child, f"{prefix}.{name}" if prefix else str(name))
    else:
        yield prefix, kind, module


def _describe(label: str, kind: str) -> str:
    return f"{kind} module {label!r}" if label else f"{kind} module (the model itself)"


def _unsupported(what: str, reason: str, todo: str = "") -> UnsupportedLayerError:
    todo = f" {todo.rstrip('.')}." if todo else ""
    return UnsupportedLayerError(f"PyTorch {what} is not supported: {reason}.{todo} Supported: {SUPPORTED_MODULES}. "
                                 f"{_OTHER_ROUTE}.")


def _attr(m, name: str, what: str):
    try:
        return getattr(m, name)
    except AttributeError:
        raise _unsupported(what, f"it has no attribute {name!r} (a traced TorchScript module does not keep its "
                           "layers' settings)", "Script the model with torch.jit.script, or save the nn.Module "
                           "itself with torch.save(model, path)") from None


def _array(torch, t, what: str, name: str) -> np.ndarray | None:
    if t is None:
        return None
    arr = t.detach().to(device="cpu", dtype=torch.float64).numpy().copy()
    if not np.all(np.isfinite(arr)):
        raise NetworkError(f"PyTorch {what} has NaN or infinite values in its {name}; fix the model's weights")
    return arr


def _ints(value, dims: int, what: str, name: str) -> tuple:
    """A module's per-axis setting (an int, or a tuple of one or ``dims`` ints) as ``dims`` ints."""
    vals = tuple(int(v) for v in value) if isinstance(value, (tuple, list)) else (int(value),)
    if len(vals) == 1:
        vals = vals * dims
    if len(vals) != dims:
        raise _unsupported(what, f"{name}={value!r} is not a {dims}-D setting")
    return vals


def _eval_mode(m, what: str) -> None:
    if bool(getattr(m, "training", False)):
        raise UnsupportedLayerError(
            f"PyTorch {what} is in training mode, where its output depends on the batch (batch statistics, "
            "random dropout): call model.eval() before rv.from_torch (and before saving it)")


def _need_rank(chain: AffineChain, ranks: tuple, what: str, expects: str) -> tuple:
    shape = chain.shape
    if len(shape) not in ranks:
        raise InputError(f"PyTorch {what} expects {expects}, but the tensor reaching it has shape {shape[1:]} "
                         f"(batch dimension left out); check input_shape (the shape of one input, without the "
                         "batch dimension, e.g. (1, 28, 28) for a 1-channel 28x28 image)")
    return shape


def _out_size(n: int, k: int, s: int, pb: int, pe: int) -> int:
    return (n + pb + pe - k) // s + 1


def _ceil_size(n: int, k: int, s: int, p: int) -> int:
    """PyTorch's pooling output size with ``ceil_mode=True`` (symmetric padding ``p``)."""
    out = -(-(n + 2 * p - k) // s) + 1
    if (out - 1) * s >= n + p:  # the last window must start inside the input or its left padding
        out -= 1
    return out


_SHAPES = {1: "an input of shape (C, L)", 2: "an input of shape (C, H, W)"}


def _as_2d(chain: AffineChain) -> tuple:
    """View the current ``(1, C, L)`` tensor as ``(1, C, 1, L)`` (a 1-D layer is a 2-D one of height
    1, as in the Keras and ONNX importers); returns the shape before."""
    before = chain.shape
    if len(before) == 3:
        chain.shape = (1, before[1], 1, before[2])
    return before


def _lift(dims: int, ks: tuple, stride: tuple, pads: tuple) -> tuple:
    """1-D kernel, stride and ``(begin, end)`` pads as 2-D ones of height 1; 2-D ones unchanged.
    ``pads`` is ``begin + end`` per axis; the result's is ``(top, left, bottom, right)``."""
    if dims == 1:
        return (1,) + ks, (1,) + stride, (0, pads[0], 0, pads[1])
    return ks, stride, pads


def _pool_geometry(m, chain: AffineChain, what: str, dims: int) -> tuple:
    """``(ks, stride, pads, (ho, wo))`` of a MaxPool/AvgPool 1d/2d as a 2-D pooling (1-D: height 1);
    partial ``ceil_mode`` windows refused."""
    _need_rank(chain, (dims + 2,), what, _SHAPES[dims])
    ks = _ints(_attr(m, "kernel_size", what), dims, what, "kernel_size")
    stride = _attr(m, "stride", what)
    stride = ks if stride is None or stride == () or stride == [] else _ints(stride, dims, what, "stride")
    pad = _ints(_attr(m, "padding", what), dims, what, "padding")
    size = chain.shape[2:]
    out = tuple(_out_size(n, k, s, p, p) for n, k, s, p in zip(size, ks, stride, pad))
    if bool(_attr(m, "ceil_mode", what)):
        ceil = tuple(_ceil_size(n, k, s, p) for n, k, s, p in zip(size, ks, stride, pad))
        if ceil != out:
            raise _unsupported(what, f"ceil_mode=True adds partial windows at the border here (output {ceil} instead "
                               f"of {out})", "Use ceil_mode=False, or an input size that the windows tile")
    if min(out) <= 0:
        raise InputError(f"PyTorch {what}: its window {ks} does not fit the input {chain.shape[1:]} padded by {pad}")
    ks, stride, pads = _lift(dims, ks, stride, pad + pad)
    return ks, stride, pads, ((1,) + out if dims == 1 else out)


# --------------------------------------------------------------------------- one module each
def _linear(torch, chain: AffineChain, m, what: str) -> None:
    weight = _array(torch, _attr(m, "weight", what), what, "weight")
    bias = _array(torch, _attr(m, "bias", what), what, "bias")
    shape = chain.shape
    if weight.ndim != 2 or shape[-1] != weight.shape[1]:
        raise InputError(f"PyTorch {what} takes {weight.shape[1]} features on the last axis, but the tensor reaching "
                         f"it has shape {shape[1:]} (batch dimension left out); check input_shape, or put an "
                         "nn.Flatten before it")
    out = shape[:-1] + (weight.shape[0],)
    wt = weight.T
    chain.linear(lambda X: np.matmul(X, wt), bias, out, what)


def _conv(torch, chain: AffineChain, m, what: str, dims: int) -> None:
    """``Conv1d`` (``dims`` 1, as a 2-D convolution of height 1) or ``Conv2d``."""
    groups = int(_attr(m, "groups", what))
    if groups != 1:
        raise _unsupported(what, f"groups={groups} (a grouped or depthwise convolution) is not encoded",
                           "Use groups=1 convolutions")
    dil = _ints(_attr(m, "dilation", what), dims, what, "dilation")
    if any(d != 1 for d in dil):
        raise _unsupported(what, f"dilation={dil} is not encoded (only dilation 1)")
    mode = str(_attr(m, "padding_mode", what))
    if mode != "zeros":
        raise _unsupported(what, f"padding_mode={mode!r} is not encoded (only zero padding)")
    kernel = _array(torch, _attr(m, "weight", what), what, "weight")
    bias = _array(torch, _attr(m, "bias", what), what, "bias")
    layout = "(C, L)" if dims == 1 else "(C, H, W)"
    shape = _need_rank(chain, (dims + 2,), what, f"an input of shape {layout} with C = {kernel.shape[1]}")
    if shape[1] != kernel.shape[1]:
        raise InputError(f"PyTorch {what} takes {kernel.shape[1]} input channels, but the tensor reaching it has "
                         f"shape {shape[1:]} ({shape[1]} channels; batch dimension left out); check input_shape "
                         f"(channels first: {layout})")
    ks = tuple(int(k) for k in kernel.shape[2:])
    stride = _ints(_attr(m, "stride", what), dims, what, "stride")
    padding = _attr(m, "padding", what)
    if isinstance(padding, str):
        if padding == "valid":
            begin = end = (0,) * dims
        elif padding == "same":  # PyTorch: total k - 1 per axis, the odd one at the end
            begin, end = tuple((k - 1) // 2 for k in ks), tuple(k - 1 - (k - 1) // 2 for k in ks)
        else:
            raise _unsupported(what, f"padding={padding!r} is not a PyTorch padding")
    else:
        begin = end = _ints(padding, dims, what, "padding")
    out = tuple(_out_size(n, k, s, pb, pe) for n, k, s, pb, pe in zip(shape[2:], ks, stride, begin, end))
    if min(out) <= 0:
        raise InputError(f"PyTorch {what}: its kernel {ks} does not fit the input {shape[1:]} padded by "
                         f"{begin + end}; check input_shape")
    ks2, stride2, pads = _lift(dims, ks, stride, begin + end)
    co = kernel.shape[0]
    _as_2d(chain)
    chain.convolution(kernel.reshape((co, shape[1]) + ks2), bias, stride2, pads, (1, co) + ((1,) + out)[-2:], what)
    chain.shape = (1, co) + out


def _batch_norm(torch, chain: AffineChain, m, kind: str, what: str) -> None:
    _eval_mode(m, what)
    ranks, expects = ((2, 3), "an input of shape (C,) or (C, L)") if kind == "BatchNorm1d" else \
        ((4,), "an input of shape (C, H, W)")
    shape = _need_rank(chain, ranks, what, expects)
    mean, var = _attr(m, "running_mean", what), _attr(m, "running_var", what)
    if mean is None or var is None:
        raise _unsupported(what, "it has no running statistics (track_running_stats=False): it normalises with "
                           "each batch's statistics even in eval mode")
    mean, var = _array(torch, mean, what, "running_mean"), _array(torch, var, what, "running_var")
    if mean.size != shape[1]:
        raise InputError(f"PyTorch {what} normalises {mean.size} channels, but the tensor reaching it has shape "
                         f"{shape[1:]} (batch dimension left out); check input_shape")
    gamma = _array(torch, _attr(m, "weight", what), what, "weight")
    beta = _array(torch, _attr(m, "bias", what), what, "bias")
    gamma = np.ones(mean.size) if gamma is None else gamma
    beta = np.zeros(mean.size) if beta is None else beta
    s = gamma / np.sqrt(var + float(_attr(m, "eps", what)))
    t = beta - mean * s
    per = (shape[1],) + (1,) * (len(shape) - 2)
    chain.scale_shift(np.broadcast_to(s.reshape(per), shape).reshape(-1),
                      np.broadcast_to(t.reshape(per), shape).reshape(-1), what)


def _end_shape(chain: AffineChain, before: tuple, out: tuple) -> tuple:
    """The pooling's output shape, 2-D for the chain, and the one to set after it (1-D: ``(1, C, L)``)."""
    return (1, chain.shape[1]) + tuple(out), (1, chain.shape[1]) + tuple(out)[4 - len(before):]


def _avg_pool(chain: AffineChain, m, what: str, dims: int) -> None:
    ks, stride, pads, out = _pool_geometry(m, chain, what, dims)
    divisor = _attr(m, "divisor_override", what) if dims == 2 else None  # AvgPool1d has none
    if divisor is None and any(pads) and not bool(_attr(m, "count_include_pad", what)):
        shown = pads[1:2] if dims == 1 else pads[:2]
        raise _unsupported(what, f"it pads by {shown} with count_include_pad=False: border windows divide by "
                           "fewer entries, which is not a convolution", "Use count_include_pad=True or no padding")
    before = _as_2d(chain)
    out2, after = _end_shape(chain, before, out)
    chain.average_pool(ks, stride, pads, out2, what, None if divisor is None else float(divisor))
    chain.shape = after


def _adaptive_avg_pool(chain: AffineChain, m, what: str, dims: int) -> None:
    shape = _need_rank(chain, (dims + 2,), what, _SHAPES[dims])
    size = _attr(m, "output_size", what)
    size = (size,) * dims if not isinstance(size, (tuple, list)) else tuple(size)
    if len(size) != dims:
        raise _unsupported(what, f"output_size={size!r} is not a {dims}-D setting")
    outs = tuple(n if o is None else int(o) for n, o in zip(shape[2:], size))
    if min(outs) <= 0 or any(n % o for n, o in zip(shape[2:], outs)):
        raise _unsupported(what, f"output size {outs} does not divide the input size {shape[2:]}: its windows "
                           f"differ in size", f"Use an output size that divides the input's, or AvgPool{dims}d")
    ks = tuple(n // o for n, o in zip(shape[2:], outs))
    ks2, _, _ = _lift(dims, ks, ks, (0,) * (2 * dims))
    before = _as_2d(chain)
    out2, after = _end_shape(chain, before, ((1,) + outs)[-2:])
    chain.average_pool(ks2, ks2, (0, 0, 0, 0), out2, what)
    chain.shape = after


def _max_pool(chain: AffineChain, m, what: str, dims: int) -> None:
    if bool(_attr(m, "return_indices", what)):
        raise _unsupported(what, "return_indices=True returns two tensors")
    dil = _ints(_attr(m, "dilation", what), dims, what, "dilation")
    if any(d != 1 for d in dil):
        raise _unsupported(what, f"dilation={dil} is not encoded (only dilation 1)")
    ks, stride, pads, out = _pool_geometry(m, chain, what, dims)
    if 2 * pads[0] > ks[0] or 2 * pads[1] > ks[1]:  # PyTorch refuses it too
        raise _unsupported(what, f"padding {pads[1:2] if dims == 1 else pads[:2]} is more than half the window "
                           f"{ks[1:] if dims == 1 else ks}")
    before = _as_2d(chain)
    c, h, w = chain.shape[1:]
    out2, after = _end_shape(chain, before, out)
    chain.max_pool(MaxPool2D(kernel=ks, input_shape=(c, h, w), stride=stride, pads=pads), after, what)


def _flatten(chain: AffineChain, m, what: str) -> None:
    shape = chain.shape
    r = len(shape)
    start, end = int(_attr(m, "start_dim", what)), int(_attr(m, "end_dim", what))
    start, end = start + r if start < 0 else start, end + r if end < 0 else end
    if not 0 <= start <= end < r:
        raise InputError(f"PyTorch {what} (start_dim={start}, end_dim={end}) does not fit the tensor of shape "
                         f"{shape[1:]} reaching it (batch dimension left out); check input_shape")
    chain.shape = shape[:start] + (int(np.prod(shape[start:end + 1], dtype=np.int64)),) + shape[end + 1:]


def _unflatten(chain: AffineChain, m, what: str) -> None:
    shape = chain.shape
    dim = int(_attr(m, "dim", what))
    dim = dim + len(shape) if dim < 0 else dim
    sizes = [int(v) for v in _attr(m, "unflattened_size", what)]
    if not 0 <= dim < len(shape):
        raise InputError(f"PyTorch {what}: dim={dim} is out of range for the tensor of shape {shape[1:]}")
    if sizes.count(-1) == 1:
        known = int(np.prod([v for v in sizes if v != -1]))
        sizes[sizes.index(-1)] = shape[dim] // known if known > 0 else -1
    if int(np.prod(sizes)) != shape[dim] or min(sizes) <= 0:
        raise InputError(f"PyTorch {what}: cannot unflatten axis {dim} of size {shape[dim]} into {sizes}; check "
                         "input_shape")
    chain.shape = shape[:dim] + tuple(sizes) + shape[dim + 1:]


# --------------------------------------------------------------------------- public functions
def _check_input_shape(input_shape, modules) -> tuple:
    if input_shape is None:
        first = next(((k, m) for _, k, m in modules if k not in _DROPOUTS + ("Identity",)), (None, None))
        if first[0] == "Linear":
            return (int(_attr(first[1], "weight", "the first Linear module").shape[1]),)
        raise InputError("rv.from_torch needs input_shape, the shape of one input without the batch dimension "
                         "(e.g. (1, 28, 28) for 1-channel 28x28 images): it is only implied when the model starts "
                         "with nn.Linear")
    shape = (input_shape,) if isinstance(input_shape, (int, np.integer)) else input_shape
    try:
        shape = tuple(shape)
        ok = len(shape) >= 1 and all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d > 0
                                     for d in shape)
    except TypeError:
        ok = False
    if not ok:
        raise InputError(f"input_shape must be a tuple of positive integers (one input's shape without the batch "
                         f"dimension, e.g. (1, 28, 28)), got {input_shape!r}")
    return tuple(int(d) for d in shape)


def from_torch(model, input_shape=None, *, name: str | None = None, check: bool = True, mean=None,
               std=None) -> Network:
    """Convert a PyTorch ``nn.Sequential`` (or one supported module, or a ``.pt``/``.pth`` file read by
    :func:`load_torch`) into a :class:`~reluverify.Network`.

    ``input_shape``: the shape of one input without the batch dimension (``(1, 28, 28)`` for a
    1-channel image, ``(784,)`` for a vector); when the model starts with ``nn.Linear`` it defaults
    to ``(in_features,)``. Inputs are handled flattened row-major, i.e. PyTorch's channels-first
    order. ``name`` defaults to the model's class name. TorchScript modules made by
    ``torch.jit.script`` read the same as the modules they were scripted from.

    The supported modules and how they are folded are listed in the module docstring; anything else
    raises :class:`~reluverify.errors.UnsupportedLayerError` naming the module (its path in the
    Sequential, e.g. ``'features.3'``). A model in training mode with BatchNorm or Dropout layers is
    refused (call ``model.eval()``). With ``check=True`` (default) the imported network's float64
    forward pass must reproduce a float64 copy of the module on a few random inputs (else
    :class:`~reluverify.errors.NetworkError`). The model is not changed.

    To re-check witnesses with PyTorch itself, pass the module as ``reference=`` to the questions
    (``rv.verify_robustness(net, x, ..., reference=model)``).

    ``mean``/``std``: the model expects inputs normalised as ``(x - mean) / std`` outside the module
    (e.g. MNIST's 0.1307/0.3081, or torchvision's ``Normalize(mean, std)`` per channel): the
    normalisation is folded into the first layer, exactly as :func:`reluverify.io.onnx.from_onnx`
    does, so the network takes raw inputs ``x`` and questions (radii, boxes) are asked in that
    space. Scalars, one value per channel (the first axis of ``input_shape``) or arrays of the
    input's shape. The module itself still reads normalised inputs: the network records the
    normalisation (``net.input_normalisation``), and ``reference=model`` runs the module on
    ``(x - mean) / std`` (of the normalised and the raw reading, the one that reproduces the network on
    a few probe inputs, so a module that normalises by itself is run on raw inputs).
    """
    torch = _import_torch()
    if isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        model = load_torch(path)
        if name is None:
            base = os.path.basename(path)
            name = base.rsplit(".", 1)[0] if "." in base else base
    if not isinstance(model, torch.nn.Module):
        raise NetworkError(f"rv.from_torch expects a torch.nn.Module (an nn.Sequential) or the path of a .pt/.pth "
                           f"file, got {type(model).__module__}.{type(model).__name__}")
    modules = list(_walk(torch, model))
    if not modules:
        raise NetworkError("the PyTorch model is an empty nn.Sequential: it has no layers")
    input_shape = _check_input_shape(input_shape, modules)
    chain = AffineChain((1,) + input_shape)
    norm = None
    if mean is not None or std is not None:
        norm = chain.normalise_input(input_shape, mean, std, "from_torch")
    for i, (label, kind, m) in enumerate(modules):
        what = _describe(label, kind)
        if getattr(m, "_forward_hooks", None) or getattr(m, "_forward_pre_hooks", None):
            raise _unsupported(what, "it has forward hooks, which may change its output", "Remove the hooks")
        if kind == "Linear":
            _linear(torch, chain, m, what)
        elif kind in ("Conv1d", "Conv2d"):
            _conv(torch, chain, m, what, int(kind[-2]))
        elif kind == "ReLU":
            chain.relu(what)
        elif kind in ("BatchNorm1d", "BatchNorm2d"):
            _batch_norm(torch, chain, m, kind, what)
        elif kind in ("AvgPool1d", "AvgPool2d"):
            _avg_pool(chain, m, what, int(kind[-2]))
        elif kind in ("AdaptiveAvgPool1d", "AdaptiveAvgPool2d"):
            _adaptive_avg_pool(chain, m, what, int(kind[-2]))
        elif kind in ("MaxPool1d", "MaxPool2d"):
            _max_pool(chain, m, what, int(kind[-2]))
        elif kind == "Flatten":
            _flatten(chain, m, what)
        elif kind == "Unflatten":
            _unflatten(chain, m, what)
        elif kind in _DROPOUTS:
            _eval_mode(m, what)
            chain.notes.append(f"skipped {what}: the identity in eval mode")
        elif kind == "Identity":
            pass
        elif kind == "Softmax" and i == len(modules) - 1:
            chain.notes.append(f"dropped the final {what}: reasoning about logits")
        elif kind in _NONLINEAR or kind == "Softmax":
            where = " (only as the very last module, where it is dropped)" if kind == "Softmax" else ""
            raise _unsupported(what, f"{kind} is a non-linear operation{where}; only ReLU is encoded exactly as a "
                               "MILP", "Retrain the model with ReLU activations")
        elif kind in ("Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d", "MaxPool3d", "AvgPool3d",
                      "AdaptiveAvgPool3d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "AdaptiveMaxPool3d",
                      "LazyConv1d", "LazyConv2d", "LazyLinear"):
            raise _unsupported(what, f"{kind} is not encoded (1-D and 2-D convolutions, max and average pooling only)")
        else:
            raise _unsupported(what, f"reluverify has no encoding of {kind} (a custom module's forward() cannot be "
                               "read)")
    net = Network(tuple(chain.finish()), input_shape=input_shape,
                  name=str(name) if name is not None else type(model).__name__ if not isinstance(
                      model, torch.jit.ScriptModule) else str(getattr(model, "original_name", "torchscript")),
                  notes=tuple(chain.notes), input_normalisation=norm)
    if check:
        _check_against(torch, model, net, norm)
    return net


def _float64_copy(torch, model):
    """A float64 copy of ``model`` on the CPU (the model itself is left as it is), or None."""
    try:
        with warnings.catch_warnings():  # torch's notes on copying scripted modules
            warnings.simplefilter("ignore")
            return copy.deepcopy(model).to(device="cpu", dtype=torch.float64)
    except Exception:  # a module that cannot be copied: the check runs in its own precision
        return None


def _check_against(torch, model, net: Network, norm: tuple | None = None) -> None:
    """The imported network must reproduce the module (a float64 copy) on random inputs; with
    ``norm = (mean, std)`` (flattened), the module reads them normalised."""
    twin = _float64_copy(torch, model)
    if twin is None:
        object.__setattr__(net, "notes", net.notes + (
            "not cross-checked against PyTorch's forward pass: the module could not be copied to float64",))
        return
    x = np.random.default_rng(0).uniform(-1.0, 1.0, size=(_CHECK_POINTS, net.n_inputs))
    expected = torch_forward(twin, x if norm is None else (x - norm[0]) / norm[1], net.input_shape)
    got = net.forward(x)
    if expected.shape != got.shape:
        raise NetworkError(f"the imported network has {got.shape[1]} outputs but the PyTorch model gives "
                           f"{expected.shape[1]} values per input; {_OTHER_ROUTE}")
    err = float(np.max(np.abs(expected - got)))
    if not err <= INFERENCE_TOLERANCE * (1.0 + float(np.max(np.abs(expected)))):
        raise NetworkError(f"the imported network differs from the PyTorch model's own forward pass by {err:.3g} on "
                           "random inputs (float64): some module does not compute what its class name says (a "
                           f"subclass, a hook, a scripted module with a changed forward?). {_OTHER_ROUTE}")


def torch_forward(model, x, input_shape) -> np.ndarray:
    """Run the PyTorch ``model`` (eval mode, no gradients, in its own dtype and device) on one flattened
    input (shape ``(n,)``, result ``(n_outputs,)``) or a batch of flattened inputs (``(batch, n)``,
    result ``(batch, n_outputs)``); ``input_shape`` is one input's shape; outputs as float64."""
    torch = _import_torch()
    arr = np.asarray(x, dtype=np.float64)
    shape = tuple(int(d) for d in input_shape)
    n = int(np.prod(shape, dtype=np.int64))
    if arr.ndim == 2 and arr.shape[1] == n:
        single = False
    elif arr.size == n:
        single = True
    else:
        raise InputError(f"input of shape {arr.shape} does not fit the PyTorch model's input shape {shape} "
                         f"({n} values); pass one flattened input or a 2-D batch of flattened inputs")
    batch = arr.reshape((-1,) + shape)
    param = next(iter(model.parameters()), None) if hasattr(model, "parameters") else None
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    device = param.device if param is not None else "cpu"
    with torch.no_grad():
        out = model(torch.as_tensor(batch, dtype=dtype, device=device))
    out = out.detach().to(device="cpu", dtype=torch.float64).numpy().reshape(batch.shape[0], -1)
    return out[0] if single else out


class TorchReference:
    """The PyTorch module as a picklable callable ``x -> outputs`` (float64), for witness re-checks;
    with ``normalisation = (mean, std)`` (flattened) it runs the module on ``(x - mean) / std``."""

    def __init__(self, model, input_shape, normalisation=None):
        self.model = model
        self.input_shape = tuple(input_shape)
        self.normalisation = normalisation

    def __call__(self, x) -> np.ndarray:
        if self.normalisation is not None:
            mean, std = self.normalisation
            x = (np.asarray(x, dtype=np.float64) - mean) / std
        return torch_forward(self.model, x, self.input_shape)


def torch_reference(model, network) -> TorchReference:
    """The module ``model`` as the reference of ``network``: when the network folded an input
    normalisation (``from_torch(mean=, std=)``), the module is run on normalised inputs unless its
    raw reading reproduces the network better on a few probe inputs in [0, 1] (a module that
    normalises by itself)."""
    norm = getattr(network, "input_normalisation", None)
    if norm is None:
        return TorchReference(model, network.input_shape)
    normalised = TorchReference(model, network.input_shape, norm)
    raw = TorchReference(model, network.input_shape)
    probe = np.random.default_rng(0).uniform(0.0, 1.0, size=(_CHECK_POINTS, network.n_inputs))
    want = network.forward(probe)
    try:
        err_raw = float(np.max(np.abs(raw(probe) - want)))
        err_norm = float(np.max(np.abs(normalised(probe) - want)))
    except Exception:  # the module cannot run on a batch here: the recorded normalisation stands
        return normalised
    return raw if err_raw < err_norm else normalised


def load_torch(path):
    """The ``nn.Module`` stored in a ``.pt``/``.pth`` file: a whole module saved with ``torch.save(model,
    path)`` (a pickle: load only files you trust; the module's classes must be importable) or a
    TorchScript module (``torch.jit.save``). A file holding only a ``state_dict`` (weights without the
    architecture) is a :class:`~reluverify.errors.ModelFileError` saying what to do instead."""
    torch = _import_torch()
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ModelFileError(f"PyTorch model file {path!r} does not exist; check the path")
    scripted = False
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as z:
                scripted = any(n.endswith("/constants.pkl") or "/code/" in n for n in z.namelist())
        except (OSError, zipfile.BadZipFile):
            scripted = False
    try:
        if scripted:
            obj = torch.jit.load(path, map_location="cpu")
        else:
            obj = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise ModelFileError(f"PyTorch model file {path!r} could not be loaded ({type(exc).__name__}: {exc}); it must "
                             "hold a whole module (torch.save(model, path), with the module's classes importable) "
                             "or a TorchScript module (torch.jit.save)") from exc
    if isinstance(obj, torch.nn.Module):
        return obj
    if isinstance(obj, dict):
        keys = list(obj)
        shown = ", ".join(map(repr, keys[:4])) + (" ..." if len(keys) > 4 else "")
        raise ModelFileError(
            f"PyTorch model file {path!r} holds a dict ({shown}), probably a state_dict: weights without the "
            "architecture, which reluverify cannot rebuild. Save the whole model instead (torch.save(model, path), "
            "or torch.jit.save(torch.jit.script(model), path)), or build the nn.Sequential in Python, call "
            "model.load_state_dict(torch.load(path)) and rv.from_torch(model, input_shape)")
    raise ModelFileError(f"PyTorch model file {path!r} holds a {type(obj).__module__}.{type(obj).__name__}, not an "
                         "nn.Module; save the model with torch.save(model, path)")
