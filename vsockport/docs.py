"""The rules reference (docs/rules.md), generated from the rules' own docstrings and examples.

    vsockport rules --markdown > docs/rules.md

A test regenerates it and compares, so the published reference never drifts from the code.
"""

from __future__ import annotations

from typing import Sequence

from vsockport.rules import Rule


def rules_markdown(rules: Sequence[type[Rule]]) -> str:
    lines = [
        "# vsockport rules",
        "",
        "Generated from the rules' docstrings by `vsockport rules --markdown`; do not edit by hand.",
        "",
        "| code | name | fix safety | summary |",
        "|---|---|---|---|",
    ]
    for rule in rules:
        lines.append(f"| [{rule.code}](#{rule.code.lower()}-{rule.name}) | {rule.name} | {rule.fix_safety} | {rule.summary()} |")
    for rule in rules:
        body = rule.documentation().splitlines()
        lines += ["", f"## {rule.code} {rule.name}", "", f"Fix safety: **{rule.fix_safety}**.", ""]
        # The docstring's own sections (What it does / Why / Example / Fix safety) become subsections.
        lines += [("#" + line if line.startswith("## ") else line) for line in body]
        cases = [e for e in rule.examples if e.after is not None]
        if cases:
            lines += ["", "### Tested examples", ""]
            for example in cases:
                flags = f" (ported with `{example.command_line()}`)" if example.command_line() else ""
                lines += [f"Before{flags}:", "", "```python", example.before.rstrip("\n"), "```", "", "After:", "",
                          "```python", example.after.rstrip("\n"), "```", ""]
    return "\n".join(lines).rstrip("\n") + "\n"
