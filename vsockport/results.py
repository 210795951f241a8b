"""The plain, typed data every layer shares: findings, their fixes, and the result of porting one file.

Rules produce findings, the pipeline fills in their state, and the cache, the reports and the tests all
read the same objects. `State` values are the spellings every output uses.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from enum import Enum


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
    fix: Fix | None = None  # the edit proposed, in the original file's coordinates

    @property
    def counts(self) -> bool:
        """Work left that makes a run exit 1."""
        return self.state in (State.NEEDS_REVIEW, State.HELD_BACK)

    def shown_state(self, applied: bool) -> State:
        return State.FIXED if applied and self.state is State.FIXABLE else self.state

    @property
    def fix_safety(self) -> str:
        return self.fix.applicability.value if self.fix is not None else "none"

    def to_json(self) -> dict:
        fix = None
        if self.fix is not None:
            fix = {"applicability": self.fix.applicability.value, "edits": [e.__dict__ for e in self.fix.edits]}
        return {**{k: getattr(self, k) for k in ("code", "rule", "message", "line", "column", "end_line", "end_column")},
                "state": self.state.value, "fix": fix}

    @classmethod
    def from_json(cls, raw: dict) -> "Finding":
        fix = raw["fix"]
        if fix is not None:
            fix = Fix(Applicability(fix["applicability"]), tuple(Edit(**e) for e in fix["edits"]))
        return cls(**{k: raw[k] for k in ("code", "rule", "message", "line", "column", "end_line", "end_column")},
                   state=State(raw["state"]), fix=fix)


@dataclass(frozen=True)
class PortResult:
    """What porting one module's bytes gives: its new bytes (None: unchanged), findings in source
    order, the encoding it was read with, and whether it now imports the runtime."""

    new: bytes | None
    findings: tuple[Finding, ...]
    encoding: str
    uses_runtime: bool

    def to_json(self) -> dict:
        return {
            "new": base64.b64encode(self.new).decode() if self.new is not None else None,
            "findings": [f.to_json() for f in self.findings],
            "encoding": self.encoding,
            "uses_runtime": self.uses_runtime,
        }

    @classmethod
    def from_json(cls, raw: dict) -> "PortResult":
        new = base64.b64decode(raw["new"]) if raw["new"] is not None else None
        return cls(new, tuple(Finding.from_json(f) for f in raw["findings"]), raw["encoding"], bool(raw["uses_runtime"]))
