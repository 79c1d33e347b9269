"""Decide a VNN-LIB-style property: is some region of the unsafe set reachable?

:func:`check_property` answers ``sat`` (with a re-checked counterexample), ``unsat`` (proof),
``timeout`` or ``unknown``, in stages that get more expensive:

1. **bounds**: symbolic bounds over each region's input box, then a symbolic lower bound of every
   row; a region with a row that cannot reach its right-hand side is unreachable;
2. **falsification** on the regions left: random samples and a projected sign-gradient descent on
   each region's largest row excess, in NumPy (finds most counterexamples in well under a second);
3. for networks with few inputs (``split="auto"``: at most ``SPLIT_MAX_INPUTS``), **input
   splitting**: bisect the box along the input that matters most for the row closest to being
   ruled out, bound thousands of sub-boxes at once (:mod:`reluverify.bounds.batch`), checking
   sub-box centres as candidate counterexamples;
4. otherwise **ReLU branch and bound** (:mod:`reluverify.problems.branch`): split unstable
   neurons, bound each half with optimised slopes and multipliers, from optimised root bounds
   (:mod:`reluverify.bounds.optimised`); it gets ``BRANCH_TIME_SHARE`` of the time left;
5. for what is still open a **MILP** per remaining region over LP-tightened
   bounds: first "is the region, widened by ``VERIFY_SLACK``, reachable?"; infeasible is a proof;
   a feasible point is re-checked, and if it fails, the region shrunk by a margin is tried.

Every ``sat`` is a float32-exact point re-checked by :func:`reluverify.check.check_counterexample`
(float64 forward pass exactly, the reference model within VNN-COMP's tolerance).
"""

from __future__ import annotations

import time

import numpy as np
import pyomo.environ as pyo

from ..bounds import LPBounds, OptimisedBounds, compute_bounds
from ..bounds.base import big_m
from ..bounds.batch import batch_bounds, batch_linear_bounds
from ..check import check_counterexample, snap_float32
from ..domain import Box
from ..errors import InputError
from ..formulation import add_network, linear_expr, network_arrays
from ..network import Network
from ..results import PropertyResult, PropertyVerdict, Status
from ..solvers import HighsArrayModel, _check_name, solve, solver_options
from ..spec import Property, Region
from ..tolerances import DEFAULT_MARGIN, MARGIN_GROWTH, MAX_TRUSTED_BIG_M, VERIFY_SLACK, WITNESS_RETRIES
from .attack import backpropagate
from .branch import relu_branch_and_bound
from .common import ArrayStack, Clock
from ..threads import limit_blas

LP_TIME_SHARE = 0.3  # at most this share of the time left goes to LP bound tightening
# Share of the time left that ReLU branch and bound may use per region, divided by the regions
# left (all regions using their whole budgets leave the MILP about a fifth of the time with 9 regions).
# Ad hoc (not a benchmark) on mnist_fc 256x4 prop_11_0.05 with 300 s, once branching bounded
# domains 4x faster (inactive neurons left out): unsat by branching in 74 s, where the MILP had
# needed 265 s after branching at 0.35 before. The benchmark tables say which value each row used.
BRANCH_TIME_SHARE = 0.5
SPLIT_MAX_INPUTS = 16  # input splitting pays for low-dimensional inputs (ACAS Xu has 5)
SPLIT_BATCH = 1024  # sub-boxes bounded together
# Input splitting runs as a portfolio: the tree size depends wildly on the choice of the input to
# halve (measured on ACAS Xu: one instance needs 500 boxes with one rule and > 30,000 with another,
# and no rule wins everywhere). Each strategy (candidates, score rows, look-ahead quality) gets a
# box budget in turn; budgets double every round, so the total work stays within a small factor of
# the best strategy's.
SPLIT_PORTFOLIO = ((1, "all", "sum"), (5, "closest", "sum"), (2, "closest", "sum"))
SPLIT_FIRST_BUDGET = 1000
ATTACK_SAMPLES = 2048
ATTACK_STEPS = 60
ATTACK_STARTS = 32
GUIDE_FLIP = 0.1  # share of a guided start's inputs moved to the opposite side of the box
GUIDE_STEP = 0.25  # first step of the guided descent, as a share of the box width
GUIDE_STEPS = 100


