"""The injected runtime against this machine's real kernel. Never connects: binds and listens only.

Most tests run twice: with CPython's own socket calls (native) and with the libc path forced by
VSOCK_RUNTIME_BACKEND=ctypes, which Python builds without AF_VSOCK use. Both must give the same results.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import fcntl
import importlib.util
import json
import os
import socket
import struct
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

RUNTIME = Path(__file__).resolve().parents[1] / "vsockport" / "runtime" / "vsock.py"
NOBODY = 65534


def load_runtime(backend: str):
    """A fresh copy of the runtime, imported the way a ported program imports it."""
    os.environ["VSOCK_RUNTIME_BACKEND"] = backend
    try:
        spec = importlib.util.spec_from_file_location(f"vsock_runtime_{backend}", RUNTIME)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module._backend_name()  # chosen on first use: choose now, while the variable says which
    finally:
        del os.environ["VSOCK_RUNTIME_BACKEND"]
    return module


@pytest.fixture
def fresh_registry():
    """Each test loads its own runtime copy, which registers on first use and teaches socket.socket
    the vsock family: start from neither, and leave neither behind."""
    methods = dict(vars(socket.socket))
    for name in ("_vsockport_runtime", "_vsockport_layer"):
        socket.__dict__.pop(name, None)
    yield
    for name in ("_vsockport_runtime", "_vsockport_layer"):
        socket.__dict__.pop(name, None)
    for name in set(vars(socket.socket)) - set(methods):
        delattr(socket.socket, name)
    for name, value in methods.items():
        if vars(socket.socket).get(name) is not value:
            setattr(socket.socket, name, value)


@pytest.fixture(params=["native", "ctypes"])
def rt(request, fresh_registry):
    module = load_runtime(request.param)
    assert module.vsock_backend() == request.param
    return module


@pytest.fixture
def native(fresh_registry):
    return load_runtime("native")


def run_python(code: str, *, backend: str = "auto", as_nobody: bool = False) -> subprocess.CompletedProcess:
    """`code` in a fresh interpreter that can `import vsock`; with as_nobody, the process drops root
    (and every capability) after that import, as an unprivileged user running a ported program would.
    What the runtime imports lazily (ctypes) is imported first: an interpreter installed under root's
    home may be unreadable to that user, where a real user's would not be."""
    prelude = f"import os, sys\nsys.path.insert(0, {str(RUNTIME.parent)!r})\n"
    if as_nobody:
        prelude += f"import ctypes, vsock\nos.setgroups([]); os.setgid({NOBODY}); os.setuid({NOBODY})\n"
    env = dict(os.environ, VSOCK_RUNTIME_BACKEND=backend)
    return subprocess.run(
        [sys.executable, "-I", "-c", prelude + code], capture_output=True, text=True, timeout=60, env=env
    )


def vsock(rt, kind=socket.SOCK_STREAM) -> socket.socket:
    return rt.vsock_socket(rt.VMCISock_GetAFValue(), kind)


# --- constants, family, CID ---------------------------------------------------------------------------


def test_constants(native):
    rt = native
    assert rt.VMADDR_CID_ANY == rt.VMADDR_PORT_ANY == 0xFFFFFFFF
    assert (rt.VMADDR_CID_HYPERVISOR, rt.VMADDR_CID_LOCAL, rt.VMADDR_CID_HOST, rt.VMADDR_FLAG_TO_HOST) == (0, 1, 2, 1)
    assert rt.VMADDR_CID_ANY == socket.VMADDR_CID_ANY and rt.VMADDR_PORT_ANY == socket.VMADDR_PORT_ANY
    assert rt.SO_VM_SOCKETS_BUFFER_SIZE == socket.SO_VM_SOCKETS_BUFFER_SIZE
    assert rt.SO_VM_SOCKETS_BUFFER_MAX_SIZE == socket.SO_VM_SOCKETS_BUFFER_MAX_SIZE


def test_af_value_is_40_on_this_kernel(rt):
    assert rt.VMCISock_GetAFValue() == 40 == socket.AF_VSOCK
    rt.VMCISock_ReleaseAFValueFd()  # nothing kept open on an upstream kernel: a no-op
    assert rt.VMCISock_GetAFValue() == 40


def test_local_cid_comes_from_the_real_ioctl(rt):
    fd = os.open("/dev/vsock", os.O_RDONLY)
    try:
        expected = struct.unpack("I", fcntl.ioctl(fd, socket.IOCTL_VM_SOCKETS_GET_LOCAL_CID, b"\0" * 4))[0]
    finally:
        os.close(fd)
    assert rt.VMCISock_GetLocalCID() == rt.vsock_local_cid() == expected
    assert expected > rt.VMADDR_CID_HOST  # a guest's CID is never 0, 1 or 2


def test_dev_vsock_permission_denied_is_explained():
    """/dev/vsock is root-only here: an unprivileged user gets EACCES, explained, errno kept."""
    done = run_python(
        "import vsock\n"
        "print(vsock.VMCISock_GetLocalCID() == vsock.VMADDR_CID_ANY)\n"
        "try:\n    vsock.vsock_local_cid()\n"
        "except PermissionError as exc:\n    print(exc.errno, exc.strerror)\n",
        as_nobody=True,
    )
    assert done.returncode == 0, done.stderr
    same_as_c_api, explained = done.stdout.splitlines()
    assert same_as_c_api == "True"
    assert explained.startswith(f"{errno.EACCES} vsock: permission denied on /dev/vsock")
    assert 'KERNEL=="vsock", MODE="0666"' in explained


# --- backend selection ----------------------------------------------------------------------------------


def test_python_without_af_vsock_selects_the_ctypes_path():
    """A build without socket.AF_VSOCK: the runtime must pick libc and still bind, list and name."""
    done = run_python(
        "import socket\n"
        "del socket.AF_VSOCK\n"
        "import vsock\n"
        "s = vsock.vsock_socket(vsock.VMCISock_GetAFValue(), socket.SOCK_STREAM)\n"
        "s.bind((vsock.VMADDR_CID_ANY, vsock.VMADDR_PORT_ANY)); s.listen()\n"
        "print(vsock.vsock_backend(), s.getsockname()[0] == '0.0.0.0')\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ctypes", "True"]


def test_backend_environment_variable():
    """A bad value never breaks a program: importing is silent, the first use warns and uses auto."""
    assert run_python("import vsock; print(vsock.vsock_backend())").stdout.strip() == "native"
    assert run_python("import vsock; print(vsock.vsock_backend())", backend="ctypes").stdout.strip() == "ctypes"
    bad = run_python("import vsock\nprint('imported')\nprint(vsock.vsock_backend())", backend="fast")
    assert bad.returncode == 0 and bad.stdout.split() == ["imported", "native"]
    assert "VSOCK_RUNTIME_BACKEND must be auto, native or ctypes, not 'fast': using auto" in bad.stderr
    impossible = run_python("import socket\ndel socket.AF_VSOCK\nimport vsock\nprint(vsock.vsock_backend())",
                            backend="native")
    assert impossible.returncode == 0 and impossible.stdout.strip() == "ctypes"
    assert "this Python has no AF_VSOCK support" in impossible.stderr


def test_ctypes_backend_really_calls_libc(rt, monkeypatch):
    """The ctypes path must not quietly fall back to CPython: count the libc calls it makes."""
    calls = []
    libc = rt._get_libc()
    for name in ("bind", "getsockname", "accept"):
        real = getattr(libc, name)
        monkeypatch.setattr(libc, name, lambda *args, _real=real, _name=name: calls.append(_name) or _real(*args))
    with vsock(rt) as server:
        server.bind((rt.VMADDR_CID_ANY, rt.VMADDR_PORT_ANY))
        server.listen()
        server.getsockname()
        server.setblocking(False)
        with pytest.raises(BlockingIOError):
            server.accept()
    assert calls == ([] if rt.vsock_backend() == "native" else ["bind", "getsockname", "accept"])


# --- socket calls, both backends ---------------------------------------------------------------------------


def test_bind_and_listen_on_port_any(rt):
    with vsock(rt) as server:
        server.bind((rt.VMADDR_CID_ANY, rt.VMADDR_PORT_ANY))
        server.listen(1)
        host, port = server.getsockname()
        assert host == "0.0.0.0" and type(host) is str  # as TCP code reads a wildcard bind
        assert port not in (0, rt.VMADDR_PORT_ANY)  # the kernel picked a real ephemeral port
        assert type(server) is socket.socket and server.send == socket.SocketType.send.__get__(server)  # C data path


def test_bind_local_cid(rt):
    with vsock(rt) as server:
        server.bind((rt.VMCISock_GetLocalCID(), rt.VMADDR_PORT_ANY))
        assert server.getsockname()[0] == str(rt.VMCISock_GetLocalCID())


def test_accept_honours_timeout_and_nonblocking(rt):
    with vsock(rt) as server:
        server.bind((rt.VMADDR_CID_ANY, rt.VMADDR_PORT_ANY))
        server.listen()
        server.settimeout(0.2)
        with pytest.raises(socket.timeout):
            server.accept()
        server.setblocking(False)
        with pytest.raises(BlockingIOError):
            server.accept()


def test_getpeername_on_unconnected_socket_is_enotconn(rt):
    with vsock(rt) as sock, pytest.raises(OSError) as info:
        sock.getpeername()
    assert info.value.errno == errno.ENOTCONN


def test_unbindable_cid_is_explained(rt):
    with vsock(rt) as sock, pytest.raises(OSError) as info:
        sock.bind((12345, rt.VMADDR_PORT_ANY))
    assert info.value.errno == errno.EADDRNOTAVAIL
    message = str(info.value)
    assert "CID 12345 cannot be bound here" in message
    assert f"this machine's CID ({rt.VMCISock_GetLocalCID()})" in message


