"""Compiled code in a ported tree that uses sockets (VS017): extension modules (`.so`, `.pyd`) and
Cython sources (`.pyx`, `.pxd`). vsockport cannot port them; it names them, so that no socket they make
is left in silence.

An extension module is read as bytes (never loaded): the C library's socket calls it imports (`socket`,
`connect`, `getaddrinfo`, ... in its dynamic symbol table) or the socket API it calls through Python
(Cython keeps attribute names such as `setsockopt` and `create_connection` as C strings) show as
NUL-delimited names. A Cython source is read as text, line by line. No libcst, no rules: the engine
runs this on files it never parses.
"""

from __future__ import annotations

import mmap
import re
from pathlib import Path

CODE, NAME = "VS017", "compiled-extension"
EXTENSION_SUFFIXES = (".so", ".pyd")
CYTHON_SUFFIXES = (".pyx", ".pxd")
# The C library's socket calls (as symbols an extension imports) and the Python socket API (as names a
# Cython module keeps): either means the module makes or configures sockets.
_SYMBOLS = (b"socket", b"connect", b"bind", b"getaddrinfo", b"setsockopt", b"create_connection", b"sock_connect",
            b"open_connection")
_DELIMITED = [b"\0" + symbol + b"\0" for symbol in _SYMBOLS]
_CYTHON_USES = re.compile(r"\b(?:socket\.socket|setsockopt|getaddrinfo|create_connection|open_connection|"
                          r"sock_connect|create_server|\.connect\(|\.bind\()")


def is_compiled(path: Path) -> bool:
    name = path.name
    return name.endswith(EXTENSION_SUFFIXES) or name.endswith(CYTHON_SUFFIXES)


def socket_uses(path: Path, data: bytes | None = None) -> list[tuple[int, int, str]]:
    """(line, column, what) for each socket use found in a compiled file; [] when it has none."""
    if path.name.endswith(CYTHON_SUFFIXES):
        text = (data if data is not None else path.read_bytes()).decode("utf-8", "replace")
        return [(number, match.start() + 1, match.group().strip(".("))
                for number, line in enumerate(text.splitlines(), 1)
                for match in [_CYTHON_USES.search(line.split("#", 1)[0])] if match]
    if data is not None:
        found = [symbol for symbol, delimited in zip(_SYMBOLS, _DELIMITED) if delimited in data]
    else:
        with open(path, "rb") as handle:
            try:
                view = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
            except ValueError:  # an empty file
                return []
            with view:
                found = [symbol for symbol, delimited in zip(_SYMBOLS, _DELIMITED) if view.find(delimited) != -1]
    return [(1, 1, ", ".join(s.decode() for s in found))] if found else []


def message(path: Path, what: str) -> str:
    kind = "Cython source" if path.name.endswith(CYTHON_SUFFIXES) else "compiled extension module"
    return (f"{kind} that uses sockets ({what}): vsockport cannot port compiled code, so the sockets it makes "
            "stay on TCP/IP. Use the package's pure-Python mode if it has one (for example an environment "
            "variable or an extra that skips its C speedups), or keep that part on TCP/IP behind a forwarder "
            "(VSOCK_STRICT=1 shows the IP sockets it makes through Python's socket module); a module that "
            "only links socket code it never calls can be silenced with per-file-ignores")
