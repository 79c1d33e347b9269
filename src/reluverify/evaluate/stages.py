"""The cheap stages of a dataset run, batched across samples (networks only).

Each one decides what it can for many (sample, eps) queries at once and leaves the rest to the
engine (:func:`reluverify.verify_robustness`, one query at a time):

* :func:`attack_batch`: projected sign-gradient ascent of the best wrong logit over the true one,
  every query a row of one batch; a candidate counts only after the engine's own witness check
  (:class:`reluverify.engine.query.Witnesses` on the query :func:`verify_robustness` would build),
  so ``not_robust`` here means exactly what it means there;
* :func:`bounds_batch`: symbolic bounds of every query's box at once (:mod:`reluverify.bounds.batch`,
  sound, widened for rounding), then lower bounds of the class-change rows of the same query; a
  query is ``robust`` when every wrong class's region has a row that provably stays above its
  right-hand side raised by the query's proof slack -- the engine's stage 1 rule (label
  elimination), on the same regions.

Nothing here invents a verdict: witnesses pass the engine's check, proofs are the engine's
criterion over sound bounds.
"""

from __future__ import annotations

import time

import numpy as np

from ..bounds.batch import batch_bounds, batch_linear_bounds
from ..engine.query import Witnesses
from ..model import Network
from ..problems.attack import backpropagate
from ..problems.robustness import class_change_query, logit_network, robustness_set

ATTACK_STEPS = 40
ATTACK_RESTARTS = 2  # the clean point, then a random corner of the box
BOUND_CHUNK = 128
  # boxes per batch_bounds call (memory: chunk x 2 x neurons x inputs floats)


def query_for(network: Network, x0: np.ndarray, label: int, eps: float, norm: str, reference=None):
    """``(query, input set)`` exactly as :func:`reluverify.verify_robustness` builds them
    (``reference(x) -> outputs``: the source model that must confirm a witness, or None)."""
    inputs, _ = robustness_set(network, x0, eps, norm, None)
    return class_change_query(network, label, inputs, reference=reference), inputs


def check_witness(network: Network, x0, label: int, eps: float, norm: str, x, reference=None) -> dict | None:
    """The engine's witness check of ``x`` for the query (sample ``x0``, class ``label``, ball
    ``eps``; confirmed by ``reference`` too when given): ``{"x_adv", "distance",
    "adversarial_class"}`` when it passes, else None."""
    query, inputs = query_for(network, x0, label, eps, norm, reference)
    check = Witnesses(query)
    y = network.forward(np.asarray(x, dtype=np.float64))
    others = [j for j in range(network.n_outputs) if j != label]
    order = sorted(range(len(others)), key=lambda k: -y[others[k]])  # the likeliest class first
    for k in order:
        chk = check(x, query.prop.regions[k])
        if chk is not None:
            xa = np.asarray(chk.x, dtype=np.float64)
            return {"x_adv": xa, "distance": float(inputs.distance(xa)),
                    "adversarial_class": int(np.argmax(network.forward(xa)))}
    return None


def attack_batch(network: Network, X0: np.ndarray, labels: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                 seed: int = 0, steps: int = ATTACK_STEPS) -> tuple:
    """Sign-gradient ascent of ``max_{j != c} z_j - z_c`` (logits; a ReLU on the outputs is dropped as
    in the engine) from each row's clean point, then from a random corner, inside each row's box
    ``[lo, hi]``. Returns ``(points, gaps)``: per row the best point and its gap (> 0: a candidate)."""
    net, _ = logit_network(network)
    B, K = len(X0), network.n_outputs
    rows = np.arange(B)
    rng = np.random.default_rng(seed)
    width = hi - lo
    best_x, best_gap = np.clip(X0, lo, hi), np.full(B, -np.inf)
    for restart in range(ATTACK_RESTARTS):
        x = np.clip(X0, lo, hi) if restart == 0 else np.where(rng.random(X0.shape) < 0.5, lo, hi)
        for t in range(steps):
            out, pre = net.forward(x, return_all=True)
            masked = out.copy()
            masked[rows, labels] = -np.inf
            j = np.argmax(masked, axis=1)
            gap = masked[rows, j] - out[rows, labels]
            better = gap > best_gap
            best_x[better], best_gap[better] = x[better], gap[better]
            live = best_gap <= 0
            if not live.any():
                break
            e = np.zeros((B, K))
            e[rows, j] += 1.0
            e[rows, labels] -= 1.0
            g = backpropagate(net, pre, net.layers[-1].linear().backward(e))
            step = width * (0.25 * 0.5 * (1.0 + np.cos(np.pi * t / steps)) + 0.01)
            x = np.where(live[:, None], np.clip(x + step * np.sign(g), lo, hi), x)
        out = net.forward(x)
        masked = out.copy()
        masked[rows, labels] = -np.inf
        gap = masked.max(axis=1) - out[rows, labels]
        better = gap > best_gap
        best_x[better], best_gap[better] = x[better], gap[better]
    return best_x, best_gap


