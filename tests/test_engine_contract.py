"""The engine's contract with rules: order does not matter, fixes are data that the pipeline filters and
applies in a fix loop, and every rule keeps to the words it declares."""

from __future__ import annotations

import ast
import random
import subprocess
import sys
import sysconfig
from pathlib import Path

import libcst as cst
import pytest

from vsockport.pipeline import InternalError, port_source
from vsockport.results import State
from vsockport.rules import ALL_RULES, PortOptions
from vsockport.rules.api import Example, Rule
from vsockport.rules.names import ModuleNames
from vsockport.runtime.contract import RUNTIME_SOURCE
from vsockport.source import code_only

ROOT = Path(__file__).parent
GOLDEN = sorted(p for p in (ROOT / "fixtures" / "golden").glob("*.py") if not p.name.endswith(".expected.py"))
EXAMPLES = [ex.before for rule in ALL_RULES for ex in rule.examples]
STDLIB = Path(sysconfig.get_paths()["stdlib"])
# A corpus sample: standard-library modules that open, serve and configure sockets.
CORPUS = [STDLIB / name for name in ("socketserver.py", "http/server.py", "http/client.py", "smtplib.py", "ftplib.py",
                                     "asyncio/base_events.py", "asyncio/selector_events.py", "asyncio/streams.py",
                                     "xmlrpc/server.py", "multiprocessing/connection.py", "imaplib.py", "socket.py")]


def orders():
    shuffled = list(ALL_RULES)
    random.Random(13).shuffle(shuffled)
    return [tuple(reversed(ALL_RULES)), tuple(shuffled)]


@pytest.mark.parametrize("data", [p.read_bytes() for p in GOLDEN] + [e.encode() for e in EXAMPLES]
                         + [p.read_bytes() for p in CORPUS],
                         ids=[p.stem for p in GOLDEN] + [f"example-{i}" for i in range(len(EXAMPLES))]
                         + [p.stem for p in CORPUS])
def test_rule_order_does_not_matter(data):
    options = PortOptions(unsafe_fixes=True)
    expected = port_source(data, options, ALL_RULES)
    for order in orders():
        assert port_source(data, options, order) == expected


def test_the_corpus_sample_ports_something():
    changed = [p.name for p in CORPUS if port_source(p.read_bytes(), PortOptions(unsafe_fixes=True)).new is not None]
    assert len(changed) >= len(CORPUS) - 2


def _enclosing_statement(tree: ast.Module, line: int) -> ast.stmt | None:
    best = None
    for node in ast.walk(tree):
        if isinstance(node, ast.stmt):
            start = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
            if start <= line <= (node.end_lineno or node.lineno):
                if best is None or (node.end_lineno - start) <= (best.end_lineno - best.lineno):
                    best = node
    return best


def _changed_lines(before: str, after: str) -> set[int]:
    import difflib

    old, new = before.splitlines(), after.splitlines()
    lines = set()
    for tag, i1, i2, _, _ in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        if tag in ("replace", "delete"):
            lines.update(range(i1 + 1, i2 + 1))
    return lines


@pytest.mark.parametrize("rule, example", [(r, e) for r in ALL_RULES for e in r.examples if r.code != "VS100"],
                         ids=lambda value: value.code if isinstance(value, type) else "")
def test_every_changed_or_reported_statement_holds_a_rule_word(rule, example):
    """The planner hands libcst only statements with a rule's words (or a local alias of one, or a
    string word inside a string): a rule that acted elsewhere would silently act only when porting
    whole modules. (VS100 acts on comments, judged by the pipeline.)"""
    result = port_source(example.before.encode(), example.port_options(unsafe_fixes=True), [rule], focused=False)
    after = result.new.decode() if result.new is not None else example.before
    tree = ast.parse(example.before)
    words = list(rule.words_and_triggers())
    # As the planner does: a local alias for a word stands in for it (`import socket as s`).
    names = ModuleNames.from_ast(tree, lambda node: cst.Name("unknown"), data=example.before.encode())
    words += [local.encode() for local, meanings in names.bindings.items()
              if any(w.decode() in meaning for meaning in meanings for w in rule.words_and_triggers())]
    lines = _changed_lines(example.before, after) | {f.line for f in result.findings}
    for line in lines:
        stmt = _enclosing_statement(tree, line)
        assert stmt is not None, line
        text = ast.get_source_segment(example.before, stmt, padded=True).encode()
        # As the planner does: words in code, string words (a class named in configuration) in strings too.
        assert any(w in code_only(text) for w in words) or any(w in text for w in rule.string_words), \
            f"{rule.code}: line {line} holds none of {words}"


