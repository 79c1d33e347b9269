"""The public questions on tree ensembles: the same functions, arguments and results as for networks.

:func:`reluverify.verify_robustness`, :func:`~reluverify.minimal_distortion`,
:func:`~reluverify.max_confidence` and :func:`~reluverify.infer` hand a
:class:`~reluverify.model.trees.TreeEnsemble` here (:mod:`reluverify.problems.dispatch`). The stages
are the engine's, with the tree pieces:

1. **label elimination**: per wrong class ``j``, sound bounds on ``score_j - score_c`` over the
   input set's hull from the extreme reachable leaf of each tree
   (:meth:`~reluverify.model.trees.TreeEnsemble.score_bounds`);
2. **falsification**: greedy threshold crossing (:mod:`reluverify.trees.attack`);
3. **MILP** per class left (:mod:`reluverify.trees.formulation`, the input set encoded by its own
   :meth:`~reluverify.sets.base.InputSet.encode`), decided under the one trust rule
   (:func:`reluverify.check.solver_proof`).

**Strictness.** A proof MILP asks for ``score_j - score_c >= -slack`` over closed cells (a
relaxation: ties, the framework's float rounding of the sums, :meth:`TreeEnsemble.score_rounding`,
and the limits themselves are all inside it), so its infeasibility and dual bounds are proofs. Its
point is snapped into the exact cell of its predicates and checked (:func:`check_witness`): inside
the input set, another class by the float64 forward pass **and** by the framework's own ``predict``.
A point that fails (a tie, say) is followed by a witness MILP asking for ``score_j - score_c >=
+slack``, whose points the framework classifies as the MILP says; it proves nothing.
"""

from __future__ import annotations

import math

import numpy as np

from ..check import distances, solver_proof
from ..engine.common import Clock
from ..engine.milp import minimise_distance, open_model
from ..errors import InputError
from ..model.trees import TreeEnsemble
from ..results import AdversarialResult, InferenceResult, Status, Verdict
from ..sets import ball, check_norm
from ..sets.ball import Ball
from ..solvers import DEFAULT_SOLVER, _check_name
from ..tolerances import DEFAULT_TIME_LIMIT, OPTIMAL_REL_GAP, VERIFY_SLACK
from ..tolerances import TREE_BOUND_MARGIN as BOUND_MARGIN  # why: tolerances.py
from .attack import greedy_attack
from .formulation import add_cell_distance, tree_arrays

#: the network-only options the tree path accepts and ignores (one signature for both kinds)
NETWORK_ONLY = ("bound_method", "split", "branch", "keras_model", "relu_outputs", "criterion", "budget",
                "budget_norm", "min_probability", "domain")


def _options(kwargs: dict, allowed: tuple = ()) -> dict:
    unknown = [k for k in kwargs if k not in NETWORK_ONLY and k not in allowed]
    if unknown:
        raise InputError(f"unexpected argument(s) for a tree ensemble: {', '.join(unknown)}")
    if kwargs.get("reference") is not None or kwargs.get("keras_model") is not None:
        raise InputError("a tree ensemble carries its framework's predict (it checks every witness); "
                         "reference= is for networks")
    if kwargs.get("relu_outputs") or kwargs.get("criterion", "margin") != "margin":
        raise InputError("relu_outputs and criterion='seed_ratio' are the course network's variants; "
                         "tree ensembles have neither")
    return kwargs




def proof_slack(ens: TreeEnsemble, outputs=None) -> float:
    """How far below a tie a proof must rule a wrong class out (module docstring), for a question on
    the scores of ``outputs`` (default: all)."""
    return VERIFY_SLACK + ens.score_rounding(outputs)


def check_witness(ens: TreeEnsemble, x, c: int, inputs, target: int | None = None) -> str | None:
    """None when ``x`` is a witness: inside ``inputs``, classified as another class than ``c``
    (as ``target``) by the float64 forward pass and by the framework's ``predict``; else why not."""
    x = np.asarray(x, dtype=np.float64)
    p = inputs.problem(x)
    if p:
        return p
    k = ens.predict_class(x)
    if (target is not None and k != target) or (target is None and k == c):
        return f"float64 forward pass: class {k}"
    ref = ens.framework_predict(x)
    if ref is not None and int(ref) != k:
        return f"the framework's predict says class {int(ref)}, the forward pass {k}"
    return None


