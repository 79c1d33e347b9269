"""Exact minimal L-inf distortion of tree ensembles on MNIST (issue #16), against a plain per-leaf big-M MILP.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/trees.py --model rf|xgb
        [--images 100] [--timeout 60] [--baseline-images 20] [--baseline-timeout T] [--no-cross-check]
        [--tag NAME] [--solver highs] [--resume [CSV]]

Models, trained here on the bundled MNIST training images (``reluverify.datasets.load_mnist()``,
one thread, seed 0): ``rf``: scikit-learn ``RandomForestClassifier(100, max_depth=10)``; ``xgb``:
``XGBClassifier(n_estimators=50, max_depth=6)`` (10 classes x 50 rounds = 500 trees; needs xgboost).

Images: the first ``--images`` test images the model classifies correctly. For each,
``minimal_distortion(model, x, "linf", label=y, time_limit=T, threads=1)`` (greedy attack, per-tree
bounds, one pruned Kantchelian MILP per class left); recorded: distance of the re-checked example
(float64 forward pass **and** the framework's ``predict`` say another class; distance recomputed),
the proven lower bound, "optimal" when ``distance - lower_bound <= 1e-4 * max(1, distance)``, wall time.

Baseline (the first ``--baseline-images`` of those images, same solver, one thread,
``--baseline-timeout`` seconds in all per image, default T): the formulation the embedding libraries use, without pruning: one binary per leaf of
every tree touching the two classes, ``sum = 1`` per tree, per leaf and path node a big-M row over
the whole valid box ``[0, 1]``; one MILP per wrong class (natural order) minimising the L-inf distance
with the class-change row ``score_j - score_c >= -slack`` and the best distance so far as a cutoff;
no attack, no bounds. Its points are moved into the exact cell of their selected leaves and checked
like ours. Disagreement: both optimal with distances more than 1e-6 apart, or one's proven bound
above the other's checked distance. The plain baseline rarely gets anywhere on the whole box, so a
cross-check runs the same per-leaf big-M MILP over the L-inf ball of radius twice our distance (all
leaves kept, only the box smaller; its optimum there is the true minimum when ours is right) and
counts disagreements the same way.

The speed-up is reported as the ratio of the median times (baseline / ours) and the median of the
per-image ratios; where the baseline hit its time cap without proving its optimum, its time is the
cap and the ratio is a lower bound (the report counts those images). ``--no-cross-check`` skips the
cross-check.

Writes ``benchmarks/results/trees_<model>[_<tag>].md`` and ``.csv`` (rows as they finish).
``--resume`` keeps the rows of that CSV (or of the CSV named after it, e.g. a shorter run's) for the
images this run chooses and computes only the others; a kept row of an image in the baseline range
must hold the baseline's columns (and the cross-check's, unless ``--no-cross-check``), else it is
computed again. The CSV records no options: resume only from a run with the same model, time limits
and code.
"""

from __future__ import annotations

import argparse
import csv
import math
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
from reluverify.check import solver_proof  # noqa: E402
from reluverify.datasets import load_mnist  # noqa: E402
from reluverify.engine.milp import open_model  # noqa: E402
from reluverify.sets import LinfBall  # noqa: E402
from reluverify.tolerances import OPTIMAL_REL_GAP  # noqa: E402
from reluverify.trees import leaf_bigm_arrays  # noqa: E402
from reluverify.trees.problems import check_witness, proof_slack  # noqa: E402

FIELDS = ["image", "label", "verdict", "distance", "lower_bound", "optimal", "time_s", "milps",
          "base_distance", "base_lower_bound", "base_optimal", "base_time_s", "agree", "check_distance",
          "check_optimal", "check_time_s", "check_agree", "message"]


def train(model: str, data):
    X = data.x_train.reshape(len(data.x_train), -1)
    if model == "rf":
        from sklearn.ensemble import RandomForestClassifier

        m = RandomForestClassifier(100, max_depth=10, random_state=0, n_jobs=1).fit(X, data.y_train)
        return m, rv.from_sklearn(m)
    if model == "xgb":
        import xgboost as xgb

        m = xgb.XGBClassifier(n_estimators=50, max_depth=6, n_jobs=1, random_state=0).fit(X, data.y_train)
        return m, rv.from_xgboost(m)
    raise SystemExit(f"unknown model {model!r}: rf or xgb")


