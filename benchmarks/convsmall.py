"""L-inf robustness of ERAN's convSmall (issue #15): decided counts and times per eps.

    OMP_NUM_THREADS=1 python benchmarks/convsmall.py [--images 100] [--eps 0.02,0.05,0.1]
        [--timeout 120] [--bound-method symbolic] [--start 0] [--tag convsmall] [--resume]

Network: ``../shared/benchmarks/eran/convSmallRELU__Point.onnx`` (Conv 16 4x4/2 -> ReLU -> Conv 32
4x4/2 -> ReLU -> Dense 100 -> ReLU -> Dense 10) imported with ``rv.from_onnx(path, mean=0.1307,
std=0.3081)``: the normalisation is folded into the first convolution, so eps is in pixel space
(pixels in [0, 1]). Images: the first ``--images`` rows of ``eran/mnist_test.csv`` (from row
``--start``: two processes can share a run, e.g. ``--start 0 --images 50`` and ``--start 50``).

Per image and eps: ``verify_robustness(net, x, eps, "linf", label=y, solver="highs",
time_limit=T, bound_method=B, reference=onnxruntime on (x - mean) / std)`` (the engine's stages:
bounds, attack, ReLU branch and bound, MILP), wall time of the call. ``B`` (``--bound-method``) is
the bound strategy of the MILP stage: ``symbolic`` by default here, because the engine's default
``lp`` overran the time limit on convSmall (one LP per neuron over ~3,600 columns; the time share
is checked between LPs: an instance with a 120 s limit was still in LP bounds after 150 s); a ``not_robust`` witness is re-checked here by
the float64 forward pass and by onnxruntime (class changed, inside the ball). Misclassified images
are skipped (counted). Setup measurements (once, image 0 at the largest eps): import time, the
time of symbolic and optimised bounds over the ball, and the time and peak Python-heap memory
(tracemalloc, which sees NumPy's buffers) of building the MILP arrays from the bounds.

One process, one BLAS thread (``OMP_NUM_THREADS=1`` is set here before NumPy loads). Results:
``benchmarks/results/{tag}.csv`` (one row per instance, appended as soon as known) and
``{tag}.md`` (rewritten after every instance). ``--report A,B,... --tag T`` only merges the CSVs of
runs ``A``, ``B``, ... (e.g. two processes sharing the images) into ``T.md``. ``--min-linf`` asks
``minimal_distortion(net, x, "linf", label=y, time_limit=T, bound_method=B)`` instead, per image (proven optimal:
gap between the witness's distance and the certified lower bound at most 1e-4).
"""

from __future__ import annotations

import argparse
import csv
import os
import shlex
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

os.environ["OMP_NUM_THREADS"] = "1"
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import BENCHMARKS, machine  # noqa: E402

import reluverify as rv  # noqa: E402
from reluverify.runner import append_row  # noqa: E402

ERAN = BENCHMARKS / "eran"
MODEL = ERAN / "convSmallRELU__Point.onnx"
CSV_IMAGES = ERAN / "mnist_test.csv"
MEAN, STD = 0.1307, 0.3081
FIELDS = ["image", "label", "eps", "verdict", "time_s", "detail"]
DECIDED = ("robust", "not_robust")


