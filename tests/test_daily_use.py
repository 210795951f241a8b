"""Safe and quiet for daily use (issue 16), through the real command line: nothing of the user's is
overwritten, per-file configuration independent of argument order, quiet runtime, ruff's conventions."""

from __future__ import annotations

import ast
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

SERVER = 'import socket\ns = socket.socket()\ns.bind(("", 8080))\n'


@pytest.fixture
def app(tmp_path):
    (tmp_path / "app.py").write_text(SERVER)
    return tmp_path


def _json(done) -> dict:
    return json.loads(done.stdout)


# 1. Nothing of the user's is ever overwritten or lost.

def test_a_users_module_named_like_the_runtime_is_never_overwritten(cli, app):
    (app / "utils.py").write_text("KEEP = 1\n")
    # From outside the project (the folder is not on sys.path): the file beside the module is refused.
    done = cli("rewrite", "--runtime-module", "utils", str(app / "app.py"), cwd=app.parent)
    assert done.returncode == 2, done.stderr
    assert (app / "utils.py").read_text() == "KEEP = 1\n"
    assert (app / "app.py").read_text() == SERVER  # not left importing a module that is not the runtime
    assert "utils.py: error: not overwritten" in done.stderr
    assert "app.py: error: not ported: its runtime utils.py cannot be written" in done.stderr
    # From inside it, `utils` is importable there: the name itself is refused, before anything runs.
    inside = cli("rewrite", "--runtime-module", "utils", "app.py", cwd=app)
    assert inside.returncode == 4 and "'utils' is an installed module" in inside.stderr
    assert (app / "utils.py").read_text() == "KEEP = 1\n"


def test_a_hand_written_vsock_runtime_is_never_overwritten(cli, app):
    (app / "vsock_runtime.py").write_text("# my own vsock helpers\n")
    done = cli("rewrite", "app.py", cwd=app)
    assert done.returncode == 2
    assert (app / "vsock_runtime.py").read_text() == "# my own vsock helpers\n"
    assert (app / "app.py").read_text() == SERVER
    assert "vsock_runtime.py: error: not overwritten" in done.stderr


def test_an_earlier_runtime_is_updated_in_place(cli, app):
    assert cli("rewrite", "app.py", cwd=app).returncode == 0
    runtime = app / "vsock_runtime.py"
    current = runtime.read_text()
    runtime.write_text(re.sub(r"VSOCKPORT_RUNTIME_VERSION = \d+", "VSOCKPORT_RUNTIME_VERSION = 1", current, count=1))
    (app / "more.py").write_text(SERVER)
    done = cli("rewrite", "--diff", ".", cwd=app)
    assert done.returncode == 0, done.stderr
    assert runtime.read_text() == current
    assert "runtime written: vsock_runtime.py (updated from version 1 to" in done.stderr


@pytest.mark.parametrize("name", ["socket", "json", "sys", "click"])
def test_a_runtime_module_name_that_shadows_an_importable_module_is_refused(cli, app, name):
    done = cli("rewrite", "--runtime-module", name, "app.py", cwd=app)
    assert done.returncode == 4 and "would shadow it" in done.stderr
    assert sorted(p.name for p in app.iterdir()) == ["app.py"]


def test_a_shadowing_runtime_name_in_the_configuration_is_an_error_of_its_files(cli, app):
    (app / "vsockport.toml").write_text('runtime-module = "socket"\n')
    done = cli("rewrite", ".", cwd=app)
    assert done.returncode == 2
    assert "standard library" in done.stderr and "1 file left unported" in done.stderr
    assert sorted(p.name for p in app.iterdir()) == ["app.py", "vsockport.toml"]


@pytest.mark.skipif(os.name != "posix", reason="file modes")
def test_a_read_only_file_is_reported_not_fixed_and_leaves_no_orphan_runtime(cli, app):
    (app / "app.py").chmod(0o444)
    done = cli("rewrite", "--output-format", "json", "app.py", cwd=app)
    report = _json(done)
    assert done.returncode == 2
    assert report["changed"] == []
    assert [e["message"] for e in report["errors"]] == ["cannot write: read-only file (mode 444): not changed"]
    assert all(f["state"] != "fixed" for f in report["findings"])
    assert not (app / "vsock_runtime.py").exists()
    assert (app / "app.py").read_text() == SERVER
    text = cli("rewrite", "--show-fixes", "app.py", cwd=app)
    assert "[fixed]" not in text.stderr and "0 changed" in text.stderr


