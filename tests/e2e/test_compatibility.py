"""The compatibility matrix's rows that need data, over real kernel vsock: what real code does with the
sockets a ported program makes once connections arrive. (The rows that need none run on any machine:
tests/test_compatibility.py.) Each program uses the runtime as the port writes it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from tests.test_runtime import RUNTIME

PRELUDE = """
import os, socket, sys, threading
from vsock_runtime import VMADDR_CID_ANY, VMADDR_CID_LOCAL, VMCISock_GetAFValue, vsock_socket
afVMCI = VMCISock_GetAFValue()
PORT = int(sys.argv[1])

def listening():
    listener = vsock_socket(afVMCI, socket.SOCK_STREAM)
    listener.bind((VMADDR_CID_ANY, PORT))
    listener.listen()
    return listener

def ask(message=b"ping", port=PORT):
    with vsock_socket(afVMCI, socket.SOCK_STREAM) as client:
        client.connect((VMADDR_CID_LOCAL, port))
        client.sendall(message)
        return client.recv(1024)
"""


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    made = tmp_path_factory.mktemp("matrix")
    shutil.copy(RUNTIME, made / "vsock_runtime.py")
    return made


def run(folder, port, body: str, timeout: float = 240, env: dict | None = None) -> list[str]:
    (folder / "row.py").write_text(PRELUDE + textwrap.dedent(body))
    done = subprocess.run([sys.executable, "-W", "ignore::DeprecationWarning", "row.py", str(port)], cwd=folder,
                          capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.split()


def test_accepted_sockets_and_peers(folder, port):
    assert run(folder, port, """
        listener = listening()
        def serve():
            conn, peer = listener.accept()
            with conn:
                conn.recv(16)  # (the client sends first: once this end has closed, its send fails on vsock)
                conn.sendall(b"%s %s %s" % (str(type(conn) is socket.socket).encode(), str(type(peer[0]) is str).encode(),
                                             ("%s:%d" % peer).encode()))
        threading.Thread(target=serve).start()
        print(ask().decode())
    """)[:2] == ["True", "True"]


def test_an_accepted_socket_is_the_one_the_stdlib_accept_makes(folder, port):
    """The layer's accept() (one frame for what the stdlib does in five) makes what socket.accept() makes:
    the kind and family as enums, blocking under a listener with a timeout, the default timeout where
    one is set."""
    assert run(folder, port, """
        listener = listening()
        listener.settimeout(30)
        def serve():
            for _ in range(2):
                conn, peer = listener.accept()
                with conn:
                    conn.recv(16)  # (a send to a peer that has closed fails on vsock)
                    family = conn.family == afVMCI and isinstance(conn.family, socket.AddressFamily)
                    seen = (type(conn).__name__, family, conn.type is socket.SOCK_STREAM, conn.proto, conn.gettimeout())
                    conn.sendall(repr(seen).replace(" ", "").encode())
        threading.Thread(target=serve).start()
        print(ask().decode())
        socket.setdefaulttimeout(7)
        print(ask().decode())
    """) == ["('socket',True,True,0,None)", "('socket',True,True,0,7.0)"]


def test_wsgiref_validate_accepts_the_environ(folder, port):
    """wsgiref.validate checks `type(environ[key]) is str` for REMOTE_ADDR and the rest."""
    assert run(folder, port, """
        import http.client
        from wsgiref.validate import validator
        from vsock_runtime import vsock_client_class, vsock_make_server

        def app(environ, start_response):
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [("remote %s" % environ["REMOTE_ADDR"]).encode()]

        server = vsock_make_server("", PORT, validator(app))
        threading.Thread(target=server.handle_request).start()
        conn = vsock_client_class(http.client.HTTPConnection)("localhost", PORT, timeout=60)
        conn.request("GET", "/")
        response = conn.getresponse()
        print(response.status, response.read().decode())
    """) == ["200", "remote", "127.0.0.1"]  # the client's CID (1 over loopback, read as TCP names it), a str


def test_a_worker_process_serves_on_a_handed_off_listener(folder, port):
    """uvicorn --workers and gunicorn-style pre-fork servers hand the listener to spawned workers."""
    assert run(folder, port, """
        import multiprocessing

        def worker(sock):
            conn, peer = sock.accept()
            with conn:
                conn.sendall(b"worker " + conn.recv(16) + b" " + str(type(peer[0]) is str).encode())

        if __name__ == "__main__":
            listener = listening()
            child = multiprocessing.get_context("spawn").Process(target=worker, args=(listener,))
            child.start()
            print(ask(b"pong").decode())
            child.join()
    """) == ["worker", "pong", "True"]


def test_asyncio_transport_socket_takes_tcp_options(folder, port):
    """What asyncpg's compiled protocol does on every connection: TCP_NODELAY on the transport's socket."""
    assert run(folder, port, """
        import asyncio
        from vsock_runtime import vsock_open_connection, vsock_start_server

        async def handle(reader, writer):
            writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            host, _ = writer.get_extra_info("peername")
            writer.write(await reader.read(16) + b" " + str(type(host) is str).encode())
            await writer.drain()
            writer.close()

        async def main():
            server = await vsock_start_server(handle, "0.0.0.0", PORT)
            reader, writer = await vsock_open_connection("localhost", PORT)
            writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            writer.write(b"async")
            print((await reader.read(64)).decode())
            server.close()

        asyncio.run(main())
    """) == ["async", "True"]


def test_trio_serves_a_wrapped_listener(folder, port):
    assert run(folder, port, """
        import trio

        async def main():
            listener = trio.socket.from_stdlib_socket(listening())
            async def serve():
                conn, peer = await listener.accept()
                await conn.send(b"trio " + await conn.recv(16))
                conn.close()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(serve)
                print((await trio.to_thread.run_sync(ask, b"ok")).decode())

        trio.run(main)
    """) == ["trio", "ok"]


def test_gevent_stream_server_serves(folder, port):
    """A gevent StreamServer on a green socket of the vsock family, and a green client."""
    assert run(folder, port, """
        import gevent, gevent.socket
        from gevent.server import StreamServer

        def handle(sock, address):
            sock.sendall(b"gevent " + sock.recv(16) + b" " + str(type(address[0]) is str).encode())

        server = StreamServer(gevent.socket.socket(fileno=listening().detach()), handle)
        server.start()
        client = gevent.socket.socket(afVMCI, socket.SOCK_STREAM)
        client.connect(("localhost", PORT))
        client.sendall(b"green")
        print(client.recv(64).decode())
        server.stop()
    """) == ["gevent", "green", "True"]


def test_a_subclass_that_connects_through_its_base_unbound(folder, port):
    """httplib2's SocksiPy: `class socksocket(socket.socket)` whose connect() calls
    `_orgsocket.connect(self, (host, port))`, the class's method read from the class."""
    assert run(folder, port, """
        _orgsocket = socket.socket

        class Wrapping(socket.socket):
            def connect(self, address):
                _orgsocket.connect(self, address)

        listener = listening()
        def serve():
            conn, _ = listener.accept()
            with conn:
                conn.sendall(b"base " + conn.recv(16))
        threading.Thread(target=serve).start()
        with Wrapping(afVMCI, socket.SOCK_STREAM) as client:
            client.connect(("localhost", PORT))
            client.sendall(b"unbound")
            print(client.recv(64).decode(), client.getpeername() == ("127.0.0.1", PORT))
    """) == ["base", "unbound", "True"]


