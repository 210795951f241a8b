"""The contract between vsockport and the runtime it injects, read from the runtime's own source.

The runtime (`vsock.py`) is the one place where its exports, its version, the host spellings it reads
as loopback or wildcard, how it reads a map key, and VS013's definition of a local socket pair (`local_pair`, which strict
mode applies at run time) are written. The tool never imports that file (it is copied into users'
trees); it reads these values from the source with `ast`, and compiles `local_pair` alone from it,
once per process, so the two sides cannot drift.
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


def _constant(tree: ast.Module, name: str):
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            value = node.value
            if isinstance(value, ast.Call) and getattr(value.func, "id", "") == "frozenset":  # frozenset([...])
                value = value.args[0]
            return ast.literal_eval(value)
    raise LookupError(f"the runtime defines no {name}")


def _function(tree: ast.Module, name: str, needs: tuple[str, ...]) -> Callable:
    """A pure function of the runtime (it needs only its arguments, the standard library and the
    constants and functions it names in `needs`), compiled from the runtime's source alone."""
    wanted = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == name]
    wanted += [node for node in tree.body if (isinstance(node, ast.FunctionDef) and node.name in needs) or (
        isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id in needs for t in node.targets))]
    if len(wanted) != 1 + len(needs):
        raise LookupError(f"the runtime defines no {name} (or not what it needs: {needs})")
    namespace: dict = {}
    exec(compile(ast.Module(body=wanted[1:] + wanted[:1], type_ignores=[]), str(RUNTIME_SOURCE), "exec"), namespace)
    return namespace[name]


@lru_cache(maxsize=1)
def contract() -> Contract:
    tree = ast.parse(RUNTIME_SOURCE.read_bytes())
    return Contract(
        version=_constant(tree, "VSOCKPORT_RUNTIME_VERSION"),
        exports=frozenset(_constant(tree, "__all__")),
        loopback_hosts=frozenset(_constant(tree, "_LOOPBACK_HOSTS")),
        wildcard_hosts=frozenset(_constant(tree, "_WILDCARD_HOSTS")),
        local_pair=_function(tree, "local_pair", ("LOCAL_PAIR_LOOPBACK",)),
        map_key=_function(tree, "_map_key", ("_split_map_key",)),
    )


@lru_cache(maxsize=1)
def split_map_key() -> Callable[[str], tuple[str, str]]:
    """The runtime's `_split_map_key` (a VSOCK_CID_MAP key's host and port text), compiled from its
    lines alone: the configuration reads map keys on every run that has a map, where parsing the
    whole runtime (`contract()`, ~60 ms) would double a pre-commit run's cost."""
    source = RUNTIME_SOURCE.read_text(encoding="utf-8")
    start = source.index("\ndef _split_map_key(") + 1
    end = source.index("\n\n\n", start)
    namespace: dict = {}
    exec(compile(source[start:end], str(RUNTIME_SOURCE), "exec"), namespace)
    return namespace["_split_map_key"]
