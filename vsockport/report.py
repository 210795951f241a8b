"""Turn results into text: unified diffs, finding lines and the summary. Knows results, not rules."""

from __future__ import annotations

import os
import re
from pathlib import Path

from vsockport import cache
from vsockport.console import Output
from vsockport.results import FileResult, RunResult
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


_LINE = re.compile(r"[^\n]*\n|[^\n]+\Z")


def _lines(text: str) -> list[str]:
    """Lines as git and patch count them: ended by \\n only. (str.splitlines also breaks at form feeds,
    vertical tabs and Unicode separators, which would make a diff that `git apply` refuses.)"""
    return _LINE.findall(text)


def _hunks(result: FileResult) -> str:
    """The unified diff of a result without its two header lines (they name the file)."""
    old = _lines(_decode(result.old, result.encoding))
    new = _lines(_decode(result.new, result.encoding))
    lines = []
    from vsockport.linediff import unified_hunks  # only for a changed file

    for line in unified_hunks(old, new):
        if not line.endswith("\n"):
            line += "\n\\ No newline at end of file\n"
        lines.append(line)
    return "".join(lines)


def print_diff(console: Output, text: str) -> None:
    if not console.color:
        console.file.write(text)
        return
    for line in text.splitlines():
        style = (
            "bold" if line.startswith(("---", "+++")) else
            "cyan" if line.startswith("@@") else
            "green" if line.startswith("+") else
            "red" if line.startswith("-") else ""
        )
        console.print(line, style or None)


def finding_lines(run: RunResult, *, applied: bool, show_fixes: bool = False) -> list[tuple[str, str]]:
    """(text, style) per error and finding, in path order. Fixable (and fixed) findings are listed with
    `show_fixes` only: the diff shows them (as ruff lists its fixes only with --show-fixes)."""
    lines = []
    for path, message in run.errors:
        lines.append((f"{display_path(path)}: error: {message}", "red"))
    for path, message in run.notes:
        lines.append((f"{display_path(path)}: note: {message}", ""))
    for result in sorted(run.files, key=lambda r: str(r.path)):
        shown = display_path(result.path)
        if result.error:
            where = f"{shown}:{result.error_at[0]}:{result.error_at[1]}" if result.error_at else f"{shown}: error"
            lines.append((f"{where}: {result.error}", "red"))
        for f in result.findings:
            if f.state is State.FIXABLE and not show_fixes:
                continue
            state = f.shown_state(applied and result.written)
            line, column, _, _ = f.at(applied and result.written)  # in the rewritten file, once written
            lines.append((f"{shown}:{line}:{column}: {f.code} {f.message} [{state}]", "yellow" if f.counts else ""))
    return lines


def runtime_line(result: FileResult, *, applied: bool) -> str:
    """One line for a runtime file instead of its diff (the diff shows with --show-runtime)."""
    from vsockport.runtime import inject

    lines = (result.new or b"").count(b"\n")
    if result.old is None:
        what = f"new file, {lines} lines"
    else:
        before, after = inject.runtime_version(result.old), inject.runtime_version(result.new or b"")
        what = f"updated from version {before} to {after}" if before != after else f"updated ({lines} lines)"
    verb = "written" if applied else "to write"
    return f"runtime {verb}: {display_path(result.path)} ({what}; --show-runtime shows it)"


def statistic_counts(run: RunResult, *, applied: bool) -> list[dict]:
    """Findings counted per code and state, most frequent first (ruff's --statistics)."""
    counts: dict[tuple[str, str, str], int] = {}
    for result, f in run.findings:
        key = (f.code, f.rule, f.shown_state(applied and result.written).value)
        counts[key] = counts.get(key, 0) + 1
    return [{"code": code, "rule": rule, "state": state, "count": count}
            for (code, rule, state), count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))]


def statistics(run: RunResult, *, applied: bool) -> list[str]:
    return [f"{c['count']:6d}  {c['code']}  {c['rule']} [{c['state']}]" for c in statistic_counts(run, applied=applied)]


def error_lines(run: RunResult) -> list[str]:
    """The errors of finding_lines alone: what no option hides."""
    return [text for text, style in finding_lines(run, applied=False) if style == "red"]


def summary(run: RunResult, *, applied: bool) -> str:
    changed = [r for r in run.changed if r.written] if applied else run.changed
    review = sum(1 for _, f in run.findings if f.state is State.NEEDS_REVIEW)
    fixes = sum(1 for r, f in run.findings if f.state is State.FIXABLE and (r.written or not applied))
    verb = "changed" if applied else "would change"
    ported = sum(1 for r in changed if not r.is_runtime)  # the runtime is counted in its own part, below
    parts = [f"{run.scanned} file{'s' if run.scanned != 1 else ''} scanned", f"{ported} {verb}"]
    if fixes:
        parts.append(f"{fixes} fix{'es' if fixes != 1 else ''}{'' if applied else ' to apply'}")
    runtime = [r for r in changed if r.is_runtime]
    if runtime:
        where = (", ".join(display_path(r.path) for r in runtime) if len(runtime) <= 3
                 else f"{len(runtime)} files, one per import root")
        parts.append(f"runtime {'written' if applied else 'to write'}: {where}")
    parts.append(f"{review} to review")
    held = sum(1 for _, f in run.findings if f.state is State.HELD_BACK)
    if held:
        parts.append(f"{held} unsafe fix{'es' if held != 1 else ''} held back (--unsafe-fixes)")
    parts.append(f"{run.error_count} error{'s' if run.error_count != 1 else ''}")
    return ", ".join(parts)


def exit_code(run: RunResult, *, applied: bool, exit_zero: bool = False) -> int:
    """0 nothing left to port; 1 changes pending (diff) or findings that need review; 2 errors; 3 both.
    `exit_zero` drops the 1 (errors still count)."""
    pending = any(f.counts for _, f in run.findings) or (not applied and bool(run.changed))
    return (1 if pending and not exit_zero else 0) | (2 if run.error_count else 0)
