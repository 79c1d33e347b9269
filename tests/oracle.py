"""A brute-force oracle for tiny ReLU networks, written independently of reluverify's MILP.

Every activation pattern of the ReLUs (one sign per ReLU neuron, "active" meaning pre-activation
``>= 0``, "inactive" meaning ``<= 0``) fixes the network to an affine map on a closed polyhedron of
inputs, and these polyhedra cover the input box. So a question of the form "optimise a linear
function of the input (or of the outputs) subject to linear conditions on the outputs" is answered
exactly by one linear program per pattern, and the best of them is the exact answer.

Patterns are enumerated as a tree, one ReLU at a time (layer by layer): a child adds the sign
condition of one neuron, which is affine in ``x`` once the signs of all earlier layers are fixed.
A child whose polyhedron is empty (LP infeasible) is dropped with its whole subtree. Two shortcuts
keep this cheap and stay exact:

* a neuron whose pre-activation has one sign on the whole input box (plain interval arithmetic
  of the affine map over the box) gets only that child;
* the parent's LP point satisfies one of the two sign conditions, so that child is known to be
  feasible, with the parent's LP value, without solving.

For minimal-distortion questions the tree is searched best-first, a node's LP value (the smallest
distance inside its polyhedron, goal ignored) being a lower bound for its whole subtree: nodes
whose bound is not below the best goal value found so far are dropped (branch and bound).

Only the weights and ``Network.forward`` of reluverify are used (the latter to re-check answers;
every answer's point is re-evaluated and must reproduce the LP value). LPs are solved by
``highspy`` directly (a core dependency of reluverify, no Pyomo in between), one persistent LP per
question with rows added and removed per region, presolve off and feasibility tolerances of 1e-10;
``BACKEND = "scipy"`` switches to ``scipy.optimize.linprog(method="highs")`` (about ten times
slower here, used as a cross-check when SciPy is installed).
"""

from __future__ import annotations

import heapq
import itertools
import math
from dataclasses import dataclass

import numpy as np

LP_TOL = 1e-10

# --------------------------------------------------------------------------- LP back ends
class _HighsBackend:
    """One persistent HiGHS LP: fixed columns and base rows; per solve, extra rows are added,
    solved and deleted again (about ten times faster than building a new LP each time)."""

    def __init__(self, bounds, base_A, base_b):
        import highspy

        self.hs = highspy
        h = self.h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        h.setOptionValue("presolve", "off")  # tiny LPs; keeps the infeasible status unambiguous
        h.setOptionValue("primal_feasibility_tolerance", LP_TOL)
        h.setOptionValue("dual_feasibility_tolerance", LP_TOL)
        inf = highspy.kHighsInf
        self.nv = len(bounds)
        h.addVars(self.nv, np.array([-inf if lo is None else lo for lo, _ in bounds], dtype=np.float64),
                  np.array([inf if hi is None else hi for _, hi in bounds], dtype=np.float64))
        self.idx = np.arange(self.nv, dtype=np.int32)
        self._add(base_A, base_b)
        self.base_rows = h.getNumRow()

    def _add(self, A, b):
        if len(b) == 0:
            return
        A = np.asarray(A, dtype=np.float64).reshape(len(b), self.nv)
        starts, index, value = [], [], []
        for row in A:
            starts.append(len(index))
            nz = np.flatnonzero(row)
            index.extend(nz.tolist())
            value.extend(row[nz].tolist())
        self.h.addRows(len(b), np.full(len(b), -self.hs.kHighsInf), np.asarray(b, dtype=np.float64), len(index),
                       np.array(starts, dtype=np.int32), np.array(index, dtype=np.int32),
                       np.array(value, dtype=np.float64))

    def solve(self, cost, A, b):
        h = self.h
        h.changeColsCost(self.nv, self.idx, np.asarray(cost, dtype=np.float64))
        self._add(A, b)
        try:
            h.run()
            status = h.getModelStatus()
            if status == self.hs.HighsModelStatus.kOptimal:
                return float(h.getInfo().objective_function_value), np.array(h.getSolution().col_value, dtype=np.float64)
            if status == self.hs.HighsModelStatus.kInfeasible:
                return None
            raise RuntimeError(f"oracle LP failed: {status}")
        finally:
            extra = h.getNumRow() - self.base_rows
            if extra:
                h.deleteRows(extra, np.arange(self.base_rows, h.getNumRow(), dtype=np.int32))