def test_loopback_cid_without_loopback_transport_is_explained(rt):
    with vsock(rt) as sock, pytest.raises(OSError) as info:
        sock.bind((rt.VMADDR_CID_LOCAL, rt.VMADDR_PORT_ANY))
    assert info.value.errno == errno.EADDRNOTAVAIL
    assert "only with the vsock_loopback transport" in str(info.value)


@pytest.mark.parametrize("backend", ["native", "ctypes"])
def test_privileged_port_is_explained(backend):
    done = run_python(
        "import socket, vsock\n"
        "s = vsock.vsock_socket(vsock.VMCISock_GetAFValue(), socket.SOCK_STREAM)\n"
        "try:\n    s.bind((vsock.VMADDR_CID_ANY, 1000))\n"
        "except PermissionError as exc:\n    print(exc.errno, exc.strerror)\n",
        backend=backend, as_nobody=True,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{errno.EACCES} Permission denied (vsock: ports 0-1023 are privileged: port 1000 needs")


@pytest.mark.parametrize(
    "level, option",
    [(socket.IPPROTO_TCP, socket.TCP_NODELAY), (socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
     (socket.IPPROTO_IPV6, socket.IPV6_V6ONLY), (socket.IPPROTO_IP, socket.IP_TOS),
     (socket.SOL_SOCKET, socket.SO_REUSEPORT)],
)
def test_options_without_meaning_on_vsock_do_nothing(rt, level, option):
    """The kernel refuses them (ENOPROTOOPT, EOPNOTSUPP); on a vsock socket they are documented
    no-ops, whoever sets them (a C extension on transport.get_extra_info("socket"), an SSLSocket), read
    back as set: 0 before, but TCP_NODELAY 1 (vsock never delays a send)."""
    default = int((level, option) == (socket.IPPROTO_TCP, socket.TCP_NODELAY))
    with vsock(rt) as sock:
        with pytest.raises(OSError) as info:
            socket.SocketType.setsockopt(sock, level, option, 1)  # the kernel's own answer
        assert info.value.errno in (errno.ENOPROTOOPT, errno.EOPNOTSUPP)
        assert sock.getsockopt(level, option) == default and sock.getsockopt(level, option, 4) == struct.pack("i", default)
        assert sock.setsockopt(level, option, 0) is None
        assert sock.getsockopt(level, option) == 0 and sock.getsockopt(level, option, 4) == bytes(4)
        assert sock.setsockopt(level, option, 1) is None
        assert sock.getsockopt(level, option) == 1 and sock.getsockopt(level, option, 4) == struct.pack("i", 1)


@pytest.mark.parametrize("peer, own, local", [
    (1, 3, 1),                    # the loopback transport
    (3, 3, 1),                    # one's own CID: loopback too
    (2, 3, 3), (0, 3, 3),         # guest to host (or hypervisor): this guest's CID
    (7, 3, 2), (7, 2, 2),         # host to guest: the host's CID (a guest that hosts guests too)
    (2, 0xFFFFFFFF, 0xFFFFFFFF),  # no local CID known: the wildcard stays
])
def test_a_connected_clients_own_cid_is_the_transports(rt, peer, own, local):
    """The kernel keeps the wildcard a client was bound to at connect(); its getsockname() reports the
    local CID of the transport Linux picks for the peer (the loopback case runs for real in
    tests/e2e/test_compatibility.py; the other transports exist only on a VM's two sides)."""
    assert rt._local_cid_towards(peer, lambda: own) == local


def test_options_that_vsock_accepts(rt):
    with vsock(rt) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(rt.VMCISock_GetAFValue(), rt.SO_VM_SOCKETS_BUFFER_SIZE, 65536)
        assert sock.getsockopt(rt.VMCISock_GetAFValue(), rt.SO_VM_SOCKETS_BUFFER_SIZE) == 65536
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0


def test_timeval_options_go_through_libc(rt):
    """CPython sends every vsock option as a u64, so a struct timeval (SO_RCVTIMEO) needs libc."""
    with vsock(rt) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 3, 500000))
        assert struct.unpack("ll", sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, 16)) == (3, 500000)


def test_connect_timeout_round_trips_through_the_kernel(rt):
    with vsock(rt) as sock:
        assert rt.get_connect_timeout(sock) == 2.0  # the kernel default
        rt.set_connect_timeout(sock, 7.5)
        assert rt.get_connect_timeout(sock) == pytest.approx(7.5, abs=0.01)  # jiffy rounding
        with pytest.raises(ValueError):
            rt.set_connect_timeout(sock, -1)


def test_settimeout_becomes_the_vsock_connect_timeout(rt):
    """What connect() does before connecting, checked without connecting."""
    with vsock(rt) as sock:
        sock.settimeout(9)
        rt._apply_connect_timeout(sock)
        assert rt.get_connect_timeout(sock) == pytest.approx(9.0, abs=0.01)


def test_listen_before_bind_is_explained(rt):
    with vsock(rt) as sock, pytest.raises(OSError) as info:
        sock.listen()
    assert info.value.errno == errno.EINVAL and "listen() needs bind() first" in str(info.value)


def test_datagram_socket_on_virtio_is_explained(rt):
    with pytest.raises(OSError) as info:
        vsock(rt, socket.SOCK_DGRAM)
    assert info.value.errno == errno.ENODEV
    assert "datagrams (SOCK_DGRAM) exist only on VMware's VMCI transport" in str(info.value)


def test_no_vsock_family_is_explained_not_turned_into_af_inet(rt, monkeypatch):
    """With no vsock family (afVMCI == -1) a ported socket() must not quietly become AF_INET.
    (This kernel has vsock, so the runtime is told it has none.)"""
    monkeypatch.setattr(rt, "_af_value", -1)
    monkeypatch.setattr(rt, "_af_known", False)  # (what _family_value() sets with the value)
    with pytest.raises(OSError) as info:
        rt.vsock_socket(socket.AF_INET, socket.SOCK_STREAM)
    assert info.value.errno == errno.EAFNOSUPPORT
    assert "VMCISock_GetAFValue() returned -1" in str(info.value) and "vmw_vsock_virtio_transport" in str(info.value)


def test_ip_protocol_numbers_mean_zero_on_vsock(rt):
    """getaddrinfo-style tuples carry IPPROTO_TCP; the kernel refuses socket(AF_VSOCK, SOCK_STREAM, 6)."""
    with rt.vsock_socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP) as sock:
        assert sock.family == socket.AF_VSOCK and sock.proto == 0
    with pytest.raises(OSError) as info:
        socket.SocketType(socket.AF_VSOCK, socket.SOCK_STREAM, 6)  # the kernel's real answer
    explained = rt._explain_create(info.value, socket.AF_VSOCK, socket.SOCK_STREAM, 6)
    assert explained.errno == errno.EPROTONOSUPPORT
    assert "vsock sockets take protocol 0, not 6" in str(explained) and "no vsock transport" not in str(explained)
    assert rt.vsock_getaddrinfo("localhost", 80, proto=socket.IPPROTO_TCP)[0][2] == 0


def test_other_families_are_untouched(rt):
    """vsock_socket() of another family is a plain socket, and TCP sockets meet CPython alone: same
    errors, no runtime frame, no rewording, with the vsock methods installed on socket.socket."""
    assert type(rt.vsock_socket(socket.AF_UNIX, socket.SOCK_STREAM)) is socket.socket
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
        tcp.bind(("127.0.0.1", 0))
        port = tcp.getsockname()[1]
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
        tcp.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        assert tcp.connect_ex(("127.0.0.1", port)) == errno.ECONNREFUSED  # no "vsock:" rewording
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp, pytest.raises(ConnectionRefusedError) as info:
        tcp.connect(("127.0.0.1", port))
    assert "vsock" not in str(info.value)
    frames = [frame.filename for frame in __import__("traceback").extract_tb(info.value.__traceback__)]
    assert not any(name.endswith("vsock.py") for name in frames)


def test_sockaddr_vm_layout(native):
    rt = native
    assert ctypes.sizeof(rt.sockaddr_vm) == 16
    offsets = {name: getattr(rt.sockaddr_vm, name).offset for name, _ in rt.sockaddr_vm._fields_}
    assert offsets == {"svm_family": 0, "svm_reserved1": 2, "svm_port": 4, "svm_cid": 8, "svm_flags": 12, "svm_zero": 13}


def test_sockaddr_vm_binds_through_libc(native):
    """The ctypes structure is accepted by the real kernel's bind()."""
    rt = native
    libc = ctypes.CDLL(None, use_errno=True)
    with socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM) as sock:
        addr = rt.sockaddr_vm(svm_family=rt.VMCISock_GetAFValue(), svm_port=rt.VMADDR_PORT_ANY, svm_cid=rt.VMADDR_CID_ANY)
        assert libc.bind(sock.fileno(), ctypes.byref(addr), ctypes.sizeof(addr)) == 0, os.strerror(ctypes.get_errno())
        assert sock.getsockname()[1] != rt.VMADDR_PORT_ANY


# --- servers, resolver ---------------------------------------------------------------------------------------


def test_create_vsock_server_maps_wildcard_and_port_zero(rt):
    with rt.create_vsock_server(("", 0)) as server:
        host, port = server.getsockname()
        assert host == "0.0.0.0" and port not in (0, rt.VMADDR_PORT_ANY)
        assert server.family == socket.AF_VSOCK


def test_loopback_bound_at_run_time_warns_once_and_binds_any(rt):
    """No vsock_loopback here: a server meant for local clients becomes reachable from the host, and
    the program is told so, once."""
    with pytest.warns(RuntimeWarning, match="reachable from the host") as caught:
        with rt.create_vsock_server(("localhost", 0), backlog=3) as server:
            assert server.getsockname()[0] == "0.0.0.0"
        with rt.vsock_socket(socket.AF_INET) as other:
            other.bind(("127.0.0.1", 0))
    assert len([w for w in caught if "reachable from the host" in str(w.message)]) == 1


