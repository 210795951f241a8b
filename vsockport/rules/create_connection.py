from __future__ import annotations

import libcst as cst

from vsockport.rules.api import Example, Rule, ported_example, runtime_name
from vsockport.rules.helpers import source_of
from vsockport.rules.vocabulary import CREATORS


class CreateConnection(Rule):
    """Use the runtime's vsock versions of `socket.create_connection` and `socket.create_server`.

    ## What it does
    Replaces `socket.create_connection` with `create_vsock_connection` and `socket.create_server` with
    `create_vsock_server`, keeping every argument: in calls, and where the function is kept for a
    later call (`self._create_connection = socket.create_connection`, a default argument
    `connect=socket.create_connection`, `functools.partial(socket.create_connection, ...)`). Imports,
    annotations, assignments to it (a test's monkeypatch) and comparisons are left alone.

    ## Why
    CPython's versions call `getaddrinfo()`, which has no vsock support, and create AF_INET sockets.
    The runtime's versions take the same arguments, map the host to a CID (VS003/VS004 rewrite literal
    hosts in place), honour `timeout` and `source_address`, and turn port 0 into `VMADDR_PORT_ANY`.

    ## Example
    ```python
    conn = socket.create_connection(("localhost", 7000), timeout=5)
    ```
    becomes
    ```python
    conn = create_vsock_connection(("localhost", 7000), timeout=5)
    ```

    ## Fix safety
    Safe: the runtime functions accept the same parameters. `family`, `dualstack_ipv6` and
    `reuse_port` are accepted and ignored (vsock has a single family and no SO_REUSEPORT).
    """

    code = "VS005"
    name = "create-connection"
    words = (b"create_connection", b"create_server")
    references = frozenset(CREATORS)
    examples = (
        ported_example("conn = socket.create_connection(('localhost', 7000), timeout=5)\n", "create_vsock_connection",
                       "conn = create_vsock_connection(('localhost', 7000), timeout=5)\n", ("VS005",)),
        ported_example("srv = create_server(('', 0), backlog=5)\n", "create_vsock_server",
                       "srv = create_vsock_server(('', 0), backlog=5)\n", ("VS005",), "from socket import create_server\n"),
        Example(
            "import socket\nclass Pool:\n    def __init__(self, connect=socket.create_connection):\n"
            "        self._connect = connect or socket.create_connection\n",
            "import socket\nfrom vsock_runtime import create_vsock_connection\nclass Pool:\n"
            "    def __init__(self, connect=create_vsock_connection):\n        self._connect = connect or create_vsock_connection\n",
            ("VS005", "VS005"),
        ),
        Example("import asyncio\nasyncio.get_event_loop().create_server(factory, sock=s)\n"),
        Example("import socket\nfrom socket import create_connection\nsocket.create_connection = fake\n"
                "same = opener is socket.create_connection\n"),
    )

    def reference(self, node: cst.BaseExpression, qualified: str) -> None:
        replacement = CREATORS[qualified]
        parent = self.parents(node)
        called = isinstance(parent, cst.Call) and parent.func is node
        what = f"{source_of(node)}()" if called else f"{source_of(node)}, kept for a later call,"
        self.report(node, f"{what} uses getaddrinfo and AF_INET -> {replacement}", replacement=runtime_name(replacement))
