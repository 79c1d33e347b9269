"""A MILP race on the second core: the MILP stage's question for each region, asked in a separate
process while ReLU branch and bound runs in this one (``Tuning(portfolio=True)``).

Branching wins on most queries and the MILP on some (few surviving classes, small networks near
their critical radius); run one after the other, each gets only a share of the time and one of two
cores idles. The race runs the MILPs in a spawned worker (one BLAS and one solver thread), the
hardest region first (branch and bound takes them easiest first), and sends back, per region, what
:func:`reluverify.engine.milp.reachable` gave: the solver's result, its point, the model's big-M.
Nothing is trusted on the worker's word: this process applies the one trust rule
(:func:`reluverify.check.solver_proof`) to the result and the one witness check to the point, as the
sequential MILP stage does.
"""

from __future__ import annotations

import time


LP_SHARE = 0.3  # the worker's LP tightening gets at most this share of its time left (as in decide)


def _worker(conn, network, jobs, inputs, proof_shift, solver, time_limit) -> None:
    """Runs in the spawned process: LP bounds and the reachability MILP per region, in order."""
    from ..bounds import LPBounds, compute_bounds
    from ..threads import limited_blas
    from .common import Clock
    from .milp import reachable

    clock = Clock(time_limit)
    with limited_blas():  # reluverify's BLAS thread count (1 by default), as in this process
        for i, region, domain in jobs:
            if clock.expired():
                break
            conn.send(("start", i, None))
            try:
                bounds = compute_bounds(network, domain, LPBounds(time_limit=max(0.5, LP_SHARE * clock.remaining())))
                res, x, big = reachable(network, bounds, region, proof_shift, solver, max(0.1, clock.remaining()),
                                        1, inputs)
            except Exception as exc:  # the race is a helper: its failure is never the query's
                conn.send(("error", i, f"{type(exc).__name__}: {exc}"))
                continue
            conn.send(("done", i, (res, x, big)))
    conn.send(("finished", -1, None))
    conn.close()


class MilpRace:
    """The worker process and what it has reported. ``jobs``: ``(region index, proof region, bound
    domain)`` in the order to solve them.

    The worker is a fresh interpreter (``python -m reluverify.engine.portfolio FD``): the query comes
    pickled on its stdin, its reports go back over the pipe ``FD``. Not ``multiprocessing``'s spawn,
    which re-runs the caller's main script in the child (an error in any script without an
    ``if __name__ == "__main__"`` guard), nor fork, which would copy HiGHS's scheduler threads."""

    def __init__(self, network, jobs: list, inputs, proof_shift: float, solver: str, time_limit: float):
        import os
        import pickle
        import subprocess
        import sys
        from multiprocessing.connection import Connection

        r, w = os.pipe()
        env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        try:
            self._proc = subprocess.Popen([sys.executable, "-m", "reluverify.engine.portfolio", str(w)],
                                          stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL, pass_fds=(w,), env=env)
        finally:
            os.close(w)
        self._conn = Connection(r, writable=False)
        try:
            self._proc.stdin.write(pickle.dumps((network, jobs, inputs, proof_shift, solver, time_limit)))
            self._proc.stdin.close()
        except OSError:  # the worker died at once: nothing is raced
            pass
        self.results: dict = {}  # region -> (SolveResult, x or None, big-M)
        self.errors: dict = {}
        self.current: int | None = None
        self.finished = False

    def poll(self) -> None:
        """Take in whatever the worker has sent (never blocks)."""
        try:
            while not self.finished and self._conn.poll():
                kind, i, payload = self._conn.recv()
                if kind == "start":
                    self.current = i
                elif kind == "done":
                    self.results[i] = payload
                    self.current = None
                elif kind == "error":
                    self.errors[i] = payload
                    self.current = None
                else:
                    self.finished = True
        except (EOFError, OSError):  # the worker died: what it sent stays, the rest is not raced
            self.finished, self.current = True, None

    def wait(self, i: int, deadline) -> None:
        """Wait (until ``deadline`` expires) for the worker's answer on region ``i``."""
        while not deadline.expired():
            self.poll()
            if i in self.results or i in self.errors or self.finished:
                return
            self._conn.poll(min(0.2, max(0.01, deadline.remaining())))

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        try:
            self._proc.wait(timeout=5)
        except Exception:  # pragma: no cover - a worker that outlives kill is left to the OS
            pass
        self._conn.close()


class RaceClock:
    """A branch-and-bound budget that also runs out when the race has answered for ``region``.
    ``race()`` gives the race, or None while it has not started (it may start it); looked at most
    every ``every`` seconds."""

    def __init__(self, budget, race, region: int, every: float = 0.05):
        self.budget, self.race, self.region, self.every = budget, race, region, every
        self._last = 0.0

    def answered(self) -> bool:
        now = time.perf_counter()
        if now - self._last < self.every:
            return False
        self._last = now
        race = self.race()
        if race is None:
            return False
        race.poll()
        return self.region in race.results

    def expired(self):
        return self.budget.expired() or self.answered()

    def __getattr__(self, name):  # left(), remaining(), elapsed(), t0, limit: the budget's
        return getattr(self.budget, name)


def _main(argv) -> None:
    """The worker's entry point: the query from stdin, reports to the pipe named by ``argv[1]``."""
    import pickle
    import sys
    from multiprocessing.connection import Connection

    conn = Connection(int(argv[1]), readable=False)
    try:
        _worker(conn, *pickle.loads(sys.stdin.buffer.read()))
    except Exception as exc:  # reported, never raised: the race is a helper
        conn.send(("error", -1, f"{type(exc).__name__}: {exc}"))
        conn.send(("finished", -1, None))


if __name__ == "__main__":
    import sys

    _main(sys.argv)
