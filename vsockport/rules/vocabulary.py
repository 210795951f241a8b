"""What the rules know about sockets, written once: the qualified names of the socket API that matter
to a port, and how to read a socket call's family and type. Rules import from here (and from
`helpers`, `addresses`); no rule imports another rule.
"""

from __future__ import annotations

import libcst as cst

from vsockport.rules.helpers import argument, keyword, literal_int, walk
from vsockport.rules.names import ModuleNames, is_datagram_type

SOCKET_CLASSES = frozenset(["socket.socket", "socket.SocketType"])
# The C type under socket.socket. Async frameworks wrap it directly (gevent's socket class derives from
# `_socket.socket` and is made with whatever family its callers give): a subclass is reported like
# one of socket.socket, so the sockets it makes cannot stay on TCP/IP in silence.
C_SOCKET_CLASSES = frozenset(["_socket.socket", "_socket.SocketType"])
INET_FAMILIES = frozenset(["socket.AF_INET", "socket.AF_INET6"])
# ctypes programs often define the numbers themselves: AF_INET = 2, AF_INET6 = 10.
INET_NUMBERS = {"AF_INET": 2, "AF_INET6": 10}
NOT_IP_FAMILIES = frozenset(["socket.AF_UNIX", "socket.AF_NETLINK", "socket.AF_PACKET", "socket.AF_VSOCK",
                             "socket.AF_BLUETOOTH", "socket.AF_CAN", "socket.AF_TIPC", "socket.AF_ALG"])
TCP_LEVELS = frozenset(["socket.IPPROTO_TCP", "socket.SOL_TCP"])
MISSING_OPTIONS = frozenset(["socket.IPV6_V6ONLY", "socket.SO_REUSEPORT"])

# Functions of the socket module that reach TCP/IP, and the runtime's vsock versions.
CREATORS = {"socket.create_connection": "create_vsock_connection", "socket.create_server": "create_vsock_server"}
RESOLVERS = {"socket.getaddrinfo": "vsock_getaddrinfo", "socket.gethostbyname": "vsock_gethostbyname",
             "socket.gethostbyname_ex": "vsock_gethostbyname_ex"}
ADOPTERS = {"socket.fromfd": "vsock_fromfd"}
# asyncio's module-level endpoints, and the event-loop methods that open IP sockets.
ASYNCIO_FUNCTIONS = {
    "asyncio.open_connection": "vsock_open_connection",
    "asyncio.start_server": "vsock_start_server",
    "asyncio.streams.open_connection": "vsock_open_connection",
    "asyncio.streams.start_server": "vsock_start_server",
}
LOOP_METHODS = {"create_connection": "vsock_loop_create_connection", "create_server": "vsock_loop_create_server",
                "getaddrinfo": "vsock_loop_getaddrinfo"}
LOOP_FACTORIES = frozenset(["asyncio.get_event_loop", "asyncio.get_running_loop", "asyncio.new_event_loop"])

# The standard library's servers: socketserver-based (and smtpd's), adapted by the runtime's vsock_server_class().
STREAM_SERVERS = frozenset([
    "socketserver.TCPServer", "socketserver.ThreadingTCPServer", "socketserver.ForkingTCPServer",
    "http.server.HTTPServer", "http.server.ThreadingHTTPServer", "xmlrpc.server.SimpleXMLRPCServer",
    "xmlrpc.server.MultiPathXMLRPCServer", "xmlrpc.server.DocXMLRPCServer", "wsgiref.simple_server.WSGIServer",
    # asyncore servers (Python 3.11 and older), adapted in create_socket()
    "smtpd.SMTPServer", "smtpd.DebuggingServer", "smtpd.PureProxy",
])
UDP_SERVERS = frozenset(["socketserver.UDPServer", "socketserver.ThreadingUDPServer", "socketserver.ForkingUDPServer"])
# The standard library's clients that the runtime's vsock_client_class() adapts.
CLIENT_CLASSES = frozenset([
    "http.client.HTTPConnection", "http.client.HTTPSConnection", "smtplib.SMTP", "smtplib.SMTP_SSL", "smtplib.LMTP",
    "xmlrpc.client.ServerProxy", "xmlrpc.client.Server", "xmlrpc.client.Transport", "xmlrpc.client.SafeTransport",
    "poplib.POP3", "poplib.POP3_SSL", "imaplib.IMAP4", "imaplib.IMAP4_SSL", "nntplib.NNTP", "nntplib.NNTP_SSL",
    "logging.handlers.SocketHandler", "logging.handlers.HTTPHandler", "ftplib.FTP", "ftplib.FTP_TLS", "telnetlib.Telnet",
])
# Standard-library socket users the runtime cannot adapt: reported wherever they are used.
UNPORTED_STDLIB = {
    "urllib.request.build_opener": "its handlers open TCP connections (use vsock_urlopen for http/https)",
    "logging.handlers.DatagramHandler": "it sends UDP datagrams to the log server",
    "logging.handlers.SysLogHandler": "it reaches syslog over UDP or TCP when given a (host, port)",
    "logging.handlers.SMTPHandler": "it mails log records through its own smtplib connection",
    "multiprocessing.connection.XmlListener": "its 'AF_INET' listeners serve TCP",
    "multiprocessing.connection.Listener": "its 'AF_INET' listeners serve TCP (use an 'AF_UNIX' address, or a vsock listener of your own)",
    "multiprocessing.connection.Client": "its 'AF_INET' clients connect over TCP",
    "multiprocessing.managers.BaseManager": "its managers serve and connect over TCP unless given a Unix address",
}