class TreeMilp:
    """One MILP of ``ens`` over ``inputs`` (its hull prunes the trees; the set's rows are added) with
    the score columns of ``outputs`` and the trees that touch them, on ``solver``."""

    def __init__(self, ens: TreeEnsemble, inputs, solver: str, outputs, *, threads=None, emphasis=None,
                 mip_gap=None, cells_of=None):
        """``cells_of``: a ball (:mod:`reluverify.sets`, L-inf, L1 or L0, no other limits) whose
        centre and norm state the question on the predicates alone: the inputs get no rows (only
        the hull of ``inputs`` prunes), :meth:`minimise_cell_distance` is the objective and the
        ball's radius its cutoff, and points are the cells' points nearest to the centre."""
        box = inputs.hull()
        self.ens = ens
        self.center = None if cells_of is None else cells_of.center
        trees = ens.output_trees(outputs)
        self.ta = tree_arrays(ens, box.lower, box.upper, trees=trees, outputs=outputs,
                              link_inputs=cells_of is None)
        self.model = open_model(self.ta.arrays, solver, threads=threads, emphasis=emphasis,
                                big_m_value=self.ta.big_m, mip_gap=mip_gap)
        if cells_of is None and not inputs.is_box:
            inputs.encode(self.model, self.ta.input_cols)

    def beats(self, j: int, c: int, rhs: float) -> None:
        """Row ``score_j - score_c >= rhs``."""
        self.model.add_rows(rhs, np.inf, [([self.ta.score_col(j), self.ta.score_col(c)], [1.0, -1.0])])

    def minimise_distance(self, norm_ball, cutoff: float | None = None) -> None:
        minimise_distance(self.model, norm_ball, self.ta.input_cols, cutoff)

    def minimise_cell_distance(self, norm: str, cutoff: float | None = None) -> None:
        """Objective: the distance from the centre to the chosen cell (:func:`add_cell_distance`);
        with ``cutoff``, only cells at most that far."""
        cols, coefs, const = add_cell_distance(self.model, self.ta, self.center, norm)
        self.model.set_objective(dict(zip(cols, coefs)), "min", offset=const)
        if cutoff is not None and cols:
            self.model.add_rows(-np.inf, float(cutoff) - const, [(list(cols), list(coefs))])

    def solve(self, time_limit):
        res, values = self.model.solve(time_limit=None if time_limit is None else max(time_limit, 0.1))
        if values is None:
            return res, None, values
        x = self.ta.snap(values) if self.center is None else self.ta.closest(values, self.center)
        return res, x, values


def _start(ens: TreeEnsemble, x, label, solver, time_limit, what: str) -> tuple:
    from ..problems.common import check_time

    ens._need_classes(what)
    _check_name(solver)
    check_time(time_limit)
    x0 = ens.as_point(x)
    scores = ens.forward(x0)
    c = ens.classes_of(scores) if label is None else _class(ens, label, "label")
    return x0, scores, c


def _class(ens: TreeEnsemble, value, what: str) -> int:
    try:
        whole = not isinstance(value, (bool, np.bool_)) and int(value) == value
    except (TypeError, ValueError, OverflowError):
        whole = False
    if not whole or not 0 <= int(value) < ens.n_outputs:
        raise InputError(f"{what} must be a class index 0..{ens.n_outputs - 1}, got {value!r}")
    return int(value)


def _order(ens: TreeEnsemble, c: int, box, classes) -> list:
    """``[(j, upper bound of score_j - score_c)]`` over the box, most promising first."""
    e = np.eye(ens.n_outputs)
    out = [(j, float(ens.score_bounds(box.lower, box.upper, e[j] - e[c])[1])) for j in classes]
    return sorted(out, key=lambda t: -t[1])


def _bounds_radius(ens: TreeEnsemble, within, questions, hi: float, steps: int = 20) -> float:
    """A radius ``r <= hi`` at which the per-tree score bounds over the hull of ``within(r +
    BOUND_MARGIN)`` rule out every one of ``questions`` (``(winner, others, slack)``: ``winner`` beats
    each of ``others`` by ``-slack``), by bisection; 0 when they do not even at ``BOUND_MARGIN``. No
    input within distance ``r`` is then classified as any of those winners: a sound lower bound on
    their minimal distance that needs no MILP. Not for L0 (the hulls of its balls are the whole box)."""
    e = np.eye(ens.n_outputs)
    order = list(questions)

    def out(r):
        h = within(r + BOUND_MARGIN).hull()
        for k, (winner, others, slack) in enumerate(order):
            if min(float(ens.score_bounds(h.lower, h.upper, e[winner] - e[o])[1]) for o in others) >= -slack:
                order.insert(0, order.pop(k))  # the question that failed first is asked first next time
                return False
        return True

    if not (hi > 0 and out(0.0)):
        return 0.0
    if out(hi):
        return hi
    lo = 0.0
    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        if out(mid):
            lo = mid
        else:
            hi = mid
    return lo


def _fill(res: AdversarialResult, ens: TreeEnsemble, x_adv, norm_ball) -> None:
    res.x_adv = np.asarray(x_adv, dtype=np.float64)
    res.adv_logits = ens.forward(res.x_adv)
    res.adversarial_class = ens.classes_of(res.adv_logits)
    res.distances = distances(res.x_adv, res.x, norm_ball)
    res.distance = res.distances[norm_ball.norm]
    res.checks = {"forward": True, "framework": True if ens.reference is not None else None}


# ---------------------------------------------------------------------------------------------
# verify_robustness


