"""Two-dimensional convolutions: ``z = K * h + b`` followed by ReLU or the identity.

:class:`Conv2D` is an :class:`~reluverify.model.layers.elementwise.ElementwiseLayer`: its
nonlinearity is one of the :data:`~reluverify.model.layers.elementwise.ACTIVATIONS` (the same
objects as :class:`~reluverify.model.layers.dense.Dense`), its linear part a
:class:`ConvMap`, which never forms the layer's dense matrix on the hot paths:

* ``forward`` is the convolution (the inputs of each output position gathered, one matrix product),
  ``backward`` (``A @ W``: back-substitution, gradients) the transposed convolution, ``interval``
  the convolution of the box centre with the kernel plus that of its radius with ``|kernel|``;
* ``csr`` writes each MILP row from the kernel and a gather table (which input each kernel entry
  of each output position reads): a row has at most ``C_in * kh * kw`` entries;
* ``matrix`` builds only the requested rows (a few at a time: LP rows, batched bounds).

A layer whose dense matrix is tiny (at most :data:`DENSE_LIMIT` entries) uses that matrix instead
(a :class:`~reluverify.model.layers.dense.DenseMap`): the same numbers, less overhead per call.

Tensors are channels-first, flattened row-major: an input ``(C_in, H, W)``, an output
``(C_out, H_out, W_out)``; importers translate channels-last layouts and flatten orders. Padding is
explicit zero padding ``(top, left, bottom, right)``; importers map ``valid``/``same``. The bias is
stored per output entry (``(C_out,)`` is broadcast over positions): a folded input normalisation
with zero padding makes border outputs' offsets differ from the centre's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...errors import NetworkError
from .base import IDX, widen
from .dense import affine_interval, dense_map
from .elementwise import ACTIVATIONS, ElementwiseActivation, ElementwiseLayer

#: Layers whose dense matrix has at most this many entries (512 KiB) work on that matrix, kept once:
#: for tiny layers the per-call cost of the kernel-offset loop (a few numpy calls per offset) is
#: larger than one small matrix product (measured: minimal distortion on a 36-input CNN with
#: 99 ReLUs spent 60 % of its time in those loops). Larger layers never form it.
DENSE_LIMIT = 1 << 16


_CHUNK = 1 << 22  # entries (32 MiB) of the per-offset products of one chunk of rows in conv_t


class _Geometry:
    """Shapes of one convolution and its gather table (``table[p, t]``: the flat input index read
    by kernel entry ``t = (c, i, j)`` at output position ``p = (oh, ow)``; -1 for padding)."""

    def __init__(self, kernel_shape: tuple, input_shape: tuple, stride: tuple, pads: tuple):
        self.co, self.c, self.kh, self.kw = kernel_shape
        _, self.h, self.w = input_shape
        self.sh, self.sw = stride
        self.pt, self.pl, self.pb, self.pr = pads
        self.hp, self.wp = self.h + self.pt + self.pb, self.w + self.pl + self.pr
        self.ho = (self.hp - self.kh) // self.sh + 1
        self.wo = (self.wp - self.kw) // self.sw + 1
        self.n_in = self.c * self.h * self.w
        self.positions = self.ho * self.wo
        self.n_out = self.co * self.positions
        self._table = None
        self._gather = None

    @property
    def table(self) -> np.ndarray:
        if self._table is None:
            oh, ow = np.divmod(np.arange(self.positions), self.wo)
            c, i, j = np.unravel_index(np.arange(self.c * self.kh * self.kw), (self.c, self.kh, self.kw))
            y = oh[:, None] * self.sh + i[None, :] - self.pt
            x = ow[:, None] * self.sw + j[None, :] - self.pl
            inside = (y >= 0) & (y < self.h) & (x >= 0) & (x < self.w)
            flat = (c[None, :] * self.h + y) * self.w + x
            self._table = np.where(inside, flat, -1).astype(np.int64)
        return self._table

    @property
    def gather(self) -> np.ndarray:
        """The table with padding pointing at index ``n_in`` (an appended 0)."""
        if self._gather is None:
            self._gather = np.where(self.table < 0, self.n_in, self.table)
        return self._gather

    def conv(self, h: np.ndarray, kernel: np.ndarray) -> np.ndarray:
        """The convolution (no bias) of ``h`` (..., n_in) -> (..., n_out): the inputs each output
        position reads, gathered through the table (padding reads an appended 0), times the
        kernel as one matrix product; rows in chunks of at most :data:`_CHUNK` gathered entries."""
        lead = h.shape[:-1]
        m = int(np.prod(lead, dtype=np.int64))
        flat = np.asarray(h, dtype=np.float64).reshape(m, self.n_in)
        kmat = kernel.reshape(self.co, -1).T
        table = self.gather
        out = np.empty((m, self.co, self.positions))
        step = max(1, _CHUNK // table.size)
        for r in range(0, m, step):
            part = flat[r:r + step]
            k = part.shape[0]
            padded = np.concatenate([part, np.zeros((k, 1))], axis=1)
            prod = padded[:, table].reshape(k * self.positions, -1) @ kmat
            out[r:r + k] = prod.reshape(k, self.positions, self.co).transpose(0, 2, 1)
        return out.reshape(lead + (self.n_out,))

    def conv_t(self, A: np.ndarray, kernel: np.ndarray) -> np.ndarray:
        """The transposed convolution: ``A`` (..., n_out) -> ``A @ W`` (..., n_in).

        One batched product ``kernel^T @ A`` gives every kernel offset's contribution per output
        position, added into a zero-padded channels-first stack with one strided add per offset;
        rows go in chunks so that the products stay under :data:`_CHUNK` entries."""
        lead = A.shape[:-1]
        m = int(np.prod(lead, dtype=np.int64))
        a = np.asarray(A, dtype=np.float64).reshape(m, self.co, self.positions)
        taps = kernel.transpose(2, 3, 1, 0).reshape(self.kh * self.kw * self.c, self.co)
        out = np.empty((m, self.c, self.h, self.w))
        step = max(1, _CHUNK // (taps.shape[0] * self.positions))
        for r in range(0, m, step):
            part = a[r:r + step]
            k = part.shape[0]
            full = np.matmul(taps, part).reshape(k, self.kh, self.kw, self.c, self.ho, self.wo)
            gp = np.zeros((k, self.c, self.hp, self.wp))
            for i in range(self.kh):
                for j in range(self.kw):
                    gp[:, :, i:i + self.sh * (self.ho - 1) + 1:self.sh,
                       j:j + self.sw * (self.wo - 1) + 1:self.sw] += full[:, i, j]
            out[r:r + k] = gp[:, :, self.pt:self.pt + self.h, self.pl:self.pl + self.w]
        return out.reshape(lead + (self.n_in,))

    def rows_of(self, rows: np.ndarray, kmat: np.ndarray) -> tuple:
        """``(values, inputs)`` of output entries ``rows`` (any shape): each (..., C_in*kh*kw),
        inputs -1 where the kernel entry reads padding."""
        co, p = np.divmod(rows, self.positions)
        return kmat[co], self.table[p]


def _as_pair(value, what: str) -> tuple:
    vals = tuple(int(v) for v in np.atleast_1d(value))
    if len(vals) == 1:
        vals = vals * 2
    if len(vals) != 2:
        raise NetworkError(f"a Conv2D {what} needs 1 or 2 integers, got {value!r}")
    return vals


@dataclass(frozen=True, eq=False)
class Conv2D(ElementwiseLayer):
    """A 2-D convolution (no groups, no dilation) followed by an activation.

    ``kernel``: ``(C_out, C_in, kh, kw)``; ``bias``: ``(C_out,)``, or one value per output entry
    (``(C_out, H_out, W_out)`` or flat), or None (zeros); ``input_shape``: ``(C_in, H, W)``
    (channels first); ``stride``: ``(sh, sw)`` or one integer; ``pads``: zero padding
    ``(top, left, bottom, right)`` (ONNX's ``pads`` order), or ``(ph, pw)``, or one integer;
    ``activation``: ``"relu"`` or ``"linear"``."""

    kernel: np.ndarray
    bias: np.ndarray
    input_shape: tuple
    stride: tuple = (1, 1)
    pads: tuple = (0, 0, 0, 0)
    activation: str = "relu"

    kind = "conv2d"
    state_keys = ("K", "b", "geometry")

    def __post_init__(self) -> None:
        k = np.array(self.kernel, dtype=np.float64, copy=True)
        if k.ndim != 4 or k.size == 0:
            raise NetworkError(f"a Conv2D kernel must have shape (C_out, C_in, kh, kw), got {k.shape}")
        shape = tuple(int(s) for s in np.atleast_1d(self.input_shape))
        if len(shape) != 3 or min(shape) <= 0:
            raise NetworkError(f"a Conv2D input_shape must be (C_in, H, W) with positive sizes, got {self.input_shape!r}")
        if shape[0] != k.shape[1]:
            raise NetworkError(f"a Conv2D kernel of shape {k.shape} reads {k.shape[1]} channels but the input "
                               f"shape {shape} has {shape[0]}")
        stride = _as_pair(self.stride, "stride")
        if min(stride) <= 0:
            raise NetworkError(f"a Conv2D stride must be positive, got {stride}")
        pads = tuple(int(v) for v in np.atleast_1d(self.pads))
        if len(pads) == 1:
            pads = pads * 4
        elif len(pads) == 2:
            pads = (pads[0], pads[1], pads[0], pads[1])
        if len(pads) != 4 or min(pads) < 0:
            raise NetworkError(f"Conv2D pads must be 4 non-negative integers (top, left, bottom, right), got "
                               f"{self.pads!r}")
        geo = _Geometry(k.shape, shape, stride, pads)
        if geo.ho <= 0 or geo.wo <= 0:
            raise NetworkError(f"a Conv2D kernel of size {k.shape[2:]} does not fit the input {shape} padded by "
                               f"{pads}")
        if self.bias is None:
            b = np.zeros(geo.n_out)
        else:
            b = np.array(self.bias, dtype=np.float64, copy=True)
            if b.shape == (geo.co,):
                b = np.repeat(b, geo.positions)
            elif b.size == geo.n_out and b.shape in ((geo.n_out,), (geo.co, geo.ho, geo.wo)):
                b = b.reshape(-1)
            else:
                raise NetworkError(f"a Conv2D bias must have shape ({geo.co},) or ({geo.co}, {geo.ho}, {geo.wo}), "
                                   f"got {b.shape}")
        if not np.all(np.isfinite(k)) or not np.all(np.isfinite(b)):
            bad = "kernel" if not np.all(np.isfinite(k)) else "bias"
            raise NetworkError(f"a Conv2D layer's {bad} contains NaN or infinite values")
        if not isinstance(self.activation, str) or self.activation not in ACTIVATIONS:
            raise NetworkError(f"unknown activation {self.activation!r}; supported activations are {tuple(ACTIVATIONS)}")
        k.setflags(write=False)
        b.setflags(write=False)
        kabs = np.abs(k)
        kabs.setflags(write=False)
        for name, value in (("kernel", k), ("bias", b), ("input_shape", shape), ("stride", stride),
                            ("pads", pads), ("_geo", geo), ("_kabs", kabs), ("_dense", None),
                            ("_kmat", k.reshape(geo.co, -1))):
            object.__setattr__(self, name, value)

    # ---------------------------------------------------------------- shape
    @property
    def n_in(self) -> int:
        return self._geo.n_in

    @property
    def n_out(self) -> int:
        return self._geo.n_out

    @property
    def output_shape(self) -> tuple:
        return (self._geo.co, self._geo.ho, self._geo.wo)

    @property
    def rule(self) -> ElementwiseActivation:
        return ACTIVATIONS[self.activation]

    def describe(self) -> str:
        return f"conv{self._geo.co}x{self._geo.kh}x{self._geo.kw}/{self.stride[0]}:{self.rule.name}"

    def without_activation(self) -> "Conv2D":
        return Conv2D(self.kernel, self.bias, self.input_shape, self.stride, self.pads, "linear")

    # ---------------------------------------------------------------- linear part
    def _small(self):
        """The dense matrix when the layer is tiny (see :data:`DENSE_LIMIT`), else None."""
        if self.n_out * self.n_in > DENSE_LIMIT:
            return None
        if self._dense is None:
            dense = ConvMap(self).matrix()
            dense.setflags(write=False)
            object.__setattr__(self, "_dense", dense)
        return self._dense

    def preactivation(self, h: np.ndarray) -> np.ndarray:
        small = self._small()
        if small is not None:
            return h @ small.T + self.bias
        return self._geo.conv(h, self.kernel) + self.bias

    def linear(self, rows=None, cols=None):
        small = self._small()
        if small is not None:
            return dense_map(small, self.bias, rows, cols)
        return ConvMap(self, rows, cols)

    def interval(self, lo: np.ndarray, hi: np.ndarray) -> tuple:
        small = self._small()
        if small is not None:
            return affine_interval(small, self.bias, lo, hi)
        return _conv_interval(self, lo, hi)

    def dense_matrix(self) -> np.ndarray:
        """The full dense matrix ``(n_out, n_in)`` (for tests and small layers only)."""
        return ConvMap(self).matrix()

    def conv_map(self, rows=None, cols=None) -> "ConvMap":
        """The convolution-shaped linear map, whatever the layer's size."""
        return ConvMap(self, rows, cols)

    # ---------------------------------------------------------------- persistence
    def state(self) -> tuple:
        geo = np.array(self.input_shape + self.stride + self.pads, dtype=np.int64)
        return self.activation, {"K": self.kernel, "b": self.bias, "geometry": geo}

    @classmethod
    def from_state(cls, spec: str, arrays: dict) -> "Conv2D":
        g = [int(v) for v in np.asarray(arrays["geometry"]).reshape(-1)]
        if len(g) != 9:
            raise NetworkError(f"a Conv2D layer's geometry must hold 9 integers, got {len(g)}")
        return cls(arrays["K"], arrays["b"], tuple(g[:3]), tuple(g[3:5]), tuple(g[5:]), spec)


def _conv_interval(layer: Conv2D, lo: np.ndarray, hi: np.ndarray) -> tuple:
    """Sound bounds of the pre-activations over ``lo <= h <= hi`` (batched or not), widened."""
    geo = layer._geo
    lo = np.asarray(lo, dtype=np.float64)
    hi = np.asarray(hi, dtype=np.float64)
    mid, rad = 0.5 * (lo + hi), 0.5 * (hi - lo)
    centre = geo.conv(mid, layer.kernel) + layer.bias
    spread = geo.conv(rad, layer._kabs)
    magnitude = geo.conv(np.maximum(np.abs(lo), np.abs(hi)), layer._kabs) + np.abs(layer.bias)
    return widen(centre - spread, centre + spread, magnitude)


class ConvMap:
    """The :class:`~reluverify.model.layers.base.LinearMap` of a :class:`Conv2D`, restricted to
    output entries ``rows`` (1-D; 2-D for :meth:`matrix` and :attr:`bias` only) and input entries
    ``cols`` (the others taken as 0)."""

    __slots__ = ("layer", "rows", "cols")

    def __init__(self, layer: Conv2D, rows=None, cols=None):
        self.layer = layer
        self.rows = None if rows is None else np.asarray(rows, dtype=np.int64)
        self.cols = None if cols is None else np.asarray(cols, dtype=np.int64)

    def _scatter_in(self, h: np.ndarray) -> np.ndarray:
        if self.cols is None:
            return h
        full = np.zeros(h.shape[:-1] + (self.layer.n_in,))
        full[..., self.cols] = h
        return full

    def forward(self, h: np.ndarray) -> np.ndarray:
        z = self.layer._geo.conv(self._scatter_in(np.asarray(h, dtype=np.float64)), self.layer.kernel) + self.layer.bias
        return z if self.rows is None else z[..., self.rows]

    def backward(self, A: np.ndarray) -> np.ndarray:
        A = np.asarray(A, dtype=np.float64)
        if self.rows is not None:
            full = np.zeros(A.shape[:-1] + (self.layer.n_out,))
            full[..., self.rows] = A
            A = full
        g = self.layer._geo.conv_t(A, self.layer.kernel)
        return g if self.cols is None else g[..., self.cols]

    @property
    def bias(self) -> np.ndarray:
        return self.layer.bias if self.rows is None else self.layer.bias[self.rows]

    def bias_term(self, A: np.ndarray) -> np.ndarray:
        return np.asarray(A) @ self.bias

    def matrix(self) -> np.ndarray:
        layer = self.layer
        n_in = layer.n_in
        rows = np.arange(layer.n_out) if self.rows is None else self.rows
        vals, ins = layer._geo.rows_of(rows, layer._kmat)
        out = np.zeros(rows.shape + (n_in + 1,))
        # within a row each kernel entry reads its own input (padding all goes to the last column)
        np.put_along_axis(out, np.where(ins < 0, n_in, ins), np.where(ins < 0, 0.0, vals), axis=-1)
        out = out[..., :n_in]
        return out if self.cols is None else out[..., self.cols]

    def interval(self, lo: np.ndarray, hi: np.ndarray) -> tuple:
        zl, zu = _conv_interval(self.layer, self._scatter_in(np.asarray(lo, np.float64)),
                                self._scatter_in(np.asarray(hi, np.float64)))
        if self.rows is None:
            return zl, zu
        return zl[..., self.rows], zu[..., self.rows]

    def csr(self, h_ids: np.ndarray, extra_values: list, extra_ids: list) -> tuple:
        """CSR rows over MILP columns (see :func:`~reluverify.model.layers.base.csr_rows`): the
        kernel entries of each row that read a selected input (``h_ids`` aligned with ``cols``),
        then the extras."""
        layer = self.layer
        n_in = layer.n_in
        rows = np.arange(layer.n_out) if self.rows is None else self.rows
        vals, ins = layer._geo.rows_of(rows, layer._kmat)
        where = np.full(n_in + 1, -1, dtype=np.int64)  # input entry -> position among the columns
        if self.cols is None:
            where[:n_in] = np.arange(n_in)
        else:
            where[self.cols] = np.arange(self.cols.size)
        pos = where[np.where(ins < 0, n_in, ins)]
        m, width = rows.size, vals.shape[1] + len(extra_values)
        value = np.zeros((m, width))
        index = np.zeros((m, width), dtype=IDX)
        keep = np.ones((m, width), dtype=bool)
        value[:, :vals.shape[1]] = vals
        index[:, :vals.shape[1]] = np.asarray(h_ids, dtype=IDX)[np.maximum(pos, 0)] if np.size(h_ids) else 0
        keep[:, :vals.shape[1]] = (pos >= 0) & (vals != 0)
        for t, (v, ids) in enumerate(zip(extra_values, extra_ids)):
            value[:, vals.shape[1] + t] = v
            index[:, vals.shape[1] + t] = ids
        start = np.zeros(m + 1, dtype=np.int64)
        np.cumsum(np.count_nonzero(keep, axis=1), out=start[1:])
        return start, index[keep], value[keep]
