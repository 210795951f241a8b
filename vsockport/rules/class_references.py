"""Wrap references to standard-library classes in a runtime adapter: `X` -> `adapter(X)`.

Shared by the server (VS010) and client (VS011) rules. A reference is wrapped wherever the class is
used as a value: a base class, the function of a call, an argument, an assigned or returned value, a
default, a dict value, either side of `A if threaded else B`. It is not wrapped in imports, annotations,
isinstance/issubclass/super() calls, comparisons, as the object of an attribute
(`HTTPServer.protocol_version`), or inside an adapter call already (so a second run changes nothing).
"""

from __future__ import annotations

from typing import Mapping

import libcst as cst

from vsockport.rules.api import Rule, runtime_name
from vsockport.rules.helpers import call_to, is_value_use, source_of


class ClassReferenceRule(Rule):
    """Base for rules that wrap class references: subclasses set `classes` and `adapter`."""

    classes: Mapping[str, str] = {}  # qualified name -> why it needs the adapter
    adapter = ""

    def visit_Name(self, node: cst.Name) -> None:
        self._reference(node)

    def visit_Attribute(self, node: cst.Attribute) -> None:
        self._reference(node)

    def _reference(self, node: cst.BaseExpression) -> None:
        qualified = self.names.qualified(node)
        if qualified not in self.classes:
            return
        parent = self.parents(node)
        if isinstance(parent, cst.Arg) and parent.keyword is not None and isinstance(self.parents(parent), cst.ClassDef):
            return  # `metaclass=...`
        if is_value_use(node, self.parents, self.names):
            shown = source_of(node)
            self.report(node, f"{shown} {self.classes[qualified]} -> {self.adapter}({shown})",
                        replacement=call_to(runtime_name(self.adapter), node))
