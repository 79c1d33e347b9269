"""The L-inf ball: every value moves by at most ``radius``. It is a box, so it needs no MILP row
of its own; as a distance (minimised) it is one column ``e`` with ``|x_i - c_i| <= e``."""

from __future__ import annotations

import numpy as np

from .ball import Ball
from .base import _outside_box


class LinfBall(Ball):
    norm = "linf"

    @property
    def is_box(self) -> bool:
        return True

    def _cap(self):
        return self.radius

    def problem(self, x) -> str | None:
        # the set is its hull, computed once in float64 (c - r, c + r clipped into the valid box);
        # ``|x - c|`` recomputed at a corner can exceed ``r`` by a rounding step, so the hull decides
        return _outside_box(self.hull(), np.asarray(x, dtype=np.float64).ravel())

    def distance(self, x):
        d = np.abs(np.asarray(x, dtype=np.float64) - self.center)
        return np.max(d, axis=-1) if d.shape[-1] else 0.0

    def encode_distance(self, milp, input_cols) -> tuple:
        h, c = self.hull(), self.center
        up, down, both = self._split_directions()
        width = float(np.max(h.upper - h.lower)) if self.free.size else 0.0
        e = milp.add_column(0.0, width)
        ups = np.concatenate([up, both])
        downs = np.concatenate([down, both])
        cols = np.asarray(input_cols)
        # x_i - c_i - e <= 0 (may move up), c_i - x_i - e <= 0 (may move down)
        milp.add_rows(-np.inf, c[ups], [([int(cols[i]), e], [1.0, -1.0]) for i in ups.tolist()])
        milp.add_rows(-np.inf, -c[downs], [([int(cols[i]), e], [-1.0, -1.0]) for i in downs.tolist()])
        return [e], [1.0], 0.0
