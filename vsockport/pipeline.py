"""One module through the pipeline, the same code path for a whole file and for focused regions:

    plan regions -> for each region: parse -> run every rule -> decide -> apply -> repeat until
    nothing changes -> splice the regions back -> import what the fixes need from the runtime, once

Where a fix is decided, filtered and applied, one place each:
- decided: a rule's `report(node, message, replacement=...)` (rules/api.py);
- filtered: `_decide` here: suppression comments, unsafe fixes held back, nodes a rule keeps whole;
- applied: `_apply` here, the non-overlapping edits of one pass, as text (as ruff applies fixes).

Edits replace the exact characters of the reported node (its code as libcst prints it, which must be
the original text), so everything else stays byte for byte. After a pass with edits the region is
parsed again and every rule runs again, until no fix is left (ruff's fix loop): a fix that held back
for an overlapping one applies then, and a fix that never converges is an internal error that
leaves the file untouched.
"""

from __future__ import annotations

import ast
import difflib
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Sequence

import libcst as cst
from libcst._nodes.internal import CodegenState

from vsockport import regions as planning
from vsockport.regions import Region
from vsockport.results import Applicability, Edit, Finding, Fix, PortResult, State
from vsockport.rules import ALL_RULES, UNUSED_SUPPRESSION
from vsockport.rules.api import DEFINITIONS, Parents, PortOptions, Report, Rule
from vsockport.rules.helpers import children
from vsockport.rules.names import ModuleNames
from vsockport.source import DecodeFailure, LineIndex, Source, code_only
from vsockport.suppressions import comment_span, find_suppressions, suppresses, unused

MAX_PASSES = 10
_PY2_HINTS = re.compile(rb"^\s*(print\s+[^\s(=]|exec\s+[\"'\w]|except\s+[\w.]+\s*,\s*\w+\s*:)|\bur[\"']", re.MULTILINE)
_IDENTIFIER = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*")
_MAX_IMPORT_LINE = 88


class PortError(Exception):
    """A module that cannot be ported; `line`/`column` say where (0: nowhere in particular)."""

    kind = "cannot port"

    def __init__(self, line: int, column: int, message: str) -> None:
        super().__init__(message)
        self.line, self.column, self.message = line, column, message


class ParseFailure(PortError):
    kind = "cannot parse"


class Unfaithful(PortError):
    """libcst does not give back this module's own text (it drops, for one, the space in `except E :`);
    porting it would change more than the rules did."""

    kind = "cannot port faithfully"

    def __init__(self, line: int) -> None:
        super().__init__(line, 1, f"libcst, the parser vsockport uses, would also reformat line {line}; "
                                  "left untouched (port it by hand, or exclude it)")


class InternalError(PortError):
    """A vsockport bug that was caught before it could touch the file."""

    kind = "internal error"


class _Unfocusable(Exception):
    """A region cannot be ported alone: port the whole module as one region instead."""


# -- the public entry point -------------------------------------------------------------------------

def rules_triggered_by(data: bytes, rule_classes: Sequence[type[Rule]]) -> list[type[Rule]]:
    """The rules with a trigger in `data`; the others have nothing to do in it (the trigger contract)."""
    return [cls for cls in rule_classes if any(t in data for t in cls.triggers)]


def imports_runtime(data: bytes, runtime_import: str) -> bool:
    return f"from {runtime_import} import".encode() in data