class _ScipyBackend:
    """The same LPs through ``scipy.optimize.linprog(method="highs")`` (a cross-check)."""

    def __init__(self, bounds, base_A, base_b):
        from scipy.optimize import linprog

        self.linprog, self.bounds, self.base_A, self.base_b = linprog, bounds, base_A, base_b

    def solve(self, cost, A, b):
        A = np.vstack([np.asarray(A, dtype=np.float64).reshape(len(b), len(cost)), self.base_A])
        b = np.concatenate([b, self.base_b])
        res = self.linprog(cost, A_ub=A if len(b) else None, b_ub=b if len(b) else None, bounds=self.bounds,
                           method="highs",
                           options={"primal_feasibility_tolerance": LP_TOL, "dual_feasibility_tolerance": LP_TOL})
        if res.status == 0:
            return float(res.fun), np.asarray(res.x, dtype=np.float64)
        if res.status == 2:
            return None
        raise RuntimeError(f"oracle LP failed: status {res.status}: {res.message}")


#: which LP back end the oracle uses: "highs" (highspy, a core dependency of reluverify) or "scipy"
BACKEND = "highs"


# --------------------------------------------------------------------------- the LP over one region
class _Space:
    """Variables ``[x (n), aux]`` for a distance measure around ``x0`` (or none), inside the box."""

    def __init__(self, lo, hi, x0=None, norm=None, budget=None, backend=None):
        self.lo = np.asarray(lo, dtype=np.float64)
        self.hi = np.asarray(hi, dtype=np.float64)
        self.n = self.lo.size
        self.norm = norm
        n = self.n
        rows, rhs = [], []
        if norm == "l1":  # t_i >= |x_i - x0_i|, distance = sum t
            self.n_aux = n
            eye = np.eye(n)
            rows += [np.hstack([eye, -eye]), np.hstack([-eye, -eye])]
            rhs += [x0, -x0]
            self.dist = np.concatenate([np.zeros(n), np.ones(n)])
        elif norm == "linf":  # s >= |x_i - x0_i|, distance = s
            self.n_aux = 1
            eye = np.eye(n)
            col = -np.ones((n, 1))
            rows += [np.hstack([eye, col]), np.hstack([-eye, col])]
            rhs += [x0, -x0]
            self.dist = np.concatenate([np.zeros(n), np.ones(1)])
        elif norm is None:
            self.n_aux = 0
            self.dist = None
        else:
            raise ValueError(f"oracle: unsupported norm {norm!r}")
        if budget is not None:
            if self.dist is None:
                raise ValueError("a budget needs a norm")
            rows.append(self.dist[None, :])
            rhs.append(np.array([float(budget)]))
        self.base_A = np.vstack(rows) if rows else np.zeros((0, n + self.n_aux))
        self.base_b = np.concatenate(rhs) if rhs else np.zeros(0)
        self.bounds = [(float(a), float(b)) for a, b in zip(self.lo, self.hi)] + [(0.0, None)] * self.n_aux
        kind = backend or BACKEND
        self.backend = (_HighsBackend if kind == "highs" else _ScipyBackend)(self.bounds, self.base_A, self.base_b)

    def solve(self, A_x, b, cost_x=None, minimize_distance=False):
        """LP over the region ``A_x x <= b``; objective ``cost_x @ x`` (minimised), the distance, or 0."""
        A = np.hstack([A_x, np.zeros((A_x.shape[0], self.n_aux))])
        if minimize_distance:
            cost = self.dist
        elif cost_x is not None:
            cost = np.concatenate([cost_x, np.zeros(self.n_aux)])
        else:
            cost = np.zeros(self.n + self.n_aux)
        out = self.backend.solve(cost, A, np.asarray(b, dtype=np.float64))
        if out is None:
            return None
        value, v = out
        return value, np.clip(v[: self.n], self.lo, self.hi)


