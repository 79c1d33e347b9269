"""Adversarial examples and robustness verification on the big-M block.

Three questions, one call each:

* :func:`minimal_distortion` — the smallest change (L1, L-inf or L0) that changes the class;
* :func:`max_confidence` — the strongest wrong answer (a target's logit or margin) under a budget;
* :func:`verify_robustness` — prove that no input in a ball changes the class, or show one that does.

Every witness is snapped into its domain, re-checked by a float64 forward pass (and by Keras when
given) and its numbers are recomputed from the point; a witness failing the check is re-solved with
a larger margin and otherwise reported ``unknown``. ``robust`` comes only from solver proofs.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pyomo.environ as pyo

from ..bounds import compute_bounds
from ..bounds.base import big_m, logit_difference_upper
from ..check import SolverProof, check_witness, class_gap, distances, solver_proof, target_gap
from ..domain import Box, L1Box, Perturbation, check_norm
from ..errors import InputError
from ..formulation import add_network, linear_expr
from ..model import Layer, Network
from ..results import AdversarialResult, SolveResult, Status, Verdict
from ..solvers import _check_name, solve, solver_options
from ..tolerances import (  # noqa: F401 (MAX_TRUSTED_BIG_M re-exported)
    BUDGET_CHECK_REL_TOLERANCE, DEFAULT_MARGIN, INTEGER_BOUND_TOLERANCE, MARGIN_GROWTH, MAX_TRUSTED_BIG_M, OPTIMAL_REL_GAP,
    REPAIR_SCALES, RETRY_MARGIN_STEP, VERIFY_SLACK, WITNESS_RETRIES,
)
from .attack import l1_attack, linf_attack, pgd_attack
from .common import Clock, check_time, class_index, finite_nonnegative
from ..threads import limit_blas

SEED_RATIO = 0.95  # the course notebook's rule: true logit <= 0.95 * the largest logit

# --------------------------------------------------------------------------- input checks
def _prepare(network: Network, x, label):
    x0 = network.as_point(x)
    logits = network.forward(x0)
    if label is None:
        c = int(np.argmax(logits))
    else:
        c = class_index(network, label, "label")
    return x0, c, logits


def _check_target(network, target, c):
    if target is None:
        return None
    t = class_index(network, target, "target")
    if t == c:
        raise InputError(
            f"target {t} equals the true class; pick another class, or target=None for any wrong class"
        )
    return t


def with_relu_outputs(network: Network) -> Network:
    """The course notebook's variant: a ReLU on the output logits (for reproducing it only)."""
    last = network.layers[-1]
    return replace(network, layers=network.layers[:-1] + (Layer(last.weight, last.bias, "relu"),),
                   name=network.name + "+relu-outputs")


