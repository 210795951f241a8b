"""A TCP echo client: sends a message and prints the reply."""

import socket
import sys

HOST = "localhost"
PORT = 50007


def echo(message, port=PORT):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.connect((HOST, port))
        sock.sendall(message)
        received = b""
        while len(received) < len(message):
            chunk = sock.recv(1024)
            if not chunk:
                break
            received += chunk
        return received


if __name__ == "__main__":
    reply = echo(b"Hello, world", int(sys.argv[1]) if len(sys.argv) > 1 else PORT)
    print("Received", repr(reply))
