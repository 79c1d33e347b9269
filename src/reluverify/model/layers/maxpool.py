"""Two-dimensional max pooling: each output is the largest input of its window.

:class:`MaxPool2D` is the first kind whose nonlinearity is not elementwise (``n_pre != n_out``).
Its pre-activation ``z`` is a copy of the window entries: one entry per (window, position in the
window) that reads a real input (padding is ignored, as in ONNX, PyTorch and Keras), grouped by
window, windows in output order (channels first, row-major), entries of a window in row-major
order. So ``z = G h`` for a 0/1 selection matrix ``G`` (:class:`GatherMap`: no bias, never formed
densely on the hot paths) and ``h_w = max_{i in window w} z_i``.

Rules, from pre-activation bounds ``l <= z <= u`` (``L_w``/``U_w`` the largest ``l``/``u`` of
window ``w``, ``j*`` the entry with the largest lower bound):

* an entry whose ``u_i <= L_w`` (``i != j*``) is never larger than ``z_{j*}``: it is *ruled out*
  (phase ``INACTIVE``); a window left with one entry is that entry exactly (``ACTIVE``); the
  entries of windows with two or more survivors are ``UNSTABLE``;
* interval: ``h_w`` in ``[L_w, U_w]`` (exact for a box);
* relaxation (back-substitution, DeepPoly's): ``h_w >= z_{j*}``, ``h_w <= U_w``; ``h_w = z_{j*}``
  when one entry survives. The optimised bound leaves such layers at this relaxation
  (``elementwise = False``);
* MILP (as MIPVerify, Tjeng et al. 2019): one binary ``d_i`` per surviving entry of a window with
  two or more survivors, ``sum d_i = 1``, ``y >= z_i``, ``y <= z_i + M_i (1 - d_i)`` with
  ``M_i = max(0, max_{j != i} u_j - l_i)`` (over the survivors), ``y <= sum d_i u_i``, and
  ``L_w <= y <= U_w``; a window with one survivor is the row ``y = z_{j*}``;
* LP rows: ``y >= z_i`` for the survivors and ``y <= L_w + sum_i (z_i - l_i)`` (valid: the
  largest entry's term alone reaches it), with ``L_w <= y <= U_w``.

Interval bounds of ``z`` are exact (copies of the previous layer's output range), so bound
strategies do not back-substitute or LP-tighten them (``interval_exact``); ReLU branching does
not split these entries.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...errors import NetworkError
from .base import ACTIVE, IDX, INACTIVE, UNSTABLE, Layer, LpRows, MilpPlan, RowBlock

_EMPTY = np.array([], dtype=np.int64)


def _ints(value, n_ok: tuple, what: str) -> tuple:
    try:
        arr = np.atleast_1d(np.asarray(value))
        if arr.ndim != 1 or arr.dtype.kind not in "iuf" or not np.all(np.mod(arr.astype(np.float64), 1) == 0):
            raise ValueError
        vals = tuple(int(v) for v in arr)
    except (TypeError, ValueError):
        raise NetworkError(f"a MaxPool2D {what} must be integers, got {value!r}") from None
    if len(vals) not in n_ok:
        raise NetworkError(f"a MaxPool2D {what} needs {' or '.join(map(str, n_ok))} integers, got {value!r}")
    return vals


class _Windows:
    """The windows of one max pooling: ``table[w, t]`` is the flat input read by slot ``t = (i, j)``
    of window ``w`` (-1 for padding); the pre-activation entries are the table's real entries in
    row-major order (``src``: their input, ``win``: their window, ``start``: each window's first
    entry, ``slot``: their slot, ``pre_table``: the table in pre-activation indices, ``n_pre``
    for padding)."""

    def __init__(self, kernel, input_shape, stride, pads):
        self.kh, self.kw = kernel
        self.c, self.h, self.w = input_shape
        self.sh, self.sw = stride
        self.pt, self.pl, self.pb, self.pr = pads
        self.ho = (self.h + self.pt + self.pb - self.kh) // self.sh + 1
        self.wo = (self.w + self.pl + self.pr - self.kw) // self.sw + 1
        self.n_in = self.c * self.h * self.w
        self.n_out = self.c * self.ho * self.wo

    def build(self) -> None:
        c, oh, ow = np.unravel_index(np.arange(self.n_out), (self.c, self.ho, self.wo))
        i, j = np.divmod(np.arange(self.kh * self.kw), self.kw)
        y = oh[:, None] * self.sh + i[None, :] - self.pt
        x = ow[:, None] * self.sw + j[None, :] - self.pl
        inside = (y >= 0) & (y < self.h) & (x >= 0) & (x < self.w)
        table = np.where(inside, (c[:, None] * self.h + y) * self.w + x, -1)
        counts = inside.sum(axis=1)
        if np.any(counts == 0):
            raise NetworkError("a MaxPool2D window lies entirely in the padding; use padding smaller than the "
                               "window")
        self.counts = counts.astype(np.int64)
        self.start = np.zeros(self.n_out + 1, dtype=np.int64)
        np.cumsum(self.counts, out=self.start[1:])
        self.n_pre = int(self.start[-1])
        self.src = table[inside].astype(np.int64)
        self.win = np.repeat(np.arange(self.n_out), self.counts)
        self.slot = np.broadcast_to(np.arange(self.kh * self.kw), table.shape)[inside]
        pre_table = np.full(table.shape, self.n_pre, dtype=np.int64)
        pre_table[inside] = np.arange(self.n_pre)
        self.pre_table = pre_table
        # within one slot, different windows read different inputs: the transpose of the gather
        # is one scatter per slot (one scatter in all when no input is read twice)
        self.injective = np.unique(self.src).size == self.src.size


class _Stats:
    """Per-window facts from pre-activation bounds ``zl``/``zu`` (shape (..., n_pre))."""

    def __init__(self, win: _Windows, zl: np.ndarray, zu: np.ndarray):
        zl = np.asarray(zl, dtype=np.float64)
        zu = np.asarray(zu, dtype=np.float64)
        starts = win.start[:-1]
        self.lmax = np.maximum.reduceat(zl, starts, axis=-1)
        self.umax = np.maximum.reduceat(zu, starts, axis=-1)
        pad = np.full(zl.shape[:-1] + (1,), -np.inf)
        slot = np.argmax(np.concatenate([zl, pad], axis=-1)[..., win.pre_table], axis=-1)
        self.star = win.pre_table[np.arange(win.n_out), slot]  # (..., n_out) pre index of j*
        is_star = np.zeros(zl.shape, dtype=bool)
        np.put_along_axis(is_star, self.star, True, axis=-1)
        self.survive = is_star | (zu > self.lmax[..., win.win])
        self.n_survive = np.add.reduceat(self.survive.astype(np.int64), starts, axis=-1)
        self.exact = self.n_survive == 1  # (..., n_out)


class MaxPoolRelaxation:
    """Back-substitution through max pooling: ``h_w >= z_{j*}`` and ``h_w <= U_w`` (``h_w = z_{j*}``
    where ``exact``) for the windows ``keep``; ``pre_index`` lists their entries, ``pos`` (..., W)
    is each window's ``j*`` as a position in ``pre_index``."""

    elementwise = False

    def __init__(self, pre_index: np.ndarray, pos: np.ndarray, exact: np.ndarray, top: np.ndarray):
        self.pre_index = pre_index
        self.pos = pos
        self.exact = exact
        self.top = np.where(exact, 0.0, top)

    def _fit(self, a: np.ndarray, A: np.ndarray) -> np.ndarray:
        if A.ndim > a.ndim and a.ndim > 1:
            a = a[..., None, :]
        return np.broadcast_to(a, A.shape)

    def _bound(self, A: np.ndarray, lower: bool, offset: bool = True) -> tuple:
        A = np.asarray(A, dtype=np.float64)
        exact = self._fit(self.exact, A)
        # coefficient on z_{j*}: all of A where exact, else the side bounded by z_{j*}
        side = np.maximum(A, 0.0) if lower else np.minimum(A, 0.0)
        D = np.zeros(A.shape[:-1] + (self.pre_index.size,))
        np.put_along_axis(D, self._fit(self.pos, A), np.where(exact, A, side), axis=-1)
        if not offset:
            return D, None
        rest = A - side  # the side bounded by the constant U_w (0 where exact: top is 0 there)
        return D, np.sum(rest * self._fit(self.top, A), axis=-1)

    def lower(self, A: np.ndarray, offset: bool = True) -> tuple:
        """``(D, c)`` with ``A·h >= D·z + c``."""
        return self._bound(A, True, offset)

    def upper(self, A: np.ndarray) -> tuple:
        """``(D, c)`` with ``A·h <= D·z + c``."""
        return self._bound(A, False)

    def lower_stacked(self, A: np.ndarray) -> tuple:
        return self._bound(A, True)


