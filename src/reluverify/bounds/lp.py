"""LP-based tightening: bound each still-unstable neuron by the LP relaxation of the layers before it.

Layer by layer, the relaxation (input box, then each layer's LP rows: for a ReLU layer ``y = a`` for
active neurons; ``y >= a``, ``y >= 0`` and the chord ``y <= u (a - l) / (u - l)`` for unstable ones)
is built once in one LP session of a solver backend (HiGHS by default) and
grown as layers are finished; for each unstable neuron only the objective changes (warm-started
simplex), first ``max`` then, if still needed, ``min``.

Soundness does not rest on the LP solver's accuracy: each bound is *certified* from the solver's
row duals ``λ`` by weak duality, ``c·v <= Σ_r max(λ_r L_r, λ_r U_r) + Σ_i max(g_i l_i, g_i u_i)``
with ``g = c - Aᵀλ``, evaluated in float64 and widened for rounding. Any ``λ`` gives a valid bound;
good duals give a tight one.
"""

from __future__ import annotations

import time

import numpy as np

from ..domain import Box
from ..model import Network
from ..model.layers import UNSTABLE
from ..solvers import DEFAULT_SOLVER, lp_session
from ..tolerances import LP_BIAS_REL_WIDENING
from .base import Bounds
from .interval import widen
from .symbolic import symbolic_layer


class _Relaxation:
    """The growing LP: columns x, y_0, y_1, ... and one dense row block per finished layer, held by
    a solver backend's LP session (:func:`reluverify.solvers.lp_session`)."""

    def __init__(self, box: Box, solver: str = DEFAULT_SOLVER):
        self.lp = lp_session(solver)
        n = box.size
        self.col_lo = box.lower.copy()
        self.col_hi = box.upper.copy()
        self.lp.add_columns(box.lower, box.upper)
        self.blocks = []  # (col_start, col_end, dense A block, row lower, row upper)
        self.row_lo = np.zeros(0)
        self.row_hi = np.zeros(0)
        self.prev_cols = np.arange(n)  # columns holding the previous layer's (nonzero) outputs
        self.prev_idx = np.arange(n)  # their neuron indices in that layer
        extra = box.lp_rows()  # a domain smaller than its box (an L1 ball) describes itself
        if extra is not None:
            self._add_domain_rows(*extra)

    def _add_block(self, offset: int, A: np.ndarray, rlo: np.ndarray, rhi: np.ndarray) -> None:
        """Rows ``rlo <= A v[offset:offset + A.shape[1]] <= rhi``."""
        nz_r, nz_c = np.nonzero(A)
        starts = np.searchsorted(nz_r, np.arange(A.shape[0]))
        self.lp.add_rows(rlo, rhi, starts, nz_c + offset, A[nz_r, nz_c])
        self.blocks.append((offset, offset + A.shape[1], A, rlo, rhi))
        self.row_lo = np.concatenate([self.row_lo, rlo])
        self.row_hi = np.concatenate([self.row_hi, rhi])

    def _add_domain_rows(self, col_lo, col_hi, A, rlo, rhi) -> None:
        """The domain's own rows (:meth:`reluverify.sets.box.Box.lp_rows`) and extra columns."""
        self.lp.add_columns(col_lo, col_hi)
        self.col_lo = np.concatenate([self.col_lo, col_lo])
        self.col_hi = np.concatenate([self.col_hi, col_hi])
        self._add_block(0, A, np.asarray(rlo, dtype=np.float64), np.asarray(rhi, dtype=np.float64))

    def add_layer(self, layer, lo, hi) -> None:
        """Add a finished layer with pre-activation bounds ``[lo, hi]``: its LP rows
        (:meth:`reluverify.model.layers.Layer.lp_rows`) over the previous layer's columns."""
        rows = layer.lp_rows(lo, hi, self.prev_idx)
        keep = rows.keep
        start = int(self.col_lo.size)
        m = keep.size
        self.lp.add_columns(rows.y_lower, rows.y_upper)
        self.col_lo = np.concatenate([self.col_lo, rows.y_lower])
        self.col_hi = np.concatenate([self.col_hi, rows.y_upper])
        ycols = np.arange(start, start + m)
        prev_start = int(self.prev_cols[0]) if self.prev_cols.size else start
        width = start + m - prev_start
        if rows.lower.size:
            A = np.zeros((rows.lower.size, width))
            A[:, self.prev_cols - prev_start] = rows.prev
            A[:, ycols - prev_start] = rows.own
            self._add_block(prev_start, A, np.asarray(rows.lower, dtype=np.float64),
                            np.asarray(rows.upper, dtype=np.float64))
        self.prev_cols = ycols
        self.prev_idx = keep

    def certified_max(self, c: np.ndarray, duals: np.ndarray) -> float:
        """An upper bound of ``c·v`` over the relaxation, valid for any ``duals``."""
        best = np.inf
        for lam in (duals, -duals):
            g = c.copy()
            total = 0.0
            mag = 0.0
            pos = 0
            ok = True
            for start, end, A, rlo, rhi in self.blocks:
                lr = lam[pos:pos + A.shape[0]]
                pos += A.shape[0]
                g[start:end] -= lr @ A
                use_hi = lr > 0
                if np.any(use_hi & ~np.isfinite(rhi)) or np.any(~use_hi & (lr != 0) & ~np.isfinite(rlo)):
                    lr = np.where((use_hi & ~np.isfinite(rhi)) | (~use_hi & ~np.isfinite(rlo)), 0.0, lr)
                    ok = False  # dropped multipliers on missing sides: still valid, maybe looser
                    g[start:end] += (lam[pos - A.shape[0]:pos] - lr) @ A
                term = np.where(lr > 0, lr * np.where(np.isfinite(rhi), rhi, 0.0), lr * np.where(np.isfinite(rlo), rlo, 0.0))
                total += float(np.sum(term))
                mag += float(np.sum(np.abs(term)))
            colterm = np.maximum(g * self.col_lo, g * self.col_hi)
            total += float(np.sum(colterm))
            mag += float(np.sum(np.abs(colterm))) + float(np.sum(np.abs(c) * np.maximum(np.abs(self.col_lo), np.abs(self.col_hi))))
            bound = widen(np.array([total]), np.array([total]), np.array([mag]))[1][0]
            best = min(best, bound)
            del ok
        return float(best)

    def optimise(self, cols: np.ndarray, coefs: np.ndarray, maximise: bool, time_limit: float | None = None) -> float | None:
        """Certified ``max`` (or ``-max(-·)`` for min) of ``coefs·v[cols]``; None if the LP failed
        or ran out of ``time_limit``."""
        c = np.zeros(self.col_lo.size)
        c[cols] = coefs
        duals = self.lp.maximise(c if maximise else -c, time_limit)
        if duals is None:
            return None
        value = self.certified_max(c if maximise else -c, duals)
        return value if maximise else -value


