"""Progress of a dataset run: tqdm bars (queries and samples, with ETA) when tqdm is installed,
plain lines on stderr when asked for and tqdm is missing, else nothing. tqdm is imported only
when a run starts with progress on."""

from __future__ import annotations

import sys
import time


class Progress:
    """``mode``: None (tqdm if installed, else silent), True (tqdm, else plain text), False (silent)."""

    def __init__(self, mode, total: int, samples: int, done: int = 0):
        self.total, self.count, self.samples = total, done, 0
        self.bars = None
        self.plain = False
        self._last = 0.0
        self.t0 = time.perf_counter()
        self.counts: dict = {}
        if mode is False:
            return
        try:
            from tqdm.auto import tqdm
        except ImportError:
            self.plain = mode is True
            return
        self.bars = (tqdm(total=total, initial=done, desc="queries", unit="q", position=0, leave=True),
                     tqdm(total=samples, desc="samples", unit="s", position=1, leave=True))

    def query(self, row: dict) -> None:
        self.count += 1
        v = row["verdict"]
        self.counts[v] = self.counts.get(v, 0) + 1
        if self.bars is not None:
            self.bars[0].update(1)
            self.bars[0].set_postfix({k[:3]: c for k, c in sorted(self.counts.items())}, refresh=False)
        elif self.plain and (time.perf_counter() - self._last > 2 or self.count == self.total):
            self._last = time.perf_counter()
            sys.stderr.write(f"{self.count}/{self.total} queries, {time.perf_counter() - self.t0:.1f} s, "
                             + ", ".join(f"{k} {c}" for k, c in sorted(self.counts.items())) + "\n")
            sys.stderr.flush()

    def sample_done(self) -> None:
        self.samples += 1
        if self.bars is not None:
            self.bars[1].update(1)

    def note(self, text: str) -> None:
        if self.bars is not None:
            self.bars[0].set_description(f"queries [{text}]")
        elif self.plain:
            sys.stderr.write(f"stage: {text}\n")

    def close(self) -> None:
        if self.bars is not None:
            for b in self.bars:
                b.close()
            self.bars = None
