"""ReLU branch and bound: split unstable neurons and re-bound each half, many domains at once.

For networks with many inputs (MNIST's 784) halving the input box does not pay; splitting a ReLU
does. A *domain* is the region's input box together with a phase for some unstable neurons:
"active" (``z >= 0``, so ``relu(z) = z``) or "inactive" (``z <= 0``, so ``relu(z) = 0``). The two
halves of a split cover the parent, so proving the unsafe rows unreachable on every leaf proves
the region unreachable. Per domain the split neuron's bounds are clamped at 0, the bounds of every
later layer are recomputed by back-substitution (:func:`reluverify.bounds.batch.batch_bounds`,
intersected with the parent's, so the root's LP-tightened bounds are never lost), and the region's
rows are bounded below (:func:`reluverify.bounds.batch.batch_linear_bounds`). A domain with a
row whose lower bound exceeds its right-hand side is done.

Soundness: every bound of a domain holds for all inputs of the box whose listed neurons have the
listed phases (relaxations of the split neurons are exact there); the bounds ignore the phase
constraints elsewhere (no Lagrangian terms as in beta-CROWN), which makes them weaker, never wrong.
The procedure is therefore incomplete: a domain whose neurons are all stable but not ruled out
ends the search with ``unknown`` (the MILP stage then takes over).

Which neuron: the largest ``|coefficient| * u * (-l) / (u - l)`` over unstable neurons, the
coefficient being that of the neuron's output in the back-substituted lower bound of the row
closest to being met, and ``u (-l) / (u - l)`` the offset of its upper relaxation: an estimate of
how much of the bound the neuron's relaxation gives away (the "intercept" score of BaBSR,
Bunel et al. 2020).

Each domain also offers a candidate counterexample: the box corner that minimises the linear lower
bound of its closest row, re-checked like any other point.
"""

from __future__ import annotations

import numpy as np

from ..bounds.batch import batch_bounds, batch_linear_bounds
from ..bounds.optimised import optimised_bound
from ..bounds.symbolic import relu_relaxation
from ..network import Network
from ..spec import Region
from .common import ArrayStack, Clock

OPT_STEPS = 20  # gradient steps on the slopes and multipliers per bounded domain
BRANCH_CANDIDATES = 1  # neurons looked ahead per split (1: the best score, no look-ahead)
LOOK_AHEAD_STEPS = 5
BRANCH_BATCH = 32  # domains split per step (2x as many children are bounded together)
MAX_DOMAINS = 100_000  # open domains kept at most (memory: about 2 x 8 bytes per neuron each)


def split_scores(network: Network, lowers: list, uppers: list, a_y: np.ndarray) -> list:
    """Per hidden layer, (B, n_k) scores of the unstable neurons (0 for stable ones) for the
    output rows ``a_y`` (B, n_out): see the module docstring. An unstable neuron whose coefficient
    is 0 gets a tiny score (its offset times 1e-12), so a domain with unstable neurons always has
    one to split."""
    L = len(network.layers)
    last = network.layers[-1]
    A = np.asarray(a_y, dtype=np.float64)
    if last.activation == "relu":
        a_low, a_up, _ = relu_relaxation(lowers[L - 1], uppers[L - 1], True)
        A = np.maximum(A, 0.0) * a_low + np.minimum(A, 0.0) * a_up
    A = A @ last.weight  # coefficients of h_{L-2}
    scores: list = [None] * (L - 1)
    for j in range(L - 2, -1, -1):
        lo, hi = lowers[j], uppers[j]
        relu = network.layers[j].activation == "relu"
        if relu:
            unstable = (lo < 0) & (hi > 0)
            offset = np.where(unstable, hi * -lo / np.where(unstable, hi - lo, 1.0), 0.0)
            scores[j] = (np.abs(A) + 1e-12) * offset
        else:
            scores[j] = np.zeros_like(lo)
        if j == 0:
            break
        a_low, a_up, _ = relu_relaxation(lo, hi, relu)
        A = (np.maximum(A, 0.0) * a_low + np.minimum(A, 0.0) * a_up) @ network.layers[j].weight
    return scores


