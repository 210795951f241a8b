"""vSockets runtime, added to this project by vsockport (https://github.com/vsockport/vsockport).

This single stdlib-only module lets a program ported from TCP/IP talk over vSockets: VMware VMCI sockets
and Linux AF_VSOCK (KVM/QEMU, Firecracker, Cloud Hypervisor, AWS Nitro Enclaves). It does not need
vsockport installed. vsockport replaces this file when a newer version is available; edits made here
are lost then. Run `python vsock_runtime.py` (or `--json`) to see what this machine offers.

The model: ported sockets are plain sockets of the vsock family
-----------------------------------------------------------------
Ported code asks for the family as VMware's porting guide does, `afVMCI = VMCISock_GetAFValue()`, and
makes its sockets with `vsock_socket(afVMCI, SOCK_STREAM)`: an ordinary `socket.socket` whose family is
the vsock one. Real code checks sockets in ways a stand-in fails (`type(sock) is socket.socket`,
multiprocessing's pickling of listening sockets, `socket.fromfd`, C extensions), so there is none.

What a program reads from its sockets stays what TCP/IP code expects, because it inspects it: the first
call of `VMCISock_GetAFValue()` in a process (the line every ported module runs) teaches `socket.socket`
the vsock family. For sockets of that family, and only those:
  - bind(), connect() and connect_ex() take TCP/IP-style addresses: ("", port), ("localhost", port),
    (name, port) mapped through VSOCK_CID_MAP; (CID, port) pairs of integers pass as they are;
  - getsockname(), getpeername(), accept() and recvfrom() report (host, port) with the host a plain
    `str`: "0.0.0.0" for VMADDR_CID_ANY (what TCP programs recognise as a wildcard bind), "127.0.0.1" for
    the loopback CID 1 (what they recognise as a local peer) and the CID's decimal digits otherwise (a
    connected client's own CID is the one its peer sees, where the kernel keeps the wildcard); handed
    back to connect() or bind() they are CIDs again; a socket asked for as AF_INET6, and what it
    accepts, report (host, port, 0, 0) instead, with "::" and "::1" for those two CIDs; a socket not
    bound yet reports port 0, as TCP's does (the kernel's VMADDR_PORT_ANY); a port bound with one
    shape and then the other (127.0.0.1:P and [::1]:P, one CID on vsock) is one socket, as section 4 says;
  - options above the socket level (TCP_NODELAY, TCP_KEEP*, IPV6_V6ONLY) and SO_REUSEPORT, which have
    no meaning on vsock, are accepted, do nothing and read back as set (0 where never set, but
    TCP_NODELAY 1: vsock never delays a send);
  - errors keep their class and errno, with a message that starts with the system's words and says
    what happened on vsock; but a connect to a port nobody listens on, which virtio answers with a
    reset, is a ConnectionRefusedError (ECONNREFUSED) as on TCP, from connect(), connect_ex() and a
    non-blocking connect's SO_ERROR;
  - a timeout set with settimeout() also becomes the kernel's vsock connect timeout (2 s by default);
  - with VSOCK_TCP_CLOSE=1, close() closes as TCP does: the peer's first send after it succeeds and
    only a later one fails (vsock alone fails the first, EPIPE), by keeping the descriptor, shut down
    for writing, until the peer sends or closes (section 4, "Closing as TCP closes").
For every other family nothing changes: the method a TCP socket looks up is CPython's own C method
(no frame of this file in its tracebacks, the same results and signatures); read from the class and
called unbound (`socket.socket.connect(sock, address)`), a method picks by the socket's family the same
way. send/recv are never touched: the data path is CPython's.

Host names have no meaning on vsock; peers are context IDs (CIDs). VSOCK_CID_MAP maps them at run time
(see "Hosts, ports and the map"), and its entries can map a whole endpoint (HOST:PORT=CID:PORT), as an
AWS Nitro Enclave needs to reach several services through its parent.

Contents
  1. Constants, the address family and the local CID   VMCISock_GetAFValue, VMCISock_GetLocalCID, ...
  2. Hosts, ports and the map (VSOCK_CID_MAP)           vsock_cid, vsock_bind_cid, vsock_address,
                                                        vsock_getaddrinfo, vsock_gethostbyname(_ex),
                                                        vsock_inet_pton, vsock_inet_ntop, vsock_getnameinfo
  3. Sockets                                            vsock_socket, vsock_fromfd, vsock_family,
                                                        vsock_socket_class, vsock_recv, vsock_recv_into
  4. What socket.socket learns about the vsock family   (the methods above; installed once)
  5. Connect timeouts and flags                         set_connect_timeout, get_connect_timeout, vsock_connect
  6. create_connection and create_server                create_vsock_connection, create_vsock_server
  7. Standard-library servers and clients               vsock_server_class, vsock_make_server,
                                                        vsock_client_class, vsock_urlopen
  8. asyncio                                            vsock_open_connection, vsock_start_server,
                                                        vsock_loop_create_connection, vsock_loop_create_server,
                                                        vsock_loop_getaddrinfo, vsock_loop, vsock_uvloop
  9. The socket module as a value                       vsock_socket_module
 10. Hybrid vsock (Firecracker, Cloud Hypervisor hosts) unix:PATH values in VSOCK_CID_MAP
 11. Errors that explain themselves                     VsockAddressError
 12. libc, for the calls CPython cannot make            the ctypes backend, sockaddr_vm
 13. Strict mode and recording                          VsockStrictError, VSOCK_STRICT, VSOCK_RECORD
 14. Diagnosis                                          vsock_diagnose, `python vsock_runtime.py`
 15. One runtime per process                            vsock_runtime_version, vsock_backend
 16. Names kept for code ported by earlier versions     setsockopt_or_skip, vsock_ip_family

Environment: VSOCK_CID_MAP (section 2); VSOCK_HYBRID_TIMEOUT (section 10); VSOCK_RUNTIME_BACKEND=
auto|native|ctypes (a bad value warns and means auto); VSOCK_STRICT=1|warn and VSOCK_RECORD=FILE
(section 13); VSOCK_TCP_CLOSE=1 (section 4). Each is read when first needed, never at import: importing this module defines names.
"""

import errno
import importlib
import os
import select
import socket
import _socket
import struct
import sys
import time
import types
import warnings

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

__all__ = [
    "VMADDR_CID_ANY",
    "VMADDR_PORT_ANY",
    "VMADDR_CID_HYPERVISOR",
    "VMADDR_CID_LOCAL",
    "VMADDR_CID_HOST",
    "VMADDR_FLAG_TO_HOST",
    "SO_VM_SOCKETS_BUFFER_SIZE",
    "SO_VM_SOCKETS_BUFFER_MIN_SIZE",
    "SO_VM_SOCKETS_BUFFER_MAX_SIZE",
    "SO_VM_SOCKETS_CONNECT_TIMEOUT",
    "VMCISock_GetAFValue",
    "VMCISock_ReleaseAFValueFd",
    "VMCISock_GetLocalCID",
    "VsockAddressError",
    "VsockStrictError",
    "sockaddr_vm",
    "vsock_local_cid",
    "vsock_cid",
    "vsock_bind_cid",
    "vsock_address",
    "vsock_getaddrinfo",
    "vsock_gethostbyname",
    "vsock_gethostbyname_ex",
    "vsock_inet_pton",
    "vsock_inet_ntop",
    "vsock_getnameinfo",
    "vsock_socket",
    "vsock_fromfd",
    "vsock_socket_class",
    "vsock_recv",
    "vsock_recv_into",
    "vsock_socket_type",
    "vsock_family",
    "set_connect_timeout",
    "get_connect_timeout",
    "vsock_connect",
    "create_vsock_connection",
    "create_vsock_server",
    "vsock_server_class",
    "vsock_make_server",
    "vsock_client_class",
    "vsock_getattr",
    "vsock_urlopen",
    "vsock_open_connection",
    "vsock_start_server",
    "vsock_loop_create_connection",
    "vsock_loop_create_server",
    "vsock_loop_getaddrinfo",
    "vsock_loop",
    "vsock_uvloop",
    "vsock_socket_module",
    "vsock_diagnose",
    "vsock_runtime_version",
    "vsock_backend",
    "setsockopt_or_skip",
    "vsock_ip_family",
]

# The line below is read by vsockport to decide whether this file needs an update.
VSOCKPORT_RUNTIME_VERSION = 12


# ===================================================================================================
# 1. Constants, the address family and the local CID
# ===================================================================================================

VMADDR_CID_ANY = 0xFFFFFFFF
VMADDR_PORT_ANY = 0xFFFFFFFF
VMADDR_CID_HYPERVISOR = 0
VMADDR_CID_LOCAL = 1
VMADDR_CID_HOST = 2
VMADDR_FLAG_TO_HOST = 0x01

SO_VM_SOCKETS_BUFFER_SIZE = 0
SO_VM_SOCKETS_BUFFER_MIN_SIZE = 1
SO_VM_SOCKETS_BUFFER_MAX_SIZE = 2
SO_VM_SOCKETS_CONNECT_TIMEOUT = 6  # takes a native `struct timeval` on Linux and VMware alike

_AF_VSOCK_LINUX = 40
_LAST_PRIVILEGED_PORT = 1023
_DEFAULT_CONNECT_TIMEOUT = 2.0
_DEVICES = ("/dev/vsock", "/vmfs/devices/char/vsock/vsock")  # the second is ESXi's own
_WINDOWS_DEVICE = "\\\\.\\VMCI"

if sys.platform.startswith("linux"):
    _PLATFORM = "linux"
    _IOCTL_GET_AF_VALUE = 0x7B8  # 1976: legacy VMware driver only; upstream kernels answer ENOTTY
    _IOCTL_GET_LOCAL_CID = 0x7B9  # 1977
elif sys.platform == "darwin" or sys.platform.startswith("freebsd"):
    _PLATFORM = "bsd"
    _IOCTL_GET_AF_VALUE = 0x40045619  # _IOR('V', 25, int)
    _IOCTL_GET_LOCAL_CID = 0x4004561A  # _IOR('V', 26, unsigned)
elif sys.platform == "win32":
    _PLATFORM = "windows"
    _IOCTL_GET_AF_VALUE = 0x81032068  # VMCI_SOCKETS_GET_AF_VALUE, through DeviceIoControl
    _IOCTL_GET_LOCAL_CID = 0x8103206C  # VMCI_SOCKETS_GET_LOCAL_CID
else:
    _PLATFORM = "other"
    _IOCTL_GET_AF_VALUE = _IOCTL_GET_LOCAL_CID = None

# The legacy driver unregisters the family when the fd that asked for it is closed, so it is kept open.
_af_value_fd = None
_af_value = None
_af_stream = object()  # the vsock family once known to exist (vsock_socket's one-step path), else equal to nothing
_af_known = False  # whether _af_stream is that family


def VMCISock_GetAFValue():
    """Return the vSockets address family number, or -1 if this system has none. The first call also
    teaches `socket.socket` that family (section 4), and a later one the socket classes of frameworks
    imported since (gevent's): every ported module's `afVMCI = VMCISock_GetAFValue()` makes it.

    Linux probes a stream socket of family 40 first: upstream virtio kernels support AF_VSOCK streams
    but neither datagrams nor the legacy ioctl that VMware's own implementation relies on. macOS and
    FreeBSD ask /dev/vsock and keep it open; Windows asks VMware Tools' VMCI device.
    """
    return _family_value()


def _family_value():
    """VMCISock_GetAFValue() itself, for this module's own calls on the connection path (the public name
    is served by the newest runtime copy of the process, a wrapper these calls have already been through)."""
    global _af_value, _af_value_fd, _af_stream, _af_known
    if _af_value is not None:
        if len(_CSocket.__subclasses__()) != _layered[0]:
            _layer_covers_new_classes()  # a framework imported since (gevent): its socket class too
        return _af_value
    value = None
    if _PLATFORM == "linux":
        err = _probe_stream_family(_AF_VSOCK_LINUX)
        if err not in (errno.EAFNOSUPPORT, errno.EINVAL):
            # Created, or refused for reasons (EMFILE, EPERM...) that still mean the family exists.
            value = _AF_VSOCK_LINUX
        else:
            value, _af_value_fd = _device_ioctl(_IOCTL_GET_AF_VALUE, keep_open=True)
    elif _PLATFORM == "bsd":
        value, _af_value_fd = _device_ioctl(_IOCTL_GET_AF_VALUE, keep_open=True)
    elif _PLATFORM == "windows":
        value = _windows_device_ioctl(_IOCTL_GET_AF_VALUE)
    if value is None or value in (0xFFFFFFFF, -1):
        value = getattr(socket, "AF_VSOCK", -1) if _PLATFORM == "other" else -1
    _af_value = value
    _af_stream, _af_known = (value, True) if value != -1 else (object(), False)
    _install_layer()
    return value


def VMCISock_ReleaseAFValueFd():
    """Close the fd kept open by the legacy address-family lookup, if any. Call it only once the
    program no longer uses vSockets: the legacy driver may unregister the family then."""
    global _af_value_fd, _af_value, _af_stream, _af_known
    if _af_value_fd is not None:
        os.close(_af_value_fd)
        _af_value_fd = None
        _af_value, _af_stream, _af_known = None, object(), False


def VMCISock_GetLocalCID():
    """Return this machine's CID, or VMADDR_CID_ANY when it cannot be read (as VMware's C API does).
    `vsock_local_cid()` raises an error that says why instead."""
    try:
        return vsock_local_cid()
    except OSError:
        return VMADDR_CID_ANY


def vsock_local_cid():
    """This machine's CID (IOCTL_VM_SOCKETS_GET_LOCAL_CID on /dev/vsock, VMware Tools' device on
    Windows); raises an OSError that says why it cannot be read, errno kept."""
    if _PLATFORM == "windows":
        value = _windows_device_ioctl(_IOCTL_GET_LOCAL_CID)
        if value is None:
            raise OSError(errno.ENODEV, "vsock: VMware Tools' VMCI device (%s) is not available: install "
                          "VMware Tools with the VMCI Sockets driver" % _WINDOWS_DEVICE)
        return value
    if _IOCTL_GET_LOCAL_CID is None:
        raise OSError(errno.ENOSYS, "vsock: no known way to read the local CID on %s" % sys.platform)
    try:
        fd = os.open(_DEVICES[0], os.O_RDONLY)
    except OSError as exc:
        raise _device_error(exc) from None
    try:
        return struct.unpack("I", fcntl.ioctl(fd, _IOCTL_GET_LOCAL_CID, struct.pack("I", 0)))[0]
    except OSError as exc:
        raise type(exc)(exc.errno, "vsock: %s rejected the local-CID ioctl (%s)" % (_DEVICES[0], exc.strerror)) from None
    finally:
        os.close(fd)


def _probe_stream_family(family):
    try:
        # socket.socket, a green framework's class where one replaced it: making (and closing) a socket
        # is all this asks, and an eventlet hub expects to hear of every descriptor opened under it.
        probe = socket.socket(family, socket.SOCK_STREAM)
    except OSError as exc:
        return exc.errno
    probe.close()
    return 0


def _device_ioctl(request, keep_open=False):
    """ioctl(request) returning an unsigned int on the first vsock device that opens; (value, fd)."""
    for path in _DEVICES:
        try:
            fd = os.open(path, os.O_RDWR)
        except OSError:
            continue
        try:
            value = struct.unpack("I", fcntl.ioctl(fd, request, struct.pack("I", 0)))[0]
        except OSError:
            os.close(fd)
            return None, None
        if keep_open:
            return value, fd
        os.close(fd)
        return value, None
    return None, None


def _windows_device_ioctl(code):
    """VMware Tools' VMCI device on Windows: DeviceIoControl(code) returning an unsigned int."""
    from ctypes import wintypes

    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
    kernel32.CreateFileW.restype = wintypes.HANDLE
    kernel32.CreateFileW.argtypes = [wintypes.LPCWSTR, wintypes.DWORD, wintypes.DWORD, ctypes.c_void_p,
                                     wintypes.DWORD, wintypes.DWORD, wintypes.HANDLE]
    generic_read, open_existing, file_flag_overlapped = 0x80000000, 3, 0x40000000
    handle = kernel32.CreateFileW(_WINDOWS_DEVICE, generic_read, 0, None, open_existing, file_flag_overlapped, None)
    if handle in (None, wintypes.HANDLE(-1).value):
        return None
    try:
        value = ctypes.c_uint(0xFFFFFFFF)
        returned = wintypes.DWORD(0)
        ok = kernel32.DeviceIoControl(wintypes.HANDLE(handle), wintypes.DWORD(code), ctypes.byref(value), 4,
                                      ctypes.byref(value), 4, ctypes.byref(returned), None)
        return value.value if ok else None
    finally:
        kernel32.CloseHandle(wintypes.HANDLE(handle))


def _device_error(exc):
    if exc.errno in (errno.EACCES, errno.EPERM):
        message = ("vsock: permission denied on %s (it is root-only without a udev rule): run as root, or "
                   "add a udev rule such as KERNEL==\"vsock\", MODE=\"0666\"" % _DEVICES[0])
    elif exc.errno == errno.ENOENT:
        message = "vsock: %s does not exist: %s" % (_DEVICES[0], _no_vsock_hint())
    else:
        message = "vsock: cannot open %s: %s" % (_DEVICES[0], exc.strerror)
    return type(exc)(exc.errno, message)


def _no_vsock_hint():
    if _PLATFORM == "linux":
        return ("this kernel has no vsock. Load the vsock module and the transport for this machine: "
                "vmw_vsock_virtio_transport in a KVM/QEMU/Firecracker/Nitro guest, vmw_vsock_vmci_transport "
                "on VMware, hv_sock on Hyper-V, vhost_vsock on a KVM host, vsock_loopback for local tests")
    if _PLATFORM == "windows":
        return "VMware Tools with the VMCI Sockets driver is not installed"
    return "no vSockets driver is installed (VMware Tools provides one on VMware guests)"


# ===================================================================================================
# 2. Hosts, ports and the map (VSOCK_CID_MAP)
# ===================================================================================================
# VSOCK_CID_MAP is a comma-separated list of KEY=VALUE entries:
#     KEY    HOST        every port of HOST (a name, an IPv4 address, a CID; case-insensitive)
#            HOST:PORT   one endpoint (HOST:* is the same as HOST)
#            :PORT       this machine's PORT, for binds ("a server on PORT listens on vsock port VPORT")
#            *           every host the map does not list, loopback and wildcard included
#     VALUE  CID         the host's CID; the port stays as the program wrote it
#            CID:VPORT   the CID and the vsock port this endpoint is forwarded to (VPORT alone for :PORT)
#            unix:PATH   a Firecracker / Cloud Hypervisor VMM's hybrid-vsock socket (section 10)
# A connect to HOST:PORT takes the first of: HOST:PORT, HOST (or HOST:*), then the built-in meanings
# (a CID written as digits, loopback and wildcard hosts: VMADDR_CID_LOCAL), then *. A host with none of
# them fails at connect, with one line naming the entry to add. A bind keeps its port unless :PORT maps it.

CID_MAP_ENV = "VSOCK_CID_MAP"
_WILDCARD_HOSTS = frozenset(["", "0.0.0.0", "::", "*", "<any>", "<broadcast>"])
_LOOPBACK_HOSTS = frozenset(["localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback", "127.0.0.1", "::1"])
_LOCAL_NAMES = _LOOPBACK_HOSTS | _WILDCARD_HOSTS
_GLOBAL_DEFAULT_TIMEOUT = getattr(socket, "_GLOBAL_DEFAULT_TIMEOUT", object())
try:  # os.environ's own dict, read on every connect: a lookup there costs a tenth of os.environ.get
    _environ, _ENV_KEY = os.environ._data, os.environ.encodekey(CID_MAP_ENV)
except AttributeError:
    _environ, _ENV_KEY = None, CID_MAP_ENV


class VsockAddressError(socket.gaierror):
    """A host (or endpoint) that has no vsock CID. A gaierror, so code that handles failed name lookups
    still works."""


class _Map:
    """VSOCK_CID_MAP, parsed: entries by key, and what could not be read (for the doctor)."""

    __slots__ = ("raw", "entries", "problems")

    def __init__(self, raw):
        self.raw, self.entries, self.problems = raw, {}, []
        text = os.fsdecode(raw) if isinstance(raw, bytes) else raw
        for item in text.split(","):
            key, sep, value = item.strip().partition("=")
            key, value = key.strip().lower(), value.strip()
            if not sep or not key:
                if item.strip():
                    self.problems.append("%r is not KEY=VALUE" % item.strip())
                continue
            self.entries[_map_key(key)] = value


