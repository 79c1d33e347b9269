"""``reluverify bench``: the same questions on several solvers, side by side.

For the first N test images of the bundled MNIST data (:func:`reluverify.datasets.load_mnist`) and
a network (the seed network, or a saved ``.npz`` / ``.onnx`` / ``.keras`` file), each listed solver
that is installed answers one question through the public API only:

* ``min-l1`` / ``min-linf``: :func:`reluverify.problems.minimal_distortion` (the distance found and
  the proven lower bound);
* ``verify``: :func:`reluverify.problems.verify_robustness` at ``--eps`` (L-inf).

Each (image, solver) query runs with one BLAS thread (:mod:`reluverify.threads`) and the solver's
own default thread count. The table says, per image, whether the solvers agree: no two verdicts
contradict (``found``/``not_robust`` against ``robust``) and no proven lower bound exceeds a
distance another solver found, beyond the optimality gap
:data:`~reluverify.tolerances.OPTIMAL_REL_GAP`. Gurobi's size-limited licence refuses large models
(:class:`~reluverify.errors.LicenseLimitError`): that is recorded as "licence limit", not a failure.
Writes ``bench.md`` (markdown), ``bench.csv`` and ``bench.png`` (times per solver, matplotlib) in
the output folder.
"""

from __future__ import annotations

import csv
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InputError, LicenseLimitError, ModelFileError
from .results import Verdict
from .tolerances import OPTIMAL_REL_GAP

QUESTIONS = ("min-l1", "min-linf", "verify")
DEFAULT_EPS = 0.03  # the README's L-inf radius for the seed network
LICENCE_LIMIT = "licence limit"
MODEL_SUFFIXES = (".npz", ".onnx", ".onnx.gz", ".keras", ".h5")


@dataclass
class BenchRow:
    """One (image, solver) answer."""

    image: int
    label: int
    solver: str
    verdict: str
    distance: float | None = None
    lower_bound: float | None = None
    time_s: float | None = None
    note: str = ""


@dataclass
class BenchReport:
    question: str
    model: str
    solvers: list  # those that ran
    skipped: dict  # solver -> why it did not run
    time_limit: float
    eps: float | None
    rows: list = field(default_factory=list)
    agreement: dict = field(default_factory=dict)  # image -> "yes" | "NO: ..." | "-"
    files: dict = field(default_factory=dict)

    def row(self, image: int, solver: str) -> BenchRow | None:
        return next((r for r in self.rows if r.image == image and r.solver == solver), None)


# --------------------------------------------------------------------------- arguments
def parse_solvers(text: str) -> list:
    """``"highs,cbc"`` -> ``["highs", "cbc"]`` (known names, no duplicates); typed errors otherwise."""
    from .solvers import _check_name

    names = [s.strip() for s in str(text).split(",") if s.strip()]
    if not names:
        raise InputError("--solvers needs at least one solver name, e.g. --solvers highs,cbc")
    out = []
    for name in names:
        name = _check_name(name)
        if name not in out:
            out.append(name)
    return out


def check_question(question: str) -> str:
    if question not in QUESTIONS:
        raise InputError(f"unknown question {question!r} (--question); choose one of {', '.join(QUESTIONS)}")
    return question


def check_model(model: str) -> str:
    """``"seed"`` or an existing network file with a suffix reluverify reads."""
    if model == "seed":
        return model
    if not str(model).lower().endswith(MODEL_SUFFIXES):
        raise InputError(f"--model {model}: use 'seed' or a network file ({', '.join(MODEL_SUFFIXES)})")
    if not os.path.isfile(model):
        raise ModelFileError(f"--model {model}: no such file; use 'seed' or the path of a saved network")
    return model


def check_args(solvers: str, question: str, model: str, images: int, eps: float | None, out: str) -> tuple:
    """Everything checkable before any work: ``(solver names, question, model, eps)``."""
    names = parse_solvers(solvers)
    question = check_question(question)
    model = check_model(model)
    if images is None or images < 1:
        raise InputError(f"--images must be 1 or more, got {images}")
    if eps is not None:
        if question != "verify":
            raise InputError(f"--eps applies to --question verify only (got --question {question})")
        if not (math.isfinite(eps) and eps > 0):
            raise InputError(f"--eps must be positive, got {eps}")
    elif question == "verify":
        eps = DEFAULT_EPS
    if os.path.exists(out) and not os.path.isdir(out):
        raise InputError(f"--out {out} is a file; name a folder for the table and the plot")
    return names, question, model, eps


def load_model(model: str):
    from . import Network

    if model == "seed":
        from .zoo import seed_mlp

        return seed_mlp()
    low = model.lower()
    if low.endswith(".npz"):
        return Network.load(model)
    if low.endswith((".onnx", ".onnx.gz")):
        from . import from_onnx

        return from_onnx(model)
    from . import from_keras

    return from_keras(model)


