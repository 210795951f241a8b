from __future__ import annotations

import libcst as cst

from vsockport.rules.api import Example, runtime_name
from vsockport.rules.class_references import ClassReferenceRule
from vsockport.rules.helpers import literal_string, source_of
from vsockport.rules.vocabulary import CLIENT_CLASSES, UNPORTED_STDLIB

_MULTIPROCESSING = ("multiprocessing.connection.Listener", "multiprocessing.connection.Client",
                    "multiprocessing.managers.BaseManager")


class StdlibClients(ClassReferenceRule):
    """Connect over vsock with the standard library's HTTP, SMTP, POP3, IMAP, NNTP, FTP, Telnet and XML-RPC clients.

    ## What it does
    - References to `http.client.HTTPConnection`, `HTTPSConnection`, `smtplib.SMTP`, `SMTP_SSL`,
      `LMTP`, `poplib.POP3(_SSL)`, `imaplib.IMAP4(_SSL)`, `nntplib.NNTP(_SSL)`,
      `xmlrpc.client.ServerProxy`, `Transport`, `SafeTransport`, `ftplib.FTP(_TLS)`,
      `telnetlib.Telnet`, and the log shippers
      `logging.handlers.SocketHandler` and `HTTPHandler` are wrapped in `vsock_client_class(...)`
      where they are called, subclassed, passed or assigned.
    - `urllib.request.urlopen` becomes `vsock_urlopen`, called or kept as a value.
    - A client class fetched from its module by a name (`getattr(http.client, scheme.upper() +
      "Connection")`) is fetched with `vsock_getattr`, which adapts it when the name is known.
    - Standard-library socket users the runtime cannot adapt are reported wherever they are used:
      `urllib.request.build_opener`, `logging.handlers`' datagram, syslog and SMTP handlers, and
      multiprocessing's listeners, clients and managers given an IP address (or one known only at run
      time); also where a string names one (`"class": "logging.handlers.SocketHandler"` in a `dictConfig`:
      the configuration makes the class as it is, adapted or not).

    ## Why
    These clients open their connections inside the standard library (`socket.create_connection()`),
    so porting the calling program alone would leave them on TCP/IP. `vsock_client_class(X)` is a
    subclass of `X` that opens its connection with `create_vsock_connection`; an xmlrpc `ServerProxy`
    given a transport of its caller's gets that transport ported too. FTP's data connections go to the
    control connection's peer (passive mode, ftplib's default: the address a PASV reply carries is
    ignored, as ftplib ignores it unless told to trust it); active mode's PORT carries the host as the
    control socket reads it ("127.0.0.1" on the loopback CID), which only a ported server understands. Hosts map to CIDs at run time
    (`VSOCK_CID_MAP`); URLs, HTTP `Host:` headers and TLS server names keep the host name, so
    certificates are checked for the name the program asked for.

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
                b"ftplib", b"poplib", b"imaplib", b"telnetlib", b"nntplib", b"build_opener",
                # The classes' own names, not `logging` or `multiprocessing`, which most modules mention;
                # `connection.Client` for `from multiprocessing import connection` (`Client` and `Listener`
                # alone are in many modules).
                b"SocketHandler", b"DatagramHandler", b"SysLogHandler", b"HTTPHandler", b"SMTPHandler",
                b"multiprocessing.connection", b"multiprocessing.managers", b"connection.Client",
                b"connection.Listener", b"XmlListener", b"BaseManager", b"smtpd")
    references = CLIENT_CLASSES | frozenset(UNPORTED_STDLIB) | {"urllib.request.urlopen"}
    string_words = (b"logging.handlers.", b"smtpd.", b"multiprocessing.connection.")
    adapted = CLIENT_CLASSES
    why = "connects over TCP/IP"
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
        Example(
            "import ftplib\nftp = ftplib.FTP('files.internal')\n",
            "import ftplib\nfrom vsock_runtime import vsock_client_class\n"
            "ftp = vsock_client_class(ftplib.FTP)('files.internal')\n",
            ("VS011",),
        ),
        Example("from multiprocessing.connection import Listener\nlistener = Listener(('localhost', 6000))\n"
                "local = Listener('/run/app.sock')\n", None, ("VS011",)),
        # Log shippers (a guest's or an enclave's logs to a collector on the host); UDP stays reported.
        Example(
            "from logging import handlers\nnet = handlers.SocketHandler('logs', 9020)\n"
            "web = handlers.HTTPHandler('logs:8080', '/log')\n",
            "from logging import handlers\nfrom vsock_runtime import vsock_client_class\n"
            "net = vsock_client_class(handlers.SocketHandler)('logs', 9020)\n"
            "web = vsock_client_class(handlers.HTTPHandler)('logs:8080', '/log')\n",
            ("VS011", "VS011"),
        ),
        Example("from logging import handlers\nudp = handlers.DatagramHandler('logs', 9021)\n", None, ("VS011",)),
        Example("from multiprocessing import connection\nc = connection.Client(('localhost', 6000))\n", None, ("VS011",)),
        Example("import logging.config\nlogging.config.dictConfig({'handlers': {'net': {\n"
                "    'class': 'logging.handlers.SocketHandler', 'host': 'logs', 'port': 9020}}})\n", None, ("VS011",)),
        Example(
            "from .compat import HTTPConnection\nconn = HTTPConnection('localhost', 80)\n",
            "from .compat import HTTPConnection\nfrom vsock_runtime import vsock_client_class\n"
            "conn = vsock_client_class(HTTPConnection)('localhost', 80)\n",
            ("VS011",),
        ),
        # A class fetched by a name known only at run time (cheroot's test client), or named by a literal.
        Example(
            "import http.client\ndef connection(scheme):\n    return getattr(http.client, scheme.upper() + 'Connection')\n",
            "import http.client\nfrom vsock_runtime import vsock_getattr\ndef connection(scheme):\n"
            "    return vsock_getattr(http.client, scheme.upper() + 'Connection')\n",
            ("VS011",),
        ),
        Example("import http.client\nreasons = getattr(http.client, 'responses')\n"),
        # A package's own class of that name (httpcore's `.connection.HTTPConnection`) is not the stdlib's.
        Example("from .connection import HTTPConnection\nconn = HTTPConnection(origin)\n"),
        Example("import http.client\nok = isinstance(conn, (http.client.HTTPConnection, http.client.HTTPSConnection))\n"),
    )

    def visit_SimpleString(self, node: cst.SimpleString) -> None:
        """A class named in configuration data: `"class": "logging.handlers.SocketHandler"`."""
        named = literal_string(node)
        if named is None:
            return
        qualified = named.removeprefix("ext://")
        if qualified in UNPORTED_STDLIB:
            self.report(node, f"{named} (named here) stays on TCP/IP: {UNPORTED_STDLIB[qualified]}")
        elif qualified in CLIENT_CLASSES and qualified.startswith("logging.handlers."):
            self.report(node, f"{named} (named here) stays on TCP/IP: the logging configuration makes it as it is; "
                              f"name a class of your own, `class Vsock{qualified.rsplit('.', 1)[1]}"
                              f"(vsock_client_class({qualified})): pass`")

    def reference(self, node: cst.BaseExpression, qualified: str) -> None:
        if qualified == "urllib.request.urlopen":
            self.report(node, f"{source_of(node)} connects over TCP/IP -> vsock_urlopen",
                        replacement=runtime_name("vsock_urlopen"))
        elif qualified in UNPORTED_STDLIB:
            call = self.parents(node)
            if qualified in _MULTIPROCESSING and isinstance(call, cst.Call) and call.func is node and _local_address(call):
                return
            self.report(node, f"{source_of(node)} stays on TCP/IP: {UNPORTED_STDLIB[qualified]}")
        else:
            super().reference(node, qualified)


def _local_address(call: cst.Call) -> bool:
    """A multiprocessing listener or client with no address, or a path (a string literal): not IP."""
    address = next((a.value for a in call.args if a.keyword is not None and a.keyword.value == "address"),
                   call.args[0].value if call.args and call.args[0].keyword is None and not call.args[0].star else None)
    family = next((literal_string(a.value) for a in call.args if a.keyword is not None and a.keyword.value == "family"), None)
    if family is not None:
        return family != "AF_INET"
    return address is None or literal_string(address) is not None
