"""The rule contract and the single traversal that runs every rule over one module.

A rule is a class with a docstring in fixed sections (What it does / Why / Example / Fix safety),
before/after `examples` that the test suite runs, and libcst-style `visit_<Node>` / `leave_<Node>` methods.
Rules identify code on `original_node` and return changes on `updated_node`, so they compose in one pass.
"""

from __future__ import annotations

import inspect
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable, ClassVar, Iterable, Mapping, Sequence

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from vsockport.rules.names import ModuleNames

# The name a ported module binds to the vsock address family, as VMware's porting guide does.
AF_NAME = "afVMCI"
AF_FACTORY = "VMCISock_GetAFValue"


@dataclass(frozen=True)
class Example:
    """`before` ported by the rule alone gives `after` (None: left unchanged) and reports `codes`."""

    before: str
    after: str | None = None
    codes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Finding:
    code: str
    rule: str
    message: str
    line: int
    column: int
    fixable: bool
    note: bool = False  # informational: something deliberately left alone; never fails a run
    fix_safety: str = "none"  # this fix's: "safe", "unsafe" or "none"
    held: bool = False  # an unsafe fix not applied (no --unsafe-fixes): the code is left as it was

    @property
    def needs_review(self) -> bool:
        return not self.fixable and not self.note


@dataclass(frozen=True)
class PortOptions:
    """What rules may know about the port: host→CID map and how to import the runtime."""

    cid_map: Mapping[str, int] = field(default_factory=dict)
    runtime_import: str = "vsock_runtime"  # module path as written in the import ('.vsock_runtime' in packages)
    unsafe_fixes: bool = False  # apply fixes that may change behaviour beyond the port


# `# vsockport: ignore` (every code) or `# vsockport: ignore[VS008, VS012]`, at the end of a line.
_SUPPRESSION = re.compile(rb"#\s*vsockport:\s*ignore(?:\[([A-Za-z0-9_,\s]*)\])?")
UNUSED_SUPPRESSION = "VS100"


def find_suppressions(source: bytes) -> dict[int, frozenset[str] | None]:
    """Line number -> suppressed codes (None: all of them)."""
    if b"vsockport:" not in source:
        return {}
    found: dict[int, frozenset[str] | None] = {}
    for number, line in enumerate(source.splitlines(), 1):
        match = _SUPPRESSION.search(line)
        if match is not None:
            codes = match.group(1)
            found[number] = None if codes is None else frozenset(c.strip().upper() for c in codes.decode().split(",") if c.strip())
    return found


class Suppressed(Exception):
    """Raised by Rule.report on a suppressed line: the runner drops that rule's change to the node."""


class ModuleContext:
    """Per-module state shared by all rules: names, options, requested runtime names and findings."""

    def __init__(self, module: cst.Module, options: PortOptions, suppressions: Mapping[int, frozenset[str] | None] | None = None,
                 names: ModuleNames | None = None) -> None:
        self.names = names if names is not None else ModuleNames(module)
        self.options = options
        self.findings: list[Finding] = []
        self.suppressions = suppressions or {}
        self.used_suppressions: dict[int, set[str]] = defaultdict(set)
        self.dropped_changes = False  # a suppressed or held-back fix may have asked for runtime names
        self.runtime_names: set[str] = set()
        self.needs_af_value = False
        self.focus(module, 0)

    def focus(self, module: cst.Module, line_offset: int) -> None:
        """Rules now see `module`, whose line 1 is line `line_offset + 1` of the file (focused porting)."""
        self.module = module
        self._line_offset = line_offset
        self._wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
        self._positions: Mapping[cst.CSTNode, object] | None = None

    def keep_runtime_names_used(self, used: set[str]) -> None:
        """After suppressed changes: import only the runtime names the new code really uses."""
        self.needs_af_value = self.needs_af_value and AF_NAME in used
        self.runtime_names &= used | ({AF_FACTORY} if self.needs_af_value else set())

    def runtime_name(self, name: str) -> cst.Name:
        """A reference to `name` from the runtime module; the import is added after the pass."""
        self.runtime_names.add(name)
        return cst.Name(name)

    def af_family(self) -> cst.Name:
        self.needs_af_value = True
        self.runtime_names.add(AF_FACTORY)
        return cst.Name(AF_NAME)

    def is_runtime_name(self, node: cst.BaseExpression) -> bool:
        """True for names that already come from the runtime (so a second run leaves them alone)."""
        if isinstance(node, cst.Name) and node.value == AF_NAME:
            return True
        qualified = self.names.qualified(node)
        if qualified is None:
            return False
        module = qualified.rpartition(".")[0]
        return module.rpartition(".")[2] == self.options.runtime_import.rpartition(".")[2]

    def position(self, node: cst.CSTNode) -> tuple[int, int]:
        if self._positions is None:
            self._positions = self._wrapper.resolve(PositionProvider)
        pos = self._positions.get(node)
        return (pos.start.line + self._line_offset, pos.start.column + 1) if pos is not None else (0, 0)


