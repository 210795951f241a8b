"""The pipeline: focused porting (libcst sees only the statements rules could touch) and porting the
whole module as one region are the same code path, so they must give the same bytes, findings,
encoding and runtime use; and the splice, the fix loop and fidelity checks hold."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from vsockport import spans
from vsockport.pipeline import port_source, regions_of
from vsockport.source import code_only
from vsockport.rules import ALL_RULES, PortOptions

ROOT = Path(__file__).parent
SAMPLES = sorted(
    [*(ROOT / "fixtures" / "golden").glob("*.py"), *(ROOT / "e2e" / "programs").glob("*.py"),
     *(ROOT.parent / "examples").rglob("*.py")]
)
EXAMPLES = [(rule.code, i, ex.before) for rule in ALL_RULES for i, ex in enumerate(rule.examples)]

# Shapes the splicing has to get right: where regions start and end, the module head, encodings.
CASES = {
    "method_in_class": (
        "import socket\n\n\nclass Client:\n    '''Talks to a peer.'''\n\n    retries = 3\n\n"
        "    def open(self):\n        self.sock = socket.socket()\n        self.sock.connect(('localhost', 80))\n\n"
        "    def close(self):\n        self.sock.close()\n"
    ),
    "decorated_method_tabs": (
        "import socket\nclass C:\n\t@staticmethod\n\tdef make():\n\t\treturn socket.create_connection(('10.0.0.1', 80))\n"
        "\tdef other(self):\n\t\treturn 1\n"
    ),
    "class_header_relevant": (
        "import socketserver\nclass S(socketserver.TCPServer):\n    def handle(self):\n        pass\n"
    ),
    "statements_sharing_a_line": "import socket; s = socket.socket(); x = (1,\n 2); y = 3\n",
    "constant_standing_in": (
        "import socket\nHOST = '127.0.0.1'\nPORT = 0\n\n\ndef serve(sock):\n    sock.bind((HOST, PORT))\n"
    ),
    "alias_standing_in": "from socket import socket as S, AF_INET as FAM\n\ndef f():\n    return S(FAM)\n",
    "docstring_then_code": '"""Module docstring."""\nimport socket\ns = socket.socket()\n',
    "header_comments_no_imports": "#!/usr/bin/env python\n# about this file\n\nsock = __import__('socket').socket()\nsock.bind(('', 0))\n",
    "existing_runtime_import_later": (
        "import socket\nimport os\n\nfrom vsock_runtime import vsock_cid\n\nx = vsock_cid('h')\n\n"
        "def f():\n    return socket.socket()\n"
    ),
    "crlf": "import socket\r\n\r\ndef f():\r\n    s = socket.socket()\r\n    s.connect(('localhost', 1))\r\n",
    "bom": "\ufeffimport socket\ns = socket.socket()\n",
    "suppressed_elsewhere": (
        "import socket\nA = 1  # vsockport: ignore[VS001]\ndef f():\n    return socket.socket()  # vsockport: ignore[VS001]\n"
    ),
    "no_trailing_newline": "import socket\ns = socket.socket()",
    "function_with_one_socket_statement": (
        "import socket\n\ndef main(argv):\n    total = 0\n    for arg in argv:\n        total += len(arg)\n"
        "    with socket.create_connection(('vm', 80)) as conn:\n        conn.sendall(b'%d' % total)\n"
        "    return total\n"
    ),
    "nested_statements": (
        "import socket\n\n\nclass Server:\n    def serve(self):\n        if self.ready:\n"
        "            s = socket.socket(socket.AF_INET6)\n            s.bind(('', 0))\n        return 1\n"
    ),
    "word_only_in_strings": "import os\nprint('use socket.socket() and connect()')\n# socket.AF_INET\n",
    "class_header_alone": (
        "import socketserver\n\n\n@decorate(1)\nclass Big(\n    socketserver.TCPServer,\n):  # serves\n\n"
        "    # the body\n    '''Docstring.'''\n\n    def handle(self):\n        return 1\n\n"
        "    def other(self):\n        self.sock.connect(('localhost', 80))\n"
    ),
    "class_header_alone_tabs_crlf": "import socketserver\r\nclass S(socketserver.TCPServer):\r\n\tdef f(self):\r\n\t\treturn 2\r\n",
    "class_level_statements": (
        "import socket\n\n\nclass Acceptor(Base):\n    '''Doc.'''\n    address_family = socket.AF_INET\n"
        "    make = socket.socket\n    other = 1\n\n    def run(self):\n        return 1\n"
        "    family2 = socket.AF_INET6\n"
    ),
}


def assert_same(data: bytes) -> None:
    options = PortOptions(unsafe_fixes=True)
    assert port_source(data, options) == port_source(data, options, focused=False)


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_sample_files(path):
    assert_same(path.read_bytes())


@pytest.mark.parametrize("code, index, before", EXAMPLES, ids=[f"{c}-{i}" for c, i, _ in EXAMPLES])
def test_rule_examples(code, index, before):
    assert_same(before.encode())


@pytest.mark.parametrize("name", sorted(CASES))
def test_shapes(name):
    assert_same(CASES[name].encode("utf-8"))


def test_latin1_with_coding_cookie():
    data = "# -*- coding: latin-1 -*-\nimport socket\nNAME = 'caf\xe9'\ns = socket.socket()\n".encode("latin-1")
    assert_same(data)
    assert port_source(data, PortOptions()).new.decode("latin-1").count("\xe9") == 1


def test_cases_do_change_something():
    """The shapes above must exercise the splice, not pass because nothing was ported."""
    changed = [name for name, text in CASES.items() if port_source(text.encode(), PortOptions(unsafe_fixes=True)).new]
    assert len(changed) >= len(CASES) - 2  # word_only_in_strings and class_header_relevant's handle() aside


def regions(text: str) -> list[tuple[int, int, bool]]:
    return [(r.start, r.end, bool(r.prefix)) for r in regions_of(text.encode(), ALL_RULES)]


def test_only_relevant_methods_reach_libcst():
    assert regions(CASES["method_in_class"]) == [(1, 1, False), (10, 11, True)]  # neighbours: one parse


def test_inside_functions_only_relevant_statements_reach_libcst():
    text = CASES["function_with_one_socket_statement"]
    assert regions(text) == [(1, 1, False), (7, 8, True)]
    # ...but a function a rule may keep whole (VS013: binds and connects, loopback around) stays whole.
    assert regions(text.replace("'vm'", "'localhost'")) == [(1, 1, False), (7, 8, True)]  # no bind
    pair = text.replace("'vm'", "'localhost'").replace("    total = 0\n", "    total = 0\n    srv = socket.create_server(('localhost', 0))\n")
    assert regions(pair) == [(1, 1, False), (3, 10, False)]


def test_a_class_header_reaches_libcst_without_its_members():
    """Bases (VS010 wraps server classes) are ported in the header alone, with a stand-in body; the
    members that need porting get regions of their own, and the rest of a big class stays out."""
    text = CASES["class_header_alone"]
    assert regions(text) == [(1, 1, False), (4, 9, False), (16, 16, True)]
    new = port_source(text.encode(), PortOptions()).new.decode()
    assert "    vsock_server_class(socketserver.TCPServer),\n):  # serves\n\n    # the body\n    '''Docstring.'''" in new
    assert "pass" not in new


def test_class_level_statements_reach_libcst_without_the_class():
    assert regions(CASES["class_level_statements"]) == [(1, 1, False), (6, 7, True), (12, 12, True)]


def test_strings_and_comments_do_not_make_code_relevant():
    assert regions(CASES["word_only_in_strings"]) == []


def test_standins_make_their_users_relevant():
    assert regions(CASES["alias_standing_in"]) == [(1, 1, False), (4, 4, True)]
    assert (7, 7, True) in regions(CASES["constant_standing_in"])


def test_lone_carriage_returns_are_kept():
    """Old-Mac line ends: lines are counted as ast and libcst count them, and only the ported
    expressions change, so every other byte stays."""
    data = b"import socket\rs = socket.socket()\r\nt = 1\r"
    for focused in (True, False):
        new = port_source(data, PortOptions(), focused=focused).new
        assert new == (b"import socket\rfrom vsock_runtime import VMCISock_GetAFValue, vsock_socket\r"
                       b"afVMCI = VMCISock_GetAFValue()\rs = vsock_socket(afVMCI)\r\nt = 1\r")


def test_what_libcst_would_reformat_elsewhere_stays_as_written():
    """libcst prints `except E :` as `except E:`. Edits replace only the ported nodes' own text, so the
    odd spacing survives, before or after the edit, focused or whole."""
    for data in (b"import socket\ntry:\n    s = socket.socket()\nexcept OSError :\n    pass\n",
                 b"import socket\ntry:\n    pass\nexcept OSError :\n    s = socket.socket()\n"):
        for focused in (True, False):
            new = port_source(data, PortOptions(), focused=focused).new
            assert b"except OSError :\n" in new and b"s = vsock_socket(afVMCI)" in new


def test_an_edit_libcst_cannot_place_is_refused():
    """Where libcst's text and the file cannot be lined up (different line counts), offsets are
    unknown (-1), and a fix there is refused as unfaithful instead of landing in the wrong place."""
    moved = spans._OffsetMap("a = f(x)\n", "a = f(x)\n\n")
    assert moved(4) == -1
    shifted = spans._OffsetMap("try:\n    pass\nexcept E:\n    f(x)\n", "try:\n    pass\nexcept E :\n    f(x)\n")
    assert shifted(len("try:\n    pass\nexcept E:\n    ")) == len("try:\n    pass\nexcept E :\n    ")


def test_blanking_strings_and_comments():
    source = b"a = '''x # y''' + \"it's\" + r'\\'' # socket\nb = \"\"\"one\n\\\"\"\" two\"\"\"; c = 'q\\\n'\n"
    assert code_only(source) == b"a =  +  +  \nb = \n; c = \n\n"


def test_blanking_a_huge_string_literal_stays_small():
    """Generated data modules hold multi-megabyte literals (moto ships a 4 MB one). The first regex kept
    backtracking state per character: +480 MiB on this one. Possessive loops (Python 3.11+) keep none;
    older Pythons keep some per escape (+160 MiB here). Measured in a fresh process."""
    script = (
        "import resource; from vsockport.source import code_only\n"
        "data = b'DATA = \"\"\"\\n' + b'{\"socket\": \"a \\\\\\\\\"quoted\\\\\\\\\" \\'word\\'\"},\\n' * 120_000 + b'\"\"\"\\n'\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "assert code_only(data) == b'DATA = ' + b'\\n' * 120_002, code_only(data)[:80]\n"
        "print(len(data), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    size, growth_kib = map(int, out.split())
    assert size > 4_000_000
    limit_mib = 32 if sys.version_info >= (3, 11) else 256
    assert growth_kib < limit_mib * 1024, f"blanking a {size}-byte literal grew the process by {growth_kib} KiB"


def test_expression_text_is_read_as_ast_reads_it():
    """The text of an expression (a module constant's value), read from the module's line index, is
    what ast.get_source_segment gives: multi-byte characters, CRLF and CR line breaks, multi-line
    expressions, a form feed inside a line."""
    import ast

    from vsockport.pipeline import _segment
    from vsockport.source import Source

    text = "x = (1,\n  'é', 3)\r\ny = 'ü' + \"a\"\rz = f(\r\n  2,\n\x0c  [3])\nw = '€€' ; v = ('a',\n'b')\n"
    source = Source(text.encode())
    expressions = [node for node in ast.walk(ast.parse(source.data)) if isinstance(node, ast.expr)]
    assert len(expressions) > 15
    for node in expressions:
        assert _segment(source, node) == ast.get_source_segment(source.text, node), ast.dump(node)


def test_a_decorated_function_that_binds_an_imported_name_reaches_libcst_whole():
    """Python's symbol tables name the `def` line; the region starts at the decorator."""
    text = "import socket\n@dec\ndef f(socket, a):\n    x = 1\n    return socket.socket()\ns = socket.socket()\n"
    assert regions(text) == [(1, 1, False), (2, 5, False), (6, 6, False)]
    new = port_source(text.encode(), PortOptions()).new.decode()
    assert "    return socket.socket()\n" in new and "s = vsock_socket(afVMCI)\n" in new


def test_code_the_compiler_refuses_is_still_read_by_scope():
    """A duplicate parameter passes `ast.parse` but not the symbol tables: every function then counts
    as binding every name, so the parameter is still not taken for the module."""
    text = "import socket\ndef f(socket, a, a):\n    return socket.socket()\ns = socket.socket()\n"
    new = port_source(text.encode(), PortOptions()).new.decode()
    assert "    return socket.socket()\n" in new and "s = vsock_socket(afVMCI)\n" in new


def test_functions_that_bind_an_imported_name_are_found_in_every_top_level_statement():
    """The symbol tables are read one relevant top-level statement at a time: a method's `def` line
    deep in a module is still the line the planner asks about, and a statement the compiler refuses
    (a duplicate parameter) makes only its own functions count as shadowing."""
    text = ("import socket\nx = 1\n\n\nclass C:\n    def ok(self):\n        return socket.socket()\n\n"
            "    @property\n    def m(self, socket=None):\n        return socket.socket()\n"
            "def g(socket, socket):\n    return socket.socket()\n"
            "def h(a):\n    return socket.socket()\n")
    new = port_source(text.encode(), PortOptions()).new.decode()
    assert new.count("return vsock_socket(afVMCI)\n") == 2  # ok() and h()
    assert "    def m(self, socket=None):\n        return socket.socket()\n" in new
    assert "def g(socket, socket):\n    return socket.socket()\n" in new


def test_a_module_fetched_by_name_is_ported_as_an_imported_one():
    """`__import__("socket")`, `importlib.import_module("socket")` and `sys.modules["socket"]` are
    imports by another spelling: what they give is ported as `import socket` would be, safely. Any other
    call given a networking module's name alone (eventlet's `patcher.original("socket")`) is taken for
    the module as a guess: a fix resting on it is unsafe and says so, unless it only wraps the class in
    a runtime adapter that checks what it gets (vsock_socket_type). Before, all of these stayed on
    TCP/IP with no finding."""
    imports = (b"import importlib, sys\nsock = __import__('socket')\nlib = importlib.import_module('socket')\n"
               b"a = sock.socket(sock.AF_INET)\nb = lib.create_connection(('10.0.0.1', 80))\n"
               b"c = sys.modules['socket'].socket()\nd = __import__('socket').create_connection(addr)\n")
    result = port_source(imports, PortOptions())
    assert [(f.code, f.line) for f in result.findings if f.state.value == "fixable"] == [
        ("VS001", 4), ("VS005", 5), ("VS001", 6), ("VS005", 7)]
    ported = result.new.decode()
    for line in ("a = vsock_socket(afVMCI)\n", "c = vsock_socket(afVMCI)\n", "d = create_vsock_connection(addr)\n"):
        assert line in ported
    assert port_source(result.new, PortOptions()).new is None  # a second run changes nothing
    guessed = (b"from eventlet import patcher\nmod = patcher.original('socket')\n_original = patcher.original('socket').socket\n"
               b"def connect(addr):\n    return mod.create_connection(addr)\n")
    held = port_source(guessed, PortOptions())
    assert [(f.code, f.state.value) for f in held.findings] == [("VS001", "fixable"), ("VS005", "held-back")]
    assert "`mod` taken for the module: it comes from a call that fetches it by name" in held.findings[1].message
    assert "_original = vsock_socket_type(patcher.original('socket').socket)\n" in held.new.decode()
    # A name that only looks like the import (a parameter) is a guess too; a value with no socket API is none.
    shadowed = b"def f(__import__):\n    return __import__('socket').create_connection(addr)\n"
    assert [f.state.value for f in port_source(shadowed, PortOptions()).findings] == ["held-back"]
    unrelated = b"import logging\nlog = logging.getLogger('socket')\nlog.socket = 1\nlog.info('socket')\n"
    assert port_source(unrelated, PortOptions()).findings == ()


def test_a_name_that_alternative_imports_bind_is_ported_as_an_unsafe_fix():
    """`try: from siosocks.io.asyncio import open_connection / except ImportError: from asyncio import
    open_connection` (aioftp): the rules take the standard-library meaning, but siosocks' function, which
    takes a proxy, runs wherever it is installed; replaced by vsock_open_connection, its proxy arguments
    were a TypeError at every connect. Such fixes are unsafe and say so (held back by default); the same
    name from Python 2 and 3 spellings of one module, or from a standard-library import tried first
    (which always succeeds), is no alternative."""
    text = (b"import asyncio\ntry:\n    from siosocks.io.asyncio import open_connection\nexcept ImportError:\n"
            b"    from asyncio import open_connection\n\n\nasync def connect(host, port, **socks):\n"
            b"    return await open_connection(host, port, **socks)\n\n\nasync def plain(host, port):\n"
            b"    return await asyncio.open_connection(host, port)\n")
    result = port_source(text, PortOptions())
    assert [(f.code, f.line, f.state.value) for f in result.findings] == [("VS009", 9, "held-back"), ("VS009", 13, "fixable")]
    assert ("`open_connection` taken for asyncio.open_connection: it is siosocks.io.asyncio.open_connection where "
            "that import is the one that runs") in result.findings[0].message
    ported = result.new.decode()
    assert "return await open_connection(host, port, **socks)\n" in ported
    assert "return await vsock_open_connection(host, port)\n" in ported
    unsafe = port_source(text, PortOptions(unsafe_fixes=True)).new.decode()
    assert "return await vsock_open_connection(host, port, **socks)\n" in unsafe
    compatible = (b"try:\n    import SocketServer as socketserver\nexcept ImportError:\n    import socketserver\n"
                  b"server = socketserver.TCPServer(('', 8000), Handler)\n")
    assert [f.state.value for f in port_source(compatible, PortOptions()).findings] == ["fixable"]
    tried_first = (b"try:\n    import asyncio\nexcept ImportError:\n    import trollius as asyncio\n"
                   b"async def main():\n    await asyncio.open_connection('db', 5432)\n")
    assert [(f.code, f.state.value) for f in port_source(tried_first, PortOptions()).findings if f.code == "VS009"] == [
        ("VS009", "fixable")]


def test_a_module_named_only_through_a_star_import_is_ported_as_an_unsafe_fix():
    """`from stomp.utils import *` hands over stomp.utils' own `import socket`, which vsockport cannot
    read: an unbound `socket` is taken for the module, and the fixes resting on that guess are unsafe
    (reported, held back by default), never silent. A name the module binds itself is not guessed."""
    text = b"from mypkg.utils import *\n\n\ndef connect(addr):\n    return socket.create_connection(addr, 5)\n"
    held = port_source(text, PortOptions())
    assert held.new is None
    [finding] = held.findings
    assert (finding.code, finding.state.value, finding.line) == ("VS005", "held-back", 5)
    assert "`socket` taken for the module: it comes from a star import" in finding.message
    ported = port_source(text, PortOptions(unsafe_fixes=True)).new.decode()
    assert "    return create_vsock_connection(addr, 5)\n" in ported
    bound = b"from mypkg.utils import *\n\n\ndef connect(socket, addr):\n    return socket.create_connection(addr, 5)\n"
    assert port_source(bound, PortOptions(unsafe_fixes=True)).findings == ()
    # An attribute spelled like the module (`s.socket`, `conn.socket`) rests on no guess: its fix stays safe.
    attribute = (b"from mypkg.utils import *\nimport socket as s\n\n\ndef f(conn):\n"
                 b"    conn.socket = s.socket(s.AF_INET, s.SOCK_STREAM)\n")
    assert [(f.code, f.state.value) for f in port_source(attribute, PortOptions()).findings] == [("VS001", "fixable")]
    # A fix that only wraps the guessed module's class in a runtime adapter that checks what it gets
    # holds whatever the guess gets wrong: it stays safe.
    kept = b"from mypkg.utils import *\n\n_original_socket = socket.socket\n"
    [wrapped] = port_source(kept, PortOptions()).findings
    assert wrapped.state.value == "fixable" and "taken for the module" not in wrapped.message
    assert b"_original_socket = vsock_socket_type(socket.socket)\n" in port_source(kept, PortOptions()).new
    expandable = b"from socket import *\n\n\ndef connect(addr):\n    return create_connection(addr, 5)\n"
    assert [f.state.value for f in port_source(expandable, PortOptions()).findings] == ["fixable"]
