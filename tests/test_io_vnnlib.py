"""Tests of the VNN-LIB reader/writer and the VNN-COMP result format (:mod:`reluverify.io.vnnlib`).

* every shared VNN-COMP 2022 property (mnist_fc, acasxu) parses, has the expected structure and
  survives read -> :func:`to_vnnlib` -> read bit for bit;
* tiny hand-written files pin the exact :class:`Region` contents of each construct;
* every malformed file raises :class:`PropertyFileError` naming the line;
* random properties round-trip (hypothesis);
* result files round-trip and are written atomically.
"""

from __future__ import annotations

import csv
import enum
import gzip
import re
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reluverify.errors import InputError, ModelFileError, PropertyFileError
from reluverify.io import read_vnnlib as lazy_read_vnnlib
from reluverify.io.vnnlib import (
    MAX_DISJUNCTS,
    format_result,
    parse_result,
    parse_vnnlib,
    read_result,
    read_vnnlib,
    to_vnnlib,
    write_result,
)
from reluverify.spec import Property, Region

from conftest import BENCHMARKS, benchmarks_reason

BENCH = BENCHMARKS / "vnncomp2022"
FIELDS = ("lower", "upper", "a_x", "a_y", "b")


def _files(bench: str) -> list[Path]:
    return sorted((BENCH / bench / "vnnlib").glob("*.vnnlib.gz"))


def _skip_without(bench: str):
    return pytest.mark.skipif(not _files(bench), reason=benchmarks_reason(f"vnncomp2022/{bench}"))


def assert_same(p: Property, q: Property) -> None:
    assert (p.n_inputs, p.n_outputs, len(p.regions)) == (q.n_inputs, q.n_outputs, len(q.regions))
    for k, (r, s) in enumerate(zip(p.regions, q.regions)):
        for f in FIELDS:
            assert np.array_equal(getattr(r, f), getattr(s, f)), f"region {k}: {f} differs"


def vnn(*lines: str) -> str:
    """A file from lines (line numbers in the tests are 1-based positions in ``lines``)."""
    return "\n".join(lines) + "\n"


def decl(n_x: int, n_y: int) -> list[str]:
    return [f"(declare-const X_{i} Real)" for i in range(n_x)] + \
           [f"(declare-const Y_{j} Real)" for j in range(n_y)]


def unit_box(n_x: int) -> list[str]:
    return [a for i in range(n_x) for a in (f"(assert (>= X_{i} 0))", f"(assert (<= X_{i} 1))")]


def rows_of(region: Region) -> list[tuple[list, list, float]]:
    return [(list(ax), list(ay), float(b)) for ax, ay, b in zip(region.a_x, region.a_y, region.b)]


# ============================================================================ shared benchmarks
@_skip_without("mnist_fc")
@pytest.mark.parametrize("path", _files("mnist_fc"), ids=lambda p: p.name)
def test_mnist_fc_properties(path):
    prop = read_vnnlib(path, n_inputs=784, n_outputs=10)
    assert prop.name == path.name[: -len(".vnnlib.gz")]
    assert (prop.n_inputs, prop.n_outputs, len(prop.regions)) == (784, 10, 9)
    with gzip.open(path, "rt") as fh:
        label = int(re.search(r"label:\s*(\d+)", fh.readline()).group(1))
    eps = float(prop.name.rsplit("_", 1)[1])
    wrong = [j for j in range(10) if j != label]
    first = prop.regions[0]
    for j, region in zip(wrong, prop.regions):
        # "Y_j >= Y_label" is stored as  Y_label - Y_j <= 0
        expected = np.zeros(10)
        expected[label], expected[j] = 1.0, -1.0
        assert region.n_rows == 1
        assert np.array_equal(region.a_y[0], expected) and region.b[0] == 0.0
        assert not region.a_x.any()
        assert np.array_equal(region.lower, first.lower) and np.array_equal(region.upper, first.upper)
    lo, hi = first.lower, first.upper
    assert np.all(lo >= 0.0) and np.all(hi <= 1.0) and np.all(lo <= hi)
    inner = (lo > 0.0) & (hi < 1.0)
    assert inner.sum() > 20  # some pixels are not clipped by [0, 1]
    np.testing.assert_allclose(hi[inner] - lo[inner], 2 * eps, atol=1e-6)
    assert np.all(hi - lo <= 2 * eps + 1e-6)
    assert_same(prop, parse_vnnlib(to_vnnlib(prop)))


