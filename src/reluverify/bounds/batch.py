"""Symbolic bounds for many input boxes at once (the workhorse of input-domain splitting).

The same back-substitution as :mod:`reluverify.bounds.symbolic` (each layer's relaxation —
CROWN/DeepPoly for a ReLU — and transposed linear map, intersected with interval bounds, widened
for float64 rounding), vectorised over a batch
of ``B`` boxes: arrays carry a leading batch axis. For networks with few inputs (ACAS Xu has 5),
thousands of sub-boxes are bounded per second, which is what makes splitting the input box pay.

:func:`batch_bounds` gives every neuron's pre-activation bounds per box; :func:`batch_linear_bounds`
bounds linear functions ``a_x x + a_y y`` of the inputs and outputs over each box, and also returns
the linear lower bound's input coefficients (the "direction" a splitting heuristic looks at).
"""

from __future__ import annotations

import numpy as np

from ..model import Network
from ..model.layers import UNSTABLE
from .interval import widen


def _one_box(lo: np.ndarray) -> bool:
    """Whether every row of ``lo`` is the same box (a broadcast view, as in ReLU branching)."""
    return lo.shape[0] == 1 or lo.strides[0] == 0


def live_outputs(layer, lower: np.ndarray, upper: np.ndarray, leave_out: bool = True) -> np.ndarray:
    """The outputs of ``layer`` that are not constant zero in every box (all of them with
    ``leave_out=False``, an ablation: the bounds are the same, the walk slower): the columns a
    back-substitution walk carries."""
    if not leave_out:
        return np.arange(layer.n_out)
    zero = layer.constant_zero(lower, upper)
    return np.flatnonzero(~np.all(zero, axis=0) if zero.ndim > 1 else ~zero)


