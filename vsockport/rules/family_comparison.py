from __future__ import annotations

import libcst as cst

from vsockport.rules.address_family import is_inet_family
from vsockport.rules.api import Example, Rule


class FamilyComparison(Rule):
    """Report code that compares a socket's family with AF_INET / AF_INET6.

    ## What it does
    Finds comparisons such as `sock.family == socket.AF_INET` or `family in (AF_INET, AF_INET6)` and
    reports them. It does not change them.

    ## Why
    After the port every socket has the vSockets family (`afVMCI`), so such a check silently takes the
    other branch. Whether the right fix is to compare with `afVMCI`, drop the check or keep it (the code
    may also handle real TCP sockets) depends on intent that a tool cannot see.

    ## Example
    ```python
    if conn.family == socket.AF_INET:
        host, port = conn.getpeername()
    ```
    is reported; after the port `getpeername()` returns `(cid, port)` with an integer CID.

    ## Fix safety
    No fix: report only. Review each site, then compare with `afVMCI` or remove the check.
    """

    code = "VS002"
    words = (b"AF_INET",)
    name = "family-comparison"
    fix_safety = "none"
    examples = (
        Example("import socket\nif s.family == socket.AF_INET:\n    pass\n", None, ("VS002",)),
        Example("from socket import *\nok = fam in (AF_INET, AF_INET6)\n", None, ("VS002",)),
        Example("import socket\nif s.family == socket.AF_UNIX:\n    pass\n"),
    )

    def visit_Comparison(self, node: cst.Comparison) -> None:
        operands = [node.left, *(target.comparator for target in node.comparisons)]
        for operand in operands:
            candidates = [e.value for e in operand.elements] if isinstance(operand, (cst.Tuple, cst.List, cst.Set)) else [operand]
            if any(is_inet_family(self.names, c) for c in candidates):
                self.report(node, "comparison with AF_INET/AF_INET6: ported sockets have family afVMCI; review this check")
                break
