"""Wrap references to standard-library classes in a runtime adapter: `X` -> `adapter(X)`.

Shared by the server (VS010) and client (VS011) rules. A reference is wrapped wherever the class is
used as a value: a base class, the function of a call, an argument, an assigned or returned value, a
default, a dict value, either side of `A if threaded else B`. It is not wrapped in imports, annotations,
isinstance/issubclass/super() calls, comparisons, as the object of an attribute
(`HTTPServer.protocol_version`), as a class's `metaclass=`, or inside an adapter call already (so a
second run changes nothing).

A class fetched from its standard-library module by a name (`getattr(http.client, scheme.upper() +
"Connection")`, or a literal naming an adapted class) becomes `vsock_getattr(module, name)`, which adapts
what it fetches at run time.
"""

from __future__ import annotations

from typing import Collection

import libcst as cst

from vsockport.rules.api import Rule, runtime_name
from vsockport.rules.helpers import call_to, literal_string, source_of


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

    def visit_Call(self, node: cst.Call) -> None:
        """`getattr(http.client, name)`: the class is chosen at run time, so the runtime adapts it."""
        if not (isinstance(node.func, cst.Name) and node.func.value == "getattr" and 2 <= len(node.args) <= 3):
            return
        if any(arg.keyword is not None or arg.star for arg in node.args) or self.scopes.shadowed(node.func):
            return
        module = self.qualified(node.args[0].value)
        if module is None or module not in {name.rpartition(".")[0] for name in self.adapted}:
            return
        name = literal_string(node.args[1].value)
        if name is not None and f"{module}.{name}" not in self.adapted:
            return  # getattr(http.client, "responses"): not a class that connects
        self.report(node, f"{source_of(node)} fetches a {module} class by name, which {self.why} -> vsock_getattr()",
                    replacement=call_to(runtime_name("vsock_getattr"), *node.args))
