"""Stage 2 of the engine: falsification. Look for a point of a region's input set whose rows all
hold, in NumPy: random samples, then projected sign-gradient descent on the region's largest row
excess. It proves nothing; its points are re-checked like every other witness."""

from __future__ import annotations

import numpy as np

from ..model import Network
from ..problems.attack import backpropagate
from ..spec import Region
from .common import Clock

ATTACK_SAMPLES = 2048
ATTACK_STEPS = 60
ATTACK_STARTS = 32
GUIDE_FLIP = 0.1  # share of a guided start's inputs moved to the opposite side of the box
GUIDE_STEP = 0.25  # first step of the guided descent, as a share of the box width
GUIDE_STEPS = 100


def rows_value(network: Network, x: np.ndarray, region: Region) -> np.ndarray:
    """Row excesses ``a_x x + a_y f(x) - b`` for a batch of inputs: (B, m)."""
    return region.row_excess(x, network.forward(x))


def _regions(region) -> list:
    return list(region) if isinstance(region, (list, tuple)) else [region]


def excess(network: Network, x: np.ndarray, region) -> np.ndarray:
    """Per input, the smallest over the regions of the region's largest row excess: (B,) (<= 0:
    the input lies in some region)."""
    out = network.forward(x)
    return np.min([np.max(r.row_excess(x, out), axis=1) for r in _regions(region)], axis=0)


def excess_and_gradient(network: Network, x: np.ndarray, region) -> tuple:
    """Per input, the smallest over the regions of the largest row excess, and its input-gradient
    (a subgradient of the min of maxes: the row that attains it)."""
    out, pre = network.forward(x, return_all=True)
    regions = _regions(region)
    per = [r.row_excess(x, out) for r in regions]  # R x (B, m)
    worst = np.array([np.max(p, axis=1) for p in per])  # (R, B)
    k = np.argmin(worst, axis=0)  # the region closest to being met, per input
    B = len(x)
    a_y = np.empty((B, out.shape[1]))
    a_x = np.empty((B, x.shape[1]))
    for ri, (r, p) in enumerate(zip(regions, per)):
        sel = k == ri
        if np.any(sel):
            row = np.argmax(p[sel], axis=1)
            a_y[sel], a_x[sel] = r.a_y[row], r.a_x[row]
    # the rows' gradient through the last layer (its own vector-Jacobian product: a ReLU output
    # passes it only where the pre-activation is positive), then through the others
    g = backpropagate(network, pre, network.layers[-1].vjp(pre[-1], a_y)) + a_x
    return worst[k, np.arange(B)], g


def _descend(network: Network, region, x: np.ndarray, steps: int, step: np.ndarray,
             deadline: Clock | None, schedule: str, project) -> tuple:
    """Projected sign-gradient descent of the excess from each row of ``x``; the step halves every
    20 iterations (``"halve"``) or follows a cosine decay (``"cosine"``). Returns the best
    ``(x, excess)`` seen; stops at the first point with negative excess."""
    best_x, best_v = x[0].copy(), np.inf
    for t in range(steps):
        if deadline is not None and deadline.expired():
            break
        v, g = excess_and_gradient(network, x, region)
        i = int(np.argmin(v))
        if v[i] < best_v:
            best_x, best_v = x[i].copy(), float(v[i])
            if best_v < 0:
                return best_x, best_v
        s = step if schedule == "halve" else step * 0.5 * (1.0 + np.cos(np.pi * t / steps))
        x = project(x - s * np.sign(g))
        if schedule == "halve" and t % 20 == 19:
            step = step * 0.5
    v = excess(network, x, region)
    i = int(np.argmin(v))
    if v[i] < best_v:
        best_x, best_v = x[i].copy(), float(v[i])
    return best_x, best_v


def falsify(network: Network, region, *, seed: int = 0, samples: int = ATTACK_SAMPLES,
            steps: int = ATTACK_STEPS, starts: int = ATTACK_STARTS, deadline: Clock | None = None,
            guide: np.ndarray | None = None, inputs=None) -> tuple:
    """Search ``region`` (one region, or several sharing one input box: a point in any of them;
    and ``inputs``, an input set, when given) for a point whose rows all hold: random samples,
    then projected sign-gradient descent from the best of them. Returns ``(x, excess)``;
    ``excess <= 0`` is a candidate counterexample (still to be checked, in the region it meets).

    ``guide`` (input coefficients of a linear lower bound of the row to reach, e.g. from
    :func:`~reluverify.bounds.batch.batch_linear_bounds`) adds a second descent from the box corner
    minimising that bound and from copies of it with ``GUIDE_FLIP`` of the inputs flipped to the
    other side, with longer steps (``GUIDE_STEP`` of the width, cosine decay over
    ``GUIDE_STEPS``). In high dimensions these start far closer to counterexamples than random
    points: on VNN-COMP mnist_fc they crack two ``sat`` instances that the random starts miss
    (256x4 prop_6_0.05, 256x6 prop_1_0.05; the second is a test)."""
    first = _regions(region)[0]
    lo, hi = first.lower, first.upper

    def project(X):
        X = np.clip(X, lo, hi)
        return X if inputs is None else inputs.project(X)

    if any(r.n_rows == 0 for r in _regions(region)):
        return project(0.5 * (lo + hi)), -np.inf
    rng = np.random.default_rng(seed)
    width = hi - lo
    X = lo + rng.random((samples, lo.size)) * width
    X[0] = 0.5 * (lo + hi)
    if inputs is not None:
        X[1] = inputs.project(np.clip(getattr(inputs, "center", X[0]), lo, hi))
        X = project(X)
    V = excess(network, X, region)
    order = np.argsort(V)
    best_x, best_v = X[int(order[0])].copy(), float(V[int(order[0])])
    if best_v <= 0 or not np.any(width > 0):
        return best_x, best_v
    x, v = _descend(network, region, X[order[:starts]].copy(), steps, 0.1 * width, deadline, "halve", project)
    if v < best_v:
        best_x, best_v = x, v
    if best_v <= 0 or guide is None:
        return best_x, best_v
    corner = np.where(np.asarray(guide) > 0, lo, hi)
    G = np.repeat(corner[None, :], starts, axis=0)
    flip = rng.random(G.shape) < GUIDE_FLIP
    flip[0] = False
    x, v = _descend(network, region, project(np.where(flip, lo + hi - G, G)), GUIDE_STEPS, GUIDE_STEP * width,
                    deadline, "cosine", project)
    if v < best_v:
        best_x, best_v = x, v
    return best_x, best_v
