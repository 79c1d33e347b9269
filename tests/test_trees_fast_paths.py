"""The fast paths of the tree-ensemble code (issue #16) against their definitions: the all-trees
forward pass vs the tree-by-tree sum (bit for bit), the vectorised box bounds vs the per-tree
reachable leaves (bit for bit), and the attack's incremental move scores vs the forward pass."""

from __future__ import annotations

import numpy as np
import pytest

import reluverify as rv
from reluverify.trees.attack import _moves

sklearn = pytest.importorskip("sklearn")
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier  # noqa: E402
from sklearn.tree import DecisionTreeClassifier  # noqa: E402

RNG = np.random.default_rng(0)
X = RNG.random((300, 4))
Y = (X[:, 0] + X[:, 1] > 1).astype(int) + (X[:, 3] > 0.7)


def _ensembles():
    out = {
        "dt": rv.from_sklearn(DecisionTreeClassifier(max_depth=6, random_state=0).fit(X, Y)),
        "rf": rv.from_sklearn(RandomForestClassifier(12, max_depth=4, random_state=0).fit(X, Y)),
        "gb": rv.from_sklearn(GradientBoostingClassifier(n_estimators=8, max_depth=3, random_state=0).fit(X, Y)),
    }
    try:
        import xgboost

        out["xgb"] = rv.from_xgboost(xgboost.XGBClassifier(n_estimators=6, max_depth=3, n_jobs=1,
                                                           random_state=0).fit(X, Y))
    except ImportError:
        pass
    try:
        import lightgbm

        out["lgb"] = rv.from_lightgbm(lightgbm.LGBMClassifier(n_estimators=6, num_leaves=7, verbose=-1,
                                                              random_state=0).fit(X, Y))
    except ImportError:
        pass
    return out


ENSEMBLES = _ensembles()


def _probe(ens, n=120, seed=1):
    """Data rows and rows on, and a float64 step above, the exact left limits."""
    rng = np.random.default_rng(seed)
    lim = np.concatenate([t.limit[t.feature >= 0] for t in ens.trees])
    on = lim[rng.integers(0, lim.size, (n, X.shape[1]))]
    return np.vstack([X[:n], on, np.nextafter(on, np.inf)])


@pytest.mark.parametrize("key", sorted(ENSEMBLES))
def test_all_trees_forward_is_the_tree_by_tree_sum_bit_for_bit(key):
    ens = ENSEMBLES[key]
    P = _probe(ens)
    ref = ens._forward_per_tree(P)
    # batches below the size where forward goes tree by tree: the all-trees pass
    fast = np.vstack([ens.forward(P[a:a + 50]) for a in range(0, len(P), 50)])
    assert np.array_equal(fast, ref)
    assert np.array_equal(ens.forward(P[7]), ref[7])
    assert np.array_equal(ens.forward(P), ref)
    assert np.array_equal(ens.classes_of(fast), ens.framework_predict(P))
    assert np.array_equal(ens.leaves(P[:50]), np.stack([t.apply(P[:50]) for t in ens.trees], axis=1))


@pytest.mark.parametrize("key", sorted(ENSEMBLES))
def test_vectorised_score_bounds_are_the_per_tree_bounds(key):
    ens = ENSEMBLES[key]
    rng = np.random.default_rng(2)
    roots = ens._flat[0]
    for _ in range(15):
        a, b = rng.random(4), rng.random(4)
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        if rng.random() < 0.3:
            lo = hi = rng.random(4)
        mask = ens.reachable_leaves(lo, hi)
        for i in range(ens.n_trees):
            leaves, _ = ens.reachable(i, lo, hi)
            n = ens.trees[i].n_nodes
            assert np.array_equal(np.flatnonzero(mask[roots[i]:roots[i] + n]), leaves)
        for w in (None, rng.normal(size=ens.n_outputs), np.eye(ens.n_outputs)[-1] - np.eye(ens.n_outputs)[0]):
            lo_s, hi_s = ens.base_score.copy(), ens.base_score.copy()
            if w is not None:
                lo_s = hi_s = float(ens.base_score @ w)
            for i, t in enumerate(ens.trees):
                leaves, _ = ens.reachable(i, lo, hi)
                v = t.value[leaves] * ens.weight
                v = v if w is None else v @ w
                lo_s, hi_s = lo_s + v.min(axis=0), hi_s + v.max(axis=0)
            r = ens.score_rounding(None if w is None else np.flatnonzero(w != 0))
            got = ens.score_bounds(lo, hi, w)
            if w is None:  # the same additions in the same order
                assert np.array_equal(got[0], lo_s - r) and np.array_equal(got[1], hi_s + r)
            else:  # the leaf values' dot products with w may round differently (BLAS on other shapes)
                np.testing.assert_allclose([got[0], got[1]], [lo_s - r, hi_s + r], rtol=0, atol=1e-13)
            # and they hold: every sampled point of the box scores inside them
            S = ens.forward(rng.uniform(lo, hi, (40, 4)))
            s = S if w is None else S @ w
            assert np.all(s >= got[0] - 1e-12) and np.all(s <= got[1] + 1e-12)


