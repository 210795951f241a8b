"""One module through the pipeline, the same code path for a whole file and for focused regions:

    plan regions -> for each region: parse -> run every rule -> decide -> apply -> repeat until
    nothing changes -> splice the regions back -> import what the fixes need from the runtime, once

Where a fix is decided, filtered and applied, one place each:
- decided: a rule's `report(node, message, replacement=...)` (rules/api.py);
- filtered: `fixes.decide`: suppression comments, nodes a rule keeps whole, unsafe fixes held back,
  fixes that overlap an earlier one (they wait for the next pass);
- applied: `fixes.apply`, the edits of one pass, as text (as ruff applies fixes).

Edits replace the exact characters of the reported node (its code as libcst prints it, which must be
the original text), so everything else stays byte for byte. After a pass with edits the region is
parsed again and every rule runs again, until no fix is left (ruff's fix loop); a fix that never
converges is an internal error that leaves the file untouched. A region that cannot be ported alone
(it does not parse alone, or an edit would reach into the wrapper it was parsed in) makes the whole
module one region.
"""

from __future__ import annotations

import ast
import bisect
import itertools
import re
import sys
import threading
from dataclasses import dataclass, field, replace
from typing import Sequence

import libcst as cst

from vsockport import fixes
from vsockport import regions as planning
from vsockport.errors import InternalError, ParseFailure, PortError, Unfaithful  # noqa: F401 (re-exported)
from vsockport.header import RuntimeHeader, aliases, script_import_line
from vsockport.regions import Region
from vsockport.results import Edit, Finding, Fix, PortResult, State
from vsockport.rules import ALL_RULES, UNUSED_SUPPRESSION
from vsockport.rules.api import PortOptions, Report, Rule
from vsockport.rules.names import ModuleNames
from vsockport.runner import run_rules
from vsockport.source import DecodeFailure, LineIndex, Source, code_only
from vsockport.spans import Spans
from vsockport.suppressions import comment_span, find_suppressions, unused

MAX_PASSES = 10
_PY2_HINTS = re.compile(rb"^\s*(print\s+[^\s(=]|exec\s+[\"'\w]|except\s+[\w.]+\s*,\s*\w+\s*:)|\bur[\"']", re.MULTILINE)
_IDENTIFIER = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*")
_DEEP_STACK_BYTES = 512 * 1024 * 1024
_DEEP_RECURSION_LIMIT = 200_000


class _Unfocusable(Exception):
    """A region cannot be ported alone: port the whole module as one region instead."""


# -- the public entry point -------------------------------------------------------------------------

def rules_triggered_by(data: bytes, rule_classes: Sequence[type[Rule]]) -> list[type[Rule]]:
    """The rules with a trigger in `data`; the others have nothing to do in it (the trigger contract)."""
    return [cls for cls in rule_classes if any(t in data for t in cls.triggers)]


def imports_runtime(data: bytes, runtime_import: str) -> bool:
    return f"from {runtime_import} import".encode() in data


def imports_runtime_as_script(data: bytes, runtime_import: str) -> bool:
    """Whether a module in a package has the two-way runtime import (header.runs_as_script)."""
    return runtime_import.startswith(".") and script_import_line(runtime_import) in data


def port_source(data: bytes, options: PortOptions, rules: Sequence[type[Rule]] = ALL_RULES, *,
                focused: bool = True) -> PortResult:
    """Port one module's bytes. `focused` hands libcst only the regions a rule could touch; without it
    (and wherever a region cannot be parsed alone) the whole module is one region. A module nested too
    deeply for the default stack (long implicit string concatenations, say) is ported again on a big
    stack: libcst walks trees recursively."""
    try:
        return _port(data, options, rules, focused)
    except RecursionError:
        return _on_a_big_stack(lambda: _port(data, options, rules, focused))