def port_source(data: bytes, options: PortOptions, rules: Sequence[type[Rule]] = ALL_RULES, *,
                focused: bool = True) -> PortResult:
    """Port one module's bytes. `focused` hands libcst only the regions a rule could touch; without it
    (and wherever a region cannot be parsed alone) the whole module is one region."""
    if b"\0" in data:
        raise ParseFailure(1, 1, "binary file (contains NUL bytes)")
    try:
        source = Source(data)
    except DecodeFailure as exc:
        raise ParseFailure(1, 1, f"cannot decode: {exc}; add a coding cookie (PEP 263) or save as UTF-8") from None
    uses_runtime = imports_runtime(data, options.runtime_import)
    suppressions = find_suppressions(source)
    active = rules_triggered_by(data, rules)
    words = _words(tuple(active))
    if not suppressions and not any(w in source.code for w in words):
        return PortResult(None, (), source.encoding, uses_runtime)  # the words occur only in strings and comments
    tree = _parse_ast(source)
    names = ModuleNames.from_ast(tree, _expression_reader(source), options.runtime_import)
    module = _Module(source, tree, names, active, options, suppressions)
    plan = planning.whole_module(source)
    if focused:
        plan = planning.focused(source, tree, names, words, _whole_function_test(active))
    try:
        outcomes = [module.port_region(region, focused) for region in plan]
    except _Unfocusable:
        module.used_suppressions.clear()
        outcomes = [module.port_region(region, False) for region in planning.whole_module(source)]
    return module.finish(outcomes, rules, uses_runtime)


def regions_of(data: bytes, rules: Sequence[type[Rule]] = ALL_RULES, runtime_import: str = "vsock_runtime") -> list[Region]:
    """The regions focused porting hands libcst for `data` (for tests and for curious readers)."""
    source = Source(data)
    tree = _parse_ast(source)
    active = rules_triggered_by(data, rules)
    names = ModuleNames.from_ast(tree, _expression_reader(source), runtime_import)
    return planning.focused(source, tree, names, _words(tuple(active)), _whole_function_test(active))


def _words(rules: tuple[type[Rule], ...]) -> tuple[bytes, ...]:
    return tuple(sorted({w for rule in rules for w in rule.words_and_triggers()}))


def _whole_function_test(rules: Sequence[type[Rule]]):
    groups = [cls.whole_function_words for cls in rules if cls.whole_function_words]

    def whole(code: bytes) -> bool:
        return any(all(any(w in code for w in group) for group in rule_groups) for rule_groups in groups)

    return whole


def _parse_ast(source: Source) -> ast.Module:
    try:
        return ast.parse(source.data)
    except SyntaxError as exc:
        hint = "; this looks like Python 2 code, which vsockport does not parse" if _PY2_HINTS.search(source.data) else ""
        raise ParseFailure(exc.lineno or 1, exc.offset or 1, f"{exc.msg}{hint}") from None
    except (ValueError, MemoryError, RecursionError) as exc:
        raise ParseFailure(1, 1, str(exc) or type(exc).__name__) from None


def _expression_reader(source: Source):
    def expression_at(node: ast.expr) -> cst.BaseExpression:
        segment = ast.get_source_segment(source.text, node)
        try:
            return cst.parse_expression(segment or "")
        except (cst.ParserSyntaxError, RecursionError):
            return cst.Name("__vsockport_unreadable__")  # a constant libcst cannot read alone: unknown

    return expression_at


# -- one region -------------------------------------------------------------------------------------

@dataclass
class _Pass:
    """The edits (start, end, content) one pass applied to its text, sorted: maps offsets across it."""

    edits: list[tuple[int, int, str]]

    def to_earlier(self, offset: int) -> int:
        """An offset of the text after the pass, in the text before it (inside new text: its start)."""
        shift = 0
        for start, end, content in self.edits:
            if offset < start + shift:
                break
            if offset < start + shift + len(content):
                return start
            shift += len(content) - (end - start)
        return offset - shift

    def to_later(self, offset: int) -> int:
        """An offset of the text before the pass, in the text after it (inside a replaced node: its start)."""
        shift = 0
        for start, end, content in self.edits:
            if offset <= start:
                break
            if offset < end:
                return start + shift
            shift += len(content) - (end - start)
        return offset + shift


@dataclass
class _RegionOutcome:
    region: Region
    original: str  # the region's lines as they were
    new_lines: str | None  # the region's lines after the port; None: unchanged
    findings: list[Finding]
    needs: set[str]
    passes: list[_Pass]
    first_edit_line: int  # the file line of the first edit (of the region's end when none)

    def to_later(self, offset: int) -> int:
        """An offset within the original lines, in the new lines."""
        offset += len(self.region.prefix)
        for done in self.passes:
            offset = done.to_later(offset)
        return offset - len(self.region.prefix)


