"""Machine-readable reports for CI and editors: JSON (with a JSON Schema, vsockport/schema/report.json),
GitHub workflow annotations and SARIF 2.1.0.

Each takes the same RunResult that the text report uses. Rule metadata (for SARIF's rule table and each
finding's documentation URL) is passed in as plain descriptions, so this module knows results, not rule
code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable, NamedTuple

from vsockport import __version__
from vsockport.results import FileResult, RunResult
from vsockport.report import display_path
from vsockport.results import Finding, State

FORMATS = ("text", "json", "github", "sarif")
DOCS_URL = "https://github.com/vsockport/vsockport/blob/main/docs/rules.md"
SCHEMA = Path(__file__).parent / "schema" / "report.json"


class RuleInfo(NamedTuple):
    code: str
    name: str
    summary: str
    documentation: str
    fix_safety: str

    @property
    def url(self) -> str:
        return rule_url(self.code, self.name)


def rule_url(code: str, name: str) -> str:
    return f"{DOCS_URL}#{code.lower()}-{name}"


def rule_infos(rules) -> list[RuleInfo]:
    return [RuleInfo(r.code, r.name, r.summary(), r.documentation(), r.fix_safety) for r in rules]


def _posix(path: Path) -> str:
    return display_path(path).replace(os.sep, "/")


def _errors(run: RunResult) -> list[tuple[str, int, int, str]]:
    """(path, line, column, message); line and column are 0 when the error has no position."""
    found = [(_posix(path), 0, 0, message) for path, message in run.errors]
    for result in run.files:
        if result.error:
            line, column = result.error_at or (0, 0)
            found.append((_posix(result.path), line, column, result.error))
    return sorted(found)


def _ordered(run: RunResult) -> list[tuple[FileResult, Finding]]:
    return sorted(run.findings, key=lambda item: (str(item[0].path), item[1].line, item[1].column, item[1].code))


def _state(result: FileResult, finding: Finding, applied: bool) -> State:
    return finding.shown_state(applied and result.written)


def _where(result: FileResult, finding: Finding, applied: bool) -> tuple[int, int, int, int]:
    """The finding's place in the file as it is now: the rewritten file once `rewrite` wrote it."""
    return finding.at(applied and result.written)


def to_json(run: RunResult, *, applied: bool) -> str:
    """One document; its shape is the JSON Schema in vsockport/schema/report.json."""
    findings = []
    for result, f in _ordered(run):
        state = _state(result, f, applied)
        fix = None
        if f.fix is not None and state is not State.FIXED:  # a fix made is in the file now: nothing to apply
            fix = {"applicability": f.fix.applicability.value,
                   "edits": [{"location": {"row": e.line, "column": e.column},
                              "end_location": {"row": e.end_line, "column": e.end_column},
                              "content": e.content} for e in f.fix.edits]}
        line, column, end_line, end_column = _where(result, f, applied)
        findings.append({
            "path": _posix(result.path), "code": f.code, "rule": f.rule, "message": f.message,
            "location": {"row": line, "column": column}, "end_location": {"row": end_line, "column": end_column},
            "state": state.value, "fix_safety": f.fix_safety, "fix": fix,
            "url": rule_url(f.code, f.rule),
        })
    document = {
        "$schema": "https://github.com/vsockport/vsockport/blob/main/vsockport/schema/report.json",
        "version": __version__,
        "applied": applied,
        "files_scanned": run.scanned,
        "changed": sorted(_posix(r.path) for r in run.changed if r.written or not applied),
        "findings": findings,
        "errors": [{"path": p, "location": {"row": line, "column": column}, "message": m}
                   for p, line, column, m in _errors(run)],
    }
    return json.dumps(document, indent=2)


def rules_json(rules: Iterable[RuleInfo]) -> str:
    return json.dumps([{"code": r.code, "name": r.name, "summary": r.summary, "fix_safety": r.fix_safety,
                        "url": r.url, "documentation": r.documentation} for r in rules], indent=2)


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


