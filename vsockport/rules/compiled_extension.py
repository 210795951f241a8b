from __future__ import annotations

from vsockport import compiled
from vsockport.rules.api import Example, Rule


class CompiledExtension(Rule):
    """Report compiled code in a ported tree that uses sockets: code vsockport cannot port.

    ## What it does
    Reports each extension module (`.so`, `.pyd`) and Cython source (`.pyx`, `.pxd`) in a walked tree (or
    named on the command line) whose code makes or configures sockets: an extension that imports the C
    library's socket calls (`socket`, `connect`, `bind`, `getaddrinfo`, `setsockopt`) or calls the Python
    socket API (Cython keeps `setsockopt`, `create_connection`, `open_connection` as names), or a Cython
    line that calls it. The module is read as bytes, never loaded. Python files are never this rule's.

    ## Why
    Sockets made in C (libuv in uvloop and gevent, c-ares, libpq in psycopg, grpcio's core, libcurl)
    never pass through Python's socket module, so no rule can port them and the runtime never sees
    them: left unnamed, they would be silent misses. TCP options that compiled code sets on a socket
    made in Python (asyncpg's `TCP_NODELAY`) are harmless: the runtime makes them no-ops.

    ## Example
    ```
    site-packages/uvloop/loop.cpython-311-x86_64-linux-gnu.so:1:1: VS017 compiled extension module that
    uses sockets (socket, connect, bind, getaddrinfo, setsockopt): vsockport cannot port compiled code ...
    ```

    ## Fix safety
    Report only. Use the package's pure-Python mode if it has one, keep that part on TCP/IP behind a
    forwarder, or silence a module that only links socket code it never calls (Rust's standard library
    does, in `cryptography`) with `per-file-ignores`.
    """

    code = compiled.CODE
    name = compiled.NAME
    fix_safety = "none"
    triggers = ()  # never given a Python file: the engine scans compiled files itself (vsockport/compiled.py)
    examples = (Example("import socket\nimport ssl\n"),)
