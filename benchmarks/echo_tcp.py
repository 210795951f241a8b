"""A plain TCP echo server and client, as a user would write them: the program the data-path benchmark
ports with vsockport (benchmarks/datapath.py). Written for TCP/IP only.

    python echo_tcp.py serve PORT
    python echo_tcp.py roundtrips|connections|bulk HOST PORT COUNT
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
            if data[:1] == b"B":  # bulk: count what arrives, answer once at the end
                total = len(data)
                while not data.endswith(b"E"):
                    data = conn.recv(CHUNK)
                    total += len(data)
                conn.sendall(str(total).encode())
            else:
                conn.sendall(data)


def serve(port):
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("", port))
    server.listen(128)
    print("serving", flush=True)
    while True:
        conn, _ = server.accept()
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


def roundtrips(host, port, count):
    with socket.create_connection((host, port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(count):
            sock.sendall(b"x" * 64)
            received = 0
            while received < 64:
                received += len(sock.recv(64))


def connections(host, port, count):
    for _ in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.connect((host, port))
        sock.sendall(b"ping")
        sock.recv(4)
        sock.close()


def bulk(host, port, megabytes):
    block = b"B" + b"x" * (CHUNK - 1)
    with socket.create_connection((host, port)) as sock:
        for _ in range(megabytes * 16 - 1):
            sock.sendall(block)
        sock.sendall(b"x" * (CHUNK - 1) + b"E")
        assert int(sock.recv(64)) == megabytes * 2**20


if __name__ == "__main__":
    role = sys.argv[1]
    if role == "serve":
        serve(int(sys.argv[2]))
    else:
        host, port, count = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
        workload = {"roundtrips": roundtrips, "connections": connections, "bulk": bulk}[role]
        workload(host, port, 1)  # warm up: first-use work (imports, probes) is start-up, not the data path
        start, cpu = time.perf_counter(), time.process_time()
        workload(host, port, count)
        print(time.perf_counter() - start, time.process_time() - cpu)
