"""VNN-LIB property files <-> :class:`reluverify.spec.Property`, and VNN-COMP result files.

VNN-LIB (https://www.vnnlib.org) writes a verification property as a small SMT-LIB 2 script over
real variables ``X_0 .. X_{n-1}`` (the network's inputs) and ``Y_0 .. Y_{m-1}`` (its outputs)::

    (declare-const X_0 Real)
    (declare-const Y_0 Real)
    (assert (>= X_0 -1.0))
    (assert (<= X_0 1.0))
    (assert (or (and (>= Y_0 3.5)) (and (<= Y_0 -3.5))))

The asserted formula describes a *counterexample*: the file is ``sat`` when some input in the
asserted set produces an output that satisfies it. :func:`read_vnnlib` turns such a file into a
:class:`~reluverify.spec.Property` (a disjunction of :class:`~reluverify.spec.Region` objects, each
an input box plus linear rows ``a_x @ x + a_y @ y <= b``).

What is read
    * commands ``(declare-const V Real)`` (also ``(declare-fun V () Real)``) and ``(assert F)``;
      ``check-sat``, ``get-model``, ``exit``, ``set-logic``, ``set-info`` and ``set-option`` are
      accepted and ignored; any other command is an error;
    * variable names ``X_<i>`` and ``Y_<j>`` (decimal index, no leading zeros); the sort must be
      ``Real``. A variable must be declared *before* it is used (as SMT-LIB requires) and only once;
    * formulas ``(<= a b)``, ``(>= a b)``, ``(< a b)``, ``(> a b)``, ``(= a b)`` (chains such as
      ``(<= a b c)`` mean ``a <= b`` and ``b <= c``), ``(and F ...)`` (``(and)`` is true) and
      ``(or F ...)``, nested arbitrarily. Several asserts are conjoined;
    * linear terms: numbers (``1``, ``-0.5``, ``.5``, ``3e-2``; a leading sign is accepted, as the
      VNN-COMP files use it), variables, ``(+ t ...)``, ``(- t)``, ``(- t1 t2 ...)``,
      ``(* c t)`` / ``(* t c)`` (at most one factor may contain a variable) and ``(/ t c)``.

How it is stored
    Strict comparisons are stored as non-strict ones (see :mod:`reluverify.spec`) and a note is
    recorded. The formula is expanded into disjunctive normal form (at most
    :data:`MAX_DISJUNCTS` disjuncts). In each disjunct an atom that involves exactly one input
    variable and nothing else (``X_3 <= 0.5``, ``(>= (* 2 X_3) 1)``) becomes a bound of the input
    box; every other atom becomes a row. Identical rows are merged. Every input needs a finite
    lower and upper bound in every disjunct. Disjuncts that can never be reached (an empty box,
    or a constant atom such as ``0 <= -1``) are dropped with a note; if *every* disjunct is
    unreachable they are all kept (so the property is trivially ``unsat``): their boxes are
    empty, or they hold the false row ``0 <= b`` with ``b < 0``.

Numbers are read as the nearest float64, exactly like ``float(text)``. A box bound obtained by
dividing by a coefficient other than +-1 is rounded *outward* (one ulp at most) so the box always
contains the set the file describes.

Every malformed or unsupported file raises :class:`~reluverify.errors.PropertyFileError` whose
message starts with ``<file>, line <n>:``.

:func:`to_vnnlib` writes a property back (floats as ``repr`` so a read -> write -> read round trip
is exact); :func:`format_result`, :func:`write_result` and :func:`read_result` handle the
VNN-COMP result format (``sat`` + counterexample, ``unsat``, ``timeout``, ``unknown``, ``error``).
"""

from __future__ import annotations

import gzip
import math
import os
import re
import tempfile
import zlib
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import InputError, PropertyFileError
from ..spec import Property, Region

__all__ = [
    "MAX_DISJUNCTS",
    "VERDICTS",
    "format_result",
    "parse_result",
    "parse_vnnlib",
    "read_result",
    "read_vnnlib",
    "to_vnnlib",
    "write_result",
]

#: Largest number of disjuncts the DNF expansion may produce. A property with more is almost
#: surely a formula in the wrong shape (an ``and`` of many ``or``s); one MILP per disjunct at this
#: size would already be impractical.
MAX_DISJUNCTS = 10_000

