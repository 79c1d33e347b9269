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
# The end game's witness questions: at most this many, each at most SQUEEZE_S seconds and
# SQUEEZE_SHARE of the time left (a witness near the optimum is found by the attack within a
# second when it is found at all; a proof there takes tens of seconds)
SQUEEZE_PROBES = 6
SQUEEZE_S = 1.0
SQUEEZE_SHARE = 0.05
# The end game's last question (all the time left, at upper - close(upper)) is asked only when the
# gap is at most this share of ``upper`` (else bisection goes on, for a better proven bound when the
# last question would fail). Ad hoc, from four open mlp64 images: the one the last question closed
# had 0.6 %, the three it could not 6 to 49 %.
ENDGAME_GAP = 0.05


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
                  r_max: float, deadline: Clock, gap, whole: bool = False, repair=None,
                  endgame: bool = True, close=None) -> RadiusSearch:
    """Search the radius between ``lower`` (proven) and ``upper`` (the distance of ``best``, a
    checked witness, or ``inf``).

    ``decide_at(r, time_limit)`` decides the question within radius ``r`` (a
    :class:`~reluverify.results.PropertyResult`); ``distance(x)`` measures a witness; ``r_max`` is
    the largest distance in the whole set (a proof there is a proof everywhere); ``gap(upper)``
    the gap at which to stop. An ``unknown`` at ``r`` (a point within the proof slack of the
    condition, but none that meets it by its margin) means no proof is possible at ``r``: the search
    goes on below ``r``; ``repair(point) -> witness or None`` may turn that near miss into a
    witness just beyond ``r`` (e.g. by scaling its change).

    Bisection first, each question with at most ``STEP_SHARE`` of the time left. Near the optimum
    proofs get expensive: with ``endgame`` (the default), the first proof question that ends
    undecided is followed by short witness questions (``SQUEEZE_PROBES``, each ``SQUEEZE_S`` at
    most) that pull ``upper`` down; then, once the gap is at most ``ENDGAME_GAP`` of ``upper``
    (at that point or at a later undecided proof question), one question at ``upper - close(upper)``
    gets all the time left instead of more bisection with ever smaller budgets: its proof ends the
    search (a witness there lowers ``upper`` and the question is asked again below it).
    ``close`` (default ``gap``) may be coarser than ``gap``: the gap the caller calls closed (e.g.
    its optimality rule), where the end game stops."""
    out = RadiusSearch(float(lower), float(upper), best)
    close = gap if close is None else close

    def ask(r, share=STEP_SHARE, cap=math.inf):
        left = deadline.remaining()
        if left <= 0.01:
            out.stopped = "time limit"
            return None
        # one question may use a share of the time left: a hard one ends undecided, not the search
        budget = left if not math.isfinite(out.upper) else max(share * left, min(left, 0.5))
        res = decide_at(r, min(budget, cap, left))
        out.steps.append((r, str(res.verdict), res.method, round(res.time_s, 3)))
        return res

    def take(x):
        d = float(distance(x))
        if d < out.upper:
            out.best, out.upper = x, d

    def settle_near_miss(res):
        """A near miss at the radius asked (no proof possible there): repaired into a witness if
        ``repair`` can; True when that lowered ``upper``."""
        near = res.stats.get("near_miss")
        if repair is None or near is None:
            return False
        x = repair(near[1])
        if x is None:
            return False
        before = out.upper
        take(x)
        return out.upper < before

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
    undecided_proof = None  # set when the end game's last question is due
    squeezed = False
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
                if endgame and res.verdict == PropertyVerdict.TIMEOUT and "near_miss" not in res.stats:
                    if not squeezed and not whole:  # once: short witness questions between r and upper
                        squeezed = True
                        _squeeze(out, ask, take, settle_near_miss, r, deadline, close)
                    if out.upper - out.lower <= ENDGAME_GAP * out.upper:
                        undecided_proof = r
                        break
                    ceiling = floor = min(max(r, out.lower), out.upper)
                    continue  # a wide gap: more bisection for the proven bound
            else:
                floor = r
            if settle_near_miss(res):
                floor = min(floor, out.upper)
        else:
            out.stopped = f"{res.verdict} at radius {r:.6g}"
            break
    if undecided_proof is not None:
        _final(out, ask, take, settle_near_miss, close, whole)
    return out


def _squeeze(out: RadiusSearch, ask, take, settle_near_miss, undecided: float, deadline: Clock, gap) -> None:
    """Short witness questions between ``undecided`` (where a proof question ended undecided) and
    ``upper``, by bisection: a witness lowers ``upper``, none raises the floor of the next one; a
    proof (cheaper than feared) raises ``lower``."""
    floor = max(undecided, out.lower)
    for _ in range(SQUEEZE_PROBES):
        if out.upper - floor <= 2 * gap(out.upper) or deadline.remaining() <= 0.01:
            return
        r = 0.5 * (floor + out.upper)
        res = ask(r, SQUEEZE_SHARE, SQUEEZE_S)
        if res is None:
            return
        if res.verdict == PropertyVerdict.SAT:
            take(res.x)
        elif res.verdict == PropertyVerdict.UNSAT:
            out.lower = max(out.lower, r)
            floor = r
        else:
            floor = r
            settle_near_miss(res)


def _final(out: RadiusSearch, ask, take, settle_near_miss, gap, whole: bool) -> None:
    """The question at ``upper - gap(upper)`` with all the time left, again below each witness it
    gives, until a proof closes the gap or the time is up."""
    while out.upper - out.lower > gap(out.upper):
        if whole:
            r = out.upper - 1
        else:
            r = out.upper - gap(out.upper)
            while r < out.upper and out.upper - r > gap(out.upper):  # rounding: a proof at r must close
                r = math.nextafter(r, math.inf)
        if r <= out.lower:
            break
        res = ask(r, 1.0)
        if res is None:
            return
        if res.verdict == PropertyVerdict.UNSAT:
            out.lower = r + 1 if whole else r
        elif res.verdict == PropertyVerdict.SAT:
            take(res.x)
        elif res.verdict in (PropertyVerdict.UNKNOWN, PropertyVerdict.TIMEOUT):
            if not settle_near_miss(res):
                out.stopped = f"{res.verdict} at radius {r:.6g} (end game)"
                return
        else:
            out.stopped = f"{res.verdict} at radius {r:.6g}"
            return