# --------------------------------------------------------------------------- running
def ask(network, x, label: int, question: str, solver: str, time_limit: float, eps: float | None) -> BenchRow:
    """One query through the public API; a licence refusal is a row, not an exception."""
    from .problems import minimal_distortion, verify_robustness

    t0 = time.perf_counter()
    try:
        if question == "verify":
            res = verify_robustness(network, x, eps, "linf", label=label, solver=solver, time_limit=time_limit)
        else:
            res = minimal_distortion(network, x, question.split("-")[1], label=label, solver=solver,
                                     time_limit=time_limit)
    except LicenseLimitError as exc:
        return BenchRow(-1, label, solver, LICENCE_LIMIT, time_s=time.perf_counter() - t0, note=str(exc))
    wall = time.perf_counter() - t0
    return BenchRow(-1, label, solver, str(res.verdict), _finite(res.distance), _finite(res.lower_bound), wall,
                    res.message or "")


def _finite(v):
    return None if v is None or not math.isfinite(float(v)) else float(v)


def agreement(rows: list) -> str:
    """Whether the answers of one image agree: ``"yes"``, ``"NO: why"``, or ``"-"`` (fewer than two answers)."""
    answered = [r for r in rows if r.verdict not in (LICENCE_LIMIT,)]
    if len(answered) < 2:
        return "-"
    positive = {str(Verdict.FOUND), str(Verdict.NOT_ROBUST)}
    says_robust = [r.solver for r in answered if r.verdict == str(Verdict.ROBUST)]
    says_attack = [r.solver for r in answered if r.verdict in positive]
    if says_robust and says_attack:
        return f"NO: {', '.join(says_robust)} robust, {', '.join(says_attack)} found a counterexample"
    for a in answered:  # a proven lower bound never exceeds a distance found (up to the optimal gap)
        for b in answered:
            if a.lower_bound is not None and b.distance is not None:
                if a.lower_bound > b.distance + OPTIMAL_REL_GAP * max(1.0, b.distance):
                    return (f"NO: {a.solver} proved a bound of {a.lower_bound:.6g} above the distance "
                            f"{b.distance:.6g} {b.solver} found")
    return "yes"


def run_bench(solvers: list, question: str, model: str, images: int, time_limit: float, eps: float | None,
              out: str, progress=print) -> BenchReport:
    """Run the bench (arguments as :func:`check_args` returns them) and write its files into ``out``."""
    from .datasets import load_mnist
    from .solvers import available_solvers, get_backend, solver_problem
    from .threads import blas_threads, set_blas_threads

    skipped, ready = {}, []
    known = available_solvers()
    for name in solvers:
        ok = known[name] if name in known else get_backend(name).probe()[0]
        if ok:
            ready.append(name)
        else:
            problem = solver_problem(name)
            skipped[name] = f"broken: {problem}" if problem else f"not installed ({get_backend(name).install_hint})"
    for name, why in skipped.items():
        progress(f"note: skipping {name}: {why}")
    if not ready:
        raise InputError(f"none of the solvers {', '.join(solvers)} is installed here; `reluverify solvers` "
                         "lists what is")
    network = load_model(model)
    data = load_mnist()
    if network.n_inputs != data.x_test[0].size:
        raise InputError(f"--model {model} takes {network.n_inputs} inputs; the MNIST images have "
                         f"{data.x_test[0].size} pixels")
    if images > len(data.x_test):
        raise InputError(f"--images {images}: the test set ({data.source}) has {len(data.x_test)} images")
    report = BenchReport(question, model, ready, skipped, float(time_limit), eps)
    saved = blas_threads()
    set_blas_threads(1)  # one BLAS thread per query, whatever the environment says
    try:
        for i in range(images):
            x, y = data.x_test[i], int(data.y_test[i])
            for name in ready:
                row = ask(network, x, y, question, name, time_limit, eps)
                row.image = i
                report.rows.append(row)
                progress(f"image {i} ({y}) {name}: {_cell(row)}")
            report.agreement[i] = agreement([r for r in report.rows if r.image == i])
    finally:
        set_blas_threads(saved)
    write_report(report, out)
    return report


# --------------------------------------------------------------------------- output
def _num(v, digits: int = 6) -> str:
    return "" if v is None else f"{v:.{digits}g}"


def _cell(r: BenchRow) -> str:
    if r.verdict == LICENCE_LIMIT:
        return LICENCE_LIMIT
    parts = [r.verdict]
    if r.distance is not None:
        parts.append(f"d {_num(r.distance)}")
    if r.lower_bound is not None:
        parts.append(f"lb {_num(r.lower_bound)}")
    parts.append(f"{r.time_s:.2f} s")
    return ", ".join(parts)


