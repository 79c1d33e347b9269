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
4. otherwise (or for what splitting leaves) a **MILP** per remaining region over LP-tightened
   bounds: first "is the region, widened by ``VERIFY_SLACK``, reachable?"; infeasible is a proof;
   a feasible point is re-checked, and if it fails, the region shrunk by a margin is tried.

Every ``sat`` is a float32-exact point re-checked by :func:`reluverify.check.check_counterexample`
(float64 forward pass exactly, the reference model within VNN-COMP's tolerance).
"""

from __future__ import annotations

import time

import numpy as np
import pyomo.environ as pyo

from ..bounds import compute_bounds
from ..bounds.batch import batch_bounds, batch_linear_bounds
from ..check import check_counterexample, snap_float32
from ..domain import Box
from ..errors import InputError
from ..formulation import add_network, linear_expr, network_arrays
from ..network import Network
from ..results import PropertyResult, PropertyVerdict, Status
from ..solve import HighsArrayModel, _check_name, solve
from ..spec import Property, Region
from ..tolerances import DEFAULT_MARGIN, MARGIN_GROWTH, VERIFY_SLACK, WITNESS_RETRIES
from .attack import backpropagate

SPLIT_MAX_INPUTS = 16  # input splitting pays for low-dimensional inputs (ACAS Xu has 5)
SPLIT_BATCH = 1024  # sub-boxes bounded together
SPLIT_REUSE_PARENT = False  # intersect sub-box bounds with the parent box's (measured: more boxes, see notes)
ATTACK_SAMPLES = 2048
ATTACK_STEPS = 60
ATTACK_STARTS = 32


class _Deadline:
    def __init__(self, time_limit: float | None):
        self.t0 = time.perf_counter()
        self.limit = time_limit

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def left(self) -> float:
        return np.inf if self.limit is None else self.limit - self.elapsed()

    def expired(self) -> bool:
        return self.left() <= 0.0


def _rows_value(network: Network, x: np.ndarray, region: Region) -> np.ndarray:
    """Row excesses ``a_x x + a_y f(x) - b`` for a batch of inputs: (B, m)."""
    y = network.forward(x)
    return x @ region.a_x.T + y @ region.a_y.T - region.b


def _excess_and_gradient(network: Network, x: np.ndarray, region: Region) -> tuple:
    """Largest row excess per input and its input-gradient (a subgradient of the max)."""
    out, pre = network.forward(x, return_all=True)
    rows = x @ region.a_x.T + out @ region.a_y.T - region.b
    r = np.argmax(rows, axis=1)
    g_y = region.a_y[r]
    last = network.layers[-1]
    if last.activation == "relu":
        g_y = g_y * (pre[-1] > 0)
    g = backpropagate(network, pre, g_y @ last.weight) + region.a_x[r]
    return rows[np.arange(len(x)), r], g


def falsify(network: Network, region: Region, *, seed: int = 0, samples: int = ATTACK_SAMPLES,
            steps: int = ATTACK_STEPS, starts: int = ATTACK_STARTS, deadline: _Deadline | None = None) -> tuple:
    """Search ``region``'s box for a point whose rows all hold: random samples, then projected
    sign-gradient descent from the best of them. Returns ``(x, excess)``; ``excess <= 0`` is a
    candidate counterexample (still to be checked)."""
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
    best_i = int(order[0])
    best_x, best_v = X[best_i].copy(), float(V[best_i])
    if best_v <= 0 or not np.any(width > 0):
        return best_x, best_v
    x = X[order[:starts]].copy()
    step = 0.1 * width
    for t in range(steps):
        if deadline is not None and deadline.expired():
            break
        v, g = _excess_and_gradient(network, x, region)
        i = int(np.argmin(v))
        if v[i] < best_v:
            best_x, best_v = x[i].copy(), float(v[i])
            if best_v < 0:
                break
        x = np.clip(x - step * np.sign(g), lo, hi)
        if t % 20 == 19:
            step = step * 0.5
    v = np.max(_rows_value(network, x, region), axis=1)
    i = int(np.argmin(v))
    if v[i] < best_v:
        best_x, best_v = x[i].copy(), float(v[i])
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


class _BoxStack:
    """Sub-boxes still to decide, with the bounds of the box each was split from (valid for it)."""

    def __init__(self, lo: np.ndarray, hi: np.ndarray):
        self.chunks = [(lo[None, :], hi[None, :], None)]
        self.size = 1

    def push(self, lo, hi, bounds) -> None:
        if len(lo):
            self.chunks.append((lo, hi, bounds))
            self.size += len(lo)

    def pop(self, n: int) -> tuple:
        """About ``n`` boxes from the top (depth first keeps the stack small)."""
        los, his, bnds, got = [], [], [], 0
        while self.chunks and got < n:
            lo, hi, bd = self.chunks.pop()
            take = min(n - got, len(lo))
            if take < len(lo):  # put the rest back
                rest = None if bd is None else ([a[:-take] for a in bd[0]], [a[:-take] for a in bd[1]])
                self.chunks.append((lo[:-take], hi[:-take], rest))
                lo, hi = lo[-take:], hi[-take:]
                bd = None if bd is None else ([a[-take:] for a in bd[0]], [a[-take:] for a in bd[1]])
            los.append(lo)
            his.append(hi)
            bnds.append(bd)
            got += take
        self.size -= got
        if any(b is None for b in bnds):
            parent = None
        else:
            parent = ([np.concatenate([b[0][k] for b in bnds]) for k in range(len(bnds[0][0]))],
                      [np.concatenate([b[1][k] for b in bnds]) for k in range(len(bnds[0][1]))])
        return np.concatenate(los), np.concatenate(his), parent


def _split(network: Network, region: Region, checker: _Checker, deadline: _Deadline, stats: dict,
           batch: int = SPLIT_BATCH) -> tuple:
    """Input-domain splitting with batched symbolic bounds. Returns ``(status, check)`` with
    status ``"unsat"`` (every sub-box ruled out), ``"sat"``, ``"unknown"`` (a box too small to
    split any further) or ``"timeout"``."""
    stack = _BoxStack(region.lower, region.upper)
    n_boxes = 0

    def finish(status, chk=None):
        stats["split_boxes"] = stats.get("split_boxes", 0) + n_boxes
        return status, chk

    while stack.size:
        if deadline.expired():
            return finish("timeout")
        lo, hi, parent = stack.pop(batch)
        n_boxes += len(lo)
        lowers, uppers = batch_bounds(network, lo, hi, parent if SPLIT_REUSE_PARENT else None)
        lb, A = batch_linear_bounds(network, lowers, uppers, lo, hi, region.a_x, region.a_y)
        excess = lb - region.b[None, :]
        alive = ~np.any(excess > 0, axis=1)
        if not np.any(alive):
            continue
        lo, hi, excess, A = lo[alive], hi[alive], excess[alive], A[alive]
        lowers = [a[alive] for a in lowers]
        uppers = [a[alive] for a in uppers]
        # candidates: centres, and the corners minimising the tightest row's linear lower bound
        rows = np.arange(len(lo))
        r = np.argmax(excess, axis=1)
        Ar = A[rows, r]
        corner = np.where(Ar > 0, lo, hi)
        cand = np.concatenate([0.5 * (lo + hi), corner])
        v = np.max(_rows_value(network, cand, region), axis=1)
        for i in np.argsort(v)[:4]:
            if v[i] <= 0:
                chk = checker(cand[i], region)
                if chk is not None:
                    return finish("sat", chk)
        width = hi - lo
        score = np.abs(Ar) * width
        # a box that cannot be split any further (float precision) cannot be decided here
        score[width <= 1e-12 * np.maximum(1.0, np.abs(lo))] = -1.0
        dim = np.argmax(score, axis=1)
        if np.any(score[rows, dim] <= 0):
            return finish("unknown")
        mid = 0.5 * (lo[rows, dim] + hi[rows, dim])
        left_hi = hi.copy()
        left_hi[rows, dim] = mid
        right_lo = lo.copy()
        right_lo[rows, dim] = mid
        stack.push(np.concatenate([lo, right_lo]), np.concatenate([left_hi, hi]),
                   ([np.concatenate([a, a]) for a in lowers], [np.concatenate([a, a]) for a in uppers]))
    return finish("unsat")


def _region_rows_lb(network: Network, bounds, region: Region) -> np.ndarray:
    lo, hi = region.lower[None, :], region.upper[None, :]
    lb, _ = batch_linear_bounds(network, [l[None, :] for l in bounds.lower], [u[None, :] for u in bounds.upper],
                                lo, hi, region.a_x, region.a_y)
    return lb[0]


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
    res = solve(m, solver, time_limit=max(time_limit, 0.1), threads=threads, emphasis="proof")
    x = None
    if res.has_solution:
        x = np.array([pyo.value(v) for v in xs], dtype=np.float64)
    return res, x


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
) -> PropertyResult:
    """Decide whether some input in ``prop`` reaches its unsafe set (see :mod:`reluverify.spec`).

    ``reference(x) -> y`` re-checks counterexamples with the original model (e.g. onnxruntime via
    :func:`reluverify.io.onnx.onnxruntime_forward`). ``split``: ``"auto"`` splits input boxes of
    networks with at most ``SPLIT_MAX_INPUTS`` inputs, ``True``/``False`` force it.
    ``bound_method`` is the strategy whose bounds the MILP uses (``"lp"``: symbolic, then LP on
    still-unstable neurons). ``attack=False`` skips the falsification stage (counterexamples then
    come only from splitting or the MILP). Returns a :class:`~reluverify.results.PropertyResult`.
    """
    if not isinstance(prop, Property):
        raise InputError(f"prop must be a reluverify.spec.Property (e.g. from read_vnnlib), got {type(prop).__name__}")
    prop.check_network(network)
    solver = _check_name(solver)
    if time_limit is not None and not float(time_limit) > 0:
        raise InputError(f"time_limit must be positive (seconds), got {time_limit}")
    if split not in ("auto", True, False):
        raise InputError(f"split must be 'auto', True or False, got {split!r}")
    deadline = _Deadline(time_limit)
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
            bounds_cache[key] = compute_bounds(network, Box(region.lower, region.upper), method)
        return bounds_cache[key]

    remaining = []
    for i in live:
        region = prop.regions[i]
        if region.n_rows == 0:
            remaining.append(i)
            continue
        lb = _region_rows_lb(network, box_bounds(region, "symbolic"), region)
        if not np.any(lb > region.b):
            remaining.append(i)
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
        x, v = falsify(network, prop.regions[i], seed=seed + i, samples=samples, deadline=deadline)
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
        # most promising regions first: the smallest attack excess
        undecided = []
        for i in remaining:
            status, chk = _split(network, prop.regions[i], checker, deadline, stats)
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

    # 4. one MILP per remaining region
    t0 = time.perf_counter()
    timed_out = False
    for i in remaining:
        region = prop.regions[i]
        if deadline.expired():
            timed_out = True
            break
        left = deadline.left()
        bounds = box_bounds(region, bound_method) if bound_method != "symbolic" else box_bounds(region, "symbolic")
        if region.n_rows and np.any(_region_rows_lb(network, bounds, region) > region.b):
            continue
        left = deadline.left()
        if left <= 0:
            timed_out = True
            break
        res, x = _milp(network, bounds, region, VERIFY_SLACK, solver, left, threads)
        stats.setdefault("milp", []).append((i, str(res.status), round(res.wall_time, 3)))
        if res.status == Status.INFEASIBLE:
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
        decided = False
        for _ in range(WITNESS_RETRIES):
            left = deadline.left()
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
        if not decided:
            stats["milp_s"] = time.perf_counter() - t0
            return done("unknown", "milp", message="a reachable point within the solver's tolerance of the "
                        "unsafe set, but no checked counterexample: " + checker.last_reason)
    stats["milp_s"] = time.perf_counter() - t0
    if timed_out:
        return done("timeout", message="time limit in the MILP stage")
    return done("unsat", "milp")
