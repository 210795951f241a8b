"""What a name means in one module: the names its imports bind and its module-level constants.

Built once per module from Python's own `ast`, in one walk, and shared by every rule. Imports count
wherever they are: at the top, under `try`/`except ImportError`, under `if sys.version_info ...`, or
inside functions. A name bound more than once (`try: import socketserver / except ImportError: import
SocketServer as socketserver`) keeps every meaning: Python 2 module names are read as their Python 3
successors, and a standard-library meaning is preferred over a third-party one (`gevent.socket` or
`socket`: the rules port `socket`). The table is flat, not scope-aware, on purpose: imports and
constants are module-wide in the programs vsockport ports, and one table keeps the pass cheap.
"""

from __future__ import annotations

import _symtable
import ast
import importlib
import re
import sys
from functools import lru_cache
from typing import Callable, Iterator, Mapping, NamedTuple

import libcst as cst

# Modules whose star-imports are expanded; anything else star-imported is unknown to us.
_STAR_EXPANDABLE = ("socket", "ctypes", "socketserver")
# Modules the rules act on, as a star import of another module of a project may hand them over.
_STAR_IMPORTED_MODULES = frozenset(["socket", "socketserver", "ssl", "asyncio", "http", "urllib", "xmlrpc", "smtplib",
                                    "ftplib", "poplib", "imaplib", "nntplib", "telnetlib", "ctypes", "select", "selectors"])

# Python 2 names of modules the rules know, read as their Python 3 successors.
PY2_MODULES = {
    "SocketServer": "socketserver",
    "BaseHTTPServer": "http.server",
    "SimpleHTTPServer": "http.server",
    "CGIHTTPServer": "http.server",
    "httplib": "http.client",
    "xmlrpclib": "xmlrpc.client",
    "SimpleXMLRPCServer": "xmlrpc.server",
    "DocXMLRPCServer": "xmlrpc.server",
    "urllib2": "urllib.request",
}
# six.moves (at any depth: urllib3.packages.six.moves) names the standard library's modules its own way.
SIX_MOVES = {
    "socketserver": "socketserver", "BaseHTTPServer": "http.server", "SimpleHTTPServer": "http.server",
    "http_client": "http.client", "xmlrpc_client": "xmlrpc.client", "xmlrpc_server": "xmlrpc.server",
    "urllib": "urllib", "urllib_request": "urllib.request",
}
# Names a compatibility module re-exports (`from .compat import socketserver, HTTPServer`): modules by
# any spelling, and the server and client classes vsockport adapts. Only modules, and classes whose
# runtime adapter gives back unknown classes unchanged: a function re-exported as `urlopen` may be
# anything, and is not guessed at.
REEXPORTED = {
    **{name: PY2_MODULES.get(name, SIX_MOVES.get(name, name)) for name in (
        "socketserver", "SocketServer", "httplib", "http_client", "BaseHTTPServer", "SimpleHTTPServer", "xmlrpclib",
        "xmlrpc_client", "xmlrpc_server")},
    "TCPServer": "socketserver.TCPServer", "ThreadingTCPServer": "socketserver.ThreadingTCPServer",
    "ForkingTCPServer": "socketserver.ForkingTCPServer", "HTTPServer": "http.server.HTTPServer",
    "ThreadingHTTPServer": "http.server.ThreadingHTTPServer", "SimpleXMLRPCServer": "xmlrpc.server.SimpleXMLRPCServer",
    "WSGIServer": "wsgiref.simple_server.WSGIServer", "HTTPConnection": "http.client.HTTPConnection",
    "HTTPSConnection": "http.client.HTTPSConnection", "ServerProxy": "xmlrpc.client.ServerProxy",
}
# Calls that are an import: `__import__("socket")`, `importlib.import_module("socket")`. Any other call
# given a networking module's name alone (`patcher.original("socket")`, eventlet's) is taken for that
# module as a guess: the fixes that rest on it are unsafe, unless they only wrap it in a runtime adapter
# that checks what it gets at run time (see runner.run_rules).
_IMPORTERS = frozenset(["__import__", "importlib.import_module", "importlib.__import__", "builtins.__import__"])
_FETCHED_MODULES = frozenset(["socket", "_socket", "socketserver", "ssl", "asyncio", "select", "selectors", "asyncore",
                              "asynchat", "http.client", "http.server", "xmlrpc.client", "xmlrpc.server", "urllib.request",
                              "smtplib", "ftplib", "poplib", "imaplib", "nntplib", "telnetlib", "wsgiref.simple_server",
                              "smtpd"])
