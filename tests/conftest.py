import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest

from reluverify.solve import available_solvers

_AVAILABLE = available_solvers()


def solver_param(name):
    """A pytest param for a solver that skips, with the reason, only when it is truly not installed."""
    marks = [] if _AVAILABLE[name] else [pytest.mark.skip(reason=f"{name} is not installed on this machine")]
    return pytest.param(name, marks=marks, id=name)


ALL_SOLVERS = [solver_param(s) for s in ("highs", "cbc", "gurobi")]