def _clamp(lowers: list, uppers: list, rows: np.ndarray, layer: np.ndarray, neuron: np.ndarray,
           active: bool) -> None:
    """Fix the phase of neuron ``neuron[i]`` of layer ``layer[i]`` in domain ``rows[i]`` (in place):
    lower bound raised to 0 (active) or upper bound lowered to 0 (inactive)."""
    for k in np.unique(layer):
        sel = layer == k
        r, j = rows[sel], neuron[sel]
        if active:
            lowers[k][r, j] = np.maximum(lowers[k][r, j], 0.0)
        else:
            uppers[k][r, j] = np.minimum(uppers[k][r, j], 0.0)


class _Domains:
    """Bounding and splitting of domains of one region (arrays with a leading domain axis)."""

    def __init__(self, network: Network, region: Region, opt_steps: int = OPT_STEPS, candidates: int = 1):
        self.network, self.region, self.opt_steps, self.candidates = network, region, opt_steps, candidates
        # the optimised bound needs an affine output layer (a ReLU output keeps the plain bound)
        self.optimise = opt_steps > 0 and network.layers[-1].activation != "relu"

    def evaluate(self, lowers: list, uppers: list) -> tuple:
        """Row excesses (B, m) of the domains' lower bounds, the corner candidates (B, n) and
        each domain's split choice ``(layer, neuron, score)``."""
        region = self.region
        B = lowers[0].shape[0]
        lo = np.broadcast_to(region.lower, (B, region.n_inputs))
        hi = np.broadcast_to(region.upper, (B, region.n_inputs))
        lb, A = batch_linear_bounds(self.network, lowers, uppers, lo, hi, region.a_x, region.a_y)
        excess = lb - region.b[None, :]
        rows = np.arange(B)
        r = np.argmax(excess, axis=1)  # the row closest to ruling the domain out
        corners = np.where(A[rows, r] > 0, lo, hi)
        open_ = ~np.any(excess > 0, axis=1)
        if self.optimise and np.any(open_):  # optimised slopes and multipliers for that row
            o = np.flatnonzero(open_)
            lb_o, corner_o = optimised_bound(self.network.layers, [l[o] for l in lowers],
                                             [u[o] for u in uppers], lo[o], hi[o], region.a_x[r[o]],
                                             region.a_y[r[o]], self.opt_steps)
            excess[o, r[o]] = np.maximum(excess[o, r[o]], lb_o - region.b[r[o]])
            corners[o] = corner_o
        scores = split_scores(self.network, lowers, uppers, region.a_y[r])
        flat = np.concatenate(scores, axis=1)  # (B, hidden neurons)
        offsets = np.cumsum([0] + [s.shape[1] for s in scores])
        if self.candidates > 1 and self.optimise:
            pick = self._look_ahead(lowers, uppers, flat, offsets, r, lo, hi)
        else:
            pick = np.argmax(flat, axis=1)
        layer = np.searchsorted(offsets, pick, side="right") - 1
        neuron = pick - offsets[layer]
        return excess, corners, layer, neuron, flat[rows, pick]

    def _look_ahead(self, lowers, uppers, flat, offsets, r, lo, hi) -> np.ndarray:
        """Among each domain's ``candidates`` best-scored neurons, the one whose two halves'
        optimised bounds (``LOOK_AHEAD_STEPS`` steps, without re-bounding) come closest to ruling
        them out ("filtered smart branching", De Palma et al. 2021)."""
        region = self.region
        B = flat.shape[0]
        k = min(self.candidates, flat.shape[1])
        cand = np.argsort(-flat, axis=1)[:, :k]  # (B, k)
        layer = np.searchsorted(offsets, cand, side="right") - 1
        neuron = cand - offsets[layer]
        # 2k children per domain: order (candidate, half, domain)
        rep = np.tile(np.arange(B), 2 * k)
        lo_c = [l[rep] for l in lowers]
        hi_c = [u[rep] for u in uppers]
        for c in range(k):
            for half in (0, 1):
                _clamp(lo_c, hi_c, (2 * c + half) * B + np.arange(B), layer[:, c], neuron[:, c], half == 0)
        lb, _ = optimised_bound(self.network.layers, lo_c, hi_c, lo[rep], hi[rep], region.a_x[r[rep]],
                                region.a_y[r[rep]], LOOK_AHEAD_STEPS)
        gap = np.minimum(lb - region.b[r[rep]], 0.0).reshape(k, 2, B).sum(axis=1)  # (k, B)
        valid = flat[np.arange(B)[None, :], cand.T] > 0
        best = np.argmax(np.where(valid, gap, -np.inf), axis=0)
        return cand[np.arange(B), best]

    def children(self, lowers: list, uppers: list, layer: np.ndarray, neuron: np.ndarray) -> tuple:
        """Both halves of each domain's split: the first B are "active", the next B "inactive";
        later layers re-bounded."""
        B = layer.size
        lo_c = [np.concatenate([l, l]) for l in lowers]
        hi_c = [np.concatenate([u, u]) for u in uppers]
        rows = np.arange(B)
        _clamp(lo_c, hi_c, rows, layer, neuron, True)
        _clamp(lo_c, hi_c, B + rows, layer, neuron, False)
        region = self.region
        lo = np.broadcast_to(region.lower, (2 * B, region.n_inputs))
        hi = np.broadcast_to(region.upper, (2 * B, region.n_inputs))
        return batch_bounds(self.network, lo, hi, parent=(lo_c, hi_c), start=int(layer.min()) + 1,
                            unstable_only=True)


