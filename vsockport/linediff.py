"""A unified diff of two lists of lines that costs about what the lines cost.

difflib's SequenceMatcher is quadratic on a long module with many small changes (a 4,000-function
file: 25 s for its diff alone). A port changes lines here and there and keeps the rest, so the lines
that occur once in each version anchor the match (patience diff, as git's `--patience`): anchors
that keep their order split the files into short stretches, and difflib matches only those. What
comes out is a diff in difflib's own format, with its three lines of context.
"""

from __future__ import annotations

import bisect
import difflib
from collections import Counter
from typing import Iterator

Opcode = tuple[str, int, int, int, int]

# Stretches this short go to difflib whole: its results there are the familiar ones, and it is fast.
_SMALL = 64


def unified_hunks(old: list[str], new: list[str], context: int = 3) -> Iterator[str]:
    """The lines of `difflib.unified_diff(old, new)` after its two header lines."""
    matcher = _Matcher(old, new)
    for group in matcher.get_grouped_opcodes(context):
        first, last = group[0], group[-1]
        yield f"@@ -{_range(first[1], last[2])} +{_range(first[3], last[4])} @@\n"
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                yield from (" " + line for line in old[i1:i2])
                continue
            if tag in ("replace", "delete"):
                yield from ("-" + line for line in old[i1:i2])
            if tag in ("replace", "insert"):
                yield from ("+" + line for line in new[j1:j2])


def _range(start: int, stop: int) -> str:
    """A hunk's line range as unified diffs write it (difflib's _format_range_unified)."""
    beginning, length = start + 1, stop - start
    if length == 1:
        return f"{beginning}"
    if not length:
        beginning -= 1  # an empty range begins at the line before it
    return f"{beginning},{length}"


class _Matcher(difflib.SequenceMatcher):
    """difflib's grouping of opcodes into hunks, over opcodes found by anchoring on unique lines."""

    def __init__(self, old: list[str], new: list[str]) -> None:
        super().__init__(None, old, new, autojunk=False)
        self._old, self._new = old, new

    def get_opcodes(self) -> list[Opcode]:
        if self.opcodes is None:
            self.opcodes = _merge(_opcodes(self._old, self._new, 0, len(self._old), 0, len(self._new)))
        return self.opcodes


def _opcodes(a: list[str], b: list[str], alo: int, ahi: int, blo: int, bhi: int) -> list[Opcode]:
    """Opcodes of a[alo:ahi] against b[blo:bhi], in order. A stack, not recursion: a long file has
    many anchors, nested as deep as its stretches are split."""
    found: list[Opcode] = []
    stack: list[tuple] = [("split", alo, ahi, blo, bhi)]
    while stack:
        item = stack.pop()
        if item[0] == "done":
            found.append(item[1])
            continue
        _, alo, ahi, blo, bhi = item
        start_a, start_b, end_a, end_b = alo, blo, ahi, bhi
        while alo < ahi and blo < bhi and a[alo] == b[blo]:  # a common start
            alo, blo = alo + 1, blo + 1
        while ahi > alo and bhi > blo and a[ahi - 1] == b[bhi - 1]:  # a common end
            ahi, bhi = ahi - 1, bhi - 1
        pieces: list[tuple] = [("done", ("equal", start_a, alo, start_b, blo))]
        if alo == ahi or blo == bhi:
            pieces.append(("done", ("delete" if blo == bhi else "insert", alo, ahi, blo, bhi)))
        else:
            anchors = _anchors(a, b, alo, ahi, blo, bhi) if (ahi - alo) + (bhi - blo) > _SMALL else []
            if anchors:
                previous_a, previous_b = alo, blo
                for i, j in anchors:
                    pieces.append(("split", previous_a, i, previous_b, j))
                    pieces.append(("done", ("equal", i, i + 1, j, j + 1)))
                    previous_a, previous_b = i + 1, j + 1
                pieces.append(("split", previous_a, ahi, previous_b, bhi))
            else:
                matcher = difflib.SequenceMatcher(None, a[alo:ahi], b[blo:bhi], autojunk=False)
                pieces += [("done", (tag, i1 + alo, i2 + alo, j1 + blo, j2 + blo))
                           for tag, i1, i2, j1, j2 in matcher.get_opcodes()]
        pieces.append(("done", ("equal", ahi, end_a, bhi, end_b)))
        stack.extend(reversed(pieces))
    return found


def _anchors(a: list[str], b: list[str], alo: int, ahi: int, blo: int, bhi: int) -> list[tuple[int, int]]:
    """Lines that occur exactly once in each stretch, matched, in the longest run that keeps their
    order in both (a longest increasing subsequence, by patience sorting)."""
    count_a = Counter(a[alo:ahi])
    count_b = Counter(b[blo:bhi])
    where_b = {b[j]: j for j in range(blo, bhi) if count_b[b[j]] == 1}
    pairs = [(i, where_b[a[i]]) for i in range(alo, ahi) if count_a[a[i]] == 1 and a[i] in where_b]
    if not pairs:
        return []
    tops: list[int] = []  # the smallest b-position ending a run of each length
    ends: list[int] = []  # the pair index at each top
    back: list[int] = []  # each pair's predecessor in its run
    for index, (_, j) in enumerate(pairs):
        length = bisect.bisect_left(tops, j)
        back.append(ends[length - 1] if length else -1)
        if length == len(tops):
            tops.append(j)
            ends.append(index)
        else:
            tops[length], ends[length] = j, index
    run, index = [], ends[-1]
    while index >= 0:
        run.append(pairs[index])
        index = back[index]
    return run[::-1]


def _merge(opcodes: list[Opcode]) -> list[Opcode]:
    """Adjacent opcodes of one kind as one (anchors split equal stretches into pieces), and a delete
    next to an insert as the replace difflib would write."""
    merged: list[Opcode] = []
    for tag, i1, i2, j1, j2 in opcodes:
        if i1 == i2 and j1 == j2:
            continue
        if merged:
            last = merged[-1]
            if last[0] == tag and last[2] == i1 and last[4] == j1:
                merged[-1] = (tag, last[1], i2, last[3], j2)
                continue
            if {last[0], tag} <= {"delete", "insert", "replace"} and last[0] != "equal" and tag != "equal":
                merged[-1] = ("replace", last[1], i2, last[3], j2)
                continue
        merged.append((tag, i1, i2, j1, j2))
    return merged
