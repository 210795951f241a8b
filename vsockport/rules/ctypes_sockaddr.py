from __future__ import annotations

import libcst as cst

from vsockport.rules.vocabulary import is_inet_family
from vsockport.rules.api import Example, Rule, af_family, runtime_name
from vsockport.rules.helpers import call_to, called_name, is_loopback, literal_int, literal_string, source_of

_FIELD_RENAMES = {"sin_family": "svm_family", "sin_port": "svm_port", "sin_addr": "svm_cid", "sin_zero": "svm_zero"}
_BYTE_ORDER_CALLS = ("socket.htons", "socket.ntohs", "socket.htonl", "socket.ntohl")
# Functions that turn a host into an IPv4 address: socket's and the C library's (libc.inet_addr(b"...")).
_ADDRESS_PARSERS = ("inet_aton", "inet_addr", "inet_pton")
# The C socket calls a sockaddr is for; a module that makes none hands its sockaddr_in to something else.
_C_SOCKET_CALLS = frozenset(["bind", "connect", "accept", "accept4", "sendto", "recvfrom", "getsockname", "getpeername"])

_CTYPES_BEFORE = """\
import ctypes, socket
addr = sockaddr_in()
addr.sin_family = socket.AF_INET
addr.sin_port = socket.htons(port)
addr.sin_addr.s_addr = socket.htonl(socket.INADDR_ANY)
libc.bind(fd, ctypes.byref(addr), ctypes.sizeof(sockaddr_in))
"""
_CTYPES_AFTER = """\
import ctypes, socket
from vsock_runtime import VMADDR_CID_ANY, VMCISock_GetAFValue, sockaddr_vm
afVMCI = VMCISock_GetAFValue()
addr = sockaddr_vm()
addr.svm_family = afVMCI
addr.svm_port = port
addr.svm_cid = VMADDR_CID_ANY
libc.bind(fd, ctypes.byref(addr), ctypes.sizeof(sockaddr_vm))
"""