def _rows_value(network: Network, x: np.ndarray, region: Region) -> np.ndarray:
    """Row excesses ``a_x x + a_y f(x) - b`` for a batch of inputs: (B, m)."""
    return region.row_excess(x, network.forward(x))


def _excess_and_gradient(network: Network, x: np.ndarray, region: Region) -> tuple:
    """Largest row excess per input and its input-gradient (a subgradient of the max)."""
    out, pre = network.forward(x, return_all=True)
    rows = region.row_excess(x, out)
    r = np.argmax(rows, axis=1)
    g_y = region.a_y[r]
    last = network.layers[-1]
    if last.activation == "relu":
        g_y = g_y * (pre[-1] > 0)
    g = backpropagate(network, pre, g_y @ last.weight) + region.a_x[r]
    return rows[np.arange(len(x)), r], g


def _descend(network: Network, region: Region, x: np.ndarray, steps: int, step: np.ndarray,
             deadline: Clock | None, schedule: str = "halve") -> tuple:
    """Projected sign-gradient descent of the largest row excess from each row of ``x``; the step
    halves every 20 iterations (``"halve"``) or follows a cosine decay (``"cosine"``). Returns
    the best ``(x, excess)`` seen; stops at the first point with negative excess."""
    lo, hi = region.lower, region.upper
    best_x, best_v = x[0].copy(), np.inf
    for t in range(steps):
        if deadline is not None and deadline.expired():
            break
        v, g = _excess_and_gradient(network, x, region)
        i = int(np.argmin(v))
        if v[i] < best_v:
            best_x, best_v = x[i].copy(), float(v[i])
            if best_v < 0:
                return best_x, best_v
        s = step if schedule == "halve" else step * 0.5 * (1.0 + np.cos(np.pi * t / steps))
        x = np.clip(x - s * np.sign(g), lo, hi)
        if schedule == "halve" and t % 20 == 19:
            step = step * 0.5
    v = np.max(_rows_value(network, x, region), axis=1)
    i = int(np.argmin(v))
    if v[i] < best_v:
        best_x, best_v = x[i].copy(), float(v[i])
    return best_x, best_v


def falsify(network: Network, region: Region, *, seed: int = 0, samples: int = ATTACK_SAMPLES,
            steps: int = ATTACK_STEPS, starts: int = ATTACK_STARTS, deadline: Clock | None = None,
            guide: np.ndarray | None = None) -> tuple:
    """Search ``region``'s box for a point whose rows all hold: random samples, then projected
    sign-gradient descent from the best of them. Returns ``(x, excess)``; ``excess <= 0`` is a
    candidate counterexample (still to be checked).

    ``guide`` (input coefficients of a linear lower bound of the row to reach, e.g. from
    :func:`~reluverify.bounds.batch.batch_linear_bounds`) adds a second descent from the box corner
    minimising that bound and from copies of it with ``GUIDE_FLIP`` of the inputs flipped to the
    other side, with longer steps (``GUIDE_STEP`` of the width, cosine decay over
    ``GUIDE_STEPS``). In high dimensions these start far closer to counterexamples than random
    points: on VNN-COMP mnist_fc they crack two ``sat`` instances that the random starts miss
    (256x4 prop_6_0.05, 256x6 prop_1_0.05; the second is a test)."""
    if region.n_rows == 0:
        x = 0.5 * (region.lower + region.upper)
        return x, -np.inf
    rng = np.random.default_rng(seed)
    lo, hi = region.lower, region.upper
    width = hi - lo
    X = lo + rng.random((samples, lo.size)) * width
    X[0] = 0.5 * (lo + hi)
    V = np.max(_rows_value(network, X, region), axis=1)
    order = np.argsort(V)
    best_x, best_v = X[int(order[0])].copy(), float(V[int(order[0])])
    if best_v <= 0 or not np.any(width > 0):
        return best_x, best_v
    x, v = _descend(network, region, X[order[:starts]].copy(), steps, 0.1 * width, deadline)
    if v < best_v:
        best_x, best_v = x, v
    if best_v <= 0 or guide is None:
        return best_x, best_v
    corner = np.where(np.asarray(guide) > 0, lo, hi)
    G = np.repeat(corner[None, :], starts, axis=0)
    flip = rng.random(G.shape) < GUIDE_FLIP
    flip[0] = False
    x, v = _descend(network, region, np.where(flip, lo + hi - G, G), GUIDE_STEPS, GUIDE_STEP * width,
                    deadline, schedule="cosine")
    if v < best_v:
        best_x, best_v = x, v
    return best_x, best_v