def test_create_vsock_server_leaves_unix_sockets_to_create_server(rt, tmp_path):
    """websockets' unix_serve shares the ported call: `kwargs.setdefault("family", AF_UNIX)`, then
    `create_vsock_server(path, **kwargs)` must still listen on the path."""
    path = str(tmp_path / "ws.sock")
    with rt.create_vsock_server(path, family=socket.AF_UNIX, backlog=2) as server:
        assert server.family == socket.AF_UNIX and server.getsockname() == path
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.connect(path)  # a Unix socket: this never leaves the machine
            peer, _ = server.accept()
            with peer:
                client.sendall(b"unix")
                assert peer.recv(4) == b"unix"
    with rt.create_vsock_server(("", 0), family=socket.AF_INET6) as server:  # IP families still mean vsock
        assert server.family == socket.AF_VSOCK


def test_create_vsock_server_explains_reuse_port(rt):
    with pytest.warns(RuntimeWarning, match="vsock has no SO_REUSEPORT"):
        server = rt.create_vsock_server(("", 0), reuse_port=True)
    with server, warnings.catch_warnings():
        warnings.simplefilter("error")
        port = server.getsockname()[1]
        with pytest.raises(OSError) as info:
            rt.create_vsock_server(("", port))
    assert info.value.errno == errno.EADDRINUSE and "vsock has no SO_REUSEPORT" in str(info.value)


def test_create_vsock_connection_rejects_unknown_host_before_any_socket(native, monkeypatch):
    monkeypatch.delenv("VSOCK_CID_MAP", raising=False)
    with pytest.raises(socket.gaierror, match="vsock has no name resolution"):
        native.create_vsock_connection(("db.internal", 80))


def test_getaddrinfo_passive_loop_binds(rt):
    """The classic server loop, with the runtime's getaddrinfo in place of socket.getaddrinfo."""
    entries = rt.vsock_getaddrinfo(None, 0, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)
    # An IPv4-looking entry, as the program's own code expects, with the CID as its host string.
    assert entries == [(socket.AF_INET, socket.SOCK_STREAM, 0, "", ("0.0.0.0", rt.VMADDR_PORT_ANY))]
    for family, kind, proto, _, address in entries:
        with rt.vsock_socket(family, kind, proto) as server:
            assert server.family == socket.AF_VSOCK
            server.bind(address)
            server.listen()
            assert server.getsockname()[1] != rt.VMADDR_PORT_ANY


@pytest.mark.parametrize(
    "args, kwargs, address",
    [
        (("localhost", 8080), {}, (1, 8080)),
        (("3", "8080"), {}, (3, 8080)),
        (("localhost", "http"), {}, (1, 80)),
        ((None, 8080), {}, (1, 8080)),
        ((None, None), {"flags": socket.AI_PASSIVE}, (0xFFFFFFFF, 0xFFFFFFFF)),
        (("0.0.0.0", 9000), {"flags": socket.AI_PASSIVE}, (0xFFFFFFFF, 9000)),
        ((7, 9000), {"family": socket.AF_INET6, "type": socket.SOCK_STREAM}, (7, 9000)),
    ],
)
def test_getaddrinfo_addresses(native, args, kwargs, address):
    [(family, kind, proto, _, got)] = native.vsock_getaddrinfo(*args, **kwargs)
    asked = kwargs.get("family", 0)
    assert (family, kind, proto) == (socket.AF_INET6 if asked == socket.AF_INET6 else socket.AF_INET, socket.SOCK_STREAM, 0)
    shown = {0xFFFFFFFF: "0.0.0.0", 1: "127.0.0.1"}.get(address[0], str(address[0]))  # the wildcard, loopback
    assert got[:2] == (shown, address[1]) and type(got[0]) is str and len(got) == (4 if asked == socket.AF_INET6 else 2)
    [(vsock_family, _, _, _, raw)] = native.vsock_getaddrinfo(*args, **{**kwargs, "family": socket.AF_VSOCK})
    assert vsock_family == socket.AF_VSOCK and raw == address  # asked for vsock: the kernel's own (cid, port)


def test_getaddrinfo_errors(native, monkeypatch):
    monkeypatch.delenv("VSOCK_CID_MAP", raising=False)
    with pytest.raises(socket.gaierror, match="no name resolution"):
        native.vsock_getaddrinfo("example.com", 80)
    with pytest.raises(socket.gaierror, match="AI_NUMERICHOST"):
        native.vsock_getaddrinfo("localhost", 80, flags=socket.AI_NUMERICHOST)
    with pytest.raises(socket.gaierror, match="unknown service 'no-such-service'"):
        native.vsock_getaddrinfo(3, "no-such-service")
    assert native.vsock_getaddrinfo(3, 80, flags=socket.AI_CANONNAME)[0][3] == "3"


def test_green_threads_each_ask_a_replaced_resolver(native, monkeypatch):
    """Green threads share one OS thread: while one waits in a green resolver (eventlet's, which yields
    to its hub), the next one's lookup must reach the resolver too, not take the first one's call for its
    own (a thread-local guard did: eventlet's test_dns_methods_are_green, names resolved concurrently)."""
    import greenlet

    monkeypatch.delenv("VSOCK_CID_MAP", raising=False)
    waiting = []

    def green_resolver(host):
        waiting.append(greenlet.getcurrent())
        greenlet.getcurrent().parent.switch()  # waits for its answer, as a green resolver yields to the hub
        return "0.0.1." + host[-1]

    monkeypatch.setattr(socket, "gethostbyname", green_resolver)
    answers = {}
    lookups = [greenlet.greenlet(lambda name=name: answers.setdefault(name, native.vsock_gethostbyname(name)))
               for name in ("test-host1", "test-host2")]
    for lookup in lookups:
        lookup.switch()  # each starts, and waits inside the resolver
    assert len(waiting) == 2
    for lookup in lookups:
        lookup.switch()  # each gets its answer
    assert answers == {"test-host1": "0.0.1.1", "test-host2": "0.0.1.2"}


def test_a_replaced_resolver_answers_the_names_no_cid_is_known_for(native, monkeypatch):
    """A resolver that replaced socket's (a test's mock of a proxy's name, eventlet's green resolver) answers
    what the map cannot, as it would have answered the program unported: at connect() (the loopback
    address it gives is the loopback CID) and in vsock_getaddrinfo/gethostbyname, which pass on an
    address that means no CID as it is (connect() refuses it, naming it). Names the map knows, CIDs and
    loopback hosts never reach it; when it fails too, when it falls back to the ported resolver for other
    names (python-socks' mock), or when CPython's own is in place, the map's error stands."""
    monkeypatch.delenv("VSOCK_CID_MAP", raising=False)
    asked = []

    def resolver(host, port, *rest):
        asked.append(host)
        if host == "proxy.example":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
        if host == "test-host1.":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("0.0.1.1", port))]
        return native.vsock_getaddrinfo(host, port, *rest)  # the ported fallback of a mock

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    monkeypatch.setattr(socket, "gethostbyname", lambda host: "0.0.1.1")
    monkeypatch.setattr(socket, "gethostbyname_ex", lambda host: (host, [], ["0.0.1.1"]))
    assert native.vsock_address(("proxy.example", 1080)) == (1, 1080)
    assert native.vsock_getaddrinfo("proxy.example", 1080)[0][4] == ("127.0.0.1", 1080)
    assert native.vsock_getaddrinfo("test-host1.", 80) == [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("0.0.1.1", 80))]
    assert native.vsock_gethostbyname("test-host1.") == "0.0.1.1"
    assert native.vsock_gethostbyname_ex("test-host1.") == ("test-host1.", [], ["0.0.1.1"])
    with pytest.raises(socket.gaierror, match="no CID for test-host1."):
        native.vsock_address(("test-host1.", 80))
    assert native.vsock_getaddrinfo("localhost", 80)[0][4] == ("127.0.0.1", 80)
    assert native.vsock_getaddrinfo("3", 80)[0][4] == ("3", 80) and native.vsock_gethostbyname("3") == "3"
    with pytest.raises(socket.gaierror, match="no name resolution: no CID for gone.example"):
        native.vsock_getaddrinfo("gone.example", 80)
    assert set(asked) == {"proxy.example", "test-host1.", "gone.example"}
    monkeypatch.undo()
    monkeypatch.delenv("VSOCK_CID_MAP", raising=False)
    for lookup in (lambda: native.vsock_getaddrinfo("proxy.example", 80), lambda: native.vsock_gethostbyname("proxy.example"),
                   lambda: native.vsock_gethostbyname_ex("proxy.example"), lambda: native.vsock_address(("proxy.example", 80))):
        with pytest.raises(socket.gaierror, match="no name resolution"):
            lookup()


