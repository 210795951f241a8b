from __future__ import annotations

import libcst as cst

from vsockport.rules.addresses import AddressRule
from vsockport.rules.api import Example, ported_example
from vsockport.rules.helpers import argument, called_name, method_name


class BindAddress(AddressRule):
    """Write the bind addresses spelled out in the code as vsock `(CID, port)` addresses.

    ## What it does
    In `sock.bind((host, port))` and `socket.create_server((host, port))`:
    - `''`, `'0.0.0.0'`, `'::'`, `INADDR_ANY`, a specific interface address or `gethostname()` become
      `VMADDR_CID_ANY`;
    - loopback hosts (`'localhost'`, `'127.0.0.1'`, `'::1'`) become `vsock_bind_cid(host)`: the local
      CID where the `vsock_loopback` transport offers one, else `VMADDR_CID_ANY`, which makes the socket
      reachable from the host (the runtime warns once);
    - port `0` becomes `VMADDR_PORT_ANY`;
    - IPv6 4-tuples lose `flowinfo` and `scope_id`.
    Module-level constants (`HOST = ''`) are followed. A host computed at run time
    (`bind((args.host, args.port))`) is left as it is: a vsock socket's `bind()` maps it then, with
    the same policy. The addresses of datagram sockets stay IP (VS012): a socket made by any call given
    `SOCK_DGRAM` (`GreenSocket(AF_INET, SOCK_DGRAM)`, or a wrapper of such a socket), and so do those of
    sockets another module's socket class makes (`green.socket.socket(...)`): the port does not make them.

    ## Why
    A vsock address is `(CID, port)`. Port 0 is a real, privileged vsock port; "any port" is
    `VMADDR_PORT_ANY`. Written out, the port reads as the vSockets program it is.

    ## Example
    ```python
    s.bind(('', 0))
    ```
    becomes
    ```python
    s.bind((VMADDR_CID_ANY, VMADDR_PORT_ANY))
    ```

    ## Fix safety
    Safe: each value is what the runtime would map it to when the socket binds.
    """

    bind = True
    code = "VS003"
    words = (b"bind", b"create_server", b"create_vsock_server")
    name = "bind-address"
    examples = (
        ported_example("s.bind(('', 0))\n", "VMADDR_CID_ANY, VMADDR_PORT_ANY", "s.bind((VMADDR_CID_ANY, VMADDR_PORT_ANY))\n",
                       ("VS003", "VS003")),
        ported_example("HOST = 'localhost'\nPORT = 8080\ns.bind((HOST, PORT))\n", "vsock_bind_cid",
                       "HOST = 'localhost'\nPORT = 8080\ns.bind((vsock_bind_cid(HOST), PORT))\n", ("VS003",)),
        ported_example("srv.bind(('::', port, 0, 0))\n", "VMADDR_CID_ANY", "srv.bind((VMADDR_CID_ANY, port))\n",
                       ("VS003", "VS003")),
        ported_example("server = socket.create_server(('', 8000))\n", "VMADDR_CID_ANY",
                       "server = socket.create_server((VMADDR_CID_ANY, 8000))\n", ("VS003",)),
        Example("import socket\nfrom vsock_runtime import VMADDR_CID_ANY\ns.bind((VMADDR_CID_ANY, 5000))\nw.bind('<Key>', cb)\n"
                "srv.bind((args.host, args.port))\n"),
        Example("import socket\nudp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\nudp.bind(('', 9999))\n"),
        Example("from eventlet.green import socket\nfrom eventlet import greenio\n"
                "green = greenio.GreenSocket(socket.AF_INET, socket.SOCK_DGRAM)\ngreen.bind(('127.0.0.1', 0))\n"),
        Example("import socket\nfrom eventlet import greenio\ngreen = greenio.GreenSocket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                "green.bind(('127.0.0.1', 0))\nwrapped = greenio.GreenSocket(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))\n"
                "wrapped.bind(('', 0))\n"),
        # Another module's socket class (eventlet's green sockets): the port does not make this socket,
        # so an int CID would break it if it stays on IP; as written, a vsock socket maps it at bind time.
        Example("from eventlet.green import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n"
                "s.bind(('', 0))\n"),
    )

    def address_of(self, call: cst.Call) -> cst.Arg | None:
        if method_name(call) == "bind":
            return call.args[0] if len(call.args) == 1 and call.args[0].keyword is None and not call.args[0].star else None
        qualified = self.names.qualified(call.func)
        if qualified == "socket.create_server" or (self.names.is_runtime_name(call.func)
                                                   and called_name(call.func) == "create_vsock_server"):
            return argument(call, 0, "address")
        return None