def test_an_accepted_descriptor_adopted_as_the_port_writes_it(folder, port):
    """`socket.fromfd(fd, AF_INET, SOCK_STREAM)`, ported to vsock_fromfd, keeps the vsock family."""
    assert run(folder, port, """
        from vsock_runtime import vsock_fromfd
        listener = listening()
        def serve():
            conn, _ = listener.accept()
            adopted = vsock_fromfd(conn.fileno(), socket.AF_INET, socket.SOCK_STREAM)
            adopted.sendall(b"adopted " + str(adopted.family == afVMCI).encode() + b" " + adopted.getpeername()[0].encode())
            adopted.close(); conn.close()
        threading.Thread(target=serve).start()
        print(ask().decode())
    """) == ["adopted", "True", "127.0.0.1"]


def test_a_client_waiting_for_its_server_retries_on_a_refusal(folder, port):
    """TCP clients wait for a server to come up by retrying on ConnectionRefusedError; virtio answers a
    closed vsock port with a reset, which the runtime reports as the refusal it is, so the wait works:
    asyncio's sock_connect (a non-blocking connect and its SO_ERROR) and a blocking connect loop."""
    assert run(folder, port, """
        import asyncio, time

        def serve_later(port):
            def serve():
                listener = vsock_socket(afVMCI, socket.SOCK_STREAM)
                listener.bind((VMADDR_CID_ANY, port))
                listener.listen()
                while True:
                    listener.accept()[0].close()
            threading.Timer(0.5, serve).start()

        async def asyncio_client():
            loop = asyncio.get_running_loop()
            for attempt in range(100):
                sock = vsock_socket(afVMCI, socket.SOCK_STREAM)
                sock.setblocking(False)
                try:
                    await loop.sock_connect(sock, (VMADDR_CID_LOCAL, PORT))
                    return attempt
                except ConnectionRefusedError:
                    await asyncio.sleep(0.1)
                finally:
                    sock.close()

        def blocking_client(port):
            for attempt in range(100):
                try:
                    with vsock_socket(afVMCI, socket.SOCK_STREAM) as sock:
                        sock.connect(("localhost", port))
                    return attempt
                except ConnectionRefusedError:
                    time.sleep(0.1)

        serve_later(PORT)
        waited_asyncio = asyncio.run(asyncio_client())
        serve_later(PORT + 1)
        print(waited_asyncio > 0, blocking_client(PORT + 1) > 0)
        os._exit(0)
    """) == ["True", "True"]


