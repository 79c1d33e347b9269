"""Where the engine's queries of a dataset run execute.

``executor`` of :func:`~reluverify.evaluate.evaluate_robustness` may be

* ``None`` (default) or ``"processes"``: a local process pool (``spawn``: safe with threads and on
  every OS) of ``workers`` processes (default: every core), each with one BLAS thread and one
  solver thread, the model sent once to each worker;
* ``"serial"``: in this process, one query after another;
* any :class:`concurrent.futures.Executor` (a thread pool, a process pool of your own, ``loky``,
  ``Client.get_executor()`` of ``dask.distributed``, ...): used as it is, never shut down here;
* a ``dask.distributed.Client``, ``"dask"`` (the current Dask client, else a ``LocalCluster`` of
  ``workers`` single-threaded worker processes, closed at the end) or a scheduler address
  ``"tcp://HOST:PORT"`` (a client of that cluster, closed at the end).

The task functions are module-level (picklable by name); each worker keeps the models it has seen
by hash, so a model travels once per worker on our own pool.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import pickle

from ..errors import InputError, MissingDependencyError

_MODELS: dict = {}  # model hash -> model, in each worker process

#: Dask settings for the workers reluverify starts itself (``executor="dask"``) and recommends for yours.
#: Dask's nanny starts workers with ``MALLOC_TRIM_THRESHOLD_=65536``; setting it turns off glibc's
#: adaptive mmap threshold, so every NumPy temporary over 128 KiB is a fresh mmap and page faults.
#: On the seed network's radius searches (one worker, 10 images, HiGHS) the queries took 83.4 s on a
#: default worker against 58.6 s on a worker without it (and without the 10 ms statistical profiler)
#: and 60.1 s in the process pool (docs/evaluate.md).
DASK_WORKER_CONFIG = {
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
    "distributed.worker.profile.enabled": False,
}


def _init_worker(model_hash: str, blob: bytes) -> None:
    """Process-pool initializer: one BLAS thread (the engine's entry points limit it too; this covers
    everything else), the model unpickled once."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:  # pragma: no cover - a core dependency
        pass
    _MODELS[model_hash] = pickle.loads(blob)


def run_task(task: dict) -> dict:
    """Decide one query of a dataset run through the public API (so every model kind the public
    functions accept works): ``kind="verify"`` -> :func:`reluverify.verify_robustness`,
    ``kind="radius"`` -> :func:`reluverify.minimal_distortion`. Returns a plain dict (picklable)."""
    import math
    import time

    import numpy as np

    import reluverify as rv
    from ..threads import limited_blas
    from ..tolerances import OPTIMAL_REL_GAP

    # the worker's own copy when it has one (its caches are warm; a copy that came with the task
    # would rebuild them for every query), else the task's
    model = _MODELS.get(task["model_hash"])
    if model is None:
        model = _MODELS[task["model_hash"]] = task["model"]
    t0 = time.perf_counter()
    try:
        with limited_blas():
            if task["kind"] == "verify":
                res = rv.verify_robustness(model, task["x"], task["eps"], task["norm"], label=task["label"],
                                           solver=task["solver"], time_limit=task["time_limit"], threads=1,
                                           **({} if task.get("attack", True) else {"attack": False}))
            else:
                res = rv.minimal_distortion(model, task["x"], task["norm"], label=task["label"],
                                            solver=task["solver"], time_limit=task["time_limit"], threads=1)
    except InputError:  # a usage error is the same for every query: say it once
        raise
    except Exception as exc:  # one failing query must not lose the batch: an honest unknown
        return {"verdict": "unknown", "time_s": time.perf_counter() - t0, "stage": "error", "method": "",
                "message": f"{type(exc).__name__}: {exc}"[:500], "distance": None, "lower_bound": None,
                "x_adv": None, "adversarial_class": None, "optimal": None}
    out = {"verdict": str(res.verdict), "time_s": float(res.time_s), "stage": "engine",
           "method": _method(res), "message": (res.message or "")[:500],
           "distance": None if res.distance is None else float(res.distance),
           "lower_bound": None if res.lower_bound is None else float(res.lower_bound),
           "x_adv": None if res.x_adv is None else np.asarray(res.x_adv, dtype=np.float64),
           "adversarial_class": res.adversarial_class, "optimal": None}
    if task["kind"] == "radius":
        d, lb = out["distance"], out["lower_bound"]
        out["optimal"] = bool(d is not None and lb is not None and math.isfinite(d)
                              and d - lb <= OPTIMAL_REL_GAP * max(1.0, d))
        out["stage"] = "radius"
    return out


