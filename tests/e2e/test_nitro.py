"""AWS Nitro Enclaves end to end, in one sandbox guest that plays the enclave, its parent and the
internet, with certificate checks on everywhere.

The service (programs/enclave_service.py, Flask served by gunicorn) is written for any machine: on
each request it fetches two HTTPS services that are both on port 443 under their own names
(requests), and asks AWS STS who it is (botocore, with credentials from the instance metadata
service). The `ported` fixture ports it with `vsockport rewrite`, prepare.py its libraries; nothing
is edited by hand. `vsockport endpoints` generates the rest, which runs as written:

- the internet: openssl s_server for orders.example.com and prices.example.net, and moto for
  sts.amazonaws.com, each on port 443 of its own loopback address (named in /etc/hosts)
  with a certificate for its own name from a CA the test makes; moto as IMDS on 169.254.169.254:80;
- the parent (CID 1 here, CID 3 on Nitro): the generated parent-egress-socat.sh and parent-ingress.sh
  lines (vsock-proxy itself cannot be installed here);
- the enclave: gunicorn with the generated VSOCK_CID_MAP; curl's request enters through the ingress.

The first configuration comes from the code alone and lacks STS, whose host botocore builds at run
time: the request fails with the runtime's one line naming the endpoint and the entry to add, the
run's VSOCK_RECORD has it, `endpoints --check-map` names it, and the configuration generated again
with the recording serves the request, every endpoint found before keeping its vsock port.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import backend_env, program, wait_for_tcp, wait_for_vsock_listener
from tests.e2e.prepare import peer_site_dir
from tests.e2e.test_real_programs import stop
from tests.e2e.test_tls import issue, make_ca

WEB = {"orders.example.com": ("127.0.0.2", "orders: 3 open"), "prices.example.net": ("127.0.0.3", "prices: 2 changed")}
STS = ("sts.amazonaws.com", "127.0.0.4")  # botocore 1.35 calls us-east-1 STS by its global name
IMDS = "169.254.169.254"


@pytest.fixture
def internet():
    """The remote hosts' names and the instance metadata address, in this (throw-away) guest only."""
    hosts = Path("/etc/hosts")
    before = hosts.read_text()
    names = {**{name: address for name, (address, _) in WEB.items()}, STS[0]: STS[1]}
    hosts.write_text(before + "".join(f"{address} {name}\n" for name, address in names.items()))
    subprocess.run(["ip", "addr", "add", f"{IMDS}/32", "dev", "lo"], check=True)
    try:
        yield
    finally:
        subprocess.run(["ip", "addr", "del", f"{IMDS}/32", "dev", "lo"], check=False)
        hosts.write_text(before)


def endpoints(*args: str) -> tuple[int, dict, str]:
    """`vsockport endpoints ... --output-format json`, in-process (start-up is slow in the guest)."""
    from click.testing import CliRunner

    from vsockport.cli import main

    done = CliRunner().invoke(main, ["endpoints", *args, "--output-format", "json"])
    return done.exit_code, json.loads(done.stdout), done.stderr


def forwarders(script: Path, only: set[str] | None = None) -> list[subprocess.Popen]:
    """Run a generated parent script's socat lines as written (those for `only` keys, if given)."""
    started = []
    for line in script.read_text().splitlines():
        if line.startswith("socat ") and (only is None or any(line.endswith(f"TCP:{key} &") for key in only)):
            started.append(subprocess.Popen(shlex.split(line.removesuffix(" &")), stderr=subprocess.DEVNULL))
    return started


