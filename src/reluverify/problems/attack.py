"""A cheap gradient attack in NumPy (projected gradient ascent on a logit gap inside a box).

It never proves anything; it finds counterexamples fast so the MILP only runs on what is left.
Every point it returns is still re-checked (check.py) before anyone calls it found.
"""

from __future__ import annotations

import numpy as np

from ..domain import Box
from ..model import Network
from ..tolerances import DEFAULT_MARGIN


def backpropagate(network: Network, pre: list, g: np.ndarray) -> np.ndarray:
    """Input-gradient of ``g · h`` where ``h`` is the input of the last layer, given the
    pre-activations ``pre`` of a forward pass (``g`` one row per input of the batch, or one row):
    each layer's vector-Jacobian product, last to first."""
    for k in range(len(network.layers) - 2, -1, -1):
        g = network.layers[k].vjp(pre[k], g)
    return g


def gap_gradient(network: Network, x: np.ndarray, i: np.ndarray, j: int) -> tuple:
    """Values and input-gradients of ``out_i - out_j`` for a batch ``x`` (one ``i`` per row); the
    last layer must be affine."""
    out, pre = network.forward(x, return_all=True)
    rows = np.arange(len(x))
    e = np.zeros((len(x), network.n_outputs))  # out_i - out_j as rows over the last layer's outputs
    e[rows, i] += 1.0
    e[:, j] -= 1.0
    g = backpropagate(network, pre, network.layers[-1].linear().backward(e))
    return out[rows, i] - out[:, j], g


def pgd_attack(
    network: Network,
    x0: np.ndarray,
    original_class: int,
    box: Box,
    *,
    target: int | None = None,
    steps: int = 60,
    restarts: int = 8,
    seed: int = 0,
) -> tuple:
    """Search ``box`` for a point where another class (or ``target``) beats ``original_class``.

    Returns ``(best_point, best_gap)`` where ``gap = max_{j != c} out_j - out_c`` (or
    ``out_target - out_c``); a positive gap means a candidate counterexample.
    """
    if not network.layers[-1].affine:
        return x0.copy(), -np.inf
    rng = np.random.default_rng(seed)
    lo, hi = box.lower, box.upper
    width = hi - lo
    starts = [np.clip(x0, lo, hi)] + [lo + rng.random(lo.size) * width for _ in range(restarts - 1)]
    x = np.array(starts)
    c = original_class
    best_x, best_gap = x[0].copy(), -np.inf
    step = 0.25 * width.max() if width.max() > 0 else 0.0
    if step == 0.0:
        out = network.forward(x[0])
        others = np.delete(np.arange(out.size), c) if target is None else np.array([target])
        return x[0].copy(), float(out[others].max() - out[c])
    for it in range(steps):
        out = network.forward(x)
        if target is None:
            masked = out.copy()
            masked[:, c] = -np.inf
            i = np.argmax(masked, axis=1)
        else:
            i = np.full(len(x), target)
        gap, grad = gap_gradient(network, x, i, c)
        k = int(np.argmax(gap))
        if gap[k] > best_gap:
            best_gap, best_x = float(gap[k]), x[k].copy()
        if best_gap > 0 and it > 5:
            break
        x = np.clip(x + step * np.sign(grad), lo, hi)
        step *= 0.93
    return best_x, best_gap


def _success_gap(network: Network, x: np.ndarray, c: int, target: int | None) -> float:
    out = network.forward(x)
    if target is None:
        return float(np.max(np.delete(out, c)) - out[c])
    return float(out[target] - np.max(np.delete(out, target)))


def shrink_to_boundary(network: Network, x0: np.ndarray, x: np.ndarray, c: int, target: int | None,
                       margin: float, iters: int = 40) -> np.ndarray:
    """Smallest ``t`` in (0, 1] (by bisection) with ``x0 + t (x - x0)`` still successful by ``margin``."""
    if _success_gap(network, x, c, target) < margin:
        return x
    lo_t, hi_t = 0.0, 1.0
    for _ in range(iters):
        mid = 0.5 * (lo_t + hi_t)
        if _success_gap(network, x0 + mid * (x - x0), c, target) >= margin:
            hi_t = mid
        else:
            lo_t = mid
    return x0 + hi_t * (x - x0)


def l1_attack(network: Network, x0: np.ndarray, c: int, box: Box, *, target: int | None = None,
              margin: float = DEFAULT_MARGIN, max_changes: int | None = None) -> np.ndarray | None:
    """A greedy sparse attack: repeatedly push the input value with the largest first-order gain
    to its bound until the class changes, then shrink the whole change back to the boundary.
    Returns a candidate point (still to be checked) or None. Gives an incumbent for L1/L0 problems."""
    if not network.layers[-1].affine:
        return None
    x = x0.copy()
    n = x.size
    saturated = np.zeros(n, dtype=bool)
    limit = n if max_changes is None else max_changes
    for _ in range(limit):
        out = network.forward(x)
        if target is None:
            masked = out.copy()
            masked[c] = -np.inf
            i_best = int(np.argmax(masked))
            gap = out[i_best] - out[c]
            _, g = gap_gradient(network, x[None, :], np.array([i_best]), c)
        else:
            others = out.copy()
            others[target] = -np.inf
            j = int(np.argmax(others))
            gap = out[target] - out[j]
            _, g = gap_gradient(network, x[None, :], np.array([target]), j)
        if gap >= margin:
            return shrink_to_boundary(network, x0, x, c, target, margin)
        g = g[0]
        room = np.where(g > 0, box.upper - x, x - box.lower)
        score = np.abs(g) * room
        score[saturated] = -1.0
        i = int(np.argmax(score))
        if score[i] <= 0:
            return None
        x[i] = box.upper[i] if g[i] > 0 else box.lower[i]
        saturated[i] = True
    if _success_gap(network, x, c, target) >= margin:
        return shrink_to_boundary(network, x0, x, c, target, margin)
    return None


def linf_attack(network: Network, x0: np.ndarray, c: int, box: Box, *, target: int | None = None,
                margin: float = DEFAULT_MARGIN, iters: int = 12) -> np.ndarray | None:
    """Bisection on the L-inf radius with :func:`pgd_attack`; returns the smallest-radius success."""
    width = float(np.max(np.maximum(box.upper - x0, x0 - box.lower)))
    if width <= 0:
        return None

    def attempt(eps):
        ball = Box(np.maximum(box.lower, x0 - eps), np.minimum(box.upper, x0 + eps))
        cand, gap = pgd_attack(network, x0, c, ball, target=target, steps=40, restarts=3)
        return cand if gap >= margin and _success_gap(network, cand, c, target) >= margin else None

    best = attempt(width)
    if best is None:
        return None
    lo_e, hi_e = 0.0, float(np.max(np.abs(best - x0)))
    for _ in range(iters):
        mid = 0.5 * (lo_e + hi_e)
        cand = attempt(mid)
        if cand is None:
            lo_e = mid
        else:
            best, hi_e = cand, float(np.max(np.abs(cand - x0)))
    return best