def _split_map_key(key):
    """A map key's (host, port text): "[::1]:443", "host:443", "host:*", "::1" (no port), ":443"."""
    if key.startswith("["):  # [::1]:443
        host, _, rest = key[1:].partition("]")
        return host, rest[1:] if rest.startswith(":") else ""
    if key.count(":") == 1:
        host, _, port = key.partition(":")
        return host, port
    return key, ""


def _map_key(key):
    """A map key as looked up: "host", "host:port" ("host:*" is "host"), ":port" or "*"."""
    host, port = _split_map_key(key)
    if port in ("", "*"):
        return host
    return "%s:%s" % (host, port)


_map = _Map("")


def _cid_map():
    """The map as VSOCK_CID_MAP says now (parsed again only when the variable changes)."""
    global _map
    raw = _environ.get(_ENV_KEY, "") if _environ is not None else os.environ.get(CID_MAP_ENV, "")
    if raw != _map.raw and (raw or _map.raw):
        _map = _Map(raw)
    return _map


def _as_int(value):
    """An int, or the number a string of digits spells (0x.. too); None for names."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, (str, bytes)):
        text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
        text = text.strip()
        if not text[:1].isdigit():
            return None  # a name: no exception to raise and catch on every connect
        try:
            return int(text, 0)
        except ValueError:
            return None
    return None


def _host_name(host):
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        raise TypeError("vsock host must be a CID (int) or a host name, not %s" % type(host).__name__)
    return host.strip().lower()


def _is_loopback(name):
    return name in _LOOPBACK_HOSTS or name.startswith("127.")


def _resolve(host, port, bind=False):
    """(CID or _HybridPeer, vsock port, the map entry used or None) for a TCP/IP-style (host, port)."""
    entries = _cid_map().entries
    if isinstance(host, int) and not isinstance(host, bool):
        name, number = str(host), host
    else:
        hybrid = _hybrid_literal(host)
        if hybrid is not None:
            return hybrid, port, None
        name = _host_name(host)
        number = _as_int(name)
    if entries:
        if bind and ":%s" % port in entries:
            key = ":%s" % port
            port = _as_int(entries[key].rpartition(":")[2])
            if port is None:
                raise _bad_value(key, entries[key])
        for key in ((name,) if bind else ("%s:%s" % (name, port), name)):
            if key in entries:
                return _mapped(key, entries[key], host, port, bind)
        star = entries.get("*")
        if star is not None and (_hybrid_path(star) is not None or _builtin(name, number, host, bind) is None):
            return _mapped("*", star, host, port, bind)  # a hybrid "*" is the host side of one VM: everything
    cid = _builtin(name, number, host, bind)
    if cid is None:
        cid = _cid_by_replaced_resolver(host, port, bind)
    if cid is None:
        raise VsockAddressError(
            socket.EAI_NONAME,
            "vsock has no name resolution: no CID for %s port %s; add %s=CID (or %s:%s=CID:PORT) to %s, or "
            "pass the CID as an integer" % (host, port, name, name, port, CID_MAP_ENV))
    return cid, port, None


def _builtin(name, number, host, bind):
    """What a host means without the map: a CID written as a number; the wildcard (VMADDR_CID_ANY to
    bind, this machine to connect to) and loopback hosts (VMADDR_CID_LOCAL). None for names."""
    if number is not None:
        return number
    if bind:
        if name in _WILDCARD_HOSTS:
            return VMADDR_CID_ANY
        if _is_loopback(name):
            return _loopback_bind_cid(host)
        return None
    if name in _LOCAL_NAMES or _is_loopback(name):
        return VMADDR_CID_LOCAL
    return None


def _mapped(key, value, host, port, bind=False):
    path = _hybrid_path(value)
    if path is not None:
        shown = host if isinstance(host, str) else _host_out(host)  # "0.0.0.0" for VMADDR_CID_ANY, as a bind reports it
        return _HybridPeer(shown, path, None if key == "*" else key), port, key
    cid_text, _, vport_text = value.partition(":")
    cid = _as_int(cid_text)
    vport = _as_int(vport_text) if vport_text not in ("", "*") and not bind else port
    if cid is None or vport is None:
        raise _bad_value(key, value)
    return cid, vport, key


def _bad_value(key, value):
    return VsockAddressError(socket.EAI_NONAME, "%s maps %r to %r, which is neither CID, CID:PORT nor unix:PATH (a "
                                                "VMM's hybrid-vsock socket)" % (CID_MAP_ENV, key, value))


def _vsock_port(port, bind):
    number = _as_int(port)
    if number is None and isinstance(port, (str, bytes)):
        service = port.decode("ascii", "replace") if isinstance(port, bytes) else port
        try:
            number = socket.getservbyname(service, "tcp")
        except OSError:
            raise VsockAddressError(socket.EAI_SERVICE, "unknown service %r: give the vsock port as a number"
                                    % service) from None
    if number is None:
        raise TypeError("vsock port must be an integer, not %r" % (port,))
    if bind and number == 0:
        return VMADDR_PORT_ANY  # vsock port 0 is a real (privileged) port, not "any"
    return number


def vsock_address(address, bind=False):
    """A (host, port[, flowinfo, scope_id]) address as vsock takes it: (CID, port), through
    VSOCK_CID_MAP (a HOST:PORT entry may give another vsock port). With `bind`, port 0 is
    VMADDR_PORT_ANY and the wildcard host VMADDR_CID_ANY. A (CID, port) pair of integers is kept."""
    if not isinstance(address, tuple) or len(address) < 2:
        raise TypeError("vsock address must be a (host, port) tuple, not %r" % (address,))
    port = _vsock_port(address[1], bind)
    operation = "bind" if bind else "connect"
    try:
        cid, port, key = _resolve(address[0], port, bind)
    except VsockAddressError as exc:
        _record(operation, address[0], address[1], None, None, None, exc.strerror or str(exc))
        raise
    _record(operation, address[0], address[1], cid, port, key)
    return (cid, port)


def vsock_cid(host):
    """The CID a TCP/IP-style host connects to: ints and numeric strings are CIDs; loopback names and
    the wildcard ("", "0.0.0.0": as a destination they mean this machine) are VMADDR_CID_LOCAL; other
    names come from VSOCK_CID_MAP; anything else raises VsockAddressError naming the host."""
    return _resolve(host, 0)[0]


def vsock_bind_cid(host):
    """The CID a TCP/IP-style host binds: the wildcard is VMADDR_CID_ANY. A loopback host is
    VMADDR_CID_LOCAL where the vsock_loopback transport offers it; elsewhere a vsock socket cannot be
    local-only, so it is VMADDR_CID_ANY, and a RuntimeWarning says once that the server is now reachable
    from the host (bind VMADDR_CID_ANY, or a CID, explicitly to choose)."""
    return _resolve(host, 0, bind=True)[0]


def _loopback_bind_cid(host):
    if _loopback_available():
        return VMADDR_CID_LOCAL
    _warn_once("loopback-bind", "vsock: bind to the loopback host %r: this machine has no vsock_loopback "
               "transport, so the socket binds VMADDR_CID_ANY and is reachable from the host over vsock; "
               "bind VMADDR_CID_ANY (or a CID) explicitly to make that choice yours" % (host,))
    return VMADDR_CID_ANY


_loopback = None


def _loopback_available():
    """Whether CID 1 can be bound here (vsock_loopback is loaded); probed once, never connecting."""
    global _loopback
    if _loopback is None:
        try:
            # The C type: socket.socket may be a green framework's class (eventlet's GreenSocket wraps one).
            probe = _CSocket(VMCISock_GetAFValue(), socket.SOCK_STREAM)
        except (OSError, ValueError):
            _loopback = False
        else:
            try:
                if _backend_name() == "ctypes":
                    _libc_bind(probe, (VMADDR_CID_LOCAL, VMADDR_PORT_ANY))
                else:
                    _CSocket.bind(probe, (VMADDR_CID_LOCAL, VMADDR_PORT_ANY))
                _loopback = True
            except OSError:
                _loopback = False
            finally:
                probe.close()
    return _loopback


_warned = set()


def _warn_once(key, message, category=RuntimeWarning):
    if key not in _warned:
        _warned.add(key)
        warnings.warn(message, category, stacklevel=4)


_UNGIVEN = object()  # an argument the program left out


def vsock_getaddrinfo(host=_UNGIVEN, port=_UNGIVEN, family=0, type=0, proto=0, flags=0):
    """socket.getaddrinfo() for vsock, for the usual loops (`for af, socktype, proto, _, addr in ...`).

    The entries look like the IP entries the program asked for, since its code decides by them
    (`{AF_INET: IPv4Address, AF_INET6: IPv6Address}[family]`): family AF_INET (AF_INET6 when only that was
    asked for or the host is an IPv6 literal, with "::1"/"::" for the loopback and wildcard CIDs; the vsock
    family when that was asked for), protocol 0, and the address (host, port) with the host
    the CID as sockets report it (and the vsock port a HOST:PORT map entry gives). The program's sockets, made with
    vsock_socket(af, ...), are vsock ones, whose connect() and bind() read that host as the CID again.
    With AI_PASSIVE a None host is VMADDR_CID_ANY and port 0 VMADDR_PORT_ANY; AI_CANONNAME and
    AI_NUMERICSERV are honoured.
    AI_NUMERICHOST takes a CID or an IP literal, never a name; it is how programs check that a string is
    an IP address (tornado's is_valid_ip, before it trusts X-Real-Ip), so an IP literal that maps to no
    CID is answered as socket.getaddrinfo parses it (a vsock socket's connect() still refuses it).
    A call without a host or a port goes to a resolver that replaced socket.getaddrinfo and takes such
    calls (dnspython's override_system_resolver), else it is CPython's own TypeError. Asked for SOCK_DGRAM
    of an IP family or none, it answers as socket.getaddrinfo: datagram sockets stay on IP (the datagram
    policy), and an IP socket cannot bind or reach a CID (a vsock port above 65535 is an OverflowError)."""
    if host is _UNGIVEN or port is _UNGIVEN:
        return _getaddrinfo_with_arguments_left_out(host, port, family, type, proto, flags)
    if _ip_datagram(family, type):
        return _getaddrinfo_as_unported(host, port, family, type, proto, flags)
    passive = bool(flags & socket.AI_PASSIVE)
    if flags & getattr(socket, "AI_NUMERICSERV", 0) and isinstance(port, (str, bytes)) and _as_int(port) is None:
        raise VsockAddressError(socket.EAI_NONAME, "AI_NUMERICSERV: %r is not a port number" % (port,))
    try:
        vsock_port = _vsock_port(0 if port is None else port, passive)
    except VsockAddressError:  # a service name vsock has no port for: a replaced resolver may know it
        return _ask_replaced_resolver("getaddrinfo", host, port, *_as_called(family, type, proto, flags))
    if host is None:
        cid = VMADDR_CID_ANY if passive else VMADDR_CID_LOCAL
    else:
        if isinstance(host, (str, bytes)) and not host.strip():
            # socket.getaddrinfo's answer: "" is the wildcard for bind(), not a name (tornado's is_valid_ip(" "))
            raise VsockAddressError(socket.EAI_NONAME, "Name or service not known: %r" % (host,))
        numeric = flags & socket.AI_NUMERICHOST
        if numeric and _as_int(host) is None and _host_name(host) not in _WILDCARD_HOSTS and _ip_literal(host) is None:
            raise VsockAddressError(socket.EAI_NONAME, "AI_NUMERICHOST: %r is neither a CID nor an IP address" % (host,))
        try:
            cid, vsock_port = _map_only(vsock_address, (host, vsock_port), passive)
        except VsockAddressError:
            if numeric and _as_int(host) is None and family in (0, socket.AF_INET, getattr(socket, "AF_INET6", None)):
                return _CGetaddrinfo(host, port, family, type, proto, flags)
            if not numeric:
                return _ask_replaced_resolver("getaddrinfo", host, port, *_as_called(family, type, proto, flags))
            raise
    af = VMCISock_GetAFValue()
    inet6 = getattr(socket, "AF_INET6", None)
    if family == af and af != -1 and not isinstance(cid, _HybridPeer):
        entry_family, address = af, (cid, vsock_port)
    else:
        # IPv6 entries where the program asked for them, or wrote an IPv6 literal ("::1") with no family
        six = family == inet6 or (family == 0 and host is not None and _ip_literal(host) == inet6)
        entry_family = inet6 if six else socket.AF_INET
        if isinstance(cid, _HybridPeer):
            shown = str(cid)
        else:
            shown = _host6_out(cid) if entry_family == inet6 else _host_out(cid)
        address = (shown, vsock_port, 0, 0) if entry_family == inet6 else (shown, vsock_port)
    canonname = str(host) if (flags & socket.AI_CANONNAME and host is not None) else ""
    kinds = [socket.SOCK_STREAM] if type == 0 else [type]
    return [(entry_family, kind, 0, canonname, address) for kind in kinds]


_CGetaddrinfo = socket.getaddrinfo


def _ask_replaced_resolver(name, host, *args):
    """For a name no CID is known for: what socket.<name> answers when something replaced it (a test's
    mock, eventlet's or gevent's green resolver, a DNS cache), as it would have answered the program
    unported; the addresses it gives map to CIDs at connect() as any IP address does. Else, or when it
    fails too, the map's error, which names the entry to add. Called from the except clause that caught
    that error."""
    error = sys.exc_info()[1]
    answer = _replaced_resolver_answer(name, host, *args)
    if answer is None:
        raise error
    return answer


def _ip_datagram(family, type):
    """Whether a lookup is for a datagram socket of an IP family or none: one that stays on IP."""
    return type == _SOCK_DGRAM and (family == 0 or family in _IP_FAMILIES)


def _as_called(*options):
    """Options as programs pass them, without the trailing defaults (a mock asserts the call it expects)."""
    given = list(options)
    while given and given[-1] == 0:
        given.pop()
    return given


def _getaddrinfo_with_arguments_left_out(host, port, family, type, proto, flags):
    given = [] if host is _UNGIVEN else [host] if port is _UNGIVEN else [host, port]
    options = {name: value for name, value in (("family", family), ("type", type), ("proto", proto),
                                               ("flags", flags)) if value}
    if host is _UNGIVEN and port is not _UNGIVEN:
        options["port"] = port
    return _getaddrinfo_as_unported(*given, **options)


def _getaddrinfo_as_unported(*args, **kwargs):
    """socket.getaddrinfo(...) as the program called it unported: a resolver that replaced it (a test's
    mock, a green one) once, and CPython's own inside that call (trio's mock falls back to the function it
    replaced, which its port made vsock_getaddrinfo)."""
    resolver = socket.getaddrinfo
    context = _context()
    if getattr(resolver, "__module__", None) in ("socket", "_socket") or context in _asking_resolver:
        return _CGetaddrinfo(*args, **kwargs)
    _asking_resolver.add(context)
    try:
        return resolver(*args, **kwargs)
    finally:
        _asking_resolver.discard(context)


def _context():
    """What a call runs in: its thread, or its greenlet where green threads (eventlet, gevent) share one
    OS thread, each of them waiting in a green resolver or socket while the next one runs."""
    greenlet = sys.modules.get("greenlet")
    getcurrent = getattr(greenlet, "getcurrent", None) if greenlet is not None else None
    return id(getcurrent()) if getcurrent is not None else _get_ident()


_get_ident = __import__("threading").get_ident
_asking_resolver = set()  # contexts inside a call of a replaced resolver, or resolving for the map only


def _map_only(function, *args):
    """function(*args) without asking a replaced resolver at connect(): the caller, a resolver function
    itself, asks it once, with the program's own arguments (a test asserts the one call it expects)."""
    context = _context()
    if context in _asking_resolver:
        return function(*args)
    _asking_resolver.add(context)
    try:
        return function(*args)
    finally:
        _asking_resolver.discard(context)


def _replaced_resolver_answer(name, host, *args):
    """What socket.<name> answers for `host` where something replaced it; None where CPython's own is in
    place (the name means nothing on vsock), where it fails, and inside a call of it (a mock that falls
    back to the ported resolver for other names would ask itself again, forever)."""
    resolver = getattr(socket, name, None)
    if resolver is None or getattr(resolver, "__module__", None) in ("socket", "_socket"):
        return None
    context = _context()
    if context in _asking_resolver:
        return None
    _asking_resolver.add(context)
    try:
        return resolver(host, *args)
    except OSError:
        return None
    finally:
        _asking_resolver.discard(context)


def _cid_by_replaced_resolver(host, port, bind):
    """The CID of the first address a replaced socket.getaddrinfo gives for a name the map does not
    know, where that address means one without the map (a loopback address, a CID), else None."""
    answers = _replaced_resolver_answer("getaddrinfo", host, port, 0, socket.SOCK_STREAM)
    for entry in answers or ():
        address = entry[4] if isinstance(entry, tuple) and len(entry) == 5 else None
        if isinstance(address, tuple) and address and isinstance(address[0], str):
            name = _host_name(address[0])
            cid = _builtin(name, _as_int(name), address[0], bind)
            if cid is not None:
                return cid
    return None


def _ip_literal(host):
    """The IP address family of an IPv4 or IPv6 literal (a zone index allowed), else None."""
    text = host.decode("ascii", "replace") if isinstance(host, bytes) else host
    if not isinstance(text, str):
        return None
    for family in (socket.AF_INET, getattr(socket, "AF_INET6", None)):
        try:
            socket.inet_pton(family, text.partition("%")[0])
            return family
        except (OSError, TypeError, ValueError):
            continue
    return None


def vsock_gethostbyname(host):
    """socket.gethostbyname() for vsock: the host's CID as sockets report it, which connect() and
    bind() of a vsock socket read as that CID again. A name no CID is known for goes to a resolver that
    replaced socket.gethostbyname (a mock, a green resolver), if one did."""
    try:
        cid = _map_only(vsock_cid, host)
    except VsockAddressError:
        return _ask_replaced_resolver("gethostbyname", host)
    return str(host) if isinstance(cid, _HybridPeer) else _host_out(cid)


def vsock_gethostbyname_ex(host):
    """socket.gethostbyname_ex() for vsock: (host, [], [the CID as sockets report it]), or what a
    resolver that replaced socket.gethostbyname_ex answers for a name no CID is known for."""
    try:
        cid = _map_only(vsock_cid, host)
    except VsockAddressError:
        return _ask_replaced_resolver("gethostbyname_ex", host)
    return (str(host), [], [str(host) if isinstance(cid, _HybridPeer) else _host_out(cid)])


def _is_vsock_family(family):
    return family == getattr(socket, "AF_VSOCK", -2) or (family == _af_value and family != -1)


def vsock_inet_pton(family, address):
    """socket.inet_pton() that also takes the vsock family: a CID (its decimal digits, as ported sockets
    report a peer) packed as the kernel's 32-bit svm_cid. Code that checks an address it passes on
    (`inet_pton(sock.family, host)`) then accepts a vsock one; other families are socket's own."""
    if not _is_vsock_family(family):
        return socket.inet_pton(family, address)
    text = address.decode("ascii", "replace") if isinstance(address, bytes) else str(address)
    if text == _LOOPBACK_OUT or text == _WILDCARD_OUT:  # the hosts ported sockets report for CIDs 1 and any
        return struct.pack("=I", VMADDR_CID_LOCAL if text == _LOOPBACK_OUT else VMADDR_CID_ANY)
    if not text.isdigit() or int(text) > 0xFFFFFFFF:
        raise OSError(errno.EINVAL, "illegal vsock address string passed to inet_pton: %r (a CID's digits)" % (address,))
    return struct.pack("=I", int(text))


def vsock_inet_ntop(family, packed):
    """socket.inet_ntop() that also takes the vsock family: 4 packed bytes -> the CID as sockets report it."""
    if not _is_vsock_family(family):
        return socket.inet_ntop(family, packed)
    if len(packed) != 4:
        raise ValueError("invalid length of packed vsock address string")
    return _host_out(struct.unpack("=I", bytes(packed))[0])


def vsock_getnameinfo(sockaddr, flags):
    """socket.getnameinfo() that also reads a ported socket's address: a CID's digits (or an int) as the
    host, or a 32-bit vsock port, come back as (host, port) strings as they are (a CID has no name);
    any other address is socket's own call."""
    host, port = sockaddr[0], sockaddr[1]
    cid_host = type(host) is int or (isinstance(host, str) and host.isdigit())
    if (cid_host or (type(port) is int and port > 0xFFFF)) and len(sockaddr) == 2:
        return (str(host), str(port))
    return socket.getnameinfo(sockaddr, flags)


# ===================================================================================================
# 3. Sockets
# ===================================================================================================

_IP_FAMILIES = frozenset([socket.AF_INET, getattr(socket, "AF_INET6", socket.AF_INET)])
_IP_PROTOCOLS = frozenset([getattr(socket, "IPPROTO_TCP", 6), getattr(socket, "IPPROTO_UDP", 17),
                           getattr(socket, "IPPROTO_IP", 0)])
_CSocket = _socket.socket  # the C type: its methods, without socket.socket's Python layer (gevent patches SocketType)
_ClassType = type
_SOCK_DGRAM = getattr(socket, "SOCK_DGRAM", 2)
_SOCK_STREAM = socket.SOCK_STREAM


def _is_mock(value):
    """Whether a test replaced this class, function or method with unittest.mock (a Mock, or an
    autospec'd function): its calls make no connection, and the test checks the arguments the program
    gave."""
    if type(value).__module__ == "unittest.mock":
        return True
    mock = sys.modules.get("unittest.mock")  # (not imported: no mock; an autospec'd function keeps its `mock`)
    return mock is not None and isinstance(getattr(value, "mock", None), mock.NonCallableMock)


def _stdlib_socket_class():
    """socket.socket as the standard library defines it (gevent's monkey patching may have replaced
    the module's attribute since)."""
    for cls in _CSocket.__subclasses__():
        if cls.__module__ == "socket" and cls.__name__ == "socket":
            return cls
    return socket.socket


def vsock_socket(family=-1, type=-1, proto=-1, fileno=None):
    """socket.socket(...) for ported code: the vsock family (afVMCI), an IP family, none (CPython's
    AF_INET default) or a family known only at run time make a socket of the vsock family, a plain
    `socket.socket`; any other family (AF_UNIX, ...) a socket of that family, as without this module.
    IP protocol numbers mean 0 on vsock. An adopted `fileno` keeps the family it has (a vsock fd passed
    in by socket activation or a parent process stays vsock, a TCP one TCP). A datagram socket of an IP
    family stays on IP, as the port keeps the ones it sees (VS012). Where this machine has no
    vsock, raises EAFNOSUPPORT with the reason, where socket.socket(-1) would quietly make AF_INET.
    Where a test replaced socket.socket with a mock, the mock's call (it makes no connection); where a
    green-thread framework's monkey patching (gevent, eventlet) or the program replaced it with another
    class, a socket of that class, as the program's own call made one (a plain one would block every
    green thread of the process)."""
    replaced = socket.socket
    if replaced is not _StdSocket and _context() not in _making_kept_class:
        if _is_mock(replaced):
            return replaced(family, type, proto, fileno)  # a test's mock of socket.socket wants its calls
        if isinstance(replaced, _ClassType) and not isinstance(replaced, _SocketTypeStandIn):
            return _replacement_socket(replaced, family, type, proto, fileno)
    if fileno is None and (type == _SOCK_STREAM or type == -1) and _af_known and (
            family == _af_stream or family in _IP_FAMILIES or family == -1):
        # A stream socket once the family is known, in one step: the port's own vsock_socket(afVMCI,
        # SOCK_STREAM), and an IP family or none given at run time.
        proto = 0 if proto in _IP_PROTOCOLS or proto == -1 else proto
        try:
            made = _StdSocket(_af_stream, _SOCK_STREAM, proto)
        except OSError as exc:
            raise _explain_create(exc, _af_stream, _SOCK_STREAM, proto) from None
        if family == _AF_INET6:
            _mark_inet6(made)
        return made
    af = _family_value()  # which also covers socket classes defined since the last call
    if fileno is not None:
        detected = -1 if family in _IP_FAMILIES or family == af or family == -1 else family
        made = _StdSocket(detected, type, proto, fileno)
        if _Lingering.enabled is not False:
            _Lingering.shared.add(_CSocket.fileno(made))  # another object or process may hold it too
        if _family_of(made) == af and (family == _AF_INET6 or _is_inet6_descriptor(fileno)):
            _mark_inet6(made)  # an adopted vsock descriptor the program takes for IPv6 (Twisted's adoptStreamPort)
        return made
    if family != -1 and family not in _IP_FAMILIES and (family != af or af == -1):
        return _StdSocket(family, type, proto)
    if type != -1 and type & 0xF == _SOCK_DGRAM and (family != af or af == -1):
        # The datagram policy, at run time too: an IP datagram socket (one the port could not see as one:
        # `sock_module.SOCK_DGRAM` of another module) stays on IP; vsock datagrams are asked for by family.
        return _StdSocket(socket.AF_INET if family == -1 else family, type, proto)
    kind = socket.SOCK_STREAM if type == -1 else type
    if af == -1:
        if _hybrid_only():
            made = _StdSocket(socket.AF_UNIX, kind, 0)
            _hybrid_pending(made)
            return made
        raise _explained(OSError(errno.EAFNOSUPPORT, ""), "this machine offers no vSockets address family "
                         "(VMCISock_GetAFValue() returned -1): " + _no_vsock_hint())
    if proto in _IP_PROTOCOLS or proto == -1:
        proto = 0
    try:
        made = _StdSocket(af, kind, proto)
    except OSError as exc:
        raise _explain_create(exc, af, kind, proto) from None
    if kind & 0xF == getattr(socket, "SOCK_DGRAM", 2):
        _install_layer(_DATAGRAM_METHODS)
    if family == _AF_INET6:
        _mark_inet6(made)
    return made


def _replacement_socket(cls, family, type, proto, fileno):
    """A socket of the class that replaced socket.socket, with the family vsock_socket() picks."""
    af = _family_value()
    inet6 = family == _AF_INET6
    if fileno is not None:
        family = -1 if family in _IP_FAMILIES or family == af or family == -1 else family
    elif (family == -1 or family in _IP_FAMILIES) and af != -1 and not (type != -1 and type & 0xF == _SOCK_DGRAM):
        family, proto = af, (0 if proto in _IP_PROTOCOLS or proto == -1 else proto)
    made = cls(family, type, proto, fileno)
    if inet6:
        for inner in (made, getattr(made, "_sock", None), getattr(made, "fd", None)):  # (gevent's wrapped, eventlet's)
            if isinstance(inner, _CSocket) and _family_of(inner) == af:
                _mark_inet6(inner)
                break
    return made


def vsock_fromfd(fd, family=-1, type=-1, proto=-1):
    """socket.fromfd() for ported code: a socket on a duplicate of `fd` with the family the descriptor
    really has (a vsock fd stays vsock even where the program says AF_INET)."""
    if _Lingering.enabled is not False:
        _Lingering.shared.add(fd)
    return vsock_socket(family, type, proto, fileno=os.dup(fd))


def vsock_family(family):
    """The vsock family for an IP family (AF_INET, AF_INET6), any other family as it is: for a family
    computed at run time that reaches a raw C call (libc.socket(family, ...)), a socket-making method
    (asyncore's create_socket(family, type)) or a green framework's socket class (gevent's)."""
    af = VMCISock_GetAFValue()
    _layer_covers_new_classes()
    return af if family in _IP_FAMILIES and af != -1 else family


_socket_classes = {}  # base -> its vsock_socket_class: one class per base


def vsock_socket_class(base):
    """`base` (socket.socket, the C socket type under it, or a class derived from one) for a class that
    derives from it (`class GreenSocket(vsock_socket_class(_socket.socket))`, gevent's own): instances
    made with an IP family or none get the vsock family, as vsock_socket() makes them; datagram sockets
    (the datagram policy: they stay on IP), other families and adopted descriptors keep theirs."""
    made = _socket_classes.get(base)
    if made is None:
        if not (isinstance(base, type) and issubclass(base, _CSocket)):
            _warn_once(("socket class", base), "vsock_socket_class(%r): not a socket class; left as it is" % (base,))
            return base

        def __init__(self, family=-1, type=-1, proto=-1, fileno=None):
            datagram = type != -1 and type & 0xF == getattr(socket, "SOCK_DGRAM", 2)
            if fileno is None and not datagram and (family == -1 or family in _IP_FAMILIES):
                family = VMCISock_GetAFValue()
                if family == -1:
                    raise _explained(OSError(errno.EAFNOSUPPORT, ""), "this machine offers no vSockets address "
                                     "family (VMCISock_GetAFValue() returned -1): " + _no_vsock_hint())
                proto = 0 if proto in _IP_PROTOCOLS else proto
            _layer_covers_new_classes()  # the classes derived from this one since the layer was installed
            base.__init__(self, family, type, proto, fileno)

        made = _socket_classes[base] = type("Vsock" + base.__name__.capitalize(), (base,),
                                            {"__init__": __init__, "__slots__": (), "__module__": __name__})
    return made


_making_kept_class = set()  # contexts (threads, greenlets) in _kept_class_socket()


def _kept_class_socket(*args, **kwargs):
    """A socket of the class a program kept as a value (the standard library's) where another class
    replaced socket.socket since: a plain one, never one of the replacement (eventlet's GreenSocket wraps
    what its kept class makes) nor a test's mock."""
    context = _context()
    _making_kept_class.add(context)
    try:
        return vsock_socket(*args, **kwargs)
    finally:
        _making_kept_class.discard(context)


class _SocketTypeStandIn(type):
    """The metaclass of vsock_socket_type(socket.socket): the class itself makes sockets as vsock_socket()
    does (plain socket.socket objects) and answers isinstance/issubclass for socket.socket; classes
    derived from it are made and checked as any class is."""

    def __call__(cls, *args, **kwargs):
        if cls is _socket_type:
            if socket.socket is _StdSocket:
                return vsock_socket(*args, **kwargs)
            return _kept_class_socket(*args, **kwargs)
        return type.__call__(cls, *args, **kwargs)

    def __instancecheck__(cls, instance):
        return isinstance(instance, _StdSocket) if cls is _socket_type else type.__instancecheck__(cls, instance)

    def __subclasscheck__(cls, subclass):
        return issubclass(subclass, _StdSocket) if cls is _socket_type else type.__subclasscheck__(cls, subclass)


def vsock_socket_type(cls):
    """A socket class kept as a value (`_original_socket = socket.socket`) for ported code. For
    socket.socket itself, a stand-in that is socket.socket in every way but one: calling it makes a
    socket as vsock_socket() does (a plain socket.socket, of the vsock family for an IP family or none),
    while its methods (`_original_socket.makefile(self)`), isinstance/issubclass checks and classes
    derived from it work as socket.socket's. Another socket class (a green one) gets
    vsock_socket_class(cls); anything that is not a socket class is given back as it is, with a
    RuntimeWarning."""
    if cls is _StdSocket or cls is socket.socket:
        return _socket_type
    if not (isinstance(cls, type) and issubclass(cls, _CSocket)):
        _warn_once(("socket class", cls), "vsock_socket_type(%r): not a socket class; left as it is" % (cls,))
        return cls
    return vsock_socket_class(cls)


# Reads that wait for all their bytes (MSG_WAITALL). Linux vsock refuses one that asks for at least its
# receive buffer's size (SO_VM_SOCKETS_BUFFER_SIZE, 256 KiB by default) with ENOMEM before reading
# anything, where TCP waits for all of it (an RPC framework reading a whole message: Pyro5). The port
# writes such reads as these calls: CPython's own read first, and only where vsock refused it, the same
# read in parts of half the buffer. A socket with a timeout gets one part, as TCP's MSG_WAITALL on a
# socket with a timeout gives what has arrived.
def vsock_recv(sock, bufsize, flags=0):
    """sock.recv(bufsize, flags), also where MSG_WAITALL asks a vsock stream for more than its buffer."""
    try:
        return sock.recv(bufsize, flags)
    except OSError as error:
        if not _waitall_refused(sock, error, flags):
            raise
    parts, left, part_size = [], bufsize, _waitall_part_size(sock)
    while left > 0:
        part = sock.recv(min(left, part_size), flags)
        if not part:
            break
        parts.append(part)
        left -= len(part)
        if _CSocket.gettimeout(sock) is not None:
            break
    return b"".join(parts)


def vsock_recv_into(sock, buffer, nbytes=0, flags=0):
    """sock.recv_into(buffer, nbytes, flags), also where MSG_WAITALL asks a vsock stream for more than its
    buffer."""
    try:
        return sock.recv_into(buffer, nbytes, flags)
    except OSError as error:
        if not _waitall_refused(sock, error, flags):
            raise
    view = memoryview(buffer).cast("B")
    wanted, got, part_size = nbytes or len(view), 0, _waitall_part_size(sock)
    while got < wanted:
        count = sock.recv_into(view[got:got + min(wanted - got, part_size)], 0, flags)
        if not count:
            break
        got += count
        if _CSocket.gettimeout(sock) is not None:
            break
    return got


def _waitall_refused(sock, error, flags):
    return (error.errno == errno.ENOMEM and flags & getattr(socket, "MSG_WAITALL", 0) and isinstance(sock, _CSocket)
            and _family_of(sock) == _af_value)


def _waitall_part_size(sock):
    try:
        size, = struct.unpack("Q", _CSocket.getsockopt(sock, _af_value, SO_VM_SOCKETS_BUFFER_SIZE, 8))
    except (OSError, struct.error):
        size = 1 << 17
    return max(1, size // 2)



# ===================================================================================================
# 4. What socket.socket learns about the vsock family
# ===================================================================================================
# Each method below replaces socket.socket's by a _FamilyMethod descriptor. Looked up on a socket of
# the vsock family (or a hybrid one), it gives the vsock version; on any other socket, CPython's own
# method itself (the C one, bound): the lookup runs a line of Python, the call none, so other families'
# results, errors, tracebacks and signatures are CPython's. Read from the class, the descriptor is a
# callable that picks by its first argument the same way. Installed once per process by the newest
# runtime copy; sendto/recvfrom only once the process makes a vsock datagram socket (VMware), and the
# hybrid methods once it has a hybrid socket.

_LAYER = "_vsockport_layer"  # on the socket module: {method name: version} installed
_StdSocket = _stdlib_socket_class()
_family_of = _CSocket.family.__get__
_MethodType = types.MethodType
_SOL_SOCKET = socket.SOL_SOCKET
_SO_REUSEPORT = getattr(socket, "SO_REUSEPORT", None)
_SO_ERROR = socket.SO_ERROR
_socket_type = _SocketTypeStandIn("socket", (vsock_socket_class(_StdSocket),),
                                  {"__slots__": (), "__module__": __name__, "__qualname__": "socket"})


# A socket.socket method: the vsock version for vsock sockets, CPython's for every other.
class _FamilyMethod:
    __doc__ = property(lambda self: self.original.__doc__)

    __slots__ = ("original", "vsock", "vsockport_version")

    def __init__(self, original, vsock):
        self.original, self.vsock, self.vsockport_version = original, vsock, VSOCKPORT_RUNTIME_VERSION

    def __get__(self, sock, owner=None):
        if sock is not None:
            if _family_of(sock) == _af_value or (_hybrid_sockets.data and sock in _hybrid_sockets):
                return _MethodType(self.vsock, sock)
            return self.original.__get__(sock, owner)
        # Read from the class (`socket.socket.connect`): itself, a callable that still picks by family, for
        # a subclass that calls its base unbound (SocksiPy's `_orgsocket.connect(self, address)`) and for
        # mock.patch(..., spec=True), which makes a non-callable mock of a non-callable original.
        return self

    def __call__(self, sock, *args, **kwargs):
        if _family_of(sock) == _af_value or (_hybrid_sockets.data and sock in _hybrid_sockets):
            return self.vsock(sock, *args, **kwargs)
        return self.original(sock, *args, **kwargs)

    def __getattr__(self, name):  # __name__, __qualname__, __doc__ ... as the original method has them
        if name in ("original", "vsock", "vsockport_version"):  # an unset slot (a copy being made)
            raise AttributeError(name)
        return getattr(self.original, name)


def _original_method(cls, name):
    """socket.socket's method `name` as CPython defines it (under any earlier runtime's layer)."""
    for klass in cls.__mro__:
        if name in klass.__dict__:
            value = klass.__dict__[name]
            return getattr(value, "original", value)
    raise AttributeError(name)


_layered = [0]  # how many classes of the C type the layer was installed on


def _install_layer(methods=None):
    """Put the vsock methods on socket.socket (and any other Python class of the C socket type), unless
    a copy as new or newer put them there. Idempotent; classes defined later (a framework imported
    after the first vsock socket) are covered on the next call."""
    methods = _STREAM_METHODS if methods is None else methods
    installed = socket.__dict__.get(_LAYER)
    if installed is None:
        installed = {}
        setattr(socket, _LAYER, installed)
    classes = _CSocket.__subclasses__()
    placed = [(cls, methods) for cls in classes]
    if methods is _STREAM_METHODS:
        placed.append((_StdSocket, _STDLIB_STREAM_METHODS))
    for cls, group in placed:
        for name, vsock_method in group.items():
            key = "%s.%s:%s" % (cls.__module__, cls.__qualname__, name)
            current = cls.__dict__.get(name)
            if installed.get(key, 0) >= VSOCKPORT_RUNTIME_VERSION and getattr(current, "vsockport_version", None):
                continue
            if not hasattr(cls, name):  # a class of the C type without this Python method (gevent's: accept)
                continue
            setattr(cls, name, _FamilyMethod(_original_method(cls, name), vsock_method))
            installed[key] = VSOCKPORT_RUNTIME_VERSION
    _layered[0] = len(classes)
    _groups_installed.add(id(methods))
    if methods is _STREAM_METHODS:
        if _Lingering.enabled is None and os.environ.get(TCP_CLOSE_ENV, "").strip().lower() not in ("1", "yes", "on", "true"):
            _Lingering.enabled = False
        if _Lingering.enabled is not False:
            _install_layer(_TCP_CLOSE_METHODS)
            _watch_forks()


_groups_installed = set()  # which of the method groups below this copy installed


def _layer_covers_new_classes():
    """Cover socket classes defined since the layer was installed (cheap: one list of subclasses)."""
    if len(_CSocket.__subclasses__()) != _layered[0]:
        _install_layer()
        for group in (_DATAGRAM_METHODS, _HYBRID_METHODS, _TCP_CLOSE_METHODS):
            if id(group) in _groups_installed:
                _install_layer(group)


_hosts = {}  # cid -> its host string: a program meets a handful of CIDs, over and over


def _host_out(cid):
    """How a CID reads as a host: "0.0.0.0" for the wildcard (what TCP programs recognise as a wildcard
    bind), "127.0.0.1" for the loopback CID (what they recognise as a local peer: the tests that compare
    a peer with the 127.0.0.1 they dialled, a check that a peer is local), the CID's digits otherwise.
    connect() and bind() read each back as that CID."""
    host = _hosts.get(cid)
    if host is None:
        host = _WILDCARD_OUT if cid == VMADDR_CID_ANY else _LOOPBACK_OUT if cid == VMADDR_CID_LOCAL else str(cid)
        _hosts[cid] = host
    return host


_WILDCARD_OUT, _LOOPBACK_OUT = "0.0.0.0", "127.0.0.1"
_AF_INET6 = getattr(socket, "AF_INET6", None)
# Sockets a program asked for as AF_INET6 (a dual-stack server binding "::", Twisted's IPv6 ports): what
# they report is IPv6-shaped, (host, port, flowinfo, scope_id) with "::" and "::1" for the wildcard and
# loopback CIDs, since the program unpacks four fields and builds IPv6 addresses from them.
_inet6_sockets = __import__("weakref").WeakSet()


_inet6_descriptors = __import__("weakref").WeakValueDictionary()  # socket inode -> its IPv6-shaped socket


def _mark_inet6(sock):
    _inet6_sockets.add(sock)
    try:
        _inet6_descriptors[os.fstat(_CSocket.fileno(sock)).st_ino] = sock
    except OSError:
        pass


def _is_inet6_descriptor(fd):
    """Whether `fd` is (a duplicate of) an open IPv6-shaped socket's descriptor: a program that adopts
    its own socket's descriptor (`fromfd(sock.fileno(), sock.family, ...)`, Twisted's adoptStreamPort)
    passes the vsock family, not AF_INET6."""
    if not _inet6_descriptors:
        return False
    try:
        original = _inet6_descriptors.get(os.fstat(fd).st_ino)
    except OSError:
        return False
    return original is not None and _CSocket.fileno(original) != -1


def _host6_out(cid):
    """How a CID reads as an IPv6 host: "::" for the wildcard, "::1" for the loopback CID, else its digits."""
    return "::" if cid == VMADDR_CID_ANY else "::1" if cid == VMADDR_CID_LOCAL else str(cid)


def _address_out(address, sock=None):
    """(cid, port) from the kernel as TCP/IP code reads it: (host string, port), or the IPv6 shape for
    a socket the program asked for as AF_INET6."""
    if type(address) is tuple and len(address) == 2 and type(address[0]) is int:
        if _inet6_sockets.data and sock in _inet6_sockets:
            return (_host6_out(address[0]), address[1], 0, 0)
        return (_host_out(address[0]), address[1])
    return address


def _address_in(address, bind=False):
    """A TCP/IP-style address (or a (CID, port) one) as the kernel takes it: (cid, port), or a hybrid peer.
    A named tuple (aiosmtpd's HostPort(host, port)) is an address too."""
    if isinstance(address, tuple) and len(address) >= 2:
        host = address[0]
        if type(host) is int and len(address) == 2 and type(address[1]) is int and not _cid_map().entries:
            return address
        if type(host) is str and len(address) == 2:
            # A client connects to the same ("localhost", port) again and again: resolving it costs more
            # than the connect's own Python, so a name is resolved once per map.
            key = (host, address[1], bind)
            found = _resolved.get(key)
            if found is not None and found[0] is _cid_map():
                return found[1]
            resolved = vsock_address(address, bind=bind)
            if type(resolved[0]) is int:  # not a hybrid peer: those carry their socket's state
                if len(_resolved) >= 256:
                    _resolved.clear()
                _resolved[key] = (_map, resolved)
            return resolved
        if isinstance(host, (str, bytes, int)) and not isinstance(host, bool):
            return vsock_address(address, bind=bind)
    return address


_resolved = {}  # (host, port, bind) -> (the map it was resolved with, (cid, port))


def _sock_bind(sock, address):
    address = _address_in(address, bind=True)
    if _is_hybrid(address):
        return _hybrid_bind(sock, address)
    if isinstance(address, tuple) and len(address) == 2 and address[1] == VMADDR_PORT_ANY:
        address = _bind_ephemeral(sock, address[0])
    else:
        try:
            if _backend_name() == "ctypes":
                _libc_bind(sock, address)
            else:
                _CSocket.bind(sock, address)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE or not _bind_as_twin(sock, address):
                raise _explain_bind(exc, address) from None
            return None
    if isinstance(address, tuple) and len(address) == 2 and address[1] != VMADDR_PORT_ANY:
        _bound[address + (sock in _inet6_sockets,)] = sock
    return None


# TCP has two loopback and two wildcard addresses, one per IP family, and programs bind a port on both:
# a free-port finder checks that 127.0.0.1:P and [::1]:P are both free (anyio's free_tcp_port, which
# looped forever when the second bind failed), a dual-stack server listens on 0.0.0.0:P and [::]:P. On
# vsock both are one CID, and the second bind is EADDRINUSE. Where this process bound that CID and
# port with a socket of the other shape (IPv4- or IPv6-shaped), the second socket becomes that same
# socket (its descriptor a duplicate of the first's): bound, listening and accepting together, each
# reporting its own shape. What conflicts on TCP still does: two sockets of one shape, and the two
# wildcards unless the IPv6-shaped socket set IPV6_V6ONLY (Linux's [::] takes IPv4 too by default).
_bound = __import__("weakref").WeakValueDictionary()  # (cid, port, IPv6-shaped) -> the socket bound there


def _bind_as_twin(sock, address):
    twin = _bound.get(tuple(address) + (sock not in _inet6_sockets,))
    if twin is None or twin is sock or _CSocket.fileno(twin) < 0:
        return False
    if address[0] == VMADDR_CID_ANY:
        six = sock if sock in _inet6_sockets else twin
        if not _options_set.get(six, {}).get((_IPPROTO_IPV6, getattr(socket, "IPV6_V6ONLY", 26))):
            return False
    os.dup2(_CSocket.fileno(twin), _CSocket.fileno(sock))
    if _Lingering.enabled is not False:
        _Lingering.shared.update((_CSocket.fileno(twin), _CSocket.fileno(sock)))
    return True


# The kernel picks a vsock ephemeral port anywhere in 32 bits (3368890268), and TCP programs put the
# port they got into URLs and "host:port" strings that accept 16 bits only (urllib3 refuses
# "http://localhost:3368890268"). A port asked for as "any" is a free one of IANA's dynamic range, as
# TCP gives, and the kernel's own choice only if that range is full.
_EPHEMERAL_PORTS = (49152, 65535)


def _bind_ephemeral(sock, cid):
    import random

    bind = _libc_bind if _backend_name() == "ctypes" else _CSocket.bind
    for _ in range(64):
        address = (cid, random.randint(*_EPHEMERAL_PORTS))
        try:
            bind(sock, address)
            return address
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise _explain_bind(exc, address) from None
    try:
        bind(sock, (cid, VMADDR_PORT_ANY))
        return (cid, VMADDR_PORT_ANY)
    except OSError as exc:
        raise _explain_bind(exc, (cid, VMADDR_PORT_ANY)) from None


# A client's own port is the kernel's choice at connect(), anywhere in 32 bits; TCP programs pack the
# port of a connection's end into two bytes (a SOCKS5 reply's BND.PORT, a PROXY protocol header) and
# check it below 65536. A vsock client is bound to a port of the dynamic range first, as TCP gives it:
# the kernel's autobind does the same work, so new connections per second stay as they were (docs/speed.md).
_next_client_port = __import__("itertools").count(int.from_bytes(os.urandom(2), "little")).__next__
_DYNAMIC_FIRST, _DYNAMIC_COUNT = _EPHEMERAL_PORTS[0], _EPHEMERAL_PORTS[1] - _EPHEMERAL_PORTS[0] + 1


def _bind_client_port(sock, bind):
    for _ in range(8):
        try:
            return bind(sock, (VMADDR_CID_ANY, _DYNAMIC_FIRST + _next_client_port() % _DYNAMIC_COUNT))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                return None  # bound already (EINVAL), or anything else: connect() decides as it would
    return None  # eight ports in use: the kernel's own choice


def _sock_connect(sock, address):
    # The common case in one frame: an address connected to before under the same VSOCK_CID_MAP (a
    # client dials the same ("localhost", port) or (cid, port) again and again), CPython's own call, no
    # timeout to hand over.
    if type(address) is tuple and _backend == "native" and _CSocket.gettimeout(sock) is None:
        try:
            known = _targets.get(address)
        except TypeError:  # an unhashable part: the full path says what is wrong with it
            known = None
        if known is not None and known[0] is (_environ.get(_ENV_KEY) if _environ is not None else None):
            _bind_client_port(sock, _CSocket.bind)
            try:
                return _CSocket.connect(sock, known[1])
            except OSError as exc:
                raise _explain_connect(exc, known[1]) from None
    _connect(sock, address, False)


# address as the program gave it -> (VSOCK_CID_MAP's raw value then, (cid, port)): the connect path's
# one lookup. The raw value is os.environ's own object, so a changed map is a different one.
_targets = {}


def _remember_target(address, target):
    if type(address) is tuple and len(address) == 2 and type(target) is tuple and type(target[0]) is int:
        try:
            hash(address)
        except TypeError:
            return
        if len(_targets) >= 256:
            _targets.clear()
        _targets[address] = (_environ.get(_ENV_KEY) if _environ is not None else None, target)


def _sock_connect_ex(sock, address):
    return _connect(sock, address, True)


def _connect(sock, address, report_errno):
    given, address = address, _address_in(address)
    if _is_hybrid(address):
        return _hybrid_connect(sock, address, report_errno)
    if _environ is not None:  # (where the map is read through os.environ's own dict)
        _remember_target(given, address)
    timeout = _apply_connect_timeout(sock)
    _bind_client_port(sock, _libc_bind if _backend_name() == "ctypes" else _CSocket.bind)
    try:
        if _backend_name() == "ctypes":
            code = _libc_connect(sock, address, report_errno=report_errno)
        elif report_errno:
            code = _CSocket.connect_ex(sock, address)
        else:
            return _CSocket.connect(sock, address)
    except BlockingIOError:
        _connecting.add(sock)  # its outcome comes from getsockopt(SO_ERROR)
        raise
    except OSError as exc:
        if timeout:
            exc._vsock_timeout = timeout
        raise _explain_connect(exc, address) from None
    if not report_errno:
        return None
    if code in _IN_PROGRESS:
        _connecting.add(sock)
    return _refusal(code)


# A connect to a vsock port nobody listens on is answered with a reset (ECONNRESET) on virtio, where
# TCP answers with a refusal: TCP programs wait for a server to start by retrying on
# ConnectionRefusedError, and give up on anything else. A failed connect on a vsock socket is reported
# as the refusal it is; a reset of an established connection stays a reset.
_IN_PROGRESS = (errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EALREADY)
_connecting = __import__("weakref").WeakSet()  # non-blocking vsock connects whose SO_ERROR is not read yet


def _refusal(code):
    return errno.ECONNREFUSED if code == errno.ECONNRESET else code


def _sock_listen(sock, *backlog):
    try:
        return _CSocket.listen(sock, *backlog)
    except OSError as exc:
        if exc.errno == errno.EINVAL:
            raise _explained(exc, "listen() needs bind() first on vsock: bind((VMADDR_CID_ANY, port)) (no implicit "
                                  "ephemeral port as with TCP)") from None
        raise


def _sock_accept(sock):
    """socket.socket._accept for vsock: (fd, (host string, port)); accept() builds the socket."""
    if _hybrid_sockets.data and sock in _hybrid_sockets:
        fd, _ = _CSocket._accept(sock)
        return fd, _hybrid_sockets[sock].accepted
    fd, address = _libc_accept(sock) if _backend == "ctypes" else _CSocket._accept(sock)
    if _inet6_sockets.data and sock in _inet6_sockets:
        return fd, (_host6_out(address[0]), address[1], 0, 0)
    return fd, (_hosts.get(address[0]) or _host_out(address[0]), address[1])


_type_of = _CSocket.type.__get__
_proto_of = _CSocket.proto.__get__
_getdefaulttimeout = socket.getdefaulttimeout


def _sock_accept_socket(sock):
    """socket.socket.accept for vsock, in one frame where the stdlib's takes five (its own, then the
    family and type properties with their enum conversions): a server runs it once per connection. What
    it returns is the stdlib's: a socket.socket (the module's attribute, as accept() looks it up), blocking
    where the listener has a timeout and there is no default one, and the peer as (host string, port)."""
    if _backend != "native" or (_hybrid_sockets.data and sock in _hybrid_sockets):
        return _hybrid_accept(sock)
    fd, address = _CSocket._accept(sock)
    made = socket.socket(_af_value, _type_of(sock), _proto_of(sock), fd)
    if _getdefaulttimeout() is None and _CSocket.gettimeout(sock):
        made.setblocking(True)
    if _inet6_sockets.data and sock in _inet6_sockets:
        _mark_inet6(made)  # accepted from an IPv6-shaped listener: IPv6-shaped too
        return made, (_host6_out(address[0]), address[1], 0, 0)
    return made, (_hosts.get(address[0]) or _host_out(address[0]), address[1])


def _sock_getsockname(sock):
    hybrid = _hybrid_sockets.get(sock) if _hybrid_sockets.data else None
    if hybrid is not None:
        return hybrid.sockname
    if _backend_name() == "ctypes":
        address = _libc_name(sock, _get_libc().getsockname)
    else:
        address = _CSocket.getsockname(sock)
    if address[0] == VMADDR_CID_ANY:
        address = (_own_cid_when_connected(sock), address[1])
    if address[1] == VMADDR_PORT_ANY:
        address = (address[0], 0)  # not bound yet: TCP reads port 0 (and bind() takes 0 for any port)
    return _address_out(address, sock)


def _own_cid_when_connected(sock):
    """The CID a connected client socket has for its peer. The kernel keeps the wildcard it bound the
    client to at connect(), where TCP reports the address the connection uses (FTP's PORT, a SOCKS
    reply and Twisted's getHost() read it; a test compares it with what the server sees): the local
    CID of the transport that carries the connection, chosen as the kernel chooses it. An unconnected
    socket keeps the wildcard."""
    try:
        peer = (_libc_name(sock, _get_libc().getpeername) if _backend_name() == "ctypes"
                else _CSocket.getpeername(sock))[0]
    except OSError:
        return VMADDR_CID_ANY
    return _local_cid_towards(peer, VMCISock_GetLocalCID)


def _local_cid_towards(peer, local_cid):
    """The local CID of the transport Linux picks for `peer` (vsock_assign_transport): loopback for CID 1
    and for one's own CID, guest-to-host (this guest's CID, `local_cid()`) for CIDs 0-2, else
    host-to-guest (the host's CID)."""
    if peer == VMADDR_CID_LOCAL:
        return VMADDR_CID_LOCAL
    own = local_cid()
    if peer == own:
        return VMADDR_CID_LOCAL  # a connect to one's own CID takes the loopback transport too
    if peer <= VMADDR_CID_HOST or own == VMADDR_CID_ANY:
        return own
    return VMADDR_CID_HOST


def _sock_getpeername(sock):
    hybrid = _hybrid_sockets.get(sock) if _hybrid_sockets.data else None
    if hybrid is not None:
        if hybrid.peername is None:
            raise OSError(errno.ENOTCONN, os.strerror(errno.ENOTCONN))
        return hybrid.peername
    if _backend_name() == "ctypes":
        return _address_out(_libc_name(sock, _get_libc().getpeername), sock)
    return _address_out(_CSocket.getpeername(sock), sock)


def _without_meaning(level, option):
    """Options vsock has no use for: every level above the socket's (TCP_*, IP_*, IPV6_*), and SO_REUSEPORT."""
    return (level != _SOL_SOCKET and level != _af_value) or (level == _SOL_SOCKET and option == _SO_REUSEPORT)


# socket -> {(level, option): value} of the options without meaning a program set: read back as set
# (a program that sets TCP_NODELAY and checks it, as Twisted's tests do), 0 where never set, but
# TCP_NODELAY reads 1: vsock sends at once, as TCP does with the option on (which asyncio turns on for
# every TCP transport, and programs check).
_options_set = __import__("weakref").WeakKeyDictionary()
_IPPROTO_IPV6 = getattr(socket, "IPPROTO_IPV6", 41)
_OPTION_DEFAULTS = {(getattr(socket, "IPPROTO_TCP", 6), getattr(socket, "TCP_NODELAY", 1)): 1}


def _sock_setsockopt(sock, level, option, value, *optlen):
    if _without_meaning(level, option):
        # documented no-op: vsock has no Nagle delay, TCP keepalive, IP header or port sharing
        try:
            _options_set.setdefault(sock, {})[level, option] = value
        except TypeError:  # a socket class without weak references: read back as 0
            pass
        return None
    try:
        # CPython passes every vsock option as a u64: bytes values (timevals, SO_LINGER) need libc.
        if _backend_name() == "ctypes" or not isinstance(value, int) or optlen:
            return _libc_setsockopt(sock, level, option, value, *optlen)
        return _CSocket.setsockopt(sock, level, option, value)
    except OSError as exc:
        raise _explain_option(exc, level, option) from None


def _sock_getsockopt(sock, level, option, *buflen):
    if _without_meaning(level, option):
        try:
            value = _options_set.get(sock, {}).get((level, option), _OPTION_DEFAULTS.get((level, option), 0))
        except TypeError:
            value = _OPTION_DEFAULTS.get((level, option), 0)
        if not buflen:
            return value if isinstance(value, int) else int.from_bytes(bytes(value)[:4].ljust(4, b"\0"), sys.byteorder)
        packed = struct.pack("i", value) if isinstance(value, int) else bytes(value)
        return packed[:buflen[0]].ljust(buflen[0], b"\0")
    try:
        if _backend_name() == "ctypes" or buflen:
            value = _libc_getsockopt(sock, level, option, *buflen)
        else:
            value = _CSocket.getsockopt(sock, level, option)
    except OSError as exc:
        raise _explain_option(exc, level, option) from None
    if option == _SO_ERROR and level == _SOL_SOCKET and sock in _connecting and not buflen:
        _connecting.discard(sock)  # the outcome of its non-blocking connect
        return _refusal(value)
    return value


def _sock_sendto(sock, data, *flags_address):
    *flags, address = flags_address
    return _CSocket.sendto(sock, data, *flags, _address_in(address))


def _sock_recvfrom(sock, *args):
    data, address = _CSocket.recvfrom(sock, *args)
    return data, _address_out(address)


def _sock_recvfrom_into(sock, *args):
    size, address = _CSocket.recvfrom_into(sock, *args)
    return size, _address_out(address)


def _apply_connect_timeout(sock):
    """TCP waits as long as settimeout() says; vsock gives up after its own connect timeout (2 s)
    unless told otherwise, so a longer socket timeout is handed to the kernel too."""
    timeout = _CSocket.gettimeout(sock)
    if timeout:
        try:
            set_connect_timeout(sock, timeout)
        except OSError:
            pass  # an old transport without the option: the kernel default applies
    return timeout


def _sock_shutdown(sock, how):
    # Once the peer has closed, a shutdown() makes Linux vsock forget the orderly close: recv() then fails
    # with ENOTCONN where TCP keeps answering b"" (end of stream), and green frameworks read ENOTCONN as
    # "not connected yet, wait" and wait forever (eventlet's WSGI server shuts its idle connections down
    # on exit). A socket whose peer has shut down both ways keeps its end of stream: close() does the rest.
    if _peer_has_closed(sock):
        return None
    return _CSocket.shutdown(sock, how)


def _peer_has_closed(sock):
    """Whether a vsock stream's peer has closed (or reset) it, with nothing left to read: asked without
    waiting, whatever the socket's timeout (readable and writable first, then a peek and an empty send)."""
    if not hasattr(select, "poll") or _CSocket.fileno(sock) < 0:
        return False  # (the quirk is Linux's; a closed socket: shutdown() raises EBADF, as CPython's does)
    poller = select.poll()
    poller.register(sock, select.POLLIN | select.POLLOUT)
    ready = poller.poll(0)
    if not ready or ready[0][1] & (select.POLLIN | select.POLLOUT) != select.POLLIN | select.POLLOUT:
        return False
    try:
        if _CSocket.recv(sock, 1, socket.MSG_PEEK | socket.MSG_DONTWAIT):
            return False  # data to read first
        _CSocket.send(sock, b"", socket.MSG_DONTWAIT | getattr(socket, "MSG_NOSIGNAL", 0))
    except BrokenPipeError:
        return True  # the peer reads no more either
    except OSError:
        return False
    return False  # only half-closed: the peer still reads, and must see this shutdown


# -- Closing as TCP closes ---------------------------------------------------------------------------
# A TCP connection's end that is closed still takes what its peer sends next: the peer's first send
# after the close succeeds (the closed end answers it with a reset), only later ones fail, and its reads
# see the end of stream at once. On vsock the peer's very first send fails (EPIPE), so a server that
# answers a client which has just hung up, or a client that writes once more to a server that closed,
# dies where it worked over TCP. So close() of a connected vsock stream whose peer still has it open and
# has sent nothing unread shuts it down for writing (the peer reads the end of stream, as from a close)
# and keeps the descriptor until anything arrives (the peer's next send then fails, as on TCP), the
# peer closes too, or LINGER_SECONDS pass; one thread looks every 50 ms. The socket object is closed at
# once. Never where the descriptor may be shared, since a shutdown reaches every holder: sockets made by
# dup(), vsock_fromfd() or adopting a descriptor, descriptors open when the process forked (in parent
# and child), and processes with multiprocessing children or started by multiprocessing.
# Only with VSOCK_TCP_CLOSE=1: it costs a connection closed first by this end two system calls and one
# packet more (new connections 0.71-0.87x in the echo benchmark), and a descriptor shared by hand (os.dup,
# pass_fds) with a holder that still sends would be shut down under it; off, close() is CPython's.
LINGER_SECONDS = 5.0
TCP_CLOSE_ENV = "VSOCK_TCP_CLOSE"


class _Lingering:
    enabled = None  # None: wanted, not started yet; False: off (the setting, or no thread or /proc here)
    kept = {}  # descriptor -> its deadline, in the order kept (so in deadline order)
    poller = None  # a select.poll of the kept descriptors
    lock = None  # held while `kept` and `poller` change (closes and the watching thread)
    shared = set()  # descriptors another socket object or process may hold too
    at_fork = frozenset()
    watching = False
    close = monotonic = POLLIN = None  # the standard library's, unpatched by green-thread frameworks


def _sock_real_close(sock, _ss=_CSocket):
    if _hybrid_sockets.data and sock in _hybrid_sockets:
        return _hybrid_real_close(sock, _ss)
    if _Lingering.enabled is not False and _close_as_tcp(sock):
        return None
    return _ss.close(sock)


def _close_as_tcp(sock):
    fd = _CSocket.fileno(sock)
    if fd < 0 or _type_of(sock) != _SOCK_STREAM:
        return False
    if _Lingering.shared and fd in _Lingering.shared:
        _Lingering.shared.discard(fd)  # (the number is free once closed)
        return False
    processes = sys.modules.get("multiprocessing.process")
    if processes is not None and (getattr(processes, "_children", None) or getattr(processes, "_parent_process", None)):
        return False  # a socket may have been handed to (or from) another process
    if len(_Lingering.kept) >= _KEPT_AT_MOST:
        return False  # (a burst of closes: never run a process out of descriptors)
    if _CSocket.gettimeout(sock):
        _CSocket.setblocking(sock, False)  # (with a timeout, CPython waits for input before any recv)
    try:
        if _CSocket.recv(sock, 1, _PEEK_NOW) is not None:
            return False  # b"": the peer sends no more (it closed first); unread data: close resets, as TCP's
    except BlockingIOError:
        pass  # connected, the peer's end open, nothing unread: the case to keep
    except OSError:
        return False  # not connected (a listener, a refused connect) or reset
    try:
        _CSocket.shutdown(sock, socket.SHUT_WR)
    except OSError:
        return False
    if _Lingering.enabled is None and not _start_watching():
        return False
    fd = _CSocket.detach(sock)
    with _Lingering.lock:
        _Lingering.kept[fd] = _Lingering.monotonic() + LINGER_SECONDS
        _Lingering.poller.register(fd, _Lingering.POLLIN)
    return True


_KEPT_AT_MOST = 256
_PEEK_NOW = getattr(socket, "MSG_PEEK", 2) | getattr(socket, "MSG_DONTWAIT", 0x40)
_WATCH_SECONDS = 0.05  # how often the thread looks: one wake-up serves many closes


def _close_kept(now):
    """Close the kept descriptors that poll readable (data from the peer, or its close) or reached their
    deadline. The lock is held."""
    kept = _Lingering.kept
    done = [fd for fd, _ in _Lingering.poller.poll(0)]
    for fd, deadline in kept.items():
        if deadline > now:
            break
        done.append(fd)
    for fd in done:
        if kept.pop(fd, None) is not None:
            _Lingering.poller.unregister(fd)
            try:
                _Lingering.close(fd)
            except OSError:
                pass


def _unpatched(module, name):
    """The standard library's own function where a green-thread framework patched it: the watching thread
    is an operating-system thread."""
    patcher = sys.modules.get("eventlet.patcher")
    if patcher is not None:
        return getattr(patcher.original(module), name)
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None:
        return monkey.get_original(module, name)
    return getattr(importlib.import_module(module), name)


def _start_watching():
    """Set up keeping, and the thread that closes kept descriptors while the program closes nothing more;
    False where closing as TCP does is off or cannot be."""
    try:
        _Lingering.poller = _unpatched("select", "poll")()
        _Lingering.POLLIN = _unpatched("select", "POLLIN")
        _Lingering.lock = _unpatched("_thread", "allocate_lock")()
        _Lingering.close, _Lingering.monotonic = _unpatched("os", "close"), _unpatched("time", "monotonic")
        _unpatched("_thread", "start_new_thread")(_watch_kept, (_unpatched("time", "sleep"),))
    except Exception:  # no poll (not Linux), no threads: close at once, as before
        _Lingering.enabled = False
        return False
    _Lingering.enabled = True
    return True


def _watch_kept(sleep):
    while True:
        sleep(_WATCH_SECONDS)
        try:
            if _Lingering.kept:
                with _Lingering.lock:
                    _close_kept(_Lingering.monotonic())
        except Exception:  # (an interpreter shutting down)
            pass


def _open_descriptors():
    try:
        return frozenset(int(name) for name in os.listdir("/proc/self/fd"))
    except (OSError, ValueError):
        return None


def _before_fork():
    _Lingering.at_fork = _open_descriptors() if _Lingering.enabled is not False else frozenset()


def _after_fork_in_parent():
    if _Lingering.at_fork is None:
        _Lingering.enabled = False  # (no /proc: which descriptors the child holds is unknown)
    else:
        _Lingering.shared |= _Lingering.at_fork


def _after_fork_in_child():
    """The parent's watching thread is not here (and its lock may be held): close this process's copies
    of what the parent keeps (the parent closes its own), and never shut down what the parent also holds."""
    for fd in list(_Lingering.kept):
        try:
            os.close(fd)
        except OSError:
            pass
    _Lingering.kept, _Lingering.poller, _Lingering.lock = {}, None, None
    _Lingering.enabled = None if _Lingering.at_fork is not None and _Lingering.enabled is not False else False
    _Lingering.shared = set(_Lingering.shared | (_Lingering.at_fork or frozenset()))


def _watch_forks():
    """Called when the serving copy installs the layer with VSOCK_TCP_CLOSE=1, before any vsock socket
    exists (once per copy)."""
    if hasattr(os, "register_at_fork") and not _Lingering.watching:
        _Lingering.watching = True
        os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                            after_in_child=_after_fork_in_child)


def _sock_dup(sock):
    """socket.socket.dup for vsock: the stdlib's, and both descriptors are marked shared (see above)."""
    if _hybrid_sockets.data and sock in _hybrid_sockets:
        return _hybrid_dup(sock)
    fd = os.dup(_CSocket.fileno(sock))
    made = sock.__class__(_family_of(sock), _type_of(sock), _proto_of(sock), fileno=fd)
    made.settimeout(_CSocket.gettimeout(sock))
    if _Lingering.enabled is not False:  # (installed by hybrid vsock too, where closing as TCP may be off)
        _Lingering.shared.update((fd, _CSocket.fileno(sock)))
    if _inet6_sockets.data and sock in _inet6_sockets:
        _mark_inet6(made)
    return made


_TCP_CLOSE_METHODS = {"_real_close": _sock_real_close, "dup": _sock_dup}  # installed with VSOCK_TCP_CLOSE=1 only
_STREAM_METHODS = {
    "bind": _sock_bind, "connect": _sock_connect, "connect_ex": _sock_connect_ex, "listen": _sock_listen,
    "_accept": _sock_accept, "shutdown": _sock_shutdown,
    "getsockname": _sock_getsockname, "getpeername": _sock_getpeername, "setsockopt": _sock_setsockopt,
    "getsockopt": _sock_getsockopt,
}
# accept() itself, on the standard library's class only: other classes of the C type (gevent's) have
# their own accept() around _accept().
_STDLIB_STREAM_METHODS = {"accept": _sock_accept_socket}
_DATAGRAM_METHODS = {"sendto": _sock_sendto, "recvfrom": _sock_recvfrom, "recvfrom_into": _sock_recvfrom_into}


# ===================================================================================================
# 5. Connect timeouts and flags
# ===================================================================================================

def set_connect_timeout(sock, seconds):
    """Set how long connect() waits for the peer (SO_VM_SOCKETS_CONNECT_TIMEOUT; 2 s by default).
    CPython cannot set it: the option takes a struct timeval, so it goes through libc."""
    if seconds is None or seconds < 0:
        raise ValueError("vsock connect timeout must be a number of seconds >= 0, not %r" % (seconds,))
    whole = int(seconds)
    micro = int(round((seconds - whole) * 1000000))
    if micro >= 1000000:
        whole, micro = whole + 1, micro - 1000000
    value = _structure("_timeval")(whole, micro)
    libc = _get_libc()
    if libc.setsockopt(sock.fileno(), VMCISock_GetAFValue(), SO_VM_SOCKETS_CONNECT_TIMEOUT,
                       ctypes.byref(value), ctypes.sizeof(value)) != 0:
        raise libc.error()


def get_connect_timeout(sock):
    """The socket's vsock connect timeout in seconds, as the kernel reports it."""
    value = _structure("_timeval")()
    libc = _get_libc()
    size = libc.length(ctypes.sizeof(value))
    if libc.getsockopt(sock.fileno(), VMCISock_GetAFValue(), SO_VM_SOCKETS_CONNECT_TIMEOUT,
                       ctypes.byref(value), ctypes.byref(size)) != 0:
        raise libc.error()
    return value.tv_sec + value.tv_usec / 1000000.0


def vsock_connect(sock, address, flags=0):
    """connect() with `svm_flags` (e.g. VMADDR_FLAG_TO_HOST: route to the host even from a nested
    guest, Linux 5.11+), which CPython cannot pass. `address` is (host-or-CID, port)."""
    cid, port = vsock_address(address)
    if isinstance(cid, _HybridPeer):
        return sock.connect((cid, port))  # the VMM routes: no svm_flags to give
    timeout = _apply_connect_timeout(sock)
    _bind_client_port(sock, _libc_bind)
    try:
        _libc_connect(sock, (cid, port), flags)
    except OSError as exc:
        if timeout:
            exc._vsock_timeout = timeout
        raise _explain_connect(exc, (cid, port)) from None


# ===================================================================================================
# 6. create_connection and create_server
# ===================================================================================================

def create_vsock_connection(address, timeout=_GLOBAL_DEFAULT_TIMEOUT, source_address=None, *, all_errors=False):
    """socket.create_connection() over vsock: connect a stream socket to (host-or-CID, port).

    `timeout` bounds the connect (it also becomes the vsock connect timeout) and stays on the socket;
    `source_address` (host, port) is bound first, port 0 meaning any. `all_errors` is accepted for
    compatibility: vsock has one address per host, so there is only ever one error."""
    destination = vsock_address(address)
    sock = vsock_socket(VMCISock_GetAFValue(), socket.SOCK_STREAM)
    try:
        if timeout is not _GLOBAL_DEFAULT_TIMEOUT:
            sock.settimeout(timeout)
        if source_address:
            sock.bind(vsock_address(source_address, bind=True))
        sock.connect(destination)
        return sock
    except BaseException:
        sock.close()
        raise


def create_vsock_server(address, *, family=None, backlog=None, reuse_port=False, dualstack_ipv6=False):
    """socket.create_server() over vsock: a listening stream socket on (host-or-CID, port).

    A wildcard host binds VMADDR_CID_ANY and port 0 means VMADDR_PORT_ANY. An IP `family` and
    `dualstack_ipv6` are accepted and ignored: vsock has one family. Any other family (AF_UNIX: a
    library's unix-socket branch that shares the call, as websockets' does) is served by
    socket.create_server() as before. `reuse_port` warns (RuntimeWarning): vsock has no SO_REUSEPORT, so
    a second server on the same port fails with EADDRINUSE instead of sharing connections."""
    if family is not None and family not in _IP_FAMILIES and family != VMCISock_GetAFValue():
        return socket.create_server(address, family=family, backlog=backlog, reuse_port=reuse_port,
                                    dualstack_ipv6=dualstack_ipv6)
    if reuse_port:
        warnings.warn("vsock has no SO_REUSEPORT: reuse_port=True is ignored, and a second server on the "
                      "same vsock port will fail with EADDRINUSE", RuntimeWarning, stacklevel=3)
    sock = vsock_socket(VMCISock_GetAFValue(), socket.SOCK_STREAM)
    try:
        sock.bind(vsock_address(address, bind=True))
        if backlog is None:
            sock.listen()
        else:
            sock.listen(backlog)
        return sock
    except BaseException:
        sock.close()
        raise


# ===================================================================================================
# 7. Standard-library servers and clients
# ===================================================================================================

_server_classes = {}


def vsock_server_class(cls):
    """A subclass of the socketserver-style server `cls` (TCPServer, HTTPServer, SimpleXMLRPCServer,
    WSGIServer, ...) that serves vsock: its `address_family` is the vsock one, so the socket it makes
    is a vsock socket, and ("", 8000)-style server addresses bind as section 4 says. An asyncore server
    (smtpd.SMTPServer, DebuggingServer, PureProxy) makes its socket vsock in create_socket(). Anything
    else is given back as it is, with a RuntimeWarning."""
    import socketserver

    made = _server_classes.get(cls)
    if made is not None:
        return made
    if _is_dispatcher(cls):
        return cls if getattr(cls, "_vsockport_server", False) else _dispatcher_server_class(cls)
    if not (isinstance(cls, type) and issubclass(cls, socketserver.BaseServer)):
        _warn_once(("server", cls), "vsock_server_class(%r): not a socketserver server; left as it is" % (cls,))
        return cls
    if getattr(cls, "_vsockport_server", False):
        return cls

    def server_bind(self):
        # Made with an IP family (a server that sets its own address_family from the host, werkzeug's), or
        # on a host without AF_VSOCK (its hybrid socket): a vsock socket instead. A family the program
        # chose on purpose (AF_UNIX: werkzeug's unix:// servers) stays its own.
        if not _is_vsock(self.socket) and (self.socket.family in _IP_FAMILIES or af == -1):
            made_before = self.socket
            self.socket = vsock_socket(VMCISock_GetAFValue(), made_before.type)
            made_before.close()
        cls.server_bind(self)

    af = VMCISock_GetAFValue()
    if cls.socket_type == getattr(socket, "SOCK_DGRAM", 2):
        _install_layer(_DATAGRAM_METHODS)  # a UDP server (VMware's VMCI datagrams)
    namespace = {"address_family": af if af != -1 else socket.AF_UNIX, "server_bind": server_bind,
                 "_vsockport_server": True, "__module__": cls.__module__}
    made = _server_classes[cls] = type("Vsock" + cls.__name__, (cls,), namespace)
    return made


def _is_dispatcher(cls):
    """Whether `cls` is an asyncore dispatcher (smtpd's servers; asyncore's copy in CPython's test.support)."""
    return isinstance(cls, type) and any(k.__name__ == "dispatcher" and k.__module__.endswith("asyncore")
                                         for k in cls.__mro__)


def _dispatcher_server_class(cls):
    """An asyncore server (smtpd.SMTPServer, DebuggingServer, PureProxy) that serves vsock: the socket its
    create_socket() is asked for with an IP family is a vsock one, and the server address it resolves
    itself in __init__ (smtpd: socket.getaddrinfo(*localaddr)) resolves as vsock_getaddrinfo() does."""
    def create_socket(self, family=socket.AF_INET, type=socket.SOCK_STREAM):
        if family in _IP_FAMILIES and VMCISock_GetAFValue() != -1:
            family = VMCISock_GetAFValue()
        cls.create_socket(self, family, type)

    namespace = {"create_socket": create_socket, "_vsockport_server": True, "__module__": cls.__module__}
    smtpd = sys.modules.get("smtpd")
    if smtpd is not None and issubclass(cls, smtpd.SMTPServer):
        namespace.update(_switched_methods(cls, smtpd, ("__init__",)))
    made = _server_classes[cls] = type("Vsock" + cls.__name__, (cls,), namespace)
    return made


def vsock_make_server(host, port, app, server_class=None, handler_class=None):
    """wsgiref.simple_server.make_server() over vsock."""
    from wsgiref import simple_server

    server_class = vsock_server_class(server_class or simple_server.WSGIServer)
    server = server_class((host, port), handler_class or simple_server.WSGIRequestHandler)
    server.set_app(app)
    return server


_client_classes = {}


def vsock_client_class(cls):
    """A subclass of a standard-library client class that connects over vsock instead of TCP/IP:
    http.client.HTTPConnection/HTTPSConnection, smtplib.SMTP/SMTP_SSL/LMTP, poplib.POP3/POP3_SSL,
    imaplib.IMAP4/IMAP4_SSL, nntplib.NNTP/NNTP_SSL, xmlrpc.client.ServerProxy and Transport/SafeTransport,
    ftplib.FTP/FTP_TLS (data connections to the control connection's peer; PORT carries the host as
    getsockname() reads it; abort() sends ABOR in band, as FTP_TLS does), telnetlib.Telnet, logging.handlers.SocketHandler and HTTPHandler (and
    their subclasses). Hosts map as vsock_address()
    says; TLS checks the host name as written.
    Any other class is given back as it is, with a RuntimeWarning."""
    made = _client_classes.get(cls)
    if made is not None:
        return made
    if not isinstance(cls, type):
        if not _is_mock(cls):  # a test's stand-in for the class makes no connection
            _warn_once(("client", cls), "vsock_client_class(%r): not a class; left as it is" % (cls,))
        return cls
    if getattr(cls, "_vsockport_client", False):
        return cls
    namespace = _client_namespace(cls)
    if namespace is None:
        _warn_once(("client", cls), "vsock_client_class(%r): vsock_client_class() does not know how it connects; "
                   "left as it is" % (cls,))
        return cls
    namespace.update(_vsockport_client=True, __module__=cls.__module__)
    made = _client_classes[cls] = type("Vsock" + cls.__name__, (cls,), namespace)
    return made


def vsock_getattr(module, name, *default):
    """getattr(module, name[, default]) for an attribute of a standard-library module fetched by a name
    known only at run time (`getattr(http.client, scheme.upper() + "Connection")`): a TCP/IP server class
    comes back as vsock_server_class() makes it, a client class as vsock_client_class() does, anything
    else as it is."""
    value = getattr(module, name, *default)
    if isinstance(value, type):
        import socketserver

        if issubclass(value, socketserver.BaseServer):
            if getattr(value, "address_family", None) in _IP_FAMILIES:
                return vsock_server_class(value)
        elif value in _client_classes or _client_namespace(value) is not None:
            return vsock_client_class(value)
    return value


def _client_namespace(cls):
    """The methods that make `cls` connect over vsock, or None for a class it does not know."""
    import http.client
    import smtplib
    import xmlrpc.client

    modules = sys.modules
    if issubclass(cls, http.client.HTTPConnection):
        def __init__(self, *args, **kwargs):
            cls.__init__(self, *args, **kwargs)
            if not _socket_replaced_in(http.client):
                self._create_connection = create_vsock_connection

        return {"__init__": __init__}
    if issubclass(cls, smtplib.SMTP):
        def _get_socket(self, host, port, timeout):
            if _socket_replaced_in(smtplib):
                return cls._get_socket(self, host, port, timeout)
            sock = create_vsock_connection((host, port), timeout, self.source_address)
            if isinstance(self, smtplib.SMTP_SSL):
                sock = self.context.wrap_socket(sock, server_hostname=self._host)
            return sock

        return {"_get_socket": _get_socket}
    if issubclass(cls, xmlrpc.client.ServerProxy):
        def __init__(self, uri, transport=None, *args, **kwargs):
            if transport is None:
                secure = str(uri).lower().startswith("https:")
                base = xmlrpc.client.SafeTransport if secure else xmlrpc.client.Transport
                options = {k: kwargs[k] for k in ("use_datetime", "use_builtin_types", "headers") if k in kwargs}
                if secure:
                    options["context"] = kwargs.get("context")
                transport = vsock_client_class(base)(**options)
            elif isinstance(transport, xmlrpc.client.Transport):
                transport.__class__ = vsock_client_class(type(transport))  # a caller's transport, same object
            cls.__init__(self, uri, transport, *args, **kwargs)

        return {"__init__": __init__}
    if issubclass(cls, xmlrpc.client.Transport):
        def make_connection(self, host):
            if self._connection and host == self._connection[0]:
                return self._connection[1]
            chost, self._extra_headers, x509 = self.get_host_info(host)
            if isinstance(self, xmlrpc.client.SafeTransport):
                conn = vsock_client_class(http.client.HTTPSConnection)(chost, None, context=self.context, **(x509 or {}))
            else:
                conn = vsock_client_class(http.client.HTTPConnection)(chost)
            self._connection = host, conn
            return conn

        return {"make_connection": make_connection}
    handlers = modules.get("logging.handlers")
    if handlers is not None and issubclass(cls, handlers.SocketHandler) and not issubclass(cls, handlers.DatagramHandler):
        if cls.makeSocket is not handlers.SocketHandler.makeSocket:
            return None  # a subclass that makes its own socket: how, only it knows

        def makeSocket(self, timeout=1):
            if self.port is None or _socket_replaced_in(handlers):  # port None: a Unix socket path
                return cls.makeSocket(self, timeout)
            return create_vsock_connection(self.address, timeout=timeout)

        return {"makeSocket": makeSocket}
    if handlers is not None and issubclass(cls, handlers.HTTPHandler):
        def getConnection(self, host, secure):
            connection = cls.getConnection(self, host, secure)
            if isinstance(connection, http.client.HTTPConnection) and not _socket_replaced_in(http.client):
                connection._create_connection = create_vsock_connection  # as vsock_client_class(HTTPConnection)
            return connection

        return {"getConnection": getConnection}
    ftplib = modules.get("ftplib")
    if ftplib is not None and issubclass(cls, ftplib.FTP):
        def connect(self, *args, **kwargs):
            welcome = switched_connect(self, *args, **kwargs)
            if _is_vsock(self.sock):
                # The commands of the family the program dialled, as over TCP: PASV and PORT for a name or
                # an IPv4 address, EPSV and EPRT for an IPv6 one. Either way the data connection goes to
                # the control connection's peer (ftplib's default: whatever address a PASV reply carries).
                self.af = _AF_INET6 if _ip_literal(self.host) == _AF_INET6 else socket.AF_INET
            return welcome

        def abort(self):
            if cls.abort is not ftplib.FTP.abort or not _is_vsock(self.sock):
                return cls.abort(self)
            # In band, as FTP_TLS sends it: vsock has no urgent data (MSG_OOB is EOPNOTSUPP).
            self.sock.sendall(b"ABOR" + ftplib.B_CRLF)
            resp = self.getmultiline()
            if resp[:3] not in {"426", "225", "226"}:
                raise ftplib.error_proto(resp)
            return resp

        namespace = _switched_methods(cls, ftplib, ("makeport", "ntransfercmd"))
        switched_connect = _switched_methods(cls, ftplib, ("connect",))["connect"]
        namespace.update(connect=connect, abort=abort)
        return namespace
    telnetlib = modules.get("telnetlib")
    if telnetlib is not None and issubclass(cls, telnetlib.Telnet):
        return _switched_methods(cls, telnetlib, ("open",))
    for module_name, base_name, attribute in (("poplib", "POP3", "context"), ("imaplib", "IMAP4", "ssl_context"),
                                              ("nntplib", "NNTP", "ssl_context")):
        module = modules.get(module_name)
        base = getattr(module, base_name, None) if module is not None else None
        if base is not None and issubclass(cls, base):
            return {"_create_socket": _tls_socket_factory(cls, module, base_name, attribute)}
    return None


def _switched_methods(cls, module, names):
    """Methods of a standard-library class that open their sockets deep inside its own code, under any
    subclass's override (ftplib.FTP_TLS.ntransfercmd wraps FTP's in TLS): each runs as `cls` has it, with
    the socket module that `module` (the standard-library module, never the program's) sees switched to
    the vsock functions for this thread until it returns (_SwitchedSocketModule). A module whose socket
    something else replaced (a test's mock) keeps it: the methods then run as they are."""
    switch = module.__dict__.get("socket")
    if switch is socket:
        switch = module.socket = _SwitchedSocketModule(socket.__name__, socket.__doc__)
    calls = getattr(switch, "_vsock_calls", None)  # any runtime copy's switch: one per module, its state shared
    methods = {}
    for name in names:
        original = getattr(cls, name)

        def method(self, *args, _original=original, **kwargs):
            if calls is None:
                return _original(self, *args, **kwargs)
            context = _context()
            calls[context] = calls.get(context, 0) + 1
            try:
                return _original(self, *args, **kwargs)
            finally:
                calls[context] -= 1
                if not calls[context]:
                    del calls[context]

        method.__name__, method.__qualname__, method.__doc__ = name, cls.__qualname__ + "." + name, original.__doc__
        methods[name] = method
    return methods


def _socket_replaced_in(module):
    """Whether something replaced the socket module a standard-library client module connects through
    (`smtplib.socket = mock_socket`, CPython's own tests): its client then connects through that, as it
    would unported, since whoever replaced it wants its calls."""
    value = module.__dict__.get("socket", socket)
    return value is not socket and not isinstance(value, _SocketModule)


def _tls_socket_factory(cls, module, base_name, context_attribute):
    """`_create_socket(self, timeout)` of poplib, imaplib and nntplib clients, over vsock, wrapped in TLS
    (checking the host name as written) for their _SSL classes."""
    def _create_socket(self, timeout=_GLOBAL_DEFAULT_TIMEOUT):
        if _socket_replaced_in(module):
            return cls._create_socket(self, timeout)
        if timeout is not None and not timeout and timeout is not _GLOBAL_DEFAULT_TIMEOUT:
            raise ValueError("Non-blocking socket (timeout=0) is not supported")
        sock = create_vsock_connection((self.host, self.port), timeout)
        if type(self).__name__.endswith("_SSL") or any(k.__name__ == base_name + "_SSL" for k in type(self).__mro__):
            context = getattr(self, context_attribute, None) or getattr(self, "context", None)
            if context is None:
                import ssl

                context = ssl.create_default_context()
            sock = context.wrap_socket(sock, server_hostname=self.host)
        return sock

    return _create_socket


def vsock_urlopen(url, data=None, timeout=_GLOBAL_DEFAULT_TIMEOUT, *, context=None):
    """urllib.request.urlopen() for http:// and https:// URLs over vsock (hosts mapped as
    vsock_address() says; TLS checks the host name as written)."""
    import http.client
    import urllib.request

    class VsockHTTPHandler(urllib.request.HTTPHandler):
        def http_open(self, req):
            return self.do_open(vsock_client_class(http.client.HTTPConnection), req)

    class VsockHTTPSHandler(urllib.request.HTTPSHandler):
        def https_open(self, req):
            return self.do_open(vsock_client_class(http.client.HTTPSConnection), req, context=context)

    return urllib.request.build_opener(VsockHTTPHandler, VsockHTTPSHandler).open(url, data, timeout)


# ===================================================================================================
# 8. asyncio: the same calls, on vsock sockets made here (asyncio accepts sock=)
# ===================================================================================================

def _server_socket(host, port, backlog=100):
    if isinstance(host, (list, tuple)):
        host = host[0] if host else None
    address = ("" if host is None else host, port or 0)
    try:
        sock = create_vsock_server(address, backlog=backlog)
    except OSError as exc:
        if isinstance(exc, socket.gaierror) or exc.errno is None:
            raise
        # Worded as asyncio's create_server words it: programs (and their tests) match on it.
        raise OSError(exc.errno, "error while attempting to bind on address %r: %s"
                      % (address, (exc.strerror or "").lower())) from None
    sock.setblocking(False)
    return sock


async def _client_socket(loop, host, port, local_addr=None):
    address = vsock_address((host, port))
    if _is_hybrid(address):
        return await _hybrid_dial_async(loop, address[0], address[1])
    sock = vsock_socket(VMCISock_GetAFValue(), socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        if local_addr:
            sock.bind(vsock_address(tuple(local_addr), bind=True))
        await loop.sock_connect(sock, address)
        return sock
    except BaseException:
        sock.close()
        raise


_IP_ONLY_CONNECT = ("family", "proto", "flags", "happy_eyeballs_delay", "interleave", "all_errors")
_IP_ONLY_SERVE = ("family", "flags", "reuse_address", "reuse_port", "all_errors")


def _has_own_endpoint(kwargs):
    """The caller brings its own socket (or a Unix path): nothing for vsock to do (a `sock=` that
    arrived inside **kwargs is as good as one written out; a `sock=None` is no socket)."""
    return kwargs.get("sock") is not None or kwargs.get("path") is not None


def _without(kwargs, names):
    return {k: v for k, v in kwargs.items() if k not in names and not (k == "sock" and v is None)}


def _tls_name(kwargs, host):
    if kwargs.get("ssl") and kwargs.get("server_hostname") is None:
        kwargs["server_hostname"] = str(host)  # the name as written: the certificate is for it, not the CID
    return kwargs


async def vsock_open_connection(host=None, port=None, *, local_addr=None, **kwargs):
    """asyncio.open_connection() over vsock (a `sock=` or `path=` goes to asyncio as it is)."""
    import asyncio

    if _has_own_endpoint(kwargs):
        return await asyncio.open_connection(host, port, local_addr=local_addr, **kwargs)
    sock = await _client_socket(asyncio.get_running_loop(), host, port, local_addr)
    return await asyncio.open_connection(sock=sock, **_tls_name(_without(kwargs, _IP_ONLY_CONNECT), host))


async def vsock_start_server(client_connected_cb, host=None, port=None, *, backlog=100, **kwargs):
    """asyncio.start_server() over vsock (a `sock=` or `path=` goes to asyncio as it is)."""
    import asyncio

    if _has_own_endpoint(kwargs):
        return await asyncio.start_server(client_connected_cb, host, port, backlog=backlog, **kwargs)
    return await asyncio.start_server(client_connected_cb, sock=_server_socket(host, port, backlog),
                                      **_without(kwargs, _IP_ONLY_SERVE))


async def vsock_loop_create_connection(loop, protocol_factory, host=None, port=None, *, local_addr=None, **kwargs):
    """loop.create_connection() over vsock (a `sock=` or `path=` goes to the loop as it is, and so does
    every call where a test replaced the loop's method with a mock)."""
    if _has_own_endpoint(kwargs) or _is_mock(loop.create_connection):
        return await loop.create_connection(protocol_factory, host, port, local_addr=local_addr, **kwargs)
    sock = await _client_socket(loop, host, port, local_addr)
    return await loop.create_connection(protocol_factory, sock=sock, **_tls_name(_without(kwargs, _IP_ONLY_CONNECT), host))


async def vsock_loop_create_server(loop, protocol_factory, host=None, port=None, *, backlog=100, **kwargs):
    """loop.create_server() over vsock (a `sock=` or `path=` goes to the loop as it is, and so does
    every call where a test replaced the loop's method with a mock)."""
    if _has_own_endpoint(kwargs) or _is_mock(loop.create_server):
        return await loop.create_server(protocol_factory, host, port, backlog=backlog, **kwargs)
    return await loop.create_server(protocol_factory, sock=_server_socket(host, port, backlog),
                                    **_without(kwargs, _IP_ONLY_SERVE))


async def vsock_loop_getaddrinfo(loop, host, port, *, family=0, type=0, proto=0, flags=0):
    """loop.getaddrinfo() over vsock: vsock_getaddrinfo, which needs no resolver thread (a test's mock of
    the loop's method is asked instead, and so is the loop for IP datagram sockets, which stay on IP)."""
    if _is_mock(loop.getaddrinfo) or _ip_datagram(family, type):
        return await loop.getaddrinfo(host, port, family=family, type=type, proto=proto, flags=flags)
    return vsock_getaddrinfo(host, port, family, type, proto, flags)


class _VsockLoop:
    """An event loop whose create_connection, create_server and getaddrinfo are the vsock versions;
    everything else is the loop's own. For code that keeps the methods (`partial(loop.create_server)`)."""

    def __init__(self, loop):
        self._loop = loop

    def __getattr__(self, name):
        return getattr(self._loop, name)

    def create_connection(self, *args, **kwargs):
        return vsock_loop_create_connection(self._loop, *args, **kwargs)

    def create_server(self, *args, **kwargs):
        return vsock_loop_create_server(self._loop, *args, **kwargs)

    def getaddrinfo(self, *args, **kwargs):
        return vsock_loop_getaddrinfo(self._loop, *args, **kwargs)


def vsock_loop(loop):
    """`loop` with vsock create_connection(), create_server() and getaddrinfo() (see _VsockLoop)."""
    return loop if isinstance(loop, _VsockLoop) else _VsockLoop(loop)


class _AsyncioAsUvloop(types.ModuleType):
    """uvloop's API on asyncio's own event loop. libuv cannot carry vsock: it sets TCP_NODELAY in C on
    every connection it accepts (an error on vsock) and has no address type for a CID. So
    `EventLoopPolicy`, `Loop`, `new_event_loop()`, `install()` and `run()` are asyncio's (the same
    calls, a slower loop; run() ignores a loop_factory); any other name is uvloop's own."""

    def __getattr__(self, name):
        import asyncio

        ours = {"EventLoopPolicy": asyncio.DefaultEventLoopPolicy, "Loop": asyncio.SelectorEventLoop,
                "new_event_loop": asyncio.new_event_loop,
                "install": lambda: asyncio.set_event_loop_policy(asyncio.DefaultEventLoopPolicy()),
                "run": lambda main, *, loop_factory=None, **kwargs: asyncio.run(main, **kwargs)}
        return ours[name] if name in ours else getattr(importlib.import_module("uvloop"), name)


# ===================================================================================================
# 9. The socket module as a value
# ===================================================================================================

class _SocketModule(types.ModuleType):
    """A stand-in for the socket module, for code that takes the module as a value
    (`socket_module=socket`): socket(), fromfd(), create_connection(), create_server(), getaddrinfo(),
    gethostbyname(), gethostbyname_ex(), getnameinfo(), inet_pton() and inet_ntop() are the vsock
    versions (socket() makes AF_INET and AF_INET6 sockets vsock); every other name is the socket
    module's own."""

    def __getattr__(self, name):
        return getattr(socket, name)

    def __dir__(self):
        return sorted(set(dir(socket)) | set(self.__dict__))


class _SwitchedSocketModule(_SocketModule):
    """The socket module as a standard-library module sees it once one of its classes was adapted by
    _switched_methods() (ftplib, telnetlib, smtpd): the socket module itself, except on a thread running
    an adapted method, where its socket factories and resolvers are vsock_socket_module's. Unported code
    that uses the same module gets the socket module's own functions."""

    def __init__(self, name, doc=None):
        super().__init__(name, doc)
        self._vsock_calls = {}  # context (thread or greenlet, _context()) -> adapted methods running in it

    def __getattr__(self, name):
        if name in _SWITCHED_NAMES and self._vsock_calls and _context() in self._vsock_calls:
            return getattr(vsock_socket_module, name)
        return getattr(socket, name)


_SWITCHED_NAMES = frozenset(["create_connection", "create_server", "getaddrinfo", "gethostbyname",
                             "gethostbyname_ex"])


# ===================================================================================================
# 10. Hybrid vsock: the host side of Firecracker and Cloud Hypervisor, over the VMM's Unix sockets
# ===================================================================================================
# Firecracker and Cloud Hypervisor give the host no AF_VSOCK: the VMM exposes the guest's vsock as Unix
# sockets (their docs/vsock.md). A host connects to the VMM's uds_path, sends "CONNECT <port>\n" and
# reads "OK <host_side_port>\n"; after that the stream is the guest's vsock port. A guest connecting to
# the host's port P reaches whatever listens on "<uds_path>_<P>", with no preamble. A vsock socket whose
# peer is unix:PATH (from VSOCK_CID_MAP, or written so in the source) does exactly that: the socket's
# file descriptor is swapped for the Unix one (dup2), so the program's socket object stays the same.

HYBRID_PREFIX = "unix:"
HYBRID_TIMEOUT_ENV = "VSOCK_HYBRID_TIMEOUT"
_DEFAULT_HYBRID_TIMEOUT = 5.0  # seconds for the VMM's reply when the socket itself has no timeout
_MAX_REPLY = 64  # "OK 4294967295\n" is 14 bytes: anything much longer is not the VMM speaking


class _HybridPeer(str):
    """A peer reached through a VMM's hybrid-vsock Unix socket: the host as the program spelled it,
    `.path` the VMM's uds_path, `.guest` the name accepted connections report (the map's key, or
    "unix:PATH"). Internal: programs see plain strings."""

    def __new__(cls, host, path, guest=None):
        self = str.__new__(cls, host)
        self.path = path
        self.guest = guest or HYBRID_PREFIX + path
        return self


def _hybrid_path(value):
    if isinstance(value, str) and value[:5].lower() == HYBRID_PREFIX and len(value) > 5:
        return value[5:]
    return None


def _hybrid_literal(host):
    """A host written as "unix:PATH" (or a peer already resolved), else None."""
    if isinstance(host, _HybridPeer):
        return host
    if isinstance(host, bytes):
        host = host.decode("utf-8", "replace")
    if isinstance(host, str) and host[:5].lower() == HYBRID_PREFIX:
        path = _hybrid_path(host.strip())
        if path is not None:
            return _HybridPeer(host, path)
    return None


def _hybrid_only():
    """Whether this process reaches its peers through hybrid-vsock sockets only ("*=unix:PATH"): then a
    host without AF_VSOCK (Firecracker's, Cloud Hypervisor's) still makes sockets, on AF_UNIX."""
    return _hybrid_path(_cid_map().entries.get("*")) is not None


def _is_hybrid(address):
    return type(address) is tuple and len(address) >= 2 and type(address[0]) is _HybridPeer


class _Hybrid:
    """What a hybrid socket says of itself: its name, its peer (None: unconnected), the socket file it
    listens on (path, (dev, ino)) and the address accepted connections report."""

    __slots__ = ("sockname", "peername", "listening", "accepted")

    def __init__(self, sockname=None, peername=None, listening=None, accepted=None):
        self.sockname, self.peername, self.listening, self.accepted = sockname, peername, listening, accepted


_hybrid_sockets = __import__("weakref").WeakKeyDictionary()  # socket -> _Hybrid, for hybrid ones only


def _hybrid_pending(sock):
    """A socket made on AF_UNIX for a hybrid peer it has not reached yet: vsock methods from now on."""
    _install_layer(_HYBRID_METHODS)
    _hybrid_sockets[sock] = _Hybrid(("0.0.0.0", 0))


def _hybrid_timeout():
    text = os.environ.get(HYBRID_TIMEOUT_ENV, "")
    try:
        value = float(text) if text.strip() else _DEFAULT_HYBRID_TIMEOUT
    except ValueError:
        _warn_once("hybrid-timeout", "%s=%r is not a number of seconds; using %g" % (HYBRID_TIMEOUT_ENV, text,
                                                                                   _DEFAULT_HYBRID_TIMEOUT))
        return _DEFAULT_HYBRID_TIMEOUT
    return value if value > 0 else _DEFAULT_HYBRID_TIMEOUT


def _hybrid_error(kind, peer, port, problem):
    return kind(errno.ETIMEDOUT if kind is TimeoutError else errno.ECONNREFUSED,
                "vsock (hybrid): %s port %s: %s" % (peer.path, port, problem))


def _vmm_unreachable(peer, port, exc):
    return _hybrid_error(ConnectionRefusedError, peer, port, "cannot reach the VMM's socket (%s): is the VM "
                         "running, and is this its vsock uds_path?" % os.strerror(exc.errno or 0))


def _vmm_closed(peer, port):
    return _hybrid_error(ConnectionRefusedError, peer, port, "the VMM closed the connection without an OK: "
                         "nothing listens on that port in the guest")


def _hybrid_reply(reply, peer, port):
    """The host-side port from the VMM's "OK <port>\\n"; ConnectionRefusedError for anything else."""
    words = reply.split()
    if len(words) == 2 and words[0] == b"OK" and words[1].isdigit() and reply.endswith(b"\n"):
        return int(words[1])
    raise _hybrid_error(ConnectionRefusedError, peer, port, "the VMM answered %r instead of 'OK <port>'" % reply)


def _hybrid_dial(peer, port, timeout):
    """A Unix socket connected to the guest's vsock `port` through the VMM at peer.path, blocking with
    `timeout` (seconds, for the connect and the reply together). The reply is read a byte at a time:
    whatever the guest sends right after it belongs to the program."""
    deadline = time.monotonic() + timeout
    unix = _StdSocket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        unix.settimeout(timeout)
        try:
            unix.connect(peer.path)
        except socket.timeout:
            raise _hybrid_error(TimeoutError, peer, port, "the VMM's socket did not accept within %g s" % timeout) from None
        except OSError as exc:
            raise _vmm_unreachable(peer, port, exc) from None
        unix.sendall(b"CONNECT %d\n" % port)
        reply = b""
        while not reply.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise socket.timeout()
                unix.settimeout(remaining)
                byte = unix.recv(1)
            except socket.timeout:
                raise _hybrid_error(TimeoutError, peer, port, "no reply from the VMM within %g s (set the "
                                    "socket's timeout, or %s)" % (timeout, HYBRID_TIMEOUT_ENV)) from None
            except OSError as exc:
                raise _hybrid_error(ConnectionRefusedError, peer, port, "the VMM dropped the connection (%s)"
                                    % os.strerror(exc.errno or 0)) from None
            if not byte:
                raise _vmm_closed(peer, port)
            reply += byte
            if len(reply) > _MAX_REPLY:
                break
        return unix, _hybrid_reply(reply, peer, port)
    except BaseException:
        unix.close()
        raise


def _adopt(sock, unix):
    """Give `sock` the Unix socket's connection under its own file descriptor, keeping its timeout."""
    timeout = sock.gettimeout()
    try:
        os.dup2(unix.fileno(), sock.fileno(), inheritable=False)
    finally:
        unix.close()
    sock.settimeout(timeout)  # sets O_NONBLOCK again, on the new file description


def _hybrid_connect(sock, address, report_errno):
    peer, port = address[0], _vsock_port(address[1], False)
    timeout = sock.gettimeout()
    try:
        # A non-blocking socket's handshake blocks, for a local round trip to the VMM (asyncio's
        # adapters do it without blocking the loop).
        unix, host_port = _hybrid_dial(peer, port, timeout if timeout else _hybrid_timeout())
    except OSError as exc:
        if report_errno:
            return exc.errno
        raise
    _adopt(sock, unix)
    _install_layer(_HYBRID_METHODS)
    _hybrid_sockets[sock] = _Hybrid((_host_out(VMADDR_CID_HOST), host_port), (str(peer), port))
    return 0 if report_errno else None


def _listening_path(peer, port):
    if port == VMADDR_PORT_ANY:
        raise OSError(errno.EINVAL, "vsock (hybrid): a server for guests needs a fixed port: a guest reaches it "
                                    "as %s_PORT, by number (port 0 / VMADDR_PORT_ANY has no such file)" % peer.path)
    return "%s_%d" % (peer.path, port)


def _clear_stale_socket_file(path):
    """Remove `path` when it is the socket file of a listener that is gone. A live listener, or a
    file that is not a socket, is left alone: EADDRINUSE."""
    import stat

    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise OSError(errno.EADDRINUSE, "vsock (hybrid): %s exists and is not a socket; left alone" % path)
    probe = _StdSocket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(1.0)
        probe.connect(path)
    except ConnectionRefusedError:
        os.unlink(path)  # nobody listens: a dead listener's file
        return
    except OSError:
        pass
    finally:
        probe.close()
    raise OSError(errno.EADDRINUSE, "vsock (hybrid): another listener serves %s" % path)


def _remove_own_socket_file(path, identity):
    try:
        st = os.lstat(path)
        if (st.st_dev, st.st_ino) == identity:
            os.unlink(path)
    except OSError:
        pass


def _hybrid_bind(sock, address):
    peer, port = address[0], _vsock_port(address[1], True)
    path = _listening_path(peer, port)
    _clear_stale_socket_file(path)
    unix = _StdSocket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        unix.bind(path)
    except BaseException:
        unix.close()
        raise
    st = os.lstat(path)
    _adopt(sock, unix)
    _install_layer(_HYBRID_METHODS)
    _hybrid_sockets[sock] = _Hybrid((str(peer), port), None, (path, (st.st_dev, st.st_ino)), (peer.guest, 0))


def _hybrid_accept(sock):
    """socket.socket.accept for hybrid listeners (the accepted socket is hybrid too) and for vsock ones
    on the ctypes backend."""
    listener = _hybrid_sockets.get(sock)
    fd, address = _sock_accept(sock)
    made = _StdSocket(sock.family, sock.type, sock.proto, fileno=fd)
    if socket.getdefaulttimeout() is None and sock.gettimeout():
        made.setblocking(True)
    if listener is not None:
        _hybrid_sockets[made] = _Hybrid(listener.sockname, address)
    elif _inet6_sockets.data and sock in _inet6_sockets:
        _mark_inet6(made)
    return made, address


def _hybrid_dup(sock):
    made = _StdSocket(sock.family, sock.type, sock.proto, fileno=os.dup(sock.fileno()))
    made.settimeout(sock.gettimeout())
    state = _hybrid_sockets.get(sock)
    if state is not None:  # the original removes the socket file
        _hybrid_sockets[made] = _Hybrid(state.sockname, state.peername, None, state.accepted)
    return made


def _hybrid_real_close(sock, _ss=_CSocket):
    state = _hybrid_sockets.pop(sock, None)
    _ss.close(sock)
    if state is not None and state.listening is not None:
        _remove_own_socket_file(*state.listening)


_HYBRID_METHODS = {"accept": _hybrid_accept, "dup": _sock_dup, "_real_close": _sock_real_close}  # (both pick hybrid first)


async def _hybrid_dial_async(loop, peer, port):
    """_hybrid_dial() for asyncio: the same handshake, awaited."""
    import asyncio

    unix = _StdSocket(socket.AF_UNIX, socket.SOCK_STREAM)
    unix.setblocking(False)
    timeout = _hybrid_timeout()

    async def handshake():
        try:
            await loop.sock_connect(unix, peer.path)
        except OSError as exc:
            raise _vmm_unreachable(peer, port, exc) from None
        await loop.sock_sendall(unix, b"CONNECT %d\n" % port)
        reply = b""
        while not reply.endswith(b"\n") and len(reply) <= _MAX_REPLY:
            byte = await loop.sock_recv(unix, 1)
            if not byte:
                raise _vmm_closed(peer, port)
            reply += byte
        return _hybrid_reply(reply, peer, port)

    try:
        try:
            host_port = await asyncio.wait_for(handshake(), timeout)
        except asyncio.TimeoutError:
            raise _hybrid_error(TimeoutError, peer, port, "no reply from the VMM within %g s (set %s)"
                                % (timeout, HYBRID_TIMEOUT_ENV)) from None
    except BaseException:
        unix.close()
        raise
    _install_layer(_HYBRID_METHODS)
    _hybrid_sockets[unix] = _Hybrid((_host_out(VMADDR_CID_HOST), host_port), (str(peer), port))
    return unix


# ===================================================================================================
# 11. Errors that explain themselves
# ===================================================================================================

_TYPE_NAMES = {getattr(socket, n): n for n in ("SOCK_STREAM", "SOCK_DGRAM", "SOCK_SEQPACKET", "SOCK_RAW") if hasattr(socket, n)}


def _is_vsock(sock):
    """Whether `sock` (a socket, asyncio's TransportSocket, an SSLSocket, a wrapper) is a vsock socket."""
    if _hybrid_sockets.data and sock in _hybrid_sockets:
        return True
    family = getattr(sock, "family", None)
    try:
        return family is not None and int(family) == VMCISock_GetAFValue() != -1
    except (TypeError, ValueError):
        return False


def _explained(exc, message):
    """Same class, same errno, and a message that starts as the system's ("Connection refused": programs
    and their tests match on it) and goes on with what happened on vsock."""
    name = errno.errorcode.get(exc.errno, str(exc.errno))
    return type(exc)(exc.errno, "%s (vsock: %s) [%s]" % (os.strerror(exc.errno), message, name))


def _explain_create(exc, family, kind, proto=0):
    kind_name = _TYPE_NAMES.get(kind & 0xF, str(kind))
    if exc.errno == errno.EAFNOSUPPORT or family == -1:
        return _explained(exc, _no_vsock_hint())
    if kind & 0xF == getattr(socket, "SOCK_DGRAM", 2) and exc.errno in (errno.ENODEV, errno.ESOCKTNOSUPPORT,
                                                                         errno.EPROTONOSUPPORT, errno.EOPNOTSUPP):
        return _explained(exc, "datagrams (SOCK_DGRAM) exist only on VMware's VMCI transport; "
                               "virtio (KVM, Firecracker, Nitro), Hyper-V and loopback transports carry "
                               "SOCK_STREAM only (and SOCK_SEQPACKET on Linux 5.14+)")
    if exc.errno == errno.EPROTONOSUPPORT and proto:
        return _explained(exc, "vsock sockets take protocol 0, not %d (IP protocol numbers such as "
                               "IPPROTO_TCP have no meaning on vsock)" % proto)
    if exc.errno in (errno.ENODEV, errno.ESOCKTNOSUPPORT):
        return _explained(exc, "no vsock transport on this machine supports %s sockets" % kind_name)
    return exc


def _explain_bind(exc, address):
    cid, port = address if isinstance(address, tuple) and len(address) == 2 else (None, None)
    if exc.errno == errno.EADDRNOTAVAIL:
        local = VMCISock_GetLocalCID()
        local_text = "this machine's CID (%d), " % local if local != VMADDR_CID_ANY else ""
        return _explained(exc, "CID %s cannot be bound here; bindable CIDs are VMADDR_CID_ANY, %s"
                               "VMADDR_CID_LOCAL (1, only with the vsock_loopback transport) and "
                               "VMADDR_CID_HOST (2, on a host)" % (cid, local_text))
    if exc.errno in (errno.EACCES, errno.EPERM) and isinstance(port, int) and port <= _LAST_PRIVILEGED_PORT:
        return _explained(exc, "ports 0-1023 are privileged: port %d needs CAP_NET_BIND_SERVICE (or "
                               "root); choose a port above 1023, or VMADDR_PORT_ANY for an ephemeral one "
                               "(port 0 is a real port on vsock, not 'any')" % port)
    if exc.errno == errno.EADDRINUSE:
        return _explained(exc, "port %s is already bound on this machine (vsock has no SO_REUSEPORT; "
                               "another process or socket holds it)" % port)
    if exc.errno == errno.EINVAL:
        return _explained(exc, "this socket is already bound (or the address is not a vsock one)")
    return exc


def _explain_connect(exc, address):
    cid, port = address if isinstance(address, tuple) and len(address) == 2 else (None, None)
    if exc.errno in (errno.ECONNRESET, errno.ECONNREFUSED):
        return _explained(ConnectionRefusedError(errno.ECONNREFUSED, ""), "nothing is listening on CID %s port %s; "
                          "virtio transports answer with a reset, reported as the refusal it is: start the server "
                          "first or check the CID and port" % (cid, port))
    if exc.errno == errno.ETIMEDOUT or isinstance(exc, socket.timeout):
        if exc.errno is None:
            return exc
        return _explained(exc, "CID %s port %s did not answer within the vsock connect timeout (%.3g s; "
                               "the kernel default is 2 s): check that CID %s is running, or raise it with "
                               "settimeout() or set_connect_timeout()" % (cid, port, _default_timeout_for(exc), cid))
    if exc.errno in (errno.ENODEV, errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL):
        return _explained(exc, "no vsock transport reaches CID %s: a guest reaches its host (CID 2), itself "
                               "through CID 1 with vsock_loopback, and other guests only where the "
                               "hypervisor allows it" % cid)
    if exc.errno in (errno.EINVAL,) and cid == VMADDR_CID_ANY:
        return _explained(exc, "VMADDR_CID_ANY is for bind(), not connect(): give the peer's CID")
    return exc


def _default_timeout_for(exc):
    return getattr(exc, "_vsock_timeout", _DEFAULT_CONNECT_TIMEOUT)


def _option_name(level, option):
    prefixes = {getattr(socket, "SOL_SOCKET", -1): ("SO_",)}.get(level, ())
    for name in sorted(dir(socket)):
        if name.startswith(prefixes) and getattr(socket, name) == option:
            return name
    return "option %d at level %d" % (option, level)


def _explain_option(exc, level, option):
    if exc.errno in (errno.ENOPROTOOPT, errno.EOPNOTSUPP, getattr(errno, "ENOTSUP", errno.EOPNOTSUPP)):
        return _explained(exc, "%s does not exist on vsock sockets" % _option_name(level, option))
    return exc


# ===================================================================================================
# 12. libc, for the calls CPython cannot make: the ctypes backend, timevals, sockaddr_vm
# ===================================================================================================

BACKEND_ENV = "VSOCK_RUNTIME_BACKEND"  # auto (default), native or ctypes
_backend = None


class _LazyModule:
    """A module imported when first used: ctypes costs more at start-up than most ported programs
    ever need from it (the ctypes backend, timevals, sockaddr_vm)."""

    def __init__(self, name):
        self._name = name

    def __getattr__(self, attribute):
        module = importlib.import_module(self._name)
        globals()[self._name] = module  # from now on, the module itself
        return getattr(module, attribute)


ctypes = _LazyModule("ctypes")
_structures = {}


def _structure(name):
    """`sockaddr_vm` or `_timeval`, defined on first use (see _LazyModule)."""
    found = _structures.get(name)
    if found is not None:
        return found
    if _PLATFORM == "bsd":
        class sockaddr_vm(ctypes.Structure):
            """VMware's macOS/FreeBSD `struct sockaddr_vm`: BSD layout with a leading length byte."""

            _fields_ = [("svm_len", ctypes.c_ubyte), ("svm_family", ctypes.c_ubyte), ("svm_reserved1", ctypes.c_ushort),
                        ("svm_port", ctypes.c_uint), ("svm_cid", ctypes.c_uint), ("svm_zero", ctypes.c_ubyte * 4)]
    else:
        class sockaddr_vm(ctypes.Structure):
            """Linux (and VMware Windows) `struct sockaddr_vm`, 16 bytes. Port and CID are in host byte
            order: no htons/htonl. `svm_flags` (Linux 5.11+) accepts only VMADDR_FLAG_TO_HOST."""

            _fields_ = [("svm_family", ctypes.c_ushort), ("svm_reserved1", ctypes.c_ushort), ("svm_port", ctypes.c_uint),
                        ("svm_cid", ctypes.c_uint), ("svm_flags", ctypes.c_ubyte), ("svm_zero", ctypes.c_ubyte * 3)]

    class _timeval(ctypes.Structure):
        _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]

    sockaddr_vm.__module__ = __name__
    _structures.update(sockaddr_vm=sockaddr_vm, _timeval=_timeval)
    return _structures[name]


def __getattr__(name):
    """`sockaddr_vm`, the ctypes `struct sockaddr_vm`, made when a program first asks for it (PEP 562)."""
    if name == "sockaddr_vm":
        return _structure(name)
    raise AttributeError("module %r has no attribute %r" % (__name__, name))


def _backend_name():
    """'native' or 'ctypes', chosen on first use from VSOCK_RUNTIME_BACKEND and what CPython offers."""
    global _backend
    if _backend is not None:
        return _backend
    wanted = os.environ.get(BACKEND_ENV, "auto").strip().lower() or "auto"
    if wanted not in ("auto", "native", "ctypes"):
        _warn_once("backend", "%s must be auto, native or ctypes, not %r: using auto" % (BACKEND_ENV, wanted))
        wanted = "auto"
    native_ok = getattr(socket, "AF_VSOCK", None) is not None and VMCISock_GetAFValue() in (-1, socket.AF_VSOCK)
    if wanted == "native" and not native_ok:
        _warn_once("backend-native", "%s=native, but this Python has no AF_VSOCK support for family %d: using ctypes"
                   % (BACKEND_ENV, VMCISock_GetAFValue()))
    _backend = "native" if native_ok and wanted != "ctypes" else "ctypes"
    return _backend


class _Libc:
    """bind/connect/accept/get*name/get|setsockopt through the C library, with sockaddr_vm."""

    def __init__(self):
        if _PLATFORM == "windows":
            lib = ctypes.WinDLL("ws2_32", use_last_error=True)
            handle = ctypes.c_size_t  # SOCKET is UINT_PTR
            self._last_error = ctypes.get_last_error
        else:
            lib = ctypes.CDLL(None, use_errno=True)
            handle = ctypes.c_int
            self._last_error = ctypes.get_errno
        length = ctypes.c_int if _PLATFORM == "windows" else ctypes.c_uint
        self.bind = self._function(lib.bind, [handle, ctypes.c_void_p, length])
        self.connect = self._function(lib.connect, [handle, ctypes.c_void_p, length])
        self.accept = self._function(lib.accept, [handle, ctypes.c_void_p, ctypes.POINTER(length)], handle)
        self.getsockname = self._function(lib.getsockname, [handle, ctypes.c_void_p, ctypes.POINTER(length)])
        self.getpeername = self._function(lib.getpeername, [handle, ctypes.c_void_p, ctypes.POINTER(length)])
        opt_args = [handle, ctypes.c_int, ctypes.c_int, ctypes.c_void_p]
        self.setsockopt = self._function(lib.setsockopt, opt_args + [length])
        self.getsockopt = self._function(lib.getsockopt, opt_args + [ctypes.POINTER(length)])
        self.length = length

    @staticmethod
    def _function(function, argtypes, restype=None):
        function.argtypes = argtypes
        function.restype = restype or ctypes.c_int
        return function

    def error(self):
        """The last call's error as an OSError of the right subclass (ConnectionResetError, ...)."""
        code = self._last_error()
        if _PLATFORM == "windows":
            return ctypes.WinError(code)
        return OSError(code, os.strerror(code))

    def error_code(self):
        code = self._last_error()
        if _PLATFORM == "windows":
            return ctypes.WinError(code).errno
        return code


_libc = None


def _get_libc():
    global _libc
    if _libc is None:
        _libc = _Libc()
    return _libc


def _sockaddr(cid, port, flags=0):
    addr = _structure("sockaddr_vm")()
    addr.svm_family = VMCISock_GetAFValue()
    addr.svm_cid = cid
    addr.svm_port = port
    if flags:
        if not hasattr(addr, "svm_flags"):
            raise OSError(errno.EINVAL, "vsock: svm_flags exist only on Linux")
        addr.svm_flags = flags
    if hasattr(addr, "svm_len"):
        addr.svm_len = ctypes.sizeof(addr)
    return addr


def _checked_address(address):
    if not isinstance(address, tuple) or len(address) != 2 or not all(isinstance(v, int) for v in address):
        raise TypeError("vsock address must be a (cid, port) tuple of integers, not %r" % (address,))
    if not all(0 <= v <= 0xFFFFFFFF for v in address):
        raise OverflowError("vsock CID and port are unsigned 32-bit integers: %r" % (address,))
    return address


def _wait(sock, for_write, timeout):
    """Wait until the fd is ready; False on timeout. Retries after signals (PEP 475)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            if for_write:
                _, ready, failed = select.select([], [sock], [sock], remaining)
            else:
                ready, _, failed = select.select([sock], [], [sock], remaining)
        except InterruptedError:
            continue
        return bool(ready or failed)


def _libc_connect(sock, address, flags=0, report_errno=False):
    """connect() through libc, honouring the socket's timeout the way CPython's connect does."""
    libc = _get_libc()
    cid, port = _checked_address(address)
    addr = _sockaddr(cid, port, flags)
    timeout = sock.gettimeout()
    if libc.connect(sock.fileno(), ctypes.byref(addr), ctypes.sizeof(addr)) == 0:
        return 0
    code = libc.error_code()
    if code in (errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EINTR) and timeout != 0:
        if not _wait(sock, True, timeout):
            if report_errno:
                return errno.EWOULDBLOCK
            raise socket.timeout("timed out")
        code = _libc_getsockopt_int(sock, socket.SOL_SOCKET, socket.SO_ERROR)
        if code == 0:
            return 0
    if report_errno:
        return code
    raise OSError(code, os.strerror(code))


def _libc_getsockopt_int(sock, level, option):
    libc = _get_libc()
    value = ctypes.c_int(0)
    size = libc.length(ctypes.sizeof(value))
    if libc.getsockopt(sock.fileno(), level, option, ctypes.byref(value), ctypes.byref(size)) != 0:
        raise libc.error()
    return value.value


def _libc_bind(sock, address):
    libc = _get_libc()
    cid, port = _checked_address(address)
    addr = _sockaddr(cid, port)
    if libc.bind(sock.fileno(), ctypes.byref(addr), ctypes.sizeof(addr)) != 0:
        raise libc.error()


def _libc_name(sock, function):
    libc = _get_libc()
    addr = _structure("sockaddr_vm")()
    size = libc.length(ctypes.sizeof(addr))
    if function(sock.fileno(), ctypes.byref(addr), ctypes.byref(size)) != 0:
        raise libc.error()
    return (addr.svm_cid, addr.svm_port)


def _libc_accept(sock):
    """socket._accept() through libc: (fd, (cid, port)), honouring the listener's timeout."""
    libc = _get_libc()
    timeout = sock.gettimeout()
    while True:
        addr = _structure("sockaddr_vm")()
        size = libc.length(ctypes.sizeof(addr))
        fd = libc.accept(sock.fileno(), ctypes.byref(addr), ctypes.byref(size))
        if fd is not None and fd >= 0 and fd != (1 << (8 * ctypes.sizeof(ctypes.c_size_t))) - 1:
            if _PLATFORM != "windows":
                os.set_inheritable(fd, False)  # CPython's accept4(SOCK_CLOEXEC) does the same
            return fd, (addr.svm_cid, addr.svm_port)
        code = libc.error_code()
        if code == errno.EINTR:
            continue
        if code in (errno.EAGAIN, errno.EWOULDBLOCK) and timeout != 0:
            if not _wait(sock, False, timeout):
                raise socket.timeout("timed out")
            continue
        raise OSError(code, os.strerror(code))


def _libc_setsockopt(sock, level, option, value, *optlen):
    libc = _get_libc()
    if value is None:  # setsockopt(level, option, None, optlen)
        data, size = None, optlen[0]
    elif isinstance(value, int):
        buffer = ctypes.c_uint64(value) if level == VMCISock_GetAFValue() else ctypes.c_int(value)
        data, size = ctypes.byref(buffer), ctypes.sizeof(buffer)
    else:
        raw = bytes(value)
        buffer = ctypes.create_string_buffer(raw, len(raw))
        data, size = buffer, len(raw)
    if libc.setsockopt(sock.fileno(), level, option, data, size) != 0:
        raise libc.error()


def _libc_getsockopt(sock, level, option, buflen=None):
    libc = _get_libc()
    if buflen is None:
        buffer = ctypes.c_uint64(0) if level == VMCISock_GetAFValue() else ctypes.c_int(0)
        size = libc.length(ctypes.sizeof(buffer))
        if libc.getsockopt(sock.fileno(), level, option, ctypes.byref(buffer), ctypes.byref(size)) != 0:
            raise libc.error()
        return buffer.value
    buffer = ctypes.create_string_buffer(buflen)
    size = libc.length(buflen)
    if libc.getsockopt(sock.fileno(), level, option, buffer, ctypes.byref(size)) != 0:
        raise libc.error()
    return buffer.raw[: size.value]


# ===================================================================================================
# 13. Strict mode and recording
# ===================================================================================================
# VSOCK_STRICT=1 (or warn): every AF_INET/AF_INET6 socket the process creates and every IP name lookup
# (getaddrinfo, gethostbyname) raises VsockStrictError (or warns once per place), naming the file and
# line, except in functions that make a socket pair with themselves, which vsockport keeps on TCP/IP on
# purpose (VS013; the test is `_is_local_pair` below). The way to find what a static port missed:
# run the ported program's own tests with it. It is an audit hook (PEP 578): nothing is patched.
#
# VSOCK_RECORD=FILE: every endpoint the process dials or binds through the map (host and port as the
# program wrote them, the CID and vsock port they became, the map entry used, or why there was none) is
# appended to FILE as one JSON line, once per endpoint and process: `vsockport endpoints --recorded FILE`
# reads them.

STRICT_ENV = "VSOCK_STRICT"
RECORD_ENV = "VSOCK_RECORD"


class VsockStrictError(RuntimeError):
    """VSOCK_STRICT=1: the process used TCP/IP (an AF_INET/AF_INET6 socket, an IP name lookup) outside
    the places vsockport kept on TCP/IP on purpose. The message names the file and line."""


_recorded = set()


def _record(operation, host, port, cid, vport, key, error=None):
    path = os.environ.get(RECORD_ENV)
    if not path:
        return
    entry = (operation, str(host), str(port))
    if entry in _recorded:
        return
    _recorded.add(entry)
    import json

    line = json.dumps({"op": operation, "host": str(host), "port": port, "cid": str(cid) if cid is not None else None,
                       "vport": vport, "entry": key, "error": error, "pid": os.getpid()}, sort_keys=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode() + b"\n")
        finally:
            os.close(fd)
    except OSError as exc:
        _warn_once("record", "%s=%s cannot be written (%s): nothing is recorded" % (RECORD_ENV, path, exc.strerror))


_STRICT_EVENTS = frozenset(["socket.__new__", "socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex"])
# VS013's definition of a local pair: written once, here; vsockport's VS013 rule loads `local_pair`
# and its pattern from this file (vsockport/runtime/contract.py), so the two cannot drift.
LOCAL_PAIR_LOOPBACK = r"""['"](?:127\.\d+\.\d+\.\d+|localhost|::1)['"]"""


def local_pair(source, loopback_names=()):
    """Whether a function's source makes a socket pair with itself: it binds (or makes a server) on a
    loopback host and connects to one (a literal, or a name in `loopback_names`: module constants that
    hold one), or it binds and connects to an address it read from getsockname() (a socketpair()
    emulation: `addr, port = lsock.getsockname()[:2]; csock.connect((addr, port))`)."""
    import re

    host = "(?:%s%s)" % (LOCAL_PAIR_LOOPBACK, "".join(r"|\b%s\b" % re.escape(name) for name in loopback_names))
    listens = re.search(r"\b(?:bind|create_server)\s*\(\s*\(\s*" + host, source)
    if listens and re.search(r"\b(?:connect|connect_ex|create_connection)\s*\(\s*\(\s*" + host, source):
        return True
    if not re.search(r"\b(?:bind|create_server)\s*\(", source):
        return False
    own = {}  # a name assigned from getsockname() -> where; a connect reads it only after that
    for assigned in re.finditer(r"^[ \t]*([\w, ()]+?)\s*=[^=\n]*\.getsockname\(\)", source, re.M):
        for name in re.findall(r"\w+", assigned.group(1)):
            own.setdefault(name, assigned.start())
    for call in re.finditer(r"\b(?:connect|connect_ex|create_connection)\s*\(([^\n]*)", source):
        arguments = call.group(1)
        if "getsockname" in arguments:
            return True
        # the name itself, not an attribute of that name (`server.port` is not the `port` read here)
        if any(where < call.start() and re.search(r"(?<![\w.])%s\b" % re.escape(name), arguments)
               for name, where in own.items()):
            return True
    return False


_local_pairs = {}


def _strict_setting():
    value = os.environ.get(STRICT_ENV, "").strip().lower()
    if value in ("", "0", "no", "false", "off"):
        return None
    if value in ("1", "yes", "true", "on", "raise", "error"):
        return "raise"
    if value == "warn":
        return "warn"
    warnings.warn("%s must be 1 or warn, not %r: strict mode is off" % (STRICT_ENV, value), RuntimeWarning, stacklevel=2)
    return None


def _is_local_pair(code, globals_of=None):
    """VS013's test (local_pair) on the source of the function `code` runs, with the loopback hosts its
    module's constants hold."""
    if code.co_name == "<module>":
        return False
    known = _local_pairs.get(code)
    if known is None:
        import inspect

        try:
            text = "".join(inspect.getsourcelines(code)[0])
        except (OSError, TypeError):
            text = ""
        names = [name for name, value in (globals_of or {}).items() if name.isupper() and isinstance(value, str)
                 and (value in _LOOPBACK_HOSTS or value.startswith("127."))]
        known = _local_pairs[code] = local_pair(text, names)
    return known


def _install_strict(mode):
    """An audit hook (PEP 578) that watches the whole process: nothing is patched. Once per process."""
    if socket.__dict__.get("_vsockport_strict"):
        return
    socket._vsockport_strict = mode
    import sysconfig

    stdlib = tuple({os.path.realpath(sysconfig.get_paths()[k]) + os.sep for k in ("stdlib", "platstdlib")})
    seen = set()

    def hook(event, args):
        if event not in _STRICT_EVENTS:
            return
        if event == "socket.__new__":
            if args[1] not in _IP_FAMILIES:
                return
            what = "an %s socket" % ("AF_INET6" if args[1] == getattr(socket, "AF_INET6", None) else "AF_INET")
        else:
            what = "%s(%r)" % (event.split(".")[1], args[0])
        frame, site = sys._getframe(1), None
        while frame is not None:
            names = frame.f_globals
            if "VSOCKPORT_RUNTIME_VERSION" in names:
                return  # made by the runtime itself
            if _is_local_pair(frame.f_code, names):
                return  # a local socket pair, which vsockport keeps on TCP/IP on purpose
            if site is None and not os.path.realpath(frame.f_code.co_filename).startswith(stdlib):
                site = frame
            frame = frame.f_back
        site = site or sys._getframe(1)
        where = (site.f_code.co_filename, site.f_lineno)
        message = ("vsock strict mode: %s at %s:%d, which the port did not move to vsock (%s=%s)"
                   % (what, where[0], where[1], STRICT_ENV, os.environ.get(STRICT_ENV, "")))
        if mode == "raise":
            raise VsockStrictError(message)
        if where not in seen:
            seen.add(where)
            warnings.warn_explicit(message, RuntimeWarning, where[0], where[1])

    sys.addaudithook(hook)


# ===================================================================================================
# 14. Diagnosis: what this machine offers (never connects; binds only to an ephemeral port)
# ===================================================================================================

_TRANSPORT_MODULES = ("vsock", "vmw_vsock_virtio_transport", "vmw_vsock_vmci_transport", "hv_sock",
                      "vsock_loopback", "vhost_vsock")


def _loaded_modules():
    try:
        with open("/proc/modules") as modules:
            loaded = {line.split()[0] for line in modules if line.strip()}
    except OSError:
        loaded = None
    found = {}
    for name in _TRANSPORT_MODULES:
        if loaded is not None and name in loaded:
            found[name] = "loaded"
        elif os.path.isdir("/sys/module/" + name):
            found[name] = "built in"
    return found


def _try(function, explain=True):
    try:
        return function(), None
    except OSError as exc:
        detail = (exc.strerror or str(exc)) if explain else os.strerror(exc.errno)
        return None, "%s: %s" % (errno.errorcode.get(exc.errno, exc.errno), detail)


def vsock_diagnose():
    """A dict describing this machine's vsock support, for `python vsock_runtime.py` and `vsockport doctor`:
    Python's AF_VSOCK, the family, the local CID, /dev/vsock, transports, socket types (probed by making
    sockets), loopback (probed by binding CID 1 to an ephemeral port), the map's hybrid sockets (looked
    at), and the problems found. Nothing ever connects."""
    import platform

    af = VMCISock_GetAFValue()
    report = {
        "runtime_version": VSOCKPORT_RUNTIME_VERSION,
        "python": {"version": platform.python_version(), "implementation": platform.python_implementation(),
                   "platform": sys.platform, "af_vsock": getattr(socket, "AF_VSOCK", None)},
        "kernel": platform.release(),
        "backend": _backend_name(),
        "af_value": af,
        "problems": [],
    }
    report["local_cid"], report["local_cid_error"] = _try(vsock_local_cid)
    device = {"path": _WINDOWS_DEVICE if _PLATFORM == "windows" else _DEVICES[0]}
    if _PLATFORM != "windows":
        try:
            info = os.stat(device["path"])
        except OSError:
            device["exists"] = False
        else:
            device.update(exists=True, mode="%o" % (info.st_mode & 0o777), uid=info.st_uid, gid=info.st_gid,
                          readable=os.access(device["path"], os.R_OK), writable=os.access(device["path"], os.W_OK))
    report["device"] = device
    report["transports"] = _loaded_modules() if _PLATFORM == "linux" else {}
    kinds = {}
    for name in ("SOCK_STREAM", "SOCK_DGRAM", "SOCK_SEQPACKET"):
        kind = getattr(socket, name, None)
        if kind is None or af == -1:
            kinds[name] = "not probed"
            continue
        made, error = _try(lambda: _StdSocket(af, kind), explain=False)
        if made is not None:
            made.close()
        kinds[name] = "ok" if error is None else error
    report["socket_types"] = kinds
    report["loopback"] = _loopback_available() if af != -1 and kinds.get("SOCK_STREAM") == "ok" else None
    report["hybrid"] = _hybrid_peers()
    problems = report["problems"]
    problems.extend("%s: %s" % (CID_MAP_ENV, problem) for problem in _cid_map().problems)
    for peer in report["hybrid"]:
        if peer["state"] != "socket":
            problems.append("%s maps %s to the VMM socket %s, which is %s: start the VM, or fix the path (its "
                            "vsock uds_path)" % (CID_MAP_ENV, peer["name"], peer["path"], peer["state"]))
    if af == -1:
        problems.append("no vSockets address family: " + _no_vsock_hint())
    if device.get("exists") is False and _PLATFORM == "linux":
        problems.append("%s is missing: the local CID cannot be read (load a vsock transport)" % device["path"])
    elif device.get("exists") and not (device.get("readable") and device.get("writable")):
        problems.append("%s is not accessible to this user: run as root or add a udev rule "
                        "KERNEL==\"vsock\", MODE=\"0666\"" % device["path"])
    if kinds.get("SOCK_DGRAM") not in (None, "ok", "not probed"):
        problems.append("no vsock datagrams here (only VMware's VMCI transport has them): UDP programs "
                        "cannot run over vsock on this machine")
    if report["loopback"] is False:
        problems.append("no loopback transport: CID 1 does not work here (load vsock_loopback to test locally)")
    return report


def _hybrid_peers():
    """The hybrid-vsock entries of VSOCK_CID_MAP and whether their VMM sockets are there (looked at,
    never connected to: a connect would be a real CONNECT to the VMM)."""
    import stat

    peers = []
    for name, value in sorted(_cid_map().entries.items()):
        path = _hybrid_path(value)
        if path is None:
            continue
        try:
            state = "socket" if stat.S_ISSOCK(os.stat(path).st_mode) else "not a socket"
        except FileNotFoundError:
            state = "missing"
        except OSError as exc:
            state = os.strerror(exc.errno or 0).lower()
        peers.append({"name": name, "path": path, "state": state})
    return peers


def _print_report(report):
    python = report["python"]
    lines = [
        "vsock runtime %s, backend %s" % (report["runtime_version"], report["backend"]),
        "python         %s %s on %s, socket.AF_VSOCK=%s" % (python["implementation"], python["version"],
                                                            python["platform"], python["af_vsock"]),
        "kernel         %s" % report["kernel"],
        "address family %s" % report["af_value"],
        "local CID      %s" % (report["local_cid"] if report["local_cid"] is not None else report["local_cid_error"]),
    ]
    device = report["device"]
    if device.get("exists"):
        lines.append("device         %s mode %s uid %s, read %s, write %s" % (
            device["path"], device["mode"], device["uid"], device["readable"], device["writable"]))
    else:
        lines.append("device         %s missing" % device["path"])
    lines += ["module         %s (%s)" % item for item in sorted(report["transports"].items())]
    lines += ["%-14s %s" % item for item in report["socket_types"].items()]
    lines.append("loopback CID 1 %s" % {True: "works", False: "not available", None: "not probed"}[report["loopback"]])
    lines += ["problem:       %s" % problem for problem in report["problems"]]
    print("\n".join(lines))


# ===================================================================================================
# 15. One runtime per process: the newest copy registered serves every copy's public functions
# ===================================================================================================
# Every ported package carries its own copy. The first call into a copy registers it, with its version,
# on the `socket` module (importing does not); from then on every copy's public functions are served by
# the newest copy registered, an older copy never takes over from a newer one, and a copy's classes and
# constants stay its own. The vsock methods of socket.socket are the newest copy's too (section 4).

_REGISTRY = "_vsockport_runtime"  # on the socket module: (version, namespace) of the copy that serves
_THIS = globals()
_ENTRY = (VSOCKPORT_RUNTIME_VERSION, _THIS)
_registered = socket.__dict__.get  # the registry's one lookup, bound once


def _serving():
    """The namespace of the copy that serves this process: the newest registered on the socket
    module; this copy registers when it is newer (so registering twice changes nothing)."""
    entry = _registered(_REGISTRY)
    if entry is None or entry[0] < VSOCKPORT_RUNTIME_VERSION:
        setattr(socket, _REGISTRY, _ENTRY)
        if entry is not None and "_step_aside" in entry[1]:  # (copies before this scheme check on each call)
            entry[1]["_step_aside"]()
        return _THIS
    return entry[1]


def _public(function):
    """The public function for `function`: the same function, whose code is first a trampoline. Its first
    call registers this copy (_serving); when this copy serves, every public function of it gets its own
    code back, so a call costs nothing more than the function; when another copy serves, the trampoline
    stays and hands each call to that copy. A newer copy that registers later turns this copy's
    functions back into trampolines (_step_aside)."""
    name = function.__name__
    public = types.FunctionType(function.__code__, function.__globals__, name, function.__defaults__,
                                function.__closure__)
    public.__kwdefaults__, public.__doc__, public.__qualname__ = function.__kwdefaults__, function.__doc__, name
    public.__module__, public.__wrapped__ = function.__module__, function  # inspect.signature: the function's
    _own_code[name] = function.__code__
    public.__code__ = _trampoline_code(function)
    return public


def _trampoline(*args, **kwargs):
    return _first_use(sys._getframe(0).f_code.co_name)(*args, **kwargs)


async def _trampoline_async(*args, **kwargs):
    return await _first_use(sys._getframe(0).f_code.co_name)(*args, **kwargs)


def _trampoline_code(function):
    code = _trampoline_async.__code__ if function.__code__.co_flags & 0x80 else _trampoline.__code__  # CO_COROUTINE
    if sys.version_info >= (3, 11):  # tracebacks show the qualified name
        return code.replace(co_name=function.__name__, co_qualname=function.__name__)
    return code.replace(co_name=function.__name__)


_own_code = {}  # public name -> its function's own code


def _first_use(name):
    """The function a trampoline hands its call to: this copy's own (now running its own code) when this
    copy serves, else the serving copy's."""
    serving = _serving()
    if serving is not _THIS:
        return serving[name]
    for public_name, code in _own_code.items():
        _THIS[public_name].__code__ = code
    return _THIS[name]


def _step_aside():
    """A newer copy serves from now on: this copy's public functions hand their calls to it."""
    for public_name in _own_code:
        _THIS[public_name].__code__ = _trampoline_code(_THIS[public_name].__wrapped__)


def vsock_runtime_version():
    """The version of the runtime copy that serves this process."""
    return _serving()["VSOCKPORT_RUNTIME_VERSION"]


def vsock_backend():
    """'native' when CPython's own socket calls handle vsock addresses, 'ctypes' when libc does."""
    return _backend_name()


# ===================================================================================================
# 16. Names kept for code ported by earlier versions of vsockport (they are not written any more)
# ===================================================================================================

def setsockopt_or_skip(sock, *args):
    """sock.setsockopt(*args), skipping the options vsock lacks on vsock sockets (which now do that by
    themselves); True when the option was set. `sock` may be any socket-like object."""
    try:
        sock.setsockopt(*args)
    except OSError as exc:
        if exc.errno in (errno.ENOPROTOOPT, errno.EOPNOTSUPP, getattr(errno, "ENOTSUP", errno.EOPNOTSUPP)) and _is_vsock(sock):
            return False
        raise
    return not (_is_vsock(sock) and len(args) >= 2 and _without_meaning(args[0], args[1]))


def vsock_ip_family(family):
    """AF_INET for the vsock family, any other family as it is (earlier ports compared families through it)."""
    af = VMCISock_GetAFValue()
    return socket.AF_INET if af != -1 and family == af else family


for _name in __all__:
    _value = globals().get(_name)
    if isinstance(_value, types.FunctionType):
        globals()[_name] = _public(_value)
del _name, _value

vsock_uvloop = _AsyncioAsUvloop("vsock_uvloop", _AsyncioAsUvloop.__doc__)
vsock_socket_module = _SocketModule("vsock_socket_module", _SocketModule.__doc__)
vsock_socket_module.__dict__.update(
    socket=vsock_socket, fromfd=vsock_fromfd, create_connection=create_vsock_connection,
    create_server=create_vsock_server, getaddrinfo=vsock_getaddrinfo, gethostbyname=vsock_gethostbyname,
    gethostbyname_ex=vsock_gethostbyname_ex, getnameinfo=vsock_getnameinfo, inet_pton=vsock_inet_pton,
    inet_ntop=vsock_inet_ntop,
)

if _strict_setting():  # the one thing importing does, and only when asked: watch the whole process
    _install_strict(_strict_setting())

if __name__ == "__main__":
    if sys.argv[1:] == ["--json"]:
        import json

        print(json.dumps(vsock_diagnose(), indent=2, sort_keys=True))
    else:
        _print_report(vsock_diagnose())
