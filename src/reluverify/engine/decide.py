"""The staged procedure that decides a :class:`~reluverify.engine.query.Query`.

Stages get more expensive; each only sees what the previous ones left:

1. **bounds**: symbolic bounds over each region's input set, then a symbolic lower bound of every
   row; a region with a row that cannot reach its right-hand side is unreachable (for robustness
   questions: label elimination);
2. **falsification** (:mod:`.falsify`) on the regions left;
3. for networks with few inputs (``split="auto"``: at most ``SPLIT_MAX_INPUTS``) and box-shaped
   input sets, **input splitting** (:mod:`.split`);
4. otherwise, for box-shaped input sets, **ReLU branch and bound**
   (:mod:`reluverify.engine.branch`) from optimised root bounds; it gets ``BRANCH_TIME_SHARE`` of
   the time left;
5. for what is still open a **MILP** per region (:mod:`.milp`) over LP-tightened bounds, the
   input set encoded: first "is the region, widened by ``VERIFY_SLACK``, reachable?"; infeasible is
   a proof under the one trust rule (:func:`reluverify.check.solver_proof`); a feasible point is
   re-checked, and if it fails, the region shrunk by a margin is tried.

Every witness is checked by :class:`~reluverify.engine.query.Witnesses` (float64 forward pass
exactly, the input set exactly, the source model when given). ``unsat`` comes only from sound
bounds (stages 1, 3, 4) or a trusted solver proof (stage 5).
"""

from __future__ import annotations

import time

import numpy as np

from ..bounds import LPBounds, OptimisedBounds, get_strategy
from ..check import solver_proof
from ..errors import InputError
from ..results import PropertyResult, PropertyVerdict, Status
from ..solvers import _check_name
from ..spec import Region
from ..solvers import DEFAULT_SOLVER
from ..threads import limit_blas
from ..tolerances import DEFAULT_MARGIN, DEFAULT_TIME_LIMIT, MARGIN_GROWTH, VERIFY_SLACK, WITNESS_RETRIES
from .common import Clock
from .falsify import ATTACK_SAMPLES, ATTACK_STARTS, falsify
from .milp import reachable
from .options import DEFAULT_TUNING, Tuning
from .query import Query, Witnesses
from .split import SPLIT_MAX_INPUTS, region_rows_lb, split_portfolio

LP_TIME_SHARE = 0.3  # at most this share of the time left goes to LP bound tightening
# Share of the time left that ReLU branch and bound may use per region, divided by the regions
# left (all regions using their whole budgets leave the MILP about a fifth of the time with 9 regions).
# Ad hoc (not a benchmark) on mnist_fc 256x4 prop_11_0.05 with 300 s, once branching bounded
# domains 4x faster (inactive neurons left out): unsat by branching in 74 s, where the MILP had
# needed 265 s after branching at 0.35 before. The benchmark tables say which value each row used.
BRANCH_TIME_SHARE = 0.5
# With ``Tuning(portfolio=True)`` the MILPs run beside branching (engine/portfolio.py), so branching
# may use more of the time left; the race needs this many seconds left to be worth its start
# (a spawned process imports reluverify: about a second).
PORTFOLIO_BRANCH_SHARE = 0.8
PORTFOLIO_MIN_S = 5.0
PORTFOLIO_DELAY_S = 2.0  # the race starts only when branching has not decided within this (easy queries pay nothing)