def verify_robustness(ens: TreeEnsemble, x, eps, norm: str = "linf", *, label=None, perturbation=None,
                      solver: str = DEFAULT_SOLVER, time_limit=DEFAULT_TIME_LIMIT, threads=None, attack: bool = True,
                      **kwargs) -> AdversarialResult:
    """``robust`` (every wrong class ruled out by bounds or an infeasible MILP), ``not_robust`` (a
    checked witness) or ``unknown``; the tree-ensemble side of :func:`reluverify.verify_robustness`."""
    from ..problems.robustness import robustness_set

    _options(kwargs, ("reference",))
    norm = check_norm(norm)
    x0, scores, c = _start(ens, x, label, solver, time_limit, "verify_robustness")
    clock = Clock(time_limit)
    inputs, eps = robustness_set(ens, x0, eps, norm, perturbation)
    from ..domain import Perturbation

    # proofs run over the ball widened by BOUND_MARGIN (L0 radii are counts: not widened)
    proof_inputs = inputs if norm == "l0" else (perturbation or Perturbation()).input_set(x0, norm, eps + BOUND_MARGIN)

    base = perturbation or Perturbation()
    norm_ball = ball(norm, x0, None, valid=base.valid_box(x0.size), mask=base.mask)
    res = AdversarialResult(verdict=Verdict.UNKNOWN, problem="verify_robustness", norm=norm, x=x0,
                            original_class=c, logits=scores, eps=eps)
    stats = {"eliminated": 0, "milps": 0}
    res.stats = stats

    def done(verdict, message, point=None):
        res.verdict = verdict
        res.message = message
        if point is not None:
            _fill(res, ens, point, norm_ball)
        res.time_s = clock.elapsed()
        return res

    if check_witness(ens, x0, c, inputs) is None:
        return done(Verdict.NOT_ROBUST, "the input itself is not classified as the given label", x0)
    if attack:
        cand = greedy_attack(ens, x0, c, inputs, lambda X: norm_ball.distance(X))
        if cand is not None and check_witness(ens, cand, c, inputs) is None:
            return done(Verdict.NOT_ROBUST, "counterexample from the greedy threshold-crossing attack", cand)
    hull = inputs.hull()
    left = []
    for j, ub in _order(ens, c, hull, [j for j in range(ens.n_outputs) if j != c]):
        if ub < -proof_slack(ens, [c, j]):
            stats["eliminated"] += 1
        else:
            left.append(j)
    if not left:
        return done(Verdict.ROBUST, "every wrong class eliminated by the per-tree score bounds")
    unsure = []
    for j in left:
        if clock.expired():
            return done(Verdict.UNKNOWN, f"not decided (time limit; {len(left)} classes left for the MILP)")
        slack = proof_slack(ens, [c, j])
        for witness_run in (False, True):
            milp = TreeMilp(ens, proof_inputs if not witness_run else inputs, solver, [c, j], threads=threads)
            milp.beats(j, c, slack if witness_run else -slack)
            sres, x, _ = milp.solve(clock.left())
            res.solves.append(sres)
            stats["milps"] += 1
            if x is not None and check_witness(ens, x, c, inputs) is None:
                return done(Verdict.NOT_ROBUST, f"counterexample from the MILP (class {j})", x)
            if not witness_run:
                proof = solver_proof(sres, milp.ta.big_m)
                if proof.infeasible:
                    break  # class j ruled out
                if x is None:  # no proof, no point: a time limit or an error
                    unsure.append(f"class {j}: {sres.status}")
                    break
            else:
                unsure.append(f"class {j}: within the proof slack of a class change, no witness")
    if unsure:
        return done(Verdict.UNKNOWN, "not decided (" + "; ".join(unsure) + ")")
    return done(Verdict.ROBUST, "every wrong class proven unreachable (MILP)")


# ---------------------------------------------------------------------------------------------
# minimal_distortion


