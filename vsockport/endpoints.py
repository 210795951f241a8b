"""What a ported program dials and serves, and what the other side of vsock must run for it.

`vsockport endpoints PATH` finds the endpoints written out in the code (Python's `ast`, no libcst:
`(host, port)` destinations, HTTP(S) connections and URLs, asyncio connections, listening ports),
adds those a ported program recorded at run time (`VSOCK_RECORD=FILE`, JSON lines of the runtime),
gives each remote endpoint its own vsock port and renders, for an AWS Nitro Enclave's parent:

- the enclave's `VSOCK_CID_MAP` value (`HOST:PORT=3:VPORT` per endpoint, `:PORT=PORT` per server);
- a vsock-proxy allowlist (`allowlist:` of `{address, port}` entries, the format of
  aws-nitro-enclaves-cli's vsock_proxy) and one `vsock-proxy VPORT HOST PORT` command per endpoint
  (vsock-proxy forwards one remote endpoint per process), with the same forwarding as socat lines
  for parents without vsock-proxy;
- the parent's ingress forwarders: `socat TCP-LISTEN:PORT,fork,reuseaddr VSOCK-CONNECT:CID:PORT`.

Vsock ports are allocated from each endpoint's own name (a CRC of `host:port` into 8001-8999), so an
endpoint keeps its port from run to run and when others are added; a collision moves the later name
(in sorted order) to the next free port. 8000 (the default KMS proxy) and 9000 (nitro-cli's
heartbeat) are never used.
"""

from __future__ import annotations

import ast
import json
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from vsockport.runtime.contract import contract

NITRO_PARENT_CID = 3
FIRST_PORT, LAST_PORT = 8001, 8999
RESERVED_PORTS = frozenset([8000, 9000])  # vsock-proxy's default KMS endpoint; nitro-cli's heartbeat
_URL = re.compile(r"^(https?|wss?)://(\[[^\]]+\]|[^/:?#@\s]+)(?::(\d+))?(?:[/?#]|$)", re.I)
_DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443}
_DIALS = {"connect", "connect_ex", "create_connection", "create_vsock_connection"}
_HOST_PORT_CALLS = {"open_connection": 0, "vsock_open_connection": 0, "create_connection": 1,
                    "vsock_loop_create_connection": 2}
_HTTP_CONNECTIONS = {"HTTPConnection": 80, "HTTPSConnection": 443}
_BINDS = {"bind", "create_server", "create_vsock_server"}
_SERVER_SUFFIXES = ("Server",)  # HTTPServer((host, port), Handler), socketserver.TCPServer, ...


