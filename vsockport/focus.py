"""Focused porting: libcst sees only the statements that a rule could touch.

libcst parses and walks a few thousand lines a second; Python's own `ast` parses ten times faster but
cannot rewrite code. So `ast` finds the statements whose code, strings and comments blanked out,
contains one of the rules' words: top-level statements, a top-level class's header and members,
statements inside functions. libcst ports just those, and their new text is spliced between the
untouched original bytes. The runtime import is then added by parsing only the module's head.
Anything this cannot reproduce exactly raises `Unfocusable`, and the caller ports the whole module
instead; tests check both give the same bytes and findings.
"""

from __future__ import annotations

import ast
import io
import re
import sys
import tokenize
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Sequence

import libcst as cst

from vsockport.rules import PortOptions, Rule
from vsockport.rules.base import (
    AF_NAME,
    ModuleContext,
    _NamesUsed,
    _RuleRunner,
    _unused_suppressions,
    add_runtime_imports,
    find_suppressions,
    imports_runtime,
    rules_triggered_by,
)
from vsockport.rules.names import ModuleNames

_BOM = b"\xef\xbb\xbf"
# Comments and string literals (any prefix, triple-quoted included), matched left to right so that a
# quote inside a comment or a hash inside a string is consumed by the construct that contains it.
# Bodies are "unrolled loops": runs of plain characters between escapes or lone quotes. A body loop
# never consumes what ends its literal, so it need not backtrack; Python 3.11+ is told so (possessive
# `*+`), and then keeps no backtracking state. The first, lazy `(?:\\.|[^\\])*?` took 470 MiB and half
# a second on moto's 4 MB string literal.
_ONCE = "+" if sys.version_info >= (3, 11) else ""
_STRINGS_AND_COMMENTS = re.compile(
    (
        r"#[^\n]*"
        r"|[rRbBuUfF]{0,2}(?:"
        r"'''[^'\\]*+(?:(?:\\.|'(?!''))[^'\\]*+)*+'''"
        r'|"""[^"\\]*+(?:(?:\\.|"(?!""))[^"\\]*+)*+"""'
        r"|'[^'\\\n]*+(?:\\.[^'\\\n]*+)*+'"
        r'|"[^"\\\n]*+(?:\\.[^"\\\n]*+)*+")'
    ).replace("*+", "*" + _ONCE).encode(),
    re.S,
)
_IDENTIFIER = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*")


class Unfocusable(Exception):
    """This module must be ported whole (the focused result could differ, or cannot be built)."""


def code_only(data: bytes) -> bytes:
    """`data` with comments and string literals removed, line numbers kept."""
    return _STRINGS_AND_COMMENTS.sub(lambda m: b"\n" * m.group().count(b"\n"), data)


@lru_cache(maxsize=64)
def _words(rules: tuple[type[Rule], ...]) -> tuple[bytes, ...]:
    return tuple(sorted({w for rule in rules for w in (*rule.triggers, *rule.words)}))


def words_for(rules: Sequence[type[Rule]]) -> tuple[bytes, ...]:
    return _words(tuple(rules))  # once per rule selection, not once per file


@dataclass
class _Unit:
    """Statements sharing lines, as libcst sees one statement line: lines `start`..`end` (1-based)."""

    start: int
    end: int
    stmts: list[ast.stmt]


def _span(stmt: ast.stmt) -> tuple[int, int]:
    decorators = getattr(stmt, "decorator_list", ())
    return min([stmt.lineno, *(d.lineno for d in decorators)]), stmt.end_lineno or stmt.lineno


def _units(body: list[ast.stmt]) -> list[_Unit]:
    units: list[_Unit] = []
    for stmt in body:
        start, end = _span(stmt)
        if units and start <= units[-1].end:
            units[-1].end = max(units[-1].end, end)
            units[-1].stmts.append(stmt)
        else:
            units.append(_Unit(start, end, [stmt]))
    return units


