"""The sandbox's parts on the host, and the real VM: exit codes, streams, timeouts, VM failure."""

from __future__ import annotations

import gzip
import hashlib
import io
import lzma
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from vsockport.sandbox import setup as prep
from vsockport.sandbox import vm


def parse_newc(data: bytes) -> dict[str, tuple[int, bytes, tuple[int, int]]]:
    """An independent reader for the cpio files we write: name -> (mode, data, rdev)."""
    entries, offset = {}, 0
    while True:
        header = data[offset : offset + 110]
        assert header[:6] == b"070701"
        fields = [int(header[6 + 8 * i : 14 + 8 * i], 16) for i in range(13)]
        mode, size, rdev, namesize = fields[1], fields[6], (fields[9], fields[10]), fields[11]
        name = data[offset + 110 : offset + 110 + namesize - 1].decode()
        offset += 110 + namesize
        offset += -offset % 4
        body = data[offset : offset + size]
        offset += size + (-size % 4)
        if name == "TRAILER!!!":
            return entries
        entries[name] = (mode, body, rdev)


def test_initramfs_layout(tmp_path):
    ko = tmp_path / "m.ko"
    ko.write_bytes(b"module bytes")
    image = prep.build_initramfs(b"BUSYBOX", b"#!/bin/busybox sh\n", [("m", ko)])
    entries = parse_newc(gzip.decompress(image))
    assert entries["init"][0] == 0o100755 and entries["init"][1] == b"#!/bin/busybox sh\n"
    assert entries["bin/busybox"] == (0o100755, b"BUSYBOX", (0, 0))
    assert entries["dev/console"][0] == 0o020600 and entries["dev/console"][2] == (5, 1)
    assert entries["modules/m.ko"][1] == b"module bytes"
    assert entries["modules.order"][1] == b"m\n"
    assert entries["proc"][0] == 0o040755


def test_module_depends_from_modinfo():
    assert prep.module_depends(b"xx\0license=GPL\0depends=vsock,9pnet\0vermagic=6.1\0") == ["vsock", "9pnet"]
    assert prep.module_depends(b"\0depends=\0name=x\0") == []


def test_module_load_order_puts_dependencies_first(tmp_path):
    root = tmp_path / "lib"
    (root / "kernel" / "net").mkdir(parents=True)
    (root / "kernel" / "net" / "vsock_loopback.ko").write_bytes(b"\0depends=vsock,vmw_vsock_virtio_transport_common\0")
    (root / "kernel" / "net" / "vmw_vsock_virtio_transport_common.ko").write_bytes(b"\0depends=vsock\0")
    (root / "kernel" / "net" / "vsock.ko").write_bytes(b"\0depends=\0")
    (root / "modules.builtin").write_text("kernel/fs/netfs/netfs.ko\n")
    order = [name for name, _ in prep.module_load_order(root, ("netfs", "vsock_loopback"))]
    assert order == ["vsock", "vmw_vsock_virtio_transport_common", "vsock_loopback"]
    with pytest.raises(prep.SetupError, match="not_there"):
        prep.module_load_order(root, ("not_there",))


def test_extract_vmlinux_finds_the_xz_payload():
    elf = b"\x7fELF" + bytes(range(256)) * 10
    bzimage = b"MZ setup code \xfd7zXZ\x00 false magic" + lzma.compress(elf, format=lzma.FORMAT_XZ) + b"\0" * 64
    assert prep.extract_vmlinux(bzimage) == elf
    with pytest.raises(prep.SetupError):
        prep.extract_vmlinux(b"MZ" + lzma.compress(b"not an elf", format=lzma.FORMAT_XZ))


def test_command_script_quotes_and_runs_under_a_real_shell(tmp_path):
    marker = tmp_path / "out"
    script = vm.command_script(
        [sys.executable, "-c", "import os,sys; open(sys.argv[1],'w').write(os.getcwd()+'|'+os.environ['ODD']+'|'+sys.argv[2])", str(marker), "a b 'c' $HOME"],
        tmp_path,
        {"ODD": "it's $x \"q\"", "PWD": "/nope", "1BAD": "skipped"},
    )
    assert "1BAD" not in script and "PWD" not in script
    done = subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert marker.read_text() == f"{tmp_path}|it's $x \"q\"|a b 'c' $HOME"


@pytest.fixture(scope="module")
def guest_busybox():
    """The static busybox the guest runs its command script with, installed as the sandbox would."""
    if prep._busybox() is None:
        prep.ensure_packages(lambda message: None)
    return prep._busybox()


