"""The L1 ball: the sum of the absolute changes is at most ``radius``. Its bounds use the L1
constraint (a knapsack in the first layer, :class:`reluverify.domain.L1Box`); in the MILP one
column ``t_i >= |x_i - c_i|`` per value that can move both ways (the others need none)."""

from __future__ import annotations

import numpy as np

from ..tolerances import BUDGET_CHECK_REL_TOLERANCE
from .ball import Ball


def project_l1(v: np.ndarray, lo: np.ndarray, hi: np.ndarray, radius: float) -> np.ndarray:
    """Euclidean projection of ``v`` onto ``{d : lo <= d <= hi, |d|_1 <= radius}`` (``lo <= 0 <= hi``)."""
    d = np.clip(v, lo, hi)
    if float(np.sum(np.abs(d))) <= radius:
        return d
    a, b = 0.0, float(np.max(np.abs(v)))
    for _ in range(60):  # bisection on the soft threshold
        tau = 0.5 * (a + b)
        d = np.clip(np.sign(v) * np.maximum(np.abs(v) - tau, 0.0), lo, hi)
        if float(np.sum(np.abs(d))) > radius:
            a = tau
        else:
            b = tau
    return np.clip(np.sign(v) * np.maximum(np.abs(v) - b, 0.0), lo, hi)


class L1Ball(Ball):
    norm = "l1"

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
        lo, hi = h.lower - c, h.upper - c
        if X.ndim == 1:
            return c + project_l1(X - c, lo, hi, self.radius)
        return np.stack([c + project_l1(x - c, lo, hi, self.radius) for x in X])

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