@dataclass
class _Module:
    source: Source
    tree: ast.Module
    names: ModuleNames
    rules: Sequence[type[Rule]]
    options: PortOptions
    suppressions: dict
    used_suppressions: dict[int, set[str]] = field(default_factory=dict)

    def port_region(self, region: Region, focused: bool) -> _RegionOutcome:
        """Run the rules over one region until no fix is left; findings are those of the first pass."""
        original = self.source.lines(region.start, region.end)
        text = region.prefix + original + region.suffix
        first_index = LineIndex(text)
        first_line = region.start - (first_index.position(len(region.prefix))[0] - 1)  # the file line of line 1
        findings: list[Finding] = []
        needs: set[str] = set()
        passes: list[_Pass] = []
        first_edit_line = region.end
        names = self.names
        for number in range(MAX_PASSES + 1):
            module = self._parse(text, region, focused)
            reports = _run(module, self.rules, names, self.options)
            if not reports:
                break
            spans = _Spans(module, reports, text)

            def file_line(offset: int) -> int:
                for done in reversed(passes):
                    offset = done.to_earlier(offset)
                return first_line + first_index.position(offset)[0] - 1

            decided = _decide(reports, spans, file_line, self.suppressions, self.options, self.used_suppressions)
            if number == 0:
                findings = [_finding(report, state, spans, first_index, first_line)
                            for report, state, _ in decided if not report.audit]
            edits = _choose([r for r, _, applies in decided if applies], spans, text, file_line)
            if not edits:
                # The ported code, as it will be written: what the auditing rules say of it, placed in
                # the original file, where no other finding stands already.
                taken = {(f.line, f.column) for f in findings}
                audited = [_finding(report, state, _Mapped(spans, passes), first_index, first_line)
                           for report, state, _ in decided if report.audit]
                findings += [f for f in audited if (f.line, f.column) not in taken]
                break
            if number == MAX_PASSES:
                line = file_line(edits[0][0][0])
                raise InternalError(line, 1, f"the fixes at line {line} do not converge after {MAX_PASSES} passes; "
                                             "left untouched (a vsockport bug: please report it)")
            for (start, end, _), report in edits:
                if start < len(region.prefix) or end > len(text) - len(region.suffix):
                    raise _Unfocusable  # an edit reaches into the wrapper: port the whole module
                needs |= report.needs
                first_edit_line = min(first_edit_line, file_line(start))
            applied = sorted(edit for edit, _ in edits)
            text = _apply(text, applied)
            passes.append(_Pass(applied))
            names = self.names.with_runtime_names(needs, self.options.runtime_import)
        new_lines = text[len(region.prefix) : len(text) - len(region.suffix)]
        return _RegionOutcome(region, original, new_lines if new_lines != original else None, findings, needs,
                              passes, first_edit_line)

    def _parse(self, text: str, region: Region, focused: bool) -> cst.Module:
        config = cst.PartialParserConfig(default_newline=self.source.newline)
        try:
            return cst.parse_module(text, config)
        except cst.ParserSyntaxError as exc:
            if focused:
                raise _Unfocusable from None
            raise ParseFailure(region.start + exc.raw_line - 1, exc.raw_column + 1, exc.message.splitlines()[0]) from None
        except RecursionError:
            raise
        except Exception as exc:  # libcst raises plain exceptions on some inputs it cannot handle
            if focused:
                raise _Unfocusable from None
            raise ParseFailure(region.start, 1, f"libcst cannot parse this module: {exc}") from None

    # -- the whole module again -----------------------------------------------------------------
    def finish(self, outcomes: list[_RegionOutcome], selected: Sequence[type[Rule]], uses_runtime: bool) -> PortResult:
        findings = [f for outcome in outcomes for f in outcome.findings]
        findings.extend(self._unused_suppressions(selected))
        findings.sort(key=lambda f: (f.line, f.column, f.code, f.message))
        changed = [o for o in outcomes if o.new_lines is not None]
        if not changed:
            return PortResult(None, tuple(findings), self.source.encoding, uses_runtime)
        new_text = _splice(self.source, changed)
        present = {m.decode() for m in _IDENTIFIER.findall(code_only(new_text.encode("utf-8", "surrogatepass")))}
        needs = {n for o in changed for n in o.needs} & present
        header = _RuntimeHeader(self.source, self.tree, self.options.runtime_import)
        edits = header.edits(needs, first_changed_line=min(o.first_edit_line for o in changed))
        new_text = _apply(new_text, [(self._to_new(changed, s), self._to_new(changed, e), c) for s, e, c in edits])
        new = self.source.encode(new_text)
        try:
            ast.parse(new)
        except SyntaxError as exc:  # never hand a user code that does not parse
            raise InternalError(exc.lineno or 1, exc.offset or 1, f"the ported module would not parse ({exc.msg}); "
                                                                 "left untouched (a vsockport bug: please report it)") from None
        return PortResult(new if new != self.source.data else None, tuple(findings), self.source.encoding,
                          uses_runtime or bool(needs))

    def _to_new(self, changed: list[_RegionOutcome], offset: int) -> int:
        """An offset of the original text, in the ported text."""
        shift = 0
        for outcome in changed:
            start = self.source.offset(outcome.region.start)
            end = start + len(outcome.original)
            if offset <= start:
                break  # before the region (an insertion at its first line goes above it)
            if offset < end:
                return start + shift + outcome.to_later(offset - start)
            shift += len(outcome.new_lines) - len(outcome.original)
        return offset + shift

    def _unused_suppressions(self, selected: Sequence[type[Rule]]) -> list[Finding]:
        active = {rule.code for rule in selected}
        if UNUSED_SUPPRESSION.code not in active:
            return []
        every_rule_ran = {rule.code for rule in ALL_RULES} <= active
        stale = unused(self.suppressions, self.used_suppressions, active, every_rule_ran)
        findings = []
        for line, message in stale:
            start, end = comment_span(self.source.lines(line, line))
            findings.append(Finding(UNUSED_SUPPRESSION.code, UNUSED_SUPPRESSION.name, message, line, start + 1, line,
                                    end + 1, State.NEEDS_REVIEW))
        return findings


