"""Numbers that decide soundness live in tolerances.py, each named once, each used (issue #13, item 17)."""

import ast
import io
import pathlib
import re
import tokenize

import reluverify
from reluverify import tolerances

SRC = pathlib.Path(reluverify.__file__).parent


def _sources():
    return [p for p in sorted(SRC.rglob("*.py")) if p.name != "tolerances.py"]


def test_no_small_literal_outside_tolerances_py():
    """A literal like 1e-6 in code is a tolerance unless its line says why it is not
    (``# not a tolerance: ...``, e.g. a guard against division by zero)."""
    found = []
    for path in _sources():
        text = path.read_text()
        lines = text.splitlines()
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type == tokenize.NUMBER and re.search(r"e-\d", tok.string, re.I):
                line = lines[tok.start[0] - 1]
                if "# not a tolerance:" not in line:
                    found.append(f"{path.relative_to(SRC)}:{tok.start[0]}: {line.strip()}")
    assert not found, "name these in tolerances.py:\n" + "\n".join(found)


def test_every_named_tolerance_is_used():
    names = [n.id for node in ast.parse(pathlib.Path(tolerances.__file__).read_text()).body
             if isinstance(node, ast.Assign) for n in node.targets if isinstance(n, ast.Name)]
    assert names
    code = "\n".join(p.read_text() for p in _sources())
    unused = [n for n in names if not re.search(rf"\b{n}\b", code)]
    assert not unused, f"defined in tolerances.py and never used: {unused}"


def test_each_tolerance_has_its_reason():
    """Every constant in tolerances.py has a comment right above it (why that value)."""
    lines = pathlib.Path(tolerances.__file__).read_text().splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^[A-Z][A-Z0-9_]* = ", line):
            above = lines[i - 1].strip()
            assert above.startswith("#") or re.match(r"^[A-Z][A-Z0-9_]* = ", above), f"no reason given for {line}"
