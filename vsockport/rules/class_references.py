"""Wrap references to standard-library classes in a runtime adapter: `X` -> `adapter(X)`.

Shared by the server (VS010) and client (VS011) rules. A reference is wrapped where it makes or names
a class to instantiate: a base class, the function of a call, an argument, or an assigned value.
It is not wrapped in imports, in isinstance/issubclass checks, or inside an adapter call already
(which keeps a second run from changing anything).
"""

from __future__ import annotations

from typing import Mapping

import libcst as cst

from vsockport.rules.api import Rule, runtime_name
from vsockport.rules.helpers import call_to, source_of

_TYPE_CHECKS = ("isinstance", "issubclass")


class ClassReferenceRule(Rule):
    """Base for rules that wrap class references: subclasses set `classes` and `adapter`."""

    classes: Mapping[str, str] = {}  # qualified name -> why it needs the adapter
    adapter = ""

    def wrap(self, reference: cst.BaseExpression) -> None:
        qualified = self.names.qualified(reference)
        if qualified in self.classes:
            shown = source_of(reference)
            self.report(reference, f"{shown} {self.classes[qualified]} -> {self.adapter}({shown})",
                        replacement=call_to(runtime_name(self.adapter), reference))

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        for base in node.bases:
            if base.keyword is None:
                self.wrap(base.value)

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if (isinstance(func, cst.Name) and func.value in _TYPE_CHECKS) or self.names.is_runtime_name(func):
            return  # a type check, or an adapter already: the classes named here stay as they are
        self.wrap(func)
        for arg in node.args:
            self.wrap(arg.value)

    def visit_Assign(self, node: cst.Assign) -> None:
        self.wrap(node.value)
