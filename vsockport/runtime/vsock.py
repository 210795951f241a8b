"""vSockets runtime, added to this project by vsockport (https://pypi.org/project/vsockport/).

This single stdlib-only module lets a program ported from TCP/IP talk over vSockets: VMware VMCI sockets
and Linux AF_VSOCK (KVM/QEMU, Firecracker, Cloud Hypervisor, AWS Nitro Enclaves). It does not need
vsockport installed. vsockport replaces this file when a newer version is available; edits made here
are lost then. Run `python vsock_runtime.py` (or `--json`) to see what this machine offers.

Design: no global patch. Importing this module defines names and nothing else (the one exception is
VSOCK_STRICT, an explicit request to watch the whole process, below). Ported code makes its sockets
through `vsock_socket()`, which returns a `VsockSocket`, a subclass of `socket.socket` that carries
the vsock behaviour; sockets of every other family are plain `socket.socket` objects, and code that
vsockport did not port never runs a line of this file. Patching `socket.socket` instead would put this
file's frames into every TCP traceback of the process and let the last imported copy win.

VsockSocket, over the kernel's AF_VSOCK (or libc, where CPython lacks AF_VSOCK):
  - takes TCP/IP-style addresses: ("", port), ("localhost", port), (name, port) with names mapped
    to CIDs from VSOCK_CID_MAP; port 0 means any port when binding;
  - reports addresses as TCP/IP code reads them: (host, port) with the host a string, "0.0.0.0"
    for VMADDR_CID_ANY (what getsockname() says of a TCP wildcard bind) and the CID's digits otherwise (a `VsockHost`: it also equals its CID number
    and gives it back with int()); give them back to connect() or bind() and they are CIDs again;
  - explains errors, keeping their class and errno (a reset for a closed port, privileged ports,
    unbindable CIDs, TCP-only options, datagrams on virtio, no vsock at all);
  - makes a timeout set with settimeout() the kernel's vsock connect timeout (2 s by default);
  - sends bytes-valued socket options (timevals, SO_LINGER) through libc, as CPython cannot;
  - accepts, and dup()s, VsockSockets.
send/recv are CPython's own C code: no Python runs on the data path.

One runtime per process. Every ported package carries its own copy. The first call into a copy
registers it, with its version, on the `socket` module (importing does not: see above); from then on
every copy's public functions are served by the newest copy registered, an older copy never takes
over from a newer one, and a copy's classes and constants stay its own.

Host names have no meaning on vsock: a peer is a context ID (CID). Names are mapped to CIDs at run time
from the environment variable VSOCK_CID_MAP, a comma-separated list of NAME=CID pairs, for example
VSOCK_CID_MAP="db.internal=3,metrics=17". A loopback host bound at run time ("127.0.0.1") binds
VMADDR_CID_LOCAL where the vsock_loopback transport offers it; elsewhere it binds VMADDR_CID_ANY (a
vsock socket cannot be local-only there) and says so once with a RuntimeWarning.

Firecracker and Cloud Hypervisor hosts have no AF_VSOCK: their VMM exposes the guest's vsock as Unix
sockets ("hybrid vsock"). A VSOCK_CID_MAP value unix:PATH names such a socket instead of a CID, for a
name, a CID or "*" (every host and CID the map does not list): VSOCK_CID_MAP="*=unix:/run/fc/vm.vsock".
Connecting to such a peer speaks the VMM's CONNECT/OK handshake on PATH (bounded by the socket's
timeout, else VSOCK_HYBRID_TIMEOUT seconds, default 5); binding port P listens on PATH_P, where the
VMM delivers the guest's connections to the host's port P. See "Hybrid vsock" below.

Environment: VSOCK_CID_MAP (above); VSOCK_HYBRID_TIMEOUT (above); VSOCK_RUNTIME_BACKEND=auto|native|ctypes (a bad value warns and
means auto); VSOCK_STRICT=1 (or warn) makes every AF_INET/AF_INET6 socket the process creates, and
every IP name lookup (getaddrinfo, gethostbyname), raise VsockStrictError (or warn once per place),
naming the file and line, except in functions that make a socket pair with themselves, which
vsockport keeps on TCP/IP on purpose (the test is VS013's: the function binds and connects, to a
loopback literal or to an address it read from getsockname()): the way to find what a static port
missed by running the ported program's own tests.
"""

import errno
import functools
import importlib
import os
import select
import socket
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
    "VsockHost",
    "VsockHybridHost",
    "VsockSocket",
    "sockaddr_vm",
    "vsock_backend",
    "vsock_runtime_version",
    "vsock_local_cid",
    "vsock_cid",
    "vsock_bind_cid",
    "vsock_address",
    "getaddrinfo",
    "vsock_gethostbyname",
    "vsock_gethostbyname_ex",
    "vsock_socket",
    "vsock_family",
    "vsock_ip_family",
    "vsock_socket_module",
    "vsock_connect",
    "set_connect_timeout",
    "get_connect_timeout",
    "create_vsock_connection",
    "create_vsock_server",
    "vsock_diagnose",
    "setsockopt_or_skip",
    "VsockServerMixin",
    "vsock_server_class",
    "vsock_make_server",
    "vsock_client_class",
    "vsock_urlopen",
    "vsock_open_connection",
    "vsock_start_server",
    "vsock_loop",
    "vsock_loop_create_connection",
    "vsock_loop_create_server",
    "vsock_loop_getaddrinfo",
    "vsock_getaddrinfo",
]

# The line below is read by vsockport to decide whether this file needs an update.
VSOCKPORT_RUNTIME_VERSION = 6

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

CID_MAP_ENV = "VSOCK_CID_MAP"
BACKEND_ENV = "VSOCK_RUNTIME_BACKEND"  # auto (default), native or ctypes
STRICT_ENV = "VSOCK_STRICT"  # 1 (raise) or warn

_REGISTRY = "_vsockport_runtime"  # on the socket module: (version, module) of the copy that serves
_THIS = globals()  # this copy's namespace, as the registry holds it

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

_GLOBAL_DEFAULT_TIMEOUT = getattr(socket, "_GLOBAL_DEFAULT_TIMEOUT", object())
_WILDCARD_HOSTS = frozenset(["", "0.0.0.0", "::", "*", "<any>", "<broadcast>"])
_LOOPBACK_HOSTS = frozenset(["localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback", "127.0.0.1", "::1"])


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

            _fields_ = [
                ("svm_len", ctypes.c_ubyte),
                ("svm_family", ctypes.c_ubyte),
                ("svm_reserved1", ctypes.c_ushort),
                ("svm_port", ctypes.c_uint),
                ("svm_cid", ctypes.c_uint),
                ("svm_zero", ctypes.c_ubyte * 4),
            ]

    else:

        class sockaddr_vm(ctypes.Structure):
            """Linux (and VMware Windows) `struct sockaddr_vm`, 16 bytes. Port and CID are in host byte
            order: no htons/htonl. `svm_flags` (Linux 5.11+) accepts only VMADDR_FLAG_TO_HOST."""

            _fields_ = [
                ("svm_family", ctypes.c_ushort),
                ("svm_reserved1", ctypes.c_ushort),
                ("svm_port", ctypes.c_uint),
                ("svm_cid", ctypes.c_uint),
                ("svm_flags", ctypes.c_ubyte),
                ("svm_zero", ctypes.c_ubyte * 3),
            ]

    class _timeval(ctypes.Structure):
        _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]

    sockaddr_vm.__module__ = __name__
    _structures.update(sockaddr_vm=sockaddr_vm, _timeval=_timeval)
    return _structures[name]


