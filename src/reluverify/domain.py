"""Input domains: the set of inputs a question is asked about.

Bounds (:mod:`reluverify.bounds`) are computed over a domain, and the big-M constants of the MILP
are only valid inside it, so every formulation keeps its inputs inside the domain it was built for.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import InputError
from .sets import NORMS, check_norm  # noqa: F401
from .sets.box import Box, L1Box, linear_max, linear_min  # noqa: F401 (their home is reluverify.sets.box)


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

    def limits(self, x0) -> list:
        """The limits besides the valid box and the mask, as balls around ``x0`` (each inside the
        valid box, with the mask): the L-inf cap, the L0 limit, the budget."""
        from .sets import ball

        x0 = np.asarray(x0, dtype=np.float64).ravel()
        self.check_point(x0)
        valid = self.valid_box(x0.size)
        out = []
        if self.linf_cap is not None:
            out.append(ball("linf", x0, self.linf_cap, valid=valid, mask=self.mask))
        if self.l0_limit is not None:
            out.append(ball("l0", x0, self.l0_limit, valid=valid, mask=self.mask))
        if self.budget is not None:
            out.append(ball(self.budget_norm, x0, self.budget, valid=valid, mask=self.mask))
        return out

    def input_set(self, x0, norm: str | None = None, radius=None):
        """The allowed inputs around ``x0`` as an input set (:mod:`reluverify.sets`): the ``norm``
        ball of ``radius`` (unbounded: ``radius=None``; the valid box with the mask) intersected with
        every limit (:meth:`limits`)."""
        from .sets import Intersection, ball

        x0 = np.asarray(x0, dtype=np.float64).ravel()
        members = self.limits(x0)
        if norm is not None or not members:
            members.insert(0, ball(norm or "linf", x0, radius, valid=self.valid_box(x0.size), mask=self.mask))
        return members[0] if len(members) == 1 else Intersection(members)

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


