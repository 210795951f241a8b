"""Turn results into text: unified diffs, finding lines and the summary. Knows results, not rules."""

from __future__ import annotations

import difflib
import itertools
import os
from pathlib import Path

from rich.console import Console
from rich.text import Text

from vsockport import cache
from vsockport.engine import FileResult, RunResult
from vsockport.results import State


def display_path(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)


def _decode(data: bytes | None, encoding: str) -> str:
    if data is None:
        return ""
    try:
        return data.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        return data.decode("utf-8", "replace")


def unified_diff(result: FileResult) -> str:
    name = display_path(result.path).replace(os.sep, "/")
    headers = f"--- {'/dev/null' if result.old is None else f'a/{name}'}\n+++ b/{name}\n"
    hunks = cache.load_diff(result.cache_key) if result.cache_key else None
    if hunks is None:
        hunks = _hunks(result)
        if result.cache_key:
            cache.store_diff(result.cache_key, hunks)
    return headers + hunks


def _hunks(result: FileResult) -> str:
    """The unified diff of a result without its two header lines (they name the file)."""
    old = _decode(result.old, result.encoding).splitlines(keepends=True)
    new = _decode(result.new, result.encoding).splitlines(keepends=True)
    lines = []
    for line in itertools.islice(difflib.unified_diff(old, new), 2, None):
        if not line.endswith("\n"):
            line += "\n\\ No newline at end of file\n"
        lines.append(line)
    return "".join(lines)


def print_diff(console: Console, text: str) -> None:
    if not console.is_terminal:
        console.file.write(text)
        return
    for line in text.splitlines():
        style = (
            "bold" if line.startswith(("---", "+++")) else
            "cyan" if line.startswith("@@") else
            "green" if line.startswith("+") else
            "red" if line.startswith("-") else ""
        )
        console.print(Text(line, style=style), soft_wrap=True, highlight=False)


def finding_lines(run: RunResult, *, applied: bool) -> list[tuple[str, str]]:
    """(text, style) per finding and error, in path order."""
    lines = []
    for path, message in run.errors:
        lines.append((f"{display_path(path)}: error: {message}", "red"))
    for result in sorted(run.files, key=lambda r: str(r.path)):
        shown = display_path(result.path)
        if result.error:
            where = f"{shown}:{result.error_at[0]}:{result.error_at[1]}" if result.error_at else f"{shown}: error"
            lines.append((f"{where}: {result.error}", "red"))
        for f in result.findings:
            state = f.shown_state(applied)
            lines.append((f"{shown}:{f.line}:{f.column}: {f.code} {f.message} [{state}]", "yellow" if f.counts else ""))
    return lines


def summary(run: RunResult, *, applied: bool) -> str:
    changed = len(run.changed)
    review = sum(1 for _, f in run.findings if f.state is State.NEEDS_REVIEW)
    verb = "changed" if applied else "would change"
    parts = [f"{run.scanned} file{'s' if run.scanned != 1 else ''} scanned", f"{changed} {verb}"]
    runtime = [r for r in run.changed if r.is_runtime]
    if runtime:
        parts.append(f"runtime {'written' if applied else 'to write'}: {', '.join(display_path(r.path) for r in runtime)}")
    parts.append(f"{review} to review")
    held = sum(1 for _, f in run.findings if f.state is State.HELD_BACK)
    if held:
        parts.append(f"{held} unsafe fix{'es' if held != 1 else ''} held back (--unsafe-fixes)")
    parts.append(f"{run.error_count} error{'s' if run.error_count != 1 else ''}")
    return ", ".join(parts)


def exit_code(run: RunResult, *, applied: bool) -> int:
    """0 nothing left to port; 1 changes pending (diff) or findings that need review; 2 errors; 3 both."""
    pending = any(f.counts for _, f in run.findings) or (not applied and bool(run.changed))
    return (1 if pending else 0) | (2 if run.error_count else 0)