def __getattr__(name):
    """`sockaddr_vm`, made when a program first asks for it (PEP 562)."""
    if name == "sockaddr_vm":
        return _structure(name)
    raise AttributeError("module %r has no attribute %r" % (__name__, name))


class VsockAddressError(socket.gaierror):
    """A host that has no vsock CID. A gaierror, so code that handles failed name lookups still works."""


# ---------------------------------------------------------------------------------------------------
# Address family and local CID
# ---------------------------------------------------------------------------------------------------

# The legacy driver unregisters the family when the fd that asked for it is closed, so it is kept open.
_af_value_fd = None
_af_value = None


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


def _probe_stream_family(family):
    try:
        probe = socket.socket(family, socket.SOCK_STREAM)
    except OSError as exc:
        return exc.errno
    probe.close()
    return 0


def VMCISock_GetAFValue():
    """Return the vSockets address family number, or -1 if this system has none.

    Linux probes a stream socket of family 40 first: upstream virtio kernels support AF_VSOCK streams
    but neither datagrams nor the legacy ioctl that VMware's own implementation relies on. macOS and
    FreeBSD ask /dev/vsock and keep it open; Windows asks VMware Tools' VMCI device.
    """
    global _af_value, _af_value_fd
    if _af_value is not None:
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
    return value


def VMCISock_ReleaseAFValueFd():
    """Close the fd kept open by the legacy address-family lookup, if any. Call it only once the
    program no longer uses vSockets: the legacy driver may unregister the family then."""
    global _af_value_fd, _af_value
    if _af_value_fd is not None:
        os.close(_af_value_fd)
        _af_value_fd = None
        _af_value = None


def VMCISock_GetLocalCID():
    """Return this machine's CID, or VMADDR_CID_ANY when it cannot be read (as VMware's C API does).

    Linux, macOS and FreeBSD ask /dev/vsock (IOCTL_VM_SOCKETS_GET_LOCAL_CID); Windows asks VMware
    Tools' VMCI device. `vsock_local_cid()` raises an error that says why instead.
    """
    try:
        return vsock_local_cid()
    except OSError:
        return VMADDR_CID_ANY


def vsock_local_cid():
    """This machine's CID; raises an OSError that says why it cannot be read (errno kept)."""
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


# ---------------------------------------------------------------------------------------------------
# Resolver: TCP/IP-style hosts and ports to CIDs and vsock ports

# ---------------------------------------------------------------------------------------------------
# Resolver: TCP/IP-style hosts and ports to CIDs and vsock ports
# ---------------------------------------------------------------------------------------------------

_parsed_map = ("", {}, False)  # (VSOCK_CID_MAP as read, its mapping, whether any value is unix:PATH)


def _cid_map():
    global _parsed_map
    raw = os.environ.get(CID_MAP_ENV, "")
    if raw != _parsed_map[0]:  # parsed again only when the variable changes: this runs on every connect
        mapping = {}
        for item in raw.split(","):
            name, sep, value = item.strip().partition("=")
            if sep and name.strip():
                mapping[name.strip().lower()] = value.strip()
        _parsed_map = (raw, mapping, any(_hybrid_path(v) is not None for v in mapping.values()))
    return _parsed_map[1]


def _as_int(value):
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


def vsock_cid(host):
    """Map a TCP/IP-style host to a vsock CID for connecting.

    ints and numeric strings are CIDs; loopback names and the wildcard ("", "0.0.0.0": as a
    destination they mean this machine, as on Linux) become VMADDR_CID_LOCAL; other names are looked
    up in VSOCK_CID_MAP; anything else raises VsockAddressError.
    """
    hybrid = _hybrid_target(host)
    if hybrid is not None:
        return hybrid
    if isinstance(host, VsockHost):
        return VMADDR_CID_LOCAL if host.cid == VMADDR_CID_ANY else host.cid
    if host in _LOCAL_NAMES:
        return VMADDR_CID_LOCAL  # the usual spellings, without parsing (this runs on every connect)
    number = _as_int(host)
    if number is not None:
        return number
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        raise TypeError("vsock host must be a CID (int) or a host name, not %s" % type(host).__name__)
    name = host.strip().lower()
    if name in _WILDCARD_HOSTS or _is_loopback(name):
        return VMADDR_CID_LOCAL
    mapped = _cid_map().get(name)
    if mapped is not None:
        number = _as_int(mapped)
        if number is None:
            raise VsockAddressError(
                socket.EAI_NONAME, "%s maps %r to %r, which is neither an integer CID nor unix:PATH (a VMM's "
                "hybrid-vsock socket)" % (CID_MAP_ENV, host, mapped)
            )
        return number
    raise VsockAddressError(
        socket.EAI_NONAME,
        "vsock has no name resolution: cannot map host %r to a CID. Set %s='%s=<CID>' "
        "(comma-separated NAME=CID pairs) or pass the CID as an integer" % (host, CID_MAP_ENV, host),
    )


def vsock_bind_cid(host):
    """Map a TCP/IP-style host to a vsock CID for binding. The wildcard is VMADDR_CID_ANY. A loopback
    host is VMADDR_CID_LOCAL where the vsock_loopback transport offers it; elsewhere a vsock socket
    cannot be local-only, so it is VMADDR_CID_ANY, and a RuntimeWarning says once that the server is
    now reachable from the host (bind VMADDR_CID_ANY, or a CID, explicitly to choose)."""
    hybrid = _hybrid_target(host)
    if hybrid is not None:
        return hybrid
    if isinstance(host, VsockHost):
        return host.cid
    number = _as_int(host)
    if number is not None:
        return number
    name = host.decode("ascii", "replace") if isinstance(host, bytes) else host
    if isinstance(name, str):
        name = name.strip().lower()
        if name in _WILDCARD_HOSTS:
            return VMADDR_CID_ANY
        if _is_loopback(name):
            if _loopback_available():
                return VMADDR_CID_LOCAL
            _warn_once("loopback-bind", "vsock: bind to the loopback host %r: this machine has no vsock_loopback "
                       "transport, so the socket binds VMADDR_CID_ANY and is reachable from the host over vsock; "
                       "bind VMADDR_CID_ANY (or a CID) explicitly to make that choice yours" % (host,))
            return VMADDR_CID_ANY
    return vsock_cid(host)


_LOCAL_NAMES = _LOOPBACK_HOSTS | _WILDCARD_HOSTS


def _is_loopback(name):
    return name in _LOOPBACK_HOSTS or name.startswith("127.")


_loopback = None


def _loopback_available():
    """Whether CID 1 can be bound here (vsock_loopback is loaded); probed once, never connecting."""
    global _loopback
    if _loopback is None:
        try:
            probe = socket.socket(VMCISock_GetAFValue(), socket.SOCK_STREAM)
        except (OSError, ValueError):
            _loopback = False
        else:
            with probe:
                try:
                    if (_backend or _backend_name()) == "ctypes":
                        _libc_bind(probe, (VMADDR_CID_LOCAL, VMADDR_PORT_ANY))
                    else:
                        socket.SocketType.bind(probe, (VMADDR_CID_LOCAL, VMADDR_PORT_ANY))
                    _loopback = True
                except OSError:
                    _loopback = False
    return _loopback


_warned = set()


