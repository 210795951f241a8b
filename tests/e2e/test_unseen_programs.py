"""Programs built on twenty-five PyPI projects that no issue named before they were ported, each ported
with zero manual edits (the library with `vsockport rewrite --unsafe-fixes`, by tests/e2e/prepare.py;
the program beside it by the `ported` fixture) and run over real kernel vsock against a real peer:
Twisted, Apache Thrift, Tornado, waitress, werkzeug, aiosmtpd with smtplib, prometheus_client scraped
by curl, websocket-client against websockets, pymemcache with memcached, ldap3 with OpenLDAP's slapd,
pg8000 with PostgreSQL, imapclient with Dovecot, mysql-connector-python (pure mode) with MariaDB,
asyncssh with OpenSSH, pika and stomp.py with RabbitMQ, kazoo with ZooKeeper, httpx (sync and async), aiohttp's server and client, and servers served to
curl: gunicorn, cheroot, Django's, gevent's, uvicorn with uvloop and httptools (what
uvicorn[standard] installs) and Sanic. TCP-only peers are reached through a socat bridge, as a guest
reaches a service on its host; curl reaches the ported servers the same way.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import program, python, running, wait_for_tcp, wait_for_vsock_listener
from tests.e2e.prepare import LDAP_PASSWORD, NOBODY, peers_dir, postgres_bin, slapd_conf
from tests.e2e.test_real_programs import curl_through_socat, socat, stop, tcp_peer_over_vsock


def run(ported, name: str, port: int, backend: str | None = None):
    done = python(f"{name}.py", str(port), cwd=ported / "programs", backend=backend, site=ported / "site", timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.splitlines()


def served_to_curl(ported, name: str, port: int, path: str = "/", ready: str | None = None, backend: str | None = None,
                   args: tuple[str, ...] = ()):
    """Start a ported server program, fetch `path` from it with curl through socat, stop it."""
    with running(sys.executable, "-S", f"{name}.py", str(port), *args, cwd=ported / "programs", ready=ready,
                 backend=backend, site=ported / "site") as server:
        try:
            wait_for_vsock_listener(port, timeout=120)
        except AssertionError:
            server.kill()
            raise AssertionError(server.stderr.read()) from None
        return curl_through_socat(port, port + 5, path)


def test_the_libraries_are_ported_without_anything_left_silent(ported):
    """Where each library reaches TCP/IP, and that nothing is left for a person except what the log
    names: IP-address parsing (VS014), prometheus_client's push-gateway opener (VS011), a few UDP
    sockets (VS012) and the socket pairs kept on TCP/IP (VS013 notes)."""
    site, log = ported / "site", (ported / "libraries.log").read_text()
    assert "vsock_socket(self.addressFamily, self.socketType)" in (site / "twisted" / "internet" / "tcp.py").read_text()
    assert "socket_module=vsock_socket_module" in (site / "pymemcache" / "client" / "base.py").read_text()
    assert "vsock_getaddrinfo(" in (site / "tornado" / "netutil.py").read_text()
    assert "vsock_server_class(" in (site / "werkzeug" / "serving.py").read_text()
    review = [line for line in log.splitlines() if "[needs-review]" in line]
    assert not [line for line in review if " VS016 " in line], review  # the audit found nothing left over
    for package in ("twisted", "thrift", "tornado", "waitress", "werkzeug", "aiosmtpd", "prometheus_client",
                    "websocket", "pymemcache", "ldap3", "pg8000"):
        assert (site / package / "vsock_runtime.py").is_file(), package
    assert re.search(r"site/prometheus_client/exposition\.py:\d+:\d+: VS011 build_opener stays on TCP/IP", log)


def test_twisted_listen_tcp_and_connect_tcp(ported, port, backend):
    """Twisted's reactor, both ends: its resolver's getaddrinfo, its address tables keyed by family
    (`_afToType[family]`) and its IPv4Address objects all see IPv4-looking vsock addresses."""
    assert run(ported, "twisted_echo", port, backend) == ["TWISTED OVER VSOCK True"]


def test_thrift_tsocket_and_tserver(ported, port, backend):
    assert run(ported, "thrift_echo", port, backend) == ["THRIFT OVER VSOCK"]


def test_tornado_http_server_and_async_http_client(ported, port, backend):
    """Tornado's bind_sockets (a getaddrinfo + socket + bind loop) and its happy-eyeballs TCPClient over
    the loop's getaddrinfo, in one process (the program prints its own fetch before it goes on
    serving: the server waits for that line), then curl as a second client."""
    done = served_to_curl(ported, "tornado_app", port, ready="200 hello from tornado, client 127.0.0.1", backend=backend)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "hello from tornado, client 127.0.0.1\n"


def test_waitress_serves_curl(ported, port):
    done = served_to_curl(ported, "waitress_app", port)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "hello from waitress, client 127.0.0.1\n"


def test_werkzeug_development_server_serves_curl(ported, port):
    done = served_to_curl(ported, "werkzeug_app", port)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "hello from werkzeug, client 127.0.0.1\n"


def test_django_runserver_serves_curl(ported, port):
    """`manage.py runserver` as a Django user starts it (the program is its own manage.py): Django's
    WSGIServer derives from wsgiref's, which the port adapts."""
    done = served_to_curl(ported, "django_site", port)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "hello from django, client 127.0.0.1\n"


