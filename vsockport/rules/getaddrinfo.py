from __future__ import annotations

import libcst as cst

from vsockport.rules.api import Example, Rule, runtime_name


class GetAddrInfo(Rule):
    """Resolve addresses with the runtime's vsock `getaddrinfo`.

    ## What it does
    Replaces `socket.getaddrinfo(...)` with `vsock_getaddrinfo(...)`, keeping every argument.

    ## Why
    Client and server loops (`for family, type, proto, _, address in getaddrinfo(host, port): ...`)
    take both the socket family and the address from `getaddrinfo`. CPython's has no vsock entries.
    The runtime's version returns vsock entries for any IP family asked for: the family is the vsock
    family and the address is `(CID, port)`, with the host mapped as by `vsock_cid()`. With
    `AI_PASSIVE`, a `None` host becomes `VMADDR_CID_ANY` and port 0 becomes `VMADDR_PORT_ANY`. So the
    loop around the call works unchanged.

    ## Example
    ```python
    for family, kind, proto, _, address in socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM):
        sock = socket.socket(family, kind, proto)
        sock.connect(address)
    ```
    becomes
    ```python
    for family, kind, proto, _, address in vsock_getaddrinfo(host, port, 0, socket.SOCK_STREAM):
        sock = socket.socket(family, kind, proto)
        sock.connect(address)
    ```

    ## Fix safety
    Safe for socket set-up. A `getaddrinfo` call used only to validate or print an IP address would
    now see CIDs instead.
    """

    code = "VS007"
    name = "getaddrinfo"
    triggers = (b"getaddrinfo",)
    examples = (
        Example(
            "import socket\nfor res in socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM):\n    pass\n",
            "import socket\nfrom vsock_runtime import vsock_getaddrinfo\n"
            "for res in vsock_getaddrinfo(host, port, 0, socket.SOCK_STREAM):\n    pass\n",
            ("VS007",),
        ),
        Example(
            "from socket import getaddrinfo\ninfo = getaddrinfo(None, 0, flags=1)\n",
            "from socket import getaddrinfo\nfrom vsock_runtime import vsock_getaddrinfo\n"
            "info = vsock_getaddrinfo(None, 0, flags=1)\n",
            ("VS007",),
        ),
        Example("import asyncio\nasync def f(loop):\n    await loop.getaddrinfo('a', 1)\n"),
    )

    def visit_Call(self, node: cst.Call) -> None:
        if self.names.qualified(node.func) == "socket.getaddrinfo":
            self.report(node.func, "socket.getaddrinfo() has no vsock entries -> vsock_getaddrinfo()",
                        replacement=runtime_name("vsock_getaddrinfo"))
