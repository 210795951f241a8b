"""A TCP client for banner_server.py: reads the banner, sends a line, prints both; prints an error
as `ErrorClass: message` and exits 3."""

import socket
import sys


def talk(port, line, timeout):
    with socket.create_connection(("localhost", port), timeout=timeout) as sock:
        reader = sock.makefile("rb")
        banner = reader.readline()
        sock.sendall(line + b"\n")
        return banner, reader.readline()


if __name__ == "__main__":
    try:
        banner, answer = talk(int(sys.argv[1]), sys.argv[2].encode(), float(sys.argv[3]) if len(sys.argv) > 3 else 10.0)
    except OSError as exc:
        print("%s: %s" % (type(exc).__name__, exc))
        sys.exit(3)
    print(banner.decode().strip(), "|", answer.decode().strip())
