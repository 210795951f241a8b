from __future__ import annotations

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
            elements = list(family_side.elements)
            last = elements[-1].with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
            added = family_side.with_changes(elements=[*elements[:-1], last, cst.Element(af_family())])
            self.report(family_side, f"{source_of(family_side)} holds AF_INET: vsock sockets take the IPv4 path -> "
                                     "afVMCI added", replacement=added)

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
