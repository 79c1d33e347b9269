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
listed phases (relaxations of the split neurons are exact there). The later layers' bounds are
plain back-substitution, which ignores the phase constraints; the rows' bound is optimised
(:func:`reluverify.bounds.optimised.optimised_bound`: slopes, and Lagrange multipliers that put
the split neurons' sign constraints back, as in beta-CROWN), every parameter value being sound.
Neurons inactive at the root are left out of that bound (they output 0 in every domain; their
multipliers only slowed the ascent: on mnist_fc fewer domains were needed without them). Split
children start that ascent from their parent's final slopes and multipliers (as alpha/beta-CROWN
does), so the steps add up along a branch (one tree per region; a shared tree starts cold).
The procedure is incomplete: a domain whose neurons are all stable but not ruled out is left to
the MILP stage (its regions are reported undecided).

Regions that share an input box can share one tree (a domain is dropped once every region is ruled
out on it); :func:`~reluverify.problems.verification.check_property` still runs one tree per
region, which was faster on mnist_fc.

Progress: each call appends to ``stats["branch_proved_fraction"]`` the share of the tree ruled
out, a leaf at depth ``d`` counting ``2^-d`` (1.0 for a proof). A rough measure: deep subtrees
weigh little, so 0.99 can still be far from done.

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

from ..bounds.batch import batch_bounds, batch_linear_bounds, live_outputs
from ..bounds.optimised import optimised_bound
from ..model import Network
from ..spec import Region
from .common import ArrayStack, Clock
from .options import DEFAULT_TUNING, Tuning
from ..threads import limit_blas

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
    rows = None
    if not last.affine:
        rel = last.relaxation(lowers[L - 1], uppers[L - 1])
        A, _ = rel.lower(A, offset=False)
        rows = rel.pre_index
    A = last.linear(rows=rows).backward(A)  # coefficients of h_{L-2}
    scores: list = [None] * (L - 1)
    for j in range(L - 2, -1, -1):
        layer = network.layers[j]
        lo, hi = lowers[j], uppers[j]
        if layer.n_nonlinear and layer.n_pre == layer.n_out:
            # the layer's branch offsets (0 where a split would not help: never chosen); kinds whose
            # pre-activations are not their outputs (MaxPool) are not split here
            scores[j] = (np.abs(A) + 1e-12) * layer.branch_offset(lo, hi)  # not a tolerance: a tie-breaking score
        else:
            scores[j] = np.zeros_like(lo)
        if j == 0:
            break
        rel = layer.relaxation(lo, hi)
        D, _ = rel.lower(A, offset=False)
        A = layer.linear(rows=rel.pre_index).backward(D)
    return scores


def _clamp(network: Network, lowers: list, uppers: list, rows: np.ndarray, layer: np.ndarray,
           neuron: np.ndarray, active: bool) -> None:
    """Fix the phase of neuron ``neuron[i]`` of layer ``layer[i]`` in domain ``rows[i]`` (in place):
    lower bound raised to the layer's split point (0 for a ReLU: active) or upper bound lowered to
    it (inactive)."""
    for k in np.unique(layer):
        sel = layer == k
        r, j = rows[sel], neuron[sel]
        point = network.layers[k].split_point
        if active:
            lowers[k][r, j] = np.maximum(lowers[k][r, j], point)
        else:
            uppers[k][r, j] = np.minimum(uppers[k][r, j], point)


