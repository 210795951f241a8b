"""Connect to a port nobody listens on."""
import socket
import sys

try:
    socket.create_connection(("localhost", int(sys.argv[1])), timeout=10)
except OSError as exc:
    print(type(exc).__name__, exc.errno, exc)
    sys.exit(3)