def markdown(report: BenchReport) -> str:
    what = (f"L-inf robustness at eps {report.eps:g}" if report.question == "verify" else
            {"min-l1": "minimal L1 distortion", "min-linf": "minimal L-inf distortion"}[report.question])
    lines = [f"# reluverify bench: {what}", "",
             f"Network: {report.model}; {len({r.image for r in report.rows})} MNIST test images; time limit "
             f"{report.time_limit:g} s per query; one BLAS thread per query. Cells: verdict, distance found (d), "
             f"proven lower bound (lb), wall time. Agree: no contradicting verdicts and no proven bound above "
             f"a distance found (relative gap {OPTIMAL_REL_GAP:g}).", ""]
    for name, why in report.skipped.items():
        lines.append(f"- {name} skipped: {why}")
    if report.skipped:
        lines.append("")
    lines.append("| image | class | " + " | ".join(report.solvers) + " | agree |")
    lines.append("|---|---|" + "---|" * len(report.solvers) + "---|")
    for i in sorted(report.agreement):
        row0 = next(r for r in report.rows if r.image == i)
        cells = [_cell(report.row(i, s)) for s in report.solvers]
        lines.append(f"| {i} | {row0.label} | " + " | ".join(cells) + f" | {report.agreement[i]} |")
    lines += ["", "| solver | decided | unknown | licence limit | total time (s) | median time (s) |",
              "|---|---|---|---|---|---|"]
    for s in report.solvers:
        rs = [r for r in report.rows if r.solver == s]
        timed = sorted(r.time_s for r in rs if r.verdict != LICENCE_LIMIT)
        med = timed[len(timed) // 2] if len(timed) % 2 else (sum(timed[len(timed) // 2 - 1:len(timed) // 2 + 1]) / 2
                                                             if timed else None)
        decided = sum(r.verdict not in (str(Verdict.UNKNOWN), LICENCE_LIMIT) for r in rs)
        lines.append(f"| {s} | {decided} | {sum(r.verdict == str(Verdict.UNKNOWN) for r in rs)} | "
                     f"{sum(r.verdict == LICENCE_LIMIT for r in rs)} | {sum(timed):.1f} | {_num(med, 3)} |")
    agree = list(report.agreement.values())
    lines += ["", f"Agreement: {sum(a == 'yes' for a in agree)} of {len(agree)} images agree, "
              f"{sum(a.startswith('NO') for a in agree)} disagree, {sum(a == '-' for a in agree)} with fewer than two "
              "answers."]
    return "\n".join(lines) + "\n"


def write_report(report: BenchReport, out: str) -> None:
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    md, csv_path = folder / "bench.md", folder / "bench.csv"
    md.write_text(markdown(report))
    with open(csv_path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["question", "image", "class", "solver", "verdict", "distance", "lower_bound", "time_s", "agree",
                    "note"])
        for r in report.rows:
            w.writerow([report.question, r.image, r.label, r.solver, r.verdict, _num(r.distance, 10),
                        _num(r.lower_bound, 10), "" if r.time_s is None else f"{r.time_s:.3f}",
                        report.agreement.get(r.image, ""), r.note])
    report.files = {"markdown": str(md), "csv": str(csv_path)}
    png = plot_times(report, folder / "bench.png")
    if png:
        report.files["plot"] = png


def plot_times(report: BenchReport, path) -> str | None:
    """Times per image and solver (grouped bars, log scale); ``None`` without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        return None
    images = sorted(report.agreement)
    width = 0.8 / max(1, len(report.solvers))
    fig, ax = plt.subplots(figsize=(max(5.0, 0.6 * len(images) * max(1, len(report.solvers)) + 2), 3.6))
    for k, s in enumerate(report.solvers):
        xs, ts = [], []
        for j, i in enumerate(images):
            r = report.row(i, s)
            if r is not None and r.time_s is not None and r.verdict != LICENCE_LIMIT:
                xs.append(j + (k - (len(report.solvers) - 1) / 2) * width)
                ts.append(max(r.time_s, 1e-3))  # not a tolerance: keeps a log-scale bar visible
        ax.bar(xs, ts, width=width, label=s)
    ax.axhline(report.time_limit, color="grey", linestyle="--", linewidth=0.8, label="time limit")
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xticks(range(len(images)))
    ax.set_xticklabels([str(i) for i in images])
    ax.set_xlabel("MNIST test image")
    ax.set_ylabel("wall time (s)")
    ax.set_title(f"reluverify bench: {report.question}, {report.model}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return str(path)