def is_event_loop(node: cst.BaseExpression, qualified) -> bool:
    """An asyncio event loop as code holds one: a name or attribute called `loop` or `*_loop`, or a
    call of a loop factory. `qualified` is the rule's scope-aware qualified-name lookup."""
    if isinstance(node, cst.Call):
        return qualified(node.func) in LOOP_FACTORIES
    name = node.attr.value if isinstance(node, cst.Attribute) else node.value if isinstance(node, cst.Name) else ""
    if qualified(node) is not None and isinstance(node, cst.Name):
        return False  # an imported module or function, not a loop variable
    return name == "loop" or name.endswith("_loop")


def is_inet_family(names: ModuleNames, node: cst.BaseExpression, qualified: str | None = None) -> bool:
    """`socket.AF_INET`/`AF_INET6` under any import form, or a module constant `AF_INET = 2`."""
    if (qualified if qualified is not None else names.qualified(node)) in INET_FAMILIES:
        return True
    if isinstance(node, cst.Name) and node.value in INET_NUMBERS:
        constant = names.constant(node)
        return isinstance(constant, cst.Integer) and int(constant.evaluated_value) == INET_NUMBERS[node.value]
    return False


def is_family_choice(names: ModuleNames, node: cst.BaseExpression) -> bool:
    """An IP family, or a choice between IP families (`AF_INET6 if ":" in host else AF_INET`)."""
    if isinstance(node, cst.IfExp):
        return is_family_choice(names, node.body) and is_family_choice(names, node.orelse)
    return is_inet_family(names, node)


def is_other_family(names: ModuleNames, node: cst.BaseExpression) -> bool:
    """A family written out that is not IP (AF_UNIX, AF_PACKET, AF_VSOCK, afVMCI, a number): left alone."""
    qualified = names.qualified(node)
    if qualified is not None and qualified.startswith("socket.AF_"):
        return qualified not in INET_FAMILIES
    if names.is_runtime_name(node):
        return True  # afVMCI: ported already
    number = literal_int(names.constant(node))
    return number is not None and number not in (-1, 2, 10)


def family_argument(call: cst.Call) -> cst.Arg | None:
    """The `family` argument of a socket constructor: `family=` or the first positional argument."""
    found = keyword(call, "family")
    if found is not None:
        return found
    if call.args and call.args[0].keyword is None and call.args[0].star == "":
        return call.args[0]
    return None


def type_argument(call: cst.Call) -> cst.Arg | None:
    """The `type` argument of a socket constructor: `type=` or the second positional argument."""
    return argument(call, 1, "type")


def is_datagram(names: ModuleNames, call: cst.Call) -> bool:
    """A socket constructor whose type is written out as SOCK_DGRAM (or a constant holding it)."""
    kind = type_argument(call)
    return kind is not None and is_datagram_type(names.qualified(names.constant(kind.value)))


def may_be_datagram(names: ModuleNames, call: cst.Call) -> bool:
    """A socket constructor whose type is chosen at run time between SOCK_DGRAM and another
    (`SOCK_DGRAM if udp else SOCK_STREAM`, directly or through a module constant)."""
    kind = type_argument(call)
    if kind is None:
        return False
    return any(is_datagram_type(names.qualified(node))
               for node in walk(names.constant(kind.value)) if isinstance(node, (cst.Name, cst.Attribute)))
