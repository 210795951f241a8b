from __future__ import annotations

import libcst as cst

from vsockport.rules.addresses import AddressRule
from vsockport.rules.api import Example
from vsockport.rules.helpers import argument, called_name, method_name, positional

_HEADER = "import socket\nfrom vsock_runtime import {names}\n"


class ConnectAddress(AddressRule):
    """Turn `(host, port)` destinations into vsock `(CID, port)` addresses.

    ## What it does
    In `sock.connect(...)`, `sock.connect_ex(...)`, `sock.sendto(data, ...)` and
    `socket.create_connection(...)`:
    - `'localhost'`, `'127.0.0.1'`, `'::1'` (and `''`) become `VMADDR_CID_LOCAL`;
    - hosts in the CID map (`--cid HOST=CID`, `[tool.vsockport] cid-map`) become their CID;
    - any other host, literal or computed, becomes `vsock_cid(host)`: the runtime maps names to CIDs
      from the `VSOCK_CID_MAP` environment variable and otherwise raises an error naming the host;
    - integers (already CIDs) are left alone.
    Module-level constants (`HOST = 'localhost'`) are followed.

    ## Why
    vsock has no name resolution: peers are identified by context IDs (CIDs), integers assigned by the
    hypervisor. CPython rejects a string host on an AF_VSOCK socket with `TypeError`.

    ## Example
    ```python
    s.connect(('localhost', 8080))
    ```
    becomes
    ```python
    s.connect((VMADDR_CID_LOCAL, 8080))
    ```

    ## Fix safety
    Safe for loopback and mapped hosts. Unsafe for other hosts (`vsock_cid(host)`): they work only once
    they are mapped to a CID at run time, and the runtime's error says how. Unsafe fixes apply only
    with `--unsafe-fixes`. Held back, the connect still works on a vsock socket, because the runtime
    maps string hosts in `connect()` too.
    """

    fix_safety = "mixed"
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
        Example(
            "import socket\ns.sendto(b'ping', (host, port))\n",
            _HEADER.format(names="vsock_cid") + "s.sendto(b'ping', (vsock_cid(host), port))\n",
            ("VS004",),
        ),
        Example(
            "import socket\nc = socket.create_connection(('db.internal', 5432), timeout=3)\n",
            _HEADER.format(names="vsock_cid")
            + "c = socket.create_connection((vsock_cid('db.internal'), 5432), timeout=3)\n",
            ("VS004",),
        ),
        Example("import socket\ns.connect((2, 5000))\ndb = sqlite3.connect('x.db')\n"),
    )

    def address_of(self, call: cst.Call) -> cst.Arg | None:
        args = positional(call)
        if len(args) != len(call.args):
            args = []
        method = method_name(call)
        if method in ("connect", "connect_ex") and len(args) == 1:
            return args[0]
        if method == "sendto" and len(args) in (2, 3):
            return args[-1]
        if self.names.qualified(call.func) == "socket.create_connection" or (
                self.names.is_runtime_name(call.func) and called_name(call.func) == "create_vsock_connection"):
            return argument(call, 0, "address")
        return None
