"""Boxes and the box-shaped parts of input sets: :class:`Box`, :class:`L1Box` (a box with an L1
constraint, as the bound strategies see an L1 ball) and exact linear optimisation over them.

Bounds (:mod:`reluverify.bounds`) are computed over a box, and the big-M constants of the MILP are
only valid inside it, so every formulation keeps its inputs inside the box it was built for.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from .base import InputSet, _outside_box


@dataclass(frozen=True)
class Box(InputSet):
    """An axis-aligned box ``lower <= x <= upper`` (flattened inputs, float64); an input set that
    is its own hull."""

    is_box = True

    lower: np.ndarray
    upper: np.ndarray

    def __post_init__(self) -> None:
        lo = np.array(self.lower, dtype=np.float64).ravel()
        hi = np.array(self.upper, dtype=np.float64).ravel()
        if lo.shape != hi.shape:
            raise InputError(f"box bounds have different lengths: lower {lo.size}, upper {hi.size}")
        if lo.size == 0:
            raise InputError("a box needs at least one dimension")
        if np.isnan(lo).any() or np.isnan(hi).any():
            raise InputError("box bounds contain NaN; give finite lower and upper bounds")
        if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
            raise InputError(
                "box bounds must be finite: big-M constants need a bounded input domain; "
                "use the valid input range of your data (e.g. [0, 1] for scaled images)"
            )
        bad = np.flatnonzero(lo > hi)
        if bad.size:
            i = int(bad[0])
            raise InputError(f"box lower bound exceeds upper bound at input {i}: {lo[i]} > {hi[i]}")
        lo.setflags(write=False)
        hi.setflags(write=False)
        object.__setattr__(self, "lower", lo)
        object.__setattr__(self, "upper", hi)

    @property
    def size(self) -> int:
        return int(self.lower.size)

    @classmethod
    def uniform(cls, n: int, lower: float = 0.0, upper: float = 1.0) -> "Box":
        """The box ``[lower, upper]^n`` (``[0, 1]^n`` by default, the range of scaled images)."""
        return cls(np.full(n, float(lower)), np.full(n, float(upper)))

    @classmethod
    def point(cls, x) -> "Box":
        """The degenerate box containing only ``x``."""
        x = np.asarray(x, dtype=np.float64).ravel()
        return cls(x, x)

    @classmethod
    def linf_ball(cls, x, eps: float, valid: "Box | None" = None) -> "Box":
        """``{x' : |x' - x|_inf <= eps}``, intersected with the valid input box ``valid`` if given."""
        eps = float(eps)
        if not np.isfinite(eps) or eps <= 0:
            raise InputError(f"eps must be a positive finite number, got {eps}")
        x = np.asarray(x, dtype=np.float64).ravel()
        lo, hi = x - eps, x + eps
        if valid is not None:
            valid.check_size(x.size)
            lo, hi = np.maximum(lo, valid.lower), np.minimum(hi, valid.upper)
        return cls(lo, hi)

    def hull(self) -> "Box":
        return self

    #: False for a domain smaller than its box (an L1 ball in a box): the bound strategies then
    #: bound the first layer exactly over it (:func:`linear_min`/:func:`linear_max`) and add
    #: :meth:`lp_rows` to their LP relaxation
    is_its_box = True

    def lp_rows(self):
        """Rows an LP relaxation adds on the input columns (and extra columns) to describe the
        domain beyond its box: ``(extra column lower, extra column upper, A, row lower, row upper)``
        with ``A`` over ``[inputs, extra columns]``; None for a plain box."""
        return None

    def problem(self, x) -> str | None:
        return _outside_box(self, np.asarray(x, dtype=np.float64).ravel())

    def check_size(self, n: int) -> None:
        if self.size != n:
            raise InputError(f"the input domain has {self.size} dimensions but the network takes {n} inputs")

    def contains(self, x, atol: float = 0.0) -> bool:
        x = np.asarray(x, dtype=np.float64).ravel()
        return bool(np.all(x >= self.lower - atol) and np.all(x <= self.upper + atol))

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        """``n`` uniform samples (plus, when ``n >= 2``, the two corners) for soundness tests."""
        rng = np.random.default_rng(seed)
        pts = self.lower + rng.random((n, self.size)) * (self.upper - self.lower)
        if n >= 2:
            pts[0], pts[1] = self.lower, self.upper
        return pts


@dataclass(frozen=True)
class L1Box(Box):
    """``{x in [lower, upper] : ||x - center||_1 <= radius}``: an L1 ball intersected with a box.

    Its ``lower``/``upper`` are the box (every bound strategy can treat it as a box, soundly);
    strategies that know about the L1 constraint (first-layer knapsack, symbolic concretisation,
    the LP relaxation) use ``center``/``radius`` too and get tighter bounds.
    """

    center: np.ndarray = None
    radius: float = 0.0
    is_its_box = False

    def lp_rows(self):
        """Columns ``t_i >= |x_i - center_i|`` and the row ``sum(t) <= radius``."""
        n, x0 = self.size, self.center
        room = np.maximum(self.upper - x0, x0 - self.lower)
        eye = np.eye(n)
        A = np.vstack([np.hstack([eye, -eye]), np.hstack([-eye, -eye]), np.hstack([np.zeros((1, n)), np.ones((1, n))])])
        return np.zeros(n), room, A, np.full(2 * n + 1, -np.inf), np.concatenate([x0, -x0, [self.radius]])

    def __post_init__(self) -> None:
        super().__post_init__()
        c = np.array(self.center, dtype=np.float64).ravel()
        if c.shape != self.lower.shape:
            raise InputError(f"L1 ball centre has {c.size} values but the box has {self.lower.size}")
        r = float(self.radius)
        if not np.isfinite(r) or r < 0:
            raise InputError(f"L1 radius must be a finite number >= 0, got {self.radius}")
        c.setflags(write=False)
        object.__setattr__(self, "center", c)
        object.__setattr__(self, "radius", r)

    @classmethod
    def around(cls, x0, radius: float, box: Box) -> "L1Box":
        """The L1 ball of ``radius`` around ``x0`` intersected with ``box`` (which must contain ``x0``)."""
        x0 = np.asarray(x0, dtype=np.float64).ravel()
        lo = np.maximum(box.lower, x0 - radius)
        hi = np.minimum(box.upper, x0 + radius)
        return cls(lo, hi, center=x0, radius=radius)

    def contains(self, x, atol: float = 0.0) -> bool:
        x = np.asarray(x, dtype=np.float64).ravel()
        return super().contains(x, atol) and float(np.sum(np.abs(x - self.center))) <= self.radius + atol

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        """Samples inside the ball: box samples pulled toward the centre until they fit."""
        pts = super().sample(n, seed)
        d = pts - self.center
        l1 = np.abs(d).sum(axis=1)
        scale = np.minimum(1.0, self.radius / np.maximum(l1, 1e-300))  # not a tolerance: keeps the division finite
        rng = np.random.default_rng(seed + 1)
        scale = scale * np.where(rng.random(n) < 0.5, 1.0, rng.random(n))
        return self.center + d * scale[:, None]


def linear_max(A: np.ndarray, c: np.ndarray, domain: Box) -> np.ndarray:
    """``max_{x in domain} A x + c`` row by row, exactly, for a box or an :class:`L1Box`."""
    A = np.atleast_2d(A)
    box_max = np.maximum(A, 0) @ domain.upper + np.minimum(A, 0) @ domain.lower + c
    if not isinstance(domain, L1Box):
        return box_max
    x0 = domain.center
    # moving coordinate i in the direction of sign(A_ri) gains |A_ri| per unit, up to its room
    room = np.where(A > 0, domain.upper - x0, x0 - domain.lower)
    room = np.maximum(room, 0.0)
    gain = np.abs(A)
    order = np.argsort(-gain, axis=1)
    g = np.take_along_axis(gain, order, axis=1)
    rm = np.take_along_axis(room, order, axis=1)
    used_before = np.cumsum(rm, axis=1) - rm
    take = np.clip(domain.radius - used_before, 0.0, rm)
    knap = A @ x0 + c + np.sum(g * take, axis=1)
    return np.minimum(knap, box_max)


def linear_min(A: np.ndarray, c: np.ndarray, domain: Box) -> np.ndarray:
    """``min_{x in domain} A x + c`` row by row."""
    return -linear_max(-np.atleast_2d(A), -np.asarray(c), domain)
