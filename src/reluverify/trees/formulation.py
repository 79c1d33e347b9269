"""Tree ensemble -> MILP (Kantchelian et al., ICML 2016), as arrays or as a Pyomo block.

Columns, over an input box ``[lo, hi]`` (the input set's hull):

* ``x_f`` for every input, bounded by the box;
* one **predicate** binary ``p_{f,k}`` per distinct left limit ``L_k`` of feature ``f`` that the box
  does not decide (``lo_f <= L_k < hi_f``; :func:`reluverify.model.trees.left_limit`): ``p = 1``
  means ``x_f <= L_k``. Predicates of one feature are ordered, ``p_{f,k} <= p_{f,k+1}``, and linked
  to ``x_f`` by ``x_f <= L_k + (hi_f - L_k)(1 - p)`` and ``x_f >= L_k - (L_k - lo_f) p``;
* one continuous **leaf** column ``l in [0, 1]`` per leaf reachable inside the box, per tree with more
  than one such leaf: ``sum l = 1``, and at each undecided node the leaves of the left subtree sum to
  at most ``p``, those of the right subtree to at most ``1 - p`` (integral ``p`` select one leaf);
* one **score** column per requested output: ``score_k = base_k + sum_t w v_{t,leaf,k} l``.

**Pruning by the box**: a test the box decides (``hi_f <= L``: always left; ``lo_f > L``: always
right) gets no predicate and the other subtree is dropped; a tree with one reachable leaf is a
constant. **Closed cells**: ``p = 0`` allows ``x_f = L_k`` although the framework sends ``L_k`` left;
the MILP is a relaxation of the exact cells by one float64 step per predicate, so its infeasibility
and its bounds are proofs, and its points are snapped into the exact cell of their predicates
(:meth:`TreeArrays.snap`) before they are checked.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..formulation import MilpArrays
from ..model.trees import TreeEnsemble


@dataclass
class TreeArrays:
    """The MILP as :class:`~reluverify.formulation.MilpArrays` (``arrays``) plus where things are:
    ``pred_feature``/``pred_limit``/``pred_cols`` (one entry per predicate), ``leaf_cols`` (per tree
    kept, ``{leaf node: column}``), ``trees`` (the tree indices encoded), ``outputs`` (the score
    columns' outputs), ``constant`` (per output, the sum of the constant trees' values),
    ``box`` ``(lo, hi)``."""

    arrays: MilpArrays
    pred_feature: np.ndarray
    pred_limit: np.ndarray
    pred_cols: np.ndarray
    leaf_cols: dict
    trees: list
    outputs: list
    box: tuple

    @property
    def input_cols(self):
        return self.arrays.input_cols

    def score_col(self, k: int) -> int:
        return int(self.arrays.output_cols[self.outputs.index(k)])

    @property
    def big_m(self) -> float:
        lo, hi = self.box
        return float(np.max(hi - lo)) if lo.size else 0.0

    def snap(self, values) -> np.ndarray:
        """The input part of a MILP point moved into the exact cell its predicates choose (``p``
        rounded): ``x_f <= L`` where ``p = 1``, ``x_f >= nextafter(L)`` where ``p = 0``, and
        inside the box. Where that cell is empty (the box ends on a limit) the point stays clipped to
        the box: the check that follows rejects it if it is not a witness."""
        values = np.asarray(values, dtype=np.float64)
        lo, hi = self.box
        x = np.clip(values[self.arrays.input_cols], lo, hi)
        lower, upper = self.cell(values)
        ok = lower <= upper
        return np.where(ok, np.clip(x, lower, upper), x)

    def closest(self, values, center) -> np.ndarray:
        """The point of the cell the predicates of a MILP point choose (:meth:`cell`) nearest to
        ``center`` in every norm (``center`` clipped into it); where the cell is empty (the box ends
        on a limit), ``center`` clipped to the box: the check that follows rejects it if it is not
        a witness."""
        lo, hi = self.box
        c = np.clip(np.asarray(center, dtype=np.float64), lo, hi)
        lower, upper = self.cell(values)
        return np.where(lower <= upper, np.clip(c, lower, upper), c)

    def cell(self, values) -> tuple:
        """``(lower, upper)``: the exact cell (within the box) that the predicates of a MILP point
        choose; empty where ``lower > upper``."""
        values = np.asarray(values, dtype=np.float64)
        lower, upper = self.box[0].copy(), self.box[1].copy()
        if self.pred_cols.size:
            p = values[self.pred_cols] > 0.5
            np.minimum.at(upper, self.pred_feature[p], self.pred_limit[p])
            np.maximum.at(lower, self.pred_feature[~p], np.nextafter(self.pred_limit[~p], np.inf))
        return lower, upper


def tree_arrays(ens: TreeEnsemble, lower, upper, *, trees=None, outputs=None, link_inputs: bool = True) -> TreeArrays:
    """The MILP of ``ens`` over the box ``[lower, upper]`` (module docstring) as :class:`TreeArrays`;
    ``trees``: the tree indices to encode (default all), ``outputs``: the outputs that get a score
    column (default all). ``link_inputs=False``: the input columns stay (bounded by the box) but
    get no rows: for questions stated on the predicates alone (:func:`add_cell_distance`), whose
    points are the cells' points (:meth:`TreeArrays.closest`)."""
    lo = np.asarray(lower, dtype=np.float64).copy()
    hi = np.asarray(upper, dtype=np.float64).copy()
    n = ens.n_features
    trees = list(range(ens.n_trees)) if trees is None else list(trees)
    outputs = list(range(ens.n_outputs)) if outputs is None else list(outputs)
    w = ens.weight
    # ---- reachable structure and predicates
    reach = []
    preds: dict = {}  # (feature, limit) -> index
    const = ens.base_score[outputs].astype(np.float64).copy()
    for i in trees:
        leaves, split = ens.reachable(i, lo, hi)
        t = ens.trees[i]
        if leaves.size == 1:
            const += w * t.value[leaves[0], outputs]
            continue
        reach.append((i, leaves, split))
        for node in split.tolist():
            preds.setdefault((int(t.feature[node]), float(t.limit[node])), None)
    keys = sorted(preds)
    pred_feature = np.array([k[0] for k in keys], dtype=np.int64)
    pred_limit = np.array([k[1] for k in keys], dtype=np.float64)
    n_pred = len(keys)
    pred_cols = n + np.arange(n_pred, dtype=np.int64)
    index = {k: n + j for j, k in enumerate(keys)}
    col_lo = [lo, np.zeros(n_pred)]
    col_hi = [hi, np.ones(n_pred)]
    integ = [np.zeros(n, bool), np.ones(n_pred, bool)]
    n_col = n + n_pred
    leaf_cols = {}
    for i, leaves, _ in reach:
        leaf_cols[i] = {int(l): n_col + j for j, l in enumerate(leaves.tolist())}
        n_col += leaves.size
        col_lo.append(np.zeros(leaves.size))
        col_hi.append(np.ones(leaves.size))
        integ.append(np.zeros(leaves.size, bool))
    # score columns: bounded by the extreme reachable leaves (sound, they only help the LP)
    s_lo, s_hi = const.copy(), const.copy()
    for i, leaves, _ in reach:
        v = w * ens.trees[i].value[leaves][:, outputs]
        s_lo += v.min(axis=0)
        s_hi += v.max(axis=0)
    pad = 1e-6 * np.maximum(1.0, np.abs(s_lo) + np.abs(s_hi))  # not a tolerance: room for the sums' rounding
    score_cols = n_col + np.arange(len(outputs), dtype=np.int64)
    n_col += len(outputs)
    col_lo.append(s_lo - pad)
    col_hi.append(s_hi + pad)
    integ.append(np.zeros(len(outputs), bool))

    rows_i, rows_v, r_lo, r_hi = [], [], [], []

    def row(cols, vals, lower_, upper_):
        rows_i.append(np.asarray(cols, dtype=np.int64))
        rows_v.append(np.asarray(vals, dtype=np.float64))
        r_lo.append(lower_)
        r_hi.append(upper_)

    # ---- predicates: order and link to x
    for j in range(n_pred):
        f, L, c = pred_feature[j], pred_limit[j], pred_cols[j]
        if j + 1 < n_pred and pred_feature[j + 1] == f:
            row([c, pred_cols[j + 1]], [1.0, -1.0], -np.inf, 0.0)  # p_k <= p_k+1
        if link_inputs:
            row([f, c], [1.0, hi[f] - L], -np.inf, hi[f])  # x <= L + (hi - L)(1 - p)
            row([f, c], [1.0, L - lo[f]], L, np.inf)  # x >= L - (L - lo) p
    # ---- leaves
    for i, leaves, split in reach:
        t = ens.trees[i]
        cols = leaf_cols[i]
        row(list(cols.values()), np.ones(len(cols)), 1.0, 1.0)
        under = _leaves_under(t, cols)
        for node in split.tolist():
            p = index[(int(t.feature[node]), float(t.limit[node]))]
            left, right = under.get(int(t.left[node]), []), under.get(int(t.right[node]), [])
            if left:
                row(left + [p], [1.0] * len(left) + [-1.0], -np.inf, 0.0)  # sum(left) - p <= 0
            if right:
                row(right + [p], [1.0] * len(right) + [1.0], -np.inf, 1.0)  # sum(right) + p <= 1
    # ---- scores
    for k, (out, sc) in enumerate(zip(outputs, score_cols)):
        cols, vals = [sc], [1.0]
        for i, leaves, _ in reach:
            v = w * ens.trees[i].value[leaves, out]
            nz = v != 0
            cols.extend(np.asarray(list(leaf_cols[i].values()))[nz].tolist())
            vals.extend((-v[nz]).tolist())
        row(cols, vals, const[k], const[k])  # score - sum(w v l) = constant
    start = np.zeros(len(rows_i) + 1, dtype=np.int64)
    np.cumsum([r.size for r in rows_i], out=start[1:])
    arrays = MilpArrays(
        col_lower=np.concatenate(col_lo), col_upper=np.concatenate(col_hi), integrality=np.concatenate(integ),
        a_start=start.astype(np.int32), a_index=(np.concatenate(rows_i) if rows_i else np.zeros(0, np.int64)).astype(np.int32),
        a_value=np.concatenate(rows_v) if rows_v else np.zeros(0), row_lower=np.array(r_lo, dtype=np.float64),
        row_upper=np.array(r_hi, dtype=np.float64), input_cols=np.arange(n, dtype=np.int64),
        output_cols=score_cols, layer_cols=[], binary_cols=[])
    return TreeArrays(arrays, pred_feature, pred_limit, pred_cols, leaf_cols, trees, outputs, (lo, hi))


