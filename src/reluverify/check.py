"""Check answers against the float64 forward pass: never trust a solver's numbers on their own."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .domain import Box
from .model import Network
from .results import SolveResult, Status
from .tolerances import COUNTEREXAMPLE_TOLERANCE, INFERENCE_TOLERANCE, MAX_TRUSTED_BIG_M


@dataclass(frozen=True)
class SolverProof:
    """What one solver run proves under reluverify's one trust rule (:func:`solver_proof`).

    ``infeasible``: the MILP has no point (a proof). ``bound``: a proven dual bound on its
    objective (in the objective's sense), or ``None``. ``note``: why the run proves nothing
    although the solver claimed something (empty otherwise)."""

    infeasible: bool
    bound: float | None
    note: str = ""


def solver_proof(sres: SolveResult, big_m_value: float) -> SolverProof:
    """The one rule that turns a solver status into a proof, used by every problem.

    * ``infeasible`` only from :attr:`Status.INFEASIBLE` (never from a time limit, an error or an
      "infeasible or unbounded"; the solver layer maps local statuses to no proof);
    * a dual bound only from an optimal or time-limited run that reports a finite one;
    * neither when the model's largest big-M constant (``big_m_value``, see
      :func:`reluverify.bounds.base.big_m`) exceeds :data:`~reluverify.tolerances.MAX_TRUSTED_BIG_M`:
      there solvers "proved" infeasible MILPs whose feasible set was a slab thinner than their
      tolerances (tests/test_near_boundary.py).

    What the MILP asks for is the caller's half of the rule: a claim that a class cannot win is
    only made from a MILP that asks for the win up to ``VERIFY_SLACK`` (``out_j >= out_c - slack``).
    """
    claimed = sres.status == Status.INFEASIBLE or (
        sres.status in (Status.OPTIMAL, Status.TIME_LIMIT) and sres.bound is not None)
    if not big_m_value <= MAX_TRUSTED_BIG_M:
        note = (f"the model's big-M constants reach {big_m_value:.3g} (> {MAX_TRUSTED_BIG_M:g}), beyond what the "
                "solver's tolerances resolve: its infeasibility and bounds are not taken as a proof (rescale the "
                "network's weights or inputs)") if claimed else ""
        return SolverProof(False, None, note)
    bound = None
    if sres.status in (Status.OPTIMAL, Status.TIME_LIMIT) and sres.bound is not None and np.isfinite(sres.bound):
        bound = float(sres.bound)
    return SolverProof(sres.status == Status.INFEASIBLE, bound)


def compare_outputs(network: Network, x, outputs, tol: float = INFERENCE_TOLERANCE) -> tuple:
    """``(reference, max_abs_error, matches)`` of MILP ``outputs`` against ``network.forward(x)``."""
    reference = network.forward(x)
    if outputs is None:
        return reference, None, False
    outputs = np.asarray(outputs, dtype=np.float64)
    if outputs.shape != reference.shape or not np.all(np.isfinite(outputs)):
        return reference, None, False
    err = float(np.max(np.abs(outputs - reference)))
    return reference, err, err <= tol


def distances(x_adv, x0, ball=None) -> dict:
    """L1, L-inf and L0 distance between two points, recomputed in float64; with ``ball`` (a
    :class:`~reluverify.sets.ball.Ball` around ``x0``) its norm's distance too, for norms beyond these."""
    d = np.asarray(x_adv, dtype=np.float64).ravel() - np.asarray(x0, dtype=np.float64).ravel()
    out = {"l1": float(np.sum(np.abs(d))), "linf": float(np.max(np.abs(d))) if d.size else 0.0,
           "l0": int(np.count_nonzero(d))}
    if ball is not None and ball.norm not in out:
        out[ball.norm] = float(ball.distance(np.asarray(x_adv, dtype=np.float64).ravel()))
    return out


def class_gap(logits: np.ndarray, cls: int) -> float:
    """``max_{j != cls} logits[j] - logits[cls]``: positive iff some other class beats ``cls``."""
    others = np.delete(np.asarray(logits, dtype=np.float64), cls)
    return float(np.max(others) - logits[cls])


def target_gap(logits: np.ndarray, target: int) -> float:
    """``logits[target] - max_{j != target} logits[j]``: positive iff ``target`` is the strict argmax."""
    return -class_gap(logits, target)


def keras_logits(keras_model, x: np.ndarray, input_shape) -> np.ndarray:
    """Logits of the source Keras model (float32) for one flattened input."""
    batch = np.asarray(x, dtype=np.float32).reshape((1,) + tuple(input_shape))
    out = keras_model(batch, training=False)
    return np.asarray(out, dtype=np.float64).ravel()


@dataclass
class WitnessCheck:
    ok: bool
    reason: str
    logits: np.ndarray | None = None
    gap: float | None = None
    keras_ok: bool | None = None


