"""VNN-COMP 2022 benchmarks (mnist_fc, acasxu) from ../shared: reluverify (and Marabou) vs ground truth.

    python benchmarks/vnncomp.py --benchmark mnist_fc [--filter 256x2] [--tools reluverify,marabou]
    python benchmarks/vnncomp.py --benchmark acasxu
    python benchmarks/vnncomp.py --report          # only rebuild the table from the CSVs

Each tool appends one row per finished instance to benchmarks/results/vnncomp/<benchmark>-<tool>.csv
(the runner's format), so an interrupted run resumes where it stopped. The table
(benchmarks/results/vnncomp.md) scores every CSV against the benchmark's ground_truth.csv with the
competition's +10 per correct verdict and -150 per wrong one. Marabou (maraboupy, benchmark-only
dependency) reads the same ONNX and VNN-LIB files; its counterexamples are re-checked like ours.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine  # noqa: E402

from reluverify.runner import _resolve, append_row, read_instances, read_results, run_instances, score  # noqa: E402

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "benchmarks" / "vnncomp2022"
OUT = Path(__file__).resolve().parent / "results" / "vnncomp"
TABLE = Path(__file__).resolve().parent / "results" / "vnncomp.md"


def _gunzipped(path: Path, tmp: Path) -> Path:
    if path.suffix != ".gz":
        return path
    dest = tmp / path.name[:-3]
    if not dest.exists():
        with gzip.open(path, "rb") as src, open(dest, "wb") as dst:
            shutil.copyfileobj(src, dst)
    return dest


def run_marabou(bench: str, results_csv: Path, select, timeout_scale: float) -> None:
    from maraboupy import Marabou

    from reluverify.check import check_counterexample
    from reluverify.io.onnx import from_onnx, onnxruntime_forward
    from reluverify.io.vnnlib import read_vnnlib

    root = SHARED / bench
    done = {(r["onnx"], r["vnnlib"]) for r in read_results(results_csv)}
    todo = [r for r in read_instances(root / "instances.csv") if (r[0], r[1]) not in done and select(r[0], r[1])]
    tmp = Path(tempfile.mkdtemp(prefix="marabou-"))
    for k, (onnx_rel, vnnlib_rel, timeout) in enumerate(todo, 1):
        onnx_path = _gunzipped(_resolve(onnx_rel, root), tmp)
        vnn_path = _gunzipped(_resolve(vnnlib_rel, root), tmp)
        row = {"onnx": onnx_rel, "vnnlib": vnnlib_rel, "timeout": timeout, "method": "marabou"}
        t0 = time.perf_counter()
        try:
            network = Marabou.read_onnx(str(onnx_path))
            left = max(1, int(timeout * timeout_scale - (time.perf_counter() - t0)))
            result = network.solve(propertyFilename=str(vnn_path),
                                   options=Marabou.createOptions(timeoutInSeconds=left, verbosity=0))
            code, vals = result[0], result[1]
            msg = str(code)
            if code == "sat":
                net = from_onnx(onnx_path)
                prop = read_vnnlib(vnn_path)
                x = np.array([vals[v] for v in np.asarray(network.inputVars[0]).ravel()], dtype=np.float64)
                chk = check_counterexample(net, prop, x, reference=lambda p: onnxruntime_forward(onnx_path, p))
                if not chk.ok:
                    code, msg = "unknown", f"sat, but the point fails the check: {chk.reason}"
            verdict = code if code in ("sat", "unsat") else ("timeout" if "TIMEOUT" in str(code).upper() else "unknown")
        except Exception as exc:  # noqa: BLE001 - a peer's crash is recorded, not fatal
            verdict, msg = "error", f"{type(exc).__name__}: {exc}"
        row.update(verdict=verdict, time_s=f"{time.perf_counter() - t0:.3f}", message=msg[:300])
        append_row(results_csv, row)
        print(f"marabou {k}/{len(todo)} {Path(onnx_rel).name} {Path(vnnlib_rel).name}: {verdict} "
              f"{row['time_s']} s", flush=True)


def _net_group(onnx_rel: str, prop: str) -> str:
    name = Path(onnx_rel).name.split(".")[0]
    if "mnist" in name:
        return name.replace("mnist-net_", "")
    p = int(prop.split("_")[1]) if prop.startswith("prop_") else 0
    return f"ACAS Xu {prop}" if p <= 4 else "ACAS Xu prop_5-10"


def report() -> str:
    rows = []
    notes = []
    for csv_path in sorted(OUT.glob("*.csv")):
        bench, tool = csv_path.stem.split("-", 1)
        gt = SHARED / bench / "ground_truth.csv"
        if not gt.exists():
            continue
        sc = score(csv_path, gt)
        totals: dict = {}
        with open(gt, newline="") as fh:
            for r in csv.DictReader(fh):
                key = _net_group(r["onnx"], r["vnnlib"].split(".vnnlib")[0])
                totals[key] = totals.get(key, 0) + 1
        groups: dict = {}
        for onnx, prop, expected, got, t, outcome in sc.rows:
            g = groups.setdefault(_net_group(onnx, prop), {"n": 0, "correct": 0, "incorrect": 0, "unsolved": 0, "t": []})
            g["n"] += 1
            g["correct" if outcome == "correct" else "incorrect" if outcome == "INCORRECT" else "unsolved"] += 1
            if outcome == "correct":
                g["t"].append(t)
        total = {"n": 0, "correct": 0, "incorrect": 0, "unsolved": 0, "t": []}
        for g in groups.values():
            for key in total:
                total[key] += g[key]
        if len(groups) > 1:
            groups["**all**"] = total
        totals["**all**"] = sum(v for k, v in totals.items() if k in groups)
        for name, g in sorted(groups.items(), key=lambda kv: (kv[0] == "**all**", kv[0])):
            med = f"{statistics.median(g['t']):.2f}" if g["t"] else "-"
            rows.append(f"| {bench} | {name} | {tool} | {g['n']} of {totals.get(name, g['n'])} | {g['correct']} | {g['incorrect']} | "
                        f"{g['unsolved']} | {10 * g['correct'] - 150 * g['incorrect']} | {med} |")
        for onnx, prop, expected, got, t, outcome in sc.rows:
            if outcome == "INCORRECT":
                notes.append(f"- INCORRECT ({tool}): {onnx} {prop}: expected {expected}, got {got}")
    text = "\n".join([
        "# VNN-COMP 2022 benchmarks (mnist_fc, acasxu)",
        "",
        f"Machine: {machine()}. Regenerate: `python benchmarks/vnncomp.py --benchmark mnist_fc` and "
        "`--benchmark acasxu` (resumable; `--report` rebuilds this table from benchmarks/results/vnncomp/*.csv).",
        "Official timeouts per instance (120 s for 256x2, 300 s for 256x4/6, 116 s for ACAS Xu) unless a row says "
        "otherwise; score +10 per correct verdict, -150 per wrong one; median time over correct verdicts.",
        "",
        "| benchmark | network | tool | instances run | correct | incorrect | unsolved | score | median s |",
        "|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        *(notes or ["No incorrect verdicts."]),
        "",
    ])
    TABLE.write_text(text)
    return text


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--benchmark", choices=["mnist_fc", "acasxu"])
    ap.add_argument("--tools", default="reluverify", help="comma list: reluverify, marabou")
    ap.add_argument("--filter", default="", help="only instances whose onnx or vnnlib path contains this text")
    ap.add_argument("--only", default="", help="comma list of property names (e.g. prop_2_0.05): only these, "
                    "besides --filter (to share a re-run between processes)")
    ap.add_argument("--timeout-scale", type=float, default=1.0)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--solver", default="highs")
    ap.add_argument("--report", action="store_true", help="only rebuild the table")
    args = ap.parse_args()
    if not SHARED.exists():
        print(f"the VNN-COMP files are not here ({SHARED}); nothing to run")
        return 0
    if not args.report:
        if not args.benchmark:
            ap.error("--benchmark is required unless --report")
        OUT.mkdir(parents=True, exist_ok=True)

        only = {p for p in args.only.split(",") if p}

        def select(onnx, vnn):
            if only and Path(vnn).name.split(".vnnlib")[0] not in only:
                return False
            return args.filter in onnx or args.filter in vnn

        for tool in args.tools.split(","):
            csv_path = OUT / f"{args.benchmark}-{tool}.csv"
            if tool == "reluverify":
                run_instances(SHARED / args.benchmark / "instances.csv", csv_path, solver=args.solver,
                              limit=args.limit, timeout_scale=args.timeout_scale, select=select)
            elif tool == "marabou":
                run_marabou(args.benchmark, csv_path, select, args.timeout_scale)
            else:
                ap.error(f"unknown tool {tool}")
    print(report())
    return 0


if __name__ == "__main__":
    sys.exit(main())
