"""How long it takes to turn a network into a Pyomo MILP, and to hand it to HiGHS.

    python benchmarks/build_time.py [--repeat 3] [--out benchmarks/results/build_time.md]

Networks: the seed network (784-48-27-10) and the VNN-COMP mnist_fc 784-256x6 network (from
../shared when present, else a random network of the same shape). Domains: the whole [0,1]^784 box
(the worst case: every neuron unstable under interval bounds) and an L-inf ball of radius 0.03 around
a test image. Build = interval bounds + ``add_network``; hand-off = the HiGHS interface loading the
model (measured as a solve with a 1-iteration-ish limit is not possible in general, so we time a
pure LP relaxation load-and-solve of the model with the binaries relaxed).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pyomo.environ as pyo

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import benchmark_networks, machine, write_table  # noqa: E402

from reluverify import Box, add_network, interval_bounds  # noqa: E402


def time_build(net, domain, repeat):
    times_b, times_f = [], []
    info = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        bounds = interval_bounds(net, domain)
        t1 = time.perf_counter()
        m = pyo.ConcreteModel()
        nb = add_network(m, net, bounds)
        t2 = time.perf_counter()
        times_b.append(t1 - t0)
        times_f.append(t2 - t1)
        info = nb.size()
    return statistics.median(times_b), statistics.median(times_f), info


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "build_time.md"))
    args = ap.parse_args(argv)
    from reluverify.datasets import load_mnist

    x = load_mnist().x_test[0].ravel()
    rows = []
    for label, net in benchmark_networks():
        for dname, dom in (("[0,1]^784 box", Box.uniform(784)), ("L-inf 0.03 ball", Box.linf_ball(x, 0.03, Box.uniform(784)))):
            tb, tf, info = time_build(net, dom, args.repeat)
            rows.append([label, dname, f"{tb * 1e3:.1f}", f"{tf:.3f}", info["binaries"], info["constraints"], info["nonzeros"]])
            print(rows[-1], flush=True)
    text = write_table(
        Path(args.out),
        "Model build time",
        ["network", "domain", "interval bounds (ms)", "add_network (s)", "binaries", "constraints", "nonzeros"],
        rows,
        [f"command: `python benchmarks/build_time.py --repeat {args.repeat}`", f"machine: {machine()}",
         "median of the repeats; build = Pyomo block construction from NumPy arrays"],
    )
    print(text)


if __name__ == "__main__":
    main()