def test_gevent_pywsgi_serves_curl(ported, port):
    """gevent's sockets wrap its own class derived from the C socket type (`_socket.socket`), made with
    the family gevent's callers give: the port derives that class from vsock_socket_class(), so its
    StreamServer listens on vsock instead of TCP loopback."""
    assert "class _wrefsocket(vsock_socket_class(_socket.socket)):" in (ported / "site" / "gevent" / "_socket3.py").read_text()
    done = served_to_curl(ported, "gevent_pywsgi", port)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "hello from gevent, client 127.0.0.1\n"


def test_uvicorn_standard_serves_curl(ported, port):
    """uvicorn with uvloop and httptools installed picks both by itself. libuv cannot carry vsock (it
    sets TCP_NODELAY in C on every accepted socket): VS018 keeps uvicorn's uvloop setup on asyncio's
    loop, and httptools parses the requests as it would over TCP."""
    site = ported / "site"
    assert (site / "uvloop" / "__init__.py").is_file() and (site / "httptools" / "__init__.py").is_file()
    assert "vsock_uvloop.EventLoopPolicy()" in (site / "uvicorn" / "loops" / "uvloop.py").read_text()
    done = served_to_curl(ported, "uvicorn_standard", port)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "hello from uvicorn[standard] (HttpToolsProtocol, _UnixSelectorEventLoop), client 127.0.0.1\n"


def test_sanic_serves_curl(ported, port):
    """Sanic as its docs run it in one process: its own socket binding, uvloop when installed (kept on
    asyncio's loop by VS018), httptools."""
    done = served_to_curl(ported, "sanic_app", port)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "hello from sanic, client 127.0.0.1\n"


def test_prometheus_client_metrics_scraped_by_curl(ported, port):
    done = served_to_curl(ported, "prometheus_server", port, "/metrics", ready="metrics served")
    assert done.returncode == 0, done.stderr
    assert "vsockport_hits_total 3.0" in done.stdout


def test_aiosmtpd_receives_smtplib_mail(ported, port):
    assert run(ported, "aiosmtpd_mail", port) == ["received for host@vsockport.test - mail over vsock", "sent"]


def test_websocket_client_talks_to_websockets(ported, port):
    assert run(ported, "websocket_client_echo", port) == ["kcosv revo tneilc-tekcosbew"]