# Each ACAS Xu property: its regions, each a list of (i, k) meaning the row  Y_i - Y_k <= 0
# ("Y_i is at most Y_k"), and how many distinct input boxes the regions have.
_ACAS = {
    2: ([[(1, 0), (2, 0), (3, 0), (4, 0)]], 1),  # COC is maximal
    3: ([[(0, 1), (0, 2), (0, 3), (0, 4)]], 1),  # COC is minimal
    4: ([[(0, 1), (0, 2), (0, 3), (0, 4)]], 1),  # COC is minimal (X_2 fixed to 0)
    5: ([[(k, 4)] for k in (0, 1, 2, 3)], 1),  # strong right is not minimal
    6: ([[(k, 0)] for k in (1, 2, 3, 4)] * 2, 2),  # two input boxes x COC not minimal
    7: ([[(3, 0), (3, 1), (3, 2)], [(4, 0), (4, 1), (4, 2)]], 1),  # strong left/right minimal
    8: ([[(k, 0), (k, 1)] for k in (2, 3, 4)], 1),  # weak left / right / strong ... minimal
    9: ([[(k, 3)] for k in (0, 1, 2, 4)], 1),  # strong left is not minimal
    10: ([[(k, 0)] for k in (1, 2, 3, 4)], 1),  # COC is not minimal
}


@_skip_without("acasxu")
@pytest.mark.parametrize("number", range(1, 11), ids=lambda n: f"prop_{n}")
def test_acasxu_properties(number):
    path = BENCH / "acasxu" / "vnnlib" / f"prop_{number}.vnnlib.gz"
    prop = read_vnnlib(path, n_inputs=5, n_outputs=5)
    assert prop.name == f"prop_{number}" and prop.notes == ()
    for region in prop.regions:
        assert np.all(region.lower <= region.upper) and not region.a_x.any()
        assert np.all(np.abs(region.lower) <= 0.71) and np.all(np.abs(region.upper) <= 0.71)
    if number == 1:  # COC >= 3.991125645861615  ->  -Y_0 <= -3.99...
        (region,) = prop.regions
        assert rows_of(region) == [([0.0] * 5, [-1.0, 0, 0, 0, 0], -3.991125645861615)]
        assert region.lower.tolist() == [0.6, -0.5, -0.5, 0.45, -0.5]
        assert region.upper.tolist() == [0.679857769, 0.5, 0.5, 0.5, -0.45]
    else:
        expected, n_boxes = _ACAS[number]
        assert len(prop.regions) == len(expected)
        for region, pairs in zip(prop.regions, expected):
            want = []
            for i, k in pairs:
                a_y = [0.0] * 5
                a_y[i], a_y[k] = 1.0, -1.0
                want.append(([0.0] * 5, a_y, 0.0))
            assert rows_of(region) == want
        boxes = {(r.lower.tobytes(), r.upper.tobytes()) for r in prop.regions}
        assert len(boxes) == n_boxes
    if number == 4:
        assert prop.regions[0].lower[2] == prop.regions[0].upper[2] == 0.0
    if number == 6:  # an input disjunction: X_1 in [0.111, 0.5] or in [-0.5, -0.111]
        a, b = prop.regions[0], prop.regions[4]
        assert a.lower[1] == 0.11140846 and a.upper[1] == 0.499999896
        assert b.lower[1] == -0.499999896 and b.upper[1] == -0.11140846
        assert np.array_equal(np.delete(a.lower, 1), np.delete(b.lower, 1))
    assert_same(prop, parse_vnnlib(to_vnnlib(prop)))


