"""BLAS threads in reluverify's own NumPy loops: one by default.

The bound, attack and branching stages are many small matrix products. With OpenBLAS's default
(one thread per core) two such jobs on a 2-core machine spin against each other: ``check_property``
on mnist_fc 256x4 prop_2_0.03 took 2.8-3.1 s with one BLAS thread and 57 s (or a 60 s timeout)
with two, on the same loaded machine (issue #13). So every public entry point of reluverify runs
with BLAS limited to :func:`blas_threads` threads (threadpoolctl), and restores the caller's
setting on return. The solvers' own threads (``threads=``) are not BLAS threads and are not
affected.

Change it with :func:`set_blas_threads` (``None`` leaves BLAS as it is) or the environment
variable ``RELUVERIFY_BLAS_THREADS`` (a whole number, or ``none``), read once at import.
"""

from __future__ import annotations

import functools
import os
import threading
from contextlib import contextmanager

from .errors import InputError

DEFAULT_BLAS_THREADS = 1


def _parse(value, what: str) -> int | None:
    if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "")):
        return None
    try:
        n = int(value)
        ok = n == float(value) and n >= 1
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise InputError(f"{what} must be a whole number >= 1, or None to leave BLAS alone; got {value!r}")
    return n


_limit = _parse(os.environ.get("RELUVERIFY_BLAS_THREADS", DEFAULT_BLAS_THREADS), "RELUVERIFY_BLAS_THREADS")
_state = threading.local()
_controller = None


def blas_threads() -> int | None:
    """The number of BLAS threads reluverify's entry points run with (``None``: not limited)."""
    return _limit


def set_blas_threads(n: int | None) -> None:
    """Run reluverify's NumPy stages with ``n`` BLAS threads (``None``: leave BLAS as it is)."""
    global _limit
    _limit = _parse(n, "the number of BLAS threads")


def _get_controller():
    global _controller
    if _controller is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # pragma: no cover - threadpoolctl is a core dependency
            _controller = False
        else:
            _controller = ThreadpoolController()
    return _controller


@contextmanager
def limited_blas():
    """Within this block BLAS runs with :func:`blas_threads` threads (nested blocks are free)."""
    depth = getattr(_state, "depth", 0)
    controller = _get_controller() if depth == 0 and _limit is not None else None
    _state.depth = depth + 1
    try:
        if controller:
            with controller.limit(limits=_limit, user_api="blas"):
                yield
        else:
            yield
    finally:
        _state.depth = depth


def limit_blas(func):
    """Decorator: run ``func`` inside :func:`limited_blas`."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with limited_blas():
            return func(*args, **kwargs)

    return wrapper