def _on_a_big_stack(work):
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["value"] = work()
        except BaseException as exc:  # handed back to the caller's thread
            outcome["error"] = exc

    previous_stack = threading.stack_size(_DEEP_STACK_BYTES)
    previous_limit = sys.getrecursionlimit()
    sys.setrecursionlimit(_DEEP_RECURSION_LIMIT)
    try:
        thread = threading.Thread(target=run)
        thread.start()
        thread.join()
    finally:
        sys.setrecursionlimit(previous_limit)
        threading.stack_size(previous_stack)
    if isinstance(outcome.get("error"), RecursionError):
        raise PortError(1, 1, "nesting too deep even with a 512 MiB stack")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _port(data: bytes, options: PortOptions, rules: Sequence[type[Rule]], focused: bool) -> PortResult:
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
    if not suppressions and not any(w in source.code for w in words) and not any(
            w in data for w in _string_words(tuple(active))):
        return PortResult(None, (), source.encoding, uses_runtime,  # the words occur only in strings and comments
                          uses_runtime and imports_runtime_as_script(data, options.runtime_import))
    tree = _parse_ast(source)
    names = ModuleNames.from_ast(tree, _expression_reader(source), options.runtime_import, data=source.data)
    module = _Module(source, tree, names, active, options, suppressions, aliases(names))
    plan = planning.whole_module(source)
    if focused:
        plan = planning.focused(source, tree, names, words, _whole_function_test(active), _string_words(tuple(active)))
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
    names = ModuleNames.from_ast(tree, _expression_reader(source), runtime_import, data=data)
    return planning.focused(source, tree, names, _words(tuple(active)), _whole_function_test(active),
                            _string_words(tuple(active)))


def _words(rules: tuple[type[Rule], ...]) -> tuple[bytes, ...]:
    return tuple(sorted({w for rule in rules for w in rule.words_and_triggers()}))


def _string_words(rules: tuple[type[Rule], ...]) -> tuple[bytes, ...]:
    return tuple(sorted({w for rule in rules for w in rule.string_words}))


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
        segment = _segment(source, node)
        try:
            return cst.parse_expression(segment or "")
        except (cst.ParserSyntaxError, RecursionError):
            return cst.Name("__vsockport_unreadable__")  # a constant libcst cannot read alone: unknown

    return expression_at


def _segment(source: Source, node: ast.expr) -> str:
    """ast.get_source_segment, from the module's line index: that function splits the whole module on
    each call, which made a module with many constants quadratic (test_socket.py: 70 s). ast columns
    are UTF-8 byte offsets within their line."""
    if getattr(node, "end_lineno", None) is None or node.end_col_offset is None:
        return ""
    first = source.lines(node.lineno, node.lineno).encode()
    if node.end_lineno == node.lineno:
        return first[node.col_offset:node.end_col_offset].decode()
    middle = source.lines(node.lineno + 1, node.end_lineno - 1)
    last = source.lines(node.end_lineno, node.end_lineno).encode()
    return first[node.col_offset:].decode() + middle + last[:node.end_col_offset].decode()


# -- one region -------------------------------------------------------------------------------------

