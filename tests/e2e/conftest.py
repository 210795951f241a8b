"""End-to-end tests: port real programs with vsockport, then move real bytes over kernel vsock.

They run only inside `vsockport sandbox`, where vsock_loopback makes CID 1 work. On any other machine
a vsock connect leaves the machine, so collection stops with an error instead of running them.
"""

from __future__ import annotations

import itertools
import os
import select
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


def ported_libraries(site: Path) -> str:
    """The third-party libraries tests/e2e/prepare.py ported on the host; returns its rewrite log."""
    from tests.e2e.prepare import site_dir

    if not (site_dir().parent / "rewrite.log").is_file():
        raise pytest.UsageError("the ported e2e libraries are missing: run `python tests/e2e/prepare.py` on the host first")
    shutil.copytree(site_dir(), site, symlinks=True)
    return (site_dir().parent / "rewrite.log").read_text()


@pytest.fixture(scope="session")
def ported(tmp_path_factory):
    """Every program under programs/ and examples/echo, ported once with the real CLI (in-process:
    interpreter start-up is ~20x slower in the guest) and checked clean by a second `diff`; beside
    them, site/ holds the third-party libraries that tests/e2e/prepare.py ported on the host."""
    from click.testing import CliRunner

    from vsockport.cli import main

    folder = tmp_path_factory.mktemp("ported")
    shutil.copytree(PROGRAMS, folder / "programs")
    shutil.copytree(ROOT / "examples" / "echo", folder / "echo")
    (folder / "libraries.log").write_text(ported_libraries(folder / "site"))
    runner = CliRunner()
    # The programs run with PYTHONPATH=site: that is where the port looks for the libraries they import,
    # all ported already (an unported one would be a VS019 finding, and exit 1).
    sys.path.insert(0, str(folder / "site"))
    try:
        programs = [str(folder / "programs"), str(folder / "echo")]
        done = runner.invoke(main, ["rewrite", *programs])
        assert done.exit_code == 0, done.output
        assert (folder / "programs" / "vsock_runtime.py").is_file() and (folder / "echo" / "vsock_runtime.py").is_file()
        again = runner.invoke(main, ["diff", *programs])
        assert again.exit_code == 0, again.output
    finally:
        sys.path.remove(str(folder / "site"))
    return folder


@pytest.fixture(params=["native", "ctypes"])
def backend(request):
    """Ported programs run both on CPython's own AF_VSOCK support and on the runtime's libc path."""
    return request.param


def backend_env(backend: str | None, site: Path | None = None, extra: dict | None = None) -> dict:
    env = {**os.environ, "VSOCK_RUNTIME_BACKEND": backend or "auto", **(extra or {})}
    if site is not None:
        env["PYTHONPATH"] = str(site)  # the ported third-party libraries, instead of site-packages
    return env


def python(
    *args: str, cwd: Path, timeout: float = 120, backend: str | None = None, site: Path | None = None,
    env: dict | None = None,
) -> subprocess.CompletedProcess:
    """A plain interpreter without site-packages: the ported program must not need vsockport."""
    return subprocess.run(
        [sys.executable, "-S", *args], capture_output=True, text=True, cwd=cwd, timeout=timeout,
        env=backend_env(backend, site, env),
    )


@contextmanager
def running(
    *command: str, cwd: Path, ready: str | None, backend: str | None = None, site: Path | None = None,
    env: dict | None = None,
) -> Iterator[subprocess.Popen]:
    """Run a process until the block ends; enter once it prints `ready` on stdout (None: at once)."""
    proc = subprocess.Popen(
        command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=backend_env(backend, site, env)
    )
    try:
        deadline = time.monotonic() + 120  # big libraries take a while to import under emulation
        while ready is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([proc.stdout], [], [], remaining)[0]:
                proc.kill()
                raise AssertionError(f"server never printed {ready!r}: {proc.stderr.read()}")
            line = proc.stdout.readline()
            if ready in line:
                break
            if not line and proc.poll() is not None:
                raise AssertionError(f"server exited {proc.returncode}: {proc.stderr.read()}")
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


def wait_for_tcp(port: int, timeout: float = 30, host: str = "127.0.0.1") -> None:
    """Poll until something accepts on host:port (a real TCP peer such as redis-server)."""
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listened on TCP {host}:{port}")


def program(name: str) -> str:
    """A system program (redis-server lives in /usr/bin, mosquitto in /usr/sbin)."""
    from tests.e2e.prepare import SYSTEM_PROGRAM_FOLDERS

    found = shutil.which(name) or next((f"{d}/{name}" for d in SYSTEM_PROGRAM_FOLDERS if os.path.exists(f"{d}/{name}")), None)
    if found is None:
        raise pytest.UsageError(f"{name} is missing: run `python tests/e2e/prepare.py` on the host first")
    return found
