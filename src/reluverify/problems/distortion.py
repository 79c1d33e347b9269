"""The smallest change of an input that changes its class, as a search over the radius.

:func:`minimal_distortion` asks the engine one robustness question per radius
(:func:`reluverify.engine.radius.radius_search` over the class-change query of
:mod:`reluverify.problems.robustness`): a proof at radius ``r`` certifies that nothing closer
changes the class (``lower_bound``), a checked witness gives the distance to beat (``distance``).
A gradient attack gives the first witness; each question gets the engine's stages (bounds,
falsification, ReLU branch and bound or input splitting on box-shaped balls, MILPs with the ball
encoded otherwise).
"""

from __future__ import annotations

import math

import numpy as np

from ..check import class_gap, distances, target_gap
from ..engine.common import Clock
from ..engine.decide import decide
from ..engine.options import Tuning
from ..engine.query import Witnesses
from ..engine.radius import RadiusSearch, radius_search
from ..errors import InputError
from ..model import Network
from ..results import AdversarialResult, Verdict
from ..sets import ball, check_norm
from ..threads import limit_blas
from .dispatch import by_model
from ..solvers import DEFAULT_SOLVER
from ..tolerances import DEFAULT_MARGIN, DEFAULT_TIME_LIMIT, INTEGER_BOUND_TOLERANCE, MARGIN_GROWTH, OPTIMAL_REL_GAP, REPAIR_SCALES, \
    RETRY_MARGIN_STEP, WITNESS_RETRIES
from .attack import l1_attack, linf_attack
from .common import check_time, class_index, finite_nonnegative, resolve_reference
from .robustness import class_change_query, logit_network

SEED_RATIO = 0.95  # the course notebook's rule: true logit <= 0.95 * the largest logit
# The radius questions' ReLU branch and bound (engine/options.py's Tuning): ``BRANCH_STEPS`` gradient
# steps of the optimised bound per domain (the engine's default is 20, engine/branch.py's OPT_STEPS;
# warm-started children need few, and more domains per second pay) and ``BRANCH_SHARE`` of the time
# left (the engine's default 0.5; the MILP stage gets the rest). Ad hoc, one process, on the
# 784-64-32-10 network of benchmarks/min_linf.py: the hardest class of radius questions near the
# optimum (images 4, 5, 13) proved in 24.0 / 14.4 / 16.7 s with 20 steps, 15.5 / 10.0 / 8.3 s with 5
# (image 13's MILP: 11.3 s); image 13's whole search proved optimal in 58.6 and 58.8 s with share
# 0.5, 39.3 and 42.7 s with 0.9 (but with 0.5 the MILP stage proved one of image 5's questions that 0.9 left
# undecided: the share is a trade-off)
BRANCH_STEPS = 5
BRANCH_SHARE = 0.9
RADIUS_TUNING = Tuning(branch_steps=BRANCH_STEPS, branch_share=BRANCH_SHARE)


def with_relu_outputs(network: Network) -> Network:
    """The course notebook's variant: a ReLU on the output logits (for reproducing it only)."""
    from dataclasses import replace

    from ..model import Layer

    last = network.layers[-1]
    return replace(network, layers=network.layers[:-1] + (Layer(last.weight, last.bias, "relu"),),
                   name=network.name + "+relu-outputs")


