"""Argument checks shared by the problem modules (the clock and the work stack live in the engine)."""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..engine.common import Clock  # noqa: F401 (the problems time their work with it)
from ..model import Network


def class_index(network: Network, value, what: str) -> int:
    try:
        whole = not isinstance(value, (bool, np.bool_)) and int(value) == value
    except (TypeError, ValueError, OverflowError):  # a string, None, NaN, an array ...
        whole = False
    if not whole:
        raise InputError(f"{what} must be a class index (whole number), got {value!r}")
    value = int(value)
    if not 0 <= value < network.n_outputs:
        raise InputError(f"{what} {value} is out of range: the network has classes 0..{network.n_outputs - 1}")
    return value


def finite_nonnegative(value, what: str) -> float:
    """``float(value)`` when it is a finite number >= 0, else a typed error naming ``what``."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{what} must be a finite number >= 0, got {value!r}") from None
    if not np.isfinite(v) or v < 0:
        raise InputError(f"{what} must be a finite number >= 0, got {value}")
    return v


def check_time(time_limit):
    if time_limit is None:
        return
    try:
        ok = float(time_limit) > 0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        shown = repr(time_limit) if isinstance(time_limit, str) else time_limit
        raise InputError(f"time_limit must be positive (seconds) or None, got {shown}")


def resolve_reference(reference, keras_model, network: Network):
    """The source model that must confirm a witness, as a callable ``x -> outputs`` (or None).

    ``reference`` is a Keras model (anything with ``predict``), a PyTorch ``nn.Module`` (run by
    :func:`reluverify.io.torch.torch_forward` on the network's ``input_shape``) or a callable;
    ``keras_model`` is its old name (a DeprecationWarning)."""
    import warnings

    from ..check import keras_logits

    if keras_model is not None:
        warnings.warn("keras_model= is now reference= (the source model, Keras or any callable x -> outputs); "
                      "the old name will be removed", DeprecationWarning, stacklevel=4)
        if reference is not None:
            raise InputError("give the source model once, as reference= (keras_model= is its old name)")
        reference = keras_model
    if reference is None:
        return None
    from ..io.torch import is_torch_module, torch_reference

    if is_torch_module(reference):  # a PyTorch module (never imports torch itself); normalised inputs
        return torch_reference(reference, network)  # when from_torch(mean=, std=) folded them in
    if hasattr(reference, "predict"):
        model = reference
        return lambda x: keras_logits(model, x, network.input_shape)
    if callable(reference):
        return reference
    raise InputError(f"reference must be the source model (a Keras model, a PyTorch module or a callable x -> "
                     f"outputs), got "
                     f"{type(reference).__name__}")
