"""Data-path benchmark: a TCP echo program ported by vsockport, against the same program ported to
AF_VSOCK by hand, a socat TCP->vsock proxy in front of the hand port, and plain TCP; then the runtime's
own cost per call, where noise is small.

    python benchmarks/datapath.py [--rounds 7]          # ports, boots the sandbox, runs, prints
    python benchmarks/datapath.py --calls-only          # the per-call part on this machine only

The data path runs inside `vsockport sandbox` (vsock loopback, CID 1), A/B interleaved: every round runs
each variant once per workload, in an order that rotates between rounds, and the report gives the median
of per-round ratios with their spread. Workloads: round trips (64-byte echoes on one connection), new
connections (connect, 4-byte echo, close), bulk (MB/s one way). Each client warms up with one operation
first (first-use work, imports and probes, is start-up, not data path) and times the rest; CPU per
operation counts the client's timed part, the server and the proxy. A script, not a test: figures
belong in README.
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

HERE = Path(__file__).resolve().parent
WORKLOADS = {"roundtrips": 3000, "connections": 300, "bulk": 128}  # echoes, connections, MiB
UNITS = {"roundtrips": "round trips/s", "connections": "connections/s", "bulk": "MB/s"}
VARIANTS = ("ported", "hand", "proxy", "tcp")


def _cpu(pid: int) -> float:
    """User + system seconds of a process and its reaped children (socat forks one per connection)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")


class Variant:
    """One way of running the echo program: its server command, its proxy, its client command."""

    def __init__(self, name: str, folder: Path, port: int) -> None:
        self.name, self.port = name, port
        ported, hand, tcp = folder / "ported" / "echo_tcp.py", folder / "echo_vsock_by_hand.py", folder / "echo_tcp.py"
        py = [sys.executable, "-S"]
        self.server = {"ported": [*py, str(ported), "serve", str(port)], "hand": [*py, str(hand), "serve", str(port)],
                       "proxy": [*py, str(hand), "serve", str(port)], "tcp": [*py, str(tcp), "serve", str(port)]}[name]
        self.proxy = ["socat", f"TCP-LISTEN:{port + 1},bind=127.0.0.1,reuseaddr,fork", f"VSOCK-CONNECT:1:{port}"] \
            if name == "proxy" else None
        self.client = {"ported": [*py, str(ported)], "hand": [*py, str(hand)], "proxy": [*py, str(tcp)],
                       "tcp": [*py, str(tcp)]}[name]
        self.target = {"ported": ["localhost", str(port)], "hand": ["1", str(port)],
                       "proxy": ["127.0.0.1", str(port + 1)], "tcp": ["127.0.0.1", str(port)]}[name]

    def __enter__(self):
        self.processes = [subprocess.Popen(self.server, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)]
        assert self.processes[0].stdout.readline().strip() == "serving", self.name
        if self.proxy:
            self.processes.append(subprocess.Popen(self.proxy, stderr=subprocess.DEVNULL))
            time.sleep(0.5)
        return self

    def __exit__(self, *exc) -> None:
        for process in self.processes:
            process.kill()
            process.wait()

    def run(self, workload: str, count: int) -> tuple[float, float]:
        """(operations per second, CPU seconds per operation) of one client run."""
        before = sum(_cpu(p.pid) for p in self.processes)
        done = subprocess.run([*self.client, workload, *self.target, str(count)], capture_output=True, text=True)
        assert done.returncode == 0, (self.name, workload, done.stderr)
        elapsed, client_cpu = map(float, done.stdout.split())  # the client's timed workload only
        cpu = client_cpu + sum(_cpu(p.pid) for p in self.processes) - before  # (the servers' include the warm-up)
        operations = count * (2**20 / 1e6 if workload == "bulk" else 1)  # bulk: MB, not MiB
        return operations / elapsed, cpu / count


def in_guest(folder: Path, rounds: int) -> None:
    rates = {(w, v): [] for w in WORKLOADS for v in VARIANTS}
    cpus = {(w, v): [] for w in WORKLOADS for v in VARIANTS}
    for round_number in range(rounds):
        order = VARIANTS[round_number % len(VARIANTS):] + VARIANTS[: round_number % len(VARIANTS)]
        for position, name in enumerate(order):
            with Variant(name, folder, 30000 + 10 * position + 100 * round_number) as variant:
                for workload, count in WORKLOADS.items():
                    rate, cpu = variant.run(workload, count)
                    rates[(workload, name)].append(rate)
                    cpus[(workload, name)].append(cpu)
        print(f"round {round_number + 1}/{rounds} done", flush=True)
    print()
    for workload in WORKLOADS:
        print(f"{workload} ({UNITS[workload]}; CPU per {'MiB' if workload == 'bulk' else 'operation'}):")
        for name in VARIANTS:
            print(f"  {name:<7} {statistics.median(rates[(workload, name)]):11.1f}   "
                  f"CPU {statistics.median(cpus[(workload, name)]) * 1e6:9.1f} us")
        for a, b in (("ported", "hand"), ("ported", "proxy"), ("ported", "tcp")):
            ratios = sorted(x / y for x, y in zip(rates[(workload, a)], rates[(workload, b)]))
            cpu_ratios = sorted(x / y for x, y in zip(cpus[(workload, a)], cpus[(workload, b)]))
            print(f"  {a}/{b}: {statistics.median(ratios):.3f}x (rounds {ratios[0]:.3f}-{ratios[-1]:.3f}), "
                  f"CPU {statistics.median(cpu_ratios):.3f}x")
    calls(folder / "ported" / "vsock_runtime.py", guest=True)


