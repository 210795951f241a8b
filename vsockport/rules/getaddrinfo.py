from __future__ import annotations

import libcst as cst

from vsockport.rules.api import Example, Rule, runtime_name
from vsockport.rules.helpers import is_value_use, source_of


_RESOLVERS = {
    "socket.getaddrinfo": "vsock_getaddrinfo",
    "socket.gethostbyname": "vsock_gethostbyname",
    "socket.gethostbyname_ex": "vsock_gethostbyname_ex",
}


class GetAddrInfo(Rule):
    """Resolve addresses with the runtime: vsock `getaddrinfo`, `gethostbyname`, `gethostbyname_ex`.

    ## What it does
    Replaces `socket.getaddrinfo` with `vsock_getaddrinfo`, `socket.gethostbyname` with
    `vsock_gethostbyname` and `socket.gethostbyname_ex` with `vsock_gethostbyname_ex`, keeping every
    argument: in calls, and where the function is passed on (`loop.run_in_executor(None,
    socket.getaddrinfo, host, port)`, a resolver kept in an attribute). `loop.getaddrinfo(...)` is
    VS009's. `vsock_gethostbyname(host)` gives the host's CID as a string of digits, which a vsock
    socket's `connect()` reads as that CID.

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
    triggers = (b"getaddrinfo", b"gethostbyname")
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
        Example(
            "import socket\nasync def resolve(loop, host):\n    return await loop.run_in_executor(None, socket.getaddrinfo, host, 80)\n",
            "import socket\nfrom vsock_runtime import vsock_getaddrinfo\nasync def resolve(loop, host):\n"
            "    return await loop.run_in_executor(None, vsock_getaddrinfo, host, 80)\n",
            ("VS007",),
        ),
        Example(
            "import socket\nip = socket.gethostbyname(host)\n",
            "import socket\nfrom vsock_runtime import vsock_gethostbyname\nip = vsock_gethostbyname(host)\n",
            ("VS007",),
        ),
        Example("import socket\nfrom unittest import mock\nwith mock.patch('socket.getaddrinfo'):\n    pass\n"),
    )

    def visit_Name(self, node: cst.Name) -> None:
        self._reference(node)

    def visit_Attribute(self, node: cst.Attribute) -> None:
        self._reference(node)

    def _reference(self, node: cst.BaseExpression) -> None:
        replacement = _RESOLVERS.get(self.names.qualified(node) or "")
        if replacement is None or not is_value_use(node, self.parents, self.names):
            return
        self.report(node, f"{source_of(node)} resolves names to IP addresses -> {replacement}",
                    replacement=runtime_name(replacement))
