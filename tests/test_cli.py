"""The command line through a real subprocess: exit codes, messages, diff/rewrite round trips."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT

ECHO = ROOT / "examples" / "echo"


@pytest.fixture
def echo(tmp_path):
    target = tmp_path / "echo"
    shutil.copytree(ECHO, target)
    return target


def test_diff_shows_port_and_changes_nothing(cli, echo):
    before = {p.name: p.read_bytes() for p in echo.iterdir()}
    result = cli("diff", str(echo))
    assert result.returncode == 1, result.stderr
    assert "-    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:" in result.stdout
    assert "+    with vsock_socket(afVMCI, socket.SOCK_STREAM) as server:" in result.stdout
    assert "+afVMCI = VMCISock_GetAFValue()" in result.stdout
    assert "+        server.bind((VMADDR_CID_ANY, port))" in result.stdout
    assert "+        sock.connect((VMADDR_CID_LOCAL, port))" in result.stdout
    # The runtime is one line, not 1700 lines of diff; --show-runtime shows it.
    assert "vsock_runtime.py" not in result.stdout and "runtime to write:" in result.stderr
    assert "new file," in result.stderr and "--show-runtime shows it" in result.stderr
    full = cli("diff", "--show-runtime", str(echo))
    assert "+++ b/" in full.stdout and "vsock_runtime.py" in full.stdout and "VSOCKPORT_RUNTIME_VERSION" in full.stdout
    assert "2 files scanned, 2 would change" in result.stderr  # the runtime is its own part of the line
    assert {p.name: p.read_bytes() for p in echo.iterdir()} == before


def test_diff_output_applies_with_patch(cli, echo, tmp_path):
    if shutil.which("patch") is None:
        pytest.fail("patch(1) is required for this test")
    result = cli("diff", "--show-runtime", "echo", cwd=echo.parent)
    applied = subprocess.run(["patch", "-p1", "-s"], input=result.stdout, text=True, cwd=echo.parent, capture_output=True)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert cli("diff", "echo", cwd=echo.parent).returncode == 0


def test_rewrite_then_diff_is_clean(cli, echo):
    result = cli("rewrite", str(echo))
    assert result.returncode == 0, result.stderr
    assert "2 files scanned, 2 changed" in result.stderr
    assert (echo / "vsock_runtime.py").is_file()
    again = cli("diff", str(echo))
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout == ""


def test_ported_server_runs_without_vsockport_and_listens_on_vsock(cli, echo):
    """`python -S` has no site-packages: the ported program needs nothing but the stdlib."""
    assert cli("rewrite", str(echo)).returncode == 0
    port = 40000 + os.getpid() % 20000
    server = subprocess.Popen([sys.executable, "-S", "server.py", str(port)], cwd=echo, stdout=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()
    finally:
        server.kill()
        server.wait()
    # (VMADDR_CID_ANY, port) as the runtime reports it: a host string "" (TCP would say '0.0.0.0')
    assert line.strip() == f"listening on ('0.0.0.0', {port})", line


def test_unparsable_file_is_reported_and_the_rest_proceeds(cli, tmp_path):
    (tmp_path / "bad.py").write_text("import socket\ndef broken(:\n")
    (tmp_path / "good.py").write_text("import socket\ns = socket.socket(socket.AF_INET)\n")
    result = cli("rewrite", str(tmp_path))
    assert result.returncode == 2
    line = next(l for l in result.stderr.splitlines() if "bad.py" in l)
    assert ":2:" in line and "cannot parse" in line
    assert "Traceback" not in result.stderr
    assert (tmp_path / "bad.py").read_text() == "import socket\ndef broken(:\n"
    assert "vsock_socket(afVMCI)" in (tmp_path / "good.py").read_text()


def test_python2_file_gets_a_hint(cli, tmp_path):
    (tmp_path / "old.py").write_text("import socket\nprint 'hello'\n")
    result = cli("diff", str(tmp_path / "old.py"))
    assert result.returncode == 2
    assert "Python 2" in result.stderr


def test_changes_and_errors_together_exit_3(cli, tmp_path):
    (tmp_path / "bad.py").write_text("import socket\nx = (\n")
    (tmp_path / "good.py").write_text("import socket\ns = socket.socket(socket.AF_INET)\n")
    assert cli("diff", str(tmp_path)).returncode == 3


def test_missing_path_is_an_error(cli, tmp_path):
    result = cli("diff", str(tmp_path / "nope"))
    assert result.returncode == 2
    assert "no such file or directory" in result.stderr


@pytest.mark.parametrize("bad", ["db", "db=notanumber", "=3", "db=4294967296"])
def test_bad_cid_option(cli, tmp_path, bad):
    result = cli("diff", "--cid", bad, str(tmp_path))
    assert result.returncode == 4  # a bad command line
    assert "--cid" in result.stderr and "Traceback" not in result.stderr


def test_cid_option_maps_hosts(cli, tmp_path):
    (tmp_path / "c.py").write_text("import socket\ns = socket.socket()\ns.connect(('db.internal', 5432))\n")
    result = cli("diff", "--cid", "db.internal=7", str(tmp_path))
    assert "+s.connect((7, 5432))" in result.stdout


def test_config_in_pyproject(cli, tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[tool.vsockport]\ncid-map = { "db.internal" = 9 }\nexclude = ["skip_me"]\nruntime-module = "vrt"\n'
    )
    (tmp_path / "skip_me").mkdir()
    (tmp_path / "skip_me" / "x.py").write_text("import socket\ns = socket.socket(socket.AF_INET)\n")
    (tmp_path / "c.py").write_text("import socket\ns = socket.socket()\ns.connect(('db.internal', 5432))\n")
    result = cli("rewrite", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "s.connect((9, 5432))" in (tmp_path / "c.py").read_text()
    assert "from vrt import" in (tmp_path / "c.py").read_text()
    assert (tmp_path / "vrt.py").is_file()
    assert "AF_INET" in (tmp_path / "skip_me" / "x.py").read_text()


def test_bad_config_is_a_clear_error(cli, tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.vsockport]\ncid-mapp = {}\n")
    result = cli("diff", str(tmp_path))
    assert result.returncode == 2
    assert "unknown key(s) cid-mapp" in result.stderr


def test_findings_needing_review_keep_exit_1_after_rewrite(cli, tmp_path):
    (tmp_path / "f.py").write_text("import logging.handlers\nudp = logging.handlers.DatagramHandler('logs', 9021)\n")
    result = cli("rewrite", str(tmp_path))
    assert result.returncode == 1
    assert "f.py:2:7: VS011" in result.stderr and "[needs-review]" in result.stderr


def test_rules_and_explain(cli):
    listing = cli("rules")
    assert listing.returncode == 0
    for code in ("VS001", "VS002", "VS003", "VS004", "VS005", "VS006"):
        assert code in listing.stdout
    explained = cli("explain", "bind-address")
    assert explained.returncode == 0
    assert "## What it does" in explained.stdout and "VMADDR_PORT_ANY" in explained.stdout
    assert cli("explain", "vs003").stdout == explained.stdout
    unknown = cli("explain", "VS999")
    assert unknown.returncode == 4 and "unknown rule" in unknown.stderr  # a usage error


def test_python_m_and_version(cli):
    result = cli("--version")
    assert result.returncode == 0 and "vsockport" in result.stdout


def test_piped_output_has_no_color_codes(cli, echo):
    result = cli("diff", str(echo))
    assert "\x1b[" not in result.stdout + result.stderr
    forced = cli("diff", "--color", str(echo))
    assert "\x1b[" in forced.stdout


def test_a_note_alone_does_not_fail_the_run(cli, tmp_path):
    """A loopback socketpair emulation is left alone with a note; nothing to port, so exit 0."""
    program = tmp_path / "pair.py"
    program.write_text(
        "import socket\n\n\ndef pair():\n"
        "    a = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n"
        "    a.bind(('127.0.0.1', 0))\n    a.listen(1)\n"
        "    b = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n"
        "    b.connect(('127.0.0.1', a.getsockname()[1]))\n    return b, a.accept()[0]\n"
    )
    before = program.read_bytes()
    done = cli("diff", str(program))
    assert done.returncode == 0, done.stderr
    assert "pair.py:4:5: VS013 pair() connects to a loopback socket it made itself" in done.stderr
    assert "[note]" in done.stderr and done.stdout == ""
    assert program.read_bytes() == before


def test_udp_needs_review(cli, tmp_path):
    program = tmp_path / "udp.py"
    program.write_text("import socket\nu = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n")
    done = cli("rewrite", str(program))
    assert done.returncode == 1, done.stderr
    assert "udp.py:2:5: VS012 SOCK_DGRAM socket: it stays on UDP/IP: vsock datagrams exist only on VMware's VMCI" in done.stderr
    assert program.read_text() == "import socket\nu = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"  # left, reported
    vmci = cli("rewrite", "--vmci-datagrams", str(program))
    assert vmci.returncode == 1 and "u = vsock_socket(afVMCI, socket.SOCK_DGRAM)" in program.read_text()
    assert "ported to vsock datagrams, which exist only on VMware's VMCI transport" in vmci.stderr
    explained = cli("explain", "VS012")
    assert explained.returncode == 0 and "datagram policy" in explained.stdout


def test_select_ignore_and_per_file_ignores(cli, tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[tool.vsockport]\nignore = ["VS012"]\n[tool.vsockport.per-file-ignores]\n"legacy_*.py" = ["VS0"]\n'
    )
    source = "import socket\nu = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns = socket.socket()\ns.connect(('localhost', 9))\n"
    (tmp_path / "app.py").write_text(source)
    (tmp_path / "legacy_tool.py").write_text(source)
    done = cli("diff", "--show-fixes", str(tmp_path))
    assert done.returncode == 1
    assert "VS012" not in done.stderr  # ignored in the configuration
    assert "app.py:3:5: VS001" in done.stderr and "legacy_tool.py" not in done.stdout + done.stderr
    only = cli("diff", "--select", "VS004", str(tmp_path / "app.py"))
    assert "+s.connect((VMADDR_CID_LOCAL, 9))" in only.stdout and "+s = vsock_socket(" not in only.stdout
    bad = cli("diff", "--ignore", "VS999", str(tmp_path))
    assert bad.returncode == 4 and "'VS999' matches no rule" in bad.stderr


def test_unsafe_fixes_held_back_then_applied(cli, tmp_path):
    program = tmp_path / "client.py"
    program.write_text("import ctypes, socket\ndef dial(fd, host):\n    addr = sockaddr_in()\n"
                       "    addr.sin_family = socket.AF_INET\n    addr.sin_addr.s_addr = libc.inet_addr(host)\n"
                       "    return libc.connect(fd, ctypes.byref(addr), ctypes.sizeof(addr))\n")
    held = cli("rewrite", str(program))
    assert held.returncode == 1  # work left: the unsafe fix was not applied
    # At its line in the rewritten file: the runtime import (two lines) came before it.
    assert "client.py:7:5: VS006 sin_addr from the host host -> svm_cid = vsock_cid(host)" in held.stderr
    assert "[held-back]" in held.stderr
    assert "1 unsafe fix held back (--unsafe-fixes)" in held.stderr
    assert "addr.sin_addr.s_addr = libc.inet_addr(host)" in program.read_text() and "sockaddr_vm()" in program.read_text()
    applied = cli("rewrite", "--unsafe-fixes", str(program))
    assert applied.returncode == 0, applied.stderr
    assert "addr.svm_cid = vsock_cid(host)" in program.read_text()
    assert cli("diff", str(program)).returncode == 0  # and nothing is left


def test_output_is_never_turned_into_emoji(cli, tmp_path):
    """rich reads `:100:` and `:smile:` as emoji codes: a finding at line 100 printed as `app.py💯9`,
    and a diff line with such a string would no longer apply."""
    lines = ["import socket", "BANNER = 'ok :smile: :100:'"] + [f"x{i} = {i}" for i in range(97)]
    lines.append("s = socket.create_connection(('db.internal', 5432))")
    (tmp_path / "app.py").write_text("\n".join(lines) + "\n")
    result = cli("diff", "--unsafe-fixes", "--show-fixes", "app.py", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "app.py:100:5: VS005" in result.stderr
    assert " BANNER = 'ok :smile: :100:'" in result.stdout  # a context line of the diff
    assert "\N{HUNDRED POINTS SYMBOL}" not in result.stdout + result.stderr
