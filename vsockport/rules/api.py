"""The rule contract: what a rule is, what it may know, and the one thing it does: report.

A rule is a class in its own file under `vsockport/rules/`:

- a docstring in fixed sections (What it does / Why / Example / Fix safety), shown by
  `vsockport explain`;
- `examples`: before/after pairs that the test suite runs (Fixit's VALID/INVALID cases);
- `references`: qualified names (`socket.create_connection`) whose value uses in a module the rule
  hears about through `reference(node, qualified)`: the engine resolves every name once, by scope (a
  parameter, local variable, definition or keyword named like a socket API is not that API), and
  tells each rule only what it asked for;
- `visit_<Node>(node)` (and, rarely, `leave_<Node>(node)`) methods for everything else, called with
  libcst nodes of the original code; `self.qualified(node)` answers what a name means there.

`report(node, message, replacement=...)` records a finding, optionally with a proposed replacement for
`node`, as data (Fixit's `report(node, replacement=...)`, ruff's `Fix`). Names of the runtime in a
replacement are made with `runtime_name()` (or `af_family()`), which marks them: the pipeline imports
exactly the marked names, under the name the module can bind (an alias where the module already binds
that name). The pipeline decides which fixes apply (suppressions, safety, conflicts) and applies them;
a rule never sees another rule's edits, never changes anything shared, and never steers the engine.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import ClassVar, Collection, Sequence

import libcst as cst

from vsockport.options import PortOptions
from vsockport.results import Applicability
from vsockport.rules.helpers import RuntimeName, children, walk
from vsockport.rules.names import ModuleNames
from vsockport.rules.scopes import Scopes
from vsockport.runtime.contract import AF_FACTORY, AF_NAME, contract

__all__ = ["AF_NAME", "Example", "Parents", "PortOptions", "Report", "Rule", "RuntimeName", "af_family", "runtime_name"]


@dataclass(frozen=True)
class Example:
    """`before` ported by the rule alone gives `after` (None: left unchanged) and reports `codes`."""

    before: str
    after: str | None = None
    codes: tuple[str, ...] = ()
    options: dict = field(default_factory=dict)  # PortOptions the example is ported with

    def port_options(self, **more) -> PortOptions:
        return PortOptions(**{**self.options, **more})

    def command_line(self) -> str:
        """The options as vsockport's command line spells them ("" for none)."""
        words = [f"--cid {host}={cid}" for host, cid in self.options.get("cid_map", {}).items()]
        words += ["--vmci-datagrams"] if self.options.get("vmci_datagrams") else []
        return " ".join(words)


def ported_example(before: str, runtime_imports: str, after: str, codes: tuple[str, ...],
                   module_imports: str = "import socket\n") -> Example:
    """An example whose port adds `from vsock_runtime import <runtime_imports>` below `module_imports`."""
    return Example(module_imports + before, f"{module_imports}from vsock_runtime import {runtime_imports}\n{after}", codes)


@dataclass(frozen=True)
class Report:
    """One thing a rule saw: a finding about `node`, with an optional replacement for it."""

    code: str
    rule: str
    node: cst.CSTNode
    message: str
    replacement: cst.CSTNode | None = None
    applicability: Applicability = Applicability.SAFE
    note: bool = False  # left alone on purpose: informational, never fails a run
    keep: cst.CSTNode | None = None  # a node (holding `node`) no rule may touch or report inside
    needs: frozenset[str] = frozenset()  # runtime names the replacement uses (its RuntimeName nodes)
    audit: bool = False  # said of the ported code (see Rule.audits)


class Parents:
    """The parent of each node of one tree, computed on first use (most trees are never asked)."""

    def __init__(self, tree: cst.CSTNode | None) -> None:
        self._tree = tree
        self._parents: dict[cst.CSTNode, cst.CSTNode] | None = None

    def __call__(self, node: cst.CSTNode) -> cst.CSTNode | None:
        if self._parents is None:
            parents: dict[cst.CSTNode, cst.CSTNode] = {}
            stack = [self._tree] if self._tree is not None else []
            while stack:  # each node's children read once (a walk, then children again, read them twice)
                parent = stack.pop()
                below = children(parent)
                for child in below:
                    parents[child] = parent
                stack.extend(below)
            self._parents = parents
        return self._parents.get(node)

    def ancestors(self, node: cst.CSTNode):
        parent = self(node)
        while parent is not None:
            yield parent
            parent = self(parent)


