"""The rules: every `Rule` subclass with a code, in any module of this package (adding a rule is
adding a file; as pyupgrade finds its plugins), in code order."""

from __future__ import annotations

import importlib
import pkgutil

from vsockport.rules.api import Example, PortOptions, Rule


def _discover() -> tuple[type[Rule], ...]:
    found: dict[str, type[Rule]] = {}
    for module_info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, Rule) and value.code and value.__module__ == module.__name__:
                if value.code in found and found[value.code] is not value:
                    raise RuntimeError(f"two rules use the code {value.code}: {found[value.code].__name__}, {value.__name__}")
                found[value.code] = value
    return tuple(found[code] for code in sorted(found))


ALL_RULES: tuple[type[Rule], ...] = _discover()
UNUSED_SUPPRESSION = next(rule for rule in ALL_RULES if rule.code == "VS100")


def find_rule(key: str) -> type[Rule] | None:
    """A rule by code (`VS003`) or name (`bind-address`), case-insensitive."""
    key = key.strip().lower()
    return next((r for r in ALL_RULES if key in (r.code.lower(), r.name.lower())), None)


__all__ = ["ALL_RULES", "Example", "PortOptions", "Rule", "UNUSED_SUPPRESSION", "find_rule"]
