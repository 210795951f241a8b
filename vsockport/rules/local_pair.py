from __future__ import annotations

import libcst as cst

from vsockport.rules.api import Example, Rule
from vsockport.rules.helpers import is_loopback, literal_string, source_of
from vsockport.runtime.contract import contract


class LocalPair(Rule):
    """Keep loopback socket pairs that a program makes with itself on TCP/IP.

    ## What it does
    Leaves a function untouched, and notes it, when the function makes a socket pair with itself:
    - it binds (or makes a server) on a loopback host and connects to one: a literal `"127.0.0.1"`,
      `"localhost"`, `"::1"`, or a module constant holding one; or
    - it binds a socket and then connects to an address it read from `getsockname()` (the listener it
      just made: `addr, port = lsock.getsockname()[:2]; csock.connect((addr, port))`).

    This is the classic `socketpair()` emulation, used for wake-up pipes (paho-mqtt, Twisted, older
    asyncio) and for self-tests. Under `VSOCK_STRICT`, the runtime applies the same test (its
    patterns are written once, in the runtime, and read from there) to the function that makes an
    IP socket, so these pairs do not count as missed.

    ## Why
    Both ends are inside the program, so TCP loopback already works inside a VM. Porting the pair to
    vsock would make it need the `vsock_loopback` transport, which real guests do not load: the
    program would break where it used to work.

    ## Example
    ```python
    def socketpair():
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        a = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        a.connect(("127.0.0.1", listener.getsockname()[1]))
        return a, listener.accept()[0]
    ```
    is left as it is, with a note.

    ## Fix safety
    Nothing is changed. Only functions are recognised: module-level code that talks to itself over
    loopback (a test server and its client in one script) is ported like any other.
    """

    code = "VS013"
    words = (b"connect",)
    name = "local-pair"
    fix_safety = "none"
    triggers = (b"127.0.0.1", b"localhost", b"::1")
    examples = (
        Example(
            "import socket\n"
            "def pair():\n"
            "    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n"
            "    server.bind(('127.0.0.1', 0))\n"
            "    server.listen(1)\n"
            "    client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n"
            "    client.connect(('127.0.0.1', server.getsockname()[1]))\n"
            "    return client, server.accept()[0]\n",
            None,
            ("VS013",),
        ),
        Example(
            "import socket\n"
            "def socketpair(host='127.0.0.1'):\n"
            "    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n"
            "    lsock.bind((host, 0))\n"
            "    lsock.listen()\n"
            "    addr, port = lsock.getsockname()[:2]\n"
            "    csock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n"
            "    csock.connect((addr, port))\n"
            "    return csock, lsock.accept()[0]\n",
            None,
            ("VS013",),
        ),
        Example(
            "import socket\n"
            "def serve():\n"
            "    server = socket.create_server(('localhost', 8000))\n"
            "    return server\n"
        ),
        # A listener for another party to connect to (an FTP server's active mode, told the address):
        # the connect before it reads an attribute named `port`, not the `port` read from getsockname().
        Example(
            "import socket\n"
            "def test_active_mode(client, server):\n"
            "    client.connect('127.0.0.1', server.port)\n"
            "    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:\n"
            "        sock.bind(('127.0.0.1', 0))\n"
            "        sock.listen(1)\n"
            "        ip, port = sock.getsockname()[:2]\n"
            "        client.sendcmd('PORT %s %s' % (ip, port))\n"
            "        return sock.accept()\n"
        ),
    )

    whole_function_words = ((b"bind", b"create_server"), (b"connect", b"connect_ex", b"create_connection"))

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._depth = 0  # function nesting, within this walk

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        # The outermost function's scan covers its nested functions: one that is not kept holds no
        # nested function that could be, and a kept one is left whole. So each node is scanned once.
        self._depth += 1
        if self._depth > 1:
            return
        if is_local_pair(source_of(node), self._loopback_constants()):
            self.report(
                node.name,
                f"{node.name.value}() connects to a loopback socket it made itself: kept on TCP/IP "
                "(both ends are in this program; vsock would need the vsock_loopback transport)",
                keep=node,
            )

    def leave_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._depth -= 1

    def _loopback_constants(self) -> set[str]:
        """Module constants that hold a loopback host (`HOST = "127.0.0.1"`); once per module."""
        found = self.names.module_facts.get("loopback_constants")
        if found is None:
            found = self.names.module_facts["loopback_constants"] = {
                name for name in self.names.constant_values
                if name.isupper() and (value := literal_string(self.names.constant(cst.Name(name)))) is not None
                and is_loopback(value)}
        return found


def is_local_pair(source: str, loopback_constants=()) -> bool:
    """The runtime's definition (`local_pair` in the runtime; its strict mode applies it to the functions
    that make IP sockets), loaded from the runtime's source."""
    return contract().local_pair(source, tuple(sorted(loopback_constants)))
