"""Run every rule over one libcst tree, in one walk, and collect what they report.

Each node is offered to the rules with a `visit_<Type>` (or `leave_<Type>`) method for its type. Names
and dotted names are resolved here, once, for all rules: what the name means in the module
(`ModuleNames`), whether a local binding shadows it (`Scopes`), whether it is used as a value; a rule
that lists the qualified name in its `references` hears of it through `reference(node, qualified)`.
(libcst's own visitors would rebuild every node they pass, and each rule would resolve names again.)
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache
from typing import Sequence

import libcst as cst

from vsockport.options import PortOptions
from vsockport.results import Applicability
from vsockport.rules.api import Parents, Report, Rule
from vsockport.rules.helpers import children, is_value_use, source_of
from vsockport.rules.names import ModuleNames, scope_facts
from vsockport.rules.scopes import Scopes

_NAMES = (cst.Name, cst.Attribute)


def run_rules(module: cst.Module, rule_classes: Sequence[type[Rule]], names: ModuleNames,
              options: PortOptions, text: str | None = None) -> list[Report]:
    """The reports of `rule_classes` over `module`, parsed from `text` (when given, Python's symbol
    tables of that text tell which names no nested scope binds, a quick answer for most names)."""
    parents = Parents(module)
    nested = None if text is None else scope_facts(text, None, frozenset()).bound_in_nested_scopes
    scopes = Scopes(parents, nested)
    rules = [cls(names, options, parents, scopes) for cls in rule_classes]
    visitors: dict[type, list] = {}
    leavers: dict[type, list] = {}
    listeners: dict[str, list] = {}  # qualified name -> the reference() of the rules that asked
    for rule in rules:
        for kind, attr, leaving in _handlers(type(rule)):
            (leavers if leaving else visitors).setdefault(kind, []).append(getattr(rule, attr))
        for qualified in rule.references:
            listeners.setdefault(qualified, []).append(rule.reference)
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
        if listeners and kind in _NAMES:
            qualified = names.qualified(node)
            heard = listeners.get(qualified) if qualified is not None else None
            if heard and not scopes.shadowed(node) and is_value_use(node, parents, names):
                for reference in heard:
                    reference(node, qualified)
        if kind in leavers:
            stack.append(_Leave(node))
        stack.extend(reversed(children(node)))
    reports = [report for rule in rules for report in rule.reports]
    guesses = names.star_guesses() if names.star_modules else frozenset()
    if guesses or names.may_fetch_by_name() or names.has_alternatives():
        reports = [_on_a_guess(r, names, guesses) if r.replacement is not None else r for r in reports]
    return reports


# Runtime adapters that check at run time what they are given and give back what they do not know: a fix
# that only wraps a guessed module's class in one of them holds whatever the guess gets wrong.
_CHECKING_ADAPTERS = frozenset(["vsock_socket_type", "vsock_socket_class", "vsock_server_class", "vsock_client_class"])


def _on_a_guess(report: Report, names: ModuleNames, star_guesses: frozenset[str]) -> Report:
    """A fix that rests on a guess is unsafe, and says so: a name from a star import taken for the module
    it is named after, a module that a call which is no import fetches by its name
    (`patcher.original("socket")`), or a name that alternative imports bind, taken for its standard-library
    meaning where another import may be the one that runs (`try: from siosocks.io.asyncio import
    open_connection / except ImportError: from asyncio import open_connection`: the port would replace
    siosocks' function, which takes a proxy, by the vsock version of asyncio's)."""
    if _wraps(report):
        return report
    found, stack = set(), [report.node]
    while stack:
        node = stack.pop()
        if isinstance(node, cst.Name) and (node.value in star_guesses or names.is_fetch_guess(node)):
            found.add(f"`{node.value}` taken for the module: it comes from "
                      + ("a star import" if node.value in star_guesses else "a call that fetches it by name"))
        elif isinstance(node, cst.Name) and (others := names.other_meanings(node.value)):
            found.add(f"`{node.value}` taken for {names.aliases[node.value]}: it is "
                      f"{' or '.join(others)} where that import is the one that runs")
        elif isinstance(node, cst.Call) and names.is_fetch_guess(node):
            found.add(f"`{source_of(node)}` taken for the module `{names.fetched_module(node)}`")
        elif isinstance(node, cst.Attribute):
            stack.append(node.value)  # `s.socket`, `conn.socket`: an attribute is no use of the module's name
            continue
        stack.extend(children(node))
    if not found:
        return report
    return dataclasses.replace(report, applicability=Applicability.UNSAFE,
                               message=f"{report.message} ({'; '.join(sorted(found))})")


def _wraps(report: Report) -> bool:
    """`X` -> `adapter(X)` with a checking adapter."""
    replacement = report.replacement
    return (isinstance(replacement, cst.Call) and isinstance(replacement.func, cst.Name)
            and replacement.func.value in _CHECKING_ADAPTERS and len(replacement.args) == 1
            and replacement.args[0].value is report.node)


@lru_cache(maxsize=None)
def _handlers(rule: type[Rule]) -> tuple[tuple[type, str, bool], ...]:
    """(node type, method name, is a leave method) of a rule class's visit_/leave_ methods."""
    return tuple((getattr(cst, attr[6:]), attr, attr.startswith("leave_"))
                 for attr in dir(rule) if attr.startswith(("visit_", "leave_")))


class _Leave:
    __slots__ = ("node",)

    def __init__(self, node: cst.CSTNode) -> None:
        self.node = node
