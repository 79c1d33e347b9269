"""docs/make_tutorial.py runs every step of the tutorial (quick mode) and writes its figures."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "docs" / "make_tutorial.py"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

FIGURES = (
    "data.png", "min_l1.png", "max_confidence.png", "max_margin.png", "min_linf.png", "min_l0.png",
    "mask_top_half.png", "universal_eps0.04.png", "universal_eps0.06.png", "universal_eps0.08.png",
    "prototypes.png",
)
KEYS = (
    "config", "data", "inference", "min_l1", "max_confidence", "max_margin", "min_linf", "min_l0", "mask_top_half",
    "universal", "prototypes", "notebook", "timing",
)


def test_make_tutorial_quick(tmp_path):
    env = dict(os.environ, MPLBACKEND="Agg")
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=240, env=env, cwd=str(ROOT))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for name in FIGURES:
        path = tmp_path / name
        assert path.is_file(), f"{name} not written"
        data = path.read_bytes()
        assert data[:8] == PNG_SIGNATURE, f"{name} is not a PNG"
        assert 1000 < len(data) < 400_000, f"{name}: {len(data)} bytes"
    numbers = json.loads((tmp_path / "numbers.json").read_text())
    for key in KEYS:
        assert key in numbers, f"numbers.json lacks {key!r}"
    assert numbers["config"]["mode"] == "quick"
    assert numbers["data"]["n_test"] > 0 and 0.5 < numbers["data"]["test_accuracy"] <= 1.0
    # MILP inference reproduces the forward pass (this part does not depend on time limits)
    for dom in ("point_domain", "box_domain"):
        assert numbers["inference"][dom]["matches"] is True
        assert numbers["inference"][dom]["max_abs_error"] < 1e-6
    # proven bounds never exceed what was found
    for key in ("min_l1", "min_linf", "min_l0", "mask_top_half"):
        r = numbers[key]
        if r.get("distance") is not None and r.get("lower_bound") is not None:
            assert r["lower_bound"] <= r["distance"] + 1e-6
    assert len(numbers["prototypes"]) == 10
    for run in numbers["universal"]["runs"]:
        if run["proven_at_most"] is not None:
            assert run["n_fooled"] <= run["proven_at_most"] <= run["n_images"]
