"""Prepare the end-to-end suite's third-party programs on the host, before the sandbox boots (the
guest has no network, and porting 150 library files under the guest's emulated CPU takes minutes).

    python tests/e2e/prepare.py

- Debian packages for the real peers: redis-server, mosquitto (+ clients), curl, memcached, slapd,
  PostgreSQL, Dovecot, MariaDB, OpenSSH's server and RabbitMQ (apt-get, as root); a PostgreSQL data folder (initdb),
  an OpenLDAP database (slapadd), a MariaDB data folder (mariadb-install-db) and SSH keys (ssh-keygen)
  made here, where it is fast, for the guest to start the servers on.
- moto (with its dependencies, not ported) installed once into ~/.cache/vsockport/e2e/peer-site: it
  plays AWS STS and the instance metadata service for the Nitro enclave test.
- The pinned PyPI releases, downloaded once (not installed) into ~/.cache/vsockport/e2e.
- Every run: unpack them afresh into ~/.cache/vsockport/e2e/site as an installer would, port them with
  `vsockport rewrite` (log kept in rewrite.log), check that a second `vsockport diff` is clean, and
  byte-compile the result.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from vsockport.sandbox.setup import SetupError, _apt_install, _is_root  # noqa: E402

PEERS = {"redis-server": "redis-server", "mosquitto": "mosquitto", "mosquitto_sub": "mosquitto-clients", "curl": "curl",
         "memcached": "memcached", "slapd": "slapd", "slapadd": "slapd", "pg_ctlcluster": "postgresql",
         "openssl": "openssl", "dovecot": "dovecot-imapd", "mariadbd": "mariadb-server",
         "mariadb-install-db": "mariadb-server", "sshd": "openssh-server", "ssh-keygen": "openssh-client",
         "rabbitmq-server": "rabbitmq-server", "zkServer.sh": "zookeeper"}
# Ported and run by the e2e suite. Their own dependencies (click, h11; idna, certifi,
# charset-normalizer) come along and are ported too, where there is anything to port.
DISTRIBUTIONS = (
    "redis==5.0.1", "paho-mqtt==1.6.1", "uvicorn==0.29.0", "h11==0.14.0", "click==8.1.7",
    "requests==2.32.3", "urllib3==2.2.3", "idna==3.10", "certifi==2024.8.30", "charset-normalizer==3.4.0",
    "websockets==13.1",
    # Programs no issue named: Twisted, Apache Thrift, Tornado, waitress, werkzeug, aiosmtpd,
    # prometheus_client, websocket-client, pymemcache, ldap3, pg8000, and what they need.
    "twisted==26.10.0", "zope.interface==8.7", "attrs==26.1.0", "automat==25.4.16", "constantly==23.10.4",
    "hyperlink==21.0.0", "incremental==24.11.0", "typing_extensions==4.16.0",
    "thrift==0.25.0", "tornado==6.6.1", "waitress==3.0.2", "werkzeug==3.1.9", "markupsafe==3.0.4",
    "aiosmtpd==1.4.6", "atpublic==9.0.0", "prometheus_client==0.26.0", "websocket-client==1.9.2",
    "pymemcache==4.0.0", "ldap3==2.9.1", "pyasn1==0.6.5", "pg8000==1.31.6", "scramp==1.5.0", "asn1crypto==1.5.1",
    "python-dateutil==4.0.0", "six==1.17.0",
    # Tried as a user would on 2026-12-02: gunicorn, cheroot, httpx (with httpcore and anyio).
    "gunicorn==23.0.0", "packaging==24.1", "cheroot==10.0.1", "jaraco.functools==4.0.2", "more-itertools==10.5.0",
    "httpx==0.27.2", "httpcore==1.0.5", "anyio==4.4.0", "sniffio==1.3.1",
    "aiohttp==3.10.5", "aiosignal==1.3.1", "frozenlist==1.4.1", "multidict==6.1.0", "yarl==1.11.1",
    "aiohappyeyeballs==2.4.0",
    # The Nitro enclave service (issue 23): Flask served by gunicorn, requests and botocore.
    "flask==3.0.3", "itsdangerous==2.2.0", "blinker==1.9.0", "jinja2==3.1.6", "botocore==1.35.36",
    "jmespath==1.0.1",
    # Unseen real programs, round three: Django's development server, gevent's WSGI server.
    "django==5.1.4", "asgiref==3.8.1", "sqlparse==0.5.3", "gevent==24.11.1", "greenlet==3.1.1", "zope.event==5.0",
    # uvicorn[standard]'s loop and HTTP parser, which uvicorn picks when they are installed.
    "uvloop==0.21.0", "httptools==0.6.4",
    # Sanic, with what it requires (uvloop, httptools, websockets and multidict are above).
    "sanic==24.6.0", "sanic-routing==23.12.0", "aiofiles==24.1.0", "html5tagger==1.3.0", "tracerite==1.1.1",
    "ujson==5.10.0", "setuptools==75.1.0",
    # imapclient, against Dovecot; mysql-connector-python (its pure-Python mode) against MariaDB; asyncssh
    # against OpenSSH's sshd.
    "imapclient==3.0.1", "mysql-connector-python==9.1.0",
    "asyncssh==2.17.0", "cryptography==43.0.1", "cffi==1.17.1", "pycparser==2.22",
    # pika (AMQP) and stomp.py against RabbitMQ (stomp.py's docopt serves only its command line).
    "pika==1.3.2", "stomp.py==8.2.0",
    # kazoo against ZooKeeper (its threading handler; gevent and eventlet are above).
    "kazoo==2.10.0",
    # pyftpdlib, an FTP server for ftplib's client.
    "pyftpdlib==2.2.0",
)
# Not ported: moto's server plays AWS (STS over HTTPS, and the instance metadata service) in the guest.
PEER_DISTRIBUTIONS = ("moto==5.0.28", "flask==3.0.3", "flask-cors==5.0.0")
# Where system programs live besides PATH (ZooKeeper's scripts are in its own folder on Debian).
SYSTEM_PROGRAM_FOLDERS = ("/usr/sbin", "/usr/bin", "/usr/share/zookeeper/bin")
LDAP_SUFFIX = "dc=vsockport,dc=test"
LDAP_ROOT, LDAP_PASSWORD = f"cn=admin,{LDAP_SUFFIX}", "secret"
NOBODY = "nobody"


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "vsockport" / "e2e"


def downloads_dir() -> Path:
    return cache_dir() / "downloads"


def site_dir() -> Path:
    return cache_dir() / "site"


def peer_site_dir() -> Path:
    """The Python peers, installed as they are (not ported): moto."""
    return cache_dir() / "peer-site"


def peers_dir() -> Path:
    """Where the peers keep their data: not under root's home, which PostgreSQL's user cannot enter,
    and not under /tmp, which the guest replaces with a fresh tmpfs."""
    return Path("/var/tmp/vsockport-e2e-peers")


def postgres_bin() -> Path:
    """The folder of PostgreSQL's server programs (Debian keeps them per major version)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
    if not found:
        raise SetupError("PostgreSQL's server is missing: sudo apt-get install -y postgresql")
    return found[-1].parent