class Rule:
    """Base class; see the module docstring for the contract."""

    code: ClassVar[str] = ""
    name: ClassVar[str] = ""
    fix_safety: ClassVar[str] = "safe"  # "safe", "unsafe", "mixed" (per finding) or "none" (report only)
    examples: ClassVar[Sequence[Example]] = ()
    # Byte strings of which at least one must occur in a file for this rule to have anything to do.
    triggers: ClassVar[Sequence[bytes]] = (b"socket",)
    # Byte strings of which at least one occurs, outside strings and comments, in every statement this
    # rule changes or reports (local aliases and constants standing for them are added per file).
    # Focused porting hands libcst only such statements; tests check it matches whole-module porting.
    words: ClassVar[Sequence[bytes]] = ()

    def __init__(self, ctx: ModuleContext) -> None:
        self.ctx = ctx
        self.names = ctx.names

    def report(self, node: cst.CSTNode, message: str, *, fixable: bool = True, note: bool = False,
               unsafe: bool = False) -> None:
        """Record a finding. On a line with a matching suppression comment, raise Suppressed instead:
        the runner then keeps this rule's hands off the node, so nothing there changes either."""
        line, column = self.ctx.position(node)
        if line in self.ctx.suppressions:
            codes = self.ctx.suppressions[line]
            if codes is None or self.code in codes:
                self.ctx.used_suppressions[line].add(self.code)
                self.ctx.dropped_changes = True
                raise Suppressed
        fixable = fixable and not note
        safety = ("unsafe" if unsafe else "safe") if fixable else "none"
        if fixable and unsafe and not self.ctx.options.unsafe_fixes:
            self.ctx.findings.append(Finding(self.code, self.name, str(message), line, column, True, False, safety, held=True))
            self.ctx.dropped_changes = True
            raise Suppressed  # the runner drops this rule's change to the node
        self.ctx.findings.append(Finding(self.code, self.name, str(message), line, column, fixable, note, safety))

    # Node types this rule may keep whole (see `keeps`); the runner asks only about these types.
    keeps_types: ClassVar[tuple[type[cst.CSTNode], ...]] = ()
    # Groups of byte strings: a node this rule keeps has a word of every group in its code. Focused
    # porting hands such functions to libcst whole (empty: every function, to be safe).
    keeps_words: ClassVar[tuple[tuple[bytes, ...], ...]] = ()

    def keeps(self, node: cst.CSTNode) -> bool:
        """True to leave `node` and everything inside it untouched by every rule."""
        return False

    @classmethod
    def documentation(cls) -> str:
        return inspect.cleandoc(cls.__doc__ or "")

    @classmethod
    def summary(cls) -> str:
        return cls.documentation().splitlines()[0] if cls.__doc__ else ""


def changed(node: cst.CSTNode, **fields) -> cst.CSTNode:
    """`node.with_changes(**fields)`, or `node` itself when every field already is that object: the
    runner tells an untouched tree by identity and then skips printing it."""
    if all(getattr(node, name) is value for name, value in fields.items()):
        return node
    return node.with_changes(**fields)