# --------------------------------------------------------------------------- pattern tree
@dataclass
class _Node:
    k: int  # layer being split
    i: int  # next neuron of that layer to split
    A: np.ndarray  # h_{k-1} = A @ x + a (affine map of the previous layer's output)
    a: np.ndarray
    Z: np.ndarray  # pre-activation of layer k: Z @ x + z
    z: np.ndarray
    signs: np.ndarray  # signs fixed so far in layer k (1 active, 0 inactive)
    rows: np.ndarray  # region: rows @ x <= rhs
    rhs: np.ndarray
    point: np.ndarray  # a point of the region (the node's LP solution)


def layer_matrix(layer) -> np.ndarray:
    """The dense matrix of a layer: ``weight`` of a dense one; for a 2-D convolution (``kernel``
    (C_out, C_in, kh, kw), ``input_shape`` (C_in, H, W), ``stride``, zero ``pads`` (top, left,
    bottom, right), channels-first row-major order) written here entry by entry from the
    definition of a convolution, without reluverify's convolution code."""
    if hasattr(layer, "weight"):
        return np.asarray(layer.weight)
    K = np.asarray(layer.kernel)
    co, ci, kh, kw = K.shape
    c, h, w = layer.input_shape
    sh, sw = layer.stride
    pt, pl, pb, pr = layer.pads
    ho, wo = (h + pt + pb - kh) // sh + 1, (w + pl + pr - kw) // sw + 1
    M = np.zeros((co * ho * wo, c * h * w))
    for o, y, x, ch, i, j in itertools.product(range(co), range(ho), range(wo), range(ci), range(kh), range(kw)):
        yy, xx = y * sh + i - pt, x * sw + j - pl
        if 0 <= yy < h and 0 <= xx < w:
            M[(o * ho + y) * wo + x, (ch * h + yy) * w + xx] += K[o, ch, i, j]
    return M


def max_windows(layer) -> list:
    """The windows of a 2-D max pooling (``kernel`` (kh, kw), ``input_shape`` (C, H, W), ``stride``,
    ``pads`` (top, left, bottom, right) ignored by the maximum), written here from the definition:
    per output entry (channels-first row-major), the flat input indices its window reads."""
    kh, kw = layer.kernel
    c, h, w = layer.input_shape
    sh, sw = layer.stride
    pt, pl, pb, pr = layer.pads
    ho, wo = (h + pt + pb - kh) // sh + 1, (w + pl + pr - kw) // sw + 1
    out = []
    for o, y, x in itertools.product(range(c), range(ho), range(wo)):
        cells = [(o * h + yy) * w + xx for yy in range(y * sh - pt, y * sh - pt + kh)
                 for xx in range(x * sw - pl, x * sw - pl + kw) if 0 <= yy < h and 0 <= xx < w]
        out.append(np.array(cells, dtype=np.int64))
    return out


def layer_spec(layer) -> tuple:
    """``(kind, matrix or windows, bias)``: ``"relu"``/``"linear"`` affine layers, or ``"max"``
    (a max pooling: ``h_w = max`` of the entries its window reads)."""
    if getattr(layer, "kind", "") == "maxpool2d":
        return "max", max_windows(layer), None
    return ("relu" if layer.activation == "relu" else "linear"), layer_matrix(layer), np.asarray(layer.bias)


