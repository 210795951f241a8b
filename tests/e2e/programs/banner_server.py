"""A TCP server that speaks first: a banner on accept, then each line back in upper case."""

import socket
import sys


def serve(port):
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("0.0.0.0", port))
    server.listen(5)
    print("listening", flush=True)
    while True:
        conn, peer = server.accept()
        with conn:
            conn.sendall(b"HELLO %s\n" % str(peer[0]).encode())
            reader = conn.makefile("rb")
            for line in reader:
                conn.sendall(line.upper())


if __name__ == "__main__":
    serve(int(sys.argv[1]))
