from __future__ import annotations

import libcst as cst

from vsockport.rules.api import Example, runtime_name
from vsockport.rules.class_references import ClassReferenceRule
from vsockport.rules.helpers import source_of
from vsockport.rules.vocabulary import STREAM_SERVERS, UDP_SERVERS


class StdlibServers(ClassReferenceRule):
    """Serve vsock with the standard library's socketserver-based servers, and smtpd's.

    ## What it does
    Wraps references to `socketserver.TCPServer`, `ThreadingTCPServer`, `ForkingTCPServer`,
    `http.server.HTTPServer`, `ThreadingHTTPServer`, `xmlrpc.server.SimpleXMLRPCServer`,
    `MultiPathXMLRPCServer`, `DocXMLRPCServer`, `wsgiref.simple_server.WSGIServer` and smtpd's asyncore
    servers `SMTPServer`, `DebuggingServer` and `PureProxy` (Python 3.11 and older) in
    `vsock_server_class(...)` wherever the class is used as a value: a base class, a call, an argument
    (`server_class=...`), an assigned or returned value, a default, either side of `A if threaded else
    B`. A server class fetched from its module by a name (`getattr(socketserver, kind + "TCPServer")`) is
    fetched with `vsock_getattr`, which adapts it when the name is known.
    `wsgiref.simple_server.make_server(...)` becomes `vsock_make_server(...)`. The UDP servers stay
    on IP (VS012 reports them) unless `--vmci-datagrams` asks for VMware's vsock datagrams.

    ## Why
    These classes make `AF_INET` sockets. `vsock_server_class(X)` is a subclass of `X` whose
    `address_family` is the vsock one, so the socket it makes is a vsock socket; its `("", 8000)`-style
    server address binds `VMADDR_CID_ANY`, `client_address` is a `(host string, port)` pair as WSGI's
    `REMOTE_ADDR` and log lines expect, and `SO_REUSEPORT` and handlers' `TCP_NODELAY` do nothing.
    Request handlers, `serve_forever()` and `shutdown()` are unchanged. For smtpd's servers the socket
    their `create_socket()` is asked for with an IP family is a vsock one.

    ## Example
    ```python
    class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
        pass
    httpd = http.server.ThreadingHTTPServer(("", 8000), Handler)
    ```
    becomes
    ```python
    class Server(socketserver.ThreadingMixIn, vsock_server_class(socketserver.TCPServer)):
        pass
    httpd = vsock_server_class(http.server.ThreadingHTTPServer)(("", 8000), Handler)
    ```

    ## Fix safety
    Safe: each server stays an instance of the original class. `isinstance(x, Server)` checks are
    left as they are, and they still hold.
    """

    code = "VS010"
    name = "stdlib-servers"
    triggers = (b"Server", b"make_server", b"PureProxy")
    references = STREAM_SERVERS | UDP_SERVERS | {"wsgiref.simple_server.make_server"}
    why = "serves TCP/IP"
    adapter = "vsock_server_class"
    examples = (
        Example(
            "import http.server\nhttpd = http.server.ThreadingHTTPServer(('', 8000), Handler)\n",
            "import http.server\nfrom vsock_runtime import vsock_server_class\n"
            "httpd = vsock_server_class(http.server.ThreadingHTTPServer)(('', 8000), Handler)\n",
            ("VS010",),
        ),
        Example(
            "import socketserver\nclass Server(socketserver.ThreadingMixIn, socketserver.TCPServer):\n    pass\n",
            "import socketserver\nfrom vsock_runtime import vsock_server_class\n"
            "class Server(socketserver.ThreadingMixIn, vsock_server_class(socketserver.TCPServer)):\n    pass\n",
            ("VS010",),
        ),
        Example(
            "from xmlrpc.server import SimpleXMLRPCServer\nwith SimpleXMLRPCServer(('localhost', 8000)) as s:\n    pass\n",
            "from xmlrpc.server import SimpleXMLRPCServer\nfrom vsock_runtime import vsock_server_class\n"
            "with vsock_server_class(SimpleXMLRPCServer)(('localhost', 8000)) as s:\n    pass\n",
            ("VS010",),
        ),
        Example(
            "from wsgiref.simple_server import make_server\nhttpd = make_server('', 8000, app)\n",
            "from wsgiref.simple_server import make_server\nfrom vsock_runtime import vsock_make_server\n"
            "httpd = vsock_make_server('', 8000, app)\n",
            ("VS010",),
        ),
        Example(
            "from http.server import HTTPServer, ThreadingHTTPServer\ndef serve(threaded, server_class=HTTPServer):\n"
            "    cls = ThreadingHTTPServer if threaded else server_class\n    return cls\n",
            "from http.server import HTTPServer, ThreadingHTTPServer\nfrom vsock_runtime import vsock_server_class\n"
            "def serve(threaded, server_class=vsock_server_class(HTTPServer)):\n"
            "    cls = vsock_server_class(ThreadingHTTPServer) if threaded else server_class\n    return cls\n",
            ("VS010", "VS010"),
        ),
        Example(
            "import socketserver\nServer = getattr(socketserver, kind + 'TCPServer')\n",
            "import socketserver\nfrom vsock_runtime import vsock_getattr\nServer = vsock_getattr(socketserver, kind + 'TCPServer')\n",
            ("VS010",),
        ),
        # smtpd's asyncore servers, imported or fetched by name (CPython's tests: import_deprecated('smtpd')).
        Example(
            "from test.support import warnings_helper\nsmtpd = warnings_helper.import_deprecated('smtpd')\n"
            "class Sim(smtpd.SMTPServer):\n    pass\nserver = smtpd.DebuggingServer(('localhost', 0), None)\n",
            "from test.support import warnings_helper\nfrom vsock_runtime import vsock_server_class\n"
            "smtpd = warnings_helper.import_deprecated('smtpd')\n"
            "class Sim(vsock_server_class(smtpd.SMTPServer)):\n    pass\n"
            "server = vsock_server_class(smtpd.DebuggingServer)(('localhost', 0), None)\n",
            ("VS010", "VS010"),
        ),
        Example("import socketserver\nok = isinstance(server, socketserver.TCPServer)\n"),
        Example("import http.server\ndef start(self, *a):\n    super(http.server.HTTPServer, self).__init__(*a)\n"
                "    v = http.server.HTTPServer.protocol_version\n"
                "def f(s: http.server.HTTPServer) -> bool:\n    return type(s) is http.server.HTTPServer\n"),
        Example("import socketserver\nclass S(socketserver.UnixStreamServer):\n    pass\nclass U(socketserver.UDPServer):\n    pass\n"),
    )

    @property
    def adapted(self):
        return STREAM_SERVERS | UDP_SERVERS if self.options.vmci_datagrams else STREAM_SERVERS

    def reference(self, node: cst.BaseExpression, qualified: str) -> None:
        if qualified == "wsgiref.simple_server.make_server":
            self.report(node, f"{source_of(node)}() serves TCP/IP -> vsock_make_server()",
                        replacement=runtime_name("vsock_make_server"))
            return
        super().reference(node, qualified)
