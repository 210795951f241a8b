from __future__ import annotations

import libcst as cst

from vsockport.rules.api import Example, Rule, runtime_name
from vsockport.rules.helpers import source_of

# Levels whose options do not exist on vsock, and single options that fail at other levels.
_TCP_LEVELS = ("socket.IPPROTO_TCP", "socket.SOL_TCP")
_MISSING_OPTIONS = ("socket.IPV6_V6ONLY", "socket.SO_REUSEPORT")


class TcpOption(Rule):
    """Skip socket options that vsock does not have, instead of failing.

    ## What it does
    Rewrites `sock.setsockopt(level, option, value)` to `setsockopt_or_skip(sock, level, option, value)`
    when the level is `IPPROTO_TCP`/`SOL_TCP` (`TCP_NODELAY`, `TCP_KEEPIDLE`, ...) or the option is
    `IPV6_V6ONLY` or `SO_REUSEPORT`. Each site is reported with the option it drops on vsock.
    Calls whose level is not known where they are written get the same treatment: options applied
    from data (`sock.setsockopt(*option)`, as urllib3 applies its default `(IPPROTO_TCP,
    TCP_NODELAY, 1)`) or a level passed in a variable. A C library's `setsockopt(fd, level, option,
    value, size)` (ctypes) of such an option is reported: it returns -1 there instead of raising.

    ## Why
    On a vsock socket these calls fail: `ENOPROTOOPT` (TCP and IPv6 options) or `EOPNOTSUPP`
    (`SO_REUSEPORT`), and the ported program would crash at start-up. vsock has no Nagle delay and no
    TCP keepalive, and a vsock port cannot be shared, so there is nothing to set.
    `setsockopt_or_skip` calls `setsockopt` as before. It skips only these errors, and only on vsock
    sockets, so code that also handles TCP or Unix sockets keeps its behaviour there.

    ## Example
    ```python
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    ```
    becomes
    ```python
    setsockopt_or_skip(sock, socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    ```

    ## Fix safety
    Safe: the option has no vsock equivalent, and other sockets are unaffected.
    """

    code = "VS008"
    name = "tcp-option"
    triggers = (b"setsockopt",)
    examples = (
        Example(
            "import socket\nsock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)\n",
            "import socket\nfrom vsock_runtime import setsockopt_or_skip\n"
            "setsockopt_or_skip(sock, socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)\n",
            ("VS008",),
        ),
        Example(
            "from socket import *\nfor k, v in opts.items():\n    self._sock.setsockopt(SOL_TCP, k, v)\n",
            "from socket import *\nfrom vsock_runtime import setsockopt_or_skip\nfor k, v in opts.items():\n"
            "    setsockopt_or_skip(self._sock, SOL_TCP, k, v)\n",
            ("VS008",),
        ),
        Example(
            "import socket\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)\n",
            "import socket\nfrom vsock_runtime import setsockopt_or_skip\n"
            "setsockopt_or_skip(s, socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)\n",
            ("VS008",),
        ),
        Example(
            "import socket\nfor opt in options:\n    sock.setsockopt(*opt)\n",
            "import socket\nfrom vsock_runtime import setsockopt_or_skip\nfor opt in options:\n"
            "    setsockopt_or_skip(sock, *opt)\n",
            ("VS008",),
        ),
        Example(
            "import socket\ndef set_option(sock, level, name, value):\n    sock.setsockopt(level, name, value)\n",
            "import socket\nfrom vsock_runtime import setsockopt_or_skip\ndef set_option(sock, level, name, value):\n"
            "    setsockopt_or_skip(sock, level, name, value)\n",
            ("VS008",),
        ),
        Example("import socket\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"),
        Example("import socket\ns.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)\nz.setsockopt(zmq.LINGER, 0)\n"),
        Example("import socket\ns.setsockopt(1, 2, 1)\n"),
        Example("import ctypes, socket\nok = libc.setsockopt(fd, socket.IPPROTO_TCP, socket.TCP_NODELAY, ctypes.byref(one), 4)\n",
                None, ("VS008",)),
        Example("import ctypes, socket\nok = libc.setsockopt(fd, socket.SOL_SOCKET, socket.SO_RCVBUF, ctypes.byref(n), 4)\n"),
    )

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if not (isinstance(func, cst.Attribute) and func.attr.value == "setsockopt"):
            return
        if any(arg.keyword is not None or arg.star == "**" for arg in node.args):
            return
        unknown = "may not exist on vsock -> setsockopt_or_skip() skips such options on vsock sockets"
        if len(node.args) == 5 and not any(arg.star for arg in node.args):
            self._c_call(node)  # libc.setsockopt(fd, level, option, value, size)
            return
        if any(arg.star == "*" for arg in node.args):
            message = f"options applied from data {unknown}"
        elif len(node.args) >= 3:
            level, option = node.args[0].value, node.args[1].value
            level_name, option_name = self.names.qualified(level), self.names.qualified(option)
            if level_name in _TCP_LEVELS or option_name in _MISSING_OPTIONS or _is_tcp_level_number(level):
                shown = option_name.rpartition(".")[2] if option_name else f"the TCP-level option {source_of(option)}"
                message = f"{shown} does not exist on vsock -> setsockopt_or_skip() skips it on vsock sockets"
            elif level_name is None and not isinstance(level, cst.Integer):
                message = f"options at level {source_of(level)}, not known here, {unknown}"
            else:
                return  # a level and option vsock has (SOL_SOCKET, SO_RCVBUF, ...)
        else:
            return  # not a socket's setsockopt (zmq's takes two arguments)
        replacement = cst.Call(func=runtime_name("setsockopt_or_skip"), args=[cst.Arg(func.value), *node.args],
                               lpar=node.lpar, rpar=node.rpar)
        self.report(node, message, replacement=replacement)


    def _c_call(self, node: cst.Call) -> None:
        """A C library's setsockopt: the first argument is a file descriptor, the second the level."""
        level = node.args[1].value
        if self.names.qualified(level) in _TCP_LEVELS or _is_tcp_level_number(level) or \
                self.names.qualified(node.args[2].value) in _MISSING_OPTIONS:
            self.report(node, f"C setsockopt of {source_of(node.args[2].value)}: vsock has no such option (it "
                              "fails with ENOPROTOOPT or EOPNOTSUPP, as a -1 return); skip the call for vsock sockets")


def _is_tcp_level_number(level: cst.BaseExpression) -> bool:
    return isinstance(level, cst.Integer) and level.evaluated_value == 6  # IPPROTO_TCP