def test_a_killed_runs_temporary_file_is_removed_by_the_next_rewrite(cli, app):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = app / f".app.py.{dead.pid}-k1ll3d.vsockport-tmp"
    stale.write_text("half a port")
    live = app / f".app.py.{os.getpid()}-al1ve.vsockport-tmp"  # a running writer's: kept
    live.write_text("in progress")
    diff = cli("diff", "app.py", cwd=app)
    assert stale.exists() and f"{stale.name}: note: a temporary file left by an interrupted" in diff.stderr
    done = cli("rewrite", ".", cwd=app)
    assert done.returncode == 0
    assert not stale.exists() and live.exists()
    assert f"{stale.name}: note: removed" in done.stderr


def test_a_terminated_rewrite_leaves_no_temporary_file(tmp_path):
    # SIGTERM while writing: the write unwinds (temporary removed), as an interrupted one does.
    (tmp_path / "app.py").write_text(SERVER)
    slow = (
        "import sys, time, vsockport.files as files\n"
        "real = files.os.fsync\n"
        "def stalled(fd):\n"
        "    print('writing', flush=True); time.sleep(30)\n"
        "files.os.fsync = stalled\n"
        "from vsockport.cli import main\n"
        "sys.argv = ['vsockport', 'rewrite', 'app.py']\n"
        "main()\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", slow], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline() == "writing\n"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".vsockport-tmp")] == []
    assert (tmp_path / "app.py").read_text() == SERVER


# 2. Per-file configuration: results never depend on argument order.

def _monorepo(root: Path) -> None:
    for name, config in (("alpha", '[tool.vsockport]\nignore = ["VS003"]\n'),
                         ("beta", '[tool.vsockport]\ncid-map = {"db.internal" = 7}\n')):
        package = root / name
        package.mkdir()
        (package / "pyproject.toml").write_text(config)
        (package / "client.py").write_text(SERVER + 's.connect(("db.internal", 5432))\n')


def test_each_file_uses_its_nearest_configuration_in_either_argument_order(cli, tmp_path):
    _monorepo(tmp_path)
    forward = _json(cli("diff", "--output-format", "json", "alpha", "beta", cwd=tmp_path))
    backward = _json(cli("diff", "--output-format", "json", "beta", "alpha", cwd=tmp_path))
    key = lambda f: (f["path"], f["location"]["row"], f["code"])  # noqa: E731
    assert sorted(forward["findings"], key=key) == sorted(backward["findings"], key=key)
    codes = {path: {f["code"] for f in forward["findings"] if f["path"] == path} for path in
             ("alpha/client.py", "beta/client.py")}
    assert "VS003" not in codes["alpha/client.py"] and "VS003" in codes["beta/client.py"]
    rewritten = cli("rewrite", "beta", "alpha", cwd=tmp_path)
    assert rewritten.returncode == 0  # alpha's db.internal gets its CID at run time: a note, not work left
    assert "connects to db.internal:5432: the runtime needs its CID at run time" in rewritten.stderr
    assert "(7, 5432)" in (tmp_path / "beta" / "client.py").read_text()
    assert "db.internal" in (tmp_path / "alpha" / "client.py").read_text()


def test_config_and_isolated_override_the_nearest_configuration(cli, tmp_path):
    _monorepo(tmp_path)
    (tmp_path / "shared.toml").write_text('cid-map = {"db.internal" = 9}\n')
    given = _json(cli("diff", "--output-format", "json", "--config", "shared.toml", "alpha", "beta", cwd=tmp_path))
    assert {f["path"] for f in given["findings"] if f["code"] == "VS003"} == {"alpha/client.py", "beta/client.py"}
    isolated = _json(cli("diff", "--output-format", "json", "--isolated", "beta", cwd=tmp_path))
    assert any(f["code"] == "VS004" and f["state"] == "note" for f in isolated["findings"])  # no CID known
    both = cli("diff", "--isolated", "--config", "shared.toml", "beta", cwd=tmp_path)
    assert both.returncode == 4 and "exclude each other" in both.stderr


@pytest.mark.parametrize("config", ["[tool]\nvsockport = 3\n", "tool = 3\n", "[tool.vsockport]\nexclude = 3\n",
                                    "[tool.vsockport]\nselect = [1]\n", "[tool.vsockport\n"])
def test_a_bad_configuration_value_of_any_type_is_one_line_and_the_rest_proceeds(cli, tmp_path, config):
    bad, good = tmp_path / "bad", tmp_path / "good"
    bad.mkdir(), good.mkdir()
    (bad / "pyproject.toml").write_text(config)
    (bad / "a.py").write_text(SERVER)
    (bad / "b.py").write_text(SERVER)
    (good / "app.py").write_text(SERVER)
    done = cli("diff", "bad", "good", cwd=tmp_path)
    assert done.returncode == 3, done.stderr
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if ": error: " in line]
    assert len(errors) == 1 and "pyproject.toml" in errors[0] and "2 files left unported" in errors[0]
    assert "+++ b/good/app.py" in done.stdout


