"""The injected runtime over a real data path (CID 1 through vsock_loopback), on both backends.

Each check runs in a plain `python -S` beside the runtime file that vsockport injected, as a ported
program would, with VSOCK_RUNTIME_BACKEND choosing CPython's own calls or the libc path.
"""

from __future__ import annotations

import errno
import json
import subprocess
import sys

import pytest

from tests.e2e.conftest import python, running

# A one-connection echo server on an ephemeral port, started from the runtime; prints its port.
SERVE = """
import socket, threading, vsock_runtime as rt
server = rt.create_vsock_server(("", 0))
peers = []
def serve():
    while True:
        conn, peer = server.accept()
        peers.append((peer, conn.getpeername(), conn.getsockname()))
        with conn:
            conn.sendall(conn.recv(1024))
threading.Thread(target=serve, daemon=True).start()
port = server.getsockname()[1]
"""


def run(code: str, ported, backend: str) -> list[str]:
    done = python("-c", code, cwd=ported / "programs", backend=backend)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.split("\n")


@pytest.mark.parametrize("server_backend, client_backend", [("native", "ctypes"), ("ctypes", "native")])
def test_native_and_ctypes_paths_interoperate(ported, port, server_backend, client_backend):
    folder = ported / "echo"
    with running(sys.executable, "-S", "server.py", str(port), cwd=folder, ready="listening on", backend=server_backend):
        reply = python("client.py", str(port), cwd=folder, backend=client_backend)
    assert reply.returncode == 0, reply.stderr
    assert reply.stdout.strip() == "Received b'Hello, world'"


def test_addresses_seen_by_both_ends(ported, backend):
    out = run(SERVE + """
client = rt.vsock_socket(rt.VMCISock_GetAFValue(), socket.SOCK_STREAM)
client.connect((rt.VMADDR_CID_LOCAL, port))
client.sendall(b"ping")
print(rt.vsock_backend(), client.recv(10).decode(), client.getpeername() == ("127.0.0.1", port))
[(peer, peername, sockname)] = peers
print(peer == peername == client.getsockname() == ("127.0.0.1", client.getsockname()[1]),
      sockname == ("127.0.0.1", port), type(peer[0]) is str)
""", ported, backend)
    assert out[0].split() == [backend, "ping", "True"]
    assert out[1].split() == ["True", "True", "True"]


def test_plain_connect_to_a_closed_port_is_explained(ported, port, backend):
    """virtio answers a connect to a closed port with a reset: TCP code retrying on
    ConnectionRefusedError until its server is up gets the refusal it waits for, from connect(),
    connect_ex() and a non-blocking connect's SO_ERROR (asyncio's and tornado's way)."""
    out = run(f"""
import errno, select, socket, vsock_runtime as rt
sock = rt.vsock_socket(rt.VMCISock_GetAFValue(), socket.SOCK_STREAM)
try:
    sock.connect((rt.VMADDR_CID_LOCAL, {port}))
except ConnectionRefusedError as exc:
    print(exc.errno); print(exc.strerror)
print(rt.vsock_socket(rt.VMCISock_GetAFValue(), socket.SOCK_STREAM).connect_ex(("localhost", {port})))
quiet = rt.vsock_socket(rt.VMCISock_GetAFValue(), socket.SOCK_STREAM)
quiet.setblocking(False)
print(quiet.connect_ex(("localhost", {port})) == errno.EINPROGRESS)
select.select([], [quiet], [], 5)
print(quiet.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR), quiet.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR))
""", ported, backend)
    assert out[0] == str(errno.ECONNREFUSED)
    assert out[1].startswith(f"Connection refused (vsock: nothing is listening on CID 1 port {port}; virtio "
                             "transports answer with a reset")  # the system's words first: programs match on them
    assert out[2] == str(errno.ECONNREFUSED)
    assert out[3] == "True"
    assert out[4] == f"{errno.ECONNREFUSED} 0"  # SO_ERROR is read once, as the kernel's is


def test_unreachable_cid_is_explained(ported, port, backend):
    out = run(f"""
import socket, vsock_runtime as rt
sock = rt.vsock_socket(rt.VMCISock_GetAFValue(), socket.SOCK_STREAM)
print(sock.connect_ex((7, {port})))
try:
    sock.connect((7, {port}))
except OSError as exc:
    print(exc.errno); print(exc.strerror)
""", ported, backend)
    assert out[0] == out[1] == str(errno.ENODEV)
    assert out[2].startswith("No such device (vsock: no vsock transport reaches CID 7")


def test_socket_timeout_becomes_the_kernel_connect_timeout(ported, backend):
    out = run(SERVE + """
plain = rt.vsock_socket(rt.VMCISock_GetAFValue(), socket.SOCK_STREAM)
plain.settimeout(4.5)
plain.connect((1, port))
made = rt.create_vsock_connection(("localhost", port), timeout=6.5)
untouched = rt.create_vsock_connection((1, port), source_address=("", 0))
print(rt.get_connect_timeout(plain), rt.get_connect_timeout(made), rt.get_connect_timeout(untouched))
print(made.gettimeout(), untouched.gettimeout())
print(untouched.getsockname()[1] not in (0, rt.VMADDR_PORT_ANY))
""", ported, backend)
    assert out[0].split() == ["4.5", "6.5", "2.0"]
    assert out[1].split() == ["6.5", "None"]
    assert out[2] == "True"  # source_address ("", 0) bound an ephemeral port, not privileged port 0