# -- the fix loop, with rules written for the test ----------------------------------------------------

class OuterCall(Rule):
    """Test rule: `f(...)` -> `F(...)`, replacing the whole call."""

    code, name, triggers = "VT001", "outer-call", (b"f(",)

    def visit_Call(self, node: cst.Call) -> None:
        if isinstance(node.func, cst.Name) and node.func.value == "f":
            self.report(node, "f -> F", replacement=node.with_changes(func=cst.Name("F")))


class InnerCall(Rule):
    """Test rule: `g(...)` -> `G(...)`, inside the call the other rule replaces."""

    code, name, triggers = "VT002", "inner-call", (b"g(",)

    def visit_Call(self, node: cst.Call) -> None:
        if isinstance(node.func, cst.Name) and node.func.value == "g":
            self.report(node, "g -> G", replacement=node.with_changes(func=cst.Name("G")))


class NeverDone(Rule):
    """Test rule: wraps `x` in parentheses, and finds it again every time."""

    code, name, triggers = "VT003", "never-done", (b"x",)

    def visit_Name(self, node: cst.Name) -> None:
        if node.value == "x":
            self.report(node, "more parentheses", replacement=node.with_changes(
                lpar=[cst.LeftParen(), *node.lpar], rpar=[*node.rpar, cst.RightParen()]))


def test_overlapping_fixes_apply_in_later_passes_and_both_are_reported():
    """The outer fix applies first; the inner one, held for the overlap, applies in the next pass."""
    for focused in (True, False):
        result = port_source(b"y = f(g(1))\n", PortOptions(), [InnerCall, OuterCall], focused=focused)
        assert result.new == b"y = F(G(1))\n"
        assert [(f.code, f.column, f.state) for f in result.findings] == [("VT001", 5, State.FIXABLE),
                                                                          ("VT002", 7, State.FIXABLE)]


def test_a_fix_that_never_converges_is_an_internal_error():
    with pytest.raises(InternalError, match="do not converge"):
        port_source(b"y = x\n", PortOptions(), [NeverDone])


def test_rules_are_pure_reporters():
    """A rule instance only collects reports: running one twice over the same tree gives the same."""
    from vsockport.runner import run_rules as _run

    data = (GOLDEN[0]).read_bytes()
    tree = ast.parse(data)
    names = ModuleNames.from_ast(tree, lambda node: cst.Name("unknown"), data=data)
    module = cst.parse_module(data)
    first = _run(module, ALL_RULES, names, PortOptions())
    second = _run(module, ALL_RULES, names, PortOptions())
    assert first and [(r.code, r.node, r.message) for r in first] == [(r.code, r.node, r.message) for r in second]
    assert module.code == data.decode()  # nothing was changed in place


