"""Machine-readable reports for CI: JSON, GitHub workflow annotations and SARIF 2.1.0.

Each takes the same RunResult that the text report uses. Rule metadata (for SARIF's rule table) is
passed in by the CLI, so this module knows results and plain rule descriptions, not rule code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable, NamedTuple

from vsockport import __version__
from vsockport.engine import RunResult
from vsockport.report import display_path

FORMATS = ("text", "json", "github", "sarif")


class RuleInfo(NamedTuple):
    code: str
    name: str
    summary: str
    documentation: str
    fix_safety: str


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


def to_json(run: RunResult, *, applied: bool) -> str:
    findings = [
        {
            "path": _posix(result.path), "line": f.line, "column": f.column, "code": f.code, "rule": f.rule,
            "message": f.message, "state": f.shown_state(applied).value, "fixable": f.fix is not None,
            "fix_safety": f.fix_safety,
        }
        for result, f in sorted(run.findings, key=lambda item: (str(item[0].path), item[1].line, item[1].column))
    ]
    document = {
        "version": __version__,
        "applied": applied,
        "files_scanned": run.scanned,
        "changed": sorted(_posix(r.path) for r in run.changed),
        "findings": findings,
        "errors": [{"path": p, "line": l, "column": c, "message": m} for p, l, c, m in _errors(run)],
    }
    return json.dumps(document, indent=2)


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def to_github(run: RunResult, *, applied: bool) -> str:
    """GitHub Actions workflow commands: errors and findings to review as ::error/::warning, the rest as ::notice."""
    lines = []
    for path, line, column, message in _errors(run):
        where = f"file={_escape_property(path)}" + (f",line={line},col={column}" if line else "")
        lines.append(f"::error {where},title=vsockport::{_escape_data(message)}")
    for result, f in sorted(run.findings, key=lambda item: (str(item[0].path), item[1].line, item[1].column)):
        level = "warning" if f.counts else "notice"
        title = _escape_property(f"{f.code} {f.rule} ({f.shown_state(applied)})")
        where = f"file={_escape_property(_posix(result.path))},line={f.line},col={f.column}"
        lines.append(f"::{level} {where},title={title}::{_escape_data(f.message)}")
    for result in run.changed:
        if not applied and result.is_runtime:
            lines.append(f"::notice file={_escape_property(_posix(result.path))},title=vsockport::runtime module to write")
    return "\n".join(lines) + ("\n" if lines else "")


def to_sarif(run: RunResult, rules: Iterable[RuleInfo], *, applied: bool) -> str:
    rules = list(rules)
    index = {rule.code: position for position, rule in enumerate(rules)}
    results = []
    for result, f in sorted(run.findings, key=lambda item: (str(item[0].path), item[1].line, item[1].column)):
        entry = {
            "ruleId": f.code,
            "level": "warning" if f.counts else "note",
            "message": {"text": f.message},
            "locations": [{
                "physicalLocation": {
                    "artifactLocation": {"uri": _posix(result.path), "uriBaseId": "%SRCROOT%"},
                    "region": {"startLine": max(f.line, 1), "startColumn": max(f.column, 1)},
                }
            }],
            "properties": {"state": f.shown_state(applied).value, "fixable": f.fix is not None, "fixSafety": f.fix_safety},
        }
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
                "informationUri": "https://pypi.org/project/vsockport/",
                "rules": [
                    {
                        "id": rule.code,
                        "name": rule.name,
                        "shortDescription": {"text": rule.summary},
                        "fullDescription": {"text": rule.summary},
                        "help": {"text": rule.documentation, "markdown": rule.documentation},
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