@limit_blas
def decide(query: Query, *, solver: str = DEFAULT_SOLVER, time_limit: float | None = DEFAULT_TIME_LIMIT, split: str | bool = "auto",
           bound_method: str = "lp", threads: int | None = None, seed: int = 0, attack: bool = True,
           branch: str | bool = "auto", screen: str = "symbolic", tuning: Tuning = DEFAULT_TUNING) -> PropertyResult:
    """Decide ``query``: ``sat`` (a checked witness), ``unsat`` (a proof), ``timeout`` or ``unknown``.

    ``split``/``branch``: ``"auto"``, ``True`` or ``False`` for input splitting and ReLU branch and
    bound (both need box-shaped input sets); ``bound_method``: the strategy whose bounds the MILP
    uses (``"lp"``: symbolic, then LP on still-unstable neurons) and ``screen`` the one of stage 1
    (``"symbolic"``; ``"interval"`` is cheaper and weaker); ``attack=False`` skips
    falsification. ``tuning`` (:class:`~reluverify.engine.options.Tuning`): speed-ups that leave every
    bound unchanged, on by default (off only for ablations). ``stats`` of the result holds counts
    and timings per stage.
    """
    from .branch import relu_branch_and_bound  # the branching stage (imports the engine's helpers)

    network, prop = query.network, query.prop
    proof = query.proof_regions  # what a proof must rule out (the rows raised by the query's proof slack)
    solver = _check_name(solver)
    if time_limit is not None and not float(time_limit) > 0:
        raise InputError(f"time_limit must be positive (seconds), got {time_limit}")
    if split not in ("auto", True, False):
        raise InputError(f"split must be 'auto', True or False, got {split!r}")
    if branch not in ("auto", True, False):
        raise InputError(f"branch must be 'auto', True or False, got {branch!r}")
    for method in (bound_method, screen):  # unknown names are typed errors before any work
        if method not in ("lp", "optimised"):
            get_strategy(method)
    deadline = Clock(time_limit)
    stats: dict = {"regions": len(prop.regions)}
    checker = Witnesses(query)

    def done(verdict, method="", chk=None, message=""):
        res = PropertyResult(PropertyVerdict(verdict), method=method, time_s=deadline.elapsed(),
                             message=message, stats=stats)
        if chk is not None:
            res.x, res.y, res.region, res.violation = chk.x, chk.y, chk.region, chk.violation
        stats["rejected_candidates"] = checker.rejected
        return res

    def near_miss(method):
        """A point met the rows within the proof slack but not as a witness: no proof is possible."""
        stats["near_miss"] = checker.near_miss
        return done("unknown", method, message="a point within the proof slack of the unsafe set, but no "
                    "checked counterexample: " + checker.last_reason)

    live = [i for i, r in enumerate(prop.regions) if not r.empty]
    stats["empty_regions"] = len(prop.regions) - len(live)
    if not live:
        return done("unsat", "bounds", message="every region has an empty input box")

    # 1. bounds: rule out regions whose rows cannot be met over their input set
    t0 = time.perf_counter()
    bounds_cache: dict = {}

    def region_bounds(region: Region, method: str, refine: bool = False):
        """``method``'s bounds over the region's input set (cached); ``refine``: starting from the
        tightest bounds already computed for that set (the branching stage's optimised ones, else
        the screen's), so that the MILP's bounds are never looser than any the engine has."""
        box = (region.lower.tobytes(), region.upper.tobytes())
        key = (*box, method, refine)
        if key not in bounds_cache:
            initial = None
            if refine:
                initial = bounds_cache.get((*box, "optimised", False), bounds_cache.get((*box, screen, False)))
                if initial is not None and initial.method == method:
                    bounds_cache[key] = initial
                    return initial
            strategy = method
            if method == "lp":  # LP tightening gets a share of the time left, never all of it
                strategy = LPBounds(time_limit=max(0.5, LP_TIME_SHARE * deadline.remaining()))
            elif method == "optimised":
                strategy = OptimisedBounds(time_limit=max(0.5, LP_TIME_SHARE * deadline.remaining()),
                                           leave_out_inactive=tuning.leave_out_inactive)
            bounds_cache[key] = get_strategy(strategy).compute(network, query.bound_domain(region), initial)
        return bounds_cache[key]

    remaining = []
    guides: dict = {}  # region -> input coefficients of its tightest row's lower bound
    room: dict = {}  # region -> how far its tightest row's lower bound stays below b (<= 0)
    for i in live:
        region = proof[i]
        if region.n_rows == 0:
            remaining.append(i)
            continue
        lb, A = region_rows_lb(network, region_bounds(region, screen), region, with_coefficients=True)
        if not np.any(lb > region.b):
            remaining.append(i)
            guides[i] = A[int(np.argmax(lb - region.b))]
            room[i] = float(np.max(lb - region.b))
    stats["bounds_s"] = time.perf_counter() - t0
    stats["after_bounds"] = len(remaining)
    if not remaining:
        return done("unsat", "bounds")
    if deadline.expired():
        return done("timeout", message="time limit while bounding")

    # 2. falsification, on what the bounds left (random samples only help in few dimensions)
    samples = ATTACK_SAMPLES if network.n_inputs <= SPLIT_MAX_INPUTS else ATTACK_STARTS
    t0 = time.perf_counter()
    # one descent per region on box-shaped sets; on other sets (whose projection costs more) one
    # descent on the union of the regions (they share the set), guided by the closest region
    groups = [[i] for i in remaining] if query.boxes_only else [remaining]
    for group in (groups if attack else []):
        closest = min(group, key=lambda i: room.get(i, 0.0))  # the region its bounds rule out least
        x, v = falsify(network, [prop.regions[i] for i in group], seed=seed + group[0], samples=samples,
                       deadline=deadline, guide=guides.get(closest), inputs=query.inputs)
        if v <= 0:
            for i in group:
                chk = checker(x, prop.regions[i])
                if chk is not None:
                    stats["attack_s"] = time.perf_counter() - t0
                    return done("sat", "attack", chk)
        if deadline.expired():
            return done("timeout", message="time limit during falsification")
    stats["attack_s"] = time.perf_counter() - t0

    # 3. input splitting (few inputs, box-shaped sets)
    use_split = query.boxes_only and (split is True or (split == "auto" and network.n_inputs <= SPLIT_MAX_INPUTS))
    if use_split:
        t0 = time.perf_counter()
        undecided = []
        for i in remaining:
            status, chk = split_portfolio(network, proof[i], checker, deadline, stats)
            if status == "sat":
                stats["split_s"] = time.perf_counter() - t0
                return done("sat", "split", chk)
            if status == "timeout":
                stats["split_s"] = time.perf_counter() - t0
                return done("timeout", message="time limit while splitting the input box")
            if status == "unknown":
                undecided.append(i)
                if checker.near_miss is not None:
                    break
        stats["split_s"] = time.perf_counter() - t0
        if checker.near_miss is not None:
            return near_miss("split")
        if not undecided:
            return done("unsat", "split")
        remaining = undecided

    # 4. ReLU branch and bound (networks with many inputs, box-shaped sets), over optimised root bounds
    # (with ``tuning.portfolio``, the MILPs of stage 5 race it in a second process)
    # the proof MILP asks for the region widened by VERIFY_SLACK beyond b, at least
    proof_shift = max(VERIFY_SLACK - query.proof_slack, 0.0)
    race = None
    race_proved: set = set()
    race_seen: set = set()

    def race_says(i):
        """``("sat", checked witness)`` if the race found one (for any region), ``("proved", None)``
        if it proved region ``i``, else ``(None, None)`` (also when no race runs)."""
        if race is None:
            return None, None
        chk = race_news()
        if chk is not None:
            return "sat", chk
        return ("proved", None) if i in race_proved else (None, None)

    def race_news():
        """What the race has answered since the last look: regions it proved (added to
        ``race_proved``, under the one trust rule), and a checked witness if it found one."""
        race.poll()
        for i in sorted(set(race.results) - race_seen):
            race_seen.add(i)
            res, x, big = race.results[i]
            stats.setdefault("milp", []).append((i, f"race: {res.status}", round(res.wall_time, 3)))
            stats.setdefault("solves", []).append(res)
            stats["race_answers"] = stats.get("race_answers", 0) + 1
            if solver_proof(res, big).infeasible:
                race_proved.add(i)
            elif x is not None:
                chk = checker(x, proof[i])
                if chk is not None:
                    return chk
        return None

    use_branch = query.boxes_only and (branch is True or (branch == "auto" and not use_split))
    try:
        if use_branch and remaining:
            t0 = time.perf_counter()
            undecided = []
            # easiest regions first (root bound closest to ruling them out): each region may use its
            # share of the time left, so what the easy ones leave goes to the hard ones. One tree per
            # region: a tree shared by the regions of one box was slower on mnist_fc (its splits
            # serve one region at a time while every domain pays for all of them)
            order = []
            for i in remaining:
                region = proof[i]
                if region.n_rows == 0:  # nothing to rule out
                    undecided.append(i)
                    continue
                root = region_bounds(region, "optimised")
                gap = np.max(region_rows_lb(network, root, region) - region.b)
                if gap <= 0:
                    order.append((-gap, i))
            branched: set = set()  # regions branching has finished with

            def get_race():
                """The race, started once branching has run PORTFOLIO_DELAY_S without deciding."""
                nonlocal race
                if (race is None and tuning.portfolio and time.perf_counter() - t0 >= PORTFOLIO_DELAY_S
                        and deadline.remaining() >= PORTFOLIO_MIN_S):
                    from .portfolio import MilpRace

                    jobs = [(i, proof[i], query.bound_domain(proof[i])) for _, i in sorted(order, reverse=True)
                            if i not in branched]
                    race = MilpRace(network, jobs, query.inputs, proof_shift, solver, deadline.remaining())
                    stats["portfolio"] = True
                return race

            share = PORTFOLIO_BRANCH_SHARE if tuning.portfolio else BRANCH_TIME_SHARE
            if tuning.branch_share is not None:
                share = tuning.branch_share
            steps = {} if tuning.branch_steps is None else {"opt_steps": tuning.branch_steps}
            for n_left, (_, i) in zip(range(len(order), 0, -1), sorted(order)):
                region = proof[i]
                get_race()
                said, chk = race_says(i)
                if said == "sat":
                    stats["branch_s"] = time.perf_counter() - t0
                    return done("sat", "milp", chk)
                if said == "proved":
                    continue
                root = region_bounds(region, "optimised")
                budget = Clock(max(0.1, share * deadline.remaining() / n_left))
                if tuning.portfolio:
                    from .portfolio import RaceClock

                    budget = RaceClock(budget, get_race, i)
                status, chk, _ = relu_branch_and_bound(network, region, root.lower, root.upper, checker, budget,
                                                       stats, tuning=tuning, **steps)
                branched.add(i)
                if status == "sat":
                    stats["branch_s"] = time.perf_counter() - t0
                    return done("sat", "branch", chk)
                if status != "unsat":
                    said, chk = race_says(i)
                    if said == "sat":
                        stats["branch_s"] = time.perf_counter() - t0
                        return done("sat", "milp", chk)
                    if said == "proved":
                        continue
                    undecided.append(i)
                    if checker.near_miss is not None:
                        break
                if deadline.expired():
                    stats["branch_s"] = time.perf_counter() - t0
                    return done("timeout", message="time limit in the ReLU branch-and-bound stage")
            undecided = [i for i in remaining if i in undecided]  # the MILPs go in the regions' order
            stats["branch_s"] = time.perf_counter() - t0
            if checker.near_miss is not None:
                return near_miss("branch")
            if not undecided:
                return done("unsat", "branch")
            remaining = undecided
        return _milp_stage(network, prop, proof, remaining, region_bounds, bound_method, proof_shift, solver, threads,
                           query, checker, deadline, stats, done, race, race_says)
    finally:
        if race is not None:
            race.close()