class _Mapped:
    """Spans of a later pass, read as offsets of the region's original text."""

    def __init__(self, spans: "_Spans", passes: list[_Pass]) -> None:
        self._spans, self._passes = spans, passes

    def __getitem__(self, node: cst.CSTNode) -> tuple[int, int]:
        start, end = self._spans[node]
        for done in reversed(self._passes):
            start, end = done.to_earlier(start), done.to_earlier(end)
        return start, end


def _finding(report: Report, state: State, spans: "_Spans", index: LineIndex, first_line: int) -> Finding:
    start, end = spans[report.node]
    line, column = index.position(max(start, 0))
    end_line, end_column = index.position(max(end, start, 0))
    line, end_line = first_line + line - 1, first_line + end_line - 1
    fix = None
    if report.replacement is not None:
        fix = Fix(report.applicability, (Edit(line, column, end_line, end_column, spans.code(report.replacement, report.node)),))
    return Finding(report.code, report.rule, report.message, line, column, end_line, end_column, state, fix)


# -- running rules ----------------------------------------------------------------------------------

def _run(module: cst.Module, rule_classes: Sequence[type[Rule]], names: ModuleNames, options: PortOptions) -> list[Report]:
    """Every rule over one tree, in one walk: each node is offered to the rules with a method for its
    type (libcst's own visitors would rebuild every node they pass)."""
    parents = Parents(module)
    rules = [cls(names, options, parents) for cls in rule_classes]
    visitors: dict[type, list] = {}
    leavers: dict[type, list] = {}
    for rule in rules:
        for kind, attr, leaving in _handlers(type(rule)):
            (leavers if leaving else visitors).setdefault(kind, []).append(getattr(rule, attr))
    stack: list = [module]
    while stack:
        node = stack.pop()
        if node.__class__ is _Leave:
            for leave in leavers[type(node.node)]:
                leave(node.node)
            continue
        kind = type(node)
        for visit in visitors.get(kind, ()):
            visit(node)
        if kind in leavers:
            stack.append(_Leave(node))
        stack.extend(reversed(children(node)))
    return [report for rule in rules for report in rule.reports]


