"""VNN-COMP-style runs: one instance (network + property + timeout), a resumable batch, a score.

* :func:`run_instance` reads an ONNX network and a VNN-LIB property, decides it with
  :func:`reluverify.problems.verification.check_property` (counterexamples re-checked by
  onnxruntime and the float64 forward pass) and writes the competition's result file.
* :func:`run_instances` walks an ``instances.csv`` (``onnx,vnnlib,timeout`` rows) and appends one
  CSV row per finished instance, flushed and fsynced before the next one starts: a run that is
  killed (even by SIGKILL) loses at most the instance in flight, and a rerun with the same output
  skips what is already there.
* :func:`score` compares such a results file with a ``ground_truth.csv``: correct, incorrect and
  unsolved counts and the competition's score (+10 per correct verdict, -150 per wrong one).

Both commands read a file by one rule, :func:`resolve_path`: ``NAME`` if it exists, else
``NAME.gz`` (the VNN-COMP benchmark files are stored gzipped under the names instances.csv gives).
"""

from __future__ import annotations

import csv
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import InputError, ModelFileError, ReluVerifyError
from .results import ShortRepr
from .solvers import DEFAULT_SOLVER

RESULT_FIELDS = ["onnx", "vnnlib", "timeout", "verdict", "time_s", "method", "message"]
CORRECT_POINTS = 10
INCORRECT_POINTS = -150


def resolve_path(path: str | os.PathLike, hint: str = "check the path") -> Path:
    """``path`` if it exists, else ``path`` + ``.gz`` if that exists (the VNN-COMP benchmark
    convention: ``instances.csv`` names ``onnx/X.onnx``, the file on disk is ``X.onnx.gz``).
    Raises :class:`~reluverify.errors.ModelFileError` naming both when neither exists."""
    p = Path(path)
    if p.exists():
        return p
    gz = p.with_name(p.name + ".gz")
    if gz.exists():
        return gz
    raise ModelFileError(f"{p} does not exist (nor {gz}); {hint}")


