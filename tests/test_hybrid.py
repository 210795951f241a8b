"""The runtime's hybrid-vsock host side (Firecracker, Cloud Hypervisor) on this machine's real Unix
sockets. The VMM end is `VmmEnd` below: the published protocol's VMM half (docs/vsock.md of both
VMMs) with a scripted answer, so each failure case can be produced on demand; the stand-in muxer that
forwards to a real guest vsock port is tested in the sandbox (tests/e2e/test_hybrid.py)."""

from __future__ import annotations

import asyncio
import errno
import os
import selectors
import socket
import socketserver
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.test_runtime import fresh_registry, load_runtime  # noqa: F401 (a fixture)

HOST_PORT = 1073741824  # the first host-side port Firecracker hands out


class VmmEnd:
    """The VMM's side of host-initiated connections on `path`: reads the CONNECT line a byte at a time
    and answers with `reply(port)` (None: close without answering), after `delay` seconds, then sends
    `greeting` (the guest speaking first) and echoes what it gets."""

    def __init__(self, path: Path, reply=lambda port: b"OK %d\n" % HOST_PORT, delay: float = 0.0,
                 greeting: bytes = b""):
        self.path, self.reply, self.delay, self.greeting = str(path), reply, delay, greeting
        self.lines: list[bytes] = []
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.path)
        self.listener.listen(8)
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn):
        with conn:
            line = b""
            while not line.endswith(b"\n"):
                byte = conn.recv(1)
                if not byte:
                    return
                line += byte
            self.lines.append(line)
            answer = self.reply(int(line.split()[1]))
            time.sleep(self.delay)
            if answer is None:
                return
            try:
                conn.sendall(answer + self.greeting)  # in one segment: the reply line must be read exactly
                while data := conn.recv(4096):
                    conn.sendall(data.upper())
            except OSError:
                pass  # the client gave up first (the timeout cases)

    def close(self):
        self.listener.close()


@pytest.fixture
def rt(fresh_registry):
    return load_runtime("native")


@pytest.fixture
def uds(tmp_path, monkeypatch):
    path = tmp_path / "fc.vsock"
    monkeypatch.setenv("VSOCK_CID_MAP", f"guest1=unix:{path},db=3")
    return path


def test_connect_speaks_connect_and_ok_and_loses_no_byte(rt, uds):
    vmm = VmmEnd(uds, greeting=b"hello from the guest\n")
    sock = rt.vsock_socket(socket.AF_INET, socket.SOCK_STREAM)
    fd = sock.fileno()
    sock.connect(("guest1", 5000))
    assert vmm.lines == [b"CONNECT 5000\n"]
    assert sock.fileno() == fd and type(sock) is socket.socket
    assert sock.makefile("rb").readline() == b"hello from the guest\n"
    sock.sendall(b"ping")
    assert sock.recv(10) == b"PING"
    assert sock.getpeername() == ("guest1", 5000)
    assert sock.getsockname() == ("2", HOST_PORT)
    sock.close()
    vmm.close()


@pytest.mark.parametrize("mode", ["blocking", "timeout", "non-blocking"])
def test_every_socket_mode_connects_and_keeps_its_mode(rt, uds, mode):
    vmm = VmmEnd(uds)
    sock = rt.vsock_socket()
    wanted = {"blocking": None, "timeout": 3.0, "non-blocking": 0.0}[mode]
    sock.settimeout(wanted)
    assert sock.connect_ex(("guest1", 7)) == 0
    assert sock.gettimeout() == wanted and os.get_blocking(sock.fileno()) == (wanted is None)
    sock.setblocking(True)
    sock.sendall(b"abc")
    assert sock.recv(3) == b"ABC"
    sock.close()
    vmm.close()


def test_no_listener_in_the_guest_is_refused_naming_path_and_port(rt, uds):
    vmm = VmmEnd(uds, reply=lambda port: None)
    with pytest.raises(ConnectionRefusedError) as raised:
        rt.vsock_socket().connect(("guest1", 5000))
    assert f"{uds} port 5000" in str(raised.value) and "nothing listens on that port in the guest" in str(raised.value)
    assert rt.vsock_socket().connect_ex(("guest1", 5000)) == errno.ECONNREFUSED
    vmm.close()


def test_a_malformed_reply_is_refused_and_says_what_came(rt, uds):
    vmm = VmmEnd(uds, reply=lambda port: b"ERR no\n")
    with pytest.raises(ConnectionRefusedError, match=r"port 9: the VMM answered b'ERR no\\n'"):
        rt.create_vsock_connection(("guest1", 9))
    vmm.close()