def _warn_once(key, message, category=RuntimeWarning):
    if key not in _warned:
        _warned.add(key)
        warnings.warn(message, category, stacklevel=3)


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
    """Turn a (host, port[, flowinfo, scope_id]) address into a vsock (cid, port) tuple."""
    if not isinstance(address, tuple) or len(address) < 2:
        raise TypeError("vsock address must be a (host, port) tuple, not %r" % (address,))
    host, port = address[0], address[1]
    cid = vsock_bind_cid(host) if bind else vsock_cid(host)
    return (cid, _vsock_port(port, bind))


def _is_tcp_style(address):
    """(host-name, port[, flowinfo, scope_id]) as TCP/IP code passes it to a socket."""
    return isinstance(address, tuple) and len(address) >= 2 and isinstance(address[0], (str, bytes))


def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
    """socket.getaddrinfo() for vsock: one entry per requested socket type, for the usual loops
    (`for af, socktype, proto, _, addr in getaddrinfo(...)`).

    The entries look like the IP entries the program asked for, since its code decides by them
    (`{AF_INET: IPv4Address, AF_INET6: IPv6Address}[family]`): the family is AF_INET (AF_INET6 when
    only that was asked for, the vsock family when that was), the protocol is 0, and the address is
    (host, port) (host, port, 0, 0 for AF_INET6) with the host the CID as a string (a VsockHost). The
    program's `socket(af, ...)`, ported to vsock_socket(), makes a vsock socket of it, and connect() or
    bind() read the host as the CID again. With AI_PASSIVE a None host is VMADDR_CID_ANY and port 0 is
    VMADDR_PORT_ANY; without it a None host is VMADDR_CID_LOCAL.
    """
    passive = bool(flags & socket.AI_PASSIVE)
    if host is None:
        cid = VMADDR_CID_ANY if passive else VMADDR_CID_LOCAL
    else:
        if flags & socket.AI_NUMERICHOST and _as_int(host) is None and str(host).strip().lower() not in _WILDCARD_HOSTS:
            raise VsockAddressError(socket.EAI_NONAME, "AI_NUMERICHOST: %r is not a numeric CID" % (host,))
        cid = vsock_bind_cid(host) if passive else vsock_cid(host)
    vsock_port = _vsock_port(0 if port is None else port, passive)
    af = VMCISock_GetAFValue()
    if isinstance(cid, VsockHybridHost):
        entry_family = family if family in _IP_FAMILIES or (family == af and af != -1) else socket.AF_INET
        address = (cid, vsock_port, 0, 0) if entry_family == getattr(socket, "AF_INET6", None) else (cid, vsock_port)
    elif family == getattr(socket, "AF_INET6", None):
        entry_family, address = family, (VsockHost(cid), vsock_port, 0, 0)
    elif family == af and af != -1:
        entry_family, address = af, (cid, vsock_port)
    else:
        entry_family, address = socket.AF_INET, (VsockHost(cid), vsock_port)
    canonname = str(host) if (flags & socket.AI_CANONNAME and host is not None) else ""
    types = [socket.SOCK_STREAM] if type == 0 else [type]
    return [(entry_family, kind, 0, canonname, address) for kind in types]


# ---------------------------------------------------------------------------------------------------
# libc access: the calls CPython cannot make on vsock sockets
# ---------------------------------------------------------------------------------------------------

_libc = None


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
    def _function(function, argtypes, restype=ctypes.c_int):
        function.argtypes = argtypes
        function.restype = restype
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
    if not isinstance(address, tuple) or len(address) != 2:
        raise TypeError("vsock address must be a (cid, port) tuple of integers, not %r" % (address,))
    cid, port = address
    if not isinstance(cid, int) or not isinstance(port, int):
        raise TypeError("vsock address must be a (cid, port) tuple of integers, not %r" % (address,))
    if not (0 <= cid <= 0xFFFFFFFF and 0 <= port <= 0xFFFFFFFF):
        raise OverflowError("vsock CID and port are unsigned 32-bit integers: %r" % (address,))
    return cid, port


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


# ---------------------------------------------------------------------------------------------------
# Backend: native CPython calls where they work, libc where they do not


# ---------------------------------------------------------------------------------------------------
# Settings from the environment: read when first needed; a bad value warns and means the default
# ---------------------------------------------------------------------------------------------------

_backend = None


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


# ---------------------------------------------------------------------------------------------------
# vsock sockets
# ---------------------------------------------------------------------------------------------------

_IP_FAMILIES = frozenset([socket.AF_INET, getattr(socket, "AF_INET6", socket.AF_INET)])
_IP_PROTOCOLS = frozenset([getattr(socket, "IPPROTO_TCP", 6), getattr(socket, "IPPROTO_UDP", 17),
                           getattr(socket, "IPPROTO_IP", 0)])
_CSocket = socket.SocketType  # the C type: its methods, without socket.socket's Python layer


class VsockHost(str):
    """A CID as TCP/IP code reads a host: a string, "0.0.0.0" for VMADDR_CID_ANY (as getsockname()
    reports a TCP wildcard bind: servers validate and print it) and the CID's decimal digits otherwise.
    It also equals the CID number, and int() gives that number back."""

    def __new__(cls, cid):
        self = str.__new__(cls, "0.0.0.0" if cid == VMADDR_CID_ANY else str(cid))
        self.cid = cid
        return self

    def __eq__(self, other):
        if isinstance(other, int) and not isinstance(other, bool):
            return self.cid == other
        return str.__eq__(self, other)

    def __ne__(self, other):
        return not self.__eq__(other)

    __hash__ = str.__hash__

    def __int__(self):
        return self.cid

    __index__ = __int__

    def __reduce__(self):
        return (VsockHost, (self.cid,))


_hosts = {}  # cid -> VsockHost: a program meets a handful of CIDs, over and over


def _address_out(address):
    """(cid, port) from the kernel as TCP/IP code reads it: (VsockHost, port)."""
    if type(address) is tuple and len(address) == 2:
        cid = address[0]
        host = _hosts.get(cid)
        if host is None:
            if not isinstance(cid, int):
                return address
            host = _hosts[cid] = VsockHost(cid)
        return (host, address[1])
    return address


def _address_in(address, bind=False):
    """A TCP/IP-style address (or a VsockHost one) as the kernel takes it: (cid, port)."""
    if _is_tcp_style(address):
        return vsock_address(address, bind=bind)
    if type(address) is tuple and len(address) == 2 and type(address[0]) is int and _hybrid_in_use():
        hybrid = _hybrid_target(address[0])
        if hybrid is not None:
            return (hybrid, address[1])
    return address


def _apply_connect_timeout(sock):
    """TCP waits as long as settimeout() says; vsock gives up after its own connect timeout (2 s)
    unless told otherwise, so a longer socket timeout is handed to the kernel too."""
    timeout = sock.gettimeout()
    if timeout:
        try:
            set_connect_timeout(sock, timeout)
        except OSError:
            pass  # an old transport without the option: the kernel default applies
    return timeout