def slapd_conf() -> Path:
    return peers_dir() / "slapd.conf"


def prepare_peer_data() -> None:
    """Fresh PostgreSQL, OpenLDAP and MariaDB data and SSH keys, each time (a run may have changed them)."""
    folder = peers_dir()
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "pgdata").mkdir(parents=True)
    (folder / "ldap").mkdir()
    shutil.chown(folder / "pgdata", NOBODY)  # initdb (and postgres) refuse to run as root
    initdb = [str(postgres_bin() / "initdb"), "-D", str(folder / "pgdata"), "-U", "postgres", "--auth=trust"]
    done = subprocess.run(["runuser", "-u", NOBODY, "--", *initdb], capture_output=True, text=True)
    if done.returncode != 0:
        raise SetupError(f"initdb failed:\n{done.stderr[-2000:]}")
    slapd_conf().write_text(
        "include /etc/ldap/schema/core.schema\ninclude /etc/ldap/schema/cosine.schema\n"
        "modulepath /usr/lib/ldap\nmoduleload back_mdb\n"
        f"pidfile {folder}/ldap/slapd.pid\ndatabase mdb\nsuffix \"{LDAP_SUFFIX}\"\n"
        f"rootdn \"{LDAP_ROOT}\"\nrootpw {LDAP_PASSWORD}\ndirectory {folder}/ldap\n"
    )
    entry = f"dn: {LDAP_SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: vsockport\no: vsockport e2e\n"
    done = subprocess.run(["slapadd", "-f", str(slapd_conf())], input=entry, capture_output=True, text=True)
    if done.returncode != 0:
        raise SetupError(f"slapadd failed:\n{done.stderr[-2000:]}")
    (folder / "mariadb").mkdir()
    shutil.chown(folder / "mariadb", NOBODY)
    install_db = ["mariadb-install-db", "--no-defaults", f"--datadir={folder / 'mariadb'}", "--auth-root-authentication-method=normal",
                  "--skip-test-db"]
    done = subprocess.run(["runuser", "-u", NOBODY, "--", *install_db], capture_output=True, text=True)
    if done.returncode != 0:
        raise SetupError(f"mariadb-install-db failed:\n{done.stderr[-2000:]}")
    for key in ("ssh_host_ed25519_key", "client_ed25519_key"):  # sshd's host key; the client's, which it trusts
        done = subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / key)], capture_output=True, text=True)
        if done.returncode != 0:
            raise SetupError(f"ssh-keygen failed:\n{done.stderr[-2000:]}")
    shutil.copy(folder / "client_ed25519_key.pub", folder / "authorized_keys")


def _on_path(program: str) -> bool:
    return shutil.which(program) is not None or any(Path(d, program).exists() for d in SYSTEM_PROGRAM_FOLDERS)