@dataclass
class _RegionOutcome:
    region: Region
    original: str  # the region's lines as they were
    new_lines: str | None  # the region's lines after the port; None: unchanged
    findings: list[tuple[Finding, frozenset[str]]]  # with the runtime names each finding's fix needs
    needs: set[str]
    passes: list[fixes.Pass]
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
    aliases: dict[str, str]
    used_suppressions: dict[int, set[str]] = field(default_factory=dict)

    def port_region(self, region: Region, focused: bool) -> _RegionOutcome:
        """Run the rules over one region until no fix is left; findings are those of the first pass."""
        original = self.source.lines(region.start, region.end)
        text = region.prefix + original + region.suffix
        first_index = LineIndex(text)
        first_line = region.start - (first_index.position(len(region.prefix))[0] - 1)  # the file line of line 1
        findings: list[tuple[Finding, frozenset[str]]] = []
        needs: set[str] = set()
        passes: list[fixes.Pass] = []
        first_edit_line = region.end
        names = self.names
        for number in range(MAX_PASSES + 1):
            module = self._parse(text, region, focused)
            reports = run_rules(module, self.rules, names, self.options, text)
            if not reports:
                break
            wanted = {r.node for r in reports} | {r.keep for r in reports if r.keep is not None}
            spans = Spans(module, wanted, text, self.aliases)

            def file_line(offset: int) -> int:
                for done in reversed(passes):
                    offset = done.to_earlier(offset)
                return first_line + first_index.position(offset)[0] - 1

            decided = fixes.decide(reports, spans, text, file_line, self.suppressions, self.options, self.used_suppressions)
            if number == 0:
                findings = [(_finding(d.report, d.state, spans, first_index, first_line), d.report.needs)
                            for d in decided if not d.report.audit]
            applied = [d for d in decided if d.edit is not None]
            if not applied:
                # The ported code, as it will be written: what the auditing rules say of it, placed in
                # the original file, where no other finding stands already.
                taken = {(f.line, f.column) for f, _ in findings}
                audited = [_finding(d.report, d.state, _Mapped(spans, passes), first_index, first_line)
                           for d in decided if d.report.audit]
                findings += [(f, frozenset()) for f in audited if (f.line, f.column) not in taken]
                break
            if number == MAX_PASSES:
                line = file_line(applied[0].edit[0])
                raise InternalError(line, 1, f"the fixes at line {line} do not converge after {MAX_PASSES} passes; "
                                             "left untouched (a vsockport bug: please report it)")
            for decision in applied:
                start, end, _ = decision.edit
                if start < len(region.prefix) or end > len(text) - len(region.suffix):
                    raise _Unfocusable  # an edit reaches into the wrapper: port the whole module
                needs |= decision.report.needs
                first_edit_line = min(first_edit_line, file_line(start))
            edits = sorted(d.edit for d in applied)
            text = fixes.apply(text, edits)
            passes.append(fixes.Pass(edits))
            names = self.names.with_runtime_names({self.aliases.get(n, n): n for n in needs}, self.options.runtime_import)
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
        header = RuntimeHeader(self.source, self.tree, self.options.runtime_import, self.aliases)
        findings = [_with_import(f, needs, header, self.source) for outcome in outcomes for f, needs in outcome.findings]
        findings.extend(self._unused_suppressions(selected))
        findings.sort(key=lambda f: (f.line, f.column, f.code, f.message))
        changed = [o for o in outcomes if o.new_lines is not None]
        if not changed:
            return PortResult(None, tuple(findings), self.source.encoding, uses_runtime,
                              uses_runtime and imports_runtime_as_script(self.source.data, self.options.runtime_import))
        new_text = _splice(self.source, changed)
        present = {m.decode() for m in _IDENTIFIER.findall(code_only(new_text.encode("utf-8", "surrogatepass")))}
        needs = {n for o in changed for n in o.needs if header.bound(n) in present}
        edits = header.edits(needs, first_changed_line=min(o.first_edit_line for o in changed))
        to_new = _Splice(self.source, changed).to_new
        header_edits = sorted((to_new(s), to_new(e), c) for s, e, c in edits)
        new_text = fixes.apply(new_text, header_edits)
        new = self.source.encode(new_text)
        try:
            ast.parse(new)
        except SyntaxError as exc:  # never hand a user code that does not parse
            raise InternalError(exc.lineno or 1, exc.offset or 1, f"the ported module would not parse ({exc.msg}); "
                                                                 "left untouched (a vsockport bug: please report it)") from None
        ported = _Positions(self.source, fixes.Pass(header_edits), new_text, to_new)
        findings = [replace(f, ported_at=ported(f)) for f in findings]
        return PortResult(new if new != self.source.data else None, tuple(findings), self.source.encoding,
                          uses_runtime or bool(needs), imports_runtime_as_script(new, self.options.runtime_import))

    def _unused_suppressions(self, selected: Sequence[type[Rule]]) -> list[Finding]:
        active = {rule.code for rule in selected}
        if UNUSED_SUPPRESSION.code not in active:
            return []
        every_rule_ran = {rule.code for rule in ALL_RULES} <= active
        stale = unused(self.suppressions, self.used_suppressions, active, every_rule_ran, {r.code for r in ALL_RULES})
        findings = []
        for line, message in stale:
            start, end = comment_span(self.source.lines(line, line))
            findings.append(Finding(UNUSED_SUPPRESSION.code, UNUSED_SUPPRESSION.name, message, line, start + 1, line,
                                    end + 1, State.NEEDS_REVIEW))
        return findings


