from __future__ import annotations

import libcst as cst

from vsockport.rules.api import Example, Rule


class SocketModuleValue(Rule):
    """Report a parameter that defaults to the `socket` module: calls through it cannot be seen.

    ## What it does
    Reports a parameter whose default is the `socket` module itself (`socket_module=socket`), the
    usual way a library lets callers swap the module it makes sockets with. It does not change it.

    ## Why
    Calls made through such a variable (`s = self.socket_module; s.getaddrinfo(...)`, as pymemcache
    does) are resolved only at run time. vsockport cannot tell that they are socket calls, so it can
    neither port nor report them, and the ported program would silently stay on TCP/IP there.

    ## Example
    ```python
    class Client:
        def __init__(self, server, socket_module=socket):
            self.socket_module = socket_module
    ```
    is reported at `socket_module=socket`.

    ## Fix safety
    No fix: report only. Port the calls made through the parameter by hand (`vsock_getaddrinfo`,
    `create_vsock_connection`, `afVMCI` from the runtime), or pass an object that provides them.
    Assignments such as `transport = socket` are not reported: inside a function the name may be a
    parameter that shadows the module, which vsockport does not track.
    """

    code = "VS015"
    name = "socket-module-value"
    fix_safety = "none"
    words = (b"socket",)
    examples = (
        Example(
            "import socket\nclass Client:\n    def __init__(self, server, socket_module=socket):\n"
            "        self.socket_module = socket_module\n",
            None,
            ("VS015",),
        ),
        Example("import socket as s\ndef serve(port, net=s, *, backlog=5):\n    pass\n", None, ("VS015",)),
        # A parameter named like the module is a socket object, not the module (websockets does this).
        Example("import socket\nclass Conn:\n    def __init__(self, socket: socket.socket):\n        self.socket = socket\n"),
        Example("import socket\ndef connect(family=socket.AF_UNIX, factory=None):\n    return socket.socket(family)\n"),
        Example("from socket import socket\nclass Pool:\n    socket_class = socket\n"),
        Example("import socket\nimport unittest.mock\nwith unittest.mock.patch.object(socket, 'getaddrinfo'):\n    pass\n"),
    )

    def visit_Param(self, node: cst.Param) -> None:
        if node.default is not None and self._is_socket_module(node.default):
            self.report(node.default, f"the socket module as the default of {node.name.value}: "
                        "calls made through it are invisible to vsockport; port them by hand")

    def _is_socket_module(self, node: cst.BaseExpression) -> bool:
        return isinstance(node, (cst.Name, cst.Attribute)) and self.names.qualified(node) == "socket"
