"""Both ends of a microVM system on Firecracker / Cloud Hypervisor's hybrid vsock, in the sandbox.

The VMM is vsockport's stand-in muxer (vsockport/sandbox/muxer.py; Firecracker and Cloud Hypervisor
need KVM, which CI does not have): it speaks the protocol of their docs/vsock.md between Unix sockets
and this guest's vsock loopback. Its own protocol tests come first, with raw sockets and no vsockport
code; then programs ported with zero manual edits run as the guest side (AF_VSOCK) and as the host
side (the VMM's Unix sockets, chosen at run time by VSOCK_CID_MAP='*=unix:PATH').
"""

from __future__ import annotations

import errno
import re
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from tests.e2e.conftest import ROOT, program, python, running
from tests.e2e.test_real_programs import curl_through_socat, tcp_peer_over_vsock

MUXER = ROOT / "vsockport" / "sandbox" / "muxer.py"


@pytest.fixture
def ports(port):
    """Ten vsock ports of this test's own."""
    base = 30000 + (port % 1000) * 10
    return list(range(base, base + 10))


@contextmanager
def muxer(uds: Path, *args: str) -> Iterator[subprocess.Popen]:
    proc = subprocess.Popen([sys.executable, str(MUXER), str(uds), *args], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not uds.is_socket():
            assert proc.poll() is None and time.monotonic() < deadline, f"muxer did not start: {proc.stderr.read()}"
            time.sleep(0.05)
        yield proc
    finally:
        proc.kill()
        proc.wait()


def vsock_listener(port: int) -> socket.socket:
    server = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    server.bind((socket.VMADDR_CID_ANY, port))
    server.listen(4)
    return server


def host_connect(uds: Path, line: bytes, timeout: float = 10) -> tuple[socket.socket, bytes]:
    """A raw host-side client: connect to the VMM, send `line`, read the reply up to its newline."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.connect(str(uds))
    sock.sendall(line)
    reply = b""
    while not reply.endswith(b"\n"):
        byte = sock.recv(1)
        if not byte:
            break
        reply += byte
    return sock, reply


# --- the stand-in muxer against the protocol text --------------------------------------------------

def test_muxer_host_initiated_connect_ok_and_a_byte_pipe(tmp_path, ports):
    """'connect to uds_path, send CONNECT <port>\\n, read OK <host_side_port>\\n; from then on the
    stream is a byte pipe to the guest's vsock port'."""
    uds = tmp_path / "v.sock"
    with muxer(uds), vsock_listener(ports[0]) as guest_server:
        sock, reply = host_connect(uds, b"CONNECT %d\n" % ports[0])
        conn, _ = guest_server.accept()
        conn.sendall(b"guest speaks first")
        assert re.fullmatch(rb"OK \d+\n", reply)
        assert sock.recv(100) == b"guest speaks first"  # right after the OK line, nothing lost
        sock.sendall(b"host data")
        assert conn.recv(100) == b"host data"
        sock.shutdown(socket.SHUT_WR)
        assert conn.recv(100) == b""  # an EOF is passed on
        conn.close()
        sock.close()


def test_muxer_closes_without_answer_when_nothing_listens_in_the_guest(tmp_path, ports):
    uds = tmp_path / "v.sock"
    with muxer(uds):
        sock, reply = host_connect(uds, b"CONNECT %d\n" % ports[1])
        assert reply == b""
        sock.close()


def test_muxer_survives_connect_without_newline_and_bad_lines(tmp_path, ports):
    uds = tmp_path / "v.sock"
    with muxer(uds, "--line-timeout", "1"), vsock_listener(ports[2]) as guest_server:
        started = time.monotonic()
        sock, reply = host_connect(uds, b"CONNECT %d" % ports[2])  # no newline
        assert reply == b"" and 0.8 < time.monotonic() - started < 5
        sock.close()
        for bad in (b"HELLO\n", b"CONNECT x\n", b"CONNECT 99999999999\n"):
            sock, reply = host_connect(uds, bad)
            assert reply == b"", bad
            sock.close()
        sock, reply = host_connect(uds, b"CONNECT %d\n" % ports[2])  # still serving
        assert reply.startswith(b"OK ")
        guest_server.accept()[0].close()
        sock.close()


def test_muxer_slow_ok(tmp_path, ports):
    uds = tmp_path / "v.sock"
    with muxer(uds, "--ok-delay", "1.5"), vsock_listener(ports[3]):
        started = time.monotonic()
        sock, reply = host_connect(uds, b"CONNECT %d\n" % ports[3])
        assert reply.startswith(b"OK ") and time.monotonic() - started >= 1.4
        sock.close()


def test_muxer_guest_initiated_reaches_uds_path_port_raw_or_is_reset(tmp_path, ports):
    """'a guest connecting to (host, port P) reaches whatever listens on <uds_path>_<P>, with no
    preamble; if nothing listens there the guest's connect is reset'."""
    uds = tmp_path / "v.sock"
    port = ports[4]
    with muxer(uds, "--guest-to-host", str(port)):
        guest = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
        with pytest.raises(OSError) as raised:
            guest.connect((1, port))
        assert raised.value.errno in (errno.ECONNRESET, errno.ECONNREFUSED)
        guest.close()
        host_server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        host_server.bind(f"{uds}_{port}")
        host_server.listen(1)
        deadline = time.monotonic() + 10
        while True:
            guest = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
            try:
                guest.connect((1, port))
                break
            except OSError:
                guest.close()
                assert time.monotonic() < deadline, "the muxer never listened for the host's socket"
                time.sleep(0.1)
        guest.sendall(b"from the guest")
        conn, _ = host_server.accept()
        conn.settimeout(10)
        assert conn.recv(100) == b"from the guest"  # raw: no CONNECT line on this side
        conn.sendall(b"from the host")
        assert guest.recv(100) == b"from the host"
        for s in (conn, guest, host_server):
            s.close()


# --- ported programs on both ends -----------------------------------------------------------------

def host_side(uds: Path) -> dict:
    return {"VSOCK_CID_MAP": f"*=unix:{uds}"}


def test_guest_server_and_host_client_over_the_hybrid_socket(ported, tmp_path, ports):
    """The guest half over AF_VSOCK as today; the host half, the same kind of ported program, over the
    VMM's socket: the banner the guest server sends first arrives whole."""
    folder, uds = ported / "programs", tmp_path / "v.sock"
    with muxer(uds), running(sys.executable, "-S", "banner_server.py", str(ports[5]), cwd=folder, ready="listening"):
        done = python("banner_client.py", str(ports[5]), "ping", cwd=folder, env=host_side(uds))
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout.strip() == "HELLO 127.0.0.1 | PING"  # the guest's server saw the muxer at CID 1 (the loopback)
        echo = python("client.py", str(ports[5] + 1), cwd=ported / "echo", env=host_side(uds))
        assert echo.returncode != 0 and f"{uds} port {ports[5] + 1}: the VMM closed the connection without an OK" in echo.stderr


def test_host_server_and_guest_client_over_uds_path_port(ported, tmp_path, ports):
    """The reverse: the ported server, on the host side, listens on <uds_path>_<port>; the ported guest
    client connects over vsock (to the stand-in at CID 1, where the real VMM is CID 2)."""
    folder, uds, port = ported / "programs", tmp_path / "v.sock", ports[6]
    with muxer(uds, "--guest-to-host", str(port)):
        with running(sys.executable, "-S", "banner_server.py", str(port), cwd=folder, ready="listening",
                     env=host_side(uds)):
            assert Path(f"{uds}_{port}").is_socket()
            deadline = time.monotonic() + 20
            while True:
                done = python("banner_client.py", str(port), "pong", cwd=folder)
                if done.returncode == 0 or time.monotonic() > deadline:
                    break
                time.sleep(0.2)  # the muxer notices the new socket file within 50 ms
            assert done.returncode == 0, done.stdout + done.stderr
            assert done.stdout.strip() == f"HELLO unix:{uds} | PONG"  # the guest as the host sees it
        refused = python("banner_client.py", str(port), "x", cwd=folder)  # the host server is gone
        assert refused.returncode == 3
        # The muxer resets the guest's connect; the runtime reports that as the refusal it is, as TCP would.
        assert refused.stdout.startswith("ConnectionRefusedError: ") and f"port {port}" in refused.stdout


def test_host_client_timeout_names_path_and_port(ported, tmp_path, ports):
    folder, uds = ported / "programs", tmp_path / "v.sock"
    with muxer(uds, "--ok-delay", "8"), running(sys.executable, "-S", "banner_server.py", str(ports[7]), cwd=folder,
                                                ready="listening"):
        started = time.monotonic()
        done = python("banner_client.py", str(ports[7]), "x", "1", cwd=folder, env=host_side(uds))
    assert done.returncode == 3 and time.monotonic() - started < 7  # gave up after 1 s, not after the OK
    assert done.stdout.strip() == f"TimeoutError: [Errno {errno.ETIMEDOUT}] vsock (hybrid): {uds} port {ports[7]}: " \
                                  "no reply from the VMM within 1 s (set the socket's timeout, or VSOCK_HYBRID_TIMEOUT)"


def test_redis_py_on_the_host_side_talks_to_redis_server_in_the_guest(ported, tmp_path, ports):
    """A real third-party client library, ported, used from the host side: redis-py reaches a
    redis-server in the guest (vsock-reachable through socat) over the VMM's socket."""
    uds, redis_port, vsock_port = tmp_path / "v.sock", ports[8] + 10000, ports[8]
    redis = [program("redis-server"), "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    with muxer(uds), tcp_peer_over_vsock(redis, redis_port, vsock_port):
        done = python("redis_client.py", str(vsock_port), cwd=ported / "programs", site=ported / "site",
                      env=host_side(uds))
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ported", "1", "2"]


def test_asyncio_both_halves_on_the_host_side(ported, tmp_path, ports):
    """The ported asyncio echo program (open_connection and start_server) with both of its ends on the
    host side: the server listens on uds_path_PORT, the client goes through CONNECT/OK to the guest's
    port, which the muxer forwards back to that server."""
    uds, port = tmp_path / "v.sock", ports[9]
    with muxer(uds, "--guest-to-host", str(port)):
        env = host_side(uds)
        code = ("import asyncio, sys\n"
                "sys.path.insert(0, '.')\n"
                "from vsock_runtime import vsock_start_server, vsock_open_connection\n"
                "async def main(port):\n"
                "    async def handle(r, w):\n"
                "        w.write((await r.readline()).upper()); await w.drain(); w.close()\n"
                "    server = await vsock_start_server(handle, '', port)\n"
                "    await asyncio.sleep(0.5)\n"  # the muxer notices the socket file
                "    r, w = await vsock_open_connection('localhost', port)\n"  # host -> VMM -> guest 'port'
                "    w.write(b'round trip\\n'); print((await r.readline()).decode().strip())\n"
                "    server.close()\n"
                "asyncio.run(main(int(sys.argv[1])))\n")
        # CONNECT <port> reaches the guest's vsock port <port>, where the muxer listens for the
        # host's uds_path_<port>: the trip host -> guest -> host exercises both halves at once.
        done = python("-c", code, str(port), cwd=ported / "programs", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ROUND TRIP"


def test_gunicorn_on_the_host_side_serves_a_guest(ported, tmp_path, ports):
    """A real third-party server on the host side: gunicorn's arbiter binds uds_path_PORT (its forked
    workers accept there), and curl in the guest reaches it through vsock and the VMM."""
    uds, port = tmp_path / "v.sock", ports[9] + 100
    with muxer(uds, "--guest-to-host", str(port)):
        with running(sys.executable, "-S", "gunicorn_serve.py", str(port), cwd=ported / "programs", ready=None,
                     site=ported / "site", env=host_side(uds)) as server:
            deadline = time.monotonic() + 120
            while not Path(f"{uds}_{port}").is_socket():
                assert server.poll() is None and time.monotonic() < deadline, server.stderr.read()
                time.sleep(0.2)
            time.sleep(0.5)  # the muxer's 50 ms poll, and the workers' start
            done = curl_through_socat(port, port + 1, "/")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"gunicorn served unix:{uds}\n"  # the guest, as the host side sees it