def _base(path: str | os.PathLike) -> str:
    """The file name without the known suffixes ``.gz``, ``.onnx`` and ``.vnnlib`` (other dots,
    as in ``prop_1_0.03.vnnlib``, are part of the name)."""
    name = Path(path).name
    for suffix in (".gz", ".onnx", ".vnnlib"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return name


def run_instance(onnx_path, vnnlib_path, timeout: float, *, solver: str = DEFAULT_SOLVER, out=None,
                 threads: int | None = None):
    """Decide one instance within ``timeout`` seconds (loading included). Returns the
    :class:`~reluverify.results.PropertyResult`; with ``out``, also writes the result file in the
    VNN-COMP format (``sat`` followed by the counterexample, or ``unsat``/``timeout``/``unknown``)."""
    from .io.onnx import from_onnx, onnxruntime_forward
    from .io.vnnlib import read_vnnlib, write_result
    from .problems.verification import check_property
    from .solvers import require_solver

    _check_positive(timeout, "timeout (seconds)")
    solver = require_solver(solver)
    onnx_path, vnnlib_path = resolve_path(onnx_path), resolve_path(vnnlib_path)
    t0 = time.perf_counter()
    network = from_onnx(onnx_path)
    prop = read_vnnlib(vnnlib_path, n_inputs=network.n_inputs, n_outputs=network.n_outputs)
    left = max(float(timeout) - (time.perf_counter() - t0), 0.05)
    result = check_property(network, prop, solver=solver, time_limit=left, threads=threads,
                            reference=lambda x: onnxruntime_forward(onnx_path, x))
    result.time_s = time.perf_counter() - t0
    if out is not None:
        write_result(out, str(result.verdict), result.x, result.y)
    return result


def _check_positive(value, what: str) -> float:
    """``value`` as a float; :class:`~reluverify.errors.InputError` unless it is finite and > 0."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{what} must be a positive number, got {value!r}") from None
    if not 0 < value < float("inf"):
        raise InputError(f"{what} must be a positive, finite number, got {value}")
    return value


def _existing_file(path, what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        state = "is a directory" if path.is_dir() else "does not exist"
        raise InputError(f"{what} {path} {state}; check the path")
    return path


def read_instances(path) -> list:
    """Rows ``(onnx, vnnlib, timeout)`` of an ``instances.csv`` (no header)."""
    path = _existing_file(path, "the instances file")
    rows = []
    with open(path, newline="") as fh:
        for lineno, row in enumerate(csv.reader(fh), 1):
            if not row or not "".join(row).strip():
                continue
            if len(row) != 3:
                raise InputError(f"{path}, line {lineno}: expected 'onnx,vnnlib,timeout', got {row}")
            try:
                timeout = float(row[2])
            except ValueError:
                raise InputError(f"{path}, line {lineno}: timeout {row[2]!r} is not a number") from None
            rows.append((row[0].strip(), row[1].strip(), timeout))
    return rows


def read_results(path) -> list:
    """The rows of a results CSV written by :func:`run_instances` (dicts); [] if it does not exist.
    A last line cut short by a kill is ignored."""
    if not Path(path).exists():
        return []
    with open(path, newline="") as fh:
        rows = [r for r in csv.DictReader(fh)]
    return [r for r in rows if r.get("message") is not None and r.get("verdict")]


def append_row(path, row: dict, fields=RESULT_FIELDS) -> None:
    """Append ``row`` to the CSV at ``path`` (header first if the file is new or empty), flushed
    and fsynced before returning, so a run killed right after loses nothing written."""
    path = Path(path)
    new = not path.exists() or path.stat().st_size == 0
    with open(path, "a", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        if new:
            w.writeheader()
        w.writerow(row)
        fh.flush()
        os.fsync(fh.fileno())


def run_instances(instances_csv, results_csv, *, root=None, solver: str = DEFAULT_SOLVER, limit: int | None = None,
                  timeout_scale: float = 1.0, cex_dir=None, progress=True, select=None) -> list:
    """Run every instance of ``instances_csv`` not yet in ``results_csv``; append one row each.

    ``root`` is the folder the instance paths are relative to (default: the CSV's folder).
    ``select(onnx, vnnlib) -> bool`` filters instances; ``limit`` stops after that many new ones.
    An instance that raises is recorded with verdict ``error`` and its message; the run goes on.
    Returns all rows of ``results_csv`` (old and new).
    """
    from .solvers import require_solver

    solver = require_solver(solver)
    _check_positive(timeout_scale, "timeout_scale")
    if limit is not None and limit < 0:
        raise InputError(f"limit must be 0 or more instances, got {limit}")
    if cex_dir is not None and Path(cex_dir).exists() and not Path(cex_dir).is_dir():
        raise InputError(f"the counterexample folder {cex_dir} is a file; name a folder")
    instances_csv = Path(instances_csv)
    instances = read_instances(instances_csv)
    root = instances_csv.parent if root is None else Path(root)
    if not root.is_dir():
        raise InputError(f"the root folder {root} of the instance paths is not a folder; check --root")
    results_csv = Path(results_csv)
    if results_csv.is_dir():
        raise InputError(f"the results file {results_csv} is a directory; name a CSV file")
    if results_csv.exists() and results_csv.stat().st_size > 0:
        with open(results_csv, newline="") as fh:
            header = next(csv.reader(fh), [])
        if header != RESULT_FIELDS:
            raise InputError(f"{results_csv} exists and is not a results file of `reluverify run` "
                             f"(its header is not {','.join(RESULT_FIELDS)}); name a new file")
    results_csv.parent.mkdir(parents=True, exist_ok=True)
    done = {(r["onnx"], r["vnnlib"]) for r in read_results(results_csv)}
    # counterexample file per instance row: NET-PROP.txt, with the row number when two rows share it
    stems = [f"{_base(o)}-{_base(v)}" for o, v, _ in instances]
    stems = [f"{s}-row{i}" if stems.count(s) > 1 else s for i, s in enumerate(stems, 1)]
    todo = [(r, stem) for r, stem in zip(instances, stems) if (r[0], r[1]) not in done
            and (select is None or select(r[0], r[1]))]
    if limit is not None:
        todo = todo[:limit]
    t_start = time.perf_counter()
    for n, ((onnx_rel, vnnlib_rel, timeout), stem) in enumerate(todo, 1):
        # another runner on the same results file may have done it meanwhile
        if n > 1 and (onnx_rel, vnnlib_rel) in {(r["onnx"], r["vnnlib"]) for r in read_results(results_csv)}:
            continue
        t0 = time.perf_counter()
        row = {"onnx": onnx_rel, "vnnlib": vnnlib_rel, "timeout": timeout}
        try:
            out = None
            if cex_dir is not None:
                Path(cex_dir).mkdir(parents=True, exist_ok=True)
                out = Path(cex_dir) / f"{stem}.txt"
            res = run_instance(_resolve(onnx_rel, root), _resolve(vnnlib_rel, root), timeout * timeout_scale,
                               solver=solver, out=out)
            row.update(verdict=str(res.verdict), time_s=f"{res.time_s:.3f}", method=res.method,
                       message=res.message.replace("\n", " ")[:300])
        except ReluVerifyError as exc:
            row.update(verdict="error", time_s=f"{time.perf_counter() - t0:.3f}", method="",
                       message=f"{type(exc).__name__}: {exc}".replace("\n", " ")[:300])
        except Exception as exc:  # a crash in one instance must not lose the batch
            row.update(verdict="error", time_s=f"{time.perf_counter() - t0:.3f}", method="",
                       message=f"crash {type(exc).__name__}: {exc}".replace("\n", " ")[:300])
        append_row(results_csv, row)
        if progress:
            _progress(n, len(todo), row, time.perf_counter() - t_start)
    if progress and todo:
        sys.stderr.write("\n")
    return read_results(results_csv)


def _resolve(path: str, root: Path) -> Path:
    """An instance path (relative ones are taken from ``root``), through :func:`resolve_path`."""
    p = Path(path)
    return resolve_path(p if p.is_absolute() else root / p,
                        hint="check the path in the instances file or the --root folder")


def _progress(n: int, total: int, row: dict, elapsed: float) -> None:
    width = 30
    filled = int(width * n / max(total, 1))
    bar = "#" * filled + "-" * (width - filled)
    name = f"{_base(row['onnx'])} {_base(row['vnnlib'])}"
    sys.stderr.write(f"\r[{bar}] {n}/{total} {elapsed:7.1f} s  {name[:40]:40s} {row['verdict']:8s}")
    sys.stderr.flush()


@dataclass(repr=False)
class Score(ShortRepr):
    """Counts against the ground truth; ``score`` uses the competition's +10 / -150."""

    correct: int
    incorrect: int
    unsolved: int
    missing: int
    score: int
    rows: list
    median_time: dict

    def summary(self) -> str:
        return (f"{self.correct} correct, {self.incorrect} incorrect, {self.unsolved} unsolved"
                + (f", {self.missing} not run" if self.missing else "") + f", score {self.score}")

    def table(self) -> str:
        lines = ["| result | count |", "|---|---|", f"| correct | {self.correct} |",
                 f"| incorrect | {self.incorrect} |", f"| unsolved (timeout/unknown/error) | {self.unsolved} |"]
        if self.missing:
            lines.append(f"| not run yet | {self.missing} |")
        lines.append(f"| score (+{CORRECT_POINTS} / {INCORRECT_POINTS}) | {self.score} |")
        return "\n".join(lines)


def _key(onnx: str, vnnlib: str) -> tuple:
    return (_base(onnx), _base(vnnlib))


def read_ground_truth(path) -> dict:
    """``{(network, property): "sat"/"unsat"}`` from a ``ground_truth.csv`` (columns ``onnx``,
    ``vnnlib``, ``ground_truth``); :class:`~reluverify.errors.InputError` if it is missing or
    lacks those columns."""
    path = _existing_file(path, "the ground-truth file")
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        if not {"onnx", "vnnlib", "ground_truth"} <= set(reader.fieldnames or ()):
            raise InputError(f"{path}: needs the columns onnx, vnnlib, ground_truth")
        return {_key(r["onnx"], r["vnnlib"]): (r["ground_truth"] or "").strip() for r in reader}


def score(results_csv, ground_truth_csv) -> Score:
    """Score a results file written by :func:`run_instances` against ``ground_truth.csv``
    (columns ``onnx``, ``vnnlib``, ``ground_truth`` with values ``sat``/``unsat``).
    Raises :class:`~reluverify.errors.InputError` when either file is missing or the results
    file has no rows in the results format."""
    results_csv = _existing_file(results_csv, "the results file")
    truth = read_ground_truth(ground_truth_csv)
    rows_read = read_results(results_csv)
    if not rows_read:
        raise InputError(f"{results_csv} has no rows in the results format ({','.join(RESULT_FIELDS)}); "
                         "pass the file written by `reluverify run --out`, then the ground truth")
    results = {_key(r["onnx"], r["vnnlib"]): r for r in rows_read}
    correct = incorrect = unsolved = 0
    times: dict = {"sat": [], "unsat": []}
    rows = []
    for key, expected in truth.items():
        r = results.get(key)
        if r is None:
            continue
        got = r["verdict"]
        if got in ("sat", "unsat"):
            if got == expected:
                correct += 1
                times[got].append(float(r["time_s"]))
                outcome = "correct"
            else:
                incorrect += 1
                outcome = "INCORRECT"
        else:
            unsolved += 1
            outcome = "unsolved"
        rows.append((key[0], key[1], expected, got, float(r["time_s"]), outcome))
    missing = len(truth) - len(rows)
    import statistics

    med = {k: (statistics.median(v) if v else None) for k, v in times.items()}
    return Score(correct, incorrect, unsolved, missing, CORRECT_POINTS * correct + INCORRECT_POINTS * incorrect,
                 rows, med)
