"""Where the runtime file goes for a ported module, how that module imports it, and when to (re)write it.

A folder of scripts gets the runtime beside the scripts (absolute import: a script's folder is on
sys.path). A module inside a package gets it at the top of its package, imported relatively, so the
package stays relocatable and never depends on sys.path.
"""

from __future__ import annotations

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


def placement(module_path: Path, module_name: str) -> Placement:
    folder = module_path.parent
    if not (folder / "__init__.py").is_file():
        return Placement(folder / f"{module_name}.py", module_name)
    top = folder
    depth = 1
    while (top.parent / "__init__.py").is_file() and top.parent != top:
        top = top.parent
        depth += 1
    return Placement(top / f"{module_name}.py", "." * depth + module_name)


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