_FETCH_CALL = re.compile(rb"\(\s*[\'\"](?:%s)[\'\"]\s*\)" % b"|".join(re.escape(m.encode()) for m in sorted(_FETCHED_MODULES)))
_STDLIB = frozenset(getattr(sys, "stdlib_module_names", ())) | {"socket", "socketserver", "http", "xmlrpc",
                                                                  "asyncio", "ctypes", "ssl", "wsgiref", "urllib"}


@lru_cache(maxsize=None)
def _public_names(module_name: str) -> frozenset[str]:
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return frozenset()
    names = getattr(module, "__all__", None) or [n for n in dir(module) if not n.startswith("_")]
    return frozenset(names)


def dotted_name(node: cst.BaseExpression) -> str | None:
    """`a.b.c` as a string, or None when the expression is not a plain dotted name."""
    parts = []
    while isinstance(node, cst.Attribute):
        parts.append(node.attr.value)
        node = node.value
    if not isinstance(node, cst.Name):
        return None
    parts.append(node.value)
    return ".".join(reversed(parts))


def is_datagram_type(qualified: str | None) -> bool:
    """Whether a qualified name is SOCK_DGRAM: socket's, or a green socket module's (eventlet.green.socket).
    The one definition behind every datagram check (VS001's constructor, the module's datagram receivers)."""
    return qualified is not None and qualified.rpartition(".")[2] == "SOCK_DGRAM"


def _modern(qualified: str) -> str:
    """A qualified name as the rules know it: Python 2 modules and six.moves read as their Python 3
    successors, and a compat module's re-exports of known modules and classes as the originals."""
    head, dot, rest = qualified.partition(".")
    if head in PY2_MODULES:
        return PY2_MODULES[head] + dot + rest
    parts = qualified.split(".")
    if "moves" in parts:
        after = parts[parts.index("moves") + 1 :]
        for size in (2, 1):
            key = "_".join(after[:size])
            if len(after) >= size and key in SIX_MOVES:
                return ".".join([SIX_MOVES[key], *after[size:]])
    module, _, name = qualified.rpartition(".")
    if name in REEXPORTED and "compat" in module:  # a package's own `.connection.HTTPConnection` is its own class
        return REEXPORTED[name]
    return qualified