def check_witness(
    network: Network,
    x_adv,
    *,
    domain: Box,
    original_class: int,
    target: int | None = None,
    margin: float = 0.0,
    criterion=None,
    keras_model=None,
    extra=None,
    reference=None,
) -> WitnessCheck:
    """Re-check an adversarial example from scratch.

    The point must be finite, inside ``domain`` (exactly), and in the float64 forward pass either
    beat ``original_class`` with another class (untargeted) or make ``target`` the strict argmax,
    by at least ``margin`` (and by > 0 in any case). ``criterion(logits) -> (ok, gap)`` replaces the
    class test when given (e.g. the seed notebook's ratio rule). ``extra(x) -> str | None`` checks
    problem-specific limits (budgets). With ``reference`` (the source model as a callable ``x ->
    logits``) or ``keras_model`` the source model must agree.
    """
    x_adv = np.asarray(x_adv, dtype=np.float64).ravel()
    if x_adv.size != domain.size:  # else a 1-value point broadcasts through ``domain.contains``
        return WitnessCheck(False, f"the point has {x_adv.size} values but the domain has {domain.size}")
    if not np.all(np.isfinite(x_adv)):
        return WitnessCheck(False, "the point has NaN or infinite values")
    if not domain.contains(x_adv):
        return WitnessCheck(False, "the point lies outside the allowed input domain")
    if extra is not None:
        problem = extra(x_adv)
        if problem:
            return WitnessCheck(False, problem)
    logits = network.forward(x_adv)
    if criterion is not None:
        ok, gap = criterion(logits)
    elif target is None:
        gap = class_gap(logits, original_class)
        ok = gap > 0 and gap >= margin
    else:
        gap = target_gap(logits, target)
        ok = gap > 0 and gap >= margin
    if not ok:
        return WitnessCheck(False, f"float64 forward pass: class margin {gap:.3g} below the required {margin:.3g}", logits, gap)
    keras_ok = None
    if reference is not None or keras_model is not None:
        kl = (np.asarray(reference(x_adv), dtype=np.float64).ravel() if reference is not None
              else keras_logits(keras_model, x_adv, network.input_shape))
        if criterion is not None:
            keras_ok = bool(criterion(kl)[0])
        elif target is None:
            keras_ok = int(np.argmax(kl)) != original_class
        else:
            keras_ok = int(np.argmax(kl)) == target
        if not keras_ok:
            return WitnessCheck(False, "the source model does not confirm the class change", logits, gap, False)
    return WitnessCheck(True, "ok", logits, gap, keras_ok)


def snap_float32(x, lower, upper) -> np.ndarray:
    """``x`` clipped into ``[lower, upper]`` and rounded to float32 values that stay inside it.

    Counterexamples are written to text and read back by float32 tools (onnxruntime); a point
    that is already float32-exact means every checker evaluates the same input. Where the box is
    narrower than float32 spacing the clipped float64 point is returned.
    """
    lower = np.asarray(lower, dtype=np.float64)
    upper = np.asarray(upper, dtype=np.float64)
    x = np.clip(np.asarray(x, dtype=np.float64), lower, upper)
    x32 = x.astype(np.float32)
    below = x32.astype(np.float64) < lower
    x32[below] = np.nextafter(x32[below], np.float32(np.inf))
    above = x32.astype(np.float64) > upper
    x32[above] = np.nextafter(x32[above], np.float32(-np.inf))
    out = x32.astype(np.float64)
    bad = (out < lower) | (out > upper)
    out[bad] = x[bad]
    return out


@dataclass
class CounterexampleCheck:
    """Outcome of :func:`check_counterexample`; ``y`` is the float64 forward pass at ``x``."""

    ok: bool
    x: np.ndarray
    y: np.ndarray
    region: int | None
    violation: float
    reason: str = ""
    reference_violation: float | None = None


def check_counterexample(network: Network, prop, x, reference=None,
                         tol: float = COUNTEREXAMPLE_TOLERANCE, *, strict: bool = False, inputs=None,
                         extra=None, regions=None, reference_slack: float = 0.0) -> CounterexampleCheck:
    """Re-check a claimed counterexample of ``prop`` (a :class:`reluverify.spec.Property`).

    ``x`` must lie inside some region's input box (and in ``inputs``, an input set, when given),
    and the float64 forward pass must satisfy that region's rows exactly (violation <= 0; < 0 with
    ``strict``, e.g. a class *change*: a tie is no counterexample). ``reference(x) -> y`` (e.g.
    onnxruntime or Keras on the original model) must satisfy them within ``tol`` (strictly, with
    ``strict``: by less than ``reference_slack``, the rows' own margin, e.g. a class change that
    the float64 pass shows with a margin), as VNN-COMP checks. ``extra(x) -> str | None`` checks what else the question asks
    (a budget, a probability). ``regions`` restricts the search to those region indices. Nothing
    the solver claimed is used.
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    if x.size != prop.n_inputs or not np.all(np.isfinite(x)):
        return CounterexampleCheck(False, x, np.full(prop.n_outputs, np.nan), None, np.inf,
                                   "the point has the wrong length or non-finite values")
    y = network.forward(x)
    best, best_v = None, np.inf
    for i in (range(len(prop.regions)) if regions is None else regions):
        v = prop.regions[i].violation(x, y)
        if v < best_v:
            best, best_v = i, v
    if best_v > 0 or (strict and not best_v < 0):
        return CounterexampleCheck(False, x, y, best, best_v,
                                   f"float64 forward pass: the point misses the property by {best_v:.3g}"
                                   + (" (a tie is not a counterexample)" if strict and best_v == 0 else ""))
    if inputs is not None:
        problem = inputs.problem(x)
        if problem:
            return CounterexampleCheck(False, x, y, best, best_v, f"the point leaves the input set: {problem}")
    if extra is not None:
        problem = extra(x)
        if problem:
            return CounterexampleCheck(False, x, y, best, best_v, problem)
    ref_v = None
    if reference is not None:
        y_ref = np.asarray(reference(x), dtype=np.float64).ravel()
        ref_v = prop.regions[best].violation(x, y_ref)
        if not (ref_v < reference_slack if strict else ref_v <= tol):
            return CounterexampleCheck(False, x, y, best, best_v,
                                       f"the reference model misses the property by {ref_v:.3g} "
                                       + ("(it must meet it strictly)" if strict else f"(tolerance {tol:g})"), ref_v)
    return CounterexampleCheck(True, x, y, best, best_v, "", ref_v)
