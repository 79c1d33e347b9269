"""A cheap gradient attack in NumPy (projected gradient ascent on a logit gap inside a box).

It never proves anything; it finds counterexamples fast so the MILP only runs on what is left.
Every point it returns is still re-checked (check.py) before anyone calls it found.
"""

from __future__ import annotations

import numpy as np

from ..domain import Box
from ..network import Network


def gap_gradient(network: Network, x: np.ndarray, i: np.ndarray, j: int) -> tuple:
    """Values and input-gradients of ``out_i - out_j`` for a batch ``x`` (one ``i`` per row)."""
    out, pre = network.forward(x, return_all=True)
    last = network.layers[-1]
    g = last.weight[i] - last.weight[j]  # (batch, n_prev)
    for k in range(len(network.layers) - 2, -1, -1):
        layer = network.layers[k]
        if layer.activation == "relu":
            g = g * (pre[k] > 0)
        g = g @ layer.weight
    rows = np.arange(len(x))
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
    if network.layers[-1].activation != "linear":
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
