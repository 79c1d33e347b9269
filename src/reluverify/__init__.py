"""reluverify: trained ReLU networks as mixed-integer linear programs in Pyomo.

The data flows one way, one module per stage::

    io (keras, ...) -> network -> domain/bounds -> formulation (Pyomo block)
        -> problems (inference, ...) -> solve -> check -> results

Importing reluverify never imports TensorFlow; the Keras importer loads it when called.
"""

from .bounds import Bounds, compute_bounds, interval_bounds
from .domain import Box
from .errors import (
    DatasetError,
    InputError,
    LicenseLimitError,
    MissingDependencyError,
    ModelFileError,
    NetworkError,
    ReluVerifyError,
    SolveError,
    SolverNotAvailableError,
    UnknownSolverError,
    UnsupportedLayerError,
)
from .formulation import NetworkBlock, add_network
from .network import Layer, Network
from .problems.inference import build_inference_model, infer
from .results import InferenceResult, SolveResult, Status
from .solve import SOLVERS, available_solvers, solve

__version__ = "0.1.0"


def from_keras(model, **kwargs) -> Network:
    """Import a Keras model (object or file path) as a :class:`Network` (imports TensorFlow lazily)."""
    from .io.keras import from_keras as _from_keras

    return _from_keras(model, **kwargs)


__all__ = [
    "Box", "Bounds", "DatasetError", "InferenceResult", "InputError", "Layer", "LicenseLimitError",
    "MissingDependencyError", "ModelFileError", "Network", "NetworkBlock", "NetworkError", "ReluVerifyError", "SOLVERS",
    "SolveError", "SolveResult", "SolverNotAvailableError", "Status", "UnknownSolverError",
    "UnsupportedLayerError", "add_network", "available_solvers", "build_inference_model",
    "compute_bounds", "from_keras", "infer", "interval_bounds", "solve",
]
