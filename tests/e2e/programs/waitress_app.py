"""waitress serving a WSGI app (to curl, over a socat bridge)."""
import sys

import waitress


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"hello from waitress, client {environ['REMOTE_ADDR']}\n".encode()]


print("waitress serving", flush=True)
waitress.serve(app, host="127.0.0.1", port=int(sys.argv[1]), _quiet=True)
