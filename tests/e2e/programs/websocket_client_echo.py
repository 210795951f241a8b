"""websocket-client (the `websocket` package) talking to a websockets server, both ported."""
import sys
import threading

import websocket
from websockets.sync.server import serve


def echo(ws):
    for message in ws:
        ws.send(message[::-1])


port = int(sys.argv[1])
with serve(echo, "localhost", port) as server:
    threading.Thread(target=server.serve_forever, daemon=True).start()
    ws = websocket.create_connection(f"ws://localhost:{port}/", timeout=30)
    ws.send("websocket-client over vsock")
    print(ws.recv())
    ws.close()
    server.shutdown()