def test_what_vsock_does_differently(folder, port):
    """The transport's own differences that README lists (no port can hide them): a send on a connection
    the peer closed fails at once (unless VSOCK_TCP_CLOSE=1, next row); no out-of-band data; peers are
    CIDs and ports are 32-bit; a second listener on a port is refused, SO_REUSEPORT or not; an abortive
    close reaches the peer as an orderly one; a listening socket cannot be shut down."""
    assert run(folder, port, """
        import errno, struct
        listener = listening()
        client = vsock_socket(afVMCI, socket.SOCK_STREAM)
        client.connect((VMADDR_CID_LOCAL, PORT))
        conn, peer = listener.accept()
        try:
            conn.send(b"x", socket.MSG_OOB)
        except OSError as exc:
            print(exc.errno == errno.EOPNOTSUPP)  # errorcode names 95 ENOTSUP on Linux
        conn.close()
        client.recv(1)  # b"": the peer's close has arrived
        try:
            client.send(b"after the peer closed")
        except BrokenPipeError:
            print("EPIPE")
        print(peer[0], client.getpeername()[0])
        print(49152 <= peer[1] <= 65535)  # bound before connect(): a port of the dynamic range, as TCP gives
        unported = socket.socket(afVMCI, socket.SOCK_STREAM)
        socket.SocketType.connect(unported, (VMADDR_CID_LOCAL, PORT))  # CPython's own connect: a peer not ported
        print(listener.accept()[1][1] > 0xFFFF)  # the kernel's choice, 32 bits (below 65536: 1 in 65,000)
        wide = vsock_socket(afVMCI, socket.SOCK_STREAM)
        wide.bind((VMADDR_CID_ANY, 70000 + PORT))
        print(wide.getsockname()[1] == 70000 + PORT)
        second = vsock_socket(afVMCI, socket.SOCK_STREAM)
        second.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            second.bind((VMADDR_CID_ANY, PORT))
        except OSError as exc:
            print(errno.errorcode[exc.errno])
        aborted = vsock_socket(afVMCI, socket.SOCK_STREAM)
        aborted.connect((VMADDR_CID_LOCAL, PORT))
        aborting = listener.accept()[0]
        aborting.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        aborting.close()  # TCP sends a reset: the peer's recv() raises ConnectionResetError
        print(aborted.recv(1))
        try:
            listener.shutdown(socket.SHUT_RDWR)
        except OSError as exc:
            print(errno.errorcode[exc.errno])
    """) == ["True", "EPIPE", "127.0.0.1", "127.0.0.1", "True", "True", "True", "EADDRINUSE", "b''", "ENOTCONN"]


