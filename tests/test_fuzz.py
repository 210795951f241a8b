"""Fuzzing: socket programs mutated and mixed with hypothesmith-generated code never crash a port,
always come out as valid Python, port to the same result focused or whole, and are stable on a rerun.

CI runs a bounded, derandomized number of examples; `python tools/fuzz.py N` runs N random ones.
"""

from __future__ import annotations

import ast
import os
import textwrap
from pathlib import Path

import hypothesmith
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from vsockport.pipeline import PortError, port_source
from vsockport.rules import ALL_RULES, PortOptions

ROOT = Path(__file__).parent
SEEDS = sorted(
    {p.read_text() for p in (ROOT / "fixtures" / "golden").glob("*.py") if not p.name.endswith(".expected.py")}
    | {p.read_text() for p in (ROOT / "e2e" / "programs").glob("*.py")}
    | {ex.before for rule in ALL_RULES for ex in rule.examples}
)
EXAMPLES = int(os.environ.get("VSOCKPORT_FUZZ_EXAMPLES", "60"))


def _boundaries(source: str) -> list[int]:
    """Line indexes between top-level statements, where a whole statement can go."""
    tree = ast.parse(source)
    return sorted({0, *(s.end_lineno for s in tree.body if s.end_lineno)})


def mutate(seed: str, generated: str, choice: int, kind: str) -> str:
    lines = seed.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    cut = _boundaries(seed)[choice % len(_boundaries(seed))]
    if kind == "insert":  # generated code between two statements of a socket program
        return "".join(lines[:cut]) + generated + ("\n" if generated and not generated.endswith("\n") else "") + "".join(lines[cut:])
    if kind == "into_class":  # the program's functions become methods: focused porting's indented regions
        return "import socket\n\n\nclass Wrapped:\n" + textwrap.indent("".join(lines) or "pass\n", "    ") + "\n" + generated
    if kind == "drop":
        tree = ast.parse(seed)
        if not tree.body:
            return seed
        stmt = tree.body[choice % len(tree.body)]
        start = min([stmt.lineno, *(d.lineno for d in getattr(stmt, "decorator_list", []))])
        return "".join(lines[: start - 1] + lines[stmt.end_lineno :])
    if kind == "crlf":
        return seed.replace("\r\n", "\n").replace("\n", "\r\n") + generated.replace("\n", "\r\n")
    if kind == "ipv6":
        return seed.replace("AF_INET", "AF_INET6").replace("'localhost'", "'::1'") + generated
    raise AssertionError(kind)


programs = st.builds(
    mutate,
    st.sampled_from(SEEDS),
    hypothesmith.from_node(),
    st.integers(min_value=0, max_value=10_000),
    st.sampled_from(["insert", "into_class", "drop", "crlf", "ipv6"]),
)


def check(source: str) -> None:
    data = source.encode("utf-8")
    try:
        compile(data, "<fuzz>", "exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        assume(False)
    options = PortOptions(unsafe_fixes=True)
    try:
        whole = port_source(data, options, focused=False)
    except PortError:
        return  # reported as a one-line error by the engine, file left alone (tests elsewhere)
    assert port_source(data, options) == whole
    new = whole.new
    if new is None:
        return
    compile(new, "<ported>", "exec")  # the port is valid Python
    again = port_source(new, options)
    assert again.new is None, "a second run changed the ported code"


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(programs)
@example("srv.bind(('::', port, 0, 0))\n")  # found by tools/fuzz.py: a rule ran without its trigger
def test_mutated_socket_programs(source):
    check(source)


def _ports_something(source: str) -> bool:
    try:
        return port_source(source.encode(), PortOptions(unsafe_fixes=True)).new is not None
    except PortError:
        return False


@pytest.mark.parametrize("kind", ["insert", "into_class", "drop", "crlf", "ipv6"])
def test_every_mutation_ports_something(kind):
    """The mutations keep the seeds' socket code, so the fuzz exercises rules, not just the gate:
    of the seeds that port something (report-only examples and plain programs do not), mutated at
    four places each, at least a fifth still do (dropping a statement often drops the socket code;
    the other mutations keep nearly all)."""
    porting = [seed for seed in SEEDS if _ports_something(seed)]
    assert len(porting) >= len(SEEDS) * 2 // 5  # (report-only rule examples are a growing share of the seeds)
    ported = sum(_ports_something(mutate(seed, "x = 1\n", choice, kind)) for seed in porting for choice in range(4))
    assert ported >= len(porting) * 4 // 5