def add_cell_distance(model, ta: TreeArrays, center, norm: str) -> tuple:
    """The distance from ``center`` to the cell the predicates choose, in ``norm`` ("linf", "l1",
    "l0"), as ``(columns, coefficients, constant)`` over the predicate columns of ``ta`` (and, for
    L-inf and L0, columns and rows added to ``model``): the formulation of Kantchelian et al. (ICML
    2016), exact at every integral point of a problem that minimises it or bounds it from above.

    Per feature ``f`` with centre ``c``, the limits ``u_1 < u_2 < ...`` at or above ``c`` cost
    ``d_i = nextafter(u_i) - c`` to cross upwards (``p_i = 0``), those below, ``l_1 > l_2 > ...``,
    cost ``e_i = c - l_i`` to reach (``p_i = 1``); the predicates' order makes the crossed ones a
    prefix, so the feature's move is ``sum_i (d_i - d_{i-1})(1 - p_i)`` (up) or ``sum_i (e_i -
    e_{i-1}) p_i`` (down): L1 adds these, L-inf bounds a column ``t`` by each, L0 bounds a column
    ``z_f in [0, 1]`` by ``1 - p_1`` and ``p_1`` of the nearest limits. The cell's point nearest
    to ``center`` (:meth:`TreeArrays.closest`) is at exactly this distance (up to the float64 rounding
    of the differences, far below ``TREE_BOUND_MARGIN``); every point of the cell is at least as far,
    so a bound on this objective is a bound on the distance of every input in the cells."""
    c = np.asarray(center, dtype=np.float64)
    feats, limits, cols = ta.pred_feature, ta.pred_limit, ta.pred_cols
    coef: dict = {}
    const = 0.0
    ups, downs = [], []  # per feature: (cols, increments) up, down
    for f in np.unique(feats).tolist():
        idx = np.flatnonzero(feats == f)  # ascending limits
        L = limits[idx]
        above = idx[L >= c[f]]
        below = idx[L < c[f]][::-1]  # nearest first
        if above.size:
            d = np.nextafter(limits[above], np.inf) - c[f]
            ups.append((f, cols[above], np.diff(np.concatenate([[0.0], d]))))
        if below.size:
            e = c[f] - limits[below]
            downs.append((f, cols[below], np.diff(np.concatenate([[0.0], e]))))
    if norm == "l1":
        for _, pc, inc in ups:  # sum inc (1 - p)
            const += float(np.sum(inc))
            for col, v in zip(pc.tolist(), inc.tolist()):
                coef[col] = coef.get(col, 0.0) - v
        for _, pc, inc in downs:
            for col, v in zip(pc.tolist(), inc.tolist()):
                coef[col] = coef.get(col, 0.0) + v
        return list(coef), list(coef.values()), const
    if norm == "linf":
        lo, hi = ta.box
        t = model.add_column(0.0, max(float(np.max(hi - c, initial=0.0)), float(np.max(c - lo, initial=0.0)), 0.0))
        rows, r_hi = [], []
        for _, pc, inc in ups:  # sum inc (1 - p) - t <= 0
            rows.append((pc.tolist() + [t], (-inc).tolist() + [-1.0]))
            r_hi.append(-float(np.sum(inc)))
        for _, pc, inc in downs:  # sum inc p - t <= 0
            rows.append((pc.tolist() + [t], inc.tolist() + [-1.0]))
            r_hi.append(0.0)
        if rows:
            model.add_rows(-np.inf, np.array(r_hi), rows)
        return [t], [1.0], 0.0
    if norm == "l0":
        z = {}
        rows, r_lo = [], []
        for f, pc, _ in ups:  # z_f + p_1 >= 1
            zf = z.setdefault(f, model.add_column(0.0, 1.0))
            rows.append(([int(pc[0]), zf], [1.0, 1.0]))
            r_lo.append(1.0)
        for f, pc, _ in downs:  # z_f - p_1 >= 0
            zf = z.setdefault(f, model.add_column(0.0, 1.0))
            rows.append(([int(pc[0]), zf], [-1.0, 1.0]))
            r_lo.append(0.0)
        if rows:
            model.add_rows(np.array(r_lo), np.inf, rows)
        return list(z.values()), [1.0] * len(z), 0.0
    raise ValueError(f"cell distances are for 'linf', 'l1' and 'l0', got {norm!r}")


