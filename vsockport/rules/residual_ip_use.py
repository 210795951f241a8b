from __future__ import annotations

import ast

import libcst as cst

from vsockport.rules.api import Example, Rule
from vsockport.rules.helpers import called_name, keywords, positional, source_of
from vsockport.rules.vocabulary import (
    ADOPTERS, ASYNCIO_FUNCTIONS, CLIENT_CLASSES, CREATORS, RESOLVERS, SOCKET_CLASSES, STREAM_SERVERS, UDP_SERVERS,
    family_argument, is_datagram, is_family_choice, is_other_family,
)

# What only TCP/IP can do, by qualified name: used (called or kept as a value) in ported code, each one
# opens, serves or resolves over IP.
IP_ONLY = {
    **{name: "resolves or connects over TCP/IP" for name in (*CREATORS, *RESOLVERS)},
    **{name: "adopts a descriptor as the family the program names" for name in ADOPTERS},
    **{name: ("opens a TCP connection" if "open" in name else "serves TCP") for name in ASYNCIO_FUNCTIONS},
    **{name: "serves TCP/IP" for name in STREAM_SERVERS | UDP_SERVERS | {"wsgiref.simple_server.make_server"}},
    **{name: "connects over TCP/IP" for name in CLIENT_CLASSES | {"urllib.request.urlopen"}},
}
_LOOP_ENDPOINTS = ("create_connection", "create_server")