class GatherMap:
    """``z = h[src]`` (the :class:`~reluverify.model.layers.base.LinearMap` of :class:`MaxPool2D`),
    restricted to pre-activation entries ``rows`` (1-D; 2-D for :meth:`matrix` and :attr:`bias`
    only) and input entries ``cols`` (the others taken as 0)."""

    __slots__ = ("win", "rows", "cols", "src")

    def __init__(self, win: _Windows, rows=None, cols=None):
        self.win = win
        self.rows = None if rows is None else np.asarray(rows, dtype=np.int64)
        self.cols = None if cols is None else np.asarray(cols, dtype=np.int64)
        self.src = win.src if self.rows is None else win.src[self.rows]

    def _scatter_in(self, h: np.ndarray) -> np.ndarray:
        h = np.asarray(h, dtype=np.float64)
        if self.cols is None:
            return h
        full = np.zeros(h.shape[:-1] + (self.win.n_in,))
        full[..., self.cols] = h
        return full

    def forward(self, h: np.ndarray) -> np.ndarray:
        return self._scatter_in(h)[..., self.src]

    def backward(self, A: np.ndarray) -> np.ndarray:
        A = np.asarray(A, dtype=np.float64)
        out = np.zeros(A.shape[:-1] + (self.win.n_in,))
        if self.win.injective:
            out[..., self.src] = A
        else:
            slot = self.win.slot if self.rows is None else self.win.slot[self.rows]
            for t in np.unique(slot):
                sel = np.flatnonzero(slot == t)
                out[..., self.src[sel]] += A[..., sel]
        return out if self.cols is None else out[..., self.cols]

    @property
    def bias(self) -> np.ndarray:
        return np.zeros(self.src.shape)

    def bias_term(self, A: np.ndarray) -> np.ndarray:
        return np.zeros(np.shape(A)[:-1])

    def matrix(self) -> np.ndarray:
        out = np.zeros(self.src.shape + (self.win.n_in,))
        np.put_along_axis(out, self.src[..., None], 1.0, axis=-1)
        return out if self.cols is None else out[..., self.cols]

    def interval(self, lo: np.ndarray, hi: np.ndarray) -> tuple:
        return self.forward(lo), self.forward(hi)  # copies: exact

    def column_of(self, h_ids: np.ndarray) -> np.ndarray:
        """The MILP column of each selected entry's input (-1: the input is the constant 0)."""
        where = np.full(self.win.n_in, -1, dtype=np.int64)
        where[np.arange(self.win.n_in) if self.cols is None else self.cols] = h_ids
        return where[self.src]

    def csr(self, h_ids: np.ndarray, extra_values: list, extra_ids: list) -> tuple:
        col = self.column_of(h_ids)
        m = col.size
        value = np.column_stack([np.ones(m)] + [np.asarray(v, np.float64) * np.ones(m) for v in extra_values])
        index = np.column_stack([col] + [np.asarray(i) * np.ones(m, dtype=np.int64) for i in extra_ids])
        keep = np.ones(value.shape, dtype=bool)
        keep[:, 0] = col >= 0
        start = np.zeros(m + 1, dtype=np.int64)
        np.cumsum(keep.sum(axis=1), out=start[1:])
        return start, index[keep].astype(IDX), value[keep]


