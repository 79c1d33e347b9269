"""The input-set interface (the second extension point) and the intersection of sets.

An input set is the set of inputs a question is asked about: a box (VNN-LIB regions, the valid
range of an image), a ball of some norm around an input, or an intersection of those (an L1 budget
inside the valid box with a pixel mask, ...). Every set owns, in its module:

* ``hull()``: the smallest box holding it (bounds, input splitting and ReLU branching work on it);
* ``bound_domain()``: what the bound strategies take (the hull, or a set they know more about, such
  as an L1 ball: its first-layer bounds are a knapsack, far tighter than the box's);
* ``contains(x)`` / ``problem(x)``: the exact membership check of a witness (``problem`` says why not);
* ``fit(x)``: a point snapped into the set (a solver's point that leaves it by a tolerance);
* ``project(X)``: points moved into the set, for attacks (a batch, rows are points);
* ``encode(milp, input_cols)``: its MILP rows on the input columns, added through the small MILP
  interface every backend offers (``add_column(lower, upper, cost=0, integral=False) -> column``,
  ``add_rows(lower, upper, [(columns, values), ...])``);
* for norm balls (:class:`reluverify.sets.ball.Ball`): ``distance(x)`` and
  ``encode_distance(milp, input_cols)``, the distance to the centre as a MILP expression, for
  questions that minimise it.

Adding a norm is one module with a :class:`~reluverify.sets.ball.Ball` subclass and a line in
``reluverify.sets.NORMS``; nothing outside ``sets/`` switches on a norm.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError


class InputSet:
    """Base class of every input set (see the module docstring for the contract)."""

    #: True when the set is exactly its hull (input splitting and ReLU branching may run on it)
    is_box = False

    @property
    def n(self) -> int:
        return self.hull().size

    def hull(self):
        raise NotImplementedError

    def bound_domain(self):
        return self.hull()

    def problem(self, x) -> str | None:
        raise NotImplementedError

    def contains(self, x, atol: float = 0.0) -> bool:
        if atol:
            return self.hull().contains(x, atol) and self.problem(np.clip(x, self.hull().lower, self.hull().upper)) is None
        return self.problem(x) is None

    def fit(self, x) -> np.ndarray:
        h = self.hull()
        return np.clip(np.asarray(x, dtype=np.float64), h.lower, h.upper)

    def project(self, X) -> np.ndarray:
        return self.fit(X)

    def encode(self, milp, input_cols) -> None:
        """Rows that keep the input columns inside the set (their bounds are the hull already)."""

    def intersect(self, other: "InputSet") -> "InputSet":
        return Intersection((self, other))


def _outside_box(box, x: np.ndarray) -> str | None:
    if x.shape[-1] != box.size:
        return f"the point has {x.shape[-1]} values but the set has {box.size}"
    if not np.all(np.isfinite(x)):
        return "the point has NaN or infinite values"
    bad = np.flatnonzero((x < box.lower) | (x > box.upper))
    if bad.size:
        i = int(bad[0])
        return f"value {i} ({x[i]:.9g}) lies outside [{box.lower[i]:.9g}, {box.upper[i]:.9g}]"
    return None


class Intersection(InputSet):
    """Points in every member set. Fits and projections apply each member's in turn (every ball
    fit here moves points toward its centre, which keeps them in the other members when those
    contain the centre: box hulls, balls around the same centre)."""

    def __init__(self, members):
        flat = []
        for m in members:
            if not isinstance(m, InputSet):
                raise InputError(f"an intersection takes input sets, got {type(m).__name__}")
            flat.extend(m.members if isinstance(m, Intersection) else [m])
        if not flat:
            raise InputError("an intersection needs at least one set")
        sizes = {m.hull().size for m in flat}
        if len(sizes) != 1:
            raise InputError(f"the sets of an intersection have different sizes: {sorted(sizes)}")
        # boxes first (their fit is a clip), then the balls
        self.members = tuple(sorted(flat, key=lambda m: not m.is_box))
        self._hull = _box_intersection([m.hull() for m in self.members])
        self.is_box = all(m.is_box for m in self.members)

    def hull(self):
        return self._hull

    def restrict(self, box):
        """The bound domain within ``box``: the one member that knows more than its hull (an L1
        ball) restricted to it, else the box."""
        special = [m for m in self.members if hasattr(m, "restrict")]
        return special[0].restrict(box) if len(special) == 1 else box

    def bound_domain(self):
        return self.restrict(self._hull)

    def problem(self, x) -> str | None:
        for m in self.members:
            p = m.problem(x)
            if p:
                return p
        return None

    def fit(self, x) -> np.ndarray:
        x = np.clip(np.asarray(x, dtype=np.float64), self._hull.lower, self._hull.upper)
        for m in self.members:
            x = m.fit(x)
        return x

    def project(self, X) -> np.ndarray:
        X = np.clip(np.asarray(X, dtype=np.float64), self._hull.lower, self._hull.upper)
        for m in self.members:
            X = m.project(X)
        return X

    def encode(self, milp, input_cols) -> None:
        for m in self.members:
            m.encode(milp, input_cols)

    def ball(self, norm: str | None = None):
        """The member ball of ``norm`` (or the only ball), else None."""
        balls = [m for m in self.members if hasattr(m, "norm") and (norm is None or m.norm == norm)]
        return balls[0] if len(balls) == 1 else None

    def __repr__(self) -> str:
        return "<Intersection of " + ", ".join(repr(m) for m in self.members) + ">"


def _box_intersection(boxes):
    from .box import Box

    lo = np.max([b.lower for b in boxes], axis=0)
    hi = np.min([b.upper for b in boxes], axis=0)
    if np.any(lo > hi):
        i = int(np.flatnonzero(lo > hi)[0])
        raise InputError(f"the sets do not intersect: input {i} has lower bound {lo[i]} above upper bound {hi[i]}")
    return Box(lo, hi)
