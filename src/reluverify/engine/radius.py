"""The smallest distance at which a question turns true, by a search over the radius.

Every step asks the engine one yes/no question: "is the unsafe condition reachable within
distance ``r``?" (:func:`reluverify.engine.decide.decide` on the query of the ball of radius
``r``). ``unsat`` proves that nothing closer than ``r`` reaches it (a certified radius, the new
lower bound); ``sat`` gives a checked witness, whose own distance (at most ``r``) is the new upper
bound. The search halves the interval until the gap is closed to ``gap(upper)`` or the time is
up; both ends stay valid whenever it stops. Whole-number radii (the L0 norm) search the integers:
a proof at ``k`` means at least ``k + 1``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..results import PropertyVerdict
from .common import Clock

STEP_SHARE = 1 / 3  # the largest share of the time left that one question of the search may use


@dataclass
class RadiusSearch:
    """``lower``: proven (nothing closer reaches the condition; ``inf`` when nothing in the whole
    set does); ``upper``/``best``: the distance and the point of the closest checked witness."""

    lower: float
    upper: float
    best: np.ndarray | None
    steps: list = field(default_factory=list)  # (radius, verdict, method, seconds)
    stopped: str = ""

    @property
    def gap(self) -> float:
        return self.upper - self.lower


def radius_search(decide_at, distance, *, lower: float = 0.0, upper: float = math.inf, best=None,
                  r_max: float, deadline: Clock, gap, whole: bool = False, repair=None) -> RadiusSearch:
    """Search the radius between ``lower`` (proven) and ``upper`` (the distance of ``best``, a
    checked witness, or ``inf``).

    ``decide_at(r, time_limit)`` decides the question within radius ``r`` (a
    :class:`~reluverify.results.PropertyResult`); ``distance(x)`` measures a witness; ``r_max`` is
    the largest distance in the whole set (a proof there is a proof everywhere); ``gap(upper)``
    the gap at which to stop. An ``unknown`` at ``r`` (a point within the proof slack of the
    condition, but none that meets it by its margin) means no proof is possible at ``r``: the search
    goes on below ``r``; ``repair(point) -> witness or None`` may turn that near miss into a
    witness just beyond ``r`` (e.g. by scaling its change)."""
    out = RadiusSearch(float(lower), float(upper), best)

    def ask(r):
        left = deadline.remaining()
        if left <= 0.01:
            out.stopped = "time limit"
            return None
        # one question may use a third of the time left: a hard one ends undecided, not the search
        res = decide_at(r, left if not math.isfinite(out.upper) else max(STEP_SHARE * left, min(left, 0.5)))
        out.steps.append((r, str(res.verdict), res.method, round(res.time_s, 3)))
        return res

    def take(x):
        d = float(distance(x))
        if d < out.upper:
            out.best, out.upper = x, d

    if not math.isfinite(out.upper):  # no witness yet: ask about the whole set first
        res = ask(r_max)
        if res is None:
            return out
        if res.verdict == PropertyVerdict.UNSAT:
            out.lower = math.inf
            return out
        if res.verdict != PropertyVerdict.SAT:
            out.stopped = f"{res.verdict} at the largest radius"
            return out
        take(res.x)
    # Two fronts: proofs push ``lower`` up to ``ceiling`` (the smallest radius where a point meets the
    # condition within the proof slack, or a witness: no proof possible there); witnesses pull
    # ``upper`` down to ``floor`` (the largest radius asked without a witness). Between ceiling and
    # floor lies the zone where the condition is met, but not by the witness's margin.
    ceiling = floor = out.upper
    while out.upper - out.lower > gap(out.upper):
        proof_side = ceiling - out.lower > gap(out.upper)
        lo, hi = (out.lower, ceiling) if proof_side else (floor, out.upper)
        if not proof_side and out.upper - floor <= gap(out.upper):
            break  # both fronts have met their zone
        if whole:
            r = math.floor(0.5 * (lo + hi))
            if r >= hi or r < lo:
                break
        else:
            r = 0.5 * (lo + hi)
        res = ask(r)
        if res is None:
            break
        if res.verdict == PropertyVerdict.UNSAT:
            out.lower = r + 1 if whole else r
            ceiling, floor = max(ceiling, out.lower), max(floor, out.lower)
        elif res.verdict == PropertyVerdict.SAT:  # checked inside the ball: its distance is at most r
            take(res.x)
            ceiling, floor = min(ceiling, out.upper), min(floor, out.upper)
        elif res.verdict in (PropertyVerdict.UNKNOWN, PropertyVerdict.TIMEOUT) and deadline.remaining() > 0.01:
            if proof_side:
                ceiling = floor = r  # undecided at r: no proof there; no witness found up to r either
            else:
                floor = r
            near = res.stats.get("near_miss")
            if repair is not None and near is not None:
                x = repair(near[1])
                if x is not None:
                    take(x)
                    floor = min(floor, out.upper)
        else:
            out.stopped = f"{res.verdict} at radius {r:.6g}"
            break
    return out
