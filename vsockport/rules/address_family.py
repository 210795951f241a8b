from __future__ import annotations

import libcst as cst

from vsockport.rules.api import Example, Rule, af_family
from vsockport.rules.helpers import keywords, positional, source_of
from vsockport.rules.names import ModuleNames

INET_FAMILIES = ("socket.AF_INET", "socket.AF_INET6")
# ctypes programs often define the numbers themselves: AF_INET = 2, AF_INET6 = 10.
_INET_NUMBERS = {"AF_INET": 2, "AF_INET6": 10}


def is_inet_family(names: ModuleNames, node: cst.BaseExpression) -> bool:
    if names.qualified(node) in INET_FAMILIES:
        return True
    if isinstance(node, cst.Name) and node.value in _INET_NUMBERS:
        constant = names.constant(node)
        return isinstance(constant, cst.Integer) and int(constant.evaluated_value) == _INET_NUMBERS[node.value]
    return False


def is_family_choice(names: ModuleNames, node: cst.BaseExpression) -> bool:
    """An IP family, or a choice between IP families (`AF_INET6 if ":" in host else AF_INET`)."""
    if isinstance(node, cst.IfExp):
        return is_family_choice(names, node.body) and is_family_choice(names, node.orelse)
    return is_inet_family(names, node)


