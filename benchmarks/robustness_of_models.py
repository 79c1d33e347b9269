"""The course notebook's question: are shallow models (trees, forests, boosted trees) as easy to fool?

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/robustness_of_models.py
        [--images 20] [--norm-images l1=10,l0=10] [--timeout 30] [--norms linf,l1,l0]
        [--models mlp,tree,forest,boosted] [--resume] [--norm-timeout l0=5]

Models, on the bundled MNIST data (``reluverify.datasets.load_mnist()``): ``mlp``: the seed
network (784-48-27-10, ``reluverify.zoo.seed_mlp``); ``tree``: ``DecisionTreeClassifier(max_depth=12)``;
``forest``: ``RandomForestClassifier(100, max_depth=10)``; ``boosted``: ``XGBClassifier(50 rounds,
depth 6)`` (needs xgboost; skipped otherwise). Trees are trained here, one thread, seed 0.

Images: the first ``--images`` test images that every model classifies correctly (``--norm-images``:
fewer for some norms, the first of the same list). Per model, image
and norm: ``minimal_distortion(model, x, norm, label=y, time_limit=T, threads=1)``; recorded: the
re-checked distance, the certified lower bound, optimal or not, time. From them: the median exact
distortion per model and norm, and verified robust accuracy at a few radii (an image counts as
robust at ``eps`` when its certified lower bound exceeds ``eps``, as not robust when its checked
distance is at most ``eps``, unknown otherwise).

``--norm-timeout``: another time limit for some norms (``T`` for the others).

Writes ``benchmarks/results/robustness_of_models.md`` and ``.csv`` (rows as they finish; ``--resume``
keeps the rows of the CSV already there with the same time limit and computes only the others; rows
with another time limit stay in the file, unused), and,
when matplotlib is installed, ``docs/figures/models_robust_accuracy.png`` (verified robust fraction
vs radius per norm, with the band of undecided images) and ``docs/figures/models_distortions.png``
(the distribution of the minimal distortions per model and norm).
"""

from __future__ import annotations

import argparse
import csv
import shlex
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import machine, write_table  # noqa: E402

import reluverify as rv  # noqa: E402
from reluverify.datasets import load_mnist  # noqa: E402
from reluverify.tolerances import OPTIMAL_REL_GAP  # noqa: E402

FIELDS = ["model", "norm", "image", "label", "verdict", "distance", "lower_bound", "optimal", "time_s", "time_limit"]
EPS = {"linf": [0.002, 0.005, 0.01, 0.02, 0.05], "l1": [0.01, 0.05, 0.1, 0.5, 1.0], "l0": [1, 2, 3, 5, 10]}


def models(names, data):
    X = data.x_train.reshape(len(data.x_train), -1)
    out = {}
    for name in names:
        t0 = time.perf_counter()
        if name == "mlp":
            from reluverify.zoo import seed_mlp

            m = seed_mlp()
        elif name == "tree":
            from sklearn.tree import DecisionTreeClassifier

            m = rv.from_sklearn(DecisionTreeClassifier(max_depth=12, random_state=0).fit(X, data.y_train))
        elif name == "forest":
            from sklearn.ensemble import RandomForestClassifier

            m = rv.from_sklearn(RandomForestClassifier(100, max_depth=10, random_state=0, n_jobs=1)
                                .fit(X, data.y_train))
        elif name == "boosted":
            try:
                import xgboost as xgb
            except ImportError:
                print("xgboost not installed: the boosted model is skipped", flush=True)
                continue
            m = rv.from_xgboost(xgb.XGBClassifier(n_estimators=50, max_depth=6, n_jobs=1, random_state=0)
                                .fit(X, data.y_train))
        else:
            raise SystemExit(f"unknown model {name!r}")
        out[name] = (m, time.perf_counter() - t0)
    return out


