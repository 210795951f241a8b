"""websockets' sync server and client: an echo over vsock, then the same over a Unix socket."""
import os
import sys
import tempfile
import threading

from websockets.sync.client import connect, unix_connect
from websockets.sync.server import serve, unix_serve


def echo(ws):
    for message in ws:
        ws.send(message.upper() if isinstance(message, str) else message)


port = int(sys.argv[1])
with serve(echo, "", port) as server:
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with connect(f"ws://localhost:{port}/") as ws:
        ws.send("hello over vsock")
        print("vsock:", ws.recv())
        ws.send(b"\0" * 200000)
        print("vsock binary:", len(ws.recv()))
    server.shutdown()

path = os.path.join(tempfile.mkdtemp(), "ws.sock")
with unix_serve(echo, path) as server:
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with unix_connect(path) as ws:
        ws.send("hello over unix")
        print("unix:", ws.recv())
    server.shutdown()