def bounds_batch(network: Network, X0: np.ndarray, labels: np.ndarray, eps: np.ndarray, norm: str,
                 guides: list | None = None) -> np.ndarray:
    """Per query (row), whether sound symbolic bounds over its input box rule out every wrong
    class by the engine's stage-1 rule. Only box-shaped input sets (L-inf balls) are bounded;
    other rows get False.

    ``guides`` (a list, appended to): for every region of an unproved query that the bounds do not
    rule out, ``(row, region index, sign)``: ``sign`` (bool, n_inputs) says which inputs sit at
    their lower end in the box corner that minimises the linear lower bound of the region's row
    (the start of :func:`guided_attack`, as the engine's falsification does per region).

    (Optimised alpha/beta bounds of the open rows, and of the hidden neurons, proved 1-2 more of
    200 seed-net queries at eps 0.03-0.05 for 2-10x the time: not worth it here; the engine's
    ReLU branch and bound decides those.)"""
    B = len(X0)
    proved = np.zeros(B, dtype=bool)
    groups: dict = {}
    boxes = []
    for b in range(B):
        c = int(labels[b])
        inputs, _ = robustness_set(network, X0[b], float(eps[b]), norm, None)
        if not inputs.is_box:
            boxes.append(None)
            continue
        hull = inputs.hull()
        boxes.append((hull.lower, hull.upper))
        if c not in groups:  # the regions' rows depend on the class only (the boxes are per row)
            groups[c] = (class_change_query(network, c, inputs), [])
        groups[c][1].append(b)
    for label, (query, members) in groups.items():
        net = query.network
        regions = query.proof_regions
        a_x = np.vstack([r.a_x for r in regions])
        a_y = np.vstack([r.a_y for r in regions])
        rhs = np.concatenate([r.b for r in regions])
        owner = np.concatenate([np.full(r.n_rows, i) for i, r in enumerate(regions)])
        for start in range(0, len(members), BOUND_CHUNK):
            idx = members[start:start + BOUND_CHUNK]
            lo = np.array([boxes[b][0] for b in idx])
            hi = np.array([boxes[b][1] for b in idx])
            lowers, uppers = batch_bounds(net, lo, hi)
            lb, A = batch_linear_bounds(net, lowers, uppers, lo, hi, a_x, a_y)
            above = lb > rhs[None, :]  # (chunk, rows): this row cannot be met
            ruled = np.zeros((len(idx), len(regions)), dtype=bool)
            for i in range(len(regions)):
                ruled[:, i] = np.any(above[:, owner == i], axis=1)
            proved[idx] = np.all(ruled, axis=1)
            if guides is not None:
                room = lb - rhs[None, :]
                for a, b in enumerate(idx):
                    if proved[b]:
                        continue
                    for i in np.flatnonzero(~ruled[a]):
                        rows = np.flatnonzero(owner == i)
                        if rows.size:
                            r = rows[int(np.argmax(room[a, rows]))]
                            guides.append((b, int(i), A[a, r] > 0))
    return proved


GUIDE_STARTS = 4  # the corner, then copies with GUIDE_FLIP of the inputs moved to the other side
GUIDE_STEPS = 100
GUIDE_CHUNK = 1024  # descents run together


def guided_attack(network: Network, X0: np.ndarray, labels: np.ndarray, regions: list, lo: np.ndarray,
                  hi: np.ndarray, signs: np.ndarray, seed: int = 0, steps: int = GUIDE_STEPS,
                  starts: int = GUIDE_STARTS) -> tuple:
    """The engine's guided falsification (:func:`reluverify.engine.falsify.falsify` with a guide),
    batched over (query, region) pairs: row ``t`` descends the excess of the one-row-or-more
    ``regions[t]`` (its largest row) in the box ``[lo[t], hi[t]]`` by projected sign-gradient
    steps (``GUIDE_STEP`` of the width, cosine decay), from the corner ``signs[t]`` picks (True:
    the lower end) and from ``starts - 1`` copies with ``GUIDE_FLIP`` of its inputs flipped.
    Returns ``(points, excess)`` per row, the best point seen (excess <= 0: a candidate, still to
    be checked)."""
    from ..engine.falsify import GUIDE_FLIP, GUIDE_STEP

    net, _ = logit_network(network)
    T = len(X0)
    rng = np.random.default_rng(seed)
    m = max(r.n_rows for r in regions)
    # rows stacked per pair (regions with fewer rows repeat their last row: the max is unchanged)
    a_x = np.stack([r.a_x[np.minimum(np.arange(m), r.n_rows - 1)] for r in regions])  # (T, m, n)
    a_y = np.stack([r.a_y[np.minimum(np.arange(m), r.n_rows - 1)] for r in regions])  # (T, m, K)
    b = np.stack([r.b[np.minimum(np.arange(m), r.n_rows - 1)] for r in regions])  # (T, m)
    rep = np.repeat(np.arange(T), starts)
    L, H = lo[rep], hi[rep]
    width = H - L
    x = np.where(signs[rep], L, H)
    flip = rng.random(x.shape) < GUIDE_FLIP
    flip[::starts] = False
    x = np.where(flip, L + H - x, x)
    AX, AY, Bv = a_x[rep], a_y[rep], b[rep]
    rows = np.arange(len(x))

    def excess(x, out):
        return np.einsum("tmn,tn->tm", AX, x) + np.einsum("tmk,tk->tm", AY, out) - Bv

    best_x, best_v = x.copy(), np.full(len(x), np.inf)
    for t in range(steps + 1):
        out, pre = net.forward(x, return_all=True)
        ex = excess(x, out)
        k = np.argmax(ex, axis=1)
        v = ex[rows, k]
        better = v < best_v
        best_x[better], best_v[better] = x[better], v[better]
        live = best_v > 0
        if t == steps or not live.any():
            break
        g = backpropagate(net, pre, net.layers[-1].vjp(pre[-1], AY[rows, k])) + AX[rows, k]
        step = GUIDE_STEP * width * 0.5 * (1.0 + np.cos(np.pi * t / steps))
        x = np.where(live[:, None], np.clip(x - step * np.sign(g), L, H), x)
    per = best_v.reshape(T, starts)
    pick = np.argmin(per, axis=1)
    return best_x.reshape(T, starts, -1)[np.arange(T), pick], per[np.arange(T), pick]


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0
