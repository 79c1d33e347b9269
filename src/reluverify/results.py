"""Result types shared by every stage: solver status and outcome, and per-problem results."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import numpy as np


class ShortRepr:
    """A one-line ``repr``: the result's :meth:`summary` (results hold arrays that would print
    as hundreds of lines). The fields are all still there: ``res.x_adv``, ``res.solves`` ..."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.summary()}>"


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


@dataclass(repr=False)
class SolveResult(ShortRepr):
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
        return abs(self.objective - self.bound) / max(1e-10, abs(self.objective))  # not a tolerance: keeps the division finite

    def summary(self) -> str:
        parts = [f"{self.solver}: {self.status}"]
        if self.objective is not None:
            parts.append(f"objective {self.objective:.6g} (solver's claim)")
        if self.bound is not None:
            parts.append(f"bound {self.bound:.6g}")
        parts.append(f"{self.wall_time:.2f} s")
        if self.size:
            parts.append(f"{self.size.get('variables', '?')} variables, {self.size.get('binaries', '?')} binaries")
        return ", ".join(parts)


@dataclass(repr=False)
class InferenceResult(ShortRepr):
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

    def summary(self) -> str:
        err = "n/a" if self.max_abs_error is None else f"{self.max_abs_error:.2g}"
        return (f"inference: {self.status}, class {self.predicted_class}, "
                f"{'matches' if self.matches else 'does NOT match'} the forward pass (max error {err}), "
                f"{self.n_binaries} binaries, {self.solve.wall_time:.2f} s")


class Verdict(str, Enum):
    """What an adversarial or verification problem concluded.

    ``FOUND``/``NOT_ROBUST`` come with a witness re-checked by a float64 forward pass;
    ``ROBUST`` only from a solver proof (optimal/infeasible) over sound bounds;
    ``UNKNOWN`` is the honest answer otherwise (time limit, failed witness check, solver error).

    The one vocabulary of the library and VNN-COMP's (:class:`PropertyVerdict`) map one to one on
    what they claim: a question "is there an input in the set whose output breaks the condition?"

    ============================  ===========================  =====================================
    Verdict                       PropertyVerdict (VNN-COMP)    claim
    ============================  ===========================  =====================================
    ``ROBUST``                    ``UNSAT``                    proof: no such input
    ``NOT_ROBUST`` / ``FOUND``    ``SAT``                      a checked witness is attached
    ``UNKNOWN``                   ``UNKNOWN`` / ``TIMEOUT``    neither
    ============================  ===========================  =====================================

    (``FOUND`` is ``NOT_ROBUST`` for questions that look for a point: minimal distortion,
    maximal confidence, prototypes.) :meth:`vnncomp` and :meth:`PropertyVerdict.verdict` convert.
    """

    FOUND = "found"
    ROBUST = "robust"
    NOT_ROBUST = "not_robust"
    UNKNOWN = "unknown"

    def __str__(self) -> str:
        return self.value

    def vnncomp(self) -> "PropertyVerdict":
        """The same claim in VNN-COMP's words (``UNKNOWN`` for unknown)."""
        return {Verdict.ROBUST: PropertyVerdict.UNSAT, Verdict.NOT_ROBUST: PropertyVerdict.SAT,
                Verdict.FOUND: PropertyVerdict.SAT}.get(self, PropertyVerdict.UNKNOWN)