class PatternSearch:
    """Enumerate the activation regions of ``network`` inside the box ``[lo, hi]``: one sign per
    ReLU, and for a max pooling one winning entry per window (an entry ``c`` wins where
    ``z_c >= z_j`` for the window's other entries ``j``)."""

    def __init__(self, network, space: _Space):
        self.layers = [layer_spec(L) for L in network.layers]
        self.space = space
        self.n_lp = 0
        self.n_leaves = 0

    def _lp(self, rows, rhs, minimize_distance):
        self.n_lp += 1
        return self.space.solve(rows, rhs, minimize_distance=minimize_distance)

    def _range(self, w, c):
        """Interval of ``w @ x + c`` over the box."""
        lo, hi = self.space.lo, self.space.hi
        mid, rad = 0.5 * (lo + hi), 0.5 * (hi - lo)
        centre = float(w @ mid + c)
        spread = float(np.abs(w) @ rad)
        return centre - spread, centre + spread

    def _start(self, minimize_distance):
        n = self.space.n
        first = self._lp(np.zeros((0, n)), np.zeros(0), minimize_distance)
        if first is None:
            return None
        Z, z = self._pre(0, np.eye(n), np.zeros(n))
        node = _Node(0, 0, np.eye(n), np.zeros(n), Z, z, np.zeros(0), np.zeros((0, n)), np.zeros(0), first[1])
        return first[0], self._advance(node)

    def _pre(self, k, H, h):
        """Pre-activation of layer ``k`` as ``(Z, z)`` from its input ``H x + h`` (a max pooling's
        pre-activation is its input itself; its windows index it)."""
        kind, W, b = self.layers[k]
        if kind == "max":
            return H, h
        return W @ H, W @ h + b

    def _advance(self, node: _Node) -> _Node:
        """Move past finished or non-ReLU layers; returns the node (possibly a leaf)."""
        while True:
            kind, W, b = self.layers[node.k]
            if kind == "max":
                if node.i < len(W):
                    return node
                chosen = node.signs.astype(np.int64)  # the winning input of each window
                H, h = node.Z[chosen], node.z[chosen]
            else:
                if kind == "relu" and node.i < W.shape[0]:
                    return node
                signs = node.signs if kind == "relu" else np.ones(W.shape[0])
                H, h = signs[:, None] * node.Z, signs * node.z
            if node.k + 1 == len(self.layers):
                node.A, node.a, node.k = H, h, len(self.layers)  # leaf: outputs = A x + a
                return node
            Z, z = self._pre(node.k + 1, H, h)
            node = _Node(node.k + 1, 0, H, h, Z, z, np.zeros(0), node.rows, node.rhs, node.point)

    def is_leaf(self, node):
        return node.k == len(self.layers)

    def _max_children(self, node: _Node, value: float, minimize_distance: bool):
        """Children of ``node`` at a max-pooling window: one per entry that can win it (entries whose
        interval upper bound is below another entry's interval lower bound never win)."""
        cells = self.layers[node.k][1][node.i]
        ranges = [self._range(node.Z[j], float(node.z[j])) for j in cells]
        best_low = max(lo for lo, _ in ranges)
        options = [j for j, (lo, hi) in zip(cells, ranges) if hi >= best_low]
        at_point = node.Z[cells] @ node.point + node.z[cells]
        out = []
        for j in options:
            others = [o for o in cells if o != j]
            if len(options) == 1:
                rows, rhss = node.rows, node.rhs
            else:  # z_o - z_j <= 0 for the window's other entries
                rows = np.vstack([node.rows, node.Z[others] - node.Z[j]])
                rhss = np.append(node.rhs, node.z[j] - node.z[others])
            if len(options) == 1 or at_point[cells.tolist().index(j)] >= at_point.max():
                val, pt = value, node.point
            else:
                sol = self._lp(rows, rhss, minimize_distance)
                if sol is None:
                    continue
                val, pt = sol
            child = _Node(node.k, node.i + 1, node.A, node.a, node.Z, node.z, np.append(node.signs, j), rows, rhss, pt)
            out.append((val, self._advance(child)))
        return out

    def children(self, node: _Node, value: float, minimize_distance: bool):
        """``[(value, child)]`` of the feasible children of ``node`` (split on its next neuron)."""
        if self.layers[node.k][0] == "max":
            return self._max_children(node, value, minimize_distance)
        w, c = node.Z[node.i], float(node.z[node.i])
        lo, hi = self._range(w, c)
        options = [s for s in (1, 0) if not (s == 1 and hi < 0) and not (s == 0 and lo > 0)]
        out = []
        at_point = float(w @ node.point + c)
        for s in options:
            row = -w if s == 1 else w  # active: w x + c >= 0 ; inactive: w x + c <= 0
            rhs = c if s == 1 else -c
            rows = node.rows if len(options) == 1 else np.vstack([node.rows, row[None, :]])
            rhss = node.rhs if len(options) == 1 else np.append(node.rhs, rhs)
            if len(options) == 1 or (s == 1 and at_point >= 0) or (s == 0 and at_point <= 0):
                val, pt = value, node.point  # the parent's LP point lies in this child
            else:
                sol = self._lp(rows, rhss, minimize_distance)
                if sol is None:
                    continue
                val, pt = sol
            child = _Node(node.k, node.i + 1, node.A, node.a, node.Z, node.z, np.append(node.signs, s), rows, rhss, pt)
            out.append((val, self._advance(child)))
        return out

    def search(self, leaf_fn, *, minimize_distance=False, first_only=False):
        """Minimise ``leaf_fn(rows, rhs, A, a) -> (value, x) | None`` over every region.

        With ``minimize_distance`` a node's LP distance bounds its subtree from below and the search
        is best-first with pruning; else every feasible region is visited.
        """
        start = self._start(minimize_distance)
        best_val, best_x = math.inf, None
        if start is None:
            return best_val, best_x
        tie = itertools.count()
        heap = [(start[0] if minimize_distance else 0.0, -next(tie), start[1])]
        while heap:
            bound, _, node = heapq.heappop(heap)
            if minimize_distance and bound >= best_val:
                break  # best-first: nothing left can beat the incumbent
            if self.is_leaf(node):
                self.n_leaves += 1
                res = leaf_fn(node.rows, node.rhs, node.A, node.a)
                if res is not None and res[0] < best_val:
                    best_val, best_x = res
                    if first_only:
                        break
                continue
            for val, child in self.children(node, bound, minimize_distance):
                if minimize_distance and val >= best_val:
                    continue
                heapq.heappush(heap, (val if minimize_distance else 0.0, -next(tie), child))
        return best_val, best_x


