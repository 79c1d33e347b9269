"""L-inf robustness verification of the seed network: reluverify against OMLT and Marabou.

    python benchmarks/verify_linf.py [--images 20] [--eps 0.01,0.03,0.05] [--timeout 120]
        [--tools reluverify,omlt,marabou] [--bound-methods symbolic,lp]
        [--tool-images omlt=5] [--resume]

Instances: the first ``--images`` test images of ``reluverify.datasets.load_mnist()`` with their true
labels, each L-inf eps in ``--eps``; the input set is the eps ball intersected with [0,1]^784; the
question is "can some other class reach the true class (out_j >= out_c)?".

Tools, each on the same instance in the same run, one after the other (2-core machine):

* ``reluverify-<method>``: ``verify_robustness(net, x, eps, "linf", label=y, solver="highs",
  time_limit=T, bound_method=<method>)``, end-to-end wall time of the call (attack, bounds, model
  build, MILPs). Its counterexamples are re-checked here as well.
* ``omlt``: OMLT's ``ReluBigMFormulation`` on a ``NetworkDefinition`` built from the NumPy weights
  (input bounds = the ball ∩ [0,1]); one model, then for each wrong class j (largest clean logit
  first) maximise out_j - out_c with HiGHS (Pyomo's contrib HiGHS interface, default options):
  max >= 0 means a counterexample (stop), < 0 rules j out; on a time limit the HiGHS bound/incumbent
  still decide when they can. T covers the whole instance (build + all MILPs). See benchmarks/_peers.py.
* ``marabou``: the network exported once to ONNX (float64 Gemm/Relu), one VNN-LIB file per instance
  (ball ∩ [0,1], ``or`` over j of Y_j >= Y_c; written before the clock starts),
  ``Marabou.read_onnx(path).solve(propertyFilename=..., options=createOptions(timeoutInSeconds=T,
  verbosity=0))``; time = read_onnx + solve.

Every peer counterexample is checked by a float64 forward pass. Decided verdicts (robust vs
not_robust) that disagree are printed loudly and marked in the table. Results go to
``benchmarks/results/verify_linf.csv`` (one row per instance and tool, appended as soon as it is
known) and ``verify_linf.md`` (rewritten after every instance). ``--resume`` keeps the rows already in
the CSV and skips those (image, eps, tool) triples, so a slow tool can be completed in a later run.
"""

from __future__ import annotations

import argparse
import csv
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import machine  # noqa: E402
import _peers  # noqa: E402

from reluverify.runner import append_row  # noqa: E402

FIELDS = ["image", "label", "eps", "tool", "verdict", "time_s", "detail", "command"]
DECIDED = ("robust", "not_robust")


def parse_tool_images(text):
    caps = {}
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        name, _, n = part.partition("=")
        caps[name.strip()] = int(n)
    return caps


def versions():
    out = []
    for mod in ("highspy", "pyomo", "omlt", "maraboupy", "onnx"):
        try:
            from importlib.metadata import version

            out.append(f"{mod} {version(mod)}")
        except Exception:
            pass
    return ", ".join(out)


def library_revision():
    try:
        root = HERE.parent
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "src"], cwd=root, capture_output=True, text=True).stdout.strip()
        return head + (" + uncommitted changes in src/" if dirty else "")
    except Exception:
        return "unknown"


def reluverify_run(net, x, c, eps, timeout, method):
    from reluverify.problems import verify_robustness

    lo = np.clip(x - eps, 0.0, 1.0)
    hi = np.clip(x + eps, 0.0, 1.0)
    t0 = time.perf_counter()
    res = verify_robustness(net, x, eps, "linf", label=c, solver="highs", time_limit=timeout, bound_method=method)
    dt = time.perf_counter() - t0
    verdict = res.verdict.value
    detail = f"{res.message}; internal {res.time_s:.2f}s; {len(res.solves)} solves"
    if verdict == "not_robust":
        ok, note = _peers.check_counterexample(net, res.x_adv, c, lo, hi)
        detail += "; " + note + ("" if ok else " (FAILS CHECK)")
    return verdict, dt, detail


# --------------------------------------------------------------------------- reporting
def read_rows(path):
    if not path.exists():
        return []
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def disagreement(verdicts: dict):
    decided = {t: v for t, v in verdicts.items() if v in DECIDED}
    if len(set(decided.values())) > 1:
        return "DISAGREE: " + ", ".join(f"{t}={v}" for t, v in sorted(decided.items()))
    return ""


def fmt_t(t):
    return f"{t:.2f}"