@limit_blas
@by_model
def minimal_distortion(
    network: Network,
    x,
    norm: str = "l1",
    *,
    label: int | None = None,
    target: int | None = None,
    perturbation=None,
    solver: str = DEFAULT_SOLVER,
    time_limit: float | None = DEFAULT_TIME_LIMIT,
    threads: int | None = None,
    mip_gap: float | None = None,
    margin: float = DEFAULT_MARGIN,
    criterion: str = "margin",
    relu_outputs: bool = False,
    reference=None,
    bound_method="lp",
    attack: bool = True,
    split: str | bool = "auto",
    branch: str | bool = "auto",
    keras_model=None,
) -> AdversarialResult:
    """The smallest change of ``x`` (in ``norm``: L1, L-inf or L0) that changes the network's class.

    Untargeted (any class but ``label``; ``label`` defaults to the predicted class) or targeted
    (``target`` becomes the strict argmax). ``lower_bound`` is a **certified radius**: no input
    closer than it brings a wrong class within ``VERIFY_SLACK`` of the true one (of ``target`` over
    the others). The reported example beats the true class by ``margin`` in a float64 forward pass
    (and in the source model when ``reference`` is given: a Keras model or a callable ``x -> logits``;
    ``keras_model`` is its old name); its ``distance`` is recomputed from it.
    ``perturbation`` adds limits (valid box, L-inf cap, L0 limit, L1 budget, mask). The answer is
    ``optimal`` when ``distance - lower_bound <= OPTIMAL_REL_GAP * max(1, distance)``; the search
    goes on to a relative gap of ``OPTIMAL_REL_GAP`` while the time lasts.

    How: a gradient attack gives a first example (``attack=False`` skips it); then the radius is
    halved between the proven and the found distance, each step one engine question
    (:func:`reluverify.engine.decide.decide`; ``split``, ``branch`` and ``bound_method`` as there);
    near the optimum, where proofs get expensive, the search's end game gives one question at
    ``distance - OPTIMAL_REL_GAP * max(1, distance)`` all the time left (its proof makes the answer
    optimal; :func:`reluverify.engine.radius.radius_search`).
    ``mip_gap`` is accepted for compatibility and unused (every MILP here is a feasibility question).

    ``criterion="seed_ratio"`` and ``relu_outputs=True`` reproduce the course notebook
    (true logit <= 0.95 x the largest, ReLU on the logits); they are not the default.
    """
    from ..domain import Perturbation
    from ..solvers import _check_name

    norm = check_norm(norm)
    _check_name(solver)
    check_time(time_limit)
    if criterion not in ("margin", "seed_ratio"):
        raise InputError(f"criterion must be 'margin' or 'seed_ratio', got {criterion!r}")
    margin = finite_nonnegative(margin, "margin")
    net = with_relu_outputs(network) if relu_outputs else network
    reference = resolve_reference(reference, keras_model, net)
    if relu_outputs:
        reference = None  # the source model has linear outputs; it cannot confirm this variant
    x0 = net.as_point(x)
    logits = net.forward(x0)
    c = int(np.argmax(logits)) if label is None else class_index(net, label, "label")
    t = None
    if target is not None:
        t = class_index(net, target, "target")
        if t == c:
            raise InputError(f"target {t} equals the true class; pick another class, or target=None for any "
                             "wrong class")
    pert = perturbation or Perturbation()
    pert.check_point(x0)
    clock = Clock(time_limit)
    res = AdversarialResult(verdict=Verdict.UNKNOWN, problem="minimal_distortion", norm=norm, x=x0,
                            original_class=c, logits=logits, target=t)

    norm_ball = ball(norm, x0, None, valid=pert.valid_box(x0.size), mask=pert.mask)
    already = (t is None and class_gap(logits, c) > 0) or (t is not None and target_gap(logits, t) > 0)
    if already and criterion == "margin":  # a point that is already misclassified needs no change
        _fill(res, net, x0.copy(), norm_ball)
        res.verdict, res.lower_bound, res.time_s = Verdict.FOUND, 0.0, clock.elapsed()
        res.message = "the input is already not classified as the given label"
        return res

    ratio = SEED_RATIO if criterion == "seed_ratio" else None
    q_margin = 0.0 if ratio is not None else margin
    whole = norm == "l0"

    def query(radius):
        return class_change_query(net, c, pert.input_set(x0, norm, radius), target=t, margin=q_margin,
                                  ratio=ratio, reference=reference)

    def decide_at(radius, left):
        return decide(query(radius), solver=solver, time_limit=left, bound_method=bound_method, threads=threads,
                      attack=attack, split=split, branch=branch,
                      screen="interval" if bound_method == "interval" else "symbolic", tuning=RADIUS_TUNING)

    unbounded = pert.input_set(x0, norm, None)  # every allowed input (the norm ball without a radius)
    r_max = norm_ball.max_radius()

    def distance(point):
        return float(norm_ball.distance(point))

    def witness(point):
        """``point`` if it is a checked witness at its own distance, else None."""
        d = distance(point)
        q = query(max(1, int(math.ceil(d))) if whole else max(d, 1e-300))  # not a tolerance: a positive radius
        check = Witnesses(q)
        for r in q.prop.regions:
            chk = check(point, r)
            if chk is not None:
                return chk.x  # the point as checked (snapped into the set)
        return None

    notes = []
    best, upper = None, math.inf
    if attack and ratio is None:
        logit_net, _ = logit_network(net)
        hull = unbounded.hull()
        cand = (l1_attack if norm_ball.sparse_changes else linf_attack)(logit_net, x0, c, hull, target=t, margin=margin)
        if cand is not None:
            cand = unbounded.fit(cand)
            checked = witness(cand)
            if checked is not None:
                best, upper = checked, distance(checked)
                notes.append(f"gradient attack: {norm} distance {upper:.6g}")

    def repair(point):
        """A near miss (within the proof slack of a class change, not by the margin) pushed just past
        the boundary: its change scaled by the smallest ``1 + s`` that gives a checked witness."""
        if whole:
            return None
        d = unbounded.fit(point) - x0
        prev = 0.0
        for s in REPAIR_SCALES:
            if witness(unbounded.fit(x0 + d * (1 + s))) is not None:
                lo, hi = prev, s
                for _ in range(30):  # the smallest scaling that still passes
                    mid = 0.5 * (lo + hi)
                    if witness(unbounded.fit(x0 + d * (1 + mid))) is not None:
                        hi = mid
                    else:
                        lo = mid
                return witness(unbounded.fit(x0 + d * (1 + hi)))  # the point as checked
            prev = s
        return None

    if norm_ball.is_box:  # box-shaped balls: the radius search, with branch and bound per question
        search = radius_search(decide_at, distance, upper=upper, best=best, r_max=r_max, deadline=clock,
                               gap=lambda u: OPTIMAL_REL_GAP * u, whole=whole, repair=repair,
                               close=lambda u: OPTIMAL_REL_GAP * max(1.0, u))
        res.stats = {"radius_steps": search.steps}
        steps = len(search.steps)
        notes.append(f"{steps} radius step{'s' if steps != 1 else ''}" + (f" ({search.stopped})" if search.stopped else ""))
    else:  # L1, L0: MILPs minimising the distance win there (benchmarks/min_l1.py)
        search = _objective_search(net, x0, c, t, pert, norm, query, best, upper, clock, repair, witness, notes,
                                   res.solves, solver=solver, threads=threads, bound_method=bound_method,
                                   margin=q_margin, whole=whole)
    if search.best is not None:
        _fill(res, net, search.best, norm_ball)
        res.verdict = Verdict.FOUND
        res.checks = {"forward": True, "keras": None if reference is None else True}
        res.lower_bound = min(search.lower, res.distance)
        gap = res.distance - res.lower_bound
        res.message = ("optimal" if gap <= OPTIMAL_REL_GAP * max(1.0, res.distance)
                       else f"best found; gap to the proven bound {gap:.3g}")
    else:
        res.lower_bound = search.lower
    if search.best is None and math.isinf(search.lower):
        res.verdict = Verdict.ROBUST
        res.lower_bound = math.inf
        res.message = "no allowed change of the input changes its class (proof)"
    elif search.best is None:
        res.verdict = Verdict.UNKNOWN
        res.message = "no verified adversarial example (time limit, solver error or rejected witness)"
    if whole and math.isfinite(res.lower_bound):
        res.lower_bound = float(math.ceil(res.lower_bound - INTEGER_BOUND_TOLERANCE))
    if notes:
        res.message += "; " + "; ".join(notes)
    res.time_s = clock.elapsed()
    return res