def _leaves_under(tree, cols: dict) -> dict:
    """``{node: [columns of the kept leaves below it]}`` for every node above a kept leaf (each kept
    leaf is added to the list of every ancestor: work in leaves x depth)."""
    parent = np.full(tree.n_nodes, -1, dtype=np.int64)
    inner = np.flatnonzero(tree.left >= 0)
    parent[tree.left[inner]] = inner
    parent[tree.right[inner]] = inner
    under: dict = {}
    for leaf, col in cols.items():
        node = leaf
        while node >= 0:
            under.setdefault(node, []).append(col)
            node = int(parent[node])
    return under


def leaf_bigm_arrays(ens: TreeEnsemble, lower, upper, *, trees=None, outputs=None, gap: float = 0.0) -> TreeArrays:
    """The plain formulation the embedding libraries use, for comparison only: one binary per leaf
    of every tree (no pruning), ``sum = 1``, and per leaf and node on its path a big-M row over the
    whole box: ``x_f <= L + M(1 - z)`` (left) or ``x_f >= L + gap - M(1 - z)`` (right; ``gap=0``: the
    same closed cells as :func:`tree_arrays`). Same columns for inputs and scores."""
    lo = np.asarray(lower, dtype=np.float64)
    hi = np.asarray(upper, dtype=np.float64)
    n = ens.n_features
    trees = list(range(ens.n_trees)) if trees is None else list(trees)
    outputs = list(range(ens.n_outputs)) if outputs is None else list(outputs)
    w = ens.weight
    col_lo, col_hi, integ = [lo], [hi], [np.zeros(n, bool)]
    n_col = n
    leaf_cols = {}
    rows_i, rows_v, r_lo, r_hi = [], [], [], []
    M = float(np.max(hi - lo)) + 1.0 if n else 1.0
    for i in trees:
        t = ens.trees[i]
        leaves = t.leaves
        leaf_cols[i] = {int(l): n_col + j for j, l in enumerate(leaves.tolist())}
        n_col += leaves.size
        col_lo.append(np.zeros(leaves.size))
        col_hi.append(np.ones(leaves.size))
        integ.append(np.ones(leaves.size, bool))
        rows_i.append(np.array(list(leaf_cols[i].values())))
        rows_v.append(np.ones(leaves.size))
        r_lo.append(1.0)
        r_hi.append(1.0)
        parent = {}
        for node in range(t.n_nodes):
            if t.left[node] >= 0:
                parent[int(t.left[node])] = (node, True)
                parent[int(t.right[node])] = (node, False)
        for leaf, z in leaf_cols[i].items():
            node = leaf
            while node in parent:
                up, is_left = parent[node]
                f, L = int(t.feature[up]), float(t.limit[up])
                if is_left:  # x_f + M z <= L + M
                    rows_i.append(np.array([f, z])); rows_v.append(np.array([1.0, M])); r_lo.append(-np.inf); r_hi.append(L + M)
                else:  # x_f - M z >= L + gap - M
                    rows_i.append(np.array([f, z])); rows_v.append(np.array([1.0, -M])); r_lo.append(L + gap - M); r_hi.append(np.inf)
                node = up
    base = ens.base_score[outputs].astype(np.float64)
    score_cols = n_col + np.arange(len(outputs))
    n_col += len(outputs)
    col_lo.append(np.full(len(outputs), -np.inf))
    col_hi.append(np.full(len(outputs), np.inf))
    integ.append(np.zeros(len(outputs), bool))
    for k, (out, sc) in enumerate(zip(outputs, score_cols)):
        cols, vals = [sc], [1.0]
        for i in trees:
            for leaf, z in leaf_cols[i].items():
                v = w * ens.trees[i].value[leaf, out]
                if v != 0:
                    cols.append(z)
                    vals.append(-v)
        rows_i.append(np.array(cols)); rows_v.append(np.array(vals)); r_lo.append(base[k]); r_hi.append(base[k])
    start = np.zeros(len(rows_i) + 1, dtype=np.int64)
    np.cumsum([r.size for r in rows_i], out=start[1:])
    arrays = MilpArrays(
        col_lower=np.concatenate(col_lo), col_upper=np.concatenate(col_hi), integrality=np.concatenate(integ),
        a_start=start.astype(np.int32), a_index=np.concatenate(rows_i).astype(np.int32),
        a_value=np.concatenate(rows_v).astype(np.float64), row_lower=np.array(r_lo), row_upper=np.array(r_hi),
        input_cols=np.arange(n, dtype=np.int64), output_cols=score_cols, layer_cols=[], binary_cols=[])
    return TreeArrays(arrays, np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int64), leaf_cols, trees, outputs,
                      (lo.copy(), hi.copy()))


