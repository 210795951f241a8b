"""How a TCP/IP address becomes a vsock one: shared by the bind (VS003) and connect (VS004) rules.

`address_fixes` proposes, for one written address, the fixes of its parts: each is a `Proposal` of the
node to replace, its replacement, a message and whether it is unsafe. Nothing here changes anything.
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from vsockport.rules.api import Rule, runtime_name
from vsockport.rules.helpers import (
    call_to, is_address_tuple, is_loopback, is_wildcard, literal_int, literal_string, source_of,
)
from vsockport.rules.names import ModuleNames

_THIS_MACHINE = ("socket.gethostname", "socket.getfqdn")


@dataclass(frozen=True)
class Proposal:
    node: cst.CSTNode
    replacement: cst.CSTNode
    message: str
    unsafe: bool = False


def _already_ported(names: ModuleNames, node: cst.BaseExpression) -> bool:
    return names.is_runtime_name(node) or (isinstance(node, cst.Call) and names.is_runtime_name(node.func))


@dataclass(frozen=True)
class _Host:
    value: cst.BaseExpression  # the host, or the literal a constant name stands for
    text: str | None  # its string value, when it is a literal
    qualified: str | None  # its qualified name (socket.INADDR_ANY), when it is a name
    shown: str  # as written


def _host(names: ModuleNames, host: cst.BaseExpression) -> _Host | None:
    """What a written host is, or None when it needs nothing (a CID already, or ported)."""
    if _already_ported(names, host):
        return None
    value = names.constant(host)
    if literal_int(value) is not None:
        return None
    return _Host(value, literal_string(value), names.qualified(value), source_of(host))


def bind_host(names: ModuleNames, host: cst.BaseExpression) -> Proposal | None:
    found = _host(names, host)
    if found is None:
        return None
    value, text, qualified, shown = found.value, found.text, found.qualified, found.shown
    any_cid = runtime_name("VMADDR_CID_ANY")
    if qualified == "socket.INADDR_ANY" or (text is not None and is_wildcard(text)):
        return Proposal(host, any_cid, f"bind to {shown} (all interfaces) -> VMADDR_CID_ANY")
    if qualified == "socket.INADDR_LOOPBACK" or (text is not None and is_loopback(text)):
        return Proposal(host, call_to(runtime_name("vsock_bind_cid"), host),
                        f"loopback-only bind to {shown} -> vsock_bind_cid({shown}): VMADDR_CID_LOCAL where the "
                        "vsock_loopback transport offers it, else VMADDR_CID_ANY (reachable from the host; the "
                        "runtime warns)")
    if isinstance(value, cst.Call) and names.qualified(value.func) in _THIS_MACHINE:
        return Proposal(host, any_cid, f"bind to this machine's name {shown} -> VMADDR_CID_ANY")
    if text is not None:
        return Proposal(host, any_cid, f"bind to the specific address {shown} -> VMADDR_CID_ANY (vsock binds by CID, "
                                       "not interface)")
    return Proposal(host, call_to(runtime_name("vsock_bind_cid"), host),
                    f"computed bind host {shown} -> vsock_bind_cid({shown}), resolved at run time", unsafe=True)


def connect_host(names: ModuleNames, host: cst.BaseExpression, cid_map) -> Proposal | None:
    found = _host(names, host)
    if found is None:
        return None
    text, qualified, shown = found.text, found.qualified, found.shown
    if qualified == "socket.INADDR_LOOPBACK" or (text is not None and (is_loopback(text) or is_wildcard(text))):
        return Proposal(host, runtime_name("VMADDR_CID_LOCAL"), f"connect to {shown} -> VMADDR_CID_LOCAL")
    if text is not None:
        for name, cid in cid_map.items():
            if name.lower() == text.lower() and isinstance(cid, str):
                return Proposal(host, cst.SimpleString(repr(cid)),
                                f"connect to {shown} -> the VMM's hybrid-vsock socket {cid} (from the CID map)")
            if name.lower() == text.lower():
                return Proposal(host, cst.Integer(str(cid)), f"connect to {shown} -> CID {cid} (from the CID map)")
    hint = f"; map it with --cid {text}=CID" if text is not None else ""
    return Proposal(host, call_to(runtime_name("vsock_cid"), host),
                    f"host {shown} -> vsock_cid({shown}), resolved at run time from VSOCK_CID_MAP{hint}", unsafe=True)


def bind_port(names: ModuleNames, port: cst.BaseExpression) -> Proposal | None:
    if literal_int(names.constant(port)) == 0:
        return Proposal(port, runtime_name("VMADDR_PORT_ANY"),
                        f"port {source_of(port)} -> VMADDR_PORT_ANY (vsock port 0 is a real privileged port, not 'any')")
    return None


def address_fixes(names: ModuleNames, address: cst.BaseExpression, *, bind: bool, cid_map=None) -> list[Proposal]:
    """The fixes for one address argument: its host, its port (when binding), an IPv6 4-tuple's extra
    fields, or a module-level address constant converted where it is used."""
    if is_address_tuple(address):
        host, port = address.elements[0].value, address.elements[1].value
        found = [bind_host(names, host) if bind else connect_host(names, host, cid_map or {}),
                 bind_port(names, port) if bind else None]
        if len(address.elements) == 4:
            two = [address.elements[0], address.elements[1].with_changes(comma=cst.MaybeSentinel.DEFAULT)]
            found.append(Proposal(address, address.with_changes(elements=two),
                                  "IPv6 flowinfo and scope_id dropped: a vsock address is (CID, port)"))
        return [p for p in found if p is not None]
    constant = names.constant(address)
    if constant is not address and is_address_tuple(constant):
        # A module-level ADDRESS = (host, port) constant: converted where it is used, at run time.
        args = [cst.Arg(address)]
        if bind:
            args.append(cst.Arg(cst.Name("True"), keyword=cst.Name("bind"), equal=cst.AssignEqual(
                whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace(""))))
        shown = source_of(address)
        return [Proposal(address, cst.Call(runtime_name("vsock_address"), args),
                         f"address constant {shown} -> vsock_address({shown}), converted to (CID, port) at run time")]
    return []


class AddressRule(Rule):
    """Base of the bind and connect rules: `address_of(call)` finds the address argument of a call,
    and each fix of that address is reported."""

    bind = False

    def address_of(self, call: cst.Call) -> cst.Arg | None:
        raise NotImplementedError

    def visit_Call(self, node: cst.Call) -> None:
        address = self.address_of(node)
        if address is not None:
            for fix in address_fixes(self.names, address.value, bind=self.bind, cid_map=self.options.cid_map):
                self.report(fix.node, fix.message, replacement=fix.replacement, unsafe=fix.unsafe)
