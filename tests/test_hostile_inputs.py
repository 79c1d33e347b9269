"""Hostile and broken input: every kind raises a *typed* error whose message names the offending
thing and says what to do.

``KINDS`` is the table: one row per kind of bad input, each run as its own test. A row gives the
call, the error class it must raise (a subclass of :class:`ReluVerifyError`, never a bare
``ValueError``/``TypeError``/``KeyError`` from deep inside), the fragments naming the offending
thing, and the fragments telling the user what to do (all matched case-insensitively). The Keras
rows reuse the importer; tests/test_io_keras.py covers many more unsupported Keras layers (LSTM,
LeakyReLU, ReLU6, subclassed models, multi-input ...). ONNX and VNN-LIB rows run where
``reluverify.io.onnx`` / ``reluverify.io.vnnlib`` (and the ``onnx`` package) are present.
"""

from __future__ import annotations

import importlib
import importlib.util
import zipfile

import numpy as np
import pytest

from reluverify import Box, Layer, Network, infer
from reluverify.datasets import load_mnist
from reluverify.domain import Perturbation
from reluverify.errors import (
    DatasetError, InputError, LicenseLimitError, ModelFileError, NetworkError, ReluVerifyError,
    SolveError, SolverNotAvailableError, UnknownSolverError, UnsupportedLayerError,
)
from reluverify.problems import max_confidence, minimal_distortion, verify_robustness

solve_module = importlib.import_module("reluverify.solvers")  # the registry (reluverify.solve is the function)
NET = Network.random([4, 5, 3], seed=11)
X = np.array([0.2, 0.4, 0.6, 0.8])
C = int(np.argmax(NET.forward(X)))
OTHER = (C + 1) % 3


def _has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


# --------------------------------------------------------------------------- Keras
def _keras():
    return pytest.importorskip("keras", reason="Keras is not installed")


def _keras_seq(shape, layers):
    keras = _keras()
    return keras.Sequential([keras.Input(shape=shape)] + layers)


def keras_conv2d():
    keras = _keras()
    L = keras.layers
    return _from_keras(keras.Sequential([keras.Input((6, 6, 1)), L.Conv2D(2, 2, dilation_rate=2, name="conv"), L.Flatten(), L.Dense(2)]))


def keras_sigmoid():
    L = _keras().layers
    return _from_keras(_keras_seq((4,), [L.Dense(3, activation="sigmoid", name="sig_dense"), L.Dense(2)]))


def keras_tanh():
    L = _keras().layers
    return _from_keras(_keras_seq((4,), [L.Dense(3), L.Activation("tanh", name="tanh_act"), L.Dense(2)]))


def keras_hidden_softmax():
    L = _keras().layers
    return _from_keras(_keras_seq((4,), [L.Dense(3, activation="softmax", name="hidden_sm"), L.Dense(2)]))


def keras_skip_connection():
    keras = _keras()
    L = keras.layers
    inp = keras.Input(shape=(4,))
    h = L.Dense(4, activation="relu", name="branch")(inp)
    return _from_keras(keras.Model(inp, L.Add(name="skip_add")([inp, h])))


def _from_keras(model):
    from reluverify.io.keras import from_keras

    return from_keras(model)


# --------------------------------------------------------------------------- network definitions
def nan_weight():
    w = np.ones((3, 4))
    w[1, 2] = np.nan
    return Network.from_arrays([w], [np.zeros(3)])


def inf_bias():
    return Network.from_arrays([np.ones((3, 4))], [np.array([0.0, np.inf, 0.0])])


def layer_shapes_mismatch():
    return Network.from_arrays([np.ones((5, 4)), np.ones((3, 6))])


def bias_shape_mismatch():
    return Layer(np.ones((3, 4)), np.zeros(4))


def empty_network():
    return Network.from_arrays([])


def empty_weight_matrix():
    return Layer(np.ones((0, 4)), np.zeros(0))


def unknown_activation():
    return Layer(np.ones((3, 4)), np.zeros(3), "sigmoid")


def input_shape_mismatch():
    return Network.from_arrays([np.ones((3, 4))], input_shape=(2, 3))


# --------------------------------------------------------------------------- files
def npz_missing(tmp_path):
    return Network.load(tmp_path / "nowhere.npz")


def npz_garbage(tmp_path):
    p = tmp_path / "garbage.npz"
    p.write_bytes(b"\x00\x01 this is not a zip archive" * 10)
    return Network.load(p)