class VsockSocket(socket.socket):
    """A vsock stream (or datagram) socket for ported code: a `socket.socket` whose control calls speak
    TCP/IP-style addresses and explain vsock's errors (see the module docstring). Made by vsock_socket()."""

    __slots__ = ()

    def bind(self, address):
        address = _address_in(address, bind=True)
        if _is_hybrid(address):
            return _hybrid_bind(self, address)
        try:
            if (_backend or _backend_name()) == "ctypes":
                return _libc_bind(self, address)
            return _CSocket.bind(self, address)
        except OSError as exc:
            raise _explain_bind(exc, address) from None

    def _connect(self, address, report_errno):
        address = _address_in(address)
        if _is_hybrid(address):
            return _hybrid_connect(self, address, report_errno)
        timeout = _apply_connect_timeout(self)
        try:
            if (_backend or _backend_name()) == "ctypes":
                return _libc_connect(self, address, report_errno=report_errno)
            if report_errno:
                return _CSocket.connect_ex(self, address)
            return _CSocket.connect(self, address)
        except OSError as exc:
            if timeout:
                exc._vsock_timeout = timeout
            raise _explain_connect(exc, address) from None

    def connect(self, address):
        # The common case in one frame: (cid, port), CPython's own calls, no timeout to hand over.
        if type(address) is tuple and len(address) == 2 and type(address[0]) is int and _backend == "native" \
                and self.gettimeout() is None and not _hybrid_in_use():
            try:
                return _CSocket.connect(self, address)
            except OSError as exc:
                raise _explain_connect(exc, address) from None
        self._connect(address, False)

    def connect_ex(self, address):
        return self._connect(address, True)

    def listen(self, *backlog):
        try:
            return _CSocket.listen(self, *backlog)
        except OSError as exc:
            raise _explain_listen(exc) from None

    def _accept(self):
        if (_backend or _backend_name()) == "ctypes":
            return _libc_accept(self)
        return _CSocket._accept(self)

    def accept(self):
        hybrid = _hybrid_state(self)
        if hybrid is not None:
            return _hybrid_accept(self, hybrid)
        fd, address = _libc_accept(self) if (_backend or _backend_name()) == "ctypes" else _CSocket._accept(self)
        sock = type(self)(self.family, self.type, self.proto, fileno=fd)
        if socket.getdefaulttimeout() is None and self.gettimeout():
            sock.setblocking(True)  # as socket.socket.accept does
        return sock, _address_out(address)

    def dup(self):
        made = type(self)(self.family, self.type, self.proto, fileno=os.dup(self.fileno()))
        hybrid = _hybrid_state(self)
        if hybrid is not None:
            _hybrid_sockets[made] = hybrid._replace(listening=None)  # the original removes the socket file
        return made

    def close(self):
        hybrid = _hybrid_sockets.pop(self, None) if _hybrid_sockets else None
        socket.socket.close(self)
        if hybrid is not None and hybrid.listening is not None:
            _remove_own_socket_file(*hybrid.listening)

    def getsockname(self):
        hybrid = _hybrid_state(self)
        if hybrid is not None:
            return hybrid.sockname
        if (_backend or _backend_name()) == "ctypes":
            return _address_out(_libc_name(self, _get_libc().getsockname))
        return _address_out(_CSocket.getsockname(self))

    def getpeername(self):
        hybrid = _hybrid_state(self)
        if hybrid is not None:
            if hybrid.peername is None:
                raise OSError(errno.ENOTCONN, os.strerror(errno.ENOTCONN))
            return hybrid.peername
        if (_backend or _backend_name()) == "ctypes":
            return _address_out(_libc_name(self, _get_libc().getpeername))
        return _address_out(_CSocket.getpeername(self))

    def setsockopt(self, level, option, value, *optlen):
        _refuse_non_socket_level(self, level, option)
        try:
            # CPython passes every vsock option as a u64: bytes values (timevals, SO_LINGER) need libc.
            if (_backend or _backend_name()) == "ctypes" or not isinstance(value, int) or optlen:
                return _libc_setsockopt(self, level, option, value, *optlen)
            return _CSocket.setsockopt(self, level, option, value)
        except OSError as exc:
            raise _explain_option(exc, level, option) from None

    def getsockopt(self, level, option, *buflen):
        _refuse_non_socket_level(self, level, option)
        try:
            if (_backend or _backend_name()) == "ctypes" or buflen:
                return _libc_getsockopt(self, level, option, *buflen)
            return _CSocket.getsockopt(self, level, option)
        except OSError as exc:
            raise _explain_option(exc, level, option) from None

    def sendto(self, data, *flags_address):
        *flags, address = flags_address
        return _CSocket.sendto(self, data, *flags, _address_in(address))

    def recvfrom(self, *args):
        data, address = _CSocket.recvfrom(self, *args)
        return data, _address_out(address)

    def recvfrom_into(self, *args):
        size, address = _CSocket.recvfrom_into(self, *args)
        return size, _address_out(address)


def vsock_socket(family=-1, type=-1, proto=-1, fileno=None):
    """socket.socket(...) for ported code: an IP family (or none, CPython's AF_INET default, or the
    vsock family) makes a VsockSocket; any other family a plain socket.socket, as without this module.
    An adopted `fileno` keeps its own family. IP protocol numbers mean 0 on vsock."""
    if fileno is not None:
        made = socket.socket(family, type, proto, fileno)
        if made.family == VMCISock_GetAFValue() and made.family != -1:
            made.__class__ = VsockSocket  # same layout: a vsock fd passed in (socket activation, fork)
        return made
    af = VMCISock_GetAFValue()
    if family != -1 and family not in _IP_FAMILIES and (family != af or af == -1):
        return socket.socket(family, type, proto)
    if af == -1 and _hybrid_only():
        return VsockSocket(socket.AF_UNIX, socket.SOCK_STREAM if type == -1 else type, 0)
    if af == -1:
        raise _explained(OSError(errno.EAFNOSUPPORT, ""), "this machine offers no vSockets address family "
                         "(VMCISock_GetAFValue() returned -1): " + _no_vsock_hint())
    kind = socket.SOCK_STREAM if type == -1 else type
    if proto in _IP_PROTOCOLS or proto == -1:
        proto = 0
    try:
        return VsockSocket(af, kind, proto)
    except OSError as exc:
        raise _explain_create(exc, af, kind, proto) from None



# ---------------------------------------------------------------------------------------------------
# Hybrid vsock: the host side of Firecracker and Cloud Hypervisor, over the VMM's Unix sockets
# ---------------------------------------------------------------------------------------------------
# Firecracker and Cloud Hypervisor give the host no AF_VSOCK: the VMM exposes the guest's vsock as Unix
# sockets (their docs/vsock.md). A host connects to the VMM's uds_path, sends "CONNECT <port>\n" and
# reads "OK <host_side_port>\n"; after that the stream is the guest's vsock port. A guest connecting to
# the host's port P reaches whatever listens on "<uds_path>_<P>", with no preamble. A VsockSocket whose
# peer is unix:PATH (from VSOCK_CID_MAP, or written so in the source) does exactly that: the socket's
# file descriptor is swapped for the Unix one (dup2), so the program's socket object stays the same.

HYBRID_PREFIX = "unix:"
HYBRID_TIMEOUT_ENV = "VSOCK_HYBRID_TIMEOUT"
_DEFAULT_HYBRID_TIMEOUT = 5.0  # seconds for the VMM's reply when the socket itself has no timeout
_MAX_REPLY = 64  # "OK 4294967295\n" is 14 bytes: anything much longer is not the VMM speaking


class VsockHybridHost(str):
    """A peer reached through a VMM's hybrid-vsock Unix socket: the host as the program spelled it (a
    string, so TCP/IP code reads it as a host), with `.path` the VMM's uds_path and `.guest` the name
    accepted connections report for the guest (the CID map's name, or "unix:PATH")."""

    def __new__(cls, host, path, guest=None):
        self = str.__new__(cls, host)
        self.path = path
        self.guest = guest or HYBRID_PREFIX + path
        return self

    def __reduce__(self):
        return (VsockHybridHost, (str(self), self.path, self.guest))


