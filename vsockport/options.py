"""What a port is configured with, as rules see it (no libcst here: the engine decides a file needs no
porting without importing the rules)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Tuple, Union

# A port-time map value: a CID, (CID, vsock port) for a HOST:PORT key, or "unix:PATH" (a VMM's socket).
MapValue = Union[int, Tuple[int, int], str]


@dataclass(frozen=True)
class PortOptions:
    """What rules may know about the port: the host -> CID map, how to import the runtime, whether
    unsafe fixes apply, and whether datagram sockets move to VMware's VMCI datagrams."""

    cid_map: Mapping[str, MapValue] = field(default_factory=dict)  # keys: HOST or HOST:PORT
    runtime_import: str = "vsock_runtime"  # module path as written in the import ('.vsock_runtime' in packages)
    unsafe_fixes: bool = False
    vmci_datagrams: bool = False
