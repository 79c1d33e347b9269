"""Stage 3 of the engine for networks with few inputs: input splitting.

Bisect the region's box along the input that matters most for the row closest to being ruled out,
bound thousands of sub-boxes at once (:mod:`reluverify.bounds.batch`), and check sub-box centres and
bound-minimising corners as candidate counterexamples. A sub-box is done when one of the region's
rows cannot be met over it; the region is unreachable when every sub-box is done.
"""

from __future__ import annotations

import numpy as np

from ..bounds.batch import batch_bounds, batch_linear_bounds
from ..model import Network
from ..model.layers.base import widen
from ..sets.box import linear_min
from ..spec import Region
from .common import ArrayStack, Clock
from .falsify import rows_value

SPLIT_MAX_INPUTS = 16  # input splitting pays for low-dimensional inputs (ACAS Xu has 5)
SPLIT_BATCH = 1024  # sub-boxes bounded together
# Input splitting runs as a portfolio: the tree size depends wildly on the choice of the input to
# halve (measured on ACAS Xu: one instance needs 500 boxes with one rule and > 30,000 with another,
# and no rule wins everywhere). Each strategy (candidates, score rows, look-ahead quality) gets a
# box budget in turn; budgets double every round, so the total work stays within a small factor of
# the best strategy's.
SPLIT_PORTFOLIO = ((1, "all", "sum"), (5, "closest", "sum"), (2, "closest", "sum"))
SPLIT_FIRST_BUDGET = 1000


def evaluate_boxes(network: Network, region: Region, lo: np.ndarray, hi: np.ndarray) -> tuple:
    """Per box: the rows' lower bounds less their right-hand sides (``excess``, (B, m); a box with
    any excess > 0 cannot reach the region) and the lower bounds' input coefficients (B, m, n)."""
    lowers, uppers = batch_bounds(network, lo, hi)
    lb, A = batch_linear_bounds(network, lowers, uppers, lo, hi, region.a_x, region.a_y)
    return lb - region.b[None, :], A