@_skip_without("acasxu")
def test_acasxu_instances_reference_existing_properties():
    with open(BENCH / "acasxu" / "instances.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows
    used: dict[str, int] = {}
    for onnx, vnnlib, _timeout in rows:
        assert (BENCH / "acasxu" / (vnnlib + ".gz")).exists() or (BENCH / "acasxu" / vnnlib).exists()
        used[vnnlib] = used.get(vnnlib, 0) + 1
    # properties 1-4 are checked on all 45 networks, 5-10 on one network each
    assert [used[f"vnnlib/prop_{n}.vnnlib"] for n in range(1, 11)] == [45] * 4 + [1] * 6


# ============================================================================ hand-written files
def test_box_and_row_exact():
    prop = parse_vnnlib(vnn(
        "; a tiny property",
        *decl(2, 2),
        "(assert (>= X_0 -1.5))  ; trailing comment",
        "(assert (<= X_0 0.25))",
        "(assert (<= X_1 1))",
        "(assert (>= X_1 -1))",
        "(assert (<= Y_1 Y_0))",
    ), name="tiny")
    assert (prop.n_inputs, prop.n_outputs, prop.name, prop.notes) == (2, 2, "tiny", ())
    (r,) = prop.regions
    assert r.lower.tolist() == [-1.5, -1.0] and r.upper.tolist() == [0.25, 1.0]
    assert rows_of(r) == [([0.0, 0.0], [-1.0, 1.0], 0.0)]


@pytest.mark.parametrize("op, rows, strict", [
    ("<=", [([0.0], [1.0, -1.0], 2.0)], False),
    ("<", [([0.0], [1.0, -1.0], 2.0)], True),
    (">=", [([0.0], [-1.0, 1.0], -2.0)], False),
    (">", [([0.0], [-1.0, 1.0], -2.0)], True),
    ("=", [([0.0], [1.0, -1.0], 2.0), ([0.0], [-1.0, 1.0], -2.0)], False),
])
def test_each_comparison(op, rows, strict):
    prop = parse_vnnlib(vnn(*decl(1, 2), *unit_box(1), f"(assert ({op} Y_0 (+ Y_1 2)))"))
    (r,) = prop.regions
    assert rows_of(r) == rows
    assert bool(prop.notes) == strict
    if strict:
        assert "line 6" in prop.notes[0] and "non-strict" in prop.notes[0]


def test_strict_note_recorded_once():
    prop = parse_vnnlib(vnn(*decl(1, 1), "(assert (> X_0 0))", "(assert (< X_0 1))", "(assert (< Y_0 0))"))
    assert len(prop.notes) == 1 and "line 3" in prop.notes[0]
    assert prop.regions[0].lower.tolist() == [0.0] and prop.regions[0].upper.tolist() == [1.0]


def test_equality_on_an_input_fixes_it():
    prop = parse_vnnlib(vnn(*decl(2, 1), "(assert (= X_0 0.5))", "(assert (<= 0 X_1 1))"))
    r = prop.regions[0]
    assert r.lower.tolist() == [0.5, 0.0] and r.upper.tolist() == [0.5, 1.0] and r.n_rows == 0


def test_linear_terms_plus_minus_times_divide():
    prop = parse_vnnlib(vnn(
        *decl(2, 3), *unit_box(2),
        "(assert (<= (+ (* 2 Y_0) (- Y_1) (* Y_2 -3) 1.5) (- X_0 X_1 0.5)))",
        "(assert (>= (/ (+ Y_0 Y_0) 4) (* 2 (- 1 Y_1))))",
    ))
    # 2 Y_0 - Y_1 - 3 Y_2 + 1.5 - X_0 + X_1 + 0.5 <= 0
    # 2 - 2 Y_1 - 0.5 Y_0 <= 0
    assert rows_of(prop.regions[0]) == [([-1.0, 1.0], [2.0, -1.0, -3.0], -2.0),
                                        ([0.0, 0.0], [-0.5, -2.0, 0.0], -2.0)]


@pytest.mark.parametrize("text, value", [
    ("1e-3", 1e-3), ("-2.5E+2", -250.0), (".5", 0.5), ("+3", 3.0), ("5.", 5.0), ("-.25e1", -2.5),
    ("0.029999999329447746", 0.029999999329447746), ("(- 7)", -7.0), ("(- 1e-300)", -1e-300),
])
def test_numbers(text, value):
    prop = parse_vnnlib(vnn(*decl(1, 1), f"(assert (<= X_0 {text}))", "(assert (>= X_0 -1e9))"))
    assert prop.regions[0].upper[0] == value


def test_scaled_single_input_atoms_become_bounds_rounded_outward():
    prop = parse_vnnlib(vnn(*decl(2, 1), "(assert (>= (* 2 X_0) 1))", "(assert (<= (* X_0 4) 3))",
                            "(assert (<= (* 3 X_1) 1))", "(assert (<= (* -3 X_1) 1))"))
    r = prop.regions[0]
    assert r.lower[0] == 0.5 and r.upper[0] == 0.75 and r.n_rows == 0
    assert Fraction(float(r.upper[1])) >= Fraction(1, 3) > Fraction(float(np.nextafter(r.upper[1], 0)))
    assert Fraction(float(r.lower[1])) <= Fraction(-1, 3) < Fraction(float(np.nextafter(r.lower[1], 0)))


def test_single_output_atoms_stay_rows_and_duplicates_merge():
    prop = parse_vnnlib(vnn(*decl(1, 2), *unit_box(1), "(assert (>= Y_1 3))", "(assert (<= 3 Y_1))",
                            "(assert (and (<= (+ X_0 Y_0) 1) (<= (+ Y_0 X_0) 1)))"))
    assert rows_of(prop.regions[0]) == [([0.0], [0.0, -1.0], -3.0), ([1.0], [1.0, 0.0], 1.0)]


def test_nested_and_or_to_dnf():
    prop = parse_vnnlib(vnn(*decl(1, 3), *unit_box(1),
                            "(assert (or (and (<= Y_0 Y_1) (or (<= Y_1 Y_2) (<= Y_2 Y_0)))",
                            "            (and (and) (>= Y_0 1))))"))
    got = [rows_of(r) for r in prop.regions]
    assert got == [
        [([0.0], [1.0, -1.0, 0.0], 0.0), ([0.0], [0.0, 1.0, -1.0], 0.0)],
        [([0.0], [1.0, -1.0, 0.0], 0.0), ([0.0], [-1.0, 0.0, 1.0], 0.0)],
        [([0.0], [-1.0, 0.0, 0.0], -1.0)],
    ]


def test_cross_product_of_two_or_asserts_keeps_order():
    prop = parse_vnnlib(vnn(
        *decl(1, 2),
        "(assert (or (and (>= X_0 0) (<= X_0 1)) (and (>= X_0 2) (<= X_0 3))))",
        "(assert (or (<= Y_0 10) (<= Y_1 20)))",
        "(assert (<= Y_0 Y_1))",
    ))
    assert [(r.lower[0], r.upper[0]) for r in prop.regions] == [(0, 1), (0, 1), (2, 3), (2, 3)]
    b = [r.b.tolist() for r in prop.regions]
    assert b == [[10.0, 0.0], [20.0, 0.0], [10.0, 0.0], [20.0, 0.0]]
    assert prop.regions[1].a_y.tolist() == [[0.0, 1.0], [1.0, -1.0]]


def test_unreachable_disjuncts_are_dropped_with_a_note():
    prop = parse_vnnlib(vnn(
        *decl(1, 1),
        "(assert (or (and (>= X_0 1) (<= X_0 0))",  # empty box
        "            (and (>= X_0 0) (<= X_0 1) (<= 1 0))",  # false constant atom (line 4)
        "            (and (>= X_0 0) (<= X_0 1) (<= 0 1) (<= (+ Y_0 (- Y_0)) 0))",  # true constants
        "            (and (>= X_0 0) (<= X_0 2) (<= Y_0 5))))",
    ))
    assert [r.upper[0] for r in prop.regions] == [1.0, 2.0]
    assert prop.regions[0].n_rows == 0 and rows_of(prop.regions[1]) == [([0.0], [1.0], 5.0)]
    assert len(prop.notes) == 2
    assert "disjunct 1 of 4" in prop.notes[0] and "empty" in prop.notes[0]
    assert "disjunct 2 of 4" in prop.notes[1] and "line 4" in prop.notes[1]


def test_all_unreachable_keeps_regions():
    prop = parse_vnnlib(vnn(*decl(2, 1), "(assert (or (and (>= X_0 1) (<= X_0 0))",
                            "(and (>= X_0 0) (<= X_0 1) (>= X_1 0) (<= X_1 1) (<= 2 1))))"))
    assert len(prop.regions) == 2 and "unsat" in prop.notes[0]
    first, second = prop.regions
    assert first.empty and np.all(np.isfinite(first.lower)) and np.all(np.isfinite(first.upper))
    assert not second.empty and rows_of(second) == [([0.0, 0.0], [0.0], -1.0)]
    assert not prop.satisfied_by([0.5, 0.5], [0.0])


def test_ignored_commands_declare_fun_and_gzip(tmp_path):
    text = vnn("(set-logic QF_LRA)", "(declare-fun X_0 () Real)", "(declare-const Y_0 Real)",
               "(assert (and (>= X_0 0) (<= X_0 1) (<= Y_0 0)))", "(check-sat)", "(exit)")
    plain = parse_vnnlib(text)
    gz = tmp_path / "p.vnnlib.gz"
    gz.write_bytes(gzip.compress(text.encode()))
    hidden = tmp_path / "p2.vnnlib"  # gzip recognised by its magic bytes
    hidden.write_bytes(gzip.compress(text.encode()))
    raw = tmp_path / "p3.vnnlib"
    raw.write_text(text)
    for source in (gz, hidden, str(raw)):
        prop = read_vnnlib(source)
        assert_same(plain, prop)
    assert read_vnnlib(gz).name == "p" and read_vnnlib(raw, name="mine").name == "mine"
    assert_same(plain, read_vnnlib(text))  # text is recognised as text
    assert_same(plain, lazy_read_vnnlib(gz))


def test_size_checks():
    text = vnn(*decl(2, 3), *unit_box(2))
    assert parse_vnnlib(text, n_inputs=2, n_outputs=3).n_outputs == 3
    with pytest.raises(PropertyFileError, match=r"line 2: .*2 inputs .*5 were expected"):
        parse_vnnlib(text, n_inputs=5)
    with pytest.raises(PropertyFileError, match=r"line 5: .*3 outputs .*2 were expected"):
        parse_vnnlib(text, n_outputs=2)


def test_missing_file_and_bad_gzip(tmp_path):
    with pytest.raises(PropertyFileError, match="cannot read") as exc:
        read_vnnlib(tmp_path / "nope.vnnlib")
    assert isinstance(exc.value, ModelFileError)
    bad = tmp_path / "bad.vnnlib.gz"
    bad.write_bytes(b"\x1f\x8bnot really gzip")
    with pytest.raises(PropertyFileError, match="gzip"):
        read_vnnlib(bad)


# ============================================================================ malformed files
_D = decl(2, 1)  # lines 1-3
_BOX = unit_box(2)  # lines 4-7

MALFORMED = {
    "extra-close-paren": (vnn(*_D, "(assert (<= X_0 1)))"), 4, "unbalanced"),
    "unclosed-paren": (vnn(*_D, "(assert (<= X_0", "  1)"), 4, "never closed"),
    "unknown-command": (vnn(*_D, "(define-fun f () Real 1.0)"), 4, "unknown or unsupported command"),
    "unknown-formula-op": (vnn(*_D, *_BOX, "(assert (not (<= Y_0 1)))"), 8, "'not'"),
    "unknown-term-op": (vnn(*_D, *_BOX, "(assert (<= (abs Y_0) 1))"), 8, "'abs'"),
    "undeclared-variable": (vnn(*_D, *_BOX, "(assert (<= Y_3 1))"), 8, "undeclared variable Y_3"),
    "declared-after-use": (vnn("(declare-const X_0 Real)", "(assert (<= X_1 1))",
                               "(declare-const X_1 Real)"), 2, "undeclared variable X_1"),
    "non-real-sort": (vnn("(declare-const X_0 Real)", "(declare-const Y_0 Int)"), 2, "only Real"),
    "bad-number": (vnn(*_D, "(assert (<= X_0 1.2.3))"), 4, "malformed number"),
    "number-out-of-range": (vnn(*_D, "(assert (<= X_0 1e999))"), 4, "out of the float64 range"),
    "unknown-symbol": (vnn(*_D, "(assert (<= X_0 inf))"), 4, "unknown symbol"),
    "empty-file": (vnn("; only a comment", ""), 1, "empty file"),
    "assert-arity": (vnn(*_D, "(assert (<= X_0 1) (>= X_0 0))"), 4, "exactly one formula"),
    "comparison-arity": (vnn(*_D, "(assert (<= X_0))"), 4, "at least two terms"),
    "empty-or": (vnn(*_D, "(assert (or))"), 4, "at least one formula"),
    "nonlinear": (vnn(*_D, *_BOX, "(assert (<= (* X_0 Y_0) 1))"), 8, "nonlinear"),
    "division-by-zero": (vnn(*_D, *_BOX, "(assert (<= (/ Y_0 0) 1))"), 8, "division by zero"),
    "bad-variable-name": (vnn("(declare-const X_0_1 Real)"), 1, "unsupported variable name"),
    "leading-zero-index": (vnn("(declare-const X_01 Real)"), 1, "unsupported variable name"),
    "other-variable-name": (vnn("(declare-const Z_0 Real)"), 1, "unsupported variable name"),
    "declared-twice": (vnn(*_D, "(declare-const X_1 Real)"), 4, r"declared twice \(first on line 2\)"),
    "atom-at-top-level": (vnn(*_D, "assert"), 4, "expected a command"),
    "formula-is-a-symbol": (vnn(*_D, "(assert true)"), 4, "expected a formula"),
    "missing-upper-bound": (vnn(*_D, "(assert (>= X_0 0))", "(assert (>= X_1 0))", "(assert (<= X_1 1))"),
                            1, r"X_0 \(declared on line 1\) has no finite upper bound"),
    "missing-bound-in-one-disjunct": (vnn(*_D, "(assert (>= X_0 0))", "(assert (<= X_0 1))",
                                          "(assert (or (and (>= X_1 0) (<= X_1 1)) (>= X_1 0)))"),
                                      2, "X_1 .*upper bound in disjunct 2 of 2"),
    "no-inputs": (vnn("(declare-const Y_0 Real)", "(assert (<= Y_0 1))"), 2, "no input variables"),
    "no-asserts": (vnn(*_D), 3, "asserts nothing"),
    "too-many-disjuncts": (vnn("(declare-const X_0 Real)",
                               *["(assert (or (<= X_0 1) (>= X_0 0)))"] * 14), 15, "exceed 10000"),
    "quoted-symbol": (vnn(*_D, '(assert (<= X_0 "1"))'), 4, "unknown symbol"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_files_name_file_and_line(case):
    text, line, pattern = MALFORMED[case]
    with pytest.raises(PropertyFileError) as exc:
        parse_vnnlib(text, name=f"{case}.vnnlib")
    message = str(exc.value)
    assert message.startswith(f"{case}.vnnlib, line {line}: "), message
    assert exc.value.line == line and exc.value.source == f"{case}.vnnlib"
    assert re.search(pattern, message), message


def test_malformed_file_on_disk_names_the_path(tmp_path):
    path = tmp_path / "broken.vnnlib"
    path.write_text(vnn(*_D, "(assert (<= X_0 1)))"))
    with pytest.raises(PropertyFileError, match=re.escape(f"{path}, line 4: ")):
        read_vnnlib(path)


def test_disjunct_cap_constant():
    assert MAX_DISJUNCTS == 10_000
    # 2**13 = 8192 disjuncts stay under the cap
    text = vnn("(declare-const X_0 Real)", *["(assert (or (<= X_0 1) (>= X_0 0)))"] * 13)
    with pytest.raises(PropertyFileError, match="no finite"):  # parses, then fails on bounds
        parse_vnnlib(text)


# ============================================================================ writer round trip
def _coef():
    return st.one_of(st.sampled_from([0.0, 1.0, -1.0, 0.1, -2.5]),
                     st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False))


@st.composite
def properties(draw):
    n_in = draw(st.integers(1, 4))
    n_out = draw(st.integers(1, 4))
    n_regions = draw(st.integers(1, 4))
    bound = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)

    def box():
        a = np.array(draw(st.lists(bound, min_size=n_in, max_size=n_in)))
        b = np.array(draw(st.lists(bound, min_size=n_in, max_size=n_in)))
        return np.minimum(a, b), np.maximum(a, b)

    shared = box() if draw(st.booleans()) else None
    regions = []
    for _ in range(n_regions):
        lo, hi = shared if shared is not None else box()
        rows = {}
        for _ in range(draw(st.integers(0, 3))):
            a_x = [draw(_coef()) + 0.0 for _ in range(n_in)]
            a_y = [draw(_coef()) + 0.0 for _ in range(n_out)]
            if not any(a_y):  # a row on one input alone would read back as a box bound
                a_y[draw(st.integers(0, n_out - 1))] = draw(st.sampled_from([1.0, -1.0, 3.25]))
            b = draw(st.one_of(st.just(0.0), bound)) + 0.0
            rows[(tuple(a_x), tuple(a_y), b)] = None  # reading merges duplicate rows
        rows = list(rows)
        regions.append(Region(lo, hi, np.array([r[0] for r in rows]).reshape(len(rows), n_in),
                              np.array([r[1] for r in rows]).reshape(len(rows), n_out),
                              np.array([r[2] for r in rows])))
    return Property(n_in, n_out, tuple(regions), name="random")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(properties())
def test_random_property_round_trip(prop):
    text = to_vnnlib(prop)
    back = parse_vnnlib(text, n_inputs=prop.n_inputs, n_outputs=prop.n_outputs)
    assert_same(prop, back)
    assert_same(back, parse_vnnlib(to_vnnlib(back)))


def test_writer_shapes():
    shared = parse_vnnlib(vnn(*decl(1, 2), *unit_box(1), "(assert (or (<= Y_0 Y_1) (<= (* 2 Y_1) 0.1)))"))
    text = to_vnnlib(shared)
    assert "(assert (<= X_0 1.0))" in text and "(assert (>= X_0 0.0))" in text
    assert "(and (<= Y_0 Y_1))" in text and "(and (<= (* 2.0 Y_1) 0.1))" in text
    separate = parse_vnnlib(vnn(*decl(1, 1), "(assert (or (and (>= X_0 0) (<= X_0 1)) "
                                             "(and (>= X_0 2) (<= X_0 3) (>= Y_0 1))))"))
    text = to_vnnlib(separate)
    assert "(and (<= X_0 3.0) (>= X_0 2.0) (<= (- Y_0) -1.0))" in text
    assert_same(separate, parse_vnnlib(text))
    with pytest.raises(InputError):
        to_vnnlib("not a property")


# ============================================================================ result files
class _Verdict(str, enum.Enum):
    SAT = "sat"
    UNSAT = "unsat"


def test_format_and_parse_result_round_trip(tmp_path):
    x = np.array([0.1, -1e-300, 2.0 / 3.0, 5e-324])
    y = np.array([-0.0, 1e300, 123456.789])
    text = format_result("sat", x, y)
    lines = text.splitlines()
    assert lines[:3] == ["sat", "(", "(X_0 0.1)"] and lines[-1] == ")" and len(lines) == 3 + 4 + 3
    assert "(Y_2 123456.789)" in lines
    verdict, x2, y2 = parse_result(text)
    assert verdict == "sat" and np.array_equal(x, x2) and np.array_equal(y, y2)
    for v in ("unsat", "timeout", "unknown", "error", _Verdict.UNSAT, "UNSAT"):
        assert format_result(v) == str(getattr(v, "value", v)).lower() + "\n"
        assert parse_result(format_result(v)) == (str(getattr(v, "value", v)).lower(), None, None)
    assert format_result(_Verdict.SAT, [1.0]) == "sat\n(\n(X_0 1.0)\n)\n"
    assert parse_result("sat\n(\n(X_0 1.0)\n)\n") == ("sat", np.array([1.0]), None)


def test_parse_result_other_layouts():
    verdict, x, y = parse_result("violated\n((X_0 0.5)\n (X_1 (- 2))\n (Y_0 -1e-3))\n")
    assert verdict == "sat" and x.tolist() == [0.5, -2.0] and y.tolist() == [-1e-3]
    assert parse_result("; comment\n\nholds\n") == ("unsat", None, None)
    assert parse_result("sat\n") == ("sat", None, None)


@pytest.mark.parametrize("text, line, pattern", [
    ("", 1, "empty result"),
    ("maybe\n", 1, "unknown verdict"),
    ("unsat\n((X_0 1))\n", 2, "unexpected content"),
    ("sat\n(\n(X_0 1)\n(X_0 2)\n)\n", 4, "given twice"),
    ("sat\n(\n(X_0 1 2)\n)\n", 3, "expected a pair"),
    ("sat\n(\n(Z_0 1)\n)\n", 3, "unknown variable"),
    ("sat\n(\n(X_0 abc)\n)\n", 3, "unknown symbol"),
    ("sat\n(\n(X_0 1)\n", 2, "never closed"),
    ("sat\n(\n(X_1 1)\n)\n", None, "lacks X_0"),
    ("sat\n(\n(Y_0 1)\n)\n", None, "no input values"),
])
def test_parse_result_errors(text, line, pattern):
    with pytest.raises(PropertyFileError, match=pattern) as exc:
        parse_result(text, "res.txt")
    assert exc.value.line == line
    if line is not None:
        assert f"res.txt, line {line}: " in str(exc.value)


@pytest.mark.parametrize("args", [("sat",), ("unsat", [1.0]), ("maybe",), ("sat", [np.nan]),
                                  ("timeout", None, [1.0])])
def test_format_result_rejects_bad_input(args):
    with pytest.raises(InputError):
        format_result(*args)


def test_write_result_atomic(tmp_path):
    path = tmp_path / "out" / "result.txt"
    path.parent.mkdir()
    path.write_text("stale content that is longer than the new one\n" * 10)
    x, y = np.linspace(-1, 1, 7), np.array([3.0, -4.5])
    assert write_result(path, "sat", x, y) == path
    assert path.read_text() == format_result("sat", x, y)
    assert [p.name for p in path.parent.iterdir()] == ["result.txt"]  # no temporary left behind
    verdict, x2, y2 = read_result(path)
    assert verdict == "sat" and np.array_equal(x, x2) and np.array_equal(y, y2)
    write_result(str(path), "timeout")
    assert read_result(path) == ("timeout", None, None)
    with pytest.raises(InputError):
        write_result(path, "nonsense")
    assert path.read_text() == "timeout\n"  # a failed write leaves the old result intact
    assert [p.name for p in path.parent.iterdir()] == ["result.txt"]
    with pytest.raises(PropertyFileError, match="cannot read"):
        read_result(tmp_path / "missing.txt")
