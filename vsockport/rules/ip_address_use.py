from __future__ import annotations

import libcst as cst

from vsockport.rules.api import Example, Rule
from vsockport.rules.helpers import source_of

_IP_FUNCTIONS = {
    "socket.inet_aton", "socket.inet_ntoa", "socket.inet_pton", "socket.inet_ntop",
    "socket.gethostbyaddr", "socket.getnameinfo",
}
_IPADDRESS_FUNCTIONS = {
    "ipaddress.ip_address", "ipaddress.ip_interface", "ipaddress.IPv4Address", "ipaddress.IPv6Address",
}
_STRING_METHODS = {"split", "rsplit", "startswith", "endswith", "partition", "rpartition", "lower", "encode", "strip"}
_ADDRESS_CALLS = ("getpeername", "getsockname", "accept", "recvfrom")


def _peer_host(node: cst.BaseExpression) -> bool:
    """`sock.getpeername()[0]` / `conn.accept()[1][0]` style: the host part of a socket address."""
    while isinstance(node, cst.Subscript):
        node = node.value
    return (
        isinstance(node, cst.Call)
        and isinstance(node.func, cst.Attribute)
        and node.func.attr.value in _ADDRESS_CALLS
    )


class IpAddressUse(Rule):
    """Point out code that treats a socket address as an IP address or a string.

    ## What it does
    Reports, for review:
    - `socket.inet_aton`/`inet_ntoa`/`inet_pton`/`inet_ntop`/`gethostbyaddr`/`getnameinfo`;
    - `ipaddress.ip_address(...)`-style calls given the host of a socket address;
    - string methods (`.split()`, `.startswith()`, ...) or `+` used on `sock.getpeername()[0]`-style
      hosts.

    ## Why
    A vsock address is `(cid, port)` with an integer CID. `getpeername()`, `getsockname()`,
    `accept()` and `recvfrom()` on a ported socket return integers where the program expected an IP
    string. IP parsing, reverse DNS and string handling of the host then fail or mean nothing.
    vsockport's server adapters hand handlers `client_address` as `(str(cid), port)`, which keeps
    logging and WSGI working. Code that interprets the host still needs a person to decide what a CID
    should mean to it.

    ## Example
    ```python
    if conn.getpeername()[0].startswith("10."):
        ...
    packed = socket.inet_aton(addr)
    ```
    Both lines are reported. A host first stored in a variable is not followed; `inet_*` calls are
    reported wherever they are.

    ## Fix safety
    Report only.
    """

    code = "VS014"
    words = (b"accept", b"recvfrom", b"ip_address", b"ip_interface", b"IPv4Address", b"IPv6Address")
    name = "ip-address-use"
    fix_safety = "none"
    triggers = (b"inet_", b"gethostbyaddr", b"getnameinfo", b"ipaddress", b"getpeername", b"getsockname")
    examples = (
        Example("import socket\npacked = socket.inet_aton(conn.getpeername()[0])\n", None, ("VS014",)),
        Example("import socket\nif sock.getpeername()[0].startswith('10.'):\n    pass\n", None, ("VS014",)),
        Example("import ipaddress\nip = ipaddress.ip_address(conn.getpeername()[0])\n", None, ("VS014",)),
        Example("import ipaddress\nnet = ipaddress.ip_network('10.0.0.0/8')\nhost, port = sock.getpeername()\n"),
    )

    def visit_Call(self, node: cst.Call) -> None:
        qualified = self.names.qualified(node.func) or ""
        if qualified in _IP_FUNCTIONS:
            self.report(node, f"{source_of(node.func)}() treats an address as IP: vsock addresses are (CID, port) integers")
        elif qualified in _IPADDRESS_FUNCTIONS and node.args and _peer_host(node.args[0].value):
            self.report(node, f"{source_of(node.func)}() of a socket address: on vsock the host is an integer CID")
        elif (
            isinstance(node.func, cst.Attribute)
            and node.func.attr.value in _STRING_METHODS
            and _peer_host(node.func.value)
        ):
            self.report(node, f"string method .{node.func.attr.value}() on a socket address host: on vsock it is "
                              "an integer CID")

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        if isinstance(node.operator, cst.Add) and (_peer_host(node.left) or _peer_host(node.right)):
            self.report(node, "string concatenation with a socket address host: on vsock it is an integer CID")
