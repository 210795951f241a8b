from __future__ import annotations

import libcst as cst

from vsockport.rules.addresses import AddressRule, connect_fixes
from vsockport.rules.api import Example, ported_example
from vsockport.rules.helpers import (
    argument, called_name, is_wildcard, keyword, keywords, literal_string, method_name, positional,
)
from vsockport.rules.vocabulary import is_event_loop

# asyncio's calls that take the destination as `host, port`, as written and as the runtime's (VS009
# writes those): the position of the host; the port follows it.
_HOST_AND_PORT = {"vsock_open_connection": 0, "vsock_loop_create_connection": 2}


class ConnectAddress(AddressRule):
    """Write the destinations spelled out in the code as vsock `(CID, port)` addresses.

    ## What it does
    In `sock.connect(...)`, `sock.connect_ex(...)`, `socket.create_connection(...)` and asyncio's
    `open_connection(host, port)` and `loop.create_connection(factory, host, port)` (as written, and
    as VS009 writes them):
    - `'localhost'`, `'127.0.0.1'`, `'::1'` (and `''`) become `VMADDR_CID_LOCAL`;
    - hosts in the port-time CID map (`--cid HOST=CID`, `--cid HOST:PORT=CID:PORT`, `[tool.vsockport]
      cid-map`) become their CID (and vsock port);
    - any other host written out is noted: the runtime needs its CID at run time (`VSOCK_CID_MAP`), and
      `vsockport endpoints` lists it for the parent's configuration;
    - integers (already CIDs) and hosts computed at run time are left alone: a vsock socket's
      `connect()` maps `(host, port)` then, through `VSOCK_CID_MAP`. When a port-time map was given,
      a computed host is noted: that map cannot reach it.
    - An asyncio call with `ssl=` whose host becomes a CID gets `server_hostname=` the name written:
      TLS keeps checking the certificate against it.
    Module-level constants (`HOST = 'localhost'`) are followed. `sendto()` destinations are ported
    only with `--vmci-datagrams` (VS012), as are the addresses of datagram sockets.

    ## Why
    vsock has no name resolution: peers are identified by context IDs (CIDs), integers assigned by the
    hypervisor. Written out, the port reads as the vSockets program it is.

    ## Example
    ```python
    s.connect(('localhost', 8080))
    ```
    becomes
    ```python
    s.connect((VMADDR_CID_LOCAL, 8080))
    ```

    ## Fix safety
    Safe: each value is what the runtime would map it to when the socket connects.
    """

    code = "VS004"
    triggers = (b"socket", b"open_connection", b"create_connection")  # asyncio code may not import socket
    words = (b"connect", b"sendto")
    name = "connect-address"
    examples = (
        ported_example("s.connect(('localhost', 8080))\n", "VMADDR_CID_LOCAL", "s.connect((VMADDR_CID_LOCAL, 8080))\n",
                       ("VS004",)),
        ported_example("HOST = '127.0.0.1'\nerr = s.connect_ex((HOST, 22))\n", "VMADDR_CID_LOCAL",
                       "HOST = '127.0.0.1'\nerr = s.connect_ex((VMADDR_CID_LOCAL, 22))\n", ("VS004",)),
        Example("import socket\nc = socket.create_connection(('db.internal', 5432), timeout=3)\n", None, ("VS004",)),
        Example("import socket\ns.connect((2, 5000))\ndb = sqlite3.connect('x.db')\ns.connect((host, port))\n"
                "s.sendto(b'ping', ('localhost', 9))\n"),
        Example(
            "import asyncio\nasync def main(tls, loop, P):\n"
            "    await asyncio.open_connection('db.internal', 5432, ssl=tls)\n"
            "    await loop.create_connection(P, 'localhost', 8080)\n",
            "import asyncio\nfrom vsock_runtime import VMADDR_CID_LOCAL\nasync def main(tls, loop, P):\n"
            "    await asyncio.open_connection(7, 5432, ssl=tls, server_hostname='db.internal')\n"
            "    await loop.create_connection(P, VMADDR_CID_LOCAL, 8080)\n",
            ("VS004", "VS004"),
            options={"cid_map": {"db.internal": 7}},
        ),
        Example("import socket\ns.connect((host, 80))\n", None, ("VS004",), options={"cid_map": {"db.internal": 7}}),
    )

    def visit_Call(self, node: cst.Call) -> None:
        super().visit_Call(node)
        where = self._host_position(node)
        if where is None:
            return
        host, port = argument(node, where, "host"), argument(node, where + 1, "port")
        if host is None or port is None:
            return
        proposals = connect_fixes(self.names, host.value, port.value, self.options.cid_map)
        fixed = {id(p.node): p.replacement for p in proposals if p.replacement is not None}
        if not fixed:
            for proposal in proposals:
                self.report(proposal.node, proposal.message, note=proposal.note)
            return
        # One fix of the whole call: the host (and port) replaced, and TLS told the name it checks.
        args = [arg.with_changes(value=fixed.get(id(arg.value), arg.value)) for arg in node.args]
        name = literal_string(self.names.constant(host.value))
        # TLS checks the certificate against the name; an empty or wildcard host has none to give.
        if "ssl" in keywords(node) and keyword(node, "server_hostname") is None and name and not is_wildcard(name):
            args[-1] = args[-1].with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
            args.append(cst.Arg(host.value, keyword=cst.Name("server_hostname"),
                                equal=cst.AssignEqual(cst.SimpleWhitespace(""), cst.SimpleWhitespace(""))))
        message = "; ".join(p.message for p in proposals)
        self.report(node, message, replacement=node.with_changes(args=args))

    def _host_position(self, call: cst.Call) -> int | None:
        func = call.func
        if self.names.is_runtime_name(func):
            return _HOST_AND_PORT.get(called_name(func) or "")
        if self.qualified(func) == "asyncio.open_connection":
            return 0
        if isinstance(func, cst.Attribute) and func.attr.value == "create_connection" and is_event_loop(func.value, self.qualified):
            return 1
        return None

    def address_of(self, call: cst.Call) -> cst.Arg | None:
        args = positional(call)
        if len(args) != len(call.args):
            args = []
        method = method_name(call)
        if method in ("connect", "connect_ex") and len(args) == 1:
            return args[0]
        if method == "sendto" and len(args) in (2, 3) and self.options.vmci_datagrams:
            return args[-1]
        if self.names.qualified(call.func) == "socket.create_connection" or (
                self.names.is_runtime_name(call.func) and called_name(call.func) == "create_vsock_connection"):
            return argument(call, 0, "address")
        return None
