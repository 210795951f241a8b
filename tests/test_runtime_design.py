"""The runtime as a dependency must behave: importing it changes nothing, one copy serves a process,
code it did not port never meets it, its helpers take any socket-like object, and strict mode finds
what a static port missed. Real kernel sockets; nothing connects over vsock."""

from __future__ import annotations

import asyncio
import inspect
import os
import socket
import ssl
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.test_runtime import RUNTIME, fresh_registry, load_runtime, native, rt  # noqa: F401 (fixtures)
from vsockport.runtime.inject import runtime_source, runtime_version


def python(code: str, *, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    prelude = f"import sys\nsys.path.insert(0, {str(RUNTIME.parent)!r})\n"
    return subprocess.run([sys.executable, "-I", "-c", prelude + textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=60, env={**os.environ, **(env or {})}, cwd=cwd)


def test_importing_defines_names_and_nothing_else():
    done = python("""
        import os, socket
        fds = sorted(os.listdir("/proc/self/fd"))
        methods, getfqdn, hooks = dict(vars(socket.socket)), socket.getfqdn, sys.audit
        import vsock
        assert dict(vars(socket.socket)) == methods and socket.getfqdn is getfqdn
        assert "_vsockport_runtime" not in vars(socket) and "_vsockport_strict" not in vars(socket)
        assert sorted(os.listdir("/proc/self/fd")) == fds, "a socket or device was opened at import"
        assert vsock._backend is None and vsock._af_value is None  # nothing probed yet
        print("ok")
    """, env={"VSOCK_RUNTIME_BACKEND": "nonsense", "VSOCK_STRICT": ""})
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
    assert done.stderr == ""  # not even the bad backend value warns before it is used


def test_signatures_of_the_socket_module_are_untouched(rt):
    assert str(inspect.signature(socket.socket.__init__)) == "(self, family=-1, type=-1, proto=-1, fileno=None)"
    assert str(inspect.signature(rt.vsock_socket)) == "(family=-1, type=-1, proto=-1, fileno=None)"
    assert inspect.iscoroutinefunction(rt.vsock_open_connection)  # served, and still a coroutine function


def _copy_with_version(folder: Path, name: str, version: int) -> None:
    text = RUNTIME.read_text().replace(f"VSOCKPORT_RUNTIME_VERSION = {runtime_version(runtime_source())}", f"VSOCKPORT_RUNTIME_VERSION = {version}")
    (folder / f"{name}.py").write_text(text)


@pytest.mark.parametrize("first, second", [("old_copy", "new_copy"), ("new_copy", "old_copy")])
def test_one_runtime_per_process_the_newest_serves(tmp_path, first, second):
    """Two ported packages with different runtime versions in one process, imported in both orders:
    once both have been used, the newer copy serves both (its vsock methods are the ones socket.socket
    carries), whichever came first, and using either again changes nothing. (A copy registers on its
    first use, not at import.)"""
    _copy_with_version(tmp_path, "old_copy", 4)
    _copy_with_version(tmp_path, "new_copy", 9)
    done = subprocess.run([sys.executable, "-I", "-c", textwrap.dedent(f"""
        import sys, socket
        sys.path.insert(0, {str(tmp_path)!r})
        import {first} as a
        print(a.vsock_runtime_version())
        import {second} as b
        print(b.vsock_runtime_version(), a.vsock_runtime_version())
        sock = a.vsock_socket(socket.AF_INET)
        # The vsock methods socket.socket carries are the newest copy's too.
        print(type(vars(socket.socket)["bind"]).__module__, socket._vsockport_runtime[0], socket._vsockport_layer["socket.socket:bind"])
        b.vsock_runtime_version(); a.vsock_runtime_version()
        print(socket._vsockport_runtime[0])
    """)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.split("\n")
    assert lines[0] == ("4" if first == "old_copy" else "9")  # alone, a copy serves itself
    assert lines[1:4] == ["9 9", "new_copy 9 9", "9"]


def test_the_serving_copy_runs_its_own_code_and_a_newer_one_takes_over(tmp_path):
    """A public function of the copy that serves is the function itself (no wrapper frame on the data
    path: a hand port's call costs the same); its first call registers the copy. When a newer copy
    registers, the older copy's functions hand their calls to it, signatures and coroutine functions kept."""
    _copy_with_version(tmp_path, "old_copy", 4)
    _copy_with_version(tmp_path, "new_copy", 9)
    done = subprocess.run([sys.executable, "-I", "-c", textwrap.dedent(f"""
        import inspect, socket, sys, traceback
        sys.path.insert(0, {str(tmp_path)!r})
        import old_copy as a
        def own(module, name):
            return getattr(module, name).__code__ is getattr(module, name).__wrapped__.__code__
        print(own(a, "vsock_socket"), "_vsockport_runtime" in vars(socket))
        a.vsock_socket(socket.AF_INET).close()
        print(own(a, "vsock_socket"), own(a, "create_vsock_connection"), own(a, "vsock_open_connection"))
        try:
            a.vsock_address(("no.such.host", 1))
        except Exception as exc:
            print([frame.name for frame in traceback.extract_tb(exc.__traceback__)][1:2])
        import new_copy as b
        b.vsock_runtime_version()
        print(own(a, "vsock_socket"), a.vsock_runtime_version(), own(b, "vsock_socket"))
        print(inspect.signature(a.vsock_socket), inspect.iscoroutinefunction(a.vsock_open_connection))
    """)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:5] == [
        "False False",  # imported only: nothing registered, the trampoline in place
        "True True True",  # used: the copy serves, every public function runs its own code
        "['vsock_address']",  # the caller's frame, then the function's own: no wrapper between them
        "False 9 True",  # a newer copy took over: the old copy's functions hand their calls to it
        "(family=-1, type=-1, proto=-1, fileno=None) True"]


def test_strict_mode_names_the_place_and_spares_kept_pairs(tmp_path):
    (tmp_path / "program.py").write_text(textwrap.dedent("""
        import socket
        import vsock

        def pair():  # a socketpair() emulation, which vsockport keeps on TCP/IP on purpose (VS013)
            server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            server.bind(("127.0.0.1", 0))
            server.listen()
            client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            client.connect(server.getsockname())
            return client, server.accept()[0]

        def served():
            import socketserver
            return vsock.vsock_server_class(socketserver.TCPServer)(("", 0), None, bind_and_activate=False)

        def missed():
            return socket.socket(socket.AF_INET6, socket.SOCK_STREAM)

        def looked_up():
            return socket.getaddrinfo("db.internal", 5432)
    """))
    code = textwrap.dedent("""
        import sys
        sys.path.insert(0, {folder!r})
        import program, socket
        [s.close() for s in program.pair()]; program.served().server_close()
        socket.socket(socket.AF_UNIX).close()
        for call in (program.missed, program.looked_up):
            try:
                call()
                print("allowed", call.__name__)
            except Exception as exc:
                print(type(exc).__name__, exc)
    """).format(folder=str(tmp_path))
    strict = python(code, env={"VSOCK_STRICT": "1"})
    assert strict.returncode == 0, strict.stderr
    missed, looked_up = strict.stdout.strip().split("\n")
    assert missed.startswith("VsockStrictError vsock strict mode: an AF_INET6 socket at ")
    assert f"{tmp_path}/program.py:18," in missed
    assert looked_up.startswith("VsockStrictError vsock strict mode: getaddrinfo('db.internal') at ")
    warn = python(code + "\nprogram.missed(); program.missed()\n", env={"VSOCK_STRICT": "warn", "PYTHONWARNINGS": "default"})
    assert warn.returncode == 0, warn.stderr
    assert warn.stderr.count("an AF_INET6 socket at") == 1  # once per place, however often it runs
    off = python(code, env={"VSOCK_STRICT": ""})
    assert off.stdout.split("\n")[0] == "allowed missed"


def test_setsockopt_or_skip_takes_any_socket_like_object(rt):
    """asyncio hands out TransportSocket, ssl wraps sockets in SSLSocket; both are vsock underneath."""
    from asyncio import trsock

    with rt.vsock_socket(socket.AF_INET) as sock:
        wrapped = trsock.TransportSocket(sock)
        assert rt.setsockopt_or_skip(wrapped, socket.IPPROTO_TCP, socket.TCP_NODELAY, 1) is False
        assert rt.setsockopt_or_skip(wrapped, socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1) is True
    plain = socket.SocketType(socket.AF_VSOCK, socket.SOCK_STREAM)  # not made by the runtime at all
    secure = ssl.create_default_context().wrap_socket(plain, do_handshake_on_connect=False, server_hostname="x")
    with secure:
        assert rt.setsockopt_or_skip(secure, socket.IPPROTO_TCP, socket.TCP_NODELAY, 1) is False
    with socket.socket(socket.AF_INET) as tcp:
        assert rt.setsockopt_or_skip(trsock.TransportSocket(tcp), socket.IPPROTO_TCP, socket.TCP_NODELAY, 1) is True


def test_family_helpers(native):
    rt = native
    assert rt.vsock_family(socket.AF_INET) == rt.vsock_family(socket.AF_INET6) == socket.AF_VSOCK
    assert rt.vsock_family(socket.AF_UNIX) == socket.AF_UNIX
    afVMCI = rt.VMCISock_GetAFValue()
    with rt.vsock_socket(socket.AF_INET6) as sock:
        # A ported family check (VS002) takes the program's IPv4 path on a vsock socket.
        assert sock.family in (socket.AF_INET, afVMCI) and sock.family not in (socket.AF_INET6,)


def test_socket_module_stand_in(native):
    """For code that takes the socket module as a value (pymemcache's socket_module=socket)."""
    module = native.vsock_socket_module
    with module.socket(module.AF_INET, module.SOCK_STREAM) as sock:
        assert type(sock) is socket.socket and sock.family == socket.AF_VSOCK
    assert module.AF_INET == socket.AF_INET and module.SOL_SOCKET == socket.SOL_SOCKET and module.timeout is socket.timeout
    family, _, _, _, address = module.getaddrinfo("localhost", 11211)[0]
    assert address == ("127.0.0.1", 11211) and module.socket(family).family == socket.AF_VSOCK
    assert module.gethostbyname("localhost") == "127.0.0.1"
    assert module.create_connection is native.create_vsock_connection


def test_adopting_and_duplicating_keep_the_vsock_behaviour(native):
    rt = native
    with rt.vsock_socket(socket.AF_INET) as sock:
        sock.bind(("", 0))
        copy = sock.dup()
        adopted = rt.vsock_socket(fileno=os.dup(sock.fileno()))
        for other in (copy, adopted):
            with other:
                assert other.family == socket.AF_VSOCK and other.getsockname() == sock.getsockname()
    with socket.socket(socket.AF_UNIX) as unix:
        with rt.vsock_socket(fileno=os.dup(unix.fileno())) as kept:
            assert type(kept) is socket.socket and kept.family == socket.AF_UNIX


def test_loop_proxy_and_endpoints_that_bring_their_own_socket(rt, tmp_path):
    """`partial(loop.create_server)` becomes `vsock_loop(loop).create_server`; a call whose **kwargs
    carry sock= or path= is the caller's own endpoint and goes to asyncio as it is."""

    async def main():
        loop = asyncio.get_running_loop()
        proxy = rt.vsock_loop(loop)
        assert rt.vsock_loop(proxy) is proxy and proxy.time() > 0 and proxy.get_debug() == loop.get_debug()
        served = await proxy.create_server(asyncio.Protocol, "", 0)
        unix = socket.socket(socket.AF_UNIX)
        unix.bind(str(tmp_path / "s"))
        kwargs = {"sock": unix}
        own = await rt.vsock_loop_create_server(loop, asyncio.Protocol, **kwargs)
        names = [s.getsockname() for s in (*served.sockets, *own.sockets)]
        info = await proxy.getaddrinfo("localhost", 80)
        for server in (served, own):
            server.close()
            await server.wait_closed()
        return names, info

    names, info = asyncio.run(main())
    assert names[0][0] == "0.0.0.0" and names[1] == str(tmp_path / "s")
    assert info[0][4] == ("127.0.0.1", 80)
