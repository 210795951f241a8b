"""Settings: for each file, `[tool.vsockport]` in its nearest pyproject.toml (or a vsockport.toml),
overlaid with the command line's options: one immutable Config per folder, as ruff resolves them, so
that results never depend on which paths a run names, or in which order."""

from __future__ import annotations

import fnmatch
import keyword
import re
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from vsockport.options import MapValue

DEFAULT_RUNTIME_MODULE = "vsock_runtime"
MAX_CID = 0xFFFFFFFF
_MODULE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Module names Python itself gives a meaning: the runtime under one of them would change the program.
_SPECIAL_MODULES = {"__init__": "it would make the folder a package", "__main__": "it would run as the program",
                    "sitecustomize": "Python imports it at every start-up",
                    "usercustomize": "Python imports it at every start-up"}


class ConfigError(Exception):
    """A configuration value or option that cannot be used; the message says which and why."""


@dataclass(frozen=True)
class Config:
    cid_map: Mapping[str, MapValue] = field(default_factory=dict)
    exclude: tuple[str, ...] = ()
    runtime_module: str = DEFAULT_RUNTIME_MODULE
    respect_gitignore: bool = True
    force_exclude: bool = False  # apply `exclude` to files named on the command line too
    unsafe_fixes: bool = False
    vmci_datagrams: bool = False  # port datagram sockets to VMware's VMCI datagrams instead of keeping them on IP
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


def _cid(value: object, what: str, where: str) -> int:
    try:
        cid = value if isinstance(value, int) and not isinstance(value, bool) else int(str(value).strip(), 0)
    except ValueError:
        raise ConfigError(f"{where}: {what} must be an integer, got {value!r}") from None
    if not 0 <= cid <= MAX_CID:
        raise ConfigError(f"{where}: {what} must be between 0 and {MAX_CID}, got {cid}")
    return cid


def parse_map_entry(key: str, value: object, where: str) -> tuple[str, "MapValue"]:
    """One port-time map entry, as VSOCK_CID_MAP spells it at run time: HOST=CID, HOST=unix:PATH (a
    Firecracker / Cloud Hypervisor VMM's socket), or an endpoint HOST:PORT=CID:PORT (HOST:*=CID is
    HOST=CID). Returns the key as the rules look it up ("host" or "host:port") and the value."""
    from vsockport.runtime.contract import split_map_key  # the runtime's own reading of a key

    host, port = split_map_key()(str(key).strip())
    host = host.strip().lower()
    if not host:
        raise ConfigError(f"{where}: {key!r}: a map entry needs a host name, as HOST=CID or HOST:PORT=CID:PORT")
    if port not in ("", "*"):
        port_number = _cid(port, f"the port of {key!r}", where)
        text = str(value).strip()
        cid_text, colon, vport_text = text.partition(":")
        if not colon or text.lower().startswith("unix:"):
            raise ConfigError(f"{where}: {key!r} maps one endpoint, so its value is CID:PORT (the CID and the vsock "
                              f"port it is forwarded to), for example {key}=3:8001; got {value!r}")
        return f"{host}:{port_number}", (_cid(cid_text, f"the CID for {key!r}", where),
                                         _cid(vport_text, f"the vsock port for {key!r}", where))
    if isinstance(value, str) and value.strip().lower().startswith("unix:"):
        if len(value.strip()) == len("unix:"):
            raise ConfigError(f"{where}: {host!r} = 'unix:' needs the VMM's socket path, e.g. unix:/run/fc/vm.vsock")
        return host, "unix:" + value.strip()[len("unix:"):]
    return host, _cid(value, f"the CID for {host!r}", where)


def parse_cid_option(text: str) -> tuple[str, "MapValue"]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--cid {text!r}: expected HOST=CID, HOST=unix:PATH or HOST:PORT=CID:PORT, for example "
                          "--cid db.internal=3")
    return parse_map_entry(key.strip(), value.strip(), "--cid")


def _known_codes() -> tuple[str, ...]:
    from vsockport.rules import catalog

    return tuple(rule.code for rule in catalog())


