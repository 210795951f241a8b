"""Per-file result cache: a re-run skips files whose bytes, options and vsockport code are unchanged.

Entries live in the user cache directory (~/.cache/vsockport/results, or $VSOCKPORT_CACHE_DIR), keyed by a
SHA-256 of: vsockport's own source (so a changed rule never serves a stale result), the rules that run,
the port options and the file's bytes. Entries are written atomically; an unreadable entry is a miss.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Sequence

from vsockport.rules import Finding, PortOptions, Rule


def cache_dir() -> Path:
    override = os.environ.get("VSOCKPORT_CACHE_DIR")
    if override:
        return Path(override)
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "vsockport" / "results"


@lru_cache(maxsize=1)
def _code_fingerprint() -> bytes:
    package = Path(__file__).parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.digest()


def key(data: bytes, options: PortOptions, rules: Sequence[type[Rule]]) -> str:
    digest = hashlib.sha256(_code_fingerprint())
    digest.update(",".join(rule.code for rule in rules).encode())
    digest.update(json.dumps([sorted(options.cid_map.items()), options.runtime_import, options.unsafe_fixes]).encode())
    digest.update(hashlib.sha256(data).digest())
    return digest.hexdigest()


def _entry(cache_key: str) -> Path:
    return cache_dir() / cache_key[:2] / cache_key


def load(cache_key: str):
    """(new bytes or None, findings, encoding, uses_runtime), or None on a miss."""
    try:
        raw = json.loads(_entry(cache_key).read_text())
        new = base64.b64decode(raw["new"]) if raw["new"] is not None else None
        findings = [Finding(**f) for f in raw["findings"]]
        return new, findings, raw["encoding"], raw["uses_runtime"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def store(cache_key: str, outcome) -> None:
    new, findings, encoding, uses_runtime = outcome
    document = {
        "new": base64.b64encode(new).decode() if new is not None else None,
        "findings": [f.__dict__ for f in findings],
        "encoding": encoding,
        "uses_runtime": uses_runtime,
    }
    target = _entry(cache_key)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=target.parent, delete=False, suffix=".tmp") as handle:
            json.dump(document, handle)
        os.replace(handle.name, target)
    except OSError:
        pass  # a cache that cannot be written only costs speed
