"""ReLU branch and bound against the MILP stage, side by side on the same mnist_fc instances.

    python benchmarks/branch_vs_milp.py [--timeout 120] [--instances 256x4:prop_8_0.03,...]

For each instance (from ../shared/benchmarks/vnncomp2022/mnist_fc; nothing to do without it):

* root bounds: ``bounds="optimised"`` against ``bounds="lp"`` (time, unstable neurons), over the
  property's input box;
* ``check_property`` with ``branch=True`` (bounds, attack, ReLU branch and bound, MILP for what is
  left) against ``branch=False`` (bounds, attack, MILP over LP bounds), each with the same timeout.

Writes benchmarks/results/branch_vs_milp.csv and .md. Both arms run in the same process, one after
the other, so their times compare; set OPENBLAS_NUM_THREADS=1 when other jobs share the machine.
``--ablation`` adds two arms: branching with inactive neurons kept in every walk, and with cold
starts of the optimised bound.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import VNNCOMP, machine  # noqa: E402

from reluverify import check_property, from_onnx, read_vnnlib  # noqa: E402
from reluverify.bounds import LPBounds, OptimisedBounds, compute_bounds  # noqa: E402
from reluverify.engine.options import Tuning  # noqa: E402
from reluverify.domain import Box  # noqa: E402

OUT = Path(__file__).resolve().parent / "results"
# instances whose MILP took longest in the MILP-only run (benchmarks/results/vnncomp/
# mnist_fc-reluverify_milp_8753c81.csv), all unsat
DEFAULT = "256x4:prop_2_0.03,256x4:prop_8_0.03,256x4:prop_3_0.05,256x6:prop_2_0.03,256x6:prop_7_0.03,256x6:prop_12_0.03"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--instances", default=DEFAULT, help="comma list of NET:PROP (e.g. 256x4:prop_8_0.03)")
    ap.add_argument("--ablation", action="store_true",
                    help="also branch with inactive neurons kept in every walk (Tuning(leave_out_inactive="
                         "False)) and with cold starts of the optimised bound "
                         "(Tuning(warm_start=False)), to measure what each gains")
    args = ap.parse_args()
    root = VNNCOMP / "mnist_fc"
    if not root.exists():
        print(f"the VNN-COMP files are not here ({root}); nothing to run")
        return 0
    rows = []
    for item in args.instances.split(","):
        net_name, prop_name = item.split(":")
        net = from_onnx(root / "onnx" / f"mnist-net_{net_name}.onnx.gz")
        prop = read_vnnlib(root / "vnnlib" / f"{prop_name}.vnnlib.gz")
        box = Box(prop.regions[0].lower, prop.regions[0].upper)
        row = {"network": net_name, "property": prop_name}
        for name, strategy in (("optimised", OptimisedBounds()), ("lp", LPBounds(time_limit=args.timeout))):
            t0 = time.perf_counter()
            b = compute_bounds(net, box, strategy)
            row[f"{name}_bounds_s"] = round(time.perf_counter() - t0, 2)
            row[f"{name}_unstable"] = b.n_unstable
        arms = [("branch", True, True, True), ("milp", False, True, True)]
        if args.ablation:
            arms += [("branch_all_neurons", True, False, True), ("branch_cold", True, True, False)]
        for name, branch, leave_out, warm in arms:
            res = check_property(net, prop, time_limit=args.timeout, branch=branch,
                                 tuning=Tuning(leave_out_inactive=leave_out, warm_start=warm))
            row[f"{name}_verdict"] = str(res.verdict)
            row[f"{name}_method"] = res.method
            row[f"{name}_s"] = round(res.time_s, 2)
            if branch:
                row[f"{name}_domains"] = res.stats.get("branch_domains", 0)
        print(row, flush=True)
        rows.append(row)
    OUT.mkdir(exist_ok=True)
    with open(OUT / "branch_vs_milp.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    lines = [
        "# ReLU branch and bound vs MILP (mnist_fc)",
        "",
        f"Machine: {machine()}. Command: `python benchmarks/branch_vs_milp.py --timeout {args.timeout:g}"
        + ("" if args.instances == DEFAULT else f" --instances {args.instances}")
        + (" --ablation" if args.ablation else "") + "`.",
        "Root bounds over the property's box: optimised (alpha/beta-style, per neuron) vs LP; then",
        "`check_property` with ReLU branch and bound (`branch=True`) vs the MILP stage alone (`branch=False`).",
        "A time shown as the timeout means it ran out; the ratio is then a lower bound.",
        "",
        "| instance | optimised bounds s (unstable) | LP bounds s (unstable) | branch: verdict, s | MILP: verdict, s | MILP s / branch s |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        ratio = r["milp_s"] / max(r["branch_s"], 1e-9)
        lines.append(
            f"| {r['network']} {r['property']} | {r['optimised_bounds_s']} ({r['optimised_unstable']}) | "
            f"{r['lp_bounds_s']} ({r['lp_unstable']}) | {r['branch_verdict']} ({r['branch_method']}), {r['branch_s']} | "
            f"{r['milp_verdict']} ({r['milp_method']}), {r['milp_s']} | {ratio:.1f}x |")
    if args.ablation:
        lines += [
            "",
            "Ablation, same timeout: branching with every neuron walked (inactive ones kept, and their",
            "multipliers in the optimised bound), and branching whose split domains start the optimised",
            "bound cold (CROWN slopes, zero multipliers) instead of from the parent's parameters.",
            "",
            "| instance | default: verdict, s, domains | all neurons: verdict, s, domains | cold starts: verdict, s, domains | all neurons s / default s | cold s / default s |",
            "|---|---|---|---|---|---|",
        ]
        for r in rows:
            cells = [f"{r[f'{a}_verdict']} ({r[f'{a}_method']}), {r[f'{a}_s']}, {r[f'{a}_domains']}"
                     for a in ("branch", "branch_all_neurons", "branch_cold")]
            ratios = [f"{r[f'{a}_s'] / max(r['branch_s'], 1e-9):.1f}x" for a in ("branch_all_neurons", "branch_cold")]
            lines.append(f"| {r['network']} {r['property']} | " + " | ".join(cells + ratios) + " |")
    (OUT / "branch_vs_milp.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