@lru_cache(maxsize=None)
def _handlers(rule: type[Rule]) -> tuple[tuple[type, str, bool], ...]:
    """(node type, method name, is a leave method) of a rule class's visit_/leave_ methods."""
    return tuple((getattr(cst, attr[6:]), attr, attr.startswith("leave_"))
                 for attr in dir(rule) if attr.startswith(("visit_", "leave_")))


class _Leave:
    __slots__ = ("node",)

    def __init__(self, node: cst.CSTNode) -> None:
        self.node = node


class _SpanRecorder(CodegenState):
    """Code generation that notes where the wanted nodes' code starts and ends (in characters) and the
    indentation in force there (a multi-line expression prints its inner lines with it)."""

    def __init__(self, module: cst.Module, wanted: set) -> None:
        super().__init__(default_indent=module.default_indent, default_newline=module.default_newline)
        self.wanted = wanted
        self.spans: dict = {}
        self.indents: dict = {}
        self._starts: list[int] = []
        self.position = 0

    def add_token(self, value: str) -> None:
        self.tokens.append(value)
        self.position += len(value)

    def add_indent_tokens(self) -> None:
        self.tokens.extend(self.indent_tokens)
        self.position += sum(len(t) for t in self.indent_tokens)

    def before_codegen(self, node: cst.CSTNode) -> None:
        self._starts.append(self.position)
        if node in self.wanted:
            self.indents[node] = list(self.indent_tokens)

    def after_codegen(self, node: cst.CSTNode) -> None:
        start = self._starts.pop()
        if node in self.wanted:
            self.spans[node] = (start, self.position)


class _Spans:
    """Where each reported node is in the region's text, how libcst prints it there, and how its
    replacement prints in the same place."""

    def __init__(self, module: cst.Module, reports: list[Report], text: str) -> None:
        recorder = _SpanRecorder(module, {r.node for r in reports} | {r.keep for r in reports if r.keep is not None})
        module._codegen(recorder)
        self._module, self._recorder = module, recorder
        self._printed = "".join(recorder.tokens)
        # libcst may print something else somewhere (it drops the space in `except E :`): spans move
        # from its text to the real one, and an edit of what it would reformat is refused.
        self._to_text = None if self._printed == text else _OffsetMap(self._printed, text)

    def __getitem__(self, node: cst.CSTNode) -> tuple[int, int]:
        start, end = self._recorder.spans[node]
        if self._to_text is not None:
            return self._to_text(start), self._to_text(end)
        return start, end

    def printed(self, node: cst.CSTNode) -> str:
        start, end = self._recorder.spans[node]
        return self._printed[start:end]

    def code(self, replacement: cst.CSTNode, instead_of: cst.CSTNode) -> str:
        state = CodegenState(default_indent=self._module.default_indent, default_newline=self._module.default_newline)
        state.indent_tokens = list(self._recorder.indents[instead_of])
        replacement._codegen(state)
        return "".join(state.tokens)


class _OffsetMap:
    """Offsets of one text in another that differs from it inside a few lines (same line count):
    outside the differing stretches offsets move with their line; where they cannot, they map to -1."""

    def __init__(self, printed: str, text: str) -> None:
        self._printed = LineIndex(printed)
        self._text = LineIndex(text)
        printed_lines, text_lines = printed.splitlines(True), text.splitlines(True)
        self._same = len(printed_lines) == len(text_lines)
        self._lines = {i + 1: (a, b) for i, (a, b) in enumerate(zip(printed_lines, text_lines)) if a != b} if self._same else {}

    def __call__(self, offset: int) -> int:
        if not self._same:
            return -1
        line, column = self._printed.position(offset)
        if line in self._lines:
            printed_line, text_line = self._lines[line]
            matcher = difflib.SequenceMatcher(None, printed_line, text_line, autojunk=False)
            for a, b, size in matcher.get_matching_blocks():
                if size and a <= column - 1 <= a + size:
                    column = b + (column - 1 - a) + 1
                    break
            else:
                return -1
        return self._text.offset(line, column)


