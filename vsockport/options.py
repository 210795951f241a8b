"""What a port is configured with, as rules see it (no libcst here: the engine decides a file needs no
porting without importing the rules)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping


@dataclass(frozen=True)
class PortOptions:
    """What rules may know about the port: the host -> CID map, how to import the runtime, and
    whether unsafe fixes apply."""

    cid_map: Mapping[str, int | str] = field(default_factory=dict)  # str: unix:PATH
    runtime_import: str = "vsock_runtime"  # module path as written in the import ('.vsock_runtime' in packages)
    unsafe_fixes: bool = False
