"""Values that layers-as-objects (issue #14 item 2) must leave bit for bit unchanged.

:func:`compute` evaluates, on fixed networks and domains, every bound strategy (interval, symbolic,
LP, optimised), the batched bounds and optimised bound of branch and bound, split scores, the
arrays MILP, the attacks' gradients and a few ``check_property`` answers. It uses only APIs that
existed before layers became objects, so the same function runs on the old code:

    git worktree add /tmp/rv_before 678277f   # the commit before layers-as-objects
    cd /tmp/rv_before && OPENBLAS_NUM_THREADS=1 PYTHONPATH=src RELUVERIFY_BENCHMARKS=/path/to/benchmarks \\
        python /path/to/tests/layers_fixture.py tests/fixtures/layers_before.npz

writes the fixture (``tests/fixtures/layers_before.npz``, with its provenance), and
``tests/test_layers_identical.py`` compares the current code's values with it: small arrays
exactly, large ones by SHA-256 of their bytes, answers as strings.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np

FULL_LIMIT = 4096  # arrays up to this size are stored whole (else as a digest)


def digest(a: np.ndarray) -> str:
    a = np.ascontiguousarray(a)
    return hashlib.sha256(f"{a.dtype.str}{a.shape}".encode() + a.tobytes()).hexdigest()


def _benchmarks() -> Path:
    from conftest import benchmarks_dir  # the one place that knows where the benchmark files are

    return benchmarks_dir()


def _networks():
    from reluverify import Network

    rng = np.random.default_rng(7)
    nets = {
        "a": Network.random([6, 12, 10, 4], seed=1),
        "b": Network.random([8, 16, 16, 16, 5], seed=2, scale=1.5),
        # a ReLU on the outputs (as ERAN's MNIST networks)
        "c": Network.from_arrays([rng.normal(0, 0.5, (10, 5)), rng.normal(0, 0.4, (6, 10))],
                                 [rng.normal(0, 0.2, 10), rng.normal(0, 0.2, 6)], ["relu", "relu"]),
        # a linear hidden layer (the optimised bound is not compared on it)
        "d": Network.from_arrays([rng.normal(0, 0.6, (9, 4)), rng.normal(0, 0.5, (7, 9)),
                                  rng.normal(0, 0.5, (8, 7)), rng.normal(0, 0.5, (3, 8))],
                                 [rng.normal(0, 0.1, 9), rng.normal(0, 0.1, 7), rng.normal(0, 0.1, 8),
                                  rng.normal(0, 0.1, 3)], ["relu", "linear", "relu", "linear"]),
    }
    return nets


def _record(out: dict, key: str, value) -> None:
    if isinstance(value, str):
        out[key] = np.array(value)
        return
    a = np.asarray(value)
    if a.dtype == object:
        raise TypeError(key)
    out[key] = a if a.size <= FULL_LIMIT else np.array("sha256:" + digest(a))


def _bounds_values(out, tag, net, domain, methods):
    from reluverify.bounds import compute_bounds
    from reluverify.formulation import network_arrays

    for m in methods:
        b = compute_bounds(net, domain, m)
        for k in range(len(net.layers)):
            _record(out, f"{tag}/{m}/lower{k}", b.lower[k])
            _record(out, f"{tag}/{m}/upper{k}", b.upper[k])
        _record(out, f"{tag}/{m}/unstable", np.array(b.unstable_counts()))
        if m == "symbolic":
            arr = network_arrays(net, b)
            for f in ("col_lower", "col_upper", "integrality", "a_start", "a_index", "a_value", "row_lower",
                      "row_upper", "input_cols", "output_cols"):
                _record(out, f"{tag}/arrays/{f}", getattr(arr, f))
            for k in range(len(net.layers)):
                _record(out, f"{tag}/arrays/layer_cols{k}", arr.layer_cols[k])
                _record(out, f"{tag}/arrays/binary_cols{k}", arr.binary_cols[k])
            if net.layers[-1].activation == "linear":
                from reluverify.bounds.base import logit_difference_upper

                diffs = [logit_difference_upper(b, i, j) for i in range(net.n_outputs) for j in range(net.n_outputs)]
                _record(out, f"{tag}/logit_difference_upper", np.array(diffs))
            out[f"{tag}/post_last_lower"], out[f"{tag}/post_last_upper"] = b.output_bounds()


def _batch_values(out, tag, net, box, rng, optimise: bool):
    from reluverify.bounds.batch import batch_bounds, batch_linear_bounds
    from reluverify.bounds.optimised import optimised_bound
    from reluverify.problems.attack import backpropagate, gap_gradient, pgd_attack
    from reluverify.engine.branch import split_scores

    n = net.n_inputs
    B = 5
    lo = box.lower + rng.random((B, n)) * 0.3 * (box.upper - box.lower)
    hi = box.upper - rng.random((B, n)) * 0.3 * (box.upper - box.lower)
    L, U = batch_bounds(net, lo, hi)
    L2, U2 = batch_bounds(net, lo, hi, parent=(L, U), start=1, unstable_only=True)
    for k in range(len(net.layers)):
        _record(out, f"{tag}/batch/lower{k}", L[k])
        _record(out, f"{tag}/batch/upper{k}", U[k])
        _record(out, f"{tag}/batch2/lower{k}", L2[k])
        _record(out, f"{tag}/batch2/upper{k}", U2[k])
    a_x = rng.normal(0, 0.1, (3, n))
    a_y = rng.normal(0, 1.0, (3, net.n_outputs))
    lb, A = batch_linear_bounds(net, L, U, lo, hi, a_x, a_y)
    _record(out, f"{tag}/linear_lb", lb)
    _record(out, f"{tag}/linear_A", A)
    for j, s in enumerate(split_scores(net, L[:], U[:], np.repeat(a_y[:1], B, axis=0))):
        _record(out, f"{tag}/scores{j}", s)
    x = lo + rng.random((B, n)) * (hi - lo)
    y, pre = net.forward(x, return_all=True)
    _record(out, f"{tag}/forward", y)
    g = rng.normal(0, 1.0, (B, net.layers[-1].n_in))
    _record(out, f"{tag}/backpropagate", backpropagate(net, pre, g))
    if net.layers[-1].activation == "linear":
        i = np.arange(B) % net.n_outputs
        v, gg = gap_gradient(net, x, i, net.n_outputs - 1)
        _record(out, f"{tag}/gap_value", v)
        _record(out, f"{tag}/gap_gradient", gg)
        bx, bg = pgd_attack(net, x[0], 0, box, steps=20, restarts=3, seed=1)
        _record(out, f"{tag}/pgd_x", bx)
        _record(out, f"{tag}/pgd_gap", np.array([bg]))
    if optimise:
        keep = [np.flatnonzero(np.any(u > 0, axis=0)) for u in U[:-1]]
        lb_o, corner, params = optimised_bound(net.layers, L[:-1], U[:-1], lo, hi, a_x[np.arange(B) % 3],
                                               a_y[np.arange(B) % 3], steps=15, keep=keep)
        _record(out, f"{tag}/opt_lb", lb_o)
        _record(out, f"{tag}/opt_corner", corner)
        lb_w, _, _ = optimised_bound(net.layers, L[:-1], U[:-1], lo, hi, a_x[np.arange(B) % 3],
                                     a_y[np.arange(B) % 3], steps=5, keep=keep, start=params)
        _record(out, f"{tag}/opt_lb_warm", lb_w)


def compute(with_benchmarks: bool = True) -> dict:
    from reluverify.domain import Box, L1Box
    from reluverify.zoo import seed_mlp

    out: dict = {}
    rng = np.random.default_rng(11)
    for tag, net in _networks().items():
        n = net.n_inputs
        centre = rng.uniform(-0.5, 0.5, n)
        box = Box(centre - 0.6, centre + 0.6)
        relu_hidden = all(layer.activation == "relu" for layer in net.layers[:-1])
        methods = ["interval", "symbolic", "lp"] + (["optimised"] if relu_hidden else [])
        _bounds_values(out, f"{tag}/box", net, box, methods)
        l1 = L1Box.around(centre, 0.9, box)
        _bounds_values(out, f"{tag}/l1", net, l1, ["interval", "symbolic", "lp"])
        _batch_values(out, tag, net, box, rng, optimise=relu_hidden)
    seed = seed_mlp()
    img = np.where(rng.random(784) < 0.25, rng.random(784), 0.0)
    ball = Box(np.maximum(img - 0.03, 0.0), np.minimum(img + 0.03, 1.0))
    _bounds_values(out, "seed/ball", seed, ball, ["interval", "symbolic", "optimised", "lp"])
    _batch_values(out, "seed", seed, ball, rng, optimise=True)
    folder = _benchmarks() / "vnncomp2022" / "mnist_fc"
    if with_benchmarks and folder.is_dir():
        import reluverify as rv
        from reluverify.bounds import compute_bounds
        from reluverify.formulation import network_arrays

        net = rv.from_onnx(str(folder / "onnx" / "mnist-net_256x2.onnx.gz"))
        for prop in ("prop_0_0.03", "prop_1_0.03", "prop_3_0.03"):
            p = rv.read_vnnlib(str(folder / "vnnlib" / f"{prop}.vnnlib.gz"))
            region = p.regions[0]
            if prop == "prop_0_0.03":
                b = compute_bounds(net, Box(region.lower, region.upper), "optimised")
                for k in range(len(net.layers)):
                    _record(out, f"mnist/optimised/lower{k}", b.lower[k])
                    _record(out, f"mnist/optimised/upper{k}", b.upper[k])
                arr = network_arrays(net, b)
                for f in ("col_lower", "col_upper", "a_index", "a_value", "row_lower", "row_upper"):
                    _record(out, f"mnist/arrays/{f}", getattr(arr, f))
            res = rv.check_property(net, p, time_limit=60)
            out[f"mnist/check_property/{prop}"] = np.array(str(res.verdict))
    return out


def _provenance() -> str:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return (f"computed by tests/layers_fixture.py at commit {commit} (code before layers became objects), "
            f"numpy {np.__version__}")


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/layers_before.npz"
    values = compute()
    values["_provenance"] = np.array(_provenance())
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(target, **values)
    print(f"wrote {len(values)} values to {target}")
