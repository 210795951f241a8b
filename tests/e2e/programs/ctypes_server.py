"""A server written against libc with a ctypes sockaddr_in; prints its port, echoes one message."""
import ctypes
import ctypes.util
import socket
import sys

libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


class sockaddr_in(ctypes.Structure):
    _fields_ = [
        ("sin_family", ctypes.c_ushort),
        ("sin_port", ctypes.c_ushort),
        ("sin_addr", ctypes.c_uint32),
        ("sin_zero", ctypes.c_char * 8),
    ]


def check(result, what):
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {__import__('os').strerror(err)}")
    return result


fd = check(libc.socket(socket.AF_INET, socket.SOCK_STREAM, 0), "socket")
addr = sockaddr_in()
addr.sin_family = socket.AF_INET
addr.sin_port = socket.htons(int(sys.argv[1]))
addr.sin_addr = socket.htonl(socket.INADDR_ANY)
check(libc.bind(fd, ctypes.byref(addr), ctypes.sizeof(addr)), "bind")
check(libc.listen(fd, 1), "listen")
bound = sockaddr_in()
size = ctypes.c_uint32(ctypes.sizeof(sockaddr_in))
check(libc.getsockname(fd, ctypes.byref(bound), ctypes.byref(size)), "getsockname")
print("port", socket.ntohs(bound.sin_port), flush=True)
conn = check(libc.accept(fd, None, None), "accept")
buf = ctypes.create_string_buffer(1024)
n = check(libc.recv(conn, buf, 1024, 0), "recv")
check(libc.send(conn, buf, n, 0), "send")
libc.close(conn)
libc.close(fd)
