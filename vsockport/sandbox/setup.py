"""Everything the sandbox guest needs, prepared once and cached: QEMU and busybox (Debian packages),
a Debian kernel that has `vsock_loopback` (downloaded, never installed), an ELF vmlinux that QEMU can
PVH-boot (0.4 s instead of 7.5 s), and a small initramfs with busybox, /init and the modules.
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import io
import lzma
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from vsockport.files import atomic_write

QEMU = "qemu-system-x86_64"
BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")
KERNEL_META_PACKAGE = "linux-image-amd64"
# The guest's kernel modules; their dependencies are added from each module's `depends=` field.
MODULES = (
    "virtio_pci", "virtio_console", "netfs", "fscache", "9pnet", "9pnet_virtio", "9p", "overlay",
    "vsock", "vmw_vsock_virtio_transport_common", "vsock_loopback",
    "vsock_diag",  # `ss --vsock` lists sockets only with it
)
_XZ_MAGIC = b"\xfd7zXZ\x00"


class SetupError(Exception):
    """The sandbox cannot be prepared; the message says what to do."""


@dataclass(frozen=True)
class Artifacts:
    vmlinux: Path
    initrd: Path
    kernel_release: str


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "vsockport" / "sandbox"


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, **kwargs)


def _is_root() -> bool:
    return os.geteuid() == 0


def _busybox() -> str | None:
    for candidate in BUSYBOX_CANDIDATES:
        if os.path.isfile(candidate) and _is_static(candidate):
            return candidate
    return None


def _is_static(path: str) -> bool:
    """A dynamically linked binary names its loader (PT_INTERP); a static one does not."""
    return b"/ld-linux" not in Path(path).read_bytes()


def _run_apt(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Run an apt command; when it fails and we are root, refresh the package lists once and retry."""
    done = _run(cmd, **kwargs)
    if done.returncode != 0 and _is_root():
        _run(["apt-get", "update"], env=kwargs.get("env"))
        done = _run(cmd, **kwargs)
    return done


def _apt_install(packages: list[str], log) -> None:
    log(f"installing {' '.join(packages)} (apt-get)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    done = _run_apt(["apt-get", "install", "-y", "--no-install-recommends", *packages], env=env)
    if done.returncode != 0:
        raise SetupError(f"apt-get install {' '.join(packages)} failed:\n{done.stderr.strip()[-2000:]}")


def ensure_packages(log) -> None:
    missing = []
    if shutil.which(QEMU) is None:
        missing.append("qemu-system-x86")
    if _busybox() is None:
        missing.append("busybox-static")
    if shutil.which("socat") is None:
        missing.append("socat")  # the independent vsock peer ported programs are tested against
    if shutil.which("ss") is None:
        missing.append("iproute2")  # `ss --vsock` in the guest
    if not missing:
        return
    if not _is_root() or shutil.which("apt-get") is None:
        raise SetupError(
            "the sandbox needs QEMU, a static busybox, socat and ss; install them with:\n"
            f"  sudo apt-get install -y --no-install-recommends {' '.join(missing)}"
        )
    _apt_install(missing, log)


def _kernel_package() -> str:
    """The versioned package linux-image-amd64 depends on, e.g. linux-image-6.1.0-56-amd64."""
    done = _run_apt(["apt-cache", "depends", KERNEL_META_PACKAGE])
    match = re.search(r"Depends: (linux-image-[0-9][^\s]*)", done.stdout)
    if match is None:
        raise SetupError(
            f"cannot find the Debian kernel package ({KERNEL_META_PACKAGE}); run `apt-get update` and retry"
        )
    return match.group(1)


def _download_kernel(workdir: Path, log) -> Path:
    package = _kernel_package()
    log(f"downloading {package}")
    done = _run_apt(["apt-get", "download", package], cwd=workdir)
    if done.returncode != 0:
        raise SetupError(f"apt-get download {package} failed:\n{done.stderr.strip()[-2000:]}")
    debs = list(workdir.glob("linux-image-*.deb"))
    if not debs:
        raise SetupError(f"apt-get download {package} produced no .deb file")
    unpacked = workdir / "kernel"
    if _run(["dpkg-deb", "-x", str(debs[0]), str(unpacked)]).returncode != 0:
        raise SetupError(f"dpkg-deb -x {debs[0].name} failed")
    debs[0].unlink()
    return unpacked


def extract_vmlinux(bzimage: bytes) -> bytes:
    """The ELF kernel inside a bzImage whose payload is xz-compressed."""
    start = bzimage.find(_XZ_MAGIC)
    while start != -1:
        try:
            decompressor = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
            elf = decompressor.decompress(bzimage[start:])
            if elf.startswith(b"\x7fELF"):
                return elf
        except lzma.LZMAError:
            pass
        start = bzimage.find(_XZ_MAGIC, start + 1)
    raise SetupError("no xz-compressed ELF kernel found in vmlinuz")


def module_depends(ko: bytes) -> list[str]:
    match = re.search(rb"(?:^|\0)depends=([^\0]*)\0", ko)
    if not match or not match.group(1):
        return []
    return [name.decode() for name in match.group(1).split(b",") if name]


def module_load_order(module_root: Path, wanted: tuple[str, ...]) -> list[tuple[str, Path]]:
    """Modules in dependency order (dependencies first); built-in ones are skipped."""
    files = {p.name[: -len(".ko")].replace("-", "_"): p for p in module_root.rglob("*.ko")}
    builtin_file = module_root / "modules.builtin"
    builtin = set()
    if builtin_file.is_file():
        builtin = {Path(line).name[: -len(".ko")].replace("-", "_") for line in builtin_file.read_text().split()}
    order: list[tuple[str, Path]] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        name = name.replace("-", "_")
        if name in seen:
            return
        seen.add(name)
        if name not in files:
            if name in builtin:
                return
            raise SetupError(f"kernel module {name} not found in {module_root}")
        for dependency in module_depends(files[name].read_bytes()):
            visit(dependency)
        order.append((name, files[name]))

    for name in wanted:
        visit(name)
    return order


class _Cpio:
    """A minimal `newc` cpio writer (what the kernel unpacks as an initramfs)."""

    def __init__(self) -> None:
        self.buffer = io.BytesIO()
        self.inode = 1

    def _entry(self, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0)) -> None:
        encoded = name.encode() + b"\0"
        fields = [self.inode, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(encoded), 0]
        self.inode += 1
        header = b"070701" + b"".join(b"%08X" % f for f in fields)
        self.buffer.write(header + encoded)
        self.buffer.write(b"\0" * (-(len(header) + len(encoded)) % 4))
        self.buffer.write(data)
        self.buffer.write(b"\0" * (-len(data) % 4))

    def directory(self, name: str) -> None:
        self._entry(name, 0o040755)

    def file(self, name: str, data: bytes, executable: bool = False) -> None:
        self._entry(name, 0o100755 if executable else 0o100644, data)

    def char_device(self, name: str, major: int, minor: int) -> None:
        self._entry(name, 0o020600, rdev=(major, minor))

    def finish(self) -> bytes:
        self._entry("TRAILER!!!", 0)
        return self.buffer.getvalue()


