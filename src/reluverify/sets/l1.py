"""The L1 ball: the sum of the absolute changes is at most ``radius``. Its bounds use the L1
constraint (a knapsack in the first layer, :class:`reluverify.domain.L1Box`); in the MILP one
column ``t_i >= |x_i - c_i|`` per value that can move both ways (the others need none)."""

from __future__ import annotations

import numpy as np

from ..tolerances import BUDGET_CHECK_REL_TOLERANCE
from .ball import Ball


def project_l1(v: np.ndarray, lo: np.ndarray, hi: np.ndarray, radius: float) -> np.ndarray:
    """Euclidean projection of ``v`` (one vector, or a batch as rows) onto
    ``{d : lo <= d <= hi, |d|_1 <= radius}`` (``lo <= 0 <= hi``), exactly: the projection is the
    soft threshold ``d_i = sign(v_i) clip(|v_i| - tau, 0, cap_i)`` whose L1 norm is ``radius``, a
    piecewise linear decreasing function of ``tau``; its breakpoints are sorted once per row and the
    segment holding ``radius`` is interpolated (no iteration)."""
    one = np.ndim(v) == 1
    V = np.atleast_2d(np.asarray(v, dtype=np.float64))
    D = np.clip(V, lo, hi)
    over = np.sum(np.abs(D), axis=1) > radius
    if not np.any(over):
        return D[0] if one else D
    W = V[over]
    A = np.abs(W)
    C = np.maximum(np.where(W > 0, hi, -np.asarray(lo)), 0.0) * np.ones_like(W)  # room in v's direction
    f0 = np.sum(np.minimum(A, C), axis=1)  # the norm at tau = 0
    # each value starts shrinking at max(|v| - cap, 0) (slope -1) and reaches 0 at |v| (slope back +1)
    T = np.concatenate([np.maximum(A - C, 0.0), A], axis=1)
    dS = np.concatenate([-np.ones_like(A), np.ones_like(A)], axis=1)
    order = np.argsort(T, axis=1, kind="stable")
    T = np.take_along_axis(T, order, axis=1)
    slope = np.cumsum(np.take_along_axis(dS, order, axis=1), axis=1)  # on [T_k, T_k+1]
    F = f0[:, None] + np.concatenate([np.zeros((len(W), 1)), np.cumsum(slope[:, :-1] * np.diff(T, axis=1), axis=1)],
                                     axis=1)
    k = np.argmax(F <= radius, axis=1)  # the first breakpoint at or below the radius (k >= 1: f0 > radius)
    rows = np.arange(len(W))
    s_k = slope[rows, k - 1]
    tau = T[rows, k - 1] + np.where(s_k < 0, (radius - F[rows, k - 1]) / np.where(s_k < 0, s_k, -1.0), 0.0)
    D[over] = np.sign(W) * np.clip(A - tau[:, None], 0.0, C)
    return D[0] if one else D


class L1Ball(Ball):
    norm = "l1"
    sparse_changes = True

    def _cap(self):
        return self.radius

    def bound_domain(self):
        if self.radius is None:
            return self.hull()
        from .box import L1Box

        h = self.hull()
        return L1Box(h.lower, h.upper, center=self.center, radius=self.radius)

    def restrict(self, box):
        """This ball's bound domain within ``box`` (a sub-box of the hull)."""
        if self.radius is None:
            return box
        from .box import L1Box

        return L1Box(box.lower, box.upper, center=self.center, radius=self.radius)

    def distance(self, x):
        return np.sum(np.abs(np.asarray(x, dtype=np.float64) - self.center), axis=-1)

    def _radius_with_rounding(self) -> float:
        return self.radius * (1 + BUDGET_CHECK_REL_TOLERANCE)

    def fit(self, x):
        """Clip into the hull, then scale the change down exactly onto the radius if it exceeds it
        (a solver's point may by its feasibility tolerance)."""
        x = super().fit(x)
        if self.radius is None:
            return x
        h, c = self.hull(), self.center
        d = x - c
        l1 = np.sum(np.abs(d), axis=-1, keepdims=True)
        scale = np.where(l1 > self.radius, self.radius / np.maximum(l1, self.radius), 1.0)
        return np.clip(c + d * scale, h.lower, h.upper)

    def project(self, X):
        X = np.asarray(X, dtype=np.float64)
        if self.radius is None:
            return super().fit(X)
        h, c = self.hull(), self.center
        # c + (lo - c) may round a step past lo: clip (towards c, so the distance only shrinks)
        return np.clip(c + project_l1(X - c, h.lower - c, h.upper - c, self.radius), h.lower, h.upper)

    def encode_distance(self, milp, input_cols) -> tuple:
        h, c = self.hull(), self.center
        up, down, both = self._split_directions()
        cols = np.asarray(input_cols)
        t = [milp.add_column(0.0, float(max(h.upper[i] - c[i], c[i] - h.lower[i]))) for i in both.tolist()]
        # t_i >= x_i - c_i  and  t_i >= c_i - x_i
        milp.add_rows(-np.inf, c[both], [([int(cols[i]), ti], [1.0, -1.0]) for i, ti in zip(both.tolist(), t)])
        milp.add_rows(-np.inf, -c[both], [([int(cols[i]), ti], [-1.0, -1.0]) for i, ti in zip(both.tolist(), t)])
        out_cols = [int(cols[i]) for i in up.tolist()] + [int(cols[i]) for i in down.tolist()] + t
        coefs = [1.0] * up.size + [-1.0] * down.size + [1.0] * len(t)
        const = -float(np.sum(c[up])) + float(np.sum(c[down]))
        return out_cols, coefs, const

    def encode(self, milp, input_cols) -> None:
        if self.radius is None:
            return
        cols, coefs, const = self.encode_distance(milp, input_cols)
        milp.add_rows(-np.inf, self.radius - const, [(cols, coefs)])