def test_the_contract_is_what_the_runtime_itself_says():
    """The tool reads the runtime's exports, version, host spellings and local-pair patterns from its
    source (vsockport/runtime/contract.py): the same values the runtime has when a program imports it."""
    import importlib.util

    from vsockport.runtime.contract import RUNTIME_SOURCE, contract

    spec = importlib.util.spec_from_file_location("vsock_runtime_contract_check", RUNTIME_SOURCE)
    runtime = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runtime)
    rules = contract()
    assert rules.exports == set(runtime.__all__) and rules.version == runtime.VSOCKPORT_RUNTIME_VERSION
    assert (rules.loopback_hosts, rules.wildcard_hosts) == (runtime._LOOPBACK_HOSTS, runtime._WILDCARD_HOSTS)
    assert all(hasattr(runtime, name) for name in rules.exports)
    # VS013's test is the runtime's own function, compiled from the same lines.
    assert rules.local_pair.__code__.co_code == runtime.local_pair.__code__.co_code
    for source, expected in [
        ("def p():\n    s.bind(('127.0.0.1', 0))\n    c.connect(('127.0.0.1', s.getsockname()[1]))\n", True),
        ("def p():\n    s.bind((HOST, 0))\n    c.connect((HOST, 80))\n", False),  # HOST unknown...
        ("def p(host='127.0.0.1'):\n    s.bind((host, 0))\n    a, b = s.getsockname()[:2]\n    c.connect((a, b))\n", True),
        ("def p(ip='127.0.0.1'):\n    s.bind((ip, 0))\n    stream.connect(addr)\n", False),  # tornado's _create_stream
    ]:
        assert rules.local_pair(source) is runtime.local_pair(source) is expected, source
    assert rules.local_pair("def p():\n    s.bind((HOST, 0))\n    c.connect((HOST, 80))\n", ("HOST",))  # ...known


def test_a_statement_line_is_no_replacement():
    rule = OuterCall(None, PortOptions())
    with pytest.raises(TypeError):
        rule.report(cst.Name("a"), "no", replacement=cst.parse_statement("pass\n"))


def test_example_type_is_exported():
    assert Example("x").after is None


_CLASHING = (
    "import socket\nfrom socket import getaddrinfo\n\n\n"
    "def vsock_socket(kind):\n    return 'mine: ' + kind\n\n\n"
    "def serve(VMADDR_CID_LOCAL=None):\n"
    "    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n"
    "    s.connect(('localhost', 80))\n"
    "    return s, getaddrinfo('localhost', 80), VMADDR_CID_LOCAL\n"
)


def test_runtime_names_the_module_binds_itself_are_imported_under_an_alias(tmp_path):
    """ruff's importer returns the name actually bound; so does the header: a module's own
    `vsock_socket` (a function) and `VMADDR_CID_LOCAL` (a parameter) keep their meaning, and the
    port's calls reach the runtime's through aliases. `from socket import getaddrinfo` is not rebound."""
    new = port_source(_CLASHING.encode(), PortOptions()).new.decode()
    assert "    vsock_socket as vsock_socket_vsock,\n" in new
    assert "    VMADDR_CID_LOCAL as VMADDR_CID_LOCAL_vsock,\n" in new
    assert "s = vsock_socket_vsock(afVMCI, socket.SOCK_STREAM)" in new
    assert "s.connect((VMADDR_CID_LOCAL_vsock, 80))" in new
    assert "vsock_getaddrinfo('localhost', 80), VMADDR_CID_LOCAL\n" in new  # the parameter, as written
    header = new.split("def")[0]
    assert "from socket import getaddrinfo\n" in header and "    getaddrinfo," not in header
    (tmp_path / "clashing.py").write_text(new)
    (tmp_path / "vsock_runtime.py").write_bytes(RUNTIME_SOURCE.read_bytes())
    probe = ("import clashing, vsock_runtime, socket\n"
             "assert clashing.vsock_socket('k') == 'mine: k'\n"
             "assert clashing.vsock_socket_vsock is vsock_runtime.vsock_socket\n"
             "assert clashing.VMADDR_CID_LOCAL_vsock == vsock_runtime.VMADDR_CID_LOCAL\n"
             "assert clashing.getaddrinfo is socket.getaddrinfo\nprint('ok')\n")
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.stdout == "ok\n", done.stderr


def test_a_later_port_uses_the_aliases_an_earlier_one_imported():
    once = port_source(_CLASHING.encode(), PortOptions()).new.decode()
    grown = once + "\n\ndef more():\n    t = socket.socket()\n    t.connect(('localhost', 81))\n    return t\n"
    again = port_source(grown.encode(), PortOptions()).new.decode()
    assert again == once + "\n\ndef more():\n    t = vsock_socket_vsock(afVMCI)\n    t.connect((VMADDR_CID_LOCAL_vsock, 81))\n    return t\n"