def enclave(ported: Path, port: int, cid_map: str, record: Path, ca: Path, log: Path) -> subprocess.Popen:
    """The ported service under gunicorn, as an enclave's entry point starts it."""
    env = backend_env(None, ported / "site", {
        "VSOCK_CID_MAP": cid_map, "VSOCK_RECORD": str(record),
        "REQUESTS_CA_BUNDLE": str(ca), "AWS_CA_BUNDLE": str(ca),  # trust the test's CA, and only it
        "HOME": str(log.parent), "AWS_CONFIG_FILE": str(log.parent / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(log.parent / "none"),
        # One more hop than on an instance, under an emulated CPU: give IMDS time.
        "AWS_METADATA_SERVICE_TIMEOUT": "60", "AWS_METADATA_SERVICE_NUM_ATTEMPTS": "2",
    })
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        env.pop(name, None)
    with log.open("w") as out:
        return subprocess.Popen([sys.executable, "-S", "-m", "gunicorn", "--workers", "1", "--timeout", "900",
                                 "--bind", f"0.0.0.0:{port}", "enclave_service:app"],
                                cwd=ported / "programs", stdout=out, stderr=subprocess.STDOUT, env=env)


def shut_down(gunicorn: subprocess.Popen) -> None:
    """As an enclave's service manager does: SIGTERM, so the arbiter stops its workers too (a killed
    arbiter leaves a worker accepting on the port for a while)."""
    gunicorn.terminate()
    try:
        gunicorn.wait(timeout=300)
    except subprocess.TimeoutExpired:
        gunicorn.kill()
        gunicorn.wait()


def curl(port: int) -> subprocess.CompletedProcess:
    return subprocess.run([program("curl"), "-sS", "--max-time", "900", "-w", "\n%{http_code}", f"http://127.0.0.1:{port}/"],
                          capture_output=True, text=True, timeout=960)


def test_enclave_service_runs_behind_the_generated_parent(ported, port, tmp_path, internet):
    ca = make_ca(tmp_path)
    peers = []
    parent = []
    gunicorn = None
    try:
        for name, (address, text) in WEB.items():
            cert, key = issue(tmp_path, name)
            web = tmp_path / name
            web.mkdir()
            (web / "status.txt").write_text(text + "\n")
            peers.append(subprocess.Popen(
                [program("openssl"), "s_server", "-accept", f"{address}:443", "-cert", str(cert), "-key", str(key),
                 "-WWW", "-quiet"], cwd=web, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL))
        cert, key = issue(tmp_path, STS[0])
        moto = [sys.executable, "-S", "-m", "moto.server"]
        moto_env = {**os.environ, "PYTHONPATH": str(peer_site_dir())}
        peers.append(subprocess.Popen([*moto, "-H", STS[1], "-p", "443", "-c", str(cert), "-k", str(key)],
                                      env=moto_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        peers.append(subprocess.Popen([*moto, "-H", IMDS, "-p", "80"], env=moto_env, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
        for address, _ in WEB.values():
            wait_for_tcp(443, host=address)
        wait_for_tcp(443, host=STS[1], timeout=300)
        wait_for_tcp(80, host=IMDS, timeout=300)

        # 1. The configuration from the code: the service's two URLs and botocore's IMDS address.
        program_paths = [str(ported / "programs" / "enclave_service.py"), str(ported / "site" / "botocore")]
        common = ["--parent-cid", "1", "--enclave-cid", "1", "--serve", str(port)]
        code, first, stderr = endpoints(*program_paths, *common, "--write", str(tmp_path / "parent"))
        assert code == 0, stderr
        first_ports = {f"{e['host']}:{e['port']}": e["vport"] for e in first["dials"]}
        assert {"orders.example.com:443", "prices.example.net:443", f"{IMDS}:80"} <= set(first_ports)
        assert f"{STS[0]}:443" not in first_ports
        assert first["ingress"] == [f"socat TCP-LISTEN:{port},fork,reuseaddr VSOCK-CONNECT:1:{port}"]
        parent += forwarders(tmp_path / "parent" / "parent-egress-socat.sh")
        parent += forwarders(tmp_path / "parent" / "parent-ingress.sh")
        for vport in first_ports.values():
            wait_for_vsock_listener(vport)
        wait_for_tcp(port)

        record = tmp_path / "dialed.jsonl"
        gunicorn = enclave(ported, port, first["vsock_cid_map"], record, ca, tmp_path / "enclave-1.log")
        wait_for_vsock_listener(port, timeout=300)
        failed = curl(port)
        assert failed.stdout.endswith("\n500"), failed.stdout + failed.stderr
        shut_down(gunicorn)
        log = (tmp_path / "enclave-1.log").read_text()
        assert (f"no CID for {STS[0]} port 443; add {STS[0]}=CID (or {STS[0]}:443=CID:PORT) to VSOCK_CID_MAP"
                in log), log[-5000:]

        # 2. What the run recorded names the missing endpoint; generated again, the map has it.
        code, second, stderr = endpoints(*program_paths, *common, "--recorded", str(record),
                                         "--check-map", first["vsock_cid_map"], "--write", str(tmp_path / "parent-2"))
        assert code == 1 and second["missing_from_map"] == [f"{STS[0]}:443"], stderr
        second_ports = {f"{e['host']}:{e['port']}": e["vport"] for e in second["dials"]}
        assert f"{STS[0]}:443: missing from the map given with --check-map: add {STS[0]}:443=1:" in stderr
        assert {key: second_ports[key] for key in first_ports} == first_ports  # stable vsock ports
        parent += forwarders(tmp_path / "parent-2" / "parent-egress-socat.sh", only={f"{STS[0]}:443"})
        wait_for_vsock_listener(second_ports[f"{STS[0]}:443"])

        gunicorn = enclave(ported, port, second["vsock_cid_map"], record, ca, tmp_path / "enclave-2.log")
        wait_for_vsock_listener(port, timeout=300)
        served = curl(port)
        log = (tmp_path / "enclave-2.log").read_text()
        assert served.stdout == ("orders: 3 open\nprices: 2 changed\n"
                                 "account 123456789012 with iam-role key test-key\n\n200"), served.stderr + log[-5000:]
    finally:
        if gunicorn is not None:
            shut_down(gunicorn)
        stop(*parent, *peers)