# -- deciding and applying ----------------------------------------------------------------------------

def _decide(reports: list[Report], spans: dict, line_of, suppressions, options: PortOptions,
            used: dict[int, set[str]]) -> list[tuple[Report, State, bool]]:
    """(report, state, whether its fix applies) for each report that is not suppressed, in source
    order. A held-back or suppressed fix never hides another report."""
    kept = [spans[r.keep] for r in reports if r.keep is not None]
    decided = []
    for report in sorted(reports, key=lambda r: (spans[r.node][0], -spans[r.node][1], r.code, r.message)):
        start, end = spans[report.node]
        if report.keep is None and any(k_start <= start and end <= k_end for k_start, k_end in kept):
            continue  # inside a node a rule keeps whole: nothing there is touched or reported
        line = line_of(start)
        if suppresses(suppressions, line, report.code):
            used.setdefault(line, set()).add(report.code)
            continue
        if report.audit and line in suppressions:
            continue  # a line whose findings someone suppressed is theirs: the audit says nothing more
        if report.note:
            decided.append((report, State.NOTE, False))
        elif report.replacement is None:
            decided.append((report, State.NEEDS_REVIEW, False))
        elif report.applicability is Applicability.UNSAFE and not options.unsafe_fixes:
            decided.append((report, State.HELD_BACK, False))
        else:
            decided.append((report, State.FIXABLE, True))
    return decided


def _choose(reports: list[Report], spans: "_Spans", text: str, file_line):
    """The fixes of one pass that do not overlap, earliest (and outermost) first; the others wait for
    the next pass. An edit replaces exactly the node's own text, which libcst must print as it was."""
    chosen = []
    taken_end = -1
    for report in sorted(reports, key=lambda r: (spans[r.node][0], -spans[r.node][1], r.code, r.message)):
        start, end = spans[report.node]
        if start < taken_end:
            continue
        printed = spans.printed(report.node)
        if start < 0 or end < 0 or text[start:end] != printed:
            raise Unfaithful(file_line(max(start, 0)))
        content = spans.code(report.replacement, report.node)
        if content == printed:
            continue  # a replacement that prints as the node does changes nothing
        chosen.append(((start, end, content), report))
        taken_end = end
    return chosen


def _apply(text: str, edits: list[tuple[int, int, str]]) -> str:
    out, position = [], 0
    for start, end, content in sorted(edits, key=lambda e: (e[0], e[1])):
        out.append(text[position:start])
        out.append(content)
        position = end
    out.append(text[position:])
    return "".join(out)


def _splice(source: Source, changed: list[_RegionOutcome]) -> str:
    """The module's text with each changed region's new lines in place."""
    out, line = [], 1
    for outcome in changed:
        if outcome.region.start > line:
            out.append(source.lines(line, outcome.region.start - 1))
        out.append(outcome.new_lines)
        line = outcome.region.end + 1
    out.append(source.text[source.offset(line):])
    return "".join(out)


# -- the runtime import -------------------------------------------------------------------------------

