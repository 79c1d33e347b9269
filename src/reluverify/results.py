"""Result types shared by every stage: solver status and outcome, and per-problem results."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import numpy as np


class Status(str, Enum):
    """Normalised solver status. Only ``OPTIMAL`` and ``INFEASIBLE`` are proofs."""

    OPTIMAL = "optimal"
    INFEASIBLE = "infeasible"
    UNBOUNDED = "unbounded"
    INFEASIBLE_OR_UNBOUNDED = "infeasible_or_unbounded"
    TIME_LIMIT = "time_limit"
    ERROR = "error"

    def __str__(self) -> str:
        return self.value


@dataclass
class SolveResult:
    """What one solver run gave. ``objective`` is the solver's own claim about its incumbent:
    problems never report it as an answer without recomputing it from the point (see check.py)."""

    status: Status
    solver: str
    wall_time: float
    has_solution: bool = False
    objective: float | None = None
    bound: float | None = None
    message: str = ""
    size: dict = field(default_factory=dict)

    @property
    def gap(self) -> float | None:
        if self.objective is None or self.bound is None:
            return None
        return abs(self.objective - self.bound) / max(1e-10, abs(self.objective))


@dataclass
class InferenceResult:
    """MILP inference of one input, next to the float64 forward pass."""

    status: Status
    outputs: np.ndarray | None  # what the MILP's output variables hold
    reference: np.ndarray  # float64 forward pass
    max_abs_error: float | None
    matches: bool
    predicted_class: int | None
    solve: SolveResult
    n_binaries: int
    bounds_summary: str
