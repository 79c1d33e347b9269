"""Does MIP tightening of the unstable neurons pay on a hard query? (bounds escalation, issue #14)

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/tightening_payoff.py \
        [--hidden 100,100] [--image 2] [--eps 0.03955] [--per-neuron 1.0] [--milp 30]

The network 784-<hidden>-10 is trained as in ``benchmarks/critical_eps.py`` (same trainer, same
seed); the query is L-inf robustness of one test image at ``--eps`` (defaults: the first query of
``critical_eps.py --hidden 100,100`` left undecided at 60 s). Measured, one step after the other:

1. unstable ReLUs per layer and time of the symbolic, optimised and LP bound strategies;
2. MIP tightening of every hidden layer after the first (the first layer's bounds over a box are
   exact): for each still-unstable neuron, ``max`` and ``min`` of its pre-activation over the MILP
   of the layers before it, ``--per-neuron`` seconds each, taking HiGHS's dual bound (this is a
   measurement of payoff, not a proof path);
3. per wrong class, ``max out_j - out_label`` over the full MILP with the LP bounds and with the
   MIP-tightened ones, ``--milp`` seconds each: status, incumbent, dual bound, time.

Writes ``benchmarks/results/tightening_payoff.md``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import machine, write_table  # noqa: E402
from min_linf import train_mlp  # noqa: E402

from reluverify import Box, Network  # noqa: E402
from reluverify.bounds import Bounds, compute_bounds  # noqa: E402
from reluverify.datasets import load_mnist  # noqa: E402
from reluverify.engine.milp import NetworkMilp  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hidden", default="100,100")
    ap.add_argument("--image", type=int, default=2)
    ap.add_argument("--eps", type=float, default=0.03955)
    ap.add_argument("--per-neuron", type=float, default=1.0)
    ap.add_argument("--milp", type=float, default=30.0)
    args = ap.parse_args()
    data = load_mnist()
    hidden = tuple(int(h) for h in args.hidden.split(","))
    net = train_mlp(data, sizes=(784,) + hidden + (10,))
    x0 = data.x_test.reshape(len(data.x_test), -1)[args.image]
    label = int(data.y_test[args.image])
    box = Box(np.clip(x0 - args.eps, 0, 1), np.clip(x0 + args.eps, 0, 1))
    notes = [f"Machine: {machine()}; one BLAS thread; other jobs were running on the machine. Command: "
             "`OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/tightening_payoff.py "
             + shlex.join(sys.argv[1:]) + "`",
             f"Network 784-{'-'.join(map(str, hidden))}-10, test image {args.image} (label {label}), L-inf eps {args.eps}"]
    rows = []
    for method in ("symbolic", "optimised", "lp"):
        t0 = time.perf_counter()
        b = compute_bounds(net, box, method)
        rows.append([method, str(b.unstable_counts()[:-1]), f"{time.perf_counter() - t0:.2f}"])
    lp = compute_bounds(net, box, "lp")
    lowers, uppers = [a.copy() for a in lp.lower], [a.copy() for a in lp.upper]
    t0 = time.perf_counter()
    stabilised = []
    for k in range(1, len(net.layers) - 1):
        sub = Network(tuple(net.layers[:k]) + (net.layers[k].without_activation(),))
        milp = NetworkMilp(sub, Bounds(sub, box, lowers[:k + 1], uppers[:k + 1], "lp"), "highs", threads=1)
        unstable = np.flatnonzero(net.layers[k].phases(lowers[k], uppers[k]) == 0)
        for j in unstable.tolist():
            col = int(milp.arrays.output_cols[j])
            for sense in ("max", "min"):
                milp.model.set_objective({col: 1.0}, sense)
                res, _ = milp.solve(args.per_neuron)
                if res.bound is None:
                    continue
                if sense == "max":
                    uppers[k][j] = min(uppers[k][j], res.bound)
                    if uppers[k][j] <= 0:
                        break
                else:
                    lowers[k][j] = max(lowers[k][j], res.bound)
        now = int(np.sum(net.layers[k].phases(lowers[k], uppers[k]) == 0))
        stabilised.append(f"layer {k}: {unstable.size} -> {now}")
    mip = Bounds(net, box, lowers, uppers, "mip")
    rows.append(["MIP tightening (" + "; ".join(stabilised) + ")", str(mip.unstable_counts()[:-1]),
                 f"{time.perf_counter() - t0:.2f}"])
    table2 = []
    for name, bounds in (("lp", lp), ("mip", mip)):
        for j in range(10):
            if j == label:
                continue
            milp = NetworkMilp(net, bounds, "highs", threads=1)
            out = milp.arrays.output_cols
            milp.model.set_objective({int(out[j]): 1.0, int(out[label]): -1.0}, "max")
            res, _ = milp.solve(args.milp)
            table2.append([name, j, str(res.status), "" if res.objective is None else f"{res.objective:.3f}",
                           "" if res.bound is None else f"{res.bound:.3f}", f"{res.wall_time:.1f}"])
    path = HERE / "results" / "tightening_payoff.md"
    text = write_table(path, "Bounds escalation on a hard query: unstable ReLUs and time per strategy",
                       ["strategy", "unstable per hidden layer", "time_s"], rows, notes)
    with open(path, "a") as fh:
        fh.write("\n## Per wrong class: max out_j - out_label over the MILP\n\n"
                 "| bounds | class | status | incumbent | dual bound | time_s |\n|---|---|---|---|---|---|\n")
        for r in table2:
            fh.write("| " + " | ".join(map(str, r)) + " |\n")
    print(text)
    print(path.read_text().split("## Per wrong class")[1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
