"""Where the runtime file goes for a ported module, how that module imports it, and when to (re)write it.

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

_VERSION_LINE = re.compile(rb"^VSOCKPORT_RUNTIME_VERSION = (\d+)\s*$", re.MULTILINE)


@lru_cache(maxsize=1)
def runtime_source() -> bytes:
    return (Path(__file__).parent / "vsock.py").read_bytes()


def runtime_version(source: bytes) -> int | None:
    match = _VERSION_LINE.search(source)
    return int(match.group(1)) if match else None


def is_runtime_file(path: Path, data: bytes, module_name: str) -> bool:
    return path.name == f"{module_name}.py" and runtime_version(data) is not None


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
