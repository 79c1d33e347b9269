"""Helpers shared by the benchmark scripts (not part of the library)."""

from __future__ import annotations

import gzip
import os
import platform
from pathlib import Path

import numpy as np

from reluverify import Network

SHARED = Path(os.environ.get("RELUVERIFY_SHARED", Path(__file__).resolve().parents[2] / "shared"))
# the folder holding vnncomp2022/ and eran/: $RELUVERIFY_BENCHMARKS (as the tests read it), else
# $RELUVERIFY_SHARED/benchmarks, else ../shared/benchmarks
BENCHMARKS = Path(os.environ.get("RELUVERIFY_BENCHMARKS", "").strip() or SHARED / "benchmarks").expanduser()
VNNCOMP = BENCHMARKS / "vnncomp2022"


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def mnist_fc_network(depth: int) -> Network | None:
    """The VNN-COMP 2022 mnist_fc 784-256x{depth} network, read straight from its ONNX initializers
    (a benchmark-only reader; needs the `onnx` package and ../shared). None when unavailable."""
    path = VNNCOMP / "mnist_fc" / "onnx" / f"mnist-net_256x{depth}.onnx.gz"
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        return None
    if not path.exists():
        return None
    model = onnx.load_model_from_string(gzip.open(path).read())
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    weights, biases = [], []
    for node in model.graph.node:
        if node.op_type == "Gemm":
            w = inits[node.input[1]].astype(np.float64)
            trans_b = any(a.name == "transB" and a.i == 1 for a in node.attribute)
            weights.append(w if trans_b else w.T)
            biases.append(inits[node.input[2]].astype(np.float64))
    return Network.from_arrays(weights, biases, name=f"mnist_fc-256x{depth}")


def write_table(path: Path, title: str, header: list, rows: list, notes: list = ()) -> str:
    lines = [f"# {title}", ""]
    lines += [f"- {n}" for n in notes]
    lines += ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    text = "\n".join(lines) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return text


def benchmark_networks():
    """The seed network and the VNN-COMP mnist_fc 784-256x6 network (a random network of that shape
    when ../shared is absent), as (label, Network) pairs."""
    from reluverify.zoo import seed_mlp

    yield "seed 784-48-27-10", seed_mlp()
    net = mnist_fc_network(6)
    if net is None:
        yield "random 784-256x6 (shared files absent)", Network.random([784] + [256] * 6 + [10], seed=0)
    else:
        yield "mnist_fc 784-256x6 (VNN-COMP 2022)", net