@dataclass(frozen=True)
class Overrides:
    """What the command line says: it adds to (cid-map, exclude, ignore) or replaces a file's settings."""

    cid_map: Mapping[str, MapValue] = field(default_factory=dict)
    exclude: tuple[str, ...] = ()
    select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    runtime_module: str | None = None
    respect_gitignore: bool | None = None
    force_exclude: bool = False
    unsafe_fixes: bool = False
    vmci_datagrams: bool | None = None

    @classmethod
    def parse(cls, *, cids: Iterable[str] = (), exclude: Iterable[str] = (), select: Iterable[str] = (),
              ignore: Iterable[str] = (), runtime_module: str | None = None, respect_gitignore: bool | None = None,
              force_exclude: bool = False, unsafe_fixes: bool = False, vmci_datagrams: bool | None = None) -> "Overrides":
        """From command-line values; a bad one is a ConfigError naming its option."""
        cid_map = dict(parse_cid_option(text) for text in cids)
        if runtime_module is not None:
            check_module_name(runtime_module, "--runtime-module")
        return cls(cid_map, tuple(exclude), parse_codes(select, "--select", _known_codes()),
                   parse_codes(ignore, "--ignore", _known_codes()), runtime_module, respect_gitignore,
                   force_exclude, unsafe_fixes, vmci_datagrams)

    def apply(self, config: Config) -> Config:
        return replace(
            config,
            cid_map={**config.cid_map, **self.cid_map},
            exclude=config.exclude + self.exclude,
            runtime_module=self.runtime_module if self.runtime_module is not None else config.runtime_module,
            respect_gitignore=config.respect_gitignore if self.respect_gitignore is None else self.respect_gitignore,
            select=self.select or config.select,
            ignore=config.ignore + self.ignore,
            force_exclude=self.force_exclude,
            unsafe_fixes=self.unsafe_fixes,
            vmci_datagrams=config.vmci_datagrams if self.vmci_datagrams is None else self.vmci_datagrams,
        )


class ConfigResolver:
    """The Config of each file: its nearest configuration file's settings with the command line's on top.

    A folder's configuration is the nearest `vsockport.toml`, or `pyproject.toml` with a
    `[tool.vsockport]` table, in it or above it. `config_file` makes one file the configuration of
    everything; `isolated` reads none. A configuration file that cannot be used is a ConfigError for
    the files it governs, not for the run."""

    def __init__(self, overrides: Overrides = Overrides(), config_file: Path | None = None, isolated: bool = False,
                 fixed: Config | None = None) -> None:
        self.overrides, self.isolated = overrides, isolated
        self._fixed = fixed
        self._given = None
        if config_file is not None:
            given = _read_config(Path(config_file))
            if isinstance(given, ConfigError):
                raise given  # the run's own configuration: unusable, it stops the run
            self._given = given or Config(source=Path(config_file))
        self._by_folder: dict[Path, Config | ConfigError] = {}
        self._files: dict[Path, Config | ConfigError | None] = {}
        self._nearest_in: dict[Path, Config | None] = {}

    @classmethod
    def of(cls, config: "Config | ConfigResolver") -> "ConfigResolver":
        return config if isinstance(config, ConfigResolver) else cls(fixed=config)

    def for_path(self, path: Path) -> Config:
        """The settings of a file (or folder); raises ConfigError when its configuration cannot be used."""
        if self._fixed is not None:
            return self._fixed
        path = path if isinstance(path, Path) else Path(path)
        folder = path if path.is_absolute() else path.absolute()
        folder = folder if folder.is_dir() else folder.parent
        found = self._by_folder.get(folder)
        if found is None:
            found = self._by_folder[folder] = self._resolve(folder)
        if isinstance(found, ConfigError):
            raise found
        return found

    def _resolve(self, folder: Path) -> "Config | ConfigError":
        try:
            if self._given is not None:
                base = self._given
            elif self.isolated:
                base = Config()
            else:
                base = self._nearest(folder) or Config()
            return self.overrides.apply(base)
        except ConfigError as exc:
            return exc

    def _nearest(self, folder: Path) -> Config | None:
        """The settings of the nearest vsockport.toml or pyproject.toml at or above `folder`, each folder
        looked up once: the folders of a tree share their parents' answer."""
        if folder in self._nearest_in:
            return self._nearest_in[folder]
        for name in ("vsockport.toml", "pyproject.toml"):
            candidate = folder / name
            if candidate not in self._files:
                try:
                    present = candidate.is_file()
                except OSError:  # an unreadable folder holds no configuration we can use
                    present = False
                self._files[candidate] = _read_config(candidate) if present else None
            found = self._files[candidate]
            if isinstance(found, ConfigError):
                raise found
            if found is not None:
                break
        else:
            parent = folder.parent
            found = None if parent == folder else self._nearest(parent)
        self._nearest_in[folder] = found
        return found


def load_config(start: Path, **options) -> Config:
    """The Config of one path, with command-line options (keyword arguments of Overrides.parse)."""
    return ConfigResolver(Overrides.parse(**options)).for_path(start)


