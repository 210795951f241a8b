"""`vsockport doctor` against this machine's real kernel, checked against independent probes."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import socket
import struct

from vsockport import doctor


def local_cid() -> int:
    fd = os.open("/dev/vsock", os.O_RDONLY)
    try:
        return struct.unpack("I", fcntl.ioctl(fd, socket.IOCTL_VM_SOCKETS_GET_LOCAL_CID, b"\0" * 4))[0]
    finally:
        os.close(fd)


def test_doctor_json_matches_the_kernel(cli):
    done = cli("doctor", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["backend"] == "native" and report["af_value"] == socket.AF_VSOCK
    assert report["local_cid"] == local_cid()
    assert report["socket_types"]["SOCK_STREAM"] == "ok"
    assert report["socket_types"]["SOCK_DGRAM"] == f"ENODEV: {os.strerror(errno.ENODEV)}"
    assert report["loopback"] is False
    assert any("vsockport sandbox -- COMMAND" in hint for hint in report["suggestions"])  # where loopback is missing
    assert report["device"]["mode"] == "%o" % (os.stat("/dev/vsock").st_mode & 0o777)


def test_doctor_ctypes_backend_sees_the_same_machine(cli):
    native = json.loads(cli("doctor", "--json").stdout)
    forced = json.loads(cli("doctor", "--json", "--backend", "ctypes").stdout)
    assert forced.pop("backend") == "ctypes" and native.pop("backend") == "native"
    assert forced == native


def test_doctor_table(cli):
    done = cli("doctor", env={"COLUMNS": "200"})
    assert done.returncode == 0, done.stderr
    assert f"local CID        │ {local_cid()} " in done.stdout
    assert "loopback (CID 1) │ not available" in done.stdout
    assert "no loopback transport: CID 1 does not work here" in done.stdout
    assert "use `vsockport sandbox -- COMMAND`" in done.stdout


def test_no_sandbox_suggestion_where_loopback_works():
    assert doctor.suggestions({"loopback": True}) == []


def test_doctor_with_a_missing_interpreter_is_one_line(cli):
    done = cli("doctor", "--python", "/nonexistent/python")
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "/nonexistent/python" in done.stderr


def test_usable_needs_a_family_and_streams():
    assert doctor.usable({"af_value": 40, "socket_types": {"SOCK_STREAM": "ok"}})
    assert not doctor.usable({"af_value": -1, "socket_types": {"SOCK_STREAM": "not probed"}})
    assert not doctor.usable({"af_value": 40, "socket_types": {"SOCK_STREAM": "EAFNOSUPPORT: nope"}})


def test_doctor_names_the_hybrid_vmm_sockets_of_the_cid_map(cli, tmp_path):
    """Firecracker / Cloud Hypervisor: each unix:PATH entry is looked at (never connected to)."""
    live = tmp_path / "vm.vsock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(live))
    (tmp_path / "plain").write_text("")
    env = {"VSOCK_CID_MAP": f"guest1=unix:{live},gone=unix:{tmp_path / 'nope'},odd=unix:{tmp_path / 'plain'},db=3",
           "COLUMNS": "250"}
    report = json.loads(cli("doctor", "--json", env=env).stdout)
    assert report["hybrid"] == [
        {"name": "gone", "path": str(tmp_path / "nope"), "state": "missing"},
        {"name": "guest1", "path": str(live), "state": "socket"},
        {"name": "odd", "path": str(tmp_path / "plain"), "state": "not a socket"},
    ]
    assert sum("maps gone to the VMM socket" in p or "maps odd to the VMM socket" in p for p in report["problems"]) == 2
    table = cli("doctor", env=env).stdout
    assert re.search(rf"hybrid guest1 +│ {re.escape(str(live))} \(socket\)", table) and "(missing)" in table
    listener.close()


def test_a_hybrid_only_host_is_usable():
    no_vsock = {"af_value": -1, "socket_types": {"SOCK_STREAM": "not probed"}}
    assert doctor.usable({**no_vsock, "hybrid": [{"name": "*", "path": "/run/vm.vsock", "state": "socket"}]})
    assert not doctor.usable({**no_vsock, "hybrid": [{"name": "*", "path": "/run/vm.vsock", "state": "missing"}]})
