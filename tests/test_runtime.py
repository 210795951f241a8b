"""The injected runtime against this machine's real kernel. Never connects: binds and listens only."""

from __future__ import annotations

import ctypes
import fcntl
import os
import socket
import struct
import subprocess
import sys

import pytest

from vsockport.runtime import vsock as rt


def test_constants():
    assert rt.VMADDR_CID_ANY == rt.VMADDR_PORT_ANY == 0xFFFFFFFF
    assert (rt.VMADDR_CID_HYPERVISOR, rt.VMADDR_CID_LOCAL, rt.VMADDR_CID_HOST, rt.VMADDR_FLAG_TO_HOST) == (0, 1, 2, 1)
    assert rt.VMADDR_CID_ANY == socket.VMADDR_CID_ANY and rt.VMADDR_PORT_ANY == socket.VMADDR_PORT_ANY


def test_af_value_is_40_on_this_kernel():
    assert rt.VMCISock_GetAFValue() == 40 == socket.AF_VSOCK


def test_local_cid_comes_from_the_real_ioctl():
    fd = os.open("/dev/vsock", os.O_RDONLY)
    try:
        expected = struct.unpack("I", fcntl.ioctl(fd, socket.IOCTL_VM_SOCKETS_GET_LOCAL_CID, b"\0" * 4))[0]
    finally:
        os.close(fd)
    cid = rt.VMCISock_GetLocalCID()
    assert cid == expected
    assert cid > rt.VMADDR_CID_HOST  # a guest's CID is never 0, 1 or 2


def test_bind_and_listen_on_port_any():
    family = rt.VMCISock_GetAFValue()
    with socket.socket(family, socket.SOCK_STREAM) as server:
        server.bind((rt.VMADDR_CID_ANY, rt.VMADDR_PORT_ANY))
        server.listen(1)
        cid, port = server.getsockname()
        assert cid == rt.VMADDR_CID_ANY
        assert port not in (0, rt.VMADDR_PORT_ANY)  # the kernel picked a real ephemeral port


def test_create_vsock_server_maps_wildcard_and_port_zero():
    with rt.create_vsock_server(("", 0)) as server:
        cid, port = server.getsockname()
        assert cid == rt.VMADDR_CID_ANY and port not in (0, rt.VMADDR_PORT_ANY)
        assert server.family == socket.AF_VSOCK


def test_create_vsock_server_loopback_binds_any():
    with rt.create_vsock_server(("localhost", 0), backlog=3) as server:
        assert server.getsockname()[0] == rt.VMADDR_CID_ANY


def test_sockaddr_vm_layout():
    assert ctypes.sizeof(rt.sockaddr_vm) == 16
    offsets = {name: getattr(rt.sockaddr_vm, name).offset for name, _ in rt.sockaddr_vm._fields_}
    assert offsets == {"svm_family": 0, "svm_reserved1": 2, "svm_port": 4, "svm_cid": 8, "svm_flags": 12, "svm_zero": 13}


def test_sockaddr_vm_binds_through_libc():
    """The ctypes structure is accepted by the real kernel's bind()."""
    libc = ctypes.CDLL(None, use_errno=True)
    with socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM) as sock:
        addr = rt.sockaddr_vm(svm_family=rt.VMCISock_GetAFValue(), svm_port=rt.VMADDR_PORT_ANY, svm_cid=rt.VMADDR_CID_ANY)
        assert libc.bind(sock.fileno(), ctypes.byref(addr), ctypes.sizeof(addr)) == 0, os.strerror(ctypes.get_errno())
        assert sock.getsockname()[1] != rt.VMADDR_PORT_ANY


@pytest.mark.parametrize(
    "host, cid",
    [(3, 3), ("3", 3), ("0x10", 16), ("localhost", 1), ("127.0.0.1", 1), ("::1", 1), ("", rt.VMADDR_CID_ANY), (b"5", 5)],
)
def test_vsock_cid(host, cid):
    assert rt.vsock_cid(host) == cid


def test_vsock_cid_from_environment(monkeypatch):
    monkeypatch.setenv("VSOCK_CID_MAP", "db.internal=7, Metrics = 0x11")
    assert rt.vsock_cid("db.internal") == 7
    assert rt.vsock_cid("metrics") == 17


def test_vsock_cid_unknown_host_explains(monkeypatch):
    monkeypatch.delenv("VSOCK_CID_MAP", raising=False)
    with pytest.raises(socket.gaierror) as info:
        rt.vsock_cid("example.com")
    message = str(info.value)
    assert "example.com" in message and "VSOCK_CID_MAP='example.com=<CID>'" in message


def test_vsock_cid_bad_mapping(monkeypatch):
    monkeypatch.setenv("VSOCK_CID_MAP", "db=three")
    with pytest.raises(rt.VsockAddressError, match="not an integer CID"):
        rt.vsock_cid("db")


def test_vsock_bind_cid_and_address():
    assert rt.vsock_bind_cid("localhost") == rt.VMADDR_CID_ANY
    assert rt.vsock_bind_cid("0.0.0.0") == rt.VMADDR_CID_ANY
    assert rt.vsock_address(("::", 0, 0, 0), bind=True) == (rt.VMADDR_CID_ANY, rt.VMADDR_PORT_ANY)
    assert rt.vsock_address(("localhost", 0)) == (1, 0)
    with pytest.raises(TypeError):
        rt.vsock_address("localhost:80")


def test_runtime_is_stdlib_only():
    """The runtime must import with nothing but the standard library (python -S, -I)."""
    done = subprocess.run(
        [sys.executable, "-I", "-S", rt.__file__], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