def test_nonblocking_connect_behaves_like_cpython(ported, backend):
    """asyncio-style: connect raises BlockingIOError, then SO_ERROR says whether it worked."""
    out = run(SERVE + """
import select
sock = rt.vsock_socket(rt.VMCISock_GetAFValue(), socket.SOCK_STREAM)
sock.setblocking(False)
try:
    sock.connect((1, port))
    print("connected at once")
except BlockingIOError as exc:
    print("in progress", exc.errno)
select.select([], [sock], [], 10)
print(sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR), sock.connect_ex((1, port)))
""", ported, backend)
    assert out[0] == f"in progress {errno.EINPROGRESS}"
    assert out[1].split() == ["0", str(errno.EISCONN)]


def test_vsock_connect_passes_svm_flags_to_the_kernel(ported, backend):
    """CPython cannot send svm_flags; the kernel rejects unknown flag bits, which proves they arrive."""
    out = run(SERVE + """
for flags in (0, rt.VMADDR_FLAG_TO_HOST, 0x80):
    sock = rt.vsock_socket(rt.VMCISock_GetAFValue(), socket.SOCK_STREAM)
    try:
        rt.vsock_connect(sock, ("localhost", port), flags)
        sock.sendall(b"flag")
        print(flags, sock.recv(10).decode())
    except OSError as exc:
        print(flags, exc.errno)
""", ported, backend)
    assert out[:3] == ["0 flag", "1 flag", f"128 {errno.EINVAL}"]


def test_getaddrinfo_loops_round_trip(ported, backend):
    """The classic server and client getaddrinfo loops, with the runtime's vsock_getaddrinfo."""
    out = run("""
import socket, threading, vsock_runtime as rt
for af, kind, proto, _, addr in rt.vsock_getaddrinfo(None, 0, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE):
    server = rt.vsock_socket(af, kind, proto)
    server.bind(addr)
    server.listen()
port = server.getsockname()[1]
threading.Thread(target=lambda: server.accept()[0].sendall(b"from getaddrinfo"), daemon=True).start()
for af, kind, proto, _, addr in rt.vsock_getaddrinfo("localhost", str(port), socket.AF_INET, socket.SOCK_STREAM):
    client = rt.vsock_socket(af, kind, proto)
    client.connect(addr)
print(client.recv(100).decode())
""", ported, backend)
    assert out[0] == "from getaddrinfo"


def test_doctor_in_the_guest(backend):
    done = subprocess.run(
        [sys.executable, "-m", "vsockport", "doctor", "--json", "--backend", backend], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["backend"] == backend
    assert report["loopback"] is True and report["local_cid"] == 1
    assert report["transports"]["vsock_loopback"] == "loaded"
    assert report["socket_types"]["SOCK_STREAM"] == "ok"
    assert not any("loopback" in problem for problem in report["problems"])


def test_ip_protocol_numbers_against_the_real_kernel(ported, backend):
    """The guest kernel refuses socket(AF_VSOCK, SOCK_STREAM, IPPROTO_TCP) with EPROTONOSUPPORT; the
    runtime says so (not "no transport"), and vsock_socket() with that protocol makes a working socket."""
    out = run(SERVE + """
import errno
try:
    socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM, socket.IPPROTO_TCP)
except OSError as exc:
    explained = rt._explain_create(exc, socket.AF_VSOCK, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    print(errno.errorcode[exc.errno], explained.strerror)
client = rt.vsock_socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
client.connect(("localhost", port))
client.sendall(b"proto 0")
print(client.recv(10).decode())
""", ported, backend)
    assert out[0].startswith("EPROTONOSUPPORT Protocol not supported (vsock: vsock sockets take protocol 0, not 6")
    assert out[1] == "proto 0"


def test_loopback_bound_at_run_time_is_local_where_loopback_exists(ported, backend):
    """In the guest vsock_loopback is loaded: a server bound to 127.0.0.1 binds CID 1 (local clients
    only), and nothing warns."""
    out = run("""
import socket, warnings, vsock_runtime as rt
warnings.simplefilter("error")
server = rt.vsock_socket(socket.AF_INET, socket.SOCK_STREAM)
server.bind(("127.0.0.1", 0))
print(rt.vsock_cid(server.getsockname()[0]) == rt.VMADDR_CID_LOCAL, repr(server.getsockname()[0]))
""", ported, backend)
    assert out[0] == "True '127.0.0.1'"


def test_a_name_connected_to_again_follows_a_changed_map(ported, backend):
    """The connect path remembers what an address resolved to (a client dials the same ("db", port) again
    and again), for as long as VSOCK_CID_MAP stays the same: a map changed by the program is read again."""
    out = run(SERVE + """
import os
os.environ["VSOCK_CID_MAP"] = "db=1"
for _ in range(2):
    with rt.vsock_socket(rt.VMCISock_GetAFValue(), socket.SOCK_STREAM) as client:
        client.connect(("db", port))
        client.sendall(b"ping")
        print(client.recv(10).decode(), client.getpeername() == ("127.0.0.1", port))
os.environ["VSOCK_CID_MAP"] = "db=4000000"
try:
    rt.vsock_socket(rt.VMCISock_GetAFValue(), socket.SOCK_STREAM).connect(("db", port))
except OSError as exc:
    print("CID 4000000" in str(exc))
del os.environ["VSOCK_CID_MAP"]
try:
    rt.vsock_socket(rt.VMCISock_GetAFValue(), socket.SOCK_STREAM).connect(("db", port))
except OSError as exc:
    print("no CID for db" in str(exc))
""", ported, backend)
    assert out[:4] == ["ping True", "ping True", "True", "True"]
