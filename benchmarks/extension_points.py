"""How many files does a new layer kind, norm or solver backend touch? Measured, not asserted.

Run (from the repository root; about a minute on 2 cores):

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \\
        .venv/bin/python benchmarks/extension_points.py [--out FILE] [--src src/reluverify] [--keep]

For each extension point the script copies the package (``--src``, default ``src/reluverify``) to
a temporary folder, adds the example of docs/architecture.md the way that page says (a
new module in the extension point's folder plus its registry line), imports the copy in a
subprocess (``PYTHONPATH`` = the temporary folder) and checks that the new thing works:

* layer kind ``Scale`` (``model/layers/scale.py`` + ``register(Scale)`` in
  ``model/layers/__init__.py``): forward pass against a hand computation, the four bound
  strategies sound on samples, MILP inference equal to the forward pass, save/load by kind name,
  ``verify_robustness`` with the kind inside the network;
* norm ``linf_rel`` (``sets/linf_rel.py`` + its ``NORMS`` entry): ``sets.ball`` by name, hull and
  ``contains``, ``encode_distance`` in the engine's MILP (its optimum equal to the recomputed
  distance), ``verify_robustness(norm="linf_rel")`` proving robustness;
* solver backend ``highs_plain`` (``solvers/highs_plain.py`` + a ``_BUILTIN`` entry): listed by
  ``available_solvers()`` and ``reluverify solvers``, MILP inference and the engine's MILP stage
  on it.

"Stress" checks then use the new thing where the one-module story may not hold (the kind as the
last layer, a ``not_robust`` answer and ``minimal_distortion`` with the new norm,
``check_property`` on the new solver); they are reported, not required. The copy is compared
with the original tree file by file (files added, files changed, lines added/removed).

Secondary measure: code outside each extension point's folder that names layer kinds,
activations, norms or solvers -- string literals (``"relu"``, ``"linf"``, ``"gurobi"`` ...),
attribute reads that only ``Dense`` has (``.activation``, ``.weight``), and names of concrete
classes or solver packages -- found with ``ast`` (docstrings and comments do not count), printed
as ``file:line`` so that leaks are visible.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# ------------------------------------------------------------------ the three additions

LAYER_MODULE = '''\
"""Scale: ``h = act(scale * x + shift)`` entry by entry (docs/architecture.md)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .dense import dense_map
from .elementwise import ACTIVATIONS, ElementwiseLayer


@dataclass(frozen=True)
class Scale(ElementwiseLayer):
    scale: np.ndarray
    shift: np.ndarray
    activation: str = "relu"

    kind = "scale"
    state_keys = ("s", "t")

    @property
    def n_in(self):
        return self.scale.size

    @property
    def n_out(self):
        return self.scale.size

    @property
    def rule(self):
        return ACTIVATIONS[self.activation]

    def linear(self, rows=None, cols=None):
        return dense_map(np.diag(self.scale), self.shift, rows, cols)

    def without_activation(self):
        return Scale(self.scale, self.shift, "linear")

    def state(self):
        return self.activation, {"s": self.scale, "t": self.shift}

    @classmethod
    def from_state(cls, spec, arrays):
        return cls(np.asarray(arrays["s"], float), np.asarray(arrays["t"], float), spec)
'''

NORM_MODULE = '''\
"""L-inf relative to each input's valid range (docs/architecture.md)."""

from __future__ import annotations

import numpy as np

from .ball import Ball


class RelLinfBall(Ball):
    norm = "linf_rel"
    is_box = True

    def _width(self):
        return np.maximum(self.valid.upper - self.valid.lower, 1e-12)

    def _cap(self):
        return None if self.radius is None else self.radius * self._width()

    def problem(self, x):
        return self.hull().problem(np.ravel(x))

    def distance(self, x):
        return np.max(np.abs(np.asarray(x, float) - self.center) / self._width(), axis=-1)

    def encode_distance(self, milp, input_cols):
        c, w, e = self.center, self._width(), milp.add_column(0.0, 1.0)
        free = self.free.tolist()
        milp.add_rows(-np.inf, c[free], [([int(input_cols[i]), e], [1.0, -w[i]]) for i in free])
        milp.add_rows(-np.inf, -c[free], [([int(input_cols[i]), e], [-1.0, -w[i]]) for i in free])
        return [e], [1.0], 0.0