class _RuleRunner(cst.CSTTransformer):
    """One traversal; each node is offered to every rule that has a method for its type."""

    def __init__(self, rules: Iterable[Rule]) -> None:
        super().__init__()
        self._visitors: dict[str, list[Callable]] = defaultdict(list)
        self._leavers: dict[str, list[Callable]] = defaultdict(list)
        self._keepers = [rule for rule in rules if rule.keeps_types]
        self._keep_types = tuple({t for rule in self._keepers for t in rule.keeps_types})
        self.changed = False  # did any rule hand back a node other than the one it was given?
        for rule in rules:
            for attr in dir(type(rule)):
                if attr.startswith("visit_"):
                    self._visitors[attr[6:]].append(getattr(rule, attr))
                elif attr.startswith("leave_"):
                    self._leavers[attr[6:]].append(getattr(rule, attr))

    # libcst looks up `visit_<Node>_<attribute>` methods around every child of every node; no rule
    # has any, and skipping the lookups saves about a tenth of the traversal.
    def on_visit_attribute(self, node: cst.CSTNode, attribute: str) -> None:
        pass

    def on_leave_attribute(self, original_node: cst.CSTNode, attribute: str) -> None:
        pass

    def on_visit(self, node: cst.CSTNode) -> bool:
        for visit in self._visitors.get(type(node).__name__, ()):
            try:
                visit(node)
            except Suppressed:
                pass
        # Every node of every file passes here: ask the keepers only about the types they keep.
        if self._keep_types and isinstance(node, self._keep_types):
            return not any(rule.keeps(node) for rule in self._keepers)
        return True

    def on_leave(self, original_node, updated_node):
        kind = type(original_node)
        for leave in self._leavers.get(kind.__name__, ()):
            try:
                result = leave(original_node, updated_node)
            except Suppressed:
                continue  # this rule's change to the node is dropped; other rules' changes stay
            self.changed = self.changed or result is not updated_node
            updated_node = result
            if type(updated_node) is not kind:
                break  # replaced by another kind of node (getattr(...) -> afVMCI): nothing left to port
        return updated_node


@dataclass
class RuleOutcome:
    module: cst.Module
    findings: list[Finding]
    uses_runtime: bool


class _NamesUsed(cst.CSTVisitor):
    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def on_visit_attribute(self, node: cst.CSTNode, attribute: str) -> None:
        pass  # see _RuleRunner

    def on_leave_attribute(self, original_node: cst.CSTNode, attribute: str) -> None:
        pass

    def visit_Name(self, node: cst.Name) -> None:
        self.names.add(node.value)


def rules_triggered_by(source: bytes, rule_classes: Iterable[type[Rule]]) -> list[type[Rule]]:
    """The rules with a trigger in `source`; the others have nothing to do in it (the trigger contract)."""
    return [cls for cls in rule_classes if any(t in source for t in cls.triggers)]


def imports_runtime(source: bytes, runtime_import: str) -> bool:
    return f"from {runtime_import} import".encode() in source


def run_rules(
    module: cst.Module,
    rule_classes: Sequence[type[Rule]],
    options: PortOptions,
    source: bytes | None = None,
) -> RuleOutcome:
    """Run the rules in one pass. `source` (the module's bytes) is where suppression comments are read."""
    source = module.bytes if source is None else source
    ctx = ModuleContext(module, options, find_suppressions(source))
    rules = [cls(ctx) for cls in rules_triggered_by(source, rule_classes)]
    new_module = module.visit(_RuleRunner(rules))
    if ctx.runtime_names and ctx.dropped_changes:
        # A suppressed change may have asked for runtime names it never used: import only what is used.
        used = _NamesUsed()
        new_module.visit(used)
        ctx.keep_runtime_names_used(used.names)
    if ctx.runtime_names:
        new_module = add_runtime_imports(new_module, ctx)
    ctx.findings.extend(_unused_suppressions(ctx, {cls.code for cls in rule_classes}))
    ctx.findings.sort(key=lambda f: (f.line, f.column, f.code))
    return RuleOutcome(new_module, ctx.findings, bool(ctx.runtime_names))


def _unused_suppressions(ctx: ModuleContext, active: set[str]) -> list[Finding]:
    """A suppression that silenced nothing is stale (like ruff's RUF100). Codes of rules that did not
    run (deselected) cannot be judged and are not reported."""
    from vsockport.rules import ALL_RULES  # the registry imports this module: import when called

    every_rule_ran = {rule.code for rule in ALL_RULES} <= active
    unused = []
    for line, codes in sorted(ctx.suppressions.items()):
        used = ctx.used_suppressions.get(line, set())
        if codes is None:
            if not used and every_rule_ran:
                unused.append(Finding(UNUSED_SUPPRESSION, "unused-suppression", "`# vsockport: ignore` suppresses nothing on this line", line, 1, False))
            continue
        stale = sorted(code for code in codes - used if code in active or not code.startswith("VS"))
        if stale:
            unused.append(Finding(UNUSED_SUPPRESSION, "unused-suppression", f"unused suppression of {', '.join(stale)}", line, 1, False))
    return unused


