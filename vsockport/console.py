"""Styled lines on a stream, for the diff/rewrite output that every run prints.

A porting run prints plain lines with at most one style each; importing rich for that costs more CPU
than a run over an already-ported file (pre-commit and editors run vsockport on every save). rich
still draws what needs it: the progress bar, the rules table, `doctor`.

Color follows https://no-color.org and the FORCE_COLOR convention: `--color`/`--no-color` decide;
else a non-empty NO_COLOR turns color off, a non-empty FORCE_COLOR turns it on, and otherwise a
terminal gets color and a pipe or file does not.
"""

from __future__ import annotations

import os
import sys
from typing import TextIO

_ANSI = {"bold": "1", "red": "31", "green": "32", "yellow": "33", "cyan": "36", "dim": "2"}


def wants_color(stream: TextIO, choice: bool | None) -> bool:
    if choice is not None:
        return choice
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class Output:
    """One output stream: `print(text, style)` writes a line, in color only when color is wanted."""

    def __init__(self, stream: TextIO, color: bool | None = None) -> None:
        self.file = stream
        self.color = wants_color(stream, color)

    @property
    def is_terminal(self) -> bool:
        try:
            return self.file.isatty()
        except (AttributeError, ValueError):
            return False

    def print(self, text: str, style: str | None = None) -> None:
        if self.color and style:
            codes = ";".join(_ANSI[word] for word in style.split() if word in _ANSI)
            if codes:
                text = f"\x1b[{codes}m{text}\x1b[0m"
        self.file.write(text + "\n")


def outputs(color: bool | None) -> tuple[Output, Output]:
    """stdout and stderr."""
    return Output(sys.stdout, color), Output(sys.stderr, color)