class LPBounds:
    """Strategy object: symbolic bounds, then LP tightening of each still-unstable neuron.

    ``time_limit`` (seconds, None = no limit) caps the LP work; when it runs out the remaining
    neurons keep their symbolic bounds (still sound). ``max_layers`` limits which layers get LPs.
    ``solver``: the backend whose LP session solves the LPs (:func:`reluverify.solvers.lp_session`).
    """

    name = "lp"

    def __init__(self, time_limit: float | None = None, max_layer: int | None = None,
                 solver: str = DEFAULT_SOLVER):
        self.time_limit = time_limit
        self.max_layer = max_layer
        self.solver = solver

    def compute(self, network: Network, domain: Box, initial: Bounds | None = None) -> Bounds:
        domain.check_size(network.n_inputs)
        t0 = time.perf_counter()
        lowers, uppers = [], []
        h_lo, h_hi = domain.lower, domain.upper
        relax = _Relaxation(domain, self.solver)
        n_lp = 0
        history = []
        last = len(network.layers) - 1
        for k, layer in enumerate(network.layers):
            zl, zu = symbolic_layer(network, domain, k, lowers, uppers, h_lo, h_hi, initial)
            tighten = (k > 0 and k != last and layer.n_nonlinear and not layer.interval_exact
                       and (self.max_layer is None or k <= self.max_layer))
            if tighten:
                unstable = np.flatnonzero(layer.phases(zl, zu) == UNSTABLE)
                # most ambiguous neurons first (furthest from a phase): they matter most when time runs out
                order = unstable[np.argsort(-np.minimum(-zl[unstable], zu[unstable]))]
                for i in order.tolist():
                    if self.time_limit is not None and time.perf_counter() - t0 > self.time_limit:
                        break
                    row = layer.linear(rows=np.array([i]), cols=relax.prev_idx)
                    w, b = row.matrix()[0], row.bias[0]
                    left = None if self.time_limit is None else self.time_limit - (time.perf_counter() - t0)
                    up = relax.optimise(relax.prev_cols, w, True, left)
                    n_lp += 1
                    if up is not None:
                        zu[i] = min(zu[i], up + b + abs(b) * LP_BIAS_REL_WIDENING)
                    if layer.phases(zl[i:i + 1], zu[i:i + 1])[0] == UNSTABLE:
                        left = None if self.time_limit is None else self.time_limit - (time.perf_counter() - t0)
                        if left is not None and left <= 0:
                            break
                        low = relax.optimise(relax.prev_cols, w, False, left)
                        n_lp += 1
                        if low is not None:
                            zl[i] = max(zl[i], low + b - abs(b) * LP_BIAS_REL_WIDENING)
                zu = np.maximum(zu, zl)
            lowers.append(zl)
            uppers.append(zu)
            h_lo, h_hi = layer.output_range(zl, zu)
            if k != last:
                relax.add_layer(layer, zl, zu)
        bounds = Bounds(network, domain, lowers, uppers, method=self.name)
        bounds.time_s = time.perf_counter() - t0
        history.append((f"{self.name} ({n_lp} LPs)", bounds.n_unstable, bounds.time_s))
        bounds.history = history
        return bounds
