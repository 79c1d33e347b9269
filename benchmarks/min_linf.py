"""Minimal L-inf distortion: how many test images get a proven-optimal answer (gap <= 1e-4) in time.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/min_linf.py [--model seed|mlp64|FILE.npz]
        [--images 20] [--timeout 60] [--solver highs]

For each of the first ``--images`` test images of ``reluverify.datasets.load_mnist()`` (true label y):
``minimal_distortion(net, x, "linf", label=y, solver=S, time_limit=T)`` (the engine's radius search:
a gradient attack, then one robustness question per radius, each with bounds, falsification and
ReLU branch and bound). Recorded: the distance of the re-checked example, the proven lower bound
(certified radius), the gap, end-to-end wall time, and "optimal" when
``distance - lower_bound <= 1e-4 * max(1, distance)``. Every example is re-checked here too (float64
forward pass: class changed; L-inf distance recomputed; lower bound <= distance).

Models: ``seed`` (the bundled 784-48-27-10 seed network), ``mlp64`` (a 784-64-32-10 ReLU network
trained here, in NumPy, on the bundled training images: 8 epochs of Adam, seed 0 — the network a
new user would train first), or a saved :class:`reluverify.Network` (``.npz``).
Writes ``benchmarks/results/min_linf_<model>.md`` and ``.csv`` (rows appended as they finish).
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

from reluverify import Network, Verdict, minimal_distortion  # noqa: E402
from reluverify.datasets import load_mnist  # noqa: E402
from reluverify.tolerances import OPTIMAL_REL_GAP  # noqa: E402

FIELDS = ["image", "label", "verdict", "distance", "lower_bound", "gap", "optimal", "time_s", "message"]


def train_mlp(data, sizes=(784, 64, 32, 10), epochs: int = 8, seed: int = 0) -> Network:
    """A small ReLU network trained with Adam on softmax cross-entropy (NumPy only, deterministic)."""
    rng = np.random.default_rng(seed)
    W = [rng.normal(0, np.sqrt(2.0 / a), (b, a)) for a, b in zip(sizes[:-1], sizes[1:])]
    b = [np.zeros(n) for n in sizes[1:]]
    params = W + b
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    X, y = data.x_train.reshape(len(data.x_train), -1), data.y_train
    step = 0
    for _ in range(epochs):
        order = rng.permutation(len(X))
        for s in range(0, len(X), 64):
            idx = order[s:s + 64]
            hs, h = [X[idx]], X[idx]
            for k in range(len(W)):
                z = h @ W[k].T + b[k]
                h = np.maximum(z, 0) if k < len(W) - 1 else z
                hs.append(h)
            p = np.exp(h - h.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            g = p
            g[np.arange(len(idx)), y[idx]] -= 1.0
            g /= len(idx)
            gW, gb = [None] * len(W), [None] * len(W)
            for k in range(len(W) - 1, -1, -1):
                gW[k], gb[k] = g.T @ hs[k], g.sum(0)
                if k:
                    g = (g @ W[k]) * (hs[k] > 0)
            step += 1
            for i, (p_, g_) in enumerate(zip(params, gW + gb)):
                m[i] = 0.9 * m[i] + 0.1 * g_
                v[i] = 0.999 * v[i] + 0.001 * g_ * g_
                p_ -= 1e-3 * (m[i] / (1 - 0.9 ** step)) / (np.sqrt(v[i] / (1 - 0.999 ** step)) + 1e-8)
    return Network.from_arrays(W, b, name="mlp-784-64-32-10")


def load_model(name: str, data) -> Network:
    if name == "seed":
        from reluverify.zoo import seed_mlp

        return seed_mlp()
    if name == "mlp64":
        return train_mlp(data)
    return Network.load(name)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="seed")
    ap.add_argument("--images", type=int, default=20)
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--solver", default="highs")
    args = ap.parse_args()
    data = load_mnist()
    net = load_model(args.model, data)
    X = data.x_test.reshape(len(data.x_test), -1)
    acc = float(np.mean(np.argmax(net.forward(X), 1) == data.y_test))
    tag = Path(args.model).stem if args.model not in ("seed", "mlp64") else args.model
    out_csv = HERE / "results" / f"min_linf_{tag}.csv"
    out_csv.parent.mkdir(exist_ok=True)
    command = "OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/min_linf.py " + shlex.join(sys.argv[1:])
    rows = []
    with open(out_csv, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=FIELDS)
        w.writeheader()
        for i in range(args.images):
            x, y = X[i], int(data.y_test[i])
            t0 = time.perf_counter()
            res = minimal_distortion(net, x, "linf", label=y, solver=args.solver, time_limit=args.timeout)
            wall = time.perf_counter() - t0
            row = {"image": i, "label": y, "verdict": str(res.verdict), "time_s": round(wall, 2),
                   "message": (res.message or "")[:120]}
            if res.verdict == Verdict.FOUND:
                d = float(np.max(np.abs(res.x_adv - x)))
                assert int(np.argmax(net.forward(res.x_adv))) != y, f"image {i}: the example keeps the class"
                assert abs(d - res.distance) <= 1e-12 and np.all((res.x_adv >= 0) & (res.x_adv <= 1)), i
                assert res.lower_bound <= d, f"image {i}: proven bound above a reached distance"
                gap = d - res.lower_bound
                row.update(distance=f"{d:.6g}", lower_bound=f"{res.lower_bound:.6g}", gap=f"{gap:.2g}",
                           optimal=gap <= OPTIMAL_REL_GAP * max(1.0, d))
            else:
                row.update(distance="", lower_bound=f"{res.lower_bound:.6g}" if res.lower_bound is not None else "",
                           gap="", optimal=False)
            print(row, flush=True)
            w.writerow(row)
            fh.flush()
            rows.append(row)
    n_opt = sum(bool(r["optimal"]) for r in rows)
    in_time = sum(bool(r["optimal"]) and r["time_s"] <= args.timeout + 1 for r in rows)
    times = [r["time_s"] for r in rows]
    notes = [f"Machine: {machine()}; one BLAS thread. Command: `{command}`",
             f"Model: {net.name} ({' x '.join(str(s) for s in [net.n_inputs] + [l.n_out for l in net.layers])}), "
             f"test accuracy {acc:.3f} on the {len(X)} test images",
             f"**{n_opt} of {len(rows)} proven optimal (gap <= {OPTIMAL_REL_GAP:g}), {in_time} within "
             f"{args.timeout:g} s**; median time {statistics.median(times):.1f} s, max {max(times):.1f} s"]
    text = write_table(out_csv.with_suffix(".md"), f"Minimal L-inf distortion ({tag})", FIELDS[:-1],
                       [[r[f] for f in FIELDS[:-1]] for r in rows], notes)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