def _malloc_trim_env():
    """This worker's ``MALLOC_TRIM_THRESHOLD_`` (``None`` when unset)."""
    return os.environ.get("MALLOC_TRIM_THRESHOLD_")


def slow_worker_warning(envs: dict) -> str | None:
    """The advice for Dask workers whose ``MALLOC_TRIM_THRESHOLD_`` is set (``envs``: worker -> value)."""
    bad = sorted(w for w, v in envs.items() if isinstance(v, str) and v != "")
    if not bad:
        return None
    return (f"{len(bad)} of {len(envs)} Dask workers run with MALLOC_TRIM_THRESHOLD_ set (Dask's nanny default), "
            "which made reluverify's queries about 40 % slower in our measurement: start the workers with "
            "the Dask config 'distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_: null' "
            "(reluverify.evaluate.DASK_WORKER_CONFIG; see docs/evaluate.md)")


def _run_everywhere(client, model_hash: str, blob: bytes) -> None:
    """:func:`_init_worker` on every worker of a Dask cluster (a failure only costs the warm-up:
    the tasks carry the model), and a :class:`~reluverify.errors.PerformanceWarning` when the
    workers were started with a malloc setting that slows the queries down."""
    try:
        client.run(_init_worker, model_hash, blob, on_error="ignore")
        msg = slow_worker_warning(client.run(_malloc_trim_env, on_error="ignore"))
    except Exception:  # pragma: no cover - a closing client, an old distributed
        return
    if msg:
        import warnings

        from ..errors import PerformanceWarning

        warnings.warn(msg, PerformanceWarning, stacklevel=2)


def _warm() -> int:
    """A no-op task: its worker has started (imported reluverify, unpickled the model)."""
    return os.getpid()


def _method(res) -> str:
    stats = getattr(res, "stats", None) or {}
    msg = res.message or ""
    for word, name in (("bounds", "bounds"), ("gradient attack", "attack"), ("branch and bound", "branch"),
                       ("input splitting", "split"), ("MILP", "milp")):
        if word in msg:
            return name
    return stats.get("method", "") if isinstance(stats, dict) else ""


