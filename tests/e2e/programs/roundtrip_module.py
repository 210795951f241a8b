"""One process, a server thread and a client, written with `import socket`."""
import socket
import sys
import threading

PORT = int(sys.argv[1])
ready = threading.Event()


def serve():
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("", PORT))
    srv.listen(1)
    ready.set()
    conn, _ = srv.accept()
    conn.sendall(conn.recv(1024).upper())
    conn.close()
    srv.close()


threading.Thread(target=serve, daemon=True).start()
ready.wait(30)
client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
client.connect(("localhost", PORT))
client.sendall(b"import socket")
print(client.recv(1024).decode(), client.family)
