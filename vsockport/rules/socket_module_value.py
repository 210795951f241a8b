from __future__ import annotations

import libcst as cst

from vsockport.rules.api import Example, Rule, runtime_name
from vsockport.rules.helpers import called_name, literal_string, source_of

# Calls that change or reload the module they are given: the real socket module must reach them.
_CHANGES_ITS_ARGUMENT = frozenset(["setattr", "delattr", "reload", "object", "patch", "setitem"])
# What the stand-in answers differently: getattr(socket, "SOMETHING_ELSE") needs no stand-in.
_STANDS_IN_FOR = frozenset(["socket", "fromfd", "create_connection", "create_server", "getaddrinfo", "gethostbyname",
                            "gethostbyname_ex", "getnameinfo", "inet_pton", "inet_ntop"])


class SocketModuleValue(Rule):
    """Port code that takes the `socket` module as a value, through the runtime's stand-in module.

    ## What it does
    Replaces the `socket` module where it is used as a value (a parameter default `socket_module=socket`,
    a keyword argument, an assignment `self._socket = socket`, `getattr(socket, name)`) with
    `vsock_socket_module`. That stand-in's `socket()`, `create_connection()`, `create_server()`,
    `getaddrinfo()`, `gethostbyname()`, `gethostbyname_ex()`, `getnameinfo()`, `inet_pton()` and
    `inet_ntop()` are the vsock versions (its `socket()`
    makes `AF_INET`/`AF_INET6` sockets vsock); every other name is the socket module's own.

    A name that the enclosing function binds itself (a parameter or variable called `socket`, often a
    socket object) is not the module and is left alone, as are calls that change the module they are
    given (`setattr`, `mock.patch.object`, `importlib.reload`), `hasattr(socket, ...)` and
    `getattr(socket, "NAME")` of a name the stand-in answers the same.

    ## Why
    Calls made through such a value (`s = self.socket_module; s.getaddrinfo(...)`, as pymemcache does,
    or `getattr(socket, "AF_INET")` with the name read from configuration) are resolved only at run
    time, so vsockport cannot port them one by one. Giving the code a module whose functions are the
    vsock ones ports them all.

    ## Example
    ```python
    class Client:
        def __init__(self, server, socket_module=socket):
            self.socket_module = socket_module
    ```
    becomes
    ```python
    class Client:
        def __init__(self, server, socket_module=vsock_socket_module):
            self.socket_module = socket_module
    ```

    ## Fix safety
    Safe: the stand-in passes every other name through to the socket module. `isinstance(x,
    module.socket)` checks through it see the factory function `vsock_socket`, not a class: use
    `module.SocketType` for those.
    """

    code = "VS015"
    name = "socket-module-value"
    words = (b"socket",)
    references = frozenset(["socket"])
    examples = (
        Example(
            "import socket\nclass Client:\n    def __init__(self, server, socket_module=socket):\n"
            "        self.socket_module = socket_module\n",
            "import socket\nfrom vsock_runtime import vsock_socket_module\nclass Client:\n"
            "    def __init__(self, server, socket_module=vsock_socket_module):\n        self.socket_module = socket_module\n",
            ("VS015",),
        ),
        Example(
            "import socket as s\ndef family(name):\n    return getattr(s, name)\n",
            "import socket as s\nfrom vsock_runtime import vsock_socket_module\ndef family(name):\n"
            "    return getattr(vsock_socket_module, name)\n",
            ("VS015",),
        ),
        # A parameter named like the module is a socket object, not the module (websockets does this).
        Example("import socket\nclass Conn:\n    def __init__(self, socket: socket.socket):\n        self.socket = socket\n"),
        Example("import socket\ndef serve(sockets):\n    for socket in sockets:\n        keep = socket\n"),
        Example("import socket\ndef connect(family=socket.AF_UNIX, factory=None):\n    return socket.socket(family)\n"),
        Example("import socket\nimport unittest.mock\nwith unittest.mock.patch.object(socket, 'getaddrinfo'):\n    pass\n"
                "ipv6 = hasattr(socket, 'AF_INET6') and getattr(socket, 'SO_REUSEPORT', None)\n"),
        # Definitions, parameters and keywords named like the module are not the module (urllib3, abc properties).
        Example("import abc, socket\nclass Conn(abc.ABC):\n    @property\n    @abc.abstractmethod\n    def socket(self):\n"
                "        pass\nwrapped = Wrapped(socket=ssl_sock, server_hostname=name)\n"),
    )

    def reference(self, node: cst.BaseExpression, qualified: str) -> None:
        parent = self.parents(node)
        call = self.parents(parent) if isinstance(parent, cst.Arg) else None
        if isinstance(call, cst.Call) and called_name(call.func) in _CHANGES_ITS_ARGUMENT | {"hasattr"}:
            return  # the module is changed there, or only asked whether it has a name
        if isinstance(call, cst.Call) and called_name(call.func) == "getattr" and len(call.args) >= 2:
            name = literal_string(call.args[1].value)
            if name is not None and name not in _STANDS_IN_FOR:
                return  # getattr(socket, "SO_REUSEPORT", None): the same answer either way
        self.report(node, f"the socket module as a value ({source_of(node)}): calls made through it cannot be "
                          "seen one by one -> vsock_socket_module, whose socket(), create_connection() and "
                          "getaddrinfo() are the vsock versions", replacement=runtime_name("vsock_socket_module"))
