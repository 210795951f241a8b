from __future__ import annotations

import libcst as cst

from vsockport.rules.api import Example, Rule, runtime_name
from vsockport.rules.helpers import source_of
from vsockport.rules.vocabulary import RESOLVERS


class GetAddrInfo(Rule):
    """Resolve addresses with the runtime: vsock `getaddrinfo`, `gethostbyname`, `gethostbyname_ex`.

    ## What it does
    Replaces `socket.getaddrinfo` with `vsock_getaddrinfo`, `socket.gethostbyname` with
    `vsock_gethostbyname` and `socket.gethostbyname_ex` with `vsock_gethostbyname_ex`, keeping every
    argument: in calls, and where the function is passed on (`loop.run_in_executor(None,
    socket.getaddrinfo, host, port)`, a resolver kept in an attribute). `loop.getaddrinfo(...)` is
    VS009's. `vsock_gethostbyname(host)` gives the host's CID as a host string (`"127.0.0.1"` for the
    loopback CID, else its digits), which a vsock socket's `connect()` reads as that CID.

    ## Why
    Client and server loops (`for family, type, proto, _, address in getaddrinfo(host, port): ...`) take
    both the socket family and the address from `getaddrinfo`. CPython's knows only IP. The runtime's
    version answers as an IPv4 resolver would, since such loops decide by the family (`{AF_INET:
    IPv4Address, AF_INET6: IPv6Address}[family]`): family `AF_INET`, protocol 0, and the address `(host,
    port)` with the host the CID as sockets report it (mapped through `VSOCK_CID_MAP`, which may give the
    endpoint its own vsock port). The socket the loop makes, ported to `vsock_socket(family, ...)`, is a
    vsock one, whose `connect()` reads that host as the CID again. With `AI_PASSIVE`, a `None` host
    becomes `VMADDR_CID_ANY` and port 0 becomes `VMADDR_PORT_ANY`.

    ## Example
    ```python
    for family, kind, proto, _, address in socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM):
        sock = socket.socket(family, kind, proto)
        sock.connect(address)
    ```
    becomes (with VS001's change of the socket)
    ```python
    for family, kind, proto, _, address in vsock_getaddrinfo(host, port, 0, socket.SOCK_STREAM):
        sock = vsock_socket(family, kind, proto)
        sock.connect(address)
    ```

    ## Fix safety
    Safe for socket set-up. A `getaddrinfo` call used only to validate or print an IP address would
    now see CIDs instead.
    """

    code = "VS007"
    name = "getaddrinfo"
    triggers = (b"getaddrinfo", b"gethostbyname")
    references = frozenset(RESOLVERS)
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

    def reference(self, node: cst.BaseExpression, qualified: str) -> None:
        replacement = RESOLVERS[qualified]
        self.report(node, f"{source_of(node)} resolves names to IP addresses -> {replacement}",
                    replacement=runtime_name(replacement))