def minimal_distortion(ens: TreeEnsemble, x, norm: str = "l1", *, label=None, target=None, perturbation=None,
                       solver: str = DEFAULT_SOLVER, time_limit=DEFAULT_TIME_LIMIT, threads=None, attack: bool = True,
                       mip_gap=None, margin=None, **kwargs) -> AdversarialResult:
    """The smallest change of ``x`` in ``norm`` (L1, L-inf, L0) that changes the ensemble's class
    (to ``target``): one MILP per wrong class minimising the distance over the ball of the best
    distance so far (its hull prunes the trees), after the greedy attack and the per-tree bounds.
    ``lower_bound`` is certified (each class's MILP bound, infeasibility within the cutoff, or
    bounds); ``optimal`` when the gap is at most ``OPTIMAL_REL_GAP * max(1, distance)``. ``margin``
    and ``mip_gap`` are the network path's options; witnesses here are checked by class only."""
    from ..domain import Perturbation

    _options(kwargs, ("reference",))
    norm = check_norm(norm)
    x0, scores, c = _start(ens, x, label, solver, time_limit, "minimal_distortion")
    t = None
    if target is not None:
        t = _class(ens, target, "target")
        if t == c:
            raise InputError(f"target {t} equals the true class; pick another class, or target=None")
    pert = perturbation or Perturbation()
    pert.check_point(x0)
    clock = Clock(time_limit)
    res = AdversarialResult(verdict=Verdict.UNKNOWN, problem="minimal_distortion", norm=norm, x=x0,
                            original_class=c, logits=scores, target=t)
    unbounded = pert.input_set(x0, norm, None)
    norm_ball = ball(norm, x0, None, valid=pert.valid_box(x0.size), mask=pert.mask)
    whole = norm == "l0"

    def within(radius):
        return unbounded if radius is None else pert.input_set(x0, norm, radius)

    if check_witness(ens, x0, c, unbounded, t) is None:
        _fill(res, ens, x0, norm_ball)
        res.verdict, res.lower_bound, res.time_s = Verdict.FOUND, 0.0, clock.elapsed()
        res.message = "the input is already not classified as the given label"
        return res
    best, upper = None, math.inf
    notes = []
    if attack:
        cand = greedy_attack(ens, x0, c, unbounded, lambda X: norm_ball.distance(X), target=t)
        if cand is not None and check_witness(ens, cand, c, unbounded, t) is None:
            best, upper = cand, float(norm_ball.distance(cand))
            notes.append(f"greedy attack: {norm} distance {upper:.6g}")
    classes = [t] if t is not None else [j for j in range(ens.n_outputs) if j != c]
    if best is not None and t is None:  # the attack's class first
        k = ens.predict_class(best)
        classes.remove(k)
        classes.insert(0, k)
    lower = []
    per_class = []  # beside lower: (class, winner, others, slack) of a class its bounds may raise, or None
    stats = {"milps": 0, "eliminated": 0}
    res.stats = stats

    # the question on the predicates alone (Kantchelian's distance) when the allowed inputs are one
    # ball of the norm within its valid box and mask: its radius is the cutoff (the best distance)
    cells = isinstance(unbounded, Ball) and unbounded.norm == norm

    def radius_of(u):
        if math.isinf(u):
            return None
        return max(1, int(math.ceil(u))) if whole else u

    for j in classes:
        cutoff = upper if best is not None else None
        inputs = within(radius_of(upper))
        hull = inputs.hull()
        rows = [j] if t is None else [k for k in range(ens.n_outputs) if k != t]
        others = (c,) if t is None else tuple(rows)
        winner = j
        slack = proof_slack(ens, {winner, *others})
        ub = min(float(ens.score_bounds(hull.lower, hull.upper, np.eye(ens.n_outputs)[winner] -
                                        np.eye(ens.n_outputs)[o])[1]) for o in others)
        if ub < -slack:
            lower.append(upper)
            per_class.append(None)
            stats["eliminated"] += 1
            notes.append(f"class {j}: ruled out by bounds" + (f" within {upper:.6g}" if best is not None else ""))
            continue
        if clock.expired():
            lower.append(0.0)
            per_class.append((j, winner, others, slack))
            notes.append(f"class {j}: not tried (time limit)")
            continue
        lb_j = 0.0
        for witness_run in (False, True):
            outs = sorted({winner, *others})
            if cells:  # Kantchelian's distance on the predicates; the ball is the cutoff
                milp = TreeMilp(ens, inputs, solver, outs, threads=threads, cells_of=inputs)
                milp.minimise_cell_distance(norm, cutoff)
            else:
                milp = TreeMilp(ens, inputs, solver, outs, threads=threads)
                milp.minimise_distance(norm_ball, cutoff)
            for o in others:
                milp.beats(winner, o, slack if witness_run else -slack)
            sres, x, _ = milp.solve(clock.left())
            res.solves.append(sres)
            stats["milps"] += 1
            if not witness_run:
                proof = solver_proof(sres, milp.ta.big_m)
                margin = 0.0 if whole else BOUND_MARGIN
                if proof.infeasible:
                    lb_j = upper if math.isinf(upper) else max(0.0, upper - margin)
                elif proof.bound is not None:
                    lb_j = max(0.0, proof.bound - margin)
                    if cutoff is not None:
                        lb_j = min(lb_j, cutoff)
                if proof.note:
                    notes.append(f"class {j}: {proof.note}")
            if x is not None:
                if whole:
                    x = unbounded.fit(x)
                if check_witness(ens, x, c, unbounded, t) is None:
                    d = float(norm_ball.distance(x))
                    if d < upper:
                        best, upper = x, d
                    break
                notes.append(f"class {j}: MILP point rejected by the check; a witness MILP with margin")
            else:
                break
            if clock.expired():
                break
        lower.append(lb_j)
        per_class.append((j, winner, others, slack))

    def floor(hi):
        """The least class bound, those below ``hi`` (classes the time limit left weak) raised to what
        the per-tree bounds prove: L-inf, L1: the radius at which they rule all those classes out;
        L0: 1 (the input itself is not a witness, so one value at least must change)."""
        weak = [k for k, item in enumerate(per_class) if item is not None and lower[k] < hi]
        if weak:
            r = 1.0 if whole else _bounds_radius(ens, within, [per_class[k][1:] for k in weak], hi)
            if r > min(lower[k] for k in weak):
                stats["bounded_by_trees"] = len(weak)
            for k in weak:
                lower[k] = max(lower[k], r)
        return min(lower) if lower else math.inf

    if best is not None:
        _fill(res, ens, best, norm_ball)
        res.verdict = Verdict.FOUND
        res.lower_bound = min(min(lower) if lower else upper, res.distance)
        if res.distance - res.lower_bound > OPTIMAL_REL_GAP * max(1.0, res.distance):  # not closed
            res.lower_bound = min(floor(res.distance), res.distance)
        if whole:
            res.lower_bound = float(math.ceil(res.lower_bound - 1e-6))  # not a tolerance: a count's rounding
        gap = res.distance - res.lower_bound
        res.message = ("optimal" if gap <= OPTIMAL_REL_GAP * max(1.0, res.distance)
                       else f"best found; gap to the proven bound {gap:.3g}")
    else:
        lb = min(lower) if lower else math.inf
        if not math.isinf(lb):
            lb = floor(float(norm_ball.max_radius()))
        res.lower_bound = lb
        if math.isinf(lb):
            res.verdict = Verdict.ROBUST
            res.message = "no allowed change of the input changes its class (proof)"
        else:
            res.verdict = Verdict.UNKNOWN
            res.message = "no verified adversarial example (time limit or solver error)"
    if notes:
        res.message += "; " + "; ".join(notes)
    res.time_s = clock.elapsed()
    return res


# ---------------------------------------------------------------------------------------------
# max_confidence


