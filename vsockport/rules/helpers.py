"""Small helpers every rule may use: printed source, literals, hosts, the shapes of calls and addresses.

A rule file holds only what is specific to it; anything two rules need lives here (or, for porting
addresses, in `addresses.py`).
"""

from __future__ import annotations

import libcst as cst

from vsockport.runtime.contract import contract

# Host spellings, as the runtime reads them (its own constants, read from its source).
LOOPBACK_HOSTS = contract().loopback_hosts
WILDCARD_HOSTS = contract().wildcard_hosts

_EMPTY_MODULE = cst.Module([])
_FIELDS: dict[type, tuple[str, ...]] = {}


class RuntimeName(cst.Name):
    """A name a fix takes from the runtime: marked, so the pipeline imports it (never guessed from spelling)."""


def _node_classes(base: type) -> set[type]:
    found = set()
    stack = [base]
    while stack:
        cls = stack.pop()
        found.add(cls)
        stack.extend(cls.__subclasses__())
    return found


# Whitespace, comments and operator tokens hold nothing a rule looks at: the walk skips them.
_TRIVIA = frozenset(c for c in _node_classes(cst.CSTNode) if c.__module__ in ("libcst._nodes.whitespace", "libcst._nodes.op"))
_NODES = frozenset(_node_classes(cst.CSTNode)) - _TRIVIA


def children(node: cst.CSTNode) -> list[cst.CSTNode]:
    """The node's children in source order, without whitespace and operator tokens, read from its
    fields (libcst's `children` and visitors rebuild every node they pass: three times the cost)."""
    kind = type(node)
    fields = _FIELDS.get(kind)
    if fields is None:
        fields = _FIELDS[kind] = tuple(kind.__dataclass_fields__)
    found: list[cst.CSTNode] = []
    for name in fields:
        value = getattr(node, name)
        value_type = type(value)
        if value_type in _NODES:
            found.append(value)
        elif value_type is tuple or value_type is list:
            found.extend(v for v in value if type(v) in _NODES)
    return found