class ModuleNames:
    """Import table (local name -> qualified names) and single-assignment module constants."""

    def __init__(self, bindings: dict[str, tuple[str, ...]], star_modules: tuple[str, ...],
                 constant_values: dict[str, ast.expr], expression_at: Callable[[ast.expr], cst.BaseExpression],
                 runtime_module: str = "vsock_runtime") -> None:
        self.bindings = bindings
        self.aliases = {name: _preferred(meanings) for name, meanings in bindings.items()}
        self._has_alternatives: bool | None = None
        self.star_modules = star_modules
        self.constant_values = constant_values
        self._expression_at = expression_at
        self._constants: dict[str, cst.BaseExpression] = {}
        # Facts a rule derives from the whole module (LocalPair's loopback constants), computed once
        # per module rather than once per function: shared by the tables with_runtime_names makes.
        self.module_facts: dict[str, object] = {}
        self.runtime_module = runtime_module.rpartition(".")[2]
        self.tree: ast.Module | None = None
        self._called: frozenset[str] | None = None
        self._identifiers: frozenset[str] | None = None
        self.data: bytes = b""  # the module's bytes, for Python's symbol tables
        self._scopes: ScopeFacts | None = None
        self._star_guesses: frozenset[str] | None = None
        self._receivers: tuple[frozenset[str], frozenset[str]] | None = None
        self.fetch_guesses: dict[str, str] = {}  # local name -> the networking module a call fetched by name, guessed

    @classmethod
    def from_ast(cls, tree: ast.Module, expression_at: Callable[[ast.expr], cst.BaseExpression],
                 runtime_module: str = "vsock_runtime", *, data: bytes) -> "ModuleNames":
        """The table of `tree`, parsed from `data`. Constant values become libcst nodes through
        `expression_at`, and only when a rule asks for one."""
        bindings: dict[str, list[str]] = {}
        stars: list[str] = []
        values: dict[str, ast.expr] = {}
        assignments: dict[str, int] = {}
        fetches: list[tuple[str, _Fetch]] = []  # `sock = __import__("socket")`: read once the imports are known

        def bind(local: str, qualified: str) -> None:
            meanings = bindings.setdefault(local, [])
            if _modern(qualified) not in meanings:
                meanings.append(_modern(qualified))

        for stmt, depth in _statements(tree.body, 0):
            if isinstance(stmt, ast.Import):
                for alias in stmt.names:
                    if alias.asname is not None:
                        bind(alias.asname, alias.name)
                    else:
                        top = alias.name.split(".")[0]
                        bind(top, top)
            elif isinstance(stmt, ast.ImportFrom):
                module = "." * stmt.level + (stmt.module or "")
                if stmt.names[0].name == "*":
                    stars.append(_modern(module))
                    continue
                for alias in stmt.names:
                    bind(alias.asname or alias.name, f"{module}.{alias.name}")
            elif isinstance(stmt, ast.Assign):
                for target in stmt.targets:
                    if isinstance(target, ast.Name):
                        assignments[target.id] = assignments.get(target.id, 0) + 1
                        fetch = _Fetch.of_ast(stmt.value) if isinstance(stmt.value, ast.Call) else None
                        if fetch is not None and fetch.names_a_module():
                            fetches.append((target.id, fetch))
                        if depth == 0 and len(stmt.targets) == 1:
                            values[target.id] = stmt.value
            elif isinstance(stmt, (ast.AugAssign, ast.AnnAssign)) and isinstance(stmt.target, ast.Name):
                assignments[stmt.target.id] = 2  # never a constant
        constants = {k: v for k, v in values.items() if assignments.get(k) == 1}
        table = cls({k: tuple(v) for k, v in bindings.items()}, tuple(stars), constants, expression_at, runtime_module)
        table.tree, table.data = tree, data
        for local, fetch in fetches:
            fetched = table._fetched(fetch)
            if fetched is None:
                continue
            module, certain = fetched
            if certain:
                bind(local, module)
            else:
                table.fetch_guesses[local] = module
        if fetches:
            table.bindings = {k: tuple(v) for k, v in bindings.items()}
            table.aliases = {name: _preferred(meanings) for name, meanings in table.bindings.items()}
        return table

    def with_runtime_names(self, names: Mapping[str, str], runtime_import: str) -> "ModuleNames":
        """This table as it will be once `from <runtime_import> import <name> as <bound>` is added for
        each bound name -> runtime name in `names`: what later fix passes see, so that code a fix
        produced is known to be ported already."""
        bindings = dict(self.bindings)
        for bound, name in names.items():
            bindings[bound] = (f"{runtime_import}.{name}",)
        table = ModuleNames(bindings, self.star_modules, self.constant_values, self._expression_at, self.runtime_module)
        table.tree, table.data, table._called, table._identifiers = self.tree, self.data, self._called, self._identifiers
        table._scopes = self._scopes
        table._star_guesses = self._star_guesses
        table._receivers = self._receivers
        table.fetch_guesses = self.fetch_guesses
        table._constants = self._constants  # the same constants: read each from the text once per module
        table.module_facts = self.module_facts
        return table

    def scope_facts(self) -> ScopeFacts:
        if self._scopes is None:
            self._scopes = scope_facts(self.data, self.tree, frozenset(self.bindings))
        return self._scopes

    def datagram_receivers(self) -> frozenset[str]:
        """The code of every target a datagram socket is assigned to (`u = socket.socket(AF_INET,
        SOCK_DGRAM)`, `with socket.socket(..., SOCK_DGRAM) as u`, `self.sock = ...`): their addresses stay IP."""
        return self._socket_receivers()[0]

    def other_socket_receivers(self) -> frozenset[str]:
        """The code of every target assigned a socket made by another module's socket class
        (`s = green.socket.socket(AF_INET, ...)`, eventlet's): the port does not make it, so it may stay
        on IP, and its addresses are left as written (a vsock socket's bind() and connect() map them
        the same way at run time)."""
        return self._socket_receivers()[1]

    def _socket_receivers(self) -> tuple[frozenset[str], frozenset[str]]:
        """(datagram_receivers, other_socket_receivers), from one walk of the module."""
        if self._receivers is None:
            datagrams, others = set(), set()
            for node in ast.walk(self.tree) if self.tree is not None else ():
                if isinstance(node, ast.Assign):
                    pairs = [(t, node.value) for t in node.targets]
                elif isinstance(node, ast.withitem) and node.optional_vars is not None:
                    pairs = [(node.optional_vars, node.context_expr)]
                else:
                    continue
                for target, value in pairs:
                    func = _dotted(value.func) if isinstance(value, ast.Call) else None
                    if func is None:
                        continue
                    if self._makes_datagram_socket(value):
                        datagrams.add(ast.unparse(target))
                    elif func.rpartition(".")[2] in ("socket", "SocketType") and \
                            self.qualified_dotted(func) not in ("socket.socket", "socket.SocketType"):
                        others.add(ast.unparse(target))
            self._receivers = (frozenset(datagrams), frozenset(others))
        return self._receivers

    def _makes_datagram_socket(self, call: ast.Call) -> bool:
        """socket.socket(..., SOCK_DGRAM), or any call given SOCK_DGRAM among its arguments, at any depth: a
        green framework's class (`GreenSocket(AF_INET, SOCK_DGRAM)`) or a wrapper of a datagram socket
        (`GreenSocket(socket.socket(AF_INET, SOCK_DGRAM))`). Those stay on IP (vsock_socket() keeps a
        datagram socket there at run time too), so their addresses are left as written."""
        def is_datagram_type_node(node: ast.AST) -> bool:
            dotted = _dotted(node) if isinstance(node, (ast.Name, ast.Attribute)) else None
            return dotted is not None and dotted.endswith("SOCK_DGRAM") and is_datagram_type(self.qualified_dotted(dotted))

        for arg in [*call.args, *(k.value for k in call.keywords)]:
            for node in ast.walk(arg):
                if is_datagram_type_node(node):
                    return True
                if isinstance(node, ast.Name) and node.id in self.constant_values and any(
                        map(is_datagram_type_node, ast.walk(self.constant_values[node.id]))):  # `KIND = DGRAM if udp else STREAM`
                    return True
        return False

    def bound_anywhere(self) -> frozenset[str]:
        """Every name the module binds anywhere (definitions, parameters, assignments, imports, loop
        and `with` targets): a name the runtime import must not rebind."""
        return self.scope_facts().bound_anywhere

    def shadowing_lines(self, text: str | None = None, first_line: int = 1) -> frozenset[int]:
        """The `def` lines of functions that bind, as a local, a name the module imports: they reach
        libcst whole, so that what the name means inside them can be seen. With `text` (whole top-level
        statements starting at `first_line`), those in it: the compiler's pass then reads only them."""
        if text is None:
            return self.scope_facts().shadowing_lines
        return scope_facts(text, None, frozenset(self.bindings), first_line).shadowing_lines

    def mentions(self, words: re.Pattern[bytes]) -> bool:
        """Whether the module's bytes contain a match of `words` (a name it does not mention, it cannot bind)."""
        return words.search(self.data) is not None

    def identifiers(self) -> frozenset[str]:
        """Every name the module mentions in its code (Name ids and attribute names). Computed when asked."""
        if self._identifiers is None:
            found = set()
            for node in ast.walk(self.tree) if self.tree is not None else ():
                if isinstance(node, ast.Name):
                    found.add(node.id)
                elif isinstance(node, ast.Attribute):
                    found.add(node.attr)
            self._identifiers = frozenset(found)
        return self._identifiers

    def called_names(self) -> frozenset[str]:
        """The last names of everything the module calls anywhere (`bind` for `lib.bind(...)`): a
        module-wide fact for rules that see one region at a time. Computed when first asked."""
        if self._called is None:
            found = set()
            for node in ast.walk(self.tree) if self.tree is not None else ():
                if isinstance(node, ast.Call):
                    func = node.func
                    found.add(func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", ""))
            self._called = frozenset(found)
        return self._called

    # -- queries ----------------------------------------------------------------------------------
    def qualified(self, node: cst.BaseExpression) -> str | None:
        """`s.AF_INET` -> `socket.AF_INET` under `import socket as s`; None when unknown. A module fetched
        by name counts as imported: `__import__("socket").socket` -> `socket.socket`."""
        dotted = dotted_name(node)
        if dotted is not None:
            return self.qualified_dotted(dotted)
        if type(node) is not cst.Attribute:
            return None
        parts = []
        while type(node) is cst.Attribute:
            parts.append(node.attr.value)
            node = node.value
        module = self.fetched_module(node)
        return ".".join([module, *reversed(parts)]) if module is not None else None

    def fetched_module(self, node: cst.BaseExpression) -> str | None:
        """The module a call fetches by its name (`importlib.import_module("socket")`, or, guessed,
        `patcher.original("socket")`), or `sys.modules["socket"]`; None for anything else."""
        if type(node) is cst.Subscript:
            if dotted_name(node.value) is None or self.qualified(node.value) != "sys.modules" or len(node.slice) != 1:
                return None
            index = node.slice[0].slice
            name = index.value.evaluated_value if isinstance(index, cst.Index) and isinstance(index.value, cst.SimpleString) else None
            return name if isinstance(name, str) and name in _FETCHED_MODULES else None
        fetch = _Fetch.of_cst(node) if type(node) is cst.Call else None
        fetched = self._fetched(fetch) if fetch is not None else None
        return fetched[0] if fetched is not None else None

    def may_fetch_by_name(self) -> bool:
        """Whether the module may fetch a networking module with a call that is no import: a cheap test
        of its bytes, before any fix is checked for a guess."""
        return bool(self.fetch_guesses) or _FETCH_CALL.search(self.data) is not None

    def is_fetch_guess(self, node: cst.BaseExpression) -> bool:
        """Whether `node` is a name bound to, or a call of, a module fetched by a function that is not an import."""
        if type(node) is cst.Name:
            return node.value in self.fetch_guesses and node.value not in self.aliases
        fetch = _Fetch.of_cst(node) if type(node) is cst.Call else None
        fetched = self._fetched(fetch) if fetch is not None else None
        return fetched is not None and not fetched[1]

    def _fetched(self, fetch: _Fetch) -> tuple[str, bool] | None:
        """(module, whether the call is an import) for a call that fetches a module by its name."""
        if fetch.func is None or not fetch.names_a_module():
            return None
        head = fetch.func.partition(".")[0]
        qualified = self.qualified_dotted(fetch.func) if head in self.aliases else fetch.func
        if qualified in _IMPORTERS and (head in self.aliases or head not in self.bound_anywhere()):
            whole = not qualified.endswith("__import__") or fetch.positional >= 4 or "fromlist" in fetch.keywords
            return (fetch.name if whole else fetch.name.partition(".")[0]), True
        if fetch.name in _FETCHED_MODULES and fetch.positional == 1 and not fetch.keywords:
            return fetch.name, False
        return None

    def qualified_dotted(self, dotted: str) -> str | None:
        head, _, rest = dotted.partition(".")
        base = self.aliases.get(head)
        if base is None:
            base = next((f"{m}.{head}" for m in self.star_modules if m in _STAR_EXPANDABLE and head in _public_names(m)), None)
            if base is None and head in self.star_guesses():
                base = head
            if base is None:
                base = self.fetch_guesses.get(head)
            if base is None:
                return None
        found = f"{base}.{rest}" if rest else base
        return _modern(found) if "moves." in found else found  # six.moves.http_client reached by attributes

    def star_guesses(self) -> frozenset[str]:
        """Names of networking modules this module uses but never binds, while it star-imports a module
        vsockport cannot read (`from stomp.utils import *`, whose own `import socket` it re-exports): taken
        for those modules, and the fixes that rest on the guess are unsafe (see runner.run_rules)."""
        if self._star_guesses is None:
            guesses = frozenset()
            if any(m not in _STAR_EXPANDABLE for m in self.star_modules):
                unbound = _STAR_IMPORTED_MODULES - set(self.aliases)
                guesses = unbound - self.bound_anywhere() if unbound & self.identifiers() else frozenset()
            self._star_guesses = guesses
        return self._star_guesses

    def has_alternatives(self) -> bool:
        """Whether any name has meanings besides the standard-library one the rules take (once per module)."""
        if self._has_alternatives is None:
            self._has_alternatives = any(map(self.other_meanings, self.bindings))
        return self._has_alternatives

    def other_meanings(self, name: str) -> tuple[str, ...]:
        """The meanings of `name` that an import before the standard-library one the rules take binds it
        to (`try: from siosocks.io.asyncio import open_connection / except ImportError: from asyncio import
        open_connection`): where that import succeeds, it is the one that runs. (A standard-library import
        tried first always succeeds: `try: import asyncio / except ImportError: import trollius as asyncio`
        has no other meaning.)"""
        meanings = self.bindings.get(name, ())
        if len(meanings) < 2:
            return ()
        taken = self.aliases[name]
        if taken.lstrip(".").split(".")[0] not in _STDLIB or taken.startswith("."):
            return ()
        return meanings[:meanings.index(taken)]

    def is_any(self, node: cst.BaseExpression, *qualified_names: str) -> bool:
        return self.qualified(node) in qualified_names

    def constant(self, node: cst.BaseExpression) -> cst.BaseExpression:
        """The literal a module-level constant name stands for, else the node itself."""
        if isinstance(node, cst.Name) and node.value in self.constant_values:
            value = self._constants.get(node.value)
            if value is None:
                value = self._constants[node.value] = self._expression_at(self.constant_values[node.value])
            return value
        return node

    def is_runtime_name(self, node: cst.BaseExpression) -> bool:
        """A name that comes from the vsock runtime (so a second run leaves it alone): imported from it,
        or the module's `afVMCI = VMCISock_GetAFValue()`."""
        qualified = self.qualified(node)
        if qualified is None:
            value = self.constant_values.get(node.value) if isinstance(node, cst.Name) else None
            if isinstance(value, ast.Call) and isinstance(value.func, ast.Name):
                made_by = self.aliases.get(value.func.id, "")
                return made_by.rpartition(".")[0].rpartition(".")[2] == self.runtime_module
            return isinstance(node, cst.Name) and node.value == "afVMCI"
        module = qualified.rpartition(".")[0]
        return module.rpartition(".")[2] == self.runtime_module


def _preferred(meanings: tuple[str, ...] | list[str]) -> str:
    """Of several meanings of one name, a standard-library one (that is what the rules know)."""
    return next((m for m in meanings if m.lstrip(".").split(".")[0] in _STDLIB and not m.startswith(".")), meanings[0])


def _statements(body: list[ast.stmt], depth: int) -> Iterator[tuple[ast.stmt, int]]:
    """Every statement in source order with its function/class nesting depth."""
    for stmt in body:
        yield stmt, depth
        inner = depth + isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        for field in ("body", "orelse", "finalbody"):
            yield from _statements(getattr(stmt, field, None) or [], inner)
        for handler in getattr(stmt, "handlers", None) or []:
            yield from _statements(handler.body, inner)
        for case in getattr(stmt, "cases", None) or []:
            yield from _statements(case.body, inner)


# Python's own symbol tables (the C module behind `symtable`): which names each scope binds, computed by
# the compiler's first pass, many times faster than a walk of the tree in Python.
_BOUND = _symtable.DEF_LOCAL | _symtable.DEF_PARAM
_DECLARED = _symtable.DEF_GLOBAL | _symtable.DEF_NONLOCAL
_COMPREHENSIONS = frozenset(["listcomp", "setcomp", "dictcomp", "genexpr"])


class ScopeFacts(NamedTuple):
    bound_anywhere: frozenset[str]  # bound in any scope: assigned, a parameter, defined or imported
    shadowing_lines: frozenset[int]  # `def`/`lambda` lines of functions binding an imported name as a local
    bound_in_nested_scopes: frozenset[str]  # bound (not imported) in a function, lambda, class or comprehension


def scope_facts(text: str | bytes, tree: ast.Module | None, imported: frozenset[str], first_line: int = 1) -> ScopeFacts:
    """The facts of `text` (a module, or lines of one starting at `first_line`; `tree` is its ast when
    known). Imports inside functions do not shadow: the import table records what they bind, wherever
    they are. Code that Python's compiler refuses (a duplicate parameter, `nonlocal` at module level)
    cannot run: every identifier counts as bound everywhere and every function as shadowing, which
    keeps the port safe."""
    try:
        top = _symtable.symtable(text, "<module>", "exec")
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        words = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
        every = frozenset(re.findall(r"\w+", words))
        try:
            tree = tree or ast.parse(text)
        except (SyntaxError, ValueError, MemoryError, RecursionError):
            return ScopeFacts(every, frozenset(range(first_line, first_line + words.count("\n") + 1)), every)
        lines = frozenset(first_line - 1 + node.lineno for node in ast.walk(tree)
                          if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))
        return ScopeFacts(every, lines, every)
    bound: set[str] = set()
    nested: set[str] = set()
    shadowing: set[int] = set()
    stack = [top]
    while stack:
        table = stack.pop()
        stack.extend(table.children)
        local = {name for name, flags in table.symbols.items() if flags & _BOUND and not flags & _DECLARED}
        bound |= local
        bound |= {name for name, flags in table.symbols.items() if flags & _symtable.DEF_IMPORT}
        if table.type == _symtable.TYPE_MODULE:
            continue
        nested |= local
        if table.type == _symtable.TYPE_FUNCTION and table.name not in _COMPREHENSIONS and imported & local:
            shadowing.add(first_line - 1 + table.lineno)
    return ScopeFacts(frozenset(n for n in bound if n[:1] != "."), frozenset(shadowing),
                      frozenset(n for n in nested if n[:1] != "."))  # `.0`: a comprehension's iterator


