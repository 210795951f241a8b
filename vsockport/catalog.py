"""The rule catalog: each rule's code, name and prefilter triggers, without importing the rules.

Importing the rules imports libcst, which costs several times the CPU of a whole run over files that
need no porting (pre-commit and editors run vsockport on every commit and save). The engine decides
"nothing to port here" from the triggers alone, so it reads them from `rules/catalog.json`, shipped
with the package and stamped with a digest of the rules' sources. When the stamp does not match (a
rule was edited and the file not regenerated) the rules are imported instead: slower, never wrong.
A test fails while the shipped file is stale; regenerate it with `python -m vsockport.catalog`.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vsockport.rules import RuleEntry

_PACKAGE = os.path.dirname(os.path.abspath(__file__))
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


def _encode(entries) -> str:
    return json.dumps({"rules_digest": rules_digest(),
                       "rules": [{"code": e.code, "name": e.name, "triggers": [t.decode("latin-1") for t in e.triggers]}
                                 for e in entries]}, indent=1) + "\n"


def shipped() -> tuple[RuleEntry, ...] | None:
    """The shipped catalog, or None when it is missing, unreadable or stale."""
    from vsockport.rules import RuleEntry

    try:
        with open(CATALOG_PATH, encoding="utf-8") as handle:
            data = json.load(handle)
        if data["rules_digest"] != rules_digest():
            return None
        return tuple(RuleEntry(e["code"], e["name"], tuple(t.encode("latin-1") for t in e["triggers"]))
                     for e in data["rules"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def built() -> tuple[RuleEntry, ...]:
    """The catalog from the rule classes themselves (imports them, and libcst)."""
    from vsockport.rules import all_rules, entry_of

    return tuple(entry_of(rule) for rule in all_rules())


def expected_text() -> str:
    return _encode(built())


def main() -> None:
    with open(CATALOG_PATH, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(expected_text())
    print(f"wrote {os.path.relpath(CATALOG_PATH)}")


if __name__ == "__main__":
    main()
