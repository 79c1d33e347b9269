"""BLAS threads: reluverify's entry points run their NumPy stages with one BLAS thread by default
(issue #13, item 9), restore the caller's setting, and can be told otherwise."""

import os
import subprocess
import sys

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

import reluverify as rv
from reluverify import InputError, Network
from reluverify.problems import (
    class_prototype, max_confidence, minimal_distortion, universal_perturbation, verify_robustness,
)
from reluverify.spec import Property, Region


def blas_now() -> int:
    return min(p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas")


NET = Network.random([4, 6, 3], seed=1)
X = np.array([0.2, 0.4, 0.6, 0.8])
C = int(np.argmax(NET.forward(X)))
OTHER = (C + 1) % 3


def _property():
    a_y = np.zeros((1, 3))
    a_y[0, C], a_y[0, OTHER] = 1.0, -1.0  # out_c - out_other <= 0
    return Property(4, 3, (Region(np.clip(X - 0.05, 0, 1), np.clip(X + 0.05, 0, 1), np.zeros((1, 4)), a_y,
                                  np.zeros(1)),))


CALLS = {
    "verify_robustness": lambda: verify_robustness(NET, X, 0.05),
    "minimal_distortion": lambda: minimal_distortion(NET, X, "linf", time_limit=30),
    "max_confidence": lambda: max_confidence(NET, X, OTHER, eps=0.3),
    "universal_perturbation": lambda: universal_perturbation(NET, [X], eps=0.05),
    "class_prototype": lambda: class_prototype(NET, OTHER, time_limit=30),
    "check_property": lambda: rv.check_property(NET, _property(), time_limit=30),
    "infer": lambda: rv.infer(NET, X),
    "compute_bounds": lambda: rv.compute_bounds(NET, rv.Box.uniform(4), "symbolic"),
}


@pytest.fixture
def two_blas_threads():
    if not any(p["user_api"] == "blas" for p in threadpool_info()):
        pytest.skip("NumPy reports no BLAS library to limit")
    with threadpool_limits(limits=2, user_api="blas"):
        if blas_now() < 2:
            pytest.skip("BLAS runs one thread here whatever we ask (one core)")
        yield


@pytest.mark.parametrize("name", sorted(CALLS))
def test_entry_points_run_with_one_blas_thread(name, two_blas_threads, monkeypatch):
    seen = []
    forward = Network.forward

    def spy(self, *a, **k):
        seen.append(blas_now())
        return forward(self, *a, **k)

    monkeypatch.setattr(Network, "forward", spy)
    import reluverify.bounds.symbolic as symbolic

    real_max = symbolic.linear_max

    def spy_max(*a, **k):
        seen.append(blas_now())
        return real_max(*a, **k)

    monkeypatch.setattr(symbolic, "linear_max", spy_max)
    CALLS[name]()
    assert seen, "the spies were never called"
    assert set(seen) == {rv.blas_threads()} == {1}
    assert blas_now() == 2  # the caller's setting is back


def test_set_blas_threads_changes_and_none_leaves_blas_alone(two_blas_threads, monkeypatch):
    seen = []
    forward = Network.forward
    monkeypatch.setattr(Network, "forward", lambda self, *a, **k: (seen.append(blas_now()), forward(self, *a, **k))[1])
    try:
        rv.set_blas_threads(None)
        verify_robustness(NET, X, 0.05)
        assert set(seen) == {2}
    finally:
        rv.set_blas_threads(1)
    with pytest.raises(InputError, match="whole number"):
        rv.set_blas_threads(0)
    with pytest.raises(InputError, match="whole number"):
        rv.set_blas_threads("two")


def test_environment_variable_sets_the_default():
    code = "import reluverify as rv; print(rv.blas_threads())"
    for value, want in (("2", "2"), ("none", "None")):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                             env={**os.environ, "RELUVERIFY_BLAS_THREADS": value})
        assert out.stdout.strip() == want, out.stderr
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "RELUVERIFY_BLAS_THREADS": "-3"})
    assert out.returncode != 0 and "RELUVERIFY_BLAS_THREADS" in out.stderr