# --------------------------------------------------------------------------- the model
class AdversarialModel:
    """A network block over a perturbation's box, with distance expressions and swappable goals.

    Exposed so that users can add their own constraints before solving (``.model``, ``.net``).
    """

    def __init__(self, network: Network, x0: np.ndarray, perturbation: Perturbation, norms=(), bound_method="symbolic",
                 domain: Box | None = None):
        self.network = network
        self.x0 = x0
        self.pert = perturbation
        self.box = perturbation.box(x0)
        if domain is not None:  # a smaller domain (e.g. an L1 ball of the best distance so far)
            self.box = Box(np.maximum(self.box.lower, domain.lower), np.minimum(self.box.upper, domain.upper))
            if isinstance(domain, L1Box):
                domain = L1Box(self.box.lower, self.box.upper, center=domain.center, radius=domain.radius)
            else:
                domain = self.box
        self.bounds = compute_bounds(network, domain if domain is not None else self.box, bound_method)
        self.model = pyo.ConcreteModel(name="adversarial")
        self.net = add_network(self.model, network, self.bounds)
        self.xs = self.net.inputs
        self.free = np.flatnonzero(self.box.upper > self.box.lower)
        for i in np.flatnonzero(self.box.upper <= self.box.lower):
            self.xs[i].fix(float(x0[i]))
        self.dist = {}
        self.l0_binaries = None
        needed = set(norms)
        if perturbation.budget is not None:
            needed.add(perturbation.budget_norm)
        if perturbation.l0_limit is not None:
            needed.add("l0")
        for norm in sorted(needed):
            self.dist[norm] = self._add_distance(norm)
        if perturbation.budget is not None and perturbation.budget_norm != "linf":  # linf: in the box
            self.model.budget = pyo.Constraint(expr=self.dist[perturbation.budget_norm] <= perturbation.budget)
        if perturbation.l0_limit is not None:
            self.model.l0_limit = pyo.Constraint(expr=self.dist["l0"] <= perturbation.l0_limit)
        self._goal_count = 0

    # distance of the free inputs from x0, with as few variables as possible: a value that can only
    # move up (x0 at its lower bound) has |d| = x - x0, one that can only move down |d| = x0 - x.
    def _add_distance(self, norm: str):
        m, x0, lo, hi = self.model, self.x0, self.box.lower, self.box.upper
        free = self.free.tolist()
        up = [i for i in free if x0[i] <= lo[i]]
        down = [i for i in free if x0[i] >= hi[i]]
        both = [i for i in free if lo[i] < x0[i] < hi[i]]
        if norm == "l1":
            t = pyo.Var(both, bounds=lambda b, i: (0.0, float(max(hi[i] - x0[i], x0[i] - lo[i]))))
            m.add_component("abs_l1", t)
            m.add_component("abs_l1_pos", pyo.Constraint(both, rule=lambda b, i: t[i] >= self.xs[i] - float(x0[i])))
            m.add_component("abs_l1_neg", pyo.Constraint(both, rule=lambda b, i: t[i] >= float(x0[i]) - self.xs[i]))
            coefs = [1.0] * len(up) + [-1.0] * len(down) + [1.0] * len(both)
            vars_ = [self.xs[i] for i in up] + [self.xs[i] for i in down] + [t[i] for i in both]
            const = -float(np.sum(x0[up])) + float(np.sum(x0[down]))
            return linear_expr(coefs, vars_, const)
        if norm == "linf":
            m.eps_linf = pyo.Var(bounds=(0.0, float(np.max(hi - lo)) if free else 0.0))
            e = m.eps_linf
            ups, downs = up + both, down + both
            m.linf_pos = pyo.Constraint(ups, rule=lambda b, i: self.xs[i] - float(x0[i]) <= e)
            m.linf_neg = pyo.Constraint(downs, rule=lambda b, i: float(x0[i]) - self.xs[i] <= e)
            return e
        # l0: one binary per free value; it must be 1 for the value to move
        s = pyo.Var(free, within=pyo.Binary)
        m.add_component("changed", s)
        can_up = [i for i in free if hi[i] > x0[i]]
        can_down = [i for i in free if lo[i] < x0[i]]
        m.l0_up = pyo.Constraint(can_up, rule=lambda b, i: self.xs[i] - float(x0[i]) <= float(hi[i] - x0[i]) * s[i])
        m.l0_down = pyo.Constraint(can_down, rule=lambda b, i: float(x0[i]) - self.xs[i] <= float(x0[i] - lo[i]) * s[i])
        self.l0_binaries = s
        return linear_expr([1.0] * len(free), [s[i] for i in free])

    # ----- goals: a block of constraints replaced between solves
    def set_goal(self, rows) -> None:
        """Replace the goal constraints by ``rows`` (a list of Pyomo relational expressions)."""
        if self.model.component("goal") is not None:
            self.model.del_component("goal")
        rows = list(rows)
        self.model.goal = pyo.Constraint(range(len(rows)), rule=lambda b, k: rows[k])

    def gap_expr(self, i: int, j: int, margin: float):
        """The relation ``out_i - out_j >= margin``."""
        out = self.net.outputs
        return linear_expr([1.0, -1.0], [out[i], out[j]]) >= float(margin)

    def ratio_expr(self, c: int, j: int, ratio: float = SEED_RATIO):
        """The notebook's rule ``out_c <= ratio * out_j``."""
        out = self.net.outputs
        return linear_expr([float(ratio), -1.0], [out[j], out[c]]) >= 0.0

    def set_objective(self, expr, sense=pyo.minimize) -> None:
        if self.model.component("objective") is not None:
            self.model.del_component("objective")
        self.model.objective = pyo.Objective(expr=expr, sense=sense)

    def set_cutoff(self, norm: str, value: float | None) -> None:
        if self.model.component("cutoff") is not None:
            self.model.del_component("cutoff")
        if value is not None:
            self.model.cutoff = pyo.Constraint(expr=self.dist[norm] <= float(value))

    # ----- reading a point back
    def point(self) -> np.ndarray:
        """The solver's input point, snapped exactly into the allowed set."""
        x = np.array([self.x0[i] if v.fixed else (pyo.value(v) if v.value is not None else self.x0[i])
                      for i, v in enumerate(self.xs)], dtype=np.float64)
        x = np.clip(x, self.box.lower, self.box.upper)
        if self.l0_binaries is not None:
            for i in self.free.tolist():
                if pyo.value(self.l0_binaries[i]) < 0.5:
                    x[i] = self.x0[i]
        return self.fit_budget(x)

    def fit_budget(self, x: np.ndarray) -> np.ndarray:
        """Scale the perturbation down exactly onto an L1 budget it exceeds by solver tolerance."""
        p = self.pert
        if p.budget is not None and p.budget_norm == "l1":
            d = x - self.x0
            l1 = float(np.sum(np.abs(d)))
            if l1 > p.budget:
                x = np.clip(self.x0 + d * (p.budget / l1), self.box.lower, self.box.upper)
        return x

    def budget_problem(self, x: np.ndarray):
        """``None`` when ``x`` respects every limit of the perturbation, else what it breaks."""
        d = distances(x, self.x0)
        p = self.pert
        if p.budget is not None and d[p.budget_norm] > p.budget * (1 + BUDGET_CHECK_REL_TOLERANCE):
            return f"{p.budget_norm} distance {d[p.budget_norm]:.9g} exceeds the budget {p.budget}"
        if p.l0_limit is not None and d["l0"] > p.l0_limit:
            return f"{d['l0']} values changed, more than the limit {p.l0_limit}"
        return None

    def proof(self, sres: SolveResult) -> SolverProof:
        """What a solve of this model proves, by the one trust rule (:func:`reluverify.check.solver_proof`)."""
        return solver_proof(sres, big_m(self.bounds))

    def solve(self, solver, time_limit, threads, mip_gap=None, emphasis=None) -> SolveResult:
        if time_limit is not None and time_limit <= 0.01:  # the clock ran out while building
            return SolveResult(Status.TIME_LIMIT, solver, 0.0, message="no time left for the solver")
        opts = solver_options(solver, big_m(self.bounds))
        sres = solve(self.model, solver, time_limit=time_limit, threads=threads, mip_gap=mip_gap, emphasis=emphasis,
                     options=opts)
        return sres


