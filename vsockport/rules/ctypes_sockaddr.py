from __future__ import annotations

import libcst as cst

from vsockport.rules.address_family import is_inet_family
from vsockport.rules.addresses import LOOPBACK_HOSTS, literal_int, literal_string
from vsockport.rules.base import Example, Rule

_FIELD_RENAMES = {"sin_family": "svm_family", "sin_port": "svm_port", "sin_addr": "svm_cid", "sin_zero": "svm_zero"}
_BYTE_ORDER_CALLS = ("socket.htons", "socket.ntohs", "socket.htonl", "socket.ntohl")

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
      `VMADDR_CID_ANY`, loopback values become `VMADDR_CID_LOCAL`; other addresses are reported.

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
    Safe for the patterns above. Addresses assigned to `sin_addr` that are not wildcard or loopback, and
    positional `sockaddr_in(...)` constructors (the field order differs), are reported, not changed.
    """

    code = "VS006"
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
        Example(
            "import socket\npeer.sin_addr.s_addr = socket.inet_aton(host)\n",
            "import socket\npeer.svm_cid = socket.inet_aton(host)\n",
            ("VS006", "VS006"),
        ),
        Example("import ctypes\nclass sockaddr_un(ctypes.Structure):\n    pass\n"),
    )

    def leave_Call(self, original: cst.Call, updated: cst.Call):
        qualified = self.names.qualified(original.func)
        if qualified in ("socket.ntohs", "socket.ntohl") and len(original.args) == 1 and self._is_field(original.args[0].value):
            self.report(original, "ntohs() of a sockaddr_vm field: vsock ports are in host byte order")
            return updated.args[0].value
        changed = updated
        if isinstance(original.func, cst.Name) and original.func.value == "sockaddr_in":
            if any(a.keyword is None for a in original.args):
                self.report(original, "positional sockaddr_in(...) arguments: sockaddr_vm's field order differs", fixable=False)
                return updated
            self.report(original, "sockaddr_in -> sockaddr_vm")
            args = [self._renamed_keyword(a) for a in updated.args]
            changed = changed.with_changes(func=self.ctx.runtime_name("sockaddr_vm"), args=args)
        args = list(changed.args)
        for index, arg in enumerate(original.args):
            if isinstance(arg.value, cst.Name) and arg.value.value == "sockaddr_in":
                self.report(arg, "sockaddr_in -> sockaddr_vm")
                args[index] = args[index].with_changes(value=self.ctx.runtime_name("sockaddr_vm"))
        return changed.with_changes(args=args) if args != list(changed.args) else changed

    def leave_Attribute(self, original: cst.Attribute, updated: cst.Attribute):
        if original.attr.value == "s_addr" and isinstance(original.value, cst.Attribute) and original.value.attr.value == "sin_addr":
            return updated.value  # the inner attribute, already renamed to svm_cid
        new_name = _FIELD_RENAMES.get(original.attr.value)
        if new_name is None:
            return updated
        return updated.with_changes(attr=cst.Name(new_name))

    def leave_Assign(self, original: cst.Assign, updated: cst.Assign) -> cst.Assign:
        if len(original.targets) != 1 or not self._is_field(original.targets[0].target):
            return updated
        target = original.targets[0].target
        field = target.attr.value if target.attr.value != "s_addr" else "sin_addr"
        value = original.value
        if field == "sin_family" and is_inet_family(self, value):
            self.report(original, "sin_family = AF_INET -> svm_family = afVMCI")
            return updated.with_changes(value=self.ctx.af_family())
        if field == "sin_port":
            self.report(original, "sin_port -> svm_port, in host byte order")
            if isinstance(value, cst.Call) and self.names.qualified(value.func) in _BYTE_ORDER_CALLS and len(value.args) == 1:
                return updated.with_changes(value=updated.value.args[0].value)
            return updated
        if field == "sin_addr":
            cid = self._cid_for(value)
            if cid is None:
                self.report(original, "sin_addr -> svm_cid: the assigned address is not a CID; set a CID here", fixable=False)
                self.report(original, "sin_addr -> svm_cid")
                return updated
            self.report(original, f"sin_addr -> svm_cid = {cid}")
            return updated.with_changes(value=self.ctx.runtime_name(cid))
        self.report(original, f"{field} -> {_FIELD_RENAMES[field]}")
        return updated

    def _cid_for(self, value: cst.BaseExpression) -> str | None:
        if isinstance(value, cst.Call) and self.names.qualified(value.func) in _BYTE_ORDER_CALLS + ("socket.inet_aton",) and len(value.args) == 1:
            value = value.args[0].value
        qualified = self.names.qualified(value)
        text = literal_string(value)
        if qualified == "socket.INADDR_ANY" or literal_int(value) == 0 or text in ("0.0.0.0", ""):
            return "VMADDR_CID_ANY"
        if qualified == "socket.INADDR_LOOPBACK" or (text is not None and (text in LOOPBACK_HOSTS or text.startswith("127."))):
            return "VMADDR_CID_LOCAL"
        return None

    @staticmethod
    def _is_field(node: cst.BaseExpression) -> bool:
        if not isinstance(node, cst.Attribute):
            return False
        if node.attr.value == "s_addr":
            return isinstance(node.value, cst.Attribute) and node.value.attr.value == "sin_addr"
        return node.attr.value in _FIELD_RENAMES

    @staticmethod
    def _renamed_keyword(arg: cst.Arg) -> cst.Arg:
        if arg.keyword is not None and arg.keyword.value in _FIELD_RENAMES:
            return arg.with_changes(keyword=cst.Name(_FIELD_RENAMES[arg.keyword.value]))
        return arg
