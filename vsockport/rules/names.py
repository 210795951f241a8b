"""What a name means in one module: import aliases and module-level constants, computed once per module
and shared by every rule (not scope-aware on purpose: imports and constants are module-wide in the
programs vsockport ports, and one flat table keeps the pass cheap)."""

from __future__ import annotations

import ast
import importlib
from functools import lru_cache
from typing import Callable, Iterator

import libcst as cst

# Modules whose star-imports we expand; anything else star-imported is unknown to us.
_STAR_EXPANDABLE = ("socket", "ctypes", "socketserver")


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


class ModuleNames(cst.CSTVisitor):
    """Import table (local name -> qualified name) and single-assignment module constants."""

    def __init__(self, module: cst.Module) -> None:
        super().__init__()
        self.aliases: dict[str, str] = {}
        self.star_modules: list[str] = []
        self.constants: dict[str, cst.BaseExpression] = {}
        self._assign_counts: dict[str, int] = {}
        self._depth = 0
        module.visit(self)
        self.constants = {k: v for k, v in self.constants.items() if self._assign_counts.get(k) == 1}

    @classmethod
    def from_ast(cls, tree: ast.Module, expression_at: Callable[[ast.expr], cst.BaseExpression]) -> "ModuleNames":
        """The same table built from Python's own (much faster) `ast`, for focused porting.

        Constant values are turned into libcst nodes by `expression_at` only when a rule asks for them.
        """
        names = cls.__new__(cls)
        names.aliases, names.star_modules, names._assign_counts = {}, [], {}
        values: dict[str, ast.expr] = {}
        for stmt, depth in _statements(tree.body, 0):
            if isinstance(stmt, ast.Import):
                for alias in stmt.names:
                    if alias.asname is not None:
                        names.aliases[alias.asname] = alias.name
                    else:
                        top = alias.name.split(".")[0]
                        names.aliases.setdefault(top, top)
            elif isinstance(stmt, ast.ImportFrom):
                module = "." * stmt.level + (stmt.module or "")
                if stmt.names[0].name == "*":
                    names.star_modules.append(module)
                    continue
                for alias in stmt.names:
                    names.aliases[alias.asname or alias.name] = f"{module}.{alias.name}"
            elif isinstance(stmt, ast.Assign):
                for target in stmt.targets:
                    if isinstance(target, ast.Name):
                        names._assign_counts[target.id] = names._assign_counts.get(target.id, 0) + 1
                        if depth == 0 and len(stmt.targets) == 1:
                            values[target.id] = stmt.value
            elif isinstance(stmt, ast.AugAssign) and isinstance(stmt.target, ast.Name):
                names._assign_counts[stmt.target.id] = 2
        names.constant_values = {k: v for k, v in values.items() if names._assign_counts.get(k) == 1}
        names.constants = _LazyConstants(names.constant_values, expression_at)
        return names

    # -- collection -------------------------------------------------------------------------------
    def visit_Import(self, node: cst.Import) -> bool:
        for alias in node.names:
            full = dotted_name(alias.name)
            if full is None:
                continue
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                self.aliases[alias.asname.name.value] = full
            else:
                top = full.split(".")[0]
                self.aliases.setdefault(top, top)
        return False

    def visit_ImportFrom(self, node: cst.ImportFrom) -> bool:
        module = "." * len(node.relative) + ((dotted_name(node.module) or "") if node.module else "")
        if isinstance(node.names, cst.ImportStar):
            self.star_modules.append(module)
            return False
        for alias in node.names:
            if not isinstance(alias.name, cst.Name):
                continue
            local = alias.asname.name.value if alias.asname and isinstance(alias.asname.name, cst.Name) else alias.name.value
            self.aliases[local] = f"{module}.{alias.name.value}"
        return False

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._depth += 1

    def leave_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._depth -= 1

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self._depth += 1

    def leave_ClassDef(self, node: cst.ClassDef) -> None:
        self._depth -= 1

    def visit_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            if isinstance(target.target, cst.Name):
                name = target.target.value
                self._assign_counts[name] = self._assign_counts.get(name, 0) + 1
                if self._depth == 0 and len(node.targets) == 1:
                    self.constants[name] = node.value

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        if isinstance(node.target, cst.Name):
            self._assign_counts[node.target.value] = 2  # never a constant

    # -- queries ----------------------------------------------------------------------------------
    def qualified(self, node: cst.BaseExpression) -> str | None:
        """`s.AF_INET` -> `socket.AF_INET` under `import socket as s`; None when unknown."""
        dotted = dotted_name(node)
        if dotted is None:
            return None
        head, _, rest = dotted.partition(".")
        if head in self.aliases:
            base = self.aliases[head]
        else:
            base = next((f"{m}.{head}" for m in self.star_modules if m in _STAR_EXPANDABLE and head in _public_names(m)), None)
            if base is None:
                return None
        return f"{base}.{rest}" if rest else base

    def is_any(self, node: cst.BaseExpression, *qualified_names: str) -> bool:
        return self.qualified(node) in qualified_names

    def constant(self, node: cst.BaseExpression) -> cst.BaseExpression:
        """The literal a module-level constant name stands for, else the node itself."""
        if isinstance(node, cst.Name) and node.value in self.constants:
            return self.constants[node.value]
        return node


def _statements(body: list[ast.stmt], depth: int) -> Iterator[tuple[ast.stmt, int]]:
    """Every statement in source order with its function/class nesting depth (as ModuleNames counts it)."""
    for stmt in body:
        yield stmt, depth
        inner = depth + isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        for field in ("body", "orelse", "finalbody"):
            yield from _statements(getattr(stmt, field, None) or [], inner)
        for handler in getattr(stmt, "handlers", None) or []:
            yield from _statements(handler.body, inner)
        for case in getattr(stmt, "cases", None) or []:
            yield from _statements(case.body, inner)


class _LazyConstants(dict):
    """name -> libcst expression, converted from the ast value on first use."""

    def __init__(self, values: dict[str, ast.expr], convert: Callable[[ast.expr], cst.BaseExpression]) -> None:
        super().__init__()
        self._values, self._convert = values, convert

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def __getitem__(self, name: str) -> cst.BaseExpression:
        if not dict.__contains__(self, name):
            dict.__setitem__(self, name, self._convert(self._values[name]))
        return dict.__getitem__(self, name)
