"""reluverify: trained ReLU networks as mixed-integer linear programs in Pyomo.

The data flows one way, one module per stage::

    io (keras, onnx, vnnlib) -> network / spec -> domain/bounds -> formulation (Pyomo block or
        arrays) -> problems (inference, adversarial, verification) -> solve -> check -> results

``runner`` runs VNN-COMP-style instance lists (resumable) and scores them.
Importing reluverify never imports TensorFlow or onnx; the importers load them when called.
"""

from .bounds import Bounds, compute_bounds, interval_bounds
from .domain import Box
from .errors import (
    DatasetError,
    InputError,
    LicenseLimitError,
    MissingDependencyError,
    ModelError,
    ModelFileError,
    NetworkError,
    ReluVerifyError,
    SolveError,
    SolverNotAvailableError,
    UnknownSolverError,
    UnsupportedLayerError,
)
from .formulation import NetworkBlock, add_network
from .model import Layer, Network
from .problems.inference import build_inference_model, infer
from .problems.verification import check_property
from .results import InferenceResult, PropertyResult, PropertyVerdict, SolveResult, Status
from .spec import Property, Region
from .solvers import SOLVERS, available_solvers, solve
from .threads import blas_threads, set_blas_threads

__version__ = "0.1.0"


def from_keras(model, **kwargs) -> Network:
    """Import a Keras model (object or file path) as a :class:`Network` (imports TensorFlow lazily)."""
    from .io.keras import from_keras as _from_keras

    return _from_keras(model, **kwargs)


def from_onnx(model, **kwargs) -> Network:
    """Import an ONNX model (path, ``.onnx.gz`` or ``ModelProto``) as a :class:`Network` (imports onnx lazily)."""
    from .io.onnx import from_onnx as _from_onnx

    return _from_onnx(model, **kwargs)


def read_vnnlib(source, **kwargs) -> Property:
    """Read a VNN-LIB property (path, ``.vnnlib.gz`` or text) as a :class:`Property`."""
    from .io.vnnlib import read_vnnlib as _read_vnnlib

    return _read_vnnlib(source, **kwargs)


__all__ = [
    "Property", "PropertyResult", "PropertyVerdict", "Region", "check_property", "from_onnx", "read_vnnlib",
    "Box", "Bounds", "DatasetError", "InferenceResult", "InputError", "Layer", "LicenseLimitError",
    "MissingDependencyError", "ModelError", "ModelFileError", "Network", "NetworkBlock", "NetworkError", "ReluVerifyError", "SOLVERS",
    "SolveError", "SolveResult", "SolverNotAvailableError", "Status", "UnknownSolverError",
    "UnsupportedLayerError", "add_network", "available_solvers", "blas_threads", "set_blas_threads", "build_inference_model",
    "compute_bounds", "from_keras", "infer", "interval_bounds", "solve",
]