@pytest.mark.parametrize("shell", ["/bin/sh", pytest.param("busybox", marks=pytest.mark.sandbox)])
def test_a_missing_command_is_named_plainly(tmp_path, shell, request):
    (tmp_path / "data.txt").write_text("not a program")
    cases = {("no-such-program", "x"): (127, "vsockport sandbox: no-such-program: command not found in the guest"),
             (str(tmp_path / "gone"),): (127, f"vsockport sandbox: {tmp_path / 'gone'}: command not found in the guest"),
             (str(tmp_path / "data.txt"),): (126, f"vsockport sandbox: {tmp_path / 'data.txt'}: not executable"),
             (str(tmp_path),): (126, f"vsockport sandbox: {tmp_path}: not executable")}
    for command, (code, message) in cases.items():
        script = vm.command_script(list(command), tmp_path, {})
        argv = [shell, "-c", script] if shell != "busybox" else [request.getfixturevalue("guest_busybox"), "sh", "-c", script]
        done = subprocess.run(argv, capture_output=True, text=True)
        assert (done.returncode, done.stderr.strip()) == (code, message)


@pytest.mark.parametrize("shell", ["/bin/sh", pytest.param("busybox", marks=pytest.mark.sandbox)])
def test_hybrid_starts_the_stand_in_muxer_before_the_command(tmp_path, shell, request):
    """--hybrid: the command starts once the muxer's socket exists, and finds its pid exported. The
    check sends a line that is not CONNECT, so the muxer answers nothing and makes no vsock call here."""
    uds = tmp_path / "fc v.sock"
    check = ("import os, signal, socket\n"
             f"s = socket.socket(socket.AF_UNIX); s.connect({str(uds)!r}); s.sendall(b'HELLO\\n')\n"
             "print(s.recv(10), os.path.exists(os.environ['VSOCKPORT_MUXER_PID'] and '/proc/' + os.environ['VSOCKPORT_MUXER_PID']))\n"
             "os.kill(int(os.environ['VSOCKPORT_MUXER_PID']), signal.SIGTERM)\n")
    hybrid = vm.HybridVmm(str(uds), (7000,), log=str(tmp_path / "muxer.log"))
    script = vm.command_script([sys.executable, "-c", check], tmp_path, {}, hybrid)
    argv = [shell, "-c", script] if shell != "busybox" else [request.getfixturevalue("guest_busybox"), "sh", "-c", script]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (0, "b'' True\n"), done.stderr
    assert "--guest-to-host 7000" in script


def test_muxer_reads_exactly_the_connect_line():
    from vsockport.sandbox import muxer

    assert muxer.parse_connect(b"CONNECT 5000\n") == 5000
    for bad in (b"CONNECT 5000", b"CONNECT \n", b"CONNECT -1\n", b"connect 5\n", b"CONNECT 4294967296\n", b"OK 5\n"):
        assert muxer.parse_connect(bad) is None, bad


def test_the_guest_writes_byte_code_unless_asked_not_to(monkeypatch):
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    assert "PYTHONDONTWRITEBYTECODE" not in vm.guest_environment({})
    assert vm.guest_environment({"PYTHONDONTWRITEBYTECODE": "1"})["PYTHONDONTWRITEBYTECODE"] == "1"


def test_sharing_notes_name_what_the_guest_will_not_see(tmp_path):
    host_only = Path(tempfile.mkdtemp(dir="/tmp"))
    try:
        (host_only / "input.txt").write_text("x")
        notes = vm.sharing_notes(["cat", str(host_only / "input.txt"), f"--out={host_only}"], tmp_path, [tmp_path])
        assert len(notes) == 2 and all("fresh, empty tmpfs" in n for n in notes)
        assert f"--share {host_only}" in notes[0]
        assert vm.sharing_notes(["cat", str(host_only / "input.txt")], host_only, [host_only]) == []
        assert "running from /" in vm.sharing_notes(["true"], Path("/"), [])[0]
    finally:
        shutil.rmtree(host_only)


def test_an_interpreter_under_tmp_is_shared_with_the_guest(tmp_path, monkeypatch):
    venv = Path(tempfile.mkdtemp(dir="/tmp", prefix="venv-"))
    try:
        monkeypatch.setattr(sys, "prefix", str(venv))
        project = tmp_path / "project"
        project.mkdir()
        folders = vm.folders_to_share([project / "sub"], project)
        assert venv.resolve() in folders and project.resolve() in folders
        assert (project / "sub").resolve() not in folders  # seen through the project already
        assert vm.sharing_notes([str(venv / "bin" / "python"), "-c", "pass"], project, folders) == []
    finally:
        shutil.rmtree(venv)


def test_guest_path_starts_with_the_real_interpreter():
    env = vm.guest_environment({"X": "1"})
    assert env["PATH"].split(os.pathsep)[0] == os.path.dirname(os.path.realpath(sys.executable))
    assert env["X"] == "1"