def relu_branch_and_bound(network: Network, region: Region, lowers: list, uppers: list, checker,
                          deadline: Clock, stats: dict, *, batch: int = BRANCH_BATCH,
                          max_domains: int = MAX_DOMAINS, opt_steps: int = OPT_STEPS,
                          candidates: int = BRANCH_CANDIDATES) -> tuple:
    """Decide ``region`` by ReLU splitting from root bounds ``lowers``/``uppers`` (per layer, valid
    over the region's box). ``checker(x, region)`` returns a checked counterexample or None.

    Returns ``(status, check)``: ``"unsat"`` (every leaf ruled out: a proof), ``"sat"`` (with
    the check), ``"unknown"`` (a leaf with no unstable neuron left, or more than ``max_domains``
    open domains) or ``"timeout"`` (``deadline`` expired). ``stats["branch_domains"]`` counts the
    domains bounded.
    """
    dom = _Domains(network, region, opt_steps, candidates)
    n_bounded = 0

    def finish(status, chk=None):
        stats["branch_domains"] = stats.get("branch_domains", 0) + n_bounded
        return status, chk

    L = [np.asarray(l, dtype=np.float64)[None, :] for l in lowers]
    U = [np.asarray(u, dtype=np.float64)[None, :] for u in uppers]
    stack = ArrayStack()

    def triage(L, U) -> tuple | None:
        """Drop the domains ruled out, try their corners, push the rest; a status ends the search."""
        excess, corners, layer, neuron, score = dom.evaluate(L, U)
        open_ = ~np.any(excess > 0, axis=1)
        if not np.any(open_):
            return None
        x = corners[open_]
        v = np.max(region.row_excess(x, network.forward(x)), axis=1)
        for i in np.argsort(v)[:4]:
            if v[i] <= 0:
                chk = checker(corners[open_][i], region)
                if chk is not None:
                    return ("sat", chk)
        if np.any(score[open_] <= 0):  # all stable, still open: the relaxation cannot decide
            return ("unknown", None)
        stack.push(*[l[open_] for l in L], *[u[open_] for u in U], layer[open_], neuron[open_])
        return None

    n_bounded += 1
    end = triage(L, U)
    if end is not None:
        return finish(*end)
    n = len(L)
    while stack.size:
        if deadline.expired():
            return finish("timeout")
        if stack.size > max_domains:
            return finish("unknown")
        parts = stack.pop(batch)
        L, U, layer, neuron = list(parts[:n]), list(parts[n:2 * n]), parts[2 * n], parts[2 * n + 1]
        L, U = dom.children(L, U, layer, neuron)
        n_bounded += len(L[0])
        end = triage(L, U)
        if end is not None:
            return finish(*end)
    return finish("unsat")
