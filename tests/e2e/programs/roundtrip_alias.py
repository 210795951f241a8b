"""The same round trip with `import socket as s`, the default family and an IPv6 wildcard bind."""
import socket as s
import sys
import threading

PORT = int(sys.argv[1])
ready = threading.Event()


def serve():
    srv = s.socket(s.AF_INET6, s.SOCK_STREAM)
    srv.bind(("::", PORT, 0, 0))
    srv.listen(1)
    ready.set()
    conn, _ = srv.accept()
    conn.sendall(conn.recv(1024).upper())
    conn.close()


threading.Thread(target=serve, daemon=True).start()
ready.wait(30)
client = s.socket()
client.connect(("127.0.0.1", PORT))
client.sendall(b"import socket as s")
print(client.recv(1024).decode(), client.family)