def test_a_slow_ok_times_out_with_the_socket_timeout_or_the_documented_default(rt, uds, monkeypatch):
    vmm = VmmEnd(uds, delay=3.0)
    sock = rt.vsock_socket()
    sock.settimeout(0.3)
    started = time.monotonic()
    with pytest.raises(TimeoutError) as raised:
        sock.connect(("guest1", 5000))
    assert time.monotonic() - started < 2.0 and raised.value.errno == errno.ETIMEDOUT
    assert f"{uds} port 5000: no reply from the VMM within 0.3 s" in str(raised.value)
    monkeypatch.setenv("VSOCK_HYBRID_TIMEOUT", "0.2")
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        rt.vsock_socket().connect(("guest1", 5000))  # a blocking socket: the default bounds the reply
    assert time.monotonic() - started < 2.0
    vmm.close()


def test_a_missing_vmm_socket_is_named(rt, uds):
    with pytest.raises(ConnectionRefusedError, match=r"cannot reach the VMM's socket .*uds_path"):
        rt.vsock_socket().connect(("guest1", 5000))


def test_which_hosts_are_hybrid(rt, uds, monkeypatch):
    assert rt.vsock_cid("db") == 3 and rt.vsock_cid("localhost") == rt.VMADDR_CID_LOCAL
    assert rt.vsock_cid("GUEST1").path == str(uds)
    assert rt.vsock_cid(f"unix:{uds}").path == str(uds)  # written in the source: no map needed
    monkeypatch.setenv("VSOCK_CID_MAP", f"db=3,*=unix:{uds}")
    for host in ("localhost", "", "0.0.0.0", "anything.example"):
        assert rt.vsock_cid(host).path == str(uds) and rt.vsock_bind_cid(host).path == str(uds)
    assert rt.vsock_cid("db") == 3 and rt.vsock_cid(17).path == str(uds)  # "*" is every host, CIDs too
    assert rt.vsock_bind_cid(rt.VMADDR_CID_ANY) == "0.0.0.0" and rt.vsock_cid(17) == "17"
    monkeypatch.setenv("VSOCK_CID_MAP", f"3=unix:{uds}")  # the guest's CID (Firecracker's guest_cid)
    assert rt.vsock_cid(3).path == str(uds) and rt.vsock_cid("3").path == str(uds) and rt.vsock_cid(4) == 4
    monkeypatch.setenv("VSOCK_CID_MAP", f"db=3,*=unix:{uds}")
    entry = rt.vsock_getaddrinfo("localhost", 6379, 0, socket.SOCK_STREAM)[0]
    assert entry[0] == socket.AF_INET and entry[4] == ("localhost", 6379) and type(entry[4][0]) is str


def test_a_server_for_guests_listens_on_uds_path_port(rt, uds, monkeypatch):
    monkeypatch.setenv("VSOCK_CID_MAP", f"*=unix:{uds}")
    server = rt.vsock_socket()
    server.bind(("0.0.0.0", 7000))
    server.listen()
    path = Path(f"{uds}_7000")
    assert path.is_socket() and server.getsockname() == ("0.0.0.0", 7000)
    guest = socket.socket(socket.AF_UNIX)  # what the VMM does when the guest connects to port 7000
    guest.connect(str(path))
    guest.sendall(b"raw, no preamble")
    conn, peer = server.accept()
    assert peer == (f"unix:{uds}", 0) and conn.getpeername() == peer and type(conn) is socket.socket
    assert conn.recv(100) == b"raw, no preamble"
    conn.close()
    guest.close()
    server.close()
    assert not path.exists()  # its own socket file goes with the listener


def test_stale_socket_files_are_replaced_and_other_files_never_touched(rt, uds, monkeypatch):
    monkeypatch.setenv("VSOCK_CID_MAP", f"*=unix:{uds}")
    dead = socket.socket(socket.AF_UNIX)
    dead.bind(f"{uds}_7001")
    dead.close()  # a listener that died: its file stays
    server = rt.vsock_socket()
    server.bind(("", 7001))
    server.listen()
    with pytest.raises(OSError) as raised:
        rt.vsock_socket().bind(("", 7001))  # a live listener holds it
    assert raised.value.errno == errno.EADDRINUSE and "another listener" in str(raised.value)
    server.close()
    Path(f"{uds}_7002").write_text("user data")
    with pytest.raises(OSError) as raised:
        rt.vsock_socket().bind(("", 7002))
    assert raised.value.errno == errno.EADDRINUSE and "is not a socket" in str(raised.value)
    assert Path(f"{uds}_7002").read_text() == "user data"
    with pytest.raises(OSError, match="needs a fixed port"):
        rt.vsock_socket().bind(("", 0))


