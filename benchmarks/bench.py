"""Benchmark `vsockport diff` on a large tree, cold (empty cache) and warm (cache filled by the cold run).

    python benchmarks/bench.py [TREE] [--jobs N]

TREE defaults to a fresh copy of this interpreter's standard library. Prints files, lines, wall time,
files/s, lines/s and peak memory (max RSS of the vsockport process) for each run. A script, not a test:
timings belong in README, not in assertions.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path


def tree_size(tree: Path) -> tuple[int, int]:
    files = lines = 0
    for path in tree.rglob("*.py"):
        if "site-packages" in path.parts:
            continue
        files += 1
        with open(path, "rb") as handle:
            lines += sum(1 for _ in handle)
    return files, lines


def measure(command: list[str], env: dict) -> tuple[float, int, int]:
    """(wall seconds, max RSS in KiB, exit code) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_maxrss, proc.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tree", nargs="?", type=Path)
    parser.add_argument("--jobs", type=int, default=os.cpu_count())
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        tree = args.tree
        if tree is None:
            tree = Path(scratch) / "stdlib"
            shutil.copytree(sysconfig.get_paths()["stdlib"], tree, ignore=shutil.ignore_patterns("site-packages", "__pycache__"))
        files, lines = tree_size(tree)
        env = {**os.environ, "VSOCKPORT_CACHE_DIR": str(Path(scratch) / "cache")}
        command = [sys.executable, "-m", "vsockport", "diff", "-q", "--no-gitignore", "-j", str(args.jobs), str(tree)]
        print(f"tree: {tree} ({files} files, {lines} lines), {args.jobs} jobs")
        for label in ("cold", "warm"):
            wall, rss, code = measure(command, env)
            print(f"{label}: {wall:7.2f} s  {files / wall:8.0f} files/s  {lines / wall:10.0f} lines/s  "
                  f"peak {rss / 1024:6.0f} MiB  exit {code}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
