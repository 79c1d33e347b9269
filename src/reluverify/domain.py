"""Input domains: the set of inputs a question is asked about.

Bounds (:mod:`reluverify.bounds`) are computed over a domain, and the big-M constants of the MILP
are only valid inside it, so every formulation keeps its inputs inside the domain it was built for.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import InputError


@dataclass(frozen=True)
class Box:
    """An axis-aligned box ``lower <= x <= upper`` (flattened inputs, float64)."""

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


NORMS = ("l1", "linf", "l0")


def check_norm(norm: str) -> str:
    if not isinstance(norm, str) or norm.lower().replace("-", "").replace("∞", "inf") not in NORMS:
        raise InputError(f"unknown norm {norm!r}; choose one of {', '.join(NORMS)}")
    return norm.lower().replace("-", "").replace("∞", "inf")


@dataclass(frozen=True)
class Perturbation:
    """Which changes of an input are allowed, around a point ``x0``.

    * ``valid``: the box every input must stay in (``[0, 1]^n`` for scaled images by default);
    * ``linf_cap``: each value may move by at most this much (less visible noise);
    * ``l0_limit``: at most this many values may change;
    * ``mask``: boolean array, ``True`` where a value may change (others stay fixed);
    * ``budget`` with ``budget_norm``: ``||x - x0||_{budget_norm} <= budget``.

    :meth:`box` gives the smallest axis-aligned box containing every allowed input; bounds are
    computed over it (the input-domain restriction that makes big-M constants small).
    """

    valid: Box | None = None
    linf_cap: float | None = None
    l0_limit: int | None = None
    mask: np.ndarray | None = None
    budget: float | None = None
    budget_norm: str = "l1"

    def __post_init__(self) -> None:
        if self.linf_cap is not None:
            cap = float(self.linf_cap)
            if not np.isfinite(cap) or cap <= 0:
                raise InputError(f"linf_cap (eps) must be a positive finite number, got {self.linf_cap}")
            object.__setattr__(self, "linf_cap", cap)
        if self.l0_limit is not None:
            if int(self.l0_limit) != self.l0_limit or self.l0_limit < 1:
                raise InputError(f"l0_limit must be a positive whole number of changed values, got {self.l0_limit}")
            object.__setattr__(self, "l0_limit", int(self.l0_limit))
        if self.budget is not None:
            b = float(self.budget)
            if not np.isfinite(b) or b < 0:
                raise InputError(f"budget must be a finite number >= 0, got {self.budget}")
            if b == 0:
                raise InputError("budget 0 allows no change at all; give a positive budget")
            object.__setattr__(self, "budget", b)
        object.__setattr__(self, "budget_norm", check_norm(self.budget_norm))
        if self.mask is not None:
            m = np.asarray(self.mask)
            if m.dtype != bool:
                if not np.isin(m, (0, 1)).all():
                    raise InputError("mask must be boolean (True where a value may change)")
                m = m.astype(bool)
            m = m.ravel().copy()
            if not m.any():
                raise InputError("the mask allows no value to change; set True where changes are allowed")
            m.setflags(write=False)
            object.__setattr__(self, "mask", m)

    def valid_box(self, n: int) -> Box:
        valid = self.valid if self.valid is not None else Box.uniform(n)
        valid.check_size(n)
        return valid

    def check_point(self, x0: np.ndarray) -> None:
        n = x0.size
        valid = self.valid_box(n)
        if not valid.contains(x0):
            i = int(np.flatnonzero((x0 < valid.lower) | (x0 > valid.upper))[0])
            raise InputError(
                f"the input lies outside its valid box at value {i}: {x0[i]} not in "
                f"[{valid.lower[i]}, {valid.upper[i]}]; scale the input (images: divide by 255) or pass valid="
            )
        if self.mask is not None and self.mask.size != n:
            raise InputError(f"mask has {self.mask.size} entries but the input has {n}; give one entry per input "
                             "value (True where it may change)")

    def box(self, x0) -> Box:
        """The smallest box holding every allowed input around ``x0``."""
        x0 = np.asarray(x0, dtype=np.float64).ravel()
        self.check_point(x0)
        valid = self.valid_box(x0.size)
        lo, hi = valid.lower.copy(), valid.upper.copy()
        caps = [c for c in (self.linf_cap, self.budget if self.budget is not None and self.budget_norm in ("l1", "linf") else None) if c is not None]
        if caps:
            cap = min(caps)
            lo, hi = np.maximum(lo, x0 - cap), np.minimum(hi, x0 + cap)
        if self.mask is not None:
            lo = np.where(self.mask, lo, x0)
            hi = np.where(self.mask, hi, x0)
        return Box(lo, hi)


@dataclass(frozen=True)
class L1Box(Box):
    """``{x in [lower, upper] : ||x - center||_1 <= radius}``: an L1 ball intersected with a box.

    Its ``lower``/``upper`` are the box (every bound strategy can treat it as a box, soundly);
    strategies that know about the L1 constraint (first-layer knapsack, symbolic concretisation,
    the LP relaxation) use ``center``/``radius`` too and get tighter bounds.
    """

    center: np.ndarray = None
    radius: float = 0.0

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