def _hybrid_path(value):
    if isinstance(value, str) and value[:5].lower() == HYBRID_PREFIX and len(value) > 5:
        return value[5:]
    return None


def _hybrid_target(host):
    """The VsockHybridHost for `host` when it names a hybrid-vsock socket: "unix:PATH" itself, or a
    name or CID that VSOCK_CID_MAP maps to unix:PATH; with a "*=unix:PATH" entry, every host the map
    does not list (names, CIDs, loopback and wildcard alike: the process is the host side of one VM).
    None otherwise."""
    if isinstance(host, VsockHybridHost):
        return host
    if isinstance(host, bytes):
        host = host.decode("utf-8", "replace")
    if isinstance(host, str) and host[:5].lower() == HYBRID_PREFIX:
        path = _hybrid_path(host.strip())
        if path is not None:
            return VsockHybridHost(host, path)
    mapping = _cid_map()
    if not _parsed_map[2]:
        return None  # no hybrid entries: the common case, decided without looking further
    if isinstance(host, VsockHost):
        name = str(host.cid)
    elif isinstance(host, int) and not isinstance(host, bool):
        name = str(host)
    elif isinstance(host, str):
        name = host.strip().lower()
    else:
        return None
    value = mapping.get(name)
    if value is None:
        number = _as_int(name)
        if number is not None:
            value = mapping.get(str(number))
    if value is None:
        value, name = mapping.get("*"), None
    path = _hybrid_path(value)
    if path is None:
        return None
    shown = host if isinstance(host, str) else str(VsockHost(host))  # "0.0.0.0" for VMADDR_CID_ANY
    return VsockHybridHost(shown, path, name)


def _hybrid_in_use():
    _cid_map()
    return _parsed_map[2]


def _hybrid_only():
    """Whether this process reaches its peers through hybrid-vsock sockets only ("*=unix:PATH" in
    VSOCK_CID_MAP): then a host without AF_VSOCK (Firecracker's, Cloud Hypervisor's) still makes
    VsockSockets, over AF_UNIX, for connect() and bind() to give the VMM's sockets."""
    return _hybrid_path(_cid_map().get("*")) is not None


def _hybrid_state(sock):
    """The _Hybrid of a socket swapped onto a VMM's Unix socket, else None (one lookup, skipped while
    the process has none)."""
    return _hybrid_sockets.get(sock) if _hybrid_sockets else None


def _refuse_non_socket_level(sock, level, option):
    """A hybrid socket answers options above SOL_SOCKET as a vsock socket does (ENOPROTOOPT), not as
    the Unix socket under it would (EOPNOTSUPP, which http.client does not tolerate)."""
    if level != socket.SOL_SOCKET and _hybrid_state(sock) is not None:
        raise _explain_option(OSError(errno.ENOPROTOOPT, os.strerror(errno.ENOPROTOOPT)), level, option)


def _is_hybrid(address):
    return type(address) is tuple and len(address) >= 2 and type(address[0]) is VsockHybridHost


def _hybrid_timeout():
    text = os.environ.get(HYBRID_TIMEOUT_ENV, "")
    try:
        value = float(text) if text.strip() else _DEFAULT_HYBRID_TIMEOUT
    except ValueError:
        _warn_once("hybrid-timeout", "%s=%r is not a number of seconds; using %g" % (HYBRID_TIMEOUT_ENV, text,
                                                                                   _DEFAULT_HYBRID_TIMEOUT))
        return _DEFAULT_HYBRID_TIMEOUT
    return value if value > 0 else _DEFAULT_HYBRID_TIMEOUT


_Hybrid = __import__("collections").namedtuple("_Hybrid", "sockname peername listening")
_hybrid_sockets = __import__("weakref").WeakKeyDictionary()  # VsockSocket -> _Hybrid, for hybrid ones only


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
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
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
        # adapters below do it without blocking the loop).
        unix, host_port = _hybrid_dial(peer, port, timeout if timeout else _hybrid_timeout())
    except OSError as exc:
        if report_errno:
            return exc.errno
        raise
    _adopt(sock, unix)
    _hybrid_sockets[sock] = _Hybrid((VsockHost(VMADDR_CID_HOST), host_port), (peer, port), None)
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
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
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
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        unix.bind(path)
    except BaseException:
        unix.close()
        raise
    st = os.lstat(path)
    _adopt(sock, unix)
    _hybrid_sockets[sock] = _Hybrid((peer, port), None, (path, (st.st_dev, st.st_ino)))


def _hybrid_accept(sock, listener):
    fd, _ = _CSocket._accept(sock)  # a Unix peer's address says nothing: the guest is the VMM's
    made = type(sock)(sock.family, sock.type, sock.proto, fileno=fd)
    if socket.getdefaulttimeout() is None and sock.gettimeout():
        made.setblocking(True)
    bound_host, port = listener.sockname
    guest = VsockHybridHost(bound_host.guest, bound_host.path, bound_host.guest)
    _hybrid_sockets[made] = _Hybrid(listener.sockname, (guest, 0), None)
    return made, (guest, 0)


async def _hybrid_dial_async(loop, peer, port):
    """_hybrid_dial() for asyncio: the same handshake, awaited."""
    import asyncio

    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
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
    made = VsockSocket(socket.AF_UNIX, socket.SOCK_STREAM, 0, fileno=unix.detach())
    made.setblocking(False)
    _hybrid_sockets[made] = _Hybrid((VsockHost(VMADDR_CID_HOST), host_port), (peer, port), None)
    return made


def vsock_family(family):
    """The vsock family for an IP family (AF_INET, AF_INET6), any other family as it is: for a family
    computed at run time that reaches a raw C call (libc.socket(family, ...))."""
    return VMCISock_GetAFValue() if family in _IP_FAMILIES else family


def vsock_ip_family(family):
    """AF_INET for the vsock family, any other family as it is. Ported family checks compare through
    it: a vsock socket takes the program's IPv4 path (`if sock.family == AF_INET: ...`)."""
    af = VMCISock_GetAFValue()
    return socket.AF_INET if af != -1 and family == af else family


class _SocketModule(types.ModuleType):
    """A stand-in for the socket module, for code that takes the module as a value
    (`socket_module=socket`): socket(), create_connection(), create_server(), getaddrinfo(),
    gethostbyname() and gethostbyname_ex() are the vsock versions (socket() makes AF_INET and
    AF_INET6 sockets vsock); every other name is the socket module's own."""

    def __getattr__(self, name):
        return getattr(socket, name)

    def __dir__(self):
        return sorted(set(dir(socket)) | set(self.__dict__))


def vsock_gethostbyname(host):
    """socket.gethostbyname() for vsock: the host's CID as a string of digits, which connect() and
    bind() of a vsock socket read as that CID again."""
    return str(vsock_cid(host))


def vsock_gethostbyname_ex(host):
    """socket.gethostbyname_ex() for vsock: (host, [], [the CID as a string of digits])."""
    return (str(host), [], [vsock_gethostbyname(host)])


# ---------------------------------------------------------------------------------------------------
# One runtime per process: the newest copy registered serves every copy's public functions
# ---------------------------------------------------------------------------------------------------


_ENTRY = (VSOCKPORT_RUNTIME_VERSION, _THIS)  # what this copy registers
_registered = socket.__dict__.get  # the registry's one lookup, bound once


