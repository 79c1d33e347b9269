"""The durable store of a dataset run: one SQLite file (stdlib ``sqlite3``), one row per finished
(sample, eps) query and one per sample radius, each committed as soon as it is known (the cheap stages commit once per eps level, the engine once per
query).

A run killed at any moment (even by SIGKILL) keeps every committed row: SQLite's write-ahead log
makes each commit atomic and ``synchronous=FULL`` puts it on disk before the call returns, so at most
the queries in flight are lost. Running again with the same store resumes: finished queries are
read back, not recomputed.

The store also records what the rows mean -- the model's hash, the data's hash, the settings
that change a verdict (norm, solver, time limit, perturbation) and the versions -- and refuses,
with :class:`StoreMismatchError`, to add rows computed under anything else. New eps values and
``radius=True`` may be added to an existing run (they are new rows, not different ones).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path

import numpy as np

from ..errors import InputError, ReluVerifyError

SCHEMA_VERSION = 1
#: settings that must match for rows to be mixed (the rest, e.g. eps, only add rows)
IDENTITY_KEYS = ("schema", "model_hash", "data_hash", "n_samples", "norm", "solver", "time_limit",
                 "perturbation", "reluverify")


class StoreMismatchError(ReluVerifyError, ValueError):
    """The store holds a run with other settings, another model or other data than this one."""


_RECORD_COLUMNS = ("sample", "eps", "verdict", "time_s", "distance", "lower_bound", "stage", "method",
                   "label", "predicted", "adversarial_class", "message")
_RADIUS_COLUMNS = ("sample", "verdict", "distance", "lower_bound", "optimal", "time_s", "stage", "label",
                   "adversarial_class", "message")


def _blob(x) -> bytes | None:
    return None if x is None else np.asarray(x, dtype=np.float64).tobytes()


def _unblob(b) -> np.ndarray | None:
    return None if b is None else np.frombuffer(b, dtype=np.float64).copy()


class Store:
    """A run's SQLite file. ``Store(None)`` keeps everything in memory (nothing survives)."""

    def __init__(self, path=None):
        self.path = None if path is None else Path(path)
        if self.path is not None:
            if self.path.is_dir():
                raise InputError(f"the store {self.path} is a directory; name a file (e.g. runs.sqlite)")
            if not self.path.parent.exists():
                raise InputError(f"the folder of the store {self.path} does not exist; create it first")
        try:
            self.db = sqlite3.connect(":memory:" if self.path is None else os.fspath(self.path), timeout=60)
            if self.path is not None:  # one fsync per commit; as durable (the log is replayed on open)
                self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            self.db.execute(
                "CREATE TABLE IF NOT EXISTS records (sample INTEGER, eps REAL, verdict TEXT, time_s REAL, "
                "distance REAL, lower_bound REAL, stage TEXT, method TEXT, label INTEGER, predicted INTEGER, "
                "adversarial_class INTEGER, message TEXT, x_adv BLOB, finished REAL, PRIMARY KEY (sample, eps))")
            self.db.execute(
                "CREATE TABLE IF NOT EXISTS radii (sample INTEGER PRIMARY KEY, verdict TEXT, distance REAL, "
                "lower_bound REAL, optimal INTEGER, time_s REAL, stage TEXT, label INTEGER, "
                "adversarial_class INTEGER, message TEXT, x_adv BLOB, finished REAL)")
            self.db.commit()
        except sqlite3.DatabaseError as exc:
            raise InputError(f"{self.path} is not a reluverify store (SQLite said: {exc}); name a new file") from exc

    # ------------------------------------------------------------------ identity
    def meta(self) -> dict:
        return {k: json.loads(v) for k, v in self.db.execute("SELECT key, value FROM meta")}

    def claim(self, identity: dict, extra: dict) -> None:
        """Record ``identity`` (and ``extra``, informative) in a new store, or check that an
        existing store holds the same identity; :class:`StoreMismatchError` names what differs."""
        old = self.meta()
        if old:
            differ = [k for k in IDENTITY_KEYS if k in identity and old.get(k) != identity[k]]
            if differ:
                what = "; ".join(f"{k}: store has {old.get(k)!r}, this run {identity[k]!r}" for k in differ)
                raise StoreMismatchError(
                    f"the store {self.path} holds a run with different settings ({what}); its rows would "
                    "not mean the same thing. Use a new --store file, or rerun with the store's settings")
            return
        with self.db:
            for k, v in {**identity, **extra, "created": time.time()}.items():
                self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (k, json.dumps(v)))

    # ------------------------------------------------------------------ rows
    def put_records(self, records: list) -> None:
        """Commit ``records`` (dicts with the record fields and ``x_adv``) in one transaction."""
        if not records:
            return
        now = time.time()
        with self.db:
            self.db.executemany(
                f"INSERT OR REPLACE INTO records ({', '.join(_RECORD_COLUMNS)}, x_adv, finished) VALUES "
                f"({', '.join('?' * (len(_RECORD_COLUMNS) + 2))})",
                [tuple(r.get(k) for k in _RECORD_COLUMNS) + (_blob(r.get("x_adv")), now) for r in records])

    def put_radius(self, record: dict) -> None:
        with self.db:
            self.db.execute(
                f"INSERT OR REPLACE INTO radii ({', '.join(_RADIUS_COLUMNS)}, x_adv, finished) VALUES "
                f"({', '.join('?' * (len(_RADIUS_COLUMNS) + 2))})",
                tuple(record.get(k) for k in _RADIUS_COLUMNS) + (_blob(record.get("x_adv")), time.time()))

    def records(self) -> list:
        cur = self.db.execute(f"SELECT {', '.join(_RECORD_COLUMNS)}, x_adv FROM records ORDER BY sample, eps")
        return [dict(zip(_RECORD_COLUMNS, row[:-1]), x_adv=_unblob(row[-1])) for row in cur]

    def radii(self) -> list:
        cur = self.db.execute(f"SELECT {', '.join(_RADIUS_COLUMNS)}, x_adv FROM radii ORDER BY sample")
        out = []
        for row in cur:
            r = dict(zip(_RADIUS_COLUMNS, row[:-1]), x_adv=_unblob(row[-1]))
            r["optimal"] = None if r["optimal"] is None else bool(r["optimal"])
            out.append(r)
        return out

    def close(self) -> None:
        self.db.close()


def open_store(path) -> Store:
    return Store(path)
