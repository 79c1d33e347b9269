"""The one result type every bound strategy returns, and the strategy interface."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from ..domain import Box
from ..model import Network
from ..model.layers.base import ACTIVE, INACTIVE, UNSTABLE  # noqa: F401 (re-exported: reluverify.bounds.ACTIVE, ...)
from ..results import ShortRepr


@dataclass(repr=False)
class Bounds(ShortRepr):
    """Per-neuron pre-activation bounds of a network over an input domain.

    ``lower[k]``/``upper[k]`` bound the pre-activation of layer ``k`` (``W_k h_{k-1} + b_k`` for a
    Dense layer; asymmetric, one value per entry). Sound: every input in ``domain`` gives pre-activations
    inside them (checked in float64 with a small outward widening, see :mod:`reluverify.tolerances`).
    """

    network: Network
    domain: Box
    lower: list
    upper: list
    method: str
    time_s: float = 0.0
    history: list = field(default_factory=list)  # (method, n_unstable, seconds) per refinement step

    def phases(self, k: int) -> np.ndarray:
        """Per neuron of layer ``k``: ``ACTIVE`` (1), ``INACTIVE`` (-1) or ``UNSTABLE`` (0).

        Linear layers have no phase; their neurons are reported ``ACTIVE`` (identity).
        """
        return self.network.layers[k].phases(self.lower[k], self.upper[k])

    def unstable_counts(self) -> list:
        """Number of unstable ReLUs per layer (0 for linear layers)."""
        return [int(np.sum(self.phases(k) == UNSTABLE)) for k in range(len(self.lower))]

    @property
    def n_unstable(self) -> int:
        return sum(self.unstable_counts())

    def post_activation(self, k: int) -> tuple:
        """Bounds on the output of layer ``k`` (after its activation; new arrays)."""
        return self.network.layers[k].output_range(self.lower[k], self.upper[k])

    def output_bounds(self) -> tuple:
        return self.post_activation(len(self.lower) - 1)

    def contains(self, x, atol: float = 0.0) -> bool:
        """Whether the pre-activations of input(s) ``x`` lie inside the bounds (a soundness check)."""
        _, pre = self.network.forward(x, return_all=True)
        return all(
            np.all(z >= lo - atol) and np.all(z <= hi + atol) for z, lo, hi in zip(pre, self.lower, self.upper)
        )

    def summary(self) -> str:
        counts = self.unstable_counts()
        relu_layers = [k for k, layer in enumerate(self.network.layers) if layer.n_nonlinear]
        per_layer = ", ".join(f"layer {k}: {counts[k]}/{self.network.layers[k].n_pre}" for k in relu_layers)
        return (
            f"{self.method} bounds in {self.time_s * 1e3:.1f} ms: {self.n_unstable} of "
            f"{self.network.n_relu} ReLUs unstable ({per_layer})"
        )


class BoundStrategy(Protocol):
    """A way of computing :class:`Bounds`. Tighter strategies may start from ``initial`` bounds."""

    name: str

    def compute(self, network: Network, domain: Box, initial: Bounds | None = None) -> Bounds:  # pragma: no cover
        ...


def logit_difference_upper(bounds: Bounds, i: int, j: int) -> float:
    """A sound upper bound of ``out_i - out_j`` over the domain.

    For an affine last layer: the better of interval arithmetic on the difference row and symbolic
    back-substitution of that row through every layer (both widened for rounding); much tighter
    than subtracting the two outputs' bounds.
    """
    from .interval import affine_interval, widen
    from .symbolic import back_substitute

    net = bounds.network
    last = net.layers[-1]
    if not last.affine:
        return float(bounds.output_bounds()[1][i] - bounds.output_bounds()[0][j])
    L = len(net.layers) - 1
    if L == 0:
        lo, hi = bounds.domain.lower, bounds.domain.upper
    else:
        lo, hi = bounds.post_activation(L - 1)
    e = np.zeros((1, last.n_out))  # out_i - out_j as a row over the last layer's inputs
    e[0, i] += 1.0
    e[0, j] -= 1.0
    lin = last.linear()
    w, b = lin.backward(e), lin.bias_term(e)
    il, iu = affine_interval(w, b, lo, hi)
    if L == 0:
        return float(iu[0])
    sl, su = back_substitute(net, L, bounds.lower, bounds.upper, bounds.domain, w, b)
    su = widen(sl, su, np.maximum(np.abs(il), np.abs(iu)))[1]
    return float(min(iu[0], su[0]))


def big_m(bounds) -> float:
    """The largest finite magnitude of any pre-activation bound (the model's largest big-M)."""
    vals = [np.abs(np.concatenate([np.ravel(lo), np.ravel(hi)])) for lo, hi in zip(bounds.lower, bounds.upper)]
    vals = np.concatenate(vals) if vals else np.zeros(0)
    vals = vals[np.isfinite(vals)]
    return float(vals.max()) if vals.size else 0.0
