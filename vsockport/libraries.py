"""Libraries a ported module imports from outside the run that vsockport has not ported (VS019).

A program's own files are only half of it: `import requests` in a ported module reaches requests' code
in site-packages, which opens its TCP connections unless it is ported too. After the files are ported,
each `import X` / `from X import ...` of a module that is neither the standard library's nor in the run
is looked up where the program would find it: a folder beside the importing file or above it (a sibling
package in the same site-packages, a project's own package), then the run's own import roots (a `src/`
layout's package, a dependency folder ported with the program), then vsockport's own `sys.path` (where
PYTHONPATH points, or the virtual environment vsockport runs in). A library found there is ported in
memory, never written, with the result cache (a second run reads only what changed): when a file that
the import runs would change, or imports such a library itself, the import gets a finding that names the
library's folder and the command that ports it. A library vsockport ported (its import root holds the
runtime it wrote), or one that never touches sockets, gets none. Imports of modules found nowhere are
not guessed at.
"""

from __future__ import annotations

import ast
import importlib.machinery
import json
import os
import re
import sys
import sysconfig
from pathlib import Path
from typing import Callable

CODE, NAME = "VS019", "unported-library"
# `import a, b.c` and `from a.b import c` at the start of a line: the cheap pass over every file's bytes;
# a file with a candidate name is then read with ast (a docstring's "import x" is no import).
_IMPORT_LINE = re.compile(rb"^[ \t]*(?:from[ \t]+([A-Za-z_]\w*)|import[ \t]+([A-Za-z_][\w. \t,]*))", re.M)
_NEVER = frozenset(getattr(sys, "stdlib_module_names", ())) | {"__future__", "__main__"}


def imported_names(data: bytes) -> set[str]:
    """Top-level module names a module's bytes seem to import (a superset: the cheap pass)."""
    names = set()
    for match in _IMPORT_LINE.finditer(data):
        if match.group(1):
            names.add(match.group(1).decode("ascii", "replace"))
        else:
            for part in match.group(2).split(b","):
                names.add(part.strip().split(b".")[0].split()[0].decode("ascii", "replace") if part.strip() else "")
    names.discard("")
    return names


# How an import runs: always (at module level), when its function is called, only if the library is
# there (in a `try` that handles its absence), or never (under `if TYPE_CHECKING:`).
REQUIRED, LAZY, OPTIONAL, TYPING = "required", "lazy", "optional", "typing"


class ImportIndex:
    """path -> [signature, the names it imports that are not the standard library's] for the files of
    one set of command-line paths, as cache.StatIndex keeps results: a warm run reads no unchanged file
    to learn what it imports."""

    def __init__(self, roots) -> None:
        from vsockport import cache

        self._cache = cache
        self._file, self._entries = cache.load_index("imports", roots)
        self._dirty = False

    def names(self, path: Path, read: Callable[[], bytes]) -> set[str]:
        try:
            sig = self._cache.signature(path)
        except OSError:
            return set()
        entry = self._entries.get(str(path))
        if entry and entry[0] == sig:
            return set(entry[1])
        found = {n for n in imported_names(read()) if n not in _NEVER}
        self._entries[str(path)] = [sig, sorted(found)]
        self._dirty = True
        return found

    def save(self) -> None:
        if self._dirty:
            self._cache.write_quietly(self._file, json.dumps(self._entries))