@dataclass
class Endpoint:
    host: str
    port: int
    sources: list[str] = field(default_factory=list)  # "path:line" or "recorded: FILE"
    vport: int = 0

    @property
    def key(self) -> str:
        """The map's key: HOST:PORT, an IPv6 address in brackets ([fd00:ec2::254]:80)."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass
class Served:
    port: int
    sources: list[str] = field(default_factory=list)


@dataclass
class Found:
    dials: dict[str, Endpoint] = field(default_factory=dict)
    serves: dict[int, Served] = field(default_factory=dict)
    errors: list[tuple[str, str]] = field(default_factory=list)
    unmapped_at_run_time: list[str] = field(default_factory=list)  # recorded connects that had no entry

    def dial(self, host: str, port: int, source: str) -> None:
        host = host.strip().lower().strip("[]")
        if not host or _is_local(host) or not _is_host(host) or not 0 < port < 65536:
            return
        endpoint = Endpoint(host, port)
        endpoint = self.dials.setdefault(endpoint.key, endpoint)
        if source not in endpoint.sources:
            endpoint.sources.append(source)

    def ignore(self, keys: Iterable[str]) -> None:
        """Drop endpoints the user says the program never dials: HOST:PORT, or HOST for all its ports."""
        for key in keys:
            key = key.strip().lower()
            for endpoint in list(self.dials.values()):
                if key in (endpoint.key, endpoint.host, f"{endpoint.host}:*", f"[{endpoint.host}]"):
                    del self.dials[endpoint.key]

    def serve(self, port: int, source: str) -> None:
        if not 0 < port < 65536:
            return
        served = self.serves.setdefault(port, Served(port))
        if source not in served.sources:
            served.sources.append(source)


_HOST_NAME = re.compile(r"^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$")


def _is_host(host: str) -> bool:
    """A host name or address as a program dials it (not a template or the head of a concatenation:
    `{prefix}{name}`, `s3-accelerate.`)."""
    if ":" in host:
        try:
            import ipaddress

            ipaddress.IPv6Address(host)
            return True
        except ValueError:
            return False
    return bool(_HOST_NAME.match(host))


def _is_local(host: str) -> bool:
    """What the runtime resolves without the map: loopback and wildcard hosts, CIDs written as numbers."""
    local = contract().loopback_hosts | contract().wildcard_hosts
    return host in local or host.startswith("127.") or host.isdigit() or host.endswith(".localhost")


# -- finding them ---------------------------------------------------------------------------------

def scan_source(data: bytes, source: str, found: Found) -> None:
    """The endpoints written out in one module."""
    try:
        tree = ast.parse(data)
    except (SyntaxError, ValueError) as exc:
        found.errors.append((source, f"cannot parse: {exc}"))
        return
    constants = _module_constants(tree)
    docstrings = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Expr)
                  and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)}

    def text(node: ast.AST | None) -> str | None:
        node = constants.get(node.id, node) if isinstance(node, ast.Name) else node
        return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None

    def number(node: ast.AST | None) -> int | None:
        node = constants.get(node.id, node) if isinstance(node, ast.Name) else node
        value = node.value if isinstance(node, ast.Constant) else None
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def argument(call: ast.Call, index: int, name: str) -> ast.AST | None:
        for keyword in call.keywords:
            if keyword.arg == name:
                return keyword.value
        return call.args[index] if len(call.args) > index and not any(
            isinstance(a, ast.Starred) for a in call.args[: index + 1]) else None

    for node in ast.walk(tree):
        where = f"{source}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            match = _URL.match(node.value.strip())
            if match:
                scheme, host, port = match.group(1).lower(), match.group(2), match.group(3)
                found.dial(host, int(port) if port else _DEFAULT_PORTS[scheme], where)
            continue
        if not isinstance(node, ast.Call):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id if isinstance(node.func, ast.Name) else ""
        first = argument(node, 0, "address")
        if name in _DIALS | _BINDS or name.endswith(_SERVER_SUFFIXES):
            if isinstance(first, ast.Tuple) and len(first.elts) >= 2:
                host, port = text(first.elts[0]), number(first.elts[1])
                if port is not None and (name in _BINDS or name.endswith(_SERVER_SUFFIXES)):
                    found.serve(port, where)
                elif host is not None and port is not None and name in _DIALS:
                    found.dial(host, port, where)
                continue
        if name in _HTTP_CONNECTIONS:
            host = text(argument(node, 0, "host"))
            if host is not None:
                host, _, port_text = host.partition(":") if host.count(":") == 1 else (host, "", "")
                port = number(argument(node, 1, "port"))
                port = port if port is not None else int(port_text) if port_text.isdigit() else _HTTP_CONNECTIONS[name]
                found.dial(host, port, where)
            continue
        if name in _HOST_PORT_CALLS:
            at = _HOST_PORT_CALLS[name]
            host, port = text(argument(node, at, "host")), number(argument(node, at + 1, "port"))
            if host is not None and port is not None:
                found.dial(host, port, where)
            continue
        if name in ("start_server", "vsock_start_server"):
            port = number(argument(node, 2, "port"))
            if port is not None:
                found.serve(port, where)


def _module_constants(tree: ast.Module) -> dict[str, ast.Constant]:
    """Names a module assigns once, at its top level, to a constant (HOST = "db.internal")."""
    seen: dict[str, list[ast.AST]] = {}
    for statement in tree.body:
        if isinstance(statement, ast.Assign):
            for target in statement.targets:
                if isinstance(target, ast.Name):
                    seen.setdefault(target.id, []).append(statement.value)
        elif isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name) and statement.value:
            seen.setdefault(statement.target.id, []).append(statement.value)
    return {name: values[0] for name, values in seen.items()
            if len(values) == 1 and isinstance(values[0], ast.Constant)}


def read_recorded(path: Path, found: Found) -> None:
    """The JSON lines a ported program appended to VSOCK_RECORD=FILE."""
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        found.errors.append((str(path), f"cannot read: {exc.strerror}"))
        return
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            op, host, port = entry["op"], str(entry["host"]), int(entry["port"])
        except (ValueError, KeyError, TypeError):
            found.errors.append((f"{path}:{number}", "not a line VSOCK_RECORD writes: skipped"))
            continue
        source = f"recorded: {path}"
        if op == "bind":
            found.serve(port, source)
            continue
        found.dial(host, port, source)
        if entry.get("error") and f"{host}:{port}" not in found.unmapped_at_run_time:
            found.unmapped_at_run_time.append(f"{host}:{port}")


# -- vsock ports ----------------------------------------------------------------------------------

def allocate(endpoints: Iterable[Endpoint], taken: Iterable[int] = ()) -> None:
    """Give each endpoint a vsock port of its own, from its own name (stable as others come and go)."""
    used = set(RESERVED_PORTS) | set(taken)
    span = LAST_PORT - FIRST_PORT + 1
    for endpoint in sorted(endpoints, key=lambda e: e.key):
        slot = zlib.crc32(endpoint.key.encode()) % span
        for step in range(span):
            port = FIRST_PORT + (slot + step) % span
            if port not in used:
                endpoint.vport = port
                used.add(port)
                break
        else:
            raise ValueError(f"more than {span} endpoints: no vsock port left in {FIRST_PORT}-{LAST_PORT}")


# -- the other side -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Plan:
    platform: str
    parent_cid: int
    enclave_cid: int | None
    dials: list[Endpoint]
    serves: list[Served]

    def map_value(self) -> str:
        """VSOCK_CID_MAP for the program: each endpoint to the parent's vsock port; servers keep theirs."""
        entries = [f"{e.key}={self.parent_cid}:{e.vport}" for e in self.dials]
        return ",".join(entries)

    def allowlist_yaml(self) -> str:
        """vsock-proxy's configuration: `allowlist:` and one `{address, port}` entry per endpoint."""
        lines = ["# vsock-proxy allowlist, generated by `vsockport endpoints`", "allowlist:"]
        lines += [f"- {{address: {_yaml_scalar(e.host)}, port: {e.port}}}" for e in self.dials]
        return "\n".join(lines) + "\n"

    def vsock_proxy_commands(self, config: str = "vsock-proxy.yaml") -> list[str]:
        return [f"vsock-proxy {e.vport} {e.host} {e.port} --config {config}" for e in self.dials]

    def socat_egress(self) -> list[str]:
        """The same forwarding where vsock-proxy is not installed (and in tests): the parent listens on
        each vsock port and connects to the endpoint over TCP."""
        return [f"socat VSOCK-LISTEN:{e.vport},fork,reuseaddr TCP:{e.key}" for e in self.dials]

    def ingress(self) -> list[str]:
        cid = str(self.enclave_cid) if self.enclave_cid is not None else "$ENCLAVE_CID"
        return [f"socat TCP-LISTEN:{s.port},fork,reuseaddr VSOCK-CONNECT:{cid}:{s.port}" for s in self.serves]

    def to_json(self) -> dict:
        return {
            "platform": self.platform,
            "parent_cid": self.parent_cid,
            "enclave_cid": self.enclave_cid,
            "dials": [{"host": e.host, "port": e.port, "vport": e.vport, "sources": e.sources} for e in self.dials],
            "serves": [{"port": s.port, "sources": s.sources} for s in self.serves],
            "vsock_cid_map": self.map_value(),
            "vsock_proxy_allowlist": self.allowlist_yaml(),
            "vsock_proxy": self.vsock_proxy_commands(),
            "socat_egress": self.socat_egress(),
            "ingress": self.ingress(),
        }

    def files(self) -> dict[str, str]:
        """What `--write DIR` writes: for the enclave, the map; for the parent, the allowlist and two
        scripts (egress through vsock-proxy, ingress through socat)."""
        shell = "#!/bin/sh\n# generated by `vsockport endpoints`\nset -e\n"
        return {
            "vsock-cid-map.env": f"VSOCK_CID_MAP={self.map_value()}\n",
            "vsock-proxy.yaml": self.allowlist_yaml(),
            "parent-egress.sh": shell + "".join(f"{c} &\n" for c in self.vsock_proxy_commands()) + "wait\n",
            "parent-egress-socat.sh": shell + "".join(f"{c} &\n" for c in self.socat_egress()) + "wait\n",
            "parent-ingress.sh": shell + "".join(f"{c} &\n" for c in self.ingress()) + "wait\n",
            "endpoints.json": json.dumps(self.to_json(), indent=2) + "\n",
        }


def _yaml_scalar(text: str) -> str:
    return f'"{text}"' if ":" in text else text  # an IPv6 address: quoted, as YAML flow mappings need


def plan(found: Found, *, platform: str = "nitro", enclave_cid: int | None = None,
         parent_cid: int = NITRO_PARENT_CID) -> Plan:
    dials = sorted(found.dials.values(), key=lambda e: e.key)
    allocate(dials, taken=found.serves)
    return Plan(platform, parent_cid, enclave_cid, dials, sorted(found.serves.values(), key=lambda s: s.port))


def missing_from_map(plan_: Plan, map_value: str) -> list[str]:
    """Endpoints the program dials that a deployed VSOCK_CID_MAP value has no entry for, read as the
    runtime reads the map: keys parsed by its own `_map_key`, looked up as HOST:PORT, then HOST, then *."""
    map_key = contract().map_key
    keys = {map_key(key) for key in (entry.partition("=")[0].strip().lower() for entry in map_value.split(",")) if key}
    return [e.key for e in plan_.dials if f"{e.host}:{e.port}" not in keys and e.host not in keys and "*" not in keys]