def test_kvm_is_not_used_on_a_pvm_only_host():
    cpuinfo = Path("/proc/cpuinfo").read_text()
    if " vmx " in cpuinfo or " svm " in cpuinfo:
        pytest.skip("this host has hardware virtualisation")
    assert vm.kvm_usable() is False


# -- the real VM (marked `sandbox`: README's test command runs them as their own group) ---------------

def run_cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vsockport", *args], capture_output=True, timeout=600, **kwargs)


@pytest.mark.sandbox
def test_sandbox_streams_exit_code_and_large_output(tmp_path):
    program = (
        "import sys, hashlib, socket\n"
        "data = b''.join(b'%07d the quick brown fox\\n' % i for i in range(100000))\n"
        "sys.stdout.buffer.write(data)\n"
        "sys.stderr.write('to stderr ' + hashlib.sha256(data).hexdigest() + ' ' + str(sum(l.startswith('vsock_loopback ') for l in open('/proc/modules'))) + '\\n')\n"
        "open('made-in-guest', 'w').write('shared')\n"
        "sys.exit(7)\n"
    )
    done = run_cli("sandbox", "--timeout", "300", "--", sys.executable, "-c", program, cwd=tmp_path)
    assert done.returncode == 7, done.stderr.decode()
    expected = b"".join(b"%07d the quick brown fox\n" % i for i in range(100000))
    assert len(done.stdout) == len(expected) and done.stdout == expected
    assert done.stderr.decode().splitlines()[-1] == f"to stderr {hashlib.sha256(expected).hexdigest()} 1"
    assert (tmp_path / "made-in-guest").read_text() == "shared"


@pytest.mark.sandbox
def test_sandbox_guest_tools_see_what_the_user_expects(tmp_path):
    # `ss --vsock` lists a listener (vsock_diag is loaded), Python writes byte-code although this
    # environment says PYTHONDONTWRITEBYTECODE, and a missing command is one plain line with 127.
    program = (
        "import socket, subprocess, sys\n"
        "s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)\n"
        "s.bind((socket.VMADDR_CID_ANY, 7391)); s.listen()\n"
        "print(subprocess.run(['ss', '--vsock', '-ln'], capture_output=True, text=True).stdout)\n"
        "print('dont_write_bytecode', sys.dont_write_bytecode)\n"
    )
    done = run_cli("sandbox", "--", sys.executable, "-c", program, cwd=tmp_path,
                   env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert done.returncode == 0, done.stderr.decode()
    out = done.stdout.decode()
    assert any(line.startswith("v_str") and ":7391" in line and "LISTEN" in line for line in out.splitlines()), out
    assert "dont_write_bytecode False" in out
    missing = run_cli("sandbox", "--", "no-such-program", cwd=tmp_path)
    assert missing.returncode == 127
    assert missing.stderr.decode().strip().splitlines()[-1] == (
        "vsockport sandbox: no-such-program: command not found in the guest")


@pytest.mark.sandbox
def test_sandbox_root_is_read_only_overlay(tmp_path):
    probe = "/etc/vsockport-sandbox-probe"
    done = run_cli("sandbox", "--", "/bin/sh", "-c", f"echo x > {probe} && cat {probe}", cwd=tmp_path)
    assert done.returncode == 0 and done.stdout == b"x\n"
    assert not os.path.exists(probe)


@pytest.mark.sandbox
def test_sandbox_timeout_exit_code(tmp_path):
    done = run_cli("sandbox", "--timeout", "5", "--", "sleep", "60", cwd=tmp_path)
    assert done.returncode == vm.EXIT_TIMEOUT
    assert b"timed out after 5 s" in done.stderr


@pytest.mark.sandbox
def test_vm_failure_prints_console_tail(tmp_path, monkeypatch):
    artifacts = prep.prepare()
    broken = tmp_path / "broken-initrd"
    broken.write_bytes(gzip.compress(b"this is not a cpio archive"))
    monkeypatch.setattr(vm, "prepare", lambda log: prep.Artifacts(artifacts.vmlinux, broken, artifacts.kernel_release))
    messages = []
    code = vm.run(["true"], cwd=tmp_path, timeout=120, log=messages.append, stdout=io.BytesIO(), stderr=io.BytesIO())
    assert code == vm.EXIT_SANDBOX_FAILURE
    assert "console tail" in messages[-1]
    assert "Kernel panic" in messages[-1] or "initramfs" in messages[-1]


def test_sandbox_usage_errors(tmp_path):
    assert run_cli("sandbox", cwd=tmp_path).returncode == 4  # a bad command line
    bad_env = run_cli("sandbox", "--env", "NOVALUE", "--", "true", cwd=tmp_path)
    assert bad_env.returncode == 4 and b"NAME=VALUE" in bad_env.stderr
