"""Wrap references to standard-library classes in a runtime adapter: `X` -> `adapter(X)`.

Shared by the server (VS010) and client (VS011) rules. A reference is wrapped wherever the class is
used as a value: a base class, the function of a call, an argument, an assigned or returned value, a
default, a dict value, either side of `A if threaded else B`. It is not wrapped in imports, annotations,
isinstance/issubclass/super() calls, comparisons, as the object of an attribute
(`HTTPServer.protocol_version`), as a class's `metaclass=`, or inside an adapter call already (so a
second run changes nothing).
"""

from __future__ import annotations

from typing import Collection

import libcst as cst

from vsockport.rules.api import Rule, runtime_name
from vsockport.rules.helpers import call_to, source_of


class ClassReferenceRule(Rule):
    """Base for rules that wrap class references: subclasses set `adapted`, `why` and `adapter`."""

    adapted: Collection[str] = ()  # qualified names of the classes the adapter takes
    why = ""  # what the class does over TCP/IP, for the message
    adapter = ""

    def reference(self, node: cst.BaseExpression, qualified: str) -> None:
        if qualified not in self.adapted:
            return
        parent = self.parents(node)
        if isinstance(parent, cst.Arg) and parent.keyword is not None and isinstance(self.parents(parent), cst.ClassDef):
            return  # `metaclass=...`
        shown = source_of(node)
        self.report(node, f"{shown} {self.why} -> {self.adapter}({shown})", replacement=call_to(runtime_name(self.adapter), node))
