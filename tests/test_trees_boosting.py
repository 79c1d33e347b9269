"""XGBoost and LightGBM importers (issue #16): bit-exact scores and classes, the questions against the
brute-force oracle, typed errors. Skipped when the framework is not installed."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import reluverify as rv
from reluverify.errors import MissingDependencyError, UnsupportedLayerError
from reluverify.trees import oracle

RNG = np.random.default_rng(0)
X = RNG.random((300, 3))
Y = (X[:, 0] + X[:, 1] > 1).astype(int) + (X[:, 2] > 0.7)
ZERO, ONE = np.zeros(3), np.ones(3)


def _probe(ens, n=300):
    rng = np.random.default_rng(1)
    lim = np.concatenate([t.limit[t.feature >= 0] for t in ens.trees])
    thr = np.concatenate([t.threshold[t.feature >= 0] for t in ens.trees])
    P = [X]
    for d in (0.0, 1e-12, -1e-12, 3e-8, -3e-8):
        P.append(thr[rng.integers(0, thr.size, (n, 3))] + d)
    P.append(lim[rng.integers(0, lim.size, (n, 3))])
    P.append(np.nextafter(lim[rng.integers(0, lim.size, (n, 3))], np.inf))
    return np.vstack(P)


def _check_exact(ens, margins, P):
    m = np.asarray(margins, dtype=np.float64)
    if ens.task == "classifier" and m.ndim == 1:
        m = np.stack([np.zeros_like(m), m], axis=1)
    s = ens.forward(P)
    np.testing.assert_array_equal(s if ens.task == "classifier" else s[:, 0], m)
    if ens.task == "classifier":
        np.testing.assert_array_equal(ens.predict_class(P), ens.framework_predict(P))


def _oracle_rounds(ens, norms=("linf", "l1")):
    for x in X[:2]:
        c = ens.predict_class(x)
        for norm in norms:
            exact, _ = oracle.minimal_distortion(ens, x, c, norm, ZERO, ONE)
            r = rv.minimal_distortion(ens, x, norm, time_limit=30)
            assert r.verdict == rv.Verdict.FOUND and ens.framework_predict(r.x_adv) != c
            assert abs(r.distance - exact) <= 1e-9 * max(1, exact) and r.lower_bound <= exact + 1e-9
            for eps in ((exact - 1, exact) if norm == "l0" else (0.5 * exact, 1.5 * exact)):
                if eps <= 0:
                    continue
                v = rv.verify_robustness(ens, x, eps, norm, attack=False)
                assert v.verdict == (rv.Verdict.ROBUST if eps < exact else rv.Verdict.NOT_ROBUST)


# ------------------------------------------------------------------ XGBoost


@pytest.fixture(scope="module")
def xgb():
    return pytest.importorskip("xgboost")


@pytest.mark.parametrize("kind", ["multi", "binary", "regressor"])
def test_xgboost_scores_are_bit_exact(xgb, kind):
    if kind == "multi":
        m = xgb.XGBClassifier(n_estimators=15, max_depth=3).fit(X, Y)
    elif kind == "binary":
        m = xgb.XGBClassifier(n_estimators=15, max_depth=3).fit(X, (Y > 0).astype(int))
    else:
        m = xgb.XGBRegressor(n_estimators=10, max_depth=3).fit(X, X[:, 0] - X[:, 2])
    ens = rv.from_xgboost(m)
    assert ens.semantics == "xgboost" and ens.score_dtype == np.float32
    P = _probe(ens)
    _check_exact(ens, m.predict(P, output_margin=True), P)
    booster = rv.from_xgboost(m.get_booster())  # a bare Booster: its own predict is the reference
    if ens.task == "classifier":
        np.testing.assert_array_equal(booster.predict_class(P), booster.framework_predict(P))


def test_xgboost_questions_match_the_oracle(xgb):
    m = xgb.XGBClassifier(n_estimators=4, max_depth=2).fit(X, Y)
    _oracle_rounds(rv.from_xgboost(m))


def test_xgboost_unsupported(xgb):
    m = xgb.XGBClassifier(n_estimators=2, max_depth=2, booster="dart").fit(X, Y)
    with pytest.raises(UnsupportedLayerError, match="dart"):
        rv.from_xgboost(m)
    with pytest.raises(UnsupportedLayerError, match="not an XGBoost"):
        rv.from_xgboost(object())


# ------------------------------------------------------------------ LightGBM


@pytest.fixture(scope="module")
def lgb():
    return pytest.importorskip("lightgbm")


@pytest.mark.parametrize("kind", ["multi", "binary", "regressor"])
def test_lightgbm_scores_are_bit_exact(lgb, kind):
    if kind == "multi":
        m = lgb.LGBMClassifier(n_estimators=15, num_leaves=8, verbose=-1).fit(X, Y)
    elif kind == "binary":
        m = lgb.LGBMClassifier(n_estimators=15, num_leaves=8, verbose=-1).fit(X, (Y > 0).astype(int))
    else:
        m = lgb.LGBMRegressor(n_estimators=10, num_leaves=6, verbose=-1).fit(X, X[:, 0] - X[:, 2])
    ens = rv.from_lightgbm(m)
    P = _probe(ens)
    _check_exact(ens, m.predict(P, raw_score=True), P)
    booster = rv.from_lightgbm(m.booster_)
    if ens.task == "classifier":
        np.testing.assert_array_equal(booster.predict_class(P), booster.framework_predict(P))


def test_lightgbm_questions_match_the_oracle(lgb):
    m = lgb.LGBMClassifier(n_estimators=4, num_leaves=4, verbose=-1).fit(X, Y)
    _oracle_rounds(rv.from_lightgbm(m), norms=("linf", "l1", "l0"))


def test_lightgbm_unsupported(lgb):
    Xc = X.copy()
    Xc[:, 0] = np.floor(Xc[:, 0] * 4)
    m = lgb.LGBMClassifier(n_estimators=3, num_leaves=4, verbose=-1, min_child_samples=2,
                           min_data_per_group=2, cat_smooth=1).fit(Xc, Y, categorical_feature=[0])
    if any("==" in str(t) for t in m.booster_.dump_model()["tree_info"]):
        with pytest.raises(UnsupportedLayerError, match="categorical"):
            rv.from_lightgbm(m)
    z = lgb.LGBMClassifier(n_estimators=3, num_leaves=4, verbose=-1, zero_as_missing=True).fit(X, Y)
    if "'Zero'" in str(z.booster_.dump_model()["tree_info"]):
        with pytest.raises(UnsupportedLayerError, match="zero"):
            rv.from_lightgbm(z)
    rf = lgb.LGBMClassifier(boosting_type="rf", n_estimators=3, num_leaves=4, subsample=0.7, subsample_freq=1,
                            verbose=-1).fit(X, Y)
    with pytest.raises(UnsupportedLayerError, match="random-forest"):
        rv.from_lightgbm(rf)


@pytest.mark.parametrize("name", ["xgboost", "lightgbm"])
def test_missing_framework_is_a_typed_error(monkeypatch, name):
    monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(MissingDependencyError, match=f"reluverify\\[{name}\\]"):
        getattr(rv, f"from_{name}")(object())


def test_xgboost_and_lightgbm_ensembles_pickle_with_their_reference():
    """The importers' references are picklable (no closures): an ensemble travels to worker
    processes with the framework's own predict."""
    import pickle

    fits = []
    try:
        import xgboost

        m = xgboost.XGBClassifier(n_estimators=4, max_depth=2).fit(X, Y)
        fits += [rv.from_xgboost(m), rv.from_xgboost(m.get_booster())]
    except ImportError:
        pass
    try:
        import lightgbm

        m = lightgbm.LGBMClassifier(n_estimators=4, num_leaves=4, verbose=-1).fit(X, Y)
        fits += [rv.from_lightgbm(m), rv.from_lightgbm(m.booster_)]
    except ImportError:
        pass
    if not fits:
        pytest.skip("neither xgboost nor lightgbm is installed")
    P = _probe(fits[0], n=50)
    for ens in fits:
        back = pickle.loads(pickle.dumps(ens))
        np.testing.assert_array_equal(back.forward(P), ens.forward(P))
        np.testing.assert_array_equal(back.framework_predict(P), ens.framework_predict(P))
        np.testing.assert_array_equal(back.framework_predict(P), ens.predict_class(P))