def npz_not_reluverify(tmp_path):
    p = tmp_path / "other.npz"
    np.savez(p, weights=np.ones(3))
    return Network.load(p)


def npz_truncated(tmp_path):
    p = tmp_path / "net.npz"
    NET.save(p)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    return Network.load(p)


def npz_nan_weights(tmp_path):
    p = tmp_path / "nan.npz"
    NET.save(p)
    with np.load(p) as d:
        arrays = {k: d[k] for k in d.files}
    arrays["W0"] = arrays["W0"].copy()
    arrays["W0"][0, 0] = np.nan
    np.savez(p, **arrays)
    return Network.load(p)


def dataset_empty(tmp_path):
    p = tmp_path / "mnist.npz"
    np.savez(p, x_train=np.zeros((0, 28, 28), np.uint8), y_train=np.zeros(0, np.int64),
             x_test=np.zeros((0, 28, 28), np.uint8), y_test=np.zeros(0, np.int64))
    return load_mnist(p)


def dataset_missing_keys(tmp_path):
    p = tmp_path / "mnist.npz"
    np.savez(p, x_train=np.zeros((2, 28, 28), np.uint8))
    return load_mnist(p)


def dataset_garbage(tmp_path):
    p = tmp_path / "mnist.npz"
    p.write_bytes(b"PK\x03\x04 broken zip")
    return load_mnist(p)


def _onnx_io():
    if not (_has("reluverify.io.onnx") and _has("onnx")):
        pytest.skip("reluverify.io.onnx or the onnx package is not available")
    from reluverify.io.onnx import from_onnx

    return from_onnx


def onnx_garbage(tmp_path):
    from_onnx = _onnx_io()
    p = tmp_path / "model.onnx"
    p.write_bytes(b"\x08\x07 not a protobuf \xff\xfe" * 5)
    return from_onnx(str(p))


def onnx_missing(tmp_path):
    return _onnx_io()(str(tmp_path / "missing.onnx"))


def onnx_sigmoid(tmp_path):
    from_onnx = _onnx_io()
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    W = numpy_helper.from_array(np.ones((4, 3), np.float32), "W")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["h"], name="dense"),
         helper.make_node("Sigmoid", ["h"], ["y"], name="squash")],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], [W])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    p = tmp_path / "sigmoid.onnx"
    onnx.save(model, str(p))
    return from_onnx(str(p))


def _vnnlib_io():
    if not _has("reluverify.io.vnnlib"):
        pytest.skip("reluverify.io.vnnlib is not available")
    from reluverify.io.vnnlib import read_vnnlib

    return read_vnnlib


def vnnlib_unbalanced(tmp_path):
    read_vnnlib = _vnnlib_io()
    p = tmp_path / "prop.vnnlib"
    p.write_text("(declare-const X_0 Real)\n(declare-const Y_0 Real)\n(assert (<= X_0 1.0)\n")
    return read_vnnlib(str(p))


def vnnlib_undeclared(tmp_path):
    read_vnnlib = _vnnlib_io()
    p = tmp_path / "prop.vnnlib"
    p.write_text("(declare-const X_0 Real)\n(declare-const Y_0 Real)\n(assert (>= X_0 0.0))\n"
                 "(assert (<= X_0 1.0))\n(assert (<= Z_7 0.0))\n")
    return read_vnnlib(str(p))


def vnnlib_missing(tmp_path):
    return _vnnlib_io()(str(tmp_path / "missing.vnnlib"))


# --------------------------------------------------------------------------- solvers
def solver_not_installed(monkeypatch):
    real = solve_module._availability
    monkeypatch.setattr(solve_module, "_availability", lambda s: (False, False) if s == "cbc" else real(s))
    return infer(NET, X, "cbc")


def gurobi_licence_too_small(monkeypatch):
    # a size-limited Gurobi is simulated, so the row runs (and raises before Gurobi is called)
    # whether or not gurobipy is installed
    monkeypatch.setattr(solve_module, "_availability", lambda s: (True, True))
    big = Network.random([5, 1200, 2], seed=1)
    return infer(big, np.full(5, 0.5), "gurobi", domain=Box.uniform(5))


def solve_time_limit_zero():
    import pyomo.environ as pyo

    m = pyo.ConcreteModel()
    m.v = pyo.Var(bounds=(0, 1))
    m.o = pyo.Objective(expr=m.v)
    return solve_module.solve(m, "highs", time_limit=0)


