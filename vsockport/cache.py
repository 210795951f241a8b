"""Per-file result cache: a re-run skips files whose bytes, options and vsockport code are unchanged.

Entries live in the user cache directory (~/.cache/vsockport/results, or $VSOCKPORT_CACHE_DIR), keyed by a
SHA-256 of: vsockport's own source (so a changed rule never serves a stale result), the rules that run,
the port options and the file's bytes. Entries are written atomically; an unreadable entry is a miss.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

from vsockport.options import PortOptions
from vsockport.results import PortResult


def cache_dir() -> Path:
    override = os.environ.get("VSOCKPORT_CACHE_DIR")
    if override:
        return Path(override)
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "vsockport" / "results"


@lru_cache(maxsize=1)
def _code_fingerprint() -> bytes:
    from vsockport.catalog import sources

    # Star-import expansion reads the running interpreter's modules: results are per Python version.
    digest = hashlib.sha256(sys.version.encode())
    for relative, data in sources():
        digest.update(relative.encode())
        digest.update(data)
    return digest.digest()


@lru_cache(maxsize=64)
def _settings_key(settings: str) -> str:
    return hashlib.sha256(_code_fingerprint() + settings.encode()).hexdigest()


def settings_key(options: PortOptions, rules: Sequence[Any]) -> str:
    """What, besides a file's bytes, decides its result: vsockport's code, the rules, the options."""
    return _settings_key(json.dumps([[rule.code for rule in rules], sorted(options.cid_map.items()),
                                     options.runtime_import, options.unsafe_fixes, options.vmci_datagrams]))


def key(data: bytes, options: PortOptions, rules: Sequence[Any]) -> str:
    return hashlib.sha256(settings_key(options, rules).encode() + hashlib.sha256(data).digest()).hexdigest()


def _entry(cache_key: str) -> Path:
    return cache_dir() / cache_key[:2] / cache_key


def load(cache_key: str) -> PortResult | None:
    """The stored result, or None on a miss (an unreadable or outdated entry is a miss)."""
    try:
        return PortResult.from_json(json.loads(_entry(cache_key).read_text()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def store(cache_key: str, result: PortResult) -> None:
    write_quietly(_entry(cache_key), json.dumps(result.to_json()))


def _diff_entry(cache_key: str) -> Path:
    return cache_dir() / "diffs" / cache_key[:2] / cache_key


def load_diff(cache_key: str) -> str | None:
    """The diff hunks recorded for a result, or None. A warm `diff` then prints without re-diffing:
    difflib takes most of a warm run over a tree with a hundred big changed files."""
    try:
        return _diff_entry(cache_key).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def store_diff(cache_key: str, hunks: str) -> None:
    write_quietly(_diff_entry(cache_key), hunks)


def write_quietly(target: Path, text: str) -> None:
    """Write atomically (temporary file, then rename); a cache that cannot be written only costs speed."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        import tempfile  # only a run that stores something

        with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=target.parent, delete=False, suffix=".tmp") as handle:
            handle.write(text)
        os.replace(handle.name, target)
    except (OSError, UnicodeEncodeError):
        pass


def signature(path: Path) -> list[int]:
    """Size, mtime, ctime and inode: a file rewritten in any way (even with its mtime put back) differs."""
    st = os.stat(path)
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def load_index(kind: str, roots: Sequence[Path]) -> tuple[Path, dict[str, list]]:
    """(file, entries) of a per-file index of `kind` for one set of command-line paths; {} if unreadable."""
    name = hashlib.sha256("\0".join(sorted(os.path.realpath(r) for r in roots)).encode()).hexdigest()
    file = cache_dir() / kind / f"{name}.json"
    try:
        entries = json.loads(file.read_text())
    except (OSError, ValueError):
        entries = {}
    return file, entries if isinstance(entries, dict) else {}


class StatIndex:
    """path -> [signature, settings key, result key ("" = nothing to port)] for the files of one set of
    command-line paths. A warm run then skips reading unchanged files at all, as black and ruff do;
    a changed signature falls back to reading the file and to the content-keyed cache."""

    def __init__(self, roots: Sequence[Path]) -> None:
        self._file, self._entries = load_index("stat", roots)
        self._dirty = False

    def lookup(self, path: Path, settings: str) -> str | None:
        """The result key recorded for `path` if it is unchanged since, else None."""
        entry = self._entries.get(str(path))
        if not entry or entry[1] != settings:
            return None
        try:
            return entry[2] if signature(path) == entry[0] else None
        except OSError:
            return None

    def record(self, path: Path, sig: list[int], settings: str, result_key: str) -> None:
        self._entries[str(path)] = [sig, settings, result_key]
        self._dirty = True

    def save(self) -> None:
        if not self._dirty:
            return
        write_quietly(self._file, json.dumps(self._entries))
