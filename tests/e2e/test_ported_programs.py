"""Programs written for TCP/IP, ported by vsockport, exchanging real bytes over vsock (CID 1)."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from tests.e2e.conftest import python, running, wait_for_vsock_listener

# socket.family of a socket made with an int family: the enum, or 40 where CPython keeps the int
AF_VSOCK_NAMES = ("AddressFamily.AF_VSOCK", "40")


def test_examples_echo_round_trip(ported, port, backend):
    folder = ported / "echo"
    with running(sys.executable, "-S", "server.py", str(port), cwd=folder, ready="listening on", backend=backend):
        reply = python("client.py", str(port), cwd=folder, backend=backend)
    assert reply.returncode == 0, reply.stderr
    assert reply.stdout.strip() == "Received b'Hello, world'"


@pytest.mark.parametrize(
    "program, message",
    [
        ("roundtrip_module.py", "IMPORT SOCKET"),
        ("roundtrip_alias.py", "IMPORT SOCKET AS S"),
        ("roundtrip_from_import.py", "FROM SOCKET IMPORT"),
    ],
)
def test_each_import_form_round_trips(ported, port, program, message, backend):
    done = python(program, str(port), cwd=ported / "programs", backend=backend)
    assert done.returncode == 0, done.stderr
    *words, family = done.stdout.split()
    assert words == message.split()
    assert family in AF_VSOCK_NAMES


def test_create_server_and_create_connection(ported, backend):
    folder = ported / "programs"
    done = python("create_functions.py", cwd=folder, backend=backend)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["create_connection", "True"]


def test_ctypes_sockaddr_server(ported, port):
    folder = ported / "programs"
    source = (folder / "ctypes_server.py").read_text()
    assert "addr.svm_port = int(sys.argv[1])" in source and "sockaddr_vm()" in source
    with running(sys.executable, "-S", "ctypes_server.py", str(port), cwd=folder, ready="port") as server:
        with socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM) as client:
            client.settimeout(30)
            client.connect((1, port))
            client.sendall(b"through libc")
            assert client.recv(100) == b"through libc"
        assert server.wait(timeout=30) == 0, server.stderr.read()


def test_ctypes_server_reports_port_in_host_byte_order(ported, port):
    proc = subprocess.Popen([sys.executable, "-S", "ctypes_server.py", str(port)], cwd=ported / "programs", stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().split() == ["port", str(port)]
    finally:
        proc.kill()
        proc.wait()


def test_socat_client_talks_to_ported_server(ported, port):
    with running(sys.executable, "-S", "server.py", str(port), cwd=ported / "echo", ready="listening on"):
        done = subprocess.run(
            ["socat", "-t", "5", "-", f"VSOCK-CONNECT:1:{port}"], input=b"socat says hi\n", capture_output=True, timeout=60
        )
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"socat says hi\n"


def test_ported_client_talks_to_socat_server(ported, port):
    folder = ported / "echo"
    socat = subprocess.Popen(["socat", f"VSOCK-LISTEN:{port},fork", "EXEC:cat"], stderr=subprocess.PIPE)
    try:
        wait_for_vsock_listener(port)
        reply = python("client.py", str(port), cwd=folder)
        assert reply.returncode == 0, reply.stderr
        assert reply.stdout.strip() == "Received b'Hello, world'"
    finally:
        socat.kill()
        socat.wait()


def test_runtime_local_cid_in_guest_is_loopback(ported):
    folder = ported / "programs"
    done = python("-c", "import vsock_runtime as v; print(v.VMCISock_GetLocalCID(), v.VMCISock_GetAFValue())", cwd=folder)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "40"]


def test_connect_to_closed_port_gives_the_runtime_error(ported, port, backend):
    folder = ported / "programs"
    done = python("closed_port_client.py", str(port), cwd=folder, backend=backend)
    assert done.returncode == 3, done.stdout + done.stderr
    name, number, message = done.stdout.split(" ", 2)
    assert name in ("ConnectionResetError", "ConnectionRefusedError")
    assert f"nothing is listening on CID 1 port {port}" in message


def test_asyncio_client_tunes_its_transport_socket(ported, port, backend):
    """setsockopt on asyncio's TransportSocket (what get_extra_info("socket") returns): left as it is;
    the vsock socket underneath does nothing for TCP options and sets the rest."""
    folder = ported / "programs"
    assert "sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)" in (folder / "asyncio_tuned.py").read_text()
    done = python("asyncio_tuned.py", str(port), cwd=folder, backend=backend)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["TransportSocket 1", "TUNED OVER VSOCK"]