def _serving():
    """The namespace of the copy that serves this process: the newest registered on the socket
    module; this copy registers when it is newer (so registering twice changes nothing)."""
    entry = _registered(_REGISTRY)
    if entry is None or entry[0] < VSOCKPORT_RUNTIME_VERSION:
        setattr(socket, _REGISTRY, _ENTRY)
        return _THIS
    return entry[1]


def _public(function):
    """`function`, served by the newest runtime copy of the process when that is another copy."""
    name = function.__name__
    if function.__code__.co_flags & 0x80:  # CO_COROUTINE: an async def (inspect costs 12 ms to import)

        @functools.wraps(function)
        async def served_async(*args, **kwargs):
            if _registered(_REGISTRY) is _ENTRY:
                return await function(*args, **kwargs)
            serving = _serving()
            if serving is _THIS:
                return await function(*args, **kwargs)
            return await serving[name](*args, **kwargs)

        return served_async

    @functools.wraps(function)
    def served(*args, **kwargs):
        if _registered(_REGISTRY) is _ENTRY:  # this copy serves: the path taken on every call
            return function(*args, **kwargs)
        serving = _serving()
        if serving is _THIS:
            return function(*args, **kwargs)
        return serving[name](*args, **kwargs)

    return served


def vsock_runtime_version():
    """The version of the runtime copy that serves this process."""
    return _serving()["VSOCKPORT_RUNTIME_VERSION"]


def vsock_backend():
    """'native' when CPython's own socket calls handle vsock addresses, 'ctypes' when libc does."""
    return _backend_name()


_VSOCK_MISSING_OPTION = (errno.ENOPROTOOPT, errno.EOPNOTSUPP, getattr(errno, "ENOTSUP", errno.EOPNOTSUPP))


def _is_vsock(sock):
    """Whether `sock` (a socket, asyncio's TransportSocket, an SSLSocket, a wrapper) is a vsock socket."""
    if isinstance(sock, VsockSocket):
        return True
    family = getattr(sock, "family", None)
    try:
        return family is not None and int(family) == VMCISock_GetAFValue() != -1
    except (TypeError, ValueError):
        return False


def setsockopt_or_skip(sock, *args):
    """sock.setsockopt(*args), except that options vsock does not have (TCP_NODELAY, TCP_KEEP*,
    IPV6_V6ONLY, SO_REUSEPORT) are skipped on vsock sockets instead of failing. `sock` may be any
    object with a setsockopt method (asyncio's TransportSocket, an SSLSocket, zmq's sockets); only
    vsock ones are treated differently. Returns True when the option was set."""
    try:
        sock.setsockopt(*args)
    except OSError as exc:
        if exc.errno in _VSOCK_MISSING_OPTION and _is_vsock(sock):
            return False
        raise
    return True

# ---------------------------------------------------------------------------------------------------
# Errors that explain themselves
# ---------------------------------------------------------------------------------------------------

_TYPE_NAMES = {getattr(socket, n): n for n in ("SOCK_STREAM", "SOCK_DGRAM", "SOCK_SEQPACKET", "SOCK_RAW") if hasattr(socket, n)}


def _option_name(level, option):
    prefixes = {
        getattr(socket, "IPPROTO_TCP", -1): ("TCP_",),
        getattr(socket, "IPPROTO_IPV6", -1): ("IPV6_",),
        getattr(socket, "IPPROTO_IP", -1): ("IP_",),
        getattr(socket, "SOL_SOCKET", -1): ("SO_",),
    }.get(level, ())
    for name in sorted(dir(socket)):
        if name.startswith(prefixes) and getattr(socket, name) == option:
            return name
    return "option %d at level %d" % (option, level)


def _explained(exc, message):
    """Same class, same errno, a message that says what happened on vsock."""
    name = errno.errorcode.get(exc.errno, str(exc.errno))
    new = type(exc)(exc.errno, "vsock: %s [%s]" % (message, name))
    return new


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
    return exc


def _explain_connect(exc, address):
    cid, port = address if isinstance(address, tuple) and len(address) == 2 else (None, None)
    if exc.errno in (errno.ECONNRESET, errno.ECONNREFUSED):
        return _explained(exc, "nothing is listening on CID %s port %s (virtio transports report a closed "
                               "vsock port as a reset, not a refusal); start the server first or check the "
                               "CID and port" % (cid, port))
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


def _explain_option(exc, level, option):
    if exc.errno in (errno.ENOPROTOOPT, errno.EOPNOTSUPP, getattr(errno, "ENOTSUP", errno.EOPNOTSUPP)):
        return _explained(exc, "%s does not exist on vsock: TCP-level options (TCP_NODELAY, TCP_KEEP*) and "
                               "IPV6_V6ONLY fail with ENOPROTOOPT, SO_REUSEPORT with EOPNOTSUPP; drop the "
                               "call (vsock has no Nagle delay, and a vsock port cannot be shared)"
                          % _option_name(level, option))
    return exc


def _explain_listen(exc):
    if exc.errno == errno.EINVAL:
        return _explained(exc, "listen() needs bind() first on vsock: bind((VMADDR_CID_ANY, port)) "
                               "(no implicit ephemeral port as with TCP)")
    return exc

# ---------------------------------------------------------------------------------------------------
# Servers and clients of the standard library, over vsock
# ---------------------------------------------------------------------------------------------------

class VsockServerMixin:
    """Makes a socketserver server (TCPServer, HTTPServer, SimpleXMLRPCServer, WSGIServer, ...) serve
    vsock. server_bind() replaces the socket the server class made with a VsockSocket of the same
    type, so TCP-style (host, port) addresses bind, client_address is a (host string, port) pair as
    WSGI and logging code expect, and there is no SO_REUSEPORT. The class made its socket with
    `address_family`, AF_INET unless a subclass says otherwise: code that reads it takes its IP path."""

    allow_reuse_port = False

    def __init__(self, *args, **kwargs):
        # The stand-in socket socketserver makes here is this runtime's business (VSOCK_STRICT).
        super().__init__(*args, **kwargs)

    def server_bind(self):
        if not _is_vsock(self.socket):
            stand_in = self.socket
            self.socket = vsock_socket(VMCISock_GetAFValue(), stand_in.type)
            stand_in.close()
        super().server_bind()

    def finish_request(self, request, client_address):
        handler = self.RequestHandlerClass
        if isinstance(handler, type) and getattr(handler, "disable_nagle_algorithm", False):
            # StreamRequestHandler would set TCP_NODELAY (xmlrpc.server does): ENOPROTOOPT on vsock.
            handler = _nagle_free(handler)
        handler(request, client_address, self)


_nagle_free_handlers = {}


def _nagle_free(handler):
    made = _nagle_free_handlers.get(handler)
    if made is None:
        made = type(handler.__name__, (handler,), {"disable_nagle_algorithm": False, "__module__": handler.__module__})
        _nagle_free_handlers[handler] = made
    return made


_server_classes = {}


