"""`[tool.vsockport]` in the nearest pyproject.toml, overlaid with command-line options: one immutable Config."""

from __future__ import annotations

import fnmatch
import re
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable, Mapping, Sequence

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on older interpreters only
    import tomli as tomllib

DEFAULT_RUNTIME_MODULE = "vsock_runtime"
MAX_CID = 0xFFFFFFFF
_MODULE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ConfigError(Exception):
    """A configuration value or option that cannot be used; the message says which and why."""


@dataclass(frozen=True)
class Config:
    cid_map: Mapping[str, int] = field(default_factory=dict)
    exclude: tuple[str, ...] = ()
    runtime_module: str = DEFAULT_RUNTIME_MODULE
    respect_gitignore: bool = True
    force_exclude: bool = False  # apply `exclude` to files named on the command line too
    unsafe_fixes: bool = False
    select: tuple[str, ...] = ()  # rule codes or code prefixes; empty: every rule
    ignore: tuple[str, ...] = ()
    per_file_ignores: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # glob -> codes
    source: Path | None = None  # the pyproject.toml the settings came from, if any

    def rules_for(self, path: Path, rules: Sequence[type]) -> tuple[type, ...]:
        """The rules that run on `path`: selected, minus ignored, minus this file's per-file ignores."""
        ignored = list(self.ignore)
        for pattern, codes in self.per_file_ignores.items():
            if _path_matches(path, pattern):
                ignored.extend(codes)
        return tuple(
            rule for rule in rules
            if (not self.select or _matches(rule.code, self.select)) and not _matches(rule.code, ignored)
        )


def _matches(code: str, selectors: Iterable[str]) -> bool:
    return any(code.startswith(selector) for selector in selectors)


def _path_matches(path: Path, pattern: str) -> bool:
    text = path.as_posix()
    return fnmatch.fnmatch(text, pattern) or fnmatch.fnmatch(path.name, pattern) or fnmatch.fnmatch(text, f"*/{pattern}")


def parse_codes(values: Iterable[str], where: str, known: Iterable[str]) -> tuple[str, ...]:
    """`VS001,VS012` (repeatable) -> ('VS001', 'VS012'); prefixes such as `VS01` select several rules."""
    known = tuple(known)
    codes = []
    for value in values:
        for part in str(value).split(","):
            code = part.strip().upper()
            if not code:
                continue
            if not any(k.startswith(code) for k in known):
                raise ConfigError(f"{where}: {code!r} matches no rule; rules are {', '.join(known)}")
            codes.append(code)
    return tuple(codes)


def parse_cid(host: str, value: object, where: str) -> int:
    try:
        cid = value if isinstance(value, int) and not isinstance(value, bool) else int(str(value), 0)
    except ValueError:
        raise ConfigError(f"{where}: CID for {host!r} must be an integer, got {value!r}") from None
    if not 0 <= cid <= MAX_CID:
        raise ConfigError(f"{where}: CID for {host!r} must be between 0 and {MAX_CID}, got {cid}")
    return cid


def parse_cid_option(text: str) -> tuple[str, int]:
    host, sep, value = text.partition("=")
    if not sep or not host.strip():
        raise ConfigError(f"--cid {text!r}: expected HOST=CID, for example --cid db.internal=3")
    return host.strip(), parse_cid(host.strip(), value.strip(), "--cid")


def find_pyproject(start: Path) -> Path | None:
    start = start.resolve()
    for folder in [start, *start.parents] if start.is_dir() else list(start.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def _known_codes() -> tuple[str, ...]:
    from vsockport.rules import ALL_RULES

    return tuple(rule.code for rule in ALL_RULES)


def load_config(start: Path, *, cids: Iterable[str] = (), exclude: Iterable[str] = (),
                runtime_module: str | None = None, respect_gitignore: bool | None = None,
                select: Iterable[str] = (), ignore: Iterable[str] = (), force_exclude: bool = False,
                unsafe_fixes: bool = False) -> Config:
    config = Config()
    pyproject = find_pyproject(start)
    if pyproject is not None:
        config = _from_pyproject(pyproject)
    cid_map = dict(config.cid_map)
    for text in cids:
        host, cid = parse_cid_option(text)
        cid_map[host] = cid
    module = runtime_module if runtime_module is not None else config.runtime_module
    _check_module_name(module, "--runtime-module")
    selected = parse_codes(select, "--select", _known_codes())
    return replace(
        config,
        cid_map=cid_map,
        exclude=config.exclude + tuple(exclude),
        runtime_module=module,
        respect_gitignore=config.respect_gitignore if respect_gitignore is None else respect_gitignore,
        select=selected or config.select,
        force_exclude=force_exclude,
        unsafe_fixes=unsafe_fixes,
        ignore=config.ignore + parse_codes(ignore, "--ignore", _known_codes()),
    )


def _check_module_name(name: str, where: str) -> None:
    if not _MODULE_NAME.match(name):
        raise ConfigError(f"{where}: {name!r} is not a valid Python module name")


def _from_pyproject(path: Path) -> Config:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    table = data.get("tool", {}).get("vsockport", {})
    where = f"{path} [tool.vsockport]"
    known = {"cid-map", "exclude", "runtime-module", "respect-gitignore", "select", "ignore", "per-file-ignores"}
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    raw_map = table.get("cid-map", {})
    if not isinstance(raw_map, dict):
        raise ConfigError(f"{where}: cid-map must be a table of HOST = CID")
    exclude = table.get("exclude", [])
    if not isinstance(exclude, list) or not all(isinstance(e, str) for e in exclude):
        raise ConfigError(f"{where}: exclude must be a list of glob patterns")
    module = table.get("runtime-module", DEFAULT_RUNTIME_MODULE)
    if not isinstance(module, str):
        raise ConfigError(f"{where}: runtime-module must be a string")
    _check_module_name(module, where + " runtime-module")
    gitignore = table.get("respect-gitignore", True)
    if not isinstance(gitignore, bool):
        raise ConfigError(f"{where}: respect-gitignore must be true or false")
    codes = {}
    for key in ("select", "ignore"):
        value = table.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}: {key} must be a list of rule codes")
        codes[key] = parse_codes(value, f"{where} {key}", _known_codes())
    per_file = table.get("per-file-ignores", {})
    if not isinstance(per_file, dict) or not all(isinstance(v, list) for v in per_file.values()):
        raise ConfigError(f"{where}: per-file-ignores must be a table of GLOB = [CODES]")
    return Config(
        select=codes["select"],
        ignore=codes["ignore"],
        per_file_ignores={glob: parse_codes(v, f"{where} per-file-ignores", _known_codes()) for glob, v in per_file.items()},
        cid_map={host: parse_cid(host, value, where + " cid-map") for host, value in raw_map.items()},
        exclude=tuple(exclude),
        runtime_module=module,
        respect_gitignore=gitignore,
        source=path,
    )
