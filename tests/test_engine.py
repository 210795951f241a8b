"""Discovery, runtime placement and injection, atomic writes and parallel runs through the engine."""

from __future__ import annotations

import ast
import difflib
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from vsockport import engine, pipeline
from vsockport.config import Config
from vsockport.runtime import inject

SERVER = "import socket\ns = socket.socket(socket.AF_INET)\ns.bind(('', 0))\n"


def write(path: Path, text: str = SERVER) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def ported_paths(run) -> set[str]:
    return {f.path.name for f in run.changed if not f.is_runtime}


def test_skips_hidden_virtualenv_and_gitignored(tmp_path):
    write(tmp_path / "app.py")
    write(tmp_path / ".hidden" / "h.py")
    write(tmp_path / "venv2" / "lib" / "v.py")
    (tmp_path / "venv2" / "pyvenv.cfg").write_text("home = /usr\n")
    write(tmp_path / "generated" / "g.py")
    (tmp_path / ".gitignore").write_text("generated/\n")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    run = engine.run([tmp_path], Config(), write=False)
    assert ported_paths(run) == {"app.py"}
    run = engine.run([tmp_path], Config(respect_gitignore=False), write=False)
    assert ported_paths(run) == {"app.py", "g.py"}


def test_explicit_file_is_always_ported(tmp_path):
    path = write(tmp_path / ".hidden" / "h.py")
    assert ported_paths(engine.run([path], Config(), write=False)) == {"h.py"}


def test_scripts_get_runtime_beside_them(tmp_path):
    write(tmp_path / "a" / "one.py")
    write(tmp_path / "b" / "two.py")
    run = engine.run([tmp_path], Config(), write=True)
    assert {f.path for f in run.changed if f.is_runtime} == {tmp_path / "a" / "vsock_runtime.py", tmp_path / "b" / "vsock_runtime.py"}
    assert "from vsock_runtime import" in (tmp_path / "a" / "one.py").read_text()


