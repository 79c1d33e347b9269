"""Interval bound propagation (IBP): the cheapest sound bounds, in closed form.

For ``z = W h + b`` with ``h`` in ``[l, u]``: ``z`` lies in ``W m + b ± |W| r`` where ``m`` is the
box centre and ``r`` its radius. Each bound is widened outward to absorb float64 rounding.
"""

from __future__ import annotations

import time

import numpy as np

from ..domain import Box, L1Box, linear_max, linear_min
from ..model import Network
from ..tolerances import BOUND_ABS_WIDENING, BOUND_REL_WIDENING
from .base import Bounds


def widen(lower: np.ndarray, upper: np.ndarray, magnitude: np.ndarray) -> tuple:
    """Widen ``[lower, upper]`` outward by the rounding slack for values of size ``magnitude``."""
    slack = BOUND_REL_WIDENING * magnitude + BOUND_ABS_WIDENING
    return lower - slack, upper + slack


def affine_interval(weight: np.ndarray, bias: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple:
    """Sound bounds of ``weight @ h + bias`` over ``lo <= h <= hi`` (one box, or a batch of boxes
    as rows of ``lo``/``hi``)."""
    mid = 0.5 * (lo + hi)
    rad = 0.5 * (hi - lo)
    absw = np.abs(weight)
    centre = mid @ weight.T + bias
    spread = rad @ absw.T
    magnitude = np.maximum(np.abs(lo), np.abs(hi)) @ absw.T + np.abs(bias)
    return widen(centre - spread, centre + spread, magnitude)


def first_layer_or_interval(layer, domain: Box, k: int, lo: np.ndarray, hi: np.ndarray) -> tuple:
    """Interval bounds of layer ``k``; for the first layer over an :class:`L1Box`, the exact range
    over the L1 ball ∩ box (a fractional knapsack per neuron), widened like every bound."""
    zl, zu = affine_interval(layer.weight, layer.bias, lo, hi)
    if k == 0 and isinstance(domain, L1Box):
        kl = linear_min(layer.weight, layer.bias, domain)
        ku = linear_max(layer.weight, layer.bias, domain)
        kl, ku = widen(kl, ku, np.maximum(np.abs(zl), np.abs(zu)))
        zl, zu = np.maximum(zl, kl), np.minimum(zu, ku)
    return zl, zu


def activation_range(layer, zl: np.ndarray, zu: np.ndarray) -> tuple:
    """Bounds of a layer's output from bounds ``[zl, zu]`` of its pre-activation."""
    if layer.activation == "relu":
        return np.maximum(zl, 0.0), np.maximum(zu, 0.0)
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
            lo, hi = activation_range(layer, zl, zu)
        bounds = Bounds(network, domain, lowers, uppers, method=self.name)
        bounds.time_s = time.perf_counter() - t0
        bounds.history.append((self.name, bounds.n_unstable, bounds.time_s))
        return bounds


def interval_bounds(network: Network, domain: Box) -> Bounds:
    """Interval bounds of ``network`` over ``domain``."""
    return IntervalBounds().compute(network, domain)
