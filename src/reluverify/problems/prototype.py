"""Class prototypes: the input the network scores most strongly as one class.

The course notebook's "ideal 8": over the valid input box (``[0, 1]^n`` for scaled images),
optionally within ``budget`` of a ``reference`` image, find

* ``objective="margin"``: ``max out_cls - max_{j != cls} out_j``, with an auxiliary variable
  ``m >= out_j`` for every ``j != cls`` and the objective ``out_cls - m``; or
* ``objective="logit"``: ``max out_cls`` among the inputs where ``cls`` wins.

Same discipline as :mod:`reluverify.problems.adversarial`: the prototype is snapped into its domain
and re-checked by a float64 forward pass (its argmax must be ``cls``, by at least ``margin``);
``objective`` is recomputed from the point and ``objective_bound`` is the solver's proven upper
bound, which holds even when the run timed out.
"""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo

from ..check import check_witness, target_gap
from ..domain import Box, Perturbation, check_norm
from ..errors import InputError
from ..model import Network
from ..results import AdversarialResult, Status, Verdict
from ..solvers import _check_name
from ..tolerances import DEFAULT_MARGIN, MARGIN_GROWTH, OPTIMAL_REL_GAP, RETRY_MARGIN_STEP, VERIFY_SLACK, WITNESS_RETRIES
from .adversarial import AdversarialModel, fill_witness
from .common import Clock, check_time, class_index, finite_nonnegative
from .attack import backpropagate
from .universal import _project_l1
from ..threads import limit_blas

OBJECTIVES = ("margin", "logit")


def _ascent(network: Network, cls: int, x0: np.ndarray, box: Box, budget: float | None, norm: str,
            objective: str, margin: float, steps: int = 120, restarts: int = 6, seed: int = 0):
    """Projected sign-gradient ascent on the margin (then the logit) of ``cls`` inside ``box`` and the
    L1 ball; returns ``(point, value)`` of the best point where ``cls`` wins by ``margin``, or ``None``.
    Proves nothing; its point is re-checked like the solver's."""
    if network.layers[-1].activation != "linear" or not np.any(box.upper > box.lower):
        return None
    rng = np.random.default_rng(seed)
    lo, hi = box.lower, box.upper
    width = float(np.max(hi - lo))
    l1 = budget if (budget is not None and norm == "l1") else None

    def project(x):
        x = np.clip(x, lo, hi)
        if l1 is not None:
            x = np.clip(x0 + _project_l1(x - x0, lo - x0, hi - x0, l1), lo, hi)
        return x

    def grad_of(x, use_logit):
        out, pre = network.forward(x, return_all=True)
        masked = out.copy()
        masked[cls] = -np.inf
        j = int(np.argmax(masked))
        last = network.layers[-1]
        return out, backpropagate(network, pre, last.weight[cls] - (0.0 if use_logit else last.weight[j]))

    best, best_val = None, -np.inf
    for r in range(restarts):
        x = project(x0.copy() if r == 0 else lo + rng.random(lo.size) * (hi - lo))
        for phase in ("margin", "logit") if objective == "logit" else ("margin",):
            for it in range(steps):
                out, g = grad_of(x, phase == "logit")
                gap = target_gap(out, cls)
                if gap >= margin and gap > 0:
                    val = float(out[cls]) if objective == "logit" else gap
                    if val > best_val:
                        best, best_val = x.copy(), val
                elif phase == "logit":
                    break  # the logit ascent left the region where cls wins
                if not np.any(g):
                    break
                step = (0.2 * (1.0 - it / steps) + 0.01) * width
                if l1 is None:
                    x = project(x + step * np.sign(g))
                else:
                    top = np.abs(g) >= np.quantile(np.abs(g), 0.95)
                    u = np.sign(g) * top
                    x = project(x + (0.5 * (1.0 - it / steps) + 0.05) * l1 * u / max(1.0, float(np.sum(top))))
            if best is None:
                break
            x = best.copy()
    return None if best is None else (best, best_val)


