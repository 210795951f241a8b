"""Every standard-library class that makes sockets is ported or reported: the table is built from the
standard library itself, not written down by hand.

A class makes sockets when its methods use a socket-making function of the socket module (called or
kept as a value, as http.client keeps `socket.create_connection`), or another class that makes sockets
(xmlrpc.client.Transport uses http.client.HTTPConnection), or when it derives from one (http.server's
HTTPServer from socketserver's TCPServer). Each such class must be adapted by the runtime (VS010,
VS011), reported wherever a program uses it (VS011), or be listed below with the reason it needs
neither. A Python release that adds one fails this test until it is classified.
"""

from __future__ import annotations

import ast
import sysconfig
from pathlib import Path

from vsockport.rules.vocabulary import CLIENT_CLASSES, STREAM_SERVERS, UDP_SERVERS, UNPORTED_STDLIB

STDLIB = Path(sysconfig.get_paths()["stdlib"])
MAKERS = {"socket.socket", "socket.SocketType", "socket.create_connection", "socket.create_server", "socket.fromfd",
          "socket.socketpair"}
SKIPPED_PACKAGES = ("test", "idlelib", "lib2to3", "tkinter", "turtledemo", "ensurepip", "site-packages", "distutils")
# Classes that make sockets and need no adapter or report of their own, and why.
NEITHER = {
    "asyncio.base_events.BaseEventLoop": "its create_connection/create_server/getaddrinfo are ported where called (VS009)",
    "asyncio.selector_events.BaseSelectorEventLoop": "an event loop: VS009 ports the calls that open IP sockets",
    "asyncio.proactor_events.BaseProactorEventLoop": "an event loop: VS009 ports the calls that open IP sockets",
    "asyncio.unix_events._UnixSelectorEventLoop": "an event loop: VS009 ports the calls that open IP sockets",
    "asyncio.unix_events._UnixSubprocessTransport": "a socketpair() to its child process: local, not IP",
    "asyncio.windows_events.IocpProactor": "Windows' proactor: sockets handed to it by the loop",
    "asyncio.windows_events.ProactorEventLoop": "an event loop: VS009 ports the calls that open IP sockets",
    "asyncio.unix_events.SelectorEventLoop": "an event loop: VS009 ports the calls that open IP sockets",
    "asyncio.windows_events.SelectorEventLoop": "an event loop: VS009 ports the calls that open IP sockets",
    "asyncore.dispatcher": "programs make its socket with create_socket(family, ...): VS001 ports the family",
    "asyncore.dispatcher_with_send": "asyncore.dispatcher's subclass: create_socket(family, ...), ported by VS001",
    "asyncore.file_dispatcher": "wraps a file descriptor, no socket",
    "asynchat.async_chat": "asyncore.dispatcher's subclass: create_socket(family, ...), ported by VS001",
    "multiprocessing.connection.SocketListener": "made by multiprocessing.connection.Listener, reported (VS011)",
    "multiprocessing.forkserver.ForkServer": "an AF_UNIX socket to its fork server",
    "multiprocessing.managers.SyncManager": "a BaseManager: reported where given an IP address (VS011)",
    "multiprocessing.managers.Server": "made by a BaseManager, reported (VS011)",
    "socketserver.UnixStreamServer": "AF_UNIX",
    "socketserver.UnixDatagramServer": "AF_UNIX",
    "socketserver.ThreadingUnixStreamServer": "AF_UNIX",
    "socketserver.ThreadingUnixDatagramServer": "AF_UNIX",
    "socketserver.ForkingUnixStreamServer": "AF_UNIX",
    "socketserver.ForkingUnixDatagramServer": "AF_UNIX",
    "webbrowser.Grail": "an AF_UNIX socket to a local browser",
    "ftplib.FTP_TLS": "adapted with ftplib.FTP (VS011)",
    "logging.handlers.SysLogHandler": "reported (VS011)",
    "logging.handlers.DatagramHandler": "reported (VS011)",
    "urllib.request.HTTPHandler": "urllib.request's handlers: vsock_urlopen gives vsock ones; build_opener is reported",
    "urllib.request.HTTPSHandler": "urllib.request's handlers: vsock_urlopen gives vsock ones; build_opener is reported",
    "urllib.request.AbstractHTTPHandler": "urllib.request's handlers: vsock_urlopen gives vsock ones",
    "urllib.request.URLopener": "deprecated opener, through http.client: urlopen/build_opener are ported or reported",
    "urllib.request.FancyURLopener": "deprecated opener, through http.client: urlopen/build_opener are ported or reported",
    "urllib.request.FTPHandler": "FTP through ftplib: build_opener is reported",
    "urllib.request.CacheFTPHandler": "FTP through ftplib: build_opener is reported",
    "urllib.request.ftpwrapper": "FTP through ftplib: build_opener is reported",
    "http.server.ThreadingHTTPServer": "adapted with HTTPServer (VS010)",
    "xmlrpc.server.SimpleXMLRPCServer": "adapted (VS010)",
    "xmlrpc.server.MultiPathXMLRPCServer": "adapted (VS010)",
    "xmlrpc.server.DocXMLRPCServer": "adapted (VS010)",
    "wsgiref.simple_server.WSGIServer": "adapted (VS010)",
    "xmlrpc.client.ServerProxy": "adapted (VS011)",
    "xmlrpc.client.Server": "adapted (VS011)",
    "socket.socket": "the socket class itself: the port makes vsock sockets of it (VS001)",
    "ssl.SSLSocket": "wraps a socket it is given: a vsock one stays vsock",
    "asyncio.trsock.TransportSocket": "wraps a socket it is given: a vsock one stays vsock",
    "multiprocessing.reduction.AbstractReducer": "pickles sockets for other processes, makes none",
    "multiprocessing.resource_sharer._ResourceSharer": "multiprocessing's own AF_UNIX listener",
    "asyncio.unix_events._UnixDefaultEventLoopPolicy": "makes event loops (see the loops)",
    "asyncio.windows_events.WindowsProactorEventLoopPolicy": "makes event loops (see the loops)",
    "imaplib.IMAP4_stream": "talks to a command through pipes: no socket",
    "smtpd.SMTPChannel": "smtpd's connection objects, made by its servers (adapted, VS010)",
    "logging.config.DictConfigurator": "makes the handlers its configuration names: VS011 reports those names",
}


