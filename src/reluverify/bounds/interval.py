"""Interval bound propagation (IBP): the cheapest sound bounds, in closed form.

Each layer gives its own interval rule (:meth:`reluverify.model.layers.Layer.interval`): for a
Dense ``z = W h + b`` with ``h`` in ``[l, u]``, ``z`` lies in ``W m + b ± |W| r`` where ``m`` is the
box centre and ``r`` its radius. Each bound is widened outward to absorb float64 rounding.
"""

from __future__ import annotations

import time

import numpy as np

from ..domain import Box, linear_max, linear_min
from ..model import Network
from ..model.layers import affine_interval, widen  # noqa: F401 (their home is reluverify.model.layers)
from .base import Bounds


def first_layer_or_interval(layer, domain: Box, k: int, lo: np.ndarray, hi: np.ndarray) -> tuple:
    """Interval bounds of layer ``k`` (its own rule); for the first layer over a domain smaller
    than its box (an L1 ball ∩ box: a fractional knapsack per neuron of the layer's matrix), the
    exact range over the domain, widened like every bound."""
    zl, zu = layer.interval(lo, hi)
    if k == 0 and not domain.is_its_box:
        lin = layer.linear()
        weight, bias = lin.matrix(), lin.bias
        kl = linear_min(weight, bias, domain)
        ku = linear_max(weight, bias, domain)
        kl, ku = widen(kl, ku, np.maximum(np.abs(zl), np.abs(zu)))
        zl, zu = np.maximum(zl, kl), np.minimum(zu, ku)
    return zl, zu


class IntervalBounds:
    """Strategy object: interval bound propagation, layer by layer."""

    name = "interval"

    def compute(self, network: Network, domain: Box, initial: Bounds | None = None) -> Bounds:
        domain.check_size(network.n_inputs)
        t0 = time.perf_counter()
        lo, hi = domain.lower, domain.upper
        lowers, uppers = [], []
        for k, layer in enumerate(network.layers):
            zl, zu = first_layer_or_interval(layer, domain, k, lo, hi)
            if initial is not None:  # never looser than what we were given
                zl, zu = np.maximum(zl, initial.lower[k]), np.minimum(zu, initial.upper[k])
            lowers.append(zl)
            uppers.append(zu)
            lo, hi = layer.output_range(zl, zu)
        bounds = Bounds(network, domain, lowers, uppers, method=self.name)
        bounds.time_s = time.perf_counter() - t0
        bounds.history.append((self.name, bounds.n_unstable, bounds.time_s))
        return bounds


def interval_bounds(network: Network, domain: Box) -> Bounds:
    """Interval bounds of ``network`` over ``domain``."""
    return IntervalBounds().compute(network, domain)
