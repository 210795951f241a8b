"""What README and docs/ say about the port is what the pipeline does: their examples are regenerated
from the real pipeline here, so they cannot drift from it again."""

from __future__ import annotations

import re
from pathlib import Path

from vsockport import regions
from vsockport.pipeline import port_source, regions_of
from vsockport.report import _hunks
from vsockport.results import FileResult
from vsockport.rules import ALL_RULES, PortOptions
from vsockport.runtime.contract import RUNTIME_SOURCE

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
ARCHITECTURE = (ROOT / "docs" / "architecture.md").read_text()


def generated_block(document: str, marker: str) -> str:
    """The fenced block right after `<!-- generated: marker -->` (indented as the marker is, in a list)."""
    match = re.search(rf"^( *)<!-- generated: {re.escape(marker)} -->\n\1```\w*\n(.*?)^\1```\n", document, re.S | re.M)
    assert match, f"no generated block {marker!r}"
    indent = match.group(1)
    return "".join(line[len(indent):] if line.startswith(indent) else line
                   for line in match.group(2).splitlines(keepends=True))


def diff_of(path: Path) -> str:
    data = path.read_bytes()
    result = port_source(data, PortOptions())
    return _hunks(FileResult(path, old=data, new=result.new))


def test_readme_shows_what_a_port_looks_like():
    for name in ("server", "client"):
        shown = generated_block(README, f"vsockport diff examples/echo/{name}.py")
        assert shown == diff_of(ROOT / "examples" / "echo" / f"{name}.py"), f"README's {name}.py diff is stale"


def test_readme_states_the_runtime_size():
    lines = RUNTIME_SOURCE.read_bytes().count(b"\n")
    assert f"{lines} lines" in README, f"README must state the runtime's size: {lines} lines"


def test_the_architecture_walkthrough_is_what_the_pipeline_does():
    """docs/architecture.md follows one file through the pipeline; each step's output is regenerated."""
    source = generated_block(ARCHITECTURE, "the file")
    data = source.encode()
    planned = [(r.start, r.end, bool(r.prefix)) for r in regions_of(data, ALL_RULES)]
    shown_regions = generated_block(ARCHITECTURE, "regions.focused")
    assert shown_regions == "".join(f"lines {a}-{b}{', wrapped in if True:' if wrapped else ''}\n"
                                    for a, b, wrapped in planned)
    result = port_source(data, PortOptions())
    findings = "".join(f"{f.line}:{f.column} {f.code} {f.state.value}: {f.message}\n" for f in result.findings)
    assert generated_block(ARCHITECTURE, "findings") == findings
    assert generated_block(ARCHITECTURE, "the ported file") == result.new.decode()
    assert regions.whole_module  # the same pipeline ports a whole module as one region


def test_ci_runs_readme_test_command_verbatim():
    """README opens with two commands; CI must run the second exactly as a new user would."""
    blocks = re.findall(r"^```sh\n(.*?)\n```$", README, re.S | re.M)
    install_and_example, install_and_test = blocks[0], blocks[1]
    assert install_and_example.startswith("pip install") and install_and_test.startswith("pip install")
    ci = (ROOT / ".ci" / "run").read_text()
    assert f"\n{install_and_test} || status=$?\n" in ci
    assert "python -m pytest -m sandbox" in install_and_test  # the VM tests are their own group, and CI runs it
