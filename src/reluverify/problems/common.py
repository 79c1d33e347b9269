"""Argument checks shared by the problem modules (the clock and the work stack live in the engine)."""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..engine.common import ArrayStack, Clock  # noqa: F401 (used by problems.branch)
from ..model import Network


def class_index(network: Network, value, what: str) -> int:
    try:
        whole = not isinstance(value, (bool, np.bool_)) and int(value) == value
    except (TypeError, ValueError, OverflowError):  # a string, None, NaN, an array ...
        whole = False
    if not whole:
        raise InputError(f"{what} must be a class index (whole number), got {value!r}")
    value = int(value)
    if not 0 <= value < network.n_outputs:
        raise InputError(f"{what} {value} is out of range: the network has classes 0..{network.n_outputs - 1}")
    return value


def finite_nonnegative(value, what: str) -> float:
    """``float(value)`` when it is a finite number >= 0, else a typed error naming ``what``."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{what} must be a finite number >= 0, got {value!r}") from None
    if not np.isfinite(v) or v < 0:
        raise InputError(f"{what} must be a finite number >= 0, got {value}")
    return v


def check_time(time_limit):
    if time_limit is None:
        return
    try:
        ok = float(time_limit) > 0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        shown = repr(time_limit) if isinstance(time_limit, str) else time_limit
        raise InputError(f"time_limit must be positive (seconds) or None, got {shown}")