def max_confidence(ens: TreeEnsemble, x, target: int, *, eps=None, norm=None, objective: str = "logit",
                   require_target_wins: bool = True, label=None, perturbation=None, solver: str = DEFAULT_SOLVER,
                   time_limit=DEFAULT_TIME_LIMIT, threads=None, mip_gap=None, margin=None,
                   **kwargs) -> AdversarialResult:
    """Maximise ``target``'s score (``objective="logit"``) or its margin over every other output
    (``"margin"``) over the inputs within ``eps`` of ``x`` in ``norm`` (L1 by default; no ``eps``:
    the limits of ``perturbation``), with ``target`` the class by the framework's rule when
    ``require_target_wins``. A regressor's ``target`` is 0: its prediction is maximised.
    ``objective`` is recomputed from the checked point; ``objective_bound`` is proven (trust rule);
    ``robust``: no allowed input lets ``target`` win."""
    from ..domain import Perturbation

    _options(kwargs, ("reference",))
    if objective not in ("logit", "margin"):
        raise InputError(f"objective must be 'logit' or 'margin', got {objective!r}")
    _check_name(solver)
    x0 = ens.as_point(x)
    scores = ens.forward(x0)
    t = _class(ens, target, "target")
    classifier = ens.task == "classifier"
    c = (ens.classes_of(scores) if label is None else _class(ens, label, "label")) if classifier else 0
    pert = perturbation or Perturbation()
    pert.check_point(x0)
    norm = check_norm(norm or "l1")
    inputs = pert.input_set(x0, norm, eps)
    norm_ball = ball(norm, x0, None, valid=pert.valid_box(x0.size), mask=pert.mask)
    clock = Clock(time_limit)
    res = AdversarialResult(verdict=Verdict.UNKNOWN, problem="max_confidence", norm=norm, x=x0, original_class=c,
                            logits=scores, target=t, eps=None if eps is None else float(eps))
    return _maximise(ens, res, inputs, norm_ball, t, objective, require_target_wins and classifier, solver=solver,
                     clock=clock, threads=threads, mip_gap=mip_gap)


def _maximise(ens: TreeEnsemble, res: AdversarialResult, inputs, norm_ball, t: int, objective: str, wins: bool, *,
              solver, clock, threads, mip_gap) -> AdversarialResult:
    """Maximise output ``t``'s score or margin over ``inputs`` (``wins``: with ``t`` the class by
    ``proof_slack``), fill ``res``: the point is checked, its objective recomputed; the bound proven."""
    K = ens.n_outputs
    others = [k for k in range(K) if k != t]
    wins = wins and K > 1
    outs = list(range(K)) if (wins or objective == "margin") and K > 1 else [t]
    milp = TreeMilp(ens, inputs, solver, outs, threads=threads, mip_gap=mip_gap)
    slack = proof_slack(ens)
    if wins:
        for k in others:
            milp.beats(t, k, slack)
    st = milp.ta.score_col(t)
    if objective == "margin" and K > 1:
        m = milp.model.add_column(-1e6, 1e6)  # not a tolerance: a free column with finite bounds
        milp.model.add_rows(0.0, np.inf, [([st, milp.ta.score_col(k), m], [1.0, -1.0, -1.0]) for k in others])
        milp.model.set_objective({m: 1.0}, "max")
    else:
        milp.model.set_objective({st: 1.0}, "max")
    sres, x_opt, _ = milp.solve(clock.left())
    res.solves.append(sres)
    proof = solver_proof(sres, milp.ta.big_m)
    if proof.bound is not None:
        res.objective_bound = proof.bound + ens.score_rounding(outs)
    point = None
    if x_opt is not None and inputs.problem(x_opt) is None:
        if not wins or check_witness(ens, x_opt, -1, inputs, t) is None:
            point = x_opt
    if point is not None:
        _fill(res, ens, point, norm_ball)
        s = ens.forward(point)
        res.objective = float(s[t] - np.max(np.delete(s, t))) if objective == "margin" and K > 1 else float(s[t])
        res.verdict = Verdict.FOUND
        res.message = "optimal" if sres.status == Status.OPTIMAL else f"best found ({sres.status})"
    elif proof.infeasible:
        res.verdict = Verdict.ROBUST
        res.message = f"no allowed input makes class {t} win (proof)"
    else:
        res.message = f"no checked point ({sres.status})"
    res.time_s = clock.elapsed()
    return res


# ---------------------------------------------------------------------------------------------
# class_prototype


def class_prototype(ens: TreeEnsemble, cls: int, *, around=None, eps=None, norm: str = "l1", valid=None,
                    solver: str = DEFAULT_SOLVER, time_limit=DEFAULT_TIME_LIMIT, threads=None,
                    objective: str = "margin", mip_gap=None, margin=None, attack: bool = True,
                    **kwargs) -> AdversarialResult:
    """The input of ``valid`` (within ``eps`` of ``around`` in ``norm`` when given) where class ``cls``
    wins with the largest margin over every other class (``"margin"``) or the largest score among
    the inputs where it wins (``"logit"``); the tree side of :func:`reluverify.class_prototype`."""
    from ..domain import Box, Perturbation
    from ..problems.common import check_time

    _options(kwargs, ("reference",))
    if objective not in ("logit", "margin"):
        raise InputError(f"objective must be 'logit' or 'margin', got {objective!r}")
    ens._need_classes("class_prototype")
    _check_name(solver)
    check_time(time_limit)
    t = _class(ens, cls, "cls")
    n = ens.n_features
    valid = valid if valid is not None else Box.uniform(n)
    if not isinstance(valid, Box):
        raise InputError(f"valid must be a reluverify Box, got {type(valid).__name__}")
    valid.check_size(n)
    if eps is not None and around is None:
        raise InputError("eps is measured from an image; pass around= as well")
    x0 = (valid.lower + valid.upper) / 2.0 if around is None else ens.as_point(around)
    norm = check_norm(norm)
    inputs = Perturbation(valid=valid).input_set(x0, norm if eps is not None else None, eps)
    norm_ball = ball(norm, x0, None, valid=valid)
    scores = ens.forward(x0)
    res = AdversarialResult(verdict=Verdict.UNKNOWN, problem="class_prototype", norm=norm if eps is not None else None,
                            x=x0, original_class=ens.classes_of(scores), logits=scores, target=t,
                            eps=None if eps is None else float(eps))
    return _maximise(ens, res, inputs, norm_ball, t, objective, True, solver=solver, clock=Clock(time_limit),
                     threads=threads, mip_gap=mip_gap)


