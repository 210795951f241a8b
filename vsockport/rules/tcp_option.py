from __future__ import annotations

import libcst as cst

from vsockport.rules.api import Example, Rule
from vsockport.rules.helpers import source_of
from vsockport.rules.vocabulary import MISSING_OPTIONS, TCP_LEVELS


class TcpOption(Rule):
    """Report TCP-level socket options that C code sets on descriptors (ctypes `libc.setsockopt`).

    ## What it does
    Reports a C library's `setsockopt(fd, level, option, value, size)` (ctypes) of a TCP-level option
    (`IPPROTO_TCP`/`SOL_TCP`, or level 6), `IPV6_V6ONLY` or `SO_REUSEPORT`. Python's own
    `sock.setsockopt(...)` calls are left as they are: on a vsock socket the runtime accepts such
    options and does nothing (vsock has no Nagle delay, TCP keepalive or port sharing), whoever calls
    it, compiled extensions through `transport.get_extra_info("socket")` included.

    ## Why
    On a vsock descriptor these calls fail with `ENOPROTOOPT` (TCP and IPv6 options) or `EOPNOTSUPP`
    (`SO_REUSEPORT`). Through libc they fail as a -1 return that the runtime never sees: the code
    itself must skip them for vsock descriptors.

    ## Example
    ```python
    libc.setsockopt(fd, socket.IPPROTO_TCP, socket.TCP_NODELAY, ctypes.byref(one), 4)
    ```
    is reported: `TCP_NODELAY` has no vsock equivalent; skip the call for vsock descriptors.

    ## Fix safety
    Report only.
    """

    code = "VS008"
    name = "tcp-option"
    fix_safety = "none"
    triggers = (b"setsockopt",)
    examples = (
        Example("import ctypes, socket\nok = libc.setsockopt(fd, socket.IPPROTO_TCP, socket.TCP_NODELAY, ctypes.byref(one), 4)\n",
                None, ("VS008",)),
        Example("import ctypes, socket\nok = libc.setsockopt(fd, socket.SOL_SOCKET, socket.SO_RCVBUF, ctypes.byref(n), 4)\n"
                "sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)\n"),
    )

    def visit_Call(self, node: cst.Call) -> None:
        """A C library's setsockopt: the first argument is a file descriptor, the second the level."""
        func = node.func
        if not (isinstance(func, cst.Attribute) and func.attr.value == "setsockopt") or len(node.args) != 5:
            return
        if any(arg.keyword is not None or arg.star for arg in node.args):
            return
        level, option = node.args[1].value, node.args[2].value
        if self.qualified(level) in TCP_LEVELS or _is_tcp_level_number(level) or self.qualified(option) in MISSING_OPTIONS:
            self.report(node, f"C setsockopt of {source_of(option)}: vsock has no such option (it fails with "
                              "ENOPROTOOPT or EOPNOTSUPP, as a -1 return); skip the call for vsock descriptors")


def _is_tcp_level_number(level: cst.BaseExpression) -> bool:
    return isinstance(level, cst.Integer) and level.evaluated_value == 6  # IPPROTO_TCP