# ---------------------------------------------------------------------------------------------
# Pyomo


def add_tree_ensemble(block, ens: TreeEnsemble, lower=None, upper=None, *, name: str = "trees"):
    """Embed ``ens`` in a Pyomo model or block (as :func:`reluverify.add_network` embeds a network):
    adds a sub-block ``name`` with ``x[i]`` (inputs, bounded by ``[lower, upper]``, default
    ``[0, 1]``), ``score[k]`` (outputs), ``p[j]`` (predicate binaries), ``leaf[j]`` and the
    constraints ``rows[r]`` of :func:`tree_arrays`. Returns the sub-block; link ``x`` and ``score``
    to your own variables with constraints."""
    import pyomo.environ as pyo

    from ..formulation import linear_expr

    n = ens.n_features
    lower = np.zeros(n) if lower is None else np.broadcast_to(np.asarray(lower, np.float64), (n,))
    upper = np.ones(n) if upper is None else np.broadcast_to(np.asarray(upper, np.float64), (n,))
    ta = tree_arrays(ens, lower, upper)
    a = ta.arrays
    b = pyo.Block()
    block.add_component(name, b)
    b.x = pyo.Var(range(n), bounds=lambda m, i: (float(a.col_lower[i]), float(a.col_upper[i])))
    b.p = pyo.Var(range(ta.pred_cols.size), domain=pyo.Binary)
    leaf = [c for cols in ta.leaf_cols.values() for c in cols.values()]
    b.leaf = pyo.Var(range(len(leaf)), bounds=(0.0, 1.0))
    b.score = pyo.Var(range(len(ta.outputs)),
                      bounds=lambda m, k: (float(a.col_lower[a.output_cols[k]]), float(a.col_upper[a.output_cols[k]])))
    var = {}
    for i in range(n):
        var[i] = b.x[i]
    for j, c in enumerate(ta.pred_cols.tolist()):
        var[c] = b.p[j]
    for j, c in enumerate(leaf):
        var[c] = b.leaf[j]
    for k, c in enumerate(a.output_cols.tolist()):
        var[c] = b.score[k]
    b.rows = pyo.ConstraintList()
    for r in range(a.n_rows):
        s, e = a.a_start[r], a.a_start[r + 1]
        expr = linear_expr(a.a_value[s:e], [var[int(c)] for c in a.a_index[s:e]])
        lo_, hi_ = a.row_lower[r], a.row_upper[r]
        if lo_ == hi_:
            b.rows.add(expr == float(lo_))
        elif np.isinf(lo_):
            b.rows.add(expr <= float(hi_))
        elif np.isinf(hi_):
            b.rows.add(expr >= float(lo_))
        else:
            b.rows.add(pyo.inequality(float(lo_), expr, float(hi_)))
    b.tree_arrays = ta
    return b
