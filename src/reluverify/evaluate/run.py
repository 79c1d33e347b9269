"""Robustness of a whole data set: :func:`evaluate_robustness`.

Per (sample, eps) query, cheapest stage first:

1. **forward**: one batched forward pass; a sample the model gets wrong is ``misclassified`` at
   every eps;
2. **attack** (networks, L-inf): one batched gradient attack over every open query, eps ascending;
   a candidate counts only after the engine's witness check (``not_robust``);
3. **bounds** (networks, L-inf): sound symbolic bounds of every open query's box at once, eps
   descending; the engine's label-elimination rule (``robust``);
4. **guided attack** (networks, L-inf): the engine's guided falsification, batched over every open
   query and wrong class the bounds left, from the corner their linear lower bound points to
   (``not_robust``, after the witness check);
5. **engine**: what is left, one query at a time through the public
   :func:`reluverify.verify_robustness` (and :func:`reluverify.minimal_distortion` for
   ``radius=True``), on the executor (:mod:`.executors`).

**Monotone in eps** (the balls are nested): robust at eps ⇒ robust at every smaller eps; a checked
counterexample at eps is one at every larger eps. Every stage uses it: the attack skips larger eps
of samples it has broken, the bounds skip smaller eps of samples they have proved, and the engine
asks the middle open eps of each sample first (a binary search). Inferred rows say so
(``stage="monotone"``, ``method`` names the eps they come from).

Every row is committed to the store (:mod:`.store`) when it is known; a rerun with the same store
resumes.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import math
import pickle
import time
from collections import deque

import numpy as np

from ..errors import InputError
from ..model import Network
from ..results import Verdict
from ..sets import check_norm
from ..solvers import DEFAULT_SOLVER
from ..threads import limit_blas
from ..tolerances import DEFAULT_TIME_LIMIT, WITNESS_BALL_ABS_SLACK, WITNESS_BALL_REL_SLACK
from .executors import Runner
from .progress import Progress
from .result import FIELDS, MISCLASSIFIED, EvaluationResult
from .store import Store

WARM_MIN_QUERIES = 100  # open queries from which our pool starts before the batched stages (not a tolerance)
ROBUST, NOT_ROBUST, UNKNOWN, FOUND = (Verdict.ROBUST.value, Verdict.NOT_ROBUST.value, Verdict.UNKNOWN.value,
                                   Verdict.FOUND.value)


def model_hash(model) -> str:
    """SHA-256 of a model's weights (networks: each layer's kind and state arrays; other models:
    their pickle)."""
    h = hashlib.sha256()
    if isinstance(model, Network):
        from ..model.layers import layers_to_arrays

        _, arrays = layers_to_arrays(model.layers)
        for k in sorted(arrays):
            a = np.asarray(arrays[k])
            h.update(k.encode())
            h.update(str(a.dtype).encode() + str(a.shape).encode())
            h.update(np.ascontiguousarray(a).tobytes())
        h.update(str(tuple(model.input_shape)).encode())
    else:
        try:
            h.update(pickle.dumps(model, protocol=4))
        except Exception:  # e.g. a model holding a local function: hash its arrays and numbers
            _feed(h, model, 0)
    return h.hexdigest()


def _feed(h, obj, depth: int) -> None:
    """Hash the data of ``obj`` (arrays, numbers, strings, containers, object attributes; callables
    by their name only)."""
    if depth > 20:
        return
    if isinstance(obj, np.ndarray):
        h.update(str(obj.dtype).encode() + str(obj.shape).encode())
        h.update(np.ascontiguousarray(obj).tobytes() if obj.dtype != object else repr(obj.tolist()).encode())
    elif isinstance(obj, (str, bytes, int, float, bool, type(None), np.generic)):
        h.update(repr(obj).encode())
    elif isinstance(obj, (list, tuple)):
        h.update(b"[")
        for v in obj:
            _feed(h, v, depth + 1)
    elif isinstance(obj, dict):
        for k in sorted(obj, key=repr):
            h.update(repr(k).encode())
            _feed(h, obj[k], depth + 1)
    elif callable(obj) and not hasattr(obj, "__dict__"):
        h.update(getattr(obj, "__qualname__", type(obj).__name__).encode())
    elif hasattr(obj, "__dict__"):
        h.update(type(obj).__qualname__.encode())
        _feed(h, {k: v for k, v in vars(obj).items() if not callable(v)}, depth + 1)
    else:
        h.update(repr(obj).encode())


def data_hash(X: np.ndarray, y: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update(str(X.shape).encode())
    h.update(np.ascontiguousarray(X, dtype=np.float64).tobytes())
    h.update(np.ascontiguousarray(y, dtype=np.int64).tobytes())
    return h.hexdigest()


def _versions() -> dict:
    import platform

    from .. import __version__

    out = {"reluverify": __version__, "numpy": np.__version__, "python": platform.python_version()}
    try:
        from importlib.metadata import version

        out["highspy"] = version("highspy")
    except Exception:
        pass
    return out


def _check_eps(eps) -> list:
    values = [eps] if np.isscalar(eps) else list(eps)
    if not values:
        raise InputError("eps is empty; give one radius or a list, e.g. eps=[0.01, 0.03]")
    out = []
    for e in values:
        try:
            v = float(e)
        except (TypeError, ValueError):
            v = math.nan
        if not math.isfinite(v) or v <= 0:
            raise InputError(f"every eps must be a positive finite number, got {e!r}")
        out.append(v)
    return sorted(set(out))


class _Sample:
    """The open and finished queries of one sample (eps ascending) and the monotone rules."""

    def __init__(self, i: int, eps: list):
        self.i, self.eps = i, eps
        self.rows = [None] * len(eps)
        self.busy = False
        self.radius_open = False

    def open(self) -> list:
        return [k for k, r in enumerate(self.rows) if r is None]

    def next_query(self):
        ks = self.open()
        return ks[len(ks) // 2] if ks else None

    def settle(self, k: int, row: dict, monotone: bool) -> list:
        """Record ``row`` at eps index ``k`` and what it implies; returns every new row."""
        self.rows[k] = row
        out = [row]
        if not monotone:
            return out
        e = self.eps[k]
        if row["verdict"] == ROBUST:
            for i in range(k):
                if self.rows[i] is None or self.rows[i]["verdict"] == UNKNOWN:
                    self.rows[i] = dict(row, eps=self.eps[i], time_s=0.0, stage="monotone", lower_bound=e,
                                        method=f"robust at eps={e:g}", message=f"robust at the larger eps {e:g}")
                    out.append(self.rows[i])
        elif row["verdict"] == NOT_ROBUST:
            for i in range(k + 1, len(self.eps)):
                if self.rows[i] is None or self.rows[i]["verdict"] == UNKNOWN:
                    self.rows[i] = dict(row, eps=self.eps[i], time_s=0.0, stage="monotone",
                                        method=f"not robust at eps={e:g}",
                                        message=f"the counterexample found at the smaller eps {e:g}")
                    out.append(self.rows[i])
        return out


@limit_blas
def evaluate_robustness(model, X, y, eps, norm: str = "linf", *, solver: str = DEFAULT_SOLVER,
                        time_limit: float | None = DEFAULT_TIME_LIMIT, radius: bool = False, executor=None,
                        workers: int | None = None, store=None, progress=None, batch: bool = True,
                        monotone: bool = True, reference=None) -> EvaluationResult:
    """Robustness of every sample of ``X`` (labels ``y``) at every radius of ``eps`` in ``norm``.

    Returns an :class:`~reluverify.evaluate.result.EvaluationResult`: one row per (sample, eps)
    (verdict robust / not_robust / unknown / misclassified, time, distance of the checked
    counterexample, proven lower bound, what decided it), the verified robust accuracy per eps with
    its lower and upper bound (unknowns counted both ways) and, with ``radius=True``, the exact
    minimal distortion of every correctly classified sample with its proven lower bound
    (:func:`reluverify.minimal_distortion`; also used to decide the eps queries it settles).

    ``time_limit``: seconds per engine query (and per radius search). ``executor``: where the engine
    queries run (:mod:`reluverify.evaluate.executors`: ``None`` = a local process pool of ``workers``
    processes, ``"serial"``, any ``concurrent.futures.Executor``, ``"dask"``, a Dask ``Client`` or a
    scheduler address). ``store``: an SQLite file; rows are committed as they finish and a rerun
    resumes (different settings: :class:`~reluverify.evaluate.store.StoreMismatchError`).
    ``progress``: None (tqdm bars when tqdm is installed), True (tqdm, else plain lines on stderr)
    or False. ``batch=False`` skips the batched attack and bounds and ``monotone=False`` the eps
    inference (both for comparisons: the verdicts are the same, the work is not).
    ``reference``: the source model of a network (Keras, a PyTorch module, or a callable
    ``x -> outputs``, e.g. onnxruntime), as in :func:`reluverify.verify_robustness`: every
    counterexample, wherever it was found, must also change the class of the source model, in this
    process, before it is reported (one that does not is an honest ``unknown``). Tree ensembles
    check with the framework model they were imported from, always.

    With the default process pool, scripts must guard the call with ``if __name__ == "__main__":``
    (the workers are spawned and import the main module).
    """
    from ..problems.common import check_time
    from ..solvers import _check_name

    t_start = time.perf_counter()
    norm = check_norm(norm)
    solver = _check_name(solver)
    check_time(time_limit)
    eps_list = _check_eps(eps)
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    if X.ndim < 1 or len(X) == 0:
        raise InputError("X holds no samples; pass an array of shape (n, ...) with n >= 1")
    n = len(X)
    if y.shape != (n,):
        raise InputError(f"y must hold one label per sample: shape ({n},), got {y.shape}")
    if y.dtype.kind == "f" and not np.all(y == np.round(y)):
        raise InputError("y holds non-integer labels; pass class indices")
    y = y.astype(np.int64)
    is_net = isinstance(model, Network)
    if reference is not None and not is_net:
        raise InputError("reference= is for networks: a tree ensemble checks every witness with the framework "
                         "model it was imported from")
    ref = None
    if is_net:
        from ..problems.common import resolve_reference

        ref = resolve_reference(reference, None, model)
    X2 = X.reshape(n, -1)
    if is_net:
        if X2.shape[1] != model.n_inputs:
            raise InputError(f"each sample of X has {X2.shape[1]} values but the network takes {model.n_inputs} "
                             f"(shape {model.input_shape}); pass X of shape (n, {', '.join(map(str, model.input_shape))})")
        K = model.n_outputs
        if y.min() < 0 or y.max() >= K:
            raise InputError(f"labels must be class indices 0-{K - 1}, got values in [{y.min()}, {y.max()}]")
    if not np.all(np.isfinite(X2)) or X2.min() < 0.0 or X2.max() > 1.0:
        raise InputError(f"X must hold finite values in [0, 1] (the valid box of every query), got values in "
                         f"[{np.nanmin(X2):.4g}, {np.nanmax(X2):.4g}]; scale the inputs (images: divide by 255)")
    mhash, dhash = model_hash(model), data_hash(X2, y)
    settings = {"norm": norm, "solver": solver, "time_limit": time_limit, "perturbation": "default",
                "n_samples": n}
    identity = {"schema": 1, "model_hash": mhash, "data_hash": dhash, **settings,
                "reluverify": _versions()["reluverify"]}
    db = Store(store)
    db.claim(identity, {"versions": _versions(), "eps": eps_list, "radius": bool(radius),
                        "model": getattr(model, "name", type(model).__name__)})
    result = EvaluationResult(eps=eps_list, norm=norm, rows=[], n_samples=n, settings={**settings,
                              "model_hash": mhash, "data_hash": dhash, "radius": bool(radius)},
                              X=X2, input_shape=tuple(getattr(model, "input_shape", ()) or X.shape[1:]),
                              store=None if store is None else str(store))
    eps_index = {e: k for k, e in enumerate(eps_list)}
    samples = [_Sample(i, eps_list) for i in range(n)]
    radii: dict = {}
    for r in db.records():
        k = eps_index.get(r["eps"])
        if k is not None and 0 <= r["sample"] < n:
            samples[r["sample"]].rows[k] = r
    for r in db.radii():
        if 0 <= r["sample"] < n:
            radii[r["sample"]] = r
    resumed = sum(s.rows.count(None) < len(eps_list) for s in samples)
    bar = Progress(progress, total=n * len(eps_list), samples=n,
                   done=sum(len(eps_list) - len(s.open()) for s in samples))
    stage_counts: dict = {}
    stage_s: dict = {}  # wall seconds per stage of this run

    # ----------------------------------------------------------------- forward pass
    if hasattr(model, "predict_class"):
        predicted = np.asarray(model.predict_class(X2), dtype=np.int64).reshape(n)
    else:  # a model without a forward pass: the engine says it per query
        predicted = np.full(n, -1)

    def row(i, e, verdict, *, time_s=0.0, distance=None, lower_bound=None, stage="", method="", message="",
            x_adv=None, adversarial_class=None):
        return {"sample": i, "eps": e, "verdict": verdict, "time_s": float(time_s), "distance": distance,
                "lower_bound": lower_bound, "stage": stage, "method": method, "label": int(y[i]),
                "predicted": int(predicted[i]), "adversarial_class": adversarial_class,
                "message": message, "x_adv": x_adv}

    def commit_witnesses(k, e, found, share, method, message):
        """The attack stages' checked witnesses ``(sample, witness)`` at eps level ``k``, in one
        transaction (the level finishes at once)."""
        level = []
        for i, w in found:
            level += samples[i].settle(k, row(i, e, NOT_ROBUST, time_s=share, stage="attack", method=method,
                                              distance=w["distance"], x_adv=w["x_adv"],
                                              adversarial_class=w["adversarial_class"], message=message),
                                       monotone)
        commit(level)

    def commit(new_rows):
        db.put_records(new_rows)
        for r in new_rows:
            stage_counts[r["stage"]] = stage_counts.get(r["stage"], 0) + 1
            bar.query(r)
        for s in {r["sample"] for r in new_rows}:
            if not samples[s].open():
                bar.sample_done()

    wrong = [i for i in range(n) if predicted[i] >= 0 and predicted[i] != y[i]]
    level = []
    for i in wrong:
        if radius and i not in radii:
            rr = {"sample": i, "verdict": MISCLASSIFIED, "distance": 0.0, "lower_bound": 0.0, "optimal": True,
                  "time_s": 0.0, "stage": "forward", "label": int(y[i]), "adversarial_class": int(predicted[i]),
                  "message": "the model already gets this sample wrong", "x_adv": None}
            db.put_radius(rr)
            radii[i] = rr
        for k in samples[i].open():
            samples[i].rows[k] = row(i, eps_list[k], MISCLASSIFIED, stage="forward",
                                     message=f"predicted {predicted[i]}, label {y[i]}", distance=0.0,
                                     adversarial_class=int(predicted[i]))
            level.append(samples[i].rows[k])
    commit(level)
    wrong_set = set(wrong)
    good = [i for i in range(n) if i not in wrong_set]

    # ----------------------------------------------------------------- batched attack and bounds
    attacked = {i: set() for i in range(n)}
    runner = Runner(executor, workers, model, mhash)
    if is_net and sum(len(samples[i].open()) for i in good) >= WARM_MIN_QUERIES:
        runner.warm(len(good))  # our pool's workers start up while the batched stages run
    hardness: dict = {}  # (sample, eps index) -> wrong classes the batched bounds left open
    try:
        if batch and is_net and norm == "linf":
            from .stages import GUIDE_CHUNK, GUIDE_STARTS, attack_batch, bounds_batch, check_witness, guided_attack, query_for

            _regions: dict = {}

            def class_regions(c: int) -> list:
                """The witness regions of the class-change query of class ``c`` (their rows do not
                depend on the sample)."""
                if c not in _regions:
                    _regions[c] = query_for(model, X2[0], c, eps_list[0], norm)[0].prop.regions
                return _regions[c]

            t_stage = time.perf_counter()
            bar.note("batched attack")
            for k, e in enumerate(eps_list):  # eps ascending: a counterexample settles every larger eps
                idx = [i for i in good if samples[i].rows[k] is None]
                if not idx:
                    continue
                t0 = time.perf_counter()
                x0 = X2[idx]
                lo, hi = np.clip(x0 - e, 0.0, 1.0), np.clip(x0 + e, 0.0, 1.0)  # the default valid box [0, 1]
                pts, gaps = attack_batch(model, x0, y[idx], lo, hi, seed=k)
                found = []
                for b in np.flatnonzero(gaps > 0):
                    i = idx[b]
                    w = check_witness(model, X2[i], int(y[i]), e, norm, pts[b], ref)
                    if w is not None:
                        found.append((i, w))
                share = (time.perf_counter() - t0) / len(idx)
                for i in idx:
                    attacked[i].add(k)
                commit_witnesses(k, e, found, share, "attack", "counterexample from the batched gradient attack")
            stage_s["attack"] = time.perf_counter() - t_stage
            t_stage = time.perf_counter()
            bar.note("batched bounds")
            guides: dict = {}  # eps index -> (sample, region, corner signs) the bounds left open
            for k in range(len(eps_list) - 1, -1, -1):  # eps descending: a proof settles every smaller eps
                e = eps_list[k]
                idx = [i for i in good if samples[i].rows[k] is None]
                if not idx:
                    continue
                t0 = time.perf_counter()
                found_guides: list = []
                proved = bounds_batch(model, X2[idx], y[idx], np.full(len(idx), e), norm, guides=found_guides)
                guides[k] = [(idx[b], r, sign) for b, r, sign in found_guides]
                for b, _, _ in found_guides:
                    hardness[idx[b], k] = hardness.get((idx[b], k), 0) + 1
                share = (time.perf_counter() - t0) / len(idx)
                level = []
                for b in np.flatnonzero(proved):
                    i = idx[b]
                    level += samples[i].settle(k, row(i, e, ROBUST, time_s=share, stage="bounds", method="bounds",
                                                      lower_bound=e,
                                                      message="every wrong class eliminated by batched symbolic bounds"),
                                               monotone)
                commit(level)

            stage_s["bounds"] = time.perf_counter() - t_stage
            t_stage = time.perf_counter()
            bar.note("guided attack")
            for k, e in enumerate(eps_list):  # the engine's guided falsification, batched; eps ascending
                pairs = [g for g in guides.get(k, ()) if samples[g[0]].rows[k] is None]
                if not pairs:
                    continue
                t0 = time.perf_counter()
                found = {}
                step = max(1, GUIDE_CHUNK // GUIDE_STARTS)
                for start in range(0, len(pairs), step):
                    part = pairs[start:start + step]
                    ii = np.array([g[0] for g in part])
                    x0 = X2[ii]
                    regs = [class_regions(int(y[i]))[r] for i, r, _ in part]
                    pts, ex = guided_attack(model, x0, y[ii], regs, np.clip(x0 - e, 0.0, 1.0), np.clip(x0 + e, 0.0, 1.0),
                                            np.array([g[2] for g in part]), seed=k)
                    for t in np.flatnonzero(ex <= 0):
                        i = int(ii[t])
                        if i in found:
                            continue
                        w = check_witness(model, X2[i], int(y[i]), e, norm, pts[t], ref)
                        if w is not None:
                            found[i] = w
                share = (time.perf_counter() - t0) / len({g[0] for g in pairs})
                commit_witnesses(k, e, found.items(), share, "guided attack",
                                 "counterexample from the batched attack guided by the bounds")
            stage_s["guided_attack"] = time.perf_counter() - t_stage
    except BaseException:  # the warm pool goes too
        runner.close(cancel=True)
        bar.close()
        db.close()
        raise

    # ----------------------------------------------------------------- the engine, per query
    t_stage = time.perf_counter()
    for i in good:
        samples[i].radius_open = bool(radius) and i not in radii
    # the likely longest first (so that no long query starts last): the more wrong classes the
    # batched bounds left open at a sample's largest open eps, the more branching its proof takes;
    # a radius search first of all, the longer the larger its radius may be (the smallest eps with a
    # counterexample bounds it; none: larger than every eps), as proofs over wider balls branch more
    def expected_work(i):
        s = samples[i]
        ks = s.open()
        found = [e for e, r in zip(eps_list, s.rows) if r is not None and r["verdict"] == NOT_ROBUST]
        return (s.radius_open, min(found, default=math.inf) if s.radius_open else 0.0,
                hardness.get((i, ks[-1]), 0) if ks else 0, ks[-1] if ks else -1)

    todo = deque(sorted((i for i in good if samples[i].open() or samples[i].radius_open), key=expected_work,
                        reverse=True))
    try:
        runner.start(len(todo))
    except BaseException:
        runner.close(cancel=True)
        raise
    bar.note(f"engine ({runner.kind})")
    inflight: dict = {}

    def feed():
        while todo and len(inflight) < runner.parallel:
            i = todo.popleft()
            s = samples[i]
            base = {"x": X2[i], "label": int(y[i]), "norm": norm, "solver": solver,
                    "time_limit": time_limit}
            if s.radius_open:
                inflight[runner.submit(dict(base, kind="radius"))] = (i, None)
                continue
            k = s.next_query()
            if k is None:
                continue
            task = dict(base, kind="verify", eps=eps_list[k])
            if k in attacked[i]:  # the batched attack already tried this query: the engine skips its own
                task["attack"] = False
            inflight[runner.submit(task)] = (i, k)

    def confirmed(i, e, out) -> dict:
        """An engine result whose counterexample the source model does not confirm becomes an honest
        unknown (the workers check with the float64 pass only: the reference stays here)."""
        if ref is None or out["x_adv"] is None:
            return out
        from .stages import check_witness

        if e is None and out["distance"] is not None:  # a radius search: its witness, at its own distance
            e = out["distance"] * (1 + WITNESS_BALL_REL_SLACK) + WITNESS_BALL_ABS_SLACK
        if e is not None and check_witness(model, X2[i], int(y[i]), e, norm, out["x_adv"], ref) is not None:
            return out
        why = "the source model (reference) does not confirm the counterexample"
        if out["verdict"] in (NOT_ROBUST, FOUND):
            out = dict(out, verdict=UNKNOWN)
        return dict(out, x_adv=None, distance=None, adversarial_class=None, optimal=False if
                    out.get("optimal") is not None else None, message=f"{why}; {out['message']}"[:500])

    def finish_radius(i, out):
        out = confirmed(i, None, out)
        rr = {"sample": i, "verdict": out["verdict"], "distance": out["distance"], "lower_bound": out["lower_bound"],
              "optimal": out["optimal"], "time_s": out["time_s"], "stage": out["stage"], "label": int(y[i]),
              "adversarial_class": out["adversarial_class"], "message": out["message"], "x_adv": out["x_adv"]}
        db.put_radius(rr)
        radii[i] = rr
        samples[i].radius_open = False
        d, lb = out["distance"], out["lower_bound"]
        for k in samples[i].open():
            if samples[i].rows[k] is not None:  # settled by an earlier k of this loop
                continue
            e = eps_list[k]
            if d is not None and out["x_adv"] is not None and d <= e:
                w = {"x_adv": out["x_adv"], "distance": d, "adversarial_class": out["adversarial_class"]}
                if is_net:
                    from .stages import check_witness

                    w = check_witness(model, X2[i], int(y[i]), e, norm, out["x_adv"], ref)
                if w is not None:
                    commit(samples[i].settle(k, row(i, e, NOT_ROBUST, stage="radius", method="minimal distortion",
                                                    distance=w["distance"], x_adv=w["x_adv"],
                                                    adversarial_class=w["adversarial_class"],
                                                    message=f"the minimal-distortion example ({d:.6g}) lies within eps"),
                                             monotone))
            elif lb is not None and e <= lb and (d is None or lb < d):
                commit(samples[i].settle(k, row(i, e, ROBUST, stage="radius", method="minimal distortion",
                                                lower_bound=lb,
                                                message=f"certified radius {lb:.6g} >= eps (minimal distortion)"),
                                         monotone))

    try:
        while todo or inflight:
            feed()
            if not inflight:
                break
            done, _ = cf.wait(list(inflight), return_when=cf.FIRST_COMPLETED)
            for f in done:
                i, k = inflight.pop(f)
                out = f.result()
                if k is None:
                    finish_radius(i, out)
                else:
                    e = eps_list[k]
                    out = confirmed(i, e, out)
                    verdict = out["verdict"] if out["verdict"] in (ROBUST, NOT_ROBUST) else UNKNOWN
                    commit(samples[i].settle(k, row(i, e, verdict, time_s=out["time_s"], stage=out["stage"],
                                                    method=out["method"], message=out["message"],
                                                    distance=out["distance"] if verdict == NOT_ROBUST else None,
                                                    lower_bound=e if verdict == ROBUST else None,
                                                    x_adv=out["x_adv"], adversarial_class=out["adversarial_class"]),
                                             monotone))
                if samples[i].open() or samples[i].radius_open:
                    todo.append(i)
    except BaseException:
        runner.close(cancel=True)
        bar.close()
        db.close()
        raise
    runner.close()
    bar.close()
    stage_s["engine"] = time.perf_counter() - t_stage

    rows = [r for s in samples for r in s.rows if r is not None]
    result.rows = [{k: r.get(k) for k in FIELDS} for r in rows]
    result.examples = {(r["sample"], r["eps"]): r["x_adv"] for r in rows if r.get("x_adv") is not None}
    result.radii = [{k: v for k, v in radii[i].items() if k != "x_adv"} for i in sorted(radii)]
    result.radius_examples = {i: radii[i]["x_adv"] for i in sorted(radii) if radii[i].get("x_adv") is not None}
    result.stage_counts = stage_counts
    result.settings["stage_s"] = {k: round(v, 3) for k, v in stage_s.items()}
    result.settings["resumed_samples"] = resumed
    result.settings["executor"] = runner.kind + (f" ({runner.note})" if runner.note else "")
    result.wall_s = time.perf_counter() - t_start
    db.close()
    return result
