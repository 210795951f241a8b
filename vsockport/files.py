"""Which files to port (hidden, virtualenv, git-ignored and excluded paths are skipped) and safe writes."""

from __future__ import annotations

import errno
import fnmatch
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

# As ruff does by default: tool caches, build output and installed-package folders.
_SKIPPED_DIR_NAMES = frozenset(
    ["__pycache__", "__pypackages__", "_build", "buck-out", "build", "dist", "node_modules", "site-packages", "venv"]
)


@dataclass(frozen=True)
class Discovery:
    files: list[Path]
    errors: list[tuple[Path, str]]
    temporaries: list[Path] = field(default_factory=list)  # vsockport's own, left by an interrupted write


def _relative_to_cwd(path: Path) -> Path:
    try:
        return Path(os.path.realpath(path)).relative_to(os.path.realpath(os.getcwd()))
    except ValueError:
        return path


def is_force_excluded(path: Path, config) -> bool:
    """A file named explicitly (or standing for stdin) that --force-exclude keeps out."""
    return config is not None and config.force_exclude and is_excluded(_relative_to_cwd(path), config.exclude)


def is_excluded(path: Path, patterns: Iterable[str]) -> bool:
    """Glob patterns match the path as given, any trailing part of it, or any one component."""
    text = path.as_posix()
    parts = path.parts
    for pattern in patterns:
        pattern = pattern.rstrip("/")
        if fnmatch.fnmatch(text, pattern) or fnmatch.fnmatch(text, "*/" + pattern):
            return True
        if any(fnmatch.fnmatch(part, pattern) for part in parts):
            return True
    return False