def _result(network, x0, c, logits, problem, norm, **kw) -> AdversarialResult:
    return AdversarialResult(verdict=Verdict.UNKNOWN, problem=problem, norm=norm, x=x0, original_class=c, logits=logits, **kw)


def fill_witness(res: AdversarialResult, network: Network, x_adv: np.ndarray, norm: str | None):
    res.x_adv = x_adv
    res.adv_logits = network.forward(x_adv)
    res.adversarial_class = int(np.argmax(res.adv_logits))
    res.distances = distances(x_adv, res.x)
    res.distance = res.distances[norm] if norm else None


# --------------------------------------------------------------------------- minimal distortion
@limit_blas
def minimal_distortion(
    network: Network,
    x,
    norm: str = "l1",
    *,
    label: int | None = None,
    target: int | None = None,
    perturbation: Perturbation | None = None,
    solver: str = "highs",
    time_limit: float | None = 120.0,
    threads: int | None = None,
    mip_gap: float | None = None,
    margin: float = DEFAULT_MARGIN,
    criterion: str = "margin",
    relu_outputs: bool = False,
    keras_model=None,
    bound_method="symbolic",
    attack: bool = True,
) -> AdversarialResult:
    """The smallest change of ``x`` (in ``norm``) that changes the network's class.

    Untargeted (any class but ``label``; ``label`` defaults to the predicted class) or targeted
    (``target`` becomes the strict argmax). The MILP asks for the exact class change
    (``out_j >= out_c``) so that its bound is a **certified radius** (``lower_bound``: no input
    closer than it changes the class); the reported example beats the true class by ``margin``
    in a float64 forward pass, and its ``distance`` is recomputed from it. ``perturbation`` adds
    limits (valid box, L-inf cap, L0 limit, mask).

    How: a cheap gradient attack gives a first example (``attack=False`` skips it); its distance
    ``r`` restricts the domain (the L1 or L-inf ball of radius ``r`` inside the box) before bounds
    are computed; then one MILP per wrong class, each over the ball of the best distance found so
    far (re-tightened as better examples appear), with wrong classes the bounds already rule out
    skipped.

    ``criterion="seed_ratio"`` and ``relu_outputs=True`` reproduce the course notebook
    (true logit <= 0.95 x the largest, ReLU on the logits); they are not the default.
    """
    norm = check_norm(norm)
    _check_name(solver)
    check_time(time_limit)
    if criterion not in ("margin", "seed_ratio"):
        raise InputError(f"criterion must be 'margin' or 'seed_ratio', got {criterion!r}")
    margin = finite_nonnegative(margin, "margin")
    net = with_relu_outputs(network) if relu_outputs else network
    if relu_outputs:
        keras_model = None  # the source model has linear outputs; it cannot confirm this variant
    x0, c, logits = _prepare(net, x, label)
    t = _check_target(net, target, c)
    pert = perturbation or Perturbation()
    clock = Clock(time_limit)
    res = _result(net, x0, c, logits, "minimal_distortion", norm, target=t)
    box = pert.box(x0)

    # a point that is already misclassified needs no change
    already = (t is None and class_gap(logits, c) > 0) or (t is not None and target_gap(logits, t) > 0)
    if already and criterion == "margin":
        fill_witness(res, net, x0.copy(), norm)
        res.verdict, res.lower_bound, res.time_s = Verdict.FOUND, 0.0, clock.elapsed()
        res.message = "the input is already not classified as the given label"
        return res

    crit = None
    if criterion == "seed_ratio":
        def crit(lg):
            mx = float(np.max(lg))
            return (lg[c] <= SEED_RATIO * mx and int(np.argmax(lg)) != c), mx * SEED_RATIO - lg[c]

    probe = AdversarialModel.__new__(AdversarialModel)  # budget checks without a model
    probe.x0, probe.pert, probe.box = x0, pert, box

    def verified(point):
        return check_witness(net, point, domain=box, original_class=c, target=t, margin=margin,
                             criterion=crit, keras_model=keras_model, extra=probe.budget_problem)

    best_x, best_d = None, math.inf
    notes = []
    if attack and criterion == "margin" and net.layers[-1].activation == "linear":
        cand = (linf_attack if norm == "linf" else l1_attack)(net, x0, c, box, target=t, margin=margin)
        if cand is not None:
            cand = np.clip(cand, box.lower, box.upper)
            if verified(cand).ok:
                best_x, best_d = cand, distances(cand, x0)[norm]
                notes.append(f"gradient attack: {norm} distance {best_d:.6g}")

    targets = [t] if t is not None else [j for j in np.argsort(-logits).tolist() if j != c]
    if best_x is not None and t is None:  # the attack's class first: its MILP is the likeliest optimum
        lg = net.forward(best_x)
        lg[c] = -np.inf
        adv_cls = int(np.argmax(lg))
        targets.remove(adv_cls)
        targets.insert(0, adv_cls)
    lower = []  # per target: proven lower bound on its distance
    summaries = []
    def pairs_for(j):
        return [(j, c)] if t is None else [(t, k) for k in range(net.n_outputs) if k != t]

    unfinished = []  # targets whose MILP gave no proof: certified afterwards from bounds alone
    for j in targets:
        if clock.expired():
            lower.append(0.0)
            unfinished.append((len(lower) - 1, j))
            notes.append(f"class {j}: not tried (time limit)")
            continue
        radius = best_d if best_x is not None else None
        domain = None if radius is None or norm == "l0" else _ball(x0, box, norm, radius)
        adv = AdversarialModel(net, x0, pert, norms=(norm,), bound_method=bound_method, domain=domain)
        summaries.append(adv.bounds.summary())
        if criterion == "margin" and net.layers[-1].activation == "linear":
            if any(logit_difference_upper(adv.bounds, a, b) < 0 for a, b in pairs_for(j)):
                # no input within the current radius reaches class j
                lower.append(radius if radius is not None else math.inf)
                notes.append(f"class {j}: ruled out by bounds")
                continue
        adv.set_objective(adv.dist[norm])
        # the first MILP asks for out_j >= out_c - VERIFY_SLACK, like verify_robustness: its optimum
        # is still a certified radius, and "infeasible" (robust) survives the solver's tolerances on a
        # counterexample region thinner than them (tests/test_near_boundary.py, thin-slab networks)
        milp_margin = -VERIFY_SLACK
        lb_j = None
        for attempt in range(WITNESS_RETRIES + 1):
            if criterion == "seed_ratio":
                rows = [adv.ratio_expr(c, j)]
            elif t is None:
                rows = [adv.gap_expr(j, c, milp_margin)]
            else:
                rows = [adv.gap_expr(t, k, milp_margin) for k in range(net.n_outputs) if k != t]
            adv.set_goal(rows)
            adv.set_cutoff(norm, best_d if best_x is not None else None)
            # with an incumbent in hand the MILP's job is the proof (see solve.PROOF_EMPHASIS)
            sres = adv.solve(solver, clock.left(), threads, mip_gap, emphasis="proof" if best_x is not None else None)
            res.solves.append(sres)
            if attempt == 0:  # the boundary MILP (less VERIFY_SLACK) gives the sound bound
                proof = adv.proof(sres)
                if proof.infeasible:
                    lb_j = best_d if best_x is not None else math.inf
                elif proof.bound is not None:
                    lb_j = max(0.0, proof.bound)
                    if sres.objective is not None:
                        lb_j = min(lb_j, sres.objective)
                    if best_x is not None:
                        lb_j = min(lb_j, best_d)
                else:  # no proof from this MILP: certified from bounds alone, below
                    lb_j = 0.0
                if proof.note:
                    notes.append(f"class {j}: {proof.note}")
            if not sres.has_solution:
                break
            cand = _repair(adv, net, adv.point(), c, t, margin, criterion)
            chk = check_witness(net, cand, domain=adv.box, original_class=c, target=t, margin=margin,
                                criterion=crit, keras_model=keras_model, extra=adv.budget_problem)
            if chk.ok:
                d = distances(cand, x0)[norm]
                if d < best_d:
                    best_x, best_d = cand, d
                break
            notes.append(f"class {j}: witness rejected ({chk.reason}); re-solving with a larger margin")
            milp_margin = max(margin, RETRY_MARGIN_STEP) * (MARGIN_GROWTH ** attempt) if criterion == "margin" else milp_margin
            if criterion != "margin" or clock.expired():
                break
        lower.append(lb_j if lb_j is not None else 0.0)
        # no proof from the MILP (time limit, error, or a solver that reports no dual bound, as CBC
        # sometimes does): certify what sound bounds alone can, below
        if lb_j is None or (best_x is not None and lb_j < best_d and res.solves[-1].status != Status.OPTIMAL) or lb_j == 0.0:
            unfinished.append((len(lower) - 1, j))
    if criterion == "margin" and norm in ("l1", "linf"):
        for pos, j in unfinished:
            r_max = best_d if best_x is not None else float(np.max(box.upper - box.lower)) * (box.size if norm == "l1" else 1)
            r = bounds_certified_radius(net, x0, box, norm, pairs_for(j), r_max, bound_method)
            if r > lower[pos]:
                lower[pos] = r
    lb = min(lower) if lower else (0.0 if best_x is None else best_d)
    if norm == "l0" and math.isfinite(lb):
        lb = float(math.ceil(lb - INTEGER_BOUND_TOLERANCE))
    res.lower_bound = lb
    res.bounds_summary = summaries[-1] if summaries else ""
    res.time_s = clock.elapsed()
    if best_x is not None:
        fill_witness(res, net, best_x, norm)
        res.verdict = Verdict.FOUND
        res.checks = {"forward": True, "keras": None if keras_model is None else True}
        gap = res.distance - lb
        res.message = ("optimal" if gap <= OPTIMAL_REL_GAP * max(1.0, res.distance) else f"best found; gap to the proven bound {gap:.3g}")
    elif lower and all(v == math.inf for v in lower):
        res.verdict = Verdict.ROBUST
        res.message = "no allowed change of the input changes its class (solver proof)"
    else:
        res.verdict = Verdict.UNKNOWN
        res.message = "no verified adversarial example (time limit, solver error or rejected witness)"
    if notes:
        res.message += "; " + "; ".join(notes)
    return res


