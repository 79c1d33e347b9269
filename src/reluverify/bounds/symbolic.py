"""Symbolic linear bounds (CROWN/DeepPoly-style back-substitution).

To bound layer ``k``'s pre-activation ``z_k = W_k h_{k-1} + b_k`` we write it as a linear function
of ``h_{k-1}`` and walk back to the input, replacing each layer's activation by the linear lower or
upper relaxation the layer gives (:meth:`reluverify.model.layers.Layer.relaxation`, chosen by the
sign of its coefficient) and its linear map by its transpose (``backward``). For a ReLU
``h = relu(z)``:

* unstable ``l < 0 < u``: ``h <= u (z - l) / (u - l)`` (the chord) and ``h >= a z`` with
  ``a = 1`` if ``u >= -l`` else ``0`` (the adaptive choice of CROWN);
* stable active: ``h = z``; stable inactive: ``h = 0``.

At the input the linear function is maximised/minimised over the box in closed form. The result is
intersected with interval bounds, so it is never looser, and widened for float64 rounding.
"""

from __future__ import annotations

import time

import numpy as np

from ..domain import Box, linear_max, linear_min
from ..model import Network
from .base import Bounds
from .interval import first_layer_or_interval, widen


def back_substitute(network: Network, k: int, lowers: list, uppers: list, domain: Box,
                    weight: np.ndarray | None = None, bias: np.ndarray | None = None) -> tuple:
    """Symbolic bounds of layer ``k``'s pre-activations, given bounds of layers ``0..k-1``.

    With ``weight``/``bias`` given, bounds ``weight @ h_{k-1} + bias`` instead (any linear
    function of layer ``k-1``'s outputs, e.g. the difference of two logits). Each earlier layer is
    walked through its own relaxation (``lower``/``upper``) and linear map (``backward``).
    """
    if weight is None:
        lin = network.layers[k].linear()
        weight, bias = lin.matrix(), lin.bias
    else:
        weight = np.atleast_2d(np.asarray(weight, dtype=np.float64))
        bias = np.atleast_1d(np.asarray(bias, dtype=np.float64))
    A_up = weight.copy()
    A_lo = weight.copy()
    c_up = bias.copy()
    c_lo = bias.copy()
    for j in range(k - 1, -1, -1):
        prev = network.layers[j]
        rel = prev.relaxation(lowers[j], uppers[j])
        D_up, off_up = rel.upper(A_up)
        D_lo, off_lo = rel.lower(A_lo)
        lin = prev.linear(rows=rel.pre_index)
        c_up = c_up + off_up + lin.bias_term(D_up)
        c_lo = c_lo + off_lo + lin.bias_term(D_lo)
        A_up = lin.backward(D_up)
        A_lo = lin.backward(D_lo)
    return linear_min(A_lo, c_lo, domain), linear_max(A_up, c_up, domain)


def symbolic_layer(network: Network, domain: Box, k: int, lowers: list, uppers: list,
                   h_lo: np.ndarray, h_hi: np.ndarray, initial: Bounds | None = None) -> tuple:
    """Bounds of layer ``k``'s pre-activations: interval (from the previous layer's output range
    ``[h_lo, h_hi]``) intersected with back-substitution through layers ``0..k-1``."""
    layer = network.layers[k]
    zl, zu = first_layer_or_interval(layer, domain, k, h_lo, h_hi)
    if k > 0 and not layer.interval_exact:  # (copies of the previous outputs: exact already)
        sl, su = back_substitute(network, k, lowers, uppers, domain)
        # rounding slack scaled by the interval magnitude of the same neuron
        sl, su = widen(sl, su, np.maximum(np.abs(zl), np.abs(zu)))
        zl, zu = np.maximum(zl, sl), np.minimum(zu, su)
    if initial is not None:
        zl, zu = np.maximum(zl, initial.lower[k]), np.minimum(zu, initial.upper[k])
    return zl, np.maximum(zu, zl)  # guard against crossing by rounding


class SymbolicBounds:
    """Strategy object: layer-by-layer back-substitution, intersected with interval bounds."""

    name = "symbolic"

    def compute(self, network: Network, domain: Box, initial: Bounds | None = None) -> Bounds:
        domain.check_size(network.n_inputs)
        t0 = time.perf_counter()
        lowers, uppers = [], []
        h_lo, h_hi = domain.lower, domain.upper
        for k, layer in enumerate(network.layers):
            zl, zu = symbolic_layer(network, domain, k, lowers, uppers, h_lo, h_hi, initial)
            lowers.append(zl)
            uppers.append(zu)
            h_lo, h_hi = layer.output_range(zl, zu)
        bounds = Bounds(network, domain, lowers, uppers, method=self.name)
        bounds.time_s = time.perf_counter() - t0
        bounds.history.append((self.name, bounds.n_unstable, bounds.time_s))
        return bounds
