"""vSockets runtime, added to this project by vsockport (https://pypi.org/project/vsockport/).

This single stdlib-only module lets a program ported from TCP/IP talk over vSockets: VMware VMCI sockets
and Linux AF_VSOCK (KVM/QEMU, Firecracker, Cloud Hypervisor, AWS Nitro Enclaves). It does not need
vsockport installed. vsockport replaces this file when a newer version is available; edits made here
are lost then. Run `python vsock_runtime.py` (or `--json`) to see what this machine offers.

Public API
    family and CID:   VMCISock_GetAFValue(), VMCISock_ReleaseAFValueFd(), VMCISock_GetLocalCID(),
                      vsock_local_cid(), vsock_backend()
    constants:        VMADDR_CID_ANY, VMADDR_PORT_ANY, VMADDR_CID_HYPERVISOR, VMADDR_CID_LOCAL,
                      VMADDR_CID_HOST, VMADDR_FLAG_TO_HOST, SO_VM_SOCKETS_BUFFER_SIZE,
                      SO_VM_SOCKETS_BUFFER_MIN_SIZE, SO_VM_SOCKETS_BUFFER_MAX_SIZE,
                      SO_VM_SOCKETS_CONNECT_TIMEOUT
    addresses:        vsock_cid(host), vsock_bind_cid(host), vsock_address(address, bind=False),
                      getaddrinfo(host, port, family=0, type=0, proto=0, flags=0) (alias vsock_getaddrinfo)
    sockets:          create_vsock_connection(), create_vsock_server(), vsock_connect(sock, address, flags),
                      set_connect_timeout(sock, seconds), get_connect_timeout(sock)
    options:          setsockopt_or_skip(sock, level, option, value), setsockopt_or_skip(sock, *option)
    stdlib servers:   vsock_server_class(cls), VsockServerMixin, vsock_make_server()
    stdlib clients:   vsock_client_class(cls), vsock_urlopen()
    asyncio:          vsock_open_connection(), vsock_start_server(), vsock_loop_create_connection(loop, ...),
                      vsock_loop_create_server(loop, ...)
    diagnosis:        vsock_diagnose(), VsockAddressError
    ctypes:           sockaddr_vm

Host names have no meaning on vsock: a peer is a context ID (CID). Names are mapped to CIDs at run time
from the environment variable VSOCK_CID_MAP, a comma-separated list of NAME=CID pairs, for example
VSOCK_CID_MAP="db.internal=3,metrics=17".

Importing this module makes `socket.socket` vsock-aware. Sockets stay ordinary `socket.socket` objects
and send/recv are untouched, but for sockets of the vsock family:
  - errors keep their class and errno and say what they mean on vsock (a reset for a closed port,
    privileged ports, unbindable CIDs, TCP-only options, datagrams on virtio, no vsock at all);
  - a timeout set with settimeout() also becomes the kernel's vsock connect timeout (2 s by default);
  - setsockopt/getsockopt with a bytes value or buffer length go through libc (CPython passes a u64);
  - when CPython has no AF_VSOCK (Windows, macOS, some builds), or VSOCK_RUNTIME_BACKEND=ctypes is set,
    bind/connect/accept/getsockname/getpeername go through libc with `struct sockaddr_vm`.
Sockets of other families behave exactly as before.
"""

import ctypes
import errno
import os
import platform
import select
import socket
import struct
import sys
import time
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
    "sockaddr_vm",
    "vsock_backend",
    "vsock_local_cid",
    "vsock_cid",
    "vsock_bind_cid",
    "vsock_address",
    "getaddrinfo",
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
    "vsock_loop_create_connection",
    "vsock_loop_create_server",
    "vsock_getaddrinfo",
]

# The line below is read by vsockport to decide whether this file needs an update.
VSOCKPORT_RUNTIME_VERSION = 4

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


def _cid_map():
    mapping = {}
    for item in os.environ.get(CID_MAP_ENV, "").split(","):
        name, sep, value = item.strip().partition("=")
        if sep and name.strip():
            mapping[name.strip().lower()] = value.strip()
    return mapping


def _as_int(value):
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, (str, bytes)):
        text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
        text = text.strip()
        try:
            return int(text, 0)
        except ValueError:
            return None
    return None


