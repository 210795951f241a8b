"""Run PyPI packages' own test suites unported (TCP/IP) and ported (vsock) in the sandbox, side by side.

Outside CI, like the benchmarks: it downloads releases and takes minutes per package (the guest runs
Python about 15 times slower than this machine). For each package in PACKAGES:

1. its source distribution (which carries its tests) is unpacked into WORK/NAME/unported, and its
   dependencies are installed beside it (WORK/NAME/unported/site, with `pip install --target`);
2. WORK/NAME/ported is a copy of both, ported with `vsockport rewrite --unsafe-fixes` (the package, its tests and
   its dependencies, as a user ports a project and its environment); the log is kept there;
3. in one `vsockport sandbox` guest, the same test command (pytest, or the package's own unittest
   runner) runs in each copy: the unported suite
   over the guest's TCP loopback, the ported one over vsock loopback (CID 1);
4. the counts (from pytest's JUnit XML) go into docs/corpus.md, with the ratio of passed tests.

    python scripts/corpus.py                 # every package; docs/corpus.md rewritten
    python scripts/corpus.py --only waitress # some; their rows replace the old ones

pytest itself (and its plugins, when a suite needs one) comes from this interpreter, unported: it is
the test harness, not the program.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WORK = Path(os.environ.get("VSOCKPORT_CORPUS_DIR", "/var/tmp/vsockport-corpus"))
DOWNLOADS = WORK / "downloads"
REPORT = REPO / "docs" / "corpus.md"


@dataclass(frozen=True)
class Package:
    name: str
    release: str  # the source distribution, `name==version`
    tests: tuple[str, ...]  # what pytest is given, relative to the unpacked source
    dependencies: tuple[str, ...] = ()  # installed into the suite's site (and ported there), pinned
    pytest_args: tuple[str, ...] = ()
    path: tuple[str, ...] = (".",)  # where the package imports from, relative to the unpacked source
    runner: str = ""  # a module that runs unittest suites (`tornado.test.runtests`), given the tests as modules
    note: str = ""


PACKAGES = (
    Package("waitress", "waitress==3.0.2", ("tests",), path=("src", "."),
            note="open: the ported suite hangs in tests/test_functional.py (servers run in subprocesses); before "
                 "vsock_getnameinfo their servers died at start-up (655 of 789 passed)"),
    Package("websocket-client", "websocket-client==1.9.2", ("websocket/tests",),
            note="the gap: a test that mocks socket.getaddrinfo to see the proxy's host asked for; the port "
                 "calls vsock_getaddrinfo"),
    Package("pymemcache", "pymemcache==4.0.0", ("pymemcache/test",),
            pytest_args=("-m", "unit", "--ignore=pymemcache/test/test_compression.py"),
            note="its unit tests (the integration tests need a memcached; compression's need zstd, compiled)"),
    Package("tornado", "tornado==6.6.1", tuple(f"tornado.test.{name}_test" for name in (
        "tcpserver", "tcpclient", "iostream", "netutil", "httpserver", "simple_httpclient", "web", "websocket")),
            runner="tornado.test.runtests",
            note="its networking tests, by its own runner: TCP server and client, streams, HTTP server and client, "
                 "web, websocket"),
    Package("cpython", "stdlib", tuple(f"test.test_{name}" for name in (
        "socketserver", "httpservers", "xmlrpc", "ftplib", "smtplib")), runner="unittest",
            note="CPython 3.11's own tests of its servers and clients, with test.support, from this interpreter"),
)

MARK = "CORPUS-RESULT "


# -- on this machine ------------------------------------------------------------------------------

def unpack(package: Package) -> Path:
    """WORK/NAME/unported: the source distribution and its dependencies, fresh."""
    if package.release == "stdlib":
        return _stdlib_tests(package)
    DOWNLOADS.mkdir(parents=True, exist_ok=True)
    stem = _normal(package.release.replace("==", "-")) + "_"  # waitress==3.0.2: waitress-3.0.2.tar.gz

    def downloaded() -> list[Path]:
        return [p for p in DOWNLOADS.glob("*.tar.gz") if _normal(p.name).startswith(stem)]

    if not downloaded():
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
                        "--dest", str(DOWNLOADS), package.release], check=True, stderr=subprocess.DEVNULL)
    found = downloaded()
    root = WORK / package.name
    shutil.rmtree(root, ignore_errors=True)
    unported = root / "unported"
    unported.mkdir(parents=True)
    with tarfile.open(found[0]) as archive:
        archive.extractall(unported, filter="data")
    (top,) = [p for p in unported.iterdir() if p.is_dir()]
    top.rename(unported / "src")
    _dependencies(package, unported)
    return unported


def _stdlib_tests(package: Package) -> Path:
    """CPython's own test modules and test.support, from this interpreter's standard library: a `test`
    package earlier on the path than the standard library's."""
    unported = WORK / package.name / "unported"
    shutil.rmtree(unported.parent, ignore_errors=True)
    stdlib_tests = Path(sysconfig.get_paths()["stdlib"]) / "test"
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(stdlib_tests / "support", unported / "src" / "test" / "support", ignore=ignore)
    shutil.copy(stdlib_tests / "__init__.py", unported / "src" / "test")
    for module in package.tests:
        shutil.copy(stdlib_tests / (module.rpartition(".")[2] + ".py"), unported / "src" / "test")
    for data in ("keycert.pem", "certdata", "xmltestdata"):  # what the chosen tests read
        if (stdlib_tests / data).is_file():
            shutil.copy(stdlib_tests / data, unported / "src" / "test")
        elif (stdlib_tests / data).is_dir():
            shutil.copytree(stdlib_tests / data, unported / "src" / "test" / data, ignore=ignore)
    _dependencies(package, unported)
    return unported


