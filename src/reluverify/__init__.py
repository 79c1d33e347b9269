"""reluverify: trained ReLU networks as mixed-integer linear programs, and the questions they answer.

The data flows one way, one folder or module per stage (docs/architecture.md)::

    io/ (keras, onnx, vnnlib) -> model/ (Network of layer objects) -> sets/ (input sets)
        -> bounds/ -> formulation (Pyomo block or arrays) -> engine/ (one staged procedure:
        falsify, bounds, split / branch, MILP) -> solvers/ (backends) -> check -> results

``problems/`` holds the public questions, each a thin builder of the engine's query:
:func:`verify_robustness`, :func:`minimal_distortion`, :func:`max_confidence`,
:func:`universal_perturbation`, :func:`class_prototype`, :func:`check_property`, :func:`infer`.
``runner`` runs VNN-COMP-style instance lists (resumable) and scores them.
Importing reluverify never imports TensorFlow, onnx, torch, scikit-learn, xgboost or lightgbm; the importers
load them when called. Tree ensembles (:class:`TreeEnsemble`, from :func:`from_sklearn`, :func:`from_xgboost`,
:func:`from_lightgbm`) answer the same questions as networks (:mod:`reluverify.trees`).
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
from .model.trees import TreeEnsemble
from .domain import Perturbation
from .engine.options import Tuning
from .evaluate import EvaluationResult, StoreMismatchError, evaluate_robustness
from .problems import AdversarialModel, UniversalResult, class_prototype, max_confidence, minimal_distortion, \
    universal_perturbation, verify_robustness
from .problems.inference import build_inference_model, infer
from .problems.verification import check_property
from .results import AdversarialResult, InferenceResult, PropertyResult, PropertyVerdict, SolveResult, Status, Verdict
from .sets import InputSet, Intersection, L0Ball, L1Ball, LinfBall, ball
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


def from_torch(model, input_shape=None, **kwargs) -> Network:
    """Import a PyTorch ``nn.Sequential`` (or a ``.pt``/``.pth`` file: a saved module or TorchScript) as a
    :class:`Network` (io/torch.py; imports torch lazily, the ``torch`` extra). ``input_shape``: one
    input's shape without the batch dimension, e.g. ``(1, 28, 28)``."""
    from .io.torch import from_torch as _from_torch

    return _from_torch(model, input_shape, **kwargs)


def from_sklearn(model, **kwargs):
    """Import a fitted scikit-learn tree model (decision tree, random forest, extra trees, gradient
    boosting) as a :class:`TreeEnsemble` (io/sklearn.py; scikit-learn itself is not imported)."""
    from .io.sklearn import from_sklearn as _from_sklearn

    return _from_sklearn(model, **kwargs)


def from_xgboost(model, **kwargs):
    """Import an XGBoost model (``XGBClassifier``, ``XGBRegressor``, ``Booster``) as a
    :class:`TreeEnsemble` (io/xgboost.py; imports xgboost lazily, the ``xgboost`` extra)."""
    from .io.xgboost import from_xgboost as _from_xgboost

    return _from_xgboost(model, **kwargs)


def from_lightgbm(model, **kwargs):
    """Import a LightGBM model (``LGBMClassifier``, ``LGBMRegressor``, ``Booster``) as a
    :class:`TreeEnsemble` (io/lightgbm.py; imports lightgbm lazily, the ``lightgbm`` extra)."""
    from .io.lightgbm import from_lightgbm as _from_lightgbm

    return _from_lightgbm(model, **kwargs)


def read_vnnlib(source, **kwargs) -> Property:
    """Read a VNN-LIB property (path, ``.vnnlib.gz`` or text) as a :class:`Property`."""
    from .io.vnnlib import read_vnnlib as _read_vnnlib

    return _read_vnnlib(source, **kwargs)


__all__ = [
    "EvaluationResult", "StoreMismatchError", "evaluate_robustness",
    "AdversarialModel", "AdversarialResult", "InputSet", "Intersection", "L0Ball", "L1Ball", "LinfBall", "Perturbation",
    "Tuning", "UniversalResult", "Verdict", "ball", "class_prototype", "max_confidence", "minimal_distortion",
    "universal_perturbation", "verify_robustness",
    "Property", "PropertyResult", "PropertyVerdict", "Region", "check_property", "from_onnx", "read_vnnlib",
    "Box", "Bounds", "DatasetError", "InferenceResult", "InputError", "Layer", "LicenseLimitError",
    "MissingDependencyError", "ModelError", "ModelFileError", "Network", "NetworkBlock", "NetworkError", "ReluVerifyError", "SOLVERS",
    "SolveError", "SolveResult", "SolverNotAvailableError", "Status", "UnknownSolverError",
    "UnsupportedLayerError", "add_network", "available_solvers", "blas_threads", "set_blas_threads", "build_inference_model",
    "compute_bounds", "from_keras", "from_torch", "from_sklearn", "from_xgboost", "from_lightgbm", "TreeEnsemble", "infer", "interval_bounds", "solve",
]
