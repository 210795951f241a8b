from __future__ import annotations

import ast

import libcst as cst

from vsockport.rules.api import Example, Rule, ported_example, runtime_name
from vsockport.rules.helpers import literal_string, source_of

_IP_FUNCTIONS = {
    "socket.inet_aton", "socket.inet_ntoa", "socket.inet_pton", "socket.inet_ntop",
    "socket.gethostbyaddr", "socket.getnameinfo",
}
_IPADDRESS_FUNCTIONS = {
    "ipaddress.ip_address", "ipaddress.ip_interface", "ipaddress.ip_network", "ipaddress.IPv4Address",
    "ipaddress.IPv6Address",
}
# inet_pton/inet_ntop with a family known only at run time (`sock.family`): the runtime's versions also
# take the vsock family, whose address is a CID.
_WITH_A_FAMILY = {"socket.inet_pton": "vsock_inet_pton", "socket.inet_ntop": "vsock_inet_ntop",
                  "socket.getnameinfo": "vsock_getnameinfo"}
_IP_FAMILY_NAMES = ("socket.AF_INET", "socket.AF_INET6")
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


def _is_address_call(node: ast.expr) -> bool:
    """The ast twin of _socket_address, for what a name is assigned."""
    while isinstance(node, ast.Subscript):
        node = node.value
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
        return False
    if node.func.attr == "get_extra_info":
        first = node.args[0] if node.args else None
        return isinstance(first, ast.Constant) and first.value in _ADDRESS_INFO
    return node.func.attr in _ADDRESS_CALLS


def _address_names(tree: ast.Module | None) -> tuple[frozenset[str], frozenset[str]]:
    """(names holding a socket address, names holding its host), module-wide: `bound = s.getsockname()`,
    `host, port = conn.getpeername()`, `host = bound[0]`. Report-only use: a name bound twice counts."""
    addresses, hosts = set(), set()
    assignments = [node for node in ast.walk(tree) if isinstance(node, ast.Assign)] if tree is not None else []
    for node in assignments:
        if not _is_address_call(node.value):
            continue
        for target in node.targets:
            if isinstance(target, ast.Name):
                addresses.add(target.id)
            elif isinstance(target, (ast.Tuple, ast.List)) and target.elts and isinstance(target.elts[0], ast.Name):
                hosts.add(target.elts[0].id)
    for node in assignments:
        value = node.value
        if isinstance(value, ast.Subscript) and isinstance(value.value, ast.Name) and value.value.id in addresses \
                and isinstance(value.slice, ast.Constant) and value.slice.value == 0:
            hosts.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return frozenset(addresses), frozenset(hosts)