def test_pymemcache_with_memcached(ported, port, backend):
    """pymemcache makes its sockets through a `socket_module=socket` parameter: ported to the
    runtime's stand-in module."""
    cache_port = port + 6
    with tcp_peer_over_vsock([program("memcached"), "-u", "root", "-l", "127.0.0.1", "-p", str(cache_port)], cache_port, port):
        assert run(ported, "pymemcache_client", port, backend) == ["ported None True"]


def test_ldap3_with_slapd(ported, port):
    ldap_port = port + 6
    slapd = [program("slapd"), "-d", "0", "-f", str(slapd_conf()), "-h", f"ldap://127.0.0.1:{ldap_port}/"]
    with tcp_peer_over_vsock(slapd, ldap_port, port):
        assert run(ported, "ldap3_search", port) == ["vsockport vsockport e2e"]
    assert LDAP_PASSWORD == "secret"  # what ldap3_search.py binds with


def test_pg8000_with_postgresql(ported, port):
    pg_port = port + 6
    postgres = ["runuser", "-u", NOBODY, "--", str(postgres_bin() / "postgres"), "-D", str(peers_dir() / "pgdata"),
                "-k", "/tmp", "-p", str(pg_port), "-c", "listen_addresses=127.0.0.1"]
    with tcp_peer_over_vsock(postgres, pg_port, port):
        assert run(ported, "pg8000_query", port) == ["['vsock', 42]"]


def test_imapclient_with_dovecot(ported, port):
    """imapclient's own imaplib subclass makes its socket with socket.create_connection; Dovecot, a real
    IMAP server, stores the message it appends and answers the search."""
    imap_port = port + 6
    work = Path("/var/tmp/vsockport-e2e-dovecot")  # in the guest: its writes vanish with it
    shutil.rmtree(work, ignore_errors=True)
    (work / "mail").mkdir(parents=True)
    work.chmod(0o755)  # Dovecot's login processes run as its own unprivileged users
    shutil.chown(work / "mail", NOBODY)
    conf = work / "dovecot.conf"
    conf.write_text(
        f"protocols = imap\nlisten = 127.0.0.1\nssl = no\ndisable_plaintext_auth = no\nauth_mechanisms = plain login\n"
        f"base_dir = {work}/run\nstate_dir = {work}/state\nlog_path = {work}/dovecot.log\n"
        "passdb {\n  driver = static\n  args = password=secret\n}\n"
        f"userdb {{\n  driver = static\n  args = uid={NOBODY} gid=nogroup home={work}/mail/%u\n}}\n"
        "mail_location = maildir:~/Maildir\n"
        f"service imap-login {{\n  chroot =\n  inet_listener imap {{\n    port = {imap_port}\n  }}\n}}\n"
        "service anvil {\n  chroot =\n}\n"
    )
    with tcp_peer_over_vsock([program("dovecot"), "-F", "-c", str(conf)], imap_port, port):
        done = python("imapclient_mail.py", str(port), cwd=ported / "programs", site=ported / "site", timeout=300)
    log = (work / "dovecot.log").read_text() if (work / "dovecot.log").exists() else ""
    assert done.returncode == 0, done.stdout + done.stderr + log
    assert done.stdout.splitlines() == ["1 mail over vsock"]


def test_mysql_connector_with_mariadb(ported, port):
    """mysql-connector-python's pure-Python protocol (its C extension is VS017's to report) against a
    real MariaDB server: DDL, a parameterised insert, a select."""
    db_port = port + 6
    mariadb = ["runuser", "-u", NOBODY, "--", program("mariadbd"), "--no-defaults", f"--datadir={peers_dir() / 'mariadb'}",
               f"--port={db_port}", "--bind-address=127.0.0.1", "--socket=/tmp/mariadb-e2e.sock", "--skip-grant-tables",
               "--innodb-buffer-pool-size=16M", "--pid-file=/tmp/mariadb-e2e.pid"]
    with tcp_peer_over_vsock(mariadb, db_port, port):
        assert run(ported, "mysql_query", port) == ["[('vsock', 42)] MySQLConnection"]