# ---------------------------------------------------------------------------------------------
# universal_perturbation


def universal_perturbation(ens: TreeEnsemble, xs, labels=None, *, eps=None, norm: str = "linf",
                           mode: str = "max_fooled", linf_cap=None, solver: str = DEFAULT_SOLVER,
                           time_limit=DEFAULT_TIME_LIMIT, threads=None, margin=None, valid=None, attack: bool = True,
                           **kwargs):
    """One ``delta`` added to every image of ``xs`` that fools as many of them as possible
    (``"max_fooled"``, ``eps`` required) or all of them with the smallest ``norm`` (``"all"``); the
    tree side of :func:`reluverify.universal_perturbation`. One copy of the tree MILP per image
    (``x_k = x0_k + delta``, pruned by its own box ``x0_k + [-cap, cap]`` within ``valid``), per
    image one binary per wrong class, ``score_j - score_c >= -slack`` when it is 1 (big-M from the
    per-tree score bounds of that image's box; the relaxation every proof here uses). Every image
    counted as fooled is re-checked (forward pass and the framework's predict), so ``n_fooled`` may be
    below the MILP's count at a tie; ``upper_bound``/``distance_lower_bound`` are proven (trust rule)."""
    from ..domain import Box
    from ..problems.common import check_time
    from ..problems.universal import UniversalResult

    _options(kwargs, ("bound_method",))
    norm = check_norm(norm)
    if norm not in ("linf", "l1"):
        raise InputError(f"universal perturbations support the norms 'linf' and 'l1', got {norm!r}")
    if mode not in ("max_fooled", "all"):
        raise InputError(f"mode must be 'max_fooled' or 'all', got {mode!r}")
    if mode == "max_fooled" and eps is None:
        raise InputError("mode='max_fooled' needs eps (the size of the perturbation)")
    ens._need_classes("universal_perturbation")
    _check_name(solver)
    check_time(time_limit)
    clock = Clock(time_limit)
    X = np.atleast_2d(np.asarray(xs, dtype=np.float64)).reshape(-1, ens.n_features)
    for x in X:
        ens.as_point(x)
    n_img, n = X.shape
    C = ens.predict_class(X) if labels is None else np.array([_class(ens, v, "label") for v in np.ravel(labels)])
    if C.size != n_img:
        raise InputError(f"{C.size} labels for {n_img} images")
    valid = valid if valid is not None else Box.uniform(n)
    cap = min([v for v in (None if norm == "l1" else eps, linf_cap) if v is not None], default=None)
    # delta's own box: every x0_k + delta inside valid, and the cap
    d_lo = np.max(valid.lower - X, axis=0)
    d_hi = np.min(valid.upper - X, axis=0)
    if cap is not None:
        d_lo, d_hi = np.maximum(d_lo, -cap), np.minimum(d_hi, cap)
    res = UniversalResult(verdict=Verdict.UNKNOWN, mode=mode, norm=norm, x=X, labels=C, n_images=n_img,
                          eps=None if eps is None else float(eps), delta_lower=d_lo, delta_upper=d_hi)
    if np.any(d_lo > d_hi):
        raise InputError("the images leave no common perturbation inside the valid box")
    # one model: delta columns, then per image its tree block (columns shifted)
    blocks, offsets = [], []
    n_col = n
    cols_lo, cols_hi, integ = [d_lo], [d_hi], [np.zeros(n, bool)]
    rows = []  # (lower, upper, cols, vals)
    for k in range(n_img):
        outs = list(range(ens.n_outputs))
        ta = tree_arrays(ens, X[k] + d_lo, X[k] + d_hi, outputs=outs)
        a = ta.arrays
        blocks.append(ta)
        offsets.append(n_col)
        cols_lo.append(a.col_lower)
        cols_hi.append(a.col_upper)
        integ.append(a.integrality)
        for r in range(a.n_rows):
            s_, e_ = a.a_start[r], a.a_start[r + 1]
            rows.append((a.row_lower[r], a.row_upper[r], (a.a_index[s_:e_] + n_col).tolist(), a.a_value[s_:e_].tolist()))
        for i in range(n):  # x_k,i - delta_i = x0_k,i
            rows.append((X[k, i], X[k, i], [n_col + i, i], [1.0, -1.0]))
        n_col += a.n_cols
    fool_cols = []
    sel = []
    for k, ta in enumerate(blocks):
        c = int(C[k])
        lo_s, hi_s = ens.score_bounds(X[k] + d_lo, X[k] + d_hi)
        f = n_col
        n_col += 1
        cols_lo.append(np.zeros(1)); cols_hi.append(np.ones(1)); integ.append(np.ones(1, bool))
        z = []
        for j in range(ens.n_outputs):
            if j == c:
                continue
            slack = proof_slack(ens, [c, j])
            if hi_s[j] - lo_s[c] < -slack:
                continue  # class j cannot come within the slack of c on this image's box
            zj = n_col
            n_col += 1
            cols_lo.append(np.zeros(1)); cols_hi.append(np.ones(1)); integ.append(np.ones(1, bool))
            M = (hi_s[c] - lo_s[j]) - slack + 1.0
            sj, sc = offsets[k] + ta.score_col(j), offsets[k] + ta.score_col(c)
            # score_j - score_c >= -slack - M (1 - z)  <=>  score_j - score_c - M z >= -slack - M
            rows.append((-slack - M, np.inf, [sj, sc, zj], [1.0, -1.0, -M]))
            z.append(zj)
        rows.append((0.0, 0.0, z + [f], [1.0] * len(z) + [-1.0]))  # sum z = f
        fool_cols.append(f)
        sel.append(z)
    from ..formulation import MilpArrays as _MA

    start = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum([len(r[2]) for r in rows], out=start[1:])
    arrays = _MA(col_lower=np.concatenate(cols_lo), col_upper=np.concatenate(cols_hi), integrality=np.concatenate(integ),
                 a_start=start.astype(np.int32), a_index=np.array([c for r in rows for c in r[2]], dtype=np.int32),
                 a_value=np.array([v for r in rows for v in r[3]], dtype=np.float64),
                 row_lower=np.array([r[0] for r in rows], dtype=np.float64),
                 row_upper=np.array([r[1] for r in rows], dtype=np.float64), input_cols=np.arange(n),
                 output_cols=np.zeros(0, np.int64), layer_cols=[], binary_cols=[])
    big = max(float(np.max(d_hi - d_lo)), 1.0)
    model = open_model(arrays, solver, threads=threads, big_m_value=big)
    if norm == "l1" and eps is not None:  # the L1 size of delta (L-inf: the box above)
        ball("l1", np.zeros(n), eps, valid=Box(d_lo, d_hi)).encode(model, np.arange(n))
    if mode == "max_fooled":
        model.set_objective({f: 1.0 for f in fool_cols}, "max")
    else:
        model.add_rows(n_img, n_img, [(fool_cols, [1.0] * n_img)])
        dist = ball(norm, np.zeros(n), None, valid=Box(d_lo, d_hi))
        cols, coefs, const = dist.encode_distance(model, np.arange(n))
        model.set_objective(dict(zip(cols, coefs)), "min", offset=const)
    sres, values = model.solve(time_limit=max(clock.left() or 1e9, 0.1) if time_limit is not None else None)
    res.solves.append(sres)
    proof = solver_proof(sres, big)
    delta = None
    if values is not None:
        # one delta for every image: moved into the intersection of the cells (in delta space) that
        # each image's predicates chose, where it is not empty; the check below decides what it fools
        delta = np.clip(values[:n], d_lo, d_hi)
        lo_c, hi_c = d_lo.copy(), d_hi.copy()
        for k, ta in enumerate(blocks):
            cl, cu = ta.cell(values[offsets[k]:offsets[k] + ta.arrays.n_cols])
            lo_c, hi_c = np.maximum(lo_c, cl - X[k]), np.minimum(hi_c, cu - X[k])
        ok = lo_c <= hi_c
        delta = np.where(ok, np.clip(delta, lo_c, hi_c), delta)
    if delta is not None:
        k_fw = ens.predict_class(X + delta[None, :])
        ref = ens.framework_predict(X + delta[None, :])
        fooled = (k_fw != C) & (ref != C if ref is not None else True)
        res.delta, res.fooled, res.n_fooled = delta, fooled, int(fooled.sum())
        res.adv_classes, res.adv_logits = k_fw, ens.forward(X + delta[None, :])
        res.distance = float(ball(norm, np.zeros(n), None, valid=Box(d_lo, d_hi)).distance(delta))
    if mode == "max_fooled":
        if proof.bound is not None:
            res.upper_bound = int(np.floor(proof.bound + 1e-6))  # not a tolerance: a count's rounding
        elif proof.infeasible:
            res.upper_bound = 0
        if res.n_fooled > 0:
            res.verdict = Verdict.FOUND
        elif res.upper_bound == 0:
            res.verdict = Verdict.ROBUST
    else:
        if proof.infeasible:
            res.verdict = Verdict.ROBUST
        else:
            if proof.bound is not None:
                res.distance_lower_bound = max(0.0, proof.bound)
            if res.delta is not None and res.n_fooled == n_img:
                res.verdict = Verdict.FOUND
    res.message = f"MILP: {sres.status}"
    res.time_s = clock.elapsed()
    return res


