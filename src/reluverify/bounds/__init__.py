"""Per-neuron pre-activation bounds over an input domain.

Every strategy returns the same :class:`Bounds` object, so the formulation does not care how the
bounds were found. Strategies are chosen by name in :func:`compute_bounds`; tighter ones
(symbolic, LP, MIP, progressive) register themselves in ``STRATEGIES``.
"""

from __future__ import annotations

from ..domain import Box
from ..errors import InputError
from ..model import Network
from .base import ACTIVE, INACTIVE, UNSTABLE, Bounds, BoundStrategy
from .interval import IntervalBounds, interval_bounds
from .lp import LPBounds
from .optimised import OptimisedBounds
from .symbolic import SymbolicBounds
from ..threads import limit_blas

STRATEGIES = {"interval": IntervalBounds, "symbolic": SymbolicBounds, "lp": LPBounds, "optimised": OptimisedBounds}


def get_strategy(method) -> BoundStrategy:
    """A strategy object from a name in ``STRATEGIES`` (or a strategy object, returned as is)."""
    if isinstance(method, str):
        try:
            return STRATEGIES[method]()
        except KeyError:
            raise InputError(
                f"unknown bound method {method!r}; choose one of {sorted(STRATEGIES)}"
            ) from None
    if not hasattr(method, "compute"):
        raise InputError(f"a bound method must be a name or an object with compute(); got {method!r}")
    return method


@limit_blas
def compute_bounds(network: Network, domain: Box, method="interval") -> Bounds:
    """Bounds of every neuron of ``network`` over ``domain`` with the given strategy."""
    return get_strategy(method).compute(network, domain)


__all__ = [
    "ACTIVE", "INACTIVE", "UNSTABLE", "Bounds", "BoundStrategy", "IntervalBounds", "LPBounds", "OptimisedBounds", "SymbolicBounds",
    "STRATEGIES", "compute_bounds", "get_strategy", "interval_bounds",
]