class _Checker:
    """Turns candidate points into checked counterexamples (or counts the rejects)."""

    def __init__(self, network: Network, prop: Property, reference):
        self.network, self.prop, self.reference = network, prop, reference
        self.rejected = 0
        self.last_reason = ""

    def __call__(self, x: np.ndarray, region: Region):
        point = snap_float32(x, region.lower, region.upper)
        chk = check_counterexample(self.network, self.prop, point, self.reference)
        if chk.ok:
            return chk
        self.rejected += 1
        self.last_reason = chk.reason
        return None


def _evaluate_boxes(network: Network, region: Region, lo: np.ndarray, hi: np.ndarray) -> tuple:
    """Per box: the rows' lower bounds less their right-hand sides (``excess``, (B, m); a box with
    any excess > 0 cannot reach the region) and the lower bounds' input coefficients (B, m, n)."""
    lowers, uppers = batch_bounds(network, lo, hi)
    lb, A = batch_linear_bounds(network, lowers, uppers, lo, hi, region.a_x, region.a_y)
    return lb - region.b[None, :], A


def _split(network: Network, region: Region, checker: _Checker, deadline: Clock, stats: dict,
           batch: int = SPLIT_BATCH, candidates: int = 1, score_rows: str = "all", quality: str = "sum",
           max_boxes: int | None = None) -> tuple:
    """Input-domain splitting with batched symbolic bounds. Returns ``(status, check)`` with
    status ``"unsat"`` (every sub-box ruled out), ``"sat"``, ``"unknown"`` (a box too small to
    split any further), ``"budget"`` (more than ``max_boxes`` bounded) or ``"timeout"``.

    Each box is halved along one of the ``candidates`` inputs that matter most: |lower-bound
    coefficient| x width, for the row closest to being ruled out (``score_rows="closest"``) or the
    largest over all rows (``"all"``). With several candidates all halvings are bounded and the one
    whose halves are closest to being ruled out wins (``quality``: ``"sum"`` over both halves, or
    ``"min"``, the worse half) - a one-step look-ahead.
    """
    n_boxes = 0

    def finish(status, chk=None):
        stats["split_boxes"] = stats.get("split_boxes", 0) + n_boxes
        return status, chk

    lo, hi = region.lower[None, :], region.upper[None, :]
    excess, A = _evaluate_boxes(network, region, lo, hi)
    n_boxes += 1
    stack = ArrayStack()
    if not np.any(excess > 0):
        stack.push(lo, hi, excess, A)
    n_in = region.n_inputs
    while stack.size:
        if deadline.expired():
            return finish("timeout")
        if max_boxes is not None and n_boxes > max_boxes:
            return finish("budget")
        lo, hi, excess, A = stack.pop(max(1, batch // (2 * candidates)))
        B = len(lo)
        rows = np.arange(B)
        # candidate counterexamples: centres, and the corners minimising the tightest row's bound
        r = np.argmax(excess, axis=1)
        Ar = A[rows, r]
        cand = np.concatenate([0.5 * (lo + hi), np.where(Ar > 0, lo, hi)])
        v = np.max(_rows_value(network, cand, region), axis=1)
        for i in np.argsort(v)[:4]:
            if v[i] <= 0:
                chk = checker(cand[i], region)
                if chk is not None:
                    return finish("sat", chk)
        width = hi - lo
        if score_rows == "all":
            score = np.max(np.abs(A), axis=1) * width
        else:
            score = np.abs(Ar) * width
        # an input that cannot be halved any further (float precision) is no candidate
        score[width <= 1e-12 * np.maximum(1.0, np.abs(lo))] = -1.0  # not a tolerance: float64 spacing
        k = min(candidates, n_in)
        dims = np.argsort(-score, axis=1)[:, :k]  # (B, k)
        if np.any(score[rows, dims[:, 0]] <= 0):
            return finish("unknown")
        # children of every candidate halving: (k, 2, B) boxes
        c_lo = np.repeat(lo[None, None], 2, axis=1).repeat(k, axis=0)
        c_hi = np.repeat(hi[None, None], 2, axis=1).repeat(k, axis=0)
        for c in range(k):
            d = dims[:, c]
            mid = 0.5 * (lo[rows, d] + hi[rows, d])
            c_hi[c, 0, rows, d] = mid
            c_lo[c, 1, rows, d] = mid
        ex, AA = _evaluate_boxes(network, region, c_lo.reshape(-1, n_in), c_hi.reshape(-1, n_in))
        n_boxes += ex.shape[0]
        m = ex.shape[1]
        ex = ex.reshape(k, 2, B, m)
        AA = AA.reshape(k, 2, B, m, n_in)
        closeness = np.max(ex, axis=3)  # (k, 2, B): > 0 means that half is ruled out
        # a candidate whose dimension could not be halved must not win
        valid = score[rows[None, :], dims.T] > 0  # (k, B)
        if quality == "min":
            q = np.minimum(closeness[:, 0], closeness[:, 1])
        else:
            q = np.minimum(closeness[:, 0], 0.0) + np.minimum(closeness[:, 1], 0.0)
        goodness = np.where(valid, q, -np.inf)
        best = np.argmax(goodness, axis=0)  # (B,)
        for half in (0, 1):
            keep = closeness[best, half, rows] <= 0
            if np.any(keep):
                stack.push(c_lo[best, half, rows][keep], c_hi[best, half, rows][keep],
                           ex[best, half, rows][keep], AA[best, half, rows][keep])
    return finish("unsat")


def _split_portfolio(network: Network, region: Region, checker: _Checker, deadline: Clock,
                     stats: dict) -> tuple:
    """:func:`_split` with each strategy of ``SPLIT_PORTFOLIO`` in turn, doubling box budgets."""
    budget = SPLIT_FIRST_BUDGET
    unknown = set()
    while True:
        for k, (cands, rows, quality) in enumerate(SPLIT_PORTFOLIO):
            if k in unknown:
                continue
            status, chk = _split(network, region, checker, deadline, stats, candidates=cands,
                                 score_rows=rows, quality=quality, max_boxes=budget)
            if status in ("sat", "unsat", "timeout"):
                stats["split_strategy"] = k
                return status, chk
            if status == "unknown":
                unknown.add(k)
        if len(unknown) == len(SPLIT_PORTFOLIO):
            return "unknown", None
        budget *= 2


def _region_rows_lb(network: Network, bounds, region: Region, with_coefficients: bool = False):
    """Lower bounds of the region's rows over its box (and, if asked, their input coefficients)."""
    lo, hi = region.lower[None, :], region.upper[None, :]
    lb, A = batch_linear_bounds(network, [l[None, :] for l in bounds.lower], [u[None, :] for u in bounds.upper],
                                lo, hi, region.a_x, region.a_y)
    return (lb[0], A[0]) if with_coefficients else lb[0]


def _region_rows(arrays, region: Region, rhs_shift: float) -> tuple:
    """The region's rows over the MILP's columns: ``(lower, upper, [(cols, values), ...])``."""
    rows = []
    for i in range(region.n_rows):
        jx = np.flatnonzero(region.a_x[i])
        jy = np.flatnonzero(region.a_y[i])
        cols = np.concatenate([arrays.input_cols[jx], arrays.output_cols[jy]])
        vals = np.concatenate([region.a_x[i, jx], region.a_y[i, jy]])
        rows.append((cols.astype(np.int32), vals))
    upper = region.b + rhs_shift
    return np.full(region.n_rows, -np.inf), upper, rows


def _milp(network: Network, bounds, region: Region, rhs_shift: float, solver: str, time_limit: float,
          threads: int | None):
    """Is ``a_x x + a_y y <= b + rhs_shift`` reachable? Returns ``(SolveResult, x or None)``.

    HiGHS gets the model as arrays in one call (:class:`~reluverify.solve.HighsArrayModel`);
    CBC and Gurobi get the Pyomo block."""
    if solver == "highs":
        arrays = network_arrays(network, bounds)
        model = HighsArrayModel(arrays, threads=threads, emphasis="proof")
        lower, upper, rows = _region_rows(arrays, region, rhs_shift)
        if rows:
            model.add_rows(lower, upper, rows)
        res, values = model.solve(time_limit=max(time_limit, 0.1))
        x = None if values is None else np.asarray(values)[arrays.input_cols]
        return res, x
    m = pyo.ConcreteModel()
    blk = add_network(m, network, bounds)
    xs, ys = blk.inputs, blk.outputs

    def row(i):
        cols, coefs = [], []
        for j in np.flatnonzero(region.a_x[i]):
            cols.append(xs[int(j)])
            coefs.append(float(region.a_x[i, j]))
        for j in np.flatnonzero(region.a_y[i]):
            if ys[int(j)] is None:  # an output fixed at 0 by its bounds
                continue
            cols.append(ys[int(j)])
            coefs.append(float(region.a_y[i, j]))
        return linear_expr(coefs, cols, 0.0) <= float(region.b[i] + rhs_shift)

    m.unsafe = pyo.Constraint(range(region.n_rows), rule=lambda _m, i: row(i))
    m.obj = pyo.Objective(expr=0.0)
    res = solve(m, solver, time_limit=max(time_limit, 0.1), threads=threads, emphasis="proof",
                options=solver_options(solver, big_m(bounds)))
    x = None
    if res.has_solution:
        x = np.array([pyo.value(v) for v in xs], dtype=np.float64)
    return res, x


@limit_blas
def check_property(
    network: Network,
    prop: Property,
    *,
    solver: str = "highs",
    time_limit: float | None = 60.0,
    reference=None,
    split: str | bool = "auto",
    bound_method: str = "lp",
    threads: int | None = None,
    seed: int = 0,
    attack: bool = True,
    branch: str | bool = "auto",
) -> PropertyResult:
    """Decide whether some input in ``prop`` reaches its unsafe set (see :mod:`reluverify.spec`).

    ``reference(x) -> y`` re-checks counterexamples with the original model (e.g. onnxruntime via
    :func:`reluverify.io.onnx.onnxruntime_forward`). ``split``: ``"auto"`` splits input boxes of
    networks with at most ``SPLIT_MAX_INPUTS`` inputs, ``True``/``False`` force it.
    ``bound_method`` is the strategy whose bounds the MILP uses (``"lp"``: symbolic, then LP on
    still-unstable neurons). ``attack=False`` skips the falsification stage (counterexamples then
    come only from splitting or the MILP). ``branch``: ``"auto"`` runs ReLU branch and bound
    (:mod:`reluverify.problems.branch`) where the input box is not split, ``True``/``False``
    force it. Returns a :class:`~reluverify.results.PropertyResult`.
    """
    if not isinstance(prop, Property):
        raise InputError(f"prop must be a reluverify.spec.Property (e.g. from read_vnnlib), got {type(prop).__name__}")
    prop.check_network(network)
    solver = _check_name(solver)
    if time_limit is not None and not float(time_limit) > 0:
        raise InputError(f"time_limit must be positive (seconds), got {time_limit}")
    if split not in ("auto", True, False):
        raise InputError(f"split must be 'auto', True or False, got {split!r}")
    if branch not in ("auto", True, False):
        raise InputError(f"branch must be 'auto', True or False, got {branch!r}")
    deadline = Clock(time_limit)
    stats: dict = {"regions": len(prop.regions)}
    checker = _Checker(network, prop, reference)

    def done(verdict, method="", chk=None, message=""):
        res = PropertyResult(PropertyVerdict(verdict), method=method, time_s=deadline.elapsed(),
                             message=message, stats=stats)
        if chk is not None:
            res.x, res.y, res.region, res.violation = chk.x, chk.y, chk.region, chk.violation
        stats["rejected_candidates"] = checker.rejected
        return res

    live = [i for i, r in enumerate(prop.regions) if not r.empty]
    stats["empty_regions"] = len(prop.regions) - len(live)
    if not live:
        return done("unsat", "bounds", message="every region has an empty input box")

    # 1. bounds: rule out regions whose rows cannot be met over their box
    t0 = time.perf_counter()
    bounds_cache: dict = {}

    def box_bounds(region: Region, method: str):
        key = (region.lower.tobytes(), region.upper.tobytes(), method)
        if key not in bounds_cache:
            strategy = method
            if method == "lp":  # LP tightening gets a share of the time left, never all of it
                strategy = LPBounds(time_limit=max(0.5, LP_TIME_SHARE * deadline.remaining()))
            elif method == "optimised":
                strategy = OptimisedBounds(time_limit=max(0.5, LP_TIME_SHARE * deadline.remaining()))
            bounds_cache[key] = compute_bounds(network, Box(region.lower, region.upper), strategy)
        return bounds_cache[key]

    remaining = []
    guides: dict = {}  # region -> input coefficients of its tightest row's lower bound
    for i in live:
        region = prop.regions[i]
        if region.n_rows == 0:
            remaining.append(i)
            continue
        lb, A = _region_rows_lb(network, box_bounds(region, "symbolic"), region, with_coefficients=True)
        if not np.any(lb > region.b):
            remaining.append(i)
            guides[i] = A[int(np.argmax(lb - region.b))]
    stats["bounds_s"] = time.perf_counter() - t0
    stats["after_bounds"] = len(remaining)
    if not remaining:
        return done("unsat", "bounds")
    if deadline.expired():
        return done("timeout", message="time limit while bounding")

    # 2. falsification, on what the bounds left (random samples only help in few dimensions)
    samples = ATTACK_SAMPLES if network.n_inputs <= SPLIT_MAX_INPUTS else ATTACK_STARTS
    t0 = time.perf_counter()
    for i in (remaining if attack else []):
        x, v = falsify(network, prop.regions[i], seed=seed + i, samples=samples, deadline=deadline,
                       guide=guides.get(i))
        if v <= 0:
            chk = checker(x, prop.regions[i])
            if chk is not None:
                stats["attack_s"] = time.perf_counter() - t0
                return done("sat", "attack", chk)
        if deadline.expired():
            return done("timeout", message="time limit during falsification")
    stats["attack_s"] = time.perf_counter() - t0

    use_split = split is True or (split == "auto" and network.n_inputs <= SPLIT_MAX_INPUTS)
    if use_split:
        t0 = time.perf_counter()
        undecided = []
        for i in remaining:
            status, chk = _split_portfolio(network, prop.regions[i], checker, deadline, stats)
            if status == "sat":
                stats["split_s"] = time.perf_counter() - t0
                return done("sat", "split", chk)
            if status == "timeout":
                stats["split_s"] = time.perf_counter() - t0
                return done("timeout", message="time limit while splitting the input box")
            if status == "unknown":
                undecided.append(i)
        stats["split_s"] = time.perf_counter() - t0
        if not undecided:
            return done("unsat", "split")
        remaining = undecided

    # 4. ReLU branch and bound (networks with many inputs), over optimised root bounds
    use_branch = branch is True or (branch == "auto" and not use_split)
    if use_branch and remaining:
        t0 = time.perf_counter()
        undecided = []
        # easiest regions first (root bound closest to ruling them out): each region may use its
        # share of the time left, so what the easy ones leave goes to the hard ones. One tree per
        # region: a tree shared by the regions of one box was slower on mnist_fc (its splits
        # serve one region at a time while every domain pays for all of them)
        order = []
        for i in remaining:
            region = prop.regions[i]
            if region.n_rows == 0:  # nothing to rule out
                undecided.append(i)
                continue
            root = box_bounds(region, "optimised")
            gap = np.max(_region_rows_lb(network, root, region) - region.b)
            if gap <= 0:
                order.append((-gap, i))
        for n_left, (_, i) in zip(range(len(order), 0, -1), sorted(order)):
            region = prop.regions[i]
            root = box_bounds(region, "optimised")
            budget = Clock(max(0.1, BRANCH_TIME_SHARE * deadline.remaining() / n_left))
            status, chk, _ = relu_branch_and_bound(network, region, root.lower, root.upper, checker, budget,
                                                   stats)
            if status == "sat":
                stats["branch_s"] = time.perf_counter() - t0
                return done("sat", "branch", chk)
            if status != "unsat":
                undecided.append(i)
            if deadline.expired():
                stats["branch_s"] = time.perf_counter() - t0
                return done("timeout", message="time limit in the ReLU branch-and-bound stage")
        undecided = [i for i in remaining if i in undecided]  # the MILPs go in the regions' order
        stats["branch_s"] = time.perf_counter() - t0
        if not undecided:
            return done("unsat", "branch")
        remaining = undecided

    # 5. one MILP per remaining region
    t0 = time.perf_counter()
    timed_out = False
    untrusted: list = []
    for i in remaining:
        region = prop.regions[i]
        if deadline.expired():
            timed_out = True
            break
        bounds = box_bounds(region, bound_method)
        if region.n_rows and np.any(_region_rows_lb(network, bounds, region) > region.b):
            continue
        left = deadline.remaining()
        if left <= 0:
            timed_out = True
            break
        res, x = _milp(network, bounds, region, VERIFY_SLACK, solver, left, threads)
        stats.setdefault("milp", []).append((i, str(res.status), round(res.wall_time, 3)))
        if res.status == Status.INFEASIBLE:
            if big_m(bounds) > MAX_TRUSTED_BIG_M:  # beyond what solver tolerances resolve
                untrusted.append(i)
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
        # the point sits in the slack zone: ask for one with a real margin
        margin = DEFAULT_MARGIN
        for _ in range(WITNESS_RETRIES):
            left = deadline.remaining()
            if left <= 0:
                break
            res, x = _milp(network, bounds, region, -margin, solver, left, threads)
            stats["milp"].append((i, f"margin {margin:g}: {res.status}", round(res.wall_time, 3)))
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
        return done("unknown", "milp", message=f"the MILPs are infeasible, but big-M constants reach "
                    f"{max(big_m(box_bounds(prop.regions[i], bound_method)) for i in untrusted):.3g} "
                    f"(> {MAX_TRUSTED_BIG_M:g}); not taken as a proof (rescale the network)")
    return done("unsat", "milp")