class _Splice:
    """Offsets of the original text in the spliced one (before the header): regions are found by
    bisection, so that a module with thousands of changed regions costs what its regions cost."""

    def __init__(self, source: Source, changed: list[_RegionOutcome]) -> None:
        self.changed = changed
        self.starts = [source.offset(o.region.start) for o in changed]
        self.ends = [start + len(o.original) for start, o in zip(self.starts, changed)]
        self.shifts = list(itertools.accumulate((len(o.new_lines) - len(o.original) for o in changed), initial=0))

    def to_new(self, offset: int) -> int:
        at = bisect.bisect_left(self.starts, offset) - 1  # the last region that starts before the offset
        if at < 0:
            return offset  # before every region (an insertion at a region's first line goes above it)
        start = self.starts[at]
        if offset < self.ends[at]:
            return start + self.shifts[at] + self.changed[at].to_later(offset - start)
        return offset + self.shifts[at + 1]


class _Positions:
    """Where a finding of the original text stands in the ported one: (line, column, end line, end
    column), as ruff reports what remains against the fixed source."""

    def __init__(self, source: Source, header: fixes.Pass, new_text: str, to_new) -> None:
        self.source, self.header, self.to_new = source, header, to_new
        self.original, self.ported = LineIndex(source.text), LineIndex(new_text)

    def __call__(self, finding: Finding) -> tuple[int, int, int, int]:
        start = self.original.offset(finding.line, finding.column)
        end = self.original.offset(finding.end_line, finding.end_column)
        new_start = self.header.to_later(self.to_new(start))
        new_end = max(new_start, self.header.to_later(self.to_new(end)))
        return (*self.ported.position(new_start), *self.ported.position(new_end))


def _with_import(finding: Finding, needs: frozenset[str], header: RuntimeHeader, source: Source) -> Finding:
    """A finding whose fix needs runtime names, with the edit that imports them added to its fix: a
    line of its own (never a change of an existing import), so that any set of fixes applied together
    gives code that runs (ruff's fixes carry their imports the same way)."""
    if finding.fix is None or not needs:
        return finding
    index = source.index
    at, _, content = header.insertion(needs, finding.line)
    added = [Edit(*index.position(at), *index.position(at), content)]
    return replace(finding, fix=Fix(finding.fix.applicability, (*finding.fix.edits, *added)))


class _Mapped:
    """Spans of a later pass, read as offsets of the region's original text."""

    def __init__(self, spans: Spans, passes: list[fixes.Pass]) -> None:
        self._spans, self._passes = spans, passes

    def __getitem__(self, node: cst.CSTNode) -> tuple[int, int]:
        start, end = self._spans[node]
        for done in reversed(self._passes):
            start, end = done.to_earlier(start), done.to_earlier(end)
        return start, end


def _finding(report: Report, state: State, spans, index: LineIndex, first_line: int) -> Finding:
    start, end = spans[report.node]
    line, column = index.position(max(start, 0))
    end_line, end_column = index.position(max(end, start, 0))
    line, end_line = first_line + line - 1, first_line + end_line - 1
    fix = None
    if report.replacement is not None:
        fix = Fix(report.applicability, (Edit(line, column, end_line, end_column, spans.code(report.replacement, report.node)),))
    return Finding(report.code, report.rule, report.message, line, column, end_line, end_column, state, fix)


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
