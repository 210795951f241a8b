"""Port a copy of the whole CPython standard library: no crashes, every output compiles, a second run
changes nothing, and files without socket use (none of the rules' trigger words) stay byte-identical.
Then the same for a copy of the installed site-packages. About a minute each here (2 cores)."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

from vsockport.engine import may_need_porting, triggers_for
from vsockport.rules import ALL_RULES


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def sweep(tree: Path, tmp_path: Path) -> tuple[int, list[Path], list[str], list[Path]]:
    """rewrite the tree, check everything the sweep promises; (files scanned, changed, error lines, runtimes)."""
    before = {p: digest(p) for p in tree.rglob("*.py") if p.is_file() and not p.is_symlink()}
    env = {**os.environ, "VSOCKPORT_CACHE_DIR": str(tmp_path / "cache")}
    command = [sys.executable, "-m", "vsockport"]
    done = subprocess.run([*command, "rewrite", "--no-gitignore", "--unsafe-fixes", str(tree)],
                          capture_output=True, text=True, env=env, timeout=1800)
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr, done.stderr[-3000:]
    summary = done.stderr.strip().splitlines()[-1]
    print(summary)
    errors = [line for line in done.stderr.splitlines() if re.search(r":\d+:\d+: cannot |: error: ", line)]
    after = {p: digest(p) for p in before}
    changed = [p for p in before if after[p] != before[p]]
    for line in errors:  # each problem file is reported in one line and left as it was
        named = [p for p in before if line.startswith(os.path.relpath(p)) or str(p) in line]
        assert named and all(p not in changed for p in named), line
    triggers = triggers_for(ALL_RULES)
    socket_free = [p for p in before if not may_need_porting(p.read_bytes(), triggers)]
    assert changed and len(socket_free) > len(before) / 2 and not set(changed) & set(socket_free)
    for path in changed:
        compile(path.read_bytes(), str(path), "exec")
    runtimes = list(tree.rglob("vsock_runtime.py"))
    assert runtimes and all(b"VSOCKPORT_RUNTIME_VERSION" in p.read_bytes() for p in runtimes)
    again = subprocess.run([*command, "diff", "--no-gitignore", "--unsafe-fixes", str(tree)],
                           capture_output=True, text=True, env=env, timeout=1800)
    assert again.stdout == "", again.stdout[:3000]  # a second run changes nothing
    match = re.search(r"(\d+) files scanned, (\d+) changed", summary)
    assert match
    print(f"{len(before)} files, {len(changed)} ported, {len(errors)} reported errors, {len(runtimes)} runtimes")
    return int(match.group(1)), changed, errors, runtimes


def test_stdlib_sweep(tmp_path):
    tree = tmp_path / "stdlib"
    shutil.copytree(sysconfig.get_paths()["stdlib"], tree, ignore=shutil.ignore_patterns("site-packages", "__pycache__"))
    scanned, changed, errors, runtimes = sweep(tree, tmp_path)
    assert scanned >= 1700 and len(changed) >= 50
    # Errors are only the stdlib's deliberately broken or Python 2 test inputs.
    assert all("/test" in line or "lib2to3" in line for line in errors), errors


def test_site_packages_sweep(tmp_path):
    """This environment's installed packages (on CI at least the test dependencies: libcst, rich,
    pygments, hypothesis, pytest, pre-commit, virtualenv, jsonschema, ...)."""
    tree = tmp_path / "site-packages"
    shutil.copytree(site.getsitepackages()[0], tree, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    scanned, changed, errors, runtimes = sweep(tree, tmp_path)
    assert scanned >= 500 and changed