def build_initramfs(busybox: bytes, init: bytes, modules: list[tuple[str, Path]]) -> bytes:
    cpio = _Cpio()
    for folder in ("bin", "dev", "modules", "proc", "sys", "tmp"):
        cpio.directory(folder)
    cpio.char_device("dev/console", 5, 1)
    cpio.file("bin/busybox", busybox, executable=True)
    cpio.file("init", init, executable=True)
    cpio.file("modules.order", "".join(f"{name}\n" for name, _ in modules).encode())
    for name, path in modules:
        cpio.file(f"modules/{name}.ko", path.read_bytes())
    return gzip.compress(cpio.finish(), compresslevel=6, mtime=0)


def init_script() -> bytes:
    return (Path(__file__).parent / "init.sh").read_bytes()


def prepare(log=lambda message: None) -> Artifacts:
    """Install what is missing and build (or reuse) the cached kernel and initramfs."""
    ensure_packages(log)
    busybox_path = _busybox()
    assert busybox_path is not None
    busybox = Path(busybox_path).read_bytes()
    init = init_script()
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    # One preparation at a time; a second caller waits, then finds the cache ready.
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        recipe = hashlib.sha256(busybox + init + "\n".join(MODULES).encode()).hexdigest()[:16]
        kernels = sorted(folder.glob("vmlinux-*"))
        if kernels:
            release = kernels[-1].name[len("vmlinux-"):]
            initrd = folder / f"initrd-{release}-{recipe}.cpio.gz"
            if initrd.is_file():
                return Artifacts(kernels[-1], initrd, release)
        with tempfile.TemporaryDirectory(dir=folder) as temp:
            unpacked = _download_kernel(Path(temp), log)
            vmlinuz = next((unpacked / "boot").glob("vmlinuz-*"))
            release = vmlinuz.name[len("vmlinuz-"):]
            log(f"extracting vmlinux {release}")
            vmlinux = folder / f"vmlinux-{release}"
            atomic_write(vmlinux, extract_vmlinux(vmlinuz.read_bytes()))
            log("building initramfs")
            modules = module_load_order(unpacked / "lib" / "modules" / release, MODULES)
            initrd = folder / f"initrd-{release}-{recipe}.cpio.gz"
            atomic_write(initrd, build_initramfs(busybox, init, modules))
        for stale in [*folder.glob("initrd-*"), *folder.glob("vmlinux-*")]:
            if stale not in (initrd, vmlinux):
                stale.unlink()  # an older kernel or recipe: 65 MB each, never used again
        return Artifacts(vmlinux, initrd, release)
