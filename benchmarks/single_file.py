"""Benchmark what pre-commit and editors run: `vsockport diff` on one small ported file and on the five
files of a typical commit, cold (empty cache) and warm, side by side with `ruff check` on the same files.

    python benchmarks/single_file.py [--rounds N] [--against CHECKOUT]

Each round runs every command once, interleaved, in a fresh process, and reads its CPU time (user +
system, from wait4) and wall time; the figures are medians over the rounds. `python -c pass` is
measured alongside as CPython's own start-up on this machine. Cold runs get an empty cache directory
(vsockport's VSOCKPORT_CACHE_DIR; `ruff check --no-cache`); warm runs reuse one. The files are ported
by `vsockport rewrite` first, so they need nothing: the case a pre-commit hook meets on every commit.
`--against CHECKOUT` adds another checkout of vsockport (an older commit) on the same files.

Byte-code is written (PYTHONDONTWRITEBYTECODE is cleared for the measured processes, and a warm-up
run compiles everything first), as an installed package has it. A script, not a test: the figures go
into README.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# A small service as a commit touches it: a client and a server (ported), and modules without sockets.
FILES = {
    "client.py": (
        "import socket\n\n\ndef fetch(host: str, port: int) -> bytes:\n"
        "    with socket.create_connection((host, port), timeout=5) as conn:\n"
        "        conn.sendall(b'GET\\n')\n        return conn.recv(4096)\n"
    ),
    "server.py": (
        "import socket\n\n\ndef serve(port: int = 8080) -> None:\n"
        "    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n"
        "    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
        "    sock.bind(('', port))\n    sock.listen()\n"
        "    while True:\n        conn, _ = sock.accept()\n        with conn:\n            conn.sendall(conn.recv(4096))\n"
    ),
    "models.py": "from dataclasses import dataclass\n\n\n@dataclass\nclass Job:\n    name: str\n    retries: int = 3\n",
    "settings.py": "import os\n\nDEBUG = os.environ.get('DEBUG') == '1'\nWORKERS = int(os.environ.get('WORKERS', '4'))\n",
    "test_models.py": "from models import Job\n\n\ndef test_defaults():\n    assert Job('x').retries == 3\n",
}
ONE = ["server.py"]
FIVE = sorted(FILES)


def _env(cache: Path | None, pythonpath: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    if cache is not None:
        env["VSOCKPORT_CACHE_DIR"] = str(cache)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    return env


def _measure(command: list[str], cwd: Path, env: dict) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one run of `command`."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(command)} failed with {proc.returncode}")
    return usage.ru_utime + usage.ru_stime, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--against", type=Path, help="another vsockport checkout to run on the same files")
    args = parser.parse_args()
    ruff = shutil.which("ruff")
    work = Path(tempfile.mkdtemp(prefix="vsockport-single-file-"))
    try:
        project = work / "project"
        project.mkdir()
        for name, text in FILES.items():
            (project / name).write_text(text)
        setup = subprocess.run([sys.executable, "-m", "vsockport", "rewrite", "--isolated", "--unsafe-fixes", "."], cwd=project,
                               env=_env(work / "setup-cache", None), capture_output=True, text=True)
        if setup.returncode != 0:
            raise SystemExit(f"could not port the benchmark files: {setup.stderr}")

        tools: dict[str, tuple[list[str], str | None]] = {"vsockport": ([sys.executable, "-m", "vsockport"], None)}
        if args.against:
            tools["other"] = ([sys.executable, "-m", "vsockport"], str(args.against.resolve()))
        cases: dict[str, tuple[list[str], str | None, bool]] = {"python -c pass": ([sys.executable, "-c", "pass"], None, False)}
        for label, files in (("1 file", ONE), ("5 files", FIVE)):
            for tool, (base, pythonpath) in tools.items():
                cases[f"{tool} diff, {label}, cold"] = ([*base, "diff", *files], pythonpath, True)
                cases[f"{tool} diff, {label}, warm"] = ([*base, "diff", *files], pythonpath, False)
            if ruff:
                cases[f"ruff check, {label}, cold"] = ([ruff, "check", "--isolated", "--no-cache", *files], None, False)
                cases[f"ruff check, {label}, warm"] = ([ruff, "check", "--isolated", *files], None, False)

        def warm_cache(pythonpath: str | None) -> Path:  # one per checkout: each keeps its own entries
            return work / f"warm-cache-{'other' if pythonpath else 'this'}"

        for command, pythonpath, _ in cases.values():  # warm-up: byte-code, the warm cache, ruff's cache
            _measure(command, project, _env(warm_cache(pythonpath), pythonpath))
            _measure(command, project, _env(warm_cache(pythonpath), pythonpath))
        cpu: dict[str, list[float]] = {name: [] for name in cases}
        wall: dict[str, list[float]] = {name: [] for name in cases}
        for round_number in range(args.rounds):
            for name, (command, pythonpath, cold) in cases.items():
                cache = work / f"cold-{round_number}-{len(cpu[name])}" if cold else warm_cache(pythonpath)
                c, w = _measure(command, project, _env(cache, pythonpath))
                cpu[name].append(c)
                wall[name].append(w)
                if cold:
                    shutil.rmtree(cache, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    median = {name: (statistics.median(cpu[name]) * 1000, statistics.median(wall[name]) * 1000) for name in cases}
    startup = median["python -c pass"][0]
    print(f"{args.rounds} rounds, medians; CPU = user + system of the process; Python {sys.version.split()[0]}")
    print(f"{'':34s} {'CPU ms':>8s} {'wall ms':>8s} {'CPU - start-up':>15s}")
    for name, (c, w) in median.items():
        over = "" if name == "python -c pass" or not name.startswith(("vsockport", "other")) else f"{c - startup:12.1f}"
        print(f"{name:34s} {c:8.1f} {w:8.1f} {over:>15s}")
    if ruff:
        print("\nvsockport / ruff (CPU):")
        for label in ("1 file", "5 files"):
            for state in ("cold", "warm"):
                ours, theirs = median[f"vsockport diff, {label}, {state}"][0], median[f"ruff check, {label}, {state}"][0]
                print(f"  {label}, {state}: {ours / theirs:5.1f}x  ({ours:.1f} vs {theirs:.1f} ms)")
    if args.against:
        print("\nvsockport / other checkout (CPU):")
        for label in ("1 file", "5 files"):
            for state in ("cold", "warm"):
                ours, theirs = median[f"vsockport diff, {label}, {state}"][0], median[f"other diff, {label}, {state}"][0]
                print(f"  {label}, {state}: {ours / theirs:5.2f}x  ({ours:.1f} vs {theirs:.1f} ms)")


if __name__ == "__main__":
    main()