#: The verdicts of the VNN-COMP result format, in the spelling written by :func:`format_result`.
VERDICTS = ("sat", "unsat", "timeout", "unknown", "error")

_IGNORED_COMMANDS = frozenset({"check-sat", "get-model", "exit", "set-logic", "set-info", "set-option"})
_COMPARISONS = frozenset({"<=", ">=", "<", ">", "="})
_NUMBER_RE = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\Z")
_LOOKS_NUMERIC_RE = re.compile(r"[+-]?\.?\d")
_VAR_RE = re.compile(r"([XY])_(0|[1-9]\d*)\Z")
_TOKEN_RE = re.compile(r"\(|\)|[^\s()]+")
_GZIP_MAGIC = b"\x1f\x8b"


# --------------------------------------------------------------------------- errors
def _error(source: str, line: int | None, message: str) -> PropertyFileError:
    where = f"{source}, line {line}" if line is not None else source
    err = PropertyFileError(f"{where}: {message}")
    err.source = source
    err.line = line
    return err


# --------------------------------------------------------------------------- s-expressions
class _Sym:
    """An atom of the s-expression: its text and the line it is on."""

    __slots__ = ("text", "line")

    def __init__(self, text: str, line: int) -> None:
        self.text = text
        self.line = line

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return self.text


class _List:
    """A parenthesised list and the line of its opening parenthesis."""

    __slots__ = ("items", "line")

    def __init__(self, line: int) -> None:
        self.items: list = []
        self.line = line

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return "(" + " ".join(map(repr, self.items)) + ")"


def _parse_sexprs(text: str, source: str) -> list:
    """Split ``text`` into top-level s-expressions, keeping line numbers; ``;`` starts a comment."""
    top: list = []
    stack: list[_List] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        cut = raw.find(";")
        body = raw if cut < 0 else raw[:cut]
        for tok in _TOKEN_RE.findall(body):
            if tok == "(":
                stack.append(_List(lineno))
            elif tok == ")":
                if not stack:
                    raise _error(source, lineno, "unbalanced parentheses: ')' without a matching '('")
                done = stack.pop()
                (stack[-1].items if stack else top).append(done)
            elif stack:
                stack[-1].items.append(_Sym(tok, lineno))
            else:
                top.append(_Sym(tok, lineno))
    if stack:
        raise _error(source, stack[-1].line,
                     f"unbalanced parentheses: the '(' opened here is never closed "
                     f"({len(stack)} still open at the end of the file)")
    return top


def _number(sym: _Sym, source: str) -> float | None:
    """The value of a numeric atom, ``None`` when the atom is not numeric at all."""
    text = sym.text
    if not _LOOKS_NUMERIC_RE.match(text):
        return None
    if not _NUMBER_RE.match(text):
        raise _error(source, sym.line, f"malformed number {text!r}")
    value = float(text)
    if not math.isfinite(value):
        raise _error(source, sym.line, f"number {text!r} is out of the float64 range")
    return value