def ensure_peers() -> None:
    missing = sorted({package for program, package in PEERS.items() if not _on_path(program)})
    if not missing and not list(Path("/usr/lib/postgresql").glob("*/bin/postgres")):
        missing = ["postgresql"]
    if not missing:
        return
    if not _is_root():
        raise SetupError(f"the e2e peers are missing; install them with: sudo apt-get install -y {' '.join(missing)}")
    _apt_install(missing, lambda message: print(f"prepare: {message}", flush=True))


def ensure_distributions() -> Path:
    target = downloads_dir()
    target.mkdir(parents=True, exist_ok=True)
    wanted = [spec for spec in DISTRIBUTIONS if not _downloaded(target, spec)]
    if wanted:
        print(f"prepare: downloading {' '.join(wanted)}", flush=True)
        done = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--dest", str(target), *wanted],
            capture_output=True, text=True,
        )
        if done.returncode != 0:
            raise SetupError(f"pip download failed:\n{done.stderr.strip()[-2000:]}")
    return target


def ensure_peer_distributions() -> None:
    """moto and what it needs, installed into peer_site_dir() once per set of pins."""
    folder = peer_site_dir()
    stamp = folder / "installed.txt"
    if stamp.is_file() and stamp.read_text().split() == list(PEER_DISTRIBUTIONS):
        return
    print(f"prepare: installing {' '.join(PEER_DISTRIBUTIONS)} (not ported)", flush=True)
    shutil.rmtree(folder, ignore_errors=True)
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-warn-conflicts", "--target", str(folder),
         *PEER_DISTRIBUTIONS], capture_output=True, text=True,
    )
    if done.returncode != 0:
        raise SetupError(f"pip install of the peers failed:\n{done.stderr.strip()[-2000:]}")
    stamp.write_text("\n".join(PEER_DISTRIBUTIONS) + "\n")


def _downloaded(folder: Path, spec: str) -> bool:
    name, _, version = spec.partition("==")
    stems = {name.replace("-", "_").replace(".", "_").lower(), name.lower()}  # zope.interface: zope_interface-8.7
    return any(
        f.name.lower().startswith(tuple(f"{stem}-{version}" for stem in stems)) for f in folder.iterdir()
    )


def unpack(archives: Path, site: Path) -> None:
    shutil.rmtree(site, ignore_errors=True)
    site.mkdir(parents=True)
    for archive in sorted(archives.iterdir()):
        if archive.suffix == ".whl":
            with zipfile.ZipFile(archive) as wheel:
                wheel.extractall(site)
        elif archive.name.endswith(".tar.gz"):  # an sdist: a src/ layout (paho-mqtt) or a flat one (pyftpdlib)
            with tarfile.open(archive) as sdist, tempfile.TemporaryDirectory() as scratch:
                sdist.extractall(scratch, filter="data")
                packages = list(Path(scratch).glob("*/src/*")) or [
                    p.parent for p in Path(scratch).glob("*/*/__init__.py") if p.parent.name not in ("tests", "test", "docs")]
                for package in packages:
                    if package.is_dir() and not package.name.endswith(".egg-info"):
                        shutil.copytree(package, site / package.name)


def port(site: Path) -> None:
    """Port the libraries with the real CLI: no errors, and a second run has nothing left to change.
    Exit 1 is accepted, for findings to review (requests' no_proxy IP matching); the e2e suite
    checks which findings those are."""
    command = [sys.executable, "-m", "vsockport"]
    # --unsafe-fixes: a library's hosts come from its callers at run time (vsock_cid(self.host) and the like).
    done = subprocess.run([*command, "rewrite", "--no-gitignore", "--unsafe-fixes", "--show-fixes", str(site)], capture_output=True, text=True)
    (site.parent / "rewrite.log").write_text(done.stderr)
    if done.returncode not in (0, 1):
        raise SetupError(f"vsockport rewrite exited {done.returncode}:\n{done.stderr.strip()[-3000:]}")
    again = subprocess.run([*command, "diff", "--no-gitignore", "--unsafe-fixes", str(site)], capture_output=True, text=True)
    if again.returncode not in (0, 1) or again.stdout:
        raise SetupError(f"a second vsockport diff is not clean ({again.returncode}):\n{again.stdout[-3000:]}")
    # Byte-compile here: the guest's emulated CPU would otherwise compile every import on every run.
    import compileall

    if not compileall.compile_dir(str(site), quiet=1):
        raise SetupError(f"the ported libraries in {site} do not compile")


def main() -> int:
    try:
        ensure_peers()
        ensure_peer_distributions()
        prepare_peer_data()
        folder = ensure_distributions()
        unpack(folder, site_dir())
        port(site_dir())
    except SetupError as exc:
        print(f"prepare: error: {exc}", file=sys.stderr)
        return 1
    print(f"prepare: peers present; {', '.join(DISTRIBUTIONS)} ported into {site_dir()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