# 3. Quiet diffs.

def test_the_runtime_is_one_line_unless_asked_for(cli, app):
    done = cli("diff", "app.py", cwd=app)
    assert "VSOCKPORT_RUNTIME_VERSION" not in done.stdout
    assert len(done.stdout.splitlines()) < 15
    assert re.search(r"runtime to write: vsock_runtime\.py \(new file, \d+ lines; --show-runtime shows it\)",
                     done.stderr)
    full = cli("diff", "--show-runtime", "app.py", cwd=app)
    assert "+++ b/vsock_runtime.py" in full.stdout and "VSOCKPORT_RUNTIME_VERSION" in full.stdout


def test_rewrite_diff_prints_what_it_wrote(cli, app):
    done = cli("rewrite", "--diff", "app.py", cwd=app)
    assert done.returncode == 0
    assert "+s = vsock_socket(afVMCI)" in done.stdout and "runtime written: vsock_runtime.py" in done.stderr
    assert (app / "app.py").read_text().count("vsock_socket(afVMCI)") == 1
    assert cli("rewrite", "--diff", "app.py", cwd=app).stdout == ""  # nothing written, nothing shown


# 4. Conventions.

def test_stdin_diff_and_rewrite(cli, app):
    def piped(*args):
        return subprocess.run([sys.executable, "-m", "vsockport", *args], input=SERVER, capture_output=True, text=True,
                              cwd=app, timeout=120)

    diff = piped("diff", "-", "--stdin-filename", "app.py")
    assert diff.returncode == 1 and diff.stdout.startswith("--- a/app.py\n+++ b/app.py\n")
    ported = piped("rewrite", "-", "--stdin-filename", "app.py")
    assert ported.returncode == 0
    assert ported.stdout == (app / "app.py").read_text().replace("s = socket.socket()", "s = vsock_socket(afVMCI)").replace(
        'import socket\n', 'import socket\nfrom vsock_runtime import VMADDR_CID_ANY, VMCISock_GetAFValue, vsock_socket\n'
        'afVMCI = VMCISock_GetAFValue()\n').replace('("", 8080)', "(VMADDR_CID_ANY, 8080)")
    assert (app / "app.py").read_text() == SERVER and not (app / "vsock_runtime.py").exists()
    assert "vsock_runtime" in ported.stderr  # says the runtime is not written for stdin
    (app / "vsockport.toml").write_text('ignore = ["VS003"]\n')  # --stdin-filename picks the configuration
    configured = piped("rewrite", "-", "--stdin-filename", "app.py")
    assert '("", 8080)' in configured.stdout
    mixed = piped("diff", "-", "app.py")
    assert mixed.returncode == 4


def test_exit_zero_keeps_errors(cli, app):
    assert cli("diff", "--exit-zero", "app.py", cwd=app).returncode == 0
    (app / "broken.py").write_text("import socket\ndef f(:\n")
    assert cli("diff", "--exit-zero", "app.py", "broken.py", cwd=app).returncode == 2


def test_statistics_counts_per_code(cli, app):
    (app / "two.py").write_text(SERVER + "t = socket.socket()\n")
    done = cli("diff", "--statistics", ".", cwd=app)
    rows = [line.split() for line in done.stdout.splitlines()]
    assert rows == [["3", "VS001", "address-family", "[fixable]"], ["2", "VS003", "bind-address", "[fixable]"]]
    assert done.returncode == 1


def test_show_fixes_lists_fixed_findings(cli, app):
    quiet = cli("diff", "app.py", cwd=app)
    assert "VS001" not in quiet.stderr  # the diff shows them
    shown = cli("diff", "--show-fixes", "app.py", cwd=app)
    assert "app.py:2:5: VS001" in shown.stderr and "[fixable]" in shown.stderr


def test_quiet_never_hides_errors_or_findings(cli, app):
    (app / "broken.py").write_text("import socket\ndef f(:\n")
    (app / "udp.py").write_text("import socket\nu = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n")
    done = cli("diff", "-q", ".", cwd=app)
    assert "broken.py:2:7: cannot parse" in done.stderr
    assert "udp.py:2:5: VS012" in done.stderr
    assert "would change" not in done.stderr and "runtime to write" not in done.stderr
    assert "+++ b/app.py" in done.stdout


