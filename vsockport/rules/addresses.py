"""How a TCP/IP host or port becomes its vsock counterpart; shared by the bind and connect rules.

Each helper returns (replacement, message), or (None, None) when the element is already vsock-ready.
"""

from __future__ import annotations

import libcst as cst

from vsockport.rules.base import Rule

LOOPBACK_HOSTS = frozenset(["localhost", "localhost.localdomain", "ip6-localhost", "127.0.0.1", "::1"])
WILDCARD_HOSTS = frozenset(["", "0.0.0.0", "::"])

_NOTHING: tuple[None, None] = (None, None)


class UnsafeFix(str):
    """A finding message whose fix can change behaviour beyond the port (a host resolved at run time)."""


def source(node: cst.CSTNode) -> str:
    return cst.Module([]).code_for_node(node)


def literal_string(node: cst.BaseExpression) -> str | None:
    if isinstance(node, (cst.SimpleString, cst.ConcatenatedString)):
        value = node.evaluated_value
        if isinstance(value, bytes):
            return value.decode("latin-1")
        return value
    return None


def literal_int(node: cst.BaseExpression) -> int | None:
    if isinstance(node, cst.Integer):
        return int(node.evaluated_value)
    return None


def _is_loopback(text: str) -> bool:
    return text.lower() in LOOPBACK_HOSTS or text.startswith("127.")


def _already_ported(rule: Rule, node: cst.BaseExpression) -> bool:
    if rule.ctx.is_runtime_name(node):
        return True
    return isinstance(node, cst.Call) and rule.ctx.is_runtime_name(node.func)


def bind_host(rule: Rule, host: cst.BaseExpression):
    if _already_ported(rule, host):
        return _NOTHING
    value = rule.names.constant(host)
    if literal_int(value) is not None:
        return _NOTHING
    text = literal_string(value)
    qualified = rule.names.qualified(value)
    shown = source(host)

    def any_cid() -> cst.Name:
        return rule.ctx.runtime_name("VMADDR_CID_ANY")

    if qualified == "socket.INADDR_ANY" or text in WILDCARD_HOSTS:
        return any_cid(), f"bind to {shown} (all interfaces) -> VMADDR_CID_ANY"
    if qualified == "socket.INADDR_LOOPBACK" or (text is not None and _is_loopback(text)):
        return any_cid(), (
            f"loopback-only bind to {shown} -> VMADDR_CID_ANY: vsock has no loopback-only address, "
            "so this socket becomes reachable from the host over vsock"
        )
    if isinstance(value, cst.Call) and rule.names.qualified(value.func) in ("socket.gethostname", "socket.getfqdn"):
        return any_cid(), f"bind to this machine's name {shown} -> VMADDR_CID_ANY"
    if text is not None:
        return any_cid(), f"bind to the specific address {shown} -> VMADDR_CID_ANY (vsock binds by CID, not interface)"
    call = cst.Call(rule.ctx.runtime_name("vsock_bind_cid"), [cst.Arg(host)])
    return call, UnsafeFix(f"computed bind host {shown} -> vsock_bind_cid({shown}), resolved at run time")


def connect_host(rule: Rule, host: cst.BaseExpression):
    if _already_ported(rule, host):
        return _NOTHING
    value = rule.names.constant(host)
    if literal_int(value) is not None:
        return _NOTHING
    text = literal_string(value)
    qualified = rule.names.qualified(value)
    shown = source(host)
    if qualified == "socket.INADDR_LOOPBACK" or (text is not None and (_is_loopback(text) or text in WILDCARD_HOSTS)):
        return rule.ctx.runtime_name("VMADDR_CID_LOCAL"), f"connect to {shown} -> VMADDR_CID_LOCAL"
    if text is not None:
        for name, cid in rule.ctx.options.cid_map.items():
            if name.lower() == text.lower():
                return cst.Integer(str(cid)), f"connect to {shown} -> CID {cid} (from the CID map)"
    call = cst.Call(rule.ctx.runtime_name("vsock_cid"), [cst.Arg(host)])
    hint = f"; map it with --cid {text}=CID" if text is not None else ""
    return call, UnsafeFix(f"host {shown} -> vsock_cid({shown}), resolved at run time from VSOCK_CID_MAP{hint}")


def bind_port(rule: Rule, port: cst.BaseExpression):
    if literal_int(rule.names.constant(port)) == 0:
        return rule.ctx.runtime_name("VMADDR_PORT_ANY"), (
            f"port {source(port)} -> VMADDR_PORT_ANY (vsock port 0 is a real privileged port, not 'any')"
        )
    return _NOTHING


def _is_address_tuple(node: cst.BaseExpression) -> bool:
    return (
        isinstance(node, cst.Tuple)
        and len(node.elements) in (2, 4)
        and all(isinstance(e, cst.Element) for e in node.elements)
    )


def port_address(rule: Rule, original: cst.BaseExpression, updated: cst.BaseExpression, *, bind: bool):
    """Port one address argument; returns (new expression, messages) or (None, [])."""
    if _is_address_tuple(original) and isinstance(updated, cst.Tuple):
        host_fix, host_msg = (bind_host if bind else connect_host)(rule, original.elements[0].value)
        port_fix, port_msg = bind_port(rule, original.elements[1].value) if bind else _NOTHING
        messages = [m for m in (host_msg, port_msg) if m]
        elements = list(updated.elements[:2])
        if host_fix is not None:
            elements[0] = elements[0].with_changes(value=host_fix)
        if port_fix is not None:
            elements[1] = elements[1].with_changes(value=port_fix)
        if len(updated.elements) == 4:
            elements[1] = elements[1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
            messages.append("IPv6 flowinfo and scope_id dropped: a vsock address is (CID, port)")
        if not messages:
            return None, []
        return updated.with_changes(elements=elements), messages
    constant = rule.names.constant(original)
    if constant is not original and _is_address_tuple(constant):
        # A module-level ADDRESS = (host, port) constant: convert where it is used, at run time.
        args = [cst.Arg(updated)]
        if bind:
            args.append(cst.Arg(cst.Name("True"), keyword=cst.Name("bind"), equal=cst.AssignEqual(
                whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace(""))))
        shown = source(original)
        return cst.Call(rule.ctx.runtime_name("vsock_address"), args), [
            f"address constant {shown} -> vsock_address({shown}), converted to (CID, port) at run time"
        ]
    return None, []
