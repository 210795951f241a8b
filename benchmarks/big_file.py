"""Benchmark one big module: does porting cost grow linearly with the file?

    python benchmarks/big_file.py [--sizes 1000,2000,4000,8000] [--rounds N]

Generates modules of growing size, each made of N "socket functions" (a server, a client, a
create_connection helper and a relay that binds and dials a module constant's address, in turn, each
with a few fixes and findings), and runs `vsockport diff
--no-cache -q -j 1` on each in a fresh process: the whole path, parse, port and the printed diff. Per size it reads CPU time (user + system)
and peak RSS from wait4, medians over the rounds, and prints both per socket function, counted above
the same command on a module with one function (start-up: the interpreter, libcst and vsockport
themselves), so that start-up cannot hide a cost that grows faster than the file. The last line compares the largest size with the smallest: a ratio of
1.0 is perfectly linear; issue 22 asks for time per function within 1.5x. Not a test (timed tests are
noise on shared machines): its figures go into README and docs/speed.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

_FUNCTIONS = (
    "def serve_{i}(port={port}):\n"
    "    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n"
    "    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    "    sock.bind(('0.0.0.0', port))\n"
    "    sock.listen(5)\n"
    "    return sock\n\n\n",
    "def fetch_{i}(host, port={port}):\n"
    "    conn = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n"
    "    conn.connect((host, port))\n"
    "    conn.sendall(b'ping')\n"
    "    return conn.recv(4)\n\n\n",
    "def dial_{i}():\n"
    "    with socket.create_connection(('localhost', {port}), timeout=5) as conn:\n"
    "        return conn.getpeername()\n\n\n",
    # A module constant, and a function that binds and connects, which VS013 checks against the
    # module's loopback constants (reading each once split the whole module: 70 s for CPython's
    # test_socket.py).
    "SERVICE_{i} = ('service-{i}.internal', {port})\n\n\n"
    "def relay_{i}(port={port}):\n"
    "    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n"
    "    listener.bind(('0.0.0.0', port))\n"
    "    upstream = socket.create_connection(SERVICE_{i})\n"
    "    return listener, upstream\n\n\n",
)


def module(functions: int) -> bytes:
    parts = ["import socket\n\n\n"]
    for i in range(functions):
        parts.append(_FUNCTIONS[i % len(_FUNCTIONS)].format(i=i, port=1024 + i % 60000))
    return "".join(parts).encode()


def measure(data: bytes, workdir: Path) -> tuple[float, int]:
    """CPU seconds and peak RSS (KiB) of one `vsockport diff` of `data`, in a fresh process."""
    folder = Path(tempfile.mkdtemp(dir=workdir))
    target = folder / "big.py"
    target.write_bytes(data)
    env = {**os.environ, "VSOCKPORT_CACHE_DIR": str(folder / "cache")}
    with open(folder / "diff", "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "vsockport", "diff", "--no-cache", "-q", "-j", "1", str(target)],
                                env=env, stdout=out, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 1:  # 1: changes pending, as expected
        raise SystemExit(f"vsockport diff failed (exit {os.waitstatus_to_exitcode(status)}) on {len(data)} bytes")
    if b"\n+    sock = vsock_socket(" not in (folder / "diff").read_bytes():
        raise SystemExit("the diff does not show the port")
    shutil.rmtree(folder)
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,2000,4000,8000", help="socket functions per module")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    workdir = Path(tempfile.mkdtemp(prefix="vsockport-big-file-"))
    try:
        measure(module(1), workdir)  # compiles byte-code once, so no size pays for it
        samples: dict[int, list[tuple[float, int]]] = {size: [] for size in [1, *sizes]}
        for _ in range(args.rounds):  # interleaved: drift on a noisy machine hits every size alike
            for size in samples:
                samples[size].append(measure(module(size), workdir))
    finally:
        shutil.rmtree(workdir)
    base_cpu = statistics.median(t for t, _ in samples[1])
    base_rss = statistics.median(rss for _, rss in samples[1])
    print(f"start-up (a one-function module): {base_cpu:.2f} s CPU, {base_rss / 1024:.0f} MiB")
    print(f"{'functions':>9} {'MiB':>6} {'CPU s':>7} {'ms/function':>12} {'peak RSS MiB':>13} {'KiB/function':>13}")
    per_function = {}
    for size in sizes:
        cpu = statistics.median(t for t, _ in samples[size])
        rss = statistics.median(r for _, r in samples[size])
        per_function[size] = ((cpu - base_cpu) / size, (rss - base_rss) / size)
        print(f"{size:>9} {len(module(size)) / 2**20:>6.2f} {cpu:>7.2f} {per_function[size][0] * 1000:>12.2f} "
              f"{rss / 1024:>13.0f} {per_function[size][1]:>13.1f}")
    small, large = sizes[0], sizes[-1]
    print(f"largest/smallest per function: time {per_function[large][0] / per_function[small][0]:.2f}x, "
          f"memory {per_function[large][1] / per_function[small][1]:.2f}x "
          f"(1.00x is linear; {args.rounds} rounds, medians)")


if __name__ == "__main__":
    main()
