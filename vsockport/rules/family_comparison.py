from __future__ import annotations

import ast

import libcst as cst

from vsockport.rules.api import AF_NAME, Example, Rule, af_family
from vsockport.rules.helpers import source_of
from vsockport.rules.vocabulary import INET_FAMILIES, is_inet_family

_HEADER = "import socket\nfrom vsock_runtime import VMCISock_GetAFValue\nafVMCI = VMCISock_GetAFValue()\n"


class FamilyComparison(Rule):
    """Make IPv4 family checks accept the vsock family too.

    ## What it does
    - `family == AF_INET` becomes `family in (AF_INET, afVMCI)`, and `family != AF_INET` becomes
      `family not in (AF_INET, afVMCI)`;
    - a tuple, list or set of families that holds `AF_INET` (`family in (AF_INET, AF_INET6)`) gets
      `afVMCI` added;
    - a tuple, list or set of families that holds `AF_INET`, kept in a name that the module uses only
      on the right of `in`/`not in` (`_supportedAddressFamilies = (AF_INET, AF_INET6)`, then `if family
      not in self._supportedAddressFamilies`, Twisted's), gets `afVMCI` added where it is written; one
      that is also iterated or passed on is left alone (a server that binds each family would bind
      vsock twice);
    - checks for `AF_INET6` alone are left as they are: a vsock socket is not IPv6.
    A comparison that chains several operators, or compares two families, is reported instead.

    ## Why
    Frameworks decide by family how to bind, validate and print addresses (`if sock.family == AF_INET:
    ... elif AF_INET6: ... else: # unix`). Ported sockets have the vsock family, so such a check would
    take the wrong branch: the Unix-socket one, or an error. vsockport's policy is one rule for all of
    them: a vsock socket takes the program's IPv4 path, where its addresses are `(host, port)` pairs
    whose host is a string, as IPv4 code expects. The check then says so in the code: IPv4 or vSockets.

    ## Example
    ```python
    if sock.family == socket.AF_INET:
        host, port = sock.getsockname()
    ```
    becomes
    ```python
    if sock.family in (socket.AF_INET, afVMCI):
        host, port = sock.getsockname()
    ```

    ## Fix safety
    Safe: only the vsock family compares differently; AF_INET, AF_INET6, AF_UNIX and others are
    unchanged.
    """

    code = "VS002"
    words = (b"AF_INET",)
    name = "family-comparison"
    examples = (
        Example("import socket\nif s.family == socket.AF_INET:\n    pass\n",
                _HEADER + "if s.family in (socket.AF_INET, afVMCI):\n    pass\n", ("VS002",)),
        Example("from socket import *\nok = fam in (AF_INET, AF_INET6)\nbad = fam not in [AF_INET]\n",
                "from socket import *\nfrom vsock_runtime import VMCISock_GetAFValue\nafVMCI = VMCISock_GetAFValue()\n"
                "ok = fam in (AF_INET, AF_INET6, afVMCI)\nbad = fam not in [AF_INET, afVMCI]\n",
                ("VS002", "VS002")),
        Example("import socket\nunix = socket.AF_INET != conn.family\n",
                _HEADER + "unix = conn.family not in (socket.AF_INET, afVMCI)\n", ("VS002",)),
        Example("import socket\nclass Reactor:\n    if UNIX:\n        _supported: tuple = (\n            socket.AF_INET,\n"
                "            socket.AF_UNIX,\n        )\n    else:\n        _supported = (socket.AF_INET, socket.AF_INET6)\n"
                "    def adopt(self, family):\n        if family not in self._supported:\n            raise ValueError(family)\n",
                _HEADER + "class Reactor:\n    if UNIX:\n        _supported: tuple = (\n            socket.AF_INET,\n"
                "            socket.AF_UNIX,\n            afVMCI,\n        )\n    else:\n"
                "        _supported = (socket.AF_INET, socket.AF_INET6, afVMCI)\n"
                "    def adopt(self, family):\n        if family not in self._supported:\n            raise ValueError(family)\n",
                ("VS002", "VS002")),
        Example("import socket\nFAMILIES = [socket.AF_INET, socket.AF_INET6]\nfor family in FAMILIES:\n    listen(family)\n"
                "ok = fam in FAMILIES\n"),
        Example("import socket\nodd = a < socket.AF_INET < b\n", None, ("VS002",)),
        Example("import socket\nif s.family == socket.AF_UNIX:\n    pass\nipv6 = s.family == socket.AF_INET6\n"),
    )

    def visit_Comparison(self, node: cst.Comparison) -> None:
        operands = [node.left, *(target.comparator for target in node.comparisons)]
        families = [self._ipv4_family(operand) for operand in operands]
        if not any(families):
            return
        if len(operands) != 2 or all(families):
            self.report(node, "comparison with AF_INET that vsockport cannot rewrite: ported sockets have the "
                              "vsock family; compare with (AF_INET, afVMCI) instead")
            return
        operator = node.comparisons[0].operator
        family_side = operands[families.index(True)]
        value = operands[families.index(False)]
        if isinstance(operator, (cst.Equal, cst.NotEqual)):
            members = [cst.Element(family_side), cst.Element(af_family())]
            new_operator = cst.In() if isinstance(operator, cst.Equal) else cst.NotIn()
            replacement = cst.Comparison(value, [cst.ComparisonTarget(new_operator, cst.Tuple(members))])
            shown = "in" if isinstance(operator, cst.Equal) else "not in"
            self.report(node, f"{source_of(value)} compared with AF_INET: vsock sockets take the IPv4 path -> "
                              f"{shown} ({source_of(family_side)}, afVMCI)", replacement=replacement)
        elif isinstance(operator, (cst.In, cst.NotIn)) and family_side is node.comparisons[0].comparator:
            self.report(family_side, f"{source_of(family_side)} holds AF_INET: vsock sockets take the IPv4 path -> "
                                     "afVMCI added", replacement=_with_af_added(family_side))

    def visit_Assign(self, node: cst.Assign) -> None:
        if len(node.targets) == 1:
            self._named_families(node.targets[0].target, node.value)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        if node.value is not None:
            self._named_families(node.target, node.value)

    def _named_families(self, target: cst.BaseExpression, value: cst.BaseExpression) -> None:
        """`NAME = (AF_INET, AF_INET6)` where the module uses NAME only on the right of `in`."""
        if not isinstance(value, (cst.Tuple, cst.List, cst.Set)) or not value.elements:
            return
        name = target.value if isinstance(target, cst.Name) else target.attr.value if isinstance(target, cst.Attribute) else None
        if name is None or not self._ipv4_family(value) or name not in self._membership_only_names():
            return
        if not all(str(self.qualified(e.value) or "").startswith("socket.AF_") for e in value.elements):
            return
        self.report(value, f"{name} holds AF_INET and is checked with `in`: vsock sockets take the IPv4 path -> "
                           "afVMCI added", replacement=_with_af_added(value))

    def _membership_only_names(self) -> frozenset[str]:
        """Names (and attribute names) the module loads only as the right side of `in`/`not in`."""
        found = self.names.module_facts.get("membership_only_names")
        if found is None:
            tree = self.names.tree
            tested: dict[str, int] = {}
            loaded: dict[str, int] = {}
            for node in ast.walk(tree) if tree is not None else ():
                if isinstance(node, ast.Compare):
                    for op, right in zip(node.ops, node.comparators):
                        key = right.id if isinstance(right, ast.Name) else right.attr if isinstance(right, ast.Attribute) else None
                        if key is not None and isinstance(op, (ast.In, ast.NotIn)):
                            tested[key] = tested.get(key, 0) + 1
                elif isinstance(node, (ast.Name, ast.Attribute)) and isinstance(node.ctx, ast.Load):
                    key = node.id if isinstance(node, ast.Name) else node.attr
                    loaded[key] = loaded.get(key, 0) + 1
            found = self.names.module_facts["membership_only_names"] = frozenset(
                key for key, count in tested.items() if loaded.get(key) == count)
        return found

    def _ipv4_family(self, operand: cst.BaseExpression) -> bool:
        """AF_INET itself, or a collection of families that holds AF_INET and not afVMCI yet."""
        if isinstance(operand, (cst.Tuple, cst.List, cst.Set)):
            values = [e.value for e in operand.elements]
            if any(isinstance(v, cst.Name) and v.value == AF_NAME for v in values):
                return False
            return any(self._is_ipv4(v) for v in values)
        return self._is_ipv4(operand)

    def _is_ipv4(self, node: cst.BaseExpression) -> bool:
        qualified = self.qualified(node)
        if qualified in INET_FAMILIES:
            return qualified == "socket.AF_INET"
        return is_inet_family(self.names, node) and getattr(node, "value", "") == "AF_INET"


def _with_af_added(collection: cst.Tuple | cst.List | cst.Set) -> cst.BaseExpression:
    """The collection with `afVMCI` as its last element, in its own layout: one per line stays one per
    line, with its trailing comma."""
    elements = list(collection.elements)
    last = elements[-1]
    if isinstance(last.comma, cst.Comma):  # a trailing comma: the new element takes it, and the old one a separator's
        separator = elements[-2].comma if len(elements) > 1 and isinstance(elements[-2].comma, cst.Comma) else \
            cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
        return collection.with_changes(elements=[*elements[:-1], last.with_changes(comma=separator),
                                                 cst.Element(af_family(), comma=last.comma)])
    last = last.with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
    return collection.with_changes(elements=[*elements[:-1], last, cst.Element(af_family())])