@dataclass(repr=False)
class AdversarialResult(ShortRepr):
    """The answer to an adversarial or verification problem.

    Every number about the witness (``distance``, ``distances``, ``objective``, ``adv_logits``)
    is recomputed from the point by a float64 forward pass, never copied from the solver.
    ``lower_bound`` (minimal distortion) and ``objective_bound`` (maximal confidence) are proven by
    the solver over sound bounds: they hold even when the run timed out.
    """

    verdict: Verdict
    problem: str
    norm: str | None
    x: np.ndarray
    original_class: int
    logits: np.ndarray
    target: int | None = None
    x_adv: np.ndarray | None = None
    adversarial_class: int | None = None
    adv_logits: np.ndarray | None = None
    distance: float | None = None
    distances: dict = field(default_factory=dict)
    lower_bound: float | None = None
    objective: float | None = None
    objective_bound: float | None = None
    eps: float | None = None
    time_s: float = 0.0
    solves: list = field(default_factory=list)
    checks: dict = field(default_factory=dict)
    bounds_summary: str = ""
    message: str = ""
    stats: dict = field(default_factory=dict)  # what the engine's stages did (counts, timings)

    @property
    def found(self) -> bool:
        return self.x_adv is not None and self.verdict in (Verdict.FOUND, Verdict.NOT_ROBUST)

    @property
    def perturbation(self) -> np.ndarray | None:
        return None if self.x_adv is None else self.x_adv - self.x

    def summary(self) -> str:
        parts = [f"{self.problem}: {self.verdict}"]
        if self.distance is not None and self.norm:
            parts.append(f"{self.norm} distance {self.distance:.6g}")
        if self.lower_bound is not None:
            parts.append(f"proven lower bound {self.lower_bound:.6g}")
        if self.objective is not None:
            parts.append(f"objective {self.objective:.6g}")
        if self.objective_bound is not None:
            parts.append(f"proven bound {self.objective_bound:.6g}")
        if self.adversarial_class is not None:
            parts.append(f"class {self.original_class} -> {self.adversarial_class}")
        parts.append(f"{self.time_s:.2f} s")
        return ", ".join(parts)


class PropertyVerdict(str, Enum):
    """The answer to a VNN-LIB-style property (see :mod:`reluverify.spec`), in VNN-COMP's words.

    ``SAT``: a counterexample exists, and one is attached, re-checked by a float64 forward pass
    (and onnxruntime when the ONNX model is at hand). ``UNSAT``: proven unreachable over sound
    bounds (bounds alone, a finished input split, or an infeasible MILP with slack).
    ``TIMEOUT``: the time limit came first. ``UNKNOWN``: the run finished without either (e.g. a
    candidate that failed its check and no proof either way).
    """

    SAT = "sat"
    UNSAT = "unsat"
    TIMEOUT = "timeout"
    UNKNOWN = "unknown"

    def __str__(self) -> str:
        return self.value

    def verdict(self) -> Verdict:
        """The same claim in the library's words (see :class:`Verdict`): sat is ``NOT_ROBUST``,
        unsat ``ROBUST``, timeout and unknown ``UNKNOWN``."""
        return {PropertyVerdict.SAT: Verdict.NOT_ROBUST, PropertyVerdict.UNSAT: Verdict.ROBUST}.get(
            self, Verdict.UNKNOWN)


@dataclass(repr=False)
class PropertyResult(ShortRepr):
    """What :func:`reluverify.check_property` concluded about one property.

    ``x``/``y`` hold the counterexample (``y`` recomputed by the float64 forward pass) when
    ``verdict`` is ``sat``; ``region`` is the index of the disjunct it satisfies and ``violation``
    its recomputed excess (<= 0). ``method`` says what decided it (``attack``, ``bounds``,
    ``split``, ``milp``); ``stats`` holds counts and timings per stage.
    """

    verdict: PropertyVerdict
    x: np.ndarray | None = None
    y: np.ndarray | None = None
    region: int | None = None
    violation: float | None = None
    method: str = ""
    time_s: float = 0.0
    message: str = ""
    stats: dict = field(default_factory=dict)

    def summary(self) -> str:
        parts = [str(self.verdict)]
        if self.method:
            parts.append(f"by {self.method}")
        if self.violation is not None:
            parts.append(f"violation {self.violation:.3g}")
        parts.append(f"{self.time_s:.2f} s")
        if self.message:
            parts.append(self.message)
        return ", ".join(parts)
