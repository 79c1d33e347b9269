import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from reluverify.solvers import available_solvers  # noqa: E402

_AVAILABLE = available_solvers()


def solver_param(name):
    """A pytest param for a solver that skips, with the reason, only when it is truly not installed."""
    marks = [] if _AVAILABLE[name] else [pytest.mark.skip(reason=f"{name} is not installed on this machine")]
    return pytest.param(name, marks=marks, id=name)


ALL_SOLVERS = [solver_param(s) for s in ("highs", "cbc", "gurobi", "scip")]


# --------------------------------------------------------------------------- shared benchmark files
# The VNN-COMP 2022 and ERAN files are not in the repository. Every test that needs them finds them
# here: the folder holding vnncomp2022/ and eran/, from $RELUVERIFY_BENCHMARKS, else ../shared/benchmarks.
BENCHMARKS_ENV = "RELUVERIFY_BENCHMARKS"
SHARED_BENCHMARKS = Path(__file__).resolve().parents[2] / "shared" / "benchmarks"


def benchmarks_dir() -> Path:
    """The benchmarks folder: ``$RELUVERIFY_BENCHMARKS`` when set, else ``../shared/benchmarks``."""
    env = os.environ.get(BENCHMARKS_ENV, "").strip()
    return Path(env).expanduser().resolve() if env else SHARED_BENCHMARKS


BENCHMARKS = benchmarks_dir()


def benchmarks_present(subdir: str, root: Path | None = None) -> bool:
    """Whether ``subdir`` (e.g. ``"vnncomp2022/mnist_fc"``) of the benchmarks folder exists and is not empty."""
    folder = (BENCHMARKS if root is None else root) / subdir
    return folder.is_dir() and any(folder.iterdir())


def benchmarks_reason(subdir: str) -> str:
    """The one skip reason of every test that needs the benchmark files."""
    return (f"needs the shared benchmark files ({subdir}): set {BENCHMARKS_ENV}=/path/to/benchmarks "
            f"or place them in ../shared/benchmarks")


def needs_benchmarks(subdir: str):
    """Skip marker for a test that needs ``subdir`` of the benchmarks folder."""
    return pytest.mark.skipif(not benchmarks_present(subdir), reason=benchmarks_reason(subdir))
