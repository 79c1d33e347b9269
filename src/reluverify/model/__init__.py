"""Framework-neutral models: a :class:`Network` is a sequence of layer objects."""

from .network import Layer, Network

__all__ = ["Layer", "Network"]