def test_package_gets_one_runtime_and_relative_imports_that_work(tmp_path):
    write(tmp_path / "pkg" / "__init__.py", "")
    write(tmp_path / "pkg" / "server.py")
    write(tmp_path / "pkg" / "sub" / "__init__.py", "")
    write(tmp_path / "pkg" / "sub" / "client.py", "import socket\nc = socket.socket()\n")
    engine.run([tmp_path], Config(), write=True)
    assert (tmp_path / "pkg" / "vsock_runtime.py").is_file()
    assert not (tmp_path / "pkg" / "sub" / "vsock_runtime.py").exists()
    assert "from .vsock_runtime import" in (tmp_path / "pkg" / "server.py").read_text()
    assert "from ..vsock_runtime import" in (tmp_path / "pkg" / "sub" / "client.py").read_text()
    done = subprocess.run(
        [sys.executable, "-S", "-c", "import pkg.server, pkg.sub.client; print(repr(pkg.server.s.getsockname()[0]), pkg.sub.client.c.family)"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[0] == "'0.0.0.0'"  # VMADDR_CID_ANY, as getsockname() reports a TCP wildcard


TOOL = """import socket
import sys


def bound():
    s = socket.socket(socket.AF_INET)
    s.bind(("", 0))
    return s.family


if __name__ == "__main__":
    sys.stdout.write(str(bound()))
"""


def test_a_script_inside_a_package_runs_both_ways(tmp_path):
    """A file of a package that is also run as a script (a test fixture started with `python
    tests/fixtureapps/getline.py`) cannot use the package's relative runtime import when run that way: it
    gets the two-way import and a runtime beside it. waitress's functional tests hung on this (the
    scripts died at their import and the test waited for their output)."""
    write(tmp_path / "pkg" / "__init__.py", "")
    write(tmp_path / "pkg" / "tools" / "__init__.py", "")
    tool = write(tmp_path / "pkg" / "tools" / "tool.py", TOOL)
    library = write(tmp_path / "pkg" / "tools" / "library.py", "from . import tool\n\nif __name__ == '__main__':\n"
                                                                 "    import socket\n    socket.socket().bind(('', 0))\n")
    run = engine.run([tmp_path], Config(), write=True)
    assert {f.path for f in run.changed if f.is_runtime} == {tmp_path / "pkg" / "vsock_runtime.py",
                                                            tmp_path / "pkg" / "tools" / "vsock_runtime.py"}
    assert "if __package__:\n    from ..vsock_runtime import (\n" in tool.read_text()
    assert "else:  # run as a script: the runtime beside it\n    from vsock_runtime import (\n" in tool.read_text()
    assert "if __package__" not in library.read_text()  # its own relative import: it cannot run as a script anyway
    assert "from ..vsock_runtime import" in library.read_text()
    vsock = str(int(__import__("socket").AF_VSOCK))
    for command in ([sys.executable, "-S", str(tool)], [sys.executable, "-S", "-m", "pkg.tools.tool"],
                    [sys.executable, "-S", "-c", "import sys, pkg.tools.tool as t; sys.stdout.write(str(t.bound()))"]):
        done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert (done.returncode, done.stdout) == (0, vsock), (command, done.stderr)
    assert engine.run([tmp_path], Config(), write=False).changed == []  # a second run changes nothing
    # a later edit that needs another runtime name extends both halves
    tool.write_text(tool.read_text() + "\nclient = socket.create_connection\n")
    engine.run([tmp_path], Config(), write=True)
    text = tool.read_text()
    (two_way,) = [s for s in ast.parse(text).body if isinstance(s, ast.If) and getattr(s.test, "id", "") == "__package__"]
    halves = [{alias.name for alias in two_way.body[0].names}, {alias.name for alias in two_way.orelse[0].names}]
    assert halves[0] == halves[1] and "create_vsock_connection" in halves[0], text
    assert engine.run([tmp_path], Config(), write=False).changed == []


def test_runtime_is_version_stamped_and_updated(tmp_path):
    write(tmp_path / "app.py")
    engine.run([tmp_path], Config(), write=True)
    runtime = tmp_path / "vsock_runtime.py"
    assert runtime.read_bytes() == inject.runtime_source()
    # an older vsockport's runtime is replaced, and diff shows it
    old = inject.runtime_source().replace(
        f"VSOCKPORT_RUNTIME_VERSION = {inject.runtime_version(inject.runtime_source())}".encode(), b"VSOCKPORT_RUNTIME_VERSION = 0"
    )
    runtime.write_bytes(old)
    run = engine.run([tmp_path], Config(), write=False)
    assert [f.path for f in run.changed] == [runtime]
    engine.run([tmp_path], Config(), write=True)
    assert runtime.read_bytes() == inject.runtime_source()
    # a newer one is left alone
    newer = inject.runtime_source().replace(
        f"VSOCKPORT_RUNTIME_VERSION = {inject.runtime_version(inject.runtime_source())}".encode(), b"VSOCKPORT_RUNTIME_VERSION = 999"
    )
    runtime.write_bytes(newer)
    assert engine.run([tmp_path], Config(), write=False).changed == []


def test_deleted_runtime_is_restored_for_already_ported_code(tmp_path):
    write(tmp_path / "app.py")
    engine.run([tmp_path], Config(), write=True)
    (tmp_path / "vsock_runtime.py").unlink()
    run = engine.run([tmp_path], Config(), write=False)
    assert [f.path.name for f in run.changed] == ["vsock_runtime.py"]


def test_writes_keep_file_mode(tmp_path):
    path = write(tmp_path / "tool.py")
    path.chmod(0o750)
    engine.run([tmp_path], Config(), write=True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o750
    assert not [p for p in os.listdir(tmp_path) if "vsockport-tmp" in p]


def test_parallel_run_matches_serial_run(tmp_path):
    for i in range(40):
        write(tmp_path / f"m{i:02}.py", SERVER if i % 3 else "import os\n")
    serial = engine.run([tmp_path], Config(), write=False, jobs=1)
    parallel = engine.run([tmp_path], Config(), write=False, jobs=2)
    key = lambda run: sorted((str(f.path), f.new) for f in run.files)
    assert key(serial) == key(parallel)
    assert len(serial.changed) == 26 + 1  # 26 servers and their runtime


def test_prefilter_skips_parsing(tmp_path):
    write(tmp_path / "plain.py", "def f(:\n")  # would not parse, but has no trigger bytes
    run = engine.run([tmp_path], Config(), write=False)
    assert run.error_count == 0 and run.scanned == 1


def test_deeply_nested_module_is_ported_not_rejected(tmp_path):
    """Long implicit string concatenations nest deeper than the default recursion limit."""
    pieces = "\n".join(f'    "piece {i} "' for i in range(3000))
    path = write(tmp_path / "deep.py", f"import socket\nTEXT = (\n{pieces}\n)\ns = socket.socket(socket.AF_INET)\n")
    run = engine.run([path], Config(), write=True)
    assert run.error_count == 0, [f.error for f in run.files]
    text = path.read_text()
    assert text.endswith("s = vsock_socket(afVMCI)\n") and '    "piece 2999 "\n' in text


def test_cache_skips_unchanged_files_and_notices_changes(tmp_path, monkeypatch):
    monkeypatch.setenv("VSOCKPORT_CACHE_DIR", str(tmp_path / "cache"))
    calls = []
    real = pipeline.port_source
    monkeypatch.setattr(pipeline, "port_source", lambda data, *a: calls.append(data) or real(data, *a))
    app = write(tmp_path / "src" / "app.py")
    write(tmp_path / "src" / "other.py", "import socket\nu = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n")

    def run(use_cache=True):
        return engine.run([tmp_path / "src"], Config(), write=False, jobs=1, use_cache=use_cache)

    cold = run()
    assert len(calls) == 2
    warm = run()
    assert len(calls) == 2  # both served from the cache
    summary = lambda r: sorted((f.path.name, f.new, f.findings) for f in r.files)
    assert summary(warm) == summary(cold)
    app.write_text(SERVER + "t = socket.socket(socket.AF_INET6)\n")
    run()
    assert len(calls) == 3  # only the edited file is ported again
    run(use_cache=False)
    assert len(calls) == 5
    for entry in (tmp_path / "cache").rglob("*"):
        if entry.is_file():
            entry.write_text("{not json")  # a damaged entry is a miss, never an error
    assert summary(run()) == summary(run(use_cache=False))


def test_stat_index_serves_unchanged_files_and_sees_stealthy_edits(tmp_path, monkeypatch):
    """A warm run answers from file signatures; an edit that keeps size and mtime still shows (ctime)."""
    monkeypatch.setenv("VSOCKPORT_CACHE_DIR", str(tmp_path / "cache"))
    reads = []
    real = pipeline.port_source
    monkeypatch.setattr(pipeline, "port_source", lambda data, *a: reads.append(data) or real(data, *a))
    app = write(tmp_path / "src" / "app.py", "import socket\ns = socket.socket(socket.AF_INET)\n")
    write(tmp_path / "src" / "plain.py", "print('hello')\n")

    def run(**kw):
        return engine.run([tmp_path / "src"], Config(**kw), write=False, jobs=1, use_cache=True)

    ported = lambda r: [f.path.name for f in r.changed if not f.is_runtime]
    cold = run()
    assert ported(cold) == ["app.py"] and len(reads) == 1
    assert len(list((tmp_path / "cache" / "stat").glob("*.json"))) == 1
    warm = run()
    assert ported(warm) == ["app.py"] and warm.changed[0].new == cold.changed[0].new
    assert len(reads) == 1  # served from the index and the result cache, not ported again
    stat = app.stat()
    app.write_text("import socket\nt = socket.socket(socket.AF_INET)\n")  # same size
    os.utime(app, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # and the old mtime
    edited = run()
    assert b"t = vsock_socket(afVMCI)" in edited.changed[0].new and len(reads) == 2
    other_cid = run(cid_map={"localhost": 5})  # other options: the recorded result does not apply
    assert len(reads) == 3 and other_cid.changed
    for index in (tmp_path / "cache" / "stat").glob("*.json"):
        index.write_text("[damaged")
    assert ported(run()) == ["app.py"]


def test_warm_diff_prints_recorded_hunks_without_diffing(tmp_path, monkeypatch):
    """A warm run prints the same diff, from the recorded hunks: difflib is not called again."""
    from vsockport import report

    monkeypatch.setenv("VSOCKPORT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "src" / "app.py", SERVER)
    write(tmp_path / "pkg" / "app.py", SERVER)  # the same bytes elsewhere: same hunks, its own headers

    def diffs():
        run = engine.run([tmp_path / "src", tmp_path / "pkg"], Config(), write=False, jobs=1, use_cache=True)
        return [report.unified_diff(f) for f in sorted(run.changed, key=lambda f: str(f.path)) if not f.is_runtime]

    cold = diffs()
    assert any(d.startswith("--- a/src/app.py\n+++ b/src/app.py\n@@ ") for d in cold)
    assert any(d.startswith("--- a/pkg/app.py\n+++ b/pkg/app.py\n@@ ") for d in cold)
    monkeypatch.setattr(difflib, "unified_diff", lambda *a, **k: pytest.fail("diffed again"))
    assert diffs() == cold
