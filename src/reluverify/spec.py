"""Verification properties over a network's inputs and outputs, independent of any file format.

A :class:`Property` states what a *counterexample* looks like, as VNN-LIB does: the property is
``sat`` when some input ``x`` and the network's output ``y = f(x)`` satisfy at least one of its
:class:`Region` objects, and ``unsat`` when none can be reached. Each region is an input box
``lower <= x <= upper`` together with a conjunction of linear rows

    A_x @ x + A_y @ y <= b

(an ``>=`` row is stored negated). A property is therefore a disjunction of conjunctions (DNF);
``io/vnnlib.py`` turns a VNN-LIB file into one, and ``problems/verification.py`` decides it.
Strict inequalities are stored as non-strict ones: an ``unsat`` proof over the closed set also
covers the open one, and counterexamples are checked against a tolerance anyway.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import InputError


@dataclass(frozen=True)
class Region:
    """One disjunct: an input box and linear rows ``a_x @ x + a_y @ y <= b`` that must all hold."""

    lower: np.ndarray
    upper: np.ndarray
    a_x: np.ndarray  # (m, n_inputs)
    a_y: np.ndarray  # (m, n_outputs)
    b: np.ndarray  # (m,)

    def __post_init__(self) -> None:
        lo = np.array(self.lower, dtype=np.float64)
        hi = np.array(self.upper, dtype=np.float64)
        if lo.ndim != 1 or lo.shape != hi.shape:
            raise InputError(f"a region's input bounds must be two vectors of one length, got shapes "
                             f"{lo.shape} and {hi.shape}")
        if np.any(np.isnan(lo)) or np.any(np.isnan(hi)):
            raise InputError("a region's input bounds contain NaN")
        if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
            missing = np.flatnonzero(~(np.isfinite(lo) & np.isfinite(hi)))
            raise InputError(f"input(s) {missing[:10].tolist()} have no finite lower and upper bound; "
                             "every input needs both (assert (>= X_i lo)) and (assert (<= X_i hi))")
        a_x = np.array(self.a_x, dtype=np.float64).reshape(-1, lo.size)
        m = a_x.shape[0]
        a_y = np.array(self.a_y, dtype=np.float64)
        a_y = a_y.reshape(m, -1) if m else a_y.reshape(0, a_y.shape[-1] if a_y.ndim == 2 else 0)
        b = np.array(self.b, dtype=np.float64).reshape(m)
        for name, arr in (("a_x", a_x), ("a_y", a_y), ("b", b)):
            if not np.all(np.isfinite(arr)):
                raise InputError(f"a region's {name} contains NaN or infinite values")
        for name, arr in (("lower", lo), ("upper", hi), ("a_x", a_x), ("a_y", a_y), ("b", b)):
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)

    @property
    def n_inputs(self) -> int:
        return int(self.lower.size)

    @property
    def n_rows(self) -> int:
        return int(self.b.size)

    def __repr__(self) -> str:
        width = float(np.max(self.upper - self.lower)) if self.n_inputs else 0.0
        return f"<Region: box over {self.n_inputs} inputs (widest side {width:.4g}), {self.n_rows} row(s)>"

    @property
    def empty(self) -> bool:
        """True when the input box itself is empty (some lower bound above its upper bound)."""
        return bool(np.any(self.lower > self.upper))

    def violation(self, x, y) -> float:
        """How far ``(x, y)`` is from this region: if ``x`` is outside the box, by how much (> 0);
        otherwise the largest row excess ``a_x x + a_y y - b`` (<= 0 means inside the region;
        -inf for a region without rows)."""
        x = np.asarray(x, dtype=np.float64).ravel()
        y = np.asarray(y, dtype=np.float64).ravel()
        outside = max(np.max(self.lower - x, initial=-np.inf), np.max(x - self.upper, initial=-np.inf))
        if outside > 0:
            return float(outside)
        return self.output_violation(x, y)

    def row_excess(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Row excesses ``a_x x + a_y y - b`` for a batch of inputs and outputs: (B, m)."""
        return x @ self.a_x.T + y @ self.a_y.T - self.b

    def output_violation(self, x, y) -> float:
        """Largest row excess only (the box is handled separately, e.g. by clipping)."""
        if not self.n_rows:
            return -np.inf
        x = np.asarray(x, dtype=np.float64).ravel()
        y = np.asarray(y, dtype=np.float64).ravel()
        return float(np.max(self.a_x @ x + self.a_y @ y - self.b))


@dataclass(frozen=True)
class Property:
    """A disjunction of :class:`Region` objects over ``n_inputs`` inputs and ``n_outputs`` outputs."""

    n_inputs: int
    n_outputs: int
    regions: tuple
    name: str = ""
    notes: tuple = field(default_factory=tuple)

    def __post_init__(self) -> None:
        regions = tuple(self.regions)
        if not regions:
            raise InputError("a property needs at least one region (a disjunct)")
        for r in regions:
            if not isinstance(r, Region):
                raise InputError(f"a property's regions must be Region objects, got {type(r).__name__}")
            if r.n_inputs != self.n_inputs or r.a_y.shape[1] != self.n_outputs:
                raise InputError(
                    f"region sizes ({r.n_inputs} inputs, {r.a_y.shape[1]} outputs) do not match the "
                    f"property's ({self.n_inputs}, {self.n_outputs})")
        object.__setattr__(self, "regions", regions)

    def __repr__(self) -> str:
        rows = sorted({r.n_rows for r in self.regions})
        return (f"<Property{' ' + self.name if self.name else ''}: {len(self.regions)} region(s) over "
                f"{self.n_inputs} inputs and {self.n_outputs} outputs, {'/'.join(map(str, rows))} row(s) each>")

    def check_network(self, network) -> None:
        """Raise :class:`InputError` unless ``network`` has this property's input/output sizes."""
        if network.n_inputs != self.n_inputs or network.n_outputs != self.n_outputs:
            raise InputError(
                f"the property{' ' + self.name if self.name else ''} speaks of {self.n_inputs} inputs "
                f"and {self.n_outputs} outputs, the network has {network.n_inputs} and "
                f"{network.n_outputs}; check that the .vnnlib file belongs to this network")

    def violation(self, x, y) -> float:
        """Smallest :meth:`Region.violation` over the regions (<= 0: ``(x, y)`` is a counterexample)."""
        return min(r.violation(x, y) for r in self.regions)

    def satisfied_by(self, x, y, tol: float = 0.0) -> bool:
        """True when ``(x, y)`` lies in some region within absolute tolerance ``tol``."""
        return self.violation(x, y) <= tol