def test_socketserver_serves_guests_on_the_hybrid_socket(rt, uds, monkeypatch):
    monkeypatch.setenv("VSOCK_CID_MAP", f"*=unix:{uds}")

    class Upper(socketserver.StreamRequestHandler):
        def handle(self):
            self.wfile.write(self.rfile.readline().upper() + repr(self.client_address).encode())

    server = rt.vsock_server_class(socketserver.TCPServer)(("localhost", 7003), Upper)
    threading.Thread(target=server.handle_request, daemon=True).start()
    guest = socket.socket(socket.AF_UNIX)
    guest.connect(f"{uds}_7003")
    guest.sendall(b"hi\n")
    guest.shutdown(socket.SHUT_WR)
    answer = b"".join(iter(lambda: guest.recv(100), b""))
    assert answer == b"HI\n" + repr((f"unix:{uds}", 0)).encode()
    guest.close()
    server.server_close()


def test_asyncio_both_ends(rt, uds, monkeypatch):
    vmm = VmmEnd(uds, greeting=b"G")

    async def client():
        reader, writer = await rt.vsock_open_connection("guest1", 6000)
        first = await reader.readexactly(1)
        writer.write(b"x")
        echoed = await reader.readexactly(1)
        peer = writer.get_extra_info("peername")
        writer.close()
        return first, echoed, peer

    assert asyncio.run(client()) == (b"G", b"X", ("guest1", 6000))
    vmm.close()
    monkeypatch.setenv("VSOCK_CID_MAP", f"*=unix:{uds}")

    async def server():
        async def handle(reader, writer):
            writer.write((await reader.readline()).upper())
            await writer.drain()
            writer.close()

        srv = await rt.vsock_start_server(handle, "", 7004)
        guest = socket.socket(socket.AF_UNIX)
        guest.setblocking(False)
        loop = asyncio.get_running_loop()
        await loop.sock_connect(guest, f"{uds}_7004")
        await loop.sock_sendall(guest, b"async\n")
        answer = await asyncio.wait_for(loop.sock_recv(guest, 100), 5)
        guest.close()
        srv.close()
        await srv.wait_closed()
        return answer

    assert asyncio.run(server()) == b"ASYNC\n"


def test_asyncio_refusal_and_timeout_name_path_and_port(rt, uds, monkeypatch):
    vmm = VmmEnd(uds, reply=lambda port: None)
    with pytest.raises(ConnectionRefusedError, match=f"{uds} port 6001"):
        asyncio.run(rt.vsock_open_connection("guest1", 6001))
    vmm.close()
    os.unlink(uds)
    VmmEnd(uds, delay=3.0)
    monkeypatch.setenv("VSOCK_HYBRID_TIMEOUT", "0.3")

    async def connect():
        return await rt.vsock_loop_create_connection(asyncio.get_running_loop(), asyncio.Protocol, "guest1", 6002)

    with pytest.raises(TimeoutError, match=f"{uds} port 6002: no reply"):
        asyncio.run(connect())


def test_a_selectors_client(rt, uds):
    vmm = VmmEnd(uds)
    sock = rt.vsock_socket()
    sock.setblocking(False)
    assert sock.connect_ex(("guest1", 80)) in (0, errno.EINPROGRESS)
    with selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_WRITE)
        assert selector.select(5)
        sock.send(b"sel")
        selector.modify(sock, selectors.EVENT_READ)
        assert selector.select(5)
        assert sock.recv(10) == b"SEL"
    sock.close()
    vmm.close()


