"""`# vsockport: ignore[CODES]` comments: which lines hold back which findings, and which are stale."""

from __future__ import annotations

import re
from typing import Iterable, Mapping

from vsockport.source import Source

# `# vsockport: ignore` (every code) or `# vsockport: ignore[VS008, VS012]`, at the end of a line.
_SUPPRESSION = re.compile(r"#\s*vsockport:\s*ignore(?:\[([A-Za-z0-9_,\s]*)\])?")

Suppressions = Mapping[int, "frozenset[str] | None"]  # line -> codes (None: every code)


def find_suppressions(source: Source) -> dict[int, frozenset[str] | None]:
    if "vsockport:" not in source.text:
        return {}
    found: dict[int, frozenset[str] | None] = {}
    for match in _SUPPRESSION.finditer(source.text):
        line, _ = source.position(match.start())
        codes = match.group(1)
        found[line] = None if codes is None else frozenset(c.strip().upper() for c in codes.split(",") if c.strip())
    return found


def comment_span(line_text: str) -> tuple[int, int]:
    """0-based start and end columns of the suppression comment in its line (where VS100 points)."""
    match = _SUPPRESSION.search(line_text)
    return (match.start(), match.end()) if match else (0, len(line_text.rstrip("\r\n")))


def suppresses(suppressions: Suppressions, line: int, code: str) -> bool:
    if line not in suppressions:
        return False
    codes = suppressions[line]
    return codes is None or code in codes


def unused(suppressions: Suppressions, used: Mapping[int, set[str]], active: Iterable[str],
           every_rule_ran: bool, known: Iterable[str] = ()) -> list[tuple[int, str]]:
    """(line, message) for each suppression that held back nothing (ruff's RUF100), and for codes no
    rule has (a typo suppresses nothing, forever). Codes of rules that did not run (deselected) cannot
    be judged and are left alone."""
    active, known = set(active), set(known) | set(active)
    stale_lines = []
    for line, codes in sorted(suppressions.items()):
        held = used.get(line, set())
        if codes is None:
            if not held and every_rule_ran:
                stale_lines.append((line, "`# vsockport: ignore` suppresses nothing on this line"))
            continue
        unknown = sorted(code for code in codes if code.startswith("VS") and code not in known)
        stale = sorted(code for code in codes - held - set(unknown) if code in active or not code.startswith("VS"))
        messages = [f"unknown rule code {', '.join(unknown)} in a suppression (see `vsockport rules`)"] if unknown else []
        messages += [f"unused suppression of {', '.join(stale)}"] if stale else []
        if messages:
            stale_lines.append((line, "; ".join(messages)))
    return stale_lines