def test_color_follows_no_color_and_force_color(cli, app):
    forced = cli("diff", "app.py", cwd=app, env={"FORCE_COLOR": "1", "NO_COLOR": ""})
    assert "\x1b[32m" in forced.stdout  # green additions into a pipe, because asked
    plain = cli("diff", "app.py", cwd=app, env={"FORCE_COLOR": "1", "NO_COLOR": "1"})
    assert not re.search(r"\x1b\[(3|9)\dm", plain.stdout + plain.stderr)
    assert "\r" not in plain.stderr  # never a progress bar into a pipe


def test_a_closed_pipe_ends_quietly(app):
    for n in range(30):
        (app / f"m{n}.py").write_text(SERVER)
    shell = subprocess.run(f"{sys.executable} -m vsockport diff . | head -1", shell=True, cwd=app,
                           capture_output=True, text=True, timeout=120)
    assert shell.stdout == "--- a/app.py\n"
    assert "Error" not in shell.stderr and "internal error" not in shell.stderr


def test_a_symlink_loop_on_the_command_line_is_one_line(cli, app):
    (app / "loop_a").symlink_to("loop_b")
    (app / "loop_b").symlink_to("loop_a")
    done = cli("diff", "loop_a", "app.py", cwd=app)
    assert done.returncode == 3
    assert "loop_a: error: cannot read: Too many levels of symbolic links" in done.stderr
    assert "+++ b/app.py" in done.stdout


@pytest.mark.parametrize("source", [
    "import socket\ndef f(:\n",
    "import socket\nx = (1,\n",
    "import socket\nif True:\nprint(1)\n",
    "import socket\ns = socket.socket(\n    1 2)\n",
    "import socket\nx = 'abc\n",
])
def test_a_syntax_error_carries_pythons_own_position(cli, tmp_path, source):
    (tmp_path / "broken.py").write_text(source)
    with pytest.raises(SyntaxError) as python:
        ast.parse(source)
    done = cli("diff", "broken.py", cwd=tmp_path)
    assert done.returncode == 2
    assert f"broken.py:{python.value.lineno}:{python.value.offset}: cannot parse" in done.stderr


def test_a_notebook_is_refused_with_one_line_and_left_untouched(cli, tmp_path):
    notebook = tmp_path / "server.ipynb"
    data = json.dumps({"cells": [{"cell_type": "code", "source": [SERVER], "metadata": {}, "outputs": []}],
                       "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
    notebook.write_text(data)
    done = cli("rewrite", "server.ipynb", cwd=tmp_path)
    assert done.returncode == 2
    assert "server.ipynb: error: notebooks are not ported" in done.stderr
    assert notebook.read_text() == data and not (tmp_path / "vsock_runtime.py").exists()


def test_a_stub_gets_no_runtime_code(cli, tmp_path):
    # A stub's values never run, and types are the same on vsock: nothing in it is ported.
    stub = ('import socket\nFAMILY = socket.AF_INET\nDEFAULT_ADDRESS = ("localhost", 8080)\n'
            'def serve(family: int = socket.AF_INET) -> socket.socket: ...\n')
    (tmp_path / "server.pyi").write_text(stub)
    done = cli("rewrite", "server.pyi", cwd=tmp_path)
    assert done.returncode == 0
    assert (tmp_path / "server.pyi").read_text() == stub
    assert not (tmp_path / "vsock_runtime.py").exists()


def test_unused_suppression_is_a_real_rule(cli, tmp_path):
    (tmp_path / "m.py").write_text("import socket\nx = 1  # vsockport: ignore[VS001]\n")
    assert "VS100" in cli("rules").stdout
    assert "unused-suppression" in cli("explain", "VS100").stdout
    found = cli("diff", "m.py", cwd=tmp_path)
    assert found.returncode == 1 and "m.py:2:8: VS100 unused suppression of VS001" in found.stderr
    assert cli("diff", "--ignore", "VS100", "m.py", cwd=tmp_path).returncode == 0
    rules = json.loads(cli("rules", "--output-format", "json").stdout)
    assert any(r["code"] == "VS100" for r in rules)


def test_usage_and_internal_errors_have_their_own_exit_codes(cli, app):
    assert cli("diff", "--no-such-option", "app.py", cwd=app).returncode == 4
    assert cli("diff", "--cid", "nonsense", "app.py", cwd=app).returncode == 4
    crash = subprocess.run(
        [sys.executable, "-c", "import sys, vsockport.engine as e\n"
                               "def boom(*a, **k): raise RuntimeError('boom')\n"
                               "e.run = boom\nfrom vsockport.cli import main\n"
                               "sys.argv = ['vsockport', 'diff', 'app.py']\nmain()\n"],
        cwd=app, capture_output=True, text=True, timeout=120)
    assert crash.returncode == 5
    assert "internal error: RuntimeError: boom (run with --debug for details)" in crash.stderr
    assert "Traceback" not in crash.stderr