def test_asyncssh_with_openssh(ported, port):
    """asyncssh's client (loop.create_connection underneath) logs in to OpenSSH's sshd with a key and
    runs a command."""
    ssh_port = port + 6
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation folder; the guest's /run is its own
    peers = peers_dir()
    sshd = [program("sshd"), "-D", "-e", "-f", "/dev/null", "-p", str(ssh_port), "-h", str(peers / "ssh_host_ed25519_key"),
            "-o", "ListenAddress=127.0.0.1", "-o", f"AuthorizedKeysFile={peers / 'authorized_keys'}",
            "-o", "StrictModes=no", "-o", "PermitRootLogin=prohibit-password", "-o", "PidFile=/tmp/sshd-e2e.pid"]
    with tcp_peer_over_vsock(sshd, ssh_port, port):
        done = python("asyncssh_run.py", str(port), str(peers / "client_ed25519_key"), cwd=ported / "programs",
                      site=ported / "site", timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines() == ["ssh over vsock"]


def test_pika_and_stomp_with_rabbitmq(ported, port):
    """pika (AMQP) and stomp.py (STOMP) against one RabbitMQ broker with its STOMP plugin: each
    publishes to a queue and reads the message back."""
    amqp_port, stomp_port = port + 6, port + 7
    work = Path("/var/tmp/vsockport-e2e-rabbitmq")  # in the guest: its writes vanish with it
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    (work / "rabbitmq.conf").write_text(f"listeners.tcp.default = 127.0.0.1:{amqp_port}\n"
                                        f"stomp.listeners.tcp.1 = 127.0.0.1:{stomp_port}\n")
    (work / "enabled_plugins").write_text("[rabbitmq_stomp].\n")
    shutil.chown(work, "rabbitmq")
    env = {"HOME": "/var/lib/rabbitmq", "RABBITMQ_CONFIG_FILE": f"{work}/rabbitmq.conf", "RABBITMQ_LOGS": f"{work}/broker.log",
           "RABBITMQ_ENABLED_PLUGINS_FILE": f"{work}/enabled_plugins", "RABBITMQ_MNESIA_BASE": f"{work}/mnesia",
           "RABBITMQ_LOG_BASE": str(work), "RABBITMQ_NODENAME": "rabbit@localhost"}
    broker = subprocess.Popen(["runuser", "-u", "rabbitmq", "--", "env", *(f"{k}={v}" for k, v in env.items()),
                               "/usr/lib/rabbitmq/bin/rabbitmq-server"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    bridges = [socat(f"VSOCK-LISTEN:{vsock},reuseaddr,fork", f"TCP:127.0.0.1:{tcp}")
               for vsock, tcp in ((port, amqp_port), (port + 1, stomp_port))]
    try:
        for tcp in (amqp_port, stomp_port):
            wait_for_tcp(tcp, timeout=400)  # the Erlang VM starts in a few seconds natively, minutes emulated
        wait_for_vsock_listener(port)
        wait_for_vsock_listener(port + 1)
        assert run(ported, "pika_queue", port) == ["amqp over vsock"]
        assert run(ported, "stomp_queue", port + 1) == ["stomp over vsock"]
    finally:
        stop(*bridges)
        os.killpg(broker.pid, signal.SIGKILL)  # the broker's Erlang VM and epmd, not only the wrapper
        broker.wait()


@pytest.mark.parametrize("name", ["twisted_echo", "thrift_echo"])
def test_strict_mode_finds_nothing_left_on_tcp(ported, port, name):
    """The ported programs run clean under VSOCK_STRICT=1: no AF_INET socket and no IP lookup is made
    outside the socket pairs kept on purpose (Twisted's waker)."""
    done = python(f"{name}.py", str(port), cwd=ported / "programs", site=ported / "site", timeout=300,
                  env={"VSOCK_STRICT": "1"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "VsockStrictError" not in done.stderr


def test_gunicorn_workers_serve_curl(ported, port):
    """gunicorn's arbiter binds, then forked sync workers accept on the inherited vsock socket."""
    done = served_to_curl(ported, "gunicorn_serve", port)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "gunicorn served 127.0.0.1\n"  # REMOTE_ADDR: socat's CID (1, the loopback: "127.0.0.1")


def test_cheroot_serves_curl_and_httpx(ported, port):
    """cheroot checks the address getsockname() reports (a wildcard bind must read as 0.0.0.0); httpx,
    sync and async, is its client through httpcore and anyio."""
    done = served_to_curl(ported, "cheroot_serve", port, ready="cheroot ready")
    assert (done.returncode, done.stdout) == (0, "cheroot served 127.0.0.1\n"), done.stderr
    tcp_port = port + 6
    web = [sys.executable, "-m", "http.server", str(tcp_port), "--bind", "127.0.0.1", "--directory",
           str(ported / "programs")]
    with tcp_peer_over_vsock(web, tcp_port, port):
        assert run(ported, "httpx_client", port) == ["hello-file", "hello-file"]
    # httpcore's own HTTPConnection (imported relatively) is not http.client's: left alone.
    assert "vsock_client_class" not in (ported / "site" / "httpcore" / "_sync" / "connection_pool.py").read_text()


def test_aiohttp_server_and_client(ported, port):
    """aiohttp (with its C speedups: the guest runs this interpreter) serves its own ClientSession
    and curl."""
    assert run(ported, "aiohttp_app", port) == ["aiohttp ready", "200 aiohttp served 127.0.0.1"]
    done = served_to_curl(ported, "aiohttp_app", port, ready="aiohttp ready", args=("60",))
    assert (done.returncode, done.stdout) == (0, "aiohttp served 127.0.0.1"), done.stderr


def wait_for_zookeeper(port: int, timeout: float) -> None:
    """Poll until ZooKeeper serves sessions, not only accepts: it listens before its data is loaded and
    closes each connection until then, and kazoo's reconnects back off to a minute apart (a CI run whose
    guest was slower lost its whole budget so). Its `srvr` command says "Mode:" once it serves."""
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as probe:
                probe.sendall(b"srvr")
                reply = b"".join(iter(lambda: probe.recv(4096), b""))
            if b"Mode:" in reply:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"ZooKeeper on TCP 127.0.0.1:{port} did not serve within {timeout} s")


def test_kazoo_with_zookeeper(ported, port):
    """kazoo (ZooKeeper's Python client, its threading handler) against a real ZooKeeper server, a JVM
    reached through a socat bridge: an ephemeral node written and read back."""
    zk_port = port + 6
    work = Path("/var/tmp/vsockport-e2e-zookeeper")  # in the guest: its writes vanish with it
    shutil.rmtree(work, ignore_errors=True)
    (work / "data").mkdir(parents=True)
    (work / "zoo.cfg").write_text(f"tickTime=2000\ndataDir={work / 'data'}\nclientPort={zk_port}\n"
                                  "clientPortAddress=127.0.0.1\nadmin.enableServer=false\n4lw.commands.whitelist=srvr\n")
    server = subprocess.Popen([program("zkServer.sh"), "start-foreground", str(work / "zoo.cfg")],
                              env={**os.environ, "ZOO_LOG_DIR": str(work)}, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    bridge = socat(f"VSOCK-LISTEN:{port},reuseaddr,fork", f"TCP:127.0.0.1:{zk_port}")
    try:
        wait_for_zookeeper(zk_port, timeout=600)  # a JVM: seconds natively, minutes under the guest's emulation
        wait_for_vsock_listener(port)
        assert run(ported, "kazoo_node", port) == ["zookeeper over vsock"]
    finally:
        stop(bridge)
        os.killpg(server.pid, signal.SIGKILL)  # the JVM, not only the script that started it
        server.wait()