# --------------------------------------------------------------------------- goals
def _goal_rows(O, o, c, target, n_out, margin):
    """Rows ``G x <= g`` meaning: some class ``j != c`` (one row set per ``j``), or ``target``,
    beats the others by ``margin``. Returns a list of alternatives (each a ``(G, g)``)."""
    if target is None:
        alts = []
        for j in range(n_out):
            if j != c:  # out_j - out_c >= margin  <=>  -(O_j - O_c) x <= (o_j - o_c) - margin
                alts.append((-(O[j] - O[c])[None, :], np.array([o[j] - o[c] - margin])))
        return alts
    G = np.array([-(O[target] - O[k]) for k in range(n_out) if k != target])
    g = np.array([o[target] - o[k] - margin for k in range(n_out) if k != target])
    return [(G, g)]


def _box(n, lo, hi):
    lo = np.zeros(n) if lo is None else np.broadcast_to(np.asarray(lo, dtype=np.float64), (n,)).copy()
    hi = np.ones(n) if hi is None else np.broadcast_to(np.asarray(hi, dtype=np.float64), (n,)).copy()
    return lo, hi


def linf_ball(x0, eps, lo=0.0, hi=1.0):
    """``(lower, upper)`` of the L-inf ball of radius ``eps`` around ``x0`` inside ``[lo, hi]``."""
    x0 = np.asarray(x0, dtype=np.float64)
    return np.maximum(x0 - eps, lo), np.minimum(x0 + eps, hi)