def _snap_leaves(ens, ta, values, x):
    """The baseline's point moved into the exact cell of the leaves it selected."""
    lo, hi = ta.box[0].copy(), ta.box[1].copy()
    for i, cols in ta.leaf_cols.items():
        t = ens.trees[i]
        leaf = max(cols, key=lambda node: values[cols[node]])
        parent = {}
        for node in range(t.n_nodes):
            if t.left[node] >= 0:
                parent[int(t.left[node])] = (node, True)
                parent[int(t.right[node])] = (node, False)
        node = leaf
        while node in parent:
            up, is_left = parent[node]
            f, L = int(t.feature[up]), float(t.limit[up])
            if is_left:
                hi[f] = min(hi[f], L)
            else:
                lo[f] = max(lo[f], float(np.nextafter(L, np.inf)))
            node = up
    ok = lo <= hi
    return np.where(ok, np.clip(x, lo, hi), x)


def baseline(ens, x, c, solver, time_limit, radius=None):
    """``(distance or None, lower bound, time)`` of the plain per-leaf big-M MILPs (module docstring);
    with ``radius``, over the L-inf ball of that radius instead of the whole valid box (the
    cross-check: the same formulation, all leaves kept, only the input box smaller)."""
    t0 = time.perf_counter()
    ball = LinfBall(x)
    inputs = LinfBall(x, radius)
    lo_box, hi_box = inputs.hull().lower, inputs.hull().upper
    best, lower = math.inf, []
    for j in range(ens.n_outputs):
        if j == c:
            continue
        left = time_limit - (time.perf_counter() - t0)
        if left <= 0.1:
            lower.append(0.0)
            continue
        ta = leaf_bigm_arrays(ens, lo_box, hi_box, trees=ens.output_trees([c, j]), outputs=[c, j])
        model = open_model(ta.arrays, solver, threads=1, big_m_value=ta.big_m)
        cols, coefs, const = ball.encode_distance(model, ta.input_cols)
        model.set_objective(dict(zip(cols, coefs)), "min", offset=const)
        if math.isfinite(best):
            model.add_rows(-np.inf, best - const, [(list(cols), list(coefs))])
        model.add_rows(-proof_slack(ens, [c, j]), np.inf, [([ta.score_col(j), ta.score_col(c)], [1.0, -1.0])])
        sres, values = model.solve(time_limit=left)
        proof = solver_proof(sres, ta.big_m)
        if proof.infeasible:
            lower.append(best)
        elif proof.bound is not None:
            lower.append(min(max(0.0, proof.bound), best))
        else:
            lower.append(0.0)
        if values is not None:
            p = _snap_leaves(ens, ta, values, np.clip(values[ta.input_cols], lo_box, hi_box))
            if check_witness(ens, p, c, inputs) is None:
                best = min(best, float(np.max(np.abs(p - x))))
    lb = min(lower) if lower else math.inf
    if radius is not None and not math.isfinite(best):
        lb = min(lb, radius)  # nothing closer than the radius: a bound on the radius only
    return (best if math.isfinite(best) else None), min(lb, best), time.perf_counter() - t0