'''

SOLVER_MODULE = '''\
"""HiGHS through Pyomo's contrib interface at its confirming settings (docs/architecture.md)."""

from __future__ import annotations

from .base import Backend


class HighsPlainBackend(Backend):
    name = "highs_plain"
    install_hint = "pip install highspy"
    module = "highspy"
    contrib_name = "highs"

    def tolerance_options(self):
        return {"mip_feasibility_tolerance": 1e-6, "presolve": "off", "primal_feasibility_tolerance": 1e-9}
'''


def _insert_after(text: str, anchor: str, new: str, path: str) -> str:
    """``text`` with ``new`` (lines) inserted after the line that starts with ``anchor``."""
    lines = text.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if line.startswith(anchor):
            return "".join(lines[:i + 1] + [new] + lines[i + 1:])
    raise SystemExit(f"{path}: no line starts with {anchor!r}; the registry has moved, update this script")


def _replace_once(text: str, old: str, new: str, path: str) -> str:
    if text.count(old) != 1:
        raise SystemExit(f"{path}: expected {old!r} once, found it {text.count(old)} times; update this script")
    return text.replace(old, new)


def add_layer(pkg: Path) -> None:
    (pkg / "model/layers/scale.py").write_text(LAYER_MODULE)
    init = pkg / "model/layers/__init__.py"
    init.write_text(_insert_after(init.read_text(), "register(Dense)", "from .scale import Scale  # noqa: E402\n"
                                  "register(Scale)\n", str(init)))


def add_norm(pkg: Path) -> None:
    (pkg / "sets/linf_rel.py").write_text(NORM_MODULE)
    init = pkg / "sets/__init__.py"
    text = _insert_after(init.read_text(), "from .linf import", "from .linf_rel import RelLinfBall\n", str(init))
    start = text.index("NORMS = {")
    end = text.index("}", start)
    text = text[:end] + ', "linf_rel": RelLinfBall' + text[end:]
    init.write_text(text)


def add_solver(pkg: Path) -> None:
    (pkg / "solvers/highs_plain.py").write_text(SOLVER_MODULE)
    init = pkg / "solvers/__init__.py"
    text = _insert_after(init.read_text(), "from .highs import", "from .highs_plain import HighsPlainBackend\n",
                         str(init))
    text = _replace_once(text, "ScipBackend())", "ScipBackend(), HighsPlainBackend())", str(init))
    init.write_text(text)


# ------------------------------------------------------------------ the checks (run in the copy)

PRELUDE = '''
import json, os, sys, tempfile, traceback
import numpy as np
import reluverify as rv
assert rv.__file__.startswith(os.environ["COPY_ROOT"]), rv.__file__
from reluverify.model.layers import Dense
from reluverify.problems import verify_robustness
RESULTS = {"required": {}, "stress": {}}

def check(kind, name, fn):
    try:
        out = fn()
        RESULTS[kind][name] = "ok" if out in (None, True) else f"FAILED: {out}"
    except Exception as exc:
        RESULTS[kind][name] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:90] if str(exc) else ''}"

rng = np.random.default_rng(0)
x = np.array([0.5, 0.2, 0.8])
'''

LAYER_CHECK = '''
from reluverify.model.layers import KINDS
from reluverify.model.layers.scale import Scale
W0, b0, W2 = rng.normal(size=(4, 3)), rng.normal(size=4) * 0.1, rng.normal(size=(2, 4))
s, t = np.array([2.0, -1.0, 0.5, 1.5]), np.array([0.1, 0.2, -0.1, 0.0])
net = rv.Network((Dense(W0, b0, "relu"), Scale(s, t), Dense(W2, np.zeros(2), "linear")))
box = rv.Box(x - 0.05, x + 0.05)

def forward():
    h = np.maximum(W0 @ x + b0, 0); h = np.maximum(s * h + t, 0)
    return bool(np.allclose(net.forward(x), W2 @ h))

def bounds():
    pts = box.lower + rng.random((2000, 3)) * (box.upper - box.lower)
    _, pre = net.forward(pts, return_all=True)
    for m in ("interval", "symbolic", "lp", "optimised"):
        b = rv.compute_bounds(net, box, m)
        for k in range(3):
            if not (np.all(pre[k] >= b.lower[k] - 1e-9) and np.all(pre[k] <= b.upper[k] + 1e-9)):
                return f"{m} bounds of layer {k} miss samples"

