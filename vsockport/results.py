"""The plain, typed data every layer shares: findings, their fixes, the result of porting one module's
bytes (PortResult), of one file (FileResult) and of a run (RunResult).

Rules produce findings, the pipeline fills in their state, and the cache, the reports and the tests all
read the same objects. `State` values are the spellings every output uses.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path


class State(str, Enum):
    FIXABLE = "fixable"  # a fix applies (diff: would apply; rewrite: see FIXED)
    FIXED = "fixed"  # how a FIXABLE finding is shown once the file was written
    NEEDS_REVIEW = "needs-review"  # vsockport cannot port it safely: counts as work left
    HELD_BACK = "held-back"  # an unsafe fix not applied without --unsafe-fixes: counts as work left
    NOTE = "note"  # left alone on purpose: never fails a run

    def __str__(self) -> str:
        return self.value


class Applicability(str, Enum):
    """How safe a fix is, as ruff's Applicability: safe fixes always apply, unsafe ones on request."""

    SAFE = "safe"
    UNSAFE = "unsafe"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Edit:
    """Replace the text from (line, column) up to (end_line, end_column) with `content`: positions are
    1-based, columns count characters, the end is exclusive (as ruff's edits)."""

    line: int
    column: int
    end_line: int
    end_column: int
    content: str


@dataclass(frozen=True)
class Fix:
    applicability: Applicability
    edits: tuple[Edit, ...]


@dataclass(frozen=True)
class Finding:
    code: str
    rule: str
    message: str
    line: int
    column: int
    end_line: int
    end_column: int
    state: State
    fix: Fix | None = None  # the edits proposed (the fix, then its import), in the original file's coordinates
    # (line, column, end line, end column) in the ported text, when the file changed: what `rewrite`
    # reports, as ruff reports what remains against the fixed source.
    ported_at: tuple[int, int, int, int] | None = None

    @property
    def counts(self) -> bool:
        """Work left that makes a run exit 1."""
        return self.state in (State.NEEDS_REVIEW, State.HELD_BACK)

    def shown_state(self, applied: bool) -> State:
        return State.FIXED if applied and self.state is State.FIXABLE else self.state

    @property
    def fix_safety(self) -> str:
        return self.fix.applicability.value if self.fix is not None else "none"

    def at(self, applied: bool) -> tuple[int, int, int, int]:
        """Where the finding is: in the ported text once it is written (`applied`), else in the original."""
        if applied and self.ported_at is not None:
            return self.ported_at
        return (self.line, self.column, self.end_line, self.end_column)

    def to_json(self) -> dict:
        fix = None
        if self.fix is not None:
            fix = {"applicability": self.fix.applicability.value, "edits": [e.__dict__ for e in self.fix.edits]}
        return {**{k: getattr(self, k) for k in ("code", "rule", "message", "line", "column", "end_line", "end_column")},
                "state": self.state.value, "fix": fix, "ported_at": list(self.ported_at) if self.ported_at else None}

    @classmethod
    def from_json(cls, raw: dict) -> "Finding":
        fix = raw["fix"]
        if fix is not None:
            fix = Fix(Applicability(fix["applicability"]), tuple(Edit(**e) for e in fix["edits"]))
        ported_at = tuple(raw["ported_at"]) if raw.get("ported_at") else None
        return cls(**{k: raw[k] for k in ("code", "rule", "message", "line", "column", "end_line", "end_column")},
                   state=State(raw["state"]), fix=fix, ported_at=ported_at)


@dataclass(frozen=True)
class PortResult:
    """What porting one module's bytes gives: its new bytes (None: unchanged), findings in source
    order, the encoding it was read with, whether it now imports the runtime, and whether it also imports
    the runtime beside itself, for when it runs as a script (header.runs_as_script)."""

    new: bytes | None
    findings: tuple[Finding, ...]
    encoding: str
    uses_runtime: bool
    script_runtime: bool = False

    def to_json(self) -> dict:
        return {
            "new": base64.b64encode(self.new).decode() if self.new is not None else None,
            "findings": [f.to_json() for f in self.findings],
            "encoding": self.encoding,
            "uses_runtime": self.uses_runtime,
            "script_runtime": self.script_runtime,
        }

    @classmethod
    def from_json(cls, raw: dict) -> "PortResult":
        new = base64.b64decode(raw["new"]) if raw["new"] is not None else None
        return cls(new, tuple(Finding.from_json(f) for f in raw["findings"]), raw["encoding"], bool(raw["uses_runtime"]),
                   bool(raw.get("script_runtime")))


@dataclass
class FileResult:
    path: Path
    old: bytes | None = None  # None: the file does not exist yet (a runtime file to add)
    new: bytes | None = None  # None: nothing to change
    findings: tuple[Finding, ...] = ()
    error: str | None = None
    error_at: tuple[int, int] | None = None  # (line, column) the error points at, when it has a place
    encoding: str = "utf-8"
    runtime_import: str | None = None  # set when the module (now) imports the runtime
    runtime_path: Path | None = None  # where its runtime goes (for a module); None for a runtime itself
    script_runtime_path: Path | None = None  # the runtime beside a module that also runs as a script
    is_runtime: bool = False
    note: str | None = None  # what the run noticed about the file without porting it
    written: bool = False  # rewrite wrote it
    # For the stat index: the file's signature when read, and its result key ("" = nothing to port).
    signature: list[int] | None = None
    cache_key: str | None = None

    @property
    def changed(self) -> bool:
        return self.new is not None and self.new != self.old

    @property
    def runtime_paths(self) -> tuple[Path, ...]:
        """Every runtime file this module imports (or will)."""
        return tuple(p for p in (self.runtime_path, self.script_runtime_path) if p is not None)


@dataclass
class RunResult:
    files: list[FileResult]
    scanned: int
    errors: list[tuple[Path, str]]  # discovery and write errors: (path, message)
    notes: list[tuple[Path, str]] = field(default_factory=list)  # what the run did besides porting

    @property
    def changed(self) -> list[FileResult]:
        return [f for f in self.files if f.changed]

    @property
    def findings(self) -> list[tuple[FileResult, Finding]]:
        return [(f, finding) for f in self.files for finding in f.findings]

    @property
    def error_count(self) -> int:
        return len(self.errors) + sum(1 for f in self.files if f.error)
