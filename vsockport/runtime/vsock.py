"""vSockets runtime, added to this project by vsockport (https://pypi.org/project/vsockport/).

This single stdlib-only module lets a program ported from TCP/IP talk over vSockets: VMware VMCI sockets
and Linux AF_VSOCK (KVM/QEMU, Firecracker, Cloud Hypervisor, AWS Nitro Enclaves). It does not need
vsockport installed. vsockport replaces this file when a newer version is available; edits made here
are lost then.

Public API
    afVMCI-style family:  VMCISock_GetAFValue(), VMCISock_ReleaseAFValueFd(), VMCISock_GetLocalCID()
    constants:            VMADDR_CID_ANY, VMADDR_PORT_ANY, VMADDR_CID_HYPERVISOR, VMADDR_CID_LOCAL,
                          VMADDR_CID_HOST, VMADDR_FLAG_TO_HOST
    addresses:            vsock_cid(host), vsock_bind_cid(host), vsock_address(address, bind=False)
    sockets:              create_vsock_connection(), create_vsock_server()
    ctypes:               sockaddr_vm

Host names have no meaning on vsock: a peer is a context ID (CID). Names are mapped to CIDs at run time
from the environment variable VSOCK_CID_MAP, a comma-separated list of NAME=CID pairs, for example
VSOCK_CID_MAP="db.internal=3,metrics=17".
"""

import ctypes
import errno
import os
import socket
import sys

__all__ = [
    "VMADDR_CID_ANY",
    "VMADDR_PORT_ANY",
    "VMADDR_CID_HYPERVISOR",
    "VMADDR_CID_LOCAL",
    "VMADDR_CID_HOST",
    "VMADDR_FLAG_TO_HOST",
    "VMCISock_GetAFValue",
    "VMCISock_ReleaseAFValueFd",
    "VMCISock_GetLocalCID",
    "VsockAddressError",
    "sockaddr_vm",
    "vsock_cid",
    "vsock_bind_cid",
    "vsock_address",
    "create_vsock_connection",
    "create_vsock_server",
]

# The line below is read by vsockport to decide whether this file needs an update.
VSOCKPORT_RUNTIME_VERSION = 1

VMADDR_CID_ANY = 0xFFFFFFFF
VMADDR_PORT_ANY = 0xFFFFFFFF
VMADDR_CID_HYPERVISOR = 0
VMADDR_CID_LOCAL = 1
VMADDR_CID_HOST = 2
VMADDR_FLAG_TO_HOST = 0x01

CID_MAP_ENV = "VSOCK_CID_MAP"

_AF_VSOCK_LINUX = 40
_DEV_VSOCK = "/dev/vsock"
_IOCTL_GET_AF_VALUE = 0x7B8  # legacy VMware driver only; upstream kernels answer ENOTTY
_IOCTL_GET_LOCAL_CID = 0x7B9

_WILDCARD_HOSTS = frozenset(["", "0.0.0.0", "::", "*", "<any>", "<broadcast>"])
_LOOPBACK_HOSTS = frozenset(["localhost", "localhost.localdomain", "ip6-localhost", "127.0.0.1", "::1"])


class sockaddr_vm(ctypes.Structure):
    """Linux `struct sockaddr_vm` (16 bytes). Port and CID are in host byte order: no htons/htonl."""

    _fields_ = [
        ("svm_family", ctypes.c_ushort),
        ("svm_reserved1", ctypes.c_ushort),
        ("svm_port", ctypes.c_uint),
        ("svm_cid", ctypes.c_uint),
        ("svm_flags", ctypes.c_ubyte),
        ("svm_zero", ctypes.c_ubyte * 3),
    ]


class VsockAddressError(socket.gaierror):
    """A host that has no vsock CID. A gaierror, so code that handles failed name lookups still works."""


# The legacy driver unregisters the family when the fd that asked for it is closed, so it is kept open.
_af_value_fd = None
_af_value = None


def _probe_stream_family(family):
    try:
        probe = socket.socket(family, socket.SOCK_STREAM)
    except OSError as exc:
        return exc.errno
    probe.close()
    return 0


