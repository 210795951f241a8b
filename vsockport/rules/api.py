"""The rule contract: what a rule is, what it may know, and the one thing it does: report.

A rule is a class in its own file under `vsockport/rules/`:

- a docstring in fixed sections (What it does / Why / Example / Fix safety), shown by
  `vsockport explain`;
- `examples`: before/after pairs that the test suite runs (Fixit's VALID/INVALID cases);
- `visit_<Node>(node)` (and, rarely, `leave_<Node>(node)`) methods, called with libcst nodes of the
  original code, that call `self.report(...)`.

`report(node, message, replacement=...)` records a finding, optionally with a proposed replacement for
`node`, as data (Fixit's `report(node, replacement=...)`, ruff's `Fix`). The pipeline decides which
fixes apply (suppressions, safety, conflicts) and applies them; a rule never sees another rule's
edits, never changes anything shared, and never steers the engine.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import ClassVar, Mapping, Sequence

import libcst as cst

from vsockport.options import PortOptions
from vsockport.results import Applicability
from vsockport.rules.helpers import children, walk
from vsockport.rules.names import ModuleNames

# The name a ported module binds to the vsock address family, as VMware's porting guide does.
AF_NAME = "afVMCI"
AF_FACTORY = "VMCISock_GetAFValue"

# What the runtime module exports that fixes may use (a test keeps it equal to the runtime's __all__).
RUNTIME_EXPORTS = frozenset([
    "VMADDR_CID_ANY", "VMADDR_PORT_ANY", "VMADDR_CID_HYPERVISOR", "VMADDR_CID_LOCAL", "VMADDR_CID_HOST",
    "VMADDR_FLAG_TO_HOST", "SO_VM_SOCKETS_BUFFER_SIZE", "SO_VM_SOCKETS_BUFFER_MIN_SIZE",
    "SO_VM_SOCKETS_BUFFER_MAX_SIZE", "SO_VM_SOCKETS_CONNECT_TIMEOUT", "VMCISock_GetAFValue",
    "VMCISock_ReleaseAFValueFd", "VMCISock_GetLocalCID", "VsockAddressError", "VsockStrictError",
    "VsockHost", "VsockHybridHost", "VsockSocket", "sockaddr_vm", "vsock_backend", "vsock_runtime_version", "vsock_local_cid",
    "vsock_cid", "vsock_bind_cid", "vsock_address", "getaddrinfo", "vsock_gethostbyname", "vsock_gethostbyname_ex", "vsock_socket", "vsock_family",
    "vsock_ip_family", "vsock_socket_module", "vsock_connect", "set_connect_timeout", "get_connect_timeout",
    "create_vsock_connection", "create_vsock_server", "vsock_diagnose", "setsockopt_or_skip",
    "VsockServerMixin", "vsock_server_class", "vsock_make_server", "vsock_client_class", "vsock_urlopen",
    "vsock_open_connection", "vsock_start_server", "vsock_loop", "vsock_loop_create_connection",
    "vsock_loop_create_server", "vsock_loop_getaddrinfo", "vsock_getaddrinfo",
])
# Names a ported module defines itself, once, after importing what they need from the runtime.
DEFINITIONS: Mapping[str, tuple[str, str]] = {AF_NAME: (AF_FACTORY, f"{AF_NAME} = {AF_FACTORY}()")}


@dataclass(frozen=True)
class Example:
    """`before` ported by the rule alone gives `after` (None: left unchanged) and reports `codes`."""

    before: str
    after: str | None = None
    codes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Report:
    """One thing a rule saw: a finding about `node`, with an optional replacement for it."""

    code: str
    rule: str
    node: cst.CSTNode
    message: str
    replacement: cst.CSTNode | None = None
    applicability: Applicability = Applicability.SAFE
    note: bool = False  # left alone on purpose: informational, never fails a run
    keep: cst.CSTNode | None = None  # a node (holding `node`) no rule may touch or report inside
    needs: frozenset[str] = frozenset()  # runtime names the replacement uses
    audit: bool = False  # said of the ported code (see Rule.audits)


class Parents:
    """The parent of each node of one tree, computed on first use (most trees are never asked)."""

    def __init__(self, tree: cst.CSTNode | None) -> None:
        self._tree = tree
        self._parents: dict[cst.CSTNode, cst.CSTNode] | None = None

    def __call__(self, node: cst.CSTNode) -> cst.CSTNode | None:
        if self._parents is None:
            self._parents = {}
            for parent in walk(self._tree) if self._tree is not None else ():
                for child in children(parent):
                    self._parents[child] = parent
        return self._parents.get(node)

    def ancestors(self, node: cst.CSTNode):
        parent = self(node)
        while parent is not None:
            yield parent
            parent = self(parent)


def runtime_name(name: str) -> cst.Name:
    """A reference to a name from the runtime module (the pipeline adds the import)."""
    if name not in RUNTIME_EXPORTS and name not in DEFINITIONS:
        raise ValueError(f"the runtime does not export {name!r}")
    return cst.Name(name)


def af_family() -> cst.Name:
    """`afVMCI`, the vsock family, defined once per ported module."""
    return runtime_name(AF_NAME)


def _runtime_names_in(node: cst.CSTNode) -> frozenset[str]:
    return frozenset(n.value for n in walk(node) if isinstance(n, cst.Name)
                     and (n.value in RUNTIME_EXPORTS or n.value in DEFINITIONS))


class Rule:
    """Base class; see the module docstring for the contract."""

    code: ClassVar[str] = ""
    name: ClassVar[str] = ""
    fix_safety: ClassVar[str] = "safe"  # "safe", "unsafe", "mixed" (per finding) or "none" (report only)
    examples: ClassVar[Sequence[Example]] = ()
    # Byte strings of which at least one must occur in a file for this rule to have anything to do.
    triggers: ClassVar[Sequence[bytes]] = (b"socket",)
    # Byte strings of which at least one occurs, outside strings and comments, in every statement this
    # rule changes or reports (local aliases and constants standing for them are added per file).
    # The planner hands libcst only such statements; a test checks every example keeps to it.
    words: ClassVar[Sequence[bytes]] = ()
    # A rule that judges whole functions (VS013): groups of byte strings, a word of each occurring in
    # every function it keeps. Such functions reach libcst whole.
    whole_function_words: ClassVar[tuple[tuple[bytes, ...], ...]] = ()
    # A rule that audits the port (VS016): its findings are taken from the ported code, the last pass
    # of the fix loop, instead of the original. It proposes no fixes.
    audits: ClassVar[bool] = False

    def __init__(self, names: ModuleNames, options: PortOptions, parents: Parents | None = None) -> None:
        self.names = names
        self.options = options
        self.parents = parents or Parents(None)  # node -> the node holding it (computed when first asked)
        self.reports: list[Report] = []

    def report(self, node: cst.CSTNode, message: str, *, replacement: cst.CSTNode | None = None,
               unsafe: bool = False, note: bool = False, keep: cst.CSTNode | None = None) -> None:
        """Record a finding about `node`. With `replacement`, propose it as the node's new code
        (`unsafe`: it may change behaviour beyond the port). With `keep`, leave that node (which
        holds `node`) and everything in it to this rule: other rules' findings and fixes inside are
        dropped, and this finding is a note."""
        if isinstance(replacement, (cst.BaseCompoundStatement, cst.SimpleStatementLine, cst.BaseSuite)):
            raise TypeError("a replacement is an expression or a small statement: a statement line's "
                            "indentation belongs to its block")
        applicability = Applicability.UNSAFE if unsafe else Applicability.SAFE
        needs = _runtime_names_in(replacement) if replacement is not None else frozenset()
        self.reports.append(Report(self.code, self.name, node, message, replacement, applicability,
                                   note or keep is not None, keep, needs, self.audits))

    @classmethod
    def documentation(cls) -> str:
        return inspect.cleandoc(cls.__doc__ or "")

    @classmethod
    def summary(cls) -> str:
        return cls.documentation().splitlines()[0] if cls.__doc__ else ""

    @classmethod
    def words_and_triggers(cls) -> tuple[bytes, ...]:
        return (*cls.triggers, *cls.words)
