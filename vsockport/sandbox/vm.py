"""Run one command in a throw-away QEMU guest whose only vsock transport is loopback (CID 1).

The guest sees the host's files read-only (writes land in a tmpfs overlay and vanish) and the shared
folders read-write at their host paths. stdout and stderr come back live through virtio serial ports.
"""

from __future__ import annotations

from dataclasses import dataclass

import os
import re
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import BinaryIO, Mapping, Sequence

from vsockport.sandbox.setup import QEMU, Artifacts, SetupError, prepare

EXIT_TIMEOUT = 124
EXIT_SANDBOX_FAILURE = 125

_KERNEL_ARGS = (
    "console=ttyS0 quiet panic=-1 rdinit=/init tsc=reliable clocksource=tsc lpj=8000000 mitigations=off"
)
# Variables that describe the host session rather than the command's environment.
_HOST_ONLY_ENV = frozenset(["PWD", "OLDPWD", "SHLVL", "_", "SSH_AUTH_SOCK", "SSH_CONNECTION", "SSH_CLIENT", "SSH_TTY", "DISPLAY"])
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def kvm_usable() -> bool:
    """A normal KVM: /dev/kvm usable and a CPU with vmx/svm (PVM-only hosts boot stock kernels under TCG)."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        modules = Path("/proc/modules").read_text()
    except OSError:
        return False
    return bool(re.search(r"\b(vmx|svm)\b", cpuinfo)) and "kvm_pvm" not in modules


def _accelerator() -> list[str]:
    if kvm_usable():
        return ["-accel", "kvm", "-cpu", "host"]
    # qemu64 plus a few extensions: `-cpu max` advertises ERMS/FSRM, and `rep movsb` is slow under TCG.
    return ["-accel", "tcg,thread=multi", "-cpu", "qemu64,+ssse3,+sse4.1,+sse4.2,+popcnt"]


@dataclass(frozen=True)
class HybridVmm:
    """`--hybrid`: the stand-in hybrid-vsock muxer (vsockport/sandbox/muxer.py) the guest runs before the
    command, on the Unix socket `uds_path`, forwarding guest connections to the ports `guest_to_host`."""

    uds_path: str
    guest_to_host: tuple[int, ...] = ()
    log: str = "/tmp/vsockport-muxer.log"  # in the guest's own /tmp

    def start_lines(self) -> list[str]:
        muxer = Path(__file__).with_name("muxer.py")
        ports = "".join(f" --guest-to-host {port}" for port in self.guest_to_host)
        path, shown = shlex.quote(self.uds_path), _shell_text(self.uds_path)
        return [
            f"{shlex.quote(sys.executable)} {shlex.quote(str(muxer))} {path}{ports} >{shlex.quote(self.log)} 2>&1 &",
            "export VSOCKPORT_MUXER_PID=$!",
            f"i=0; while [ ! -S {path} ]; do i=$((i+1)); if [ $i -gt 300 ]; then "
            f'echo "vsockport sandbox: the stand-in hybrid-vsock muxer did not start on {shown} (see '
            f'{_shell_text(self.log)} in the guest)" >&2; exit 125; fi; sleep 0.1; done',
        ]


def command_script(command: Sequence[str], cwd: Path, env: Mapping[str, str], hybrid: HybridVmm | None = None) -> str:
    lines = ["# written by vsockport sandbox"]
    for name, value in sorted(env.items()):
        if _ENV_NAME.match(name) and name not in _HOST_ONLY_ENV:
            lines.append(f"export {name}={shlex.quote(value)}")
    lines.append(f"cd {shlex.quote(str(cwd))} || exit 125")
    if hybrid is not None:
        lines.extend(hybrid.start_lines())
    # A missing command is named plainly, with the shell's exit codes (127 not found, 126 not runnable),
    # never as an error of this script's line.
    program, shown = shlex.quote(command[0]), _shell_text(command[0])
    missing = f'echo "vsockport sandbox: {shown}: command not found in the guest" >&2; exit 127'
    if "/" in command[0]:
        lines.append(f"[ -e {program} ] || {{ {missing}; }}")
        lines.append(f'[ -f {program} ] && [ -x {program} ] || {{ echo "vsockport sandbox: {shown}: not executable" >&2; '
                     "exit 126; }")
    else:
        lines.append(f"command -v -- {program} >/dev/null 2>&1 || {{ {missing}; }}")
    lines.append("exec " + " ".join(shlex.quote(part) for part in command))
    return "\n".join(lines) + "\n"


def _shell_text(text: str) -> str:
    """`text` for inside a double-quoted shell string, printed as it is."""
    return "".join("\\" + c if c in '"\\$`' else c for c in text)


# Variables dropped unless given with --env: PYTHONDONTWRITEBYTECODE would make every Python process in
# the guest compile every module it imports again, slow under emulation.
_NOT_INHERITED = frozenset(["PYTHONDONTWRITEBYTECODE"])


def guest_environment(extra: Mapping[str, str]) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if name not in _NOT_INHERITED}
    # The interpreter running vsockport comes first: version-manager shims cost seconds per call in the guest.
    interpreter_bin = os.path.dirname(os.path.realpath(sys.executable))
    env["PATH"] = interpreter_bin + os.pathsep + env.get("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.update(extra)
    return env


def folders_to_share(shares: Sequence[Path], cwd: Path) -> list[Path]:
    """The folders the guest sees read-write, outermost first: `--share`s, the working folder, and the
    running interpreter's environment when it lives under /tmp (a venv there would not exist in the
    guest, whose /tmp is its own: the command would not even start)."""
    candidates = [*shares, cwd]
    for prefix in {sys.prefix, sys.base_prefix, os.path.dirname(os.path.dirname(os.path.realpath(sys.executable)))}:
        if Path(prefix).resolve().is_relative_to("/tmp"):
            candidates.append(Path(prefix))
    folders = {p.resolve() for p in candidates if p.resolve() != Path("/")}
    # A folder inside another shared one is seen through it already.
    outermost = {f for f in folders if not any(other != f and f.is_relative_to(other) for other in folders)}
    return sorted(outermost, key=lambda p: (len(p.parts), str(p)))


def sharing_notes(command: Sequence[str], cwd: Path, folders: Sequence[Path]) -> list[str]:
    """What the guest will not see as the user may expect: writes from `/` vanish, and host paths under
    /tmp that are not shared do not exist there (the guest's /tmp is its own, empty)."""
    notes = []
    if cwd == Path("/"):
        notes.append("note: running from /, which is never shared: the guest sees it read-only and its writes "
                     "vanish (run from your project folder, or --share FOLDER)")
    for part in command:
        candidate = part.partition("=")[2] if part.startswith("-") and "=" in part else part
        if not candidate.startswith("/tmp/"):
            continue
        path = Path(candidate)
        if path.exists() and not any(path == folder or folder in path.parents for folder in folders):
            notes.append(f"note: {candidate} is not in the guest: its /tmp is a fresh, empty tmpfs (run from "
                         f"there, or --share {path if path.is_dir() else path.parent})")
    return notes


def _follow(path: Path, sink: BinaryIO, finished: threading.Event) -> None:
    with open(path, "rb") as source:
        while True:
            chunk = source.read(1 << 16)
            if chunk:
                sink.write(chunk)
                sink.flush()
            elif finished.is_set():
                rest = source.read()
                if not rest:
                    return
                sink.write(rest)
                sink.flush()
            else:
                time.sleep(0.02)


def _qemu_command(artifacts: Artifacts, temp: Path, shares: list[tuple[str, Path]], memory: int, cpus: int) -> list[str]:
    command = [
        QEMU, *_accelerator(), "-smp", str(cpus), "-m", str(memory),
        "-nodefaults", "-nographic", "-no-reboot",
        "-kernel", str(artifacts.vmlinux), "-initrd", str(artifacts.initrd), "-append", _KERNEL_ARGS,
        "-chardev", f"file,id=console,path={temp / 'console.log'}", "-serial", "chardev:console",
        "-virtfs", "local,path=/,mount_tag=vsp_root,readonly=on,security_model=none,multidevs=remap",
        "-virtfs", f"local,path={temp / 'ctl'},mount_tag=vsp_ctl,security_model=none",
        "-device", "virtio-serial-pci",
        "-chardev", f"file,id=out,path={temp / 'stdout'}", "-device", "virtserialport,chardev=out,name=vsp.stdout",
        "-chardev", f"file,id=err,path={temp / 'stderr'}", "-device", "virtserialport,chardev=err,name=vsp.stderr",
    ]
    for tag, path in shares:
        command += ["-virtfs", f"local,path={path},mount_tag={tag},security_model=none,multidevs=remap"]
    return command


def run(
    command: Sequence[str],
    *,
    shares: Sequence[Path] = (),
    cwd: Path | None = None,
    timeout: float | None = 600,
    env: Mapping[str, str] | None = None,
    memory: int = 2048,
    cpus: int = 2,
    stdout: BinaryIO | None = None,
    stderr: BinaryIO | None = None,
    log=lambda message: None,
    hybrid: HybridVmm | None = None,
) -> int:
    """Run `command` in the guest; return its exit code, EXIT_TIMEOUT or EXIT_SANDBOX_FAILURE."""
    stdout = stdout or sys.stdout.buffer
    stderr = stderr or sys.stderr.buffer
    cwd = (cwd or Path.cwd()).resolve()
    try:
        artifacts = prepare(log)
    except SetupError as exc:
        log(f"cannot prepare the sandbox: {exc}")
        return EXIT_SANDBOX_FAILURE
    folders = folders_to_share(shares, cwd)
    for note in sharing_notes(command, cwd, folders):
        log(note)
    tagged = [(f"vsp_s{i}", folder) for i, folder in enumerate(folders)]
    with tempfile.TemporaryDirectory(prefix="vsockport-sandbox-") as temp_name:
        temp = Path(temp_name)
        (temp / "ctl").mkdir()
        for name in ("stdout", "stderr", "console.log", "qemu.log"):
            (temp / name).touch()
        (temp / "ctl" / "command.sh").write_text(command_script(command, cwd, guest_environment(env or {}), hybrid))
        (temp / "ctl" / "shares").write_text("".join(f"{tag} {folder}\n" for tag, folder in tagged))
        finished = threading.Event()
        relays = [
            threading.Thread(target=_follow, args=(temp / "stdout", stdout, finished), daemon=True),
            threading.Thread(target=_follow, args=(temp / "stderr", stderr, finished), daemon=True),
        ]
        for relay in relays:
            relay.start()
        with open(temp / "qemu.log", "wb") as qemu_log:
            vm = subprocess.Popen(
                _qemu_command(artifacts, temp, tagged, memory, cpus),
                stdin=subprocess.DEVNULL, stdout=qemu_log, stderr=subprocess.STDOUT,
            )
            timed_out = False
            try:
                vm.wait(timeout=timeout if timeout and timeout > 0 else None)
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                if vm.poll() is None:  # timed out, or interrupted (Ctrl-C): never leave the guest running
                    vm.kill()
                    vm.wait()
                finished.set()
                for relay in relays:
                    relay.join()
        if timed_out:
            log(f"timed out after {timeout:g} s; the guest was stopped")
            return EXIT_TIMEOUT
        status = temp / "ctl" / "status"
        if status.is_file() and status.read_text().strip().isdigit():
            return int(status.read_text().strip())
        tail = (temp / "qemu.log").read_text(errors="replace") + (temp / "console.log").read_text(errors="replace")
        log("the sandbox VM failed before the command finished (QEMU exit %s); console tail:\n%s"
            % (vm.returncode, "\n".join(tail.splitlines()[-30:])))
        return EXIT_SANDBOX_FAILURE
