"""Golden input/expected pairs under tests/fixtures/golden, ported with every rule."""

from __future__ import annotations

from pathlib import Path

import libcst as cst
import pytest

from vsockport.engine import port_source
from vsockport.rules import PortOptions

GOLDEN = Path(__file__).parent / "fixtures" / "golden"
INPUTS = sorted(p for p in GOLDEN.glob("*.py") if not p.name.endswith(".expected.py"))


def expected_for(path: Path) -> Path:
    return path.with_name(path.stem + ".expected.py")


def test_there_are_goldens():
    assert len(INPUTS) >= 6


@pytest.mark.parametrize("source", INPUTS, ids=lambda p: p.stem)
def test_golden(source):
    new, findings, _, _ = port_source(source.read_bytes(), PortOptions(unsafe_fixes=True))
    expected = expected_for(source).read_bytes()
    assert (new if new is not None else source.read_bytes()) == expected


@pytest.mark.parametrize("source", INPUTS, ids=lambda p: p.stem)
def test_second_run_changes_nothing(source):
    new, findings, _, _ = port_source(expected_for(source).read_bytes(), PortOptions(unsafe_fixes=True))
    assert new is None
    assert all(not f.fixable for f in findings)


@pytest.mark.parametrize("source", INPUTS, ids=lambda p: p.stem)
def test_output_parses_and_compiles(source):
    text = expected_for(source).read_text()
    cst.parse_module(text)
    compile(text, str(source), "exec")


def test_unported_constructs_are_reported_with_location():
    new, findings, _, _ = port_source((GOLDEN / "library_calls.py").read_bytes(), PortOptions(unsafe_fixes=True))
    review = [(f.code, f.line) for f in findings if f.needs_review]
    assert review == [("VS002", 17), ("VS012", 23)]  # a family comparison, a UDP socket (VMCI only)


def test_cid_map_replaces_known_hosts():
    source = b"import socket\ns = socket.socket()\ns.connect(('daring.cs.uu.nl', 7))\n"
    new, _, _, _ = port_source(source, PortOptions(cid_map={"daring.cs.uu.nl": 42}))
    assert b"s.connect((42, 7))" in new


def test_package_relative_runtime_import():
    new, _, _, _ = port_source(b"import socket\ns = socket.socket(socket.AF_INET)\n", PortOptions(runtime_import="..vsock_runtime"))
    assert b"from ..vsock_runtime import VMCISock_GetAFValue\n" in new


def test_library_patterns_findings():
    """UDP needs review; the socketpair emulation is a note that never fails a run; the rest is fixed."""
    _, findings, _, _ = port_source((GOLDEN / "library_patterns.py").read_bytes(), PortOptions(unsafe_fixes=True))
    assert [(f.code, f.line) for f in findings if f.needs_review] == [("VS012", 72)]
    assert [(f.code, f.line) for f in findings if f.note] == [("VS013", 61)]
    assert {f.code for f in findings if f.fixable} == {f"VS{n:03d}" for n in (1, 3, 4, 7, 8, 9, 10, 11)}


def test_unsafe_fixes_are_held_back_by_default():
    """A computed host is resolved at run time: reported, left as written, applied with unsafe_fixes."""
    source = b"import socket\ndef open(host):\n    s = socket.socket()\n    s.connect((host, 80))\n    return s\n"
    new, findings, _, _ = port_source(source, PortOptions())
    assert b"s.connect((host, 80))" in new and b"vsock_cid" not in new  # the family is still ported
    [held] = [f for f in findings if f.held]
    assert (held.code, held.fix_safety, held.fixable) == ("VS004", "unsafe", True)
    full, findings, _, _ = port_source(source, PortOptions(unsafe_fixes=True))
    assert b"s.connect((vsock_cid(host), 80))" in full and not any(f.held for f in findings)
