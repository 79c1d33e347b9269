"""Framework-neutral models: a :class:`Network` is a sequence of layer objects.

Layer kinds live in :mod:`reluverify.model.layers`, one module per kind (the interface is
documented in :mod:`reluverify.model.layers.base`); ``Layer(weight, bias, activation)`` builds the
first kind, :class:`Dense`.
"""

from .layers import KINDS, Dense, Layer, register
from .network import Network

__all__ = ["Dense", "KINDS", "Layer", "Network", "register"]
