"""HTTPS through a vsock forwarder with certificate checks on: the ported clients send SNI for, and
verify the certificate of, the host they asked for, not a CID or a loopback name.

Two TLS web servers (openssl s_server, certificates from a CA this test makes) play two HTTPS
services that are both on port 443 under their own names; each is reached over its own vsock port
through a socat forwarder, as an enclave's parent forwards them. The map sends each name's port 443
to its own vsock port: `files.internal:443=1:P1,api.internal:443=1:P2`.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.e2e.conftest import program, python, wait_for_tcp, wait_for_vsock_listener
from tests.e2e.test_real_programs import socat, stop


def _openssl(folder: Path, *args: str) -> None:
    done = subprocess.run([program("openssl"), *args], cwd=folder, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def make_ca(folder: Path) -> Path:
    """A CA of the test's own (ca.pem, ca.key in `folder`): clients trust it and nothing else."""
    _openssl(folder, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
             "-days", "2", "-subj", "/CN=vsockport test CA")
    return folder / "ca.pem"


def issue(folder: Path, name: str, *more_names: str) -> tuple[Path, Path]:
    """A server certificate signed by make_ca's CA for `name` (and `more_names`): (cert, key)."""
    _openssl(folder, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
             "-subj", f"/CN={name}")
    (folder / f"{name}.ext").write_text("subjectAltName=" + ",".join(f"DNS:{n}" for n in (name, *more_names)) + "\n")
    _openssl(folder, "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext")
    return folder / f"{name}.pem", folder / f"{name}.key"


def test_https_clients_keep_their_host_names_through_vsock_forwarders(ported, port, tmp_path):
    ca = make_ca(tmp_path)
    cert, key = issue(tmp_path, "files.internal", "api.internal")  # not wrong.internal
    servers, bridges = [], []
    names = {"files.internal": port, "api.internal": port + 1}
    try:
        for offset, name in enumerate(names):
            web = tmp_path / name
            web.mkdir()
            (web / "page.txt").write_text(f"served by {name}\n")
            tcp_port = port + 10 + offset
            servers.append(subprocess.Popen(
                [program("openssl"), "s_server", "-accept", f"127.0.0.1:{tcp_port}", "-cert", str(cert), "-key", str(key),
                 "-WWW", "-quiet"],
                cwd=web, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            wait_for_tcp(tcp_port)
            bridges.append(socat(f"VSOCK-LISTEN:{names[name]},reuseaddr,fork", f"TCP:127.0.0.1:{tcp_port}"))
            wait_for_vsock_listener(names[name])
        cid_map = ",".join([f"{name}:443=1:{vport}" for name, vport in names.items()] +
                           [f"wrong.internal:443=1:{port}"])  # a name the certificate does not carry
        done = python("tls_fetch.py", str(ca), *names, "--wrong", "wrong.internal", cwd=ported / "programs",
                      site=ported / "site", env={"VSOCK_CID_MAP": cid_map}, timeout=600)
    finally:
        stop(*bridges, *servers)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    clients = ("requests", "urllib3", "http_client", "urllib_request", "httpx", "aiohttp")
    expected = []
    for client in clients:
        expected += [f"{client} {name} 200 served by {name}" for name in names]
        expected.append(f"{client} wrong.internal refused")
    assert lines == expected, done.stdout + done.stderr