def _dependencies(package: Package, unported: Path) -> None:
    if package.dependencies:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(unported / "site"),
                        *package.dependencies], check=True, stderr=subprocess.DEVNULL)
    else:
        (unported / "site").mkdir()


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def port(unported: Path) -> tuple[Path, str]:
    ported = unported.parent / "ported"
    shutil.copytree(unported, ported, symlinks=True)
    done = subprocess.run([sys.executable, "-m", "vsockport", "rewrite", "--unsafe-fixes", "--no-gitignore", str(ported)],
                          capture_output=True, text=True, cwd=ported)
    (ported.parent / "rewrite.log").write_text(done.stdout + done.stderr)
    summary = (done.stdout + done.stderr).strip().splitlines()
    return ported, summary[-1] if summary else f"exit {done.returncode}"


def run_in_sandbox(packages: list[Package], timeout: float, suite_timeout: float) -> dict[str, dict]:
    results = WORK / "results"
    shutil.rmtree(results, ignore_errors=True)
    results.mkdir(parents=True)
    command = [sys.executable, "-m", "vsockport", "sandbox", "--timeout", str(timeout), "--share", str(results), "--",
               sys.executable, str(Path(__file__).resolve()), "--guest", str(results), "--suite-timeout", str(suite_timeout),
               *(p.name for p in packages)]
    done = subprocess.run(command, cwd="/", capture_output=True, text=True)
    (WORK / "sandbox.log").write_text(done.stdout + done.stderr)
    found = {}
    for line in done.stdout.splitlines():
        if line.startswith(MARK):
            entry = json.loads(line[len(MARK):])
            found[entry["package"]] = entry
    if not found:
        raise SystemExit(f"the sandbox gave no results (exit {done.returncode}): see {WORK / 'sandbox.log'}")
    return found


# -- in the guest ----------------------------------------------------------------------------------

def guest(names: list[str], results: Path, suite_timeout: float) -> None:
    for package in (p for p in PACKAGES if p.name in names):
        entry = {"package": package.name}
        for mode in ("unported", "ported"):
            tree = WORK / package.name / mode
            xml = results / f"{package.name}-{mode}.xml"
            env = {**os.environ, "PYTHONPATH": os.pathsep.join([*(str(tree / "src" / p) for p in package.path), str(tree / "site")]),
                   "PYTHONDONTWRITEBYTECODE": "1", "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
            started = time.monotonic()
            if package.runner:
                command = [sys.executable, "-m", package.runner, *package.tests]
            else:
                command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
                           f"--junitxml={xml}", *package.pytest_args, *package.tests]
            try:
                done = subprocess.run(command, cwd=tree / "src", env=env, capture_output=True, text=True,
                                      timeout=suite_timeout)
            except subprocess.TimeoutExpired as expired:  # a hung suite: say so, and go on with the next
                output = (expired.stdout or b"").decode(errors="replace") + (expired.stderr or b"").decode(errors="replace")
                (results / f"{package.name}-{mode}.log").write_text(output[-400_000:])
                entry[mode] = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0, "seconds": suite_timeout,
                               "exit": "timeout"}
                continue
            (results / f"{package.name}-{mode}.log").write_text(done.stdout[-200_000:] + done.stderr[-200_000:])
            found = unittest_counts(done.stdout + done.stderr) if package.runner else counts(xml)
            entry[mode] = {**found, "seconds": round(time.monotonic() - started), "exit": done.returncode}
        print(MARK + json.dumps(entry), flush=True)