def vsock_server_class(cls):
    """A subclass of the socketserver-style class `cls` that serves vsock (see VsockServerMixin).
    Anything that is not a socketserver server is given back as it is, with a RuntimeWarning."""
    import socketserver

    if isinstance(cls, type) and issubclass(cls, VsockServerMixin):
        return cls
    if not (isinstance(cls, type) and issubclass(cls, socketserver.BaseServer)):
        _warn_once(("server", cls), "vsock_server_class(%r): not a socketserver server; left as it is" % (cls,))
        return cls
    made = _server_classes.get(cls)
    if made is None:
        made = type("Vsock" + cls.__name__, (VsockServerMixin, cls), {"__module__": cls.__module__})
        _server_classes[cls] = made
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
    http.client.HTTPConnection/HTTPSConnection, smtplib.SMTP/SMTP_SSL/LMTP, xmlrpc.client.ServerProxy
    (and subclasses). Hosts map to CIDs as in vsock_cid(). Any other class is given back as it is,
    with a RuntimeWarning."""
    made = _client_classes.get(cls)
    if made is not None:
        return made
    import http.client
    import smtplib
    import xmlrpc.client

    if not isinstance(cls, type):
        _warn_once(("client", cls), "vsock_client_class(%r): not a class; left as it is" % (cls,))
        return cls
    if issubclass(cls, http.client.HTTPConnection):

        def __init__(self, *args, **kwargs):
            cls.__init__(self, *args, **kwargs)
            self._create_connection = create_vsock_connection

        namespace = {"__init__": __init__}
    elif issubclass(cls, smtplib.SMTP):

        def _get_socket(self, host, port, timeout):
            sock = create_vsock_connection((host, port), timeout, self.source_address)
            if isinstance(self, smtplib.SMTP_SSL):
                sock = self.context.wrap_socket(sock, server_hostname=self._host)
            return sock

        namespace = {"_get_socket": _get_socket}
    elif issubclass(cls, xmlrpc.client.ServerProxy):

        def __init__(self, uri, transport=None, *args, **kwargs):
            if transport is None:
                secure = str(uri).lower().startswith("https:")
                transport = _xmlrpc_transport(secure)(use_datetime=kwargs.get("use_datetime", False),
                                                      use_builtin_types=kwargs.get("use_builtin_types", False))
            cls.__init__(self, uri, transport, *args, **kwargs)

        namespace = {"__init__": __init__}
    else:
        _warn_once(("client", cls), "vsock_client_class(%r): vsock_client_class() does not know how it connects; "
                   "left as it is" % (cls,))
        return cls
    namespace["__module__"] = cls.__module__
    made = type("Vsock" + cls.__name__, (cls,), namespace)
    _client_classes[cls] = made
    return made


def _xmlrpc_transport(secure):
    import http.client
    import xmlrpc.client

    base = xmlrpc.client.SafeTransport if secure else xmlrpc.client.Transport
    connection = http.client.HTTPSConnection if secure else http.client.HTTPConnection

    class VsockTransport(base):
        def make_connection(self, host):
            if self._connection and host == self._connection[0]:
                return self._connection[1]
            chost, self._extra_headers, x509 = self.get_host_info(host)
            if secure:
                conn = vsock_client_class(connection)(chost, None, context=self.context, **(x509 or {}))
            else:
                conn = vsock_client_class(connection)(chost)
            self._connection = host, conn
            return conn

    return VsockTransport


def vsock_urlopen(url, data=None, timeout=_GLOBAL_DEFAULT_TIMEOUT, *, context=None):
    """urllib.request.urlopen() for http:// and https:// URLs whose host is a CID or a name that
    vsock_cid() knows (localhost, VSOCK_CID_MAP)."""
    import http.client
    import urllib.request

    class VsockHTTPHandler(urllib.request.HTTPHandler):
        def http_open(self, req):
            return self.do_open(vsock_client_class(http.client.HTTPConnection), req)

    class VsockHTTPSHandler(urllib.request.HTTPSHandler):
        def https_open(self, req):
            return self.do_open(vsock_client_class(http.client.HTTPSConnection), req, context=context)

    return urllib.request.build_opener(VsockHTTPHandler, VsockHTTPSHandler).open(url, data, timeout)


# ---------------------------------------------------------------------------------------------------
# asyncio: the same calls, on vsock sockets made here (asyncio accepts sock=)
# ---------------------------------------------------------------------------------------------------

# ---------------------------------------------------------------------------------------------------
# asyncio: the same calls, on vsock sockets made here (asyncio accepts sock=)
# ---------------------------------------------------------------------------------------------------

def _server_socket(host, port, backlog=100):
    if isinstance(host, (list, tuple)):
        host = host[0] if host else None
    sock = create_vsock_server(("" if host is None else host, port or 0), backlog=backlog)
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
    arrived inside **kwargs is as good as one written out)."""
    return kwargs.get("sock") is not None or kwargs.get("path") is not None


def _without(kwargs, names):
    return {k: v for k, v in kwargs.items() if k not in names}


def _tls_name(kwargs, host):
    if kwargs.get("ssl") and "server_hostname" not in kwargs:
        kwargs["server_hostname"] = str(host)
    return kwargs


async def vsock_open_connection(host=None, port=None, *, local_addr=None, **kwargs):
    """asyncio.open_connection() over vsock."""
    import asyncio

    if _has_own_endpoint(kwargs):
        return await asyncio.open_connection(host, port, local_addr=local_addr, **kwargs)
    sock = await _client_socket(asyncio.get_running_loop(), host, port, local_addr)
    return await asyncio.open_connection(sock=sock, **_tls_name(_without(kwargs, _IP_ONLY_CONNECT), host))


async def vsock_start_server(client_connected_cb, host=None, port=None, *, backlog=100, **kwargs):
    """asyncio.start_server() over vsock."""
    import asyncio

    if _has_own_endpoint(kwargs):
        return await asyncio.start_server(client_connected_cb, host, port, backlog=backlog, **kwargs)
    return await asyncio.start_server(client_connected_cb, sock=_server_socket(host, port, backlog),
                                      **_without(kwargs, _IP_ONLY_SERVE))


async def vsock_loop_create_connection(loop, protocol_factory, host=None, port=None, *, local_addr=None, **kwargs):
    """loop.create_connection() over vsock."""
    if _has_own_endpoint(kwargs):
        return await loop.create_connection(protocol_factory, host, port, local_addr=local_addr, **kwargs)
    sock = await _client_socket(loop, host, port, local_addr)
    return await loop.create_connection(protocol_factory, sock=sock, **_tls_name(_without(kwargs, _IP_ONLY_CONNECT), host))


async def vsock_loop_create_server(loop, protocol_factory, host=None, port=None, *, backlog=100, **kwargs):
    """loop.create_server() over vsock."""
    if _has_own_endpoint(kwargs):
        return await loop.create_server(protocol_factory, host, port, backlog=backlog, **kwargs)
    return await loop.create_server(protocol_factory, sock=_server_socket(host, port, backlog),
                                    **_without(kwargs, _IP_ONLY_SERVE))


async def vsock_loop_getaddrinfo(loop, host, port, *, family=0, type=0, proto=0, flags=0):
    """loop.getaddrinfo() over vsock: the runtime's getaddrinfo, which needs no resolver thread."""
    return getaddrinfo(host, port, family, type, proto, flags)


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

# ---------------------------------------------------------------------------------------------------
# vsock-only socket calls, create_connection and create_server
# ---------------------------------------------------------------------------------------------------

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
    if type(cid) is VsockHybridHost:
        return sock.connect((cid, port))  # the VMM routes: no svm_flags to give
    timeout = _apply_connect_timeout(sock)
    try:
        _libc_connect(sock, (cid, port), flags)
    except OSError as exc:
        if timeout:
            exc._vsock_timeout = timeout
        raise _explain_connect(exc, (cid, port)) from None


