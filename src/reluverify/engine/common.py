"""A clock and a work stack shared by the engine's stages."""

from __future__ import annotations

import time

import numpy as np


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
