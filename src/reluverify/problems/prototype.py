"""Class prototypes: the input the network scores most strongly as one class.

The course notebook's "ideal 8": over the valid input box (``[0, 1]^n`` for scaled images),
optionally within ``eps`` of an image ``around``, find

* ``objective="margin"``: ``max out_cls - max_{j != cls} out_j``, with an auxiliary variable
  ``m >= out_j`` for every ``j != cls`` and the objective ``out_cls - m``; or
* ``objective="logit"``: ``max out_cls`` among the inputs where ``cls`` wins.

The MILP is the engine's (:func:`reluverify.problems.confidence.objective_milp` over the input set);
the prototype is snapped into its set
and re-checked by a float64 forward pass (its argmax must be ``cls``, by at least ``margin``);
``objective`` is recomputed from the point and ``objective_bound`` is the solver's proven upper
bound, which holds even when the run timed out.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..bounds import compute_bounds
from ..check import check_witness, distances, solver_proof, target_gap
from ..domain import Box, Perturbation
from ..engine.common import Clock
from ..errors import InputError
from ..model import Network
from ..results import AdversarialResult, Status, Verdict
from ..sets import check_norm
from ..solvers import _check_name
from ..solvers import DEFAULT_SOLVER
from ..tolerances import DEFAULT_MARGIN, DEFAULT_TIME_LIMIT, MARGIN_GROWTH, OPTIMAL_REL_GAP, RETRY_MARGIN_STEP, \
    VERIFY_SLACK, WITNESS_RETRIES
from .common import check_time, class_index, finite_nonnegative, resolve_reference
from .confidence import objective_milp
from .attack import backpropagate
from ..sets.l1 import project_l1
from ..threads import limit_blas
from .dispatch import by_model

OBJECTIVES = ("margin", "logit")


def _ascent(network: Network, cls: int, x0: np.ndarray, box: Box, budget: float | None, norm: str,
            objective: str, margin: float, steps: int = 120, restarts: int = 6, seed: int = 0):
    """Projected sign-gradient ascent on the margin (then the logit) of ``cls`` inside ``box`` and the
    L1 ball; returns ``(point, value)`` of the best point where ``cls`` wins by ``margin``, or ``None``.
    Proves nothing; its point is re-checked like the solver's."""
    if not network.layers[-1].affine or not np.any(box.upper > box.lower):
        return None
    rng = np.random.default_rng(seed)
    lo, hi = box.lower, box.upper
    width = float(np.max(hi - lo))
    l1 = budget if (budget is not None and norm == "l1") else None

    def project(x):
        x = np.clip(x, lo, hi)
        if l1 is not None:
            x = np.clip(x0 + project_l1(x - x0, lo - x0, hi - x0, l1), lo, hi)
        return x

    def grad_of(x, use_logit):
        out, pre = network.forward(x, return_all=True)
        masked = out.copy()
        masked[cls] = -np.inf
        j = int(np.argmax(masked))
        e = np.zeros_like(out)  # out_cls (- out_j) as a row over the outputs
        e[cls] += 1.0
        if not use_logit:
            e[j] -= 1.0
        return out, backpropagate(network, pre, network.layers[-1].vjp(pre[-1], e))

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
@by_model
def class_prototype(
    network: Network,
    cls: int,
    *,
    around=None,
    eps: float | None = None,
    norm: str = "l1",
    valid: Box | None = None,
    solver: str = DEFAULT_SOLVER,
    time_limit: float | None = DEFAULT_TIME_LIMIT,
    threads: int | None = None,
    objective: str = "margin",
    margin: float = DEFAULT_MARGIN,
    mip_gap: float | None = None,
    bound_method="symbolic",
    attack: bool = True,
    reference=None,
    budget: float | None = None,
) -> AdversarialResult:
    """The input in ``valid`` (optionally within ``eps`` of the image ``around`` in ``norm``, L1 or
    L-inf) that maximises class ``cls``'s margin over every other class (``objective="margin"``)
    or its logit among the inputs where it wins (``"logit"``).

    Returns an :class:`~reluverify.results.AdversarialResult` with ``problem="class_prototype"``,
    ``x`` the image ``around`` (or the centre of the valid box), ``x_adv`` the prototype, ``target=cls``,
    ``objective`` recomputed from the prototype and ``objective_bound`` proven by the solver.
    A gradient ascent runs first (``attack=False`` skips it); the better of its point and the
    solver's is reported. Verdicts: ``found`` (a re-checked prototype whose argmax is ``cls`` by ``margin``), ``robust``
    (the solver proved that ``cls`` never wins in the domain), else ``unknown``.
    ``reference``: the source model that must confirm the prototype (a Keras model or a callable
    ``x -> logits``). Old names: ``budget`` for ``eps``, and ``reference=`` an image for ``around=``.
    """
    _check_name(solver)
    check_time(time_limit)
    if reference is not None and not callable(reference) and not hasattr(reference, "predict"):
        warnings.warn("class_prototype(reference=IMAGE) is now around=IMAGE (reference= is the source model "
                      "everywhere); the old use will be removed", DeprecationWarning, stacklevel=3)
        if around is not None:
            raise InputError("give the image once, as around= (reference= an image is its old name)")
        around, reference = reference, None
    if budget is not None:
        warnings.warn("class_prototype(budget=) is now eps= (the name every question uses); the old name will be "
                      "removed", DeprecationWarning, stacklevel=3)
        if eps is not None:
            raise InputError("give the radius once, as eps= (budget= is its old name)")
        eps = budget
    ref = resolve_reference(reference, None, network)
    if objective not in OBJECTIVES:
        raise InputError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
    norm = check_norm(norm)
    if norm not in ("l1", "linf"):
        raise InputError(f"the prototype's eps supports the norms 'l1' and 'linf', got {norm!r}")
    margin = finite_nonnegative(margin, "margin")
    t = class_index(network, cls, "cls")
    if eps is not None:
        eps = finite_nonnegative(eps, "eps")
        if around is None:
            raise InputError("eps is measured from an image; pass around= as well")
        if eps == 0:
            raise InputError("eps must be positive (0 leaves only the image itself)")
    n = network.n_inputs
    valid = valid if valid is not None else Box.uniform(n)
    if not isinstance(valid, Box):
        raise InputError(f"valid must be a reluverify Box, got {type(valid).__name__}")
    valid.check_size(n)
    x0 = (valid.lower + valid.upper) / 2.0 if around is None else network.as_point(around)
    inputs = Perturbation(valid=valid).input_set(x0, norm if eps is not None else None, eps)
    box = inputs.hull()

    clock = Clock(time_limit)
    logits = network.forward(x0)
    res = AdversarialResult(verdict=Verdict.UNKNOWN, problem="class_prototype",
                            norm=norm if eps is not None else None, x=x0,
                            original_class=int(np.argmax(logits)), logits=logits, target=t, eps=eps)
    bounds = compute_bounds(network, inputs.bound_domain(), bound_method)
    res.bounds_summary = bounds.summary()

    def value_of(lg):
        return float(lg[t]) if objective == "logit" else target_gap(lg, t)

    def check(point):
        return check_witness(network, point, domain=box, original_class=res.original_class, target=t,
                             margin=margin, extra=inputs.problem, reference=ref)

    best, best_val, source = None, -np.inf, None
    notes = []
    if attack:
        h = _ascent(network, t, x0, box, eps, norm, objective, margin)
        if h is not None:
            point = inputs.fit(h[0])
            if check(point).ok:
                best, best_val, source = point, value_of(network.forward(point)), "gradient ascent"

    proven_never = False
    # attempt 0 gives the proven bound: no "cls wins" rows for the margin objective (the objective
    # itself is the margin), rows with -VERIFY_SLACK for the logit objective. Later attempts ask for
    # a win by a hair more than ``margin``; when the margin objective's run gave no bound (CBC on a
    # MILP without binaries reports none), the first of them asks for the win up to VERIFY_SLACK
    # instead, so that "cls never wins" can still be proven by the slack rule.
    slack_run = objective == "logit"
    retry = 0
    for attempt in range(WITNESS_RETRIES + 2):
        if clock.expired():
            notes.append("time limit reached" + (" before the solver could run" if attempt == 0 else ""))
            break
        proof_run = attempt == 0 or not slack_run
        if attempt == 0:
            goal = None if objective == "margin" else -VERIFY_SLACK
        elif not slack_run:
            slack_run = True
            goal = -VERIFY_SLACK
        elif retry < WITNESS_RETRIES:
            goal = margin + RETRY_MARGIN_STEP * MARGIN_GROWTH ** (2 * retry)
            retry += 1
        else:
            break
        milp = objective_milp(network, bounds, inputs, t, objective, goal, solver=solver, threads=threads,
                              mip_gap=mip_gap)
        sres, point = milp.solve(clock.left())
        res.solves.append(sres)
        if proof_run:
            proof = solver_proof(sres, milp.big_m)
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
            notes.append(f"no input makes class {t} win by {goal:.3g}")
            break
        if point is None:
            notes.append(f"the solver gave no solution ({sres.status})")
            break
        point = inputs.fit(point)
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
        res.x_adv = best
        res.adv_logits = network.forward(best)
        res.adversarial_class = int(np.argmax(res.adv_logits))
        res.distances = distances(best, x0)
        res.distance = res.distances[res.norm or "l1"]
        res.objective = value_of(res.adv_logits)
        res.checks = {"forward": True, "keras": None if ref is None else True}
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