class _RuntimeHeader:
    """`from <runtime> import ...` (and definitions such as `afVMCI = VMCISock_GetAFValue()`) placed
    once: an existing runtime import is extended in place, else the import goes after the docstring,
    `__future__` imports and the leading imports (and before the first statement a fix changed)."""

    def __init__(self, source: Source, tree: ast.Module, runtime_import: str) -> None:
        self.source, self.runtime_import = source, runtime_import
        self.units = planning.units(tree.body)
        self.assigned = {t.id for s in tree.body if isinstance(s, ast.Assign) for t in s.targets if isinstance(t, ast.Name)}

    def edits(self, needs: set[str], first_changed_line: int) -> list[tuple[int, int, str]]:
        """(start, end, content) edits of the original text that import `needs`."""
        imports = {n for n in needs if n not in DEFINITIONS} | {DEFINITIONS[n][0] for n in needs if n in DEFINITIONS}
        definitions = "".join(DEFINITIONS[n][1] + self.source.newline for n in sorted(needs)
                              if n in DEFINITIONS and n not in self.assigned)
        if not imports and not definitions:
            return []
        existing = self._existing()
        if existing is not None:
            unit, node = existing
            have = {a.asname or a.name for a in node.names}
            edits = []
            if not imports <= have:
                start = self._char_offset(node.lineno, node.col_offset)
                end = self._char_offset(node.end_lineno, node.end_col_offset)
                edits.append((start, end, self._import_line(imports | have).rstrip("\r\n")))
            if definitions:
                at = self.source.offset(unit.end + 1)
                edits.append((at, at, self._after_last_line(at, definitions)))
            return edits
        index, after = self._insertion_point(first_changed_line)
        text = self._import_line(imports) + definitions
        if after is not None and not self._is_import(after):
            text = self.source.newline + text  # after a docstring: keep its separation from what follows
        if index < len(self.units):
            at = self.source.offset(self.units[index - 1].end + 1 if index > 0 else self.units[0].start)
        else:
            at = len(self.source.text)
        return [(at, at, self._after_last_line(at, text))]

    def _after_last_line(self, at: int, text: str) -> str:
        """`text`, on a line of its own also at the end of a file without a final line break."""
        if at == len(self.source.text) and self.source.text and not self.source.text.endswith(("\n", "\r")):
            return self.source.newline + text
        return text

    def _existing(self):
        for unit in self.units:
            node = unit.stmts[0]
            if self._is_import(unit) and isinstance(node, ast.ImportFrom) and node.names[0].name != "*":
                if "." * node.level + (node.module or "") == self.runtime_import:
                    return unit, node
        return None

    def _insertion_point(self, first_changed_line: int) -> tuple[int, "planning.Unit | None"]:
        index = 1 if self.units and self._is_docstring(self.units[0]) else 0
        while index < len(self.units) and self._is_future(self.units[index]):
            index += 1
        earliest = index
        last_import = None
        for position in range(index, len(self.units)):
            unit = self.units[position]
            if self._is_import(unit):
                last_import = position
            elif len(unit.stmts) == 1 and isinstance(unit.stmts[0], (ast.Try, ast.If)) and last_import is not None:
                continue  # guarded imports (try: import x / except ImportError) inside the import block
            else:
                break
        insert_at = index if last_import is None else last_import + 1
        # Never after a statement that already uses what the import brings.
        changed = next((i for i, u in enumerate(self.units) if u.end >= first_changed_line), len(self.units))
        insert_at = max(earliest, min(insert_at, changed))
        return insert_at, self.units[insert_at - 1] if insert_at > 0 else None

    @staticmethod
    def _is_import(unit) -> bool:
        return all(isinstance(s, (ast.Import, ast.ImportFrom)) for s in unit.stmts)

    @staticmethod
    def _is_future(unit) -> bool:
        return all(isinstance(s, ast.ImportFrom) and s.module == "__future__" for s in unit.stmts)

    @staticmethod
    def _is_docstring(unit) -> bool:
        first = unit.stmts
        return len(first) == 1 and isinstance(first[0], ast.Expr) and isinstance(first[0].value, ast.Constant) \
            and isinstance(first[0].value.value, str)

    def _char_offset(self, line: int, utf8_column: int) -> int:
        text = self.source.lines(line, line)
        return self.source.offset(line) + len(text.encode("utf-8")[:utf8_column].decode("utf-8", "replace"))

    def _import_line(self, names: set[str]) -> str:
        """`from runtime import a, b`, wrapped one name per line (as black would) when it gets long."""
        newline = self.source.newline
        ordered = sorted(names)
        text = f"from {self.runtime_import} import {', '.join(ordered)}"
        if len(text) > _MAX_IMPORT_LINE:
            text = f"from {self.runtime_import} import ({newline}" + "".join(f"    {n},{newline}" for n in ordered) + ")"
        return text + newline