def _fill(res: AdversarialResult, network: Network, x_adv: np.ndarray, norm_ball) -> None:
    res.x_adv = np.asarray(x_adv, dtype=np.float64)
    res.adv_logits = network.forward(res.x_adv)
    res.adversarial_class = int(np.argmax(res.adv_logits))
    res.distances = distances(res.x_adv, res.x, norm_ball)
    res.distance = res.distances[norm_ball.norm]


def _objective_search(net, x0, c, t, pert, norm, query, best, upper, clock, repair, witness, notes, solves, *,
                      solver, threads, bound_method, margin, whole) -> RadiusSearch:
    """One MILP per wrong class (the attack's first) minimising the ``norm`` distance subject to the
    class change, over the ball of the best distance so far (its bounds, a cutoff row), wrong
    classes the bounds rule out within that ball skipped. The first MILP of each class asks for the
    change up to ``VERIFY_SLACK``: its dual bound (or infeasibility) is a certified radius for that
    class under the trust rule; its optimum, pushed past the boundary (``repair``), is the witness.
    Classes without a proof get the largest radius the bounds alone certify."""
    from ..bounds import compute_bounds
    from ..check import solver_proof
    from ..engine.milp import NetworkMilp
    from ..engine.split import region_rows_lb
    from ..results import Status
    from ..sets import Intersection, ball

    valid = pert.valid_box(x0.size)
    limits = pert.limits(x0)
    limit_set = None if not limits else (limits[0] if len(limits) == 1 else Intersection(limits))
    unbounded = ball(norm, x0, None, valid=valid, mask=pert.mask)
    out = RadiusSearch(0.0, upper, best)
    K = net.n_outputs
    targets = [t] if t is not None else [j for j in np.argsort(-net.forward(x0)).tolist() if j != c]
    if best is not None and t is None:  # the attack's class first: its MILP is the likeliest optimum
        lg = net.forward(best)
        lg[c] = -np.inf
        targets.remove(int(np.argmax(lg)))
        targets.insert(0, int(np.argmax(lg)))
    lower = []
    unfinished = []
    for j in targets:
        radius = out.upper if out.best is not None else None
        q = query(radius)
        k = 0 if t is not None else [jj for jj in range(K) if jj != c].index(j)
        proof_region, region = q.proof_regions[k], q.prop.regions[k]
        if clock.expired():
            lower.append(0.0)
            unfinished.append((len(lower) - 1, k))
            notes.append(f"class {j}: not tried (time limit)")
            continue
        bounds = compute_bounds(q.network, q.bound_domain(proof_region), bound_method if bound_method in (
            "interval", "symbolic") else "symbolic")
        if np.any(region_rows_lb(q.network, bounds, proof_region) > proof_region.b):
            lower.append(radius if radius is not None else math.inf)  # no input within the radius reaches j
            notes.append(f"class {j}: ruled out by bounds")
            continue
        lb_j = None
        shift = 0.0
        target_region = proof_region
        for attempt in range(WITNESS_RETRIES + 1):
            milp = NetworkMilp(q.network, bounds, solver, inputs=limit_set, threads=threads,
                               emphasis="proof" if out.best is not None else None)
            milp.minimise_distance(unbounded, cutoff=radius)
            milp.add_region(target_region, shift)
            sres, x = milp.solve(clock.left())
            solves.append(sres)
            if attempt == 0:  # the boundary MILP (the proof region, VERIFY_SLACK beyond) gives the bound
                proof = solver_proof(sres, milp.big_m)
                if proof.infeasible:
                    lb_j = radius if radius is not None else math.inf
                elif proof.bound is not None:
                    lb_j = max(0.0, proof.bound)
                    if sres.objective is not None:
                        lb_j = min(lb_j, sres.objective)
                    if radius is not None:
                        lb_j = min(lb_j, radius)
                else:  # no proof from this MILP: certified from bounds alone, below
                    lb_j = 0.0
                if proof.note:
                    notes.append(f"class {j}: {proof.note}")
            if x is None:
                break
            if whole and sres.objective is not None and sres.objective >= 0.5:
                # values the MILP's binaries keep fixed may move by its tolerance: keep as many
                # changes as it counted (the largest), then check the point like any other
                x = unbounded.with_radius(int(round(sres.objective))).fit(x)
            cand = witness(unbounded.fit(x))
            if cand is None:
                cand = repair(x)
            if cand is not None:
                d = float(unbounded.distance(cand))
                if d < out.upper:
                    out.best, out.upper = cand, d
                break
            notes.append(f"class {j}: witness rejected; re-solving with a larger margin")
            # the witness region asks for ``margin``; retries ask for max(margin, a hair) x 10^attempt
            target_region, shift = region, margin - max(margin, RETRY_MARGIN_STEP) * (MARGIN_GROWTH ** attempt)
            if clock.expired():
                break
        lower.append(lb_j if lb_j is not None else 0.0)
        if lb_j is None or lb_j == 0.0 or (out.best is not None and lb_j < out.upper
                                             and solves[-1].status != Status.OPTIMAL):
            unfinished.append((len(lower) - 1, k))
    if not whole:  # what sound bounds alone certify for the classes without a MILP proof
        for pos, k in unfinished:
            r_max = out.upper if out.best is not None else unbounded.max_radius()
            r = _bounds_radius(query, k, r_max, bound_method)
            if r > lower[pos]:
                lower[pos] = r
    out.lower = min(lower) if lower else (0.0 if out.best is None else out.upper)
    return out


def _bounds_radius(query, k: int, r_max: float, bound_method, iters: int = 14) -> float:
    """The largest radius (bisection, at most ``r_max``) at which sound bounds alone rule out the
    ``k``-th region of ``query(radius)``: a certified lower bound for that class. No MILP."""
    from ..bounds import compute_bounds
    from ..engine.split import region_rows_lb

    method = bound_method if bound_method in ("interval", "symbolic") else "symbolic"

    def safe(r):
        q = query(r)
        region = q.proof_regions[k]
        b = compute_bounds(q.network, q.bound_domain(region), method)
        return bool(np.any(region_rows_lb(q.network, b, region) > region.b))

    if not r_max > 0:
        return 0.0
    if safe(r_max):
        return float(r_max)
    lo, hi = 0.0, float(r_max)
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        if safe(mid):
            lo = mid
        else:
            hi = mid
    return lo
