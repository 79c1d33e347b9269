"""Peer verifiers for side-by-side benchmarks (benchmark-only; never imported by the library).

* OMLT (``pip install omlt``): the network definition is built directly from the NumPy weights with
  OMLT's own ``NetworkDefinition`` / ``InputLayer`` / ``DenseLayer`` (what ``load_keras_sequential``
  produces from a Dense-only Keras Sequential, without needing Keras), input bounds = the L-inf ball
  intersected with [0,1], ``ReluBigMFormulation`` (big-M with OMLT's interval bounds), solved with
  HiGHS through Pyomo's ``pyomo.contrib.solver`` HiGHS interface (the same highspy reluverify uses),
  default HiGHS options.
* Marabou (``pip install maraboupy onnx``): the network exported to ONNX (Gemm/Relu nodes built with
  ``onnx.helper``), the property written as VNN-LIB, ``Marabou.read_onnx(...).solve(propertyFilename=...)``.

Every counterexample a peer returns is re-checked here by a float64 forward pass of the reluverify
network (point clipped into the box first), so a wrong "not robust" would be visible.
"""

from __future__ import annotations

import logging
import os
import sys
import time

import numpy as np


# Exact solvers (Marabou) return points on the decision boundary, out_j = out_c up to float64
# rounding (|gap| ~ 1e-14): accepted as ties. VNN-COMP accepts counterexamples at 1e-4 absolute.
TIE_TOLERANCE = 1e-6


def check_counterexample(net, point, c, lo, hi):
    """``(ok, note)``: is ``point`` (clipped into [lo, hi]) a counterexample, out_j >= out_c for some j != c?"""
    if point is None:
        return False, "no point"
    outside = float(max(np.max(lo - point), np.max(point - hi), 0.0))
    p = np.clip(point, lo, hi)
    lg = net.forward(p)
    gap = float(np.max(np.delete(lg, c)) - lg[c])
    note = f"cex gap {gap:+.3g} (float64 forward), clipped {outside:.1g}"
    if -TIE_TOLERANCE <= gap < 0:
        return True, note + f" (boundary tie within {TIE_TOLERANCE:g})"
    return gap >= 0, note


# --------------------------------------------------------------------------- OMLT
class OmltUnavailable(RuntimeError):
    pass


def omlt_available() -> str | None:
    """None when OMLT and the Pyomo HiGHS interface import, else the reason."""
    try:
        import omlt  # noqa: F401
        from omlt.neuralnet import NetworkDefinition, ReluBigMFormulation  # noqa: F401
        from pyomo.contrib.solver.common.factory import SolverFactory

        if not SolverFactory._cls["highs"]().available():
            return "the Pyomo HiGHS interface reports HiGHS unavailable"
    except Exception as exc:  # pragma: no cover - depends on the environment
        return f"{type(exc).__name__}: {exc} (pip install omlt)"
    return None


def omlt_network_definition(net, lo, hi):
    from omlt.neuralnet import NetworkDefinition
    from omlt.neuralnet.layer import DenseLayer, InputLayer

    nd = NetworkDefinition(scaled_input_bounds={i: (float(lo[i]), float(hi[i])) for i in range(len(lo))})
    prev = InputLayer([net.n_inputs])
    nd.add_layer(prev)
    for layer in net.layers:
        w = np.asarray(layer.weight, dtype=np.float64).T  # OMLT/Keras convention: (n_in, n_out)
        dense = DenseLayer([w.shape[0]], [w.shape[1]], activation=layer.activation, weights=w,
                           biases=np.asarray(layer.bias, dtype=np.float64))
        nd.add_layer(dense)
        nd.add_edge(prev, dense)
        prev = dense
    return nd


def omlt_verify(net, x, c, eps, time_limit):
    """Robustness the way a user of OMLT would check it: one big-M model; for each wrong class j (in
    the order of the clean logits, largest first) maximise out_j - out_c with HiGHS; a maximum >= 0
    is a counterexample (stop), < 0 proves class j unreachable. On a time limit, the HiGHS bound
    (< 0: class j unreachable) or incumbent (>= 0: counterexample) still decides, otherwise unknown.
    ``time_limit`` covers the whole instance (build + all MILPs). Returns (verdict, seconds, detail)."""
    import pyomo.environ as pyo
    from omlt import OmltBlock
    from omlt.neuralnet import ReluBigMFormulation
    from pyomo.contrib.solver.common.factory import SolverFactory
    from pyomo.contrib.solver.common.results import SolutionStatus, TerminationCondition as TC

    logging.getLogger("pyomo").setLevel(logging.ERROR)  # OMLT initialises inputs at 0, outside the box
    t0 = time.perf_counter()
    lo = np.clip(x - eps, 0.0, 1.0)
    hi = np.clip(x + eps, 0.0, 1.0)
    nd = omlt_network_definition(net, lo, hi)
    m = pyo.ConcreteModel()
    m.nn = OmltBlock()
    m.nn.build_formulation(ReluBigMFormulation(nd))
    out = m.nn.outputs
    opt = SolverFactory._cls["highs"]()
    logits = net.forward(x)
    order = [j for j in np.argsort(-logits).tolist() if j != c]
    n_milp = 0
    for j in order:
        left = time_limit - (time.perf_counter() - t0)
        if left <= 0.05:
            return "unknown", time.perf_counter() - t0, f"time limit before class {j} ({n_milp} MILPs)"
        m.obj = pyo.Objective(expr=out[j] - out[c], sense=pyo.maximize)
        res = opt.solve(m, load_solutions=False, raise_exception_on_nonoptimal_result=False, time_limit=left)
        n_milp += 1
        has_sol = res.solution_status in (SolutionStatus.feasible, SolutionStatus.optimal)
        inc, bnd = res.incumbent_objective, res.objective_bound
        m.del_component(m.obj)
        if has_sol and inc is not None and inc >= 0:
            res.solution_loader.load_vars()
            point = np.array([pyo.value(m.nn.inputs[i]) for i in range(net.n_inputs)])
            ok, note = check_counterexample(net, point, c, lo, hi)
            return "not_robust", time.perf_counter() - t0, f"class {j}: max {inc:.4g}; {note}" + ("" if ok else " (FAILS CHECK)")
        if res.termination_condition == TC.convergenceCriteriaSatisfied or (bnd is not None and bnd < 0):
            if bnd is not None and bnd >= 0:  # optimal yet no incumbent >= 0: should not happen
                return "unknown", time.perf_counter() - t0, f"class {j}: optimal status, bound {bnd}"
            continue
        return "unknown", time.perf_counter() - t0, f"class {j}: {res.termination_condition.name}, bound {bnd} ({n_milp} MILPs)"
    return "robust", time.perf_counter() - t0, f"{n_milp} MILPs, every max < 0"


