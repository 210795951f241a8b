"""A TCP echo server: accepts connections and sends back what it receives."""

import socket
import sys

HOST = ""  # all interfaces
PORT = 50007


def serve(port=PORT):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind((HOST, port))
        server.listen(1)
        print("listening on", server.getsockname(), flush=True)
        while True:
            conn, peer = server.accept()
            with conn:
                print("connection from", peer, flush=True)
                while True:
                    data = conn.recv(1024)
                    if not data:
                        break
                    conn.sendall(data)


if __name__ == "__main__":
    serve(int(sys.argv[1]) if len(sys.argv) > 1 else PORT)
