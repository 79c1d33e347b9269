"""Argument checks, a clock and a work stack shared by the problem modules."""

from __future__ import annotations

import time

import numpy as np

from ..errors import InputError
from ..network import Network


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


class Clock:
    """Seconds since creation and seconds left of an optional time limit."""

    def __init__(self, time_limit):
        self.t0 = time.perf_counter()
        self.limit = time_limit

    def left(self):
        if self.limit is None:
            return None
        return self.limit - (time.perf_counter() - self.t0)

    def remaining(self) -> float:
        """Seconds left; infinity without a time limit (for arithmetic on budgets)."""
        left = self.left()
        return float("inf") if left is None else left

    def expired(self):
        left = self.left()
        return left is not None and left <= 0.01

    def elapsed(self):
        return time.perf_counter() - self.t0


class ArrayStack:
    """Work items stored as rows of a few arrays (sub-boxes, ReLU-split domains), pushed and
    popped in chunks so that thousands of items cost a few large array operations."""

    def __init__(self):
        self.chunks: list = []
        self.size = 0

    def push(self, *arrays) -> None:
        if len(arrays[0]):
            self.chunks.append(arrays)
            self.size += len(arrays[0])

    def pop(self, n: int) -> tuple:
        """About ``n`` boxes from the top (depth first keeps the stack small)."""
        parts, got = [], 0
        while self.chunks and got < n:
            chunk = self.chunks.pop()
            take = min(n - got, len(chunk[0]))
            if take < len(chunk[0]):  # put the rest back
                self.chunks.append(tuple(a[:-take] for a in chunk))
                chunk = tuple(a[-take:] for a in chunk)
            parts.append(chunk)
            got += take
        self.size -= got
        return tuple(np.concatenate([p[i] for p in parts]) for i in range(len(parts[0])))