def runtime_name(name: str) -> RuntimeName:
    """A reference to a name from the runtime module (the pipeline adds the import)."""
    if name not in contract().exports and name != AF_NAME:
        raise ValueError(f"the runtime does not export {name!r}")
    return RuntimeName(name)


def af_family() -> RuntimeName:
    """`afVMCI`, the vsock family, defined once per ported module (`afVMCI = VMCISock_GetAFValue()`)."""
    return RuntimeName(AF_NAME)


def runtime_names_in(node: cst.CSTNode) -> frozenset[str]:
    return frozenset(n.value for n in walk(node) if isinstance(n, RuntimeName))


# What each runtime-made name needs at the top of the module: a definition after the import.
DEFINITIONS = {AF_NAME: (AF_FACTORY, f"{{name}} = {{factory}}()")}


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
    # The planner hands libcst only such statements; a test checks every example keeps to it.
    words: ClassVar[Sequence[bytes]] = ()
    # Byte strings a rule looks for inside string literals (a class named in configuration data): a
    # statement holding one reaches libcst although strings are otherwise blanked for the planner.
    string_words: ClassVar[Sequence[bytes]] = ()
    # Qualified names whose value uses (called, passed, assigned, a base class, ...) reach reference().
    references: ClassVar[Collection[str]] = ()
    # A rule that judges whole functions (VS013): groups of byte strings, a word of each occurring in
    # every function it keeps. Such functions reach libcst whole.
    whole_function_words: ClassVar[tuple[tuple[bytes, ...], ...]] = ()
    # A rule that audits the port (VS016): its findings are taken from the ported code, the last pass
    # of the fix loop, instead of the original. It proposes no fixes.
    audits: ClassVar[bool] = False

    def __init__(self, names: ModuleNames, options: PortOptions, parents: Parents | None = None,
                 scopes: Scopes | None = None) -> None:
        self.names = names
        self.options = options
        self.parents = parents or Parents(None)  # node -> the node holding it (computed when first asked)
        self.scopes = scopes or Scopes(self.parents)
        self.reports: list[Report] = []

    def qualified(self, node: cst.BaseExpression) -> str | None:
        """What `node` (a name or dotted name) means here: `socket.AF_INET` under any import form; None
        when it is not a module-level import (or a local binding of the function shadows it)."""
        qualified = self.names.qualified(node)
        if qualified is not None and self.scopes.shadowed(node):
            return None
        return qualified

    def reference(self, node: cst.BaseExpression, qualified: str) -> None:
        """A value use of one of `references` (called, passed, assigned, returned, a base class)."""

    def report(self, node: cst.CSTNode, message: str, *, replacement: cst.CSTNode | None = None,
               unsafe: bool = False, note: bool = False, keep: cst.CSTNode | None = None) -> None:
        """Record a finding about `node`. With `replacement`, propose it as the node's new code
        (`unsafe`: it may change behaviour beyond the port). With `keep`, leave that node (which
        holds `node`) and everything in it to this rule: other rules' findings and fixes inside are
        dropped, and this finding is a note."""
        if isinstance(replacement, (cst.BaseCompoundStatement, cst.SimpleStatementLine, cst.BaseSuite)):
            raise TypeError("a replacement is an expression or a small statement: a statement line's "
                            "indentation belongs to its block")
        applicability = Applicability.UNSAFE if unsafe else Applicability.SAFE
        needs = runtime_names_in(replacement) if replacement is not None else frozenset()
        self.reports.append(Report(self.code, self.name, node, message, replacement, applicability,
                                   note or keep is not None, keep, needs, self.audits))

    @classmethod
    def documentation(cls) -> str:
        return inspect.cleandoc(cls.__doc__ or "")

    @classmethod
    def summary(cls) -> str:
        return cls.documentation().splitlines()[0] if cls.__doc__ else ""

    @classmethod
    def words_and_triggers(cls) -> tuple[bytes, ...]:
        return (*cls.triggers, *cls.words)
