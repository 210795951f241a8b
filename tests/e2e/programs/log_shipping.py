"""Ship log records to collectors, as a guest ships its logs to the host: logging's SocketHandler to a
socketserver that unpickles them, HTTPHandler to an http.server that reads the posted form."""
import logging
import logging.handlers
import pickle
import socketserver
import struct
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs

port = int(sys.argv[1])
received = []


class RecordReceiver(socketserver.StreamRequestHandler):
    def handle(self):
        size = struct.unpack(">L", self.rfile.read(4))[0]
        received.append(logging.makeLogRecord(pickle.loads(self.rfile.read(size))).getMessage())


class FormReceiver(BaseHTTPRequestHandler):
    def do_POST(self):
        form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
        received.append(form["msg"][0])
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


records = socketserver.TCPServer(("localhost", port), RecordReceiver)
forms = HTTPServer(("localhost", port + 1), FormReceiver)
for server in (records, forms):
    threading.Thread(target=server.handle_request).start()
log = logging.getLogger("shipped")
log.propagate = False
log.addHandler(logging.handlers.SocketHandler("localhost", port))
log.addHandler(logging.handlers.HTTPHandler(f"localhost:{port + 1}", "/log", method="POST"))
log.warning("shipped over vsock")
for handler in log.handlers:
    handler.close()
for thread in threading.enumerate():
    if thread is not threading.current_thread():
        thread.join(60)
print(*received, records.socket.family.name, forms.socket.family.name)  # the collectors listen on vsock
