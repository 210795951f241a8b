"""How a TCP/IP address written in the code becomes a vsock one: shared by the bind (VS003) and connect
(VS004) rules.

`address_fixes` proposes, for one written address, the fixes of its parts: each is a `Proposal` of the
node to replace, its replacement (None: a finding without a fix), a message and whether it is a note.
Only what is written out is ported here: wildcard and loopback hosts, port 0, hosts the port-time CID
map names. A host computed at run time is left as it is: the runtime maps `(host, port)` on a vsock
socket's bind() and connect(), through VSOCK_CID_MAP, which can give a whole endpoint its own vsock
port. Nothing here changes anything.
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
    replacement: cst.CSTNode | None
    message: str
    note: bool = False


def _already_ported(names: ModuleNames, node: cst.BaseExpression) -> bool:
    return names.is_runtime_name(node) or (isinstance(node, cst.Call) and names.is_runtime_name(node.func))


def bind_host(names: ModuleNames, host: cst.BaseExpression) -> Proposal | None:
    if _already_ported(names, host):
        return None
    value = names.constant(host)
    if literal_int(value) is not None:
        return None  # a CID already
    text, qualified, shown = literal_string(value), names.qualified(value), source_of(host)
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
    return None  # computed: the runtime maps it when the socket binds


def _port_time_entry(cid_map, host_text: str, port: int | None):
    """The port-time map's value for host (and port): a CID, (CID, vsock port), or "unix:PATH"."""
    entries = {str(name).lower(): value for name, value in cid_map.items()}
    if port is not None and f"{host_text.lower()}:{port}" in entries:
        return entries[f"{host_text.lower()}:{port}"]
    return entries.get(host_text.lower())


def connect_fixes(names: ModuleNames, host: cst.BaseExpression, port: cst.BaseExpression, cid_map) -> list[Proposal]:
    """The fixes of a destination's host (and port), written out or computed."""
    if _already_ported(names, host):
        return []
    value = names.constant(host)
    if literal_int(value) is not None:
        return []
    text, qualified, shown = literal_string(value), names.qualified(value), source_of(host)
    port_number = literal_int(names.constant(port))
    entry = _port_time_entry(cid_map, text, port_number) if text is not None else None
    if entry is None and (qualified == "socket.INADDR_LOOPBACK" or (text is not None and (is_loopback(text) or is_wildcard(text)))):
        return [Proposal(host, runtime_name("VMADDR_CID_LOCAL"), f"connect to {shown} -> VMADDR_CID_LOCAL")]
    if text is None:
        if not cid_map:
            return []  # computed: the runtime maps it when the socket connects
        # The map given at port time reaches only what is written out; say so rather than let the
        # program meet an unmapped name at run time.
        return [Proposal(host, None, f"connects to a host computed at run time ({shown}): the --cid map given at "
                                     "port time cannot reach it; the runtime maps it through VSOCK_CID_MAP, so set "
                                     "that where the program runs", note=True)]
    if isinstance(entry, str):
        return [Proposal(host, cst.SimpleString(repr(entry)),
                         f"connect to {shown} -> the VMM's hybrid-vsock socket {entry} (from the CID map)")]
    if isinstance(entry, tuple):
        cid, vport = entry
        return [Proposal(host, cst.Integer(str(cid)), f"connect to {shown}:{port_number} -> CID {cid} (from the CID map)"),
                Proposal(port, cst.Integer(str(vport)), f"port {port_number} of {shown} -> vsock port {vport} (from the CID map)")]
    if entry is not None:
        return [Proposal(host, cst.Integer(str(entry)), f"connect to {shown} -> CID {entry} (from the CID map)")]
    where = f"{text}:{port_number}" if port_number is not None else text
    return [Proposal(host, None, f"connects to {where}: the runtime needs its CID at run time ({where.split(':')[0]}=CID "
                                 f"in VSOCK_CID_MAP), or give it at port time with --cid {text}=CID", note=True)]


def bind_port(names: ModuleNames, port: cst.BaseExpression) -> Proposal | None:
    if literal_int(names.constant(port)) == 0:
        return Proposal(port, runtime_name("VMADDR_PORT_ANY"),
                        f"port {source_of(port)} -> VMADDR_PORT_ANY (vsock port 0 is a real privileged port, not 'any')")
    return None


def address_fixes(names: ModuleNames, address: cst.BaseExpression, *, bind: bool, cid_map=None) -> list[Proposal]:
    """The fixes for one address argument written out as a tuple: its host, its port (when binding),
    an IPv6 4-tuple's extra fields."""
    if not is_address_tuple(address):
        return []
    host, port = address.elements[0].value, address.elements[1].value
    if bind:
        found = [bind_host(names, host), bind_port(names, port)]
    else:
        found = connect_fixes(names, host, port, cid_map or {})
    if len(address.elements) == 4 and any(p is not None and p.replacement is not None for p in found):
        two = [address.elements[0], address.elements[1].with_changes(comma=cst.MaybeSentinel.DEFAULT)]
        found.append(Proposal(address, address.with_changes(elements=two),
                              "IPv6 flowinfo and scope_id dropped: a vsock address is (CID, port)"))
    return [p for p in found if p is not None]


class AddressRule(Rule):
    """Base of the bind and connect rules: `address_of(call)` finds the address argument of a call,
    and each fix of that address is reported. Datagram sockets' addresses stay IP (VS012), and so do
    those of sockets another module's socket class makes (ModuleNames.other_socket_receivers)."""

    bind = False

    def address_of(self, call: cst.Call) -> cst.Arg | None:
        raise NotImplementedError

    def visit_Call(self, node: cst.Call) -> None:
        address = self.address_of(node)
        if address is None:
            return
        receiver = node.func.value if isinstance(node.func, cst.Attribute) else None
        if receiver is not None and not self.options.vmci_datagrams and source_of(receiver) in self.names.datagram_receivers():
            return
        if receiver is not None and source_of(receiver) in self.names.other_socket_receivers():
            return
        for fix in address_fixes(self.names, address.value, bind=self.bind, cid_map=self.options.cid_map):
            self.report(fix.node, fix.message, replacement=fix.replacement, note=fix.note)