def unittest_counts(output: str) -> dict[str, int]:
    """From unittest's summary: `Ran 120 tests`, then `OK (skipped=3)` or `FAILED (failures=1, errors=2)`."""
    ran = re.findall(r"^Ran (\d+) tests?", output, re.M)
    summary = re.findall(r"^(?:OK|FAILED)\b.*$", output, re.M)
    found = {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", summary[-1])} if summary else {}
    total = int(ran[-1]) if ran else 0
    failed, errors, skipped = found.get("failures", 0), found.get("errors", 0), found.get("skipped", 0)
    if not summary:  # the run died before its summary: nothing counts as passed
        return {"passed": 0, "failed": 0, "errors": max(total, 1), "skipped": 0}
    return {"passed": total - failed - errors - skipped - found.get("expected_failures", 0), "failed": failed,
            "errors": errors, "skipped": skipped}


def counts(xml: Path) -> dict[str, int]:
    if not xml.exists():
        return {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}
    root = ET.parse(xml).getroot()
    suites = [root] if root.tag == "testsuite" else list(root)
    total = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")}
    return {"passed": total["tests"] - total["failures"] - total["errors"] - total["skipped"],
            "failed": total["failures"], "errors": total["errors"], "skipped": total["skipped"]}


# -- the report ------------------------------------------------------------------------------------

def write_report(rows: dict[str, dict]) -> None:
    previous = json.loads(REPORT.with_suffix(".json").read_text()) if REPORT.with_suffix(".json").exists() else {}
    previous.update(rows)
    REPORT.with_suffix(".json").write_text(json.dumps(previous, indent=1, sort_keys=True) + "\n")
    lines = [
        "# Packages' own test suites, unported and ported",
        "",
        "Written by `python scripts/corpus.py` (see its docstring): each package's test suite from its source",
        "distribution, run in one `vsockport sandbox` guest twice, unported over TCP loopback and ported with",
        "`vsockport rewrite --unsafe-fixes` over vsock loopback. *passed/failed/errors/skipped*; the ratio is ported passed over",
        "unported passed. The raw counts are in docs/corpus.json.",
        "",
        "| package | tests | unported | ported | ratio | measured at | rewrite | notes |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for package in PACKAGES:
        row = previous.get(package.name)
        if row is None:
            continue
        a, b = row["unported"], row["ported"]
        ratio = f"{b['passed'] / a['passed']:.3f}" if a["passed"] and b["exit"] != "timeout" else "-"
        cell = lambda c: ("did not finish in %ss" % c["seconds"]) if c["exit"] == "timeout" else \
            f"{c['passed']}/{c['failed']}/{c['errors']}/{c['skipped']}"  # noqa: E731
        release = package.release if package.release != "stdlib" else f"CPython {sys.version.split()[0]}"
        lines.append(f"| {release} | `{' '.join(package.tests + package.pytest_args)}` | {cell(a)} | {cell(b)} | "
                     f"{ratio} | {row.get('measured', '')} | {row.get('rewrite', '')} | {package.note} |")
    REPORT.write_text("\n".join(lines) + "\n")


def _dirty() -> bool:
    """Whether vsockport's own files differ from the commit (the table then says `commit+`)."""
    done = subprocess.run(["git", "status", "--porcelain", "--", "vsockport"], cwd=REPO, capture_output=True, text=True)
    return bool(done.stdout.strip())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=None, help="package names (default: all)")
    parser.add_argument("--timeout", type=float, default=3600, help="the sandbox's timeout in seconds")
    parser.add_argument("--suite-timeout", type=float, default=900, help="seconds one suite may run in the guest")
    parser.add_argument("--guest", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("names", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.guest:
        guest(args.names, args.guest, args.suite_timeout)
        return 0
    chosen = [p for p in PACKAGES if args.only is None or p.name in args.only]
    rewrites = {}
    for package in chosen:
        unported = unpack(package)
        _, rewrites[package.name] = port(unported)
        print(f"{package.name}: {rewrites[package.name]}", flush=True)
    results = run_in_sandbox(chosen, args.timeout, args.suite_timeout)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    for name, entry in results.items():
        entry["rewrite"] = rewrites[name]
        entry["measured"] = f"{commit}{'+' if _dirty() else ''}, {time.strftime('%Y-%m-%d')}"
        print(f"{name}: unported {entry['unported']}, ported {entry['ported']}", flush=True)
    write_report(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
