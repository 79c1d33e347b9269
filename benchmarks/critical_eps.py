"""Small networks at their critical eps: is every robustness query decided within the time limit?

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/critical_eps.py --hidden 50,50
        [--relu-outputs no|yes] [--images 100] [--timeout 60] [--calib 11] [--calib-timeout 20]

A network 784-<hidden>-10 is trained here on the bundled MNIST training images (NumPy Adam, seed 0,
the trainer of ``benchmarks/min_linf.py``); ``--relu-outputs yes`` puts a ReLU on its logits (as in
ERAN's MNIST networks; the same weights). Its critical eps is the median of the minimal L-inf
distortions (``minimal_distortion``, ``--calib-timeout`` each, the found distance) of ``--calib``
correctly classified test images taken from the end of the test set; near that eps about half the
images are robust and the queries are hardest. Then ``verify_robustness(net, x, eps, "linf",
label=y, time_limit=T)`` on the first ``--images`` test images: verdict and time, every
counterexample re-checked here (float64 forward pass, inside the ball).
Writes ``benchmarks/results/critical_eps_<net>.md`` and ``.csv``.
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
from min_linf import train_mlp  # noqa: E402

from reluverify import Verdict, minimal_distortion, verify_robustness  # noqa: E402
from reluverify.datasets import load_mnist  # noqa: E402
from reluverify.problems.distortion import with_relu_outputs  # noqa: E402

FIELDS = ["image", "label", "verdict", "time_s", "method"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hidden", default="50,50")
    ap.add_argument("--relu-outputs", choices=["no", "yes"], default="no")
    ap.add_argument("--images", type=int, default=100)
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--calib", type=int, default=11)
    ap.add_argument("--calib-timeout", type=float, default=20.0)
    args = ap.parse_args()
    hidden = tuple(int(h) for h in args.hidden.split(","))
    data = load_mnist()
    net = train_mlp(data, sizes=(784,) + hidden + (10,))
    if args.relu_outputs == "yes":
        net = with_relu_outputs(net)
    X = data.x_test.reshape(len(data.x_test), -1)
    y = data.y_test.astype(int)
    acc = float(np.mean(np.argmax(net.forward(X), 1) == y))
    tag = "784-" + "-".join(map(str, hidden)) + "-10" + ("-relu" if args.relu_outputs == "yes" else "")
    # the critical eps: median minimal distortion over correctly classified images from the end
    dists, t0 = [], time.perf_counter()
    for i in range(len(X) - 1, -1, -1):
        if len(dists) >= args.calib:
            break
        if int(np.argmax(net.forward(X[i]))) != y[i]:
            continue
        r = minimal_distortion(net, X[i], "linf", label=int(y[i]), time_limit=args.calib_timeout)
        if r.verdict == Verdict.FOUND:
            dists.append(float(r.distance))
    eps = float(statistics.median(dists))
    calib_s = time.perf_counter() - t0
    print(f"{tag}: accuracy {acc:.3f}; critical eps {eps:.5f} (median of {len(dists)}, {calib_s:.0f} s)", flush=True)
    out_csv = HERE / "results" / f"critical_eps_{tag}.csv"
    command = "OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/critical_eps.py " + shlex.join(sys.argv[1:])
    rows = []
    with open(out_csv, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=FIELDS)
        w.writeheader()
        for i in range(args.images):
            t0 = time.perf_counter()
            res = verify_robustness(net, X[i], eps, "linf", label=int(y[i]), time_limit=args.timeout)
            wall = time.perf_counter() - t0
            if res.verdict == Verdict.NOT_ROBUST:
                lg = net.forward(res.x_adv)
                assert np.max(np.abs(res.x_adv - X[i])) <= eps * (1 + 1e-12) and \
                    np.max(np.delete(lg, y[i])) >= lg[y[i]], f"image {i}: the counterexample fails its check"
            row = {"image": i, "label": int(y[i]), "verdict": str(res.verdict), "time_s": round(wall, 2),
                   "method": (res.message or "")[:70]}
            print(row, flush=True)
            w.writerow(row)
            fh.flush()
            rows.append(row)
    counts = {v: sum(r["verdict"] == v for r in rows) for v in ("robust", "not_robust", "unknown")}
    decided = counts["robust"] + counts["not_robust"]
    times = [r["time_s"] for r in rows]
    notes = [f"Machine: {machine()}; one BLAS thread. Command: `{command}`",
             f"Network {tag} trained here (test accuracy {acc:.3f}); critical eps {eps:.5f} = median minimal "
             f"L-inf distortion of {len(dists)} images ({args.calib_timeout:g} s each)",
             f"**{decided} of {len(rows)} decided within {args.timeout:g} s** (robust {counts['robust']}, "
             f"not robust {counts['not_robust']}, unknown {counts['unknown']}); median {statistics.median(times):.2f} s, "
             f"max {max(times):.1f} s"]
    text = write_table(out_csv.with_suffix(".md"), f"Robustness at the critical eps ({tag})", FIELDS,
                       [[r[f] for f in FIELDS] for r in rows], notes)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