def _ball(x0: np.ndarray, box: Box, norm: str, radius: float) -> Box:
    if norm == "l1":
        return L1Box.around(x0, radius, box)
    return Box(np.maximum(box.lower, x0 - radius), np.minimum(box.upper, x0 + radius))


def bounds_certified_radius(network: Network, x0: np.ndarray, box: Box, norm: str, pairs, r_max: float,
                            bound_method="symbolic", iters: int = 14) -> float:
    """The largest radius (found by bisection, at most ``r_max``) of an L1/L-inf ball around ``x0``
    over which sound bounds prove ``out_a - out_b < 0`` for every ``(a, b)`` in ``pairs``: a
    certified lower bound on the distance to any input where one of the pairs is reversed. Cheap
    (no MILP); used for classes the MILPs could not finish."""
    if norm not in ("l1", "linf") or network.layers[-1].activation != "linear" or not (r_max > 0):
        return 0.0

    def safe(r):
        b = compute_bounds(network, _ball(x0, box, norm, r), bound_method)
        return all(logit_difference_upper(b, a, c) < 0 for a, c in pairs)

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


def _repair(adv: AdversarialModel, net: Network, x: np.ndarray, c: int, t, margin: float, criterion: str) -> np.ndarray:
    """Push a boundary point (found with margin 0) just past the boundary by scaling its change."""
    if criterion != "margin":
        return x
    gap_of = (lambda lg: class_gap(lg, c)) if t is None else (lambda lg: target_gap(lg, t))
    if gap_of(net.forward(x)) >= max(margin, 1e-300):  # not a tolerance: a strictly positive gap
        return x
    d = x - adv.x0
    need = max(margin, 1e-300)  # not a tolerance: a strictly positive gap

    def scaled(s):
        return adv.fit_budget(np.clip(adv.x0 + d * (1 + s), adv.box.lower, adv.box.upper))

    prev = 0.0
    for s in REPAIR_SCALES:
        if gap_of(net.forward(scaled(s))) >= need:
            lo, hi = prev, s  # bisect for the smallest scaling that still passes
            for _ in range(30):
                mid = 0.5 * (lo + hi)
                if gap_of(net.forward(scaled(mid))) >= need:
                    hi = mid
                else:
                    lo = mid
            return scaled(hi)
        prev = s
    return x