class _Domains:
    """Bounding and splitting of domains shared by regions with one input box (arrays with a
    leading domain axis; ``live`` (B, R) says which regions a domain has not ruled out yet)."""

    def __init__(self, network: Network, regions: list, opt_steps: int = OPT_STEPS, candidates: int = 1,
                 tuning: Tuning = DEFAULT_TUNING):
        self.network, self.regions, self.opt_steps, self.candidates = network, regions, opt_steps, candidates
        self.tuning = tuning
        # the optimised bound needs an affine output layer (a ReLU output keeps the plain bound)
        self.optimise = opt_steps > 0 and network.layers[-1].affine
        # every region's rows stacked: rows ``start[r]:start[r + 1]`` belong to region ``r``
        self.a_x = np.concatenate([r.a_x for r in regions])
        self.a_y = np.concatenate([r.a_y for r in regions])
        self.b = np.concatenate([r.b for r in regions])
        self.start = np.cumsum([0] + [r.n_rows for r in regions])
        self.lo, self.hi = regions[0].lower, regions[0].upper
        self.keep = None  # per hidden layer, the neurons not inactive at the root (set by the search)

    def evaluate(self, lowers: list, uppers: list, live: np.ndarray, params: tuple | None = None) -> tuple:
        """Bound the live regions of each domain: returns the regions still live (B, R), each live
        pair's best excess (B, R; the largest row excess, > 0 rules the region out), the corner
        candidates of the live pairs ``(d, r, x)``, each domain's split choice
        ``(layer, neuron, score)`` and, with one region, the optimised bound's final parameters
        per domain (``params`` in, from the parents, is their warm start; None otherwise)."""
        R = len(self.regions)
        B = lowers[0].shape[0]
        lo = np.broadcast_to(self.lo, (B, self.lo.size))
        hi = np.broadcast_to(self.hi, (B, self.hi.size))
        lb, A = batch_linear_bounds(self.network, lowers, uppers, lo, hi, self.a_x, self.a_y,
                                    leave_out_inactive=self.tuning.leave_out_inactive)
        excess = lb - self.b[None, :]
        reg_ex = np.empty((B, R))
        best = np.empty((B, R), dtype=int)  # per region, the row closest to ruling it out
        for r in range(R):
            s, e = self.start[r], self.start[r + 1]
            best[:, r] = s + np.argmax(excess[:, s:e], axis=1)
            reg_ex[:, r] = excess[np.arange(B), best[:, r]]
        live = live & ~(reg_ex > 0)
        d, r = np.nonzero(live)
        row = best[d, r]
        corners = np.where(A[d, row] > 0, lo[d], hi[d])
        out = None
        if self.optimise and d.size:  # optimised slopes and multipliers for that row
            warm = None if params is None else tuple([p[d] for p in group] for group in params)
            lb_o, corners, fit = optimised_bound(self.network.layers, [l[d] for l in lowers],
                                                 [u[d] for u in uppers], lo[d], hi[d], self.a_x[row],
                                                 self.a_y[row], self.opt_steps, keep=self.keep, start=warm)
            if R == 1 and fit is not None and self.tuning.warm_start:
                out = tuple([np.zeros((B, k.size)) for k in self.keep] for _ in range(2))
                for group, new in zip(out, fit):
                    for p, q in zip(group, new):
                        p[d] = q
            reg_ex[d, r] = np.maximum(reg_ex[d, r], lb_o - self.b[row])
            still = ~(reg_ex[d, r] > 0)
            live[d[~still], r[~still]] = False
            d, r, row, corners = d[still], r[still], row[still], corners[still]
        # split for the hardest live region of each domain (its closest row)
        hardest = np.argmin(np.where(live, reg_ex, np.inf), axis=1)
        rows_b = best[np.arange(B), hardest]
        scores = split_scores(self.network, lowers, uppers, self.a_y[rows_b])
        flat = np.concatenate(scores, axis=1)  # (B, hidden neurons)
        offsets = np.cumsum([0] + [s.shape[1] for s in scores])
        if self.candidates > 1 and self.optimise:
            pick = self._look_ahead(lowers, uppers, flat, offsets, rows_b, lo, hi)
        else:
            pick = np.argmax(flat, axis=1)
        layer = np.searchsorted(offsets, pick, side="right") - 1
        neuron = pick - offsets[layer]
        return live, reg_ex, (d, r, corners), layer, neuron, flat[np.arange(B), pick], out

    def _look_ahead(self, lowers, uppers, flat, offsets, rows_b, lo, hi) -> np.ndarray:
        """Among each domain's ``candidates`` best-scored neurons, the one whose two halves'
        optimised bounds (``LOOK_AHEAD_STEPS`` steps, without re-bounding) of row ``rows_b``
        come closest to ruling them out ("filtered smart branching", De Palma et al. 2021)."""
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
                _clamp(self.network, lo_c, hi_c, (2 * c + half) * B + np.arange(B), layer[:, c], neuron[:, c],
                       half == 0)
        row = rows_b[rep]
        lb, _, _ = optimised_bound(self.network.layers, lo_c, hi_c, lo[rep], hi[rep], self.a_x[row],
                                   self.a_y[row], LOOK_AHEAD_STEPS, keep=self.keep)
        gap = np.minimum(lb - self.b[row], 0.0).reshape(k, 2, B).sum(axis=1)  # (k, B)
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
        _clamp(self.network, lo_c, hi_c, rows, layer, neuron, True)
        _clamp(self.network, lo_c, hi_c, B + rows, layer, neuron, False)
        lo = np.broadcast_to(self.lo, (2 * B, self.lo.size))
        hi = np.broadcast_to(self.hi, (2 * B, self.hi.size))
        return batch_bounds(self.network, lo, hi, parent=(lo_c, hi_c), start=int(layer.min()) + 1,
                            unstable_only=True, leave_out_inactive=self.tuning.leave_out_inactive)


