from __future__ import annotations

import libcst as cst

from vsockport.rules.api import Example, Rule
from vsockport.rules.helpers import called_name, is_loopback, literal_string, walk

_LISTENING = ("bind", "create_server")
_CONNECTING = ("connect", "connect_ex", "create_connection")


class LocalPair(Rule):
    """Keep loopback socket pairs that a program makes with itself on TCP/IP.

    ## What it does
    Leaves a function untouched, and notes it, when the function both listens on and connects to a
    loopback address written as a literal (`"127.0.0.1"`, `"localhost"`, `"::1"`). This is the
    classic `socketpair()` emulation, used for wake-up pipes (paho-mqtt, Twisted, older asyncio) and
    for self-tests.

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
            "def serve():\n"
            "    server = socket.create_server(('localhost', 8000))\n"
            "    return server\n"
        ),
    )

    whole_function_words = (tuple(w.encode() for w in _LISTENING), tuple(w.encode() for w in _CONNECTING))

    def __init__(self, names, options) -> None:
        super().__init__(names, options)
        self._depth = 0  # function nesting, within this walk

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        # The outermost function's scan covers its nested functions: one that is not kept holds no
        # nested function that could be, and a kept one is left whole. So each node is scanned once.
        self._depth += 1
        if self._depth > 1:
            return
        listens = connects = False
        for call in walk(node):
            method = called_name(call.func) if isinstance(call, cst.Call) else None
            if method not in _LISTENING and method not in _CONNECTING or not self._loopback_address(call):
                continue
            listens = listens or method in _LISTENING
            connects = connects or method in _CONNECTING
        if listens and connects:
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
