"""The course notebook's question: are shallow models (trees, forests, boosted trees) as easy to fool?

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/robustness_of_models.py
        [--images 20] [--timeout 30] [--norms linf,l1,l0] [--models mlp,tree,forest,boosted]

Models, on the bundled MNIST data (``reluverify.datasets.load_mnist()``): ``mlp``: the seed
network (784-48-27-10, ``reluverify.zoo.seed_mlp``); ``tree``: ``DecisionTreeClassifier(max_depth=12)``;
``forest``: ``RandomForestClassifier(100, max_depth=10)``; ``boosted``: ``XGBClassifier(50 rounds,
depth 6)`` (needs xgboost; skipped otherwise). Trees are trained here, one thread, seed 0.

Images: the first ``--images`` test images that every model classifies correctly. Per model, image
and norm: ``minimal_distortion(model, x, norm, label=y, time_limit=T, threads=1)``; recorded: the
re-checked distance, the certified lower bound, optimal or not, time. From them: the median exact
distortion per model and norm, and verified robust accuracy at a few radii (an image counts as
robust at ``eps`` when its certified lower bound exceeds ``eps``, as not robust when its checked
distance is at most ``eps``, unknown otherwise).

Writes ``benchmarks/results/robustness_of_models.md`` and ``.csv`` (rows as they finish), and
``robustness_of_models.png`` (robust accuracy vs L-inf radius) when matplotlib is installed.
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

FIELDS = ["model", "norm", "image", "label", "verdict", "distance", "lower_bound", "optimal", "time_s"]
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
    ap.add_argument("--timeout", type=float, default=30.0)
    ap.add_argument("--norms", default="linf,l1,l0")
    ap.add_argument("--models", default="mlp,tree,forest,boosted")
    args = ap.parse_args()
    rv.set_blas_threads(1)
    norms = args.norms.split(",")
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
    rows = []
    with open(out_csv, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=FIELDS)
        w.writeheader()
        for norm in norms:
            for name, (m, _) in ms.items():
                for i in chosen:
                    x, y = X[i], int(data.y_test[i])
                    t0 = time.perf_counter()
                    r = rv.minimal_distortion(m, x, norm, label=y, time_limit=args.timeout, threads=1)
                    row = {"model": name, "norm": norm, "image": i, "label": y, "verdict": str(r.verdict),
                           "time_s": round(time.perf_counter() - t0, 2),
                           "lower_bound": "" if r.lower_bound is None else f"{r.lower_bound:.6g}"}
                    if r.verdict == rv.Verdict.FOUND:
                        assert predict(m, r.x_adv[None])[0] != y
                        d = float(r.distance)
                        row.update(distance=f"{d:.6g}", optimal=d - r.lower_bound <= OPTIMAL_REL_GAP * max(1.0, d))
                    else:
                        row.update(distance="", optimal=False)
                    print(row, flush=True)
                    w.writerow(row)
                    fh.flush()
                    rows.append(row)
    summary = []
    for norm in norms:
        for name in ms:
            rs = [r for r in rows if r["model"] == name and r["norm"] == norm]
            if not rs:
                continue
            d = [float(r["distance"]) for r in rs if r["distance"] != ""]
            lb = [float(r["lower_bound"]) if r["lower_bound"] != "" else 0.0 for r in rs]
            cells = []
            for eps in EPS[norm]:
                robust = sum(b > eps for b in lb)
                broken = sum(r["distance"] != "" and float(r["distance"]) <= eps for r in rs)
                cells.append(f"{robust}/{len(rs) - robust - broken}")
            summary.append([name, norm, f"{acc[name]:.3f}", len(rs), sum(bool(r["optimal"]) for r in rs),
                            f"{statistics.median(d):.4g}" if d else "", f"{min(d):.4g}" if d else "",
                            f"{max(d):.4g}" if d else "", f"{statistics.median([r['time_s'] for r in rs]):.2f}"]
                           + cells)
    header = ["model", "norm", "test acc", "images", "optimal", "median dist", "min", "max", "median s"]
    eps_cols = [f"robust/unknown at eps #{k + 1}" for k in range(5)]
    notes = [f"Machine: {machine()}; one BLAS thread, HiGHS one thread. Command: `{command}`",
             "Models: " + "; ".join(f"{k}: {m.describe() if isinstance(m, rv.TreeEnsemble) else m.name} "
                                    f"(test accuracy {acc[k]:.3f})" for k, (m, _) in ms.items()),
             f"Images: the first {len(chosen)} test images every model classifies correctly ({chosen})",
             "Radii of the robust-accuracy columns: " + "; ".join(f"{n}: {EPS[n]}" for n in norms)]
    text = write_table(out_csv.with_suffix(".md"), "Robustness of an MLP, a decision tree, a forest and boosted trees",
                       header + eps_cols, summary, notes)
    print(text)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return 0
    if "linf" in norms:
        grid = np.linspace(0, 0.05, 101)
        fig, ax = plt.subplots(figsize=(6, 4))
        for name in ms:
            rs = [r for r in rows if r["model"] == name and r["norm"] == "linf"]
            lb = np.array([float(r["lower_bound"]) if r["lower_bound"] != "" else 0.0 for r in rs])
            ax.plot(grid, [(lb > e).mean() for e in grid], label=f"{name} (acc {acc[name]:.2f})")
        ax.set_xlabel("L-inf radius")
        ax.set_ylabel("verified robust fraction of the images")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out_csv.with_suffix(".png"), dpi=100)
    return 0


if __name__ == "__main__":
    sys.exit(main())