def baseline_notes(based: list, base_limit: float) -> list:
    """The side-by-side lines of the report: baseline vs ours on the same images, the cross-check."""
    if not based:
        return []
    ours_t = [float(r["time_s"]) for r in based]
    base_t = [float(r["base_time_s"]) for r in based]
    unproven = sum(str(r["base_optimal"]) != "True" for r in based)
    capped = sum(t >= 0.98 * base_limit for t in base_t)
    ratios = [b / max(o, 1e-9) for b, o in zip(base_t, ours_t)]
    bound = (" (a lower bound: an unproven baseline stopped at its cap, or its MILPs ended at a tie point the "
             "model does not classify as claimed, the plain formulation having no strictness step; either way its "
             "time is a lower bound on its time to a checked optimum)" if unproven else "")
    notes = [f"Baseline (plain per-leaf big-M, no pruning; {base_limit:g} s cap per image) on the first "
             f"{len(based)} images: {len(based) - unproven} proven optimal, {unproven} unproven ({capped} of them "
             f"at the cap); median time {statistics.median(base_t):.2f} s vs ours on the same images "
             f"{statistics.median(ours_t):.2f} s: **{statistics.median(base_t) / max(statistics.median(ours_t), 1e-9):.1f}x**"
             f"{bound}; median per-image ratio {statistics.median(ratios):.1f}x, smallest {min(ratios):.1f}x; "
             f"**{sum(str(r['agree']) != 'True' for r in based)} disagreements**"]
    checked = [r for r in based if str(r.get("check_agree", "")) in ("True", "False")]
    if checked:
        notes.append(f"Cross-check (the same per-leaf big-M MILP over the L-inf ball of radius 2 x our distance): "
                     f"{sum(str(r['check_optimal']) == 'True' for r in checked)} of {len(checked)} proven optimal, "
                     f"median time {statistics.median([float(r['check_time_s']) for r in checked]):.2f} s; "
                     f"**{sum(str(r['check_agree']) != 'True' for r in checked)} disagreements** with ours")
    return notes


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="rf")
    ap.add_argument("--images", type=int, default=100)
    ap.add_argument("--baseline-images", type=int, default=20)
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--baseline-timeout", type=float, default=None)
    ap.add_argument("--no-cross-check", action="store_true")
    ap.add_argument("--tag", default="")
    ap.add_argument("--solver", default="highs")
    ap.add_argument("--resume", nargs="?", const=True, default=None,
                    help="keep the finished rows of the output CSV (or of the CSV given) and compute the others")
    ap.add_argument("--summarise", default=None, help="print the side-by-side lines of a results CSV and stop")
    args = ap.parse_args()
    base_limit = args.timeout if args.baseline_timeout is None else args.baseline_timeout
    if args.summarise:
        with open(args.summarise, newline="") as fh:
            print("\n".join(baseline_notes([r for r in csv.DictReader(fh) if r["agree"]], base_limit)))
        return 0
    rv.set_blas_threads(1)
    data = load_mnist()
    t0 = time.perf_counter()
    fw, ens = train(args.model, data)
    train_s = time.perf_counter() - t0
    X = data.x_test.reshape(len(data.x_test), -1)
    pred = ens.predict_class(X)
    acc = float(np.mean(pred == data.y_test))
    chosen = [i for i in range(len(X)) if pred[i] == data.y_test[i]][:args.images]
    out_csv = HERE / "results" / (f"trees_{args.model}" + (f"_{args.tag}" if args.tag else "") + ".csv")
    out_csv.parent.mkdir(exist_ok=True)
    command = "OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/trees.py " + shlex.join(sys.argv[1:])
    done = {}
    if args.resume:
        src = out_csv if args.resume is True else Path(args.resume)
        if src.exists():
            with open(src, newline="") as fh:
                done = {int(r["image"]): r for r in csv.DictReader(fh)}
    rows = []
    with open(out_csv, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=FIELDS)
        w.writeheader()
        for i, old in done.items():  # every row found is written back at once: a stopped run loses none
            n = chosen.index(i) if i in chosen else len(chosen)
            keep = n < len(chosen) and int(old["label"]) == int(data.y_test[i]) and (
                n >= args.baseline_images or (old["agree"] != "" and (
                    args.no_cross_check or old["distance"] == "" or old["check_agree"] != "")))
            if n < len(chosen) and not keep:
                continue  # computed again below
            row = {f: old.get(f, "") for f in FIELDS}
            w.writerow(row)
            if keep:
                row.update(image=i, label=int(old["label"]), optimal=old["optimal"] == "True",
                           time_s=float(old["time_s"]))
                if n >= args.baseline_images:  # this run asks for no baseline there: none in its report
                    row.update({f: "" for f in FIELDS[FIELDS.index("base_distance"):-1]})
                rows.append(row)
        fh.flush()
        kept = {int(r["image"]) for r in rows}
        print(f"kept {len(kept)} rows of {len(chosen)}: {sorted(kept)}", flush=True)
        for n, i in enumerate(chosen):
            if i in kept:
                continue
            x, y = X[i], int(data.y_test[i])
            t1 = time.perf_counter()
            res = rv.minimal_distortion(ens, x, "linf", label=y, solver=args.solver, time_limit=args.timeout,
                                        threads=1)
            wall = time.perf_counter() - t1
            row = {"image": i, "label": y, "verdict": str(res.verdict), "time_s": round(wall, 2),
                   "milps": res.stats.get("milps", ""), "message": (res.message or "")[:80]}
            d = None
            if res.verdict == rv.Verdict.FOUND:
                d = float(np.max(np.abs(res.x_adv - x)))
                assert ens.predict_class(res.x_adv) != y and ens.framework_predict(res.x_adv) != y, i
                assert abs(d - res.distance) <= 1e-12 and np.all((res.x_adv >= 0) & (res.x_adv <= 1)), i
                assert res.lower_bound <= d, i
                row.update(distance=f"{d:.9g}", lower_bound=f"{res.lower_bound:.9g}",
                           optimal=d - res.lower_bound <= OPTIMAL_REL_GAP * max(1.0, d))
            else:
                row.update(distance="", lower_bound=f"{res.lower_bound:.9g}" if res.lower_bound is not None else "",
                           optimal=False)
            if n < args.baseline_images:
                bd, blb, bt = baseline(ens, x, y, args.solver, base_limit)
                if d is not None and not args.no_cross_check:  # the cross-check: the same per-leaf big-M MILP over the ball of radius 2 d
                    cd, clb, ct = baseline(ens, x, y, args.solver, args.timeout, radius=2 * d)
                    c_opt = cd is not None and cd - clb <= OPTIMAL_REL_GAP * max(1.0, cd)
                    row.update(check_distance="" if cd is None else f"{cd:.9g}", check_optimal=c_opt,
                               check_time_s=round(ct, 2))
                    if c_opt and row["optimal"] and abs(cd - d) > 1e-6 * max(1.0, d):
                        row["check_agree"] = False
                    elif (cd is not None and res.lower_bound > cd + 1e-9) or clb > d + 1e-9:
                        row["check_agree"] = False
                    else:
                        row["check_agree"] = True
                b_opt = bd is not None and bd - blb <= OPTIMAL_REL_GAP * max(1.0, bd)
                agree = True
                if row["optimal"] and b_opt and abs(bd - d) > 1e-6 * max(1.0, d):
                    agree = False
                if d is not None and blb > d + 1e-9:
                    agree = False
                if bd is not None and res.lower_bound is not None and res.lower_bound > bd + 1e-9:
                    agree = False
                row.update(base_distance="" if bd is None else f"{bd:.9g}", base_lower_bound=f"{blb:.9g}",
                           base_optimal=b_opt, base_time_s=round(bt, 2), agree=agree)
            print(row, flush=True)
            w.writerow(row)
            fh.flush()
            rows.append(row)
    rows.sort(key=lambda r: chosen.index(int(r["image"])))
    n_opt = sum(bool(r["optimal"]) for r in rows)
    in_time = sum(bool(r["optimal"]) and r["time_s"] <= args.timeout + 1 for r in rows)
    times = [r["time_s"] for r in rows]
    dists = [float(r["distance"]) for r in rows if r["distance"] != ""]
    based = [r for r in rows if r.get("agree", "") != ""]
    notes = [f"Machine: {machine()}; one BLAS thread, HiGHS one thread. Command: `{command}`",
             f"Model: {ens.describe()}; test accuracy {acc:.3f} on the {len(X)} bundled test images; "
             f"trained in {train_s:.0f} s",
             f"**{n_opt} of {len(rows)} proven optimal (gap <= {OPTIMAL_REL_GAP:g}), {in_time} within "
             f"{args.timeout:g} s**; median time {statistics.median(times):.2f} s, max {max(times):.2f} s; "
             f"median minimal L-inf distortion {statistics.median(dists):.6g}" if dists else "no example found"]
    notes += baseline_notes(based, base_limit)
    text = write_table(out_csv.with_suffix(".md"), f"Minimal L-inf distortion of tree ensembles ({args.model})",
                       FIELDS[:-1], [[r.get(f, "") for f in FIELDS[:-1]] for r in rows], notes)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