def vsock_cid(host):
    """Map a TCP/IP-style host to a vsock CID for connecting.

    ints and numeric strings are CIDs; loopback names become VMADDR_CID_LOCAL; the wildcard becomes
    VMADDR_CID_ANY; other names are looked up in VSOCK_CID_MAP; anything else raises VsockAddressError.
    """
    number = _as_int(host)
    if number is not None:
        return number
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        raise TypeError("vsock host must be a CID (int) or a host name, not %s" % type(host).__name__)
    name = host.strip().lower()
    if name in _WILDCARD_HOSTS:
        return VMADDR_CID_ANY
    if name in _LOOPBACK_HOSTS or name.startswith("127."):
        return VMADDR_CID_LOCAL
    mapped = _cid_map().get(name)
    if mapped is not None:
        number = _as_int(mapped)
        if number is None:
            raise VsockAddressError(
                socket.EAI_NONAME, "%s maps %r to %r, which is not an integer CID" % (CID_MAP_ENV, host, mapped)
            )
        return number
    raise VsockAddressError(
        socket.EAI_NONAME,
        "vsock has no name resolution: cannot map host %r to a CID. Set %s='%s=<CID>' "
        "(comma-separated NAME=CID pairs) or pass the CID as an integer" % (host, CID_MAP_ENV, host),
    )


def vsock_bind_cid(host):
    """Map a TCP/IP-style host to a vsock CID for binding: wildcard and loopback both mean VMADDR_CID_ANY."""
    number = _as_int(host)
    if number is not None:
        return number
    name = host.decode("ascii", "replace") if isinstance(host, bytes) else host
    if isinstance(name, str):
        name = name.strip().lower()
        if name in _WILDCARD_HOSTS or name in _LOOPBACK_HOSTS or name.startswith("127."):
            return VMADDR_CID_ANY
    return vsock_cid(host)


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


def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
    """socket.getaddrinfo() for vsock: one entry per requested socket type, with a (cid, port) address.

    Works with the usual loops (`for af, socktype, proto, _, addr in getaddrinfo(...)`): any IP family
    asked for (AF_UNSPEC, AF_INET, AF_INET6) yields the vsock family. With AI_PASSIVE a None host is
    VMADDR_CID_ANY and port 0 is VMADDR_PORT_ANY; without it a None host is VMADDR_CID_LOCAL.
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
    canonname = str(host) if (flags & socket.AI_CANONNAME and host is not None) else ""
    if type == 0:
        types = [socket.SOCK_STREAM]
    else:
        types = [type]
    return [(af, kind, proto, canonname, (cid, vsock_port)) for kind in types]


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
    addr = sockaddr_vm()
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
    addr = sockaddr_vm()
    size = libc.length(ctypes.sizeof(addr))
    if function(sock.fileno(), ctypes.byref(addr), ctypes.byref(size)) != 0:
        raise libc.error()
    return (addr.svm_cid, addr.svm_port)


def _libc_accept(sock):
    """socket._accept() through libc: (fd, (cid, port)), honouring the listener's timeout."""
    libc = _get_libc()
    timeout = sock.gettimeout()
    while True:
        addr = sockaddr_vm()
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


def _choose_backend():
    wanted = os.environ.get(BACKEND_ENV, "auto").strip().lower() or "auto"
    if wanted not in ("auto", "native", "ctypes"):
        raise ValueError("%s must be auto, native or ctypes, not %r" % (BACKEND_ENV, wanted))
    native_ok = getattr(socket, "AF_VSOCK", None) is not None and VMCISock_GetAFValue() in (-1, socket.AF_VSOCK)
    if wanted == "native" and not native_ok:
        raise ValueError("%s=native, but this Python has no AF_VSOCK support for family %d"
                         % (BACKEND_ENV, VMCISock_GetAFValue()))
    if wanted == "ctypes" or not native_ok:
        return "ctypes"
    return "native"


def vsock_backend():
    """'native' when CPython's own socket calls handle vsock addresses, 'ctypes' when libc does."""
    return _backend


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