# ---------------------------------------------------------------------------------------------
# inference


def infer(ens: TreeEnsemble, x, solver: str = DEFAULT_SOLVER, *, time_limit=DEFAULT_TIME_LIMIT, threads=None,
          domain=None, **kwargs) -> InferenceResult:
    """Evaluate ``ens`` at ``x`` by solving its MILP (over ``domain``, a Box holding ``x``, default
    the valid box ``[0, 1]``, so that the predicates are free and the input fixes them), and compare
    the scores with the forward pass."""
    from ..check import compare_outputs
    from ..domain import Box

    _options(kwargs)
    x0 = ens.as_point(x)
    box = domain if domain is not None else Box(np.minimum(0.0, x0), np.maximum(1.0, x0))
    if not box.contains(x0):
        raise InputError("the input lies outside the domain given; widen the domain")
    ta = tree_arrays(ens, box.lower, box.upper)
    model = open_model(ta.arrays, _check_name(solver), threads=threads, big_m_value=ta.big_m)
    model.set_col_bounds(ta.input_cols, x0, x0)
    sres, values = model.solve(time_limit=time_limit)
    outputs = None if values is None else np.asarray(values)[ta.arrays.output_cols]
    reference, err, ok = compare_outputs(ens, x0, outputs)
    return InferenceResult(status=sres.status, outputs=outputs, reference=reference, max_abs_error=err,
                           matches=ok and sres.status == Status.OPTIMAL,
                           predicted_class=None if outputs is None or ens.task != "classifier"
                           else ens.classes_of(outputs),
                           solve=sres, n_binaries=ta.arrays.n_binaries,
                           bounds_summary=f"{ta.pred_cols.size} predicates, "
                                          f"{sum(len(v) for v in ta.leaf_cols.values())} leaves")