def create_vsock_connection(address, timeout=_GLOBAL_DEFAULT_TIMEOUT, source_address=None, *, all_errors=False):
    """vsock version of socket.create_connection(): connect a stream socket to (host-or-CID, port).

    `timeout` bounds the connect (it also becomes the vsock connect timeout) and stays on the socket;
    `source_address` (host, port) is bound first, port 0 meaning any. `all_errors` is accepted for
    compatibility: vsock has one address per host, so there is only ever one error.
    """
    cid, port = vsock_address(address)
    sock = vsock_socket(VMCISock_GetAFValue(), socket.SOCK_STREAM)
    try:
        if timeout is not _GLOBAL_DEFAULT_TIMEOUT:
            sock.settimeout(timeout)
        if source_address:
            sock.bind(vsock_address(source_address, bind=True))
        sock.connect((cid, port))
        return sock
    except BaseException:
        sock.close()
        raise


def create_vsock_server(address, *, family=None, backlog=None, reuse_port=False, dualstack_ipv6=False):
    """vsock version of socket.create_server(): a listening stream socket on (host-or-CID, port).

    A wildcard or loopback host binds VMADDR_CID_ANY and port 0 means VMADDR_PORT_ANY. An IP `family`
    and `dualstack_ipv6` are accepted and ignored: vsock has one family. Any other family (AF_UNIX: a
    library's unix-socket branch that shares the call, as websockets' does) is served by
    socket.create_server() as before. `reuse_port` is ignored with a RuntimeWarning: vsock has no
    SO_REUSEPORT (EOPNOTSUPP), so a second server on the same port fails with EADDRINUSE instead of
    sharing connections; there is no TIME_WAIT to wait out either.
    """
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


# ---------------------------------------------------------------------------------------------------
# Strict mode (VSOCK_STRICT): TCP/IP used where the port should have put vsock raises, or warns
# ---------------------------------------------------------------------------------------------------


class VsockStrictError(RuntimeError):
    """VSOCK_STRICT=1: the process used TCP/IP (an AF_INET/AF_INET6 socket, an IP name lookup) outside
    the places vsockport kept on TCP/IP on purpose. The message names the file and line."""


_STRICT_EVENTS = frozenset(["socket.__new__", "socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex"])


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


_LISTENS = r"\b(?:bind|create_server)\s*\("
_CONNECTS = r"\b(?:connect|connect_ex|create_connection)\s*\("
_LOOPBACK_LITERAL = r"""['"](?:127\.\d+\.\d+\.\d+|localhost|::1)['"]"""
_local_pairs = {}


def _is_local_pair(code):
    """VS013's test, on a function's source: it binds and connects, to a loopback literal or to an
    address read from getsockname() (a socketpair() emulation)."""
    if code.co_name == "<module>":
        return False
    known = _local_pairs.get(code)
    if known is None:
        import inspect
        import re

        try:
            text = "".join(inspect.getsourcelines(code)[0])
        except (OSError, TypeError):
            text = ""
        known = _local_pairs[code] = bool(re.search(_LISTENS, text) and re.search(_CONNECTS, text)
                                          and (re.search(_LOOPBACK_LITERAL, text) or "getsockname" in text))
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
                return  # made by the runtime itself (a server's stand-in socket)
            if _is_local_pair(frame.f_code):
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

# ---------------------------------------------------------------------------------------------------
# Diagnosis: what this machine offers (never connects; binds only to an ephemeral port)
# ---------------------------------------------------------------------------------------------------

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
            found[name] = "built in" if loaded is None or name not in loaded else "loaded"
    return found


def _try(function, explain=True):
    try:
        return function(), None
    except OSError as exc:
        detail = (exc.strerror or str(exc)) if explain else os.strerror(exc.errno)
        return None, "%s: %s" % (errno.errorcode.get(exc.errno, exc.errno), detail)


def vsock_diagnose():
    """A dict describing this machine's vsock support, for `python vsock_runtime.py` and `vsockport doctor`.

    Socket types are probed by creating sockets and loopback by binding CID 1 to an ephemeral port;
    nothing ever connects.
    """
    import platform

    af = VMCISock_GetAFValue()
    report = {
        "runtime_version": VSOCKPORT_RUNTIME_VERSION,
        "python": {
            "version": platform.python_version(),
            "implementation": platform.python_implementation(),
            "platform": sys.platform,
            "af_vsock": getattr(socket, "AF_VSOCK", None),
        },
        "kernel": platform.release(),
        "backend": _backend_name(),
        "af_value": af,
        "problems": [],
    }
    cid, cid_error = _try(vsock_local_cid)
    report["local_cid"] = cid
    report["local_cid_error"] = cid_error
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
    types = {}
    for name in ("SOCK_STREAM", "SOCK_DGRAM", "SOCK_SEQPACKET"):
        kind = getattr(socket, name, None)
        if kind is None or af == -1:
            types[name] = "not probed"
            continue
        made, error = _try(lambda: socket.socket(af, kind), explain=False)
        if made is not None:
            made.close()
        types[name] = "ok" if error is None else error
    report["socket_types"] = types
    report["loopback"] = _loopback_available() if af != -1 and types.get("SOCK_STREAM") == "ok" else None
    report["hybrid"] = _hybrid_peers()

    problems = report["problems"]
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
    if types.get("SOCK_DGRAM") not in (None, "ok", "not probed"):
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
    for name, value in sorted(_cid_map().items()):
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
    print("vsock runtime %s, backend %s" % (report["runtime_version"], report["backend"]))
    print("python         %s %s on %s, socket.AF_VSOCK=%s" % (python["implementation"], python["version"],
                                                                python["platform"], python["af_vsock"]))
    print("kernel         %s" % report["kernel"])
    print("address family %s" % report["af_value"])
    print("local CID      %s" % (report["local_cid"] if report["local_cid"] is not None else report["local_cid_error"]))
    device = report["device"]
    if device.get("exists"):
        print("device         %s mode %s uid %s, read %s, write %s" % (device["path"], device["mode"], device["uid"],
                                                                       device["readable"], device["writable"]))
    else:
        print("device         %s missing" % device["path"])
    for name, state in sorted(report["transports"].items()):
        print("module         %s (%s)" % (name, state))
    for name, state in report["socket_types"].items():
        print("%-14s %s" % (name, state))
    print("loopback CID 1 %s" % {True: "works", False: "not available", None: "not probed"}[report["loopback"]])
    for problem in report["problems"]:
        print("problem:       %s" % problem)


# ---------------------------------------------------------------------------------------------------
# Names ported code imports: each public function is served by the newest copy in the process
# ---------------------------------------------------------------------------------------------------

for _name in __all__:
    _value = globals().get(_name)
    if isinstance(_value, types.FunctionType):
        globals()[_name] = _public(_value)
del _name, _value

vsock_socket_module = _SocketModule("vsock_socket_module", _SocketModule.__doc__)
vsock_socket_module.__dict__.update(
    socket=vsock_socket, create_connection=create_vsock_connection, create_server=create_vsock_server,
    getaddrinfo=getaddrinfo, gethostbyname=vsock_gethostbyname, gethostbyname_ex=vsock_gethostbyname_ex,
)
cid = vsock_cid
vsock_getaddrinfo = getaddrinfo
create_connection = create_vsock_connection
create_server = create_vsock_server

if _strict_setting():  # the one thing importing does, and only when asked: watch the whole process
    _install_strict(_strict_setting())

if __name__ == "__main__":
    if sys.argv[1:] == ["--json"]:
        import json

        print(json.dumps(vsock_diagnose(), indent=2, sort_keys=True))
    else:
        _print_report(vsock_diagnose())