def render(md_path, rows, tools, notes):
    by_inst = {}
    for r in rows:
        key = (int(r["image"]), float(r["eps"]))
        by_inst.setdefault(key, {"label": r["label"], "tools": {}})["tools"][r["tool"]] = r
    present = list(dict.fromkeys(list(tools) + [r["tool"] for r in rows]))
    rank = {"omlt": 1, "marabou": 2}
    all_tools = sorted(present, key=lambda t: (rank.get(t, 0), present.index(t)))
    ours = [t for t in all_tools if t.startswith("reluverify-")]
    lines = [f"# L-inf robustness verification of the seed network (784-48-27-10): reluverify vs OMLT vs Marabou", ""]
    lines += [f"- {n}" for n in notes]
    lines += ["", "## Summary per eps", "",
              "Decided = robust + not_robust. Median and total over the instances the tool ran (unknowns counted "
              "at the time they took). Ratios: the tool's total / reluverify's total on the instances both ran "
              "(> 1: reluverify faster).", ""]
    header = ["eps", "tool", "instances", "robust", "not_robust", "unknown/error", "decided", "median s", "total s"]
    header += [f"total / {o} total" for o in ours]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    eps_values = sorted({k[1] for k in by_inst})
    for eps in eps_values + [None]:
        for tool in all_tools:
            insts = {k: v["tools"][tool] for k, v in by_inst.items() if tool in v["tools"] and (eps is None or k[1] == eps)}
            if not insts:
                continue
            verd = [r["verdict"] for r in insts.values()]
            times = [float(r["time_s"]) for r in insts.values()]
            row = ["all" if eps is None else eps, tool, len(insts), verd.count("robust"), verd.count("not_robust"),
                   len(verd) - verd.count("robust") - verd.count("not_robust"),
                   verd.count("robust") + verd.count("not_robust"),
                   fmt_t(statistics.median(times)), fmt_t(sum(times))]
            for o in ours:
                common = [k for k in insts if o in by_inst[k]["tools"]]
                t_tool = sum(float(insts[k]["time_s"]) for k in common)
                t_ours = sum(float(by_inst[k]["tools"][o]["time_s"]) for k in common)
                cell = "-" if not common or t_ours <= 0 else f"{t_tool / t_ours:.2f}"
                if common and len(common) != len(insts):
                    cell += f" (on {len(common)})"
                row.append(cell)
            lines.append("| " + " | ".join(str(c) for c in row) + " |")
    # disagreements and failed counterexample checks
    problems, ties = [], []
    for (img, eps), v in sorted(by_inst.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        d = disagreement({t: r["verdict"] for t, r in v["tools"].items()})
        if d:
            problems.append(f"image {img}, eps {eps}: **{d}**")
        for t, r in v["tools"].items():
            if "FAILS CHECK" in r["detail"]:
                problems.append(f"image {img}, eps {eps}: {t} counterexample fails the float64 check ({r['detail']})")
            elif "boundary tie" in r["detail"]:
                ties.append(f"{t} image {img} eps {eps}")
    lines += ["", "## Verdict disagreements and failed counterexample checks", ""]
    lines += [f"- {p}" for p in problems] if problems else ["- none: every pair of decided verdicts agrees, every counterexample passes the float64 check"]
    if ties:
        lines += [f"- counterexamples exactly on the decision boundary (out_j - out_c in [-{_peers.TIE_TOLERANCE:g}, 0) in float64, "
                  f"accepted as ties; VNN-COMP's tolerance is 1e-4): " + "; ".join(ties)]
    lines += ["", "## Per instance", "", "Verdict and end-to-end seconds per tool; `-` = not run on this instance.", ""]
    header = ["image", "label", "eps"] + [f"{t}" for t in all_tools] + ["agreement"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for (img, eps), v in sorted(by_inst.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        cells = [img, v["label"], eps]
        for t in all_tools:
            r = v["tools"].get(t)
            cells.append("-" if r is None else f"{r['verdict']} {fmt_t(float(r['time_s']))}")
        cells.append(disagreement({t: r["verdict"] for t, r in v["tools"].items()}) or "ok")
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    md_path.write_text("\n".join(lines) + "\n")


# --------------------------------------------------------------------------- main
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=20)
    ap.add_argument("--eps", default="0.01,0.03,0.05")
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--tools", default="reluverify,omlt,marabou")
    ap.add_argument("--bound-methods", default="symbolic,lp")
    ap.add_argument("--tool-images", default="", help="cap the images per tool, e.g. omlt=5,marabou=20")
    ap.add_argument("--resume", action="store_true", help="keep the CSV rows already there and skip those instances")
    ap.add_argument("--out-dir", default=str(HERE / "results"))
    ap.add_argument("--note", action="append", default=[], help="a line added to the notes of the table")
    args = ap.parse_args(argv)
    command = "python benchmarks/verify_linf.py " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))

    eps_list = [float(e) for e in args.eps.split(",") if e.strip()]
    requested = [t.strip() for t in args.tools.split(",") if t.strip()]
    methods = [m.strip() for m in args.bound_methods.split(",") if m.strip()]
    caps = parse_tool_images(args.tool_images)
    tools, skipped = [], []
    for t in requested:
        if t == "reluverify":
            tools += [f"reluverify-{m}" for m in methods]
        elif t == "omlt":
            why = _peers.omlt_available()
            (skipped.append(f"omlt skipped: {why}") if why else tools.append("omlt"))
        elif t == "marabou":
            why = _peers.marabou_available()
            (skipped.append(f"marabou skipped: {why}") if why else tools.append("marabou"))
        else:
            ap.error(f"unknown tool {t!r}")
    for s in skipped:
        print("!!! " + s, file=sys.stderr, flush=True)

    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = out / "verify_linf.csv", out / "verify_linf.md"
    rows = read_rows(csv_path) if args.resume else []
    if not args.resume and csv_path.exists():
        csv_path.unlink()
    done = {(int(r["image"]), float(r["eps"]), r["tool"]) for r in rows}

    from reluverify.datasets import load_mnist
    from reluverify.zoo import seed_mlp

    net = seed_mlp()
    data = load_mnist()
    xs = data.x_test[: args.images].reshape(args.images, -1).astype(np.float64)
    ys = data.y_test[: args.images].astype(int)

    revision = library_revision()  # at the start: other people may commit while this runs
    tmp = Path(tempfile.mkdtemp(prefix="verify_linf_"))
    onnx_path = _peers.export_onnx(net, tmp / "seed.onnx") if "marabou" in tools else None

    def notes():
        cmds = sorted({r["command"] for r in rows})
        n = [f"command: `{c}`" for c in cmds]
        n += [f"machine: {machine()}; library revision at the start of the last run {revision}; {versions()}",
              f"network: seed_mlp() 784-48-27-10; data: load_mnist() test images 0..{args.images - 1} with their true labels "
              f"(classes {sorted({int(r['label']) for r in rows} | set(ys.tolist()))}); input set: L-inf ball ∩ [0,1]^784; per-instance time limit {args.timeout:g} s per tool",
              "reluverify-<m>: verify_robustness(..., solver='highs', bound_method=m), end-to-end wall time",
              "omlt: OMLT NetworkDefinition from the NumPy weights + ReluBigMFormulation, one model, then per wrong class j "
              "(largest clean logit first) max out_j - out_c with HiGHS (Pyomo contrib interface, default options); "
              "max >= 0: counterexample (stop), < 0: j ruled out; time = build + all MILPs",
              "marabou: float64 ONNX (Gemm/Relu) + VNN-LIB (ball ∩ [0,1], or_j Y_j >= Y_c), Marabou.read_onnx(...).solve(...) "
              "with default options; time = read_onnx + solve (VNN-LIB written before the clock)",
              "every counterexample (all tools) re-checked by a float64 forward pass of the reluverify network"]
        n += skipped + list(args.note)
        if caps:
            n.append("images per tool capped: " + ", ".join(f"{k} first {v}" for k, v in caps.items()))
        return n

    for eps in eps_list:
        for i in range(args.images):
            x, c = xs[i], int(ys[i])
            verdicts = {r["tool"]: r["verdict"] for r in rows if int(r["image"]) == i and float(r["eps"]) == eps}
            for tool in tools:
                base = tool.split("-")[0]
                if i >= caps.get(tool, caps.get(base, args.images)) or (i, eps, tool) in done:
                    continue
                t_start = time.perf_counter()
                try:
                    if tool.startswith("reluverify-"):
                        verdict, dt, detail = reluverify_run(net, x, c, eps, args.timeout, tool.split("-", 1)[1])
                    elif tool == "omlt":
                        verdict, dt, detail = _peers.omlt_verify(net, x, c, eps, args.timeout)
                    else:
                        vnn = tmp / f"img{i}_eps{eps}.vnnlib"
                        _peers.write_vnnlib(vnn, x, eps, c, net.n_outputs)
                        verdict, dt, detail = _peers.marabou_verify(net, onnx_path, vnn, x, c, eps, args.timeout)
                except Exception as exc:  # record and go on
                    verdict, dt, detail = "error", time.perf_counter() - t_start, f"{type(exc).__name__}: {exc}"
                row = {"image": i, "label": c, "eps": eps, "tool": tool, "verdict": verdict,
                       "time_s": f"{dt:.4f}", "detail": detail.replace("\n", " "), "command": command}
                append_row(csv_path, row, FIELDS)
                rows.append({k: str(v) for k, v in row.items()})
                verdicts[tool] = verdict
                print(f"img {i:3d} eps {eps:<5g} {tool:20s} {verdict:11s} {dt:8.2f}s  {detail[:110]}", flush=True)
                if "FAILS CHECK" in detail:
                    print(f"!!!!!!!! {tool} counterexample FAILS the float64 check: image {i} eps {eps}: {detail}",
                          file=sys.stderr, flush=True)
            d = disagreement(verdicts)
            if d:
                banner = "!" * 78
                print(f"{banner}\n!!! VERDICT DISAGREEMENT image {i} eps {eps}: {d}\n{banner}", file=sys.stderr, flush=True)
            render(md_path, rows, tools, notes())
    render(md_path, rows, tools, notes())
    print(md_path.read_text())


if __name__ == "__main__":
    main()