class Runner:
    """Submits tasks and hands back finished ones; owns (and closes) what it created."""

    def __init__(self, executor, workers: int | None, model, model_hash: str):
        self.model, self.model_hash = model, model_hash
        self.workers = workers or os.cpu_count() or 1
        self._own = None
        self._client = None
        self._cluster = None
        self.kind = "serial"
        self.pool = None
        self._send_model = True
        self.note = ""
        self.warming = None  # the thread warming a Dask cluster's workers
        if executor is None or executor == "processes":
            self.kind = "processes"
        elif executor == "serial":
            self.kind = "serial"
        elif isinstance(executor, cf.Executor):
            self.kind, self.pool = "executor", executor
        elif executor == "dask" or (isinstance(executor, str) and "://" in executor) or _is_dask_client(executor):
            self.kind = "dask"
            self._executor_arg = executor
        else:
            raise InputError(f"executor must be None, 'serial', 'processes', 'dask', a scheduler address "
                             f"('tcp://HOST:PORT'), a dask.distributed.Client or a concurrent.futures.Executor; "
                             f"got {executor!r}")
        if self.kind == "processes" and self.workers < 1:
            raise InputError(f"workers must be 1 or more, got {workers}")

    def start(self, expected_tasks: int) -> None:
        """Create the pool (if ours) when there is work for more than one worker (once: a pool
        already started by :meth:`warm` is kept)."""
        if self.pool is not None:
            return
        if self.kind == "processes":
            if self.workers <= 1 or expected_tasks <= 1:
                self.kind = "serial"
                return
            import multiprocessing as mp

            try:
                blob = pickle.dumps(self.model, protocol=pickle.HIGHEST_PROTOCOL)
            except Exception as exc:  # a model that cannot travel to another process runs here
                self.kind = "serial"
                self.note = f"the model cannot be pickled ({type(exc).__name__}: {exc}); ran serially"
                return
            self.pool = self._own = cf.ProcessPoolExecutor(
                max_workers=self.workers, mp_context=mp.get_context("spawn"), initializer=_init_worker,
                initargs=(self.model_hash, blob))
            self._send_model = False
        elif self.kind == "dask":
            self.pool = self._dask_executor(self._executor_arg)

    def warm(self, expected_tasks: int) -> None:
        """Start our own process pool now and have each worker import reluverify and unpickle the
        model in the background (the caller's batched stages run meanwhile); on Dask, every worker
        of the cluster does the same (fire and forget: a worker that joins later gets the model with
        its tasks, which always carry it). Other executors are left alone until :meth:`start`."""
        if self.kind not in ("processes", "dask") or self.pool is not None or expected_tasks < 1:
            return
        self.start(expected_tasks)
        if self.kind == "processes" and self._own is not None:
            for _ in range(self.workers):
                self._own.submit(_warm)
        elif self.kind == "dask":
            client = getattr(self.pool, "_client", None)
            if client is not None:  # Client.run blocks (wait=False is for coroutines): a thread waits
                import threading

                blob = pickle.dumps(self.model, protocol=pickle.HIGHEST_PROTOCOL)
                self.warming = threading.Thread(target=_run_everywhere, args=(client, self.model_hash, blob),
                                                daemon=True, name="reluverify-dask-warm")
                self.warming.start()

    def _dask_executor(self, arg):
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError as exc:
            raise MissingDependencyError(
                "the Dask executor needs dask.distributed: pip install 'reluverify[dask]' "
                "(or pip install 'dask[distributed]')") from exc
        if _is_dask_client(arg):
            client = arg
        elif arg == "dask":
            try:
                from dask.distributed import get_client

                client = get_client()
            except ValueError:
                import dask

                # a nanny started earlier in this process left MALLOC_TRIM_THRESHOLD_ in os.environ
                # (Dask sets it there before spawning); our workers start without it
                saved = os.environ.pop("MALLOC_TRIM_THRESHOLD_", None)
                try:
                    with dask.config.set(DASK_WORKER_CONFIG):
                        self._cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1,
                                                     processes=True, dashboard_address=None)
                finally:
                    if saved is not None:
                        os.environ["MALLOC_TRIM_THRESHOLD_"] = saved
                client = self._client = Client(self._cluster)
        else:
            client = self._client = Client(arg)
        return client.get_executor()

    @property
    def parallel(self) -> int:
        """How many tasks to keep in flight."""
        if self.kind == "serial":
            return 1
        if self.kind == "processes":
            return 2 * self.workers
        n = getattr(self.pool, "_max_workers", None)
        if n is None and self.kind == "dask":
            try:
                n = sum(self.pool._client.nthreads().values())
            except Exception:
                n = None
            else:  # Dask places a task on a worker when it is submitted: one per thread, so that a
                # task never waits behind a long one on a busy worker while another worker idles
                return max(int(n), 1)
        return 2 * max(int(n or self.workers), 1)

    def submit(self, task: dict):
        task = dict(task, model_hash=self.model_hash, model=self.model if self._send_model else None)
        if self.kind == "serial":
            f = cf.Future()
            f.set_result(run_task(task))
            return f
        return self.pool.submit(run_task, task)

    def close(self, cancel: bool = False) -> None:
        if self._own is not None:
            self._own.shutdown(wait=not cancel, cancel_futures=cancel)
        if self._client is not None:
            self._client.close()
        if self._cluster is not None:
            self._cluster.close()


def _is_dask_client(obj) -> bool:
    return type(obj).__name__ == "Client" and type(obj).__module__.startswith("distributed")