CALLS = r"""
import importlib.util, socket, statistics, threading, timeit
spec = importlib.util.spec_from_file_location("vsock_runtime", RUNTIME)
rt = importlib.util.module_from_spec(spec); spec.loader.exec_module(rt)
AF, ANY = socket.AF_VSOCK, (rt.VMADDR_CID_ANY, rt.VMADDR_PORT_ANY)
def made(ported):
    return rt.vsock_socket(socket.AF_INET, socket.SOCK_STREAM) if ported else socket.socket(AF, socket.SOCK_STREAM)
def bound(ported):
    s = made(ported); s.bind(ANY); return s
cases = {
    "create": lambda ported: lambda: made(ported).close(),
    "create+bind": lambda ported: lambda: bound(ported).close(),  # a socket binds once: with its creation
    "listen": lambda ported: (lambda s: lambda: s.listen(8))(bound(ported)),
    "setsockopt": lambda ported: (lambda s: lambda: s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1))(made(ported)),
    "getsockname": lambda ported: (lambda s: lambda: s.getsockname())(bound(ported)),
}
if GUEST:
    def pair(ported):
        server = bound(ported); server.listen(4096); port = server.getsockname()[1]  # a full backlog resets (ECONNRESET)
        def accept():
            while True:
                conn, _ = server.accept(); conn.close()
        threading.Thread(target=accept, daemon=True).start()
        target = ("localhost", port) if ported else (1, port)
        def connect():
            s = made(ported); s.connect(target); s.close()
        return connect
    cases["connect+accept"] = pair
number = 200 if GUEST else 20000
for name, case in cases.items():
    times = {True: [], False: []}
    for _ in range(7):
        for ported in (False, True):  # interleaved
            times[ported].append(min(timeit.repeat(case(ported), number=number, repeat=3)) / number)
    own, theirs = statistics.median(times[True]), statistics.median(times[False])
    print(f"  {name:<15} ported {own * 1e6:8.2f} us   CPython {theirs * 1e6:8.2f} us   ratio {own / theirs:.3f}")
"""


def calls(runtime: Path, guest: bool) -> None:
    where = "in the guest (TCG)" if guest else "on this machine"
    print(f"\nper call {where}, vsock_socket() and the layer against CPython's own socket on AF_VSOCK:")
    code = f"RUNTIME = {str(runtime)!r}\nGUEST = {guest}\n" + CALLS
    subprocess.run([sys.executable, "-S", "-c", code], check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--in-guest", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--calls-only", action="store_true", help="only the per-call part, on this machine")
    args = parser.parse_args()
    if args.in_guest:
        in_guest(args.in_guest, args.rounds)
        return 0
    calls(HERE.parent / "vsockport" / "runtime" / "vsock.py", guest=False)
    if args.calls_only:
        return 0
    # /var/tmp: the guest sees this machine's files, but gets a fresh /tmp of its own.
    folder = Path(tempfile.mkdtemp(prefix="vsockport-datapath-", dir="/var/tmp"))
    try:
        for name in ("echo_tcp.py", "echo_vsock_by_hand.py"):
            shutil.copy(HERE / name, folder / name)
        (folder / "ported").mkdir()
        shutil.copy(HERE / "echo_tcp.py", folder / "ported" / "echo_tcp.py")
        port = subprocess.run([sys.executable, "-m", "vsockport", "rewrite", "--unsafe-fixes", "--no-cache",
                               str(folder / "ported")], capture_output=True, text=True, cwd=HERE.parent)
        print(port.stderr.strip().splitlines()[-1])
        import compileall  # the guest's emulated CPU would compile every program on every start

        compileall.compile_dir(str(folder), quiet=1)
        command = [sys.executable, "-m", "vsockport", "sandbox", "--timeout", "3000", "--", sys.executable,
                   str(HERE / "datapath.py"), "--in-guest", str(folder), "--rounds", str(args.rounds)]
        return subprocess.run(command, cwd=HERE.parent).returncode
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