# --------------------------------------------------------------------------- Marabou
def marabou_available() -> str | None:
    try:
        import onnx  # noqa: F401
        from maraboupy import Marabou  # noqa: F401
    except Exception as exc:  # pragma: no cover - depends on the environment
        return f"{type(exc).__name__}: {exc} (pip install maraboupy onnx)"
    return None


def export_onnx(net, path, dtype=np.float64):
    """The network as ONNX: input X [1, n_in] -> (Gemm, Relu)* -> Gemm -> Y [1, n_out]."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    elem = TensorProto.DOUBLE if np.dtype(dtype) == np.float64 else TensorProto.FLOAT
    nodes, inits, prev = [], [], "X"
    last = len(net.layers) - 1
    for k, layer in enumerate(net.layers):
        inits += [numpy_helper.from_array(np.asarray(layer.weight, dtype=dtype), f"W{k}"),
                  numpy_helper.from_array(np.asarray(layer.bias, dtype=dtype), f"B{k}")]
        gemm_out = "Y" if (k == last and layer.activation == "linear") else f"G{k}"
        nodes.append(helper.make_node("Gemm", [prev, f"W{k}", f"B{k}"], [gemm_out], transB=1))
        prev = gemm_out
        if layer.activation == "relu":
            relu_out = "Y" if k == last else f"R{k}"
            nodes.append(helper.make_node("Relu", [prev], [relu_out]))
            prev = relu_out
        elif layer.activation != "linear":
            raise ValueError(f"cannot export activation {layer.activation!r}")
    graph = helper.make_graph(nodes, net.name or "net",
                              [helper.make_tensor_value_info("X", elem, [1, net.n_inputs])],
                              [helper.make_tensor_value_info("Y", elem, [1, net.n_outputs])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def write_vnnlib(path, x, eps, c, n_out):
    """VNN-LIB: the unsafe set = the L-inf ball ∩ [0,1] and (some Y_j >= Y_c)."""
    lo = np.clip(x - eps, 0.0, 1.0)
    hi = np.clip(x + eps, 0.0, 1.0)
    lines = [f"; L-inf ball eps={eps} around a test image of class {c}"]
    lines += [f"(declare-const X_{i} Real)" for i in range(len(x))]
    lines += [f"(declare-const Y_{j} Real)" for j in range(n_out)]
    for i in range(len(x)):
        lines.append(f"(assert (<= X_{i} {float(hi[i])!r}))")
        lines.append(f"(assert (>= X_{i} {float(lo[i])!r}))")
    lines.append("(assert (or")
    lines += [f"    (and (>= Y_{j} Y_{c}))" for j in range(n_out) if j != c]
    lines.append("))")
    with open(path, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    return lo, hi


class _Quiet:
    """Silence C-level stdout (Marabou prints the whole assignment on sat even at verbosity 0)."""

    def __enter__(self):
        sys.stdout.flush()
        self.saved = os.dup(1)
        self.null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(self.null, 1)

    def __exit__(self, *exc):
        sys.stdout.flush()
        os.dup2(self.saved, 1)
        os.close(self.saved)
        os.close(self.null)
        return False


def marabou_verify(net, onnx_path, vnnlib_path, x, c, eps, time_limit):
    """Returns (verdict, seconds of read_onnx + solve, detail). The VNN-LIB file is written by the caller."""
    from maraboupy import Marabou

    lo = np.clip(x - eps, 0.0, 1.0)
    hi = np.clip(x + eps, 0.0, 1.0)
    t0 = time.perf_counter()
    with _Quiet():
        network = Marabou.read_onnx(str(onnx_path))
        result = network.solve(propertyFilename=str(vnnlib_path),
                               options=Marabou.createOptions(timeoutInSeconds=int(max(1, round(time_limit))), verbosity=0))
    dt = time.perf_counter() - t0
    code, vals = result[0], result[1]
    if code == "unsat":
        return "robust", dt, "unsat"
    if code == "sat":
        point = np.array([vals[v] for v in np.asarray(network.inputVars[0]).ravel()], dtype=np.float64)
        ok, note = check_counterexample(net, point, c, lo, hi)
        return "not_robust", dt, "sat; " + note + ("" if ok else " (FAILS CHECK)")
    return "unknown", dt, str(code)
