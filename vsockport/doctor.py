"""`vsockport doctor`: what this machine offers for vsock, as the injected runtime itself sees it.

The runtime is run as a script in a child interpreter (the same file that ported programs import), so
the report is the runtime's own view, and vsockport's process never loads it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

RUNTIME = Path(__file__).parent / "runtime" / "vsock.py"


class DoctorError(Exception):
    pass


def diagnose(python: str = sys.executable, backend: str | None = None) -> dict:
    env = dict(os.environ)
    if backend:
        env["VSOCK_RUNTIME_BACKEND"] = backend
    done = subprocess.run([python, "-I", str(RUNTIME), "--json"], capture_output=True, text=True, env=env, timeout=120)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise DoctorError(f"the runtime could not run under {python}: {last}")
    report = json.loads(done.stdout)
    report["suggestions"] = suggestions(report)
    return report


def suggestions(report: dict) -> list[str]:
    """What vsockport itself offers for what this machine lacks."""
    found = []
    if report.get("loopback") is False:
        found.append("to run a ported program and its peer on this machine anyway, use `vsockport sandbox -- COMMAND`: "
                     "a throw-away guest with vsock_loopback (CID 1), this machine's files and the current folder")
    return found


def usable(report: dict) -> bool:
    """vsock streams can be created here (the one thing every ported program needs), or, on a
    Firecracker / Cloud Hypervisor host, every hybrid-vsock socket the CID map names is there."""
    if report["af_value"] != -1 and report["socket_types"].get("SOCK_STREAM") == "ok":
        return True
    hybrid = report.get("hybrid") or []
    return bool(hybrid) and all(peer["state"] == "socket" for peer in hybrid)


def render(report: dict, console: Console) -> None:
    python = report["python"]
    table = Table(title="vsock on this machine", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    table.add_row("Python", f"{python['implementation']} {python['version']} ({python['platform']})")
    table.add_row("socket.AF_VSOCK", "missing" if python["af_vsock"] is None else str(python["af_vsock"]))
    table.add_row("runtime backend", f"{report['backend']} (runtime version {report['runtime_version']})")
    table.add_row("kernel", report["kernel"])
    table.add_row("address family", "none (-1)" if report["af_value"] == -1 else str(report["af_value"]))
    table.add_row("local CID", str(report["local_cid"]) if report["local_cid"] is not None else f"[red]{report['local_cid_error']}[/]")
    device = report["device"]
    if device.get("exists"):
        access = "read/write" if device["readable"] and device["writable"] else "[red]no access for this user[/]"
        table.add_row("device", f"{device['path']} mode {device['mode']} uid {device['uid']}, {access}")
    elif "exists" in device:
        table.add_row("device", f"[red]{device['path']} missing[/]")
    for name, state in sorted(report["transports"].items()):
        table.add_row("module", f"{name} ({state})")
    for name in ("SOCK_STREAM", "SOCK_SEQPACKET", "SOCK_DGRAM"):
        state = report["socket_types"].get(name, "not probed")
        table.add_row(name, "[green]ok[/]" if state == "ok" else f"[yellow]{state}[/]")
    loopback = {True: "[green]works[/]", False: "[yellow]not available[/]", None: "not probed"}[report["loopback"]]
    table.add_row("loopback (CID 1)", loopback)
    for peer in report.get("hybrid", ()):
        state = "[green]socket[/]" if peer["state"] == "socket" else f"[red]{peer['state']}[/]"
        table.add_row(f"hybrid {peer['name']}", f"{peer['path']} ({state})")
    console.print(table)
    for problem in report["problems"]:
        console.print(f"[yellow]![/] {problem}", highlight=False)
    for suggestion in report.get("suggestions", ()):
        console.print(f"[cyan]>[/] {suggestion}", highlight=False)