def _explain_create(exc, family, kind):
    kind_name = _TYPE_NAMES.get(kind & 0xF, str(kind))
    if exc.errno == errno.EAFNOSUPPORT or family == -1:
        return _explained(exc, _no_vsock_hint())
    if kind & 0xF == getattr(socket, "SOCK_DGRAM", 2) and exc.errno in (errno.ENODEV, errno.ESOCKTNOSUPPORT,
                                                                         errno.EPROTONOSUPPORT, errno.EOPNOTSUPP):
        return _explained(exc, "datagrams (SOCK_DGRAM) exist only on VMware's VMCI transport; "
                               "virtio (KVM, Firecracker, Nitro), Hyper-V and loopback transports carry "
                               "SOCK_STREAM only (and SOCK_SEQPACKET on Linux 5.14+)")
    if exc.errno in (errno.ENODEV, errno.ESOCKTNOSUPPORT, errno.EPROTONOSUPPORT):
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
# socket.socket integration: control-path methods only; send/recv stay CPython's C code
# ---------------------------------------------------------------------------------------------------

_NOT_GIVEN = object()
_c_family = socket.SocketType.__dict__["family"].__get__  # the C getter: an int, no enum conversion
_PATCHED = ("__init__", "bind", "connect", "connect_ex", "listen", "getsockname", "getpeername",
            "setsockopt", "getsockopt", "_accept")


def _originals():
    """socket.socket's own methods, kept on the class so reloading this module never wraps a wrapper."""
    kept = socket.socket.__dict__.get("_vsockport_originals")
    if kept is None:
        kept = {name: getattr(socket.socket, name) for name in _PATCHED}
        socket.socket._vsockport_originals = kept
    return kept


_original = _originals()


def _is_vsock(sock):
    return _c_family(sock) == _af_for_patch


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


def _socket_init(self, family=_NOT_GIVEN, type=-1, proto=-1, fileno=None):
    if family is _NOT_GIVEN:
        family = -1
    elif family == -1 and fileno is None and _af_for_patch == -1:
        # socket.socket(-1) silently means AF_INET: with afVMCI == -1 (no vsock) that would hide the cause.
        raise _explained(OSError(errno.EAFNOSUPPORT, ""), "this machine offers no vSockets address family "
                         "(VMCISock_GetAFValue() returned -1): " + _no_vsock_hint())
    try:
        _original["__init__"](self, family, type, proto, fileno)
    except OSError as exc:
        if fileno is None and (family == _af_for_patch or family == _AF_VSOCK_LINUX):
            raise _explain_create(exc, family, type if type != -1 else socket.SOCK_STREAM) from None
        raise


def _tcp_style(address):
    """(host-name, port[, flowinfo, scope_id]) as a TCP/IP library would pass it to a vsock socket."""
    return isinstance(address, tuple) and len(address) >= 2 and isinstance(address[0], (str, bytes))


def _socket_bind(self, address):
    if not _is_vsock(self):
        return _original["bind"](self, address)
    if _tcp_style(address):
        address = vsock_address(address, bind=True)  # e.g. socketserver binding ("", 8000)
    try:
        if _backend == "ctypes":
            return _libc_bind(self, address)
        return _original["bind"](self, address)
    except OSError as exc:
        raise _explain_bind(exc, address) from None


def _connect(self, address, report_errno):
    if _tcp_style(address):
        address = vsock_address(address)
    timeout = _apply_connect_timeout(self)
    try:
        if _backend == "ctypes":
            return _libc_connect(self, address, report_errno=report_errno)
        if report_errno:
            return _original["connect_ex"](self, address)
        return _original["connect"](self, address)
    except OSError as exc:
        if timeout:
            exc._vsock_timeout = timeout
        raise _explain_connect(exc, address) from None


def _socket_connect(self, address):
    if not _is_vsock(self):
        return _original["connect"](self, address)
    _connect(self, address, False)


def _socket_connect_ex(self, address):
    if not _is_vsock(self):
        return _original["connect_ex"](self, address)
    return _connect(self, address, True)


def _socket_listen(self, *backlog):
    if not _is_vsock(self):
        return _original["listen"](self, *backlog)
    try:
        return _original["listen"](self, *backlog)
    except OSError as exc:
        raise _explain_listen(exc) from None


def _socket_getsockname(self):
    if _backend == "ctypes" and _is_vsock(self):
        return _libc_name(self, _get_libc().getsockname)
    return _original["getsockname"](self)


def _socket_getpeername(self):
    if _backend == "ctypes" and _is_vsock(self):
        return _libc_name(self, _get_libc().getpeername)
    return _original["getpeername"](self)