def save_load():
    path = os.path.join(tempfile.mkdtemp(), "n.npz")
    net.save(path)
    back = rv.Network.load(path)
    return type(back.layers[1]).__name__ == "Scale" and bool(np.allclose(back.forward(x), net.forward(x)))

check("required", "registered as KINDS['scale']", lambda: KINDS.get("scale") is Scale)
check("required", "forward pass", forward)
check("required", "4 bound strategies sound", bounds)
check("required", "MILP inference == forward", lambda: rv.infer(net, x, domain=box).matches)
check("required", "save/load by kind", save_load)
check("required", "verify_robustness (kind inside)",
      lambda: str(verify_robustness(net, x, eps=0.3, time_limit=30).verdict) == "not_robust"
      and str(verify_robustness(net, x, eps=0.05, time_limit=30).verdict) == "robust" or "wrong verdicts")
last = rv.Network((Dense(W0, b0, "relu"), Scale(s, t, "relu")))
check("stress", "verify_robustness, kind as last layer (relu)",
      lambda: str(verify_robustness(last, x, eps=0.3, time_limit=30).verdict) in ("robust", "not_robust", "unknown"))
from reluverify.problems import minimal_distortion
check("stress", "minimal_distortion, kind as last layer",
      lambda: minimal_distortion(last, x, norm="linf", time_limit=30).distance is not None or "no distance")
print("RESULTS" + json.dumps(RESULTS))
'''

NORM_CHECK = '''
from reluverify.sets import NORMS, ball, check_norm
from reluverify.sets.linf_rel import RelLinfBall
from reluverify.bounds import compute_bounds
from reluverify.engine.milp import NetworkMilp
from reluverify.spec import Region
valid = rv.Box(np.zeros(3), np.array([1.0, 2.0, 4.0]))
net = rv.Network.random([3, 8, 8, 3], seed=1)

def hull_contains():
    b = ball("linf_rel", x, 0.1, valid=valid)
    ok = np.allclose(b.hull().upper, [0.6, 0.4, 1.2]) and b.contains(x + [0.1, 0.2, 0.4]) and not b.contains(x + 0.11)
    return bool(ok) or "hull/contains wrong"

def encode_distance():
    ub = ball("linf_rel", x, None)
    c = int(np.argmax(net.forward(x)))
    for j in range(3):
        if j == c:
            continue
        m = NetworkMilp(net, compute_bounds(net, ub.hull(), "symbolic"), "highs", inputs=ub)
        m.minimise_distance(ub)
        a_y = np.zeros((1, 3)); a_y[0, c], a_y[0, j] = 1.0, -1.0
        m.add_region(Region(ub.hull().lower, ub.hull().upper, np.zeros((1, 3)), a_y, np.zeros(1)), 0.0)
        res, xx = m.solve(30)
        if xx is not None:
            return abs(res.objective - ub.distance(xx)) < 1e-6 or f"objective {res.objective} != distance"
    return "no class change in the whole box to measure"

check("required", "NORMS['linf_rel'] and check_norm", lambda: NORMS.get("linf_rel") is RelLinfBall
      and check_norm("linf_rel") == "linf_rel")
check("required", "hull/contains", hull_contains)
check("required", "encode_distance in the MILP", encode_distance)
check("required", "verify_robustness robust",
      lambda: str(verify_robustness(net, x, eps=0.01, norm="linf_rel", time_limit=30).verdict) == "robust"
      or "not robust")
check("stress", "verify_robustness not_robust",
      lambda: str(verify_robustness(net, x, eps=0.9, norm="linf_rel", time_limit=30).verdict) == "not_robust"
      or "no counterexample")
from reluverify.problems import minimal_distortion
check("stress", "minimal_distortion",
      lambda: minimal_distortion(net, x, norm="linf_rel", time_limit=30).distance is not None or "no distance")
print("RESULTS" + json.dumps(RESULTS))
'''

SOLVER_CHECK = '''
import io, contextlib
from reluverify import solvers
from reluverify.spec import Property, Region
from reluverify import check_property
net = rv.Network.random([3, 8, 8, 3], seed=1)

def cli_lists():
    from reluverify.cli import main
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        main(["solvers"])
    return "highs_plain" in buf.getvalue() or "not listed"

def milp_stage():
    res = verify_robustness(net, x, eps=0.3, solver="highs_plain", attack=False, split=False, branch=False,
                            time_limit=30)
    used = {s.solver for s in res.solves}
    return (used == {"highs_plain"} and str(res.verdict) != "unknown") or f"{res.verdict}, solves by {used}"