class _Fetch(NamedTuple):
    """A call that may fetch a module by its name, from ast or libcst: `f("socket", ...)`."""
    func: str | None  # the dotted name called
    name: str  # the first argument, a string
    positional: int
    keywords: frozenset[str]  # `**kw` as "**"

    @classmethod
    def of_ast(cls, call: ast.Call) -> "_Fetch | None":
        first = call.args[0] if call.args else None
        if not isinstance(first, ast.Constant) or not isinstance(first.value, str):
            return None
        return cls(_dotted(call.func), first.value, len(call.args), frozenset(k.arg or "**" for k in call.keywords))

    @classmethod
    def of_cst(cls, call: cst.Call) -> "_Fetch | None":
        first = call.args[0] if call.args else None
        if first is None or first.keyword is not None or first.star or not isinstance(first.value, cst.SimpleString):
            return None
        name = first.value.evaluated_value
        if not isinstance(name, str):
            return None
        positional = sum(1 for a in call.args if a.keyword is None)
        keywords = frozenset(a.keyword.value if a.keyword is not None else "**" for a in call.args if a.keyword or a.star == "**")
        return cls(dotted_name(call.func), name, positional, keywords)

    def names_a_module(self) -> bool:
        return all(part.isidentifier() for part in self.name.split("."))


def _dotted(node: ast.expr) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))
