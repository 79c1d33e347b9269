"""The first layer kind: a dense affine map ``z = W h + b`` followed by ReLU or the identity.

:class:`Dense` is the reference implementation of the layer interface
(:mod:`reluverify.model.layers.base`): its linear part is :class:`DenseMap` (matrix products,
interval arithmetic ``W m + b ± |W| r``), its nonlinearity one of the
:data:`~reluverify.model.layers.elementwise.ACTIVATIONS` (ReLU or identity), which bring the
relaxations, phases and MILP rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...errors import NetworkError
from .base import csr_rows, widen
from .elementwise import ACTIVATIONS, ElementwiseActivation, ElementwiseLayer


def affine_interval(weight: np.ndarray, bias: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple:
    """Sound bounds of ``weight @ h + bias`` over ``lo <= h <= hi`` (one box, or a batch of boxes
    as rows of ``lo``/``hi``), widened for rounding."""
    mid = 0.5 * (lo + hi)
    rad = 0.5 * (hi - lo)
    absw = np.abs(weight)
    centre = mid @ weight.T + bias
    spread = rad @ absw.T
    magnitude = np.maximum(np.abs(lo), np.abs(hi)) @ absw.T + np.abs(bias)
    return widen(centre - spread, centre + spread, magnitude)


class DenseMap:
    """``z = W h + b`` with a dense ``W`` (possibly a row/column selection of a layer's matrix);
    the :class:`~reluverify.model.layers.base.LinearMap` of :class:`Dense`."""

    __slots__ = ("weight", "bias")

    def __init__(self, weight: np.ndarray, bias: np.ndarray):
        self.weight = weight
        self.bias = bias

    def forward(self, h: np.ndarray) -> np.ndarray:
        return h @ self.weight.T + self.bias

    def backward(self, A: np.ndarray) -> np.ndarray:
        return A @ self.weight

    def bias_term(self, A: np.ndarray) -> np.ndarray:
        return A @ self.bias

    def matrix(self) -> np.ndarray:
        return self.weight

    def interval(self, lo: np.ndarray, hi: np.ndarray) -> tuple:
        return affine_interval(self.weight, self.bias, lo, hi)

    def csr(self, h_ids: np.ndarray, extra_values: list, extra_ids: list) -> tuple:
        return csr_rows(self.weight, h_ids, extra_values, extra_ids)


def dense_map(weight: np.ndarray, bias: np.ndarray, rows=None, cols=None) -> DenseMap:
    """The :class:`DenseMap` of ``weight``/``bias`` restricted to ``rows`` (1-D, or 2-D: one
    selection per box) and ``cols`` (None: all); for kinds whose linear part is a dense matrix."""
    if rows is None:
        return DenseMap(weight if cols is None else weight[:, cols], bias)
    if cols is None:
        return DenseMap(weight[rows], bias[rows])
    if np.ndim(rows) > 1:
        return DenseMap(weight[rows][..., cols], bias[rows])
    return DenseMap(weight[np.ix_(rows, cols)], bias[rows])


@dataclass(frozen=True)
class Dense(ElementwiseLayer):
    """One affine map followed by an activation (``"relu"`` or ``"linear"``).

    ``weight`` has shape ``(n_out, n_in)`` (float64, read-only), ``bias`` ``(n_out,)`` (None:
    zeros), ``activation`` is the activation's name."""

    weight: np.ndarray
    bias: np.ndarray
    activation: str = "relu"

    kind = "dense"
    state_keys = ("W", "b")

    def __post_init__(self) -> None:
        w = np.array(self.weight, dtype=np.float64, copy=True)
        if w.ndim != 2:
            raise NetworkError(
                f"a layer's weight must be a 2-D matrix of shape (n_out, n_in), got shape {w.shape}"
            )
        b = np.zeros(w.shape[0]) if self.bias is None else np.array(self.bias, dtype=np.float64, copy=True)
        if b.shape != (w.shape[0],):
            raise NetworkError(
                f"a layer's bias must have shape ({w.shape[0]},) to match its weight of shape "
                f"{w.shape}, got {b.shape}"
            )
        if w.size == 0:
            raise NetworkError(f"a layer has an empty weight matrix of shape {w.shape}; every layer needs "
                               "at least one input and one output")
        if not np.all(np.isfinite(w)) or not np.all(np.isfinite(b)):
            bad = "weight" if not np.all(np.isfinite(w)) else "bias"
            raise NetworkError(
                f"a layer's {bad} contains NaN or infinite values; retrain or clean the model "
                "before verifying it"
            )
        if not isinstance(self.activation, str) or self.activation not in ACTIVATIONS:
            raise NetworkError(
                f"unknown activation {self.activation!r}; supported activations are {tuple(ACTIVATIONS)}"
            )
        w.setflags(write=False)
        b.setflags(write=False)
        object.__setattr__(self, "weight", w)
        object.__setattr__(self, "bias", b)

    @property
    def n_in(self) -> int:
        return int(self.weight.shape[1])

    @property
    def n_out(self) -> int:
        return int(self.weight.shape[0])

    @property
    def rule(self) -> ElementwiseActivation:
        return ACTIVATIONS[self.activation]

    def preactivation(self, h: np.ndarray) -> np.ndarray:
        return h @ self.weight.T + self.bias

    def linear(self, rows=None, cols=None) -> DenseMap:
        return dense_map(self.weight, self.bias, rows, cols)

    def without_activation(self) -> "Dense":
        return Dense(self.weight, self.bias, "linear")

    def interval(self, lo: np.ndarray, hi: np.ndarray) -> tuple:
        return affine_interval(self.weight, self.bias, lo, hi)

    def state(self) -> tuple:
        return self.activation, {"W": self.weight, "b": self.bias}

    @classmethod
    def from_state(cls, spec: str, arrays: dict) -> "Dense":
        return cls(arrays["W"], arrays["b"], spec)
