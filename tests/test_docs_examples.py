"""Every ```python block of README.md and docs/quickstart.md runs as written.

The blocks of one file run in order in one namespace (later blocks use names from earlier ones),
in an empty temporary folder. A block right after ``<!-- needs: SUBDIR -->`` needs that folder of
the shared benchmark files (see conftest.py): it must stand alone (its own imports), runs in a
fresh namespace with SUBDIR as the working folder, and is skipped with the usual reason when the
files are absent. ```bash blocks are not run; the install commands are checked as text. The
results the documents state in words (STATED) are checked too.

``python tests/test_docs_examples.py`` runs the same blocks statement by statement and prints how
long each statement took (the times the documents quote).
"""

from __future__ import annotations

import ast
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ("README.md", "docs/quickstart.md")
LANGUAGES = ("python", "bash")
NEEDS = re.compile(r"^<!--\s*needs:\s*(\S+)\s*-->$")


@dataclass
class Block:
    doc: str
    line: int  # 1-based line of the block's first code line in the document
    lang: str
    code: str
    needs: str | None

    @property
    def name(self) -> str:
        return f"{self.doc}:{self.line}"


def code_blocks(doc: str) -> list[Block]:
    """The fenced code blocks of ``doc`` (a path relative to the repository root), in order."""
    lines = (ROOT / doc).read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        if lines[i].startswith("```"):
            lang = lines[i][3:].strip()
            previous = next((s.strip() for s in reversed(lines[:i]) if s.strip()), "")
            marker = NEEDS.match(previous)
            end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("```")), None)
            assert end is not None, f"{doc}:{i + 1}: code block never closed"
            blocks.append(Block(doc, i + 2, lang, "\n".join(lines[i + 1:end]) + "\n",
                                marker.group(1) if marker else None))
            i = end + 1
        else:
            i += 1
    return blocks


def compiled(block: Block, source: str | None = None, first_line: int | None = None):
    """The block compiled so that tracebacks name the document's own line numbers."""
    source = block.code if source is None else source
    first_line = block.line if first_line is None else first_line
    return compile("\n" * (first_line - 1) + source, block.name, "exec")


def python_blocks(doc: str) -> list[Block]:
    return [b for b in code_blocks(doc) if b.lang == "python"]


NEEDING = [b for doc in DOCS for b in python_blocks(doc) if b.needs]

# what the documents say about the result of their last block (the Pyomo embedding), and of the
# README's ONNX example
STATED = {"README.md": ("optimal", -3.49), "docs/quickstart.md": ("optimal", -1.52), "README.md:needs": "sat"}


@pytest.fixture
def quiet_plots(monkeypatch, tmp_path):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.chdir(tmp_path)


def test_every_block_is_python_or_bash():
    """A block with no or another language would escape the examples test."""
    for doc in DOCS:
        blocks = code_blocks(doc)
        assert len([b for b in blocks if b.lang == "python"]) >= 2, doc
        for b in blocks:
            assert b.lang in LANGUAGES, f"{b.name}: code block language {b.lang!r}, not one of {LANGUAGES}"


@pytest.mark.parametrize("doc", DOCS)
def test_python_blocks_run(doc, quiet_plots):
    namespace = {"__name__": "__main__"}
    blocks = [b for b in python_blocks(doc) if not b.needs]
    assert blocks
    for b in blocks:
        exec(compiled(b), namespace)
    res = namespace["res"]
    assert (str(res.status), round(res.objective, 2)) == STATED[doc]


@pytest.mark.parametrize("block", NEEDING, ids=lambda b: b.name)
def test_python_blocks_needing_benchmarks_run(block, monkeypatch):
    from conftest import BENCHMARKS, benchmarks_present, benchmarks_reason

    if not benchmarks_present(block.needs):
        pytest.skip(benchmarks_reason(block.needs))
    if "from_onnx" in block.code:
        pytest.importorskip("onnx", reason="onnx is not installed; the ONNX importer needs it")
    monkeypatch.chdir(BENCHMARKS / block.needs)
    namespace = {"__name__": "__main__"}
    exec(compiled(block), namespace)
    if "check_property" in block.code:
        assert str(namespace["res"].verdict) == STATED[f"{block.doc}:needs"]


def test_the_readme_has_a_benchmark_example():
    assert any(b.doc == "README.md" and "from_onnx" in b.code for b in NEEDING)


def _install_commands(doc: str) -> list[str]:
    return [b.code for b in code_blocks(doc) if b.lang == "bash" and "pip install" in b.code]


@pytest.mark.parametrize("doc", DOCS)
def test_first_command_installs_the_demo_extra_and_runs_the_demo(doc):
    first = _install_commands(doc)[0]
    assert 'pip install -e ".[demo]"' in first and "reluverify demo" in first, first
    assert ".[all]" not in first


def test_the_test_command_installs_everything():
    test_cmd = [c for c in _install_commands("README.md") if "pytest" in c]
    assert test_cmd and '".[all]"' in test_cmd[0]


# ----------------------------------------------------------------------------------- timings
def _time_statements(doc: str) -> None:
    """Run ``doc``'s python blocks as the tests do, printing each statement's wall time."""
    start = os.getcwd()
    namespace = {"__name__": "__main__"}
    for b in python_blocks(doc):
        if b.needs:
            sys.path.insert(0, str(ROOT / "tests"))
            from conftest import BENCHMARKS, benchmarks_present, benchmarks_reason  # not before: imports count

            if not benchmarks_present(b.needs):
                print(f"{b.name}: skipped, {benchmarks_reason(b.needs)}")
                continue
            os.chdir(BENCHMARKS / b.needs)
            space = {"__name__": "__main__"}
        else:
            space = namespace
        total = 0.0
        for stmt in ast.parse(b.code).body:
            text = ast.get_source_segment(b.code, stmt)
            t0 = time.perf_counter()
            exec(compiled(b, text, b.line + stmt.lineno - 1), space)
            dt = time.perf_counter() - t0
            total += dt
            print(f"{b.doc}:{b.line + stmt.lineno - 1}: {dt:6.2f} s  {text.splitlines()[0][:70]}")
        print(f"{b.name}: block total {total:.2f} s\n")
        os.chdir(start)


if __name__ == "__main__":
    import subprocess
    import tempfile

    os.environ.setdefault("MPLBACKEND", "Agg")
    if sys.argv[1:2] == ["--in-process"]:
        _time_statements(sys.argv[2])
    else:
        for name in sys.argv[1:] or DOCS:  # one fresh interpreter per document: imports count
            with tempfile.TemporaryDirectory() as tmp:
                subprocess.run([sys.executable, __file__, "--in-process", name], cwd=tmp, check=True)
