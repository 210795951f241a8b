"""The compatibility matrix: what real code does with sockets and addresses, done to the sockets a
ported program makes (`vsock_socket(afVMCI, SOCK_STREAM)`, as the port writes it), over this machine's
real kernel. Each row runs in a fresh interpreter that imports the runtime as a ported program does.
Nothing here connects over vsock: a listening socket answers every row that needs no data; the rows
that need data (accepted sockets, REMOTE_ADDR, a worker process serving a connection, TCP options on a
live transport) run over real vsock in the sandbox (tests/e2e/test_compatibility.py).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap

import pytest

from tests.test_runtime import RUNTIME

PRELUDE = """
import os, socket, sys
from vsock_runtime import VMADDR_CID_ANY, VMADDR_PORT_ANY, VMCISock_GetAFValue, vsock_socket
afVMCI = VMCISock_GetAFValue()
listener = vsock_socket(afVMCI, socket.SOCK_STREAM)
listener.bind((VMADDR_CID_ANY, VMADDR_PORT_ANY))
listener.listen()
HOST, PORT = listener.getsockname()
"""


@pytest.fixture(scope="module")
def program_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ported")
    shutil.copy(RUNTIME, folder / "vsock_runtime.py")
    return folder


def run(folder, body: str, timeout: float = 60) -> list[str]:
    (folder / "row.py").write_text(PRELUDE + textwrap.dedent(body))
    done = subprocess.run([sys.executable, "-W", "ignore::DeprecationWarning", "row.py"], cwd=folder,
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_the_socket_is_exactly_socket_socket(program_dir):
    """Async frameworks that wrap stdlib sockets check `type(sock) is socket.socket`."""
    assert run(program_dir, """
        print(type(listener) is socket.socket, isinstance(listener, socket.socket), listener.family == afVMCI)
    """) == ["True", "True", "True"]


def test_addresses_are_plain_strings_and_ports(program_dir):
    """`type(host) is str` (wsgiref.validate), `"%s:%d" % address`, `":" in host`, `host.split("%")`."""
    assert run(program_dir, """
        print(type(HOST) is str, HOST, "%s:%d" % listener.getsockname() == "0.0.0.0:%d" % PORT, ":" in HOST)
    """) == ["True", "0.0.0.0", "True", "False"]


def test_ipaddress_parses_the_wildcard_host(program_dir):
    """The wildcard reads as IPv4's; a peer's CID ("3") is no IP address: VS014 reports code that parses it."""
    assert run(program_dir, """
        import ipaddress
        print(ipaddress.ip_address(HOST).is_unspecified)
        try:
            ipaddress.ip_address("3")
        except ValueError:
            print("cid-is-no-ip")
    """) == ["True", "cid-is-no-ip"]


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_a_listening_socket_handed_to_a_worker_process(program_dir, method):
    """multiprocessing's socket reducer is registered for socket.socket exactly (uvicorn --workers)."""
    assert run(program_dir, f"""
        import multiprocessing

        def worker(sock, parents_port, answers):
            host, port = sock.getsockname()
            answers.put((type(sock) is socket.socket, sock.family == afVMCI, type(host) is str, port == parents_port))

        if __name__ == "__main__":
            context = multiprocessing.get_context({method!r})
            answers = context.Queue()
            child = context.Process(target=worker, args=(listener, PORT, answers))
            child.start()
            print(*answers.get(timeout=60))
            child.join()
    """) == ["True", "True", "True", "True"]


def test_plain_pickle_refuses_a_socket_as_cpython_does(program_dir):
    assert run(program_dir, """
        import pickle
        try:
            pickle.dumps(listener)
        except TypeError as exc:
            print("refused")
    """) == ["refused"]


def test_descriptors_dup_detach_fromfd_and_send_fds(program_dir):
    """A vsock descriptor adopted, duplicated or passed over a Unix socket stays a vsock socket."""
    assert run(program_dir, """
        from vsock_runtime import vsock_fromfd
        adopted = socket.socket(fileno=os.dup(listener.fileno()))
        ported_fromfd = vsock_fromfd(listener.fileno(), socket.AF_INET, socket.SOCK_STREAM)
        copy = listener.dup()
        left, right = socket.socketpair()
        socket.send_fds(left, [b"x"], [listener.fileno()])
        _, fds, _, _ = socket.recv_fds(right, 1, 1)
        received = socket.socket(fileno=fds[0])
        detached = socket.socket(fileno=copy.detach())
        for sock in (adopted, ported_fromfd, received, detached):
            print(sock.family == afVMCI and sock.getsockname() == (HOST, PORT))
        # What the port rewrites: CPython's fromfd believes the family it is told.
        print(socket.fromfd(listener.fileno(), socket.AF_INET, socket.SOCK_STREAM).family == socket.AF_INET)
    """) == ["True"] * 5


