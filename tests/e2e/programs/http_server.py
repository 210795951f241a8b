"""Serve this folder with the standard library's threading HTTP server until killed."""
import functools
import http.server
import os
import sys

port = int(sys.argv[1])
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=os.path.dirname(os.path.abspath(__file__)))
httpd = http.server.ThreadingHTTPServer(("", port), handler)
print("serving on port", port, flush=True)
httpd.serve_forever()