def test_a_ported_host_program_reaches_the_guest_with_zero_manual_edits(tmp_path, uds):
    """The CLI ports a plain TCP client; run with VSOCK_CID_MAP naming the VMM's socket, it speaks the
    hybrid protocol without vsockport installed."""
    vmm = VmmEnd(uds, greeting=b"ready\n")
    program = tmp_path / "client.py"
    program.write_text("import socket\n\n"
                       "s = socket.create_connection(('localhost', 5005), timeout=5)\n"
                       "print(s.recv(6).decode(), end='')\n"
                       "s.sendall(b'hello')\n"
                       "print(s.recv(5).decode())\n")
    done = subprocess.run([sys.executable, "-m", "vsockport", "rewrite", "--isolated", str(tmp_path)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    env = {**os.environ, "VSOCK_CID_MAP": f"*=unix:{uds}"}
    ran = subprocess.run([sys.executable, "-S", str(program)], cwd=tmp_path, capture_output=True, text=True,
                         env=env, timeout=30)
    assert (ran.returncode, ran.stdout) == (0, "ready\nHELLO\n"), ran.stderr
    assert vmm.lines == [b"CONNECT 5005\n"]
    vmm.close()


def test_cid_option_can_name_the_vmm_socket_at_port_time(tmp_path):
    """`--cid guest1=unix:PATH` writes the VMM's socket into the ported source: no map at run time."""
    uds = tmp_path / "vm.vsock"
    vmm = VmmEnd(uds, greeting=b"hi")
    program = tmp_path / "client.py"
    program.write_text("import socket\ns = socket.socket()\ns.connect(('guest1', 52))\nprint(s.recv(2).decode())\n")
    done = subprocess.run([sys.executable, "-m", "vsockport", "rewrite", "--isolated", "--cid", f"guest1=unix:{uds}",
                           str(program)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert f"s.connect(({str(f'unix:{uds}')!r}, 52))" in program.read_text()
    env = {k: v for k, v in os.environ.items() if k != "VSOCK_CID_MAP"}
    ran = subprocess.run([sys.executable, "-S", str(program)], cwd=tmp_path, capture_output=True, text=True, env=env,
                         timeout=30)
    assert (ran.returncode, ran.stdout) == (0, "hi\n"), ran.stderr
    vmm.close()
    bad = subprocess.run([sys.executable, "-m", "vsockport", "diff", "--isolated", "--cid", "guest1=unix:", str(program)],
                         capture_output=True, text=True)
    assert bad.returncode == 4 and "needs the VMM's socket path" in bad.stderr and "Traceback" not in bad.stderr


class HttpVmmEnd(VmmEnd):
    """The VMM end with a one-request HTTP server behind it, in the guest."""

    def _one(self, conn):
        with conn:
            line = b""
            while not line.endswith(b"\n"):
                line += conn.recv(1)
            self.lines.append(line)
            conn.sendall(b"OK %d\n" % HOST_PORT)
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                request += chunk
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\nfine")


def test_stdlib_http_client_over_the_hybrid_socket(rt, uds):
    """http.client sets TCP_NODELAY: a hybrid socket takes TCP-level options as a vsock socket does
    (a documented no-op), where the Unix socket under it would say EOPNOTSUPP."""
    import http.client

    vmm = HttpVmmEnd(uds)
    connection = rt.vsock_client_class(http.client.HTTPConnection)("guest1", 8080, timeout=5)
    connection.request("GET", "/status")
    response = connection.getresponse()
    assert (response.status, response.read()) == (200, b"fine")
    assert vmm.lines == [b"CONNECT 8080\n"]
    sock = rt.vsock_socket()
    sock.connect(("guest1", 8080))
    assert sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1) is None
    assert rt.setsockopt_or_skip(sock, socket.IPPROTO_TCP, socket.TCP_NODELAY, 1) is False
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)  # socket-level options are the Unix socket's
    sock.close()
    vmm.close()


def test_a_host_without_af_vsock_still_makes_hybrid_sockets(rt, uds, monkeypatch):
    """Firecracker's and Cloud Hypervisor's hosts may have no AF_VSOCK at all. This machine has it, so
    its absence is stood in for by the one function that reports it (_family_value(), which
    VMCISock_GetAFValue() returns, == -1) and the flag vsock_socket()'s one-step path reads."""
    monkeypatch.setattr(rt, "_family_value", lambda: -1)
    monkeypatch.setattr(rt, "_af_known", False)
    with pytest.raises(OSError, match="no vSockets address family"):
        rt.vsock_socket()  # no hybrid map: the usual explained error
    monkeypatch.setenv("VSOCK_CID_MAP", f"*=unix:{uds}")
    vmm = VmmEnd(uds, greeting=b"up")
    client = rt.create_vsock_connection(("localhost", 22), timeout=5)
    assert client.family == socket.AF_UNIX and client.recv(2) == b"up"
    client.close()
    vmm.close()
    server = rt.create_vsock_server(("", 7005))
    assert Path(f"{uds}_7005").is_socket() and server.getsockname() == ("", 7005)
    server.close()
