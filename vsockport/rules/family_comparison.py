from __future__ import annotations

import libcst as cst

from vsockport.rules.address_family import is_inet_family
from vsockport.rules.api import Example, Rule, runtime_name
from vsockport.rules.helpers import call_to, source_of

_HEADER = "import socket\nfrom vsock_runtime import vsock_ip_family\n"


class FamilyComparison(Rule):
    """Make family checks take the program's IP path on vsock sockets.

    ## What it does
    In a comparison of a value with `AF_INET`/`AF_INET6` (`sock.family == socket.AF_INET`,
    `family in (AF_INET, AF_INET6)`, `family != AF_INET6`), the value is passed through
    `vsock_ip_family()`, which turns the vsock family into `AF_INET` and leaves every other family as it
    is. A comparison that chains several operators, or compares two families it cannot tell apart, is
    reported instead.

    ## Why
    Frameworks decide by family how to bind, validate and print addresses (`if sock.family == AF_INET:
    ... elif AF_INET6: ... else: # unix`), and protocol servers decide how to open a second
    connection. After the port every socket has the vsock family, so such a check would take the wrong
    branch: the Unix-socket one, or an error. vsockport's policy is one rule for all of them: a vsock
    socket takes the program's IPv4 path. Its addresses there are `(host, port)` pairs whose host is a
    string, as IPv4 code expects (see the runtime).

    ## Example
    ```python
    if sock.family == socket.AF_INET:
        host, port = sock.getsockname()
    ```
    becomes
    ```python
    if vsock_ip_family(sock.family) == socket.AF_INET:
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
                _HEADER + "if vsock_ip_family(s.family) == socket.AF_INET:\n    pass\n", ("VS002",)),
        Example("from socket import *\nok = fam in (AF_INET, AF_INET6)\n",
                "from socket import *\nfrom vsock_runtime import vsock_ip_family\nok = vsock_ip_family(fam) in (AF_INET, AF_INET6)\n",
                ("VS002",)),
        Example("import socket\nipv6 = socket.AF_INET6 == conn.family\n",
                _HEADER + "ipv6 = socket.AF_INET6 == vsock_ip_family(conn.family)\n", ("VS002",)),
        Example("import socket\nodd = a < socket.AF_INET < b\n", None, ("VS002",)),
        Example("import socket\nif s.family == socket.AF_UNIX:\n    pass\n"),
    )

    def visit_Comparison(self, node: cst.Comparison) -> None:
        operands = [node.left, *(target.comparator for target in node.comparisons)]
        families = [self._names_ip_family(operand) for operand in operands]
        if not any(families):
            return
        if len(operands) != 2 or all(families):
            self.report(node, "comparison with AF_INET/AF_INET6 that vsockport cannot rewrite: ported sockets "
                              "have the vsock family; compare vsock_ip_family(value) instead")
            return
        value = operands[families.index(False)]
        if isinstance(value, cst.Call) and self.names.is_runtime_name(value.func):
            return  # ported already
        self.report(value, f"{source_of(value)} compared with an IP family: vsock sockets take the IPv4 path -> "
                           f"vsock_ip_family({source_of(value)})",
                    replacement=call_to(runtime_name("vsock_ip_family"), value))

    def _names_ip_family(self, operand: cst.BaseExpression) -> bool:
        candidates = [e.value for e in operand.elements] if isinstance(operand, (cst.Tuple, cst.List, cst.Set)) else [operand]
        return any(is_inet_family(self.names, c) for c in candidates)
