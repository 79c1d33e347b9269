"""The strongest wrong answer under a budget: a linear objective over the engine's MILP.

:func:`max_confidence` maximises a target class's logit (or its margin over every other class) over
the inputs within ``eps`` of ``x`` (in ``norm``, inside the valid box and the limits of a
:class:`~reluverify.domain.Perturbation`). The MILP is the engine's (:class:`reluverify.engine.milp.NetworkMilp`:
the layers' rows over sound bounds of the input set, the set's own encoding); the witness check and
the trust rule are the engine's too (:func:`reluverify.check.check_witness`,
:func:`reluverify.check.solver_proof`).
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from ..bounds import compute_bounds
from ..check import check_witness, distances, solver_proof, target_gap
from ..engine.common import Clock
from ..engine.milp import NetworkMilp
from ..errors import InputError
from ..model import Network
from ..results import AdversarialResult, Status, Verdict
from ..sets import check_norm
from ..threads import limit_blas
from .dispatch import by_model
from ..solvers import DEFAULT_SOLVER
from ..tolerances import DEFAULT_MARGIN, DEFAULT_TIME_LIMIT, MARGIN_GROWTH, RETRY_MARGIN_STEP, VERIFY_SLACK, \
    WITNESS_RETRIES
from .common import check_time, class_index, finite_nonnegative, resolve_reference


def objective_milp(network: Network, bounds, inputs, t: int, objective: str, goal: float | None, *, solver: str,
                   threads: int | None = None, mip_gap: float | None = None) -> NetworkMilp:
    """The engine's MILP over ``inputs`` maximising class ``t``'s logit (``objective="logit"``) or
    its margin over every other class (``"margin"``: ``out_t - m`` with ``m >= out_k`` for every
    other ``k``); with ``goal``, rows ``out_t - out_k >= goal`` for every other ``k``."""
    milp = NetworkMilp(network, bounds, solver, inputs=inputs, threads=threads, mip_gap=mip_gap)
    out = milp.arrays.output_cols
    others = [k for k in range(network.n_outputs) if k != t]

    def rows(first):
        return [(np.array([first, out[k]], dtype=np.int32), np.array([1.0, -1.0])) for k in others]

    if objective == "logit":
        milp.model.set_objective({int(out[t]): 1.0}, "max")
    else:
        lo, hi = bounds.output_bounds()
        # max_k out_k >= out_k >= lo_k for every k: the largest lower bound is a valid lower bound
        top = milp.model.add_column(float(np.max(lo[others])), float(np.max(hi[others])))
        milp.model.add_rows(np.zeros(len(others)), np.full(len(others), np.inf), rows(top))
        milp.model.set_objective({int(out[t]): 1.0, int(top): -1.0}, "max")
    if goal is not None:
        milp.model.add_rows(np.full(len(others), float(goal)), np.full(len(others), np.inf), rows(out[t]))
    return milp


def _budget(eps, norm, budget, budget_norm):
    """``(eps, norm)`` from the canonical names or the old ``budget``/``budget_norm`` ones."""
    if budget is not None or budget_norm is not None:
        warnings.warn("max_confidence(budget=, budget_norm=) are now eps= and norm= (the names every question "
                      "uses); the old names will be removed", DeprecationWarning, stacklevel=4)
        if (budget is not None and eps is not None) or (budget_norm is not None and norm is not None):
            raise InputError("give the budget once: eps= and norm= (budget= and budget_norm= are their old names)")
        eps = budget if eps is None else eps
        norm = budget_norm if norm is None else norm
    if eps is not None:
        eps = finite_nonnegative(eps, "eps")
    return eps, check_norm(norm if norm is not None else "l1")


@limit_blas
@by_model
def max_confidence(
    network: Network,
    x,
    target: int,
    *,
    eps: float | None = None,
    norm: str | None = None,
    objective: str = "logit",
    min_probability: float | None = None,
    require_target_wins: bool = True,
    label: int | None = None,
    perturbation=None,
    solver: str = DEFAULT_SOLVER,
    time_limit: float | None = DEFAULT_TIME_LIMIT,
    threads: int | None = None,
    mip_gap: float | None = None,
    margin: float = DEFAULT_MARGIN,
    reference=None,
    bound_method="symbolic",
    budget: float | None = None,
    budget_norm: str | None = None,
    keras_model=None,
) -> AdversarialResult:
    """Maximise ``target``'s logit (``objective="logit"``) or its margin over every other class
    (``"margin"``) over the inputs within ``eps`` of ``x`` in ``norm`` (L1 by default; no ``eps``:
    only the limits of ``perturbation``), with ``target`` the strict argmax by ``margin``
    (``require_target_wins``).

    ``min_probability=p`` adds the linear sufficient condition ``out_t - out_j >= log((K-1) p / (1-p))``
    for every ``j``, which guarantees ``softmax(out)_t >= p`` (K classes); it is sufficient, not
    necessary, so an infeasible answer means "not with this condition".
    ``objective`` (recomputed from the point) and ``objective_bound`` (proven) are reported;
    ``robust`` means no allowed input lets ``target`` win (solver proof under the trust rule).
    ``reference``: the source model (a Keras model or a callable ``x -> logits``) that must confirm
    the witness. ``budget``/``budget_norm``/``keras_model`` are the old names of ``eps``/``norm``/``reference``.
    """
    from ..domain import Perturbation
    from ..solvers import _check_name

    _check_name(solver)
    check_time(time_limit)
    if objective not in ("logit", "margin"):
        raise InputError(f"objective must be 'logit' or 'margin', got {objective!r}")
    eps, norm = _budget(eps, norm, budget, budget_norm)
    ref = resolve_reference(reference, keras_model, network)
    x0 = network.as_point(x)
    logits = network.forward(x0)
    c = int(np.argmax(logits)) if label is None else class_index(network, label, "label")
    t = class_index(network, target, "target")
    if t == c:
        raise InputError(f"target {t} equals the true class; pick another class, or target=None for any wrong class")
    margin = finite_nonnegative(margin, "margin")
    pert = perturbation or Perturbation()
    pert.check_point(x0)
    inputs = pert.input_set(x0, norm if eps is not None else None, eps)
    K = network.n_outputs
    need = margin
    if min_probability is not None:
        p = float(min_probability)
        if not 0 < p < 1:
            raise InputError(f"min_probability must lie strictly between 0 and 1, got {min_probability}")
        need = max(need, math.log((K - 1) * p / (1 - p)))
    clock = Clock(time_limit)
    res = AdversarialResult(verdict=Verdict.UNKNOWN, problem="max_confidence", norm=norm if eps is not None else None,
                            x=x0, original_class=c, logits=logits, target=t, eps=eps)
    bounds = compute_bounds(network, inputs.bound_domain(), bound_method)
    res.bounds_summary = bounds.summary()

    def value_of(lg):
        return float(lg[t]) if objective == "logit" else target_gap(lg, t)

    def extra(point):
        problem = inputs.problem(point)
        if problem or min_probability is None:
            return problem
        lg = network.forward(point)
        pr = np.exp(lg - lg.max())
        pr /= pr.sum()
        return None if pr[t] >= min_probability else f"softmax probability {pr[t]:.6f} below {min_probability}"

    def build(goal_margin):
        return objective_milp(network, bounds, inputs, t, objective, goal_margin if require_target_wins else None,
                              solver=solver, threads=threads, mip_gap=mip_gap)

    # The first MILP asks for the win only up to VERIFY_SLACK (and for the probability condition's
    # gap, when given): its infeasibility is what "class t cannot win" needs (the rule of
    # verify_robustness), and its dual bound holds for every point where t wins. Its optimum may
    # win by less than ``margin``; later runs ask for a hair more than ``need``.
    goal = (max(0.0, need) if min_probability is not None else 0.0) - VERIFY_SLACK
    for attempt in range(WITNESS_RETRIES + 1):
        if clock.expired():  # building the model may use up a short time limit
            if attempt == 0:
                res.message = "time limit reached before the solver could run"
            break
        milp = build(goal)
        sres, point = milp.solve(clock.left())
        res.solves.append(sres)
        if attempt == 0:
            proof = solver_proof(sres, milp.big_m)
            if proof.bound is not None:
                res.objective_bound = proof.bound if sres.objective is None else max(proof.bound, sres.objective)
            if sres.status == Status.INFEASIBLE:
                res.verdict = Verdict.ROBUST if proof.infeasible else Verdict.UNKNOWN
                res.message = (f"no allowed change makes class {t} win (solver proof)" if proof.infeasible
                               else f"infeasible, but {proof.note}")
                break
        elif sres.status == Status.INFEASIBLE:
            res.verdict = Verdict.UNKNOWN
            res.message = (f"class {t} can come within {VERIFY_SLACK:g} of winning, but no allowed change makes it "
                           f"win by {goal:.3g} (solver): no checked point, no proof")
            break
        if point is None:
            res.verdict = Verdict.UNKNOWN
            res.message = f"no solution ({sres.status})"
            break
        point = inputs.fit(point)
        chk = check_witness(network, point, domain=inputs.hull(), original_class=c,
                            target=t if require_target_wins else None,
                            margin=margin if require_target_wins else 0.0,
                            criterion=None if require_target_wins else (lambda lg: (True, 0.0)),
                            reference=ref, extra=extra)
        res.checks = {"forward": chk.ok, "keras": chk.keras_ok, "reason": chk.reason}
        if chk.ok:
            res.x_adv = point
            res.adv_logits = network.forward(point)
            res.adversarial_class = int(np.argmax(res.adv_logits))
            res.distances = distances(point, x0)
            res.distance = res.distances[res.norm or "l1"]
            res.objective = value_of(res.adv_logits)
            res.verdict = Verdict.FOUND
            res.message = ("optimal" if sres.status == Status.OPTIMAL and attempt == 0
                           else f"best found ({sres.status}{'' if attempt == 0 else ', with a margin row'})")
            break
        res.verdict = Verdict.UNKNOWN
        res.message = f"witness rejected: {chk.reason}"
        if not require_target_wins:
            break  # nothing to tighten: the point failed a limit the MILP already has
        # an optimum on the margin row often misses it by rounding (1e-17): grow the margin from a
        # hair above ``need`` (1e-6, 1e-4, 1e-2), so the retry loses almost nothing of the objective
        goal = need + RETRY_MARGIN_STEP * MARGIN_GROWTH ** (2 * attempt)
    if res.objective_bound is not None and res.objective is not None:
        res.objective_bound = max(res.objective_bound, res.objective)
    res.time_s = clock.elapsed()
    return res
