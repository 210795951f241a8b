"""The contract between vsockport and the runtime it injects, read from the runtime's own source.

The runtime (`vsock.py`) is the one place where its exports, its version, the host spellings it reads
as loopback or wildcard, how it reads a map key, and VS013's definition of a local socket pair (`local_pair`, which strict
mode applies at run time) are written. The tool never imports that file (it is copied into users'
trees); it reads these values from the statements that define them, and compiles `local_pair`
alone from its own lines, once per process, so the two sides cannot drift.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

RUNTIME_SOURCE = Path(__file__).with_name("vsock.py")
# The name a ported module binds to the vsock address family, as VMware's porting guide does, and the
# runtime function that gives it.
AF_NAME = "afVMCI"
AF_FACTORY = "VMCISock_GetAFValue"


@dataclass(frozen=True)
class Contract:
    version: int
    exports: frozenset[str]  # what ported code may import from the runtime
    loopback_hosts: frozenset[str]
    wildcard_hosts: frozenset[str]
    local_pair: Callable[..., bool]  # VS013's and strict mode's test of a function's source: local_pair(source, names)
    map_key: Callable[[str], str]  # a VSOCK_CID_MAP key as the runtime looks it up ("host:*" -> "host")


def _definition(source: str, name: str) -> str:
    """The text of the top-level statement of the runtime that defines `name` (`def name(` or `name =`),
    up to the next line that starts at the margin (a closing bracket continues it)."""
    for head in (f"\ndef {name}(", f"\n{name} = "):
        start = source.find(head)
        if start >= 0:
            break
    else:
        raise LookupError(f"the runtime defines no {name}")
    lines = source[start + 1:].split("\n")
    end = 1
    while end < len(lines) and (not lines[end] or lines[end][0] in " \t)]}"):
        end += 1
    return "\n".join(lines[:end]) + "\n"


def _constant(source: str, name: str):
    value = ast.parse(_definition(source, name)).body[0].value
    if isinstance(value, ast.Call) and getattr(value.func, "id", "") == "frozenset":  # frozenset([...])
        value = value.args[0]
    return ast.literal_eval(value)


def _function(source: str, name: str, needs: tuple[str, ...]) -> Callable:
    """A pure function of the runtime (it needs only its arguments, the standard library and the
    constants and functions it names in `needs`), compiled from its own lines and theirs."""
    namespace: dict = {}
    text = "".join(_definition(source, n) for n in (*needs, name))
    exec(compile(text, str(RUNTIME_SOURCE), "exec"), namespace)
    return namespace[name]


@lru_cache(maxsize=1)
def contract() -> Contract:
    """Read from the runtime's source, statement by statement (parsing the whole file costs ~30 ms, a
    tenth of a cold pre-commit run)."""
    source = RUNTIME_SOURCE.read_text(encoding="utf-8")
    return Contract(
        version=_constant(source, "VSOCKPORT_RUNTIME_VERSION"),
        exports=frozenset(_constant(source, "__all__")),
        loopback_hosts=frozenset(_constant(source, "_LOOPBACK_HOSTS")),
        wildcard_hosts=frozenset(_constant(source, "_WILDCARD_HOSTS")),
        local_pair=_function(source, "local_pair", ("LOCAL_PAIR_LOOPBACK",)),
        map_key=_function(source, "_map_key", ("_split_map_key",)),
    )


@lru_cache(maxsize=1)
def split_map_key() -> Callable[[str], tuple[str, str]]:
    """The runtime's `_split_map_key` (a VSOCK_CID_MAP key's host and port text), compiled from its
    lines alone: the configuration reads map keys on every run that has a map."""
    return _function(RUNTIME_SOURCE.read_text(encoding="utf-8"), "_split_map_key", ())