def setup_measurements(net, x, eps) -> dict:
    from reluverify.formulation import network_arrays

    box = rv.Box(np.clip(x - eps, 0, 1), np.clip(x + eps, 0, 1))
    out = {}
    for method in ("interval", "symbolic", "optimised"):
        t = time.perf_counter()
        b = rv.compute_bounds(net, box, method)
        out[f"bounds_{method}_s"] = time.perf_counter() - t  # first call of this process (one-time costs in)
        out[f"unstable_{method}"] = sum(b.unstable_counts())
        reps = []
        for _ in range(1 if method == "optimised" else 3):  # what later queries pay: median of more calls
            t = time.perf_counter()
            rv.compute_bounds(net, box, method)
            reps.append(time.perf_counter() - t)
        out[f"bounds_{method}_repeat_s"] = float(np.median(reps))
    b = rv.compute_bounds(net, box, "symbolic")
    tracemalloc.start()
    t = time.perf_counter()
    arrays = network_arrays(net, b)
    out["milp_build_s"] = time.perf_counter() - t
    out["milp_build_peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    out["milp_binaries"] = arrays.n_binaries
    return out


def summarise(rows: list, eps_list: list) -> list:
    lines = ["| eps | images | misclassified | robust | not robust | unknown | decided | mean s | median s | max s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for eps in eps_list:
        rs = [r for r in rows if float(r["eps"]) == eps]
        run = [r for r in rs if r["verdict"] != "misclassified"]
        times = [float(r["time_s"]) for r in run]
        count = {v: sum(r["verdict"] == v for r in run) for v in ("robust", "not_robust", "unknown")}
        decided = count["robust"] + count["not_robust"]
        lines.append(
            f"| {eps:g} | {len(rs)} | {len(rs) - len(run)} | {count['robust']} | {count['not_robust']} | "
            f"{count['unknown']} | {decided}/{len(run)} | "
            + (f"{statistics.mean(times):.3f} | {statistics.median(times):.3f} | {max(times):.2f} |" if times
               else "- | - | - |"))
    return lines


def write_md(path: Path, rows: list, eps_list: list, setup: dict, args, command: str) -> None:
    lines = [f"# convSmall (ERAN, MNIST), L-inf robustness, pixel space", "",
             f"Command: `{command}`", "",
             f"Machine: {machine()}; HiGHS, one BLAS thread, time limit {args.timeout:g} s per instance, "
             f"MILP-stage bounds {args.bound_method}.", "",
             *summarise(rows, eps_list), "",
             "Setup (image 0, eps = the largest above): "
             + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in setup.items()), ""]
    path.write_text("\n".join(lines))


def command_line(argv) -> str:
    return "OMP_NUM_THREADS=1 python benchmarks/convsmall.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))


def min_linf(args, command: str) -> int:
    net = rv.from_onnx(MODEL, mean=MEAN, std=STD)
    data = np.loadtxt(CSV_IMAGES, delimiter=",", max_rows=args.images, ndmin=2)[args.start:]
    fields = ["image", "label", "verdict", "distance", "lower_bound", "gap", "optimal", "time_s", "detail"]
    path = HERE / "results" / f"{args.tag}.csv"
    if path.exists():
        path.unlink()
    rows = []
    for i, row in enumerate(data, start=args.start):
        x, y = row[1:] / 255.0, int(row[0])
        t = time.perf_counter()
        res = rv.minimal_distortion(net, x, "linf", label=y, time_limit=args.timeout, bound_method=args.bound_method)
        wall = time.perf_counter() - t
        d, lb = res.distance, res.lower_bound
        gap = (d - lb) if d is not None and lb is not None else None
        ok = str(res.verdict) == "found" and gap is not None and gap <= 1e-4
        if str(res.verdict) == "found":
            assert np.max(np.abs(res.x_adv - x)) == d and int(np.argmax(net.forward(res.x_adv))) != y
        out = dict(image=i, label=y, verdict=str(res.verdict), distance=d, lower_bound=lb, gap=gap, optimal=ok,
                   time_s=round(wall, 3), detail=res.message)
        append_row(path, out, fields)
        rows.append(out)
        print(out, flush=True)
        times = [r["time_s"] for r in rows]
        lines = ["# convSmall: minimal L-inf distortion (pixel space)", "", f"Command: `{command}`", "",
                 f"Machine: {machine()}; HiGHS, one BLAS thread, time limit {args.timeout:g} s per image.", "",
                 f"Images: {len(rows)}; proven optimal (gap <= 1e-4): {sum(r['optimal'] for r in rows)}; "
                 f"mean {statistics.mean(times):.2f} s, median {statistics.median(times):.2f} s, max {max(times):.2f} s.",
                 "", "| image | verdict | distance | lower bound | time s |", "|---|---|---|---|---|"]
        lines += [f"| {r['image']} | {r['verdict']} | {r['distance']} | {r['lower_bound']} | {r['time_s']} |" for r in rows]
        (HERE / "results" / f"{args.tag}.md").write_text("\n".join(lines) + "\n")
    return 0


def merge(tags: list, tag: str) -> int:
    rows = []
    for t in tags:
        rows += list(csv.DictReader(open(HERE / "results" / f"{t}.csv")))
    eps_list = sorted({float(r["eps"]) for r in rows})
    lines = [f"# convSmall (ERAN, MNIST), L-inf robustness, pixel space (merged: {', '.join(tags)})", "",
             "Each part's command, machine and setup measurements are in its own .md file.", "",
             *summarise(rows, eps_list), ""]
    failed = [r for r in rows if "FAILED" in r["detail"]]
    lines.append(f"Witnesses that failed the float64/onnxruntime re-check: {len(failed)}.")
    (HERE / "results" / f"{tag}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=100)
    ap.add_argument("--eps", default="0.02,0.05,0.1")
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--bound-method", default="symbolic")
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--tag", default="convsmall")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--min-linf", action="store_true")
    ap.add_argument("--report", default="", help="merge the CSVs of these comma-separated tags into --tag's .md")
    args = ap.parse_args(argv)
    if args.report:
        return merge(args.report.split(","), args.tag)
    if not MODEL.exists() or not CSV_IMAGES.exists():
        print(f"needs {MODEL} and {CSV_IMAGES} (the shared ERAN files)", file=sys.stderr)
        return 2
    from reluverify.io.onnx import onnxruntime_forward

    if args.min_linf:
        return min_linf(args, command_line(argv))
    eps_list = [float(e) for e in args.eps.split(",")]
    command = "OMP_NUM_THREADS=1 python benchmarks/convsmall.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    t = time.perf_counter()
    net = rv.from_onnx(MODEL, mean=MEAN, std=STD)
    import_s = time.perf_counter() - t
    data = np.loadtxt(CSV_IMAGES, delimiter=",", max_rows=args.images, ndmin=2)[args.start:]
    labels, images = data[:, 0].astype(int), data[:, 1:] / 255.0

    def reference(x):
        return onnxruntime_forward(MODEL, (np.asarray(x) - MEAN) / STD)

    setup = {"import_s": import_s, **setup_measurements(net, images[0], max(eps_list))}
    print(setup, flush=True)
    out_dir = HERE / "results"
    csv_path, md_path = out_dir / f"{args.tag}.csv", out_dir / f"{args.tag}.md"
    rows = []
    if args.resume and csv_path.exists():
        rows = list(csv.DictReader(open(csv_path)))
    elif csv_path.exists():
        csv_path.unlink()
    done = {(int(r["image"]), float(r["eps"])) for r in rows}
    for eps in eps_list:
        for i, (x, y) in enumerate(zip(images, labels), start=args.start):
            if (i, eps) in done:
                continue
            if int(np.argmax(net.forward(x))) != y:
                row = dict(image=i, label=y, eps=eps, verdict="misclassified", time_s=0.0, detail="")
            else:
                t = time.perf_counter()
                res = rv.verify_robustness(net, x, eps, "linf", label=int(y), solver="highs",
                                           time_limit=args.timeout, bound_method=args.bound_method,
                                           reference=reference)
                wall = time.perf_counter() - t
                detail = res.message
                if str(res.verdict) == "not_robust":
                    adv = res.x_adv
                    ok = (np.max(np.abs(adv - x)) <= eps + 1e-12 and adv.min() >= 0 and adv.max() <= 1
                          and int(np.argmax(net.forward(adv))) != y
                          and int(np.argmax(reference(adv[None])[0])) != y)
                    if not ok:
                        print(f"!!! witness of image {i} eps {eps} fails the re-check", flush=True)
                        detail = "WITNESS FAILED RE-CHECK: " + detail
                row = dict(image=i, label=y, eps=eps, verdict=str(res.verdict), time_s=round(wall, 4), detail=detail)
            append_row(csv_path, row, FIELDS)
            rows.append({k: str(v) for k, v in row.items()})
            write_md(md_path, rows, eps_list, setup, args, command)
            print(row, flush=True)
    write_md(md_path, rows, eps_list, setup, args, command)
    print("\n".join(summarise(rows, eps_list)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
