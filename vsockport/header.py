"""The runtime import a ported module gets: `from <runtime> import ...` (and `afVMCI =
VMCISock_GetAFValue()`), placed once. An existing runtime import is extended in place; otherwise the
import goes after the docstring, `__future__` imports and the leading imports (and before the first
statement a fix changed).

The import never rebinds a name the module binds itself, anywhere (a function, class, parameter,
variable or import of that name): such a runtime name is imported under an alias
(`from vsock_runtime import vsock_socket as vsock_socket_vsock`), and fixes are written with the name
actually bound, as ruff's importer does.

A module inside a package that also runs as a script (`python tests/fixtureapps/getline.py`: a top-level
`if __name__ == "__main__":` and no relative import of its own) cannot use the package's relative
import when run that way, so it gets both, chosen by `__package__`, and a runtime beside it too:

    if __package__:
        from ..vsock_runtime import vsock_urlopen
    else:  # run as a script: the runtime beside it
        from vsock_runtime import vsock_urlopen
"""

from __future__ import annotations

import ast
import bisect
import functools
import re
from typing import Iterable

from vsockport import regions as planning
from vsockport.rules.api import DEFINITIONS
from vsockport.rules.names import ModuleNames
from vsockport.runtime.contract import AF_NAME, contract
from vsockport.source import Source

_MAX_IMPORT_LINE = 88


def aliases(names: ModuleNames) -> dict[str, str]:
    """Runtime name -> the name it is imported as, for the runtime names this module binds itself."""
    ours = {local for local, meanings in names.bindings.items()
            if all(m.rpartition(".")[0].rpartition(".")[2] == names.runtime_module for m in meanings)}
    ours |= {name for name, value in names.constant_values.items() if _defines_family(value, names)}
    if not names.mentions(_runtime_names()):
        return {}  # the usual case, decided without the compiler's pass over the whole module
    taken = names.bound_anywhere() - ours
    found = {}
    for name in (contract().exports | {AF_NAME}) & taken:
        alias, number = f"{name}_vsock", 1
        # An alias an earlier port imported (`vsock_socket as vsock_socket_vsock`) is used again.
        while alias in taken or (alias in names.bound_anywhere() and not _imports(names, alias, name)):
            number += 1
            alias = f"{name}_vsock{number}"
        found[name] = alias
    return found


@functools.cache
def _runtime_names() -> re.Pattern[bytes]:
    """The runtime's names, and every alias of one (`vsock_socket_vsock2`) by its prefix."""
    return re.compile("|".join(sorted(map(re.escape, contract().exports | {AF_NAME}))).encode())


def _imports(names: ModuleNames, local: str, runtime_name: str) -> bool:
    """Whether the module binds `local` only as the runtime's `runtime_name`."""
    meanings = names.bindings.get(local, ())
    return bool(meanings) and all(m.rpartition(".")[2] == runtime_name and
                                  m.rpartition(".")[0].rpartition(".")[2] == names.runtime_module for m in meanings)


def _defines_family(value: ast.expr, names: ModuleNames) -> bool:
    """`afVMCI = VMCISock_GetAFValue()`, as vsockport writes it (the call imported from the runtime)."""
    return isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and \
        names.aliases.get(value.func.id, "").endswith(f"{names.runtime_module}.VMCISock_GetAFValue")


def runs_as_script(tree: ast.Module, runtime_import: str) -> bool:
    """Whether a module in a package (a relative `runtime_import`) may also run as a script: it has a
    top-level `if __name__ == "__main__":` and imports nothing relatively but the runtime (a module
    with relative imports of its own cannot run as a script, so it keeps the one relative import)."""
    if not runtime_import.startswith(".") or not any(_is_main_guard(s) for s in tree.body):
        return False
    runtime = runtime_import.lstrip(".")
    return not any(isinstance(node, ast.ImportFrom) and node.level and node.module != runtime for node in ast.walk(tree))


def _is_main_guard(statement: ast.stmt) -> bool:
    test = statement.test if isinstance(statement, ast.If) else None
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = [test.left, test.comparators[0]]
    return any(isinstance(x, ast.Name) and x.id == "__name__" for x in sides) and \
        any(isinstance(x, ast.Constant) and x.value == "__main__" for x in sides)


def script_import_line(runtime_import: str) -> bytes:
    """How the script half of the two-way import starts (an indented absolute import of the runtime)."""
    return f"    from {runtime_import.lstrip('.')} import".encode()


