"""Pictures and a Markdown report of a dataset run (matplotlib is imported here, only when called).

* ``accuracy.png``: verified robust accuracy vs eps, the band between its lower bound (unknowns
  counted as not robust) and upper bound (unknowns counted as robust), and the clean accuracy;
* ``radii.png``: the certified radii: histogram and empirical CDF of the exact minimal distortion
  and of its proven lower bound (``radius=True``); without radii, the CDF of the largest eps each
  sample was proved robust at (a lower bound of its radius);
* ``gallery.png``: the smallest adversarial examples (original, perturbation, adversarial);
* ``report.md``: settings, the per-eps table, what decided the queries, radius statistics, the
  pictures; ``report.html``: the same as one self-contained page (pictures inlined).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from ..errors import InputError, MissingDependencyError
from .result import MISCLASSIFIED


def _plt():
    try:
        import matplotlib
    except ImportError as exc:
        raise MissingDependencyError("the report's pictures need matplotlib: pip install 'reluverify[evaluate]' "
                                     "(or pip install matplotlib)") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def accuracy_plot(result, path) -> str:
    plt = _plt()
    by = result.by_eps()
    eps = [s["eps"] for s in by]
    lower = [100 * s["lower"] for s in by]
    upper = [100 * s["upper"] for s in by]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.fill_between(eps, lower, upper, color="tab:orange", alpha=0.3, label="unknown (upper bound)")
    ax.plot(eps, lower, "o-", color="tab:blue", label="verified robust accuracy")
    ax.plot(eps, upper, ":", color="tab:orange")
    ax.axhline(100 * result.clean_accuracy, color="gray", ls="--", lw=1, label="clean accuracy")
    ax.set_xlabel(f"eps ({result.norm})")
    ax.set_ylabel("% of samples")
    ax.set_ylim(0, 100)
    ax.set_title(f"{result.n_samples} samples")
    ax.legend(loc="lower left", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return str(path)


def radius_plot(result, path) -> str | None:
    plt = _plt()
    rr = [r for r in result.radii if r["verdict"] != MISCLASSIFIED]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    if rr:
        found = np.array([r["distance"] for r in rr if r["distance"] is not None], dtype=float)
        lower = np.array([r["lower_bound"] for r in rr if r["lower_bound"] is not None
                          and math.isfinite(r["lower_bound"])], dtype=float)
        series = [("minimal distortion (found)", found), ("proven lower bound", lower)]
        title = f"certified radii, {len(rr)} samples ({sum(bool(r['optimal']) for r in rr)} proven optimal)"
    else:  # the largest eps proved robust per sample
        best = {}
        for r in result.rows:
            if r["verdict"] == MISCLASSIFIED:
                continue
            best.setdefault(r["sample"], 0.0)
            if r["verdict"] == "robust":
                best[r["sample"]] = max(best[r["sample"]], r["eps"])
        series = [("largest eps proved robust", np.array(list(best.values()), dtype=float))]
        title = "lower bounds of the radii (from the eps grid)"
    n = max(len(rr), 1) if rr else max(len(series[0][1]), 1)
    for name, values in series:
        if values.size:
            ax1.hist(values, bins=30, alpha=0.5, label=name)
            v = np.sort(values)
            ax2.step(v, 100 * np.arange(1, v.size + 1) / n, where="post", label=name)
    ax1.set_xlabel(f"{result.norm} distance")
    ax1.set_ylabel("samples")
    ax2.set_xlabel(f"{result.norm} distance r")
    ax2.set_ylabel("% of samples with radius <= r")
    for ax in (ax1, ax2):
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return str(path)


def smallest_examples(result, k: int) -> list:
    """``[(sample, distance, x_adv, adversarial class, source)]``: the ``k`` smallest adversarial
    examples, one per sample (radius examples when there are some, else the eps rows')."""
    best: dict = {}
    for i, x in result.radius_examples.items():
        r = next((q for q in result.radii if q["sample"] == i), None)
        if r is not None and r["distance"] is not None:
            best[i] = (i, r["distance"], x, r["adversarial_class"], "minimal distortion")
    for (i, e), x in result.examples.items():
        r = next((q for q in result.rows if q["sample"] == i and q["eps"] == e), None)
        if r is None or r["verdict"] != "not_robust" or r["distance"] is None:
            continue
        if i not in best or r["distance"] < best[i][1]:
            best[i] = (i, r["distance"], x, r["adversarial_class"], f"eps {e:g}")
    return sorted(best.values(), key=lambda t: t[1])[:k]


def gallery_plot(result, path, k: int = 8) -> str | None:
    shape = tuple(result.input_shape or ())
    ex = smallest_examples(result, k)
    if not ex or result.X is None or len(shape) != 2 or result.X.shape[1] != shape[0] * shape[1]:
        return None
    plt = _plt()
    labels = {r["sample"]: r["label"] for r in result.rows}
    fig, axes = plt.subplots(3, len(ex), figsize=(1.6 * len(ex) + 0.6, 5.2), squeeze=False)
    for col, (i, d, x, cls, src) in enumerate(ex):
        x0 = result.X[i]
        delta = x - x0
        m = max(float(np.abs(delta).max()), 1e-12)  # not a tolerance: a colour scale for an all-zero change
        for row, (img, cmap, lo, hi) in enumerate(((x0, "gray", 0, 1), (delta, "seismic", -m, m), (x, "gray", 0, 1))):
            ax = axes[row][col]
            ax.imshow(img.reshape(shape), cmap=cmap, vmin=lo, vmax=hi)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[0][col].set_title(f"#{i}: {labels.get(i, '?')} -> {cls}", fontsize=8)
        axes[1][col].set_title(f"{result.norm} {d:.4f}", fontsize=8)
    for row, name in enumerate(("original", "change", "adversarial")):
        axes[row][0].set_ylabel(name, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return str(path)


def write_report(result, folder, images: int = 8) -> dict:
    """Write the pictures and ``report.md`` into ``folder`` (created); returns ``{name: path}``."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"the report folder {folder} is a file; name a folder")
    folder.mkdir(parents=True, exist_ok=True)
    files = {"accuracy": accuracy_plot(result, folder / "accuracy.png"),
             "radii": radius_plot(result, folder / "radii.png")}
    g = gallery_plot(result, folder / "gallery.png", images) if images else None
    if g:
        files["gallery"] = g
    s = result.settings
    lines = ["# Robustness of a data set", "",
             f"{result.n_samples} samples, eps {', '.join(f'{e:g}' for e in result.eps)} ({result.norm}), "
             f"solver {s.get('solver')}, {s.get('time_limit')} s per query, executor {s.get('executor', '?')}; "
             f"{result.wall_s:.1f} s wall time" + (f" (store `{result.store}`)" if result.store else "") + ".", "",
             f"Clean accuracy: {result.clean_accuracy:.1%}. Verified robust accuracy per eps (a range where "
             "queries stayed unknown: the lower end counts them as not robust, the upper end as robust):", "",
             result.table(), ""]
    if result.stage_counts:
        lines += ["What decided the queries of this run (rows computed now, not read back from the store):", "",
                  "| stage | queries |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in sorted(result.stage_counts.items(), key=lambda kv: -kv[1])]
        lines.append("")
    rs = result.radius_stats()
    if rs:
        lines += [f"Certified radii (exact minimal {result.norm} distortion, `minimal_distortion`): "
                  f"{rs['optimal']} of {rs['samples']} proven optimal ({rs['optimal_share']:.1%}); median distance "
                  f"{rs['median_distance']:.4g}, median proven lower bound {rs['median_lower_bound']:.4g}, "
                  f"median time {rs['median_time_s']:.2f} s.", ""]
    lines += ["![verified robust accuracy](accuracy.png)", "", "![certified radii](radii.png)", ""]
    if g:
        lines += [f"The {len(smallest_examples(result, images))} smallest adversarial examples (original, change, "
                  "adversarial; each checked by a float64 forward pass):", "", "![gallery](gallery.png)", ""]
    lines += [f"Model hash `{s.get('model_hash', '')[:16]}`, data hash `{s.get('data_hash', '')[:16]}`.", ""]
    md = folder / "report.md"
    md.write_text("\n".join(lines), encoding="utf-8")
    files["markdown"] = str(md)
    html = folder / "report.html"
    html.write_text(_html(lines, folder), encoding="utf-8")
    files["html"] = str(html)
    return {k: os.fspath(v) for k, v in files.items() if v}


def _html(lines: list, folder: Path) -> str:
    """The Markdown lines as one self-contained HTML page (tables, paragraphs, pictures inlined)."""
    import base64
    import html as h
    import re

    out = ["<!doctype html><html><head><meta charset='utf-8'><title>Robustness of a data set</title>",
           "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}table{border-collapse:collapse}"
           "td,th{border:1px solid #999;padding:.2em .6em;text-align:right}img{max-width:100%}</style></head><body>"]
    table: list = []

    def inline(text):
        return re.sub(r"`([^`]*)`", r"<code>\1</code>", h.escape(text))

    def flush():
        if table:
            rows = [r for r in table if not set(r.replace("|", "").strip()) <= set("-: ")]
            out.append("<table>")
            for k, r in enumerate(rows):
                cells = [c.strip() for c in r.strip().strip("|").split("|")]
                tag = "th" if k == 0 else "td"
                out.append("<tr>" + "".join(f"<{tag}>{inline(c)}</{tag}>" for c in cells) + "</tr>")
            out.append("</table>")
            table.clear()

    for line in lines:
        if line.startswith("|"):
            table.append(line)
            continue
        flush()
        m = re.match(r"!\[(.*)\]\((.*)\)", line)
        if line.startswith("# "):
            out.append(f"<h1>{inline(line[2:])}</h1>")
        elif m and (folder / m.group(2)).exists():
            data = base64.b64encode((folder / m.group(2)).read_bytes()).decode()
            out.append(f"<p><img alt='{h.escape(m.group(1))}' src='data:image/png;base64,{data}'></p>")
        elif line.strip():
            out.append(f"<p>{inline(line)}</p>")
    flush()
    out.append("</body></html>")
    return "\n".join(out)