# --------------------------------------------------------------------------- maximal confidence
@limit_blas
def max_confidence(
    network: Network,
    x,
    target: int,
    *,
    budget: float | None = None,
    budget_norm: str = "l1",
    objective: str = "logit",
    min_probability: float | None = None,
    require_target_wins: bool = True,
    label: int | None = None,
    perturbation: Perturbation | None = None,
    solver: str = "highs",
    time_limit: float | None = 120.0,
    threads: int | None = None,
    mip_gap: float | None = None,
    margin: float = DEFAULT_MARGIN,
    keras_model=None,
    bound_method="symbolic",
) -> AdversarialResult:
    """Maximise ``target``'s logit (``objective="logit"``) or its margin over every other class
    (``"margin"``) over the changes of ``x`` within ``budget`` (in ``budget_norm``) and the limits
    of ``perturbation``, with ``target`` the strict argmax by ``margin`` (``require_target_wins``).

    ``min_probability=p`` adds the linear sufficient condition ``out_t - out_j >= log((K-1) p / (1-p))``
    for every ``j``, which guarantees ``softmax(out)_t >= p`` (K classes); it is sufficient, not
    necessary, so an infeasible answer means "not with this condition".
    ``objective`` (recomputed from the point) and ``objective_bound`` (proven) are reported.
    """
    _check_name(solver)
    check_time(time_limit)
    if objective not in ("logit", "margin"):
        raise InputError(f"objective must be 'logit' or 'margin', got {objective!r}")
    if budget is not None:
        budget = finite_nonnegative(budget, "budget")
    x0, c, logits = _prepare(network, x, label)
    t = _check_target(network, target, c)
    base = perturbation or Perturbation()
    pert = base if budget is None else replace(base, budget=budget, budget_norm=check_norm(budget_norm))
    K = network.n_outputs
    need = margin
    if min_probability is not None:
        p = float(min_probability)
        if not 0 < p < 1:
            raise InputError(f"min_probability must lie strictly between 0 and 1, got {min_probability}")
        need = max(need, math.log((K - 1) * p / (1 - p)))
    clock = Clock(time_limit)
    res = _result(network, x0, c, logits, "max_confidence", pert.budget_norm if pert.budget is not None else None, target=t)
    # an L1 budget is an L1 ball: bounds over it (knapsack first layer) are far tighter than the box's
    l1_ball = _ball(x0, pert.box(x0), "l1", pert.budget) if pert.budget is not None and pert.budget_norm == "l1" else None
    adv = AdversarialModel(network, x0, pert, bound_method=bound_method, domain=l1_ball)
    res.bounds_summary = adv.bounds.summary()
    out = adv.net.outputs
    m = adv.model
    if objective == "logit":
        adv.set_objective(out[t], sense=pyo.maximize)
    else:
        lo, hi = adv.bounds.output_bounds()
        others = [k for k in range(K) if k != t]
        m.max_other = pyo.Var(bounds=(float(np.min(lo[others])), float(np.max(hi[others]))))
        m.max_other_def = pyo.Constraint(others, rule=lambda b, k: m.max_other >= out[k])
        adv.set_objective(out[t] - m.max_other, sense=pyo.maximize)

    def value_of(lg):
        return float(lg[t]) if objective == "logit" else target_gap(lg, t)

    def prob_ok(point):
        if min_probability is None:
            return None
        lg = network.forward(point)
        pr = np.exp(lg - lg.max())
        pr /= pr.sum()
        return None if pr[t] >= min_probability else f"softmax probability {pr[t]:.6f} below {min_probability}"

    def extra(point):
        return adv.budget_problem(point) or prob_ok(point)

    # The first MILP asks for the win only up to VERIFY_SLACK (and for the probability condition's
    # gap, when given): its infeasibility is what "class t cannot win" needs (the rule of
    # verify_robustness), and its dual bound holds for every point where t wins. Its optimum may
    # win by less than ``margin``; later runs ask for a hair more than ``need``.
    proof_level = (max(0.0, need) if min_probability is not None else 0.0) - VERIFY_SLACK
    milp_margin = proof_level
    for attempt in range(WITNESS_RETRIES + 1):
        if clock.expired():  # building the model may use up a short time limit
            if attempt == 0:
                res.message = "time limit reached before the solver could run"
            break
        rows = [adv.gap_expr(t, k, milp_margin) for k in range(K) if k != t] if require_target_wins else []
        adv.set_goal(rows)
        sres = adv.solve(solver, clock.left(), threads, mip_gap)
        res.solves.append(sres)
        if attempt == 0:
            proof = adv.proof(sres)
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
                           f"win by {milp_margin:.3g} (solver): no checked point, no proof")
            break
        if not sres.has_solution:
            res.verdict = Verdict.UNKNOWN
            res.message = f"no solution ({sres.status})"
            break
        point = adv.point()
        chk = check_witness(network, point, domain=adv.box, original_class=c,
                            target=t if require_target_wins else None,
                            margin=margin if require_target_wins else 0.0,
                            criterion=None if require_target_wins else (lambda lg: (True, 0.0)),
                            keras_model=keras_model, extra=extra)
        res.checks = {"forward": chk.ok, "keras": chk.keras_ok, "reason": chk.reason}
        if chk.ok:
            fill_witness(res, network, point, res.norm or "l1")
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
        milp_margin = need + RETRY_MARGIN_STEP * MARGIN_GROWTH ** (2 * attempt)
    if res.objective_bound is not None and res.objective is not None:
        res.objective_bound = max(res.objective_bound, res.objective)
    res.time_s = clock.elapsed()
    return res