class RuntimeHeader:
    """Edits of a module's original text that import what its fixes need from the runtime."""

    def __init__(self, source: Source, tree: ast.Module, runtime_import: str, aliases: dict[str, str]) -> None:
        self.source, self.runtime_import, self.aliases = source, runtime_import, aliases
        self.script = runs_as_script(tree, runtime_import)
        self.units = planning.units(tree.body)
        self.assigned = {t.id for s in tree.body if isinstance(s, ast.Assign) for t in s.targets if isinstance(t, ast.Name)}
        self._unit_ends = [unit.end for unit in self.units]  # ascending: units follow each other
        self._import_block: tuple[int, int] | None = None

    def bound(self, name: str) -> str:
        return self.aliases.get(name, name)

    def _content(self, needs: Iterable[str]) -> tuple[dict[str, str | None], str]:
        """The names to import (name -> alias or None) and the definitions that follow the import."""
        needs = set(needs)
        imports = {n for n in needs if n not in DEFINITIONS} | {DEFINITIONS[n][0] for n in needs if n in DEFINITIONS}
        definitions = "".join(
            DEFINITIONS[n][1].format(name=self.bound(n), factory=self.bound(DEFINITIONS[n][0])) + self.source.newline
            for n in sorted(needs) if n in DEFINITIONS and self.bound(n) not in self.assigned)
        return {n: self.aliases.get(n) for n in imports}, definitions

    def edits(self, needs: Iterable[str], first_changed_line: int) -> list[tuple[int, int, str]]:
        """(start, end, content) edits of the original text that import `needs`: an existing runtime
        import is extended, else one import is inserted."""
        imports, definitions = self._content(needs)
        if not imports and not definitions:
            return []
        existing = self._existing()
        if existing is None:
            return [self.insertion(needs, first_changed_line)]
        unit, node = existing
        imported = node.body[0] if isinstance(node, ast.If) else node
        have = {a.name: a.asname for a in imported.names}
        edits = []
        if not set(imports) <= set(have):
            start = self._char_offset(node.lineno, node.col_offset)
            end = self._char_offset(node.end_lineno, node.end_col_offset)
            edits.append((start, end, self._import_line({**imports, **have}).rstrip("\r\n")))
        if definitions:
            at = self.source.offset(unit.end + 1)
            edits.append((at, at, self._after_last_line(at, definitions)))
        return edits

    def insertion(self, needs: Iterable[str], first_changed_line: int) -> tuple[int, int, str]:
        """One inserted import of `needs` (and its definitions), above `first_changed_line`."""
        imports, definitions = self._content(needs)
        index, after = self._insertion_point(first_changed_line)
        text = self._import_line(imports) + definitions
        if after is not None and not self._is_import(after):
            text = self.source.newline + text  # after a docstring: keep its separation from what follows
        if index < len(self.units):
            at = self.source.offset(self.units[index - 1].end + 1 if index > 0 else self.units[0].start)
        else:
            at = len(self.source.text)
        return (at, at, self._after_last_line(at, text))

    def _after_last_line(self, at: int, text: str) -> str:
        """`text`, on a line of its own also at the end of a file without a final line break."""
        if at == len(self.source.text) and self.source.text and not self.source.text.endswith(("\n", "\r")):
            return self.source.newline + text
        return text

    def _existing(self):
        for unit in self.units:
            node = unit.stmts[0]
            if self._is_import(unit) and isinstance(node, ast.ImportFrom) and node.names[0].name != "*":
                if "." * node.level + (node.module or "") == self.runtime_import:
                    return unit, node
            if self._is_two_way_import(node):
                return unit, node
        return None

    def _is_two_way_import(self, node: ast.stmt) -> bool:
        """`if __package__: from ..runtime import ... else: from runtime import ...`, as written here."""
        if not (isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "__package__"):
            return False
        first = node.body[0]
        return isinstance(first, ast.ImportFrom) and "." * first.level + (first.module or "") == self.runtime_import

    def _insertion_point(self, first_changed_line: int):
        if self._import_block is None:
            self._import_block = self._find_import_block()
        earliest, insert_at = self._import_block
        # Never after a statement that already uses what the import brings.
        changed = bisect.bisect_left(self._unit_ends, first_changed_line)
        insert_at = max(earliest, min(insert_at, changed))
        return insert_at, self.units[insert_at - 1] if insert_at > 0 else None

    def _find_import_block(self) -> tuple[int, int]:
        """(the first unit an import may precede, the unit after the module's import block)."""
        index = 1 if self.units and self._is_docstring(self.units[0]) else 0
        while index < len(self.units) and self._is_future(self.units[index]):
            index += 1
        last_import = None
        for position in range(index, len(self.units)):
            unit = self.units[position]
            if self._is_import(unit):
                last_import = position
            elif len(unit.stmts) == 1 and isinstance(unit.stmts[0], (ast.Try, ast.If)) and last_import is not None:
                continue  # guarded imports (try: import x / except ImportError) inside the import block
            else:
                break
        return index, index if last_import is None else last_import + 1

    @staticmethod
    def _is_import(unit) -> bool:
        return all(isinstance(s, (ast.Import, ast.ImportFrom)) for s in unit.stmts)

    @staticmethod
    def _is_future(unit) -> bool:
        return all(isinstance(s, ast.ImportFrom) and s.module == "__future__" for s in unit.stmts)

    @staticmethod
    def _is_docstring(unit) -> bool:
        first = unit.stmts
        return len(first) == 1 and isinstance(first[0], ast.Expr) and isinstance(first[0].value, ast.Constant) \
            and isinstance(first[0].value.value, str)

    def _char_offset(self, line: int, utf8_column: int) -> int:
        text = self.source.lines(line, line)
        return self.source.offset(line) + len(text.encode("utf-8")[:utf8_column].decode("utf-8", "replace"))

    def _import_line(self, names: dict[str, str | None]) -> str:
        """`from runtime import a, b as c`, wrapped one name per line (as black would) when it gets long;
        for a module that runs as a script too, the two-way import."""
        newline = self.source.newline
        ordered = [f"{n} as {names[n]}" if names[n] else n for n in sorted(names)]
        if not self.script:
            return self._from_line(self.runtime_import, ordered, "") + newline
        return (f"if __package__:{newline}" + self._from_line(self.runtime_import, ordered, "    ") + newline +
                f"else:  # run as a script: the runtime beside it{newline}" +
                self._from_line(self.runtime_import.lstrip("."), ordered, "    ") + newline)

    def _from_line(self, module: str, ordered: list[str], indent: str) -> str:
        newline = self.source.newline
        text = f"{indent}from {module} import {', '.join(ordered)}"
        if len(text) > _MAX_IMPORT_LINE:
            text = f"{indent}from {module} import ({newline}" + "".join(f"{indent}    {n},{newline}" for n in ordered) + \
                f"{indent})"
        return text