def test_selectors_and_nonblocking_accept(program_dir):
    assert run(program_dir, """
        import selectors
        selector = selectors.DefaultSelector()
        selector.register(listener, selectors.EVENT_READ)
        listener.setblocking(False)
        print(selector.select(timeout=0) == [])
        try:
            listener.accept()
        except BlockingIOError:
            print("would-block")
    """) == ["True", "would-block"]


def test_ssl_wraps_a_vsock_socket(program_dir):
    """ssl.SSLSocket is a socket.socket: it keeps the vsock addresses and options."""
    assert run(program_dir, """
        import ssl
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        wrapped = context.wrap_socket(listener, server_side=True)
        print(type(wrapped) is ssl.SSLSocket, wrapped.family == afVMCI, wrapped.getsockname() == (HOST, PORT))
        wrapped.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        print("ok")
    """) == ["True", "True", "True", "ok"]


def test_tcp_options_set_by_code_the_port_never_sees(program_dir):
    """A compiled extension's `transport.get_extra_info("socket").setsockopt(IPPROTO_TCP, TCP_NODELAY, 1)`
    and the like: documented no-ops on vsock sockets (vsock has no Nagle delay, keepalive or port sharing),
    read back as set (a program that sets TCP_NODELAY and checks it: Twisted's tests), 0 where never set,
    but TCP_NODELAY 1 (vsock never delays a send; asyncio turns it on for its TCP transports, and anyio's
    tests check it there)."""
    assert run(program_dir, """
        for level, option in ((socket.IPPROTO_TCP, socket.TCP_NODELAY), (socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
                              (socket.IPPROTO_IPV6, socket.IPV6_V6ONLY), (socket.SOL_SOCKET, socket.SO_REUSEPORT)):
            before = listener.getsockopt(level, option)
            print(before == (option == socket.TCP_NODELAY and level == socket.IPPROTO_TCP)
                  and listener.setsockopt(level, option, 7) is None and listener.getsockopt(level, option))
        print(listener.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 4) == (7).to_bytes(4, sys.byteorder))
        other = vsock_socket(afVMCI, socket.SOCK_STREAM)
        print(other.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY), other.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 4))
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        print(listener.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE))
    """) == ["7"] * 4 + ["True", "1", r"b'\x01\x00\x00\x00'", "1"]


def test_asyncio_servers_and_transport_sockets(program_dir):
    """asyncio's TransportSocket wraps the vsock socket; options and names go through to it."""
    assert run(program_dir, """
        import asyncio

        async def main():
            listener.setblocking(False)
            server = await asyncio.get_running_loop().create_server(asyncio.Protocol, sock=listener)
            transport_socket = server.sockets[0]
            transport_socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            print(type(transport_socket).__name__, transport_socket.getsockname() == (HOST, PORT))
            server.close()
            await server.wait_closed()

        asyncio.run(main())
    """) == ["TransportSocket", "True"]


def test_trio_wraps_the_socket(program_dir):
    """trio.socket.from_stdlib_socket refuses anything but socket.socket itself."""
    assert run(program_dir, """
        import trio

        async def main():
            wrapped = trio.socket.from_stdlib_socket(listener)
            print(wrapped.family == afVMCI, wrapped.getsockname() == (HOST, PORT))

        trio.run(main)
    """) == ["True", "True"]


