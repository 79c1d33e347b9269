"""Layers as objects changed no number: bounds (interval, symbolic, LP, optimised), batched bounds,
split scores, the arrays MILP, attack gradients and ``check_property`` answers are those of the
code before it (issue #14 item 2).

The reference values are ``tests/fixtures/layers_before.npz``, computed by ``tests/layers_fixture.py``
on the commit before the change (its provenance is stored in the file); see that module for how to
regenerate them. Small arrays are compared exactly, large ones by the SHA-256 of their bytes.

The current values are computed the same way, in a fresh process: HiGHS carries state between
solves in one process (after other tests have run HiGHS MILPs, the LP strategy's duals, and so its
certified bounds, can differ in the last bits — with the old code as with the new).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import layers_fixture
from conftest import BENCHMARKS

FIXTURE = Path(__file__).parent / "fixtures" / "layers_before.npz"


@pytest.fixture(scope="module")
def values(tmp_path_factory):
    have = (BENCHMARKS / "vnncomp2022" / "mnist_fc").is_dir()
    target = tmp_path_factory.mktemp("layers") / "now.npz"
    env = {**os.environ, "RELUVERIFY_BENCHMARKS": str(BENCHMARKS), "OPENBLAS_NUM_THREADS": "1",
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}  # as the fixture was made
    subprocess.run([sys.executable, layers_fixture.__file__, str(target)], env=env, check=True,
                   capture_output=True, timeout=600)
    with np.load(target) as now:
        return {k: now[k] for k in now.files}, have


def test_fixture_has_provenance():
    with np.load(FIXTURE) as ref:
        assert "code before layers became objects" in str(ref["_provenance"])


def test_every_value_is_bit_for_bit_the_old_one(values):
    now, have = values
    with np.load(FIXTURE) as ref:
        keys = [k for k in ref.files if k != "_provenance" and (have or not k.startswith("mnist/"))]
        missing = sorted(set(keys) - set(now))
        assert not missing, f"values no longer computed: {missing[:5]}"
        different = []
        for k in keys:
            old, new = ref[k], np.asarray(now[k])
            if old.dtype.kind == "U":
                same = str(old) == (str(new) if new.dtype.kind == "U" else "sha256:" + layers_fixture.digest(new))
            else:
                same = old.shape == new.shape and old.dtype == new.dtype and np.array_equal(old, new, equal_nan=True)
            if not same:
                different.append(k)
        assert not different, f"{len(different)} of {len(keys)} values changed, e.g. {different[:8]}"
    assert len(keys) > 400