@pytest.mark.parametrize("key", sorted(ENSEMBLES))
def test_attack_moves_are_every_single_crossing_with_its_scores(key):
    ens = ENSEMBLES[key]
    lo, hi = np.zeros(4), np.ones(4)
    for x in X[:6]:
        F, V, S = _moves(ens, x, lo, hi)
        # the definition: per tree, per node on the path of x, the value that crosses its test
        want = set()
        for t in ens.trees:
            node = 0
            while t.feature[node] >= 0:
                f, L = int(t.feature[node]), float(t.limit[node])
                v = float(np.nextafter(L, np.inf)) if x[f] <= L else L
                node = int(t.left[node]) if x[f] <= L else int(t.right[node])
                if 0.0 <= v <= 1.0:
                    want.add((f, v))
        assert set(zip(F.tolist(), V.tolist())) == want and len(F) == len(want)
        Xm = np.repeat(x[None], len(F), axis=0)
        Xm[np.arange(len(F)), F] = V
        # S: the moved point's scores as float64 sums (for ranking); the forward pass sums in the
        # framework's float type: they differ by at most its rounding (twice: once per sum)
        np.testing.assert_allclose(S, ens.forward(Xm), rtol=0, atol=2 * ens.score_rounding())


@pytest.mark.parametrize("norm", ["linf", "l1", "l0"])
@pytest.mark.parametrize("key", ["rf", "gb"])
def test_cell_distance_is_the_distance_to_the_nearest_point_of_the_cell(key, norm):
    """Kantchelian's distance on the predicates (add_cell_distance): with the predicates fixed to
    those of a point, the minimised objective is the distance from the centre to the nearest point
    of that point's cell (TreeArrays.closest), which the point itself is no nearer than."""
    from reluverify.engine.milp import open_model
    from reluverify.sets import ball
    from reluverify.trees.formulation import add_cell_distance, tree_arrays

    ens = ENSEMBLES[key]
    rng = np.random.default_rng(3)
    lo, hi = np.zeros(4), np.ones(4)
    ta = tree_arrays(ens, lo, hi, link_inputs=False)
    for _ in range(8):
        center, x = rng.random(4), rng.random(4)
        if rng.random() < 0.5:  # centre and point on limits: the closed/open ends of the cells
            center[0] = ta.pred_limit[rng.integers(ta.pred_limit.size)] if ta.pred_limit.size else center[0]
            x[1] = ta.pred_limit[rng.integers(ta.pred_limit.size)] if ta.pred_limit.size else x[1]
        model = open_model(ta.arrays, "highs", threads=1, big_m_value=1.0)
        cols, coefs, const = add_cell_distance(model, ta, center, norm)
        model.set_objective(dict(zip(cols, coefs)), "min", offset=const)
        p = (x[ta.pred_feature] <= ta.pred_limit).astype(float)
        model.set_col_bounds(ta.pred_cols, p, p)
        res, values = model.solve(time_limit=10)
        assert values is not None
        values = np.asarray(values)
        near = ta.closest(values, center)
        assert np.array_equal(ens.leaves(near), ens.leaves(x))  # the same cell as x
        d = ball(norm, center, None).distance
        assert abs(res.objective - d(near)) <= 1e-9 and d(near) <= d(x) + 1e-12
