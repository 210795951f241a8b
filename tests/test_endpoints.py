"""`vsockport endpoints`: what a program dials and serves, the vsock ports each endpoint gets, and the
files the enclave and its parent are given."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from vsockport import endpoints
from vsockport.config import parse_map_entry
from vsockport.runtime.contract import RUNTIME_SOURCE

APP = b'''import http.client, socket, asyncio
import requests

API = "https://api.example.org/v1/items"
DB = ("db.internal", 5432)
PORT = 8080


def fetch():
    """Fetches https://docs.example.com/ (a docstring: not an endpoint)."""
    conn = http.client.HTTPSConnection("files.example.net")
    plain = http.client.HTTPConnection("metrics.internal:9100")
    sock = socket.create_connection(("db.internal", 5432))
    local = socket.create_connection(("localhost", 6379))
    return requests.get(API), requests.get("https://files.example.net/x"), conn, plain, sock, local


async def stream(loop, P):
    await asyncio.open_connection("queue.internal", 5672)
    await loop.create_connection(P, "cache.internal", 11211)


def serve():
    s = socket.socket()
    s.bind(("0.0.0.0", PORT))
    return asyncio.start_server(None, "0.0.0.0", 8443)
'''


def _found(data: bytes = APP) -> endpoints.Found:
    found = endpoints.Found()
    endpoints.scan_source(data, "app.py", found)
    return found


def test_the_endpoints_written_out_in_the_code():
    found = _found()
    assert sorted(found.dials) == ["api.example.org:443", "cache.internal:11211", "db.internal:5432",
                                   "files.example.net:443", "metrics.internal:9100", "queue.internal:5672"]
    assert found.dials["files.example.net:443"].sources == ["app.py:11", "app.py:15"]
    assert sorted(found.serves) == [8080, 8443]
    assert not found.errors


def test_allocation_is_stable_deterministic_and_avoids_the_reserved_ports():
    plan = endpoints.plan(_found())
    ports = {e.key: e.vport for e in plan.dials}
    assert all(endpoints.FIRST_PORT <= p <= endpoints.LAST_PORT for p in ports.values())
    assert len(set(ports.values())) == len(ports) and not set(ports.values()) & {8000, 9000}
    assert {e.key: e.vport for e in endpoints.plan(_found()).dials} == ports  # run to run
    grown = _found()
    for index in range(40):
        grown.dial(f"extra{index}.example.com", 443, "x.py:1")
    regrown = {e.key: e.vport for e in endpoints.plan(grown).dials}
    moved = [key for key in ports if regrown[key] != ports[key]]
    assert len(moved) <= 1, moved  # another endpoint moves one only on a collision of their names' slots


def test_allocation_never_hands_out_a_port_twice_even_when_slots_collide():
    many = [endpoints.Endpoint(f"h{i}.example", 443) for i in range(900)]
    endpoints.allocate(many)
    assert len({e.vport for e in many}) == 900 and not {e.vport for e in many} & endpoints.RESERVED_PORTS
    with pytest.raises(ValueError, match="no vsock port left"):
        endpoints.allocate([endpoints.Endpoint(f"h{i}.example", 443) for i in range(1000)])


def test_the_map_value_is_what_the_tool_and_the_runtime_read(monkeypatch):
    plan = endpoints.plan(_found())
    value = plan.map_value()
    for entry in value.split(","):
        key, _, target = entry.partition("=")
        assert parse_map_entry(key, target, "test") == (key, (3, int(target.split(":")[1])))
    # The runtime shipped into ported projects resolves each endpoint to the parent's vsock port for it.
    runtime: dict = {"__name__": "vsock_runtime_under_test"}
    exec(compile(RUNTIME_SOURCE.read_text(), str(RUNTIME_SOURCE), "exec"), runtime)
    monkeypatch.setenv("VSOCK_CID_MAP", value)
    for endpoint in plan.dials:
        cid, vport, used = runtime["_resolve"](endpoint.host, endpoint.port)
        assert (cid, vport, used) == (3, endpoint.vport, endpoint.key)
    with pytest.raises(runtime["VsockAddressError"], match="no CID for unknown.example port 443"):
        runtime["_resolve"]("unknown.example", 443)


def test_generated_files_follow_their_formats():
    plan = endpoints.plan(_found(), enclave_cid=16)
    files = plan.files()
    allowlist = files["vsock-proxy.yaml"].splitlines()
    # aws-nitro-enclaves-cli vsock_proxy's configuration: `allowlist:` and `- {address: HOST, port: PORT}`.
    assert "allowlist:" in allowlist
    entries = [line for line in allowlist if line.startswith("- ")]
    assert len(entries) == len(plan.dials)
    assert all(re.fullmatch(r"- \{address: [a-z0-9.-]+, port: \d+\}", line) for line in entries)
    assert "vsock-proxy 8" in files["parent-egress.sh"] and "--config vsock-proxy.yaml &" in files["parent-egress.sh"]
    assert "socat TCP-LISTEN:8080,fork,reuseaddr VSOCK-CONNECT:16:8080 &" in files["parent-ingress.sh"]
    assert files["vsock-cid-map.env"] == f"VSOCK_CID_MAP={plan.map_value()}\n"
    document = json.loads(files["endpoints.json"])
    assert document["parent_cid"] == 3 and len(document["dials"]) == 6 and document["ingress"] == plan.ingress()
    for name in ("parent-egress.sh", "parent-egress-socat.sh", "parent-ingress.sh"):
        assert subprocess.run(["sh", "-n", "-c", files[name]]).returncode == 0  # valid shell


def test_recorded_endpoints_are_added_and_runtime_misses_named(tmp_path):
    record = tmp_path / "record.jsonl"
    record.write_text(
        json.dumps({"op": "connect", "host": "kms.us-east-1.amazonaws.com", "port": 443, "cid": None, "vport": None,
                    "entry": None, "error": "no CID", "pid": 1}) + "\n"
        + json.dumps({"op": "bind", "host": "0.0.0.0", "port": 7000, "cid": "4294967295", "vport": 7000,
                      "entry": None, "error": None, "pid": 1}) + "\n" + "not json\n")
    found = endpoints.Found()
    endpoints.read_recorded(record, found)
    assert list(found.dials) == ["kms.us-east-1.amazonaws.com:443"] and list(found.serves) == [7000]
    assert found.unmapped_at_run_time == ["kms.us-east-1.amazonaws.com:443"]
    assert found.errors == [(f"{record}:3", "not a line VSOCK_RECORD writes: skipped")]


def test_the_command(tmp_path):
    (tmp_path / "app.py").write_bytes(APP)
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "vsockport", "endpoints", str(tmp_path), "--enclave-cid", "16",
                           "--write", str(out), "--output-format", "json"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document == {**json.loads((out / "endpoints.json").read_text()), "missing_from_map": [],
                        "unmapped_at_run_time": [], "errors": []}
    assert sorted(p.name for p in out.iterdir()) == ["endpoints.json", "parent-egress-socat.sh", "parent-egress.sh",
                                                    "parent-ingress.sh", "vsock-cid-map.env", "vsock-proxy.yaml"]
    partial = ",".join(document["vsock_cid_map"].split(",")[1:])  # one endpoint left out of a deployed map
    checked = subprocess.run([sys.executable, "-m", "vsockport", "endpoints", str(tmp_path), "--check-map", partial],
                             capture_output=True, text=True, timeout=60)
    first = document["dials"][0]
    assert checked.returncode == 1
    assert (f"{first['host']}:{first['port']}: missing from the map given with --check-map: add "
            f"{first['host']}:{first['port']}=3:{first['vport']}") in checked.stderr
    usage = subprocess.run([sys.executable, "-m", "vsockport", "endpoints"], capture_output=True, text=True, timeout=60)
    assert usage.returncode == 4 and "name the program's files" in usage.stderr


def test_the_parent_cid_can_be_given(tmp_path):
    """Off Nitro (a VM's host is CID 2; one machine with vsock_loopback is CID 1) the map and the
    printed header use the CID given."""
    (tmp_path / "app.py").write_bytes(APP)
    done = subprocess.run([sys.executable, "-m", "vsockport", "endpoints", str(tmp_path), "--parent-cid", "2",
                           "--output-format", "json"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["parent_cid"] == 2
    assert all(entry.split("=")[1].startswith("2:") for entry in document["vsock_cid_map"].split(","))
    text = subprocess.run([sys.executable, "-m", "vsockport", "endpoints", str(tmp_path), "--parent-cid", "2"],
                          capture_output=True, text=True, timeout=60)
    assert "the parent is CID 2" in text.stdout
    first = document["dials"][0]["host"]
    dropped = subprocess.run([sys.executable, "-m", "vsockport", "endpoints", str(tmp_path), "--exclude-endpoint", first,
                              "--output-format", "json"], capture_output=True, text=True, timeout=60)
    assert dropped.returncode == 0, dropped.stderr
    assert first not in [e["host"] for e in json.loads(dropped.stdout)["dials"]] and first not in dropped.stdout


def test_ignored_endpoints_are_left_out():
    """A documentation link in code looks like an endpoint; --exclude-endpoint drops it (HOST or HOST:PORT)
    from the map, the allowlist and the scripts."""
    found = endpoints.Found()
    endpoints.scan_source(b'GUIDE = "https://docs.example.com/guide.html"\nAPI = "https://api.example.com/v1"\n'
                          b'OLD = "http://api.example.com/"\n', "app.py", found)
    assert sorted(found.dials) == ["api.example.com:443", "api.example.com:80", "docs.example.com:443"]
    found.ignore(["DOCS.example.com", "api.example.com:80"])
    plan = endpoints.plan(found)
    assert [e.key for e in plan.dials] == ["api.example.com:443"]
    assert "docs.example.com" not in plan.allowlist_yaml() and ":80" not in plan.map_value()


def test_check_map_reads_keys_as_the_runtime_does():
    """An IPv6 endpoint's key is bracketed ([fd00:ec2::254]:80); the runtime's parser reads it, HOST:*
    and a bare host, so --check-map agrees with what a connect would find."""
    found = endpoints.Found()
    found.dial("fd00:ec2::254", 80, "a.py:1")
    found.dial("kms.example", 443, "a.py:2")
    plan = endpoints.plan(found)
    assert endpoints.missing_from_map(plan, "") == ["[fd00:ec2::254]:80", "kms.example:443"]
    assert endpoints.missing_from_map(plan, "[fd00:ec2::254]:80=3:8184, KMS.example:*=3") == []
    assert endpoints.missing_from_map(plan, "fd00:ec2::254=3,kms.example:80=3:8001") == ["kms.example:443"]
    assert endpoints.missing_from_map(plan, "*=3") == []
    assert endpoints.missing_from_map(plan, "[fd00:ec2::254]=3,[fd00:ec2::254]:*=3") == ["kms.example:443"]
