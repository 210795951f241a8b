"""End-to-end tests: port real programs with vsockport, then move real bytes over kernel vsock.

They run only inside `vsockport sandbox`, where vsock_loopback makes CID 1 work. On any other machine
a vsock connect leaves the machine, so collection stops with an error instead of running them.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from tests.guest import in_sandbox_guest

PROGRAMS = Path(__file__).parent / "programs"
ROOT = Path(__file__).resolve().parents[2]

if not in_sandbox_guest():
    raise pytest.UsageError(
        "tests/e2e must run inside the sandbox: vsockport sandbox -- python -m pytest tests/e2e"
    )

_ports = itertools.count(20000 + os.getpid() % 1000 * 10)


@pytest.fixture
def port():
    return next(_ports)


@pytest.fixture(scope="session")
def ported(tmp_path_factory):
    """Every program under programs/ and examples/echo, ported once with the real CLI (in-process:
    interpreter start-up is ~20x slower in the guest), checked clean by a second `diff`."""
    from click.testing import CliRunner

    from vsockport.cli import main

    folder = tmp_path_factory.mktemp("ported")
    shutil.copytree(PROGRAMS, folder / "programs")
    shutil.copytree(ROOT / "examples" / "echo", folder / "echo")
    runner = CliRunner()
    done = runner.invoke(main, ["rewrite", str(folder)])
    assert done.exit_code == 0, done.output
    assert (folder / "programs" / "vsock_runtime.py").is_file() and (folder / "echo" / "vsock_runtime.py").is_file()
    again = runner.invoke(main, ["diff", str(folder)])
    assert again.exit_code == 0, again.output
    return folder


@pytest.fixture(params=["native", "ctypes"])
def backend(request):
    """Ported programs run both on CPython's own AF_VSOCK support and on the runtime's libc path."""
    return request.param


def backend_env(backend: str | None) -> dict:
    return {**os.environ, "VSOCK_RUNTIME_BACKEND": backend or "auto"}


def python(*args: str, cwd: Path, timeout: float = 120, backend: str | None = None) -> subprocess.CompletedProcess:
    """A plain interpreter without site-packages: the ported program must not need vsockport."""
    return subprocess.run(
        [sys.executable, "-S", *args], capture_output=True, text=True, cwd=cwd, timeout=timeout, env=backend_env(backend)
    )


@contextmanager
def running(*command: str, cwd: Path, ready: str, backend: str | None = None) -> Iterator[subprocess.Popen]:
    """Run a server until the block ends; enter once it prints `ready` on stdout."""
    proc = subprocess.Popen(
        command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=backend_env(backend)
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            line = proc.stdout.readline()
            if ready in line:
                break
            if not line and proc.poll() is not None:
                raise AssertionError(f"server exited {proc.returncode}: {proc.stderr.read()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"server never printed {ready!r}")
        yield proc
    finally:
        proc.kill()
        proc.wait()


def wait_for_vsock_listener(port: int, timeout: float = 30) -> None:
    """Poll until something accepts on (CID 1, port): for peers that print nothing when ready."""
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        probe = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
        try:
            probe.connect((1, port))
            return
        except OSError:
            time.sleep(0.1)
        finally:
            probe.close()
    raise AssertionError(f"nothing listened on vsock port {port}")