def test_gevent_green_sockets_of_the_vsock_family(program_dir):
    """gevent's sockets wrap a C-type subclass of its own (_wrefsocket): the vsock methods reach it too,
    whether gevent was imported before the runtime's first socket or after (then the next ported
    module's `afVMCI = VMCISock_GetAFValue()` covers it)."""
    assert run(program_dir, """
        import gevent.socket
        from gevent.server import StreamServer
        afVMCI = VMCISock_GetAFValue()  # the header of a ported module imported after gevent
        green = gevent.socket.socket(fileno=listener.detach())
        server = StreamServer(green, lambda sock, address: None)
        server.start()
        print(server.address == (HOST, PORT), server.socket.family == afVMCI, type(server.socket.getsockname()[0]) is str)
        made = gevent.socket.socket(afVMCI, socket.SOCK_STREAM)
        made.bind(("", 0))
        print(made.getsockname()[0], made.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1))
        server.stop()
    """) == ["True", "True", "True", "0.0.0.0", "None"]


@pytest.mark.parametrize("patch", ["from gevent import monkey, spawn, sleep; monkey.patch_all()",
                                   "import eventlet; eventlet.monkey_patch(); spawn, sleep = eventlet.spawn, eventlet.sleep"],
                         ids=["gevent", "eventlet"])
def test_a_program_monkey_patched_before_the_runtime_gets_green_vsock_sockets(program_dir, patch):
    """A gevent or eventlet program patches the socket module first thing, then imports its (ported)
    modules, so socket.socket (and, with gevent, socket.SocketType) is the framework's class before the
    runtime is imported. The ported calls make sockets of that class, of the vsock family, as the
    program's own calls did: a plain socket's accept() would block every green thread (the spawned
    accept below would never let the main one go on), and 'localhost' is bound as on any socket."""
    (program_dir / "patched.py").write_text(patch + textwrap.dedent("""
        import socket
        from vsock_runtime import VMCISock_GetAFValue, vsock_socket, create_vsock_server
        afVMCI = VMCISock_GetAFValue()
        sock = vsock_socket(afVMCI, socket.SOCK_STREAM)
        sock.bind(("localhost", 0))
        sock.listen()
        server = create_vsock_server(("", 0))
        waiting = spawn(sock.accept)
        sleep(0.2)
        six = vsock_socket(socket.AF_INET6, socket.SOCK_STREAM)
        six.bind(("::", 0))
        print(type(sock) is socket.socket, type(server) is socket.socket, sock.family == afVMCI == server.family,
              sock.getsockname()[0], type(server.getsockname()[0]) is str, six.getsockname()[0], "went on")
    """))
    done = subprocess.run([sys.executable, "-W", "ignore::DeprecationWarning", "patched.py"], cwd=program_dir,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "True", "True", "0.0.0.0", "True", "::", "went", "on"]


def test_eventlet_green_socket(program_dir):
    assert run(program_dir, """
        from eventlet.greenio import GreenSocket
        green = GreenSocket(listener)
        print(green.getsockname() == (HOST, PORT), green.family == afVMCI)
    """) == ["True", "True"]


def test_stdlib_servers_serve_vsock(program_dir):
    """socketserver, http.server and wsgiref servers made by vsock_server_class: their socket is a
    plain vsock socket and their addresses are strings."""
    assert run(program_dir, """
        import http.server, socketserver
        from wsgiref.simple_server import WSGIServer, WSGIRequestHandler
        from vsock_runtime import vsock_server_class
        for cls in (socketserver.TCPServer, http.server.ThreadingHTTPServer, WSGIServer):
            server = vsock_server_class(cls)(("", 0), WSGIRequestHandler if cls is WSGIServer else socketserver.BaseRequestHandler)
            host, port = server.server_address
            print(type(server.socket) is socket.socket and server.socket.family == afVMCI and type(host) is str,
                  isinstance(server, cls))
            server.server_close()
    """) == ["True", "True"] * 3


