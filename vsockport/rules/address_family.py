from __future__ import annotations

import libcst as cst

from vsockport.rules.base import Example, Rule, changed

INET_FAMILIES = ("socket.AF_INET", "socket.AF_INET6")
# ctypes programs often define the numbers themselves: AF_INET = 2, AF_INET6 = 10.
_INET_NUMBERS = {"AF_INET": 2, "AF_INET6": 10}


def is_inet_family(rule: Rule, node: cst.BaseExpression) -> bool:
    if rule.names.qualified(node) in INET_FAMILIES:
        return True
    if isinstance(node, cst.Name) and node.value in _INET_NUMBERS:
        constant = rule.names.constant(node)
        return isinstance(constant, cst.Integer) and int(constant.evaluated_value) == _INET_NUMBERS[node.value]
    return False


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

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        func = original.func
        if isinstance(func, cst.Name) and func.value == "getattr":
            return self._port_getattr(original, updated)
        qualified = self.names.qualified(func)
        is_socket_class = qualified in ("socket.socket", "socket.SocketType")
        is_raw_socket_call = isinstance(func, cst.Attribute) and func.attr.value == "socket"
        if not (is_socket_class or is_raw_socket_call):
            return updated
        index = self._family_index(original)
        if index is None:
            keywords = {a.keyword.value for a in original.args if a.keyword is not None}
            positional = [a for a in original.args if a.keyword is None]
            if is_socket_class and not positional and not keywords & {"family", "fileno"}:
                self.report(original, "socket() defaults to AF_INET -> afVMCI")
                return updated.with_changes(args=[cst.Arg(self.ctx.af_family()), *updated.args])
            return updated
        if not is_inet_family(self, original.args[index].value):
            return updated
        self.report(original.args[index], f"socket family {self._shown(original.args[index].value)} -> afVMCI")
        args = list(updated.args)
        args[index] = args[index].with_changes(value=self.ctx.af_family())
        return updated.with_changes(args=args)

    # A family kept in a variable, returned, or used as a default still ends up in socket().
    def leave_Assign(self, original: cst.Assign, updated: cst.Assign) -> cst.Assign:
        return changed(updated, value=self._ported_value(original.value, updated.value, self._target(original)))

    def leave_AnnAssign(self, original: cst.AnnAssign, updated: cst.AnnAssign) -> cst.AnnAssign:
        if original.value is None:
            return updated
        return changed(updated, value=self._ported_value(original.value, updated.value, "assigned family"))

    def leave_Return(self, original: cst.Return, updated: cst.Return) -> cst.Return:
        if original.value is None:
            return updated
        return changed(updated, value=self._ported_value(original.value, updated.value, "returned family"))

    def leave_Param(self, original: cst.Param, updated: cst.Param) -> cst.Param:
        if original.default is None:
            return updated
        return changed(updated, default=self._ported_value(original.default, updated.default, "default family"))

    def _port_getattr(self, original: cst.Call, updated: cst.BaseExpression) -> cst.BaseExpression:
        """`getattr(socket, "AF_INET")`: the family chosen by name."""
        if not (isinstance(original.func, cst.Name) and original.func.value == "getattr" and len(original.args) == 2):
            return updated
        module, attr = original.args[0].value, original.args[1].value
        if self.names.qualified(module) != "socket" or not isinstance(attr, cst.SimpleString):
            return updated
        if attr.evaluated_value not in ("AF_INET", "AF_INET6"):
            return updated
        self.report(original, f"socket family chosen by name {self._shown(original)} -> afVMCI")
        return self.ctx.af_family()

    def _target(self, assign: cst.Assign) -> str:
        names = [self._shown(t.target) for t in assign.targets]
        return f"{' = '.join(names)}"

    def _ported_value(self, original: cst.BaseExpression, updated: cst.BaseExpression, what: str) -> cst.BaseExpression:
        if is_inet_family(self, original):
            self.report(original, f"{what} {self._shown(original)} -> afVMCI")
            return self.ctx.af_family()
        if isinstance(original, cst.IfExp) and is_inet_family(self, original.body) and is_inet_family(self, original.orelse):
            # `AF_INET6 if ":" in host else AF_INET`: vsock has one family for both.
            self.report(original, f"{what} {self._shown(original)} -> afVMCI")
            return self.ctx.af_family()
        return updated

    @staticmethod
    def _family_index(call: cst.Call) -> int | None:
        for index, arg in enumerate(call.args):
            if arg.keyword is not None and arg.keyword.value == "family":
                return index
        if call.args and call.args[0].keyword is None and call.args[0].star == "":
            return 0
        return None

    @staticmethod
    def _shown(node: cst.CSTNode) -> str:
        return cst.Module([]).code_for_node(node)