def prop():
    c = int(np.argmax(net.forward(x)))
    a_y = np.zeros((1, 3)); a_y[0, c], a_y[0, (c + 1) % 3] = 1.0, -1.0
    p = Property(3, 3, (Region(x - 0.3, x + 0.3, np.zeros((1, 3)), a_y, np.zeros(1)),))
    res = check_property(net, p, solver="highs_plain", attack=False, split=False, branch=False, time_limit=30)
    return str(res.verdict) in ("sat", "unsat") or str(res.verdict)

check("required", "in available_solvers()", lambda: rv.available_solvers().get("highs_plain") is True)
check("required", "listed by `reluverify solvers`", cli_lists)
check("required", "MILP inference (Pyomo model)", lambda: rv.infer(net, x, solver="highs_plain").matches)
check("required", "engine MILP stage (array model)", milp_stage)
check("stress", "check_property MILP stage", prop)
print("RESULTS" + json.dumps(RESULTS))
'''

POINTS = [
    # name, folder of the extension point (inside the package), how to add, check
    ("layer kind", "model/layers", add_layer, LAYER_CHECK),
    ("norm (input set)", "sets", add_norm, NORM_CHECK),
    ("solver backend", "solvers", add_solver, SOLVER_CHECK),
]


# ------------------------------------------------------------------ diff


def _files(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): p for p in root.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}


def tree_diff(original: Path, copy: Path) -> dict:
    a, b = _files(original), _files(copy)
    added = sorted(set(b) - set(a))
    removed = sorted(set(a) - set(b))
    changed, plus, minus = [], 0, 0
    for rel in sorted(set(a) & set(b)):
        old, new = a[rel].read_bytes(), b[rel].read_bytes()
        if old == new:
            continue
        changed.append(rel)
        for line in difflib.unified_diff(old.decode().splitlines(), new.decode().splitlines(), lineterm="", n=0):
            if line.startswith("+") and not line.startswith("+++"):
                plus += 1
            elif line.startswith("-") and not line.startswith("---"):
                minus += 1
    for rel in added:
        plus += len(b[rel].read_text().splitlines())
    return {"added": added, "removed": removed, "changed": changed, "plus": plus, "minus": minus}


# ------------------------------------------------------------------ leaks (secondary measure)

LEAKS = {
    "layer kind": {
        "folder": ("model/layers/",),
        "strings": {"relu", "linear", "dense"},
        "attributes": {"activation", "weight"},
        "names": {"Dense", "ReLU", "Identity", "DenseMap"},
        "modules": set(),
    },
    "norm (input set)": {
        "folder": ("sets/",),
        "strings": {"l1", "linf", "l0", "l2"},
        "attributes": set(),
        "names": {"L1Ball", "LinfBall", "L0Ball", "L1Box"},
        "modules": set(),
    },
    "solver backend": {
        "folder": ("solvers/",),
        "strings": {"highs", "cbc", "gurobi", "scip", "glpk"},
        "attributes": set(),
        "names": {"HighsBackend", "CbcBackend", "GurobiBackend", "ScipBackend", "HighsArrayModel"},
        "modules": {"highspy", "gurobipy", "pyscipopt"},
    },
}


def find_leaks(pkg: Path, spec: dict) -> list:
    """``(file, line, what)`` for every mention outside the extension point's folder."""
    hits = []
    for path in sorted(pkg.rglob("*.py")):
        rel = path.relative_to(pkg).as_posix()
        if "__pycache__" in rel or rel.startswith(spec["folder"]):
            continue
        try:
            tree = ast.parse(path.read_text())
        except SyntaxError as exc:
            hits.append((rel, exc.lineno or 0, "unparsable"))
            continue
        for node in ast.walk(tree):
            what = None
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.lower() in spec["strings"]:
                what = repr(node.value)
            elif isinstance(node, ast.Attribute) and node.attr in spec["attributes"]:
                what = "." + node.attr
            elif isinstance(node, ast.Name) and node.id in spec["names"]:
                what = node.id
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                if isinstance(node, ast.Import):
                    mods = [a.name for a in node.names]
                else:
                    mods = [node.module or ""] + [a.name for a in node.names]
                found = sorted({m.split(".")[0] for m in mods if m} & spec["modules"]) + \
                    sorted({a.name for a in node.names} & spec["names"])
                what = ", ".join("import " + f for f in found) or None
            if what:
                hits.append((rel, node.lineno, what))
    return sorted(set(hits))


# ------------------------------------------------------------------ main


def run_point(src: Path, name: str, folder: str, add, check: str, keep: bool, timeout: float) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="rv_ext_"))
    pkg = tmp / "reluverify"
    shutil.copytree(src, pkg, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    add(pkg)
    diff = tree_diff(src, pkg)
    env = {**os.environ, "PYTHONPATH": str(tmp), "COPY_ROOT": str(pkg), "MPLBACKEND": "Agg"}
    t0 = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-c", PRELUDE + check], capture_output=True, text=True, env=env,
                              timeout=timeout, cwd=tmp)
        line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULTS")), None)
        results = json.loads(line[len("RESULTS"):]) if line else \
            {"required": {"import/run": "crashed: " + (proc.stderr.strip().splitlines() or ["?"])[-1][:150]},
             "stress": {}}
    except subprocess.TimeoutExpired:
        results = {"required": {"run": f"timed out after {timeout:.0f} s"}, "stress": {}}
    wall = time.perf_counter() - t0
    if not keep:
        shutil.rmtree(tmp, ignore_errors=True)
    outside = [f for f in diff["added"] + diff["changed"] if not f.startswith(folder + "/")]
    return {"name": name, "folder": folder, "diff": diff, "outside": outside, "results": results, "wall": wall,
            "copy": str(tmp) if keep else None}


def report(src: Path, points: list, leaks: dict) -> str:
    import platform

    out = [f"# Extension points: files touched (measured on a copy of `{src}`)", "",
           f"Command: `{' '.join(['python'] + [a for a in sys.argv[:]])}`; Python {platform.python_version()}, "
           f"{platform.platform()}, {os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d')}.", ""]
    out.append("| extension point | files added | files changed | outside its folder | lines +/- "
               "| required checks | stress checks |")
    out.append("|---|---|---|---|---|---|---|")
    for p in points:
        d, r = p["diff"], p["results"]
        req_ok = sum(v == "ok" for v in r["required"].values())
        st_ok = sum(v == "ok" for v in r["stress"].values())
        out.append(f"| {p['name']} | {len(d['added'])} ({', '.join(d['added'])}) | {len(d['changed'])} "
                   f"({', '.join(d['changed'])}) | {len(p['outside'])} | +{d['plus']}/-{d['minus']} "
                   f"| {req_ok}/{len(r['required'])} | {st_ok}/{len(r['stress'])} |")
    out.append("")
    for p in points:
        out.append(f"**{p['name']}** (checks ran in {p['wall']:.1f} s)" + (f", copy kept in {p['copy']}" if p["copy"] else ""))
        out.append("")
        for kind in ("required", "stress"):
            for check, verdict in p["results"][kind].items():
                out.append(f"- {kind}: {check}: {verdict}")
        out.append("")
    out.append("## Mentions outside each extension point's folder (ast: literals, Dense-only attributes, "
               "concrete class names, solver packages)")
    out.append("")
    out.append("| extension point | files | mentions |")
    out.append("|---|---|---|")
    for name, hits in leaks.items():
        out.append(f"| {name} | {len({h[0] for h in hits})} | {len(hits)} |")
    out.append("")
    for name, hits in leaks.items():
        out.append(f"**{name}** (outside `{LEAKS[name]['folder'][0]}`):")
        out.append("")
        by_file: dict = {}
        for rel, line, what in hits:
            by_file.setdefault(rel, []).append(f"{line} {what}")
        for rel, items in by_file.items():
            out.append(f"- `{rel}`: " + "; ".join(items))
        out.append("")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--src", default=str(ROOT / "src" / "reluverify"), help="the package to copy")
    ap.add_argument("--out", help="also write the markdown report to this file")
    ap.add_argument("--keep", action="store_true", help="keep the temporary copies (their paths are printed)")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per extension point's checks")
    args = ap.parse_args(argv)
    src = Path(args.src).resolve()
    points = [run_point(src, *p, keep=args.keep, timeout=args.timeout) for p in POINTS]
    leaks = {name: find_leaks(src, spec) for name, spec in LEAKS.items()}
    try:
        shown = src.relative_to(ROOT)
    except ValueError:
        shown = src
    text = report(shown, points, leaks)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0 if all(v == "ok" for p in points for v in p["results"]["required"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