def test_methods_read_from_the_class_still_pick_by_family(program_dir):
    """A socket subclass that calls its base unbound (httplib2's SocksiPy: `_orgsocket = socket.socket`,
    then `_orgsocket.connect(self, (host, port))`), a method kept from the class (`bind =
    socket.socket.bind`), and a test's `mock.patch("socket.socket.connect", spec=True)` (here bind's):
    the class's method is a callable that takes the vsock family's addresses for vsock sockets,
    CPython's for others."""
    assert run(program_dir, """
        from unittest import mock

        class Wrapper(socket.socket):
            def bind(self, address):
                socket.socket.bind(self, address)

        wrapped = Wrapper(afVMCI, socket.SOCK_STREAM)
        wrapped.bind(("0.0.0.0", 0))
        kept = socket.socket.getsockname
        print(kept(wrapped) == wrapped.getsockname(), kept(wrapped)[0], 49152 <= kept(wrapped)[1] <= 65535)
        tcp = socket.socket()
        socket.socket.bind(tcp, ("127.0.0.1", 0))
        print(kept(tcp)[0], socket.socket.connect.__name__, callable(socket.socket.connect))
        # bind, not connect: should the mock not apply, nothing on this machine is dialled
        with mock.patch("socket.socket.bind", spec=True) as bind:
            bind.side_effect = OSError(98, "in use, says the mock")
            try:
                vsock_socket(afVMCI, socket.SOCK_STREAM).bind(("0.0.0.0", 0))
            except OSError as refused:
                print(refused.strerror.replace(" ", "-"))
    """) == ["True", "0.0.0.0", "True", "127.0.0.1", "connect", "True", "in-use,-says-the-mock"]


def test_other_families_meet_cpython_alone(program_dir):
    """A TCP socket's methods are CPython's own C methods (no runtime frame in their tracebacks, the same
    errors and results), before and after the runtime taught socket.socket the vsock family; called
    unbound from the class, they give CPython's results and errors too."""
    assert run(program_dir, """
        import traceback
        tcp = socket.socket()
        errors = []
        for method in (socket.socket.bind, socket.SocketType.bind):
            try:
                method(tcp, ("256.1.1.1", 1))
            except OSError as exc:
                errors.append((type(exc), exc.args))
        print(type(tcp.connect).__name__, len(errors) == 2 and errors[0] == errors[1])
        try:
            tcp.bind(("256.1.1.1", 1))
        except OSError as exc:
            print([frame.name for frame in traceback.extract_tb(exc.__traceback__)] == ["<module>"], type(exc).__name__)
        tcp.bind(("127.0.0.1", 0))
        print(type(tcp.getsockname()[0]) is str)
    """) == ["builtin_function_or_method", "True", "True", "gaierror", "True"]


def test_a_send_on_a_socket_never_connected_is_enotconn_where_tcp_says_epipe(program_dir):
    """What vsock does differently (README): code that tells a closed socket by EPIPE (eventlet's TLS layer
    on a socket it never connected) meets ENOTCONN. No connection is made: the kernel answers at once."""
    assert run(program_dir, """
        import errno
        for made in (vsock_socket(afVMCI, socket.SOCK_STREAM), socket.socket(socket.AF_INET, socket.SOCK_STREAM)):
            try:
                made.sendall(b"")
            except OSError as exc:
                print(errno.errorcode[exc.errno])
    """) == ["ENOTCONN", "EPIPE"]


def test_one_port_bound_in_both_ip_families(program_dir):
    """TCP has a loopback and a wildcard address per IP family, and programs bind a port in both: a
    free-port finder that checks 127.0.0.1:P and [::1]:P (anyio's free_tcp_port, which looped forever when
    the second bind failed), a dual-stack server on 0.0.0.0:P and [::]:P. On vsock both are one CID: the
    second socket becomes the first (bound, listening, each reporting its own shape). What conflicts on
    TCP still does: two sockets of one shape, and the wildcards without IPV6_V6ONLY."""
    assert run(program_dir, """
        import errno
        v4 = vsock_socket(socket.AF_INET, socket.SOCK_STREAM)
        v4.bind(("0.0.0.0", 0))
        port = v4.getsockname()[1]
        v6 = vsock_socket(socket.AF_INET6, socket.SOCK_STREAM)
        try:
            v6.bind(("::", port))  # Linux's [::] takes IPv4 too: on TCP this conflicts with 0.0.0.0:P
        except OSError as exc:
            print(errno.errorcode[exc.errno])
        v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        v6.bind(("::", port))
        v4.listen()
        v6.listen()
        print(v4.getsockname() == ("0.0.0.0", port), v6.getsockname() == ("::", port, 0, 0))
        third = vsock_socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            third.bind(("0.0.0.0", port))
        except OSError as exc:
            print(errno.errorcode[exc.errno])
        v4.close()
        print(v6.getsockname() == ("::", port, 0, 0))
    """) == ["EADDRINUSE", "True", "True", "EADDRINUSE", "True"]