def _gap(logits, c, target):
    logits = np.asarray(logits, dtype=np.float64)
    if target is None:
        return float(np.max(np.delete(logits, c)) - logits[c])
    return float(logits[target] - np.max(np.delete(logits, target)))


def _dist(x, x0, norm):
    d = np.asarray(x, dtype=np.float64) - np.asarray(x0, dtype=np.float64)
    return {"l1": float(np.sum(np.abs(d))), "linf": float(np.max(np.abs(d))), "l0": int(np.count_nonzero(d))}[norm]


@dataclass
class OracleAnswer:
    value: float  # +inf (minimisation) or -inf (maximisation) when nothing is feasible
    x: np.ndarray | None
    n_lp: int = 0
    n_regions: int = 0

    @property
    def feasible(self) -> bool:
        return self.x is not None


# --------------------------------------------------------------------------- public questions
def min_distortion(network, x0, c, norm, *, target=None, lo=None, hi=None, margin=0.0, first_only=False):
    """Exact ``min ||x - x0||_norm`` (``norm`` "l1" or "linf") over ``x`` in ``[lo, hi]``
    (default ``[0, 1]^n``) with ``out_j - out_c >= margin`` for some ``j != c`` (untargeted) or
    ``out_target - out_k >= margin`` for every ``k != target`` (targeted)."""
    x0 = np.asarray(x0, dtype=np.float64)
    lo, hi = _box(x0.size, lo, hi)
    space = _Space(lo, hi, x0, norm)
    search = PatternSearch(network, space)
    n_out = network.n_outputs

    def leaf(rows, rhs, O, o):
        best = None
        for G, g in _goal_rows(O, o, c, target, n_out, margin):
            sol = space.solve(np.vstack([rows, G]), np.concatenate([rhs, g]), minimize_distance=True)
            search.n_lp += 1
            if sol is not None and (best is None or sol[0] < best[0]):
                best = sol
        return best

    val, x = search.search(leaf, minimize_distance=True, first_only=first_only)
    if x is not None:  # self-check against the plain forward pass
        gap = _gap(network.forward(x), c, target)
        assert gap >= margin - 1e-7, f"oracle point does not reach the goal (gap {gap})"
        assert abs(_dist(x, x0, norm) - val) <= 1e-7 * max(1.0, val), "oracle distance mismatch"
        val = _dist(x, x0, norm)
    return OracleAnswer(val, x, search.n_lp, search.n_leaves)


def min_l0(network, x0, c, *, target=None, lo=None, hi=None, margin=0.0):
    """Exact smallest number of changed inputs (each within ``[lo, hi]``) that reaches the goal of
    :func:`min_distortion`; brute force over subsets of inputs by increasing size."""
    x0 = np.asarray(x0, dtype=np.float64)
    lo, hi = _box(x0.size, lo, hi)
    free = [i for i in range(x0.size) if hi[i] > lo[i]]
    n_lp = 0
    if _gap(network.forward(x0), c, target) >= margin:
        return OracleAnswer(0, x0.copy())
    for k in range(1, len(free) + 1):
        for subset in itertools.combinations(free, k):
            slo, shi = x0.copy(), x0.copy()
            idx = list(subset)
            slo[idx], shi[idx] = lo[idx], hi[idx]
            ans = min_distortion(network, x0, c, "l1", target=target, lo=slo, hi=shi, margin=margin, first_only=True)
            n_lp += ans.n_lp
            if ans.feasible:
                return OracleAnswer(k, ans.x, n_lp)
    return OracleAnswer(math.inf, None, n_lp)


