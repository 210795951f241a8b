"""`# vsockport: ignore[CODE]` comments: the finding and its fix are both held back; stale ones are reported."""

from __future__ import annotations

from vsockport.pipeline import port_source
from vsockport.results import State
from vsockport.rules import PortOptions


def port(text: str):
    result = port_source(text.encode(), PortOptions())
    return (result.new.decode() if result.new is not None else None), result.findings


def test_suppressed_code_keeps_its_line_other_codes_still_apply():
    new, findings = port(
        "import socket\n"
        "a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # vsockport: ignore[VS012]\n"
        "b = socket.socket(socket.AF_INET)  # vsockport: ignore\n"
        "c = socket.socket(socket.AF_INET)\n"
    )
    assert "a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # vsockport: ignore[VS012]\n" in new  # UDP stays
    assert "b = socket.socket(socket.AF_INET)  # vsockport: ignore\n" in new  # nothing applied
    assert "c = vsock_socket(afVMCI)\n" in new
    assert [(f.code, f.line) for f in findings] == [("VS001", 4)]
    assert port(new)[0] is None  # a second run changes nothing


def test_fully_suppressed_file_is_left_byte_for_byte():
    text = "import socket\ns = socket.socket(socket.AF_INET)  # vsockport: ignore[VS001]\ns.connect(('localhost', 1))  # vsockport: ignore\n"
    new, findings = port(text)
    assert new is None and findings == ()  # and no runtime import for names nobody uses


def test_unused_suppressions_are_reported():
    _, findings = port(
        "import socket\n"
        "x = 1  # vsockport: ignore\n"
        "s = socket.socket(socket.AF_UNIX)  # vsockport: ignore[VS001, VS012]\n"
    )
    assert [(f.code, f.line, f.message) for f in findings] == [
        ("VS100", 2, "`# vsockport: ignore` suppresses nothing on this line"),
        ("VS100", 3, "unused suppression of VS001, VS012"),
    ]
    assert all(f.state is State.NEEDS_REVIEW for f in findings)


def test_suppression_with_spaces_and_lowercase():
    new, findings = port("import socket\ns = socket.socket(socket.AF_INET)  #vsockport:ignore[ vs001 ]\n")
    assert new is None and findings == ()