def _milp_stage(network, prop, proof, remaining, region_bounds, bound_method, proof_shift, solver, threads, query,
                checker, deadline, stats, done, race, race_says):
    """Stage 5: one MILP per remaining region (regions the race has proved are skipped; one it is
    solving is left to it and waited for at the end)."""
    t0 = time.perf_counter()
    timed_out = False
    untrusted: list = []
    deferred: list = []
    todo = list(remaining)
    while todo:
        i = todo.pop(0)
        region = proof[i]
        if race is not None and i in deferred:
            race.wait(i, deadline)
        said, chk = race_says(i)
        if said == "sat":
            stats["milp_s"] = time.perf_counter() - t0
            return done("sat", "milp", chk)
        if said == "proved":
            continue
        if race is not None and i not in deferred and race.current == i:  # the race is on it: come back last
            deferred.append(i)
            todo.append(i)
            continue
        if deadline.expired():
            timed_out = True
            break
        bounds = region_bounds(region, bound_method, refine=True)
        if region.n_rows and np.any(region_rows_lb(network, bounds, region) > region.b):
            continue
        left = deadline.remaining()
        if left <= 0:
            timed_out = True
            break
        res, x, big = reachable(network, bounds, region, proof_shift, solver, left, threads, query.inputs)
        stats.setdefault("milp", []).append((i, str(res.status), round(res.wall_time, 3)))
        stats.setdefault("solves", []).append(res)
        verdict = solver_proof(res, big)
        if verdict.infeasible:
            continue
        said, chk = race_says(i)  # the race may have answered meanwhile
        if said == "sat":
            stats["milp_s"] = time.perf_counter() - t0
            return done("sat", "milp", chk)
        if said == "proved":
            continue
        if res.status == Status.INFEASIBLE:  # claimed, not trusted
            untrusted.append(verdict.note)
            continue
        if res.status == Status.TIME_LIMIT and x is None:
            timed_out = True
            break
        if x is None:
            return done("unknown", "milp", message=f"solver status {res.status}: {res.message}")
        chk = checker(x, region)
        if chk is not None:
            stats["milp_s"] = time.perf_counter() - t0
            return done("sat", "milp", chk)
        # the point sits in the slack zone: ask for one with a real margin (the near miss is kept
        # for callers that can use it, e.g. a radius search pushing it just past the boundary)
        stats["near_miss"] = (i, np.asarray(x, dtype=np.float64))
        margin = DEFAULT_MARGIN
        for _ in range(WITNESS_RETRIES):
            left = deadline.remaining()
            if left <= 0:
                break
            res, x, _ = reachable(network, bounds, prop.regions[i], -margin, solver, left, threads, query.inputs)
            stats["milp"].append((i, f"margin {margin:g}: {res.status}", round(res.wall_time, 3)))
            stats["solves"].append(res)
            if x is not None:
                chk = checker(x, region)
                if chk is not None:
                    stats["milp_s"] = time.perf_counter() - t0
                    return done("sat", "milp", chk)
                margin *= MARGIN_GROWTH
                continue
            break
        stats["milp_s"] = time.perf_counter() - t0
        return done("unknown", "milp", message="a reachable point within the solver's tolerance of the "
                    "unsafe set, but no checked counterexample: " + checker.last_reason)
    stats["milp_s"] = time.perf_counter() - t0
    if timed_out:
        return done("timeout", message="time limit in the MILP stage")
    if untrusted:
        return done("unknown", "milp", message=f"the MILPs are infeasible, but {untrusted[0]}")
    return done("unsat", "milp")
