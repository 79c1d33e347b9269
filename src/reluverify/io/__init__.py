"""Importers that turn models of other frameworks into a :class:`reluverify.Network`.

The heavy frameworks are imported lazily: importing :mod:`reluverify` or :mod:`reluverify.io`
never imports TensorFlow or Keras; they are imported only when an importer is called.
"""

from __future__ import annotations

__all__ = ["from_keras"]


def from_keras(model, name=None):
    """Convert a Keras model (object or path to a ``.keras``/``.h5`` file) into a ``Network``.

    Thin lazy wrapper around :func:`reluverify.io.keras.from_keras`; see there for what is
    supported. Keras is imported only when this function is called.
    """
    from .keras import from_keras as _from_keras

    return _from_keras(model, name=name)
