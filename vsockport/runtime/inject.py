"""Where the runtime file goes for a ported module, how that module imports it, and when to (re)write it
(never over a file that is not a vsockport runtime).

A folder of scripts gets the runtime beside the scripts (absolute import: a script's folder is on
sys.path). A module inside a package gets it at the top of its package, imported relatively, so the
package stays relocatable and never depends on sys.path.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from vsockport.results import FileResult

_VERSION_LINE = re.compile(rb"^VSOCKPORT_RUNTIME_VERSION = (\d+)\s*$", re.MULTILINE)


@lru_cache(maxsize=1)
def runtime_source() -> bytes:
    return (Path(__file__).parent / "vsock.py").read_bytes()


def runtime_version(source: bytes) -> int | None:
    match = _VERSION_LINE.search(source)
    return int(match.group(1)) if match else None


_RUNTIME_HEADER = b"vSockets runtime, added to this project by vsockport"


def is_runtime_file(data: bytes) -> bool:
    """Whether `data` is a vsockport runtime, whatever its file is called (an earlier --runtime-module):
    such a file is never ported (its own calls are the vsock ones) and never treated as the user's."""
    return _RUNTIME_HEADER in data[:400] and runtime_version(data) is not None


@dataclass(frozen=True)
class Placement:
    runtime_path: Path
    import_name: str  # as written after `from`: "vsock_runtime" or "..vsock_runtime"


class Placer:
    """Where each module's runtime goes (`place`). Each folder's package top is looked up once: a warm
    run over thousands of folders would otherwise re-stat every ancestor's __init__.py for every folder."""

    def __init__(self, module_name: str) -> None:
        self.module_name = module_name
        self._tops: dict[str, tuple[str, int] | None] = {}  # folder -> (package top, depth), None: no package
        self._placements: dict[str, Placement] = {}

    def _package_top(self, folder: str) -> tuple[str, int] | None:
        if folder in self._tops:
            return self._tops[folder]
        top = None
        if os.path.isfile(os.path.join(folder, "__init__.py")):
            parent = os.path.dirname(folder)
            above = self._package_top(parent) if parent != folder else None
            top = (above[0], above[1] + 1) if above else (folder, 1)
        self._tops[folder] = top
        return top

    def place(self, module_path: Path) -> Placement:
        # A symlinked module is rewritten at its target, and Python imports from the target's folder
        # (sys.path[0] of a symlinked script is the real file's folder): its runtime goes there too.
        if os.path.islink(module_path):
            module_path = Path(os.path.realpath(module_path))
        folder = os.path.dirname(module_path)
        where = self._placements.get(folder)
        if where is None:
            top = self._package_top(folder)
            if top is None:
                where = Placement(Path(folder, f"{self.module_name}.py"), self.module_name)
            else:
                where = Placement(Path(top[0], f"{self.module_name}.py"), "." * top[1] + self.module_name)
            self._placements[folder] = where
        return where


def runtime_update(existing: bytes | None) -> bytes | None:
    """New content for a runtime file, or None when it is current (or from a newer vsockport)."""
    ours = runtime_source()
    if existing is None:
        return ours
    if existing == ours:
        return None
    theirs = runtime_version(existing)
    if theirs is not None and theirs > (runtime_version(ours) or 0):
        return None
    return ours


def runtime_results(results: list[FileResult]) -> list[FileResult]:
    """One result per runtime file that ported modules need: added, updated, already current, or
    refused: a file there that is not a vsockport runtime is never overwritten (and the modules that
    would import it are not ported either, so none is left importing something else)."""
    needed: dict[Path, tuple[FileResult, str | None]] = {}
    for result in results:
        if result.runtime_import is None or result.error:
            continue
        for target in result.runtime_paths:
            if target not in needed:
                needed[target] = _runtime_result(target)
            problem = needed[target][1]
            if problem is not None and result.changed and not result.error:
                result.error = f"not ported: its runtime {target.name} cannot be written: {problem}"
                result.new = result.old = None
    return [runtime for runtime, _ in needed.values()]


_CHOOSE = "(choose another name with --runtime-module, or runtime-module in the configuration)"


def _runtime_result(target: Path) -> tuple[FileResult, str | None]:
    """The runtime file's result and, when it cannot be written, why (for the modules that need it)."""
    def refused(verb: str, problem: str) -> tuple[FileResult, str]:
        return FileResult(target, error=f"{verb}: {problem}", is_runtime=True), problem

    if target.with_suffix("").is_dir():
        return refused("cannot write", f"a package {target.with_suffix('').name}/ beside it would shadow it {_CHOOSE}")
    try:
        existing = target.read_bytes()
    except FileNotFoundError:
        existing = None
    except IsADirectoryError:
        return refused("cannot write", f"it is a folder {_CHOOSE}")
    except OSError as exc:
        return refused("cannot read", f"{exc.strerror or exc}")
    if existing is not None and runtime_version(existing) is None:
        return refused("not overwritten", f"a file of yours by that name is there, not a vsockport runtime {_CHOOSE}")
    return FileResult(target, old=existing, new=runtime_update(existing), is_runtime=True), None