def split(network: Network, region: Region, checker, deadline: Clock, stats: dict,
           batch: int = SPLIT_BATCH, candidates: int = 1, score_rows: str = "all", quality: str = "sum",
           max_boxes: int | None = None) -> tuple:
    """Input-domain splitting with batched symbolic bounds. Returns ``(status, check)`` with
    status ``"unsat"`` (every sub-box ruled out), ``"sat"``, ``"unknown"`` (a box too small to
    split any further), ``"budget"`` (more than ``max_boxes`` bounded) or ``"timeout"``.

    Each box is halved along one of the ``candidates`` inputs that matter most: |lower-bound
    coefficient| x width, for the row closest to being ruled out (``score_rows="closest"``) or the
    largest over all rows (``"all"``). With several candidates all halvings are bounded and the one
    whose halves are closest to being ruled out wins (``quality``: ``"sum"`` over both halves, or
    ``"min"``, the worse half) - a one-step look-ahead.
    """
    n_boxes = 0

    def finish(status, chk=None):
        stats["split_boxes"] = stats.get("split_boxes", 0) + n_boxes
        return status, chk

    lo, hi = region.lower[None, :], region.upper[None, :]
    excess, A = evaluate_boxes(network, region, lo, hi)
    n_boxes += 1
    stack = ArrayStack()
    if not np.any(excess > 0):
        stack.push(lo, hi, excess, A)
    n_in = region.n_inputs
    while stack.size:
        if deadline.expired():
            return finish("timeout")
        if max_boxes is not None and n_boxes > max_boxes:
            return finish("budget")
        lo, hi, excess, A = stack.pop(max(1, batch // (2 * candidates)))
        B = len(lo)
        rows = np.arange(B)
        # candidate counterexamples: centres, and the corners minimising the tightest row's bound
        r = np.argmax(excess, axis=1)
        Ar = A[rows, r]
        cand = np.concatenate([0.5 * (lo + hi), np.where(Ar > 0, lo, hi)])
        v = np.max(rows_value(network, cand, region), axis=1)
        for i in np.argsort(v)[:4]:
            if v[i] <= 0:
                chk = checker(cand[i], region)
                if chk is not None:
                    return finish("sat", chk)
                if getattr(checker, "near_miss", None) is not None:
                    return finish("unknown")  # no proof is possible: a point meets the rows, by too little
        width = hi - lo
        if score_rows == "all":
            score = np.max(np.abs(A), axis=1) * width
        else:
            score = np.abs(Ar) * width
        # an input that cannot be halved any further (float precision) is no candidate
        score[width <= 1e-12 * np.maximum(1.0, np.abs(lo))] = -1.0  # not a tolerance: float64 spacing
        k = min(candidates, n_in)
        dims = np.argsort(-score, axis=1)[:, :k]  # (B, k)
        if np.any(score[rows, dims[:, 0]] <= 0):
            return finish("unknown")
        # children of every candidate halving: (k, 2, B) boxes
        c_lo = np.repeat(lo[None, None], 2, axis=1).repeat(k, axis=0)
        c_hi = np.repeat(hi[None, None], 2, axis=1).repeat(k, axis=0)
        for c in range(k):
            d = dims[:, c]
            mid = 0.5 * (lo[rows, d] + hi[rows, d])
            c_hi[c, 0, rows, d] = mid
            c_lo[c, 1, rows, d] = mid
        ex, AA = evaluate_boxes(network, region, c_lo.reshape(-1, n_in), c_hi.reshape(-1, n_in))
        n_boxes += ex.shape[0]
        m = ex.shape[1]
        ex = ex.reshape(k, 2, B, m)
        AA = AA.reshape(k, 2, B, m, n_in)
        closeness = np.max(ex, axis=3)  # (k, 2, B): > 0 means that half is ruled out
        # a candidate whose dimension could not be halved must not win
        valid = score[rows[None, :], dims.T] > 0  # (k, B)
        if quality == "min":
            q = np.minimum(closeness[:, 0], closeness[:, 1])
        else:
            q = np.minimum(closeness[:, 0], 0.0) + np.minimum(closeness[:, 1], 0.0)
        goodness = np.where(valid, q, -np.inf)
        best = np.argmax(goodness, axis=0)  # (B,)
        for half in (0, 1):
            keep = closeness[best, half, rows] <= 0
            if np.any(keep):
                stack.push(c_lo[best, half, rows][keep], c_hi[best, half, rows][keep],
                           ex[best, half, rows][keep], AA[best, half, rows][keep])
    return finish("unsat")


def split_portfolio(network: Network, region: Region, checker, deadline: Clock,
                     stats: dict) -> tuple:
    """:func:`split` with each strategy of ``SPLIT_PORTFOLIO`` in turn, doubling box budgets."""
    budget = SPLIT_FIRST_BUDGET
    unknown = set()
    while True:
        for k, (cands, rows, quality) in enumerate(SPLIT_PORTFOLIO):
            if k in unknown:
                continue
            status, chk = split(network, region, checker, deadline, stats, candidates=cands,
                                 score_rows=rows, quality=quality, max_boxes=budget)
            if status in ("sat", "unsat", "timeout"):
                stats["split_strategy"] = k
                return status, chk
            if status == "unknown":
                if getattr(checker, "near_miss", None) is not None:
                    return "unknown", None
                unknown.add(k)
        if len(unknown) == len(SPLIT_PORTFOLIO):
            return "unknown", None
        budget *= 2


def region_rows_lb(network: Network, bounds, region: Region, with_coefficients: bool = False):
    """Lower bounds of the region's rows over its box, and over the bounds' domain where that knows
    more than its box (an L1 ball: the linear lower bound is minimised over the ball too); and, if
    asked, their input coefficients."""
    lo, hi = region.lower[None, :], region.upper[None, :]
    lb, A = batch_linear_bounds(network, [l[None, :] for l in bounds.lower], [u[None, :] for u in bounds.upper],
                                lo, hi, region.a_x, region.a_y)
    lb, A = lb[0], A[0]
    domain = bounds.domain
    if not np.array_equal(domain.lower, region.lower) or hasattr(domain, "center"):
        # lb = A x* + c over the box (already widened down): c = lb - min_box(A x); the same linear
        # function minimised over the domain, widened for the rounding of that sum
        box_min = np.sum(np.minimum(A * region.lower, A * region.upper), axis=1)
        const = lb - box_min
        over = linear_min(A, const, domain)
        mag = np.abs(A) @ np.maximum(np.abs(region.lower), np.abs(region.upper)) + np.abs(const)
        lb = np.maximum(lb, widen(over, over, mag)[0])
    return (lb, A) if with_coefficients else lb