# --------------------------------------------------------------------------- reader state
class _Reader:
    """Walks the commands of one file, keeping declarations and the DNF built so far."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.declared: dict[tuple[str, int], int] = {}  # (kind, index) -> line of declaration
        # Each disjunct is a cons list (previous, tuple_of_atoms) so that conjoining an assert
        # with a single disjunct costs O(1) per disjunct, not O(length).
        self.disjuncts: list = [None]
        self.n_asserts = 0
        self.strict_line: int | None = None

    def fail(self, line, message) -> PropertyFileError:
        return _error(self.source, line, message)

    # ---------------------------------------------------------------- commands
    def command(self, node) -> None:
        if isinstance(node, _Sym):
            raise self.fail(node.line, f"expected a command in parentheses, found {node.text!r}")
        if not node.items:
            raise self.fail(node.line, "empty command '()'")
        head = node.items[0]
        if not isinstance(head, _Sym):
            raise self.fail(node.line, "a command must start with its name, e.g. (assert ...)")
        name = head.text
        if name == "declare-const":
            if len(node.items) != 3:
                raise self.fail(node.line, "declare-const takes a name and a sort: (declare-const X_0 Real)")
            self.declare(node.items[1], node.items[2], node.line)
        elif name == "declare-fun":
            if len(node.items) != 4 or not isinstance(node.items[2], _List) or node.items[2].items:
                raise self.fail(node.line, "only constant functions are supported: (declare-fun X_0 () Real)")
            self.declare(node.items[1], node.items[3], node.line)
        elif name == "assert":
            if len(node.items) != 2:
                raise self.fail(node.line, f"assert takes exactly one formula, got {len(node.items) - 1}; "
                                           "combine several with (and ...) or use several asserts")
            self.assert_(self.dnf(node.items[1]), node.line)
        elif name in _IGNORED_COMMANDS:
            return
        else:
            raise self.fail(node.line, f"unknown or unsupported command {name!r}; VNN-LIB files use "
                                       "declare-const and assert")

    def declare(self, name_node, sort_node, line: int) -> None:
        if not isinstance(name_node, _Sym):
            raise self.fail(line, "a variable name must be a symbol such as X_0 or Y_0")
        m = _VAR_RE.match(name_node.text)
        if not m:
            raise self.fail(line, f"unsupported variable name {name_node.text!r}: VNN-LIB properties name "
                                  "inputs X_0, X_1, ... and outputs Y_0, Y_1, ...")
        if not isinstance(sort_node, _Sym) or sort_node.text != "Real":
            shown = sort_node.text if isinstance(sort_node, _Sym) else "a list"
            raise self.fail(line, f"{name_node.text} has sort {shown}; only Real variables are supported")
        key = (m.group(1), int(m.group(2)))
        if key in self.declared:
            raise self.fail(line, f"{name_node.text} is declared twice (first on line {self.declared[key]})")
        self.declared[key] = line

    def assert_(self, dnf: list, line: int) -> None:
        if len(self.disjuncts) * len(dnf) > MAX_DISJUNCTS:
            raise self.fail(line, f"this assert makes the disjunctive normal form exceed {MAX_DISJUNCTS} "
                                  f"disjuncts ({len(self.disjuncts)} x {len(dnf)}); reluverify expands the "
                                  "property into disjuncts and cannot handle that many")
        if len(dnf) == 1:
            only = dnf[0]
            self.disjuncts = [(d, only) for d in self.disjuncts]
        else:
            self.disjuncts = [(d, conj) for d in self.disjuncts for conj in dnf]
        self.n_asserts += 1

    # ---------------------------------------------------------------- formulas
    def dnf(self, node) -> list:
        """The formula as a list of conjunctions (tuples of atoms ``(coefs, const, line)``,
        each meaning ``sum(coefs[v] * v) + const <= 0``)."""
        if isinstance(node, _Sym):
            raise self.fail(node.line, f"expected a formula such as (<= a b), found {node.text!r}")
        if not node.items or not isinstance(node.items[0], _Sym):
            raise self.fail(node.line, "expected a formula such as (<= a b) or (and ...)")
        op = node.items[0].text
        args = node.items[1:]
        if op == "and":
            result = [()]
            for arg in args:
                part = self.dnf(arg)
                if len(result) * len(part) > MAX_DISJUNCTS:
                    raise self.fail(node.line, f"the disjunctive normal form of this (and ...) exceeds "
                                               f"{MAX_DISJUNCTS} disjuncts")
                result = [a + b for a in result for b in part]
            return result
        if op == "or":
            if not args:
                raise self.fail(node.line, "(or) needs at least one formula")
            result = []
            for arg in args:
                result.extend(self.dnf(arg))
                if len(result) > MAX_DISJUNCTS:
                    raise self.fail(node.line, f"the disjunctive normal form of this (or ...) exceeds "
                                               f"{MAX_DISJUNCTS} disjuncts")
            return result
        if op in _COMPARISONS:
            if len(args) < 2:
                raise self.fail(node.line, f"({op} ...) compares at least two terms, got {len(args)}")
            if op in ("<", ">") and self.strict_line is None:
                self.strict_line = node.line
            terms = [self.term(a) for a in args]
            atoms = []
            for left, right in zip(terms, terms[1:]):
                if op in ("<=", "<", "="):
                    atoms.append(_difference(left, right, node.line))
                if op in (">=", ">", "="):
                    atoms.append(_difference(right, left, node.line))
            return [tuple(atoms)]
        raise self.fail(node.line, f"unknown or unsupported operator {op!r} in a formula; supported are "
                                   "and, or, <=, >=, <, >, =")

    # ---------------------------------------------------------------- terms
    def term(self, node) -> tuple[dict, float]:
        """A linear term as ``(coefficients by variable, constant)``."""
        if isinstance(node, _Sym):
            value = _number(node, self.source)
            if value is not None:
                return {}, value
            m = _VAR_RE.match(node.text)
            if not m:
                raise self.fail(node.line, f"unknown symbol {node.text!r}: expected a number or a declared "
                                           "variable X_i / Y_j")
            key = (m.group(1), int(m.group(2)))
            if key not in self.declared:
                raise self.fail(node.line, f"undeclared variable {node.text}: declare it with "
                                           f"(declare-const {node.text} Real) before its first use")
            return {key: 1.0}, 0.0
        if not node.items or not isinstance(node.items[0], _Sym):
            raise self.fail(node.line, "expected a term: a number, a variable or (+ ...), (- ...), (* ...)")
        op = node.items[0].text
        if op not in ("+", "-", "*", "/"):
            raise self.fail(node.line, f"unknown or unsupported operator {op!r} in a term; supported are "
                                       "+, -, *, /")
        args = [self.term(a) for a in node.items[1:]]
        if op == "+":
            if not args:
                raise self.fail(node.line, "(+) needs at least one term")
            return _combine(args, [1.0] * len(args))
        if op == "-":
            if not args:
                raise self.fail(node.line, "(-) needs at least one term")
            if len(args) == 1:
                return _scale(args[0], -1.0)
            return _combine(args, [1.0] + [-1.0] * (len(args) - 1))
        if op == "*":
            if len(args) < 2:
                raise self.fail(node.line, "(* ...) needs at least two factors")
            variable = [a for a in args if a[0]]
            if len(variable) > 1:
                raise self.fail(node.line, "nonlinear term: a product of two expressions with variables; "
                                           "VNN-LIB properties here must be linear")
            factor = 1.0
            for coefs, const in args:
                if not coefs:
                    factor *= const
            if variable:
                return _scale(variable[0], factor)
            return {}, factor
        if len(args) != 2:  # op == "/"
            raise self.fail(node.line, "(/ t c) takes exactly two arguments")
        if args[1][0]:
            raise self.fail(node.line, "nonlinear term: division by an expression with variables")
        if args[1][1] == 0.0:
            raise self.fail(node.line, "division by zero")
        coefs, const = args[0]
        return {k: c / args[1][1] for k, c in coefs.items()}, const / args[1][1]


def _scale(term, factor: float):
    coefs, const = term
    return {k: c * factor for k, c in coefs.items()}, const * factor


def _combine(terms, signs):
    out: dict = {}
    const = 0.0
    for (coefs, c0), s in zip(terms, signs):
        for k, c in coefs.items():
            out[k] = out.get(k, 0.0) + s * c
        const += s * c0
    return out, const


def _difference(left, right, line):
    """The atom ``left - right <= 0`` as ``(coefs, const, line)`` with zero coefficients dropped."""
    coefs, const = _combine((left, right), (1.0, -1.0))
    return {k: c for k, c in coefs.items() if c != 0.0}, const, line


def _divide_outward(num: float, den: float, upward: bool) -> float:
    """``num / den`` rounded toward +inf (``upward``) or -inf, exact when representable."""
    q = num / den
    if den in (1.0, -1.0):
        return q
    exact = Fraction(num) / Fraction(den)
    if Fraction(q) == exact:
        return q
    if upward and Fraction(q) < exact:
        return float(np.nextafter(q, np.inf))
    if not upward and Fraction(q) > exact:
        return float(np.nextafter(q, -np.inf))
    return q


def _var_name(key) -> str:
    return f"{key[0]}_{key[1]}"


# --------------------------------------------------------------------------- regions
def _flatten(cell) -> list:
    parts = []
    while cell is not None:
        cell, conj = cell
        parts.append(conj)
    atoms = []
    for conj in reversed(parts):
        atoms.extend(conj)
    return atoms


def _build_region(atoms, n_in: int, n_out: int):
    """One disjunct as ``(lower, upper, rows, unreachable_reason)``; rows are deduplicated
    ``(a_x, a_y, b)`` triples in the order of their first appearance."""
    lower = np.full(n_in, -np.inf)
    upper = np.full(n_in, np.inf)
    rows: dict = {}
    false_row = None
    for coefs, const, line in atoms:
        if not coefs:
            if const > 0.0 and false_row is None:  # 0 + const <= 0 is false
                false_row = (line, -const)
            continue
        if len(coefs) == 1:
            (key, a), = coefs.items()
            if key[0] == "X":
                i = key[1]
                if a > 0.0:  # a x + const <= 0  ->  x <= -const / a
                    upper[i] = min(upper[i], _divide_outward(-const, a, upward=True))
                else:  # x >= -const / a
                    lower[i] = max(lower[i], _divide_outward(-const, a, upward=False))
                continue
        items = tuple(sorted((k, c + 0.0) for k, c in coefs.items()))
        rows.setdefault((items, -const + 0.0), line)
    dense = []
    for items, b in rows:
        a_x = np.zeros(n_in)
        a_y = np.zeros(n_out)
        for (kind, idx), c in items:
            (a_x if kind == "X" else a_y)[idx] = c
        dense.append((a_x, a_y, b))
    return lower, upper, dense, false_row


def _region(lower, upper, dense, n_in, n_out):
    m = len(dense)
    a_x = np.array([r[0] for r in dense]).reshape(m, n_in)
    a_y = np.array([r[1] for r in dense]).reshape(m, n_out)
    b = np.array([r[2] for r in dense], dtype=np.float64).reshape(m)
    return Region(lower, upper, a_x, a_y, b)


# --------------------------------------------------------------------------- reading
def parse_vnnlib(text: str, *, n_inputs: int | None = None, n_outputs: int | None = None,
                 name: str | None = None, source: str | None = None) -> Property:
    """Parse VNN-LIB ``text`` into a :class:`~reluverify.spec.Property`.

    ``n_inputs`` / ``n_outputs``: the sizes the network expects; when given, the declared
    variables must be exactly ``X_0 .. X_{n_inputs-1}`` (resp. ``Y_..``) in extent, else
    :class:`~reluverify.errors.PropertyFileError`. When omitted they are the largest declared
    index + 1. ``name`` becomes ``Property.name``; ``source`` is what error messages call the text
    (default ``name`` or ``"<vnnlib text>"``). See the module docstring for the accepted language.
    """
    src = source or name or "<vnnlib text>"
    reader = _Reader(src)
    commands = _parse_sexprs(text, src)
    if not commands:
        raise _error(src, 1, "empty file: no declare-const or assert commands")
    for node in commands:
        reader.command(node)
    last_line = commands[-1].line

    sizes = {}
    for kind, given, what in (("X", n_inputs, "inputs"), ("Y", n_outputs, "outputs")):
        keys = [k for k in reader.declared if k[0] == kind]
        found = max((k[1] for k in keys), default=-1) + 1
        if given is not None:
            given = int(given)
            if given < 0:
                raise InputError(f"n_{what} must be >= 0, got {given}")
            if found != given:
                at = max(keys, key=lambda k: k[1]) if keys else None
                line = reader.declared[at] if at else 1
                shown = f"{kind}_0 .. {kind}_{found - 1}" if found else f"no {kind}_ variables"
                raise _error(src, line, f"the file declares {found} {what} ({shown}) but {given} were "
                                        f"expected (n_{what}={given}); check that this property belongs "
                                        "to the network")
        sizes[kind] = found
    n_in, n_out = sizes["X"], sizes["Y"]
    if n_in == 0:
        raise _error(src, last_line, "the file declares no input variables X_0, X_1, ...")
    if reader.n_asserts == 0:
        raise _error(src, last_line, "the file asserts nothing; every input X_i needs bounds such as "
                                     "(assert (>= X_i lo)) and (assert (<= X_i hi))")

    notes = []
    if reader.strict_line is not None:
        notes.append(f"strict comparisons (< or >, first on line {reader.strict_line}) were read as "
                     "non-strict ones (<= or >=)")
    kept, unreachable = [], []
    total = len(reader.disjuncts)
    for k, cell in enumerate(reader.disjuncts):
        lower, upper, dense, false_row = _build_region(_flatten(cell), n_in, n_out)
        if false_row is not None or np.any(lower > upper):
            if false_row is not None:
                why = f"its constraint on line {false_row[0]} is a false constant inequality"
            else:
                i = int(np.flatnonzero(lower > upper)[0])
                why = f"its input box is empty (X_{i} >= {lower[i]!r} and X_{i} <= {upper[i]!r})"
            unreachable.append((k, lower, upper, dense, false_row, why))
            continue
        bad = np.flatnonzero(~(np.isfinite(lower) & np.isfinite(upper)))
        if bad.size:
            i = int(bad[0])
            side = "lower" if not np.isfinite(lower[i]) else "upper"
            where = f"in disjunct {k + 1} of {total}" if total > 1 else "in the property"
            line = reader.declared.get(("X", i))
            decl = f"declared on line {line}" if line else "never declared"
            raise _error(src, line if line else last_line,
                         f"input X_{i} ({decl}) has no finite {side} bound {where}; every input needs "
                         f"(assert (>= X_{i} lo)) and (assert (<= X_{i} hi))"
                         + (f" ({bad.size} inputs lack a bound)" if bad.size > 1 else ""))
        kept.append((lower, upper, dense))

    if kept:
        for k, *_, why in unreachable:
            notes.append(f"disjunct {k + 1} of {total} dropped, it can never be reached: {why}")
    else:
        notes.append(f"every disjunct ({total}) is unreachable, the property cannot be satisfied "
                     f"(trivially unsat); first: {unreachable[0][-1]}")
        for _, lower, upper, dense, false_row, _ in unreachable:
            lower, upper = lower.copy(), upper.copy()
            # fill missing bounds (harmless: the region is unreachable either way)
            lower = np.where(np.isfinite(lower), lower, np.where(np.isfinite(upper), upper, 0.0))
            upper = np.where(np.isfinite(upper), upper, lower)
            if false_row is not None:
                dense = list(dense) + [(np.zeros(n_in), np.zeros(n_out), false_row[1] + 0.0)]
            kept.append((lower, upper, dense))

    try:
        regions = tuple(_region(lo, hi, dense, n_in, n_out) for lo, hi, dense in kept)
        return Property(n_in, n_out, regions, name=name or "", notes=tuple(notes))
    except InputError as exc:  # should not happen after the checks above; keep file context
        raise _error(src, last_line, str(exc)) from exc


def _is_text(source) -> bool:
    return isinstance(source, str) and "(" in source and "\n" in source


def _read_path(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _error(str(path), None, f"cannot read the file: {exc.strerror or exc}") from exc
    if path.suffix == ".gz" or data[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise _error(str(path), None, f"not a valid gzip file: {exc}") from exc
    try:
        return data.decode("utf-8-sig")  # tolerate a byte-order mark
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise _error(str(path), line, "not UTF-8 text; is this a VNN-LIB file?") from exc


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".gz", ".vnnlib"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return name


def read_vnnlib(source, *, n_inputs: int | None = None, n_outputs: int | None = None,
                name: str | None = None) -> Property:
    """Read a VNN-LIB property into a :class:`~reluverify.spec.Property`.

    ``source`` is a path to a ``.vnnlib`` file (gzip-compressed files are recognised by a ``.gz``
    suffix or by their magic bytes), or the VNN-LIB text itself (a ``str`` containing ``(`` and a
    newline; :func:`parse_vnnlib` is the explicit text entry point). ``n_inputs`` / ``n_outputs``
    check the declared sizes against the network's; ``name`` defaults to the file name without
    ``.vnnlib[.gz]``. Raises :class:`~reluverify.errors.PropertyFileError` naming the file and line
    for anything malformed or unsupported.
    """
    if _is_text(source):
        return parse_vnnlib(source, n_inputs=n_inputs, n_outputs=n_outputs, name=name)
    if not isinstance(source, (str, os.PathLike)):
        raise InputError(f"read_vnnlib expects a path or VNN-LIB text, got {type(source).__name__}")
    path = Path(source)
    text = _read_path(path)
    return parse_vnnlib(text, n_inputs=n_inputs, n_outputs=n_outputs,
                        name=name if name is not None else _stem(path), source=str(path))


# --------------------------------------------------------------------------- writing
def _num(value) -> str:
    return repr(float(value) + 0.0)


def _row_text(a_x, a_y, b) -> str:
    terms = [(f"X_{i}", float(c)) for i, c in enumerate(a_x) if c != 0.0]
    terms += [(f"Y_{j}", float(c)) for j, c in enumerate(a_y) if c != 0.0]
    if len(terms) == 2 and b == 0.0 and sorted(c for _, c in terms) == [-1.0, 1.0]:
        pos = next(v for v, c in terms if c == 1.0)
        neg = next(v for v, c in terms if c == -1.0)
        return f"(<= {pos} {neg})"
    parts = [v if c == 1.0 else f"(- {v})" if c == -1.0 else f"(* {_num(c)} {v})" for v, c in terms]
    if not parts:
        lhs = "0.0"
    elif len(parts) == 1:
        lhs = parts[0]
    else:
        lhs = "(+ " + " ".join(parts) + ")"
    return f"(<= {lhs} {_num(b)})"


def _box_atoms(lower, upper) -> list[str]:
    out = []
    for i, (lo, hi) in enumerate(zip(lower, upper)):
        out.append(f"(<= X_{i} {_num(hi)})")
        out.append(f"(>= X_{i} {_num(lo)})")
    return out


def to_vnnlib(prop: Property) -> str:
    """Write ``prop`` as VNN-LIB text that :func:`parse_vnnlib` reads back to equal regions.

    When all regions share one input box the box is written as one assert per bound and the rows
    as a single ``(assert (or (and rows...) ...))``; otherwise each disjunct carries its own box
    inside the ``or``. Floats are written with ``repr`` so they read back bit for bit.

    Round trips are exact for properties that :func:`read_vnnlib` produces. For hand-built
    properties note that a row mentioning a single input and nothing else reads back as a box
    bound, identical regions with no rows merge, and unreachable regions are dropped (unless all
    are), exactly as for any file.
    """
    if not isinstance(prop, Property):
        raise InputError(f"to_vnnlib expects a Property, got {type(prop).__name__}")
    lines = [f"; {prop.name}" if prop.name else "; VNN-LIB property", "; written by reluverify", ""]
    lines += [f"(declare-const X_{i} Real)" for i in range(prop.n_inputs)]
    lines += [f"(declare-const Y_{j} Real)" for j in range(prop.n_outputs)]
    lines.append("")
    regions = prop.regions
    first = regions[0]
    shared = all(np.array_equal(r.lower, first.lower) and np.array_equal(r.upper, first.upper)
                 for r in regions[1:])
    if shared:
        lines += [f"(assert {atom})" for atom in _box_atoms(first.lower, first.upper)]
        if len(regions) == 1:
            lines += [f"(assert {_row_text(*row)})" for row in zip(first.a_x, first.a_y, first.b)]
        else:
            lines.append("(assert (or")
            for r in regions:
                rows = [_row_text(*row) for row in zip(r.a_x, r.a_y, r.b)]
                lines.append("    (and " + " ".join(rows) + ")" if rows else "    (and)")
            lines.append("))")
    else:
        lines.append("(assert (or")
        for r in regions:
            atoms = _box_atoms(r.lower, r.upper) + [_row_text(*row) for row in zip(r.a_x, r.a_y, r.b)]
            lines.append("    (and " + " ".join(atoms) + ")")
        lines.append("))")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- VNN-COMP results
def _verdict(verdict) -> str:
    text = str(getattr(verdict, "value", verdict)).strip().lower()
    if text not in VERDICTS:
        raise InputError(f"unknown verdict {verdict!r}; the VNN-COMP result format knows "
                         f"{', '.join(VERDICTS)}")
    return text


def _values(values, what: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64).ravel()
    if not np.all(np.isfinite(arr)):
        raise InputError(f"the counterexample's {what} values contain NaN or infinity")
    return arr


def format_result(verdict, x=None, y=None) -> str:
    """The VNN-COMP result text for ``verdict`` (``sat``, ``unsat``, ``timeout``, ``unknown`` or
    ``error``; a ``str`` enum's value is accepted).

    For ``sat`` the counterexample follows: a line ``(``, one ``(X_i value)`` line per input, one
    ``(Y_j value)`` line per output (when ``y`` is given), and a line ``)``. Values are written with
    ``repr`` so :func:`read_result` gets the same floats back. ``x`` is required for ``sat`` and
    not allowed otherwise.
    """
    v = _verdict(verdict)
    if v != "sat":
        if x is not None or y is not None:
            raise InputError(f"a counterexample goes only with the verdict 'sat', not {v!r}")
        return v + "\n"
    if x is None:
        raise InputError("the verdict 'sat' needs the counterexample input x")
    lines = ["sat", "("]
    lines += [f"(X_{i} {_num(v)})" for i, v in enumerate(_values(x, "input"))]
    if y is not None:
        lines += [f"(Y_{j} {_num(v)})" for j, v in enumerate(_values(y, "output"))]
    lines.append(")")
    return "\n".join(lines) + "\n"


def write_result(path, verdict, x=None, y=None) -> Path:
    """Write :func:`format_result` to ``path`` atomically (a temporary file in the same folder,
    then ``os.replace``), so a reader never sees half a result. Returns the path."""
    text = format_result(verdict, x, y)
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def parse_result(text: str, source: str = "<result text>"):
    """Parse VNN-COMP result text into ``(verdict, x, y)``.

    ``verdict`` is one of :data:`VERDICTS` (the older spellings ``violated`` / ``holds`` are read
    as ``sat`` / ``unsat``). For ``sat`` with a counterexample, ``x`` and ``y`` are float64
    arrays (``y`` is ``None`` when no ``Y_j`` is listed); otherwise both are ``None``. The
    counterexample may be written as one list of pairs, ``((X_0 v) (X_1 v) ...)``, with any line
    breaks; a value may be a number or ``(- number)``.
    """
    lines = text.splitlines()
    first = next((k for k, ln in enumerate(lines) if ln.split(";", 1)[0].strip()), None)
    if first is None:
        raise _error(source, 1, "empty result file; expected sat, unsat, timeout, unknown or error")
    word = lines[first].split(";", 1)[0].strip().lower()
    word = {"violated": "sat", "holds": "unsat"}.get(word, word)
    if word not in VERDICTS:
        raise _error(source, first + 1, f"unknown verdict {word!r}; expected one of {', '.join(VERDICTS)}")
    rest = "\n" * (first + 1) + "\n".join(lines[first + 1:])
    nodes = _parse_sexprs(rest, source)
    if word != "sat":
        if nodes:
            raise _error(source, nodes[0].line, f"unexpected content after the verdict {word!r}")
        return word, None, None
    if not nodes:
        return word, None, None
    pairs = nodes
    if len(nodes) == 1 and isinstance(nodes[0], _List) and all(isinstance(p, _List) for p in nodes[0].items):
        pairs = nodes[0].items
    reader = _Reader(source)
    values: dict = {"X": {}, "Y": {}}
    for pair in pairs:
        if not isinstance(pair, _List) or len(pair.items) != 2 or not isinstance(pair.items[0], _Sym):
            raise _error(source, pair.line, "expected a pair such as (X_0 0.5)")
        m = _VAR_RE.match(pair.items[0].text)
        if not m:
            raise _error(source, pair.line, f"unknown variable {pair.items[0].text!r}; expected X_i or Y_j")
        key = (m.group(1), int(m.group(2)))
        reader.declared[key] = pair.line
        coefs, const = reader.term(pair.items[1])
        if coefs:
            raise _error(source, pair.line, "a counterexample value must be a number")
        if key[1] in values[key[0]]:
            raise _error(source, pair.line, f"{_var_name(key)} is given twice")
        values[key[0]][key[1]] = const
    out = []
    for kind in ("X", "Y"):
        got = values[kind]
        if not got:
            out.append(None)
            continue
        n = max(got) + 1
        missing = [i for i in range(n) if i not in got]
        if missing:
            raise _error(source, None, f"the counterexample lacks {kind}_{missing[0]} "
                                       f"({len(missing)} of {kind}_0 .. {kind}_{n - 1} missing)")
        out.append(np.array([got[i] for i in range(n)], dtype=np.float64))
    if out[0] is None:
        raise _error(source, None, "the counterexample gives no input values X_i")
    return word, out[0], out[1]


def read_result(path):
    """Read a VNN-COMP result file; returns ``(verdict, x, y)`` as :func:`parse_result` does."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _error(str(path), None, f"cannot read the result file: {exc}") from exc
    return parse_result(text, str(path))
