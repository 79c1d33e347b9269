"""verify_robustness vs check_property on the robustness questions behind VNN-COMP 2022 mnist_fc.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/robustness_mnist_fc.py
        [--filter 256x2] [--limit N] [--timeout-scale 1.0] [--tools verify_robustness,check_property]

Every mnist_fc instance is an L-inf robustness question: its VNN-LIB box is an eps ball around a
test image clipped to [0, 1], its unsafe set "some class j reaches the true class c". Here the same
question goes to both public calls, one after the other, in one run (one BLAS thread, the
instance's official timeout):

* ``check_property(net, prop, time_limit=T)`` on the VNN-LIB file as read;
* ``verify_robustness(net, x0, eps, "linf", label=c, perturbation=Perturbation(valid=box),
  time_limit=T)`` with ``x0`` recovered from the box (``hi - eps`` where the box was clipped at 0,
  else ``lo + eps``, then clipped into the box), ``c`` the class every disjunct of the output
  condition protects, ``eps`` the file's eps widened by 1e-6 and the valid box the VNN-LIB box
  itself, so that the input set is exactly the file's box.

Verdicts are scored against ``ground_truth.csv`` (``robust`` = unsat, ``not_robust`` = sat); a
decided answer that contradicts it is counted as wrong and printed loudly. Counterexamples of both
calls are re-checked here by a float64 forward pass. Writes ``benchmarks/results/robustness_mnist_fc.csv``
(one row per instance and tool, appended as it finishes) and ``.md`` (``--out NAME``: other names).
"""

from __future__ import annotations

import argparse
import csv
import shlex
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import VNNCOMP, machine, write_table  # noqa: E402

from reluverify import Box, Perturbation, check_property, from_onnx, read_vnnlib, verify_robustness  # noqa: E402

FIELDS = ["network", "property", "truth", "tool", "verdict", "time_s", "timeout", "wrong", "detail"]
VNN = {"robust": "unsat", "not_robust": "sat"}


def robustness_question(prop, eps: float):
    """``(x0, label, valid box)`` of an mnist_fc property (one input box, rows y_j >= y_c)."""
    region = prop.regions[0]
    lo, hi = region.lower, region.upper
    x0 = np.where(lo <= 0.0, hi - eps, lo + eps)
    x0 = np.clip(x0, lo, hi)
    counts = np.zeros(prop.n_outputs)
    for r in prop.regions:
        counts += np.any(r.a_y != 0, axis=0)
    label = int(np.argmax(counts))  # the class in every disjunct
    return x0, label, Box(lo, hi)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--filter", default="")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--timeout-scale", type=float, default=1.0)
    ap.add_argument("--tools", default="verify_robustness,check_property")
    ap.add_argument("--out", default="robustness_mnist_fc", help="name of the result files under benchmarks/results/")
    args = ap.parse_args()
    root = VNNCOMP / "mnist_fc"
    if not root.exists():
        print(f"no mnist_fc files at {root}")
        return 1
    truth = {}
    with open(root / "ground_truth.csv") as fh:
        for row in csv.DictReader(fh):
            truth[(row["onnx"].replace(".onnx", ""), row["vnnlib"].replace(".vnnlib", ""))] = row["ground_truth"]
    instances = []
    with open(root / "instances.csv") as fh:
        for onnx_rel, vnn_rel, timeout in csv.reader(fh):
            if args.filter in onnx_rel or args.filter in vnn_rel:
                instances.append((onnx_rel, vnn_rel, float(timeout)))
    instances = instances[:args.limit]
    tools = args.tools.split(",")
    out_csv = HERE / "results" / f"{args.out}.csv"
    command = ("OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/robustness_mnist_fc.py "
               + shlex.join(sys.argv[1:]))
    rows = []
    nets = {}
    with open(out_csv, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=FIELDS)
        w.writeheader()
        for onnx_rel, vnn_rel, timeout in instances:
            net_name = Path(onnx_rel).name.replace(".onnx", "")
            prop_name = Path(vnn_rel).name.replace(".vnnlib", "")
            if net_name not in nets:
                nets[net_name] = from_onnx(root / (onnx_rel + ".gz"))
            net = nets[net_name]
            prop = read_vnnlib(root / (vnn_rel + ".gz"))
            eps = float(prop_name.split("_")[-1])
            x0, label, valid = robustness_question(prop, float(np.float32(eps)))
            t_limit = timeout * args.timeout_scale
            gt = truth.get((net_name, prop_name), "?")
            for tool in tools:
                t0 = time.perf_counter()
                if tool == "verify_robustness":
                    res = verify_robustness(net, x0, float(np.float32(eps)) * (1 + 1e-6), "linf", label=label,
                                            perturbation=Perturbation(valid=valid), time_limit=t_limit)
                    verdict = VNN.get(str(res.verdict), "unknown")
                    x_adv = res.x_adv
                    detail = res.message[:80] if res.message else ""
                else:
                    res = check_property(net, prop, time_limit=t_limit)
                    verdict = str(res.verdict)
                    x_adv = res.x
                    detail = f"{res.method}"
                wall = time.perf_counter() - t0
                if verdict == "sat":  # re-check the counterexample here
                    y = net.forward(x_adv)
                    ok = valid.contains(x_adv) and np.max(np.delete(y, label)) >= y[label]
                    assert ok, f"{net_name} {prop_name} {tool}: the counterexample fails its check"
                wrong = verdict in ("sat", "unsat") and gt in ("sat", "unsat") and verdict != gt
                if wrong:
                    print(f"!!! WRONG: {tool} says {verdict} on {net_name} {prop_name}, ground truth {gt}", flush=True)
                row = {"network": net_name, "property": prop_name, "truth": gt, "tool": tool, "verdict": verdict,
                       "time_s": round(wall, 2), "timeout": t_limit, "wrong": wrong, "detail": detail}
                print(row, flush=True)
                w.writerow(row)
                fh.flush()
                rows.append(row)
    table = []
    notes = [f"Machine: {machine()}; one BLAS thread; both calls on each instance one after the other. "
             f"Command: `{command}`", f"{len(instances)} instances"]
    for tool in tools:
        mine = [r for r in rows if r["tool"] == tool]
        decided = [r for r in mine if r["verdict"] in ("sat", "unsat")]
        wrong = sum(bool(r["wrong"]) for r in mine)
        notes.append(f"**{tool}: {len(decided)} of {len(mine)} decided, {wrong} wrong**; "
                     f"total time {sum(r['time_s'] for r in mine):.0f} s")
    by_key = {}
    for r in rows:
        by_key.setdefault((r["network"], r["property"], r["truth"]), {})[r["tool"]] = r
    for (n, p, gt), d in by_key.items():
        table.append([n, p, gt] + [f"{d[t]['verdict']} {d[t]['time_s']:.1f} s" if t in d else "" for t in tools])
    text = write_table(out_csv.with_suffix(".md"), "verify_robustness vs check_property on mnist_fc",
                       ["network", "property", "truth"] + tools, table, notes)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
