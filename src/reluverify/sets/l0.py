"""The L0 ball: at most ``radius`` values change (a whole number). One binary per value that can
move, which must be 1 for it to move; its sum is the distance."""

from __future__ import annotations

import numpy as np

from .ball import Ball


class L0Ball(Ball):
    norm = "l0"
    sparse_changes = True
    whole_radius = True

    def distance(self, x):
        return np.count_nonzero(np.asarray(x, dtype=np.float64) != self.center, axis=-1)

    def fit(self, x):
        """Clip into the hull; where more than ``radius`` values moved, only the largest changes stay
        (a solver's point moves the others by at most its tolerance)."""
        x = np.array(super().fit(x), dtype=np.float64)
        if self.radius is None:
            return x
        k = int(self.radius)
        one = x.ndim == 1
        X = x[None, :] if one else x
        d = np.abs(X - self.center)
        for row, dr in zip(X, d):
            if np.count_nonzero(dr) > k:
                drop = np.argsort(-dr, kind="stable")[k:]
                row[drop] = self.center[drop]
        return X[0] if one else X

    project = fit

    def encode_distance(self, milp, input_cols) -> tuple:
        h, c = self.hull(), self.center
        free = self.free.tolist()
        cols = np.asarray(input_cols)
        s = [milp.add_column(0.0, 1.0, integral=True) for _ in free]
        can_up = [(i, si) for i, si in zip(free, s) if h.upper[i] > c[i]]
        can_down = [(i, si) for i, si in zip(free, s) if h.lower[i] < c[i]]
        # x_i - c_i <= (hi_i - c_i) s_i ;  c_i - x_i <= (c_i - lo_i) s_i
        milp.add_rows(-np.inf, np.array([c[i] for i, _ in can_up]),
                      [([int(cols[i]), si], [1.0, -float(h.upper[i] - c[i])]) for i, si in can_up])
        milp.add_rows(-np.inf, np.array([-c[i] for i, _ in can_down]),
                      [([int(cols[i]), si], [-1.0, -float(c[i] - h.lower[i])]) for i, si in can_down])
        return s, [1.0] * len(s), 0.0

    def encode(self, milp, input_cols) -> None:
        if self.radius is None:
            return
        cols, coefs, const = self.encode_distance(milp, input_cols)
        milp.add_rows(-np.inf, self.radius - const, [(cols, coefs)])
