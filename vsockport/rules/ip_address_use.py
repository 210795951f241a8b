from __future__ import annotations

import libcst as cst

from vsockport.rules.api import Example, Rule
from vsockport.rules.helpers import literal_string, source_of

_IP_FUNCTIONS = {
    "socket.inet_aton", "socket.inet_ntoa", "socket.inet_pton", "socket.inet_ntop",
    "socket.gethostbyaddr", "socket.getnameinfo",
}
_IPADDRESS_FUNCTIONS = {
    "ipaddress.ip_address", "ipaddress.ip_interface", "ipaddress.ip_network", "ipaddress.IPv4Address",
    "ipaddress.IPv6Address",
}
_ADDRESS_CALLS = ("getpeername", "getsockname", "accept", "recvfrom")
_ADDRESS_INFO = ("peername", "sockname")


def _socket_address(node: cst.BaseExpression) -> bool:
    """`sock.getpeername()[0]`, `conn.accept()[1][0]`, `transport.get_extra_info("peername")[0]`."""
    while isinstance(node, cst.Subscript):
        node = node.value
    if not (isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute)):
        return False
    method = node.func.attr.value
    if method == "get_extra_info":
        return bool(node.args) and literal_string(node.args[0].value) in _ADDRESS_INFO
    return method in _ADDRESS_CALLS


class IpAddressUse(Rule):
    """Point out code that reads a socket address as an IP address.

    ## What it does
    Reports, for review:
    - `socket.inet_aton`/`inet_ntoa`/`inet_pton`/`inet_ntop`/`gethostbyaddr`/`getnameinfo`;
    - `ipaddress.ip_address(...)`-style calls given the host of a socket address
      (`sock.getpeername()[0]`, `transport.get_extra_info("peername")[0]`).

    ## Why
    A vsock peer is a CID, not an IP address. Ported sockets report addresses as TCP/IP code reads
    them: `(host, port)` with the host a string ("" for any, else the CID's digits), so string
    handling (`':' in host`, `host.split('%')`, `host + ":" + str(port)`, logging, WSGI's
    `REMOTE_ADDR`) keeps working. Parsing the host as an IP address, packing it, or looking it up in
    DNS cannot: what such code should do with a CID is for a person to decide.

    ## Example
    ```python
    packed = socket.inet_aton(addr)
    if ipaddress.ip_address(conn.getpeername()[0]).is_private:
        ...
    ```
    Both lines are reported. A host first stored in a variable is not followed; `inet_*` calls are
    reported wherever they are.

    ## Fix safety
    Report only.
    """

    code = "VS014"
    words = (b"ip_address", b"ip_interface", b"ip_network", b"IPv4Address", b"IPv6Address")
    name = "ip-address-use"
    fix_safety = "none"
    triggers = (b"inet_", b"gethostbyaddr", b"getnameinfo", b"ipaddress")
    examples = (
        Example("import socket\npacked = socket.inet_aton(conn.getpeername()[0])\n", None, ("VS014",)),
        Example("import ipaddress\nip = ipaddress.ip_address(transport.get_extra_info('peername')[0])\n", None, ("VS014",)),
        Example("import ipaddress\nnet = ipaddress.ip_network('10.0.0.0/8')\nhost, port = sock.getpeername()\n"
                "local = host.startswith('127.') or ':' in host\n"),
    )

    def visit_Call(self, node: cst.Call) -> None:
        qualified = self.names.qualified(node.func) or ""
        if qualified in _IP_FUNCTIONS:
            self.report(node, f"{source_of(node.func)}() treats an address as IP: vsock peers are CIDs")
        elif qualified in _IPADDRESS_FUNCTIONS and node.args and _socket_address(node.args[0].value):
            self.report(node, f"{source_of(node.func)}() of a socket address: on vsock the host is a CID, not an IP address")