def test_a_mocked_resolver_or_socket_class_gets_the_programs_own_call(native, monkeypatch):
    """Tests that mock socket.getaddrinfo assert the one call they expect (websocket-client's proxy host),
    and tests that mock socket.socket expect the code under test to get the mock (paramiko's connect
    error path): the ported calls give them that. A class that replaced socket.socket for real (gevent's)
    is no mock: vsock_socket makes a vsock socket of that class."""
    from unittest import mock

    monkeypatch.delenv("VSOCK_CID_MAP", raising=False)
    answer = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 8080))]
    with mock.patch("socket.getaddrinfo", return_value=answer) as getaddrinfo:
        assert native.vsock_getaddrinfo("proxy.example", 8080, 0, socket.SOCK_STREAM, socket.IPPROTO_TCP) == answer
    getaddrinfo.assert_called_once_with("proxy.example", 8080, 0, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    with mock.patch("socket.socket") as mocket:
        assert native.vsock_socket(socket.AF_INET, socket.SOCK_STREAM) is mocket.return_value
    mocket.assert_called_once_with(socket.AF_INET, socket.SOCK_STREAM, -1, None)

    class Green(socket.socket):
        pass

    monkeypatch.setattr(socket, "socket", Green)
    with native.vsock_socket(socket.AF_INET, socket.SOCK_STREAM) as made:
        assert type(made) is Green and made.family == socket.AF_VSOCK


def test_a_service_name_vsock_has_no_port_for_goes_to_a_replaced_resolver(native, monkeypatch):
    """trio's tests replace socket.getaddrinfo and expect getaddrinfo("host", "port") to reach it: a
    service name with no port (vsock ports are numbers, or the services' TCP ports) is asked of a
    replaced resolver as a name no CID is known for is, else it is refused."""
    monkeypatch.delenv("VSOCK_CID_MAP", raising=False)
    with pytest.raises(socket.gaierror, match="unknown service 'port'"):
        native.vsock_getaddrinfo("localhost", "port")
    calls = []

    def resolver(host, port, *options):
        calls.append((host, port, *options))
        return "answered"

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    assert native.vsock_getaddrinfo(b"host", "port") == "answered"
    assert native.vsock_getaddrinfo("localhost", "port", 0, socket.SOCK_STREAM) == "answered"
    assert calls == [(b"host", "port"), ("localhost", "port", 0, socket.SOCK_STREAM)]


def test_a_getaddrinfo_call_without_host_or_port_goes_to_a_replaced_resolver(native, monkeypatch):
    """dnspython's override_system_resolver replaces socket.getaddrinfo with one whose host and service
    are optional, and its tests call socket.getaddrinfo("dns.google") for its gaierror. Ported, that call
    reaches the replacement as the program made it; without one it is CPython's own TypeError."""
    for call, missing in ((lambda: native.vsock_getaddrinfo("dns.google", flags=socket.AI_ADDRCONFIG), "'port'"),
                          (lambda: native.vsock_getaddrinfo(), "'host' and 'port'")):
        with pytest.raises(TypeError, match=missing):
            call()
    calls = []

    def resolver(host=None, service=None, family=0, socktype=0, proto=0, flags=0):
        calls.append((host, service, flags))
        raise socket.gaierror(socket.EAI_FAIL, "not found")

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    for call in (lambda: native.vsock_getaddrinfo("dns.google", flags=socket.AI_ADDRCONFIG),
                 lambda: native.vsock_getaddrinfo()):
        with pytest.raises(socket.gaierror, match="not found"):
            call()
    assert calls == [("dns.google", None, socket.AI_ADDRCONFIG), (None, None, 0)]


def test_getaddrinfo_for_ip_datagram_sockets_answers_as_ip(native, monkeypatch):
    """Datagram sockets stay on IP (the datagram policy), so what a program looks up for one is an IP
    address: anyio's create_udp_socket(local_host="localhost") asked the port's resolver and bound its UDP
    socket to vsock's any port, 4294967295 (OverflowError). Stream lookups stay vsock's."""
    monkeypatch.delenv("VSOCK_CID_MAP", raising=False)
    for family in (0, socket.AF_INET):
        asked = ("127.0.0.1", 0, family, socket.SOCK_DGRAM, 0, socket.AI_PASSIVE)
        assert native.vsock_getaddrinfo(*asked) == socket.getaddrinfo(*asked)

    async def ask_the_loop():
        return await native.vsock_loop_getaddrinfo(asyncio.get_running_loop(), "127.0.0.1", 53, type=socket.SOCK_DGRAM)

    assert asyncio.run(ask_the_loop()) == socket.getaddrinfo("127.0.0.1", 53, type=socket.SOCK_DGRAM)
    assert native.vsock_getaddrinfo(None, 0, 0, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)[0][4][1] == 0xFFFFFFFF

    # trio's tests replace socket.getaddrinfo with a mock that falls back to the function it replaced,
    # which the port made vsock_getaddrinfo: the mock is asked once, CPython's own inside it.
    asked = []

    def mock_falling_back(host, port, family=0, type=0, proto=0, flags=0):
        asked.append(host)
        return native.vsock_getaddrinfo(host, port, family, type, proto, flags | socket.AI_NUMERICHOST)

    monkeypatch.setattr(socket, "getaddrinfo", mock_falling_back)
    answer = native.vsock_getaddrinfo("::1", "12345", type=socket.SOCK_DGRAM)
    assert asked == ["::1"] and [entry[4] for entry in answer] == [("::1", 12345, 0, 0)]


def test_getaddrinfo_numeric_host_parses_ip_literals(native, monkeypatch):
    """AI_NUMERICHOST is how programs check that a string is an IP address (tornado's is_valid_ip, before
    it trusts a proxy's X-Real-Ip): an IP literal is valid whether or not it maps to a CID, a name is not."""
    monkeypatch.delenv("VSOCK_CID_MAP", raising=False)
    def numeric(host):
        return native.vsock_getaddrinfo(host, 0, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_NUMERICHOST)
    assert [entry[4] for entry in numeric("127.0.0.1")] == [("127.0.0.1", 0)]  # loopback: CID 1, read back as such
    for blank in ("", " ", b""):  # no name at all, as socket.getaddrinfo says (tornado's is_valid_ip(" ") is False)
        for call in (lambda: numeric(blank), lambda: native.vsock_getaddrinfo(blank, 80)):
            with pytest.raises(socket.gaierror) as caught:
                call()
            assert caught.value.errno == socket.EAI_NONAME
    assert numeric("4.4.4.4") == socket.getaddrinfo("4.4.4.4", 0, socket.AF_UNSPEC, socket.SOCK_STREAM, 0,
                                                   socket.AI_NUMERICHOST)
    assert numeric("2001:db8::1")[0][0] == socket.AF_INET6
    for name in ("www.example.com", "localhost", "1.2.3.4.5"):
        with pytest.raises(socket.gaierror, match="neither a CID nor an IP address"):
            numeric(name)
    with pytest.raises(socket.gaierror, match="no name resolution"):  # without the flag: a host to reach
        native.vsock_getaddrinfo("4.4.4.4", 80)


@pytest.mark.parametrize(
    "host, cid",
    [(3, 3), ("3", 3), ("0x10", 16), ("localhost", 1), ("127.0.0.1", 1), ("::1", 1), ("", 1), ("0.0.0.0", 1), (b"5", 5)],
)
def test_vsock_cid(native, host, cid, monkeypatch):
    monkeypatch.delenv("VSOCK_CID_MAP", raising=False)
    assert native.vsock_cid(host) == cid


def test_vsock_cid_from_environment(native, monkeypatch):
    monkeypatch.setenv("VSOCK_CID_MAP", "db.internal=7, Metrics = 0x11")
    assert native.vsock_cid("db.internal") == 7
    assert native.vsock_cid("metrics") == 17


def test_an_unmapped_host_fails_with_the_entry_to_add(native, monkeypatch):
    monkeypatch.delenv("VSOCK_CID_MAP", raising=False)
    with pytest.raises(socket.gaierror) as info:
        native.vsock_address(("example.com", 443))
    assert str(info.value).splitlines() == [
        "[Errno -2] vsock has no name resolution: no CID for example.com port 443; add example.com=CID (or "
        "example.com:443=CID:PORT) to VSOCK_CID_MAP, or pass the CID as an integer"]


def test_vsock_cid_bad_mapping(native, monkeypatch):
    monkeypatch.setenv("VSOCK_CID_MAP", "db=three")
    with pytest.raises(native.VsockAddressError, match="neither CID, CID:PORT nor unix:PATH"):
        native.vsock_cid("db")


@pytest.mark.parametrize("address, expected", [
    (("kms.example", 443), (3, 8001)),  # HOST:PORT, the endpoint itself
    (("KMS.example", 443), (3, 8001)),  # names are case-insensitive
    (("kms.example", 80), (3, 80)),  # HOST (and HOST:*): the CID, the port as written
    (("s3.example", 443), (3, 8002)),
    (("db", 5432), (5, 5432)),
    (("other.example", 443), (3, 443)),  # "*": every name the map does not list...
    (("localhost", 9000), (1, 9000)),  # ...but loopback and CIDs keep their meaning under a CID-valued "*"
    ((7, 9000), (7, 9000)),
    (("169.254.169.254", 80), (3, 8003)),  # an IPv4 address is a key like a name (IMDS)
])
def test_endpoint_map_precedence(native, monkeypatch, address, expected):
    monkeypatch.setenv("VSOCK_CID_MAP", "kms.example:443=3:8001, kms.example:*=3, s3.example:443=3:8002, db=5, "
                                        "169.254.169.254:80=3:8003, *=3")
    assert native.vsock_address(address) == expected


def test_binds_keep_their_port_unless_mapped(native, monkeypatch):
    monkeypatch.setenv("VSOCK_CID_MAP", ":443=8443,web.example:80=3:8080")
    assert native.vsock_address(("", 443), bind=True) == (native.VMADDR_CID_ANY, 8443)
    assert native.vsock_address(("0.0.0.0", 80), bind=True) == (native.VMADDR_CID_ANY, 80)
    assert native.vsock_address(("", 0), bind=True) == (native.VMADDR_CID_ANY, native.VMADDR_PORT_ANY)


def test_what_a_process_dials_is_recorded(native, monkeypatch, tmp_path):
    record = tmp_path / "dialed.jsonl"
    monkeypatch.setenv("VSOCK_RECORD", str(record))
    monkeypatch.setenv("VSOCK_CID_MAP", "kms.example:443=3:8001")
    native._recorded.clear()
    native.vsock_address(("kms.example", 443))
    native.vsock_address(("kms.example", 443))  # once per endpoint and process
    native.vsock_address(("", 8000), bind=True)
    with pytest.raises(socket.gaierror):
        native.vsock_address(("unknown.example", 443))
    lines = [json.loads(line) for line in record.read_text().splitlines()]
    assert [(e["op"], e["host"], e["port"], e["cid"], e["vport"], e["entry"]) for e in lines] == [
        ("connect", "kms.example", 443, "3", 8001, "kms.example:443"),
        ("bind", "", 8000, str(native.VMADDR_CID_ANY), 8000, None),
        ("connect", "unknown.example", 443, None, None, None),
    ]
    assert "no CID for unknown.example port 443" in lines[-1]["error"]


def test_vsock_bind_cid_and_address(native, monkeypatch):
    rt = native
    monkeypatch.delenv("VSOCK_CID_MAP", raising=False)
    with pytest.warns(RuntimeWarning, match="no vsock_loopback transport"):
        assert rt.vsock_bind_cid("localhost") == rt.VMADDR_CID_ANY
    assert rt.vsock_bind_cid("0.0.0.0") == rt.VMADDR_CID_ANY
    assert rt.vsock_address(("::", 0, 0, 0), bind=True) == (rt.VMADDR_CID_ANY, rt.VMADDR_PORT_ANY)
    assert rt.vsock_address(("localhost", 0)) == (1, 0)
    with pytest.raises(TypeError):
        rt.vsock_address("localhost:80")


# --- diagnosis -----------------------------------------------------------------------------------------------


def test_diagnose_tells_the_truth_about_this_machine(rt):
    report = rt.vsock_diagnose()
    assert report["backend"] == rt.vsock_backend()
    assert report["af_value"] == 40 and report["python"]["af_vsock"] == 40
    assert report["local_cid"] == rt.VMCISock_GetLocalCID()
    info = os.stat("/dev/vsock")
    assert report["device"] == {
        "path": "/dev/vsock", "exists": True, "mode": "%o" % (info.st_mode & 0o777), "uid": info.st_uid,
        "gid": info.st_gid, "readable": True, "writable": True,
    }
    expected_types = {}
    for name in ("SOCK_STREAM", "SOCK_DGRAM", "SOCK_SEQPACKET"):
        try:
            socket.SocketType(40, getattr(socket, name)).close()  # the C type: no runtime involved
            expected_types[name] = "ok"
        except OSError as exc:
            expected_types[name] = f"{errno.errorcode[exc.errno]}: {os.strerror(exc.errno)}"
    assert report["socket_types"] == expected_types
    assert report["loopback"] is False  # no vsock_loopback on this machine: CID 1 cannot be bound
    assert any("no loopback transport" in problem for problem in report["problems"])


def test_runtime_runs_as_a_script_with_json(native):
    done = subprocess.run([sys.executable, "-I", "-S", str(RUNTIME), "--json"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["runtime_version"] == native.VSOCKPORT_RUNTIME_VERSION and report["af_value"] == 40
    text = subprocess.run([sys.executable, "-I", "-S", str(RUNTIME)], capture_output=True, text=True, timeout=60)
    assert text.returncode == 0 and "loopback CID 1 not available" in text.stdout


def test_runtime_is_stdlib_only():
    """The runtime must import with nothing but the standard library (python -S, -I)."""
    done = subprocess.run([sys.executable, "-I", "-S", "-c", f"exec(open({str(RUNTIME)!r}).read())"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


# --- legacy device path, documentation ------------------------------------------------------------------------


def test_legacy_af_ioctl_is_refused_by_an_upstream_kernel(native):
    """VMware's GET_AF_VALUE ioctl: upstream kernels answer ENOTTY, so the lookup yields nothing and
    keeps no fd open; the local-CID ioctl on the same device works, and can keep its fd."""
    assert native._device_ioctl(native._IOCTL_GET_AF_VALUE, keep_open=True) == (None, None)
    cid, fd = native._device_ioctl(native._IOCTL_GET_LOCAL_CID, keep_open=True)
    assert cid == native.VMCISock_GetLocalCID() and fd is not None
    native._af_value_fd = fd  # as if the legacy driver had answered: Release must close it
    native.VMCISock_ReleaseAFValueFd()
    with pytest.raises(OSError) as info:
        os.fstat(fd)
    assert info.value.errno == errno.EBADF
    assert native._af_value_fd is None and native.VMCISock_GetAFValue() == 40  # looked up again


def test_the_runtime_reference_documents_every_public_name(native):
    reference = (RUNTIME.parents[2] / "docs" / "runtime.md").read_text()
    api = reference[reference.index("## API"):]
    missing = [name for name in native.__all__ if f"`{name}" not in api and f" {name}" not in api]
    assert missing == []
    for variable in ("VSOCK_RUNTIME_BACKEND", "VSOCK_CID_MAP", "VSOCK_STRICT", "VSOCK_RECORD", "VSOCK_HYBRID_TIMEOUT"):
        assert variable in reference, variable
    # Every public function is documented in the runtime itself too.
    assert all(getattr(native, name).__doc__ for name in native.__all__ if callable(getattr(native, name))
               and not isinstance(getattr(native, name), type(native.vsock_socket_module)))


def test_bsd_sockaddr_vm_layout():
    """VMware's macOS/FreeBSD layout (leading svm_len byte, 8-bit family), as the runtime defines it
    when sys.platform says darwin. Only the structure is checked: this kernel is not a Mac."""
    done = run_python(
        "import ctypes\n"
        "sys.platform = 'darwin'\n"
        "import vsock\n"
        "s = vsock.sockaddr_vm\n"
        "print(ctypes.sizeof(s), [(n, getattr(s, n).offset, getattr(s, n).size) for n, _ in s._fields_])\n"
        "print(hex(vsock._IOCTL_GET_AF_VALUE), hex(vsock._IOCTL_GET_LOCAL_CID))\n"
    )
    assert done.returncode == 0, done.stderr
    layout, ioctls = done.stdout.splitlines()
    assert layout == (
        "16 [('svm_len', 0, 1), ('svm_family', 1, 1), ('svm_reserved1', 2, 2), ('svm_port', 4, 4), "
        "('svm_cid', 8, 4), ('svm_zero', 12, 4)]"
    )
    assert ioctls == "0x40045619 0x4004561a"  # _IOR('V', 25, int), _IOR('V', 26, unsigned)


# --- library adapters (issue: real programs) --------------------------------------------------------------


def test_setsockopt_or_skip_kept_for_earlier_ports(rt):
    """Code ported by vsockport before version 7 calls setsockopt_or_skip(); it keeps its answers."""
    with vsock(rt) as sock:
        assert rt.setsockopt_or_skip(sock, socket.IPPROTO_TCP, socket.TCP_NODELAY, 1) is False
        assert rt.setsockopt_or_skip(sock, socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1) is True
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
        assert rt.setsockopt_or_skip(tcp, socket.IPPROTO_TCP, socket.TCP_NODELAY, 1) is True
        with pytest.raises(OSError):  # other sockets keep their errors
            rt.setsockopt_or_skip(tcp, socket.IPPROTO_TCP, 12345, 1)
    assert rt.vsock_ip_family(socket.AF_VSOCK) == socket.AF_INET and rt.vsock_ip_family(socket.AF_UNIX) == socket.AF_UNIX


def test_a_socket_not_bound_yet_reads_port_zero_as_on_tcp(rt):
    """The kernel names an unbound vsock socket's port VMADDR_PORT_ANY (4294967295); TCP code reads an
    unbound socket's port as 0 (Pyro5's tests assert it), and binds what it read back."""
    with vsock(rt) as sock:
        assert sock.getsockname() == ("0.0.0.0", 0)
        sock.bind(sock.getsockname())
        assert sock.getsockname()[1] not in (0, rt.VMADDR_PORT_ANY)
    with rt.vsock_socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
        assert sock.getsockname() == ("::", 0, 0, 0)


def test_tcp_style_addresses_on_vsock_sockets(rt):
    """Library code passes ("", port) / ("localhost", port): mapped, not a TypeError; addresses come
    back as plain strings TCP code can read, and go back in as CIDs."""
    with vsock(rt) as sock:
        sock.bind(("", 0))
        host, port = sock.getsockname()
        assert host == "0.0.0.0" and type(host) is str and port not in (0, rt.VMADDR_PORT_ANY)
        assert ":" not in host and f"{host}:{port}" == f"0.0.0.0:{port}"
    local = rt.VMCISock_GetLocalCID()
    with vsock(rt) as sock:
        sock.bind((str(local), 0))  # a host string of digits is a CID
        host, _ = sock.getsockname()
        assert host == str(local) and type(host) is str and int(host) == local
        with vsock(rt) as again:
            again.bind((host, 0))  # what came out goes back in
            assert again.getsockname()[0] == host


def test_server_classes_bind_vsock(rt):
    import http.server
    import socketserver
    import xmlrpc.server
    from wsgiref import simple_server

    for base in (socketserver.TCPServer, http.server.ThreadingHTTPServer, xmlrpc.server.SimpleXMLRPCServer):
        cls = rt.vsock_server_class(base)
        assert issubclass(cls, base) and rt.vsock_server_class(base) is cls and rt.vsock_server_class(cls) is cls
        handler = http.server.BaseHTTPRequestHandler if base is not xmlrpc.server.SimpleXMLRPCServer else None
        server = cls(("", 0), handler) if handler else cls(("localhost", 0), logRequests=False)
        with server:
            assert server.socket.family == socket.AF_VSOCK and type(server.socket) is socket.socket
            host, port = server.server_address
            assert host == "0.0.0.0" and port not in (0, rt.VMADDR_PORT_ANY)
            assert server.address_family == socket.AF_VSOCK  # the socket the class made is vsock from the start
            if isinstance(server, http.server.HTTPServer):
                assert server.server_name == socket.getfqdn("") and server.server_port == port  # as for TCP
    with rt.vsock_make_server("", 0, lambda environ, start: []) as wsgi:
        assert isinstance(wsgi, simple_server.WSGIServer) and wsgi.socket.family == socket.AF_VSOCK
        assert wsgi.base_environ["SERVER_PORT"] == str(wsgi.server_port)  # wsgiref's setup_environ ran


def test_client_classes(rt):
    import http.client
    import smtplib
    import xmlrpc.client

    conn = rt.vsock_client_class(http.client.HTTPConnection)("localhost", 8000)
    assert isinstance(conn, http.client.HTTPConnection) and conn._create_connection is rt.create_vsock_connection
    assert issubclass(rt.vsock_client_class(smtplib.SMTP_SSL), smtplib.SMTP_SSL)
    proxy = rt.vsock_client_class(xmlrpc.client.ServerProxy)("http://localhost:8000/")
    transport = proxy._ServerProxy__transport
    made = transport.make_connection("localhost:8000")
    assert made._create_connection is rt.create_vsock_connection and (made.host, made.port) == ("localhost", 8000)
    import imaplib
    import poplib

    for cls in (poplib.POP3_SSL, imaplib.IMAP4, xmlrpc.client.SafeTransport):
        made = rt.vsock_client_class(cls)
        assert issubclass(made, cls) and rt.vsock_client_class(made) is made
    with pytest.warns(RuntimeWarning, match="does not know how it connects; left as it is"):
        assert rt.vsock_client_class(dict) is dict
    with pytest.warns(RuntimeWarning, match="not a socketserver server; left as it is"):
        assert rt.vsock_server_class(dict) is dict


def test_log_shippers(rt, tmp_path):
    """logging's SocketHandler and HTTPHandler adapted (their records over vsock: the e2e suite): an
    HTTP connection made to connect over vsock, a Unix-path SocketHandler as it was (a record arrives
    here), and the handlers the runtime cannot adapt left as they are, with a warning."""
    import logging
    import logging.handlers
    import pickle
    import struct

    web = rt.vsock_client_class(logging.handlers.HTTPHandler)("logs:8080", "/log")
    connection = web.getConnection("logs:8080", secure=False)
    assert connection._create_connection is rt.create_vsock_connection and (connection.host, connection.port) == ("logs", 8080)
    with socket.socket(socket.AF_UNIX) as collector:
        collector.bind(str(tmp_path / "log.sock"))
        collector.listen()
        shipper = rt.vsock_client_class(logging.handlers.SocketHandler)(str(tmp_path / "log.sock"), None)
        assert isinstance(shipper, logging.handlers.SocketHandler)
        shipper.emit(logging.makeLogRecord({"msg": "over the unix socket"}))
        conn = collector.accept()[0]
        size = struct.unpack(">L", conn.recv(4))[0]
        assert pickle.loads(conn.recv(size))["msg"] == "over the unix socket"
        conn.close()
        shipper.close()

    class OwnSocket(logging.handlers.SocketHandler):
        def makeSocket(self, timeout=1):
            return socket.socket(socket.AF_UNIX)

    for cls in (logging.handlers.DatagramHandler, OwnSocket):
        with pytest.warns(RuntimeWarning, match="does not know how it connects; left as it is"):
            assert rt.vsock_client_class(cls) is cls


def test_ftp_clients_and_smtpd_servers(rt):
    """ftplib's clients and smtpd's asyncore servers, adapted (their traffic over vsock: CPython's
    test_ftplib and test_smtplib in the corpus, and the e2e suite). Here, where nothing may connect: an
    FTP client's active-mode listener is a vsock socket whose port its PORT command carries (the control
    connection is TCP on 127.0.0.1); ftplib's socket functions are the vsock ones only inside the
    adapted client's methods; an smtpd server listens on vsock."""
    import ftplib
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import smtpd

    ftp = rt.vsock_client_class(ftplib.FTP)(timeout=10)
    assert isinstance(ftp, ftplib.FTP) and rt.vsock_client_class(ftplib.FTP_TLS).ntransfercmd.__name__ == "ntransfercmd"
    with socket.create_server(("127.0.0.1", 0)) as control:  # the control connection: TCP here, never vsock
        ftp.sock = socket.create_connection(control.getsockname())
        server_end = control.accept()[0]
    ftp.file, ftp.af = ftp.sock.makefile("r", encoding="utf-8"), socket.AF_INET
    with server_end:
        server_end.sendall(b"200 PORT command successful\r\n")
        with ftp.makeport() as listener:
            assert listener.family == rt.VMCISock_GetAFValue() and listener.getsockname()[0] == "0.0.0.0"
            high, low = server_end.recv(100).decode().strip().split(",")[-2:]
            assert int(high) * 256 + int(low) == listener.getsockname()[1]
    ftp.sock.close()
    ftp.file.close()
    assert ftplib.socket.create_connection is socket.create_connection  # unported code's, outside the client

    server = rt.vsock_server_class(smtpd.SMTPServer)(("0.0.0.0", 0), None)
    try:
        assert isinstance(server, smtpd.SMTPServer) and server.socket.family == rt.VMCISock_GetAFValue()
        assert 49152 <= server.socket.getsockname()[1] <= 65535
        assert rt.vsock_server_class(type(server)) is type(server)
    finally:
        server.close()


def test_a_client_is_bound_to_a_port_of_the_dynamic_range_before_connect(rt):
    """What connect() does first (the connect itself needs the sandbox: tests/e2e/test_compatibility.py):
    an unbound vsock socket gets a 16-bit port; a bound one keeps its own, quietly."""
    bind = rt._libc_bind if rt.vsock_backend() == "ctypes" else rt._CSocket.bind
    with rt.vsock_socket(rt.VMCISock_GetAFValue(), socket.SOCK_STREAM) as client:
        rt._bind_client_port(client, bind)
        host, port = client.getsockname()
        assert host == "0.0.0.0" and 49152 <= port <= 65535
        rt._bind_client_port(client, bind)  # bound already: EINVAL, kept
        assert client.getsockname()[1] == port


def test_shutdown_of_a_closed_socket_is_ebadf_as_cpythons(rt):
    """eventlet's shutdown_safe() catches OSError around shutdown() of a socket it may have closed: the
    vsock shutdown raised ValueError there (its peer check polled descriptor -1)."""
    for made in (rt.vsock_socket(rt.VMCISock_GetAFValue(), socket.SOCK_STREAM), socket.socket()):
        made.close()
        with pytest.raises(OSError) as raised:
            made.shutdown(socket.SHUT_RDWR)
        assert raised.value.errno == errno.EBADF


def test_a_class_fetched_by_name_comes_back_adapted(native, recwarn):
    """vsock_getattr (the port of `getattr(http.client, name)`): clients and TCP/IP servers adapted,
    everything else (a Unix server, a dict, a default) as getattr gives it, without a warning."""
    import http.client
    import socketserver

    assert native.vsock_getattr(http.client, "HTTP" + "Connection") is native.vsock_client_class(http.client.HTTPConnection)
    assert native.vsock_getattr(socketserver, "TCP" + "Server") is native.vsock_server_class(socketserver.TCPServer)
    assert native.vsock_getattr(socketserver, "UnixStreamServer") is socketserver.UnixStreamServer
    assert native.vsock_getattr(http.client, "responses") is http.client.responses
    assert native.vsock_getattr(http.client, "HTTPResponse") is http.client.HTTPResponse
    assert native.vsock_getattr(http.client, "missing", 7) == 7
    with pytest.raises(AttributeError):
        native.vsock_getattr(http.client, "missing")
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_asyncio_server_helpers_listen_on_vsock(rt):
    import asyncio

    async def main():
        server = await rt.vsock_start_server(lambda r, w: None, "0.0.0.0", 0, reuse_port=True)
        loop = asyncio.get_running_loop()
        other = await rt.vsock_loop_create_server(loop, asyncio.Protocol, host=None, port=0, family=socket.AF_INET6)
        names = [s.getsockname() for s in (*server.sockets, *other.sockets)]
        families = [s.family for s in (*server.sockets, *other.sockets)]
        for s in (server, other):
            s.close()
            await s.wait_closed()
        return names, families

    names, families = asyncio.run(main())
    assert families == [socket.AF_VSOCK, socket.AF_VSOCK]
    assert all(host == "0.0.0.0" and port not in (0, rt.VMADDR_PORT_ANY) for host, port in names)


def test_inet_pton_and_ntop_take_the_vsock_family_and_leave_the_others_to_socket(native):
    """VS014's port of `inet_pton(sock.family, host)`: a vsock socket's family and a host as a ported
    socket reports a peer (a CID's digits, "127.0.0.1" for the loopback CID, "0.0.0.0" for the wildcard)
    pack to the kernel's 32-bit svm_cid and back; IP families are socket's."""
    sock = native.vsock_socket(native.VMCISock_GetAFValue(), socket.SOCK_STREAM)
    with sock:
        packed = native.vsock_inet_pton(sock.family, "3")
        assert packed == struct.pack("=I", 3) and native.vsock_inet_ntop(sock.family, packed) == "3"
        assert native.vsock_inet_pton(sock.family, "1") == native.vsock_inet_pton(sock.family, "127.0.0.1") == struct.pack("=I", 1)
        assert native.vsock_inet_ntop(sock.family, struct.pack("=I", 1)) == "127.0.0.1"
        assert native.vsock_inet_pton(socket.AF_VSOCK, b"4294967295") == b"\xff\xff\xff\xff"
        assert native.vsock_inet_pton(socket.AF_VSOCK, "0.0.0.0") == b"\xff\xff\xff\xff"
        for bad in ("10.0.0.1", "-1", "4294967296", ""):
            with pytest.raises(OSError) as caught:
                native.vsock_inet_pton(sock.family, bad)
            assert caught.value.errno == errno.EINVAL
        with pytest.raises(OSError):
            socket.inet_pton(sock.family, "1")  # what the port replaces: CPython refuses the family
    assert native.vsock_inet_pton(socket.AF_INET, "10.0.0.1") == socket.inet_pton(socket.AF_INET, "10.0.0.1")
    assert native.vsock_inet_ntop(socket.AF_INET6, bytes(16)) == "::"
    with pytest.raises(OSError):
        native.vsock_inet_pton(socket.AF_INET, "1")


def test_getnameinfo_gives_a_ported_sockets_address_back(native):
    """VS014's port of getnameinfo (waitress reads its bound address through it): a listening vsock
    socket's address, with its 32-bit port, comes back as strings; the stand-in module has it too; an IP
    address is socket's own answer."""
    sock = native.vsock_socket(native.VMCISock_GetAFValue(), socket.SOCK_STREAM)
    with sock:
        sock.bind(("", native.VMADDR_PORT_ANY))
        sock.listen()
        host, port = sock.getsockname()
        flags = socket.NI_NUMERICHOST | socket.NI_NUMERICSERV
        assert native.vsock_getnameinfo((host, port), flags) == (host, str(port))
        assert native.vsock_socket_module.getnameinfo is native.vsock_getnameinfo
    assert native.vsock_getnameinfo(("3", 8080), flags) == ("3", "8080")
    with pytest.raises(OverflowError):
        socket.getnameinfo(("0.0.0.0", 2**32 - 2), flags)  # what the port replaces
    assert native.vsock_getnameinfo(("127.0.0.1", 80), flags) == socket.getnameinfo(("127.0.0.1", 80), flags)


def test_uvloop_names_are_asyncio_loops_that_listen_on_vsock(native):
    """vsock_uvloop (VS018) answers uvloop's loop-choosing names with asyncio's: the policy it installs
    makes loops that take a vsock listening socket; any other name is uvloop's own."""
    import asyncio

    uv = native.vsock_uvloop
    previous = asyncio.get_event_loop_policy()
    try:
        uv.install()
        assert type(asyncio.get_event_loop_policy()) is asyncio.DefaultEventLoopPolicy
        assert isinstance(asyncio.get_event_loop_policy(), uv.EventLoopPolicy)
        loop = uv.new_event_loop()
        try:
            assert isinstance(loop, uv.Loop) and isinstance(loop, asyncio.BaseEventLoop)
            server = loop.run_until_complete(native.vsock_loop_create_server(loop, asyncio.Protocol, "0.0.0.0", 0))
            assert [s.family for s in server.sockets] == [socket.AF_VSOCK]
            server.close()
            loop.run_until_complete(server.wait_closed())
        finally:
            loop.close()

        async def answer(value):
            return value

        assert uv.run(answer(7), loop_factory=object, debug=False) == 7
    finally:
        asyncio.set_event_loop_policy(previous)
    if importlib.util.find_spec("uvloop") is None:
        with pytest.raises(ModuleNotFoundError, match="uvloop"):
            uv.__version__


def test_a_socket_class_of_the_program_makes_vsock_sockets_from_ip_families():
    """VS001 derives a program's own socket classes (gevent's, from the C type) from
    vsock_socket_class(base): IP families and none become vsock, and the class is the program's."""
    done = run_python(
        "import socket, _socket, vsock\n"
        "class Green(vsock.vsock_socket_class(_socket.socket)):\n    __slots__ = ('__weakref__',)\n"
        "class Mine(vsock.vsock_socket_class(socket.socket)):\n    pass\n"
        "g = Green(socket.AF_INET, socket.SOCK_STREAM); g.bind(('', vsock.VMADDR_PORT_ANY)); g.listen()\n"
        "print(type(g).__name__, g.family == socket.AF_VSOCK, g.getsockname()[0])\n"
        "m = Mine(); print(m.family == socket.AF_VSOCK, isinstance(m, socket.socket))\n"
        "print(Mine(socket.AF_INET, socket.SOCK_DGRAM).family == socket.AF_INET, Green(socket.AF_UNIX).family == socket.AF_UNIX)\n"
        "tcp = socket.socket(); print(Mine(fileno=tcp.detach()).family == socket.AF_INET)\n"
        "print(vsock.vsock_socket_class(socket.socket) is type(m).__mro__[1], hasattr(g, '__dict__'))\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:5] == ["Green True 0.0.0.0", "True True", "True True", "True", "True False"]


def test_a_host_name_is_resolved_once_per_map(native, monkeypatch):
    """A client connects to the same ("localhost", port) again and again: the name is resolved once,
    and again when VSOCK_CID_MAP changes (the connection path's cost, benchmarks/datapath.py)."""
    monkeypatch.delenv("VSOCK_CID_MAP", raising=False)
    native._resolved.clear()
    assert native._address_in(("localhost", 5000)) == (1, 5000)
    assert native._address_in(("", 0), bind=True) == (native.VMADDR_CID_ANY, native.VMADDR_PORT_ANY)
    assert set(native._resolved) == {("localhost", 5000, False), ("", 0, True)}
    monkeypatch.setenv("VSOCK_CID_MAP", "localhost=7")
    assert native._address_in(("localhost", 5000)) == (7, 5000)  # the map changed: resolved again
    monkeypatch.setenv("VSOCK_CID_MAP", "localhost:5000=9:6000")
    assert native._address_in(("localhost", 5000)) == (9, 6000)
    with pytest.raises(socket.gaierror):
        native._address_in(("example.com", 80))  # an error is never remembered as an answer
    assert ("example.com", 80, False) not in native._resolved
    for port in range(300):
        native._address_in(("localhost", port))
    assert len(native._resolved) <= 256  # bounded: a client of many ports does not grow it forever


def test_any_port_is_a_16_bit_port(rt):
    """The kernel picks a vsock ephemeral port anywhere in 32 bits; TCP programs put the port they got
    into URLs (urllib3 refuses "http://localhost:3368890268"): "any" binds a free port of IANA's dynamic
    range, as TCP gives. (Binding needs no data path: it runs on this machine.)"""
    af = rt.VMCISock_GetAFValue()
    sockets = []
    try:
        for address in [("", 0), (rt.VMADDR_CID_ANY, rt.VMADDR_PORT_ANY)] * 20:
            sock = rt.vsock_socket(af, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.bind(address)
            sock.listen()
            assert 49152 <= sock.getsockname()[1] <= 65535
        assert len({s.getsockname()[1] for s in sockets}) == len(sockets)  # each a free one
        plain = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)  # the layer is on every vsock socket
        sockets.append(plain)
        plain.bind((rt.VMADDR_CID_ANY, rt.VMADDR_PORT_ANY))
        assert 49152 <= plain.getsockname()[1] <= 65535
    finally:
        for sock in sockets:
            sock.close()


def test_a_named_tuple_is_an_address(native, monkeypatch):
    """aiosmtpd connects to a HostPort(host, port) named tuple, as TCP's connect() takes it."""
    import collections

    monkeypatch.delenv("VSOCK_CID_MAP", raising=False)
    host_port = collections.namedtuple("HostPort", "host port")
    assert native._address_in(host_port("localhost", 8025)) == (1, 8025)
    assert native._address_in(host_port("", 0), bind=True) == (native.VMADDR_CID_ANY, native.VMADDR_PORT_ANY)


def test_a_mock_of_a_client_class_is_left_quietly(native):
    """A test suite that mocks smtplib.SMTP (aiosmtpd's, under -W error) gets its mock back, and no
    warning; anything else that is not a class still warns."""
    from unittest import mock

    stand_in = mock.MagicMock(name="SMTP")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert native.vsock_client_class(stand_in) is stand_in
    with pytest.warns(RuntimeWarning, match="not a class"):
        native.vsock_client_class(len)


def test_a_client_module_whose_socket_was_replaced_connects_through_it(native, monkeypatch):
    """CPython's own tests put a mock socket module in smtplib (`smtplib.socket = mock_socket`): the
    adapted client connects through it, as the unported one does, instead of dialling vsock (75 of
    test_smtplib's tests did). The real module and the runtime's stand-in for it (what the port writes
    for `smtplib.socket = socket`) are no replacement."""
    import smtplib
    import types
    from test import mock_socket

    def no_vsock_connect(*args, **kwargs):  # (and none may be made from this machine)
        raise AssertionError("dialled vsock despite the replaced module")

    monkeypatch.setattr(native, "create_vsock_connection", no_vsock_connect)
    monkeypatch.setattr(smtplib, "socket", mock_socket)
    mock_socket.reply_with(b"220 Hola mundo")
    client = native.vsock_client_class(smtplib.SMTP)("localhost", 25, local_hostname="localhost", timeout=3)
    assert isinstance(client.sock, mock_socket.MockSocket)
    client.close()
    assert native._socket_replaced_in(smtplib)
    for kept, replaced in ((socket, False), (native.vsock_socket_module, False), (mock_socket, True)):
        client_module = types.ModuleType("client_module")
        client_module.socket = kept
        assert native._socket_replaced_in(client_module) is replaced


def test_a_loop_server_on_a_taken_port_says_what_asyncio_says(native):
    """loop.create_server's bind error, worded as asyncio words it (programs and their tests match on
    "error while attempting to bind on address"), with vsock's explanation after it."""
    import asyncio

    af = native.VMCISock_GetAFValue()
    taken = native.vsock_socket(af, socket.SOCK_STREAM)
    try:
        taken.bind(("", 0))
        taken.listen()
        port = taken.getsockname()[1]

        async def second():
            return await native.vsock_loop_create_server(asyncio.get_running_loop(), asyncio.Protocol, "", port)

        with pytest.raises(OSError, match=r"error while attempting to bind on address \(''.*already bound") as raised:
            asyncio.run(second())
        assert raised.value.errno == errno.EADDRINUSE
    finally:
        taken.close()


def test_a_socket_asked_for_as_ipv6_reports_ipv6_shaped_addresses(rt):
    """Programs that make AF_INET6 sockets unpack four fields and build IPv6 addresses from them (a
    dual-stack server binding "::", Twisted's IPv6 ports): such a socket reports (host, port, 0, 0) with
    "::" for the wildcard CID; an AF_INET one keeps two fields. Peers and accepted sockets, which need a
    connection: tests/e2e/test_compatibility.py."""
    with rt.vsock_socket(socket.AF_INET6, socket.SOCK_STREAM) as six, rt.vsock_socket(socket.AF_INET, socket.SOCK_STREAM) as four:
        six.bind(("::", 0))
        four.bind(("0.0.0.0", 0))
        host, port, flowinfo, scope_id = six.getsockname()
        assert (host, flowinfo, scope_id) == ("::", 0, 0) and 49152 <= port <= 65535 and six.family == socket.AF_VSOCK
        assert four.getsockname()[0] == "0.0.0.0" and len(four.getsockname()) == 2
    for asked in (socket.AF_INET6, 0):  # asked for, or an IPv6 literal with no family (Twisted's _resolveIPv6)
        [(family, _, _, _, address)] = rt.vsock_getaddrinfo("::1", 80, asked, socket.SOCK_STREAM)
        assert (family, address) == (socket.AF_INET6, ("::1", 80, 0, 0))
    with pytest.raises(socket.gaierror, match="AI_NUMERICSERV"):
        rt.vsock_getaddrinfo("localhost", "http", 0, 0, 0, socket.AI_NUMERICSERV)
    with socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM) as raw:  # adopted as IPv6
        raw.bind((rt.VMADDR_CID_ANY, rt.VMADDR_PORT_ANY))
        with rt.vsock_fromfd(raw.fileno(), socket.AF_INET6, socket.SOCK_STREAM) as adopted:
            assert adopted.getsockname() == ("::", raw.getsockname()[1], 0, 0)
    with rt.vsock_socket(socket.AF_INET6, socket.SOCK_STREAM) as six:  # its own descriptor, adopted by its family
        six.bind(("::", 0))  # (Twisted's adoptStreamPort(sock.fileno(), sock.family, ...))
        with rt.vsock_fromfd(six.fileno(), six.family, socket.SOCK_STREAM) as adopted:
            assert adopted.getsockname() == six.getsockname() and len(six.getsockname()) == 4
    with rt.vsock_socket(socket.AF_INET, socket.SOCK_STREAM) as four:
        four.bind(("0.0.0.0", 0))
        with rt.vsock_fromfd(four.fileno(), four.family, socket.SOCK_STREAM) as adopted:
            assert adopted.getsockname() == four.getsockname() and len(four.getsockname()) == 2


def test_an_ip_datagram_socket_stays_on_ip_at_run_time(rt):
    """The datagram policy holds where the port could not see a datagram socket (eventlet's suite:
    `_orig_sock.socket(green.AF_INET, green.SOCK_DGRAM)`, whose type is another module's name): an IP
    or unspecified family with SOCK_DGRAM stays on IP; vsock datagrams are asked for by family."""
    for family in (socket.AF_INET, socket.AF_INET6, -1):
        with rt.vsock_socket(family, socket.SOCK_DGRAM) as sock:
            assert (sock.family, sock.type) == (socket.AF_INET if family == -1 else family, socket.SOCK_DGRAM)
    with rt.vsock_socket(socket.AF_INET, socket.SOCK_STREAM) as stream:
        assert stream.family == socket.AF_VSOCK


def test_a_server_that_chose_a_unix_socket_keeps_it(native, tmp_path):
    """A ported socketserver-style server that sets its own address_family (werkzeug's: AF_INET from a
    host, AF_UNIX from unix://PATH) serves vsock for an IP family and keeps the unix socket it chose
    (werkzeug's own suite hung waiting for a unix socket that had become a vsock one)."""
    import socketserver

    class ChoosingServer(socketserver.TCPServer):
        def __init__(self, address, handler):
            self.address_family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
            super().__init__(address, handler)

    served = native.vsock_server_class(ChoosingServer)
    path = str(tmp_path / "s.sock")
    with served(path, socketserver.BaseRequestHandler) as unix:
        assert unix.socket.family == socket.AF_UNIX and os.path.exists(path)
    with served(("", 0), socketserver.BaseRequestHandler) as vsock:
        assert vsock.socket.family == socket.AF_VSOCK


def test_a_socket_class_kept_in_a_name_stays_the_class_and_makes_vsock_sockets(rt):
    """`_original_socket = vsock_socket_type(socket.socket)` (VS001's port of a class bound to a name,
    eventlet's): calling it makes plain socket.socket objects of the vsock family, while the class's
    methods, isinstance/issubclass and classes derived from it are socket.socket's. A socket class of
    another library gets vsock_socket_class(); anything else comes back as it is, with a warning."""
    original = rt.vsock_socket_type(socket.socket)
    assert rt.vsock_socket_type(socket.socket) is original
    with original() as made, original(socket.AF_INET, socket.SOCK_STREAM) as stream:
        assert type(made) is socket.socket and made.family == socket.AF_VSOCK == stream.family
        assert isinstance(made, original) and issubclass(socket.socket, original)
        assert original.makefile is socket.socket.makefile and original.fileno(made) == made.fileno()
    with original(socket.AF_UNIX) as unix, original(socket.AF_INET, socket.SOCK_DGRAM) as datagram:
        assert (unix.family, datagram.family) == (socket.AF_UNIX, socket.AF_INET)
        assert isinstance(unix, original)

    class Green(original):
        __slots__ = ()

    with Green() as green, socket.socket(socket.AF_UNIX) as plain:
        assert type(green) is Green and green.family == socket.AF_VSOCK
        assert isinstance(green, original) and not isinstance(plain, Green)
    made_by_library = rt.vsock_socket_type(Green)
    with made_by_library(socket.AF_INET) as library_socket:
        assert isinstance(library_socket, Green) and library_socket.family == socket.AF_VSOCK
    with pytest.warns(RuntimeWarning, match="not a socket class"):
        assert rt.vsock_socket_type(dict) is dict


def test_a_green_class_that_wraps_a_kept_socket_class_makes_one_socket(native, monkeypatch):
    """eventlet ported: its GreenSocket, which replaced socket.socket, wraps a socket of the class it kept
    (`_original_socket`, ported as vsock_socket_type(socket.socket)). vsock_socket() makes a GreenSocket,
    whose kept class makes the plain vsock socket inside it, rather than asking socket.socket again."""
    kept = native.vsock_socket_type(socket.socket)

    class GreenSocket:
        def __init__(self, family=socket.AF_INET, *args):
            self.fd = kept(family, *args)

    monkeypatch.setattr(socket, "socket", GreenSocket)
    made = native.vsock_socket(socket.AF_INET, socket.SOCK_STREAM)
    with made.fd:
        assert type(made) is GreenSocket and type(made.fd) is native._StdSocket and made.fd.family == socket.AF_VSOCK


def test_an_address_that_cannot_be_a_key_gets_the_full_paths_error(rt):
    """The connect path looks an address up in what it remembers: a part that cannot be a dictionary key
    still gets the error the address deserves (CPython's own, before any system call), not the lookup's."""
    with rt.vsock_socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        with pytest.raises(TypeError) as info:
            sock.connect(([1], 5))
    assert "unhashable" not in str(info.value)


def test_close_is_cpythons_unless_tcp_close_is_asked_for():
    """VSOCK_TCP_CLOSE=1 (runtime section 4) layers close() and dup(); without it a vsock socket's close is
    CPython's own, so the data path pays nothing. With it, sockets that are not connected (a listener,
    a socket never connected) still close at once, start no thread, and dup() marks both descriptors."""
    code = f"""
import socket, sys, threading
sys.path.insert(0, {str(RUNTIME.parent)!r})
import vsock as rt
af = rt.VMCISock_GetAFValue()
print(type(socket.socket.__dict__["_real_close"]).__name__, type(socket.socket.__dict__["dup"]).__name__)
listener = rt.vsock_socket(af, socket.SOCK_STREAM)
listener.bind((rt.VMADDR_CID_ANY, rt.VMADDR_PORT_ANY))
listener.listen()
listener.close()
unconnected = rt.vsock_socket(af, socket.SOCK_STREAM)
copy = unconnected.dup()
print(listener.fileno(), sorted(rt._Lingering.shared) == sorted((unconnected.fileno(), copy.fileno())))
unconnected.close(); copy.close()
print(rt._Lingering.enabled, rt._Lingering.kept, threading.active_count(), rt._Lingering.shared)
"""
    plain = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=60,
                           env={k: v for k, v in os.environ.items() if k != "VSOCK_TCP_CLOSE"})
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.split("\n")[0] == "function function"  # socket.py's own methods
    asked = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, VSOCK_TCP_CLOSE="1"))
    assert asked.returncode == 0, asked.stderr
    assert asked.stdout.split("\n")[:3] == ["_FamilyMethod _FamilyMethod", "-1 True", "None {} 1 set()"]


def test_a_mocked_loop_method_gets_the_programs_own_arguments(native):
    """aiohttp's run_app tests replace loop.create_server with an autospec'd mock and check the host and
    port it was given: the ported call hands the mock the program's arguments (it makes no socket), as
    the runtime does for a mocked socket class or resolver."""
    import asyncio
    from unittest import mock

    loop = asyncio.new_event_loop()
    try:
        server = mock.create_autospec(asyncio.Server, spec_set=True, instance=True)
        with mock.patch.object(loop, "create_server", autospec=True, spec_set=True, return_value=server), \
                mock.patch.object(loop, "create_connection", return_value=("transport", "protocol")), \
                mock.patch.object(loop, "getaddrinfo", return_value=[("answer",)]):
            made = loop.run_until_complete(native.vsock_loop_create_server(loop, object, None, 8080, backlog=128, ssl=None))
            loop.create_server.assert_called_with(mock.ANY, None, 8080, backlog=128, ssl=None)
            pair = loop.run_until_complete(native.vsock_loop_create_connection(loop, object, "service", 80))
            loop.create_connection.assert_called_with(object, "service", 80, local_addr=None)
            answer = loop.run_until_complete(native.vsock_loop_getaddrinfo(loop, "service", 80))
        assert made is server and pair == ("transport", "protocol") and answer == [("answer",)]
    finally:
        loop.close()