def test_a_send_after_the_peer_closed_is_taken_once_as_on_tcp(folder, port):
    """On TCP a closed end takes its peer's next send (and answers it with a reset): the peer's first send
    after the close succeeds and only a later one fails. A vsock peer's first send fails at once (EPIPE);
    with VSOCK_TCP_CLOSE=1 the runtime keeps a closed connection's descriptor until the peer sends or
    closes (runtime section 4). Both directions; the kept descriptors are closed; a duplicated socket,
    whose other holder still sends, is closed at once (a shutdown would reach it); a connection open
    when the process forked is closed at once too (the child still sends on it)."""
    assert run(folder, port, """
        import time
        listener = listening()
        def fails(sock, data):
            for _ in range(50):  # the closed end's answer takes a moment to arrive, as TCP's reset does
                try:
                    sock.send(data)
                except (BrokenPipeError, ConnectionResetError):
                    return "fails"
                time.sleep(0.05)
            return "still sends"
        def sockets():
            found = 0
            for fd in os.listdir("/proc/self/fd"):
                try:
                    found += os.readlink("/proc/self/fd/" + fd).startswith("socket:")
                except FileNotFoundError:  # closed since (the closing thread's work)
                    pass
            return found
        before = sockets()
        for closing in ("server", "client"):
            client = vsock_socket(afVMCI, socket.SOCK_STREAM)
            client.connect((VMADDR_CID_LOCAL, PORT))
            conn = listener.accept()[0]
            closed, peer = (conn, client) if closing == "server" else (client, conn)
            closed.close()
            print(closing, peer.recv(16), peer.send(b"first send"), fails(peer, b"later send"))
            peer.close()
        time.sleep(0.5)
        print(sockets() - before)  # the kept descriptors are closed
        client = vsock_socket(afVMCI, socket.SOCK_STREAM)
        client.connect((VMADDR_CID_LOCAL, PORT))
        conn = listener.accept()[0]
        other = conn.dup()
        conn.close()
        other.sendall(b"still open")
        print(client.recv(16))
        client = vsock_socket(afVMCI, socket.SOCK_STREAM)
        client.connect((VMADDR_CID_LOCAL, PORT))
        conn = listener.accept()[0]
        child = os.fork()
        if child == 0:  # a forking server's child: it serves the connection the parent closes
            time.sleep(0.3)
            conn.sendall(b"from the child")
            os._exit(0)
        conn.close()
        os.waitpid(child, 0)
        print(client.recv(16))
    """, env={"VSOCK_TCP_CLOSE": "1"}) == ["server", "b''", "10", "fails", "client", "b''", "10", "fails", "0", "b'still",
                                          "open'", "b'from", "the", "child'"]


def test_a_program_that_asks_for_ipv6_reads_ipv6_shaped_addresses(folder, port):
    """A dual-stack server's AF_INET6 socket bound to "::", and an AF_INET6 client of "::1": the accepted
    peer, the accepted socket's own address and the client's are (host, port, 0, 0), "::1" for the
    loopback CID, as the program unpacks them; the data flows over vsock."""
    assert run(folder, port, """
        listener = vsock_socket(socket.AF_INET6, socket.SOCK_STREAM)
        listener.bind(("::", PORT))
        listener.listen()
        client = vsock_socket(socket.AF_INET6, socket.SOCK_STREAM)
        client.connect(("::1", PORT))
        conn, peer = listener.accept()
        host, client_port, flowinfo, scope_id = peer
        print(host, flowinfo, scope_id, conn.family == client.family == afVMCI)
        print(conn.getsockname() == ("::1", PORT, 0, 0), conn.getpeername() == peer)
        print(client.getpeername() == ("::1", PORT, 0, 0), client.getsockname() == ("::1", client_port, 0, 0))
        client.sendall(b"six")
        print(conn.recv(3).decode())
    """) == ["::1", "0", "0", "True", "True", "True", "True", "True", "six"]


def test_a_connected_clients_own_address_is_the_one_its_peer_sees(folder, port):
    """The kernel keeps the wildcard CID it bound a client to at connect(); TCP reports the address the
    connection uses, and programs read it (FTP's PORT, a SOCKS reply, Twisted's getHost() compared with
    what the server sees). An unconnected socket keeps the wildcard."""
    assert run(folder, port, """
        listener = listening()
        client = vsock_socket(afVMCI, socket.SOCK_STREAM)
        client.bind((VMADDR_CID_ANY, PORT + 1))
        print(client.getsockname() == ("0.0.0.0", PORT + 1), listener.getsockname() == ("0.0.0.0", PORT))
        client.connect((VMADDR_CID_LOCAL, PORT))
        conn, peer = listener.accept()
        print(client.getsockname() == peer == conn.getpeername(), peer)
        other = vsock_socket(afVMCI, socket.SOCK_STREAM)
        other.connect(("localhost", PORT))
        print(other.getsockname() == listener.accept()[1])
        import ipaddress
        print(ipaddress.ip_address(peer[0]).is_loopback)  # the loopback CID reads as TCP names the loopback
        import errno
        # An unbound client's own port fits where TCP programs put it (a SOCKS5 reply's two bytes),
        # through the common path and the non-blocking one.
        print(len(other.getsockname()[1].to_bytes(2, "big")), 49152 <= other.getsockname()[1] <= 65535)
        waiting = vsock_socket(afVMCI, socket.SOCK_STREAM)
        waiting.setblocking(False)
        print(waiting.connect_ex(("localhost", PORT)) in (0, errno.EINPROGRESS), 49152 <= waiting.getsockname()[1] <= 65535)
    """) == ["True", "True", "True", "('127.0.0.1',", "%d)" % (port + 1), "True", "True", "2", "True", "True", "True"]


