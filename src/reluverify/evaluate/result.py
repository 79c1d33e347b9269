"""What a dataset run gives back: one record per (sample, eps), one radius per sample, summaries."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..results import ShortRepr, Verdict

#: the verdict of a sample the model already gets wrong (no perturbation needed); the others are
#: :class:`reluverify.Verdict` values (robust, not_robust, unknown)
MISCLASSIFIED = "misclassified"
VERDICTS = (Verdict.ROBUST.value, Verdict.NOT_ROBUST.value, Verdict.UNKNOWN.value, MISCLASSIFIED)
#: the fields of :attr:`EvaluationResult.rows`
FIELDS = ("sample", "eps", "verdict", "time_s", "distance", "lower_bound", "stage", "method", "label",
          "predicted", "adversarial_class", "message")
RADIUS_FIELDS = ("sample", "verdict", "distance", "lower_bound", "optimal", "time_s", "stage", "label",
                 "adversarial_class", "message")


@dataclass(repr=False)
class EvaluationResult(ShortRepr):
    """The answer of :func:`reluverify.evaluate_robustness`.

    ``rows``: one dict per (sample, eps) with :data:`FIELDS`: ``verdict`` is robust, not_robust,
    unknown or misclassified; ``distance`` the ``norm`` distance of the checked adversarial example
    (not_robust); ``lower_bound`` a proven certified radius (robust at ``eps``: ``eps``; from the
    radius search: its proven bound); ``stage`` what decided it (forward, attack, bounds, engine,
    radius, monotone) and ``method`` the engine's stage or the eps it was inferred from.
    ``radii``: with ``radius=True``, one dict per sample (:data:`RADIUS_FIELDS`): the exact minimal
    distortion found (``distance``) and its proven lower bound. ``examples[(sample, eps)]`` and
    ``radius_examples[sample]`` hold the adversarial inputs (flattened).
    """

    eps: list
    norm: str
    rows: list
    radii: list = field(default_factory=list)
    n_samples: int = 0
    wall_s: float = 0.0
    settings: dict = field(default_factory=dict)
    stage_counts: dict = field(default_factory=dict)
    examples: dict = field(default_factory=dict)
    radius_examples: dict = field(default_factory=dict)
    X: np.ndarray | None = None
    input_shape: tuple | None = None
    store: str | None = None

    # ------------------------------------------------------------------ summaries
    def by_eps(self) -> list:
        """Per eps: counts of each verdict and verified robust accuracy with its bounds: ``lower`` =
        robust / n (unknowns counted as not robust), ``upper`` = (robust + unknown) / n."""
        out = []
        for e in self.eps:
            rows = [r for r in self.rows if r["eps"] == e]
            n = len(rows)
            counts = {v: sum(r["verdict"] == v for r in rows) for v in VERDICTS}
            robust, unknown = counts["robust"], counts["unknown"]
            out.append({"eps": e, "n": n, **counts,
                        "verified_accuracy": robust / n if n else math.nan,
                        "lower": robust / n if n else math.nan,
                        "upper": (robust + unknown) / n if n else math.nan,
                        "decided": (n - unknown) / n if n else math.nan})
        return out

    @property
    def clean_accuracy(self) -> float:
        samples = {r["sample"]: r["verdict"] != MISCLASSIFIED for r in self.rows}
        return float(np.mean(list(samples.values()))) if samples else math.nan

    @property
    def complete(self) -> bool:
        """Whether every (sample, eps) query has a row (a resumed, finished run)."""
        return len(self.rows) == self.n_samples * len(self.eps)

    def radius_stats(self) -> dict:
        """Certified radii (``radius=True``): how many samples were searched, proven optimal,
        and the median found distance and proven lower bound over the correctly classified ones."""
        rr = [r for r in self.radii if r["verdict"] != MISCLASSIFIED]
        if not rr:
            return {}
        found = [r["distance"] for r in rr if r["distance"] is not None]
        lower = [r["lower_bound"] for r in rr if r["lower_bound"] is not None]
        return {"samples": len(rr), "optimal": sum(bool(r["optimal"]) for r in rr),
                "optimal_share": sum(bool(r["optimal"]) for r in rr) / len(rr),
                "median_distance": float(np.median(found)) if found else math.nan,
                "median_lower_bound": float(np.median([v for v in lower if math.isfinite(v)] or [math.nan])),
                "median_time_s": float(np.median([r["time_s"] for r in rr]))}

    def summary(self) -> str:
        parts = [f"{self.n_samples} samples x {len(self.eps)} eps ({self.norm})"]
        for s in self.by_eps():
            parts.append(f"eps {s['eps']:g}: verified robust {s['lower']:.1%}"
                         + (f"-{s['upper']:.1%}" if s["upper"] > s["lower"] else ""))
        rs = self.radius_stats()
        if rs:
            parts.append(f"radius: {rs['optimal']}/{rs['samples']} optimal, median {rs['median_distance']:.4g}")
        parts.append(f"{self.wall_s:.1f} s")
        return ", ".join(parts)

    def table(self) -> str:
        """The per-eps summary as a Markdown table."""
        lines = ["| eps | n | robust | not robust | unknown | misclassified | verified robust accuracy |",
                 "|---|---|---|---|---|---|---|"]
        for s in self.by_eps():
            acc = f"{s['lower']:.1%}" if s["upper"] == s["lower"] else f"{s['lower']:.1%} - {s['upper']:.1%}"
            lines.append(f"| {s['eps']:g} | {s['n']} | {s['robust']} | {s['not_robust']} | {s['unknown']} | "
                         f"{s['misclassified']} | {acc} |")
        return "\n".join(lines)

    # ------------------------------------------------------------------ export
    def to_pandas(self):
        """The rows as a pandas DataFrame (pandas is imported here, only when asked)."""
        try:
            import pandas as pd
        except ImportError as exc:
            from ..errors import MissingDependencyError

            raise MissingDependencyError("to_pandas needs pandas: pip install pandas (or use .rows)") from exc
        return pd.DataFrame(self.rows, columns=list(FIELDS))

    def radii_to_pandas(self):
        import pandas as pd

        return pd.DataFrame(self.radii, columns=list(RADIUS_FIELDS))

    def report(self, folder, *, images: int = 8) -> dict:
        """Write ``report.md`` and PNG pictures into ``folder`` (see :mod:`reluverify.evaluate.report`);
        returns ``{name: path}``."""
        from .report import write_report

        return write_report(self, folder, images=images)