# --------------------------------------------------------------------------- the table
# kind: (call, error class, fragments naming the offending thing, fragments saying what to do)
KINDS = {
    # unsupported layers and activations (Keras importer)
    "keras-conv2d": (keras_conv2d, UnsupportedLayerError, ["Conv2D", "'conv'"], ["Supported layers:"]),
    "keras-sigmoid": (keras_sigmoid, UnsupportedLayerError, ["'sig_dense'", "sigmoid"], ["Supported layers:"]),
    "keras-tanh": (keras_tanh, UnsupportedLayerError, ["'tanh_act'", "tanh"], ["Supported layers:"]),
    "keras-hidden-softmax": (keras_hidden_softmax, UnsupportedLayerError, ["'hidden_sm'", "softmax"],
                             ["only supported at the very end", "Supported layers:"]),
    "keras-skip-connection": (keras_skip_connection, UnsupportedLayerError, ["'skip_add'", "not a simple chain"],
                              ["Supported layers:"]),
    # network definitions
    "nan-weight": (nan_weight, NetworkError, ["weight", "NaN"], ["retrain or clean"]),
    "inf-bias": (inf_bias, NetworkError, ["bias", "infinite"], ["retrain or clean"]),
    "layer-shapes-mismatch": (layer_shapes_mismatch, NetworkError, ["layer 1 expects 6 inputs", "produces 5"],
                              ["check the weight shapes"]),
    "bias-shape-mismatch": (bias_shape_mismatch, NetworkError, ["bias", "(3,)", "(4,)"], ["must have shape"]),
    "empty-network": (empty_network, NetworkError, ["no weight matrices"], ["needs at least one layer"]),
    "empty-weight-matrix": (empty_weight_matrix, NetworkError, ["empty weight matrix", "(0, 4)"],
                            ["needs at least one input and one output"]),
    "unknown-activation": (unknown_activation, NetworkError, ["'sigmoid'"], ["supported activations are"]),
    "input-shape-mismatch": (input_shape_mismatch, NetworkError, ["input_shape (2, 3)", "takes 4"], ["has 6 entries"]),
    # inputs
    "input-wrong-length": (lambda: minimal_distortion(NET, X[:3]), InputError, ["shape (3,)", "takes 4 values"],
                           ["pass one input of that shape"]),
    "input-nan": (lambda: verify_robustness(NET, np.array([0.2, np.nan, 0.6, 0.8]), 0.1), InputError, ["NaN"],
                  ["clean it"]),
    "input-inf": (lambda: max_confidence(NET, np.array([0.2, np.inf, 0.6, 0.8]), OTHER, eps=0.5), InputError,
                  ["infinite"], ["clean it"]),
    "input-outside-box": (lambda: verify_robustness(NET, np.array([0.2, 1.5, 0.6, 0.8]), 0.1), InputError,
                          ["outside its valid box", "value 1", "1.5"], ["scale the input", "valid="]),
    "input-batch": (lambda: minimal_distortion(NET, np.stack([X, X])), InputError, ["batch"], ["pass one input"]),
    "input-not-numbers": (lambda: verify_robustness(NET, ["a", "b", "c", "d"], 0.1), InputError, ["input"],
                          ["numbers"]),
    # question parameters
    "eps-zero": (lambda: verify_robustness(NET, X, 0.0), InputError, ["eps", "got 0.0"], ["positive finite number"]),
    "eps-negative": (lambda: verify_robustness(NET, X, -0.1, "l1"), InputError, ["eps", "-0.1"],
                     ["positive finite number"]),
    "eps-nan": (lambda: verify_robustness(NET, X, float("nan")), InputError, ["eps", "nan"],
                ["positive finite number"]),
    "eps-not-a-number": (lambda: verify_robustness(NET, X, "small"), InputError, ["eps", "'small'"],
                         ["positive finite number"]),
    "l0-eps-fractional": (lambda: verify_robustness(NET, X, 1.5, "l0"), InputError, ["L0", "1.5"],
                          ["number of changed values (whole)"]),
    "budget-negative": (lambda: max_confidence(NET, X, OTHER, eps=-1.0), InputError, ["eps", "-1.0"],
                        ["finite number >= 0"]),
    "budget-not-a-number": (lambda: max_confidence(NET, X, OTHER, eps="lots"), InputError, ["eps", "'lots'"],
                            ["finite number >= 0"]),
    "unknown-norm": (lambda: minimal_distortion(NET, X, "l2"), InputError, ["unknown norm 'l2'"],
                     ["choose one of l1, linf, l0"]),
    "target-is-true-class": (lambda: minimal_distortion(NET, X, target=C), InputError,
                             [f"target {C}", "equals the true class"], ["pick another class", "target=None"]),
    "target-out-of-range": (lambda: minimal_distortion(NET, X, target=3), InputError, ["target 3", "out of range"],
                            ["classes 0..2"]),
    "target-not-whole": (lambda: max_confidence(NET, X, 1.5, eps=0.5), InputError, ["target", "1.5"],
                         ["class index (whole number)"]),
    "target-not-a-number": (lambda: minimal_distortion(NET, X, target="cat"), InputError, ["target", "'cat'"],
                            ["class index (whole number)"]),
    "label-out-of-range": (lambda: verify_robustness(NET, X, 0.1, label=7), InputError, ["label 7", "out of range"],
                           ["classes 0..2"]),
    "mask-wrong-shape": (lambda: minimal_distortion(NET, X, perturbation=Perturbation(mask=np.ones(5, bool))),
                         InputError, ["mask has 5 entries", "input has 4"], ["one entry per input value"]),
    "mask-allows-nothing": (lambda: Perturbation(mask=np.zeros(4, bool)), InputError, ["mask allows no value"],
                            ["set True where changes are allowed"]),
    "mask-not-boolean": (lambda: Perturbation(mask=np.array([0.5, 1, 0, 1])), InputError, ["mask"],
                         ["boolean (True where a value may change)"]),
    "margin-negative": (lambda: minimal_distortion(NET, X, margin=-1.0), InputError, ["margin", "-1.0"],
                        ["finite number >= 0"]),
    "margin-not-a-number": (lambda: minimal_distortion(NET, X, margin="tiny"), InputError, ["margin", "'tiny'"],
                            ["finite number >= 0"]),
    "min-probability-out-of-range": (lambda: max_confidence(NET, X, OTHER, eps=0.5, min_probability=1.0),
                                     InputError, ["min_probability", "1.0"], ["strictly between 0 and 1"]),
    "unknown-bound-method": (lambda: verify_robustness(NET, X, 0.1, bound_method="magic", attack=False), InputError,
                             ["unknown bound method 'magic'"], ["choose one of"]),
    "box-lower-above-upper": (lambda: Box(np.array([0.0, 1.0]), np.array([1.0, 0.5])), InputError,
                              ["lower bound exceeds upper bound", "input 1"], ["1.0 > 0.5"]),
    "box-unbounded": (lambda: Box(np.zeros(2), np.array([1.0, np.inf])), InputError, ["box bounds must be finite"],
                      ["use the valid input range"]),
    "inference-input-outside-domain": (lambda: infer(NET, X, domain=Box.uniform(4, 0.5, 1.0)), InputError,
                                       ["outside the domain"], ["widen the domain"]),
    # solvers
    "unknown-solver": (lambda: verify_robustness(NET, X, 0.1, solver="glpk"), UnknownSolverError,
                       ["unknown solver 'glpk'"], ["choose one of highs, cbc, gurobi"]),
    "solver-not-installed": (solver_not_installed, SolverNotAvailableError, ["solver 'cbc'", "not installed"],
                             ["pip install 'reluverify[cbc]'"]),
    "gurobi-licence-too-small": (gurobi_licence_too_small, LicenseLimitError, ["variables", "2000 variables"],
                                 ["use solver='highs'", "full Gurobi licence"]),
    "time-limit-zero": (lambda: minimal_distortion(NET, X, time_limit=0), InputError, ["time_limit", "got 0"],
                        ["must be positive (seconds)"]),
    "time-limit-negative": (lambda: max_confidence(NET, X, OTHER, eps=0.5, time_limit=-5), InputError,
                            ["time_limit", "-5"], ["must be positive (seconds)"]),
    "time-limit-not-a-number": (lambda: verify_robustness(NET, X, 0.1, time_limit="soon"), InputError,
                                ["time_limit", "'soon'"], ["must be positive (seconds)"]),
    "solve-time-limit-zero": (solve_time_limit_zero, SolveError, ["time_limit", "got 0"], ["must be positive"]),
    # files and data
    "npz-missing-file": (npz_missing, ModelFileError, ["nowhere.npz", "does not exist"], ["check the path"]),
    "npz-garbage": (npz_garbage, ModelFileError, ["garbage.npz"], ["written by Network.save"]),
    "npz-not-a-network": (npz_not_reluverify, ModelFileError, ["other.npz", "not a reluverify network file"],
                          ["save networks with Network.save"]),
    "npz-truncated": (npz_truncated, ModelFileError, ["net.npz"], ["written by Network.save"]),
    "npz-nan-weights": (npz_nan_weights, ModelFileError, ["nan.npz", "NaN"], ["retrain or clean"]),
    "dataset-empty": (dataset_empty, DatasetError, ["empty dataset", "(0, 28, 28)"], ["must hold the arrays"]),
    "dataset-missing-arrays": (dataset_missing_keys, DatasetError, ["lacks the arrays", "y_train"],
                               ["must hold the arrays"]),
    "dataset-garbage": (dataset_garbage, DatasetError, ["could not read MNIST file"], ["must hold the arrays"]),
    "onnx-garbage": (onnx_garbage, ModelFileError, ["model.onnx", "not a readable ONNX model"],
                     ["from_onnx reads .onnx files"]),
    "onnx-missing-file": (onnx_missing, ModelFileError, ["missing.onnx", "does not exist"], ["check the path"]),
    "onnx-sigmoid-node": (onnx_sigmoid, UnsupportedLayerError, ["Sigmoid", "'squash'"],
                          ["Retrain the model with ReLU activations"]),
    "vnnlib-unbalanced-parentheses": (vnnlib_unbalanced, ModelFileError, ["prop.vnnlib", "line 3", "parenthes"],
                                      ["never closed"]),
    "vnnlib-undeclared-variable": (vnnlib_undeclared, ModelFileError, ["prop.vnnlib", "line 5", "Z_7"],
                                   ["declared variable"]),
    "vnnlib-missing-file": (vnnlib_missing, ModelFileError, ["missing.vnnlib"], ["cannot read the file"]),
}
FILE_KINDS = {k for k in KINDS if k.split("-")[0] in ("npz", "dataset", "onnx", "vnnlib")}
MONKEYPATCH_KINDS = {"solver-not-installed", "gurobi-licence-too-small"}


