"""Bytes in, bytes out: everything not edited keeps its encoding, BOM, line endings and final newline."""

from __future__ import annotations

import pytest

from vsockport.pipeline import port_source
from vsockport.rules import PortOptions

SERVER = "import socket\ns = socket.socket(socket.AF_INET)\ns.bind(('', 0))\n"


def port(data: bytes) -> bytes:
    new = port_source(data, PortOptions(unsafe_fixes=True)).new
    assert new is not None
    return new


def test_crlf_is_kept_everywhere():
    new = port(SERVER.replace("\n", "\r\n").encode())
    assert new.count(b"\r\n") == new.count(b"\n")
    assert b"s.bind((VMADDR_CID_ANY, VMADDR_PORT_ANY))\r\n" in new


def test_mixed_line_endings_keep_each_line():
    source = b"import socket\r\nx = 1\ns = socket.socket(socket.AF_INET)\r\n"
    new = port(source)
    assert b"x = 1\ns = vsock_socket(afVMCI)\r\n" in new


def test_utf8_bom_is_kept():
    new = port(b"\xef\xbb\xbf" + SERVER.encode())
    assert new.startswith(b"\xef\xbb\xbfimport socket\n")
    assert new.count(b"\xef\xbb\xbf") == 1


def test_latin1_coding_cookie_keeps_its_encoding():
    source = ("# -*- coding: latin-1 -*-\n" + SERVER + "GREETING = 'héllo'\n").encode("latin-1")
    new = port(source)
    assert "GREETING = 'héllo'\n".encode("latin-1") in new
    assert "héllo".encode("utf-8") not in new


def test_no_trailing_newline_stays_so():
    new = port(SERVER.rstrip("\n").encode())
    assert new.endswith(b"s.bind((VMADDR_CID_ANY, VMADDR_PORT_ANY))")


def test_comments_and_odd_spacing_survive():
    source = b"import socket\ns = socket.socket( socket.AF_INET ,  socket.SOCK_STREAM )  # keep me\n"
    assert port(source).endswith(b"s = vsock_socket( afVMCI ,  socket.SOCK_STREAM )  # keep me\n")


@pytest.mark.parametrize(
    "source",
    [b"import os\nprint('no sockets')\n", b"import socket\nprint(socket.gethostname())\r\n", b"\xef\xbb\xbfimport socket\n"],
)
def test_files_without_socket_use_are_untouched(source):
    result = port_source(source, PortOptions(unsafe_fixes=True))
    assert result.new is None and result.findings == ()
