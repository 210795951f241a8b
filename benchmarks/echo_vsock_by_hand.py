"""echo_tcp.py ported to AF_VSOCK by hand, as the porting guide would have it: CPython's own socket calls,
no runtime. The data-path benchmark's reference for the program vsockport ported.

    python echo_vsock_by_hand.py serve PORT
    python echo_vsock_by_hand.py roundtrips|connections|bulk CID PORT COUNT
"""

import socket
import sys
import threading
import time

CHUNK = 65536


def handle(conn):
    with conn:
        while True:
            data = conn.recv(CHUNK)
            if not data:
                return
            if data[:1] == b"B":
                total = len(data)
                while not data.endswith(b"E"):
                    data = conn.recv(CHUNK)
                    total += len(data)
                conn.sendall(str(total).encode())
            else:
                conn.sendall(data)


def serve(port):
    server = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    server.bind((socket.VMADDR_CID_ANY, port))
    server.listen(128)
    print("serving", flush=True)
    while True:
        conn, _ = server.accept()
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


def connect(cid, port):
    sock = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    sock.connect((cid, port))
    return sock


def roundtrips(cid, port, count):
    with connect(cid, port) as sock:
        for _ in range(count):
            sock.sendall(b"x" * 64)
            received = 0
            while received < 64:
                received += len(sock.recv(64))


def connections(cid, port, count):
    for _ in range(count):
        sock = connect(cid, port)
        sock.sendall(b"ping")
        sock.recv(4)
        sock.close()


def bulk(cid, port, megabytes):
    block = b"B" + b"x" * (CHUNK - 1)
    with connect(cid, port) as sock:
        for _ in range(megabytes * 16 - 1):
            sock.sendall(block)
        sock.sendall(b"x" * (CHUNK - 1) + b"E")
        assert int(sock.recv(64)) == megabytes * 2**20


if __name__ == "__main__":
    role = sys.argv[1]
    if role == "serve":
        serve(int(sys.argv[2]))
    else:
        cid, port, count = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
        workload = {"roundtrips": roundtrips, "connections": connections, "bulk": bulk}[role]
        workload(cid, port, 1)  # warm up: first-use work (imports, probes) is start-up, not the data path
        start, cpu = time.perf_counter(), time.process_time()
        workload(cid, port, count)
        print(time.perf_counter() - start, time.process_time() - cpu)
