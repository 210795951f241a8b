"""Which stretches of a module libcst must see: the planning step of the pipeline.

libcst parses and walks a few thousand lines a second; Python's own `ast` parses ten times faster but
cannot rewrite code. So `ast` finds the statements whose code (strings and comments blanked out)
contains one of the rules' words, or a local alias or constant standing for one: top-level statements,
a top-level class's header and members, statements inside functions. Each becomes a `Region`, parsed
alone (an indented one inside an `if True:` block, a class header with a stand-in body). Porting a whole
module is the same thing with one region: `whole_module`.
"""

from __future__ import annotations

import ast
import bisect
import re
from dataclasses import dataclass
from typing import Callable, Sequence

from vsockport.rules.names import ModuleNames
from vsockport.source import Source


@dataclass(frozen=True)
class Region:
    """Lines `start`..`end` (1-based) of a module, parsed as `prefix + lines + suffix`."""

    start: int
    end: int
    prefix: str = ""  # `if True:` for an indented region
    suffix: str = ""  # a class header's stand-in body (`    pass`)


def whole_module(source: Source) -> list[Region]:
    return [Region(1, max(source.line_count, 1))]


@dataclass
class Unit:
    """Statements sharing lines, as libcst sees one statement line: lines `start`..`end` (1-based)."""

    start: int
    end: int
    stmts: list[ast.stmt]


def span(stmt: ast.stmt) -> tuple[int, int]:
    decorators = getattr(stmt, "decorator_list", ())
    return min([stmt.lineno, *(d.lineno for d in decorators)]), stmt.end_lineno or stmt.lineno


def units(body: list[ast.stmt]) -> list[Unit]:
    found: list[Unit] = []
    for stmt in body:
        start, end = span(stmt)
        if found and start <= found[-1].end:
            found[-1].end = max(found[-1].end, end)
            found[-1].stmts.append(stmt)
        else:
            found.append(Unit(start, end, [stmt]))
    return found


class _Relevance:
    """Does a stretch of code mention anything the rules act on?"""

    def __init__(self, source: Source, words: Sequence[bytes], names: ModuleNames,
                 string_words: Sequence[bytes] = ()) -> None:
        self.source, self.words = source, words
        # Words looked for inside strings too (strings are otherwise blanked): only where the file has one.
        self.string_words = [w for w in string_words if w in source.data]
        text_words = [w.decode() for w in words]
        standins = {local for local, meanings in names.bindings.items()
                    if any(w in meaning for meaning in meanings for w in text_words)}
        self.definitions: set[tuple[bytes, int]] = set()  # a constant's own definition does not count
        for name, value in names.constant_values.items():
            if any(w in source.code_lines(value.lineno, value.end_lineno or value.lineno) for w in words):
                standins.add(name)
                self.definitions.add((name.encode(), value.lineno))
        self.standins = re.compile(rb"\b(?:" + b"|".join(re.escape(n.encode()) for n in sorted(standins)) + rb")\b") if standins else None

    def __call__(self, start: int, end: int) -> bool:
        if end < start:
            return False
        code = self.source.code_lines(start, end)
        if any(w in code for w in self.words):
            return True
        if self.string_words:
            text = self.source.lines(start, end)
            if any(w.decode() in text for w in self.string_words):
                return True
        for match in self.standins.finditer(code) if self.standins else ():
            line = start + code.count(b"\n", 0, match.start())
            if (match.group(), line) not in self.definitions and (match.group(), line + 1) not in self.definitions:
                return True
        return False


def focused(source: Source, tree: ast.Module, names: ModuleNames, words: Sequence[bytes],
            whole_function: Callable[[bytes], bool], string_words: Sequence[bytes] = ()) -> list[Region]:
    """The relevant regions of a module. `whole_function(code)` says that a function must reach
    libcst whole (a rule judges it whole: VS013 keeps local socket pairs); so must a function that
    binds an imported name as a local (`names.shadowing_lines()`), for the rules to see its scope."""
    top = units(tree.body)
    shadowing = _ShadowingFunctions(source, names, top)
    planner = _Planner(source, _Relevance(source, words, names, string_words),
                       lambda code, def_line: def_line in shadowing or whole_function(code))
    return planner.regions(top)