def walk(node: cst.CSTNode):
    """`node` and everything in it, in source order."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(children(current)))


def source_of(node: cst.CSTNode) -> str:
    """The code of `node`, as written."""
    return _EMPTY_MODULE.code_for_node(node)


def literal_string(node: cst.BaseExpression) -> str | None:
    """The value of a string (or bytes) literal, else None."""
    if isinstance(node, (cst.SimpleString, cst.ConcatenatedString)):
        try:
            value = node.evaluated_value
        except Exception:  # noqa: BLE001 - f-strings inside a concatenation have no static value
            return None
        if isinstance(value, bytes):
            return value.decode("latin-1")
        return value
    return None


def literal_int(node: cst.BaseExpression) -> int | None:
    if isinstance(node, cst.Integer):
        return int(node.evaluated_value)
    return None


def is_loopback(host: str) -> bool:
    host = host.strip().lower()
    return host in LOOPBACK_HOSTS or host.startswith("127.")


def is_wildcard(host: str) -> bool:
    return host.strip().lower() in WILDCARD_HOSTS


def called_name(func: cst.BaseExpression) -> str | None:
    """The last name of what is called: `connect` for `sock.connect(...)` or `connect(...)`."""
    if isinstance(func, cst.Attribute):
        return func.attr.value
    if isinstance(func, cst.Name):
        return func.value
    return None


def method_name(call: cst.Call) -> str | None:
    """`bind` for `sock.bind(...)`; None when the call is not a method call."""
    return call.func.attr.value if isinstance(call.func, cst.Attribute) else None


def keyword(call: cst.Call, name: str) -> cst.Arg | None:
    return next((arg for arg in call.args if arg.keyword is not None and arg.keyword.value == name), None)


def keywords(call: cst.Call) -> set[str]:
    return {arg.keyword.value for arg in call.args if arg.keyword is not None}


def positional(call: cst.Call) -> list[cst.Arg]:
    """The plain positional arguments (no `*args`), in order."""
    return [arg for arg in call.args if arg.keyword is None and arg.star == ""]


def has_star(call: cst.Call) -> bool:
    return any(arg.star for arg in call.args)


def argument(call: cst.Call, index: int, name: str) -> cst.Arg | None:
    """The argument at position `index` or named `name` (a plain call without `*args` before it)."""
    found = keyword(call, name)
    if found is not None:
        return found
    for position, arg in enumerate(call.args):
        if arg.star or arg.keyword is not None:
            return None
        if position == index:
            return arg
    return None


def is_address_tuple(node: cst.BaseExpression) -> bool:
    """`(host, port)` or `(host, port, flowinfo, scope_id)` written out."""
    return isinstance(node, cst.Tuple) and len(node.elements) in (2, 4) and all(
        isinstance(e, cst.Element) for e in node.elements
    )


def call_to(name: cst.Name | cst.Attribute | str, *args: cst.BaseExpression | cst.Arg) -> cst.Call:
    """`name(args...)` as a new node."""
    func = cst.Name(name) if isinstance(name, str) else name
    return cst.Call(func=func, args=[a if isinstance(a, cst.Arg) else cst.Arg(a) for a in args])


# Calls whose arguments name a type rather than use a value: a replacement there would change the check.
_TYPE_CALLS = frozenset(["isinstance", "issubclass", "super", "type", "id", "cast"])
# A subscript's elements are types (`Callable[[Info], socket.socket]`, `Optional[socket.socket]`) or keys
# (`handlers[socket.socket]`): neither is a value a vsock version stands in for.
_NOT_VALUES = (cst.Import, cst.ImportFrom, cst.ImportAlias, cst.Annotation, cst.AssignTarget, cst.Del,
               cst.ComparisonTarget, cst.Comparison, cst.AsName, cst.Global, cst.Nonlocal, cst.SubscriptElement)


# node type -> the field that holds a name the node defines rather than uses (libcst's node classes are
# final: a lookup by exact type is an isinstance test)
_NAMING_FIELD = {cst.FunctionDef: "name", cst.ClassDef: "name", cst.Param: "name", cst.Arg: "keyword",
                 cst.Attribute: "attr", cst.NamedExpr: "target", cst.MatchAs: "name", cst.MatchStar: "name",
                 cst.MatchKeywordElement: "key"}
# ... and the field that holds a name stored into, or an object whose attribute is what is used.
_NOT_VALUE_FIELD = {cst.Attribute: "value", cst.AugAssign: "target", cst.AnnAssign: "target", cst.For: "target",
                    cst.CompFor: "target"}


def _held_in(node: cst.CSTNode, parent: cst.CSTNode | None, fields: dict[type, str]) -> bool:
    field = fields.get(type(parent))
    return field is not None and getattr(parent, field) is node


def is_name_of_definition(node: cst.BaseExpression, parent: cst.CSTNode | None) -> bool:
    """`node` names something rather than refers to it: a def or class name, a parameter, a keyword
    argument's name, an attribute's name (`a.socket`), a walrus or match target."""
    return _held_in(node, parent, _NAMING_FIELD)


def is_value_use(node: cst.BaseExpression, parents, names) -> bool:
    """Whether a name is used as a value that a vsock version may stand in for: called, passed,
    assigned, returned, a default, a base class. Not a definition's or parameter's or keyword's own
    name, not in imports, annotations, subscripts (`Callable[[Info], socket.socket]`), assignment
    targets, `del`, comparisons, as the object of an attribute (`HTTPServer.protocol_version`), or as an
    argument of isinstance/issubclass/super/type/cast or of a runtime call (which would wrap it twice),
    nor a mock's spec or the object a call patches or reads an attribute of (_is_spec_or_target)."""
    parent = parents(node)
    if is_name_of_definition(node, parent) or _held_in(node, parent, _NOT_VALUE_FIELD):
        return False
    child = node
    for ancestor in parents.ancestors(node):
        if isinstance(ancestor, _NOT_VALUES):
            return False
        if isinstance(ancestor, cst.Call) and child is not ancestor.func:
            func = ancestor.func
            called = func.value if isinstance(func, cst.Name) else func.attr.value if isinstance(func, cst.Attribute) \
                else None  # `typing.cast(socket.socket, x)` as well as `cast(...)`
            if called in _TYPE_CALLS or names.is_runtime_name(func):
                return False
            return not (isinstance(child, cst.Arg) and _is_spec_or_target(ancestor, child, called))
        if isinstance(ancestor, (cst.BaseSmallStatement, cst.BaseCompoundStatement, cst.Param, cst.Lambda)):
            return True
        child = ancestor
    return True


# What a call takes as a type or as an object to patch, not as a factory it will call: a mock's spec
# (`create_autospec(socket.socket, instance=True)`, `Mock(spec=socket.socket)`) and the object whose
# attribute is replaced (`patch.object(socket.socket, "connect")`, `monkeypatch.setattr(socket, ...)`): the
# program's patch must reach the real object, which ported code uses too (a vsock socket is a
# socket.socket; the runtime honours a replaced resolver). (`getattr(socket, name)` reads a function by
# name: a value.)
_SPEC_FIRST = frozenset(["create_autospec", "Mock", "MagicMock", "NonCallableMock", "NonCallableMagicMock", "AsyncMock",
                         "wraps"])  # (functools.wraps copies a function's name and signature, and never calls it)
_TARGET_FIRST = frozenset(["setattr", "delattr"])
_PATCH_TARGET_FIRST = frozenset(["object", "multiple"])  # of `patch` only: another `.object(...)` may call it


def _is_spec_or_target(call: cst.Call, arg: cst.Arg, called: str | None) -> bool:
    if arg.keyword is not None:
        return arg.keyword.value in ("spec", "spec_set")
    if arg.star or not call.args or call.args[0] is not arg:
        return False
    if called in _PATCH_TARGET_FIRST:
        owner = call.func.value if isinstance(call.func, cst.Attribute) else None
        owner = owner.attr if isinstance(owner, cst.Attribute) else owner
        return isinstance(owner, cst.Name) and owner.value == "patch"
    return called in _SPEC_FIRST or called in _TARGET_FIRST
