"""What becomes of the reports of one pass: the one place where fixes are filtered, and the text edits
that apply them.

`decide` gives each report its state and says which fixes apply now: a suppression comment drops the
report; a node a rule keeps whole hides everything inside it; a report without a replacement needs
review (or is a note); an unsafe fix is held back without `--unsafe-fixes`; of the fixes left, those
whose edits overlap an earlier one wait for the next pass of the fix loop, and a replacement that prints
as the node does is no edit at all. `apply` applies the chosen edits as text, as ruff applies fixes.
"""

from __future__ import annotations

import bisect
import itertools
from dataclasses import dataclass

from vsockport.errors import Unfaithful
from vsockport.options import PortOptions
from vsockport.results import Applicability, State
from vsockport.rules.api import Report
from vsockport.spans import Spans
from vsockport.suppressions import suppresses

Edit = tuple[int, int, str]  # (start, end, new text) in characters of a region's text


@dataclass(frozen=True)
class Decision:
    report: Report
    state: State
    edit: Edit | None  # applied in this pass (None: not now, or never)


def decide(reports: list[Report], spans: Spans, text: str, line_of, suppressions, options: PortOptions,
           used: dict[int, set[str]]) -> list[Decision]:
    """Each report that is not suppressed or hidden, in source order (earliest, outermost first), with
    its state and, for a fix that applies in this pass, its edit. `used` collects the suppressions
    that held something back (for VS100)."""
    kept = [spans[r.keep] for r in reports if r.keep is not None]
    decided: list[Decision] = []
    taken_end = -1
    for report in sorted(reports, key=lambda r: (spans[r.node][0], -spans[r.node][1], r.code, r.message)):
        start, end = spans[report.node]
        if report.keep is None and any(k_start <= start and end <= k_end for k_start, k_end in kept):
            continue  # inside a node a rule keeps whole: nothing there is touched or reported
        line = line_of(start)
        if suppresses(suppressions, line, report.code):
            used.setdefault(line, set()).add(report.code)
            continue
        if report.audit and line in suppressions:
            continue  # a line whose findings someone suppressed is theirs: the audit says nothing more
        if report.note:
            decided.append(Decision(report, State.NOTE, None))
        elif report.replacement is None:
            decided.append(Decision(report, State.NEEDS_REVIEW, None))
        elif report.applicability is Applicability.UNSAFE and not options.unsafe_fixes:
            decided.append(Decision(report, State.HELD_BACK, None))
        else:
            edit = None
            if start >= taken_end:  # an overlapping fix waits for the next pass
                printed = spans.printed(report.node)
                if start < 0 or end < 0 or text[start:end] != printed:
                    raise Unfaithful(line_of(max(start, 0)))
                content = spans.code(report.replacement, report.node)
                if content != printed:  # a replacement that prints as the node does changes nothing
                    edit, taken_end = (start, end, content), end
            decided.append(Decision(report, State.FIXABLE, edit))
    return decided


def apply(text: str, edits: list[Edit]) -> str:
    out, position = [], 0
    for start, end, content in sorted(edits, key=lambda e: (e[0], e[1])):
        out.append(text[position:start])
        out.append(content)
        position = end
    out.append(text[position:])
    return "".join(out)


class Pass:
    """The edits (start, end, content) one pass applied to its text, sorted: maps offsets across it.
    Offsets are found by bisection: a pass of thousands of edits maps each offset in log time."""

    def __init__(self, edits: list[Edit]) -> None:
        self.edits = edits
        self._starts = [start for start, _, _ in edits]
        self._shifts = list(itertools.accumulate((len(content) - (end - start) for start, end, content in edits),
                                                 initial=0))  # _shifts[i]: the shift before edit i
        self._new_starts = [start + shift for start, shift in zip(self._starts, self._shifts)]

    def __repr__(self) -> str:
        return f"Pass({self.edits!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Pass) and other.edits == self.edits

    def to_earlier(self, offset: int) -> int:
        """An offset of the text after the pass, in the text before it (inside new text: its start)."""
        at = bisect.bisect_right(self._new_starts, offset) - 1  # the last edit that starts at or before it
        if at < 0:
            return offset
        start, _, content = self.edits[at]
        if offset < self._new_starts[at] + len(content):
            return start
        return offset - self._shifts[at + 1]

    def to_later(self, offset: int) -> int:
        """An offset of the text before the pass, in the text after it (inside a replaced node: its start)."""
        at = bisect.bisect_left(self._starts, offset) - 1  # the last edit that starts before it
        if at < 0:
            return offset
        start, end, _ = self.edits[at]
        if offset < end:
            return start + self._shifts[at]
        return offset + self._shifts[at + 1]
