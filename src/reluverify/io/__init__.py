"""Importers that turn models of other frameworks into a :class:`reluverify.Network`.

The heavy frameworks are imported lazily: importing :mod:`reluverify` or :mod:`reluverify.io`
never imports TensorFlow, Keras, onnx, onnxruntime or torch; they are imported only when an
importer is called.
"""

from __future__ import annotations

__all__ = ["from_keras", "from_onnx", "from_torch", "onnxruntime_forward", "read_vnnlib", "torch_forward"]


def from_keras(model, name=None):
    """Convert a Keras model (object or path to a ``.keras``/``.h5`` file) into a ``Network``.

    Thin lazy wrapper around :func:`reluverify.io.keras.from_keras`; see there for what is
    supported. Keras is imported only when this function is called.
    """
    from .keras import from_keras as _from_keras

    return _from_keras(model, name=name)


def read_vnnlib(source, *, n_inputs=None, n_outputs=None, name=None):
    """Read a VNN-LIB property file (or text) into a :class:`reluverify.spec.Property`.

    Thin lazy wrapper around :func:`reluverify.io.vnnlib.read_vnnlib`; see there for the accepted
    language, the size checks and the errors raised.
    """
    from .vnnlib import read_vnnlib as _read_vnnlib

    return _read_vnnlib(source, n_inputs=n_inputs, n_outputs=n_outputs, name=name)


def from_onnx(model, *, name=None, mean=None, std=None):
    """Convert an ONNX model (path to a ``.onnx``/``.onnx.gz`` file, or ``onnx.ModelProto``) into a ``Network``.

    Thin lazy wrapper around :func:`reluverify.io.onnx.from_onnx`; see there for what is
    supported. The onnx package is imported only when this function is called.
    """
    from .onnx import from_onnx as _from_onnx

    return _from_onnx(model, name=name, mean=mean, std=std)


def onnxruntime_forward(model, x):
    """Run an ONNX model with onnxruntime on one flattened input (or a 2-D batch); float64 output.

    Thin lazy wrapper around :func:`reluverify.io.onnx.onnxruntime_forward`.
    """
    from .onnx import onnxruntime_forward as _onnxruntime_forward

    return _onnxruntime_forward(model, x)


def from_torch(model, input_shape=None, *, name=None, check=True, mean=None, std=None):
    """Convert a PyTorch ``nn.Sequential`` (or a ``.pt``/``.pth`` file) into a ``Network``.

    Thin lazy wrapper around :func:`reluverify.io.torch.from_torch`; see there for what is
    supported. torch is imported only when this function is called.
    """
    from .torch import from_torch as _from_torch

    return _from_torch(model, input_shape, name=name, check=check, mean=mean, std=std)


def torch_forward(model, x, input_shape):
    """Run a PyTorch module on one flattened input (or a 2-D batch); float64 output.

    Thin lazy wrapper around :func:`reluverify.io.torch.torch_forward`.
    """
    from .torch import torch_forward as _torch_forward

    return _torch_forward(model, x, input_shape)
