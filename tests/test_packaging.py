"""What the package claims: its licence, its project URLs, and the Pythons it supports, each checked
by running the runtime module (and compiling vsockport's own code) on that Python."""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = (ROOT / "pyproject.toml").read_text()
CLAIMED = re.findall(r'"Programming Language :: Python :: (3\.\d+)"', PYPROJECT)

# Run by each claimed interpreter: the runtime imports, makes, binds and listens on a vsock socket
# (never connecting: see README's Development section), resolves, and does a hybrid-vsock handshake
# with a VMM end on a real Unix socket.
RUNTIME_CHECK = r"""
import importlib.util, os, socket, sys, tempfile, threading
spec = importlib.util.spec_from_file_location("vsock_runtime", sys.argv[1])
rt = importlib.util.module_from_spec(spec)
spec.loader.exec_module(rt)
assert rt.VMCISock_GetAFValue() != -1
server = rt.vsock_socket(rt.VMCISock_GetAFValue(), socket.SOCK_STREAM)
server.bind(("", 0))
server.listen()
assert server.getsockname()[0] == "0.0.0.0" and server.getsockname()[1] != 0 and type(server) is socket.socket
server.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
server.close()
assert rt.vsock_getaddrinfo("localhost", 80)[0][4] == ("127.0.0.1", 80)
folder = tempfile.mkdtemp()
path = os.path.join(folder, "vm.vsock")
vmm = socket.socket(socket.AF_UNIX)
vmm.bind(path)
vmm.listen()
def answer():
    conn, _ = vmm.accept()
    line = b""
    while not line.endswith(b"\n"):
        line += conn.recv(1)
    conn.sendall(b"OK 1073741824\n" + line)
    conn.close()
threading.Thread(target=answer).start()
os.environ["VSOCK_CID_MAP"] = "*=unix:" + path
client = rt.vsock_socket()
client.settimeout(10)
client.connect(("localhost", 5000))
assert client.recv(100) == b"CONNECT 5000\n"
print(sys.version_info[:2], "ok")
"""


def interpreter(version: str) -> str | None:
    """A real python`version` (pyenv's shims only say which version would be needed)."""
    candidates = sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version}.*/bin/python{version}")))
    candidates += [f"/usr/bin/python{version}", f"/usr/local/bin/python{version}"]
    if f"{sys.version_info[0]}.{sys.version_info[1]}" == version:
        candidates.insert(0, sys.executable)
    return next((c for c in candidates if os.access(c, os.X_OK)), None)


def test_licence_and_project_urls():
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and 'license = { text = "MIT" }' in PYPROJECT
    assert "License :: OSI Approved :: MIT License" in PYPROJECT
    for name in ("Homepage", "Documentation", "Issues"):
        assert re.search(rf'^{name} = "https://', PYPROJECT, re.M), name


def test_claimed_pythons_match_requires_python():
    lowest = re.search(r'requires-python = ">=(3\.\d+)"', PYPROJECT).group(1)
    assert CLAIMED and CLAIMED[0] == lowest
    assert f"{sys.version_info[0]}.{sys.version_info[1]}" in CLAIMED


@pytest.mark.parametrize("version", CLAIMED)
def test_the_runtime_runs_and_the_code_compiles_on_every_claimed_python(version, tmp_path):
    python = interpreter(version)
    assert python is not None, f"Python {version} is claimed in pyproject.toml but not installed here"
    done = subprocess.run([python, "-I", "-c", RUNTIME_CHECK, str(ROOT / "vsockport" / "runtime" / "vsock.py")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr
    # vsockport's own modules are at least valid syntax there (its dependencies are not installed).
    shutil.copytree(ROOT / "vsockport", tmp_path / "vsockport", ignore=shutil.ignore_patterns("__pycache__"))
    compiled = subprocess.run([python, "-I", "-m", "compileall", "-q", str(tmp_path / "vsockport")],
                              capture_output=True, text=True, timeout=120)
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