def _socket_setsockopt(self, level, option, value, *optlen):
    if not _is_vsock(self):
        return _original["setsockopt"](self, level, option, value, *optlen)
    try:
        # CPython passes every vsock option as a u64: bytes values (timevals, SO_LINGER) need libc.
        if _backend == "ctypes" or not isinstance(value, int) or optlen:
            return _libc_setsockopt(self, level, option, value, *optlen)
        return _original["setsockopt"](self, level, option, value)
    except OSError as exc:
        raise _explain_option(exc, level, option) from None


def _socket_getsockopt(self, level, option, *buflen):
    if not _is_vsock(self):
        return _original["getsockopt"](self, level, option, *buflen)
    try:
        if _backend == "ctypes" or buflen:
            return _libc_getsockopt(self, level, option, *buflen)
        return _original["getsockopt"](self, level, option)
    except OSError as exc:
        raise _explain_option(exc, level, option) from None


def _socket_accept(self):
    if _backend == "ctypes" and _is_vsock(self):
        return _libc_accept(self)
    return _original["_accept"](self)


def _install():
    socket.getfqdn = _getfqdn
    for name in _PATCHED:
        wrapper = globals()["_socket_" + name.strip("_")]
        wrapper.__name__ = name
        wrapper.__qualname__ = "socket." + name
        wrapper.__doc__ = _original[name].__doc__
        setattr(socket.socket, name, wrapper)


_original_getfqdn = getattr(socket.getfqdn, "_vsockport_original", socket.getfqdn)


def _getfqdn(name=""):
    """socket.getfqdn() that accepts a CID: vsock addresses are ints, and http.server calls
    getfqdn(host) on the address it bound. A CID has no DNS name: this host's name or 'cid-N'."""
    if isinstance(name, int) and not isinstance(name, bool):
        if name in (VMADDR_CID_ANY, VMADDR_CID_LOCAL) or name == VMCISock_GetLocalCID():
            return socket.gethostname()
        return "cid-%d" % name
    return _original_getfqdn(name)


_getfqdn._vsockport_original = _original_getfqdn

_VSOCK_MISSING_OPTION = (errno.ENOPROTOOPT, errno.EOPNOTSUPP, getattr(errno, "ENOTSUP", errno.EOPNOTSUPP))


def setsockopt_or_skip(sock, *args):
    """sock.setsockopt(*args), except that options vsock does not have (TCP_NODELAY, TCP_KEEP*,
    IPV6_V6ONLY, SO_REUSEPORT) are skipped on vsock sockets instead of failing. Other sockets (and
    other objects with a setsockopt method) are unaffected. Returns True when the option was set."""
    try:
        sock.setsockopt(*args)
    except OSError as exc:
        if _c_family(sock) == _af_for_patch and exc.errno in _VSOCK_MISSING_OPTION:
            return False
        raise
    return True


# ---------------------------------------------------------------------------------------------------
# Servers and clients of the standard library, over vsock
# ---------------------------------------------------------------------------------------------------


