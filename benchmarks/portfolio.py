"""The MILP race on the second core (``Tuning(portfolio=True)``) against the sequential engine, side
by side on the same queries.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/portfolio.py \
        [--hidden 100,100] [--eps 0.03955] [--images 2,4,5,6,8,9,12,14,16,17] [--timeout 60]

The network 784-<hidden>-10 is trained as in ``benchmarks/critical_eps.py`` (same trainer, same
seed); the default images are the 8 that ``critical_eps.py --hidden 100,100 --images 20`` left
undecided at 60 s plus the two robust ones that took longest. For each image, ``verify_robustness``
without and then with the race (run one after the other, so the race has the second core to
itself); every counterexample re-checked here. Writes ``benchmarks/results/portfolio.md``.
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

import reluverify as rv  # noqa: E402
from reluverify.datasets import load_mnist  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hidden", default="100,100")
    ap.add_argument("--eps", type=float, default=0.03955)
    ap.add_argument("--images", default="2,4,5,6,8,9,12,14,16,17")
    ap.add_argument("--timeout", type=float, default=60.0)
    args = ap.parse_args()
    data = load_mnist()
    hidden = tuple(int(h) for h in args.hidden.split(","))
    net = train_mlp(data, sizes=(784,) + hidden + (10,))
    X = data.x_test.reshape(len(data.x_test), -1)
    y = data.y_test.astype(int)
    rows, totals = [], {"sequential": [0, 0.0], "portfolio": [0, 0.0]}
    for i in (int(s) for s in args.images.split(",")):
        row = [i, int(y[i])]
        for arm, tuning in (("sequential", rv.Tuning()), ("portfolio", rv.Tuning(portfolio=True))):
            t0 = time.perf_counter()
            res = rv.verify_robustness(net, X[i], args.eps, "linf", label=int(y[i]), time_limit=args.timeout,
                                       tuning=tuning)
            wall = time.perf_counter() - t0
            if res.verdict == rv.Verdict.NOT_ROBUST:
                lg = net.forward(res.x_adv)
                assert np.max(np.abs(res.x_adv - X[i])) <= args.eps * (1 + 1e-12)
                assert np.max(np.delete(lg, y[i])) >= lg[y[i]], f"image {i}: the counterexample fails its check"
            decided = res.verdict in (rv.Verdict.ROBUST, rv.Verdict.NOT_ROBUST)
            totals[arm][0] += decided
            totals[arm][1] += wall
            how = (res.message or "")[:48]
            if arm == "portfolio":
                how += f" (race answers: {res.stats.get('race_answers', 0)})" if res.stats.get("portfolio") else " (no race)"
            row += [str(res.verdict), f"{wall:.1f}", how]
            print(row, flush=True)
        rows.append(row)
    command = "OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/portfolio.py " + shlex.join(sys.argv[1:])
    notes = [f"Machine: {machine()}; one BLAS thread per process. Command: `{command}`",
             f"Network 784-{'-'.join(map(str, hidden))}-10 trained here; L-inf eps {args.eps}; {args.timeout:g} s per query",
             f"**Decided: sequential {totals['sequential'][0]}/{len(rows)} in {totals['sequential'][1]:.0f} s; "
             f"portfolio {totals['portfolio'][0]}/{len(rows)} in {totals['portfolio'][1]:.0f} s**"]
    text = write_table(HERE / "results" / "portfolio.md", "MILP race on the second core vs the sequential engine",
                       ["image", "label", "sequential", "s", "how", "portfolio", "s", "how"], rows, notes)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