def _rows(name, neurons, entries: list, constant, sense) -> RowBlock:
    """A row block from per-row term lists: ``entries`` is a list of ``(row, column, value)``
    arrays (rows ascending positions into ``neurons``); terms on column -1 (a constant 0) dropped."""
    r = np.concatenate([e[0] for e in entries]).astype(np.int64)
    c = np.concatenate([e[1] for e in entries]).astype(np.int64)
    v = np.concatenate([np.broadcast_to(np.asarray(e[2], np.float64), np.shape(e[0])) for e in entries])
    ok = c >= 0
    r, c, v = r[ok], c[ok], v[ok]
    order = np.argsort(r, kind="stable")
    r, c, v = r[order], c[order], v[order]
    start = np.zeros(len(neurons) + 1, dtype=np.int64)
    np.cumsum(np.bincount(r, minlength=len(neurons)), out=start[1:])
    return RowBlock(name, np.asarray(neurons, dtype=np.int64), start, c.astype(IDX), v,
                    np.asarray(constant, dtype=np.float64), sense)


@dataclass(frozen=True, eq=False)
class MaxPool2D(Layer):
    """2-D max pooling on a channels-first input (no dilation, no ``ceil_mode``).

    ``kernel``: the window ``(kh, kw)`` or one integer; ``input_shape``: ``(C, H, W)``;
    ``stride``: ``(sh, sw)``, one integer, or None (the window size, as in PyTorch and Keras);
    ``pads``: padding ``(top, left, bottom, right)`` (ONNX's ``pads`` order), ``(ph, pw)`` or one
    integer, each smaller than the window along its axis; padded positions never win (as ONNX's,
    PyTorch's and Keras's ``-inf`` padding). The output is ``(C, H_out, W_out)`` with
    ``H_out = (H + top + bottom - kh) // sh + 1`` (floor: ``ceil_mode=0``), flattened row-major."""

    kernel: tuple
    input_shape: tuple
    stride: tuple = None
    pads: tuple = (0, 0, 0, 0)

    kind = "maxpool2d"
    state_keys = ("geometry",)
    elementwise = False
    interval_exact = True

    def __post_init__(self) -> None:
        kernel = _ints(self.kernel, (1, 2), "kernel")
        kernel = kernel * 2 if len(kernel) == 1 else kernel
        if min(kernel) <= 0:
            raise NetworkError(f"a MaxPool2D kernel must be positive, got {self.kernel!r}")
        shape = _ints(self.input_shape, (3,), "input_shape (C, H, W)")
        if min(shape) <= 0:
            raise NetworkError(f"a MaxPool2D input_shape must be (C, H, W) with positive sizes, got "
                               f"{self.input_shape!r}")
        stride = kernel if self.stride is None else _ints(self.stride, (1, 2), "stride")
        stride = stride * 2 if len(stride) == 1 else stride
        if min(stride) <= 0:
            raise NetworkError(f"a MaxPool2D stride must be positive, got {self.stride!r}")
        pads = _ints(self.pads, (1, 2, 4), "pads (top, left, bottom, right)")
        if len(pads) == 1:
            pads = pads * 4
        elif len(pads) == 2:
            pads = (pads[0], pads[1], pads[0], pads[1])
        if min(pads) < 0:
            raise NetworkError(f"MaxPool2D pads must be non-negative, got {self.pads!r}")
        if max(pads[0], pads[2]) >= kernel[0] or max(pads[1], pads[3]) >= kernel[1]:
            raise NetworkError(f"MaxPool2D pads {pads} must be smaller than the window {kernel} along each axis "
                               "(a window of padding only has no maximum)")
        win = _Windows(kernel, shape, stride, pads)
        if win.ho <= 0 or win.wo <= 0:
            raise NetworkError(f"a MaxPool2D window {kernel} does not fit the input {shape} padded by {pads}")
        win.build()
        for name, value in (("kernel", kernel), ("input_shape", shape), ("stride", stride), ("pads", pads),
                            ("_win", win)):
            object.__setattr__(self, name, value)

    # ---------------------------------------------------------------- shape
    @property
    def n_in(self) -> int:
        return self._win.n_in

    @property
    def n_out(self) -> int:
        return self._win.n_out

    @property
    def n_pre(self) -> int:
        return self._win.n_pre

    @property
    def n_nonlinear(self) -> int:
        return self._win.n_pre

    @property
    def output_shape(self) -> tuple:
        return (self._win.c, self._win.ho, self._win.wo)

    def describe(self) -> str:
        return f"maxpool{self.kernel[0]}x{self.kernel[1]}/{self.stride[0]}"

    # ---------------------------------------------------------------- forward
    def preactivation(self, h: np.ndarray) -> np.ndarray:
        return np.asarray(h, dtype=np.float64)[..., self._win.src]

    def activate(self, z: np.ndarray) -> np.ndarray:
        return np.maximum.reduceat(np.asarray(z, dtype=np.float64), self._win.start[:-1], axis=-1)

    def _argmax(self, z: np.ndarray) -> np.ndarray:
        """Per window, the pre-activation index of its (first) largest entry."""
        win = self._win
        pad = np.full(z.shape[:-1] + (1,), -np.inf)
        slot = np.argmax(np.concatenate([z, pad], axis=-1)[..., win.pre_table], axis=-1)
        return win.pre_table[np.arange(win.n_out), slot]

    def vjp(self, z: np.ndarray, g: np.ndarray) -> np.ndarray:
        z = np.asarray(z, dtype=np.float64)
        g = np.asarray(g, dtype=np.float64)
        dz = np.zeros(np.broadcast_shapes(z.shape[:-1], g.shape[:-1]) + (self.n_pre,))
        idx = np.broadcast_to(self._argmax(z), dz.shape[:-1] + (self.n_out,))
        np.put_along_axis(dz, idx, np.broadcast_to(g, idx.shape), axis=-1)
        return self.linear().backward(dz)

    # ---------------------------------------------------------------- linear part
    def linear(self, rows=None, cols=None) -> GatherMap:
        return GatherMap(self._win, rows, cols)

    def interval(self, lo: np.ndarray, hi: np.ndarray) -> tuple:
        return self.preactivation(lo), self.preactivation(hi)

    # ---------------------------------------------------------------- nonlinear part
    def output_range(self, zl, zu) -> tuple:
        return self.activate(zl), self.activate(zu)

    def phases(self, zl, zu) -> np.ndarray:
        s = _Stats(self._win, zl, zu)
        out = np.full(np.shape(zl), INACTIVE, dtype=np.int8)
        one = s.exact[..., self._win.win]
        out[s.survive & one] = ACTIVE
        out[s.survive & ~one] = UNSTABLE
        return out

    def constant_zero(self, zl, zu) -> np.ndarray:
        starts = self._win.start[:-1]
        return (np.maximum.reduceat(zu, starts, axis=-1) <= 0) & (np.maximum.reduceat(zl, starts, axis=-1) >= 0)

    def relaxation(self, zl, zu, keep=None, parallel: bool = False) -> MaxPoolRelaxation:
        win = self._win
        s = _Stats(win, zl, zu)
        if keep is None:
            keep = np.arange(win.n_out)
            pre_index = np.arange(win.n_pre)
            pos = s.star
        else:
            keep = np.asarray(keep, dtype=np.int64)
            counts = win.counts[keep]
            first = np.cumsum(counts) - counts  # each kept window's first position in pre_index
            pre_index = np.repeat(win.start[keep] - first, counts) + np.arange(int(counts.sum()))
            pos = s.star[..., keep] - win.start[keep] + first
        return MaxPoolRelaxation(pre_index, pos, s.exact[..., keep], s.umax[..., keep])

    # ---------------------------------------------------------------- MILP and LP
    def milp_plan(self, zl, zu, last: bool) -> MilpPlan:
        s = _Stats(self._win, zl, zu)
        zero = self.constant_zero(zl, zu)
        keep = np.arange(self.n_out) if last else np.flatnonzero(~zero)
        fixed = np.flatnonzero(zero) if last else _EMPTY
        live = np.ones(self.n_out, dtype=bool)
        live[fixed] = False
        binary = np.flatnonzero(s.survive & ~s.exact[self._win.win] & live[self._win.win])
        return MilpPlan(keep, binary, s.lmax[keep], s.umax[keep], fixed, detail=(s, live))

    def milp_rows(self, zl, zu, plan, h_idx, h_ids, y_ids, z_ids) -> list:
        win = self._win
        s, live = plan.detail
        zl = np.asarray(zl, dtype=np.float64)
        zu = np.asarray(zu, dtype=np.float64)
        full = h_idx.size == self.n_in and np.array_equal(h_idx, np.arange(self.n_in))
        col = self.linear(cols=None if full else h_idx).column_of(h_ids)  # column of each z entry
        # windows with one survivor: y - z_{j*} == 0
        ex = np.flatnonzero(s.exact & live)
        r = np.arange(ex.size)
        blocks = [_rows("pool_equal", ex, [(r, y_ids[ex], 1.0), (r, col[s.star[ex]], -1.0)], np.zeros(ex.size), "==")]
        # windows with binaries, over their surviving entries i (rows numbered by entry)
        ent = plan.binary
        w = win.win[ent]
        r = np.arange(ent.size)
        # y - z_i >= 0
        blocks.append(_rows("pool_lower", ent, [(r, y_ids[w], 1.0), (r, col[ent], -1.0)], np.zeros(ent.size), ">="))
        # y <= z_i + M_i (1 - d_i)  <=>  z_i - y - M_i d_i + M_i >= 0
        u_s = np.where(s.survive, zu, -np.inf)
        top = np.maximum.reduceat(u_s, win.start[:-1])
        arg = self._argmax(u_s)  # the entry holding top
        second = np.maximum.reduceat(np.where(np.isin(np.arange(self.n_pre), arg), -np.inf, u_s), win.start[:-1])
        other = np.where(arg[w] == ent, second[w], top[w])  # largest u of the window's other survivors
        big_m = np.maximum(0.0, other - zl[ent])
        blocks.append(_rows("pool_upper", ent, [(r, col[ent], 1.0), (r, y_ids[w], -1.0), (r, z_ids[ent], -big_m)],
                            big_m, ">="))
        # per window: sum d_i == 1 and y <= sum d_i u_i
        ws = np.unique(w)
        rw = np.searchsorted(ws, w)
        blocks.append(_rows("pool_choice", ws, [(rw, z_ids[ent], 1.0)], -np.ones(ws.size), "=="))
        blocks.append(_rows("pool_upper_u", ws, [(np.arange(ws.size), y_ids[ws], 1.0), (rw, z_ids[ent], -zu[ent])],
                            np.zeros(ws.size), "<="))
        return blocks

    def lp_rows(self, zl, zu, prev_idx) -> LpRows:
        win = self._win
        s = _Stats(win, zl, zu)
        keep = np.flatnonzero(~self.constant_zero(zl, zu))
        pos = np.full(self.n_out, -1, dtype=np.int64)
        pos[keep] = np.arange(keep.size)
        G = self.linear(cols=prev_idx).matrix()  # (n_pre, len(prev_idx)): z = G v
        kept = pos[win.win] >= 0
        ent = np.flatnonzero(s.survive & kept)  # y >= z_i (y = z_{j*} where exact)
        w = win.win[ent]
        exact = s.exact[w]
        loose = np.unique(w[~exact])  # y <= L + sum_i (z_i - l_i)
        R = ent.size + loose.size
        prev = np.zeros((R, G.shape[1]))
        own = np.zeros((R, keep.size))
        lower = np.zeros(ent.size)
        upper = np.where(exact, 0.0, np.inf)
        prev[:ent.size] = -G[ent]
        own[np.arange(ent.size), pos[w]] = 1.0
        if loose.size:
            rows = ent.size + np.searchsorted(loose, w[~exact])
            np.add.at(prev, rows, -G[ent[~exact]])
            own[ent.size + np.arange(loose.size), pos[loose]] = 1.0
            off = np.zeros(self.n_out)
            np.add.at(off, w[~exact], zl[ent[~exact]])
            lower = np.concatenate([lower, np.full(loose.size, -np.inf)])
            upper = np.concatenate([upper, s.lmax[loose] - off[loose]])
        return LpRows(keep, s.lmax[keep], s.umax[keep], prev, own, lower, upper)

    # ---------------------------------------------------------------- persistence
    def state(self) -> tuple:
        geo = np.array(self.kernel + self.input_shape + self.stride + self.pads, dtype=np.int64)
        return "max", {"geometry": geo}

    @classmethod
    def from_state(cls, spec: str, arrays: dict) -> "MaxPool2D":
        g = [int(v) for v in np.asarray(arrays["geometry"]).reshape(-1)]
        if len(g) != 11:
            raise NetworkError(f"a MaxPool2D layer's geometry must hold 11 integers, got {len(g)}")
        return cls(tuple(g[:2]), tuple(g[2:5]), tuple(g[5:7]), tuple(g[7:]))