def _git_ignored(folder: Path) -> set[Path] | None:
    """Absolute paths git ignores under `folder` (directories included), or None outside a work tree."""
    import subprocess  # only a walked folder asks git

    try:
        proc = subprocess.run(
            ["git", "-C", str(folder), "ls-files", "-z", "--others", "--ignored", "--exclude-standard", "--directory"],
            capture_output=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    return {(folder / os.fsdecode(p).rstrip("/")).resolve() for p in proc.stdout.split(b"\0") if p}


def _is_virtualenv(folder: str) -> bool:
    return os.path.isfile(folder + "/pyvenv.cfg")  # False, not an error, when unreadable


def discover(paths: Iterable[Path], settings) -> Discovery:
    """Python files under `paths`. `settings(path)` gives a path's Config (its excludes and whether to
    respect .gitignore; None where its configuration cannot be read). Files named explicitly are always
    taken, unless `force_exclude` (for pre-commit, which names every staged file) applies the exclude
    patterns to them too. A path that cannot be walked (missing, a symbolic-link loop, unreadable) is
    one error, and the rest proceeds."""
    files: list[Path] = []
    errors: list[tuple[Path, str]] = []
    temporaries: list[Path] = []
    seen: set[str] = set()

    def add(path: Path, key: str | None = None) -> None:
        key = key or os.path.realpath(path)
        if key not in seen:
            seen.add(key)
            files.append(path)

    def exclude_of(path: Path) -> tuple[str, ...]:
        config = settings(path)
        return config.exclude if config is not None else ()

    for root in paths:
        try:
            if not os.path.lexists(root):
                errors.append((root, "no such file or directory"))
                continue
            os.stat(root)  # follows links: a loop or a dangling link is an error here, not later
            is_file, is_dir = root.is_file(), root.is_dir()
        except OSError as exc:
            errors.append((root, f"cannot read: {exc.strerror or exc}"))
            continue
        config = settings(root)
        if is_file:
            if not is_force_excluded(root, config):
                add(root)
                temporaries.extend(_temporaries_of(root))
            continue
        if not is_dir:
            errors.append((root, "not a file or folder"))
            continue
        ignored = _git_ignored(root) if config is None or config.respect_gitignore else None
        _walk(root, exclude_of, ignored, errors, add, temporaries)
    return Discovery(files, errors, temporaries)


def _walk(root: Path, exclude_of, ignored: set[Path] | None, errors: list, add, temporaries: list) -> None:
    """Python files under `root`, in sorted order, folder by folder (os.walk's order). scandir's
    entries answer is-link and is-folder without a stat each: a warm run over 10k files is mostly this.
    `exclude_of(folder)` gives the patterns that apply there (its own configuration's)."""
    # Links are never walked, so below the resolved root every path is already canonical.
    stack = [(str(root), "", os.path.realpath(root))]
    while stack:
        folder, relative, real = stack.pop()
        exclude = exclude_of(Path(folder))
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except OSError as exc:
            errors.append((Path(folder), exc.strerror or str(exc)))
            continue
        hidden = [e for e in entries if e.name.startswith(".")]
        if hidden:
            temporaries.extend(Path(e.path) for e in hidden if _TEMPORARY.match(e.name))
            entries = [e for e in entries if not e.name.startswith(".")]
        subfolders = []
        for entry in sorted(entries, key=_entry_name):
            name = entry.name
            try:
                is_folder = entry.is_dir(follow_symlinks=False)
                if not is_folder and not name.endswith(".py") and not name.endswith(_ALSO_TAKEN) \
                        and not ("." not in name and _is_python_script(entry)):
                    continue
                is_link = entry.is_symlink()
            except OSError:
                continue
            if is_link:
                continue  # never walk (or write) out of the tree through a link; named files are followed
            if not is_folder and not entry.is_file(follow_symlinks=False):
                errors.append((Path(entry.path), "not a file or folder (a FIFO, socket or device): left alone"))
                continue  # reading a FIFO would block the run
            if is_folder and (name in _SKIPPED_DIR_NAMES or _is_virtualenv(entry.path)):
                continue
            rel = f"{relative}/{name}" if relative else name
            if exclude and is_excluded(Path(rel), exclude):
                continue
            real_path = f"{real}/{name}" if real != "/" else f"/{name}"
            if ignored and Path(real_path) in ignored:
                continue
            if is_folder:
                subfolders.append((entry.path, rel, real_path))
            else:
                add(Path(entry.path), real_path)
        stack.extend(reversed(subfolders))


# Besides .py files: notebooks (refused with one line when they use sockets), compiled code (VS017).
_ALSO_TAKEN = (".ipynb", ".so", ".pyd", ".pyx", ".pxd")
_PYTHON_SHEBANG = re.compile(rb"^#![^\n]*\bpython[0-9.]*\b")


def _is_python_script(entry: os.DirEntry) -> bool:
    """An executable file without an extension whose first line runs Python (`#!/usr/bin/env python3`)."""
    try:
        if not entry.is_file(follow_symlinks=False) or not entry.stat(follow_symlinks=False).st_mode & 0o111:
            return False
        with open(entry.path, "rb") as handle:
            return bool(_PYTHON_SHEBANG.match(handle.read(128)))
    except OSError:
        return False


# atomic_write's temporary file: `.NAME.PID-RANDOM.vsockport-tmp` (the pid tells whether its writer lives).
_TEMPORARY_SUFFIX = ".vsockport-tmp"
_TEMPORARY = re.compile(r"^\.(?P<name>.+?)\.(?:(?P<pid>\d+)-)?[^.]*\.vsockport-tmp$")
_STALE_AFTER = 3600.0  # seconds; a temporary without a pid (older versions) is stale after this


def _temporaries_of(path: Path) -> list[Path]:
    """The temporaries beside a file named on the command line that were meant to become it."""
    try:
        names = os.listdir(path.parent)
    except OSError:
        return []
    return [path.parent / n for n in names
            if n.endswith(_TEMPORARY_SUFFIX) and n.startswith(f".{path.name}.") and _TEMPORARY.match(n)]


def is_stale_temporary(path: Path, now: float | None = None) -> bool:
    """Whether a temporary of atomic_write's was left by a run that ended without removing it (killed):
    its writer's process is gone, or it has no pid and is older than an hour. Another live run's is kept."""
    match = _TEMPORARY.match(path.name)
    if match is None:
        return False
    if match["pid"] is not None:
        pid = int(match["pid"])
        if pid == os.getpid():
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except OSError:
            return False  # alive, someone else's
        return False
    try:
        return (now or time.time()) - path.lstat().st_mtime > _STALE_AFTER
    except OSError:
        return False


def _entry_name(entry: os.DirEntry) -> str:
    return entry.name


class ReadOnlyFile(OSError):
    """The file's mode forbids writing; it is left as it is (even for root, who could write it)."""


class ChangedOnDisk(OSError):
    """The file changed between the read that was ported and the write: the user's edit wins."""


def is_writable(path: Path) -> bool:
    """Whether atomic_write would write `path`: its mode allows it (respected even for root), and its
    folder takes a new file or the file itself can be written in place."""
    target = Path(os.path.realpath(path))
    try:
        if not target.stat().st_mode & 0o222:
            return False
    except FileNotFoundError:
        return os.access(target.parent, os.W_OK | os.X_OK)
    except OSError:
        return False
    return os.access(target.parent, os.W_OK | os.X_OK) or os.access(target, os.W_OK)


def atomic_write(path: Path, data: bytes, expected: bytes | None = None) -> None:
    """Write `data` to `path` (a link's target), keeping what the file is besides its bytes.

    - `expected`: the bytes the port read. If the file holds anything else now (edited, or replaced by
      `mv`, while it was being ported), nothing is written: ChangedOnDisk.
    - The owner, group and mode (setuid, setgid and sticky bits too) stay the file's.
    - Normally the bytes go to a temporary file in the same folder, renamed over the file: readers see
      old or new, never half. A file with several hard links, one whose owner this process cannot give
      to a new file, or one in a folder that takes no new file, is written in place instead (as black
      and ruff write every file): every name keeps seeing it, at the cost of that atomicity.
    """
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    try:
        st = target.stat()
    except FileNotFoundError:
        st = None
    if st is not None and not st.st_mode & 0o222:
        raise ReadOnlyFile(errno.EACCES, f"read-only file (mode {st.st_mode & 0o7777:o}): not changed")
    if expected is not None and (st is None or _read(target) != expected):
        raise ChangedOnDisk(errno.EAGAIN, _CHANGED)
    if st is not None and st.st_nlink > 1:
        _write_in_place(target, data)
        return
    import tempfile  # only a run that writes

    try:
        fd, temp = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}-", suffix=_TEMPORARY_SUFFIX,
                                    dir=target.parent)
    except PermissionError:
        if st is None:
            raise
        _write_in_place(target, data)  # a writable file in a folder that takes no new one
        return
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if st is None:
            os.chmod(temp, 0o666 & ~_umask())
        else:
            if (st.st_uid, st.st_gid) != (os.geteuid(), os.getegid()):
                try:
                    os.chown(temp, st.st_uid, st.st_gid)  # before chmod: chown clears setuid and setgid bits
                except PermissionError:  # another user's file, writable by us: keep it theirs
                    os.unlink(temp)
                    _write_in_place(target, data)
                    return
            os.chmod(temp, st.st_mode & 0o7777)
            now = target.stat()
            if (now.st_ino, now.st_size, now.st_mtime_ns) != (st.st_ino, st.st_size, st.st_mtime_ns):
                raise ChangedOnDisk(errno.EAGAIN, _CHANGED)
        os.replace(temp, target)
    except BaseException:
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass
        raise


_CHANGED = "changed on disk while it was being ported: left as you left it (run again to port it)"


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _write_in_place(target: Path, data: bytes) -> None:
    with open(target, "r+b") as handle:
        handle.write(data)
        handle.truncate()
        handle.flush()
        os.fsync(handle.fileno())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
