"""The pre-commit hooks in .pre-commit-hooks.yaml, with the real pre-commit in a throw-away git repo."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

TCP_CODE = "import socket\n\nsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\nsock.connect(('localhost', 8000))\n"


def git(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=600)


def head_of_this_repo() -> str:
    return git("rev-parse", "HEAD", cwd=ROOT).stdout.strip()


def test_hooks_block_unported_code_and_port_it(tmp_path):
    repo = tmp_path / "project"
    repo.mkdir()
    for args in (("init", "-q"), ("config", "user.email", "t@example.com"), ("config", "user.name", "t")):
        assert git(*args, cwd=repo).returncode == 0
    (repo / "pyproject.toml").write_text('[tool.vsockport]\nexclude = ["vendored"]\n')
    (repo / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: {ROOT}\n    rev: {head_of_this_repo()}\n    hooks:\n"
        "      - id: vsockport-diff\n      - id: vsockport\n"
    )
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home")}
    assert subprocess.run([sys.executable, "-m", "pre_commit", "install"], cwd=repo, env=env, capture_output=True).returncode == 0
    (repo / "app.py").write_text(TCP_CODE)
    (repo / "vendored").mkdir()
    (repo / "vendored" / "lib.py").write_text(TCP_CODE)  # excluded in pyproject: --force-exclude keeps it
    git("add", "-A", cwd=repo)

    blocked = subprocess.run(["git", "commit", "-qm", "add a TCP client"], cwd=repo, env=env, capture_output=True, text=True, timeout=900)
    assert blocked.returncode != 0, blocked.stdout + blocked.stderr
    output = blocked.stdout + blocked.stderr
    assert "vsockport (check)" in output and "Failed" in output
    # The check hook prints the port as a diff, with the runtime as one line, not its 1800 lines.
    assert "+sock = vsock_socket(afVMCI, socket.SOCK_STREAM)" in output
    assert "runtime to write: vsock_runtime.py (new file" in output and "VSOCKPORT_RUNTIME_VERSION" not in output
    assert git("rev-parse", "--verify", "-q", "HEAD", cwd=repo).returncode != 0  # nothing was committed
    # The fix hook ported the staged file and added the runtime; the excluded file is untouched.
    assert "vsock_socket(afVMCI, socket.SOCK_STREAM)" in (repo / "app.py").read_text()
    assert (repo / "vsock_runtime.py").is_file()
    assert (repo / "vendored" / "lib.py").read_text() == TCP_CODE

    git("add", "-A", cwd=repo)
    done = subprocess.run(["git", "commit", "-qm", "port to vsock"], cwd=repo, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "vsock_runtime.py" in git("show", "--stat", "HEAD", cwd=repo).stdout