def check_module_name(name: str, where: str) -> None:
    """A name for the runtime module that is a module name, and shadows nothing a program imports."""
    if not _MODULE_NAME.match(name) or keyword.iskeyword(name):
        raise ConfigError(f"{where}: {name!r} is not a valid Python module name (an identifier that is not a keyword)")
    if name in _SPECIAL_MODULES or (name.startswith("__") and name.endswith("__")):
        raise ConfigError(f"{where}: {name!r} has a meaning of its own to Python ({_SPECIAL_MODULES.get(name, 'a dunder name')}): "
                          "choose another name, such as the default vsock_runtime")
    if name in getattr(sys, "stdlib_module_names", ()) or name in sys.builtin_module_names:
        raise ConfigError(f"{where}: {name!r} is a module of the standard library: the runtime would shadow it "
                          "(choose another name, such as the default vsock_runtime)")
    try:
        import importlib.util

        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        spec = None
    origin = getattr(spec, "origin", None)
    if origin and not _is_runtime_file(origin):
        raise ConfigError(f"{where}: {name!r} is an installed module ({origin}): the runtime would shadow it "
                          "(choose another name)")


def _is_runtime_file(origin: str) -> bool:
    try:
        with open(origin, "rb") as handle:
            return b"\nVSOCKPORT_RUNTIME_VERSION = " in handle.read(8192)
    except OSError:
        return False


def _read_config(path: Path) -> "Config | ConfigError | None":
    """The settings in a configuration file: None for a pyproject.toml without [tool.vsockport]; the
    error, returned rather than raised, for one that cannot be used (it is the error of its files)."""
    try:
        return _from_file(path)
    except ConfigError as exc:
        return exc


def _toml():
    # Imported when a configuration file is read: tomllib costs as much CPU as a run over a ported file.
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on older interpreters only
        import tomli as tomllib
    return tomllib


def _from_file(path: Path) -> Config | None:
    try:
        data = _toml().loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, _toml().TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    if path.name == "pyproject.toml":
        tool = data.get("tool", {})
        if not isinstance(tool, dict):
            raise ConfigError(f"{path}: [tool] must be a table")
        if "vsockport" not in tool:
            return None
        table, where = tool["vsockport"], f"{path} [tool.vsockport]"
    else:
        table, where = data, str(path)
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: must be a table of settings, not {type(table).__name__}")
    known = {"cid-map", "exclude", "runtime-module", "respect-gitignore", "select", "ignore", "per-file-ignores",
             "vmci-datagrams"}
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    raw_map = table.get("cid-map", {})
    if not isinstance(raw_map, dict):
        raise ConfigError(f"{where}: cid-map must be a table of HOST = CID (or \"HOST:PORT\" = \"CID:PORT\")")
    exclude = table.get("exclude", [])
    if not isinstance(exclude, list) or not all(isinstance(e, str) for e in exclude):
        raise ConfigError(f"{where}: exclude must be a list of glob patterns")
    module = table.get("runtime-module", DEFAULT_RUNTIME_MODULE)
    if not isinstance(module, str):
        raise ConfigError(f"{where}: runtime-module must be a string")
    check_module_name(module, where + " runtime-module")
    gitignore = table.get("respect-gitignore", True)
    if not isinstance(gitignore, bool):
        raise ConfigError(f"{where}: respect-gitignore must be true or false")
    vmci_datagrams = table.get("vmci-datagrams", False)
    if not isinstance(vmci_datagrams, bool):
        raise ConfigError(f"{where}: vmci-datagrams must be true or false")
    codes = {}
    for key in ("select", "ignore"):
        value = table.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}: {key} must be a list of rule codes")
        codes[key] = parse_codes(value, f"{where} {key}", _known_codes())
    per_file = table.get("per-file-ignores", {})
    if not isinstance(per_file, dict) or not all(isinstance(v, list) and all(isinstance(c, str) for c in v)
                                                 for v in per_file.values()):
        raise ConfigError(f"{where}: per-file-ignores must be a table of GLOB = [CODES]")
    return Config(
        select=codes["select"],
        ignore=codes["ignore"],
        per_file_ignores={glob: parse_codes(v, f"{where} per-file-ignores", _known_codes()) for glob, v in per_file.items()},
        cid_map=dict(parse_map_entry(key, value, where + " cid-map") for key, value in raw_map.items()),
        vmci_datagrams=vmci_datagrams,
        exclude=tuple(exclude),
        runtime_module=module,
        respect_gitignore=gitignore,
        source=path,
    )