class _Source:
    """The module's bytes with line offsets, its encoding, and its code with strings blanked."""

    def __init__(self, data: bytes) -> None:
        if b"\r" in data and data.count(b"\r") != data.count(b"\r\n"):
            raise Unfocusable("lone carriage returns")  # ast and libcst count such lines differently
        self.data = data
        try:
            self.encoding = tokenize.detect_encoding(io.BytesIO(data).readline)[0]
            self.codec = "utf-8" if self.encoding == "utf-8-sig" else self.encoding
            self.text = data.decode(self.encoding)  # also: undecodable files get whole-module errors
        except (SyntaxError, LookupError, UnicodeDecodeError) as exc:
            raise Unfocusable(str(exc)) from None
        self.starts = [len(_BOM) if data.startswith(_BOM) else 0]
        self.starts.extend(m.end() for m in re.finditer(b"\n", data))
        self.starts.append(len(data))  # sentinel: "line after the last"
        first_newline = re.search(rb"\r?\n", data)
        self.newline = "\r\n" if first_newline and first_newline.group() == b"\r\n" else "\n"  # as libcst picks it
        self.code = code_only(data)
        self.code_starts = [0, *(m.end() for m in re.finditer(b"\n", self.code)), len(self.code)]

    def offset(self, line: int) -> int:
        """Byte offset where 1-based `line` starts; one past the last line gives the end."""
        return self.starts[min(line - 1, len(self.starts) - 1)]

    def lines(self, start: int, end: int) -> bytes:
        return self.data[self.offset(start) : self.offset(end + 1)]

    def code_lines(self, start: int, end: int) -> bytes:
        last = len(self.code_starts) - 1
        return self.code[self.code_starts[min(start - 1, last)] : self.code_starts[min(end, last)]]

    def decode(self, raw: bytes) -> str:
        try:
            return raw.decode(self.codec)
        except UnicodeDecodeError as exc:
            raise Unfocusable(str(exc)) from None

    def expression_at(self, node: ast.expr) -> cst.BaseExpression:
        segment = ast.get_source_segment(self.text, node)
        try:
            return cst.parse_expression(segment or "")
        except (cst.ParserSyntaxError, RecursionError):
            raise Unfocusable("constant expression libcst cannot parse alone") from None


class _Relevance:
    """Does a stretch of code mention anything the rules act on?"""

    def __init__(self, source: _Source, words: Sequence[bytes], names: ModuleNames) -> None:
        self.source, self.words = source, words
        text_words = [w.decode() for w in words]
        standins = {local for local, qualified in names.aliases.items() if any(w in qualified for w in text_words)}
        self.definitions: set[tuple[bytes, int]] = set()  # a constant's own definition does not count
        for name, value in names.constant_values.items():
            if any(w in source.lines(value.lineno, value.end_lineno or value.lineno) for w in words):
                standins.add(name)
                self.definitions.add((name.encode(), value.lineno))
        self.standins = re.compile(rb"\b(?:" + b"|".join(re.escape(n.encode()) for n in sorted(standins)) + rb")\b") if standins else None

    def __call__(self, start: int, end: int) -> bool:
        if end < start:
            return False
        code = self.source.code_lines(start, end)
        if any(w in code for w in self.words):
            return True
        for match in self.standins.finditer(code) if self.standins else ():
            line = start + code.count(b"\n", 0, match.start())
            if (match.group(), line) not in self.definitions and (match.group(), line + 1) not in self.definitions:
                return True
        return False


@dataclass
class _Region:
    start: int
    end: int
    indented: bool  # a method: parsed inside a wrapper block
    # Appended for parsing and cut off again: a class header's stand-in body (`    pass`), so that
    # libcst sees the header of a big class without its (separately handled) members.
    tail: str = ""


def _regions(units: list[_Unit], relevant: _Relevance, source: _Source, whole: Callable[[int, int], bool]) -> list[_Region]:
    """Relevant top-level statements; inside top-level classes, the header (bases, decorators) and the
    relevant statements and methods; inside functions (unless a rule judges whole functions), relevant
    statements of the body."""
    regions = []
    for unit in units:
        if not relevant(unit.start, unit.end):
            continue
        only = unit.stmts[0] if len(unit.stmts) == 1 else None
        inner = None
        if isinstance(only, ast.ClassDef) and only.body:
            inner = _member_regions(only, relevant, source, whole)
        elif isinstance(only, (ast.FunctionDef, ast.AsyncFunctionDef)) and not whole(unit.start, unit.end):
            inner = _member_regions(only, relevant, source, whole)
        if inner is not None:
            regions.extend(inner)
        else:
            regions.append(_Region(unit.start, unit.end, False))
    return regions


