from __future__ import annotations

import libcst as cst

from vsockport.rules.api import Example, Rule, af_family, runtime_name
from vsockport.rules.helpers import is_value_use, literal_int, source_of
from vsockport.rules.names import ModuleNames

INET_FAMILIES = ("socket.AF_INET", "socket.AF_INET6")
_SOCKET_CLASSES = ("socket.socket", "socket.SocketType")
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


def is_other_family(names: ModuleNames, node: cst.BaseExpression) -> bool:
    """A family written out that is not IP (AF_UNIX, AF_PACKET, AF_VSOCK, a number): left alone."""
    qualified = names.qualified(node)
    if qualified is not None and qualified.startswith("socket.AF_"):
        return qualified not in INET_FAMILIES
    number = literal_int(names.constant(node))
    return number is not None and number not in (-1, 2, 10)


class AddressFamily(Rule):
    """Create vsock sockets where the program creates IP sockets.

    ## What it does
    - `socket.socket(...)` (and `socket(...)`, `SocketType(...)`) becomes `vsock_socket(...)`, with the
      same arguments, when the family is `AF_INET`/`AF_INET6`, a choice between them
      (`AF_INET6 if ":" in host else AF_INET`), missing (CPython's default is `AF_INET`), or known only
      at run time (`socket.socket(family, ...)`, `socket.socket(fileno=fd)`). A family written out that
      is not IP (`AF_UNIX`) is left alone.
    - A reference to `socket.socket` used as a value (`factory=socket.socket`,
      `partial(socket.socket, AF_INET)`) becomes `vsock_socket`. A class that derives from
      `socket.socket` is reported: its callers choose the family.
    - Raw C calls (`libc.socket(AF_INET, ...)`) get the vsock family itself, `afVMCI`, set once per
      module from the runtime's `VMCISock_GetAFValue()`.

    Family values elsewhere (`family = socket.AF_INET`, a socketserver's `address_family`) stay as
    written: they reach a socket through `vsock_socket()`, which makes IP families vsock, and the
    program's own family checks keep taking its IP path.

    ## Why
    A vSocket is a socket of the vSockets family. `vsock_socket()` returns a `socket.socket` subclass
    whose control calls take TCP/IP-style addresses and explain vsock's errors; any other family gives
    a plain socket, as before. The family number is not a constant everywhere (VMware's driver assigns
    it at run time on some systems): that is why raw calls use `VMCISock_GetAFValue()`, as VMware's
    porting guide asks.

    ## Example
    ```python
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ```
    becomes
    ```python
    from vsock_runtime import vsock_socket
    s = vsock_socket(socket.AF_INET, socket.SOCK_STREAM)
    ```

    ## Fix safety
    Safe: only IP families become vsock; every argument is kept. Comparisons with `AF_INET` are
    VS002's.
    """

    code = "VS001"
    words = (b"AF_INET", b"SocketType")
    name = "address-family"
    examples = (
        Example(
            "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n",
            "import socket\nfrom vsock_runtime import vsock_socket\ns = vsock_socket(socket.AF_INET, socket.SOCK_STREAM)\n",
            ("VS001",),
        ),
        Example(
            "from socket import *\ns = socket(AF_INET6, SOCK_STREAM)\n",
            "from socket import *\nfrom vsock_runtime import vsock_socket\ns = vsock_socket(AF_INET6, SOCK_STREAM)\n",
            ("VS001",),
        ),
        Example(
            "import socket as s\nconn = s.socket()\n",
            "import socket as s\nfrom vsock_runtime import vsock_socket\nconn = vsock_socket()\n",
            ("VS001",),
        ),
        Example(
            "import socket\ndef bind(host, family):\n    a = socket.socket(socket.AF_INET6 if ':' in host else socket.AF_INET)\n"
            "    return a, socket.socket(family, socket.SOCK_STREAM)\n",
            "import socket\nfrom vsock_runtime import vsock_socket\ndef bind(host, family):\n"
            "    a = vsock_socket(socket.AF_INET6 if ':' in host else socket.AF_INET)\n"
            "    return a, vsock_socket(family, socket.SOCK_STREAM)\n",
            ("VS001", "VS001"),
        ),
        Example(
            "import functools, socket\nmake = functools.partial(socket.socket, socket.AF_INET)\n",
            "import functools, socket\nfrom vsock_runtime import vsock_socket\nmake = functools.partial(vsock_socket, socket.AF_INET)\n",
            ("VS001",),
        ),
        Example(
            "import ctypes\nAF_INET = 2\nfd = libc.socket(AF_INET, 1, 0)\n",
            "import ctypes\nfrom vsock_runtime import VMCISock_GetAFValue\nafVMCI = VMCISock_GetAFValue()\n"
            "AF_INET = 2\nfd = libc.socket(afVMCI, 1, 0)\n",
            ("VS001",),
        ),
        Example("import socket\nclass Sock(socket.socket):\n    pass\n", None, ("VS001",)),
        Example("import socket\nu = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\nok = isinstance(u, socket.socket)\n"
                "def f(s: socket.socket) -> None:\n    pass\n"),
        Example("import socket\npacked = socket.inet_pton(socket.AF_INET, '10.0.0.1')\nfamily = socket.AF_INET\n"),
    )

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if self.names.qualified(func) in _SOCKET_CLASSES:
            family = self._family_arg(node)
            if family is not None and is_other_family(self.names, family.value):
                return
            self.report(func, self._message(node, family), replacement=runtime_name("vsock_socket"))
        elif isinstance(func, cst.Attribute) and func.attr.value == "socket":
            family = self._family_arg(node)  # a raw C call: libc.socket(AF_INET, SOCK_STREAM, 0)
            if family is not None and is_inet_family(self.names, family.value):
                self.report(family.value, f"socket family {source_of(family.value)} -> afVMCI", replacement=af_family())

    def visit_Attribute(self, node: cst.Attribute) -> None:
        self._reference(node)

    def visit_Name(self, node: cst.Name) -> None:
        self._reference(node)

    def _reference(self, node: cst.BaseExpression) -> None:
        """`socket.socket` used as a value, not called: a factory kept for later."""
        if self.names.qualified(node) != "socket.socket":
            return
        parent = self.parents(node)
        if isinstance(parent, cst.Call) and parent.func is node:
            return  # a call: visit_Call's
        if isinstance(parent, cst.Arg) and isinstance(self.parents(parent), cst.ClassDef):
            if parent.keyword is None:
                self.report(node, f"a subclass of {source_of(node)}: its instances get the family its callers give; "
                                  "make them with vsock_socket(), or derive from VsockSocket for vsock only")
            return
        if is_value_use(node, self.parents, self.names):
            self.report(node, f"{source_of(node)} kept as a socket factory -> vsock_socket",
                        replacement=runtime_name("vsock_socket"))

    def _message(self, call: cst.Call, family: cst.Arg | None) -> str:
        shown = source_of(call.func)
        if family is None:
            if any(a.keyword is not None and a.keyword.value == "fileno" for a in call.args):
                return f"{shown}(fileno=...) adopts a socket of any family -> vsock_socket(), which keeps vsock ones vsock"
            return f"{shown}() defaults to AF_INET -> vsock_socket()"
        if is_family_choice(self.names, family.value):
            return f"{shown}({source_of(family.value)}) makes an IP socket -> vsock_socket()"
        return (f"{shown}({source_of(family.value)}): a family known only at run time -> vsock_socket(), "
                "which makes IP families vsock and leaves the others as they are")

    @staticmethod
    def _family_arg(call: cst.Call) -> cst.Arg | None:
        for arg in call.args:
            if arg.keyword is not None and arg.keyword.value == "family":
                return arg
        if call.args and call.args[0].keyword is None and call.args[0].star == "":
            return call.args[0]
        return None
