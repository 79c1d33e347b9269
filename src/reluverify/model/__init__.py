"""Framework-neutral models: a :class:`Network` is a sequence of layer objects.

Layer kinds live in :mod:`reluverify.model.layers`, one module per kind (the interface is
documented in :mod:`reluverify.model.layers.base`); ``Layer(weight, bias, activation)`` builds the
first kind, :class:`Dense`; :class:`Conv2D` is the 2-D convolution, :class:`MaxPool2D` max pooling.
"""

from .layers import KINDS, Conv2D, Dense, Layer, MaxPool2D, register
from .network import Network

__all__ = ["Conv2D", "Dense", "KINDS", "Layer", "MaxPool2D", "Network", "register"]
