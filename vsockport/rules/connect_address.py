from __future__ import annotations

import libcst as cst

from vsockport.rules.addresses import AddressRule
from vsockport.rules.api import Example
from vsockport.rules.helpers import argument, called_name, method_name, positional

_HEADER = "import socket\nfrom vsock_runtime import {names}\n"


class ConnectAddress(AddressRule):
    """Write the destinations spelled out in the code as vsock `(CID, port)` addresses.

    ## What it does
    In `sock.connect(...)`, `sock.connect_ex(...)` and `socket.create_connection(...)`:
    - `'localhost'`, `'127.0.0.1'`, `'::1'` (and `''`) become `VMADDR_CID_LOCAL`;
    - hosts in the port-time CID map (`--cid HOST=CID`, `--cid HOST:PORT=CID:PORT`, `[tool.vsockport]
      cid-map`) become their CID (and vsock port);
    - any other host written out is noted: the runtime needs its CID at run time (`VSOCK_CID_MAP`), and
      `vsockport endpoints` lists it for the parent's configuration;
    - integers (already CIDs) and hosts computed at run time are left alone: a vsock socket's
      `connect()` maps `(host, port)` then, through `VSOCK_CID_MAP`.
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
    words = (b"connect", b"sendto")
    name = "connect-address"
    examples = (
        Example(
            "import socket\ns.connect(('localhost', 8080))\n",
            _HEADER.format(names="VMADDR_CID_LOCAL") + "s.connect((VMADDR_CID_LOCAL, 8080))\n",
            ("VS004",),
        ),
        Example(
            "import socket\nHOST = '127.0.0.1'\nerr = s.connect_ex((HOST, 22))\n",
            _HEADER.format(names="VMADDR_CID_LOCAL") + "HOST = '127.0.0.1'\nerr = s.connect_ex((VMADDR_CID_LOCAL, 22))\n",
            ("VS004",),
        ),
        Example("import socket\nc = socket.create_connection(('db.internal', 5432), timeout=3)\n", None, ("VS004",)),
        Example("import socket\ns.connect((2, 5000))\ndb = sqlite3.connect('x.db')\ns.connect((host, port))\n"
                "s.sendto(b'ping', ('localhost', 9))\n"),
    )

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
