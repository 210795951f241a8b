"""A stand-in for the hybrid-vsock muxer of Firecracker and Cloud Hypervisor, for tests in the sandbox.

It is NOT the real VMM. Firecracker and Cloud Hypervisor need KVM, which the machines vsockport is
tested on do not offer; this program runs inside `vsockport sandbox` (whose guest has vsock_loopback,
CID 1) and implements, between Unix sockets and that guest's vsock, exactly the protocol of their
docs/vsock.md:

- host-initiated: a host program connects to the Unix socket UDS_PATH and sends `CONNECT <port>\\n`;
  the muxer connects to the guest's vsock port (CID 1 here) and answers `OK <host_side_port>\\n`, and
  from then on the two streams are one byte pipe. If nothing listens on that guest port, the muxer
  closes the Unix connection without answering, as the VMMs do. A line that is not `CONNECT <port>\\n`,
  or no newline within --line-timeout seconds, is closed without an answer too (the muxer survives it:
  the real VMMs' handling of a missing newline is the bug the runtime must never trigger).
- guest-initiated: for each --guest-to-host PORT, a guest connecting to vsock port PORT (CID 1 here,
  where the real VMM is the host's CID 2) reaches whatever listens on the Unix socket UDS_PATH_PORT,
  with no preamble. The muxer listens on that vsock port only while a live listener holds
  UDS_PATH_PORT (checked every 50 ms in /proc/net/unix), so a guest connecting while no host program
  listens is reset, as with the real VMMs; a listener gone within those 50 ms closes the guest's
  connection instead.

--ok-delay makes every OK late by that many seconds (the "slow OK" case). Usage:

    python -m vsockport.sandbox.muxer UDS_PATH [--guest-to-host PORT]... [--ok-delay S] [--line-timeout S]
"""

from __future__ import annotations

import argparse
import itertools
import os
import socket
import stat
import sys
import threading
import time

GUEST_CID = 1  # the sandbox guest reaches itself through vsock_loopback
MAX_LINE = 32  # "CONNECT 4294967295\n" is 19 bytes
_host_side_ports = itertools.count(1 << 30)  # Firecracker numbers the host side's ports from 2^30


def parse_connect(line: bytes) -> int | None:
    """The port of a `CONNECT <port>\\n` line, or None when the line is anything else."""
    if not line.endswith(b"\n") or not line.startswith(b"CONNECT "):
        return None
    digits = line[len(b"CONNECT "):-1]
    if not digits.isdigit() or len(digits) > 10 or int(digits) > 0xFFFFFFFF:
        return None
    return int(digits)


def read_line(conn: socket.socket, timeout: float) -> bytes:
    """Bytes up to and including the first newline, read one at a time (what follows is the
    program's data); b"" when the peer stops early, sends no newline in time, or sends too much."""
    deadline = time.monotonic() + timeout
    line = b""
    while not line.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or len(line) >= MAX_LINE:
            return b""
        conn.settimeout(remaining)
        try:
            byte = conn.recv(1)
        except OSError:
            return b""
        if not byte:
            return b""
        line += byte
    return line


def pipe(one: socket.socket, other: socket.socket) -> None:
    """Copy both ways until both sides have finished; each EOF is passed on as a half-close."""
    one.settimeout(None)
    other.settimeout(None)

    def copy(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        try:
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    back = threading.Thread(target=copy, args=(other, one), daemon=True)
    back.start()
    copy(one, other)
    back.join()
    one.close()
    other.close()


class Muxer:
    def __init__(self, uds_path: str, guest_to_host: list[int], ok_delay: float = 0.0, line_timeout: float = 5.0):
        self.uds_path = uds_path
        self.guest_to_host = guest_to_host
        self.ok_delay = ok_delay
        self.line_timeout = line_timeout

    def serve(self) -> None:
        for port in self.guest_to_host:
            threading.Thread(target=self._guest_port, args=(port,), daemon=True).start()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if os.path.exists(self.uds_path):
            os.unlink(self.uds_path)
        listener.bind(self.uds_path)
        listener.listen(64)
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=self._host_connection, args=(conn,), daemon=True).start()

    def _host_connection(self, conn: socket.socket) -> None:
        port = parse_connect(read_line(conn, self.line_timeout))
        if port is None:
            conn.close()
            return
        guest = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
        try:
            guest.connect((GUEST_CID, port))
        except OSError:
            guest.close()
            conn.close()  # nothing listens in the guest: no answer, as the VMMs do
            return
        if self.ok_delay:
            time.sleep(self.ok_delay)
        try:
            conn.sendall(b"OK %d\n" % next(_host_side_ports))
        except OSError:
            guest.close()
            conn.close()
            return
        pipe(conn, guest)

    def _guest_port(self, port: int) -> None:
        """Listen on vsock `port` while UDS_PATH_port is a socket file; forward each guest connection."""
        path = f"{self.uds_path}_{port}"
        listener = None
        while True:
            present = _is_socket_file(path)
            if present and listener is None:
                listener = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
                listener.bind((socket.VMADDR_CID_ANY, port))
                listener.listen(64)
                listener.settimeout(0.05)
            elif not present and listener is not None:
                listener.close()  # guests connecting now are reset, as when no host program listens
                listener = None
            if listener is None:
                time.sleep(0.05)
                continue
            try:
                guest, _ = listener.accept()
            except socket.timeout:
                continue
            threading.Thread(target=self._guest_connection, args=(guest, path), daemon=True).start()

    def _guest_connection(self, guest: socket.socket, path: str) -> None:
        host = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            host.connect(path)
        except OSError:
            host.close()
            guest.close()
            return
        pipe(guest, host)


_ACCEPTING = 0x10000  # __SO_ACCEPTCON in /proc/net/unix's Flags: the socket listens


def _is_socket_file(path: str) -> bool:
    """Whether a live listener holds `path`: a socket file alone may be a dead listener's, and
    connecting to find out would hand the listener a connection nobody made."""
    try:
        if not stat.S_ISSOCK(os.stat(path).st_mode):
            return False
        with open("/proc/net/unix") as table:
            next(table)
            for line in table:
                fields = line.split(None, 7)
                if len(fields) == 8 and fields[7].rstrip("\n") == path and int(fields[3], 16) & _ACCEPTING:
                    return True
    except (OSError, ValueError):
        return False
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vsockport.sandbox.muxer",
                                     description="Stand-in for a Firecracker/Cloud Hypervisor hybrid-vsock muxer.")
    parser.add_argument("uds_path")
    parser.add_argument("--guest-to-host", type=int, action="append", default=[], metavar="PORT")
    parser.add_argument("--ok-delay", type=float, default=0.0, metavar="SECONDS")
    parser.add_argument("--line-timeout", type=float, default=5.0, metavar="SECONDS")
    args = parser.parse_args(argv)
    try:
        Muxer(args.uds_path, args.guest_to_host, args.ok_delay, args.line_timeout).serve()
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