def _legacy_af_value():
    """VMware's out-of-tree driver: ioctl GET_AF_VALUE on /dev/vsock, fd kept open."""
    global _af_value_fd
    import fcntl
    import struct

    try:
        fd = os.open(_DEV_VSOCK, os.O_RDWR)
    except OSError:
        return -1
    try:
        buf = fcntl.ioctl(fd, _IOCTL_GET_AF_VALUE, struct.pack("I", 0))
    except OSError:
        os.close(fd)
        return -1
    _af_value_fd = fd
    return struct.unpack("I", buf)[0]


def VMCISock_GetAFValue():
    """Return the vSockets address family number, or -1 if this system has none.

    Linux probes a stream socket of family 40 first: upstream virtio kernels support AF_VSOCK streams
    but neither datagrams nor the legacy ioctl that VMware's own implementation relies on.
    """
    global _af_value
    if _af_value is not None:
        return _af_value
    if sys.platform.startswith("linux"):
        err = _probe_stream_family(_AF_VSOCK_LINUX)
        if err in (errno.EAFNOSUPPORT, errno.EINVAL):
            value = _legacy_af_value()
        else:
            # Created, or refused for reasons (EMFILE, EPERM...) that still mean the family exists.
            value = _AF_VSOCK_LINUX
    else:
        value = getattr(socket, "AF_VSOCK", -1)
    _af_value = value
    return value


def VMCISock_ReleaseAFValueFd():
    """Close the fd kept open by the legacy /dev/vsock address-family lookup, if any."""
    global _af_value_fd, _af_value
    if _af_value_fd is not None:
        os.close(_af_value_fd)
        _af_value_fd = None
        _af_value = None


def VMCISock_GetLocalCID():
    """Return this machine's CID (ioctl IOCTL_VM_SOCKETS_GET_LOCAL_CID on /dev/vsock), or -1."""
    import fcntl
    import struct

    try:
        fd = os.open(_DEV_VSOCK, os.O_RDONLY)
    except OSError:
        return -1
    try:
        buf = fcntl.ioctl(fd, _IOCTL_GET_LOCAL_CID, struct.pack("I", 0))
    except OSError:
        return -1
    finally:
        os.close(fd)
    return struct.unpack("I", buf)[0]


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


def _explain_connect_error(exc, cid, port):
    """The same exception class and errno, with a message that says what happened on vsock."""
    name = errno.errorcode.get(exc.errno, str(exc.errno))
    message = (
        "vsock: nothing is listening on CID %d port %d (%s: virtio transports report a closed vsock port "
        "as a reset, not a refusal); start the server first or check the CID and port" % (cid, port, name)
    )
    return type(exc)(exc.errno, message)


_GLOBAL_DEFAULT_TIMEOUT = getattr(socket, "_GLOBAL_DEFAULT_TIMEOUT", object())


def create_vsock_connection(address, timeout=_GLOBAL_DEFAULT_TIMEOUT, source_address=None, *, all_errors=False):
    """vsock version of socket.create_connection(): connect a stream socket to (host-or-CID, port)."""
    cid, port = vsock_address(address)
    sock = socket.socket(VMCISock_GetAFValue(), socket.SOCK_STREAM)
    try:
        if timeout is not _GLOBAL_DEFAULT_TIMEOUT:
            sock.settimeout(timeout)
        if source_address:
            sock.bind(vsock_address(source_address, bind=True))
        try:
            sock.connect((cid, port))
        except (ConnectionResetError, ConnectionRefusedError) as exc:
            raise _explain_connect_error(exc, cid, port) from None
        return sock
    except BaseException:
        sock.close()
        raise


def create_vsock_server(address, *, family=None, backlog=None, reuse_port=False, dualstack_ipv6=False):
    """vsock version of socket.create_server(): a listening stream socket on (host-or-CID, port).

    `family` and `dualstack_ipv6` are accepted for compatibility and ignored: vsock has one family.
    `reuse_port` is ignored too: vsock has no SO_REUSEPORT (EOPNOTSUPP) and no TIME_WAIT to wait out.
    """
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


cid = vsock_cid
create_connection = create_vsock_connection
create_server = create_vsock_server
