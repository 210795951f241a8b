from __future__ import annotations

import libcst as cst

from vsockport.rules.api import Example, runtime_name
from vsockport.rules.class_references import ClassReferenceRule
from vsockport.rules.helpers import source_of

_WHY = "serves TCP/IP"
SERVER_CLASSES = {
    name: _WHY
    for name in (
        "socketserver.TCPServer",
        "socketserver.ThreadingTCPServer",
        "socketserver.ForkingTCPServer",
        "socketserver.UDPServer",
        "socketserver.ThreadingUDPServer",
        "socketserver.ForkingUDPServer",
        "http.server.HTTPServer",
        "http.server.ThreadingHTTPServer",
        "xmlrpc.server.SimpleXMLRPCServer",
        "xmlrpc.server.MultiPathXMLRPCServer",
        "xmlrpc.server.DocXMLRPCServer",
        "wsgiref.simple_server.WSGIServer",
    )
}


class StdlibServers(ClassReferenceRule):
    """Serve vsock with the standard library's socketserver-based servers.

    ## What it does
    Wraps references to `socketserver.TCPServer`, `ThreadingTCPServer`, `ForkingTCPServer` (and the
    UDP servers, which VS012 also reports: vsock datagrams are VMware's only),
    `http.server.HTTPServer`, `ThreadingHTTPServer`, `xmlrpc.server.SimpleXMLRPCServer`,
    `MultiPathXMLRPCServer`, `DocXMLRPCServer` and `wsgiref.simple_server.WSGIServer` in
    `vsock_server_class(...)` wherever the class is used as a value: a base class, a call, an argument
    (`server_class=...`), an assigned or returned value, a default, either side of `A if threaded else
    B`. `wsgiref.simple_server.make_server(...)` becomes `vsock_make_server(...)`.

    ## Why
    These classes create `AF_INET` sockets. `vsock_server_class(X)` is a subclass of `X` with:
    - the vsock family;
    - `("", 8000)`-style addresses mapped to `(CID, port)`;
    - no `SO_REUSEPORT` (vsock fails it);
    - `client_address` as `(str(cid), port)`, because WSGI's `REMOTE_ADDR` and log lines expect a
      string.

    The runtime also lets `socket.getfqdn()` accept a CID, because `HTTPServer.server_bind` calls it
    on the bound address. Request handlers, `serve_forever()` and `shutdown()` are unchanged.

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
    triggers = (b"Server", b"make_server")
    classes = SERVER_CLASSES
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
        Example("import socketserver\nok = isinstance(server, socketserver.TCPServer)\n"),
        Example("import http.server\ndef start(self, *a):\n    super(http.server.HTTPServer, self).__init__(*a)\n"
                "    v = http.server.HTTPServer.protocol_version\n"
                "def f(s: http.server.HTTPServer) -> bool:\n    return type(s) is http.server.HTTPServer\n"),
        Example("import socketserver\nclass S(socketserver.UnixStreamServer):\n    pass\n"),
    )

    def visit_Call(self, node: cst.Call) -> None:
        if self.names.qualified(node.func) == "wsgiref.simple_server.make_server":
            self.report(node.func, f"{source_of(node.func)}() serves TCP/IP -> vsock_make_server()",
                        replacement=runtime_name("vsock_make_server"))
            return