class ResidualIpUse(Rule):
    """Report every use of TCP/IP that is left after the port: the safety net.

    ## What it does
    Looks at the ported code, after every other rule has made its changes, and reports each use of an
    IP-only socket API that is still there, with its place and what it is:
    - `socket.create_connection`, `create_server`, `getaddrinfo`, `gethostbyname(_ex)`, called or kept
      as a value;
    - `socket.socket(...)` of an IP family, and raw C calls (`libc.socket(...)`) whose family is not
      the vsock one;
    - the standard library's TCP/UDP servers and IP clients (`socketserver`, `http.server`,
      `http.client`, `smtplib`, `xmlrpc`, `urllib.request`, `ftplib`, `poplib`, `imaplib`, ...) used as
      values outside a runtime adapter;
    - `asyncio.open_connection`/`start_server` without `sock=`, and `X.create_server(factory, host,
      port)`/`X.create_connection(...)` calls on something vsockport did not recognise as an event loop
      (unless the module defines a function of that name itself: then they are its own API);
    - ctypes `sockaddr_in` structures.

    Imports, annotations, `isinstance` checks and comparisons are not uses. Functions VS013 keeps on
    TCP/IP are its notes, not findings here; a line that holds a suppression comment is left to it.

    ## Why
    A port is only worth trusting if it never says "done" while the program still uses TCP/IP. The
    other rules port the patterns they know; this one checks the result, so anything they missed, held
    back or could not port is reported at its line instead of failing silently at run time.

    ## Example
    ```python
    handler = lookup.get("tcp", socket.create_connection)  # ported by VS005: not reported
    srv = make_server_from(registry["server"])(("", 80))   # whatever that is: not known to be IP
    conn = ftplib.FTP("files.internal")                    # VS011 reports it; VS016 stays quiet
    client = pool.create_connection(factory, host, port)   # reported: an unrecognised event loop?
    ```

    ## Fix safety
    Report only: each finding names what is left and why it is IP-only. Port it by hand (the runtime
    has a vsock version of each), suppress it with `# vsockport: ignore[VS016]` if it must stay on
    TCP/IP, or run the program with `VSOCK_STRICT=1` to see it fail where it runs.
    """

    code = "VS016"
    name = "residual-ip-use"
    fix_safety = "none"
    audits = True
    references = frozenset(IP_ONLY)
    triggers = (b"socket", b"Server", b"HTTPConnection", b"HTTPSConnection", b"urlopen", b"smtplib", b"xmlrpc",
                b"poplib", b"imaplib", b"nntplib", b"open_connection", b"start_server", b"create_connection",
                b"create_server", b"sockaddr_in", b"make_server")
    words = (b"getaddrinfo", b"gethostbyname", b"fromfd", b"create_socket", b"SMTP", b"LMTP", b"ServerProxy",
             b"POP3", b"IMAP4", b"NNTP")
    examples = (
        Example("import socket\nresolve = {'ip': socket.gethostbyname}\n", None, ("VS016",)),
        Example("import asyncio\nasync def main(pool, P, host):\n    await pool.create_server(P, host, 8080)\n",
                None, ("VS016",)),
        Example("import socket\ns = socket.socket(socket.AF_INET)  # vsockport: ignore\n"
                "ok = isinstance(s, socket.socket)\ndef f(conn: socket.socket) -> None:\n    pass\n"),
        Example("import asyncio\nasync def main(sock):\n    await asyncio.open_connection(sock=sock)\n"),
        # A module with its own create_connection (asyncssh's SSH connection, which opens a channel through
        # its server) calls that API, not an event loop's.
        Example("import asyncio\nclass Conn:\n    async def create_connection(self, factory, host, port):\n        pass\n"
                "    async def forward(self, tunnel, host, port):\n        return await tunnel.create_connection(self.f, host, port)\n"),
    )

    def reference(self, node: cst.BaseExpression, qualified: str) -> None:
        call = self.parents(node)
        if isinstance(call, cst.Call) and call.func is node and keywords(call) & {"sock", "path"}:
            return  # asyncio with a socket of the caller's own
        self.report(node, f"{source_of(node)} {IP_ONLY[qualified]} and is still used here: vsockport did not port "
                          "this use (port it by hand, or tell why with a suppression)")

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        qualified = self.qualified(func)
        if qualified in SOCKET_CLASSES:
            family = family_argument(node)
            if is_datagram(self.names, node):
                return  # kept on UDP/IP by the datagram policy: VS012's to report
            if family is None or not is_other_family(self.names, family.value):
                self.report(node, f"{source_of(func)}() makes an IP socket here: vsockport did not port it")
        elif isinstance(func, cst.Attribute) and func.attr.value in ("socket", "create_socket") and node.args \
                and qualified is None:
            family = family_argument(node)
            if family is not None and is_family_choice(self.names, family.value):
                self.report(node, f"{source_of(func)}() with an IP family: vsockport did not port it")
        elif isinstance(func, cst.Name) and func.value == "sockaddr_in":
            self.report(node, "a ctypes sockaddr_in (an IPv4 address) is still made here: vsock needs sockaddr_vm")
        elif called_name(func) in _LOOP_ENDPOINTS and isinstance(func, cst.Attribute) and self._takes_host_and_port(node) \
                and qualified is None and func.attr.value not in self._own_endpoints():
            self.report(node, f"{source_of(func)}(factory, host, port) looks like an asyncio event loop's call, which "
                              "opens an IP socket; vsockport did not recognise it as a loop (name it `loop`, or port "
                              "it with vsock_loop_{}(...))".format(func.attr.value))

    def _own_endpoints(self) -> frozenset[str]:
        """create_connection/create_server that the module defines itself (asyncssh's SSH connection, whose
        `create_connection(factory, host, port)` opens a channel through its server): calls of that name
        here are taken for its own API, not an event loop's."""
        facts = self.names.module_facts
        if "own_endpoints" not in facts:
            tree = self.names.tree
            facts["own_endpoints"] = frozenset(
                node.name for node in (ast.walk(tree) if tree is not None else ())
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in _LOOP_ENDPOINTS)
        return facts["own_endpoints"]

    @staticmethod
    def _takes_host_and_port(call: cst.Call) -> bool:
        named = keywords(call)
        if "path" in named or ("sock" in named and not {"host", "port"} & named and len(positional(call)) <= 1):
            return False
        return len(positional(call)) >= 3 or {"host", "port"} <= named or (len(positional(call)) == 2 and "port" in named)