def _concretise_min(A: np.ndarray, c: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple:
    """``min_{lo <= x <= hi} A x + c`` per box and row (A: (B, m, n), c: (B, m), lo/hi: (B, n)),
    and the magnitude of the terms summed (for the rounding widening)."""
    if _one_box(lo) and _one_box(hi):  # one box for all: matrix-vector products, one |A|
        B, m, n = A.shape
        flat = A.reshape(B * m, n)
        absA = np.abs(flat)
        mid, rad = 0.5 * (lo[0] + hi[0]), 0.5 * (hi[0] - lo[0])
        lb = (flat @ mid - absA @ rad).reshape(B, m) + c
        mag = (absA @ np.maximum(np.abs(lo[0]), np.abs(hi[0]))).reshape(B, m) + np.abs(c)
        return lb, mag
    lb = (np.einsum("bmn,bn->bm", np.maximum(A, 0.0), lo)
          + np.einsum("bmn,bn->bm", np.minimum(A, 0.0), hi) + c)
    mag = np.einsum("bmn,bn->bm", np.abs(A), np.maximum(np.abs(lo), np.abs(hi))) + np.abs(c)
    return lb, mag


def _back_substitute(network: Network, k: int, lowers: list, uppers: list, weight: np.ndarray,
                     bias: np.ndarray, lo: np.ndarray, hi: np.ndarray, upper: bool = True,
                     parallel: bool = False, leave_out: bool = True) -> tuple:
    """Lower (and upper) symbolic bounds of ``weight @ h_{k-1} + bias`` over each box.

    ``weight`` is (m, n_{k-1}) or batched (B, m, n_{k-1}); ``lowers``/``uppers`` hold (B, n_j)
    pre-activation bounds of layers ``0..k-1``. Returns ``(lb, ub, A_lo, c_lo)`` with ``lb``/``ub`` of
    shape (B, m) (``ub`` None unless asked) and the lower bound's input coefficients ``A_lo``.
    """
    B = lo.shape[0]
    # an output that is constant zero in every box (an inactive ReLU) has relaxation 0: its column
    # of the coefficients is exactly 0, so the walk carries only the other columns of each layer
    keep = [live_outputs(network.layers[j], lowers[j], uppers[j], leave_out) for j in range(k)]
    W = np.broadcast_to(weight, (B,) + weight.shape[-2:]) if weight.ndim == 2 else weight
    m = W.shape[1]
    if k:
        W = W[:, :, keep[k - 1]]
    c = np.broadcast_to(bias, (B, m)).astype(np.float64)
    # an upper bound of f is minus the lower bound of -f: stack both and walk back once
    A = np.concatenate([W, -W], axis=1) if upper else np.array(W, dtype=np.float64)
    c = np.concatenate([c, -c], axis=1) if upper else c
    M = A.shape[1]
    for j in range(k - 1, -1, -1):
        prev = network.layers[j]
        rel = prev.relaxation(lowers[j], uppers[j], keep=keep[j], parallel=parallel)
        D, off = rel.lower_stacked(A)
        c = c + off
        lin = prev.linear(rows=keep[j] if rel.pre_index is None else rel.pre_index,
                          cols=keep[j - 1] if j else None)
        c = c + lin.bias_term(D)
        # one large matrix product instead of B small ones
        A = lin.backward(D.reshape(B * M, -1)).reshape(B, M, -1)
    lb_all, mag = _concretise_min(A, c, lo, hi)
    lb, _ = widen(lb_all[:, :m], lb_all[:, :m], mag[:, :m])
    ub = None
    if upper:
        ub = widen(-lb_all[:, m:], -lb_all[:, m:], mag[:, m:])[1]
    return lb, ub, A[:, :m], c[:, :m]


def batch_bounds(network: Network, lo: np.ndarray, hi: np.ndarray, parent: tuple | None = None,
                 start: int = 0, unstable_only: bool = False, leave_out_inactive: bool = True) -> tuple:
    """Pre-activation bounds of every layer over each box ``[lo[b], hi[b]]``.

    Interval propagation intersected with back-substitution. Neurons that the cheap bounds already
    prove inactive are not back-substituted (their output is 0 whatever their bounds); the rest are
    gathered per box, so deep sub-boxes where many neurons are off cost less.
    ``parent=(lowers, uppers)`` are bounds valid for each box (e.g. those of the box it was split
    from): results are intersected with them; with ``start=k`` layers before ``k`` are taken from
    ``parent`` as they are (e.g. after a ReLU split in layer ``k - 1``, which cannot change the
    back-substituted bounds of layers up to ``k - 1``). ``unstable_only`` back-substitutes only
    neurons whose interval bounds straddle 0 (active ones keep their interval bounds: cheaper,
    and the relaxation of an active neuron is exact whatever its bounds). Returns ``(lowers, uppers)``: lists (one per layer)
    of arrays of shape (B, n_k). Sound: every input in box ``b`` gives pre-activations inside row
    ``b`` (float64 rounding absorbed by widening).
    """
    lo = np.atleast_2d(np.asarray(lo, dtype=np.float64))
    hi = np.atleast_2d(np.asarray(hi, dtype=np.float64))
    B = lo.shape[0]
    lowers, uppers = [], []
    h_lo, h_hi = lo, hi
    last = len(network.layers) - 1
    if start and parent is None:
        raise ValueError("batch_bounds: start > 0 needs parent bounds")
    for k, layer in enumerate(network.layers):
        nonlinear = layer.n_nonlinear > 0
        if k < start:
            zl, zu = parent[0][k], parent[1][k]
            lowers.append(zl)
            uppers.append(zu)
            h_lo, h_hi = layer.output_range(zl, zu)
            continue
        zl, zu = layer.interval(h_lo, h_hi)
        if parent is not None:
            zl, zu = np.maximum(zl, parent[0][k]), np.minimum(zu, parent[1][k])
        if k > 0 and (nonlinear or k != last) and not layer.interval_exact:
            # constant-zero outputs (inactive ReLUs) stay at 0 whatever their bounds; every other
            # neuron's bounds matter (active ones feed the interval bounds of the next layer)
            if not nonlinear:
                unstable = np.ones_like(zl, dtype=bool)
            elif unstable_only:
                unstable = layer.phases(zl, zu) == UNSTABLE
            else:
                unstable = ~layer.constant_zero(zl, zu)
            K = int(unstable.sum(axis=1).max()) if B else 0
            if K:
                idx = np.argsort(~unstable, axis=1, kind="stable")[:, :K]  # unstable neurons first
                mask = np.take_along_axis(unstable, idx, axis=1)
                rows_map = layer.linear(rows=idx)
                sl, su, _, _ = _back_substitute(network, k, lowers, uppers, rows_map.matrix(), rows_map.bias,
                                                lo, hi, leave_out=leave_out_inactive)
                rows = np.broadcast_to(np.arange(B)[:, None], idx.shape)
                r, c = rows[mask], idx[mask]
                zl[r, c] = np.maximum(zl[r, c], sl[mask])
                zu[r, c] = np.minimum(zu[r, c], su[mask])
        zu = np.maximum(zu, zl)
        lowers.append(zl)
        uppers.append(zu)
        h_lo, h_hi = layer.output_range(zl, zu)
    return lowers, uppers


def batch_linear_bounds(network: Network, lowers: list, uppers: list, lo: np.ndarray, hi: np.ndarray,
                        a_x: np.ndarray, a_y: np.ndarray, leave_out_inactive: bool = True) -> tuple:
    """Sound lower bounds of ``a_x @ x + a_y @ y`` (rows of shape (m,)) over each box.

    ``lowers``/``uppers`` come from :func:`batch_bounds` for the same boxes. Returns ``(lb, A)``:
    ``lb`` (B, m) and the input coefficients ``A`` (B, m, n_inputs) of the linear lower bound (its
    large entries times the box widths say which input a split should halve).
    """
    L = len(network.layers)
    last = network.layers[-1]
    a_y = np.atleast_2d(np.asarray(a_y, dtype=np.float64))
    a_x = np.atleast_2d(np.asarray(a_x, dtype=np.float64))
    if last.affine:  # y = W h + b: substitute the last affine map directly
        lin = last.linear()
        weight, bias = lin.backward(a_y), lin.bias_term(a_y)
    else:  # y = relu(z): relax the output layer's activation first (sign-dependent slopes)
        B = lo.shape[0]
        rel = last.relaxation(lowers[L - 1], uppers[L - 1])
        D, off = rel.lower(np.broadcast_to(a_y, (B,) + a_y.shape))
        lin = last.linear(rows=rel.pre_index)
        weight = lin.backward(D)
        bias = lin.bias_term(D) + off
    # two sound lower bounds (adaptive and parallel lower slopes); keep the better one per box/row
    best_lb, best_A = None, None
    for parallel in (False, True):
        _, _, A, c = _back_substitute(network, L - 1, lowers, uppers, weight, bias, lo, hi, upper=False,
                                      parallel=parallel, leave_out=leave_out_inactive)
        A = A + a_x[None, :, :]
        lb, mag = _concretise_min(A, c, lo, hi)
        lb = widen(lb, lb, mag)[0]
        if best_lb is None:
            best_lb, best_A = lb, A
        else:
            better = lb > best_lb
            best_lb = np.where(better, lb, best_lb)
            best_A = np.where(better[:, :, None], A, best_A)
    return best_lb, best_A
