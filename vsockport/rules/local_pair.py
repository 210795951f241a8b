from __future__ import annotations

import libcst as cst

from vsockport.rules.api import Example, Rule
from vsockport.rules.helpers import called_name, is_loopback, literal_string, walk

_LISTENING = ("bind", "create_server")
_CONNECTING = ("connect", "connect_ex", "create_connection")


class LocalPair(Rule):
    """Keep loopback socket pairs that a program makes with itself on TCP/IP.

    ## What it does
    Leaves a function untouched, and notes it, when the function makes a socket pair with itself:
    - it listens on and connects to a loopback address written as a literal (`"127.0.0.1"`,
      `"localhost"`, `"::1"`), or
    - it binds a socket and connects to an address it read from a socket's `getsockname()` (the
      listener it just made: `addr, port = lsock.getsockname()[:2]; csock.connect((addr, port))`).

    This is the classic `socketpair()` emulation, used for wake-up pipes (paho-mqtt, Twisted, older
    asyncio) and for self-tests. Under `VSOCK_STRICT`, the runtime applies the same test to the
    function that makes an IP socket, so these pairs do not count as missed.

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
    )

    whole_function_words = (tuple(w.encode() for w in _LISTENING), tuple(w.encode() for w in _CONNECTING))

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self._depth = 0  # function nesting, within this walk

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        # The outermost function's scan covers its nested functions: one that is not kept holds no
        # nested function that could be, and a kept one is left whole. So each node is scanned once.
        self._depth += 1
        if self._depth > 1:
            return
        calls = [n for n in walk(node) if isinstance(n, cst.Call)]
        own_addresses = _names_from_getsockname(node)
        listens = connects = binds = connects_to_own = False
        for call in calls:
            method = called_name(call.func)
            if method in _LISTENING:
                binds = True
                listens = listens or self._loopback_address(call)
            elif method in _CONNECTING and call.args:
                connects = connects or self._loopback_address(call)
                connects_to_own = connects_to_own or _reads_own_address(call.args[0].value, own_addresses)
        if (listens and connects) or (binds and connects_to_own):
            self.report(
                node.name,
                f"{node.name.value}() connects to a loopback socket it made itself: kept on TCP/IP "
                "(both ends are in this program; vsock would need the vsock_loopback transport)",
                keep=node,
            )

    def leave_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._depth -= 1

    def _loopback_address(self, call: cst.Call) -> bool:
        if not call.args or not isinstance(call.args[0].value, cst.Tuple) or not call.args[0].value.elements:
            return False
        host = literal_string(self.names.constant(call.args[0].value.elements[0].value))
        return host is not None and is_loopback(host)


def _names_from_getsockname(function: cst.FunctionDef) -> set[str]:
    """Names the function assigns from a socket's getsockname() (`addr, port = lsock.getsockname()[:2]`)."""
    found = set()
    for node in walk(function):
        if isinstance(node, cst.Assign) and _calls_getsockname(node.value):
            for target in node.targets:
                found.update(n.value for n in walk(target.target) if isinstance(n, cst.Name))
    return found


def _calls_getsockname(node: cst.CSTNode) -> bool:
    return any(isinstance(n, cst.Call) and called_name(n.func) == "getsockname" for n in walk(node))


def _reads_own_address(address: cst.BaseExpression, own: set[str]) -> bool:
    return _calls_getsockname(address) or any(isinstance(n, cst.Name) and n.value in own for n in walk(address))
