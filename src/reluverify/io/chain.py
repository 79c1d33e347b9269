"""The affine chain builder shared by the ONNX and PyTorch importers.

:class:`AffineChain` walks a model one operation at a time on a single current tensor (full shape,
batch dimension at 1) and turns it into the layers of a :class:`~reluverify.Network`: affine
operations are composed in float64 into one *open* map (a dense ``W x + b`` or an open
convolution), a ReLU closes the open map as a layer, max pooling appends a
:class:`~reluverify.model.layers.MaxPool2D`, and what the folding changed is recorded in
``notes`` (later ``Network.notes``). :mod:`reluverify.io.onnx` feeds it ONNX nodes and
:mod:`reluverify.io.torch` feeds it ``nn.Sequential`` modules, so both importers fold and close
layers the same way. It imports no framework.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..errors import InputError
from ..model.layers import Conv2D, Dense, MaxPool2D

__all__ = ["AffineChain"]


class AffineChain:
    """Layers built so far plus the open affine map onto the current tensor.

    ``W``/``b`` map the flattened input of the layer being built to the flattened current tensor
    (``None`` means the identity). ``shape`` is the current tensor's full shape, channels first
    (the ONNX and PyTorch layout), with the batch dimension at 1. The importers set ``shape``
    directly for operations that only relabel the flattened tensor (``Flatten``, ``Reshape``).
    """

    def __init__(self, shape: tuple):
        self.shape = tuple(shape)
        self.layers: list = []
        self.notes: list = []
        self.W = None
        self.b = None
        self.conv = None  # an open convolution (dict of Conv2D arguments): the open map, W is then None
        self.pad_info = None  # a zero Pad just applied to an elementwise open map: (pads, state before it)
        self.weight_ops: list = []  # labels of the Gemm/MatMul composed into the open map
        self.pending: list = []  # labels of other maps in the open map before its first weight op

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def _materialise(self, why: str = "") -> None:
        if self.conv is not None:  # an affine op follows the convolution: unroll it (rare)
            layer = Conv2D(activation="linear", **self.conv)
            self.W, self.b = layer.dense_matrix(), np.array(layer.bias)
            self.notes.append(f"unrolled {self.weight_ops[-1]} into a dense map: {why or 'an affine op'} follows "
                              "it before any Relu")
            self.conv = None
        if self.W is None:
            self.W, self.b = np.eye(self.size), np.zeros(self.size)

    # ---- convolutions
    def _diagonal(self) -> tuple | None:
        """``(scale, shift)`` when the open map is elementwise (input normalisation), else None."""
        W = self.W
        if W is None:
            return np.ones(self.size), np.zeros(self.size)
        if W.shape[0] != W.shape[1] or np.count_nonzero(W - np.diag(np.diag(W))):
            return None
        return np.diag(W).copy(), self.b.copy()

    def convolution(self, kernel, bias, stride, pads, out_shape: tuple, label: str) -> None:
        """Open a convolution on the current tensor ``(1, C, H, W)`` (``kernel`` (C_out, C, kh, kw)).
        An elementwise open map with one scale per channel (input normalisation) is folded into it:
        the scale into the kernel, the shift through the convolution into a per-entry bias (exact
        with zero padding, which pads the shifted tensor). Any other open map is kept as a layer.
        A zero ``Pad`` just before it becomes the convolution's own padding."""
        if self.pad_info is not None:
            extra, (self.W, self.b, self.shape, self.pending) = self.pad_info
            pads = tuple(int(p) + int(q) for p, q in zip(pads, extra))
            self.pad_info = None
            self.notes.append(f"folded the zero padding before {label} into it")
        c, h, w = self.shape[1:]
        kernel = np.asarray(kernel, dtype=np.float64)
        bias_full = np.repeat(np.zeros(kernel.shape[0]) if bias is None else np.asarray(bias, np.float64).reshape(-1),
                              out_shape[2] * out_shape[3])
        geometry = dict(input_shape=(c, h, w), stride=stride, pads=pads)
        if self.conv is not None:
            self.close("linear")
            self.notes.append(f"kept the convolution before {label} as a separate linear layer: no Relu lies "
                              "between them")
        diag = self._diagonal()
        folded = False
        if diag is not None:
            scale, shift = (v.reshape(c, h * w) for v in diag)
            if np.all(scale == scale[:, :1]):
                # conv(s x + t) with the zero padding of (s x + t): kernel K s, bias b + conv_K(t)
                original = kernel
                kernel = kernel * scale[:, 0][None, :, None, None]
                if np.any(shift):
                    bias_full = bias_full + Conv2D(original, None, activation="linear", **geometry).preactivation(
                        shift.reshape(-1))
                folded = True
        if not folded:
            diag = None
        if diag is None:  # keep the open map as its own linear layer
            self.close("linear")
            self.notes.append(f"kept the map before {label} as a separate linear layer (not one scale per channel)")
        elif self.W is not None:
            if self.pending:
                what = "input normalisation " if not self.layers else ""
                self.notes.append(f"folded {what}{', '.join(self.pending)} into the following {label}")
        self.W = self.b = None
        self.pending = []
        self.conv = dict(kernel=kernel, bias=bias_full, **geometry)
        self.weight_ops = [label]
        self.shape = tuple(out_shape)

    def average_pool(self, ks: tuple, stride: tuple, pads: tuple, out_shape: tuple, label: str,
                     divisor: float | None = None) -> None:
        """Average pooling of the current tensor ``(1, C, H, W)`` as a convolution whose kernel is
        ``1 / divisor`` (default ``kh kw``) on each channel's own window (exact when every window,
        zero padding included, divides by that number; the importers check it)."""
        c = self.shape[1]
        kernel = np.zeros((c, c, ks[0], ks[1]))
        kernel[np.arange(c), np.arange(c)] = 1.0 / (ks[0] * ks[1] if divisor is None else divisor)
        self.convolution(kernel, None, tuple(stride), tuple(pads), tuple(out_shape), label)

    def _note_minor(self, label: str) -> None:
        if not self.weight_ops:
            self.pending.append(label)

    # ---- input normalisation
    def normalise_input(self, input_shape: tuple, mean, std, who: str) -> tuple:
        """Start the (still empty) chain with ``(x - mean) / std``: the model expects normalised
        inputs, the network built takes the raw ones (the map is folded into the first Dense or
        convolution, see :meth:`scale_shift` and :meth:`convolution`). ``mean``/``std``: scalars,
        one value per channel (the first axis of ``input_shape``, channels first) or arrays
        broadcastable to ``input_shape``; None means 0 and 1. ``who`` names the caller in errors
        (``"from_onnx"``). Returns ``(mean, std)`` spread to one value per flattened input entry."""
        def spread(v, what):
            v = np.asarray(0.0 if v is None and what == "mean" else 1.0 if v is None else v, dtype=np.float64)
            if v.ndim == 1 and len(input_shape) > 1 and v.size == input_shape[0] and v.size > 1:
                v = v.reshape((-1,) + (1,) * (len(input_shape) - 1))
            try:
                v = np.broadcast_to(v, input_shape).reshape(-1)
            except ValueError:
                raise InputError(f"{who}: {what} of shape {v.shape} does not fit the input shape {input_shape} "
                                 "(give a scalar, one value per channel, or an array of the input's shape)") from None
            if not np.all(np.isfinite(v)):
                raise InputError(f"{who}: {what} must be finite")
            return v
        m, s = spread(mean, "mean"), spread(std, "std")
        if np.any(s == 0):
            raise InputError(f"{who}: std must be nonzero")
        self.scale_shift(1.0 / s, -m / s, "(x - mean) / std (the mean/std arguments)")
        return m, s

    # ---- composing maps into the open one
    def gather(self, index: np.ndarray, out_shape: tuple, label: str) -> None:
        """The new tensor is ``old_flat[index]`` (a permutation, or a broadcast copy)."""
        self.pad_info = None
        index = np.asarray(index, dtype=np.int64)
        if index.shape != (self.size,) or not np.array_equal(index, np.arange(self.size)):
            if self.conv is not None:
                self._materialise(label)
            zero = index < 0  # entries that are the constant 0 (zero padding)
            safe = np.where(zero, 0, index)
            if self.W is None:
                self.W, self.b = np.eye(self.size)[safe], np.zeros(index.size)
            else:
                self.W, self.b = self.W[safe], self.b[safe]
            if zero.any():
                self.W[zero] = 0.0
                self.b[zero] = 0.0
            self._note_minor(label)
        self.shape = tuple(out_shape)

    def scale_shift(self, scale, shift, label: str) -> None:
        """The new tensor is ``scale * old + shift`` elementwise (flattened arrays or None)."""
        self.pad_info = None
        if self.conv is not None:
            if self._conv_scale_shift(scale, shift):
                self.notes.append(f"folded {label} into {self.weight_ops[-1]}")
                return
            self._materialise(label)
        if scale is not None:
            scale = np.asarray(scale, dtype=np.float64).reshape(-1)
            if self.W is None:
                self.W, self.b = np.diag(scale), np.zeros(self.size)
            else:
                self.W = scale[:, None] * self.W
                self.b = scale * self.b
        if shift is not None:
            self._materialise()
            self.b = self.b + np.asarray(shift, dtype=np.float64).reshape(-1)
        self._note_minor(label)

    def _conv_scale_shift(self, scale, shift) -> bool:
        """Fold an elementwise map after the open convolution (a bias Add, a BatchNormalization):
        a scale with one value per output channel goes into the kernel; False when it cannot."""
        conv = self.conv
        co = conv["kernel"].shape[0]
        bias = np.asarray(conv["bias"], dtype=np.float64)
        if scale is not None:
            per = np.asarray(scale, dtype=np.float64).reshape(co, -1)
            if not np.all(per == per[:, :1]):
                return False
            conv["kernel"] = conv["kernel"] * per[:, 0][:, None, None, None]
            bias = bias * per.reshape(-1)
        if shift is not None:
            bias = bias + np.asarray(shift, dtype=np.float64).reshape(-1)
        conv["bias"] = bias
        return True

    def linear(self, fn, shift, out_shape: tuple, label: str) -> None:
        """Compose the linear map ``fn`` (then add ``shift``); ``fn`` maps a stack ``(k, *shape)``
        of current tensors to the stack ``(k, *out_shape)`` of results."""
        self.pad_info = None
        self._materialise(label)
        n0 = self.W.shape[1]
        cols = fn(self.W.T.reshape((n0,) + self.shape))
        bias = fn(self.b.reshape((1,) + self.shape))
        self.W = np.ascontiguousarray(np.asarray(cols, dtype=np.float64).reshape(n0, -1).T)
        self.b = np.asarray(bias, dtype=np.float64).reshape(-1)
        if shift is not None:
            self.b = self.b + np.broadcast_to(np.asarray(shift, dtype=np.float64), out_shape).reshape(-1)
        self.shape = tuple(out_shape)
        if self.pending:
            what = "input normalisation " if not self.layers else ""
            self.notes.append(f"folded {what}{', '.join(self.pending)} into the following {label}")
            self.pending = []
        if self.weight_ops:
            self.notes.append(
                f"composed {self.weight_ops[-1]} and {label} into one affine layer: no Relu lies "
                "between them"
            )
        self.weight_ops.append(label)

    def zero_pad(self, pads: list, label: str) -> None:
        """Zero padding ``pads`` ([begin..., end...] per axis) of the current tensor. On an
        N x C x H x W tensor padded in H and W only, with an elementwise open map, a following
        Conv takes it as its own padding; otherwise it is a gather with zero rows."""
        shape = self.shape
        r = len(shape)
        begin, end = pads[:r], pads[r:]
        out = tuple(d + p + q for d, p, q in zip(shape, begin, end))
        grid = np.full(out, -1, dtype=np.int64)
        grid[tuple(slice(p, p + d) for p, d in zip(begin, shape))] = np.arange(self.size).reshape(shape)
        before = (self.W, self.b, shape, list(self.pending))
        spatial = r == 4 and not any(begin[:2]) and not any(end[:2])
        foldable = spatial and self.conv is None and self._diagonal() is not None
        self.gather(grid.reshape(-1), out, label)
        if foldable:
            self.pad_info = ((begin[2], begin[3], end[2], end[3]), before)

    # ---- max pooling
    def max_pool(self, layer: MaxPool2D, out_shape: tuple, label: str) -> None:
        """Append a max pooling of the current tensor; an open map before it becomes a linear layer."""
        if self.W is not None or self.conv is not None:
            self.close("linear")
            self.notes.append(f"kept the map before {label} as a linear layer")
        self.pad_info = None
        self.layers.append(layer)
        self.weight_ops, self.pending = [], []
        self.shape = tuple(out_shape)

    def _relu_after_pool(self, label: str) -> bool:
        """A Relu right after a pooling: dropped when the pooling reads a ReLU's outputs, moved before
        the pooling onto a linear layer (``relu(max z) = max relu(z)``); False when neither applies."""
        if len(self.layers) < 2 or not isinstance(self.layers[-1], MaxPool2D):
            return False
        before = self.layers[-2]
        if before.nonnegative:
            self.notes.append(f"skipped {label}: the pooling before it reads a Relu's outputs (already >= 0)")
            return True
        if isinstance(before, (Dense, Conv2D)) and before.activation == "linear":
            self.layers[-2] = replace(before, activation="relu")
            self.notes.append(f"moved {label} before the max pooling onto the linear layer it reads "
                              "(relu(max z) = max relu(z))")
            return True
        return False

    # ---- activations / closing
    def close(self, activation: str) -> None:
        self.pad_info = None
        if self.conv is not None:
            self.layers.append(Conv2D(activation=activation, **self.conv))
            self.conv = None
            self.weight_ops, self.pending = [], []
            return
        self._materialise()
        if self.pending:
            self.notes.append(
                f"kept {', '.join(self.pending)} as a separate {activation} layer: no Gemm/MatMul "
                "could absorb it without crossing a Relu"
            )
        self.layers.append(Dense(self.W, self.b, activation))
        self.W = self.b = None
        self.weight_ops, self.pending = [], []

    def relu(self, label: str) -> None:
        if self.W is None and self.conv is None:
            if self._relu_after_pool(label):
                return
            if self.layers and self.layers[-1].nonnegative:  # relu(x) = x on a ReLU's output
                self.notes.append(f"skipped {label}: it follows another Relu (relu(relu(x)) = relu(x))")
                return
            self.notes.append(
                f"inserted an identity layer with ReLU activation for {label}, which acts directly "
                "on the network input"
            )
        self.close("relu")

    def finish(self) -> list:
        if self.W is not None or self.conv is not None or not self.layers:
            if self.W is None and self.conv is None:
                self.notes.append("the graph computes no affine map; the network is one identity layer")
            self.close("linear")
        elif not isinstance(self.layers[-1], MaxPool2D):
            self.notes.append("the graph ends with a Relu: the last layer has activation 'relu'")
        return self.layers