def _member_regions(node: ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef, relevant: _Relevance,
                    source: _Source, whole: Callable[[int, int], bool]) -> list[_Region] | None:
    """The relevant statements of a class or function body (methods of a class may narrow further),
    plus a top-level class's header when that is relevant; or None when the node must be ported whole:
    a function's header is relevant, a body starts on the header's line, or a statement does not
    start its own line."""
    start, _ = _span(node)
    members = _units(node.body)
    if members[0].start <= node.lineno:
        return None
    is_class = isinstance(node, ast.ClassDef)
    regions: list[_Region] = []
    if relevant(start, members[0].start - 1):
        body_indent = source.lines(members[0].start, members[0].start)
        body_indent = body_indent[: len(body_indent) - len(body_indent.lstrip(b" \t"))]
        if not is_class or node.col_offset != 0 or not body_indent:
            return None
        # Bases and decorators are ported in the header alone; the members get regions of their own.
        regions.append(_Region(start, members[0].start - 1, False, tail=source.decode(body_indent) + "pass" + source.newline))
    previous = None  # the last member that became a region of its own
    for member in members:
        if not relevant(member.start, member.end):
            previous = None
            continue
        only = member.stmts[0] if len(member.stmts) == 1 else None
        is_method = isinstance(only, (ast.FunctionDef, ast.AsyncFunctionDef))
        narrow = is_method and not whole(member.start, member.end)
        inner = _member_regions(only, relevant, source, whole) if narrow else None
        if inner is not None:
            regions.extend(inner)
            previous = None
            continue
        if source.lines(member.start, member.start)[:1] not in (b" ", b"\t"):
            return None  # not on a line of its own
        if previous is not None:  # consecutive statements of one block: one parse instead of several
            regions[-1].end = member.end
        else:
            regions.append(_Region(member.start, member.end, True))
        previous = member
    return regions


def _plan(source: _Source, rules: Sequence[type[Rule]]):
    """(names, top-level units, rules triggered, regions for libcst) of one module."""
    try:
        tree = ast.parse(source.data)
    except (SyntaxError, ValueError, MemoryError, RecursionError) as exc:
        raise Unfocusable(str(exc)) from None
    names = ModuleNames.from_ast(tree, source.expression_at)
    units = _units(tree.body)
    active = rules_triggered_by(source.data, rules)
    keepers = [cls.keeps_words for cls in active if cls.keeps_types]

    def whole(start: int, end: int) -> bool:
        """A function that a rule (VS013) might keep whole must reach libcst whole."""
        code = source.code_lines(start, end) if keepers else b""
        return any(all(any(w in code for w in group) for group in groups) for groups in keepers)

    return names, units, active, _regions(units, _Relevance(source, words_for(rules), names), source, whole)


def regions_of(data: bytes, rules: Sequence[type[Rule]]) -> list[tuple[int, int, bool]]:
    """(first line, last line, is indented) of each stretch of `data` that libcst will see."""
    return [(r.start, r.end, r.indented) for r in _plan(_Source(data), rules)[3]]


def port_focused(data: bytes, options: PortOptions, rules: Sequence[type[Rule]]):
    """Port one module's bytes as `engine.port_source` does. Returns (new bytes or None, findings,
    encoding, uses runtime); raises Unfocusable when the whole module must be ported instead."""
    source = _Source(data)
    words = words_for(rules)
    suppressions = find_suppressions(data)
    uses_runtime = imports_runtime(data, options.runtime_import)
    if not suppressions and not any(w in source.code for w in words):
        return None, [], source.encoding, uses_runtime  # the words occur only in strings and comments
    names, units, active, regions = _plan(source, rules)

    empty = cst.parse_module("")
    ctx = ModuleContext(empty, options, suppressions, names=names)
    runner = _RuleRunner([cls(ctx) for cls in active])  # rules without triggers here have nothing to do
    config = cst.PartialParserConfig(default_newline=source.newline)
    wrapper = f"if True:{source.newline}"
    pieces: list[tuple[int, int, bytes]] = []  # (start line, end line, new bytes) of changed regions
    new_modules, parsed = [], []
    for region in regions:
        original = source.decode(source.lines(region.start, region.end))
        try:
            module = cst.parse_module((wrapper + original if region.indented else original) + region.tail, config)
        except cst.ParserSyntaxError as exc:
            raise Unfocusable(str(exc)) from None
        # Rules remember nodes by id(); keeping every region's tree alive keeps those ids unique.
        parsed.append(module)
        ctx.focus(module, region.start - (2 if region.indented else 1))
        runner.changed = False
        new_module = module.visit(runner)
        if not runner.changed:
            continue  # no rule replaced anything: nothing to print or splice
        new_modules.append(new_module)
        code = _unwrapped(new_module.code, wrapper if region.indented else "", region.tail)
        if code != original:
            check_faithful(_unwrapped(module.code, wrapper if region.indented else "", region.tail), original, region.start)
            pieces.append((region.start, region.end, code.encode(source.codec)))

    if ctx.runtime_names and ctx.dropped_changes:
        used = set()
        for new_module in new_modules:
            seen = _NamesUsed()
            new_module.visit(seen)
            used |= seen.names
        used |= {m.decode() for m in _IDENTIFIER.findall(source.code)}  # untouched code, too
        ctx.keep_runtime_names_used(used)

    last_line = len(source.starts) - 1
    if ctx.runtime_names:
        head_end = _head_end(units, options) if units else last_line
        head = _splice(source, [p for p in pieces if p[1] <= head_end], 1, head_end)
        try:
            head_module = cst.parse_module(source.decode(head), config)
        except cst.ParserSyntaxError as exc:
            raise Unfocusable(str(exc)) from None
        head_module = add_runtime_imports(head_module, ctx, af_assigned=_af_assigned(units))
        rest = _splice(source, [p for p in pieces if p[0] > head_end], head_end + 1, last_line)
        new = data[: source.offset(1)] + head_module.code.encode(source.codec) + rest
    else:
        new = data[: source.offset(1)] + _splice(source, pieces, 1, last_line)
    ctx.findings.extend(_unused_suppressions(ctx, {cls.code for cls in rules}))
    ctx.findings.sort(key=lambda f: (f.line, f.column, f.code))
    return (new if new != data else None), ctx.findings, source.encoding, uses_runtime or bool(ctx.runtime_names)