def max_gap(network, c, lo, hi, *, x0=None, norm=None, budget=None):
    """Exact ``max_{x in [lo, hi]} max_{j != c} (out_j - out_c)`` (optionally with
    ``||x - x0||_norm <= budget``): positive iff some allowed input is classified otherwise."""
    lo = np.asarray(lo, dtype=np.float64)
    hi = np.asarray(hi, dtype=np.float64)
    space = _Space(lo, hi, None if norm is None else np.asarray(x0, dtype=np.float64), norm, budget)
    search = PatternSearch(network, space)

    def leaf(rows, rhs, O, o):
        best = None
        for j in range(network.n_outputs):
            if j == c:
                continue
            sol = space.solve(rows, rhs, cost_x=-(O[j] - O[c]))
            search.n_lp += 1
            if sol is None:
                continue
            val = sol[0] - (o[j] - o[c])  # -(gap): min of -(O_j - O_c) x, less the constant
            if best is None or val < best[0]:
                best = (val, sol[1])
        return best

    val, x = search.search(leaf)
    if x is None:
        return OracleAnswer(-math.inf, None, search.n_lp, search.n_leaves)
    gap = _gap(network.forward(x), c, None)
    assert abs(gap - (-val)) <= 1e-6 * max(1.0, abs(gap)), f"oracle gap mismatch {gap} vs {-val}"
    return OracleAnswer(gap, x, search.n_lp, search.n_leaves)


def max_logit(network, x0, target, *, budget, budget_norm="l1", lo=None, hi=None, margin=0.0):
    """Exact ``max out_target`` over ``x`` in ``[lo, hi]`` with ``||x - x0||_budget_norm <= budget``
    and ``out_target - out_k >= margin`` for every ``k != target``; ``-inf`` if infeasible."""
    x0 = np.asarray(x0, dtype=np.float64)
    lo, hi = _box(x0.size, lo, hi)
    space = _Space(lo, hi, x0, budget_norm, budget)
    search = PatternSearch(network, space)
    n_out = network.n_outputs

    def leaf(rows, rhs, O, o):
        (G, g), = _goal_rows(O, o, None, target, n_out, margin)
        sol = space.solve(np.vstack([rows, G]), np.concatenate([rhs, g]), cost_x=-O[target])
        search.n_lp += 1
        if sol is None:
            return None
        return sol[0] - o[target], sol[1]  # -(logit)

    val, x = search.search(leaf)
    if x is None:
        return OracleAnswer(-math.inf, None, search.n_lp, search.n_leaves)
    logits = network.forward(x)
    assert abs(logits[target] - (-val)) <= 1e-6 * max(1.0, abs(val)), "oracle logit mismatch"
    assert _gap(logits, None, target) >= margin - 1e-7, "oracle point does not make the target win"
    assert _dist(x, x0, budget_norm) <= budget * (1 + 1e-7) + 1e-9, "oracle point exceeds the budget"
    return OracleAnswer(float(logits[target]), x, search.n_lp, search.n_leaves)


def region_reachable(network, lo, hi, a_x, a_y, b, shift=0.0):
    """Exactly: is there ``x`` in ``[lo, hi]`` with ``a_x x + a_y f(x) <= b + shift`` (all rows)?

    One LP per activation region (the region's affine map ``f(x) = O x + o`` makes the rows linear
    in ``x``). Returns such a point, or None when no region has one.
    """
    lo = np.asarray(lo, dtype=np.float64)
    hi = np.asarray(hi, dtype=np.float64)
    a_x, a_y, b = np.atleast_2d(a_x), np.atleast_2d(a_y), np.asarray(b, dtype=np.float64)
    space = _Space(lo, hi)
    search = PatternSearch(network, space)

    def leaf(rows, rhs, O, o):
        G = a_x + a_y @ O
        g = b + shift - a_y @ o
        sol = space.solve(np.vstack([rows, G]), np.concatenate([rhs, g]))
        return None if sol is None else (0.0, sol[1])

    _, x = search.search(leaf, first_only=True)
    return x
