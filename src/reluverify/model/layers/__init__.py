"""Layer kinds: one module per kind, and the registry that names them.

``KINDS`` maps a kind's name (``Layer.kind``) to its class; :func:`register` adds one (a class
decorator). ``Network.save``/``load`` store each layer's kind, and importers build layers by kind.
The interface every kind implements is documented in :mod:`reluverify.model.layers.base`;
:class:`~reluverify.model.layers.dense.Dense` is the first kind and the reference implementation.
"""

from __future__ import annotations

import re

import numpy as np

from ...errors import ModelFileError
from .base import ACTIVE, INACTIVE, UNSTABLE, Layer, LinearMap, LpRows, MilpPlan, RowBlock, csr_rows, widen
from .conv import Conv2D, ConvMap
from .dense import Dense, DenseMap, affine_interval, dense_map
from .elementwise import (
    ACTIVATIONS,
    ElementwiseActivation,
    ElementwiseLayer,
    ElementwiseRelaxation,
    Identity,
    ReLU,
)
from .maxpool import GatherMap, MaxPool2D, MaxPoolRelaxation

KINDS: dict = {}

# kinds whose files an older reluverify (file version 1: W{i}, b{i}, activations) can read
_V1_KINDS = ("dense",)


def register(cls):
    """Register a layer kind under ``cls.kind`` (usable as a class decorator); returns ``cls``."""
    name = getattr(cls, "kind", "")
    if not (isinstance(name, str) and re.fullmatch(r"[a-z][a-z0-9_]*", name)):
        raise ValueError(f"a layer kind needs a lower-case name in 'kind' (letters, digits, _), got {name!r}")
    if not (isinstance(cls, type) and issubclass(cls, Layer)):
        raise ValueError(f"{cls!r} is not a subclass of reluverify.model.layers.Layer")
    for key in cls.state_keys:
        if not re.fullmatch(r"[A-Za-z_]+", key):
            raise ValueError(f"state key {key!r} of kind {name!r} must be letters or _ (file entries are key + index)")
    if KINDS.get(name, cls) is not cls:
        raise ValueError(f"layer kind {name!r} is already registered (by {KINDS[name].__qualname__})")
    KINDS[name] = cls
    return cls


register(Dense)
register(Conv2D)
register(MaxPool2D)


def get_kind(name: str):
    """The class registered as ``name``."""
    try:
        return KINDS[name]
    except KeyError:
        raise KeyError(f"layer kind {name!r} is not registered; known kinds: {sorted(KINDS)} (import the "
                       "module that defines it before loading)") from None


def layers_to_arrays(layers) -> tuple:
    """``(version, arrays)`` for ``Network.save``: ``kinds`` and ``activations`` (each layer's
    kind and spec string, one entry per layer) and each layer's state arrays as ``{key}{i}``.
    Networks of Dense layers only are written as file version 1 (``W{i}``, ``b{i}``), which any
    reluverify reads; others as version 2."""
    kinds, specs, arrays = [], [], {}
    for i, layer in enumerate(layers):
        spec, state = layer.state()
        kinds.append(layer.kind)
        specs.append(spec)
        for key in type(layer).state_keys:
            arrays[f"{key}{i}"] = state[key]
    version = 1 if all(k in _V1_KINDS for k in kinds) else 2
    arrays["kinds"] = np.array(kinds)
    arrays["activations"] = np.array(specs)
    return version, arrays


def layers_from_arrays(data, path: str) -> list:
    """The layers of a network file opened with ``np.load`` (version 1 files: every layer Dense)."""
    files = set(data.files)
    specs = [str(a) for a in data["activations"]]
    kinds = [str(k) for k in data["kinds"]] if "kinds" in files else ["dense"] * len(specs)
    if len(kinds) != len(specs):
        raise ModelFileError(f"{path!r} lists {len(kinds)} layer kinds but {len(specs)} layers")
    layers = []
    for i, (kind, spec) in enumerate(zip(kinds, specs)):
        try:
            cls = get_kind(kind)
        except KeyError as exc:
            raise ModelFileError(f"{path!r}: layer {i}: {exc.args[0]}") from None
        names = [f"{key}{i}" for key in cls.state_keys]
        if any(name not in files for name in names):
            raise ModelFileError(f"{path!r} lacks the arrays of layer {i} ({'/'.join(names)})")
        layers.append(cls.from_state(spec, {key: data[name] for key, name in zip(cls.state_keys, names)}))
    return layers


__all__ = [
    "ACTIVATIONS", "ACTIVE", "Conv2D", "ConvMap", "Dense", "DenseMap", "ElementwiseActivation", "ElementwiseLayer",
    "ElementwiseRelaxation", "GatherMap", "INACTIVE", "Identity", "KINDS", "Layer", "LinearMap", "LpRows",
    "MaxPool2D", "MaxPoolRelaxation", "MilpPlan",
    "ReLU", "RowBlock", "UNSTABLE", "affine_interval", "csr_rows", "dense_map", "get_kind", "layers_from_arrays",
    "layers_to_arrays", "register", "widen",
]