class AddressFamily(Rule):
    """Create sockets in the vSockets address family instead of AF_INET / AF_INET6.

    ## What it does
    Replaces `AF_INET` and `AF_INET6` where they choose the family of a new socket with `afVMCI`:
    - in `socket.socket(...)`, `socket(family=...)` and raw `libc.socket(AF_INET, ...)` calls;
    - where a family is kept for later: an assignment (`family = socket.AF_INET`, a `socketserver`
      class's `address_family`), a `return`, a parameter default, `getattr(socket, "AF_INET")`, or
      `AF_INET6 if ":" in host else AF_INET`.

    `afVMCI` is set once per ported module from the runtime's `VMCISock_GetAFValue()`. A `socket.socket()` call with no family gets `afVMCI` added, because its
    default is `AF_INET`.

    ## Why
    A vSocket is a socket of the vSockets family. Its number is not a constant everywhere (VMware's
    driver assigns it at run time on some systems), which is why VMware's porting guide asks for
    `VMCISock_GetAFValue()` instead of a literal.

    ## Example
    ```python
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ```
    becomes
    ```python
    from vsock_runtime import VMCISock_GetAFValue
    afVMCI = VMCISock_GetAFValue()
    s = socket.socket(afVMCI, socket.SOCK_STREAM)
    ```

    ## Fix safety
    Safe: only the family argument changes. Comparisons with `AF_INET` are reported by VS002, not changed.
    """

    code = "VS001"
    words = (b"AF_INET", b"SocketType")
    name = "address-family"
    examples = (
        Example(
            "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n",
            "import socket\nfrom vsock_runtime import VMCISock_GetAFValue\nafVMCI = VMCISock_GetAFValue()\n"
            "s = socket.socket(afVMCI, socket.SOCK_STREAM)\n",
            ("VS001",),
        ),
        Example(
            "from socket import *\ns = socket(AF_INET6, SOCK_STREAM)\n",
            "from socket import *\nfrom vsock_runtime import VMCISock_GetAFValue\nafVMCI = VMCISock_GetAFValue()\n"
            "s = socket(afVMCI, SOCK_STREAM)\n",
            ("VS001",),
        ),
        Example(
            "import socket as s\nconn = s.socket()\n",
            "import socket as s\nfrom vsock_runtime import VMCISock_GetAFValue\nafVMCI = VMCISock_GetAFValue()\n"
            "conn = s.socket(afVMCI)\n",
            ("VS001",),
        ),
        Example(
            "from socket import AF_INET, socket as S\nsock = S(family=AF_INET)\n",
            "from socket import AF_INET, socket as S\nfrom vsock_runtime import VMCISock_GetAFValue\n"
            "afVMCI = VMCISock_GetAFValue()\nsock = S(family=afVMCI)\n",
            ("VS001",),
        ),
        Example(
            "import socketserver, socket\nclass Server(socketserver.TCPServer):\n    address_family = socket.AF_INET6\n",
            "import socketserver, socket\nfrom vsock_runtime import VMCISock_GetAFValue\nafVMCI = VMCISock_GetAFValue()\n"
            "class Server(socketserver.TCPServer):\n    address_family = afVMCI\n",
            ("VS001",),
        ),
        Example(
            "import socket\ndef bind(host):\n    family = socket.AF_INET6 if ':' in host else socket.AF_INET\n"
            "    return socket.socket(family=family)\n",
            "import socket\nfrom vsock_runtime import VMCISock_GetAFValue\nafVMCI = VMCISock_GetAFValue()\n"
            "def bind(host):\n    family = afVMCI\n    return socket.socket(family=family)\n",
            ("VS001",),
        ),
        Example(
            "import socket\ndef family(name='AF_INET', default=socket.AF_INET):\n    return getattr(socket, 'AF_INET6')\n",
            "import socket\nfrom vsock_runtime import VMCISock_GetAFValue\nafVMCI = VMCISock_GetAFValue()\n"
            "def family(name='AF_INET', default=afVMCI):\n    return afVMCI\n",
            ("VS001", "VS001"),
        ),
        Example("import socket\nu = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\nf = socket.socket(fileno=3)\n"),
        Example("import socket\npacked = socket.inet_pton(socket.AF_INET, '10.0.0.1')\nok = s.family == socket.AF_INET\n"),
    )

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if isinstance(func, cst.Name) and func.value == "getattr":
            self._port_getattr(node)
            return
        is_socket_class = self.names.qualified(func) in ("socket.socket", "socket.SocketType")
        is_raw_socket_call = isinstance(func, cst.Attribute) and func.attr.value == "socket"
        if not (is_socket_class or is_raw_socket_call):
            return
        family = self._family_arg(node)
        if family is None:
            if is_socket_class and not positional(node) and not keywords(node) & {"family", "fileno"}:
                self.report(node, "socket() defaults to AF_INET -> afVMCI",
                            replacement=node.with_changes(args=[cst.Arg(af_family()), *node.args]))
        elif is_family_choice(self.names, family.value):
            self.report(family.value, f"socket family {source_of(family.value)} -> afVMCI", replacement=af_family())

    # A family kept in a variable, returned, or used as a default still ends up in socket().
    def visit_Assign(self, node: cst.Assign) -> None:
        self._port_value(node.value, " = ".join(source_of(t.target) for t in node.targets))

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        if node.value is not None:
            self._port_value(node.value, "assigned family")

    def visit_Return(self, node: cst.Return) -> None:
        if node.value is not None:
            self._port_value(node.value, "returned family")

    def visit_Param(self, node: cst.Param) -> None:
        if node.default is not None:
            self._port_value(node.default, "default family")

    def _port_getattr(self, call: cst.Call) -> None:
        """`getattr(socket, "AF_INET")`: the family chosen by name."""
        if len(call.args) != 2 or self.names.qualified(call.args[0].value) != "socket":
            return
        attr = call.args[1].value
        if isinstance(attr, cst.SimpleString) and attr.evaluated_value in ("AF_INET", "AF_INET6"):
            self.report(call, f"socket family chosen by name {source_of(call)} -> afVMCI", replacement=af_family())

    def _port_value(self, value: cst.BaseExpression, what: str) -> None:
        if is_family_choice(self.names, value):
            self.report(value, f"{what} {source_of(value)} -> afVMCI", replacement=af_family())

    @staticmethod
    def _family_arg(call: cst.Call) -> cst.Arg | None:
        for arg in call.args:
            if arg.keyword is not None and arg.keyword.value == "family":
                return arg
        if call.args and call.args[0].keyword is None and call.args[0].star == "":
            return call.args[0]
        return None