_GITHUB_LEVELS = {State.NEEDS_REVIEW: "error", State.HELD_BACK: "error", State.FIXABLE: "warning",
                  State.FIXED: "notice", State.NOTE: "notice"}


def to_github(run: RunResult, *, applied: bool) -> str:
    """GitHub Actions workflow commands, by what fails the job: errors and work left (`needs-review`,
    `held-back`) are ::error, changes `diff` wants made ::warning, fixes made and notes ::notice."""
    lines = []
    for path, line, column, message in _errors(run):
        where = f"file={_escape_property(path)}" + (f",line={line},col={column}" if line else "")
        lines.append(f"::error {where},title=vsockport::{_escape_data(message)}")
    for result, f in _ordered(run):
        state = _state(result, f, applied)
        title = _escape_property(f"{f.code} {f.rule} ({state})")
        line, column, end_line, end_column = _where(result, f, applied)
        where = (f"file={_escape_property(_posix(result.path))},line={line},col={column},"
                 f"endLine={end_line},endColumn={end_column}")
        lines.append(f"::{_GITHUB_LEVELS[state]} {where},title={title}::{_escape_data(f.message)}")
    for result in run.changed:
        if not applied and result.is_runtime:
            lines.append(f"::warning file={_escape_property(_posix(result.path))},title=vsockport::runtime module to write")
    return "\n".join(lines) + ("\n" if lines else "")


def _sarif_fix(result: FileResult, finding: Finding) -> dict:
    return {
        "description": {"text": finding.message},
        "artifactChanges": [{
            "artifactLocation": {"uri": _posix(result.path), "uriBaseId": "%SRCROOT%"},
            "replacements": [{
                "deletedRegion": {"startLine": e.line, "startColumn": e.column, "endLine": e.end_line,
                                  "endColumn": e.end_column},
                "insertedContent": {"text": e.content},
            } for e in finding.fix.edits],  # type: ignore[union-attr]
        }],
    }


def to_sarif(run: RunResult, rules: Iterable[RuleInfo], *, applied: bool) -> str:
    rules = list(rules)
    index = {rule.code: position for position, rule in enumerate(rules)}
    results = []
    for result, f in _ordered(run):
        state = _state(result, f, applied)
        line, column, end_line, end_column = _where(result, f, applied)
        entry = {
            "ruleId": f.code,
            "level": "error" if f.counts else "warning" if state is State.FIXABLE else "note",
            "message": {"text": f.message},
            "locations": [{
                "physicalLocation": {
                    "artifactLocation": {"uri": _posix(result.path), "uriBaseId": "%SRCROOT%"},
                    "region": {"startLine": max(line, 1), "startColumn": max(column, 1),
                               "endLine": max(end_line, 1), "endColumn": max(end_column, 1)},
                }
            }],
            "properties": {"state": state.value, "fixSafety": f.fix_safety},
        }
        if f.fix is not None and state is not State.FIXED:
            entry["fixes"] = [_sarif_fix(result, f)]
        if f.code in index:
            entry["ruleIndex"] = index[f.code]
        results.append(entry)
    notifications = [
        {
            "level": "error",
            "message": {"text": message},
            "locations": [{"physicalLocation": {"artifactLocation": {"uri": path, "uriBaseId": "%SRCROOT%"}}}],
        }
        for path, _, _, message in _errors(run)
    ]
    document = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "vsockport",
                "version": __version__,
                "informationUri": "https://github.com/vsockport/vsockport",
                "rules": [
                    {
                        "id": rule.code,
                        "name": rule.name,
                        "shortDescription": {"text": rule.summary},
                        "fullDescription": {"text": rule.summary},
                        "help": {"text": rule.documentation, "markdown": rule.documentation},
                        "helpUri": rule.url,
                        "properties": {"fixSafety": rule.fix_safety},
                    }
                    for rule in rules
                ],
            }},
            "invocations": [{"executionSuccessful": not notifications, "toolExecutionNotifications": notifications}],
            "results": results,
        }],
    }
    return json.dumps(document, indent=2)