class IpAddressUse(Rule):
    """Point out code that reads a socket address as an IP address; port the checks that pass it on.

    ## What it does
    Ports `socket.inet_pton(family, address)` and `socket.inet_ntop(family, packed)` whose family is known
    only at run time (`sock.family`, a parameter) to the runtime's `vsock_inet_pton` and
    `vsock_inet_ntop`, which also take the vsock family: a host as sockets report it packed as the
    kernel's 32-bit `svm_cid`, and back; and `socket.getnameinfo(sockaddr, flags)` to `vsock_getnameinfo`,
    which gives a ported socket's address back as it is (a CID has no name; a vsock port may exceed
    65535).
    Reports, for review:
    - `socket.inet_aton`/`inet_ntoa`/`gethostbyaddr`, and `inet_pton`/`inet_ntop` of `AF_INET` or
      `AF_INET6`;
    - `ipaddress.ip_address(...)`-style calls given the host of a socket address
      (`sock.getpeername()[0]`, `transport.get_extra_info("peername")[0]`).

    ## Why
    A vsock peer is a CID, not an IP address. Ported sockets report addresses as TCP/IP code reads them:
    `(host, port)` with the host a string ("0.0.0.0" for any, "127.0.0.1" for the loopback CID, else the
    CID's digits), so string handling (`':' in host`, `host.split('%')`, `host + ":" + str(port)`,
    logging, WSGI's `REMOTE_ADDR`) keeps working. Code that checks an address with the socket's own family
    before it connects (pika: `socket.inet_pton(sock.family, host)`) gets a vsock family there, which
    `socket.inet_pton` refuses; a server that reads its bound address through `getnameinfo` (waitress)
    gets a 32-bit vsock port, which `socket.getnameinfo` refuses. Parsing a host as an IP address, packing
    it as one, or looking it up in DNS works for the wildcard and the loopback only, never for another
    CID: what such code should do with a CID is for a person to decide.

    ## Example
    ```python
    socket.inet_pton(sock.family, resolved[0])
    packed = socket.inet_aton(addr)
    if ipaddress.ip_address(conn.getpeername()[0]).is_private:
        ...
    ```
    The first line becomes `vsock_inet_pton(sock.family, resolved[0])`; the others are reported. A
    socket address or its host first stored in a name is followed (`bound = remote.getsockname()`, then
    `ipaddress.ip_address(bound[0])`: a SOCKS proxy's reply, tiny-proxy's); `inet_*` calls are reported
    wherever they are.

    ## Fix safety
    Safe: for every family but vsock, `vsock_inet_pton` and `vsock_inet_ntop` are socket's own
    functions, and `vsock_getnameinfo` is for every address but a CID host or a port above 65535.
    The rest is report only.
    """

    code = "VS014"
    words = (b"ip_address", b"ip_interface", b"ip_network", b"IPv4Address", b"IPv6Address")
    name = "ip-address-use"
    fix_safety = "safe"
    triggers = (b"inet_", b"gethostbyaddr", b"getnameinfo", b"ipaddress")
    examples = (
        Example("import socket\npacked = socket.inet_aton(conn.getpeername()[0])\n", None, ("VS014",)),
        ported_example("socket.inet_pton(sock.family, resolved[0])\nhost = socket.inet_ntop(family, packed)\n",
                       "vsock_inet_ntop, vsock_inet_pton",
                       "vsock_inet_pton(sock.family, resolved[0])\nhost = vsock_inet_ntop(family, packed)\n",
                       ("VS014", "VS014")),
        Example("import socket\npacked = socket.inet_pton(socket.AF_INET6, host)\n", None, ("VS014",)),
        ported_example("host, port = socket.getnameinfo(sock.getsockname(), socket.NI_NUMERICHOST)\n",
                       "vsock_getnameinfo",
                       "host, port = vsock_getnameinfo(sock.getsockname(), socket.NI_NUMERICHOST)\n", ("VS014",)),
        Example("import ipaddress\nip = ipaddress.ip_address(transport.get_extra_info('peername')[0])\n", None, ("VS014",)),
        Example("import ipaddress\nasync def reply(remote):\n    bound = remote.getsockname()\n"
                "    return ipaddress.ip_address(bound[0]).packed + bound[1].to_bytes(2, 'big')\n"
                "def peer(conn):\n    host, port = conn.getpeername()\n    return ipaddress.ip_address(host).is_private\n",
                None, ("VS014", "VS014")),
        Example("import ipaddress\nnet = ipaddress.ip_network('10.0.0.0/8')\nhost, port = sock.getpeername()\n"
                "local = host.startswith('127.') or ':' in host\n"),
    )

    def visit_Call(self, node: cst.Call) -> None:
        qualified = self.names.qualified(node.func) or ""
        if qualified in _WITH_A_FAMILY and node.args and self.names.qualified(node.args[0].value) not in _IP_FAMILY_NAMES:
            what = "address (a CID, a 32-bit port)" if qualified == "socket.getnameinfo" else "family"
            self.report(node.func, f"{source_of(node.func)}() refuses a vsock socket's {what} -> "
                                   f"{_WITH_A_FAMILY[qualified]}, which also reads vsock addresses",
                        replacement=runtime_name(_WITH_A_FAMILY[qualified]))
        elif qualified in _IP_FUNCTIONS:
            self.report(node, f"{source_of(node.func)}() treats an address as IP: vsock peers are CIDs")
        elif qualified in _IPADDRESS_FUNCTIONS and node.args and (
                _socket_address(node.args[0].value) or self._held_address(node.args[0].value)):
            self.report(node, f"{source_of(node.func)}() of a socket address: on vsock the host is a CID, not an IP address")

    def _held_address(self, node: cst.BaseExpression) -> bool:
        """A name that holds a socket address's host, or `name[0]` of one that holds the address."""
        facts = self.names.module_facts.get("address_names")
        if facts is None:
            facts = self.names.module_facts["address_names"] = _address_names(self.names.tree)
        addresses, hosts = facts
        if isinstance(node, cst.Name):
            return node.value in hosts
        return (isinstance(node, cst.Subscript) and isinstance(node.value, cst.Name) and node.value.value in addresses
                and len(node.slice) == 1 and isinstance(node.slice[0].slice, cst.Index)
                and isinstance(node.slice[0].slice.value, cst.Integer) and node.slice[0].slice.value.value == "0")
