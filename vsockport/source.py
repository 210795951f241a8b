"""One module's text: its bytes, encoding, lines (as Python counts them) and its code without strings.

Lines end at `\\r\\n`, `\\r` or `\\n`, as both `ast` and libcst count them, so a line number means the
same thing to the planner, the rules and the reports.
"""

from __future__ import annotations

import bisect
import io
import re
import sys
import tokenize

BOM = b"\xef\xbb\xbf"
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_LINE_BREAK_BYTES = re.compile(rb"\r\n|\r|\n")

# Comments and string literals (any prefix, triple-quoted included), matched left to right so that a
# quote inside a comment or a hash inside a string is consumed by the construct that contains it.
# Bodies are "unrolled loops": runs of plain characters between escapes or lone quotes. A body loop
# never consumes what ends its literal, so it need not backtrack; Python 3.11+ is told so (possessive
# `*+`), and then keeps no backtracking state. A lazy `(?:\\.|[^\\])*?` took 470 MiB and half a second
# on moto's 4 MB string literal.
_ONCE = "+" if sys.version_info >= (3, 11) else ""
_STRINGS_AND_COMMENTS = re.compile(
    (
        r"#[^\r\n]*"
        r"|[rRbBuUfF]{0,2}(?:"
        r"'''[^'\\]*+(?:(?:\\.|'(?!''))[^'\\]*+)*+'''"
        r'|"""[^"\\]*+(?:(?:\\.|"(?!""))[^"\\]*+)*+"""'
        r"|'[^'\\\r\n]*+(?:\\.[^'\\\r\n]*+)*+'"
        r'|"[^"\\\r\n]*+(?:\\.[^"\\\r\n]*+)*+")'
    ).replace("*+", "*" + _ONCE).encode(),
    re.S,
)


class DecodeFailure(Exception):
    """The bytes cannot be read as Python source text (bad coding cookie, invalid bytes)."""


def code_only(data: bytes) -> bytes:
    """`data` with comments and string literals removed, line breaks kept."""
    return _STRINGS_AND_COMMENTS.sub(lambda m: b"".join(_LINE_BREAK_BYTES.findall(m.group())), data)


def _starts(text, pattern) -> list[int]:
    return [0, *(m.end() for m in pattern.finditer(text))]


class LineIndex:
    """1-based (line, column) <-> offset in a text; columns and offsets count characters."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.starts = _starts(text, _LINE_BREAK)

    def offset(self, line: int, column: int = 1) -> int:
        """Offset of (line, column); one past the last line gives the end of the text."""
        if line - 1 >= len(self.starts):
            return len(self.text)
        return min(self.starts[line - 1] + column - 1, len(self.text))

    def position(self, offset: int) -> tuple[int, int]:
        index = bisect.bisect_right(self.starts, offset) - 1
        return index + 1, offset - self.starts[index] + 1


class Source:
    """A module as text (str, without a BOM), with line and offset arithmetic."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        try:
            self.encoding = tokenize.detect_encoding(io.BytesIO(data).readline)[0]
            self.codec = "utf-8" if self.encoding == "utf-8-sig" else self.encoding
            self.text = data[len(BOM):].decode(self.codec) if data.startswith(BOM) else data.decode(self.codec)
        except (SyntaxError, LookupError, UnicodeDecodeError) as exc:
            raise DecodeFailure(str(exc)) from None
        self.bom = BOM if data.startswith(BOM) else b""
        self.index = LineIndex(self.text)
        first_break = _LINE_BREAK.search(self.text)
        self.newline = first_break.group() if first_break else "\n"  # as libcst picks it
        self._code: bytes | None = None
        self._code_starts: list[int] | None = None

    # -- lines and offsets (characters of `text`) -----------------------------------------------
    @property
    def line_count(self) -> int:
        """Lines, counting a last line without a line break (but not the empty string after one)."""
        starts = self.index.starts
        return len(starts) - (1 if starts[-1] == len(self.text) and len(starts) > 1 else 0)

    def offset(self, line: int, column: int = 1) -> int:
        return self.index.offset(line, column)

    def position(self, offset: int) -> tuple[int, int]:
        return self.index.position(offset)

    def lines(self, start: int, end: int) -> str:
        """Lines `start`..`end` (1-based, inclusive), line breaks included."""
        return self.text[self.offset(start) : self.offset(end + 1)]

    def encode(self, text: str) -> bytes:
        return self.bom + text.encode(self.codec)

    # -- code without strings and comments (bytes, for word tests) ----------------------------
    @property
    def code(self) -> bytes:
        if self._code is None:
            self._code = code_only(self.data)
        return self._code

    def code_lines(self, start: int, end: int) -> bytes:
        if self._code_starts is None:
            self._code_starts = [*_starts(self.code, _LINE_BREAK_BYTES), len(self.code)]
        last = len(self._code_starts) - 1
        return self.code[self._code_starts[min(start - 1, last)] : self._code_starts[min(end, last)]]