# -- runtime import placement ---------------------------------------------------------------------

def _is_import_line(stmt: cst.CSTNode) -> bool:
    return isinstance(stmt, cst.SimpleStatementLine) and all(
        isinstance(s, (cst.Import, cst.ImportFrom)) for s in stmt.body
    )


def _is_docstring(stmt: cst.CSTNode) -> bool:
    return (
        isinstance(stmt, cst.SimpleStatementLine)
        and len(stmt.body) == 1
        and isinstance(stmt.body[0], cst.Expr)
        and isinstance(stmt.body[0].value, (cst.SimpleString, cst.ConcatenatedString))
    )


def _existing_runtime_import(stmt: cst.CSTNode, ctx: ModuleContext) -> cst.ImportFrom | None:
    if not _is_import_line(stmt):
        return None
    node = stmt.body[0]
    if isinstance(node, cst.ImportFrom) and node.module is not None and not isinstance(node.names, cst.ImportStar):
        written = "." * len(node.relative) + (cst.Module([]).code_for_node(node.module))
        if written == ctx.options.runtime_import:
            return node
    return None


def _is_af_assignment(stmt: cst.CSTNode) -> bool:
    return (
        isinstance(stmt, cst.SimpleStatementLine)
        and isinstance(stmt.body[0], cst.Assign)
        and any(isinstance(t.target, cst.Name) and t.target.value == AF_NAME for t in stmt.body[0].targets)
    )


def add_runtime_imports(module: cst.Module, ctx: ModuleContext, af_assigned: bool | None = None) -> cst.Module:
    """Import what the rules used from the runtime, once, after the module's leading imports.

    An existing runtime import is extended in place, so a second run (or a run after new code was
    added) never duplicates it.
    """
    body = list(module.body)
    wanted = set(ctx.runtime_names)
    for index, stmt in enumerate(body):
        existing = _existing_runtime_import(stmt, ctx)
        if existing is not None:
            have = {a.evaluated_name for a in existing.names}  # type: ignore[union-attr]
            if not wanted <= have:
                merged = _import_line(ctx.options.runtime_import, wanted | have)
                body[index] = merged.with_changes(leading_lines=stmt.leading_lines)
            wanted = set()
            insert_at = index + 1
            break
    else:
        insert_at = _insertion_index(body)
    new_lines: list[cst.BaseStatement] = []
    if wanted:
        new_lines.append(_import_line(ctx.options.runtime_import, wanted))
    if af_assigned is None:  # a caller holding only the module's head knows this from the whole module
        af_assigned = any(_is_af_assignment(s) for s in body)
    if ctx.needs_af_value and not af_assigned:
        new_lines.append(cst.parse_statement(f"{AF_NAME} = {AF_FACTORY}()"))
    if not new_lines:
        return module.with_changes(body=body)
    if insert_at > 0 and not _is_import_line(body[insert_at - 1]):
        # Inserted after a docstring: keep the docstring's separation from what follows.
        new_lines[0] = new_lines[0].with_changes(leading_lines=[cst.EmptyLine()])
    body[insert_at:insert_at] = new_lines
    return module.with_changes(body=body)


_MAX_IMPORT_LINE = 88


def _import_line(runtime_import: str, names: Iterable[str]) -> cst.SimpleStatementLine:
    """`from runtime import a, b`, wrapped one name per line (as black would) when it gets long."""
    ordered = sorted(names)
    text = f"from {runtime_import} import {', '.join(ordered)}"
    if len(text) > _MAX_IMPORT_LINE:
        text = f"from {runtime_import} import (\n" + "".join(f"    {n},\n" for n in ordered) + ")"
    return cst.parse_statement(text + "\n")  # type: ignore[return-value]


def _insertion_index(body: list[cst.BaseStatement]) -> int:
    """After the docstring, `__future__` imports and the leading block of imports."""
    index = 0
    if body and _is_docstring(body[0]):
        index = 1
    last_import = None
    for position in range(index, len(body)):
        stmt = body[position]
        if _is_import_line(stmt):
            last_import = position
        elif isinstance(stmt, (cst.Try, cst.If)) and last_import is not None:
            continue  # guarded imports (try: import x / except ImportError) inside the import block
        else:
            break
    return index if last_import is None else last_import + 1