@pytest.mark.parametrize("kind", list(KINDS))
def test_hostile_input_gives_a_typed_actionable_error(kind, tmp_path, monkeypatch, record_property):
    call, error, names, todo = KINDS[kind]
    args = (tmp_path,) if kind in FILE_KINDS else (monkeypatch,) if kind in MONKEYPATCH_KINDS else ()
    if kind.startswith("vnnlib"):
        from reluverify.errors import PropertyFileError  # a ModelFileError: the more precise class

        error = PropertyFileError
    with pytest.raises(ReluVerifyError) as info:
        call(*args)
    assert isinstance(info.value, error), f"{kind}: {type(info.value).__name__} is not a {error.__name__}: {info.value}"
    message = str(info.value)
    low = message.lower()
    for fragment in names:
        assert fragment.lower() in low, f"{kind}: the message does not name {fragment!r}: {message!r}"
    for fragment in todo:
        assert fragment.lower() in low, f"{kind}: the message does not say {fragment!r}: {message!r}"
    record_property("hostile", {"kind": kind, "error": type(info.value).__name__})


def test_table_covers_the_issue():
    """At least 25 kinds, and every kind named in issue #7."""
    assert len(KINDS) >= 25
    for kind in ("keras-conv2d", "keras-sigmoid", "keras-tanh", "keras-hidden-softmax", "keras-skip-connection",
                 "nan-weight", "inf-bias", "layer-shapes-mismatch", "empty-network", "input-wrong-length",
                 "input-nan", "input-outside-box", "eps-zero", "budget-negative", "unknown-norm",
                 "target-is-true-class", "target-out-of-range", "mask-wrong-shape", "mask-allows-nothing",
                 "unknown-solver", "solver-not-installed", "gurobi-licence-too-small", "time-limit-zero",
                 "npz-garbage", "onnx-garbage", "vnnlib-unbalanced-parentheses", "dataset-empty"):
        assert kind in KINDS, kind


def test_typed_errors_are_still_value_errors():
    """Generic ``except ValueError`` code keeps working for bad values."""
    for err in (NetworkError, InputError, UnsupportedLayerError, ModelFileError, UnknownSolverError):
        assert issubclass(err, ValueError) and issubclass(err, ReluVerifyError)
    assert zipfile  # (used by the .npz rows through numpy)