# ---------------------------------------------------------------------------------------------
# check_property


def check_property(ens: TreeEnsemble, prop, *, solver: str = DEFAULT_SOLVER, time_limit=DEFAULT_TIME_LIMIT,
                   threads=None, seed: int = 0, attack: bool = True, **kwargs):
    """Is some region of ``prop`` (input box and rows ``a_x x + a_y scores <= b``) reachable? The
    tree side of :func:`reluverify.check_property`: per region, random points of the box, then the
    per-tree score bounds of each row, then one MILP with the rows loosened by the proof slack
    (``VERIFY_SLACK + score_rounding``, scaled by ``|a_y|``): infeasible is a proof; its snapped point
    must meet the rows exactly in the float64 forward pass (else a witness MILP with the rows
    tightened by the slack). ``sat``/``unsat``/``timeout``/``unknown``."""
    from ..domain import Box
    from ..problems.common import check_time
    from ..results import PropertyResult, PropertyVerdict

    _options(kwargs, ("reference", "split", "branch", "tuning"))
    _check_name(solver)
    check_time(time_limit)
    if prop.n_inputs != ens.n_features or prop.n_outputs != ens.n_outputs:
        raise InputError(f"the property has {prop.n_inputs} inputs and {prop.n_outputs} outputs, the model "
                         f"{ens.n_features} and {ens.n_outputs}")
    clock = Clock(time_limit)
    rng = np.random.default_rng(seed)
    open_regions = []

    def meets(region, x):
        y = ens.forward(x)
        v = region.a_x @ x + region.a_y @ y - region.b
        return float(np.max(v)) if v.size else -np.inf

    def sat(k, region, x, method):
        return PropertyResult(PropertyVerdict.SAT, x=x, y=ens.forward(x), region=k, violation=meets(region, x),
                              method=method, time_s=clock.elapsed())

    for k, region in enumerate(prop.regions):
        box = Box(region.lower, region.upper)
        if attack:
            P = rng.uniform(box.lower, box.upper, (256, ens.n_features))
            P = np.vstack([P, box.lower, box.upper, 0.5 * (box.lower + box.upper)])
            for x in P:
                if meets(region, x) <= 0:
                    return sat(k, region, x, "attack")
        ruled_out = False
        slacks = []
        for i in range(region.n_rows):
            outs = np.flatnonzero(region.a_y[i])
            s_i = VERIFY_SLACK + ens.score_rounding(outs) * float(np.max(np.abs(region.a_y[i]), initial=0.0))
            slacks.append(s_i)
            lo_y = ens.score_bounds(box.lower, box.upper, region.a_y[i])[0] if outs.size else 0.0
            lo_x = float(np.sum(np.minimum(region.a_x[i] * box.lower, region.a_x[i] * box.upper)))
            if lo_x + lo_y > region.b[i] + s_i:
                ruled_out = True
        if ruled_out:
            continue
        open_regions.append((k, region, box, np.array(slacks)))
    verdict, notes = PropertyVerdict.UNSAT, []
    for k, region, box, slacks in open_regions:
        if clock.expired():
            return PropertyResult(PropertyVerdict.TIMEOUT, method="milp", time_s=clock.elapsed(),
                                  message="time limit before every region was decided")
        outs = sorted(set(np.flatnonzero(np.any(region.a_y != 0, axis=0)).tolist()) or {0})
        for witness_run in (False, True):
            milp = TreeMilp(ens, box if witness_run else Box(box.lower - BOUND_MARGIN, box.upper + BOUND_MARGIN), solver, outs,
                            threads=threads)
            rows = []
            for i in range(region.n_rows):
                jx = np.flatnonzero(region.a_x[i])
                jy = np.flatnonzero(region.a_y[i])
                rows.append((np.concatenate([milp.ta.input_cols[jx], [milp.ta.score_col(j) for j in jy]]).astype(int),
                             np.concatenate([region.a_x[i, jx], region.a_y[i, jy]])))
            rhs = region.b - slacks if witness_run else region.b + slacks
            milp.model.add_rows(-np.inf, rhs, rows)
            sres, x, _ = milp.solve(clock.left())
            if x is not None and box.contains(x) and meets(region, x) <= 0:
                return sat(k, region, x, "milp")
            if not witness_run:
                proof = solver_proof(sres, milp.ta.big_m)
                if proof.infeasible:
                    break
                if x is None:
                    verdict = PropertyVerdict.TIMEOUT if sres.status == Status.TIME_LIMIT else PropertyVerdict.UNKNOWN
                    notes.append(f"region {k}: {sres.status}")
                    break
            else:
                verdict = PropertyVerdict.UNKNOWN
                notes.append(f"region {k}: within the proof slack, no witness")
    return PropertyResult(verdict, method="milp" if open_regions else "bounds", time_s=clock.elapsed(),
                          message="; ".join(notes))