@limit_blas
def relu_branch_and_bound(network: Network, regions, lowers: list, uppers: list, checker,
                          deadline: Clock, stats: dict, *, batch: int = BRANCH_BATCH,
                          max_domains: int = MAX_DOMAINS, opt_steps: int = OPT_STEPS,
                          candidates: int = BRANCH_CANDIDATES, tuning: Tuning = DEFAULT_TUNING) -> tuple:
    """Decide ``regions`` (one :class:`~reluverify.spec.Region` or a list of regions with the same
    input box) by ReLU splitting from root bounds ``lowers``/``uppers`` (per layer, valid over the
    box). One tree serves all regions: a domain is dropped once every region is ruled out on it
    (the intermediate bounds, most of the work, are shared). ``checker(x, region)`` returns a
    checked counterexample or None.

    Returns ``(status, check, undecided)``: ``"unsat"`` (every region ruled out on every leaf: a
    proof), ``"sat"`` (with the check), ``"unknown"`` (a leaf with no unstable neuron left, or more
    than ``max_domains`` open domains) or ``"timeout"`` (``deadline`` expired); ``undecided`` lists
    the indices (into ``regions``) of the regions some open domain has not ruled out (empty for
    ``"unsat"``). ``stats["branch_domains"]`` counts the domains bounded. ``tuning``: the speed-ups
    (:class:`~reluverify.engine.options.Tuning`), on by default.
    """
    if isinstance(regions, Region):
        regions = [regions]
    regions = list(regions)
    if not regions:
        raise ValueError("relu_branch_and_bound: no regions")
    if any(r.n_rows == 0 for r in regions):
        raise ValueError("relu_branch_and_bound: a region without rows cannot be ruled out (its whole box "
                         "is unsafe); check it for counterexamples instead")
    box = (regions[0].lower, regions[0].upper)
    if any(not (np.array_equal(r.lower, box[0]) and np.array_equal(r.upper, box[1])) for r in regions):
        raise ValueError("relu_branch_and_bound: the regions must share one input box")
    dom = _Domains(network, regions, opt_steps, candidates, tuning)
    dom.keep = [live_outputs(layer, np.asarray(l), np.asarray(u), tuning.leave_out_inactive)
                for layer, l, u in zip(network.layers[:-1], lowers[:-1], uppers[:-1])]
    R = len(regions)
    n_bounded = 0
    stack = ArrayStack()
    stuck = np.zeros(R, dtype=bool)  # regions left open on a leaf with no unstable neuron
    proved = 0.0
    n_params = 0  # arrays of optimised-bound parameters per stacked domain (warm starts)

    def finish(status, chk=None, live=None):
        stats["branch_domains"] = stats.get("branch_domains", 0) + n_bounded
        # share of the tree (a leaf at depth d counting 2^-d) on which every region was ruled out
        stats.setdefault("branch_proved_fraction", []).append(round(1.0 if status == "unsat" else proved, 6))
        if status == "unsat" and np.any(stuck):
            status = "unknown"
        open_ = stuck.copy()
        if status != "unsat":
            for chunk in stack.chunks:
                open_ |= np.any(chunk[-2], axis=0)
            if live is not None:
                open_ |= np.any(live, axis=0)
        return status, chk, [int(i) for i in np.flatnonzero(open_)]

    def triage(L, U, live, depth, params) -> tuple | None:
        """Drop the domains ruled out, try their corners, push the rest; a status ends the search."""
        nonlocal proved, n_params
        live, reg_ex, (d, r, x), layer, neuron, score, params = dom.evaluate(L, U, live, params)
        open_ = np.any(live, axis=1)
        proved += float(np.sum(0.5 ** depth[~open_]))
        if not np.any(open_):
            return None
        v = np.empty(d.size)
        y = network.forward(x)
        for k in np.unique(r):
            sel = r == k
            v[sel] = np.max(regions[k].row_excess(x[sel], y[sel]), axis=1)
        for i in np.argsort(v)[:4]:
            if v[i] <= 0:
                chk = checker(x[i], regions[r[i]])
                if chk is not None:
                    return ("sat", chk, live)
                if getattr(checker, "near_miss", None) is not None:
                    return ("unknown", None, live)  # no proof is possible: a point meets the rows, by too little
        flat = open_ & (score <= 0)  # all stable, still open: the relaxation cannot decide there
        if np.any(flat):
            stuck[:] |= np.any(live[flat], axis=0)
            open_ &= ~flat
        flat_params = [] if params is None else [p[open_] for group in params for p in group]
        n_params = len(flat_params)
        stack.push(*[l[open_] for l in L], *[u[open_] for u in U], *flat_params, layer[open_], neuron[open_],
                   live[open_], depth[open_])
        return None

    L = [np.asarray(l, dtype=np.float64)[None, :] for l in lowers]
    U = [np.asarray(u, dtype=np.float64)[None, :] for u in uppers]
    n_bounded += 1
    end = triage(L, U, np.ones((1, R), dtype=bool), np.zeros(1), None)
    if end is not None:
        return finish(*end)
    n = len(L)
    while stack.size:
        if deadline.expired():
            return finish("timeout")
        if stack.size > max_domains:
            return finish("unknown")
        parts = stack.pop(batch)
        L, U = list(parts[:n]), list(parts[n:2 * n])
        flat_params = [np.concatenate([p, p]) for p in parts[2 * n:2 * n + n_params]]
        layer, neuron, live, depth = parts[2 * n + n_params:]
        params = None
        if flat_params:  # children start from their parent's slopes and multipliers
            h = len(flat_params) // 2
            params = (flat_params[:h], flat_params[h:])
        L, U = dom.children(L, U, layer, neuron)
        n_bounded += len(L[0])
        end = triage(L, U, np.concatenate([live, live]), np.concatenate([depth, depth]) + 1, params)
        if end is not None:
            return finish(*end)
    return finish("unsat")
