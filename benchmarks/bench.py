"""Benchmark `vsockport diff` on big trees, cold (empty cache) and warm, against a single-rule LibCST codemod.

    python benchmarks/bench.py [--jobs N] [--tree PATH ...] [--libcst-on-all | --no-libcst] [--against CHECKOUT]

Trees default to fresh copies of this interpreter's standard library and of its site-packages. For each
tree it prints files, lines, wall time, files/s, lines/s and peak memory (max RSS, as wait4 reports it)
for vsockport cold and warm, and, on the first tree (all trees with --libcst-on-all), the wall time of
`python -m libcst.tool codemod` running the one-rule codemod in benchmarks/af_inet_codemod.py in diff
mode, and the ratio. `--against CHECKOUT` also runs another checkout of vsockport (an older commit:
`git worktree add /tmp/old HEAD~5`) on the same copies, cold and warm interleaved with this one, and
prints this one's time as a ratio of the other's. A script, not a test: timings belong in README, not in
assertions.
"""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import site
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def tree_size(tree: Path) -> tuple[int, int]:
    files = lines = 0
    for path in tree.rglob("*.py"):
        if path.is_symlink() or not path.is_file():
            continue
        files += 1
        with open(path, "rb") as handle:
            lines += sum(1 for _ in handle)
    return files, lines


def measure(command: list[str], env: dict, cwd: Path = REPO) -> tuple[float, int, int]:
    """(wall seconds, max RSS in KiB as wait4 reports it (the largest of the process and the children it
    reaped), exit code). Run in `cwd`: `python -m` puts the working folder first on sys.path, before
    PYTHONPATH, so a checkout must be run from its own folder."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=cwd)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    return wall, usage.ru_maxrss, os.waitstatus_to_exitcode(status)


def copy_tree(source: Path, target: Path, *, skip_site_packages: bool) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", *(["site-packages"] if skip_site_packages else []))
    shutil.copytree(source, target, ignore=ignore, symlinks=True)
    return target


def line(label: str, wall: float, files: int, lines: int, rss: int, code: int) -> str:
    return (f"  {label:<8} {wall:8.2f} s {files / wall:9.0f} files/s {lines / wall:11.0f} lines/s "
            f"peak {rss / 1024:6.0f} MiB  exit {code}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, action="append", help="a tree to measure (repeatable)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count())
    parser.add_argument("--libcst-on-all", action="store_true", help="run the LibCST codemod on every tree")
    parser.add_argument("--no-libcst", action="store_true", help="do not run the LibCST codemod at all")
    parser.add_argument("--against", type=Path, help="another vsockport checkout to run side by side")
    parser.add_argument("--rounds", type=int, default=1, help="cold+warm rounds per tree (with --against)")
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if args.against:
        return compare(args)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {args.jobs} jobs")
    with tempfile.TemporaryDirectory() as scratch:
        trees = args.tree or [
            copy_tree(Path(sysconfig.get_paths()["stdlib"]), Path(scratch) / "stdlib", skip_site_packages=True),
            copy_tree(Path(site.getsitepackages()[0]), Path(scratch) / "site-packages", skip_site_packages=False),
        ]
        os.sync()  # the copies' write-back would otherwise compete with the first (cold) run
        for number, tree in enumerate(trees):
            files, lines = tree_size(tree)
            print(f"{tree.name}: {files} files, {lines} lines")
            env["VSOCKPORT_CACHE_DIR"] = str(Path(scratch) / f"cache{number}")
            command = [sys.executable, "-m", "vsockport", "diff", "-q", "--no-gitignore", "-j", str(args.jobs), str(tree)]
            cold = measure(command, env)
            print(line("cold", cold[0], files, lines, cold[1], cold[2]))
            warm = measure(command, env)
            print(line("warm", warm[0], files, lines, warm[1], warm[2]))
            if (number == 0 or args.libcst_on_all) and not args.no_libcst:
                codemod = [sys.executable, "-m", "libcst.tool", "codemod", "benchmarks.af_inet_codemod.AfInetToVsock",
                           "-x", "--no-format", "-j", str(args.jobs), "--hide-progress", "-u", "1", str(tree)]
                libcst = measure(codemod, env)
                print(line("libcst", libcst[0], files, lines, libcst[1], libcst[2]))
                print(f"  vsockport cold is {libcst[0] / cold[0]:.1f}x faster than the one-rule LibCST codemod")
    return 0


def compare(args) -> int:
    """This checkout and `--against`, on the same tree copies, A/B interleaved, each with its own cache."""
    checkouts = {"this": REPO, "other": args.against.resolve()}
    for checkout in checkouts.values():
        # Byte-compiled alike: with PYTHONDONTWRITEBYTECODE a checkout without __pycache__ compiles every
        # module on every run (about 70 ms), which is no part of what is compared.
        compileall.compile_dir(checkout / "vsockport", quiet=1)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {args.jobs} jobs; other = {checkouts['other']}")
    with tempfile.TemporaryDirectory() as scratch:
        trees = args.tree or [
            copy_tree(Path(sysconfig.get_paths()["stdlib"]), Path(scratch) / "stdlib", skip_site_packages=True),
            copy_tree(Path(site.getsitepackages()[0]), Path(scratch) / "site-packages", skip_site_packages=False),
        ]
        os.sync()
        for number, tree in enumerate(trees):
            files, lines = tree_size(tree)
            print(f"{tree.name}: {files} files, {lines} lines")
            times: dict[tuple[str, str], list[float]] = {}
            for round_number in range(args.rounds):
                # The order alternates by round: a run right after another's cold run is slowed by it.
                order = list(checkouts.items())[:: 1 if round_number % 2 == 0 else -1]
                for phase in ("cold", "warm"):
                    for name, checkout in order:
                        cache = Path(scratch) / f"cache-{name}-{number}-{round_number}"
                        if phase == "cold":
                            shutil.rmtree(cache, ignore_errors=True)
                        env = {**os.environ, "PYTHONPATH": str(checkout), "VSOCKPORT_CACHE_DIR": str(cache)}
                        command = [sys.executable, "-m", "vsockport", "diff", "-q", "--no-gitignore", "-j", str(args.jobs), str(tree)]
                        result = measure(command, env, cwd=checkout)  # not REPO: that would run this checkout twice
                        times.setdefault((name, phase), []).append(result[0])
                        print(line(f"{name} {phase}", result[0], files, lines, result[1], result[2]))
            for phase in ("cold", "warm"):
                ratios = sorted(a / b for a, b in zip(times[("this", phase)], times[("other", phase)]))
                print(f"  {phase}: this/other = {ratios[len(ratios) // 2]:.3f} (median of {len(ratios)}; "
                      f"{ratios[0]:.3f}-{ratios[-1]:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
