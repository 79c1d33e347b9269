"""Minimal L1 distortion on the seed network: time to proven optimality per MILP solver.

    python benchmarks/min_l1.py [--images 10] [--timeout 60] [--solvers highs,cbc,gurobi]
        [--bound-method interval]

For each of the first ``--images`` test images of ``load_mnist()`` (true label y) and each solver:
``minimal_distortion(seed_mlp(), x, "l1", label=y, solver=s, time_limit=T, mip_gap=1e-4,
bound_method=...)`` (untargeted: one MILP per wrong class, each cut off at the best distance so far).
Recorded: verdict, the distance of the re-checked example, the proven lower bound (certified L1
radius), end-to-end wall time, and "optimal" when lower_bound >= distance * (1 - 1e-4). Gurobi's
size-limited pip licence makes the library raise ``LicenseLimitError``: recorded as "licence limit".

Checks done here (printed loudly, listed in the table): every example is re-checked by a float64
forward pass (class changed, L1 distance recomputed), and no solver's proven lower bound may exceed
a distance another solver actually reached on the same image.

Writes ``benchmarks/results/min_l1.md`` and ``min_l1.csv`` (rows appended as they finish).
"""

from __future__ import annotations

import argparse
import csv
import os
import shlex
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import machine, write_table  # noqa: E402
from verify_linf import library_revision  # noqa: E402

FIELDS = ["image", "label", "solver", "verdict", "distance", "lower_bound", "time_s", "optimal", "check", "message"]
GAP = 1e-4


def fnum(v, digits=6):
    return "" if v is None else f"{v:.{digits}g}"


