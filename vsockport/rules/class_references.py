"""Wrap references to standard-library classes in a runtime adapter: `X` -> `adapter(X)`.

Shared by the server (VS010) and client (VS011) rules. A reference is wrapped where it makes or names
a class to instantiate: a base class, the function of a call, an argument, or an assigned value.
It is not wrapped in imports, in isinstance/issubclass checks, or inside an adapter call already
(which keeps a second run from changing anything).
"""

from __future__ import annotations

from typing import Mapping

import libcst as cst

from vsockport.rules.addresses import source
from vsockport.rules.base import Rule, changed

_TYPE_CHECKS = ("isinstance", "issubclass")


class ClassReferenceRule(Rule):
    """Base for rules that wrap class references: subclasses set `classes` and `adapter`."""

    classes: Mapping[str, str] = {}  # qualified name -> why it needs the adapter
    adapter = ""

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        self._leave_alone: set[int] = set()

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if isinstance(func, cst.Name) and func.value in _TYPE_CHECKS or self.ctx.is_runtime_name(func):
            self._leave_alone.update(id(arg.value) for arg in node.args)
            if isinstance(func, cst.Name) and func.value in _TYPE_CHECKS and len(node.args) == 2:
                second = node.args[1].value
                if isinstance(second, cst.Tuple):
                    self._leave_alone.update(id(e.value) for e in second.elements)

    def _wrap(self, original: cst.BaseExpression, updated: cst.BaseExpression) -> cst.BaseExpression:
        if id(original) in self._leave_alone:
            return updated
        qualified = self.names.qualified(original)
        if qualified not in self.classes:
            return updated
        self.report(original, f"{source(original)} {self.classes[qualified]} -> {self.adapter}({source(original)})")
        return cst.Call(func=self.ctx.runtime_name(self.adapter), args=[cst.Arg(updated)])

    def leave_ClassDef(self, original: cst.ClassDef, updated: cst.ClassDef) -> cst.ClassDef:
        bases = [
            changed(new, value=self._wrap(old.value, new.value)) if old.keyword is None else new
            for old, new in zip(original.bases, updated.bases)
        ]
        return updated if all(a is b for a, b in zip(bases, updated.bases)) else updated.with_changes(bases=bases)

    def leave_Call(self, original: cst.Call, updated: cst.BaseExpression) -> cst.BaseExpression:
        if not isinstance(updated, cst.Call):
            return updated  # another rule replaced the call
        args = updated.args
        if len(original.args) == len(updated.args):  # else another rule added arguments: leave them be
            args = [changed(new, value=self._wrap(old.value, new.value)) for old, new in zip(original.args, updated.args)]
            if all(a is b for a, b in zip(args, updated.args)):
                args = updated.args
        return changed(updated, func=self._wrap(original.func, updated.func), args=args)

    def leave_Assign(self, original: cst.Assign, updated: cst.Assign) -> cst.Assign:
        return changed(updated, value=self._wrap(original.value, updated.value))