class Unfaithful(Exception):
    """libcst does not give back this module's own text (it drops, for one, the space in `except E :`);
    porting it would change more than the rules did."""

    def __init__(self, line: int) -> None:
        super().__init__(f"libcst, the parser vsockport uses, would also reformat line {line}")
        self.line = line


def _unwrapped(code: str, wrapper: str, tail: str) -> str:
    """A region's code without the wrapper block header and stand-in tail it was parsed with."""
    if not (code.startswith(wrapper) and code.endswith(tail)):
        raise Unfocusable("the wrapper block or stand-in body changed")
    return code[len(wrapper) : len(code) - len(tail)]


def check_faithful(reproduced: str, original: str, first_line: int = 1) -> None:
    if reproduced != original:
        lines = zip(reproduced.splitlines(), original.splitlines())
        raise Unfaithful(first_line + next((i for i, (a, b) in enumerate(lines) if a != b), 0))


def _splice(source: _Source, pieces: list[tuple[int, int, bytes]], start: int, end: int) -> bytes:
    """Lines `start`..`end` of the module with the changed regions' new bytes in place."""
    out, line = [], start
    for first, last, new in pieces:
        out.append(source.lines(line, first - 1) if first > line else b"")
        out.append(new)
        line = last + 1
    out.append(source.lines(line, end) if end >= line else b"")
    return b"".join(out)


def _is_import_unit(unit: _Unit) -> bool:
    return all(isinstance(s, (ast.Import, ast.ImportFrom)) for s in unit.stmts)


def _head_end(units: list[_Unit], options: PortOptions) -> int:
    """The last line of the statements `add_runtime_imports` looks at: up to an existing runtime
    import, else up to where the import goes (docstring, `__future__` and leading imports), and at
    least the first statement (so libcst splits the module's header comments as it would whole)."""
    for unit in units:
        first = unit.stmts[0]
        if _is_import_unit(unit) and isinstance(first, ast.ImportFrom) and first.names[0].name != "*":
            if "." * first.level + (first.module or "") == options.runtime_import:
                return unit.end
    index = 0
    first = units[0].stmts
    if len(first) == 1 and isinstance(first[0], ast.Expr) and isinstance(first[0].value, ast.Constant) \
            and isinstance(first[0].value.value, (str, bytes)):
        index = 1
    last_import = None
    for position in range(index, len(units)):
        unit = units[position]
        if _is_import_unit(unit):
            last_import = position
        elif len(unit.stmts) == 1 and isinstance(unit.stmts[0], (ast.Try, ast.If)) and last_import is not None:
            continue
        else:
            break
    insert_at = index if last_import is None else last_import + 1
    return units[max(insert_at, 1) - 1].end


def _af_assigned(units: list[_Unit]) -> bool:
    return any(
        isinstance(unit.stmts[0], ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == AF_NAME for t in unit.stmts[0].targets)
        for unit in units
    )
