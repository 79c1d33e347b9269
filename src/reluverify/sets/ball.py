"""Norm balls around an input, inside its valid box, optionally with a pixel mask: the common part
of every norm. A norm module (linf.py, l1.py, l0.py) subclasses :class:`Ball` with its distance,
its cap on the hull, its exact check, fit and projection, and its MILP rows."""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from .base import InputSet, _outside_box


class Ball(InputSet):
    """``{x in valid : x_i = center_i where mask_i is False, ||x - center|| <= radius}``.

    ``radius=None`` leaves the norm unbounded: the set is the masked valid box, and the ball is
    only there for its distance (questions that minimise it)."""

    norm = ""  # set by each norm's subclass
    #: the radius must be a whole number (L0: a count of changed values)
    whole_radius = False
    #: the smallest changes in this norm concentrate on few values (L1, L0): the attacks that look
    #: for them push one value at a time to its bound; otherwise (L-inf) they move every value a
    #: little (projected gradient steps with a bisection on the radius)
    sparse_changes = False

    def __init__(self, center, radius=None, *, valid=None, mask=None):
        from .box import Box

        c = np.array(center, dtype=np.float64).ravel()
        if c.size == 0 or not np.all(np.isfinite(c)):
            raise InputError("a ball's centre must be a non-empty array of finite numbers")
        if valid is None:
            valid = Box.uniform(c.size)
        if not isinstance(valid, Box):
            raise InputError(f"valid must be a reluverify Box, got {type(valid).__name__}")
        valid.check_size(c.size)
        bad = np.flatnonzero((c < valid.lower) | (c > valid.upper))
        if bad.size:
            i = int(bad[0])
            raise InputError(f"the centre lies outside its valid box at value {i}: {c[i]} not in "
                             f"[{valid.lower[i]}, {valid.upper[i]}]; scale the input (images: divide by 255) "
                             "or pass valid=")
        if radius is not None:
            try:
                r = float(radius)
            except (TypeError, ValueError):
                raise InputError(f"the {self.norm} radius must be a number, got {radius!r}") from None
            if not np.isfinite(r) or r <= 0:
                raise InputError(f"the {self.norm} radius must be a positive finite number, got {radius}")
            if self.whole_radius and r != int(r):
                raise InputError(f"the {self.norm} radius is a number of changed values (whole), got {radius}")
            radius = r
        m = None
        if mask is not None:
            m = np.asarray(mask)
            if m.dtype != bool:
                if not np.isin(m, (0, 1)).all():
                    raise InputError("mask must be boolean (True where a value may change)")
                m = m.astype(bool)
            m = m.ravel()
            if m.size != c.size:
                raise InputError(f"mask has {m.size} entries but the input has {c.size}; give one entry per "
                                 "input value (True where it may change)")
            if not m.any():
                raise InputError("the mask allows no value to change; set True where changes are allowed")
        c.setflags(write=False)
        self.center, self.radius, self.valid, self.mask = c, radius, valid, m
        lo, hi = valid.lower.copy(), valid.upper.copy()
        cap = self._cap()
        if cap is not None:
            lo, hi = np.maximum(lo, c - cap), np.minimum(hi, c + cap)
        if m is not None:
            lo, hi = np.where(m, lo, c), np.where(m, hi, c)
        self._hull = Box(lo, hi)

    # ----- what each norm provides
    def _cap(self) -> float | None:
        """How far one value may move (the hull's half-width), or None."""
        return None

    def distance(self, x) -> np.ndarray | float:
        """The norm of ``x - center`` (rows of a batch, or one point)."""
        raise NotImplementedError

    def encode_distance(self, milp, input_cols) -> tuple:
        """``(columns, coefficients, constant)``: the distance to the centre as a linear expression
        of MILP columns (auxiliary columns and rows added as needed), exact at every optimum of a
        problem that minimises it or bounds it from above."""
        raise NotImplementedError

    # ----- shared
    def hull(self):
        return self._hull

    def max_radius(self) -> float:
        """The largest distance from the centre within the hull of the unbounded ball (the farthest
        corner): a radius at which this ball is its whole masked valid box."""
        h, c = self.valid, self.center
        far = np.where(h.upper - c > c - h.lower, h.upper, h.lower)
        if self.mask is not None:
            far = np.where(self.mask, far, c)
        r = float(self.distance(far))
        # the hull at r is max(lower, c - r): c - (c - lower) may round above lower; a few steps up
        # make the ball at this radius hold the corner (and so the whole box) exactly
        for _ in range(8):
            if not r > 0 or self.with_radius(r).contains(far):
                break
            r = float(np.nextafter(r, np.inf))
        return r

    def with_radius(self, radius) -> "Ball":
        return type(self)(self.center, radius, valid=self.valid, mask=self.mask)

    @property
    def free(self) -> np.ndarray:
        """Indices of the values that may move."""
        h = self._hull
        return np.flatnonzero(h.upper > h.lower)

    def problem(self, x) -> str | None:
        x = np.asarray(x, dtype=np.float64).ravel()
        p = _outside_box(self._hull, x)
        if p or self.radius is None:
            return p
        d = self.distance(x)
        if d > self._radius_with_rounding():
            return f"{self.norm} distance {d:.9g} exceeds the radius {self.radius:.9g}"
        return None

    def _radius_with_rounding(self) -> float:
        return self.radius

    def _split_directions(self):
        """Free values by the way they can move: only up (centre at the lower bound), only down, both."""
        h, c = self._hull, self.center
        free = self.free
        up = free[c[free] <= h.lower[free]]
        down = free[c[free] >= h.upper[free]]
        both = free[(h.lower[free] < c[free]) & (c[free] < h.upper[free])]
        return up, down, both

    def __repr__(self) -> str:
        r = "unbounded" if self.radius is None else f"radius {self.radius:.6g}"
        m = "" if self.mask is None else f", {int(self.mask.sum())} values may change"
        return f"<{type(self).__name__} ({self.norm}) {r} around a {self.center.size}-value centre{m}>"
