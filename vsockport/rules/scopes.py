"""Which names a function, lambda, class body or comprehension binds itself: Python's scoping rules,
read from a libcst tree, so that a parameter, variable, definition or import named like a socket API
(`def serve(socket): ...`, `for socket in sockets`) is not taken for the module-level import.

Regions handed to libcst hold whole functions wherever a function binds an imported name locally (the
planner asks `ModuleNames.shadowing_lines`), so a function's parameters are always in view here.
"""

from __future__ import annotations

import libcst as cst

from vsockport.rules.helpers import children

_FUNCTIONS = (cst.FunctionDef, cst.Lambda)
_COMPREHENSIONS = (cst.ListComp, cst.SetComp, cst.DictComp, cst.GeneratorExp)
_NEW_SCOPES = (cst.FunctionDef, cst.Lambda, cst.ClassDef, *_COMPREHENSIONS)


def _target_names(node: cst.CSTNode | None) -> set[str]:
    """The names an assignment target binds: `a`, `a, (b, *c)`; not `a.b` or `a[b]`."""
    if isinstance(node, cst.Name):
        return {node.value}
    if isinstance(node, (cst.Tuple, cst.List)):
        found: set[str] = set()
        for element in node.elements:
            found |= _target_names(element.value)
        return found
    if isinstance(node, cst.StarredElement):
        return _target_names(node.value)
    return set()


def _parameters(params: cst.Parameters) -> set[str]:
    every = [*params.posonly_params, *params.params, *params.kwonly_params]
    every += [p for p in (params.star_arg, params.star_kwarg) if isinstance(p, cst.Param)]
    return {p.name.value for p in every}


def _bindings(body: cst.CSTNode) -> tuple[set[str], set[str]]:
    """(names bound, names declared global or nonlocal) directly in a block: nested functions,
    lambdas, classes and comprehensions bind in their own scopes (only their own names count here).
    Imports do not count: the module's import table already records what they bind, wherever they are."""
    bound: set[str] = set()
    declared: set[str] = set()
    stack = list(children(body))
    while stack:
        node = stack.pop()
        if isinstance(node, (cst.FunctionDef, cst.ClassDef)):
            bound.add(node.name.value)
            stack.extend(node.decorators)
            if isinstance(node, cst.ClassDef):
                stack.extend(arg.value for arg in node.bases)
            continue
        if isinstance(node, (cst.Lambda, *_COMPREHENSIONS)):
            continue
        if isinstance(node, cst.AssignTarget):
            bound |= _target_names(node.target)
        elif isinstance(node, (cst.AnnAssign, cst.AugAssign)):
            bound |= _target_names(node.target)
        elif isinstance(node, cst.For):
            bound |= _target_names(node.target)
        elif isinstance(node, cst.NamedExpr):
            bound |= _target_names(node.target)
        elif isinstance(node, cst.AsName) and isinstance(node.name, cst.Name):
            bound |= _target_names(node.name)
        elif isinstance(node, (cst.Import, cst.ImportFrom)):
            continue  # an import binds what the module's import table records for the name: no shadow
        elif isinstance(node, (cst.Global, cst.Nonlocal)):
            declared |= {item.name.value for item in node.names}
        elif isinstance(node, (cst.MatchAs, cst.MatchStar)) and node.name is not None:
            bound |= _target_names(node.name)
        stack.extend(children(node))
    return bound, declared


class Scopes:
    """Answers `shadowed(node)`: whether the head name of `node` is bound by an enclosing function,
    lambda, comprehension or class body (for statements directly in it) rather than at module level."""

    def __init__(self, parents, bound_in_nested_scopes: frozenset[str] | None = None) -> None:
        self.parents = parents
        # From the module's symbol tables: a name no function, lambda, class or comprehension binds
        # is shadowed nowhere, and most names are such (None: not known, look).
        self.bound_in_nested_scopes = bound_in_nested_scopes
        self._local: dict[int, frozenset[str]] = {}

    def _locals(self, scope: cst.CSTNode) -> frozenset[str]:
        known = self._local.get(id(scope))
        if known is None:
            if isinstance(scope, cst.FunctionDef):
                bound, declared = _bindings(scope.body)
                known = frozenset((bound | _parameters(scope.params)) - declared)
            elif isinstance(scope, cst.Lambda):
                known = frozenset(_parameters(scope.params))
            elif isinstance(scope, cst.ClassDef):
                bound, declared = _bindings(scope.body)
                known = frozenset(bound - declared)
            else:  # a comprehension: its for-targets
                known = frozenset(name for clause in _clauses(scope) for name in _target_names(clause.target))
            self._local[id(scope)] = known
        return known

    def shadowed(self, node: cst.BaseExpression) -> bool:
        head = node
        while isinstance(head, cst.Attribute):
            head = head.value
        if not isinstance(head, cst.Name):
            return False
        name = head.value
        if self.bound_in_nested_scopes is not None and name not in self.bound_in_nested_scopes:
            return False
        child = head
        for ancestor in self.parents.ancestors(head):
            if isinstance(ancestor, _NEW_SCOPES):
                if isinstance(ancestor, cst.ClassDef) and child is not ancestor.body:
                    child = ancestor  # a base class or decorator: evaluated in the enclosing scope
                    continue
                if isinstance(ancestor, _FUNCTIONS) and child is not ancestor.body:
                    child = ancestor  # a default or an annotation: evaluated in the enclosing scope
                    continue
                if name in self._locals(ancestor):
                    return True
            child = ancestor
        return False


def _clauses(comprehension: cst.CSTNode):
    clause = comprehension.for_in
    while clause is not None:
        yield clause
        clause = clause.inner_for_in
