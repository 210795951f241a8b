from __future__ import annotations

import libcst as cst

from vsockport.rules.api import Example, runtime_name
from vsockport.rules.class_references import ClassReferenceRule
from vsockport.rules.helpers import is_value_use, source_of

CLIENT_CLASSES = {
    name: "connects over TCP/IP"
    for name in (
        "http.client.HTTPConnection",
        "http.client.HTTPSConnection",
        "smtplib.SMTP",
        "smtplib.SMTP_SSL",
        "smtplib.LMTP",
        "xmlrpc.client.ServerProxy",
        "xmlrpc.client.Server",
    )
}
# Standard-library clients the runtime cannot adapt: reported, never changed.
UNPORTED_CLIENTS = {
    "ftplib.FTP": "FTP data connections carry IP addresses (PASV/PORT)",
    "ftplib.FTP_TLS": "FTP data connections carry IP addresses (PASV/PORT)",
    "poplib.POP3": "it opens its own TCP connection",
    "poplib.POP3_SSL": "it opens its own TCP connection",
    "imaplib.IMAP4": "it opens its own TCP connection",
    "imaplib.IMAP4_SSL": "it opens its own TCP connection",
    "telnetlib.Telnet": "it opens its own TCP connection",
    "nntplib.NNTP": "it opens its own TCP connection",
    "urllib.request.build_opener": "its handlers open TCP connections (use vsock_urlopen for http/https)",
}


class StdlibClients(ClassReferenceRule):
    """Connect over vsock with the standard library's HTTP, SMTP and XML-RPC clients.

    ## What it does
    - References to `http.client.HTTPConnection`, `HTTPSConnection`, `smtplib.SMTP`, `SMTP_SSL`,
      `LMTP` and `xmlrpc.client.ServerProxy` are wrapped in `vsock_client_class(...)` where they are
      called, subclassed, passed or assigned.
    - `urllib.request.urlopen` becomes `vsock_urlopen`, called or kept as a value.
    - Clients the runtime cannot adapt (`ftplib`, `poplib`, `imaplib`, `telnetlib`, `nntplib`,
      `urllib.request.build_opener`) are reported where they are called, and left unchanged.

    ## Why
    These clients call `socket.create_connection()` inside the standard library, so porting the
    calling program alone would leave them on TCP/IP. `vsock_client_class(X)` is a subclass of `X`
    that opens its connection with `create_vsock_connection`. The host is mapped to a CID as by
    `vsock_cid()`: loopback names become CID 1 and other names come from `VSOCK_CID_MAP`. URLs, HTTP
    `Host:` headers and TLS server names keep the host name.

    ## Example
    ```python
    conn = http.client.HTTPConnection("localhost", 8000)
    proxy = xmlrpc.client.ServerProxy("http://localhost:8000/")
    ```
    becomes
    ```python
    conn = vsock_client_class(http.client.HTTPConnection)("localhost", 8000)
    proxy = vsock_client_class(xmlrpc.client.ServerProxy)("http://localhost:8000/")
    ```

    ## Fix safety
    Safe: the objects are instances of the original classes. Unadapted clients are reported for review.
    """

    code = "VS011"
    name = "stdlib-clients"
    triggers = (b"http.client", b"HTTPConnection", b"HTTPSConnection", b"smtplib", b"xmlrpc", b"urlopen",
                b"ftplib", b"poplib", b"imaplib", b"telnetlib", b"nntplib", b"build_opener")
    classes = CLIENT_CLASSES
    adapter = "vsock_client_class"
    examples = (
        Example(
            "import http.client\nconn = http.client.HTTPConnection('localhost', 8000, timeout=5)\n",
            "import http.client\nfrom vsock_runtime import vsock_client_class\n"
            "conn = vsock_client_class(http.client.HTTPConnection)('localhost', 8000, timeout=5)\n",
            ("VS011",),
        ),
        Example(
            "import xmlrpc.client\nproxy = xmlrpc.client.ServerProxy('http://localhost:8000/')\n",
            "import xmlrpc.client\nfrom vsock_runtime import vsock_client_class\n"
            "proxy = vsock_client_class(xmlrpc.client.ServerProxy)('http://localhost:8000/')\n",
            ("VS011",),
        ),
        Example(
            "from urllib.request import urlopen\nbody = urlopen('http://localhost:8000/').read()\n",
            "from urllib.request import urlopen\nfrom vsock_runtime import vsock_urlopen\n"
            "body = vsock_urlopen('http://localhost:8000/').read()\n",
            ("VS011",),
        ),
        Example("import ftplib\nftp = ftplib.FTP('files.internal')\n", None, ("VS011",)),
        Example(
            "from .compat import HTTPConnection\nconn = HTTPConnection('localhost', 80)\n",
            "from .compat import HTTPConnection\nfrom vsock_runtime import vsock_client_class\n"
            "conn = vsock_client_class(HTTPConnection)('localhost', 80)\n",
            ("VS011",),
        ),
        # A package's own class of that name (httpcore's `.connection.HTTPConnection`) is not the stdlib's.
        Example("from .connection import HTTPConnection\nconn = HTTPConnection(origin)\n"),
        Example("import http.client\nok = isinstance(conn, (http.client.HTTPConnection, http.client.HTTPSConnection))\n"),
    )

    def _reference(self, node: cst.BaseExpression) -> None:
        if self.names.qualified(node) == "urllib.request.urlopen" and is_value_use(node, self.parents, self.names):
            self.report(node, f"{source_of(node)} connects over TCP/IP -> vsock_urlopen",
                        replacement=runtime_name("vsock_urlopen"))
            return
        super()._reference(node)

    def visit_Call(self, node: cst.Call) -> None:
        qualified = self.names.qualified(node.func) or ""
        if qualified in UNPORTED_CLIENTS:
            self.report(node, f"{source_of(node.func)}() stays on TCP/IP: {UNPORTED_CLIENTS[qualified]}")
