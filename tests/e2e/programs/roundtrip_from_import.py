"""The same round trip with `from socket import AF_INET, socket as S` and `from socket import *`."""
from socket import AF_INET, socket as S
from socket import *
import sys
import threading

PORT = int(sys.argv[1])
ready = threading.Event()


def serve():
    srv = socket(AF_INET, SOCK_STREAM)
    srv.bind(("0.0.0.0", PORT))
    srv.listen(1)
    ready.set()
    conn, _ = srv.accept()
    conn.sendall(conn.recv(1024).upper())
    conn.close()


threading.Thread(target=serve, daemon=True).start()
ready.wait(30)
client = S(family=AF_INET)
client.connect(("::1", PORT))
client.sendall(b"from socket import")
print(client.recv(1024).decode(), client.family)
