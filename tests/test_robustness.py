"""Crash safety and bad input: every file ends up old or new, never half-written, and every problem
gets one clear line and a non-zero exit while the rest of the tree proceeds."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from vsockport.engine import MAX_FILE_BYTES
from vsockport.pipeline import port_source
from vsockport.rules import PortOptions

from tests.privileges import WITHOUT_FILE_PRIVILEGES, rewrite_as

TCP = b"import socket\ns = socket.socket(socket.AF_INET)\ns.bind(('', 8000))\n"


def test_sigkill_mid_rewrite_leaves_every_file_old_or_new(tmp_path):
    tree = tmp_path / "tree"
    for index in range(1500):
        folder = tree / f"pkg{index // 100:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"mod{index:04d}.py").write_bytes(TCP)
    ported = port_source(TCP, PortOptions()).new
    files = sorted(tree.rglob("mod*.py"))
    env = {**os.environ, "VSOCKPORT_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.Popen([sys.executable, "-m", "vsockport", "rewrite", "-q", "-j", "1", str(tree)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while files[0].read_bytes() == TCP and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)  # writes are under way: kill in the middle of them
    proc.wait()
    contents = [f.read_bytes() for f in files]
    assert all(c in (TCP, ported) for c in contents), "a file was left half-written"
    assert contents.count(ported) > 0 and contents.count(TCP) > 0, "the kill did not land mid-way"
    leftovers = [p for p in tree.rglob("*vsockport-tmp")]
    assert len(leftovers) <= 1 and all(p.name.startswith(".") for p in leftovers)  # hidden: never ported
    again = subprocess.run([sys.executable, "-m", "vsockport", "rewrite", "-q", str(tree)], env=env, capture_output=True)
    assert again.returncode == 0, again.stderr
    assert all(f.read_bytes() == ported for f in files)


def run(cli, *paths: Path):
    return cli("rewrite", *map(str, paths))


def test_read_only_file_is_left_alone_and_reported(cli, tmp_path):
    locked, free = tmp_path / "locked.py", tmp_path / "free.py"
    locked.write_bytes(TCP)
    free.write_bytes(TCP)
    locked.chmod(0o444)
    done = run(cli, tmp_path)
    assert done.returncode == 2
    assert "locked.py: error: cannot write: read-only file (mode 444): not changed" in done.stderr
    assert locked.read_bytes() == TCP and b"vsock_socket(" in free.read_bytes()


def test_symlinks_in_a_tree_are_not_followed_out_of_it(cli, tmp_path):
    outside = tmp_path / "outside.py"
    outside.write_bytes(TCP)
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "link.py").symlink_to(outside)
    (tree / "real.py").write_bytes(TCP)
    done = run(cli, tree)
    assert done.returncode == 0, done.stderr
    assert outside.read_bytes() == TCP and (tree / "link.py").is_symlink()
    assert b"vsock_socket(" in (tree / "real.py").read_bytes()
    named = run(cli, tree / "link.py")  # named explicitly: the user asked for the file it points to
    assert named.returncode == 0 and b"vsock_socket(" in outside.read_bytes() and (tree / "link.py").is_symlink()


def test_undecodable_binary_and_huge_files(cli, tmp_path):
    latin = tmp_path / "latin.py"
    latin.write_bytes(b"import socket\n# caf\xe9\ns = socket.socket(socket.AF_INET)\n")
    binary = tmp_path / "binary.py"
    binary.write_bytes(b"import socket\x00\x01\x02")
    huge = tmp_path / "huge.py"
    huge.write_bytes(TCP + b"# " + b"x" * (MAX_FILE_BYTES + 10) + b"\n")
    # libcst drops the space in `except E :`; old-Mac files end lines with lone CRs: both are ported
    # with everything the rules did not change kept as it was.
    reformatted = tmp_path / "reformatted.py"
    reformatted.write_bytes(b"import socket\ntry:\n    s = socket.socket()\nexcept OSError :\n    pass\n")
    old_mac = tmp_path / "old_mac.py"
    old_mac.write_bytes(TCP.replace(b"\n", b"\r"))
    good = tmp_path / "good.py"
    good.write_bytes(TCP)
    before = {p: p.read_bytes() for p in (latin, binary, huge)}
    done = cli("rewrite", ".", cwd=tmp_path)
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert any(line.startswith("latin.py:") and "cannot decode" in line and "coding cookie" in line for line in lines)
    assert any(line.startswith("binary.py:1:1: cannot parse: binary file") for line in lines)
    assert any(line.startswith("huge.py: error: too large to port") for line in lines)
    assert "Traceback" not in done.stderr
    assert all(p.read_bytes() == data for p, data in before.items())
    assert b"vsock_socket(" in good.read_bytes()
    assert b"except OSError :\n" in reformatted.read_bytes() and b"vsock_socket(afVMCI)" in reformatted.read_bytes()
    assert b"\n" not in old_mac.read_bytes() and b"vsock_socket(" in old_mac.read_bytes()


def test_unreadable_folder_and_file_are_reported_and_the_rest_proceeds():
    """Root reads everything, so vsockport runs without root's file privileges here (see
    tests/privileges.py: a real uid drop could not import an interpreter installed under /root)."""
    tree = Path(tempfile.mkdtemp(prefix="vsockport-unreadable-"))
    try:
        (tree / "good.py").write_bytes(TCP)
        secret = tree / "secret"
        secret.mkdir()
        (secret / "hidden.py").write_bytes(TCP)
        locked = tree / "locked.py"
        locked.write_bytes(TCP)
        os.chmod(secret, 0o000)
        os.chmod(locked, 0o000)
        done = rewrite_as(WITHOUT_FILE_PRIVILEGES, tree, tree, tree / ".cache")
        assert done.returncode == 2, done.stderr
        lines = done.stderr.splitlines()
        assert any("secret" in line and "Permission denied" in line for line in lines), lines
        assert any(line.startswith("locked.py") and "cannot read" in line for line in lines), lines
        assert "Traceback" not in done.stderr
        assert b"vsock_socket(" in (tree / "good.py").read_bytes()  # the rest was ported
        os.chmod(secret, 0o755)
        os.chmod(locked, 0o644)
        assert (secret / "hidden.py").read_bytes() == TCP and locked.read_bytes() == TCP
    finally:
        for folder, _, _ in os.walk(tree):
            os.chmod(folder, 0o755)
        shutil.rmtree(tree)