class CtypesSockaddr(Rule):
    """Port ctypes code that fills a `sockaddr_in` to the runtime's `sockaddr_vm`.

    ## What it does
    - `sockaddr_in(...)`, `sizeof(sockaddr_in)`, `POINTER(sockaddr_in)` use `sockaddr_vm` instead (your
      own `class sockaddr_in` definition is left in place, unused);
    - `.sin_family` -> `.svm_family` (and `AF_INET` assigned to it -> `afVMCI`);
    - `.sin_port = htons(p)` -> `.svm_port = p` and `ntohs(a.sin_port)` -> `a.svm_port`;
    - `.sin_addr` / `.sin_addr.s_addr` -> `.svm_cid`; `INADDR_ANY` (or `htonl(INADDR_ANY)`, `0`) becomes
      `VMADDR_CID_ANY`; a loopback address (`htonl(INADDR_LOOPBACK)`, `inet_addr(b"127.0.0.1")`,
      `inet_aton("localhost")`, `inet_pton(AF_INET, "::1")`) becomes `VMADDR_CID_LOCAL`; a host parsed at
      run time (`inet_addr(host)`) becomes `vsock_cid(host)`; any other value is reported and the
      assignment left as it is (a CID must be chosen there);
    - other reads of the fields (`peer.sin_port`) use the `svm_` names;
    - your own `class sockaddr_in` is noted: unused after the port, it can go.

    A module that makes none of the C socket calls (`bind`, `connect`, `accept`, `sendto`, ...) hands
    its `sockaddr_in` to some other library: it is reported and left as it is.

    ## Why
    `struct sockaddr_vm` has a different layout: port and CID are 32-bit and in host byte order (no
    `htons`), and it is 16 bytes long (a shorter addrlen is EINVAL).

    ## Example
    ```python
    addr.sin_port = socket.htons(port)
    ```
    becomes
    ```python
    addr.svm_port = port
    ```

    ## Fix safety
    Safe for the patterns above; `vsock_cid(host)` for a host parsed at run time is unsafe (the host
    needs a CID in VSOCK_CID_MAP). Other addresses assigned to `sin_addr`, and positional
    `sockaddr_in(...)` constructors (the field order differs), are reported, not changed.
    """

    code = "VS006"
    fix_safety = "mixed"
    name = "ctypes-sockaddr"
    # The field names themselves, not "sin_": that prefix is in sympy's sin_x and every trig module.
    words = tuple(field.encode() for field in _FIELD_RENAMES)
    triggers = (b"sockaddr_in", *words)
    examples = (
        Example(_CTYPES_BEFORE, _CTYPES_AFTER, ("VS006",) * 5),
        Example(
            "import socket\nport = socket.ntohs(peer.sin_port)\n",
            "import socket\nport = peer.svm_port\n",
            ("VS006",),
        ),
        Example("import socket\npeer.sin_addr.s_addr = some_address\nlibc.connect(fd, ctypes.byref(peer), 16)\n",
                None, ("VS006",)),
        Example(
            "import ctypes\nlocal.sin_addr.s_addr = libc.inet_addr(b'127.0.0.1')\nremote.sin_addr.s_addr = libc.inet_addr(host)\n"
            "libc.connect(fd, ctypes.byref(local), 16)\n",
            "import ctypes\nfrom vsock_runtime import VMADDR_CID_LOCAL, vsock_cid\nlocal.svm_cid = VMADDR_CID_LOCAL\n"
            "remote.svm_cid = vsock_cid(host)\nlibc.connect(fd, ctypes.byref(local), 16)\n",
            ("VS006", "VS006"),
        ),
        Example(
            "import ctypes, socket\naddr = sockaddr_in(sin_family=socket.AF_INET, sin_port=socket.htons(80))\n"
            "libc.bind(fd, ctypes.byref(addr), 16)\n",
            "import ctypes, socket\nfrom vsock_runtime import VMCISock_GetAFValue, sockaddr_vm\nafVMCI = VMCISock_GetAFValue()\n"
            "addr = sockaddr_vm(svm_family=afVMCI, svm_port=80)\nlibc.bind(fd, ctypes.byref(addr), 16)\n",
            ("VS006",),
        ),
        Example("import ctypes\nclass sockaddr_in(ctypes.Structure):\n    _fields_ = []\nlibc.bind(fd, None, 0)\n",
                None, ("VS006",)),
        Example("import ctypes\naddr = sockaddr_in()\naddr.sin_port = 80\npcap.set_filter(ctypes.byref(addr))\n",
                None, ("VS006",)),
        Example("import ctypes\nclass sockaddr_un(ctypes.Structure):\n    pass\n"),
    )

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self._handled: set[cst.CSTNode] = set()  # field nodes ported with the statement that holds them

    def _for_sockets(self) -> bool:
        """False when the module builds a sockaddr_in but makes no C socket call with it."""
        return "sockaddr_in" not in self.names.identifiers() or bool(self.names.called_names() & _C_SOCKET_CALLS)

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        if node.name.value == "sockaddr_in":
            self.report(node.name, "your own sockaddr_in: the port uses the runtime's sockaddr_vm instead, so "
                                   "this class is left unused; remove it", note=True)

    def visit_Call(self, node: cst.Call) -> None:
        if not self._for_sockets():
            if isinstance(node.func, cst.Name) and node.func.value == "sockaddr_in":
                self.report(node, "sockaddr_in, in a module that makes no C socket call (bind, connect, accept, "
                                  "sendto, ...): it goes to another library, which vsock cannot serve; left as it is")
            return
        qualified = self.names.qualified(node.func)
        if qualified in ("socket.ntohs", "socket.ntohl") and len(node.args) == 1 and _is_field(node.args[0].value):
            field = node.args[0].value
            self._take(field)
            self.report(node, f"{qualified.rpartition('.')[2]}() of a sockaddr_vm field: vsock ports are in host byte order",
                        replacement=_renamed(field))
            return
        if isinstance(node.func, cst.Name) and node.func.value == "sockaddr_in":
            if any(a.keyword is None for a in node.args):
                self.report(node, "positional sockaddr_in(...) arguments: sockaddr_vm's field order differs")
            else:
                self._construct(node)
            return
        for arg in node.args:
            if isinstance(arg.value, cst.Name) and arg.value.value == "sockaddr_in":
                self.report(arg.value, "sockaddr_in -> sockaddr_vm", replacement=runtime_name("sockaddr_vm"))

    def visit_Assign(self, node: cst.Assign) -> None:
        if not self._for_sockets():
            return
        if len(node.targets) != 1 or not _is_field(node.targets[0].target):
            return
        target = node.targets[0].target
        self._take(target)
        field = target.attr.value if target.attr.value != "s_addr" else "sin_addr"
        value, message, unsafe = self._field_value(field, node.value)
        replacement = None if value is None else _assigned(node, _renamed(target), value)
        self.report(node, message, replacement=replacement, unsafe=unsafe)

    def _field_value(self, field: str, value: cst.BaseExpression) -> tuple[cst.BaseExpression | None, str, bool]:
        """What a sockaddr_in field's value becomes in sockaddr_vm: (new value or None, message, unsafe)."""
        if field == "sin_family":
            if is_inet_family(self.names, value):
                return af_family(), "sin_family = AF_INET -> svm_family = afVMCI", False
            return value, "sin_family -> svm_family", False
        if field == "sin_port":
            if isinstance(value, cst.Call) and self.names.qualified(value.func) in _BYTE_ORDER_CALLS and len(value.args) == 1:
                value = value.args[0].value
            return value, "sin_port -> svm_port, in host byte order", False
        if field == "sin_addr":
            cid, parsed_host = self._cid_for(value)
            if cid is not None:
                return runtime_name(cid), f"sin_addr -> svm_cid = {cid}", False
            if parsed_host is not None:
                shown = source_of(parsed_host)
                return (call_to(runtime_name("vsock_cid"), parsed_host),
                        f"sin_addr from the host {shown} -> svm_cid = vsock_cid({shown}), resolved at run time", True)
            return None, "sin_addr -> svm_cid: the assigned address is not a CID; set a CID here", False
        return value, f"{field} -> {_FIELD_RENAMES[field]}", False

    def visit_Attribute(self, node: cst.Attribute) -> None:
        if node in self._handled or not _is_field(node) or not self._for_sockets():
            return
        self._take(node)
        new = _renamed(node)
        self.report(node, f"{node.attr.value} -> {new.attr.value}", replacement=new)

    def _construct(self, call: cst.Call) -> None:
        """`sockaddr_in(sin_family=..., sin_port=...)`: each keyword's value as its field's would be."""
        args, unsafe, messages = [], False, []
        for arg in call.args:
            keyword = arg.keyword.value if arg.keyword is not None else None
            if keyword not in _FIELD_RENAMES:
                args.append(arg)
                continue
            value, message, risky = self._field_value(keyword, arg.value)
            if value is None:
                self.report(call, f"sockaddr_in({keyword}=...): {message}")
                return
            args.append(arg.with_changes(keyword=cst.Name(_FIELD_RENAMES[keyword]), value=value))
            unsafe, messages = unsafe or risky, [*messages, message]
        self.report(call, "; ".join(["sockaddr_in -> sockaddr_vm", *messages]), unsafe=unsafe,
                    replacement=call.with_changes(func=runtime_name("sockaddr_vm"), args=args))

    def _take(self, field: cst.Attribute) -> None:
        """`field` is ported by the node being visited (`a.sin_addr.s_addr` is one field: `a.svm_cid`)."""
        self._handled.add(field)
        if field.attr.value == "s_addr":
            self._handled.add(field.value)

    def _cid_for(self, value: cst.BaseExpression) -> tuple[str | None, cst.BaseExpression | None]:
        """(runtime CID name, None) for a wildcard or loopback value; (None, host) for a host parsed at
        run time (`inet_addr(host)`); (None, None) for anything else."""
        parsed = None
        while isinstance(value, cst.Call) and value.args:
            name = called_name(value.func)
            if self.names.qualified(value.func) in _BYTE_ORDER_CALLS and len(value.args) == 1:
                value = value.args[0].value
            elif name in _ADDRESS_PARSERS:
                value = value.args[-1].value  # inet_pton(AF_INET, host): the host is last
                parsed = value
            else:
                break
        qualified = self.names.qualified(value)
        text = literal_string(self.names.constant(value))
        if qualified == "socket.INADDR_ANY" or literal_int(value) == 0 or text in ("0.0.0.0", ""):
            return "VMADDR_CID_ANY", None
        if qualified == "socket.INADDR_LOOPBACK" or (text is not None and is_loopback(text)):
            return "VMADDR_CID_LOCAL", None
        if parsed is not None and text is None:
            return None, parsed
        return None, None


def _is_field(node: cst.BaseExpression) -> bool:
    if not isinstance(node, cst.Attribute):
        return False
    if node.attr.value == "s_addr":
        return isinstance(node.value, cst.Attribute) and node.value.attr.value == "sin_addr"
    return node.attr.value in _FIELD_RENAMES


def _renamed(field: cst.Attribute) -> cst.Attribute:
    """`a.sin_port` -> `a.svm_port`; `a.sin_addr.s_addr` -> `a.svm_cid`."""
    if field.attr.value == "s_addr":
        field = field.value  # type: ignore[assignment]
    return field.with_changes(attr=cst.Name(_FIELD_RENAMES[field.attr.value]))


def _assigned(assign: cst.Assign, target: cst.BaseAssignTargetExpression, value: cst.BaseExpression) -> cst.Assign:
    return assign.with_changes(targets=[assign.targets[0].with_changes(target=target)], value=value)
