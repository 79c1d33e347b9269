"""Check answers against the float64 forward pass: never trust a solver's numbers on their own."""

from __future__ import annotations

import numpy as np

from .network import Network
from .tolerances import INFERENCE_TOLERANCE


def compare_outputs(network: Network, x, outputs, tol: float = INFERENCE_TOLERANCE) -> tuple:
    """``(reference, max_abs_error, matches)`` of MILP ``outputs`` against ``network.forward(x)``."""
    reference = network.forward(x)
    if outputs is None:
        return reference, None, False
    outputs = np.asarray(outputs, dtype=np.float64)
    if outputs.shape != reference.shape or not np.all(np.isfinite(outputs)):
        return reference, None, False
    err = float(np.max(np.abs(outputs - reference)))
    return reference, err, err <= tol
