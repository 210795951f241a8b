"""socket.create_server on an ephemeral port and socket.create_connection to it."""
import socket
import threading

server = socket.create_server(("", 0))
port = server.getsockname()[1]


def serve():
    conn, _ = server.accept()
    with conn:
        conn.sendall(conn.recv(1024)[::-1])


threading.Thread(target=serve, daemon=True).start()
with socket.create_connection(("localhost", port), timeout=10) as conn:
    conn.sendall(b"noitcennoc_etaerc")
    print(conn.recv(1024).decode(), port != 0)