def predict(m, X):
    return m.predict_class(X) if isinstance(m, rv.TreeEnsemble) else np.argmax(m.forward(X), axis=1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=20)
    ap.add_argument("--norm-images", default="", help="e.g. l1=10,l0=10: fewer images for those norms")
    ap.add_argument("--timeout", type=float, default=30.0)
    ap.add_argument("--norms", default="linf,l1,l0")
    ap.add_argument("--norm-timeout", default="", help="e.g. l0=5: another time limit for those norms")
    ap.add_argument("--models", default="mlp,tree,forest,boosted")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--report-only", action="store_true", help="with --resume: no new questions; the report "
                    "covers the images every model has answered")
    args = ap.parse_args()
    rv.set_blas_threads(1)
    norms = args.norms.split(",")
    n_images = {n: args.images for n in norms}
    for item in filter(None, args.norm_images.split(",")):
        k, v = item.split("=")
        n_images[k] = min(int(v), args.images)
    limit = {n: args.timeout for n in norms}
    for item in filter(None, args.norm_timeout.split(",")):
        k, v = item.split("=")
        limit[k] = float(v)
    data = load_mnist()
    ms = models(args.models.split(","), data)
    X = data.x_test.reshape(len(data.x_test), -1)
    acc = {k: float(np.mean(predict(m, X) == data.y_test)) for k, (m, _) in ms.items()}
    ok = np.ones(len(X), bool)
    for m, _ in ms.values():
        ok &= predict(m, X) == data.y_test
    chosen = np.flatnonzero(ok)[:args.images].tolist()
    out_csv = HERE / "results" / "robustness_of_models.csv"
    command = ("OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/robustness_of_models.py "
               + shlex.join(sys.argv[1:]))
    done, other = {}, []
    if args.resume and out_csv.exists():
        with open(out_csv, newline="") as fh:
            for r in csv.DictReader(fh):
                if r.get("time_limit") and float(r["time_limit"]) == limit.get(r["norm"], args.timeout):
                    r["time_s"] = float(r["time_s"])
                    r["optimal"] = r["optimal"] == "True"
                    done[(r["model"], r["norm"], int(r["image"]))] = r
                else:
                    other.append(r)  # another time limit: kept in the file, not used
    rows = []
    with open(out_csv, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=FIELDS)
        w.writeheader()
        for key, row in done.items():  # every finished row is written back at once: a stopped run loses none
            w.writerow(row)
        for row in other:
            w.writerow(row)
        fh.flush()
        for norm in norms:
            for i in chosen[:n_images[norm]]:  # image by image, every model: a stopped run stays balanced
                for name, (m, _) in ms.items():
                    if (name, norm, i) in done:
                        rows.append(done[(name, norm, i)])
                        continue
                    elif args.report_only:
                        continue
                    else:
                        x, y = X[i], int(data.y_test[i])
                        t0 = time.perf_counter()
                        r = rv.minimal_distortion(m, x, norm, label=y, time_limit=limit[norm], threads=1)
                        row = {"model": name, "norm": norm, "image": i, "label": y, "verdict": str(r.verdict),
                               "time_s": round(time.perf_counter() - t0, 2), "time_limit": limit[norm],
                               "lower_bound": "" if r.lower_bound is None else f"{r.lower_bound:.6g}"}
                        if r.verdict == rv.Verdict.FOUND:
                            assert predict(m, r.x_adv[None])[0] != y
                            if isinstance(m, rv.TreeEnsemble) and m.reference is not None:
                                assert m.framework_predict(r.x_adv) != y
                            d = float(r.distance)
                            row.update(distance=f"{d:.6g}",
                                       optimal=d - r.lower_bound <= OPTIMAL_REL_GAP * max(1.0, d))
                        else:
                            row.update(distance="", optimal=False)
                        print(row, flush=True)
                    w.writerow(row)
                    fh.flush()
                    rows.append(row)
        used = {(r["model"], r["norm"], int(r["image"])) for r in rows}
        complete = {(norm, int(r["image"])) for r in rows for norm in [r["norm"]]
                    if all((k, norm, int(r["image"])) in used for k in ms)}
        rows = [r for r in rows if (r["norm"], int(r["image"])) in complete]
    summary = []
    for norm in norms:
        for name in ms:
            rs = [r for r in rows if r["model"] == name and r["norm"] == norm]
            if not rs:
                continue
            d = [float(r["distance"]) for r in rs if r["distance"] != ""]
            lb = [float(r["lower_bound"]) if r["lower_bound"] != "" else 0.0 for r in rs]
            opt = [float(r["distance"]) for r in rs if r["optimal"]]
            cells = []
            for eps in EPS[norm]:
                robust = sum(b > eps for b in lb)
                broken = sum(r["distance"] != "" and float(r["distance"]) <= eps for r in rs)
                cells.append(f"{robust}/{len(rs) - robust - broken}")
            summary.append([name, norm, f"{acc[name]:.3f}", len(rs), sum(bool(r["optimal"]) for r in rs),
                            f"{statistics.median(d):.4g}" if d else "", f"{statistics.median(lb):.4g}",
                            f"{min(d):.4g}" if d else "", f"{max(d):.4g}" if d else "",
                            f"{statistics.median(opt):.4g}" if opt else "",
                            f"{statistics.median([r['time_s'] for r in rs]):.2f}"] + cells)
    header = ["model", "norm", "test acc", "images", "optimal", "median dist", "median bound", "min", "max",
              "median of the optimal", "median s"]
    eps_cols = [f"robust/unknown at eps #{k + 1}" for k in range(5)]
    notes = [f"Machine: {machine()}; one BLAS thread, HiGHS one thread. Command: `{command}`",
             "Models: " + "; ".join(f"{k}: {m.describe() if isinstance(m, rv.TreeEnsemble) else m.name} "
                                    f"(test accuracy {acc[k]:.3f})" for k, (m, _) in ms.items()),
             f"Images: the first {len(chosen)} test images every model classifies correctly ({chosen}); "
             + ", ".join(f"{n}: the first {n_images[n]}" for n in norms),
             "median dist: of the checked adversarial examples (an upper bound on the minimum where not optimal); "
             "median bound: of the certified lower bounds",
             "Time limit per question: " + "; ".join(f"{n}: {limit[n]:g} s" for n in norms),
             "Radii of the robust-accuracy columns: " + "; ".join(f"{n}: {EPS[n]}" for n in norms)]
    text = write_table(out_csv.with_suffix(".md"), "Robustness of an MLP, a decision tree, a forest and boosted trees",
                       header + eps_cols, summary, notes)
    print(text)
    plots(rows, ms, acc, norms)
    return 0