@limit_blas
def class_prototype(
    network: Network,
    cls: int,
    *,
    reference=None,
    budget: float | None = None,
    norm: str = "l1",
    valid: Box | None = None,
    solver: str = "highs",
    time_limit: float | None = 120.0,
    threads: int | None = None,
    objective: str = "margin",
    margin: float = DEFAULT_MARGIN,
    mip_gap: float | None = None,
    bound_method="symbolic",
    attack: bool = True,
) -> AdversarialResult:
    """The input in ``valid`` (optionally within ``budget`` of ``reference`` in ``norm``, L1 or
    L-inf) that maximises class ``cls``'s margin over every other class (``objective="margin"``)
    or its logit among the inputs where it wins (``"logit"``).

    Returns an :class:`~reluverify.results.AdversarialResult` with ``problem="class_prototype"``,
    ``x`` the reference (or the centre of the valid box), ``x_adv`` the prototype, ``target=cls``,
    ``objective`` recomputed from the prototype and ``objective_bound`` proven by the solver.
    A gradient ascent runs first (``attack=False`` skips it); the better of its point and the
    solver's is reported. Verdicts: ``found`` (a re-checked prototype whose argmax is ``cls`` by ``margin``), ``robust``
    (the solver proved that ``cls`` never wins in the domain), else ``unknown``.
    """
    _check_name(solver)
    check_time(time_limit)
    if objective not in OBJECTIVES:
        raise InputError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
    norm = check_norm(norm)
    if norm not in ("l1", "linf"):
        raise InputError(f"the prototype's budget supports the norms 'l1' and 'linf', got {norm!r}")
    margin = finite_nonnegative(margin, "margin")
    t = class_index(network, cls, "cls")
    if budget is not None:
        b = finite_nonnegative(budget, "budget")
        if reference is None:
            raise InputError("a budget is measured from a reference image; pass reference= as well")
        budget = b  # 0 is refused by Perturbation with its own message
    n = network.n_inputs
    valid = valid if valid is not None else Box.uniform(n)
    if not isinstance(valid, Box):
        raise InputError(f"valid must be a reluverify Box, got {type(valid).__name__}")
    valid.check_size(n)
    if reference is None:
        x0 = (valid.lower + valid.upper) / 2.0
    else:
        x0 = network.as_point(reference)
    pert = Perturbation(valid=valid, budget=budget, budget_norm=norm)

    clock = Clock(time_limit)
    logits = network.forward(x0)
    res = AdversarialResult(verdict=Verdict.UNKNOWN, problem="class_prototype",
                            norm=norm if budget is not None else None, x=x0,
                            original_class=int(np.argmax(logits)), logits=logits, target=t)
    adv = AdversarialModel(network, x0, pert, bound_method=bound_method)
    res.bounds_summary = adv.bounds.summary()
    out = adv.net.outputs
    m = adv.model
    K = network.n_outputs
    others = [k for k in range(K) if k != t]
    if objective == "margin":
        lo, hi = adv.bounds.output_bounds()
        # max_j out_j >= out_j >= lo_j for every j: the largest lower bound is a valid lower bound
        m.max_other = pyo.Var(bounds=(float(np.max(lo[others])), float(np.max(hi[others]))))
        m.max_other_def = pyo.Constraint(others, rule=lambda b, k: m.max_other >= out[k])
        adv.set_objective(out[t] - m.max_other, sense=pyo.maximize)
    else:
        adv.set_objective(out[t], sense=pyo.maximize)

    def value_of(lg):
        return float(lg[t]) if objective == "logit" else target_gap(lg, t)

    def check(point):
        return check_witness(network, point, domain=adv.box, original_class=res.original_class, target=t,
                             margin=margin, extra=adv.budget_problem)

    best, best_val, source = None, -np.inf, None
    notes = []
    if attack:
        h = _ascent(network, t, x0, adv.box, budget, norm, objective, margin)
        if h is not None:
            point = adv.fit_budget(np.clip(h[0], adv.box.lower, adv.box.upper))
            if check(point).ok:
                best, best_val, source = point, value_of(network.forward(point)), "gradient ascent"

    proven_never = False
    # attempt 0 gives the proven bound: no "cls wins" rows for the margin objective (the objective
    # itself is the margin), rows with -VERIFY_SLACK for the logit objective. Later attempts ask for
    # a win by a hair more than ``margin``; when the margin objective's run gave no bound (CBC on a
    # MILP without binaries reports none), the first of them asks for the win up to VERIFY_SLACK
    # instead, so that "cls never wins" can still be proven by the slack rule.
    slack_rows = [adv.gap_expr(t, k, -VERIFY_SLACK) for k in others]
    slack_run = objective == "logit"
    retry = 0
    for attempt in range(WITNESS_RETRIES + 2):
        if clock.expired():
            notes.append("time limit reached" + (" before the solver could run" if attempt == 0 else ""))
            break
        proof_run = attempt == 0 or not slack_run
        if attempt == 0:
            adv.set_goal([] if objective == "margin" else slack_rows)
        elif not slack_run:
            slack_run = True
            adv.set_goal(slack_rows)
        elif retry < WITNESS_RETRIES:
            need = margin + RETRY_MARGIN_STEP * MARGIN_GROWTH ** (2 * retry)
            retry += 1
            adv.set_goal([adv.gap_expr(t, k, need) for k in others])
        else:
            break
        sres = adv.solve(solver, clock.left(), threads, mip_gap)
        res.solves.append(sres)
        if proof_run:
            proof = adv.proof(sres)
            if proof.note:
                notes.append(proof.note)
            if proof.infeasible:
                proven_never = True
                notes.append(f"no input in the domain makes class {t} win (solver proof)")
                break
            if sres.status == Status.INFEASIBLE:
                break  # an infeasibility that proves nothing: no point either
            if proof.bound is not None and attempt == 0:
                slack_run = True  # the bound settles what the slack run would
                res.objective_bound = proof.bound
                if objective == "margin" and proof.bound < -VERIFY_SLACK:
                    proven_never = True
                    notes.append(f"class {t} never wins in the domain: its margin is at most {proof.bound:.6g} "
                                 "(solver proof)")
                    break
        elif sres.status == Status.INFEASIBLE:
            notes.append(f"no input makes class {t} win by {need:.3g}")
            break
        if not sres.has_solution:
            notes.append(f"the solver gave no solution ({sres.status})")
            break
        point = adv.point()
        chk = check(point)
        if chk.ok:
            val = value_of(network.forward(point))
            if val > best_val:
                best, best_val, source = point, val, "solver"
            if sres.status == Status.OPTIMAL and attempt == 0:
                notes.insert(0, "optimal")
            else:
                notes.insert(0, f"solver: {sres.status}")
            break
        if best is not None:
            notes.append(f"the solver's point was rejected ({chk.reason})")
            break  # the attack's point stands; a retry would only look for a worse one
        notes.append(f"prototype rejected ({chk.reason}); re-solving with class {t} required to win")

    if best is not None:
        fill_witness(res, network, best, res.norm or "l1")
        res.objective = value_of(res.adv_logits)
        res.checks = {"forward": True, "keras": None}
        res.verdict = Verdict.FOUND
        notes.append(f"prototype from the {source}")
        if res.objective_bound is not None:
            if res.objective > res.objective_bound:  # the solver's "proof" is contradicted by a point
                notes.append(f"the solver's bound {res.objective_bound:.6g} is below a verified value; raised")
            res.objective_bound = max(res.objective_bound, res.objective)
            gap = res.objective_bound - res.objective
            if gap > OPTIMAL_REL_GAP * max(1.0, abs(res.objective)):
                notes.append(f"gap to the proven bound {gap:.3g}")
    elif proven_never:
        res.verdict = Verdict.ROBUST
    else:
        res.verdict = Verdict.UNKNOWN
        notes.append("no verified prototype")
    res.time_s = clock.elapsed()
    res.message = "; ".join(notes)
    return res