def _modules():
    for path in sorted(STDLIB.rglob("*.py")):
        relative = path.relative_to(STDLIB)
        if relative.parts[0] in SKIPPED_PACKAGES or "tests" in relative.parts:
            continue
        name = ".".join(relative.with_suffix("").parts).removesuffix(".__init__")
        try:
            yield name, ast.parse(path.read_bytes())
        except (SyntaxError, ValueError):
            continue


def _imports(module: str, tree: ast.Module) -> dict[str, str]:
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            base = node.module if not node.level else ".".join(module.split(".")[: -node.level] + [node.module])
            for alias in node.names:
                found[alias.asname or alias.name] = f"{base}.{alias.name}"
    return found


def _dotted(node, imports, local_classes) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    base = imports.get(node.id) or local_classes.get(node.id)
    return ".".join([base, *reversed(parts)]) if base else None


def socket_making_classes() -> dict[str, str]:
    """qualified class name -> what makes it a socket maker, to a fixpoint across the standard library."""
    classes = {}
    for module, tree in _modules():
        imports = _imports(module, tree)
        local = {node.name: f"{module}.{node.name}" for node in tree.body if isinstance(node, ast.ClassDef)}
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                bases = [_dotted(b, imports, local) for b in node.bases]
                used = {_dotted(n, imports, local) for n in ast.walk(node) if isinstance(n, (ast.Name, ast.Attribute))}
                classes[f"{module}.{node.name}"] = ({b for b in bases if b}, used - {None})
    makers: dict[str, str] = {}
    changed = True
    while changed:
        changed = False
        for name, (bases, used) in classes.items():
            if name in makers:
                continue
            why = next((f"uses {u}" for u in sorted(used) if u in MAKERS or u in makers), None)
            why = why or next((f"derives from {b}" for b in sorted(bases) if b in makers), None)
            if why:
                makers[name] = why
                changed = True
    return makers


def test_every_socket_making_stdlib_class_is_ported_or_reported():
    makers = socket_making_classes()
    covered = CLIENT_CLASSES | STREAM_SERVERS | UDP_SERVERS | set(UNPORTED_STDLIB) | set(NEITHER)
    unclassified = {name: why for name, why in makers.items() if name not in covered}
    assert not unclassified, unclassified
    # The scan finds what the tables name: it is the scan, not the tables, that decides.
    for name in ("http.client.HTTPConnection", "xmlrpc.client.Transport", "socketserver.TCPServer", "smtplib.SMTP",
                 "poplib.POP3", "imaplib.IMAP4", "ftplib.FTP", "telnetlib.Telnet", "http.server.HTTPServer"):
        assert name in makers, name
