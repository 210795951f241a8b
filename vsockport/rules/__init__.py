"""The rules: every `Rule` subclass with a code, in any module of this package (adding a rule is
adding a file; as pyupgrade finds its plugins), in code order.

Importing the rules imports libcst, which costs more CPU than a whole run over files that need no
porting. So the engine works from `catalog()`: each rule's code, name and prefilter triggers, read
from the shipped rules/catalog.json when it matches the rules' sources (vsockport/catalog.py).
`ALL_RULES` and the rule classes import on first use. `python -m vsockport.rules` writes the catalog.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from vsockport import catalog as shipped_catalog
from vsockport.catalog import RuleEntry

if TYPE_CHECKING:
    from vsockport.rules.api import Rule


def _discover() -> tuple[type[Rule], ...]:
    import importlib
    import pkgutil

    from vsockport.rules.api import Rule

    found: dict[str, type[Rule]] = {}
    for module_info in pkgutil.iter_modules(__path__):
        if module_info.name == "__main__":
            continue
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, Rule) and value.code and value.__module__ == module.__name__:
                if value.code in found and found[value.code] is not value:
                    raise RuntimeError(f"two rules use the code {value.code}: {found[value.code].__name__}, {value.__name__}")
                found[value.code] = value
    return tuple(found[code] for code in sorted(found))


@lru_cache(maxsize=1)
def all_rules() -> tuple[type[Rule], ...]:
    return _discover()


def entry_of(rule: type[Rule]) -> RuleEntry:
    return RuleEntry(rule.code, rule.name, tuple(rule.triggers))


def built() -> tuple[RuleEntry, ...]:
    """The catalog from the rule classes themselves (imports them, and libcst)."""
    return tuple(entry_of(rule) for rule in all_rules())


@lru_cache(maxsize=1)
def catalog() -> tuple[RuleEntry, ...]:
    """Every rule as a RuleEntry: from the shipped catalog (no libcst), or from the classes."""
    return shipped_catalog.shipped() or built()


def write_catalog() -> None:
    """Regenerate the shipped catalog (rules/catalog.json) from the rule classes."""
    with open(shipped_catalog.CATALOG_PATH, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(shipped_catalog.encode(built()))


def rule_classes(rules) -> tuple[type[Rule], ...]:
    """The rule classes for entries (or classes) in `rules`, in their order."""
    if all(isinstance(rule, type) for rule in rules):
        return tuple(rules)
    by_code = {rule.code: rule for rule in all_rules()}
    return tuple(rule if isinstance(rule, type) else by_code[rule.code] for rule in rules)


def find_rule(key: str) -> type[Rule] | None:
    """A rule by code (`VS003`) or name (`bind-address`), case-insensitive."""
    key = key.strip().lower()
    return next((r for r in all_rules() if key in (r.code.lower(), r.name.lower())), None)


def __getattr__(name: str) -> Any:
    # The classes (and libcst) on first use: `from vsockport.rules import ALL_RULES, Rule` still works.
    if name == "ALL_RULES":
        return all_rules()
    if name == "UNUSED_SUPPRESSION":
        return next(rule for rule in all_rules() if rule.code == "VS100")
    if name in ("Example", "Rule"):
        from vsockport.rules import api

        return getattr(api, name)
    if name == "PortOptions":
        from vsockport.options import PortOptions

        return PortOptions
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ALL_RULES", "Example", "PortOptions", "Rule", "RuleEntry", "UNUSED_SUPPRESSION", "catalog", "find_rule",
           "rule_classes"]
