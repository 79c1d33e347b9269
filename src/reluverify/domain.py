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