class VsockServerMixin:
    """Makes a socketserver server (TCPServer, HTTPServer, SimpleXMLRPCServer, WSGIServer, ...) serve
    vsock: the vsock family, TCP-style (host, port) addresses mapped to (CID, port), no SO_REUSEPORT,
    and client_address as (str(cid), port), since WSGI and logging code expect a string host."""

    address_family = VMCISock_GetAFValue()
    allow_reuse_port = False

    def get_request(self):
        conn, address = super().get_request()
        if isinstance(address, tuple) and len(address) == 2 and isinstance(address[0], int):
            address = (str(address[0]), address[1])
        return conn, address

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
    """A subclass of the socketserver-style class `cls` that serves vsock (see VsockServerMixin)."""
    if isinstance(cls, type) and issubclass(cls, VsockServerMixin):
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
    (and subclasses). Hosts map to CIDs as in vsock_cid()."""
    made = _client_classes.get(cls)
    if made is not None:
        return made
    import http.client
    import smtplib
    import xmlrpc.client

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
        raise TypeError("vsock_client_class() does not know how %s.%s connects" % (cls.__module__, cls.__qualname__))
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


def _server_socket(host, port, backlog=100):
    if isinstance(host, (list, tuple)):
        host = host[0] if host else None
    sock = create_vsock_server(("" if host is None else host, port or 0), backlog=backlog)
    sock.setblocking(False)
    return sock


async def _client_socket(loop, host, port, local_addr=None):
    sock = socket.socket(VMCISock_GetAFValue(), socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        if local_addr:
            sock.bind(vsock_address(tuple(local_addr), bind=True))
        await loop.sock_connect(sock, vsock_address((host, port)))
        return sock
    except BaseException:
        sock.close()
        raise


_IP_ONLY_CONNECT = ("family", "proto", "flags", "happy_eyeballs_delay", "interleave", "all_errors")
_IP_ONLY_SERVE = ("family", "flags", "reuse_address", "reuse_port", "all_errors")


async def vsock_open_connection(host=None, port=None, *, local_addr=None, **kwargs):
    """asyncio.open_connection() over vsock."""
    import asyncio

    for name in _IP_ONLY_CONNECT:
        kwargs.pop(name, None)
    sock = await _client_socket(asyncio.get_running_loop(), host, port, local_addr)
    if kwargs.get("ssl") and "server_hostname" not in kwargs:
        kwargs["server_hostname"] = str(host)
    return await asyncio.open_connection(sock=sock, **kwargs)


async def vsock_start_server(client_connected_cb, host=None, port=None, *, backlog=100, **kwargs):
    """asyncio.start_server() over vsock."""
    import asyncio

    for name in _IP_ONLY_SERVE:
        kwargs.pop(name, None)
    return await asyncio.start_server(client_connected_cb, sock=_server_socket(host, port, backlog), **kwargs)


async def vsock_loop_create_connection(loop, protocol_factory, host=None, port=None, *, local_addr=None, **kwargs):
    """loop.create_connection() over vsock."""
    for name in _IP_ONLY_CONNECT:
        kwargs.pop(name, None)
    sock = await _client_socket(loop, host, port, local_addr)
    if kwargs.get("ssl") and "server_hostname" not in kwargs:
        kwargs["server_hostname"] = str(host)
    return await loop.create_connection(protocol_factory, sock=sock, **kwargs)


async def vsock_loop_create_server(loop, protocol_factory, host=None, port=None, *, backlog=100, **kwargs):
    """loop.create_server() over vsock."""
    for name in _IP_ONLY_SERVE:
        kwargs.pop(name, None)
    return await loop.create_server(protocol_factory, sock=_server_socket(host, port, backlog), **kwargs)


# ---------------------------------------------------------------------------------------------------
# vsock-only socket calls
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
    value = _timeval(whole, micro)
    libc = _get_libc()
    if libc.setsockopt(sock.fileno(), VMCISock_GetAFValue(), SO_VM_SOCKETS_CONNECT_TIMEOUT,
                       ctypes.byref(value), ctypes.sizeof(value)) != 0:
        raise libc.error()


def get_connect_timeout(sock):
    """The socket's vsock connect timeout in seconds, as the kernel reports it."""
    value = _timeval()
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
    sock = socket.socket(VMCISock_GetAFValue(), socket.SOCK_STREAM)
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
    if family is not None and family not in (socket.AF_INET, socket.AF_INET6, VMCISock_GetAFValue()):
        return socket.create_server(address, family=family, backlog=backlog, reuse_port=reuse_port,
                                    dualstack_ipv6=dualstack_ipv6)
    if reuse_port:
        warnings.warn("vsock has no SO_REUSEPORT: reuse_port=True is ignored, and a second server on the "
                      "same vsock port will fail with EADDRINUSE", RuntimeWarning, stacklevel=2)
    sock = socket.socket(VMCISock_GetAFValue(), socket.SOCK_STREAM)
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
        "backend": _backend,
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
    loopback = None
    if af != -1 and types.get("SOCK_STREAM") == "ok":
        probe = socket.socket(af, socket.SOCK_STREAM)
        try:
            _, error = _try(lambda: probe.bind((VMADDR_CID_LOCAL, VMADDR_PORT_ANY)), explain=False)
        finally:
            probe.close()
        loopback = error is None
    report["loopback"] = loopback

    problems = report["problems"]
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
    if loopback is False:
        problems.append("no loopback transport: CID 1 does not work here (load vsock_loopback to test locally)")
    return report


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


_backend = _choose_backend()
_af_for_patch = VMCISock_GetAFValue()
_install()

cid = vsock_cid
vsock_getaddrinfo = getaddrinfo
create_connection = create_vsock_connection
create_server = create_vsock_server

if __name__ == "__main__":
    if sys.argv[1:] == ["--json"]:
        import json

        print(json.dumps(vsock_diagnose(), indent=2, sort_keys=True))
    else:
        _print_report(vsock_diagnose())