def import_sites(data: bytes, wanted: set[str]) -> list[tuple[str, int, int, str]]:
    """(top-level name, line, column, how it runs) of the first absolute import of each wanted name
    that runs in the strongest way (required over lazy over optional over typing)."""
    unindented = _unindented_imports(data, wanted)
    if set(unindented) == wanted:  # each at module level, where it always runs: no need to parse
        return sorted(unindented.values(), key=lambda s: (s[1], s[2]))
    try:
        tree = ast.parse(data)
    except (SyntaxError, ValueError):
        return []
    sites = []

    def visit(node: ast.AST, kind: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                sites.extend((alias.name.split(".")[0], child.lineno, child.col_offset + 1, kind) for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                sites.append((child.module.split(".")[0], child.lineno, child.col_offset + 1, kind))
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                visit(child, kind if kind != REQUIRED else LAZY)
            elif isinstance(child, ast.If) and "TYPE_CHECKING" in ast.dump(child.test):
                visit(child, TYPING)
            elif isinstance(child, ast.Try) and child.handlers:
                for part in child.body:
                    visit(ast.Module(body=[part], type_ignores=[]), TYPING if kind == TYPING else OPTIONAL)
                for part in (*child.handlers, *child.orelse, *child.finalbody):
                    visit(part if not isinstance(part, ast.stmt) else ast.Module(body=[part], type_ignores=[]), kind)
            else:
                visit(child, kind)

    visit(tree, REQUIRED)
    strength = {REQUIRED: 0, LAZY: 1, OPTIONAL: 2, TYPING: 3}
    first: dict[str, tuple[str, int, int, str]] = {}
    for site in sorted(sites, key=lambda s: (strength[s[3]], s[1], s[2])):
        if site[0] in wanted:
            first.setdefault(site[0], site)
    return sorted(first.values(), key=lambda s: (s[1], s[2]))


_UNINDENTED = re.compile(rb"^(?:from[ \t]+([A-Za-z_][\w.]*)[ \t]+import\b|import[ \t]+([A-Za-z_][\w. \t,]*))", re.M)


def _unindented_imports(data: bytes, wanted: set[str]) -> dict[str, tuple[str, int, int, str]]:
    """The first module-level (unindented) import of each wanted name, read from the bytes alone."""
    found: dict[str, tuple[str, int, int, str]] = {}
    for match in _UNINDENTED.finditer(data):
        modules = [match.group(1)] if match.group(1) else [m.strip().split()[0] for m in match.group(2).split(b",") if m.strip()]
        for module in modules:
            name = module.split(b".")[0].decode("ascii", "replace")
            if name in wanted and name not in found:
                found[name] = (name, data.count(b"\n", 0, match.start()) + 1, 1, REQUIRED)
    return found


def submodules_named(data: bytes) -> dict[str, frozenset[tuple[str, ...]]]:
    """Per top-level package, the submodules a module's imports name (`from botocore.session import
    Session`, `from botocore import session`, `import botocore.session`): what importing them runs
    besides the package's __init__."""
    named: dict[str, set[tuple[str, ...]]] = {}
    try:
        tree = ast.parse(data)
    except (SyntaxError, ValueError):
        return {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                top, *rest = alias.name.split(".")
                named.setdefault(top, set()).add(tuple(rest))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            top, *rest = node.module.split(".")
            named.setdefault(top, set()).update([tuple(rest), *((*rest, a.name) for a in node.names if a.name != "*")])
    return {top: frozenset(parts - {()}) for top, parts in named.items()}


def import_time_files(location: Path, submodules: frozenset[tuple[str, ...]] = frozenset()) -> set[Path]:
    """The files of a library that importing it runs: its module, or its package's __init__.py (and the
    submodules a program names) and the modules of the package those import in turn at module level
    (not in a function, not tried). A library's other modules (a CLI, a Sphinx extension) import what
    they like without it needing it."""
    if not location.is_dir():
        return {location}
    package = location.name
    seen: set[Path] = set()
    pending = [location / "__init__.py", *(_module_file(location, [p.encode() for p in parts]) for parts in submodules)]
    while pending:
        path = pending.pop()
        if path in seen or not path.is_file():
            continue
        seen.add(path)
        try:
            data = path.read_bytes()
        except OSError:
            continue
        here = path.parent
        for match in _IMPORT_TIME.finditer(data):  # module level: unindented
            dots, module, names, plain = match.groups()
            if plain is not None:
                pending += [_module_file(location, m.split(b".")[1:]) for m in
                            (p.strip().split()[0] for p in plain.split(b",") if p.strip())
                            if m.split(b".")[0] == package.encode()]
                continue
            if dots:
                base = here
                for _ in range(len(dots) - 1):
                    base = base.parent
                parts = module.split(b".") if module else []
            elif module and module.split(b".")[0] == package.encode():
                base, parts = location, module.split(b".")[1:]
            else:
                continue
            pending.append(_module_file(base, parts))
            imported = names.strip(b"( \t\\").split(b",")
            pending += [_module_file(base, [*parts, n.strip().split()[0]]) for n in imported if n.strip() and
                        n.strip().split()[0].decode("ascii", "replace").isidentifier()]  # submodules imported by name
    return seen


_IMPORT_TIME = re.compile(rb"^(?:from[ \t]+(\.*)([\w.]*)[ \t]+import[ \t]+([^\n#;]*)|import[ \t]+([\w. \t,]+))", re.M)


def _module_file(base: Path, parts: list[bytes]) -> Path:
    target = base.joinpath(*(p.decode("ascii", "replace") for p in parts))
    return target / "__init__.py" if target.is_dir() else target.with_name(target.name + ".py")


def locate(name: str, importer: Path, provided: Callable[[], dict[str, Path]] | None = None) -> Path | None:
    """Where `importer` would find the top-level module `name`: its package folder or its file; beside
    or above it, then among the run's own import roots (`provided()`, asked only here), then on
    vsockport's sys.path."""
    for folder in Path(os.path.realpath(importer)).parents:
        if (folder / name / "__init__.py").is_file():
            return folder / name
        if (folder / f"{name}.py").is_file():
            return folder / f"{name}.py"
    found = provided().get(name) if provided is not None else None
    if found is not None:
        return found
    try:
        spec = importlib.machinery.PathFinder.find_spec(name, sys.path)
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin in (None, "built-in", "frozen"):
        return None  # a namespace package, or no module of that name here
    origin = Path(spec.origin)
    if origin.suffix != ".py":
        return None  # an extension module: VS017's, when its folder is ported
    return origin.parent if origin.name == "__init__.py" else origin


class Verdicts:
    """Whether each library found needs porting, asked once per run however many modules import it:
    whether a file that importing it runs would change, or imports at module level a library that needs
    porting in turn (followed only through the files the import runs)."""

    def __init__(self, changed_files: Callable[[Path], set[Path]], runtime: str) -> None:
        self._changed_files = changed_files  # library folder -> the (real) paths of its files that would change
        self._runtime = runtime
        self._changed: dict[Path, set[Path]] = {}
        self._known: dict[tuple[Path, frozenset], tuple[int, list[str]] | None] = {}
        self._needed: dict[Path, list[str]] = {}

    def of(self, location: Path, submodules: frozenset = frozenset()) -> tuple[int, list[str]] | None:
        """(files that would change, unported libraries it imports), or None when it needs nothing."""
        key = (location, submodules)
        if key in self._known:
            return self._known[key]
        self._known[key] = None  # an import cycle asks again while this one runs: nothing, for now
        if location not in self._changed:
            self._changed[location] = self._changed_files(location)
        runs = {Path(os.path.realpath(p)) for p in import_time_files(location, submodules)}
        changing = len(runs & self._changed[location])
        for path in runs - self._needed.keys():
            self._needed[path] = []  # (a cycle back to this module while it is read: nothing, for now)
            self._needed[path] = self._needs(path, location)
        through = sorted({name for path in runs for name in self._needed[path]})
        verdict = (changing, through) if changing or through else None
        self._known[key] = verdict
        return verdict

    def _needs(self, path: Path, library: Path) -> list[str]:
        """The libraries outside `library` that module `path` imports at module level and that need porting."""
        try:
            data = path.read_bytes()
        except OSError:
            return []
        outside = unported_outside(imported_names(data), path, [library], self._runtime)
        needed = []
        named = submodules_named(data) if outside else {}
        for name, _, _, kind in import_sites(data, set(outside)) if outside else ():
            submodules = named.get(name, frozenset()) if outside[name].is_dir() else frozenset()
            if kind == REQUIRED and self.of(outside[name], submodules) is not None:
                needed.append(name)
        return needed


def message(name: str, location: Path, changing: int, through: list[str]) -> str:
    what = (f"{changing} of the files importing it runs would change" if changing
            else f"it imports {', '.join(through)}, which vsockport has not ported")
    return (f"{name} is imported from {location}, outside this run, and vsockport has not ported it ({what}): "
            f"its connections stay on TCP/IP. Port it too: vsockport rewrite {location}")


def import_roots(files) -> dict[str, Path]:
    """Top-level name -> where the run's own files provide it: each package whose folder's parent is
    no package (`src/urllib3`, `site/trio`), and the modules beside such a package (`site/socks.py`).
    A program run with those folders on its path imports these copies, the ported ones. (Every run
    with VS019 asks: one stat per folder, and real paths of what is found only.)"""
    package_root: dict[Path, Path | None] = {}  # folder -> its outermost package folder, or None

    def root_of(folder: Path) -> Path | None:
        if folder not in package_root:
            is_package = (folder / "__init__.py").is_file()
            package_root[folder] = (root_of(folder.parent) or folder) if is_package and folder.parent != folder else None
        return package_root[folder]

    found: dict[str, Path] = {}
    loose: list[Path] = []
    for path in files:
        root = root_of(path.parent)
        if root is not None:
            found.setdefault(root.name, root)
        elif path.suffix == ".py":
            loose.append(path)
    holders = {root.parent for root in found.values()}
    for path in loose:  # a single-module library beside packages (a site folder), not a folder of scripts
        if path.parent in holders:
            found.setdefault(path.stem, path)
    return {name: Path(os.path.realpath(where)) for name, where in found.items()}


def unported_outside(names, importer: Path, roots: list[Path], runtime: str,
                     located: dict[tuple[str, Path], Path | None] | None = None,
                     provided: Callable[[], dict[str, Path]] | None = None) -> dict[str, Path]:
    """name -> folder (or file) of each imported library that `importer` finds outside `roots`, outside
    the standard library, and not ported by vsockport. `located` memoises the lookups of one run;
    `provided` (import_roots of the run, computed on first use) answers a name that nothing beside or
    above the importer does."""
    located = {} if located is None else located
    outside = {}
    for name in names:
        if skipped(name, runtime):
            continue
        key = (name, importer.parent)
        if key not in located:
            located[key] = locate(name, importer, provided)
        found = located[key]
        if found is not None and not is_within(found, roots) and not is_stdlib(found) and not carries_runtime(found, runtime):
            outside[name] = found
    return outside


def carries_runtime(location: Path, runtime: str) -> bool:
    """Whether vsockport ported the library: its import root holds the runtime it wrote (a package), or
    the module imports it (a single-module library beside its runtime). Read as the porter left it: a
    library ported by an older vsockport is checked again by `vsockport diff` on its folder."""
    if location.is_dir():
        return (location / f"{runtime}.py").is_file()
    try:
        return (location.parent / f"{runtime}.py").is_file() and runtime.encode() in location.read_bytes()
    except OSError:
        return False


_STDLIB = Path(sysconfig.get_paths()["stdlib"])


def is_stdlib(location: Path) -> bool:
    """The standard library's own folder (its `test` package is not in sys.stdlib_module_names)."""
    return _STDLIB in location.parents and "site-packages" not in location.parts and "dist-packages" not in location.parts


def is_within(location: Path, roots: list[Path]) -> bool:
    return any(location == root or root in location.parents for root in roots)


def skipped(name: str, runtime_module: str) -> bool:
    return name in _NEVER or name == runtime_module or name.startswith("vsock_runtime")
