"""The rule catalog: each rule's code, name and prefilter triggers, without importing the rules.

Importing the rules imports libcst, which costs several times the CPU of a whole run over files that
need no porting (pre-commit and editors run vsockport on every commit and save). The engine decides
"nothing to port here" from the triggers alone, so it reads them from `rules/catalog.json`, shipped
with the package and stamped with a digest of the rules' sources. When the stamp does not match (a
rule was edited and the file not regenerated) the rules are imported instead: slower, never wrong.
A test fails while the shipped file is stale; regenerate it with `python -m vsockport.rules`.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from functools import lru_cache

_PACKAGE = os.path.dirname(os.path.abspath(__file__))


@dataclass(frozen=True)
class RuleEntry:
    """What the engine needs of a rule before any porting: which rule, and the bytes that make a file
    worth parsing for it."""

    code: str
    name: str
    triggers: tuple[bytes, ...]
CATALOG_PATH = os.path.join(_PACKAGE, "rules", "catalog.json")


@lru_cache(maxsize=1)
def sources() -> tuple[tuple[str, bytes], ...]:
    """vsockport's own .py files, (path relative to the package, bytes), in path order: read once per
    process for the catalog stamp and the result cache's fingerprint."""
    found = []
    for folder, subfolders, names in os.walk(_PACKAGE):
        subfolders[:] = [name for name in subfolders if name != "__pycache__"]
        found.extend(os.path.join(folder, name) for name in names if name.endswith(".py"))
    read = []
    for relative in sorted(os.path.relpath(path, _PACKAGE).replace(os.sep, "/") for path in found):
        with open(os.path.join(_PACKAGE, relative), "rb") as handle:
            read.append((relative, handle.read()))
    return tuple(read)


def rules_digest() -> str:
    """What the catalog depends on: the sources of the rules package."""
    digest = hashlib.sha256()
    for relative, data in sources():
        if relative.startswith("rules/"):
            digest.update(relative.encode() + b"\0" + data + b"\0")
    return digest.hexdigest()


def encode(entries) -> str:
    """The catalog file's text for `entries`, stamped with the rules' digest."""
    return json.dumps({"rules_digest": rules_digest(),
                       "rules": [{"code": e.code, "name": e.name, "triggers": [t.decode("latin-1") for t in e.triggers]}
                                 for e in entries]}, indent=1) + "\n"


def shipped() -> tuple[RuleEntry, ...] | None:
    """The shipped catalog, or None when it is missing, unreadable or stale."""
    try:
        with open(CATALOG_PATH, encoding="utf-8") as handle:
            data = json.load(handle)
        if data["rules_digest"] != rules_digest():
            return None
        return tuple(RuleEntry(e["code"], e["name"], tuple(t.encode("latin-1") for t in e["triggers"]))
                     for e in data["rules"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
