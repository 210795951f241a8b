"""Every rule's documented before/after examples are its tests (Fixit-style VALID/INVALID cases)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vsockport.pipeline import port_source
from vsockport.results import State
from vsockport.rules import ALL_RULES, PortOptions

CASES = [pytest.param(rule, example, id=f"{rule.code}-{i}") for rule in ALL_RULES for i, example in enumerate(rule.examples)]


def port(text: str, rules, options: dict | None = None) -> tuple[str, tuple]:
    result = port_source(text.encode(), PortOptions(unsafe_fixes=True, **(options or {})), rules)
    return (result.new.decode() if result.new is not None else text), result.findings


@pytest.mark.parametrize("rule, example", CASES)
def test_example(rule, example):
    new, findings = port(example.before, [rule], example.options)
    assert new == (example.after if example.after is not None else example.before)
    assert tuple(f.code for f in findings) == example.codes


@pytest.mark.parametrize("rule, example", CASES)
def test_example_is_idempotent(rule, example):
    once, _ = port(example.before, [rule], example.options)
    twice, findings = port(once, [rule], example.options)
    assert twice == once
    assert not [f for f in findings if f.state is State.FIXABLE], "a fixable finding survived its own fix"


@pytest.mark.parametrize("rule, example", CASES)
def test_example_in_the_default_safe_only_mode(rule, example):
    """Without --unsafe-fixes an example gives its `after` exactly when every fix it makes is safe;
    otherwise the unsafe fixes are held back, named as such, and the code is left as it was there."""
    result = port_source(example.before.encode(), example.port_options(), [rule])
    unsafe = [f for f in port(example.before, [rule], example.options)[1] if f.fix is not None and f.fix_safety == "unsafe"]
    if not unsafe:
        assert (result.new.decode() if result.new else example.before) == (example.after or example.before)
    else:
        assert {(f.line, f.column) for f in result.findings if f.state is State.HELD_BACK} == {(f.line, f.column) for f in unsafe}


@pytest.mark.parametrize("rule", ALL_RULES, ids=lambda r: r.code)
def test_declared_fix_safety_matches_the_fixes_the_examples_make(rule):
    """`fix_safety` is what `vsockport rules` and the docs tell users: it must be what the rule does.
    safe: every fix its examples make is safe; unsafe: every one unsafe; mixed: both occur; none: no fix."""
    made = {f.fix_safety for example in rule.examples for f in port(example.before, [rule], example.options)[1]
            if f.fix is not None}
    expected = {"safe": {"safe"}, "unsafe": {"unsafe"}, "mixed": {"safe", "unsafe"}, "none": set()}[rule.fix_safety]
    assert made == expected, f"{rule.code} declares {rule.fix_safety} but its examples make {sorted(made) or 'no'} fixes"


@pytest.mark.parametrize("rule", ALL_RULES, ids=lambda r: r.code)
def test_rule_documents_itself(rule):
    doc = rule.documentation()
    for section in ("## What it does", "## Why", "## Example", "## Fix safety"):
        assert section in doc, f"{rule.code} lacks {section}"
    assert rule.code.startswith("VS") and rule.name and rule.fix_safety in ("safe", "unsafe", "mixed", "none")
    assert any(e.after is not None for e in rule.examples) or rule.fix_safety == "none"
    assert any(e.after is None and not e.codes for e in rule.examples), "needs a negative example"


def test_codes_and_names_are_unique():
    assert len({r.code for r in ALL_RULES}) == len(ALL_RULES)
    assert len({r.name for r in ALL_RULES}) == len(ALL_RULES)


def test_readme_lists_every_rule():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for rule in ALL_RULES:
        assert f"| {rule.code} | {rule.name} | {rule.fix_safety} |" in readme, rule.code


def test_rules_reference_is_generated_from_the_rules():
    """docs/rules.md must equal `vsockport rules --markdown`: regenerate it after changing a rule."""
    from vsockport.docs import rules_markdown

    reference = (Path(__file__).resolve().parents[1] / "docs" / "rules.md").read_text()
    assert reference == rules_markdown(ALL_RULES), "run: vsockport rules --markdown > docs/rules.md"