class _ShadowingFunctions:
    """The `def` lines of functions that bind an imported name as a local, read one top-level unit at a
    time: the planner asks only about functions in relevant units, a small part of most modules."""

    def __init__(self, source: Source, names: ModuleNames, top: list[Unit]) -> None:
        self.source, self.names, self.top = source, names, top
        self.starts = [unit.start for unit in top]
        self.found: dict[int, frozenset[int]] = {}

    def __contains__(self, def_line: int) -> bool:
        unit = self.top[bisect.bisect_right(self.starts, def_line) - 1]
        lines = self.found.get(unit.start)
        if lines is None:
            text = self.source.lines(unit.start, unit.end)
            lines = self.found[unit.start] = self.names.shadowing_lines(text, unit.start)
        return def_line in lines


class _Planner:
    def __init__(self, source: Source, relevant: _Relevance, whole_function: Callable[[bytes, int], bool]) -> None:
        self.source, self.relevant, self.whole_function = source, relevant, whole_function
        self.wrapper = f"if True:{source.newline}"

    def _whole(self, start: int, end: int, function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
        return self.whole_function(self.source.code_lines(start, end), function.lineno)

    def regions(self, top: list[Unit]) -> list[Region]:
        """Relevant top-level statements; inside top-level classes, the header (bases, decorators) and
        the relevant statements and methods; inside functions (unless a rule judges whole
        functions), relevant statements of the body."""
        found: list[Region] = []
        for unit in top:
            if not self.relevant(unit.start, unit.end):
                continue
            only = unit.stmts[0] if len(unit.stmts) == 1 else None
            inner = None
            if isinstance(only, ast.ClassDef) and only.body:
                inner = self._members(only)
            elif isinstance(only, (ast.FunctionDef, ast.AsyncFunctionDef)) and not self._whole(unit.start, unit.end, only):
                inner = self._members(only)
            if inner is not None:
                found.extend(inner)
            else:
                found.append(Region(unit.start, unit.end))
        return found

    def _members(self, node: ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) -> list[Region] | None:
        """The relevant statements of a class or function body (methods of a class may narrow
        further), plus a top-level class's header when that is relevant; or None when the node must
        be ported whole: a function's header is relevant, a body starts on the header's line, or a
        statement does not start its own line."""
        start, _ = span(node)
        members = units(node.body)
        if members[0].start <= node.lineno:
            return None
        is_class = isinstance(node, ast.ClassDef)
        found: list[Region] = []
        if self.relevant(start, members[0].start - 1):
            first = self.source.lines(members[0].start, members[0].start)
            indent = first[: len(first) - len(first.lstrip(" \t"))]
            if not is_class or node.col_offset != 0 or not indent:
                return None
            # Bases and decorators are ported in the header alone; the members get regions of their own.
            found.append(Region(start, members[0].start - 1, suffix=f"{indent}pass{self.source.newline}"))
        previous = None  # the last member that became a region of its own
        for member in members:
            if not self.relevant(member.start, member.end):
                previous = None
                continue
            only = member.stmts[0] if len(member.stmts) == 1 else None
            is_method = isinstance(only, (ast.FunctionDef, ast.AsyncFunctionDef))
            inner = self._members(only) if is_method and not self._whole(member.start, member.end, only) else None
            if inner is not None:
                found.extend(inner)
                previous = None
                continue
            if self.source.lines(member.start, member.start)[:1] not in (" ", "\t"):
                return None  # not on a line of its own
            if previous is not None:  # consecutive statements of one block: one parse instead of several
                found[-1] = Region(found[-1].start, member.end, self.wrapper)
            else:
                found.append(Region(member.start, member.end, self.wrapper))
            previous = member
        return found
