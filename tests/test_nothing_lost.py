"""What a port must never lose (issue 22): the runtime under an old name, an edit made during the
port, the owner, mode and links of a file, a symlinked module's runtime, a run stuck on a FIFO."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from vsockport import engine
from vsockport.config import Config
from vsockport.runtime.inject import runtime_source

from tests.privileges import AS_NOBODY, WITHOUT_FILE_PRIVILEGES, rewrite_as

TCP = b"import socket\n\n\ndef serve():\n    s = socket.socket(socket.AF_INET)\n    s.bind(('', 8000))\n    return s\n"


# 1. A changed --runtime-module never ports the runtime that is already there.

def test_a_new_runtime_module_name_leaves_the_old_runtime_as_it_is(cli, tmp_path):
    (tmp_path / "server.py").write_bytes(TCP)
    assert cli("rewrite", ".", cwd=tmp_path).returncode == 0
    old_runtime = (tmp_path / "vsock_runtime.py").read_bytes()
    ported = (tmp_path / "server.py").read_bytes()
    (tmp_path / "client.py").write_bytes(TCP)
    again = cli("rewrite", "--runtime-module", "my_rt", ".", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "vsock_runtime.py").read_bytes() == old_runtime  # not one fix applied to it
    assert "vsock_runtime.py: note: a vsockport runtime named vsock_runtime, left as it is" in again.stderr
    assert (tmp_path / "server.py").read_bytes() == ported  # still imports the runtime it was ported with
    assert b"from my_rt import" in (tmp_path / "client.py").read_bytes()
    assert (tmp_path / "my_rt.py").read_bytes() == runtime_source()
    # Both runtimes import and make ordinary sockets (the ported one recursed until RecursionError).
    probe = ("import socket, vsock_runtime, my_rt, server, client\n"
             "socket.socket(socket.AF_UNIX).close()\nprint('ok')\n")
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.stdout == "ok\n", done.stderr


@pytest.mark.parametrize("name, why", [
    ("__init__", "make the folder a package"),
    ("__main__", "run as the program"),
    ("sitecustomize", "every start-up"),
    ("usercustomize", "every start-up"),
    ("__vsock__", "a dunder name"),
    ("class", "not a valid Python module name"),
    ("socket", "standard library"),
    ("my-rt", "not a valid Python module name"),
])
def test_runtime_module_names_python_gives_a_meaning_are_refused(cli, tmp_path, name, why):
    (tmp_path / "server.py").write_bytes(TCP)
    done = cli("rewrite", "--runtime-module", name, ".", cwd=tmp_path)
    assert done.returncode == 4, done.stderr
    assert why in done.stderr and "Traceback" not in done.stderr and "internal error" not in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["server.py"]
    assert (tmp_path / "server.py").read_bytes() == TCP


# 2. An edit made while the file was being ported wins.

def _edit_during_the_port(tmp_path: Path, edit) -> tuple[engine.RunResult, Path]:
    target = tmp_path / "server.py"
    target.write_bytes(TCP)
    (tmp_path / "other.py").write_bytes(TCP)

    def progress(done: int, total: int) -> None:  # called after a file is ported, before anything is written
        if done == total:
            edit(target)

    return engine.run([tmp_path], Config(), write=True, jobs=1, progress=progress), target


def test_a_line_appended_during_the_port_is_kept(tmp_path):
    result, target = _edit_during_the_port(tmp_path, lambda p: p.write_bytes(p.read_bytes() + b"print('mine')\n"))
    assert target.read_bytes() == TCP + b"print('mine')\n"
    [error] = [r.error for r in result.files if r.path == target]
    assert error == "changed on disk while it was being ported: left as you left it (run again to port it)"
    assert b"vsock_socket(" in (tmp_path / "other.py").read_bytes()  # the rest proceeds


def test_a_file_replaced_with_mv_during_the_port_is_kept(tmp_path):
    def replace(path: Path) -> None:
        fresh = path.with_name("fresh.txt")
        fresh.write_bytes(b"import socket\nprint('replaced')\n")
        os.replace(fresh, path)

    result, target = _edit_during_the_port(tmp_path, replace)
    assert target.read_bytes() == b"import socket\nprint('replaced')\n"
    assert any(r.path == target and r.error and "changed on disk" in r.error for r in result.files)


def test_an_edit_during_the_port_makes_the_run_fail(cli, tmp_path):
    """The CLI's side of it: one line, a non-zero exit. A big file gives the edit time to land."""
    body = b"".join(b"def f%d():\n    return socket.create_connection(('h', %d))\n" % (i, i) for i in range(3000))
    target = tmp_path / "big.py"
    target.write_bytes(b"import socket\n" + body)
    proc = subprocess.Popen([sys.executable, "-m", "vsockport", "rewrite", "--no-cache", str(target)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # The file is read before libcst's parser is loaded to parse it (engine._port_data), and parsing
    # 3000 functions takes far longer than this loop's step: edit once the parser is in the process.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not _has_loaded(proc.pid, "libcst/native"):
        time.sleep(0.002)
    with open(target, "ab") as handle:
        handle.write(b"# my edit\n")
    _, stderr = proc.communicate(timeout=300)
    assert target.read_bytes().endswith(b"# my edit\n") and b"vsock" not in target.read_bytes()
    assert proc.returncode == 2, stderr
    assert "big.py: error: changed on disk while it was being ported" in stderr


def _has_loaded(pid: int, library: str) -> bool:
    try:
        with open(f"/proc/{pid}/maps") as maps:
            return library in maps.read()
    except OSError:
        return False


# 3. Owner, group, mode bits and hard links stay.

def _owned_tree(runner: int) -> Path:
    """another.py: someone else's file the runner may write; mine.py: the runner's own, setuid and
    setgid; linked.py: one file with a second name."""
    tree = Path(tempfile.mkdtemp(prefix="vsockport-owner-"))
    os.chmod(tree, 0o777)
    for name in ("another.py", "mine.py", "linked.py"):
        (tree / name).write_bytes(TCP)
    os.link(tree / "linked.py", tree / "other_name.txt")
    if os.geteuid() == 0:
        os.chown(tree / "another.py", 1234, 4321)
        os.chown(tree / "mine.py", runner, runner)
    os.chmod(tree / "another.py", 0o666)
    os.chmod(tree / "mine.py", 0o6775)
    os.chmod(tree / "linked.py", 0o666)
    return tree


@pytest.mark.parametrize("preamble, runner", [("", 0), (WITHOUT_FILE_PRIVILEGES, 0), (AS_NOBODY, 65534)],
                         ids=["root", "no-file-privileges", "nobody"])
def test_owner_mode_and_hard_links_are_kept(preamble, runner):
    tree = _owned_tree(runner if os.geteuid() == 0 else os.geteuid())
    try:
        files = ("another.py", "mine.py", "linked.py")
        before = {name: (tree / name).stat() for name in files}
        done = rewrite_as(preamble, tree, tree, tree / ".cache")
        assert done.returncode == 0, done.stderr
        for name in files:
            after = (tree / name).stat()
            assert b"vsock_socket(" in (tree / name).read_bytes(), name
            assert (after.st_uid, after.st_gid) == (before[name].st_uid, before[name].st_gid), name
            assert stat.S_IMODE(after.st_mode) == stat.S_IMODE(before[name].st_mode), name
        assert stat.S_IMODE((tree / "mine.py").stat().st_mode) == 0o6775
        assert (tree / "other_name.txt").read_bytes() == (tree / "linked.py").read_bytes()  # one file, both names
        assert (tree / "linked.py").stat().st_ino == (tree / "other_name.txt").stat().st_ino
        assert not list(tree.glob(".*vsockport-tmp"))
    finally:
        shutil.rmtree(tree)


def test_a_writable_file_in_a_folder_that_takes_no_new_file_is_written_in_place(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    target = folder / "server.py"
    target.write_bytes(TCP)
    (folder / "vsock_runtime.py").write_bytes(runtime_source())
    os.chmod(target, 0o666)
    os.chmod(folder, 0o555)
    try:
        done = rewrite_as(WITHOUT_FILE_PRIVILEGES, target, tmp_path, tmp_path / "cache")
        assert done.returncode == 0, done.stderr
        assert b"vsock_socket(" in target.read_bytes()
    finally:
        os.chmod(folder, 0o755)


# 4. A symlinked module's runtime goes where Python will look for it: beside the real file.

def test_a_symlinked_module_gets_its_runtime_beside_its_target(cli, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    real = outside / "server.py"
    real.write_bytes(TCP + b"print('imported', serve.__module__)\n")
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "server.py").symlink_to(real)
    done = cli("rewrite", str(tree / "server.py"))
    assert done.returncode == 0, done.stderr
    assert (tree / "server.py").is_symlink() and b"vsock_socket(" in real.read_bytes()
    assert (outside / "vsock_runtime.py").read_bytes() == runtime_source()
    assert not (tree / "vsock_runtime.py").exists()
    for script in (real, tree / "server.py"):  # run as the target and through the link, from anywhere
        ran = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert ran.stdout == "imported __main__\n", ran.stderr


# 5. A FIFO in a walked folder is reported, never read.

def test_a_fifo_named_like_a_module_in_a_walked_folder_does_not_hang_the_run(cli, tmp_path):
    os.mkfifo(tmp_path / "x.py")
    (tmp_path / "good.py").write_bytes(TCP)
    for command in ("diff", "rewrite"):
        done = cli(command, ".", cwd=tmp_path)  # cli's timeout fails the test if the run hangs
        assert "x.py: error: not a file or folder (a FIFO, socket or device): left alone" in done.stderr
        assert done.returncode == (3 if command == "diff" else 2), done.stderr  # 3: changes pending and an error
    assert b"vsock_socket(" in (tmp_path / "good.py").read_bytes()


# 7. Worker processes: never more than the CPUs, and never left behind.

def _children(pid: int) -> set[int]:
    found = set()
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                found |= {int(child) for child in handle.read().split()}
    except OSError:
        pass
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


def _busy_tree(tmp_path: Path, files: int = 3000) -> Path:
    tree = tmp_path / "tree"
    for index in range(files):
        folder = tree / f"pkg{index // 100:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"mod{index:04d}.py").write_bytes(TCP)
    return tree


def _start_with_workers(tree: Path, jobs: str) -> tuple[subprocess.Popen, set[int]]:
    proc = subprocess.Popen([sys.executable, "-m", "vsockport", "diff", "-q", "--no-cache", "-j", jobs, str(tree)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, workers = time.monotonic() + 120, set()
    while time.monotonic() < deadline and proc.poll() is None:
        workers = _children(proc.pid)
        if workers:
            time.sleep(0.5)  # every worker started
            return proc, _children(proc.pid)
        time.sleep(0.01)
    raise AssertionError("no worker process started")


def test_workers_end_when_the_main_process_is_killed(tmp_path):
    if len(os.sched_getaffinity(0)) < 2:  # one CPU: the run never starts workers (see the cap below)
        proc = subprocess.Popen([sys.executable, "-m", "vsockport", "diff", "-q", "--no-cache", "-j", "2",
                                 str(_busy_tree(tmp_path))], stdout=subprocess.DEVNULL)
        seen = set()
        while proc.poll() is None:
            seen |= _children(proc.pid)
        assert not seen
        return
    proc, workers = _start_with_workers(_busy_tree(tmp_path), "2")
    assert len(workers) == min(2, len(os.sched_getaffinity(0))) and all(_alive(w) for w in workers)
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.05)
    assert not any(_alive(w) for w in workers), "workers outlived the killed run"


def test_jobs_are_capped_at_the_usable_cpus(tmp_path):
    proc, workers = _start_with_workers(_busy_tree(tmp_path), "1000")
    try:
        assert 1 <= len(workers) <= len(os.sched_getaffinity(0))
    finally:
        proc.kill()
        proc.wait()


# 8. No silent choices.

def test_a_port_time_cid_for_localhost_is_applied(cli, tmp_path):
    (tmp_path / "client.py").write_bytes(b"import socket\ns = socket.socket()\ns.connect(('localhost', 81))\n"
                                          b"c = socket.create_connection(('127.0.0.1', 80))\n")
    done = cli("rewrite", "--cid", "localhost=5", "--cid", "127.0.0.1=6", ".", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    ported = (tmp_path / "client.py").read_text()
    assert "s.connect((5, 81))" in ported and "create_vsock_connection((6, 80))" in ported


def test_asyncio_connections_take_the_port_time_map_or_say_why_not(cli, tmp_path):
    (tmp_path / "client.py").write_bytes(
        b"import asyncio\n\nasync def main(host, port, tls):\n"
        b"    await asyncio.open_connection('db.internal', 5432, ssl=tls)\n"
        b"    await asyncio.open_connection(host, port)\n")
    done = cli("rewrite", "--cid", "db.internal=7", ".", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    ported = (tmp_path / "client.py").read_text()
    assert "await vsock_open_connection(7, 5432, ssl=tls, server_hostname='db.internal')" in ported
    assert ("client.py:6:33: VS004 connects to a host computed at run time (host): the --cid map given at port "
            "time cannot reach it") in done.stderr


def test_an_unknown_code_in_a_suppression_is_reported(cli, tmp_path):
    (tmp_path / "server.py").write_bytes(b"import socket\ns = socket.socket()  # vsockport: ignore[VS999]\n")
    done = cli("diff", ".", cwd=tmp_path)
    assert "server.py:2:22: VS100 unknown rule code VS999 in a suppression" in done.stderr
    assert done.returncode == 1


def test_notebooks_and_scripts_in_a_walked_folder_are_not_skipped_silently(cli, tmp_path):
    (tmp_path / "serve").write_bytes(b"#!/usr/bin/env python3\n" + TCP)
    (tmp_path / "serve").chmod(0o755)
    (tmp_path / "notes.ipynb").write_text('{"cells": [{"cell_type": "code", "source": ["import socket\\n", '
                                          '"s = socket.socket(socket.AF_INET)"]}], "nbformat": 4}')
    (tmp_path / "plain.ipynb").write_text('{"cells": [], "nbformat": 4}')
    done = cli("rewrite", ".", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "notes.ipynb: error: notebooks are not ported" in done.stderr
    assert "plain.ipynb" not in done.stderr  # no socket code: nothing to say
    assert b"vsock_socket(" in (tmp_path / "serve").read_bytes()
    assert "2 files scanned" in done.stderr or "3 files scanned" in done.stderr


def test_quiet_statistics_still_shows_errors(cli, tmp_path):
    (tmp_path / "broken.py").write_bytes(b"import socket\ndef (:\n")
    (tmp_path / "server.py").write_bytes(TCP)
    done = cli("diff", "-q", "--statistics", ".", cwd=tmp_path)
    assert done.returncode == 3
    assert "broken.py:2:5: cannot parse" in done.stderr
    assert "VS001" in done.stdout and "scanned" not in done.stderr


def test_statistics_as_json(cli, tmp_path):
    import json

    (tmp_path / "broken.py").write_bytes(b"import socket\ndef (:\n")
    (tmp_path / "server.py").write_bytes(TCP)
    done = cli("diff", "--statistics", "--output-format", "json", ".", cwd=tmp_path)
    counts = json.loads(done.stdout)
    assert {"code": "VS001", "rule": "address-family", "state": "fixable", "count": 1} in counts
    assert all(set(c) == {"code", "rule", "state", "count"} for c in counts)
    assert "broken.py:2:5: cannot parse" in done.stderr and done.returncode == 3
    sarif = cli("diff", "--statistics", "--output-format", "sarif", ".", cwd=tmp_path)
    assert sarif.returncode == 4 and "--statistics prints text or json" in sarif.stderr


def test_force_exclude_applies_to_the_stdin_filename(cli, tmp_path):
    (tmp_path / "vsockport.toml").write_text('exclude = ["vendor"]\n')
    (tmp_path / "vendor").mkdir()
    for command in ("rewrite", "diff"):
        done = subprocess.run([sys.executable, "-m", "vsockport", command, "--force-exclude", "--stdin-filename",
                               "vendor/lib.py", "-"], input=TCP, capture_output=True, cwd=tmp_path, timeout=60)
        assert done.returncode == 0, done.stderr
        assert done.stdout == (TCP if command == "rewrite" else b"") and done.stderr == b""
    ported = subprocess.run([sys.executable, "-m", "vsockport", "rewrite", "--stdin-filename", "vendor/lib.py", "-"],
                            input=TCP, capture_output=True, cwd=tmp_path, timeout=60)
    assert b"vsock_socket(" in ported.stdout  # without --force-exclude a named file is ported, as ruff does


def test_explain_an_unknown_rule_is_a_usage_error(cli):
    done = cli("explain", "VS999")
    assert done.returncode == 4 and "unknown rule 'VS999'" in done.stderr and "Traceback" not in done.stderr