def test_a_refused_non_blocking_connect_polls_without_input(folder, port):
    """README's difference: a non-blocking connect to a port nobody listens on polls as EPOLLERR|EPOLLOUT,
    where TCP adds EPOLLIN|EPOLLHUP. Loops that read SO_ERROR once writable see the refusal (asyncio,
    tornado, the layer's SO_ERROR says ECONNREFUSED); a loop that takes an error without input for a clean
    close (Twisted's poll and epoll reactors) reports ConnectionDone."""
    assert run(folder, port, """
        import errno, select
        client = vsock_socket(afVMCI, socket.SOCK_STREAM)
        client.setblocking(False)
        print(errno.errorcode[client.connect_ex((VMADDR_CID_LOCAL, PORT))])
        poller = select.epoll()
        poller.register(client, select.EPOLLIN | select.EPOLLOUT)
        [(fd, events)] = poller.poll(30)
        print(bool(events & select.EPOLLERR), bool(events & select.EPOLLOUT), bool(events & select.EPOLLIN),
              bool(events & select.EPOLLHUP))
        print(errno.errorcode[client.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)])
    """) == ["EINPROGRESS", "True", "True", "False", "False", "ECONNREFUSED"]

def test_a_shutdown_after_the_peer_closed_keeps_the_end_of_stream(folder, port):
    """TCP: once the peer has closed, shutdown() and recv() give b"" (end of stream). Linux vsock alone
    forgets the orderly close at shutdown() and fails recv() with ENOTCONN, which green frameworks read
    as "not connected yet" and wait on forever (eventlet's WSGI server shuts its idle connections down
    on exit). The runtime keeps TCP's answer, and a half-closed peer still sees the shutdown."""
    assert run(folder, port, """
        import errno, time
        listener = listening()
        def pair():
            client = vsock_socket(afVMCI, socket.SOCK_STREAM)
            client.connect((VMADDR_CID_LOCAL, PORT))
            return client, listener.accept()[0]
        client, conn = pair()
        client.close()
        time.sleep(0.2)
        conn.shutdown(socket.SHUT_RDWR)
        print(conn.recv(10) == b"")
        plain = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)  # what a hand port sees: the kernel's own
        plain.connect((VMADDR_CID_LOCAL, PORT))
        accepted = listener.accept()[0]
        socket.SocketType.close(plain)  # the kernel's own close, as a process without the runtime closes
        time.sleep(0.2)
        socket.SocketType.shutdown(accepted, socket.SHUT_RDWR)
        try:
            accepted.recv(10)
        except OSError as exc:
            print(errno.errorcode[exc.errno])
        client, conn = pair()
        client.shutdown(socket.SHUT_WR)  # half closed: it still reads
        time.sleep(0.2)
        conn.shutdown(socket.SHUT_WR)
        print(client.recv(10) == b"", conn.recv(10) == b"")
    """) == ["True", "ENOTCONN", "True", "True"]


def test_a_waitall_read_larger_than_the_receive_buffer(folder, port):
    """Linux vsock refuses recv(n, MSG_WAITALL) with n at least the receive buffer (256 KiB) with ENOMEM,
    where TCP waits for all n bytes (Pyro5 reads each message so). vsock_recv(), which VS020 writes for
    such reads, gets all of them; vsock_recv_into() fills the buffer; with a timeout, one part."""
    seen = run(folder, port, """
        import errno
        from vsock_runtime import vsock_recv, vsock_recv_into
        SIZE = 999_999
        listener = listening()
        def serve():
            conn, _ = listener.accept()
            with conn:
                for _ in range(2):
                    conn.sendall(bytes(range(256)) * (SIZE // 256) + b"x" * (SIZE % 256))
                conn.sendall(b"y" * 1000)
                conn.recv(1)  # (the client closes first)
        threading.Thread(target=serve).start()
        with vsock_socket(afVMCI, socket.SOCK_STREAM) as client:
            client.connect((VMADDR_CID_LOCAL, PORT))
            try:
                client.recv(SIZE, socket.MSG_WAITALL)
            except OSError as error:
                print("cpython", error.errno == errno.ENOMEM)
            whole = vsock_recv(client, SIZE, socket.MSG_WAITALL)
            print("recv", len(whole), whole[:256] == bytes(range(256)), whole[-1:] == b"x")
            buffer = bytearray(SIZE)
            print("recv_into", vsock_recv_into(client, buffer, 0, socket.MSG_WAITALL), buffer[-1:] == b"x")
            client.settimeout(10)
            part = vsock_recv(client, SIZE, socket.MSG_WAITALL)
            print("timeout", 0 < len(part) <= 1000)
    """)
    assert seen == ["cpython", "True", "recv", "999999", "True", "True", "recv_into", "999999", "True",
                    "timeout", "True"]
