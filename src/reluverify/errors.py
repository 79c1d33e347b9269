"""Typed errors. Every error says what went wrong *and* what to do about it.

All of them derive from :class:`ReluVerifyError`, so ``except ReluVerifyError`` catches
everything this library raises on purpose. Errors about bad values also derive from
:class:`ValueError` so that generic code keeps working.
"""

from __future__ import annotations


class ReluVerifyError(Exception):
    """Base class of every error raised on purpose by reluverify."""


class NetworkError(ReluVerifyError, ValueError):
    """A network definition is invalid (NaN/inf weights, mismatched shapes, no layers, ...)."""


class UnsupportedLayerError(ReluVerifyError, ValueError):
    """A model contains a layer (or activation, or ONNX node) that reluverify cannot encode exactly."""


class InputError(ReluVerifyError, ValueError):
    """An input point or input domain is invalid (wrong length, NaN, outside its box, ...)."""


class ModelFileError(ReluVerifyError, ValueError):
    """A saved network file is missing, unreadable or malformed."""


class PropertyFileError(ModelFileError):
    """A VNN-LIB property (or VNN-COMP result) file is malformed or uses something unsupported.

    The message names the file and the line, e.g. ``prop_1.vnnlib, line 12: ...``; the
    attributes ``source`` and ``line`` hold the same (``line`` is ``None`` when no line applies).
    """


class DatasetError(ReluVerifyError):
    """A dataset could not be loaded (no local file, empty data, wrong format)."""


class UnknownSolverError(ReluVerifyError, ValueError):
    """The solver name is not one reluverify knows."""


class SolverNotAvailableError(ReluVerifyError):
    """The solver is known but not installed (or not usable) on this machine."""


class LicenseLimitError(ReluVerifyError):
    """The model is larger than the solver's licence allows (Gurobi's size-limited pip licence)."""


class ModelError(ReluVerifyError, ValueError):
    """A Pyomo model handed to :func:`reluverify.solve` cannot be solved as given (several active
    objectives, nonlinear terms): a usage error, raised before or instead of a solver status."""


class SolveError(ReluVerifyError):
    """The solver failed in a way that leaves no usable answer (crash, unexpected status)."""


class MissingDependencyError(ReluVerifyError, ImportError):
    """An optional package needed for this call (Keras, mlxtend, matplotlib ...) is not installed."""


class PerformanceWarning(UserWarning):
    """A setting outside reluverify makes a run measurably slower; the message says which and how to fix it."""
