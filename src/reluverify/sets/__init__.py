"""Input sets: the sets of inputs questions are asked about (the second extension point).

``Box`` (an axis-aligned box: VNN-LIB regions, the valid range of an image), the norm balls
``LinfBall``, ``L1Ball``, ``L0Ball`` (around an input, inside its valid box, with an optional pixel
mask) and their ``Intersection``. :mod:`reluverify.sets.base` states what a set owns; adding a norm
is one module with a :class:`~reluverify.sets.ball.Ball` subclass and a line in :data:`NORMS`.
"""

from __future__ import annotations

from .box import Box
from ..errors import InputError
from .ball import Ball
from .base import InputSet, Intersection
from .l0 import L0Ball
from .l1 import L1Ball, project_l1
from .linf import LinfBall

#: norm name -> its ball class; the one place a norm is looked up by name
NORMS = {"l1": L1Ball, "linf": LinfBall, "l0": L0Ball}


def check_norm(norm) -> str:
    """The canonical name of ``norm`` ("L-inf", "l∞", "L1" ... are accepted), or an InputError."""
    key = norm.lower().replace("-", "").replace("∞", "inf") if isinstance(norm, str) else None
    if key not in NORMS:
        raise InputError(f"unknown norm {norm!r}; choose one of {', '.join(NORMS)}")
    return key


def ball(norm, center, radius=None, *, valid=None, mask=None) -> Ball:
    """The ``norm`` ball of ``radius`` around ``center`` inside ``valid`` (``[0, 1]^n`` by default)."""
    return NORMS[check_norm(norm)](center, radius, valid=valid, mask=mask)


__all__ = ["Ball", "Box", "InputSet", "Intersection", "L0Ball", "L1Ball", "LinfBall", "NORMS", "ball",
           "check_norm", "project_l1"]