def plots(rows, ms, acc, norms) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    figs = HERE.parent / "docs" / "figures"
    figs.mkdir(exist_ok=True)
    top = {"linf": 0.1, "l1": 3.0, "l0": 15}
    fig, axes = plt.subplots(1, len(norms), figsize=(5 * len(norms), 3.8), squeeze=False)
    for ax, norm in zip(axes[0], norms):
        grid = np.linspace(0, top[norm], 201)
        for k, name in enumerate(ms):
            rs = [r for r in rows if r["model"] == name and r["norm"] == norm]
            if not rs:
                continue
            lb = np.array([float(r["lower_bound"]) if r["lower_bound"] != "" else 0.0 for r in rs])
            d = np.array([float(r["distance"]) if r["distance"] != "" else np.inf for r in rs])
            robust = [(lb > e).mean() for e in grid]
            not_broken = [(d > e).mean() for e in grid]
            line, = ax.plot(grid, robust, label=f"{name} (acc {acc[name]:.2f})", color=f"C{k}")
            ax.fill_between(grid, robust, not_broken, color=line.get_color(), alpha=0.2, linewidth=0)
        ax.set_xlabel(f"{norm} radius")
        ax.set_ylabel("verified robust fraction")
        ax.set_title(f"{norm}: {len(rs)} images (band: undecided)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(figs / "models_robust_accuracy.png", dpi=100)
    plt.close(fig)
    fig, axes = plt.subplots(1, len(norms), figsize=(5 * len(norms), 3.8), squeeze=False)
    for ax, norm in zip(axes[0], norms):
        data, labels = [], []
        for name in ms:
            rs = [r for r in rows if r["model"] == name and r["norm"] == norm]
            if rs:
                data.append([float(r["distance"]) for r in rs if r["distance"] != ""])
                labels.append(f"{name}\n{sum(bool(r['optimal']) for r in rs)}/{len(rs)} opt")
        ax.boxplot(data, showfliers=True)
        ax.set_xticks(range(1, len(labels) + 1), labels, fontsize=8)
        ax.set_yscale("log")
        ax.set_ylabel(f"minimal {norm} distortion (checked example)")
        ax.set_title(norm)
    fig.tight_layout()
    fig.savefig(figs / "models_distortions.png", dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