def run_one(net, x, y, solver, timeout, bound_method):
    from reluverify.errors import LicenseLimitError, SolverNotAvailableError
    from reluverify.problems import minimal_distortion

    t0 = time.perf_counter()
    try:
        res = minimal_distortion(net, x, "l1", label=y, solver=solver, time_limit=timeout, mip_gap=GAP,
                                 bound_method=bound_method)
    except LicenseLimitError as exc:
        return {"verdict": "licence limit", "time_s": time.perf_counter() - t0, "message": str(exc)[:200]}
    except SolverNotAvailableError as exc:
        return {"verdict": "not installed", "time_s": time.perf_counter() - t0, "message": str(exc)[:200]}
    except Exception as exc:
        return {"verdict": "error", "time_s": time.perf_counter() - t0, "message": f"{type(exc).__name__}: {exc}"[:300]}
    dt = time.perf_counter() - t0
    out = {"verdict": res.verdict.value, "distance": res.distance, "lower_bound": res.lower_bound, "time_s": dt,
           "message": res.message}
    if res.x_adv is not None:
        lg = net.forward(res.x_adv)
        l1 = float(np.sum(np.abs(res.x_adv - x)))
        changed = int(np.argmax(lg)) != y
        in_box = bool(np.all(res.x_adv >= 0) and np.all(res.x_adv <= 1))
        ok = changed and in_box and abs(l1 - res.distance) <= 1e-9 * max(1.0, l1)
        out["check"] = "ok" if ok else f"FAILS CHECK (class changed {changed}, in [0,1] {in_box}, l1 {l1:.9g})"
    else:
        out["check"] = ""
    d, lb = res.distance, res.lower_bound
    out["optimal"] = "yes" if (d is not None and lb is not None and lb >= d * (1 - GAP)) else "no"
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=10)
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--solvers", default="highs,cbc,gurobi")
    ap.add_argument("--bound-method", default="symbolic", help="library default: symbolic")
    ap.add_argument("--out-dir", default=str(HERE / "results"))
    args = ap.parse_args(argv)
    command = "python benchmarks/min_l1.py " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    solvers = [s.strip() for s in args.solvers.split(",") if s.strip()]

    from reluverify.datasets import load_mnist
    from reluverify.zoo import seed_mlp

    net = seed_mlp()
    data = load_mnist()
    xs = data.x_test[: args.images].reshape(args.images, -1).astype(np.float64)
    ys = data.y_test[: args.images].astype(int)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / "min_l1.csv"
    with open(csv_path, "w", newline="") as fh:
        csv.DictWriter(fh, fieldnames=FIELDS).writeheader()

    revision = library_revision()  # at the start: other people may commit while this runs
    rows = []
    for i in range(args.images):
        for s in solvers:
            r = run_one(net, xs[i], int(ys[i]), s, args.timeout, args.bound_method)
            row = {"image": i, "label": int(ys[i]), "solver": s, "verdict": r["verdict"],
                   "distance": fnum(r.get("distance")), "lower_bound": fnum(r.get("lower_bound")),
                   "time_s": f"{r['time_s']:.2f}", "optimal": r.get("optimal", "no"), "check": r.get("check", ""),
                   "message": r.get("message", "").replace("\n", " ")}
            rows.append(row)
            with open(csv_path, "a", newline="") as fh:
                csv.DictWriter(fh, fieldnames=FIELDS).writerow(row)
            print(f"img {i:2d} {s:7s} {row['verdict']:13s} d={row['distance']:>10s} lb={row['lower_bound']:>10s} "
                  f"{row['time_s']:>7s}s opt={row['optimal']} {row['check']} {row['message'][:90]}", flush=True)
            if "FAILS" in row["check"]:
                print(f"!!!!!!!! image {i} {s}: example FAILS the float64 check: {row['check']}", file=sys.stderr, flush=True)

    # cross-solver soundness: a proven lower bound may not exceed a distance another solver reached
    problems = []
    for i in range(args.images):
        mine = [r for r in rows if r["image"] == i]
        reached = [(float(r["distance"]), r["solver"]) for r in mine if r["distance"] and r["check"] == "ok"]
        for r in mine:
            if not r["lower_bound"]:
                continue
            for d, s in reached:
                if float(r["lower_bound"]) > d * (1 + 1e-6) + 1e-6:
                    msg = (f"image {i}: {r['solver']} proved lower bound {r['lower_bound']} > distance {d:.6g} "
                           f"reached by {s} (UNSOUND BOUND)")
                    problems.append(msg)
                    print("!!!!!!!! " + msg, file=sys.stderr, flush=True)
        problems += [f"image {r['image']} {r['solver']}: {r['check']}" for r in mine if "FAILS" in r["check"]]

    summary = []
    for s in solvers:
        mine = [r for r in rows if r["solver"] == s]
        times = [float(r["time_s"]) for r in mine]
        ran = [r for r in mine if r["verdict"] not in ("licence limit", "not installed", "error")]
        summary.append([s, len(mine), len(ran), sum(r["verdict"] == "found" for r in mine),
                        sum(r["optimal"] == "yes" for r in mine),
                        sum(r["verdict"] == "licence limit" for r in mine),
                        f"{statistics.median(times):.2f}" if times else "-",
                        f"{statistics.median([float(r['time_s']) for r in ran]):.2f}" if ran else "-",
                        f"{sum(times):.1f}"])
    notes = [f"command: `{command}`", f"machine: {machine()}; library revision at the start {revision}",
             f"network: seed_mlp() 784-48-27-10; data: load_mnist() test images 0..{args.images - 1}, true labels "
             f"(classes {sorted(set(ys.tolist()))}); minimal_distortion(norm='l1', mip_gap={GAP}, time_limit={args.timeout:g}, "
             f"bound_method='{args.bound_method}'); time = end-to-end wall time of the call",
             f"optimal = lower_bound >= distance * (1 - {GAP})",
             "cross-checks: " + ("; ".join(problems) if problems else "none failed (examples re-checked; no lower bound above another solver's distance)")]
    sum_table = write_table(out / "min_l1.md", "Minimal L1 distortion on the seed network: HiGHS vs CBC vs Gurobi",
                            ["solver", "images", "ran", "found", "optimal within the time limit", "licence limit",
                             "median time s (all)", "median time s (ran)", "total s"], summary, notes)
    per = ["", "## Per image and solver", "",
           "| image | label | solver | verdict | distance | proven lower bound | time s | optimal | check | message |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    per += [f"| {r['image']} | {r['label']} | {r['solver']} | {r['verdict']} | {r['distance']} | {r['lower_bound']} | "
            f"{r['time_s']} | {r['optimal']} | {r['check']} | {r['message'][:160].replace('|', '/')} |" for r in rows]
    with open(out / "min_l1.md", "a") as fh:
        fh.write("\n".join(per) + "\n")
    print(sum_table)


if __name__ == "__main__":
    main()
